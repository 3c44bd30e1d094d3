#!/bin/sh
# Make the seed corpora of fuzz-files-ext and fuzz-files-fat
# (tests/fuzz/corpus/files-ext/, files-fat/): small filesystems made from
# a directory with a bit of everything the readers handle (nested
# directories, a sparse file, fast and slow symlinks, a loop, long and
# mixed-case names), each under 64 KiB.  Where a filesystem cannot be
# that small, the seed is the first 64 KiB of a larger one: the fuzz
# harness reads the rest of the volume as zeros.  Needs mke2fs, mkfs.fat,
# mtools.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
w=$(mktemp -d "${TMPDIR:-/tmp}/files-seeds.XXXXXX")
trap 'rm -rf "$w"' EXIT
E2FSPROGS_FAKE_TIME=1700000000
MTOOLS_SKIP_CHECK=1
export E2FSPROGS_FAKE_TIME MTOOLS_SKIP_CHECK

d=$w/src
mkdir -p "$d/etc" "$d/usr/lib" "$d/a/b/c" "$d/EFI/BOOT"
printf 'ID=seed\n' >"$d/usr/lib/os-release"
ln -s ../usr/lib/os-release "$d/etc/os-release"
ln -s /usr/lib "$d/abs"
ln -s loop "$d/loop"
ln -s "$(printf 'y%.0s' $(seq 1 80))" "$d/a/slow"
printf 'x%.0s' $(seq 1 3000) >"$d/a/b/c/three-k"
truncate -s 20000 "$d/sparse"
printf 'end' >>"$d/sparse"
echo tiny >"$d/a/tiny"
echo efi >"$d/EFI/BOOT/BOOTX64.EFI"
echo mixed >"$d/MixedCase Long Name.txt"

# FAT has no symlinks: its own copy, without them.
fd=$w/fatsrc
mkdir -p "$fd/a/b/c" "$fd/EFI/BOOT"
cp "$d/a/b/c/three-k" "$fd/a/b/c/"
cp "$d/a/tiny" "$d/sparse" "$d/usr/lib/os-release" "$fd/a/"
cp "$d/EFI/BOOT/BOOTX64.EFI" "$fd/EFI/BOOT/"
cp "$d/MixedCase Long Name.txt" "$fd/"
echo lower >"$fd/lower.txt"

e=$here/corpus/files-ext f=$here/corpus/files-fat
mkdir -p "$e" "$f"
head64 () {   # IMG OUT
    head -c 65536 "$1" >"$2"
}
mke2fs -q -F -t ext2 -b 1024 -N 32 -m 0 -U 00000000-0000-0000-0000-000000000002 -E hash_seed=00000000-0000-0000-0000-000000000001 \
    -d "$d" "$w/ext2.img" 64k
cp "$w/ext2.img" "$e/ext2-64k.img"
mke2fs -q -F -t ext4 -b 1024 -N 32 -m 0 -U 00000000-0000-0000-0000-000000000002 -E hash_seed=00000000-0000-0000-0000-000000000001 \
    -O ^has_journal,inline_data,^resize_inode,^flex_bg -d "$d" "$w/inl.img" 64k
cp "$w/inl.img" "$e/ext4-inline-64k.img"
mke2fs -q -F -t ext4 -b 1024 -N 32 -m 0 -U 00000000-0000-0000-0000-000000000002 -E hash_seed=00000000-0000-0000-0000-000000000001 \
    -O ^has_journal,^resize_inode,^flex_bg -d "$d" "$w/ext4.img" 64k
cp "$w/ext4.img" "$e/ext4-extents-64k.img"

mkfs.fat -C -F 12 -i 12345678 --invariant "$w/fat12.img" 64 >/dev/null
mcopy -s -i "$w/fat12.img" "$fd"/* ::/
cp "$w/fat12.img" "$f/fat12-64k.img"
mkfs.fat -C -F 16 -s 1 -i 12345678 --invariant "$w/fat16.img" 4096 >/dev/null
mcopy -s -i "$w/fat16.img" "$fd"/* ::/
head64 "$w/fat16.img" "$f/fat16-head.img"
mkfs.fat -C -F 32 -s 1 -f 1 -R 2 -i 12345678 --invariant "$w/fat32.img" 34000 \
    >/dev/null
head64 "$w/fat32.img" "$f/fat32-head.img"
truncate -s 64k "$e"/*.img
ls -l "$e" "$f"
