/* SPDX-License-Identifier: MIT */
/*
 * Disk digests: the streaming computation, fed in pieces of every size and
 * with zero ranges given as NULL, equals a direct computation of the
 * definition (XXH3-128 per MiB block, SHA-256 over the block hashes) done
 * here with the libraries alone.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "../../converter/lib/digest.h"
#include "../../converter/lib/image.h"
#include "test.h"

struct collect {
    unsigned char *hashes;
    uint64_t n;
};

static int
collect_fn (void *opaque, uint64_t index, const unsigned char h[16])
{
    struct collect *c = opaque;

    CHECK (index == c->n);
    memcpy (c->hashes + 16 * index, h, 16);
    c->n++;
    return 0;
}

/* The definition, directly. */
static void
reference (const unsigned char *disk, uint64_t size, unsigned char out[32])
{
    uint64_t nblocks = (size + DIGEST_BLOCK - 1) / DIGEST_BLOCK, i, len;
    unsigned char *h = malloc (nblocks * 16);
    XXH128_canonical_t c;
    unsigned int olen;

    for (i = 0; i < nblocks; i++) {
        len = size - i * DIGEST_BLOCK < DIGEST_BLOCK ? size - i * DIGEST_BLOCK
                                                      : DIGEST_BLOCK;
        XXH128_canonicalFromHash (&c, XXH3_128bits (disk + i * DIGEST_BLOCK,
                                                    len));
        memcpy (h + 16 * i, c.digest, 16);
    }
    EVP_Digest (h, nblocks * 16, out, &olen, EVP_sha256 (), NULL);
    free (h);
}

static void
run (const unsigned char *disk, uint64_t size, unsigned seed)
{
    struct collect c = { malloc ((size / DIGEST_BLOCK + 1) * 16), 0 };
    unsigned char got[32], want[32];
    struct digest *d = digest_new (size, 0, collect_fn, &c);
    uint64_t off = 0, n;
    bool is_zero;

    srand (seed);
    while (off < size) {
        n = (uint64_t) (rand () % 3 == 0 ? rand () % 3000000 : rand () % 5000)
            + 1;
        if (n > size - off) {
            n = size - off;
        }
        is_zero = true;
        for (uint64_t i = 0; i < n && is_zero; i++) {
            is_zero = disk[off + i] == 0;
        }
        CHECK (digest_update (d, is_zero && rand () % 2 ? NULL : disk + off,
                              n) == 0);
        off += n;
        CHECK (digest_position (d) == off);
    }
    CHECK (digest_update (d, disk, 1) == -1);       /* past the end */
    CHECK (c.n == (size + DIGEST_BLOCK - 1) / DIGEST_BLOCK);
    CHECK (digest_blocks_final (c.hashes, c.n, got) == 0);
    reference (disk, size, want);
    CHECK (memcmp (got, want, 32) == 0);
    digest_free (d);
    free (c.hashes);
}

int
main (void)
{
    uint64_t size = 5 * DIGEST_BLOCK + 12345;
    unsigned char *disk = calloc (1, size), got[32], want[32];
    struct image *img;
    char hex[65];
    unsigned i;

    /* Block 0 data, block 1 zero, block 2 half data, blocks 3-4 zero, a
     * short last block with data at its end. */
    for (i = 0; i < DIGEST_BLOCK; i++) {
        disk[i] = (unsigned char) (i * 13 + 5);
    }
    memset (disk + 2 * DIGEST_BLOCK, 0xab, DIGEST_BLOCK / 2);
    disk[size - 1] = 1;
    for (i = 0; i < 20; i++) {
        run (disk, size, i);
    }
    run (disk, DIGEST_BLOCK, 99);                   /* exactly one block */
    run (disk + DIGEST_BLOCK, DIGEST_BLOCK, 98);    /* one zero block */

    /* The same digest through an image. */
    img = image_open_memory (disk, size, "raw", 0);
    CHECK (img != NULL && digest_image (img, got) == 0);
    reference (disk, size, want);
    CHECK (memcmp (got, want, 32) == 0);
    image_close (img);
    digest_hex (got, hex);
    CHECK (strlen (hex) == 64);

    /* A resumed digest starts at a block boundary only. */
    CHECK (digest_new (size, 100, collect_fn, NULL) == NULL);
    free (disk);
    return test_status ();
}
