#!/bin/sh
# The receiver's disk fills up in the middle of a job: the job pauses with
# a clear message (job.json "paused" with the reason, the receiver's log,
# the sender's progress), nothing is lost, and when space is freed the
# sender's retry resumes it from what was durable and it completes
# identical.  Meanwhile a good job on another disk of the same receiver
# goes on and completes identical.
# The job's directory is a small tmpfs of its own (mounted where the
# receiver puts the job), half taken by a filler file that is deleted to
# free the space.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/net.sh"
# shellcheck source=tests/net/alongside.sh
. "$(dirname "$0")/alongside.sh"
requires qemu-img --version

# shellcheck disable=SC2086 # GOOD_RX_OPTS is several options
start_receiver rx $GOOD_RX_OPTS
mnt=$RX_DIR/full
mkdir "$mnt"
mount -t tmpfs -o size=24m tmpfs "$mnt" 2>/dev/null ||
    { echo "$0: skipped: needs: mount -t tmpfs (root)"; exit 77; }
# Lazily: on a failure the receiver may still hold the directory.
cleanup_fn "umount -l '$mnt'"
head -c $((12 * 1048576)) /dev/zero >"$mnt/filler"

good_job_start good 80

# 16 MiB that do not compress or deduplicate: about 12 MiB fit.
src=$T/full.raw
head -c $((16 * 1048576)) /dev/urandom >"$src"
# Paced like the good job, so that some of it is durable before the disk
# is full, and the resume starts there.
send_job --token fleet --job full --window 1M --progress=json "$src" \
    2>"$T/full.err" &
spid=$!
bg_started "$spid"

paused () {
    [ "$(job_state full)" = "paused" ]
}
wait_for 30 paused || { cat "$T/full.err" >&2; fail "the job did not pause"; }
msg="the receiver's disk is full: writing: $mnt/disk0\.qcow2\.part: write error at offset [0-9]+: No space left on device"
jq -r .error "$RX_DIR/full/job.json" | grep -Eq "^$msg\$" ||
    fail "job.json's error: $(jq -r .error "$RX_DIR/full/job.json")"
grep -Eq "\[[^]]* full\] error sent to the sender: $msg\$" "$RX_LOG" ||
    fail "the receiver did not log the full disk"
wait_for 10 grep -Eq "^\{\"event\": \"message\", \"message\": \"receiver: $msg; retrying in [0-9]+ s\"\}\$" "$T/full.err" ||
    { cat "$T/full.err" >&2; fail "the sender did not report the full disk"; }
echo "ok: the job paused: $(jq -r .error "$RX_DIR/full/job.json")"
kill -0 "$spid" || fail "the sender gave up"
durable=$(jq -r '.disks[0].durable_bytes' "$RX_DIR/full/job.json")
[ "$durable" -gt 0 ] || fail "nothing was durable before the disk filled up"
# It stays paused while the disk is full (the sender keeps retrying).
sleep 3
[ "$(job_state full)" = "paused" ] || fail "the job is $(job_state full) on a full disk"
kill -0 "$spid" || fail "the sender gave up"
good_job_running

# Free the space: the sender's next retry resumes the job and completes.
rm "$mnt/filler"
st=0
wait "$spid" || st=$?
[ "$st" -eq 0 ] || { cat "$T/full.err" >&2; fail "the sender: exit $st"; }
grep -q '"event": "done"' "$T/full.err" || fail "the sender did not finish"
[ "$(job_state full)" = "done" ] || fail "the job is $(job_state full), not done"
[ "$(jq -r .error "$RX_DIR/full/job.json")" = null ] || fail "an error is left in job.json"
grep -Eq "\[[^]]* full\] disk 0: resuming at [1-9][0-9]*\$" "$RX_LOG" ||
    fail "the job was not resumed from what was durable"
qemu-img compare -q -f raw "$src" "$mnt/disk0.qcow2" ||
    fail "the job, resumed after the disk was full, differs from its source"
qemu-img check -q "$mnt/disk0.qcow2" || fail "qemu-img check"
echo "ok: resumed once there was space, and identical"

good_job_finish
stop_receiver
