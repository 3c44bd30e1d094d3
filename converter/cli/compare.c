/* SPDX-License-Identifier: MIT */
/*
 * vmconvert compare [-f FMT] [-F FMT] A B: exit 0 when the guest-visible
 * contents are identical, 1 when they differ, 2 on error (as qemu-img).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "../lib/copy.h"
#include "../lib/image.h"
#include "cli.h"

static void
compare_usage (FILE *fp)
{
    fprintf (fp,
             "Usage: vmconvert compare [-f FMT] [-F FMT] IMG1 IMG2\n"
             "\n"
             "Compare the guest-visible contents of two images.  Exit status:\n"
             "0 identical, 1 different (the first differing offset is\n"
             "printed), 2 error.  Images of different sizes are identical\n"
             "when the larger one holds only zeros past the smaller's end.\n"
             "\n"
             "  -f FMT       format of IMG1 (default: probe)\n"
             "  -F FMT       format of IMG2 (default: probe)\n"
             "  -h, --help   this text\n");
}

int
cmd_compare (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *fa = NULL, *fb = NULL;
    struct image *a = NULL, *b = NULL;
    uint64_t diff = 0;
    int c, r = 2;

    while ((c = getopt_long (argc, argv, "f:F:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': fa = optarg; break;
        case 'F': fb = optarg; break;
        case 'h': compare_usage (stdout); return 0;
        default: compare_usage (stderr); return 2;
        }
    }
    if (argc - optind != 2) {
        compare_usage (stderr);
        return 2;
    }
    a = image_open (argv[optind], fa, 0);
    if (a == NULL) {
        cli_error ();
        goto out;
    }
    b = image_open (argv[optind + 1], fb, 0);
    if (b == NULL) {
        cli_error ();
        goto out;
    }
    if (a->size != b->size) {
        printf ("Warning: Image size mismatch!\n");
    }
    switch (vmc_compare (a, b, &diff)) {
    case 0:
        printf ("Images are identical.\n");
        r = 0;
        break;
    case 1:
        printf ("Content mismatch at offset %" PRIu64 "!\n", diff);
        r = 1;
        break;
    default:
        cli_error ();
        break;
    }
out:
    image_close (a);
    image_close (b);
    return r;
}
