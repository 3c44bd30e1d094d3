/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: LVM2.  The input is the start of an 8 MiB disk (the rest
 * reads as zeros, so that metadata areas of a realistic size fit): its
 * PV label, PV header, metadata area and text are parsed and the VG's
 * LVs mapped; the input is also parsed as metadata text on its own.
 */
#include <string.h>

#include <stddef.h>
#include <stdint.h>

#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "../../converter/part/map.h"

static void
fuzz_quiet (const char *msg)
{
    (void) msg;
}

#define DISK (8u << 20)

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static unsigned char disk[DISK];
    const char *name = "fuzz";
    struct cfg_node *root;
    struct disk_map m;
    struct image *img;
    size_t n = size < DISK ? size : DISK;

    vmc_set_warn_hook (fuzz_quiet);
    root = cfg_parse ((const char *) data, size);
    cfg_free (root);
    memcpy (disk, data, n);
    img = image_open_memory (disk, DISK, "raw", IMAGE_OPEN_NO_BACKING);
    if (img != NULL) {
        (void) disk_map_build (&m, &img, &name, 1);
        disk_map_free (&m);
        image_close (img);
    }
    memset (disk, 0, n);
    return 0;
}
