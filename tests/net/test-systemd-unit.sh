#!/bin/sh
# The systemd unit in network/: systemd-analyze verify accepts it (with
# ExecStart pointing at the built binary), and its ExecStart command line,
# with the unit's paths moved into a temporary directory, starts a receiver
# that a sender can use and that exits 0 on the unit's KillSignal.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/net.sh"
requires systemd-analyze --version
requires qemu-img --version

unit=$top/network/vmconvert-receive.service
sed "s|/usr/local/bin/vmconvert|$VMCONVERT|" "$unit" \
    >"$T/vmconvert-receive.service"
systemd-analyze verify "$T/vmconvert-receive.service" >"$T/verify" 2>&1 ||
    { cat "$T/verify" >&2; fail "systemd-analyze verify"; }
[ ! -s "$T/verify" ] || { cat "$T/verify" >&2; fail "verify warned"; }
grep -q '^KillSignal=SIGTERM$' "$unit" || fail "KillSignal is not SIGTERM"

# ExecStart, continuation lines joined, paths moved under $T.
cmd=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed 's/\\$//' | tr -d '\n' |
    sed "s|^ExecStart=||; s|/usr/local/bin/vmconvert|$VMCONVERT|;
         s|/var/lib/vmconvert|$T/state|; s|/etc/vmconvert/tokens|$T/tokens|;
         s|0.0.0.0:10874|127.0.0.1:0|")
echo "$cmd" | grep -q -- "--dir $T/state" || fail "unexpected ExecStart: $cmd"
mkdir -p "$T/state"
# shellcheck disable=SC2086 # the command line is several words
$cmd >"$T/out" 2>"$T/log" &
pid=$!
bg_started $pid
wait_for 20 grep -q '^listening ' "$T/out" || fail "the unit's command did not start"
RX_PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$T/out")
RX_FP=$(sed -n 's/^fingerprint //p' "$T/out")
"$TOOLS/mkdisk" -s 5 -d 50 8M "$T/src.raw"
send_job --token fleet --job unit-test "$T/src.raw" 2>"$T/send.err" ||
    { cat "$T/send.err" >&2; fail "send failed"; }
qemu-img compare -q -f raw -F qcow2 "$T/src.raw" "$T/state/unit-test/disk0.qcow2" ||
    fail "received image differs"
kill -TERM $pid
st=0
wait $pid || st=$?
[ $st -eq 0 ] || { cat "$T/log" >&2; fail "receiver exit $st on SIGTERM"; }
