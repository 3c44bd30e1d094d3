/* SPDX-License-Identifier: MIT */
/*
 * vhd writer: dynamic and fixed disks, streamed in guest order.  See vhd.c
 * for the design and the options.
 *
 * Dynamic: the BAT for the whole disk is kept in memory (4 bytes per block:
 * at most 4 MiB at 2 MiB blocks and 2040 GiB).  Blocks are appended in the
 * order they are first written, each as a bitmap with every bit set and
 * its data, and only when they hold data; the parts of a block never
 * written are holes.  finish() writes the footer after the last block, then
 * the dynamic header, the BAT and the footer copy at the start.  Fixed: the
 * guest data at the same offsets (holes where the guest has zeros), then
 * the footer.  On a block device the skipped ranges are zeroed instead.
 *
 * Checkpoint and resume (the network receiver).  Dynamic: a checkpoint at
 * guest position pos writes, in place, the BAT sectors whose entries
 * changed since the previous checkpoint (the blocks below pos; the BAT is
 * otherwise written only at finish), and the state keeps the end of the
 * last block allocated, the entry of the block pos is inside (it may still
 * change) and the footer's time stamp and unique id.  Blocks are allocated
 * in guest order, one after the other, so resume can check the entries it
 * reads back exactly: every block it keeps lies between the BAT and the
 * recorded end, in increasing order, and the last ends there.  Entries of
 * blocks from pos on are not read at all (they never reach the file
 * before a later checkpoint, which the crash interrupted).  What was
 * written after the checkpoint is either in the block holding pos, past
 * pos, or in blocks past the recorded end, so the file is cut at the
 * first of these.  Fixed: the data is at its guest offset, so resume cuts
 * the file at pos, as raw does.  Neither writes the footer before finish:
 * an interrupted file still does not look like a VHD.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../lib/byteorder.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"
#include "vhd.h"

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

/* ---- writing ------------------------------------------------------------ */

const struct create_option vhd_create_opts[] = {
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

int
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
        /* Readers find a fixed VHD's only footer at the very end, so on a
         * device the image must fill the device exactly. */
        if (img->file->is_block &&
            img->file->size != size + VHD_FOOTER_SIZE) {
            vmc_error ("vhd: a fixed VHD must fill its device exactly: the "
                       "device holds %" PRIu64 " bytes, the image needs %"
                       PRIu64, img->file->size, size + VHD_FOOTER_SIZE);
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

int
vhd_pwrite (struct image *img, const void *buf, size_t count, uint64_t offset)
{
    struct vhd *s = img->priv;
    const unsigned char *p = buf;
    uint64_t b, in, n, host, pos;

    if (!s->w_dynamic) {
        return bdev_pwrite (img->file, buf, count, offset);
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
            if (bdev_pwrite (img->file, s->bitmap, s->bitmap_size, pos) == -1) {
                return -1;
            }
            s->bat[b] = (uint32_t) (pos / VHD_SECTOR);
            s->file_end = pos + s->bitmap_size + s->block_size;
            s->next_free = align_block (s, s->file_end);
        }
        host = (uint64_t) s->bat[b] * VHD_SECTOR + s->bitmap_size + in;
        if (bdev_pwrite (img->file, p, n, host) == -1) {
            return -1;
        }
        p += n;
        offset += n;
        count -= n;
    }
    return 0;
}

/* BAT entries in one sector. */
#define BAT_PER_SECTOR (VHD_SECTOR / 4)

/* Write BAT entries [FROM, TO) to the file; both are multiples of a
 * sector's worth of entries, or TO is the padded end of the table. */
static int
write_bat_range (struct image *img, uint64_t from, uint64_t to)
{
    struct vhd *s = img->priv;
    unsigned char buf[65536];
    uint64_t i = from;
    size_t n, k;

    while (i < to) {
        n = (size_t) MIN ((uint64_t) sizeof buf / 4, to - i) * 4;
        for (k = 0; k < n; k += 4, i++) {
            put_be32 (buf + k, i < s->nblocks ? s->bat[i] : VHD_BAT_UNUSED);
        }
        if (bdev_pwrite (img->file, buf, n,
                         s->bat_offset + (i - n / 4) * 4) == -1) {
            return -1;
        }
    }
    return 0;
}

static int
write_bat (struct image *img)
{
    struct vhd *s = img->priv;

    return write_bat_range (img, 0, ROUND_UP (s->nblocks,
                                              (uint64_t) BAT_PER_SECTOR));
}

int
vhd_finish (struct image *img)
{
    struct vhd *s = img->priv;
    unsigned char footer[VHD_FOOTER_SIZE], h[VHD_HEADER_SIZE];
    uint64_t end;

    put_footer (img, footer, s->w_dynamic);
    if (!s->w_dynamic) {
        if (bdev_pwrite (img->file, footer, sizeof footer, img->size) == -1) {
            return -1;
        }
        end = img->size + VHD_FOOTER_SIZE;
    }
    else {
        if (bdev_pwrite (img->file, footer, sizeof footer,
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
    return bdev_truncate (img->file, end);
}

/* ---- checkpoint and resume ---------------------------------------------- */

/*
 * The state (little-endian):
 *
 *     0  tag[4]           "vhd1"
 *     4  flags            bit 0: dynamic
 *     8  block size       dynamic; 0 for fixed
 *    12  time stamp       the footer's
 *    16  unique id[16]    the footer's
 *    32  file end         dynamic: end of the last block allocated
 *    40  partial entry    dynamic: BAT entry of the block holding the
 *                         checkpoint position, ~0 when none or unused
 */
#define VHD_STATE_SIZE 44

int
vhd_checkpoint (struct image *img, void *state, size_t *len)
{
    struct vhd *s = img->priv;
    unsigned char *st = state;
    uint64_t pos = img->write_pos, full = 0, used, to;
    uint32_t part = VHD_BAT_UNUSED;

    if (s->w_dynamic) {
        /* Entries of the blocks below pos; the last may be partial. */
        full = pos >> s->block_shift;
        used = DIV_ROUND_UP (pos, (uint64_t) s->block_size);
        if (used > full) {
            part = s->bat[full];
        }
        to = MIN (ROUND_UP (used, (uint64_t) BAT_PER_SECTOR),
                  ROUND_UP (s->nblocks, (uint64_t) BAT_PER_SECTOR));
        if (write_bat_range (img, ROUND_DOWN (s->ck_synced,
                                              (uint64_t) BAT_PER_SECTOR),
                             to) == -1) {
            return -1;
        }
        /* Entries of whole blocks below pos never change again. */
        s->ck_synced = full;
    }
    memset (st, 0, VHD_STATE_SIZE);
    memcpy (st, "vhd1", 4);
    put_le32 (st + 4, s->w_dynamic ? 1 : 0);
    put_le32 (st + 8, s->w_dynamic ? s->block_size : 0);
    put_le32 (st + 12, s->footer.timestamp);
    memcpy (st + 16, s->footer.uuid, 16);
    put_le64 (st + 32, s->w_dynamic ? s->file_end : 0);
    put_le32 (st + 40, part);
    *len = VHD_STATE_SIZE;
    return 0;
}

/* Check that the block at sector entry E lies at or after *PREV_END and
 * inside [.., END), and move *PREV_END past it. */
static int
resume_block (const struct vhd *s, uint64_t b, uint32_t e, uint64_t end,
              uint64_t *prev_end)
{
    uint64_t host = (uint64_t) e * VHD_SECTOR;

    if (host < *prev_end || host > end ||
        end - host < (uint64_t) s->bitmap_size + s->block_size) {
        vmc_error ("vhd: BAT entry %" PRIu64 " (sector 0x%" PRIx32 ") is "
                   "not where the checkpoint's blocks are", b, e);
        return -1;
    }
    *prev_end = host + s->bitmap_size + s->block_size;
    return 0;
}

int
vhd_resume (struct image *img, const struct create_params *p,
            const void *state, size_t len)
{
    struct vhd *s = img->priv;
    const unsigned char *st = state;
    unsigned char buf[65536];
    uint64_t pos = img->write_pos, full, used, b, end, prev_end, cut;
    uint32_t part, e;
    size_t n, k;

    if (len != VHD_STATE_SIZE || memcmp (st, "vhd1", 4) != 0) {
        vmc_error ("vhd: the checkpoint state is not a VHD writer's");
        return -1;
    }
    if (vhd_create (img, p) == -1) {
        return -1;
    }
    if (get_le32 (st + 4) != (s->w_dynamic ? 1u : 0u) ||
        get_le32 (st + 8) != (s->w_dynamic ? s->block_size : 0)) {
        vmc_error ("vhd: the checkpoint was taken with other options");
        return -1;
    }
    s->footer.timestamp = get_le32 (st + 12);
    memcpy (s->footer.uuid, st + 16, 16);
    if (pos > img->size) {
        vmc_error ("vhd: checkpoint position %" PRIu64 " is past the end",
                   pos);
        return -1;
    }
    if (!s->w_dynamic) {
        return bdev_truncate (img->file, pos);
    }

    /* Where the first block goes (create set it), and the recorded end. */
    prev_end = s->file_end;
    end = get_le64 (st + 32);
    part = get_le32 (st + 40);
    if (end < prev_end || end / VHD_SECTOR >= VHD_BAT_UNUSED) {
        vmc_error ("vhd: checkpoint file end %" PRIu64 " is out of range",
                   end);
        return -1;
    }
    full = pos >> s->block_shift;
    used = DIV_ROUND_UP (pos, (uint64_t) s->block_size);
    for (b = 0; b < full; b += n / 4) {
        n = (size_t) MIN ((uint64_t) sizeof buf / 4, full - b) * 4;
        if (bdev_pread (img->file, buf, n, s->bat_offset + b * 4) == -1) {
            return -1;
        }
        for (k = 0; k < n; k += 4) {
            e = get_be32 (buf + k);
            if (e != VHD_BAT_UNUSED &&
                resume_block (s, b + k / 4, e, end, &prev_end) == -1) {
                return -1;
            }
            s->bat[b + k / 4] = e;
        }
    }
    cut = end;
    if (part != VHD_BAT_UNUSED) {
        if (used == full) {
            vmc_error ("vhd: the checkpoint state names a partial block at "
                       "a block boundary");
            return -1;
        }
        if (resume_block (s, full, part, end, &prev_end) == -1) {
            return -1;
        }
        s->bat[full] = part;
        /* Only the part of this block below pos was written before the
         * checkpoint. */
        cut = (uint64_t) part * VHD_SECTOR + s->bitmap_size +
            (pos & (s->block_size - 1));
    }
    if (prev_end != end) {
        vmc_error ("vhd: the checkpoint's blocks end at %" PRIu64 ", not at "
                   "the recorded %" PRIu64, prev_end, end);
        return -1;
    }
    s->file_end = end;
    s->next_free = align_block (s, end);
    s->ck_synced = full;
    return bdev_truncate (img->file, cut);
}
