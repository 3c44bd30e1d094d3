# Shared by the tests of the appliance itself (test-appliance-*.sh): the
# real initramfs with vmconvert-appliance, a receiver on 127.0.0.1 that the
# guest reaches as 10.0.2.100:7010 through slirp (restrict=on), and source
# disks whose hashes are checked after every boot.  Source after
# ../functions.sh, ../net/net.sh and lib.sh.
#
#   make_sources NAME SIZE...   raw disks $T/NAME1.raw ... with data,
#                               zeros and holes; their sha256 is kept
#   sources_unchanged           every source disk still has its hash
#   test_iso OUT [build-iso.sh options]   an ISO of the real initramfs
#   settings JOB                the vmconvert.* options for the receiver
#   appliance_boot NAME ARGS... boot with the receiver forwarded
#   check_job JOB SRC...        the job is done, disk i is SRC i
#                               (qemu-img compare), and its facts list the
#                               sources by serial (SRC's base name)
# shellcheck shell=sh
# shellcheck disable=SC2154 # top, T and RX_* come from the sourced files

INITRD=$top/build/appliance/initrd.img
[ -f "$INITRD" ] || { echo "$0: skipped: needs $INITRD (make initramfs)"; exit 77; }

: >"$T/sources.sha256"
make_sources () {
    _n=$1
    shift
    _i=1
    for _size in "$@"; do
        "$TOOLS/mkdisk" -s "$_i$_i" -d 70 "$_size" "$T/$_n$_i.raw"
        sha256sum "$T/$_n$_i.raw" >>"$T/sources.sha256"
        _i=$((_i + 1))
    done
}

sources_unchanged () {
    sha256sum --quiet -c "$T/sources.sha256" ||
        fail "a source disk was written"
}

test_iso () {
    _out=$1
    shift
    "$top/iso/build-iso.sh" --kernel "$VMLINUZ" --initrd "$INITRD" \
        --out "$_out" "$@" >/dev/null
}

settings () {
    echo "vmconvert.server=10.0.2.100:7010 vmconvert.fingerprint=$RX_FP" \
        "vmconvert.token=fleet vmconvert.job=$1"
}

appliance_boot () {
    _name=$1
    shift
    boot "$_name" --user-net "restrict=on,guestfwd=10.0.2.100:7010=$RX_PORT" \
        --fail 'vmconvert: =+ FAILED' "$@"
}

# check_job JOB SRC...: disk i of JOB is SRC i, and the job's source facts
# name it by its serial, which the tests set to SRC's base name.
check_job () {
    _job=$1
    shift
    [ "$(job_state "$_job")" = done ] || fail "$_job: $(job_state "$_job")"
    _i=0
    for _src in "$@"; do
        _serial=$(basename "$_src" .raw)
        _name=$(jq -r ".disks[$_i].name" "$RX_DIR/$_job/job.json")
        [ "$_name" = "serial-$_serial" ] ||
            fail "$_job: disk $_i is $_name, not serial-$_serial"
        jq -e --arg s "$_serial" '.source.disks[] | select(.serial == $s and .sent)' \
            "$RX_DIR/$_job/job.json" >/dev/null ||
            fail "$_job: the facts do not list $_serial as sent"
        # The kernel's own read-only flag (sysfs "ro"), as the appliance
        # saw it after setting it.
        jq -e --arg s "$_serial" '.source.disks[] | select(.serial == $s and .read_only)' \
            "$RX_DIR/$_job/job.json" >/dev/null ||
            fail "$_job: $_serial was not read-only in the kernel"
        qemu-img compare -q -f raw "$_src" "$RX_DIR/$_job/disk$_i.qcow2" ||
            fail "$_job: disk $_i differs from $_src"
        _i=$((_i + 1))
    done
    sources_unchanged
}
