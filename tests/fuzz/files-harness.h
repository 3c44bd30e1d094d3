/* SPDX-License-Identifier: MIT */
/*
 * The body of the file-reading fuzz targets (fuzz-files-ext.c,
 * fuzz-files-fat.c): the input is the first bytes of a volume whose rest
 * is zeros (at least 16 MiB, so that a seed of a few KiB can describe a
 * larger filesystem), mounted at "/" and again at "/mnt" of a tree, and
 * the whole tree is walked through the tree_* API as guest inspection
 * would: list every directory, stat every entry with and without
 * following, read the head and the whole of every file, read every
 * symlink, and resolve a few awkward paths.  The walk is bounded (entries
 * visited, depth); the filesystems must not loop or allocate without
 * bound on their own.  A read outside the volume aborts.
 */
#ifndef VMC_FUZZ_FILES_HARNESS_H
#define VMC_FUZZ_FILES_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fs/files.h"
#include "../../converter/lib/error.h"

#define FILES_VOLUME_MIN (16ull << 20)
#define FILES_MAX_VISITS 400
#define FILES_MAX_DEPTH 8
#define FILES_MAX_READ (256u << 10)

static void
files_quiet (const char *msg)
{
    (void) msg;
}

struct files_mem {
    const uint8_t *data;
    size_t size;
};

static int
files_mem_pread (const struct volume *v, void *buf, size_t count,
                 uint64_t offset)
{
    const struct files_mem *m = v->priv;
    size_t n = 0;

    if (offset > v->size || count > v->size - offset)
        abort ();                   /* a read past the volume */
    if (offset < m->size) {
        n = count < m->size - offset ? count : (size_t) (m->size - offset);
        memcpy (buf, m->data + offset, n);
    }
    memset ((char *) buf + n, 0, count - n);
    return 0;
}

struct files_walk {
    const struct tree *t;
    char path[1024];
    size_t len;
    int depth;
    int visits;
};

static void files_visit_dir (struct files_walk *w);

static int
files_entry (void *opaque, const char *name, enum file_kind kind)
{
    static char head[4096];
    struct files_walk *w = opaque;
    struct file_stat st;
    size_t saved = w->len, n = strlen (name);
    char target[4096], *buf;
    size_t len;

    (void) kind;
    if (++w->visits > FILES_MAX_VISITS)
        return 1;
    if (w->len + 1 + n >= sizeof w->path)
        return 0;
    if (w->len > 1)
        w->path[w->len++] = '/';
    memcpy (w->path + w->len, name, n + 1);
    w->len += n;

    if (tree_stat (w->t, w->path, false, &st) == 0) {
        if (st.kind == FK_LNK) {
            (void) tree_readlink (w->t, w->path, target, sizeof target);
            (void) tree_stat (w->t, w->path, true, &st);
        }
        if (st.kind == FK_REG) {
            (void) tree_read_head (w->t, w->path, head, sizeof head);
            if (tree_read_file (w->t, w->path, FILES_MAX_READ, &buf,
                                &len) == 0) {
                if (buf[len] != 0)
                    abort ();       /* promised NUL-terminated */
                free (buf);
            }
        }
        if (st.kind == FK_DIR && w->depth < FILES_MAX_DEPTH) {
            w->depth++;
            files_visit_dir (w);
            w->depth--;
        }
    }
    w->len = saved;
    w->path[w->len] = 0;
    return w->visits > FILES_MAX_VISITS;
}

static void
files_visit_dir (struct files_walk *w)
{
    bool exists;

    (void) tree_list (w->t, w->path, &exists, files_entry, w);
}

static int
fuzz_files (const uint8_t *data, size_t size, const char *type)
{
    static const char *const paths[] = {
        "/etc/os-release", "/..", "/mnt/..", "/mnt/../mnt/./", "/a/../../b",
        "/lost+found/../mnt/lost+found", "//x//y/", "/EFI/BOOT/BOOTX64.EFI",
    };
    struct files_mem m = { data, size };
    struct files_walk w = { 0 };
    struct volume v;
    struct tree t;

    vmc_set_warn_hook (files_quiet);
    memset (&v, 0, sizeof v);
    snprintf (v.name, sizeof v.name, "fuzz");
    v.size = size > FILES_VOLUME_MIN ? size : FILES_VOLUME_MIN;
    v.pread = files_mem_pread;
    v.priv = &m;
    tree_init (&t);
    if (tree_mount (&t, "/", &v, type) < 0)
        return 0;
    (void) tree_mount (&t, "/mnt", &v, type);
    w.t = &t;
    snprintf (w.path, sizeof w.path, "/");
    w.len = 1;
    files_visit_dir (&w);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct file_stat st;
        char b[64];

        (void) tree_stat (&t, paths[i], true, &st);
        (void) tree_read_head (&t, paths[i], b, sizeof b);
    }
    tree_free (&t);
    return 0;
}

#endif
