#!/bin/sh
# A source disk with an unreadable sector: reads of a range that covers
# it fail with EIO (nbdkit's eval plugin, through nbdfuse as a plain file),
# everything else reads.  The sender stops with a clear, final error that
# names the range holding the bad sector, tells the receiver (ABORT), and
# the receiver marks the job failed with the same reason in job.json;
# a sender coming back for the job is refused.  Meanwhile a good job on
# the same receiver completes identical.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/net.sh"
# shellcheck source=tests/net/alongside.sh
. "$(dirname "$0")/alongside.sh"
requires qemu-img --version
requires nbdkit --version
requires nbdfuse --version
[ -c /dev/fuse ] || { echo "$0: skipped: needs /dev/fuse"; exit 77; }

size=$((16 * 1048576))
bad=$((3 * 1048576 + 300 * 1024 + 3 * 512))   # the unreadable sector
src=$T/src.raw
"$TOOLS/mkdisk" -s 13 -d 100 "$size" "$src"

# The source through FUSE: a read that touches sector $bad fails.
fuse=$T/fuse
mkdir "$fuse"
nbdfuse "$fuse/disk.raw" --command nbdkit -s --exit-with-parent eval \
    get_size="echo $size" \
    pread="if [ \$4 -lt $((bad + 512)) ] && [ \$((\$4 + \$3)) -gt $bad ]; then
               echo 'EIO unreadable sector' >&2; exit 1
           fi
           exec dd if='$src' skip=\$4 count=\$3 iflag=skip_bytes,count_bytes status=none" \
    2>"$T/nbdfuse.log" &
fpid=$!
bg_started "$fpid"
cleanup_fn "umount -l '$fuse' 2>/dev/null"
wait_for 20 test -s "$fuse/disk.raw" ||
    { cat "$T/nbdfuse.log" >&2; echo "$0: skipped: nbdfuse cannot mount here"; exit 77; }
# The source reads as it should (its first 2 MiB), but for that sector.
dd if="$fuse/disk.raw" bs=1M count=2 status=none | cmp -n $((2 * 1048576)) - "$src" ||
    fail "the FUSE source differs from the file it serves"
if dd if="$fuse/disk.raw" of=/dev/null bs=512 skip=$((bad / 512)) count=1 2>/dev/null; then
    fail "the bad sector can be read"
fi

# shellcheck disable=SC2086 # GOOD_RX_OPTS is several options
start_receiver rx $GOOD_RX_OPTS
good_job_start good 64

expect_error 1 "^vmconvert: $fuse/disk\.raw: read error in the range [0-9]+-[0-9]+: .*Input/output error\$" \
    send_job --token fleet --retry 5 --job unreadable "$fuse/disk.raw"
err=$(cat "$T/.err")
echo "ok: the sender failed: $err"
lo=$(echo "$err" | sed -n 's/.* in the range \([0-9]*\)-\([0-9]*\): .*/\1/p')
hi=$(echo "$err" | sed -n 's/.* in the range \([0-9]*\)-\([0-9]*\): .*/\2/p')
if [ "$lo" -gt "$bad" ] || [ "$bad" -gt "$hi" ]; then
    fail "the range $lo-$hi does not hold the bad sector at $bad"
fi
[ $((hi - lo)) -lt $((1 << 20)) ] || fail "the range $lo-$hi is more than 1 MiB"

# The receiver was told, and recorded why.
failed () {
    [ "$(job_state unreadable)" = "failed" ]
}
wait_for 10 failed || fail "the job is $(job_state unreadable), not failed"
reason=$(jq -r .error "$RX_DIR/unreadable/job.json")
echo "$reason" | grep -q "read error in the range $lo-$hi: .*Input/output error" ||
    fail "job.json's error: $reason"
grep -q "\[[^]]* unreadable\] the sender aborted the job: .*read error in the range $lo-$hi" "$RX_LOG" ||
    fail "the receiver did not log the abort"
[ ! -e "$RX_DIR/unreadable/disk0.qcow2" ] || fail "the failed disk got its final name"
good_job_running

# It stays failed.
expect_error 1 '^vmconvert: receiver: job unreadable failed \(.*read error in the range.*\): start a new job$' \
    send_job --token fleet --retry 5 --job unreadable "$src"
[ "$(job_state unreadable)" = "failed" ] || fail "the job is no longer failed"

good_job_running
good_job_finish
stop_receiver
