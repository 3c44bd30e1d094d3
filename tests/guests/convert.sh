# The conversions of the test guests, judged by booting the result
# (tests/guests/README.md).  Source after ../functions.sh and guest.sh.
#
#   convert_guest VARIANT [CONVERT-OPTIONS...]
#       vmconvert convert --fixup the variant's image to qcow2 (the
#       appliance in QEMU over an overlay), then boots the result the way a
#       converted guest runs on KVM (guest_boot_converted) and checks the
#       fixup report and that the source image did not change
#   p2v_guest VARIANT
#       boots the appliance on the variant as the source machine (its disk
#       read-only on LSI SCSI, its e1000 NIC in slot 3): it fixes the guest
#       up on a snapshot and sends it to a receiver on this host; the
#       received disk is booted the same way, the report in the job's
#       facts is checked, and the source image did not change
# shellcheck shell=sh
# shellcheck disable=SC2154 # top, T, GUEST_* come from the sourced files

requires jq --version
APPLIANCE_DIR=$top/build/appliance
for _f in "$APPLIANCE_DIR/vmlinuz" "$APPLIANCE_DIR/initrd.img"; do
    if [ ! -f "$_f" ]; then
        echo "$0: skipped: needs $_f (make initramfs)"
        exit 77
    fi
done

# inspect_before IMAGE: what inspection says of the unconverted guest --
# the facts the fixture was built to have (its builder checked them with
# the guest's own tools): a Debian 12 root, /dev/sdaN names in fstab, an
# initramfs without virtio_blk, open-vm-tools installed.
inspect_before () {
    "$VMCONVERT" inspect --json "$1" >"$T/before.json" ||
        fail "inspect of the source failed"
    jq -e '.convertible and .os.distro == "debian" and .os.version == "12"
        and (.fstab | map(select(.by_device)) | length) >= 1
        and .kernels[0].initrd_drivers.virtio_blk == false
        and (.hypervisor_tools | map(.package) | index("open-vm-tools"))' \
        "$T/before.json" >/dev/null ||
        fail "inspection of the source does not show the fixture: $(cat "$T/before.json")"
}

# report_ok FILE: the fixup report says ok, named the changes a boot on
# KVM needs, and pinned ens3 to the source's MAC.
report_ok () {
    jq -e '.result == "ok"' "$1" >/dev/null || fail "fixup report: $(cat "$1")"
    jq -e --arg m "$GUEST_MAC" '[.interfaces[] | select(.name == "ens3")
        | .mac] == [$m]' "$1" >/dev/null ||
        fail "fixup report: ens3 is not pinned to $GUEST_MAC: $(jq -c .interfaces "$1")"
    for _step in devices initramfs; do
        jq -e --arg s "$_step" '[.changes[] | select(.step == $s)] | length > 0' \
            "$1" >/dev/null || fail "fixup report: no $_step change"
    done
    jq -e '[.commands[] | select(.status != 0)] | length == 0' "$1" \
        >/dev/null || fail "fixup report: a command failed: $(jq -c .commands "$1")"
}

convert_guest () {
    _v=$1
    shift
    guest_image "$_v"
    _src=$GUEST_IMAGE
    _sum=$(sha256sum <"$_src")
    inspect_before "$_src"
    _t0=$(date +%s)
    "$VMCONVERT" convert --fixup "$@" -O qcow2 "$_src" "$T/$_v.qcow2" \
        2>"$T/convert.err" || { cat "$T/convert.err" >&2; fail "convert --fixup failed"; }
    echo "TIME convert --fixup $_v: $(($(date +%s) - _t0)) s"
    grep 'fixup VM:' "$T/convert.err" | sed 's/^/  /'
    qemu-img check -q "$T/$_v.qcow2" || fail "qemu-img check of the result"
    report_ok "$T/$_v.qcow2.fixup.json"
    guest_boot_converted "$_v-converted" "$T/$_v.qcow2"
    [ "$(sha256sum <"$_src")" = "$_sum" ] || fail "the source image changed"
}

p2v_guest () {
    _v=$1
    guest_image "$_v"
    _src=$GUEST_IMAGE
    _sum=$(sha256sum <"$_src")
    inspect_before "$_src"
    start_receiver rx
    _fmt=$(qemu-img info --output=json "$_src" | jq -r .format)
    _t0=$(date +%s)
    if ! python3 "$GUEST_HARNESS" --quiet --json --mem 2048 --timeout 1500 \
            --kernel "$APPLIANCE_DIR/vmlinuz" --initrd "$APPLIANCE_DIR/initrd.img" \
            --append "console=ttyS0,115200 panic=-1 loglevel=4 \
vmconvert.server=10.0.2.100:7010 vmconvert.fingerprint=$RX_FP \
vmconvert.token=fleet vmconvert.job=p2v-$_v vmconvert.wait=1" \
            --disk "$_src,if=lsi,format=$_fmt,serial=src,readonly" \
            --nic "e1000,addr=3,mac=$GUEST_MAC" \
            --user-net "restrict=on,guestfwd=10.0.2.100:7010=$RX_PORT" \
            --expect 'the guest is fixed up' --expect '=+ SUCCESS =+' \
            --expect 'reboot: Power down' --linger 20 \
            --fail 'Kernel panic' --fail 'vmconvert: =+ FAILED' \
            --log "$T/p2v.log" >"$T/p2v.json" 2>"$T/p2v.err"; then
        cat "$T/p2v.err" >&2
        grep -a 'vmconvert' "$T/p2v.log" | tail -n 40 >&2
        fail "p2v-$_v: the appliance did not send the fixed-up guest"
    fi
    echo "TIME p2v $_v (appliance boot to power-off): $(($(date +%s) - _t0)) s"
    grep -a 'vmconvert: fixup\|vmconvert: guest:\|vmconvert: pre-flight' \
        "$T/p2v.log" | tr -d '\r' | sed 's/^/  /'
    stop_receiver
    _job=$RX_DIR/p2v-$_v
    [ "$(jq -r .state "$_job/job.json")" = done ] || fail "p2v-$_v: job not done"
    jq '.source.fixup' "$_job/job.json" >"$T/p2v-report.json"
    report_ok "$T/p2v-report.json"
    jq -e '.source.disks[] | select(.serial == "src" and .read_only)' \
        "$_job/job.json" >/dev/null || fail "p2v-$_v: the source was not read-only"
    qemu-img check -q "$_job/disk0.qcow2" || fail "qemu-img check of the received disk"
    guest_boot_converted "p2v-$_v-converted" "$_job/disk0.qcow2"
    [ "$(sha256sum <"$_src")" = "$_sum" ] || fail "the source image changed"
}
