/* SPDX-License-Identifier: MIT */
/*
 * ext2, ext3 and ext4, read through libext2fs (e2fsprogs) rather than a
 * parser of our own: the block bitmap says which blocks are in use.
 *
 * libext2fs reads the volume through a small io_manager of ours
 * (ext2fs/ext2_io.h) that turns its block reads into v->pread; it refuses
 * every write.  The filesystem is opened read-only, 64-bit bitmaps, no
 * journal replay.  The used ranges are the set runs of the block bitmap
 * (found with find_first_set/find_first_zero, so a 1 TiB filesystem costs
 * one step per run, not per block), times the block size, plus block 0
 * (boot block) and whatever of the volume lies past the filesystem's end.
 *
 * The whole volume counts as used (r->all_used, with the reason) when:
 * the journal needs recovery (incompat RECOVER) or its superblock says it
 * holds transactions, the orphan list is not empty (s_last_orphan, or the
 * orphan_present feature of the orphan file), the state is not clean
 * (EXT2_VALID_FS unset, EXT2_ERROR_FS set), an incompat or ro_compat
 * feature we do not know is set, libext2fs refuses the filesystem or fails
 * while reading it (bad superblock, descriptor or bitmap checksums, ...),
 * the group descriptors fail ext2fs_check_desc or their checksums, the
 * free-block counts of the superblock or of any group disagree with the
 * bitmap, or the filesystem claims more blocks than the volume has.
 *
 * Before libext2fs sees the volume, probe() checks the basic superblock
 * geometry itself, so that obviously hostile numbers never reach it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "fs-ext.h"
#include "fs.h"

#define SB_OFFSET 1024
#define SB_SIZE 1024
#define EXT_MAGIC 0xEF53

/* Features whose meaning for the block bitmap we understand.  Anything
 * else in incompat or ro_compat makes the volume all used (compat features
 * are, by definition, safe to ignore for a reader). */
#define KNOWN_INCOMPAT (EXT2_FEATURE_INCOMPAT_FILETYPE | \
                        EXT2_FEATURE_INCOMPAT_META_BG | \
                        EXT3_FEATURE_INCOMPAT_EXTENTS | \
                        EXT4_FEATURE_INCOMPAT_64BIT | \
                        EXT4_FEATURE_INCOMPAT_MMP | \
                        EXT4_FEATURE_INCOMPAT_FLEX_BG | \
                        EXT4_FEATURE_INCOMPAT_EA_INODE | \
                        EXT4_FEATURE_INCOMPAT_CSUM_SEED | \
                        EXT4_FEATURE_INCOMPAT_LARGEDIR | \
                        EXT4_FEATURE_INCOMPAT_INLINE_DATA | \
                        EXT4_FEATURE_INCOMPAT_ENCRYPT | \
                        EXT4_FEATURE_INCOMPAT_CASEFOLD)
#define KNOWN_RO_COMPAT (EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | \
                         EXT2_FEATURE_RO_COMPAT_LARGE_FILE | \
                         EXT4_FEATURE_RO_COMPAT_HUGE_FILE | \
                         EXT4_FEATURE_RO_COMPAT_GDT_CSUM | \
                         EXT4_FEATURE_RO_COMPAT_DIR_NLINK | \
                         EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | \
                         EXT4_FEATURE_RO_COMPAT_QUOTA | \
                         EXT4_FEATURE_RO_COMPAT_BIGALLOC | \
                         EXT4_FEATURE_RO_COMPAT_METADATA_CSUM | \
                         EXT4_FEATURE_RO_COMPAT_READONLY | \
                         EXT4_FEATURE_RO_COMPAT_PROJECT | \
                         EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS | \
                         EXT4_FEATURE_RO_COMPAT_VERITY)
/* Features that only ext4 has (blkid calls such a filesystem ext4). */
#define EXT4_ONLY_INCOMPAT (~(uint32_t) (EXT2_FEATURE_INCOMPAT_FILETYPE | \
                                         EXT3_FEATURE_INCOMPAT_RECOVER | \
                                         EXT2_FEATURE_INCOMPAT_META_BG))
#define EXT4_ONLY_RO_COMPAT (~(uint32_t) (EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | \
                                          EXT2_FEATURE_RO_COMPAT_LARGE_FILE | \
                                          0x0004 /* btree_dir */))

#define JBD2_MAGIC 0xC03B3998u

/* More groups than a 1 PiB filesystem of 4 KiB blocks has: refuse to let
 * libext2fs load a descriptor table that large. */
#define MAX_GROUPS (1u << 23)

/* ---- The io_manager: libext2fs reads the volume through this. ---- */

/* The volume that the next open() of ours binds to.  libext2fs only passes
 * a name, so the volume travels beside it, per thread. */
static __thread const struct volume *ext_next_volume;

/* Set when v->pread failed under libext2fs: a real read error, which
 * makes used() return -1 rather than call the volume all used. */
static __thread int ext_read_failed;

struct ext_io {
    const struct volume *v;
};

static errcode_t ext_io_open (const char *name, int flags,
                              io_channel *channel);
static errcode_t ext_io_close (io_channel channel);
static errcode_t ext_io_set_blksize (io_channel channel, int blksize);
static errcode_t ext_io_read_blk64 (io_channel channel,
                                    unsigned long long block, int count,
                                    void *data);
static errcode_t ext_io_read_blk (io_channel channel, unsigned long block,
                                  int count, void *data);
static errcode_t ext_io_write_blk (io_channel channel, unsigned long block,
                                   int count, const void *data);
static errcode_t ext_io_write_blk64 (io_channel channel,
                                     unsigned long long block, int count,
                                     const void *data);
static errcode_t ext_io_write_byte (io_channel channel, unsigned long offset,
                                    int count, const void *data);
static errcode_t ext_io_flush (io_channel channel);
static errcode_t ext_io_set_option (io_channel channel, const char *option,
                                    const char *arg);

static struct struct_io_manager ext_io_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "vmconvert volume (read-only)",
    .open = ext_io_open,
    .close = ext_io_close,
    .set_blksize = ext_io_set_blksize,
    .read_blk = ext_io_read_blk,
    .write_blk = ext_io_write_blk,
    .flush = ext_io_flush,
    .write_byte = ext_io_write_byte,
    .set_option = ext_io_set_option,
    .read_blk64 = ext_io_read_blk64,
    .write_blk64 = ext_io_write_blk64,
};

static errcode_t
ext_io_open (const char *name, int flags, io_channel *channel)
{
    io_channel ch;
    struct ext_io *p;

    if (ext_next_volume == NULL || name == NULL)
        return EXT2_ET_BAD_DEVICE_NAME;
    if (flags & IO_FLAG_RW)
        return EXT2_ET_RO_FILSYS;
    ch = calloc (1, sizeof *ch);
    p = calloc (1, sizeof *p);
    if (ch != NULL)
        ch->name = strdup (name);
    if (ch == NULL || p == NULL || ch->name == NULL) {
        if (ch != NULL)
            free (ch->name);
        free (ch);
        free (p);
        return EXT2_ET_NO_MEMORY;
    }
    p->v = ext_next_volume;
    ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
    ch->manager = &ext_io_manager;
    ch->block_size = 1024;
    ch->refcount = 1;
    ch->private_data = p;
    *channel = ch;
    return 0;
}

static errcode_t
ext_io_close (io_channel channel)
{
    if (channel == NULL || channel->magic != EXT2_ET_MAGIC_IO_CHANNEL)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    if (--channel->refcount > 0)
        return 0;
    free (channel->private_data);
    free (channel->name);
    free (channel);
    return 0;
}

static errcode_t
ext_io_set_blksize (io_channel channel, int blksize)
{
    if (blksize < 512 || blksize > EXT2_MAX_BLOCK_SIZE)
        return EXT2_ET_INVALID_ARGUMENT;
    channel->block_size = blksize;
    return 0;
}

static errcode_t
ext_io_read_blk64 (io_channel channel, unsigned long long block, int count,
                   void *data)
{
    struct ext_io *p = channel->private_data;
    const struct volume *v = p->v;
    uint64_t off, len;

    /* A negative count is a byte count (ext2_io.h). */
    if (count < 0)
        len = (uint64_t) -(int64_t) count;
    else if (ckd_mul (&len, (uint64_t) count, (uint64_t) channel->block_size))
        len = UINT64_MAX;
    if (len == 0)
        return 0;
    /* Say why in a message too: fs-ext-files.c passes it on. */
    if (ckd_mul (&off, (uint64_t) block, (uint64_t) channel->block_size) ||
        off > v->size || len > v->size - off || len > SIZE_MAX) {
        vmc_error ("%s: ext: read of block %llu (x%d) is past the end of "
                   "the volume", v->name, block, count);
        return EXT2_ET_SHORT_READ;
    }
    if (v->pread (v, data, (size_t) len, off) < 0) {
        ext_read_failed = 1;
        return EXT2_ET_SHORT_READ;
    }
    return 0;
}

static errcode_t
ext_io_read_blk (io_channel channel, unsigned long block, int count,
                 void *data)
{
    return ext_io_read_blk64 (channel, block, count, data);
}

static errcode_t
ext_io_write_blk (io_channel channel, unsigned long block, int count,
                  const void *data)
{
    (void) channel; (void) block; (void) count; (void) data;
    return EXT2_ET_RO_FILSYS;
}

static errcode_t
ext_io_write_blk64 (io_channel channel, unsigned long long block, int count,
                    const void *data)
{
    (void) channel; (void) block; (void) count; (void) data;
    return EXT2_ET_RO_FILSYS;
}

static errcode_t
ext_io_write_byte (io_channel channel, unsigned long offset, int count,
                   const void *data)
{
    (void) channel; (void) offset; (void) count; (void) data;
    return EXT2_ET_RO_FILSYS;
}

static errcode_t
ext_io_flush (io_channel channel)
{
    (void) channel;
    return 0;
}

static errcode_t
ext_io_set_option (io_channel channel, const char *option, const char *arg)
{
    (void) channel; (void) option; (void) arg;
    return EXT2_ET_INVALID_ARGUMENT;
}

/* ---- The superblock, checked by us before libext2fs sees it. ---- */

struct ext_sb {
    uint64_t blocks;
    uint32_t first_data_block, log_block_size, log_cluster_size;
    uint32_t blocks_per_group, clusters_per_group, inodes_per_group;
    uint32_t inodes, rev, compat, incompat, ro_compat;
    uint16_t state, inode_size;
    uint32_t block_size;
    unsigned char raw[SB_SIZE];
};

/* 1 when the superblock at 1024 looks like ext2/3/4 geometry we can hand
 * to libext2fs, 0 when not, -1 on a read error. */
static int
read_sb (const struct volume *v, struct ext_sb *s)
{
    const unsigned char *b = s->raw;

    if (v->size < SB_OFFSET + SB_SIZE)
        return 0;
    if (v->pread (v, s->raw, SB_SIZE, SB_OFFSET) < 0)
        return -1;
    if (get_le16 (b + 0x38) != EXT_MAGIC)
        return 0;
    s->inodes = get_le32 (b + 0x00);
    s->blocks = get_le32 (b + 0x04);
    s->first_data_block = get_le32 (b + 0x14);
    s->log_block_size = get_le32 (b + 0x18);
    s->log_cluster_size = get_le32 (b + 0x1c);
    s->blocks_per_group = get_le32 (b + 0x20);
    s->clusters_per_group = get_le32 (b + 0x24);
    s->inodes_per_group = get_le32 (b + 0x28);
    s->state = get_le16 (b + 0x3a);
    s->rev = get_le32 (b + 0x4c);
    s->inode_size = s->rev >= 1 ? get_le16 (b + 0x58) : 128;
    s->compat = s->rev >= 1 ? get_le32 (b + 0x5c) : 0;
    s->incompat = s->rev >= 1 ? get_le32 (b + 0x60) : 0;
    s->ro_compat = s->rev >= 1 ? get_le32 (b + 0x64) : 0;
    if (s->incompat & EXT4_FEATURE_INCOMPAT_64BIT)
        s->blocks |= (uint64_t) get_le32 (b + 0x150) << 32;
    /* Block sizes 1 KiB to 64 KiB. */
    if (s->log_block_size > 6)
        return 0;
    s->block_size = 1024u << s->log_block_size;
    if (s->blocks == 0 || s->blocks_per_group == 0 ||
        s->inodes_per_group == 0 || s->inodes == 0)
        return 0;
    if (s->first_data_block != (s->block_size == 1024 ? 1u : 0u) &&
        !(s->ro_compat & EXT4_FEATURE_RO_COMPAT_BIGALLOC))
        return 0;
    if (s->first_data_block >= s->blocks)
        return 0;
    if (s->rev > 1)
        return 0;
    return 1;
}

static int
ext_probe (const struct volume *v)
{
    struct ext_sb s;

    return read_sb (v, &s);
}


static const char *
ext_kind (const struct ext_sb *s)
{
    if ((s->incompat & EXT4_ONLY_INCOMPAT) ||
        (s->ro_compat & EXT4_ONLY_RO_COMPAT))
        return "ext4";
    if (s->compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL)
        return "ext3";
    return "ext2";
}

static pthread_once_t et_once = PTHREAD_ONCE_INIT;

static void
et_init (void)
{
    initialize_ext2_error_table ();
}



/* Open V with libext2fs through the io_manager above, read-only, 64-bit
 * bitmaps, MMP not checked (check_mmp does), no journal replay: 0 with
 * *FS set, or the libext2fs error (ext_read_failed says whether a read of
 * the volume failed). */
static errcode_t
ext_open_fs (const struct volume *v, ext2_filsys *fs)
{
    int flags = EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP;
    errcode_t err;

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    flags |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
#endif
    pthread_once (&et_once, et_init);
    ext_next_volume = v;
    ext_read_failed = 0;
    *fs = NULL;
    err = ext2fs_open2 ("vmconvert-volume", NULL, flags, 0, 0,
                        &ext_io_manager, fs);
    ext_next_volume = NULL;
    return err;
}

int
ext_open_readonly (const struct volume *v, ext2_filsys *fs)
{
    struct ext_sb s;
    uint64_t fs_bytes;
    uint32_t unknown;
    errcode_t err;
    int ret;

    *fs = NULL;
    ret = read_sb (v, &s);
    if (ret < 0)
        return -1;
    if (ret == 0) {
        vmc_error ("%s: ext: no ext2/3/4 superblock with a usable geometry",
                   v->name);
        return -1;
    }
    if (ckd_mul (&fs_bytes, s.blocks, (uint64_t) s.block_size) ||
        fs_bytes > v->size) {
        vmc_error ("%s: ext: the filesystem (%" PRIu64 " blocks of %" PRIu32
                   ") is larger than its volume", v->name, s.blocks,
                   s.block_size);
        return -1;
    }
    if ((s.blocks - s.first_data_block - 1) / s.blocks_per_group + 1 >
        MAX_GROUPS) {
        vmc_error ("%s: ext: too many block groups", v->name);
        return -1;
    }
    /* Reading files does not need the journal replayed (what is on disk
     * is read, as debugfs does), but an incompat feature we do not know
     * may change how files are laid out. */
    unknown = s.incompat & ~(uint32_t) (KNOWN_INCOMPAT |
                                        EXT3_FEATURE_INCOMPAT_RECOVER);
    if (unknown != 0) {
        vmc_error ("%s: ext: unknown incompatible features 0x%" PRIx32,
                   v->name, unknown);
        return -1;
    }
    err = ext_open_fs (v, fs);
    if (err) {
        if (!ext_read_failed)
            vmc_error ("%s: ext: libext2fs cannot open it: %s", v->name,
                       error_message (err));
        *fs = NULL;
        return -1;
    }
    return 0;
}

/* The state checks that need only the superblock. */
static int
check_sb (const struct ext_sb *s, const struct volume *v, struct fs_result *r)
{
    uint64_t fs_bytes;

    if (s->incompat & EXT3_FEATURE_INCOMPAT_RECOVER)
        return fs_unclean (r, "the journal needs recovery (needs_recovery "
                         "set: not cleanly unmounted)");
    if (!(s->state & EXT2_VALID_FS))
        return fs_unclean (r, "the filesystem state is not clean "
                         "(not cleanly unmounted or being checked)");
    if (s->state & EXT2_ERROR_FS)
        return fs_all_used (r, "the filesystem state says it has errors");
    if (get_le32 (s->raw + 0xe8) != 0)
        return fs_unclean (r, "the orphan inode list is not empty "
                         "(s_last_orphan %" PRIu32 ")",
                         get_le32 (s->raw + 0xe8));
    if (s->ro_compat & EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT)
        return fs_unclean (r, "the orphan file holds entries "
                         "(orphan_present set)");
    if (s->incompat & ~(uint32_t) KNOWN_INCOMPAT)
        return fs_all_used (r, "unknown incompatible features 0x%" PRIx32,
                         s->incompat & ~(uint32_t) KNOWN_INCOMPAT);
    if (s->ro_compat & ~(uint32_t) KNOWN_RO_COMPAT)
        return fs_all_used (r, "unknown read-only-compatible features 0x%"
                         PRIx32, s->ro_compat & ~(uint32_t) KNOWN_RO_COMPAT);
    if (ckd_mul (&fs_bytes, s->blocks, (uint64_t) s->block_size) ||
        fs_bytes > v->size)
        return fs_all_used (r, "the filesystem (%" PRIu64 " blocks of %" PRIu32
                         ") is larger than its volume", s->blocks,
                         s->block_size);
    if ((s->blocks - s->first_data_block - 1) / s->blocks_per_group + 1 >
        MAX_GROUPS)
        return fs_all_used (r, "too many block groups (%" PRIu32
                         " blocks per group)", s->blocks_per_group);
    return 1;
}

/* The journal's own superblock: a non-zero s_start means transactions to
 * replay even when the needs_recovery flag says otherwise. */
static int
check_journal (ext2_filsys fs, struct fs_result *r)
{
    ext2_ino_t ino = fs->super->s_journal_inum;
    blk64_t pblk = 0;
    unsigned char *buf;
    errcode_t err;
    int ret = 1;

    if (!ext2fs_has_feature_journal (fs->super) || ino == 0)
        return 1;
    if (ino > fs->super->s_inodes_count)
        return fs_all_used (r, "the journal inode %u is out of range", ino);
    err = ext2fs_bmap2 (fs, ino, NULL, NULL, 0, 0, NULL, &pblk);
    if (err)
        return fs_all_used (r, "the journal cannot be read: %s",
                         error_message (err));
    if (pblk == 0 || pblk >= ext2fs_blocks_count (fs->super))
        return fs_all_used (r, "the journal's first block is out of range");
    buf = malloc (fs->blocksize);
    if (buf == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    err = io_channel_read_blk64 (fs->io, pblk, 1, buf);
    if (err) {
        if (ext_read_failed)
            ret = -1;
        else
            ret = fs_all_used (r, "the journal superblock cannot be read: %s",
                            error_message (err));
    }
    else if (get_be32 (buf) != JBD2_MAGIC)
        ret = fs_all_used (r, "the journal superblock has a bad magic number");
    else if (get_be32 (buf + 28) != 0)
        ret = fs_unclean (r, "the journal holds transactions to replay "
                        "(s_start %" PRIu32 ")", get_be32 (buf + 28));
    free (buf);
    return ret;
}

/* Multiple-mount protection: a sequence other than "clean" means another
 * host may have it mounted, or e2fsck is running. */
static int
check_mmp (ext2_filsys fs, struct fs_result *r)
{
    blk64_t b = fs->super->s_mmp_block;
    unsigned char *buf;
    errcode_t err;
    int ret = 1;

    if (!ext2fs_has_feature_mmp (fs->super))
        return 1;
    if (b < fs->super->s_first_data_block ||
        b >= ext2fs_blocks_count (fs->super))
        return fs_all_used (r, "the MMP block is out of range");
    buf = malloc (fs->blocksize);
    if (buf == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    err = io_channel_read_blk64 (fs->io, b, 1, buf);
    if (err)
        ret = ext_read_failed ? -1 :
            fs_all_used (r, "the MMP block cannot be read: %s",
                      error_message (err));
    else if (get_le32 (buf) != EXT4_MMP_MAGIC)
        ret = fs_all_used (r, "the MMP block has a bad magic number");
    else if (get_le32 (buf + 4) != EXT4_MMP_SEQ_CLEAN)
        ret = fs_all_used (r, "multiple-mount protection says it is in use "
                        "(mmp_seq 0x%08" PRIx32 ")", get_le32 (buf + 4));
    free (buf);
    return ret;
}

/* Walk the block bitmap's set runs into R->used, checking each group's
 * free count against the descriptors and the total against the
 * superblock. */
static int
walk_bitmap (ext2_filsys fs, struct fs_result *r)
{
    ext2fs_block_bitmap bm = fs->block_map;
    const blk64_t first = fs->super->s_first_data_block;
    const blk64_t last = ext2fs_blocks_count (fs->super) - 1;
    const uint64_t bs = fs->blocksize;
    const unsigned cbits = fs->cluster_ratio_bits;
    uint64_t total_used = 0;        /* in clusters */
    uint64_t group_used = 0;
    dgrp_t g = 0;
    blk64_t gfirst = ext2fs_group_first_block2 (fs, 0);
    blk64_t glast = ext2fs_group_last_block2 (fs, 0);
    blk64_t pos = first;

/* Close group g, comparing its count, then move to the next. */
#define NEXT_GROUP()                                                      \
    do {                                                                  \
        uint64_t gclusters = ((glast - gfirst) >> cbits) + 1;            \
        uint64_t gfree = ext2fs_bg_free_blocks_count (fs, g);            \
        if (group_used > gclusters || gclusters - group_used != gfree)   \
            return fs_all_used (r, "group %u: free block count %" PRIu64    \
                             " disagrees with its bitmap (%" PRIu64 ")",  \
                             g, gfree, gclusters - group_used);          \
        total_used += group_used;                                         \
        group_used = 0;                                                   \
        g++;                                                              \
        if (g < fs->group_desc_count) {                                   \
            gfirst = ext2fs_group_first_block2 (fs, g);                   \
            glast = ext2fs_group_last_block2 (fs, g);                     \
        }                                                                 \
    } while (0)

    while (pos <= last) {
        blk64_t start, end;
        errcode_t err;

        err = ext2fs_find_first_set_block_bitmap2 (bm, pos, last, &start);
        if (err == ENOENT)
            break;
        if (err)
            return fs_all_used (r, "block bitmap search failed: %s",
                             error_message (err));
        if (start < pos || start > last)
            return fs_all_used (r, "block bitmap search went astray");
        err = ext2fs_find_first_zero_block_bitmap2 (bm, start, last, &end);
        if (err == ENOENT)
            end = last + 1;
        else if (err)
            return fs_all_used (r, "block bitmap search failed: %s",
                             error_message (err));
        else if (end <= start || end > last)
            return fs_all_used (r, "block bitmap search went astray");
        /* [start, end) is in use.  Count it group by group. */
        for (blk64_t b = start; b < end;) {
            blk64_t e;

            while (g < fs->group_desc_count && b > glast)
                NEXT_GROUP ();
            if (g >= fs->group_desc_count)
                return fs_all_used (r, "bitmap bits past the last group");
            e = end - 1 < glast ? end - 1 : glast;
            group_used += ((e - b) >> cbits) + 1;
            b = e + 1;
        }
        if (rangeset_add (&r->used, start * bs, (end - start) * bs) < 0)
            return -1;
        pos = end;
    }
    while (g < fs->group_desc_count)
        NEXT_GROUP ();
#undef NEXT_GROUP
    {
        uint64_t clusters = ((last - first) >> cbits) + 1;
        uint64_t sfree = ext2fs_free_blocks_count (fs->super) >> cbits;

        if (total_used > clusters || clusters - total_used != sfree)
            return fs_all_used (r, "the superblock's free block count %" PRIu64
                             " disagrees with the bitmap (%" PRIu64 ")",
                             sfree, clusters - total_used);
    }
    return 0;
}

static int
ext_used (const struct volume *v, struct fs_result *r)
{
    struct ext_sb s;
    ext2_filsys fs = NULL;
    errcode_t err;
    int ret;
    uint64_t fs_bytes;
    const unsigned char *u;

    ret = read_sb (v, &s);
    if (ret < 0)
        return -1;
    if (ret == 0)
        return fs_all_used (r, "the ext superblock does not look right");
    snprintf (r->type, sizeof r->type, "%s", ext_kind (&s));
    r->block_size = s.block_size;
    fs_printable (r->label, sizeof r->label, s.raw + 0x78, 16);
    u = s.raw + 0x68;
    snprintf (r->uuid, sizeof r->uuid,
              "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
              "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4],
              u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
              u[14], u[15]);
    ret = check_sb (&s, v, r);
    if (ret <= 0)
        return ret;

    err = ext_open_fs (v, &fs);
    if (err) {
        if (ext_read_failed)
            return -1;
        return fs_all_used (r, "libext2fs cannot open it: %s",
                         error_message (err));
    }

    /* The superblock libext2fs uses is the one we checked (it reads the
     * primary unless told otherwise), but check its view too. */
    if (ckd_mul (&fs_bytes, ext2fs_blocks_count (fs->super),
                 (uint64_t) fs->blocksize) || fs_bytes > v->size) {
        ret = fs_all_used (r, "the filesystem is larger than its volume");
        goto out;
    }
    err = ext2fs_check_desc (fs);
    if (err) {
        ret = ext_read_failed ? -1 :
            fs_all_used (r, "group descriptors are inconsistent: %s",
                      error_message (err));
        goto out;
    }
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    for (dgrp_t g = 0; g < fs->group_desc_count; g++)
        if (!ext2fs_group_desc_csum_verify (fs, g)) {
            ret = fs_all_used (r, "group %u: descriptor checksum is wrong", g);
            goto out;
        }
#endif
    ret = check_journal (fs, r);
    if (ret <= 0)
        goto out;
    ret = check_mmp (fs, r);
    if (ret <= 0)
        goto out;
    err = ext2fs_read_block_bitmap (fs);
    if (err) {
        ret = ext_read_failed ? -1 :
            fs_all_used (r, "the block bitmap cannot be read: %s",
                      error_message (err));
        goto out;
    }
    if (fs->flags & EXT2_FLAG_BBITMAP_TAIL_PROBLEM) {
        ret = fs_all_used (r, "the block bitmap's padding bits are not set");
        goto out;
    }
    /* Block 0 (the boot block; with 1 KiB blocks it is outside every
     * group) and the superblock are always in use. */
    if (rangeset_add (&r->used, 0, SB_OFFSET + SB_SIZE) < 0 ||
        rangeset_add (&r->used, 0, (uint64_t) s.first_data_block *
                      fs->blocksize) < 0) {
        ret = -1;
        goto out;
    }
    ret = walk_bitmap (fs, r);
    if (ret < 0 || r->all_used)
        goto out;
    /* Past the filesystem's end: not the filesystem's, but a RAID
     * superblock or anything else may live there.  Keep it. */
    if (rangeset_add (&r->used, fs_bytes, v->size - fs_bytes) < 0)
        ret = -1;

 out:
    ext2fs_close_free (&fs);
    if (r->all_used)
        rangeset_free (&r->used);
    return ret < 0 ? -1 : 0;
}

const struct fs_type fs_ext = {
    .name = "ext4",
    .probe = ext_probe,
    .used = ext_used,
};
