/* SPDX-License-Identifier: MIT */
/*
 * The disk map; see map.h.
 *
 * LVM: every PV found (on a whole disk or in a partition) is read; the
 * metadata of each VG is taken from its PV with the highest seqno.  A PV
 * of the VG missing from the disk set makes every LV with extents on it
 * count used (on the PVs that are here).  LV segments of type "striped"
 * (one stripe: linear) are mapped; any other type (thin, raid, mirror,
 * snapshot, cache, ...) makes the LV count used, and so does being named
 * by such a segment (an origin, a pool's data, a raid image).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "../lib/rounding.h"
#include "map.h"

#define MAP_MAX_VOLS 4096
#define LVM_MAX_PVS 1024
#define LVM_MAX_SEGS 4096
#define LVM_MAX_STRIPES 128
#define LVM_MAX_PIECES (1u << 22)   /* stripe chunks walked per LV */

static struct map_vol *
add_vol (struct disk_map *m)
{
    if (m->nvols == m->capvols) {
        size_t cap = m->capvols ? m->capvols * 2 : 16;
        struct map_vol *v;

        if (cap > MAP_MAX_VOLS) {
            vmc_error ("disk map: more than %d volumes", MAP_MAX_VOLS);
            return NULL;
        }
        v = realloc (m->vols, cap * sizeof *v);
        if (v == NULL) {
            vmc_perror ("realloc");
            return NULL;
        }
        m->vols = v;
        m->capvols = cap;
    }
    memset (&m->vols[m->nvols], 0, sizeof m->vols[m->nvols]);
    m->vols[m->nvols].disk = -1;
    return &m->vols[m->nvols++];
}


/* A volume's result into the disk's used set, shifted by START. */
static int
add_fs_used (struct disk_map *m, struct map_vol *mv, struct rangeset *used,
             uint64_t start)
{
    if (mv->fs.all_used) {
        mv->used_bytes = mv->size;
        if (strcmp (mv->fs.type, "unknown") != 0 && mv->fs.why[0] != 0)
            whys_add (&m->whys, "%s: %s: %s: all of it counts as used",
                      mv->name, mv->fs.type, mv->fs.why);
        return rangeset_add (used, start, mv->size);
    }
    mv->used_bytes = 0;
    for (size_t i = 0; i < mv->fs.used.n; i++) {
        const struct range *r = &mv->fs.used.r[i];
        uint64_t s = r->start, e = MIN (r->end, mv->size);

        if (s >= e)
            continue;
        mv->used_bytes += e - s;
        if (rangeset_add (used, start + s, e - s) < 0)
            return -1;
    }
    return 0;
}

/* ---- LVM ------------------------------------------------------------ */

struct found_pv {
    int disk;
    uint64_t off, size;             /* the PV's volume on the disk */
    size_t vol;                     /* its map_vol */
    struct lvm_pv pv;
    struct cfg_node *cfg;           /* parsed text */
    const struct cfg_node *vg;      /* the VG section in cfg */
    const char *vg_id;
    int64_t seqno;
    bool done;
    bool matched;                   /* one of its VG's PV entries */
};

struct stripe {
    int fp;                         /* index into the found PVs, -1 missing */
    uint64_t pe;
};

struct seg {
    uint64_t le, count;             /* extents */
    unsigned nstripes;
    uint64_t stripe_size;           /* bytes (striped only) */
    struct stripe st[LVM_MAX_STRIPES];
};

/* Walk LV bytes [OFF, OFF + LEN) of MV as pieces on the disks. */
static int
lv_walk (const struct map_vol *mv, uint64_t off, uint64_t len,
         int (*fn) (void *opaque, int disk, uint64_t doff, uint64_t n,
                    uint64_t lvoff),
         void *opaque, uint64_t *pieces)
{
    while (len > 0) {
        const struct map_lvseg *s = NULL;
        uint64_t so, n, area;
        unsigned k = 0;

        /* Segments are contiguous from byte 0 (checked): search. */
        {
            size_t lo = 0, hi = mv->nsegs;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (mv->segs[mid].start + mv->segs[mid].len <= off)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < mv->nsegs && off >= mv->segs[lo].start)
                s = &mv->segs[lo];
        }
        if (s == NULL) {
            vmc_error ("LV offset %llu not in any segment",
                       (unsigned long long) off);
            return -1;
        }
        so = off - s->start;
        n = s->start + s->len - off;
        area = 0;
        if (s->nstripes == 1) {
            k = 0;
            area = so;
        }
        else {
            uint64_t chunk = so / s->stripe_size, within = so % s->stripe_size;
            k = (unsigned) (chunk % s->nstripes);
            area = (chunk / s->nstripes) * s->stripe_size + within;
            n = MIN (n, s->stripe_size - within);
        }
        n = MIN (n, len);
        if (pieces != NULL && ++*pieces > LVM_MAX_PIECES) {
            vmc_error ("LV has too many stripe pieces to map");
            return -1;
        }
        if (fn (opaque, s->area[k].disk, s->area[k].off + area, n, off) < 0)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

struct read_ctx {
    const struct disk_map *m;
    unsigned char *buf;
    uint64_t base;
};

static int
read_piece (void *opaque, int disk, uint64_t doff, uint64_t n, uint64_t lvoff)
{
    struct read_ctx *r = opaque;

    return image_pread (r->m->disks[disk].img, r->buf + (lvoff - r->base), n,
                        doff);
}

/* An LV's volume: PRIV is the map, IMG_OFFSET the index of the LV's
 * map_vol (map_vol_open). */
static int
lv_pread (const struct volume *v, void *buf, size_t count, uint64_t offset)
{
    const struct disk_map *m = v->priv;
    struct read_ctx r = { m, buf, offset };

    if (offset > v->size || count > v->size - offset) {
        vmc_error ("%s: read of %zu bytes at %llu is past its end", v->name,
                   count, (unsigned long long) offset);
        return -1;
    }
    return lv_walk (&m->vols[v->img_offset], offset, count, read_piece, &r,
                    NULL);
}

/* The resolved segments of an LV: disk offsets instead of PV extents. */
static int
lv_resolve (struct map_vol *mv, const struct found_pv *fps,
            const struct seg *segs, size_t nsegs, uint64_t eb)
{
    mv->segs = calloc (nsegs, sizeof *mv->segs);
    if (mv->segs == NULL) {
        vmc_perror ("calloc");
        return -1;
    }
    mv->nsegs = nsegs;
    for (size_t i = 0; i < nsegs; i++) {
        struct map_lvseg *o = &mv->segs[i];

        o->start = segs[i].le * eb;
        o->len = segs[i].count * eb;
        o->nstripes = segs[i].nstripes;
        o->stripe_size = segs[i].stripe_size;
        o->area = calloc (o->nstripes, sizeof *o->area);
        if (o->area == NULL) {
            vmc_perror ("calloc");
            return -1;
        }
        for (unsigned k = 0; k < o->nstripes; k++) {
            const struct found_pv *fp = &fps[segs[i].st[k].fp];

            o->area[k].disk = fp->disk;
            o->area[k].off = fp->off + fp->pv.pe_start +
                             segs[i].st[k].pe * eb;
        }
    }
    return 0;
}

static void
lv_segs_free (struct map_vol *mv)
{
    for (size_t i = 0; i < mv->nsegs; i++)
        free (mv->segs[i].area);
    free (mv->segs);
    mv->segs = NULL;
    mv->nsegs = 0;
}

int
map_vol_open (const struct disk_map *m, size_t vi, struct volume *v)
{
    const struct map_vol *mv;

    if (vi >= m->nvols) {
        vmc_error ("disk map: no volume %zu", vi);
        return -1;
    }
    mv = &m->vols[vi];
    if (strcmp (mv->kind, "lv") != 0) {
        if (mv->disk < 0 || (size_t) mv->disk >= m->ndisks) {
            vmc_error ("%s: not on a disk of the map", mv->name);
            return -1;
        }
        volume_of_image (v, mv->name, m->disks[mv->disk].img, mv->start,
                         mv->size);
        return 0;
    }
    if (mv->nsegs == 0) {
        vmc_error ("%s: the LV cannot be read (%s)", mv->name,
                   mv->fs.why[0] != '\0' ? mv->fs.why : "not mapped");
        return -1;
    }
    memset (v, 0, sizeof *v);
    snprintf (v->name, sizeof v->name, "%.127s", mv->name);
    v->size = mv->size;
    v->pread = lv_pread;
    v->priv = (void *) m;
    v->img_offset = vi;
    return 0;
}

static int
used_piece (void *opaque, int disk, uint64_t doff, uint64_t n, uint64_t lvoff)
{
    struct disk_map *m = opaque;

    (void) lvoff;
    return rangeset_add (&m->disks[disk].used, doff, n);
}

static void
add_strings (const struct cfg_node *n, const char ***names, size_t *nn,
             size_t *cap, unsigned depth)
{
    for (; n != NULL && depth < 40; n = n->next) {
        if (n->type == CFG_STRING && *nn < 4096) {
            if (*nn == *cap) {
                size_t nc = *cap ? *cap * 2 : 16;
                const char **p = realloc (*names, nc * sizeof *p);
                if (p == NULL)
                    return;     /* fewer names: see the caller */
                *names = p;
                *cap = nc;
            }
            (*names)[(*nn)++] = n->str;
        }
        add_strings (n->child, names, nn, cap, depth + 1);
    }
}

static bool
uuid_eq (const char *text_id, const char *uuid32)
{
    size_t k = 0;

    for (const char *p = text_id; *p; p++) {
        if (*p == '-')
            continue;
        if (k == 32 || *p != uuid32[k])
            return false;
        k++;
    }
    return k == 32;
}

/* Mark every PV area of the LV's segments used (the LV is all used). */
static int
lv_all_used (struct disk_map *m, struct found_pv *fps, const struct seg *segs,
             size_t nsegs, uint64_t eb)
{
    for (size_t i = 0; i < nsegs; i++) {
        const struct seg *s = &segs[i];
        uint64_t per = s->count / s->nstripes;

        for (unsigned k = 0; k < s->nstripes; k++) {
            const struct found_pv *fp;
            if (s->st[k].fp < 0)
                continue;
            fp = &fps[s->st[k].fp];
            if (rangeset_add (&m->disks[fp->disk].used,
                              fp->off + fp->pv.pe_start + s->st[k].pe * eb,
                              per * eb) < 0)
                return -1;
        }
    }
    return 0;
}

struct vg_pv {
    const char *key;                /* "pv0" */
    int fp;                         /* found PV, -1 when missing */
    uint64_t pe_count;
};

/* Parse one segment; 0 ok, 1 not mappable (WHY set), -1 error. */
static int
parse_seg (const struct cfg_node *sn, const struct vg_pv *pvs, size_t npvs,
           uint64_t eb, struct seg *s, char *why, size_t wl, bool *missing)
{
    const char *type = cfg_get_str (sn, "type");
    const struct cfg_node *st;
    int64_t le, count, nst, ssz = 0;
    unsigned k = 0;

    if (cfg_get_num (sn, "start_extent", &le) < 0 ||
        cfg_get_num (sn, "extent_count", &count) < 0 || le < 0 ||
        count <= 0 || type == NULL) {
        snprintf (why, wl, "segment without start_extent/extent_count/type");
        return 1;
    }
    s->le = (uint64_t) le;
    s->count = (uint64_t) count;
    if (strcmp (type, "striped") != 0) {
        snprintf (why, wl, "segment type %.40s is not mapped", type);
        s->nstripes = 0;
        return 1;
    }
    if (cfg_get_num (sn, "stripe_count", &nst) < 0 || nst < 1 ||
        nst > LVM_MAX_STRIPES || count % nst != 0) {
        snprintf (why, wl, "bad stripe_count");
        return 1;
    }
    if (nst > 1) {
        if (cfg_get_num (sn, "stripe_size", &ssz) < 0 || ssz <= 0 ||
            ssz > (1 << 24) || (ssz & (ssz - 1)) != 0 ||
            ((uint64_t) count / (uint64_t) nst * eb) % ((uint64_t) ssz * 512))
        {
            snprintf (why, wl, "bad stripe_size");
            return 1;
        }
    }
    s->stripe_size = (uint64_t) ssz * 512;
    st = cfg_get (sn, "stripes");
    if (st == NULL || st->type != CFG_ARRAY) {
        snprintf (why, wl, "segment without stripes");
        return 1;
    }
    for (const struct cfg_node *e = st->child; e != NULL; e = e->next) {
        const struct cfg_node *pe = e->next;
        size_t j;

        if (k == (unsigned) nst || e->type != CFG_STRING || pe == NULL ||
            pe->type != CFG_NUMBER || pe->num < 0) {
            snprintf (why, wl, "malformed stripes list");
            return 1;
        }
        for (j = 0; j < npvs; j++)
            if (strcmp (pvs[j].key, e->str) == 0)
                break;
        if (j == npvs) {
            snprintf (why, wl, "stripe on %.40s, not a PV of the VG", e->str);
            return 1;
        }
        if ((uint64_t) pe->num > pvs[j].pe_count ||
            (uint64_t) count / (uint64_t) nst > pvs[j].pe_count -
            (uint64_t) pe->num) {
            snprintf (why, wl, "stripe beyond its PV's extents");
            return 1;
        }
        s->st[k].fp = pvs[j].fp;
        s->st[k].pe = (uint64_t) pe->num;
        if (pvs[j].fp < 0)
            *missing = true;
        k++;
        e = pe;
    }
    if (k != (unsigned) nst) {
        snprintf (why, wl, "stripes list shorter than stripe_count");
        return 1;
    }
    s->nstripes = k;
    return 0;
}

static int
map_vg (struct disk_map *m, struct found_pv *fps, size_t nfps, size_t best)
{
    const struct cfg_node *vg = fps[best].vg, *pvsec, *lvsec;
    struct vg_pv *pvs = NULL;
    struct seg *segs = NULL;
    const char **refs = NULL;
    size_t npvs = 0, nrefs = 0, caprefs = 0;
    struct map_vg *g;
    int64_t ext;
    uint64_t eb;
    int r = -1;

    if (m->nvgs == m->capvgs) {
        size_t cap = m->capvgs ? m->capvgs * 2 : 4;
        struct map_vg *p = realloc (m->vgs, cap * sizeof *p);
        if (p == NULL) {
            vmc_perror ("realloc");
            return -1;
        }
        m->vgs = p;
        m->capvgs = cap;
    }
    g = &m->vgs[m->nvgs++];
    memset (g, 0, sizeof *g);
    snprintf (g->name, sizeof g->name, "%s", vg->key);
    snprintf (g->id, sizeof g->id, "%s", fps[best].vg_id);
    for (size_t i = 0; i < nfps; i++)
        if (fps[i].vg_id != NULL && strcmp (fps[i].vg_id, g->id) == 0) {
            fps[i].done = true;
            snprintf (m->vols[fps[i].vol].vg, sizeof m->vols[fps[i].vol].vg,
                      "%s", g->name);
        }

    pvsec = cfg_get (vg, "physical_volumes");
    lvsec = cfg_get (vg, "logical_volumes");
    if (cfg_get_num (vg, "extent_size", &ext) < 0 || ext <= 0 ||
        ext > (INT64_C (1) << 32) || pvsec == NULL ||
        pvsec->type != CFG_SECTION) {
        whys_add (&m->whys, "VG %s: no extent_size or physical_volumes: its "
                  "PVs count as used", g->name);
        goto all_pvs_used;
    }
    eb = (uint64_t) ext * 512;
    g->extent_size = eb;
    pvs = calloc (LVM_MAX_PVS, sizeof *pvs);
    segs = calloc (1, sizeof *segs);    /* grown below */
    if (pvs == NULL || segs == NULL) {
        vmc_perror ("calloc");
        goto out;
    }
    for (const struct cfg_node *p = pvsec->child; p != NULL; p = p->next) {
        const char *id = cfg_get_str (p, "id");
        int64_t pe_start, pe_count;
        struct vg_pv *vp;

        if (p->type != CFG_SECTION)
            continue;
        if (npvs == LVM_MAX_PVS || id == NULL ||
            cfg_get_num (p, "pe_start", &pe_start) < 0 ||
            cfg_get_num (p, "pe_count", &pe_count) < 0 || pe_start < 0 ||
            pe_count < 0) {
            whys_add (&m->whys, "VG %s: a PV entry is malformed: its PVs "
                      "count as used", g->name);
            goto all_pvs_used;
        }
        vp = &pvs[npvs++];
        vp->key = p->key;
        vp->fp = -1;
        vp->pe_count = (uint64_t) pe_count;
        g->pvs++;
        for (size_t i = 0; i < nfps; i++) {
            uint64_t area;
            if (fps[i].vg_id == NULL || strcmp (fps[i].vg_id, g->id) != 0 ||
                !uuid_eq (id, fps[i].pv.uuid))
                continue;
            /* The text's pe_start must agree with the PV header, and the
             * extents must fit in the PV's volume. */
            if ((uint64_t) pe_start * 512 != fps[i].pv.pe_start ||
                ckd_mul (&area, (uint64_t) pe_count, eb) ||
                fps[i].pv.pe_start > fps[i].size ||
                area > fps[i].size - fps[i].pv.pe_start) {
                whys_add (&m->whys, "VG %s: PV %s: extents do not fit its "
                          "device: its PVs count as used", g->name, p->key);
                goto all_pvs_used;
            }
            if (fps[i].matched)
                continue;           /* a clone of a PV already matched */
            vp->fp = (int) i;
            fps[i].matched = true;
            g->pvs_present++;
            break;
        }
        if (vp->fp < 0)
            whys_add (&m->whys, "VG %s: PV %s (%.60s) is not among the disks: "
                      "LVs on it count as used", g->name, p->key, id);
    }
    /* A PV claiming this VG but not matched (a clone): all used. */
    for (size_t i = 0; i < nfps; i++)
        if (fps[i].vg_id != NULL && strcmp (fps[i].vg_id, g->id) == 0 &&
            !fps[i].matched) {
            struct map_vol *mv = &m->vols[fps[i].vol];
            fs_all_used (&mv->fs, "PV not listed in VG %s (or a duplicate)",
                          g->name);
            whys_add (&m->whys, "%s: LVM PV not listed in VG %s (or a "
                      "duplicate): all of it counts as used", mv->name,
                      g->name);
            if (rangeset_add (&m->disks[fps[i].disk].used, fps[i].off,
                              fps[i].size) < 0)
                goto out;
        }
    /* The PVs here: everything but the extents counts used (label,
     * metadata areas, the space before and after the extents). */
    for (size_t j = 0; j < npvs; j++) {
        struct found_pv *fp;
        uint64_t end;
        if (pvs[j].fp < 0)
            continue;
        fp = &fps[pvs[j].fp];
        end = fp->pv.pe_start + pvs[j].pe_count * eb;
        if (rangeset_add (&m->disks[fp->disk].used, fp->off,
                          fp->pv.pe_start) < 0 ||
            rangeset_add (&m->disks[fp->disk].used, fp->off + end,
                          fp->size - end) < 0)
            goto out;
    }
    if (lvsec == NULL)
        goto done;
    if (lvsec->type != CFG_SECTION) {
        whys_add (&m->whys, "VG %s: logical_volumes malformed", g->name);
        goto all_pvs_used;
    }
    /* Names referenced by segments that are not plain striped. */
    for (const struct cfg_node *lv = lvsec->child; lv != NULL; lv = lv->next)
        for (const struct cfg_node *s = lv->child; s != NULL; s = s->next) {
            const char *t;
            if (s->type != CFG_SECTION || strncmp (s->key, "segment", 7))
                continue;
            t = cfg_get_str (s, "type");
            if (t == NULL || strcmp (t, "striped") != 0) {
                size_t before = nrefs;
                add_strings (s->child, &refs, &nrefs, &caprefs, 0);
                if (nrefs == before && nrefs == caprefs && nrefs > 0) {
                    /* Could not record the names: be safe. */
                    whys_add (&m->whys, "VG %s: too many LV references: "
                              "its PVs count as used", g->name);
                    goto all_pvs_used;
                }
            }
        }
    /* Such a segment naming a PV directly: we cannot tell which of its
     * extents it holds. */
    for (size_t i = 0; i < nrefs; i++)
        for (size_t j = 0; j < npvs; j++)
            if (strcmp (refs[i], pvs[j].key) == 0) {
                whys_add (&m->whys, "VG %s: a segment that is not striped "
                          "uses PV %s directly: its PVs count as used",
                          g->name, pvs[j].key);
                goto all_pvs_used;
            }
    for (const struct cfg_node *lv = lvsec->child; lv != NULL; lv = lv->next) {
        struct map_vol *mv;
        size_t nsegs = 0, capsegs = 1;
        char why[256] = "";
        bool missing = false, bad = false;
        uint64_t next_le = 0;
        struct volume vol;

        if (lv->type != CFG_SECTION)
            continue;
        g->lvs++;
        for (const struct cfg_node *s = lv->child; s != NULL; s = s->next) {
            int pr;
            if (s->type != CFG_SECTION || strncmp (s->key, "segment", 7))
                continue;
            if (nsegs == LVM_MAX_SEGS) {
                snprintf (why, sizeof why, "too many segments");
                bad = true;
                break;
            }
            if (nsegs == capsegs) {
                struct seg *ns = realloc (segs, capsegs * 2 * sizeof *ns);
                if (ns == NULL) {
                    vmc_perror ("realloc");
                    goto out;
                }
                segs = ns;
                capsegs *= 2;
            }
            memset (&segs[nsegs], 0, sizeof segs[nsegs]);
            pr = parse_seg (s, pvs, npvs, eb, &segs[nsegs], why, sizeof why,
                            &missing);
            if (pr != 0) {
                const char *t = cfg_get_str (s, "type");
                if (t == NULL || strcmp (t, "striped") == 0) {
                    /* Its PV extents are unknown: all of the VG's PVs. */
                    whys_add (&m->whys, "VG %s: LV %s: %s: its PVs count as "
                              "used", g->name, lv->key, why);
                    goto all_pvs_used;
                }
                bad = true;
                continue;
            }
            if (segs[nsegs].le != next_le && !bad) {
                snprintf (why, sizeof why, "segments not contiguous");
                bad = true;
            }
            if (ckd_add (&next_le, segs[nsegs].le, segs[nsegs].count) ||
                next_le > UINT64_MAX / eb) {
                snprintf (why, sizeof why, "segment too large");
                bad = true;
                break;
            }
            nsegs++;
        }
        mv = add_vol (m);
        if (mv == NULL)
            goto out;
        snprintf (mv->name, sizeof mv->name, "%s/%s", g->name, lv->key);
        snprintf (mv->kind, sizeof mv->kind, "lv");
        snprintf (mv->vg, sizeof mv->vg, "%s", g->name);
        mv->size = next_le * eb;
        if (nsegs > 0) {
            mv->lv_stripes = segs[0].nstripes;
            snprintf (mv->lv_segtype, sizeof mv->lv_segtype, "%s",
                      segs[0].nstripes > 1 ? "striped" : "linear");
        }
        if (bad) {
            const struct cfg_node *s1 = cfg_get (lv, "segment1");
            const char *t = s1 ? cfg_get_str (s1, "type") : NULL;
            snprintf (mv->lv_segtype, sizeof mv->lv_segtype, "%.23s",
                      t ? t : "?");
        }
        for (size_t i = 0; i < nrefs && !bad; i++)
            if (strcmp (refs[i], lv->key) == 0) {
                snprintf (why, sizeof why, "used by a %s segment of another "
                          "LV (snapshot, pool, raid, cache...)", "non-linear");
                bad = true;
            }
        if (!bad && missing) {
            snprintf (why, sizeof why, "some of its PVs are not among the "
                      "disks");
            bad = true;
        }
        if (!bad && nsegs == 0) {
            snprintf (why, sizeof why, "no segments");
            bad = true;
        }
        snprintf (mv->fs.type, sizeof mv->fs.type, "unknown");
        if (bad) {
            fs_all_used (&mv->fs, "LV %s: %s", mv->name, why);
            whys_add (&m->whys, "%s: %s: its extents count as used", mv->name,
                      why);
            mv->used_bytes = mv->size;
            if (lv_all_used (m, fps, segs, nsegs, eb) < 0)
                goto out;
            continue;
        }
        if (lv_resolve (mv, fps, segs, nsegs, eb) < 0 ||
            map_vol_open (m, (size_t) (mv - m->vols), &vol) < 0 ||
            fs_identify (&vol, &mv->fs) < 0)
            goto out;
        if (mv->fs.all_used) {
            if (strcmp (mv->fs.type, "unknown") != 0)
                whys_add (&m->whys, "%s: %s: %s: all of it counts as used",
                          mv->name, mv->fs.type, mv->fs.why);
            mv->used_bytes = mv->size;
            if (lv_all_used (m, fps, segs, nsegs, eb) < 0)
                goto out;
            continue;
        }
        {
            uint64_t pieces = 0;
            mv->used_bytes = 0;
            for (size_t i = 0; i < mv->fs.used.n; i++) {
                uint64_t s = mv->fs.used.r[i].start;
                uint64_t e = MIN (mv->fs.used.r[i].end, mv->size);
                if (s >= e)
                    continue;
                mv->used_bytes += e - s;
                if (lv_walk (mv, s, e - s, used_piece, m, &pieces) < 0) {
                    whys_add (&m->whys, "%s: %s: its extents count as used",
                              mv->name, vmc_get_error ());
                    if (lv_all_used (m, fps, segs, nsegs, eb) < 0)
                        goto out;
                    break;
                }
            }
        }
    }
done:
    r = 0;
    goto out;
all_pvs_used:
    for (size_t i = 0; i < nfps; i++)
        if (fps[i].vg_id != NULL && strcmp (fps[i].vg_id, g->id) == 0) {
            struct map_vol *mv = &m->vols[fps[i].vol];
            fs_all_used (&mv->fs, "VG %s could not be mapped", g->name);
            if (rangeset_add (&m->disks[fps[i].disk].used, fps[i].off,
                              fps[i].size) < 0)
                goto out;
        }
    r = 0;
out:
    free (refs);
    free (segs);
    free (pvs);
    return r;
}

static int
map_lvm (struct disk_map *m, struct found_pv *fps, size_t nfps)
{
    for (size_t i = 0; i < nfps; i++) {
        struct found_pv *fp = &fps[i];
        struct map_vol *mv = &m->vols[fp->vol];

        if (fp->pv.text != NULL) {
            fp->cfg = cfg_parse (fp->pv.text, fp->pv.text_len);
            if (fp->cfg == NULL)
                snprintf (fp->pv.why, sizeof fp->pv.why, "%s",
                          vmc_get_error ());
            else {
                /* The VG: the top-level section with physical_volumes. */
                for (const struct cfg_node *n = fp->cfg->child; n != NULL;
                     n = n->next)
                    if (n->type == CFG_SECTION &&
                        cfg_get (n, "physical_volumes") != NULL) {
                        fp->vg = n;
                        break;
                    }
                if (fp->vg != NULL)
                    fp->vg_id = cfg_get_str (fp->vg, "id");
                if (fp->vg == NULL || fp->vg_id == NULL ||
                    cfg_get_num (fp->vg, "seqno", &fp->seqno) < 0) {
                    fp->vg = NULL;
                    fp->vg_id = NULL;
                    snprintf (fp->pv.why, sizeof fp->pv.why,
                              "no volume group in the metadata");
                }
            }
        }
        if (fp->vg_id == NULL) {
            fs_all_used (&mv->fs, "LVM PV: %s", fp->pv.why);
            whys_add (&m->whys, "%s: LVM PV: %s: all of it counts as used",
                      mv->name, fp->pv.why);
            fp->done = true;
            if (rangeset_add (&m->disks[fp->disk].used, fp->off, fp->size) < 0)
                return -1;
        }
    }
    for (size_t i = 0; i < nfps; i++) {
        size_t best = i;
        if (fps[i].done)
            continue;
        for (size_t j = i + 1; j < nfps; j++)
            if (!fps[j].done && fps[j].vg_id != NULL &&
                strcmp (fps[j].vg_id, fps[i].vg_id) == 0 &&
                fps[j].seqno > fps[best].seqno)
                best = j;
        if (map_vg (m, fps, nfps, best) < 0)
            return -1;
    }
    return 0;
}

/* ---- disks ---------------------------------------------------------- */

/* A volume of a disk (partition or whole disk): PV or filesystem. */
static int
map_volume (struct disk_map *m, size_t d, struct map_vol *proto,
            struct found_pv **fps, size_t *nfps)
{
    struct map_disk *md = &m->disks[d];
    struct map_vol *mv;
    struct volume v;
    size_t vi;
    int p;

    mv = add_vol (m);
    if (mv == NULL)
        return -1;
    *mv = *proto;
    vi = (size_t) (mv - m->vols);
    volume_of_image (&v, mv->name, md->img, mv->start, mv->size);
    p = lvm_probe (&v);
    if (p < 0)
        return -1;
    if (p == 1) {
        struct found_pv *fp, *n;

        snprintf (mv->fs.type, sizeof mv->fs.type, "LVM2_member");
        if (*nfps == LVM_MAX_PVS) {
            fs_all_used (&mv->fs, "too many LVM PVs");
            return rangeset_add (&md->used, mv->start, mv->size);
        }
        n = realloc (*fps, (*nfps + 1) * sizeof *n);
        if (n == NULL) {
            vmc_perror ("realloc");
            return -1;
        }
        *fps = n;
        fp = &n[(*nfps)++];
        memset (fp, 0, sizeof *fp);
        fp->disk = (int) d;
        fp->off = mv->start;
        fp->size = mv->size;
        fp->vol = vi;
        if (lvm_pv_read (&v, &fp->pv) < 0)
            return -1;
        snprintf (m->vols[vi].fs.uuid, sizeof m->vols[vi].fs.uuid, "%s",
                  fp->pv.uuid);
        /* Mapped with its VG later. */
        return 0;
    }
    if (fs_identify (&v, &mv->fs) < 0)
        return -1;
    return add_fs_used (m, mv, &md->used, mv->start);
}

static int
map_disk (struct disk_map *m, size_t d, struct found_pv **fps, size_t *nfps)
{
    struct map_disk *md = &m->disks[d];
    struct part_table *t = &md->pt;
    struct map_vol proto;
    struct volume v;
    uint64_t first = UINT64_MAX;

    volume_of_image (&v, md->name, md->img, 0, md->size);
    if (part_read (&v, t, &m->whys) < 0)
        return -1;
    if (t->all_used) {
        whys_add (&m->whys, "%s: %s partition table: %s: the whole disk "
                  "counts as used", md->name, t->kind, t->why);
        return rangeset_add (&md->used, 0, md->size);
    }
    if (strcmp (t->kind, "none") == 0) {
        memset (&proto, 0, sizeof proto);
        snprintf (proto.name, sizeof proto.name, "%s", md->name);
        snprintf (proto.kind, sizeof proto.kind, "disk");
        proto.disk = (int) d;
        proto.size = md->size;
        return map_volume (m, d, &proto, fps, nfps);
    }
    if (t->n == 0) {
        whys_add (&m->whys, "%s: %s partition table without partitions: the "
                  "whole disk counts as used", md->name, t->kind);
        return rangeset_add (&md->used, 0, md->size);
    }
    if (strcmp (t->kind, "mbr") == 0) {
        /* A filesystem on the whole disk whose boot sector looks like an
         * MBR (0x55AA ends volume boot records too): which is it? */
        for (size_t i = 0; fs_types[i] != NULL; i++) {
            int p = fs_types[i]->probe (&v);
            if (p < 0)
                return -1;
            if (p > 0) {
                whys_add (&m->whys, "%s: both an MBR and a %s filesystem on "
                          "the whole disk: the whole disk counts as used",
                          md->name, fs_types[i]->name);
                return rangeset_add (&md->used, 0, md->size);
            }
        }
    }
    for (size_t i = 0; i < t->meta.n; i++)
        if (rangeset_add (&md->used, t->meta.r[i].start,
                          t->meta.r[i].end - t->meta.r[i].start) < 0)
            return -1;
    for (size_t i = 0; i < t->n; i++)
        first = MIN (first, t->e[i].start);
    /* Boot loaders live before the first partition. */
    if (rangeset_add (&md->used, 0, first) < 0)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        const struct part_entry *e = &t->e[i];

        memset (&proto, 0, sizeof proto);
        snprintf (proto.name, sizeof proto.name, "%s p%u", md->name,
                  e->number);
        snprintf (proto.kind, sizeof proto.kind, "partition");
        proto.disk = (int) d;
        proto.number = e->number;
        proto.start = e->start;
        proto.size = e->size;
        snprintf (proto.ptype, sizeof proto.ptype, "%s", e->type);
        snprintf (proto.pname, sizeof proto.pname, "%s", e->name);
        if (e->bios_boot || strcmp (e->type, "extended") == 0) {
            struct map_vol *mv = add_vol (m);
            if (mv == NULL)
                return -1;
            *mv = proto;
            snprintf (mv->fs.type, sizeof mv->fs.type, "%s",
                      e->bios_boot ? "bios_boot" : "extended");
            fs_all_used (&mv->fs, "%s", e->bios_boot
                          ? "BIOS boot partition (boot loader code)"
                          : "unreadable extended partition");
            mv->used_bytes = mv->size;
            if (rangeset_add (&md->used, e->start, e->size) < 0)
                return -1;
            continue;
        }
        if (map_volume (m, d, &proto, fps, nfps) < 0)
            return -1;
    }
    return 0;
}

/* Round every range outwards to MAP_ALIGN, clamped to SIZE. */
static int
round_used (struct rangeset *s, uint64_t size)
{
    struct rangeset out = { 0 };

    for (size_t i = 0; i < s->n; i++) {
        uint64_t a = ROUND_DOWN (s->r[i].start, (uint64_t) MAP_ALIGN);
        uint64_t b = s->r[i].end;

        if (b > UINT64_MAX - MAP_ALIGN)
            b = UINT64_MAX;
        else
            b = ROUND_UP (b, (uint64_t) MAP_ALIGN);
        b = MIN (b, size);
        if (a < b && rangeset_add (&out, a, b - a) < 0) {
            rangeset_free (&out);
            return -1;
        }
    }
    rangeset_free (s);
    *s = out;
    return 0;
}

int
disk_map_build (struct disk_map *m, struct image *const *imgs,
                const char *const *names, size_t n)
{
    struct found_pv *fps = NULL;
    size_t nfps = 0;
    int r = -1;

    memset (m, 0, sizeof *m);
    m->disks = calloc (n ? n : 1, sizeof *m->disks);
    if (m->disks == NULL) {
        vmc_perror ("calloc");
        return -1;
    }
    m->ndisks = n;
    for (size_t d = 0; d < n; d++) {
        m->disks[d].name = names[d];
        m->disks[d].img = imgs[d];
        m->disks[d].size = imgs[d]->size;
    }
    for (size_t d = 0; d < n; d++)
        if (map_disk (m, d, &fps, &nfps) < 0)
            goto out;
    if (map_lvm (m, fps, nfps) < 0)
        goto out;
    for (size_t d = 0; d < n; d++)
        if (round_used (&m->disks[d].used, m->disks[d].size) < 0)
            goto out;
    r = 0;
out:
    for (size_t i = 0; i < nfps; i++) {
        lvm_pv_free (&fps[i].pv);
        cfg_free (fps[i].cfg);
    }
    free (fps);
    return r;
}

void
disk_map_free (struct disk_map *m)
{
    for (size_t d = 0; d < m->ndisks; d++) {
        part_table_free (&m->disks[d].pt);
        rangeset_free (&m->disks[d].used);
    }
    for (size_t i = 0; i < m->nvols; i++) {
        fs_result_free (&m->vols[i].fs);
        lv_segs_free (&m->vols[i]);
    }
    free (m->disks);
    free (m->vols);
    free (m->vgs);
    whys_free (&m->whys);
    memset (m, 0, sizeof *m);
}

int
map_block_status (struct image *img, const struct rangeset *used,
                  uint64_t offset, uint64_t count, struct extent *ext)
{
    uint64_t next;

    if (used == NULL)
        return image_block_status (img, offset, count, ext);
    if (rangeset_lookup (used, offset, &next)) {
        return image_block_status (img, offset, MIN (count, next - offset),
                                   ext);
    }
    if (count == 0) {
        vmc_error ("%s: internal error: empty block status", img->filename);
        return -1;
    }
    ext->offset = offset;
    ext->length = MIN (count, next - offset);
    ext->type = EXTENT_ZERO;
    return 0;
}
