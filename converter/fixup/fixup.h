/* SPDX-License-Identifier: MIT */
/*
 * Fixups: a Linux guest made ready for the target hypervisor, on its
 * mounted filesystems (which are an overlay of the source: a device-mapper
 * snapshot in the appliance, a qcow2 overlay in the fixup VM -- never the
 * source itself).
 *
 *   devices    fstab, crypttab, resume, GRUB's configuration and the kernel
 *              command line name filesystems by UUID instead of device
 *              names that change with the hardware (/dev/sda1,
 *              /dev/disk/by-id/...); GRUB_DISABLE_LINUX_UUID is dropped;
 *              GRUB's device.map and stale device caches are removed
 *   tools      other hypervisors' guest tools removed with the guest's
 *              package manager
 *   network    each configured interface's name pinned to its MAC (a
 *              systemd .link file, or a udev rule), so its configuration
 *              keeps working on the new NIC model
 *   initramfs  every kernel's initramfs rebuilt with the guest's own tool
 *              and the target's drivers, then checked with the guest's own
 *              lister
 *   uefi       the UEFI fallback boot path EFI/BOOT/BOOTX64.EFI made to
 *              exist (the target VM starts with empty NVRAM)
 *
 * Every change goes into the fixup report (JSON), which travels with the
 * job.
 */
#ifndef VMC_FIXUP_FIXUP_H
#define VMC_FIXUP_FIXUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "guestcmd.h"
#include "guestfile.h"
#include "inspect.h"

#define FIXUP_MAX_MACS 32

struct fixup_mac {
    char name[32];              /* the guest's interface name */
    char mac[18];               /* aa:bb:cc:dd:ee:ff */
    char from[32];              /* "command line", "this machine" */
};

struct fixup_opts {
    enum insp_target target;
    /* MACs for the guest's interfaces known from outside the guest: the
     * source machine's NICs (in the appliance) or --mac NAME=MAC. */
    struct fixup_mac macs[FIXUP_MAX_MACS];
    size_t nmacs;
    /* Where the commands' output goes (may be NULL). */
    FILE *log;
    /* Called with one line of progress for a person (may be NULL). */
    void (*say) (void *opaque, const char *msg);
    void *opaque;
    int timeout;                /* seconds per command (0: 3600) */
};

/* Parse "NAME=MAC" (or "MAC:NAME" as virt-v2v writes it) into M.  0, or
 * -1 with a message. */
int fixup_parse_mac (const char *s, struct fixup_mac *m);

/* The report: JSON fragments collected while fixing up. */
struct fixup_report {
    FILE *changes, *commands, *warnings, *errors, *ifaces;
    char *changes_buf, *commands_buf, *warnings_buf, *errors_buf,
         *ifaces_buf;
    size_t changes_len, commands_len, warnings_len, errors_len, ifaces_len;
    unsigned nchanges, ncommands, nwarnings, nerrors, nifaces;
};

int report_init (struct fixup_report *r);
void report_free (struct fixup_report *r);
void report_change (struct fixup_report *r, const char *step,
                    const char *file, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
void report_warning (struct fixup_report *r, const char *step,
                     const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
void report_error (struct fixup_report *r, const char *step,
                   const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
void report_command (struct fixup_report *r, const char *step,
                     const char *const *argv, const struct guest_cmd *c);
void report_iface (struct fixup_report *r, const char *name, const char *mac,
                   const char *how, const char *file);
/* The whole report as one JSON object on FP (the inspection's summary,
 * the target, what changed, the commands run, the interfaces pinned,
 * warnings and errors, and "result": "ok" or "failed"). */
void report_write (const struct fixup_report *r, FILE *fp,
                   const struct inspection *in, enum insp_target target);

/* Fix up the guest inspected as IN and mounted (root and its fstab mounts,
 * as in IN's tree) at G, with /proc, /sys, /dev and /run mounted inside
 * (guest_mount_api).  0 when every fixup that booting needs succeeded
 * (warnings may remain), -1 when one failed (the report says which). */
int fixup_linux (const struct inspection *in, const struct guest *g,
                 const struct fixup_opts *o, struct fixup_report *rep);

/* The steps, each in its own file (linux-*.c); 0 or -1 as above. */
int fixup_devices (const struct inspection *in, const struct guest *g,
                   const struct fixup_opts *o, struct fixup_report *rep);
int fixup_tools (const struct inspection *in, const struct guest *g,
                 const struct fixup_opts *o, struct fixup_report *rep);
int fixup_network (const struct inspection *in, const struct guest *g,
                   const struct fixup_opts *o, struct fixup_report *rep);
int fixup_initramfs (const struct inspection *in, const struct guest *g,
                     const struct fixup_opts *o, struct fixup_report *rep);
int fixup_uefi (const struct inspection *in, const struct guest *g,
                const struct fixup_opts *o, struct fixup_report *rep);

/* Say a line of progress through o->say and into the log. */
void fixup_say (const struct fixup_opts *o, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Run a guest command for STEP, recorded in the report: its exit status,
 * or -1 when it could not run. */
int fixup_run (const struct guest *g, const struct fixup_opts *o,
               struct fixup_report *rep, const char *step,
               const char *const *argv);

#endif
