/* SPDX-License-Identifier: MIT */
/*
 * vhd (alias vpc): Microsoft Virtual Hard Disk, as written by Virtual PC,
 * Virtual Server, Hyper-V, Azure, VirtualBox, Xen and qemu.
 *
 * Spec: Microsoft "Virtual Hard Disk Image Format Specification", version
 * 1.0 (October 2006),
 * https://www.microsoft.com/en-us/download/details.aspx?id=23850
 *
 * Read: fixed (type 2: guest data then a footer), dynamic (type 3: footer
 * copy, dynamic header, block allocation table, blocks of "sector bitmap +
 * data", footer) and differencing (type 4: a dynamic disk whose clear bitmap
 * bits mean "read the parent").  The parent is named from the parent
 * locators (relative W2ru/Wi2r first, then absolute W2ku/Wi2k and MacX file
 * URLs, then the header's parent unicode name); the first one that exists
 * next to the image wins.  The parent's unique id must match the one the
 * differencing disk recorded, or reading stops with an error (Hyper-V
 * refuses such chains too: the child's sectors were written against
 * another disk).  The old 511-byte footer of Virtual PC 2004 is accepted.
 *
 * Sector bitmaps are honoured for dynamic disks too (a clear bit reads as
 * zeros), as the spec, VirtualBox and Hyper-V do.  qemu ignores them for
 * dynamic disks and reads the block's data area instead; the two only
 * differ for a sector whose bit is clear but whose data area is not zero,
 * which no known writer produces.
 *
 * Virtual size.  The footer has both a CHS geometry and a "current size",
 * and writers disagree about which one is the disk: Virtual PC and Virtual
 * Server size the disk by geometry (their current size is the larger size
 * that was asked for), every later writer by the current size.  We use
 * cylinders * heads * sectors * 512 when the creator application is "vpc ",
 * "vs  " or "qemu" (qemu-img without force_size writes an exact geometry),
 * unless the geometry is the maximum 65535/16/255, which means "too big
 * for CHS, see current size"; every other creator ("win ", "wa\0\0" Azure,
 * "d2v ", "tap\0", "CTXS", "qem2", "vbox", ...) gets the current size,
 * rounded down to a sector.  This agrees with qemu 7.2 for every creator
 * qemu knows; for creators qemu 7.2 does not know (VirtualBox "vbox",
 * Azure "wa\0\0") qemu 7.2 uses the geometry, which cuts off the end of
 * the disk (where a GPT keeps its backup header); VirtualBox, Hyper-V and
 * Azure all use the current size, and so do we.
 *
 * Write: dynamic (default) or fixed, qemu-img's options: subformat=
 * dynamic|fixed, force_size=on|off; plus azure=on (a fixed disk whose
 * virtual size is rounded up to a whole MiB, as Azure requires) and
 * block_size.  Without force_size the size is rounded up to a whole CHS
 * geometry (never down: the copy engine needs room for the source), and
 * current size = geometry size, so every reader agrees.  With force_size
 * (or azure) the size is exact and the geometry is 65535/16/255, as
 * qemu-img does, which qemu reads as "use the current size" whatever the
 * creator.  Creator application "vmcv".
 *
 * Limits: virtual size at most 65535 * 255 * 255 sectors (2040 GiB, as
 * qemu); block size a power of two from 512 B to 256 MiB; the BAT entries
 * for the virtual size at most 16 MiB in memory (4 Mi blocks: 8 TiB of 2
 * MiB blocks, far above the 2040 GiB limit); parent locators at most 64
 * KiB each; an I/O-backed block status extent at most 256 MiB.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"

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
    uint64_t zeroed_to;         /* block device target: zeros/data to here */
};

/* ---- decoding and validation helpers ---------------------------------- */

static uint32_t
vhd_checksum (const unsigned char *buf, size_t len, size_t csum_off)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (i < csum_off || i >= csum_off + 4) {
            sum += buf[i];
        }
    }
    return ~sum;
}

static bool
footer_checksum_ok (const unsigned char *buf, size_t len)
{
    return vhd_checksum (buf, len, 64) == get_be32 (buf + 64);
}

static void
decode_footer (const unsigned char *b, struct vhd_footer *f)
{
    f->features = get_be32 (b + 8);
    f->version = get_be32 (b + 12);
    f->data_offset = get_be64 (b + 16);
    f->timestamp = get_be32 (b + 24);
    memcpy (f->creator_app, b + 28, 4);
    f->creator_version = get_be32 (b + 32);
    memcpy (f->creator_os, b + 36, 4);
    f->original_size = get_be64 (b + 40);
    f->current_size = get_be64 (b + 48);
    f->cylinders = get_be16 (b + 56);
    f->heads = b[58];
    f->sectors = b[59];
    f->disk_type = get_be32 (b + 60);
    f->checksum = get_be32 (b + 64);
    memcpy (f->uuid, b + 68, 16);
    f->saved_state = b[84];
}

/* Printable form of a 4-character code, for messages. */
static void
fourcc (const char *c, char out[16])
{
    size_t i, o = 0;

    for (i = 0; i < 4; i++) {
        unsigned char ch = (unsigned char) c[i];

        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            out[o++] = (char) ch;
        }
        else {
            o += (size_t) snprintf (out + o, 16 - o, "\\%o", ch);
        }
    }
    out[o] = '\0';
}

static void
uuid_str (const unsigned char *u, char out[40])
{
    snprintf (out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
              "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
              u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
              u[15]);
}

/* Decode UTF-16 (big- or little-endian) up to the first NUL or NBYTES into
 * a new UTF-8 string.  NULL on invalid UTF-16 or on allocation failure. */
static char *
utf16_to_utf8 (const unsigned char *p, size_t nbytes, bool big_endian)
{
    size_t n = nbytes / 2, i, o = 0;
    uint32_t c, c2;
    char *out;

    out = malloc (n * 3 + 1);
    if (out == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        c = big_endian ? get_be16 (p + 2 * i) : get_le16 (p + 2 * i);
        if (c == 0) {
            break;
        }
        if (c >= 0xd800 && c < 0xdc00) {
            if (i + 1 >= n) {
                goto bad;
            }
            c2 = big_endian ? get_be16 (p + 2 * i + 2)
                : get_le16 (p + 2 * i + 2);
            if (c2 < 0xdc00 || c2 > 0xdfff) {
                goto bad;
            }
            c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
            i++;
        }
        else if (c >= 0xdc00 && c <= 0xdfff) {
            goto bad;
        }
        if (c < 0x80) {
            out[o++] = (char) c;
        }
        else if (c < 0x800) {
            out[o++] = (char) (0xc0 | c >> 6);
            out[o++] = (char) (0x80 | (c & 0x3f));
        }
        else if (c < 0x10000) {
            out[o++] = (char) (0xe0 | c >> 12);
            out[o++] = (char) (0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char) (0x80 | (c & 0x3f));
        }
        else {
            out[o++] = (char) (0xf0 | c >> 18);
            out[o++] = (char) (0x80 | ((c >> 12) & 0x3f));
            out[o++] = (char) (0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char) (0x80 | (c & 0x3f));
        }
    }
    out[o] = '\0';
    return out;

bad:
    free (out);
    return NULL;
}

static int
hexval (char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* A MacX locator is a file URL, "file://[host]/path" with %XX escapes.
 * Decode it in place to the path; false if it is not one. */
static bool
file_url_to_path (char *s)
{
    char *p, *o;
    int h, l;

    if (strncmp (s, "file://", 7) != 0) {
        return false;
    }
    p = strchr (s + 7, '/');
    if (p == NULL) {
        return false;
    }
    for (o = s; *p != '\0'; p++) {
        if (*p == '%' && (h = hexval (p[1])) >= 0 && (l = hexval (p[2])) >= 0) {
            *o++ = (char) (h << 4 | l);
            p += 2;
        }
        else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return strlen (s) == (size_t) (o - s);      /* no %00 inside */
}

/* Windows paths use backslashes. */
static void
windows_to_posix (char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            *s = '/';
        }
    }
}

/* The spec's CHS algorithm (appendix "CHS Calculation"): the geometry for
 * SECTORS, which may describe fewer sectors than asked for. */
static void
chs_for (uint64_t sectors, uint16_t *c, uint8_t *h, uint8_t *s)
{
    uint64_t cth;
    unsigned heads, spt;

    if (sectors > VHD_CHS_MAX_SECTORS) {
        sectors = VHD_CHS_MAX_SECTORS;
    }
    if (sectors >= 65535ull * 16 * 63) {
        spt = 255;
        heads = 16;
        cth = sectors / spt;
    }
    else {
        spt = 17;
        cth = sectors / spt;
        heads = (unsigned) ((cth + 1023) / 1024);
        if (heads < 4) {
            heads = 4;
        }
        if (cth >= heads * 1024ull || heads > 16) {
            spt = 31;
            heads = 16;
            cth = sectors / spt;
        }
        if (cth >= heads * 1024ull) {
            spt = 63;
            heads = 16;
            cth = sectors / spt;
        }
    }
    *c = (uint16_t) (cth / heads);
    *h = (uint8_t) heads;
    *s = (uint8_t) spt;
}

/* ---- probe -------------------------------------------------------------- */

static int
vhd_probe (const struct probe_data *p)
{
    if (p->head_len >= 8 && memcmp (p->head, "conectix", 8) == 0) {
        return 100;
    }
    /* A fixed disk has its footer only at the end.  That is a weaker sign
     * (any raw disk could end so), so ask for a valid checksum and score
     * below the signatures at offset 0. */
    if (p->tail_len == VHD_FOOTER_SIZE) {
        if (memcmp (p->tail, "conectix", 8) == 0 &&
            footer_checksum_ok (p->tail, VHD_FOOTER_SIZE)) {
            return 60;
        }
        if (memcmp (p->tail + 1, "conectix", 8) == 0 &&
            footer_checksum_ok (p->tail + 1, VHD_OLD_FOOTER_SIZE)) {
            return 60;
        }
    }
    return 0;
}

/* ---- open --------------------------------------------------------------- */

/* Validate the footer in S->footer (raw bytes RAW of LEN) and work out the
 * virtual size. */
static int
check_footer (struct image *img, const unsigned char *raw, size_t len,
              const char *where)
{
    struct vhd *s = img->priv;
    struct vhd_footer *f = &s->footer;
    uint64_t chs, size;
    bool use_chs;
    char app[16];

    if (!footer_checksum_ok (raw, len)) {
        vmc_error ("vhd: footer %s: checksum 0x%08" PRIx32 " does not match "
                   "the contents (0x%08" PRIx32 ")", where,
                   get_be32 (raw + 64), vhd_checksum (raw, len, 64));
        return -1;
    }
    decode_footer (raw, f);
    if (f->version >> 16 != 1) {
        vmc_error ("vhd: footer %s: file format version 0x%08" PRIx32
                   " is not supported (expected 1.x)", where, f->version);
        return -1;
    }
    if (f->disk_type != VHD_TYPE_FIXED && f->disk_type != VHD_TYPE_DYNAMIC &&
        f->disk_type != VHD_TYPE_DIFF) {
        vmc_error ("vhd: footer %s: disk type %" PRIu32 " is not supported "
                   "(2 fixed, 3 dynamic, 4 differencing)", where,
                   f->disk_type);
        return -1;
    }
    fourcc (f->creator_app, app);
    chs = (uint64_t) f->cylinders * f->heads * f->sectors;
    use_chs = (memcmp (f->creator_app, "vpc ", 4) == 0 ||
               memcmp (f->creator_app, "vs  ", 4) == 0 ||
               memcmp (f->creator_app, "qemu", 4) == 0) &&
        chs != VHD_CHS_MAX_SECTORS;
    size = use_chs ? chs * VHD_SECTOR
        : ROUND_DOWN (f->current_size, (uint64_t) VHD_SECTOR);
    if (size > VHD_MAX_SECTORS * VHD_SECTOR) {
        vmc_error ("vhd: footer %s: %s %" PRIu64 " bytes is larger than "
                   "the 2040 GiB a VHD can hold", where,
                   use_chs ? "geometry size" : "current size", size);
        return -1;
    }
    img->size = size;
    image_info_add (img, "creator", "%s %" PRIu32 ".%" PRIu32, app,
                    f->creator_version >> 16, f->creator_version & 0xffff);
    image_info_add (img, "geometry", "%u/%u/%u", f->cylinders, f->heads,
                    f->sectors);
    image_info_add (img, "size from", "%s", use_chs ? "CHS geometry"
                    : "current size");
    if (f->saved_state) {
        image_info_add (img, "saved state", "yes");
    }
    return 0;
}

static int
open_fixed (struct image *img)
{
    struct vhd *s = img->priv;

    s->type = VHD_TYPE_FIXED;
    s->data_end = img->file->size - s->tail_len;
    if (img->size > s->data_end) {
        vmc_error ("vhd: virtual size %" PRIu64 " is larger than the data "
                   "area of the fixed disk (%" PRIu64 " bytes)", img->size,
                   s->data_end);
        return -1;
    }
    snprintf (img->subformat, sizeof img->subformat, "fixed");
    return 0;
}

/* Bytes of block B that hold guest data (the last block may be cut by the
 * virtual size). */
static uint64_t
block_need (const struct vhd *s, uint64_t size, uint64_t b)
{
    uint64_t start = b << s->block_shift;

    return MIN ((uint64_t) s->block_size, size - start);
}

static int
read_locators (struct image *img, const unsigned char *h)
{
    struct vhd *s = img->priv;
    struct vhd_locator *l;
    unsigned i;

    for (i = 0; i < VHD_NUM_LOCATORS; i++) {
        const unsigned char *e = h + 576 + 24 * i;

        l = &s->loc[i];
        l->code = get_be32 (e);
        l->space = get_be32 (e + 4);
        l->length = get_be32 (e + 8);
        l->offset = get_be64 (e + 16);
        if (l->code == 0) {
            continue;
        }
        if (l->length > VHD_LOCATOR_CAP) {
            vmc_error ("vhd: parent locator %u: data length %" PRIu32
                       " is too large (limit %u)", i, l->length,
                       VHD_LOCATOR_CAP);
            return -1;
        }
        if (range_outside (l->offset, l->length, s->data_end)) {
            vmc_error ("vhd: parent locator %u: data offset 0x%" PRIx64
                       " length %" PRIu32 " points past end of file", i,
                       l->offset, l->length);
            return -1;
        }
    }
    return 0;
}

/* Does NAME exist, taken relative to the image's directory? */
static bool
candidate_exists (struct image *img, const char *name)
{
    const char *slash;
    char *path;
    struct stat st;
    bool r;

    if (img->file->fd == -1) {
        return false;
    }
    slash = strrchr (img->filename, '/');
    if (name[0] == '/' || slash == NULL) {
        return stat (name, &st) == 0;
    }
    if (asprintf (&path, "%.*s/%s", (int) (slash - img->filename),
                  img->filename, name) == -1) {
        return false;
    }
    r = stat (path, &st) == 0;
    free (path);
    return r;
}

/* Decode parent locator I into a path, or NULL (with a message) if it is
 * unusable: *skip tells an ignorable locator from a broken one. */
static char *
locator_path (struct image *img, unsigned i, bool *skip)
{
    struct vhd *s = img->priv;
    const struct vhd_locator *l = &s->loc[i];
    unsigned char *raw;
    char *name = NULL;

    *skip = true;
    if (l->code == 0 || l->length == 0 || l->code == PLAT_MAC) {
        return NULL;        /* none, or a Mac OS alias we cannot resolve */
    }
    if (l->code != PLAT_W2RU && l->code != PLAT_W2KU &&
        l->code != PLAT_WI2R && l->code != PLAT_WI2K &&
        l->code != PLAT_MACX) {
        return NULL;
    }
    *skip = false;
    raw = malloc (l->length + 1);
    if (raw == NULL) {
        vmc_perror ("vhd: parent locator %u", i);
        return NULL;
    }
    if (bdev_pread (img->file, raw, l->length, l->offset) == -1) {
        free (raw);
        return NULL;
    }
    if (l->code == PLAT_W2RU || l->code == PLAT_W2KU) {
        name = utf16_to_utf8 (raw, l->length, false);
        free (raw);
    }
    else {
        raw[l->length] = '\0';
        name = (char *) raw;
    }
    if (name == NULL) {
        vmc_error ("vhd: parent locator %u: invalid UTF-16 path", i);
        return NULL;
    }
    if (l->code == PLAT_MACX) {
        if (!file_url_to_path (name)) {
            vmc_error ("vhd: parent locator %u: \"%s\" is not a file URL",
                       i, name);
            free (name);
            return NULL;
        }
    }
    else {
        windows_to_posix (name);
    }
    if (name[0] == '\0') {
        free (name);
        *skip = true;
        return NULL;
    }
    return name;
}

/* Choose the parent's name: relative locators, then absolute ones, then
 * the parent unicode name; the first that exists, or the first at all. */
static int
choose_parent (struct image *img, const unsigned char *h)
{
    static const uint32_t order[] = {
        PLAT_W2RU, PLAT_WI2R, PLAT_W2KU, PLAT_WI2K, PLAT_MACX,
    };
    struct vhd *s = img->priv;
    char *first = NULL, *name;
    bool skip;
    size_t k;
    unsigned i;

    for (k = 0; k < sizeof order / sizeof order[0]; k++) {
        for (i = 0; i < VHD_NUM_LOCATORS; i++) {
            if (s->loc[i].code != order[k]) {
                continue;
            }
            name = locator_path (img, i, &skip);
            if (name == NULL) {
                if (skip) {
                    continue;
                }
                free (first);
                return -1;
            }
            if (candidate_exists (img, name)) {
                free (first);
                img->backing_name = name;
                return 0;
            }
            if (first == NULL) {
                first = name;
            }
            else {
                free (name);
            }
        }
    }
    name = utf16_to_utf8 (h + 64, 512, true);
    if (name == NULL) {
        free (first);
        vmc_error ("vhd: parent unicode name is not valid UTF-16");
        return -1;
    }
    if (name[0] != '\0' && (first == NULL || candidate_exists (img, name))) {
        free (first);
        img->backing_name = name;
        return 0;
    }
    free (name);
    if (first == NULL) {
        vmc_error ("vhd: differencing disk names no parent (no usable "
                   "parent locator, empty parent unicode name)");
        return -1;
    }
    img->backing_name = first;
    return 0;
}

static int
open_dynamic (struct image *img)
{
    struct vhd *s = img->priv;
    struct vhd_footer *f = &s->footer;
    unsigned char h[VHD_HEADER_SIZE];
    uint64_t need, b, host, bat_bytes;
    uint32_t e;
    char u[40];

    s->type = f->disk_type;
    s->data_end = img->file->size - s->tail_len;
    if (f->data_offset < VHD_FOOTER_SIZE ||
        range_outside (f->data_offset, VHD_HEADER_SIZE, s->data_end)) {
        vmc_error ("vhd: footer data offset 0x%" PRIx64 " does not point "
                   "to a dynamic header inside the file", f->data_offset);
        return -1;
    }
    s->header_offset = f->data_offset;
    if (bdev_pread (img->file, h, sizeof h, s->header_offset) == -1) {
        return -1;
    }
    if (memcmp (h, "cxsparse", 8) != 0) {
        vmc_error ("vhd: dynamic header at 0x%" PRIx64 " has no cookie "
                   "\"cxsparse\"", s->header_offset);
        return -1;
    }
    if (vhd_checksum (h, sizeof h, 36) != get_be32 (h + 36)) {
        vmc_error ("vhd: dynamic header checksum 0x%08" PRIx32 " does not "
                   "match the contents (0x%08" PRIx32 ")", get_be32 (h + 36),
                   vhd_checksum (h, sizeof h, 36));
        return -1;
    }
    if (get_be32 (h + 24) >> 16 != 1) {
        vmc_error ("vhd: dynamic header version 0x%08" PRIx32 " is not "
                   "supported (expected 1.x)", get_be32 (h + 24));
        return -1;
    }
    s->bat_offset = get_be64 (h + 16);
    s->max_entries = get_be32 (h + 28);
    s->block_size = get_be32 (h + 32);
    memcpy (s->parent_uuid, h + 40, 16);
    if (!is_power_of_2 (s->block_size) || s->block_size < VHD_MIN_BLOCK ||
        s->block_size > VHD_MAX_BLOCK) {
        vmc_error ("vhd: block size %" PRIu32 " is not a power of two "
                   "between %u and %u", s->block_size, VHD_MIN_BLOCK,
                   VHD_MAX_BLOCK);
        return -1;
    }
    s->block_shift = log2_u64 (s->block_size);
    s->bitmap_size = ROUND_UP (s->block_size / VHD_SECTOR / 8, VHD_SECTOR);
    s->nblocks = DIV_ROUND_UP (img->size, (uint64_t) s->block_size);
    if (s->max_entries < s->nblocks) {
        vmc_error ("vhd: max table entries %" PRIu32 " cannot hold the %"
                   PRIu64 " blocks of a %" PRIu64 " byte disk",
                   s->max_entries, s->nblocks, img->size);
        return -1;
    }
    bat_bytes = (uint64_t) s->max_entries * 4;
    if (s->bat_offset < VHD_FOOTER_SIZE ||
        range_outside (s->bat_offset, bat_bytes, s->data_end)) {
        vmc_error ("vhd: BAT at table offset 0x%" PRIx64 " with %" PRIu32
                   " max table entries points past end of file",
                   s->bat_offset, s->max_entries);
        return -1;
    }
    s->bat = image_alloc_table (img, "BAT", s->nblocks, sizeof *s->bat,
                                VHD_BAT_CAP);
    if (s->bat == NULL) {
        return -1;
    }
    s->bstate = image_alloc_table (img, "bitmap states", s->nblocks, 1,
                                   VHD_BAT_CAP);
    s->bitmap = malloc (s->bitmap_size);
    if (s->bstate == NULL || s->bitmap == NULL) {
        if (s->bitmap == NULL) {
            vmc_perror ("vhd: bitmap");
        }
        return -1;
    }
    s->bitmap_block = UINT64_MAX;
    if (bdev_pread (img->file, s->bat, s->nblocks * 4, s->bat_offset) == -1) {
        return -1;
    }
    for (b = 0; b < s->nblocks; b++) {
        e = get_be32 (&s->bat[b]);
        s->bat[b] = e;
        if (e == VHD_BAT_UNUSED) {
            continue;
        }
        host = (uint64_t) e * VHD_SECTOR;
        need = s->bitmap_size + block_need (s, img->size, b);
        if (host < VHD_FOOTER_SIZE) {
            vmc_error ("vhd: BAT entry %" PRIu64 " (sector 0x%" PRIx32
                       ") points into the footer copy", b, e);
            return -1;
        }
        if (range_outside (host, need, s->data_end)) {
            vmc_error ("vhd: BAT entry %" PRIu64 " (sector 0x%" PRIx32
                       ") points past end of file", b, e);
            return -1;
        }
    }
    img->cluster_size = s->block_size;
    if (s->type == VHD_TYPE_DYNAMIC) {
        snprintf (img->subformat, sizeof img->subformat, "dynamic");
        return 0;
    }
    snprintf (img->subformat, sizeof img->subformat, "differencing");
    if (read_locators (img, h) == -1 || choose_parent (img, h) == -1) {
        return -1;
    }
    img->backing_format = strdup ("vhd");
    if (img->backing_format == NULL) {
        vmc_perror ("vhd: strdup");
        return -1;
    }
    uuid_str (s->parent_uuid, u);
    image_info_add (img, "parent uuid", "%s", u);
    return 0;
}

static int
vhd_open (struct image *img)
{
    struct vhd *s = img->priv;
    struct blockdev *bd = img->file;
    unsigned char end[VHD_FOOTER_SIZE];
    bool tail_fixed = false;
    char u[40];

    if (bd->size < VHD_OLD_FOOTER_SIZE) {
        vmc_error ("vhd: file of %" PRIu64 " bytes is too small for a "
                   "footer", bd->size);
        return -1;
    }
    if (bd->size >= VHD_FOOTER_SIZE) {
        if (bdev_pread (bd, s->head, VHD_FOOTER_SIZE, 0) == -1 ||
            bdev_pread (bd, end, VHD_FOOTER_SIZE,
                        bd->size - VHD_FOOTER_SIZE) == -1) {
            return -1;
        }
        s->has_head = memcmp (s->head, "conectix", 8) == 0;
        if (memcmp (end, "conectix", 8) == 0) {
            s->tail_len = VHD_FOOTER_SIZE;
            memcpy (s->tail, end, VHD_FOOTER_SIZE);
        }
        else if (memcmp (end + 1, "conectix", 8) == 0) {
            s->tail_len = VHD_OLD_FOOTER_SIZE;
            memcpy (s->tail, end + 1, VHD_OLD_FOOTER_SIZE);
        }
    }
    else {
        if (bdev_pread (bd, s->tail, VHD_OLD_FOOTER_SIZE, 0) == -1) {
            return -1;
        }
        if (memcmp (s->tail, "conectix", 8) == 0) {
            s->tail_len = VHD_OLD_FOOTER_SIZE;
        }
    }
    /* A valid fixed-disk footer at the end wins: then the start of the file
     * is guest data, which may happen to look like a footer. */
    if (s->tail_len != 0 && footer_checksum_ok (s->tail, s->tail_len) &&
        get_be32 (s->tail + 60) == VHD_TYPE_FIXED) {
        tail_fixed = true;
    }
    if (tail_fixed || (!s->has_head && s->tail_len != 0)) {
        if (check_footer (img, s->tail, s->tail_len, "at end of file") == -1) {
            return -1;
        }
        if (s->footer.disk_type != VHD_TYPE_FIXED) {
            vmc_error ("vhd: footer copy at the start of the file is missing "
                       "(no cookie \"conectix\") but the footer says disk "
                       "type %" PRIu32, s->footer.disk_type);
            return -1;
        }
        s->has_head = false;
        if (open_fixed (img) == -1) {
            return -1;
        }
    }
    else if (s->has_head) {
        if (check_footer (img, s->head, VHD_FOOTER_SIZE,
                          "copy at start of file") == -1) {
            return -1;
        }
        if (s->footer.disk_type == VHD_TYPE_FIXED) {
            vmc_error ("vhd: disk type 2 (fixed) in the footer copy at the "
                       "start of the file, but no fixed-disk footer at the "
                       "end");
            return -1;
        }
        if (open_dynamic (img) == -1) {
            return -1;
        }
    }
    else {
        vmc_error ("vhd: no footer cookie \"conectix\" at the start or at "
                   "the end of the file");
        return -1;
    }
    uuid_str (s->footer.uuid, u);
    image_info_add (img, "uuid", "%s", u);
    return 0;
}

static void
vhd_close (struct image *img)
{
    struct vhd *s = img->priv;

    free (s->bat);
    free (s->bstate);
    free (s->bitmap);
}

/* ---- reading ------------------------------------------------------------ */

/* The differencing disk must sit on the parent it was made from. */
static int
check_parent (struct image *img)
{
    struct vhd *s = img->priv, *p;
    char want[40], got[40];

    s->parent_checked = true;
    if (img->backing == NULL || img->backing->fmt != img->fmt) {
        return 0;
    }
    p = img->backing->priv;
    if (memcmp (p->footer.uuid, s->parent_uuid, 16) != 0) {
        uuid_str (s->parent_uuid, want);
        uuid_str (p->footer.uuid, got);
        vmc_error ("vhd: parent %s has unique id %s, but the differencing "
                   "disk was made from %s", img->backing->filename, got,
                   want);
        return -1;
    }
    return 0;
}

static int
load_bitmap (struct image *img, uint64_t b)
{
    struct vhd *s = img->priv;
    uint32_t i, bits, nbytes;
    bool any_set = false, any_clear = false;

    if (s->bitmap_block == b) {
        return 0;
    }
    s->bitmap_block = UINT64_MAX;
    if (bdev_pread (img->file, s->bitmap, s->bitmap_size,
                    (uint64_t) s->bat[b] * VHD_SECTOR) == -1) {
        return -1;
    }
    s->bitmap_block = b;
    if (s->bstate[b] == BM_UNKNOWN) {
        bits = s->block_size / VHD_SECTOR;
        nbytes = DIV_ROUND_UP (bits, 8);
        for (i = 0; i < nbytes; i++) {
            unsigned char m = bits - i * 8 >= 8 ? 0xff
                : (unsigned char) (0xff << (8 - (bits - i * 8)));
            unsigned char v = s->bitmap[i] & m;

            any_set |= v != 0;
            any_clear |= v != m;
        }
        s->bstate[b] = any_set && any_clear ? BM_MIXED
            : any_set ? BM_ALL_SET : BM_ALL_CLEAR;
    }
    return 0;
}

static bool
bit_set (const unsigned char *bm, uint64_t sector)
{
    return bm[sector / 8] & (0x80 >> (sector % 8));
}

/* Describe the run at OFFSET inside its block, at most COUNT bytes:
 * *kind (RUN_*), *host for data, *len. */
static int
vhd_run (struct image *img, uint64_t offset, uint64_t count, int *kind,
         uint64_t *host, uint64_t *len)
{
    struct vhd *s = img->priv;
    uint64_t b = offset >> s->block_shift;
    uint64_t in = offset & (s->block_size - 1);
    uint64_t n = MIN (count, s->block_size - in);
    int absent = s->type == VHD_TYPE_DIFF ? RUN_PARENT : RUN_ZERO;
    uint64_t sec, end_sec, last;
    bool set;

    *len = n;
    if (s->bat[b] == VHD_BAT_UNUSED) {
        *kind = absent;
        return 0;
    }
    *host = (uint64_t) s->bat[b] * VHD_SECTOR + s->bitmap_size + in;
    if (s->bstate[b] == BM_UNKNOWN || s->bstate[b] == BM_MIXED) {
        if (load_bitmap (img, b) == -1) {
            return -1;
        }
    }
    if (s->bstate[b] == BM_ALL_SET) {
        *kind = RUN_DATA;
        return 0;
    }
    if (s->bstate[b] == BM_ALL_CLEAR) {
        *kind = absent;
        return 0;
    }
    /* A mixed block: the run of sectors whose bits equal the first one. */
    sec = in / VHD_SECTOR;
    last = (in + n - 1) / VHD_SECTOR;
    set = bit_set (s->bitmap, sec);
    for (end_sec = sec + 1; end_sec <= last; end_sec++) {
        if (bit_set (s->bitmap, end_sec) != set) {
            break;
        }
    }
    *len = MIN (n, end_sec * VHD_SECTOR - in);
    *kind = set ? RUN_DATA : absent;
    return 0;
}

/* Serve one gathered run of PREAD. */
static int
read_run (struct image *img, unsigned char *dst, int kind, uint64_t host,
          uint64_t len, uint64_t guest)
{
    switch (kind) {
    case RUN_DATA:
        return bdev_pread (img->file, dst, len, host);
    case RUN_ZERO:
        memset (dst, 0, len);
        return 0;
    default:
        return image_read_backing (img, dst, len, guest);
    }
}

static int
vhd_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    struct vhd *s = img->priv;
    unsigned char *p = buf;
    uint64_t pos = 0, host = 0, len, run_start = 0, run_host = 0, run_len = 0;
    int kind, run_kind = RUN_ZERO;

    if (s->type == VHD_TYPE_FIXED) {
        return bdev_pread (img->file, buf, count, offset);
    }
    if (s->type == VHD_TYPE_DIFF && !s->parent_checked &&
        check_parent (img) == -1) {
        return -1;
    }
    /* Gather runs of one kind (data: contiguous in the file) and serve
     * each with one call. */
    while (pos < count) {
        if (vhd_run (img, offset + pos, count - pos, &kind, &host,
                     &len) == -1) {
            return -1;
        }
        if (run_len > 0 &&
            (kind != run_kind ||
             (kind == RUN_DATA && run_host + run_len != host))) {
            if (read_run (img, p + run_start, run_kind, run_host, run_len,
                          offset + run_start) == -1) {
                return -1;
            }
            run_len = 0;
        }
        if (run_len == 0) {
            run_start = pos;
            run_kind = kind;
            run_host = host;
        }
        run_len += len;
        pos += len;
    }
    return read_run (img, p + run_start, run_kind, run_host, run_len,
                     offset + run_start);
}

/* Data at HOST for up to *LEN bytes: holes in the file read as zeros, so
 * report them as such (a sparse fixed disk, or blocks we wrote). */
static int
refine_data (struct image *img, uint64_t host, uint64_t *len, int *type)
{
    uint64_t d, h;

    if (bdev_next_data (img->file, host, &d) == -1) {
        return -1;
    }
    if (d > host) {
        *type = EXTENT_ZERO;
        *len = MIN (*len, d - host);
        return 0;
    }
    if (bdev_next_hole (img->file, host, &h) == -1) {
        return -1;
    }
    *type = EXTENT_DATA;
    if (h > host) {
        *len = MIN (*len, h - host);
    }
    return 0;
}

static int
vhd_block_status (struct image *img, uint64_t offset, uint64_t count,
                  struct extent *ext)
{
    struct vhd *s = img->priv;
    uint64_t total = 0, host = 0, len, pos;
    int kind, t, type = EXTENT_DATA;
    bool io = false;

    if (s->type == VHD_TYPE_FIXED) {
        len = count;
        if (refine_data (img, offset, &len, &t) == -1) {
            return -1;
        }
        ext->type = (enum extent_type) t;
        ext->length = len;
        return 0;
    }
    if (s->type == VHD_TYPE_DIFF && !s->parent_checked &&
        check_parent (img) == -1) {
        return -1;
    }
    /* Merge runs of the same kind across blocks.  Walking unallocated
     * blocks costs nothing; allocated ones cost a bitmap read and two
     * seeks, so such an extent stops after VHD_EXTENT_CAP bytes. */
    while (total < count) {
        pos = offset + total;
        io |= s->bat[pos >> s->block_shift] != VHD_BAT_UNUSED;
        if (vhd_run (img, pos, count - total, &kind, &host, &len) == -1) {
            return -1;
        }
        if (kind == RUN_DATA) {
            if (refine_data (img, host, &len, &t) == -1) {
                return -1;
            }
        }
        else {
            t = kind == RUN_ZERO ? EXTENT_ZERO : EXTENT_UNALLOCATED;
        }
        if (total > 0 && t != type) {
            break;
        }
        type = t;
        total += len;
        if (io && total >= VHD_EXTENT_CAP) {
            break;
        }
    }
    ext->type = (enum extent_type) type;
    ext->length = total;
    return 0;
}

/* ---- check -------------------------------------------------------------- */

struct region {
    uint64_t start, end;
    const char *what;
};

static const uint32_t *sort_bat;

static int
cmp_block (const void *a, const void *b)
{
    uint32_t i = *(const uint32_t *) a, j = *(const uint32_t *) b;
    uint32_t x = sort_bat[i], y = sort_bat[j];

    /* By file offset, then by block, so reports are stable. */
    return x != y ? (x < y ? -1 : 1) : (i < j ? -1 : i > j);
}

static int
vhd_check (struct image *img, struct check_result *res)
{
    struct vhd *s = img->priv;
    struct region meta[4 + VHD_NUM_LOCATORS];
    uint32_t *order = NULL;
    uint64_t n = 0, i, k, b, start, end, prev_end = 0, prev_b = 0;
    unsigned nmeta = 0;

    if (s->type == VHD_TYPE_FIXED) {
        return 0;
    }
    if (s->tail_len == 0) {
        check_error (res, "vhd: the footer at the end of the file is "
                     "missing (truncated image?)");
    }
    else if (memcmp (s->head, s->tail, s->tail_len) != 0) {
        check_error (res, "vhd: the footer copy at the start differs from "
                     "the footer at the end");
    }
    if (s->type == VHD_TYPE_DIFF && check_parent (img) == -1) {
        check_error (res, "%s", vmc_get_error ());
    }
    meta[nmeta++] = (struct region) { 0, VHD_FOOTER_SIZE, "footer copy" };
    meta[nmeta++] = (struct region) {
        s->header_offset, s->header_offset + VHD_HEADER_SIZE,
        "dynamic header" };
    meta[nmeta++] = (struct region) {
        s->bat_offset, s->bat_offset + (uint64_t) s->max_entries * 4, "BAT" };
    meta[nmeta++] = (struct region) {
        s->data_end, img->file->size, "footer" };
    for (i = 0; i < VHD_NUM_LOCATORS && s->type == VHD_TYPE_DIFF; i++) {
        if (s->loc[i].code != 0 && s->loc[i].length > 0) {
            meta[nmeta++] = (struct region) {
                s->loc[i].offset, s->loc[i].offset + s->loc[i].length,
                "parent locator" };
        }
    }
    for (i = 0; i < nmeta; i++) {
        for (k = i + 1; k < nmeta; k++) {
            if (meta[i].start < meta[k].end && meta[k].start < meta[i].end) {
                check_error (res, "vhd: %s at 0x%" PRIx64 " overlaps %s at 0x%"
                             PRIx64, meta[i].what, meta[i].start,
                             meta[k].what, meta[k].start);
            }
        }
    }
    for (b = 0; b < s->nblocks; b++) {
        n += s->bat[b] != VHD_BAT_UNUSED;
    }
    order = image_alloc_table (img, "block order", n, sizeof *order,
                               VHD_BAT_CAP);
    if (order == NULL) {
        return -1;
    }
    for (b = 0, i = 0; b < s->nblocks; b++) {
        if (s->bat[b] != VHD_BAT_UNUSED) {
            order[i++] = (uint32_t) b;
        }
    }
    sort_bat = s->bat;
    qsort (order, n, sizeof *order, cmp_block);
    for (i = 0; i < n; i++) {
        b = order[i];
        start = (uint64_t) s->bat[b] * VHD_SECTOR;
        end = start + s->bitmap_size + block_need (s, img->size, b);
        if (i > 0 && start < prev_end) {
            check_error (res, "vhd: BAT entry %" PRIu64 " (sector 0x%" PRIx32
                         ") overlaps the block of BAT entry %" PRIu64, b,
                         s->bat[b], prev_b);
        }
        for (k = 0; k < nmeta; k++) {
            if (start < meta[k].end && meta[k].start < end) {
                check_error (res, "vhd: BAT entry %" PRIu64 " (sector 0x%"
                             PRIx32 ") overlaps the %s", b, s->bat[b],
                             meta[k].what);
            }
        }
        prev_end = end;
        prev_b = b;
    }
    free (order);
    return 0;
}

/* ---- writing ------------------------------------------------------------ */

static const struct create_option vhd_create_opts[] = {
    { "subformat", "dynamic (default) or fixed" },
    { "force_size", "on: keep the exact size (geometry 65535/16/255, as "
                    "qemu-img); off (default): round up to a CHS geometry" },
    { "azure", "on: for Azure: fixed, exact size rounded up to a whole MiB" },
    { "block_size", "dynamic disk block size (default 2M, power of two "
                    "from 512 to 256M)" },
    { NULL, NULL },
};

static void
put_footer (struct image *img, unsigned char *b, bool dynamic)
{
    struct vhd *s = img->priv;
    const struct vhd_footer *f = &s->footer;

    memset (b, 0, VHD_FOOTER_SIZE);
    memcpy (b, "conectix", 8);
    put_be32 (b + 8, f->features);
    put_be32 (b + 12, f->version);
    put_be64 (b + 16, dynamic ? VHD_FOOTER_SIZE : UINT64_MAX);
    put_be32 (b + 24, f->timestamp);
    memcpy (b + 28, f->creator_app, 4);
    put_be32 (b + 32, f->creator_version);
    memcpy (b + 36, f->creator_os, 4);
    put_be64 (b + 40, f->original_size);
    put_be64 (b + 48, f->current_size);
    put_be16 (b + 56, f->cylinders);
    b[58] = f->heads;
    b[59] = f->sectors;
    put_be32 (b + 60, f->disk_type);
    memcpy (b + 68, f->uuid, 16);
    put_be32 (b + 64, vhd_checksum (b, VHD_FOOTER_SIZE, 64));
}

/* Where a block's bitmap goes at or after POS: for blocks of 1 MiB and
 * more, so that the data starts on a 4 KiB boundary of the file (host
 * pages, holes); smaller blocks are packed, as padding would cost more
 * than it saves. */
static uint64_t
align_block (const struct vhd *s, uint64_t pos)
{
    if (s->block_size < (1u << 20)) {
        return pos;
    }
    return ROUND_UP (pos + s->bitmap_size, 4096) - s->bitmap_size;
}

static int
vhd_create (struct image *img, const struct create_params *p)
{
    struct vhd *s = img->priv;
    struct vhd_footer *f = &s->footer;
    const char *sub = options_get (p->opts, "subformat");
    uint64_t size, sectors, block_size, bat_bytes, t;
    bool force = false, azure = false;

    if (options_get_bool (p->opts, "force_size", false, &force) == -1 ||
        options_get_bool (p->opts, "azure", false, &azure) == -1 ||
        options_get_size (p->opts, "block_size", VHD_DEFAULT_BLOCK,
                          &block_size) == -1) {
        return -1;
    }
    if (sub != NULL && strcmp (sub, "dynamic") != 0 &&
        strcmp (sub, "fixed") != 0) {
        vmc_error ("vhd: subformat \"%s\" is not dynamic or fixed", sub);
        return -1;
    }
    s->w_dynamic = sub == NULL || strcmp (sub, "dynamic") == 0;
    if (azure) {
        if (sub != NULL && s->w_dynamic) {
            vmc_error ("vhd: azure=on needs a fixed disk, not "
                       "subformat=dynamic");
            return -1;
        }
        if (options_get (p->opts, "force_size") != NULL && !force) {
            vmc_error ("vhd: azure=on needs force_size=on");
            return -1;
        }
        s->w_dynamic = false;
        force = true;
    }
    if (!is_power_of_2 (block_size) || block_size < VHD_MIN_BLOCK ||
        block_size > VHD_MAX_BLOCK) {
        vmc_error ("vhd: block_size %" PRIu64 " is not a power of two "
                   "between %u and %u", block_size, VHD_MIN_BLOCK,
                   VHD_MAX_BLOCK);
        return -1;
    }
    if (p->size > VHD_MAX_SECTORS * VHD_SECTOR) {
        vmc_error ("vhd: %" PRIu64 " bytes is larger than the 2040 GiB a "
                   "VHD can hold", p->size);
        return -1;
    }
    size = ROUND_UP (p->size, (uint64_t) VHD_SECTOR);
    if (azure) {
        size = ROUND_UP (size, (uint64_t) 1 << 20);
    }
    sectors = size / VHD_SECTOR;
    if (force || sectors > VHD_CHS_MAX_SECTORS) {
        f->cylinders = VHD_CHS_MAX_C;
        f->heads = VHD_CHS_MAX_H;
        f->sectors = VHD_CHS_MAX_S;
    }
    else {
        /* Round up: the smallest geometry holding every sector. */
        for (t = sectors; ; t++) {
            chs_for (t, &f->cylinders, &f->heads, &f->sectors);
            if ((uint64_t) f->cylinders * f->heads * f->sectors >= sectors) {
                break;
            }
        }
        size = (uint64_t) f->cylinders * f->heads * f->sectors * VHD_SECTOR;
        if (size / VHD_SECTOR == VHD_CHS_MAX_SECTORS) {
            size = sectors * VHD_SECTOR;
        }
    }
    if (size > VHD_MAX_SECTORS * VHD_SECTOR) {
        vmc_error ("vhd: %" PRIu64 " bytes is larger than the 2040 GiB a "
                   "VHD can hold", size);
        return -1;
    }
    f->features = 2;
    f->version = 0x00010000;
    t = (uint64_t) time (NULL);
    f->timestamp = t > VHD_EPOCH ? (uint32_t) (t - VHD_EPOCH) : 0;
    memcpy (f->creator_app, "vmcv", 4);
    f->creator_version = 0x00000001;
    memcpy (f->creator_os, "Wi2k", 4);
    f->original_size = size;
    f->current_size = size;
    f->disk_type = s->w_dynamic ? VHD_TYPE_DYNAMIC : VHD_TYPE_FIXED;
    if (getrandom (f->uuid, sizeof f->uuid, 0) != sizeof f->uuid) {
        vmc_perror ("vhd: getrandom");
        return -1;
    }
    f->uuid[6] = (unsigned char) ((f->uuid[6] & 0x0f) | 0x40);
    f->uuid[8] = (unsigned char) ((f->uuid[8] & 0x3f) | 0x80);
    img->size = size;
    /* Any byte range can be written (partial sectors stay holes, which
     * read as zeros).  Asking for 512 would break conversions of sources
     * whose size is not a multiple of 512: the size is rounded up here,
     * and the copy engine's last write ends at the source's odd end. */
    img->write_align = 1;
    if (!s->w_dynamic) {
        snprintf (img->subformat, sizeof img->subformat, "fixed");
        if (img->file->is_block &&
            img->file->size < size + VHD_FOOTER_SIZE) {
            vmc_error ("vhd: the device holds %" PRIu64 " bytes, %" PRIu64
                       " are needed", img->file->size,
                       size + VHD_FOOTER_SIZE);
            return -1;
        }
        return 0;
    }
    snprintf (img->subformat, sizeof img->subformat, "dynamic");
    s->block_size = (uint32_t) block_size;
    s->block_shift = log2_u64 (block_size);
    s->bitmap_size = ROUND_UP (s->block_size / VHD_SECTOR / 8, VHD_SECTOR);
    s->nblocks = DIV_ROUND_UP (size, block_size);
    s->bat = image_alloc_table (img, "BAT", s->nblocks, sizeof *s->bat,
                                VHD_BAT_CAP);
    if (s->bat == NULL) {
        return -1;
    }
    memset (s->bat, 0xff, s->nblocks * sizeof *s->bat);
    s->bitmap = malloc (s->bitmap_size);        /* all ones, for new blocks */
    if (s->bitmap == NULL) {
        vmc_perror ("vhd: bitmap");
        return -1;
    }
    memset (s->bitmap, 0xff, s->bitmap_size);
    s->header_offset = VHD_FOOTER_SIZE;
    s->bat_offset = VHD_FOOTER_SIZE + VHD_HEADER_SIZE;
    bat_bytes = ROUND_UP (s->nblocks * 4, (uint64_t) VHD_SECTOR);
    s->file_end = s->bat_offset + bat_bytes;
    s->next_free = align_block (s, s->file_end);
    img->cluster_size = s->block_size;
    return 0;
}

/* On a block device nothing reads as zeros by itself: zero what the
 * writer skipped up to POS.  Regular files get holes for free. */
static int
zero_gap (struct image *img, uint64_t pos)
{
    struct vhd *s = img->priv;

    if (!img->file->is_block || pos <= s->zeroed_to) {
        return 0;
    }
    if (bdev_zero (img->file, s->zeroed_to, pos - s->zeroed_to) == -1) {
        return -1;
    }
    s->zeroed_to = pos;
    return 0;
}

static int
write_data (struct image *img, const void *buf, size_t count, uint64_t host)
{
    struct vhd *s = img->priv;

    if (zero_gap (img, host) == -1 ||
        bdev_pwrite (img->file, buf, count, host) == -1) {
        return -1;
    }
    s->zeroed_to = MAX (s->zeroed_to, host + count);
    return 0;
}

static int
vhd_pwrite (struct image *img, const void *buf, size_t count, uint64_t offset)
{
    struct vhd *s = img->priv;
    const unsigned char *p = buf;
    uint64_t b, in, n, host, pos;

    if (!s->w_dynamic) {
        return write_data (img, buf, count, offset);
    }
    while (count > 0) {
        b = offset >> s->block_shift;
        in = offset & (s->block_size - 1);
        n = MIN ((uint64_t) count, s->block_size - in);
        if (s->bat[b] == VHD_BAT_UNUSED) {
            /* A new block at the end: its bitmap says every sector is
             * present; the parts never written are holes, so zeros. */
            pos = s->next_free;
            if (pos / VHD_SECTOR >= VHD_BAT_UNUSED) {
                vmc_error ("vhd: the image file would outgrow the 2 TiB "
                           "that BAT entries can address");
                return -1;
            }
            if (write_data (img, s->bitmap, s->bitmap_size, pos) == -1) {
                return -1;
            }
            s->bat[b] = (uint32_t) (pos / VHD_SECTOR);
            s->file_end = pos + s->bitmap_size + s->block_size;
            s->next_free = align_block (s, s->file_end);
        }
        host = (uint64_t) s->bat[b] * VHD_SECTOR + s->bitmap_size + in;
        if (write_data (img, p, n, host) == -1) {
            return -1;
        }
        p += n;
        offset += n;
        count -= n;
    }
    return 0;
}

static int
write_bat (struct image *img)
{
    struct vhd *s = img->priv;
    unsigned char buf[65536];
    uint64_t i = 0, total = ROUND_UP (s->nblocks * 4, (uint64_t) VHD_SECTOR);
    uint64_t done = 0;
    size_t n, k;

    while (done < total) {
        n = (size_t) MIN ((uint64_t) sizeof buf, total - done);
        for (k = 0; k < n; k += 4, i++) {
            put_be32 (buf + k, i < s->nblocks ? s->bat[i] : VHD_BAT_UNUSED);
        }
        if (bdev_pwrite (img->file, buf, n, s->bat_offset + done) == -1) {
            return -1;
        }
        done += n;
    }
    return 0;
}

static int
vhd_finish (struct image *img)
{
    struct vhd *s = img->priv;
    unsigned char footer[VHD_FOOTER_SIZE], h[VHD_HEADER_SIZE];
    uint64_t end;

    put_footer (img, footer, s->w_dynamic);
    if (!s->w_dynamic) {
        if (zero_gap (img, img->size) == -1 ||
            bdev_pwrite (img->file, footer, sizeof footer, img->size) == -1) {
            return -1;
        }
        end = img->size + VHD_FOOTER_SIZE;
    }
    else {
        if (zero_gap (img, s->file_end) == -1 ||
            bdev_pwrite (img->file, footer, sizeof footer,
                         s->file_end) == -1) {
            return -1;
        }
        end = s->file_end + VHD_FOOTER_SIZE;
        memset (h, 0, sizeof h);
        memcpy (h, "cxsparse", 8);
        put_be64 (h + 8, UINT64_MAX);
        put_be64 (h + 16, s->bat_offset);
        put_be32 (h + 24, 0x00010000);
        put_be32 (h + 28, (uint32_t) s->nblocks);
        put_be32 (h + 32, s->block_size);
        put_be32 (h + 36, vhd_checksum (h, sizeof h, 36));
        if (write_bat (img) == -1 ||
            bdev_pwrite (img->file, h, sizeof h, s->header_offset) == -1 ||
            bdev_pwrite (img->file, footer, sizeof footer, 0) == -1) {
            return -1;
        }
    }
    if (!img->file->is_block) {
        return bdev_truncate (img->file, end);
    }
    return 0;
}

const struct image_format format_vhd = {
    .name = "vhd",
    .alias = "vpc",
    .description = "Microsoft Virtual Hard Disk: fixed, dynamic, "
                   "differencing",
    .priv_size = sizeof (struct vhd),
    .probe = vhd_probe,
    .open = vhd_open,
    .close = vhd_close,
    .pread = vhd_pread,
    .block_status = vhd_block_status,
    .check = vhd_check,
    .create_opts = vhd_create_opts,
    .create = vhd_create,
    .pwrite = vhd_pwrite,
    .finish = vhd_finish,
};
