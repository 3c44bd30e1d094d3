/* SPDX-License-Identifier: MIT */
/*
 * vmdk: hosted sparse extents (VMDK 1.1 technote, "Hosted Sparse Extents"
 * and "Stream-Optimized Compressed Sparse Extents").
 *
 * Layout of a sparse extent (sectors of 512 bytes):
 *
 *   0            SparseExtentHeader (see vmdk.h)
 *   1..          embedded descriptor (descriptorOffset, descriptorSize)
 *   rgdOffset    redundant grain directory, then its grain tables
 *   gdOffset     grain directory: u32 sector of each grain table, 0 = none
 *   ...          grain tables: 512 x u32 GTE, the sector of each grain;
 *                0 = unallocated (parent or zeros), 1 = zeroed grain when
 *                the zeroed-grain flag is set
 *   overHead..   grains
 *
 * Stream-optimized extents (compressed grains, markers): each grain is
 *
 *   u64 lba (sector of the grain in the extent), u32 size, size bytes of a
 *   zlib (RFC 1950) stream, padded to a sector
 *
 * and the GTE points to that marker.  Grain tables and the directory are
 * preceded by a metadata marker sector (u64 sectors, u32 0, u32 type), and
 * when the header's gdOffset is GD_AT_END the real header is the footer:
 * the last three sectors are the footer marker, the footer (a header copy
 * with gdOffset set) and the end-of-stream marker.
 *
 * ESX sparse extents (COWD, "VMFSSPARSE"; see vmdk.h) have a 2048-byte
 * header, u32 fields, and grain tables of 4096 entries: each directory
 * entry is read as 8 consecutive tables of 512 entries, so everything
 * below serves both kinds.
 *
 * Validation: every header field is checked before use; the grain
 * directory is loaded whole (at most VMDK_GD_CAP bytes per extent and
 * VMDK_GD_TOTAL_CAP for the disk) and each entry checked against the file
 * size; grain tables are loaded on demand into a small direct-mapped cache
 * and every entry in use is checked against the file size when loaded.
 * Compressed grains: the marker's LBA must be the grain's, the size is
 * bounded (grain + 1/256 + 1 KiB), and the data must inflate to exactly
 * one grain (the last grain may be shorter, down to what the disk needs).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/rounding.h"
#include "vmdk.h"

void
vmdk_header_decode (const unsigned char *b, struct vmdk_header *h)
{
    h->magic = get_le32 (b + 0);
    h->version = get_le32 (b + 4);
    h->flags = get_le32 (b + 8);
    h->capacity = get_le64 (b + 12);
    h->grain_size = get_le64 (b + 20);
    h->desc_offset = get_le64 (b + 28);
    h->desc_size = get_le64 (b + 36);
    h->num_gtes_per_gt = get_le32 (b + 44);
    h->rgd_offset = get_le64 (b + 48);
    h->gd_offset = get_le64 (b + 56);
    h->overhead = get_le64 (b + 64);
    h->unclean = b[72];
    memcpy (h->nl, b + 73, 4);
    h->compress = get_le16 (b + 77);
}

void
vmdk_header_encode (unsigned char *b, const struct vmdk_header *h)
{
    memset (b, 0, VMDK_SECTOR);
    put_le32 (b + 0, h->magic);
    put_le32 (b + 4, h->version);
    put_le32 (b + 8, h->flags);
    put_le64 (b + 12, h->capacity);
    put_le64 (b + 20, h->grain_size);
    put_le64 (b + 28, h->desc_offset);
    put_le64 (b + 36, h->desc_size);
    put_le32 (b + 44, h->num_gtes_per_gt);
    put_le64 (b + 48, h->rgd_offset);
    put_le64 (b + 56, h->gd_offset);
    put_le64 (b + 64, h->overhead);
    b[72] = h->unclean;
    memcpy (b + 73, h->nl, 4);
    put_le16 (b + 77, h->compress);
}

/* Is [sector, sector + bytes) inside a file of SIZE bytes? */
static bool
sectors_inside (uint64_t sector, uint64_t bytes, uint64_t size)
{
    uint64_t off;

    return !ckd_mul (&off, sector, (uint64_t) VMDK_SECTOR) &&
        !range_outside (off, bytes, size);
}

static int
validate_header (const struct vmdk_header *h, const char *name,
                 uint64_t fsize, const char *what)
{
    if (h->magic != VMDK_MAGIC) {
        vmc_error ("vmdk: %s: %s magic is not KDMV", name, what);
        return -1;
    }
    if (h->version < 1 || h->version > 3) {
        vmc_error ("vmdk: %s: %s version %" PRIu32 " is not supported (1-3)",
                   name, what, h->version);
        return -1;
    }
    if (h->flags & VMDK_FLAGS_INCOMPAT & ~VMDK_FLAGS_KNOWN) {
        vmc_error ("vmdk: %s: %s flags 0x%" PRIx32 " have unknown "
                   "incompatible bits", name, what, h->flags);
        return -1;
    }
    if ((h->flags & VMDK_FLAG_NL_DETECT) && memcmp (h->nl, "\n \r\n", 4) != 0) {
        vmc_error ("vmdk: %s: %s newline detection bytes are damaged (was "
                   "the file transferred as text?)", name, what);
        return -1;
    }
    if (h->compress != VMDK_COMPRESS_NONE &&
        h->compress != VMDK_COMPRESS_DEFLATE) {
        vmc_error ("vmdk: %s: %s compressAlgorithm %u is not supported",
                   name, what, h->compress);
        return -1;
    }
    if ((h->flags & VMDK_FLAG_COMPRESSED) &&
        h->compress != VMDK_COMPRESS_DEFLATE) {
        vmc_error ("vmdk: %s: %s flags say compressed grains but "
                   "compressAlgorithm is %u", name, what, h->compress);
        return -1;
    }
    if (h->compress == VMDK_COMPRESS_DEFLATE &&
        !(h->flags & VMDK_FLAG_MARKERS)) {
        vmc_error ("vmdk: %s: %s compressed grains without markers are not "
                   "supported", name, what);
        return -1;
    }
    if (!is_power_of_2 (h->grain_size) ||
        h->grain_size > VMDK_MAX_GRAIN_SECTORS) {
        vmc_error ("vmdk: %s: %s grainSize %" PRIu64 " is not a power of 2 "
                   "up to %u sectors", name, what, h->grain_size,
                   VMDK_MAX_GRAIN_SECTORS);
        return -1;
    }
    if (h->num_gtes_per_gt != VMDK_GTES_PER_GT) {
        vmc_error ("vmdk: %s: %s numGTEsPerGT %" PRIu32 " is not %u", name,
                   what, h->num_gtes_per_gt, VMDK_GTES_PER_GT);
        return -1;
    }
    if (h->capacity > VMDK_MAX_SECTORS) {
        vmc_error ("vmdk: %s: %s capacity %" PRIu64 " sectors is too large "
                   "(limit %llu)", name, what, h->capacity,
                   (unsigned long long) VMDK_MAX_SECTORS);
        return -1;
    }
    if (h->desc_offset != 0 &&
        (h->desc_size > VMDK_DESC_MAX / VMDK_SECTOR ||
         !sectors_inside (h->desc_offset, h->desc_size * VMDK_SECTOR,
                          fsize))) {
        vmc_error ("vmdk: %s: %s descriptorOffset %" PRIu64 " / "
                   "descriptorSize %" PRIu64 " is outside the file or over "
                   "%u bytes", name, what, h->desc_offset, h->desc_size,
                   VMDK_DESC_MAX);
        return -1;
    }
    if (h->gd_offset != VMDK_GD_AT_END &&
        (h->gd_offset == 0 || !sectors_inside (h->gd_offset, 4, fsize))) {
        vmc_error ("vmdk: %s: %s gdOffset %" PRIu64 " is outside the file",
                   name, what, h->gd_offset);
        return -1;
    }
    if ((h->flags & VMDK_FLAG_RGD) && h->rgd_offset != 0 &&
        !sectors_inside (h->rgd_offset, 4, fsize)) {
        vmc_error ("vmdk: %s: %s rgdOffset %" PRIu64 " is outside the file",
                   name, what, h->rgd_offset);
        return -1;
    }
    return 0;
}

/* The footer of a stream-optimized extent: the last three sectors are the
 * footer marker, the header copy and the end-of-stream marker. */
static int
read_footer (struct blockdev *bd, const char *name, struct vmdk_header *h)
{
    unsigned char b[3 * VMDK_SECTOR];
    uint64_t end = ROUND_DOWN (bd->size, (uint64_t) VMDK_SECTOR);

    if (end < 4 * VMDK_SECTOR) {
        vmc_error ("vmdk: %s: gdOffset is GD_AT_END but the file is too "
                   "small for a footer", name);
        return -1;
    }
    if (bdev_pread (bd, b, sizeof b, end - sizeof b) == -1) {
        return -1;
    }
    if (get_le32 (b + 8) != 0 || get_le32 (b + 12) != VMDK_MARKER_FOOTER) {
        vmc_error ("vmdk: %s: footer marker is missing or damaged", name);
        return -1;
    }
    if (get_le64 (b + 1024) != 0 || get_le32 (b + 1032) != 0 ||
        get_le32 (b + 1036) != VMDK_MARKER_EOS) {
        vmc_error ("vmdk: %s: end-of-stream marker after the footer is "
                   "missing or damaged", name);
        return -1;
    }
    vmdk_header_decode (b + VMDK_SECTOR, h);
    if (validate_header (h, name, bd->size, "footer") == -1) {
        return -1;
    }
    if (h->gd_offset == VMDK_GD_AT_END) {
        vmc_error ("vmdk: %s: footer gdOffset is GD_AT_END too", name);
        return -1;
    }
    return 0;
}

/* An ESX sparse (COWD) header, as the equivalent hosted sparse header
 * with 8 x 512-entry tables per directory entry. */
static int
cowd_header (const unsigned char *b, const char *name, uint64_t fsize,
             struct vmdk_sparse *sp)
{
    uint32_t version = get_le32 (b + 4), gran = get_le32 (b + 16);
    uint32_t root = get_le32 (b + 20);

    if (version != 1) {
        vmc_error ("vmdk: %s: COWD version %" PRIu32 " is not supported (1)",
                   name, version);
        return -1;
    }
    if (!is_power_of_2 (gran) || gran > VMDK_MAX_GRAIN_SECTORS) {
        vmc_error ("vmdk: %s: COWD granularity %" PRIu32 " is not a power "
                   "of 2 up to %u sectors", name, gran,
                   VMDK_MAX_GRAIN_SECTORS);
        return -1;
    }
    if (root < 4 || !sectors_inside (root, 4, fsize)) {
        vmc_error ("vmdk: %s: COWD rootOffset %" PRIu32 " is outside the "
                   "file", name, root);
        return -1;
    }
    memset (&sp->h, 0, sizeof sp->h);
    sp->h.magic = VMDK_COWD_MAGIC;
    sp->h.version = version;
    sp->h.flags = get_le32 (b + 8);
    sp->h.capacity = get_le32 (b + 12);
    sp->h.grain_size = gran;
    sp->h.num_gtes_per_gt = VMDK_COWD_GTES;
    sp->h.gd_offset = root;
    sp->h.overhead = 4;
    sp->cowd = true;
    sp->cowd_roots = get_le32 (b + 24);
    sp->gd_mult = VMDK_COWD_GTES / VMDK_GTES_PER_GT;
    return 0;
}

void
vmdk_sparse_free (struct vmdk_sparse *sp)
{
    if (sp != NULL) {
        free (sp->gd);
        free (sp);
    }
}

int
vmdk_sparse_open (struct image *img, struct blockdev *bd, const char *name,
                  uint64_t sectors, struct vmdk_sparse **out)
{
    struct vmdk *v = img->priv;
    unsigned char b[VMDK_SECTOR];
    struct vmdk_sparse *sp;
    uint64_t grains, n_gd, i;

    *out = NULL;
    if (bd->size < VMDK_SECTOR) {
        vmc_error ("vmdk: %s: file is too small for a sparse header", name);
        return -1;
    }
    if (bdev_pread (bd, b, sizeof b, 0) == -1) {
        return -1;
    }
    sp = calloc (1, sizeof *sp);
    if (sp == NULL) {
        vmc_perror ("vmdk");
        return -1;
    }
    sp->file_size = bd->size;
    sp->gd_mult = 1;
    if (get_le32 (b) == VMDK_COWD_MAGIC) {
        if (cowd_header (b, name, bd->size, sp) == -1) {
            goto fail;
        }
    }
    else {
        vmdk_header_decode (b, &sp->h);
        if (validate_header (&sp->h, name, bd->size, "header") == -1) {
            goto fail;
        }
        if (sp->h.gd_offset == VMDK_GD_AT_END &&
            read_footer (bd, name, &sp->h) == -1) {
            goto fail;
        }
    }
    if (sectors == 0) {
        sectors = sp->h.capacity;
    }
    else if (sectors > sp->h.capacity) {
        vmc_error ("vmdk: %s: the descriptor gives the extent %" PRIu64
                   " sectors but its capacity is %" PRIu64, name, sectors,
                   sp->h.capacity);
        goto fail;
    }
    sp->compressed = sp->h.compress == VMDK_COMPRESS_DEFLATE;
    sp->zero_grain = (sp->h.flags & VMDK_FLAG_ZERO_GRAIN) != 0;
    sp->has_rgd = (sp->h.flags & VMDK_FLAG_RGD) && sp->h.rgd_offset != 0;
    sp->grain_bytes = sp->h.grain_size * VMDK_SECTOR;
    sp->grain_shift = log2_u64 (sp->grain_bytes);
    sp->cap_bytes = sectors * VMDK_SECTOR;
    grains = DIV_ROUND_UP (sectors, sp->h.grain_size);
    n_gd = DIV_ROUND_UP (grains, (uint64_t) VMDK_GTES_PER_GT);
    sp->n_gd = (uint32_t) MIN (n_gd, (uint64_t) UINT32_MAX);
    /* The directory on disk: COWD entries each cover gd_mult tables. */
    n_gd = DIV_ROUND_UP (n_gd, (uint64_t) sp->gd_mult);
    if (n_gd * 4 > VMDK_GD_CAP || v->gd_total + n_gd * 4 > VMDK_GD_TOTAL_CAP) {
        vmc_error ("vmdk: %s: grain directory of %" PRIu64 " entries is too "
                   "large (limit %u bytes per extent, %u in all)", name, n_gd,
                   VMDK_GD_CAP, VMDK_GD_TOTAL_CAP);
        goto fail;
    }
    if (sp->cowd && n_gd > sp->cowd_roots) {
        vmc_error ("vmdk: %s: numRootEntries %" PRIu32 " is too small for %"
                   PRIu64 " sectors", name, sp->cowd_roots, sectors);
        goto fail;
    }
    if (!sectors_inside (sp->h.gd_offset, n_gd * 4, bd->size)) {
        vmc_error ("vmdk: %s: grain directory at sector %" PRIu64 " (%"
                   PRIu64 " entries) runs past the end of the file", name,
                   sp->h.gd_offset, n_gd);
        goto fail;
    }
    sp->gd = image_alloc_table (img, "grain directory", n_gd, 4, VMDK_GD_CAP);
    if (sp->gd == NULL) {
        goto fail;
    }
    if (n_gd > 0 &&
        bdev_pread (bd, sp->gd, n_gd * 4, sp->h.gd_offset * VMDK_SECTOR)
        == -1) {
        goto fail;
    }
    for (i = 0; i < n_gd; i++) {
        sp->gd[i] = le32toh (sp->gd[i]);
        if (sp->gd[i] != 0 &&
            !sectors_inside (sp->gd[i], VMDK_GT_BYTES * sp->gd_mult,
                             bd->size)) {
            vmc_error ("vmdk: %s: grain directory entry %" PRIu64 " points "
                       "past the end of the file (sector %" PRIu32 ")", name,
                       i, sp->gd[i]);
            goto fail;
        }
    }
    v->gd_total += n_gd * 4;
    *out = sp;
    return 0;
fail:
    vmdk_sparse_free (sp);
    return -1;
}

/* Bytes of grain GIDX that the extent serves (the last may be short). */
static uint64_t
grain_valid_bytes (const struct vmdk_sparse *sp, uint64_t gidx)
{
    uint64_t start = gidx << sp->grain_shift;

    return MIN (sp->grain_bytes, sp->cap_bytes - start);
}

/* Check one GTE of grain GIDX; false with a message when it is bad. */
static bool
gte_ok (const struct vmdk_extent *e, uint64_t gt, unsigned j, uint32_t gte)
{
    const struct vmdk_sparse *sp = e->sp;
    uint64_t gidx = gt * VMDK_GTES_PER_GT + j, need;

    if (gte == 0 || (gte == 1 && sp->zero_grain) ||
        (gidx << sp->grain_shift) >= sp->cap_bytes) {
        return true;
    }
    need = sp->compressed ? VMDK_GRAIN_MARKER : grain_valid_bytes (sp, gidx);
    if (!sectors_inside (gte, need, sp->file_size)) {
        vmc_error ("vmdk: %s: grain table %" PRIu64 " entry %u points past "
                   "the end of the file (sector %" PRIu32 ")", e->name, gt, j,
                   gte);
        return false;
    }
    return true;
}

/* The cached grain table GT of extent EI, loading and validating it. */
static const uint32_t *
get_gt (struct image *img, unsigned ei, uint64_t gt)
{
    struct vmdk *v = img->priv;
    struct vmdk_extent *e = &v->ext[ei];
    struct vmdk_gt_slot *s;
    unsigned j;

    if (v->gtc == NULL) {
        v->gtc = calloc (VMDK_GT_CACHE, sizeof *v->gtc);
        if (v->gtc == NULL) {
            vmc_perror ("vmdk: grain table cache");
            return NULL;
        }
    }
    s = &v->gtc[(gt + (uint64_t) ei * 7919) % VMDK_GT_CACHE];
    if (s->ext == ei + 1 && s->gt == gt) {
        return s->e;
    }
    s->ext = 0;
    if (bdev_pread (e->bd, s->e, VMDK_GT_BYTES,
                    (uint64_t) vmdk_gt_sector (e->sp, gt) * VMDK_SECTOR)
        == -1) {
        return NULL;
    }
    for (j = 0; j < VMDK_GTES_PER_GT; j++) {
        s->e[j] = le32toh (s->e[j]);
        if (!gte_ok (e, gt, j, s->e[j])) {
            return NULL;
        }
    }
    s->ext = ei + 1;
    s->gt = (uint32_t) gt;
    return s->e;
}

int
vmdk_sparse_lookup (struct image *img, unsigned ei, uint64_t gidx,
                    enum vmdk_gkind *kind, uint64_t *sector)
{
    struct vmdk *v = img->priv;
    const struct vmdk_sparse *sp = v->ext[ei].sp;
    uint64_t gt = gidx / VMDK_GTES_PER_GT;
    const uint32_t *t;
    uint32_t gte;

    if (gt >= sp->n_gd) {
        vmc_error ("vmdk: internal error: grain %" PRIu64 " out of range",
                   gidx);
        return -1;
    }
    if (vmdk_gt_sector (sp, gt) == 0) {
        *kind = VMDK_G_UNALLOC;
        return 0;
    }
    t = get_gt (img, ei, gt);
    if (t == NULL) {
        return -1;
    }
    gte = t[gidx % VMDK_GTES_PER_GT];
    if (gte == 0) {
        *kind = VMDK_G_UNALLOC;
    }
    else if (gte == 1 && sp->zero_grain) {
        *kind = VMDK_G_ZERO;
    }
    else {
        *kind = VMDK_G_DATA;
        *sector = gte;
    }
    return 0;
}

/* Make [pos, pos+len) of BD available in the compressed read window. */
static const unsigned char *
window (struct vmdk *v, struct blockdev *bd, uint64_t pos, size_t len)
{
    size_t n;

    if (v->cwin_bd == bd && pos >= v->cwin_off &&
        pos + len <= v->cwin_off + v->cwin_len) {
        return v->cwin + (pos - v->cwin_off);
    }
    if (len > v->cwin_size || range_outside (pos, len, bd->size)) {
        vmc_error ("vmdk: %s: compressed grain at offset %" PRIu64 " runs "
                   "past the end of the file", bd->name, pos);
        return NULL;
    }
    n = (size_t) MIN ((uint64_t) v->cwin_size, bd->size - pos);
    v->cwin_bd = NULL;
    if (bdev_pread (bd, v->cwin, n, pos) == -1) {
        return NULL;
    }
    v->cwin_bd = bd;
    v->cwin_off = pos;
    v->cwin_len = n;
    return v->cwin;
}

/* Largest compressed grain accepted: deflate's worst case is far less. */
static uint64_t
max_csize (const struct vmdk_sparse *sp)
{
    return sp->grain_bytes + (sp->grain_bytes >> 8) + 1024;
}

/* Set up the buffers for compressed grains of SP (sized for the largest
 * grain of the disk, reallocated when a bigger one shows up). */
static int
compressed_buffers (struct vmdk *v, const struct vmdk_sparse *sp)
{
    size_t need_win = (size_t) MAX ((uint64_t) VMDK_CWIN_MIN,
                                    ROUND_UP (max_csize (sp) +
                                              VMDK_GRAIN_MARKER + VMDK_SECTOR,
                                              (uint64_t) VMDK_SECTOR));

    if (!v->zs_ready) {
        memset (&v->zs, 0, sizeof v->zs);
        if (inflateInit (&v->zs) != Z_OK) {
            vmc_error ("vmdk: inflateInit failed");
            return -1;
        }
        v->zs_ready = true;
    }
    if (v->cwin_size < need_win) {
        free (v->cwin);
        v->cwin_bd = NULL;
        v->cwin_size = 0;
        v->cwin = malloc (need_win);
        if (v->cwin == NULL) {
            vmc_perror ("vmdk");
            return -1;
        }
        v->cwin_size = need_win;
    }
    if (v->grain_size < sp->grain_bytes) {
        free (v->grain);
        v->grain_valid = false;
        v->grain_size = 0;
        v->grain = malloc (sp->grain_bytes);
        if (v->grain == NULL) {
            vmc_perror ("vmdk");
            return -1;
        }
        v->grain_size = sp->grain_bytes;
    }
    return 0;
}

static bool
in_window (const struct vmdk *v, const struct blockdev *bd, uint64_t pos,
           uint64_t len)
{
    return v->cwin_bd == bd && pos >= v->cwin_off &&
        pos + len <= v->cwin_off + v->cwin_len;
}

/* ---- batch inflate on two threads ---- */

struct vmdk_inflater {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned gen, done_gen;
    bool quit;
    z_stream zs;
    struct vmdk_zitem *items;
    unsigned n;
    uint64_t grain_bytes;
};

static void
inflate_item (z_stream *zs, struct vmdk_zitem *it, uint64_t grain_bytes)
{
    int zr;

    if (inflateReset (zs) != Z_OK) {
        it->status = 2;
        return;
    }
    zs->next_in = (unsigned char *) it->src;
    zs->avail_in = it->size;
    zs->next_out = it->dst;
    zs->avail_out = (uInt) grain_bytes;
    zr = inflate (zs, Z_FINISH);
    it->got = grain_bytes - zs->avail_out;
    if (zr != Z_STREAM_END) {
        it->status = zs->avail_out == 0 ? 1 : 2;
    }
    else {
        it->status = it->got == grain_bytes ? 0 : 3;
    }
}

/* The helper inflates the even items of each batch. */
static void *
inflater (void *arg)
{
    struct vmdk_inflater *zw = arg;
    unsigned seen = 0, i;

    for (;;) {
        pthread_mutex_lock (&zw->lock);
        while (zw->gen == seen && !zw->quit) {
            pthread_cond_wait (&zw->cond, &zw->lock);
        }
        if (zw->quit) {
            pthread_mutex_unlock (&zw->lock);
            return NULL;
        }
        seen = zw->gen;
        pthread_mutex_unlock (&zw->lock);
        for (i = 0; i < zw->n; i += 2) {
            inflate_item (&zw->zs, &zw->items[i], zw->grain_bytes);
        }
        pthread_mutex_lock (&zw->lock);
        zw->done_gen = seen;
        pthread_cond_broadcast (&zw->cond);
        pthread_mutex_unlock (&zw->lock);
    }
}

void
vmdk_inflater_free (struct vmdk_inflater *zw)
{
    if (zw == NULL) {
        return;
    }
    pthread_mutex_lock (&zw->lock);
    zw->quit = true;
    pthread_cond_broadcast (&zw->cond);
    pthread_mutex_unlock (&zw->lock);
    pthread_join (zw->thread, NULL);
    pthread_mutex_destroy (&zw->lock);
    pthread_cond_destroy (&zw->cond);
    inflateEnd (&zw->zs);
    free (zw);
}

/* Start the helper; without it, batches run on this thread only. */
static struct vmdk_inflater *
get_inflater (struct vmdk *v)
{
    struct vmdk_inflater *zw;

    if (v->zw != NULL || v->zw_failed) {
        return v->zw;
    }
    v->zw_failed = true;
    zw = calloc (1, sizeof *zw);
    if (zw == NULL) {
        return NULL;
    }
    if (inflateInit (&zw->zs) != Z_OK) {
        free (zw);
        return NULL;
    }
    pthread_mutex_init (&zw->lock, NULL);
    pthread_cond_init (&zw->cond, NULL);
    if (pthread_create (&zw->thread, NULL, inflater, zw) != 0) {
        pthread_mutex_destroy (&zw->lock);
        pthread_cond_destroy (&zw->cond);
        inflateEnd (&zw->zs);
        free (zw);
        return NULL;
    }
    v->zw_failed = false;
    v->zw = zw;
    return zw;
}

/* Inflate the pending batch (its sources are in the read window). */
static int
zbatch_flush (struct image *img)
{
    struct vmdk *v = img->priv;
    struct vmdk_inflater *zw = NULL;
    uint64_t gb;
    unsigned i;

    if (v->zn == 0) {
        return 0;
    }
    gb = v->ext[v->zbatch[0].ei].sp->grain_bytes;
    if (v->zn >= 2) {
        zw = get_inflater (v);
    }
    if (zw != NULL) {
        pthread_mutex_lock (&zw->lock);
        zw->items = v->zbatch;
        zw->n = v->zn;
        zw->grain_bytes = gb;
        zw->gen++;
        pthread_cond_broadcast (&zw->cond);
        pthread_mutex_unlock (&zw->lock);
        for (i = 1; i < v->zn; i += 2) {
            inflate_item (&v->zs, &v->zbatch[i], gb);
        }
        pthread_mutex_lock (&zw->lock);
        while (zw->done_gen != zw->gen) {
            pthread_cond_wait (&zw->cond, &zw->lock);
        }
        pthread_mutex_unlock (&zw->lock);
    }
    else {
        for (i = 0; i < v->zn; i++) {
            inflate_item (&v->zs, &v->zbatch[i], gb);
        }
    }
    for (i = 0; i < v->zn; i++) {
        const struct vmdk_zitem *it = &v->zbatch[i];

        if (it->status != 0) {
            v->zn = 0;
            vmc_error ("vmdk: %s: compressed grain at sector %" PRIu64 " %s",
                       v->ext[it->ei].name, it->sector,
                       it->status == 1 ? "inflates to more than one grain"
                       : it->status == 2 ? "has corrupt deflate data"
                       : "inflates to less than one grain");
            return -1;
        }
    }
    v->zn = 0;
    return 0;
}

/* The compressed bytes of grain GIDX of extent EI, whose marker is at
 * SECTOR, made available in the read window (flushing the batch first
 * when the window must move). */
static int
grain_record (struct image *img, unsigned ei, uint64_t gidx, uint64_t sector,
              const unsigned char **data, uint32_t *size)
{
    struct vmdk *v = img->priv;
    struct vmdk_extent *e = &v->ext[ei];
    const struct vmdk_sparse *sp = e->sp;
    const unsigned char *m;
    uint64_t pos = sector * VMDK_SECTOR, lba;

    if (!in_window (v, e->bd, pos, VMDK_GRAIN_MARKER) &&
        zbatch_flush (img) == -1) {
        return -1;
    }
    m = window (v, e->bd, pos, VMDK_GRAIN_MARKER);
    if (m == NULL) {
        return -1;
    }
    lba = get_le64 (m);
    *size = get_le32 (m + 8);
    if (lba != gidx * sp->h.grain_size) {
        vmc_error ("vmdk: %s: grain marker at sector %" PRIu64 " has LBA %"
                   PRIu64 ", expected %" PRIu64, e->name, sector, lba,
                   gidx * sp->h.grain_size);
        return -1;
    }
    if (*size == 0 || *size > max_csize (sp)) {
        vmc_error ("vmdk: %s: grain marker at sector %" PRIu64 " has size %"
                   PRIu32 " (limit %" PRIu64 ")", e->name, sector, *size,
                   max_csize (sp));
        return -1;
    }
    if (!in_window (v, e->bd, pos, VMDK_GRAIN_MARKER + *size) &&
        zbatch_flush (img) == -1) {
        return -1;
    }
    m = window (v, e->bd, pos, VMDK_GRAIN_MARKER + *size);
    if (m == NULL) {
        return -1;
    }
    *data = m + VMDK_GRAIN_MARKER;
    return 0;
}

/* Decompress grain GIDX of extent EI (marker at SECTOR) into v->grain:
 * the one-grain cache, for partial reads and the short last grain. */
static int
load_compressed (struct image *img, unsigned ei, uint64_t gidx,
                 uint64_t sector)
{
    struct vmdk *v = img->priv;
    struct vmdk_extent *e = &v->ext[ei];
    const struct vmdk_sparse *sp = e->sp;
    const unsigned char *data;
    uint64_t need, got;
    uint32_t size;
    int zr;

    if (v->grain_valid && v->grain_ext == ei && v->grain_idx == gidx) {
        return 0;
    }
    if (compressed_buffers (v, sp) == -1) {
        return -1;
    }
    v->grain_valid = false;
    if (grain_record (img, ei, gidx, sector, &data, &size) == -1) {
        return -1;
    }
    if (inflateReset (&v->zs) != Z_OK) {
        vmc_error ("vmdk: inflateReset failed");
        return -1;
    }
    v->zs.next_in = (unsigned char *) data;
    v->zs.avail_in = size;
    v->zs.next_out = v->grain;
    v->zs.avail_out = (uInt) sp->grain_bytes;
    zr = inflate (&v->zs, Z_FINISH);
    got = sp->grain_bytes - v->zs.avail_out;
    if (zr != Z_STREAM_END) {
        vmc_error ("vmdk: %s: compressed grain at sector %" PRIu64 " %s",
                   e->name, sector, v->zs.avail_out == 0
                   ? "inflates to more than one grain"
                   : "has corrupt deflate data");
        return -1;
    }
    need = grain_valid_bytes (sp, gidx);
    if (got < need) {
        vmc_error ("vmdk: %s: compressed grain at sector %" PRIu64
                   " inflates to %" PRIu64 " bytes, expected %" PRIu64,
                   e->name, sector, got, need);
        return -1;
    }
    memset (v->grain + got, 0, sp->grain_bytes - got);
    v->grain_valid = true;
    v->grain_ext = ei;
    v->grain_idx = gidx;
    return 0;
}

/* A pending run of grains read with one call. */
struct run {
    enum vmdk_gkind kind;
    unsigned char *buf;
    uint64_t len;
    uint64_t host;      /* data: byte offset in the file */
    uint64_t guest;     /* unallocated: guest offset (for the backing) */
    bool active;
};

static int
run_flush (struct image *img, struct blockdev *bd, struct run *r)
{
    int ret = 0;

    if (!r->active) {
        return 0;
    }
    switch (r->kind) {
    case VMDK_G_DATA:
        ret = bdev_pread (bd, r->buf, r->len, r->host);
        break;
    case VMDK_G_ZERO:
        memset (r->buf, 0, r->len);
        break;
    case VMDK_G_UNALLOC:
        ret = image_read_backing (img, r->buf, r->len, r->guest);
        break;
    }
    r->active = false;
    return ret;
}

int
vmdk_sparse_pread (struct image *img, unsigned ei, unsigned char *buf,
                   uint64_t len, uint64_t off)
{
    struct vmdk *v = img->priv;
    struct vmdk_extent *e = &v->ext[ei];
    const struct vmdk_sparse *sp = e->sp;
    struct run r = { .active = false };
    uint64_t end = off + len, gidx, in, n, sector = 0, host;
    enum vmdk_gkind kind;

    while (off < end) {
        gidx = off >> sp->grain_shift;
        in = off & (sp->grain_bytes - 1);
        n = MIN (sp->grain_bytes - in, end - off);
        if (vmdk_sparse_lookup (img, ei, gidx, &kind, &sector) == -1) {
            return -1;
        }
        if (kind == VMDK_G_DATA && sp->compressed && in == 0 &&
            n == sp->grain_bytes) {
            /* A whole grain: inflate it in place, in a batch. */
            struct vmdk_zitem *it;
            const unsigned char *data;
            uint32_t size;

            if (run_flush (img, e->bd, &r) == -1 ||
                compressed_buffers (v, sp) == -1 ||
                (v->zn == VMDK_ZBATCH && zbatch_flush (img) == -1) ||
                grain_record (img, ei, gidx, sector, &data, &size) == -1) {
                v->zn = 0;
                return -1;
            }
            it = &v->zbatch[v->zn++];
            it->src = data;
            it->size = size;
            it->dst = buf;
            it->sector = sector;
            it->ei = ei;
        }
        else if (kind == VMDK_G_DATA && sp->compressed) {
            if (run_flush (img, e->bd, &r) == -1 ||
                zbatch_flush (img) == -1 ||
                load_compressed (img, ei, gidx, sector) == -1) {
                v->zn = 0;
                return -1;
            }
            memcpy (buf, v->grain + in, n);
        }
        else {
            host = sector * VMDK_SECTOR + in;
            if (!(r.active && r.kind == kind &&
                  (kind != VMDK_G_DATA || r.host + r.len == host))) {
                if (run_flush (img, e->bd, &r) == -1) {
                    return -1;
                }
                r.active = true;
                r.kind = kind;
                r.buf = buf;
                r.len = 0;
                r.host = host;
                r.guest = e->start + off;
            }
            r.len += n;
        }
        buf += n;
        off += n;
    }
    if (run_flush (img, e->bd, &r) == -1 || zbatch_flush (img) == -1) {
        v->zn = 0;
        return -1;
    }
    return 0;
}

/* Work bounds of one status call: grain directory entries visited and
 * grain tables loaded.  Answers still cover gigabytes. */
#define STATUS_MAX_GDE 4096
#define STATUS_MAX_GT 64

int
vmdk_sparse_status (struct image *img, unsigned ei, uint64_t off,
                    uint64_t max, enum vmdk_gkind *kind, uint64_t *len)
{
    struct vmdk *v = img->priv;
    const struct vmdk_sparse *sp = v->ext[ei].sp;
    uint64_t end = off + max, pos, gidx, gt, sector;
    unsigned gde_seen = 0, gt_loads = 0;
    enum vmdk_gkind k;

    gidx = off >> sp->grain_shift;
    if (vmdk_sparse_lookup (img, ei, gidx, kind, &sector) == -1) {
        return -1;
    }
    pos = (gidx + 1) << sp->grain_shift;
    while (pos < end) {
        gidx = pos >> sp->grain_shift;
        gt = gidx / VMDK_GTES_PER_GT;
        if (gidx % VMDK_GTES_PER_GT == 0) {
            if (++gde_seen > STATUS_MAX_GDE) {
                break;
            }
            if (vmdk_gt_sector (sp, gt) == 0) {
                if (*kind != VMDK_G_UNALLOC) {
                    break;
                }
                pos += (uint64_t) VMDK_GTES_PER_GT << sp->grain_shift;
                continue;
            }
            if (++gt_loads > STATUS_MAX_GT) {
                break;
            }
        }
        if (vmdk_sparse_lookup (img, ei, gidx, &k, &sector) == -1) {
            return -1;
        }
        if (k != *kind) {
            break;
        }
        pos += sp->grain_bytes;
    }
    *len = MIN (pos, end) - off;
    return 0;
}

/* ---- check ---- */

#define CHECK_MAX_REPORTS 64
#define CHECK_GRAIN_CAP (64u << 20)

static int
cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}

/* Do sector ranges [a, a+alen) and [b, b+blen) overlap? */
static bool
overlaps (uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return blen > 0 && a < b + blen && b < a + alen;
}

struct checker {
    struct check_result *res;
    const char *name;
    unsigned reports;
};

static bool
report (struct checker *c)
{
    if (c->reports == CHECK_MAX_REPORTS) {
        check_error (c->res, "vmdk: %s: too many errors, stopping the check "
                     "of this extent", c->name);
    }
    return c->reports++ < CHECK_MAX_REPORTS;
}

/* Read grain table GT at SECTOR into T (host order); report on failure. */
static bool
check_read_gt (struct blockdev *bd, uint32_t sector, uint32_t *t,
               struct checker *c, const char *what, uint64_t gt)
{
    unsigned j;

    if (bdev_pread (bd, t, VMDK_GT_BYTES, (uint64_t) sector * VMDK_SECTOR)
        == -1) {
        if (report (c)) {
            check_error (c->res, "vmdk: %s: %s %" PRIu64 " cannot be read: %s",
                         c->name, what, gt, vmc_get_error ());
        }
        return false;
    }
    for (j = 0; j < VMDK_GTES_PER_GT; j++) {
        t[j] = le32toh (t[j]);
    }
    return true;
}

int
vmdk_sparse_check (struct image *img, unsigned ei, struct check_result *res)
{
    struct vmdk *v = img->priv;
    struct vmdk_extent *e = &v->ext[ei];
    struct vmdk_sparse *sp = e->sp;
    struct checker c = { res, e->name, 0 };
    uint32_t *rgd = NULL, *grains = NULL, *gts = NULL;
    uint32_t t[VMDK_GTES_PER_GT], rt[VMDK_GTES_PER_GT];
    uint64_t ngrains = 0, gcap = 0, ngts = 0, gt, gidx, k;
    unsigned char m[VMDK_GRAIN_MARKER];
    unsigned j;
    int r = -1;

    if (sp->has_rgd) {
        if (!sectors_inside (sp->h.rgd_offset, (uint64_t) sp->n_gd * 4,
                             sp->file_size)) {
            check_error (res, "vmdk: %s: redundant grain directory runs past "
                         "the end of the file", e->name);
        }
        else {
            rgd = image_alloc_table (img, "redundant grain directory",
                                     sp->n_gd, 4, VMDK_GD_CAP);
            if (rgd == NULL || (sp->n_gd > 0 &&
                bdev_pread (e->bd, rgd, (uint64_t) sp->n_gd * 4,
                            sp->h.rgd_offset * VMDK_SECTOR) == -1)) {
                goto out;
            }
        }
    }
    gts = image_alloc_table (img, "grain table list", 2ULL * sp->n_gd, 4,
                             2ULL * VMDK_GD_CAP);
    if (gts == NULL) {
        goto out;
    }
    for (gt = 0; gt < sp->n_gd && c.reports <= CHECK_MAX_REPORTS; gt++) {
        uint32_t rg = rgd != NULL ? le32toh (rgd[gt]) : 0;
        uint32_t gs = vmdk_gt_sector (sp, gt);

        if (rgd != NULL && (rg == 0) != (gs == 0) && report (&c)) {
            check_error (res, "vmdk: %s: grain directory entry %" PRIu64
                         " (%" PRIu32 ") and its redundant copy (%" PRIu32
                         ") disagree", e->name, gt, gs, rg);
        }
        if (rgd != NULL && rg != 0 &&
            !sectors_inside (rg, VMDK_GT_BYTES, sp->file_size)) {
            if (report (&c)) {
                check_error (res, "vmdk: %s: redundant grain directory entry %"
                             PRIu64 " points past the end of the file",
                             e->name, gt);
            }
            rg = 0;
        }
        if (rg != 0) {
            gts[ngts++] = rg;
        }
        if (gs == 0) {
            continue;
        }
        if (gt % sp->gd_mult == 0) {
            gts[ngts++] = gs;
        }
        if (!check_read_gt (e->bd, gs, t, &c, "grain table", gt)) {
            continue;
        }
        if (rgd != NULL && rg != 0 &&
            check_read_gt (e->bd, rg, rt, &c, "redundant grain table", gt) &&
            memcmp (t, rt, sizeof t) != 0) {
            for (j = 0; t[j] == rt[j]; j++) {
            }
            if (report (&c)) {
                check_error (res, "vmdk: %s: grain table %" PRIu64 " and its "
                             "redundant copy differ at entry %u", e->name, gt,
                             j);
            }
        }
        for (j = 0; j < VMDK_GTES_PER_GT; j++) {
            gidx = gt * VMDK_GTES_PER_GT + j;
            if ((gidx << sp->grain_shift) >= sp->cap_bytes || t[j] == 0 ||
                (t[j] == 1 && sp->zero_grain)) {
                continue;
            }
            if (!gte_ok (e, gt, j, t[j])) {
                if (report (&c)) {
                    check_error (res, "%s", vmc_get_error ());
                }
                continue;
            }
            if (sp->compressed) {
                uint64_t lba;
                uint32_t size;

                if (bdev_pread (e->bd, m, sizeof m,
                                (uint64_t) t[j] * VMDK_SECTOR) == -1) {
                    goto out;
                }
                lba = get_le64 (m);
                size = get_le32 (m + 8);
                if (lba != gidx * sp->h.grain_size || size == 0 ||
                    size > max_csize (sp) ||
                    !sectors_inside (t[j], VMDK_GRAIN_MARKER + (uint64_t) size,
                                     sp->file_size)) {
                    if (report (&c)) {
                        check_error (res, "vmdk: %s: grain table %" PRIu64
                                     " entry %u: grain marker at sector %"
                                     PRIu32 " has LBA %" PRIu64 " (expected %"
                                     PRIu64 ") and size %" PRIu32, e->name,
                                     gt, j, t[j], lba,
                                     gidx * sp->h.grain_size, size);
                    }
                }
                continue;
            }
            if (ngrains == gcap) {
                uint32_t *ng;

                gcap = gcap == 0 ? 4096 : gcap * 2;
                if (gcap * 4 > CHECK_GRAIN_CAP) {
                    vmc_warn ("vmdk: %s: too many grains to check for "
                              "overlaps", e->name);
                    free (grains);
                    grains = NULL;
                    ngrains = 0;
                    gcap = UINT64_MAX / 8;
                    continue;
                }
                ng = realloc (grains, gcap * 4);
                if (ng == NULL) {
                    vmc_perror ("vmdk");
                    goto out;
                }
                grains = ng;
            }
            if (grains != NULL) {
                grains[ngrains++] = t[j];
            }
        }
    }
    /* Two GTEs pointing into the same grain, or a grain on top of the
     * header, the grain directory or a grain table. */
    if (grains != NULL) {
        uint64_t gd_sectors = DIV_ROUND_UP (DIV_ROUND_UP (sp->n_gd,
                                                          sp->gd_mult) * 4ULL,
                                            (uint64_t) VMDK_SECTOR);
        uint64_t gt_secs = (uint64_t) sp->gd_mult * VMDK_GT_BYTES /
            VMDK_SECTOR;

        qsort (grains, ngrains, 4, cmp_u32);
        qsort (gts, ngts, 4, cmp_u32);
        for (k = 0; k < ngrains; k++) {
            uint64_t s = grains[k];

            if (k + 1 < ngrains && grains[k + 1] - s < sp->h.grain_size &&
                report (&c)) {
                check_error (res, "vmdk: %s: two grain table entries point to "
                             "overlapping grains (sectors %" PRIu64 " and %"
                             PRIu32 ")", e->name, s, grains[k + 1]);
            }
            if ((s < (sp->cowd ? 4u : 1u) || overlaps (s, sp->h.grain_size, sp->h.gd_offset,
                                    gd_sectors) ||
                 (sp->has_rgd && overlaps (s, sp->h.grain_size,
                                           sp->h.rgd_offset, gd_sectors)) ||
                 overlaps (s, sp->h.grain_size, sp->h.desc_offset,
                           sp->h.desc_size)) && report (&c)) {
                check_error (res, "vmdk: %s: grain at sector %" PRIu64
                             " overlaps the header, the descriptor or a "
                             "grain directory", e->name, s);
            }
        }
        for (k = 0; k < ngts; k++) {
            if (k + 1 < ngts && gts[k + 1] - gts[k] < gt_secs &&
                report (&c)) {
                check_error (res, "vmdk: %s: grain tables at sectors %"
                             PRIu32 " and %" PRIu32 " overlap", e->name,
                             gts[k], gts[k + 1]);
            }
            /* The first grain ending after this table starts. */
            uint64_t lo = 0, hi = ngrains, mid, g = gts[k];

            while (lo < hi) {
                mid = (lo + hi) / 2;
                if (grains[mid] + sp->h.grain_size <= g) {
                    lo = mid + 1;
                }
                else {
                    hi = mid;
                }
            }
            if (lo < ngrains && grains[lo] < g + gt_secs &&
                report (&c)) {
                check_error (res, "vmdk: %s: grain at sector %" PRIu32
                             " overlaps grain table at sector %" PRIu64,
                             e->name, grains[lo], g);
            }
        }
    }
    r = 0;
out:
    free (rgd);
    free (gts);
    free (grains);
    return r;
}
