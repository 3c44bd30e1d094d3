/* SPDX-License-Identifier: MIT */
/*
 * XFS: the blocks in use are every block of every allocation group except
 * the free extents recorded in that AG's by-block free-space B+tree
 * (bnobt).  Written from "XFS Algorithms & Data Structures" (the on-disk
 * format documentation): superblock, AGF, short-form B+tree blocks
 * (ABTB/AB3B, ABTC/AB3C, v5 CRC headers), the log record headers.
 *
 * Checked, or the whole volume is in use:
 *   - superblock: magic, version 4 or 5, geometry (block size 512..64K,
 *     sector size 512..32K, agcount x agblocks against dblocks, the volume
 *     holds dblocks), no mkfs in progress, only known feature bits, no
 *     needsrepair, no realtime section, an internal log; v5: its CRC32C;
 *   - the log: clean, i.e. the last record before the head is an unmount
 *     record that ends exactly at the head (the rule of the kernel's and
 *     xfs_repair's log recovery); the whole log is read once to find the
 *     head from the cycle numbers, and the cycle pattern must be the one a
 *     cleanly written log has: cycle c up to the head, then possibly blank
 *     blocks (cycle 0: never written; mkfs.xfs and xfs_repair -L leave
 *     them after the unmount record they write), then c - 1 to the end;
 *   - every AGF: magic, version, sequence number, length, levels; v5: CRC,
 *     UUID;
 *   - both free-space trees of every AG: magic, level (must decrease by one
 *     per step down, so no cycles), record counts, sibling links, v5 CRC,
 *     block number, owner and UUID; bnobt records sorted, non-overlapping,
 *     inside the AG, each node key equal to its child's first key; a cap on
 *     the blocks visited;
 *   - counters: the bnobt's free blocks equal agf_freeblks, the cntbt holds
 *     the same multiset of extents (same count, same total, same
 *     order-independent hash) and its largest equals agf_longest.
 *
 * The superblock's sb_fdblocks is not compared: it counts more than the
 * bnobt (the AGFL and, with lazy counters, the free-space trees' own
 * blocks: after a clean unmount it was exactly the sum of agf_freeblks +
 * agf_flcount + agf_btreeblks in the tests), v4 without lazy-count does
 * not keep agf_btreeblks, and with lazy superblock counters (always on v5)
 * the superblock value is only brought up to date at unmount and may be
 * stale: the AGFs, checked against both trees, are authoritative.  AGFL
 * blocks are not in the bnobt, so they count as used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/checksum.h"
#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/crc32c.h"
#include "../lib/error.h"
#include "fs.h"
#include "xfs.h"

#define XFS_AGF_MAGIC 0x58414746u       /* "XAGF" */
#define XFS_ABTB_MAGIC 0x41425442u      /* bnobt v4 */
#define XFS_AB3B_MAGIC 0x41423342u      /* bnobt v5 */
#define XFS_ABTC_MAGIC 0x41425443u      /* cntbt v4 */
#define XFS_AB3C_MAGIC 0x41423343u      /* cntbt v5 */
#define XLOG_MAGIC 0xFEEDBABEu
#define XLOG_UNMOUNT_TRANS 0x20
#define NULLAGBLOCK 0xffffffffu

#define AGF_CRC_OFF 216
#define BT_CRC_OFF 52
#define BT_HDR_V4 16
#define BT_HDR_V5 56

#define MAX_LEVELS 10                   /* far above what 2^32 blocks need */
#define LOG_CHUNK (64u << 10)

/* Feature bits this parser knows (none of them changes the AGF or the
 * free-space trees). */
#define VERSION_KNOWN 0xfff0u           /* ATTR .. MOREBITS */
#define FEATURES2_KNOWN 0x3feu          /* LAZYSBCOUNT .. FTYPE, v4 */
#define RO_COMPAT_KNOWN 0xfu            /* finobt, rmapbt, reflink,
                                         * inobtcount */
#define INCOMPAT_KNOWN 0xefu            /* ftype, spinodes, meta_uuid,
                                         * bigtime, nrext64, exchrange,
                                         * parent (0x10 needsrepair: no) */
#define INCOMPAT_NEEDSREPAIR 0x10u
#define INCOMPAT_META_UUID 0x4u

struct xfs {
    const struct volume *v;
    struct fs_result *r;
    uint32_t blocksize, sectsize, agblocks, agcount;
    uint64_t dblocks;
    unsigned agblklog;
    bool crc;
    unsigned char uuid[16];             /* the one metadata carries */
    unsigned char fs_uuid[16];          /* sb_uuid, in log headers */
    unsigned char *blk;                 /* one fs block */
    uint64_t visits, max_visits;
};


bool
xfs_crc_ok (const unsigned char *buf, size_t len, size_t off)
{
    static const unsigned char zero[4];
    uint32_t c = crc32c (0, buf, off);

    c = crc32c (c, zero, 4);
    c = crc32c (c, buf + off + 4, len - off - 4);
    return checksum_ok (get_le32 (buf + off), c);
}

static bool
is_pow2 (uint64_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static unsigned
log2_of (uint64_t n)
{
    unsigned l = 0;

    while ((1ull << l) < n && l < 63)
        l++;
    return l;
}

static int
xfs_probe (const struct volume *v)
{
    unsigned char sb[512];

    if (v->size < 512)
        return 0;
    if (v->pread (v, sb, sizeof sb, 0) < 0)
        return -1;
    if (get_be32 (sb) != XFS_SB_MAGIC)
        return 0;
    uint32_t bs = get_be32 (sb + 4);
    uint16_t ver = get_be16 (sb + 100) & 0xf;
    return is_pow2 (bs) && bs >= 512 && bs <= 65536 &&
        (ver == 4 || ver == 5);
}


/* Byte offset of AG-relative block AGBNO of AG AGNO (geometry checked:
 * cannot overflow). */
static uint64_t
ag_byte (const struct xfs *x, uint32_t agno, uint64_t agbno)
{
    return ((uint64_t) agno * x->agblocks + agbno) * x->blocksize;
}

/* ---- the superblock ---- */

int
xfs_sb_decode (const unsigned char *sb, size_t len, uint64_t volsize,
               struct xfs_sb *s, char *why, size_t n)
{
    uint64_t end;

    memset (s, 0, sizeof *s);
    if (len < 512 || get_be32 (sb) != XFS_SB_MAGIC) {
        snprintf (why, n, "superblock magic number wrong");
        return -1;
    }
    s->blocksize = get_be32 (sb + 4);
    s->dblocks = get_be64 (sb + 8);
    s->rblocks = get_be64 (sb + 16);
    s->rextents = get_be64 (sb + 24);
    memcpy (s->uuid, sb + 32, 16);
    memcpy (s->meta_uuid, sb + 32, 16);
    s->logstart = get_be64 (sb + 48);
    s->rootino = get_be64 (sb + 56);
    s->agblocks = get_be32 (sb + 84);
    s->agcount = get_be32 (sb + 88);
    s->logblocks = get_be32 (sb + 96);
    s->versionnum = get_be16 (sb + 100);
    s->sectsize = get_be16 (sb + 102);
    s->inodesize = get_be16 (sb + 104);
    s->inopblock = get_be16 (sb + 106);
    s->blocklog = sb[120];
    s->sectlog = sb[121];
    s->inodelog = sb[122];
    s->inopblog = sb[123];
    s->agblklog = sb[124];
    s->inprogress = sb[126] != 0;
    s->dirblklog = sb[192];

    if ((s->versionnum & 0xf) != 4 && (s->versionnum & 0xf) != 5) {
        snprintf (why, n, "superblock version %u unknown",
                  s->versionnum & 0xf);
        return -1;
    }
    s->crc = (s->versionnum & 0xf) == 5;
    if (s->crc) {
        s->ro_compat = get_be32 (sb + 212);
        s->incompat = get_be32 (sb + 216);
        s->log_incompat = get_be32 (sb + 220);
        s->ftype = (s->incompat & XFS_SB_INCOMPAT_FTYPE) != 0;
        if (s->incompat & XFS_SB_INCOMPAT_META_UUID)
            memcpy (s->meta_uuid, sb + 248, 16);
    } else if (s->versionnum & XFS_SB_VERSION_MOREBITS) {
        s->features2 = get_be32 (sb + 200);
        s->ftype = (s->features2 & XFS_SB_FEATURES2_FTYPE) != 0;
    }
    if (!is_pow2 (s->blocksize) || s->blocksize < 512 ||
        s->blocksize > 65536 || s->blocklog != log2_of (s->blocksize)) {
        snprintf (why, n, "block size %u invalid", s->blocksize);
        return -1;
    }
    if (!is_pow2 (s->sectsize) || s->sectsize < 512 || s->sectsize > 32768 ||
        s->sectsize > s->blocksize || s->sectlog != log2_of (s->sectsize)) {
        snprintf (why, n, "sector size %u invalid", s->sectsize);
        return -1;
    }
    if (s->crc && s->blocksize < 1024) {
        snprintf (why, n, "v5 with block size %u", s->blocksize);
        return -1;
    }
    if (s->crc && (len < s->sectsize ||
                   !xfs_crc_ok (sb, s->sectsize, XFS_SB_CRC_OFF))) {
        snprintf (why, n, "superblock CRC mismatch");
        return -1;
    }
    /* XFS_MIN_AG_BLOCKS: also keeps the AG headers inside every AG. */
    if (s->agcount == 0 || s->agblocks < 64 ||
        s->agblklog != log2_of (s->agblocks) || s->agblklog > 31) {
        snprintf (why, n, "AG geometry invalid (agcount %u, agblocks %u)",
                  s->agcount, s->agblocks);
        return -1;
    }
    if (s->dblocks == 0 ||
        s->dblocks > (uint64_t) s->agcount * s->agblocks ||
        s->dblocks < (uint64_t) (s->agcount - 1) * s->agblocks + 64) {
        snprintf (why, n, "dblocks %llu does not match %u AGs of %u blocks",
                  (unsigned long long) s->dblocks, s->agcount, s->agblocks);
        return -1;
    }
    if (ckd_mul (&end, s->dblocks, (uint64_t) s->blocksize) ||
        end > volsize) {
        snprintf (why, n, "filesystem (%llu blocks) larger than the volume",
                  (unsigned long long) s->dblocks);
        return -1;
    }
    return 0;
}

static int
check_sb (struct xfs *x, const unsigned char *sb)
{
    struct xfs_sb s;
    char why[200];
    int rc = xfs_sb_decode (sb, 32768, x->v->size, &s, why, sizeof why);

    if (is_pow2 (s.blocksize) && s.blocksize >= 512 && s.blocksize <= 65536)
        x->r->block_size = s.blocksize;
    if (rc < 0)
        return fs_all_used (x->r, "XFS %s", why);
    x->blocksize = s.blocksize;
    x->dblocks = s.dblocks;
    x->agblocks = s.agblocks;
    x->agcount = s.agcount;
    x->sectsize = s.sectsize;
    x->agblklog = s.agblklog;
    x->crc = s.crc;
    memcpy (x->fs_uuid, s.uuid, 16);
    memcpy (x->uuid, s.meta_uuid, 16);

    if (s.inprogress)
        return fs_all_used (x->r, "XFS mkfs did not finish (sb_inprogress)");
    if (s.rblocks != 0 || s.rextents != 0)
        return fs_all_used (x->r, "XFS has a realtime section (not mapped)");

    if (x->crc) {
        if (s.incompat & INCOMPAT_NEEDSREPAIR)
            return fs_all_used (x->r, "XFS is marked as needing repair");
        if (s.incompat & ~INCOMPAT_KNOWN)
            return fs_all_used (x->r, "XFS incompatible features 0x%x unknown",
                             s.incompat & ~INCOMPAT_KNOWN);
        if (s.ro_compat & ~RO_COMPAT_KNOWN)
            return fs_all_used (x->r, "XFS read-only-compatible features 0x%x "
                             "unknown", s.ro_compat & ~RO_COMPAT_KNOWN);
        if (s.log_incompat != 0)
            return fs_all_used (x->r, "XFS log incompatible features 0x%x set "
                             "(log in use)", s.log_incompat);
    } else {
        if (s.versionnum & ~(VERSION_KNOWN | 0xf))
            return fs_all_used (x->r, "XFS version bits 0x%x unknown",
                             s.versionnum);
        if ((s.versionnum & XFS_SB_VERSION_MOREBITS) &&
            (s.features2 & ~FEATURES2_KNOWN))
            return fs_all_used (x->r, "XFS features2 0x%x unknown",
                             s.features2);
        if ((s.versionnum & XFS_SB_VERSION_MOREBITS) &&
            (s.features2 & XFS_SB_FEATURES2_CRC))
            return fs_all_used (x->r, "XFS v4 superblock with the CRC feature");
    }
    return 0;
}

/* ---- the log ---- */

/* Cycle number of the 512-byte log block B (the first word, or h_cycle
 * in a record header). */
static uint32_t
blk_cycle (const unsigned char *b)
{
    return get_be32 (b) == XLOG_MAGIC ? get_be32 (b + 4) : get_be32 (b);
}

static int
check_log (struct xfs *x, const unsigned char *sb)
{
    const struct volume *v = x->v;
    uint64_t logstart = get_be64 (sb + 48);
    uint32_t logblocks = get_be32 (sb + 96);
    uint64_t agno, agbno, lin, off, nbb, head = 0;
    uint32_t c0 = 0, c1 = 0;
    bool seen_change = false;
    int64_t last_hdr_c = -1, last_hdr_all = -1;
    unsigned char *buf;
    unsigned char h[512], op[512];

    if (logstart == 0)
        return fs_all_used (x->r, "XFS external log: cannot check that it is "
                         "clean");
    agno = logstart >> x->agblklog;
    agbno = logstart & ((1ull << x->agblklog) - 1);
    if (agno >= x->agcount || agbno >= x->agblocks)
        return fs_all_used (x->r, "XFS log start %llu invalid",
                         (unsigned long long) logstart);
    lin = agno * x->agblocks + agbno;
    if (logblocks < 64 || lin + logblocks > x->dblocks ||
        agbno + logblocks > x->agblocks)
        return fs_all_used (x->r, "XFS log (%u blocks at %llu) invalid", logblocks,
                         (unsigned long long) logstart);
    off = lin * x->blocksize;
    nbb = (uint64_t) logblocks * (x->blocksize / 512);

    /* Read the log once: the cycle of each block. */
    buf = malloc (LOG_CHUNK);
    if (buf == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    for (uint64_t b = 0; b < nbb; b += LOG_CHUNK / 512) {
        uint64_t n = nbb - b < LOG_CHUNK / 512 ? nbb - b : LOG_CHUNK / 512;

        if (v->pread (v, buf, n * 512, off + b * 512) < 0) {
            free (buf);
            return -1;
        }
        for (uint64_t i = 0; i < n; i++) {
            const unsigned char *p = buf + i * 512;
            uint32_t c = blk_cycle (p);

            if (b + i == 0) {
                c0 = c;
            } else if (!seen_change && c != c0) {
                seen_change = true;
                head = b + i;
                c1 = c;
            } else if (seen_change && c1 == 0 && c != 0) {
                c1 = c;                 /* the end of blank blocks */
            } else if (seen_change && c != c1) {
                free (buf);
                return fs_unclean (x->r, "XFS log is dirty (cycle numbers out "
                                 "of order at log block %llu)",
                                 (unsigned long long) (b + i));
            }
            if (get_be32 (p) == XLOG_MAGIC) {
                if (!seen_change)
                    last_hdr_c = (int64_t) (b + i);
                last_hdr_all = (int64_t) (b + i);
            }
        }
    }
    free (buf);
    if (seen_change && c1 != 0 && c1 + 1 != c0)
        return fs_unclean (x->r, "XFS log is dirty (cycles %u then %u)", c0, c1);
    if (c0 == 0)
        return fs_all_used (x->r, "XFS log has never been written");
    /* The last record header before the head: in [0, head), else (a
     * record that wrapped, or a log full to its end) the last one. */
    int64_t hb = last_hdr_c >= 0 ? last_hdr_c : last_hdr_all;
    if (hb < 0)
        return fs_unclean (x->r, "XFS log is dirty (no record header)");
    if (v->pread (v, h, sizeof h, off + (uint64_t) hb * 512) < 0)
        return -1;
    uint32_t hcycle = get_be32 (h + 4), hver = get_be32 (h + 8);
    uint32_t hlen = get_be32 (h + 12), hnops = get_be32 (h + 40);
    uint64_t hlsn = get_be64 (h + 16);
    uint32_t hsize = get_be32 (h + 320);
    uint64_t hblks = 1, end;

    if (hver != 1 && hver != 2)
        return fs_all_used (x->r, "XFS log record version %u unknown", hver);
    if ((hlsn >> 32) != hcycle || (hlsn & 0xffffffffu) != (uint64_t) hb)
        return fs_all_used (x->r, "XFS log record header LSN inconsistent");
    if (memcmp (h + 304, x->fs_uuid, 16) != 0)
        return fs_all_used (x->r, "XFS log record of another filesystem");
    if (hver == 2 && hsize > 32768) {
        if (hsize > (1u << 20))
            return fs_all_used (x->r, "XFS log record size %u invalid", hsize);
        hblks = (hsize + 32767) / 32768;
    }
    if (hlen > (1u << 20))
        return fs_all_used (x->r, "XFS log record length %u invalid", hlen);
    end = ((uint64_t) hb + hblks + (hlen + 511) / 512) % nbb;
    if (end != head || hnops != 1 || hlen < 12)
        return fs_unclean (x->r, "XFS log is dirty (last record is not an "
                         "unmount record at the head)");
    if (v->pread (v, op, sizeof op,
                  off + (((uint64_t) hb + hblks) % nbb) * 512) < 0)
        return -1;
    /* xlog_op_header: tid, len, clientid, flags. */
    if (!(op[9] & XLOG_UNMOUNT_TRANS))
        return fs_unclean (x->r, "XFS log is dirty (last record is not an "
                         "unmount record)");
    return 0;
}

/* ---- the free-space trees ---- */

struct walk {
    uint32_t agno, aglen;
    uint32_t magic;
    bool bno;                           /* by-block (else by-size) */
    uint32_t maxrecs_leaf, maxrecs_node, hdr;
    /* per level: the last block visited there and its right sibling */
    uint32_t last[MAX_LEVELS], right[MAX_LEVELS];
    /* results */
    uint64_t nrecs, blocks, hash, longest;
    uint32_t prev_start, prev_len;      /* last record, for ordering */
    bool any;
};

static uint64_t
mix64 (uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Check the header of block AGBNO (in x->blk) at LEVEL; 0 good, else
 * all_used was set (returns 1). */
static int
check_bt_block (struct xfs *x, struct walk *w, uint32_t agbno,
                unsigned level, uint16_t *numrecs)
{
    const unsigned char *b = x->blk;
    uint32_t left = get_be32 (b + 8), right = get_be32 (b + 12);
    uint32_t max = level == 0 ? w->maxrecs_leaf : w->maxrecs_node;
    const char *t = w->bno ? "bnobt" : "cntbt";

    if (get_be32 (b) != w->magic || get_be16 (b + 4) != level) {
        fs_all_used (x->r, "XFS AG %u %s block %u: bad magic or level", w->agno,
                  t, agbno);
        return 1;
    }
    *numrecs = get_be16 (b + 6);
    if (*numrecs == 0 && level > 0) {
        fs_all_used (x->r, "XFS AG %u %s node %u is empty", w->agno, t, agbno);
        return 1;
    }
    if (*numrecs > max) {
        fs_all_used (x->r, "XFS AG %u %s block %u: %u records", w->agno, t, agbno,
                  *numrecs);
        return 1;
    }
    if (x->crc) {
        uint64_t daddr = ag_byte (x, w->agno, agbno) / 512;

        if (!xfs_crc_ok (b, x->blocksize, BT_CRC_OFF)) {
            fs_all_used (x->r, "XFS AG %u %s block %u: CRC mismatch", w->agno, t,
                      agbno);
            return 1;
        }
        if (get_be64 (b + 16) != daddr || get_be32 (b + 48) != w->agno ||
            memcmp (b + 32, x->uuid, 16) != 0) {
            fs_all_used (x->r, "XFS AG %u %s block %u: wrong owner, address or "
                      "UUID", w->agno, t, agbno);
            return 1;
        }
    }
    /* Sibling links: blocks of one level are visited left to right. */
    if (left != w->last[level] || (w->last[level] != NULLAGBLOCK &&
                                   w->right[level] != agbno)) {
        fs_all_used (x->r, "XFS AG %u %s block %u: sibling links inconsistent",
                  w->agno, t, agbno);
        return 1;
    }
    w->last[level] = agbno;
    w->right[level] = right;
    return 0;
}

static int
walk_leaf (struct xfs *x, struct walk *w, uint32_t agbno, uint16_t n)
{
    const unsigned char *rec = x->blk + w->hdr;
    const char *t = w->bno ? "bnobt" : "cntbt";

    for (uint16_t i = 0; i < n; i++, rec += 8) {
        uint32_t s = get_be32 (rec), l = get_be32 (rec + 4);

        if (l == 0 || s == 0 || s >= w->aglen || l > w->aglen - s) {
            fs_all_used (x->r, "XFS AG %u %s block %u: extent %u+%u outside the "
                      "AG", w->agno, t, agbno, s, l);
            return 1;
        }
        if (w->any) {
            bool ordered = w->bno ? s >= (uint64_t) w->prev_start +
                w->prev_len : (l > w->prev_len ||
                               (l == w->prev_len && s > w->prev_start));
            if (!ordered) {
                fs_all_used (x->r, "XFS AG %u %s block %u: records out of order "
                          "or overlapping", w->agno, t, agbno);
                return 1;
            }
        }
        w->any = true;
        w->prev_start = s;
        w->prev_len = l;
        w->nrecs++;
        w->blocks += l;
        w->hash += mix64 (((uint64_t) s << 32) | l);
        if (l > w->longest)
            w->longest = l;
    }
    return 0;
}

/* The used ranges of one AG, built from the bnobt's free extents in
 * ascending order. */
struct gaps {
    struct xfs *x;
    uint32_t agno;
    uint64_t next;                      /* first AG block not yet added */
};

static int
walk (struct xfs *x, struct walk *w, uint32_t agbno, unsigned level,
      const unsigned char *key, struct gaps *g)
{
    uint16_t n;
    const char *t = w->bno ? "bnobt" : "cntbt";

    if (agbno == 0 || agbno >= w->aglen) {
        fs_all_used (x->r, "XFS AG %u %s pointer %u outside the AG", w->agno, t,
                  agbno);
        return 1;
    }
    if (++x->visits > x->max_visits) {
        fs_all_used (x->r, "XFS AG %u %s: too many blocks", w->agno, t);
        return 1;
    }
    if (x->v->pread (x->v, x->blk, x->blocksize,
                     ag_byte (x, w->agno, agbno)) < 0)
        return -1;
    if (check_bt_block (x, w, agbno, level, &n))
        return 1;
    /* The parent's key for this block is its first key. */
    if (key != NULL && n > 0 &&
        memcmp (key, x->blk + w->hdr, 8) != 0) {
        fs_all_used (x->r, "XFS AG %u %s block %u: parent key differs", w->agno,
                  t, agbno);
        return 1;
    }
    if (level == 0) {
        uint64_t before = w->nrecs;
        if (walk_leaf (x, w, agbno, n))
            return 1;
        if (g != NULL) {
            const unsigned char *rec = x->blk + w->hdr;
            for (uint64_t i = 0; i < w->nrecs - before; i++, rec += 8) {
                uint32_t s = get_be32 (rec), l = get_be32 (rec + 4);
                if (rangeset_add (&x->r->used, ag_byte (x, g->agno, g->next),
                                  (s - g->next) * (uint64_t) x->blocksize)
                    < 0)
                    return -1;
                g->next = (uint64_t) s + l;
            }
        }
        return 0;
    }
    /* A node: copy its keys and pointers, the block buffer is reused. */
    unsigned char *copy = malloc ((size_t) n * 12);
    int rc = 0;

    if (copy == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    for (uint16_t i = 0; i < n; i++) {
        memcpy (copy + i * 12, x->blk + w->hdr + i * 8, 8);
        memcpy (copy + i * 12 + 8,
                x->blk + w->hdr + w->maxrecs_node * 8 + i * 4, 4);
    }
    for (uint16_t i = 0; i < n && rc == 0; i++)
        rc = walk (x, w, get_be32 (copy + i * 12 + 8), level - 1,
                   copy + i * 12, g);
    free (copy);
    return rc;
}

static int
walk_tree (struct xfs *x, struct walk *w, uint32_t root, uint32_t levels,
           struct gaps *g)
{
    w->hdr = x->crc ? BT_HDR_V5 : BT_HDR_V4;
    w->maxrecs_leaf = (x->blocksize - w->hdr) / 8;
    w->maxrecs_node = (x->blocksize - w->hdr) / 12;
    for (unsigned i = 0; i < MAX_LEVELS; i++)
        w->last[i] = w->right[i] = NULLAGBLOCK;
    int rc = walk (x, w, root, levels - 1, NULL, g);
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < levels; i++)
        if (w->right[i] != NULLAGBLOCK) {
            fs_all_used (x->r, "XFS AG %u %s: level %u does not end", w->agno,
                      w->bno ? "bnobt" : "cntbt", i);
            return 1;
        }
    return 0;
}

static int
check_ag (struct xfs *x, uint32_t agno)
{
    unsigned char *agf = x->blk;
    uint32_t aglen, bnoroot, cntroot, bnolvl, cntlvl, freeblks, longest;
    uint32_t flcount, flfirst, fllast, aglfl;
    uint64_t expect;
    int rc;

    if (x->v->pread (x->v, agf, x->sectsize,
                     ag_byte (x, agno, 0) + x->sectsize) < 0)
        return -1;
    if (get_be32 (agf) != XFS_AGF_MAGIC || get_be32 (agf + 4) != 1 ||
        get_be32 (agf + 8) != agno)
        return fs_all_used (x->r, "XFS AGF %u: bad magic, version or number",
                         agno);
    if (x->crc && (!xfs_crc_ok (agf, x->sectsize, AGF_CRC_OFF) ||
                   memcmp (agf + 64, x->uuid, 16) != 0))
        return fs_all_used (x->r, "XFS AGF %u: CRC or UUID mismatch", agno);
    aglen = get_be32 (agf + 12);
    expect = agno + 1 < x->agcount ? x->agblocks :
        x->dblocks - (uint64_t) agno * x->agblocks;
    if (aglen != expect)
        return fs_all_used (x->r, "XFS AGF %u: length %u, expected %llu", agno,
                         aglen, (unsigned long long) expect);
    bnoroot = get_be32 (agf + 16);
    cntroot = get_be32 (agf + 20);
    bnolvl = get_be32 (agf + 28);
    cntlvl = get_be32 (agf + 32);
    flfirst = get_be32 (agf + 40);
    fllast = get_be32 (agf + 44);
    flcount = get_be32 (agf + 48);
    freeblks = get_be32 (agf + 52);
    longest = get_be32 (agf + 56);
    aglfl = (x->sectsize - (x->crc ? 36 : 0)) / 4;
    if (bnolvl == 0 || bnolvl > MAX_LEVELS || cntlvl == 0 ||
        cntlvl > MAX_LEVELS)
        return fs_all_used (x->r, "XFS AGF %u: tree levels %u/%u invalid", agno,
                         bnolvl, cntlvl);
    if (flcount > aglfl || flfirst >= aglfl || fllast >= aglfl ||
        freeblks > aglen || longest > freeblks)
        return fs_all_used (x->r, "XFS AGF %u: counters invalid", agno);

    struct walk wb = { .agno = agno, .aglen = aglen, .bno = true,
                       .magic = x->crc ? XFS_AB3B_MAGIC : XFS_ABTB_MAGIC };
    struct walk wc = { .agno = agno, .aglen = aglen, .bno = false,
                       .magic = x->crc ? XFS_AB3C_MAGIC : XFS_ABTC_MAGIC };
    struct gaps g = { .x = x, .agno = agno, .next = 0 };
    x->visits = 0;
    x->max_visits = aglen;
    rc = walk_tree (x, &wb, bnoroot, bnolvl, &g);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    x->visits = 0;
    rc = walk_tree (x, &wc, cntroot, cntlvl, NULL);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (wb.blocks != freeblks)
        return fs_all_used (x->r, "XFS AG %u: free extents total %llu blocks, "
                         "AGF says %u", agno,
                         (unsigned long long) wb.blocks, freeblks);
    if (wc.nrecs != wb.nrecs || wc.blocks != wb.blocks ||
        wc.hash != wb.hash)
        return fs_all_used (x->r, "XFS AG %u: by-size and by-block free-space "
                         "trees disagree", agno);
    if (wc.longest != longest)
        return fs_all_used (x->r, "XFS AG %u: longest free extent %llu, AGF "
                         "says %u", agno, (unsigned long long) wc.longest,
                         longest);
    /* The rest of the AG after the last free extent. */
    return rangeset_add (&x->r->used, ag_byte (x, agno, g.next),
                         (aglen - g.next) * (uint64_t) x->blocksize);
}

static int
xfs_used (const struct volume *v, struct fs_result *r)
{
    struct xfs x = { .v = v, .r = r };
    unsigned char *sb;
    int rc;

    sb = malloc (32768);
    if (sb == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    memset (sb, 0, 32768);
    if (v->pread (v, sb, v->size < 32768 ? v->size : 32768, 0) < 0) {
        free (sb);
        return -1;
    }
    fs_printable (r->label, sizeof r->label, sb + 108, 12);
    snprintf (r->uuid, sizeof r->uuid,
              "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
              "%02x%02x%02x%02x%02x%02x",
              sb[32], sb[33], sb[34], sb[35], sb[36], sb[37], sb[38], sb[39],
              sb[40], sb[41], sb[42], sb[43], sb[44], sb[45], sb[46], sb[47]);
    rc = check_sb (&x, sb);
    if (rc == 0 && !r->all_used)
        rc = check_log (&x, sb);
    free (sb);
    if (rc < 0 || r->all_used)
        goto out;
    x.blk = malloc (x.blocksize);
    if (x.blk == NULL) {
        vmc_error ("out of memory");
        rc = -1;
        goto out;
    }
    for (uint32_t agno = 0; agno < x.agcount && !r->all_used; agno++) {
        rc = check_ag (&x, agno);
        if (rc < 0)
            break;
    }
    free (x.blk);
  out:
    if (rc < 0 || r->all_used)
        rangeset_free (&r->used);
    return rc < 0 ? -1 : 0;
}

const struct fs_type fs_xfs = {
    .name = "xfs",
    .probe = xfs_probe,
    .used = xfs_used,
};
