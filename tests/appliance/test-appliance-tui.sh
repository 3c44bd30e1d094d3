#!/bin/sh
# Without vmconvert.server the appliance asks on the console: the test
# types (over the serial console) the connection URL the receiver printed
# with a token and a job name added, picks the second of two disks by its
# number, and confirms after the connection test.  Only that disk is
# sent, identical; the other is listed in the facts as not sent.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/../net/net.sh"
# shellcheck source=tests/appliance/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/appliance/appliance.sh
. "$(dirname "$0")/appliance.sh"
requires qemu-img --version

make_sources src $((8 * 1048576)) $((12 * 1048576))
a=$T/src1.raw b=$T/src2.raw
start_receiver rx
url=$(sed -n 's/^url //p' "$T/rx.out")
echo "$url" | grep -Eq '^vmconvert://127\.0\.0\.1:[0-9]+/\?fingerprint=sha256:' ||
    fail "the receiver printed no URL: $url"
# What a person types: the URL with the guest's address for the receiver,
# a token and a job name.
typed=$(echo "$url" | sed 's|//127\.0\.0\.1:[0-9]*/|//fleet@10.0.2.100:7010/tui|')

test_iso "$T/tui.iso" --append "vmconvert.wait=1"
appliance_boot tui --iso "$T/tui.iso" --disk "$a,if=pvscsi,serial=src1" \
    --disk "$b,if=ahci,serial=src2" --nic e1000 \
    --send-after 'or Enter to type each setting:' "$typed\\r" \
    --send-after 'disks to send, by number' '2\r' \
    --send-after 'start sending 1 disk' 'y\r' \
    --expect 'connection OK' --expect '=+ SUCCESS =+' \
    --expect 'reboot: Power down' --linger 20
[ "$(jq '.disks | length' "$RX_DIR/tui/job.json")" = 1 ] ||
    fail "tui: the job has other than one disk"
check_job tui "$b"
jq -e '.source.disks[] | select(.serial == "src1" and .sent == false)' \
    "$RX_DIR/tui/job.json" >/dev/null || fail "tui: src1 is not listed as not sent"
stop_receiver
echo "ok"
