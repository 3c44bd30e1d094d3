/* SPDX-License-Identifier: MIT */
/*
 * Running the guest's own tools (update-initramfs, dracut, dpkg, rpm) in a
 * chroot of its mounted root, with /proc, /sys, /dev and a private /run
 * mounted inside it first.  Output is kept (the end of it goes into the
 * fixup report) and every command has a time limit.
 */
#ifndef VMC_FIXUP_GUESTCMD_H
#define VMC_FIXUP_GUESTCMD_H

#include <stdio.h>

#include "guestfile.h"

/* Mount /proc, /sys, /dev (a recursive bind of ours) and a tmpfs on /run
 * inside the guest; the mount points are opened inside the guest first,
 * so a symlink cannot move a mount elsewhere.  0, or -1 with a message
 * (what was mounted is unmounted again). */
int guest_mount_api (const struct guest *g);
void guest_umount_api (const struct guest *g);

/* Mount SRC (TYPE, FLAGS, DATA as mount(2)) on directory DIR of the
 * guest, opened inside it (made when missing); unmount it.  0, or -1 with
 * a message. */
int guest_mount_at (const struct guest *g, const char *dir, const char *src,
                    const char *type, unsigned long flags, const char *data);
int guest_umount_at (const struct guest *g, const char *dir);

struct guest_cmd {
    int status;                 /* exit status, 128+N for signal N, -1 when
                                 * it could not run or timed out */
    double seconds;
    char tail[2048];            /* the end of its output */
};

/* Run ARGV (ARGV[0] a path inside the guest) chrooted into the guest with
 * a clean environment (PATH, LANG=C, HOME=/root, TMPDIR on the private
 * /run, DEBIAN_FRONTEND=noninteractive, plus ENV, NULL-terminated, may be
 * NULL).  Its output goes to LOG (may be NULL), each line with PREFIX.
 * Killed after TIMEOUT seconds.  0 when it ran (R->status says how it
 * ended), -1 when it could not be started (message set). */
int guest_run (const struct guest *g, const char *const *argv,
               const char *const *env, int timeout, FILE *log,
               struct guest_cmd *r);

#endif
