#!/bin/sh
# guest_boot_converted, the check every fixup test ends with, can pass and
# can fail: it accepts the itools guest converted by hand (hand-fixup.sh:
# virtio in the initramfs, UUIDs, open-vm-tools purged, the NIC's name
# pinned to its MAC), and it rejects a half conversion that boots but
# leaves open-vm-tools and an unconfigured NIC, naming both.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/guests/guest.sh
. "$(dirname "$0")/guest.sh"
requires unshare --version

guest_image itools
before=$(hash_of "$GUEST_IMAGE")
hand=$top/tests/guests/hand-fixup.sh

"$hand" itools "$GUEST_IMAGE" "$T/full.raw"
guest_boot_converted full "$T/full.raw"
rm -f "$T/full.raw"

"$hand" itools "$GUEST_IMAGE" "$T/half.raw" initramfs uuid
if (guest_boot_converted half "$T/half.raw") >"$T/half.out" 2>&1; then
    cat "$T/half.out"
    fail "guest_boot_converted accepted a guest with open-vm-tools and ens5"
fi
cat "$T/half.out"
grep -q 'open-vm-tools is still installed' "$T/half.out" ||
    fail "half: open-vm-tools not named"
grep -q 'ens3 is not up.*ens5' "$T/half.out" || fail "half: the NIC not named"
grep -q 'failed units: .*networking.service' "$T/half.out" ||
    fail "half: the failed networking.service not named"

[ "$(hash_of "$GUEST_IMAGE")" = "$before" ] || fail "$GUEST_IMAGE was changed"
echo "ok"
