#!/bin/sh
# The used-block map on whole guests: one GPT disk written full of non-zero
# garbage first, then partitions with an ESP (FAT32), ext4, XFS, NTFS,
# exFAT, swap and an LVM PV whose VG holds an ext4 LV (linear) and an XFS
# LV in two segments with free extents between them.  Each filesystem is
# made on its partition or LV (loop devices at offsets; mkfs without
# discard, which would punch the garbage out; the two-segment LV is
# assembled in a file and written back extent by extent: no device-mapper
# here) and filled with many files of varied sizes, some deleted, files
# appended in turn (fragmentation).  The checks use read-only loop
# devices.  Then:
#   1. `vmconvert map --json`: no warnings, nothing all used, each
#      filesystem's used bytes within one block of its own tools (dumpe2fs;
#      xfs_db freesp + AGFL; ntfscluster -i; fsck.fat -n -v; dump.exfat);
#   2. convert -O raw and -O qcow2 (the map): the used ranges are the
#      source's bytes, the rest zeros; in the output every filesystem
#      passes its checker (e2fsck -fn, xfs_repair -n, fsck.fat -n,
#      ntfsfix -n, fsck.exfat -n), every file has the source's sha256, the
#      swap area is found by blkid; the qcow2 is at most 1.15 x the used
#      bytes + 1 MiB, and under a third of the --all-blocks qcow2 (which
#      holds > 90% of the disk: the garbage is there);
#   3. send through a receiver: the received qcow2 equals the converted one;
#   4. the source image is unchanged.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../net/net.sh"
requires test "$(id -u)" -eq 0   # loop devices, mounts, FUSE
requires sgdisk --version
requires jq --version
requires losetup --version
requires qemu-img --version
requires mkswap --version
requires pvcreate --version
requires mkfs.ext4 -V
requires dumpe2fs -V
requires mkfs.xfs -V
requires xfs_db -V
requires xfs_repair -V
requires mkntfs --version
requires ntfs-3g --version
requires ntfscluster --version
requires ntfsfix --version
requires mkfs.fat --help
requires fsck.fat --help
requires mcopy --version
requires sh -c 'command -v mkfs.exfat && command -v fsck.exfat && command -v dump.exfat'
requires mount.exfat-fuse -V
requires /usr/bin/python3 --version
[ -c /dev/fuse ] || { echo "$0: skipped: needs /dev/fuse"; exit 77; }
# mkfs.xfs refuses filesystems under 300 MB unless it runs under xfstests.
XFS_SMALL="TEST_DEV=1 TEST_DIR=1 QA_CHECK_FS=1"
export MTOOLS_SKIP_CHECK=1
started=$(date +%s)

mnt=$T/mnt
mkdir "$mnt"
MiB=1048576

# Mounts: one mount point.  A FUSE daemon is found once, after its mount,
# by its command line naming our mount point (one grep over /proc), and
# killed by that PID if it outlives the umount.
FUSE_PID=""
unmount () {
    if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
    if [ -n "$FUSE_PID" ]; then
        kill "$FUSE_PID" 2>/dev/null || true
        FUSE_PID=""
    fi
}
# mount_at KIND DEV [ro]: mounts DEV on $mnt (KIND ext4, xfs, ntfs, exfat).
mount_at () {
    cleanup_fn unmount    # registered after the loop device: runs first
    _o=rw
    [ "${3:-}" = ro ] && _o=ro
    case $1 in
    ext4) mount -t ext4 -o "$_o" "$2" "$mnt" ;;
    xfs) mount -t xfs -o "$_o,nouuid" "$2" "$mnt" ;;
    ntfs) ntfs-3g -o "$_o" "$2" "$mnt" ;;
    exfat) mount.exfat-fuse -o "$_o" "$2" "$mnt" >/dev/null 2>&1 ;;
    esac || fail "mount $1 $2"
    mountpoint -q "$mnt" || fail "$2 not mounted"
    case $1 in
    ntfs|exfat)
        FUSE_PID=$(grep -l -a -z -x -F "$mnt" /proc/[0-9]*/cmdline 2>/dev/null |
            sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p' | head -n 1)
        [ -n "$FUSE_PID" ] || fail "no FUSE daemon for $mnt"
        ;;
    esac
}
# tree_sums: one sha256 line per file under $mnt (or DIR).
tree_sums () {
    (cd "${1:-$mnt}" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
}

# fill.py DIR SEED [one|two]: many files of varied sizes in three levels,
# every third deleted, six files appended to in turn (one deleted), then a
# large file written into the holes.  "one" only writes the files and
# prints the ones to delete; "two" only writes the large file (mtools).
cat >"$T/fill.py" <<'EOF'
import os, random, sys
d, seed = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "all"
rnd = random.Random(seed)
if mode in ("all", "one"):
    os.makedirs(os.path.join(d, "a/b/c"), exist_ok=True)
    names = []
    for i in range(240):
        sub = ["", "a", "a/b", "a/b/c"][i % 4]
        n = os.path.join(sub, "f%03d" % i)
        size = rnd.choice([0, 1, 100, 511, 1023, 4095, 4096, 4097, 20000,
                           65536, 150000, rnd.randrange(1, 600000)])
        with open(os.path.join(d, n), "wb") as f:
            f.write(rnd.randbytes(size))
        names.append(n)
    if mode == "one":
        for n in names[::3]:
            print(n)
        sys.exit(0)
    for n in names[::3]:
        os.unlink(os.path.join(d, n))
    os.makedirs(os.path.join(d, "frag"))
    fs = [open(os.path.join(d, "frag/g%d" % i), "wb") for i in range(6)]
    for r in range(40):
        for f in fs:
            f.write(rnd.randbytes(rnd.randrange(1, 20000)))
            f.flush()
            os.fsync(f.fileno())
    for f in fs:
        f.close()
    os.unlink(os.path.join(d, "frag/g2"))
with open(os.path.join(d, "big"), "wb") as f:
    for i in range(48):
        f.write(rnd.randbytes(65536))
        f.flush()
EOF
fill () {
    /usr/bin/python3 "$T/fill.py" "$@" || fail "fill $*"
}
step () {
    echo "[$(($(date +%s) - started)) s] $*"
}

# ---- The disk: garbage, then the GPT. ----
d=$T/disk.raw
# (Not mkdisk: its garbage has runs of zeros and holes, which a copy that
# skipped them would get right by chance.)
/usr/bin/python3 - "$d" <<'EOF' || fail "garbage"
import random, sys
rnd = random.Random(41)
with open(sys.argv[1], "wb") as f:
    for i in range(472):
        f.write(rnd.randbytes(1 << 20))
EOF
sgdisk -n1:2048:+48M -t1:ef00 -n2:0:+64M -t2:8300 -n3:0:+64M -t3:8300 \
    -n4:0:+64M -t4:0700 -n5:0:+48M -t5:0700 -n6:0:+16M -t6:8200 \
    -n7:0:+160M -t7:8e00 "$d" >/dev/null || fail "sgdisk"
pstart () { echo $(($(sgdisk -i"$1" "$d" | sed -n 's/^First sector: \([0-9]*\).*/\1/p') * 512)); }
psize () {
    _l=$(sgdisk -i"$1" "$d" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
    echo $(( (_l + 1) * 512 - $(pstart "$1") ))
}
for i in 1 2 3 4 5 6 7; do
    eval "off$i=$(pstart $i) size$i=$(psize $i)"
done

# 1: the ESP, FAT32 with 512-byte clusters, filled with mtools.
loop_at "$d" "$off1" "$size1"
mkfs.fat -F 32 -s 1 -n ESP "$LOOP" >/dev/null || fail "mkfs.fat"
losetup -d "$LOOP"
fat="$d@@$off1"
mkdir -p "$T/fatsrc/one" "$T/fatsrc/two"
fill "$T/fatsrc/one" 1 one >"$T/fatdel"
mcopy -s -Q -i "$fat" "$T/fatsrc/one/a" "$T/fatsrc/one"/f* ::/ || fail "mcopy"
while read -r n; do
    mdel -i "$fat" "::/$n" || fail "mdel $n"
done <"$T/fatdel"
fill "$T/fatsrc/two" 1 two
mcopy -Q -i "$fat" "$T/fatsrc/two/big" ::/ || fail "mcopy big"

# 2: ext4.
loop_at "$d" "$off2" "$size2"
mkfs.ext4 -q -F -E nodiscard -L guest-ext4 "$LOOP" >/dev/null 2>&1 || fail "mkfs.ext4"
mount_at ext4 "$LOOP"
fill "$mnt" 2
unmount
losetup -d "$LOOP"

# 3: XFS.
loop_at "$d" "$off3" "$size3"
env $XFS_SMALL mkfs.xfs -q -f -K -L guest-xfs "$LOOP" 2>/dev/null || fail "mkfs.xfs"
mount_at xfs "$LOOP"
fill "$mnt" 3
unmount
losetup -d "$LOOP"

# 4: NTFS through ntfs-3g.
loop_at "$d" "$off4" "$size4"
mkntfs -F -f -Q -q -L guest-ntfs "$LOOP" >/dev/null 2>&1 || fail "mkntfs"
mount_at ntfs "$LOOP"
fill "$mnt" 4
unmount
losetup -d "$LOOP"

# 5: exFAT through exfat-fuse.
loop_at "$d" "$off5" "$size5"
mkfs.exfat -L GUESTEX "$LOOP" >/dev/null || fail "mkfs.exfat"
mount_at exfat "$LOOP"
fill "$mnt" 5
unmount
losetup -d "$LOOP"

# 6: swap.
mkswap_at "$d" "$off6" "$size6" guest-swap
swap_uuid=$SWAP_UUID

# 7: LVM, with a private configuration (activation off).
export LVM_SYSTEM_DIR=$T/lvm
mkdir -p "$LVM_SYSTEM_DIR"
cat >"$LVM_SYSTEM_DIR/lvm.conf" <<'EOT'
devices { obtain_device_list_from_udev = 0 external_device_info_source = "none" use_devicesfile = 0 }
activation { udev_sync = 0 udev_rules = 0 }
global { activation = 0 }
backup { backup = 0 archive = 0 }
EOT
loop_at "$d" "$off7" "$size7"
PV=$LOOP
lvm () {
    _cmd=$1
    shift
    "$_cmd" --devices "$PV" "$@" 2>>"$T/lvm.log" ||
        { cat "$T/lvm.log" >&2; fail "$_cmd $*"; }
}
lvm pvcreate -ff -y "$PV" >/dev/null
lvm vgcreate -s 4M gvg "$PV" >/dev/null
lvm lvcreate -an --zero n -L 48M -n root gvg >/dev/null
lvm lvcreate -an --zero n -L 32M -n data gvg >/dev/null
lvm lvcreate -an --zero n -L 8M -n gap gvg >/dev/null
lvm lvextend -L +36M gvg/data >/dev/null
lvm lvremove -y gvg/gap >/dev/null
lvm lvs --segments --reportformat json --units b --nosuffix \
    -o lv_name,seg_start_pe,seg_pe_ranges gvg >"$T/lvs.json"
lvm pvs --reportformat json --units b --nosuffix -o pv_name,pe_start >"$T/pvs.json"
lvm vgs --reportformat json --units b --nosuffix -o vg_extent_size gvg >"$T/vgs.json"
losetup -d "$PV"
pe_base=$((off7 + $(jq -r '.report[0].pv[0].pe_start' "$T/pvs.json")))
extent=$(jq -r '.report[0].vg[0].vg_extent_size' "$T/vgs.json")
# segs LV: "LE_START PE_FIRST PE_LAST" per segment.
segs () {
    jq -r ".report[0].seg[] | select(.lv_name == \"$1\") |
           \"\(.seg_start_pe) \(.seg_pe_ranges | sub(\"^[^:]*:\"; \"\") | sub(\"-\"; \" \"))\"" \
        "$T/lvs.json"
}
[ "$(segs root | wc -l)" -eq 1 ] || fail "root LV: $(segs root)"
[ "$(segs data | wc -l)" -eq 2 ] || fail "data LV not in two segments: $(segs data)"
set -- $(segs root)
root_off=$((pe_base + $2 * extent)) root_size=$((($3 - $2 + 1) * extent))
# lvcopy out|in DISK FILE: the data LV's extents between DISK and FILE.
segs data >"$T/data.segs"
lvcopy () {
    /usr/bin/python3 - "$1" "$2" "$3" "$pe_base" "$extent" "$T/data.segs" <<'EOF' ||
import sys
way, disk, img, base, ext, segs = sys.argv[1:7]
base, ext = int(base), int(ext)
with open(disk, "rb" if way == "out" else "r+b") as d, \
     open(img, "wb" if way == "out" else "rb") as f:
    for l in open(segs):
        le, first, last = map(int, l.split())
        d.seek(base + first * ext)
        f.seek(le * ext)
        for i in range(last - first + 1):
            if way == "out":
                f.write(d.read(ext))
            else:
                d.write(f.read(ext))
EOF
        fail "lvcopy $*"
}

loop_at "$d" "$root_off" "$root_size"
mkfs.ext4 -q -F -E nodiscard -L lv-root "$LOOP" >/dev/null 2>&1 || fail "mkfs.ext4 LV"
mount_at ext4 "$LOOP"
fill "$mnt" 6
unmount
losetup -d "$LOOP"

lvcopy out "$d" "$T/data.img"     # the LV's garbage, assembled
data_size=$(stat -c %s "$T/data.img")
loop_at "$T/data.img" 0 "$data_size"
env $XFS_SMALL mkfs.xfs -q -f -K -L lv-data "$LOOP" 2>/dev/null || fail "mkfs.xfs LV"
mount_at xfs "$LOOP"
fill "$mnt" 7
unmount
losetup -d "$LOOP"
lvcopy in "$d" "$T/data.img"
rm -f "$T/data.img"
step built

# ---- The filesystems' own figures and checksums, on DISK. ----
# loop_ro FILE OFFSET SIZE: a read-only loop device (a read-only mount of
# XFS still writes its superblock: the checks must not change what they
# judge).
loop_ro () {
    cleanup_fn "detach_loops_of '$1'"
    LOOP=$(losetup -r -f --show -o "$2" --sizelimit "$3" "$1") ||
        fail "losetup -r $1 at $2"
}

# figures DISK: writes $T/NAME.want (used bytes by the tool, block size)
# and $T/NAME.sums (every file), and runs each checker, for every volume.
# Volumes: esp ext4 xfs ntfs exfat root data.
figures () {
    _d=$1 _w=$2
    # ESP: fsck.fat -n -v ("N files, X/Y clusters").
    loop_ro "$_d" "$off1" "$size1"
    fsck.fat -n -v "$LOOP" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "$_w: fsck.fat -n"; }
    losetup -d "$LOOP"
    cs=$(sed -n 's/^ *\([0-9]*\) bytes per cluster.*/\1/p' "$T/fsck")
    ds=$(sed -n 's/^Data area starts at byte \([0-9]*\).*/\1/p' "$T/fsck")
    x=$(sed -n 's/.* files, \([0-9]*\)\/\([0-9]*\) clusters.*/\1/p' "$T/fsck")
    y=$(sed -n 's/.* files, \([0-9]*\)\/\([0-9]*\) clusters.*/\2/p' "$T/fsck")
    [ -n "$cs" ] && [ -n "$ds" ] && [ -n "$x" ] && [ -n "$y" ] ||
        fail "$_w: cannot parse fsck.fat -v"
    echo "$((ds + x * cs + size1 - ds - y * cs)) $cs" >"$T/$_w.esp.want"
    rm -rf "$T/back"
    mkdir "$T/back"
    mcopy -s -Q -n -i "$_d@@$off1" '::/*' "$T/back/" || fail "$_w: mcopy out"
    tree_sums "$T/back" >"$T/$_w.esp.sums"
    rm -rf "$T/back"

    # ext4 (partition and LV): e2fsck -fn, dumpe2fs.
    for _v in "ext4 $off2 $size2" "root $root_off $root_size"; do
        set -- $_v
        loop_ro "$_d" "$2" "$3"
        e2fsck -fn "$LOOP" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "$_w $1: e2fsck -fn"; }
        dumpe2fs -h "$LOOP" >"$T/dump" 2>/dev/null || fail "$_w $1: dumpe2fs"
        bc=$(sed -n 's/^Block count: *//p' "$T/dump")
        fb=$(sed -n 's/^Free blocks: *//p' "$T/dump")
        bs=$(sed -n 's/^Block size: *//p' "$T/dump")
        echo "$(((bc - fb) * bs)) $bs" >"$T/$_w.$1.want"
        mount_at ext4 "$LOOP" ro
        tree_sums >"$T/$_w.$1.sums"
        unmount
        losetup -d "$LOOP"
    done

    # XFS (partition; the LV assembled in a file): xfs_repair -n, xfs_db.
    lvcopy out "$_d" "$T/data.img"
    for _v in "xfs $_d $off3 $size3" "data $T/data.img 0 $data_size"; do
        set -- $_v
        loop_ro "$2" "$3" "$4"
        xfs_repair -n "$LOOP" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "$_w $1: xfs_repair -n"; }
        xdb () { xfs_db -r "$@" "$LOOP" | awk '{print $3}'; }
        bs=$(xdb -c 'sb 0' -c 'p blocksize')
        dblocks=$(xdb -c 'sb 0' -c 'p dblocks')
        agcount=$(xdb -c 'sb 0' -c 'p agcount')
        free=$(xfs_db -r -c 'freesp -s' "$LOOP" | sed -n 's/^total free blocks //p')
        agfl=0 ag=0
        while [ "$ag" -lt "$agcount" ]; do
            agfl=$((agfl + $(xdb -c "agf $ag" -c 'p flcount')))
            ag=$((ag + 1))
        done
        echo "$(((dblocks - free + agfl) * bs)) $bs" >"$T/$_w.$1.want"
        mount_at xfs "$LOOP" ro
        tree_sums >"$T/$_w.$1.sums"
        unmount
        losetup -d "$LOOP"
    done
    rm -f "$T/data.img"

    # NTFS: ntfsfix -n, ntfscluster -i.
    loop_ro "$_d" "$off4" "$size4"
    ntfsfix -n "$LOOP" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "$_w: ntfsfix -n"; }
    free=$(ntfscluster -i "$LOOP" 2>/dev/null | sed -n 's/^bytes of free space *: *//p')
    cs=$(ntfscluster -i "$LOOP" 2>/dev/null | sed -n 's/^bytes per cluster *: *//p')
    [ -n "$free" ] && [ -n "$cs" ] || fail "$_w: ntfscluster -i"
    echo "$((size4 - free)) $cs" >"$T/$_w.ntfs.want"
    mount_at ntfs "$LOOP" ro
    tree_sums >"$T/$_w.ntfs.sums"
    unmount
    losetup -d "$LOOP"

    # exFAT: fsck.exfat -n, dump.exfat.
    loop_ro "$_d" "$off5" "$size5"
    fsck.exfat -n "$LOOP" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "$_w: fsck.exfat -n"; }
    dump.exfat "$LOOP" >"$T/dump" 2>&1 || fail "$_w: dump.exfat"
    f () { sed -n "s/^$1:[[:space:]]*\([0-9]*\).*/\1/p" "$T/dump"; }
    heap=$(f 'Cluster Heap Offset (sector offset)')
    bits=$(f 'Sector Size Bits')
    total=$(f 'Total Clusters')
    free=$(f 'Free Clusters')
    cs=$(f 'Cluster size')
    [ -n "$heap" ] && [ -n "$bits" ] && [ -n "$total" ] && [ -n "$free" ] &&
        [ -n "$cs" ] || fail "$_w: cannot parse dump.exfat"
    hb=$((heap << bits))
    echo "$((hb + (total - free) * cs + size5 - hb - total * cs)) $cs" >"$T/$_w.exfat.want"
    mount_at exfat "$LOOP" ro
    tree_sums >"$T/$_w.exfat.sums"
    unmount
    losetup -d "$LOOP"

    # swap: blkid.
    [ "$(blkid -p -O "$off6" -o value -s UUID "$_d")" = "$swap_uuid" ] ||
        fail "$_w: swap area not found by blkid"
}

hash_of "$d" >"$T/hash.before"
figures "$d" src
step "the tools' figures and checksums"
for v in esp ext4 xfs ntfs exfat root data; do
    [ "$(wc -l <"$T/src.$v.sums")" -gt 150 ] || fail "$v: too few files"
done

# ---- 1. The map against the tools. ----
"$VMCONVERT" map --json "$d" >"$T/map.json" 2>"$T/map.err" ||
    { cat "$T/map.err" >&2; fail "vmconvert map"; }
[ ! -s "$T/map.err" ] || fail "map warnings: $(cat "$T/map.err")"
jq -e '[.volumes[] | select(.all_used)] | length == 0' "$T/map.json" >/dev/null ||
    fail "all used: $(jq -c '[.volumes[] | select(.all_used) | [.name, .why]]' "$T/map.json")"
[ "$(jq '.warnings | length' "$T/map.json")" = 0 ] || fail "warnings in the JSON"
vol () {    # NAME FIELD: partition number or vg/lv
    case $1 in
    [0-9]) jq -r ".volumes[] | select(.kind == \"partition\" and .number == $1) | .$2" "$T/map.json" ;;
    *) jq -r ".volumes[] | select(.name == \"$1\") | .$2" "$T/map.json" ;;
    esac
}
total_fs=0
for v in "esp 1 vfat" "ext4 2 ext4" "xfs 3 xfs" "ntfs 4 ntfs" "exfat 5 exfat" \
         "root gvg/root ext4" "data gvg/data xfs"; do
    set -- $v
    [ "$(vol "$2" fs)" = "$3" ] || fail "$1: fs is $(vol "$2" fs), not $3"
    got=$(vol "$2" used_bytes)
    read -r want bs <"$T/src.$1.want"
    diff=$((got > want ? got - want : want - got))
    echo "$1 ($3): map $got bytes used, its tool $want (block $bs, diff $diff)"
    [ "$diff" -le "$bs" ] || fail "$1: map says $got used, its tool $want"
    total_fs=$((total_fs + got))
done
step "map checked"
[ "$(vol 6 fs)" = swap ] && [ "$(vol 6 uuid)" = "$swap_uuid" ] &&
    [ "$(vol 6 used_bytes)" = 4096 ] || fail "swap: $(vol 6 fs) $(vol 6 used_bytes)"
# Every partition's used ranges are in the disk's (what convert copies).
/usr/bin/python3 - "$T/map.json" <<'EOF' || fail "a volume's used range is not in the disk's"
import json, sys
m = json.load(open(sys.argv[1]))
disk = m["disks"][0]["used_ranges"]
for v in m["volumes"]:
    if v["kind"] != "partition" or v["fs"] == "LVM2_member":
        continue    # (a PV's ranges are its LVs')
    for s, e in v["used_ranges"]:
        s, e = v["start"] + s, v["start"] + e
        if not any(a <= s and e <= b for a, b in disk):
            print("%s: %d..%d not in the disk's used ranges" % (v["name"], s, e))
            sys.exit(1)
EOF
used=$(jq -r '.disks[0].used_bytes' "$T/map.json")
dsize=$(stat -c %s "$d")
echo "disk: $used of $dsize bytes used (filesystems: $total_fs)"

# ---- 2. convert, raw and qcow2. ----
"$VMCONVERT" convert -O raw "$d" "$T/out.raw" 2>"$T/c.err" ||
    { cat "$T/c.err" >&2; fail "convert -O raw"; }
[ ! -s "$T/c.err" ] || fail "convert printed: $(cat "$T/c.err")"
"$RANGES" copied "$T/map.json" "$d" "$T/out.raw" ||
    fail "used ranges not copied exactly, or unused ranges not zero"
step "converted to raw"
figures "$T/out.raw" out
step "checked the raw output"
for v in esp ext4 xfs ntfs exfat root data; do
    cmp -s "$T/src.$v.sums" "$T/out.$v.sums" ||
        { diff "$T/src.$v.sums" "$T/out.$v.sums" | head >&2; fail "$v: files differ in the output"; }
done

"$VMCONVERT" convert -O qcow2 "$d" "$T/map.qcow2" 2>"$T/c.err" ||
    { cat "$T/c.err" >&2; fail "convert -O qcow2"; }
[ ! -s "$T/c.err" ] || fail "convert printed: $(cat "$T/c.err")"
qemu-img compare -q -f raw -F qcow2 "$T/out.raw" "$T/map.qcow2" ||
    fail "the qcow2 differs from the raw output"
"$VMCONVERT" convert --all-blocks -O qcow2 "$d" "$T/all.qcow2" 2>/dev/null ||
    fail "convert --all-blocks"
step "converted to qcow2"
sm=$(stat -c %s "$T/map.qcow2") sa=$(stat -c %s "$T/all.qcow2")
rm -f "$T/all.qcow2"
echo "qcow2: $sm bytes with the map, $sa with --all-blocks; $used used"
# The bound: 15% for 64 KiB clusters around scattered 4 KiB ranges, plus
# 1 MiB of qcow2 metadata.
[ "$sm" -le $((used * 115 / 100 + MiB)) ] ||
    fail "qcow2 with the map is $sm bytes: more than 1.15 x $used + 1 MiB"
[ "$sa" -gt $((dsize * 9 / 10)) ] ||
    fail "the --all-blocks qcow2 is $sa bytes: the garbage was lost (discard?)"
[ "$sm" -lt $((sa / 3)) ] || fail "qcow2 with the map ($sm) not much smaller than all ($sa)"

# ---- 3. send. ----
start_receiver rx
send_job --token fleet --job guests "$d" 2>"$T/send.err" ||
    { cat "$T/send.err" >&2; fail "send"; }
grep -q verified "$T/send.err" || fail "the sender did not verify"
stop_receiver
[ "$(job_state guests)" = "done" ] || fail "job state $(job_state guests)"
f=$RX_DIR/guests/$(jq -r '.disks[0].file' "$RX_DIR/guests/job.json")
qemu-img compare -q -f qcow2 -F qcow2 "$T/map.qcow2" "$f" ||
    fail "the received disk differs from the converted one"

step sent
# ---- 4. The source is unchanged. ----
hash_of "$d" | diff - "$T/hash.before" >/dev/null || fail "the source changed"
echo "ok ($(($(date +%s) - started)) s)"
