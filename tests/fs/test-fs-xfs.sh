#!/bin/sh
# XFS (v5 with CRCs, and v4 without), 4 AGs, over garbage, with many files
# of varied sizes, deletions and fragmentation:
#   - the used bytes agree exactly with xfs_db's own count: dblocks minus
#     the free blocks "freesp -s" reports, plus the AGFL blocks (freesp
#     counts the AGFL as free; we count it used); sb_fdblocks is printed
#     only (it also counts the free-space trees' own blocks);
#   - a copy with every byte outside the used ranges overwritten passes
#     xfs_repair -n and mounts with every file's content unchanged;
#   - the same, without mounting (mkfs.xfs -p fills them), for block sizes
#     512, 1K, 64K, 4K sectors, 2 and 3 AGs;
#   - a dirty log (xfs_io shutdown while mounted; xfs_repair -n refuses it
#     too) makes it all used, as do a corrupted AGF or free-space block, an
#     external log and a realtime section.
. "$(dirname "$0")/../functions.sh"
requires mkfs.xfs -V
requires xfs_db -V
requires xfs_repair -V
requires xfs_io -V
requires losetup --version
requires /usr/bin/python3 --version
requires test "$(id -u)" -eq 0   # loop devices and mounts

here=$(cd "$(dirname "$0")" && pwd)
mkdir "$T/mnt"

# attach IMG: $dev becomes a loop device for IMG.  The cleanup detaches
# whatever loop device is still backed by IMG (not a device number, which
# another process may have been given since).  Not called in a subshell,
# so that the registration stays.
attach () {
    dev=$(losetup -f --show "$1") || fail "losetup $1"
    cleanup_fn "losetup -j '$1' | cut -d: -f1 | xargs -r -n1 losetup -d"
}

mount_it () {
    mount "$@" "$T/mnt" || fail "mount $*"
    cleanup_fn "umount $T/mnt 2>/dev/null"
}

# populate DIR: files of many sizes, deletions, interleaved appends.
populate () {
    /usr/bin/python3 - "$1" <<'EOF'
import os, random, sys
d = sys.argv[1]
rnd = random.Random(7)
os.makedirs(d + "/a/b", exist_ok=True)
names = []
for i in range(400):
    size = rnd.choice([0, 1, 100, 4095, 4096, 4097, 50000, 300000,
                       rnd.randrange(1, 2 << 20)])
    n = "%s/%s/f%03d" % (d, rnd.choice(["", "a", "a/b"]), i)
    with open(n, "wb") as f:
        f.write(rnd.randbytes(size))
    names.append(n)
for n in rnd.sample(names, 150):
    os.unlink(n)
# fragmentation: append to several files in turn
fs = [open("%s/frag%d" % (d, i), "wb") for i in range(6)]
for r in range(200):
    for f in fs:
        f.write(rnd.randbytes(rnd.randrange(1, 20000)))
        f.flush()
        os.fsync(f.fileno())
for f in fs:
    f.close()
os.unlink(d + "/frag2")
# thousands of free extents: a two-level free-space tree
os.makedirs(d + "/many")
for i in range(6000):
    with open("%s/many/%05d" % (d, i), "wb") as f:
        f.write(rnd.randbytes(4096))
os.sync()
for i in range(0, 6000, 2):
    os.unlink("%s/many/%05d" % (d, i))
EOF
}

# proto DIR: a mkfs.xfs protofile that copies the regular files of DIR.
proto () {
    /usr/bin/python3 - "$1" <<'EOF'
import os, sys
def walk(d, depth):
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        if os.path.isdir(p):
            print("%s%s d--755 0 0" % (" " * depth, n))
            walk(p, depth + 1)
            print("%s$" % (" " * depth))
        else:
            print("%s%s ---644 0 0 %s" % (" " * depth, n, p))
print("/dummy\n0 0\nd--755 0 0")
walk(sys.argv[1], 1)
print("$")
EOF
}

# check_fs IMG MKFS-OPTIONS...: the whole check on one fresh filesystem.
# A kernel without v4 support cannot mount a v4 filesystem: then it is
# filled by mkfs.xfs from a protofile (no deletions or fragmentation) and
# the wiped copy is judged by xfs_repair -n alone.
check_fs () {
    img=$1
    shift
    "$TOOLS/mkdisk" -s 11 -d 100 320M "$img"
    mkfs.xfs -q -f -d agcount=4 "$@" "$img" 2>/dev/null ||
        fail "mkfs.xfs $*"
    attach "$img"
    if mount "$dev" "$T/mnt" 2>/dev/null; then
        cleanup_fn "umount $T/mnt 2>/dev/null"
        mounted=1
        populate "$T/mnt"
        (cd "$T/mnt" && find . -type f | sort | xargs -d '\n' sha256sum) \
            >"$T/sums"
        umount "$T/mnt" || fail "umount"
    else
        echo "$*: the kernel cannot mount it: filled by mkfs.xfs -p"
        mounted=0
        rm -rf "$T/src"
        mkdir "$T/src"
        populate "$T/src"
        proto "$T/src" >"$T/proto"
        losetup -d "$dev"
        "$TOOLS/mkdisk" -s 11 -d 100 320M "$img"
        mkfs.xfs -q -f -d agcount=4 "$@" -p "$T/proto" "$img" 2>/dev/null ||
            fail "mkfs.xfs -p $*"
        attach "$img"
    fi
    losetup -d "$dev"

    "$TOOLS/fsused" "$img" >"$T/out" || fail "fsused"
    grep -qx 'type xfs' "$T/out" || fail "not recognised as xfs"
    grep -qx 'all_used 0' "$T/out" || fail "all used: $(grep why "$T/out")"
    used=$(sed -n 's/^used_bytes //p' "$T/out")

    # xfs_db's figures.
    bs=$(xfs_db -r -c 'sb 0' -c 'p blocksize' "$img" | awk '{print $3}')
    dblocks=$(xfs_db -r -c 'sb 0' -c 'p dblocks' "$img" | awk '{print $3}')
    fdblocks=$(xfs_db -r -c 'sb 0' -c 'p fdblocks' "$img" | awk '{print $3}')
    free=$(xfs_db -r -c 'freesp -s' "$img" |
        sed -n 's/^total free blocks //p')
    agfl=0
    for ag in 0 1 2 3; do
        n=$(xfs_db -r -c "agf $ag" -c 'p flcount' "$img" | awk '{print $3}')
        agfl=$((agfl + n))
    done
    levels=0
    for ag in 0 1 2 3; do
        n=$(xfs_db -r -c "agf $ag" -c 'p bnolevel' "$img" | awk '{print $3}')
        [ "$n" -gt "$levels" ] && levels=$n
    done
    if [ "$mounted" = 1 ] && [ "$levels" -lt 2 ]; then
        fail "no AG has a two-level bnobt: the test does not test nodes"
    fi
    want=$(( (dblocks - free + agfl) * bs ))
    diff=$((used > want ? used - want : want - used))
    echo "$*: used $used, xfs_db: (dblocks $dblocks - freesp $free +" \
        "agfl $agfl) x $bs = $want, sb fdblocks $fdblocks, bnobt levels" \
        "up to $levels"
    [ "$diff" -le "$bs" ] || fail "used $used differs from xfs_db's $want"
    [ "$used" -lt $((dblocks * bs / 2)) ] || fail "too much used: $used"

    # Wipe everything outside the ranges; the filesystem must not notice.
    cp "$img" "$T/wiped.raw"
    wiped=$(/usr/bin/python3 "$here/wipe-unused.py" "$T/wiped.raw" "$T/out")
    [ "$wiped" -gt 100000000 ] || fail "only $wiped bytes wiped"
    xfs_repair -n "$T/wiped.raw" >"$T/repair.log" 2>&1 ||
        { cat "$T/repair.log"; fail "xfs_repair -n on the wiped copy"; }
    if [ "$mounted" = 1 ]; then
        attach "$T/wiped.raw"
        mount_it -o ro "$dev"
        (cd "$T/mnt" && sha256sum -c --quiet "$T/sums") ||
            fail "file contents differ on the wiped copy"
        umount "$T/mnt"
        losetup -d "$dev"
    fi
    rm -f "$T/wiped.raw"
}

check_fs "$T/v5.raw"
check_fs "$T/v4.raw" -m crc=0

# A log rewritten by xfs_repair -L (unmount record, blank blocks, then the
# previous cycle) is clean for xfs_repair -n, and so for us.
cp "$T/v5.raw" "$T/rl.raw"
xfs_repair -L "$T/rl.raw" >/dev/null 2>&1 || fail "xfs_repair -L"
xfs_repair -n "$T/rl.raw" >/dev/null 2>&1 || fail "xfs_repair -n after -L"
"$TOOLS/fsused" "$T/rl.raw" >"$T/out" || fail "fsused"
grep -qx 'all_used 0' "$T/out" ||
    fail "log rewritten by xfs_repair -L: $(grep why "$T/out")"
rm -f "$T/rl.raw"

# Other geometries, filled by mkfs.xfs -p (no mount needed): block sizes
# 512 (v4 only), 1 KiB and 64 KiB, 4 KiB sectors, odd AG counts.  Used
# bytes against xfs_db, the wiped copy against xfs_repair -n.
rm -rf "$T/small"
mkdir -p "$T/small/d"
/usr/bin/python3 - "$T/small" <<'EOF'
import random, sys
rnd = random.Random(3)
for i in range(60):
    with open("%s/%s%02d" % (sys.argv[1], rnd.choice(["", "d/"]), i), "wb") as f:
        f.write(rnd.randbytes(rnd.choice([0, 1, 511, 513, 4096, 70000, 1 << 20])))
EOF
proto "$T/small" >"$T/proto"
for opts in "-b size=1024" "-b size=65536" "-m crc=0 -b size=512" \
            "-s size=4096" "-d agcount=3" "-m crc=0 -d agcount=2"; do
    img=$T/geo.raw
    rm -f "$img"
    "$TOOLS/mkdisk" -s 12 -d 100 320M "$img"
    # shellcheck disable=SC2086 # $opts is several options
    mkfs.xfs -q -f $opts -p "$T/proto" "$img" 2>/dev/null ||
        fail "mkfs.xfs $opts"
    "$TOOLS/fsused" "$img" >"$T/out" || fail "fsused"
    grep -qx 'all_used 0' "$T/out" || fail "$opts: $(grep why "$T/out")"
    used=$(sed -n 's/^used_bytes //p' "$T/out")
    bs=$(xfs_db -r -c 'sb 0' -c 'p blocksize' "$img" | awk '{print $3}')
    dblocks=$(xfs_db -r -c 'sb 0' -c 'p dblocks' "$img" | awk '{print $3}')
    agcount=$(xfs_db -r -c 'sb 0' -c 'p agcount' "$img" | awk '{print $3}')
    free=$(xfs_db -r -c 'freesp -s' "$img" | sed -n 's/^total free blocks //p')
    agfl=0
    ag=0
    while [ "$ag" -lt "$agcount" ]; do
        n=$(xfs_db -r -c "agf $ag" -c 'p flcount' "$img" | awk '{print $3}')
        agfl=$((agfl + n))
        ag=$((ag + 1))
    done
    want=$(( (dblocks - free + agfl) * bs ))
    echo "$opts: used $used, xfs_db $want (block $bs, $agcount AGs)"
    [ "$used" -eq "$want" ] || fail "$opts: used $used, xfs_db says $want"
    /usr/bin/python3 "$here/wipe-unused.py" "$img" "$T/out" >/dev/null
    xfs_repair -n "$img" >"$T/repair.log" 2>&1 ||
        { cat "$T/repair.log"; fail "$opts: xfs_repair -n on the wiped copy"; }
done
rm -f "$T/geo.raw"

# Corruption: the AGF of AG 1 (its free-block count), on both versions.
for v in v4 v5; do
    cp "$T/$v.raw" "$T/bad.raw"
    agblocks=$(xfs_db -r -c 'sb 0' -c 'p agblocks' "$T/bad.raw" | awk '{print $3}')
    bs=$(xfs_db -r -c 'sb 0' -c 'p blocksize' "$T/bad.raw" | awk '{print $3}')
    ss=$(xfs_db -r -c 'sb 0' -c 'p sectsize' "$T/bad.raw" | awk '{print $3}')
    printf '\001' | dd of="$T/bad.raw" bs=1 conv=notrunc status=none \
        seek=$((agblocks * bs + ss + 54))
    "$TOOLS/fsused" "$T/bad.raw" >"$T/out" || fail "fsused"
    grep -qx 'all_used 1' "$T/out" || fail "$v: corrupted AGF not all used"
    grep -q '^why XFS AGF 1' "$T/out" || fail "$v: why: $(grep why "$T/out")"

    # A free extent's length in the bnobt root of AG 2.
    cp "$T/$v.raw" "$T/bad.raw"
    root=$(xfs_db -r -c 'agf 2' -c 'p bnoroot' "$T/bad.raw" | awk '{print $3}')
    hdr=16
    [ "$v" = v5 ] && hdr=56
    printf '\177' | dd of="$T/bad.raw" bs=1 conv=notrunc status=none \
        seek=$(( (2 * agblocks + root) * bs + hdr + 4))
    "$TOOLS/fsused" "$T/bad.raw" >"$T/out" || fail "fsused"
    grep -qx 'all_used 1' "$T/out" || fail "$v: corrupted bnobt not all used"
    grep -q '^why XFS AG 2' "$T/out" || fail "$v: why: $(grep why "$T/out")"
done

# An external log (its cleanness cannot be seen from the data volume) and
# a realtime section (not mapped): all used, each with its reason.
truncate -s 320M "$T/e.raw" "$T/log.raw" "$T/rt.raw"
mkfs.xfs -q -f -l logdev="$T/log.raw",size=64m "$T/e.raw" ||
    fail "mkfs.xfs external log"
"$TOOLS/fsused" "$T/e.raw" >"$T/out" || fail "fsused"
grep -qx 'all_used 1' "$T/out" && grep -q '^why XFS external log' "$T/out" ||
    fail "external log: $(grep -E 'all_used|why' "$T/out")"
mkfs.xfs -q -f -r rtdev="$T/rt.raw" "$T/e.raw" || fail "mkfs.xfs realtime"
"$TOOLS/fsused" "$T/e.raw" >"$T/out" || fail "fsused"
grep -qx 'all_used 1' "$T/out" && grep -q '^why XFS has a realtime' "$T/out" ||
    fail "realtime: $(grep -E 'all_used|why' "$T/out")"
rm -f "$T/e.raw" "$T/log.raw" "$T/rt.raw"

# A dirty log: shut the filesystem down while files are being written.
cp "$T/v5.raw" "$T/dirty.raw"
rm -f "$T/v4.raw"
attach "$T/dirty.raw"
mount_it "$dev"
mkdir "$T/mnt/new"
for i in 1 2 3 4 5; do
    head -c 100000 /dev/urandom >"$T/mnt/new/$i"
done
rm "$T/mnt/f00"* 2>/dev/null || true
sync
touch "$T/mnt/new/last"
xfs_io -x -c 'shutdown' "$T/mnt" || fail "xfs_io shutdown"
umount "$T/mnt"
losetup -d "$dev"
if xfs_repair -n "$T/dirty.raw" >/dev/null 2>&1; then
    fail "xfs_repair -n does not see a dirty log: the test is void"
fi
"$TOOLS/fsused" "$T/dirty.raw" >"$T/out" || fail "fsused"
grep -qx 'all_used 1' "$T/out" || fail "dirty log not all used"
grep -q '^why XFS log is dirty' "$T/out" || fail "why: $(grep why "$T/out")"
echo ok
