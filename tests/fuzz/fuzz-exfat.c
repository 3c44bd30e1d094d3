/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the exfat used-block map (converter/fs/fs-exfat.c), through
 * fs-harness.h.
 */
#include "fs-harness.h"

extern const struct fs_type fs_exfat;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    return fuzz_fs_type (&fs_exfat, data, size);
}
