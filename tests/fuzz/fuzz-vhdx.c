/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: open the input as vhdx and read it through.
 */
#include "harness.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    return fuzz_image (data, size, "vhdx");
}
