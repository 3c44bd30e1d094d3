#!/bin/sh
# The appliance over PXE, through QEMU's own TFTP and BOOTP (slirp) and the
# iPXE script from `make pxe`: BIOS with one disk on a MegaRAID SAS and
# one on NVMe, and UEFI (OVMF) with a virtio disk.  The settings are in
# the script's kernel line.  Both disks arrive identical, the job's facts
# list them, and the sources are unchanged.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/../net/net.sh"
# shellcheck source=tests/appliance/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/appliance/appliance.sh
. "$(dirname "$0")/appliance.sh"
requires qemu-img --version

make_sources src $((32 * 1048576)) $((20 * 1048576 + 7 * 512))
a=$T/src1.raw b=$T/src2.raw
start_receiver rx

for fw in bios uefi; do
    "$top/iso/build-pxe.sh" --kernel "$VMLINUZ" --initrd "$INITRD" \
        --append "$(settings "pxe-$fw") vmconvert.wait=1" \
        --out "$T/tftp-$fw" >/dev/null
    grep -q "vmconvert.job=pxe-$fw" "$T/tftp-$fw/boot.ipxe" ||
        fail "boot.ipxe does not carry the settings"
done

appliance_boot pxe-bios --pxe "$T/tftp-bios" --bootfile boot.ipxe \
    --nic virtio --disk "$a,if=megasas,serial=src1" \
    --disk "$b,if=nvme,serial=src2" \
    --expect 'vmconvert: connected' --expect '=+ SUCCESS =+' \
    --expect 'reboot: Power down' --linger 20
check_job pxe-bios "$a" "$b"

appliance_boot pxe-uefi --uefi --pxe "$T/tftp-uefi" --bootfile boot.ipxe \
    --nic virtio --disk "$a,if=virtio,serial=src1" \
    --expect 'vmconvert: connected' --expect '=+ SUCCESS =+' \
    --expect 'reboot: Power down' --linger 20
check_job pxe-uefi "$a"
jq -e '.source.machine.firmware == "uefi"' "$RX_DIR/pxe-uefi/job.json" \
    >/dev/null || fail "pxe-uefi: firmware is not uefi in the facts"
stop_receiver
echo "ok"
