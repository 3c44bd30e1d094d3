/* SPDX-License-Identifier: MIT */
/*
 * vdi: VirtualBox Virtual Disk Image.
 *
 * Spec: there is no published specification; the layout is VirtualBox's
 * own (src/VBox/Storage/VDICore.h, https://www.virtualbox.org/browser/vbox/
 * trunk/src/VBox/Storage/VDICore.h), header version 1.1, which every
 * VirtualBox since 1.4 and qemu write.  qemu's block/vdi.c was read for
 * which values qemu accepts, nothing else.
 *
 * Read: header version 1.1, image types 1 (normal, "dynamic") and 2
 * (fixed, "static").  Types 3 (undo) and 4 (differencing: a VirtualBox
 * snapshot, whose parent is found through the VirtualBox media registry,
 * not the file) are refused, as is version 1.0 (VirtualBox 1.3 and older,
 * another header layout) and per-block extra data (never written by any
 * known tool, and misread by qemu).  Block map entries: 0xffffffff (not
 * allocated) and 0xfffffffe (discarded) read as zeros, any other is the
 * index of the block's data in the data area.  A disk size that is not a
 * multiple of 512 is rounded up, as qemu does.
 *
 * Write: normal (dynamic) images by default, fixed with static=on (qemu's
 * option name).  Blocks are 1 MiB (the only size qemu reads) and are
 * allocated in guest order, only when they hold data, so the data of
 * consecutive guest blocks is contiguous in the file; the block map is kept
 * in memory (4 bytes per MiB) and written with the header at finish.  The
 * data area starts on a 1 MiB boundary, as VirtualBox does.  A static image
 * maps every block to itself and is sparse where the guest has zeros, like
 * qemu's.  The header is written only at finish, so an interrupted file
 * does not look like a VDI.
 *
 * Checkpoint and resume (the network receiver).  Dynamic: a checkpoint at
 * guest position pos writes, in place, the block map sectors whose
 * entries changed since the previous checkpoint (the blocks below pos);
 * the state keeps the next data block index, the entry of the block
 * holding pos (it may still change) and the two uuids.  Since blocks get
 * data indexes 0, 1, 2... in guest order, resume checks the entries it
 * reads back exactly, and reads none from pos on (those reach the file
 * only at a later checkpoint, which the crash interrupted).  What was
 * written after the checkpoint lies in the block holding pos, past pos,
 * or in later data blocks, so the file is cut at the first of these.
 * Static: the data is at data offset + guest offset, so the file is cut
 * at the position.
 *
 * Limits: block size a power of two from 512 B to 256 MiB; the block map at
 * most 32 MiB (8 Mi blocks, 8 TiB of 1 MiB blocks), in memory whole.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"

/*
 * On-disk layout (integers little-endian).  The header sits in the first
 * sector:
 *
 *   0x000  text[64]          "<<< Oracle VM VirtualBox Disk Image >>>\n"
 *                            (or Sun xVM, innotek, QEMU): informative only
 *   0x040  signature         0xbeda107f
 *   0x044  version           0x00010001 (major 1, minor 1)
 *   0x048  header size       bytes from 0x048: 0x180, or 0x190 with the
 *                            LCHS geometry that VirtualBox adds
 *   0x04c  image type        1 normal, 2 fixed, 3 undo, 4 differencing
 *   0x050  image flags
 *   0x054  comment[256]
 *   0x154  block map offset  file offset of the block map
 *   0x158  data offset       file offset of block 0 of the data area
 *   0x15c  legacy geometry   cylinders, heads, sectors (3 x 4 bytes)
 *   0x168  sector size       512
 *   0x16c  unused
 *   0x170  disk size         bytes (64 bits)
 *   0x178  block size        bytes of guest data per block, 1 MiB default
 *   0x17c  block extra       bytes of extra data before each block's data
 *   0x180  blocks in image   entries in the block map
 *   0x184  blocks allocated  blocks present in the data area
 *   0x188  image uuid[16]
 *   0x198  last modification uuid[16]
 *   0x1a8  link uuid[16]     differencing: the parent's image uuid
 *   0x1b8  parent modification uuid[16]
 *   0x1c8  LCHS geometry     cylinders, heads, sectors, sector size
 *                            (header size 0x190 only)
 *
 * Block map: blocks-in-image 32-bit entries at the block map offset; entry
 * i is the index of guest block i's data in the data area (data offset +
 * index * block size), or 0xffffffff (never written) or 0xfffffffe
 * (discarded), both reading as zeros.
 */

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_PRE_HEADER 0x48u            /* text + signature + version */
#define VDI_HEADER_MIN 0x180u
#define VDI_HEADER_PLUS 0x190u
#define VDI_HEADER_MAX (512u - VDI_PRE_HEADER)
#define VDI_SECTOR 512u

#define VDI_TYPE_NORMAL 1u
#define VDI_TYPE_FIXED 2u
#define VDI_TYPE_UNDO 3u
#define VDI_TYPE_DIFF 4u

#define VDI_UNALLOCATED 0xffffffffu
#define VDI_DISCARDED 0xfffffffeu
#define VDI_IS_ALLOCATED(e) ((e) < VDI_DISCARDED)

#define VDI_DEFAULT_BLOCK (1u << 20)
#define VDI_MIN_BLOCK 512u
#define VDI_MAX_BLOCK (256u << 20)
#define VDI_MAP_CAP (32u << 20)         /* bytes of block map in memory */
#define VDI_DATA_ALIGN (1u << 20)       /* where our data area starts */

#define VDI_TEXT "<<< Oracle VM VirtualBox Disk Image >>>\n"

struct vdi_header {
    uint32_t signature;
    uint32_t version;
    uint32_t header_size;
    uint32_t type;
    uint32_t flags;
    uint32_t map_offset;
    uint32_t data_offset;
    uint32_t cylinders, heads, sectors;
    uint32_t sector_size;
    uint64_t disk_size;
    uint32_t block_size;
    uint32_t block_extra;
    uint32_t blocks;
    uint32_t allocated;
    unsigned char uuid_image[16];
    unsigned char uuid_modify[16];
    unsigned char uuid_link[16];
    unsigned char uuid_parent[16];
};

struct vdi {
    struct vdi_header h;
    uint32_t *map;              /* h.blocks entries, host order */
    unsigned block_shift;

    /* Writing. */
    bool w_static;
    uint32_t next_index;        /* next data block to hand out */
    uint64_t ck_synced;         /* map entries below are in the file */
};

/* ---- decoding ----------------------------------------------------------- */

static void
decode_header (const unsigned char *b, struct vdi_header *h)
{
    h->signature = get_le32 (b + 0x40);
    h->version = get_le32 (b + 0x44);
    h->header_size = get_le32 (b + 0x48);
    h->type = get_le32 (b + 0x4c);
    h->flags = get_le32 (b + 0x50);
    h->map_offset = get_le32 (b + 0x154);
    h->data_offset = get_le32 (b + 0x158);
    h->cylinders = get_le32 (b + 0x15c);
    h->heads = get_le32 (b + 0x160);
    h->sectors = get_le32 (b + 0x164);
    h->sector_size = get_le32 (b + 0x168);
    h->disk_size = get_le64 (b + 0x170);
    h->block_size = get_le32 (b + 0x178);
    h->block_extra = get_le32 (b + 0x17c);
    h->blocks = get_le32 (b + 0x180);
    h->allocated = get_le32 (b + 0x184);
    memcpy (h->uuid_image, b + 0x188, 16);
    memcpy (h->uuid_modify, b + 0x198, 16);
    memcpy (h->uuid_link, b + 0x1a8, 16);
    memcpy (h->uuid_parent, b + 0x1b8, 16);
}

static void
encode_header (unsigned char *b, const struct vdi_header *h)
{
    memset (b, 0, VDI_SECTOR);
    memcpy (b, VDI_TEXT, sizeof VDI_TEXT - 1);
    put_le32 (b + 0x40, h->signature);
    put_le32 (b + 0x44, h->version);
    put_le32 (b + 0x48, h->header_size);
    put_le32 (b + 0x4c, h->type);
    put_le32 (b + 0x50, h->flags);
    put_le32 (b + 0x154, h->map_offset);
    put_le32 (b + 0x158, h->data_offset);
    put_le32 (b + 0x15c, h->cylinders);
    put_le32 (b + 0x160, h->heads);
    put_le32 (b + 0x164, h->sectors);
    put_le32 (b + 0x168, h->sector_size);
    put_le64 (b + 0x170, h->disk_size);
    put_le32 (b + 0x178, h->block_size);
    put_le32 (b + 0x17c, h->block_extra);
    put_le32 (b + 0x180, h->blocks);
    put_le32 (b + 0x184, h->allocated);
    memcpy (b + 0x188, h->uuid_image, 16);
    memcpy (b + 0x198, h->uuid_modify, 16);
    memcpy (b + 0x1a8, h->uuid_link, 16);
    memcpy (b + 0x1b8, h->uuid_parent, 16);
    /* LCHS geometry at 0x1c8 stays zero: "let the guest decide". */
}

static void
uuid_str (const unsigned char *u, char out[40])
{
    snprintf (out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
              "%02x%02x%02x%02x%02x%02x", u[3], u[2], u[1], u[0], u[5], u[4],
              u[7], u[6], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
              u[15]);
}

/* ---- probe -------------------------------------------------------------- */

static int
vdi_probe (const struct probe_data *p)
{
    if (p->head_len < 0x48 || get_le32 (p->head + 0x40) != VDI_SIGNATURE) {
        return 0;
    }
    /* The text is informative, but every writer puts "<<< ... >>>". */
    return memcmp (p->head, "<<< ", 4) == 0 ? 100 : 50;
}

/* ---- open --------------------------------------------------------------- */

/* Bytes of guest block B that lie inside the disk. */
static uint64_t
block_need (const struct vdi *s, uint64_t size, uint64_t b)
{
    return MIN ((uint64_t) s->h.block_size, size - (b << s->block_shift));
}

static int
validate_header (struct image *img)
{
    struct vdi *s = img->priv;
    struct vdi_header *h = &s->h;
    uint64_t fsize = img->file->size, map_bytes, size;

    if (h->version != VDI_VERSION_1_1) {
        vmc_error ("vdi: header version %" PRIu32 ".%" PRIu32 " is not "
                   "supported (only 1.1)", h->version >> 16,
                   h->version & 0xffff);
        return -1;
    }
    if (h->header_size < VDI_HEADER_MIN || h->header_size > VDI_HEADER_MAX) {
        vmc_error ("vdi: header size %" PRIu32 " is out of range (%u to %u)",
                   h->header_size, VDI_HEADER_MIN, VDI_HEADER_MAX);
        return -1;
    }
    switch (h->type) {
    case VDI_TYPE_NORMAL:
    case VDI_TYPE_FIXED:
        break;
    case VDI_TYPE_UNDO:
        vmc_error ("vdi: image type 3 (undo) is not supported");
        return -1;
    case VDI_TYPE_DIFF:
        vmc_error ("vdi: image type 4 (differencing, a VirtualBox snapshot) "
                   "is not supported: convert the whole chain with "
                   "VirtualBox (VBoxManage clonemedium)");
        return -1;
    default:
        vmc_error ("vdi: image type %" PRIu32 " is not valid (1 normal, "
                   "2 fixed)", h->type);
        return -1;
    }
    if (h->sector_size != VDI_SECTOR) {
        vmc_error ("vdi: sector size %" PRIu32 " is not 512",
                   h->sector_size);
        return -1;
    }
    if (!is_power_of_2 (h->block_size) || h->block_size < VDI_MIN_BLOCK ||
        h->block_size > VDI_MAX_BLOCK) {
        vmc_error ("vdi: block size %" PRIu32 " is not a power of two "
                   "between %u and %u", h->block_size, VDI_MIN_BLOCK,
                   VDI_MAX_BLOCK);
        return -1;
    }
    s->block_shift = log2_u64 (h->block_size);
    if (h->block_extra != 0) {
        vmc_error ("vdi: block extra data (%" PRIu32 " bytes) is not "
                   "supported", h->block_extra);
        return -1;
    }
    map_bytes = (uint64_t) h->blocks * 4;
    if (map_bytes > VDI_MAP_CAP) {
        vmc_error ("vdi: blocks in image %" PRIu32 " is too many (limit %u)",
                   h->blocks, VDI_MAP_CAP / 4);
        return -1;
    }
    if (h->allocated > h->blocks) {
        vmc_error ("vdi: blocks allocated %" PRIu32 " is more than blocks in "
                   "image %" PRIu32, h->allocated, h->blocks);
        return -1;
    }
    if (h->disk_size > UINT64_MAX - VDI_SECTOR) {
        vmc_error ("vdi: disk size %" PRIu64 " is out of range", h->disk_size);
        return -1;
    }
    size = ROUND_UP (h->disk_size, (uint64_t) VDI_SECTOR);
    if (size > (uint64_t) h->blocks * h->block_size) {
        vmc_error ("vdi: disk size %" PRIu64 " needs more than the %" PRIu32
                   " blocks in image", h->disk_size, h->blocks);
        return -1;
    }
    if (h->map_offset % VDI_SECTOR != 0 ||
        h->map_offset < VDI_PRE_HEADER + h->header_size ||
        range_outside (h->map_offset, map_bytes, fsize)) {
        vmc_error ("vdi: block map offset 0x%" PRIx32 " is not a sector "
                   "after the header with the %" PRIu32 " entries inside "
                   "the file", h->map_offset, h->blocks);
        return -1;
    }
    if (h->data_offset % VDI_SECTOR != 0 ||
        h->data_offset < h->map_offset + map_bytes) {
        vmc_error ("vdi: data offset 0x%" PRIx32 " is not a sector after "
                   "the block map", h->data_offset);
        return -1;
    }
    img->size = size;
    return 0;
}

static int
vdi_open (struct image *img)
{
    struct vdi *s = img->priv;
    struct vdi_header *h = &s->h;
    unsigned char buf[VDI_SECTOR];
    uint64_t b, host;
    uint32_t e;
    char u[40];

    if (img->file->size < VDI_SECTOR) {
        vmc_error ("vdi: file of %" PRIu64 " bytes is too small for a "
                   "header", img->file->size);
        return -1;
    }
    if (bdev_pread (img->file, buf, sizeof buf, 0) == -1) {
        return -1;
    }
    decode_header (buf, h);
    if (h->signature != VDI_SIGNATURE) {
        vmc_error ("vdi: signature 0x%08" PRIx32 " is not 0x%08x",
                   h->signature, VDI_SIGNATURE);
        return -1;
    }
    if (validate_header (img) == -1) {
        return -1;
    }
    s->map = image_alloc_table (img, "block map", h->blocks, sizeof *s->map,
                                VDI_MAP_CAP);
    if (s->map == NULL) {
        return -1;
    }
    if (bdev_pread (img->file, s->map, (uint64_t) h->blocks * 4,
                    h->map_offset) == -1) {
        return -1;
    }
    for (b = 0; b < h->blocks; b++) {
        e = get_le32 (&s->map[b]);
        s->map[b] = e;
        if (!VDI_IS_ALLOCATED (e)) {
            continue;
        }
        if (e >= h->blocks) {
            vmc_error ("vdi: block map entry %" PRIu64 " (%" PRIu32 ") is "
                       "out of range (blocks in image %" PRIu32 ")", b, e,
                       h->blocks);
            return -1;
        }
        /* Blocks past the disk size are never read. */
        if ((b << s->block_shift) >= img->size) {
            continue;
        }
        host = h->data_offset + ((uint64_t) e << s->block_shift);
        if (range_outside (host, block_need (s, img->size, b),
                           img->file->size)) {
            vmc_error ("vdi: block map entry %" PRIu64 " (%" PRIu32 ") "
                       "points past end of file", b, e);
            return -1;
        }
    }
    snprintf (img->subformat, sizeof img->subformat, "%s",
              h->type == VDI_TYPE_FIXED ? "static" : "dynamic");
    img->cluster_size = h->block_size;
    uuid_str (h->uuid_image, u);
    image_info_add (img, "uuid", "%s", u);
    image_info_add (img, "blocks allocated", "%" PRIu32 " of %" PRIu32,
                    h->allocated, h->blocks);
    return 0;
}

static void
vdi_close (struct image *img)
{
    struct vdi *s = img->priv;

    free (s->map);
}

/* ---- reading ------------------------------------------------------------ */

/* The run at OFFSET: either unallocated blocks (*host = UINT64_MAX) or
 * allocated blocks contiguous in the file, at most COUNT bytes. */
static void
vdi_run (struct image *img, uint64_t offset, uint64_t count, uint64_t *host,
         uint64_t *len)
{
    struct vdi *s = img->priv;
    uint64_t b = offset >> s->block_shift;
    uint64_t in = offset & (s->h.block_size - 1);
    uint64_t n = s->h.block_size - in;
    uint32_t e = s->map[b];

    if (!VDI_IS_ALLOCATED (e)) {
        *host = UINT64_MAX;
        while (n < count && !VDI_IS_ALLOCATED (s->map[b + 1])) {
            n += s->h.block_size;
            b++;
        }
    }
    else {
        *host = s->h.data_offset + ((uint64_t) e << s->block_shift) + in;
        while (n < count && VDI_IS_ALLOCATED (s->map[b + 1]) &&
               s->map[b + 1] == e + 1) {
            n += s->h.block_size;
            b++;
            e++;
        }
    }
    *len = MIN (n, count);
}

static int
vdi_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    unsigned char *p = buf;
    uint64_t host, len;

    while (count > 0) {
        vdi_run (img, offset, count, &host, &len);
        if (host == UINT64_MAX) {
            memset (p, 0, len);
        }
        else if (bdev_pread (img->file, p, len, host) == -1) {
            return -1;
        }
        p += len;
        offset += len;
        count -= len;
    }
    return 0;
}

static int
vdi_block_status (struct image *img, uint64_t offset, uint64_t count,
                  struct extent *ext)
{
    uint64_t host, len, d, h;

    vdi_run (img, offset, count, &host, &len);
    ext->length = len;
    if (host == UINT64_MAX) {
        ext->type = EXTENT_ZERO;
        return 0;
    }
    /* Holes in the file read as zeros (sparse static images, blocks we
     * wrote); say so, so they are not read. */
    if (bdev_next_data (img->file, host, &d) == -1) {
        return -1;
    }
    if (d > host) {
        ext->type = EXTENT_ZERO;
        ext->length = MIN (len, d - host);
        return 0;
    }
    if (bdev_next_hole (img->file, host, &h) == -1) {
        return -1;
    }
    ext->type = EXTENT_DATA;
    if (h > host) {
        ext->length = MIN (len, h - host);
    }
    return 0;
}

/* ---- check -------------------------------------------------------------- */

static int
vdi_check (struct image *img, struct check_result *res)
{
    struct vdi *s = img->priv;
    uint64_t b, count = 0;
    uint32_t e, *owner;

    /* Which guest block uses each data block, to find sharing. */
    owner = image_alloc_table (img, "block owners", s->h.blocks,
                               sizeof *owner, VDI_MAP_CAP);
    if (owner == NULL) {
        return -1;
    }
    memset (owner, 0xff, (size_t) s->h.blocks * sizeof *owner);
    for (b = 0; b < s->h.blocks; b++) {
        e = s->map[b];
        if (!VDI_IS_ALLOCATED (e)) {
            continue;
        }
        count++;
        if (owner[e] != UINT32_MAX) {
            check_error (res, "vdi: block map entries %" PRIu32 " and %"
                         PRIu64 " both use data block %" PRIu32, owner[e], b,
                         e);
        }
        else {
            owner[e] = (uint32_t) b;
        }
    }
    free (owner);
    if (count != s->h.allocated) {
        check_error (res, "vdi: %" PRIu64 " blocks are allocated, the header "
                     "says %" PRIu32, count, s->h.allocated);
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------ */

static const struct create_option vdi_create_opts[] = {
    { "static", "on: fixed image, every block allocated (sparse where the "
                "guest has zeros); off (default): dynamic" },
    { NULL, NULL },
};

static int
vdi_create (struct image *img, const struct create_params *p)
{
    struct vdi *s = img->priv;
    struct vdi_header *h = &s->h;
    uint64_t size, blocks, data;

    if (options_get_bool (p->opts, "static", false, &s->w_static) == -1) {
        return -1;
    }
    size = ROUND_UP (p->size, (uint64_t) VDI_SECTOR);
    blocks = DIV_ROUND_UP (size, (uint64_t) VDI_DEFAULT_BLOCK);
    if (blocks * 4 > VDI_MAP_CAP) {
        vmc_error ("vdi: %" PRIu64 " bytes needs a block map larger than %u "
                   "bytes", p->size, VDI_MAP_CAP);
        return -1;
    }
    memset (h, 0, sizeof *h);
    h->signature = VDI_SIGNATURE;
    h->version = VDI_VERSION_1_1;
    h->header_size = VDI_HEADER_PLUS;
    h->type = s->w_static ? VDI_TYPE_FIXED : VDI_TYPE_NORMAL;
    h->map_offset = VDI_SECTOR;
    data = ROUND_UP (VDI_SECTOR + blocks * 4, (uint64_t) VDI_DATA_ALIGN);
    h->data_offset = (uint32_t) data;
    h->sector_size = VDI_SECTOR;
    h->disk_size = size;
    h->block_size = VDI_DEFAULT_BLOCK;
    h->blocks = (uint32_t) blocks;
    if (getrandom (h->uuid_image, 16, 0) != 16 ||
        getrandom (h->uuid_modify, 16, 0) != 16) {
        vmc_perror ("vdi: getrandom");
        return -1;
    }
    /* RFC 4122 version 4; VirtualBox stores the first fields
     * little-endian. */
    h->uuid_image[7] = (unsigned char) ((h->uuid_image[7] & 0x0f) | 0x40);
    h->uuid_image[8] = (unsigned char) ((h->uuid_image[8] & 0x3f) | 0x80);
    h->uuid_modify[7] = (unsigned char) ((h->uuid_modify[7] & 0x0f) | 0x40);
    h->uuid_modify[8] = (unsigned char) ((h->uuid_modify[8] & 0x3f) | 0x80);
    s->block_shift = log2_u64 (VDI_DEFAULT_BLOCK);
    s->map = image_alloc_table (img, "block map", blocks, sizeof *s->map,
                                VDI_MAP_CAP);
    if (s->map == NULL) {
        return -1;
    }
    if (s->w_static) {
        for (uint64_t b = 0; b < blocks; b++) {
            s->map[b] = (uint32_t) b;
        }
        h->allocated = h->blocks;
        s->next_index = h->blocks;
    }
    else {
        memset (s->map, 0xff, blocks * sizeof *s->map);
    }
    if (img->file->is_block &&
        img->file->size < data + (s->w_static ? blocks << s->block_shift
                                  : 0)) {
        vmc_error ("vdi: the device holds %" PRIu64 " bytes, too few for "
                   "this image", img->file->size);
        return -1;
    }
    snprintf (img->subformat, sizeof img->subformat, "%s",
              s->w_static ? "static" : "dynamic");
    img->size = size;
    /* Any byte range can be written (partial sectors stay holes, which
     * read as zeros).  Asking for 512 would break conversions of sources
     * whose size is not a multiple of 512: the size is rounded up here,
     * and the copy engine's last write ends at the source's odd end. */
    img->write_align = 1;
    img->cluster_size = VDI_DEFAULT_BLOCK;
    return 0;
}

static int
vdi_pwrite (struct image *img, const void *buf, size_t count, uint64_t offset)
{
    struct vdi *s = img->priv;
    const unsigned char *p = buf;
    uint64_t b, last, host, len;

    /* Allocate the blocks this write touches; as writes come in guest
     * order, blocks allocated together are contiguous in the file. */
    b = offset >> s->block_shift;
    last = (offset + count - 1) >> s->block_shift;
    for (; b <= last; b++) {
        if (s->map[b] == VDI_UNALLOCATED) {
            s->map[b] = s->next_index++;
            s->h.allocated++;
        }
    }
    while (count > 0) {
        vdi_run (img, offset, count, &host, &len);
        if (bdev_pwrite (img->file, p, len, host) == -1) {
            return -1;
        }
        p += len;
        offset += len;
        count -= len;
    }
    return 0;
}

/* Block map entries in one sector. */
#define MAP_PER_SECTOR (VDI_SECTOR / 4)

/* Write block map entries [FROM, TO) to the file; both are multiples of a
 * sector's worth of entries, or TO is the padded end of the map. */
static int
write_map_range (struct image *img, uint64_t from, uint64_t to)
{
    struct vdi *s = img->priv;
    unsigned char buf[65536];
    uint64_t i = from;
    size_t n, k;

    while (i < to) {
        n = (size_t) MIN ((uint64_t) sizeof buf / 4, to - i) * 4;
        for (k = 0; k < n; k += 4, i++) {
            put_le32 (buf + k, i < s->h.blocks ? s->map[i] : VDI_UNALLOCATED);
        }
        if (bdev_pwrite (img->file, buf, n,
                         s->h.map_offset + (i - n / 4) * 4) == -1) {
            return -1;
        }
    }
    return 0;
}

static int
vdi_finish (struct image *img)
{
    struct vdi *s = img->priv;
    unsigned char buf[VDI_SECTOR];
    uint64_t end;

    end = s->h.data_offset + ((uint64_t) s->next_index << s->block_shift);
    /* The end of the data: a file's size; on a device, the unwritten
     * rest of the last block is zeroed. */
    if (bdev_truncate (img->file, end) == -1) {
        return -1;
    }
    encode_header (buf, &s->h);
    if (bdev_pwrite (img->file, buf, VDI_SECTOR, 0) == -1) {
        return -1;
    }
    /* The block map, padded with unallocated entries to a sector. */
    return write_map_range (img, 0, ROUND_UP ((uint64_t) s->h.blocks,
                                              (uint64_t) MAP_PER_SECTOR));
}

/* ---- checkpoint and resume ---------------------------------------------- */

/*
 * The state (little-endian):
 *
 *     0  tag[4]             "vdi1"
 *     4  flags              bit 0: static
 *     8  next index         dynamic: data blocks allocated
 *    12  partial entry      dynamic: map entry of the block holding the
 *                           checkpoint position, ~0 when none or unused
 *    16  image uuid[16]
 *    32  modification uuid[16]
 */
#define VDI_STATE_SIZE 48

static int
vdi_checkpoint (struct image *img, void *state, size_t *len)
{
    struct vdi *s = img->priv;
    unsigned char *st = state;
    uint64_t pos = img->write_pos, full, used, to;
    uint32_t part = VDI_UNALLOCATED;

    if (!s->w_static) {
        full = pos >> s->block_shift;
        used = DIV_ROUND_UP (pos, (uint64_t) s->h.block_size);
        if (used > full) {
            part = s->map[full];
        }
        to = MIN (ROUND_UP (used, (uint64_t) MAP_PER_SECTOR),
                  ROUND_UP ((uint64_t) s->h.blocks, (uint64_t) MAP_PER_SECTOR));
        if (write_map_range (img, ROUND_DOWN (s->ck_synced,
                                              (uint64_t) MAP_PER_SECTOR),
                             to) == -1) {
            return -1;
        }
        /* Entries of whole blocks below pos never change again. */
        s->ck_synced = full;
    }
    memset (st, 0, VDI_STATE_SIZE);
    memcpy (st, "vdi1", 4);
    put_le32 (st + 4, s->w_static ? 1 : 0);
    put_le32 (st + 8, s->w_static ? 0 : s->next_index);
    put_le32 (st + 12, part);
    memcpy (st + 16, s->h.uuid_image, 16);
    memcpy (st + 32, s->h.uuid_modify, 16);
    *len = VDI_STATE_SIZE;
    return 0;
}

static int
vdi_resume (struct image *img, const struct create_params *p,
            const void *state, size_t len)
{
    struct vdi *s = img->priv;
    const unsigned char *st = state;
    unsigned char buf[65536];
    uint64_t pos = img->write_pos, full, used, b, cut;
    uint32_t next, part, e, count = 0;
    size_t n, k;

    if (len != VDI_STATE_SIZE || memcmp (st, "vdi1", 4) != 0) {
        vmc_error ("vdi: the checkpoint state is not a VDI writer's");
        return -1;
    }
    if (vdi_create (img, p) == -1) {
        return -1;
    }
    if (get_le32 (st + 4) != (s->w_static ? 1u : 0u)) {
        vmc_error ("vdi: the checkpoint was taken with other options");
        return -1;
    }
    memcpy (s->h.uuid_image, st + 16, 16);
    memcpy (s->h.uuid_modify, st + 32, 16);
    if (pos > img->size) {
        vmc_error ("vdi: checkpoint position %" PRIu64 " is past the end",
                   pos);
        return -1;
    }
    if (s->w_static) {
        return bdev_truncate (img->file, s->h.data_offset + pos);
    }

    /* Blocks below pos got data indexes 0, 1, 2... in guest order. */
    next = get_le32 (st + 8);
    part = get_le32 (st + 12);
    full = pos >> s->block_shift;
    used = DIV_ROUND_UP (pos, (uint64_t) s->h.block_size);
    for (b = 0; b < full; b += n / 4) {
        n = (size_t) MIN ((uint64_t) sizeof buf / 4, full - b) * 4;
        if (bdev_pread (img->file, buf, n, s->h.map_offset + b * 4) == -1) {
            return -1;
        }
        for (k = 0; k < n; k += 4) {
            e = get_le32 (buf + k);
            if (e != VDI_UNALLOCATED && e != count) {
                vmc_error ("vdi: block map entry %" PRIu64 " (%" PRIu32 ") "
                           "is not the checkpoint's data block %" PRIu32,
                           b + k / 4, e, count);
                return -1;
            }
            if (e != VDI_UNALLOCATED) {
                count++;
            }
            s->map[b + k / 4] = e;
        }
    }
    cut = s->h.data_offset + ((uint64_t) count << s->block_shift);
    if (part != VDI_UNALLOCATED) {
        if (used == full || part != count) {
            vmc_error ("vdi: the checkpoint's partial block (%" PRIu32 ") "
                       "is not valid", part);
            return -1;
        }
        s->map[full] = part;
        count++;
        /* Only the part of this block below pos was written before the
         * checkpoint. */
        cut += pos & (s->h.block_size - 1);
    }
    if (next != count) {
        vmc_error ("vdi: the checkpoint has %" PRIu32 " data blocks, the "
                   "block map %" PRIu32, next, count);
        return -1;
    }
    s->next_index = next;
    s->h.allocated = next;
    s->ck_synced = full;
    return bdev_truncate (img->file, cut);
}

const struct image_format format_vdi = {
    .name = "vdi",
    .description = "VirtualBox Virtual Disk Image: dynamic, static",
    .priv_size = sizeof (struct vdi),
    .probe = vdi_probe,
    .open = vdi_open,
    .close = vdi_close,
    .pread = vdi_pread,
    .block_status = vdi_block_status,
    .check = vdi_check,
    .create_opts = vdi_create_opts,
    .create = vdi_create,
    .pwrite = vdi_pwrite,
    .finish = vdi_finish,
    .checkpoint = vdi_checkpoint,
    .resume = vdi_resume,
};
