/* SPDX-License-Identifier: MIT */
/*
 * Other hypervisors' guest tools removed with the guest's own package
 * manager (dpkg --purge, rpm -e), as virt-v2v does: VMware Tools /
 * open-vm-tools, VirtualBox additions, Hyper-V daemons, Xen's
 * xe-guest-utilities -- except the target's own.  Service starts and stops
 * are refused while packages are removed (policy-rc.d answers 101), since
 * nothing of the guest runs.  A package that cannot be removed (another
 * package depends on it) is a warning, not a failure: such tools do not
 * start on another hypervisor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "fixup.h"

#define STEP "tools"
#define MAX_PKGS 16

static bool
wanted_gone (const struct insp_tool *t, enum insp_target target)
{
    return !((target == TARGET_VMWARE && strcmp (t->what, "vmware") == 0) ||
             (target == TARGET_HYPERV && strcmp (t->what, "hyperv") == 0));
}

static const char *
first_of (const struct guest *g, const char *a, const char *b)
{
    return guest_exists (g, a) ? a : guest_exists (g, b) ? b : NULL;
}

/* The package owning FILE, asked of rpm: 0 with PKG set, -1. */
static int
rpm_owner (const struct guest *g, const struct fixup_opts *o,
           const char *rpm, const char *file, char *pkg, size_t cap)
{
    const char *argv[] = { rpm, "-qf", "--qf", "%{NAME}\n", file, NULL };
    struct guest_cmd c;
    char *nl;
    const char *l;

    if (guest_run (g, argv, NULL, 300, o->log, &c) < 0 || c.status != 0) {
        return -1;
    }
    /* The last line of the output. */
    nl = c.tail + strlen (c.tail);
    while (nl > c.tail && nl[-1] == '\n') {
        *--nl = '\0';
    }
    l = strrchr (c.tail, '\n');
    l = l != NULL ? l + 1 : c.tail;
    if (*l == '\0' || strchr (l, ' ') != NULL || strlen (l) >= cap) {
        return -1;
    }
    memcpy (pkg, l, strlen (l) + 1);
    return 0;
}

int
fixup_tools (const struct inspection *in, const struct guest *g,
             const struct fixup_opts *o, struct fixup_report *rep)
{
    static const char policy[] = "/usr/sbin/policy-rc.d";
    char pkgs[MAX_PKGS][64];
    const char *argv[MAX_PKGS + 4];
    size_t n = 0;
    const char *tool;
    bool dpkg = strcmp (in->pkg, "dpkg") == 0, own_policy = false;
    int st;

    for (size_t i = 0; i < in->ntools && n < MAX_PKGS; i++) {
        const struct insp_tool *t = &in->tools[i];
        char pkg[64] = "";

        if (!wanted_gone (t, o->target)) {
            continue;
        }
        if (dpkg) {
            snprintf (pkg, sizeof pkg, "%s", t->package);
        }
        else if (strcmp (in->pkg, "rpm") == 0) {
            const char *rpm = first_of (g, "/usr/bin/rpm", "/bin/rpm");

            if (rpm == NULL || rpm_owner (g, o, rpm, t->evidence, pkg,
                                          sizeof pkg) < 0) {
                pkg[0] = '\0';
            }
        }
        if (pkg[0] == '\0') {
            report_warning (rep, STEP, "%s tools (%s) are not from a "
                            "package: not removed", t->what, t->evidence);
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            if (strcmp (pkgs[k], pkg) == 0) {
                pkg[0] = '\0';
            }
        }
        if (pkg[0] != '\0') {
            snprintf (pkgs[n++], sizeof pkgs[0], "%s", pkg);
        }
    }
    if (n == 0) {
        return 0;
    }
    fixup_say (o, "removing other hypervisors' tools: %s%s", pkgs[0],
               n > 1 ? " ..." : "");
    tool = dpkg ? first_of (g, "/usr/bin/dpkg", "/bin/dpkg") :
           first_of (g, "/usr/bin/rpm", "/bin/rpm");
    if (tool == NULL) {
        report_warning (rep, STEP, "the package manager was not found: "
                        "%s not removed", pkgs[0]);
        return 0;
    }
    if (dpkg) {
        argv[0] = tool;
        argv[1] = "--purge";
        for (size_t k = 0; k < n; k++) {
            argv[2 + k] = pkgs[k];
        }
        argv[2 + n] = NULL;
        if (!guest_exists (g, policy)) {
            static const char text[] = "#!/bin/sh\n# vmconvert: no service "
                                       "is started or stopped while it "
                                       "changes this system\nexit 101\n";

            own_policy = guest_write (g, policy, text, sizeof text - 1,
                                      0755) == 0;
        }
    }
    else {
        argv[0] = tool;
        argv[1] = "-e";
        for (size_t k = 0; k < n; k++) {
            argv[2 + k] = pkgs[k];
        }
        argv[2 + n] = NULL;
    }
    st = fixup_run (g, o, rep, STEP, argv);
    if (st != 0 && n > 1) {
        /* One at a time: remove what can be removed. */
        for (size_t k = 0; k < n; k++) {
            const char *one[] = { argv[0], argv[1], pkgs[k], NULL };

            if (fixup_run (g, o, rep, STEP, one) != 0) {
                report_warning (rep, STEP, "%s could not be removed (see its "
                                "command's output)", pkgs[k]);
            }
            else {
                report_change (rep, STEP, NULL, "package %s removed",
                               pkgs[k]);
            }
        }
    }
    else if (st != 0) {
        report_warning (rep, STEP, "%s could not be removed (see its "
                        "command's output)", pkgs[0]);
    }
    else {
        for (size_t k = 0; k < n; k++) {
            report_change (rep, STEP, NULL, "package %s removed", pkgs[k]);
        }
    }
    if (own_policy && guest_unlink (g, policy) < 0) {
        report_warning (rep, STEP, "%s: %s", policy, vmc_get_error ());
    }
    return 0;
}
