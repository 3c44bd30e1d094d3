/* SPDX-License-Identifier: MIT */
/*
 * exFAT, from Microsoft's "exFAT file system specification".
 *
 * Layout (in sectors): the main boot region 0..11 (boot sector, extended
 * boot sectors, OEM parameters, reserved, boot checksum), the backup boot
 * region 12..23, the FAT region from FatOffset, then the cluster heap at
 * ClusterHeapOffset: ClusterCount clusters numbered from 2.  Which clusters
 * are in use says the allocation bitmap, a file whose directory entry (type
 * 0x81) is in the root directory.
 *
 * In use: everything before the cluster heap (boot regions, FAT region and
 * whatever alignment gap), every cluster whose bit is set, and everything
 * after the heap's end.
 *
 * All in use when: VolumeDirty or MediaFailure is set, the boot checksum is
 * wrong, there are two FATs (TexFAT), a revision other than 1.x, an unknown
 * critical entry in the root directory, a system structure (root directory,
 * bitmap, up-case table) whose clusters the bitmap says are free,
 * PercentInUse (when not 0xFF) more than 1 point off the bitmap, or any
 * field that fails a check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/checksum.h"
#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "fs.h"

#define EXFAT_CHUNK 65536u
/* The spec's limit on a directory: 256 MiB. */
#define EXFAT_MAX_DIR (256ull << 20)

struct exfat {
    const struct volume *v;
    struct fs_result *r;
    uint32_t bps;
    uint64_t csize;
    uint64_t fat_off;           /* bytes */
    uint64_t heap_off;          /* bytes */
    uint32_t clusters;
    struct rangeset meta;       /* clusters (not bytes) of system files */
};



static int
basic (const unsigned char *b)
{
    if (b[0] != 0xEB || b[1] != 0x76 || b[2] != 0x90)
        return -1;
    if (memcmp (b + 3, "EXFAT   ", 8) != 0)
        return -1;
    if (b[510] != 0x55 || b[511] != 0xAA)
        return -1;
    for (int i = 11; i < 64; i++)
        if (b[i] != 0)
            return -1;
    if (b[108] < 9 || b[108] > 12)
        return -1;
    if (b[109] > 25 - b[108])
        return -1;
    return 0;
}

static int
exfat_probe (const struct volume *v)
{
    unsigned char b[512];

    if (v->size < 24 * 512)
        return 0;
    if (v->pread (v, b, sizeof b, 0) < 0)
        return -1;
    return basic (b) == 0;
}

static bool
cluster_ok (const struct exfat *x, uint32_t c)
{
    return c >= 2 && c - 2 < x->clusters;
}

/* The FAT entry of cluster C (valid).  -1 on a read error. */
static int
fat_next (const struct exfat *x, uint32_t c, uint32_t *next)
{
    unsigned char e[4];

    if (x->v->pread (x->v, e, 4, x->fat_off + (uint64_t) c * 4) < 0)
        return -1;
    *next = get_le32 (e);
    return 0;
}

/* Visit the cluster chain from FIRST covering at least BYTES (0: until its
 * end): calls FN on each cluster.  1 when the chain is broken (all_used
 * set), -1 on a read error. */
typedef int (*cluster_fn) (struct exfat *x, uint32_t c, void *opaque);

static int
walk_chain (struct exfat *x, uint32_t first, uint64_t bytes, const char *what,
            cluster_fn fn, void *opaque)
{
    uint32_t c = first;
    uint64_t n = 0, want = bytes == 0 ? 0 : (bytes + x->csize - 1) / x->csize;

    for (;;) {
        uint32_t next;
        int rc;

        if (!cluster_ok (x, c)) {
            fs_all_used (x->r, "exFAT: %s: cluster %u out of range", what, c);
            return 1;
        }
        /* Cycle cap: no chain is longer than the heap. */
        if (++n > x->clusters) {
            fs_all_used (x->r, "exFAT: %s: cluster chain loops", what);
            return 1;
        }
        rc = fn (x, c, opaque);
        if (rc != 0)
            return rc;
        if (want != 0 && n == want)
            return 0;
        if (fat_next (x, c, &next) < 0)
            return -1;
        if (next == 0xFFFFFFFF) {
            if (n < want) {
                fs_all_used (x->r, "exFAT: %s: cluster chain shorter than "
                              "its length", what);
                return 1;
            }
            return 0;
        }
        c = next;
    }
}

static int
add_meta (struct exfat *x, uint32_t c, void *opaque)
{
    (void) opaque;
    return rangeset_add (&x->meta, c, 1) < 0 ? -1 : 0;
}

struct rootscan {
    unsigned char *buf;
    bool end;
    int nbitmap;
    uint32_t bm_first;
    uint64_t bm_len;
    uint64_t bytes;
};

/* One cluster of the root directory. */
static int
scan_root_cluster (struct exfat *x, uint32_t c, void *opaque)
{
    struct rootscan *s = opaque;
    uint64_t base = x->heap_off + (uint64_t) (c - 2) * x->csize;

    if (rangeset_add (&x->meta, c, 1) < 0)
        return -1;
    s->bytes += x->csize;
    if (s->bytes > EXFAT_MAX_DIR) {
        fs_all_used (x->r, "exFAT: root directory larger than 256 MiB");
        return 1;
    }
    for (uint64_t off = 0; off < x->csize && !s->end; off += EXFAT_CHUNK) {
        uint64_t len = x->csize - off < EXFAT_CHUNK ? x->csize - off
            : EXFAT_CHUNK;

        if (x->v->pread (x->v, s->buf, len, base + off) < 0)
            return -1;
        for (uint64_t i = 0; i + 32 <= len; i += 32) {
            const unsigned char *e = s->buf + i;
            unsigned t = e[0];

            if (t == 0x00) {
                s->end = true;
                break;
            }
            if (t < 0x80)           /* unused (deleted) */
                continue;
            if (t == 0x81) {
                if (e[1] & 1) {
                    fs_all_used (x->r, "exFAT: second allocation bitmap "
                                  "(TexFAT)");
                    return 1;
                }
                s->nbitmap++;
                s->bm_first = get_le32 (e + 20);
                s->bm_len = get_le64 (e + 24);
            }
            else if (t == 0x82) {
                uint32_t first = get_le32 (e + 20);
                uint64_t dlen = get_le64 (e + 24);
                int rc;

                if (dlen == 0 || dlen > 128 * 1024) {
                    fs_all_used (x->r, "exFAT: up-case table length %llu",
                                  (unsigned long long) dlen);
                    return 1;
                }
                rc = walk_chain (x, first, dlen, "up-case table", add_meta,
                                 NULL);
                if (rc != 0)
                    return rc;
            }
            else if (t == 0x83) {
                unsigned n = e[1];

                if (n > 11) {
                    fs_all_used (x->r, "exFAT: volume label too long");
                    return 1;
                }
                for (unsigned k = 0; k < n; k++) {
                    uint16_t ch = get_le16 (e + 2 + 2 * k);
                    x->r->label[k] = ch >= 0x20 && ch < 0x7f ? (char) ch : '?';
                }
                x->r->label[n] = 0;
            }
            else if (t == 0x85)     /* a file; its secondaries follow */
                continue;
            else if ((t & 0x60) == 0) {
                /* Critical primary we do not know: the spec says such a
                 * volume must not be mounted. */
                fs_all_used (x->r, "exFAT: unknown critical directory entry "
                              "type 0x%02x", t);
                return 1;
            }
            /* Benign primaries and all secondaries: nothing to do. */
        }
    }
    return 0;
}

struct bmscan {
    unsigned char *buf;
    uint64_t bit;               /* next cluster index (0 = cluster 2) */
    uint64_t nused;
    int err;
};

static int
scan_bitmap_cluster (struct exfat *x, uint32_t c, void *opaque)
{
    struct bmscan *s = opaque;
    uint64_t base = x->heap_off + (uint64_t) (c - 2) * x->csize;

    if (rangeset_add (&x->meta, c, 1) < 0)
        return -1;
    for (uint64_t off = 0; off < x->csize && s->bit < x->clusters;
         off += EXFAT_CHUNK) {
        uint64_t len = x->csize - off < EXFAT_CHUNK ? x->csize - off
            : EXFAT_CHUNK;

        if (x->v->pread (x->v, s->buf, len, base + off) < 0)
            return -1;
        for (uint64_t i = 0; i < len * 8 && s->bit < x->clusters;
             i++, s->bit++) {
            if (s->buf[i / 8] & (1u << (i % 8))) {
                s->nused++;
                if (rangeset_add (&x->r->used,
                                  x->heap_off + s->bit * x->csize,
                                  x->csize) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

static void
uuid_of (uint32_t id, struct fs_result *r)
{
    snprintf (r->uuid, sizeof r->uuid, "%04X-%04X", id >> 16, id & 0xFFFF);
}

static int
exfat_used (const struct volume *v, struct fs_result *r)
{
    unsigned char *boot = NULL, *buf = NULL;
    struct exfat x = { .v = v, .r = r };
    struct rootscan rs = { 0 };
    struct bmscan bs = { 0 };
    uint64_t vol_len, vol_bytes, fat_len, heap_end, need;
    uint32_t sum = 0, fat_off_s, fat_len_s, heap_s, root, pct;
    uint16_t flags;
    int ret = -1, rc;

    boot = malloc (12 * 4096);
    buf = malloc (EXFAT_CHUNK);
    if (boot == NULL || buf == NULL) {
        fs_all_used (r, "exFAT: out of memory");
        ret = 0;
        goto out;
    }
    if (v->pread (v, boot, 512, 0) < 0)
        goto out;
    if (basic (boot) < 0) {
        fs_all_used (r, "exFAT: boot sector fails its checks");
        ret = 0;
        goto out;
    }
    x.bps = 1u << boot[108];
    x.csize = (uint64_t) x.bps << boot[109];
    r->block_size = (uint32_t) x.csize;
    uuid_of (get_le32 (boot + 100), r);
    if ((uint64_t) 24 * x.bps > v->size) {
        fs_all_used (r, "exFAT: volume smaller than its boot regions");
        ret = 0;
        goto out;
    }
    if (v->pread (v, boot, 12 * (size_t) x.bps, 0) < 0)
        goto out;

    /* Boot checksum over sectors 0..10, skipping VolumeFlags and
     * PercentInUse; sector 11 repeats it. */
    for (size_t i = 0; i < 11 * (size_t) x.bps; i++) {
        if (i == 106 || i == 107 || i == 112)
            continue;
        sum = ((sum & 1) ? 0x80000000u : 0) + (sum >> 1) + boot[i];
    }
    for (size_t i = 0; i < x.bps; i += 4)
        if (!checksum_ok (get_le32 (boot + 11 * (size_t) x.bps + i), sum)) {
            fs_all_used (r, "exFAT: boot checksum wrong");
            ret = 0;
            goto out;
        }

    flags = get_le16 (boot + 106);
    if (flags & 0x0002) {
        fs_all_used (r, "exFAT: VolumeDirty set (not cleanly unmounted)");
        ret = 0;
        goto out;
    }
    if (flags & 0x0004) {
        fs_all_used (r, "exFAT: MediaFailure set");
        ret = 0;
        goto out;
    }
    if (boot[105] != 1) {
        fs_all_used (r, "exFAT: revision %u.%02u unknown", boot[105],
                      boot[104]);
        ret = 0;
        goto out;
    }
    if (boot[110] != 1) {
        fs_all_used (r, "exFAT: %u FATs (TexFAT) not supported", boot[110]);
        ret = 0;
        goto out;
    }

    vol_len = get_le64 (boot + 72);
    fat_off_s = get_le32 (boot + 80);
    fat_len_s = get_le32 (boot + 84);
    heap_s = get_le32 (boot + 88);
    x.clusters = get_le32 (boot + 92);
    root = get_le32 (boot + 96);
    pct = boot[112];
    if (ckd_mul (&vol_bytes, vol_len, (uint64_t) x.bps) || vol_bytes > v->size) {
        fs_all_used (r, "exFAT: filesystem larger than its volume "
                      "(truncated?)");
        ret = 0;
        goto out;
    }
    fat_len = (uint64_t) fat_len_s * x.bps;
    x.fat_off = (uint64_t) fat_off_s * x.bps;
    x.heap_off = (uint64_t) heap_s * x.bps;
    heap_end = x.heap_off + (uint64_t) x.clusters * x.csize;
    if (fat_off_s < 24 || x.clusters == 0 || x.clusters > 0xFFFFFFF5 ||
        fat_len < ((uint64_t) x.clusters + 2) * 4 ||
        (uint64_t) fat_off_s + fat_len_s > heap_s ||
        heap_end > vol_bytes) {
        fs_all_used (r, "exFAT: geometry fields inconsistent");
        ret = 0;
        goto out;
    }
    if (!cluster_ok (&x, root)) {
        fs_all_used (r, "exFAT: root directory cluster out of range");
        ret = 0;
        goto out;
    }

    rs.buf = buf;
    rc = walk_chain (&x, root, 0, "root directory", scan_root_cluster, &rs);
    if (rc < 0)
        goto out;
    if (rc > 0) {
        ret = 0;
        goto out;
    }
    if (rs.nbitmap != 1) {
        fs_all_used (r, "exFAT: %d allocation bitmaps in the root directory",
                      rs.nbitmap);
        ret = 0;
        goto out;
    }
    need = ((uint64_t) x.clusters + 7) / 8;
    if (rs.bm_len < need || rs.bm_len > need + x.csize) {
        fs_all_used (r, "exFAT: allocation bitmap length %llu, expected %llu",
                      (unsigned long long) rs.bm_len,
                      (unsigned long long) need);
        ret = 0;
        goto out;
    }

    if (rangeset_add (&r->used, 0, x.heap_off) < 0)
        goto out;
    bs.buf = buf;
    rc = walk_chain (&x, rs.bm_first, rs.bm_len, "allocation bitmap",
                     scan_bitmap_cluster, &bs);
    if (rc < 0)
        goto out;
    if (rc > 0) {
        ret = 0;
        goto out;
    }
    if (bs.bit < x.clusters) {
        fs_all_used (r, "exFAT: allocation bitmap shorter than the heap");
        ret = 0;
        goto out;
    }
    /* Every system structure's clusters must be marked in use. */
    for (size_t i = 0; i < x.meta.n; i++)
        for (uint64_t c = x.meta.r[i].start; c < x.meta.r[i].end; c++)
            if (rangeset_lookup (&r->used, x.heap_off + (c - 2) * x.csize,
                                 NULL) != 1) {
                fs_all_used (r, "exFAT: cluster %llu of a system structure "
                              "is free in the bitmap",
                              (unsigned long long) c);
                ret = 0;
                goto out;
            }
    if (pct != 0xFF) {
        uint64_t p = bs.nused * 100 / x.clusters;

        if (pct > 100 || (p > pct ? p - pct : pct - p) > 1) {
            fs_all_used (r, "exFAT: counters disagree: PercentInUse %u, the "
                          "bitmap says %llu", pct, (unsigned long long) p);
            ret = 0;
            goto out;
        }
    }
    if (rangeset_add (&r->used, heap_end, v->size - heap_end) < 0)
        goto out;
    ret = 0;
out:
    rangeset_free (&x.meta);
    free (boot);
    free (buf);
    return ret;
}

const struct fs_type fs_exfat = {
    .name = "exfat",
    .probe = exfat_probe,
    .used = exfat_used,
};
