/* SPDX-License-Identifier: MIT */
/*
 * What fs-fat.c shares with fs-fat-files.c: one parser of the FAT boot
 * sector (BPB), and the decoding of one FAT entry.  fatgen103 section
 * numbers are in fs-fat.c.
 */
#ifndef VMC_FS_FAT_H
#define VMC_FS_FAT_H

#include <stdbool.h>
#include <stdint.h>

struct fat_geom {
    uint32_t bps;               /* bytes per sector */
    uint32_t spc;               /* sectors per cluster */
    uint32_t rsvd;              /* reserved sectors */
    uint32_t nfats;
    uint32_t root_ents;         /* FAT12/16: root directory entries */
    uint32_t root_secs;
    uint32_t fatsz;             /* sectors per FAT */
    uint32_t totsec;
    uint32_t media;
    uint32_t clusters;          /* CountOfClusters */
    int bits;                   /* 12, 16, 32 */
    uint64_t fat_start;         /* bytes */
    uint64_t root_start;        /* FAT12/16: the root directory, bytes */
    uint64_t data_start;        /* bytes */
    uint64_t csize;             /* cluster size in bytes */
    uint64_t end;               /* end of the last cluster, bytes */
    uint32_t root_clus;         /* FAT32: BPB_RootClus, unchecked */
    uint32_t active_fat;        /* FAT32: the FAT to read (BPB_ExtFlags),
                                 * unchecked; else 0 */
};

/* Decode and check the boot sector B (512 bytes) of a volume of VSIZE
 * bytes into G: NULL when the geometry holds together (every cluster
 * inside the volume), else why not. */
const char *fat_bpb_geometry (const unsigned char *b, uint64_t vsize,
                              struct fat_geom *g);

/* FAT entry J of a piece of the FAT that starts at an entry whose index
 * is even (FAT12 packs two entries in three bytes); FAT32's top 4 bits
 * masked off. */
uint32_t fat_entry_at (const unsigned char *c, uint32_t j, int bits);

#endif
