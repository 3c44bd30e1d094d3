/* SPDX-License-Identifier: MIT */
/*
 * fsused: run the filesystem layer (converter/fs/) on one volume of an
 * image and print what it found, for tests that judge it against the
 * filesystem's own tools.
 *
 *   fsused [-f FMT] [-o OFFSET] [-s SIZE] IMG
 *
 * The volume is [OFFSET, OFFSET + SIZE) of IMG (default: all of it).
 * Output, one "key value" per line: type, label, uuid, block_size,
 * all_used (0/1), why, used_bytes, then one "range START END" line per
 * used range (volume-relative bytes, END exclusive).  Exit 0, or 1 with a
 * message on a read error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../converter/fs/fs.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"
#include "../../converter/lib/options.h"

int
main (int argc, char **argv)
{
    const char *fmt = NULL;
    uint64_t offset = 0, size = UINT64_MAX;
    struct image *img;
    struct volume v;
    struct fs_result r;
    int c;

    while ((c = getopt (argc, argv, "f:o:s:")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'o':
        case 's':
            if (parse_size (optarg, c == 'o' ? &offset : &size) < 0) {
                fprintf (stderr, "fsused: %s\n", vmc_get_error ());
                return 2;
            }
            break;
        default:
            fprintf (stderr, "usage: fsused [-f FMT] [-o OFFSET] [-s SIZE] "
                     "IMG\n");
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf (stderr, "usage: fsused [-f FMT] [-o OFFSET] [-s SIZE] IMG\n");
        return 2;
    }
    img = image_open (argv[optind], fmt, 0);
    if (img == NULL) {
        fprintf (stderr, "fsused: %s\n", vmc_get_error ());
        return 1;
    }
    if (offset > img->size) {
        fprintf (stderr, "fsused: offset past the end\n");
        return 1;
    }
    if (size > img->size - offset)
        size = img->size - offset;
    volume_of_image (&v, argv[optind], img, offset, size);
    if (fs_identify (&v, &r) < 0) {
        fprintf (stderr, "fsused: %s\n", vmc_get_error ());
        image_close (img);
        return 1;
    }
    printf ("type %s\nlabel %s\nuuid %s\nblock_size %" PRIu32 "\n"
            "all_used %d\nwhy %s\nused_bytes %" PRIu64 "\n",
            r.type, r.label, r.uuid, r.block_size, r.all_used ? 1 : 0,
            r.why, r.all_used ? size : rangeset_bytes (&r.used));
    if (!r.all_used)
        for (size_t i = 0; i < r.used.n; i++)
            printf ("range %" PRIu64 " %" PRIu64 "\n", r.used.r[i].start,
                    r.used.r[i].end);
    fs_result_free (&r);
    image_close (img);
    return 0;
}
