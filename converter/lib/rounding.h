/* SPDX-License-Identifier: MIT */
/*
 * Rounding, alignment and min/max for unsigned quantities.
 *
 * The alignment helpers require a power-of-two alignment; callers that take
 * an alignment from a disk image check is_power_of_2() first.  ROUND_UP can
 * overflow near UINT64_MAX, so image code rounds only values it has already
 * bounded.
 */
#ifndef VMC_ROUNDING_H
#define VMC_ROUNDING_H

#include <stdbool.h>
#include <stdint.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define ROUND_UP(n, a) (((n) + (a) - 1) & ~((__typeof__ (n)) (a) - 1))
#define ROUND_DOWN(n, a) ((n) & ~((__typeof__ (n)) (a) - 1))
#define IS_ALIGNED(n, a) (((n) & ((__typeof__ (n)) (a) - 1)) == 0)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))

static inline bool
is_power_of_2 (uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* log2 of a power of two. */
static inline unsigned
log2_u64 (uint64_t v)
{
    return 63 - (unsigned) __builtin_clzll (v);
}

#endif
