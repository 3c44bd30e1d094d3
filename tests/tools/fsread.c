/* SPDX-License-Identifier: MIT */
/*
 * fsread: read files from filesystems in images through the library's
 * tree (converter/fs/files.h), for tests that judge it against the source
 * directory the filesystem was made from.
 *
 *   fsread [--mount PATH=IMG:OFFSET:SIZE:TYPE]... IMG OFFSET SIZE TYPE CMD P
 *
 * The root filesystem is [OFFSET, OFFSET + SIZE) of IMG (SIZE 0: to the
 * end), of TYPE (ext2, ext3, ext4, vfat, xfs); each --mount adds one more
 * at PATH, in order.  CMD, on path P:
 *
 *   ls        one "KIND NAME" line per entry (KIND f, d, l or o), sorted
 *   cat       the file's bytes (tree_read_file, at most 1 GiB)
 *   head N    its first N bytes (tree_read_head)
 *   stat      "kind=K size=S mode=M uid=U gid=G mtime=T" (symlinks followed)
 *   lstat     the same, not following a last symlink
 *   readlink  the symlink's target
 *   find      every entry below P, recursively (symlinks not followed),
 *             one line each: "KIND SIZE PERM SHA256 PATH", SIZE "-" for
 *             directories, PERM in octal, SHA256 "-" but for regular
 *             files, PATH relative to P, and " -> TARGET" for symlinks
 *
 * Exit 0; 3 when P does not exist; 1 with a message on any other error;
 * 2 on a usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../../converter/fs/files.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "../../converter/lib/options.h"

#define MAX_IMAGES (TREE_MAX_MOUNTS)
#define FIND_MAX_DEPTH 64
#define FIND_MAX_ENTRIES 2000000
#define CHUNK (1u << 20)

static struct image *images[MAX_IMAGES];
static size_t nimages;
static struct tree tree;
static unsigned long find_entries;

static void
usage (void)
{
    fprintf (stderr, "usage: fsread [--mount PATH=IMG:OFFSET:SIZE:TYPE]... "
             "IMG OFFSET SIZE TYPE ls|cat|head N|stat|lstat|readlink|find "
             "PATH\n");
    exit (2);
}

static void
die (void)
{
    fprintf (stderr, "fsread: %s\n", vmc_get_error ());
    exit (1);
}

/* Open IMG and mount [OFF, OFF + SIZE) of it, of TYPE, at PATH. */
static void
mount_one (const char *path, const char *file, const char *off,
           const char *size, const char *type)
{
    uint64_t o, s;
    struct image *img;
    struct volume v;

    if (parse_size (off, &o) < 0 || parse_size (size, &s) < 0)
        die ();
    if (nimages >= MAX_IMAGES) {
        fprintf (stderr, "fsread: too many images\n");
        exit (2);
    }
    img = image_open (file, NULL, 0);
    if (img == NULL)
        die ();
    images[nimages++] = img;
    if (o > img->size) {
        fprintf (stderr, "fsread: %s: offset past the end\n", file);
        exit (1);
    }
    if (s == 0 || s > img->size - o)
        s = img->size - o;
    volume_of_image (&v, file, img, o, s);
    if (tree_mount (&tree, path, &v, type) < 0)
        die ();
}

/* PATH=IMG:OFFSET:SIZE:TYPE, split from the right so that IMG may hold
 * ':'. */
static void
mount_spec (char *spec)
{
    char *eq = strchr (spec, '='), *type, *size, *off;

    if (eq == NULL)
        usage ();
    *eq = 0;
    type = strrchr (eq + 1, ':');
    if (type == NULL)
        usage ();
    *type++ = 0;
    size = strrchr (eq + 1, ':');
    if (size == NULL)
        usage ();
    *size++ = 0;
    off = strrchr (eq + 1, ':');
    if (off == NULL)
        usage ();
    *off++ = 0;
    mount_one (spec, eq + 1, off, size, type);
}

static char
kind_char (enum file_kind k)
{
    switch (k) {
    case FK_REG: return 'f';
    case FK_DIR: return 'd';
    case FK_LNK: return 'l';
    default: return 'o';
    }
}

static int
ls_cb (void *opaque, const char *name, enum file_kind kind)
{
    (void) opaque;
    printf ("%c %s\n", kind_char (kind), name);
    return 0;
}

/* The SHA-256 of regular file PATH, read in chunks through its
 * filesystem's pread, into HEX. */
static int
hash_file (const char *path, char hex[65])
{
    static unsigned char buf[CHUNK];
    const struct tree_mount *m;
    struct tree_node n;
    unsigned char md[32];
    unsigned int mdlen = 0;
    uint64_t off = 0;
    EVP_MD_CTX *ctx;
    int r;

    r = tree_lookup (&tree, path, false, &n);
    if (r != 0)
        return -1;
    m = &tree.m[n.mount];
    ctx = EVP_MD_CTX_new ();
    if (ctx == NULL || EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) != 1) {
        vmc_error ("cannot start SHA-256");
        EVP_MD_CTX_free (ctx);
        return -1;
    }
    for (;;) {
        ssize_t got = m->ops->pread (m->priv, n.ino, buf, sizeof buf, off);

        if (got < 0) {
            EVP_MD_CTX_free (ctx);
            return -1;
        }
        if (got == 0)
            break;
        EVP_DigestUpdate (ctx, buf, (size_t) got);
        off += (uint64_t) got;
    }
    EVP_DigestFinal_ex (ctx, md, &mdlen);
    EVP_MD_CTX_free (ctx);
    for (unsigned i = 0; i < 32; i++)
        snprintf (hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

struct find_dir {
    const char *abs;                /* "/a/b" ("/" for the root) */
    const char *rel;                /* "a/b" below the starting point, "" */
    int depth;
};

static int find_cb (void *opaque, const char *name, enum file_kind kind);

static void
find_in (const char *abs, const char *rel, int depth)
{
    struct find_dir d = { abs, rel, depth };
    bool exists;

    if (depth > FIND_MAX_DEPTH) {
        fprintf (stderr, "fsread: %s: deeper than %d\n", abs, FIND_MAX_DEPTH);
        exit (1);
    }
    if (tree_list (&tree, abs, &exists, find_cb, &d) != 0)
        die ();
    if (!exists) {
        fprintf (stderr, "fsread: %s: no such file or directory\n", abs);
        exit (3);
    }
}

static int
find_cb (void *opaque, const char *name, enum file_kind kind)
{
    const struct find_dir *d = opaque;
    struct file_stat st;
    char *abs, *rel, hex[65] = "-", target[4096];
    char size[32];

    (void) kind;
    if (++find_entries > FIND_MAX_ENTRIES) {
        fprintf (stderr, "fsread: more than %d entries\n", FIND_MAX_ENTRIES);
        exit (1);
    }
    if (asprintf (&abs, "%s/%s", strcmp (d->abs, "/") == 0 ? "" : d->abs,
                  name) < 0 ||
        asprintf (&rel, "%s%s%s", d->rel, *d->rel ? "/" : "", name) < 0) {
        fprintf (stderr, "fsread: out of memory\n");
        exit (1);
    }
    if (tree_stat (&tree, abs, false, &st) != 0)
        die ();
    snprintf (size, sizeof size, "%" PRIu64, st.size);
    if (st.kind == FK_DIR)
        snprintf (size, sizeof size, "-");
    if (st.kind == FK_REG && hash_file (abs, hex) < 0)
        die ();
    printf ("%c %s %o %s %s", kind_char (st.kind), size, st.mode & 07777,
            hex, rel);
    if (st.kind == FK_LNK) {
        if (tree_readlink (&tree, abs, target, sizeof target) < 0)
            die ();
        printf (" -> %s", target);
    }
    printf ("\n");
    if (st.kind == FK_DIR)
        find_in (abs, rel, d->depth + 1);
    free (abs);
    free (rel);
    return 0;
}

static void
print_stat (const struct file_stat *st)
{
    printf ("kind=%c size=%" PRIu64 " mode=0%o uid=%" PRIu32 " gid=%" PRIu32
            " mtime=%" PRId64 "\n", kind_char (st->kind), st->size, st->mode,
            st->uid, st->gid, st->mtime);
}

int
main (int argc, char **argv)
{
    const char *cmd, *path;
    int i = 1, r;

    tree_init (&tree);
    while (i < argc && strcmp (argv[i], "--mount") == 0) {
        if (i + 1 >= argc)
            usage ();
        i += 2;
    }
    if (argc - i < 6)
        usage ();
    mount_one ("/", argv[i], argv[i + 1], argv[i + 2], argv[i + 3]);
    for (int k = 1; k < argc && strcmp (argv[k], "--mount") == 0; k += 2)
        mount_spec (argv[k + 1]);
    cmd = argv[i + 4];
    path = argv[i + 5];

    if (strcmp (cmd, "ls") == 0 && argc - i == 6) {
        bool exists;

        if (tree_list (&tree, path, &exists, ls_cb, NULL) != 0)
            die ();
        if (!exists) {
            fprintf (stderr, "fsread: %s: no such file or directory\n", path);
            return 3;
        }
    }
    else if (strcmp (cmd, "cat") == 0 && argc - i == 6) {
        char *buf;
        size_t len;

        r = tree_read_file (&tree, path, 1u << 30, &buf, &len);
        if (r < 0)
            die ();
        if (r > 0) {
            fprintf (stderr, "fsread: %s: no such file or directory\n", path);
            return 3;
        }
        if (fwrite (buf, 1, len, stdout) != len)
            return 1;
        free (buf);
    }
    else if (strcmp (cmd, "head") == 0 && argc - i == 7) {
        uint64_t n;
        char *buf;
        ssize_t got;

        path = argv[i + 6];
        if (parse_size (argv[i + 5], &n) < 0 || n > (1u << 30))
            usage ();
        buf = malloc (n + 1);
        if (buf == NULL)
            return 1;
        got = tree_read_head (&tree, path, buf, (size_t) n);
        if (got < 0)
            die ();
        if (fwrite (buf, 1, (size_t) got, stdout) != (size_t) got)
            return 1;
        free (buf);
    }
    else if ((strcmp (cmd, "stat") == 0 || strcmp (cmd, "lstat") == 0) &&
             argc - i == 6) {
        struct file_stat st;

        r = tree_stat (&tree, path, strcmp (cmd, "stat") == 0, &st);
        if (r < 0)
            die ();
        if (r > 0) {
            fprintf (stderr, "fsread: %s\n", vmc_get_error ());
            return 3;
        }
        print_stat (&st);
    }
    else if (strcmp (cmd, "readlink") == 0 && argc - i == 6) {
        char target[4096];

        if (tree_readlink (&tree, path, target, sizeof target) < 0)
            die ();
        printf ("%s\n", target);
    }
    else if (strcmp (cmd, "find") == 0 && argc - i == 6)
        find_in (path, "", 0);
    else
        usage ();

    tree_free (&tree);
    for (size_t k = 0; k < nimages; k++)
        image_close (images[k]);
    return fflush (stdout) == 0 ? 0 : 1;
}
