#!/bin/sh
# MBR with an extended partition and logical partitions: `vmconvert map`
# lists the partitions sfdisk lists (number, start, size, type), finds the
# swap areas blkid finds, and counts used: everything before the first
# partition, the EBRs, the swap headers, the unrecognised partition --
# not the gaps nor the free space.  An EBR chain that loops makes the
# extended partition count used (and does not hang).  A disk without a
# partition table: the filesystem on the whole disk (swap), or all used;
# both an MBR and a whole-disk filesystem: all used.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/lib.sh"
requires sfdisk --version
requires jq --version
requires mkswap --version
requires losetup --version

d=$T/disk.raw
"$TOOLS/mkdisk" -s 11 -d 100 160M "$d"
sfdisk -q "$d" >/dev/null <<'EOT' || fail "sfdisk"
label: dos
start=2048, size=65536, type=82
start=69632, size=131072, type=5
start=71680, size=32768, type=82
start=106496, size=16384, type=83
start=126976, size=16384, type=82
EOT
sfdisk --json "$d" >"$T/sfdisk.json" || fail "sfdisk --json"
p () { jq -r ".partitiontable.partitions[] | select(.node == \"$d$1\") | .$2" "$T/sfdisk.json"; }
for n in 1 5 7; do
    mkswap_at "$d" $(($(p $n start) * 512)) $(($(p $n size) * 512)) "sw$n"
    eval "u$n=\$SWAP_UUID"
done

"$VMCONVERT" map --json "$d" >"$T/map.json" 2>"$T/map.err" ||
    { cat "$T/map.err" >&2; fail "vmconvert map"; }
[ "$(jq -r '.disks[0].partition_table' "$T/map.json")" = mbr ] ||
    fail "not seen as MBR"
[ "$(jq -r '.partitiontable.id' "$T/sfdisk.json")" = \
  "$(jq -r '.disks[0].disk_id' "$T/map.json")" ] || fail "disk id differs"
# sfdisk lists the extended partition itself; the map lists what it holds.
jq -r '.partitiontable.partitions[] | select(.type != "5") |
       [(.node | capture("(?<n>[0-9]+)$").n), (.start * 512), (.size * 512),
        ("0x" + (if (.type | length) == 1 then "0" else "" end) + .type)] | @tsv' \
    "$T/sfdisk.json" >"$T/want"
jq -r '.disks[0].partitions[] | [(.number | tostring), .start, .size, .type] |
       @tsv' "$T/map.json" >"$T/got"
diff "$T/want" "$T/got" >&2 || fail "partition list differs from sfdisk's"

vol () { jq -r ".volumes[] | select(.number == $1) | $2" "$T/map.json"; }
for n in 1 5 7; do
    eval "u=\$u$n"
    [ "$(vol $n .fs)" = swap ] && [ "$(vol $n .uuid)" = "$u" ] &&
        [ "$(vol $n .label)" = "sw$n" ] || fail "partition $n: $(vol $n .)"
done
[ "$(vol 6 .fs)" = unknown ] && [ "$(vol 6 .all_used)" = true ] ||
    fail "partition 6 (garbage) not all used"

b () { echo $(($(p "$1" start) * 512)); }
e () { echo $((($(p "$1" start) + $(p "$1" size)) * 512)); }
# Exactly these, plus one 4 KiB block per EBR (3 logicals: 3 EBRs).
"$RANGES" covers "$T/map.json" 0 "0:$(b 1)" "$(b 1):$(($(b 1) + 4096))" \
    "$(b 5):$(($(b 5) + 4096))" "$(b 6):$(e 6)" "$(b 7):$(($(b 7) + 4096))" ||
    fail "used ranges miss something"
used=$(jq -r '.disks[0].used_bytes' "$T/map.json")
known=$(($(b 1) + 3 * 4096 + $(e 6) - $(b 6)))
[ "$used" -ge "$known" ] && [ "$used" -le $((known + 3 * 4096)) ] ||
    fail "used bytes $used, expected $known + at most 3 EBR blocks"
"$RANGES" avoids "$T/map.json" 0 "$(($(b 1) + 8192)):$(e 1)" \
    "$(($(b 5) + 8192)):$(e 5)" "$(($(b 7) + 8192)):$(e 7)" \
    "$(e 2):$(stat -c %s "$d")" || fail "unused space counted used"

# An EBR chain that loops: the second EBR links to itself.
cp "$d" "$T/loop.raw"
/usr/bin/python3 - "$T/loop.raw" "$(p 2 start)" <<'PY'
import struct, sys
path, ext = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(ext * 512); ebr1 = f.read(512)
    nxt = struct.unpack_from("<I", ebr1, 462 + 8)[0]
    f.seek((ext + nxt) * 512); ebr2 = bytearray(f.read(512))
    struct.pack_into("<I", ebr2, 462 + 8, nxt)      # link to itself
    ebr2[462 + 4] = 0x05
    struct.pack_into("<I", ebr2, 462 + 12, 2)
    f.seek((ext + nxt) * 512); f.write(ebr2)
PY
timeout 20 "$VMCONVERT" map --json "$T/loop.raw" >"$T/loop.json" 2>"$T/loop.err" ||
    fail "map on a looping EBR chain"
grep -q 'warning: .*extended partition.*counts as used' "$T/loop.err" ||
    fail "no warning for the looping chain: $(cat "$T/loop.err")"
"$RANGES" covers "$T/loop.json" 0 "$(b 2):$(e 2)" ||
    fail "extended partition with a bad chain not all used"

# No partition table: swap on the whole disk; random data.
"$TOOLS/mkdisk" -s 12 -d 100 32M "$T/whole.raw"
mkswap -L whole "$T/whole.raw" >/dev/null 2>&1 || fail "mkswap"
"$VMCONVERT" map --json "$T/whole.raw" >"$T/w.json" 2>/dev/null || fail "map whole"
[ "$(jq -r '.disks[0].partition_table' "$T/w.json")" = none ] &&
    [ "$(jq -r '.volumes[0].fs' "$T/w.json")" = swap ] &&
    [ "$(jq -r '.disks[0].used_bytes' "$T/w.json")" = 4096 ] ||
    fail "whole-disk swap: $(cat "$T/w.json")"
"$TOOLS/mkdisk" -s 13 -d 100 8M "$T/junk.raw"
"$VMCONVERT" map --json "$T/junk.raw" >"$T/j.json" 2>/dev/null || fail "map junk"
[ "$(jq -r '.disks[0].used_bytes' "$T/j.json")" = $((8 << 20)) ] ||
    fail "random data not all used"

# Both an MBR and a filesystem on the whole disk (which one is real?):
# the whole disk counts used.
"$TOOLS/mkdisk" -s 14 -d 100 32M "$T/both.raw"
mkswap "$T/both.raw" >/dev/null 2>&1 || fail "mkswap"
echo 'start=2048, size=8192, type=83' | sfdisk -q --wipe never "$T/both.raw" ||
    fail "sfdisk over the swap"
"$VMCONVERT" map --json "$T/both.raw" >"$T/b.json" 2>"$T/b.err" || fail "map both"
grep -q 'both an MBR and a swap' "$T/b.err" &&
    [ "$(jq -r '.disks[0].used_bytes' "$T/b.json")" = $((32 << 20)) ] ||
    fail "MBR over a whole-disk swap not all used: $(cat "$T/b.err")"
echo ok
