/* SPDX-License-Identifier: MIT */
/*
 * The copy engine: guest data from one image into a new one.
 *
 * Only data is copied: ranges the source reports as zero or unallocated are
 * skipped, and data ranges are scanned for all-zero granules (the
 * destination's write alignment, at least 4 KiB), which are skipped too, so
 * the output stays sparse.  One thread reads and scans while the calling
 * thread writes, through a small fixed ring of buffers: memory use does not
 * depend on the disk size.
 */
#ifndef VMC_COPY_H
#define VMC_COPY_H

#include <stdbool.h>
#include <stdint.h>

#include "image.h"

struct rangeset;

struct copy_params {
    bool sync;          /* fdatasync the destination at the end */
    /* The source's used ranges (converter/part/map.h), or NULL to copy
     * everything: ranges outside them are treated as zeros. */
    const struct rangeset *used;
    /* Called from the calling thread as work completes; may be NULL. */
    void (*progress) (void *opaque, uint64_t done, uint64_t total);
    void *opaque;
};

struct copy_stats {
    uint64_t data_read;     /* bytes read from the source */
    uint64_t data_written;  /* bytes handed to the destination */
};

/* Copy the first MIN(src->size, dst->size) bytes of guest data from SRC
 * into the freshly created DST, then finish DST.  The destination must not
 * be smaller than the source.  STATS may be NULL. */
int vmc_copy (struct image *src, struct image *dst,
              const struct copy_params *p, struct copy_stats *stats);

/* Compare guest contents.  Returns 0 when identical, 1 when they differ
 * (*diff_offset set to the first differing byte), -1 on error.  When sizes
 * differ, the extra part of the larger image must read as zeros, as in
 * qemu-img compare. */
int vmc_compare (struct image *a, struct image *b, uint64_t *diff_offset);

#endif
