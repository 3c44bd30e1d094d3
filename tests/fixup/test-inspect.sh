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
