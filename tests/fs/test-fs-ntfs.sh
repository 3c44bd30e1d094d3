#!/bin/sh
# NTFS: the used clusters are $Bitmap's.  Built by mkntfs over garbage,
# filled through ntfs-3g (many files, deletions, fragmentation, a root
# directory big enough for INDX blocks).  Judged by ntfs-3g's tools: used
# bytes agree with ntfscluster's free space within one cluster; label and
# UUID with blkid; a copy with every unused byte overwritten passes
# ntfsfix -n and, mounted read-only by ntfs-3g, has every file identical.
# Unsafe states are all in use, each confirmed by ntfs-3g's own verdict: a
# dirty volume (ntfsinfo shows the flag; ntfsfix -d clears it), an
# unclean $LogFile (ntfs-3g says "unclean"), a hibernated hiberfil.sys
# (ntfs-3g says hibernated), a broken MFT record fixup (ntfsinfo fails).
. "$(dirname "$0")/../functions.sh"
requires mkntfs --version
requires ntfs-3g --version
requires ntfscluster --version
requires ntfsfix --version
requires /usr/bin/python3 --version
[ -e /dev/fuse ] || { echo "$0: skipped: needs: /dev/fuse"; exit 77; }

patch=$(dirname "$0")/ntfs-patch.py
mkdir "$T/mnt"
cleanup_fn "mountpoint -q '$T/mnt' && umount '$T/mnt'"

fsused () {
    "$TOOLS/fsused" "$1" >"$T/out" || fail "fsused $1"
}
expect_all_used () {    # IMG WHY-PATTERN
    fsused "$1"
    grep -qx 'type ntfs' "$T/out" || fail "$1: not NTFS: $(cat "$T/out")"
    grep -qx 'all_used 1' "$T/out" || fail "$1: not all used ($2)"
    grep -q "^why .*$2" "$T/out" || fail "$1: reason: $(grep ^why "$T/out")"
}
expect_not_all_used () {
    fsused "$1"
    grep -qx 'all_used 0' "$T/out" || fail "$1: all used: $(grep ^why "$T/out")"
}
mnt () {
    ntfs-3g "$@" "$T/mnt" || fail "ntfs-3g $*"
}
umnt () {
    umount "$T/mnt" || fail "umount"
}
# tree_sums DIR: one sha256 line per file, paths relative to DIR.
tree_sums () {
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
}

# check_image IMG CLUSTER: map, compare, wipe, check, compare files.
check_image () {
    img=$1
    size=$(stat -c %s "$img")
    fsused "$img"
    grep -qx 'type ntfs' "$T/out" || fail "$img: not recognised as ntfs"
    grep -qx 'all_used 0' "$T/out" || fail "$img: all used: $(grep ^why "$T/out")"
    grep -qx "block_size $2" "$T/out" || fail "$img: block size: $(grep ^block_size "$T/out")"
    used=$(sed -n 's/^used_bytes //p' "$T/out")
    free=$(ntfscluster -i "$img" 2>/dev/null | sed -n 's/^bytes of free space *: *//p')
    [ -n "$free" ] || fail "$img: no free space figure from ntfscluster"
    want=$((size - free))
    diff=$((used - want))
    [ "${diff#-}" -lt "$2" ] ||
        fail "$img: used $used bytes, ntfscluster says $want (size $size - free $free)"
    echo "$img: used $used, ntfscluster $want, volume $size"
    [ "$(sed -n 's/^uuid //p' "$T/out")" = "$(blkid -o value -s UUID "$img")" ] ||
        fail "$img: uuid differs from blkid's"
    [ "$(sed -n 's/^label //p' "$T/out")" = "$(blkid -o value -s LABEL "$img")" ] ||
        fail "$img: label differs from blkid's"

    cp "$img" "$T/wiped.raw"
    wiped=$(/usr/bin/python3 "$(dirname "$0")/wipe-unused.py" "$T/wiped.raw" "$T/out")
    [ "$wiped" -gt $((size / 4)) ] || fail "$img: only $wiped bytes unused?"
    ntfsfix -n "$T/wiped.raw" >"$T/fix.out" 2>&1 ||
        { cat "$T/fix.out"; fail "$img: ntfsfix -n fails after the wipe"; }
    mnt -o ro "$img"
    tree_sums "$T/mnt" >"$T/sums.src"
    umnt
    mnt -o ro "$T/wiped.raw"
    tree_sums "$T/mnt" >"$T/sums.wiped"
    umnt
    [ "$(wc -l <"$T/sums.src")" -gt 10 ] || fail "too few files"
    cmp -s "$T/sums.src" "$T/sums.wiped" ||
        { diff "$T/sums.src" "$T/sums.wiped" | head; fail "$img: files differ after the wipe"; }
    rm -f "$T/wiped.raw"
}

# fill DIR SEED: many files of varied sizes, deletions, fragmentation.
fill () {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import os, random, sys
d, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
def data(n):
    return rnd.randbytes(n)
# A root directory large enough to need INDX blocks.
for i in range(150):
    with open(os.path.join(d, "root-%03d.txt" % i), "wb") as f:
        f.write(data(rnd.choice([0, 10, 700, 3000, 20000])))
os.makedirs(os.path.join(d, "a/b/c"))
os.makedirs(os.path.join(d, "frag"))
sizes = [0, 1, 100, 900, 1500, 4095, 4096, 4097, 65536, 300000, 2000000]
for i in range(300):
    sub = rnd.choice(["a", "a/b", "a/b/c"])
    with open(os.path.join(d, sub, "f%04d" % i), "wb") as f:
        f.write(data(rnd.choice(sizes)))
# Fragmentation: appends interleaved across files, then deletions.
fs = [open(os.path.join(d, "frag", "g%02d" % i), "wb") for i in range(20)]
for r in range(30):
    for f in fs:
        f.write(data(rnd.choice([4096, 8192, 12000])))
        f.flush()
for f in fs:
    f.close()
for i in range(0, 300, 3):
    for sub in ["a", "a/b", "a/b/c"]:
        p = os.path.join(d, sub, "f%04d" % i)
        if os.path.exists(p):
            os.remove(p)
for i in range(0, 20, 2):
    os.remove(os.path.join(d, "frag", "g%02d" % i))
for i in range(0, 150, 4):
    os.remove(os.path.join(d, "root-%03d.txt" % i))
with open(os.path.join(d, "after-deletes"), "wb") as f:
    f.write(data(3000000))
EOF
}

# 1. The common case: 4 KiB clusters.
"$TOOLS/mkdisk" -s 11 -d 100 192M "$T/a.raw"
mkntfs -F -f -Q -q -L ntfslabel "$T/a.raw" >/dev/null 2>&1 || fail "mkntfs"
mnt "$T/a.raw"
fill "$T/mnt" 1
umnt
check_image "$T/a.raw" 4096

# 2. 512-byte clusters (1 KiB MFT records span two clusters).
"$TOOLS/mkdisk" -s 12 -d 100 160M "$T/b.raw"
mkntfs -F -f -Q -q -c 512 "$T/b.raw" >/dev/null 2>&1 || fail "mkntfs -c 512"
mnt "$T/b.raw"
fill "$T/mnt" 2
umnt
check_image "$T/b.raw" 512

# 3. Dirty: ntfsinfo sees the flag; ntfsfix -d clears it.
cp "$T/a.raw" "$T/d.raw"
/usr/bin/python3 "$patch" "$T/d.raw" dirty
ntfsinfo -m -f "$T/d.raw" 2>/dev/null | grep -q 'Volume Flags: 0x0001 DIRTY' ||
    fail "dirty flag not set as ntfsinfo sees it"
expect_all_used "$T/d.raw" dirty
ntfsfix -d "$T/d.raw" >/dev/null 2>&1 || fail "ntfsfix -d"
expect_not_all_used "$T/d.raw"

# 4. $LogFile: ntfs-3g calls a volume whose restart area is not clean
# "unclean" (and resets its journal when mounting it read-write); a clean
# restart area it mounts without a word.
cp "$T/a.raw" "$T/l.raw"
/usr/bin/python3 "$patch" "$T/l.raw" logfile 0
expect_all_used "$T/l.raw" 'LogFile not clean'
mnt "$T/l.raw" 2>"$T/err"
umnt
grep -qi 'unclean' "$T/err" || fail "ntfs-3g did not see the unclean \$LogFile: $(cat "$T/err")"
/usr/bin/python3 "$patch" "$T/l.raw" logfile 2
expect_not_all_used "$T/l.raw"
mnt "$T/l.raw" 2>"$T/err"
umnt
! grep -qi 'unclean' "$T/err" || fail "ntfs-3g: $(cat "$T/err")"

# 5. hiberfil.sys: "wake" is a resumed one; "hibr" a hibernated Windows,
# which ntfs-3g refuses to mount read-write (it falls back to read-only).
cp "$T/a.raw" "$T/h.raw"
mnt "$T/h.raw"
{ printf 'wake'; head -c 200000 /dev/urandom; } >"$T/mnt/hiberfil.sys"
umnt
expect_not_all_used "$T/h.raw"
mnt "$T/h.raw"
printf 'hibr' | dd of="$T/mnt/hiberfil.sys" conv=notrunc status=none
umnt
mnt "$T/h.raw" 2>"$T/err"    # falls back to read-only
umnt
grep -qi 'hibernated' "$T/err" || fail "ntfs-3g did not see the hibernation: $(cat "$T/err")"
expect_all_used "$T/h.raw" 'hibernation'

# 6. A broken fixup in $Bitmap's record: ntfsinfo cannot read it either.
cp "$T/a.raw" "$T/f.raw"
/usr/bin/python3 "$patch" "$T/f.raw" fixup 6
if ntfsinfo -i 6 "$T/f.raw" >/dev/null 2>&1; then
    fail "ntfsinfo reads a record with a broken fixup"
fi
expect_all_used "$T/f.raw" 'fixup'

# 7. A truncated volume: the filesystem is larger than it.
head -c 64M "$T/a.raw" >"$T/t.raw"
expect_all_used "$T/t.raw" 'larger than its volume'
echo ok
