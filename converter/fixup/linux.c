/* SPDX-License-Identifier: MIT */
/*
 * The Linux fixups in order: see fixup.h.  Device names first (nothing
 * else depends on them), then package removal (its scripts may touch the
 * initramfs configuration), the network pins (a rebuilt initramfs takes
 * the rules with it), the initramfs, the UEFI fallback path.  A step failing
 * fails the whole, but package removal: tools that stay installed do not
 * start on another hypervisor, so those are warnings.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../lib/error.h"
#include "fixup.h"

void
fixup_say (const struct fixup_opts *o, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    if (o->log != NULL) {
        fprintf (o->log, "== %s\n", msg);
        fflush (o->log);
    }
    if (o->say != NULL) {
        o->say (o->opaque, msg);
    }
}

int
fixup_run (const struct guest *g, const struct fixup_opts *o,
           struct fixup_report *rep, const char *step,
           const char *const *argv)
{
    struct guest_cmd c;

    if (guest_run (g, argv, NULL, o->timeout > 0 ? o->timeout : 3600, o->log,
                   &c) < 0) {
        report_error (rep, step, "%s could not be run: %s", argv[0],
                      vmc_get_error ());
        return -1;
    }
    report_command (rep, step, argv, &c);
    return c.status;
}

int
fixup_linux (const struct inspection *in, const struct guest *g,
             const struct fixup_opts *o, struct fixup_report *rep)
{
    int r = 0;

    if (in->root < 0) {
        report_error (rep, "inspect", "no root filesystem");
        return -1;
    }
    if (fixup_devices (in, g, o, rep) < 0) {
        r = -1;
    }
    fixup_tools (in, g, o, rep);
    /* The guest boots without its pins, but comes up on the network
     * under other names: a rule that could not be written fails it. */
    if (fixup_network (in, g, o, rep) < 0) {
        r = -1;
    }
    if (fixup_initramfs (in, g, o, rep) < 0) {
        r = -1;
    }
    if (fixup_uefi (in, g, o, rep) < 0) {
        r = -1;
    }
    return r;
}
