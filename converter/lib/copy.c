/* SPDX-License-Identifier: MIT */
/*
 * The copy engine and image comparison; see copy.h.
 *
 * Threads: the reader thread walks the source by block status and reads
 * data windows of up to CHUNK bytes into a free ring slot (zero extents
 * take a slot without data).  The calling thread takes filled slots in
 * order and hands them to a sink (sink.h), which skips zero granules and
 * keeps the writes within the sequential write contract.  An error on
 * either side stops both; the first message wins.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "error.h"
#include "iszero.h"
#include "rounding.h"
#include "sink.h"
#include "../part/map.h"

#define CHUNK (2u << 20)
#define NSLOTS 4
struct slot {
    uint64_t offset;            /* window start in the guest */
    uint64_t len;               /* window length (zero windows may be long) */
    bool zero;                  /* a zero extent: no data in buf */
    unsigned char *buf;
};

struct copy {
    struct image *src, *dst;
    uint64_t size;              /* bytes to copy */
    const struct rangeset *used;    /* the disk map, or NULL */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct slot slots[NSLOTS];
    unsigned head, tail;        /* filled slots are [tail, head) mod NSLOTS */
    unsigned filled;
    bool done;                  /* reader finished */
    bool failed;
    char error[1024];

    uint64_t data_read;
};

static void
copy_fail (struct copy *c)
{
    pthread_mutex_lock (&c->lock);
    if (!c->failed) {
        c->failed = true;
        strncpy (c->error, vmc_get_error (), sizeof c->error - 1);
    }
    pthread_cond_broadcast (&c->cond);
    pthread_mutex_unlock (&c->lock);
}

/* Fill BUF with guest bytes [offset, offset+len) of SRC, using *cur (the
 * extent last seen) to avoid repeated block status queries. */
static int
read_window (struct image *src, const struct rangeset *used,
             unsigned char *buf, uint64_t offset, uint64_t len,
             struct extent *cur, uint64_t *data_read)
{
    uint64_t pos = offset, end = offset + len, n;

    while (pos < end) {
        if (!(cur->offset <= pos && pos < cur->offset + cur->length)) {
            if (map_block_status (src, used, pos, src->size - pos,
                                  cur) == -1) {
                return -1;
            }
        }
        n = MIN (end, cur->offset + cur->length) - pos;
        if (cur->type == EXTENT_DATA) {
            if (image_pread (src, buf + (pos - offset), n, pos) == -1) {
                return -1;
            }
            *data_read += n;
        }
        else {
            memset (buf + (pos - offset), 0, n);
        }
        pos += n;
    }
    return 0;
}

/* Wait for a free slot; NULL when the copy failed meanwhile. */
static struct slot *
get_free_slot (struct copy *c)
{
    struct slot *s = NULL;

    pthread_mutex_lock (&c->lock);
    while (c->filled == NSLOTS && !c->failed) {
        pthread_cond_wait (&c->cond, &c->lock);
    }
    if (!c->failed) {
        s = &c->slots[c->head];
    }
    pthread_mutex_unlock (&c->lock);
    return s;
}

static void
put_filled_slot (struct copy *c)
{
    pthread_mutex_lock (&c->lock);
    c->head = (c->head + 1) % NSLOTS;
    c->filled++;
    pthread_cond_broadcast (&c->cond);
    pthread_mutex_unlock (&c->lock);
}

static void *
reader_thread (void *arg)
{
    struct copy *c = arg;
    struct extent cur = { 0, 0, EXTENT_DATA };
    uint64_t off = 0;
    struct slot *s;

    while (off < c->size) {
        if (!(cur.offset <= off && off < cur.offset + cur.length)) {
            if (map_block_status (c->src, c->used, off, c->src->size - off,
                                  &cur) == -1) {
                goto fail;
            }
        }
        s = get_free_slot (c);
        if (s == NULL) {
            return NULL;
        }
        s->offset = off;
        if (cur.type != EXTENT_DATA) {
            /* A zero extent, however long, takes one slot and no data. */
            s->zero = true;
            s->len = MIN (cur.offset + cur.length, c->size) - off;
        }
        else {
            /* A data window: up to CHUNK bytes, ending on a chunk
             * boundary so that reads stay aligned after a zero extent. */
            s->zero = false;
            s->len = MIN (c->size, ROUND_DOWN (off, CHUNK) + CHUNK) - off;
            if (read_window (c->src, c->used, s->buf, off, s->len, &cur,
                             &c->data_read) == -1) {
                goto fail;
            }
        }
        put_filled_slot (c);
        off += s->len;
    }
    pthread_mutex_lock (&c->lock);
    c->done = true;
    pthread_cond_broadcast (&c->cond);
    pthread_mutex_unlock (&c->lock);
    return NULL;

fail:
    copy_fail (c);
    return NULL;
}

int
vmc_copy (struct image *src, struct image *dst, const struct copy_params *p,
          struct copy_stats *stats)
{
    struct sink *sink = NULL;
    struct copy *c;
    pthread_t reader;
    uint64_t done_bytes;
    unsigned i;
    int r = -1, err;
    struct slot *s;

    if (dst->size < src->size) {
        vmc_error ("%s: the destination (%" PRIu64 " bytes) is smaller than "
                   "the source (%" PRIu64 " bytes)", dst->filename, dst->size,
                   src->size);
        return -1;
    }
    c = calloc (1, sizeof *c);
    if (c == NULL) {
        vmc_perror ("calloc");
        return -1;
    }
    c->src = src;
    c->dst = dst;
    c->size = src->size;
    c->used = p != NULL ? p->used : NULL;
    pthread_mutex_init (&c->lock, NULL);
    pthread_cond_init (&c->cond, NULL);
    sink = sink_new (dst);
    if (sink == NULL) {
        goto out;
    }
    for (i = 0; i < NSLOTS; i++) {
        c->slots[i].buf = aligned_alloc (4096, CHUNK);
        if (c->slots[i].buf == NULL) {
            vmc_perror ("aligned_alloc");
            goto out;
        }
    }
    err = pthread_create (&reader, NULL, reader_thread, c);
    if (err != 0) {
        errno = err;
        vmc_perror ("pthread_create");
        goto out;
    }

    for (;;) {
        pthread_mutex_lock (&c->lock);
        while (c->filled == 0 && !c->done && !c->failed) {
            pthread_cond_wait (&c->cond, &c->lock);
        }
        if (c->failed || (c->filled == 0 && c->done)) {
            pthread_mutex_unlock (&c->lock);
            break;
        }
        s = &c->slots[c->tail];
        pthread_mutex_unlock (&c->lock);

        if ((s->zero ? sink_zero (sink, s->len)
                     : sink_data (sink, s->buf, (size_t) s->len)) == -1) {
            copy_fail (c);
        }
        done_bytes = s->offset + s->len;

        pthread_mutex_lock (&c->lock);
        c->tail = (c->tail + 1) % NSLOTS;
        c->filled--;
        pthread_cond_broadcast (&c->cond);
        pthread_mutex_unlock (&c->lock);

        if (p != NULL && p->progress != NULL) {
            p->progress (p->opaque, done_bytes, c->size);
        }
    }
    pthread_join (reader, NULL);
    if (c->failed) {
        vmc_set_error_string (c->error);
        goto out;
    }
    if (sink_flush_tail (sink) == -1 ||
        image_finish (dst, p != NULL && p->sync) == -1) {
        goto out;
    }
    if (stats != NULL) {
        stats->data_read = c->data_read;
        stats->data_written = sink_bytes_written (sink);
    }
    r = 0;
out:
    sink_free (sink);
    for (i = 0; i < NSLOTS; i++) {
        free (c->slots[i].buf);
    }
    pthread_mutex_destroy (&c->lock);
    pthread_cond_destroy (&c->cond);
    free (c);
    return r;
}

/* Compare [off, off+len) of A and B, both inside their sizes. */
static int
compare_range (struct image *a, struct image *b, uint64_t off, uint64_t len,
               unsigned char *ba, unsigned char *bb, uint64_t *diff)
{
    struct extent ea, eb;
    uint64_t n, end = off + len;
    size_t i;

    while (off < end) {
        if (image_block_status (a, off, end - off, &ea) == -1 ||
            image_block_status (b, off, end - off, &eb) == -1) {
            return -1;
        }
        n = MIN (MIN (ea.length, eb.length), CHUNK);
        if (ea.type == EXTENT_ZERO && eb.type == EXTENT_ZERO) {
            off += MIN (ea.length, eb.length);
            continue;
        }
        if ((ea.type == EXTENT_ZERO ? (memset (ba, 0, n), 0)
             : image_pread (a, ba, n, off)) == -1 ||
            (eb.type == EXTENT_ZERO ? (memset (bb, 0, n), 0)
             : image_pread (b, bb, n, off)) == -1) {
            return -1;
        }
        if (memcmp (ba, bb, n) != 0) {
            for (i = 0; ba[i] == bb[i]; i++) {
            }
            *diff = off + i;
            return 1;
        }
        off += n;
    }
    return 0;
}

/* Check that [off, size) of IMG reads as zeros. */
static int
check_zero_tail (struct image *img, uint64_t off, unsigned char *buf,
                 uint64_t *diff)
{
    struct extent e;
    uint64_t n;
    size_t i;

    while (off < img->size) {
        if (image_block_status (img, off, img->size - off, &e) == -1) {
            return -1;
        }
        if (e.type == EXTENT_ZERO) {
            off += e.length;
            continue;
        }
        n = MIN (e.length, CHUNK);
        if (image_pread (img, buf, n, off) == -1) {
            return -1;
        }
        if (!is_zero (buf, n)) {
            for (i = 0; buf[i] == 0; i++) {
            }
            *diff = off + i;
            return 1;
        }
        off += n;
    }
    return 0;
}

int
vmc_compare (struct image *a, struct image *b, uint64_t *diff_offset)
{
    unsigned char *ba, *bb;
    uint64_t common = MIN (a->size, b->size);
    int r = -1;

    ba = malloc (CHUNK);
    bb = malloc (CHUNK);
    if (ba == NULL || bb == NULL) {
        vmc_perror ("malloc");
        goto out;
    }
    r = compare_range (a, b, 0, common, ba, bb, diff_offset);
    if (r == 0) {
        r = check_zero_tail (a->size > common ? a : b, common, ba,
                             diff_offset);
    }
out:
    free (ba);
    free (bb);
    return r;
}
