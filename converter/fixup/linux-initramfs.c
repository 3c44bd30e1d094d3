/* SPDX-License-Identifier: MIT */
/*
 * Every kernel's initramfs rebuilt with the guest's own tool, in the
 * chroot, with the target's drivers (virtio_blk, virtio_scsi, virtio_pci,
 * virtio_net for KVM; the Hyper-V or VMware set for those targets), and
 * the result checked with the guest's own lister (lsinitramfs, lsinitrd):
 * an initramfs that does not hold the disk driver fails the conversion,
 * since the guest would not find its root.
 *
 *   initramfs-tools  the drivers are added to /etc/initramfs-tools/modules
 *                    (kept for the guest's later rebuilds; they are added
 *                    whatever MODULES= says), then update-initramfs -u
 *                    (-c for a kernel without one)
 *   dracut           /etc/dracut.conf.d/90-vmconvert.conf adds them
 *                    (add_drivers+=), then dracut -f per kernel, without
 *                    the appliance's hardware in its host-only command
 *                    line, with the lvm module when the root is on LVM
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "conftext.h"
#include "fixup.h"

#define STEP "initramfs"

/* Whether the text holds a line that is exactly NAME (a modules list). */
static bool
has_line (const char *text, size_t len, const char *name)
{
    size_t pos = 0, ll;
    const char *l;

    while (text_next_line (text, len, &pos, &l, &ll)) {
        while (ll > 0 && (*l == ' ' || *l == '\t')) {
            l++;
            ll--;
        }
        if (ll >= strlen (name) && memcmp (l, name, strlen (name)) == 0 &&
            (ll == strlen (name) || l[strlen (name)] == ' ' ||
             l[strlen (name)] == '\t' || l[strlen (name)] == '#')) {
            return true;
        }
    }
    return false;
}

/* The drivers to add: the target's that some kernel has as a module. */
static size_t
target_modules (const struct inspection *in, enum insp_target target,
                const char **mods)
{
    const enum insp_driver *want = insp_target_drivers (target);
    size_t n = 0;

    for (size_t d = 0; want[d] != DRV_COUNT; d++) {
        for (size_t k = 0; k < in->nkernels; k++) {
            if (in->kernels[k].drv[want[d]] == 'm') {
                mods[n++] = insp_driver_names[want[d]];
                break;
            }
        }
    }
    return n;
}

static int
itools_modules (const struct guest *g, struct fixup_report *rep,
                const char *const *mods, size_t n, enum insp_target target)
{
    static const char path[] = "/etc/initramfs-tools/modules";
    char *text = NULL, *out;
    size_t len = 0, o;
    int r = guest_read (g, path, 1u << 20, &text, &len);
    bool added = false;

    if (r < 0) {
        report_error (rep, STEP, "%s: %s", path, vmc_get_error ());
        return -1;
    }
    out = malloc (len + 256 + n * 32);
    if (out == NULL) {
        free (text);
        report_error (rep, STEP, "out of memory");
        return -1;
    }
    memcpy (out, text != NULL ? text : "", len);
    o = len;
    if (o > 0 && out[o - 1] != '\n') {
        out[o++] = '\n';
    }
    for (size_t i = 0; i < n; i++) {
        if (text != NULL && has_line (text, len, mods[i])) {
            continue;
        }
        if (!added) {
            o += (size_t) snprintf (out + o, 128, "# added by vmconvert for "
                                    "%s\n", insp_target_name (target));
            added = true;
        }
        o += (size_t) snprintf (out + o, 32, "%s\n", mods[i]);
        report_change (rep, STEP, path, "added %s", mods[i]);
    }
    r = 0;
    if (added && guest_write (g, path, out, o, 0644) < 0) {
        report_error (rep, STEP, "%s: %s", path, vmc_get_error ());
        r = -1;
    }
    free (out);
    free (text);
    return r;
}

static int
dracut_conf (const struct guest *g, struct fixup_report *rep,
             const char *const *mods, size_t n, enum insp_target target)
{
    static const char path[] = "/etc/dracut.conf.d/90-vmconvert.conf";
    char text[1024];
    size_t o;

    o = (size_t) snprintf (text, sizeof text, "# vmconvert: the drivers of "
                           "the %s target, for every initramfs\n"
                           "add_drivers+=\" ", insp_target_name (target));
    for (size_t i = 0; i < n && o < sizeof text - 64; i++) {
        o += (size_t) snprintf (text + o, sizeof text - o, "%s ", mods[i]);
    }
    o += (size_t) snprintf (text + o, sizeof text - o, "\"\n");
    if (guest_mkdirs (g, "/etc/dracut.conf.d") < 0 ||
        guest_write (g, path, text, o, 0644) < 0) {
        report_error (rep, STEP, "%s: %s", path, vmc_get_error ());
        return -1;
    }
    report_change (rep, STEP, path, "written (add_drivers)");
    return 0;
}

static bool
root_on_lvm (const struct inspection *in)
{
    for (size_t i = 0; i < in->nfstab; i++) {
        const struct insp_fstab *e = &in->fstab[i];

        if ((strcmp (e->file, "/") == 0 || strcmp (e->file, "/usr") == 0) &&
            e->vol >= 0 && strcmp (in->map.vols[e->vol].kind, "lv") == 0) {
            return true;
        }
    }
    return in->root >= 0 && strcmp (in->map.vols[in->root].kind, "lv") == 0;
}

/* Check with the guest's lister that INITRD holds the drivers K needs:
 * 0 when it does, -1 (reported) when one is missing. */
static int
verify (const struct guest *g, const struct fixup_opts *o,
        struct fixup_report *rep, const struct insp_kernel *k,
        const char *initrd, bool dracut)
{
    const enum insp_driver *want = insp_target_drivers (o->target);
    char script[512];
    const char *argv[] = { "/bin/sh", "-c", script, "sh", initrd, NULL };
    struct guest_cmd c;
    int r = 0;

    snprintf (script, sizeof script, "%s \"$1\" | grep -E "
              "'/(virtio_blk|virtio_scsi|virtio_pci|virtio_net|hv_vmbus|"
              "hv_storvsc|hv_netvsc|vmw_pvscsi|vmxnet3)\\.ko' | "
              "sed 's,.*/,,'", dracut ? "lsinitrd" : "lsinitramfs");
    if (guest_run (g, argv, NULL, 600, o->log, &c) < 0) {
        report_error (rep, STEP, "%s: cannot list it: %s", initrd,
                      vmc_get_error ());
        return -1;
    }
    for (size_t d = 0; want[d] != DRV_COUNT; d++) {
        char needle[40];

        if (k->drv[want[d]] != 'm') {
            continue;           /* built in, or not in this kernel */
        }
        snprintf (needle, sizeof needle, "%s.ko", insp_driver_names[want[d]]);
        if (strstr (c.tail, needle) == NULL) {
            bool disk = want[d] == DRV_VIRTIO_BLK ||
                        want[d] == DRV_HV_STORVSC ||
                        want[d] == DRV_VMW_PVSCSI;

            if (disk) {
                report_error (rep, STEP, "%s: %s is not in it after the "
                              "rebuild", initrd, insp_driver_names[want[d]]);
                r = -1;
            }
            else {
                report_warning (rep, STEP, "%s: %s is not in it after the "
                                "rebuild", initrd,
                                insp_driver_names[want[d]]);
            }
        }
    }
    if (r == 0) {
        report_change (rep, STEP, initrd, "checked with %s: it holds the "
                       "%s drivers", dracut ? "lsinitrd" : "lsinitramfs",
                       insp_target_name (o->target));
    }
    return r;
}

int
fixup_initramfs (const struct inspection *in, const struct guest *g,
                 const struct fixup_opts *o, struct fixup_report *rep)
{
    const char *mods[DRV_COUNT];
    size_t n = target_modules (in, o->target, mods);
    bool dracut = strcmp (in->initramfs_tool, "dracut") == 0;
    size_t rebuilt = 0;
    int r = 0;

    if (!dracut && strcmp (in->initramfs_tool, "initramfs-tools") != 0) {
        report_error (rep, STEP, "initramfs tool %s is not supported",
                      in->initramfs_tool[0] ? in->initramfs_tool : "(none)");
        return -1;
    }
    if ((dracut ? dracut_conf (g, rep, mods, n, o->target) :
         itools_modules (g, rep, mods, n, o->target)) < 0) {
        return -1;
    }
    for (size_t i = 0; i < in->nkernels; i++) {
        const struct insp_kernel *k = &in->kernels[i];
        char initrd[300], drivers[400] = "";
        const char *argv[16];
        size_t a = 0;
        int st;

        if (!k->modules) {
            report_warning (rep, STEP, "kernel %s has no modules: its "
                            "initramfs is left as it is", k->version);
            continue;
        }
        if (k->initrd[0] != '\0') {
            text_set (initrd, sizeof initrd, k->initrd);
        }
        else {
            snprintf (initrd, sizeof initrd, strcmp (in->pkg, "dpkg") == 0 ?
                      "/boot/initrd.img-%s" : "/boot/initramfs-%s.img",
                      k->version);
        }
        fixup_say (o, "initramfs of kernel %s: rebuilding with %s",
                   k->version, in->initramfs_tool);
        if (dracut) {
            for (size_t m = 0; m < n; m++) {
                size_t l = strlen (drivers);

                snprintf (drivers + l, sizeof drivers - l, "%s%s",
                          m > 0 ? " " : "", mods[m]);
            }
            argv[a++] = guest_exists (g, "/usr/bin/dracut") ?
                        "/usr/bin/dracut" : guest_exists (g,
                        "/usr/sbin/dracut") ? "/usr/sbin/dracut" :
                        "/sbin/dracut";
            argv[a++] = "--force";
            argv[a++] = "--no-hostonly-cmdline";
            if (n > 0) {
                argv[a++] = "--add-drivers";
                argv[a++] = drivers;
            }
            if (root_on_lvm (in)) {
                argv[a++] = "--add";
                argv[a++] = "lvm";
            }
            argv[a++] = initrd;
            argv[a++] = k->version;
        }
        else {
            argv[a++] = guest_exists (g, "/usr/sbin/update-initramfs") ?
                        "/usr/sbin/update-initramfs" :
                        "/sbin/update-initramfs";
            argv[a++] = k->initrd[0] != '\0' ? "-u" : "-c";
            argv[a++] = "-k";
            argv[a++] = k->version;
        }
        argv[a] = NULL;
        st = fixup_run (g, o, rep, STEP, argv);
        if (st != 0) {
            /* The newest kernel (the first: inspection sorts them) is the
             * one the boot loader starts; an older one that cannot be
             * rebuilt is only a warning. */
            if (i == 0) {
                report_error (rep, STEP, "the initramfs of kernel %s could "
                              "not be rebuilt (%s exited with %d)",
                              k->version, argv[0], st);
                r = -1;
            }
            else {
                report_warning (rep, STEP, "the initramfs of kernel %s "
                                "could not be rebuilt (%s exited with %d)",
                                k->version, argv[0], st);
            }
            continue;
        }
        report_change (rep, STEP, initrd, "rebuilt by %s with %s",
                       in->initramfs_tool, n > 0 ? mods[0] : "no new driver");
        if (verify (g, o, rep, k, initrd, dracut) < 0) {
            if (i == 0) {
                r = -1;
            }
            continue;
        }
        rebuilt++;
    }
    if (rebuilt == 0) {
        report_error (rep, STEP, "no initramfs was rebuilt");
        r = -1;
    }
    return r;
}
