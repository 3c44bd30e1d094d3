/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the input is a raw disk; build its disk map (partition
 * tables -- GPT with its backup, MBR with EBR chains -- LVM PVs and the
 * filesystems found in the volumes).
 */
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

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *name = "fuzz";
    struct disk_map m;
    struct image *img;

    vmc_set_warn_hook (fuzz_quiet);
    img = image_open_memory (data, size, "raw", IMAGE_OPEN_NO_BACKING);
    if (img == NULL) {
        return 0;
    }
    (void) disk_map_build (&m, &img, &name, 1);
    disk_map_free (&m);
    image_close (img);
    return 0;
}
