/* SPDX-License-Identifier: MIT */
/*
 * mk-vmdk-tiny: write tiny VMDK sparse images with 4 KiB grains, which
 * qemu-img cannot make (it always uses 64 KiB grains), for the fuzz seeds
 * and for tests of small grains and zeroed-grain GTEs.
 *
 *   mk-vmdk-tiny DIR
 *
 * writes DIR/sparse.vmdk (version 1, redundant GD), DIR/zeroed.vmdk
 * (version 2, zeroed-grain GTEs), DIR/stream.vmdk (version 3, compressed
 * grains, markers, GD at the end with footer), DIR/cowd.vmdk (an ESX
 * sparse root disk, VMFSSPARSE) and DIR/tiny.raw, the disk all of them
 * hold (1 MiB - 1536 bytes: the last grain is short); and
 * DIR/cowd-delta.vmdk, a COWD delta extent with grains 0 and 10 filled
 * with 0xab, to be used under a descriptor.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../converter/lib/byteorder.h"

#define SEC 512u
#define GRAIN_SEC 8u
#define GRAIN (GRAIN_SEC * SEC)
#define CAP_SEC 2045u                       /* 1 MiB - 1536 */
#define NGRAINS ((CAP_SEC + GRAIN_SEC - 1) / GRAIN_SEC)       /* 256 */

static unsigned char disk[NGRAINS * GRAIN];
static unsigned char img[256 * 1024];
static size_t len;

/* Grains holding data, and grains that are explicitly zero. */
static const unsigned data_grains[] = { 0, 1, 2, 7, 100, 255 };
static const unsigned zero_grains[] = { 3, 50 };

static void
header (unsigned char *b, unsigned version, unsigned flags, unsigned long long
        rgd, unsigned long long gd, unsigned long long overhead,
        unsigned compress)
{
    memset (b, 0, SEC);
    memcpy (b, "KDMV", 4);
    put_le32 (b + 4, version);
    put_le32 (b + 8, flags);
    put_le64 (b + 12, CAP_SEC);
    put_le64 (b + 20, GRAIN_SEC);
    put_le64 (b + 28, 1);
    put_le64 (b + 36, 2);
    put_le32 (b + 44, 512);
    put_le64 (b + 48, rgd);
    put_le64 (b + 56, gd);
    put_le64 (b + 64, overhead);
    memcpy (b + 73, "\n \r\n", 4);
    put_le16 (b + 77, compress);
}

static void
descriptor (unsigned char *b, const char *type, const char *name)
{
    snprintf ((char *) b, 2 * SEC,
              "# Disk DescriptorFile\nversion=1\nCID=01234567\n"
              "parentCID=ffffffff\ncreateType=\"%s\"\n\n"
              "RW %u SPARSE \"%s\"\n\n#DDB\nddb.adapterType = \"ide\"\n"
              "ddb.virtualHWVersion = \"4\"\n", type, CAP_SEC, name);
}

static int
save (const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    FILE *f;

    snprintf (path, sizeof path, "%s/%s", dir, name);
    f = fopen (path, "wb");
    if (f == NULL || fwrite (p, 1, n, f) != n || fclose (f) != 0) {
        perror (path);
        return -1;
    }
    return 0;
}

/* Hosted sparse: header, descriptor (1-2), RGD (3), RGT (4-7), GD (8),
 * GT (9-12), grains from sector 16. */
static int
make_sparse (const char *dir, bool zeroed)
{
    unsigned i, sector = 16;
    unsigned char *gt = img + 9 * SEC, *rgt = img + 4 * SEC;

    memset (img, 0, sizeof img);
    header (img, zeroed ? 2 : 1, zeroed ? 7 : 3, 3, 8, 16, 0);
    descriptor (img + SEC, "monolithicSparse",
                zeroed ? "zeroed.vmdk" : "sparse.vmdk");
    put_le32 (img + 3 * SEC, 4);
    put_le32 (img + 8 * SEC, 9);
    for (i = 0; i < sizeof data_grains / sizeof data_grains[0]; i++) {
        unsigned g = data_grains[i];

        put_le32 (gt + 4 * g, sector);
        put_le32 (rgt + 4 * g, sector);
        memcpy (img + sector * SEC, disk + g * GRAIN, GRAIN);
        sector += GRAIN_SEC;
    }
    if (zeroed) {
        for (i = 0; i < sizeof zero_grains / sizeof zero_grains[0]; i++) {
            put_le32 (gt + 4 * zero_grains[i], 1);
            put_le32 (rgt + 4 * zero_grains[i], 1);
        }
    }
    len = sector * SEC;
    return save (dir, zeroed ? "zeroed.vmdk" : "sparse.vmdk", img, len);
}

static void
marker (unsigned long long val, unsigned type)
{
    memset (img + len, 0, SEC);
    put_le64 (img + len, val);
    put_le32 (img + len + 12, type);
    len += SEC;
}

/* Stream-optimized: header (GD at end), descriptor, grains from sector 8,
 * GT marker + GT, GD marker + GD, footer marker + footer, EOS. */
static int
make_stream (const char *dir)
{
    unsigned char gt[2048] = { 0 }, foot[SEC];
    unsigned i, gd_sec, gt_sec;
    uLongf n;

    memset (img, 0, sizeof img);
    header (img, 3, 0x30001, 0, 0xffffffffffffffffULL, 8, 1);
    descriptor (img + SEC, "streamOptimized", "stream.vmdk");
    len = 8 * SEC;
    for (i = 0; i < sizeof data_grains / sizeof data_grains[0]; i++) {
        unsigned g = data_grains[i];

        put_le32 (gt + 4 * g, (uint32_t) (len / SEC));
        put_le64 (img + len, (uint64_t) g * GRAIN_SEC);
        n = sizeof img - len - 12;
        if (compress2 (img + len + 12, &n, disk + g * GRAIN, GRAIN, 9) !=
            Z_OK) {
            fprintf (stderr, "mk-vmdk-tiny: compress failed\n");
            return -1;
        }
        put_le32 (img + len + 8, (uint32_t) n);
        len += (12 + n + SEC - 1) / SEC * SEC;
    }
    marker (4, 1);
    gt_sec = (unsigned) (len / SEC);
    memcpy (img + len, gt, sizeof gt);
    len += sizeof gt;
    marker (1, 2);
    gd_sec = (unsigned) (len / SEC);
    put_le32 (img + len, gt_sec);
    len += SEC;
    marker (1, 3);
    header (foot, 3, 0x30001, 0, gd_sec, 8, 1);
    memcpy (img + len, foot, SEC);
    len += SEC;
    marker (0, 0);
    return save (dir, "stream.vmdk", img, len);
}

/* ESX sparse (COWD): 4-sector header, root entries at 4, one table of
 * 4096 entries at 5..36, grains from 37.  A delta has no root flag. */
static int
make_cowd (const char *dir, bool delta)
{
    static const unsigned delta_grains[] = { 0, 10 };
    const unsigned *gs = delta ? delta_grains : data_grains;
    unsigned n = delta ? 2 : sizeof data_grains / sizeof data_grains[0];
    unsigned i, sector = 37;

    memset (img, 0, sizeof img);
    memcpy (img, "COWD", 4);
    put_le32 (img + 4, 1);
    put_le32 (img + 8, delta ? 2 : 3);
    put_le32 (img + 12, CAP_SEC);
    put_le32 (img + 16, GRAIN_SEC);
    put_le32 (img + 20, 4);
    put_le32 (img + 24, 1);
    put_le32 (img + 4 * SEC, 5);
    for (i = 0; i < n; i++) {
        put_le32 (img + 5 * SEC + 4 * gs[i], sector);
        if (delta) {
            memset (img + sector * SEC, 0xab, GRAIN);
        }
        else {
            memcpy (img + sector * SEC, disk + gs[i] * GRAIN, GRAIN);
        }
        sector += GRAIN_SEC;
    }
    put_le32 (img + 28, sector);
    len = sector * SEC;
    return save (dir, delta ? "cowd-delta.vmdk" : "cowd.vmdk", img, len);
}

int
main (int argc, char **argv)
{
    unsigned i, j;

    if (argc != 2) {
        fprintf (stderr, "usage: mk-vmdk-tiny DIR\n");
        return 1;
    }
    /* Compressible but varied content in the data grains. */
    for (i = 0; i < sizeof data_grains / sizeof data_grains[0]; i++) {
        unsigned char *g = disk + data_grains[i] * GRAIN;

        for (j = 0; j < GRAIN; j++) {
            g[j] = (unsigned char) ((j / 64) * 7 + data_grains[i] + (j % 5));
        }
    }
    /* The last grain is short: what lies past the capacity is not disk. */
    memset (disk + CAP_SEC * SEC, 0, sizeof disk - CAP_SEC * SEC);
    if (make_sparse (argv[1], false) == -1 ||
        make_sparse (argv[1], true) == -1 || make_stream (argv[1]) == -1 ||
        make_cowd (argv[1], false) == -1 || make_cowd (argv[1], true) == -1 ||
        save (argv[1], "tiny.raw", disk, CAP_SEC * SEC) == -1) {
        return 1;
    }
    return 0;
}
