/* SPDX-License-Identifier: MIT */
/*
 * Sparse sequential writing; see sink.h.
 *
 * Granules are counted from the start of the disk.  A piece that starts or
 * ends inside a granule goes through `pend`, a one-granule buffer; whole
 * granules are scanned and written straight from the caller's buffer, a
 * run of non-zero ones in one image_pwrite.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "iszero.h"
#include "rounding.h"
#include "sink.h"

struct sink {
    struct image *dst;
    uint64_t gran;
    uint64_t pos;               /* guest bytes accepted */
    unsigned char *pend;        /* the granule containing pos, when partial */
    uint64_t written;
    bool flushed;               /* the tail is written: nothing more comes */
};

struct sink *
sink_new (struct image *dst)
{
    struct sink *s;

    s = calloc (1, sizeof *s);
    if (s == NULL) {
        vmc_perror ("calloc");
        return NULL;
    }
    s->dst = dst;
    s->gran = MAX ((uint64_t) dst->write_align, 4096);
    s->pos = dst->write_pos;
    /* Only a checkpoint after the tail was flushed ends inside a granule:
     * resumed there, the source is complete and only finishing remains. */
    s->flushed = !IS_ALIGNED (s->pos, s->gran);
    /* Room past the granule for the tail padding of sink_flush_tail. */
    s->pend = aligned_alloc (4096, ROUND_UP (2 * s->gran, 4096));
    if (s->pend == NULL) {
        vmc_perror ("aligned_alloc");
        free (s);
        return NULL;
    }
    return s;
}

static int
write_run (struct sink *s, const unsigned char *buf, uint64_t len,
           uint64_t offset)
{
    if (image_pwrite (s->dst, buf, (size_t) len, offset) == -1) {
        return -1;
    }
    s->written += len;
    return 0;
}

/* Write the non-zero granules of BUF (LEN bytes of whole granules, or
 * ending at the disk's end) that starts at guest OFFSET. */
static int
write_granules (struct sink *s, const unsigned char *buf, uint64_t len,
                uint64_t offset)
{
    uint64_t g, glen, run_start = 0;
    bool in_run = false;

    for (g = 0; g < len; g += glen) {
        glen = MIN (s->gran, len - g);
        if (!is_zero (buf + g, (size_t) glen)) {
            if (!in_run) {
                run_start = g;
                in_run = true;
            }
            continue;
        }
        if (in_run) {
            if (write_run (s, buf + run_start, g - run_start,
                           offset + run_start) == -1) {
                return -1;
            }
            in_run = false;
        }
    }
    if (in_run) {
        return write_run (s, buf + run_start, len - run_start,
                          offset + run_start);
    }
    return 0;
}

int
sink_data (struct sink *s, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t in_gran, n, whole;

    if (len > s->dst->size - s->pos || (s->flushed && len > 0)) {
        vmc_error ("%s: internal error: data past the end of the disk",
                   s->dst->filename);
        return -1;
    }
    while (len > 0) {
        in_gran = s->pos % s->gran;
        if (in_gran != 0 || len < s->gran) {
            /* Fill the pending granule. */
            n = MIN ((uint64_t) len, s->gran - in_gran);
            memcpy (s->pend + in_gran, p, (size_t) n);
            s->pos += n;
            p += n;
            len -= (size_t) n;
            if (s->pos % s->gran == 0 &&
                write_granules (s, s->pend, s->gran, s->pos - s->gran) == -1) {
                return -1;
            }
            continue;
        }
        whole = ROUND_DOWN ((uint64_t) len, s->gran);
        if (write_granules (s, p, whole, s->pos) == -1) {
            return -1;
        }
        s->pos += whole;
        p += whole;
        len -= (size_t) whole;
    }
    return 0;
}

int
sink_zero (struct sink *s, uint64_t len)
{
    uint64_t in_gran, n;

    if (len > s->dst->size - s->pos || (s->flushed && len > 0)) {
        vmc_error ("%s: internal error: zeros past the end of the disk",
                   s->dst->filename);
        return -1;
    }
    in_gran = s->pos % s->gran;
    if (in_gran != 0) {
        n = MIN (len, s->gran - in_gran);
        memset (s->pend + in_gran, 0, (size_t) n);
        s->pos += n;
        len -= n;
        if (s->pos % s->gran == 0 &&
            write_granules (s, s->pend, s->gran, s->pos - s->gran) == -1) {
            return -1;
        }
    }
    /* Whole zero granules: nothing to write.  A partial one at the end
     * starts the pending granule. */
    s->pos += ROUND_DOWN (len, s->gran);
    len -= ROUND_DOWN (len, s->gran);
    if (len > 0) {
        memset (s->pend, 0, (size_t) len);
        s->pos += len;
    }
    return 0;
}

uint64_t
sink_position (const struct sink *s)
{
    return s->pos;
}

bool
sink_settled (const struct sink *s)
{
    return s->pos % s->gran == 0 || s->flushed;
}

uint64_t
sink_granule (const struct sink *s)
{
    return s->gran;
}

uint64_t
sink_bytes_written (const struct sink *s)
{
    return s->written;
}

int
sink_flush_tail (struct sink *s)
{
    uint64_t in_gran = s->pos % s->gran, start, end, padded;

    if (in_gran == 0 || s->flushed) {
        return 0;
    }
    s->flushed = true;
    start = s->pos - in_gran;
    end = s->pos;
    if (is_zero (s->pend, (size_t) in_gran)) {
        return 0;
    }
    /* The last write ends at the image's end or on its alignment: pad the
     * source's odd end with zeros (the image may be larger). */
    padded = end;
    if (end != s->dst->size) {
        padded = MIN (ROUND_UP (end, (uint64_t) s->dst->write_align),
                      s->dst->size);
        memset (s->pend + in_gran, 0, (size_t) (padded - end));
    }
    return write_run (s, s->pend, padded - start, start);
}

void
sink_free (struct sink *s)
{
    if (s == NULL) {
        return;
    }
    free (s->pend);
    free (s);
}
