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

/* Write refcount block cur_block to a newly allocated cluster.  Entries for
 * clusters below next_cluster count 1 unless the block buffer says more. */
static int
flush_block (struct image *img)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t b, i, c, first = w->cur_block * w->rb_entries, used = 0;
    uint16_t v;

    b = w->next_cluster++;
    if (w->cur_block >= w->rtable_cap) {
        vmc_error ("%s: qcow2: the refcount table would exceed %" PRIu64
                   " bytes; use a larger cluster_size", img->filename,
                   QCOW2_MAX_REFTABLE_BYTES);
        return -1;
    }
    for (i = 0; i < w->rb_entries; i++) {
        c = first + i;
        v = w->rb[i] != 0 ? w->rb[i] : (c < w->next_cluster ? 1 : 0);
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
    if (alloc_clusters (img, 1, &c) == -1) {
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

int
qcow2_finish (struct image *img)
{
    struct qcow2 *q = img->priv;
    struct qcow2_writer *w = q->w;
    uint64_t n1, l1c, i, j, k, T, B, nb, total, rt, per, used;

    if (flush_l2 (img) == -1) {
        return -1;
    }
    /* The L1 table, contiguous (allocation bumps next_cluster first, so
     * refcount blocks flushed by settle() land after it). */
    n1 = DIV_ROUND_UP (q->l1_size * 8ull, q->cluster_size);
    if (alloc_clusters (img, n1, &l1c) == -1) {
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
        if (write_meta (img, w->io, used,
                        (l1c + i) << q->cluster_bits) == -1) {
            return -1;
        }
    }

    /* Size the refcount table: it and the blocks still to write must be
     * covered by the blocks it lists.  Iterate to a fixed point. */
    T = 1;
    B = 1;
    for (k = 0; k < 64; k++) {
        total = w->next_cluster + T + B;
        nb = DIV_ROUND_UP (total, w->rb_entries);
        if (nb * 8 > QCOW2_MAX_REFTABLE_BYTES) {
            vmc_error ("%s: qcow2: the refcount table would exceed %" PRIu64
                       " bytes; use a larger cluster_size", img->filename,
                       QCOW2_MAX_REFTABLE_BYTES);
            return -1;
        }
        if (nb - w->cur_block + 1 <= B &&
            DIV_ROUND_UP (nb * 8, q->cluster_size) <= T) {
            break;
        }
        B = MAX (B, nb - w->cur_block + 1);
        T = MAX (T, DIV_ROUND_UP (nb * 8, q->cluster_size));
    }
    if (alloc_clusters (img, T, &rt) == -1) {
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
        if (write_meta (img, w->io, used,
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
