/* SPDX-License-Identifier: MIT */
/*
 * Reading files from a filesystem on a volume, without mounting it: what
 * guest inspection needs (os-release, fstab, GRUB's configuration, the
 * kernels and their modules, network configuration, package databases).
 *
 * A filesystem that can be read this way has one fs_files table, beside
 * its fs_type (fs-ext-files.c, fs-xfs-files.c, fs-fat-files.c).  It works
 * on inode numbers only: look a name up in a directory, say what an inode
 * is, read a file's bytes, read a symlink, list a directory.  Paths,
 * symlinks, "..", mount points and loops are resolved once, above, in
 * files.c, for every filesystem alike.
 *
 * Read-only, always: nothing here writes a volume.  Every value read from
 * the volume is hostile, as in fs.h: check it, bound every allocation and
 * every loop (a directory that points to itself, an extent list that never
 * ends), and fail with a message that names the filesystem and the inode
 * ("xfs: inode 131: extent 3 starts past the end of the filesystem").
 */
#ifndef VMC_FS_FILES_H
#define VMC_FS_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs.h"

enum file_kind { FK_REG, FK_DIR, FK_LNK, FK_OTHER };

struct file_stat {
    enum file_kind kind;
    uint64_t size;          /* bytes (of a symlink: its target's length) */
    uint32_t mode;          /* permission bits and type, as st_mode */
    uint32_t uid, gid;
    int64_t mtime;          /* seconds since the epoch */
};

struct fs_files {
    const char *name;       /* the fs_type name(s) it serves: "ext" */
    /* Open the filesystem on V for reading: *PRIV set, 0; -1 with a
     * message when it cannot be read.  V stays valid until close. */
    int (*open) (const struct volume *v, void **priv);
    void (*close) (void *priv);
    /* The root directory's inode number. */
    uint64_t (*root) (void *priv);
    /* Look NAME (one component, no '/', never "." or "..") up in
     * directory DIR: 0 with *INO set, 1 when there is no such name, -1
     * on an error (message set).  DIR not a directory is an error. */
    int (*lookup) (void *priv, uint64_t dir, const char *name,
                   uint64_t *ino);
    /* What inode INO is: 0, or -1 with a message. */
    int (*stat) (void *priv, uint64_t ino, struct file_stat *st);
    /* Read up to COUNT bytes of regular file INO at OFFSET into BUF: the
     * number of bytes read (0 at or past the end of the file), or -1
     * with a message.  Holes read as zeros. */
    ssize_t (*pread) (void *priv, uint64_t ino, void *buf, size_t count,
                      uint64_t offset);
    /* Symlink INO's target into BUF (CAP bytes, NUL-terminated): its
     * length, or -1 with a message (a target of CAP bytes or more is an
     * error). */
    ssize_t (*readlink) (void *priv, uint64_t ino, char *buf, size_t cap);
    /* Call FN for each entry of directory INO except "." and "..", in
     * on-disk order, until FN returns non-zero (then return that value).
     * KIND is FK_OTHER when the directory entry does not say.  0 when
     * done, -1 on an error (message set). */
    int (*readdir) (void *priv, uint64_t ino,
                    int (*fn) (void *opaque, const char *name, uint64_t ino,
                               enum file_kind kind),
                    void *opaque);
};

/* The fs_files for a filesystem type name as fs_identify() reports it
 * ("ext2", "ext3", "ext4", "xfs", "vfat"), or NULL. */
const struct fs_files *fs_files_for (const char *type);

/* ---- A guest's tree: filesystems mounted at paths (files.c) --------- */

#define TREE_MAX_MOUNTS 32
#define TREE_MAX_LINKS 40           /* symlinks followed in one lookup */
#define TREE_MAX_DEPTH 64           /* path components */

struct tree_mount {
    char path[256];                 /* "/", "/boot", "/boot/efi" */
    const struct fs_files *ops;
    void *priv;
    struct volume vol;              /* a copy: it must outlive priv */
    char type[16];
};

/* A tree of mounted filesystems, resolved like the kernel resolves
 * paths: absolute symlinks start from the tree's root, ".." never climbs
 * above it, a mount point's path leads into the filesystem mounted
 * there. */
struct tree {
    struct tree_mount m[TREE_MAX_MOUNTS];
    size_t n;
};

void tree_init (struct tree *t);
/* Open the filesystem TYPE on V and mount it at PATH ("/" first).  The
 * volume is copied into T, and the filesystem keeps a pointer to the
 * copy: T must not move in memory until tree_free.  0, or -1 with a
 * message. */
int tree_mount (struct tree *t, const char *path, const struct volume *v,
                const char *type);
void tree_free (struct tree *t);

/* A resolved path: which mount and which inode. */
struct tree_node {
    size_t mount;
    uint64_t ino;
};

/* Resolve PATH (absolute), following symlinks when FOLLOW (always in the
 * components before the last): 0 with *N set, 1 when a component does not
 * exist, -1 on an error (a loop, too many links, a read error; message
 * set). */
int tree_lookup (const struct tree *t, const char *path, bool follow,
                 struct tree_node *n);
/* stat()/lstat(): 0, 1 (no such file), -1. */
int tree_stat (const struct tree *t, const char *path, bool follow,
               struct file_stat *st);
/* The whole regular file PATH (symlinks followed) into a new buffer,
 * NUL-terminated, *LEN set: 0; 1 when it does not exist; -1 on an error or
 * when it is larger than MAX bytes (message set). */
int tree_read_file (const struct tree *t, const char *path, size_t max,
                    char **buf, size_t *len);
/* The first COUNT bytes (or fewer) of PATH: bytes read, -1 (error or no
 * such file, message set). */
ssize_t tree_read_head (const struct tree *t, const char *path, void *buf,
                        size_t count);
/* Symlink PATH's target: length, 1 is never returned; -1 when it is not a
 * symlink or on an error. */
ssize_t tree_readlink (const struct tree *t, const char *path, char *buf,
                       size_t cap);
/* Call FN for each entry of directory PATH (symlinks followed), sorted by
 * name (bytewise, strcmp); 0 when done (also when PATH does not exist: *EXISTS false), FN's
 * non-zero value, or -1 on an error. */
int tree_list (const struct tree *t, const char *path, bool *exists,
               int (*fn) (void *opaque, const char *name,
                          enum file_kind kind),
               void *opaque);

#endif
