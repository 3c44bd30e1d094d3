#!/bin/sh
# exFAT used-block maps, judged by exfatprogs and exfat-fuse:
#  - garbage first, mkfs.exfat, then (mounted with exfat-fuse on a loop
#    device: this kernel has no exfat) many files of varied sizes, some
#    deleted, a big one written across the holes (fragmentation);
#  - used_bytes agrees with dump.exfat ("Total Clusters" T, "Free
#    Clusters" F, "Cluster Heap Offset" H sectors of 2^"Sector Size Bits"):
#      expected = H * SECTOR + (T - F) * CLUSTER + (VOLUME - H * SECTOR - T * CLUSTER)
#    (everything before the cluster heap, the clusters in use, the slack
#    after the heap), within one cluster;
#  - a copy with every byte outside the used ranges overwritten passes
#    `fsck.exfat -n`, and mounted read-only every file matches the source;
#  - VolumeDirty, MediaFailure, a wrong boot checksum, a PercentInUse that
#    disagrees with the bitmap, a system cluster free in the bitmap and
#    corrupted geometry make the volume all in use, with a why.
. "$(dirname "$0")/../functions.sh"
# (exfatprogs' -V exits non-zero: ask the shell whether they exist.)
requires sh -c 'command -v mkfs.exfat && command -v fsck.exfat && command -v dump.exfat'
requires mount.exfat-fuse -V
requires /usr/bin/python3 --version
requires losetup --version
[ -c /dev/fuse ] || { echo "$0: skipped: needs /dev/fuse"; exit 77; }

# patch IMG OFFSET HEXBYTES [fix]: write bytes; with "fix", recompute the
# boot checksum (sectors 0..10 without VolumeFlags and PercentInUse,
# repeated over sector 11) as the exFAT specification defines it.
patch () {
    /usr/bin/python3 - "$@" <<'EOF'
import struct, sys
img, off, data = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
with open(img, "r+b") as f:
    f.seek(off)
    f.write(data)
    if len(sys.argv) > 4:
        f.seek(0)
        b = f.read(512)
        bps = 1 << b[108]
        f.seek(0)
        region = f.read(11 * bps)
        s = 0
        for i, c in enumerate(region):
            if i in (106, 107, 112):
                continue
            s = (((s & 1) << 31) + (s >> 1) + c) & 0xFFFFFFFF
        f.seek(11 * bps)
        f.write(struct.pack("<I", s) * (bps // 4))
EOF
}

expect_all () {
    "$TOOLS/fsused" "$1" >"$T/out" || fail "fsused on $1"
    grep -qx 'all_used 1' "$T/out" || fail "$2: not all in use: $(head -7 "$T/out")"
    grep -Eq "^why .*$2" "$T/out" || fail "$2: why is: $(grep '^why' "$T/out")"
}

mnt=$T/mnt
mkdir "$mnt"
loop=""
unmount () {
    if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
    if [ -n "$loop" ]; then losetup -d "$loop"; loop=""; fi
}
cleanup_fn unmount

img=$T/ex.img src=$T/src
"$TOOLS/mkdisk" -s 7 -d 100 96M "$img"
mkfs.exfat -L EXLBL "$img" >/dev/null || fail "mkfs.exfat"

loop=$(losetup -f --show "$img") || fail "losetup"
mount.exfat-fuse "$loop" "$mnt" >/dev/null 2>&1 || fail "mount.exfat-fuse"
mountpoint -q "$mnt" || fail "not mounted"
mkdir -p "$src/d1/sub" "$src/d2"
i=0
for sz in 0 1 511 512 513 4095 4096 4097 10000 65536 100000 300000 \
          1000000 3000000; do
    i=$((i + 1))
    head -c "$sz" /dev/urandom >"$src/f$i"
    cp "$src/f$i" "$src/d1/sub/g$i"
done
for j in $(seq 1 40); do
    head -c $((j * 5003)) /dev/urandom >"$src/d2/h$j"
done
cp -r "$src/." "$mnt/" || fail "copy in"
sync
for j in $(seq 1 2 40); do
    rm "$mnt/d2/h$j" "$src/d2/h$j"
done
rm "$mnt/f3" "$src/f3" "$mnt/f9" "$src/f9"
head -c 2000000 /dev/urandom >"$src/d2/frag"
cp "$src/d2/frag" "$mnt/d2/frag"
unmount

fsck.exfat -n "$img" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "fsck.exfat on the source"; }
dump.exfat "$img" >"$T/dump" 2>&1 || fail "dump.exfat"
"$TOOLS/fsused" "$img" >"$T/out" || fail "fsused"
grep -qx 'type exfat' "$T/out" || fail "not recognised: $(cat "$T/out")"
grep -qx 'all_used 0' "$T/out" || fail "all used: $(grep why "$T/out")"
[ "$(sed -n 's/^label //p' "$T/out")" = "EXLBL" ] || fail "label"
[ "$(sed -n 's/^uuid //p' "$T/out")" = "$(blkid -o value -s UUID "$img")" ] ||
    fail "uuid differs from blkid's"

field () { sed -n "s/^$1:[[:space:]]*\([0-9]*\).*/\1/p" "$T/dump"; }
heap=$(field 'Cluster Heap Offset (sector offset)')
bits=$(field 'Sector Size Bits')
total=$(field 'Total Clusters')
free=$(field 'Free Clusters')
csize=$(field 'Cluster size')
[ -n "$heap" ] && [ -n "$bits" ] && [ -n "$total" ] && [ -n "$free" ] &&
    [ -n "$csize" ] || fail "cannot parse dump.exfat output"
vsize=$(stat -c %s "$img")
hbytes=$((heap << bits))
want=$((hbytes + (total - free) * csize + vsize - hbytes - total * csize))
got=$(sed -n 's/^used_bytes //p' "$T/out")
diff=$((got > want ? got - want : want - got))
echo "exFAT: used $got, dump.exfat says $want ($((total - free))/$total clusters of $csize)"
[ "$diff" -le "$csize" ] || fail "used $got, dump.exfat $want"
[ "$(sed -n 's/^block_size //p' "$T/out")" = "$csize" ] || fail "block_size"

# Nothing needed was left out.
cp "$img" "$T/wiped.img"
/usr/bin/python3 "$(dirname "$0")/wipe-unused.py" "$T/wiped.img" "$T/out" >/dev/null
fsck.exfat -n "$T/wiped.img" >"$T/fsck2" 2>&1 || { cat "$T/fsck2"; fail "fsck.exfat on the wiped copy"; }
loop=$(losetup -f --show -r "$T/wiped.img") || fail "losetup"
mount.exfat-fuse -o ro "$loop" "$mnt" >/dev/null 2>&1 || fail "mount the wiped copy"
(cd "$src" && find . -type f | sort | xargs sha256sum) >"$T/sum.src"
(cd "$mnt" && find . -type f | sort | xargs sha256sum) >"$T/sum.back"
unmount
cmp -s "$T/sum.src" "$T/sum.back" || { diff "$T/sum.src" "$T/sum.back" | head; fail "files differ after the wipe"; }
rm -f "$T/wiped.img"

# Safety rules.  VolumeFlags and PercentInUse are outside the checksum.
cp "$img" "$T/t.img"
patch "$T/t.img" 106 0200
expect_all "$T/t.img" "VolumeDirty"
cp "$img" "$T/t.img"
patch "$T/t.img" 106 0400
expect_all "$T/t.img" "MediaFailure"
cp "$img" "$T/t.img"
patch "$T/t.img" 112 00                     # PercentInUse 0, bitmap says more
expect_all "$T/t.img" "counters disagree"
cp "$img" "$T/t.img"
patch "$T/t.img" 600 01                     # extended boot sector, no fix
expect_all "$T/t.img" "checksum"
# The root directory's cluster marked free in the bitmap (bitmap at the
# cluster dump.exfat names).
bmclus=$(field 'Bitmap start cluster')
root=$(field 'Root Cluster (cluster offset)')
off=$((hbytes + (bmclus - 2) * csize + (root - 2) / 8))
byte=$(od -An -tu1 -j"$off" -N1 "$img" | tr -d ' ')
cp "$img" "$T/t.img"
patch "$T/t.img" "$off" "$(printf %02x $((byte & ~(1 << ((root - 2) % 8)) & 255)))"
expect_all "$T/t.img" "free in the bitmap"
# Corrupted geometry, checksum made right: all in use, never a crash.
cp "$img" "$T/t.img"
patch "$T/t.img" 92 ffffff7f fix            # ClusterCount past the volume
expect_all "$T/t.img" "geometry"
cp "$img" "$T/t.img"
patch "$T/t.img" 96 01000000 fix            # root directory cluster 1
expect_all "$T/t.img" "root directory"
cp "$img" "$T/t.img"
patch "$T/t.img" 110 02 fix                 # two FATs
expect_all "$T/t.img" "FATs"
cp "$img" "$T/t.img"
patch "$T/t.img" 72 0100000001000000 fix    # VolumeLength past the volume
expect_all "$T/t.img" "larger than its volume"
echo ok
