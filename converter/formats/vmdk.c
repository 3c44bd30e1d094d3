/* SPDX-License-Identifier: MIT */
/*
 * vmdk: placeholder until the reader and writer land; opening fails.
 */
#include "../lib/error.h"
#include "../lib/image.h"

static int
vmdk_open (struct image *img)
{
    (void) img;
    vmc_error ("vmdk: not implemented yet");
    return -1;
}

static int
vmdk_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    (void) img; (void) buf; (void) count; (void) offset;
    return -1;
}

const struct image_format format_vmdk = {
    .name = "vmdk",
    .description = "(not implemented yet)",
    .open = vmdk_open,
    .pread = vmdk_pread,
};
