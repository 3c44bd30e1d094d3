#!/bin/bash
# tests/bench/bench-fixup.sh: the `fixup` section of make bench.
#
# vmconvert convert --fixup (inspection, the appliance in QEMU over an
# overlay, the guest's own initramfs tool, the copy) on the test guests of
# tests/guests/, beside qemu-img convert of the same image, which copies
# without making the guest bootable: what the fixups cost on top of a
# copy.  One run each (a fixup VM run takes minutes under TCG); wall time,
# peak RSS (of the command and the processes it waited for: QEMU counts)
# and output size.  Prints a Markdown table.  Variants: BENCH_GUESTS
# [itools dracut lvm].
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
VMCONVERT=$top/build/vmconvert
out=${BENCH_FIXUP_DIR:-$top/build/bench/fixup}
mkdir -p "$out"

echo "| guest | command | seconds | peak RSS MiB | output MB |"
echo "|---|---|---|---|---|"
for v in ${BENCH_GUESTS:-itools dracut lvm}; do
    img=$top/build/guests/$v.vmdk
    if [ ! -f "$img" ]; then
        "$top/tests/guests/make-debian-guest.sh" --if-changed "$v" "$img" \
            >/dev/null 2>&1 || { echo "| $v | (could not be built) | | | |"; continue; }
    fi
    for cmd in fixup qemu-img; do
        rm -f "$out/$v.qcow2" "$out/$v.qcow2.fixup.json"
        if [ "$cmd" = fixup ]; then
            run=("$VMCONVERT" convert --fixup --mac ens3=52:54:00:12:34:56
                 -O qcow2 "$img" "$out/$v.qcow2")
            label="vmconvert convert --fixup"
        else
            run=(qemu-img convert -O qcow2 "$img" "$out/$v.qcow2")
            label="qemu-img convert (no fixups)"
        fi
        if /usr/bin/time -f '%e %M' -o "$out/time" "${run[@]}" \
                >"$out/log" 2>&1; then
            read -r secs rss <"$out/time"
            size=$(stat -c %s "$out/$v.qcow2")
            echo "| $v | $label | $secs | $((rss / 1024)) | $((size / 1000000)) |"
        else
            echo "| $v | $label | FAILED | | |"
            tail -n 5 "$out/log" >&2
        fi
    done
done
rm -f "$out"/*.qcow2 "$out"/*.fixup.json
