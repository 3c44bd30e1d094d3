#!/bin/sh
# GPT: `vmconvert map` lists the partitions sfdisk lists (start, size, type
# GUID, name, unique GUID), finds the swap areas blkid finds, and its used
# ranges are exactly: everything before the first partition, the BIOS boot
# partition, the swap headers, the unrecognised partition, the backup GPT
# -- not the gaps between partitions nor the free space at the end.  A
# damaged primary GPT falls back to the backup (with a warning); both
# damaged: the whole disk counts used.  A GPT on 4096-byte sectors.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/lib.sh"
requires sgdisk --version
requires sfdisk --version
requires jq --version
requires mkswap --version
requires losetup --version

d=$T/disk.raw
# Garbage everywhere first: nothing may look unused because it is zero.
"$TOOLS/mkdisk" -s 7 -d 100 128M "$d"
sgdisk -n1:2048:4095 -t1:ef02 -c1:bios \
       -n2:6144:71679 -t2:8200 -c2:swap-one \
       -n3:73728:106495 -t3:8300 -c3:"garbage data" \
       -n4:110592:159743 -t4:8200 -c4:"swap two" "$d" >/dev/null ||
    fail "sgdisk"
mkswap_at "$d" $((6144 * 512)) $((65536 * 512)) sw1
u2=$SWAP_UUID
mkswap_at "$d" $((110592 * 512)) $((49152 * 512)) sw2
u4=$SWAP_UUID
sfdisk --json "$d" >"$T/sfdisk.json" || fail "sfdisk --json"

"$VMCONVERT" map --json "$d" >"$T/map.json" 2>"$T/map.err" ||
    { cat "$T/map.err" >&2; fail "vmconvert map"; }
jq -e . "$T/map.json" >/dev/null || fail "map --json is not JSON"
[ "$(jq -r '.disks[0].partition_table' "$T/map.json")" = gpt ] ||
    fail "not seen as GPT"

# The partition list against sfdisk's (sectors -> bytes).
jq -r '.partitiontable.partitions[] |
       [(.node | capture("(?<n>[0-9]+)$").n), (.start * 512), (.size * 512),
        .type, (.name // ""), .uuid] | @tsv' "$T/sfdisk.json" >"$T/want"
jq -r '.disks[0].partitions[] |
       [(.number | tostring), .start, .size, .type, .name, .uuid] | @tsv' \
    "$T/map.json" >"$T/got"
diff "$T/want" "$T/got" >&2 || fail "partition list differs from sfdisk's"
[ "$(jq -r '.partitiontable.id' "$T/sfdisk.json")" = \
  "$(jq -r '.disks[0].disk_id' "$T/map.json")" ] || fail "disk GUID differs"

# Volumes: BIOS boot all used, swap found with blkid's UUIDs and labels,
# the garbage partition unknown and all used.
vol () { jq -r ".volumes[] | select(.number == $1) | $2" "$T/map.json"; }
[ "$(vol 1 .fs)" = bios_boot ] && [ "$(vol 1 .all_used)" = true ] ||
    fail "BIOS boot partition not all used"
[ "$(vol 2 .fs)" = swap ] && [ "$(vol 2 .uuid)" = "$u2" ] &&
    [ "$(vol 2 .label)" = sw1 ] || fail "partition 2: $(vol 2 .)"
[ "$(vol 4 .fs)" = swap ] && [ "$(vol 4 .uuid)" = "$u4" ] &&
    [ "$(vol 4 .label)" = sw2 ] || fail "partition 4: $(vol 4 .)"
[ "$(vol 3 .fs)" = unknown ] && [ "$(vol 3 .all_used)" = true ] ||
    fail "garbage partition not all used"

# The used ranges, computed from sfdisk's view of the table.
last=$(jq -r '.partitiontable.lastlba' "$T/sfdisk.json")
size=$(stat -c %s "$d")
p () { jq -r ".partitiontable.partitions[$1].$2" "$T/sfdisk.json"; }
"$RANGES" expect "$T/map.json" 0 \
    "0:$(( ($(p 0 start) + $(p 0 size)) * 512 ))" \
    "$(( $(p 1 start) * 512 )):$(( $(p 1 start) * 512 + 4096 ))" \
    "$(( $(p 2 start) * 512 )):$(( ($(p 2 start) + $(p 2 size)) * 512 ))" \
    "$(( $(p 3 start) * 512 )):$(( $(p 3 start) * 512 + 4096 ))" \
    "$(( (last + 1) * 512 )):$size" || fail "used ranges"
used=$(jq -r '.disks[0].used_bytes' "$T/map.json")
[ "$used" -lt $((40 << 20)) ] || fail "too much counted used: $used"

# Text output names the partitions and the totals.
"$VMCONVERT" map "$d" >"$T/map.txt" 2>&1 || fail "map (text)"
grep -q 'partition table: gpt' "$T/map.txt" && grep -q 'swap two' "$T/map.txt" &&
    grep -q '^Total ' "$T/map.txt" || { cat "$T/map.txt"; fail "text output"; }

# Primary header damaged: the backup is used, with a warning.
cp "$d" "$T/bad1.raw"
printf 'XXXX' | dd of="$T/bad1.raw" bs=1 seek=$((512 + 20)) conv=notrunc status=none
sgdisk -v "$T/bad1.raw" 2>&1 | grep -qi 'problem\|corrupt\|damaged\|invalid\|crc' ||
    fail "sgdisk does not see the damage"
"$VMCONVERT" map --json "$T/bad1.raw" >"$T/b1.json" 2>"$T/b1.err" || fail "map bad1"
grep -q '^vmconvert: warning: .*primary GPT unusable.*backup' "$T/b1.err" ||
    fail "no warning about the backup GPT: $(cat "$T/b1.err")"
jq -r '.disks[0].partitions[] | [(.number | tostring), .start, .size, .type,
       .name, .uuid] | @tsv' "$T/b1.json" >"$T/got1"
diff "$T/want" "$T/got1" >&2 || fail "backup GPT read differently"

# Both headers damaged: everything used, with a reason.
printf 'XXXX' | dd of="$T/bad1.raw" bs=1 seek=$((size - 512 + 20)) conv=notrunc status=none
"$VMCONVERT" map --json "$T/bad1.raw" >"$T/b2.json" 2>"$T/b2.err" || fail "map bad2"
[ "$(jq -r '.disks[0].used_bytes' "$T/b2.json")" = "$size" ] ||
    fail "a disk with two bad GPT headers is not all used"
grep -q '^vmconvert: warning: .*whole disk counts as used' "$T/b2.err" ||
    fail "no warning for the unusable GPT"

# Overlapping partitions (sgdisk and sfdisk refuse to write them: a hand
# edit with the CRCs redone) make the whole disk count used.
/usr/bin/python3 - "$d" "$T/ovl.raw" <<'PY'
import sys, zlib, struct, shutil
src, dst = sys.argv[1], sys.argv[2]
shutil.copy(src, dst)
with open(dst, "r+b") as f:
    f.seek(512); h = bytearray(f.read(512))
    lba, n, es = struct.unpack_from("<QII", h, 72)
    f.seek(lba * 512); ents = bytearray(f.read(n * es))
    # Partition 4 starts inside partition 3.
    first3, last3 = struct.unpack_from("<QQ", ents, 2 * es + 32)
    struct.pack_into("<Q", ents, 3 * es + 32, last3 - 8)
    f.seek(lba * 512); f.write(ents)
    struct.pack_into("<I", h, 88, zlib.crc32(ents) & 0xffffffff)
    hs = struct.unpack_from("<I", h, 12)[0]
    struct.pack_into("<I", h, 16, 0)
    struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:hs])) & 0xffffffff)
    f.seek(512); f.write(h)
PY
sgdisk -v "$T/ovl.raw" 2>&1 | grep -qi overlap || fail "sgdisk sees no overlap"
"$VMCONVERT" map --json "$T/ovl.raw" >"$T/ovl.json" 2>"$T/ovl.err" || fail "map ovl"
grep -q 'overlap' "$T/ovl.err" &&
    [ "$(jq -r '.disks[0].used_bytes' "$T/ovl.json")" = "$size" ] ||
    fail "overlapping partitions not refused"

# 4096-byte sectors (a loop device with 4 KiB logical sectors).
"$TOOLS/mkdisk" -s 8 -d 100 64M "$T/d4k.raw"
cleanup_fn "detach_loops_of '$T/d4k.raw'"
L4=$(losetup -f --show -b 4096 "$T/d4k.raw") || fail "losetup -b 4096"
sgdisk -n1:256:+8M -t1:8300 -n2:0:+16M -t2:8200 "$L4" >/dev/null 2>&1 ||
    fail "sgdisk on 4K sectors"
sfdisk --json "$L4" >"$T/s4k.json" || fail "sfdisk 4k"
sync
losetup -d "$L4"
"$VMCONVERT" map --json "$T/d4k.raw" >"$T/m4k.json" 2>/dev/null || fail "map 4k"
[ "$(jq -r '.disks[0].sector_size' "$T/m4k.json")" = 4096 ] ||
    fail "4K-sector GPT not found"
jq -r '.partitiontable.partitions[] | [(.start * 4096), (.size * 4096), .type] | @tsv' \
    "$T/s4k.json" >"$T/want4"
jq -r '.disks[0].partitions[] | [.start, .size, .type] | @tsv' "$T/m4k.json" >"$T/got4"
diff "$T/want4" "$T/got4" >&2 || fail "4K-sector partitions differ from sfdisk's"
echo ok
