#!/bin/sh
# Writing onto a block device: a device has no holes, so everything the
# writer skips must be zeroed explicitly.  The device (a loop device over a
# file full of random garbage) gets an image in each format that can be
# written to a device, and qemu-img must read back exactly the source.
# Needs root (losetup); the loop device is detached at exit.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires losetup --version
[ "$(id -u)" -eq 0 ] || { echo "needs root for losetup"; exit 77; }

"$TOOLS/mkdisk" -s 21 -d 40 $((16 * 1048576 + 1536)) "$T/ref.raw"
before=$(hash_of "$T/ref.raw")
head -c $((40 * 1048576)) /dev/urandom >"$T/garbage"
truncate -s 40M "$T/backing"
dev=$(losetup --find --show "$T/backing") || { echo "no loop device"; exit 77; }
cleanup_fn losetup -d "$dev"

for target in raw:raw: qcow2:qcow2: qcow2:qcow2:-c \
              vmdk:vmdk:subformat=monolithicSparse \
              vpc:vpc:subformat=dynamic vdi:vdi:; do
    fmt=${target%%:*}
    rest=${target#*:}
    opts=${rest#*:}
    # Fill the device with garbage again, so stale bytes would show.
    dd if="$T/garbage" of="$dev" bs=1M conv=fsync status=none
    set -- -O "$fmt"
    case $opts in
    "") ;;
    -c) set -- "$@" -c ;;
    *) set -- "$@" -o "$opts" ;;
    esac
    "$VMCONVERT" convert "$@" "$T/ref.raw" "$dev" ||
        fail "convert to $fmt ($opts) on a block device failed"
    if [ "$fmt" = raw ]; then
        # The device is larger than the disk: compare the disk's bytes.
        cmp -n "$(stat -c %s "$T/ref.raw")" "$T/ref.raw" "$dev" ||
            fail "raw on a block device differs from the source"
    else
        qemu-img compare -q -f raw -F "$fmt" "$T/ref.raw" "$dev" ||
            fail "$fmt ($opts) on a block device differs from the source"
    fi
    echo "ok: $fmt $opts"
done

# Formats whose readers look at the end of the file cannot go on a device
# larger than the image: refused with a clear message, and nothing lost.
expect_error 1 "vmdk" "$VMCONVERT" convert -O vmdk -o subformat=streamOptimized "$T/ref.raw" "$dev"
expect_error 1 "vhdx" "$VMCONVERT" convert -O vhdx "$T/ref.raw" "$dev"
expect_error 1 "must fill its device" "$VMCONVERT" convert -O vpc -o subformat=fixed "$T/ref.raw" "$dev"
[ "$(hash_of "$T/ref.raw")" = "$before" ] || fail "source modified"
