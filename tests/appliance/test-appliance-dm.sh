#!/bin/sh
# appliance/dm.c in the appliance's kernel (tests/appliance/dmtest.c as
# the boot program): a disk with an MBR, an ext4 partition and a partition
# of random data is set read-only (BLKROSET), snapshotted with the COW in
# RAM, its partitions mapped with dm-linear on the snapshot, the ext4 one
# mounted read-write and changed (files written, renamed, deleted).
#   1. A COW large enough: every step passes, the second partition reads
#      the same through its linear device as here, the snapshot differs
#      from the origin and, copied to a scratch disk, holds a clean ext4
#      with exactly the changes (e2fsck, debugfs); the origin is unchanged
#      (sha256, e2fsck) and writing it in the guest failed with EPERM.
#   2. A COW of 1 MiB against 8 MiB of writes: the snapshot is reported
#      invalid and cannot be read; the origin is unchanged.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/appliance/lib.sh
. "$(dirname "$0")/lib.sh"
requires sfdisk --version
requires mkfs.ext4 -V
requires e2fsck -V
requires debugfs -V

DMTEST_INITRD=$APPLIANCE_DIR/initrd-dmtest.img
if [ ! -f "$DMTEST_INITRD" ]; then
    echo "$0: skipped: needs $DMTEST_INITRD (make appliance-test-images)"
    exit 77
fi

MiB=1048576
disk=$T/disk.raw
# 32 MiB: partition 1 (ext4) at 1 MiB, 24 MiB; partition 2 (random data)
# at 25 MiB, 4 MiB; random data after it.
truncate -s $((32 * MiB)) "$disk"
sfdisk -q "$disk" <<'EOF'
label: dos
label-id: 0x0badcafe
start=2048, size=49152, type=83
start=51200, size=8192, type=83
EOF
mkdir -p "$T/root/etc"
echo "hello from the origin" >"$T/root/hello.txt"
echo "/dev/sda1 / ext4 defaults 0 1" >"$T/root/etc/fstab"
mkfs.ext4 -q -F -b 4096 -d "$T/root" "$T/p1.img" 24M
dd if="$T/p1.img" of="$disk" bs=$MiB seek=1 conv=notrunc status=none
head -c $((7 * MiB)) /dev/urandom |
    dd of="$disk" bs=$MiB seek=25 conv=notrunc status=none
[ "$(stat -c %s "$disk")" -eq $((32 * MiB)) ] || fail "the test disk grew"
origin_sha=$(sha256sum "$disk" | cut -d' ' -f1)
p2_sha=$(dd if="$disk" bs=$MiB skip=25 count=4 status=none | sha256sum |
    cut -d' ' -f1)

# part FILE N OUT: partition N of the test disk layout, out of FILE.
part () {
    case $2 in
    1) dd if="$1" of="$3" bs=$MiB skip=1 count=24 status=none ;;
    2) dd if="$1" of="$3" bs=$MiB skip=25 count=4 status=none ;;
    esac
}

origin_unchanged () {
    [ "$(sha256sum "$disk" | cut -d' ' -f1)" = "$origin_sha" ] ||
        fail "$1: the origin disk was written"
    part "$disk" 1 "$T/origin-p1.img"
    e2fsck -fn "$T/origin-p1.img" >"$T/e2fsck-origin.out" 2>&1 || {
        cat "$T/e2fsck-origin.out" >&2
        fail "$1: e2fsck of the origin's partition 1"
    }
}

# hash_line BOOT WHAT: the hex the guest printed as DMTEST-HASH WHAT.
hash_line () {
    sed -n "s/^\[[ 0-9.]*\] DMTEST-HASH $2 \([0-9a-f]\{64\}\)\$/\1/p" \
        "$T/$1.log" | tail -n 1
}

# 1. Enough COW.
truncate -s $((32 * MiB)) "$T/scratch.raw"
boot dm-ok --kernel "$VMLINUZ" --initrd "$DMTEST_INITRD" \
    --append "$KERNEL_PARAMS dmtest.cow=$((64 * MiB)) dmtest.write=8" \
    --disk "$disk,if=virtio,serial=origin" \
    --disk "$T/scratch.raw,if=virtio,serial=scratch" \
    --fail 'DMTEST-FAIL' --expect 'DMTEST-OK snap_create' \
    --expect 'DMTEST-OK write' --expect 'DMTEST-HASH snapshot' \
    --expect 'DMTEST-DONE failures=0' --expect 'reboot: Power down'
for step in version blkroset 'origin unwritable' 'snap_create twice' \
    'dm_create twice' linear dm_status striped 'loop ro' \
    'rw linear' mount write 'remove busy' umount \
    usage scratch snap_remove clean; do
    console dm-ok "DMTEST-OK $step\$"
done
console dm-ok 'DMTEST-INFO writing /dev/vda fails: Operation not permitted'
console dm-ok 'DMTEST-INFO a second snapshot vmc-snap: .*exists: a snapshot of that name'
console dm-ok 'DMTEST-INFO a second device vmc-snap: .*a device named vmc-snap exists already'
console dm-ok 'DMTEST-INFO removing mounted vmc-snap-p1: .*in use'
console dm-ok 'DMTEST-INFO hello.txt: hello from the origin'
console dm-ok 'DMTEST-INFO a read-write linear on the origin: .*/dev/vda is read-only'
console dm-ok 'DMTEST-PART 1 start=2048 sectors=49152'
console dm-ok 'DMTEST-PART 2 start=51200 sectors=8192'
console dm-ok "DMTEST-SNAP used=0 total=$((64 * MiB)) invalid=0"
grep -a 'DMTEST-SNAP\|DMTEST-INFO' "$T/dm-ok.log" | sed 's/^\[[ 0-9.]*\] /  /'

[ "$(hash_line dm-ok origin)" = "$origin_sha" ] ||
    fail "dm-ok: the guest read another origin: $(hash_line dm-ok origin)"
[ "$(hash_line dm-ok p2)" = "$p2_sha" ] ||
    fail "dm-ok: partition 2 through dm-linear is not partition 2"
# 4 KiB chunks, from the first half of partition 2 then the second.
striped_sha=$(python3 - "$disk" <<'EOF'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    f.seek(25 << 20)
    p2 = f.read(4 << 20)
h = hashlib.sha256()
for i in range(0, 2 << 20, 4096):
    h.update(p2[i:i + 4096])
    h.update(p2[(2 << 20) + i:(2 << 20) + i + 4096])
print(h.hexdigest())
EOF
)
[ "$(hash_line dm-ok striped)" = "$striped_sha" ] ||
    fail "dm-ok: the striped device is not the interleave of its stripes"
snap_sha=$(hash_line dm-ok snapshot)
[ -n "$snap_sha" ] || fail "dm-ok: no hash of the snapshot"
[ "$snap_sha" != "$origin_sha" ] ||
    fail "dm-ok: the snapshot is the origin: the writes went nowhere"
origin_unchanged dm-ok

# The scratch disk holds what the guest read from the snapshot.
[ "$(sha256sum "$T/scratch.raw" | cut -d' ' -f1)" = "$snap_sha" ] ||
    fail "dm-ok: the scratch copy is not the snapshot the guest hashed"
part "$T/scratch.raw" 1 "$T/snap-p1.img"
e2fsck -fn "$T/snap-p1.img" >"$T/e2fsck-snap.out" 2>&1 || {
    cat "$T/e2fsck-snap.out" >&2
    fail "dm-ok: e2fsck of the snapshot's partition 1"
}
debugfs -R 'cat /hello.txt' "$T/snap-p1.img" 2>/dev/null >"$T/hello.txt"
[ "$(cat "$T/hello.txt")" = "changed in the snapshot" ] ||
    fail "dm-ok: hello.txt in the snapshot: $(cat "$T/hello.txt")"
debugfs -R 'cat /hello.old' "$T/snap-p1.img" 2>/dev/null >"$T/hello.old"
cmp -s "$T/hello.old" "$T/root/hello.txt" ||
    fail "dm-ok: hello.old in the snapshot is not the origin's hello.txt"
debugfs -R 'cat /keep.txt' "$T/snap-p1.img" 2>/dev/null >"$T/keep.txt"
awk 'BEGIN { for (i = 0; i < 20000; i++) print "vmconvert dm test line " i }' \
    >"$T/keep.want"
cmp -s "$T/keep.txt" "$T/keep.want" || fail "dm-ok: keep.txt differs"
debugfs -R 'ls -l /' "$T/snap-p1.img" 2>/dev/null >"$T/ls.out"
grep -Eq ' 4194304 .* big2$' "$T/ls.out" ||
    fail "dm-ok: no 4 MiB big2 in the snapshot: $(cat "$T/ls.out")"
! grep -q ' big1$' "$T/ls.out" || fail "dm-ok: big1 was not deleted"
debugfs -R 'ls -l /' "$T/origin-p1.img" 2>/dev/null >"$T/ls-origin.out"
! grep -q 'big2\|keep.txt' "$T/ls-origin.out" ||
    fail "dm-ok: the origin's filesystem has the snapshot's files"
part "$T/scratch.raw" 2 "$T/snap-p2.img"
[ "$(sha256sum <"$T/snap-p2.img" | cut -d' ' -f1)" = "$p2_sha" ] ||
    fail "dm-ok: the snapshot's partition 2 changed"

# 2. A COW too small for the writes.
boot dm-full --kernel "$VMLINUZ" --initrd "$DMTEST_INITRD" \
    --append "$KERNEL_PARAMS dmtest.cow=$MiB dmtest.write=8 dmtest.expect=invalid" \
    --disk "$disk,if=virtio,serial=origin" \
    --fail 'DMTEST-FAIL' --expect 'DMTEST-OK snap_create' \
    --expect 'DMTEST-SNAP used=0 total=0 invalid=1' \
    --expect 'DMTEST-OK invalid' \
    --expect 'DMTEST-DONE failures=0' --expect 'reboot: Power down'
console dm-full 'DMTEST-INFO reading the invalid snapshot: Input/output error'
console dm-full 'DMTEST-OK clean$'
grep -a 'DMTEST-SNAP\|DMTEST-INFO' "$T/dm-full.log" | sed 's/^\[[ 0-9.]*\] /  /'
[ "$(hash_line dm-full origin)" = "$origin_sha" ] ||
    fail "dm-full: the guest read another origin"
origin_unchanged dm-full
echo "ok"
