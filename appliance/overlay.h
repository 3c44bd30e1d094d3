/* SPDX-License-Identifier: MIT */
/*
 * The guest on an overlay, in the appliance: inspection of the selected
 * disks, pre-flight, then (rule 1: the source is never written) a
 * device-mapper snapshot of each read-only disk with its copy-on-write
 * store in RAM, the guest's partitions and logical volumes mapped on top
 * of the snapshots (dm linear/striped, from vmconvert's own parse of the
 * partition tables and LVM metadata), its filesystems mounted from those,
 * the fixups (converter/fixup/fixup.h), everything unmounted again.  The
 * sender then reads the snapshots: the fixed-up disks.
 *
 * In the fixup VM that `vmconvert convert --fixup` boots on a host, the
 * disks are already qcow2 overlays of the source: there the volumes are
 * mapped on the disks themselves (IN_PLACE) and no snapshot is made.
 */
#ifndef VMC_APPLIANCE_OVERLAY_H
#define VMC_APPLIANCE_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "../converter/fixup/fixup.h"
#include "../converter/fixup/inspect.h"

#define OVERLAY_MAX_DISKS 64

struct overlay {
    struct inspection in;
    bool have_in;
    struct image *imgs[OVERLAY_MAX_DISKS];
    size_t n;
    char dev[OVERLAY_MAX_DISKS][64];    /* the disks */
    char snap[OVERLAY_MAX_DISKS][64];   /* what to send: their snapshots
                                         * (or the disks, in place) */
    bool snapped[OVERLAY_MAX_DISKS];
    char vols[TREE_MAX_MOUNTS][32];     /* dm names of mapped volumes */
    size_t nvols;
    char *report;                       /* the fixup report (JSON) */
    size_t report_len;
};

/* Inspect the disks DEVS (their kernel device paths, in the order the
 * guest sees them) and run the pre-flight checks: 0 (O->in filled; its
 * root is -1 when there is no guest to fix up), -1 on a read error. */
int overlay_inspect (struct overlay *ov, const char *const *devs, size_t n,
                     const struct inspect_opts *o);

/* Snapshot (unless IN_PLACE), map, mount, fix up, unmount.  0 when the
 * fixups succeeded, -1 when they failed or the overlay could not be made
 * (message set; the report, when there is one, says more).  Afterwards
 * ov->snap[] are the devices to send. */
int overlay_fixup (struct overlay *ov, bool in_place,
                   const struct fixup_opts *o);

/* Check that no snapshot ran out of RAM: 0, or -1 with a message. */
int overlay_check (const struct overlay *ov);

/* Remove the snapshots and mappings, close the disks. */
void overlay_free (struct overlay *ov);

#endif
