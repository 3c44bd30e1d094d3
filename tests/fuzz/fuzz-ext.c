/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the input as a raw volume, read as ext2/3/4 (fs-ext.c, and
 * through it libext2fs on hostile metadata).  Checksums are not enforced
 * in fuzz builds so that inputs get past them into the structures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../converter/fs/fs.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"

extern const struct fs_type fs_ext;

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
    struct fs_result r = { 0 };

    vmc_set_warn_hook (quiet);
    img = image_open_memory (data, size, "raw", IMAGE_OPEN_NO_BACKING);
    if (img == NULL)
        return 0;
    volume_of_image (&v, "fuzz", img, 0, img->size);
    if (fs_ext.probe (&v) == 1) {
        snprintf (r.type, sizeof r.type, "%s", fs_ext.name);
        (void) fs_ext.used (&v, &r);
        /* The ranges must be inside the volume and in order. */
        for (size_t i = 0; !r.all_used && i < r.used.n; i++)
            if (r.used.r[i].start >= r.used.r[i].end ||
                r.used.r[i].end > v.size ||
                (i > 0 && r.used.r[i].start <= r.used.r[i - 1].end))
                abort ();
        fs_result_free (&r);
    }
    image_close (img);
    return 0;
}
