/* SPDX-License-Identifier: MIT */
/*
 * The disk map: which byte ranges of each disk of a machine are in use.
 *
 * Built from the partition tables (part.c), LVM2 (lvm.c, with a volume
 * group allowed to span the disks of the set) and the filesystems
 * (converter/fs/).  Used: the tables' own sectors, everything before the
 * first partition (boot loaders), BIOS boot partitions, what each
 * filesystem reports (everything when it is not recognised or not
 * understood), PV labels and metadata areas, the PV extents of every LV
 * (mapped through the LV's segments).  Not used: space outside every
 * partition after the first one starts, PV extents no LV holds.  Every
 * used range is rounded outwards to 4 KiB.  Reasons to copy more than
 * needed are collected in m->whys for printing.
 */
#ifndef VMC_MAP_H
#define VMC_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../fs/fs.h"
#include "../fs/rangeset.h"
#include "../lib/image.h"
#include "part.h"

#define MAP_ALIGN 4096

/* An LV's segment, resolved to the disks: LV bytes [start, start + len)
 * are NSTRIPES areas (one for linear), each on a disk from byte OFF,
 * interleaved in chunks of STRIPE_SIZE bytes. */
struct map_lvseg {
    uint64_t start, len;
    unsigned nstripes;
    uint64_t stripe_size;
    struct map_lvarea {
        int disk;
        uint64_t off;
    } *area;
};

/* One volume of the map: a partition, a whole disk, or an LVM LV. */
struct map_vol {
    char name[160];             /* "disk.img p1", "vg0/root" */
    char kind[12];              /* "partition", "disk", "lv" */
    int disk;                   /* disk index (-1 for an LV) */
    unsigned number;            /* partition number, 0 otherwise */
    uint64_t start, size;       /* bytes: on the disk, or the LV's size */
    char ptype[40], pname[80];  /* partition type and name */
    char vg[128];               /* the VG of a PV or LV */
    char lv_segtype[24];        /* LV: "linear", "striped", or other */
    unsigned lv_stripes;        /* LV: stripes of its first segment */
    struct fs_result fs;        /* type "LVM2_member" for a PV, "bios_boot",
                                 * "extended", "unknown", or a filesystem */
    uint64_t used_bytes;        /* after mapping, before rounding */
    struct map_lvseg *segs;     /* LV: its segments, when it is mapped
                                 * (linear or striped, every PV present) */
    size_t nsegs;
};

struct map_disk {
    const char *name;
    struct image *img;
    uint64_t size;
    struct part_table pt;
    struct rangeset used;       /* disk bytes in use, 4 KiB-rounded */
};

struct map_vg {
    char name[128];
    char id[48];
    uint64_t extent_size;       /* bytes */
    unsigned pvs, pvs_present, lvs;
};

struct disk_map {
    struct map_disk *disks;
    size_t ndisks;
    struct map_vol *vols;
    size_t nvols, capvols;
    struct map_vg *vgs;
    size_t nvgs, capvgs;
    struct whys whys;
};

/* Map the N disks IMGS (named NAMES, for messages) together.  0 on
 * success, -1 on a read or memory error (message set). */
int disk_map_build (struct disk_map *m, struct image *const *imgs,
                    const char *const *names, size_t n);
void disk_map_free (struct disk_map *m);

/* Volume VI of the map (a partition, a whole disk, or an LV that has
 * segments) as a struct volume to read its content, valid while M is.
 * 0, or -1 with a message. */
int map_vol_open (const struct disk_map *m, size_t vi, struct volume *v);

/* image_block_status() filtered by USED (a disk's used ranges; NULL: no
 * filter): a range outside USED reads as EXTENT_ZERO up to the next used
 * offset, a range inside it is what the image says, up to the end of the
 * used range.  What the copy engine and the sender walk. */
int map_block_status (struct image *img, const struct rangeset *used,
                      uint64_t offset, uint64_t count, struct extent *ext);

#endif
