#!/bin/sh
# VDI writing, judged by qemu-img: dynamic and static images must pass
# qemu-img check, compare identical to the source, and allocate at most 5%
# more than the data present.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires test -x "$TOOLS/mkdisk"

vsize () {
    qemu-img info --output=json -f "$1" "$2" |
        sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

# write_ok SRC [OPTS]: convert SRC to w.vdi and judge it.
write_ok () {
    rm -f "$T/w.vdi"
    _before=$(hash_of "$1")
    "$VMCONVERT" convert -O vdi ${2:+-o "$2"} "$1" "$T/w.vdi" ||
        fail "convert $1 -o $2"
    [ "$(hash_of "$1")" = "$_before" ] || fail "source modified"
    qemu-img check -q -f vdi "$T/w.vdi" || fail "qemu-img check ($2)"
    qcompare -f raw -F vdi "$1" "$T/w.vdi"
    "$VMCONVERT" check "$T/w.vdi" >/dev/null || fail "vmconvert check ($2)"
}

alloc_ok () {
    _have=$(($(stat -c %b "$1") * 512))
    _max=$((data * 105 / 100 + 65536))
    [ "$_have" -le "$_max" ] ||
        fail "$1 allocates $_have bytes, data is $data bytes"
}

size=$((23 * 1048576 + 2560))
"$TOOLS/mkdisk" -s 51 "$size" "$T/ref.raw"
qemu-img convert -f raw -O raw "$T/ref.raw" "$T/sparse.raw"
data=$(($(stat -c %b "$T/sparse.raw") * 512))

write_ok "$T/ref.raw"
[ "$(vsize vdi "$T/w.vdi")" = "$size" ] || fail "dynamic: virtual size"
alloc_ok "$T/w.vdi"
"$VMCONVERT" info "$T/w.vdi" | grep -q '^subformat: dynamic$' ||
    fail "dynamic: subformat"
# Only blocks holding data are allocated (qemu-img map lists them).
qemu-img map -f vdi --output=json "$T/w.vdi" >"$T/map"
grep -q '"data": false' "$T/map" || fail "dynamic: every block allocated"

write_ok "$T/ref.raw" static=on
[ "$(vsize vdi "$T/w.vdi")" = "$size" ] || fail "static: virtual size"
alloc_ok "$T/w.vdi"
"$VMCONVERT" info "$T/w.vdi" | grep -q '^subformat: static$' ||
    fail "static: subformat"
[ "$(od -An -tu4 -j $((0x4c)) -N 4 "$T/w.vdi" | tr -d ' ')" = 2 ] ||
    fail "static: image type is not 2"
write_ok "$T/ref.raw" static=off

# VDI to VDI, static to dynamic, through our reader.
cp "$T/w.vdi" "$T/w1.vdi"
rm -f "$T/w2.vdi"
"$VMCONVERT" convert -O vdi -o static=on "$T/w1.vdi" "$T/w2.vdi"
qemu-img check -q "$T/w2.vdi" || fail "qemu-img check w2"
qcompare -f raw -F vdi "$T/ref.raw" "$T/w2.vdi"

# An odd source size is rounded up, not cut.
truncate -s 3000100 "$T/odd.raw"
printf 'last bytes' | dd of="$T/odd.raw" bs=1 seek=3000090 conv=notrunc \
    status=none
write_ok "$T/odd.raw"
[ "$(vsize vdi "$T/w.vdi")" = 3000320 ] || fail "odd size"

# An empty disk: nothing allocated.
truncate -s 10M "$T/empty.raw"
write_ok "$T/empty.raw"
[ "$(od -An -tu4 -j $((0x184)) -N 4 "$T/w.vdi" | tr -d ' ')" = 0 ] ||
    fail "empty: blocks allocated"
expect_error 1 'static' \
    "$VMCONVERT" convert -O vdi -o static=maybe "$T/ref.raw" "$T/bad.vdi"
exit 0
