/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the XFS used-block map (converter/fs/fs-xfs.c).
 *
 * The smallest XFS mkfs.xfs makes is 64 MiB, far above what the fuzzer
 * mutates well, but almost all of it is zeros.  So the input is a sparse
 * image: a sequence of segments, each a big-endian u32 offset in 512-byte
 * sectors, a big-endian u16 byte count, then that many bytes, laid over a
 * 64 MiB volume of zeros (a truncated segment still counts).  The volume
 * is opened as a raw image from memory and identified against every
 * filesystem type, as `vmconvert map` does.  Seeds (corpus/xfs) are the
 * non-zero sectors of small v4 and v5 filesystems made with
 *   TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -d agcount=4 \
 *       -b size=1024 -l size=3527b ...   (v5)
 *       -m crc=0 -b size=512 -l size=4m ... (v4)
 *       -l size=1368b ...                   (v5, 4 KiB blocks)
 * (those variables lift mkfs.xfs's 300 MiB minimum), v5-1k-bnobt2 one
 * with a two-level bnobt (a preallocated file with every other 1 KiB block
 * punched out, then xfs_repair -L to rewrite the log), all through
 * tests/fuzz/mkseed-sparse.py --xfs-logblocks 64 (128 for v4).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fs/fs.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "sparse-volume.h"

static void
quiet (const char *msg)
{
    (void) msg;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    struct image *img;
    struct volume v;
    struct fs_result r;

    vmc_set_warn_hook (quiet);
    img = sparse_volume_image (data, size);
    if (img == NULL)
        return 0;
    volume_of_image (&v, "fuzz", img, 0, img->size);
    if (fs_identify (&v, &r) == 0) {
        /* What a caller does with the result: walk the ranges. */
        uint64_t total = rangeset_bytes (&r.used);
        if (!r.all_used && total > v.size)
            abort ();
        for (size_t i = 0; i < r.used.n; i++)
            if (r.used.r[i].start >= r.used.r[i].end ||
                r.used.r[i].end > v.size)
                abort ();
        fs_result_free (&r);
    }
    image_close (img);
    return 0;
}
