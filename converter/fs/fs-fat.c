/* SPDX-License-Identifier: MIT */
/*
 * FAT12, FAT16 and FAT32 (also the EFI System Partition), from Microsoft's
 * "FAT32 File System Specification" (fatgen103).
 *
 * Layout: the reserved region (boot sector with the BPB, FAT32's FSInfo
 * and backup boot sector), NumFATs copies of the FAT, for FAT12/16 the
 * fixed root directory, then the data region of CountOfClusters clusters
 * numbered from 2.  In use: everything before the data region, every
 * cluster whose FAT entry is not zero (bad-cluster marks included: that is
 * the safe side), and anything after the last cluster (the unused tail of
 * the volume, which a boot loader might use).
 *
 * The FAT type follows from the cluster count alone (fatgen103 section 3.5:
 * < 4085 FAT12, < 65525 FAT16, else FAT32), never from the label string.
 *
 * All in use when: the volume is marked dirty (BPB flag at offset 37/65
 * bit 0, or FAT[1]'s clean-shutdown bit clear, or its hard-error bit
 * clear), the FAT copies differ, FAT32's FSInfo free count is valid and
 * disagrees with the FAT, or any BPB value fails a check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "fs-fat.h"
#include "fs.h"

/* FAT bytes handled per read (a multiple of 2, 3 and 4). */
#define FAT_CHUNK 65532u


static bool
is_pow2 (uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* The checks a FAT boot sector passes before anything else is believed:
 * enough to say "this is FAT" in probe().  0 when FAT-like. */
static int
bpb_basic (const unsigned char *b, struct fat_geom *g)
{
    memset (g, 0, sizeof *g);
    if (!(b[0] == 0xEB || b[0] == 0xE9))
        return -1;
    if (b[510] != 0x55 || b[511] != 0xAA)
        return -1;
    g->bps = get_le16 (b + 11);
    g->spc = b[13];
    g->rsvd = get_le16 (b + 14);
    g->nfats = b[16];
    g->root_ents = get_le16 (b + 17);
    g->totsec = get_le16 (b + 19);
    if (g->totsec == 0)
        g->totsec = get_le32 (b + 32);
    g->media = b[21];
    g->fatsz = get_le16 (b + 22);
    if (g->fatsz == 0)
        g->fatsz = get_le32 (b + 36);
    if (g->bps < 512 || g->bps > 4096 || !is_pow2 (g->bps))
        return -1;
    if (!is_pow2 (g->spc))
        return -1;
    if (g->rsvd < 1 || g->nfats < 1 || g->nfats > 4)
        return -1;
    if (g->totsec == 0 || g->fatsz == 0)
        return -1;
    if (g->media != 0xF0 && g->media < 0xF8)
        return -1;
    return 0;
}

/* The full geometry.  NULL when it holds together, else why not. */
const char *
fat_bpb_geometry (const unsigned char *b, uint64_t vsize, struct fat_geom *g)
{
    uint64_t meta, fatbytes, entries;

    if (bpb_basic (b, g) < 0)
        return "boot sector is not FAT";
    g->root_secs = (uint32_t) (((uint64_t) g->root_ents * 32 + g->bps - 1) /
                               g->bps);
    /* At most 4 * 2^32 + 2^16 + 2^16 sectors: no overflow in 64 bits. */
    meta = (uint64_t) g->rsvd + (uint64_t) g->nfats * g->fatsz + g->root_secs;
    if (meta >= g->totsec)
        return "FAT metadata larger than the volume";
    g->clusters = (uint32_t) ((g->totsec - meta) / g->spc);
    if (g->clusters < 1)
        return "no clusters";
    g->bits = g->clusters < 4085 ? 12 : g->clusters < 65525 ? 16 : 32;
    if (g->bits == 32) {
        if (g->clusters > 0x0FFFFFF5)
            return "too many clusters for FAT32";
        if (get_le16 (b + 22) != 0 || g->root_ents != 0 ||
            get_le16 (b + 19) != 0)
            return "FAT32 with FAT12/16 BPB fields set";
        if (get_le16 (b + 42) != 0)
            return "FAT32 version not 0.0";
    }
    else {
        if (get_le16 (b + 22) == 0)
            return "FAT12/16 without BPB_FATSz16";
        if (g->root_ents == 0)
            return "FAT12/16 without root directory entries";
    }
    /* The FAT holds an entry for every cluster, plus the two reserved. */
    fatbytes = (uint64_t) g->fatsz * g->bps;
    entries = (uint64_t) g->clusters + 2;
    if (entries * (uint64_t) g->bits > fatbytes * 8)
        return "FAT too small for the cluster count";
    g->csize = (uint64_t) g->spc * g->bps;
    if (g->csize > 256 * 1024)
        return "cluster larger than 256 KiB";
    g->fat_start = (uint64_t) g->rsvd * g->bps;
    g->root_start = g->fat_start + (uint64_t) g->nfats * g->fatsz * g->bps;
    g->data_start = meta * g->bps;
    if (g->bits == 32) {
        uint16_t ext = get_le16 (b + 40);

        g->root_clus = get_le32 (b + 44);
        /* BPB_ExtFlags bit 7: mirroring off, bits 0-3 the active FAT. */
        g->active_fat = ext & 0x80 ? ext & 0x0F : 0;
    }
    g->end = g->data_start + (uint64_t) g->clusters * g->csize;
    if ((uint64_t) g->totsec * g->bps > vsize)
        return "filesystem larger than its volume (truncated?)";
    return NULL;
}

static int
fat_probe (const struct volume *v)
{
    unsigned char b[512];
    struct fat_geom g;

    if (v->size < 512 * 4)
        return 0;
    if (v->pread (v, b, sizeof b, 0) < 0)
        return -1;
    return bpb_basic (b, &g) == 0;
}



static void
label_uuid (const unsigned char *b, int bits, struct fs_result *r)
{
    size_t o = bits == 32 ? 64 : 36;       /* BS_DrvNum */
    size_t n = 11;
    const unsigned char *l = b + o + 7;     /* BS_VolLab */
    uint32_t id;

    if (b[o + 2] != 0x29)                   /* BS_BootSig */
        return;
    id = get_le32 (b + o + 3);
    snprintf (r->uuid, sizeof r->uuid, "%04X-%04X", id >> 16, id & 0xFFFF);
    while (n > 0 && l[n - 1] == ' ')
        n--;
    if (n == 7 && memcmp (l, "NO NAME", 7) == 0)
        return;
    for (size_t i = 0; i < n && i + 1 < sizeof r->label; i++)
        r->label[i] = l[i] >= 0x20 && l[i] < 0x7f ? (char) l[i] : '?';
}

/* FAT entry J of a chunk. */
uint32_t
fat_entry_at (const unsigned char *c, uint32_t j, int bits)
{
    if (bits == 16)
        return get_le16 (c + 2 * (size_t) j);
    if (bits == 32)
        return get_le32 (c + 4 * (size_t) j) & 0x0FFFFFFF;
    {
        uint32_t w = get_le16 (c + j + j / 2);

        return j & 1 ? w >> 4 : w & 0xFFF;
    }
}

static int
fat_used (const struct volume *v, struct fs_result *r)
{
    unsigned char b[4096], *fat = NULL, *copy = NULL;
    struct fat_geom g;
    const char *bad;
    uint64_t need, done, nused = 0, entry0;
    uint32_t eoc_mask, root_clus = 0, root_entry = 0;
    int ret = -1;

    if (v->pread (v, b, 512, 0) < 0)
        return -1;
    bad = fat_bpb_geometry (b, v->size, &g);
    if (bad != NULL) {
        fs_all_used (r, "FAT: %s", bad);
        return 0;
    }
    r->block_size = (uint32_t) g.csize;
    label_uuid (b, g.bits, r);

    /* BS_Reserved1, where the extended boot record is (BS_BootSig 0x29):
     * bit 0 set while mounted (the state Linux and Windows keep). */
    if ((b[g.bits == 32 ? 66 : 38] == 0x29 || b[g.bits == 32 ? 66 : 38] ==
         0x28) && (b[g.bits == 32 ? 65 : 37] & 0x01)) {
        fs_all_used (r, "FAT: volume marked dirty (not cleanly unmounted)");
        return 0;
    }
    if (g.bits == 32) {
        uint16_t ext = get_le16 (b + 40);
        uint16_t fsinfo = get_le16 (b + 48);

        if ((ext & 0x80) && (ext & 0x0F) >= g.nfats) {
            fs_all_used (r, "FAT32: active FAT number out of range");
            return 0;
        }
        root_clus = get_le32 (b + 44);
        if (root_clus < 2 || root_clus - 2 >= g.clusters) {
            fs_all_used (r, "FAT32: root directory cluster out of range");
            return 0;
        }
        if (fsinfo != 0 && fsinfo != 0xFFFF) {
            if (fsinfo >= g.rsvd) {
                fs_all_used (r, "FAT32: FSInfo sector outside the reserved "
                              "region");
                return 0;
            }
        }
    }

    /* Walk the FAT in chunks, comparing every copy with the first. */
    need = ((uint64_t) g.clusters + 2) * (uint64_t) g.bits / 8;
    if (g.bits == 12)
        need = ((uint64_t) g.clusters + 2 + 1) / 2 * 3;   /* whole pairs */
    if (need > (uint64_t) g.fatsz * g.bps)
        need = (uint64_t) g.fatsz * g.bps;
    fat = calloc (1, FAT_CHUNK + 4);
    copy = calloc (1, FAT_CHUNK + 4);
    if (fat == NULL || copy == NULL) {
        fs_all_used (r, "FAT: out of memory");
        ret = 0;
        goto out;
    }
    if (rangeset_add (&r->used, 0, g.data_start) < 0)
        goto out;
    eoc_mask = g.bits == 12 ? 0xFFF : g.bits == 16 ? 0xFFFF : 0x0FFFFFFF;
    entry0 = 0;
    for (done = 0; done < need; ) {
        uint32_t len = (uint32_t) (need - done < FAT_CHUNK ? need - done
                                   : FAT_CHUNK);
        uint32_t n = (uint32_t) ((uint64_t) len * 8 / (uint32_t) g.bits);

        memset (fat + len, 0, 4);
        if (v->pread (v, fat, len, g.fat_start + done) < 0)
            goto out;
        for (uint32_t k = 1; k < g.nfats; k++) {
            uint64_t off = g.fat_start + (uint64_t) k * g.fatsz * g.bps + done;

            if (v->pread (v, copy, len, off) < 0)
                goto out;
            if (memcmp (fat, copy, len) != 0) {
                fs_all_used (r, "FAT: the FAT copies differ");
                ret = 0;
                goto out;
            }
        }
        for (uint32_t j = 0; j < n; j++) {
            uint64_t c = entry0 + j;
            uint32_t e = fat_entry_at (fat, j, g.bits);

            if (c >= (uint64_t) g.clusters + 2)
                break;
            if (c == 0) {
                if ((e & 0xFF) != g.media || (e | 0xFF) != eoc_mask) {
                    fs_all_used (r, "FAT: FAT[0] does not hold the media "
                                  "byte");
                    ret = 0;
                    goto out;
                }
                continue;
            }
            if (c == 1) {
                if ((g.bits == 16 && (e & 0xC000) != 0xC000) ||
                    (g.bits == 32 && (e & 0x0C000000) != 0x0C000000)) {
                    fs_all_used (r, "FAT: FAT[1] says dirty or hard error "
                                  "(not cleanly unmounted)");
                    ret = 0;
                    goto out;
                }
                continue;
            }
            if (c == root_clus)
                root_entry = e;
            if (e == 0)
                continue;
            nused++;
            if (rangeset_add (&r->used, g.data_start + (c - 2) * g.csize,
                              g.csize) < 0)
                goto out;
        }
        entry0 += n;
        done += len;
    }
    if (entry0 < (uint64_t) g.clusters + 2) {
        fs_all_used (r, "FAT: FAT shorter than the cluster count");
        ret = 0;
        goto out;
    }
    if (g.bits == 32) {
        uint16_t fsinfo = get_le16 (b + 48);

        if (root_entry == 0 || root_entry == 0x0FFFFFF7) {
            fs_all_used (r, "FAT32: root directory cluster is free or bad");
            ret = 0;
            goto out;
        }
        if (fsinfo != 0 && fsinfo != 0xFFFF) {
            uint32_t freecount;

            if (v->pread (v, b, 512, (uint64_t) fsinfo * g.bps) < 0)
                goto out;
            if (get_le32 (b) != 0x41615252 || get_le32 (b + 484) != 0x61417272
                || get_le32 (b + 508) != 0xAA550000) {
                fs_all_used (r, "FAT32: FSInfo signatures wrong");
                ret = 0;
                goto out;
            }
            freecount = get_le32 (b + 488);
            if (freecount != 0xFFFFFFFF && freecount != g.clusters - nused) {
                fs_all_used (r, "FAT32: counters disagree: FSInfo says %u "
                              "free clusters, the FAT has %llu", freecount,
                              (unsigned long long) (g.clusters - nused));
                ret = 0;
                goto out;
            }
        }
    }
    /* The tail after the last cluster. */
    if (rangeset_add (&r->used, g.end, v->size - g.end) < 0)
        goto out;
    ret = 0;
out:
    free (fat);
    free (copy);
    return ret;
}

const struct fs_type fs_fat = {
    .name = "vfat",
    .probe = fat_probe,
    .used = fat_used,
};
