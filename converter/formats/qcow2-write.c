/* SPDX-License-Identifier: MIT */
/*
 * qcow2 writer: sequential, append-only, bounded memory.
 *
 * Options (qemu-img names): cluster_size (512..2M, power of two, default
 * 64K), compat (1.1 or v3, default; 0.10 or v2 for a version 2 image, which
 * cannot use zstd), compression_type (zlib, default, or zstd; used with -c),
 * refcount_bits (16 only), extended_l2 and lazy_refcounts (off only),
 * preallocation (off only).
 *
 * Layout of the file written:
 *
 *   cluster 0            header (written last, by finish)
 *   then, in the order the guest data arrives:
 *     data clusters      guest clusters in increasing guest order; with -c,
 *                        compressed clusters packed byte by byte, a stream
 *                        that may run on into the next cluster only when
 *                        that cluster is the next one allocated (the spec's
 *                        "next contiguous host cluster")
 *     L2 tables          each written when the writer moves past its range
 *                        (only the current one is in memory)
 *     refcount blocks    each written as soon as every cluster it covers is
 *                        allocated (allocation only grows, so its counts are
 *                        final by then)
 *   at finish:           the last L2 table, the L1 table, the refcount
 *                        table, the last refcount blocks, then the header.
 *
 * Resumable (qcow2_checkpoint/qcow2_resume, at the end of this file): the
 * first checkpoint allocates the L1 and refcount tables where the file
 * ends then, and each checkpoint gives the current L2 table and refcount
 * block their clusters early; all four are then updated in place.  Without
 * checkpoints (the copy path) nothing of this happens.
 *
 * Every allocated cluster has refcount 1, except clusters holding
 * compressed data, whose refcount is the number of compressed clusters that
 * touch them (from the first byte to the end of the last 512-byte sector, as
 * qemu counts them).  Since allocation only grows, a refcount block is known
 * to be final once allocation has moved past its range: the block buffer
 * holds the counts of compressed clusters only, and every other cluster
 * below the allocation point counts 1.
 *
 * Memory: the L1 table (8 bytes per 2^(2*cluster_bits-3) bytes of virtual
 * size: 16 KiB per TiB with 64 KiB clusters; refused over 32 MiB, as qemu),
 * one L2 table, one refcount block, the refcount table (8 bytes per
 * refcount block; refused over 8 MiB, as qemu) and the compression buffers.
 * All of it is O(cluster size) plus tables that are tiny at the default
 * cluster size, whatever the disk size.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/options.h"
#include "../lib/rounding.h"
#include "qcow2.h"

/* Compression levels: speed first, as for a conversion. */
#define QW_ZLIB_LEVEL 1
#define QW_ZSTD_LEVEL 1

/* With -c, clusters are compressed in batches of up to this many bytes by
 * the calling thread and one helper thread (the machine we are measured on
 * has two cores; the copy engine's reader thread is mostly idle when
 * compressing), then written out in guest order. */
#define QW_BATCH_BYTES (4u << 20)

/* The header length we write for version 3 (with the compression type
 * byte and padding to 8). */
#define QW_V3_HEADER_LENGTH 112

struct qcow2_writer {
    unsigned version;
    bool compress;
    unsigned ctype;

    uint64_t next_cluster;      /* first cluster not allocated yet */

    /* The current L2 table: index of the range it maps, entries. */
    uint64_t l2_index;          /* UINT64_MAX: none yet */
    bool l2_dirty;
    uint64_t *l2;               /* l2_entries, host order */
    unsigned char *io;          /* one cluster of scratch for output */

    /* Refcounts. */
    uint64_t rb_entries;        /* entries per refcount block */
    uint64_t cur_block;         /* block whose range is being filled */
    uint16_t *rb;               /* compressed-cluster counts in that range */
    uint64_t *rtable;           /* refcount block offsets, per block */
    uint64_t rtable_cap;        /* entries allocated in rtable */
    uint64_t nblocks;           /* blocks flushed */

    /* Compressed cursor: next free byte, valid while its cluster is the
     * last one allocated. */
    uint64_t cbyte;

    /* Compression: one compressor per thread, a batch of items. */
    struct qw_cctx {
        void *zstream;          /* z_stream * (deflate) */
        void *zstd;             /* ZSTD_CCtx * */
        unsigned char *pad;     /* a zero-padded short last cluster */
    } cc[2];
    struct qw_item {
        const unsigned char *src;
        uint64_t len;
        size_t clen;            /* 0: store uncompressed */
    } *items;
    uint64_t cs;                /* cluster size, for the helper */
    unsigned batch_max;
    unsigned nitems;
    unsigned next_item;         /* atomic: next item to take */
    unsigned char *cout;        /* batch_max clusters of output */
    bool have_worker;
    bool stop;
    unsigned gen, worker_gen;   /* batch posted / finished by the worker */
    pthread_t worker;
    pthread_mutex_t lock;
    pthread_cond_t cond;

    /* Checkpoints (see "Checkpoint and resume" below).  From the first
     * one on, the L1 and refcount tables live in regions allocated then,
     * and the current L2 table and refcount block get their clusters
     * early; all four are updated in place, only where they changed. */
    bool ck;                    /* a checkpoint was taken (or resumed) */
    uint64_t l1_region;         /* first cluster of the L1 table */
    uint64_t rt_region;         /* first cluster of the refcount table */
    uint64_t rt_clusters;       /* its size, for the largest file possible */
    uint64_t l1_hi;             /* L1 entries past this are zero */
    uint64_t l1_ck;             /* L1 entries below this are on disk */
    uint64_t rt_ck;             /* refcount table entries on disk */
    uint64_t l2_hi;             /* current L2 entries past this are zero */
    uint64_t l2_host;           /* its cluster's offset, 0: none yet */
    uint64_t l2_ck;             /* its entries below this are on disk */
    uint64_t rb_ck;             /* current block entries on disk (its
                                 * offset is rtable[cur_block], 0: none) */
};

const struct create_option qcow2_create_opts[] = {
    { "cluster_size", "cluster size in bytes, 512..2M (default 64K)" },
    { "compat", "1.1 or v3 (default), 0.10 or v2" },
    { "compression_type", "zlib (default) or zstd, used with -c" },
    { "refcount_bits", "16 (only)" },
    { "extended_l2", "off (only)" },
    { "lazy_refcounts", "off (only)" },
    { "preallocation", "off (only)" },
    { NULL, NULL },
};

/* ------------------------------------------------------------------ */
/* Allocation and refcounts                                             */
/* ------------------------------------------------------------------ */

/* Write the first USED bytes of a metadata cluster at OFFSET, rounded up to
 * 4 KiB: the rest stays a hole, which reads as the zeros it holds (finish
 * extends the file over the last cluster).  Keeps big clusters cheap. */
static int
write_meta (struct image *img, const unsigned char *buf, uint64_t used,
            uint64_t offset)
{
    struct qcow2 *q = img->priv;
    uint64_t n = MIN (ROUND_UP (MAX (used, 1), 4096), q->cluster_size);

    return bdev_pwrite (img->file, buf, n, offset);
}

/* ------------------------------------------------------------------ */
/* ------------------------------------------------------------------ */

/* The count of entry I of refcount block cur_block: clusters below
 * next_cluster count 1 unless the block buffer says more. */
static uint16_t
rb_value (const struct qcow2_writer *w, uint64_t i)
{
    uint64_t c = w->cur_block * w->rb_entries + i;

    return w->rb[i] != 0 ? w->rb[i] : (c < w->next_cluster ? 1 : 0);
}

/* Write refcount block cur_block to a newly allocated cluster, or to the
 * one a checkpoint gave it. */
static int
flush_block (struct image *img)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t b, i, used = 0;
    uint16_t v;

    if (w->cur_block < w->rtable_cap && w->rtable[w->cur_block] != 0) {
        b = w->rtable[w->cur_block] >> q->cluster_bits;
    }
    else {
        b = w->next_cluster++;
    }
    if (w->cur_block >= w->rtable_cap) {
        vmc_error ("%s: qcow2: the refcount table would exceed %" PRIu64
                   " bytes; use a larger cluster_size", img->filename,
                   QCOW2_MAX_REFTABLE_BYTES);
        return -1;
    }
    for (i = 0; i < w->rb_entries; i++) {
        v = rb_value (w, i);
        put_be16 (w->io + i * 2, v);
        if (v != 0) {
            used = (i + 1) * 2;
        }
    }
    if (write_meta (img, w->io, used, b << q->cluster_bits) == -1) {
        return -1;
    }
    w->rtable[w->cur_block] = b << q->cluster_bits;
    w->nblocks = w->cur_block + 1;
    w->cur_block++;
    w->rb_ck = 0;
    memset (w->rb, 0, w->rb_entries * sizeof *w->rb);
    return 0;
}

/* Flush every refcount block whose whole range lies below next_cluster
 * minus one (the last cluster may still receive compressed data). */
static int
settle (struct image *img)
{
    struct qcow2_writer *w = ((struct qcow2 *) img->priv)->w;

    while (w->next_cluster > (w->cur_block + 1) * w->rb_entries) {
        if (flush_block (img) == -1) {
            return -1;
        }
    }
    return 0;
}

/* Allocate N contiguous clusters; returns the first one's index. */
static int
alloc_clusters (struct image *img, uint64_t n, uint64_t *first)
{
    struct qcow2_writer *w = ((struct qcow2 *) img->priv)->w;

    *first = w->next_cluster;
    w->next_cluster += n;
    return settle (img);
}

/* ------------------------------------------------------------------ */
/* L2 tables                                                            */
/* ------------------------------------------------------------------ */

static int
flush_l2 (struct image *img)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t c, i, used = 0;

    if (!w->l2_dirty) {
        return 0;
    }
    if (w->l2_host != 0) {
        c = w->l2_host >> q->cluster_bits;
    }
    else if (alloc_clusters (img, 1, &c) == -1) {
        return -1;
    }
    for (i = 0; i < q->l2_entries; i++) {
        put_be64 (w->io + i * 8, w->l2[i]);
        if (w->l2[i] != 0) {
            used = (i + 1) * 8;
        }
    }
    if (write_meta (img, w->io, used, c << q->cluster_bits) == -1) {
        return -1;
    }
    q->l1[w->l2_index] = (c << q->cluster_bits) | QL2_COPIED;
    w->l1_hi = MAX (w->l1_hi, w->l2_index + 1);
    w->l2_dirty = false;
    return 0;
}

/* Make the L2 table for guest cluster GC current. */
static int
switch_l2 (struct image *img, uint64_t gc)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t idx = gc / q->l2_entries;

    if (idx == w->l2_index) {
        return 0;
    }
    if (flush_l2 (img) == -1) {
        return -1;
    }
    memset (w->l2, 0, q->l2_entries * 8);
    w->l2_index = idx;
    w->l2_hi = 0;
    w->l2_host = 0;
    w->l2_ck = 0;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Data                                                                 */
/* ------------------------------------------------------------------ */

/* Write N whole guest clusters from BUF (LEN bytes: the last may be short)
 * starting at guest cluster GC, uncompressed, host-contiguous. */
static int
write_plain (struct image *img, const unsigned char *buf, uint64_t len,
             uint64_t gc)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t n, first, i, room, bytes;

    while (len > 0) {
        if (switch_l2 (img, gc) == -1) {
            return -1;
        }
        room = q->l2_entries - (gc % q->l2_entries);
        n = MIN (room, DIV_ROUND_UP (len, q->cluster_size));
        bytes = MIN (len, n << q->cluster_bits);
        if (alloc_clusters (img, n, &first) == -1) {
            return -1;
        }
        w->cbyte = 0;
        if (bdev_pwrite (img->file, buf, bytes,
                         first << q->cluster_bits) == -1) {
            return -1;
        }
        for (i = 0; i < n; i++) {
            w->l2[(gc + i) % q->l2_entries] =
                ((first + i) << q->cluster_bits) | QL2_COPIED;
        }
        w->l2_hi = (gc + n - 1) % q->l2_entries + 1;
        w->l2_dirty = true;
        buf += bytes;
        len -= bytes;
        gc += n;
    }
    return 0;
}

/* Compress one cluster (LEN <= cluster size bytes, zero-padded) into OUT
 * with compressor CC.  Returns the compressed length, or 0 when it does not
 * shrink. */
static size_t
compress_one (struct qcow2_writer *w, struct qw_cctx *cc, uint64_t cs,
              const unsigned char *src, uint64_t len, unsigned char *out)
{
    const unsigned char *in = src;
    size_t limit = cs - 1;

    if (len < cs) {
        /* The short last cluster: compress a zero-padded copy. */
        memcpy (cc->pad, src, len);
        memset (cc->pad + len, 0, cs - len);
        in = cc->pad;
    }
    if (w->ctype == QCOMP_ZSTD) {
        size_t r = ZSTD_compressCCtx (cc->zstd, out, limit, in, cs,
                                      QW_ZSTD_LEVEL);

        return ZSTD_isError (r) ? 0 : r;
    }
    else {
        z_stream *zs = cc->zstream;

        deflateReset (zs);
        zs->next_in = (unsigned char *) in;
        zs->avail_in = (uInt) cs;
        zs->next_out = out;
        zs->avail_out = (uInt) limit;
        if (deflate (zs, Z_FINISH) != Z_STREAM_END) {
            return 0;
        }
        return limit - zs->avail_out;
    }
}

/* Take items of the current batch until none is left. */
static void
run_items (struct qcow2_writer *w, struct qw_cctx *cc, uint64_t cs)
{
    unsigned i;

    while ((i = __atomic_fetch_add (&w->next_item, 1, __ATOMIC_RELAXED)) <
           w->nitems) {
        w->items[i].clen = compress_one (w, cc, cs, w->items[i].src,
                                         w->items[i].len,
                                         w->cout + (uint64_t) i * cs);
    }
}

static void *
worker_main (void *arg)
{
    struct qcow2_writer *w = arg;
    unsigned seen = 0;

    for (;;) {
        pthread_mutex_lock (&w->lock);
        while (!w->stop && w->gen == seen) {
            pthread_cond_wait (&w->cond, &w->lock);
        }
        if (w->stop) {
            pthread_mutex_unlock (&w->lock);
            return NULL;
        }
        seen = w->gen;
        pthread_mutex_unlock (&w->lock);
        run_items (w, &w->cc[1], w->cs);
        pthread_mutex_lock (&w->lock);
        w->worker_gen = seen;
        pthread_cond_broadcast (&w->cond);
        pthread_mutex_unlock (&w->lock);
    }
}

/* Compress the batch of w->nitems items, with the helper if there is one
 * and more than one item. */
static void
compress_batch (struct qcow2_writer *w, uint64_t cs)
{
    w->next_item = 0;
    if (!w->have_worker || w->nitems < 2) {
        run_items (w, &w->cc[0], cs);
        return;
    }
    pthread_mutex_lock (&w->lock);
    w->gen++;
    pthread_cond_broadcast (&w->cond);
    pthread_mutex_unlock (&w->lock);
    run_items (w, &w->cc[0], cs);
    pthread_mutex_lock (&w->lock);
    while (w->worker_gen != w->gen) {
        pthread_cond_wait (&w->cond, &w->lock);
    }
    pthread_mutex_unlock (&w->lock);
}

/* Append LEN compressed bytes (DATA) for guest cluster GC. */
static int
write_compressed (struct image *img, const unsigned char *data, size_t len,
                  uint64_t gc)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t start, endb, c1, c2, c, sectors, last;

    /* First: switching L2 tables may allocate a cluster. */
    if (switch_l2 (img, gc) == -1) {
        return -1;
    }
    last = w->next_cluster - 1;
    /* Continue the packed stream only inside the last allocated cluster,
     * and while its count has room; else start a fresh cluster. */
    start = w->cbyte;
    if (start == 0 || ((start - 1) >> q->cluster_bits) != last ||
        (last >= w->cur_block * w->rb_entries &&
         w->rb[last - w->cur_block * w->rb_entries] >= 0xfff0)) {
        start = w->next_cluster << q->cluster_bits;
    }
    endb = start + len;                 /* exclusive */
    c1 = start >> q->cluster_bits;
    c2 = (endb - 1) >> q->cluster_bits;
    if (w->next_cluster < c2 + 1) {
        w->next_cluster = c2 + 1;
    }
    if (bdev_pwrite (img->file, data, len, start) == -1) {
        return -1;
    }
    for (c = c1; c <= c2; c++) {
        while (c >= (w->cur_block + 1) * w->rb_entries) {
            if (flush_block (img) == -1) {
                return -1;
            }
        }
        w->rb[c - w->cur_block * w->rb_entries]++;
    }
    if (settle (img) == -1) {
        return -1;
    }
    w->cbyte = endb;
    sectors = ((endb - 1) >> 9) - (start >> 9);
    w->l2[gc % q->l2_entries] = QL2_COMPRESSED |
        (sectors << q->csize_shift) | start;
    w->l2_hi = gc % q->l2_entries + 1;
    w->l2_dirty = true;
    return 0;
}

int
qcow2_pwrite (struct image *img, const void *buf, size_t count,
              uint64_t offset)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    const unsigned char *p = buf;
    uint64_t gc = offset >> q->cluster_bits, n;
    unsigned i;
    size_t clen;

    if (!w->compress) {
        return write_plain (img, p, count, gc);
    }
    while (count > 0) {
        /* A batch of clusters, compressed in parallel. */
        w->nitems = 0;
        while (count > 0 && w->nitems < w->batch_max) {
            n = MIN ((uint64_t) count, q->cluster_size);
            w->items[w->nitems].src = p;
            w->items[w->nitems].len = n;
            w->nitems++;
            p += n;
            count -= (size_t) n;
        }
        compress_batch (w, q->cluster_size);
        for (i = 0; i < w->nitems; i++) {
            clen = w->items[i].clen;
            if (clen == 0) {
                if (write_plain (img, w->items[i].src, w->items[i].len,
                                 gc) == -1) {
                    return -1;
                }
            }
            else if (write_compressed (img, w->cout + (uint64_t) i *
                                       q->cluster_size, clen, gc) == -1) {
                return -1;
            }
            gc++;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Create and finish                                                    */
/* ------------------------------------------------------------------ */

/* Compressors for both threads, the batch buffers, and the helper. */
static int
setup_compression (struct qcow2_writer *w, uint64_t cs)
{
    unsigned t;
    int err;

    w->batch_max = (unsigned) MAX (1, QW_BATCH_BYTES / cs);
    w->items = calloc (w->batch_max, sizeof *w->items);
    w->cout = malloc (w->batch_max * cs);
    if (w->items == NULL || w->cout == NULL) {
        vmc_perror ("malloc");
        return -1;
    }
    for (t = 0; t < 2; t++) {
        struct qw_cctx *cc = &w->cc[t];

        cc->pad = malloc (cs);
        if (cc->pad == NULL) {
            vmc_perror ("malloc");
            return -1;
        }
        if (w->ctype == QCOMP_ZSTD) {
            cc->zstd = ZSTD_createCCtx ();
            if (cc->zstd == NULL) {
                vmc_error ("qcow2: cannot allocate a zstd context");
                return -1;
            }
        }
        else {
            z_stream *zs = calloc (1, sizeof *zs);

            if (zs == NULL) {
                vmc_perror ("calloc");
                return -1;
            }
            /* Window 4 KiB (-12) as qemu writes it, raw deflate. */
            if (deflateInit2 (zs, QW_ZLIB_LEVEL, Z_DEFLATED, -12, 9,
                              Z_DEFAULT_STRATEGY) != Z_OK) {
                free (zs);
                vmc_error ("qcow2: cannot initialise zlib");
                return -1;
            }
            cc->zstream = zs;
        }
    }
    pthread_mutex_init (&w->lock, NULL);
    pthread_cond_init (&w->cond, NULL);
    w->cs = cs;
    err = pthread_create (&w->worker, NULL, worker_main, w);
    /* Without the helper, the calling thread compresses everything. */
    w->have_worker = err == 0;
    return 0;
}

static int
opt_off_only (const struct create_params *p, const char *key)
{
    bool v;
    const char *s;

    if (p->opts == NULL) {
        return 0;
    }
    if (strcmp (key, "preallocation") == 0) {
        s = options_get (p->opts, key);
        if (s != NULL && strcmp (s, "off") != 0) {
            vmc_error ("qcow2: preallocation=%s is not supported (off only)",
                       s);
            return -1;
        }
        return 0;
    }
    if (options_get_bool (p->opts, key, false, &v) == -1) {
        return -1;
    }
    if (v) {
        vmc_error ("qcow2: %s=on is not supported for writing (off only)",
                   key);
        return -1;
    }
    return 0;
}

int
qcow2_create (struct image *img, const struct create_params *p)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w;
    uint64_t cs = 65536, rbits = 16, span, l1, rt_cap;
    const char *s;

    if (p->opts != NULL) {
        if (options_get_size (p->opts, "cluster_size", cs, &cs) == -1 ||
            options_get_size (p->opts, "refcount_bits", 16, &rbits) == -1) {
            return -1;
        }
    }
    if (!is_power_of_2 (cs) || cs < 512 || cs > (2u << 20)) {
        vmc_error ("qcow2: cluster_size %" PRIu64 " must be a power of two "
                   "between 512 and 2M", cs);
        return -1;
    }
    if (rbits != 16) {
        vmc_error ("qcow2: refcount_bits %" PRIu64 " is not supported (16 "
                   "only)", rbits);
        return -1;
    }
    if (opt_off_only (p, "extended_l2") == -1 ||
        opt_off_only (p, "lazy_refcounts") == -1 ||
        opt_off_only (p, "preallocation") == -1) {
        return -1;
    }
    w = calloc (1, sizeof *w);
    if (w == NULL) {
        vmc_perror ("calloc");
        return -1;
    }
    q->w = w;
    w->version = 3;
    s = p->opts != NULL ? options_get (p->opts, "compat") : NULL;
    if (s != NULL) {
        if (strcmp (s, "0.10") == 0 || strcmp (s, "v2") == 0) {
            w->version = 2;
        }
        else if (strcmp (s, "1.1") != 0 && strcmp (s, "v3") != 0) {
            vmc_error ("qcow2: compat=%s is not supported (1.1, v3, 0.10 or "
                       "v2)", s);
            return -1;
        }
    }
    w->ctype = QCOMP_DEFLATE;
    s = p->opts != NULL ? options_get (p->opts, "compression_type") : NULL;
    if (s != NULL) {
        if (strcmp (s, "zstd") == 0) {
            w->ctype = QCOMP_ZSTD;
        }
        else if (strcmp (s, "zlib") != 0) {
            vmc_error ("qcow2: compression_type=%s is not supported (zlib "
                       "or zstd)", s);
            return -1;
        }
    }
    if (w->ctype == QCOMP_ZSTD && w->version == 2) {
        vmc_error ("qcow2: compression_type=zstd needs compat=1.1");
        return -1;
    }
    w->compress = p->compress;

    q->version = w->version;
    q->cluster_bits = log2_u64 (cs);
    q->cluster_size = cs;
    q->refcount_order = 4;
    q->compression_type = w->ctype;
    q->l2_entry_size = 8;
    q->l2_entries = cs / 8;
    q->csize_shift = 62 - (q->cluster_bits - 8);
    q->csize_mask = (1ull << (q->cluster_bits - 8)) - 1;
    q->coffset_mask = (1ull << q->csize_shift) - 1;

    /* The header's size is rounded up to 512 bytes, as qemu does; the
     * bytes past the source's end read as zeros. */
    img->size = p->size;
    span = cs * q->l2_entries;
    l1 = ROUND_UP (p->size, 512) / span + (ROUND_UP (p->size, 512) % span != 0);
    l1 = MAX (l1, 1);
    if (l1 * 8 > QCOW2_MAX_L1_BYTES) {
        vmc_error ("qcow2: a virtual size of %" PRIu64 " bytes needs an L1 "
                   "table over 32 MiB with cluster_size %" PRIu64 "; use a "
                   "larger cluster_size", p->size, cs);
        return -1;
    }
    q->l1_needed = l1;
    q->l1_size = (uint32_t) l1;
    q->l1 = calloc (l1, 8);
    w->l2 = malloc (cs);
    w->io = malloc (cs);
    w->rb_entries = cs * 8 / 16;
    w->rb = calloc (w->rb_entries, sizeof *w->rb);
    rt_cap = QCOW2_MAX_REFTABLE_BYTES / 8;
    w->rtable_cap = rt_cap;
    /* Grows with the file; calloc'd pages are only touched when used. */
    w->rtable = calloc (rt_cap, 8);
    if (q->l1 == NULL || w->l2 == NULL || w->io == NULL || w->rb == NULL ||
        w->rtable == NULL) {
        vmc_perror ("qcow2: calloc");
        return -1;
    }
    if (w->compress && setup_compression (w, cs) == -1) {
        return -1;
    }
    w->l2_index = UINT64_MAX;
    w->next_cluster = 1;                /* cluster 0: the header */
    img->cluster_size = cs;
    img->write_align = (uint32_t) cs;
    return 0;
}

static int
write_header (struct image *img, uint64_t rt_offset, uint64_t rt_clusters)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    unsigned char *h = w->io;

    memset (h, 0, q->cluster_size);
    put_be32 (h + QH_MAGIC, QCOW2_MAGIC);
    put_be32 (h + QH_VERSION, w->version);
    put_be32 (h + QH_CLUSTER_BITS, q->cluster_bits);
    put_be64 (h + QH_SIZE, ROUND_UP (img->size, 512));
    put_be32 (h + QH_L1_SIZE, q->l1_size);
    put_be64 (h + QH_L1_OFFSET, q->l1_offset);
    put_be64 (h + QH_REFCOUNT_OFFSET, rt_offset);
    put_be32 (h + QH_REFCOUNT_CLUSTERS, (uint32_t) rt_clusters);
    if (w->version == 3) {
        put_be64 (h + QH_INCOMPATIBLE,
                  w->ctype == QCOMP_ZSTD ? QINC_COMPRESSION : 0);
        put_be32 (h + QH_REFCOUNT_ORDER, 4);
        put_be32 (h + QH_HEADER_LENGTH, QW_V3_HEADER_LENGTH);
        h[QH_COMPRESSION_TYPE] = (unsigned char) w->ctype;
        /* The header extension area starts at 112 with the end marker,
         * which is the zeros already there. */
    }
    return write_meta (img, h, 4096, 0);
}

/* Clusters of a refcount table that covers a file of NEXT clusters plus
 * the table itself and the refcount blocks still to write (from block
 * FROM on): iterated to a fixed point. */
static int
reftable_clusters (struct image *img, uint64_t next, uint64_t from,
                   uint64_t *clusters)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t T = 1, B = 1, nb, k;

    for (k = 0; k < 64; k++) {
        nb = DIV_ROUND_UP (next + T + B, w->rb_entries);
        if (nb * 8 > QCOW2_MAX_REFTABLE_BYTES) {
            vmc_error ("%s: qcow2: the refcount table would exceed %" PRIu64
                       " bytes; use a larger cluster_size", img->filename,
                       QCOW2_MAX_REFTABLE_BYTES);
            return -1;
        }
        if (nb - from + 1 <= B &&
            DIV_ROUND_UP (nb * 8, q->cluster_size) <= T) {
            break;
        }
        B = MAX (B, nb - from + 1);
        T = MAX (T, DIV_ROUND_UP (nb * 8, q->cluster_size));
    }
    *clusters = T;
    return 0;
}

int
qcow2_finish (struct image *img)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t n1, l1c, i, j, T, rt, per, used;

    if (flush_l2 (img) == -1) {
        return -1;
    }
    /* The L1 table, contiguous (allocation bumps next_cluster first, so
     * refcount blocks flushed by settle() land after it).  After a
     * checkpoint it has its region already, written whole: a resumed
     * writer does not know what a checkpoint that never completed left in
     * it past l1_hi. */
    n1 = DIV_ROUND_UP (q->l1_size * 8ull, q->cluster_size);
    if (w->ck) {
        l1c = w->l1_region;
    }
    else if (alloc_clusters (img, n1, &l1c) == -1) {
        return -1;
    }
    w->cbyte = 0;
    q->l1_offset = l1c << q->cluster_bits;
    per = q->cluster_size / 8;
    for (i = 0; i < n1; i++) {
        memset (w->io, 0, q->cluster_size);
        used = 0;
        for (j = 0; j < per && i * per + j < q->l1_size; j++) {
            put_be64 (w->io + j * 8, q->l1[i * per + j]);
            if (q->l1[i * per + j] != 0) {
                used = (j + 1) * 8;
            }
        }
        if (write_meta (img, w->io, w->ck ? q->cluster_size : used,
                        (l1c + i) << q->cluster_bits) == -1) {
            return -1;
        }
    }

    if (w->ck) {
        /* The refcount table's region was sized for the largest file
         * this image can become. */
        T = w->rt_clusters;
        rt = w->rt_region;
    }
    else if (reftable_clusters (img, w->next_cluster, w->cur_block,
                                &T) == -1 ||
             alloc_clusters (img, T, &rt) == -1) {
        return -1;
    }
    /* The remaining blocks, the last one partial. */
    while (w->cur_block * w->rb_entries < w->next_cluster) {
        if (flush_block (img) == -1) {
            return -1;
        }
    }
    if (w->nblocks > T * per) {
        vmc_error ("%s: qcow2: internal error: %" PRIu64 " refcount blocks "
                   "for a table of %" PRIu64 " clusters", img->filename,
                   w->nblocks, T);
        return -1;
    }
    for (i = 0; i < T; i++) {
        memset (w->io, 0, q->cluster_size);
        used = 0;
        for (j = 0; j < per && i * per + j < w->nblocks; j++) {
            put_be64 (w->io + j * 8, w->rtable[i * per + j]);
            used = (j + 1) * 8;
        }
        if (write_meta (img, w->io, w->ck ? q->cluster_size : used,
                        (rt + i) << q->cluster_bits) == -1) {
            return -1;
        }
    }
    /* Everything allocated is written up to next_cluster except possibly
     * the tail of the last data cluster; make the size whole. */
    if (img->file->size < (w->next_cluster << q->cluster_bits) &&
        bdev_truncate (img->file, w->next_cluster << q->cluster_bits) == -1) {
        return -1;
    }
    return write_header (img, rt << q->cluster_bits, T);
}

/* ------------------------------------------------------------------ */
/* Checkpoint and resume                                                */
/* ------------------------------------------------------------------ */

/*
 * A checkpoint makes everything written so far recoverable from the file
 * plus a state of QCK_LEN bytes, without rewriting anything big:
 *
 *   - the first checkpoint allocates, at the current end, the L1 table
 *     (its size is fixed) and a refcount table sized for the largest file
 *     the image can become (every guest cluster, L2 table and refcount
 *     block, both tables: one 64 KiB cluster covers 16 TiB of file);
 *   - the current L2 table and the current refcount block get their
 *     clusters at once instead of when the writer moves past them (it then
 *     writes them there);
 *   - what changed since the last checkpoint is written in place, widened
 *     to 4 KiB: the new L2 entries, the new refcount entries (from the
 *     last cluster of the previous checkpoint, which packed compressed
 *     data may have shared since), the new L1 and refcount table entries.
 *
 * Nothing else in the file is ever written twice, so the state holds the
 * allocation point and compressed cursor, where those four tables are, how
 * far each is valid, and the count of the last cluster.  A checkpoint
 * costs four writes of a few KiB (plus the core's flush); the first one
 * also allocates the tables (of L1: 8 bytes per 512 MiB of disk at 64 KiB
 * clusters), which finish then uses instead of allocating them at the end.
 *
 * After a crash the file may hold anything written after the checkpoint:
 * past the checkpoint's end (resume cuts it off), and in the current L2
 * table and refcount block, which the writer rewrites in place when it
 * moves past them.  Resume reads both back, keeps only the entries the
 * state vouches for (below l2_hi, and below the allocation point with the
 * last cluster's count from the state), and rewrites them whole.  The L1
 * and refcount tables are written only by checkpoints and finish; entries
 * past what the state covers (from a checkpoint that never completed) are
 * ignored, and finish writes both tables whole.
 *
 * With -c, qcow2_pwrite() compresses each batch on both threads, waits for
 * both and writes the batch before it returns: no compression is in flight
 * when a checkpoint is taken, and none can be lost by it.
 */

#define QCK_MAGIC 0x314b4351u   /* "QCK1" */

/* The state, little-endian. */
enum {
    QCK_M = 0,                  /* u32 magic */
    QCK_BITS = 4,               /* u32 cluster_bits */
    QCK_VERSION = 8,            /* u32 qcow2 version written */
    QCK_FLAGS = 12,             /* u32 bit 0: -c; bits 8-15: type */
    QCK_FSIZE = 16,             /* u64 file size at the checkpoint */
    QCK_NEXT = 24,              /* u64 next_cluster */
    QCK_CBYTE = 32,             /* u64 compressed cursor */
    QCK_L1 = 40,                /* u64 cluster of the L1 table */
    QCK_RT = 48,                /* u64 cluster of the refcount table */
    QCK_RTC = 56,               /* u64 its clusters */
    QCK_L1HI = 64,              /* u64 L1 entries on disk */
    QCK_L2IDX = 72,             /* u64 current L2 table (UINT64_MAX none) */
    QCK_L2HOST = 80,            /* u64 its offset, 0: not allocated */
    QCK_L2HI = 88,              /* u64 its entries in use */
    QCK_BLOCK = 96,             /* u64 current refcount block */
    QCK_RBHOST = 104,           /* u64 its offset */
    QCK_LAST = 112,             /* u32 count of the last cluster, 0: 1 */
    QCK_LEN = 120
};

static uint32_t
ck_flags (const struct qcow2_writer *w)
{
    return (w->compress ? 1u : 0u) | (uint32_t) w->ctype << 8;
}

/* Write entries [FROM, TO) of TAB (N entries, host order) as big-endian
 * u64 into the table at cluster BASE (NCL clusters long), widened to
 * 4 KiB; entries past N are zeros. */
static int
write_span64 (struct image *img, const uint64_t *tab, uint64_t n,
              uint64_t from, uint64_t to, uint64_t base, uint64_t ncl)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t b = ROUND_DOWN (from * 8, (uint64_t) 4096);
    uint64_t end = MIN (ROUND_UP (to * 8, (uint64_t) 4096),
                        ncl << q->cluster_bits);
    uint64_t len, i, e;

    if (from >= to) {
        return 0;
    }
    while (b < end) {
        len = MIN (end - b, q->cluster_size);
        for (i = 0; i < len / 8; i++) {
            e = b / 8 + i;
            put_be64 (w->io + i * 8, e < n ? tab[e] : 0);
        }
        if (bdev_pwrite (img->file, w->io, len,
                         (base << q->cluster_bits) + b) == -1) {
            return -1;
        }
        b += len;
    }
    return 0;
}

/* Write entries [FROM, TO) of the current refcount block in place,
 * widened to 4 KiB. */
static int
write_rb_span (struct image *img, uint64_t from, uint64_t to)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t b = ROUND_DOWN (from * 2, (uint64_t) 4096);
    uint64_t end = MIN (ROUND_UP (to * 2, (uint64_t) 4096), q->cluster_size);
    uint64_t i;

    if (from >= to) {
        return 0;
    }
    for (i = b / 2; i < end / 2; i++) {
        put_be16 (w->io + i * 2 - b, rb_value (w, i));
    }
    return bdev_pwrite (img->file, w->io, end - b,
                        w->rtable[w->cur_block] + b);
}

/* The first checkpoint: the L1 table and a refcount table for the largest
 * file possible get their clusters now, to be updated in place. */
static int
ck_regions (struct image *img)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t n1 = DIV_ROUND_UP (q->l1_size * 8ull, q->cluster_size);
    uint64_t most, T;

    /* What the file holds, the L1 table, at most one new cluster per
     * guest cluster (a compressed one starts at most one), one L2 table
     * per L1 entry; reftable_clusters() adds the blocks and the table. */
    most = w->next_cluster + n1 + DIV_ROUND_UP (img->size, q->cluster_size) +
        q->l1_needed;
    if (reftable_clusters (img, most, w->cur_block, &T) == -1 ||
        alloc_clusters (img, n1, &w->l1_region) == -1 ||
        alloc_clusters (img, T, &w->rt_region) == -1) {
        return -1;
    }
    w->rt_clusters = T;
    w->ck = true;
    return 0;
}

int
qcow2_checkpoint (struct image *img, void *state, size_t *len)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    unsigned char *s = state;
    uint64_t c, first, last;

    if (!w->ck && ck_regions (img) == -1) {
        return -1;
    }
    /* The current L2 table gets its cluster (and its L1 entry) now. */
    if (w->l2_dirty) {
        if (w->l2_host == 0) {
            if (alloc_clusters (img, 1, &c) == -1) {
                return -1;
            }
            w->l2_host = c << q->cluster_bits;
            w->l2_ck = 0;
            q->l1[w->l2_index] = w->l2_host | QL2_COPIED;
            w->l1_hi = MAX (w->l1_hi, w->l2_index + 1);
        }
        if (write_span64 (img, w->l2, q->l2_entries, w->l2_ck, w->l2_hi,
                          w->l2_host >> q->cluster_bits, 1) == -1) {
            return -1;
        }
        w->l2_ck = w->l2_hi;
    }
    /* So does the current refcount block, last, since allocating changes
     * it (and may complete it: then its successor needs one). */
    for (;;) {
        if (w->cur_block >= w->rt_clusters * (q->cluster_size / 8)) {
            vmc_error ("%s: qcow2: internal error: refcount block %" PRIu64
                       " past the checkpoint's refcount table",
                       img->filename, w->cur_block);
            return -1;
        }
        if (w->rtable[w->cur_block] != 0) {
            break;
        }
        c = w->next_cluster++;
        w->rtable[w->cur_block] = c << q->cluster_bits;
        w->rb_ck = 0;
        if (settle (img) == -1) {
            return -1;
        }
    }
    first = w->cur_block * w->rb_entries;
    last = w->next_cluster - 1 - first;
    if (write_rb_span (img, w->rb_ck > 0 ? w->rb_ck - 1 : 0,
                       last + 1) == -1 ||
        write_span64 (img, q->l1, q->l1_needed, w->l1_ck, w->l1_hi,
                      w->l1_region,
                      DIV_ROUND_UP (q->l1_size * 8ull, q->cluster_size)) ==
        -1 ||
        write_span64 (img, w->rtable, w->rtable_cap, w->rt_ck,
                      w->cur_block + 1, w->rt_region, w->rt_clusters) == -1) {
        return -1;
    }
    w->rb_ck = last + 1;
    w->l1_ck = w->l1_hi;
    w->rt_ck = w->cur_block + 1;

    memset (s, 0, QCK_LEN);
    put_le32 (s + QCK_M, QCK_MAGIC);
    put_le32 (s + QCK_BITS, q->cluster_bits);
    put_le32 (s + QCK_VERSION, w->version);
    put_le32 (s + QCK_FLAGS, ck_flags (w));
    put_le64 (s + QCK_FSIZE, img->file->size);
    put_le64 (s + QCK_NEXT, w->next_cluster);
    put_le64 (s + QCK_CBYTE, w->cbyte);
    put_le64 (s + QCK_L1, w->l1_region);
    put_le64 (s + QCK_RT, w->rt_region);
    put_le64 (s + QCK_RTC, w->rt_clusters);
    put_le64 (s + QCK_L1HI, w->l1_hi);
    put_le64 (s + QCK_L2IDX, w->l2_index);
    put_le64 (s + QCK_L2HOST, w->l2_host);
    put_le64 (s + QCK_L2HI, w->l2_hi);
    put_le64 (s + QCK_BLOCK, w->cur_block);
    put_le64 (s + QCK_RBHOST, w->rtable[w->cur_block]);
    put_le32 (s + QCK_LAST, w->rb[last]);
    *len = QCK_LEN;
    return 0;
}

/* Is OFF the offset of an allocated cluster other than the header, below
 * the allocation point NEXT? */
static bool
ck_cluster_ok (const struct qcow2 *q, uint64_t next, uint64_t off)
{
    return IS_ALIGNED (off, q->cluster_size) && off >= q->cluster_size &&
        (off >> q->cluster_bits) < next;
}

/* Read the cluster at OFF into BUF; what lies past the end of the file
 * (a hole that was never written) reads as zeros. */
static int
ck_read_cluster (struct image *img, unsigned char *buf, uint64_t off)
{
    struct qcow2 *q = img->priv;
    uint64_t n = 0;

    if (off < img->file->size) {
        n = MIN (q->cluster_size, img->file->size - off);
    }
    memset (buf + n, 0, q->cluster_size - n);
    return n > 0 ? bdev_pread (img->file, buf, n, off) : 0;
}

static int
ck_damaged (const char *what)
{
    vmc_error ("qcow2: the checkpoint state or the file is damaged (%s)",
               what);
    return -1;
}

/* The L1 entries [0, l1_hi) and the refcount table entries [0, cur_block]
 * from their regions, checked. */
static int
ck_load_tables (struct image *img, uint64_t rb_host)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t per = q->cluster_size / 8, i, j, idx, e;

    for (i = 0; i * per < w->l1_hi; i++) {
        if (ck_read_cluster (img, w->io,
                             (w->l1_region + i) << q->cluster_bits) == -1) {
            return -1;
        }
        for (j = 0; j < per && (idx = i * per + j) < w->l1_hi; j++) {
            e = get_be64 (w->io + j * 8);
            if (e != 0 && ((e & ~(QL1_OFFSET_MASK | QL2_COPIED)) != 0 ||
                           !(e & QL2_COPIED) ||
                           !ck_cluster_ok (q, w->next_cluster,
                                           e & QL1_OFFSET_MASK))) {
                return ck_damaged ("an L1 entry");
            }
            q->l1[idx] = e;
        }
    }
    for (i = 0; i * per <= w->cur_block; i++) {
        if (ck_read_cluster (img, w->io,
                             (w->rt_region + i) << q->cluster_bits) == -1) {
            return -1;
        }
        for (j = 0; j < per && (idx = i * per + j) <= w->cur_block; j++) {
            e = get_be64 (w->io + j * 8);
            if (idx == w->cur_block ? e != rb_host
                : !ck_cluster_ok (q, w->next_cluster, e)) {
                return ck_damaged ("a refcount table entry");
            }
            w->rtable[idx] = e;
        }
    }
    return 0;
}

/* The current L2 table: entries [0, l2_hi) from its cluster, checked, the
 * rest cleared; written back whole. */
static int
ck_load_l2 (struct image *img)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t end = w->next_cluster << q->cluster_bits, i, e, host, clen;

    if (ck_read_cluster (img, w->io, w->l2_host) == -1) {
        return -1;
    }
    for (i = 0; i < q->l2_entries; i++) {
        e = i < w->l2_hi ? get_be64 (w->io + i * 8) : 0;
        if (e & QL2_COMPRESSED) {
            if (!qcow2_parse_compressed (q, e, &host, &clen) ||
                (e & QL2_COPIED) || host < q->cluster_size ||
                host + clen > end) {
                return ck_damaged ("a compressed L2 entry");
            }
        }
        else if (e != 0 && ((e & ~(QL2_OFFSET_MASK | QL2_COPIED)) != 0 ||
                            !(e & QL2_COPIED) ||
                            !ck_cluster_ok (q, w->next_cluster,
                                            e & QL2_OFFSET_MASK))) {
            return ck_damaged ("an L2 entry");
        }
        w->l2[i] = e;
    }
    for (i = 0; i < q->l2_entries; i++) {
        put_be64 (w->io + i * 8, w->l2[i]);
    }
    w->l2_ck = w->l2_hi;
    w->l2_dirty = w->l2_hi > 0;
    return bdev_pwrite (img->file, w->io, q->cluster_size, w->l2_host);
}

/* The current refcount block: the counts below the last cluster from its
 * cluster, the last one's from the state; written back whole. */
static int
ck_load_block (struct image *img, uint32_t last_count)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t first = w->cur_block * w->rb_entries, i;
    uint64_t last = w->next_cluster - 1 - first;

    if (ck_read_cluster (img, w->io, w->rtable[w->cur_block]) == -1) {
        return -1;
    }
    for (i = 0; i < w->rb_entries; i++) {
        w->rb[i] = i < last ? get_be16 (w->io + i * 2)
            : i == last ? (uint16_t) last_count : 0;
    }
    for (i = 0; i < w->rb_entries; i++) {
        put_be16 (w->io + i * 2, rb_value (w, i));
    }
    w->rb_ck = last + 1;
    return bdev_pwrite (img->file, w->io, q->cluster_size,
                        w->rtable[w->cur_block]);
}

int
qcow2_resume (struct image *img, const struct create_params *p,
              const void *state, size_t len)
{
    const unsigned char *s = state;
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w;
    uint64_t fsize, next, end, n1, per, rb_host, l2_index, l2_host, l2_hi;
    uint32_t last_count;

    if (qcow2_create (img, p) == -1) {
        return -1;
    }
    w = q->w;
    if (len != QCK_LEN || get_le32 (s + QCK_M) != QCK_MAGIC) {
        return ck_damaged ("not a qcow2 state");
    }
    if (get_le32 (s + QCK_BITS) != q->cluster_bits ||
        get_le32 (s + QCK_VERSION) != w->version ||
        get_le32 (s + QCK_FLAGS) != ck_flags (w)) {
        vmc_error ("qcow2: the image was started with other options");
        return -1;
    }
    per = q->cluster_size / 8;
    n1 = DIV_ROUND_UP (q->l1_size * 8ull, q->cluster_size);
    fsize = get_le64 (s + QCK_FSIZE);
    next = get_le64 (s + QCK_NEXT);
    w->cbyte = get_le64 (s + QCK_CBYTE);
    w->l1_region = get_le64 (s + QCK_L1);
    w->rt_region = get_le64 (s + QCK_RT);
    w->rt_clusters = get_le64 (s + QCK_RTC);
    w->l1_hi = get_le64 (s + QCK_L1HI);
    l2_index = get_le64 (s + QCK_L2IDX);
    l2_host = get_le64 (s + QCK_L2HOST);
    l2_hi = get_le64 (s + QCK_L2HI);
    w->cur_block = get_le64 (s + QCK_BLOCK);
    rb_host = get_le64 (s + QCK_RBHOST);
    last_count = get_le32 (s + QCK_LAST);

    /* Everything is bounded by the allocation point, which is bounded by
     * what an L2 entry can address. */
    if (next < 2 || next > (QL2_OFFSET_MASK >> q->cluster_bits)) {
        return ck_damaged ("allocation point");
    }
    end = next << q->cluster_bits;
    if (fsize > end || w->cbyte > end) {
        return ck_damaged ("file end");
    }
    if (img->file->size < fsize) {
        vmc_error ("qcow2: the file is shorter than at the checkpoint");
        return -1;
    }
    if (w->l1_region == 0 || w->l1_region > next - n1 ||
        w->rt_region == 0 || w->rt_clusters == 0 ||
        w->rt_clusters > next - w->rt_region ||
        w->rt_clusters * per > w->rtable_cap ||
        w->l1_hi > q->l1_needed) {
        return ck_damaged ("tables");
    }
    if (w->cur_block >= w->rt_clusters * per ||
        w->cur_block * w->rb_entries >= next ||
        next > (w->cur_block + 1) * w->rb_entries ||
        !ck_cluster_ok (q, next, rb_host) || last_count > 0xffff) {
        return ck_damaged ("refcount block");
    }
    if (l2_index != UINT64_MAX &&
        (l2_index >= q->l1_needed || l2_hi > q->l2_entries ||
         (l2_hi > 0 && l2_host == 0) ||
         (l2_host != 0 && (l2_hi == 0 || l2_index >= w->l1_hi ||
                           !ck_cluster_ok (q, next, l2_host))) ||
         (l2_hi > 0 && ((l2_index * q->l2_entries + l2_hi - 1) <<
                        q->cluster_bits) >= img->write_pos))) {
        return ck_damaged ("L2 table");
    }
    if (l2_index == UINT64_MAX && (l2_host != 0 || l2_hi != 0)) {
        return ck_damaged ("L2 table");
    }

    /* Cut off whatever was written after the checkpoint. */
    if (bdev_truncate (img->file, fsize) == -1) {
        return -1;
    }
    w->next_cluster = next;
    w->nblocks = w->cur_block;
    w->ck = true;
    if (ck_load_tables (img, rb_host) == -1) {
        return -1;
    }
    w->l1_ck = w->l1_hi;
    w->rt_ck = w->cur_block + 1;
    w->l2_index = l2_index;
    w->l2_host = l2_host;
    w->l2_hi = l2_hi;
    if (l2_host != 0) {
        q->l1[l2_index] = l2_host | QL2_COPIED;
        if (ck_load_l2 (img) == -1) {
            return -1;
        }
    }
    return ck_load_block (img, last_count);
}

void
qcow2_writer_free (struct image *img)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    unsigned t;

    if (w == NULL) {
        return;
    }
    free (w->l2);
    free (w->io);
    free (w->rb);
    free (w->rtable);
    if (w->have_worker) {
        pthread_mutex_lock (&w->lock);
        w->stop = true;
        pthread_cond_broadcast (&w->cond);
        pthread_mutex_unlock (&w->lock);
        pthread_join (w->worker, NULL);
        pthread_mutex_destroy (&w->lock);
        pthread_cond_destroy (&w->cond);
    }
    for (t = 0; t < 2; t++) {
        if (w->cc[t].zstream != NULL) {
            deflateEnd (w->cc[t].zstream);
            free (w->cc[t].zstream);
        }
        ZSTD_freeCCtx (w->cc[t].zstd);
        free (w->cc[t].pad);
    }
    free (w->items);
    free (w->cout);
    free (w);
    q->w = NULL;
}
