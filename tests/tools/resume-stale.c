/* SPDX-License-Identifier: MIT */
/*
 * resume-stale: like resume-test, but the writer dies in the middle of its
 * NEXT checkpoint, after that checkpoint's metadata reached the file and
 * before its state was saved, so the resume uses the older state.
 *
 *   resume-stale [-f FMT] -O FMT [-o OPTS] [-c] [-g BYTES] [-k] SRC DST
 *                CUT...
 *
 * At the first granule boundary at or after each CUT (a guest offset), the
 * image is checkpointed and that state kept.  The writer then goes on with
 * BYTES (default 3 MiB) of garbage — pseudo-random data that is not the
 * source's — checkpoints again (so the metadata mapping the garbage is now
 * in the file, in place), throws that state away, writes BYTES more
 * garbage and is dropped without finishing.  The image is resumed from the
 * kept state and the copy continues with the real content.  The result
 * must be identical to SRC (judged afterwards by qemu-img): a writer that
 * trusts any mapping at or past its state's position fails.
 *
 * -k: stop after the first crash, leaving the interrupted file as it is
 * (to check that it does not look like a finished image).
 */
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

static uint64_t rng = 0x2545F4914F6CDD1DULL;

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

/* LEN bytes of garbage into S, not past the end of the disk. */
static int
feed_garbage (struct sink *s, uint64_t size, uint64_t len, unsigned char *buf)
{
    uint64_t n, left = MIN (len, size - sink_position (s));

    for (; left > 0; left -= n) {
        n = MIN (left, (uint64_t) BLOCK);
        garbage (buf, n);
        if (sink_data (s, buf, n) == -1) {
            return -1;
        }
    }
    return 0;
}

int
main (int argc, char **argv)
{
    const char *fmt = NULL, *ofmt = NULL, *srcname, *dstname;
    struct options opts = { 0 };
    struct create_params p = { 0 };
    unsigned char *buf, state[IMAGE_STATE_MAX], stale[IMAGE_STATE_MAX];
    uint64_t garbage_len = 3u << 20, pos = 0, cut, at, g;
    struct image *src, *dst;
    struct sink *s;
    size_t slen, stale_len;
    bool keep = false;
    int c, i;

    while ((c = getopt (argc, argv, "f:O:o:cg:k")) != -1) {
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
        case 'k': keep = true; break;
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
            image_checkpoint (dst, at, state, &slen) == -1) {
            goto err;
        }
        pos = at;
        /* Garbage, a checkpoint whose state is lost, more garbage. */
        if (feed_garbage (s, src->size, garbage_len, buf) == -1) {
            goto err;
        }
        /* No checkpoint where the sink holds a partial granule (the
         * garbage reached the source's odd end). */
        if (sink_settled (s) &&
            image_checkpoint (dst, sink_position (s), stale,
                              &stale_len) == -1) {
            goto err;
        }
        if (feed_garbage (s, src->size, garbage_len, buf) == -1) {
            goto err;
        }
        sink_free (s);
        image_close (dst);
        if (keep) {
            fprintf (stderr, "resume-stale: crashed at %" PRIu64 ", left "
                     "as it is\n", pos);
            image_close (src);
            options_free (&opts);
            free (buf);
            return 0;
        }
        dst = image_resume (dstname, ofmt, &p, state, slen);
        if (dst == NULL || (s = sink_new (dst)) == NULL) {
            goto err;
        }
        if (dst->write_pos != pos) {
            fprintf (stderr, "resume-stale: resumed at %" PRIu64
                     ", checkpoint was at %" PRIu64 "\n", dst->write_pos,
                     pos);
            return 1;
        }
        fprintf (stderr, "resume-stale: crashed and resumed at %" PRIu64
                 "\n", pos);
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
    fprintf (stderr, "resume-stale: %s\n", vmc_get_error ());
    return 1;
usage:
    fprintf (stderr, "usage: resume-stale [-f FMT] -O FMT [-o OPTS] [-c] "
             "[-g BYTES] [-k] SRC DST CUT...\n");
    return 1;
}
