/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: probe the format from content, then open and read as
 * whatever format wins, exactly as `vmconvert convert` without -f does.
 */
#include "harness.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    return fuzz_image (data, size, NULL);
}
