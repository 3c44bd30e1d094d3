/* SPDX-License-Identifier: MIT */
/*
 * A set of byte ranges [start, end), kept sorted and merged.  Adding in
 * ascending order (the common case) is O(1) amortised.
 */
#ifndef VMC_RANGESET_H
#define VMC_RANGESET_H

#include <stddef.h>
#include <stdint.h>

struct range {
    uint64_t start, end;
};

struct rangeset {
    struct range *r;
    size_t n, cap;
};

/* Add [START, START + LEN); LEN 0 is a no-op.  -1 (message set) on
 * overflow or when memory runs out. */
int rangeset_add (struct rangeset *s, uint64_t start, uint64_t len);

/* Bytes covered. */
uint64_t rangeset_bytes (const struct rangeset *s);

/* 1 when OFFSET is inside a range; *NEXT (if not NULL) gets the end of
 * that range, or the start of the next range (UINT64_MAX when none). */
int rangeset_lookup (const struct rangeset *s, uint64_t offset,
                     uint64_t *next);

void rangeset_free (struct rangeset *s);

#endif
