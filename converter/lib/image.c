/* SPDX-License-Identifier: MIT */
/*
 * The image core: registry, probing, backing chains, and the checks that
 * every call into a format passes first; see image.h.
 *
 * The core does everything a format would otherwise repeat: it clips and
 * validates ranges before calling pread/block_status, resolves unallocated
 * ranges through the backing chain, refuses chains that loop or run too
 * deep, enforces the sequential write contract, and fills in defaults for
 * the optional operations.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byteorder.h"
#include "checked-overflow.h"
#include "error.h"
#include "image.h"
#include "rounding.h"

/* The registry: one line per format in formats/formats.h. */
#define FORMAT(n) extern const struct image_format format_##n;
#include "../formats/formats.h"
#undef FORMAT

static const struct image_format *const registry[] = {
#define FORMAT(n) &format_##n,
#include "../formats/formats.h"
#undef FORMAT
    NULL
};

/* Deeper chains than this are refused: no real image needs them, and a
 * hostile chain must not exhaust file descriptors or stack. */
#define MAX_CHAIN_DEPTH 64

#define PROBE_HEAD 65536
#define PROBE_TAIL 512

const struct image_format *const *
image_formats (void)
{
    return registry;
}

const struct image_format *
image_format_by_name (const char *name)
{
    const struct image_format *const *f;

    for (f = registry; *f != NULL; f++) {
        if (strcmp ((*f)->name, name) == 0 ||
            ((*f)->alias != NULL && strcmp ((*f)->alias, name) == 0)) {
            return *f;
        }
    }
    vmc_error ("unknown image format \"%s\"", name);
    return NULL;
}

static const struct image_format *
probe (struct blockdev *bd)
{
    unsigned char *head = NULL, tail[PROBE_TAIL];
    const struct image_format *const *f, *best = NULL;
    struct probe_data p;
    int score, best_score = -1;

    p.file_size = bd->size;
    p.head_len = bd->size < PROBE_HEAD ? (size_t) bd->size : PROBE_HEAD;
    p.tail_len = bd->size < PROBE_TAIL ? (size_t) bd->size : PROBE_TAIL;
    head = malloc (p.head_len > 0 ? p.head_len : 1);
    if (head == NULL) {
        vmc_perror ("malloc");
        return NULL;
    }
    if (bdev_pread (bd, head, p.head_len, 0) == -1 ||
        bdev_pread (bd, tail, p.tail_len, bd->size - p.tail_len) == -1) {
        free (head);
        return NULL;
    }
    p.head = head;
    p.tail = tail;
    for (f = registry; *f != NULL; f++) {
        score = (*f)->probe != NULL ? (*f)->probe (&p) : 0;
        if (score > best_score) {
            best_score = score;
            best = *f;
        }
    }
    free (head);
    if (best == NULL || best_score <= 0) {
        vmc_error ("%s: unknown image format", bd->name);
        return NULL;
    }
    return best;
}

/* Does IMG itself (not its backing) use the file (dev, ino)? */
static bool
image_owns_file (const struct image *img, dev_t dev, ino_t ino)
{
    const struct image_file *f;

    if (img->file != NULL && img->file->fd != -1 &&
        img->file->dev == dev && img->file->ino == ino) {
        return true;
    }
    for (f = img->files; f != NULL; f = f->next) {
        if (f->bd->fd != -1 && f->bd->dev == dev && f->bd->ino == ino) {
            return true;
        }
    }
    return false;
}

bool
image_uses_file (struct image *img, dev_t dev, ino_t ino)
{
    for (; img != NULL; img = img->backing) {
        if (image_owns_file (img, dev, ino)) {
            return true;
        }
    }
    return false;
}

static struct image *
image_new (const struct image_format *fmt, struct blockdev *bd,
           const char *filename)
{
    struct image *img;

    img = calloc (1, sizeof *img);
    if (img == NULL) {
        vmc_perror ("calloc");
        return NULL;
    }
    img->fmt = fmt;
    img->file = bd;
    img->filename = strdup (filename);
    if (img->filename == NULL ||
        (fmt->priv_size > 0 &&
         (img->priv = calloc (1, fmt->priv_size)) == NULL)) {
        vmc_perror ("calloc");
        free (img->filename);
        free (img);
        return NULL;
    }
    return img;
}

/* Free one layer (not its backing).  The blockdev is closed too. */
static void
image_free_layer (struct image *img)
{
    struct image_file *f, *next;

    if (img->fmt->close != NULL) {
        img->fmt->close (img);
    }
    for (f = img->files; f != NULL; f = next) {
        next = f->next;
        bdev_close (f->bd);
        free (f);
    }
    bdev_close (img->file);
    free (img->priv);
    free (img->filename);
    free (img->backing_name);
    free (img->backing_format);
    free (img);
}

static int open_backing (struct image *img, struct image *const *chain,
                         unsigned flags);

/* Open the image in BD (ownership passes in).  CHAIN holds the images
 * above this one (depth entries), for loop detection. */
static struct image *
open_layer (struct blockdev *bd, const char *filename, const char *format,
            unsigned flags, struct image *const *chain, unsigned depth)
{
    const struct image_format *fmt;
    struct image *img;
    unsigned i;

    for (i = 0; i < depth; i++) {
        if (bd->fd != -1 && image_owns_file (chain[i], bd->dev, bd->ino)) {
            vmc_error ("%s: backing chain loops back to %s", filename,
                       chain[i]->filename);
            bdev_close (bd);
            return NULL;
        }
    }
    if (format != NULL) {
        fmt = image_format_by_name (format);
    }
    else if (bd->is_block) {
        fmt = image_format_by_name ("raw");
    }
    else {
        fmt = probe (bd);
    }
    if (fmt == NULL) {
        bdev_close (bd);
        return NULL;
    }
    img = image_new (fmt, bd, filename);
    if (img == NULL) {
        bdev_close (bd);
        return NULL;
    }
    img->depth = depth;
    if (fmt->open (img) == -1) {
        image_free_layer (img);
        return NULL;
    }
    if (img->backing_name != NULL && !(flags & IMAGE_OPEN_NO_BACKING)) {
        struct image *above[MAX_CHAIN_DEPTH + 1];

        for (i = 0; i < depth; i++) {
            above[i] = chain[i];
        }
        above[depth] = img;
        if (open_backing (img, above, flags) == -1) {
            image_free_layer (img);
            return NULL;
        }
    }
    return img;
}

static int
open_backing (struct image *img, struct image *const *chain, unsigned flags)
{
    struct blockdev *bd;
    unsigned depth = img->depth + 1;

    if (depth > MAX_CHAIN_DEPTH) {
        vmc_error ("%s: backing chain is deeper than %d images",
                   img->filename, MAX_CHAIN_DEPTH);
        return -1;
    }
    bd = bdev_open_relative (img->file, img->backing_name);
    if (bd == NULL) {
        vmc_error_prefix ("%s: cannot open backing file", img->filename);
        return -1;
    }
    img->backing = open_layer (bd, bd->name, img->backing_format, flags,
                               chain, depth);
    if (img->backing == NULL) {
        return -1;
    }
    return 0;
}

struct image *
image_open (const char *filename, const char *format, unsigned flags)
{
    struct blockdev *bd;

    bd = bdev_open (filename);
    if (bd == NULL) {
        return NULL;
    }
    return open_layer (bd, filename, format, flags, NULL, 0);
}

struct image *
image_open_memory (const void *buf, size_t len, const char *format,
                   unsigned flags)
{
    struct blockdev *bd;

    bd = bdev_open_memory (buf, len, "memory");
    if (bd == NULL) {
        return NULL;
    }
    return open_layer (bd, "memory", format, flags, NULL, 0);
}

static int
check_range (struct image *img, uint64_t offset, uint64_t count)
{
    if (range_outside (offset, count, img->size)) {
        vmc_error ("%s: internal error: access of %" PRIu64 " bytes at %"
                   PRIu64 " is outside the virtual size %" PRIu64,
                   img->filename, count, offset, img->size);
        return -1;
    }
    return 0;
}

int
image_pread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    if (count == 0) {
        return 0;
    }
    if (check_range (img, offset, count) == -1) {
        return -1;
    }
    return img->fmt->pread (img, buf, count, offset);
}

int
image_read_backing (struct image *img, void *buf, size_t count,
                    uint64_t offset)
{
    struct image *b = img->backing;
    size_t n = 0;

    if (b != NULL && offset < b->size) {
        n = (size_t) MIN ((uint64_t) count, b->size - offset);
        if (image_pread (b, buf, n, offset) == -1) {
            return -1;
        }
    }
    memset ((char *) buf + n, 0, count - n);
    return 0;
}

int
image_block_status (struct image *img, uint64_t offset, uint64_t count,
                    struct extent *ext)
{
    if (count == 0 || check_range (img, offset, count) == -1) {
        if (count == 0) {
            vmc_error ("%s: internal error: empty block status", img->filename);
        }
        return -1;
    }
    ext->offset = offset;
    if (img->fmt->block_status == NULL) {
        ext->length = count;
        ext->type = EXTENT_DATA;
        return 0;
    }
    if (img->fmt->block_status (img, offset, count, ext) == -1) {
        return -1;
    }
    ext->offset = offset;
    if (ext->length == 0 || ext->length > count ||
        ext->type > EXTENT_UNALLOCATED) {
        vmc_error ("%s: internal error: %s block status returned %" PRIu64
                   " bytes for a %" PRIu64 " byte query", img->filename,
                   img->fmt->name, ext->length, count);
        return -1;
    }
    if (ext->type == EXTENT_UNALLOCATED) {
        struct image *b = img->backing;

        if (b != NULL && offset < b->size) {
            return image_block_status (b, offset,
                                       MIN (ext->length, b->size - offset),
                                       ext);
        }
        ext->type = EXTENT_ZERO;
    }
    return 0;
}

struct blockdev *
image_open_file (struct image *img, const char *name)
{
    struct image_file *f;
    struct blockdev *bd;

    bd = bdev_open_relative (img->file, name);
    if (bd == NULL) {
        return NULL;
    }
    f = malloc (sizeof *f);
    if (f == NULL) {
        vmc_perror ("malloc");
        bdev_close (bd);
        return NULL;
    }
    f->bd = bd;
    f->next = img->files;
    img->files = f;
    return bd;
}

void
image_info_add (struct image *img, const char *key, const char *fmt, ...)
{
    struct image_info_line *l;
    va_list ap;

    if (img->info_count >= IMAGE_INFO_MAX) {
        return;
    }
    l = &img->info[img->info_count++];
    snprintf (l->key, sizeof l->key, "%s", key);
    va_start (ap, fmt);
    vsnprintf (l->value, sizeof l->value, fmt, ap);
    va_end (ap);
}

void *
image_alloc_table (struct image *img, const char *what, uint64_t n,
                   size_t size, uint64_t cap)
{
    uint64_t bytes;
    void *p;

    if (ckd_mul (&bytes, n, (uint64_t) size) || bytes > cap) {
        vmc_error ("%s: %s: %s of %" PRIu64 " entries is too large "
                   "(limit %" PRIu64 " bytes)", img->filename, img->fmt->name,
                   what, n, cap);
        return NULL;
    }
    p = calloc (bytes > 0 ? bytes : 1, 1);
    if (p == NULL) {
        vmc_perror ("%s: %s: %s", img->filename, img->fmt->name, what);
    }
    return p;
}

uint64_t
image_allocated (struct image *img)
{
    const struct image_file *f;
    uint64_t total = bdev_allocated (img->file);

    for (f = img->files; f != NULL; f = f->next) {
        total += bdev_allocated (f->bd);
    }
    return total;
}

struct image *
image_create (const char *filename, const char *format,
              const struct create_params *p)
{
    const struct image_format *fmt;
    struct blockdev *bd;
    struct image *img;
    struct options none = { 0 };
    bool is_block;

    fmt = image_format_by_name (format);
    if (fmt == NULL) {
        return NULL;
    }
    if (fmt->create == NULL || fmt->pwrite == NULL) {
        vmc_error ("%s: writing this format is not supported", fmt->name);
        return NULL;
    }
    if (options_check (p->opts != NULL ? p->opts : &none, fmt->create_opts,
                       fmt->name) == -1) {
        return NULL;
    }
    bd = bdev_create (filename);
    if (bd == NULL) {
        return NULL;
    }
    img = image_new (fmt, bd, filename);
    if (img == NULL) {
        bdev_close (bd);
        return NULL;
    }
    img->writable = true;
    if (fmt->create (img, p) == -1) {
        vmc_error_prefix ("%s", filename);
        goto fail;
    }
    if (img->write_align == 0 || !is_power_of_2 (img->write_align)) {
        vmc_error ("%s: internal error: write alignment %" PRIu32,
                   fmt->name, img->write_align);
        goto fail;
    }
    return img;

fail:
    /* Do not leave an empty or half-made file behind (a device stays). */
    is_block = bd->is_block;
    image_free_layer (img);
    if (!is_block) {
        unlink (filename);
    }
    return NULL;
}

int
image_pwrite (struct image *img, const void *buf, size_t count,
              uint64_t offset)
{
    if (!img->writable || img->finished) {
        vmc_error ("%s: internal error: image is not open for writing",
                   img->filename);
        return -1;
    }
    if (count == 0) {
        return 0;
    }
    if (check_range (img, offset, count) == -1) {
        return -1;
    }
    if (offset < img->write_pos || !IS_ALIGNED (offset, img->write_align) ||
        (!IS_ALIGNED ((uint64_t) count, img->write_align) &&
         offset + count != img->size)) {
        vmc_error ("%s: internal error: write of %zu bytes at %" PRIu64
                   " breaks the sequential write contract", img->filename,
                   count, offset);
        return -1;
    }
    if (img->fmt->pwrite (img, buf, count, offset) == -1) {
        return -1;
    }
    img->write_pos = offset + count;
    return 0;
}

int
image_finish (struct image *img, bool sync)
{
    const struct image_file *f;

    if (!img->writable || img->finished) {
        vmc_error ("%s: internal error: finish twice", img->filename);
        return -1;
    }
    if (img->fmt->finish != NULL && img->fmt->finish (img) == -1) {
        return -1;
    }
    if (sync) {
        if (bdev_flush (img->file) == -1) {
            return -1;
        }
        for (f = img->files; f != NULL; f = f->next) {
            if (bdev_flush (f->bd) == -1) {
                return -1;
            }
        }
    }
    img->finished = true;
    return 0;
}

/* The core's part of a checkpoint state, in front of the format's. */
#define STATE_MAGIC "VMCIMGS1"
#define STATE_HEADER 64

int
image_checkpoint (struct image *img, uint64_t pos, void *state, size_t *len)
{
    unsigned char *p = state;
    size_t flen = 0;

    if (!img->writable || img->finished) {
        vmc_error ("%s: internal error: checkpoint of an image not being "
                   "written", img->filename);
        return -1;
    }
    if (img->fmt->checkpoint == NULL) {
        vmc_error ("%s: writing %s cannot be resumed", img->filename,
                   img->fmt->name);
        return -1;
    }
    if (pos < img->write_pos || pos > img->size ||
        (!IS_ALIGNED (pos, img->write_align) && pos != img->size)) {
        vmc_error ("%s: internal error: checkpoint at %" PRIu64 " (last "
                   "write ended at %" PRIu64 ")", img->filename, pos,
                   img->write_pos);
        return -1;
    }
    /* Nothing will be written below POS any more: the skipped range up
     * to it is part of what the checkpoint covers. */
    img->write_pos = pos;
    memset (p, 0, STATE_HEADER);
    if (img->fmt->checkpoint (img, p + STATE_HEADER, &flen) == -1) {
        return -1;
    }
    if (flen > IMAGE_STATE_MAX - STATE_HEADER) {
        vmc_error ("%s: internal error: %s checkpoint state of %zu bytes",
                   img->filename, img->fmt->name, flen);
        return -1;
    }
    if (bdev_flush (img->file) == -1) {
        return -1;
    }
    memcpy (p, STATE_MAGIC, 8);
    snprintf ((char *) p + 8, 16, "%s", img->fmt->name);
    put_le64 (p + 24, img->write_pos);
    put_le64 (p + 32, img->size);
    put_le32 (p + 40, img->write_align);
    put_le32 (p + 44, (uint32_t) flen);
    *len = STATE_HEADER + flen;
    return 0;
}

struct image *
image_resume (const char *filename, const char *format,
              const struct create_params *p, const void *state, size_t len)
{
    const unsigned char *s = state;
    const struct image_format *fmt;
    struct blockdev *bd;
    struct image *img;
    uint64_t pos, size;
    uint32_t align, flen;

    fmt = image_format_by_name (format);
    if (fmt == NULL) {
        return NULL;
    }
    if (len < STATE_HEADER || memcmp (s, STATE_MAGIC, 8) != 0 ||
        strncmp ((const char *) s + 8, fmt->name, 16) != 0) {
        vmc_error ("%s: the checkpoint state is not for a %s image",
                   filename, fmt->name);
        return NULL;
    }
    pos = get_le64 (s + 24);
    size = get_le64 (s + 32);
    align = get_le32 (s + 40);
    flen = get_le32 (s + 44);
    if (flen != len - STATE_HEADER || pos > size || fmt->resume == NULL) {
        vmc_error ("%s: the checkpoint state is damaged", filename);
        return NULL;
    }
    bd = bdev_reopen_output (filename);
    if (bd == NULL) {
        return NULL;
    }
    if (bd->is_block) {
        /* A device has no end to truncate to, so what was written after
         * the checkpoint could not be told from data. */
        vmc_error ("%s: resuming onto a block device is not supported",
                   filename);
        bdev_close (bd);
        return NULL;
    }
    img = image_new (fmt, bd, filename);
    if (img == NULL) {
        bdev_close (bd);
        return NULL;
    }
    img->writable = true;
    img->write_pos = pos;
    if (fmt->resume (img, p, s + STATE_HEADER, flen) == -1) {
        vmc_error_prefix ("%s: cannot resume", filename);
        image_free_layer (img);
        return NULL;
    }
    if (img->size != size || img->write_align != align) {
        vmc_error ("%s: cannot resume: the image parameters changed",
                   filename);
        image_free_layer (img);
        return NULL;
    }
    return img;
}

void
check_error (struct check_result *res, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    res->errors++;
    if (res->report != NULL) {
        res->report (res->opaque, true, msg);
    }
}

void
check_leak (struct check_result *res, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    res->leaks++;
    if (res->report != NULL) {
        res->report (res->opaque, false, msg);
    }
}

int
image_check (struct image *img, struct check_result *res)
{
    struct extent ext;
    uint64_t off;

    if (img->fmt->check != NULL) {
        return img->fmt->check (img, res);
    }
    /* The default check visits every mapping entry through block status;
     * the formats validate each entry as they decode it. */
    for (off = 0; off < img->size; off += ext.length) {
        if (image_block_status (img, off, img->size - off, &ext) == -1) {
            check_error (res, "%s", vmc_get_error ());
            return 0;
        }
    }
    return 0;
}

void
image_close (struct image *img)
{
    struct image *next;

    while (img != NULL) {
        next = img->backing;
        image_free_layer (img);
        img = next;
    }
}
