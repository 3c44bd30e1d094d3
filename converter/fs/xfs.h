/* SPDX-License-Identifier: MIT */
/*
 * The XFS superblock, decoded once for both readers of XFS: the used-block
 * map (fs-xfs.c) and the file reader (fs-xfs-files.c).  From "XFS
 * Algorithms & Data Structures", chapter "Superblocks".
 *
 * xfs_sb_decode() checks what both need to trust the geometry: the magic,
 * version 4 or 5, block and sector sizes and their logs, the v5 CRC, the AG
 * geometry against dblocks and dblocks against the volume.  What each
 * reader then refuses (unknown features, a dirty log, a realtime section)
 * is its own policy and stays with it.
 *
 * The superblock (sector 0 of the volume, big-endian), the fields used:
 *
 *     0   magicnum     "XFSB"
 *     4   blocksize    bytes per filesystem block
 *     8   dblocks      blocks in the data section
 *    16   rblocks      blocks in the realtime section
 *    24   rextents     realtime extents
 *    32   uuid[16]     the filesystem's UUID
 *    48   logstart     first block of an internal log (fsblock), or 0
 *    56   rootino      the root directory's inode number
 *    84   agblocks     blocks per AG (the last may be shorter)
 *    88   agcount      number of AGs
 *    96   logblocks    blocks in the log
 *   100   versionnum   low 4 bits the version; v4 feature bits above
 *   102   sectsize     bytes per sector
 *   104   inodesize    bytes per inode
 *   106   inopblock    inodes per block
 *   108   fname[12]    label
 *   120   blocklog     log2 (blocksize)
 *   121   sectlog      log2 (sectsize)
 *   122   inodelog     log2 (inodesize)
 *   123   inopblog     log2 (inopblock)
 *   124   agblklog     log2 (agblocks), rounded up
 *   126   inprogress   mkfs has not finished
 *   192   dirblklog    log2 (directory block size / blocksize)
 *   200   features2    more v4 feature bits (when versionnum has MOREBITS)
 *   208   features_compat, 212 features_ro_compat, 216 features_incompat,
 *   220   features_log_incompat (v5)
 *   224   crc          CRC32C of the sector, this field counted as zero (v5)
 *   248   meta_uuid[16] the UUID in metadata headers, when META_UUID is set
 */
#ifndef VMC_FS_XFS_H
#define VMC_FS_XFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XFS_SB_MAGIC 0x58465342u        /* "XFSB" */

/* versionnum bits (v4). */
#define XFS_SB_VERSION_DIRV2 0x2000u
#define XFS_SB_VERSION_MOREBITS 0x8000u
/* features2 bits (v4). */
#define XFS_SB_FEATURES2_CRC 0x100u
#define XFS_SB_FEATURES2_FTYPE 0x200u
/* features_incompat bits (v5). */
#define XFS_SB_INCOMPAT_FTYPE 0x1u
#define XFS_SB_INCOMPAT_SPINODES 0x2u
#define XFS_SB_INCOMPAT_META_UUID 0x4u
#define XFS_SB_INCOMPAT_BIGTIME 0x8u
#define XFS_SB_INCOMPAT_NEEDSREPAIR 0x10u
#define XFS_SB_INCOMPAT_NREXT64 0x20u
#define XFS_SB_INCOMPAT_EXCHRANGE 0x40u
#define XFS_SB_INCOMPAT_PARENT 0x80u

#define XFS_SB_CRC_OFF 224

struct xfs_sb {
    uint32_t blocksize, sectsize, agblocks, agcount, logblocks;
    uint64_t dblocks, rblocks, rextents, logstart, rootino;
    unsigned blocklog, sectlog, agblklog, inodelog, inopblog, dirblklog;
    uint16_t versionnum;                /* the whole field, feature bits
                                         * included */
    uint16_t inodesize, inopblock;
    uint32_t features2, ro_compat, incompat, log_incompat;
    bool crc;                           /* version 5 */
    bool ftype;                         /* directory entries carry a type */
    bool inprogress;
    unsigned char uuid[16];             /* sb_uuid, in log headers */
    unsigned char meta_uuid[16];        /* the UUID metadata blocks carry */
};

/* Decode and check the superblock SB (LEN bytes, at least one sector:
 * 512, and the whole sector for the CRC) of a volume of VOLSIZE bytes
 * into *S: 0, or -1 with WHY (N bytes) saying what is wrong, in words that
 * follow "XFS " ("block size 3000 invalid").  *S holds whatever was
 * decoded before the failing check. */
int xfs_sb_decode (const unsigned char *sb, size_t len, uint64_t volsize,
                   struct xfs_sb *s, char *why, size_t n);

/* Is the CRC32C stored at OFF of BUF (LEN bytes) right?  Computed with the
 * field itself counted as zero, as every v5 metadata CRC is. */
bool xfs_crc_ok (const unsigned char *buf, size_t len, size_t off);

/* The XFS file reader (fs-xfs-files.c), for callers that want XFS alone
 * rather than fs_files_for ("xfs"). */
struct fs_files;
extern const struct fs_files fs_files_xfs;

#endif
