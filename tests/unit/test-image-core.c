/* SPDX-License-Identifier: MIT */
/*
 * The image core and the copy engine, driven through raw images in memory
 * and in temporary files: range checks, the sequential write contract,
 * sparse copies, comparison, table caps.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../converter/lib/copy.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "test.h"

#define SIZE (9u << 20 | 512u)  /* not a multiple of the engine's chunk */

static char tmpdir[] = "/tmp/vmc-unit.XXXXXX";

static char *
tmp_path (const char *name)
{
    static char path[256];

    snprintf (path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static unsigned char *
make_source (void)
{
    unsigned char *buf = calloc (1, SIZE);
    size_t i;

    /* Data at the start, a zero gap, scattered single sectors, data at the
     * very end. */
    for (i = 0; i < 300000; i++) {
        buf[i] = (unsigned char) (i * 7 + 1);
    }
    for (i = 3u << 20; i < (6u << 20); i += 65536 + 512) {
        buf[i] = 0xaa;
    }
    buf[SIZE - 1] = 0x55;
    return buf;
}

static void
test_registry (void)
{
    CHECK (image_format_by_name ("raw") != NULL);
    CHECK (image_format_by_name ("vpc") == image_format_by_name ("vhd"));
    CHECK (image_format_by_name ("nope") == NULL);
    CHECK (strstr (vmc_get_error (), "nope") != NULL);
    CHECK (image_formats ()[0] != NULL);
}

static void
test_memory_raw (const unsigned char *src)
{
    struct image *img;
    struct extent e;
    unsigned char b[16];
    void *t;

    img = image_open_memory (src, SIZE, NULL, 0);
    CHECK (img != NULL);
    if (img == NULL) {
        return;
    }
    CHECK (strcmp (img->fmt->name, "raw") == 0);
    CHECK (img->size == SIZE);
    CHECK (image_pread (img, b, sizeof b, 0) == 0 && b[1] == 8);
    CHECK (image_pread (img, b, 1, SIZE - 1) == 0 && b[0] == 0x55);
    CHECK (image_pread (img, b, 2, SIZE - 1) == -1);
    CHECK (image_pread (img, b, 1, UINT64_MAX) == -1);
    CHECK (image_block_status (img, 0, SIZE, &e) == 0 &&
           e.type == EXTENT_DATA && e.length == SIZE);
    CHECK (image_block_status (img, SIZE - 1, 2, &e) == -1);
    CHECK (image_block_status (img, 0, 0, &e) == -1);
    t = image_alloc_table (img, "t", 10, 8, 80);
    CHECK (t != NULL);
    free (t);
    CHECK (image_alloc_table (img, "t", 11, 8, 80) == NULL);
    CHECK (image_alloc_table (img, "t", UINT64_MAX / 2, 8, UINT64_MAX) ==
           NULL);
    image_close (img);
    image_close (NULL);
}

static void
test_sequential_contract (void)
{
    struct create_params p = { .size = 1u << 20 };
    unsigned char buf[4096] = { 1 };
    struct image *img;

    img = image_create (tmp_path ("seq.raw"), "raw", &p);
    CHECK (img != NULL);
    if (img == NULL) {
        return;
    }
    CHECK (image_pwrite (img, buf, 4096, 8192) == 0);
    CHECK (image_pwrite (img, buf, 4096, 4096) == -1);     /* backwards */
    CHECK (image_pwrite (img, buf, 100, 16384) == -1);     /* unaligned */
    CHECK (image_pwrite (img, buf, 4096, (1u << 20) - 2048) == -1);
    CHECK (image_pwrite (img, buf, 2048, (1u << 20) - 2048) == 0);
    CHECK (image_finish (img, true) == 0);
    CHECK (image_pwrite (img, buf, 512, (1u << 20) - 512) == -1);
    image_close (img);
}

static void
test_copy_and_compare (const unsigned char *src)
{
    struct create_params p = { .size = SIZE };
    struct copy_stats stats;
    struct image *a, *b;
    uint64_t diff = 0;
    unsigned char *mut;
    struct stat st;

    a = image_open_memory (src, SIZE, "raw", 0);
    b = image_create (tmp_path ("out.raw"), "raw", &p);
    CHECK (a != NULL && b != NULL);
    if (a == NULL || b == NULL) {
        return;
    }
    CHECK (vmc_copy (a, b, NULL, &stats) == 0);
    CHECK (stats.data_read == SIZE);
    /* Only non-zero 4 KiB granules are written. */
    CHECK (stats.data_written < 2u << 20);
    image_close (b);

    CHECK (stat (tmp_path ("out.raw"), &st) == 0 && st.st_size == SIZE);
    CHECK ((uint64_t) st.st_blocks * 512 < 2u << 20);
    b = image_open (tmp_path ("out.raw"), NULL, 0);
    CHECK (b != NULL);
    if (b == NULL) {
        image_close (a);
        return;
    }
    CHECK (vmc_compare (a, b, &diff) == 0);
    image_close (b);

    /* One byte changed in a hole of the copy's source: found exactly. */
    mut = malloc (SIZE);
    memcpy (mut, src, SIZE);
    mut[5000000] ^= 1;
    b = image_open_memory (mut, SIZE, "raw", 0);
    CHECK (vmc_compare (a, b, &diff) == 1 && diff == 5000000);
    image_close (b);

    /* A longer image that is zero past the end compares equal; a non-zero
     * byte there is a difference at that offset. */
    mut = realloc (mut, SIZE + 8192);
    memcpy (mut, src, SIZE);
    memset (mut + SIZE, 0, 8192);
    b = image_open_memory (mut, SIZE + 8192, "raw", 0);
    CHECK (vmc_compare (a, b, &diff) == 0);
    CHECK (vmc_compare (b, a, &diff) == 0);
    image_close (b);
    mut[SIZE + 4000] = 1;
    b = image_open_memory (mut, SIZE + 8192, "raw", 0);
    CHECK (vmc_compare (a, b, &diff) == 1 && diff == SIZE + 4000);
    image_close (b);
    free (mut);

    /* A destination smaller than the source is refused. */
    p.size = SIZE - 512;
    b = image_create (tmp_path ("small.raw"), "raw", &p);
    CHECK (b != NULL && vmc_copy (a, b, NULL, NULL) == -1);
    CHECK (strstr (vmc_get_error (), "smaller") != NULL);
    image_close (b);
    image_close (a);
}

int
main (void)
{
    unsigned char *src;

    if (mkdtemp (tmpdir) == NULL) {
        perror ("mkdtemp");
        return 99;
    }
    src = make_source ();
    test_registry ();
    test_memory_raw (src);
    test_sequential_contract ();
    test_copy_and_compare (src);
    free (src);
    unlink (tmp_path ("seq.raw"));
    unlink (tmp_path ("out.raw"));
    unlink (tmp_path ("small.raw"));
    rmdir (tmpdir);
    return test_status ();
}
