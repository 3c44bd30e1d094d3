/* SPDX-License-Identifier: MIT */
/*
 * vmconvert convert [-f FMT] -O FMT [-o OPTS] [-c] [-p] [--sync] SRC DST
 *
 * Like qemu-img convert: only data is written, so the output stays sparse.
 * The source is opened read-only; a destination that is any file of the
 * source's chain is refused, and a failed conversion removes its partial
 * output.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/copy.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../part/map.h"
#include "cli.h"

static void
convert_usage (FILE *fp)
{
    fprintf (fp,
             "Usage: vmconvert convert [-f FMT] -O FMT [-o KEY=VAL,...] [-c] "
             "[-p] [--sync] [--all-blocks] SRC DST\n"
             "\n"
             "Convert the disk image SRC into a new image DST.  Unallocated\n"
             "and all-zero ranges are not written, so DST stays sparse; nor\n"
             "are ranges no partition, LV or filesystem uses.\n"
             "\n"
             "  -f, --format FMT          read SRC as FMT (default: probe)\n"
             "  -O, --output-format FMT   write DST as FMT (required)\n"
             "  -o, --options OPTS        creation options; -o help lists them\n"
             "  -c, --compress            compress the output (qcow2, vmdk)\n"
             "  -p, --progress            show percent, MB/s and ETA\n"
             "      --sync                fdatasync DST before exiting\n"
             "      --all-blocks          copy every block; by default only\n"
             "                            what the disk map (vmconvert map)\n"
             "                            counts as used is copied, the rest\n"
             "                            becomes zeros (holes)\n"
             "  -h, --help                this text\n"
             "\n"
             "Writable formats:\n");
    print_formats (fp, true);
}

static int
list_create_options (const char *format)
{
    const struct image_format *fmt = image_format_by_name (format);
    const struct create_option *o;

    if (fmt == NULL) {
        cli_error ();
        return 1;
    }
    if (fmt->create == NULL) {
        cli_errorf ("%s: writing this format is not supported", fmt->name);
        return 1;
    }
    printf ("Creation options for %s:\n", fmt->name);
    for (o = fmt->create_opts; o != NULL && o->name != NULL; o++) {
        printf ("  %-20s %s\n", o->name, o->help);
    }
    return 0;
}

int
cmd_convert (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "output-format", required_argument, NULL, 'O' },
        { "options", required_argument, NULL, 'o' },
        { "compress", no_argument, NULL, 'c' },
        { "progress", no_argument, NULL, 'p' },
        { "sync", no_argument, NULL, 's' },
        { "all-blocks", no_argument, NULL, 'B' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *format = NULL, *oformat = NULL, *src_name, *dst_name;
    struct options opts = { 0 };
    struct create_params cp = { 0 };
    struct copy_params params = { 0 };
    struct progress prog;
    struct image *src = NULL, *dst = NULL;
    bool progress = false, want_help = false, all_blocks = false;
    struct disk_map map;
    bool have_map = false;
    struct stat st;
    int c, r = 1;

    while ((c = getopt_long (argc, argv, "f:O:o:cph", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'O': oformat = optarg; break;
        case 'o':
            if (strcmp (optarg, "help") == 0 || strcmp (optarg, "?") == 0) {
                want_help = true;
            }
            else if (options_parse (&opts, optarg) == -1) {
                cli_error ();
                goto out;
            }
            break;
        case 'c': cp.compress = true; break;
        case 'p': progress = true; break;
        case 's': params.sync = true; break;
        case 'B': all_blocks = true; break;
        case 'h': convert_usage (stdout); r = 0; goto out;
        default: convert_usage (stderr); goto out;
        }
    }
    if (want_help) {
        if (oformat == NULL) {
            cli_errorf ("-o help needs -O FMT");
            goto out;
        }
        r = list_create_options (oformat);
        goto out;
    }
    if (oformat == NULL || argc - optind != 2) {
        convert_usage (stderr);
        goto out;
    }
    src_name = argv[optind];
    dst_name = argv[optind + 1];

    src = image_open (src_name, format, 0);
    if (src == NULL) {
        cli_error ();
        goto out;
    }
    /* Rule 1: never write any file the source reads from. */
    if (stat (dst_name, &st) == 0 &&
        image_uses_file (src, S_ISBLK (st.st_mode) ? st.st_rdev : st.st_dev,
                         S_ISBLK (st.st_mode) ? 0 : st.st_ino)) {
        cli_errorf ("%s: the destination is a file of the source image",
                    dst_name);
        goto out;
    }
    if (!all_blocks) {
        if (disk_map_build (&map, &src, &src_name, 1) == -1) {
            disk_map_free (&map);
            cli_error ();
            goto out;
        }
        have_map = true;
        map_print_warnings (&map);
        params.used = &map.disks[0].used;
    }
    cp.size = src->size;
    cp.opts = &opts;
    dst = image_create (dst_name, oformat, &cp);
    if (dst == NULL) {
        cli_error ();
        goto out;
    }
    if (progress) {
        progress_start (&prog, NULL);
        params.progress = progress_update;
        params.opaque = &prog;
    }
    if (vmc_copy (src, dst, &params, NULL) == -1) {
        if (progress) {
            progress_end (&prog);
        }
        cli_error ();
        goto out;
    }
    if (progress) {
        progress_end (&prog);
    }
    r = 0;
out:
    if (dst != NULL) {
        bool remove = r != 0 && !dst->file->is_block;

        image_close (dst);
        if (remove) {
            unlink (dst_name);
        }
    }
    if (have_map) {
        disk_map_free (&map);
    }
    image_close (src);
    options_free (&opts);
    return r;
}
