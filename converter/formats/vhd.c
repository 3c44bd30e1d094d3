/* SPDX-License-Identifier: MIT */
/*
 * vhd: placeholder until the reader and writer land; opening fails.
 */
#include "../lib/error.h"
#include "../lib/image.h"

static int
vhd_open (struct image *img)
{
    (void) img;
    vmc_error ("vhd: not implemented yet");
    return -1;
}

static int
vhd_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    (void) img; (void) buf; (void) count; (void) offset;
    return -1;
}

const struct image_format format_vhd = {
    .name = "vhd",
    .description = "(not implemented yet)",
    .open = vhd_open,
    .pread = vhd_pread,
};
