#!/bin/sh
# ext2/ext3/ext4 (converter/fs/fs-ext.c), judged by e2fsprogs' own tools:
#   - used bytes agree with dumpe2fs ((block count - free blocks) x block
#     size) within one block; type, label and UUID agree with blkid;
#   - a copy in which every byte outside the used ranges is overwritten
#     still passes e2fsck -fn, and every file in it (mounted read-only) has
#     the source's checksum: no needed block was skipped;
#   - unclean states (needs_recovery, state not clean, errors, orphan list),
#     counters that disagree with the bitmap, an unknown feature, a
#     corrupted bitmap, a filesystem larger than its volume: all in use,
#     each with its reason.
# Each filesystem is made over non-zero garbage, then filled with many
# files of varied sizes, some deleted, and a large file written into the
# holes they left (fragmented).
. "$(dirname "$0")/../functions.sh"
requires mkfs.ext4 -V
requires debugfs -V
requires dumpe2fs -V
requires e2fsck -V
requires blkid -V
requires /usr/bin/python3 --version
[ "$(id -u)" -eq 0 ] || { echo "needs root for loop mounts"; exit 77; }

mnt="$T/mnt"
mkdir -p "$mnt"

umount_mnt () {
    if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
}
cleanup_fn umount_mnt

# fill IMG: mount it, write files, delete some, fragment, unmount.
fill () {
    mount -o loop "$1" "$mnt" || fail "mount $1"
    /usr/bin/python3 - "$mnt" <<'EOF' || { umount_mnt; fail "filling $1"; }
import os, random, sys
root = sys.argv[1]
rnd = random.Random(42)
os.makedirs(os.path.join(root, "d/e/f"))
names = []
for i in range(400):
    d = os.path.join(root, ["", "d", "d/e", "d/e/f"][i % 4])
    n = os.path.join(d, "f%03d" % i)
    size = rnd.choice([0, 1, 100, 1023, 1024, 4097, 20000, 65536, 150000,
                       rnd.randrange(1, 300000)])
    with open(n, "wb") as f:
        f.write(rnd.randbytes(size))
    names.append(n)
# Delete every third file: holes all over the disk.
for n in names[::3]:
    os.unlink(n)
# A large file written into the holes, appended in small pieces.
with open(os.path.join(root, "big"), "wb") as f:
    for i in range(160):
        f.write(rnd.randbytes(65536))
        f.flush()
# Sparse file, symlinks, a long symlink, hard link.
with open(os.path.join(root, "sparse"), "wb") as f:
    f.seek(5 << 20); f.write(b"tail"); f.seek(1 << 20); f.write(b"mid")
os.symlink("f001", os.path.join(root, "d/link"))
os.symlink("x" * 300, os.path.join(root, "longlink"))
os.link(os.path.join(root, "big"), os.path.join(root, "big.hard"))
EOF
    sync
    umount "$mnt" || fail "umount"
}

field () {
    sed -n "s/^$1 //p" "$2"
}

# check NAME MKFS-ARGS...: build, fill, compare, wipe the unused bytes,
# e2fsck and compare every file.
check () {
    name=$1
    shift
    img="$T/$name.raw"
    "$TOOLS/mkdisk" -s 7 -d 100 96M "$img"
    mkfs.ext4 -q -F -L "lbl-$name" "$@" "$img" >/dev/null 2>&1 ||
        fail "$name: mkfs $*"
    fill "$img"
    e2fsck -fn "$img" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "$name: source not clean"; }
    "$TOOLS/fsused" "$img" >"$T/out" || fail "$name: fsused"
    [ "$(field all_used "$T/out")" = 0 ] ||
        fail "$name: all used: $(field why "$T/out")"
    [ "$(field type "$T/out")" = "$(blkid -o value -s TYPE "$img")" ] ||
        fail "$name: type $(field type "$T/out") differs from blkid's"
    [ "$(field label "$T/out")" = "lbl-$name" ] || fail "$name: label"
    [ "$(field uuid "$T/out")" = "$(blkid -o value -s UUID "$img")" ] ||
        fail "$name: uuid differs from blkid's"
    dumpe2fs -h "$img" >"$T/dump" 2>/dev/null || fail "$name: dumpe2fs"
    bc=$(sed -n 's/^Block count: *//p' "$T/dump")
    fb=$(sed -n 's/^Free blocks: *//p' "$T/dump")
    bs=$(sed -n 's/^Block size: *//p' "$T/dump")
    [ "$(field block_size "$T/out")" = "$bs" ] || fail "$name: block size"
    want=$(( (bc - fb) * bs ))
    got=$(field used_bytes "$T/out")
    diff=$(( got > want ? got - want : want - got ))
    echo "$name: used $got, dumpe2fs $want (block $bs, diff $diff)"
    [ "$diff" -le "$bs" ] || fail "$name: used $got vs dumpe2fs $want"
    [ "$got" -lt $((96 << 20)) ] || fail "$name: everything counted used"

    # Overwrite every byte outside the used ranges.
    cp "$img" "$T/wiped.raw"
    /usr/bin/python3 "$(dirname "$0")/wipe-unused.py" "$T/wiped.raw" \
        "$T/out" >/dev/null || fail "$name: wipe"
    cmp -s "$img" "$T/wiped.raw" && fail "$name: the wipe changed nothing"
    e2fsck -fn "$T/wiped.raw" >"$T/fsck" 2>&1 ||
        { cat "$T/fsck"; fail "$name: e2fsck -fn fails after the wipe"; }
    mount -o loop,ro "$img" "$mnt" || fail "mount source"
    (cd "$mnt" && find . -type f | sort | xargs sha256sum) >"$T/sum.src"
    umount "$mnt"
    mount -o loop,ro "$T/wiped.raw" "$mnt" || fail "mount wiped copy"
    (cd "$mnt" && find . -type f | sort | xargs sha256sum) >"$T/sum.wiped"
    umount "$mnt"
    [ "$(wc -l <"$T/sum.src")" -gt 250 ] || fail "$name: too few files"
    cmp -s "$T/sum.src" "$T/sum.wiped" ||
        fail "$name: file contents differ after the wipe"
    rm -f "$T/wiped.raw"
    [ "$name" = ext4 ] || return 0
    # Control: the same check must catch one skipped block of file data.
    pb=$(debugfs -R "bmap /big 77" "$img" 2>/dev/null)
    [ "$pb" -gt 0 ] || fail "$name: debugfs bmap"
    cp "$img" "$T/wiped.raw"
    /usr/bin/python3 "$(dirname "$0")/wipe-unused.py" "$T/wiped.raw" \
        "$T/out" $((pb * bs)):1024 >/dev/null || fail "$name: wipe"
    mount -o loop,ro "$T/wiped.raw" "$mnt" || fail "mount control copy"
    (cd "$mnt" && find . -type f | sort | xargs sha256sum) >"$T/sum.wiped"
    umount "$mnt"
    cmp -s "$T/sum.src" "$T/sum.wiped" &&
        fail "$name: control: a skipped data block went unnoticed"
    rm -f "$T/wiped.raw"
}

check ext2-1k -t ext2 -b 1024
check ext3 -t ext3 -b 4096
check ext4 -t ext4 -b 4096
check ext4-small -t ext4 -O ^64bit,^metadata_csum,^flex_bg -b 2048
check csum-noflex -t ext4 -O 64bit,metadata_csum,^flex_bg,^uninit_bg -b 1024
check bigalloc -t ext4 -O bigalloc -C 16384

# ---- Safety: each of these must make the volume all used, with why. ----
base="$T/base.raw"
"$TOOLS/mkdisk" -s 8 -d 100 32M "$base"
mkfs.ext4 -q -F "$base" >/dev/null 2>&1 || fail "mkfs base"
"$TOOLS/fsused" "$base" >"$T/out" || fail "fsused base"
[ "$(field all_used "$T/out")" = 0 ] || fail "base all used: $(field why "$T/out")"

# unclean CMD WHY-PATTERN [CMD2]: apply debugfs CMD (then CMD2) to a copy
# of the base, expect all used with a reason matching WHY-PATTERN.
unclean () {
    cp "$base" "$T/u.raw"
    printf '%s\n' "$1" "${3:-}" >"$T/cmds"
    debugfs -w -f "$T/cmds" "$T/u.raw" >/dev/null 2>&1 || fail "debugfs $1"
    expect_all_used "$T/u.raw" "$2" "$1"
}

expect_all_used () {
    "$TOOLS/fsused" "$1" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "$3: fsused failed"; }
    [ "$(field all_used "$T/out")" = 1 ] || fail "$3: not all used"
    field why "$T/out" | grep -Eqi "$2" ||
        fail "$3: reason '$(field why "$T/out")' does not match '$2'"
    echo "$3: all used: $(field why "$T/out")"
}

unclean "feature needs_recovery" "recovery"
unclean "ssv state 0" "not clean"
unclean "ssv state 3" "errors"
unclean "ssv last_orphan 12" "orphan"
unclean "feature orphan_present" "orphan"
unclean "ssv free_blocks_count 1000" "superblock.*free block count"
unclean "set_bg 2 free_blocks_count 17" "group 2: free block count" \
    "set_bg 2 checksum calc"
unclean "set_bg 1 checksum 0x1234" "checksum"
unclean "ssv feature_incompat 0x80002c2" "unknown incompatible"
unclean "ssv feature_ro_compat 0x80000" "read-only-compatible"

# A corrupted block bitmap (group 0's: never BLOCK_UNINIT): its checksum (metadata_csum) no longer matches.
bb=$(dumpe2fs "$base" 2>/dev/null | sed -n 's/^ *Block bitmap at \([0-9]*\).*/\1/p' | sed -n 1p)
bs=$(dumpe2fs -h "$base" 2>/dev/null | sed -n 's/^Block size: *//p')
cp "$base" "$T/u.raw"
printf 'ZZZZ' | dd of="$T/u.raw" bs=1 seek=$((bb * bs + 1000)) conv=notrunc status=none
expect_all_used "$T/u.raw" "bitmap" "corrupted bitmap (csum)"

# The same without checksums (ext2): the counts no longer agree.
"$TOOLS/mkdisk" -s 9 -d 100 32M "$T/e2.raw"
mkfs.ext2 -q -F "$T/e2.raw" >/dev/null 2>&1 || fail "mkfs ext2"
bb=$(dumpe2fs "$T/e2.raw" 2>/dev/null | sed -n 's/^ *Block bitmap at \([0-9]*\).*/\1/p' | sed -n 1p)
bs=$(dumpe2fs -h "$T/e2.raw" 2>/dev/null | sed -n 's/^Block size: *//p')
printf 'ZZZZ' | dd of="$T/e2.raw" bs=1 seek=$((bb * bs + 1000)) conv=notrunc status=none
expect_all_used "$T/e2.raw" "free block count" "corrupted bitmap (ext2)"

# The journal holds a transaction though needs_recovery is clear: its own
# superblock's s_start says so.
cp "$base" "$T/u.raw"
head -c 1024 /dev/urandom >"$T/blk"
printf 'jo\njw -b 300 %s\njc\nfeature -needs_recovery\n' "$T/blk" >"$T/cmds"
debugfs -w -f "$T/cmds" "$T/u.raw" >/dev/null 2>&1 || fail "debugfs journal write"
dumpe2fs -h "$T/u.raw" 2>/dev/null | grep -q '^Journal start: *[1-9]' ||
    fail "debugfs did not leave a transaction in the journal"
expect_all_used "$T/u.raw" "journal holds transactions" "journal transaction"

# Multiple-mount protection: clean, then "in use by another host".
"$TOOLS/mkdisk" -s 11 -d 100 32M "$T/mmp.raw"
mkfs.ext4 -q -F -O mmp "$T/mmp.raw" >/dev/null 2>&1 || fail "mkfs mmp"
"$TOOLS/fsused" "$T/mmp.raw" >"$T/out" || fail "fsused mmp"
[ "$(field all_used "$T/out")" = 0 ] || fail "clean MMP all used: $(field why "$T/out")"
# (debugfs would reset the sequence to clean when it closes: write it.)
mb=$(dumpe2fs -h "$T/mmp.raw" 2>/dev/null | sed -n 's/^MMP block number: *//p')
bs=$(dumpe2fs -h "$T/mmp.raw" 2>/dev/null | sed -n 's/^Block size: *//p')
[ -n "$mb" ] || fail "no MMP block"
printf '\064\022\000\000' |
    dd of="$T/mmp.raw" bs=1 seek=$((mb * bs + 4)) conv=notrunc status=none
expect_all_used "$T/mmp.raw" "multiple-mount" "MMP in use"

# Larger than its volume (truncated).
cp "$base" "$T/u.raw"
truncate -s 20M "$T/u.raw"
expect_all_used "$T/u.raw" "larger than its volume" "truncated"

# A broken group descriptor table: libext2fs refuses or the checks fail.
cp "$base" "$T/u.raw"
bs=$(dumpe2fs -h "$base" 2>/dev/null | sed -n "s/^Block size: *//p")
# The base has 1 KiB blocks: the table is block 2.
[ "$bs" = 1024 ] || fail "base block size $bs"
"$TOOLS/mkdisk" -s 10 -d 100 1K "$T/junk"
dd if="$T/junk" of="$T/u.raw" bs=1024 seek=2 count=1 conv=notrunc status=none
expect_all_used "$T/u.raw" "." "garbage descriptors"

echo ok
