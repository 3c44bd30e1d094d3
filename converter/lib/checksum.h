/* SPDX-License-Identifier: MIT */
/*
 * Does a stored checksum match the one computed?  Fuzzing builds
 * (OSS-Fuzz's convention: -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
 * accept any, so that the fuzzer reaches the fields a checksum protects
 * instead of stopping at it.  Every parser compares checksums through
 * this, so no release build can skip one.
 */
#ifndef VMC_CHECKSUM_H
#define VMC_CHECKSUM_H

#include <stdbool.h>
#include <stdint.h>

static inline bool
checksum_ok (uint32_t stored, uint32_t computed)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    (void) stored;
    (void) computed;
    return true;
#else
    return stored == computed;
#endif
}

#endif
