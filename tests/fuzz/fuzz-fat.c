/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the fat used-block map (converter/fs/fs-fat.c), through
 * fs-harness.h.
 */
#include "fs-harness.h"

extern const struct fs_type fs_fat;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    return fuzz_fs_type (&fs_fat, data, size);
}
