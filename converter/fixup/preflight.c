/* SPDX-License-Identifier: MIT */
/*
 * Pre-flight checks (DESIGN.md rule 2: fail early): what inspection found
 * is judged before a byte is copied.  An error refuses the conversion, a
 * warning is reported and the conversion goes on; each says what to do.
 *
 * Errors: no root filesystem, several and none chosen; an architecture the
 * appliance cannot run the guest's tools for; a filesystem of the guest
 * that was not cleanly unmounted, or a hibernated guest; a layout we do not
 * convert (the root on btrfs, LUKS, MD RAID, a thin or RAID LV); no kernel
 * that has, or can get into its initramfs, the target's drivers; an
 * initramfs tool we cannot drive; too little free space in /boot for a new
 * initramfs.  Warnings: encrypted volumes, other hypervisors' tools that
 * are not packaged, little free space on /, kernels without modules.
 */
#include <stdio.h>
#include <string.h>

#include "conftext.h"
#include "inspect.h"

#define MIB (UINT64_C (1) << 20)

/* What a new initramfs needs on top of the largest one there: room for
 * the tool's temporary copy ("update-initramfs" writes FILE.new and
 * renames it) and a margin for the drivers added. */
#define INITRD_MARGIN (16 * MIB)
#define ROOT_MIN_FREE (100 * MIB)

static void
check_roots (struct inspection *in, const struct inspect_opts *o)
{
    char list[400] = "";

    for (size_t i = 0; i < in->nroots; i++) {
        size_t l = strlen (list);

        snprintf (list + l, sizeof list - l, "%s%s", i > 0 ? ", " : "",
                  in->map.vols[in->roots[i]].name);
    }
    if (in->nroots == 0) {
        char seen[400] = "";

        for (size_t i = 0; i < in->map.nvols; i++) {
            size_t l = strlen (seen);

            snprintf (seen + l, sizeof seen - l, "%s%s (%s)", i > 0 ? ", " :
                      "", in->map.vols[i].name, in->map.vols[i].fs.type);
        }
        insp_problem (in, SEV_ERROR, "no-root",
                      "Give every disk of the machine. A root on btrfs, "
                      "LUKS, MD RAID or a thin/RAID LV is not converted yet: "
                      "copy such disks without fixups.",
                      "no Linux root filesystem was found on these disks "
                      "(seen: %s)", seen[0] != '\0' ? seen : "nothing");
        return;
    }
    if (in->root < 0) {
        if (o != NULL && o->root != NULL && o->root[0] != '\0') {
            insp_problem (in, SEV_ERROR, "root-not-found",
                          "Name one of the root filesystems found.",
                          "the root %s was asked for, but the roots found "
                          "are: %s", o->root, list);
        }
        else {
            insp_problem (in, SEV_ERROR, "several-roots",
                          "Choose one with --root (vmconvert.root= in the "
                          "appliance), or --root first.",
                          "these disks hold several operating systems: %s",
                          list);
        }
    }
}

static bool
mounted_vol (const struct inspection *in, int vi, const char **where)
{
    if (vi == in->root) {
        *where = "/";
        return true;
    }
    for (size_t i = 0; i < in->nfstab; i++) {
        if (in->fstab[i].vol == vi && strcmp (in->fstab[i].type, "swap")) {
            *where = in->fstab[i].file;
            return true;
        }
    }
    return false;
}

static void
check_clean (struct inspection *in)
{
    for (size_t i = 0; i < in->map.nvols; i++) {
        const struct map_vol *v = &in->map.vols[i];
        const char *where = NULL;

        if (!v->fs.unclean) {
            continue;
        }
        if (strcmp (v->fs.type, "swap") == 0) {
            insp_problem (in, SEV_ERROR, "hibernated",
                          "Boot the machine, let it resume, and shut it down "
                          "(not hibernate); then convert it.",
                          "%s: %s: the guest is hibernated", v->name,
                          v->fs.why);
            continue;
        }
        if (!mounted_vol (in, (int) i, &where)) {
            insp_problem (in, SEV_WARNING, "unclean-fs", NULL,
                          "%s (%s, not mounted by the guest): %s", v->name,
                          v->fs.type, v->fs.why);
            continue;
        }
        insp_problem (in, SEV_ERROR, "unclean-fs",
                      "Boot the machine and shut it down cleanly (or run "
                      "fsck on that filesystem), then convert it: a guest "
                      "that was running or crashed cannot be changed "
                      "safely.",
                      "%s (%s, mounted on %s) was not cleanly unmounted: %s",
                      v->name, v->fs.type, where, v->fs.why);
    }
}

static void
check_layout (struct inspection *in)
{
    const char *a = in->arch;

    if (strcmp (a, "x86_64") != 0 && strcmp (a, "i386") != 0) {
        insp_problem (in, SEV_ERROR, "arch",
                      "Only x86 guests are converted.",
                      "the guest's architecture is %s", a[0] != '\0' ? a :
                      "unknown (no ELF executable found)");
    }
    for (size_t i = 0; i < in->ncrypt; i++) {
        insp_problem (in, SEV_WARNING, "encrypted",
                      "Volumes opened at boot keep working; their content "
                      "is copied whole.",
                      "/etc/crypttab opens %s from %s", in->crypt[i].name,
                      in->crypt[i].device);
    }
    for (size_t i = 0; i < in->nfstab; i++) {
        const struct insp_fstab *e = &in->fstab[i];

        if (strcmp (e->file, "/") == 0 && e->vol >= 0 && e->vol != in->root) {
            insp_problem (in, SEV_WARNING, "fstab-root",
                          "Check that the disks are given in the order the "
                          "guest sees them.",
                          "/etc/fstab names %s as the root, but the root "
                          "found is %s", e->spec,
                          in->map.vols[in->root].name);
        }
    }
    if (strcmp (in->initramfs_tool, "initramfs-tools") != 0 &&
        strcmp (in->initramfs_tool, "dracut") != 0) {
        insp_problem (in, SEV_ERROR, "initramfs-tool",
                      "Install dracut or initramfs-tools in the guest, or "
                      "convert without fixups.",
                      "the guest's initramfs tool %s is not one vmconvert "
                      "drives (dracut, initramfs-tools)",
                      in->initramfs_tool[0] != '\0' ? in->initramfs_tool :
                      "was not found");
    }
    if (in->bootloader[0] == '\0') {
        insp_problem (in, SEV_WARNING, "bootloader",
                      "The disk may not boot: check how this guest boots.",
                      "no boot loader configuration was found (GRUB 2, GRUB "
                      "legacy, systemd-boot)");
    }
    if (strcmp (in->firmware, "uefi") == 0 && !in->efi_fallback &&
        in->efi_loader[0] == '\0') {
        insp_problem (in, SEV_WARNING, "uefi-loader",
                      "The target VM needs a boot entry made by hand.",
                      "the ESP has no boot loader vmconvert knows, and no "
                      "fallback EFI/BOOT/BOOTX64.EFI");
    }
}

static void
check_kernels (struct inspection *in, const struct inspect_opts *o)
{
    const enum insp_driver *want = insp_target_drivers (o != NULL ? o->target
                                                        : TARGET_KVM);
    const char *target = insp_target_name (o != NULL ? o->target : TARGET_KVM);
    size_t good = 0;
    uint64_t largest = 0;
    char missing[300] = "";

    for (size_t i = 0; i < in->nkernels; i++) {
        const struct insp_kernel *k = &in->kernels[i];
        bool ok = k->modules;

        /* The disk driver and the PCI transport are what booting needs;
         * the NIC driver can come later. */
        for (size_t d = 0; want[d] != DRV_COUNT; d++) {
            if (want[d] != DRV_VIRTIO_NET && want[d] != DRV_HV_NETVSC &&
                want[d] != DRV_VMXNET3 && want[d] != DRV_VIRTIO_SCSI &&
                k->drv[want[d]] == 0) {
                ok = false;
                if (strlen (missing) < 200) {
                    size_t l = strlen (missing);

                    snprintf (missing + l, sizeof missing - l, "%s%s lacks "
                              "%s", l > 0 ? "; " : "", k->version,
                              insp_driver_names[want[d]]);
                }
            }
        }
        if (!k->modules) {
            insp_problem (in, SEV_WARNING, "kernel-modules", NULL,
                          "kernel %s has no /lib/modules/%s: it cannot get "
                          "drivers", k->version, k->version);
        }
        if (ok) {
            good++;
        }
        if (k->initrd_size > largest) {
            largest = k->initrd_size;
        }
    }
    if (in->nkernels == 0) {
        insp_problem (in, SEV_ERROR, "no-kernel",
                      "Install a kernel in the guest.",
                      "no kernel (/boot/vmlinuz-*) was found");
    }
    else if (good == 0) {
        insp_problem (in, SEV_ERROR, "no-driver-kernel",
                      "Install a kernel with those drivers in the guest (the "
                      "distribution's standard kernel has them), then "
                      "convert it.",
                      "no installed kernel has the %s drivers (%s)", target,
                      missing);
    }
    if (in->boot_free != 0 && largest > 0 &&
        in->boot_free < largest + INITRD_MARGIN) {
        insp_problem (in, SEV_ERROR, "boot-space",
                      "Free some space in /boot (remove old kernels) and "
                      "convert again.",
                      "%s has %llu MiB free; a new initramfs needs about %llu "
                      "MiB", in->boot_vol >= 0 ?
                      in->map.vols[in->boot_vol].name : "/boot",
                      (unsigned long long) (in->boot_free / MIB),
                      (unsigned long long) ((largest + INITRD_MARGIN) / MIB));
    }
    if (in->root_free != 0 && in->root_free < ROOT_MIN_FREE) {
        insp_problem (in, SEV_WARNING, "root-space",
                      "Package removal and the initramfs tool may fail: free "
                      "some space on /.",
                      "/ has only %llu MiB free",
                      (unsigned long long) (in->root_free / MIB));
    }
}

static void
check_tools (struct inspection *in, const struct inspect_opts *o)
{
    enum insp_target t = o != NULL ? o->target : TARGET_KVM;

    for (size_t i = 0; i < in->ntools; i++) {
        const struct insp_tool *x = &in->tools[i];

        if ((t == TARGET_VMWARE && strcmp (x->what, "vmware") == 0) ||
            (t == TARGET_HYPERV && strcmp (x->what, "hyperv") == 0)) {
            continue;
        }
        if (x->package[0] == '\0') {
            insp_problem (in, SEV_WARNING, "tools-unpackaged",
                          "Remove them by hand after the conversion.",
                          "%s tools were installed without a package (%s): "
                          "vmconvert does not remove them", x->what,
                          x->evidence);
        }
    }
}

size_t
preflight (struct inspection *in, const struct inspect_opts *o)
{
    check_roots (in, o);
    if (in->root < 0) {
        return in->nerrors;
    }
    check_clean (in);
    check_layout (in);
    check_kernels (in, o);
    check_tools (in, o);
    return in->nerrors;
}
