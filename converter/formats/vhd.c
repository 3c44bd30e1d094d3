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
 * creator.  Creator application "vmcv".  Writing can be checkpointed and
 * resumed (vhd-write.c says how).
 *
 * Limits: virtual size at most 65535 * 255 * 255 sectors (2040 GiB, as
 * qemu); block size a power of two from 512 B to 256 MiB; the BAT entries
 * for the virtual size at most 16 MiB in memory (4 Mi blocks: 8 TiB of 2
 * MiB blocks, far above the 2040 GiB limit); parent locators at most 64
 * KiB each; an I/O-backed block status extent at most 256 MiB.
 *
 * Files: vhd.h (on-disk layout, shared state), vhd.c (probe, open, read,
 * check), vhd-write.c (create, write, checkpoint and resume).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"
#include "vhd.h"

/* ---- decoding and validation helpers ---------------------------------- */

uint32_t
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
    .checkpoint = vhd_checkpoint,
    .resume = vhd_resume,
};
