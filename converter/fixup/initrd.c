/* SPDX-License-Identifier: MIT */
/*
 * The names in a guest's initramfs: see initrd.h.
 *
 * Layout (the kernel's Documentation/driver-api/early-userspace/
 * buffer-format.rst): any number of cpio "newc" archives (magic 070701,
 * or 070702 with checksums), each either plain or compressed, separated by
 * zero padding.  A newc header is 110 ASCII bytes: the magic, then 13
 * eight-digit hex fields (ino, mode, uid, gid, nlink, mtime, filesize,
 * devmajor, devminor, rdevmajor, rdevminor, namesize, check); the name
 * (namesize bytes with its NUL) follows, padded so that header and name
 * end on a 4-byte boundary, then the data, padded to 4 bytes.  The name
 * "TRAILER!!!" ends an archive.
 */
#include <lzma.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "../lib/error.h"
#include "initrd.h"
#include "inspect.h"

#define CHUNK (256u * 1024)
#define NAME_MAX_LEN 4096
#define MAX_ENTRIES (1u << 20)
#define MAX_OUTPUT (UINT64_C (4) << 30)   /* decompressed bytes */
#define MAX_SEGMENTS 64

enum cpio_state { C_HDR, C_NAME, C_SKIP, C_END };

struct cpio {
    enum cpio_state state;
    unsigned char hdr[110];
    size_t hlen;
    char name[NAME_MAX_LEN];
    size_t nlen, namesize;
    uint64_t skip;                  /* name padding, data, data padding */
    uint64_t filesize;
    uint64_t entries;
    int (*fn) (void *opaque, const char *name);
    void *opaque;
    int stopped;                    /* fn's non-zero value */
    bool bad;
};

static bool
hex8 (const unsigned char *p, uint64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        unsigned c = p[i], d;

        if (c >= '0' && c <= '9') {
            d = c - '0';
        }
        else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        }
        else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        }
        else {
            return false;
        }
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Consume up to N bytes of an archive: the bytes used (fewer than N only
 * when the archive ended, failed or the callback stopped). */
static size_t
cpio_feed (struct cpio *c, const unsigned char *p, size_t n)
{
    size_t used = 0;

    while (used < n && c->state != C_END && !c->bad && c->stopped == 0) {
        switch (c->state) {
        case C_HDR: {
            size_t k = sizeof c->hdr - c->hlen;
            uint64_t ns;

            if (k > n - used) {
                k = n - used;
            }
            memcpy (c->hdr + c->hlen, p + used, k);
            c->hlen += k;
            used += k;
            if (c->hlen < sizeof c->hdr) {
                break;
            }
            if (memcmp (c->hdr, "07070", 5) != 0 ||
                (c->hdr[5] != '1' && c->hdr[5] != '2') ||
                !hex8 (c->hdr + 6 + 6 * 8, &c->filesize) ||
                !hex8 (c->hdr + 6 + 11 * 8, &ns) || ns == 0 ||
                ns > NAME_MAX_LEN) {
                vmc_error ("bad cpio header after %llu entries",
                           (unsigned long long) c->entries);
                c->bad = true;
                break;
            }
            if (++c->entries > MAX_ENTRIES) {
                vmc_error ("more than %u files", MAX_ENTRIES);
                c->bad = true;
                break;
            }
            c->namesize = (size_t) ns;
            c->nlen = 0;
            c->state = C_NAME;
            break;
        }
        case C_NAME: {
            size_t k = c->namesize - c->nlen;

            if (k > n - used) {
                k = n - used;
            }
            memcpy (c->name + c->nlen, p + used, k);
            c->nlen += k;
            used += k;
            if (c->nlen < c->namesize) {
                break;
            }
            c->name[c->namesize - 1] = '\0';
            c->skip = (4 - (sizeof c->hdr + c->namesize) % 4) % 4;
            if (strcmp (c->name, "TRAILER!!!") == 0) {
                c->state = C_END;
                /* The trailer's padding is zeros like the gap to the
                 * next archive: the caller skips both. */
                break;
            }
            c->skip += c->filesize + (4 - c->filesize % 4) % 4;
            c->stopped = c->fn (c->opaque, c->name);
            c->state = C_SKIP;
            break;
        }
        case C_SKIP: {
            uint64_t k = c->skip;

            if (k > n - used) {
                k = n - used;
            }
            c->skip -= k;
            used += (size_t) k;
            if (c->skip == 0) {
                c->state = C_HDR;
                c->hlen = 0;
            }
            break;
        }
        case C_END:
            break;
        }
    }
    return used;
}

/* The initramfs file, read through PREAD: N bytes at OFF into BUF, the
 * count read (0 at the end) or -1 with a message. */
struct reader {
    ssize_t (*pread) (void *src, void *buf, size_t n, uint64_t off);
    void *src;
    uint64_t size, off;             /* the file; the next byte to read */
    unsigned char *buf;
    size_t pos, len;                /* the unread bytes are buf[pos..len) */
    uint64_t total;                 /* decompressed bytes, all archives */
};

/* Make sure some bytes are buffered: 1 when there are, 0 at the end of
 * the file, -1 on an error. */
static int
fill (struct reader *r)
{
    ssize_t n;

    if (r->pos < r->len) {
        return 1;
    }
    if (r->off >= r->size) {
        return 0;
    }
    n = r->pread (r->src, r->buf, CHUNK, r->off);
    if (n < 0) {
        return -1;
    }
    if (n == 0) {
        vmc_error ("the file ends before its size");
        return -1;
    }
    r->off += (uint64_t) n;
    r->pos = 0;
    r->len = (size_t) n;
    return 1;
}

static void
cpio_restart (struct cpio *c)
{
    c->state = C_HDR;
    c->hlen = 0;
}

/* The bound is on the whole file, not on each compressed archive: a file
 * of many small archives that each decompress to nearly MAX_OUTPUT would
 * otherwise take minutes. */
static int
out_feed (struct reader *r, struct cpio *c, const unsigned char *p,
          size_t n)
{
    r->total += n;
    if (r->total > MAX_OUTPUT) {
        vmc_error ("decompresses to more than %llu bytes",
                   (unsigned long long) MAX_OUTPUT);
        return -1;
    }
    while (n > 0 && !c->bad && c->stopped == 0) {
        size_t u = cpio_feed (c, p, n);

        p += u;
        n -= u;
        if (c->state == C_END) {
            /* Another archive may follow inside the same stream, after
             * zero padding. */
            while (n > 0 && *p == 0) {
                p++;
                n--;
            }
            if (n > 0) {
                cpio_restart (c);
            }
            else {
                break;
            }
        }
    }
    return c->bad ? -1 : 0;
}

static int
do_gzip (struct reader *r, struct cpio *c, unsigned char *out)
{
    z_stream z;
    int ret = Z_OK, f;

    memset (&z, 0, sizeof z);
    if (inflateInit2 (&z, 16 + MAX_WBITS) != Z_OK) {
        vmc_error ("zlib: cannot start");
        return -1;
    }
    while (ret != Z_STREAM_END && c->stopped == 0) {
        if ((f = fill (r)) <= 0) {
            inflateEnd (&z);
            if (f == 0) {
                vmc_error ("gzip stream cut short");
            }
            return -1;
        }
        z.next_in = r->buf + r->pos;
        z.avail_in = (uInt) (r->len - r->pos);
        z.next_out = out;
        z.avail_out = CHUNK;
        ret = inflate (&z, Z_NO_FLUSH);
        if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
            inflateEnd (&z);
            vmc_error ("gzip: %s", z.msg != NULL ? z.msg : "corrupt data");
            return -1;
        }
        r->pos = r->len - z.avail_in;
        if (out_feed (r, c, out, CHUNK - z.avail_out) < 0) {
            inflateEnd (&z);
            return -1;
        }
    }
    inflateEnd (&z);
    return 0;
}

static int
do_zstd (struct reader *r, struct cpio *c, unsigned char *out)
{
    ZSTD_DStream *z = ZSTD_createDStream ();
    size_t ret = 1;
    int f;

    if (z == NULL) {
        vmc_error ("zstd: cannot start");
        return -1;
    }
    /* One frame; the kernel takes one per archive. */
    while (ret != 0 && c->stopped == 0) {
        ZSTD_inBuffer ib;
        ZSTD_outBuffer ob = { out, CHUNK, 0 };

        if ((f = fill (r)) <= 0) {
            ZSTD_freeDStream (z);
            if (f == 0) {
                vmc_error ("zstd stream cut short");
            }
            return -1;
        }
        ib.src = r->buf + r->pos;
        ib.size = r->len - r->pos;
        ib.pos = 0;
        ret = ZSTD_decompressStream (z, &ob, &ib);
        if (ZSTD_isError (ret)) {
            vmc_error ("zstd: %s", ZSTD_getErrorName (ret));
            ZSTD_freeDStream (z);
            return -1;
        }
        r->pos += ib.pos;
        if (out_feed (r, c, out, ob.pos) < 0) {
            ZSTD_freeDStream (z);
            return -1;
        }
    }
    ZSTD_freeDStream (z);
    return 0;
}

static int
do_xz (struct reader *r, struct cpio *c, unsigned char *out)
{
    lzma_stream z = LZMA_STREAM_INIT;
    lzma_ret ret = LZMA_OK;
    int f;

    if (lzma_stream_decoder (&z, UINT64_C (1) << 30, 0) != LZMA_OK) {
        vmc_error ("xz: cannot start");
        return -1;
    }
    while (ret != LZMA_STREAM_END && c->stopped == 0) {
        if ((f = fill (r)) <= 0) {
            lzma_end (&z);
            if (f == 0) {
                vmc_error ("xz stream cut short");
            }
            return -1;
        }
        z.next_in = r->buf + r->pos;
        z.avail_in = r->len - r->pos;
        z.next_out = out;
        z.avail_out = CHUNK;
        ret = lzma_code (&z, LZMA_RUN);
        if (ret != LZMA_OK && ret != LZMA_STREAM_END) {
            lzma_end (&z);
            vmc_error ("xz: corrupt data (code %d)", (int) ret);
            return -1;
        }
        r->pos = r->len - z.avail_in;
        if (out_feed (r, c, out, CHUNK - z.avail_out) < 0) {
            lzma_end (&z);
            return -1;
        }
    }
    lzma_end (&z);
    return 0;
}

/* Every archive of the file R reads: see initrd_list.  PATH names it in
 * messages. */
static int
list_reader (struct reader *r, const char *path,
             int (*fn) (void *opaque, const char *name), void *opaque,
             char *why, size_t whycap)
{
    struct cpio *c = NULL;
    unsigned char *out = NULL;
    int ret = -1, f;

    if (why != NULL && whycap > 0) {
        why[0] = '\0';
    }
    r->buf = malloc (CHUNK);
    out = malloc (CHUNK);
    c = calloc (1, sizeof *c);
    if (r->buf == NULL || out == NULL || c == NULL) {
        vmc_perror ("malloc");
        goto out;
    }
    c->fn = fn;
    c->opaque = opaque;
    for (unsigned seg = 0; seg < MAX_SEGMENTS && c->stopped == 0; seg++) {
        unsigned char m[6];
        size_t have;

        /* Zero padding between archives. */
        for (;;) {
            if ((f = fill (r)) < 0) {
                goto out;
            }
            if (f == 0) {
                ret = 0;
                goto out;
            }
            while (r->pos < r->len && r->buf[r->pos] == 0) {
                r->pos++;
            }
            if (r->pos < r->len) {
                break;
            }
        }
        /* Enough bytes to see the magic (the chunk boundary is rare). */
        have = r->len - r->pos;
        if (have < sizeof m) {
            if (r->off < r->size) {
                memmove (r->buf, r->buf + r->pos, have);
                r->len = have;
                r->pos = 0;
                {
                    ssize_t n = r->pread (r->src, r->buf + have,
                                          CHUNK - have, r->off);

                    if (n < 0) {
                        goto out;
                    }
                    r->off += (uint64_t) n;
                    r->len += (size_t) n;
                    have = r->len;
                }
            }
            if (have < sizeof m) {
                ret = 0;            /* trailing bytes: nothing more */
                goto out;
            }
        }
        memcpy (m, r->buf + r->pos, sizeof m);
        cpio_restart (c);
        if (memcmp (m, "07070", 5) == 0) {
            while (c->state != C_END && c->stopped == 0) {
                if ((f = fill (r)) <= 0) {
                    if (f == 0) {
                        vmc_error ("cpio archive cut short");
                    }
                    goto out;
                }
                r->pos += cpio_feed (c, r->buf + r->pos, r->len - r->pos);
                if (c->bad) {
                    goto out;
                }
            }
        }
        else if (m[0] == 0x1f && (m[1] == 0x8b || m[1] == 0x9e)) {
            if (do_gzip (r, c, out) < 0) {
                goto out;
            }
        }
        else if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f &&
                 m[3] == 0xfd) {
            if (do_zstd (r, c, out) < 0) {
                goto out;
            }
        }
        else if (m[0] == 0xfd && memcmp (m + 1, "7zXZ", 4) == 0) {
            if (do_xz (r, c, out) < 0) {
                goto out;
            }
        }
        else {
            const char *what = m[0] == 0x02 && m[1] == 0x21 ? "lz4" :
                               m[0] == 'B' && m[1] == 'Z' ? "bzip2" :
                               m[0] == 0x5d && m[1] == 0 ? "lzma" :
                               m[0] == 0x89 && m[1] == 'L' ? "lzo" :
                               "an unknown format";

            if (why != NULL) {
                snprintf (why, whycap, "%s is compressed with %s, which is "
                          "not read here", path, what);
            }
            ret = 1;
            goto out;
        }
    }
    ret = 0;
out:
    if (ret < 0) {
        vmc_error_prefix ("%s", path);
    }
    free (c);
    free (out);
    free (r->buf);
    r->buf = NULL;
    return ret;
}

/* A file of a tree as the reader's source. */
struct tree_src {
    const struct tree *t;
    struct tree_node node;
};

static ssize_t
tree_src_pread (void *src, void *buf, size_t n, uint64_t off)
{
    struct tree_src *s = src;
    const struct tree_mount *m = &s->t->m[s->node.mount];

    return m->ops->pread (m->priv, s->node.ino, buf, n, off);
}

int
initrd_list (const struct tree *t, const char *path,
             int (*fn) (void *opaque, const char *name), void *opaque,
             char *why, size_t whycap)
{
    struct tree_src s = { .t = t };
    struct reader r = { .pread = tree_src_pread, .src = &s };
    const struct tree_mount *m;
    struct file_stat st;
    int f;

    f = tree_lookup (t, path, true, &s.node);
    if (f != 0) {
        if (f == 1) {
            vmc_error ("%s: no such file", path);
        }
        return -1;
    }
    m = &t->m[s.node.mount];
    if (m->ops->stat (m->priv, s.node.ino, &st) < 0) {
        return -1;
    }
    r.size = st.size;
    return list_reader (&r, path, fn, opaque, why, whycap);
}

/* A buffer as the reader's source. */
struct mem_src {
    const unsigned char *p;
    size_t len;
};

static ssize_t
mem_src_pread (void *src, void *buf, size_t n, uint64_t off)
{
    struct mem_src *s = src;

    if (off >= s->len) {
        return 0;
    }
    if (n > s->len - off) {
        n = s->len - (size_t) off;
    }
    memcpy (buf, s->p + off, n);
    return (ssize_t) n;
}

int
initrd_list_mem (const void *buf, size_t len,
                 int (*fn) (void *opaque, const char *name), void *opaque,
                 char *why, size_t whycap)
{
    struct mem_src s = { buf, len };
    struct reader r = { .pread = mem_src_pread, .src = &s, .size = len };

    return list_reader (&r, "(memory)", fn, opaque, why, whycap);
}


struct drv_seen {
    signed char *in;
};

static int
seen_name (void *opaque, const char *name)
{
    struct drv_seen *s = opaque;
    const char *b = strrchr (name, '/');
    char mod[64];
    size_t o = 0;

    b = b != NULL ? b + 1 : name;
    if (strstr (b, ".ko") == NULL) {
        return 0;
    }
    for (; *b != '\0' && *b != '.' && o + 1 < sizeof mod; b++) {
        mod[o++] = *b == '-' ? '_' : *b;
    }
    mod[o] = '\0';
    for (int d = 0; d < DRV_COUNT; d++) {
        if (strcmp (mod, insp_driver_names[d]) == 0) {
            s->in[d] = 1;
        }
    }
    return 0;
}

void
initrd_drivers (const struct tree *t, const char *path, const char *kdrv,
                signed char *in, char *why, size_t whycap)
{
    struct drv_seen s = { in };
    int r;

    for (int d = 0; d < DRV_COUNT; d++) {
        in[d] = kdrv[d] == 'y' ? 1 : 0;
    }
    r = initrd_list (t, path, seen_name, &s, why, whycap);
    if (r != 0) {
        if (r < 0) {
            snprintf (why, whycap, "%s", vmc_get_error ());
        }
        for (int d = 0; d < DRV_COUNT; d++) {
            in[d] = kdrv[d] == 'y' ? 1 : -1;
        }
    }
}
