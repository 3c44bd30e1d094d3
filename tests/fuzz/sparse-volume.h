/* SPDX-License-Identifier: MIT */
/*
 * The sparse input of the XFS fuzz targets (fuzz-xfs.c, fuzz-files-xfs.c):
 * the smallest XFS is 64 MiB, almost all zeros, far above what the fuzzer
 * mutates well.  So an input is a sequence of segments, each a big-endian
 * u32 offset in 512-byte sectors, a big-endian u16 byte count, then that
 * many bytes, laid over a 64 MiB volume of zeros (a truncated segment
 * still counts).  tests/fuzz/mkseed-sparse.py makes such seeds.
 */
#ifndef VMC_FUZZ_SPARSE_VOLUME_H
#define VMC_FUZZ_SPARSE_VOLUME_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/lib/byteorder.h"
#include "../../converter/lib/image.h"

#define SPARSE_VOL_SIZE (64u << 20)
#define SPARSE_MAX_SEGS 4096

static unsigned char *sparse_vol;
static struct { uint64_t off, len; } sparse_segs[SPARSE_MAX_SEGS];
static size_t sparse_nsegs;

/* The volume DATA describes, as a raw image in memory (NULL when it
 * cannot be opened).  The previous input's segments are zeroed first:
 * one 64 MiB buffer serves every input. */
static struct image *
sparse_volume_image (const uint8_t *data, size_t size)
{
    size_t p = 0;

    if (sparse_vol == NULL) {
        sparse_vol = calloc (1, SPARSE_VOL_SIZE);
        if (sparse_vol == NULL)
            abort ();
    }
    for (size_t i = 0; i < sparse_nsegs; i++)
        memset (sparse_vol + sparse_segs[i].off, 0, sparse_segs[i].len);
    sparse_nsegs = 0;
    while (p + 6 <= size && sparse_nsegs < SPARSE_MAX_SEGS) {
        uint64_t off = (uint64_t) get_be32 (data + p) * 512;
        size_t len = get_be16 (data + p + 4);

        p += 6;
        if (len > size - p)
            len = size - p;
        if (off < SPARSE_VOL_SIZE) {
            size_t n = len < SPARSE_VOL_SIZE - off ? len :
                       SPARSE_VOL_SIZE - off;
            memcpy (sparse_vol + off, data + p, n);
            sparse_segs[sparse_nsegs].off = off;
            sparse_segs[sparse_nsegs].len = n;
            sparse_nsegs++;
        }
        p += len;
    }
    return image_open_memory (sparse_vol, SPARSE_VOL_SIZE, "raw",
                              IMAGE_OPEN_NO_BACKING);
}

#endif
