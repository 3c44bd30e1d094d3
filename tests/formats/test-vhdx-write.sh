#!/bin/sh
# vhdx write: raw -> vhdx with the default and other options, judged by
# qemu-img check, qemu-img compare and qemu-img info; the allocation of the
# host file stays within 5% of the data present (unwritten parts of
# allocated blocks are holes, so this holds even with 32M blocks); the
# virtual size is rounded up to the logical sector, never down; a disk of
# more than 4096 blocks of 1M puts a sector bitmap entry in the BAT the
# writer streams; bad options are refused.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

size=$((45 * 1024 * 1024 + 3 * 512))
"$TOOLS/mkdisk" -s 21 "$size" "$T/ref.raw"
src_hash=$(hash_of "$T/ref.raw")

# The data present, as qemu-img sees it: a sparse copy without zeros.
qemu-img convert -f raw -O raw -S 4k "$T/ref.raw" "$T/dense.raw"
data=$(du -B1 "$T/dense.raw" | cut -f1)

actual_size () {
    qemu-img info --output=json "$1" |
        sed -n 's/.*"actual-size": \([0-9]*\).*/\1/p'
}

json_field () {
    qemu-img info --output=json "$2" |
        sed -n "s/.*\"$1\": \"*\([^\",]*\)\"*,*\$/\1/p" | head -n 1
}

write_one () {
    opts=$1
    echo "== vmconvert -O vhdx ${opts:+-o $opts}"
    rm -f "$T/w.vhdx"
    "$VMCONVERT" convert -O vhdx ${opts:+-o "$opts"} "$T/ref.raw" "$T/w.vhdx" ||
        fail "convert $opts"
    qemu-img check "$T/w.vhdx" >/dev/null || fail "qemu-img check ($opts)"
    qcompare -f raw -F vhdx "$T/ref.raw" "$T/w.vhdx"
    [ "$(json_field format "$T/w.vhdx")" = vhdx ] || fail "not vhdx ($opts)"
    [ "$(json_field virtual-size "$T/w.vhdx")" = "$size" ] ||
        fail "virtual size ($opts)"
    # qemu-img reads it back to raw too.
    rm -f "$T/back.raw"
    qemu-img convert -f vhdx -O raw "$T/w.vhdx" "$T/back.raw"
    qcompare -f raw -F raw "$T/ref.raw" "$T/back.raw"
    "$VMCONVERT" check "$T/w.vhdx" >/dev/null || fail "vmconvert check"
    [ "$(hash_of "$T/ref.raw")" = "$src_hash" ] || fail "source modified"
}

check_allocation () {
    got=$(actual_size "$T/w.vhdx")
    limit=$((data + data / 20))
    echo "   data present $data, vhdx allocated $got (limit $limit)"
    [ "$got" -le "$limit" ] || fail "allocation $got > $limit ($1)"
}

write_one ""
[ "$(json_field cluster-size "$T/w.vhdx")" = 33554432 ] ||
    fail "default block size is not 32M"
check_allocation default
write_one block_size=1M
[ "$(json_field cluster-size "$T/w.vhdx")" = 1048576 ] || fail "block size"
check_allocation block_size=1M
write_one block_size=8M,block_state_zero=on,log_size=2M
check_allocation block_state_zero
write_one subformat=fixed,block_size=4M
"$VMCONVERT" info "$T/w.vhdx" | grep -q '^subformat: fixed$' ||
    fail "fixed not shown"
# A fixed file holds every block: data start + 12 blocks of 4M.
fsize=$(stat -c %s "$T/w.vhdx")
[ "$fsize" -ge $((12 * 4 * 1024 * 1024)) ] || fail "fixed file too small"
write_one physical_sector_size=512

# vhdx -> vhdx, through our own reader.
echo "== vhdx -> vhdx"
rm -f "$T/w2.vhdx"
"$VMCONVERT" convert -O vhdx -o block_size=2M "$T/w.vhdx" "$T/w2.vhdx"
qemu-img check "$T/w2.vhdx" >/dev/null || fail "qemu-img check w2"
qcompare -f raw -F vhdx "$T/ref.raw" "$T/w2.vhdx"

# Size rounding: 100000 bytes become 100352 (a multiple of 512), with a
# warning; the content is all there.
echo "== size rounding"
head -c 100000 "$T/ref.raw" >"$T/odd.raw"
rm -f "$T/w.vhdx"
"$VMCONVERT" convert -O vhdx -o block_size=1M "$T/odd.raw" "$T/w.vhdx" \
    2>"$T/err" || fail "convert odd size"
grep -q 'rounded up from 100000 to 100352' "$T/err" || fail "no warning"
[ "$(json_field virtual-size "$T/w.vhdx")" = 100352 ] || fail "rounding"
qemu-img check "$T/w.vhdx" >/dev/null || fail "check odd"
qemu-img compare -f raw -F vhdx "$T/odd.raw" "$T/w.vhdx" >/dev/null ||
    fail "odd size content"

# More than 4096 blocks of 1M (chunk ratio 4096): sector bitmap entry 4096
# sits between payload entries 4095 and 4096.
echo "== sector bitmap entries in a streamed BAT (4.2G sparse)"
big=$((4200 * 1024 * 1024 + 512))
truncate -s "$big" "$T/big.raw"
for blk in 0 4095 4096 4097; do
    "$TOOLS/mkdisk" -s "$blk" 8192 "$T/piece"
    dd if="$T/piece" of="$T/big.raw" bs=8192 conv=notrunc status=none \
       seek=$((blk * 128 + 5))
done
printf 'end!' | dd of="$T/big.raw" bs=1 seek=$((big - 4)) conv=notrunc \
    status=none
rm -f "$T/w.vhdx"
"$VMCONVERT" convert -O vhdx -o block_size=1M "$T/big.raw" "$T/w.vhdx"
qemu-img check "$T/w.vhdx" >/dev/null || fail "check big"
qcompare -f raw -F vhdx "$T/big.raw" "$T/w.vhdx"

echo "== bad options"
for o in block_size=3M block_size=512M subformat=stream log_size=1536K \
         logical_sector_size=1024 physical_sector_size=2048 nosuch=1; do
    rm -f "$T/w.vhdx"
    expect_error 1 "vhdx|$o" "$VMCONVERT" convert -O vhdx -o "$o" \
        "$T/odd.raw" "$T/w.vhdx"
done
expect_error 1 "vhdx: compression" "$VMCONVERT" convert -c -O vhdx \
    "$T/odd.raw" "$T/w.vhdx"
echo "PASS"
