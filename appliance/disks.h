/* SPDX-License-Identifier: MIT */
/*
 * The source machine's disks, from sysfs: what they are (model, serial,
 * WWN, a path that does not change between boots), which of them to
 * send, and locking them read-only.
 *
 * Kernel names (sda, nvme0n1) change between boots; a disk is known by
 * its serial number, its WWN or its path (the PCI address of its
 * controller and its place behind it), and the job names it by those.
 */
#ifndef VMC_APPLIANCE_DISKS_H
#define VMC_APPLIANCE_DISKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISKS_MAX 64

struct disk_info {
    char kname[32];                 /* sda */
    char dev[96];                   /* /dev/sda */
    char serial[96];
    char wwn[96];
    char vendor[48];
    char model[96];
    char path[160];                 /* pci-0000:00:05.0-scsi-0:0:0 */
    char name[128];                 /* the disk's name in the job */
    char transport[16];             /* scsi ata nvme virtio usb xen mmc
                                     * other */
    uint64_t size;                  /* bytes */
    unsigned logical_block_size;
    bool removable, usb, boot_medium, read_only;
    bool selected;
    char why[96];                   /* why it is not selected */
};

struct disk_list {
    struct disk_info d[DISKS_MAX];
    unsigned n;
};

/* Every block device under SYSROOT/block that could hold a guest disk
 * (not loop, ram, zram, device-mapper, md, optical, floppy or nbd), with
 * its attributes; DEVROOT is where the device nodes are (/dev).  Sorted
 * by path.  0, or -1 when SYSROOT/block cannot be read. */
int disks_scan (const char *sysroot, const char *devroot,
                struct disk_list *l);

/* Choose the disks to send: SELECTORS is vmconvert.disks= ("" or "all":
 * every fixed disk that is not the boot medium, not removable and not on
 * USB).  Each comma-separated selector is serial:PAT, wwn:PAT, path:PAT,
 * model:PAT, name:PAT or a bare PAT (kernel name, /dev/ path, name,
 * serial or path), with shell wildcards; "!SEL" leaves disks out.  A
 * selector that matches no disk is an error: 0, or -1 with the reason in
 * WHY. */
int disks_select (struct disk_list *l, const char *selectors, char *why,
                  size_t whylen);

/* Set the disk and each of its partitions read-only in the kernel
 * (BLKROSET), so nothing on this machine can write them.  0, or -1 with
 * vmc_error set. */
int disk_lock_ro (const char *sysroot, const char *devroot,
                  const char *kname);

/* Is this block device the appliance's own boot medium (an ISO 9660
 * volume labelled VMCONVERT at its start)? */
bool disk_is_boot_medium (const char *dev);

#define BOOT_VOLUME_ID "VMCONVERT"

#endif
