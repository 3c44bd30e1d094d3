/* SPDX-License-Identifier: MIT */
/*
 * The source machine's disks (disks.h).  Everything comes from sysfs:
 *
 *   block/X/size                  512-byte sectors
 *   block/X/removable, ro         0 or 1
 *   block/X/queue/logical_block_size
 *   block/X/serial                virtio-blk
 *   block/X/device/serial         NVMe controller
 *   block/X/device/vpd_pg80       SCSI (and ATA through libata): the Unit
 *                                 Serial Number VPD page: 4-byte header,
 *                                 then the serial, blank padded
 *   block/X/wwid, device/wwid     NVMe namespace, SCSI (naa., t10., eui.)
 *   block/X/device/model, vendor
 *   realpath(block/X)             /sys/devices/pci0000:00/0000:00:05.0/
 *                                 host2/target2:0:0/2:0:0:0/block/sda:
 *                                 the path, from which we make ours
 *
 * All of it is hostile-ish (a device reports what it likes): lengths are
 * bounded and anything unprintable is dropped.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../converter/lib/error.h"
#include "disks.h"
#include "util.h"

/* The serial number in a SCSI Unit Serial Number VPD page (0x80) as
 * sysfs gives it: a 4-byte header (page code at 1, length at 2-3), then
 * the serial, blank padded.  Its length, or -1. */
static int
read_vpd80 (const char *dir, char *out, size_t cap)
{
    char path[PATH_MAX], buf[512];
    long n;
    size_t len, o = 0;

    out[0] = '\0';
    if ((size_t) snprintf (path, sizeof path, "%s/vpd_pg80", dir) >=
        sizeof path || (n = read_small_file (path, buf, sizeof buf)) < 4 ||
        (unsigned char) buf[1] != 0x80) {
        return -1;
    }
    len = ((size_t) (unsigned char) buf[2] << 8) | (unsigned char) buf[3];
    if (len > (size_t) n - 4) {
        len = (size_t) n - 4;
    }
    for (size_t i = 4; i < 4 + len && o + 1 < cap; i++) {
        if ((unsigned char) buf[i] >= 0x20 && (unsigned char) buf[i] < 0x7f &&
            (o > 0 || buf[i] != ' ')) {
            out[o++] = buf[i];
        }
    }
    while (o > 0 && out[o - 1] == ' ') {
        o--;
    }
    out[o] = '\0';
    return (int) o;
}

static uint64_t
read_u64 (const char *dir, const char *name)
{
    char buf[32];

    if (sysfs_attr (dir, name, buf, sizeof buf) <= 0) {
        return 0;
    }
    return strtoull (buf, NULL, 10);
}

static bool
skip_kname (const char *k)
{
    static const char *const prefixes[] = {
        "loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd", "mtdblock",
        "drbd", "rbd", "bcache", "nullb", "pmem",
    };

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (strncmp (k, prefixes[i], strlen (prefixes[i])) == 0) {
            return true;
        }
    }
    /* mmcblk0boot0 / mmcblk0rpmb are not disks of their own. */
    return strstr (k, "boot") != NULL || strstr (k, "rpmb") != NULL;
}

static bool
is_pci_addr (const char *s)
{
    /* dddd:bb:dd.f */
    static const char pat[] = "xxxx:xx:xx.x";

    if (strlen (s) != sizeof pat - 1) {
        return false;
    }
    for (size_t i = 0; pat[i] != '\0'; i++) {
        if (pat[i] == 'x' ? !isxdigit ((unsigned char) s[i]) : s[i] != pat[i]) {
            return false;
        }
    }
    return true;
}

static bool
is_hctl (const char *s, unsigned v[4])
{
    char tail;

    return sscanf (s, "%u:%u:%u:%u%c", &v[0], &v[1], &v[2], &v[3], &tail) == 4;
}

static void
append (char *out, size_t cap, const char *fmt, const char *a)
{
    size_t n = strlen (out);

    if (n < cap) {
        snprintf (out + n, cap - n, fmt, a);
    }
}

/* Our path for a disk, from the components of its sysfs device path:
 * the last PCI function, then the place behind it (like udev's
 * by-path, without the host number, which depends on probe order). */
static void
make_path (const char *real, const char *kname, struct disk_info *d)
{
    char copy[PATH_MAX], *save = NULL, *tok;
    char pci[16] = "", tail[96] = "", usb[64] = "";
    unsigned hctl[4];

    snprintf (copy, sizeof copy, "%s", real);
    snprintf (d->transport, sizeof d->transport, "other");
    for (tok = strtok_r (copy, "/", &save); tok != NULL;
         tok = strtok_r (NULL, "/", &save)) {
        if (is_pci_addr (tok)) {
            snprintf (pci, sizeof pci, "%s", tok);
            tail[0] = usb[0] = '\0';
        }
        else if (strncmp (tok, "usb", 3) == 0 && isdigit ((unsigned char) tok[3])) {
            d->usb = true;
            snprintf (d->transport, sizeof d->transport, "usb");
        }
        else if (d->usb && strchr (tok, '-') != NULL &&
                 isdigit ((unsigned char) tok[0]) && strchr (tok, ':') == NULL) {
            snprintf (usb, sizeof usb, "-usb-%.40s", tok);
        }
        else if (strncmp (tok, "ata", 3) == 0 && isdigit ((unsigned char) tok[3])) {
            snprintf (tail, sizeof tail, "-ata-%.8s", tok + 3);
            if (!d->usb) {
                snprintf (d->transport, sizeof d->transport, "ata");
            }
        }
        else if (is_hctl (tok, hctl)) {
            size_t n = strlen (tail);

            snprintf (tail + n, sizeof tail - n, "%s%u:%u:%u",
                      n > 0 ? "." : "-scsi-", hctl[1], hctl[2], hctl[3]);
            if (strcmp (d->transport, "other") == 0) {
                snprintf (d->transport, sizeof d->transport, "scsi");
            }
        }
        else if (strncmp (tok, "virtio", 6) == 0 &&
                 isdigit ((unsigned char) tok[6])) {
            snprintf (d->transport, sizeof d->transport, "virtio");
        }
        else if (strncmp (tok, "vbd-", 4) == 0) {
            snprintf (tail, sizeof tail, "xen-%.20s", tok);
            snprintf (d->transport, sizeof d->transport, "xen");
        }
        else if (strncmp (tok, "mmc", 3) == 0 && strchr (tok, ':') != NULL) {
            snprintf (tail, sizeof tail, "-mmc-%.20s", tok);
            snprintf (d->transport, sizeof d->transport, "mmc");
        }
    }
    if (strncmp (kname, "nvme", 4) == 0) {
        const char *ns = strrchr (kname, 'n');

        snprintf (tail, sizeof tail, "-nvme-%.8s", ns != NULL ? ns + 1 : "1");
        snprintf (d->transport, sizeof d->transport, "nvme");
    }
    d->path[0] = '\0';
    if (pci[0] != '\0') {
        append (d->path, sizeof d->path, "pci-%s", pci);
    }
    append (d->path, sizeof d->path, "%s", usb);
    append (d->path, sizeof d->path, "%s", tail);
    if (d->path[0] == '-') {
        memmove (d->path, d->path + 1, strlen (d->path));
    }
}

/* A job-safe rendering of S: [A-Za-z0-9._-], others become '_'. */
static void
safe_name (char *out, size_t cap, const char *prefix, const char *s)
{
    size_t o = 0;

    for (const char *p = prefix; *p != '\0' && o + 1 < cap; p++) {
        out[o++] = *p;
    }
    for (; *s != '\0' && o + 1 < cap; s++) {
        out[o++] = (isalnum ((unsigned char) *s) || *s == '.' || *s == '-' ||
                    *s == '_') ? *s : '_';
    }
    out[o] = '\0';
}

bool
disk_is_boot_medium (const char *dev)
{
    unsigned char pvd[2048];
    char id[33];
    int fd = open (dev, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    int i;

    if (fd == -1) {
        return false;
    }
    /* ISO 9660: the primary volume descriptor at sector 16 (2 KiB
     * sectors): type 1, "CD001", version 1; volume identifier at 40,
     * 32 characters, blank padded. */
    n = pread (fd, pvd, sizeof pvd, 16 * 2048);
    close (fd);
    if (n != (ssize_t) sizeof pvd || pvd[0] != 1 ||
        memcmp (pvd + 1, "CD001", 5) != 0) {
        return false;
    }
    memcpy (id, pvd + 40, 32);
    id[32] = '\0';
    for (i = 31; i >= 0 && id[i] == ' '; i--) {
        id[i] = '\0';
    }
    return strcmp (id, BOOT_VOLUME_ID) == 0;
}

static int
cmp_disks (const void *a, const void *b)
{
    const struct disk_info *x = a, *y = b;
    int r = strcmp (x->path, y->path);

    return r != 0 ? r : strcmp (x->kname, y->kname);
}

int
disks_scan (const char *sysroot, const char *devroot, struct disk_list *l)
{
    char dir[PATH_MAX], bdir[PATH_MAX], real[PATH_MAX];
    struct dirent *e;
    DIR *dp;

    memset (l, 0, sizeof *l);
    snprintf (dir, sizeof dir, "%s/block", sysroot);
    dp = opendir (dir);
    if (dp == NULL) {
        vmc_perror ("%s", dir);
        return -1;
    }
    while ((e = readdir (dp)) != NULL && l->n < DISKS_MAX) {
        struct disk_info *d = &l->d[l->n];
        char devdir[PATH_MAX];

        if (e->d_name[0] == '.' || strlen (e->d_name) >= sizeof d->kname ||
            skip_kname (e->d_name)) {
            continue;
        }
        memset (d, 0, sizeof *d);
        memcpy (d->kname, e->d_name, strlen (e->d_name) + 1);
        if ((size_t) snprintf (bdir, sizeof bdir, "%s/%s", dir, d->kname) >=
            sizeof bdir ||
            (size_t) snprintf (d->dev, sizeof d->dev, "%s/%s", devroot,
                               e->d_name) >= sizeof d->dev) {
            continue;
        }
        d->size = read_u64 (bdir, "size") * 512;
        if (d->size == 0) {
            continue;               /* an empty card reader, a dead disk */
        }
        d->logical_block_size = (unsigned) read_u64 (bdir,
                                                     "queue/logical_block_size");
        if (d->logical_block_size == 0) {
            d->logical_block_size = 512;
        }
        d->removable = read_u64 (bdir, "removable") != 0;
        d->read_only = read_u64 (bdir, "ro") != 0;
        if ((size_t) snprintf (devdir, sizeof devdir, "%s/device", bdir) >=
            sizeof devdir) {
            continue;
        }
        if (sysfs_attr (bdir, "serial", d->serial, sizeof d->serial) <= 0 &&
            sysfs_attr (devdir, "serial", d->serial, sizeof d->serial) <= 0) {
            read_vpd80 (devdir, d->serial, sizeof d->serial);
        }
        if (sysfs_attr (bdir, "wwid", d->wwn, sizeof d->wwn) <= 0) {
            sysfs_attr (devdir, "wwid", d->wwn, sizeof d->wwn);
        }
        sysfs_attr (devdir, "vendor", d->vendor, sizeof d->vendor);
        sysfs_attr (devdir, "model", d->model, sizeof d->model);
        if (realpath (bdir, real) != NULL) {
            make_path (real, d->kname, d);
        }
        d->boot_medium = disk_is_boot_medium (d->dev);
        l->n++;
    }
    closedir (dp);
    qsort (l->d, l->n, sizeof l->d[0], cmp_disks);
    /* Names: the serial when it is there and unique, else the path, else
     * the kernel name (with a number to keep them apart). */
    for (unsigned i = 0; i < l->n; i++) {
        struct disk_info *d = &l->d[i];
        bool unique = d->serial[0] != '\0';

        for (unsigned j = 0; unique && j < l->n; j++) {
            unique = j == i || strcmp (l->d[j].serial, d->serial) != 0;
        }
        if (unique) {
            safe_name (d->name, sizeof d->name, "serial-", d->serial);
        }
        else if (d->path[0] != '\0') {
            safe_name (d->name, sizeof d->name, "", d->path);
        }
        else {
            safe_name (d->name, sizeof d->name, "", d->kname);
        }
    }
    return 0;
}

static bool
match (const char *pat, const char *s)
{
    return s[0] != '\0' && fnmatch (pat, s, FNM_CASEFOLD) == 0;
}

static bool
selector_matches (const char *sel, const struct disk_info *d)
{
    static const struct { const char *key; size_t off; } keyed[] = {
        { "serial:", offsetof (struct disk_info, serial) },
        { "wwn:", offsetof (struct disk_info, wwn) },
        { "path:", offsetof (struct disk_info, path) },
        { "model:", offsetof (struct disk_info, model) },
        { "name:", offsetof (struct disk_info, name) },
    };

    for (size_t i = 0; i < sizeof keyed / sizeof keyed[0]; i++) {
        size_t n = strlen (keyed[i].key);

        if (strncmp (sel, keyed[i].key, n) == 0) {
            return match (sel + n, (const char *) d + keyed[i].off);
        }
    }
    if (strncmp (sel, "/dev/", 5) == 0) {
        sel += 5;
    }
    return match (sel, d->kname) || match (sel, d->name) ||
           match (sel, d->serial) || match (sel, d->path) ||
           match (sel, d->wwn);
}

int
disks_select (struct disk_list *l, const char *selectors, char *why,
              size_t whylen)
{
    char copy[1024], *save = NULL, *tok;
    bool any_include = false;

    snprintf (copy, sizeof copy, "%s", selectors);
    for (unsigned i = 0; i < l->n; i++) {
        struct disk_info *d = &l->d[i];

        d->selected = false;
        d->why[0] = '\0';
        if (d->boot_medium) {
            snprintf (d->why, sizeof d->why, "the appliance's boot medium");
        }
    }
    /* Inclusions first, then exclusions. */
    for (int pass = 0; pass < 2; pass++) {
        snprintf (copy, sizeof copy, "%s", selectors);
        for (tok = strtok_r (copy, ", \t", &save); tok != NULL;
             tok = strtok_r (NULL, ", \t", &save)) {
            bool neg = tok[0] == '!' || tok[0] == '-';
            const char *sel = neg ? tok + 1 : tok;
            unsigned hits = 0;

            if ((pass == 0) == neg) {
                continue;
            }
            if (*sel == '\0') {
                snprintf (why, whylen, "vmconvert.disks: empty selector");
                return -1;
            }
            if (!neg) {
                any_include = true;
            }
            for (unsigned i = 0; i < l->n; i++) {
                struct disk_info *d = &l->d[i];
                bool all = strcmp (sel, "all") == 0;

                if (all ? (d->removable || d->usb || d->boot_medium)
                        : !selector_matches (sel, d)) {
                    continue;
                }
                hits++;
                if (d->boot_medium) {
                    continue;       /* never, whatever was asked */
                }
                d->selected = !neg;
                if (neg) {
                    snprintf (d->why, sizeof d->why, "left out by %.60s",
                              tok);
                }
            }
            if (hits == 0 && strcmp (sel, "all") != 0) {
                snprintf (why, whylen, "vmconvert.disks: \"%s\" matches no "
                          "disk", sel);
                return -1;
            }
        }
    }
    if (!any_include) {
        for (unsigned i = 0; i < l->n; i++) {
            struct disk_info *d = &l->d[i];

            if (d->why[0] != '\0') {
                continue;
            }
            if (d->removable) {
                snprintf (d->why, sizeof d->why, "removable (select it "
                          "with vmconvert.disks=)");
            }
            else if (d->usb) {
                snprintf (d->why, sizeof d->why, "on USB (select it with "
                          "vmconvert.disks=)");
            }
            else {
                d->selected = true;
            }
        }
    }
    for (unsigned i = 0; i < l->n; i++) {
        if (l->d[i].selected) {
            return 0;
        }
    }
    snprintf (why, whylen, "no disk to send%s", l->n == 0 ? " (no disks "
              "found)" : "");
    return -1;
}

static int
set_ro (const char *dev)
{
    int one = 1, fd = open (dev, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd == -1) {
        vmc_perror ("%s", dev);
        return -1;
    }
    if (ioctl (fd, BLKROSET, &one) == -1) {
        vmc_perror ("%s: BLKROSET", dev);
        close (fd);
        return -1;
    }
    close (fd);
    return 0;
}

int
disk_lock_ro (const char *sysroot, const char *devroot, const char *kname)
{
    char dir[PATH_MAX], dev[PATH_MAX];
    struct dirent *e;
    DIR *dp;
    int r = 0;

    snprintf (dev, sizeof dev, "%s/%s", devroot, kname);
    if (set_ro (dev) == -1) {
        return -1;
    }
    /* And each partition: sysfs lists them as block/X/X1 ... */
    snprintf (dir, sizeof dir, "%s/block/%s", sysroot, kname);
    dp = opendir (dir);
    if (dp == NULL) {
        return 0;
    }
    while ((e = readdir (dp)) != NULL) {
        char part[PATH_MAX + 16];

        if (strncmp (e->d_name, kname, strlen (kname)) != 0) {
            continue;
        }
        if ((size_t) snprintf (part, sizeof part, "%s/%s/partition", dir,
                               e->d_name) >= sizeof part ||
            access (part, F_OK) != 0) {
            continue;
        }
        snprintf (dev, sizeof dev, "%s/%s", devroot, e->d_name);
        if (set_ro (dev) == -1) {
            r = -1;
        }
    }
    closedir (dp);
    return r;
}
