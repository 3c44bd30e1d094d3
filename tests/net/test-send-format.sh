#!/bin/sh
# send -O FMT: the sender asks for the image format and the receiver
# writes it (the appliance's vmconvert.format=), whatever its own --format.
# The receiver's -o options belong to its own format only, a job resumed
# with another -O is refused, and a format that cannot be written is
# refused before anything is stored.
# shellcheck source=tests/functions.sh
. "$(dirname "$0")/../functions.sh"
# shellcheck source=tests/net/net.sh
. "$(dirname "$0")/net.sh"
requires qemu-img --version

src=$T/src.raw
"$TOOLS/mkdisk" -s 5 -d 60 $((9 * 1048576 + 512)) "$src"
before=$(hash_of "$src")
# The receiver's own format is qcow2 with an option vmdk does not have.
start_receiver rx --format qcow2 -o cluster_size=64K

for fmt in vmdk vhdx raw; do
    send_job --token "fleet" --job "j-$fmt" -O "$fmt" "$src" ||
        fail "send -O $fmt failed"
    [ "$(job_state "j-$fmt")" = done ] || fail "j-$fmt: $(job_state "j-$fmt")"
    out=$RX_DIR/j-$fmt/disk0.$fmt
    [ "$(jq -r .format "$RX_DIR/j-$fmt/job.json")" = "$fmt" ] ||
        fail "job.json format: $(jq -r .format "$RX_DIR/j-$fmt/job.json")"
    [ "$(qemu-img info --output=json "$out" | jq -r .format)" = "$fmt" ] ||
        fail "$out is not $fmt to qemu-img"
    qcompare "$src" "$out"
done
# Without -O: the receiver's format and options.
send_job --token fleet --job j-default "$src" || fail "send failed"
[ "$(qemu-img info --output=json "$RX_DIR/j-default/disk0.qcow2" |
     jq -r '.["cluster-size"]')" = 65536 ] || fail "qcow2 options not applied"
# The same job with another format: refused, and the job stays done.
expect_error 1 "exists as vmdk, not raw" \
    send_job --token fleet --job j-vmdk -O raw "$src"
[ "$(job_state j-vmdk)" = done ] || fail "j-vmdk: $(job_state j-vmdk)"
# A format the receiver cannot write: the CLI refuses it before
# connecting, and a sender that asks anyway (rawclient) gets ERROR
# bad-job at JOB, and nothing is stored.
expect_error 1 "not a format vmconvert writes" \
    send_job --token fleet --job j-bad -O qed "$src"
st=0
"$TOOLS/rawclient" -p "$RX_FP" -j j-bad -s "$src" -O qed \
    "127.0.0.1:$RX_PORT" good 2>"$T/raw.err" || st=$?
[ "$st" -eq 2 ] && grep -q 'cannot be written here' "$T/raw.err" ||
    { cat "$T/raw.err" >&2; fail "rawclient -O qed: exit $st"; }
[ ! -e "$RX_DIR/j-bad/job.json" ] || fail "j-bad was stored"
# The control: the same client asking for vdi gets its disk written.
"$TOOLS/rawclient" -p "$RX_FP" -j j-raw-vdi -s "$src" -O vdi \
    "127.0.0.1:$RX_PORT" good 2>"$T/raw.err" ||
    { cat "$T/raw.err" >&2; fail "rawclient -O vdi failed"; }
qcompare "$src" "$RX_DIR/j-raw-vdi/disk0.vdi"
[ "$before" = "$(hash_of "$src")" ] || fail "the source changed"
stop_receiver
echo "ok"
