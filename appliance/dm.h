/* SPDX-License-Identifier: MIT */
/*
 * A minimal device-mapper client (the ioctls of linux/dm-ioctl.h on
 * /dev/mapper/control) and loop devices (linux/loop.h), for the
 * appliance, which is linked statically and has neither libdevmapper nor
 * udev.  It is what lets the appliance change a guest without writing
 * its disks: snapshots of the read-only disks with the copy-on-write
 * store in RAM, and partitions and logical volumes mapped with linear and
 * striped targets on top of them.
 *
 * Sizes and offsets in targets are in 512-byte sectors, as the kernel's
 * tables have them.  Every function returns 0 (or a count), or -1 with one
 * message recorded with vmc_error().
 */
#ifndef VMC_APPLIANCE_DM_H
#define VMC_APPLIANCE_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One line of a table: LEN sectors from START of the new device, mapped
 * by target TYPE ("linear", "striped", "snapshot", ...) with PARAMS, as
 * Documentation/admin-guide/device-mapper/<type>.rst has them. */
struct dm_target {
    uint64_t start, len;
    char type[16];
    char params[1024];
};

/* The longest device name, as struct dm_ioctl allows (DM_NAME_LEN - 1). */
#define DM_NAME_MAX 127

/* Look for device nodes, sysfs and /run under ROOT instead of / (for the
 * unit tests; NULL or "" is /). */
void dm_set_sysroot (const char *root);

/* The kernel speaks version 4 of the ioctl interface: 0, or -1 with a
 * message that names the missing module when /dev/mapper/control does not
 * exist.  Makes the control node when sysfs knows the device but /dev
 * lacks it. */
int dm_version_check (void);

/* Create device NAME with the N targets T (contiguous, from sector 0),
 * read-only if READONLY, and activate it.  Its node, /dev/dm-MINOR, goes
 * into DEV (DEVCAP bytes; NULL for none); /dev/mapper/NAME links to it.
 * Nothing is left behind on failure.  A read-write table whose linear or
 * striped targets (or a snapshot's COW) are on a read-only device is
 * refused: the kernel would let it write there. */
int dm_create (const char *name, const struct dm_target *t, size_t n,
               bool readonly, char *dev, size_t devcap);

/* Remove device NAME (retried for a while when it is busy) and its
 * /dev/mapper link. */
int dm_remove (const char *name);

/* The status of each target of NAME, one line each, as dmsetup status
 * prints them: "START LEN TYPE STATUS\n".  The number of targets. */
int dm_status (const char *name, char *out, size_t cap);

/* The same for the loaded table: "START LEN TYPE PARAMS\n"; the kernel
 * writes devices as MAJOR:MINOR. */
int dm_table (const char *name, char *out, size_t cap);

/* Target lines.  DEV is a device path or MAJOR:MINOR, without blanks. */
int dm_linear (struct dm_target *t, uint64_t start, uint64_t len,
               const char *dev, uint64_t offset_sectors);

/* N stripes of CHUNK sectors each over DEVS[i] from OFFSETS[i]; LEN must
 * divide into N stripes of whole chunks, as dm-stripe requires. */
int dm_striped (struct dm_target *t, uint64_t start, uint64_t len,
                uint32_t chunk, size_t n, const char *const *devs,
                const uint64_t *offsets);

/* A snapshot of ORIGIN with its exceptions on COW, persistent ("P") or
 * not ("N"), in chunks of CHUNK sectors (a power of two). */
int dm_snapshot (struct dm_target *t, uint64_t start, uint64_t len,
                 const char *origin, const char *cow, bool persistent,
                 uint32_t chunk);

/* Attach FILE to a free loop device (read-only if READONLY); its node
 * goes into DEV. */
int loop_attach (const char *file, bool readonly, char *dev, size_t cap);

/* Detach loop device DEV. */
int loop_detach (const char *dev);

/* The appliance's snapshot of a read-only disk: writes to the snapshot
 * device go to COW_BYTES of RAM, the disk is only read.  See dm.c for
 * what happens when they run out: callers check snap_usage() after their
 * writes and must not send a snapshot that is invalid. */
int snap_create (const char *name, const char *origin, uint64_t cow_bytes,
                 char *dev, size_t cap);

/* Bytes of the copy-on-write store in use and in all (0 and 0 when
 * invalid), and whether the snapshot has become invalid. */
int snap_usage (const char *name, uint64_t *used, uint64_t *total,
                bool *invalid);

/* Remove the snapshot, its loop device and its RAM. */
int snap_remove (const char *name);

/* Exposed for the unit tests. */

/* The snapshot target's status (only the STATUS part of a dm_status
 * line) into sectors used and in all, and INVALID. */
int snap_parse_status (const char *status, uint64_t *used, uint64_t *total,
                       bool *invalid);

/* The data of a DM_TABLE_LOAD for the N targets T, after a struct
 * dm_ioctl: its length, or -1 when the targets are not a valid table or
 * do not fit in CAP bytes. */
long dm_pack_targets (const struct dm_target *t, size_t n, void *buf,
                      size_t cap);

/* The COUNT target specs and strings a DM_TABLE_STATUS returned in
 * DATA (LEN bytes: from the ioctl's data_start to its data_size) as
 * "START LEN TYPE STRING" lines.  The number of targets. */
int dm_format_specs (const void *data, size_t len, uint32_t count,
                     char *out, size_t cap);

#endif
