/* SPDX-License-Identifier: MIT */
/*
 * Disk digests: a hash of a whole virtual disk's guest content that does
 * not depend on how the content was cut into pieces, and is cheap for
 * ranges known to be zero.
 *
 * Definition (also in network/PROTOCOL.md): split the disk into 1 MiB
 * blocks (the last may be shorter), hash each block with XXH3-128 (16 bytes,
 * canonical big-endian form), and hash the concatenation of the block
 * hashes with SHA-256.
 *
 * struct digest computes the block hashes as data arrives, in order and in
 * pieces of any size; the caller collects them (a callback per completed
 * block), which lets a resumable receiver store them and a sender fold them
 * in only once acknowledged.  digest_blocks_final() does the SHA-256 step.
 */
#ifndef VMC_DIGEST_H
#define VMC_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_BLOCK (1u << 20)
#define DIGEST_BLOCK_HASH 16
#define DIGEST_LEN 32

struct digest;

/* Called for each completed block with its index and 16-byte hash. */
typedef int (*digest_block_fn) (void *opaque, uint64_t index,
                                const unsigned char hash[DIGEST_BLOCK_HASH]);

/* A new digest of a SIZE-byte disk, starting at block-aligned OFFSET. */
struct digest *digest_new (uint64_t size, uint64_t offset, digest_block_fn fn,
                           void *opaque);

/* Feed the next LEN bytes of guest content (BUF NULL: that many zeros). */
int digest_update (struct digest *d, const void *buf, size_t len);

/* Bytes fed so far, counted from the start of the disk. */
uint64_t digest_position (const struct digest *d);

void digest_free (struct digest *d);

/* Append N block hashes at H to the growable array *BUF of *LEN hashes
 * (room for *CAP).  0, or -1 with a message. */
int digest_hashes_append (unsigned char **buf, uint64_t *len, uint64_t *cap,
                          const unsigned char *h, uint64_t n);

/* SHA-256 over N block hashes (N * 16 bytes). */
int digest_blocks_final (const unsigned char *hashes, uint64_t n,
                         unsigned char out[DIGEST_LEN]);

/* The digest of an image, read through the image layer (zero extents are
 * not read).  For `vmconvert digest` and tests. */
struct image;
int digest_image (struct image *img, unsigned char out[DIGEST_LEN]);

/* Lowercase hex of a digest, out of 2 * DIGEST_LEN + 1 bytes. */
void digest_hex (const unsigned char d[DIGEST_LEN], char *out);

#endif
