/* SPDX-License-Identifier: MIT */
/*
 * Unit test of CRC-32C: published check values, chaining over pieces, and
 * agreement of the accelerated and table implementations with a bit-wise
 * reference on random buffers of every small length and alignment.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/lib/crc32c.h"

static int failures;

#define CHECK(cond, ...) do {                                   \
        if (!(cond)) {                                          \
            fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf (stderr, __VA_ARGS__);                      \
            fprintf (stderr, "\n");                             \
            failures++;                                         \
        }                                                       \
    } while (0)

/* One bit at a time, straight from the definition. */
static uint32_t
crc32c_bitwise (const unsigned char *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < len; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
    }
    return ~c;
}

struct vector {
    const char *data;
    size_t len;
    uint32_t crc;
};

int
main (void)
{
    /* Check values: the CRC catalogue ("123456789"), RFC 3720 B.4 (32
     * bytes of zeros, of 0xff, ascending and descending bytes). */
    static const struct vector vectors[] = {
        { "", 0, 0x00000000u },
        { "a", 1, 0xC1D04330u },
        { "123456789", 9, 0xE3069283u },
        { "The quick brown fox jumps over the lazy dog", 43, 0x22620404u },
    };
    unsigned char zeros[32], ones[32], inc[32], dec[32];
    static unsigned char big[1 << 16];
    uint32_t c;
    size_t i, len, off;

    for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        c = crc32c (0, vectors[i].data, vectors[i].len);
        CHECK (c == vectors[i].crc, "crc32c(\"%s\") = 0x%08" PRIX32
               ", expected 0x%08" PRIX32, vectors[i].data, c,
               vectors[i].crc);
        c = crc32c_sw (0, vectors[i].data, vectors[i].len);
        CHECK (c == vectors[i].crc, "crc32c_sw(\"%s\") = 0x%08" PRIX32,
               vectors[i].data, c);
    }
    memset (zeros, 0, sizeof zeros);
    memset (ones, 0xff, sizeof ones);
    for (i = 0; i < 32; i++) {
        inc[i] = (unsigned char) i;
        dec[i] = (unsigned char) (31 - i);
    }
    CHECK (crc32c (0, zeros, 32) == 0x8A9136AAu, "RFC 3720 zeros");
    CHECK (crc32c (0, ones, 32) == 0x62A8AB43u, "RFC 3720 ones");
    CHECK (crc32c (0, inc, 32) == 0x46DD794Eu, "RFC 3720 incrementing");
    CHECK (crc32c (0, dec, 32) == 0x113FDB5Cu, "RFC 3720 decrementing");

    /* Random data: every length up to 300 at every alignment up to 8,
     * then long buffers, against the bit-wise reference. */
    srand (12345);
    for (i = 0; i < sizeof big; i++) {
        big[i] = (unsigned char) rand ();
    }
    for (off = 0; off < 8; off++) {
        for (len = 0; len <= 300; len++) {
            uint32_t ref = crc32c_bitwise (big + off, len);

            CHECK (crc32c (0, big + off, len) == ref, "len %zu off %zu",
                   len, off);
            CHECK (crc32c_sw (0, big + off, len) == ref,
                   "sw len %zu off %zu", len, off);
        }
    }
    c = crc32c_bitwise (big, sizeof big);
    CHECK (crc32c (0, big, sizeof big) == c, "64 KiB buffer");
    CHECK (crc32c_sw (0, big, sizeof big) == c, "64 KiB buffer (sw)");

    /* Chaining: any split gives the checksum of the whole. */
    for (i = 0; i < 200; i++) {
        size_t cut = (size_t) rand () % sizeof big;

        CHECK (crc32c (crc32c (0, big, cut), big + cut, sizeof big - cut) == c,
               "split at %zu", cut);
    }
    if (failures > 0) {
        fprintf (stderr, "%d failures\n", failures);
        return 1;
    }
    printf ("crc32c: all checks passed\n");
    return 0;
}
