/* SPDX-License-Identifier: MIT */
/*
 * Fast test whether a buffer holds only zero bytes.
 *
 * The copy engine calls this on every granule of every data chunk, so it
 * matters: the first 16 bytes are checked one by one (most non-zero data
 * fails there), then memcmp compares the buffer against itself shifted by
 * 16 bytes, which glibc runs with vector instructions.
 */
#ifndef VMC_ISZERO_H
#define VMC_ISZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static inline bool
is_zero (const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t i, head = len < 16 ? len : 16;

    for (i = 0; i < head; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return len <= 16 || memcmp (p, p + 16, len - 16) == 0;
}

#endif
