/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C; see crc32c.h.
 *
 * The table path is the classic slicing-by-8: table[0] is the byte-wise
 * table of the reflected polynomial, and table[k][b] is the CRC of byte b
 * followed by k zero bytes, so eight input bytes are folded with eight
 * independent lookups.  The tables are built once, thread-safely, with
 * pthread_once.
 */
#include <pthread.h>
#include <string.h>

#include "byteorder.h"
#include "crc32c.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void
build_table (void)
{
    uint32_t c;
    unsigned i, k;

    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        }
        table[0][i] = c;
    }
    for (i = 0; i < 256; i++) {
        c = table[0][i];
        for (k = 1; k < 8; k++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[k][i] = c;
        }
    }
}

uint32_t
crc32c_sw (uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc, lo, hi;

    pthread_once (&table_once, build_table);
    while (len > 0 && ((uintptr_t) p & 7) != 0) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        lo = get_le32 (p) ^ c;
        hi = get_le32 (p + 4);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
            table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
            table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    return ~c;
}

#if defined(__x86_64__)

/* The SSE 4.2 crc32 instruction computes exactly this CRC (reflected
 * Castagnoli), eight bytes per instruction. */
__attribute__ ((target ("sse4.2")))
static uint32_t
crc32c_hw (uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc & 0xffffffffu, v;

    while (len > 0 && ((uintptr_t) p & 7) != 0) {
        c = __builtin_ia32_crc32qi ((uint32_t) c, *p++);
        len--;
    }
    while (len >= 8) {
        memcpy (&v, p, 8);
        c = __builtin_ia32_crc32di (c, v);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = __builtin_ia32_crc32qi ((uint32_t) c, *p++);
        len--;
    }
    return ~(uint32_t) c;
}

static uint32_t (*crc32c_impl) (uint32_t, const void *, size_t);
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void
choose_impl (void)
{
    __builtin_cpu_init ();
    crc32c_impl = __builtin_cpu_supports ("sse4.2") ? crc32c_hw : crc32c_sw;
}

uint32_t
crc32c (uint32_t crc, const void *buf, size_t len)
{
    pthread_once (&impl_once, choose_impl);
    return crc32c_impl (crc, buf, len);
}

#else

uint32_t
crc32c (uint32_t crc, const void *buf, size_t len)
{
    return crc32c_sw (crc, buf, len);
}

#endif
