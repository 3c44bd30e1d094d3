/* SPDX-License-Identifier: MIT */
/*
 * Byte sources and sinks under the image formats.
 *
 * A format never sees a file descriptor: it reads (and, when creating,
 * writes) its container through a struct blockdev.  A blockdev is a regular
 * file, a block device, or a read-only memory buffer (the fuzz targets use
 * that).  Sources are always opened O_RDONLY: there is no way to get a
 * writable blockdev on an existing file from this interface, which is how
 * rule 1 (the source is never written) is kept by construction.
 *
 * Reads are exact: a read that would go past the end is an error naming the
 * blockdev, so format code that forgot a bounds check still cannot read
 * garbage.
 */
#ifndef VMC_BLOCKDEV_H
#define VMC_BLOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct blockdev {
    char *name;         /* the path as given, for messages */
    int fd;             /* -1 for a memory blockdev */
    const unsigned char *mem;
    uint64_t size;      /* current size in bytes */
    bool writable;
    bool is_block;      /* a block device: size fixed, no holes */
    uint64_t zeroed_to; /* written device: everything below is written
                         * or zeroed (see bdev_pwrite) */
    dev_t dev;          /* identity, for loop and self-overwrite checks */
    ino_t ino;
};

/* Open an existing file or block device read-only. */
struct blockdev *bdev_open (const char *path);

/* Open NAME, which was found inside BASE's metadata (a VMDK extent, a
 * backing file): relative names are taken from BASE's directory. */
struct blockdev *bdev_open_relative (const struct blockdev *base,
                                     const char *name);

/* Create (or truncate) PATH for writing.  A block device is opened for
 * writing without truncation. */
struct blockdev *bdev_create (const char *path);

/* Reopen an output this program created earlier, for writing, without
 * truncating it: only for resuming an interrupted image_create().  Never
 * used on a source. */
struct blockdev *bdev_reopen_output (const char *path);

/* Wrap a caller-owned buffer as a read-only blockdev. */
struct blockdev *bdev_open_memory (const void *buf, size_t len,
                                   const char *name);

/* Read exactly COUNT bytes at OFFSET; -1 with a message on error or EOF. */
int bdev_pread (struct blockdev *bd, void *buf, size_t count, uint64_t offset);

/* Write exactly COUNT bytes at OFFSET, extending the size if needed.
 * A block device has no holes, so a write past everything written so far
 * first zeroes the gap: a device target reads like a sparse file, zeros
 * wherever nothing was written. */
int bdev_pwrite (struct blockdev *bd, const void *buf, size_t count,
                 uint64_t offset);

/* End the written data at SIZE: a regular file gets that size (holes when
 * growing); on a block device, the range from the last write up to SIZE
 * is zeroed, and SIZE must fit in the device. */
int bdev_truncate (struct blockdev *bd, uint64_t size);

/* Make written data durable. */
int bdev_flush (struct blockdev *bd);

/* Ask for zeros over [offset, offset+count) on a writable blockdev: a hole
 * on a regular file, BLKZEROOUT on a block device. */
int bdev_zero (struct blockdev *bd, uint64_t offset, uint64_t count);

/* Find the next data at or after OFFSET (SEEK_DATA).  Sets *data to the
 * first data offset, or to the size when only a hole remains.  Where the
 * filesystem cannot tell, everything is data (*data = offset). */
int bdev_next_data (struct blockdev *bd, uint64_t offset, uint64_t *data);

/* The end of the data run starting at OFFSET (SEEK_HOLE). */
int bdev_next_hole (struct blockdev *bd, uint64_t offset, uint64_t *hole);

/* Bytes actually allocated (st_blocks * 512); 0 for memory and devices. */
uint64_t bdev_allocated (struct blockdev *bd);

/* Hint that the range will be read soon, sequentially. */
void bdev_readahead (struct blockdev *bd, uint64_t offset, uint64_t count);

/* Close and free; NULL is fine. */
void bdev_close (struct blockdev *bd);

#endif
