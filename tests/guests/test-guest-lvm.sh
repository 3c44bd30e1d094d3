#!/bin/sh
# The lvm test guest (GPT, /boot on sda2, / on LVM vg0/root, initramfs-tools,
# ifupdown) behaves like an unconverted VMware machine: it boots as the source
# machine did (LSI SCSI, e1000 as ens3, its static address, open-vm-tools), it
# cannot find its root on virtio-blk, and no boot changes its image.  The fixup
# tests judge their conversions against these controls
# (tests/guests/README.md).
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/guests/guest.sh
. "$(dirname "$0")/guest.sh"

guest_controls lvm
