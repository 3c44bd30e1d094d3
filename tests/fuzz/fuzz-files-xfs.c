/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: reading files out of XFS (converter/fs/fs-xfs-files.c).
 *
 * The input is a sparse image, as for fuzz-xfs.c: segments of a
 * big-endian u32 offset in 512-byte sectors, a big-endian u16 byte count
 * and that many bytes, laid over a 64 MiB volume of zeros (a truncated
 * segment still counts).  The filesystem is opened through fs_files_xfs
 * and walked as guest inspection would: every directory (depth and entry
 * count bounded), each entry stat'ed and looked up by name, the first and
 * last bytes of every regular file read, every symlink read.  What must
 * hold whatever the input: a name readdir gave is found by lookup, reads
 * return at most what was asked and nothing past the size stat gave, a
 * symlink's length is its size and its target a string of that length.
 *
 * Seeds (corpus/files-xfs) are the non-zero sectors of small filesystems
 * (TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -d agcount=2 ... on a
 * 64 MiB file; the variables lift the 300 MiB minimum) holding a short-form, a block, a leaf and a
 * node directory (hard links, so few inodes), a file in btree format
 * (written in interleaved zero-filled pieces, so its data costs nothing),
 * files with holes and inline and remote symlinks; then the log and every
 * free inode (magic "IN", mode 0) overwritten with zeros, which this
 * reader never reads, and the rest through tests/fuzz/mkseed-sparse.py:
 *   v5-1k  -b size=1024 -m reflink=0, mounted and filled by the kernel;
 *   v5-4k  the default 4 KiB blocks, the same way;
 *   v4-1k  -m crc=0 -b size=1024 -n ftype=0, filled by mkfs.xfs -p;
 *   v4-512 -m crc=0 -b size=512 -i size=256, filled by mkfs.xfs -p.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fs/files.h"
#include "../../converter/fs/fs.h"
#include "../../converter/fs/xfs.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "sparse-volume.h"

#define MAX_DEPTH 8
#define MAX_ENTRIES 4000                /* per input, over all directories */
#define MAX_LOOKUPS 300
#define READ_CHUNK 8192

static const struct fs_files *ops = &fs_files_xfs;
static void *fs;
static unsigned entries, lookups;
static unsigned char rbuf[READ_CHUNK];

static void
quiet (const char *msg)
{
    (void) msg;
}

struct ent {
    char name[256];
    uint64_t ino;
};

struct list {
    struct ent e[64];
    size_t n;
};

static int
collect (void *opaque, const char *name, uint64_t ino, enum file_kind kind)
{
    struct list *l = opaque;
    size_t len = strlen (name);

    (void) kind;
    if (len == 0 || len > 255 || strchr (name, '/') != NULL)
        abort ();                   /* the reader must not pass these on */
    if (l->n == sizeof l->e / sizeof l->e[0] || ++entries > MAX_ENTRIES)
        return 1;
    memcpy (l->e[l->n].name, name, len + 1);
    l->e[l->n].ino = ino;
    l->n++;
    return 0;
}

static void
read_file (uint64_t ino, uint64_t size)
{
    uint64_t offs[3] = { 0, size / 2,
                         size > READ_CHUNK ? size - READ_CHUNK : 0 };

    for (int i = 0; i < 3; i++) {
        ssize_t n = ops->pread (fs, ino, rbuf, sizeof rbuf, offs[i]);
        if (n < 0)
            return;
        if ((size_t) n > sizeof rbuf ||
            (offs[i] < size && (uint64_t) n > size - offs[i]) ||
            (offs[i] >= size && n != 0))
            abort ();
    }
    /* Past the end: nothing. */
    if (ops->pread (fs, ino, rbuf, sizeof rbuf, size) > 0)
        abort ();
}

static void
walk (uint64_t dir, unsigned depth)
{
    /* Static per depth: an entry list is 17 KiB. */
    static struct list lists[MAX_DEPTH + 1];
    struct list *l = &lists[depth];
    uint64_t ino;

    l->n = 0;
    if (ops->readdir (fs, dir, collect, l) < 0)
        return;
    for (size_t i = 0; i < l->n; i++) {
        struct file_stat st;

        if (lookups < MAX_LOOKUPS) {
            lookups++;
            /* The walk that found the name finds it again. */
            if (ops->lookup (fs, dir, l->e[i].name, &ino) != 0)
                abort ();
        }
        if (ops->stat (fs, l->e[i].ino, &st) < 0)
            continue;
        if (st.kind == FK_REG) {
            read_file (l->e[i].ino, st.size);
        } else if (st.kind == FK_LNK) {
            char t[1100];
            ssize_t n = ops->readlink (fs, l->e[i].ino, t, sizeof t);
            if (n >= 0 && ((uint64_t) n != st.size || strlen (t) != (size_t) n))
                abort ();
        } else if (st.kind == FK_DIR && depth < MAX_DEPTH) {
            walk (l->e[i].ino, depth + 1);
        }
    }
    (void) ops->lookup (fs, dir, "no such name", &ino);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    struct image *img;
    struct volume v;

    vmc_set_warn_hook (quiet);
    img = sparse_volume_image (data, size);
    if (img == NULL)
        return 0;
    volume_of_image (&v, "fuzz", img, 0, img->size);
    if (ops->open (&v, &fs) == 0) {
        entries = lookups = 0;
        walk (ops->root (fs), 0);
        ops->close (fs);
    }
    image_close (img);
    return 0;
}
