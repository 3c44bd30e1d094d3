/* SPDX-License-Identifier: MIT */
/*
 * qcow2: placeholder until the reader and writer land; opening fails.
 */
#include "../lib/error.h"
#include "../lib/image.h"

static int
qcow2_open (struct image *img)
{
    (void) img;
    vmc_error ("qcow2: not implemented yet");
    return -1;
}

static int
qcow2_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    (void) img; (void) buf; (void) count; (void) offset;
    return -1;
}

const struct image_format format_qcow2 = {
    .name = "qcow2",
    .description = "(not implemented yet)",
    .open = qcow2_open,
    .pread = qcow2_pread,
};
