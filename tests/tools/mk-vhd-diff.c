/* SPDX-License-Identifier: MIT */
/*
 * mk-vhd-diff: build a differencing VHD by hand, per the VHD spec, on top
 * of a parent VHD, with known content.  qemu-img cannot create one.
 *
 *   mk-vhd-diff [-s SEED] [-b BLOCK_SIZE] [-l LOCATORS] [-u]
 *               PARENT.vhd PARENT.raw CHILD.vhd MERGED.raw QEMU.raw
 *
 * PARENT.raw holds the parent's guest content (qemu-img convert -O raw).
 * The child has the parent's size and geometry.  Each of its blocks is, at
 * random: not allocated; allocated with every bitmap bit set; allocated
 * with runs of set and clear bits; or allocated with no bit set.  Sectors
 * whose bit is set hold random data; sectors whose bit is clear hold a
 * non-zero filler that a correct reader never returns.
 *
 * MERGED.raw is what the child reads as with its parent (set sectors from
 * the child, the rest from the parent).  QEMU.raw is what qemu reads: qemu
 * opens a differencing VHD as a dynamic one without parent and ignores the
 * bitmaps, so allocated blocks read whole and the rest as zeros; comparing
 * the child with it through qemu-img checks the child's structure.
 *
 * LOCATORS (default "rkn") picks the parent references written: r = W2ru
 * ".\NAME", k = W2ku "C:\vms\NAME", x = MacX "file://localhost/ABS/NAME",
 * i = Wi2r "NAME" (8-bit), n = the header's parent unicode name; NAME is
 * the parent's file name.  -u records a wrong parent unique id.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../converter/lib/byteorder.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/options.h"
#include "../../converter/lib/rounding.h"

static uint64_t rng_state;

static uint64_t
rnd (void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint32_t
checksum (const unsigned char *b, size_t len, size_t at)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (i < at || i >= at + 4) {
            sum += b[i];
        }
    }
    return ~sum;
}

static int
xpwrite (int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t r = pwrite (fd, p, len, (off_t) off);

        if (r <= 0) {
            perror ("mk-vhd-diff: pwrite");
            return -1;
        }
        p += r;
        len -= (size_t) r;
        off += (uint64_t) r;
    }
    return 0;
}

static int
xpread (int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;

    while (len > 0) {
        ssize_t r = pread (fd, p, len, (off_t) off);

        if (r <= 0) {
            fprintf (stderr, "mk-vhd-diff: short read\n");
            return -1;
        }
        p += r;
        len -= (size_t) r;
        off += (uint64_t) r;
    }
    return 0;
}

/* ASCII to UTF-16 (LE or BE); returns the byte length. */
static size_t
to_utf16 (const char *s, unsigned char *out, int be)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        out[2 * i + (be ? 0 : 1)] = 0;
        out[2 * i + (be ? 1 : 0)] = (unsigned char) s[i];
    }
    return 2 * i;
}

static int
open_out (const char *name)
{
    int fd = open (name, O_RDWR | O_CREAT | O_TRUNC, 0644);

    if (fd == -1) {
        perror (name);
    }
    return fd;
}

int
main (int argc, char **argv)
{
    const char *locs = "rkn", *pvhd, *praw, *child, *merged, *qview, *base;
    unsigned char footer[512], hdr[1024], loc[512], *bm = NULL;
    unsigned char *data = NULL, *pdata = NULL, *mdata = NULL, *qdata = NULL;
    uint64_t seed = 1, bs = 2u << 20, size, nblocks, pos, b, i, len;
    uint64_t bm_size, bat_bytes, n_sec;
    uint32_t *bat = NULL;
    char path[PATH_MAX], abs[PATH_MAX];
    int c, fp, fr, fc, fm, fq, nloc = 0, wrong_uuid = 0, kind;
    size_t k;

    while ((c = getopt (argc, argv, "s:b:l:u")) != -1) {
        switch (c) {
        case 's': seed = strtoull (optarg, NULL, 0); break;
        case 'b':
            if (parse_size (optarg, &bs) == -1 || !is_power_of_2 (bs) ||
                bs < 512) {
                fprintf (stderr, "mk-vhd-diff: bad block size\n");
                return 1;
            }
            break;
        case 'l': locs = optarg; break;
        case 'u': wrong_uuid = 1; break;
        default: goto usage;
        }
    }
    if (argc - optind != 5) {
        goto usage;
    }
    pvhd = argv[optind];
    praw = argv[optind + 1];
    child = argv[optind + 2];
    merged = argv[optind + 3];
    qview = argv[optind + 4];
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;

    fp = open (pvhd, O_RDONLY);
    fr = open (praw, O_RDONLY);
    if (fp == -1 || fr == -1) {
        perror ("mk-vhd-diff: open parent");
        return 1;
    }
    if (xpread (fp, footer, 512, 0) == -1) {
        return 1;
    }
    if (memcmp (footer, "conectix", 8) != 0) {
        /* A fixed parent: the footer is at the end. */
        off_t end = lseek (fp, 0, SEEK_END);

        if (end < 512 || xpread (fp, footer, 512, (uint64_t) end - 512) == -1
            || memcmp (footer, "conectix", 8) != 0) {
            fprintf (stderr, "mk-vhd-diff: %s is not a VHD\n", pvhd);
            return 1;
        }
    }
    size = (uint64_t) lseek (fr, 0, SEEK_END);
    if (size == 0 || size % 512 != 0) {
        fprintf (stderr, "mk-vhd-diff: bad parent raw size\n");
        return 1;
    }
    nblocks = DIV_ROUND_UP (size, bs);
    bm_size = ROUND_UP (bs / 512 / 8, 512);
    bat_bytes = ROUND_UP (nblocks * 4, 512);
    n_sec = bs / 512;
    base = strrchr (pvhd, '/') != NULL ? strrchr (pvhd, '/') + 1 : pvhd;
    if (realpath (pvhd, abs) == NULL) {
        perror (pvhd);
        return 1;
    }

    fc = open_out (child);
    fm = open_out (merged);
    fq = open_out (qview);
    bat = malloc (nblocks * 4);
    bm = malloc (bm_size);
    data = malloc (bs);
    pdata = malloc (bs);
    mdata = malloc (bs);
    qdata = malloc (bs);
    if (fc == -1 || fm == -1 || fq == -1 || bat == NULL || bm == NULL ||
        data == NULL || pdata == NULL || mdata == NULL || qdata == NULL) {
        return 1;
    }

    /* Footer: the parent's, as a differencing disk with its own id. */
    put_be64 (footer + 16, 512);
    memcpy (footer + 28, "qemu", 4);
    put_be32 (footer + 60, 4);
    for (k = 0; k < 16; k++) {
        footer[68 + k] = (unsigned char) rnd ();
    }
    put_be32 (footer + 64, checksum (footer, 512, 64));

    /* Dynamic header and parent locators.  Locator data goes after the
     * header, one 512-byte slot each; the BAT after them. */
    memset (hdr, 0, sizeof hdr);
    memcpy (hdr, "cxsparse", 8);
    put_be64 (hdr + 8, UINT64_MAX);
    put_be32 (hdr + 24, 0x00010000);
    put_be32 (hdr + 28, (uint32_t) nblocks);
    put_be32 (hdr + 32, (uint32_t) bs);
    {
        unsigned char pf[512];

        if (xpread (fp, pf, 512, 0) == -1) {
            return 1;
        }
        if (memcmp (pf, "conectix", 8) != 0) {
            off_t end = lseek (fp, 0, SEEK_END);

            if (xpread (fp, pf, 512, (uint64_t) end - 512) == -1) {
                return 1;
            }
        }
        memcpy (hdr + 40, pf + 68, 16);         /* parent unique id */
        if (wrong_uuid) {
            hdr[40] ^= 0xff;
        }
        put_be32 (hdr + 56, get_be32 (pf + 24));
    }
    if (strlen (base) > 200) {
        fprintf (stderr, "mk-vhd-diff: parent name too long\n");
        return 1;
    }
    pos = 1536;
    for (k = 0; locs[k] != '\0'; k++) {
        uint32_t code;

        memset (loc, 0, sizeof loc);
        switch (locs[k]) {
        case 'r':
            snprintf (path, sizeof path, ".\\%s", base);
            len = to_utf16 (path, loc, 0);
            code = 0x57327275;          /* W2ru */
            break;
        case 'k':
            snprintf (path, sizeof path, "C:\\vms\\%s", base);
            len = to_utf16 (path, loc, 0);
            code = 0x57326b75;          /* W2ku */
            break;
        case 'i':
            if (snprintf ((char *) loc, sizeof loc, "%s", base) >=
                (int) sizeof loc) {
                fprintf (stderr, "mk-vhd-diff: name too long\n");
                return 1;
            }
            len = strlen ((char *) loc);
            code = 0x57693272;          /* Wi2r */
            break;
        case 'x':
            if (snprintf ((char *) loc, sizeof loc, "file://localhost%s",
                          abs) >= (int) sizeof loc) {
                fprintf (stderr, "mk-vhd-diff: path too long\n");
                return 1;
            }
            len = strlen ((char *) loc);
            code = 0x4d616358;          /* MacX */
            break;
        case 'n':
            to_utf16 (base, hdr + 64, 1);
            continue;
        default:
            fprintf (stderr, "mk-vhd-diff: unknown locator %c\n", locs[k]);
            return 1;
        }
        put_be32 (hdr + 576 + 24 * nloc, code);
        put_be32 (hdr + 576 + 24 * nloc + 4, 512);      /* bytes, as VPC */
        put_be32 (hdr + 576 + 24 * nloc + 8, (uint32_t) len);
        put_be64 (hdr + 576 + 24 * nloc + 16, pos);
        if (xpwrite (fc, loc, 512, pos) == -1) {
            return 1;
        }
        pos += 512;
        nloc++;
    }
    put_be64 (hdr + 16, pos);                   /* BAT */
    put_be32 (hdr + 36, checksum (hdr, sizeof hdr, 36));
    pos += bat_bytes;

    for (b = 0; b < nblocks; b++) {
        uint64_t start = b * bs, n = MIN (bs, size - start);

        if (xpread (fr, pdata, n, start) == -1) {
            return 1;
        }
        memcpy (mdata, pdata, n);
        memset (qdata, 0, n);
        kind = (int) (rnd () % 4);
        if (kind == 0) {
            bat[b] = UINT32_MAX;
        }
        else {
            /* Bitmap: 1 = all set, 2 = runs, 3 = all clear. */
            memset (bm, 0, bm_size);
            for (i = 0; i < n_sec; ) {
                uint64_t run = 1 + rnd () % 64;
                int set = kind == 1 ? 1 : kind == 3 ? 0 : (int) (rnd () % 2);

                for (; run > 0 && i < n_sec; run--, i++) {
                    if (set) {
                        bm[i / 8] |= (unsigned char) (0x80 >> (i % 8));
                    }
                }
            }
            for (i = 0; i < n_sec; i++) {
                unsigned char *d = data + i * 512;

                if (bm[i / 8] & (0x80 >> (i % 8))) {
                    for (k = 0; k < 512; k++) {
                        d[k] = (unsigned char) rnd ();
                    }
                    if (i * 512 < n) {
                        memcpy (mdata + i * 512, d, 512);
                    }
                }
                else {
                    memset (d, 0xa5, 512);
                }
            }
            memcpy (qdata, data, n);
            bat[b] = (uint32_t) (pos / 512);
            if (xpwrite (fc, bm, bm_size, pos) == -1 ||
                xpwrite (fc, data, bs, pos + bm_size) == -1) {
                return 1;
            }
            pos += bm_size + bs;
        }
        if (xpwrite (fm, mdata, n, start) == -1 ||
            xpwrite (fq, qdata, n, start) == -1) {
            return 1;
        }
    }
    for (b = 0; b < nblocks; b++) {
        put_be32 (&bat[b], bat[b]);
    }
    if (xpwrite (fc, footer, 512, 0) == -1 ||
        xpwrite (fc, hdr, sizeof hdr, 512) == -1 ||
        xpwrite (fc, bat, nblocks * 4, get_be64 (hdr + 16)) == -1 ||
        xpwrite (fc, footer, 512, pos) == -1) {
        return 1;
    }
    /* BAT padding: unused entries. */
    memset (data, 0xff, bat_bytes - nblocks * 4);
    if (xpwrite (fc, data, bat_bytes - nblocks * 4,
                 get_be64 (hdr + 16) + nblocks * 4) == -1) {
        return 1;
    }
    if (close (fc) == -1 || close (fm) == -1 || close (fq) == -1) {
        perror ("mk-vhd-diff: close");
        return 1;
    }
    return 0;

usage:
    fprintf (stderr, "Usage: mk-vhd-diff [-s SEED] [-b BLOCK_SIZE] "
             "[-l LOCATORS] [-u] PARENT.vhd PARENT.raw CHILD.vhd MERGED.raw "
             "QEMU.raw\n");
    return 1;
}
