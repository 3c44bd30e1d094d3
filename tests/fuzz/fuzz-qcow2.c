/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: open the input as qcow2 and read it through.
 */
#include "harness.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    return fuzz_image (data, size, "qcow2");
}
