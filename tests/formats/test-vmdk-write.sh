#!/bin/sh
# vmdk write: raw -> monolithicSparse (default) and streamOptimized, with
# each adapter type and the hwversion options; judged by qemu-img check,
# qemu-img compare and qemu-img info.  Our streamOptimized is converted
# back to raw by qemu-img and compared byte for byte, and its layout is
# checked (GD at end, footer, end-of-stream marker).  monolithicSparse
# must not allocate more than 5% over what qemu-img allocates for the same
# data; streamOptimized must not be bigger than the data.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

size=$((10 * 1024 * 1024 - 4608))
"$TOOLS/mkdisk" -s 11 "$size" "$T/ref.raw"
hash_of "$T/ref.raw" >"$T/ref.sha"

# info_field FILE KEY: a value from qemu-img info --output=json.
info_field () {
    qemu-img info --output=json "$1" |
        sed -n "s/^ *\"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" |
        head -n 1
}

# check_out VMDK SUBFORMAT ADAPTER
check_out () {
    qemu-img check "$1" >/dev/null || fail "qemu-img check $1"
    qcompare -f raw -F vmdk "$T/ref.raw" "$1"
    [ "$(info_field "$1" create-type)" = "$2" ] ||
        fail "$1: create type is not $2"
    grep -a -q "ddb.adapterType = \"$3\"" "$1" || fail "$1: adapter not $3"
    "$VMCONVERT" check "$1" >/dev/null || fail "vmconvert check $1"
    hash_of "$T/ref.raw" | cmp -s - "$T/ref.sha" || fail "source changed"
}

# Defaults: monolithicSparse, ide, hwversion 4.
"$VMCONVERT" convert -O vmdk "$T/ref.raw" "$T/def.vmdk" || fail "convert"
check_out "$T/def.vmdk" monolithicSparse ide
grep -a -q 'ddb.virtualHWVersion = "4"' "$T/def.vmdk" || fail "hwversion"

for a in ide lsilogic buslogic legacyESX; do
    for sub in monolithicSparse streamOptimized; do
        rm -f "$T/o.vmdk"
        "$VMCONVERT" convert -O vmdk -o subformat=$sub,adapter_type=$a \
            "$T/ref.raw" "$T/o.vmdk" || fail "convert $sub $a"
        check_out "$T/o.vmdk" $sub $a
    done
done

rm -f "$T/o.vmdk"
"$VMCONVERT" convert -O vmdk -o compat6=on "$T/ref.raw" "$T/o.vmdk"
grep -a -q 'ddb.virtualHWVersion = "6"' "$T/o.vmdk" || fail "compat6"
rm -f "$T/o.vmdk"
"$VMCONVERT" convert -O vmdk -o hwversion=13,toolsversion=12345 \
    "$T/ref.raw" "$T/o.vmdk"
grep -a -q 'ddb.virtualHWVersion = "13"' "$T/o.vmdk" || fail "hwversion"
grep -a -q 'ddb.toolsVersion = "12345"' "$T/o.vmdk" || fail "toolsversion"
check_out "$T/o.vmdk" monolithicSparse ide
rm -f "$T/o.vmdk"
"$VMCONVERT" convert -O vmdk -o zeroed_grain=on "$T/ref.raw" "$T/o.vmdk"
check_out "$T/o.vmdk" monolithicSparse ide
expect_error 1 "vmdk: .*compat6" "$VMCONVERT" convert -O vmdk \
    -o compat6=on,hwversion=7 "$T/ref.raw" "$T/x.vmdk"
expect_error 1 "vmdk: adapter_type" "$VMCONVERT" convert -O vmdk \
    -o adapter_type=nvme "$T/ref.raw" "$T/x.vmdk"
expect_error 1 "vmdk: subformat" "$VMCONVERT" convert -O vmdk \
    -o subformat=monolithicFlat "$T/ref.raw" "$T/x.vmdk"
expect_error 1 "vmdk: -c needs subformat=streamOptimized" "$VMCONVERT" \
    convert -c -O vmdk -o subformat=monolithicSparse "$T/ref.raw" "$T/x.vmdk"

# -c alone means streamOptimized.
rm -f "$T/c.vmdk"
"$VMCONVERT" convert -c -O vmdk "$T/ref.raw" "$T/c.vmdk" || fail "-c"
check_out "$T/c.vmdk" streamOptimized ide

# Allocation: monolithicSparse within 5% of qemu-img's for the same data.
qemu-img convert -f raw -O vmdk "$T/ref.raw" "$T/q.vmdk"
ours=$(du -B1 "$T/def.vmdk" | cut -f1)
theirs=$(du -B1 "$T/q.vmdk" | cut -f1)
[ "$ours" -le $((theirs + theirs / 20)) ] ||
    fail "monolithicSparse allocates $ours bytes, qemu-img $theirs"

# streamOptimized: not bigger than the data; qemu-img reads it back to the
# same bytes; VMware's stream layout.
data=$(du -B1 "$T/ref.raw" | cut -f1)
s=$(du -B1 "$T/c.vmdk" | cut -f1)
[ "$s" -le "$data" ] || fail "streamOptimized $s bytes > data $data"
qemu-img convert -f vmdk -O raw "$T/c.vmdk" "$T/back.raw"
cmp "$T/back.raw" "$T/ref.raw" || fail "qemu-img reads back other bytes"
hdr=$(od -A n -t x1 -j 0 -N 80 "$T/c.vmdk" | tr -d ' \n')
case $hdr in
    4b444d5603000000010003*) ;;
    *) fail "stream header: version 3 / flags 0x30001 expected" ;;
esac
# hexat FILE OFFSET COUNT: bytes as one hex string.
hexat () {
    od -v -A n -t x1 -j "$2" -N "$3" "$1" | tr -d ' \n'
}
[ "$(hexat "$T/c.vmdk" 56 8)" = ffffffffffffffff ] ||
    fail "stream header: gdOffset is not GD_AT_END"
end=$(stat -c %s "$T/c.vmdk")
[ $((end % 512)) -eq 0 ] || fail "stream size not sector aligned"
[ "$(hexat "$T/c.vmdk" $((end - 1536 + 12)) 4)" = 03000000 ] ||
    fail "no footer marker"
[ "$(hexat "$T/c.vmdk" $((end - 1024)) 4)" = 4b444d56 ] ||
    fail "no footer header"
[ -z "$(hexat "$T/c.vmdk" $((end - 512)) 512 | tr -d 0)" ] ||
    fail "no end-of-stream marker"
# Each grain is a zlib stream (RFC 1950: 0x78 first).
[ "$(hexat "$T/c.vmdk" $((65536 + 12)) 1)" = 78 ] ||
    fail "first grain is not a zlib stream"

# An empty disk, and a size that is not a multiple of 512.
truncate -s 3M "$T/empty.raw"
for sub in monolithicSparse streamOptimized; do
    rm -f "$T/e.vmdk"
    "$VMCONVERT" convert -O vmdk -o subformat=$sub "$T/empty.raw" \
        "$T/e.vmdk" || fail "empty $sub"
    qemu-img check "$T/e.vmdk" >/dev/null || fail "check empty $sub"
    qcompare -f raw "$T/empty.raw" "$T/e.vmdk"
done
head -c 1000001 "$T/ref.raw" >"$T/odd.raw"
for sub in monolithicSparse streamOptimized; do
    rm -f "$T/e.vmdk"
    "$VMCONVERT" convert -O vmdk -o subformat=$sub "$T/odd.raw" \
        "$T/e.vmdk" || fail "odd $sub"
    qemu-img check "$T/e.vmdk" >/dev/null || fail "check odd $sub"
    qcompare -f raw "$T/odd.raw" "$T/e.vmdk"
done
echo "vmdk write: ok"
