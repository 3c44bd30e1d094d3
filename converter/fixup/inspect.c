/* SPDX-License-Identifier: MIT */
/*
 * Linux guest inspection: see inspect.h.
 *
 * The root filesystem is a filesystem we can read (files.h) that holds
 * /etc/fstab and a release file (os-release, or the older redhat-release,
 * SuSE-release, debian_version, lsb-release).  Its fstab then mounts the
 * guest's other local filesystems into one tree (/boot, /boot/efi, /usr,
 * /var ...), found by UUID, LABEL, PARTUUID, PARTLABEL, LVM names or, last,
 * kernel device names in the order the disks were given.  Everything else
 * is read from that tree.  Every file is the guest's and hostile: each
 * read is capped (FILE_MAX), each list bounded.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "conftext.h"
#include "initrd.h"
#include "inspect.h"

#define FILE_MAX (4u << 20)          /* a configuration file */
#define MODDEP_MAX (32u << 20)       /* modules.dep, modules.builtin */
#define STATUS_MAX (64u << 20)       /* dpkg's status file */

const char *const insp_driver_names[DRV_COUNT] = {
    [DRV_VIRTIO_BLK] = "virtio_blk", [DRV_VIRTIO_SCSI] = "virtio_scsi",
    [DRV_VIRTIO_PCI] = "virtio_pci", [DRV_VIRTIO_NET] = "virtio_net",
    [DRV_HV_VMBUS] = "hv_vmbus", [DRV_HV_STORVSC] = "hv_storvsc",
    [DRV_HV_NETVSC] = "hv_netvsc", [DRV_VMW_PVSCSI] = "vmw_pvscsi",
    [DRV_VMXNET3] = "vmxnet3",
};

static const enum insp_driver drivers_kvm[] = {
    DRV_VIRTIO_BLK, DRV_VIRTIO_SCSI, DRV_VIRTIO_PCI, DRV_VIRTIO_NET,
    DRV_COUNT
};
static const enum insp_driver drivers_hyperv[] = {
    DRV_HV_VMBUS, DRV_HV_STORVSC, DRV_HV_NETVSC, DRV_COUNT
};
static const enum insp_driver drivers_vmware[] = {
    DRV_VMW_PVSCSI, DRV_VMXNET3, DRV_COUNT
};

const enum insp_driver *
insp_target_drivers (enum insp_target target)
{
    switch (target) {
    case TARGET_HYPERV:
        return drivers_hyperv;
    case TARGET_VMWARE:
        return drivers_vmware;
    case TARGET_KVM:
    default:
        return drivers_kvm;
    }
}

const char *
insp_target_name (enum insp_target target)
{
    return target == TARGET_HYPERV ? "hyperv" :
           target == TARGET_VMWARE ? "vmware" : "kvm";
}

int
insp_target_parse (const char *s, enum insp_target *target)
{
    if (strcmp (s, "kvm") == 0 || strcmp (s, "qemu") == 0 ||
        strcmp (s, "proxmox") == 0 || strcmp (s, "libvirt") == 0) {
        *target = TARGET_KVM;
    }
    else if (strcmp (s, "hyperv") == 0 || strcmp (s, "hyper-v") == 0) {
        *target = TARGET_HYPERV;
    }
    else if (strcmp (s, "vmware") == 0 || strcmp (s, "esxi") == 0) {
        *target = TARGET_VMWARE;
    }
    else {
        vmc_error ("unknown target %s (kvm, hyperv, vmware)", s);
        return -1;
    }
    return 0;
}

void
insp_problem (struct inspection *in, enum insp_severity sev,
              const char *code, const char *advice, const char *fmt, ...)
{
    struct insp_problem *p;
    va_list ap;

    if (in->nproblems == INSP_MAX_PROBLEMS) {
        return;
    }
    p = &in->problems[in->nproblems++];
    p->sev = sev;
    text_set (p->code, sizeof p->code, code);
    text_set (p->advice, sizeof p->advice, advice != NULL ? advice : "");
    va_start (ap, fmt);
    vsnprintf (p->msg, sizeof p->msg, fmt, ap);
    va_end (ap);
    if (sev == SEV_ERROR) {
        in->nerrors++;
    }
}

/* ---- volumes and device names -------------------------------------- */

const char *
insp_vol_uuid (const struct inspection *in, int vi)
{
    if (vi < 0 || (size_t) vi >= in->map.nvols) {
        return "";
    }
    return in->map.vols[vi].fs.uuid;
}

static bool
readable_fs (const char *type)
{
    return fs_files_for (type) != NULL;
}

static int
vol_by (const struct inspection *in, bool (*match) (const struct map_vol *,
                                                    const char *),
        const char *arg)
{
    for (size_t i = 0; i < in->map.nvols; i++) {
        if (match (&in->map.vols[i], arg)) {
            return (int) i;
        }
    }
    return -1;
}

static bool
eq_nocase (const char *a, const char *b)
{
    return strcasecmp (a, b) == 0;
}

static bool
m_uuid (const struct map_vol *v, const char *a)
{
    return strcmp (v->fs.type, "LVM2_member") != 0 && v->fs.uuid[0] != '\0'
           && eq_nocase (v->fs.uuid, a);
}

static bool
m_label (const struct map_vol *v, const char *a)
{
    return v->fs.label[0] != '\0' && strcmp (v->fs.label, a) == 0;
}

static bool
m_lv (const struct map_vol *v, const char *a)
{
    return strcmp (v->kind, "lv") == 0 && strcmp (v->name, a) == 0;
}

static bool
m_pname (const struct map_vol *v, const char *a)
{
    return strcmp (v->kind, "partition") == 0 && v->pname[0] != '\0' &&
           strcmp (v->pname, a) == 0;
}

/* A disk's partition NUMBER (0: the whole disk) as a map volume. */
static int
vol_of_disk_part (const struct inspection *in, size_t disk, unsigned number)
{
    for (size_t i = 0; i < in->map.nvols; i++) {
        const struct map_vol *v = &in->map.vols[i];

        if (v->disk == (int) disk && v->number == number &&
            (number > 0 ? strcmp (v->kind, "partition") == 0 :
             strcmp (v->kind, "disk") == 0)) {
            return (int) i;
        }
    }
    return -1;
}

static int
vol_by_partuuid (const struct inspection *in, const char *guid)
{
    for (size_t i = 0; i < in->map.nvols; i++) {
        const struct map_vol *v = &in->map.vols[i];

        if (strcmp (v->kind, "partition") != 0 || v->disk < 0) {
            continue;
        }
        const struct part_table *t = &in->map.disks[v->disk].pt;

        for (size_t k = 0; k < t->n; k++) {
            if (t->e[k].number == v->number && t->e[k].guid[0] != '\0' &&
                eq_nocase (t->e[k].guid, guid)) {
                return (int) i;
            }
        }
        /* MBR: PARTUUID=DISKID-NN. */
        if (strcmp (t->kind, "mbr") == 0 && strlen (t->disk_id) == 10) {
            char want[32];

            snprintf (want, sizeof want, "%s-%02u", t->disk_id + 2,
                      v->number);
            if (eq_nocase (want, guid)) {
                return (int) i;
            }
        }
    }
    return -1;
}

/* "/dev/mapper/vg--x-lv" and "/dev/vg/lv" to "vg/lv". */
static bool
lvm_name (const char *spec, char *out, size_t cap)
{
    const char *p;
    size_t o = 0;

    if (text_starts (spec, "/dev/mapper/")) {
        p = spec + 12;
        bool slash = false;

        for (; *p != '\0' && o + 1 < cap; p++) {
            if (*p == '-' && p[1] == '-') {
                out[o++] = '-';
                p++;
            }
            else if (*p == '-' && !slash) {
                out[o++] = '/';
                slash = true;
            }
            else {
                out[o++] = *p;
            }
        }
        out[o] = '\0';
        return slash;
    }
    if (text_starts (spec, "/dev/") && !text_starts (spec, "/dev/disk/") &&
        !text_starts (spec, "/dev/cciss/")) {
        const char *slash = strchr (spec + 5, '/');

        /* Exactly one slash after /dev/: /dev/VG/LV. */
        if (slash == NULL || slash == spec + 5 || slash[1] == '\0' ||
            strchr (slash + 1, '/') != NULL) {
            return false;
        }
        snprintf (out, cap, "%s", spec + 5);
        return true;
    }
    return false;
}

/* A kernel device name: the disk's index among the given disks and the
 * partition number (0: the whole disk).  sda..sdz, sdaa.., also hd, vd,
 * xvd; nvme<C>n<N>p<P> (controller C taken as the disk index); cciss. */
static bool
kernel_dev (const char *name, size_t *disk, unsigned *part)
{
    const char *p = name;
    size_t d = 0;
    unsigned long n = 0;
    char *end;

    if (text_starts (p, "xvd")) {
        p += 3;
    }
    else if (text_starts (p, "sd") || text_starts (p, "hd") ||
             text_starts (p, "vd")) {
        p += 2;
    }
    else if (text_starts (p, "nvme") || text_starts (p, "cciss/c")) {
        p += p[0] == 'n' ? 4 : 7;
        d = strtoul (p, &end, 10);
        if (end == p || (*end != 'n' && *end != 'd')) {
            return false;
        }
        /* Namespaces after the first count as further disks. */
        {
            const char *q = end + 1;
            unsigned long ns = strtoul (q, &end, 10);

            if (end == q || ns == 0 || ns > 64) {
                return false;
            }
            d += ns - 1;
        }
        if (*end == '\0') {
            *disk = d;
            *part = 0;
            return true;
        }
        if (*end != 'p') {
            return false;
        }
        p = end + 1;
        n = strtoul (p, &end, 10);
        if (end == p || *end != '\0' || n == 0 || n > 4096) {
            return false;
        }
        *disk = d;
        *part = (unsigned) n;
        return true;
    }
    else {
        return false;
    }
    if (!(*p >= 'a' && *p <= 'z')) {
        return false;
    }
    while (*p >= 'a' && *p <= 'z') {
        d = d * 26 + (size_t) (*p - 'a' + 1);
        if (d > 100000) {
            return false;
        }
        p++;
    }
    d -= 1;
    if (*p == '\0') {
        *disk = d;
        *part = 0;
        return true;
    }
    n = strtoul (p, &end, 10);
    if (end == p || *end != '\0' || n == 0 || n > 4096) {
        return false;
    }
    *disk = d;
    *part = (unsigned) n;
    return true;
}

int
insp_resolve_spec (const struct inspection *in, const char *spec,
                   bool *by_device)
{
    char name[256];
    size_t disk;
    unsigned part;
    bool dummy;

    if (by_device == NULL) {
        by_device = &dummy;
    }
    *by_device = false;
    if (text_starts (spec, "UUID=")) {
        return vol_by (in, m_uuid, spec + 5);
    }
    if (text_starts (spec, "LABEL=")) {
        return vol_by (in, m_label, spec + 6);
    }
    if (text_starts (spec, "PARTUUID=")) {
        return vol_by_partuuid (in, spec + 9);
    }
    if (text_starts (spec, "PARTLABEL=")) {
        return vol_by (in, m_pname, spec + 10);
    }
    if (text_starts (spec, "/dev/disk/by-uuid/")) {
        return vol_by (in, m_uuid, spec + 18);
    }
    if (text_starts (spec, "/dev/disk/by-label/")) {
        return vol_by (in, m_label, spec + 19);
    }
    if (text_starts (spec, "/dev/disk/by-partuuid/")) {
        return vol_by_partuuid (in, spec + 22);
    }
    if (text_starts (spec, "/dev/disk/by-partlabel/")) {
        return vol_by (in, m_pname, spec + 23);
    }
    if (text_starts (spec, "/dev/disk/by-id/") ||
        text_starts (spec, "/dev/disk/by-path/")) {
        const char *dash = strrchr (spec, '-');
        int vi = -1;

        /* The hardware's names: right only on the source.  The
         * partition suffix "-partN" is all we can use; the disk is taken
         * to be the first (a single-disk guest) and the spec is marked so
         * that fixups replace it. */
        *by_device = true;
        if (text_starts (spec, "/dev/disk/by-id/dm-uuid-LVM-") ||
            text_starts (spec, "/dev/disk/by-id/dm-name-")) {
            *by_device = false;
            if (text_starts (spec, "/dev/disk/by-id/dm-name-")) {
                snprintf (name, sizeof name, "/dev/mapper/%s", spec + 24);
                if (lvm_name (name, name, sizeof name)) {
                    return vol_by (in, m_lv, name);
                }
            }
            return -1;
        }
        if (dash != NULL && text_starts (dash, "-part")) {
            unsigned long n = strtoul (dash + 5, NULL, 10);

            if (n > 0 && n < 4096 && in->map.ndisks == 1) {
                vi = vol_of_disk_part (in, 0, (unsigned) n);
            }
        }
        else if (in->map.ndisks == 1) {
            vi = vol_of_disk_part (in, 0, 0);
        }
        return vi;
    }
    if (lvm_name (spec, name, sizeof name)) {
        int vi = vol_by (in, m_lv, name);

        if (vi >= 0) {
            return vi;
        }
    }
    if (text_starts (spec, "/dev/") && kernel_dev (spec + 5, &disk, &part)) {
        *by_device = true;
        if (disk < in->map.ndisks) {
            return vol_of_disk_part (in, disk, part);
        }
    }
    return -1;
}

/* ---- reading the tree ----------------------------------------------- */

static bool
exists (const struct inspection *in, const char *path)
{
    struct file_stat st;

    return tree_stat (&in->tree, path, true, &st) == 0;
}

static bool
is_kind (const struct tree *t, const char *path, enum file_kind k)
{
    struct file_stat st;

    return tree_stat (t, path, true, &st) == 0 && st.kind == k;
}

/* The whole file, or NULL when it does not exist or cannot be read (a
 * read error is remembered as a warning: inspection goes on). */
static char *
slurp (struct inspection *in, const char *path, size_t max, size_t *len)
{
    char *buf = NULL;
    int r = tree_read_file (&in->tree, path, max, &buf, len);

    if (r == 0) {
        return buf;
    }
    if (r < 0) {
        insp_problem (in, SEV_WARNING, "unreadable-file", NULL,
                      "%s could not be read: %s", path, vmc_get_error ());
    }
    return NULL;
}

/* ---- finding the root ----------------------------------------------- */

static bool
looks_like_root (const struct tree *t)
{
    static const char *const release[] = {
        "/etc/os-release", "/usr/lib/os-release", "/etc/redhat-release",
        "/etc/SuSE-release", "/etc/debian_version", "/etc/lsb-release",
        "/etc/system-release", NULL,
    };

    if (!is_kind (t, "/etc", FK_DIR)) {
        return false;
    }
    for (size_t i = 0; release[i] != NULL; i++) {
        if (is_kind (t, release[i], FK_REG)) {
            return true;
        }
    }
    /* A separate /usr: os-release is a link into it. */
    return is_kind (t, "/etc/fstab", FK_REG) &&
           is_kind (t, "/etc/passwd", FK_REG);
}

static int
mount_vol (struct inspection *in, struct tree *t, const char *path, int vi)
{
    struct volume v;

    if (map_vol_open (&in->map, (size_t) vi, &v) < 0) {
        return -1;
    }
    if (t == &in->tree && t->n < TREE_MAX_MOUNTS) {
        in->tree_vols[t->n] = vi;
    }
    return tree_mount (t, path, &v, in->map.vols[vi].fs.type);
}

static int
find_roots (struct inspection *in)
{
    for (size_t i = 0; i < in->map.nvols && in->nroots < INSP_MAX_ROOTS;
         i++) {
        struct tree t;
        bool root;

        if (!readable_fs (in->map.vols[i].fs.type) ||
            strcmp (in->map.vols[i].fs.type, "vfat") == 0) {
            continue;
        }
        tree_init (&t);
        if (mount_vol (in, &t, "/", (int) i) < 0) {
            insp_problem (in, SEV_WARNING, "unreadable-fs", NULL,
                          "%s (%s) could not be read: %s",
                          in->map.vols[i].name, in->map.vols[i].fs.type,
                          vmc_get_error ());
            tree_free (&t);
            continue;
        }
        root = looks_like_root (&t);
        tree_free (&t);
        if (root) {
            in->roots[in->nroots++] = (int) i;
        }
    }
    return 0;
}

static int
choose_root (struct inspection *in, const struct inspect_opts *o)
{
    const char *want = o != NULL ? o->root : NULL;

    in->root = -1;
    if (in->nroots == 0) {
        return 0;
    }
    if (want == NULL || want[0] == '\0') {
        if (in->nroots == 1) {
            in->root = in->roots[0];
        }
        return 0;
    }
    if (strcmp (want, "first") == 0) {
        in->root = in->roots[0];
        return 0;
    }
    for (size_t i = 0; i < in->nroots; i++) {
        const struct map_vol *v = &in->map.vols[in->roots[i]];
        bool bydev;

        if (strcmp (v->name, want) == 0 ||
            insp_resolve_spec (in, want, &bydev) == in->roots[i]) {
            in->root = in->roots[i];
            return 0;
        }
    }
    return 0;
}

/* ---- fstab and crypttab -------------------------------------------- */

static void
read_fstab (struct inspection *in)
{
    size_t len, pos = 0, ll;
    char *text = NULL;
    const char *l;
    int r = tree_read_file (&in->tree, "/etc/fstab", FILE_MAX, &text, &len);

    /* The fixups rewrite it: one they cannot read refuses the guest. */
    if (r < 0) {
        insp_problem (in, SEV_ERROR, "fstab-unreadable",
                      "Repair /etc/fstab in the guest.",
                      "/etc/fstab cannot be read: %s", vmc_get_error ());
    }
    if (r != 0) {
        return;
    }
    while (text_next_line (text, len, &pos, &l, &ll) &&
           in->nfstab < INSP_MAX_FSTAB) {
        char f[4][256];
        struct insp_fstab *e;

        if (text_fields (l, ll, f, 4, true) < 3) {
            continue;
        }
        e = &in->fstab[in->nfstab++];
        text_set (e->spec, sizeof e->spec, f[0]);
        text_set (e->file, sizeof e->file, f[1]);
        text_set (e->type, sizeof e->type, f[2]);
        text_set (e->opts, sizeof e->opts, f[3]);
        e->vol = insp_resolve_spec (in, e->spec, &e->by_device);
    }
    free (text);
}

static void
read_crypttab (struct inspection *in)
{
    size_t len, pos = 0, ll;
    char *text = slurp (in, "/etc/crypttab", FILE_MAX, &len);
    const char *l;

    if (text == NULL) {
        return;
    }
    while (text_next_line (text, len, &pos, &l, &ll) &&
           in->ncrypt < INSP_MAX_CRYPT) {
        char f[4][256];
        struct insp_crypt *e;

        if (text_fields (l, ll, f, 4, false) < 2) {
            continue;
        }
        e = &in->crypt[in->ncrypt++];
        text_set (e->name, sizeof e->name, f[0]);
        text_set (e->device, sizeof e->device, f[1]);
        text_set (e->key, sizeof e->key, f[2]);
        text_set (e->opts, sizeof e->opts, f[3]);
        e->vol = insp_resolve_spec (in, e->device, &e->by_device);
    }
    free (text);
}

static bool
mountable_path (const char *file)
{
    return file[0] == '/' && file[1] != '\0' && strstr (file, "/../") ==
           NULL && strlen (file) < sizeof ((struct tree_mount *) 0)->path;
}

/* The fstab's local filesystems into the tree, shortest path first (a
 * mount point inside another mount needs that one first). */
static void
mount_fstab (struct inspection *in)
{
    size_t order[INSP_MAX_FSTAB], n = 0;

    for (size_t i = 0; i < in->nfstab; i++) {
        const struct insp_fstab *e = &in->fstab[i];

        if (strcmp (e->file, "/") == 0 || !mountable_path (e->file) ||
            strcmp (e->type, "swap") == 0 || strstr (e->opts, "bind") != NULL) {
            continue;
        }
        order[n++] = i;
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strlen (in->fstab[order[j]].file) <
             strlen (in->fstab[order[j - 1]].file); j--) {
            size_t x = order[j];

            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct insp_fstab *e = &in->fstab[order[i]];
        const char *type;
        bool noauto = strstr (e->opts, "noauto") != NULL ||
                      strstr (e->opts, "nofail") != NULL;

        if (e->vol < 0) {
            if (strcmp (e->type, "nfs") == 0 || strcmp (e->type, "nfs4") == 0
                || strcmp (e->type, "cifs") == 0 || strcmp (e->type, "tmpfs")
                == 0 || strcmp (e->type, "proc") == 0 || strcmp (e->type,
                "sysfs") == 0 || strcmp (e->type, "devpts") == 0 ||
                text_starts (e->type, "fuse") || noauto) {
                continue;
            }
            insp_problem (in, noauto ? SEV_WARNING : SEV_ERROR,
                          "fstab-missing", "Convert all the disks of the "
                          "machine together, or fix /etc/fstab in the guest.",
                          "/etc/fstab mounts %s on %s, but no filesystem on "
                          "these disks is %s", e->spec, e->file, e->spec);
            continue;
        }
        type = in->map.vols[e->vol].fs.type;
        if (!readable_fs (type)) {
            continue;
        }
        if (mount_vol (in, &in->tree, e->file, e->vol) < 0) {
            insp_problem (in, SEV_WARNING, "unreadable-fs", NULL,
                          "%s (%s, mounted on %s) could not be read: %s",
                          in->map.vols[e->vol].name, type, e->file,
                          vmc_get_error ());
        }
    }
}

/* ---- the operating system ------------------------------------------- */

static void
read_release (struct inspection *in)
{
    size_t len;
    char *t = slurp (in, "/etc/os-release", FILE_MAX, &len);

    if (t == NULL) {
        t = slurp (in, "/usr/lib/os-release", FILE_MAX, &len);
    }
    snprintf (in->os, sizeof in->os, "linux");
    if (t != NULL) {
        char v[256];

        if (text_get_var (t, len, "ID", v, sizeof v)) {
            text_copy_printable (in->distro, sizeof in->distro, v, strlen (v));
        }
        if (text_get_var (t, len, "ID_LIKE", v, sizeof v)) {
            text_copy_printable (in->id_like, sizeof in->id_like, v,
                                 strlen (v));
        }
        if (text_get_var (t, len, "VERSION_ID", v, sizeof v)) {
            text_copy_printable (in->version, sizeof in->version, v,
                                 strlen (v));
        }
        if (text_get_var (t, len, "PRETTY_NAME", v, sizeof v)) {
            text_copy_printable (in->pretty, sizeof in->pretty, v,
                                 strlen (v));
        }
        free (t);
    }
    if (in->distro[0] != '\0') {
        return;
    }
    /* Before os-release (RHEL 6, SLES 11, Debian 6 ...). */
    if ((t = slurp (in, "/etc/redhat-release", 4096, &len)) != NULL) {
        const char *p = t;

        text_copy_printable (in->pretty, sizeof in->pretty, t, strcspn (t,
                                                                        "\n"));
        text_set (in->distro, sizeof in->distro,
                  strstr (t, "CentOS") ? "centos" : strstr (t, "Fedora") ?
                  "fedora" : strstr (t, "Scientific") ? "scientific" :
                  strstr (t, "Oracle") ? "ol" : "rhel");
        while (*p != '\0' && !isdigit ((unsigned char) *p)) {
            p++;
        }
        text_copy_printable (in->version, sizeof in->version, p,
                             strspn (p, "0123456789."));
        free (t);
    }
    else if ((t = slurp (in, "/etc/SuSE-release", 4096, &len)) != NULL) {
        char v[64];

        text_copy_printable (in->pretty, sizeof in->pretty, t, strcspn (t,
                                                                        "\n"));
        text_set (in->distro, sizeof in->distro,
                  strstr (t, "openSUSE") ? "opensuse" : "sles");
        if (text_get_var (t, len, "VERSION", v, sizeof v)) {
            text_copy_printable (in->version, sizeof in->version, v,
                                 strlen (v));
        }
        free (t);
    }
    else if ((t = slurp (in, "/etc/debian_version", 4096, &len)) != NULL) {
        snprintf (in->distro, sizeof in->distro, "debian");
        text_copy_printable (in->version, sizeof in->version, t,
                             strcspn (t, "\n"));
        snprintf (in->pretty, sizeof in->pretty, "Debian %s", in->version);
        free (t);
    }
    else if ((t = slurp (in, "/etc/lsb-release", FILE_MAX, &len)) != NULL) {
        char v[256];

        if (text_get_var (t, len, "DISTRIB_ID", v, sizeof v)) {
            for (char *p = v; *p != '\0'; p++) {
                *p = (char) tolower ((unsigned char) *p);
            }
            text_copy_printable (in->distro, sizeof in->distro, v,
                                 strlen (v));
        }
        if (text_get_var (t, len, "DISTRIB_RELEASE", v, sizeof v)) {
            text_copy_printable (in->version, sizeof in->version, v,
                                 strlen (v));
        }
        if (text_get_var (t, len, "DISTRIB_DESCRIPTION", v, sizeof v)) {
            text_copy_printable (in->pretty, sizeof in->pretty, v,
                                 strlen (v));
        }
        free (t);
    }
}

/* The architecture from an ELF executable's header. */
static void
read_arch (struct inspection *in)
{
    static const char *const bins[] = {
        "/bin/sh", "/usr/bin/sh", "/bin/ls", "/usr/bin/ls", "/bin/bash",
        "/sbin/init", "/usr/lib/systemd/systemd", NULL,
    };
    unsigned char h[20];

    for (size_t i = 0; bins[i] != NULL; i++) {
        ssize_t n = tree_read_head (&in->tree, bins[i], h, sizeof h);
        unsigned m;

        if (n < (ssize_t) sizeof h || memcmp (h, "\177ELF", 4) != 0) {
            continue;
        }
        m = h[5] == 2 ? (unsigned) (h[18] << 8 | h[19]) :
            (unsigned) (h[19] << 8 | h[18]);
        text_set (in->arch, sizeof in->arch,
                  m == 0x3e ? "x86_64" : m == 0x03 ? "i386" :
                  m == 0xb7 ? "aarch64" : m == 0x28 ? "armv7l" :
                  m == 0x15 ? "ppc64" : m == 0x16 ? "s390x" :
                  m == 0xf3 ? "riscv64" : "unknown");
        return;
    }
}

static void
read_identity (struct inspection *in)
{
    size_t len;
    char *t;

    if (exists (in, "/var/lib/dpkg/status")) {
        snprintf (in->pkg, sizeof in->pkg, "dpkg");
    }
    else if (exists (in, "/var/lib/rpm") ||
             exists (in, "/usr/lib/sysimage/rpm")) {
        snprintf (in->pkg, sizeof in->pkg, "rpm");
    }
    if ((t = slurp (in, "/etc/hostname", 4096, &len)) != NULL) {
        text_copy_printable (in->hostname, sizeof in->hostname, t,
                             strcspn (t, " \t\r\n"));
        free (t);
    }
    else if ((t = slurp (in, "/etc/sysconfig/network", FILE_MAX, &len)) !=
             NULL) {
        char v[256];

        if (text_get_var (t, len, "HOSTNAME", v, sizeof v)) {
            text_copy_printable (in->hostname, sizeof in->hostname, v,
                                 strlen (v));
        }
        free (t);
    }
}

/* ---- kernels -------------------------------------------------------- */

struct name_list {
    char (*v)[256];
    size_t n, cap;
};

static int
collect_name (void *opaque, const char *name, enum file_kind kind)
{
    struct name_list *l = opaque;

    (void) kind;
    if (l->n == l->cap) {
        return 0;
    }
    snprintf (l->v[l->n++], sizeof l->v[0], "%s", name);
    return 0;
}

/* Modules named in a modules.dep or modules.builtin text: set DRV[i] to
 * WHAT for each driver found. */
static void
scan_module_list (const char *text, size_t len, char what, char *drv)
{
    size_t pos = 0, ll;
    const char *l;

    while (text_next_line (text, len, &pos, &l, &ll)) {
        size_t e = 0, b;
        char name[64];
        size_t o = 0;

        while (e < ll && l[e] != ':' && l[e] != ' ') {
            e++;
        }
        /* The file name's base, up to ".ko". */
        b = e;
        while (b > 0 && l[b - 1] != '/') {
            b--;
        }
        for (size_t i = b; i < e && o + 1 < sizeof name; i++) {
            if (l[i] == '.') {
                break;
            }
            name[o++] = l[i] == '-' ? '_' : l[i];
        }
        name[o] = '\0';
        for (int d = 0; d < DRV_COUNT; d++) {
            if (strcmp (name, insp_driver_names[d]) == 0 && drv[d] == 0) {
                drv[d] = what;
            }
        }
    }
}

static void
kernel_drivers (struct inspection *in, struct insp_kernel *k)
{
    char path[512];
    size_t len;
    char *t;

    snprintf (path, sizeof path, "/lib/modules/%s", k->version);
    k->modules = is_kind (&in->tree, path, FK_DIR);
    if (!k->modules) {
        snprintf (path, sizeof path, "/usr/lib/modules/%s", k->version);
        k->modules = is_kind (&in->tree, path, FK_DIR);
    }
    if (!k->modules) {
        return;
    }
    snprintf (path + strlen (path), sizeof path - strlen (path),
              "/modules.builtin");
    if ((t = slurp (in, path, MODDEP_MAX, &len)) != NULL) {
        scan_module_list (t, len, 'y', k->drv);
        free (t);
    }
    snprintf (strrchr (path, '/'), sizeof path - (size_t) (strrchr (path, '/')
              - path), "/modules.dep");
    if ((t = slurp (in, path, MODDEP_MAX, &len)) != NULL) {
        scan_module_list (t, len, 'm', k->drv);
        free (t);
    }
}

static int
kernel_cmp (const void *a, const void *b)
{
    const struct insp_kernel *x = a, *y = b;

    return -text_vercmp (x->version, y->version);
}

static void
read_kernels (struct inspection *in)
{
    struct name_list l = { 0 };
    bool boot_exists;

    l.cap = 512;
    l.v = calloc (l.cap, sizeof *l.v);
    if (l.v == NULL) {
        return;
    }
    if (tree_list (&in->tree, "/boot", &boot_exists, collect_name, &l) < 0) {
        insp_problem (in, SEV_WARNING, "unreadable-file", NULL,
                      "/boot could not be listed: %s", vmc_get_error ());
    }
    for (size_t i = 0; i < l.n && in->nkernels < INSP_MAX_KERNELS; i++) {
        static const char *const initrds[] = {
            "/boot/initrd.img-%s", "/boot/initramfs-%s.img",
            "/boot/initrd-%s", "/boot/initrd-%s.img", NULL,
        };
        struct insp_kernel *k;
        const char *ver;

        if (text_starts (l.v[i], "vmlinuz-")) {
            ver = l.v[i] + 8;
        }
        else if (text_starts (l.v[i], "vmlinux-")) {
            ver = l.v[i] + 8;
        }
        else {
            continue;
        }
        /* Rescue images and backups are not kernels to boot. */
        if (ver[0] == '\0' || strstr (ver, "rescue") != NULL ||
            strlen (ver) >= sizeof k->version ||
            (strlen (ver) > 4 && strcmp (ver + strlen (ver) - 4, ".old") ==
             0) || strchr (ver, '/') != NULL) {
            continue;
        }
        k = &in->kernels[in->nkernels++];
        memset (k, 0, sizeof *k);
        text_set (k->version, sizeof k->version, ver);
        snprintf (k->vmlinuz, sizeof k->vmlinuz, "/boot/%s", l.v[i]);
        for (size_t j = 0; initrds[j] != NULL; j++) {
            char p[300];
            struct file_stat st;

            snprintf (p, sizeof p, initrds[j], ver);
            if (tree_stat (&in->tree, p, true, &st) == 0 &&
                st.kind == FK_REG) {
                text_set (k->initrd, sizeof k->initrd, p);
                k->initrd_size = st.size;
                break;
            }
        }
        kernel_drivers (in, k);
        for (int d = 0; d < DRV_COUNT; d++) {
            k->in_initrd[d] = k->drv[d] == 'y' ? 1 : -1;
        }
        if (k->initrd[0] == '\0') {
            snprintf (k->initrd_why, sizeof k->initrd_why, "no initramfs");
            continue;
        }
        initrd_drivers (&in->tree, k->initrd, k->drv, k->in_initrd,
                        k->initrd_why, sizeof k->initrd_why);
    }
    qsort (in->kernels, in->nkernels, sizeof in->kernels[0], kernel_cmp);
    free (l.v);
}

/* ---- boot ------------------------------------------------------------ */

static bool
esp_type (const struct map_vol *v)
{
    return strcasecmp (v->ptype, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") == 0
           || strcasecmp (v->ptype, "0xef") == 0;
}

/* The first argument list of a "linux" line in GRUB's configuration,
 * without the kernel path. */
static void
grub_cmdline (const char *text, size_t len, char *out, size_t cap)
{
    size_t pos = 0, ll;
    const char *l;

    while (text_next_line (text, len, &pos, &l, &ll)) {
        size_t i = 0;

        while (i < ll && (l[i] == ' ' || l[i] == '\t')) {
            i++;
        }
        if (ll - i > 6 && (memcmp (l + i, "linux ", 6) == 0 ||
                           memcmp (l + i, "linux\t", 6) == 0 ||
                           (ll - i > 8 && memcmp (l + i, "linuxefi ", 9) ==
                            0) || (ll - i > 8 && memcmp (l + i, "linux16 ", 8)
                                   == 0))) {
            while (i < ll && l[i] != ' ' && l[i] != '\t') {
                i++;
            }
            while (i < ll && (l[i] == ' ' || l[i] == '\t')) {
                i++;
            }
            while (i < ll && l[i] != ' ' && l[i] != '\t') {
                i++;                /* the kernel's path */
            }
            while (i < ll && (l[i] == ' ' || l[i] == '\t')) {
                i++;
            }
            text_copy_printable (out, cap, l + i, ll - i);
            return;
        }
    }
}

static void
read_boot (struct inspection *in)
{
    static const char *const cfgs[] = {
        "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", NULL,
    };
    struct name_list l = { 0 };
    bool have_esp_dir = false;
    size_t len;
    char *t;

    /* The ESP, when fstab mounts it. */
    for (size_t i = 0; i < in->nfstab; i++) {
        const struct insp_fstab *e = &in->fstab[i];

        if (e->vol >= 0 && esp_type (&in->map.vols[e->vol]) &&
            strcmp (in->map.vols[e->vol].fs.type, "vfat") == 0) {
            text_set (in->esp_mount, sizeof in->esp_mount, e->file);
            break;
        }
    }
    l.cap = 64;
    l.v = calloc (l.cap, sizeof *l.v);
    if (in->esp_mount[0] != '\0' && l.v != NULL) {
        char dir[128];
        bool ex;

        snprintf (dir, sizeof dir, "%s/EFI", in->esp_mount);
        if (tree_list (&in->tree, dir, &ex, collect_name, &l) == 0 && ex) {
            have_esp_dir = true;
        }
        for (size_t i = 0; i < l.n && in->efi_loader[0] == '\0'; i++) {
            static const char *const loaders[] = {
                "shimx64.efi", "grubx64.efi", "systemd-bootx64.efi",
                "shimaa64.efi", "grubaa64.efi", "shimia32.efi", NULL,
            };

            if (strcasecmp (l.v[i], "BOOT") == 0) {
                continue;
            }
            for (size_t j = 0; loaders[j] != NULL; j++) {
                char p[512];

                snprintf (p, sizeof p, "%s/%s/%s", dir, l.v[i], loaders[j]);
                if (is_kind (&in->tree, p, FK_REG)) {
                    text_set (in->efi_loader, sizeof in->efi_loader, p);
                    break;
                }
            }
        }
        {
            char p[256];

            snprintf (p, sizeof p, "%s/EFI/BOOT/BOOTX64.EFI", in->esp_mount);
            in->efi_fallback = is_kind (&in->tree, p, FK_REG);
        }
    }
    free (l.v);
    text_set (in->firmware, sizeof in->firmware,
              in->efi_loader[0] != '\0' || (have_esp_dir &&
              !exists (in, "/boot/grub/i386-pc") &&
              !exists (in, "/boot/grub2/i386-pc")) ? "uefi" : "bios");

    for (size_t i = 0; cfgs[i] != NULL; i++) {
        if (is_kind (&in->tree, cfgs[i], FK_REG)) {
            snprintf (in->bootloader, sizeof in->bootloader, "grub2");
            text_set (in->grub_cfg, sizeof in->grub_cfg, cfgs[i]);
            break;
        }
    }
    if (in->grub_cfg[0] == '\0' && in->efi_loader[0] != '\0' &&
        strstr (in->efi_loader, "systemd-boot") == NULL) {
        /* GRUB on the ESP only (older Fedora/RHEL UEFI installs). */
        char p[300];

        snprintf (p, sizeof p, "%.*s/grub.cfg",
                  (int) (strrchr (in->efi_loader, '/') - in->efi_loader),
                  in->efi_loader);
        if (is_kind (&in->tree, p, FK_REG)) {
            snprintf (in->bootloader, sizeof in->bootloader, "grub2");
            text_set (in->grub_cfg, sizeof in->grub_cfg, p);
        }
    }
    if (in->bootloader[0] == '\0') {
        if (is_kind (&in->tree, "/boot/grub/menu.lst", FK_REG) ||
            is_kind (&in->tree, "/boot/grub/grub.conf", FK_REG)) {
            snprintf (in->bootloader, sizeof in->bootloader, "grub-legacy");
            text_set (in->grub_cfg, sizeof in->grub_cfg,
                      is_kind (&in->tree, "/boot/grub/menu.lst", FK_REG) ?
                      "/boot/grub/menu.lst" : "/boot/grub/grub.conf");
        }
        else if (strstr (in->efi_loader, "systemd-boot") != NULL ||
                 is_kind (&in->tree, "/boot/loader/loader.conf", FK_REG) ||
                 (in->esp_mount[0] != '\0' && ({
                     char p[128];
                     snprintf (p, sizeof p, "%s/loader/loader.conf",
                               in->esp_mount);
                     is_kind (&in->tree, p, FK_REG);
                 }))) {
            snprintf (in->bootloader, sizeof in->bootloader, "systemd-boot");
        }
    }
    if (in->grub_cfg[0] != '\0' &&
        (t = slurp (in, in->grub_cfg, FILE_MAX, &len)) != NULL) {
        grub_cmdline (t, len, in->cmdline, sizeof in->cmdline);
        free (t);
    }
    if (in->cmdline[0] == '\0' &&
        (t = slurp (in, "/etc/kernel/cmdline", FILE_MAX, &len)) != NULL) {
        text_copy_printable (in->cmdline, sizeof in->cmdline, t,
                             strcspn (t, "\n"));
        free (t);
    }
    in->net_ifnames_off = strstr (in->cmdline, "net.ifnames=0") != NULL;

    if (exists (in, "/usr/bin/dracut") || exists (in, "/usr/sbin/dracut") ||
        exists (in, "/sbin/dracut")) {
        snprintf (in->initramfs_tool, sizeof in->initramfs_tool, "dracut");
    }
    else if (exists (in, "/usr/sbin/update-initramfs") ||
             exists (in, "/sbin/update-initramfs")) {
        snprintf (in->initramfs_tool, sizeof in->initramfs_tool,
                  "initramfs-tools");
    }
    else if (exists (in, "/sbin/mkinitrd") ||
             exists (in, "/usr/sbin/mkinitrd")) {
        snprintf (in->initramfs_tool, sizeof in->initramfs_tool, "mkinitrd");
    }
    in->udevd = exists (in, "/lib/systemd/systemd-udevd") ||
                exists (in, "/usr/lib/systemd/systemd-udevd");
}

/* ---- other hypervisors' tools --------------------------------------- */

struct tool_sign {
    const char *what, *package, *file;
};

static const struct tool_sign tool_signs[] = {
    { "vmware", "open-vm-tools", "/usr/bin/vmtoolsd" },
    { "vmware", "", "/usr/bin/vmware-uninstall-tools.pl" },
    { "vmware", "", "/etc/vmware-tools/locations" },
    { "virtualbox", "virtualbox-guest-utils", "/usr/sbin/VBoxService" },
    { "virtualbox", "", "/opt/VBoxGuestAdditions" },
    { "hyperv", "hyperv-daemons", "/usr/sbin/hv_kvp_daemon" },
    { "hyperv", "hyperv-daemons", "/usr/sbin/hypervkvpd" },
    { "hyperv", "hyperv-daemons", "/usr/libexec/hypervkvpd" },
    { "xen", "xe-guest-utilities", "/usr/sbin/xe-daemon" },
    { "xen", "xe-guest-utilities", "/usr/sbin/xe-linux-distribution" },
    { NULL, NULL, NULL },
};

/* Debian packages of other hypervisors' guest tools. */
static const struct {
    const char *what, *package;
} dpkg_tools[] = {
    { "vmware", "open-vm-tools" }, { "vmware", "open-vm-tools-desktop" },
    { "vmware", "open-vm-tools-sdmp" },
    { "vmware", "open-vm-tools-containerinfo" },
    { "vmware", "open-vm-tools-salt-minion" },
    { "virtualbox", "virtualbox-guest-utils" },
    { "virtualbox", "virtualbox-guest-x11" },
    { "virtualbox", "virtualbox-guest-dkms" },
    { "hyperv", "hyperv-daemons" }, { "xen", "xe-guest-utilities" },
    { NULL, NULL },
};

static void
add_tool (struct inspection *in, const char *what, const char *package,
          const char *evidence)
{
    struct insp_tool *t;

    for (size_t i = 0; i < in->ntools; i++) {
        if (package[0] != '\0' && strcmp (in->tools[i].package, package) == 0)
        {
            return;
        }
    }
    if (in->ntools == INSP_MAX_TOOLS) {
        return;
    }
    t = &in->tools[in->ntools++];
    text_set (t->what, sizeof t->what, what);
    text_set (t->package, sizeof t->package, package);
    text_set (t->evidence, sizeof t->evidence, evidence);
}

/* Installed Debian packages among dpkg_tools, from dpkg's status file:
 * stanzas "Package: NAME" ... "Status: install ok installed". */
static void
dpkg_scan (struct inspection *in)
{
    size_t len, pos = 0, ll;
    char *t = slurp (in, "/var/lib/dpkg/status", STATUS_MAX, &len);
    const char *l;
    char pkg[128] = "";
    bool installed = false;

    if (t == NULL) {
        return;
    }
    for (;;) {
        int more = text_next_line (t, len, &pos, &l, &ll);

        if (!more || ll == 0) {
            for (size_t i = 0; installed && dpkg_tools[i].what != NULL; i++) {
                if (strcmp (pkg, dpkg_tools[i].package) == 0) {
                    add_tool (in, dpkg_tools[i].what, pkg,
                              "/var/lib/dpkg/status");
                }
            }
            pkg[0] = '\0';
            installed = false;
            if (!more) {
                break;
            }
            continue;
        }
        if (ll > 9 && memcmp (l, "Package: ", 9) == 0) {
            text_copy_printable (pkg, sizeof pkg, l + 9, ll - 9);
        }
        else if (ll > 8 && memcmp (l, "Status: ", 8) == 0) {
            /* "Status: WANT FLAG STATE": the package's files are there
             * unless STATE says otherwise, whatever WANT is (a package on
             * hold, or marked for removal, is still installed). */
            const char *sp = memrchr (l + 8, ' ', ll - 8);
            size_t wl = sp != NULL ? ll - (size_t) (sp + 1 - l) : 0;

            installed = sp != NULL && wl > 0 &&
                        !(wl == 13 && memcmp (sp + 1, "not-installed", 13)
                          == 0) &&
                        !(wl == 12 && memcmp (sp + 1, "config-files", 12)
                          == 0);
        }
    }
    free (t);
}

static void
read_tools (struct inspection *in)
{
    if (strcmp (in->pkg, "dpkg") == 0) {
        dpkg_scan (in);
    }
    for (size_t i = 0; tool_signs[i].what != NULL; i++) {
        bool packaged = false;

        if (!exists (in, tool_signs[i].file)) {
            continue;
        }
        for (size_t k = 0; k < in->ntools; k++) {
            if (strcmp (in->tools[k].what, tool_signs[i].what) == 0 &&
                in->tools[k].package[0] != '\0') {
                packaged = true;
            }
        }
        if (packaged) {
            continue;
        }
        /* rpm's database is not read here: the package is asked for at
         * fixup time (rpm -qf in the guest). */
        add_tool (in, tool_signs[i].what,
                  strcmp (in->pkg, "rpm") == 0 ? tool_signs[i].package : "",
                  tool_signs[i].file);
    }
}

/* ---- free space ------------------------------------------------------ */

static uint64_t
vol_free (const struct inspection *in, int vi)
{
    const struct map_vol *v;

    if (vi < 0) {
        return 0;
    }
    v = &in->map.vols[vi];
    if (v->fs.all_used || v->used_bytes >= v->size) {
        return 0;
    }
    return v->size - v->used_bytes;
}

static void
read_space (struct inspection *in)
{
    in->boot_vol = in->root;
    for (size_t i = 0; i < in->nfstab; i++) {
        if (strcmp (in->fstab[i].file, "/boot") == 0 && in->fstab[i].vol >= 0)
        {
            in->boot_vol = in->fstab[i].vol;
        }
    }
    in->root_free = vol_free (in, in->root);
    in->boot_free = vol_free (in, in->boot_vol);
}

/* ---- the whole ------------------------------------------------------- */

int
inspect_disks (struct inspection *in, struct image *const *imgs,
               const char *const *names, size_t n,
               const struct inspect_opts *o)
{
    memset (in, 0, sizeof *in);
    in->root = -1;
    in->boot_vol = -1;
    tree_init (&in->tree);
    if (disk_map_build (&in->map, imgs, names, n) < 0) {
        return -1;
    }
    in->have_map = true;
    if (find_roots (in) < 0) {
        return -1;
    }
    choose_root (in, o);
    if (in->root < 0) {
        return 0;
    }
    if (mount_vol (in, &in->tree, "/", in->root) < 0) {
        return -1;
    }
    read_fstab (in);
    mount_fstab (in);
    read_crypttab (in);
    read_release (in);
    read_arch (in);
    read_identity (in);
    read_boot (in);
    read_kernels (in);
    netconf_read (&in->tree, &in->net);
    read_tools (in);
    read_space (in);
    return 0;
}

void
inspect_free (struct inspection *in)
{
    tree_free (&in->tree);
    netconf_free (&in->net);
    if (in->have_map) {
        disk_map_free (&in->map);
    }
    in->have_map = false;
}
