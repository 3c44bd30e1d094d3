/* SPDX-License-Identifier: MIT */
/*
 * vmconvert digest [-f FMT] IMG...: the disk digest of each image's guest
 * content (the digest `send` and `receive` check), so that any copy of a
 * disk, in any format, can be checked against another.
 */
#include <getopt.h>
#include <stdio.h>

#include "../lib/digest.h"
#include "../lib/image.h"
#include "cli.h"

static void
digest_usage (FILE *fp)
{
    fprintf (fp,
             "Usage: vmconvert digest [-f FMT] IMG...\n"
             "\n"
             "Print the disk digest of each image's guest content: SHA-256\n"
             "over the XXH3-128 hashes of its 1 MiB blocks, the digest that\n"
             "`vmconvert send` and `receive` verify.  Equal digests mean equal\n"
             "guest content, whatever the formats.\n"
             "\n"
             "  -f, --format FMT   read the images as FMT (default: probe)\n"
             "  -h, --help         this text\n");
}

int
cmd_digest (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    unsigned char d[DIGEST_LEN];
    char hex[2 * DIGEST_LEN + 1];
    const char *format = NULL;
    struct image *img;
    int c, i;

    while ((c = getopt_long (argc, argv, "f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'h': digest_usage (stdout); return 0;
        default: digest_usage (stderr); return 1;
        }
    }
    if (optind >= argc) {
        digest_usage (stderr);
        return 1;
    }
    for (i = optind; i < argc; i++) {
        img = image_open (argv[i], format, 0);
        if (img == NULL || digest_image (img, d) == -1) {
            cli_error ();
            image_close (img);
            return 1;
        }
        digest_hex (d, hex);
        printf ("%s  %s\n", hex, argv[i]);
        image_close (img);
    }
    return 0;
}
