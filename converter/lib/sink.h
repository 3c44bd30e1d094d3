/* SPDX-License-Identifier: MIT */
/*
 * A sink: guest content in, sparse sequential image writes out.
 *
 * Whoever produces a disk's content in order (the copy engine, the network
 * receiver) hands it to a sink as data pieces and zero ranges of any size.
 * The sink writes only granules that hold a non-zero byte (granule: the
 * image's write alignment, at least 4 KiB), coalesces neighbouring ones
 * into one write, keeps a partial granule until it is complete, and pads
 * the last write so the image's sequential write contract always holds.
 */
#ifndef VMC_SINK_H
#define VMC_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

struct sink;

/* A sink writing into DST (created or resumed), starting at
 * dst->write_pos: a granule boundary, or the source's end after
 * sink_flush_tail (then only finishing remains). */
struct sink *sink_new (struct image *dst);

/* The next LEN bytes of guest content. */
int sink_data (struct sink *s, const void *buf, size_t len);

/* The next LEN bytes are zeros. */
int sink_zero (struct sink *s, uint64_t len);

/* Bytes of guest content accepted so far, from the start of the disk. */
uint64_t sink_position (const struct sink *s);

/* True when nothing is held back (the position is a granule boundary, or
 * the tail was flushed), so that the image holds everything accepted:
 * then the position is a valid checkpoint for image_checkpoint(). */
bool sink_settled (const struct sink *s);

/* The granule size. */
uint64_t sink_granule (const struct sink *s);

/* Bytes handed to image_pwrite so far. */
uint64_t sink_bytes_written (const struct sink *s);

/* Write what is held back (the source ended); the position must be the
 * source's size, which may be less than the image's.  Nothing may be added
 * after it. */
int sink_flush_tail (struct sink *s);

void sink_free (struct sink *s);

#endif
