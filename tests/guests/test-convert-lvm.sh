#!/bin/sh
# vmconvert convert --fixup on the 'lvm' test guest (initramfs-tools, root on LVM, /boot apart): the
# appliance in QEMU fixes it up over an overlay, the qcow2 copy boots on
# virtio-blk and virtio-net with ens3 up at its old address, and the source
# image is unchanged.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/guests/guest.sh
. "$(dirname "$0")/guest.sh"
# shellcheck source=tests/guests/convert.sh
. "$(dirname "$0")/convert.sh"

convert_guest lvm --mac "ens3=$GUEST_MAC"
echo ok
