/* SPDX-License-Identifier: MIT */
/*
 * Overflow-checked arithmetic on unsigned integers.
 *
 * Every offset and length read from a disk image is hostile, so sums and
 * products built from them go through these helpers.  Each returns true
 * when the result overflowed (the value left in *r is then unspecified),
 * matching the GCC/Clang builtins they wrap, so that the usual pattern is
 *
 *     if (ckd_add (&end, off, len) || end > file_size) -> error
 */
#ifndef VMC_CHECKED_OVERFLOW_H
#define VMC_CHECKED_OVERFLOW_H

#include <stdbool.h>
#include <stdint.h>

#define ckd_add(r, a, b) __builtin_add_overflow ((a), (b), (r))
#define ckd_sub(r, a, b) __builtin_sub_overflow ((a), (b), (r))
#define ckd_mul(r, a, b) __builtin_mul_overflow ((a), (b), (r))

/* True when [off, off+len) does not fit inside [0, limit). */
static inline bool
range_outside (uint64_t off, uint64_t len, uint64_t limit)
{
    uint64_t end;

    return ckd_add (&end, off, len) || end > limit;
}

#endif
