#!/bin/sh
# VHD writing, judged by qemu-img: dynamic and fixed disks, force_size,
# azure=on, small blocks, disks past the CHS limit, odd source sizes.
# qemu-img has no check for vpc, so qemu-img info must parse the image and
# qemu-img compare must find it identical to the source; the allocation
# must stay within 5% of the data present.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires test -x "$TOOLS/mkdisk"

vsize_qemu () {
    qemu-img info --output=json -f vpc "$1" |
        sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

# alloc_ok IMG: IMG allocates at most 5% more than the data in ref.raw
# (as qemu-img's own sparse raw copy measures it), plus 64 KiB.
alloc_ok () {
    _have=$(($(stat -c %b "$1") * 512))
    _max=$((data * 105 / 100 + 65536))
    [ "$_have" -le "$_max" ] ||
        fail "$1 allocates $_have bytes, data is $data bytes"
}

# write_ok OPTS: convert ref.raw to w.vhd with OPTS; qemu-img must read
# the same disk; sets $vs to the virtual size.
write_ok () {
    rm -f "$T/w.vhd"
    _before=$(hash_of "$T/ref.raw")
    "$VMCONVERT" convert -O vhd ${1:+-o "$1"} "$T/ref.raw" "$T/w.vhd" ||
        fail "convert -o $1"
    [ "$(hash_of "$T/ref.raw")" = "$_before" ] || fail "source modified"
    vs=$(vsize_qemu "$T/w.vhd")
    [ -n "$vs" ] || fail "-o $1: qemu-img info cannot read the image"
    [ "$vs" -ge "$size" ] || fail "-o $1: virtual size $vs < $size"
    qcompare -f raw -F vpc "$T/ref.raw" "$T/w.vhd"
    "$VMCONVERT" compare "$T/ref.raw" "$T/w.vhd" >/dev/null ||
        fail "-o $1: vmconvert compare"
    "$VMCONVERT" check "$T/w.vhd" >/dev/null || fail "-o $1: check"
    alloc_ok "$T/w.vhd"
}

# disk_type IMG: the footer's disk type, from the footer at the end.
disk_type () {
    od -An -tu1 -j $(($(stat -c %s "$1") - 512 + 63)) -N 1 "$1" | tr -d ' '
}

size=$((37 * 1048576 + 1536))
"$TOOLS/mkdisk" -s 21 "$size" "$T/ref.raw"
qemu-img convert -f raw -O raw "$T/ref.raw" "$T/sparse.raw"
data=$(($(stat -c %b "$T/sparse.raw") * 512))

# Dynamic, the default: size rounded up to a CHS geometry, exactly as
# qemu-img rounds it.
write_ok ""
qemu-img create -q -f vpc "$T/q.vhd" "$size"
[ "$vs" = "$(vsize_qemu "$T/q.vhd")" ] ||
    fail "CHS rounding: $vs, qemu-img rounds to $(vsize_qemu "$T/q.vhd")"
[ "$(disk_type "$T/w.vhd")" = 3 ] || fail "not a dynamic disk"
head -c 8 "$T/w.vhd" | grep -q conectix || fail "no footer copy at 0"
[ "$(od -An -c -j $(($(stat -c %s "$T/w.vhd") - 512 + 28)) -N 4 \
      "$T/w.vhd" | tr -d ' ')" = vmcv ] || fail "creator application"
tail -c 512 "$T/w.vhd" | cmp -s -n 512 - "$T/w.vhd" ||
    fail "footer copy differs from the footer"

write_ok subformat=dynamic,force_size=on
[ "$vs" = "$size" ] || fail "force_size: size $vs"

write_ok subformat=fixed
[ "$(disk_type "$T/w.vhd")" = 2 ] || fail "not a fixed disk"
[ "$(stat -c %s "$T/w.vhd")" = $((vs + 512)) ] || fail "fixed file size"
"$VMCONVERT" info "$T/w.vhd" | grep -q '^subformat: fixed$' ||
    fail "fixed disk not probed"

write_ok subformat=fixed,force_size=on
[ "$vs" = "$size" ] || fail "fixed force_size: size $vs"

# Azure: fixed, whole MiB, never smaller than the source.
write_ok azure=on
[ "$(disk_type "$T/w.vhd")" = 2 ] || fail "azure: not a fixed disk"
[ $((vs % 1048576)) = 0 ] || fail "azure: $vs is not a whole MiB"
[ "$vs" = $(((size + 1048575) / 1048576 * 1048576)) ] ||
    fail "azure: size $vs"
[ "$(stat -c %s "$T/w.vhd")" = $((vs + 512)) ] || fail "azure: file size"
expect_error 1 'vhd: azure=on needs a fixed disk' \
    "$VMCONVERT" convert -O vhd -o azure=on,subformat=dynamic \
    "$T/ref.raw" "$T/bad.vhd"
expect_error 1 'vhd: azure=on needs force_size=on' \
    "$VMCONVERT" convert -O vhd -o azure=on,force_size=off \
    "$T/ref.raw" "$T/bad.vhd"

# Small blocks (qemu reads any power of two), through the alias.
rm -f "$T/w.vhd"
"$VMCONVERT" convert -O vpc -o block_size=64K "$T/ref.raw" "$T/w.vhd"
qcompare -f raw -F vpc "$T/ref.raw" "$T/w.vhd"
expect_error 1 'vhd: block_size' \
    "$VMCONVERT" convert -O vhd -o block_size=3000 "$T/ref.raw" "$T/bad.vhd"
expect_error 1 'vhd: subformat' \
    "$VMCONVERT" convert -O vhd -o subformat=sparse "$T/ref.raw" "$T/bad.vhd"

# VHD to VHD: dynamic to fixed and back, through our reader.
rm -f "$T/w2.vhd" "$T/w3.vhd"
"$VMCONVERT" convert -O vhd -o subformat=fixed "$T/w.vhd" "$T/w2.vhd"
"$VMCONVERT" convert -O vhd "$T/w2.vhd" "$T/w3.vhd"
qcompare -f raw -F vpc "$T/ref.raw" "$T/w3.vhd"

# A source size that is not a multiple of 512: rounded up, not cut.
truncate -s 1000100 "$T/odd.raw"
printf 'last bytes' | dd of="$T/odd.raw" bs=1 seek=1000090 conv=notrunc \
    status=none
rm -f "$T/w.vhd"
"$VMCONVERT" convert -O vhd -o force_size=on "$T/odd.raw" "$T/w.vhd"
[ "$(vsize_qemu "$T/w.vhd")" = 1000448 ] || fail "odd size rounding"
qcompare -f raw -F vpc "$T/odd.raw" "$T/w.vhd"

# Past the CHS limit (127 GiB) the geometry is 65535/16/255 and the size
# exact, which qemu reads from the current size.  Sparse: fast.
truncate -s 200G "$T/big.raw"
printf 'start' | dd of="$T/big.raw" conv=notrunc status=none
printf 'end' | dd of="$T/big.raw" bs=1 seek=$((200 * 1073741824 - 3)) \
    conv=notrunc status=none
rm -f "$T/w.vhd"
"$VMCONVERT" convert -O vhd "$T/big.raw" "$T/w.vhd"
[ "$(vsize_qemu "$T/w.vhd")" = $((200 * 1073741824)) ] || fail "200G size"
qcompare -f raw -F vpc "$T/big.raw" "$T/w.vhd"
[ "$(stat -c %b "$T/w.vhd")" -lt 20000 ] || fail "200G image not sparse"

# Past the VHD limit.
truncate -s 2100G "$T/huge.raw"
expect_error 1 'vhd: .*2040 GiB' \
    "$VMCONVERT" convert -O vhd "$T/huge.raw" "$T/bad.vhd"
# (The core leaves an empty file behind when create() refuses; reported.)
[ ! -s "$T/bad.vhd" ] || fail "failed conversion left data behind"
exit 0
