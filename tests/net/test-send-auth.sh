#!/bin/sh
# Authentication faults, each refused at once with a clear, final error
# (exit 1, one line, no retries) and no job left behind, while a good job
# runs on the same receiver and completes identical:
#   a wrong token, no credentials, a single-use token already used by
#   another job (its own job may still use it); a wrong fingerprint, a CA
#   that did not sign the receiver's certificate; client certificates:
#   one from the client CA is accepted without a token, one from another
#   CA and an expired one are refused (even with a good token).
# Also a receiver whose certificate has expired: the sender refuses it,
# pinned or through the CA (no job can complete there, so that receiver
# is a second one, beside the first).
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/net.sh"
# shellcheck source=tests/net/alongside.sh
. "$(dirname "$0")/alongside.sh"
requires qemu-img --version
requires openssl version

# ---- certificates -------------------------------------------------------
c=$T/certs
mkdir -p "$c"
printf 'subjectAltName=IP:127.0.0.1\n' >"$c/san.ext"
# mkca NAME: a self-signed CA.
mkca () {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$c/$1.key" -out "$c/$1.pem" -subj "/CN=$1" -days 30 \
        2>/dev/null || fail "openssl: CA $1"
}
# mkcert NAME CA DAYS: a certificate for 127.0.0.1 signed by CA, valid for
# DAYS days from now (-1: it expired yesterday).
mkcert () {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$c/$1.key" -out "$c/$1.csr" -subj "/CN=$1" 2>/dev/null ||
        fail "openssl: request $1"
    openssl x509 -req -in "$c/$1.csr" -CA "$c/$2.pem" -CAkey "$c/$2.key" \
        -days "$3" -extfile "$c/san.ext" -out "$c/$1.pem" 2>/dev/null ||
        fail "openssl: certificate $1"
}
mkca ca
mkca otherca
mkca clientca
mkcert server ca 30
mkcert server-expired ca -1
mkcert client clientca 30
mkcert client-other otherca 30
mkcert client-expired clientca -1
# The expired ones really are (openssl's own verdict).
openssl verify -CAfile "$c/ca.pem" "$c/server-expired.pem" 2>&1 |
    grep -q 'certificate has expired' || fail "server-expired.pem is not expired"

"$TOOLS/mkdisk" -s 3 -d 60 $((4 * 1048576)) "$T/small.raw"

# shellcheck disable=SC2086 # GOOD_RX_OPTS is several options
start_receiver rx --cert "$c/server.pem" --key "$c/server.key" \
    --client-ca "$c/clientca.pem" $GOOD_RX_OPTS
good_job_start good 80

# refused JOB MESSAGE SEND-OPTIONS...: the sender exits 1 with MESSAGE as
# its one line, and the receiver made no job directory.
refused () {
    _job=$1 _msg=$2
    shift 2
    expect_error 1 "$_msg" \
        "$VMCONVERT" send --to "127.0.0.1:$RX_PORT" --retry 3 --job "$_job" \
        "$@" "$T/small.raw"
    [ ! -e "$RX_DIR/$_job" ] || fail "$_job: a job directory was made"
    echo "ok: $_job refused: $(cat "$T/.err")"
}
# accepted JOB SEND-OPTIONS...: the job completes, identical.
accepted () {
    _job=$1
    shift
    "$VMCONVERT" send --to "127.0.0.1:$RX_PORT" --retry 3 --job "$_job" \
        "$@" "$T/small.raw" 2>"$T/acc.err" ||
        { cat "$T/acc.err" >&2; fail "$_job: refused"; }
    [ "$(job_state "$_job")" = "done" ] || fail "$_job: not done"
    qemu-img compare -q -f raw "$T/small.raw" "$RX_DIR/$_job/disk0.qcow2" ||
        fail "$_job: differs"
    echo "ok: $_job accepted"
}
fp="--fingerprint $RX_FP"

# ---- tokens -------------------------------------------------------------
# shellcheck disable=SC2086 # $fp is two arguments
refused auth-wrong-token '^vmconvert: receiver: authentication failed$' \
    $fp --token not-a-token
# shellcheck disable=SC2086
refused auth-no-credentials '^vmconvert: receiver: authentication failed$' $fp
grep -q 'authentication failed for job auth-wrong-token$' "$RX_LOG" ||
    fail "the receiver did not log the wrong token"
# shellcheck disable=SC2086
accepted auth-once $fp --token tok-once
grep -q '^tok-once' "$T/tokens" && fail "tok-once was not used up"
# Its own job may use it again (a resume); another job may not.
# shellcheck disable=SC2086
accepted auth-once $fp --token tok-once
# shellcheck disable=SC2086
refused auth-once-other '^vmconvert: receiver: authentication failed$' \
    $fp --token tok-once

# ---- the receiver's certificate -----------------------------------------
zeros=sha256:0000000000000000000000000000000000000000000000000000000000000000
refused auth-wrong-fp \
    "^vmconvert: 127\.0\.0\.1:$RX_PORT: wrong server certificate fingerprint $RX_FP \(expected $zeros\)$" \
    --fingerprint "$zeros" --token fleet
refused auth-other-ca \
    "^vmconvert: 127\.0\.0\.1:$RX_PORT: server certificate not trusted: unable to get local issuer certificate$" \
    --ca "$c/otherca.pem" --token fleet
accepted auth-ca --ca "$c/ca.pem" --token fleet
good_job_running

# ---- client certificates ------------------------------------------------
accepted auth-client-cert --ca "$c/ca.pem" \
    --cert "$c/client.pem" --key "$c/client.key"
refused auth-client-other \
    '^vmconvert: receiver: authentication failed: the client certificate is not trusted: unable to get local issuer certificate$' \
    --ca "$c/ca.pem" --cert "$c/client-other.pem" --key "$c/client-other.key"
refused auth-client-expired \
    '^vmconvert: receiver: authentication failed: the client certificate is not trusted: certificate has expired$' \
    --ca "$c/ca.pem" --cert "$c/client-expired.pem" \
    --key "$c/client-expired.key"
refused auth-client-expired-token \
    '^vmconvert: receiver: authentication failed: the client certificate is not trusted: certificate has expired$' \
    --ca "$c/ca.pem" --cert "$c/client-expired.pem" \
    --key "$c/client-expired.key" --token fleet
grep -q 'authentication failed for job auth-client-expired: the client certificate is not trusted: certificate has expired$' "$RX_LOG" ||
    fail "the receiver did not log why the expired client certificate was refused"

# ---- a receiver with an expired certificate -----------------------------
"$VMCONVERT" receive --dir "$T/rx-expired" --listen 127.0.0.1:0 \
    --tokens "$T/tokens" --cert "$c/server-expired.pem" \
    --key "$c/server-expired.key" >"$T/rx-expired.out" 2>"$T/rx-expired.log" &
xpid=$!
bg_started "$xpid"
wait_for 20 grep -q '^listening ' "$T/rx-expired.out" ||
    fail "the receiver with the expired certificate did not start"
xport=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$T/rx-expired.out")
xfp=$(sed -n 's/^fingerprint //p' "$T/rx-expired.out")
expect_error 1 "^vmconvert: 127\.0\.0\.1:$xport: the pinned server certificate has expired$" \
    "$VMCONVERT" send --to "127.0.0.1:$xport" --fingerprint "$xfp" \
    --token fleet --retry 3 --job auth-expired "$T/small.raw"
expect_error 1 "^vmconvert: 127\.0\.0\.1:$xport: server certificate not trusted: certificate has expired$" \
    "$VMCONVERT" send --to "127.0.0.1:$xport" --ca "$c/ca.pem" \
    --token fleet --retry 3 --job auth-expired "$T/small.raw"
[ ! -e "$T/rx-expired/auth-expired" ] || fail "auth-expired: a job was made"
kill -TERM "$xpid"
wait "$xpid" || fail "the receiver with the expired certificate: exit $?"
echo "ok: a receiver with an expired certificate is refused"

good_job_running
good_job_finish
stop_receiver
