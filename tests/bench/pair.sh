#!/bin/bash
# tests/bench/pair.sh PIPELINE [OPTIONS...]
#
# One run of a network pipeline for bench.sh's send section: start the
# serving side, time the client until the output is complete, measure
# both sides, stop the server.  bench.sh runs it in a private network
# namespace (unshare -n) when it can, so that the loopback counters count
# this pipeline's traffic and nothing else.
#
# PIPELINE:
#   vmconvert [SEND-OPTIONS...]
#       `vmconvert receive --format qcow2` started first (untimed), then
#       `vmconvert send SEND-OPTIONS -f FMT SRC` timed until it exits
#       (after the receiver verified the disk's digest: the output is
#       complete)
#   nbdcopy-qemu-nbd
#       `nbdkit --tls=require --tls-psk -r file SRC` and `qemu-nbd -f qcow2`
#       on a pre-created qcow2 (unix socket) started first (untimed), then
#       `nbdcopy nbds://... nbd+unix://...` timed until nbdcopy has exited
#       and qemu-nbd has closed the image (it exits when its client
#       disconnects, writing its cached qcow2 metadata)
#   nbdcopy-raw
#       same server, `nbdcopy nbds://... OUT.raw` (a local raw file)
#   qemu-img
#       same server, `qemu-img convert -O qcow2` reading nbds:// with a
#       tls-creds-psk object
#
# Environment (set by bench.sh):
#   PAIR_SRC PAIR_FMT   the source and its format (raw only for the nbdkit
#                       pipelines: its file plugin serves the bytes as-is)
#   PAIR_SIZE           its virtual size in bytes
#   PAIR_DIR            an empty directory for the output, sockets, logs
#   PAIR_KEYS           cert.pem key.pem tokens (vmconvert), keys.psk
#                       (nbdkit/libnbd/qemu PSK), gnutls.cfg (GnuTLS
#                       priority override: no ChaCha20, see BENCHMARKS.md)
#   PAIR_NETNS          1: we are alone in a network namespace: bring lo
#                       up, use fixed ports
#   PAIR_VERBOSE        1: log nbdkit's TLS session (cipher check)
#   VMCONVERT           the binary
#
# Prints one line, fields separated by tabs:
#   wall user sys rss_tx_kb rss_rx_kb wire_bytes output note
# wall: seconds, the timed part; user, sys: CPU seconds of every process
# of the pipeline (servers from /proc at the end of the run, clients from
# /usr/bin/time); rss_tx_kb: peak RSS of the side that reads the source
# (vmconvert send, nbdkit); rss_rx_kb: peak RSS of the side that writes the
# output (vmconvert receive; nbdcopy + qemu-nbd, the sum of their peaks;
# qemu-img); wire_bytes: bytes that crossed the loopback interface during
# the timed part, both directions, TCP/IP headers included.
set -uo pipefail

die () { echo "pair: $*" >&2; exit 1; }

pipeline=${1:?pipeline}
shift
: "${PAIR_SRC:?}" "${PAIR_FMT:?}" "${PAIR_SIZE:?}" "${PAIR_DIR:?}" "${PAIR_KEYS:?}"
D=$PAIR_DIR
K=$PAIR_KEYS
TICK=$(getconf CLK_TCK)

# Processes started here, stopped (by PID) when the script ends.
PIDS=()
cleanup () {
    local p
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 143' TERM INT

if [ "${PAIR_NETNS:-0}" = 1 ]; then
    ip link set lo up || die "cannot bring lo up in the namespace"
    NBD_PORT=10809
else
    NBD_PORT=$(( 20000 + RANDOM % 20000 ))
fi

lo_bytes () {
    awk '$1 == "lo:" { print $2 }' /proc/net/dev
}

now_ns () {
    date +%s%N
}

# wait_for SECONDS CMD...: poll CMD every 20 ms.
wait_for () {
    local n=$(( $1 * 50 ))
    shift
    until "$@" >/dev/null 2>&1; do
        n=$(( n - 1 ))
        [ "$n" -gt 0 ] || return 1
        sleep 0.02
    done
}

# proc_cpu PID: "user sys" seconds of a running process (all its threads).
proc_cpu () {
    awk -v t="$TICK" '{ sub(/^.*\) /, ""); printf "%.2f %.2f\n", $12 / t, $13 / t }' \
        "/proc/$1/stat"
}

# proc_hwm PID: peak RSS (VmHWM) in KiB of a running process.
proc_hwm () {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# time_field FILE N: field N of the last line of a /usr/bin/time -o file
# written with -f '%e %U %S %M'.
time_field () {
    tail -n 1 "$1" | awk -v n="$2" '{ print $n }'
}

# GnuTLS (nbdkit, libnbd, qemu): AES-GCM, not nettle's slow ChaCha20.
export GNUTLS_SYSTEM_PRIORITY_FILE=$K/gnutls.cfg

start_nbdkit () {
    local v=()
    [ "$PAIR_FMT" = raw ] || die "nbdkit's file plugin serves raw sources only"
    [ "${PAIR_VERBOSE:-0}" = 1 ] && v=(-v -D nbdkit.tls.session=1)
    nbdkit -f "${v[@]}" --tls=require --tls-psk="$K/keys.psk" \
        -i 127.0.0.1 -p "$NBD_PORT" -P "$D/nbdkit.pid" -r \
        file "$PAIR_SRC" 2>"$D/nbdkit.log" &
    TX_PID=$!
    PIDS+=("$TX_PID")
    wait_for 20 test -s "$D/nbdkit.pid" ||
        { cat "$D/nbdkit.log" >&2; die "nbdkit did not start"; }
}

NBD_URI="nbds://bench@127.0.0.1:__PORT__/?tls-psk-file=__KEYS__/keys.psk"

# The server's figures, then stop it.
stop_server () {
    read -r TX_USER TX_SYS <<<"$(proc_cpu "$TX_PID")"
    TX_HWM=$(proc_hwm "$TX_PID")
    kill -TERM "$TX_PID"
    wait "$TX_PID" 2>/dev/null
}

note=
case $pipeline in
vmconvert)
    mkdir -p "$D/rx"
    "$VMCONVERT" receive --dir "$D/rx" --listen 127.0.0.1:0 --format qcow2 \
        --tokens "$K/tokens" --cert "$K/cert.pem" --key "$K/key.pem" \
        >"$D/rx.out" 2>"$D/rx.log" &
    RX_PID=$!
    PIDS+=("$RX_PID")
    wait_for 20 grep -q '^listening ' "$D/rx.out" ||
        { cat "$D/rx.log" >&2; die "the receiver did not start"; }
    port=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$D/rx.out")
    fp=$(sed -n 's/^fingerprint //p' "$D/rx.out")
    w0=$(lo_bytes)
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$D/tx.time" -- \
        "$VMCONVERT" send --to "127.0.0.1:$port" --fingerprint "$fp" \
        --token bench --job bench "$@" -f "$PAIR_FMT" "$PAIR_SRC" \
        2>"$D/tx.log" >/dev/null
    rc=$?
    t1=$(now_ns)
    w1=$(lo_bytes)
    [ $rc = 0 ] || { tail -n 3 "$D/tx.log" >&2; die "vmconvert send: exit $rc"; }
    read -r RX_USER RX_SYS <<<"$(proc_cpu "$RX_PID")"
    RX_HWM=$(proc_hwm "$RX_PID")
    kill -TERM "$RX_PID"
    wait "$RX_PID" || { tail -n 3 "$D/rx.log" >&2; die "vmconvert receive: exit status $?"; }
    user=$(awk -v a="$(time_field "$D/tx.time" 2)" -v b="$RX_USER" 'BEGIN { print a + b }')
    sys=$(awk -v a="$(time_field "$D/tx.time" 3)" -v b="$RX_SYS" 'BEGIN { print a + b }')
    tx_rss=$(time_field "$D/tx.time" 4)
    rx_rss=$RX_HWM
    out=$D/rx/bench/disk0.qcow2
    note="CPU send $(awk -v a="$(time_field "$D/tx.time" 2)" -v b="$(time_field "$D/tx.time" 3)" 'BEGIN { printf "%.2f", a + b }') s, receive $(awk -v a="$RX_USER" -v b="$RX_SYS" 'BEGIN { printf "%.2f", a + b }') s"
    payload=$(grep -o '[0-9]* on the wire' "$D/tx.log" | head -n 1)
    [ -n "$payload" ] && note="$note; payload $payload"
    ;;
nbdcopy-qemu-nbd|nbdcopy-raw|qemu-img)
    start_nbdkit
    uri=${NBD_URI/__PORT__/$NBD_PORT}
    uri=${uri/__KEYS__/$K}
    case $pipeline in
    nbdcopy-qemu-nbd)
        out=$D/out.qcow2
        qemu-img create -q -f qcow2 "$out" "$PAIR_SIZE" || die "qemu-img create"
        /usr/bin/time -f '%e %U %S %M' -o "$D/qemu-nbd.time" -- \
            qemu-nbd -f qcow2 -k "$D/qemu-nbd.sock" --pid-file "$D/qemu-nbd.pid" \
            "$out" 2>"$D/qemu-nbd.log" &
        QN_TIME_PID=$!
        PIDS+=("$QN_TIME_PID")
        wait_for 20 test -s "$D/qemu-nbd.pid" ||
            { cat "$D/qemu-nbd.log" >&2; die "qemu-nbd did not start"; }
        PIDS+=("$(cat "$D/qemu-nbd.pid")")
        client=(nbdcopy "$uri" "nbd+unix:///?socket=$D/qemu-nbd.sock")
        ;;
    nbdcopy-raw)
        out=$D/out.raw
        : >"$out"
        client=(nbdcopy "$uri" "$out")
        ;;
    qemu-img)
        out=$D/out.qcow2
        client=(qemu-img convert
            --object "tls-creds-psk,id=tls0,endpoint=client,dir=$K,username=bench"
            --image-opts "driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port=$NBD_PORT,file.tls-creds=tls0"
            -O qcow2 "$out")
        ;;
    esac
    w0=$(lo_bytes)
    t0=$(now_ns)
    /usr/bin/time -f '%e %U %S %M' -o "$D/client.time" -- "${client[@]}" \
        >/dev/null 2>"$D/client.log"
    rc=$?
    if [ "$pipeline" = nbdcopy-qemu-nbd ]; then
        # qemu-nbd exits once nbdcopy has disconnected; the qcow2 is only
        # complete then.
        wait "$QN_TIME_PID"
        qrc=$?
    fi
    t1=$(now_ns)
    w1=$(lo_bytes)
    [ $rc = 0 ] || { tail -n 3 "$D/client.log" >&2; die "${client[0]}: exit $rc"; }
    stop_server
    user=$(awk -v a="$(time_field "$D/client.time" 2)" -v b="$TX_USER" 'BEGIN { print a + b }')
    sys=$(awk -v a="$(time_field "$D/client.time" 3)" -v b="$TX_SYS" 'BEGIN { print a + b }')
    tx_rss=$TX_HWM
    rx_rss=$(time_field "$D/client.time" 4)
    note="CPU nbdkit $(awk -v a="$TX_USER" -v b="$TX_SYS" 'BEGIN { printf "%.2f", a + b }') s, ${client[0]} $(awk -v a="$(time_field "$D/client.time" 2)" -v b="$(time_field "$D/client.time" 3)" 'BEGIN { printf "%.2f", a + b }') s"
    if [ "$pipeline" = nbdcopy-qemu-nbd ]; then
        [ "$qrc" = 0 ] || { tail -n 3 "$D/qemu-nbd.log" >&2; die "qemu-nbd: exit $qrc"; }
        note="$note, qemu-nbd $(awk -v a="$(time_field "$D/qemu-nbd.time" 2)" -v b="$(time_field "$D/qemu-nbd.time" 3)" 'BEGIN { printf "%.2f", a + b }') s; RSS nbdcopy $(( rx_rss / 1024 )) + qemu-nbd $(( $(time_field "$D/qemu-nbd.time" 4) / 1024 )) MiB"
        rx_rss=$(( rx_rss + $(time_field "$D/qemu-nbd.time" 4) ))
        user=$(awk -v a="$user" -v b="$(time_field "$D/qemu-nbd.time" 2)" 'BEGIN { print a + b }')
        sys=$(awk -v a="$sys" -v b="$(time_field "$D/qemu-nbd.time" 3)" 'BEGIN { print a + b }')
    fi
    if [ "${PAIR_VERBOSE:-0}" = 1 ]; then
        cipher=$(sed -n 's/.*TLS session: //p' "$D/nbdkit.log" | sort -u | tr '\n' ' ')
        note="${note:+$note; }TLS ${cipher:-unknown}"
    fi
    ;;
*)
    die "unknown pipeline: $pipeline"
    ;;
esac

if [ -z "${out:-}" ] || [ ! -f "$out" ]; then
    die "no output"
fi
ms=$(( (t1 - t0) / 1000000 ))
wall=$(printf '%d.%03d' $(( ms / 1000 )) $(( ms % 1000 )))
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wall" "$user" "$sys" "$tx_rss" \
    "$rx_rss" "$(( w1 - w0 ))" "$out" "$note"
