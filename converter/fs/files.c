/* SPDX-License-Identifier: MIT */
/*
 * A guest's tree of mounted filesystems, and the path resolver over it
 * (files.h).  The filesystems only look names up in one directory; paths
 * are resolved here, once, the way the kernel's path walk does it:
 *
 *   - component by component, left to right; empty components and "."
 *     are skipped;
 *   - ".." goes to the directory the walk came from (the walk keeps the
 *     chain of directories it went through, so ".." never reads the
 *     filesystem, never climbs above "/", and from a mount's root goes
 *     back into the filesystem it is mounted on);
 *   - a symlink met before the last component, or as the last one when
 *     following (or before a trailing '/'), is replaced by its target: an
 *     absolute target restarts the walk at the tree's root, a relative one
 *     continues from the link's directory; at most TREE_MAX_LINKS per
 *     lookup, so a loop is an error, never a hang;
 *   - when the path of the directory chain plus the next name is a
 *     mount's path, the walk enters that mount's root instead of looking
 *     the name up (mounts inside mounts nest, so the deepest one wins);
 *   - a path deeper than TREE_MAX_DEPTH directories, a name longer than
 *     TREE_NAME_MAX bytes, or a path longer than TREE_PATH_MAX bytes
 *     (also after a symlink's target is put in) is an error.
 *
 * A component that is not a directory where one is needed counts as "no
 * such file" (1), as stat() of "/etc/passwd/x" is a miss, not a failure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "files.h"

extern const struct fs_files fs_files_ext;
extern const struct fs_files fs_files_fat;
extern const struct fs_files fs_files_xfs;

#define TREE_PATH_MAX 4096          /* a path, with symlinks expanded */
#define TREE_NAME_MAX 1023          /* one component (FAT's UTF-8 names
                                     * can exceed 255 bytes) */
#define TREE_LIST_MAX 100000        /* entries in one listed directory */
#define TREE_LIST_BYTES (64u << 20) /* their names, in all */

/* The directory chain's paths are kept for matching mount paths only, so
 * a path longer than any mount's is not kept (PATH_NONE). */
#define WALK_PATH_BUF 512
#define PATH_NONE SIZE_MAX

const struct fs_files *
fs_files_for (const char *type)
{
    if (type == NULL)
        return NULL;
    if (strcmp (type, "ext2") == 0 || strcmp (type, "ext3") == 0 ||
        strcmp (type, "ext4") == 0)
        return &fs_files_ext;
    if (strcmp (type, "vfat") == 0)
        return &fs_files_fat;
    if (strcmp (type, "xfs") == 0)
        return &fs_files_xfs;
    return NULL;
}

void
tree_init (struct tree *t)
{
    memset (t, 0, sizeof *t);
}

/* A mount path: "/", or "/" and components, no empty, "." or ".."
 * component, no trailing '/'. */
static bool
mount_path_ok (const char *path)
{
    size_t len = strlen (path);
    const char *p = path;

    if (len == 0 || len >= sizeof ((struct tree_mount *) 0)->path ||
        path[0] != '/')
        return false;
    if (len == 1)
        return true;
    while (*p == '/') {
        const char *q = strchr (p + 1, '/');
        size_t n = q != NULL ? (size_t) (q - p - 1) : strlen (p + 1);

        if (n == 0 || (n == 1 && p[1] == '.') ||
            (n == 2 && p[1] == '.' && p[2] == '.'))
            return false;
        p += 1 + n;
    }
    return *p == 0;
}

int
tree_mount (struct tree *t, const char *path, const struct volume *v,
            const char *type)
{
    const struct fs_files *ops = fs_files_for (type);
    struct tree_mount *m;

    if (!mount_path_ok (path)) {
        vmc_error ("mount point \"%s\" is not a clean absolute path", path);
        return -1;
    }
    if (t->n == 0 && strcmp (path, "/") != 0) {
        vmc_error ("mount point %s: \"/\" must be mounted first", path);
        return -1;
    }
    for (size_t i = 0; i < t->n; i++)
        if (strcmp (t->m[i].path, path) == 0) {
            vmc_error ("mount point %s: already mounted", path);
            return -1;
        }
    if (t->n >= TREE_MAX_MOUNTS) {
        vmc_error ("mount point %s: more than %d mounts", path,
                   TREE_MAX_MOUNTS);
        return -1;
    }
    if (ops == NULL) {
        vmc_error ("%s: cannot read files from a %s filesystem", v->name,
                   type != NULL ? type : "(null)");
        return -1;
    }
    m = &t->m[t->n];
    memset (m, 0, sizeof *m);
    snprintf (m->path, sizeof m->path, "%s", path);
    snprintf (m->type, sizeof m->type, "%s", type);
    m->vol = *v;
    if (ops->open (&m->vol, &m->priv) < 0) {
        memset (m, 0, sizeof *m);
        return -1;
    }
    m->ops = ops;
    t->n++;
    return 0;
}

void
tree_free (struct tree *t)
{
    if (t == NULL)
        return;
    while (t->n > 0) {
        struct tree_mount *m = &t->m[--t->n];

        m->ops->close (m->priv);
        memset (m, 0, sizeof *m);
    }
}

/* ---- The walk ------------------------------------------------------- */

struct walk_dir {
    size_t mount;
    uint64_t ino;
    size_t pathlen;                 /* its path in path[], or PATH_NONE */
};

struct walk {
    struct walk_dir dir[TREE_MAX_DEPTH + 1];
    size_t depth;                   /* dir[0] is "/" */
    char path[WALK_PATH_BUF];       /* "" for "/", then "/name"... */
    size_t final_pathlen;           /* the result's path, or PATH_NONE */
    char rem[TREE_PATH_MAX];        /* what is left to resolve */
    char name[TREE_NAME_MAX + 1];
    char link[TREE_PATH_MAX];
};

/* Put "/NAME" after the directory path of length LEN: the new length, or
 * PATH_NONE when it is not kept. */
static size_t
walk_child_path (struct walk *w, size_t len, const char *name)
{
    size_t n = strlen (name);

    if (len == PATH_NONE || len + 1 + n >= sizeof w->path)
        return PATH_NONE;
    w->path[len] = '/';
    memcpy (w->path + len + 1, name, n);
    w->path[len + 1 + n] = 0;
    return len + 1 + n;
}

/* The mount (other than "/") whose path is path[0..LEN), or -1. */
static ssize_t
walk_mount_at (const struct tree *t, const struct walk *w, size_t len)
{
    if (len == PATH_NONE)
        return -1;
    for (size_t i = 1; i < t->n; i++)
        if (strlen (t->m[i].path) == len &&
            memcmp (t->m[i].path, w->path, len) == 0)
            return (ssize_t) i;
    return -1;
}

static int
walk (const struct tree *t, const char *path, bool follow, struct walk *w,
      struct tree_node *out)
{
    size_t p = 0, links = 0, len;

    if (t->n == 0) {
        vmc_error ("%s: nothing is mounted", path);
        return -1;
    }
    if (path[0] != '/') {
        vmc_error ("%s: not an absolute path", path);
        return -1;
    }
    len = strlen (path);
    if (len >= sizeof w->rem) {
        vmc_error ("%.64s...: path longer than %d bytes", path,
                   TREE_PATH_MAX - 1);
        return -1;
    }
    memcpy (w->rem, path, len + 1);
    w->depth = 1;
    w->dir[0].mount = 0;
    w->dir[0].ino = t->m[0].ops->root (t->m[0].priv);
    w->dir[0].pathlen = 0;
    w->path[0] = 0;

    for (;;) {
        const struct walk_dir *top;
        const struct tree_mount *m;
        struct tree_node node;
        struct file_stat st;
        size_t q, n, childlen;
        bool more, slash_after;
        ssize_t j;
        int r;

        while (w->rem[p] == '/')
            p++;
        if (w->rem[p] == 0) {
            /* The path ended on a directory of the chain. */
            top = &w->dir[w->depth - 1];
            out->mount = top->mount;
            out->ino = top->ino;
            w->final_pathlen = top->pathlen;
            return 0;
        }
        for (q = p; w->rem[q] != 0 && w->rem[q] != '/'; q++)
            ;
        n = q - p;
        if (n > TREE_NAME_MAX) {
            vmc_error ("%s: a name is longer than %d bytes", path,
                       TREE_NAME_MAX);
            return -1;
        }
        memcpy (w->name, w->rem + p, n);
        w->name[n] = 0;
        slash_after = w->rem[q] == '/';
        p = q;
        while (w->rem[q] == '/')
            q++;
        more = w->rem[q] != 0;

        if (strcmp (w->name, ".") == 0)
            continue;
        if (strcmp (w->name, "..") == 0) {
            if (w->depth > 1)
                w->depth--;
            continue;
        }

        top = &w->dir[w->depth - 1];
        childlen = walk_child_path (w, top->pathlen, w->name);
        j = walk_mount_at (t, w, childlen);
        if (j > 0) {
            /* A mount point: its root, whatever the directory below it
             * holds under that name. */
            node.mount = (size_t) j;
            node.ino = t->m[j].ops->root (t->m[j].priv);
            st.kind = FK_DIR;
        }
        else {
            m = &t->m[top->mount];
            node.mount = top->mount;
            r = m->ops->lookup (m->priv, top->ino, w->name, &node.ino);
            if (r < 0) {
                vmc_error_prefix ("%s", path);
                return -1;
            }
            if (r > 0) {
                vmc_error ("%s: no such file or directory", path);
                return 1;
            }
            if (m->ops->stat (m->priv, node.ino, &st) < 0) {
                vmc_error_prefix ("%s", path);
                return -1;
            }
        }

        if (st.kind == FK_LNK && (more || slash_after || follow)) {
            size_t tlen, rest = strlen (w->rem + p);
            ssize_t got;

            if (++links > TREE_MAX_LINKS) {
                vmc_error ("%s: too many levels of symbolic links (more "
                           "than %d)", path, TREE_MAX_LINKS);
                return -1;
            }
            m = &t->m[node.mount];
            got = m->ops->readlink (m->priv, node.ino, w->link,
                                    sizeof w->link);
            if (got < 0) {
                vmc_error_prefix ("%s", path);
                return -1;
            }
            tlen = strnlen (w->link, sizeof w->link);
            if (tlen == 0) {
                vmc_error ("%s: a symlink with an empty target", path);
                return 1;
            }
            if (tlen + rest >= sizeof w->rem) {
                vmc_error ("%s: path longer than %d bytes after following "
                           "symbolic links", path, TREE_PATH_MAX - 1);
                return -1;
            }
            /* The target replaces the link's name: REM becomes target +
             * what came after the name. */
            memmove (w->rem + tlen, w->rem + p, rest + 1);
            memcpy (w->rem, w->link, tlen);
            p = 0;
            if (w->link[0] == '/')
                w->depth = 1;
            continue;
        }

        if (!more && !slash_after) {
            out->mount = node.mount;
            out->ino = node.ino;
            w->final_pathlen = childlen;
            return 0;
        }
        if (st.kind != FK_DIR) {
            vmc_error ("%s: not a directory", path);
            return 1;
        }
        if (w->depth > TREE_MAX_DEPTH) {
            vmc_error ("%s: more than %d directories deep", path,
                       TREE_MAX_DEPTH);
            return -1;
        }
        w->dir[w->depth].mount = node.mount;
        w->dir[w->depth].ino = node.ino;
        w->dir[w->depth].pathlen = childlen;
        w->depth++;
    }
}

int
tree_lookup (const struct tree *t, const char *path, bool follow,
             struct tree_node *n)
{
    struct walk *w = malloc (sizeof *w);
    int r;

    if (w == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    r = walk (t, path, follow, w, n);
    free (w);
    return r;
}

int
tree_stat (const struct tree *t, const char *path, bool follow,
           struct file_stat *st)
{
    const struct tree_mount *m;
    struct tree_node n;
    int r = tree_lookup (t, path, follow, &n);

    if (r != 0)
        return r;
    m = &t->m[n.mount];
    if (m->ops->stat (m->priv, n.ino, st) < 0) {
        vmc_error_prefix ("%s", path);
        return -1;
    }
    return 0;
}

/* Regular file PATH, followed: 0 with *N and *ST set, 1, -1. */
static int
lookup_regular (const struct tree *t, const char *path, struct tree_node *n,
                struct file_stat *st)
{
    const struct tree_mount *m;
    int r = tree_lookup (t, path, true, n);

    if (r != 0)
        return r;
    m = &t->m[n->mount];
    if (m->ops->stat (m->priv, n->ino, st) < 0) {
        vmc_error_prefix ("%s", path);
        return -1;
    }
    if (st->kind != FK_REG) {
        vmc_error ("%s: not a regular file", path);
        return -1;
    }
    return 0;
}

/* Read up to COUNT bytes from the start of N into BUF. */
static ssize_t
read_head (const struct tree *t, const char *path, const struct tree_node *n,
           char *buf, size_t count)
{
    const struct tree_mount *m = &t->m[n->mount];
    size_t done = 0;

    while (done < count) {
        ssize_t got = m->ops->pread (m->priv, n->ino, buf + done,
                                     count - done, done);

        if (got < 0) {
            vmc_error_prefix ("%s", path);
            return -1;
        }
        if (got == 0)
            break;
        if ((size_t) got > count - done) {
            vmc_error ("%s: the filesystem read more than asked", path);
            return -1;
        }
        done += (size_t) got;
    }
    return (ssize_t) done;
}

int
tree_read_file (const struct tree *t, const char *path, size_t max,
                char **buf, size_t *len)
{
    struct tree_node n;
    struct file_stat st;
    ssize_t got;
    char *b;
    int r = lookup_regular (t, path, &n, &st);

    if (r != 0)
        return r;
    if (st.size > max || st.size >= SIZE_MAX) {
        vmc_error ("%s: %" PRIu64 " bytes, more than the %zu allowed", path,
                   st.size, max);
        return -1;
    }
    b = malloc ((size_t) st.size + 1);
    if (b == NULL) {
        vmc_error ("%s: out of memory for %" PRIu64 " bytes", path, st.size);
        return -1;
    }
    got = read_head (t, path, &n, b, (size_t) st.size);
    if (got < 0) {
        free (b);
        return -1;
    }
    b[got] = 0;
    *buf = b;
    *len = (size_t) got;
    return 0;
}

ssize_t
tree_read_head (const struct tree *t, const char *path, void *buf,
                size_t count)
{
    struct tree_node n;
    struct file_stat st;
    int r = lookup_regular (t, path, &n, &st);

    if (r < 0)
        return -1;
    if (r > 0) {
        vmc_error ("%s: no such file or directory", path);
        return -1;
    }
    return read_head (t, path, &n, buf, count);
}

ssize_t
tree_readlink (const struct tree *t, const char *path, char *buf,
               size_t cap)
{
    const struct tree_mount *m;
    struct tree_node n;
    struct file_stat st;
    ssize_t got;
    int r = tree_lookup (t, path, false, &n);

    if (r < 0)
        return -1;
    if (r > 0) {
        vmc_error ("%s: no such file or directory", path);
        return -1;
    }
    m = &t->m[n.mount];
    if (m->ops->stat (m->priv, n.ino, &st) < 0) {
        vmc_error_prefix ("%s", path);
        return -1;
    }
    if (st.kind != FK_LNK) {
        vmc_error ("%s: not a symbolic link", path);
        return -1;
    }
    got = m->ops->readlink (m->priv, n.ino, buf, cap);
    if (got < 0)
        vmc_error_prefix ("%s", path);
    return got;
}

/* ---- Listing -------------------------------------------------------- */

struct list_entry {
    char *name;
    enum file_kind kind;
};

struct list {
    struct list_entry *e;
    size_t n, cap, bytes;
    const char *path;
};

static int
list_add (void *opaque, const char *name, uint64_t ino, enum file_kind kind)
{
    struct list *l = opaque;
    size_t len = strlen (name);

    (void) ino;
    /* The filesystems leave these out; be sure, as a caller builds paths
     * from the names. */
    if (len == 0 || len > TREE_NAME_MAX || strchr (name, '/') != NULL ||
        strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
        return 0;
    if (l->n >= TREE_LIST_MAX || l->bytes + len + 1 > TREE_LIST_BYTES) {
        vmc_error ("%s: directory with more than %d entries (or %u bytes of "
                   "names)", l->path, TREE_LIST_MAX, TREE_LIST_BYTES);
        return 1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 64 : l->cap * 2;
        struct list_entry *e = realloc (l->e, cap * sizeof *e);

        if (e == NULL) {
            vmc_error ("%s: out of memory listing it", l->path);
            return 1;
        }
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n].name = strdup (name);
    if (l->e[l->n].name == NULL) {
        vmc_error ("%s: out of memory listing it", l->path);
        return 1;
    }
    l->e[l->n].kind = kind;
    l->n++;
    l->bytes += len + 1;
    return 0;
}

static int
list_cmp (const void *a, const void *b)
{
    const struct list_entry *x = a, *y = b;

    return strcmp (x->name, y->name);
}

int
tree_list (const struct tree *t, const char *path, bool *exists,
           int (*fn) (void *opaque, const char *name, enum file_kind kind),
           void *opaque)
{
    struct list l = { .path = path };
    const struct tree_mount *m;
    struct tree_node n;
    struct file_stat st;
    struct walk *w = malloc (sizeof *w);
    int r;

    *exists = false;
    if (w == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    r = walk (t, path, true, w, &n);
    if (r != 0) {
        free (w);
        return r < 0 ? -1 : 0;
    }
    m = &t->m[n.mount];
    if (m->ops->stat (m->priv, n.ino, &st) < 0) {
        vmc_error_prefix ("%s", path);
        r = -1;
        goto out;
    }
    if (st.kind != FK_DIR) {
        vmc_error ("%s: not a directory", path);
        r = -1;
        goto out;
    }
    *exists = true;
    r = m->ops->readdir (m->priv, n.ino, list_add, &l);
    if (r != 0) {
        if (r > 0)
            r = -1;             /* only list_add stops it, on an error */
        else
            vmc_error_prefix ("%s", path);
        goto out;
    }
    if (l.n > 1)
        qsort (l.e, l.n, sizeof *l.e, list_cmp);
    for (size_t i = 0; i < l.n; i++) {
        enum file_kind kind = l.e[i].kind;

        /* A mount point is the root of what is mounted there. */
        if (walk_mount_at (t, w, walk_child_path (w, w->final_pathlen,
                                                  l.e[i].name)) > 0)
            kind = FK_DIR;
        r = fn (opaque, l.e[i].name, kind);
        if (r != 0)
            goto out;
    }

 out:
    for (size_t i = 0; i < l.n; i++)
        free (l.e[i].name);
    free (l.e);
    free (w);
    return r;
}
