#!/bin/sh
# make-debian-guest.sh: build a Debian 12 test guest that looks like a Linux
# machine installed on VMware, for the guest-fixup tests.
#
#   make-debian-guest.sh [--if-changed] VARIANT OUT.vmdk
#
# VARIANT is one of
#   itools   MBR; sda1 ext4 /, sda2 swap; initramfs-tools; ifupdown
#   dracut   the same layout; dracut; systemd-networkd
#   lvm      GPT with a BIOS boot partition; sda2 ext4 /boot; sda3 an LVM
#            PV, VG vg0 with LVs root (ext4) and swap; initramfs-tools;
#            ifupdown (allow-hotplug)
# Every variant: Debian's kernel, GRUB on BIOS (grub-pc), systemd, root
# password "guest", console on ttyS0, open-vm-tools, the static address
# 10.0.2.15/24 (gateway 10.0.2.2) on ens3 (an e1000 in PCI slot 3), fstab
# and grub.cfg naming /dev/sdaN (or the LV), an initramfs with VMware's
# SCSI drivers and no virtio driver, and guest-report.service, the probe the
# boot tests read on the serial console (tests/guests/guest-report).
#
# How: one bootstrap (mmdebstrap, from the Debian archive this machine's
# apt uses) is kept as a tarball and shared by the variants; each variant
# unpacks it into file systems on a raw disk attached with losetup, installs
# its own packages and configuration in a chroot, builds its initramfs and
# installs GRUB, and the disk is converted to a monolithicSparse VMDK.  No
# device-mapper: the LVM variant's LVs are written through loop devices at
# the LVs' offsets inside the PV.  Downloaded packages are kept in
# $GUEST_CACHE (build/guests/cache), so a rebuild does not download again.
#
# --if-changed: do nothing when OUT exists and was built by this version of
# the script and of guest-report (OUT.stamp holds their sha256).
#
# Environment: GUEST_CACHE (the cache directory), GUEST_SOURCES (apt
# sources files for the bootstrap; default: this machine's files that name
# bookworm), GUEST_KEEP_RAW=1 (also keep OUT's raw disk as OUT.raw).
set -eu
# The system's tools only: mmdebstrap runs a python3 filter for every
# package, which a python3 wrapper earlier in PATH would slow down tenfold.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
suite=bookworm

if_changed=
if [ "${1:-}" = --if-changed ]; then
    if_changed=1
    shift
fi
if [ $# -ne 2 ]; then
    echo "usage: $0 [--if-changed] itools|dracut|lvm OUT.vmdk" >&2
    exit 2
fi
variant=$1
out=$2
case "$variant" in
itools | dracut | lvm) ;;
*)
    echo "$0: unknown variant $variant (itools, dracut, lvm)" >&2
    exit 2
    ;;
esac
case "$out" in
/*) ;;
*) out=$PWD/$out ;;
esac

log () {
    printf '%s [%s %4ss] %s\n' "make-debian-guest" "$variant" \
        "$(($(date +%s) - t0))" "$*" >&2
}
die () {
    echo "make-debian-guest: $variant: $*" >&2
    exit 1
}
t0=$(date +%s)

stamp_want=$(cat "$0" "$here/guest-report" | sha256sum | cut -d' ' -f1)
if [ -n "$if_changed" ] && [ -f "$out" ] && [ -f "$out.stamp" ] &&
        [ "$(cat "$out.stamp")" = "$stamp_want" ]; then
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (loop devices, mounts, chroot)"
for tool in mmdebstrap sfdisk losetup partx mkfs.ext4 mkswap qemu-img flock \
        pvcreate; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool (./install-deps)"
done

# The build's mounts live in a mount namespace of its own: no other
# namespace keeps them (and their loop devices) busy, and they vanish with
# the build however it ends.
if [ -z "${GUEST_BUILD_NS:-}" ]; then
    GUEST_BUILD_NS=1 exec unshare --mount --propagation private \
        "$0" "$variant" "$out"
fi
# LVM's tools warn about every inherited descriptor (the locks below).
LVM_SUPPRESS_FD_WARNINGS=1
export LVM_SUPPRESS_FD_WARNINGS

cache=${GUEST_CACHE:-$top/build/guests/cache}
mkdir -p "$cache/debs" "$(dirname "$out")"
cache=$(cd "$cache" && pwd)

# The same packages and the same SCSI drivers in every variant.  Docs,
# man pages, translations and the kernel's drivers for sound, TV, wireless,
# InfiniBand and sensors are left out to keep the images small (dpkg
# knows they are excluded; no package is modified).
base_packages="linux-image-amd64 grub-pc systemd-sysv udev kmod dbus
    initramfs-tools zstd e2fsprogs iproute2 open-vm-tools"
extra_packages="dracut lvm2 ifupdown"
scsi_drivers="sym53c8xx vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod"
nodoc="path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright"
for d in sound drivers/media drivers/net/wireless drivers/infiniband \
        drivers/iio drivers/staging; do
    nodoc="$nodoc
path-exclude=/lib/modules/*/kernel/$d/*
path-exclude=/usr/lib/modules/*/kernel/$d/*"
done

# sources: the apt sources the bootstrap uses (the mirror's files).
sources () {
    if [ -n "${GUEST_SOURCES:-}" ]; then
        echo "$GUEST_SOURCES"
        return
    fi
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
            /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && grep -qw "$suite" "$f" && echo "$f"
    done
    return 0
}
src=$(sources)
[ -n "$src" ] || die "no apt sources for $suite (set GUEST_SOURCES)"

# ---- The shared bootstrap -------------------------------------------------
#
# base-HASH.tar: every variant's common packages installed, the extra
# packages downloaded (into the cache), apt's lists kept for the variants'
# installs.  HASH covers everything that goes into it: the package lists,
# the sources, and make_base itself; an edit elsewhere in this script
# rebuilds the variants only.
base_recipe () {
    echo "$suite $base_packages / $extra_packages / $nodoc"
    sed -n '/^make_base () {$/,/^}$/p' "$0"
    # shellcheck disable=SC2086 # one file name per word
    cat $src
}
base_hash=$(base_recipe | sha256sum | cut -c1-16)
base=$cache/base-$base_hash.tar

make_base () {
    log "bootstrap: mmdebstrap $suite ($(echo $src))"
    tmp=$(mktemp -d "$cache/base.XXXXXX")
    printf '%s\n' "$nodoc" | sed 's/^/--dpkgopt=/' >"$tmp/nodoc-opts"
    # (The hooks' $1 is mmdebstrap's, hence the single quotes.)
    # The initramfs the kernel's postinst builds is thrown away by every
    # variant: MODULES=list with no module makes it quick.
    # shellcheck disable=SC2046,SC2086
    if ! TMPDIR=$tmp mmdebstrap --variant=apt --mode=root \
            --dpkgopt=force-unsafe-io $(cat "$tmp/nodoc-opts") \
            --include="$(echo $base_packages | tr ' ' ,)" \
            --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" &&
                echo MODULES=list >"$1/etc/initramfs-tools/conf.d/bootstrap"' \
            --skip=essential/unlink \
            --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
            --setup-hook="sync-in $cache/debs /var/cache/apt/archives" \
            --customize-hook='chroot "$1" apt-get install -y -q \
                --download-only --no-install-recommends '"$extra_packages"' \
                >/dev/null' \
            --customize-hook="sync-out /var/cache/apt/archives $cache/debs" \
            --customize-hook='rm -f "$1/etc/initramfs-tools/conf.d/bootstrap"' \
            --skip=cleanup/apt/lists \
            "$suite" "$tmp/base.tar" $src >"$tmp/log" 2>&1; then
        tail -n 40 "$tmp/log" >&2
        rm -rf "$tmp"
        die "mmdebstrap failed"
    fi
    mv "$tmp/base.tar" "$base"
    rm -rf "$tmp"
    # Older bootstraps are of no more use.
    for f in "$cache"/base-*.tar; do
        [ "$f" = "$base" ] || rm -f "$f"
    done
    log "bootstrap: done, $(du -m "$base" | cut -f1) MiB"
}

# One bootstrap at a time; the variants built alongside wait for it.
exec 8>"$cache/base.lock"
flock 8
[ -f "$base" ] || make_base
flock -u 8

# One build of OUT at a time.
exec 9>"$out.lock"
flock 9

# ---- The disk -------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/guest-$variant.XXXXXX")
mnt=$work/root
raw=$work/disk.raw
# The loop devices attached so far, newest first (attach runs in command
# substitutions: a variable would not outlive them).
loops=$work/loops
: >"$loops"
cleanup () {
    status=$?
    set +e
    if mountpoint -q "$mnt"; then
        umount -R "$mnt" || umount -R -l "$mnt"
    fi
    for l in $(cat "$loops"); do
        detach "$l"
    done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# detach LOOP: detach a loop device, waiting while something still has it
# open (the kernel then refuses or defers the detach).
detach () {
    for _i in 1 2 3 4 5 6 7 8 9 10; do
        losetup -d "$1" 2>/dev/null || true
        [ -n "$(losetup -l -n -O BACK-FILE "$1" 2>/dev/null)" ] || return 0
        sleep 1
    done
    echo "make-debian-guest: $1 is still attached" >&2
    return 1
}

# attach FILE [losetup options]: a loop device over FILE; prints its name.
attach () {
    _f=$1
    shift
    _l=$(losetup --show -f "$@" "$_f")
    echo "$_l $(cat "$loops")" >"$loops"
    echo "$_l"
}

# partitions LOOP: make LOOPpN appear.  The kernel scans a loop device's
# table with -P, but some kernels have no partition-table support built in;
# partx then adds the partitions with BLKPG.
partitions () {
    [ -b "${1}p1" ] || partx -a "$1"
    [ -b "${1}p1" ] || die "no partitions on $1"
}

disk_mib=952
mkdir -p "$mnt"
truncate -s "${disk_mib}M" "$raw"
if [ "$variant" = lvm ]; then
    sfdisk -q "$raw" <<'EOF'
label: gpt
start=1MiB, size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=bios
size=160MiB, type=L, name=boot
type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=lvm
EOF
else
    sfdisk -q "$raw" <<'EOF'
label: dos
start=1MiB, size=887MiB, type=83, bootable
type=82
EOF
fi
disk=$(attach "$raw" -P)
partitions "$disk"

if [ "$variant" = lvm ]; then
    # LVM metadata on the PV without device-mapper: --driverloaded n, no
    # activation, no zeroing or wiping (both need the LV active), only
    # this PV scanned, nothing written to this machine's /etc/lvm.
    lvmconf="devices { filter=[\"a|^${disk}p3\$|\",\"r|.*|\"]
        use_devicesfile=0 obtain_device_list_from_udev=0 }
        activation { udev_sync=0 udev_rules=0 }
        backup { backup=0 archive=0 }"
    lvm_ () {
        _c=$1
        shift
        "$_c" --config "$lvmconf" --driverloaded n "$@"
    }
    lvm_ pvcreate -q "${disk}p3" >"$work/lvm.log" 2>&1 ||
        { cat "$work/lvm.log" >&2; die "pvcreate failed"; }
    lvm_ vgcreate -q vg0 "${disk}p3" >"$work/lvm.log" 2>&1 ||
        { cat "$work/lvm.log" >&2; die "vgcreate failed"; }
    # (Each warns that activation is disabled and the LV not zeroed.)
    lvm_ lvcreate -q -an -Zn -Wn -n swap -L 48M vg0 >"$work/lvm.log" 2>&1 ||
        { cat "$work/lvm.log" >&2; die "lvcreate swap failed"; }
    lvm_ lvcreate -q -an -Zn -Wn -n root -l 100%FREE vg0 \
        >"$work/lvm.log" 2>&1 ||
        { cat "$work/lvm.log" >&2; die "lvcreate root failed"; }
    pe_start=$(lvm_ pvs --noheadings --units b --nosuffix -o pe_start \
        "${disk}p3" 2>/dev/null | tr -d ' ')
    extent=$(lvm_ vgs --noheadings --units b --nosuffix -o vg_extent_size \
        vg0 2>/dev/null | tr -d ' ')
    # lv_loop LV: a loop device over LV's (single, contiguous) segment.
    # It is stacked on the PV's partition, not on the disk file: GRUB's
    # 10_linux skips a root on a loop device whose backing is a file.
    lv_loop () {
        _r=$(lvm_ lvs --noheadings -o seg_pe_ranges "vg0/$1" 2>/dev/null |
            tr -d ' ')
        case "$_r" in
        "${disk}p3:"*-*) ;;
        *) die "LV $1: unexpected extents: $_r" ;;
        esac
        _r=${_r#*:}
        _first=${_r%-*}
        _last=${_r#*-}
        attach "${disk}p3" -o $((pe_start + _first * extent)) \
            --sizelimit $(((_last - _first + 1) * extent))
    }
    rootdev=$(lv_loop root)
    swapdev=$(lv_loop swap)
    bootdev=${disk}p2
    mkfs.ext4 -q "$bootdev"
    guest_root=/dev/mapper/vg0-root
    guest_swap=/dev/mapper/vg0-swap
    # What update-grub will take for the root's device (see lv_loop).
    grub_root=${disk}p3
else
    rootdev=${disk}p1
    swapdev=${disk}p2
    bootdev=
    guest_root=/dev/sda1
    guest_swap=/dev/sda2
    grub_root=$rootdev
fi
mkfs.ext4 -q "$rootdev"
mkswap "$swapdev" >/dev/null

mount "$rootdev" "$mnt"
log "unpacking the bootstrap"
if [ -n "$bootdev" ]; then
    mkdir "$mnt/boot"
    mount "$bootdev" "$mnt/boot"
fi
tar -C "$mnt" --numeric-owner --xattrs --xattrs-include='*' -xpf "$base"
mount --bind /dev "$mnt/dev"
mount -t proc proc "$mnt/proc"
mount -t sysfs sysfs "$mnt/sys"
# Scratch space of the build (dracut's staging) is not the guest's.
mount -t tmpfs tmpfs "$mnt/tmp"
mount -t tmpfs tmpfs "$mnt/var/tmp"
mkdir -p "$mnt/mnt/debs"
mount --bind -o ro "$cache/debs" "$mnt/mnt/debs"

in_guest () {
    chroot "$mnt" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"
}

# ---- The guest's configuration --------------------------------------------

kver=$(ls "$mnt/lib/modules")
[ "$(echo "$kver" | wc -w)" -eq 1 ] || die "kernels in the bootstrap: $kver"
host=guest-$variant

echo "$host" >"$mnt/etc/hostname"
cat >"$mnt/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$host
::1		localhost ip6-localhost ip6-loopback
EOF
echo "nameserver 10.0.2.3" >"$mnt/etc/resolv.conf"
# An installed machine has a machine ID; an empty one would make every
# boot a first boot.
echo "vmconvert-test-guest-$variant" | md5sum | cut -c1-32 \
    >"$mnt/etc/machine-id"
printf '%s\n' "$nodoc" >"$mnt/etc/dpkg/dpkg.cfg.d/nodoc"
rm -f "$mnt/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
echo root:guest | in_guest chpasswd

{
    echo "# /etc/fstab: static file system information."
    echo "# <file system> <mount point> <type> <options> <dump> <pass>"
    echo "$guest_root / ext4 errors=remount-ro 0 1"
    [ -z "$bootdev" ] || echo "/dev/sda2 /boot ext4 defaults 0 2"
    echo "$guest_swap none swap sw 0 0"
} >"$mnt/etc/fstab"

# The network: the static address on ens3, the name systemd gives the
# source machine's NIC in PCI slot 3.
case "$variant" in
itools | lvm)
    if [ "$variant" = lvm ]; then start="allow-hotplug"; else start=auto; fi
    mkdir -p "$mnt/etc/network"
    cat >"$mnt/etc/network/interfaces" <<EOF
# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

# The primary network interface
$start ens3
iface ens3 inet static
	address 10.0.2.15/24
	gateway 10.0.2.2
EOF
    ;;
dracut)
    cat >"$mnt/etc/systemd/network/10-ens3.network" <<'EOF'
[Match]
Name=ens3

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
EOF
    in_guest systemctl enable -q systemd-networkd.service
    ;;
esac

# The probe.
install -m 0755 "$here/guest-report" "$mnt/usr/local/sbin/guest-report"
cat >"$mnt/etc/systemd/system/guest-report.service" <<'EOF'
[Unit]
Description=Report this test guest's state on ttyS0, then power off
# After the getty on the serial console has started (and hung up the port).
After=getty.target

[Service]
# simple, not oneshot: a oneshot would be a boot job itself, and the boot
# it waits for would never end.
Type=simple
ExecStart=/usr/local/sbin/guest-report

[Install]
WantedBy=multi-user.target
EOF
in_guest systemctl enable -q guest-report.service

# The initramfs: what MODULES=dep (initramfs-tools) or hostonly (dracut)
# gives on a VMware machine -- the SCSI drivers, no virtio.  Built from an
# explicit list, so that this build machine's own hardware and modules do
# not leak in.
case "$variant" in
itools | lvm)
    sed -i 's/^MODULES=.*/MODULES=list/' \
        "$mnt/etc/initramfs-tools/initramfs.conf"
    {
        echo "# The drivers of the VMware machine this system was installed on."
        for m in $scsi_drivers ext4; do
            echo "$m"
        done
    } >>"$mnt/etc/initramfs-tools/modules"
    # The fsck hook looks up the type of / through its device, which does
    # not exist here (/dev/sda1): it would leave fsck out.
    echo FSTYPE=ext4 >"$mnt/etc/initramfs-tools/conf.d/fixture-build"
    ;;
dracut)
    mkdir -p "$mnt/etc/dracut.conf.d"
    cat >"$mnt/etc/dracut.conf.d/10-vmware.conf" <<EOF
# Only what this machine needs to boot (its VMware SCSI controllers).
hostonly="yes"
hostonly_cmdline="no"
add_drivers+=" $scsi_drivers ext4 "
EOF
    # What hostonly builds on VMware, without looking at this build
    # machine: dracut's postinst builds with it; removed afterwards.
    cat >"$mnt/etc/dracut.conf.d/99-fixture-build.conf" <<EOF
hostonly="no"
omit_dracutmodules+=" qemu qemu-net virtiofs nvdimm "
drivers="$scsi_drivers ext4"
EOF
    ;;
esac

# The variant's own packages, from the cache (downloaded with the
# bootstrap); apt's lists are then of no more use.
case "$variant" in
itools) pkgs=ifupdown ;;
dracut) pkgs=dracut ;;
lvm) pkgs="ifupdown lvm2" ;;
esac
log "installing $pkgs"
# shellcheck disable=SC2086
in_guest apt-get install -y -q --no-install-recommends --no-download \
    -o Debug::NoLocking=1 -o Dir::Cache::Archives=/mnt/debs/ \
    -o DPkg::Options::=--force-unsafe-io $pkgs >"$work/apt.log" 2>&1 ||
    { tail -n 30 "$work/apt.log" >&2; die "apt-get install $pkgs failed"; }
umount "$mnt/mnt/debs"
rmdir "$mnt/mnt/debs"
rm -rf "$mnt"/var/lib/apt/lists/* "$mnt"/var/cache/apt/*.bin

log "building the initramfs"
case "$variant" in
itools | lvm)
    in_guest update-initramfs -u -k "$kver" >"$work/initramfs.log" 2>&1 ||
        { cat "$work/initramfs.log" >&2; die "update-initramfs failed"; }
    rm "$mnt/etc/initramfs-tools/conf.d/fixture-build"
    ;;
dracut)
    # dracut's postinst built it (above); build it again only if it did not.
    [ -s "$mnt/boot/initrd.img-$kver" ] ||
        in_guest dracut -f -q "/boot/initrd.img-$kver" "$kver"
    rm "$mnt/etc/dracut.conf.d/99-fixture-build.conf"
    ;;
esac

# The initramfs must boot from the VMware controllers and must not from
# virtio, whose drivers the kernel has as modules in /lib/modules.
initrd_modules=$work/initrd-modules
if [ "$variant" = dracut ]; then
    in_guest lsinitrd "/boot/initrd.img-$kver"
else
    in_guest lsinitramfs "/boot/initrd.img-$kver"
fi | sed -n 's|.*/\([^/]*\)\.ko\(\.[a-z]*\)\{0,1\}$|\1|p' | sort -u \
    >"$initrd_modules"
for m in sym53c8xx vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod ext4; do
    grep -qx "$m" "$initrd_modules" ||
        die "the initramfs lacks $m: $(tr '\n' ' ' <"$initrd_modules")"
done
if grep -E '^virtio' "$initrd_modules" >"$work/virtio"; then
    die "the initramfs has virtio drivers: $(tr '\n' ' ' <"$work/virtio")"
fi
for m in virtio_blk virtio_pci virtio_scsi virtio_net; do
    find "$mnt/lib/modules/$kver" -name "$m.ko*" | grep -q . ||
        die "the kernel has no $m module"
done
log "initramfs: $(wc -l <"$initrd_modules") modules, no virtio," \
    "$(($(stat -c %s "$mnt/boot/initrd.img-$kver") / 1024)) KiB"

# GRUB, as on a BIOS machine, on the serial console.  update-grub in this
# chroot names the root by this machine's loop device: grub.cfg then says
# /dev/sdaN (or the LV) like the source machine's would.
# dracut waits for a missing root for ever by default: rd.timeout lets an
# unconverted boot on virtio end in dracut's emergency shell.
rd_timeout=
[ "$variant" != dracut ] || rd_timeout=" rd.timeout=30"
cat >"$mnt/etc/default/grub" <<EOF
# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200$rd_timeout"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_LINUX_UUID=true
GRUB_DISABLE_RECOVERY=true
EOF
echo "grub-pc grub-pc/install_devices multiselect /dev/sda" |
    in_guest debconf-set-selections
log "installing GRUB"
in_guest grub-install --target=i386-pc "$disk" >"$work/grub.log" 2>&1 ||
    { cat "$work/grub.log" >&2; die "grub-install failed"; }
in_guest update-grub >>"$work/grub.log" 2>&1 ||
    { cat "$work/grub.log" >&2; die "update-grub failed"; }
cfg=$mnt/boot/grub/grub.cfg
sed -i -e "s|root=$grub_root |root=$guest_root |" \
    -e "s|hostdisk/$disk|hd0|g" -e "s|$disk|/dev/sda|g" "$cfg"
grep -q "^[[:space:]]*linux[[:space:]].* root=$guest_root " "$cfg" ||
    die "grub.cfg has no linux line with root=$guest_root:" \
        "$(grep '^[[:space:]]*linux[[:space:]]' "$cfg")"
if grep -n -e /dev/loop -e 'root=UUID' "$cfg" >"$work/bad"; then
    die "grub.cfg still names: $(cat "$work/bad")"
fi

if [ "$variant" = lvm ]; then
    # An installed system keeps a backup of its VG's metadata.
    mkdir -p "$mnt/etc/lvm/backup"
    lvm_ vgcfgbackup -q -f "$mnt/etc/lvm/backup/vg0" vg0 >/dev/null 2>&1
fi

# Logs and caches of the build are not the guest's.
rm -rf "$mnt"/var/log/*.log "$mnt"/var/log/apt/* "$mnt"/tmp/* \
    "$mnt"/var/cache/debconf/*-old "$mnt"/var/lib/dpkg/*-old
du -sm "$mnt" --exclude=proc --exclude=sys --exclude=dev -x 2>/dev/null |
    cut -f1 >"$work/used"
[ -z "$bootdev" ] || du -sm "$mnt/boot" | cut -f1 >>"$work/used"

# Freed blocks become holes in the raw file (loop devices discard by
# punching holes), so the VMDK holds only what the guest uses.
fstrim "$mnt" 2>/dev/null || true
[ -z "$bootdev" ] || fstrim "$mnt/boot" 2>/dev/null || true
umount -R "$mnt"
for l in $(cat "$loops"); do
    detach "$l"
done
: >"$loops"

log "converting to VMDK"
rm -f "$out.tmp"
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$raw" "$out.tmp"
[ "${GUEST_KEEP_RAW:-}" != 1 ] || mv "$raw" "${out%.vmdk}.raw"
mv "$out.tmp" "$out"
echo "$stamp_want" >"$out.stamp"
log "done: $out, $(($(du -k "$out" | cut -f1) / 1024)) MiB," \
    "$(awk '{ s += $1 } END { print s }' "$work/used") MiB used in the guest"
