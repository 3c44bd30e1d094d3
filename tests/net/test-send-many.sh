#!/bin/sh
# 64 senders at once on one receiver: 64 connections are open at the same
# time (counted in /proc/net/tcp), every job completes and is identical to
# its source, and the receiver's peak memory (VmHWM) stays bounded: well
# under the data it received, and under MAX_RSS_MIB (3 MiB a connection:
# measured about 1.5; each connection's buffers are bounded: one frame,
# one decompressed extent, one image writer, all touched only as far as
# the sender's extents, at most 1 MiB, need).  Half the senders compress
# with zstd, so the decompression buffers are used too.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/net.sh"
requires qemu-img --version

n=64
mib=8
MAX_RSS_MIB=${MAX_RSS_MIB:-192}

# The jobs go to a tmpfs: this is about connections and memory, and 64
# jobs checkpointing twice a second each would measure the disk's fsync.
mkdir "$T/rx"
if mount -t tmpfs -o size=1200m tmpfs "$T/rx" 2>/dev/null; then
    cleanup_fn "umount -l '$T/rx'"
fi
# --max-rate 128K below paces each sender, so that all are under way
# together for several seconds however fast the machine (starting 64
# senders can take half a minute on 2 busy cores).
start_receiver rx --max-connections 100

# Sources for the compressing senders (odd i) compress to about half,
# whatever the seed: each 64 KiB is half random bytes, half a pattern.  The
# others are mkdisk's mix of data, zeros and holes.
i=0
while [ "$i" -lt "$n" ]; do
    if [ $((i % 2)) -eq 0 ]; then
        "$TOOLS/mkdisk" -s $((100 + i)) -d 100 $((mib * 1048576)) \
            "$T/src$i.raw"
    else
        /usr/bin/python3 -c '
import os, sys
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2]) * 16):
        f.write(os.urandom(32768) + b"vmconvert " * 3276 + b"vm")
' "$T/src$i.raw" "$mib"
    fi
    i=$((i + 1))
done

# Established connections to the receiver's port, from /proc/net/tcp
# (local address :PORT in hex, state 01).
hexport=$(printf '%04X' "$RX_PORT")
connections () {
    awk -v p=":$hexport" '$2 ~ p"$" && $4 == "01"' /proc/net/tcp | wc -l
}

pids=""
i=0
while [ "$i" -lt "$n" ]; do
    comp=none
    [ $((i % 2)) -eq 0 ] || comp=zstd
    send_job --token fleet --job "many$i" --max-rate 128K --compress "$comp" \
        "$T/src$i.raw" 2>"$T/send$i.err" &
    bg_started $!
    pids="$pids $!"
    i=$((i + 1))
done

peak=0
end=$(($(date +%s) + 90))
while [ "$peak" -lt "$n" ] && [ "$(date +%s)" -lt "$end" ]; do
    c=$(connections)
    [ "$c" -le "$peak" ] || peak=$c
    sleep 0.2
done
[ "$peak" -ge "$n" ] || fail "at most $peak connections at once, not $n"
echo "ok: $peak connections open at once"

i=0
for p in $pids; do
    st=0
    wait "$p" || st=$?
    [ "$st" -eq 0 ] || { cat "$T/send$i.err" >&2; fail "sender $i: exit $st"; }
    i=$((i + 1))
done
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$RX_PID/status")
echo "receiver: peak RSS (VmHWM) $((hwm / 1024)) MiB with $n connections" \
    "(at most $((hwm / n)) KiB each); $((n * mib)) MiB received"
[ "$hwm" -le $((MAX_RSS_MIB * 1024)) ] ||
    fail "the receiver's peak RSS $((hwm / 1024)) MiB is over $MAX_RSS_MIB MiB"
[ "$hwm" -lt $((n * mib * 1024 / 2)) ] ||
    fail "the receiver's peak RSS is not well under the data it received"
# Every connection's thread ends.
one_thread () {
    grep -q '^Threads:[[:space:]]*1$' "/proc/$RX_PID/status"
}
wait_for 10 one_thread ||
    fail "threads left in the receiver: $(grep '^Threads:' "/proc/$RX_PID/status")"
stop_receiver

i=0
while [ "$i" -lt "$n" ]; do
    [ "$(job_state "many$i")" = "done" ] || fail "many$i is not done"
    qemu-img compare -q -f raw "$T/src$i.raw" "$RX_DIR/many$i/disk0.qcow2" ||
        fail "many$i differs from its source"
    i=$((i + 1))
done
echo "ok: $n jobs done, identical"
