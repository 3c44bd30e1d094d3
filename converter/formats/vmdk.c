/* SPDX-License-Identifier: MIT */
/*
 * vmdk: VMware virtual disks.
 *
 * Spec: VMware Technical Note "Virtual Disk Format 1.1" (VMDK, revision
 * 20071113), https://www.vmware.com/app/vmdk/?src=vmdk (also known as
 * vmdk_50_technote.pdf, "Virtual Disk Format 5.0", which adds the
 * zeroed-grain GTE).  qemu's block/vmdk.c was read for on-disk facts only
 * (footer position, what qemu-img writes).
 *
 * Read: probed by content only: "KDMV" (a hosted sparse extent, possibly
 * with an embedded descriptor), or a small text file that is a descriptor
 * ("# Disk DescriptorFile" first, or a createType= line).  Supported
 * createTypes: monolithicSparse, twoGbMaxExtentSparse, monolithicFlat,
 * twoGbMaxExtentFlat, streamOptimized, vmfs, vmfsThin, vmfsPreallocated,
 * vmfsEagerZeroedThick, vmfsSparse.  Extent types: SPARSE (hosted sparse,
 * including compressed stream-optimized grains and the footer when
 * gdOffset is GD_AT_END), VMFSSPARSE (ESX sparse "COWD", as used by ESXi
 * snapshots on VMFS 5), FLAT and VMFS (read as flat, holes reported as
 * zeros), ZERO.  Delta disks: parentCID + parentFileNameHint become the
 * backing file (format vmdk), unallocated grains come from it, and the
 * parent's CID must match.  Not supported (clear errors): SESPARSE (VMFS 6
 * snapshots), raw device mappings, compressed grains without markers.
 *
 * Limits on hostile input: descriptor text <= 1 MiB (VMDK_DESC_MAX, as
 * qemu), <= 4096 extent lines, extent files must be regular files (a
 * descriptor cannot make us read a block device), sector counts and
 * offsets overflow-checked and <= 2^47 sectors in all, the sum of the
 * extents is the virtual size; sparse headers: version 1-3, no unknown
 * incompatible flags, grainSize a power of 2 <= 2048 sectors, numGTEsPerGT
 * == 512, every table inside the file; grain directories <= 4 MiB each and
 * 16 MiB in all; 256 cached grain tables (512 KiB); for compressed
 * extents one decompressed grain, a 4 MiB read window and a batch of up
 * to 64 grains inflated on two threads; COWD: version 1, granularity a
 * power of 2 <= 2048 sectors, enough root entries.  See vmdk-sparse.c and
 * vmdk-descriptor.c for the details.
 *
 * Performance: reads of consecutive grains whose data is contiguous in the
 * file are one pread; block status merges grains of one kind across grain
 * tables and extents; flat extents report their holes as zeros.
 *
 * Write: see vmdk-write.c (monolithicSparse and streamOptimized).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/rounding.h"
#include "vmdk.h"

extern const struct image_format format_vmdk;

/* Extents visited by one block status answer. */
#define STATUS_MAX_EXTENTS 64

static const char *const create_types[] = {
    "monolithicSparse", "twoGbMaxExtentSparse", "monolithicFlat",
    "twoGbMaxExtentFlat", "streamOptimized", "vmfs", "vmfsThin",
    "vmfsPreallocated", "vmfsEagerZeroedThick", "vmfsSparse", NULL,
};

static int
vmdk_probe (const struct probe_data *p)
{
    if (p->head_len >= 4 && (get_le32 (p->head) == VMDK_MAGIC ||
                             get_le32 (p->head) == VMDK_COWD_MAGIC)) {
        return 100;
    }
    if (vmdk_desc_probe (p->head, p->head_len, p->file_size)) {
        return 100;
    }
    return 0;
}

/* Read and parse the descriptor at [off, off+len) of the container. */
static int
read_descriptor (struct image *img, uint64_t off, uint64_t len)
{
    struct vmdk *v = img->priv;
    char *text;
    int r;

    if (len > VMDK_DESC_MAX) {
        vmc_error ("vmdk: descriptor of %" PRIu64 " bytes is too large "
                   "(limit %u)", len, VMDK_DESC_MAX);
        return -1;
    }
    text = malloc (len + 1);
    if (text == NULL) {
        vmc_perror ("vmdk: descriptor");
        return -1;
    }
    if (bdev_pread (img->file, text, len, off) == -1) {
        free (text);
        return -1;
    }
    text[len] = '\0';
    r = vmdk_desc_parse (text, len, &v->desc);
    free (text);
    return r;
}

static bool
create_type_ok (const char *t)
{
    unsigned i;

    for (i = 0; create_types[i] != NULL; i++) {
        if (strcmp (t, create_types[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Open every extent the descriptor lists. */
static int
open_extents (struct image *img)
{
    struct vmdk *v = img->priv;
    struct vmdk_desc *d = &v->desc;
    uint64_t start = 0, bytes, need;
    unsigned i;

    if (d->create_type[0] == '\0') {
        vmc_error ("vmdk: descriptor has no createType");
        return -1;
    }
    if (!create_type_ok (d->create_type)) {
        vmc_error ("vmdk: createType \"%s\" is not supported",
                   d->create_type);
        return -1;
    }
    if (d->n_ext == 0) {
        vmc_error ("vmdk: descriptor lists no extents");
        return -1;
    }
    v->ext = calloc (d->n_ext, sizeof *v->ext);
    if (v->ext == NULL) {
        vmc_perror ("vmdk");
        return -1;
    }
    for (i = 0; i < d->n_ext; i++) {
        struct vmdk_desc_extent *de = &d->ext[i];
        struct vmdk_extent *e = &v->ext[v->n_ext];

        bytes = de->sectors * VMDK_SECTOR;
        if (ckd_add (&start, start, bytes) ||
            start > VMDK_MAX_SECTORS * VMDK_SECTOR) {
            vmc_error ("vmdk: the extents add up to more than %llu sectors",
                       (unsigned long long) VMDK_MAX_SECTORS);
            return -1;
        }
        if (bytes == 0) {
            continue;
        }
        e->type = de->type;
        e->start = start - bytes;
        e->length = bytes;
        e->name = de->file != NULL ? de->file : "ZERO";
        if (de->type == VMDK_EXT_ZERO) {
            v->n_ext++;
            continue;
        }
        e->bd = image_open_file (img, de->file);
        if (e->bd == NULL) {
            vmc_error_prefix ("vmdk: extent %u", i + 1);
            return -1;
        }
        if (e->bd->is_block) {
            vmc_error ("vmdk: extent \"%s\" is a block device; not followed",
                       de->file);
            return -1;
        }
        if (de->type == VMDK_EXT_FLAT) {
            e->flat_offset = de->offset * VMDK_SECTOR;
            if (ckd_add (&need, e->flat_offset, bytes) ||
                need > e->bd->size) {
                vmc_error ("vmdk: flat extent \"%s\" is %" PRIu64 " bytes, "
                           "the descriptor needs %" PRIu64 " from offset %"
                           PRIu64, de->file, e->bd->size, bytes,
                           e->flat_offset);
                return -1;
            }
        }
        else if (vmdk_sparse_open (img, e->bd, de->file, de->sectors,
                                   &e->sp) == -1) {
            return -1;
        }
        v->n_ext++;
    }
    img->size = start;
    return 0;
}

/* A hosted sparse file opened directly: one extent, the file itself. */
static int
open_sparse_file (struct image *img)
{
    struct vmdk *v = img->priv;
    unsigned char b[VMDK_SECTOR];
    struct vmdk_header h;
    struct vmdk_extent *e;

    if (img->file->size < VMDK_SECTOR) {
        vmc_error ("vmdk: file is too small for a sparse header");
        return -1;
    }
    if (bdev_pread (img->file, b, sizeof b, 0) == -1) {
        return -1;
    }
    vmdk_header_decode (b, &h);
    if (h.desc_offset != 0 && h.desc_size != 0) {
        uint64_t off;

        if (ckd_mul (&off, h.desc_offset, (uint64_t) VMDK_SECTOR) ||
            h.desc_size > VMDK_DESC_MAX / VMDK_SECTOR ||
            range_outside (off, h.desc_size * VMDK_SECTOR, img->file->size)) {
            vmc_error ("vmdk: header descriptorOffset %" PRIu64 " / "
                       "descriptorSize %" PRIu64 " is outside the file or "
                       "over %u bytes", h.desc_offset, h.desc_size,
                       VMDK_DESC_MAX);
            return -1;
        }
        if (read_descriptor (img, off, h.desc_size * VMDK_SECTOR) == -1) {
            return -1;
        }
        /* A sparse header with no capacity is only a wrapper around a
         * descriptor that lists the real extents. */
        if (h.capacity == 0 && h.magic == VMDK_MAGIC) {
            return open_extents (img);
        }
    }
    v->ext = calloc (1, sizeof *v->ext);
    if (v->ext == NULL) {
        vmc_perror ("vmdk");
        return -1;
    }
    e = &v->ext[0];
    e->type = VMDK_EXT_SPARSE;
    e->bd = img->file;
    e->name = img->filename;
    if (vmdk_sparse_open (img, img->file, img->filename, 0, &e->sp) == -1) {
        return -1;
    }
    v->n_ext = 1;
    e->length = e->sp->cap_bytes;
    img->size = e->length;
    if (v->desc.create_type[0] == '\0') {
        snprintf (v->desc.create_type, sizeof v->desc.create_type, "%s",
                  e->sp->compressed ? "streamOptimized" : "monolithicSparse");
    }
    return 0;
}

/* An ESX sparse (COWD) file opened directly.  Only a root disk: a delta
 * needs its descriptor, which names the parent. */
static int
open_cowd_file (struct image *img)
{
    struct vmdk *v = img->priv;
    unsigned char b[12];
    struct vmdk_extent *e;

    if (img->file->size < 2048 || bdev_pread (img->file, b, sizeof b, 0)
        == -1) {
        vmc_error ("vmdk: COWD file is too small for its header");
        return -1;
    }
    if (!(get_le32 (b + 8) & VMDK_COWD_FLAG_ROOT)) {
        vmc_error ("vmdk: this COWD extent is a delta disk: open its "
                   "descriptor, which names the parent");
        return -1;
    }
    v->ext = calloc (1, sizeof *v->ext);
    if (v->ext == NULL) {
        vmc_perror ("vmdk");
        return -1;
    }
    e = &v->ext[0];
    e->type = VMDK_EXT_SPARSE;
    e->bd = img->file;
    e->name = img->filename;
    if (vmdk_sparse_open (img, img->file, img->filename, 0, &e->sp) == -1) {
        return -1;
    }
    v->n_ext = 1;
    e->length = e->sp->cap_bytes;
    img->size = e->length;
    snprintf (v->desc.create_type, sizeof v->desc.create_type, "vmfsSparse");
    return 0;
}

static void
add_info (struct image *img)
{
    struct vmdk *v = img->priv;
    struct vmdk_desc *d = &v->desc;
    char buf[224];
    size_t n = 0;
    unsigned i;
    bool compressed = false;

    if (d->has_cid) {
        image_info_add (img, "cid", "%08" PRIx32, d->cid);
    }
    if (d->has_parent_cid) {
        image_info_add (img, "parent cid", "%08" PRIx32, d->parent_cid);
    }
    if (d->adapter[0] != '\0') {
        image_info_add (img, "adapter type", "%s", d->adapter);
    }
    if (d->hwversion[0] != '\0') {
        image_info_add (img, "hwversion", "%s", d->hwversion);
    }
    n = (size_t) snprintf (buf, sizeof buf, "%u (", v->n_ext);
    for (i = 0; i < v->n_ext && n < sizeof buf; i++) {
        const struct vmdk_extent *e = &v->ext[i];
        const char *base = strrchr (e->name, '/');

        if (e->sp != NULL && e->sp->compressed) {
            compressed = true;
        }
        n += (size_t) snprintf (buf + n, sizeof buf - n, "%s%s%s%s",
                                i > 0 ? ", " : "",
                                e->sp != NULL && e->sp->cowd ? "VMFSSPARSE"
                                : e->type == VMDK_EXT_SPARSE ? "SPARSE"
                                : e->type == VMDK_EXT_FLAT ? "FLAT" : "ZERO",
                                e->type == VMDK_EXT_ZERO ? "" : " ",
                                e->type == VMDK_EXT_ZERO ? ""
                                : base != NULL ? base + 1 : e->name);
    }
    if (n < sizeof buf) {
        snprintf (buf + n, sizeof buf - n, ")");
    }
    image_info_add (img, "extents", "%s", buf);
    image_info_add (img, "compressed", "%s", compressed ? "yes" : "no");
}

static int
vmdk_open (struct image *img)
{
    struct vmdk *v = img->priv;
    unsigned char m[4];
    unsigned i;

    if (img->file->size >= 4 && bdev_pread (img->file, m, 4, 0) == -1) {
        return -1;
    }
    if (img->file->size >= 4 && get_le32 (m) == VMDK_MAGIC) {
        if (open_sparse_file (img) == -1) {
            return -1;
        }
    }
    else if (img->file->size >= 4 && get_le32 (m) == VMDK_COWD_MAGIC) {
        if (open_cowd_file (img) == -1) {
            return -1;
        }
    }
    else {
        unsigned char head[512];
        size_t hl = (size_t) MIN (img->file->size, (uint64_t) sizeof head);

        if (bdev_pread (img->file, head, hl, 0) == -1) {
            return -1;
        }
        if (memchr (head, 0, hl) != NULL &&
            !vmdk_desc_probe (head, hl, MIN (img->file->size,
                                             (uint64_t) VMDK_DESC_MAX))) {
            vmc_error ("vmdk: no KDMV magic, and not a text descriptor");
            return -1;
        }
        if (img->file->size > VMDK_DESC_MAX) {
            vmc_error ("vmdk: descriptor file of %" PRIu64 " bytes is too "
                       "large (limit %u)", img->file->size, VMDK_DESC_MAX);
            return -1;
        }
        if (read_descriptor (img, 0, img->file->size) == -1 ||
            open_extents (img) == -1) {
            return -1;
        }
    }
    if (v->desc.has_parent_cid && v->desc.parent_cid != UINT32_MAX) {
        if (v->desc.parent_hint == NULL) {
            vmc_error ("vmdk: delta disk (parentCID %08" PRIx32 ") has no "
                       "parentFileNameHint", v->desc.parent_cid);
            return -1;
        }
        img->backing_name = strdup (v->desc.parent_hint);
        img->backing_format = strdup ("vmdk");
        if (img->backing_name == NULL || img->backing_format == NULL) {
            vmc_perror ("vmdk");
            return -1;
        }
    }
    snprintf (img->subformat, sizeof img->subformat, "%s",
              v->desc.create_type);
    for (i = 0; i < v->n_ext; i++) {
        if (v->ext[i].sp != NULL) {
            img->cluster_size = v->ext[i].sp->grain_bytes;
            break;
        }
    }
    add_info (img);
    return 0;
}

static void
vmdk_close (struct image *img)
{
    struct vmdk *v = img->priv;
    unsigned i;

    if (v->ext != NULL) {
        /* Extents past n_ext never hold a sparse state: it is only set
         * when vmdk_sparse_open succeeds, just before n_ext grows. */
        for (i = 0; i < v->n_ext; i++) {
            vmdk_sparse_free (v->ext[i].sp);
        }
    }
    free (v->ext);
    vmdk_desc_free (&v->desc);
    free (v->gtc);
    free (v->cwin);
    free (v->grain);
    if (v->zs_ready) {
        inflateEnd (&v->zs);
    }
    vmdk_inflater_free (v->zw);
    vmdk_writer_free (v->w);
}

/* The extent holding guest byte OFF. */
static unsigned
find_extent (struct vmdk *v, uint64_t off)
{
    unsigned lo = 0, hi = v->n_ext, mid;
    const struct vmdk_extent *h = &v->ext[v->hint];

    if (off >= h->start && off - h->start < h->length) {
        return v->hint;
    }
    if (v->hint + 1 < v->n_ext && off >= h[1].start &&
        off - h[1].start < h[1].length) {
        return ++v->hint;
    }
    while (hi - lo > 1) {
        mid = (lo + hi) / 2;
        if (v->ext[mid].start <= off) {
            lo = mid;
        }
        else {
            hi = mid;
        }
    }
    v->hint = lo;
    return lo;
}

/* A delta disk is only valid on top of the parent it was made from: the
 * parent's CID must be the delta's parentCID (VMware refuses to open the
 * disk otherwise, qemu fails reads).  The core opens the chain after
 * open(), so this runs on first use. */
static int
check_parent (struct image *img)
{
    struct vmdk *v = img->priv;
    const struct vmdk *pv;

    if (v->parent_checked || img->backing == NULL) {
        return 0;
    }
    if (img->backing->fmt != &format_vmdk) {
        vmc_error ("vmdk: the parent of a delta disk must be a vmdk, %s is "
                   "%s", img->backing->filename, img->backing->fmt->name);
        return -1;
    }
    pv = img->backing->priv;
    if (!pv->desc.has_cid || pv->desc.cid != v->desc.parent_cid) {
        vmc_error ("vmdk: parentCID %08" PRIx32 " does not match the CID %08"
                   PRIx32 " of %s (the parent changed after the delta was "
                   "made)", v->desc.parent_cid, pv->desc.cid,
                   img->backing->filename);
        return -1;
    }
    v->parent_checked = true;
    return 0;
}

static int
vmdk_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    struct vmdk *v = img->priv;
    unsigned char *p = buf;
    uint64_t n, rel;
    unsigned ei;

    if (check_parent (img) == -1) {
        return -1;
    }

    while (count > 0) {
        struct vmdk_extent *e;

        ei = find_extent (v, offset);
        e = &v->ext[ei];
        rel = offset - e->start;
        n = MIN ((uint64_t) count, e->length - rel);
        switch (e->type) {
        case VMDK_EXT_FLAT:
            if (bdev_pread (e->bd, p, n, e->flat_offset + rel) == -1) {
                return -1;
            }
            break;
        case VMDK_EXT_ZERO:
            memset (p, 0, n);
            break;
        case VMDK_EXT_SPARSE:
            if (vmdk_sparse_pread (img, ei, p, n, rel) == -1) {
                return -1;
            }
            break;
        }
        p += n;
        count -= n;
        offset += n;
    }
    return 0;
}

/* Status of the start of extent EI at REL, up to MAX bytes. */
static int
extent_status (struct image *img, unsigned ei, uint64_t rel, uint64_t max,
               enum extent_type *type, uint64_t *len)
{
    struct vmdk *v = img->priv;
    struct vmdk_extent *e = &v->ext[ei];
    uint64_t data, hole, at = e->flat_offset + rel;
    enum vmdk_gkind k;

    max = MIN (max, e->length - rel);
    switch (e->type) {
    case VMDK_EXT_ZERO:
        *type = EXTENT_ZERO;
        *len = max;
        return 0;
    case VMDK_EXT_FLAT:
        /* Holes in a flat extent (thin files) read as zeros. */
        if (bdev_next_data (e->bd, at, &data) == -1) {
            return -1;
        }
        if (data > at) {
            *type = EXTENT_ZERO;
            *len = MIN (data - at, max);
            return 0;
        }
        if (bdev_next_hole (e->bd, at, &hole) == -1) {
            return -1;
        }
        *type = EXTENT_DATA;
        *len = hole > at ? MIN (hole - at, max) : max;
        return 0;
    case VMDK_EXT_SPARSE:
        if (vmdk_sparse_status (img, ei, rel, max, &k, len) == -1) {
            return -1;
        }
        *type = k == VMDK_G_DATA ? EXTENT_DATA
            : k == VMDK_G_ZERO ? EXTENT_ZERO : EXTENT_UNALLOCATED;
        return 0;
    }
    return -1;
}

static int
vmdk_block_status (struct image *img, uint64_t offset, uint64_t count,
                   struct extent *ext)
{
    struct vmdk *v = img->priv;
    unsigned ei = find_extent (v, offset), hops = 0;
    const struct vmdk_extent *e = &v->ext[ei];
    uint64_t len, done;
    enum extent_type t;

    if (check_parent (img) == -1) {
        return -1;
    }

    if (extent_status (img, ei, offset - e->start, count, &ext->type,
                       &done) == -1) {
        return -1;
    }
    /* Merge with the following extents while they start the same way. */
    while (done < count && offset + done == e->start + e->length &&
           ei + 1 < v->n_ext && ++hops < STATUS_MAX_EXTENTS) {
        ei++;
        e = &v->ext[ei];
        if (extent_status (img, ei, 0, count - done, &t, &len) == -1) {
            return -1;
        }
        if (t != ext->type) {
            break;
        }
        done += len;
    }
    ext->length = done;
    return 0;
}

static int
vmdk_check (struct image *img, struct check_result *res)
{
    struct vmdk *v = img->priv;
    unsigned i;

    for (i = 0; i < v->n_ext; i++) {
        if (v->ext[i].type == VMDK_EXT_SPARSE &&
            vmdk_sparse_check (img, i, res) == -1) {
            check_error (res, "%s", vmc_get_error ());
        }
    }
    return 0;
}

const struct image_format format_vmdk = {
    .name = "vmdk",
    .description = "VMware VMDK (sparse, flat, split, streamOptimized, "
                   "ESXi vmfs)",
    .priv_size = sizeof (struct vmdk),
    .probe = vmdk_probe,
    .open = vmdk_open,
    .close = vmdk_close,
    .pread = vmdk_pread,
    .block_status = vmdk_block_status,
    .check = vmdk_check,
    .create_opts = vmdk_create_opts,
    .create = vmdk_create,
    .pwrite = vmdk_pwrite,
    .finish = vmdk_finish,
    .checkpoint = vmdk_checkpoint,
    .resume = vmdk_resume,
};
