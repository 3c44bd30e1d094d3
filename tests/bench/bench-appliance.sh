#!/bin/sh
# tests/bench/bench-appliance.sh: the appliance's figures for BENCHMARKS.md
# (bench.sh section "appliance"): the sizes of the ISO, the initrd and the
# kernel; the seconds from QEMU's start to the receiver's first byte (the
# appliance's "connected" line, once TLS and the job handshake are done);
# and the throughput inside the appliance under this machine's QEMU (TCG
# without /dev/kvm), sending BENCH_APPLIANCE_MIB (256) MiB of random data
# from a PVSCSI disk over slirp to `vmconvert receive` on 127.0.0.1.
# Prints a Markdown table on stdout.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
mib=${BENCH_APPLIANCE_MIB:-256}
vmconvert=$top/build/vmconvert
vmlinuz=$top/build/appliance/vmlinuz
initrd=$top/build/appliance/initrd.img
iso=$top/build/vmconvert.iso
for f in "$vmconvert" "$vmlinuz" "$initrd" "$iso"; do
    [ -f "$f" ] || { echo "bench-appliance: no $f (make iso)" >&2; exit 1; }
done
w=$(mktemp -d "${TMPDIR:-/tmp}/vmc-bench-appliance.XXXXXX")
rx_pid=""
cleanup () {
    [ -z "$rx_pid" ] || kill "$rx_pid" 2>/dev/null || true
    [ -z "$rx_pid" ] || wait "$rx_pid" 2>/dev/null || true
    rm -rf "$w"
}
trap cleanup EXIT

head -c $((mib * 1048576)) /dev/urandom >"$w/src.raw"
printf 'fleet reusable\n' >"$w/tokens"
mkdir "$w/rx"
"$vmconvert" receive --dir "$w/rx" --listen 127.0.0.1:0 --tokens "$w/tokens" \
    >"$w/rx.out" 2>"$w/rx.log" &
rx_pid=$!
i=0
while ! grep -q '^listening ' "$w/rx.out" && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
port=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$w/rx.out")
fp=$(sed -n 's/^fingerprint //p' "$w/rx.out")
"$top/iso/build-iso.sh" --kernel "$vmlinuz" --initrd "$initrd" \
    --out "$w/bench.iso" --append "vmconvert.server=10.0.2.100:7010 \
vmconvert.fingerprint=$fp vmconvert.token=fleet vmconvert.job=bench \
vmconvert.allblocks=1 vmconvert.wait=0" >/dev/null
python3 "$top/tests/appliance/qemu-boot.py" --quiet --json --timeout 900 \
    --iso "$w/bench.iso" --disk "$w/src.raw,if=pvscsi,serial=bench" \
    --nic vmxnet3 --user-net "restrict=on,guestfwd=10.0.2.100:7010=$port" \
    --expect 'vmconvert-init: start' --expect 'vmconvert: connected' \
    --expect '=+ SUCCESS =+' --log "$w/console.log" >"$w/boot.json"
qemu-img compare -q -f raw "$w/src.raw" "$w/rx/bench/disk0.qcow2" ||
    { echo "bench-appliance: the received disk differs" >&2; exit 1; }
rate=$(sed -n 's/.*Job bench: [0-9]* s, \([0-9.]*\) MB\/s.*/\1/p' "$w/console.log" | head -n 1)
python3 - "$w/boot.json" "$iso" "$initrd" "$vmlinuz" "$mib" "$rate" \
    "$(awk '{print $1}' /proc/loadavg)" <<'EOF'
import json, os, sys
r = json.load(open(sys.argv[1]))
m = {x["regex"]: x["seconds"] for x in r["markers"]}
iso, initrd, vmlinuz, mib, rate, load = sys.argv[2:]
def size(p):
    return "%.1f MiB (%d bytes)" % (os.path.getsize(p) / 1048576, os.path.getsize(p))
print("| appliance figure | value |")
print("|---|---|")
print("| ISO (`make iso`) | %s (goal <= 64 MiB) |" % size(iso))
print("| initrd (zstd) | %s |" % size(initrd))
print("| kernel | %s |" % size(vmlinuz))
print("| QEMU start -> /init | %.1f s |" % m["vmconvert-init: start"])
print("| QEMU start -> first byte received (connected) | %.1f s |" % m["vmconvert: connected"])
print("| QEMU start -> all sent and verified | %.1f s |" % m["=+ SUCCESS =+"])
print("| throughput inside the appliance (%s MiB random, all blocks, TLS ChaCha20, %s) | %s MB/s |" % (mib, r["accel"].upper(), rate))
print("| load average at the end | %s |" % load)
EOF
