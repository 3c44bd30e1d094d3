/* SPDX-License-Identifier: MIT */
/*
 * xfsread: read files out of an XFS filesystem in an image through
 * fs_files_xfs alone (converter/fs/fs-xfs-files.c), for tests that judge
 * it against the host's view of the same files.
 *
 *   xfsread [-f FMT] [-o OFFSET] [-s SIZE] [-L] IMG find [PATH]
 *   xfsread [-f FMT] [-o OFFSET] [-s SIZE] IMG cat|stat|readlink PATH
 *
 * The volume is [OFFSET, OFFSET + SIZE) of IMG (default: all of it).
 * Paths are absolute and resolved here, one lookup() per component, never
 * following symlinks.  find prints one line per entry below PATH (PATH
 * itself not included):
 *
 *   PATH <tab> KIND <tab> SIZE <tab> MODE <tab> EXTRA
 *
 * KIND is f, d, l or o (other), SIZE bytes ("-" for directories), MODE the
 * permission bits in octal as find -printf %m prints them, EXTRA the
 * sha256 of a regular file's content, a symlink's target, else "-".  With
 * -L every entry is also looked up by name in its directory, and that
 * must give the inode readdir gave; the kind readdir gave (when the
 * directory says) must be the kind stat gives.  cat writes the file to
 * stdout; stat prints "kind size mode uid gid mtime".  Exit 0, 1 with a
 * message on an error, 2 on bad usage.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../../converter/fs/files.h"
#include "../../converter/fs/fs.h"
#include "../../converter/fs/xfs.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "../../converter/lib/options.h"

#define MAX_DEPTH 64
#define CHUNK (1u << 20)

static const struct fs_files *ops = &fs_files_xfs;
static void *fs;
static bool check_lookup;
static unsigned char *chunk;

static int
die (const char *what)
{
    fprintf (stderr, "xfsread: %s: %s\n", what, vmc_get_error ());
    return 1;
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

/* Resolve absolute PATH by lookups from the root: 0, or 1 with a message
 * on stderr. */
static int
resolve (const char *path, uint64_t *ino)
{
    char comp[256];
    const char *p = path;

    if (*p != '/') {
        fprintf (stderr, "xfsread: %s: not an absolute path\n", path);
        return 1;
    }
    *ino = ops->root (fs);
    while (*p != '\0') {
        size_t n;

        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        n = strcspn (p, "/");
        if (n >= sizeof comp) {
            fprintf (stderr, "xfsread: %s: component too long\n", path);
            return 1;
        }
        memcpy (comp, p, n);
        comp[n] = '\0';
        p += n;
        if (strcmp (comp, ".") == 0 || strcmp (comp, "..") == 0) {
            fprintf (stderr, "xfsread: %s: . and .. are not resolved\n",
                     path);
            return 1;
        }
        int rc = ops->lookup (fs, *ino, comp, ino);
        if (rc < 0)
            return die (path);
        if (rc == 1) {
            fprintf (stderr, "xfsread: %s: no such file (at %s)\n", path,
                     comp);
            return 1;
        }
    }
    return 0;
}

/* The sha256 of regular file INO (SIZE bytes) in hex into HEX. */
static int
hash_file (uint64_t ino, uint64_t size, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    unsigned char md[32];
    uint64_t off = 0;
    ssize_t n;

    if (ctx == NULL || EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) != 1) {
        fprintf (stderr, "xfsread: EVP failed\n");
        EVP_MD_CTX_free (ctx);
        return 1;
    }
    while ((n = ops->pread (fs, ino, chunk, CHUNK, off)) > 0) {
        EVP_DigestUpdate (ctx, chunk, (size_t) n);
        off += (uint64_t) n;
    }
    EVP_DigestFinal_ex (ctx, md, NULL);
    EVP_MD_CTX_free (ctx);
    if (n < 0)
        return die ("read");
    if (off != size) {
        fprintf (stderr, "xfsread: inode %" PRIu64 ": read %" PRIu64
                 " bytes of %" PRIu64 "\n", ino, off, size);
        return 1;
    }
    for (int i = 0; i < 32; i++)
        snprintf (hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

struct entry {
    char *name;
    uint64_t ino;
    enum file_kind kind;
};

struct list {
    struct entry *e;
    size_t n, cap;
};

static int
collect (void *opaque, const char *name, uint64_t ino, enum file_kind kind)
{
    struct list *l = opaque;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct entry *e = realloc (l->e, cap * sizeof *e);
        if (e == NULL)
            return 2;
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n].name = strdup (name);
    if (l->e[l->n].name == NULL)
        return 2;
    l->e[l->n].ino = ino;
    l->e[l->n].kind = kind;
    l->n++;
    return 0;
}

static int
find (const char *path, uint64_t dir, unsigned depth)
{
    struct list l = { 0 };
    int rc, ret = 0;

    if (depth > MAX_DEPTH) {
        fprintf (stderr, "xfsread: %s: too deep (a directory loop?)\n", path);
        return 1;
    }
    rc = ops->readdir (fs, dir, collect, &l);
    if (rc < 0)
        ret = die (path);
    else if (rc != 0) {
        fprintf (stderr, "xfsread: out of memory\n");
        ret = 1;
    }
    for (size_t i = 0; i < l.n && ret == 0; i++) {
        struct entry *e = &l.e[i];
        struct file_stat st;
        char *p = NULL;
        char extra[1100];
        char size[32];

        if (asprintf (&p, "%s/%s", strcmp (path, "/") == 0 ? "" : path,
                      e->name) < 0) {
            ret = 1;
            break;
        }
        if (ops->stat (fs, e->ino, &st) < 0) {
            ret = die (p);
        } else if (check_lookup &&
                   e->kind != FK_OTHER && e->kind != st.kind) {
            fprintf (stderr, "xfsread: %s: readdir says kind %c, stat %c\n",
                     p, kind_char (e->kind), kind_char (st.kind));
            ret = 1;
        }
        if (ret == 0 && check_lookup) {
            uint64_t ino;
            rc = ops->lookup (fs, dir, e->name, &ino);
            if (rc < 0)
                ret = die (p);
            else if (rc == 1 || ino != e->ino) {
                fprintf (stderr, "xfsread: %s: lookup gives %s, readdir "
                         "inode %" PRIu64 "\n", p,
                         rc == 1 ? "nothing" : "another inode", e->ino);
                ret = 1;
            }
        }
        if (ret == 0) {
            snprintf (extra, sizeof extra, "-");
            snprintf (size, sizeof size, "%" PRIu64, st.size);
            if (st.kind == FK_REG) {
                ret = hash_file (e->ino, st.size, extra);
            } else if (st.kind == FK_LNK) {
                if (ops->readlink (fs, e->ino, extra, sizeof extra) < 0)
                    ret = die (p);
            } else if (st.kind == FK_DIR) {
                snprintf (size, sizeof size, "-");
            }
        }
        if (ret == 0) {
            printf ("%s\t%c\t%s\t%o\t%s\n", p, kind_char (st.kind), size,
                    st.mode & 07777, extra);
            if (st.kind == FK_DIR)
                ret = find (p, e->ino, depth + 1);
        }
        free (p);
    }
    for (size_t i = 0; i < l.n; i++)
        free (l.e[i].name);
    free (l.e);
    return ret;
}

static int
usage (void)
{
    fprintf (stderr, "usage: xfsread [-f FMT] [-o OFFSET] [-s SIZE] [-L] IMG "
             "find [PATH] | cat PATH | stat PATH | readlink PATH\n");
    return 2;
}

int
main (int argc, char **argv)
{
    const char *fmt = NULL, *cmd, *path;
    uint64_t offset = 0, size = UINT64_MAX, ino;
    struct image *img;
    struct volume v;
    int c, rc;

    while ((c = getopt (argc, argv, "f:o:s:L")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'L': check_lookup = true; break;
        case 'o':
        case 's':
            if (parse_size (optarg, c == 'o' ? &offset : &size) < 0) {
                fprintf (stderr, "xfsread: %s\n", vmc_get_error ());
                return 2;
            }
            break;
        default:
            return usage ();
        }
    }
    if (argc - optind < 2 || argc - optind > 3)
        return usage ();
    cmd = argv[optind + 1];
    path = argc - optind == 3 ? argv[optind + 2] : NULL;
    if (path == NULL && strcmp (cmd, "find") != 0)
        return usage ();
    if (path == NULL)
        path = "/";
    chunk = malloc (CHUNK);
    if (chunk == NULL)
        return 1;
    img = image_open (argv[optind], fmt, 0);
    if (img == NULL)
        return die (argv[optind]);
    if (offset > img->size) {
        fprintf (stderr, "xfsread: offset past the end\n");
        return 1;
    }
    if (size > img->size - offset)
        size = img->size - offset;
    volume_of_image (&v, argv[optind], img, offset, size);
    if (ops->open (&v, &fs) < 0) {
        rc = die ("open");
        image_close (img);
        return rc;
    }
    rc = resolve (path, &ino);
    if (rc == 0 && strcmp (cmd, "find") == 0) {
        /* Without a trailing slash, so that "/" lists as "/name". */
        char *p = strdup (path);
        size_t n = p != NULL ? strlen (p) : 0;
        while (n > 1 && p[n - 1] == '/')
            p[--n] = '\0';
        rc = p != NULL ? find (p, ino, 0) : 1;
        free (p);
    } else if (rc == 0 && strcmp (cmd, "cat") == 0) {
        ssize_t n;
        uint64_t off = 0;

        while ((n = ops->pread (fs, ino, chunk, CHUNK, off)) > 0) {
            if (fwrite (chunk, 1, (size_t) n, stdout) != (size_t) n) {
                fprintf (stderr, "xfsread: write failed\n");
                rc = 1;
                break;
            }
            off += (uint64_t) n;
        }
        if (n < 0)
            rc = die (path);
    } else if (rc == 0 && strcmp (cmd, "stat") == 0) {
        struct file_stat st;

        if (ops->stat (fs, ino, &st) < 0)
            rc = die (path);
        else
            printf ("%c %" PRIu64 " %o %" PRIu32 " %" PRIu32 " %" PRId64 "\n",
                    kind_char (st.kind), st.size, st.mode, st.uid, st.gid,
                    st.mtime);
    } else if (rc == 0 && strcmp (cmd, "readlink") == 0) {
        char buf[1100];

        if (ops->readlink (fs, ino, buf, sizeof buf) < 0)
            rc = die (path);
        else
            printf ("%s\n", buf);
    } else if (rc == 0) {
        rc = usage ();
    }
    ops->close (fs);
    image_close (img);
    free (chunk);
    if (fflush (stdout) != 0)
        rc = 1;
    return rc;
}
