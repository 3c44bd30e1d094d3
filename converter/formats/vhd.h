/* SPDX-License-Identifier: MIT */
/*
 * vhd: what the reader (vhd.c) and the writer (vhd-write.c) share: the
 * on-disk layout, its constants, and the state of an open image.  See vhd.c
 * for the design.
 */
#ifndef VMC_FORMATS_VHD_H
#define VMC_FORMATS_VHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/image.h"

/*
 * On-disk layout (all integers big-endian).
 *
 * Hard disk footer, 512 bytes, at the end of every VHD file and, for
 * dynamic and differencing disks, also copied at offset 0:
 *
 *     0  cookie[8]            "conectix"
 *     8  features             bit 0 temporary, bit 1 reserved (always set)
 *    12  file format version  0x00010000
 *    16  data offset          dynamic header offset; ~0 for fixed disks
 *    24  time stamp           seconds since 2000-01-01 00:00 UTC
 *    28  creator application  "vpc ", "win ", "qemu", ...
 *    32  creator version
 *    36  creator host OS      "Wi2k", "Mac "
 *    40  original size        size at creation, bytes
 *    48  current size         size now, bytes
 *    56  disk geometry        cylinders (16 bits), heads (8), sectors (8)
 *    60  disk type            2 fixed, 3 dynamic, 4 differencing
 *    64  checksum             one's complement of the byte sum of the
 *                             footer, this field counted as zero
 *    68  unique id[16]
 *    84  saved state          1 if the disk is in a saved VM state
 *    85  reserved[427]        zeros
 *
 * Virtual PC 2004 and older wrote a 511-byte footer at the end (no last
 * reserved byte); the checksum covers the bytes that are there.
 *
 * Dynamic disk header, 1024 bytes, at the footer's data offset:
 *
 *     0  cookie[8]            "cxsparse"
 *     8  data offset          unused, ~0
 *    16  table offset         absolute offset of the BAT
 *    24  header version       0x00010000
 *    28  max table entries    entries in the BAT
 *    32  block size           bytes of guest data per block, 2 MiB default
 *    36  checksum             as the footer's, over 1024 bytes
 *    40  parent unique id[16] differencing: the parent footer's unique id
 *    56  parent time stamp
 *    60  reserved
 *    64  parent unicode name[512]   UTF-16 big-endian file name
 *   576  parent locator entries[8], 24 bytes each:
 *            0 platform code    "W2ru", "W2ku", "Wi2r", "Wi2k", "Mac ",
 *                               "MacX", or 0 for none
 *            4 platform data space   sectors per the spec, bytes in
 *                               practice (Virtual PC, Hyper-V)
 *            8 platform data length  bytes of locator data
 *           12 reserved
 *           16 platform data offset  absolute file offset of the data
 *   768  reserved[256]
 *
 * Block allocation table: max table entries 32-bit sector numbers, one
 * per block, ~0 for a block not allocated.  An allocated block starts at
 * sector * 512 with its sector bitmap (one bit per sector of the block,
 * most significant bit first, padded to a multiple of 512 bytes), followed
 * by block size bytes of data.
 */

#define VHD_SECTOR 512u
#define VHD_FOOTER_SIZE 512u
#define VHD_OLD_FOOTER_SIZE 511u
#define VHD_HEADER_SIZE 1024u
#define VHD_NUM_LOCATORS 8

#define VHD_TYPE_FIXED 2u
#define VHD_TYPE_DYNAMIC 3u
#define VHD_TYPE_DIFF 4u

#define VHD_BAT_UNUSED 0xffffffffu
#define VHD_DEFAULT_BLOCK (2u << 20)
#define VHD_MIN_BLOCK 512u
#define VHD_MAX_BLOCK (256u << 20)

/* The largest disk qemu accepts (about 2040 GiB), and the geometry that
 * means "the size is in the current size field". */
#define VHD_MAX_SECTORS (65535ull * 255 * 255)
#define VHD_CHS_MAX_C 65535u
#define VHD_CHS_MAX_H 16u
#define VHD_CHS_MAX_S 255u
#define VHD_CHS_MAX_SECTORS (65535ull * 16 * 255)

#define VHD_BAT_CAP (16u << 20)         /* bytes of BAT held in memory */
#define VHD_LOCATOR_CAP 65536u          /* bytes of one parent locator */
#define VHD_EXTENT_CAP (256ull << 20)   /* block status extent with I/O */

/* Seconds from the Unix epoch to 2000-01-01 00:00:00 UTC. */
#define VHD_EPOCH 946684800

#define PLAT(a, b, c, d) \
    ((uint32_t) (a) << 24 | (uint32_t) (b) << 16 | (uint32_t) (c) << 8 | \
     (uint32_t) (d))
#define PLAT_W2RU PLAT ('W', '2', 'r', 'u')
#define PLAT_W2KU PLAT ('W', '2', 'k', 'u')
#define PLAT_WI2R PLAT ('W', 'i', '2', 'r')
#define PLAT_WI2K PLAT ('W', 'i', '2', 'k')
#define PLAT_MAC PLAT ('M', 'a', 'c', ' ')
#define PLAT_MACX PLAT ('M', 'a', 'c', 'X')

struct vhd_footer {
    uint32_t features;
    uint32_t version;
    uint64_t data_offset;
    uint32_t timestamp;
    char creator_app[4];
    uint32_t creator_version;
    char creator_os[4];
    uint64_t original_size;
    uint64_t current_size;
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
    uint32_t disk_type;
    uint32_t checksum;
    unsigned char uuid[16];
    uint8_t saved_state;
};

struct vhd_locator {
    uint32_t code;
    uint32_t space;
    uint32_t length;
    uint64_t offset;
};

/* What a sector bitmap says about a whole block, learnt on first use. */
enum { BM_UNKNOWN, BM_ALL_SET, BM_ALL_CLEAR, BM_MIXED };

/* The kinds of runs inside a block. */
enum { RUN_DATA, RUN_ZERO, RUN_PARENT };

struct vhd {
    struct vhd_footer footer;
    unsigned char head[VHD_FOOTER_SIZE];    /* raw footer copy at 0 */
    unsigned char tail[VHD_FOOTER_SIZE];    /* raw footer at the end */
    unsigned tail_len;          /* 512, 511, or 0 when there is none */
    bool has_head;
    uint32_t type;
    uint64_t data_end;          /* end of the area blocks may use */

    /* Dynamic and differencing disks. */
    uint64_t header_offset;
    uint64_t bat_offset;
    uint32_t max_entries;
    uint32_t block_size;
    unsigned block_shift;
    uint32_t bitmap_size;       /* bytes, a multiple of 512 */
    uint64_t nblocks;           /* blocks covering the virtual size */
    uint32_t *bat;              /* nblocks entries, host order */
    uint8_t *bstate;            /* nblocks BM_* */
    unsigned char *bitmap;      /* cached bitmap of block bitmap_block */
    uint64_t bitmap_block;
    struct vhd_locator loc[VHD_NUM_LOCATORS];
    unsigned char parent_uuid[16];
    bool parent_checked;

    /* Writing. */
    bool w_dynamic;
    uint64_t next_free;         /* where the next block's bitmap goes */
    uint64_t file_end;          /* end of the last block written */
    uint64_t ck_synced;         /* BAT entries below are in the file */
};

/* One's complement of the byte sum of BUF, the 4-byte checksum field at
 * CSUM_OFF counted as zero. */
uint32_t vhd_checksum (const unsigned char *buf, size_t len, size_t csum_off);

/* The writer (vhd-write.c). */
extern const struct create_option vhd_create_opts[];
int vhd_create (struct image *img, const struct create_params *p);
int vhd_pwrite (struct image *img, const void *buf, size_t count,
                uint64_t offset);
int vhd_finish (struct image *img);
int vhd_checkpoint (struct image *img, void *state, size_t *len);
int vhd_resume (struct image *img, const struct create_params *p,
                const void *state, size_t len);

#endif
