#!/bin/sh
# The appliance when things go wrong:
#   a wrong fingerprint: nothing is sent (no job on the receiver), the
#     console says it is the fingerprint, and the failure page's choices
#     work (p powers off);
#   the receiver killed (SIGKILL) and restarted in the middle of the
#     transfer: the appliance reconnects and resumes by itself, and both
#     disks arrive identical.
# The source disks are unchanged after each boot.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/../net/net.sh"
# shellcheck source=tests/appliance/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/appliance/appliance.sh
. "$(dirname "$0")/appliance.sh"
requires qemu-img --version

make_sources src $((24 * 1048576)) $((16 * 1048576 + 512))
a=$T/src1.raw b=$T/src2.raw
start_receiver rx
disks="--disk $a,if=pvscsi,serial=src1 --disk $b,if=ahci,serial=src2"

# 1. A wrong fingerprint (the right one with its last digit changed).
last=$(printf '%s' "$RX_FP" | tail -c 1)
case $last in 0) other=1 ;; *) other=0 ;; esac
bad_fp=$(printf '%s' "$RX_FP" | sed "s/.\$/$other/")
test_iso "$T/badfp.iso" --append "$(settings badfp | sed "s/$RX_FP/$bad_fp/")"
# shellcheck disable=SC2086 # $disks is several options
boot badfp --iso "$T/badfp.iso" $disks --nic vmxnet3 \
    --user-net "restrict=on,guestfwd=10.0.2.100:7010=$RX_PORT" \
    --expect '=+ FAILED =+' --expect 'wrong server certificate fingerprint' \
    --expect 'Nothing was sent' --send-after 'your choice: ' 'p\r' \
    --expect 'reboot: Power down' --linger 20
[ ! -e "$RX_DIR/badfp" ] || fail "badfp: the receiver has a job directory"
sources_unchanged

# 2. The receiver killed twice while disks are on their way, each time
# restarted on the same port and directory (same certificate).  The
# transfer is paced (vmconvert.maxrate) so that it is still going on.
test_iso "$T/kill.iso" --append "$(settings kill) vmconvert.maxrate=2M vmconvert.wait=1"
# shellcheck disable=SC2086
appliance_boot kill --iso "$T/kill.iso" $disks --nic e1000 \
    --expect 'vmconvert: connected' --expect 'resuming there' \
    --expect '=+ SUCCESS =+' --expect 'reboot: Power down' --linger 20 &
boot_pid=$!
bg_started "$boot_pid"
durable () {
    jq -r '.progress.durable_bytes' "$RX_DIR/kill/job.json" 2>/dev/null
}
has_progress () {
    [ "$(durable)" -gt "$1" ] 2>/dev/null
}
for kill in 1 2; do
    # Wait until the receiver has made part of the job durable.
    before=$( [ -e "$RX_DIR/kill/job.json" ] && durable || echo 0)
    wait_for 180 has_progress "$((before + 4 * 1048576))" ||
        fail "kill $kill: no progress on the receiver"
    echo "kill $kill: the receiver has $(durable) bytes"
    kill_receiver
    sleep 2
    start_receiver rx
done
st=0
wait "$boot_pid" || st=$?
[ "$st" -eq 0 ] || fail "the appliance's boot failed ($st)"
console kill 'the receiver has [0-9]+ of [0-9]+ bytes; resuming there'
check_job kill "$a" "$b"
stop_receiver
echo "ok"
