#!/bin/sh
# vmconvert inspect on synthetic guests (tests/fixup/lib.sh), each judged
# against how it was built:
#   - RHEL 9: GPT, an ESP (FAT) with shim and no fallback path, /boot on
#     ext4 with an xz initramfs and BLS entries, the root on XFS;
#   - Debian 12: MBR, device names in fstab, two kernels whose initrds are
#     an early cpio and a gzip'ed or a zstd main one, ENI sourcing
#     interfaces.d, dpkg's status with one tool installed and one removed;
#   - the root on an LVM LV (made without activation, filled with dd);
#   - refusals (exit 3 and the problem's code): an unclean root, a
#     hibernated swap, two roots, no kernel, no virtio_blk, a full /boot,
#     no initramfs tool;
#   - hostile guests: an os-release symlink loop, a huge fstab, broken
#     initrds: an answer within 30 s, exit 0 or 3, never a crash.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/lib.sh"
requires jq --version
requires sfdisk --version
requires mkfs.ext4 -V
requires mkfs.xfs -V
requires mformat --version
requires cpio --version
requires xz --version
requires zstd --version
requires debugfs -V
requires pvcreate --version
requires losetup --version
requires test "$(id -u)" -eq 0   # the XFS root is filled through a mount

# inspect OUT IMG... [-- OPTS]: vmconvert inspect --json, at most 30 s;
# the exit status into $st, the JSON into OUT (which must parse).
inspect () {
    _out=$1
    shift
    set +e
    timeout 30 "$VMCONVERT" inspect --json "$@" >"$_out" 2>"$_out.err"
    st=$?
    set -e
    [ "$st" -eq 0 ] || [ "$st" -eq 3 ] ||
        { cat "$_out.err" >&2; fail "inspect $*: exit status $st"; }
    jq -e . "$_out" >/dev/null || fail "inspect $*: output is not JSON"
}
# q JSON FILTER: jq -r on the inspection.
q () { jq -r "$2" "$1"; }
# expect JSON FILTER VALUE
expect () {
    _got=$(q "$1" "$2")
    [ "$_got" = "$3" ] || fail "$1: $2 is '$_got', expected '$3'"
}
# has_problem JSON CODE: the problem CODE is among the errors.
has_problem () {
    [ "$(q "$1" "[.problems[] | select(.severity == \"error\" and .code == \"$2\")] | length")" -ge 1 ] ||
        fail "$1: no error $2 in: $(jq -c .problems "$1")"
}

# ---- a. RHEL 9 -----------------------------------------------------------

mkdir "$T/rroot" "$T/rboot"
rhel_tree "$T/rroot"
rhel_boot_tree "$T/rboot"
rhel_esp "$T/esp.img"
ext4_img "$T/boot.img" 64M "$R_BOOT_UUID" boot "$T/rboot"
xfs_img "$T/xroot.img" "$R_ROOT_UUID" root "$T/rroot"
R=$T/rhel.raw
truncate -s 500M "$R"
cat <<EOF | sfdisk -q "$R" || fail "sfdisk rhel"
label: gpt
start=1MiB, size=32MiB, type=$GPT_ESP, name="EFI System Partition"
start=33MiB, size=64MiB, type=$GPT_LINUX
start=97MiB, size=400MiB, type=$GPT_LINUX
EOF
put_at "$R" 1 "$T/esp.img"
put_at "$R" 33 "$T/boot.img"
put_at "$R" 97 "$T/xroot.img"
rm -f "$T/esp.img" "$T/boot.img" "$T/xroot.img"

inspect "$T/a.json" "$R"
[ "$st" -eq 0 ] || { jq -c .problems "$T/a.json" >&2; fail "RHEL: exit $st"; }
expect "$T/a.json" .root "$R p3"
expect "$T/a.json" '.filesystems[] | select(.volume == "'"$R"' p3") | .type' xfs
expect "$T/a.json" '.filesystems[] | select(.volume == "'"$R"' p3") | .uuid' "$R_ROOT_UUID"
expect "$T/a.json" .os.distro rhel
expect "$T/a.json" .os.version 9.4
expect "$T/a.json" .os.arch x86_64
expect "$T/a.json" .os.package_format rpm
expect "$T/a.json" .os.hostname "$R_HOST"
expect "$T/a.json" .boot.firmware uefi
expect "$T/a.json" .boot.esp /boot/efi
expect "$T/a.json" .boot.efi_loader /boot/efi/EFI/redhat/shimx64.efi
expect "$T/a.json" .boot.efi_fallback false
expect "$T/a.json" .boot.bootloader grub2
expect "$T/a.json" .boot.config /boot/grub2/grub.cfg
expect "$T/a.json" .boot.initramfs_tool dracut
expect "$T/a.json" '.kernels | length' 1
expect "$T/a.json" '.kernels[0].version' "$R_KVER"
expect "$T/a.json" '.kernels[0].initrd' "/boot/initramfs-$R_KVER.img"
expect "$T/a.json" '.kernels[0].initrd_size' \
    "$(stat -c %s "$T/rboot/initramfs-$R_KVER.img")"
expect "$T/a.json" '.kernels[0].modules' true
expect "$T/a.json" '.kernels[0].drivers.virtio_blk' module
expect "$T/a.json" '.kernels[0].drivers.hv_vmbus' absent
expect "$T/a.json" '.kernels[0].initrd_drivers.virtio_blk' true
expect "$T/a.json" '.kernels[0].initrd_drivers.virtio_net' false
expect "$T/a.json" '.kernels[0].initrd_drivers.vmxnet3' false
expect "$T/a.json" '[.fstab[] | select(.by_device)] | length' 0
expect "$T/a.json" '.fstab[] | select(.file == "/boot") | .volume' "$R p2"
expect "$T/a.json" '.fstab[] | select(.file == "/boot/efi") | .volume' "$R p1"
expect "$T/a.json" '.filesystems[] | select(.volume == "'"$R"' p1") | .uuid' "$R_ESP_UUID"
expect "$T/a.json" '.network[] | select(.name == "ens192") | .mac' "$R_MAC1"
expect "$T/a.json" '.network[] | select(.name == "ens192") | .tool' ifcfg
expect "$T/a.json" '.network[] | select(.name == "ens192") | .addresses[0]' 198.51.100.20/24
expect "$T/a.json" '.network[] | select(.name == "ens224") | .mac' "$R_MAC2"
expect "$T/a.json" '.network[] | select(.name == "ens224") | .tool' networkmanager
expect "$T/a.json" '.network[] | select(.name == "ens224") | .dhcp4' true
expect "$T/a.json" '[.hypervisor_tools[].kind] | join(",")' vmware
expect "$T/a.json" '.hypervisor_tools[0].evidence' /usr/bin/vmtoolsd
expect "$T/a.json" .convertible true
echo "a. RHEL 9: ok"

# ---- b. Debian 12 --------------------------------------------------------

mkdir "$T/droot"
debian_tree "$T/droot"
D=$T/debian.raw
debian_disk "$D" "$T/droot"
inspect "$T/b.json" "$D"
[ "$st" -eq 0 ] || { jq -c .problems "$T/b.json" >&2; fail "Debian: exit $st"; }
expect "$T/b.json" .root "$D p1"
expect "$T/b.json" .os.distro debian
expect "$T/b.json" .os.version 12
expect "$T/b.json" .os.package_format dpkg
expect "$T/b.json" .boot.firmware bios
expect "$T/b.json" .boot.bootloader grub2
expect "$T/b.json" .boot.config /boot/grub/grub.cfg
expect "$T/b.json" .boot.cmdline "root=/dev/sda1 ro quiet"
expect "$T/b.json" .boot.initramfs_tool initramfs-tools
expect "$T/b.json" '.fstab | length' 3
expect "$T/b.json" '.fstab[] | select(.file == "/") | [.spec, .volume, .by_device] | join(" ")' \
    "/dev/sda1 $D p1 true"
expect "$T/b.json" '.fstab[] | select(.type == "swap") | [.spec, .volume, .by_device] | join(" ")' \
    "/dev/sda2 $D p2 true"
expect "$T/b.json" '.fstab[] | select(.file == "/media/cdrom0") | .volume' null
expect "$T/b.json" '.filesystems[] | select(.volume == "'"$D"' p1") | .uuid' "$D_ROOT_UUID"
expect "$T/b.json" '.filesystems[] | select(.volume == "'"$D"' p2") | [.type, .uuid] | join(" ")' \
    "swap $D_SWAP_UUID"
# Newest kernel first; both initrds read past their early cpio.
expect "$T/b.json" '[.kernels[].version] | join(" ")' "$D_KVER $D_KVER2"
for k in 0 1; do
    expect "$T/b.json" ".kernels[$k].initrd_note" null
    expect "$T/b.json" ".kernels[$k].drivers.virtio_blk" module
    expect "$T/b.json" "[.kernels[$k].initrd_drivers | to_entries[] | select(.value) | .key] | join(\" \")" \
        "vmw_pvscsi vmxnet3"
    expect "$T/b.json" ".kernels[$k].initrd_drivers.virtio_blk" false
done
expect "$T/b.json" '.kernels[1].initrd' "/boot/initrd.img-$D_KVER2"
expect "$T/b.json" '[.hypervisor_tools[] | .package] | join(" ")' open-vm-tools
expect "$T/b.json" '.hypervisor_tools[0].kind' vmware
expect "$T/b.json" '[.network[] | .name] | join(" ")' ens3
expect "$T/b.json" '.network[0].source' /etc/network/interfaces.d/ens3
expect "$T/b.json" '.network[0].tool' ifupdown
expect "$T/b.json" '.network[0].addresses | join(" ")' "$D_ADDR"
expect "$T/b.json" '.network[0].gateway4' 192.0.2.1
echo "b. Debian 12: ok"

# variant NAME: a copy of the Debian tree in $T/NAME to change; then
# variant_disk NAME makes $T/NAME.raw of it.
variant () { rm -rf "${T:?}/$1"; cp -a "$T/droot" "$T/$1"; }
variant_disk () { debian_disk "$T/$1.raw" "$T/$1"; rm -rf "${T:?}/$1"; }
# Tools installed but on hold, or marked for removal and not yet removed
# (dpkg's status: WANT FLAG STATE; only STATE says whether the files are
# there), and one half-purged (not-installed): the first two count.
variant held
cat >"$T/held/var/lib/dpkg/status" <<'EOF'
Package: open-vm-tools
Status: hold ok installed
Version: 2:12.2.0-1+deb12u2

Package: hyperv-daemons
Status: deinstall ok installed
Version: 6.1.115-1

Package: xe-guest-utilities
Status: purge ok not-installed
Version: 7.20.2-0.1
EOF
variant_disk held
inspect "$T/held.json" "$T/held.raw"
expect "$T/held.json" '[.hypervisor_tools[] | .package] | sort | join(" ")' \
    "hyperv-daemons open-vm-tools"
echo "b. dpkg states: ok"


# ---- c. the root on LVM --------------------------------------------------

# A PV in partition 2 (p1 is /boot), VG vg0 with LVs swap and root, made
# by the LVM tools with activation off; root's ext4 is written into the
# LV's extents, where `lvs` says they are.
mkdir "$T/lroot" "$T/lboot"
debian_tree "$T/lroot"
mv "$T/lroot/boot/"* "$T/lboot/"
L_ROOT_UUID=4c5d6e7f-8091-4a2b-bc3d-4e5f60718293
L_BOOT_UUID=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
cat >"$T/lroot/etc/fstab" <<EOF
/dev/mapper/vg0-root /     ext4 errors=remount-ro 0 1
UUID=$L_BOOT_UUID /boot ext4 defaults 0 2
/dev/mapper/vg0-swap none  swap sw 0 0
EOF
sed -i 's,root=/dev/sda1,root=/dev/mapper/vg0-root,' "$T/lboot/grub/grub.cfg"
LV=$T/lvm.raw
truncate -s 180M "$LV"
printf 'label: dos\nstart=1MiB, size=64MiB, type=83\nstart=65MiB, size=112MiB, type=8e\n' |
    sfdisk -q "$LV" || fail "sfdisk lvm"
ext4_img "$T/lboot.img" 64M "$L_BOOT_UUID" boot "$T/lboot"
put_at "$LV" 1 "$T/lboot.img"
export LVM_SYSTEM_DIR=$T/lvmconf
mkdir -p "$LVM_SYSTEM_DIR"
cat >"$LVM_SYSTEM_DIR/lvm.conf" <<'EOF'
devices { obtain_device_list_from_udev = 0 external_device_info_source = "none" use_devicesfile = 0 }
activation { udev_sync = 0 udev_rules = 0 }
global { activation = 0 }
backup { backup = 0 archive = 0 }
EOF
cleanup_fn "losetup -j '$LV' | cut -d: -f1 | xargs -r -n1 losetup -d"
PV=$(losetup -f --show -o $((65 << 20)) --sizelimit $((112 << 20)) "$LV") ||
    fail "losetup"
lvm_ () {
    _c=$1
    shift
    "$_c" --devices "$PV" "$@" >>"$T/lvm.log" 2>&1 || { cat "$T/lvm.log" >&2; fail "$_c $*"; }
}
lvm_ pvcreate -ff -y "$PV"
lvm_ vgcreate -s 4M vg0 "$PV"
lvm_ lvcreate -an -Zn -Wn -n swap -L 16M vg0
lvm_ lvcreate -an -Zn -Wn -n root -L 80M vg0
pe_start=$(pvs --devices "$PV" --noheadings --units b --nosuffix -o pe_start "$PV" 2>/dev/null | tr -d ' ')
seg () { lvs --devices "$PV" --noheadings -o seg_pe_ranges "vg0/$1" 2>/dev/null | tr -d ' '; }
first () { _s=$(seg "$1"); _s=${_s#*:}; echo "${_s%-*}"; }
[ "$(seg root | grep -c .)" -eq 1 ] || fail "root LV in several segments: $(seg root)"
root_off=$((65 * 1048576 + pe_start + $(first root) * 4194304))
swap_off=$((65 * 1048576 + pe_start + $(first swap) * 4194304))
losetup -d "$PV"
ext4_img "$T/lroot.img" 80M "$L_ROOT_UUID" root "$T/lroot"
dd if="$T/lroot.img" of="$LV" bs=1M seek=$((root_off / 1048576)) conv=notrunc,sparse status=none
[ $((root_off % 1048576)) -eq 0 ] || fail "root LV not MiB-aligned"
swap_img "$T/lswap.img" 16M "$D_SWAP_UUID"
dd if="$T/lswap.img" of="$LV" bs=1M seek=$((swap_off / 1048576)) conv=notrunc,sparse status=none
rm -f "$T/lroot.img" "$T/lswap.img" "$T/lboot.img"

inspect "$T/c.json" "$LV"
[ "$st" -eq 0 ] || { jq -c .problems "$T/c.json" >&2; fail "LVM: exit $st"; }
expect "$T/c.json" .root vg0/root
expect "$T/c.json" '.filesystems[] | select(.volume == "vg0/root") | .uuid' "$L_ROOT_UUID"
expect "$T/c.json" '.fstab[] | select(.file == "/") | [.volume, .by_device] | join(" ")' "vg0/root false"
expect "$T/c.json" '.fstab[] | select(.type == "swap") | .volume' vg0/swap
expect "$T/c.json" '.fstab[] | select(.file == "/boot") | .volume' "$LV p1"
expect "$T/c.json" '.kernels[0].version' "$D_KVER"
expect "$T/c.json" '.boot.cmdline' "root=/dev/mapper/vg0-root ro quiet"
echo "c. root on LVM: ok"

# ---- d. refusals ---------------------------------------------------------

# refused NAME CODE [OPTS]: inspect exits 3 with error CODE.
refused () {
    _n=$1 _c=$2
    shift 2
    inspect "$T/$_n.json" "$@" "$T/$_n.raw"
    [ "$st" -eq 3 ] || fail "$_n: exit status $st, expected 3"
    has_problem "$T/$_n.json" "$_c"
    expect "$T/$_n.json" .convertible false
}

# The root not cleanly unmounted (the journal needs recovery).
variant unclean
debian_disk "$T/unclean.raw" "$T/unclean"
dd if="$T/unclean.raw" of="$T/unclean.p1" bs=1M skip=1 count=64 status=none
debugfs -w -R "feature needs_recovery" "$T/unclean.p1" >/dev/null 2>&1 ||
    fail "debugfs needs_recovery"
put_at "$T/unclean.raw" 1 "$T/unclean.p1"
rm -rf "$T/unclean.p1" "$T/unclean"
refused unclean unclean-fs

# A hibernated guest: the swap's signature replaced by a suspend one at
# the end of its first page.
cp "$D" "$T/hib.raw"
printf 'S1SUSPEND\000' | dd of="$T/hib.raw" bs=1 seek=$((65 * 1048576 + 4096 - 10)) \
    conv=notrunc status=none
refused hib hibernated

# Two roots: the Debian root twice (the second with its own UUID).
TWO=$T/two.raw
truncate -s 140M "$TWO"
printf 'label: dos\nstart=1MiB, size=64MiB, type=83\nstart=65MiB, size=64MiB, type=83\n' |
    sfdisk -q "$TWO" || fail "sfdisk two"
ext4_img "$T/r1.img" 64M "$D_ROOT_UUID" root "$T/droot"
ext4_img "$T/r2.img" 64M 77777777-6666-4555-8444-333333333333 root2 "$T/droot"
put_at "$TWO" 1 "$T/r1.img"
put_at "$TWO" 65 "$T/r2.img"
rm -f "$T/r1.img" "$T/r2.img"
refused two several-roots
expect "$T/two.json" '.roots | join(",")' "$TWO p1,$TWO p2"
expect "$T/two.json" .root null
inspect "$T/two-first.json" --root first "$TWO"
[ "$st" -eq 0 ] || { jq -c .problems "$T/two-first.json" >&2; fail "--root first: exit $st"; }
expect "$T/two-first.json" .root "$TWO p1"
inspect "$T/two-2.json" --root "UUID=77777777-6666-4555-8444-333333333333" "$TWO"
expect "$T/two-2.json" .root "$TWO p2"
inspect "$T/two-bad.json" --root "LABEL=nothere" "$TWO"
[ "$st" -eq 3 ] || fail "--root LABEL=nothere: exit $st"
has_problem "$T/two-bad.json" root-not-found

# No kernel at all.
variant nokernel
rm -f "$T/nokernel/boot/vmlinuz-"*
variant_disk nokernel
refused nokernel no-kernel

# Kernels whose modules lack virtio_blk (and no other kernel has it).
variant nodrv
for k in "$D_KVER" "$D_KVER2"; do
    sed -i '/virtio_blk/d' "$T/nodrv/usr/lib/modules/$k/modules.dep"
done
variant_disk nodrv
refused nodrv no-driver-kernel
grep -q "lacks virtio_blk" "$T/nodrv.json" || fail "no-driver-kernel does not name virtio_blk"

# No initramfs tool.
variant notool
rm -f "$T/notool/usr/sbin/update-initramfs"
variant_disk notool
refused notool initramfs-tool

# /boot too full for a new initramfs: a 24 MiB /boot holding a 12 MiB
# initrd (a new one needs that and 16 MiB more).
variant full
mkdir "$T/fullboot"
mv "$T/full/boot/"* "$T/fullboot/"
rm "$T/fullboot/vmlinuz-$D_KVER2" "$T/fullboot/initrd.img-$D_KVER2"
head -c $((12 << 20)) /dev/zero | tr '\0' 'x' >>"$T/fullboot/initrd.img-$D_KVER"
sed -i '/swap/d' "$T/full/etc/fstab"
printf 'UUID=%s /boot ext4 defaults 0 2\n' 12345678-9abc-4def-8123-456789abcdef >>"$T/full/etc/fstab"
FULL=$T/full.raw
truncate -s 100M "$FULL"
printf 'label: dos\nstart=1MiB, size=64MiB, type=83\nstart=65MiB, size=24MiB, type=83\n' |
    sfdisk -q "$FULL" || fail "sfdisk full"
ext4_img "$T/fr.img" 64M "$D_ROOT_UUID" root "$T/full"
ext4_img "$T/fb.img" 24M 12345678-9abc-4def-8123-456789abcdef boot "$T/fullboot"
put_at "$FULL" 1 "$T/fr.img"
put_at "$FULL" 65 "$T/fb.img"
rm -rf "$T/fr.img" "$T/fb.img" "$T/full" "$T/fullboot"
refused full boot-space
expect "$T/full.json" '.fstab[] | select(.file == "/boot") | .volume' "$FULL p2"
echo "d. refusals: ok"

# ---- e. hostile guests ---------------------------------------------------

# hostile NAME: inspect answers within 30 s with exit 0 or 3 and JSON
# (inspect checks that), and the kernels' initrd notes are printed.
hostile () {
    inspect "$T/$1.json" "$T/$1.raw"
    expect "$T/$1.json" .root "$T/$1.raw p1"
}

# /etc/os-release a symlink loop; /usr/lib/os-release absent: the release
# comes from debian_version.
variant loop
rm "$T/loop/etc/os-release"
ln -s os-release.d "$T/loop/etc/os-release"
ln -s os-release "$T/loop/etc/os-release.d"
variant_disk loop
hostile loop
expect "$T/loop.json" .os.distro debian
expect "$T/loop.json" .os.version 12.8

# An fstab of 10000 lines, every 50th of 4000 bytes, after the real
# entries: those still count (and only INSP_MAX_FSTAB entries are kept).
# Then one of 40 MB: too big to read, which refuses the guest (the fixups
# would have to rewrite it).
bigfstab () {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import sys
path, every = sys.argv[1], int(sys.argv[2])
with open(path, "a") as f:
    for i in range(10000):
        if i % every == 0:
            f.write("/dev/sdb%d /" % i + "x" * 4000 + " ext4 defaults 0 0\n")
        elif i % 3 == 1:
            f.write("#" + "y" * 30 + "\n")
        else:
            f.write("tmpfs /tmp/%d tmpfs defaults 0 0\n" % i)
EOF
}
variant bigfstab
bigfstab "$T/bigfstab/etc/fstab" 50
variant_disk bigfstab
hostile bigfstab
expect "$T/bigfstab.json" '.fstab[0] | [.spec, .volume] | join(" ")' "/dev/sda1 $T/bigfstab.raw p1"
expect "$T/bigfstab.json" '.fstab | length' 64
variant hugefstab
bigfstab "$T/hugefstab/etc/fstab" 1
variant_disk hugefstab
hostile hugefstab
expect "$T/hugefstab.json" '.problems[] | select(.code == "fstab-unreadable") | [.severity, (.message | test("/etc/fstab"))] | map(tostring) | join(" ")' "error true"
expect "$T/hugefstab.json" .convertible false

# Broken initrds: the gzip'ed one cut in the middle of its main archive,
# the zstd one replaced by garbage.  Their drivers are unknown (null),
# with a note; the guest is refused only for what pre-flight says.
variant badinitrd
f=$T/badinitrd/boot/initrd.img-$D_KVER
head -c $(($(stat -c %s "$f") - 40)) "$f" >"$f.cut"
mv "$f.cut" "$f"
/usr/bin/python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(5).randbytes(70000))' \
    >"$T/badinitrd/boot/initrd.img-$D_KVER2"
variant_disk badinitrd
hostile badinitrd
for k in 0 1; do
    expect "$T/badinitrd.json" ".kernels[$k].initrd_drivers.virtio_blk" null
    [ "$(q "$T/badinitrd.json" ".kernels[$k].initrd_note")" != null ] ||
        fail "badinitrd: kernel $k has no note"
done

# A cpio header claiming a 4 GiB file that is not there, and an initrd
# of 64 zstd frames each decompressing to just under 4 GiB (zeros in RLE
# blocks, 128 KiB each): the decompressed size is bounded for the file,
# not per frame.
variant bomb
/usr/bin/python3 - "$T/bomb/boot/initrd.img-$D_KVER" "$T/bomb/boot/initrd.img-$D_KVER2" <<'EOF'
import struct, sys
def newc(name, size):
    n = name.encode() + b"\0"
    h = b"070701" + b"".join(b"%08x" % v for v in
                              (1, 0o100644, 0, 0, 1, 0, size, 0, 0, 0, 0, len(n), 0))
    h += n
    return h + b"\0" * ((4 - len(h) % 4) % 4)
with open(sys.argv[1], "wb") as f:
    f.write(newc("usr/lib/modules/x/virtio_blk.ko", 0xffffffff) + b"\0" * 1000)
def block(last, kind, size, payload):
    return struct.pack("<I", last | kind << 1 | size << 3)[:3] + payload
size = 0xffffff00
head = newc("big", size)
tail = newc("TRAILER!!!", 0)
frame = b"\x28\xb5\x2f\xfd\x00\x38" + block(0, 0, len(head), head)
left = size
while left > 0:
    n = min(left, 128 << 10)
    frame += block(0, 1, n, b"\0")
    left -= n
frame += block(1, 0, len(tail), tail)
with open(sys.argv[2], "wb") as f:
    for i in range(64):
        f.write(frame)
EOF
variant_disk bomb
start=$(date +%s)
hostile bomb
echo "bomb: $(($(date +%s) - start)) s"
expect "$T/bomb.json" '.kernels[0].initrd_drivers.virtio_blk' null
expect "$T/bomb.json" '.kernels[1].initrd_drivers.virtio_blk' null
echo "e. hostile guests: ok"
echo ok
