/* SPDX-License-Identifier: MIT */
/*
 * qcow2: QEMU copy-on-write image format, versions 2 and 3.
 *
 * Spec: "Qcow2 Image File Format", qemu docs/interop/qcow2.txt (later
 * qcow2.rst), https://gitlab.com/qemu-project/qemu/-/blob/master/docs/
 * interop/qcow2.rst.  This is our own implementation from the spec.
 *
 * Files: qcow2.c (this file: probe, open, read, block status, the ops
 * table), qcow2-check.c (refcount verification), qcow2-write.c (the
 * sequential writer), qcow2.h (shared state and constants).
 *
 * Read: versions 2 and 3; header extensions (backing file format, feature
 * name table used to name unknown features, bitmaps: noted for check, end
 * marker; unknown ones skipped); incompatible features dirty (read anyway:
 * only refcounts may be stale), corrupt (read with a warning), compression
 * type (deflate or zstd), extended L2 entries (subcluster allocation and
 * zero bitmaps).  Refused with one clear message: encryption (AES, LUKS),
 * external data files, unknown incompatible bits (named, with the feature
 * name table's name when there is one).  Zero clusters, compressed clusters
 * (raw deflate or zstd; the output must fill exactly one cluster), backing
 * files (the name and format are handed to the core, which opens the chain)
 * and internal snapshots (the active layer is read; the snapshot table is
 * validated at open and walked by check).
 *
 * Limits enforced (hostile input): cluster_bits 9..21; L1 table at most
 * 32 MiB (as qemu; 4 Mi entries, so 2 PiB of guest with 64 KiB clusters),
 * and only the entries that map the virtual size are loaded; refcount table
 * at most 8 MiB (as qemu); at most 65536 snapshots with at most 1024 bytes of
 * extra data each and a table of at most 64 MiB (as qemu); backing file name
 * at most 1023 bytes; L2 tables go through a cache of at most 4 MiB (at
 * least two tables); compressed input is bounded by the descriptor's width
 * (at most two clusters) and the output must be exactly one cluster.  Every
 * offset read from the file is checked against the file size and its
 * alignment before use.
 *
 * Performance: block status merges consecutive entries of the same kind
 * (data, normal or compressed; zero; unallocated) into one extent; reads
 * coalesce guest runs whose host clusters are contiguous into one
 * bdev_pread; whole compressed clusters of one read are decompressed in
 * batches of up to 64 by the calling thread and one helper thread (the
 * last partially read one is kept in a one-cluster cache).
 *
 * Write: see qcow2-write.c (version 3, or 2 on request; sequential,
 * append-only, bounded memory).
 *
 * On-disk layout (all numbers big-endian):
 *
 *   Header (cluster 0):
 *     0  u32 magic "QFI\xfb"         4  u32 version (2 or 3)
 *     8  u64 backing_file_offset     16 u32 backing_file_size (<= 1023)
 *     20 u32 cluster_bits (>= 9)     24 u64 size (virtual, bytes)
 *     32 u32 crypt_method (0 none, 1 AES, 2 LUKS)
 *     36 u32 l1_size (entries)       40 u64 l1_table_offset (cluster aligned)
 *     48 u64 refcount_table_offset   56 u32 refcount_table_clusters
 *     60 u32 nb_snapshots            64 u64 snapshots_offset
 *   Version 3 only:
 *     72 u64 incompatible_features   (0 dirty, 1 corrupt, 2 external data
 *                                     file, 3 compression type, 4 extended
 *                                     L2 entries)
 *     80 u64 compatible_features     (0 lazy refcounts)
 *     88 u64 autoclear_features      (0 bitmaps, 1 raw external data)
 *     96 u32 refcount_order (refcount_bits = 1 << order, order <= 6)
 *     100 u32 header_length (>= 104, multiple of 8)
 *     104 u8 compression_type (0 deflate, 1 zstd) if header_length > 104
 *   Header extensions from header_length (72 for v2): u32 type, u32 length,
 *   data padded to 8; type 0 ends the list.  The backing file name lies
 *   after them in the first cluster.
 *
 *   L1 entry: bits 9-55 L2 table offset (0: unallocated), 63 "copied"
 *   (refcount is exactly one).
 *   L2 entry (64 bits, or 128 with extended L2 entries):
 *     bit 63 copied, bit 62 compressed, bits 0-61 descriptor.
 *     Standard descriptor: bit 0 reads as zeros (not with extended L2),
 *       bits 9-55 host cluster offset (0 and no zero flag: unallocated).
 *     Compressed descriptor, x = 62 - (cluster_bits - 8): bits 0..x-1 host
 *       byte offset, bits x..61 number of additional 512-byte sectors.
 *     Extended L2, second word: bits 0-31 subcluster allocated, bits 32-63
 *       subcluster reads as zeros (32 subclusters per cluster).
 *   Refcount table entry: bits 9-63 refcount block offset.  Refcount block:
 *   cluster_size * 8 / refcount_bits entries of refcount_bits each.
 *   Snapshot table entry: u64 l1 offset, u32 l1 size, u16 id length, u16 name
 *   length, u32 date s, u32 date ns, u64 vm clock, u32 vm state size, u32
 *   extra data size, extra data, id, name, padding to 8.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"
#include "qcow2.h"

/* ------------------------------------------------------------------ */
/* Probe and open                                                       */
/* ------------------------------------------------------------------ */

static int
qcow2_probe (const struct probe_data *p)
{
    if (p->head_len >= 8 && get_be32 (p->head) == QCOW2_MAGIC) {
        uint32_t v = get_be32 (p->head + QH_VERSION);

        return v == 2 || v == 3 ? 100 : 50;
    }
    return 0;
}

/* The name the feature name table gives incompatible bit BIT, if any. */
static void
feature_name (const unsigned char *tab, uint32_t len, unsigned bit,
              char *out, size_t outlen)
{
    uint32_t i;
    size_t n;

    out[0] = '\0';
    for (i = 0; tab != NULL && i + 48 <= len; i += 48) {
        if (tab[i] == 0 && tab[i + 1] == bit) {
            n = strnlen ((const char *) tab + i + 2, 46);
            snprintf (out, outlen, " (%.*s)", (int) n,
                      (const char *) tab + i + 2);
            for (n = 0; out[n] != '\0'; n++) {
                if ((unsigned char) out[n] < 0x20 ||
                    (unsigned char) out[n] > 0x7e) {
                    out[n] = '?';
                }
            }
            return;
        }
    }
}

/* Walk the header extensions in HEAD[start, end). */
static int
parse_extensions (struct image *img, const unsigned char *head, uint64_t start,
                  uint64_t end, const unsigned char **ftab, uint32_t *ftab_len)
{
    struct qcow2 *q = img->priv;
    uint64_t off = start, data_end;
    uint32_t type, len;
    bool seen_fmt = false, seen_bitmaps = false;

    while (off + 8 <= end) {
        type = get_be32 (head + off);
        len = get_be32 (head + off + 4);
        if (type == QEXT_END) {
            return 0;
        }
        if (ckd_add (&data_end, off + 8, (uint64_t) len) || data_end > end) {
            vmc_error ("%s: qcow2: header extension 0x%08" PRIx32 " at %"
                       PRIu64 " (length %" PRIu32 ") runs past the header "
                       "area", img->filename, type, off, len);
            return -1;
        }
        switch (type) {
        case QEXT_BACKING_FORMAT:
            if (seen_fmt || len == 0 || len > 63 ||
                memchr (head + off + 8, 0, len) != NULL) {
                vmc_error ("%s: qcow2: invalid backing file format header "
                           "extension (length %" PRIu32 ")", img->filename,
                           len);
                return -1;
            }
            seen_fmt = true;
            img->backing_format = strndup ((const char *) head + off + 8, len);
            if (img->backing_format == NULL) {
                vmc_perror ("strndup");
                return -1;
            }
            break;
        case QEXT_FEATURE_TABLE:
            *ftab = head + off + 8;
            *ftab_len = len;
            break;
        case QEXT_BITMAPS:
            if (seen_bitmaps || len < 24) {
                vmc_error ("%s: qcow2: invalid bitmaps header extension "
                           "(length %" PRIu32 ")", img->filename, len);
                return -1;
            }
            seen_bitmaps = true;
            q->nb_bitmaps = get_be32 (head + off + 8);
            q->bitmap_dir_size = get_be64 (head + off + 16);
            q->bitmap_dir_offset = get_be64 (head + off + 24);
            break;
        default:
            /* Unknown (or irrelevant here): skip, as the spec allows. */
            break;
        }
        off = ROUND_UP (data_end, 8);
    }
    /* No end marker before the end of the area: qemu accepts this. */
    return 0;
}

static int
read_snapshot_table (struct image *img)
{
    struct qcow2 *q = img->priv;
    unsigned char e[40];
    uint64_t off = q->snapshots_offset, entry_len, l1_bytes;
    uint32_t i, extra, id_len, name_len;

    if (q->nb_snapshots == 0) {
        return 0;
    }
    if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        vmc_error ("%s: qcow2: nb_snapshots %" PRIu32 " exceeds the limit of "
                   "%d", img->filename, q->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
        return -1;
    }
    if (q->snapshots_offset == 0 ||
        !IS_ALIGNED (q->snapshots_offset, q->cluster_size)) {
        vmc_error ("%s: qcow2: snapshots_offset 0x%" PRIx64 " is not a "
                   "valid cluster offset", img->filename, q->snapshots_offset);
        return -1;
    }
    q->snapshots = image_alloc_table (img, "snapshot table", q->nb_snapshots,
                                      sizeof *q->snapshots,
                                      (uint64_t) QCOW2_MAX_SNAPSHOTS *
                                      sizeof *q->snapshots);
    if (q->snapshots == NULL) {
        return -1;
    }
    for (i = 0; i < q->nb_snapshots; i++) {
        if (range_outside (off, sizeof e, img->file->size)) {
            vmc_error ("%s: qcow2: snapshot table entry %" PRIu32 " lies "
                       "past end of file (nb_snapshots %" PRIu32 ")",
                       img->filename, i, q->nb_snapshots);
            return -1;
        }
        if (bdev_pread (img->file, e, sizeof e, off) == -1) {
            return -1;
        }
        q->snapshots[i].l1_offset = get_be64 (e);
        q->snapshots[i].l1_size = get_be32 (e + 8);
        id_len = get_be16 (e + 12);
        name_len = get_be16 (e + 14);
        extra = get_be32 (e + 36);
        if (extra > QCOW2_MAX_SNAPSHOT_EXTRA) {
            vmc_error ("%s: qcow2: snapshot %" PRIu32 " has %" PRIu32
                       " bytes of extra data (limit %d)", img->filename, i,
                       extra, QCOW2_MAX_SNAPSHOT_EXTRA);
            return -1;
        }
        l1_bytes = (uint64_t) q->snapshots[i].l1_size * 8;
        if (!IS_ALIGNED (q->snapshots[i].l1_offset, q->cluster_size) ||
            l1_bytes > QCOW2_MAX_L1_BYTES ||
            (l1_bytes > 0 && (q->snapshots[i].l1_offset == 0 ||
                              range_outside (q->snapshots[i].l1_offset,
                                             l1_bytes, img->file->size)))) {
            vmc_error ("%s: qcow2: snapshot %" PRIu32 " has an invalid L1 "
                       "table (offset 0x%" PRIx64 ", %" PRIu32 " entries)",
                       img->filename, i, q->snapshots[i].l1_offset,
                       q->snapshots[i].l1_size);
            return -1;
        }
        /* The padding of the last entry need not be in the file. */
        entry_len = 40 + (uint64_t) extra + id_len + name_len;
        q->snapshots_bytes = off + entry_len - q->snapshots_offset;
        if (q->snapshots_bytes > QCOW2_MAX_SNAPSHOT_TABLE ||
            off + entry_len > img->file->size) {
            vmc_error ("%s: qcow2: snapshot table runs past end of file or "
                       "its %" PRIu64 " byte limit (nb_snapshots %" PRIu32
                       ")", img->filename, QCOW2_MAX_SNAPSHOT_TABLE,
                       q->nb_snapshots);
            return -1;
        }
        off += ROUND_UP (entry_len, 8);
    }
    return 0;
}

/* Decode and validate the fixed header fields. */
static int
parse_header (struct image *img, const unsigned char *h, size_t hlen)
{
    struct qcow2 *q = img->priv;
    uint64_t size, l1_bytes, span, rt_bytes;

    q->version = get_be32 (h + QH_VERSION);
    if (q->version != 2 && q->version != 3) {
        vmc_error ("%s: qcow2: unsupported version %" PRIu32, img->filename,
                   q->version);
        return -1;
    }
    q->cluster_bits = get_be32 (h + QH_CLUSTER_BITS);
    if (q->cluster_bits < 9 || q->cluster_bits > 21) {
        vmc_error ("%s: qcow2: cluster_bits %u is out of range (9..21)",
                   img->filename, q->cluster_bits);
        return -1;
    }
    q->cluster_size = 1ull << q->cluster_bits;
    if (get_be32 (h + QH_CRYPT_METHOD) != 0) {
        vmc_error ("%s: qcow2: encrypted images are not supported "
                   "(crypt_method %" PRIu32 ")", img->filename,
                   get_be32 (h + QH_CRYPT_METHOD));
        return -1;
    }
    q->refcount_order = 4;
    q->header_length = QH_V2_LENGTH;
    if (q->version == 3) {
        if (hlen < QH_V3_MIN_LENGTH) {
            vmc_error ("%s: qcow2: file too small for a version 3 header",
                       img->filename);
            return -1;
        }
        q->incompatible = get_be64 (h + QH_INCOMPATIBLE);
        q->compatible = get_be64 (h + QH_COMPATIBLE);
        q->autoclear = get_be64 (h + QH_AUTOCLEAR);
        q->refcount_order = get_be32 (h + QH_REFCOUNT_ORDER);
        q->header_length = get_be32 (h + QH_HEADER_LENGTH);
        if (q->refcount_order > 6) {
            vmc_error ("%s: qcow2: refcount_order %u is out of range (0..6)",
                       img->filename, q->refcount_order);
            return -1;
        }
        if (q->header_length < QH_V3_MIN_LENGTH ||
            !IS_ALIGNED (q->header_length, 8) ||
            q->header_length > q->cluster_size ||
            q->header_length > hlen) {
            vmc_error ("%s: qcow2: invalid header_length %" PRIu64,
                       img->filename, q->header_length);
            return -1;
        }
        if (q->header_length > QH_COMPRESSION_TYPE) {
            q->compression_type = h[QH_COMPRESSION_TYPE];
        }
    }
    size = get_be64 (h + QH_SIZE);
    if (size > (1ull << 62)) {
        vmc_error ("%s: qcow2: virtual size %" PRIu64 " is too large",
                   img->filename, size);
        return -1;
    }
    img->size = size;

    q->l1_size = get_be32 (h + QH_L1_SIZE);
    q->l1_offset = get_be64 (h + QH_L1_OFFSET);
    q->refcount_table_offset = get_be64 (h + QH_REFCOUNT_OFFSET);
    q->refcount_table_clusters = get_be32 (h + QH_REFCOUNT_CLUSTERS);
    q->nb_snapshots = get_be32 (h + QH_NB_SNAPSHOTS);
    q->snapshots_offset = get_be64 (h + QH_SNAPSHOTS_OFFSET);

    q->extended_l2 = (q->incompatible & QINC_EXTENDED_L2) != 0;
    q->l2_entry_size = q->extended_l2 ? 16 : 8;
    q->l2_entries = q->cluster_size / q->l2_entry_size;
    if (q->extended_l2 && q->cluster_bits < 14) {
        vmc_error ("%s: qcow2: extended L2 entries need cluster_bits >= 14 "
                   "(cluster_bits %u)", img->filename, q->cluster_bits);
        return -1;
    }
    span = q->cluster_size * q->l2_entries;
    q->l1_needed = size / span + (size % span != 0);
    if (q->l1_needed > q->l1_size) {
        vmc_error ("%s: qcow2: l1_size %" PRIu32 " is too small for the "
                   "virtual size %" PRIu64 " (%" PRIu64 " entries needed)",
                   img->filename, q->l1_size, size, q->l1_needed);
        return -1;
    }
    l1_bytes = (uint64_t) q->l1_size * 8;
    if (l1_bytes > QCOW2_MAX_L1_BYTES) {
        vmc_error ("%s: qcow2: l1_size %" PRIu32 " exceeds the limit of %"
                   PRIu64 " entries", img->filename, q->l1_size,
                   QCOW2_MAX_L1_BYTES / 8);
        return -1;
    }
    if (q->l1_size > 0 &&
        (!IS_ALIGNED (q->l1_offset, q->cluster_size) || q->l1_offset == 0 ||
         range_outside (q->l1_offset, l1_bytes, img->file->size))) {
        vmc_error ("%s: qcow2: l1_table_offset 0x%" PRIx64 " (%" PRIu32
                   " entries) is not cluster aligned or lies past end of "
                   "file", img->filename, q->l1_offset, q->l1_size);
        return -1;
    }
    rt_bytes = (uint64_t) q->refcount_table_clusters << q->cluster_bits;
    if (q->refcount_table_clusters == 0 ||
        rt_bytes > QCOW2_MAX_REFTABLE_BYTES) {
        vmc_error ("%s: qcow2: refcount_table_clusters %" PRIu32 " is out "
                   "of range (1..%" PRIu64 " bytes)", img->filename,
                   q->refcount_table_clusters, QCOW2_MAX_REFTABLE_BYTES);
        return -1;
    }
    if (!IS_ALIGNED (q->refcount_table_offset, q->cluster_size) ||
        q->refcount_table_offset == 0 ||
        range_outside (q->refcount_table_offset, rt_bytes, img->file->size)) {
        vmc_error ("%s: qcow2: refcount_table_offset 0x%" PRIx64 " is not "
                   "cluster aligned or lies past end of file", img->filename,
                   q->refcount_table_offset);
        return -1;
    }
    return 0;
}

/* Refuse features we cannot read; warn about the corrupt bit. */
static int
check_features (struct image *img, const unsigned char *ftab,
                uint32_t ftab_len)
{
    struct qcow2 *q = img->priv;
    uint64_t unknown = q->incompatible & ~QINC_KNOWN;
    char name[64];
    unsigned bit;

    if (q->incompatible & QINC_DATA_FILE) {
        vmc_error ("%s: qcow2: external data files are not supported",
                   img->filename);
        return -1;
    }
    if (unknown != 0) {
        bit = (unsigned) __builtin_ctzll (unknown);
        feature_name (ftab, ftab_len, bit, name, sizeof name);
        vmc_error ("%s: qcow2: unknown incompatible feature bit %u%s",
                   img->filename, bit, name);
        return -1;
    }
    if ((q->incompatible & QINC_COMPRESSION) != 0) {
        if (q->compression_type == QCOMP_DEFLATE) {
            vmc_error ("%s: qcow2: the compression type bit is set but "
                       "compression_type is 0", img->filename);
            return -1;
        }
    }
    else if (q->compression_type != QCOMP_DEFLATE) {
        vmc_error ("%s: qcow2: compression_type %u without the compression "
                   "type feature bit", img->filename, q->compression_type);
        return -1;
    }
    if (q->compression_type > QCOMP_ZSTD) {
        vmc_error ("%s: qcow2: unknown compression_type %u", img->filename,
                   q->compression_type);
        return -1;
    }
    if (q->incompatible & QINC_CORRUPT) {
        vmc_warn ("%s: qcow2: the image is marked corrupt; reading it "
                  "anyway", img->filename);
    }
    return 0;
}

static int
read_backing_name (struct image *img, const unsigned char *h)
{
    struct qcow2 *q = img->priv;
    uint64_t off = get_be64 (h + QH_BACKING_OFFSET);
    uint32_t len = get_be32 (h + QH_BACKING_SIZE);
    char *name;

    if (off == 0 || len == 0) {
        return 0;
    }
    if (len > QCOW2_MAX_BACKING_NAME) {
        vmc_error ("%s: qcow2: backing_file_size %" PRIu32 " exceeds %d "
                   "bytes", img->filename, len, QCOW2_MAX_BACKING_NAME);
        return -1;
    }
    if (off > q->cluster_size || off < q->header_length ||
        range_outside (off, len, img->file->size)) {
        vmc_error ("%s: qcow2: backing_file_offset 0x%" PRIx64 " (size %"
                   PRIu32 ") lies outside the header cluster or the file",
                   img->filename, off, len);
        return -1;
    }
    name = malloc (len + 1);
    if (name == NULL) {
        vmc_perror ("malloc");
        return -1;
    }
    if (bdev_pread (img->file, name, len, off) == -1) {
        free (name);
        return -1;
    }
    name[len] = '\0';
    if (strlen (name) != len) {
        vmc_error ("%s: qcow2: backing file name contains a NUL byte",
                   img->filename);
        free (name);
        return -1;
    }
    img->backing_name = name;
    return 0;
}

static int
load_l1 (struct image *img)
{
    struct qcow2 *q = img->priv;
    unsigned char *raw;
    uint64_t i;

    q->l1 = image_alloc_table (img, "L1 table", q->l1_needed, 8,
                               QCOW2_MAX_L1_BYTES);
    if (q->l1 == NULL) {
        return -1;
    }
    if (q->l1_needed == 0) {
        return 0;
    }
    raw = (unsigned char *) q->l1;
    if (bdev_pread (img->file, raw, q->l1_needed * 8, q->l1_offset) == -1) {
        return -1;
    }
    for (i = 0; i < q->l1_needed; i++) {
        q->l1[i] = get_be64 (raw + i * 8);
    }
    return 0;
}

static void
add_info (struct image *img)
{
    struct qcow2 *q = img->priv;

    snprintf (img->subformat, sizeof img->subformat, "v%" PRIu32, q->version);
    img->cluster_size = q->cluster_size;
    image_info_add (img, "compat", "%s", q->version == 2 ? "0.10" : "1.1");
    image_info_add (img, "compression type", "%s",
                    q->compression_type == QCOMP_ZSTD ? "zstd" : "zlib");
    if (q->version == 3) {
        image_info_add (img, "lazy refcounts", "%s",
                        q->compatible & QCOMPAT_LAZY_REFCOUNTS ? "true"
                        : "false");
    }
    image_info_add (img, "refcount bits", "%u", 1u << q->refcount_order);
    image_info_add (img, "corrupt", "%s",
                    q->incompatible & QINC_CORRUPT ? "true" : "false");
    image_info_add (img, "extended l2", "%s",
                    q->extended_l2 ? "true" : "false");
    if (q->incompatible & QINC_DIRTY) {
        image_info_add (img, "dirty", "true");
    }
    image_info_add (img, "snapshots", "%" PRIu32, q->nb_snapshots);
    if (q->nb_bitmaps > 0) {
        image_info_add (img, "bitmaps", "%" PRIu32, q->nb_bitmaps);
    }
}

static int
qcow2_open (struct image *img)
{
    struct qcow2 *q = img->priv;
    unsigned char *head = NULL;
    const unsigned char *ftab = NULL;
    uint32_t ftab_len = 0;
    uint64_t hlen, ext_end, boff;
    unsigned i;
    int r = -1;

    if (img->file->size < QH_V2_LENGTH) {
        vmc_error ("%s: qcow2: file too small for a header", img->filename);
        return -1;
    }
    /* The header and its extensions live in the first cluster; read it
     * (or the whole file if smaller) once cluster_bits is validated, so
     * this is at most 2 MiB. */
    head = malloc (QH_V2_LENGTH);
    if (head == NULL) {
        vmc_perror ("malloc");
        return -1;
    }
    if (bdev_pread (img->file, head, QH_V2_LENGTH, 0) == -1) {
        goto out;
    }
    if (get_be32 (head) != QCOW2_MAGIC) {
        vmc_error ("%s: qcow2: bad magic", img->filename);
        goto out;
    }
    i = get_be32 (head + QH_CLUSTER_BITS);
    if (i < 9 || i > 21) {
        vmc_error ("%s: qcow2: cluster_bits %u is out of range (9..21)",
                   img->filename, i);
        goto out;
    }
    hlen = MIN (img->file->size, 1ull << i);
    free (head);
    head = malloc (hlen);
    if (head == NULL) {
        vmc_perror ("malloc");
        goto out;
    }
    if (bdev_pread (img->file, head, hlen, 0) == -1 ||
        parse_header (img, head, hlen) == -1) {
        goto out;
    }
    /* Extensions end where the backing file name starts, or at the end of
     * the first cluster. */
    ext_end = hlen;
    boff = get_be64 (head + QH_BACKING_OFFSET);
    if (boff != 0 && boff < ext_end) {
        ext_end = boff;
    }
    if (parse_extensions (img, head, q->header_length, ext_end, &ftab,
                          &ftab_len) == -1 ||
        check_features (img, ftab, ftab_len) == -1 ||
        read_backing_name (img, head) == -1 ||
        read_snapshot_table (img) == -1 ||
        load_l1 (img) == -1) {
        goto out;
    }

    /* Compressed descriptor split. */
    q->csize_shift = 62 - (q->cluster_bits - 8);
    q->csize_mask = (1ull << (q->cluster_bits - 8)) - 1;
    q->coffset_mask = (1ull << q->csize_shift) - 1;

    q->l2_slots = (unsigned) MAX (2, MIN (64, QCOW2_L2_CACHE_BYTES /
                                          q->cluster_size));
    q->l2_cache = calloc (q->l2_slots, sizeof *q->l2_cache);
    if (q->l2_cache == NULL) {
        vmc_perror ("calloc");
        goto out;
    }
    add_info (img);
    r = 0;
out:
    free (head);
    return r;
}

static void
qcow2_close (struct image *img)
{
    struct qcow2 *q = img->priv;
    unsigned i;

    if (q == NULL) {
        return;
    }
    qcow2_writer_free (img);
    free (q->l1);
    free (q->snapshots);
    if (q->l2_cache != NULL) {
        for (i = 0; i < q->l2_slots; i++) {
            free (q->l2_cache[i].data);
        }
        free (q->l2_cache);
    }
    if (q->have_dworker) {
        pthread_mutex_lock (&q->dlock);
        q->dstop = true;
        pthread_cond_broadcast (&q->dcond);
        pthread_mutex_unlock (&q->dlock);
        pthread_join (q->dworker, NULL);
        pthread_mutex_destroy (&q->dlock);
        pthread_cond_destroy (&q->dcond);
    }
    free (q->ditems);
    free (q->dbuf);
    for (i = 0; i < 2; i++) {
        free (q->dec[i].cbuf);
        if (q->dec[i].zstream != NULL) {
            inflateEnd (q->dec[i].zstream);
            free (q->dec[i].zstream);
        }
        ZSTD_freeDCtx (q->dec[i].zstd);
    }
}

/* ------------------------------------------------------------------ */
/* Mapping                                                              */
/* ------------------------------------------------------------------ */

/* The L2 table at L2_OFFSET (from an L1 entry, for guest offset GUEST, used
 * in messages), through the cache.  NULL with a message on error. */
const unsigned char *
qcow2_load_l2 (struct image *img, uint64_t l2_offset, uint64_t guest)
{
    struct qcow2 *q = img->priv;
    struct qcow2_l2_slot *s, *victim = NULL;
    unsigned i;

    for (i = 0; i < q->l2_slots; i++) {
        s = &q->l2_cache[i];
        if (s->offset == l2_offset && s->data != NULL) {
            s->last_use = ++q->l2_clock;
            return s->data;
        }
        if (victim == NULL || s->last_use < victim->last_use) {
            victim = s;
        }
    }
    if (!IS_ALIGNED (l2_offset, q->cluster_size)) {
        vmc_error ("%s: qcow2: L2 table offset 0x%" PRIx64 " for guest "
                   "offset %" PRIu64 " is not cluster aligned", img->filename,
                   l2_offset, guest);
        return NULL;
    }
    if (range_outside (l2_offset, q->cluster_size, img->file->size)) {
        vmc_error ("%s: qcow2: L2 table offset 0x%" PRIx64 " for guest "
                   "offset %" PRIu64 " points past end of file",
                   img->filename, l2_offset, guest);
        return NULL;
    }
    if (victim->data == NULL) {
        victim->data = malloc (q->cluster_size);
        if (victim->data == NULL) {
            vmc_perror ("malloc");
            return NULL;
        }
    }
    victim->offset = 0;
    if (bdev_pread (img->file, victim->data, q->cluster_size,
                    l2_offset) == -1) {
        return NULL;
    }
    victim->offset = l2_offset;
    victim->last_use = ++q->l2_clock;
    return victim->data;
}

/* Split a compressed L2 entry into host offset and byte length (to the end
 * of its last sector).  False if reserved offset bits are set. */
bool
qcow2_parse_compressed (const struct qcow2 *q, uint64_t entry, uint64_t *host,
                        uint64_t *len)
{
    uint64_t desc = entry & QL2_DESC_MASK;
    uint64_t sectors = ((desc >> q->csize_shift) & q->csize_mask) + 1;

    *host = desc & q->coffset_mask;
    *len = sectors * 512 - (*host & 511);
    return (*host >> 56) == 0;
}

enum qkind {
    QK_NORMAL,          /* data at host offset */
    QK_COMPRESSED,      /* a compressed cluster; entry in `entry` */
    QK_ZERO,
    QK_UNALLOC,
};

struct qrun {
    enum qkind kind;
    uint64_t host;      /* QK_NORMAL: host offset of the run's start */
    uint64_t entry;     /* QK_COMPRESSED: the L2 entry */
    uint64_t len;
};

/* Classify the unit (cluster, or subcluster with extended L2) holding guest
 * offset OFF from its L2 entry.  Sets *kind, *host (host offset of OFF for
 * normal data) and *unit_end (guest offset where this unit ends). */
static int
classify (struct image *img, const unsigned char *l2, uint64_t off,
          enum qkind *kind, uint64_t *host, uint64_t *entry_out,
          uint64_t *unit_end)
{
    struct qcow2 *q = img->priv;
    uint64_t cl = off >> q->cluster_bits;
    uint64_t idx = cl & (q->l2_entries - 1);
    uint64_t in = off & (q->cluster_size - 1);
    uint64_t entry, hoff, bitmap, clen;
    unsigned sc, sc_bits;
    uint32_t alloc, zero;

    entry = get_be64 (l2 + idx * q->l2_entry_size);
    *entry_out = entry;
    *unit_end = (cl + 1) << q->cluster_bits;
    if (entry & QL2_COMPRESSED) {
        if (q->extended_l2 && get_be64 (l2 + idx * 16 + 8) != 0) {
            vmc_error ("%s: qcow2: compressed cluster at guest offset %"
                       PRIu64 " has a non-zero subcluster bitmap",
                       img->filename, cl << q->cluster_bits);
            return -1;
        }
        if (!qcow2_parse_compressed (q, entry, &hoff, &clen) ||
            hoff >= img->file->size) {
            vmc_error ("%s: qcow2: compressed cluster at guest offset %"
                       PRIu64 " points past end of file (0x%" PRIx64 ")",
                       img->filename, cl << q->cluster_bits, hoff);
            return -1;
        }
        *kind = QK_COMPRESSED;
        return 0;
    }
    hoff = entry & QL2_OFFSET_MASK;
    if (hoff != 0 && (!IS_ALIGNED (hoff, q->cluster_size) ||
                      hoff >= img->file->size)) {
        vmc_error ("%s: qcow2: L2 entry for guest offset %" PRIu64 " points "
                   "%s (0x%" PRIx64 ")", img->filename, cl << q->cluster_bits,
                   hoff >= img->file->size ? "past end of file"
                   : "to an unaligned host offset", hoff);
        return -1;
    }
    *host = hoff + in;
    if (!q->extended_l2) {
        if (entry & QL2_ZERO) {
            *kind = QK_ZERO;
        }
        else {
            *kind = hoff != 0 ? QK_NORMAL : QK_UNALLOC;
        }
        return 0;
    }
    bitmap = get_be64 (l2 + idx * 16 + 8);
    alloc = (uint32_t) bitmap;
    zero = (uint32_t) (bitmap >> 32);
    if ((alloc & zero) != 0 || (alloc != 0 && hoff == 0)) {
        vmc_error ("%s: qcow2: invalid subcluster bitmap 0x%016" PRIx64
                   " for guest offset %" PRIu64, img->filename, bitmap,
                   cl << q->cluster_bits);
        return -1;
    }
    sc_bits = q->cluster_bits - 5;
    sc = (unsigned) (in >> sc_bits);
    *unit_end = (cl << q->cluster_bits) + ((uint64_t) (sc + 1) << sc_bits);
    if (alloc & (1u << sc)) {
        *kind = QK_NORMAL;
    }
    else if (zero & (1u << sc)) {
        *kind = QK_ZERO;
    }
    else {
        *kind = QK_UNALLOC;
    }
    return 0;
}

/* Map the guest range starting at OFF (at most MAX bytes) to one run of the
 * same kind.  READ mode: normal runs are host-contiguous and a compressed
 * run is one cluster.  Status mode (read false): normal and compressed
 * merge, whatever their host offsets. */
static int
map_run (struct image *img, uint64_t off, uint64_t max, bool read,
         struct qrun *r)
{
    struct qcow2 *q = img->priv;
    uint64_t end = off + max, pos = off, l1i, l1e, l2off, span_end;
    uint64_t host = 0, entry = 0, unit_end, expect = 0;
    const unsigned char *l2;
    enum qkind kind;
    bool first = true;

    span_end = 0;
    l2 = NULL;
    while (pos < end) {
        l1i = pos >> q->cluster_bits;
        l1i /= q->l2_entries;
        if (pos >= span_end) {
            l1e = l1i < q->l1_needed ? q->l1[l1i] : 0;
            l2off = l1e & QL1_OFFSET_MASK;
            span_end = (l1i + 1) * q->l2_entries << q->cluster_bits;
            if (l2off == 0) {
                l2 = NULL;
            }
            else {
                l2 = qcow2_load_l2 (img, l2off, pos);
                if (l2 == NULL) {
                    return -1;
                }
            }
        }
        if (l2 == NULL) {
            kind = QK_UNALLOC;
            unit_end = span_end;
        }
        else if (classify (img, l2, pos, &kind, &host, &entry,
                           &unit_end) == -1) {
            return -1;
        }
        if (first) {
            r->kind = kind;
            r->host = host;
            r->entry = entry;
            first = false;
        }
        else if (read) {
            if (kind != r->kind || kind == QK_COMPRESSED ||
                (kind == QK_NORMAL && host != expect)) {
                break;
            }
        }
        else {
            bool data = kind == QK_NORMAL || kind == QK_COMPRESSED;
            bool rdata = r->kind == QK_NORMAL || r->kind == QK_COMPRESSED;

            if (data != rdata || (!data && kind != r->kind)) {
                break;
            }
        }
        expect = host + (unit_end - pos);
        pos = unit_end;
        if (read && kind == QK_COMPRESSED) {
            break;
        }
    }
    r->len = MIN (pos, end) - off;
    return 0;
}

static int
qcow2_block_status (struct image *img, uint64_t offset, uint64_t count,
                    struct extent *ext)
{
    struct qrun r;

    if (map_run (img, offset, count, false, &r) == -1) {
        return -1;
    }
    ext->length = r.len;
    switch (r.kind) {
    case QK_NORMAL:
    case QK_COMPRESSED:
        ext->type = EXTENT_DATA;
        break;
    case QK_ZERO:
        ext->type = EXTENT_ZERO;
        break;
    default:
        ext->type = EXTENT_UNALLOCATED;
        break;
    }
    return 0;
}

/* Decompress the cluster described by ENTRY (for guest offset GUEST, in
 * messages) into OUT, one cluster, with decompressor D.  Safe to run in the
 * helper thread: it touches only D, OUT and the file. */
static int
decompress_into (struct image *img, struct qcow2_dec *d, uint64_t entry,
                 uint64_t guest, unsigned char *out)
{
    struct qcow2 *q = img->priv;
    uint64_t host, len;
    size_t avail;
    int zr;

    if (d->cbuf == NULL) {
        /* The sectors field allows at most 2^(cluster_bits-8) sectors,
         * i.e. two clusters. */
        d->cbuf = malloc (2 * q->cluster_size);
        if (d->cbuf == NULL) {
            vmc_perror ("malloc");
            return -1;
        }
    }
    (void) qcow2_parse_compressed (q, entry, &host, &len);
    /* The last sector may extend past the end of the file; the compressed
     * stream itself must not. */
    avail = (size_t) MIN (len, img->file->size - host);
    if (bdev_pread (img->file, d->cbuf, avail, host) == -1) {
        return -1;
    }
    if (q->compression_type == QCOMP_ZSTD) {
        ZSTD_inBuffer in = { d->cbuf, avail, 0 };
        ZSTD_outBuffer o = { out, q->cluster_size, 0 };
        size_t zret = 1, last_in, last_out;

        if (d->zstd == NULL) {
            d->zstd = ZSTD_createDCtx ();
            if (d->zstd == NULL) {
                vmc_error ("qcow2: cannot allocate a zstd context");
                return -1;
            }
        }
        ZSTD_DCtx_reset (d->zstd, ZSTD_reset_session_only);
        while (o.pos < o.size) {
            last_in = in.pos;
            last_out = o.pos;
            zret = ZSTD_decompressStream (d->zstd, &o, &in);
            if (ZSTD_isError (zret) ||
                (in.pos == last_in && o.pos == last_out)) {
                break;
            }
        }
        /* The frame must end with the cluster (zret 0): more output
         * would mean more than one cluster. */
        if (o.pos != o.size || zret != 0) {
            vmc_error ("%s: qcow2: compressed cluster at guest offset %"
                       PRIu64 " (host 0x%" PRIx64 ") is not valid zstd data "
                       "for one cluster", img->filename, guest, host);
            return -1;
        }
    }
    else {
        z_stream *zs = d->zstream;

        if (zs == NULL) {
            zs = calloc (1, sizeof *zs);
            if (zs == NULL) {
                vmc_perror ("calloc");
                return -1;
            }
            if (inflateInit2 (zs, -15) != Z_OK) {
                free (zs);
                vmc_error ("qcow2: cannot initialise zlib");
                return -1;
            }
            d->zstream = zs;
        }
        else {
            inflateReset (zs);
        }
        zs->next_in = d->cbuf;
        zs->avail_in = (uInt) avail;
        zs->next_out = out;
        zs->avail_out = (uInt) q->cluster_size;
        zr = inflate (zs, Z_FINISH);
        if (!((zr == Z_STREAM_END || zr == Z_BUF_ERROR) &&
              zs->avail_out == 0)) {
            vmc_error ("%s: qcow2: compressed cluster at guest offset %"
                       PRIu64 " (host 0x%" PRIx64 ") is not valid deflate "
                       "data for one cluster", img->filename, guest, host);
            return -1;
        }
    }
    return 0;
}

/* Decompress ENTRY into the one-cluster cache q->dbuf. */
static int
decompress_cached (struct image *img, uint64_t entry, uint64_t guest)
{
    struct qcow2 *q = img->priv;

    if (q->dbuf_entry == entry && q->dbuf != NULL) {
        return 0;
    }
    if (q->dbuf == NULL) {
        q->dbuf = malloc (q->cluster_size);
        if (q->dbuf == NULL) {
            vmc_perror ("malloc");
            return -1;
        }
    }
    q->dbuf_entry = 0;
    if (decompress_into (img, &q->dec[0], entry, guest, q->dbuf) == -1) {
        return -1;
    }
    q->dbuf_entry = entry;
    return 0;
}

/* Take batch items until none is left. */
static void
run_ditems (struct image *img, struct qcow2_dec *d)
{
    struct qcow2 *q = img->priv;
    struct qcow2_ditem *it;
    unsigned i;

    while ((i = __atomic_fetch_add (&q->next_ditem, 1, __ATOMIC_RELAXED)) <
           q->nditems) {
        it = &q->ditems[i];
        it->r = decompress_into (img, d, it->entry, it->guest, it->out);
    }
}

static void *
dworker_main (void *arg)
{
    struct image *img = arg;
    struct qcow2 *q = img->priv;
    unsigned seen = 0;

    for (;;) {
        pthread_mutex_lock (&q->dlock);
        while (!q->dstop && q->dgen == seen) {
            pthread_cond_wait (&q->dcond, &q->dlock);
        }
        if (q->dstop) {
            pthread_mutex_unlock (&q->dlock);
            return NULL;
        }
        seen = q->dgen;
        pthread_mutex_unlock (&q->dlock);
        run_ditems (img, &q->dec[1]);
        pthread_mutex_lock (&q->dlock);
        q->dworker_gen = seen;
        pthread_cond_broadcast (&q->dcond);
        pthread_mutex_unlock (&q->dlock);
    }
}

/* Decompress the batch: with the helper when there are several clusters
 * (started on first use).  A failed item is redone here, so that its
 * message is recorded in this thread. */
static int
flush_ditems (struct image *img)
{
    struct qcow2 *q = img->priv;
    unsigned i;

    if (q->nditems == 0) {
        return 0;
    }
    q->next_ditem = 0;
    if (q->nditems > 1 && !q->have_dworker) {
        pthread_mutex_init (&q->dlock, NULL);
        pthread_cond_init (&q->dcond, NULL);
        if (pthread_create (&q->dworker, NULL, dworker_main, img) == 0) {
            q->have_dworker = true;
        }
        else {
            pthread_mutex_destroy (&q->dlock);
            pthread_cond_destroy (&q->dcond);
        }
    }
    if (q->nditems > 1 && q->have_dworker) {
        pthread_mutex_lock (&q->dlock);
        q->dgen++;
        pthread_cond_broadcast (&q->dcond);
        pthread_mutex_unlock (&q->dlock);
        run_ditems (img, &q->dec[0]);
        pthread_mutex_lock (&q->dlock);
        while (q->dworker_gen != q->dgen) {
            pthread_cond_wait (&q->dcond, &q->dlock);
        }
        pthread_mutex_unlock (&q->dlock);
    }
    else {
        run_ditems (img, &q->dec[0]);
    }
    for (i = 0; i < q->nditems; i++) {
        if (q->ditems[i].r == -1 &&
            decompress_into (img, &q->dec[0], q->ditems[i].entry,
                             q->ditems[i].guest, q->ditems[i].out) == -1) {
            q->nditems = 0;
            return -1;
        }
    }
    q->nditems = 0;
    return 0;
}

static int
qcow2_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    struct qcow2 *q = img->priv;
    unsigned char *p = buf;
    struct qrun r;
    uint64_t avail, n;

    while (count > 0) {
        if (map_run (img, offset, count, true, &r) == -1) {
            q->nditems = 0;
            return -1;
        }
        n = r.len;
        switch (r.kind) {
        case QK_NORMAL:
            /* A last cluster cut short by the end of the file reads as
             * zeros past it (map_run checked that it starts inside). */
            avail = MIN (n, img->file->size - MIN (r.host, img->file->size));
            if (avail > 0 &&
                bdev_pread (img->file, p, (size_t) avail, r.host) == -1) {
                q->nditems = 0;
                return -1;
            }
            memset (p + avail, 0, (size_t) (n - avail));
            break;
        case QK_COMPRESSED:
            if (n == q->cluster_size && q->dbuf_entry != r.entry) {
                /* A whole cluster: batch it, straight into BUF. */
                if (q->ditems == NULL) {
                    q->ditems = calloc (QCOW2_DBATCH, sizeof *q->ditems);
                    if (q->ditems == NULL) {
                        vmc_perror ("calloc");
                        return -1;
                    }
                }
                q->ditems[q->nditems].entry = r.entry;
                q->ditems[q->nditems].guest = offset;
                q->ditems[q->nditems].out = p;
                if (++q->nditems == QCOW2_DBATCH && flush_ditems (img) == -1) {
                    return -1;
                }
                break;
            }
            if (decompress_cached (img, r.entry, offset) == -1) {
                q->nditems = 0;
                return -1;
            }
            memcpy (p, q->dbuf + (offset & (q->cluster_size - 1)), n);
            break;
        case QK_ZERO:
            memset (p, 0, n);
            break;
        default:
            if (image_read_backing (img, p, (size_t) n, offset) == -1) {
                q->nditems = 0;
                return -1;
            }
            break;
        }
        p += n;
        offset += n;
        count -= n;
    }
    return flush_ditems (img);
}

const struct image_format format_qcow2 = {
    .name = "qcow2",
    .description = "QEMU copy-on-write v2/v3 (zlib/zstd compression, "
                   "backing files, extended L2)",
    .priv_size = sizeof (struct qcow2),
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .pread = qcow2_pread,
    .block_status = qcow2_block_status,
    .check = qcow2_check,
    .create_opts = qcow2_create_opts,
    .create = qcow2_create,
    .pwrite = qcow2_pwrite,
    .finish = qcow2_finish,
    .checkpoint = qcow2_checkpoint,
    .resume = qcow2_resume,
};
