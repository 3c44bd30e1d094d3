#!/bin/sh
# VDI reading, judged by qemu-img: dynamic and static images made by
# qemu-img, blocks allocated out of guest order (qemu-io), discarded block
# map entries, an odd disk size.  Sources are never modified.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires qemu-io --version
requires test -x "$TOOLS/mkdisk"

# put_le NBYTES FILE OFFSET VALUE: store VALUE little-endian.
put_le () {
    _i=0 _s=""
    while [ "$_i" -lt "$1" ]; do
        _s="$_s$(printf '\\%03o' $((($4 >> (_i * 8)) & 255)))"
        _i=$((_i + 1))
    done
    # shellcheck disable=SC2059 # the format is the escaped bytes
    printf "$_s" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}

vsize () {
    qemu-img info --output=json -f "$1" "$2" |
        sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

# read_ok IMG [REF]: convert IMG to raw; the output must match IMG as
# qemu reads it (and REF); IMG must not change.
read_ok () {
    _before=$(hash_of "$1")
    rm -f "$T/out.raw"
    "$VMCONVERT" convert -O raw "$1" "$T/out.raw" || fail "convert $1"
    [ "$(hash_of "$1")" = "$_before" ] || fail "$1 was modified"
    qcompare -f vdi -F raw "$1" "$T/out.raw"
    if [ $# -gt 1 ]; then
        qcompare -f raw -F raw "$2" "$T/out.raw"
    fi
    [ "$(vsize raw "$T/out.raw")" = "$(vsize vdi "$1")" ] ||
        fail "$1: virtual size differs from qemu-img's"
}

# 23 MiB + 5 sectors: not a multiple of the 1 MiB block.
size=$((23 * 1048576 + 2560))
"$TOOLS/mkdisk" -s 41 "$size" "$T/ref.raw"

qemu-img convert -f raw -O vdi "$T/ref.raw" "$T/dyn.vdi"
read_ok "$T/dyn.vdi" "$T/ref.raw"
"$VMCONVERT" check "$T/dyn.vdi" >/dev/null || fail "check dyn.vdi"
"$VMCONVERT" info "$T/dyn.vdi" >"$T/info"
grep -q '^file format: vdi$' "$T/info" || fail "not probed as vdi"
grep -q '^subformat: dynamic$' "$T/info" || fail "subformat dynamic"

qemu-img convert -f raw -O vdi -o static=on "$T/ref.raw" "$T/static.vdi"
read_ok "$T/static.vdi" "$T/ref.raw"
"$VMCONVERT" check "$T/static.vdi" >/dev/null || fail "check static.vdi"
"$VMCONVERT" info "$T/static.vdi" | grep -q '^subformat: static$' ||
    fail "subformat static"

# Blocks allocated out of guest order, so that neighbours are not
# neighbours in the file: the map becomes 2 1 4 3 - 0 - -.
qemu-img create -q -f vdi "$T/order.vdi" 8M
qemu-io -f vdi -c 'write -P 0x11 5M 1M' -c 'write -P 0x44 1M 1M' \
    -c 'write -P 0x22 0 1536k' -c 'write -P 0x33 3300k 4k' \
    -c 'write -P 0x55 2M 4k' "$T/order.vdi" >/dev/null
# shellcheck disable=SC2046 # word splitting normalises the spacing
[ "$(echo $(od -An -tx4 -j 512 -N 32 "$T/order.vdi"))" = \
  "00000002 00000001 00000004 00000003 ffffffff 00000000 ffffffff ffffffff" ] ||
    fail "order.vdi: unexpected block map"
read_ok "$T/order.vdi"
"$VMCONVERT" check "$T/order.vdi" >/dev/null || fail "check order.vdi"
qemu-img check -q "$T/order.vdi" || fail "qemu-img check order.vdi"

# A discarded entry (0xfffffffe) reads as zeros, like a free one.  The map
# is at the header's block map offset (0x154).
map=$(od -An -tu4 -j $((0x154)) -N 4 "$T/dyn.vdi" | tr -d ' ')
cp "$T/dyn.vdi" "$T/disc.vdi"
put_le 4 "$T/disc.vdi" $((map + 4 * 2)) 0xfffffffe
read_ok "$T/disc.vdi"

# A disk size that is not a multiple of 512 is rounded up (as qemu does;
# VBoxManage convertfromraw makes such images).
cp "$T/dyn.vdi" "$T/odd.vdi"
put_le 8 "$T/odd.vdi" $((0x170)) $((size - 100))
read_ok "$T/odd.vdi" "$T/ref.raw"
exit 0
