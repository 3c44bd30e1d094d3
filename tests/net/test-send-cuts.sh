#!/bin/sh
# Resume through a connection that keeps breaking: a proxy (cutproxy)
# between the sender and the receiver cuts the connection 20 times or more
# at random points of the stream (a reset or a FIN, at random), and the
# sender, with an 8 MiB window, reconnects and resumes each time.  For
# each target (qcow2, raw, vmdk streamOptimized, and qcow2 with zstd on
# the wire):
#   - the job is done, qemu-img compare says the received image is
#     identical to the source, and qemu-img check passes where it applies;
#   - the cuts came in the middle of the data: each after more than a
#     megabyte, the receiver resumed at several different offsets, and the
#     last, uncut, connection carried only part of the disk's data;
#   - the sender reconnected at least once per cut, and the data it sent
#     again stays within the in-flight window: at most the window after
#     any one reconnect, at most cuts x window in all, and more than
#     nothing.
# shellcheck source-path=SCRIPTDIR source=../functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=net.sh
. "$(dirname "$0")/net.sh"
requires qemu-img --version

# The proxy cuts up to $max_cuts connections, each after 1.2 to 2.8 MiB on
# the wire: without a byte resent, the data would need 25 connections or
# more, so at least $cuts cuts must come before the end, however fast or
# slow the machine.  (A cut needs to come after more than a 1 MiB extent
# for a connection to keep anything.)
cuts=20
max_cuts=24
cut_min=$((1200 << 10))
cut_max=$((2800 << 10))
window=$((8 << 20))

# mksrc NAME SIZE SEED: a raw reference, 70 % of its regions data, and a
# qcow2 source made from it by qemu-img.
mksrc () {
    "$TOOLS/mkdisk" -s "$3" -d 70 "$2" "$T/$1.raw"
    qemu-img convert -f raw -O qcow2 "$T/$1.raw" "$T/$1.qcow2" ||
        fail "qemu-img convert"
}
# About 70 MB of data between holes.
mksrc plain $((96 << 20)) 41
# zstd sends about half of it: twice the disk for as many bytes on the wire.
mksrc big $((192 << 20)) 42
hash_of "$T"/*.qcow2 >"$T/src.hash"

# start_proxy SEED: cutproxy from a free port to the receiver; sets
# PX_PID, PX_PORT, PX_LOG.
start_proxy () {
    PX_LOG=$T/proxy-$1.log
    "$TOOLS/cutproxy" -p "$RX_PORT" -n "$max_cuts" -s "$1" \
        -b "$cut_min:$cut_max" -l "$PX_LOG" >"$T/proxy.out" &
    PX_PID=$!
    bg_started "$PX_PID"
    wait_for 10 grep -q '^listening ' "$T/proxy.out" ||
        fail "cutproxy did not start"
    PX_PORT=$(sed -n 's/^listening //p' "$T/proxy.out")
}

# all_ended: every connection the proxy accepted was cut or closed.
all_ended () {
    [ "$(grep -c '^accept ' "$PX_LOG")" -eq \
        "$(grep -c '^\(cut\|close\) ' "$PX_LOG")" ]
}

# stop_proxy: once every connection ended (the sender is done, so its
# last one is closed), SIGTERM.
stop_proxy () {
    wait_for 10 all_ended || fail "a connection through the proxy is left"
    kill -TERM "$PX_PID"
    wait "$PX_PID" 2>/dev/null || true
}

# done_field NAME: a number from the sender's final JSON object.
done_field () {
    grep '"event": "done"' "$T/send.err" | jq -e ".$1"
}

# run NAME SEED SOURCE FORMAT CHECK RECEIVE-OPTIONS SEND-OPTIONS...
# RECEIVE-OPTIONS is one word-split argument.
run () {
    name=$1 seed=$2 ref=$T/$3.raw src=$T/$3.qcow2 fmt=$4 check=$5 rx_opts=$6
    shift 6
    started=$(date +%s)
    # shellcheck disable=SC2086 # several options in one argument
    start_receiver "rx-$name" --format "$fmt" $rx_opts
    start_proxy "$seed"
    "$VMCONVERT" send --to "127.0.0.1:$PX_PORT" --fingerprint "$RX_FP" \
        --token fleet --job "cuts-$name" --window "$window" --backoff 0.02 \
        --retry 60 --progress=json "$@" "$src" 2>"$T/send.err" ||
        { tail -20 "$T/send.err" >&2; cat "$PX_LOG" >&2; tail -20 "$RX_LOG" >&2
          fail "$name: the send failed"; }
    stop_proxy
    stop_receiver

    # The copy.
    j=$RX_DIR/cuts-$name
    [ "$(job_state "cuts-$name")" = "done" ] || fail "$name: job not done"
    [ "$(jq -r '.disks[0].state' "$j/job.json")" = "done" ] ||
        fail "$name: disk not done"
    f=$j/$(jq -r '.disks[0].file' "$j/job.json")
    qemu-img compare -q -f raw -F "$fmt" "$ref" "$f" ||
        fail "$name: the received image differs from the source"
    if [ "$check" = yes ]; then
        qemu-img check -q -f "$fmt" "$f" || fail "$name: qemu-img check"
    fi

    # The cuts happened, and in the middle of the data.
    ncuts=$(grep -c '^cut ' "$PX_LOG") || true
    [ "$ncuts" -ge "$cuts" ] ||
        fail "$name: the proxy cut $ncuts connections, not $cuts or more"
    awk -v min="$cut_min" '/^cut / && $6 < min { bad = 1 } END { exit bad }' \
        "$PX_LOG" || fail "$name: a cut came before $cut_min bytes"
    grep -q '^cut .*(rst)' "$PX_LOG" || fail "$name: no reset among the cuts"
    grep -q '^cut .*(fin)' "$PX_LOG" || fail "$name: no FIN among the cuts"
    resumed=$(sed -n 's/.*disk 0: resuming at \([0-9]*\)$/\1/p' "$RX_LOG" |
        sort -u | wc -l)
    [ "$resumed" -ge 5 ] ||
        fail "$name: the receiver resumed at only $resumed different offsets"
    # The data of the disk: what was sent, less what was sent again.
    data=$(($(done_field data_bytes) - $(done_field resent_bytes)))
    last=$(sed -n 's/^close [0-9]* after \([0-9]*\) bytes.*/\1/p' "$PX_LOG" |
        tail -n 1)
    [ -n "$last" ] || fail "$name: no connection ended uncut"
    [ "$last" -lt "$data" ] ||
        fail "$name: the last connection carried all the data ($last bytes)"

    # Reconnects and what was sent again.
    reconnects=$(done_field reconnects)
    resent=$(done_field resent_bytes)
    resent_max=$(done_field resent_max)
    [ "$reconnects" -ge "$ncuts" ] ||
        fail "$name: $reconnects reconnects for $ncuts cuts"
    [ "$resent" -gt 0 ] || fail "$name: nothing was resent after $ncuts cuts"
    [ "$resent_max" -le "$window" ] ||
        fail "$name: $resent_max bytes resent after one cut, window $window"
    [ "$resent" -le $((ncuts * window)) ] ||
        fail "$name: $resent bytes resent for $ncuts cuts, window $window"
    echo "ok: $name: $ncuts cuts, $reconnects reconnects, $resent bytes" \
        "resent (at most $resent_max after one cut; window $window)," \
        "$(($(date +%s) - started)) s"
    rm -rf "$RX_DIR"
}

# The receiver acknowledges every 1 MiB (byte-driven) or every 10 ms
# (time-driven); with its default of one second, a connection that lives
# for a few dozen milliseconds would seldom keep anything.
run qcow2 1 plain qcow2 yes "--ack-bytes 1M"
run qcow2-zstd 2 big qcow2 yes "--ack-ms 10" --compress zstd
run raw 3 plain raw no "--ack-ms 10"
run vmdk-stream 4 plain vmdk yes "--ack-bytes 1M -o subformat=streamOptimized"

hash_of "$T"/*.qcow2 | cmp -s - "$T/src.hash" || fail "a source changed"
