#!/bin/sh
# Reading files from ext2/ext3/ext4 without mounting (converter/fs/files.c,
# fs-ext-files.c), judged against the directory the filesystems are made
# from (mke2fs -d), listed and hashed by find and sha256sum on the host:
#   - every entry, its kind, size, permissions, content hash and symlink
#     target agree, for ext2 and ext3 (block maps), ext4 (extents), ext4
#     with 1 KiB blocks and block maps (double indirect blocks), ext4 with
#     inline data, directories indexed by e2fsck -D (htree), and ext4 at
#     an offset inside a partitioned disk, raw and qcow2;
#   - symlinks resolve like the kernel does: relative ones from the link's
#     directory, absolute ones from the root, through "..", a chain of 40
#     works and one of 41 fails, a loop fails (fast, not a hang);
#   - a tree of three filesystems (ext4 "/", ext2 "/boot", FAT
#     "/boot/efi"): lookups cross into mounts, ".." leaves them, symlinks
#     cross back.
. "$(dirname "$0")/../functions.sh"
requires mke2fs -V
requires e2fsck -V
requires debugfs -V
requires sfdisk --version
requires qemu-img --version
requires mkfs.fat --help
requires mcopy --version
requires timeout --version
FSREAD=$TOOLS/fsread
[ -x "$FSREAD" ] || fail "$FSREAD not built"

src=$T/src
mkdir -p "$src/usr/lib" "$src/etc" "$src/a/b/c/d/e/f/g" "$src/many" \
    "$src/chain" "$src/boot" "$src/with space" "$src/inl"
printf 'PRETTY_NAME="Test Linux"\nID=test\n' >"$src/usr/lib/os-release"
echo testhost >"$src/etc/hostname"
ln -s ../usr/lib/os-release "$src/etc/os-release"
ln -s /usr/lib/os-release "$src/abs-os-release"
ln -s ../usr/lib "$src/etc/up"
ln -s ../../../../usr/lib/os-release "$src/a/b/c/rel-deep"
ln -s loop2 "$src/loop1"
ln -s loop1 "$src/loop2"
ln -s self "$src/self"
ln -s "$(printf 'x%.0s' $(seq 1 200))/target" "$src/slow-symlink"
ln -s /nonexistent/target "$src/dangling"
# A chain: l00 -> l01 -> ... -> l40 -> the file.  Resolving l01 follows
# 40 links (allowed), l00 41.
echo "end of chain" >"$src/chain/file"
ln -s file "$src/chain/l40"
i=39
while [ "$i" -ge 0 ]; do
    ln -s "$(printf 'l%02d' $((i + 1)))" "$src/chain/$(printf 'l%02d' "$i")"
    i=$((i - 1))
done
# Content: a large file, sparse ones, empty ones, hard links, odd names.
head -c 3300000 /dev/urandom >"$src/big"
truncate -s 6M "$src/holes"
printf 'middle' | dd of="$src/holes" bs=1 seek=2097152 conv=notrunc 2>/dev/null
printf 'tail' | dd of="$src/holes" bs=1 seek=6291452 conv=notrunc 2>/dev/null
truncate -s 40M "$src/all-hole"
: >"$src/empty"
: >"$src/a/b/c/d/e/f/g/empty-deep"
echo deep >"$src/a/b/c/d/e/f/g/deep.txt"
ln "$src/big" "$src/big.hard"
echo spaced >"$src/with space/a file"
long=$(printf 'n%.0s' $(seq 1 250))
echo "long name" >"$src/$long.txt"
echo "tiny" >"$src/inl/tiny"
head -c 100 /dev/urandom >"$src/inl/hundred"
mkfifo "$src/fifo"
chmod 600 "$src/etc/hostname"
echo x >"$src/a/b/c/setuid"
chmod 4755 "$src/a/b/c/setuid"
# A directory of 3000 entries: e2fsck -D makes it an htree.
i=0
while [ "$i" -lt 3000 ]; do
    : >"$src/many/entry-with-a-longer-name-$i"
    i=$((i + 1))
done
echo "one" >"$src/many/entry-with-a-longer-name-1500"

# expected DIR: what fsread find must print, from the host's own tools.
expected () {
    (cd "$1" && find . -type f -exec sha256sum {} + ) >"$T/hashes"
    (cd "$1" && find . -mindepth 1 -printf '%y\t%s\t%m\t%P\t%l\n') |
        awk -F '\t' -v hashes="$T/hashes" '
            BEGIN {
                while ((getline l < hashes) > 0) {
                    h = substr (l, 1, 64); p = substr (l, 69)
                    hash[p] = h
                }
            }
            {
                k = $1; s = $2
                if (k != "f" && k != "d" && k != "l") k = "o"
                if (k == "d") s = "-"
                h = (k == "f") ? hash[$4] : "-"
                line = k " " s " " $3 " " h " " $4
                if (k == "l") line = line " -> " $5
                print line
            }' | LC_ALL=C sort
}
expected "$src" >"$T/expected"
[ "$(wc -l <"$T/expected")" -gt 3050 ] || fail "the source listing is short"

# check NAME IMG OFFSET TYPE: fsread's listing equals the source's.
check_tree () {
    name=$1 img=$2 off=$3 type=$4
    timeout 600 "$FSREAD" "$img" "$off" 0 "$type" find / >"$T/$name.find" ||
        fail "$name: fsread find failed"
    grep -v '^d - 700 - lost+found$' "$T/$name.find" | LC_ALL=C sort \
        >"$T/$name.got"
    if ! cmp -s "$T/expected" "$T/$name.got"; then
        diff "$T/expected" "$T/$name.got" | head -20 >&2
        fail "$name: the listing differs from the source directory"
    fi
}

# want_cat NAME IMG TYPE PATH FILE: fsread cat PATH equals FILE.
want_cat () {
    "$FSREAD" "$2" 0 0 "$3" cat "$4" >"$T/cat.out" ||
        fail "$1: cat $4 failed"
    cmp -s "$T/cat.out" "$5" || fail "$1: cat $4 differs from $5"
}

check_links () {
    name=$1 img=$2 type=$3
    os=$src/usr/lib/os-release
    want_cat "$name" "$img" "$type" /etc/os-release "$os"
    want_cat "$name" "$img" "$type" /abs-os-release "$os"
    want_cat "$name" "$img" "$type" /etc/up/os-release "$os"
    want_cat "$name" "$img" "$type" /a/b/c/rel-deep "$os"
    want_cat "$name" "$img" "$type" /../../etc/../usr/./lib//os-release "$os"
    want_cat "$name" "$img" "$type" /etc/up/../../etc/hostname \
        "$src/etc/hostname"
    want_cat "$name" "$img" "$type" /chain/l01 "$src/chain/file"
    want_cat "$name" "$img" "$type" "/$long.txt" "$src/$long.txt"
    want_cat "$name" "$img" "$type" /big "$src/big"
    want_cat "$name" "$img" "$type" /holes "$src/holes"
    expect_error 1 "too many levels of symbolic links" \
        timeout 20 "$FSREAD" "$img" 0 0 "$type" cat /chain/l00
    expect_error 1 "too many levels of symbolic links" \
        timeout 20 "$FSREAD" "$img" 0 0 "$type" cat /loop1
    expect_error 1 "too many levels of symbolic links" \
        timeout 20 "$FSREAD" "$img" 0 0 "$type" stat /self/x
    expect_error 3 "no such file" \
        "$FSREAD" "$img" 0 0 "$type" cat /dangling
    expect_error 3 "no such file" \
        "$FSREAD" "$img" 0 0 "$type" stat /etc/nothing
    expect_error 3 "not a directory" \
        "$FSREAD" "$img" 0 0 "$type" stat /big/x
    expect_error 1 "not a regular file" \
        "$FSREAD" "$img" 0 0 "$type" cat /etc
    expect_error 1 "not a symbolic link" \
        "$FSREAD" "$img" 0 0 "$type" readlink /big
    # lstat does not follow the last link, stat does.
    "$FSREAD" "$img" 0 0 "$type" lstat /etc/os-release | grep -q '^kind=l ' ||
        fail "$name: lstat followed the link"
    "$FSREAD" "$img" 0 0 "$type" stat /etc/os-release |
        grep -q "^kind=f size=$(stat -c %s "$os") " ||
        fail "$name: stat did not follow the link"
    [ "$("$FSREAD" "$img" 0 0 "$type" readlink /slow-symlink)" = \
      "$(readlink "$src/slow-symlink")" ] || fail "$name: slow symlink"
    [ "$("$FSREAD" "$img" 0 0 "$type" readlink /etc/os-release)" = \
      "$(readlink "$src/etc/os-release")" ] || fail "$name: fast symlink"
    "$FSREAD" "$img" 0 0 "$type" head 1000 /big >"$T/head.out" ||
        fail "$name: head"
    head -c 1000 "$src/big" | cmp -s - "$T/head.out" || fail "$name: head"
    # ls is sorted and says what each entry is.
    "$FSREAD" "$img" 0 0 "$type" ls /etc >"$T/ls.out" || fail "$name: ls"
    printf 'f hostname\nl os-release\nl up\n' | cmp -s - "$T/ls.out" ||
        fail "$name: ls /etc"
}

# mkext NAME MKE2FS-ARGS...: an image of the source directory, its
# directories indexed.
mkext () {
    name=$1
    shift
    mke2fs -q -F "$@" -d "$src" "$T/$name.img" 160M >/dev/null 2>&1 ||
        fail "$name: mke2fs $*"
    set +e
    e2fsck -fyD "$T/$name.img" >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" -le 1 ] || fail "$name: e2fsck -fD exit $rc"
    e2fsck -fn "$T/$name.img" >/dev/null 2>&1 || fail "$name: e2fsck -fn"
}

# dstat NAME PATH: debugfs's stat, to see which feature a file uses.
dstat () {
    debugfs -R "stat \"$2\"" "$T/$1.img" 2>/dev/null
}

start=$(date +%s)
mkext ext2 -t ext2
mkext ext3 -t ext3
mkext ext4 -t ext4
mkext ext4-1k-blockmap -t ext4 -b 1024 -O ^extents,^64bit
mkext ext4-inline -t ext4 -O inline_data

# The images use what they are meant to test.
debugfs -R "htree /many" "$T/ext4.img" 2>/dev/null | grep -q 'Indirect levels' ||
    fail "ext4: /many is not an htree"
debugfs -R "htree /many" "$T/ext2.img" 2>/dev/null | grep -q 'Indirect levels' ||
    fail "ext2: /many is not an htree"
dstat ext4 /big | grep -q '^EXTENTS' || fail "ext4: /big has no extents"
dstat ext2 /big | grep -q '(IND)' || fail "ext2: /big has no block map"
dstat ext4-1k-blockmap /big | grep -q '(DIND)' ||
    fail "ext4-1k-blockmap: /big has no double indirect block"
dstat ext4-inline /inl/tiny | grep -q 'Size of inline data' ||
    fail "ext4-inline: /inl/tiny is not inline"
dstat ext4-inline /inl | grep -q 'Size of inline data' ||
    fail "ext4-inline: /inl is not an inline directory"
debugfs -R features "$T/ext3.img" 2>/dev/null | grep -q has_journal ||
    fail "ext3: no journal"

for name in ext2 ext3 ext4 ext4-1k-blockmap ext4-inline; do
    type=${name%%-*}
    check_tree "$name" "$T/$name.img" 0 "$type"
    check_links "$name" "$T/$name.img" "$type"
done

# The ext4 filesystem as partition 2 of an MBR disk, 3 MiB in.
truncate -s 200M "$T/disk.raw"
printf 'start=2048, size=4096, type=83\nstart=6144, size=327680, type=83\n' |
    sfdisk -q "$T/disk.raw" >/dev/null || fail "sfdisk"
dd if="$T/ext4.img" of="$T/disk.raw" bs=1M seek=3 conv=notrunc,sparse \
    2>/dev/null || fail "dd"
check_tree part-raw "$T/disk.raw" 3145728 ext4
qemu-img convert -O qcow2 "$T/disk.raw" "$T/disk.qcow2" || fail "qemu-img"
check_tree part-qcow2 "$T/disk.qcow2" 3145728 ext4
"$FSREAD" "$T/disk.qcow2" 3145728 167772160 ext4 cat /etc/os-release |
    cmp -s - "$src/usr/lib/os-release" || fail "partition: os-release"

# ---- A tree: ext4 at "/", ext2 at "/boot", FAT at "/boot/efi" ----
root=$T/root boot=$T/bootsrc
mkdir -p "$root/boot" "$root/etc" "$boot/grub" "$boot/efi" "$T/efisrc/EFI/debian"
echo rootfs >"$root/etc/hostname"
echo "root's own boot dir" >"$root/boot/hidden"
ln -s boot/grub "$root/grub-link"
echo 'set timeout=5' >"$boot/grub/grub.cfg"
head -c 200000 /dev/urandom >"$boot/vmlinuz-6.1.0"
ln -s /etc/hostname "$boot/abs-hostname"
ln -s ../etc/hostname "$boot/rel-hostname"
ln -s efi/EFI/debian "$boot/efi-link"
echo 'search.fs_uuid x' >"$T/efisrc/EFI/debian/grub.cfg"
mke2fs -q -F -t ext4 -d "$root" "$T/rootfs.img" 16M >/dev/null 2>&1 ||
    fail "mke2fs root"
mke2fs -q -F -t ext2 -d "$boot" "$T/bootfs.img" 8M >/dev/null 2>&1 ||
    fail "mke2fs boot"
mkfs.fat -C -F 16 "$T/efi.img" 20480 >/dev/null || fail "mkfs.fat"
MTOOLS_SKIP_CHECK=1 mcopy -s -i "$T/efi.img" "$T/efisrc/EFI" ::/ ||
    fail "mcopy"

tree () {
    "$FSREAD" --mount "/boot=$T/bootfs.img:0:0:ext2" \
        --mount "/boot/efi=$T/efi.img:0:0:vfat" "$T/rootfs.img" 0 0 ext4 "$@"
}
want_tree () {
    path=$1 file=$2
    tree cat "$path" >"$T/cat.out" || fail "tree: cat $path failed"
    cmp -s "$T/cat.out" "$file" || fail "tree: cat $path differs from $file"
}
want_tree /boot/grub/grub.cfg "$boot/grub/grub.cfg"
want_tree /boot/vmlinuz-6.1.0 "$boot/vmlinuz-6.1.0"
want_tree /grub-link/grub.cfg "$boot/grub/grub.cfg"
want_tree /boot/abs-hostname "$root/etc/hostname"
want_tree /boot/rel-hostname "$root/etc/hostname"
want_tree /boot/../etc/hostname "$root/etc/hostname"
want_tree /boot/grub/../../etc/hostname "$root/etc/hostname"
want_tree /boot/efi/EFI/debian/grub.cfg "$T/efisrc/EFI/debian/grub.cfg"
want_tree /boot/efi-link/grub.cfg "$T/efisrc/EFI/debian/grub.cfg"
want_tree /boot/efi/../grub/grub.cfg "$boot/grub/grub.cfg"
want_tree /boot/efi/EFI/../../../etc/hostname "$root/etc/hostname"
# The mounted filesystem hides what the root has under /boot.
expect_error 3 "no such file" tree cat /boot/hidden
"$FSREAD" "$T/rootfs.img" 0 0 ext4 cat /boot/hidden |
    cmp -s - "$root/boot/hidden" || fail "root's /boot/hidden"
expect_error 3 "no such file" "$FSREAD" "$T/rootfs.img" 0 0 ext4 \
    cat /boot/grub/grub.cfg
# ".." of a mount's root lists the directory it is mounted on.
tree ls / >"$T/ls-root"
tree ls /boot/.. >"$T/ls-up"
cmp -s "$T/ls-root" "$T/ls-up" || fail "tree: ls /boot/.. differs from ls /"
tree ls /boot >"$T/ls-boot"
(cd "$boot" && for f in *; do
     if [ -L "$f" ]; then k=l; elif [ -d "$f" ]; then k=d; else k=f; fi
     echo "$k $f"
 done) | LC_ALL=C sort -k 2 >"$T/ls-boot.want"
grep -v '^d lost+found$' "$T/ls-boot" | cmp -s - "$T/ls-boot.want" ||
    fail "tree: ls /boot differs from the boot source"
tree stat /boot/efi | grep -q '^kind=d ' || fail "tree: /boot/efi not a dir"
tree find / >"$T/tree.find" || fail "tree: find"
grep -q '^f [0-9]* [0-7]* [0-9a-f]* boot/efi/EFI/debian/grub.cfg$' \
    "$T/tree.find" || fail "tree: find does not cross into /boot/efi"
echo "ok: ext file reading ($(($(date +%s) - start)) s)"
