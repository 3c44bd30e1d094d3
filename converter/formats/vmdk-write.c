/* SPDX-License-Identifier: MIT */
/*
 * vmdk: the writers, monolithicSparse and streamOptimized.
 *
 * Options (qemu-img's names): subformat=monolithicSparse (default) |
 * streamOptimized; adapter_type=ide (default) | lsilogic | buslogic |
 * legacyESX; hwversion (default 4); compat6 (hwversion 6); toolsversion
 * (default 2147483647); zeroed_grain (monolithicSparse: version 2 header
 * with the zeroed-grain flag).  -c selects streamOptimized when no
 * subformat is given; -c with subformat=monolithicSparse is refused (that
 * subformat has no compressed grains).
 *
 * Both write 64 KiB grains (128 sectors), 512 GTEs per grain table, and
 * set img->write_align to the grain, so the copy engine hands us whole
 * grains and skips all-zero ones.  Grains never written stay unallocated
 * (GTE 0).
 *
 * monolithicSparse, laid out as qemu-img does:
 *
 *   0        header (version 1, flags: newline test + redundant GD)
 *   1..20    embedded descriptor
 *   21       redundant grain directory, then the redundant grain tables
 *   gdOffset grain directory, then the grain tables (for the whole disk)
 *   overHead grains, appended in guest order
 *
 * The directories are written at create time (they only depend on the
 * size); a grain table is held in memory while its 32 MiB of guest range
 * is being written and is written twice (table and redundant copy) when
 * the writer moves past it.  Grain tables with no grain stay holes, which
 * read as all-unallocated.  Memory: one grain table.
 *
 * streamOptimized, as VMware's stream writers lay it out (what OVF import
 * and vSphere take):
 *
 *   0        header (version 3, flags: newline test, compressed grains,
 *            markers; gdOffset GD_AT_END; compressAlgorithm deflate)
 *   1..      embedded descriptor, createType="streamOptimized"
 *   then     zeros: room for a copy of the grain directory that only
 *            checkpoints use (see "checkpoint / resume"); the overhead
 *            stays 64 KiB up to ~500 GiB disks
 *   overHead grains, each "u64 lba, u32 size, zlib stream" padded to a
 *            sector, in guest order; after the grains of each grain
 *            table's range: a GT marker sector and the grain table
 *            (grain tables with no grain are not written: GD entry 0)
 *   then     GD marker + grain directory, footer marker + footer (the
 *            header with the real gdOffset), end-of-stream marker
 *
 * Each grain is one zlib (RFC 1950) stream, as VMware's decompressor and
 * qemu expect, made with deflate level 1 (speed; the output is still
 * compressed), or with stored blocks (level 0) when the grain's byte
 * histogram says it is random (encrypted or already compressed data, on
 * which deflate would only burn time), on two threads: the calling thread
 * and one worker split each batch of grains.  Output is buffered into large writes.  Memory:
 * the grain directory (4 bytes per 32 MiB of disk, at most 8 MiB), one
 * grain table, a batch of output slots (~2.1 MiB) and a 4 MiB write
 * buffer.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/iszero.h"
#include "../lib/rounding.h"
#include "vmdk.h"

#define W_GRAIN_SECTORS 128u
#define W_GRAIN (W_GRAIN_SECTORS * VMDK_SECTOR)
#define W_GT_SECTORS (VMDK_GT_BYTES / VMDK_SECTOR)
#define W_DESC_SECTORS 20u         /* monolithicSparse, as qemu */
#define W_BATCH 32u                /* grains compressed per round */
#define W_OUTBUF (4u << 20)
#define W_MAX_SPARSE_SECTORS (1ULL << 32)       /* 2 TiB: u32 GTEs */
#define W_MAX_STREAM_SECTORS (1ULL << 37)       /* 64 TiB */

const struct create_option vmdk_create_opts[] = {
    { "subformat", "monolithicSparse (default) or streamOptimized" },
    { "adapter_type", "ide (default), lsilogic, buslogic or legacyESX" },
    { "hwversion", "virtual hardware version (default 4)" },
    { "compat6", "on: hwversion 6" },
    { "toolsversion", "ddb.toolsVersion (default 2147483647)" },
    { "zeroed_grain", "on: allow zeroed-grain GTEs (monolithicSparse)" },
    { NULL, NULL },
};

/* The compression worker's share of a batch. */
struct zjob {
    const unsigned char *in[W_BATCH];
    uint64_t lba[W_BATCH];
    size_t out_len[W_BATCH];
    unsigned n;
};

struct vmdk_writer {
    bool stream;
    uint64_t capacity;          /* sectors */
    uint64_t n_gt;
    uint64_t next_sector;       /* where the next grain (or record) goes */

    int64_t cur_gt;             /* -1: none yet */
    uint32_t gt[VMDK_GTES_PER_GT];
    bool gt_used;

    struct vmdk_header hdr;     /* the header written */

    /* monolithicSparse */
    uint64_t gt_base, rgt_base; /* sectors of the tables */

    /* streamOptimized */
    uint32_t *gd;
    unsigned char *out;         /* pending output at next_sector */
    size_t out_len;
    unsigned char *slots;       /* W_BATCH compressed grain records */
    size_t slot_size;
    unsigned char *tail;        /* last partial grain, zero padded */
    z_stream zs[4];             /* per thread: deflate level 1, stored */
    bool zs_ready[4];
    struct zjob job;

    pthread_t thread;
    bool thread_ok, sync_ready;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned gen, done_gen;     /* job posted / job finished */
    bool quit, zfail;

    /* Checkpoints (see "checkpoint / resume" below). */
    bool ck;                    /* a checkpoint was taken (or resumed) */
    uint64_t ckgd_sector;       /* streamOptimized: the checkpoints' copy
                                 * of the grain directory, in the overhead */
    uint64_t gd_ck;             /* its entries below this are on disk */
};

static void
writer_lock (struct vmdk_writer *w)
{
    pthread_mutex_lock (&w->lock);
}

static void
writer_unlock (struct vmdk_writer *w)
{
    pthread_mutex_unlock (&w->lock);
}

/* ---- compression ---- */

/* Does the grain look like random bytes (encrypted or already compressed
 * data), on which deflate spends its time for nothing?  Every byte value
 * within a third of its expected count (about 5 standard deviations for
 * random bytes; text, code and patterns are far more skewed). */
static bool
looks_random (const unsigned char *p, size_t n)
{
    uint32_t h[256] = { 0 };
    uint32_t expect = (uint32_t) (n / 256), tol = expect / 3;
    size_t i;

    for (i = 0; i < n; i++) {
        h[p[i]]++;
    }
    for (i = 0; i < 256; i++) {
        if (h[i] + tol < expect || h[i] > expect + tol) {
            return false;
        }
    }
    return true;
}

/* Compress grain I of the job into its slot on thread T (0: caller, 1:
 * worker); the record is the grain marker (lba, size) and the zlib stream,
 * padded to a sector.  Random-looking grains go in stored deflate blocks:
 * still a zlib stream, at memcpy speed. */
static bool
compress_one (struct vmdk_writer *w, unsigned t, unsigned i)
{
    unsigned char *s = w->slots + (size_t) i * w->slot_size;
    z_stream *z = &w->zs[2 * t + looks_random (w->job.in[i], W_GRAIN)];
    size_t n;

    if (deflateReset (z) != Z_OK) {
        return false;
    }
    z->next_in = (unsigned char *) w->job.in[i];
    z->avail_in = W_GRAIN;
    z->next_out = s + VMDK_GRAIN_MARKER;
    z->avail_out = (uInt) (w->slot_size - VMDK_GRAIN_MARKER);
    if (deflate (z, Z_FINISH) != Z_STREAM_END) {
        return false;
    }
    n = w->slot_size - VMDK_GRAIN_MARKER - z->avail_out;
    put_le64 (s, w->job.lba[i]);
    put_le32 (s + 8, (uint32_t) n);
    n += VMDK_GRAIN_MARKER;
    memset (s + n, 0, ROUND_UP (n, (size_t) VMDK_SECTOR) - n);
    w->job.out_len[i] = ROUND_UP (n, (size_t) VMDK_SECTOR);
    return true;
}

/* The worker compresses the even grains of each batch. */
static void *
zworker (void *arg)
{
    struct vmdk_writer *w = arg;
    unsigned seen = 0, i;
    bool ok;

    for (;;) {
        writer_lock (w);
        while (w->gen == seen && !w->quit) {
            pthread_cond_wait (&w->cond, &w->lock);
        }
        if (w->quit) {
            writer_unlock (w);
            return NULL;
        }
        seen = w->gen;
        writer_unlock (w);
        ok = true;
        for (i = 0; i < w->job.n; i += 2) {
            ok = ok && compress_one (w, 1, i);
        }
        writer_lock (w);
        if (!ok) {
            w->zfail = true;
        }
        w->done_gen = seen;
        pthread_cond_broadcast (&w->cond);
        writer_unlock (w);
    }
}

/* Compress the job's grains on both threads. */
static int
compress_batch (struct vmdk_writer *w)
{
    unsigned i;
    bool ok = true;

    if (w->thread_ok && w->job.n > 1) {
        writer_lock (w);
        w->gen++;
        pthread_cond_broadcast (&w->cond);
        writer_unlock (w);
        for (i = 1; i < w->job.n; i += 2) {
            ok = ok && compress_one (w, 0, i);
        }
        writer_lock (w);
        while (w->done_gen != w->gen) {
            pthread_cond_wait (&w->cond, &w->lock);
        }
        ok = ok && !w->zfail;
        writer_unlock (w);
    }
    else {
        for (i = 0; i < w->job.n; i++) {
            ok = ok && compress_one (w, 0, i);
        }
    }
    if (!ok) {
        vmc_error ("vmdk: deflate failed");
        return -1;
    }
    return 0;
}

/* ---- stream output ---- */

static int
out_flush (struct image *img)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;

    if (w->out_len == 0) {
        return 0;
    }
    if (bdev_pwrite (img->file, w->out, w->out_len,
                     w->next_sector * VMDK_SECTOR - w->out_len) == -1) {
        return -1;
    }
    w->out_len = 0;
    return 0;
}

/* Append LEN bytes (a multiple of the sector) to the stream. */
static int
emit (struct image *img, const void *data, size_t len)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    const unsigned char *p = data;
    size_t n;

    while (len > 0) {
        if (w->out_len == W_OUTBUF && out_flush (img) == -1) {
            return -1;
        }
        n = MIN (len, (size_t) W_OUTBUF - w->out_len);
        memcpy (w->out + w->out_len, p, n);
        w->out_len += n;
        w->next_sector += n / VMDK_SECTOR;
        p += n;
        len -= n;
    }
    return 0;
}

/* A metadata marker sector: VAL sectors of TYPE follow. */
static int
emit_marker (struct image *img, uint64_t val, uint32_t type)
{
    unsigned char m[VMDK_SECTOR] = { 0 };

    put_le64 (m, val);
    put_le32 (m + 12, type);
    return emit (img, m, sizeof m);
}

/* ---- grain tables ---- */

static int
flush_gt (struct image *img)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    uint32_t t[VMDK_GTES_PER_GT];
    unsigned j;

    if (w->cur_gt < 0 || !w->gt_used) {
        return 0;
    }
    for (j = 0; j < VMDK_GTES_PER_GT; j++) {
        t[j] = htole32 (w->gt[j]);
    }
    if (w->stream) {
        if (emit_marker (img, W_GT_SECTORS, VMDK_MARKER_GT) == -1) {
            return -1;
        }
        w->gd[w->cur_gt] = (uint32_t) w->next_sector;
        return emit (img, t, sizeof t);
    }
    if (bdev_pwrite (img->file, t, sizeof t,
                     (w->gt_base + (uint64_t) w->cur_gt * W_GT_SECTORS) *
                     VMDK_SECTOR) == -1 ||
        bdev_pwrite (img->file, t, sizeof t,
                     (w->rgt_base + (uint64_t) w->cur_gt * W_GT_SECTORS) *
                     VMDK_SECTOR) == -1) {
        return -1;
    }
    return 0;
}

/* Make GT the current grain table. */
static int
enter_gt (struct image *img, uint64_t gt)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;

    if ((int64_t) gt == w->cur_gt) {
        return 0;
    }
    if (flush_gt (img) == -1) {
        return -1;
    }
    w->cur_gt = (int64_t) gt;
    w->gt_used = false;
    memset (w->gt, 0, sizeof w->gt);
    return 0;
}

/* Sector of the next grain; refuses to go past what a u32 GTE holds. */
static int
check_room (struct vmdk_writer *w, uint64_t sectors)
{
    if (w->next_sector + sectors > UINT32_MAX) {
        vmc_error ("vmdk: the image file would exceed 2 TiB, which grain "
                   "table entries cannot address");
        return -1;
    }
    return 0;
}

/* ---- pwrite ---- */

static int
sparse_pwrite (struct image *img, const unsigned char *buf, size_t count,
               uint64_t offset)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    const unsigned char *run = NULL;
    size_t run_len = 0, n;
    uint64_t run_sector = 0, gidx;

    while (count > 0) {
        gidx = offset / W_GRAIN;
        n = MIN ((size_t) W_GRAIN, count);
        if (enter_gt (img, gidx / VMDK_GTES_PER_GT) == -1) {
            return -1;
        }
        if (!is_zero (buf, n)) {
            if (check_room (w, W_GRAIN_SECTORS) == -1) {
                return -1;
            }
            if (run == NULL) {
                run = buf;
                run_sector = w->next_sector;
            }
            run_len += n;
            w->gt[gidx % VMDK_GTES_PER_GT] = (uint32_t) w->next_sector;
            w->gt_used = true;
            w->next_sector += W_GRAIN_SECTORS;
        }
        else if (run != NULL) {
            if (bdev_pwrite (img->file, run, run_len,
                             run_sector * VMDK_SECTOR) == -1) {
                return -1;
            }
            run = NULL;
            run_len = 0;
        }
        buf += n;
        count -= n;
        offset += n;
    }
    if (run != NULL && run_len % W_GRAIN != 0) {
        /* The disk's short last grain: write it whole, zero padded, so
         * that it reads as zeros past the data even on a block device. */
        size_t head = run_len - run_len % W_GRAIN;

        if (head > 0 && bdev_pwrite (img->file, run, head,
                                     run_sector * VMDK_SECTOR) == -1) {
            return -1;
        }
        memcpy (w->tail, run + head, run_len - head);
        memset (w->tail + (run_len - head), 0, W_GRAIN - (run_len - head));
        run_sector += head / VMDK_SECTOR;
        run = w->tail;
        run_len = W_GRAIN;
    }
    if (run != NULL &&
        bdev_pwrite (img->file, run, run_len, run_sector * VMDK_SECTOR) ==
        -1) {
        return -1;
    }
    return 0;
}

/* Compress and emit the W->job batch; GIDX0 is the first grain's index
 * for each entry (kept in job.lba as sectors). */
static int
stream_emit_batch (struct image *img)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    unsigned i;
    uint64_t gidx;

    if (w->job.n == 0) {
        return 0;
    }
    if (compress_batch (w) == -1) {
        return -1;
    }
    for (i = 0; i < w->job.n; i++) {
        gidx = w->job.lba[i] / W_GRAIN_SECTORS;
        if (enter_gt (img, gidx / VMDK_GTES_PER_GT) == -1 ||
            check_room (w, w->job.out_len[i] / VMDK_SECTOR) == -1) {
            return -1;
        }
        w->gt[gidx % VMDK_GTES_PER_GT] = (uint32_t) w->next_sector;
        w->gt_used = true;
        if (emit (img, w->slots + (size_t) i * w->slot_size,
                  w->job.out_len[i]) == -1) {
            return -1;
        }
    }
    w->job.n = 0;
    return 0;
}

static int
stream_pwrite (struct image *img, const unsigned char *buf, size_t count,
               uint64_t offset)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    size_t n;

    while (count > 0) {
        n = MIN ((size_t) W_GRAIN, count);
        if (!is_zero (buf, n)) {
            const unsigned char *in = buf;

            if (n < W_GRAIN) {
                /* The disk's last grain: compress a whole grain, as
                 * readers expect. */
                memcpy (w->tail, buf, n);
                memset (w->tail + n, 0, W_GRAIN - n);
                in = w->tail;
            }
            w->job.in[w->job.n] = in;
            w->job.lba[w->job.n] = offset / VMDK_SECTOR;
            if (++w->job.n == W_BATCH && stream_emit_batch (img) == -1) {
                return -1;
            }
        }
        buf += n;
        count -= n;
        offset += n;
    }
    /* The input buffer belongs to the caller: finish the batch now. */
    return stream_emit_batch (img);
}

int
vmdk_pwrite (struct image *img, const void *buf, size_t count,
             uint64_t offset)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;

    return w->stream ? stream_pwrite (img, buf, count, offset)
        : sparse_pwrite (img, buf, count, offset);
}

/* ---- create / finish ---- */

static uint32_t
new_cid (void)
{
    uint32_t cid = 0;

    if (getrandom (&cid, sizeof cid, GRND_NONBLOCK) != (ssize_t) sizeof cid) {
        cid = (uint32_t) time (NULL) ^ ((uint32_t) getpid () << 16);
    }
    /* ffffffff means "no parent" and fffffffe is special to VMware. */
    if (cid >= 0xfffffffeu) {
        cid = 0x12345678u;
    }
    return cid;
}

static bool
all_digits (const char *s, size_t max)
{
    size_t n = strlen (s), i;

    if (n == 0 || n > max) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

/* Build the embedded descriptor into BUF (SIZE bytes); its length, or 0
 * when it does not fit. */
static size_t
make_descriptor (struct image *img, char *buf, size_t size,
                 const char *create_type, uint64_t capacity,
                 const char *adapter, const char *hw, const char *tools)
{
    const char *base = strrchr (img->filename, '/');
    char name[512];
    unsigned heads = strcmp (adapter, "ide") == 0 ? 16 : 255;
    uint64_t cyl = capacity / (heads * 63ULL);
    size_t i;
    int n;

    base = base != NULL ? base + 1 : img->filename;
    snprintf (name, sizeof name, "%s", base);
    for (i = 0; name[i] != '\0'; i++) {
        if (name[i] == '"' || (unsigned char) name[i] < 0x20) {
            name[i] = '_';
        }
    }
    cyl = MIN (cyl, heads == 16 ? 16383ULL : 65535ULL);
    n = snprintf (buf, size,
                  "# Disk DescriptorFile\n"
                  "version=1\n"
                  "encoding=\"UTF-8\"\n"
                  "CID=%08" PRIx32 "\n"
                  "parentCID=ffffffff\n"
                  "createType=\"%s\"\n"
                  "\n"
                  "# Extent description\n"
                  "RW %" PRIu64 " SPARSE \"%s\"\n"
                  "\n"
                  "# The Disk Data Base\n"
                  "#DDB\n"
                  "\n"
                  "ddb.virtualHWVersion = \"%s\"\n"
                  "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
                  "ddb.geometry.heads = \"%u\"\n"
                  "ddb.geometry.sectors = \"63\"\n"
                  "ddb.adapterType = \"%s\"\n"
                  "ddb.toolsVersion = \"%s\"\n",
                  new_cid (), create_type, capacity, name, hw, cyl, heads,
                  adapter, tools);
    return n > 0 && (size_t) n < size ? (size_t) n : 0;
}

/* Write the grain directory at SECTOR whose entries are BASE + 4 i. */
static int
write_gd (struct image *img, uint64_t sector, uint64_t n_gt, uint64_t base)
{
    uint32_t chunk[4096];
    uint64_t i = 0, k;

    while (i < n_gt) {
        k = MIN (n_gt - i, (uint64_t) 4096);
        for (uint64_t j = 0; j < k; j++) {
            chunk[j] = htole32 ((uint32_t) (base + (i + j) * W_GT_SECTORS));
        }
        if (bdev_pwrite (img->file, chunk, k * 4,
                         sector * VMDK_SECTOR + i * 4) == -1) {
            return -1;
        }
        i += k;
    }
    return 0;
}

static uint64_t
gd_sector_count (const struct vmdk_writer *w)
{
    return DIV_ROUND_UP (w->n_gt * 4, (uint64_t) VMDK_SECTOR);
}

/* Resuming: the header the file starts with must be H, the one create
 * wrote. */
static int
header_check (struct image *img, const struct vmdk_header *h)
{
    unsigned char want[VMDK_SECTOR], got[VMDK_SECTOR];

    if (bdev_pread (img->file, got, sizeof got, 0) == -1) {
        return -1;
    }
    vmdk_header_encode (want, h);
    if (memcmp (want, got, sizeof want) != 0) {
        vmc_error ("vmdk: the file to resume was not started with these "
                   "options, or its header is damaged");
        return -1;
    }
    return 0;
}

/* monolithicSparse: the header, descriptor and both directories are
 * written now (when resuming, checked instead). */
static int
create_sparse (struct image *img, struct vmdk_writer *w, const char *desc,
               size_t desc_len, bool zeroed, bool resume)
{
    unsigned char hb[VMDK_SECTOR];
    struct vmdk_header h = { 0 };

    h.magic = VMDK_MAGIC;
    h.version = zeroed ? 2 : 1;
    h.flags = VMDK_FLAG_NL_DETECT | VMDK_FLAG_RGD |
        (zeroed ? VMDK_FLAG_ZERO_GRAIN : 0);
    h.capacity = w->capacity;
    h.grain_size = W_GRAIN_SECTORS;
    h.desc_offset = 1;
    h.desc_size = W_DESC_SECTORS;
    h.num_gtes_per_gt = VMDK_GTES_PER_GT;
    h.rgd_offset = 1 + W_DESC_SECTORS;
    w->rgt_base = h.rgd_offset + gd_sector_count (w);
    h.gd_offset = w->rgt_base + w->n_gt * W_GT_SECTORS;
    w->gt_base = h.gd_offset + gd_sector_count (w);
    h.overhead = ROUND_UP (w->gt_base + w->n_gt * W_GT_SECTORS,
                           (uint64_t) W_GRAIN_SECTORS);
    memcpy (h.nl, "\n \r\n", 4);
    h.compress = VMDK_COMPRESS_NONE;
    w->hdr = h;
    w->next_sector = h.overhead;
    if (h.overhead + w->capacity > W_MAX_SPARSE_SECTORS) {
        vmc_error ("vmdk: monolithicSparse holds at most 2 TiB (grain "
                   "table entries are 32-bit sectors)");
        return -1;
    }
    w->tail = malloc (W_GRAIN);
    if (w->tail == NULL) {
        vmc_perror ("vmdk");
        return -1;
    }
    if (resume) {
        return header_check (img, &h);
    }
    /* Grain tables never written must read as zeros: a hole in a file;
     * on a block device, bdev_pwrite zeroes what the first grain skips. */
    vmdk_header_encode (hb, &h);
    if (bdev_pwrite (img->file, hb, sizeof hb, 0) == -1 ||
        bdev_pwrite (img->file, desc, desc_len, VMDK_SECTOR) == -1 ||
        write_gd (img, h.rgd_offset, w->n_gt, w->rgt_base) == -1 ||
        write_gd (img, h.gd_offset, w->n_gt, w->gt_base) == -1) {
        return -1;
    }
    return 0;
}

/* streamOptimized: the header, the descriptor and zeros up to the first
 * grain start the stream (when resuming, the header is checked instead
 * and the stream goes on where the checkpoint left it). */
static int
create_stream (struct image *img, struct vmdk_writer *w, const char *desc,
               size_t desc_len, bool resume)
{
    struct vmdk_header *h = &w->hdr;
    unsigned char *head;
    int i, err;

    h->magic = VMDK_MAGIC;
    h->version = 3;
    h->flags = VMDK_FLAG_NL_DETECT | VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS;
    h->capacity = w->capacity;
    h->grain_size = W_GRAIN_SECTORS;
    h->desc_offset = 1;
    h->desc_size = DIV_ROUND_UP (desc_len, (size_t) VMDK_SECTOR);
    h->num_gtes_per_gt = VMDK_GTES_PER_GT;
    h->rgd_offset = 0;
    h->gd_offset = VMDK_GD_AT_END;
    memcpy (h->nl, "\n \r\n", 4);
    h->compress = VMDK_COMPRESS_DEFLATE;
    if (w->capacity > W_MAX_STREAM_SECTORS) {
        vmc_error ("vmdk: streamOptimized images are limited to 64 TiB here");
        return -1;
    }
    if (resume) {
        /* The descriptor's length depends on the name it was made with. */
        unsigned char b[VMDK_SECTOR];
        struct vmdk_header fh;

        if (bdev_pread (img->file, b, sizeof b, 0) == -1) {
            return -1;
        }
        vmdk_header_decode (b, &fh);
        if (fh.desc_size >= 1 && fh.desc_size <= W_DESC_SECTORS) {
            h->desc_size = fh.desc_size;
        }
    }
    /* Room for the checkpoints' copy of the grain directory between the
     * descriptor and the first grain (readers go by overHead): it only
     * makes the overhead grow past 64 KiB for disks over ~500 GiB. */
    w->ckgd_sector = 1 + h->desc_size;
    h->overhead = ROUND_UP (w->ckgd_sector + gd_sector_count (w),
                            (uint64_t) W_GRAIN_SECTORS);
    if (resume && header_check (img, h) == -1) {
        return -1;
    }
    w->gd = image_alloc_table (img, "grain directory", w->n_gt, 4,
                               (W_MAX_STREAM_SECTORS / W_GRAIN_SECTORS /
                                VMDK_GTES_PER_GT) * 4);
    w->out = malloc (W_OUTBUF);
    w->tail = malloc (W_GRAIN);
    if (w->gd == NULL || w->out == NULL || w->tail == NULL) {
        vmc_perror ("vmdk");
        return -1;
    }
    for (i = 0; i < 4; i++) {
        if (deflateInit2 (&w->zs[i], i % 2 == 0 ? Z_BEST_SPEED
                          : Z_NO_COMPRESSION, Z_DEFLATED, 15, 8,
                          Z_DEFAULT_STRATEGY) != Z_OK) {
            vmc_error ("vmdk: deflateInit failed");
            return -1;
        }
        w->zs_ready[i] = true;
    }
    w->slot_size = ROUND_UP (VMDK_GRAIN_MARKER +
                             deflateBound (&w->zs[0], W_GRAIN),
                             (size_t) VMDK_SECTOR);
    w->slots = malloc (w->slot_size * W_BATCH);
    if (w->slots == NULL) {
        vmc_perror ("vmdk");
        return -1;
    }
    if (!resume) {
        /* Header, descriptor, and zeros up to the first grain. */
        head = calloc (h->overhead, VMDK_SECTOR);
        if (head == NULL) {
            vmc_perror ("vmdk");
            return -1;
        }
        vmdk_header_encode (head, h);
        memcpy (head + VMDK_SECTOR, desc, desc_len);
        w->next_sector = 0;
        err = emit (img, head, h->overhead * VMDK_SECTOR);
        free (head);
        if (err == -1) {
            return -1;
        }
    }
    pthread_mutex_init (&w->lock, NULL);
    pthread_cond_init (&w->cond, NULL);
    w->sync_ready = true;
    /* Without a second thread the writer still works, only slower. */
    w->thread_ok = pthread_create (&w->thread, NULL, zworker, w) == 0;
    return 0;
}

/* Create, or (RESUME) set up the writer for a file create made with the
 * same parameters, writing nothing. */
static int
writer_setup (struct image *img, const struct create_params *p, bool resume)
{
    struct vmdk *v = img->priv;
    struct vmdk_writer *w;
    const char *sub = options_get (p->opts, "subformat");
    const char *adapter = options_get (p->opts, "adapter_type");
    const char *hw = options_get (p->opts, "hwversion");
    const char *tools = options_get (p->opts, "toolsversion");
    bool compat6, zeroed, stream;
    char desc[W_DESC_SECTORS * VMDK_SECTOR];
    size_t desc_len;

    if (options_get_bool (p->opts, "compat6", false, &compat6) == -1 ||
        options_get_bool (p->opts, "zeroed_grain", false, &zeroed) == -1) {
        return -1;
    }
    if (sub == NULL) {
        stream = p->compress;
    }
    else if (strcmp (sub, "streamOptimized") == 0) {
        stream = true;
    }
    else if (strcmp (sub, "monolithicSparse") == 0) {
        stream = false;
        if (p->compress) {
            vmc_error ("vmdk: -c needs subformat=streamOptimized "
                       "(monolithicSparse grains are not compressed)");
            return -1;
        }
    }
    else {
        vmc_error ("vmdk: subformat \"%s\" cannot be written "
                   "(monolithicSparse or streamOptimized)", sub);
        return -1;
    }
    if (adapter == NULL) {
        adapter = "ide";
    }
    if (strcmp (adapter, "ide") != 0 && strcmp (adapter, "lsilogic") != 0 &&
        strcmp (adapter, "buslogic") != 0 &&
        strcmp (adapter, "legacyESX") != 0) {
        vmc_error ("vmdk: adapter_type \"%s\" is not one of ide, lsilogic, "
                   "buslogic, legacyESX", adapter);
        return -1;
    }
    if (compat6 && hw != NULL) {
        vmc_error ("vmdk: compat6 and hwversion cannot both be given");
        return -1;
    }
    if (hw == NULL) {
        hw = compat6 ? "6" : "4";
    }
    if (!all_digits (hw, 3)) {
        vmc_error ("vmdk: hwversion \"%s\" is not a number", hw);
        return -1;
    }
    if (tools == NULL) {
        tools = "2147483647";
    }
    if (!all_digits (tools, 10)) {
        vmc_error ("vmdk: toolsversion \"%s\" is not a number", tools);
        return -1;
    }
    if (stream && img->file->is_block) {
        vmc_error ("vmdk: streamOptimized needs a regular file (readers "
                   "find its footer at the end of the file)");
        return -1;
    }
    if (zeroed && stream) {
        vmc_error ("vmdk: zeroed_grain applies to monolithicSparse only");
        return -1;
    }
    w = calloc (1, sizeof *w);
    if (w == NULL) {
        vmc_perror ("vmdk");
        return -1;
    }
    v->w = w;
    w->stream = stream;
    w->cur_gt = -1;
    w->capacity = DIV_ROUND_UP (p->size, (uint64_t) VMDK_SECTOR);
    w->n_gt = DIV_ROUND_UP (DIV_ROUND_UP (w->capacity,
                                          (uint64_t) W_GRAIN_SECTORS),
                            (uint64_t) VMDK_GTES_PER_GT);
    if (w->capacity > W_MAX_STREAM_SECTORS) {
        vmc_error ("vmdk: a virtual size of %" PRIu64 " bytes is too large",
                   p->size);
        return -1;
    }
    desc_len = make_descriptor (img, desc, sizeof desc,
                                stream ? "streamOptimized"
                                : "monolithicSparse", w->capacity, adapter,
                                hw, tools);
    if (desc_len == 0) {
        vmc_error ("vmdk: descriptor does not fit");
        return -1;
    }
    if ((stream ? create_stream (img, w, desc, desc_len, resume)
         : create_sparse (img, w, desc, desc_len, zeroed, resume)) == -1) {
        return -1;
    }
    /* The virtual size stays what was asked; the header's capacity is
     * rounded up to sectors (the last write may end mid-sector). */
    img->size = p->size;
    img->write_align = W_GRAIN;
    snprintf (img->subformat, sizeof img->subformat, "%s",
              stream ? "streamOptimized" : "monolithicSparse");
    return 0;
}

int
vmdk_create (struct image *img, const struct create_params *p)
{
    return writer_setup (img, p, false);
}

int
vmdk_finish (struct image *img)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    unsigned char hb[VMDK_SECTOR];
    struct vmdk_header f;
    uint64_t gd_sector, i, gd_sectors, k;
    uint32_t chunk[VMDK_SECTOR / 4 * 8];

    if (flush_gt (img) == -1) {
        return -1;
    }
    if (!w->stream) {
        /* The data ends after the last grain (or the tables).  On a
         * device, everything up to there that was skipped is zeroed. */
        uint64_t end = w->next_sector * VMDK_SECTOR;

        return bdev_truncate (img->file, img->file->is_block
                                         ? end : MAX (end, img->file->size));
    }
    gd_sectors = DIV_ROUND_UP (w->n_gt * 4, (uint64_t) VMDK_SECTOR);
    if (emit_marker (img, gd_sectors, VMDK_MARKER_GD) == -1) {
        return -1;
    }
    gd_sector = w->next_sector;
    for (i = 0; i < gd_sectors * (VMDK_SECTOR / 4); i += k) {
        k = MIN (gd_sectors * (VMDK_SECTOR / 4) - i,
                 (uint64_t) (sizeof chunk / 4));
        for (uint64_t j = 0; j < k; j++) {
            chunk[j] = i + j < w->n_gt ? htole32 (w->gd[i + j]) : 0;
        }
        if (emit (img, chunk, k * 4) == -1) {
            return -1;
        }
    }
    f = w->hdr;
    f.gd_offset = gd_sector;
    vmdk_header_encode (hb, &f);
    if (emit_marker (img, 1, VMDK_MARKER_FOOTER) == -1 ||
        emit (img, hb, sizeof hb) == -1 ||
        emit_marker (img, 0, VMDK_MARKER_EOS) == -1 ||
        out_flush (img) == -1) {
        return -1;
    }
    if (w->ck) {
        /* The checkpoints' copy of the directory goes: the overhead reads
         * as zeros past the descriptor, as without checkpoints. */
        static const unsigned char zeros[4096];

        for (i = 0; i < gd_sectors * VMDK_SECTOR; i += k) {
            k = MIN (gd_sectors * VMDK_SECTOR - i, (uint64_t) sizeof zeros);
            if (bdev_pwrite (img->file, zeros, k,
                             w->ckgd_sector * VMDK_SECTOR + i) == -1) {
                return -1;
            }
        }
    }
    return bdev_truncate (img->file, w->next_sector * VMDK_SECTOR);
}

/* ---- checkpoint / resume ---- */

/*
 * monolithicSparse: the grain directories and tables have fixed places,
 * grains are appended.  A checkpoint writes the current grain table in
 * place (both copies, 4 KiB); the state is the append point and the file
 * size.  After a crash, grains appended since are past that size (resume
 * cuts them off), and the writer may have written grain tables in place
 * for grains at or past the checkpoint position: resume keeps the tables
 * before the position's, reads that one back without its entries for
 * grains at or past the position (the ones before are checked against the
 * append point), and makes every later table read as zeros again (writing
 * zeros where the file has data there).
 *
 * streamOptimized: the stream is only appended to, so resume cuts it at
 * the checkpoint's end and goes on emitting grains and markers from
 * there.  What the writer holds in memory must survive: the current grain
 * table (up to 2 KiB, kept in the state) and the grain directory, which
 * grows with the disk.  Its entries for the tables written so far also go
 * to a spare area in the overhead (between the descriptor and the first
 * grain, which readers skip), written in place: a checkpoint writes only
 * the entries new since the last one (widened to 4 KiB).  Finish zeroes
 * the area again.  Buffered output is flushed by the checkpoint.
 *
 * Neither has grains in flight at a checkpoint: vmdk_pwrite() compresses
 * and emits each batch before it returns.
 */

#define VCK_MAGIC 0x314b4356u   /* "VCK1" */

/* The state, little-endian. */
enum {
    VCK_M = 0,                  /* u32 magic */
    VCK_STREAM = 4,             /* u32 1: streamOptimized */
    VCK_CAP = 8,                /* u64 capacity, sectors */
    VCK_FSIZE = 16,             /* u64 file size at the checkpoint */
    VCK_NEXT = 24,              /* u64 next_sector */
    VCK_CURGT = 32,             /* u64 stream: current table, or ~0 */
    VCK_GDCK = 40,              /* u64 stream: directory entries on disk */
    VCK_NGTE = 48,              /* u32 stream: entries of the current
                                 * table that follow */
    VCK_GTE = 56,               /* u32 each */
    VCK_MAXLEN = VCK_GTE + VMDK_GT_BYTES
};

/* Write entries [FROM, TO) of the grain directory into the checkpoints'
 * area, widened to 4 KiB of it. */
static int
write_ckgd (struct image *img, uint64_t from, uint64_t to)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    uint32_t chunk[1024];
    uint64_t b = ROUND_DOWN (from * 4, (uint64_t) sizeof chunk);
    uint64_t end = MIN (ROUND_UP (to * 4, (uint64_t) sizeof chunk),
                        gd_sector_count (w) * VMDK_SECTOR);
    uint64_t n, i, e;

    for (; from < to && b < end; b += n) {
        n = MIN (end - b, (uint64_t) sizeof chunk);
        for (i = 0; i < n / 4; i++) {
            e = b / 4 + i;
            chunk[i] = htole32 (e < w->n_gt ? w->gd[e] : 0);
        }
        if (bdev_pwrite (img->file, chunk, n,
                         w->ckgd_sector * VMDK_SECTOR + b) == -1) {
            return -1;
        }
    }
    return 0;
}

int
vmdk_checkpoint (struct image *img, void *state, size_t *len)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    unsigned char *s = state;
    uint64_t done;
    uint32_t n = 0, j;

    memset (s, 0, VCK_GTE);
    if (!w->stream) {
        /* The current table, in place; every earlier one is written. */
        if (flush_gt (img) == -1) {
            return -1;
        }
    }
    else {
        /* The tables before the current one are in the stream. */
        done = w->cur_gt < 0 ? 0 : (uint64_t) w->cur_gt;
        if (out_flush (img) == -1 || write_ckgd (img, w->gd_ck, done) == -1) {
            return -1;
        }
        w->gd_ck = done;
        if (w->gt_used) {
            for (j = 0; j < VMDK_GTES_PER_GT; j++) {
                if (w->gt[j] != 0) {
                    n = j + 1;
                }
            }
        }
        for (j = 0; j < n; j++) {
            put_le32 (s + VCK_GTE + j * 4, w->gt[j]);
        }
        put_le32 (s + VCK_STREAM, 1);
        put_le64 (s + VCK_CURGT, (uint64_t) w->cur_gt);
        put_le64 (s + VCK_GDCK, w->gd_ck);
        put_le32 (s + VCK_NGTE, n);
    }
    w->ck = true;
    put_le32 (s + VCK_M, VCK_MAGIC);
    put_le64 (s + VCK_CAP, w->capacity);
    put_le64 (s + VCK_FSIZE, img->file->size);
    put_le64 (s + VCK_NEXT, w->next_sector);
    *len = VCK_GTE + (size_t) n * 4;
    return 0;
}

static int
vck_damaged (const char *what)
{
    vmc_error ("vmdk: the checkpoint state or the file is damaged (%s)",
               what);
    return -1;
}

/* Is a grain table entry for a grain below the checkpoint sane: 0, or a
 * whole grain between the overhead and the append point? */
static bool
sparse_gte_ok (const struct vmdk_writer *w, uint32_t e)
{
    return e == 0 || (e >= w->hdr.overhead && e % W_GRAIN_SECTORS == 0 &&
                      e + (uint64_t) W_GRAIN_SECTORS <= w->next_sector);
}

/* Make [OFF, OFF + LEN) of the file read as zeros, writing zeros only
 * where it has data (tables written after the checkpoint): the rest is
 * holes already. */
static int
zero_data (struct image *img, uint64_t off, uint64_t len)
{
    static const unsigned char zeros[65536];
    uint64_t end = MIN (off + len, img->file->size), data, hole, n;

    while (off < end) {
        if (bdev_next_data (img->file, off, &data) == -1) {
            return -1;
        }
        if (data >= end) {
            break;
        }
        if (bdev_next_hole (img->file, data, &hole) == -1) {
            return -1;
        }
        hole = hole > data ? MIN (hole, end) : end;
        for (; data < hole; data += n) {
            n = MIN (hole - data, (uint64_t) sizeof zeros);
            if (bdev_pwrite (img->file, zeros, n, data) == -1) {
                return -1;
            }
        }
        off = hole;
    }
    return 0;
}

/* monolithicSparse: the table of the checkpoint's position back from the
 * file (only its entries for grains before the position), later ones
 * zeroed. */
static int
resume_sparse (struct image *img)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    uint64_t first = DIV_ROUND_UP (img->write_pos, (uint64_t) W_GRAIN);
    uint64_t gt = first / VMDK_GTES_PER_GT, off, n;
    unsigned char t[VMDK_GT_BYTES];
    unsigned j;

    if (gt >= w->n_gt) {
        return 0;               /* everything was written */
    }
    off = (w->gt_base + gt * W_GT_SECTORS) * VMDK_SECTOR;
    n = off < img->file->size ? MIN (sizeof t, img->file->size - off) : 0;
    memset (t + n, 0, sizeof t - n);
    if (n > 0 && bdev_pread (img->file, t, n, off) == -1) {
        return -1;
    }
    for (j = 0; j < VMDK_GTES_PER_GT; j++) {
        w->gt[j] = gt * VMDK_GTES_PER_GT + j < first ? get_le32 (t + j * 4)
            : 0;
        if (!sparse_gte_ok (w, w->gt[j])) {
            return vck_damaged ("a grain table entry");
        }
        w->gt_used = w->gt_used || w->gt[j] != 0;
    }
    w->cur_gt = (int64_t) gt;
    n = (w->n_gt - gt) * VMDK_GT_BYTES;
    if (zero_data (img, (w->gt_base + gt * W_GT_SECTORS) * VMDK_SECTOR,
                   n) == -1 ||
        zero_data (img, (w->rgt_base + gt * W_GT_SECTORS) * VMDK_SECTOR,
                   n) == -1) {
        return -1;
    }
    return flush_gt (img);
}

/* streamOptimized: the directory from the checkpoints' area (the entries
 * the state covers), the current table from the state. */
static int
resume_stream (struct image *img, const unsigned char *s, size_t len)
{
    struct vmdk_writer *w = ((struct vmdk *) img->priv)->w;
    uint64_t cur = get_le64 (s + VCK_CURGT), gdck = get_le64 (s + VCK_GDCK);
    uint64_t first = DIV_ROUND_UP (img->write_pos, (uint64_t) W_GRAIN);
    uint64_t i, k, e, lo = w->hdr.overhead;
    uint32_t n = get_le32 (s + VCK_NGTE), chunk[1024];

    if (n > VMDK_GTES_PER_GT || len != VCK_GTE + (size_t) n * 4 ||
        (cur != UINT64_MAX && cur >= w->n_gt) ||
        gdck > (cur == UINT64_MAX ? 0 : cur) ||
        (n > 0 && cur == UINT64_MAX)) {
        return vck_damaged ("grain tables");
    }
    for (i = 0; i < gdck; i += k) {
        k = MIN (gdck - i, (uint64_t) (sizeof chunk / 4));
        if (bdev_pread (img->file, chunk, k * 4,
                        w->ckgd_sector * VMDK_SECTOR + i * 4) == -1) {
            return -1;
        }
        for (uint64_t j = 0; j < k; j++) {
            /* A table follows its marker, inside the stream. */
            e = le32toh (chunk[j]);
            if (e != 0 && (e < lo + 1 || e + W_GT_SECTORS > w->next_sector)) {
                return vck_damaged ("a grain directory entry");
            }
            w->gd[i + j] = (uint32_t) e;
        }
    }
    for (i = 0; i < n; i++) {
        /* A grain's marker, inside the stream, for a grain before the
         * checkpoint. */
        e = get_le32 (s + VCK_GTE + i * 4);
        if (e != 0 && (e < lo || e >= w->next_sector ||
                       cur * VMDK_GTES_PER_GT + i >= first)) {
            return vck_damaged ("a grain table entry");
        }
        w->gt[i] = (uint32_t) e;
        w->gt_used = w->gt_used || e != 0;
    }
    w->cur_gt = cur == UINT64_MAX ? -1 : (int64_t) cur;
    w->gd_ck = gdck;
    return 0;
}

int
vmdk_resume (struct image *img, const struct create_params *p,
             const void *state, size_t len)
{
    struct vmdk_writer *w;
    const unsigned char *s = state;
    uint64_t fsize, next;

    if (writer_setup (img, p, true) == -1) {
        return -1;
    }
    w = ((struct vmdk *) img->priv)->w;
    if (len < VCK_GTE || len > VCK_MAXLEN || get_le32 (s + VCK_M) != VCK_MAGIC ||
        get_le32 (s + VCK_STREAM) != (w->stream ? 1u : 0u) ||
        get_le64 (s + VCK_CAP) != w->capacity) {
        return vck_damaged ("not a state for this image");
    }
    fsize = get_le64 (s + VCK_FSIZE);
    next = get_le64 (s + VCK_NEXT);
    /* The append point: past the overhead, on a grain for
     * monolithicSparse; the end of the stream for streamOptimized. */
    if (next < w->hdr.overhead || next > UINT32_MAX ||
        (!w->stream && next % W_GRAIN_SECTORS != 0) ||
        (w->stream ? fsize != next * VMDK_SECTOR
         : fsize > next * VMDK_SECTOR)) {
        return vck_damaged ("file end");
    }
    if (img->file->size < fsize) {
        vmc_error ("vmdk: the file is shorter than at the checkpoint");
        return -1;
    }
    /* Cut off whatever was written after the checkpoint. */
    if (bdev_truncate (img->file, fsize) == -1) {
        return -1;
    }
    w->next_sector = next;
    w->ck = true;
    if (w->stream) {
        return resume_stream (img, s, len);
    }
    if (len != VCK_GTE) {
        return vck_damaged ("not a state for this image");
    }
    return resume_sparse (img);
}

void
vmdk_writer_free (struct vmdk_writer *w)
{
    int i;

    if (w == NULL) {
        return;
    }
    if (w->thread_ok) {
        writer_lock (w);
        w->quit = true;
        pthread_cond_broadcast (&w->cond);
        writer_unlock (w);
        pthread_join (w->thread, NULL);
    }
    if (w->sync_ready) {
        pthread_mutex_destroy (&w->lock);
        pthread_cond_destroy (&w->cond);
    }
    for (i = 0; i < 4; i++) {
        if (w->zs_ready[i]) {
            deflateEnd (&w->zs[i]);
        }
    }
    free (w->gd);
    free (w->out);
    free (w->slots);
    free (w->tail);
    free (w);
}
