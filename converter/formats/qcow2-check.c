/* SPDX-License-Identifier: MIT */
/*
 * qcow2 check: full refcount verification, as `qemu-img check` does it.
 *
 * Every structure that uses host clusters is walked and its clusters are
 * counted: the header, the active L1 table, every L2 table and every data
 * cluster it maps (a compressed cluster counts every host cluster from its
 * first byte to the end of its last 512-byte sector; an allocated zero
 * cluster counts its host cluster), the snapshot table and each snapshot's
 * L1 table, L2 tables and data, the refcount table and its blocks, and the
 * bitmap directory, bitmap tables and bitmap data.  The counts are then
 * compared with the stored refcounts: a stored refcount lower than the
 * count is corruption (check_error), a higher one is a leak (check_leak).
 * Also reported as corruption: offsets past the end of the file,
 * misaligned offsets, invalid subcluster bitmaps, and the "copied" flag
 * (bit 63) of active L1/L2 entries disagreeing with a refcount of exactly
 * one, as qemu reports them.
 *
 * Memory: one 16-bit counter per host cluster, for a window of at most
 * QCK_WINDOW clusters (16 MiB of counters); bigger files are checked in
 * several passes over the metadata, each counting one window.  Structural
 * errors are reported on the first pass only.  The refcount table (at most
 * 8 MiB) and one refcount block are held in memory.
 *
 * Work is bounded: the L1 tables (active and snapshots) are read once and
 * the L2 tables they reference collected (at most QCK_MAX_L2REFS, 16 bytes
 * each), sorted, and each distinct L2 table is walked once per pass with
 * its number of references as a weight.  So a hostile image whose L1
 * entries all name the same L2 table costs one walk, and a pass reads at
 * most one L2 table per host cluster.  The L1 tables together may not be
 * larger than the file (in a sound image they do not overlap).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"
#include "qcow2.h"

#define QCK_WINDOW (8ull << 20)         /* clusters counted per pass */
#define QCK_MAX_BITMAP_DIR (64ull << 20)
#define QCK_MAX_BITMAP_TABLE (1ull << 27) /* entries, as qemu */
#define QCK_MAX_L2REFS (2u << 20)       /* L2 references, 32 MiB */

/* One reference from an L1 entry to an L2 table. */
struct l2ref {
    uint64_t offset;            /* L2 table offset; bit 0: from active L1 */
    uint64_t l1_index;          /* for messages */
};

struct ck {
    struct image *img;
    struct qcow2 *q;
    struct check_result *res;
    uint64_t nclusters;         /* host clusters in the file */
    uint64_t win;               /* first cluster of the window */
    uint64_t win_len;
    uint16_t *cnt;
    bool first_pass;

    struct l2ref *refs;         /* L2 references from all L1 tables */
    uint64_t nrefs;
    uint64_t refs_cap;

    unsigned char *rt;          /* refcount table, as on disk */
    uint64_t rt_entries;
    unsigned char *rb;          /* cached refcount block */
    uint64_t rb_offset;         /* its host offset, 0: none */
    uint64_t rb_entries;

    unsigned char *buf;         /* one cluster of scratch (L1 chunks) */
    unsigned char *l2;          /* one cluster: the L2 table walked */
};

#define ERR(ck, ...)                                                    \
    do {                                                                \
        if ((ck)->first_pass) {                                         \
            check_error ((ck)->res, __VA_ARGS__);                       \
        }                                                               \
    } while (0)

/* Count WEIGHT references to every cluster in [off, off+len). */
static void
add_refs (struct ck *ck, uint64_t off, uint64_t len, const char *what,
          uint64_t weight)
{
    uint64_t c, c1, c2, end, v;

    if (len == 0) {
        return;
    }
    if (ckd_add (&end, off, len) || off >= ck->img->file->size) {
        ERR (ck, "qcow2: %s at 0x%" PRIx64 " lies past end of file", what,
             off);
        return;
    }
    c1 = off >> ck->q->cluster_bits;
    c2 = MIN ((end - 1) >> ck->q->cluster_bits, ck->nclusters - 1);
    for (c = MAX (c1, ck->win); c <= c2 && c < ck->win + ck->win_len; c++) {
        v = ck->cnt[c - ck->win] + weight;
        ck->cnt[c - ck->win] = (uint16_t) MIN (v, UINT16_MAX);
    }
}

static void
add_ref (struct ck *ck, uint64_t off, uint64_t len, const char *what)
{
    add_refs (ck, off, len, what, 1);
}

/* The stored refcount of cluster C (0 where no valid block covers it). */
static int
get_refcount (struct ck *ck, uint64_t c, uint64_t *rc)
{
    struct qcow2 *q = ck->q;
    uint64_t bi = c / ck->rb_entries, idx = c % ck->rb_entries, boff;
    unsigned bits = 1u << q->refcount_order;
    const unsigned char *p;

    *rc = 0;
    if (bi >= ck->rt_entries) {
        return 0;
    }
    boff = get_be64 (ck->rt + bi * 8) & ~511ull;
    if (boff == 0 || !IS_ALIGNED (boff, q->cluster_size) ||
        range_outside (boff, q->cluster_size, ck->img->file->size)) {
        return 0;
    }
    if (ck->rb_offset != boff) {
        ck->rb_offset = 0;
        if (bdev_pread (ck->img->file, ck->rb, q->cluster_size, boff) == -1) {
            return -1;
        }
        ck->rb_offset = boff;
    }
    if (bits >= 8) {
        p = ck->rb + idx * (bits / 8);
        switch (bits) {
        case 8: *rc = p[0]; break;
        case 16: *rc = get_be16 (p); break;
        case 32: *rc = get_be32 (p); break;
        default: *rc = get_be64 (p); break;
        }
    }
    else {
        p = ck->rb + idx * bits / 8;
        *rc = (p[0] >> ((idx * bits) % 8)) & ((1u << bits) - 1);
    }
    return 0;
}

/* Compare the copied flag of an active entry with the cluster's refcount. */
static int
check_copied (struct ck *ck, uint64_t entry, uint64_t host, const char *what,
              uint64_t index)
{
    uint64_t rc;

    if (!ck->first_pass) {
        return 0;
    }
    if (get_refcount (ck, host >> ck->q->cluster_bits, &rc) == -1) {
        return -1;
    }
    if ((rc == 1) != ((entry & QL2_COPIED) != 0)) {
        check_error (ck->res, "qcow2: copied flag of %s %" PRIu64 " (entry "
                     "0x%016" PRIx64 ") does not match refcount %" PRIu64,
                     what, index, entry, rc);
    }
    return 0;
}

/* Walk the L2 table at L2OFF, counting its data clusters WEIGHT times
 * (the number of L1 entries that reference it). */
static int
walk_l2 (struct ck *ck, uint64_t l2off, uint64_t l1i, bool active,
         uint64_t weight)
{
    struct qcow2 *q = ck->q;
    uint64_t i, e, bitmap, hoff, len, guest;
    uint32_t alloc, zero;

    if (bdev_pread (ck->img->file, ck->l2, q->cluster_size, l2off) == -1) {
        return -1;
    }
    for (i = 0; i < q->l2_entries; i++) {
        e = get_be64 (ck->l2 + i * q->l2_entry_size);
        bitmap = q->extended_l2 ? get_be64 (ck->l2 + i * 16 + 8) : 0;
        guest = ((l1i * q->l2_entries) + i) << q->cluster_bits;
        if (e & QL2_COMPRESSED) {
            if (!qcow2_parse_compressed (q, e, &hoff, &len)) {
                ERR (ck, "qcow2: compressed cluster at guest offset %" PRIu64
                     " has reserved offset bits set", guest);
                continue;
            }
            if (bitmap != 0) {
                ERR (ck, "qcow2: compressed cluster at guest offset %" PRIu64
                     " has a non-zero subcluster bitmap", guest);
            }
            if (active && (e & QL2_COPIED)) {
                ERR (ck, "qcow2: compressed cluster at guest offset %" PRIu64
                     " has the copied flag set", guest);
            }
            add_refs (ck, hoff, len, "compressed cluster", weight);
            continue;
        }
        hoff = e & QL2_OFFSET_MASK;
        if (q->extended_l2) {
            alloc = (uint32_t) bitmap;
            zero = (uint32_t) (bitmap >> 32);
            if ((alloc & zero) != 0 || (alloc != 0 && hoff == 0)) {
                ERR (ck, "qcow2: invalid subcluster bitmap 0x%016" PRIx64
                     " for guest offset %" PRIu64, bitmap, guest);
            }
        }
        if (hoff == 0) {
            continue;
        }
        if (!IS_ALIGNED (hoff, q->cluster_size)) {
            ERR (ck, "qcow2: L2 entry for guest offset %" PRIu64 " points to "
                 "unaligned host offset 0x%" PRIx64, guest, hoff);
            continue;
        }
        if (hoff >= ck->img->file->size) {
            ERR (ck, "qcow2: L2 entry for guest offset %" PRIu64 " points "
                 "past end of file (0x%" PRIx64 ")", guest, hoff);
            continue;
        }
        add_refs (ck, hoff, q->cluster_size, "data cluster", weight);
        if (active && check_copied (ck, e, hoff, "L2 entry for guest cluster",
                                    guest >> q->cluster_bits) == -1) {
            return -1;
        }
    }
    return 0;
}

/* Read an L1 table of N entries at OFF and collect its L2 references
 * (first pass only). */
static int
collect_l1 (struct ck *ck, uint64_t off, uint64_t n, bool active)
{
    struct qcow2 *q = ck->q;
    uint64_t per = q->cluster_size / 8, i, j, chunk, e, l2off;

    for (i = 0; i < n; i += chunk) {
        chunk = MIN (per, n - i);
        if (bdev_pread (ck->img->file, ck->buf, chunk * 8, off + i * 8) == -1) {
            return -1;
        }
        for (j = 0; j < chunk; j++) {
            e = get_be64 (ck->buf + j * 8);
            l2off = e & QL1_OFFSET_MASK;
            if (l2off == 0) {
                continue;
            }
            if (!IS_ALIGNED (l2off, q->cluster_size) ||
                range_outside (l2off, q->cluster_size, ck->img->file->size)) {
                check_error (ck->res, "qcow2: L1 entry %" PRIu64 " points to "
                             "%s L2 table offset 0x%" PRIx64, i + j,
                             IS_ALIGNED (l2off, q->cluster_size)
                             ? "a past end of file" : "an unaligned", l2off);
                continue;
            }
            if (active && check_copied (ck, e, l2off, "L1 entry",
                                        i + j) == -1) {
                return -1;
            }
            if (ck->nrefs == ck->refs_cap) {
                struct l2ref *nr;
                uint64_t cap = ck->refs_cap * 2;

                if (cap > QCK_MAX_L2REFS) {
                    vmc_error ("%s: qcow2: check: more than %u L2 table "
                               "references", ck->img->filename,
                               QCK_MAX_L2REFS);
                    return -1;
                }
                nr = realloc (ck->refs, cap * sizeof *nr);
                if (nr == NULL) {
                    vmc_perror ("realloc");
                    return -1;
                }
                ck->refs = nr;
                ck->refs_cap = cap;
            }
            ck->refs[ck->nrefs].offset = l2off | (active ? 1 : 0);
            ck->refs[ck->nrefs].l1_index = i + j;
            ck->nrefs++;
        }
    }
    return 0;
}

static int
cmp_l2ref (const void *a, const void *b)
{
    const struct l2ref *x = a, *y = b;
    uint64_t ox = x->offset & ~1ull, oy = y->offset & ~1ull;

    if (ox != oy) {
        return ox < oy ? -1 : 1;
    }
    /* Active references first, so a group's first names the active L1. */
    return (int) (y->offset & 1) - (int) (x->offset & 1);
}

/* Collect the L2 references of the active L1 table and the snapshots'. */
static int
collect_all (struct ck *ck)
{
    struct qcow2 *q = ck->q;
    uint64_t i, total = (uint64_t) q->l1_size * 8;

    ck->refs_cap = 1024;
    ck->refs = malloc (ck->refs_cap * sizeof *ck->refs);
    if (ck->refs == NULL) {
        vmc_perror ("malloc");
        return -1;
    }
    if (q->l1_size > 0 && collect_l1 (ck, q->l1_offset, q->l1_size,
                                      true) == -1) {
        return -1;
    }
    for (i = 0; i < q->nb_snapshots; i++) {
        total += (uint64_t) q->snapshots[i].l1_size * 8;
        if (total > ck->img->file->size) {
            check_error (ck->res, "qcow2: the L1 tables of the snapshots "
                         "from snapshot %" PRIu64 " on overlap (together "
                         "larger than the file); not walked", i);
            break;
        }
        if (q->snapshots[i].l1_size > 0 &&
            collect_l1 (ck, q->snapshots[i].l1_offset,
                        q->snapshots[i].l1_size, false) == -1) {
            return -1;
        }
    }
    qsort (ck->refs, ck->nrefs, sizeof *ck->refs, cmp_l2ref);
    return 0;
}

/* Walk each distinct L2 table once, weighted by its references. */
static int
walk_all_l2 (struct ck *ck)
{
    uint64_t i, j, off;

    for (i = 0; i < ck->nrefs; i = j) {
        off = ck->refs[i].offset & ~1ull;
        for (j = i + 1; j < ck->nrefs && (ck->refs[j].offset & ~1ull) == off;
             j++) {
        }
        add_refs (ck, off, ck->q->cluster_size, "L2 table", j - i);
        if (walk_l2 (ck, off, ck->refs[i].l1_index,
                     (ck->refs[i].offset & 1) != 0, j - i) == -1) {
            return -1;
        }
    }
    return 0;
}

static int
walk_refcounts (struct ck *ck)
{
    struct qcow2 *q = ck->q;
    uint64_t i, boff;

    add_ref (ck, q->refcount_table_offset,
             (uint64_t) q->refcount_table_clusters << q->cluster_bits,
             "refcount table");
    for (i = 0; i < ck->rt_entries; i++) {
        boff = get_be64 (ck->rt + i * 8) & ~511ull;
        if (boff == 0) {
            continue;
        }
        if (!IS_ALIGNED (boff, q->cluster_size) ||
            range_outside (boff, q->cluster_size, ck->img->file->size)) {
            ERR (ck, "qcow2: refcount block %" PRIu64 " at 0x%" PRIx64
                 " is %s", i, boff, IS_ALIGNED (boff, q->cluster_size)
                 ? "past end of file" : "not cluster aligned");
            continue;
        }
        add_ref (ck, boff, q->cluster_size, "refcount block");
    }
    return 0;
}

static int
walk_bitmaps (struct ck *ck)
{
    struct qcow2 *q = ck->q;
    unsigned char e[24];
    uint64_t off, end, toff, tsize, i, j, chunk, per, d;
    uint32_t n, extra;
    uint16_t name_len;

    if (q->bitmap_dir_offset == 0 && q->bitmap_dir_size == 0) {
        return 0;
    }
    if (!IS_ALIGNED (q->bitmap_dir_offset, q->cluster_size) ||
        q->bitmap_dir_size > QCK_MAX_BITMAP_DIR ||
        range_outside (q->bitmap_dir_offset, q->bitmap_dir_size,
                       ck->img->file->size)) {
        ERR (ck, "qcow2: bitmap directory at 0x%" PRIx64 " (%" PRIu64
             " bytes) is invalid", q->bitmap_dir_offset, q->bitmap_dir_size);
        return 0;
    }
    add_ref (ck, q->bitmap_dir_offset, q->bitmap_dir_size,
             "bitmap directory");
    off = q->bitmap_dir_offset;
    end = off + q->bitmap_dir_size;
    per = q->cluster_size / 8;
    for (n = 0; n < q->nb_bitmaps && off + sizeof e <= end; n++) {
        if (bdev_pread (ck->img->file, e, sizeof e, off) == -1) {
            return -1;
        }
        toff = get_be64 (e);
        tsize = get_be32 (e + 8);
        name_len = get_be16 (e + 18);
        extra = get_be32 (e + 20);
        off += ROUND_UP (24 + (uint64_t) extra + name_len, 8);
        if (!IS_ALIGNED (toff, q->cluster_size) ||
            tsize > QCK_MAX_BITMAP_TABLE ||
            range_outside (toff, tsize * 8, ck->img->file->size)) {
            ERR (ck, "qcow2: bitmap %" PRIu32 " has an invalid table at 0x%"
                 PRIx64, n, toff);
            continue;
        }
        add_ref (ck, toff, tsize * 8, "bitmap table");
        for (i = 0; i < tsize; i += chunk) {
            chunk = MIN (per, tsize - i);
            if (bdev_pread (ck->img->file, ck->buf, chunk * 8,
                            toff + i * 8) == -1) {
                return -1;
            }
            for (j = 0; j < chunk; j++) {
                d = get_be64 (ck->buf + j * 8) & QL1_OFFSET_MASK;
                if (d != 0) {
                    add_ref (ck, d, q->cluster_size, "bitmap data cluster");
                }
            }
        }
    }
    return 0;
}

static int
one_pass (struct ck *ck)
{
    struct qcow2 *q = ck->q;
    uint64_t i, c, rc, used;

    memset (ck->cnt, 0, ck->win_len * sizeof *ck->cnt);

    add_ref (ck, 0, q->cluster_size, "header");
    if (q->l1_size > 0) {
        add_ref (ck, q->l1_offset, (uint64_t) q->l1_size * 8, "L1 table");
    }
    if (q->nb_snapshots > 0) {
        add_ref (ck, q->snapshots_offset, q->snapshots_bytes,
                 "snapshot table");
        for (i = 0; i < q->nb_snapshots; i++) {
            add_ref (ck, q->snapshots[i].l1_offset,
                     (uint64_t) q->snapshots[i].l1_size * 8,
                     "snapshot L1 table");
        }
    }
    if (walk_all_l2 (ck) == -1) {
        return -1;
    }
    if (walk_refcounts (ck) == -1 || walk_bitmaps (ck) == -1) {
        return -1;
    }

    for (c = ck->win; c < ck->win + ck->win_len; c++) {
        if (get_refcount (ck, c, &rc) == -1) {
            return -1;
        }
        used = ck->cnt[c - ck->win];
        if (used == UINT16_MAX && rc >= used) {
            continue;
        }
        if (rc < used) {
            check_error (ck->res, "qcow2: cluster %" PRIu64 " (offset 0x%"
                         PRIx64 ") refcount=%" PRIu64 " reference=%" PRIu64,
                         c, c << q->cluster_bits, rc, used);
        }
        else if (rc > used) {
            check_leak (ck->res, "qcow2: cluster %" PRIu64 " (offset 0x%"
                        PRIx64 ") refcount=%" PRIu64 " reference=%" PRIu64,
                        c, c << q->cluster_bits, rc, used);
        }
    }
    return 0;
}

int
qcow2_check (struct image *img, struct check_result *res)
{
    struct qcow2 *q = img->priv;
    struct ck ck = { 0 };
    uint64_t rt_bytes;
    int r = -1;

    ck.img = img;
    ck.q = q;
    ck.res = res;
    ck.nclusters = DIV_ROUND_UP (img->file->size, q->cluster_size);
    ck.rb_entries = (q->cluster_size * 8) >> q->refcount_order;
    rt_bytes = (uint64_t) q->refcount_table_clusters << q->cluster_bits;
    ck.rt_entries = rt_bytes / 8;
    ck.win_len = MIN (ck.nclusters, QCK_WINDOW);
    ck.rt = image_alloc_table (img, "refcount table", ck.rt_entries, 8,
                               QCOW2_MAX_REFTABLE_BYTES);
    ck.cnt = image_alloc_table (img, "check counters", ck.win_len,
                                sizeof *ck.cnt, QCK_WINDOW * 2);
    ck.rb = malloc (q->cluster_size);
    ck.buf = malloc (q->cluster_size);
    ck.l2 = malloc (q->cluster_size);
    if (ck.rt == NULL || ck.cnt == NULL || ck.rb == NULL || ck.buf == NULL ||
        ck.l2 == NULL) {
        if (ck.rb == NULL || ck.buf == NULL || ck.l2 == NULL) {
            vmc_perror ("malloc");
        }
        goto out;
    }
    if (bdev_pread (img->file, ck.rt, rt_bytes,
                    q->refcount_table_offset) == -1) {
        goto out;
    }
    if (q->incompatible & QINC_DIRTY) {
        vmc_warn ("%s: qcow2: the image is marked dirty: refcounts may be "
                  "stale", img->filename);
    }
    ck.first_pass = true;
    if (collect_all (&ck) == -1) {
        goto out;
    }
    for (ck.win = 0; ck.win < ck.nclusters; ck.win += ck.win_len) {
        ck.win_len = MIN (ck.nclusters - ck.win, QCK_WINDOW);
        if (one_pass (&ck) == -1) {
            goto out;
        }
        ck.first_pass = false;
    }
    r = 0;
out:
    free (ck.refs);
    free (ck.rt);
    free (ck.cnt);
    free (ck.rb);
    free (ck.buf);
    free (ck.l2);
    return r;
}
