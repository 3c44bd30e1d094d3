#!/bin/sh
# Reading files out of XFS images without mounting (fs-xfs-files.c, through
# tests/tools/xfsread): a source tree with every directory form (short-form,
# block, leaf, node with 20000 entries, multi-block directory blocks),
# files with holes and unwritten extents, a file in btree format, inline
# and remote symlinks, 255-byte names, empty files and odd modes is put
# into XFS images of several kinds:
#   - v5 (CRC, ftype) mounted and filled by the kernel: 4 KiB blocks; 1 KiB
#     blocks with 4 KiB directory blocks; 2 KiB inodes with nrext64;
#   - v4 (no CRC, with and without ftype), 4 KiB and 1 KiB blocks, inodes
#     of 256 and 512 bytes: filled by mkfs.xfs -p from a protofile, since
#     this kernel may not mount v4 (then holes are written as zeros, which
#     reads the same);
#   - a v5 filesystem inside a partition of an MBR disk, read at its offset,
#     also through a qcow2 copy of the disk.
# xfsread's listing of each (paths, kinds, sizes, modes, sha256 of every
# file, symlink targets) must equal the one find, sha256sum and readlink
# make of the source tree on the host.  Every entry is also looked up by
# name.  xfs_db confirms that the big file is in btree format and that the
# directories are in the forms meant.  Corruptions are refused with a
# message: an inode's magic, a directory block's magic, an extent past the
# end, an unknown incompatible feature.
. "$(dirname "$0")/../functions.sh"
requires mkfs.xfs -V
requires xfs_db -V
requires losetup --version
requires sfdisk --version
requires /usr/bin/python3 --version
requires test "$(id -u)" -eq 0   # loop devices and mounts

XFSREAD=$TOOLS/xfsread
mkdir "$T/mnt"

# attach IMG: $dev becomes a loop device for IMG.  The cleanup detaches
# whatever loop device is still backed by IMG.
attach () {
    dev=$(losetup -f --show "$1") || fail "losetup $1"
    cleanup_fn "losetup -j '$1' | cut -d: -f1 | xargs -r -n1 losetup -d"
}

# populate DIR: the awkward tree, the same bytes wherever it is made.
populate () {
    /usr/bin/python3 - "$1" <<'EOF'
import os, random, sys
d = sys.argv[1]
rnd = random.Random(11)
def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
os.makedirs(d + "/a/b/c/d/e/f/g")
write(d + "/a/b/c/d/e/f/g/deep", b"deep\n")
write(d + "/a/b/top", rnd.randbytes(3000), 0o600)
os.makedirs(d + "/short")
write(d + "/short/one", b"1\n")
os.symlink("one", d + "/short/link")
os.mkdir(d + "/short/sub")
for form, n in (("block", 50), ("leaf", 500), ("node", 20000)):
    os.mkdir(d + "/" + form)
    for i in range(n):
        name = "%s/%s/e%05d-%s" % (d, form, i, "x" * (i % 40))
        if i % 97 == 5:
            os.mkdir(name)
        elif i % 89 == 3:
            os.symlink("../" + form, name)
        else:
            write(name, b"%d\n" % i if i % 3 else b"")
# names of every length up to 255 bytes
os.mkdir(d + "/names")
for n in (1, 2, 3, 100, 200, 254, 255):
    write(d + "/names/" + "n" * n, b"%d" % n)
os.mkdir(d + "/names/" + "D" * 255)
write(d + "/names/" + "D" * 255 + "/" + "f" * 255, b"inside\n")
write(d + "/names/caf\u00e9-\u65e5\u672c", b"utf-8\n")
# holes: a file that starts and ends with one, data at odd offsets
with open(d + "/holes", "wb") as f:
    f.truncate(5 << 20)
    for off in (1 << 20, (1 << 20) + 4096 * 3 + 17, (4 << 20) - 1):
        f.seek(off)
        f.write(rnd.randbytes(5000))
with open(d + "/holes-tail", "wb") as f:
    f.write(rnd.randbytes(10000))
    f.truncate(100 << 20)
with open(d + "/sparse-only", "wb") as f:
    f.truncate(12345678)
# unwritten extents: preallocated space reads as zeros
with open(d + "/prealloc", "wb") as f:
    f.truncate(4 << 20)
    f.write(rnd.randbytes(65536))
    os.posix_fallocate(f.fileno(), 1 << 20, 1 << 20)
    f.seek(3 << 20)
    f.write(rnd.randbytes(4096))
    os.posix_fallocate(f.fileno(), 4 << 20, 1 << 20)
# empty files, odd modes
write(d + "/empty", b"")
write(d + "/setuid", b"#!/bin/sh\n", 0o4755)
write(d + "/setgid", b"x", 0o2750)
write(d + "/none", b"no access", 0o000)
os.mkdir(d + "/private")
os.chmod(d + "/private", 0o700)
# symlinks: inline, remote (longer than the inode holds), dangling,
# absolute, up to 1000 bytes (two blocks at 1 KiB)
os.symlink("/etc/passwd", d + "/abs")
os.symlink("a/b/top", d + "/rel")
os.symlink("nowhere/at/all", d + "/dangling")
for n in (60, 61, 200, 500, 1000):
    seg = "/seg%d" % n
    os.symlink((seg * (n // len(seg) + 1))[:n], d + "/link%d" % n)
# a big file written in small pieces alternating with another, each piece
# synced: on XFS (mounted with allocsize=4k) it gets thousands of extents,
# the btree format
big = open(d + "/big", "wb")
pad = open(d + "/pad", "wb")
for i in range(2304):
    for f in (big, pad):
        f.write(rnd.randbytes(4096))
        f.flush()
        os.fsync(f.fileno())
big.close()
pad.close()
os.unlink(d + "/pad")
EOF
}

# listing DIR: what xfsread find must print, made by the host's tools.
listing () {
    (
        cd "$1" || exit 1
        find . -mindepth 1 \( -type d -printf '%P\td\t-\t%m\t-\n' \) -o \
            \( -type l -printf '%P\tl\t%s\t%m\t%l\n' \) -o \
            \( -type f -printf '%P\tf\t%s\t%m\t\n' \) | sed 's|^|/|' >"$T/l1"
        find . -type f -print0 | xargs -0 sha256sum |
            sed 's|^\([0-9a-f]*\)  \./\(.*\)$|/\2\t\1|' >"$T/l2"
    )
    # The hash column of each file from the second list.
    awk -F '\t' 'NR == FNR { h[$1] = $2; next }
        $2 == "f" { $5 = h[$1] } { print }' OFS='\t' "$T/l2" "$T/l1" |
        LC_ALL=C sort
}

# proto DIR: a mkfs.xfs protofile that copies DIR (files, dirs, links).
proto () {
    /usr/bin/python3 - "$1" <<'EOF'
import os, stat, sys
def mode(st):
    m = st.st_mode
    return "%s%s%03o" % ("u" if m & stat.S_ISUID else "-",
                         "g" if m & stat.S_ISGID else "-", m & 0o777)
def walk(d, depth):
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        st = os.lstat(p)
        ind = " " * depth
        if stat.S_ISLNK(st.st_mode):
            print("%s%s l%s 0 0 %s" % (ind, n, mode(st), os.readlink(p)))
        elif stat.S_ISDIR(st.st_mode):
            print("%s%s d%s 0 0" % (ind, n, mode(st)))
            walk(p, depth + 1)
            print("%s$" % ind)
        else:
            print("%s%s -%s 0 0 %s" % (ind, n, mode(st), p))
print("/dummy\n0 0\nd--755 0 0")
walk(sys.argv[1], 1)
print("$")
EOF
}

# format IMG PATH: xfs_db's name for the data fork format of PATH in IMG.
format_of () {
    xfs_db -r -c "path $2" -c 'p core.format' "$1" |
        sed -n 's/^core.format = [0-9]* (\(.*\))$/\1/p'
}

# sbval IMG FIELD: a superblock field, as xfs_db prints it.
sbval () {
    xfs_db -r -c 'sb 0' -c "p $2" "$1" | awk '{print $3}'
}

# dir_form IMG PATH: the form of directory PATH (by where its blocks lie:
# a leaf block at 32 GiB of directory offset, a free index at 64 GiB).
dir_form () {
    f=$(format_of "$1" "$2")
    if [ "$f" != extents ] && [ "$f" != btree ]; then
        echo "$f"
        return
    fi
    bs=$(sbval "$1" blocksize)
    xfs_db -r -c "path $2" -c bmap "$1" |
        awk -v leaf=$(((32 << 30) / bs)) -v free=$(((64 << 30) / bs)) '
            $1 == "data" && $3 >= free { node = 1 }
            $1 == "data" && $3 >= leaf { l = 1 }
            END { print node ? "node" : l ? "leaf" : "block" }'
}

# check_forms NAME IMG: the file and directory forms the tree is meant to
# have (the directory forms need directory blocks of 4 KiB or more).
check_forms () {
    dirbs=$(( $(sbval "$2" blocksize) << $(sbval "$2" dirblklog) ))
    for p in /short:local /a/b/top:extents; do
        got=$(format_of "$2" "${p%:*}")
        [ "$got" = "${p#*:}" ] || fail "$1: ${p%:*} is in $got format"
    done
    if [ "$dirbs" -ge 4096 ]; then
        for p in /block:block /leaf:leaf /node:node; do
            got=$(dir_form "$2" "${p%:*}")
            [ "$got" = "${p#*:}" ] || fail "$1: ${p%:*} is in $got form"
        done
    fi
    echo "$1: directory blocks of $dirbs bytes, forms as meant"
}

# compare NAME XFSREAD-ARGS...: xfsread's listing against the host's.
compare () {
    name=$1
    shift
    start=$(date +%s)
    "$XFSREAD" -L "$@" find >"$T/got.raw" || fail "$name: xfsread find"
    LC_ALL=C sort "$T/got.raw" >"$T/got"
    if ! cmp -s "$T/want" "$T/got"; then
        diff "$T/want" "$T/got" | head -n 20
        fail "$name: xfsread's listing differs from the host's"
    fi
    secs=$(($(date +%s) - start))
    echo "$name: $(wc -l <"$T/got") entries identical (${secs}s)"
}

# The source tree and its listing.
populate "$T/src"
listing "$T/src" >"$T/want"
[ "$(wc -l <"$T/want")" -gt 20500 ] || fail "the listing is too short"
grep -q "^/node/e19999-" "$T/want" || fail "the node directory is incomplete"

# v5, mounted and filled by the kernel.
for opts in "" "-b size=1024 -n size=4096" "-i size=2048,nrext64=1"; do
    img=$T/v5.raw
    rm -f "$img"
    truncate -s 400M "$img"
    # shellcheck disable=SC2086 # $opts is several options
    mkfs.xfs -q -f $opts "$img" || fail "mkfs.xfs $opts"
    attach "$img"
    mount -o allocsize=4k "$dev" "$T/mnt" || fail "mount $opts"
    cleanup_fn "umount $T/mnt 2>/dev/null"
    populate "$T/mnt"
    touch -d '2040-02-03 04:05:06' "$T/mnt/a/b/top"
    chown 1234:5678 "$T/mnt/a/b/top"
    want_stat="f 3000 100600 1234 5678 $(stat -c %Y "$T/mnt/a/b/top")"
    umount "$T/mnt" || fail "umount"
    losetup -d "$dev"
    got=$(format_of "$img" /big)
    [ "$got" = btree ] || fail "v5 $opts: /big is in $got format"
    check_forms "v5 $opts" "$img"
    compare "v5 $opts" "$img"
    got=$("$XFSREAD" "$img" stat /a/b/top) || fail "xfsread stat"
    [ "$got" = "$want_stat" ] ||
        fail "v5 $opts: stat /a/b/top gives $got, the kernel said $want_stat"
    expect_error 1 "no such file" "$XFSREAD" "$img" stat /node/e99999
    expect_error 1 "xfs: inode [0-9]+ is not a directory" \
        "$XFSREAD" "$img" stat /a/b/top/x
    [ -n "$opts" ] || cp "$img" "$T/v5-4k.raw"
done

# v4 from protofiles.
proto "$T/src" >"$T/proto"
for opts in "-m crc=0 -n ftype=0" "-m crc=0 -b size=1024 -i size=512" \
            "-m crc=0 -i size=512 -n size=8192"; do
    img=$T/v4.raw
    rm -f "$img"
    truncate -s 500M "$img"
    # shellcheck disable=SC2086 # $opts is several options
    mkfs.xfs -q -f $opts -p "$T/proto" "$img" >/dev/null 2>&1 ||
        fail "mkfs.xfs $opts -p"
    check_forms "v4 $opts" "$img"
    compare "v4 $opts" "$img"
done

# Inside a partition: an MBR disk, a partition at 1 MiB.
truncate -s 402M "$T/disk.raw"
echo 'start=2048, size=821248, type=83' | sfdisk -q "$T/disk.raw" ||
    fail "sfdisk"
dd if="$T/v5.raw" of="$T/disk.raw" bs=1M seek=1 conv=notrunc,sparse \
    status=none || fail "dd"
compare "partition" -o 1048576 -s $((821248 * 512)) "$T/disk.raw"
if command -v qemu-img >/dev/null; then
    qemu-img convert -O qcow2 "$T/disk.raw" "$T/disk.qcow2" ||
        fail "qemu-img convert"
    compare "partition, qcow2" -f qcow2 -o 1048576 -s $((821248 * 512)) \
        "$T/disk.qcow2"
fi

# Corruptions, each refused with a message naming what is wrong.
cp "$T/v5-4k.raw" "$T/bad.raw"
xfs_db -x -c "path /a/b/top" -c "write -d core.magic 0" "$T/bad.raw" \
    >/dev/null 2>&1 || fail "xfs_db write core.magic"
expect_error 1 "xfs: inode [0-9]+: bad magic number" \
    "$XFSREAD" "$T/bad.raw" cat /a/b/top
expect_error 1 "bad magic number" "$XFSREAD" "$T/bad.raw" find

cp "$T/v5-4k.raw" "$T/bad.raw"
xfs_db -x -c "path /a/b/top" -c "write -d u3.bmx[0].startblock 99999999" \
    "$T/bad.raw" >/dev/null 2>&1 || fail "xfs_db write startblock"
expect_error 1 "xfs: inode [0-9]+: an extent at block 99999999\+1 is outside" \
    "$XFSREAD" "$T/bad.raw" cat /a/b/top

cp "$T/v5-4k.raw" "$T/bad.raw"
fsb=$(xfs_db -r -c "path /block" -c bmap "$T/bad.raw" |
    sed -n '1s/.*startblock \([0-9]*\) .*/\1/p')
byte=$(xfs_db -r -c "convert fsb $fsb byte" "$T/bad.raw" |
    sed -n 's/.*(\([0-9]*\)).*/\1/p')
[ -n "$byte" ] || fail "no byte offset for /block's first block"
printf '\000\000\000\000' |
    dd of="$T/bad.raw" bs=1 seek="$byte" conv=notrunc status=none
expect_error 1 "xfs: directory inode [0-9]+: block 0: bad magic number" \
    "$XFSREAD" "$T/bad.raw" find /block
expect_error 1 "bad magic number" "$XFSREAD" "$T/bad.raw" cat /block/e00001-x

# An incompatible feature bit nobody knows (the superblock CRC made right
# again, so that the feature is what is refused).
cp "$T/v5-4k.raw" "$T/bad.raw"
/usr/bin/python3 - "$T/bad.raw" <<'EOF'
import struct, sys
def crc32c(buf):
    crc = 0xffffffff
    for b in buf:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff
with open(sys.argv[1], "r+b") as f:
    sb = bytearray(f.read(65536))
    ss = struct.unpack_from(">H", sb, 102)[0]
    sb = sb[:ss]
    inc = struct.unpack_from(">I", sb, 216)[0]
    struct.pack_into(">I", sb, 216, inc | 0x40000000)
    struct.pack_into("<I", sb, 224, 0)
    struct.pack_into("<I", sb, 224, crc32c(sb))
    f.seek(0)
    f.write(sb)
EOF
expect_error 1 "xfs: .*: incompatible features 0x40000000 unknown" \
    "$XFSREAD" "$T/bad.raw" find
rm -f "$T/bad.raw"

echo ok
