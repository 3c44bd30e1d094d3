/* SPDX-License-Identifier: MIT */
/*
 * vmconvert info [--json] [-f FMT] IMG: format, subformat, sizes and the
 * whole backing chain.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../lib/image.h"
#include "cli.h"

static void
info_usage (FILE *fp)
{
    fprintf (fp,
             "Usage: vmconvert info [--json] [-f FMT] IMG\n"
             "\n"
             "Show the format, subformat, virtual size, allocated size and\n"
             "backing chain of IMG.  The format is probed from the content\n"
             "unless -f names it.\n"
             "\n"
             "  -f, --format FMT   read IMG as FMT\n"
             "      --json         print JSON\n"
             "  -h, --help         this text\n");
}

static void
print_layer_text (struct image *img)
{
    char a[32], b[32];
    unsigned i;

    printf ("image: %s\n", img->filename);
    printf ("file format: %s\n", img->fmt->name);
    if (img->subformat[0] != '\0') {
        printf ("subformat: %s\n", img->subformat);
    }
    printf ("virtual size: %s (%" PRIu64 " bytes)\n",
            human_size (img->size, a, sizeof a), img->size);
    printf ("disk size: %s\n", human_size (image_allocated (img), b, sizeof b));
    if (img->cluster_size != 0) {
        printf ("cluster_size: %" PRIu64 "\n", img->cluster_size);
    }
    if (img->backing_name != NULL) {
        printf ("backing file: %s", img->backing_name);
        if (img->backing != NULL &&
            strcmp (img->backing->filename, img->backing_name) != 0) {
            printf (" (actual path: %s)", img->backing->filename);
        }
        printf ("\n");
        if (img->backing_format != NULL) {
            printf ("backing file format: %s\n", img->backing_format);
        }
    }
    if (img->info_count > 0) {
        printf ("Format specific information:\n");
        for (i = 0; i < img->info_count; i++) {
            printf ("    %s: %s\n", img->info[i].key, img->info[i].value);
        }
    }
}

static void
print_layer_json (struct image *img, const char *indent)
{
    unsigned i;

    printf ("%s\"filename\": ", indent);
    json_string (stdout, img->filename);
    printf (",\n%s\"format\": ", indent);
    json_string (stdout, img->fmt->name);
    if (img->subformat[0] != '\0') {
        printf (",\n%s\"subformat\": ", indent);
        json_string (stdout, img->subformat);
    }
    printf (",\n%s\"virtual-size\": %" PRIu64, indent, img->size);
    printf (",\n%s\"actual-size\": %" PRIu64, indent, image_allocated (img));
    if (img->cluster_size != 0) {
        printf (",\n%s\"cluster-size\": %" PRIu64, indent, img->cluster_size);
    }
    if (img->backing_name != NULL) {
        printf (",\n%s\"backing-filename\": ", indent);
        json_string (stdout, img->backing_name);
        if (img->backing != NULL) {
            printf (",\n%s\"full-backing-filename\": ", indent);
            json_string (stdout, img->backing->filename);
        }
        if (img->backing_format != NULL) {
            printf (",\n%s\"backing-filename-format\": ", indent);
            json_string (stdout, img->backing_format);
        }
    }
    printf (",\n%s\"format-specific\": {", indent);
    for (i = 0; i < img->info_count; i++) {
        printf ("%s\n%s    ", i > 0 ? "," : "", indent);
        json_string (stdout, img->info[i].key);
        printf (": ");
        json_string (stdout, img->info[i].value);
    }
    printf ("%s}", img->info_count > 0 ? "\n    " : "");
}

int
cmd_info (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *format = NULL;
    struct image *img, *l;
    bool json = false;
    int c;

    while ((c = getopt_long (argc, argv, "f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'j': json = true; break;
        case 'h': info_usage (stdout); return 0;
        default: info_usage (stderr); return 1;
        }
    }
    if (argc - optind != 1) {
        info_usage (stderr);
        return 1;
    }
    img = image_open (argv[optind], format, 0);
    if (img == NULL) {
        cli_error ();
        return 1;
    }
    if (json) {
        printf ("{\n");
        print_layer_json (img, "    ");
        printf (",\n    \"backing-chain\": [");
        for (l = img->backing; l != NULL; l = l->backing) {
            printf ("%s\n      {\n", l != img->backing ? "," : "");
            print_layer_json (l, "        ");
            printf ("\n      }");
        }
        printf ("%s]\n}\n", img->backing != NULL ? "\n    " : "");
    }
    else {
        for (l = img; l != NULL; l = l->backing) {
            if (l != img) {
                printf ("\n");
            }
            print_layer_text (l);
        }
    }
    image_close (img);
    return 0;
}
