/* SPDX-License-Identifier: MIT */
/*
 * vhdx: the writer (dynamic by default, fixed on request), for Hyper-V.
 *
 * Layout of a new file (everything 1 MiB aligned, as [MS-VHDX] wants):
 *
 *   0        file type identifier, creator "vmconvert <version>"
 *   64 KiB   header 1 (sequence number 1), 128 KiB header 2 (2)
 *   192 KiB  region table 1, 256 KiB region table 2 (identical; both
 *            regions marked required, as Hyper-V does)
 *   1 MiB    log, log_size bytes, empty (LogGuid zero): left as a hole
 *   +        metadata region, 1 MiB: the table, then at 64 KiB the items
 *            File Parameters (IsRequired), Virtual Disk Size, Virtual Disk
 *            ID (page 83, a fresh GUID), Logical and Physical Sector Size
 *            (IsRequired + IsVirtualDisk)
 *   +        BAT region, the table rounded up to 1 MiB
 *   +        payload blocks
 *
 * Dynamic: a block is allocated (appended at the end of the file) when the
 * first data for it arrives; since writes come in increasing order, blocks
 * are laid out in guest order.  The parts of an allocated block that are
 * never written are holes in the host file, so they read as zeros and take
 * no space on the host.  Blocks never written keep the state NOT_PRESENT,
 * as Hyper-V writes them (block_state_zero=on gives ZERO instead, as qemu
 * does by default).  Fixed: every block is FULLY_PRESENT at data_off + i *
 * block_size and LeaveBlockAllocated is set; the file is sized but sparse.
 *
 * The BAT is streamed: it is written in windows of VHDX_BAT_WBUF entries
 * (64 KiB) as the writes move past them, and the rest at finish, so memory
 * does not depend on the disk size (a 64 TiB disk has a 16 MiB BAT with
 * 32 MiB blocks, 512 MiB with 1 MiB blocks).  The identifier and the
 * headers are written last, at finish: an interrupted conversion leaves a
 * file that does not even probe as VHDX.
 *
 * Checkpoint and resume (the network receiver).  Dynamic: a checkpoint at
 * guest position pos makes the BAT in the file right for every block below
 * pos: the windows before the one holding pos are written as usual, and of
 * that window only the entries changed since the previous checkpoint.  The
 * state keeps the end of the allocated blocks, where the block holding pos
 * is (its entry may still change) and the three GUIDs.  Blocks are
 * allocated in guest order, one right after the other, so resume checks
 * the entries it reads back exactly (contiguous, ending where the state
 * says).  What was written after the checkpoint lies in the block holding
 * pos, past pos, or in blocks past the recorded end, so the file is cut at
 * the first of these; and since those writes may also have flushed BAT
 * windows with entries for them, the BAT from pos's entry on is zeroed in
 * the file (a hole), which is what the streamed BAT expects of the part it
 * has not written.  Fixed: the data is at data offset + guest offset and
 * the BAT is written only at finish, so the file is cut at the position.
 * Neither writes the identifier or the headers: an interrupted file still
 * does not probe as VHDX.
 *
 * Defaults: block_size 32 MiB (Hyper-V's default for dynamic disks; qemu
 * picks 8-32 MiB by disk size), log_size 1 MiB, logical sector 512,
 * physical sector 4096 (Hyper-V's "512e" default).  The virtual size is
 * rounded up to a multiple of the logical sector size (never down: no data
 * is lost); a warning says so.  Limits: 64 TiB virtual size (the spec's).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../lib/byteorder.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/options.h"
#include "../lib/rounding.h"
#include "vhdx.h"

#ifndef VMC_VERSION
#define VMC_VERSION "?"
#endif

#define VHDX_BAT_WBUF 8192u             /* entries per BAT write: 64 KiB */
#define VHDX_DEFAULT_BLOCK (32 * VHDX_MIB)
#define VHDX_DEFAULT_LOG VHDX_MIB
#define VHDX_MAX_LOG (256 * VHDX_MIB)

struct vhdx_writer {
    bool fixed;
    uint64_t unalloc_state;     /* BAT value of a block never written */
    uint32_t block_size;
    unsigned block_bits;
    uint32_t logical_sector;
    uint32_t physical_sector;
    uint64_t nblocks, chunk_ratio, bat_entries;
    uint64_t log_off, log_len;
    uint64_t md_off, bat_off, bat_len, data_off;

    uint64_t file_end;          /* dynamic: end of the allocated blocks */
    uint64_t cur_blk;           /* the last allocated block (dynamic) */
    uint64_t cur_off;           /* and where it is */
    bool have_cur;

    uint64_t *batbuf;           /* entries [bat_win, bat_win + WBUF) */
    uint64_t bat_win;
    uint64_t ck_synced;         /* entries below are right in the file
                                 * (checkpoints) */

    unsigned char file_write_guid[16];
    unsigned char data_write_guid[16];
    unsigned char disk_id[16];
};

const struct create_option vhdx_create_opts[] = {
    { "subformat", "dynamic (default) or fixed" },
    { "block_size", "block size, a power of two from 1M to 256M "
      "(default 32M, as Hyper-V; 0 means the default)" },
    { "log_size", "log size, a multiple of 1M (default 1M)" },
    { "block_state_zero", "on: blocks never written are marked ZERO, "
      "off (default): NOT_PRESENT, as Hyper-V" },
    { "logical_sector_size", "512 (default) or 4096" },
    { "physical_sector_size", "512 or 4096 (default)" },
    { NULL, NULL },
};

/* A random (version 4) GUID, in on-disk order. */
static int
new_guid (unsigned char g[16])
{
    size_t got = 0;
    ssize_t r;

    while (got < 16) {
        r = getrandom (g + got, 16 - got, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            vmc_perror ("vhdx: getrandom");
            return -1;
        }
        got += (size_t) r;
    }
    g[7] = (unsigned char) ((g[7] & 0x0f) | 0x40);     /* Data3: version 4 */
    g[8] = (unsigned char) ((g[8] & 0x3f) | 0x80);     /* variant 10 */
    return 0;
}

/* The BAT value for entry J when nothing was written for it. */
static uint64_t
bat_default (const struct vhdx_writer *w, uint64_t j)
{
    uint64_t blk;

    if (j % (w->chunk_ratio + 1) == w->chunk_ratio) {
        return 0;                       /* sector bitmap: NOT_PRESENT */
    }
    if (w->fixed) {
        blk = j - j / (w->chunk_ratio + 1);
        return (w->data_off + (blk << w->block_bits)) |
            VHDX_PAYLOAD_FULLY_PRESENT;
    }
    return w->unalloc_state;
}

static void
bat_fill_window (struct vhdx_writer *w)
{
    uint64_t k, n = MIN ((uint64_t) VHDX_BAT_WBUF, w->bat_entries - w->bat_win);

    for (k = 0; k < n; k++) {
        w->batbuf[k] = bat_default (w, w->bat_win + k);
    }
}

/* Write the current window (skipping all-zero windows: the file has holes
 * there) and start the next. */
static int
bat_flush_window (struct image *img)
{
    struct vhdx *s = img->priv;
    struct vhdx_writer *w = s->w;
    unsigned char *raw = (unsigned char *) w->batbuf;
    uint64_t k, n = MIN ((uint64_t) VHDX_BAT_WBUF, w->bat_entries - w->bat_win);
    bool nonzero = false;

    for (k = 0; k < n; k++) {
        nonzero |= w->batbuf[k] != 0;
        put_le64 (raw + k * 8, w->batbuf[k]);
    }
    if (nonzero && bdev_pwrite (img->file, raw, n * 8,
                                w->bat_off + w->bat_win * 8) == -1) {
        return -1;
    }
    w->bat_win += n;
    if (w->bat_win < w->bat_entries) {
        bat_fill_window (w);
    }
    return 0;
}

/* Record payload block BLK at file offset OFF. */
static int
bat_set_block (struct image *img, uint64_t blk, uint64_t off)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    uint64_t j = blk + blk / w->chunk_ratio;

    while (j >= w->bat_win + VHDX_BAT_WBUF) {
        if (bat_flush_window (img) == -1) {
            return -1;
        }
    }
    w->batbuf[j - w->bat_win] = off | VHDX_PAYLOAD_FULLY_PRESENT;
    return 0;
}

static int
get_choice (const struct options *opts, const char *key, uint64_t def,
            uint64_t *out)
{
    if (options_get_size (opts, key, def, out) == -1) {
        return -1;
    }
    if (*out != 512 && *out != 4096) {
        vmc_error ("vhdx: %s must be 512 or 4096", key);
        return -1;
    }
    return 0;
}

static int
write_region_tables (struct image *img)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    unsigned char *rt;
    int r = -1;

    rt = calloc (1, VHDX_RT_SIZE);
    if (rt == NULL) {
        vmc_perror ("vhdx: calloc");
        return -1;
    }
    memcpy (rt, "regi", 4);
    put_le32 (rt + 8, 2);
    memcpy (rt + 16, vhdx_guid_bat, 16);
    put_le64 (rt + 32, w->bat_off);
    put_le32 (rt + 40, (uint32_t) w->bat_len);
    put_le32 (rt + 44, 1);                              /* required */
    memcpy (rt + 48, vhdx_guid_metadata, 16);
    put_le64 (rt + 64, w->md_off);
    put_le32 (rt + 72, VHDX_MIB);
    put_le32 (rt + 76, 1);
    put_le32 (rt + 4, vhdx_checksum (rt, VHDX_RT_SIZE, 4));
    if (bdev_pwrite (img->file, rt, VHDX_RT_SIZE, VHDX_RT1_OFF) == -1 ||
        bdev_pwrite (img->file, rt, VHDX_RT_SIZE, VHDX_RT2_OFF) == -1) {
        goto out;
    }
    r = 0;
out:
    free (rt);
    return r;
}

static void
md_entry (unsigned char *table, unsigned i, const unsigned char *guid,
          uint32_t off, uint32_t len, uint32_t flags)
{
    unsigned char *e = table + 32 + i * VHDX_MD_ENTRY_SIZE;

    memcpy (e, guid, 16);
    put_le32 (e + 16, off);
    put_le32 (e + 20, len);
    put_le32 (e + 24, flags);
}

static int
write_metadata (struct image *img)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    const uint32_t vd = VHDX_MD_IS_VIRTUAL_DISK | VHDX_MD_IS_REQUIRED;
    unsigned char *md, *item;
    uint32_t at = VHDX_MD_TABLE_SIZE;
    int r = -1;

    md = calloc (1, VHDX_MD_TABLE_SIZE + 4096);
    if (md == NULL) {
        vmc_perror ("vhdx: calloc");
        return -1;
    }
    memcpy (md, "metadata", 8);
    put_le16 (md + 10, 5);
    item = md + at;
    put_le32 (item, w->block_size);
    put_le32 (item + 4, w->fixed ? VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED : 0);
    md_entry (md, 0, vhdx_guid_file_params, at, 8, VHDX_MD_IS_REQUIRED);
    put_le64 (item + 8, img->size);
    md_entry (md, 1, vhdx_guid_disk_size, at + 8, 8, vd);
    memcpy (item + 16, w->disk_id, 16);
    md_entry (md, 2, vhdx_guid_disk_id, at + 16, 16, vd);
    put_le32 (item + 32, w->logical_sector);
    md_entry (md, 3, vhdx_guid_logical_sector, at + 32, 4, vd);
    put_le32 (item + 36, w->physical_sector);
    md_entry (md, 4, vhdx_guid_physical_sector, at + 36, 4, vd);
    if (bdev_pwrite (img->file, md, VHDX_MD_TABLE_SIZE + 4096,
                     w->md_off) == -1) {
        goto out;
    }
    r = 0;
out:
    free (md);
    return r;
}

/* Set up the writer for P (the layout, the first BAT window), without
 * writing anything; WARN: say when the size is rounded up. */
static int
writer_init (struct image *img, const struct create_params *p, bool warn)
{
    struct vhdx *s = img->priv;
    const struct options *o = p->opts;
    struct vhdx_writer *w;
    const char *sub;
    uint64_t bs, log_size, lss, pss, size, bat_bytes;
    bool zero_state;

    if (p->compress) {
        vmc_error ("vhdx: compression is not supported");
        return -1;
    }
    if (img->file->is_block) {
        vmc_error ("vhdx: writing to a block device is not supported");
        return -1;
    }
    sub = options_get (o, "subformat");
    if (sub != NULL && strcmp (sub, "dynamic") != 0 &&
        strcmp (sub, "fixed") != 0) {
        vmc_error ("vhdx: subformat \"%s\" is not dynamic or fixed", sub);
        return -1;
    }
    if (options_get_size (o, "block_size", VHDX_DEFAULT_BLOCK, &bs) == -1 ||
        options_get_size (o, "log_size", VHDX_DEFAULT_LOG, &log_size) == -1 ||
        options_get_bool (o, "block_state_zero", false, &zero_state) == -1 ||
        get_choice (o, "logical_sector_size", 512, &lss) == -1 ||
        get_choice (o, "physical_sector_size", 4096, &pss) == -1) {
        return -1;
    }
    if (bs == 0) {
        bs = VHDX_DEFAULT_BLOCK;
    }
    if (!is_power_of_2 (bs) || bs < VHDX_BLOCK_MIN || bs > VHDX_BLOCK_MAX) {
        vmc_error ("vhdx: block_size %" PRIu64 " is not a power of two "
                   "from 1M to 256M", bs);
        return -1;
    }
    if (log_size == 0 || log_size % VHDX_MIB != 0 ||
        log_size > VHDX_MAX_LOG) {
        vmc_error ("vhdx: log_size %" PRIu64 " is not a multiple of 1M "
                   "from 1M to 256M", log_size);
        return -1;
    }
    if (p->size == 0 || p->size > VHDX_MAX_VIRTUAL_SIZE) {
        vmc_error ("vhdx: virtual size %" PRIu64 " is not between 1 byte "
                   "and 64 TiB", p->size);
        return -1;
    }
    size = ROUND_UP (p->size, lss);
    if (size != p->size && warn) {
        vmc_warn ("vhdx: virtual size rounded up from %" PRIu64 " to %"
                  PRIu64 " bytes, a multiple of the %" PRIu64 "-byte "
                  "logical sector", p->size, size, lss);
    }

    w = calloc (1, sizeof *w);
    if (w == NULL) {
        vmc_perror ("vhdx: calloc");
        return -1;
    }
    s->w = w;
    w->fixed = sub != NULL && strcmp (sub, "fixed") == 0;
    w->unalloc_state = zero_state ? VHDX_PAYLOAD_ZERO
        : VHDX_PAYLOAD_NOT_PRESENT;
    w->block_size = (uint32_t) bs;
    w->block_bits = log2_u64 (bs);
    w->logical_sector = (uint32_t) lss;
    w->physical_sector = (uint32_t) pss;
    w->chunk_ratio = ((uint64_t) 1 << 23) * lss / bs;
    w->nblocks = DIV_ROUND_UP (size, bs);
    w->bat_entries = w->nblocks + (w->nblocks - 1) / w->chunk_ratio;
    bat_bytes = w->bat_entries * 8;
    w->log_off = VHDX_MIB;
    w->log_len = log_size;
    w->md_off = w->log_off + w->log_len;
    w->bat_off = w->md_off + VHDX_MIB;
    w->bat_len = ROUND_UP (bat_bytes, (uint64_t) VHDX_MIB);
    w->data_off = w->bat_off + w->bat_len;
    w->file_end = w->data_off;
    w->batbuf = calloc (VHDX_BAT_WBUF, sizeof *w->batbuf);
    if (w->batbuf == NULL) {
        vmc_perror ("vhdx: calloc");
        return -1;
    }
    bat_fill_window (w);
    img->size = size;
    /* Any byte range can be written (blocks are byte addressable), and a
     * size rounded up to the logical sector means the source's last write
     * ends before img->size: an alignment above 1 would make that last,
     * short write break the sequential contract. */
    img->write_align = 1;
    img->cluster_size = bs;
    return 0;
}

int
vhdx_create (struct image *img, const struct create_params *p)
{
    struct vhdx_writer *w;

    if (writer_init (img, p, true) == -1) {
        return -1;
    }
    w = ((struct vhdx *) img->priv)->w;
    if (new_guid (w->file_write_guid) == -1 ||
        new_guid (w->data_write_guid) == -1 || new_guid (w->disk_id) == -1) {
        return -1;
    }
    if (write_region_tables (img) == -1 || write_metadata (img) == -1) {
        return -1;
    }
    return 0;
}

/* Where guest block BLK lives, allocating it if this is its first data. */
static int
block_offset (struct image *img, uint64_t blk, uint64_t *off)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;

    if (w->fixed) {
        *off = w->data_off + (blk << w->block_bits);
        return 0;
    }
    if (w->have_cur && blk == w->cur_blk) {
        *off = w->cur_off;
        return 0;
    }
    /* Writes only move forward, so a new block is always a later one. */
    w->have_cur = true;
    w->cur_blk = blk;
    w->cur_off = w->file_end;
    w->file_end += w->block_size;
    *off = w->cur_off;
    return bat_set_block (img, blk, w->cur_off);
}

int
vhdx_pwrite (struct image *img, const void *buf, size_t count,
             uint64_t offset)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    const unsigned char *p = buf;
    uint64_t blk, in, n, off, noff;

    while (count > 0) {
        blk = offset >> w->block_bits;
        in = offset & (w->block_size - 1);
        n = MIN ((uint64_t) count, w->block_size - in);
        if (block_offset (img, blk, &off) == -1) {
            return -1;
        }
        off += in;
        /* Blocks allocated one after the other are contiguous in the
         * file: write across them at once. */
        while (n < count) {
            if (block_offset (img, blk + 1, &noff) == -1) {
                return -1;
            }
            if (noff != off + n) {
                break;
            }
            blk++;
            n += MIN ((uint64_t) count - n, (uint64_t) w->block_size);
        }
        if (bdev_pwrite (img->file, p, n, off) == -1) {
            return -1;
        }
        p += n;
        offset += n;
        count -= n;
    }
    return 0;
}

static int
write_header (struct image *img, uint64_t off, uint64_t seq)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    unsigned char h[VHDX_HEADER_SIZE];

    memset (h, 0, sizeof h);
    memcpy (h, "head", 4);
    put_le64 (h + 8, seq);
    memcpy (h + 16, w->file_write_guid, 16);
    memcpy (h + 32, w->data_write_guid, 16);
    /* LogGuid (48..63) stays zero: the log is empty. */
    put_le16 (h + 64, 0);
    put_le16 (h + 66, 1);
    put_le32 (h + 68, (uint32_t) w->log_len);
    put_le64 (h + 72, w->log_off);
    put_le32 (h + 4, vhdx_checksum (h, sizeof h, 4));
    return bdev_pwrite (img->file, h, sizeof h, off);
}

int
vhdx_finish (struct image *img)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    unsigned char id[VHDX_CREATOR_OFF + VHDX_CREATOR_SIZE];
    const char *creator = "vmconvert " VMC_VERSION;
    uint64_t end;
    size_t i;

    while (w->bat_win < w->bat_entries) {
        if (bat_flush_window (img) == -1) {
            return -1;
        }
    }
    end = w->fixed ? w->data_off + (w->nblocks << w->block_bits)
        : w->file_end;
    if (bdev_truncate (img->file, end) == -1) {
        return -1;
    }
    memset (id, 0, sizeof id);
    memcpy (id, "vhdxfile", 8);
    for (i = 0; creator[i] != '\0' && i < VHDX_CREATOR_SIZE / 2 - 1; i++) {
        put_le16 (id + VHDX_CREATOR_OFF + 2 * i, (uint16_t) creator[i]);
    }
    if (bdev_pwrite (img->file, id, sizeof id, 0) == -1 ||
        write_header (img, VHDX_HEADER1_OFF, 1) == -1 ||
        write_header (img, VHDX_HEADER2_OFF, 2) == -1) {
        return -1;
    }
    return 0;
}

/* ---- checkpoint and resume ---------------------------------------------- */

/*
 * The state (little-endian):
 *
 *     0  tag[4]               "vhx1"
 *     4  flags                bit 0: fixed
 *     8  block size
 *    12  reserved             0
 *    16  file end             dynamic: end of the allocated blocks
 *    24  partial block        dynamic: file offset of the block holding
 *                             the checkpoint position, 0 when none or
 *                             not allocated
 *    32  FileWriteGuid[16]
 *    48  DataWriteGuid[16]
 *    64  disk id[16]
 */
#define VHDX_STATE_SIZE 80

/* The BAT entry of payload block BLK. */
static uint64_t
bat_index (const struct vhdx_writer *w, uint64_t blk)
{
    return blk + blk / w->chunk_ratio;
}

/* Write the current window's entries [FROM, TO) to the file. */
static int
bat_write_entries (struct image *img, uint64_t from, uint64_t to)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    unsigned char buf[4096];
    uint64_t j = from, n, k;

    while (j < to) {
        n = MIN ((uint64_t) sizeof buf / 8, to - j);
        for (k = 0; k < n; k++) {
            put_le64 (buf + k * 8, w->batbuf[j + k - w->bat_win]);
        }
        if (bdev_pwrite (img->file, buf, n * 8, w->bat_off + j * 8) == -1) {
            return -1;
        }
        j += n;
    }
    return 0;
}

int
vhdx_checkpoint (struct image *img, void *state, size_t *len)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    unsigned char *st = state;
    uint64_t pos = img->write_pos, full, used, end, part = 0;

    full = pos >> w->block_bits;
    used = DIV_ROUND_UP (pos, (uint64_t) w->block_size);
    if (!w->fixed && used > 0) {
        /* Entries up to the last block with data below pos. */
        end = bat_index (w, used - 1) + 1;
        while (end - 1 >= w->bat_win + VHDX_BAT_WBUF) {
            if (bat_flush_window (img) == -1) {
                return -1;
            }
        }
        if (bat_write_entries (img, MAX (w->ck_synced, w->bat_win),
                               end) == -1) {
            return -1;
        }
        /* Entries of whole blocks below pos never change again. */
        w->ck_synced = bat_index (w, full);
        if (used > full && w->have_cur && w->cur_blk == full) {
            part = w->cur_off;
        }
    }
    memset (st, 0, VHDX_STATE_SIZE);
    memcpy (st, "vhx1", 4);
    put_le32 (st + 4, w->fixed ? 1 : 0);
    put_le32 (st + 8, w->block_size);
    put_le64 (st + 16, w->fixed ? 0 : w->file_end);
    put_le64 (st + 24, part);
    memcpy (st + 32, w->file_write_guid, 16);
    memcpy (st + 48, w->data_write_guid, 16);
    memcpy (st + 64, w->disk_id, 16);
    *len = VHDX_STATE_SIZE;
    return 0;
}

/* Zeros over [OFF, OFF+LEN) of the file: a hole, or written zeros where
 * the file system cannot punch one. */
static int
zero_range (struct image *img, uint64_t off, uint64_t len)
{
    unsigned char *z;
    uint64_t n;
    int r = -1;

    if (len == 0 || bdev_zero (img->file, off, len) == 0) {
        return 0;
    }
    z = calloc (1, 65536);
    if (z == NULL) {
        vmc_perror ("vhdx: calloc");
        return -1;
    }
    for (; len > 0; off += n, len -= n) {
        n = MIN (len, (uint64_t) 65536);
        if (bdev_pwrite (img->file, z, (size_t) n, off) == -1) {
            goto out;
        }
    }
    r = 0;
out:
    free (z);
    return r;
}

/* Load the file's entries [bat_win, END) into the window (which holds the
 * defaults), checking them against the layout: sector bitmaps not
 * present, payload blocks either never written or contiguous, the last
 * one ending at LIMIT. */
static int
resume_window (struct image *img, uint64_t end, uint64_t limit)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    unsigned char buf[4096];
    uint64_t j = w->bat_win, n, k, v, off, prev_end = 0;

    while (j < end) {
        n = MIN ((uint64_t) sizeof buf / 8, end - j);
        if (bdev_pread (img->file, buf, n * 8, w->bat_off + j * 8) == -1) {
            return -1;
        }
        for (k = 0; k < n; k++, j++) {
            v = get_le64 (buf + k * 8);
            if (v == w->batbuf[j - w->bat_win]) {
                continue;               /* not written */
            }
            off = v & VHDX_BAT_OFFSET_MASK;
            if (j % (w->chunk_ratio + 1) == w->chunk_ratio ||
                (v & VHDX_BAT_STATE_MASK) != VHDX_PAYLOAD_FULLY_PRESENT ||
                (v & VHDX_BAT_RESERVED_MASK) != 0 || off < w->data_off ||
                (prev_end != 0 && off != prev_end) || off > limit ||
                limit - off < w->block_size) {
                vmc_error ("vhdx: BAT entry %" PRIu64 " (0x%" PRIx64 ") is "
                           "not where the checkpoint's blocks are", j, v);
                return -1;
            }
            w->batbuf[j - w->bat_win] = v;
            prev_end = off + w->block_size;
        }
    }
    if (prev_end != 0 && prev_end != limit) {
        vmc_error ("vhdx: the checkpoint's blocks end at %" PRIu64 ", not at "
                   "%" PRIu64, prev_end, limit);
        return -1;
    }
    return 0;
}

/* Resume a dynamic image at POS from the state ST: reload the BAT window
 * holding pos's entry, cut the file, and zero the BAT from pos's entry. */
static int
resume_dynamic (struct image *img, const unsigned char *st, uint64_t pos)
{
    struct vhdx_writer *w = ((struct vhdx *) img->priv)->w;
    uint64_t full, used, jfull, end, part, cut;

    end = get_le64 (st + 16);
    part = get_le64 (st + 24);
    full = pos >> w->block_bits;
    used = DIV_ROUND_UP (pos, (uint64_t) w->block_size);
    if (end < w->data_off || end > VHDX_MAX_FILE_SIZE ||
        (end - w->data_off) % w->block_size != 0 ||
        (part != 0 && (used == full || part != end - w->block_size))) {
        vmc_error ("vhdx: the checkpoint state's file end (%" PRIu64 ") or "
                   "partial block (%" PRIu64 ") is not valid", end, part);
        return -1;
    }
    /* The window holding the first entry not known to be in the file. */
    jfull = bat_index (w, full);
    w->bat_win = ROUND_DOWN (MIN (jfull, w->bat_entries - 1),
                             (uint64_t) VHDX_BAT_WBUF);
    bat_fill_window (w);
    if (resume_window (img, MIN (jfull, w->bat_entries),
                       part != 0 ? part : end) == -1) {
        return -1;
    }
    w->file_end = end;
    w->ck_synced = jfull;
    cut = end;
    if (part != 0) {
        w->batbuf[jfull - w->bat_win] = part | VHDX_PAYLOAD_FULLY_PRESENT;
        w->have_cur = true;
        w->cur_blk = full;
        w->cur_off = part;
        /* Only the part of this block below pos was written before the
         * checkpoint. */
        cut = part + (pos & (w->block_size - 1));
    }
    if (bdev_truncate (img->file, cut) == -1) {
        return -1;
    }
    /* Entries from pos's block on may hold blocks written after the
     * checkpoint (windows flushed since): the file must read as zeros
     * there, as for any window not written yet. */
    if (jfull < w->bat_entries) {
        return zero_range (img, w->bat_off + jfull * 8,
                           (w->bat_entries - jfull) * 8);
    }
    return 0;
}

int
vhdx_resume (struct image *img, const struct create_params *p,
             const void *state, size_t len)
{
    struct vhdx_writer *w;
    const unsigned char *st = state;
    uint64_t pos = img->write_pos;

    if (len != VHDX_STATE_SIZE || memcmp (st, "vhx1", 4) != 0) {
        vmc_error ("vhdx: the checkpoint state is not a VHDX writer's");
        return -1;
    }
    if (writer_init (img, p, false) == -1) {
        return -1;
    }
    w = ((struct vhdx *) img->priv)->w;
    if (get_le32 (st + 4) != (w->fixed ? 1u : 0u) ||
        get_le32 (st + 8) != w->block_size) {
        vmc_error ("vhdx: the checkpoint was taken with other options");
        return -1;
    }
    memcpy (w->file_write_guid, st + 32, 16);
    memcpy (w->data_write_guid, st + 48, 16);
    memcpy (w->disk_id, st + 64, 16);
    if (pos > img->size) {
        vmc_error ("vhdx: checkpoint position %" PRIu64 " is past the end",
                   pos);
        return -1;
    }
    if (w->fixed) {
        /* The data is at its guest offset past data_off. */
        if (bdev_truncate (img->file, w->data_off + pos) == -1) {
            return -1;
        }
    }
    else if (resume_dynamic (img, st, pos) == -1) {
        return -1;
    }
    /* Create wrote these before the first checkpoint; writing them again
     * makes resume rely on nothing in the file but the BAT entries it
     * checks. */
    if (write_region_tables (img) == -1 || write_metadata (img) == -1) {
        return -1;
    }
    return 0;
}

void
vhdx_writer_free (struct vhdx *s)
{
    if (s->w != NULL) {
        free (s->w->batbuf);
        free (s->w);
        s->w = NULL;
    }
}
