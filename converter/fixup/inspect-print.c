/* SPDX-License-Identifier: MIT */
/*
 * An inspection printed for people (text) or for programs (one JSON
 * object; the keys are listed in README.md under `vmconvert inspect`).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../lib/json.h"
#include "inspect.h"

static const char *
vol_name (const struct inspection *in, int vi)
{
    return vi >= 0 && (size_t) vi < in->map.nvols ? in->map.vols[vi].name :
           NULL;
}

static const char *
drv_state (char c)
{
    return c == 'y' ? "builtin" : c == 'm' ? "module" : "absent";
}

static const char *
mount_of (const struct inspection *in, int vi)
{
    if (vi == in->root) {
        return "/";
    }
    for (size_t i = 0; i < in->nfstab; i++) {
        if (in->fstab[i].vol == vi) {
            return in->fstab[i].file;
        }
    }
    return NULL;
}

/* ---- text ------------------------------------------------------------ */

void
inspect_print_text (FILE *fp, const struct inspection *in)
{
    if (in->root < 0) {
        fprintf (fp, "root: none chosen (%zu found)\n", in->nroots);
        for (size_t i = 0; i < in->nroots; i++) {
            fprintf (fp, "  candidate: %s\n", vol_name (in, in->roots[i]));
        }
    }
    else {
        fprintf (fp, "root: %s (%s, UUID %s)\n", vol_name (in, in->root),
                 in->map.vols[in->root].fs.type, insp_vol_uuid (in, in->root));
        fprintf (fp, "os: %s %s %s (%s), %s\n", in->os, in->distro,
                 in->version, in->pretty, in->arch);
        fprintf (fp, "hostname: %s\npackages: %s\n", in->hostname, in->pkg);
        fprintf (fp, "firmware: %s\nboot loader: %s (%s)\n", in->firmware,
                 in->bootloader[0] ? in->bootloader : "none found",
                 in->grub_cfg);
        if (in->esp_mount[0] != '\0') {
            fprintf (fp, "ESP: %s, loader %s, fallback BOOTX64.EFI %s\n",
                     in->esp_mount, in->efi_loader[0] ? in->efi_loader :
                     "none", in->efi_fallback ? "present" : "missing");
        }
        fprintf (fp, "kernel command line: %s\n", in->cmdline);
        fprintf (fp, "initramfs tool: %s\n", in->initramfs_tool);
        for (size_t i = 0; i < in->nkernels; i++) {
            const struct insp_kernel *k = &in->kernels[i];

            fprintf (fp, "kernel %s: %s, initramfs %s (%" PRIu64 " bytes)%s\n",
                     k->version, k->vmlinuz, k->initrd[0] ? k->initrd : "none",
                     k->initrd_size, k->modules ? "" : ", no modules");
            for (int d = 0; d < DRV_COUNT; d++) {
                fprintf (fp, "  %-12s %-8s in initramfs: %s\n",
                         insp_driver_names[d], drv_state (k->drv[d]),
                         k->in_initrd[d] > 0 ? "yes" : k->in_initrd[d] == 0 ?
                         "no" : "unknown");
            }
            if (k->initrd_why[0] != '\0') {
                fprintf (fp, "  (%s)\n", k->initrd_why);
            }
        }
        for (size_t i = 0; i < in->nfstab; i++) {
            const struct insp_fstab *e = &in->fstab[i];

            fprintf (fp, "fstab: %s %s %s %s -> %s%s\n", e->spec, e->file,
                     e->type, e->opts, e->vol >= 0 ? vol_name (in, e->vol) :
                     "(not on these disks)", e->by_device ?
                     " [device name]" : "");
        }
        for (size_t i = 0; i < in->ncrypt; i++) {
            const struct insp_crypt *e = &in->crypt[i];

            fprintf (fp, "crypttab: %s %s -> %s%s\n", e->name, e->device,
                     e->vol >= 0 ? vol_name (in, e->vol) : "(not found)",
                     e->by_device ? " [device name]" : "");
        }
        for (size_t i = 0; i < in->net.n; i++) {
            const struct net_iface *f = &in->net.v[i];

            fprintf (fp, "network: %s mac %s (%s, %s)%s%s", f->name[0] ?
                     f->name : "-", f->mac[0] ? f->mac : "unknown", f->tool,
                     f->source, f->dhcp4 ? " dhcp4" : "", f->dhcp6 ? " dhcp6"
                     : "");
            for (unsigned a = 0; a < f->naddr; a++) {
                fprintf (fp, " %s/%u", f->addr[a].addr, f->addr[a].prefix);
            }
            if (f->gateway4[0] != '\0') {
                fprintf (fp, " gw %s", f->gateway4);
            }
            fputc ('\n', fp);
        }
        fprintf (fp, "udev: %s%s\n", in->udevd ? "systemd-udevd" :
                 "not systemd's", in->net_ifnames_off ?
                 ", net.ifnames=0" : "");
        for (size_t i = 0; i < in->ntools; i++) {
            fprintf (fp, "hypervisor tools: %s %s (%s)\n", in->tools[i].what,
                     in->tools[i].package[0] ? in->tools[i].package :
                     "unpackaged", in->tools[i].evidence);
        }
        fprintf (fp, "free space: / %" PRIu64 " MiB, /boot %" PRIu64 " MiB\n",
                 in->root_free >> 20, in->boot_free >> 20);
    }
    for (size_t i = 0; i < in->nproblems; i++) {
        const struct insp_problem *p = &in->problems[i];

        fprintf (fp, "%s: %s: %s%s%s\n", p->sev == SEV_ERROR ? "error" :
                 "warning", p->code, p->msg, p->advice[0] ? "\n  what to do: "
                 : "", p->advice);
    }
    fprintf (fp, "convertible: %s\n", in->nerrors == 0 && in->root >= 0 ?
             "yes" : "no");
}

/* ---- JSON ------------------------------------------------------------ */

static void
key (FILE *fp, const char *k)
{
    json_string (fp, k);
    fputc (':', fp);
}

static void
kv_str (FILE *fp, const char *k, const char *v, bool comma)
{
    key (fp, k);
    if (v == NULL) {
        fputs ("null", fp);
    }
    else {
        json_string (fp, v);
    }
    if (comma) {
        fputc (',', fp);
    }
}

static void
kv_bool (FILE *fp, const char *k, bool v, bool comma)
{
    key (fp, k);
    fputs (v ? "true" : "false", fp);
    if (comma) {
        fputc (',', fp);
    }
}

static void
kv_u64 (FILE *fp, const char *k, uint64_t v, bool comma)
{
    key (fp, k);
    fprintf (fp, "%" PRIu64, v);
    if (comma) {
        fputc (',', fp);
    }
}

void
inspect_print_json (FILE *fp, const struct inspection *in)
{
    fputc ('{', fp);
    key (fp, "disks");
    fputc ('[', fp);
    for (size_t d = 0; d < in->map.ndisks; d++) {
        if (d > 0) {
            fputc (',', fp);
        }
        json_string (fp, in->map.disks[d].name);
    }
    fputs ("],", fp);
    key (fp, "roots");
    fputc ('[', fp);
    for (size_t i = 0; i < in->nroots; i++) {
        if (i > 0) {
            fputc (',', fp);
        }
        json_string (fp, vol_name (in, in->roots[i]));
    }
    fputs ("],", fp);
    kv_str (fp, "root", vol_name (in, in->root), true);
    if (in->root >= 0) {
        key (fp, "os");
        fputc ('{', fp);
        kv_str (fp, "type", in->os, true);
        kv_str (fp, "distro", in->distro, true);
        kv_str (fp, "id_like", in->id_like, true);
        kv_str (fp, "version", in->version, true);
        kv_str (fp, "pretty_name", in->pretty, true);
        kv_str (fp, "arch", in->arch, true);
        kv_str (fp, "package_format", in->pkg, true);
        kv_str (fp, "hostname", in->hostname, false);
        fputs ("},", fp);
        key (fp, "boot");
        fputc ('{', fp);
        kv_str (fp, "firmware", in->firmware, true);
        kv_str (fp, "bootloader", in->bootloader, true);
        kv_str (fp, "config", in->grub_cfg, true);
        kv_str (fp, "esp", in->esp_mount[0] ? in->esp_mount : NULL, true);
        kv_str (fp, "efi_loader", in->efi_loader[0] ? in->efi_loader : NULL,
                true);
        kv_bool (fp, "efi_fallback", in->efi_fallback, true);
        kv_str (fp, "cmdline", in->cmdline, true);
        kv_str (fp, "initramfs_tool", in->initramfs_tool, false);
        fputs ("},", fp);
        key (fp, "kernels");
        fputc ('[', fp);
        for (size_t i = 0; i < in->nkernels; i++) {
            const struct insp_kernel *k = &in->kernels[i];

            if (i > 0) {
                fputc (',', fp);
            }
            fputc ('{', fp);
            kv_str (fp, "version", k->version, true);
            kv_str (fp, "vmlinuz", k->vmlinuz, true);
            kv_str (fp, "initrd", k->initrd[0] ? k->initrd : NULL, true);
            kv_u64 (fp, "initrd_size", k->initrd_size, true);
            kv_bool (fp, "modules", k->modules, true);
            key (fp, "drivers");
            fputc ('{', fp);
            for (int d = 0; d < DRV_COUNT; d++) {
                kv_str (fp, insp_driver_names[d], drv_state (k->drv[d]),
                        d + 1 < DRV_COUNT);
            }
            fputs ("},", fp);
            key (fp, "initrd_drivers");
            fputc ('{', fp);
            for (int d = 0; d < DRV_COUNT; d++) {
                key (fp, insp_driver_names[d]);
                fputs (k->in_initrd[d] > 0 ? "true" : k->in_initrd[d] == 0 ?
                       "false" : "null", fp);
                if (d + 1 < DRV_COUNT) {
                    fputc (',', fp);
                }
            }
            fputs ("},", fp);
            kv_str (fp, "initrd_note", k->initrd_why[0] ? k->initrd_why :
                    NULL, false);
            fputc ('}', fp);
        }
        fputs ("],", fp);
        key (fp, "filesystems");
        fputc ('[', fp);
        {
            bool first = true;

            for (size_t i = 0; i < in->map.nvols; i++) {
                const struct map_vol *v = &in->map.vols[i];

                if (strcmp (v->fs.type, "unknown") == 0 ||
                    strcmp (v->fs.type, "LVM2_member") == 0 ||
                    strcmp (v->fs.type, "extended") == 0 ||
                    strcmp (v->fs.type, "bios_boot") == 0) {
                    continue;
                }
                if (!first) {
                    fputc (',', fp);
                }
                first = false;
                fputc ('{', fp);
                kv_str (fp, "volume", v->name, true);
                kv_str (fp, "type", v->fs.type, true);
                kv_str (fp, "uuid", v->fs.uuid, true);
                kv_str (fp, "label", v->fs.label, true);
                kv_str (fp, "mounted_on", mount_of (in, (int) i), true);
                kv_u64 (fp, "size", v->size, true);
                kv_u64 (fp, "used_bytes", v->used_bytes, true);
                kv_bool (fp, "unclean", v->fs.unclean, false);
                fputc ('}', fp);
            }
        }
        fputs ("],", fp);
        key (fp, "fstab");
        fputc ('[', fp);
        for (size_t i = 0; i < in->nfstab; i++) {
            const struct insp_fstab *e = &in->fstab[i];

            if (i > 0) {
                fputc (',', fp);
            }
            fputc ('{', fp);
            kv_str (fp, "spec", e->spec, true);
            kv_str (fp, "file", e->file, true);
            kv_str (fp, "type", e->type, true);
            kv_str (fp, "options", e->opts, true);
            kv_str (fp, "volume", vol_name (in, e->vol), true);
            kv_bool (fp, "by_device", e->by_device, false);
            fputc ('}', fp);
        }
        fputs ("],", fp);
        key (fp, "crypttab");
        fputc ('[', fp);
        for (size_t i = 0; i < in->ncrypt; i++) {
            const struct insp_crypt *e = &in->crypt[i];

            if (i > 0) {
                fputc (',', fp);
            }
            fputc ('{', fp);
            kv_str (fp, "name", e->name, true);
            kv_str (fp, "device", e->device, true);
            kv_str (fp, "key", e->key, true);
            kv_str (fp, "options", e->opts, true);
            kv_str (fp, "volume", vol_name (in, e->vol), true);
            kv_bool (fp, "by_device", e->by_device, false);
            fputc ('}', fp);
        }
        fputs ("],", fp);
        key (fp, "network");
        fputc ('[', fp);
        for (size_t i = 0; i < in->net.n; i++) {
            if (i > 0) {
                fputc (',', fp);
            }
            netconf_iface_json (fp, &in->net.v[i]);
        }
        fputs ("],", fp);
        kv_bool (fp, "systemd_udevd", in->udevd, true);
        kv_bool (fp, "net_ifnames", !in->net_ifnames_off, true);
        key (fp, "hypervisor_tools");
        fputc ('[', fp);
        for (size_t i = 0; i < in->ntools; i++) {
            if (i > 0) {
                fputc (',', fp);
            }
            fputc ('{', fp);
            kv_str (fp, "kind", in->tools[i].what, true);
            kv_str (fp, "package", in->tools[i].package[0] ?
                    in->tools[i].package : NULL, true);
            kv_str (fp, "evidence", in->tools[i].evidence, false);
            fputc ('}', fp);
        }
        fputs ("],", fp);
        key (fp, "free_space");
        fputc ('{', fp);
        kv_u64 (fp, "root", in->root_free, true);
        kv_u64 (fp, "boot", in->boot_free, false);
        fputs ("},", fp);
    }
    key (fp, "problems");
    fputc ('[', fp);
    for (size_t i = 0; i < in->nproblems; i++) {
        const struct insp_problem *p = &in->problems[i];

        if (i > 0) {
            fputc (',', fp);
        }
        fputc ('{', fp);
        kv_str (fp, "severity", p->sev == SEV_ERROR ? "error" : "warning",
                true);
        kv_str (fp, "code", p->code, true);
        kv_str (fp, "message", p->msg, true);
        kv_str (fp, "advice", p->advice[0] ? p->advice : NULL, false);
        fputc ('}', fp);
    }
    fputs ("],", fp);
    kv_bool (fp, "convertible", in->nerrors == 0 && in->root >= 0, false);
    fputs ("}\n", fp);
}
