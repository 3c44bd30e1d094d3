/* SPDX-License-Identifier: MIT */
/*
 * vhdx: placeholder until the reader and writer land; opening fails.
 */
#include "../lib/error.h"
#include "../lib/image.h"

static int
vhdx_open (struct image *img)
{
    (void) img;
    vmc_error ("vhdx: not implemented yet");
    return -1;
}

static int
vhdx_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    (void) img; (void) buf; (void) count; (void) offset;
    return -1;
}

const struct image_format format_vhdx = {
    .name = "vhdx",
    .description = "(not implemented yet)",
    .open = vhdx_open,
    .pread = vhdx_pread,
};
