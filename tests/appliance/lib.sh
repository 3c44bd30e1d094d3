# Shared by the appliance boot tests: source after ../functions.sh.
#
#   VMLINUZ PROBE_INITRD KERNEL_DIR   what `make appliance-test-images` built
#   boot NAME HARNESS-ARGS...         one boot through qemu-boot.py
# shellcheck shell=sh
# shellcheck disable=SC2034,SC2154 # top comes from functions.sh; the
# variables are for the tests that source this file

requires qemu-system-x86_64 --version
requires python3 --version

APPLIANCE_DIR=$top/build/appliance
KERNEL_DIR=$APPLIANCE_DIR/kernel
VMLINUZ=$APPLIANCE_DIR/vmlinuz
PROBE_INITRD=$APPLIANCE_DIR/initrd-probe.img
PROBE=$top/build/tests/appliance/probe
HARNESS=$top/tests/appliance/qemu-boot.py
# Under TCG a boot takes 10-25 s; the margin is for a loaded machine.
BOOT_TIMEOUT=${BOOT_TIMEOUT:-150}
export TMPDIR="$T"

for _f in "$VMLINUZ" "$PROBE_INITRD" "$PROBE"; do
    if [ ! -f "$_f" ]; then
        echo "$0: skipped: needs $_f (make appliance-test-images)"
        exit 77
    fi
done

# The kernel parameters every image's boot entries have (iso/params.sh).
# shellcheck source=iso/params.sh
. "$top/iso/params.sh"

# boot NAME ARGS...: boot with qemu-boot.py ARGS; the console goes to
# $T/NAME.log, the harness's JSON to $T/NAME.json.  Fails the test, with
# the end of the console, when the harness fails; prints one line with the
# seconds at which each --expect matched.
boot () {
    _name=$1
    shift
    echo "== $_name"
    if ! python3 "$HARNESS" --quiet --json --timeout "$BOOT_TIMEOUT" \
            --fail 'Kernel panic' --fail 'PROBE-ERROR' \
            --log "$T/$_name.log" "$@" >"$T/$_name.json" 2>"$T/$_name.err"; then
        cat "$T/$_name.err" >&2
        tail -n 40 "$T/$_name.log" >&2
        fail "$_name: boot failed"
    fi
    python3 - "$_name" "$T/$_name.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[2]))
print("TIME %s (%s): %s; qemu exit %s s" % (
    sys.argv[1], r["accel"],
    ", ".join("%s %.1f s" % (m["regex"], m["seconds"]) for m in r["markers"]),
    r["qemu_exit"]))
EOF
}

# console NAME REGEX: the console of boot NAME must have a line matching
# REGEX (grep -E).
console () {
    grep -aEq -- "$2" "$T/$1.log" || fail "$1: no console line matches: $2"
}

# md5_1m FILE: md5 of the first MiB, as the probe prints it.
md5_1m () {
    head -c 1048576 "$1" | md5sum | cut -d' ' -f1
}
