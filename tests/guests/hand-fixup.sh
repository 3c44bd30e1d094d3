#!/bin/sh
# hand-fixup.sh: convert a test guest by hand, the way the guest fixups
# must, to show what guest_boot_converted (guest.sh) accepts.  Not the
# product's fixup: a reference for its tests, and a check of the checks.
#
#   hand-fixup.sh VARIANT IN.vmdk OUT.raw [STEP...]
#
# STEPs (default: all of them):
#   initramfs  add virtio_pci, virtio_blk, virtio_scsi to the initramfs
#   uuid       fstab and grub.cfg name the file systems by UUID
#   vmtools    purge open-vm-tools
#   nic        pin the NIC's name (ens3) to its MAC with a systemd .link
# Runs as root; the LVM variant's LVs are reached through loop devices at
# their offsets (no device-mapper), as make-debian-guest.sh does.
set -eu

if [ $# -lt 3 ]; then
    echo "usage: $0 VARIANT IN.vmdk OUT.raw [STEP...]" >&2
    exit 2
fi
variant=$1 in=$2 out=$3
shift 3
steps=${*:-initramfs uuid vmtools nic}
mac=${GUEST_MAC:-52:54:00:12:34:56}

if [ -z "${GUEST_BUILD_NS:-}" ]; then
    # shellcheck disable=SC2086 # one step a word
    GUEST_BUILD_NS=1 exec unshare --mount --propagation private "$0" \
        "$variant" "$in" "$out" $steps
fi
LVM_SUPPRESS_FD_WARNINGS=1
export LVM_SUPPRESS_FD_WARNINGS

work=$(mktemp -d "${TMPDIR:-/tmp}/hand-fixup.XXXXXX")
mnt=$work/root
loops=$work/loops
: >"$loops"
cleanup () {
    status=$?
    set +e
    mountpoint -q "$mnt" && umount -R "$mnt"
    for l in $(cat "$loops"); do
        losetup -d "$l"
    done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
attach () {
    _l=$(losetup --show -f "$@")
    echo "$_l $(cat "$loops")" >"$loops"
    echo "$_l"
}

qemu-img convert -O raw "$in" "$out"
disk=$(attach -P "$out")
[ -b "${disk}p1" ] || partx -a "$disk"
mkdir -p "$mnt"
if [ "$variant" = lvm ]; then
    c="devices { filter=[\"a|^${disk}p3\$|\",\"r|.*|\"] use_devicesfile=0 }"
    pe_start=$(pvs --config "$c" --driverloaded n --noheadings --units b \
        --nosuffix -o pe_start "${disk}p3" 2>/dev/null | tr -d ' ')
    extent=$(vgs --config "$c" --driverloaded n --noheadings --units b \
        --nosuffix -o vg_extent_size vg0 2>/dev/null | tr -d ' ')
    lv () {
        _r=$(lvs --config "$c" --driverloaded n --noheadings -o seg_pe_ranges \
            "vg0/$1" 2>/dev/null | tr -d ' ')
        _r=${_r#*:}
        attach -o $((pe_start + ${_r%-*} * extent)) \
            --sizelimit $(((${_r#*-} - ${_r%-*} + 1) * extent)) "${disk}p3"
    }
    root=$(lv root)
    swap=$(lv swap)
    mount "$root" "$mnt"
    mount "${disk}p2" "$mnt/boot"
else
    root=${disk}p1
    swap=${disk}p2
    mount "$root" "$mnt"
fi
mount --bind /dev "$mnt/dev"
mount -t proc proc "$mnt/proc"
mount -t sysfs sysfs "$mnt/sys"
mount -t tmpfs tmpfs "$mnt/tmp"
mount -t tmpfs tmpfs "$mnt/var/tmp"
in_guest () {
    chroot "$mnt" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        LC_ALL=C.UTF-8 "$@"
}
uuid () {
    blkid -o value -s UUID "$1"
}

has () {
    case " $steps " in *" $1 "*) return 0 ;; esac
    return 1
}

if has nic; then
    cat >"$mnt/etc/systemd/network/10-source-nic.link" <<EOF
[Match]
MACAddress=$mac

[Link]
Name=ens3
EOF
fi
if has vmtools; then
    in_guest dpkg --purge open-vm-tools >/dev/null 2>&1
fi
if has uuid; then
    r=$(uuid "$root") s=$(uuid "$swap")
    if [ "$variant" = lvm ]; then
        # The LV paths do not depend on the disk's name; /boot does.
        sed -i "s|^/dev/sda2 |UUID=$(uuid "${disk}p2") |" "$mnt/etc/fstab"
    else
        sed -i -e "s|^/dev/sda1 |UUID=$r |" -e "s|^/dev/sda2 |UUID=$s |" \
            "$mnt/etc/fstab"
        sed -i "s|root=/dev/sda1 |root=UUID=$r |" "$mnt/boot/grub/grub.cfg"
        sed -i 's/^GRUB_DISABLE_LINUX_UUID=.*/GRUB_DISABLE_LINUX_UUID=false/' \
            "$mnt/etc/default/grub"
    fi
fi
if has initramfs; then
    kver=$(ls "$mnt/lib/modules")
    if [ "$variant" = dracut ]; then
        in_guest dracut -f -q --add-drivers \
            "virtio_pci virtio_blk virtio_scsi" "/boot/initrd.img-$kver" "$kver"
    else
        printf '%s\n' virtio_pci virtio_blk virtio_scsi \
            >>"$mnt/etc/initramfs-tools/modules"
        echo FSTYPE=ext4 >"$mnt/etc/initramfs-tools/conf.d/hand-fixup"
        in_guest update-initramfs -u -k "$kver" >/dev/null 2>&1
        rm "$mnt/etc/initramfs-tools/conf.d/hand-fixup"
    fi
fi
