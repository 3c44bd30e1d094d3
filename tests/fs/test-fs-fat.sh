#!/bin/sh
# FAT12, FAT16 and FAT32 used-block maps, judged by dosfstools and mtools:
#  - garbage first, mkfs.fat, then many files of varied sizes written with
#    mtools (no mount needed), some deleted, more written into the holes
#    (fragmentation);
#  - used_bytes agrees with `fsck.fat -n -v` ("N files, X/Y clusters"):
#      expected = DATA_START + X * CLUSTER + (VOLUME - DATA_START - Y * CLUSTER)
#    (everything before the data area, the X clusters in use, and the slack
#    after the last cluster), within one cluster;
#  - a copy with every byte outside the used ranges overwritten passes
#    `fsck.fat -n` and every file read back with mcopy matches the source;
#  - dirty flag, FAT[1] dirty bit, differing FAT copies, a wrong FSInfo free
#    count and corrupted BPB fields make the volume all in use, with a why.
. "$(dirname "$0")/../functions.sh"
requires mkfs.fat --help
requires fsck.fat --help
requires mcopy --version
requires /usr/bin/python3 --version

# fill IMG SRC SEED: files of varied sizes in SRC (also copied into IMG),
# some deleted, then more files written into the holes.
fill () {
    img=$1 src=$2 seed=$3
    mkdir -p "$src/dir1/sub" "$src/dir2"
    i=0
    for sz in 0 1 511 512 513 2047 2048 2049 4095 4096 4097 10000 65536 \
              100000 300000 1000000; do
        i=$((i + 1))
        "$TOOLS/mkdisk" -s "$((seed + i))" -d 100 "$sz" "$src/f$i" 2>/dev/null ||
            head -c "$sz" /dev/urandom >"$src/f$i"
        cp "$src/f$i" "$src/dir1/sub/g$i"
    done
    for j in 1 2 3 4 5 6 7 8 9 10 11 12; do
        head -c $((j * 3001)) /dev/urandom >"$src/dir2/h$j"
    done
    mcopy -s -Q -i "$img" "$src/dir1" "$src/dir2" ::/ || fail "mcopy"
    for f in "$src"/f*; do
        mcopy -Q -i "$img" "$f" ::/ || fail "mcopy $f"
    done
    # Delete every other file: holes all over the FAT.
    for j in 1 3 5 7 9 11; do
        mdel -i "$img" "::/dir2/h$j" || fail "mdel"
        rm "$src/dir2/h$j"
    done
    for j in 2 6 10 14; do
        mdel -i "$img" "::/f$j" || fail "mdel"
        rm "$src/f$j"
    done
    # A file bigger than any hole: fragmented across them.
    head -c 200000 /dev/urandom >"$src/dir2/frag"
    mcopy -Q -i "$img" "$src/dir2/frag" ::/dir2/ || fail "mcopy frag"
}

check_one () {
    bits=$1 size=$2
    img=$T/fat$bits.img src=$T/src$bits
    rm -f "$img"
    "$TOOLS/mkdisk" -s "$bits" -d 100 "$size" "$img"
    mkfs.fat -F "$bits" -n "LBL$bits" "$img" >/dev/null || fail "mkfs.fat -F $bits"
    fill "$img" "$src" "$bits"

    fsck.fat -n -v "$img" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "fsck.fat on the source"; }
    "$TOOLS/fsused" "$img" >"$T/out" || fail "fsused"
    grep -qx 'type vfat' "$T/out" || fail "FAT$bits not recognised: $(cat "$T/out")"
    grep -qx 'all_used 0' "$T/out" || fail "FAT$bits all used: $(grep why "$T/out")"
    [ "$(sed -n 's/^label //p' "$T/out")" = "LBL$bits" ] || fail "label"
    [ "$(sed -n 's/^uuid //p' "$T/out")" = "$(blkid -o value -s UUID "$img")" ] ||
        fail "uuid differs from blkid's"

    csize=$(sed -n 's/^ *\([0-9]*\) bytes per cluster.*/\1/p' "$T/fsck")
    dstart=$(sed -n 's/^Data area starts at byte \([0-9]*\).*/\1/p' "$T/fsck")
    x=$(sed -n 's/.* files, \([0-9]*\)\/\([0-9]*\) clusters.*/\1/p' "$T/fsck")
    y=$(sed -n 's/.* files, \([0-9]*\)\/\([0-9]*\) clusters.*/\2/p' "$T/fsck")
    [ -n "$csize" ] && [ -n "$dstart" ] && [ -n "$x" ] && [ -n "$y" ] ||
        fail "cannot parse fsck.fat -v output"
    vsize=$(stat -c %s "$img")
    want=$((dstart + x * csize + vsize - dstart - y * csize))
    got=$(sed -n 's/^used_bytes //p' "$T/out")
    diff=$((got > want ? got - want : want - got))
    echo "FAT$bits: used $got, fsck.fat says $want ($x/$y clusters of $csize)"
    [ "$diff" -le "$csize" ] || fail "FAT$bits: used $got, fsck.fat $want"
    [ "$(sed -n 's/^block_size //p' "$T/out")" = "$csize" ] || fail "block_size"

    # Nothing needed was left out.
    cp "$img" "$T/wiped.img"
    /usr/bin/python3 "$(dirname "$0")/wipe-unused.py" "$T/wiped.img" "$T/out" >/dev/null
    fsck.fat -n "$T/wiped.img" >"$T/fsck2" 2>&1 || { cat "$T/fsck2"; fail "FAT$bits: fsck.fat on the wiped copy"; }
    rm -rf "$T/back"
    mkdir "$T/back"
    mcopy -s -Q -n -i "$T/wiped.img" '::/*' "$T/back/" || fail "mcopy out"
    (cd "$src" && find . -type f | sort | xargs sha256sum) >"$T/sum.src"
    (cd "$T/back" && find . -type f | sort | xargs sha256sum) >"$T/sum.back"
    cmp -s "$T/sum.src" "$T/sum.back" || { diff "$T/sum.src" "$T/sum.back" | head; fail "FAT$bits: files differ after the wipe"; }
    rm -f "$T/wiped.img"
}

# expect_all IMG WHY-PATTERN: all in use, with a matching reason.
expect_all () {
    "$TOOLS/fsused" "$1" >"$T/out" || fail "fsused on $1"
    grep -qx 'all_used 1' "$T/out" || fail "$2: not all in use: $(head -7 "$T/out")"
    grep -Eq "^why .*$2" "$T/out" || fail "$2: why is: $(grep '^why' "$T/out")"
}

# patch IMG OFFSET HEXBYTES
patch () {
    /usr/bin/python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' "$1" "$2" "$3"
}

check_one 12 4M
check_one 16 64M
check_one 32 300M

# Safety rules, on copies of the FAT16 and FAT32 images.
cp "$T/fat16.img" "$T/t.img"
patch "$T/t.img" 37 01                      # BS_Reserved1 dirty bit
expect_all "$T/t.img" "dirty"
rsvd16=$(od -An -tu2 -j14 -N2 "$T/fat16.img" | tr -d ' ')
fat1=$((rsvd16 * 512))
fatsz=$(od -An -tu2 -j22 -N2 "$T/fat16.img" | tr -d ' ')
cp "$T/fat16.img" "$T/t.img"
patch "$T/t.img" $((fat1 + 2)) ff7f         # FAT[1] clean-shutdown bit clear,
patch "$T/t.img" $((fat1 + fatsz * 512 + 2)) ff7f   # in both copies
expect_all "$T/t.img" "dirty"
cp "$T/fat16.img" "$T/t.img"
patch "$T/t.img" $((fat1 + fatsz * 512 + 200)) 3412   # an entry of FAT 2 only
expect_all "$T/t.img" "copies differ"

rsvd32=$(od -An -tu2 -j14 -N2 "$T/fat32.img" | tr -d ' ')
fsinfo=$(od -An -tu2 -j48 -N2 "$T/fat32.img" | tr -d ' ')
free=$(od -An -tu4 -j$((fsinfo * 512 + 488)) -N4 "$T/fat32.img" | tr -d ' ')
[ "$free" != 4294967295 ] || fail "mtools left the FSInfo free count unknown"
cp "$T/fat32.img" "$T/t.img"
patch "$T/t.img" 65 01                      # FAT32 BS_Reserved1 dirty bit
expect_all "$T/t.img" "dirty"
cp "$T/fat32.img" "$T/t.img"
patch "$T/t.img" $((fsinfo * 512 + 488)) 01000000   # FSInfo: 1 free cluster
expect_all "$T/t.img" "counters disagree"
fatsz32=$(od -An -tu4 -j36 -N4 "$T/fat32.img" | tr -d ' ')
cp "$T/fat32.img" "$T/t.img"
patch "$T/t.img" $((rsvd32 * 512 + 7)) 07   # FAT[1] bits 27/26 clear,
patch "$T/t.img" $(((rsvd32 + fatsz32) * 512 + 7)) 07   # in both copies
expect_all "$T/t.img" "dirty"
cp "$T/fat32.img" "$T/t.img"
patch "$T/t.img" 44 ffffff0f                # root cluster out of range
expect_all "$T/t.img" "root directory cluster"

# Corrupted structures: all in use (or not FAT at all), never a crash.
cp "$T/fat16.img" "$T/t.img"
patch "$T/t.img" 32 01000200                # total sectors: one past the volume
patch "$T/t.img" 19 0000
expect_all "$T/t.img" "larger than its volume"
cp "$T/fat16.img" "$T/t.img"
patch "$T/t.img" 13 03                      # 3 sectors per cluster
"$TOOLS/fsused" "$T/t.img" >"$T/out" || fail "fsused"
grep -qx 'all_used 1' "$T/out" || fail "bad sectors per cluster not all used"
cp "$T/fat32.img" "$T/t.img"
patch "$T/t.img" 22 0100                    # FAT32 with BPB_FATSz16 set
expect_all "$T/t.img" ""
echo ok
