/* SPDX-License-Identifier: MIT */
/*
 * Disk digests; see digest.h.
 *
 * XXH3-128 runs at memory speed, so hashing every block costs little
 * beside the copy; SHA-256 (OpenSSL, SHA-NI where present) only sees 16
 * bytes per MiB.  The hash of an all-zero 1 MiB block is computed once, so
 * zero ranges reported by block status cost nothing.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "digest.h"
#include "error.h"
#include "image.h"
#include "rounding.h"

struct digest {
    uint64_t size;
    uint64_t pos;                   /* bytes fed, from the disk's start */
    XXH3_state_t *state;            /* the current, partial block */
    uint64_t in_block;              /* bytes of it fed */
    bool block_all_zero;            /* only zeros fed into it so far */
    digest_block_fn fn;
    void *opaque;
};

static unsigned char zero_block_hash[DIGEST_BLOCK_HASH];
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;
static const unsigned char zeros[65536];

static void
compute_zero_hash (void)
{
    XXH3_state_t *s = XXH3_createState ();
    XXH128_canonical_t c;
    unsigned i;

    XXH3_128bits_reset (s);
    for (i = 0; i < DIGEST_BLOCK / sizeof zeros; i++) {
        XXH3_128bits_update (s, zeros, sizeof zeros);
    }
    XXH128_canonicalFromHash (&c, XXH3_128bits_digest (s));
    memcpy (zero_block_hash, c.digest, DIGEST_BLOCK_HASH);
    XXH3_freeState (s);
}

struct digest *
digest_new (uint64_t size, uint64_t offset, digest_block_fn fn, void *opaque)
{
    struct digest *d;

    if (offset % DIGEST_BLOCK != 0 && offset != size) {
        vmc_error ("digest: internal error: start %" PRIu64
                   " is not block aligned", offset);
        return NULL;
    }
    pthread_once (&zero_once, compute_zero_hash);
    d = calloc (1, sizeof *d);
    if (d == NULL || (d->state = XXH3_createState ()) == NULL) {
        free (d);
        vmc_perror ("digest");
        return NULL;
    }
    d->size = size;
    d->pos = offset;
    d->fn = fn;
    d->opaque = opaque;
    d->block_all_zero = true;
    XXH3_128bits_reset (d->state);
    return d;
}

static int
finish_block (struct digest *d)
{
    XXH128_canonical_t c;
    const unsigned char *h;

    if (d->block_all_zero && d->in_block == DIGEST_BLOCK) {
        h = zero_block_hash;
    }
    else {
        XXH128_canonicalFromHash (&c, XXH3_128bits_digest (d->state));
        h = c.digest;
    }
    if (d->fn (d->opaque, (d->pos - 1) / DIGEST_BLOCK, h) == -1) {
        return -1;
    }
    XXH3_128bits_reset (d->state);
    d->in_block = 0;
    d->block_all_zero = true;
    return 0;
}

int
digest_update (struct digest *d, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t n, block_len;

    if (len > d->size - d->pos) {
        vmc_error ("digest: internal error: data past the end of the disk");
        return -1;
    }
    while (len > 0) {
        block_len = MIN ((uint64_t) DIGEST_BLOCK,
                         d->size - (d->pos - d->in_block));
        n = MIN ((uint64_t) len, block_len - d->in_block);
        if (p != NULL) {
            XXH3_128bits_update (d->state, p, n);
            d->block_all_zero = false;
            p += n;
        }
        else if (d->in_block == 0 && n == DIGEST_BLOCK) {
            /* A whole zero block: its hash is known. */
        }
        else {
            uint64_t left = n;

            /* Zeros fed piecemeal must still be hashed, unless the whole
             * block turns out zero (then the precomputed hash is used). */
            while (left > 0) {
                uint64_t z = MIN (left, (uint64_t) sizeof zeros);

                XXH3_128bits_update (d->state, zeros, z);
                left -= z;
            }
        }
        d->in_block += n;
        d->pos += n;
        len -= n;
        if (d->in_block == block_len && finish_block (d) == -1) {
            return -1;
        }
    }
    return 0;
}

uint64_t
digest_position (const struct digest *d)
{
    return d->pos;
}

void
digest_free (struct digest *d)
{
    if (d == NULL) {
        return;
    }
    XXH3_freeState (d->state);
    free (d);
}

int
digest_hashes_append (unsigned char **buf, uint64_t *len, uint64_t *cap,
                      const unsigned char *h, uint64_t n)
{
    if (n > *cap - *len) {
        uint64_t ncap = MAX (*cap * 2, *len + n + 64);
        unsigned char *p;

        if (ncap > SIZE_MAX / DIGEST_BLOCK_HASH ||
            (p = realloc (*buf, ncap * DIGEST_BLOCK_HASH)) == NULL) {
            vmc_error ("out of memory for %" PRIu64 " block hashes", ncap);
            return -1;
        }
        *buf = p;
        *cap = ncap;
    }
    memcpy (*buf + *len * DIGEST_BLOCK_HASH, h, n * DIGEST_BLOCK_HASH);
    *len += n;
    return 0;
}

int
digest_blocks_final (const unsigned char *hashes, uint64_t n,
                     unsigned char out[DIGEST_LEN])
{
    unsigned int len = 0;

    if (n > SIZE_MAX / DIGEST_BLOCK_HASH ||
        EVP_Digest (hashes, (size_t) n * DIGEST_BLOCK_HASH, out, &len,
                    EVP_sha256 (), NULL) != 1 || len != DIGEST_LEN) {
        vmc_error ("digest: SHA-256 failed");
        return -1;
    }
    return 0;
}

void
digest_hex (const unsigned char d[DIGEST_LEN], char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned i;

    for (i = 0; i < DIGEST_LEN; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * DIGEST_LEN] = '\0';
}

/* digest_image collects block hashes straight into a SHA-256 context. */
static int
fold_into_sha (void *opaque, uint64_t index,
               const unsigned char hash[DIGEST_BLOCK_HASH])
{
    (void) index;
    return EVP_DigestUpdate (opaque, hash, DIGEST_BLOCK_HASH) == 1 ? 0 : -1;
}

int
digest_image (struct image *img, unsigned char out[DIGEST_LEN])
{
    EVP_MD_CTX *sha = EVP_MD_CTX_new ();
    struct digest *d = NULL;
    unsigned char *buf = NULL;
    struct extent e;
    uint64_t off = 0, n;
    unsigned int len = 0;
    int r = -1;

    buf = malloc (DIGEST_BLOCK);
    if (sha == NULL || buf == NULL ||
        EVP_DigestInit_ex (sha, EVP_sha256 (), NULL) != 1) {
        vmc_error ("digest: out of memory");
        goto out;
    }
    d = digest_new (img->size, 0, fold_into_sha, sha);
    if (d == NULL) {
        goto out;
    }
    while (off < img->size) {
        if (image_block_status (img, off, img->size - off, &e) == -1) {
            goto out;
        }
        n = MIN (e.length, (uint64_t) DIGEST_BLOCK);
        if (e.type == EXTENT_ZERO) {
            n = e.length;
            if (digest_update (d, NULL, n) == -1) {
                goto out;
            }
        }
        else if (image_pread (img, buf, n, off) == -1 ||
                 digest_update (d, buf, n) == -1) {
            goto out;
        }
        off += n;
    }
    if (EVP_DigestFinal_ex (sha, out, &len) != 1 || len != DIGEST_LEN) {
        vmc_error ("digest: SHA-256 failed");
        goto out;
    }
    r = 0;
out:
    digest_free (d);
    free (buf);
    EVP_MD_CTX_free (sha);
    return r;
}
