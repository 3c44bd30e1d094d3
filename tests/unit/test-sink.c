/* SPDX-License-Identifier: MIT */
/*
 * The sink: content fed in random pieces of data and zeros, with granules
 * of 4 KiB and 64 KiB, lands byte for byte in a raw file; only granules
 * holding a non-zero byte are written; an odd-sized source in a larger
 * image gets a zero-padded tail.  Every image_pwrite is checked by the
 * core's sequential write contract, so a misaligned write fails the test.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "../../converter/lib/rounding.h"
#include "../../converter/lib/sink.h"
#include "test.h"

static char dir[] = "/tmp/vmc-sink.XXXXXX";

static void
run (const unsigned char *disk, uint64_t size, uint64_t img_size,
     uint32_t align, unsigned seed)
{
    struct create_params p = { .size = img_size };
    char path[256];
    struct image *img;
    struct sink *s;
    unsigned char *back;
    uint64_t off = 0, n, nonzero_grans = 0, g, i;
    struct stat st;
    int fd;

    snprintf (path, sizeof path, "%s/out-%u.raw", dir, seed);
    img = image_create (path, "raw", &p);
    CHECK (img != NULL);
    if (img == NULL) {
        return;
    }
    img->write_align = align;       /* stand in for a cluster size */
    s = sink_new (img);
    CHECK (s != NULL);
    srand (seed);
    while (off < size) {
        n = (uint64_t) (rand () % 4 == 0 ? rand () % 300000 : rand () % 9000)
            + 1;
        if (n > size - off) {
            n = size - off;
        }
        bool zero = true;

        for (i = 0; i < n && zero; i++) {
            zero = disk[off + i] == 0;
        }
        CHECK ((zero && rand () % 2 ? sink_zero (s, n)
                : sink_data (s, disk + off, (size_t) n)) == 0);
        off += n;
        CHECK (sink_position (s) == off);
    }
    if (img_size == size) {
        CHECK (sink_data (s, disk, 1) == -1);     /* past the end */
    }
    CHECK (sink_flush_tail (s) == 0);
    CHECK (image_finish (img, false) == 0);

    /* What was written: exactly the non-zero granules; the last, partial
     * one ends at the source's end, padded to the alignment when the
     * image is larger. */
    g = sink_granule (s);
    for (i = 0; i < size; i += g) {
        uint64_t end = MIN (i + g, size);

        for (uint64_t j = i; j < end; j++) {
            if (disk[j] != 0) {
                if (end == size && size != img_size) {
                    end = MIN (ROUND_UP (size, (uint64_t) align), img_size);
                }
                nonzero_grans += end - i;
                break;
            }
        }
    }
    CHECK (sink_bytes_written (s) == nonzero_grans);
    sink_free (s);
    image_close (img);

    back = malloc (img_size);
    fd = open (path, O_RDONLY);
    CHECK (fd != -1 && fstat (fd, &st) == 0 &&
           (uint64_t) st.st_size == img_size);
    CHECK (read (fd, back, img_size) == (ssize_t) img_size);
    CHECK (memcmp (back, disk, size) == 0);
    for (i = size; i < img_size; i++) {
        if (back[i] != 0) {
            fprintf (stderr, "seed %u: byte %" PRIu64 " of %" PRIu64
                     " (source %" PRIu64 ", align %u) is %u\n", seed, i,
                     img_size, size, align, back[i]);
            CHECK (0);
            break;
        }
    }
    close (fd);
    free (back);
    unlink (path);
}

int
main (void)
{
    uint64_t size = 3 * 1048576 + 3 * 4096 + 700, i;
    unsigned char *disk = calloc (1, size + 65536);

    if (mkdtemp (dir) == NULL) {
        return 99;
    }
    /* Data, a long zero gap, single bytes here and there, data at the
     * very end. */
    for (i = 0; i < 200000; i++) {
        disk[i] = (unsigned char) (i % 251 + 1);
    }
    for (i = 1048576; i < 2 * 1048576; i += 70001) {
        disk[i] = 0x42;
    }
    memset (disk + size - 5000, 0x99, 5000);
    for (unsigned seed = 0; seed < 8; seed++) {
        run (disk, size, size, 512, seed);
        run (disk, size, size, 65536, seed + 100);
        /* A larger image: the tail is padded to the alignment. */
        run (disk, size, size + 70000, 512, seed + 200);
        run (disk, size, ROUND_UP (size, 65536), 65536, seed + 300);
    }
    /* Resumed inside a granule (a checkpoint after the tail was flushed):
     * the sink is settled and takes nothing more. */
    {
        struct create_params p = { .size = 1 << 20 };
        char path[256];
        struct image *img;
        struct sink *s;

        snprintf (path, sizeof path, "%s/odd.raw", dir);
        img = image_create (path, "raw", &p);
        img->write_pos = 100;
        s = sink_new (img);
        CHECK (s != NULL && sink_settled (s));
        CHECK (sink_data (s, disk, 1) == -1 && sink_zero (s, 1) == -1);
        CHECK (sink_flush_tail (s) == 0);
        sink_free (s);
        image_close (img);
        unlink (path);
    }
    rmdir (dir);
    free (disk);
    return test_status ();
}
