/* SPDX-License-Identifier: MIT */
/*
 * vdi: placeholder until the reader and writer land; opening fails.
 */
#include "../lib/error.h"
#include "../lib/image.h"

static int
vdi_open (struct image *img)
{
    (void) img;
    vmc_error ("vdi: not implemented yet");
    return -1;
}

static int
vdi_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    (void) img; (void) buf; (void) count; (void) offset;
    return -1;
}

const struct image_format format_vdi = {
    .name = "vdi",
    .description = "(not implemented yet)",
    .open = vdi_open,
    .pread = vdi_pread,
};
