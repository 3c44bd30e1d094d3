/* SPDX-License-Identifier: MIT */
/*
 * Partition tables (GPT, MBR with extended/logical partitions) and LVM2
 * physical volumes, read from the specifications with our own parsers.
 * Everything read is hostile: every field is checked, every loop and
 * allocation capped; what is not understood makes the caller count the
 * space as used (DESIGN.md rule 3), with a reason in the warning list.
 */
#ifndef VMC_PART_H
#define VMC_PART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../fs/fs.h"
#include "../fs/rangeset.h"

/* Warnings collected for printing ("why" lines), capped. */
#define WHY_MAX 64
struct whys {
    char *msg[WHY_MAX];
    size_t n;
    size_t dropped;
};
void whys_add (struct whys *w, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
void whys_free (struct whys *w);

#define PART_MAX 256            /* partitions per disk we keep */

struct part_entry {
    unsigned number;            /* 1.. (MBR logicals from 5) */
    uint64_t start, size;       /* bytes on the disk */
    char type[40];              /* GPT type GUID, or MBR "0x83" */
    char name[80];              /* GPT name (UTF-8), may be empty */
    char guid[40];              /* GPT unique GUID, may be empty */
    bool bios_boot;             /* a GPT BIOS boot partition */
};

struct part_table {
    char kind[8];               /* "gpt", "mbr", or "none" */
    uint32_t sector_size;
    char disk_id[40];           /* GPT disk GUID or MBR "0x1234abcd" */
    struct part_entry *e;
    size_t n;
    /* Disk ranges used by the table itself (MBR, GPT headers and entry
     * arrays, EBRs, the area outside GPT's usable range). */
    struct rangeset meta;
    /* The table could not be trusted: count the whole disk used. */
    bool all_used;
    char why[256];
};

/* Read the partition table of the disk V.  0 (T filled, possibly "none"
 * or all_used), -1 on a read or memory error. */
int part_read (const struct volume *v, struct part_table *t,
               struct whys *w);
void part_table_free (struct part_table *t);

/* ---- LVM2 ------------------------------------------------------------ */

/* The metadata text format's values (a small tree). */
enum cfg_type { CFG_SECTION, CFG_STRING, CFG_NUMBER, CFG_ARRAY };
struct cfg_node {
    char *key;                  /* NULL for array elements */
    enum cfg_type type;
    char *str;                  /* CFG_STRING */
    int64_t num;                /* CFG_NUMBER */
    struct cfg_node *child;     /* CFG_SECTION members, CFG_ARRAY elements */
    struct cfg_node *next;
};

/* Parse LVM's config text (TEXT, LEN bytes).  NULL with a message on a
 * syntax error or when a cap is hit. */
struct cfg_node *cfg_parse (const char *text, size_t len);
void cfg_free (struct cfg_node *n);
const struct cfg_node *cfg_get (const struct cfg_node *section,
                                const char *key);
/* Typed lookups: 0 when found with that type. */
int cfg_get_num (const struct cfg_node *s, const char *key, int64_t *out);
const char *cfg_get_str (const struct cfg_node *s, const char *key);

/* One LVM physical volume found on a volume. */
struct lvm_pv {
    char uuid[33];              /* 32 characters, no dashes */
    uint64_t dev_size;          /* bytes, from the PV header (0: unknown) */
    uint64_t pe_start;          /* bytes: the first data area's offset */
    struct rangeset meta;       /* PV-relative bytes: label, mdas */
    char *text;                 /* the newest metadata text, or NULL */
    size_t text_len;
    uint64_t seqno;             /* from the text, when parsed */
    char why[256];              /* when the metadata could not be read */
};

/* 1 when V starts with an LVM2 label, 0 when not, -1 on a read error. */
int lvm_probe (const struct volume *v);

/* Read the PV label, header and metadata area of V.  0 on success (PV
 * filled; pv->text NULL with pv->why when there is no usable metadata),
 * -1 on a read or memory error. */
int lvm_pv_read (const struct volume *v, struct lvm_pv *pv);
void lvm_pv_free (struct lvm_pv *pv);

/* LVM's metadata checksum (CRC-32 without the final inversion, seeded). */
uint32_t lvm_crc (uint32_t seed, const void *buf, size_t len);

#endif
