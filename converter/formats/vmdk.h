/* SPDX-License-Identifier: MIT */
/*
 * vmdk: shared declarations of the VMDK reader and writers.
 *
 * The format is split by concern:
 *   vmdk.c             probe, open (extent assembly), pread, block_status,
 *                      check, the ops table
 *   vmdk-descriptor.c  the text descriptor parser
 *   vmdk-sparse.c      hosted sparse extents (monolithicSparse,
 *                      twoGbMaxExtentSparse, streamOptimized): header,
 *                      grain directory, grain tables, compressed grains
 *   vmdk-write.c       the monolithicSparse and streamOptimized writers
 *
 * Spec: VMware "Virtual Disk Format 1.1" technote (and 5.0 for the
 * zeroed-grain GTE).  See vmdk.c for the design comment and limits.
 */
#ifndef VMC_VMDK_H
#define VMC_VMDK_H

#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "../lib/image.h"

#define VMDK_SECTOR 512u

/* Limits enforced on hostile input (see the design comment in vmdk.c). */
#define VMDK_DESC_MAX (1u << 20)        /* descriptor text, bytes */
#define VMDK_MAX_EXTENTS 4096u          /* extent lines in a descriptor */
#define VMDK_MAX_GRAIN_SECTORS 2048u    /* 1 MiB grains */
#define VMDK_GTES_PER_GT 512u           /* the only value VMware uses */
#define VMDK_GT_BYTES (VMDK_GTES_PER_GT * 4u)
#define VMDK_GD_CAP (4u << 20)          /* one grain directory, bytes */
#define VMDK_GD_TOTAL_CAP (16u << 20)   /* all grain directories, bytes */
#define VMDK_MAX_SECTORS (1ULL << 47)   /* 64 PiB virtual size */
#define VMDK_GT_CACHE 256u              /* cached grain tables (512 KiB) */
#define VMDK_CWIN_MIN (4u << 20)        /* compressed read window, bytes */
#define VMDK_ZBATCH 64u                 /* grains inflated per batch */

/* On-disk constants. */
#define VMDK_MAGIC 0x564d444bu          /* "KDMV" as a little-endian u32 */
#define VMDK_COWD_MAGIC 0x44574f43u     /* "COWD": ESX sparse (VMFSSPARSE) */
#define VMDK_GD_AT_END 0xffffffffffffffffULL

#define VMDK_FLAG_NL_DETECT (1u << 0)   /* valid newline detection test */
#define VMDK_FLAG_RGD (1u << 1)         /* redundant grain table in use */
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)  /* GTE 1 means "zeroed grain" */
#define VMDK_FLAG_COMPRESSED (1u << 16) /* grains are compressed */
#define VMDK_FLAG_MARKERS (1u << 17)    /* there are markers */
#define VMDK_FLAGS_KNOWN (VMDK_FLAG_NL_DETECT | VMDK_FLAG_RGD | \
                          VMDK_FLAG_ZERO_GRAIN | VMDK_FLAG_COMPRESSED | \
                          VMDK_FLAG_MARKERS)
#define VMDK_FLAGS_INCOMPAT 0xffff0000u /* bits a reader must understand */

#define VMDK_COMPRESS_NONE 0
#define VMDK_COMPRESS_DEFLATE 1

#define VMDK_MARKER_EOS 0
#define VMDK_MARKER_GT 1
#define VMDK_MARKER_GD 2
#define VMDK_MARKER_FOOTER 3

/* Size of a grain marker before the compressed bytes: lba (u64) + size
 * (u32). */
#define VMDK_GRAIN_MARKER 12u

/*
 * COWDisk_Header (ESX sparse extent, VMFSSPARSE), 2048 bytes, little-endian:
 *
 *   0 u32 magicNumber "COWD"        16 u32 granularity (sectors per grain)
 *   4 u32 version (1)               20 u32 rootOffset (sector of the GD)
 *   8 u32 flags (1 root, 2 check-   24 u32 numRootEntries
 *         capable, 4 inconsistent)  28 u32 freeSector
 *  12 u32 numSectors                32 ... parent name, generation, name,
 *                                         description (unused here)
 *
 * The GD ("root entries") holds u32 sectors of grain tables of 4096 u32
 * entries; an entry is the sector of its grain, 0 = in the parent.
 */
#define VMDK_COWD_GTES 4096u
#define VMDK_COWD_FLAG_ROOT 1u

/*
 * SparseExtentHeader, 512 bytes, little-endian, packed:
 *
 *   0  u32 magicNumber        "KDMV"
 *   4  u32 version            1, 2 (zeroed-grain GTEs) or 3 (stream / CBT)
 *   8  u32 flags              VMDK_FLAG_*
 *  12  u64 capacity           sectors of the extent
 *  20  u64 grainSize          sectors per grain, a power of 2
 *  28  u64 descriptorOffset   sector of the embedded descriptor, or 0
 *  36  u64 descriptorSize     sectors of the embedded descriptor
 *  44  u32 numGTEsPerGT       512
 *  48  u64 rgdOffset          sector of the redundant grain directory
 *  56  u64 gdOffset           sector of the grain directory (GD_AT_END:
 *                             in the footer, stream-optimized only)
 *  64  u64 overHead           sectors of metadata before the first grain
 *  72  u8  uncleanShutdown
 *  73  u8  singleEndLineChar  '\n'
 *  74  u8  nonEndLineChar     ' '
 *  75  u8  doubleEndLineChar1 '\r'
 *  76  u8  doubleEndLineChar2 '\n'
 *  77  u16 compressAlgorithm  0 none, 1 deflate
 *  79  pad to 512
 */
struct vmdk_header {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint64_t capacity;
    uint64_t grain_size;
    uint64_t desc_offset;
    uint64_t desc_size;
    uint32_t num_gtes_per_gt;
    uint64_t rgd_offset;
    uint64_t gd_offset;
    uint64_t overhead;
    uint8_t unclean;
    uint8_t nl[4];
    uint16_t compress;
};

void vmdk_header_decode (const unsigned char *b, struct vmdk_header *h);
void vmdk_header_encode (unsigned char *b, const struct vmdk_header *h);

/* Marker (streamOptimized), one sector:
 *   0 u64 val    sectors of metadata that follow (or the grain's LBA)
 *   8 u32 size   0 for a metadata marker (else compressed byte count)
 *  12 u32 type   VMDK_MARKER_*
 */

/* ---- descriptor (vmdk-descriptor.c) ---- */

enum vmdk_access { VMDK_RW, VMDK_RDONLY, VMDK_NOACCESS };

enum vmdk_ext_type {
    VMDK_EXT_SPARSE,    /* hosted sparse extent (KDMV) */
    VMDK_EXT_FLAT,      /* FLAT, and VMFS (ESXi flat, thin or thick) */
    VMDK_EXT_ZERO,      /* reads as zeros, no file */
};

struct vmdk_desc_extent {
    enum vmdk_access access;
    enum vmdk_ext_type type;
    uint64_t sectors;
    uint64_t offset;    /* sectors into the file (flat only) */
    char *file;         /* NULL for ZERO */
};

struct vmdk_desc {
    unsigned version;
    uint32_t cid, parent_cid;
    bool has_cid, has_parent_cid;
    char create_type[48];
    char *parent_hint;  /* parentFileNameHint, or NULL */
    char adapter[32];   /* ddb.adapterType */
    char hwversion[16]; /* ddb.virtualHWVersion */
    struct vmdk_desc_extent *ext;
    unsigned n_ext;
};

/* Parse LEN bytes of descriptor text (a NUL ends it early).  -1 with a
 * "vmdk: ..." message on malformed input. */
int vmdk_desc_parse (const char *text, size_t len, struct vmdk_desc *d);
void vmdk_desc_free (struct vmdk_desc *d);

/* Does this look like a descriptor file?  Pure, for probing. */
bool vmdk_desc_probe (const unsigned char *head, size_t len,
                      uint64_t file_size);

/* ---- extents and reader state (vmdk.c, vmdk-sparse.c) ---- */

struct vmdk_sparse {
    struct vmdk_header h;       /* the header in use (footer if at end) */
    uint64_t file_size;
    uint64_t grain_bytes;
    unsigned grain_shift;
    uint64_t cap_bytes;         /* bytes this extent serves */
    uint32_t n_gd;              /* grain tables of 512 entries */
    uint32_t *gd;               /* host order, n_gd / gd_mult entries */
    unsigned gd_mult;           /* 512-entry tables per GD entry: 1, or
                                 * 8 for COWD (4096-entry tables) */
    bool compressed, zero_grain, has_rgd, cowd;
    uint32_t cowd_roots;        /* COWD numRootEntries */
};

/* Sector of 512-entry grain table GT, 0 when it has none. */
static inline uint32_t
vmdk_gt_sector (const struct vmdk_sparse *sp, uint64_t gt)
{
    uint32_t s = sp->gd[gt / sp->gd_mult];

    return s == 0 ? 0
        : s + (uint32_t) (gt % sp->gd_mult) * (VMDK_GTES_PER_GT * 4 / 512);
}

struct vmdk_extent {
    enum vmdk_ext_type type;
    uint64_t start, length;     /* guest bytes */
    struct blockdev *bd;        /* NULL for ZERO */
    uint64_t flat_offset;       /* bytes, flat only */
    const char *name;           /* for messages (points into desc) */
    struct vmdk_sparse *sp;     /* sparse only */
};

struct vmdk_gt_slot {
    uint32_t ext;               /* extent index + 1; 0 = empty */
    uint32_t gt;
    uint32_t e[VMDK_GTES_PER_GT];
};

struct vmdk_writer;
struct vmdk_inflater;

/* One compressed grain to inflate straight into the caller's buffer. */
struct vmdk_zitem {
    const unsigned char *src;   /* zlib stream, inside the read window */
    uint32_t size;
    unsigned char *dst;         /* one whole grain */
    uint64_t sector;            /* of the marker, for messages */
    unsigned ei;
    int status;                 /* 0 ok, 1 too long, 2 corrupt, 3 short */
    uint64_t got;
};

struct vmdk {
    struct vmdk_desc desc;
    struct vmdk_extent *ext;
    unsigned n_ext;
    unsigned hint;              /* last extent used */
    uint64_t gd_total;          /* bytes of all loaded GDs */
    struct vmdk_gt_slot *gtc;   /* VMDK_GT_CACHE slots, made on first use */

    /* Compressed grains: a read window over the file, one decompressed
     * grain cached, and a reusable inflate stream. */
    unsigned char *cwin;
    size_t cwin_size, cwin_len;
    uint64_t cwin_off;
    const struct blockdev *cwin_bd;
    unsigned char *grain;
    size_t grain_size;
    bool grain_valid;
    unsigned grain_ext;
    uint64_t grain_idx;
    z_stream zs;
    bool zs_ready;

    /* Whole compressed grains of one read are inflated as a batch, on
     * this thread and a helper thread (started on first use). */
    struct vmdk_zitem zbatch[VMDK_ZBATCH];
    unsigned zn;
    struct vmdk_inflater *zw;
    bool zw_failed;

    bool parent_checked;        /* the parent's CID was compared */

    struct vmdk_writer *w;      /* writing only */
};

/* What a GTE says about one grain. */
enum vmdk_gkind { VMDK_G_UNALLOC, VMDK_G_ZERO, VMDK_G_DATA };

/* Open the sparse extent in BD serving SECTORS sectors (0: its capacity),
 * validating everything before use.  Sets *out. */
int vmdk_sparse_open (struct image *img, struct blockdev *bd,
                      const char *name, uint64_t sectors,
                      struct vmdk_sparse **out);
void vmdk_sparse_free (struct vmdk_sparse *sp);

/* Map grain GIDX of extent EI: kind and (for data) the sector of the grain
 * (or of its marker when compressed). */
int vmdk_sparse_lookup (struct image *img, unsigned ei, uint64_t gidx,
                        enum vmdk_gkind *kind, uint64_t *sector);

/* Read [off, off+len) of sparse extent EI (extent-relative bytes). */
int vmdk_sparse_pread (struct image *img, unsigned ei, unsigned char *buf,
                       uint64_t len, uint64_t off);

/* How many bytes from OFF (extent-relative) up to MAX are of one kind;
 * bounded work per call. */
int vmdk_sparse_status (struct image *img, unsigned ei, uint64_t off,
                        uint64_t max, enum vmdk_gkind *kind, uint64_t *len);

/* Stop and free the inflate helper thread; NULL is fine. */
void vmdk_inflater_free (struct vmdk_inflater *zw);

/* Deep check of sparse extent EI. */
int vmdk_sparse_check (struct image *img, unsigned ei,
                       struct check_result *res);

/* ---- writers (vmdk-write.c) ---- */

extern const struct create_option vmdk_create_opts[];
int vmdk_create (struct image *img, const struct create_params *p);
int vmdk_pwrite (struct image *img, const void *buf, size_t count,
                 uint64_t offset);
int vmdk_finish (struct image *img);
int vmdk_checkpoint (struct image *img, void *state, size_t *len);
int vmdk_resume (struct image *img, const struct create_params *p,
                 const void *state, size_t len);
void vmdk_writer_free (struct vmdk_writer *w);

#endif
