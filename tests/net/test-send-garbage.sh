#!/bin/sh
# Clients that do not follow the protocol, each dropped with a clear
# reason (told to the client when it can read one, always in the
# receiver's log), while a good job runs on the same receiver and
# completes identical:
#   a plaintext client; a TCP client that says nothing, and a TLS client
#   that says nothing (both dropped after --idle-timeout); clients that
#   send their TLS handshake or their HELLO a byte at a time (dropped
#   when the two together took longer than --idle-timeout); text instead of
#   a frame; a frame header announcing 4 GiB; a frame before HELLO; a HELLO
#   of another version, a truncated HELLO; an EXTENT instead of JOB; and a
#   client that stalls in the middle of an extent, whose job is then
#   resumed by a real sender and completes.
# The misbehaving clients are build/tests/tools/rawclient (see there).
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/net.sh"
# shellcheck source=tests/net/alongside.sh
. "$(dirname "$0")/alongside.sh"
requires qemu-img --version

idle=2
# shellcheck disable=SC2086 # GOOD_RX_OPTS is several options
start_receiver rx --idle-timeout "$idle" $GOOD_RX_OPTS
good_job_start good 96

# bad STATUS MESSAGE MODE [RAWCLIENT-OPTIONS...]: rawclient MODE exits
# with STATUS and says MESSAGE (see rawclient.c: 2 the receiver sent
# ERROR, 4 it closed without a word); the receiver is still there.
bad () {
    _st=$1 _msg=$2 _mode=$3
    shift 3
    expect_error "$_st" "$_msg" \
        "$TOOLS/rawclient" -p "$RX_FP" -w 20 "$@" "127.0.0.1:$RX_PORT" "$_mode"
    kill -0 "$RX_PID" || fail "$_mode: the receiver died"
    echo "ok: $_mode: $(cat "$T/.err")"
}
# logged PATTERN: the receiver's log has a line matching PATTERN.
logged () {
    grep -Eq -- "$1" "$RX_LOG" || { tail -20 "$RX_LOG" >&2; fail "not in the receiver's log: $1"; }
}
# dropped_after: the last rawclient was dropped after the idle timeout
# (not at once, and not much later).
dropped_after () {
    _s=$(sed -n 's/.* after \([0-9]*\)\.[0-9] s.*/\1/p' "$T/.err")
    if [ -z "$_s" ] || [ "$_s" -lt $((idle - 1)) ] || [ "$_s" -gt $((idle + 4)) ]; then
        fail "dropped after ${_s:-?} s, expected about $idle s"
    fi
}

bad 4 '^rawclient: the receiver closed the connection after 0\.[0-9] s' plain
logged 'refused: not a TLS client: it sent plaintext \("GET / HTTP/1\.0\.\.\.\."\); vmconvert send speaks TLS 1\.3$'
bad 4 '^rawclient: the receiver closed the connection after' tcp-stall
dropped_after
# (The socket timeout or the handshake deadline, whichever is first.)
logged "refused: (TLS handshake: timed out \(the client sent nothing\)|no TLS handshake within $idle s)\$"
bad 4 '^rawclient: the receiver closed the connection after .* without a message$' tls-stall
dropped_after
logged "(the sender was silent for $idle s: dropped|dropped: no HELLO within $idle s)\$"
# Clients that trickle a byte every half second, so that no read times
# out: the handshake and the HELLO together get the idle timeout.
bad 4 '^rawclient: the receiver closed the connection after .* sent a byte at a time\)$' trickle
dropped_after
logged "refused: no TLS handshake within $idle s\$"
bad 4 '^rawclient: the receiver closed the connection after .* without a message$' trickle-hello
dropped_after
logged "dropped: no HELLO within $idle s\$"
good_job_running

bad 2 '^rawclient: receiver ERROR protocol after .*: protocol: unknown frame type [0-9]+$' garbage
bad 2 '^rawclient: receiver ERROR protocol after .*: protocol: HELLO frame of 4294967280 bytes is too large \(limit 16384\)$' oversized
bad 2 '^rawclient: receiver ERROR protocol after .*: expected HELLO, got EXTENT$' early
bad 2 '^rawclient: receiver ERROR version after .*: protocol version 2 is not supported \(this receiver speaks 1\)$' version
bad 2 '^rawclient: receiver ERROR protocol after .*: protocol: HELLO: bad magic \(not a vmconvert sender\)$' short-hello
bad 2 '^rawclient: receiver ERROR protocol after .*: expected JOB, got EXTENT$' no-job -j garbage-nojob
logged 'error sent to the sender: protocol: HELLO frame of 4294967280 bytes is too large'

# A stall in the middle of an extent: dropped after the idle timeout, the
# job is kept (not failed), and a real sender resumes it to the end.
"$TOOLS/mkdisk" -s 5 -d 80 $((6 * 1048576)) "$T/stall.raw"
bad 4 '^rawclient: the receiver closed the connection after .* without a message$' \
    mid-stall -j garbage-stall -s "$T/stall.raw"
dropped_after
logged "\[[^]]* garbage-stall\] the sender was silent for $idle s: dropped\$"
[ "$(job_state garbage-stall)" = "receiving" ] ||
    fail "the stalled job is $(job_state garbage-stall), not receiving"
good_job_running
send_job --token fleet --job garbage-stall "$T/stall.raw" 2>"$T/stall.err" ||
    { cat "$T/stall.err" >&2; fail "the stalled job could not be resumed"; }
[ "$(job_state garbage-stall)" = "done" ] || fail "the stalled job is not done"
qemu-img compare -q -f raw "$T/stall.raw" "$RX_DIR/garbage-stall/disk0.qcow2" ||
    fail "the stalled job, resumed, differs from its source"
echo "ok: the stalled job was resumed and completed"

good_job_running
good_job_finish
stop_receiver
