/* SPDX-License-Identifier: MIT */
/*
 * Disk images: the format registry and the one ops table every format fills.
 *
 * An image is a virtual disk of `size` bytes stored in a container (a
 * blockdev) by a format.  Opening probes the format from the content (never
 * from the file name), lets the format parse and validate its metadata, then
 * opens the backing chain the format named.  Reading goes through
 * image_pread() and image_block_status(), which resolve backing files.
 *
 * Writing is only ever to a new image made by image_create(), and it is
 * sequential: image_pwrite() calls come with increasing offsets, each range
 * aligned to img->write_align (except the tail of the disk), never
 * overlapping, and ranges never written read as zeros.  That is exactly what
 * the copy engine and the network receiver produce, and it lets every writer
 * (including VMDK streamOptimized, which can only be written in order) stream
 * its metadata out with bounded memory.  image_finish() writes the final
 * metadata; an image closed without finishing is incomplete.
 *
 * An image is used by one thread at a time.
 */
#ifndef VMC_IMAGE_H
#define VMC_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev.h"
#include "options.h"

struct image;
struct check_result;

/* What a range of an image holds. */
enum extent_type {
    EXTENT_DATA,        /* allocated; read it (it may still hold zeros) */
    EXTENT_ZERO,        /* reads as zeros: a zero cluster, or a hole */
    EXTENT_UNALLOCATED, /* only from a format: not in this layer, look in
                         * the backing file (zeros if none) */
};

struct extent {
    uint64_t offset;
    uint64_t length;
    enum extent_type type;
};

/* What the first bytes of a file look like, for probing. */
struct probe_data {
    const unsigned char *head;  /* the first head_len bytes */
    size_t head_len;            /* min (64 KiB, file size) */
    const unsigned char *tail;  /* the last tail_len bytes */
    size_t tail_len;            /* min (512, file size) */
    uint64_t file_size;
};

/* What image_create() passes to a format's create(). */
struct create_params {
    uint64_t size;                  /* virtual size requested */
    bool compress;                  /* convert -c */
    const struct options *opts;     /* -o, already checked against
                                     * create_opts */
};

struct image_format {
    const char *name;           /* "qcow2" */
    const char *alias;          /* another accepted name ("vpc"), or NULL */
    const char *description;    /* one line, for --help */
    size_t priv_size;           /* zeroed state the core allocates for
                                 * img->priv */

    /* Score 0-100 for how sure this is the format; pure, no I/O.  Raw
     * answers 1 to everything, so any real signature wins. */
    int (*probe) (const struct probe_data *p);

    /* Parse and validate all metadata through img->file.  Must set
     * img->size, and may set img->subformat, img->cluster_size,
     * img->backing_name (+ backing_format) and image_info_add() lines.
     * May open further files (extents, parents) with image_open_file().
     * On error, return -1 with a message; close() is still called. */
    int (*open) (struct image *img);

    /* Free what open/create allocated in img->priv (not priv itself).
     * Must cope with a half-done open or create.  May be NULL. */
    void (*close) (struct image *img);

    /* Read guest data.  The core guarantees the range is inside img->size.
     * Ranges not allocated in this layer are read with
     * image_read_backing(). */
    int (*pread) (struct image *img, void *buf, size_t count,
                  uint64_t offset);

    /* Describe the range starting at OFFSET: set ext->length (1..count) and
     * ext->type.  Longer answers are better (fewer calls).  NULL means
     * "everything is data". */
    int (*block_status) (struct image *img, uint64_t offset, uint64_t count,
                         struct extent *ext);

    /* Deeper consistency check than open (refcounts, overlaps, leaks);
     * report with check_error()/check_leak().  Return -1 only when the
     * check itself could not run.  NULL: the core reads every extent's
     * block status, which visits all mapping metadata. */
    int (*check) (struct image *img, struct check_result *res);

    /* Creation options accepted (NULL-terminated), for -o and -o help. */
    const struct create_option *create_opts;

    /* Start a new image in img->file (already created, empty).  Must set
     * img->size (which may differ from p->size where the format rounds)
     * and img->write_align.  NULL: the format cannot be written. */
    int (*create) (struct image *img, const struct create_params *p);

    /* Write guest data; see the sequential contract above. */
    int (*pwrite) (struct image *img, const void *buf, size_t count,
                   uint64_t offset);

    /* Write the final metadata after the last pwrite.  May be NULL. */
    int (*finish) (struct image *img);

    /* Resumable writing (the network receiver: a killed receiver resumes
     * where its last checkpoint was).  Both NULL: not resumable.
     *
     * checkpoint: everything written so far must become recoverable from
     * the file plus a small state: write the metadata that maps the data
     * written so far to the file (in place, or anywhere resume() will find
     * it), and put what resume() needs (at most IMAGE_STATE_MAX - 64
     * bytes) into STATE, setting *LEN.  The core then flushes the file;
     * only after that is the state saved by the caller.  Writing goes on
     * after a checkpoint as if there had been none.
     *
     * resume: IMG is open on the partial file (writable, not truncated),
     * img->write_pos is the checkpoint's position, and P are the create
     * parameters of the first start.  Rebuild the writer's state from
     * STATE and the file, so that writing continues at write_pos.  The
     * file may hold anything written after the checkpoint (the receiver
     * died later): data and metadata beyond the checkpoint must be ignored
     * or truncated, and metadata rewritten in place after the checkpoint
     * must not be trusted beyond what STATE says.  Must set img->size,
     * img->write_align (as create did). */
    int (*checkpoint) (struct image *img, void *state, size_t *len);
    int (*resume) (struct image *img, const struct create_params *p,
                   const void *state, size_t len);
};

/* Room for a checkpoint's state, core header included. */
#define IMAGE_STATE_MAX 4096

#define IMAGE_INFO_MAX 24

struct image_info_line {
    char key[32];
    char value[224];
};

struct image_file {
    struct blockdev *bd;
    struct image_file *next;
};

struct image {
    const struct image_format *fmt;
    struct blockdev *file;      /* the container */
    char *filename;
    uint64_t size;              /* virtual size in bytes */
    void *priv;                 /* the format's state (priv_size bytes) */

    struct image *backing;      /* NULL when none */
    char *backing_name;         /* as stored in the image, set by open */
    char *backing_format;       /* as stored in the image, or NULL */
    unsigned depth;             /* 0 for the top of a chain */

    char subformat[48];         /* "streamOptimized", "dynamic", ... */
    uint64_t cluster_size;      /* allocation unit, 0 if none */
    struct image_info_line info[IMAGE_INFO_MAX];
    unsigned info_count;

    struct image_file *files;   /* further files opened by the format */

    /* Writing. */
    bool writable;
    uint32_t write_align;       /* set by create */
    uint64_t write_pos;         /* end of the last write */
    bool finished;
};

/* Flags for image_open. */
#define IMAGE_OPEN_NO_BACKING 1 /* do not open the backing chain */

/* Find a format by name or alias; NULL with a message if unknown. */
const struct image_format *image_format_by_name (const char *name);

/* All formats, NULL-terminated, in registry order. */
const struct image_format *const *image_formats (void);

/* Open FILENAME read-only.  FORMAT NULL means probe.  Block devices are
 * read as raw unless FORMAT says otherwise: their content belongs to a
 * guest, which must not be able to make us follow a backing file it wrote. */
struct image *image_open (const char *filename, const char *format,
                          unsigned flags);

/* Open an image from memory (fuzzing); the buffer must outlive it. */
struct image *image_open_memory (const void *buf, size_t len,
                                 const char *format, unsigned flags);

/* Read COUNT bytes of guest data at OFFSET (must be inside img->size). */
int image_pread (struct image *img, void *buf, size_t count, uint64_t offset);

/* Describe the range at OFFSET through the whole chain: EXTENT_DATA or
 * EXTENT_ZERO, ext->length in 1..count.  count must be > 0 and the range
 * inside img->size. */
int image_block_status (struct image *img, uint64_t offset, uint64_t count,
                        struct extent *ext);

/* For formats: read a range this layer does not hold from the backing
 * chain, or zeros if there is none (or beyond its end). */
int image_read_backing (struct image *img, void *buf, size_t count,
                        uint64_t offset);

/* For formats: open a further file named in the metadata (relative names
 * are taken from the image's directory).  The core closes it. */
struct blockdev *image_open_file (struct image *img, const char *name);

/* For formats: add a "key: value" line to what info shows. */
void image_info_add (struct image *img, const char *key, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* For formats: a checked allocation for metadata-sized tables.  Refuses
 * (with a message naming WHAT) when n * size overflows or exceeds CAP. */
void *image_alloc_table (struct image *img, const char *what, uint64_t n,
                         size_t size, uint64_t cap);

/* Bytes of the container(s) actually allocated on the host. */
uint64_t image_allocated (struct image *img);

/* True if the image or any file of its chain is the file (dev, ino). */
bool image_uses_file (struct image *img, dev_t dev, ino_t ino);

/* Create FILENAME as a new image of FORMAT. */
struct image *image_create (const char *filename, const char *format,
                            const struct create_params *p);

/* Write guest data (sequential contract above). */
int image_pwrite (struct image *img, const void *buf, size_t count,
                  uint64_t offset);

/* Write the final metadata; optionally make it durable. */
int image_finish (struct image *img, bool sync);

/* Checkpoint a writable image at guest position POS (see the ops table):
 * everything below POS has been written or is zeros, POS is aligned to
 * write_align (or the end), and no later write will go below it.  On
 * return, the data and the metadata mapping it are durable in the file, and
 * STATE (IMAGE_STATE_MAX bytes) holds *LEN bytes from which
 * image_resume() continues at POS.  -1 if the format cannot resume. */
int image_checkpoint (struct image *img, uint64_t pos, void *state,
                      size_t *len);

/* Reopen FILENAME, a partial image of FORMAT made by image_create() with
 * P and checkpointed into STATE, to continue writing where the checkpoint
 * was.  The file is not truncated by the core. */
struct image *image_resume (const char *filename, const char *format,
                            const struct create_params *p, const void *state,
                            size_t len);

/* Consistency check.  Returns 0 when it ran (results in RES), -1 when it
 * could not. */
int image_check (struct image *img, struct check_result *res);

/* Close the image and its backing chain; NULL is fine. */
void image_close (struct image *img);

/* Consistency check results. */
struct check_result {
    uint64_t errors;            /* corruptions found */
    uint64_t leaks;             /* allocated but unused (harmless) */
    void (*report) (void *opaque, bool is_error, const char *msg);
    void *opaque;
};

void check_error (struct check_result *res, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
void check_leak (struct check_result *res, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
