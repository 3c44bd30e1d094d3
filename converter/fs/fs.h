/* SPDX-License-Identifier: MIT */
/*
 * Filesystems: which bytes of a volume (a partition, an LVM logical
 * volume, a whole disk) are in use.
 *
 * A filesystem is one file (fs-ext.c, fs-xfs.c, ...) with one fs_type:
 * probe() says whether the volume holds it, used() reports the byte ranges
 * in use.  The rule (DESIGN.md rule 3): never skip a block the guest might
 * need.  Anything used() does not fully understand -- an unclean
 * filesystem, counters that disagree with the bitmaps, a structure that
 * fails a check, a feature it does not know -- makes it set r->all_used
 * with r->why saying why (one line, for a warning) and return 0: the whole
 * volume is then copied.  Every value read from the volume is hostile:
 * check it before use, bound every allocation and loop.
 */
#ifndef VMC_FS_H
#define VMC_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rangeset.h"

struct image;

/* A volume: SIZE bytes read through pread (which returns 0, or -1 with a
 * message set by error.h's functions; reads are always inside SIZE). */
struct volume {
    char name[128];                 /* for messages: "disk p2", "vg0/root" */
    uint64_t size;
    int (*pread) (const struct volume *v, void *buf, size_t count,
                  uint64_t offset);
    /* For volume_of_image(). */
    struct image *img;
    uint64_t img_offset;
    void *priv;
};

/* A volume that is the range [OFFSET, OFFSET + SIZE) of IMG. */
void volume_of_image (struct volume *v, const char *name, struct image *img,
                      uint64_t offset, uint64_t size);

struct fs_result {
    char type[16];                  /* "ext4", "xfs", "ntfs", "vfat",
                                     * "exfat", "swap", ... */
    char label[64];                 /* printable, may be empty */
    char uuid[48];                  /* printable, may be empty */
    uint32_t block_size;            /* allocation unit in bytes, or 0 */
    bool all_used;                  /* the whole volume counts as used */
    bool unclean;                   /* not cleanly unmounted (a journal or
                                     * log to replay, orphans), or a swap
                                     * holding a hibernation image: the
                                     * guest was not shut down properly */
    char why[256];                  /* when all_used: the reason, one line */
    struct rangeset used;           /* volume-relative byte ranges in use
                                     * (ignored when all_used) */
};

struct fs_type {
    const char *name;
    /* 1 when the volume holds this filesystem (magic numbers and the
     * basic geometry look right), 0 when not, -1 on a read error. */
    int (*probe) (const struct volume *v);
    /* Fill r (zeroed by the caller, r->type preset to name).  0 on success
     * (including all_used), -1 only when the volume could not be read. */
    int (*used) (const struct volume *v, struct fs_result *r);
};

/* Every filesystem type, NULL-terminated, in probing order. */
extern const struct fs_type *const fs_types[];

/* Probe V against every type and fill R with the first that matches.
 * No filesystem recognised: R->type is "unknown" and all_used is set.  -1
 * on a read error. */
int fs_identify (const struct volume *v, struct fs_result *r);

void fs_result_free (struct fs_result *r);

/* Count the whole volume as used, for the reason FMT says (the first
 * reason given is kept: it is the one that decided).  Returns 0, so a
 * used() callback can `return fs_all_used (r, "...")`. */
int fs_all_used (struct fs_result *r, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* fs_all_used() for a filesystem that was not cleanly unmounted (sets
 * r->unclean too). */
int fs_unclean (struct fs_result *r, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* A label or name from disk into DST: at most N bytes of SRC, up to a
 * NUL, '?' for anything that is not printable ASCII. */
void fs_printable (char *dst, size_t dstlen, const unsigned char *src,
                   size_t n);

#endif
