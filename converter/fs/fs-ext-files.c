/* SPDX-License-Identifier: MIT */
/*
 * Reading files from ext2, ext3 and ext4 (files.h), through libext2fs
 * (e2fsprogs), opened read-only over the volume by fs-ext.c's io_manager.
 *
 * libext2fs does the on-disk work: directories (linear, htree and inline
 * data, all through ext2fs_dir_iterate2, which reads an htree's blocks
 * linearly: the index blocks look like empty entries), files (block maps,
 * extent trees, inline data, uninitialised extents and holes as zeros,
 * through ext2fs_file_read).  Symlinks are read here: a fast symlink
 * keeps its target in i_block (ext2fs_is_fast_symlink), a slow or
 * inline-data one is read like a file.
 *
 * Inode numbers are the filesystem's own.  libext2fs checks them against
 * s_inodes_count and checks each group's inode table location before it
 * reads an inode; the io_manager refuses reads outside the volume.  Limits
 * of our own: a symlink's target is at most 4095 bytes (PATH_MAX), one
 * read is at most 1 GiB (the caller loops).  The journal is not replayed:
 * a filesystem that was not cleanly unmounted is read as it is on disk.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>

#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "files.h"
#include "fs-ext.h"

#define EXT_LINK_MAX 4096
#define EXT_READ_MAX (1u << 30)

struct ext_files {
    ext2_filsys fs;
    const struct volume *v;
};

/* Record the error ERR of an operation on inode INO.  A short read has a
 * message already (the io_manager's or the volume's): keep it, with
 * context. */
static void
ext_fail (const struct ext_files *e, ext2_ino_t ino, const char *what,
          errcode_t err)
{
    if (err == EXT2_ET_SHORT_READ)
        vmc_error_prefix ("%s: ext: inode %u: %s", e->v->name, ino, what);
    else
        vmc_error ("%s: ext: inode %u: %s: %s", e->v->name, ino, what,
                   error_message (err));
}

static int
ext_files_open (const struct volume *v, void **priv)
{
    struct ext_files *e = calloc (1, sizeof *e);

    if (e == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    if (ext_open_readonly (v, &e->fs) < 0) {
        free (e);
        return -1;
    }
    e->v = v;
    *priv = e;
    return 0;
}

static void
ext_files_close (void *priv)
{
    struct ext_files *e = priv;

    if (e == NULL)
        return;
    ext2fs_close_free (&e->fs);
    free (e);
}

static uint64_t
ext_files_root (void *priv)
{
    (void) priv;
    return EXT2_ROOT_INO;
}

/* INO as an ext2_ino_t, when it can be one. */
static int
ext_ino (const struct ext_files *e, uint64_t ino, ext2_ino_t *out)
{
    if (ino == 0 || ino > e->fs->super->s_inodes_count) {
        vmc_error ("%s: ext: inode %" PRIu64 " is out of range", e->v->name,
                   ino);
        return -1;
    }
    *out = (ext2_ino_t) ino;
    return 0;
}

static int
ext_read_inode (const struct ext_files *e, uint64_t ino, ext2_ino_t *i,
                struct ext2_inode_large *inode)
{
    errcode_t err;

    if (ext_ino (e, ino, i) < 0)
        return -1;
    memset (inode, 0, sizeof *inode);
    err = ext2fs_read_inode_full (e->fs, *i, (struct ext2_inode *) inode,
                                  sizeof *inode);
    if (err) {
        ext_fail (e, *i, "cannot read the inode", err);
        return -1;
    }
    return 0;
}

static enum file_kind
ext_kind_of_mode (uint32_t mode)
{
    if (LINUX_S_ISREG (mode))
        return FK_REG;
    if (LINUX_S_ISDIR (mode))
        return FK_DIR;
    if (LINUX_S_ISLNK (mode))
        return FK_LNK;
    return FK_OTHER;
}

static int
ext_files_lookup (void *priv, uint64_t dir, const char *name, uint64_t *ino)
{
    struct ext_files *e = priv;
    struct ext2_inode_large inode;
    ext2_ino_t d, found = 0;
    size_t len = strlen (name);
    errcode_t err;

    if (ext_read_inode (e, dir, &d, &inode) < 0)
        return -1;
    if (!LINUX_S_ISDIR (inode.i_mode)) {
        vmc_error ("%s: ext: inode %u is not a directory", e->v->name, d);
        return -1;
    }
    /* No ext name is longer than 255 bytes: such a name is not there. */
    if (len == 0 || len > EXT2_NAME_LEN)
        return 1;
    err = ext2fs_lookup (e->fs, d, name, (int) len, NULL, &found);
    if (err == EXT2_ET_FILE_NOT_FOUND)
        return 1;
    if (err) {
        ext_fail (e, d, "cannot read the directory", err);
        return -1;
    }
    *ino = found;
    return 0;
}

static int
ext_files_stat (void *priv, uint64_t ino, struct file_stat *st)
{
    struct ext_files *e = priv;
    struct ext2_inode_large inode;
    ext2_ino_t i;
    int64_t mtime;

    if (ext_read_inode (e, ino, &i, &inode) < 0)
        return -1;
    memset (st, 0, sizeof *st);
    st->kind = ext_kind_of_mode (inode.i_mode);
    st->size = EXT2_I_SIZE (&inode);
    st->mode = inode.i_mode;
    st->uid = inode_uid (inode);
    st->gid = inode_gid (inode);
    /* i_mtime is signed 32-bit seconds; in a large inode the low two bits
     * of i_mtime_extra extend it (the epoch bits, as the kernel's
     * ext4_decode_extra_time does). */
    mtime = (int32_t) inode.i_mtime;
    if (EXT2_INODE_SIZE (e->fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
        inode.i_extra_isize >= offsetof (struct ext2_inode_large,
                                         i_mtime_extra) + 4 -
        EXT2_GOOD_OLD_INODE_SIZE)
        mtime += (int64_t) (inode.i_mtime_extra & 3) << 32;
    st->mtime = mtime;
    return 0;
}

/* Read up to COUNT bytes of inode I (already read into INODE) at OFFSET
 * with ext2fs_file_read. */
static ssize_t
ext_file_read (struct ext_files *e, ext2_ino_t i,
               struct ext2_inode_large *inode, void *buf, size_t count,
               uint64_t offset)
{
    ext2_file_t f = NULL;
    unsigned int got = 0;
    errcode_t err;

    if (offset >= EXT2_I_SIZE (inode) || count == 0)
        return 0;
    if (count > EXT_READ_MAX)
        count = EXT_READ_MAX;
    /* libext2fs returns an inline-data file's whole inline area (60 bytes
     * and more), whatever its size: never ask for more than the size. */
    if (count > EXT2_I_SIZE (inode) - offset)
        count = (size_t) (EXT2_I_SIZE (inode) - offset);
    err = ext2fs_file_open2 (e->fs, i, (struct ext2_inode *) inode, 0, &f);
    if (err) {
        ext_fail (e, i, "cannot open the file", err);
        return -1;
    }
    err = ext2fs_file_llseek (f, offset, EXT2_SEEK_SET, NULL);
    if (!err)
        err = ext2fs_file_read (f, buf, (unsigned int) count, &got);
    ext2fs_file_close (f);
    if (err) {
        ext_fail (e, i, "cannot read the file", err);
        return -1;
    }
    if (got > count) {
        vmc_error ("%s: ext: inode %u: read more than asked", e->v->name, i);
        return -1;
    }
    /* An inline-data file may be longer than its inline data (mke2fs -d
     * makes a sparse file that way): past the data it reads as zeros, as
     * the kernel reads it; libext2fs stops at the data's end. */
    if ((inode->i_flags & EXT4_INLINE_DATA_FL) && got < count) {
        uint64_t left = EXT2_I_SIZE (inode) - offset - got;
        size_t z = count - got < left ? count - got : (size_t) left;

        memset ((char *) buf + got, 0, z);
        got += (unsigned int) z;
    }
    return got;
}

static ssize_t
ext_files_pread (void *priv, uint64_t ino, void *buf, size_t count,
                 uint64_t offset)
{
    struct ext_files *e = priv;
    struct ext2_inode_large inode;
    ext2_ino_t i;

    if (ext_read_inode (e, ino, &i, &inode) < 0)
        return -1;
    if (!LINUX_S_ISREG (inode.i_mode)) {
        vmc_error ("%s: ext: inode %u is not a regular file", e->v->name, i);
        return -1;
    }
    return ext_file_read (e, i, &inode, buf, count, offset);
}

static ssize_t
ext_files_readlink (void *priv, uint64_t ino, char *buf, size_t cap)
{
    struct ext_files *e = priv;
    struct ext2_inode_large inode;
    uint64_t size;
    size_t done = 0;
    ext2_ino_t i;

    if (ext_read_inode (e, ino, &i, &inode) < 0)
        return -1;
    if (!LINUX_S_ISLNK (inode.i_mode)) {
        vmc_error ("%s: ext: inode %u is not a symlink", e->v->name, i);
        return -1;
    }
    size = EXT2_I_SIZE (&inode);
    if (size == 0 || size >= EXT_LINK_MAX || size >= cap) {
        vmc_error ("%s: ext: inode %u: symlink target of %" PRIu64
                   " bytes (at most %zu)", e->v->name, i, size,
                   (cap < EXT_LINK_MAX ? cap : EXT_LINK_MAX) - 1);
        return -1;
    }
    if (ext2fs_is_fast_symlink ((struct ext2_inode *) &inode) &&
        !(inode.i_flags & EXT4_INLINE_DATA_FL)) {
        /* The target is in i_block (60 bytes; size < 60 was checked by
         * ext2fs_is_fast_symlink). */
        memcpy (buf, inode.i_block, (size_t) size);
        done = (size_t) size;
    }
    else {
        while (done < size) {
            ssize_t n = ext_file_read (e, i, &inode, buf + done,
                                       (size_t) size - done, done);

            if (n < 0)
                return -1;
            if (n == 0)
                break;
            done += (size_t) n;
        }
        if (done != size) {
            vmc_error ("%s: ext: inode %u: symlink target shorter than its "
                       "size", e->v->name, i);
            return -1;
        }
    }
    buf[done] = 0;
    if (memchr (buf, 0, done) != NULL) {
        vmc_error ("%s: ext: inode %u: symlink target holds a NUL byte",
                   e->v->name, i);
        return -1;
    }
    return (ssize_t) done;
}

struct ext_readdir {
    int (*fn) (void *opaque, const char *name, uint64_t ino,
               enum file_kind kind);
    void *opaque;
    int ret;
};

static int
ext_readdir_cb (ext2_ino_t dir, int entry, struct ext2_dir_entry *dirent,
                int offset, int blocksize, char *buf, void *priv)
{
    struct ext_readdir *r = priv;
    char name[EXT2_NAME_LEN + 1];
    int len = ext2fs_dirent_name_len (dirent);
    enum file_kind kind;

    (void) dir; (void) entry; (void) offset; (void) blocksize; (void) buf;
    /* libext2fs checked that the entry fits in its block; a name with a
     * NUL or a '/' is corrupt and is left out, as are "." and "..". */
    if (dirent->inode == 0 || len <= 0 || len > EXT2_NAME_LEN)
        return 0;
    memcpy (name, dirent->name, (size_t) len);
    name[len] = 0;
    if (memchr (name, 0, (size_t) len) != NULL ||
        memchr (name, '/', (size_t) len) != NULL ||
        strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
        return 0;
    switch (ext2fs_dirent_file_type (dirent)) {
    case EXT2_FT_REG_FILE: kind = FK_REG; break;
    case EXT2_FT_DIR: kind = FK_DIR; break;
    case EXT2_FT_SYMLINK: kind = FK_LNK; break;
    default: kind = FK_OTHER; break;
    }
    r->ret = r->fn (r->opaque, name, dirent->inode, kind);
    return r->ret != 0 ? DIRENT_ABORT : 0;
}

static int
ext_files_readdir (void *priv, uint64_t ino,
                   int (*fn) (void *opaque, const char *name, uint64_t ino,
                              enum file_kind kind),
                   void *opaque)
{
    struct ext_files *e = priv;
    struct ext2_inode_large inode;
    struct ext_readdir r = { fn, opaque, 0 };
    ext2_ino_t i;
    errcode_t err;

    if (ext_read_inode (e, ino, &i, &inode) < 0)
        return -1;
    if (!LINUX_S_ISDIR (inode.i_mode)) {
        vmc_error ("%s: ext: inode %u is not a directory", e->v->name, i);
        return -1;
    }
    err = ext2fs_dir_iterate2 (e->fs, i, 0, NULL, ext_readdir_cb, &r);
    if (r.ret != 0)
        return r.ret;
    if (err) {
        ext_fail (e, i, "cannot read the directory", err);
        return -1;
    }
    return 0;
}

const struct fs_files fs_files_ext = {
    .name = "ext",
    .open = ext_files_open,
    .close = ext_files_close,
    .root = ext_files_root,
    .lookup = ext_files_lookup,
    .stat = ext_files_stat,
    .pread = ext_files_pread,
    .readlink = ext_files_readlink,
    .readdir = ext_files_readdir,
};
