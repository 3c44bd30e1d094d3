#!/bin/sh
# Verification failures, while a good job runs on the same receiver and
# completes identical:
#   a disk whose every extent is right but whose DISK_END digest is not
#   (the right one with one bit flipped): DISK_DONE says mismatch, the
#   disk and the job are failed in job.json with the reason, never done,
#   the image keeps its .part name, and a real sender that comes back for
#   the job is refused, so it is never reported done;
#   an extent whose hash does not match its data: ERROR verify, the job
#   failed the same way.
# The same client with the right digest (a control) gets its disk
# verified, so the failures are the digest's and the hash's doing.
# There is no honest way to make `vmconvert send` lie about a digest:
# build/tests/tools/rawclient speaks the protocol (network/proto.h) here.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/net.sh"
# shellcheck source=tests/net/alongside.sh
. "$(dirname "$0")/alongside.sh"
requires qemu-img --version

# shellcheck disable=SC2086 # GOOD_RX_OPTS is several options
start_receiver rx $GOOD_RX_OPTS
good_job_start good 64

# An odd size: the last digest block is short.
src=$T/src.raw
"$TOOLS/mkdisk" -s 11 -d 70 $((5 * 1048576 + 3 * 512)) "$src"
raw () {
    "$TOOLS/rawclient" -p "$RX_FP" -w 20 -s "$src" "$@"
}
# failed_job JOB REASON: job.json says the job and its disk failed for
# REASON (a grep -E pattern), with no digest; the image is still .part
# and nothing has the final name.
failed_job () {
    j=$RX_DIR/$1/job.json
    [ "$(jq -r .state "$j")" = "failed" ] || fail "$1: job state $(jq -r .state "$j")"
    jq -r .error "$j" | grep -Eq -- "$2" || fail "$1: job error: $(jq -r .error "$j")"
    [ "$(jq -r '.disks[0].state' "$j")" = "failed" ] ||
        fail "$1: disk state $(jq -r '.disks[0].state' "$j")"
    jq -r '.disks[0].error' "$j" | grep -Eq -- "$2" ||
        fail "$1: disk error: $(jq -r '.disks[0].error' "$j")"
    [ "$(jq -r '.disks[0].digest' "$j")" = null ] || fail "$1: a digest is recorded"
    [ "$(jq -r '.disks[0].file' "$j")" = disk0.qcow2.part ] ||
        fail "$1: the disk's file is $(jq -r '.disks[0].file' "$j")"
    [ -f "$RX_DIR/$1/disk0.qcow2.part" ] || fail "$1: no disk0.qcow2.part"
    [ ! -e "$RX_DIR/$1/disk0.qcow2" ] || fail "$1: the image got its final name"
}

# The control: the right digest.
raw -j digest-control "127.0.0.1:$RX_PORT" good 2>"$T/control.err" ||
    { cat "$T/control.err" >&2; fail "rawclient good: exit $?"; }
grep -Eq '^rawclient: DISK_DONE disk 0: verified' "$T/control.err" ||
    fail "rawclient good: $(cat "$T/control.err")"
[ "$(job_state digest-control)" = "done" ] || fail "digest-control is not done"
qemu-img compare -q -f raw "$src" "$RX_DIR/digest-control/disk0.qcow2" ||
    fail "digest-control differs from its source"
echo "ok: the control job is verified"

# A wrong digest.
expect_error 3 '^rawclient: DISK_DONE disk 0: digest mismatch \(the receiver.s digest is [0-9a-f]{64}\)$' \
    raw -j digest-bad "127.0.0.1:$RX_PORT" bad-digest
echo "ok: bad-digest: $(cat "$T/.err")"
reason="the digest of what was written does not match the sender's"
failed_job digest-bad "^$reason\$"
grep -q "\[[^]]* digest-bad\] disk 0: DIGEST MISMATCH: $reason\$" "$RX_LOG" ||
    fail "the receiver did not log the mismatch"
# The receiver's digest in DISK_DONE is the true one (the control's).
grep -q "$(jq -r '.disks[0].digest' "$RX_DIR/digest-control/job.json")" "$T/.err" ||
    fail "the receiver's digest is not the content's"
good_job_running

# Coming back for the failed job does not make it done.
expect_error 1 "^vmconvert: receiver: job digest-bad failed \($reason\): start a new job\$" \
    send_job --token fleet --retry 3 --job digest-bad "$src"
failed_job digest-bad "^$reason\$"
echo "ok: a sender coming back for digest-bad is refused"

# A wrong extent hash.
expect_error 2 '^rawclient: receiver ERROR verify after .*: disk 0: the extent at 0 does not match its hash$' \
    raw -j digest-hash "127.0.0.1:$RX_PORT" bad-hash
echo "ok: bad-hash: $(cat "$T/.err")"
failed_job digest-hash '^disk 0: the extent at 0 does not match its hash$'

good_job_running
good_job_finish
stop_receiver
# Nothing changed on disk after the receiver stopped.
failed_job digest-bad "^$reason\$"
failed_job digest-hash '^disk 0: the extent at 0 does not match its hash$'
