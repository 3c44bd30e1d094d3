/* SPDX-License-Identifier: MIT */
/*
 * mkdisk: write a raw test disk with known, varied content.
 *
 *   mkdisk [-s SEED] [-d DATA_PERCENT] SIZE FILE
 *
 * The disk is a sequence of regions of random length (512 B to 3 MiB, in
 * sectors, so regions start and end inside clusters, grains and blocks of
 * every format).  Each region is one of: random bytes, a byte pattern that
 * depends on the offset, explicitly written zeros (allocated on the host),
 * a hole, or a sprinkle of single sectors.  DATA_PERCENT (default 50) is
 * the share of regions that are not holes; big sparse disks use a low one.
 * The first and the last sector always hold data, to catch off-by-one
 * errors at both ends.  The same seed always gives the same disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../converter/lib/error.h"
#include "../../converter/lib/options.h"
#include "../../converter/lib/rounding.h"

static uint64_t rng_state;

static uint64_t
rnd (void)
{
    /* xorshift64*: fast and good enough for test data. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void
fill_random (unsigned char *buf, size_t len)
{
    size_t i;
    uint64_t v;

    for (i = 0; i + 8 <= len; i += 8) {
        v = rnd ();
        memcpy (buf + i, &v, 8);
    }
    for (; i < len; i++) {
        buf[i] = (unsigned char) rnd ();
    }
}

static int
write_at (int fd, const unsigned char *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t r = pwrite (fd, buf, len, (off_t) off);

        if (r <= 0) {
            perror ("mkdisk: pwrite");
            return -1;
        }
        buf += r;
        len -= (size_t) r;
        off += (uint64_t) r;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    static unsigned char buf[3 << 20];
    uint64_t size, off, len, seed = 1, i;
    unsigned data_pct = 50, kind;
    int c, fd;

    while ((c = getopt (argc, argv, "s:d:")) != -1) {
        switch (c) {
        case 's': seed = strtoull (optarg, NULL, 0); break;
        case 'd': data_pct = (unsigned) strtoul (optarg, NULL, 0); break;
        default: goto usage;
        }
    }
    if (argc - optind != 2) {
        goto usage;
    }
    if (parse_size (argv[optind], &size) == -1 || size < 1024 ||
        size % 512 != 0) {
        fprintf (stderr, "mkdisk: SIZE must be a multiple of 512, >= 1024\n");
        return 1;
    }
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    fd = open (argv[optind + 1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd == -1 || ftruncate (fd, (off_t) size) == -1) {
        perror (argv[optind + 1]);
        return 1;
    }
    for (off = 0; off < size; off += len) {
        len = (1 + rnd () % 6144) * 512;
        if (len > size - off) {
            len = size - off;
        }
        kind = (unsigned) (rnd () % 100);
        if (kind >= data_pct) {
            continue;                   /* a hole */
        }
        switch (rnd () % 8) {
        case 0: case 1: case 2:         /* random bytes */
            fill_random (buf, len);
            break;
        case 3: case 4:                 /* a pattern */
            for (i = 0; i < len; i++) {
                buf[i] = (unsigned char) (((off + i) >> 9) * 31 + 7);
            }
            break;
        case 5: case 6:                 /* written zeros */
            memset (buf, 0, len);
            break;
        default:                        /* single sectors, 64 KiB apart */
            for (i = 0; i < len; i += 65536) {
                fill_random (buf, 512);
                if (write_at (fd, buf, MIN (512, len - i), off + i) == -1) {
                    return 1;
                }
            }
            continue;
        }
        if (write_at (fd, buf, len, off) == -1) {
            return 1;
        }
    }
    /* Data in the first and the last sector. */
    fill_random (buf, 512);
    if (write_at (fd, buf, 512, 0) == -1 ||
        write_at (fd, buf, 512, size - 512) == -1) {
        return 1;
    }
    if (close (fd) == -1) {
        perror ("mkdisk: close");
        return 1;
    }
    return 0;

usage:
    fprintf (stderr, "usage: mkdisk [-s SEED] [-d DATA_PERCENT] SIZE FILE\n");
    return 1;
}
