/* SPDX-License-Identifier: MIT */
/*
 * XFS: reading files without mounting (the fs_files table of files.h).
 * Written from "XFS Algorithms & Data Structures" (the on-disk format
 * documentation): the superblock (shared with fs-xfs.c through xfs.h),
 * on-disk inodes (v1/v2 on v4 filesystems, v3 on v5), data forks in local,
 * extents and btree format (the BMAP/BMA3 long-form B+tree), directories in
 * short-form, block, leaf and node form (their data blocks; the hash index
 * is not used), remote symlink blocks (v5: an XSLM header per block).
 *
 * Supported: v4 with version 2 directories, v5 with the incompat features
 * ftype, sparse inodes, meta_uuid, bigtime, nrext64, exchrange and parent
 * pointers (none of them changes what is read here beyond the inode layout
 * nrext64 and bigtime describe).  Anything else incompatible, or the
 * needsrepair flag, and open refuses.  The log is not replayed: a
 * filesystem that was not cleanly unmounted reads as its metadata on disk
 * stands.  Realtime files cannot be read (their data is on another
 * device).  Directory lookups compare names byte for byte, also on a v4
 * filesystem made for case-insensitive lookups.
 *
 * Checked: every inode number lands inside an AG and the filesystem; the
 * inode's magic, version, (v5) its own number and UUID, its format against
 * its type, fork offset and size inside the inode; extent records sorted,
 * non-overlapping, non-empty, each inside one AG and the filesystem, file
 * offsets below 2^63 bytes; the bmap btree: magic, level (one less at
 * each step down, so no cycles), record counts, (v5) owner, address and
 * UUID, the extent total against the inode's count, at most MAX_EXTENTS
 * extents; directory blocks: magic, (v5) owner, address and UUID, the
 * block tail inside the block, every entry and unused region inside the
 * entry area, each entry's tag, names without '/' or NUL; the number of
 * directory blocks read per call at most the filesystem's block count;
 * short-form directories inside the fork; symlinks at most 1024 bytes, v5
 * remote blocks' magic, offset, length, owner and UUID.  CRCs are not
 * verified (except the superblock's, by xfs_sb_decode).
 *
 * The on-disk inode (big-endian; the v3 core is 176 bytes, v1/v2 100):
 *
 *     0  di_magic "IN"          2  di_mode (type and permissions)
 *     4  di_version 1, 2, 3     5  di_format (data fork format)
 *     8  di_uid                12  di_gid
 *    24  di_big_nextents (8, nrext64 inodes; else padding)
 *    40  di_mtime: seconds (be32, signed) and nanoseconds (be32), or with
 *        the bigtime flag nanoseconds since 1901-12-13 20:45:52 (be64)
 *    56  di_size               64  di_nblocks
 *    76  di_nextents (be32; nrext64 inodes: the attr fork's count)
 *    82  di_forkoff: attr fork offset in 8-byte units from the literal
 *        area, 0 for no attr fork
 *    90  di_flags (0x1: realtime)
 *   120  di_flags2 (v3; 0x8 bigtime, 0x10 nrext64)
 *   152  di_ino (v3)          160  di_uuid (v3)
 *   100 (v1/v2) or 176 (v3): the literal area, the data fork first.
 *
 * An extent record (16 bytes, big-endian, as one 128-bit number): bit 127
 * the unwritten flag, 126..73 the file offset in blocks, 72..21 the start
 * (an fsblock: AG number << agblklog | block in the AG), 20..0 the length.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "files.h"
#include "fs.h"
#include "xfs.h"

#define DINODE_MAGIC 0x494eu            /* "IN" */
#define BMAP_MAGIC 0x424d4150u          /* "BMAP", v4 bmap btree block */
#define BMA3_MAGIC 0x424d4133u          /* "BMA3", v5 */
#define XD2B_MAGIC 0x58443242u          /* v4 single-block directory */
#define XDB3_MAGIC 0x58444233u          /* v5 */
#define XD2D_MAGIC 0x58443244u          /* v4 directory data block */
#define XDD3_MAGIC 0x58444433u          /* v5 */
#define XSLM_MAGIC 0x58534c4du          /* v5 remote symlink block */

enum { FMT_DEV, FMT_LOCAL, FMT_EXTENTS, FMT_BTREE };

#define DIFLAG_REALTIME 0x1u
#define DIFLAG2_BIGTIME 0x8u
#define DIFLAG2_NREXT64 0x10u

/* What this reader understands. */
#define INCOMPAT_KNOWN (XFS_SB_INCOMPAT_FTYPE | XFS_SB_INCOMPAT_SPINODES | \
                        XFS_SB_INCOMPAT_META_UUID | XFS_SB_INCOMPAT_BIGTIME | \
                        XFS_SB_INCOMPAT_NREXT64 | XFS_SB_INCOMPAT_EXCHRANGE | \
                        XFS_SB_INCOMPAT_PARENT)
#define FEATURES2_KNOWN 0x3feu          /* lazysbcount .. ftype */

#define CORE_V2 100
#define CORE_V3 176
#define BTREE_HDR_V4 24                 /* magic, level, numrecs, siblings */
#define BTREE_HDR_V5 72                 /* + blkno, lsn, uuid, owner, crc */
#define DIR_HDR_V4 16                   /* magic, bestfree[3] */
#define DIR_HDR_V5 64                   /* magic, crc, blkno, lsn, uuid,
                                         * owner, bestfree[3], pad */
#define SYMLINK_HDR_V5 56
#define SYMLINK_MAXLEN 1024
#define SYMLINK_MAXBLOCKS 3             /* 1024 bytes and headers, 512-byte
                                         * blocks */
#define DIR_LEAF_OFFSET (32ull << 30)   /* data blocks live below this */
#define MAX_LEVELS 10                   /* bmap btrees need at most 9 */
#define MAX_EXTENTS (1u << 21)          /* 64 MiB of extent records */
#define MAX_FILE_BLOCK_BYTES (1ull << 63)

/* One extent of a data fork, decoded and checked. */
struct xext {
    uint64_t off;                       /* file block */
    uint64_t len;                       /* blocks */
    uint64_t byte;                      /* volume byte offset of its start */
    bool unwritten;
};

/* One inode, decoded, and (once map_fork ran) its data fork's extents. */
struct xinode {
    uint64_t ino;
    unsigned char raw[2048];
    uint16_t mode;
    uint8_t version, format;
    uint32_t uid, gid;
    int64_t mtime;
    uint64_t size, nextents;
    uint16_t flags;
    const unsigned char *fork;          /* the data fork, in raw */
    size_t forksize;
    struct xext *ext;
    size_t next, cap;
    bool mapped;
};

struct xfx {
    const struct volume *v;
    struct xfs_sb sb;
    uint32_t dirblksize;                /* bytes in a directory block */
    uint32_t dirblkfsbs;                /* filesystem blocks in one */
    /* The inode pread read last, kept with its extent list, because a
     * file is read in many calls. */
    struct xinode cache;
    bool cached;
};

static void
inode_reset (struct xinode *ip)
{
    free (ip->ext);
    ip->ext = NULL;
    ip->next = ip->cap = 0;
    ip->mapped = false;
}

static int
read_vol (struct xfx *x, void *buf, size_t count, uint64_t off)
{
    return x->v->pread (x->v, buf, count, off);
}

/* The volume byte offset of LEN blocks at fsblock FSB, or -1 with a
 * message when they do not lie inside one AG and the filesystem. */
static int
fsb_to_byte (const struct xfx *x, uint64_t ino, uint64_t fsb, uint64_t len,
             const char *what, uint64_t *byte)
{
    const struct xfs_sb *s = &x->sb;
    uint64_t agno = fsb >> s->agblklog;
    uint64_t agbno = fsb & ((1ull << s->agblklog) - 1);
    uint64_t lin;

    if (agno >= s->agcount || agbno >= s->agblocks ||
        len > s->agblocks - agbno) {
        vmc_error ("xfs: inode %llu: %s at block %llu+%llu is outside its AG",
                   (unsigned long long) ino, what, (unsigned long long) fsb,
                   (unsigned long long) len);
        return -1;
    }
    lin = agno * s->agblocks + agbno;
    if (lin >= s->dblocks || len > s->dblocks - lin) {
        vmc_error ("xfs: inode %llu: %s at block %llu+%llu is past the end of "
                   "the filesystem", (unsigned long long) ino, what,
                   (unsigned long long) fsb, (unsigned long long) len);
        return -1;
    }
    *byte = lin << s->blocklog;
    return 0;
}

/* ---- inodes ---- */

static int
load_inode (struct xfx *x, uint64_t ino, struct xinode *ip)
{
    const struct xfs_sb *s = &x->sb;
    unsigned shift = s->agblklog + s->inopblog;
    uint64_t agno = ino >> shift;
    uint64_t agbno = (ino >> s->inopblog) & ((1ull << s->agblklog) - 1);
    uint64_t idx = ino & ((1ull << s->inopblog) - 1);
    uint64_t lin = agno * s->agblocks + agbno;
    const unsigned char *r = ip->raw;
    size_t core, literal;

    inode_reset (ip);
    ip->ino = ino;
    if (ino == 0 || (shift < 64 && (ino >> shift) >= s->agcount) ||
        agbno >= s->agblocks || lin >= s->dblocks) {
        vmc_error ("xfs: inode %llu is outside the filesystem",
                   (unsigned long long) ino);
        return -1;
    }
    if (read_vol (x, ip->raw, s->inodesize,
                  (lin << s->blocklog) + idx * s->inodesize) < 0)
        return -1;
    if (get_be16 (r) != DINODE_MAGIC) {
        vmc_error ("xfs: inode %llu: bad magic number",
                   (unsigned long long) ino);
        return -1;
    }
    ip->version = r[4];
    if (s->crc ? ip->version != 3 : ip->version != 1 && ip->version != 2) {
        vmc_error ("xfs: inode %llu: version %u on a v%u filesystem",
                   (unsigned long long) ino, ip->version, s->crc ? 5 : 4);
        return -1;
    }
    if (s->crc && (get_be64 (r + 152) != ino ||
                   memcmp (r + 160, s->meta_uuid, 16) != 0)) {
        vmc_error ("xfs: inode %llu: the inode says it is inode %llu or of "
                   "another filesystem", (unsigned long long) ino,
                   (unsigned long long) get_be64 (r + 152));
        return -1;
    }
    ip->mode = get_be16 (r + 2);
    ip->format = r[5];
    ip->uid = get_be32 (r + 8);
    ip->gid = get_be32 (r + 12);
    ip->size = get_be64 (r + 56);
    ip->flags = get_be16 (r + 90);
    uint64_t flags2 = ip->version == 3 ? get_be64 (r + 120) : 0;
    if (flags2 & DIFLAG2_BIGTIME) {
        /* Nanoseconds since the 32-bit epoch's lowest second. */
        ip->mtime = (int64_t) (get_be64 (r + 40) / 1000000000u) -
            (INT64_C (1) << 31);
    } else {
        ip->mtime = (int32_t) get_be32 (r + 40);
    }
    if ((flags2 & DIFLAG2_NREXT64) &&
        (s->incompat & XFS_SB_INCOMPAT_NREXT64))
        ip->nextents = get_be64 (r + 24);
    else
        ip->nextents = get_be32 (r + 76);
    if (ip->size >= MAX_FILE_BLOCK_BYTES) {
        vmc_error ("xfs: inode %llu: size %llu invalid",
                   (unsigned long long) ino, (unsigned long long) ip->size);
        return -1;
    }
    core = ip->version == 3 ? CORE_V3 : CORE_V2;
    literal = s->inodesize - core;
    ip->fork = r + core;
    ip->forksize = r[82] != 0 ? (size_t) r[82] * 8 : literal;
    if (r[82] != 0 && ip->forksize >= literal) {
        vmc_error ("xfs: inode %llu: attribute fork offset %u outside the "
                   "inode", (unsigned long long) ino, r[82]);
        return -1;
    }

    /* The format the type allows. */
    bool ok;
    switch (ip->mode & S_IFMT) {
    case S_IFREG:
        ok = ip->format == FMT_EXTENTS || ip->format == FMT_BTREE;
        break;
    case S_IFDIR:
    case S_IFLNK:
        ok = ip->format == FMT_LOCAL || ip->format == FMT_EXTENTS ||
            ip->format == FMT_BTREE;
        break;
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
        ok = ip->format == FMT_DEV;
        break;
    default:
        vmc_error ("xfs: inode %llu: mode 0%o is no file type (a free "
                   "inode?)", (unsigned long long) ino, ip->mode);
        return -1;
    }
    if (!ok) {
        vmc_error ("xfs: inode %llu: data fork format %u invalid for mode "
                   "0%o", (unsigned long long) ino, ip->format, ip->mode);
        return -1;
    }
    if (ip->format == FMT_LOCAL && ip->size > ip->forksize) {
        vmc_error ("xfs: inode %llu: %llu bytes of inline data in a fork of "
                   "%zu", (unsigned long long) ino,
                   (unsigned long long) ip->size, ip->forksize);
        return -1;
    }
    return 0;
}

/* ---- data fork mapping ---- */

/* Decode the extent record REC, check it and append it to IP's list. */
static int
add_extent (struct xfx *x, struct xinode *ip, const unsigned char *rec)
{
    uint64_t l0 = get_be64 (rec), l1 = get_be64 (rec + 8);
    struct xext e;
    uint64_t fsb, end;

    e.unwritten = (l0 >> 63) != 0;
    e.off = (l0 & 0x7fffffffffffffffull) >> 9;
    fsb = ((l0 & 0x1ff) << 43) | (l1 >> 21);
    e.len = l1 & 0x1fffff;
    if (e.len == 0) {
        vmc_error ("xfs: inode %llu: extent %zu is empty",
                   (unsigned long long) ip->ino, ip->next);
        return -1;
    }
    if (ckd_add (&end, e.off, e.len) ||
        end > (MAX_FILE_BLOCK_BYTES >> x->sb.blocklog)) {
        vmc_error ("xfs: inode %llu: extent %zu ends past the largest file "
                   "offset", (unsigned long long) ip->ino, ip->next);
        return -1;
    }
    if (ip->next > 0) {
        const struct xext *p = &ip->ext[ip->next - 1];
        if (e.off < p->off + p->len) {
            vmc_error ("xfs: inode %llu: extent %zu overlaps or precedes the "
                       "one before", (unsigned long long) ip->ino, ip->next);
            return -1;
        }
    }
    if (fsb_to_byte (x, ip->ino, fsb, e.len, "an extent", &e.byte) < 0)
        return -1;
    if (ip->next >= MAX_EXTENTS || ip->next >= ip->nextents) {
        vmc_error ("xfs: inode %llu: more extents than the inode's %llu (or "
                   "than %u)", (unsigned long long) ip->ino,
                   (unsigned long long) ip->nextents, MAX_EXTENTS);
        return -1;
    }
    if (ip->next == ip->cap) {
        size_t cap = ip->cap ? ip->cap * 2 : 16;
        struct xext *n;

        if (cap > ip->nextents)
            cap = ip->nextents;
        n = realloc (ip->ext, cap * sizeof *n);
        if (n == NULL) {
            vmc_error ("out of memory");
            return -1;
        }
        ip->ext = n;
        ip->cap = cap;
    }
    ip->ext[ip->next++] = e;
    return 0;
}

/* Walk the bmap btree block at fsblock FSB, at LEVEL (0: a leaf). */
static int
walk_bmbt (struct xfx *x, struct xinode *ip, uint64_t fsb, unsigned level)
{
    const struct xfs_sb *s = &x->sb;
    size_t hdr = s->crc ? BTREE_HDR_V5 : BTREE_HDR_V4;
    size_t maxrecs = (s->blocksize - hdr) / 16;
    unsigned char *b;
    uint64_t byte;
    uint16_t n;
    int rc = -1;

    if (fsb_to_byte (x, ip->ino, fsb, 1, "a bmap btree block", &byte) < 0)
        return -1;
    b = malloc (s->blocksize);
    if (b == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    if (read_vol (x, b, s->blocksize, byte) < 0)
        goto out;
    n = get_be16 (b + 6);
    if (get_be32 (b) != (s->crc ? BMA3_MAGIC : BMAP_MAGIC) ||
        get_be16 (b + 4) != level || n == 0 || n > maxrecs) {
        vmc_error ("xfs: inode %llu: bmap btree block %llu: bad magic, level "
                   "or record count", (unsigned long long) ip->ino,
                   (unsigned long long) fsb);
        goto out;
    }
    if (s->crc && (get_be64 (b + 24) != byte / 512 ||
                   memcmp (b + 40, s->meta_uuid, 16) != 0 ||
                   get_be64 (b + 56) != ip->ino)) {
        vmc_error ("xfs: inode %llu: bmap btree block %llu: wrong address, "
                   "UUID or owner", (unsigned long long) ip->ino,
                   (unsigned long long) fsb);
        goto out;
    }
    for (uint16_t i = 0; i < n; i++) {
        if (level == 0)
            rc = add_extent (x, ip, b + hdr + (size_t) i * 16);
        else
            rc = walk_bmbt (x, ip, get_be64 (b + hdr + maxrecs * 8 +
                                             (size_t) i * 8), level - 1);
        if (rc < 0)
            goto out;
    }
    rc = 0;
  out:
    free (b);
    return rc;
}

/* Build IP's extent list from its data fork. */
static int
map_fork (struct xfx *x, struct xinode *ip)
{
    if (ip->mapped)
        return 0;
    if (ip->format == FMT_EXTENTS) {
        if (ip->nextents > ip->forksize / 16) {
            vmc_error ("xfs: inode %llu: %llu extents do not fit in the "
                       "inode", (unsigned long long) ip->ino,
                       (unsigned long long) ip->nextents);
            return -1;
        }
        for (uint64_t i = 0; i < ip->nextents; i++)
            if (add_extent (x, ip, ip->fork + i * 16) < 0)
                return -1;
    } else if (ip->format == FMT_BTREE) {
        /* The root: level, numrecs, then keys and pointers, each array as
         * long as the fork allows. */
        size_t maxrecs = (ip->forksize - 4) / 16;
        uint16_t level = get_be16 (ip->fork), n = get_be16 (ip->fork + 2);

        if (level == 0 || level >= MAX_LEVELS || n == 0 || n > maxrecs) {
            vmc_error ("xfs: inode %llu: bmap btree root level %u, %u "
                       "records invalid", (unsigned long long) ip->ino, level,
                       n);
            return -1;
        }
        for (uint16_t i = 0; i < n; i++)
            if (walk_bmbt (x, ip, get_be64 (ip->fork + 4 + maxrecs * 8 +
                                            (size_t) i * 8), level - 1) < 0)
                return -1;
        if (ip->next != ip->nextents) {
            vmc_error ("xfs: inode %llu: the bmap btree holds %zu extents, the "
                       "inode says %llu", (unsigned long long) ip->ino,
                       ip->next, (unsigned long long) ip->nextents);
            return -1;
        }
    } else {
        vmc_error ("xfs: inode %llu: data fork format %u has no extents",
                   (unsigned long long) ip->ino, ip->format);
        return -1;
    }
    ip->mapped = true;
    return 0;
}

/* The index of the first extent that ends after file block FSB. */
static size_t
find_extent (const struct xinode *ip, uint64_t fsb)
{
    size_t lo = 0, hi = ip->next;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (ip->ext[mid].off + ip->ext[mid].len <= fsb)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* COUNT bytes at byte POS of IP's mapped data fork into BUF: holes and
 * unwritten extents as zeros.  POS + COUNT must be below 2^63. */
static int
read_mapped (struct xfx *x, const struct xinode *ip, unsigned char *buf,
             size_t count, uint64_t pos)
{
    unsigned bl = x->sb.blocklog;
    size_t i = find_extent (ip, pos >> bl);

    while (count > 0) {
        const struct xext *e = i < ip->next ? &ip->ext[i] : NULL;
        uint64_t start = e != NULL ? e->off << bl : UINT64_MAX;
        uint64_t end = e != NULL ? (e->off + e->len) << bl : UINT64_MAX;
        size_t n;

        if (pos < start) {
            /* A hole up to the next extent. */
            n = start - pos < count ? (size_t) (start - pos) : count;
            memset (buf, 0, n);
        } else {
            n = end - pos < count ? (size_t) (end - pos) : count;
            if (e->unwritten)
                memset (buf, 0, n);
            else if (read_vol (x, buf, n, e->byte + (pos - start)) < 0)
                return -1;
            i++;
        }
        buf += n;
        count -= n;
        pos += n;
    }
    return 0;
}

/* ---- directories ---- */

typedef int (*entry_fn) (void *opaque, const char *name, size_t namelen,
                         uint64_t ino, int ftype);

static int
check_name (const struct xinode *dp, const unsigned char *name, size_t len)
{
    if (len == 0 || memchr (name, '/', len) != NULL ||
        memchr (name, 0, len) != NULL) {
        vmc_error ("xfs: directory inode %llu: an entry's name is empty or "
                   "holds '/' or NUL", (unsigned long long) dp->ino);
        return -1;
    }
    return 0;
}

/* A short-form directory: the entries in the inode. */
static int
walk_shortform (struct xfx *x, const struct xinode *dp, entry_fn fn,
                void *opaque)
{
    const unsigned char *p = dp->fork;
    size_t size = dp->size, off, inosize;
    unsigned count;

    if (size < 6) {
        vmc_error ("xfs: directory inode %llu: short-form header truncated",
                   (unsigned long long) dp->ino);
        return -1;
    }
    count = p[0];
    inosize = p[1] != 0 ? 8 : 4;
    off = 2 + inosize;
    for (unsigned i = 0; i < count; i++) {
        size_t namelen, need;
        uint64_t ino;
        int ftype = -1;

        if (off >= size) {
            vmc_error ("xfs: directory inode %llu: short-form entry %u past "
                       "the directory's size", (unsigned long long) dp->ino, i);
            return -1;
        }
        namelen = p[off];
        need = 3 + namelen + (x->sb.ftype ? 1 : 0) + inosize;
        if (need > size - off) {
            vmc_error ("xfs: directory inode %llu: short-form entry %u past "
                       "the directory's size", (unsigned long long) dp->ino, i);
            return -1;
        }
        if (check_name (dp, p + off + 3, namelen) < 0)
            return -1;
        if (x->sb.ftype)
            ftype = p[off + 3 + namelen];
        const unsigned char *ip = p + off + 3 + namelen +
            (x->sb.ftype ? 1 : 0);
        ino = inosize == 8 ? get_be64 (ip) : get_be32 (ip);
        int rc = fn (opaque, (const char *) p + off + 3, namelen, ino, ftype);
        if (rc != 0)
            return rc;
        off += need;
    }
    return 0;
}

/* The entries of one directory data block (a single-block directory's
 * block when BLOCKFORM) in B. */
static int
walk_dir_block (struct xfx *x, const struct xinode *dp, const unsigned char *b,
                uint64_t dblk, bool blockform, entry_fn fn, void *opaque)
{
    size_t hdr = x->sb.crc ? DIR_HDR_V5 : DIR_HDR_V4;
    size_t end = x->dirblksize, p;

    if (blockform) {
        /* The tail (leaf count, stale count) and the leaf entries before
         * it end the data. */
        uint32_t nleaf = get_be32 (b + x->dirblksize - 8);

        if (nleaf > (x->dirblksize - 8 - hdr) / 8) {
            vmc_error ("xfs: directory inode %llu: block tail count %u too "
                       "large", (unsigned long long) dp->ino, nleaf);
            return -1;
        }
        end = x->dirblksize - 8 - (size_t) nleaf * 8;
    }
    for (p = hdr; p < end;) {
        if (get_be16 (b + p) == 0xffff) {
            /* An unused region: freetag, length, ..., tag. */
            size_t len = end - p >= 4 ? get_be16 (b + p + 2) : 0;

            if (len < 8 || len % 8 != 0 || len > end - p) {
                vmc_error ("xfs: directory inode %llu: block %llu: unused "
                           "region at %zu has length %zu",
                           (unsigned long long) dp->ino,
                           (unsigned long long) dblk, p, len);
                return -1;
            }
            p += len;
            continue;
        }
        /* An entry: inumber, namelen, name, [ftype], padding, tag. */
        size_t namelen = end - p > 9 ? b[p + 8] : 0;
        size_t len = (8 + 1 + namelen + (x->sb.ftype ? 1 : 0) + 2 + 7) & ~7u;

        if (namelen == 0 || len > end - p ||
            get_be16 (b + p + len - 2) != p) {
            vmc_error ("xfs: directory inode %llu: block %llu: entry at %zu "
                       "invalid", (unsigned long long) dp->ino,
                       (unsigned long long) dblk, p);
            return -1;
        }
        const unsigned char *name = b + p + 9;
        if (check_name (dp, name, namelen) < 0)
            return -1;
        if (!(namelen == 1 && name[0] == '.') &&
            !(namelen == 2 && name[0] == '.' && name[1] == '.')) {
            int rc = fn (opaque, (const char *) name, namelen,
                         get_be64 (b + p),
                         x->sb.ftype ? name[namelen] : -1);
            if (rc != 0)
                return rc;
        }
        p += len;
    }
    return 0;
}

/* The entries of directory DP in on-disk order: FN's non-zero value stops
 * the walk and is returned; 0 when done, -1 on an error. */
static int
walk_dir (struct xfx *x, struct xinode *dp, entry_fn fn, void *opaque)
{
    const struct xfs_sb *s = &x->sb;
    uint64_t limit = DIR_LEAF_OFFSET >> s->blocklog, next = 0, visits = 0;
    unsigned char *b;
    int rc = 0;

    if ((dp->mode & S_IFMT) != S_IFDIR) {
        vmc_error ("xfs: inode %llu is not a directory",
                   (unsigned long long) dp->ino);
        return -1;
    }
    if (dp->format == FMT_LOCAL)
        return walk_shortform (x, dp, fn, opaque);
    if (map_fork (x, dp) < 0)
        return -1;
    b = malloc (x->dirblksize);
    if (b == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    /* Each directory block that starts in an extent below the leaf
     * offset, once: a block can span extents. */
    for (size_t i = 0; i < dp->next && rc == 0; i++) {
        const struct xext *e = &dp->ext[i];
        uint64_t d = e->off - e->off % x->dirblkfsbs;

        if (e->off >= limit)
            break;
        if (d < next)
            d = next;
        for (; d < e->off + e->len && d < limit && rc == 0;
             d += x->dirblkfsbs) {
            uint32_t magic;
            bool blockform;
            size_t j = find_extent (dp, d);
            uint64_t byte;

            visits += x->dirblkfsbs;
            if (visits > s->dblocks) {
                vmc_error ("xfs: directory inode %llu: more directory blocks "
                           "than the filesystem has",
                           (unsigned long long) dp->ino);
                rc = -1;
                break;
            }
            if (j >= dp->next || dp->ext[j].off > d) {
                vmc_error ("xfs: directory inode %llu: directory block %llu "
                           "starts in a hole", (unsigned long long) dp->ino,
                           (unsigned long long) d);
                rc = -1;
                break;
            }
            byte = dp->ext[j].byte + ((d - dp->ext[j].off) << s->blocklog);
            if (read_mapped (x, dp, b, x->dirblksize, d << s->blocklog) < 0) {
                rc = -1;
                break;
            }
            magic = get_be32 (b);
            blockform = magic == (s->crc ? XDB3_MAGIC : XD2B_MAGIC);
            if ((!blockform || d != 0) &&
                magic != (s->crc ? XDD3_MAGIC : XD2D_MAGIC)) {
                vmc_error ("xfs: directory inode %llu: block %llu: bad magic "
                           "number", (unsigned long long) dp->ino,
                           (unsigned long long) d);
                rc = -1;
                break;
            }
            if (s->crc && (get_be64 (b + 8) != byte / 512 ||
                           memcmp (b + 24, s->meta_uuid, 16) != 0 ||
                           get_be64 (b + 40) != dp->ino)) {
                vmc_error ("xfs: directory inode %llu: block %llu: wrong "
                           "address, UUID or owner",
                           (unsigned long long) dp->ino,
                           (unsigned long long) d);
                rc = -1;
                break;
            }
            rc = walk_dir_block (x, dp, b, d, blockform, fn, opaque);
            next = d + x->dirblkfsbs;
        }
    }
    free (b);
    return rc;
}

/* ---- the fs_files callbacks ---- */

static void
xfs_files_close (void *priv)
{
    struct xfx *x = priv;

    if (x == NULL)
        return;
    inode_reset (&x->cache);
    free (x);
}

static int
xfs_files_open (const struct volume *v, void **priv)
{
    struct xfx *x;
    struct xfs_sb *s;
    unsigned char *sb;
    size_t n = v->size < 32768 ? (size_t) v->size : 32768;
    char why[200];
    struct xinode *root = NULL;

    if (n < 512) {
        vmc_error ("xfs: %s is too small for a filesystem", v->name);
        return -1;
    }
    x = calloc (1, sizeof *x);
    sb = malloc (n);
    if (x == NULL || sb == NULL) {
        vmc_error ("out of memory");
        goto err;
    }
    x->v = v;
    s = &x->sb;
    if (v->pread (v, sb, n, 0) < 0)
        goto err;
    if (xfs_sb_decode (sb, n, v->size, s, why, sizeof why) < 0) {
        vmc_error ("xfs: %s: %s", v->name, why);
        goto err;
    }
    if (s->inprogress) {
        vmc_error ("xfs: %s: mkfs did not finish", v->name);
        goto err;
    }
    if (s->crc) {
        if (s->incompat & XFS_SB_INCOMPAT_NEEDSREPAIR) {
            vmc_error ("xfs: %s: the filesystem needs repair", v->name);
            goto err;
        }
        if (s->incompat & ~INCOMPAT_KNOWN) {
            vmc_error ("xfs: %s: incompatible features 0x%x unknown", v->name,
                       s->incompat & ~INCOMPAT_KNOWN);
            goto err;
        }
    } else {
        if (!(s->versionnum & XFS_SB_VERSION_DIRV2)) {
            vmc_error ("xfs: %s: version 1 directories are not supported",
                       v->name);
            goto err;
        }
        if (s->features2 & ~FEATURES2_KNOWN) {
            vmc_error ("xfs: %s: features2 0x%x unknown", v->name,
                       s->features2 & ~FEATURES2_KNOWN);
            goto err;
        }
    }
    if (s->inodesize < 256 || s->inodesize > 2048 ||
        (s->inodesize & (s->inodesize - 1)) != 0 ||
        s->inodesize > s->blocksize ||
        s->inodelog > 11 || (1u << s->inodelog) != s->inodesize ||
        s->inopblock != s->blocksize / s->inodesize ||
        s->inopblog > 8 || (1u << s->inopblog) != s->inopblock) {
        vmc_error ("xfs: %s: inode size %u (%u per block) invalid", v->name,
                   s->inodesize, s->inopblock);
        goto err;
    }
    if (s->dirblklog > 16 - s->blocklog) {
        vmc_error ("xfs: %s: directory block size 2^%u blocks invalid",
                   v->name, s->dirblklog);
        goto err;
    }
    x->dirblksize = s->blocksize << s->dirblklog;
    x->dirblkfsbs = 1u << s->dirblklog;

    /* The root must be a directory: a cheap check that the inode geometry
     * means what it says. */
    root = calloc (1, sizeof *root);
    if (root == NULL) {
        vmc_error ("out of memory");
        goto err;
    }
    if (load_inode (x, s->rootino, root) < 0)
        goto err;
    if ((root->mode & S_IFMT) != S_IFDIR) {
        vmc_error ("xfs: %s: the root inode %llu is not a directory",
                   v->name, (unsigned long long) s->rootino);
        goto err;
    }
    inode_reset (root);
    free (root);
    free (sb);
    *priv = x;
    return 0;

  err:
    if (root != NULL)
        inode_reset (root);
    free (root);
    free (sb);
    free (x);
    return -1;
}

static uint64_t
xfs_files_root (void *priv)
{
    const struct xfx *x = priv;

    return x->sb.rootino;
}

struct lookup_ctx {
    const char *name;
    size_t len;
    uint64_t ino;
};

static int
lookup_entry (void *opaque, const char *name, size_t namelen, uint64_t ino,
              int ftype)
{
    struct lookup_ctx *c = opaque;

    (void) ftype;
    if (namelen != c->len || memcmp (name, c->name, namelen) != 0)
        return 0;
    c->ino = ino;
    return 1;
}

static int
xfs_files_lookup (void *priv, uint64_t dir, const char *name, uint64_t *ino)
{
    struct xfx *x = priv;
    struct lookup_ctx c = { .name = name, .len = strlen (name) };
    struct xinode *dp;
    int rc;

    /* Not on the stack of a caller that may recurse: inodes are 2 KiB. */
    dp = calloc (1, sizeof *dp);
    if (dp == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    rc = load_inode (x, dir, dp);
    if (rc == 0)
        rc = walk_dir (x, dp, lookup_entry, &c);
    inode_reset (dp);
    free (dp);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 1;
    *ino = c.ino;
    return 0;
}

static int
xfs_files_stat (void *priv, uint64_t ino, struct file_stat *st)
{
    struct xfx *x = priv;
    struct xinode *ip;

    ip = calloc (1, sizeof *ip);
    if (ip == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    if (load_inode (x, ino, ip) < 0) {
        free (ip);
        return -1;
    }
    memset (st, 0, sizeof *st);
    switch (ip->mode & S_IFMT) {
    case S_IFREG: st->kind = FK_REG; break;
    case S_IFDIR: st->kind = FK_DIR; break;
    case S_IFLNK: st->kind = FK_LNK; break;
    default: st->kind = FK_OTHER; break;
    }
    st->size = ip->size;
    st->mode = ip->mode;
    st->uid = ip->uid;
    st->gid = ip->gid;
    st->mtime = ip->mtime;
    inode_reset (ip);
    free (ip);
    return 0;
}

static ssize_t
xfs_files_pread (void *priv, uint64_t ino, void *buf, size_t count,
                 uint64_t offset)
{
    struct xfx *x = priv;
    struct xinode *ip = &x->cache;

    if (!x->cached || ip->ino != ino) {
        x->cached = false;
        if (load_inode (x, ino, ip) < 0)
            return -1;
        if ((ip->mode & S_IFMT) != S_IFREG) {
            vmc_error ("xfs: inode %llu is not a regular file",
                       (unsigned long long) ino);
            return -1;
        }
        if (ip->flags & DIFLAG_REALTIME) {
            vmc_error ("xfs: inode %llu: its data is on the realtime device",
                       (unsigned long long) ino);
            return -1;
        }
        if (map_fork (x, ip) < 0)
            return -1;
        x->cached = true;
    }
    if (offset >= ip->size)
        return 0;
    if (count > ip->size - offset)
        count = ip->size - offset;
    if (count > SSIZE_MAX)
        count = SSIZE_MAX;
    if (read_mapped (x, ip, buf, count, offset) < 0)
        return -1;
    return (ssize_t) count;
}

static ssize_t
xfs_files_readlink (void *priv, uint64_t ino, char *buf, size_t cap)
{
    struct xfx *x = priv;
    const struct xfs_sb *s = &x->sb;
    struct xinode *ip;
    unsigned char *b = NULL;
    ssize_t rc = -1;

    ip = calloc (1, sizeof *ip);
    if (ip == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    if (load_inode (x, ino, ip) < 0)
        goto out;
    if ((ip->mode & S_IFMT) != S_IFLNK) {
        vmc_error ("xfs: inode %llu is not a symlink",
                   (unsigned long long) ino);
        goto out;
    }
    if (ip->size == 0 || ip->size > SYMLINK_MAXLEN) {
        vmc_error ("xfs: inode %llu: symlink length %llu invalid",
                   (unsigned long long) ino, (unsigned long long) ip->size);
        goto out;
    }
    if (ip->size >= cap) {
        vmc_error ("xfs: inode %llu: symlink target of %llu bytes too long",
                   (unsigned long long) ino, (unsigned long long) ip->size);
        goto out;
    }
    size_t len = ip->size;
    if (ip->format == FMT_LOCAL) {
        memcpy (buf, ip->fork, len);
    } else if (map_fork (x, ip) < 0) {
        goto out;
    } else if (!s->crc) {
        if (read_mapped (x, ip, (unsigned char *) buf, len, 0) < 0)
            goto out;
    } else {
        /* v5: each extent (the kernel reads one buffer per mapping) starts
         * with a header, then holds its part of the target. */
        size_t done = 0;
        uint64_t expect = 0;

        for (size_t j = 0; done < len; j++) {
            const struct xext *e = j < ip->next ? &ip->ext[j] : NULL;
            size_t bytes, n;

            if (e == NULL || e->off != expect || e->unwritten ||
                e->len > SYMLINK_MAXBLOCKS) {
                vmc_error ("xfs: inode %llu: remote symlink extent %zu "
                           "missing, unwritten or too long",
                           (unsigned long long) ino, j);
                goto out;
            }
            bytes = (size_t) e->len << s->blocklog;
            free (b);
            b = malloc (bytes);
            if (b == NULL) {
                vmc_error ("out of memory");
                goto out;
            }
            if (read_vol (x, b, bytes, e->byte) < 0)
                goto out;
            n = len - done < bytes - SYMLINK_HDR_V5 ? len - done :
                bytes - SYMLINK_HDR_V5;
            if (get_be32 (b) != XSLM_MAGIC || get_be32 (b + 4) != done ||
                get_be32 (b + 8) != n ||
                memcmp (b + 16, s->meta_uuid, 16) != 0 ||
                get_be64 (b + 32) != ino ||
                get_be64 (b + 40) != e->byte / 512) {
                vmc_error ("xfs: inode %llu: remote symlink extent %zu: bad "
                           "header", (unsigned long long) ino, j);
                goto out;
            }
            memcpy (buf + done, b + SYMLINK_HDR_V5, n);
            done += n;
            expect = e->off + e->len;
        }
    }
    buf[len] = '\0';
    if (memchr (buf, 0, len) != NULL) {
        vmc_error ("xfs: inode %llu: symlink target holds a NUL",
                   (unsigned long long) ino);
        goto out;
    }
    rc = (ssize_t) len;
  out:
    free (b);
    inode_reset (ip);
    free (ip);
    return rc;
}

struct readdir_ctx {
    int (*fn) (void *opaque, const char *name, uint64_t ino,
               enum file_kind kind);
    void *opaque;
};

static int
readdir_entry (void *opaque, const char *name, size_t namelen, uint64_t ino,
               int ftype)
{
    struct readdir_ctx *c = opaque;
    char n[256];
    enum file_kind kind;

    /* namelen is one byte on disk. */
    memcpy (n, name, namelen);
    n[namelen] = '\0';
    switch (ftype) {
    case 1: kind = FK_REG; break;
    case 2: kind = FK_DIR; break;
    case 7: kind = FK_LNK; break;
    default: kind = FK_OTHER; break;
    }
    return c->fn (c->opaque, n, ino, kind);
}

static int
xfs_files_readdir (void *priv, uint64_t ino,
                   int (*fn) (void *opaque, const char *name, uint64_t ino,
                              enum file_kind kind),
                   void *opaque)
{
    struct xfx *x = priv;
    struct readdir_ctx c = { .fn = fn, .opaque = opaque };
    struct xinode *dp;
    int rc;

    dp = calloc (1, sizeof *dp);
    if (dp == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    rc = load_inode (x, ino, dp);
    if (rc == 0)
        rc = walk_dir (x, dp, readdir_entry, &c);
    inode_reset (dp);
    free (dp);
    return rc;
}

const struct fs_files fs_files_xfs = {
    .name = "xfs",
    .open = xfs_files_open,
    .close = xfs_files_close,
    .root = xfs_files_root,
    .lookup = xfs_files_lookup,
    .stat = xfs_files_stat,
    .pread = xfs_files_pread,
    .readlink = xfs_files_readlink,
    .readdir = xfs_files_readdir,
};
