/* SPDX-License-Identifier: MIT */
/*
 * vmconvert inspect [--json] [-f FMT] [--root ROOT] [--target T] IMG|DEV...
 *
 * What the guest on these disks is and whether it can be converted: see
 * converter/fixup/inspect.h.  Nothing is mounted, nothing of the guest is
 * run, the disks are only read.  Exit status 0 when the guest can be
 * converted, 3 when pre-flight refuses it, 1 on an error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "../fixup/inspect.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "cli.h"

static void
inspect_usage (FILE *fp)
{
    fprintf (fp,
             "usage: vmconvert inspect [--json] [-f FMT] [--root ROOT] "
             "[--target kvm|hyperv|vmware] IMG|DEV...\n"
             "Finds the guest's root filesystem (also on LVM, across the "
             "disks given, in the\norder the guest sees them), its "
             "distribution, kernels and drivers, boot loader,\nfstab, "
             "network configuration and other hypervisors' tools, and "
             "runs the pre-flight\nchecks of a conversion.  Exit status: 0 "
             "convertible, 3 refused, 1 error.\n");
}

int
cmd_inspect (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },
        { "root", required_argument, NULL, 'r' },
        { "target", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct inspect_opts o = { .target = TARGET_KVM };
    const char *format = NULL;
    struct image **imgs = NULL;
    struct inspection in;
    bool json = false, have_in = false;
    int c, r = 1, n;

    while ((c = getopt_long (argc, argv, "f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'r':
            o.root = optarg;
            break;
        case 't':
            if (insp_target_parse (optarg, &o.target) < 0) {
                cli_error ();
                return 1;
            }
            break;
        case 'h':
            inspect_usage (stdout);
            return 0;
        default:
            inspect_usage (stderr);
            return 1;
        }
    }
    if (optind >= argc) {
        inspect_usage (stderr);
        return 1;
    }
    n = argc - optind;
    imgs = calloc ((size_t) n, sizeof *imgs);
    if (imgs == NULL) {
        cli_errorf ("out of memory");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        imgs[i] = image_open (argv[optind + i], format, 0);
        if (imgs[i] == NULL) {
            cli_error ();
            goto out;
        }
    }
    have_in = true;
    if (inspect_disks (&in, imgs, (const char *const *) argv + optind,
                       (size_t) n, &o) < 0) {
        cli_error ();
        goto out;
    }
    preflight (&in, &o);
    if (json) {
        inspect_print_json (stdout, &in);
    }
    else {
        inspect_print_text (stdout, &in);
    }
    r = in.nerrors == 0 && in.root >= 0 ? 0 : 3;
out:
    if (have_in) {
        inspect_free (&in);
    }
    for (int i = 0; i < n; i++) {
        image_close (imgs[i]);
    }
    free (imgs);
    return r;
}
