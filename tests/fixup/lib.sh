# Synthetic Linux guests for the inspection and fixup tests; source after
# functions.sh.  Every UUID, label, file and MAC is fixed here, so that a
# test's expectations come from how the guest was built, never from what
# vmconvert prints.  A guest is a tree (a directory on the host) put into
# filesystem images (mkfs.ext4 -d, mtools, a loop-mounted XFS) put into
# partitions (sfdisk) of sparse disk files.
#
#   rhel_tree DIR / rhel_boot_tree DIR / rhel_esp IMG   the RHEL 9 guest
#   debian_tree DIR [KVER...]                           the Debian 12 guest
#   ext4_img IMG SIZE UUID LABEL DIR                    mkfs.ext4 -d
#   xfs_img IMG UUID LABEL DIR                          400M, loop-mounted
#   put_at DISK MIB IMG                                 IMG at MIB into DISK
#   debian_disk DISK ROOTDIR                            MBR: root, swap
#   cpio_of DIR                                         newc archive, stdout
# shellcheck shell=sh disable=SC2034

GPT_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
GPT_LINUX=0FC63DAF-8483-4772-8E79-3D69D8477DE4
GPT_SWAP=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F

# The RHEL guest.
R_KVER=5.14.0-427.13.1.el9_4.x86_64
R_ROOT_UUID=6b1e4a0c-3f5d-4c1e-9a2b-7d8e9f0a1b2c
R_BOOT_UUID=2f9c8e7d-6b5a-4d3c-8e1f-0a9b8c7d6e5f
R_ESP_SERIAL=5A3C9E01
R_ESP_UUID=5A3C-9E01
R_MAC1=00:50:56:9a:4b:01       # ifcfg-ens192 HWADDR (written upper-case)
R_MAC2=00:50:56:9a:4b:02       # the NetworkManager keyfile's ens224
R_HOST=rhel9-test.example.com

# The Debian guest.
D_KVER=6.1.0-28-amd64          # initrd: early cpio + gzip'ed main cpio
D_KVER2=6.1.0-27-amd64         # initrd: early cpio + zstd main cpio
D_ROOT_UUID=0d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f60
D_SWAP_UUID=9e8d7c6b-5a49-4837-a261-50f4e3d2c1b0
D_ESP_SERIAL=C0FFEE42
D_ESP_UUID=C0FF-EE42
D_ADDR=192.0.2.10/24

# fake_elf FILE: the 20 bytes of an x86-64 ELF header inspection reads
# the architecture from.
fake_elf () {
    mkdir -p "$(dirname "$1")"
    printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\002\000\076\000' >"$1"
}

# cpio_of DIR: a newc archive of DIR's contents (names without "./").
cpio_of () {
    (cd "$1" && find . -mindepth 1 | sed 's,^\./,,' | LC_ALL=C sort |
        cpio -o -H newc --quiet)
}

# modules_dir DIR KVER MODS...: /lib/modules/KVER with a modules.dep that
# names MODS (paths under kernel/, without .ko.xz), and a modules.builtin.
modules_dir () {
    _d=$1/$2
    shift 2
    mkdir -p "$_d/kernel"
    : >"$_d/modules.dep"
    for _m in "$@"; do
        mkdir -p "$_d/kernel/$(dirname "$_m")"
        printf 'module\n' >"$_d/kernel/$_m.ko.xz"
        echo "kernel/$_m.ko.xz:" >>"$_d/modules.dep"
    done
    printf 'kernel/drivers/virtio/virtio.ko\nkernel/fs/ext4/ext4.ko\n' \
        >"$_d/modules.builtin"
}

# ---- RHEL 9 ------------------------------------------------------------

rhel_tree () {
    _r=$1
    mkdir -p "$_r/etc/sysconfig/network-scripts" \
        "$_r/etc/NetworkManager/system-connections" "$_r/usr/lib/modules" \
        "$_r/usr/bin" "$_r/usr/sbin" "$_r/var/lib/rpm" "$_r/boot" "$_r/tmp"
    ln -s usr/bin "$_r/bin"
    ln -s usr/sbin "$_r/sbin"
    ln -s usr/lib "$_r/lib"
    fake_elf "$_r/usr/bin/bash"
    ln -s bash "$_r/usr/bin/sh"
    cat >"$_r/etc/os-release" <<'EOF'
NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
EOF
    echo "Red Hat Enterprise Linux release 9.4 (Plow)" >"$_r/etc/redhat-release"
    cat >"$_r/etc/fstab" <<EOF
# /etc/fstab, by anaconda
UUID=$R_ROOT_UUID /                       xfs     defaults        0 0
UUID=$R_BOOT_UUID /boot                   ext4    defaults        1 2
UUID=$R_ESP_UUID          /boot/efi               vfat    umask=0077,shortname=winnt 0 2
EOF
    echo "$R_HOST" >"$_r/etc/hostname"
    modules_dir "$_r/usr/lib/modules" "$R_KVER" drivers/block/virtio_blk \
        drivers/net/virtio_net drivers/virtio/virtio_pci \
        drivers/scsi/virtio_scsi drivers/net/vmxnet3/vmxnet3
    cat >"$_r/etc/sysconfig/network-scripts/ifcfg-ens192" <<EOF
TYPE=Ethernet
BOOTPROTO=none
NAME=ens192
DEVICE=ens192
ONBOOT=yes
HWADDR=$(echo "$R_MAC1" | tr a-f A-F)
IPADDR=198.51.100.20
PREFIX=24
GATEWAY=198.51.100.1
EOF
    cat >"$_r/etc/NetworkManager/system-connections/ens224.nmconnection" <<EOF
[connection]
id=ens224
uuid=3d1f8a2e-5b6c-4d7e-8f90-a1b2c3d4e5f6
type=ethernet
interface-name=ens224

[ethernet]
mac-address=$R_MAC2

[ipv4]
method=auto

[ipv6]
method=ignore
EOF
    chmod 600 "$_r/etc/NetworkManager/system-connections/ens224.nmconnection"
    printf '#!/bin/bash\n' >"$_r/usr/bin/dracut"
    printf 'ELF\n' >"$_r/usr/bin/vmtoolsd"
    chmod 755 "$_r/usr/bin/dracut" "$_r/usr/bin/vmtoolsd"
    : >"$_r/var/lib/rpm/rpmdb.sqlite"
}

# rhel_boot_tree DIR: the /boot filesystem: kernel, an xz initramfs
# holding virtio_blk (not virtio_net), GRUB's BLS configuration.
rhel_boot_tree () {
    _b=$1
    mkdir -p "$_b/grub2" "$_b/loader/entries" "$_b/.ir/usr/lib/modules/$R_KVER/kernel/drivers/block"
    printf 'kernel %s\n' "$R_KVER" >"$_b/vmlinuz-$R_KVER"
    printf 'module\n' >"$_b/.ir/usr/lib/modules/$R_KVER/kernel/drivers/block/virtio_blk.ko.xz"
    printf '#!/bin/sh\n' >"$_b/.ir/init"
    cpio_of "$_b/.ir" | xz --check=crc32 >"$_b/initramfs-$R_KVER.img"
    rm -rf "$_b/.ir"
    cat >"$_b/grub2/grub.cfg" <<'EOF'
set default="${saved_entry}"
insmod blscfg
blscfg
EOF
    cat >"$_b/loader/entries/0123456789abcdef-$R_KVER.conf" <<EOF
title Red Hat Enterprise Linux ($R_KVER) 9.4 (Plow)
version $R_KVER
linux /vmlinuz-$R_KVER
initrd /initramfs-$R_KVER.img
options root=UUID=$R_ROOT_UUID ro crashkernel=1G-4G:192M
grub_users \$grub_users
EOF
}

# rhel_esp IMG: the ESP, FAT, with shim and GRUB under EFI/redhat and no
# EFI/BOOT.
rhel_esp () {
    truncate -s 32M "$1"
    mformat -i "$1" -N "$R_ESP_SERIAL" -v ESP :: || fail "mformat"
    mmd -i "$1" ::/EFI ::/EFI/redhat || fail "mmd"
    printf 'shim\n' >"$T/shimx64.efi"
    printf 'grub\n' >"$T/grubx64.efi"
    printf 'search --no-floppy --fs-uuid --set=dev %s\nset prefix=($dev)/grub2\nconfigfile $prefix/grub.cfg\n' \
        "$R_BOOT_UUID" >"$T/grub.cfg"
    mcopy -i "$1" "$T/shimx64.efi" "$T/grubx64.efi" "$T/grub.cfg" \
        ::/EFI/redhat/ || fail "mcopy"
    rm -f "$T/shimx64.efi" "$T/grubx64.efi" "$T/grub.cfg"
}

# ---- Debian 12 ---------------------------------------------------------

# debian_initrd OUT KVER gzip|zstd: an uncompressed early cpio (microcode)
# followed by the main cpio compressed, which holds VMware's drivers and
# no virtio one.
debian_initrd () {
    _w=$T/.initrd.$$
    rm -rf "$_w"
    mkdir -p "$_w/early/kernel/x86/microcode" \
        "$_w/main/usr/lib/modules/$2/kernel/drivers/scsi" \
        "$_w/main/usr/lib/modules/$2/kernel/drivers/net/vmxnet3" \
        "$_w/main/usr/lib/modules/$2/kernel/drivers/ata" "$_w/main/scripts"
    printf 'microcode\n' >"$_w/early/kernel/x86/microcode/GenuineIntel.bin"
    for _m in scsi/vmw_pvscsi net/vmxnet3/vmxnet3 ata/ahci; do
        printf 'module\n' >"$_w/main/usr/lib/modules/$2/kernel/drivers/$_m.ko"
    done
    printf '#!/bin/sh\n' >"$_w/main/init"
    {
        cpio_of "$_w/early"
        if [ "$3" = gzip ]; then
            cpio_of "$_w/main" | gzip -n -9
        else
            cpio_of "$_w/main" | zstd -q -19
        fi
    } >"$1"
    rm -rf "$_w"
}

# debian_tree DIR: root (no separate /boot), two kernels, ENI with
# source-directory, dpkg with open-vm-tools installed and the VirtualBox
# tools removed (config files left), GRUB naming /dev/sda1.
debian_tree () {
    _r=$1
    mkdir -p "$_r/etc/network/interfaces.d" "$_r/var/lib/dpkg" \
        "$_r/usr/sbin" "$_r/usr/bin" "$_r/boot/grub/i386-pc" \
        "$_r/usr/lib/modules" "$_r/etc/initramfs-tools/conf.d" \
        "$_r/etc/default" "$_r/tmp" "$_r/root"
    ln -s usr/bin "$_r/bin"
    ln -s usr/sbin "$_r/sbin"
    ln -s usr/lib "$_r/lib"
    fake_elf "$_r/usr/bin/dash"
    ln -s dash "$_r/usr/bin/sh"
    cat >"$_r/etc/os-release" <<'EOF'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
EOF
    echo 12.8 >"$_r/etc/debian_version"
    echo debian12 >"$_r/etc/hostname"
    cat >"$_r/etc/fstab" <<'EOF'
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/sda1       /               ext4    errors=remount-ro 0       1
/dev/sda2       none            swap    sw              0       0
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto 0       0
EOF
    cat >"$_r/etc/network/interfaces" <<'EOF'
# interfaces(5)
source-directory /etc/network/interfaces.d

auto lo
iface lo inet loopback
EOF
    cat >"$_r/etc/network/interfaces.d/ens3" <<EOF
auto ens3
iface ens3 inet static
    address $D_ADDR
    gateway 192.0.2.1
EOF
    # ifupdown reads only names of letters, digits, '_' and '-'.
    printf 'auto ens9\niface ens9 inet dhcp\n' \
        >"$_r/etc/network/interfaces.d/ens9.dpkg-old"
    cat >"$_r/var/lib/dpkg/status" <<'EOF'
Package: base-files
Status: install ok installed
Priority: required
Version: 12.4+deb12u8

Package: open-vm-tools
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 2:12.2.0-1+deb12u2

Package: virtualbox-guest-utils
Status: deinstall ok config-files
Priority: optional
Architecture: amd64
Version: 7.0.20-dfsg-1

Package: zstd
Status: install ok installed
Version: 1.5.4+dfsg2-5
EOF
    printf 'ELF\n' >"$_r/usr/bin/vmtoolsd"
    printf '#!/bin/sh\n' >"$_r/usr/sbin/update-initramfs"
    chmod 755 "$_r/usr/sbin/update-initramfs" "$_r/usr/bin/vmtoolsd"
    for _k in "$D_KVER" "$D_KVER2"; do
        printf 'kernel %s\n' "$_k" >"$_r/boot/vmlinuz-$_k"
        printf 'config\n' >"$_r/boot/config-$_k"
        modules_dir "$_r/usr/lib/modules" "$_k" drivers/block/virtio_blk \
            drivers/net/virtio_net drivers/virtio/virtio_pci \
            drivers/scsi/virtio_scsi drivers/scsi/vmw_pvscsi
    done
    debian_initrd "$_r/boot/initrd.img-$D_KVER" "$D_KVER" gzip
    debian_initrd "$_r/boot/initrd.img-$D_KVER2" "$D_KVER2" zstd
    cat >"$_r/boot/grub/grub.cfg" <<EOF
set default="0"
menuentry 'Debian GNU/Linux' --class debian {
	insmod ext2
	set root='hd0,msdos1'
	linux	/boot/vmlinuz-$D_KVER root=/dev/sda1 ro quiet
	initrd	/boot/initrd.img-$D_KVER
}
EOF
    printf 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet resume=/dev/sda2"\nGRUB_DISABLE_LINUX_UUID=true\n' \
        >"$_r/etc/default/grub"
    echo "RESUME=/dev/sda2" >"$_r/etc/initramfs-tools/conf.d/resume"
    printf '# modules for the initramfs\nahci\n' >"$_r/etc/initramfs-tools/modules"
}

# ---- images ------------------------------------------------------------

ext4_img () {
    rm -f "$1"
    truncate -s "$2" "$1"
    mkfs.ext4 -q -F -U "$3" -L "$4" -d "$5" "$1" >/dev/null 2>&1 ||
        fail "mkfs.ext4 -d $5"
}

# xfs_img IMG UUID LABEL DIR: XFS (400 MiB, mkfs.xfs's minimum is 300)
# filled through a loop mount.
xfs_img () {
    rm -f "$1"
    truncate -s 400M "$1"
    mkfs.xfs -q -f -m uuid="$2" -L "$3" "$1" || fail "mkfs.xfs"
    mkdir -p "$T/.xfsmnt"
    cleanup_fn "umount '$T/.xfsmnt' 2>/dev/null"
    mount -o loop "$1" "$T/.xfsmnt" || fail "mount xfs"
    cp -a "$4/." "$T/.xfsmnt/" || fail "copy into xfs"
    umount "$T/.xfsmnt" || fail "umount xfs"
}

# put_at DISK MIB IMG: IMG's bytes at MIB MiB into DISK (holes stay holes).
put_at () {
    dd if="$3" of="$1" bs=1M seek="$2" conv=notrunc,sparse status=none ||
        fail "dd $3 into $1"
}

# swap_img IMG SIZE UUID: a swap area.
swap_img () {
    rm -f "$1"
    truncate -s "$2" "$1"
    mkswap -U "$3" -L swap "$1" >/dev/null 2>&1 || fail "mkswap"
}

# debian_disk DISK ROOTDIR: MBR; p1 at 1 MiB, 64 MiB: the root (ext4);
# p2 at 65 MiB, 16 MiB: swap.
debian_disk () {
    rm -f "$1"
    truncate -s 82M "$1"
    printf 'label: dos\nlabel-id: 0x1f2e3d4c\nstart=1MiB, size=64MiB, type=83, bootable\nstart=65MiB, size=16MiB, type=82\n' |
        sfdisk -q "$1" || fail "sfdisk $1"
    ext4_img "$T/.root.img" 64M "$D_ROOT_UUID" root "$2"
    swap_img "$T/.swap.img" 16M "$D_SWAP_UUID"
    put_at "$1" 1 "$T/.root.img"
    put_at "$1" 65 "$T/.swap.img"
    rm -f "$T/.root.img" "$T/.swap.img"
}
