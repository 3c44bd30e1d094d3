/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the input as a volume holding FAT12/16/32 (fs-fat-files.c), its
 * whole tree walked through files.h (files-harness.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "files-harness.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    return fuzz_files (data, size, "vfat");
}
