#!/bin/sh
# vhdx read: images made by qemu-img (dynamic and fixed, block sizes 1M to
# 256M, block_state_zero on and off, a 2M log), converted to raw by
# vmconvert and judged by qemu-img compare against the reference and
# against the image itself.  A disk of more than 16 blocks of 256M puts
# sector bitmap entries inside the BAT.  4096-byte logical sectors: qemu-img
# can neither make nor read them, so such images are made by vmconvert and
# judged by the independent reader of tests/tools/mk-vhdx-log.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

# A size that is a multiple of no block size.
size=$((37 * 1024 * 1024 + 7 * 512))
"$TOOLS/mkdisk" -s 11 "$size" "$T/ref.raw"

check_one () {
    img=$1
    before=$(hash_of "$img")
    "$VMCONVERT" info "$img" >"$T/info" || fail "info $img"
    grep -q '^file format: vhdx$' "$T/info" || fail "$img not probed as vhdx"
    rm -f "$T/out.raw"
    "$VMCONVERT" convert -O raw "$img" "$T/out.raw" || fail "convert $img"
    qcompare -f raw -F raw "$T/ref.raw" "$T/out.raw"
    qcompare -f vhdx -F raw "$img" "$T/out.raw"
    "$VMCONVERT" compare "$img" "$T/ref.raw" >/dev/null ||
        fail "vmconvert compare $img"
    "$VMCONVERT" check "$img" >/dev/null || fail "check $img"
    [ "$(hash_of "$img")" = "$before" ] || fail "$img was modified"
}

for opts in \
    subformat=dynamic \
    subformat=fixed \
    subformat=fixed,block_size=1M,block_state_zero=off \
    block_size=1M \
    block_size=1M,block_state_zero=off \
    block_size=8M \
    block_size=32M \
    block_size=32M,block_state_zero=off \
    block_size=1M,log_size=2M
do
    echo "== qemu-img -o $opts"
    rm -f "$T/q.vhdx"
    qemu-img convert -f raw -O vhdx -o "$opts" "$T/ref.raw" "$T/q.vhdx"
    check_one "$T/q.vhdx"
    bs=$(qemu-img info --output=json "$T/q.vhdx" |
         sed -n 's/.*"cluster-size": \([0-9]*\).*/\1/p')
    grep -q "^cluster_size: $bs\$" "$T/info" || fail "$opts: block size"
    case $opts in
    *fixed*) grep -q '^subformat: fixed$' "$T/info" || fail "not fixed" ;;
    *) grep -q '^subformat: dynamic$' "$T/info" || fail "not dynamic" ;;
    esac
done
grep -q 'log replayed: no' "$T/info" || fail "clean log shown as replayed"

# Sector bitmap entries in the BAT: 256M blocks with 512-byte sectors
# have a chunk ratio of 16, so payload entry i sits at i + i/16.  Data in
# blocks 16 and 17 (after the first sector bitmap entry) and in the last
# sector of the disk (block 33).
echo "== sector bitmap interleaving (block_size=256M, 8.5G sparse)"
big=$((8 * 1024 * 1024 * 1024 + 512 * 1024 * 1024 + 512))
rm -f "$T/ref.raw"
truncate -s "$big" "$T/ref.raw"
for blk in 16 17; do
    "$TOOLS/mkdisk" -s "$blk" 65536 "$T/piece"
    dd if="$T/piece" of="$T/ref.raw" bs=65536 conv=notrunc status=none \
       seek=$((blk * 4096 + 3))
done
printf 'last' | dd of="$T/ref.raw" bs=1 seek=$((big - 4)) conv=notrunc \
    status=none
qemu-img convert -f raw -O vhdx -o block_size=256M "$T/ref.raw" "$T/q.vhdx"
check_one "$T/q.vhdx"

# 4096-byte logical sectors (chunk ratio 128 with 256M blocks: a disk of
# 130 blocks has sector bitmap entries too).
echo "== logical sector size 4096 (made by vmconvert)"
big=$((130 * 256 * 1024 * 1024 - 4096))
rm -f "$T/ref.raw" "$T/w.vhdx"
truncate -s "$big" "$T/ref.raw"
for blk in 0 127 128 129; do
    "$TOOLS/mkdisk" -s "$blk" 65536 "$T/piece"
    dd if="$T/piece" of="$T/ref.raw" bs=65536 conv=notrunc status=none \
       seek=$((blk * 4096 + 1))
done
printf 'tail' | dd of="$T/ref.raw" bs=1 seek=$((big - 4)) conv=notrunc \
    status=none
"$VMCONVERT" convert -O vhdx -o logical_sector_size=4096,block_size=256M \
    "$T/ref.raw" "$T/w.vhdx"
"$TOOLS/mk-vhdx-log" raw "$T/w.vhdx" "$T/indep.raw"
qcompare -f raw -F raw "$T/ref.raw" "$T/indep.raw"
"$VMCONVERT" info "$T/w.vhdx" | grep -q 'logical sector size: 4096' ||
    fail "logical sector size not shown"
rm -f "$T/out.raw"
"$VMCONVERT" convert -O raw "$T/w.vhdx" "$T/out.raw"
qcompare -f raw -F raw "$T/ref.raw" "$T/out.raw"
echo "PASS"
