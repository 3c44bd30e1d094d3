/* SPDX-License-Identifier: MIT */
/*
 * The arithmetic micro-headers: overflow checks, byte order, rounding and
 * the zero test, at their edges.
 */
#include <stdint.h>
#include <string.h>

#include "../../converter/lib/byteorder.h"
#include "../../converter/lib/checked-overflow.h"
#include "../../converter/lib/iszero.h"
#include "../../converter/lib/rounding.h"
#include "test.h"

static void
test_overflow (void)
{
    uint64_t r;
    uint32_t r32;

    CHECK (!ckd_add (&r, UINT64_MAX - 1, 1) && r == UINT64_MAX);
    CHECK (ckd_add (&r, UINT64_MAX, 1));
    CHECK (ckd_mul (&r, UINT64_C (1) << 32, UINT64_C (1) << 32));
    CHECK (!ckd_mul (&r, UINT64_C (1) << 31, UINT64_C (1) << 32) &&
           r == UINT64_C (1) << 63);
    CHECK (ckd_sub (&r, 0, 1));
    CHECK (ckd_add (&r32, UINT32_MAX, 1u));
    CHECK (!range_outside (0, 10, 10));
    CHECK (range_outside (1, 10, 10));
    CHECK (range_outside (UINT64_MAX, 2, UINT64_MAX));
    CHECK (!range_outside (10, 0, 10));
    CHECK (range_outside (11, 0, 10));
}

static void
test_byteorder (void)
{
    unsigned char b[9] = { 0 };

    put_le32 (b + 1, 0x11223344);
    CHECK (b[1] == 0x44 && b[4] == 0x11);
    CHECK (get_le32 (b + 1) == 0x11223344);
    put_be32 (b + 1, 0x11223344);
    CHECK (b[1] == 0x11 && b[4] == 0x44);
    CHECK (get_be32 (b + 1) == 0x11223344);
    put_le64 (b + 1, UINT64_C (0x0102030405060708));
    CHECK (b[1] == 0x08 && b[8] == 0x01);
    CHECK (get_le64 (b + 1) == UINT64_C (0x0102030405060708));
    put_be64 (b + 1, UINT64_C (0x0102030405060708));
    CHECK (b[1] == 0x01 && b[8] == 0x08);
    CHECK (get_be64 (b + 1) == UINT64_C (0x0102030405060708));
    put_le16 (b, 0xabcd);
    CHECK (b[0] == 0xcd && get_le16 (b) == 0xabcd);
    put_be16 (b, 0xabcd);
    CHECK (b[0] == 0xab && get_be16 (b) == 0xabcd);
}

static void
test_rounding (void)
{
    CHECK (ROUND_UP (UINT64_C (0), 512) == 0);
    CHECK (ROUND_UP (UINT64_C (1), 512) == 512);
    CHECK (ROUND_UP (UINT64_C (512), 512) == 512);
    CHECK (ROUND_DOWN (UINT64_C (1023), 512) == 512);
    CHECK (IS_ALIGNED (UINT64_C (4096), 4096));
    CHECK (!IS_ALIGNED (UINT64_C (4097), 4096));
    CHECK (DIV_ROUND_UP (UINT64_C (10), 3) == 4);
    CHECK (is_power_of_2 (1) && is_power_of_2 (UINT64_C (1) << 63));
    CHECK (!is_power_of_2 (0) && !is_power_of_2 (6));
    CHECK (log2_u64 (1) == 0 && log2_u64 (65536) == 16);
    CHECK (MIN (3, 4) == 3 && MAX (3, 4) == 4);
}

static void
test_iszero (void)
{
    static unsigned char buf[65536 + 1];
    size_t len, pos;

    CHECK (is_zero (buf, 0));
    for (len = 1; len <= 70; len++) {
        CHECK (is_zero (buf, len));
        for (pos = 0; pos < len; pos++) {
            buf[pos] = 1;
            CHECK (!is_zero (buf, len));
            buf[pos] = 0;
        }
    }
    buf[65535] = 0x80;
    CHECK (!is_zero (buf, 65536));
    CHECK (is_zero (buf, 65535));
    buf[65535] = 0;
    buf[65536] = 1;             /* just past the end: not looked at */
    CHECK (is_zero (buf, 65536));
}

int
main (void)
{
    test_overflow ();
    test_byteorder ();
    test_rounding ();
    test_iszero ();
    return test_status ();
}
