/* SPDX-License-Identifier: MIT */
/*
 * NTFS: the clusters in use are the set bits of $Bitmap (MFT record 6,
 * its unnamed $DATA attribute), plus the boot region and whatever lies
 * past the last cluster (the backup boot sector is the volume's last
 * sector, beyond the cluster count).
 *
 * Written from the public descriptions of the on-disk format (the
 * Linux-NTFS project's "NTFS documentation"): the boot sector's BPB, FILE
 * records with their update sequence array (fixups, checked), attribute
 * headers, mapping pairs (runs), $Volume's $VOLUME_INFORMATION, the
 * $LogFile restart area, directory indexes ($I30: INDEX_ROOT and INDX
 * blocks of INDEX_ALLOCATION).
 *
 * All in use (the whole volume is copied) when: the volume is dirty, the
 * $LogFile restart area does not say clean, hiberfil.sys in the root holds
 * a hibernation image ("hibr"/"HIBR"/"rstr"/"RSTR", or any header we do
 * not know), a record fails its fixups or any check, a run is invalid
 * (past the volume, overlapping another system file's), the system files'
 * clusters ($Boot, $MFT, $MFTMirr, $LogFile, $Bitmap) are not marked in
 * use in $Bitmap, $Bitmap is compressed, encrypted or sparse, or too short
 * for the cluster count.
 *
 * Limits: MFT records are read only within the $MFT extent held in record
 * 0 (with an attribute list, a record beyond it -- only hiberfil.sys's
 * could be -- makes the volume all in use); hiberfil.sys with an
 * attribute list, or a root directory whose index lives in extension
 * records, makes the volume all in use.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "fs.h"

#define FIXUP_STRIDE 512u
#define MAX_RUNS 65536u                 /* per attribute */
#define MAX_BITMAP_BYTES (520u << 20)   /* 2^32 clusters need 512 MiB */
#define MAX_INDEX_BLOCKS 65536u
#define MAX_LOGFILE_SCAN (1ull << 30)
#define CHUNK (1u << 20)

#define AT_ATTRIBUTE_LIST 0x20u
#define AT_VOLUME_NAME 0x60u
#define AT_VOLUME_INFORMATION 0x70u
#define AT_DATA 0x80u
#define AT_INDEX_ROOT 0x90u
#define AT_INDEX_ALLOCATION 0xa0u
#define AT_BITMAP 0xb0u
#define AT_END 0xffffffffu

#define ATTR_COMPRESSED 0x00ffu
#define ATTR_ENCRYPTED 0x4000u
#define ATTR_SPARSE 0x8000u

#define VOLUME_IS_DIRTY 0x0001u
#define VOLUME_CHKDSK_UNDERWAY 0x4000u
#define RESTART_VOLUME_IS_CLEAN 0x0002u
#define LOGFILE_NO_CLIENT 0xffffu

#define SPARSE_LCN UINT64_MAX

struct run {
    uint64_t vcn, lcn, len;             /* lcn SPARSE_LCN for a hole */
};

/* One attribute's value, ready to be read. */
struct attr {
    bool resident;
    uint16_t flags;
    unsigned char *val;                 /* resident: a copy */
    uint32_t vlen;
    struct run *runs;                   /* non-resident: sorted by vcn */
    size_t nruns;
    uint64_t nvcns;                     /* VCNs mapped by the runs */
    uint64_t data_size, init_size;
};

struct ntfs {
    const struct volume *v;
    struct fs_result *r;
    uint32_t sector, cluster, rec_size;
    uint64_t nclusters, fs_bytes;
    uint64_t mft_lcn, mirr_lcn, serial;
    struct attr mft;                    /* $MFT's $DATA (first extent) */
    uint64_t mft_bytes;                 /* of it, readable records */
};

struct geometry {
    uint32_t sector, cluster, rec_size;
    uint64_t nclusters, fs_bytes, mft_lcn, mirr_lcn, serial;
};

/* Mark the volume all in use (first reason wins); returns 1. */
__attribute__ ((format (printf, 2, 3)))
static int
bad (struct ntfs *n, const char *fmt, ...)
{
    va_list ap;

    if (!n->r->all_used) {
        n->r->all_used = true;
        va_start (ap, fmt);
        vsnprintf (n->r->why, sizeof n->r->why, fmt, ap);
        va_end (ap);
    }
    return 1;
}

static bool
is_pow2 (uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* The BPB of boot sector B (512 bytes); NULL when it is fine, else what
 * is wrong with it. */
static const char *
parse_boot (const unsigned char *b, uint64_t vsize, struct geometry *g)
{
    uint32_t spc;
    uint64_t total;
    int8_t cpm;
    uint8_t s;

    memset (g, 0, sizeof *g);
    if (memcmp (b + 3, "NTFS    ", 8) != 0)
        return "no NTFS signature";
    if (b[510] != 0x55 || b[511] != 0xaa)
        return "boot sector has no 55 AA signature";
    g->sector = get_le16 (b + 0x0b);
    if (!is_pow2 (g->sector) || g->sector < 256 || g->sector > 4096)
        return "bad bytes per sector";
    s = b[0x0d];
    if (s >= 1 && s <= 0x80 && is_pow2 (s))
        spc = s;
    else if (s >= 0xf4)                 /* 2^(256-s): up to 2^12 */
        spc = 1u << (256 - s);
    else
        return "bad sectors per cluster";
    g->cluster = g->sector * spc;
    if (g->cluster < 512 || g->cluster > (2u << 20))
        return "cluster size outside 512 B..2 MiB";
    total = get_le64 (b + 0x28);
    g->nclusters = total / spc;
    if (g->nclusters == 0 || g->nclusters > UINT32_MAX)
        return "bad cluster count";
    g->fs_bytes = g->nclusters * g->cluster;
    if (g->fs_bytes > vsize)
        return "filesystem larger than its volume";
    cpm = (int8_t) b[0x40];
    if (cpm > 0) {
        if (!is_pow2 ((uint32_t) cpm))
            return "bad MFT record size";
        if ((uint64_t) cpm * g->cluster > 65536)
            return "MFT record size too large";
        g->rec_size = (uint32_t) cpm * g->cluster;
    } else {
        if (cpm > -9 || cpm < -16)
            return "bad MFT record size";
        g->rec_size = 1u << -cpm;
    }
    if (g->rec_size < 512)
        return "bad MFT record size";
    g->mft_lcn = get_le64 (b + 0x30);
    g->mirr_lcn = get_le64 (b + 0x38);
    if (g->mft_lcn == 0 || g->mft_lcn >= g->nclusters ||
        g->mirr_lcn == 0 || g->mirr_lcn >= g->nclusters)
        return "$MFT or $MFTMirr outside the volume";
    if (range_outside (g->mft_lcn * g->cluster, 16 * (uint64_t) g->rec_size,
                       g->fs_bytes))
        return "$MFT outside the volume";
    g->serial = get_le64 (b + 0x48);
    return NULL;
}

static int
ntfs_probe (const struct volume *v)
{
    unsigned char b[512];
    struct geometry g;

    if (v->size < 8192)
        return 0;
    if (v->pread (v, b, sizeof b, 0) < 0)
        return -1;
    if (memcmp (b + 3, "NTFS    ", 8) != 0)
        return 0;
    return parse_boot (b, UINT64_MAX, &g) == NULL;
}

/* Apply the update sequence array of the SIZE-byte multi-sector record B
 * whose magic must be MAGIC.  NULL, or what is wrong. */
static const char *
fixup (unsigned char *b, uint32_t size, const char *magic)
{
    uint16_t uo, uc, usn;

    if (memcmp (b, magic, 4) != 0)
        return "bad magic";
    uo = get_le16 (b + 4);
    uc = get_le16 (b + 6);
    if (size % FIXUP_STRIDE != 0 || uc != size / FIXUP_STRIDE + 1)
        return "bad update sequence count";
    if ((uo & 1) || uo < 8 || (uint32_t) uo + 2u * uc > FIXUP_STRIDE - 2)
        return "bad update sequence offset";
    usn = get_le16 (b + uo);
    for (uint32_t i = 1; i < uc; i++) {
        unsigned char *p = b + i * FIXUP_STRIDE - 2;

        if (get_le16 (p) != usn)
            return "fixup mismatch";
        memcpy (p, b + uo + 2 * i, 2);
    }
    return NULL;
}

static void
attr_free (struct attr *a)
{
    free (a->val);
    free (a->runs);
    memset (a, 0, sizeof *a);
}

/* Decode the mapping pairs P[0..LEN) of an attribute whose first VCN is
 * LOWEST into A.  ALLOW_SPARSE: holes allowed.  0, 1 bad, -1 no memory. */
static int
decode_runs (struct ntfs *n, const char *what, const unsigned char *p,
             uint32_t len, uint64_t lowest, uint64_t highest,
             bool allow_sparse, struct attr *a)
{
    uint64_t vcn = lowest;
    int64_t lcn = 0;
    uint32_t i = 0;

    while (i < len && p[i] != 0) {
        unsigned ls = p[i] & 0x0f, os = p[i] >> 4;
        uint64_t rlen = 0, end;
        int64_t delta = 0;

        i++;
        if (ls == 0 || ls > 8 || os > 8 || len - i < ls + os)
            return bad (n, "%s: bad mapping pair", what);
        for (unsigned k = 0; k < ls; k++)
            rlen |= (uint64_t) p[i + k] << (8 * k);
        i += ls;
        if (rlen == 0 || rlen > n->nclusters || (int64_t) rlen < 0)
            return bad (n, "%s: bad run length", what);
        if (os > 0) {
            uint64_t u = 0;

            for (unsigned k = 0; k < os; k++)
                u |= (uint64_t) p[i + k] << (8 * k);
            if (os < 8 && (p[i + os - 1] & 0x80))
                u |= ~0ull << (8 * os);
            delta = (int64_t) u;
            i += os;
            if (__builtin_add_overflow (lcn, delta, &lcn) || lcn < 0 ||
                range_outside ((uint64_t) lcn, rlen, n->nclusters))
                return bad (n, "%s: run outside the volume", what);
        } else if (!allow_sparse) {
            return bad (n, "%s: sparse run", what);
        }
        if (a->nruns >= MAX_RUNS)
            return bad (n, "%s: more than %u runs", what, MAX_RUNS);
        if (ckd_add (&end, vcn, rlen) || end - 1 > highest)
            return bad (n, "%s: runs past the highest VCN", what);
        if (a->nruns % 64 == 0) {
            struct run *nr = realloc (a->runs, (a->nruns + 64) * sizeof *nr);

            if (nr == NULL) {
                vmc_error ("out of memory");
                return -1;
            }
            a->runs = nr;
        }
        a->runs[a->nruns].vcn = vcn;
        a->runs[a->nruns].lcn = os > 0 ? (uint64_t) lcn : SPARSE_LCN;
        a->runs[a->nruns].len = rlen;
        a->nruns++;
        vcn = end;
    }
    if (i >= len)
        return bad (n, "%s: mapping pairs not terminated", what);
    if (highest != UINT64_MAX && vcn != highest + 1)
        return bad (n, "%s: runs do not cover the attribute", what);
    a->nvcns = vcn;
    return 0;
}

/* Find the attribute TYPE named NAME (ASCII, "" for unnamed) in record
 * REC (fixed up, checked) and load it into A.  0 found, 2 not found, 1
 * bad, -1 no memory.  *HAS_LIST: the record has an attribute list. */
static int
find_attr (struct ntfs *n, const char *what, const unsigned char *rec,
           uint32_t type, const char *name, bool allow_sparse,
           struct attr *a, bool *has_list)
{
    uint32_t used = get_le32 (rec + 0x18);
    uint32_t off = get_le16 (rec + 0x14);
    size_t nlen = strlen (name);

    memset (a, 0, sizeof *a);
    if (has_list != NULL)
        *has_list = false;
    for (unsigned count = 0; ; count++) {
        uint32_t t, alen;
        uint8_t nonres, anl;
        uint16_t aname_off;
        bool match;

        if (count > n->rec_size / 16 || off > used || used - off < 4)
            return bad (n, "%s: attributes run past the record", what);
        t = get_le32 (rec + off);
        if (t == AT_END)
            return 2;
        if (used - off < 0x18)
            return bad (n, "%s: attribute header past the record", what);
        alen = get_le32 (rec + off + 4);
        nonres = rec[off + 8];
        anl = rec[off + 9];
        aname_off = get_le16 (rec + off + 0x0a);
        if (alen < 0x18 || alen % 8 != 0 || alen > used - off || nonres > 1 ||
            (nonres && alen < 0x40))
            return bad (n, "%s: bad attribute header", what);
        if (anl > 0 && (uint32_t) aname_off + 2u * anl > alen)
            return bad (n, "%s: attribute name past the attribute", what);
        if (t == AT_ATTRIBUTE_LIST && has_list != NULL)
            *has_list = true;
        match = t == type && anl == nlen;
        for (size_t k = 0; match && k < nlen; k++)
            match = get_le16 (rec + off + aname_off + 2 * k) ==
                (unsigned char) name[k];
        if (match) {
            const unsigned char *h = rec + off;

            a->flags = get_le16 (h + 0x0c);
            if (!nonres) {
                uint32_t vl = get_le32 (h + 0x10);
                uint16_t vo = get_le16 (h + 0x14);

                if (vo > alen || vl > alen - vo)
                    return bad (n, "%s: resident value past the attribute",
                                what);
                a->resident = true;
                a->vlen = vl;
                a->val = malloc (vl + 1);
                if (a->val == NULL) {
                    vmc_error ("out of memory");
                    return -1;
                }
                memcpy (a->val, h + vo, vl);
                a->data_size = a->init_size = vl;
                return 0;
            } else {
                uint64_t low = get_le64 (h + 0x10), high = get_le64 (h + 0x18);
                uint16_t mp = get_le16 (h + 0x20);
                uint64_t alloc = get_le64 (h + 0x28);
                int rc;

                a->data_size = get_le64 (h + 0x30);
                a->init_size = get_le64 (h + 0x38);
                if (mp < 0x40 || mp >= alen)
                    return bad (n, "%s: bad mapping pairs offset", what);
                if (low == 0 && high == UINT64_MAX && alloc == 0 &&
                    a->data_size == 0 && h[mp] == 0)
                    return 0;           /* empty: no runs */
                if (low > high + 1 || high >= n->nclusters * 2ull + 1 ||
                    a->init_size > a->data_size || a->data_size > alloc)
                    return bad (n, "%s: bad non-resident header", what);
                if (low != 0)
                    return bad (n, "%s: first extent not in the base record",
                                what);
                rc = decode_runs (n, what, h + mp, alen - mp, low,
                                  high, allow_sparse, a);
                if (rc != 0)
                    return rc;
                return 0;
            }
        }
        off += alen;
    }
}

/* Read LEN bytes at byte OFF of A's value.  Bytes past the initialized
 * size read as zero.  0, 1 bad (outside what is mapped), -1 read error. */
static int
read_attr (struct ntfs *n, const char *what, const struct attr *a,
           uint64_t off, uint64_t len, unsigned char *buf)
{
    if (range_outside (off, len, a->data_size))
        return bad (n, "%s: read past its data", what);
    if (a->resident) {
        memcpy (buf, a->val + off, len);
        return 0;
    }
    while (len > 0) {
        uint64_t vcn = off / n->cluster, in = off % n->cluster, l;
        size_t lo = 0, hi = a->nruns;

        if (off >= a->init_size) {
            memset (buf, 0, len);
            return 0;
        }
        while (lo < hi) {               /* last run with run.vcn <= vcn */
            size_t mid = lo + (hi - lo) / 2;

            if (a->runs[mid].vcn <= vcn)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == 0 || vcn - a->runs[lo - 1].vcn >= a->runs[lo - 1].len)
            return bad (n, "%s: data not mapped by its runs", what);
        const struct run *rr = &a->runs[lo - 1];
        l = (rr->len - (vcn - rr->vcn)) * n->cluster - in;
        if (l > len)
            l = len;
        if (l > a->init_size - off)
            l = a->init_size - off;
        if (l > CHUNK)
            l = CHUNK;
        if (rr->lcn == SPARSE_LCN)
            memset (buf, 0, l);
        else if (n->v->pread (n->v, buf, l,
                              (rr->lcn + (vcn - rr->vcn)) * n->cluster + in)
                 < 0)
            return -1;
        buf += l;
        off += l;
        len -= l;
    }
    return 0;
}

/* Check a fixed-up FILE record of NUM. */
static int
check_record (struct ntfs *n, const char *what, unsigned char *rec,
              uint64_t num)
{
    const char *e = fixup (rec, n->rec_size, "FILE");
    uint16_t uo = get_le16 (rec + 4), ao = get_le16 (rec + 0x14);
    uint32_t used = get_le32 (rec + 0x18), alloc = get_le32 (rec + 0x1c);

    if (e != NULL)
        return bad (n, "%s (MFT record %llu): %s", what,
                    (unsigned long long) num, e);
    if (!(get_le16 (rec + 0x16) & 0x0001))
        return bad (n, "%s (MFT record %llu) is not in use", what,
                    (unsigned long long) num);
    if (alloc != n->rec_size || used > alloc || ao % 8 != 0 ||
        ao < uo + 2u * get_le16 (rec + 6) || ao >= used)
        return bad (n, "%s (MFT record %llu): bad record header", what,
                    (unsigned long long) num);
    if (uo >= 0x30 && get_le32 (rec + 0x2c) != (uint32_t) num)
        return bad (n, "%s (MFT record %llu): wrong record number", what,
                    (unsigned long long) num);
    if (get_le64 (rec + 0x20) != 0)
        return bad (n, "%s (MFT record %llu) is an extension record", what,
                    (unsigned long long) num);
    return 0;
}

static int
read_record (struct ntfs *n, const char *what, uint64_t num,
             unsigned char *rec)
{
    uint64_t off;
    int rc;

    if (ckd_mul (&off, num, (uint64_t) n->rec_size) ||
        range_outside (off, n->rec_size, n->mft_bytes))
        return bad (n, "%s (MFT record %llu) lies outside the mapped $MFT",
                    what, (unsigned long long) num);
    rc = read_attr (n, what, &n->mft, off, n->rec_size, rec);
    if (rc != 0)
        return rc;
    return check_record (n, what, rec, num);
}

/* Load attribute TYPE/NAME of record NUM into A; missing is bad. */
static int
load_attr (struct ntfs *n, const char *what, uint64_t num, uint32_t type,
           const char *name, unsigned char *rec, struct attr *a)
{
    bool has_list;
    int rc = read_record (n, what, num, rec);

    if (rc != 0)
        return rc;
    rc = find_attr (n, what, rec, type, name, false, a, &has_list);
    if (rc == 2)
        return bad (n, "%s: attribute 0x%x not found%s", what, type,
                    has_list ? " (it has an attribute list)" : "");
    if (rc == 0 && (a->flags & (ATTR_COMPRESSED | ATTR_ENCRYPTED |
                                ATTR_SPARSE)))
        return bad (n, "%s is compressed, encrypted or sparse", what);
    return rc;
}

/* Load a non-resident system file's data attribute. */
static int
load_data (struct ntfs *n, const char *what, uint64_t num,
           unsigned char *rec, struct attr *a)
{
    int rc = load_attr (n, what, num, AT_DATA, "", rec, a);

    if (rc != 0)
        return rc;
    if (a->resident || a->nruns == 0)
        return bad (n, "%s has no clusters", what);
    if (a->data_size > a->nvcns * n->cluster)
        return bad (n, "%s: data size larger than its runs", what);
    return 0;
}

static int
check_logfile (struct ntfs *n, const struct attr *log)
{
    unsigned char *pg = NULL;
    uint64_t best_lsn = 0;
    int rc = 0, found = 0, clean = 0;
    uint32_t psize = 0;
    unsigned char h[512];

    if (log->data_size < 8192)
        return bad (n, "$LogFile too small");
    rc = read_attr (n, "$LogFile", log, 0, sizeof h, h);
    if (rc != 0)
        return rc;
    if (memcmp (h, "\xff\xff\xff\xff", 4) == 0) {
        /* Emptied (as mkntfs and ntfs-3g leave it): all of it must be. */
        uint64_t size = log->data_size;

        if (size > MAX_LOGFILE_SCAN)
            return bad (n, "$LogFile too large to check");
        pg = malloc (CHUNK);
        if (pg == NULL) {
            vmc_error ("out of memory");
            return -1;
        }
        for (uint64_t off = 0; off < size && rc == 0; off += CHUNK) {
            uint64_t l = size - off < CHUNK ? size - off : CHUNK;

            rc = read_attr (n, "$LogFile", log, off, l, pg);
            /* All bytes 0xff: the first is, and each equals the next. */
            if (rc == 0 && (pg[0] != 0xff || memcmp (pg, pg + 1, l - 1) != 0))
                rc = bad (n, "$LogFile neither empty nor with a restart "
                          "page");
        }
        free (pg);
        return rc;
    }
    if (memcmp (h, "RSTR", 4) != 0)
        return bad (n, "$LogFile has no valid restart page (%.4s)",
                    memcmp (h, "CHKD", 4) == 0 ? "CHKD" : "?");
    psize = get_le32 (h + 0x10);
    if (!is_pow2 (psize) || psize < 512 || psize > 65536 ||
        2ull * psize > log->data_size)
        return bad (n, "$LogFile: bad restart page size");
    pg = malloc (psize);
    if (pg == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        uint16_t ra_off, in_use, flags;
        uint64_t lsn;

        rc = read_attr (n, "$LogFile", log, (uint64_t) i * psize, psize, pg);
        if (rc != 0)
            break;
        if (get_le32 (pg + 0x10) != psize || fixup (pg, psize, "RSTR") != NULL)
            continue;
        ra_off = get_le16 (pg + 0x18);
        if (ra_off % 8 != 0 || ra_off < 0x1e || ra_off + 0x30u > psize)
            continue;
        lsn = get_le64 (pg + ra_off);
        in_use = get_le16 (pg + ra_off + 0x0c);
        flags = get_le16 (pg + ra_off + 0x0e);
        if (!found || lsn > best_lsn) {
            best_lsn = lsn;
            clean = in_use == LOGFILE_NO_CLIENT ||
                (flags & RESTART_VOLUME_IS_CLEAN);
        }
        found = 1;
    }
    free (pg);
    if (rc != 0)
        return rc;
    if (!found)
        return bad (n, "$LogFile: no valid restart page");
    if (!clean)
        return bad (n, "$LogFile not clean (Windows did not shut down "
                    "cleanly, or fast startup is on)");
    return 0;
}

static bool
name_is (const unsigned char *u16, unsigned len, const char *ascii)
{
    if (strlen (ascii) != len)
        return false;
    for (unsigned i = 0; i < len; i++) {
        uint16_t c = get_le16 (u16 + 2 * i);

        if (c >= 'A' && c <= 'Z')
            c += 'a' - 'A';
        if (c != (unsigned char) ascii[i])
            return false;
    }
    return true;
}

/* hiberfil.sys is MFT record REF: is a hibernation image in it? */
static int
check_hiberfil (struct ntfs *n, uint64_t ref, unsigned char *rec)
{
    uint64_t num = ref & 0xffffffffffffull;
    struct attr a;
    bool has_list;
    unsigned char h[4];
    int rc;

    rc = read_record (n, "hiberfil.sys", num, rec);
    if (rc != 0)
        return rc;
    if (get_le16 (rec + 0x10) != (uint16_t) (ref >> 48))
        return bad (n, "hiberfil.sys: directory entry is stale");
    rc = find_attr (n, "hiberfil.sys", rec, AT_DATA, "", true, &a, &has_list);
    if (rc == 2)
        return bad (n, "hiberfil.sys: no data attribute found");
    if (rc != 0) {
        attr_free (&a);
        return rc;
    }
    if (a.flags & (ATTR_COMPRESSED | ATTR_ENCRYPTED)) {
        attr_free (&a);
        return bad (n, "hiberfil.sys is compressed or encrypted");
    }
    if (a.data_size < 4) {
        attr_free (&a);
        return 0;
    }
    rc = read_attr (n, "hiberfil.sys", &a, 0, 4, h);
    attr_free (&a);
    if (rc != 0)
        return rc;
    if (memcmp (h, "\0\0\0\0", 4) == 0 || memcmp (h, "wake", 4) == 0 ||
        memcmp (h, "WAKE", 4) == 0)
        return 0;
    if (memcmp (h, "hibr", 4) == 0 || memcmp (h, "HIBR", 4) == 0 ||
        memcmp (h, "rstr", 4) == 0 || memcmp (h, "RSTR", 4) == 0)
        return bad (n, "hiberfil.sys holds a hibernation image (Windows is "
                    "hibernated or fast startup is on)");
    return bad (n, "hiberfil.sys has an unknown header");
}

/* Scan index entries at E[0..LEN) for hiberfil.sys; check each match. */
static int
scan_entries (struct ntfs *n, const unsigned char *e, uint32_t len,
              unsigned char *rec, unsigned *matches)
{
    uint32_t off = 0;

    for (;;) {
        uint16_t elen, klen, flags;

        if (len - off < 0x10)
            return bad (n, "root directory: index entries overrun");
        elen = get_le16 (e + off + 8);
        klen = get_le16 (e + off + 10);
        flags = get_le16 (e + off + 12);
        if (elen < 0x10 || elen % 8 != 0 || elen > len - off ||
            (uint32_t) klen + 0x10 > elen)
            return bad (n, "root directory: bad index entry");
        if (flags & 0x0002)
            return 0;
        if (klen < 0x42 || 0x42u + 2u * e[off + 0x10 + 0x40] > klen)
            return bad (n, "root directory: bad file name key");
        if (name_is (e + off + 0x10 + 0x42, e[off + 0x10 + 0x40],
                     "hiberfil.sys")) {
            int rc;

            if (++*matches > 4)
                return bad (n, "root directory: hiberfil.sys too often");
            rc = check_hiberfil (n, get_le64 (e + off), rec);
            if (rc != 0)
                return rc;
        }
        off += elen;
    }
}

/* Index header at H (within a buffer of AVAIL bytes from H). */
static int
scan_index_header (struct ntfs *n, const unsigned char *h, uint32_t avail,
                   unsigned char *rec, unsigned *matches)
{
    uint32_t eo, il;

    if (avail < 16)
        return bad (n, "root directory: index header overrun");
    eo = get_le32 (h);
    il = get_le32 (h + 4);
    if (eo < 16 || eo % 8 != 0 || il > avail || eo > il)
        return bad (n, "root directory: bad index header");
    return scan_entries (n, h + eo, il - eo, rec, matches);
}

/* Look for hiberfil.sys in the root directory (record 5). */
static int
check_root (struct ntfs *n, unsigned char *rec)
{
    struct attr ir, ia, bm;
    unsigned char *blk = NULL;
    unsigned matches = 0;
    uint32_t bsize;
    uint64_t nblocks;
    bool has_list;
    int rc;

    memset (&ia, 0, sizeof ia);
    memset (&bm, 0, sizeof bm);
    rc = load_attr (n, "root directory", 5, AT_INDEX_ROOT, "$I30", rec, &ir);
    if (rc != 0)
        goto out;
    if (!ir.resident || ir.vlen < 0x20)
        rc = bad (n, "root directory: bad index root");
    if (rc == 0) {
        bsize = get_le32 (ir.val + 8);
        if (!is_pow2 (bsize) || bsize < 512 || bsize > 65536)
            rc = bad (n, "root directory: bad index block size");
    }
    if (rc == 0)
        rc = scan_index_header (n, ir.val + 0x10, ir.vlen - 0x10, rec,
                                &matches);
    if (rc != 0 || !(ir.val[0x1c] & 0x01))
        goto out;
    /* A large index: every INDX block that its $BITMAP marks in use.
     * (rec was reused by check_hiberfil: read record 5 again.) */
    rc = read_record (n, "root directory", 5, rec);
    if (rc == 0)
        rc = find_attr (n, "root directory", rec, AT_INDEX_ALLOCATION,
                        "$I30", false, &ia, &has_list);
    if (rc == 0)
        rc = find_attr (n, "root directory", rec, AT_BITMAP, "$I30", false,
                        &bm, NULL);
    if (rc == 2)
        rc = bad (n, "root directory: index allocation or bitmap not found%s",
                  has_list ? " (it has an attribute list)" : "");
    if (rc != 0)
        goto out;
    if ((ia.flags | bm.flags) & (ATTR_COMPRESSED | ATTR_ENCRYPTED |
                                 ATTR_SPARSE) || ia.resident) {
        rc = bad (n, "root directory: index allocation not plain");
        goto out;
    }
    nblocks = ia.data_size / bsize;
    if (nblocks > MAX_INDEX_BLOCKS || ia.data_size % bsize != 0 ||
        bm.data_size > MAX_INDEX_BLOCKS / 8 + 8 ||
        bm.data_size * 8 < nblocks) {
        rc = bad (n, "root directory: bad index size");
        goto out;
    }
    blk = malloc (bsize > bm.data_size ? bsize : bm.data_size + 1);
    if (blk == NULL) {
        vmc_error ("out of memory");
        rc = -1;
        goto out;
    }
    rc = read_attr (n, "root directory bitmap", &bm, 0, bm.data_size, blk);
    if (rc != 0)
        goto out;
    unsigned char bits[MAX_INDEX_BLOCKS / 8 + 8];
    memcpy (bits, blk, bm.data_size);
    for (uint64_t i = 0; i < nblocks && rc == 0; i++) {
        const char *e;

        if (!(bits[i / 8] & (1u << (i % 8))))
            continue;
        rc = read_attr (n, "root directory index", &ia, i * bsize, bsize, blk);
        if (rc != 0)
            break;
        e = fixup (blk, bsize, "INDX");
        if (e != NULL) {
            rc = bad (n, "root directory index block %llu: %s",
                      (unsigned long long) i, e);
            break;
        }
        rc = scan_index_header (n, blk + 0x18, bsize - 0x18, rec, &matches);
    }
out:
    free (blk);
    attr_free (&ir);
    attr_free (&ia);
    attr_free (&bm);
    return rc;
}

static bool
bit (const unsigned char *bm, uint64_t i)
{
    return (bm[i / 8] >> (i % 8)) & 1;
}

/* Every cluster of A's runs must be marked in use. */
static int
check_marked (struct ntfs *n, const char *what, const struct attr *a,
              const unsigned char *bm)
{
    for (size_t i = 0; i < a->nruns; i++) {
        const struct run *rr = &a->runs[i];

        if (rr->lcn == SPARSE_LCN)
            continue;
        for (uint64_t c = rr->lcn; c < rr->lcn + rr->len; c++)
            if (!bit (bm, c))
                return bad (n, "%s: cluster %llu not marked in use in "
                            "$Bitmap", what, (unsigned long long) c);
    }
    return 0;
}

static int
cmp_run_lcn (const void *a, const void *b)
{
    const struct run *x = a, *y = b;

    return x->lcn < y->lcn ? -1 : x->lcn > y->lcn;
}

/* The system files' runs must not overlap one another. */
static int
check_overlap (struct ntfs *n, const struct attr *const *as, size_t na)
{
    size_t total = 0, k = 0;
    struct run *all;
    int rc = 0;

    for (size_t i = 0; i < na; i++)
        total += as[i]->nruns;
    all = malloc ((total + 1) * sizeof *all);
    if (all == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < as[i]->nruns; j++)
            all[k++] = as[i]->runs[j];
    qsort (all, total, sizeof *all, cmp_run_lcn);
    for (size_t i = 1; i < total; i++)
        if (all[i - 1].lcn + all[i - 1].len > all[i].lcn) {
            rc = bad (n, "system files' runs overlap at cluster %llu",
                      (unsigned long long) all[i].lcn);
            break;
        }
    free (all);
    return rc;
}

/* $MFTMirr's copy of the first records must equal $MFT's (as stored,
 * before fixups). */
static int
check_mirror (struct ntfs *n, const struct attr *mirr, unsigned char *rec)
{
    uint64_t count = mirr->data_size / n->rec_size;
    unsigned char *m;
    int rc = 0;

    if (count > 4)
        count = 4;
    if (count == 0)
        return bad (n, "$MFTMirr holds no record");
    m = malloc (n->rec_size);
    if (m == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        rc = read_attr (n, "$MFT", &n->mft, i * n->rec_size, n->rec_size, rec);
        if (rc == 0)
            rc = read_attr (n, "$MFTMirr", mirr, i * n->rec_size, n->rec_size,
                            m);
        if (rc == 0 && memcmp (rec, m, n->rec_size) != 0)
            rc = bad (n, "$MFTMirr does not match $MFT (record %llu)",
                      (unsigned long long) i);
    }
    free (m);
    return rc;
}

static void
utf16_label (char *dst, size_t dstlen, const unsigned char *src, uint32_t n)
{
    size_t k = 0;

    for (uint32_t i = 0; i + 1 < n && k + 1 < dstlen; i += 2) {
        uint16_t c = get_le16 (src + i);

        dst[k++] = c >= 0x20 && c < 0x7f ? (char) c : '?';
    }
    dst[k] = 0;
}

static int
ntfs_used (const struct volume *v, struct fs_result *r)
{
    struct ntfs n = { .v = v, .r = r };
    struct attr mirr = { 0 }, log = { 0 }, bmp = { 0 }, vol = { 0 };
    struct attr boot = { 0 };
    unsigned char b[512], *rec = NULL, *bm = NULL;
    struct geometry g;
    const char *e;
    uint64_t bmbytes;
    bool has_list;
    int rc;

    if (v->size < 8192) {
        bad (&n, "volume too small");
        return 0;
    }
    if (v->pread (v, b, sizeof b, 0) < 0)
        return -1;
    e = parse_boot (b, v->size, &g);
    if (e != NULL) {
        bad (&n, "boot sector: %s", e);
        return 0;
    }
    n.sector = g.sector;
    n.cluster = g.cluster;
    n.rec_size = g.rec_size;
    n.nclusters = g.nclusters;
    n.fs_bytes = g.fs_bytes;
    n.mft_lcn = g.mft_lcn;
    n.mirr_lcn = g.mirr_lcn;
    r->block_size = g.cluster;
    snprintf (r->uuid, sizeof r->uuid, "%016llX",
              (unsigned long long) g.serial);

    rec = malloc (n.rec_size);
    if (rec == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    /* Record 0 ($MFT) where the boot sector says; then its own runs. */
    rc = v->pread (v, rec, n.rec_size, n.mft_lcn * n.cluster);
    if (rc == 0)
        rc = check_record (&n, "$MFT", rec, 0);
    if (rc == 0) {
        rc = find_attr (&n, "$MFT", rec, AT_DATA, "", false, &n.mft,
                        &has_list);
        if (rc == 2)
            rc = bad (&n, "$MFT: no data attribute in record 0");
    }
    if (rc == 0 && (n.mft.resident || n.mft.nruns == 0 ||
                    n.mft.runs[0].lcn != n.mft_lcn ||
                    n.mft.runs[0].len * n.cluster < n.rec_size ||
                    (n.mft.flags & (ATTR_COMPRESSED | ATTR_ENCRYPTED |
                                    ATTR_SPARSE))))
        rc = bad (&n, "$MFT: data attribute does not match the boot sector");
    if (rc == 0 && n.mft.nvcns * n.cluster < 16ull * n.rec_size)
        rc = bad (&n, "$MFT: shorter than 16 records");
    if (rc == 0) {
        n.mft_bytes = n.mft.nvcns * n.cluster;
        if (n.mft_bytes > n.mft.data_size)
            n.mft_bytes = n.mft.data_size;
    }
    if (rc == 0 && !has_list && n.mft.data_size > n.mft.nvcns * n.cluster)
        rc = bad (&n, "$MFT: data size larger than its runs");

    if (rc == 0)
        rc = load_data (&n, "$MFTMirr", 1, rec, &mirr);
    if (rc == 0 && mirr.runs[0].lcn != n.mirr_lcn)
        rc = bad (&n, "$MFTMirr: not where the boot sector says");
    if (rc == 0)
        rc = check_mirror (&n, &mirr, rec);
    if (rc == 0)
        rc = load_data (&n, "$LogFile", 2, rec, &log);
    if (rc == 0)
        rc = load_data (&n, "$Boot", 7, rec, &boot);
    if (rc == 0 && boot.runs[0].lcn != 0)
        rc = bad (&n, "$Boot does not start at cluster 0");
    if (rc == 0)
        rc = load_data (&n, "$Bitmap", 6, rec, &bmp);
    if (rc == 0) {
        const struct attr *sys[] = { &n.mft, &mirr, &log, &bmp, &boot };

        rc = check_overlap (&n, sys, sizeof sys / sizeof *sys);
    }

    /* $Volume: version, dirty flag, label. */
    if (rc == 0)
        rc = load_attr (&n, "$Volume", 3, AT_VOLUME_INFORMATION, "", rec,
                        &vol);
    if (rc == 0) {
        uint16_t flags;

        if (!vol.resident || vol.vlen < 12) {
            rc = bad (&n, "$Volume: bad volume information");
        } else {
            flags = get_le16 (vol.val + 0x0a);
            if (vol.val[8] < 1 || vol.val[8] > 3)
                rc = bad (&n, "NTFS version %u.%u unknown", vol.val[8],
                          vol.val[9]);
            else if (flags & VOLUME_IS_DIRTY)
                rc = bad (&n, "volume is marked dirty (needs chkdsk)");
            else if (flags & VOLUME_CHKDSK_UNDERWAY)
                rc = bad (&n, "volume is marked as being checked by chkdsk");
        }
        attr_free (&vol);
    }
    if (rc == 0) {
        rc = find_attr (&n, "$Volume", rec, AT_VOLUME_NAME, "", false, &vol,
                        NULL);
        if (rc == 0 && vol.resident)
            utf16_label (r->label, sizeof r->label, vol.val, vol.vlen);
        if (rc == 2)
            rc = 0;
        attr_free (&vol);
    }

    if (rc == 0)
        rc = check_logfile (&n, &log);
    if (rc == 0)
        rc = check_root (&n, rec);

    /* $Bitmap: one bit per cluster; bits past the count are ignored. */
    bmbytes = (n.nclusters + 7) / 8;
    if (rc == 0 && (bmp.data_size < bmbytes || bmp.init_size < bmbytes ||
                    bmbytes > MAX_BITMAP_BYTES))
        rc = bad (&n, "$Bitmap shorter than the cluster count");
    if (rc == 0) {
        bm = malloc (bmbytes);
        if (bm == NULL) {
            vmc_error ("out of memory");
            rc = -1;
        }
    }
    if (rc == 0)
        rc = read_attr (&n, "$Bitmap", &bmp, 0, bmbytes, bm);
    if (rc == 0) {
        const struct attr *sys[] = { &n.mft, &mirr, &log, &bmp, &boot };
        const char *names[] = { "$MFT", "$MFTMirr", "$LogFile", "$Bitmap",
                                "$Boot" };

        for (size_t i = 0; rc == 0 && i < sizeof sys / sizeof *sys; i++)
            rc = check_marked (&n, names[i], sys[i], bm);
    }
    if (rc == 0) {
        uint64_t i = 0;

        while (rc == 0 && i < n.nclusters) {
            uint64_t s;

            if (i % 8 == 0 && n.nclusters - i >= 8 && bm[i / 8] == 0) {
                i += 8;
                continue;
            }
            if (!bit (bm, i)) {
                i++;
                continue;
            }
            s = i;
            while (i < n.nclusters) {
                if (i % 8 == 0 && n.nclusters - i >= 8 && bm[i / 8] == 0xff)
                    i += 8;
                else if (bit (bm, i))
                    i++;
                else
                    break;
            }
            rc = rangeset_add (&r->used, s * n.cluster, (i - s) * n.cluster);
        }
        /* The boot region, and everything past the last cluster (the
         * backup boot sector). */
        if (rc == 0)
            rc = rangeset_add (&r->used, 0, 8192);
        if (rc == 0)
            rc = rangeset_add (&r->used, n.fs_bytes, v->size - n.fs_bytes);
    }

    free (bm);
    free (rec);
    attr_free (&n.mft);
    attr_free (&mirr);
    attr_free (&log);
    attr_free (&bmp);
    attr_free (&boot);
    if (rc < 0)
        return -1;
    if (r->all_used)
        rangeset_free (&r->used);
    return 0;
}

const struct fs_type fs_ntfs = {
    .name = "ntfs",
    .probe = ntfs_probe,
    .used = ntfs_used,
};
