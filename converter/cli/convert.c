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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fixup/fixup.h"
#include "../fixup/inspect.h"
#include "../lib/copy.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../part/map.h"
#include "cli.h"
#include "fixup-vm.h"

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
             "      --fixup               make the guest ready for the target\n"
             "                            hypervisor first (inspection,\n"
             "                            pre-flight, fixups in the appliance\n"
             "                            booted in QEMU over an overlay of\n"
             "                            SRC, which is never written)\n"
             "      --target T            kvm (default), hyperv or vmware\n"
             "      --root ROOT           the root filesystem, when several\n"
             "      --mac NAME=MAC        the MAC of the guest's interface\n"
             "                            NAME, to pin its name (repeatable)\n"
             "      --fixup-report FILE   the fixup report (JSON); default\n"
             "                            DST.fixup.json\n"
             "      --appliance DIR       the appliance's vmlinuz, initrd.img\n"
             "      --fixup-memory MB     the fixup VM's memory (2048)\n"
             "      --fixup-timeout S     give up on the fixup VM after S\n"
             "                            seconds (default 7200)\n"
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

/* Inspection and pre-flight on the host, before the VM: a guest that
 * cannot be converted is refused in seconds. */
static int
host_preflight (struct image *src, const char *name,
                const struct fixup_vm *f)
{
    struct inspect_opts io = { .root = f->root };
    struct inspection in;
    int r = -1;

    insp_target_parse (f->target, &io.target);
    if (inspect_disks (&in, &src, &name, 1, &io) < 0) {
        cli_error ();
        inspect_free (&in);
        return -1;
    }
    preflight (&in, &io);
    for (size_t i = 0; i < in.nproblems; i++) {
        const struct insp_problem *p = &in.problems[i];

        fprintf (stderr, "vmconvert: pre-flight %s: %s\n",
                 p->sev == SEV_ERROR ? "error" : "warning", p->msg);
        if (p->sev == SEV_ERROR && p->advice[0] != '\0') {
            fprintf (stderr, "vmconvert:   what to do: %s\n", p->advice);
        }
    }
    if (in.root >= 0 && in.nerrors == 0) {
        fprintf (stderr, "vmconvert: guest: %s on %s, %s, %s, %zu kernel(s)\n",
                 in.pretty, in.map.vols[in.root].name, in.firmware,
                 in.initramfs_tool, in.nkernels);
        r = 0;
    }
    else {
        cli_errorf ("the guest cannot be converted (pre-flight); nothing "
                    "was copied");
    }
    inspect_free (&in);
    return r;
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
        { "fixup", no_argument, NULL, 'X' },
        { "target", required_argument, NULL, 'T' },
        { "root", required_argument, NULL, 'R' },
        { "mac", required_argument, NULL, 'M' },
        { "fixup-report", required_argument, NULL, 'P' },
        { "appliance", required_argument, NULL, 'A' },
        { "fixup-memory", required_argument, NULL, 'm' },
        { "fixup-timeout", required_argument, NULL, 't' },
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
    bool have_map = false, fixup = false;
    struct fixup_vm fvm = { .target = "kvm", .timeout = 7200 };
    const char *report_name = NULL;
    char report_default[4096];
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
        case 'X': fixup = true; break;
        case 'T': {
            enum insp_target t;

            if (insp_target_parse (optarg, &t) < 0) {
                cli_error ();
                goto out;
            }
            fvm.target = insp_target_name (t);
            break;
        }
        case 'R': fvm.root = optarg; break;
        case 'M': {
            struct fixup_mac m;

            if (fixup_parse_mac (optarg, &m) < 0) {
                cli_error ();
                goto out;
            }
            if (fvm.nmacs == sizeof fvm.macs / sizeof fvm.macs[0]) {
                cli_errorf ("too many --mac options");
                goto out;
            }
            fvm.macs[fvm.nmacs++] = optarg;
            break;
        }
        case 'P': report_name = optarg; break;
        case 'A': fvm.appliance = optarg; break;
        case 'm': fvm.memory_mb = (int) strtol (optarg, NULL, 10); break;
        case 't': fvm.timeout = (int) strtol (optarg, NULL, 10); break;
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
    if (fixup) {
        if (host_preflight (src, src_name, &fvm) < 0) {
            goto out;
        }
        fvm.src = src_name;
        fvm.src_format = src->fmt->name;
        c = fixup_vm_run (&fvm);
        if (fvm.report != NULL) {
            FILE *fp;

            if (report_name == NULL) {
                snprintf (report_default, sizeof report_default,
                          "%s.fixup.json", dst_name);
                report_name = report_default;
            }
            fp = fopen (report_name, "we");
            if (fp == NULL || fwrite (fvm.report, 1, fvm.report_len, fp) !=
                fvm.report_len || fclose (fp) != 0) {
                cli_errorf ("%s: the fixup report could not be written",
                            report_name);
                goto out;
            }
            fprintf (stderr, "vmconvert: fixup report: %s\n", report_name);
        }
        if (c != 0) {
            cli_error ();
            goto out;
        }
        fprintf (stderr, "vmconvert: the guest was fixed up in %.0f s; "
                 "copying from the overlay\n", fvm.seconds);
        image_close (src);
        src_name = fvm.overlay;
        src = image_open (src_name, "qcow2", 0);
        if (src == NULL) {
            cli_error ();
            goto out;
        }
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
    fixup_vm_cleanup (&fvm);
    return r;
}
