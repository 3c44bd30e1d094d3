/* SPDX-License-Identifier: MIT */
/*
 * resume-test: convert an image while "crashing" the writer at given
 * points, to test checkpoint/resume of the writers.
 *
 *   resume-test [-f FMT] -O FMT [-o OPTS] [-c] [-g BYTES] SRC DST CUT...
 *
 * Content goes through a sink (as in the receiver).  At the first granule
 * boundary at or after each CUT (a guest offset), the image is
 * checkpointed, then the writer goes on with BYTES (default 3 MiB) of
 * garbage — pseudo-random data that is NOT the source's — as a receiver
 * that died after its checkpoint would have written, and is then dropped
 * without finishing.  The image is resumed from the saved state and the
 * copy continues from the checkpoint with the real content.  The result
 * must be identical to SRC (judged afterwards by qemu-img), which shows
 * that whatever was written after a checkpoint cannot leak into the
 * resumed image.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "../../converter/lib/options.h"
#include "../../converter/lib/rounding.h"
#include "../../converter/lib/sink.h"

#define BLOCK (1u << 20)

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static void
garbage (unsigned char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        buf[i] = (unsigned char) (rng | 1);     /* never zero */
    }
}

/* Feed [from, to) of SRC into S. */
static int
feed (struct image *src, struct sink *s, uint64_t from, uint64_t to,
      unsigned char *buf)
{
    struct extent e;
    uint64_t n;

    while (from < to) {
        if (image_block_status (src, from, to - from, &e) == -1) {
            return -1;
        }
        n = MIN (e.length, (uint64_t) BLOCK);
        if (e.type == EXTENT_ZERO) {
            if (sink_zero (s, e.length) == -1) {
                return -1;
            }
            from += e.length;
            continue;
        }
        if (image_pread (src, buf, n, from) == -1 ||
            sink_data (s, buf, n) == -1) {
            return -1;
        }
        from += n;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    const char *fmt = NULL, *ofmt = NULL, *srcname, *dstname;
    struct options opts = { 0 };
    struct create_params p = { 0 };
    unsigned char *buf, state[IMAGE_STATE_MAX];
    uint64_t garbage_len = 3u << 20, pos = 0, cut, at, g;
    struct image *src, *dst;
    struct sink *s;
    size_t slen;
    int c, i;

    while ((c = getopt (argc, argv, "f:O:o:cg:")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'O': ofmt = optarg; break;
        case 'o':
            if (options_parse (&opts, optarg) == -1) {
                goto err;
            }
            break;
        case 'c': p.compress = true; break;
        case 'g': garbage_len = strtoull (optarg, NULL, 0); break;
        default: goto usage;
        }
    }
    if (ofmt == NULL || argc - optind < 3) {
        goto usage;
    }
    srcname = argv[optind];
    dstname = argv[optind + 1];
    buf = malloc (BLOCK);
    src = image_open (srcname, fmt, 0);
    if (buf == NULL || src == NULL) {
        goto err;
    }
    p.size = src->size;
    p.opts = &opts;
    dst = image_create (dstname, ofmt, &p);
    if (dst == NULL || (s = sink_new (dst)) == NULL) {
        goto err;
    }
    g = sink_granule (s);
    for (i = optind + 2; i < argc; i++) {
        if (parse_size (argv[i], &cut) == -1) {
            goto err;
        }
        at = MIN (ROUND_UP (cut, g), src->size);
        if (at < pos) {
            continue;
        }
        if (feed (src, s, pos, at, buf) == -1 ||
            (at == src->size && sink_flush_tail (s) == -1) ||
            image_checkpoint (dst, at, state, &slen) == -1) {
            goto err;
        }
        pos = at;
        /* The receiver goes on after its checkpoint, then dies. */
        for (uint64_t n, left = MIN (garbage_len, src->size - pos); left > 0;
             left -= n) {
            n = MIN (left, (uint64_t) BLOCK);
            garbage (buf, n);
            if (sink_data (s, buf, n) == -1) {
                goto err;
            }
        }
        sink_free (s);
        image_close (dst);
        dst = image_resume (dstname, ofmt, &p, state, slen);
        if (dst == NULL || (s = sink_new (dst)) == NULL) {
            goto err;
        }
        if (dst->write_pos != pos) {
            fprintf (stderr, "resume-test: resumed at %" PRIu64
                     ", checkpoint was at %" PRIu64 "\n", dst->write_pos,
                     pos);
            return 1;
        }
        fprintf (stderr, "resume-test: crashed and resumed at %" PRIu64 "\n",
                 pos);
    }
    if (feed (src, s, pos, src->size, buf) == -1 || sink_flush_tail (s) == -1 ||
        image_finish (dst, false) == -1) {
        goto err;
    }
    sink_free (s);
    image_close (dst);
    image_close (src);
    options_free (&opts);
    free (buf);
    return 0;

err:
    fprintf (stderr, "resume-test: %s\n", vmc_get_error ());
    return 1;
usage:
    fprintf (stderr, "usage: resume-test [-f FMT] -O FMT [-o OPTS] [-c] "
             "[-g BYTES] SRC DST CUT...\n");
    return 1;
}
