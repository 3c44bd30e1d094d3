#!/bin/sh
# convert --fixup refuses early and cleanly: a disk without a Linux guest
# is refused by the host's pre-flight in seconds (no VM is booted, no DST
# is left), and bad options are refused before anything is read.
. "$(dirname "$0")/../functions.sh"

"$TOOLS/mkdisk" -s 7 -d 50 $((64 * 1048576)) "$T/data.raw"
before=$(sha256sum <"$T/data.raw")
start=$(date +%s)
set +e
"$VMCONVERT" convert --fixup -O qcow2 "$T/data.raw" "$T/out.qcow2" \
    2>"$T/.err"
st=$?
set -e
[ "$st" -eq 1 ] || fail "convert --fixup: exit $st, expected 1"
grep -q 'the guest cannot be converted (pre-flight); nothing was copied' \
    "$T/.err" || { cat "$T/.err" >&2; fail "no refusal message"; }
grep -q 'pre-flight error: no Linux root filesystem' "$T/.err" ||
    { cat "$T/.err" >&2; fail "no pre-flight error for the missing root"; }
[ $(($(date +%s) - start)) -lt 30 ] || fail "the refusal took more than 30 s"
[ ! -e "$T/out.qcow2" ] || fail "a refused conversion left its output"
[ "$(sha256sum <"$T/data.raw")" = "$before" ] || fail "the source changed"

# The same refusal from inspect, with its own exit status.
set +e
"$VMCONVERT" inspect --json "$T/data.raw" >"$T/insp.json"
st=$?
set -e
[ "$st" -eq 3 ] || fail "inspect: exit $st, expected 3"
jq -e '.convertible == false and (.problems | map(.code) | index("no-root"))' \
    "$T/insp.json" >/dev/null || fail "inspect --json: $(cat "$T/insp.json")"

expect_error 1 "is not a MAC address" \
    "$VMCONVERT" convert --fixup --mac ens3=52:54:00:zz:34:56 -O qcow2 \
    "$T/data.raw" "$T/out.qcow2"
expect_error 1 "unknown target" \
    "$VMCONVERT" convert --fixup --target xen -O qcow2 "$T/data.raw" \
    "$T/out.qcow2"
echo ok
