/* SPDX-License-Identifier: MIT */
/*
 * raw: the virtual disk is the file, byte for byte.
 *
 * Read: holes in the file (SEEK_HOLE) are reported as zero extents, so a
 * sparse raw source is not read where it has no data.  Probe: raw matches
 * anything with the lowest score, so it is the fallback.
 *
 * Write: sparse.  The output file is created empty and only data is written;
 * everything skipped stays a hole, and finish() sets the final size.  On a
 * block device the blockdev layer zeroes what was skipped (BLKZEROOUT).
 */
#include <inttypes.h>

#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"

static int
raw_probe (const struct probe_data *p)
{
    (void) p;
    return 1;
}

static int
raw_open (struct image *img)
{
    img->size = img->file->size;
    return 0;
}

static int
raw_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    return bdev_pread (img->file, buf, count, offset);
}

static int
raw_block_status (struct image *img, uint64_t offset, uint64_t count,
                  struct extent *ext)
{
    uint64_t data, hole;

    if (bdev_next_data (img->file, offset, &data) == -1) {
        return -1;
    }
    if (data > offset) {
        ext->type = EXTENT_ZERO;
        ext->length = MIN (data - offset, count);
        return 0;
    }
    if (bdev_next_hole (img->file, offset, &hole) == -1) {
        return -1;
    }
    ext->type = EXTENT_DATA;
    ext->length = hole > offset ? MIN (hole - offset, count) : count;
    return 0;
}

static int
raw_create (struct image *img, const struct create_params *p)
{
    if (img->file->is_block && p->size > img->file->size) {
        vmc_error ("raw: the device holds %" PRIu64 " bytes, %" PRIu64
                   " are needed", img->file->size, p->size);
        return -1;
    }
    img->size = p->size;
    img->write_align = 512;
    return 0;
}

static int
raw_pwrite (struct image *img, const void *buf, size_t count, uint64_t offset)
{
    return bdev_pwrite (img->file, buf, count, offset);
}

static int
raw_finish (struct image *img)
{
    return bdev_truncate (img->file, img->size);
}

/* Everything raw writes is data at its own offset: nothing to record. */
static int
raw_checkpoint (struct image *img, void *state, size_t *len)
{
    (void) img;
    (void) state;
    *len = 0;
    return 0;
}

/* Whatever was written past the checkpoint is cut off, so that ranges the
 * resumed writer skips read as zeros again. */
static int
raw_resume (struct image *img, const struct create_params *p,
            const void *state, size_t len)
{
    (void) state;
    if (len != 0) {
        vmc_error ("raw: unexpected checkpoint state");
        return -1;
    }
    img->size = p->size;
    img->write_align = 512;
    return bdev_truncate (img->file, img->write_pos);
}

static const struct create_option raw_create_opts[] = {
    { NULL, NULL },
};

const struct image_format format_raw = {
    .name = "raw",
    .description = "raw disk image (sparse when written)",
    .probe = raw_probe,
    .open = raw_open,
    .pread = raw_pread,
    .block_status = raw_block_status,
    .create_opts = raw_create_opts,
    .create = raw_create,
    .pwrite = raw_pwrite,
    .finish = raw_finish,
    .checkpoint = raw_checkpoint,
    .resume = raw_resume,
};
