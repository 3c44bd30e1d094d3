# A good job that runs on the same receiver while a test tries bad input,
# to show the receiver keeps serving every other job meanwhile.  Source
# it after net.sh.
#
#   GOOD_RX_OPTS        receiver options: acknowledge often, so progress shows
#   good_job_start NAME MIB [SEND-OPTIONS...]
#       makes $T/NAME.raw (MIB MiB of data) and sends it in the background
#       as job NAME, paced by --max-rate 4M: it takes about MIB / 4
#       seconds, however fast the machine.  Sets GOOD_PID, GOOD_NAME.
#   good_job_running    fails the test unless the good job is still being
#       sent and its durable bytes grew since the last call (or the
#       start) at least 3 s before: the bad input was tried while it ran,
#       and did not stop it.
#   good_job_finish     waits for it; fails unless the sender exits 0 and
#       says verified, job.json says done, qemu-img compare says the
#       received image is identical to the source, and the source is
#       unchanged.
# shellcheck shell=sh

# shellcheck disable=SC2034 # used by the tests that source this
GOOD_RX_OPTS="--ack-ms 500"

_good_durable () {
    jq -r '.progress.durable_bytes' "$RX_DIR/$GOOD_NAME/job.json" 2>/dev/null ||
        echo 0
}

_good_started () {
    [ "$(_good_durable)" -gt 0 ]
}

good_job_start () {
    GOOD_NAME=$1
    _mib=$2
    shift 2
    "$TOOLS/mkdisk" -s 7 -d 100 $((_mib * 1048576)) "$T/$GOOD_NAME.raw"
    hash_of "$T/$GOOD_NAME.raw" >"$T/$GOOD_NAME.sha"
    send_job --token fleet --job "$GOOD_NAME" --max-rate 4M "$@" \
        "$T/$GOOD_NAME.raw" 2>"$T/$GOOD_NAME.err" &
    GOOD_PID=$!
    bg_started "$GOOD_PID"
    # Under way: something is durable on the receiver.
    wait_for 20 _good_started ||
        { cat "$T/$GOOD_NAME.err" >&2; fail "the good job did not start"; }
    _good_last=$(_good_durable)
    _good_last_t=$(date +%s)
}

good_job_running () {
    kill -0 "$GOOD_PID" 2>/dev/null ||
        fail "the good job $GOOD_NAME ended before the bad input was done: make it bigger"
    _now=$(_good_durable)
    # Acknowledged every half second: progress shows over a few seconds.
    if [ $(($(date +%s) - _good_last_t)) -ge 3 ]; then
        [ "$_now" -gt "$_good_last" ] ||
            fail "the good job $GOOD_NAME made no progress in $(($(date +%s) - _good_last_t)) s ($_now bytes durable)"
        _good_last=$_now
        _good_last_t=$(date +%s)
    fi
    echo "ok: the good job $GOOD_NAME is still going ($_now bytes durable)"
}

good_job_finish () {
    _st=0
    wait "$GOOD_PID" || _st=$?
    [ "$_st" -eq 0 ] ||
        { cat "$T/$GOOD_NAME.err" >&2; fail "the good job $GOOD_NAME: sender exit $_st"; }
    grep -q 'verified' "$T/$GOOD_NAME.err" ||
        fail "the good job $GOOD_NAME: the sender did not say verified"
    [ "$(job_state "$GOOD_NAME")" = "done" ] ||
        fail "the good job $GOOD_NAME: job.json does not say done"
    _f=$RX_DIR/$GOOD_NAME/$(jq -r '.disks[0].file' "$RX_DIR/$GOOD_NAME/job.json")
    qemu-img compare -q -f raw "$T/$GOOD_NAME.raw" "$_f" ||
        fail "the good job $GOOD_NAME: the received image differs from the source"
    hash_of "$T/$GOOD_NAME.raw" | cmp -s - "$T/$GOOD_NAME.sha" ||
        fail "the good job $GOOD_NAME: its source changed"
    echo "ok: the good job $GOOD_NAME completed, identical"
}
