#!/bin/sh
# The Linux fixups (tests/tools/fixup-dir) on a loop-mounted copy of the
# synthetic Debian guest of tests/fixup/lib.sh, BIOS and UEFI (an ESP on
# /boot/efi), with the guest's tools faked: busybox (static) is its shell,
# and small scripts stand in for update-initramfs (a newc cpio of the
# modules /etc/initramfs-tools/modules lists), lsinitramfs and dpkg (which
# records its arguments and drops the package from the status file).
# Judged on the files against what the guest was built with: device names
# replaced by the UUIDs given to mkfs in fstab, GRUB's files, grubenv
# (still 1024 bytes), a BLS entry, /etc/kernel/cmdline and the resume
# configuration; stale caches gone (blkid, LVM's devices file, GRUB's
# device.map); the udev rule pinning ens3 to the MAC of --mac; the
# drivers in the modules file and in the rebuilt initrds; dpkg --purge
# open-vm-tools; EFI/BOOT/BOOTX64.EFI a copy of shim.  /etc/crypttab is a
# symlink out of the guest (absolute, then ../../..): the host's file of
# that name must be untouched and the guest's rewritten.  A second run
# changes nothing more.  Symlinks into /dev (which holds this machine's
# /dev while the guest's tools run) are refused.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/lib.sh"
requires jq --version
requires sfdisk --version
requires mkfs.ext4 -V
requires mformat --version
requires cpio --version
requires zstd --version
requires test -x /bin/busybox
requires sh -c '/bin/busybox --list | grep -qx cpio'
requires test "$(id -u)" -eq 0   # loop mounts, chroot
requires test -x "$TOOLS/fixup-dir"

MAC=52:54:00:12:34:56
mkdir "$T/mnt"
cleanup_fn "umount -R '$T/mnt' 2>/dev/null"

# The host files a guest's symlink names: they must never change.
ESC_ABS=$(mktemp /tmp/escape-target-XXXXXX)
ESC_REL=$(mktemp /tmp/escape-target-XXXXXX)
cleanup_fn "rm -f '$ESC_ABS' '$ESC_REL'"
for f in "$ESC_ABS" "$ESC_REL"; do
    printf 'host_secret /dev/sda2 none luks\n' >"$f"
done
host_hash=$(hash_of "$ESC_ABS" "$ESC_REL")

# fake_tools DIR: busybox and the stand-ins in the guest tree DIR.
fake_tools () {
    _r=$1
    cp /bin/busybox "$_r/usr/bin/busybox"
    rm -f "$_r/usr/bin/sh" "$_r/usr/bin/dash"
    for a in sh cat cp cpio find grep awk sed mkdir mv rm sort echo printf \
        ls head tr true false test basename dirname; do
        ln -sf busybox "$_r/usr/bin/$a"
    done
    mkdir -p "$_r/var/log"
    cat >"$_r/usr/sbin/update-initramfs" <<'EOF'
#!/bin/sh
# update-initramfs -u|-c -k VERSION, faked: /boot/initrd.img-VERSION
# becomes a newc cpio with an empty NAME.ko for each module listed in
# /etc/initramfs-tools/modules.
echo "$*" >>/var/log/fake-update-initramfs
ver=
while [ $# -gt 0 ]; do
    case $1 in
    -k) ver=$2; shift ;;
    esac
    shift
done
[ -n "$ver" ] || exit 2
w=${TMPDIR:-/tmp}/initrd.$$
mkdir -p "$w/usr/lib/modules/$ver/kernel" || exit 1
sed 's/#.*//' /etc/initramfs-tools/modules | while read -r m _; do
    [ -z "$m" ] || : >"$w/usr/lib/modules/$ver/kernel/$m.ko"
done
(cd "$w" && find . | cpio -o -H newc) >"/boot/initrd.img-$ver.new" || exit 1
mv "/boot/initrd.img-$ver.new" "/boot/initrd.img-$ver" || exit 1
rm -rf "$w"
EOF
    cat >"$_r/usr/bin/lsinitramfs" <<'EOF'
#!/bin/sh
# lsinitramfs FILE, faked: the names in a plain newc cpio.
cpio -t <"$1"
EOF
    cat >"$_r/usr/bin/dpkg" <<'EOF'
#!/bin/sh
# dpkg --purge PKG..., faked: recorded, and each PKG's stanza dropped
# from the status file.
echo "$*" >>/var/log/fake-dpkg
[ "$1" = --purge ] || exit 1
shift
for p in "$@"; do
    awk -v p="$p" '/^Package: / { skip = ($2 == p) }
                   /^$/ { if (skip) { skip = 0; next } }
                   !skip' /var/lib/dpkg/status >/var/lib/dpkg/status.new &&
        mv /var/lib/dpkg/status.new /var/lib/dpkg/status || exit 1
done
EOF
    chmod 755 "$_r/usr/sbin/update-initramfs" "$_r/usr/bin/lsinitramfs" \
        "$_r/usr/bin/dpkg"
}

# grubenv FILE KERNELOPTS: GRUB's environment block, 1024 bytes.
grubenv () {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import sys
body = b"# GRUB Environment Block\nsaved_entry=0\nkernelopts=%s \n" % sys.argv[2].encode()
open(sys.argv[1], "wb").write(body + b"#" * (1024 - len(body)))
EOF
}

# guest_files DIR ESCAPE LINK: the files the device fixups change;
# /etc/crypttab is the symlink LINK, to the guest's own ESCAPE.
guest_files () {
    _r=$1
    printf '/dev/sda1 00000000-0000-0000-0000-000000000000 ext4\n' >"$_r/etc/blkid.tab"
    printf '(hd0)\t/dev/sda\n' >"$_r/boot/grub/device.map"
    mkdir -p "$_r/etc/lvm/devices" "$_r/etc/kernel"
    printf 'VERSION=1.1.2\nIDTYPE=devname IDNAME=/dev/sda2 DEVNAME=/dev/sda2 PVID=x\n' \
        >"$_r/etc/lvm/devices/system.devices"
    printf 'root=/dev/sda1 ro quiet\n' >"$_r/etc/kernel/cmdline"
    grubenv "$_r/boot/grub/grubenv" "root=/dev/sda1 ro resume=/dev/sda2"
    mkdir -p "$_r/boot/loader/entries"
    cat >"$_r/boot/loader/entries/debian-$D_KVER.conf" <<EOF
title Debian GNU/Linux 12
version $D_KVER
linux /boot/vmlinuz-$D_KVER
initrd /boot/initrd.img-$D_KVER
options root=/dev/sda1 ro quiet
EOF
    printf 'cswap /dev/sda2 /dev/urandom swap,cipher=aes-xts-plain64\n' >"$_r$2"
    ln -s "$3" "$_r/etc/crypttab"
}

# fixup NAME IMG: fixup-dir on the guest mounted at $T/mnt (pristine copy
# IMG); the report into $T/NAME.json, which must say ok.
fixup () {
    "$TOOLS/fixup-dir" --mac "ens3=$MAC" "$T/mnt" "$2" >"$T/$1.json" \
        2>"$T/$1.log" || { cat "$T/$1.log" >&2; fail "fixup-dir $1"; }
    [ "$(jq -r .result "$T/$1.json")" = ok ] ||
        fail "$1: report says $(jq -c '.result, .errors' "$T/$1.json")"
    for d in proc sys dev run; do
        ! mountpoint -q "$T/mnt/$d" || fail "$1: the guest's /$d is still mounted"
    done
}
# same FILE WANT: FILE's content is exactly WANT (a file).
same () { cmp -s "$1" "$2" || { diff "$2" "$1" >&2; fail "$1 differs"; }; }
# states FILE...: inode and hash of each, to see whether a run replaced it.
states () { for _f in "$@"; do echo "$(stat -c %i "$_f") $(sha256sum <"$_f")"; done; }

# ---- BIOS ----------------------------------------------------------------

mkdir "$T/g"
debian_tree "$T/g"
fake_tools "$T/g"
guest_files "$T/g" "$ESC_ABS" "$ESC_ABS"
cp "$T/g/etc/fstab" "$T/fstab.orig"
cp "$T/g/etc/network/interfaces" "$T/interfaces.orig"
D=$T/debian.raw
debian_disk "$D" "$T/g"
cp --sparse=always "$D" "$T/work.raw"
mount -o loop,offset=$((1 << 20)),sizelimit=$((64 << 20)) "$T/work.raw" "$T/mnt" ||
    fail "mount the copy"
m=$T/mnt
fixup bios "$D"

sed -e "s,^/dev/sda1 ,UUID=$D_ROOT_UUID ," -e "s,^/dev/sda2 ,UUID=$D_SWAP_UUID ," \
    "$T/fstab.orig" >"$T/fstab.want"
same "$m/etc/fstab" "$T/fstab.want"
grep -q "^	linux	/boot/vmlinuz-$D_KVER root=UUID=$D_ROOT_UUID ro quiet\$" "$m/boot/grub/grub.cfg" ||
    fail "grub.cfg: $(grep linux "$m/boot/grub/grub.cfg")"
! grep -q '^GRUB_DISABLE_LINUX_UUID' "$m/etc/default/grub" ||
    fail "GRUB_DISABLE_LINUX_UUID still set"
grep -q '^#GRUB_DISABLE_LINUX_UUID=true$' "$m/etc/default/grub" ||
    fail "GRUB_DISABLE_LINUX_UUID not commented: $(cat "$m/etc/default/grub")"
grep -qx "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet resume=UUID=$D_SWAP_UUID\"" "$m/etc/default/grub" ||
    fail "/etc/default/grub resume"
[ "$(stat -c %s "$m/boot/grub/grubenv")" -eq 1024 ] || fail "grubenv is not 1024 bytes"
grubenv "$T/grubenv.want" "root=UUID=$D_ROOT_UUID ro resume=UUID=$D_SWAP_UUID"
same "$m/boot/grub/grubenv" "$T/grubenv.want"
grep -qx "options root=UUID=$D_ROOT_UUID ro quiet" "$m/boot/loader/entries/debian-$D_KVER.conf" ||
    fail "BLS entry: $(grep options "$m/boot/loader/entries/debian-$D_KVER.conf")"
grep -qx "RESUME=UUID=$D_SWAP_UUID" "$m/etc/initramfs-tools/conf.d/resume" || fail "resume"
[ ! -e "$m/etc/blkid.tab" ] || fail "/etc/blkid.tab not removed"
[ ! -e "$m/boot/grub/device.map" ] || fail "device.map not removed"
[ ! -e "$m/etc/lvm/devices/system.devices" ] || fail "system.devices not removed"
[ -d "$m/etc/lvm/devices" ] || fail "/etc/lvm/devices removed"
[ "$(cat "$m/etc/kernel/cmdline")" = "root=UUID=$D_ROOT_UUID ro quiet" ] ||
    fail "/etc/kernel/cmdline: $(cat "$m/etc/kernel/cmdline")"
same "$m/etc/network/interfaces" "$T/interfaces.orig"

# The symlink stayed a symlink; its target inside the guest was changed,
# the host's file of the same name was not.
[ "$(readlink "$m/etc/crypttab")" = "$ESC_ABS" ] || fail "crypttab is no longer the symlink"
grep -qx "cswap UUID=$D_SWAP_UUID /dev/urandom swap,cipher=aes-xts-plain64" "$m$ESC_ABS" ||
    fail "the guest's crypttab: $(cat "$m$ESC_ABS")"
[ "$(hash_of "$ESC_ABS" "$ESC_REL")" = "$host_hash" ] || fail "a host file was written"

rules=$m/etc/udev/rules.d/70-vmconvert-net.rules
grep -v '^#' "$rules" >"$T/rules"
[ "$(wc -l <"$T/rules")" -eq 1 ] || fail "udev rules: $(cat "$rules")"
grep -q "ATTR{address}==\"$MAC\"" "$T/rules" && grep -q 'NAME="ens3"' "$T/rules" ||
    fail "udev rule: $(cat "$T/rules")"
[ "$(jq -r '.interfaces[] | select(.name == "ens3") | .mac' "$T/bios.json")" = "$MAC" ] ||
    fail "report interfaces: $(jq -c .interfaces "$T/bios.json")"

sed 's/#.*//' "$m/etc/initramfs-tools/modules" | grep . >"$T/mods"
printf 'ahci\nvirtio_blk\nvirtio_scsi\nvirtio_pci\nvirtio_net\n' >"$T/mods.want"
same "$T/mods" "$T/mods.want"
printf '%s\n' "-u -k $D_KVER" "-u -k $D_KVER2" >"$T/uinit.want"
same "$m/var/log/fake-update-initramfs" "$T/uinit.want"
for k in "$D_KVER" "$D_KVER2"; do
    cpio -t --quiet <"$m/boot/initrd.img-$k" | sed 's,.*/,,' | grep '\.ko$' | sort >"$T/in-$k"
    printf 'ahci.ko\nvirtio_blk.ko\nvirtio_net.ko\nvirtio_pci.ko\nvirtio_scsi.ko\n' >"$T/in.want"
    same "$T/in-$k" "$T/in.want"
done
[ "$(cat "$m/var/log/fake-dpkg")" = "--purge open-vm-tools" ] ||
    fail "dpkg was called with: $(cat "$m/var/log/fake-dpkg")"
! grep -q '^Package: open-vm-tools$' "$m/var/lib/dpkg/status" || fail "open-vm-tools still installed"
grep -q '^Package: virtualbox-guest-utils$' "$m/var/lib/dpkg/status" || fail "dpkg status lost a package"
[ ! -e "$m/usr/sbin/policy-rc.d" ] || fail "policy-rc.d left behind"
[ "$(jq -r '[.commands[] | select(.step == "tools") | .argv | join(" ")] | join(";")' "$T/bios.json")" = \
  "/usr/bin/dpkg --purge open-vm-tools" ] || fail "report commands: $(jq -c .commands "$T/bios.json")"
[ "$(jq -r '.errors | length' "$T/bios.json")" -eq 0 ] || fail "report errors"
echo "BIOS: ok"

# A second run: nothing is rewritten (the same inodes and content).
set -- "$m/etc/fstab" "$m/boot/grub/grub.cfg" "$m/etc/default/grub" \
    "$m/boot/grub/grubenv" "$m/boot/loader/entries/debian-$D_KVER.conf" \
    "$m$ESC_ABS" "$m/etc/initramfs-tools/modules" \
    "$m/etc/initramfs-tools/conf.d/resume" "$m/etc/kernel/cmdline" "$rules"
states "$@" >"$T/before"
fixup again "$D"
states "$@" >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "the second run rewrote files"
[ "$(jq -r '[.changes[] | select(.step == "devices")] | length' "$T/again.json")" -eq 0 ] ||
    fail "second run: $(jq -c '[.changes[] | select(.step == "devices")]' "$T/again.json")"
[ -z "$(grep -v '^#' "$m/etc/initramfs-tools/modules" | sort | uniq -d)" ] ||
    fail "duplicate lines in the modules file"
umount -R "$m"
echo "BIOS, second run: ok"

# ---- UEFI ----------------------------------------------------------------

# GPT: p1 the ESP (shim, GRUB, MokManager and GRUB's stub under
# EFI/debian, no EFI/BOOT), p2 the root, p3 swap; fstab by device name.
rm -rf "$T/g"
mkdir "$T/g"
debian_tree "$T/g"
fake_tools "$T/g"
rel=../../../../../..$ESC_REL
guest_files "$T/g" "$ESC_REL" "$rel"
rm -r "$T/g/boot/grub/i386-pc"
mkdir "$T/g/boot/efi"
cat >"$T/g/etc/fstab" <<'EOF'
/dev/sda2 / ext4 errors=remount-ro 0 1
/dev/sda1 /boot/efi vfat umask=0077 0 1
/dev/sda3 none swap sw 0 0
EOF
# The root is sda2 and swap sda3 here (same lengths: grubenv stays 1024).
sed -i 's,/dev/sda2,/dev/sda3,g; s,/dev/sda1,/dev/sda2,g' "$T/g/boot/grub/grub.cfg" \
    "$T/g/boot/grub/grubenv" "$T/g/etc/default/grub" "$T/g$ESC_REL" \
    "$T/g/etc/initramfs-tools/conf.d/resume" "$T/g/boot/loader/entries/debian-$D_KVER.conf"
truncate -s 32M "$T/esp.img"
mformat -i "$T/esp.img" -N "$D_ESP_SERIAL" -v ESP :: || fail "mformat"
mmd -i "$T/esp.img" ::/EFI ::/EFI/debian
for f in shimx64.efi grubx64.efi mmx64.efi grub.cfg; do
    printf '%s of the guest\n' "$f" >"$T/$f"
    mcopy -i "$T/esp.img" "$T/$f" "::/EFI/debian/$f" || fail "mcopy $f"
done
U=$T/uefi.raw
truncate -s 120M "$U"
cat <<EOF | sfdisk -q "$U" || fail "sfdisk uefi"
label: gpt
start=1MiB, size=32MiB, type=$GPT_ESP
start=33MiB, size=64MiB, type=$GPT_LINUX
start=97MiB, size=16MiB, type=$GPT_SWAP
EOF
ext4_img "$T/root.img" 64M "$D_ROOT_UUID" root "$T/g"
swap_img "$T/swap.img" 16M "$D_SWAP_UUID"
put_at "$U" 1 "$T/esp.img"
put_at "$U" 33 "$T/root.img"
put_at "$U" 97 "$T/swap.img"
rm -f "$T/esp.img" "$T/root.img" "$T/swap.img"
cp --sparse=always "$U" "$T/uwork.raw"
mount -o loop,offset=$((33 << 20)),sizelimit=$((64 << 20)) "$T/uwork.raw" "$m" ||
    fail "mount the UEFI root"
# The ESP on /boot/efi: the FAT partition itself when this kernel mounts
# vfat, otherwise a tmpfs holding its files (the fixups only use files).
if grep -qw vfat /proc/filesystems || modprobe vfat 2>/dev/null; then
    mount -o loop,offset=$((1 << 20)),sizelimit=$((32 << 20)) "$T/uwork.raw" "$m/boot/efi" ||
        fail "mount the ESP"
else
    dd if="$T/uwork.raw" of="$T/esp.img" bs=1M skip=1 count=32 status=none
    mount -t tmpfs -o mode=0700 esp "$m/boot/efi" || fail "mount a tmpfs for the ESP"
    mcopy -s -i "$T/esp.img" ::/EFI "$m/boot/efi/" || fail "mcopy the ESP's files"
    rm -f "$T/esp.img"
fi
fixup uefi "$U"

[ "$(jq -r .guest.firmware "$T/uefi.json")" = uefi ] || fail "not seen as UEFI"
for f in shimx64.efi:BOOTX64.EFI grubx64.efi:grubx64.efi mmx64.efi:mmx64.efi grub.cfg:grub.cfg; do
    same "$m/boot/efi/EFI/BOOT/${f#*:}" "$T/${f%%:*}"
done
same "$m/boot/efi/EFI/debian/shimx64.efi" "$T/shimx64.efi"
printf '%s\n' "UUID=$D_ROOT_UUID / ext4 errors=remount-ro 0 1" \
    "UUID=$D_ESP_UUID /boot/efi vfat umask=0077 0 1" \
    "UUID=$D_SWAP_UUID none swap sw 0 0" >"$T/fstab.want"
same "$m/etc/fstab" "$T/fstab.want"
grep -q "root=UUID=$D_ROOT_UUID ro quiet\$" "$m/boot/grub/grub.cfg" || fail "UEFI grub.cfg"
grubenv "$T/grubenv.want" "root=UUID=$D_ROOT_UUID ro resume=UUID=$D_SWAP_UUID"
same "$m/boot/grub/grubenv" "$T/grubenv.want"
[ "$(readlink "$m/etc/crypttab")" = "$rel" ] || fail "crypttab is no longer the symlink"
grep -qx "cswap UUID=$D_SWAP_UUID /dev/urandom swap,cipher=aes-xts-plain64" "$m$ESC_REL" ||
    fail "the guest's crypttab (relative link): $(cat "$m$ESC_REL")"
[ "$(hash_of "$ESC_ABS" "$ESC_REL")" = "$host_hash" ] || fail "a host file was written"
umount -R "$m"
echo "UEFI: ok"

# ---- symlinks into the API directories --------------------------------

# While the guest's tools run, its /dev is this machine's (and /proc,
# /sys, /run): a guest whose udev rules directory and initramfs-tools
# modules file are symlinks into /dev/shm must not get the fixups to write
# there.  Those two fixups fail; the host's directory stays as it was.
API=$(mktemp -d /dev/shm/vmc-api-XXXXXX)
cleanup_fn "rm -rf '$API'"
printf 'ahci\n' >"$API/modules"
api_hash=$(hash_of "$API/modules")
rm -rf "$T/g"
mkdir "$T/g"
debian_tree "$T/g"
fake_tools "$T/g"
mkdir -p "$T/g/etc/udev"
ln -s "$API" "$T/g/etc/udev/rules.d"
ln -sf "$API/modules" "$T/g/etc/initramfs-tools/modules"
debian_disk "$D" "$T/g"
cp --sparse=always "$D" "$T/work.raw"
mount -o loop,offset=$((1 << 20)),sizelimit=$((64 << 20)) "$T/work.raw" "$m" ||
    fail "mount the copy"
set +e
"$TOOLS/fixup-dir" --mac "ens3=$MAC" "$m" "$D" >"$T/api.json" 2>"$T/api.log"
st=$?
set -e
umount -R "$m"
[ "$st" -eq 1 ] || { cat "$T/api.log" >&2; fail "API symlinks: fixup-dir exit $st, expected 1"; }
[ "$(jq -r .result "$T/api.json")" = failed ] || fail "API symlinks: the report says ok"
jq -r '.errors[] | .message' "$T/api.json" >"$T/api.errors"
grep -q '70-vmconvert-net.rules' "$T/api.errors" && grep -q 'initramfs-tools/modules' "$T/api.errors" ||
    fail "API symlinks: errors $(cat "$T/api.errors")"
[ "$(ls -A "$API")" = modules ] || fail "a file was written in the host's /dev/shm: $(ls -A "$API")"
[ "$(hash_of "$API/modules")" = "$api_hash" ] || fail "the host's /dev/shm file changed"
echo "API directories: ok"
echo ok
