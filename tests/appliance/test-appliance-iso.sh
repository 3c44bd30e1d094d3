#!/bin/sh
# The appliance ISO sends a machine's disks to a receiver on this host:
#   BIOS, CD: settings on the kernel command line, DHCP, one disk on
#     VMware's PVSCSI and one on SATA (AHCI), a vmxnet3 NIC;
#   UEFI (OVMF), CD: settings only in vmconvert.cfg on the medium, a
#     static address (ip=), the same controllers, an e1000e NIC;
#   BIOS, the ISO as a USB stick (isohybrid): the stick is never sent.
# Each time both disks arrive identical (qemu-img compare), the job's facts
# list the disks by serial and the NIC by MAC and driver, the sources are
# unchanged, and the machine powers itself off.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/../net/net.sh"
# shellcheck source=tests/appliance/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/appliance/appliance.sh
. "$(dirname "$0")/appliance.sh"
requires qemu-img --version

make_sources src $((40 * 1048576)) $((24 * 1048576 + 3 * 512))
a=$T/src1.raw b=$T/src2.raw
start_receiver rx
disks="--disk $a,if=pvscsi,serial=src1 --disk $b,if=ahci,serial=src2"

# nic_fact JOB DRIVER ADDRESS: the job's facts list a NIC with QEMU's MAC
# and DRIVER, and the address it had.
nic_fact () {
    jq -e --arg d "$2" --arg a "$3" '.source.nics[] | select(.mac ==
        "52:54:00:12:34:56" and .driver == $d and (.addresses | index($a)))' \
        "$RX_DIR/$1/job.json" >/dev/null ||
        fail "$1: no NIC 52:54:00:12:34:56 ($2, $3) in the facts"
}

# 1. BIOS, CD, kernel command line.
test_iso "$T/cmdline.iso" --append "$(settings iso-bios) vmconvert.wait=1"
# shellcheck disable=SC2086 # $disks is several options
appliance_boot iso-bios --iso "$T/cmdline.iso" $disks --nic vmxnet3 \
    --expect 'vmconvert: connected' --expect '=+ SUCCESS =+' \
    --expect 'reboot: Power down' --linger 20
check_job iso-bios "$a" "$b"
nic_fact iso-bios vmxnet3 10.0.2.15/24
jq -e '.source.machine.firmware == "bios"' "$RX_DIR/iso-bios/job.json" \
    >/dev/null || fail "iso-bios: firmware is not bios in the facts"
console iso-bios 'every disk is now read-only'

# 2. UEFI, CD, settings from the file on the medium, a static address.
{
    echo "# written by the test"
    settings iso-uefi | tr ' ' '\n' | sed 's/^vmconvert\.//'
    echo "ip=10.0.2.30::10.0.2.2:255.255.255.0:src:eth0:none"
    echo "wait=1"
} >"$T/vmconvert.cfg"
test_iso "$T/file.iso" --config "$T/vmconvert.cfg"
# shellcheck disable=SC2086
appliance_boot iso-uefi --uefi --iso "$T/file.iso" $disks --nic e1000e \
    --expect 'vmconvert: connected' \
    --expect '=+ SUCCESS =+' --expect 'reboot: Power down' --linger 20
check_job iso-uefi "$a" "$b"
nic_fact iso-uefi e1000e 10.0.2.30/24
jq -e '.source.machine.firmware == "uefi"' "$RX_DIR/iso-uefi/job.json" \
    >/dev/null || fail "iso-uefi: firmware is not uefi in the facts"

# 3. The same ISO as a USB stick, BIOS: settings from the stick's FAT
# partition, and the stick itself is not a source.
sed 's/iso-uefi/iso-usb/' "$T/vmconvert.cfg" >"$T/usb.cfg"
test_iso "$T/usb.iso" --config "$T/usb.cfg"
appliance_boot iso-usb --usb "$T/usb.iso" --disk "$a,if=virtio,serial=src1" \
    --nic virtio --expect '=+ SUCCESS =+' --expect 'reboot: Power down' \
    --linger 20
check_job iso-usb "$a"
[ "$(jq '.disks | length' "$RX_DIR/iso-usb/job.json")" = 1 ] ||
    fail "iso-usb: the job has more than the one disk"
jq -e '.source.disks[] | select(.sent == false and
    (.not_sent_because | test("boot medium")))' \
    "$RX_DIR/iso-usb/job.json" >/dev/null ||
    fail "iso-usb: the facts do not show the stick left out as the boot medium"
stop_receiver
echo "ok"
