/* SPDX-License-Identifier: MIT */
/*
 * Which drivers a guest's initramfs holds, read from the file itself: one
 * or more cpio archives ("newc", as the kernel's initramfs-buffer-format
 * document describes), each uncompressed or compressed with gzip, zstd or
 * xz, one after the other (an early microcode archive, then the main one).
 * Only the names are read; file contents are skipped.  The file is the
 * guest's and hostile: headers are checked, names and counts capped, the
 * decompressed size bounded.
 */
#ifndef VMC_FIXUP_INITRD_H
#define VMC_FIXUP_INITRD_H

#include <stddef.h>

#include "../fs/files.h"

/* Call FN for every file name in the initramfs PATH of tree T (until FN
 * returns non-zero).  0 when the whole file was read, 1 when its format
 * (a compression) is not one we read (WHY says which), -1 on an error
 * (message set). */
int initrd_list (const struct tree *t, const char *path,
                 int (*fn) (void *opaque, const char *name), void *opaque,
                 char *why, size_t whycap);

/* The same for an initramfs held in memory (BUF, LEN bytes): for the
 * fuzz target. */
int initrd_list_mem (const void *buf, size_t len,
                     int (*fn) (void *opaque, const char *name),
                     void *opaque, char *why, size_t whycap);

/* For each of the inspection's drivers (inspect.h's insp_driver_names,
 * DRV_COUNT of them): IN[i] = 1 when a module of that name is in the
 * initramfs PATH or KDRV[i] is 'y' (built into the kernel), 0 when not; -1
 * for all, with WHY, when the initramfs could not be read. */
void initrd_drivers (const struct tree *t, const char *path,
                     const char *kdrv, signed char *in, char *why,
                     size_t whycap);

#endif
