/* SPDX-License-Identifier: MIT */
/*
 * fixup-dir: the Linux fixups on a guest mounted by the caller, for tests
 * that judge them on the host without booting anything.
 *
 *   fixup-dir [--target T] [--mac NAME=MAC]... ROOTDIR IMG...
 *
 * IMG are the guest's disks (inspected, read-only); ROOTDIR is where the
 * caller mounted a copy of the same filesystems (root, and its fstab
 * mounts).  /proc, /sys, /dev and /run are mounted inside ROOTDIR for the
 * guest's tools and unmounted again.  The report goes to stdout, the
 * tools' output to stderr.  Exit status 0 when the fixups succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fixup/fixup.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"

static void
say (void *opaque, const char *msg)
{
    (void) opaque;
    fprintf (stderr, "fixup-dir: %s\n", msg);
}

int
main (int argc, char **argv)
{
    struct fixup_opts o = { .target = TARGET_KVM, .say = say };
    struct inspect_opts io = { .target = TARGET_KVM };
    struct image *imgs[16];
    struct inspection in;
    struct fixup_report rep;
    struct guest g;
    int i = 1, n = 0, r;

    o.log = stderr;
    while (i < argc && strncmp (argv[i], "--", 2) == 0 && i + 1 < argc) {
        if (strcmp (argv[i], "--target") == 0) {
            if (insp_target_parse (argv[i + 1], &o.target) < 0) {
                fprintf (stderr, "fixup-dir: %s\n", vmc_get_error ());
                return 2;
            }
            io.target = o.target;
        }
        else if (strcmp (argv[i], "--mac") == 0 && o.nmacs < FIXUP_MAX_MACS) {
            if (fixup_parse_mac (argv[i + 1], &o.macs[o.nmacs++]) < 0) {
                fprintf (stderr, "fixup-dir: %s\n", vmc_get_error ());
                return 2;
            }
        }
        else {
            break;
        }
        i += 2;
    }
    if (argc - i < 2 || argc - i > 17) {
        fprintf (stderr, "usage: fixup-dir [--target T] [--mac NAME=MAC]... "
                 "ROOTDIR IMG...\n");
        return 2;
    }
    for (int k = i + 1; k < argc; k++) {
        imgs[n] = image_open (argv[k], NULL, 0);
        if (imgs[n] == NULL) {
            fprintf (stderr, "fixup-dir: %s\n", vmc_get_error ());
            return 1;
        }
        n++;
    }
    if (inspect_disks (&in, imgs, (const char *const *) argv + i + 1,
                       (size_t) n, &io) < 0) {
        fprintf (stderr, "fixup-dir: %s\n", vmc_get_error ());
        return 1;
    }
    if (preflight (&in, &io) > 0) {
        inspect_print_text (stderr, &in);
        return 3;
    }
    if (guest_open (&g, argv[i]) < 0 || guest_mount_api (&g) < 0 ||
        report_init (&rep) < 0) {
        fprintf (stderr, "fixup-dir: %s\n", vmc_get_error ());
        return 1;
    }
    r = fixup_linux (&in, &g, &o, &rep);
    guest_umount_api (&g);
    guest_close (&g);
    report_write (&rep, stdout, &in, o.target);
    report_free (&rep);
    inspect_free (&in);
    for (int k = 0; k < n; k++) {
        image_close (imgs[k]);
    }
    return r == 0 ? 0 : 1;
}
