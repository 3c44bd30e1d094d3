#!/bin/sh
# The appliance on the 'dracut' test guest (dracut, MBR, systemd-networkd) as the
# source machine: it fixes the guest up on a snapshot of its read-only
# disk and sends it; the received disk boots on virtio-blk and virtio-net
# with ens3 up at its old address, and the source image is unchanged.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/../net/net.sh"
# shellcheck source=tests/guests/guest.sh
. "$(dirname "$0")/guest.sh"
# shellcheck source=tests/guests/convert.sh
. "$(dirname "$0")/convert.sh"

p2v_guest dracut
echo ok
