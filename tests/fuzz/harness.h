/* SPDX-License-Identifier: MIT */
/*
 * Shared body of the libFuzzer targets: open the input as an image of one
 * format (from memory, backing files not followed), then exercise what a
 * conversion would: block status over the disk, reads of the data, and the
 * consistency check.  Work per input is bounded (extents visited, bytes
 * read) so that a huge claimed virtual size cannot make one input slow;
 * the formats themselves must not loop or allocate without bound.
 */
#ifndef VMC_FUZZ_HARNESS_H
#define VMC_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "../../converter/lib/rounding.h"

#define FUZZ_MAX_EXTENTS 512
#define FUZZ_MAX_READ (4u << 20)
#define FUZZ_READ_CHUNK 65536

static void
fuzz_quiet (const char *msg)
{
    (void) msg;
}

static int
fuzz_image (const uint8_t *data, size_t size, const char *format)
{
    static unsigned char buf[FUZZ_READ_CHUNK];
    struct check_result res = { 0 };
    struct image *img;
    struct extent ext;
    uint64_t off = 0, n, total = 0;
    unsigned i;

    vmc_set_warn_hook (fuzz_quiet);
    img = image_open_memory (data, size, format, IMAGE_OPEN_NO_BACKING);
    if (img == NULL) {
        return 0;
    }
    for (i = 0; i < FUZZ_MAX_EXTENTS && off < img->size; i++) {
        if (image_block_status (img, off, img->size - off, &ext) == -1) {
            break;
        }
        if (ext.type == EXTENT_DATA && total < FUZZ_MAX_READ) {
            n = MIN (ext.length, (uint64_t) FUZZ_READ_CHUNK);
            if (image_pread (img, buf, n, off) == 0) {
                total += n;
            }
        }
        off += ext.length;
    }
    /* A read at the very end, which is where rounding bugs live. */
    if (img->size > 0) {
        n = MIN (img->size, (uint64_t) 4096);
        (void) image_pread (img, buf, n, img->size - n);
    }
    (void) image_check (img, &res);
    image_close (img);
    return 0;
}

#endif
