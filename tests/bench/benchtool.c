/* SPDX-License-Identifier: MIT */
/*
 * benchtool: the small, fast pieces of make bench and of the guest-disk
 * generator (make-guest-disk.sh), where a shell loop would be too slow or
 * not deterministic.
 *
 *   benchtool fill FILE OFFSET LENGTH SEED TAG
 *       Write LENGTH pseudo-random bytes at OFFSET of FILE (created if
 *       missing, never truncated).  Stale garbage in free blocks, fully
 *       random disks.
 *   benchtool tree DIR SEED RANDOM_BYTES TEXT_BYTES DB_BYTES
 *       Generate the user/application files of a guest root filesystem:
 *       incompressible media and archives, text (logs, CSV, prose, source,
 *       configuration) and "mostly zero" database pages, in many files of
 *       varied sizes (log-uniform within each category).
 *   benchtool esp DIR SEED BYTES
 *       Boot loader, kernel and initrd sized blobs for an EFI system
 *       partition.
 *   benchtool pick SEED BUDGET
 *       Read "SIZE<TAB>PATH" lines on stdin, write NUL-terminated paths
 *       (without the leading '/') of a sample whose sizes add up to at most
 *       BUDGET bytes.  Files are taken in the order of a hash of the seed
 *       and the path, so that adding or removing files on the host changes
 *       the sample only a little.
 *   benchtool uuid SEED TAG
 *       Print a version-4 style UUID derived from SEED and TAG.
 *   benchtool nonzero FILE
 *       Print "NONZERO TOTAL": how many 4 KiB blocks of FILE hold a
 *       non-zero byte, and how many blocks the file has (holes are skipped
 *       with SEEK_DATA and count as zero).
 *   benchtool pretouch MIB
 *       Allocate and touch MIB MiB of anonymous memory, then free it.  On
 *       a guest whose free memory is handed back to the hypervisor, the
 *       next program that needs that much memory gets it at full speed for
 *       a couple of seconds (see BENCHMARKS.md, "first-touch effect").
 *
 * Everything random comes from xoshiro256** seeded by splitmix64 over an
 * FNV-1a hash of "SEED/TAG": the same arguments give the same bytes on
 * every host.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../converter/lib/iszero.h"

#define MiB (UINT64_C (1) << 20)

/* ---- Pseudo-random numbers. */

struct rng {
    uint64_t s[4];
};

static uint64_t
fnv1a (uint64_t h, const char *str)
{
    if (h == 0) {
        h = UINT64_C (0xcbf29ce484222325);
    }
    for (; *str != '\0'; str++) {
        h ^= (unsigned char) *str;
        h *= UINT64_C (0x100000001b3);
    }
    return h;
}

static uint64_t
splitmix64 (uint64_t *x)
{
    uint64_t z = (*x += UINT64_C (0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C (0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void
rng_init (struct rng *r, const char *seed, const char *tag)
{
    uint64_t x = fnv1a (fnv1a (fnv1a (0, seed), "/"), tag);
    int i;

    for (i = 0; i < 4; i++) {
        r->s[i] = splitmix64 (&x);
    }
}

static inline uint64_t
rotl (uint64_t v, int k)
{
    return (v << k) | (v >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna). */
static inline uint64_t
rng_next (struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl (s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl (s[3], 45);
    return result;
}

/* A number in [0, n). */
static uint64_t
rng_below (struct rng *r, uint64_t n)
{
    return n == 0 ? 0 : rng_next (r) % n;
}

static double
rng_unit (struct rng *r)
{
    return (double) (rng_next (r) >> 11) / (double) (UINT64_C (1) << 53);
}

/* Log-uniform in [lo, hi]: many small files, a few big ones. */
static uint64_t
rng_logsize (struct rng *r, uint64_t lo, uint64_t hi)
{
    double x;

    if (hi <= lo) {
        return lo;
    }
    x = exp (log ((double) lo) +
             rng_unit (r) * (log ((double) hi) - log ((double) lo)));
    return x < (double) lo ? lo : x > (double) hi ? hi : (uint64_t) x;
}

static void
rng_fill (struct rng *r, unsigned char *buf, size_t len)
{
    size_t i;
    uint64_t v;

    for (i = 0; i + 8 <= len; i += 8) {
        v = rng_next (r);
        memcpy (buf + i, &v, 8);
    }
    if (i < len) {
        v = rng_next (r);
        memcpy (buf + i, &v, len - i);
    }
}

/* ---- Small helpers. */

static int
parse_u64 (const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull (s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || *s == '-') {
        fprintf (stderr, "benchtool: bad number: %s\n", s);
        return -1;
    }
    return 0;
}

static int
write_all (int fd, const void *buf, size_t len, const char *name)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = write (fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf (stderr, "benchtool: write %s: %s\n", name,
                     strerror (errno));
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

/* mkdir -p of the directory part of PATH. */
static int
make_parents (const char *path)
{
    char buf[4096];
    size_t i, len = strlen (path);

    if (len >= sizeof buf) {
        return -1;
    }
    memcpy (buf, path, len + 1);
    for (i = 1; i < len; i++) {
        if (buf[i] == '/') {
            buf[i] = '\0';
            if (mkdir (buf, 0755) == -1 && errno != EEXIST) {
                fprintf (stderr, "benchtool: mkdir %s: %s\n", buf,
                         strerror (errno));
                return -1;
            }
            buf[i] = '/';
        }
    }
    return 0;
}

/* ---- fill */

static int
cmd_fill (int argc, char **argv)
{
    static unsigned char buf[4 * MiB];
    uint64_t off, len, n;
    struct rng r;
    int fd;

    if (argc != 6 || parse_u64 (argv[2], &off) == -1 ||
        parse_u64 (argv[3], &len) == -1) {
        fprintf (stderr, "usage: benchtool fill FILE OFFSET LENGTH SEED TAG\n");
        return 1;
    }
    rng_init (&r, argv[4], argv[5]);
    fd = open (argv[1], O_WRONLY | O_CREAT, 0644);
    if (fd == -1) {
        fprintf (stderr, "benchtool: %s: %s\n", argv[1], strerror (errno));
        return 1;
    }
    while (len > 0) {
        n = len < sizeof buf ? len : sizeof buf;
        rng_fill (&r, buf, n);
        for (size_t done = 0; done < n;) {
            ssize_t w = pwrite (fd, buf + done, n - done, (off_t) off);

            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                fprintf (stderr, "benchtool: pwrite %s: %s\n", argv[1],
                         strerror (errno));
                close (fd);
                return 1;
            }
            done += (size_t) w;
            off += (uint64_t) w;
        }
        len -= n;
    }
    if (close (fd) == -1) {
        fprintf (stderr, "benchtool: close %s: %s\n", argv[1],
                 strerror (errno));
        return 1;
    }
    return 0;
}

/* ---- Generated file contents. */

static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was",
    "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from",
    "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
    "one", "all", "we", "can", "her", "has", "there", "been", "if", "more",
    "when", "will", "would", "who", "so", "no", "time", "system", "disk",
    "file", "data", "server", "network", "user", "service", "request",
    "error", "value", "table", "report", "update", "process", "memory",
    "config", "module", "kernel", "driver", "device", "image", "volume",
    "backup", "cluster", "node", "storage", "block", "cache", "buffer",
    "thread", "queue", "socket", "session", "account", "invoice", "order",
    "customer", "product", "price", "market", "project", "meeting", "budget",
    "schedule", "release", "version", "feature", "issue", "patch", "test",
    "build", "deploy", "monitor", "alert", "metric", "latency", "throughput",
    "window", "river", "mountain", "garden", "morning", "evening", "winter",
    "summer", "people", "city", "country", "history", "language", "school",
    "student", "teacher", "family", "friend", "house", "street", "light",
    "water", "music", "picture", "story", "letter", "number", "question",
    "answer", "problem", "reason", "result", "change", "point", "state",
    "group", "company", "program", "support", "control", "policy", "level",
    "model", "public", "private", "general", "special", "simple", "quick",
    "large", "small", "early", "late", "new", "old", "good", "great", "high",
    "low", "open", "close", "start", "stop", "read", "write", "send",
    "receive", "create", "delete", "move", "copy", "check", "verify",
    "connect", "accept", "reject", "allow", "deny", "enable", "disable",
    "begin", "finish", "between", "under", "over", "after", "before",
    "during", "without", "within", "along", "across", "through", "about",
    "against", "around", "because", "however", "although", "therefore",
    "usually", "always", "never", "often", "again", "still", "already",
    "perhaps", "quite", "rather", "very", "much", "many", "few", "several",
    "other", "another", "each", "every", "some", "any", "most", "first",
    "last", "next", "second", "third", "final", "main", "local", "remote",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const procs[] = {
    "sshd", "systemd", "cron", "kernel", "nginx", "postgres", "dockerd",
    "containerd", "NetworkManager", "dbus-daemon", "rsyslogd", "chronyd",
    "smartd", "udisksd", "polkitd", "sudo", "CRON", "apache2", "mysqld",
    "redis-server",
};
static const char *const levels[] = {
    "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "NOTICE", "WARNING", "ERROR",
};
static const char *const statuses[] = {
    "paid", "pending", "shipped", "cancelled", "refunded", "delivered",
};
static const char *const regions[] = {
    "eu-west", "eu-central", "us-east", "us-west", "ap-south", "sa-east",
};
static const char *const ctypes[] = {
    "int", "unsigned", "size_t", "uint64_t", "char *", "struct node *",
    "bool", "double", "const char *", "void",
};

/* A buffered output file; generators append text with out_printf. */
struct out {
    int fd;
    const char *name;
    unsigned char *buf;
    size_t len, cap;
    uint64_t written;
    bool failed;
};

static void
out_flush (struct out *o)
{
    if (o->len > 0 && !o->failed) {
        if (write_all (o->fd, o->buf, o->len, o->name) == -1) {
            o->failed = true;
        }
        o->written += o->len;
    }
    o->len = 0;
}

static void
out_bytes (struct out *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        out_flush (o);
    }
    if (n > o->cap) {
        if (!o->failed && write_all (o->fd, p, n, o->name) == -1) {
            o->failed = true;
        }
        o->written += n;
        return;
    }
    memcpy (o->buf + o->len, p, n);
    o->len += n;
}

__attribute__ ((format (printf, 2, 3)))
static void
out_printf (struct out *o, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    va_start (ap, fmt);
    n = vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    if (n < 0) {
        return;
    }
    out_bytes (o, line, (size_t) n < sizeof line ? (size_t) n :
               sizeof line - 1);
}

static uint64_t
out_size (const struct out *o)
{
    return o->written + o->len;
}

static void
out_words (struct out *o, struct rng *r, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        out_printf (o, i ? " %s" : "%s", words[rng_below (r, NWORDS)]);
    }
}

enum kind {
    K_RANDOM, K_LOG, K_CSV, K_PROSE, K_CONF, K_SOURCE, K_INNODB, K_PGDATA,
};

static void
gen_random (struct out *o, struct rng *r, uint64_t size)
{
    static unsigned char chunk[MiB];

    while (out_size (o) < size) {
        uint64_t n = size - out_size (o);

        n = n < sizeof chunk ? n : sizeof chunk;
        rng_fill (r, chunk, n);
        out_bytes (o, chunk, n);
    }
}

static void
gen_text (struct out *o, struct rng *r, enum kind k, uint64_t size)
{
    uint64_t t = 1700000000 + rng_below (r, 30000000), id = 1;
    unsigned depth = 0;

    switch (k) {
    case K_CSV:
        out_printf (o, "id,timestamp,customer_id,sku,quantity,unit_price,"
                    "status,region,comment\n");
        break;
    case K_SOURCE:
        out_printf (o, "/* %s %s %s */\n\n#include <stdio.h>\n"
                    "#include <stdlib.h>\n\n", words[rng_below (r, NWORDS)],
                    words[rng_below (r, NWORDS)],
                    words[rng_below (r, NWORDS)]);
        break;
    default:
        break;
    }
    while (out_size (o) < size) {
        switch (k) {
        case K_LOG:
            t += rng_below (r, 4);
            out_printf (o, "%" PRIu64 ".%03u host%02u %s[%u]: %s: ", t,
                        (unsigned) rng_below (r, 1000),
                        (unsigned) rng_below (r, 4),
                        procs[rng_below (r, sizeof procs / sizeof *procs)],
                        (unsigned) (300 + rng_below (r, 60000)),
                        levels[rng_below (r, 8)]);
            out_words (o, r, 3 + (unsigned) rng_below (r, 9));
            if (rng_below (r, 3) == 0) {
                out_printf (o, " from 10.%u.%u.%u port %u",
                            (unsigned) rng_below (r, 256),
                            (unsigned) rng_below (r, 256),
                            (unsigned) rng_below (r, 256),
                            (unsigned) (1024 + rng_below (r, 64000)));
            }
            out_printf (o, "\n");
            break;
        case K_CSV:
            t += rng_below (r, 90);
            out_printf (o, "%" PRIu64 ",%" PRIu64 ",%u,SKU-%06u,%u,%u.%02u,"
                        "%s,%s,", id++, t, (unsigned) rng_below (r, 250000),
                        (unsigned) rng_below (r, 40000),
                        (unsigned) (1 + rng_below (r, 20)),
                        (unsigned) rng_below (r, 900),
                        (unsigned) rng_below (r, 100),
                        statuses[rng_below (r, 6)], regions[rng_below (r, 6)]);
            out_words (o, r, (unsigned) rng_below (r, 5));
            out_printf (o, "\n");
            break;
        case K_PROSE:
            if (rng_below (r, 25) == 0) {
                out_printf (o, "\n## ");
                out_words (o, r, 2 + (unsigned) rng_below (r, 4));
                out_printf (o, "\n\n");
            }
            for (unsigned s = 3 + (unsigned) rng_below (r, 5); s > 0; s--) {
                const char *w = words[rng_below (r, NWORDS)];

                out_printf (o, "%c%s ", w[0] - 'a' + 'A', w + 1);
                out_words (o, r, 5 + (unsigned) rng_below (r, 15));
                out_printf (o, rng_below (r, 8) == 0 ? "? " : ". ");
            }
            out_printf (o, "\n\n");
            break;
        case K_CONF:
            if (rng_below (r, 6) == 0) {
                out_printf (o, "\n# ");
                out_words (o, r, 4 + (unsigned) rng_below (r, 8));
                out_printf (o, "\n[%s_%s]\n", words[rng_below (r, NWORDS)],
                            words[rng_below (r, NWORDS)]);
            }
            out_printf (o, "%s_%s = ", words[rng_below (r, NWORDS)],
                        words[rng_below (r, NWORDS)]);
            switch (rng_below (r, 3)) {
            case 0: out_printf (o, "%u\n", (unsigned) rng_below (r, 65536));
                break;
            case 1: out_printf (o, "%s\n", rng_below (r, 2) ? "yes" : "no");
                break;
            default: out_printf (o, "/var/lib/%s/%s\n",
                                 words[rng_below (r, NWORDS)],
                                 words[rng_below (r, NWORDS)]);
            }
            break;
        case K_SOURCE:
            if (depth == 0) {
                out_printf (o, "\n/*\n * ");
                out_words (o, r, 6 + (unsigned) rng_below (r, 10));
                out_printf (o, ".\n */\nstatic %s\n%s_%s (%s a, %s b)\n{\n",
                            ctypes[rng_below (r, 10)],
                            words[rng_below (r, NWORDS)],
                            words[rng_below (r, NWORDS)],
                            ctypes[rng_below (r, 10)],
                            ctypes[rng_below (r, 10)]);
                depth = 1 + (unsigned) rng_below (r, 12);
            }
            else if (--depth == 0) {
                out_printf (o, "    return %s_%s;\n}\n",
                            words[rng_below (r, NWORDS)],
                            words[rng_below (r, NWORDS)]);
            }
            else {
                out_printf (o, "    %s_%s = %s (%s, %u);\n",
                            words[rng_below (r, NWORDS)],
                            words[rng_below (r, NWORDS)],
                            words[rng_below (r, NWORDS)],
                            words[rng_below (r, NWORDS)],
                            (unsigned) rng_below (r, 4096));
            }
            break;
        default:
            return;
        }
    }
}

/*
 * Database-like pages: each page has a header with a checksum and an LSN,
 * some rows, and the rest zero (free space inside the page); some pages
 * are entirely zero (a pre-extended tablespace).  InnoDB-like pages are
 * 16 KiB with rows packed at the start and a trailer; PostgreSQL-like pages
 * are 8 KiB with line pointers at the start and tuples at the end.
 */
static void
gen_pages (struct out *o, struct rng *r, enum kind k, uint64_t size)
{
    static unsigned char page[16384];
    size_t psz = k == K_INNODB ? 16384 : 8192;
    uint64_t lsn = rng_next (r) >> 20, pageno = 0;

    while (out_size (o) < size) {
        size_t fill, i, n;

        memset (page, 0, psz);
        if (rng_below (r, 100) < 25) {
            out_bytes (o, page, psz);   /* never used page */
            pageno++;
            continue;
        }
        fill = (size_t) rng_below (r, psz * 7 / 10);
        lsn += 1 + rng_below (r, 5000);
        rng_fill (r, page, 4);          /* checksum */
        memcpy (page + 4, &pageno, 4);
        memcpy (page + 8, &lsn, 8);
        if (k == K_INNODB) {
            /* Rows from the header on, then an 8 byte trailer. */
            for (i = 38; i + 64 < 38 + fill; i += n) {
                n = (size_t) snprintf ((char *) page + i, psz - 8 - i,
                                       "%" PRIu64 "|%s|%s|%u|%s;",
                                       rng_below (r, 1000000),
                                       words[rng_below (r, NWORDS)],
                                       words[rng_below (r, NWORDS)],
                                       (unsigned) rng_below (r, 100000),
                                       regions[rng_below (r, 6)]);
                if (n >= psz - 8 - i) {
                    break;
                }
            }
            memcpy (page + psz - 8, page, 4);
            memcpy (page + psz - 4, &lsn, 4);
        }
        else {
            /* Line pointers after the header, tuples from the end. */
            size_t lp = 24, top = psz;

            while (psz - top < fill && top > lp + 96) {
                n = 40 + (size_t) rng_below (r, 56);
                top -= n;
                rng_fill (r, page + top, 8);    /* tuple header */
                snprintf ((char *) page + top + 8, n - 8, "%s %s %u",
                          words[rng_below (r, NWORDS)],
                          words[rng_below (r, NWORDS)],
                          (unsigned) rng_below (r, 1000000));
                page[lp] = (unsigned char) top;
                page[lp + 1] = (unsigned char) (top >> 8);
                page[lp + 2] = (unsigned char) n;
                page[lp + 3] = 1;
                lp += 4;
            }
        }
        out_bytes (o, page, psz);
        pageno++;
    }
}

static int
gen_file (const char *path, enum kind k, struct rng *r, uint64_t size,
          uint64_t *actual)
{
    static unsigned char buf[MiB];
    struct out o = { .buf = buf, .cap = sizeof buf, .name = path };

    if (make_parents (path) == -1) {
        return -1;
    }
    o.fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o.fd == -1) {
        fprintf (stderr, "benchtool: %s: %s\n", path, strerror (errno));
        return -1;
    }
    switch (k) {
    case K_RANDOM: gen_random (&o, r, size); break;
    case K_INNODB: case K_PGDATA: gen_pages (&o, r, k, size); break;
    default: gen_text (&o, r, k, size); break;
    }
    out_flush (&o);
    /* Text generators stop at the end of a line, a little past SIZE. */
    *actual = o.written;
    if (close (o.fd) == -1 || o.failed) {
        fprintf (stderr, "benchtool: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* ---- tree and esp */

struct category {
    const char *tag;
    enum kind kind;
    const char *pattern;        /* printf with (directory, file) numbers */
    uint64_t min, max;          /* file sizes, log-uniform */
    unsigned share;             /* per mille of the group's budget */
    unsigned per_dir;           /* files per directory */
};

static const struct category random_cats[] = {
    { "thumbs", K_RANDOM, "home/alice/.cache/thumbnails/%03u/t%06u.png",
      4096, 96 << 10, 60, 250 },
    { "photos", K_RANDOM, "home/alice/Pictures/%04u/IMG_%05u.jpg",
      300 << 10, 8 << 20, 220, 80 },
    { "music", K_RANDOM, "home/alice/Music/album%03u/track%05u.ogg",
      2 << 20, 12 << 20, 180, 12 },
    { "videos", K_RANDOM, "home/alice/Videos/%02u/clip%04u.mp4",
      16 << 20, 180 << 20, 220, 40 },
    { "archives", K_RANDOM, "home/alice/Downloads/%02u/archive%04u.tar.xz",
      64 << 10, 64 << 20, 140, 60 },
    { "debs", K_RANDOM, "var/cache/apt/archives/%02u/pkg%05u_amd64.deb",
      8 << 10, 6 << 20, 180, 300 },
};

static const struct category text_cats[] = {
    { "conf", K_CONF, "etc/site/%03u/conf%05u.conf",
      200, 8 << 10, 40, 60 },
    { "source", K_SOURCE, "home/alice/src/proj%03u/file%05u.c",
      1 << 10, 120 << 10, 160, 80 },
    { "docs", K_PROSE, "home/alice/Documents/%03u/note%05u.md",
      2 << 10, 2 << 20, 160, 50 },
    { "logs", K_LOG, "var/log/app%02u/service%04u.log",
      64 << 10, 48 << 20, 340, 20 },
    { "csv", K_CSV, "srv/export/%02u/table%04u.csv",
      256 << 10, 40 << 20, 300, 30 },
};

static const struct category db_cats[] = {
    { "innodb", K_INNODB, "var/lib/mysql/db%02u/t%04u.ibd",
      96 << 10, 32 << 20, 600, 40 },
    { "pgdata", K_PGDATA, "var/lib/postgresql/15/main/base/%05u/%06u",
      8 << 10, 24 << 20, 400, 100 },
};

static int
gen_group (const char *dir, const char *seed, const struct category *cats,
           size_t ncats, uint64_t budget, uint64_t *files, uint64_t *bytes)
{
    char path[4096], rel[1024];

    for (size_t c = 0; c < ncats; c++) {
        const struct category *cat = &cats[c];
        uint64_t want = budget / 1000 * cat->share, done = 0, size;
        unsigned n = 0;
        struct rng r;

        rng_init (&r, seed, cat->tag);
        while (done < want) {
            size = rng_logsize (&r, cat->min, cat->max);
            if (size > want - done) {
                size = want - done;
            }
            if (cat->kind == K_INNODB && size >= 16384) {
                size -= size % 16384;
            }
            if (cat->kind == K_PGDATA && size >= 8192) {
                size -= size % 8192;
            }
            snprintf (rel, sizeof rel, cat->pattern, n / cat->per_dir, n);
            snprintf (path, sizeof path, "%s/%s", dir, rel);
            if (gen_file (path, cat->kind, &r, size, &size) == -1) {
                return -1;
            }
            done += size;
            n++;
        }
        *files += n;
        *bytes += done;
    }
    return 0;
}

static int
cmd_tree (int argc, char **argv)
{
    uint64_t rb, tb, db, files = 0, bytes = 0;

    if (argc != 6 || parse_u64 (argv[3], &rb) == -1 ||
        parse_u64 (argv[4], &tb) == -1 || parse_u64 (argv[5], &db) == -1) {
        fprintf (stderr, "usage: benchtool tree DIR SEED RANDOM_BYTES "
                 "TEXT_BYTES DB_BYTES\n");
        return 1;
    }
    if (gen_group (argv[1], argv[2], random_cats,
                   sizeof random_cats / sizeof *random_cats, rb, &files,
                   &bytes) == -1 ||
        gen_group (argv[1], argv[2], text_cats,
                   sizeof text_cats / sizeof *text_cats, tb, &files,
                   &bytes) == -1 ||
        gen_group (argv[1], argv[2], db_cats,
                   sizeof db_cats / sizeof *db_cats, db, &files,
                   &bytes) == -1) {
        return 1;
    }
    printf ("%" PRIu64 " %" PRIu64 "\n", files, bytes);
    return 0;
}

static int
cmd_esp (int argc, char **argv)
{
    /* Name, per mille of BYTES, content. */
    static const struct {
        const char *name;
        unsigned share;
        enum kind kind;
    } blobs[] = {
        { "EFI/BOOT/BOOTX64.EFI", 18, K_RANDOM },
        { "EFI/BOOT/fbx64.efi", 2, K_RANDOM },
        { "EFI/debian/shimx64.efi", 18, K_RANDOM },
        { "EFI/debian/grubx64.efi", 50, K_RANDOM },
        { "EFI/debian/mmx64.efi", 16, K_RANDOM },
        { "EFI/debian/grub.cfg", 1, K_CONF },
        { "EFI/debian/BOOTX64.CSV", 1, K_CONF },
        { "vmlinuz-6.1.0-17-amd64", 150, K_RANDOM },
        { "initrd.img-6.1.0-17-amd64", 280, K_RANDOM },
        { "config-6.1.0-17-amd64", 5, K_CONF },
        { "vmlinuz-6.1.0-18-amd64", 150, K_RANDOM },
        { "initrd.img-6.1.0-18-amd64", 285, K_RANDOM },
        { "config-6.1.0-18-amd64", 5, K_CONF },
        { "loader/loader.conf", 1, K_CONF },
        { "loader/entries/debian.conf", 1, K_CONF },
    };
    char path[4096];
    uint64_t budget, total = 0, size;
    struct rng r;

    if (argc != 4 || parse_u64 (argv[3], &budget) == -1) {
        fprintf (stderr, "usage: benchtool esp DIR SEED BYTES\n");
        return 1;
    }
    rng_init (&r, argv[2], "esp");
    for (size_t i = 0; i < sizeof blobs / sizeof *blobs; i++) {
        size = budget / 1000 * blobs[i].share;
        snprintf (path, sizeof path, "%s/%s", argv[1], blobs[i].name);
        if (gen_file (path, blobs[i].kind, &r, size, &size) == -1) {
            return 1;
        }
        total += size;
    }
    printf ("%zu %" PRIu64 "\n", sizeof blobs / sizeof *blobs, total);
    return 0;
}

/* ---- pick */

struct cand {
    uint64_t key, size;
    char *path;
};

static int
cand_cmp (const void *a, const void *b)
{
    const struct cand *x = a, *y = b;

    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return strcmp (x->path, y->path);
}

static int
cmd_pick (int argc, char **argv)
{
    struct cand *c = NULL;
    size_t n = 0, cap = 0, i;
    char *line = NULL, *tab, *nl;
    size_t linecap = 0;
    uint64_t budget, total = 0, count = 0;
    ssize_t len;

    if (argc != 3 || parse_u64 (argv[2], &budget) == -1) {
        fprintf (stderr, "usage: benchtool pick SEED BUDGET < LIST\n");
        return 1;
    }
    while ((len = getline (&line, &linecap, stdin)) > 0) {
        nl = strchr (line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        tab = strchr (line, '\t');
        if (tab == NULL || tab[1] != '/') {
            continue;
        }
        *tab = '\0';
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            c = realloc (c, cap * sizeof *c);
            if (c == NULL) {
                perror ("benchtool: pick");
                return 1;
            }
        }
        c[n].size = strtoull (line, NULL, 10);
        c[n].path = strdup (tab + 2);
        if (c[n].path == NULL) {
            perror ("benchtool: pick");
            return 1;
        }
        c[n].key = fnv1a (fnv1a (fnv1a (0, argv[1]), "/pick/"), c[n].path);
        c[n].key = splitmix64 (&c[n].key);
        n++;
    }
    free (line);
    if (n > 0) {
        qsort (c, n, sizeof *c, cand_cmp);
    }
    for (i = 0; i < n && total < budget; i++) {
        if (c[i].size > budget - total) {
            continue;
        }
        fputs (c[i].path, stdout);
        putchar ('\0');
        total += c[i].size;
        count++;
    }
    fprintf (stderr, "benchtool: picked %" PRIu64 " files, %" PRIu64
             " bytes\n", count, total);
    for (i = 0; i < n; i++) {
        free (c[i].path);
    }
    free (c);
    return fflush (stdout) == 0 ? 0 : 1;
}

/* ---- uuid */

static int
cmd_uuid (int argc, char **argv)
{
    unsigned char b[16];
    struct rng r;

    if (argc != 3) {
        fprintf (stderr, "usage: benchtool uuid SEED TAG\n");
        return 1;
    }
    rng_init (&r, argv[1], argv[2]);
    rng_fill (&r, b, sizeof b);
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
    printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x\n", b[0], b[1], b[2], b[3], b[4], b[5],
            b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

/* ---- nonzero */

static int
cmd_nonzero (int argc, char **argv)
{
    static unsigned char buf[4 * MiB];
    uint64_t nonzero = 0, total;
    off_t data, hole = 0, end;
    struct stat st;
    int fd;

    if (argc != 2) {
        fprintf (stderr, "usage: benchtool nonzero FILE\n");
        return 1;
    }
    fd = open (argv[1], O_RDONLY);
    if (fd == -1 || fstat (fd, &st) == -1) {
        fprintf (stderr, "benchtool: %s: %s\n", argv[1], strerror (errno));
        return 1;
    }
    end = st.st_size;
    total = ((uint64_t) end + 4095) / 4096;
    while (hole < end) {
        data = lseek (fd, hole, SEEK_DATA);
        if (data == -1) {
            break;                      /* ENXIO: only a hole is left */
        }
        data -= data % 4096;
        hole = lseek (fd, data, SEEK_HOLE);
        if (hole == -1) {
            hole = end;
        }
        /* Round up: a block partly in data counts as data. */
        hole = (hole + 4095) / 4096 * 4096;
        if (hole > end) {
            hole = end;
        }
        for (off_t off = data; off < hole;) {
            size_t want = (size_t) (hole - off) < sizeof buf ?
                          (size_t) (hole - off) : sizeof buf;
            ssize_t got = pread (fd, buf, want, off);

            if (got <= 0) {
                fprintf (stderr, "benchtool: read %s: %s\n", argv[1],
                         got == 0 ? "short file" : strerror (errno));
                close (fd);
                return 1;
            }
            for (ssize_t i = 0; i < got; i += 4096) {
                size_t bl = got - i < 4096 ? (size_t) (got - i) : 4096;

                nonzero += !is_zero (buf + i, bl);
            }
            off += got;
        }
    }
    close (fd);
    printf ("%" PRIu64 " %" PRIu64 "\n", nonzero, total);
    return 0;
}

/* ---- pretouch */

static int
cmd_pretouch (int argc, char **argv)
{
    uint64_t mib;
    size_t len;
    unsigned char *p;

    if (argc != 2 || parse_u64 (argv[1], &mib) == -1) {
        fprintf (stderr, "usage: benchtool pretouch MIB\n");
        return 1;
    }
    if (mib == 0) {
        return 0;
    }
    len = (size_t) (mib * MiB);
    p = mmap (NULL, len, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf (stderr, "benchtool: pretouch %" PRIu64 " MiB: %s\n", mib,
                 strerror (errno));
        return 1;
    }
    /*
     * Transparent huge pages when the kernel allows them: on the bench
     * machine (a paravirtualized guest) mapping 2 MiB pages is up to 20x
     * faster than mapping 4 KiB ones, and the freed memory is the same.
     * Without THP this is a plain 4 KiB touch, only slower.
     */
    (void) madvise (p, len, MADV_HUGEPAGE);
    for (size_t i = 0; i < len; i += 4096) {
        p[i] = 1;
    }
    munmap (p, len);
    return 0;
}

int
main (int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn) (int, char **);
    } cmds[] = {
        { "fill", cmd_fill }, { "tree", cmd_tree }, { "esp", cmd_esp },
        { "pick", cmd_pick }, { "uuid", cmd_uuid },
        { "nonzero", cmd_nonzero }, { "pretouch", cmd_pretouch },
    };

    if (argc >= 2) {
        for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
            if (strcmp (argv[1], cmds[i].name) == 0) {
                return cmds[i].fn (argc - 1, argv + 1);
            }
        }
    }
    fprintf (stderr, "usage: benchtool fill|tree|esp|pick|uuid|nonzero|"
             "pretouch ARGS (see the comment in tests/bench/benchtool.c)\n");
    return 1;
}
