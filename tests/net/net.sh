# Shared setup for the send/receive tests; source it after functions.sh.
#
#   start_receiver NAME [RECEIVE-OPTIONS...]
#       starts `vmconvert receive --dir $T/NAME --listen 127.0.0.1:0
#       --tokens $T/tokens` and waits until it listens; sets RX_PID, RX_PORT,
#       RX_FP (sha256:HEX), RX_DIR, RX_LOG (its stderr).  The receiver is
#       stopped (by PID) when the test exits.  A second call with the same
#       NAME restarts a receiver on the same directory (same certificate),
#       on RX_PORT when that is set and free.
#   stop_receiver       SIGTERM, then wait; fails if it does not exit 0.
#   kill_receiver       SIGKILL, then wait.
#   send_job ARGS...    vmconvert send --to 127.0.0.1:$RX_PORT
#       --fingerprint $RX_FP ARGS...
#   job_state JOB       the "state" of $RX_DIR/JOB/job.json.
#
# $T/tokens holds "tok-once" (single use, consumed) and "fleet reusable".
# shellcheck shell=sh

requires jq --version
requires pkill --version

printf 'tok-once\nfleet reusable\n' >"$T/tokens"

# _pids: every process a test started in the background, killed at exit.
_bg_pids=""
bg_started () {
    _bg_pids="$_bg_pids $1"
}
# A background shell function (send_job ... &) is a subshell whose child
# is the real process: kill the children (by parent PID) first.
_kill_bg () {
    for _p in $_bg_pids; do
        pkill -KILL -P "$_p" 2>/dev/null || true
        kill -KILL "$_p" 2>/dev/null || true
    done
    for _p in $_bg_pids; do
        wait "$_p" 2>/dev/null || true
    done
}
cleanup_fn _kill_bg

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for () {
    _n=$(($1 * 10))
    shift
    while ! "$@" >/dev/null 2>&1; do
        _n=$((_n - 1))
        [ "$_n" -gt 0 ] || return 1
        sleep 0.1
    done
}

start_receiver () {
    _name=$1
    shift
    RX_DIR=$T/$_name
    mkdir -p "$RX_DIR"
    _listen=127.0.0.1:${RX_PORT:-0}
    if [ "${RX_NAME:-}" != "$_name" ]; then
        _listen=127.0.0.1:0
    fi
    RX_NAME=$_name
    RX_LOG=$T/$_name.log
    _out=$T/$_name.out
    : >"$_out"
    "$VMCONVERT" receive --dir "$RX_DIR" --listen "$_listen" \
        --tokens "$T/tokens" "$@" >"$_out" 2>>"$RX_LOG" &
    RX_PID=$!
    bg_started "$RX_PID"
    wait_for 20 grep -q '^listening ' "$_out" ||
        { cat "$RX_LOG" >&2; fail "the receiver did not start"; }
    RX_PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$_out")
    RX_FP=$(sed -n 's/^fingerprint //p' "$_out")
    echo "$RX_FP" | grep -Eq '^sha256:[0-9a-f]{64}$' ||
        fail "the receiver printed no fingerprint: $RX_FP"
}

stop_receiver () {
    kill -TERM "$RX_PID"
    _st=0
    wait "$RX_PID" || _st=$?
    [ "$_st" -eq 0 ] || { tail -5 "$RX_LOG" >&2; fail "receiver exit $_st"; }
}

kill_receiver () {
    kill -KILL "$RX_PID"
    wait "$RX_PID" 2>/dev/null || true
}

send_job () {
    "$VMCONVERT" send --to "127.0.0.1:$RX_PORT" --fingerprint "$RX_FP" "$@"
}

job_state () {
    jq -r .state "$RX_DIR/$1/job.json"
}
