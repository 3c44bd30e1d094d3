#!/bin/sh
# make demo: a real conversion, end to end, on a realistic guest disk.
#
# 1. Build a 1 GiB guest disk (GPT, FAT32 ESP, ext4 root with ~24,000
#    files, swap; stale data in free space), without mounting anything.
# 2. Export it as VMware does for OVF/vSphere import (VMDK streamOptimized).
# 3. Import that into KVM's format (qcow2), as a migration would.
# 4. Judge the result with qemu-img (check and compare), not with our own
#    reader, and show that the source was not modified.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
vmc=$top/build/vmconvert
dir=$top/build/demo
mkdir -p "$dir"

step () {
    printf '\n== %s\n' "$*"
}

if [ ! -f "$dir/guest.raw" ]; then
    step "Building a 1 GiB guest disk (tests/bench/make-guest-disk.sh)"
    "$top/tests/bench/make-guest-disk.sh" 1G "$dir/guest.raw" >"$dir/build.log" 2>&1 ||
        { cat "$dir/build.log"; exit 1; }
fi
sed -n '1,4p' "$dir/guest.raw.stats"
before=$(sha256sum <"$dir/guest.raw")
rm -f "$dir/guest.vmdk" "$dir/guest.qcow2"

step "vmconvert convert -p -O vmdk -o subformat=streamOptimized guest.raw guest.vmdk"
"$vmc" convert -p -O vmdk -o subformat=streamOptimized \
    "$dir/guest.raw" "$dir/guest.vmdk"
"$vmc" info "$dir/guest.vmdk"

step "vmconvert convert -p -O qcow2 guest.vmdk guest.qcow2"
"$vmc" convert -p -O qcow2 "$dir/guest.vmdk" "$dir/guest.qcow2"
"$vmc" info "$dir/guest.qcow2"

step "Checking the result with vmconvert and, independently, qemu-img"
"$vmc" check "$dir/guest.qcow2"
qemu-img check "$dir/guest.qcow2"
qemu-img compare "$dir/guest.raw" "$dir/guest.qcow2"
"$vmc" compare "$dir/guest.vmdk" "$dir/guest.qcow2"
[ "$(sha256sum <"$dir/guest.raw")" = "$before" ] ||
    { echo "the source changed!"; exit 1; }
echo "source unchanged (sha256)"

step "Sizes on the host"
du -h --apparent-size "$dir/guest.raw" "$dir/guest.vmdk" "$dir/guest.qcow2" |
    sed 's/^/apparent  /'
du -h "$dir/guest.raw" "$dir/guest.vmdk" "$dir/guest.qcow2" |
    sed 's/^/allocated /'
printf '\nDemo done: guest.raw -> streamOptimized VMDK -> qcow2, identical.\n'
