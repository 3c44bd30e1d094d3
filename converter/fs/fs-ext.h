/* SPDX-License-Identifier: MIT */
/*
 * What fs-ext.c shares with fs-ext-files.c: opening an ext2/3/4
 * filesystem with libext2fs over a volume, read-only, through fs-ext.c's
 * io_manager (so there is one io_manager, one superblock check).
 */
#ifndef VMC_FS_EXT_H
#define VMC_FS_EXT_H

#include <ext2fs/ext2fs.h>

#include "fs.h"

/* Check V's superblock geometry as probe() does (and refuse features
 * that would make libext2fs misread it), then open it with libext2fs,
 * read-only, without journal replay: 0 with *FS set (close it with
 * ext2fs_close_free), or -1 with a message.  V must outlive *FS.  A
 * libext2fs call on *FS that fails with EXT2_ET_SHORT_READ has left a
 * message saying which read failed. */
int ext_open_readonly (const struct volume *v, ext2_filsys *fs);

#endif
