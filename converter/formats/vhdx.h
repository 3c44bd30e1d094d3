/* SPDX-License-Identifier: MIT */
/*
 * vhdx: what the reader (vhdx.c), the log replay (vhdx-log.c) and the
 * writer (vhdx-write.c) share: the layout constants, the well-known GUIDs,
 * and the private state.  The design comment and the on-disk layout are in
 * vhdx.c.
 */
#ifndef VMC_FORMATS_VHDX_H
#define VMC_FORMATS_VHDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/checksum.h"
#include "../lib/image.h"

#define VHDX_KIB 1024u
#define VHDX_MIB (1024u * 1024u)

/* The fixed part of the file: identifier, two headers, two region tables. */
#define VHDX_FILEID_SIZE (64 * VHDX_KIB)
#define VHDX_CREATOR_OFF 8
#define VHDX_CREATOR_SIZE 512
#define VHDX_HEADER1_OFF (64 * VHDX_KIB)
#define VHDX_HEADER2_OFF (128 * VHDX_KIB)
#define VHDX_HEADER_SIZE (4 * VHDX_KIB)
#define VHDX_RT1_OFF (192 * VHDX_KIB)
#define VHDX_RT2_OFF (256 * VHDX_KIB)
#define VHDX_RT_SIZE (64 * VHDX_KIB)
#define VHDX_RT_MAX_ENTRIES 2047
#define VHDX_RT_ENTRY_SIZE 32
#define VHDX_REGION_ALIGN VHDX_MIB      /* regions, log, blocks: 1 MiB */

/* The metadata region: a 64 KiB table, then the items. */
#define VHDX_MD_TABLE_SIZE (64 * VHDX_KIB)
#define VHDX_MD_MAX_ENTRIES 2047
#define VHDX_MD_ENTRY_SIZE 32
#define VHDX_MD_ITEM_MAX VHDX_MIB

/* Metadata table entry flags. */
#define VHDX_MD_IS_USER 1u
#define VHDX_MD_IS_VIRTUAL_DISK 2u
#define VHDX_MD_IS_REQUIRED 4u

/* File Parameters flags. */
#define VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED 1u
#define VHDX_PARAM_HAS_PARENT 2u

#define VHDX_BLOCK_MIN VHDX_MIB
#define VHDX_BLOCK_MAX (256 * VHDX_MIB)
/* 64 TiB, the spec's limit. */
#define VHDX_MAX_VIRTUAL_SIZE ((uint64_t) 64 << 40)

/* Largest file offset this reader accepts for anything (the log may make
 * the file look longer than it is): 128 TiB, twice the largest disk. */
#define VHDX_MAX_FILE_SIZE ((uint64_t) 128 << 40)

/* BAT entries: state in bits 0-2, FileOffsetMB in bits 20-63. */
#define VHDX_BAT_STATE_MASK 7u
#define VHDX_BAT_OFFSET_MASK (~(uint64_t) (VHDX_MIB - 1))
#define VHDX_BAT_RESERVED_MASK ((uint64_t) (VHDX_MIB - 1) & ~7ull)

enum vhdx_block_state {
    VHDX_PAYLOAD_NOT_PRESENT = 0,
    VHDX_PAYLOAD_UNDEFINED = 1,
    VHDX_PAYLOAD_ZERO = 2,
    VHDX_PAYLOAD_UNMAPPED = 3,
    VHDX_PAYLOAD_FULLY_PRESENT = 6,
    VHDX_PAYLOAD_PARTIALLY_PRESENT = 7,
};

/* The log: 4 KiB sectors in a circular buffer. */
#define VHDX_LOG_SECTOR 4096u
#define VHDX_LOG_HEADER_SIZE 64u
#define VHDX_LOG_DESC_SIZE 32u

/* Replay limits: the log is read whole into memory (Hyper-V and qemu make
 * 1 MiB logs), and at most this many descriptors are applied. */
#define VHDX_LOG_MAX (16 * VHDX_MIB)
#define VHDX_LOG_MAX_OPS 65536u

/* A GUID as stored: Data1, Data2, Data3 little-endian, then 8 bytes. */
#define VHDX_GUID(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)           \
    { (a) & 0xff, ((a) >> 8) & 0xff, ((a) >> 16) & 0xff,              \
      ((a) >> 24) & 0xff, (b) & 0xff, ((b) >> 8) & 0xff, (c) & 0xff,   \
      ((c) >> 8) & 0xff, d0, d1, d2, d3, d4, d5, d6, d7 }

extern const unsigned char vhdx_guid_bat[16];
extern const unsigned char vhdx_guid_metadata[16];
extern const unsigned char vhdx_guid_file_params[16];
extern const unsigned char vhdx_guid_disk_size[16];
extern const unsigned char vhdx_guid_disk_id[16];
extern const unsigned char vhdx_guid_logical_sector[16];
extern const unsigned char vhdx_guid_physical_sector[16];
extern const unsigned char vhdx_guid_parent_locator[16];

#define VHDX_GUID_STR 37

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" of an on-disk GUID. */
void vhdx_guid_str (const unsigned char *g, char out[VHDX_GUID_STR]);

bool vhdx_guid_is_zero (const unsigned char *g);

/* CRC-32C of BUF[0..len) with the 4-byte field at CSUM_OFF taken as zero,
 * as every VHDX checksum is defined. */
uint32_t vhdx_checksum (const unsigned char *buf, size_t len, size_t csum_off);

/* One piece of the replayed log: file bytes [start, start+len) read as
 * DATA (or zeros when DATA is NULL) instead of what the file holds. */
struct vhdx_seg {
    uint64_t start;
    uint64_t len;
    const unsigned char *data;
};

struct vhdx_writer;

struct vhdx {
    /* The file as the reader sees it: the container plus the log's
     * overlay, which may also extend it (vfile_size >= file_size). */
    uint64_t file_size;
    uint64_t vfile_size;
    unsigned char *log_buf;     /* the log region; overlay data points in */
    struct vhdx_seg *segs;      /* sorted, disjoint */
    size_t nsegs;
    bool log_replayed;
    uint64_t log_entries;       /* entries replayed */
    uint64_t log_head_seq;

    /* The current header. */
    unsigned cur_header;        /* 1 or 2 */
    uint64_t header_seq;
    unsigned char log_guid[16];
    uint64_t log_off;
    uint64_t log_len;
    char header_problem[2][160]; /* why a header is not valid, for check */

    /* The region table in use, and where things are. */
    unsigned cur_rt;            /* 1 or 2 */
    char rt_problem[2][160];
    uint64_t bat_off, bat_len;
    uint64_t md_off, md_len;

    /* Metadata. */
    uint32_t block_size;
    unsigned block_bits;
    bool leave_allocated;
    uint32_t logical_sector;
    uint32_t physical_sector;
    unsigned char disk_id[16];
    uint64_t chunk_ratio;       /* payload blocks per sector bitmap block */
    uint64_t nblocks;           /* payload blocks */
    uint64_t bat_entries;       /* payload + sector bitmap entries */
    uint64_t blocks_present;

    /* A window of the BAT (host order), reloaded on demand. */
    uint64_t *bat;
    uint64_t bat_first;
    uint64_t bat_count;
    uint64_t bat_cap;

    struct vhdx_writer *w;
};

/* vhdx-log.c */
int vhdx_log_replay (struct image *img);
int vhdx_vread (struct image *img, void *buf, size_t count, uint64_t offset);
void vhdx_log_free (struct vhdx *s);

/* vhdx-write.c */
extern const struct create_option vhdx_create_opts[];
int vhdx_create (struct image *img, const struct create_params *p);
int vhdx_pwrite (struct image *img, const void *buf, size_t count,
                 uint64_t offset);
int vhdx_finish (struct image *img);
int vhdx_checkpoint (struct image *img, void *state, size_t *len);
int vhdx_resume (struct image *img, const struct create_params *p,
                 const void *state, size_t len);
void vhdx_writer_free (struct vhdx *s);

#endif
