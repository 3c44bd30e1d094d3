/* SPDX-License-Identifier: MIT */
/*
 * File, block device and memory blockdevs; see blockdev.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockdev.h"
#include "checked-overflow.h"
#include "error.h"

static struct blockdev *
bdev_from_fd (int fd, const char *path, bool writable)
{
    struct blockdev *bd;
    struct stat st;

    if (fstat (fd, &st) == -1) {
        vmc_perror ("%s: fstat", path);
        return NULL;
    }
    if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
        vmc_error ("%s: not a regular file or block device", path);
        return NULL;
    }
    bd = calloc (1, sizeof *bd);
    if (bd == NULL || (bd->name = strdup (path)) == NULL) {
        free (bd);
        vmc_perror ("%s", path);
        return NULL;
    }
    bd->fd = fd;
    bd->writable = writable;
    bd->dev = st.st_dev;
    bd->ino = st.st_ino;
    if (S_ISBLK (st.st_mode)) {
        uint64_t size;

        bd->is_block = true;
        /* A block device's identity is its device number. */
        bd->dev = st.st_rdev;
        bd->ino = 0;
        if (ioctl (fd, BLKGETSIZE64, &size) == -1) {
            vmc_perror ("%s: BLKGETSIZE64", path);
            free (bd->name);
            free (bd);
            return NULL;
        }
        bd->size = size;
    }
    else {
        bd->size = (uint64_t) st.st_size;
    }
    return bd;
}

struct blockdev *
bdev_open (const char *path)
{
    struct blockdev *bd;
    int fd;

    fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        vmc_perror ("%s", path);
        return NULL;
    }
    bd = bdev_from_fd (fd, path, false);
    if (bd == NULL) {
        close (fd);
    }
    return bd;
}

struct blockdev *
bdev_open_relative (const struct blockdev *base, const char *name)
{
    struct blockdev *bd;
    const char *slash;
    char *path;
    size_t dirlen;

    if (name[0] == '\0') {
        vmc_error ("%s: empty file name in image metadata", base->name);
        return NULL;
    }
    if (name[0] == '/') {
        return bdev_open (name);
    }
    if (base->fd == -1) {
        vmc_error ("%s: cannot open \"%s\" relative to an in-memory image",
                   base->name, name);
        return NULL;
    }
    slash = strrchr (base->name, '/');
    dirlen = slash != NULL ? (size_t) (slash - base->name) + 1 : 0;
    path = malloc (dirlen + strlen (name) + 1);
    if (path == NULL) {
        vmc_perror ("malloc");
        return NULL;
    }
    memcpy (path, base->name, dirlen);
    strcpy (path + dirlen, name);
    bd = bdev_open (path);
    free (path);
    return bd;
}

struct blockdev *
bdev_create (const char *path)
{
    struct blockdev *bd;
    struct stat st;
    int fd, flags = O_RDWR | O_CREAT | O_CLOEXEC;

    /* Block devices are written in place; regular files start empty. */
    if (stat (path, &st) == -1 || !S_ISBLK (st.st_mode)) {
        flags |= O_TRUNC;
    }
    fd = open (path, flags, 0644);
    if (fd == -1) {
        vmc_perror ("%s", path);
        return NULL;
    }
    bd = bdev_from_fd (fd, path, true);
    if (bd == NULL) {
        close (fd);
    }
    return bd;
}

struct blockdev *
bdev_reopen_output (const char *path)
{
    struct blockdev *bd;
    int fd;

    fd = open (path, O_RDWR | O_CLOEXEC);
    if (fd == -1) {
        vmc_perror ("%s", path);
        return NULL;
    }
    bd = bdev_from_fd (fd, path, true);
    if (bd == NULL) {
        close (fd);
        return NULL;
    }
    return bd;
}

struct blockdev *
bdev_open_memory (const void *buf, size_t len, const char *name)
{
    struct blockdev *bd;

    bd = calloc (1, sizeof *bd);
    if (bd == NULL || (bd->name = strdup (name)) == NULL) {
        free (bd);
        vmc_perror ("malloc");
        return NULL;
    }
    bd->fd = -1;
    bd->mem = buf;
    bd->size = len;
    return bd;
}

int
bdev_pread (struct blockdev *bd, void *buf, size_t count, uint64_t offset)
{
    char *p = buf;

    if (range_outside (offset, count, bd->size)) {
        vmc_error ("%s: read of %zu bytes at offset %" PRIu64
                   " is past the end of the file (%" PRIu64 " bytes)",
                   bd->name, count, offset, bd->size);
        return -1;
    }
    if (bd->fd == -1) {
        memcpy (buf, bd->mem + offset, count);
        return 0;
    }
    while (count > 0) {
        ssize_t r = pread (bd->fd, p, count, (off_t) offset);

        if (r == -1) {
            if (errno == EINTR) {
                continue;
            }
            vmc_perror ("%s: read error at offset %" PRIu64, bd->name, offset);
            return -1;
        }
        if (r == 0) {
            vmc_error ("%s: unexpected end of file at offset %" PRIu64,
                       bd->name, offset);
            return -1;
        }
        p += r;
        count -= (size_t) r;
        offset += (uint64_t) r;
    }
    return 0;
}

int
bdev_pwrite (struct blockdev *bd, const void *buf, size_t count,
             uint64_t offset)
{
    const char *p = buf;
    uint64_t end;

    if (!bd->writable) {
        vmc_error ("%s: internal error: write to a read-only source",
                   bd->name);
        return -1;
    }
    if (ckd_add (&end, offset, count) || end > (uint64_t) INT64_MAX) {
        vmc_error ("%s: write offset out of range", bd->name);
        return -1;
    }
    if (bd->is_block && offset > bd->zeroed_to &&
        bdev_zero (bd, bd->zeroed_to, offset - bd->zeroed_to) == -1) {
        return -1;
    }
    while (count > 0) {
        ssize_t r = pwrite (bd->fd, p, count, (off_t) offset);

        if (r == -1) {
            if (errno == EINTR) {
                continue;
            }
            vmc_perror ("%s: write error at offset %" PRIu64, bd->name,
                        offset);
            return -1;
        }
        p += r;
        count -= (size_t) r;
        offset += (uint64_t) r;
    }
    if (end > bd->size) {
        bd->size = end;
    }
    if (end > bd->zeroed_to) {
        bd->zeroed_to = end;
    }
    return 0;
}

int
bdev_truncate (struct blockdev *bd, uint64_t size)
{
    if (!bd->writable) {
        vmc_error ("%s: internal error: truncate of a read-only source",
                   bd->name);
        return -1;
    }
    if (bd->is_block) {
        if (size > bd->size) {
            vmc_error ("%s: the device holds %" PRIu64 " bytes, %" PRIu64
                       " are needed", bd->name, bd->size, size);
            return -1;
        }
        if (size > bd->zeroed_to) {
            if (bdev_zero (bd, bd->zeroed_to, size - bd->zeroed_to) == -1) {
                return -1;
            }
            bd->zeroed_to = size;
        }
        return 0;
    }
    if (size > (uint64_t) INT64_MAX || ftruncate (bd->fd, (off_t) size) == -1) {
        vmc_perror ("%s: truncate to %" PRIu64 " bytes", bd->name, size);
        return -1;
    }
    bd->size = size;
    return 0;
}

int
bdev_flush (struct blockdev *bd)
{
    if (bd->fd != -1 && bd->writable && fdatasync (bd->fd) == -1) {
        vmc_perror ("%s: fdatasync", bd->name);
        return -1;
    }
    return 0;
}

/* Write COUNT (< 512) zero bytes at OFFSET of a device. */
static int
zero_bytes (struct blockdev *bd, uint64_t offset, uint64_t count)
{
    static const char zeros[512];
    ssize_t r;

    while (count > 0) {
        r = pwrite (bd->fd, zeros, (size_t) count, (off_t) offset);
        if (r == -1 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            vmc_perror ("%s: write error at offset %" PRIu64, bd->name,
                        offset);
            return -1;
        }
        offset += (uint64_t) r;
        count -= (uint64_t) r;
    }
    return 0;
}

int
bdev_zero (struct blockdev *bd, uint64_t offset, uint64_t count)
{
    if (!bd->writable) {
        vmc_error ("%s: internal error: zero on a read-only source", bd->name);
        return -1;
    }
    if (count == 0) {
        return 0;
    }
    if (bd->is_block) {
        /* BLKZEROOUT takes whole sectors; the ends are written. */
        uint64_t end = offset + count;
        uint64_t a = (offset + 511) & ~(uint64_t) 511, b = end & ~(uint64_t) 511;
        uint64_t range[2];

        if (a >= b) {
            return zero_bytes (bd, offset, count);
        }
        range[0] = a;
        range[1] = b - a;
        if (zero_bytes (bd, offset, a - offset) == -1 ||
            zero_bytes (bd, b, end - b) == -1) {
            return -1;
        }
        if (ioctl (bd->fd, BLKZEROOUT, range) == -1) {
            vmc_perror ("%s: BLKZEROOUT at offset %" PRIu64, bd->name, a);
            return -1;
        }
        return 0;
    }
    if (fallocate (bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   (off_t) offset, (off_t) count) == -1) {
        vmc_perror ("%s: punch hole at offset %" PRIu64, bd->name, offset);
        return -1;
    }
    return 0;
}

static int
bdev_seek (struct blockdev *bd, uint64_t offset, int whence, uint64_t *out)
{
    off_t r;

    if (offset >= bd->size) {
        *out = bd->size;
        return 0;
    }
    if (bd->fd == -1 || bd->is_block) {
        *out = whence == SEEK_DATA ? offset : bd->size;
        return 0;
    }
    r = lseek (bd->fd, (off_t) offset, whence);
    if (r == -1) {
        if (errno == ENXIO) {
            /* No data after offset (or the file shrank). */
            *out = bd->size;
            return 0;
        }
        if (errno == EINVAL || errno == ENOTSUP) {
            *out = whence == SEEK_DATA ? offset : bd->size;
            return 0;
        }
        vmc_perror ("%s: lseek", bd->name);
        return -1;
    }
    *out = (uint64_t) r < bd->size ? (uint64_t) r : bd->size;
    return 0;
}

int
bdev_next_data (struct blockdev *bd, uint64_t offset, uint64_t *data)
{
    return bdev_seek (bd, offset, SEEK_DATA, data);
}

int
bdev_next_hole (struct blockdev *bd, uint64_t offset, uint64_t *hole)
{
    return bdev_seek (bd, offset, SEEK_HOLE, hole);
}

uint64_t
bdev_allocated (struct blockdev *bd)
{
    struct stat st;

    if (bd->fd == -1 || bd->is_block || fstat (bd->fd, &st) == -1) {
        return 0;
    }
    return (uint64_t) st.st_blocks * 512;
}

void
bdev_readahead (struct blockdev *bd, uint64_t offset, uint64_t count)
{
    if (bd->fd != -1) {
        posix_fadvise (bd->fd, (off_t) offset, (off_t) count,
                       POSIX_FADV_WILLNEED);
    }
}

void
bdev_close (struct blockdev *bd)
{
    if (bd == NULL) {
        return;
    }
    if (bd->fd != -1) {
        close (bd->fd);
    }
    free (bd->name);
    free (bd);
}
