/* SPDX-License-Identifier: MIT */
/*
 * qcow2: what the reader (qcow2.c), the checker (qcow2-check.c) and the
 * writer (qcow2-write.c) share.  The design comment, the on-disk layout and
 * the limits are in qcow2.c.
 */
#ifndef VMC_QCOW2_H
#define VMC_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/image.h"

#define QCOW2_MAGIC 0x514649fbu         /* "QFI\xfb" */

/* Header field offsets (bytes from the start of the file, big-endian). */
#define QH_MAGIC                0
#define QH_VERSION              4
#define QH_BACKING_OFFSET       8
#define QH_BACKING_SIZE         16
#define QH_CLUSTER_BITS         20
#define QH_SIZE                 24
#define QH_CRYPT_METHOD         32
#define QH_L1_SIZE              36
#define QH_L1_OFFSET            40
#define QH_REFCOUNT_OFFSET      48
#define QH_REFCOUNT_CLUSTERS    56
#define QH_NB_SNAPSHOTS         60
#define QH_SNAPSHOTS_OFFSET     64
#define QH_V2_LENGTH            72      /* a version 2 header ends here */
#define QH_INCOMPATIBLE         72
#define QH_COMPATIBLE           80
#define QH_AUTOCLEAR            88
#define QH_REFCOUNT_ORDER       96
#define QH_HEADER_LENGTH        100
#define QH_V3_MIN_LENGTH        104
#define QH_COMPRESSION_TYPE     104     /* present if header_length > 104 */

/* Incompatible feature bits. */
#define QINC_DIRTY              (1ull << 0)
#define QINC_CORRUPT            (1ull << 1)
#define QINC_DATA_FILE          (1ull << 2)
#define QINC_COMPRESSION        (1ull << 3)
#define QINC_EXTENDED_L2        (1ull << 4)
#define QINC_KNOWN              0x1full

/* Compatible feature bits. */
#define QCOMPAT_LAZY_REFCOUNTS  (1ull << 0)

/* Header extension types. */
#define QEXT_END                0x00000000u
#define QEXT_BACKING_FORMAT     0xe2792acau
#define QEXT_FEATURE_TABLE      0x6803f857u
#define QEXT_BITMAPS            0x23852875u
#define QEXT_CRYPTO             0x0537be77u
#define QEXT_DATA_FILE          0x44415441u

/* Compression types (header byte 104). */
#define QCOMP_DEFLATE           0
#define QCOMP_ZSTD              1

/* L1 and L2 entries. */
#define QL1_OFFSET_MASK         0x00fffffffffffe00ull   /* bits 9-55 */
#define QL2_OFFSET_MASK         0x00fffffffffffe00ull   /* bits 9-55 */
#define QL2_COPIED              (1ull << 63)
#define QL2_COMPRESSED          (1ull << 62)
#define QL2_ZERO                (1ull << 0)
#define QL2_DESC_MASK           ((1ull << 62) - 1)      /* bits 0-61 */

/* Limits (see the design comment in qcow2.c). */
#define QCOW2_MAX_L1_BYTES      ((uint64_t) 32 << 20)  /* as qemu */
#define QCOW2_MAX_REFTABLE_BYTES ((uint64_t) 8 << 20)   /* as qemu */
#define QCOW2_MAX_SNAPSHOTS     65536           /* as qemu */
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024           /* as qemu */
#define QCOW2_MAX_SNAPSHOT_TABLE ((uint64_t) 64 << 20) /* as qemu */
#define QCOW2_L2_CACHE_BYTES    (4u << 20)
#define QCOW2_DBATCH            64      /* compressed clusters per batch */
#define QCOW2_MAX_BACKING_NAME  1023

struct qcow2_snapshot {
    uint64_t l1_offset;
    uint32_t l1_size;
};

struct qcow2_l2_slot {
    uint64_t offset;            /* host offset of the cached table, 0: free */
    uint64_t last_use;
    unsigned char *data;        /* one cluster, as on disk (big-endian) */
};

struct qcow2 {
    /* Header, decoded and validated. */
    uint32_t version;
    unsigned cluster_bits;
    uint64_t cluster_size;
    uint64_t header_length;
    uint64_t incompatible;
    uint64_t compatible;
    uint64_t autoclear;
    unsigned refcount_order;
    unsigned compression_type;
    bool extended_l2;
    uint32_t l1_size;           /* entries, as in the header */
    uint64_t l1_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t snapshots_bytes;   /* size of the snapshot table */
    uint64_t bitmap_dir_offset; /* 0 if no bitmaps extension */
    uint64_t bitmap_dir_size;
    uint32_t nb_bitmaps;

    /* Derived. */
    uint64_t l2_entries;        /* entries per L2 table */
    unsigned l2_entry_size;     /* 8, or 16 with extended L2 entries */
    uint64_t l1_needed;         /* entries that map the virtual size */
    unsigned csize_shift;       /* compressed descriptor: x */
    uint64_t csize_mask;        /* additional sectors field mask */
    uint64_t coffset_mask;      /* host offset field mask */

    uint64_t *l1;               /* l1_needed entries, host order */
    struct qcow2_snapshot *snapshots;

    /* L2 cache. */
    struct qcow2_l2_slot *l2_cache;
    unsigned l2_slots;
    uint64_t l2_clock;

    /* Compressed clusters: the last one decompressed (for partial reads),
     * one decompressor per thread (made on first use), and a batch of
     * whole clusters decompressed by the calling thread and a helper. */
    unsigned char *dbuf;        /* the last decompressed cluster */
    uint64_t dbuf_entry;        /* its L2 entry; 0 when empty */
    struct qcow2_dec {
        unsigned char *cbuf;    /* compressed input, up to 2 clusters */
        void *zstream;          /* z_stream * */
        void *zstd;             /* ZSTD_DCtx * */
    } dec[2];
    struct qcow2_ditem {
        uint64_t entry;
        uint64_t guest;
        unsigned char *out;     /* one whole cluster of the caller's buffer */
        int r;
    } *ditems;
    unsigned nditems;
    unsigned next_ditem;        /* atomic */
    bool have_dworker;
    bool dstop;
    unsigned dgen, dworker_gen;
    pthread_t dworker;
    pthread_mutex_t dlock;
    pthread_cond_t dcond;

    /* Writer state (qcow2-write.c). */
    struct qcow2_writer *w;
};

/* Reader helpers shared with the checker. */
const unsigned char *qcow2_load_l2 (struct image *img, uint64_t l2_offset,
                                    uint64_t guest_offset);
bool qcow2_parse_compressed (const struct qcow2 *q, uint64_t entry,
                             uint64_t *host, uint64_t *len);

/* Checker (qcow2-check.c). */
int qcow2_check (struct image *img, struct check_result *res);

/* Writer (qcow2-write.c). */
extern const struct create_option qcow2_create_opts[];
int qcow2_create (struct image *img, const struct create_params *p);
int qcow2_pwrite (struct image *img, const void *buf, size_t count,
                  uint64_t offset);
int qcow2_finish (struct image *img);
int qcow2_checkpoint (struct image *img, void *state, size_t *len);
int qcow2_resume (struct image *img, const struct create_params *p,
                  const void *state, size_t len);
void qcow2_writer_free (struct image *img);

#endif
