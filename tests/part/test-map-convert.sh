#!/bin/sh
# convert and send copy only what the map counts used.  A GPT disk full of
# garbage with two swap partitions, an unrecognised partition, gaps between
# partitions and free space at the end:
#   - convert --all-blocks: identical to the source (qemu-img compare);
#   - convert (the map): identical inside the used ranges, zeros outside,
#     so it differs from the source (and `vmconvert compare`, which does
#     not use the map, says so); sgdisk -v finds the table (with its
#     backup) intact and blkid finds the swap areas; the qcow2 shrinks by
#     about the unused bytes;
#   - a damaged primary GPT: one warning, printed once;
#   - send with the map: the received disk equals the converted one and
#     the receiver verified its digest; send --all-blocks: equals the
#     source.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../net/net.sh"
requires sgdisk --version
requires jq --version
requires mkswap --version
requires losetup --version
requires qemu-img --version

d=$T/disk.raw
"$TOOLS/mkdisk" -s 31 -d 100 96M "$d"
sgdisk -n1:2048:+16M -t1:8200 -n2:43008:+8M -t2:8300 -n3:67584:+24M -t3:8200 \
    "$d" >/dev/null || fail "sgdisk"
st () { sgdisk -i"$1" "$d" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }
mkswap_at "$d" $(($(st 1) * 512)) $((16 << 20)) one
u1=$SWAP_UUID
mkswap_at "$d" $(($(st 3) * 512)) $((24 << 20)) three
u3=$SWAP_UUID

"$VMCONVERT" map --json "$d" >"$T/map.json" 2>"$T/map.err" || fail "map"
[ ! -s "$T/map.err" ] || fail "unexpected warnings: $(cat "$T/map.err")"
size=$(stat -c %s "$d")
used=$(jq -r '.disks[0].used_bytes' "$T/map.json")
unused=$((size - used))
[ "$unused" -gt $((50 << 20)) ] || fail "only $unused bytes unused"

hash_of "$d" >"$T/before"
"$VMCONVERT" convert --all-blocks -O raw "$d" "$T/all.raw" 2>"$T/c.err" ||
    fail "convert --all-blocks"
qemu-img compare -q -f raw -F raw "$d" "$T/all.raw" ||
    fail "--all-blocks output differs from the source"
"$VMCONVERT" convert -O raw "$d" "$T/out.raw" 2>"$T/c.err" || fail "convert"
[ ! -s "$T/c.err" ] || fail "convert printed: $(cat "$T/c.err")"
hash_of "$d" | diff - "$T/before" >/dev/null || fail "the source changed"
"$RANGES" copied "$T/map.json" "$d" "$T/out.raw" ||
    fail "used ranges not copied exactly, or unused ranges not zero"
if qemu-img compare -q -f raw -F raw "$d" "$T/out.raw"; then
    fail "the mapped copy is identical to the source: nothing was skipped"
fi
st=0
"$VMCONVERT" compare "$d" "$T/out.raw" >/dev/null 2>&1 || st=$?
[ "$st" -eq 1 ] || fail "vmconvert compare did not see the skipped garbage ($st)"
sgdisk -v "$T/out.raw" 2>&1 | grep -q 'No problems found' ||
    fail "sgdisk -v on the output: $(sgdisk -v "$T/out.raw" 2>&1)"
[ "$(blkid -p -O $(($(st 1) * 512)) -o value -s UUID "$T/out.raw")" = "$u1" ] &&
[ "$(blkid -p -O $(($(st 3) * 512)) -o value -s UUID "$T/out.raw")" = "$u3" ] ||
    fail "swap areas not found by blkid in the output"

# qcow2: with the map it holds at most the used bytes (plus metadata).
"$VMCONVERT" convert -O qcow2 "$d" "$T/map.qcow2" 2>/dev/null || fail "convert qcow2"
"$VMCONVERT" convert --all-blocks -O qcow2 "$d" "$T/all.qcow2" 2>/dev/null ||
    fail "convert --all-blocks qcow2"
qemu-img compare -q -f raw -F qcow2 "$T/out.raw" "$T/map.qcow2" ||
    fail "qcow2 with the map differs from the raw one"
qemu-img compare -q -f raw -F qcow2 "$d" "$T/all.qcow2" ||
    fail "qcow2 --all-blocks differs from the source"
sm=$(stat -c %s "$T/map.qcow2") sa=$(stat -c %s "$T/all.qcow2")
echo "qcow2: $sa bytes with --all-blocks, $sm with the map; $used used"
[ "$sm" -le $((used + (1 << 20))) ] && [ "$sm" -lt $((sa / 4)) ] ||
    fail "qcow2 with the map is $sm bytes: $used are used (all: $sa)"

# Warnings are printed once, at the start.
cp "$d" "$T/bad.raw"
printf 'XXXX' | dd of="$T/bad.raw" bs=1 seek=$((512 + 20)) conv=notrunc status=none
"$VMCONVERT" convert -O raw "$T/bad.raw" "$T/bad-out.raw" 2>"$T/bad.err" ||
    fail "convert with a damaged primary GPT"
[ "$(grep -c '^vmconvert: warning: .*primary GPT unusable' "$T/bad.err")" -eq 1 ] ||
    fail "warnings: $(cat "$T/bad.err")"

# send: the receiver gets what convert wrote.
start_receiver rx --format raw
send_job --token fleet --job mapped "$d" 2>"$T/send.err" ||
    { cat "$T/send.err" >&2; fail "send"; }
grep -q verified "$T/send.err" || fail "the sender did not verify"
send_job --token fleet --job whole --all-blocks "$d" 2>"$T/send2.err" ||
    { cat "$T/send2.err" >&2; fail "send --all-blocks"; }
stop_receiver
f=$RX_DIR/mapped/$(jq -r '.disks[0].file' "$RX_DIR/mapped/job.json")
qemu-img compare -q -f raw -F raw "$T/out.raw" "$f" ||
    fail "received disk differs from the converted one"
f=$RX_DIR/whole/$(jq -r '.disks[0].file' "$RX_DIR/whole/job.json")
qemu-img compare -q -f raw -F raw "$d" "$f" ||
    fail "received disk (--all-blocks) differs from the source"
echo ok
