/* SPDX-License-Identifier: MIT */
/*
 * vhdx: Hyper-V's Virtual Hard Disk v2.
 *
 * Spec: Microsoft [MS-VHDX] "Virtual Hard Disk v2 (VHDX) File Format",
 * v1.0 (2012) and later revisions (v4.0, 2018), at
 * https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-vhdx/
 * Every number below is little-endian; every checksum is CRC-32C.
 *
 * Supported: reading dynamic and fixed images (payload block states
 * NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED read as zeros; FULLY_PRESENT as
 * data), 512 and 4096 byte logical sectors, block sizes 1-256 MiB, and a
 * log that needs replay: it is replayed into memory (vhdx-log.c), never
 * into the source, and everything after the headers is read through it.
 * Writing dynamic and fixed images (vhdx-write.c).
 *
 * Not supported: differencing images (HasParent, a Parent Locator,
 * PARTIALLY_PRESENT blocks) are refused with a clear message; so are
 * unknown regions or metadata items marked required.  Optional unknown
 * regions and items (user metadata) are ignored.  Sector bitmap entries
 * mean nothing without a parent and are not read.
 *
 * Which copy: the current header is the valid one (signature, CRC-32C)
 * with the higher sequence number; region table 1 is used when valid,
 * else region table 2, except that an unknown region marked required is
 * always refused; check reports any copy that is not valid.
 *
 * Limits enforced (hostile input): the file holds at least the identifier,
 * both headers and region table 1 (256 KiB); header version 1 and log
 * version 0; the log, every region and every block are 1 MiB aligned, at
 * or above 1 MiB and inside the file (regions: inside the file itself;
 * blocks: inside the file as the log replay may extend it), and the log
 * and regions are clear of each other; at most 2047 region and metadata
 * entries; metadata items of the expected size, at most 1 MiB, inside
 * their region; block size a power of two in 1-256 MiB; sector sizes 512
 * or 4096; virtual size 1 byte to 64 TiB; nothing past 128 TiB.  The BAT
 * is validated entry by entry at open and then read in windows of at most
 * VHDX_BAT_WINDOW entries (4 MiB), so memory does not grow with the disk;
 * check uses a map of 1 bit per MiB of file (at most 16 MiB).  Log replay
 * limits: vhdx-log.c.
 *
 * Layout:
 *
 *   0       File Type Identifier (64 KiB)
 *             0  Signature    8  "vhdxfile"
 *             8  Creator    512  UTF-16LE, informative
 *   64 KiB  Header 1 (4 KiB used of 64 KiB)
 *   128 KiB Header 2
 *             0  Signature         4  "head"
 *             4  Checksum          4  CRC-32C of the 4 KiB, this field 0
 *             8  SequenceNumber    8  the valid header with the higher one
 *                                     is current
 *            16  FileWriteGuid    16
 *            32  DataWriteGuid    16
 *            48  LogGuid          16  zero: the log is empty (clean)
 *            64  LogVersion        2  0
 *            66  Version           2  1
 *            68  LogLength         4  multiple of 1 MiB
 *            72  LogOffset         8  multiple of 1 MiB, >= 1 MiB
 *   192 KiB Region Table 1 (64 KiB)
 *   256 KiB Region Table 2 (a copy)
 *             0  Signature         4  "regi"
 *             4  Checksum          4  CRC-32C of the 64 KiB, this field 0
 *             8  EntryCount        4  <= 2047
 *            12  Reserved          4
 *            16  entries of 32 bytes:
 *                 0  Guid         16  BAT or metadata region, or other
 *                16  FileOffset    8  multiple of 1 MiB, >= 1 MiB
 *                24  Length        4  multiple of 1 MiB
 *                28  Required      4  bit 0: refuse the file if unknown
 *   1 MiB.. log, metadata region, BAT region, payload blocks, anywhere
 *           (1 MiB aligned), found through the header and the region table.
 *
 *   Metadata region: a 64 KiB table, then the items it points to.
 *             0  Signature         8  "metadata"
 *             8  Reserved          2
 *            10  EntryCount        2  <= 2047
 *            12  Reserved         20
 *            32  entries of 32 bytes:
 *                 0  ItemId       16
 *                16  Offset        4  from the region start, >= 64 KiB
 *                20  Length        4  <= 1 MiB
 *                24  flags         4  bit 0 IsUser, 1 IsVirtualDisk,
 *                                     2 IsRequired
 *                28  Reserved      4
 *     Items: File Parameters (BlockSize 4, flags 4: bit 0
 *     LeaveBlockAllocated, bit 1 HasParent), Virtual Disk Size (8),
 *     Virtual Disk ID (16, the SCSI page 83 GUID), Logical Sector Size (4),
 *     Physical Sector Size (4), Parent Locator (differencing only).
 *
 *   BAT: 8-byte entries.  Bits 0-2 State, 3-19 reserved, 20-63
 *   FileOffsetMB.  Payload block i is entry i + i / ChunkRatio: after every
 *   ChunkRatio payload entries comes one sector bitmap entry (used only by
 *   differencing images), where ChunkRatio = 2^23 * LogicalSectorSize /
 *   BlockSize.  The table holds nblocks + (nblocks - 1) / ChunkRatio
 *   entries.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/crc32c.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"
#include "vhdx.h"

/* BAT window: 512 Ki entries (4 MiB) cover 512 GiB of disk with 1 MiB
 * blocks and 16 TiB with 32 MiB blocks, so most disks are read whole. */
#define VHDX_BAT_WINDOW (512u * 1024u)

const unsigned char vhdx_guid_bat[16] =
    VHDX_GUID (0x2DC27766, 0xF623, 0x4200,
               0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08);
const unsigned char vhdx_guid_metadata[16] =
    VHDX_GUID (0x8B7CA206, 0x4790, 0x4B9A,
               0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E);
const unsigned char vhdx_guid_file_params[16] =
    VHDX_GUID (0xCAA16737, 0xFA36, 0x4D43,
               0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B);
const unsigned char vhdx_guid_disk_size[16] =
    VHDX_GUID (0x2FA54224, 0xCD1B, 0x4876,
               0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8);
const unsigned char vhdx_guid_disk_id[16] =
    VHDX_GUID (0xBECA12AB, 0xB2E6, 0x4523,
               0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46);
const unsigned char vhdx_guid_logical_sector[16] =
    VHDX_GUID (0x8141BF1D, 0xA96F, 0x4709,
               0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F);
const unsigned char vhdx_guid_physical_sector[16] =
    VHDX_GUID (0xCDA348C7, 0x445D, 0x4471,
               0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56);
const unsigned char vhdx_guid_parent_locator[16] =
    VHDX_GUID (0xA8D35F2D, 0xB30B, 0x454D,
               0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C);

void
vhdx_guid_str (const unsigned char *g, char out[VHDX_GUID_STR])
{
    snprintf (out, VHDX_GUID_STR,
              "%08" PRIx32 "-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
              get_le32 (g), get_le16 (g + 4), get_le16 (g + 6), g[8], g[9],
              g[10], g[11], g[12], g[13], g[14], g[15]);
}

bool
vhdx_guid_is_zero (const unsigned char *g)
{
    static const unsigned char zero[16];

    return memcmp (g, zero, 16) == 0;
}

uint32_t
vhdx_checksum (const unsigned char *buf, size_t len, size_t csum_off)
{
    static const unsigned char zero[4];
    uint32_t c;

    c = crc32c (0, buf, csum_off);
    c = crc32c (c, zero, 4);
    return crc32c (c, buf + csum_off + 4, len - csum_off - 4);
}

/* ---- Decoding and validation ---------------------------------------- */

struct header {
    uint64_t seq;
    unsigned char log_guid[16];
    uint16_t log_version;
    uint16_t version;
    uint32_t log_length;
    uint64_t log_offset;
};

/* Is the header in BUF valid (signature and checksum)?  If not, say why in
 * WHY. */
static bool
header_valid (const unsigned char *buf, struct header *h, char *why,
              size_t whylen)
{
    uint32_t stored, computed;

    if (memcmp (buf, "head", 4) != 0) {
        snprintf (why, whylen, "signature is not \"head\"");
        return false;
    }
    stored = get_le32 (buf + 4);
    computed = vhdx_checksum (buf, VHDX_HEADER_SIZE, 4);
    if (!checksum_ok (stored, computed)) {
        snprintf (why, whylen, "checksum 0x%08" PRIx32 " does not match "
                  "the content (0x%08" PRIx32 ")", stored, computed);
        return false;
    }
    h->seq = get_le64 (buf + 8);
    memcpy (h->log_guid, buf + 48, 16);
    h->log_version = get_le16 (buf + 64);
    h->version = get_le16 (buf + 66);
    h->log_length = get_le32 (buf + 68);
    h->log_offset = get_le64 (buf + 72);
    why[0] = '\0';
    return true;
}

static int
read_headers (struct image *img)
{
    struct vhdx *s = img->priv;
    unsigned char buf[2][VHDX_HEADER_SIZE];
    struct header h[2], *cur;
    bool valid[2];
    unsigned i;

    for (i = 0; i < 2; i++) {
        if (bdev_pread (img->file, buf[i], VHDX_HEADER_SIZE,
                        i == 0 ? VHDX_HEADER1_OFF : VHDX_HEADER2_OFF) == -1) {
            return -1;
        }
        valid[i] = header_valid (buf[i], &h[i], s->header_problem[i],
                                 sizeof s->header_problem[i]);
    }
    if (!valid[0] && !valid[1]) {
        vmc_error ("vhdx: both headers are invalid (header 1: %s; "
                   "header 2: %s)", s->header_problem[0],
                   s->header_problem[1]);
        return -1;
    }
    if (valid[0] && valid[1] && h[0].seq == h[1].seq &&
        memcmp (buf[0], buf[1], VHDX_HEADER_SIZE) != 0) {
        /* The spec: a header is current only if it is the only valid one
         * or its sequence number is greater. */
        vmc_error ("vhdx: both headers have sequence number %" PRIu64
                   " but differ: no current header", h[0].seq);
        return -1;
    }
    if (!valid[1] || (valid[0] && h[0].seq >= h[1].seq)) {
        s->cur_header = 1;
    }
    else {
        s->cur_header = 2;
    }
    cur = &h[s->cur_header - 1];
    s->header_seq = cur->seq;
    if (cur->version != 1) {
        vmc_error ("vhdx: header %u: version %u is not supported "
                   "(expected 1)", s->cur_header, cur->version);
        return -1;
    }
    if (cur->log_version != 0) {
        vmc_error ("vhdx: header %u: log version %u is not supported "
                   "(expected 0)", s->cur_header, cur->log_version);
        return -1;
    }
    if (!IS_ALIGNED (cur->log_offset, VHDX_REGION_ALIGN) ||
        cur->log_offset < VHDX_REGION_ALIGN) {
        vmc_error ("vhdx: header %u: log offset 0x%" PRIx64 " is not a "
                   "multiple of 1 MiB at or above 1 MiB", s->cur_header,
                   cur->log_offset);
        return -1;
    }
    if (!IS_ALIGNED (cur->log_length, VHDX_REGION_ALIGN)) {
        vmc_error ("vhdx: header %u: log length %" PRIu32 " is not a "
                   "multiple of 1 MiB", s->cur_header, cur->log_length);
        return -1;
    }
    if (range_outside (cur->log_offset, cur->log_length, s->file_size)) {
        vmc_error ("vhdx: header %u: log (%" PRIu32 " bytes at 0x%" PRIx64
                   ") extends past the end of the file (%" PRIu64 " bytes)",
                   s->cur_header, cur->log_length, cur->log_offset,
                   s->file_size);
        return -1;
    }
    memcpy (s->log_guid, cur->log_guid, 16);
    s->log_off = cur->log_offset;
    s->log_len = cur->log_length;
    return 0;
}

/* Region table entry I of BUF, decoded. */
struct region {
    unsigned char guid[16];
    uint64_t offset;
    uint32_t length;
    bool required;
};

static void
region_decode (const unsigned char *buf, uint32_t i, struct region *r)
{
    const unsigned char *e = buf + 16 + i * VHDX_RT_ENTRY_SIZE;

    memcpy (r->guid, e, 16);
    r->offset = get_le64 (e + 16);
    r->length = get_le32 (e + 24);
    r->required = (get_le32 (e + 28) & 1) != 0;
}

/* Where a region table says the BAT and the metadata are. */
struct rt_result {
    uint64_t bat_off, bat_len;
    uint64_t md_off, md_len;
};

/* Validate the region table in BUF.  On success fill OUT; otherwise say why in WHY, and set
 * *unknown_required when the reason is a required region we do not
 * know, which is never worked around. */
static bool
parse_region_table (struct vhdx *s, const unsigned char *buf,
                    struct rt_result *out, bool *unknown_required, char *why,
                    size_t whylen)
{
    struct region r, o;
    uint32_t count, stored, computed, i, j;
    bool have_bat = false, have_md = false;
    char g[VHDX_GUID_STR];

    *unknown_required = false;
    if (memcmp (buf, "regi", 4) != 0) {
        snprintf (why, whylen, "signature is not \"regi\"");
        return false;
    }
    stored = get_le32 (buf + 4);
    computed = vhdx_checksum (buf, VHDX_RT_SIZE, 4);
    if (!checksum_ok (stored, computed)) {
        snprintf (why, whylen, "checksum 0x%08" PRIx32 " does not match "
                  "the content (0x%08" PRIx32 ")", stored, computed);
        return false;
    }
    count = get_le32 (buf + 8);
    if (count > VHDX_RT_MAX_ENTRIES) {
        snprintf (why, whylen, "entry count %" PRIu32 " is above %d", count,
                  VHDX_RT_MAX_ENTRIES);
        return false;
    }
    for (i = 0; i < count; i++) {
        region_decode (buf, i, &r);
        vhdx_guid_str (r.guid, g);
        if (!IS_ALIGNED (r.offset, VHDX_REGION_ALIGN) ||
            r.offset < VHDX_REGION_ALIGN) {
            snprintf (why, whylen, "region %s offset 0x%" PRIx64 " is not a "
                      "multiple of 1 MiB at or above 1 MiB", g, r.offset);
            return false;
        }
        if (!IS_ALIGNED (r.length, VHDX_REGION_ALIGN) ||
            r.length == 0) {
            snprintf (why, whylen, "region %s length %" PRIu32 " is not a "
                      "non-zero multiple of 1 MiB", g, r.length);
            return false;
        }
        /* Regions must be in the file itself, not only in space the log
         * would add: nothing real is written there before the log. */
        if (range_outside (r.offset, r.length, s->file_size)) {
            snprintf (why, whylen, "region %s (%" PRIu32 " bytes at 0x%"
                      PRIx64 ") extends past the end of the file", g,
                      r.length, r.offset);
            return false;
        }
        if (s->log_len > 0 && r.offset < s->log_off + s->log_len &&
            s->log_off < r.offset + r.length) {
            snprintf (why, whylen, "region %s overlaps the log", g);
            return false;
        }
        for (j = 0; j < i; j++) {
            region_decode (buf, j, &o);
            if (memcmp (o.guid, r.guid, 16) == 0) {
                snprintf (why, whylen, "region %s is listed twice", g);
                return false;
            }
            if (r.offset < o.offset + o.length &&
                o.offset < r.offset + r.length) {
                snprintf (why, whylen, "region %s overlaps another region",
                          g);
                return false;
            }
        }
        if (memcmp (r.guid, vhdx_guid_bat, 16) == 0) {
            have_bat = true;
            out->bat_off = r.offset;
            out->bat_len = r.length;
        }
        else if (memcmp (r.guid, vhdx_guid_metadata, 16) == 0) {
            have_md = true;
            out->md_off = r.offset;
            out->md_len = r.length;
        }
        else if (r.required) {
            *unknown_required = true;
            snprintf (why, whylen, "region %s is required but not known "
                      "to this reader", g);
            return false;
        }
    }
    if (!have_bat || !have_md) {
        snprintf (why, whylen, "no %s region", have_bat ? "metadata" : "BAT");
        return false;
    }
    return true;
}

/* Read and parse region table WHICH (1 or 2) through the log overlay. */
static int
read_region_table (struct image *img, unsigned which, struct rt_result *out,
                   bool *ok, bool *unknown_required)
{
    struct vhdx *s = img->priv;
    uint64_t off = which == 1 ? VHDX_RT1_OFF : VHDX_RT2_OFF;
    char *why = s->rt_problem[which - 1];
    size_t whylen = sizeof s->rt_problem[which - 1];
    unsigned char *buf;
    int ret = -1;

    *ok = false;
    *unknown_required = false;
    if (range_outside (off, VHDX_RT_SIZE, s->vfile_size)) {
        snprintf (why, whylen, "it is past the end of the file");
        return 0;
    }
    buf = malloc (VHDX_RT_SIZE);
    if (buf == NULL) {
        vmc_perror ("vhdx: malloc");
        goto out;
    }
    if (vhdx_vread (img, buf, VHDX_RT_SIZE, off) == -1) {
        goto out;
    }
    *ok = parse_region_table (s, buf, out, unknown_required, why, whylen);
    ret = 0;
out:
    free (buf);
    return ret;
}

/* Use region table 1, or table 2 if table 1 is not valid.  An unknown
 * required region is never worked around. */
static int
read_region_tables (struct image *img)
{
    struct vhdx *s = img->priv;
    struct rt_result rt;
    bool ok = false, unknown;
    unsigned i;

    for (i = 1; i <= 2 && !ok; i++) {
        if (read_region_table (img, i, &rt, &ok, &unknown) == -1) {
            return -1;
        }
        if (unknown) {
            vmc_error ("vhdx: region table %u: %s", i, s->rt_problem[i - 1]);
            return -1;
        }
        if (ok) {
            s->cur_rt = i;
        }
    }
    if (!ok) {
        vmc_error ("vhdx: both region tables are invalid (region table 1: "
                   "%s; region table 2: %s)", s->rt_problem[0],
                   s->rt_problem[1]);
        return -1;
    }
    s->bat_off = rt.bat_off;
    s->bat_len = rt.bat_len;
    s->md_off = rt.md_off;
    s->md_len = rt.md_len;
    return 0;
}

struct md_item {
    const unsigned char *guid;
    const char *name;
    uint32_t length;            /* required length */
    bool found;
    unsigned char data[16];
};

enum { MD_PARAMS, MD_SIZE, MD_ID, MD_LSS, MD_PSS, MD_NKNOWN };

static int
read_metadata (struct image *img)
{
    struct vhdx *s = img->priv;
    struct md_item items[MD_NKNOWN] = {
        [MD_PARAMS] = { .guid = vhdx_guid_file_params,
                        .name = "File Parameters", .length = 8 },
        [MD_SIZE] = { .guid = vhdx_guid_disk_size,
                      .name = "Virtual Disk Size", .length = 8 },
        [MD_ID] = { .guid = vhdx_guid_disk_id,
                    .name = "Virtual Disk ID", .length = 16 },
        [MD_LSS] = { .guid = vhdx_guid_logical_sector,
                     .name = "Logical Sector Size", .length = 4 },
        [MD_PSS] = { .guid = vhdx_guid_physical_sector,
                     .name = "Physical Sector Size", .length = 4 },
    };
    unsigned char *table;
    uint32_t off, len, flags;
    uint16_t count, i, j;
    bool parent_locator = false;
    char g[VHDX_GUID_STR];
    uint32_t params;
    uint64_t size;
    int r = -1;

    if (s->md_len < VHDX_MD_TABLE_SIZE) {
        vmc_error ("vhdx: metadata region is smaller than its table");
        return -1;
    }
    table = malloc (VHDX_MD_TABLE_SIZE);
    if (table == NULL) {
        vmc_perror ("vhdx: malloc");
        return -1;
    }
    if (vhdx_vread (img, table, VHDX_MD_TABLE_SIZE, s->md_off) == -1) {
        goto out;
    }
    if (memcmp (table, "metadata", 8) != 0) {
        vmc_error ("vhdx: metadata table signature is not \"metadata\"");
        goto out;
    }
    count = get_le16 (table + 10);
    if (count > VHDX_MD_MAX_ENTRIES) {
        vmc_error ("vhdx: metadata table entry count %u is above %d", count,
                   VHDX_MD_MAX_ENTRIES);
        goto out;
    }
    for (i = 0; i < count; i++) {
        const unsigned char *e = table + 32 + i * VHDX_MD_ENTRY_SIZE;

        off = get_le32 (e + 16);
        len = get_le32 (e + 20);
        flags = get_le32 (e + 24);
        vhdx_guid_str (e, g);
        if (len > 0 && (off < VHDX_MD_TABLE_SIZE || len > VHDX_MD_ITEM_MAX ||
                        range_outside (off, len, s->md_len))) {
            vmc_error ("vhdx: metadata item %s (%" PRIu32 " bytes at %"
                       PRIu32 ") is not inside the metadata region", g, len,
                       off);
            goto out;
        }
        for (j = 0; j < MD_NKNOWN; j++) {
            if (memcmp (e, items[j].guid, 16) == 0) {
                break;
            }
        }
        if (j == MD_NKNOWN) {
            if (memcmp (e, vhdx_guid_parent_locator, 16) == 0) {
                parent_locator = true;
            }
            else if (flags & VHDX_MD_IS_REQUIRED) {
                vmc_error ("vhdx: metadata item %s is required but not "
                           "known to this reader", g);
                goto out;
            }
            continue;
        }
        if (items[j].found) {
            vmc_error ("vhdx: metadata item %s is listed twice",
                       items[j].name);
            goto out;
        }
        if (len != items[j].length) {
            vmc_error ("vhdx: metadata item %s is %" PRIu32 " bytes, "
                       "expected %" PRIu32, items[j].name, len,
                       items[j].length);
            goto out;
        }
        if (vhdx_vread (img, items[j].data, len, s->md_off + off) == -1) {
            goto out;
        }
        items[j].found = true;
    }
    for (j = 0; j < MD_NKNOWN; j++) {
        if (!items[j].found) {
            vmc_error ("vhdx: metadata item %s is missing", items[j].name);
            goto out;
        }
    }

    s->block_size = get_le32 (items[MD_PARAMS].data);
    params = get_le32 (items[MD_PARAMS].data + 4);
    if (!is_power_of_2 (s->block_size) || s->block_size < VHDX_BLOCK_MIN ||
        s->block_size > VHDX_BLOCK_MAX) {
        vmc_error ("vhdx: block size %" PRIu32 " is not a power of two "
                   "from 1 MiB to 256 MiB", s->block_size);
        goto out;
    }
    s->block_bits = log2_u64 (s->block_size);
    s->leave_allocated = (params & VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED) != 0;
    if ((params & VHDX_PARAM_HAS_PARENT) || parent_locator) {
        vmc_error ("vhdx: differencing images are not supported");
        goto out;
    }
    s->logical_sector = get_le32 (items[MD_LSS].data);
    if (s->logical_sector != 512 && s->logical_sector != 4096) {
        vmc_error ("vhdx: logical sector size %" PRIu32 " is not 512 or "
                   "4096", s->logical_sector);
        goto out;
    }
    s->physical_sector = get_le32 (items[MD_PSS].data);
    if (s->physical_sector != 512 && s->physical_sector != 4096) {
        vmc_error ("vhdx: physical sector size %" PRIu32 " is not 512 or "
                   "4096", s->physical_sector);
        goto out;
    }
    size = get_le64 (items[MD_SIZE].data);
    if (size == 0 || size > VHDX_MAX_VIRTUAL_SIZE) {
        vmc_error ("vhdx: virtual disk size %" PRIu64 " is not between 1 "
                   "byte and 64 TiB", size);
        goto out;
    }
    img->size = size;
    memcpy (s->disk_id, items[MD_ID].data, 16);
    r = 0;
out:
    free (table);
    return r;
}

/* Make BAT entry J readable in the window. */
static int
bat_load (struct image *img, uint64_t j)
{
    struct vhdx *s = img->priv;
    unsigned char *raw = (unsigned char *) s->bat;
    uint64_t first, n, k;

    first = j - j % s->bat_cap;
    n = MIN (s->bat_cap, s->bat_entries - first);
    if (vhdx_vread (img, raw, n * 8, s->bat_off + first * 8) == -1) {
        return -1;
    }
    for (k = 0; k < n; k++) {
        s->bat[k] = get_le64 (raw + k * 8);
    }
    s->bat_first = first;
    s->bat_count = n;
    return 0;
}

/* The state of payload block BLK, and where its data is when it is
 * FULLY_PRESENT (validated: inside the file, clear of the headers). */
static int
block_lookup (struct image *img, uint64_t blk, unsigned *state,
              uint64_t *file_off)
{
    struct vhdx *s = img->priv;
    uint64_t j = blk + blk / s->chunk_ratio, v, off, used;

    if (j < s->bat_first || j >= s->bat_first + s->bat_count) {
        if (bat_load (img, j) == -1) {
            return -1;
        }
    }
    v = s->bat[j - s->bat_first];
    *state = v & VHDX_BAT_STATE_MASK;
    switch (*state) {
    case VHDX_PAYLOAD_NOT_PRESENT:
    case VHDX_PAYLOAD_UNDEFINED:
    case VHDX_PAYLOAD_ZERO:
    case VHDX_PAYLOAD_UNMAPPED:
        *file_off = 0;
        return 0;
    case VHDX_PAYLOAD_FULLY_PRESENT:
        break;
    case VHDX_PAYLOAD_PARTIALLY_PRESENT:
        vmc_error ("vhdx: BAT entry %" PRIu64 " (block %" PRIu64 ") is "
                   "PARTIALLY_PRESENT in an image without a parent", j, blk);
        return -1;
    default:
        vmc_error ("vhdx: BAT entry %" PRIu64 " (block %" PRIu64 ") has "
                   "the invalid state %u", j, blk, *state);
        return -1;
    }
    off = v & VHDX_BAT_OFFSET_MASK;
    /* The last block may be cut short by the virtual size. */
    used = MIN ((uint64_t) s->block_size,
                img->size - (blk << s->block_bits));
    if (off < VHDX_REGION_ALIGN) {
        vmc_error ("vhdx: BAT entry %" PRIu64 " (block %" PRIu64 ") points "
                   "into the file header", j, blk);
        return -1;
    }
    if (range_outside (off, used, s->vfile_size)) {
        vmc_error ("vhdx: BAT entry %" PRIu64 " (block %" PRIu64 ") points "
                   "past end of file (offset 0x%" PRIx64 ", file size %"
                   PRIu64 ")", j, blk, off, s->vfile_size);
        return -1;
    }
    *file_off = off;
    return 0;
}

static int
setup_bat (struct image *img)
{
    struct vhdx *s = img->priv;
    uint64_t need, blk, off;
    unsigned state;

    s->chunk_ratio = ((uint64_t) 1 << 23) * s->logical_sector / s->block_size;
    s->nblocks = DIV_ROUND_UP (img->size, (uint64_t) s->block_size);
    s->bat_entries = s->nblocks + (s->nblocks - 1) / s->chunk_ratio;
    if (ckd_mul (&need, s->bat_entries, (uint64_t) 8) || need > s->bat_len) {
        vmc_error ("vhdx: BAT region (%" PRIu64 " bytes) is too small for "
                   "%" PRIu64 " entries", s->bat_len, s->bat_entries);
        return -1;
    }
    s->bat_cap = MIN (s->bat_entries, (uint64_t) VHDX_BAT_WINDOW);
    s->bat = image_alloc_table (img, "BAT window", s->bat_cap, 8,
                                (uint64_t) VHDX_BAT_WINDOW * 8);
    if (s->bat == NULL) {
        return -1;
    }
    /* Validate every payload entry now, so that a bad one is reported at
     * open, and count the blocks present. */
    s->blocks_present = 0;
    for (blk = 0; blk < s->nblocks; blk++) {
        if (block_lookup (img, blk, &state, &off) == -1) {
            return -1;
        }
        if (state == VHDX_PAYLOAD_FULLY_PRESENT) {
            s->blocks_present++;
        }
    }
    return 0;
}

/* ---- Callbacks ------------------------------------------------------- */

static int
vhdx_probe (const struct probe_data *p)
{
    if (p->head_len >= 8 && memcmp (p->head, "vhdxfile", 8) == 0) {
        return 100;
    }
    return 0;
}

/* The creator string, as printable ASCII. */
static void
creator_string (const unsigned char *buf, char *out, size_t outlen)
{
    size_t i, o = 0;
    uint16_t c;

    for (i = 0; i + 1 < VHDX_CREATOR_SIZE && o + 1 < outlen; i += 2) {
        c = get_le16 (buf + i);
        if (c == 0) {
            break;
        }
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }
    while (o > 0 && out[o - 1] == ' ') {
        o--;
    }
    out[o] = '\0';
}

static int
vhdx_open (struct image *img)
{
    struct vhdx *s = img->priv;
    unsigned char id[8 + VHDX_CREATOR_SIZE];
    char creator[128], g[VHDX_GUID_STR];

    s->file_size = img->file->size;
    s->vfile_size = s->file_size;
    if (s->file_size < VHDX_RT2_OFF) {
        vmc_error ("vhdx: the file (%" PRIu64 " bytes) is too short to hold "
                   "the headers and region table", s->file_size);
        return -1;
    }
    if (bdev_pread (img->file, id, sizeof id, 0) == -1) {
        return -1;
    }
    if (memcmp (id, "vhdxfile", 8) != 0) {
        vmc_error ("vhdx: file type identifier is not \"vhdxfile\"");
        return -1;
    }
    creator_string (id + VHDX_CREATOR_OFF, creator, sizeof creator);
    if (read_headers (img) == -1) {
        return -1;
    }
    if (!vhdx_guid_is_zero (s->log_guid)) {
        if (vhdx_log_replay (img) == -1) {
            return -1;
        }
    }
    if (read_region_tables (img) == -1 || read_metadata (img) == -1 ||
        setup_bat (img) == -1) {
        return -1;
    }

    img->cluster_size = s->block_size;
    snprintf (img->subformat, sizeof img->subformat, "%s",
              s->leave_allocated ? "fixed" : "dynamic");
    image_info_add (img, "block size", "%" PRIu32, s->block_size);
    image_info_add (img, "logical sector size", "%" PRIu32,
                    s->logical_sector);
    image_info_add (img, "physical sector size", "%" PRIu32,
                    s->physical_sector);
    image_info_add (img, "blocks present", "%" PRIu64 " of %" PRIu64,
                    s->blocks_present, s->nblocks);
    image_info_add (img, "leave blocks allocated", "%s",
                    s->leave_allocated ? "yes" : "no");
    image_info_add (img, "log size", "%" PRIu64, s->log_len);
    if (vhdx_guid_is_zero (s->log_guid)) {
        image_info_add (img, "log replayed", "no (the log is clean)");
    }
    else if (s->log_replayed) {
        image_info_add (img, "log replayed", "yes, in memory (%" PRIu64
                        " entries up to sequence number %" PRIu64 ")",
                        s->log_entries, s->log_head_seq);
    }
    else {
        image_info_add (img, "log replayed", "no (no valid log sequence)");
    }
    image_info_add (img, "current header", "%u (sequence number %" PRIu64
                    ")", s->cur_header, s->header_seq);
    vhdx_guid_str (s->disk_id, g);
    image_info_add (img, "virtual disk id", "%s", g);
    if (creator[0] != '\0') {
        image_info_add (img, "creator", "%s", creator);
    }
    return 0;
}

static void
vhdx_close (struct image *img)
{
    struct vhdx *s = img->priv;

    vhdx_log_free (s);
    free (s->bat);
    s->bat = NULL;
    vhdx_writer_free (s);
}

static int
vhdx_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    struct vhdx *s = img->priv;
    unsigned char *p = buf;
    uint64_t blk, in, n, more, foff, noff;
    unsigned state, nstate;

    while (count > 0) {
        blk = offset >> s->block_bits;
        in = offset & (s->block_size - 1);
        n = MIN ((uint64_t) count, s->block_size - in);
        if (block_lookup (img, blk, &state, &foff) == -1) {
            return -1;
        }
        if (state != VHDX_PAYLOAD_FULLY_PRESENT) {
            memset (p, 0, n);
        }
        else {
            /* Take the following blocks along while they are present and
             * follow each other in the file: one read for all. */
            uint64_t start = foff + in;

            while (n < count) {
                if (block_lookup (img, blk + 1, &nstate, &noff) == -1) {
                    return -1;
                }
                if (nstate != VHDX_PAYLOAD_FULLY_PRESENT ||
                    noff != foff + s->block_size) {
                    break;
                }
                more = MIN ((uint64_t) count - n, (uint64_t) s->block_size);
                n += more;
                blk++;
                foff = noff;
            }
            if (vhdx_vread (img, p, n, start) == -1) {
                return -1;
            }
        }
        p += n;
        offset += n;
        count -= n;
    }
    return 0;
}

static int
vhdx_block_status (struct image *img, uint64_t offset, uint64_t count,
                   struct extent *ext)
{
    struct vhdx *s = img->priv;
    uint64_t blk, in, n, foff;
    unsigned state, nstate;
    bool data;

    blk = offset >> s->block_bits;
    in = offset & (s->block_size - 1);
    n = MIN (count, s->block_size - in);
    if (block_lookup (img, blk, &state, &foff) == -1) {
        return -1;
    }
    data = state == VHDX_PAYLOAD_FULLY_PRESENT;
    while (n < count) {
        if (block_lookup (img, ++blk, &nstate, &foff) == -1) {
            return -1;
        }
        if ((nstate == VHDX_PAYLOAD_FULLY_PRESENT) != data) {
            break;
        }
        n += MIN (count - n, (uint64_t) s->block_size);
    }
    ext->length = n;
    ext->type = data ? EXTENT_DATA : EXTENT_ZERO;
    return 0;
}

/* Mark [off, off+len) (1 MiB units) in the map; true if already taken. */
static bool
map_claim (unsigned char *map, uint64_t off, uint64_t len)
{
    uint64_t u, first = off / VHDX_MIB, last = (off + len - 1) / VHDX_MIB;
    bool taken = false;

    for (u = first; u <= last; u++) {
        if (map[u / 8] & (1u << (u % 8))) {
            taken = true;
        }
        map[u / 8] |= (unsigned char) (1u << (u % 8));
    }
    return taken;
}

static int
vhdx_check (struct image *img, struct check_result *res)
{
    struct vhdx *s = img->priv;
    unsigned char *map = NULL, *rt;
    uint64_t units, blk, off, j;
    struct region r;
    unsigned state, i;

    for (i = 0; i < 2; i++) {
        if (s->header_problem[i][0] != '\0') {
            check_error (res, "vhdx: header %u is invalid: %s", i + 1,
                         s->header_problem[i]);
        }
    }
    if (s->cur_rt == 1) {
        /* Table 2 was not needed at open; it must be valid and agree. */
        struct rt_result t2;
        bool ok, unknown;

        if (read_region_table (img, 2, &t2, &ok, &unknown) == -1) {
            return -1;
        }
        if (ok && (t2.bat_off != s->bat_off || t2.bat_len != s->bat_len ||
                   t2.md_off != s->md_off || t2.md_len != s->md_len)) {
            snprintf (s->rt_problem[1], sizeof s->rt_problem[1],
                      "it does not match region table 1");
        }
    }
    for (i = 0; i < 2; i++) {
        if (s->rt_problem[i][0] != '\0') {
            check_error (res, "vhdx: region table %u is invalid: %s", i + 1,
                         s->rt_problem[i]);
        }
    }

    /* Who owns each MiB of the file: the fixed part, the log, every region
     * of the table in use (open checked that they are disjoint), then each
     * block. */
    units = DIV_ROUND_UP (s->vfile_size, (uint64_t) VHDX_MIB);
    map = image_alloc_table (img, "check map", DIV_ROUND_UP (units, 8), 1,
                             VHDX_MAX_FILE_SIZE / VHDX_MIB / 8);
    rt = malloc (VHDX_RT_SIZE);
    if (map == NULL || rt == NULL ||
        vhdx_vread (img, rt, VHDX_RT_SIZE,
                    s->cur_rt == 1 ? VHDX_RT1_OFF : VHDX_RT2_OFF) == -1) {
        if (rt == NULL) {
            vmc_perror ("vhdx: malloc");
        }
        free (map);
        free (rt);
        return -1;
    }
    map_claim (map, 0, VHDX_MIB);
    if (s->log_len > 0) {
        map_claim (map, s->log_off, s->log_len);
    }
    for (i = 0; i < get_le32 (rt + 8); i++) {
        region_decode (rt, i, &r);
        map_claim (map, r.offset, r.length);
    }
    free (rt);
    for (blk = 0; blk < s->nblocks; blk++) {
        if (block_lookup (img, blk, &state, &off) == -1) {
            check_error (res, "%s", vmc_get_error ());
            break;
        }
        if (state != VHDX_PAYLOAD_FULLY_PRESENT) {
            continue;
        }
        j = blk + blk / s->chunk_ratio;
        if (s->bat[j - s->bat_first] & VHDX_BAT_RESERVED_MASK) {
            check_error (res, "vhdx: BAT entry %" PRIu64 " has reserved "
                         "bits set", j);
        }
        if (map_claim (map, off,
                       MIN ((uint64_t) s->block_size, s->vfile_size - off))) {
            check_error (res, "vhdx: BAT entry %" PRIu64 " (block %" PRIu64
                         ") at 0x%" PRIx64 " overlaps metadata or another "
                         "block", j, blk, off);
        }
    }
    free (map);
    return 0;
}

const struct image_format format_vhdx = {
    .name = "vhdx",
    .description = "Hyper-V VHDX (dynamic, fixed; log replayed in memory)",
    .priv_size = sizeof (struct vhdx),
    .probe = vhdx_probe,
    .open = vhdx_open,
    .close = vhdx_close,
    .pread = vhdx_pread,
    .block_status = vhdx_block_status,
    .check = vhdx_check,
    .create_opts = vhdx_create_opts,
    .create = vhdx_create,
    .pwrite = vhdx_pwrite,
    .finish = vhdx_finish,
    .checkpoint = vhdx_checkpoint,
    .resume = vhdx_resume,
};
