# Booting the test guests (tests/guests/README.md): source after
# ../functions.sh.
#
#   guest_image VARIANT            sets GUEST_IMAGE to the variant's VMDK,
#                                  built (or rebuilt) when it is missing or
#                                  older than make-debian-guest.sh; skips
#                                  (77) when it cannot be built here
#   guest_boot NAME HARNESS-ARGS   one boot through qemu-boot.py; console in
#                                  $T/NAME.log, one TIME line in the test log
#   guest_report NAME KEY          the value of the guest's first
#                                  "GUEST-REPORT KEY ..." line
#   guest_boot_source NAME IMAGE   boots IMAGE as the VMware source machine
#                                  (LSI SCSI disk, e1000 NIC in slot 3)
#   guest_boot_converted NAME IMAGE
#                                  boots IMAGE the way a converted guest runs
#                                  on KVM (virtio-blk disk, virtio-net NIC in
#                                  slot 5, the source's MAC) and asserts it
#                                  came up right (see below)
#   guest_controls VARIANT         the control tests of one fixture
#
# IMAGE is never written: every boot runs on a snapshot of it.
# shellcheck shell=sh
# shellcheck disable=SC2154 # top and T come from functions.sh

requires qemu-system-x86_64 --version
requires python3 --version
requires qemu-img --version

GUEST_DIR=${GUEST_DIR:-$top/build/guests}
GUEST_HARNESS=$top/tests/appliance/qemu-boot.py
# The source machine's NIC; the converted one keeps its MAC.
GUEST_MAC=${GUEST_MAC:-52:54:00:12:34:56}
# A full boot of a guest takes 60-110 s under TCG on a busy machine.
GUEST_BOOT_TIMEOUT=${GUEST_BOOT_TIMEOUT:-600}

guest_image () {
    GUEST_IMAGE=$GUEST_DIR/$1.vmdk
    _gb=$top/tests/guests/make-debian-guest.sh
    _want=$(cat "$_gb" "$top/tests/guests/guest-report" | sha256sum |
        cut -d' ' -f1)
    if [ -f "$GUEST_IMAGE.stamp" ] &&
            [ "$(cat "$GUEST_IMAGE.stamp")" = "$_want" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v mmdebstrap >/dev/null 2>&1; then
        echo "$0: skipped: needs $GUEST_IMAGE (make guest-images, as root)"
        exit 77
    fi
    echo "== building $GUEST_IMAGE"
    "$_gb" --if-changed "$1" "$GUEST_IMAGE" ||
        fail "make-debian-guest.sh $1 failed"
}

# guest_boot NAME ARGS...: qemu-boot.py ARGS, judged; fails the test with
# the end of the console when the harness fails.
guest_boot () {
    _name=$1
    shift
    echo "== $_name"
    if ! python3 "$GUEST_HARNESS" --quiet --json --mem 1024 \
            --timeout "$GUEST_BOOT_TIMEOUT" --fail 'Kernel panic' \
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

# guest_report NAME KEY: what follows "GUEST-REPORT KEY " on the first such
# line of boot NAME's console (a getty's prompt may stand before it).
guest_report () {
    sed -n -e "s/^.*GUEST-REPORT $2 //p" -e "s/^.*GUEST-REPORT $2\$//p" \
        "$T/$1.log" | tr -d '\r' |
        sed 's/[[:space:]]*$//' | head -n 1
}

# guest_iface NAME IFACE: "MAC STATE ADDRESSES..." of IFACE in boot NAME.
guest_iface () {
    sed -n "s/^.*GUEST-REPORT iface $2 //p" "$T/$1.log" | tr -d '\r' |
        head -n 1
}

# guest_show NAME: the report, for the test log.
guest_show () {
    grep -a 'GUEST-REPORT' "$T/$1.log" |
        sed 's/^.*GUEST-REPORT/  GUEST-REPORT/' | tr -d '\r'
}

_guest_format () {
    qemu-img info --output=json "$1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["format"])'
}

# guest_boot_up NAME ARGS...: guest_boot NAME ARGS for a boot that must
# come up: through the whole report to the power-off, failing at once on
# what a boot prints that cannot find its root or cannot mount what fstab
# names.
guest_boot_up () {
    guest_boot "$@" --expect 'GUEST-REPORT multi-user' \
        --expect 'GUEST-REPORT done' --expect 'reboot: Power down' \
        --linger 30 --fail 'Gave up waiting for root' --fail 'ALERT!' \
        --fail 'dracut-initqueue.*timeout' --fail 'Could not boot' \
        --fail 'You are in emergency mode' --fail 'Entering emergency mode' \
        --fail 'Cannot open access to console'
}

# guest_boot_source NAME IMAGE: IMAGE as the VMware source machine ran.
guest_boot_source () {
    guest_boot_up "$1" \
        --disk "$2,if=lsi,format=$(_guest_format "$2"),snapshot" \
        --nic "e1000,addr=3,mac=$GUEST_MAC"
}

# guest_boot_converted NAME IMAGE: IMAGE (any format) as a converted guest
# runs on KVM: virtio-blk disk, virtio-net NIC in PCI slot 5 with the
# source's MAC.  Asserts that it reached multi-user, that ens3 (the name
# the NIC had on the source) is up with 10.0.2.15/24 and the source's MAC,
# that open-vm-tools is gone, that no unit failed, that the disk is on
# virtio-blk, and that / is named by UUID on the kernel command line and
# in fstab (or by its LV path, which does not depend on the disk's name).
guest_boot_converted () {
    _name=$1
    _fmt=$(_guest_format "$2")
    guest_boot_up "$_name" --disk "$2,if=virtio,format=$_fmt,snapshot" \
        --nic "virtio,addr=5,mac=$GUEST_MAC"
    guest_show "$_name"
    _bad=""
    case "$(guest_report "$_name" multi-user)" in
    reached*) ;;
    *) _bad="$_bad; multi-user.target not reached" ;;
    esac
    _if=$(guest_iface "$_name" ens3)
    case "$_if" in
    "$GUEST_MAC up "*10.0.2.15/24*) ;;
    *)
        _all=$(sed -n 's/^.*GUEST-REPORT iface //p' "$T/$_name.log" |
            tr -d '\r' | tr '\n' ';')
        _bad="$_bad; ens3 is not up with $GUEST_MAC and 10.0.2.15/24"
        _bad="$_bad (interfaces: ${_all%;})"
        ;;
    esac
    [ "$(guest_report "$_name" vmtools)" = absent ] ||
        _bad="$_bad; open-vm-tools is still installed"
    _failed=$(guest_report "$_name" failed-units)
    [ "$_failed" = none ] || _bad="$_bad; failed units: $_failed"
    _disk=$(guest_report "$_name" disk)
    case "$_disk" in
    "vda virtio_blk") ;;
    *) _bad="$_bad; the disk is not vda on virtio_blk: $_disk" ;;
    esac
    _uuid=$(guest_report "$_name" root-uuid)
    _cmd=$(guest_report "$_name" cmdline)
    _fst=$(guest_report "$_name" root-fstab)
    case " $_cmd " in
    *" root=UUID=$_uuid "* | *" root=/dev/mapper/"* | *" root=/dev/vg"*) ;;
    *) _bad="$_bad; the kernel's root= is not UUID=$_uuid: $_cmd" ;;
    esac
    case "$_fst" in
    "UUID=$_uuid" | /dev/mapper/* | /dev/vg*) ;;
    *) _bad="$_bad; fstab names / as $_fst, not UUID=$_uuid" ;;
    esac
    [ -z "$_bad" ] || fail "$_name: ${_bad#; }"
}

# guest_controls VARIANT: the fixture VARIANT behaves like an unconverted
# VMware guest.
#   1. As the source machine (LSI SCSI, e1000 in slot 3) it reaches
#      multi-user with ens3 at 10.0.2.15/24, open-vm-tools installed, its
#      root on /dev/sda1 (or the LV), no failed unit, no virtio module.
#   2. Unconverted on virtio-blk (and virtio-net in slot 5) its initramfs
#      cannot find the root: the initramfs's own message.
#   3. The image is the same before and after.
guest_controls () {
    _v=$1
    guest_image "$_v"
    _img=$GUEST_IMAGE
    _before=$(hash_of "$_img")

    guest_boot_source "$_v-source" "$_img"
    guest_show "$_v-source"
    _n=$_v-source
    _bad=""
    case "$(guest_report "$_n" multi-user)" in
    reached*) ;;
    *) _bad="$_bad; multi-user.target not reached" ;;
    esac
    case "$(guest_iface "$_n" ens3)" in
    "$GUEST_MAC up 10.0.2.15/24"*) ;;
    *) _bad="$_bad; ens3 is not up with $GUEST_MAC and 10.0.2.15/24" ;;
    esac
    [ "$(guest_report "$_n" iface-driver)" = "ens3 e1000" ] ||
        _bad="$_bad; the NIC is not ens3 on e1000"
    [ "$(guest_report "$_n" vmtools)" = installed ] ||
        _bad="$_bad; open-vm-tools is not installed"
    if [ "$_v" = lvm ]; then
        _root=/dev/mapper/vg0-root
        [ "$(guest_report "$_n" boot)" = /dev/sda2 ] ||
            _bad="$_bad; /boot is not /dev/sda2"
    else
        _root=/dev/sda1
    fi
    [ "$(guest_report "$_n" root)" = "$_root" ] ||
        _bad="$_bad; / is not $_root"
    [ "$(guest_report "$_n" root-fstab)" = "$_root" ] ||
        _bad="$_bad; fstab does not name / as $_root"
    guest_report "$_n" cmdline | grep -q " root=$_root " ||
        _bad="$_bad; the kernel's root= is not $_root"
    [ -n "$(guest_report "$_n" swap)" ] || _bad="$_bad; no swap active"
    guest_report "$_n" disk | grep -q '^sda sd$' ||
        _bad="$_bad; the disk is not sda"
    [ "$(guest_report "$_n" failed-units)" = none ] ||
        _bad="$_bad; failed units: $(guest_report "$_n" failed-units)"
    [ -z "$(guest_report "$_n" virtio-modules)" ] ||
        _bad="$_bad; virtio modules: $(guest_report "$_n" virtio-modules)"
    [ -z "$_bad" ] || fail "$_n: ${_bad#; }"

    # Unconverted on virtio, the initramfs waits for $_root in vain and
    # says so: initramfs-tools gives up after 30 s and drops to its shell,
    # dracut's systemd times out (rd.timeout=30) and enters emergency mode.
    if [ "$_v" = dracut ]; then
        set -- --expect 'Timed out waiting for device' \
            --expect "Warning: $_root does not exist" \
            --expect 'Entering emergency mode'
    else
        set -- --expect 'Gave up waiting for root file system device' \
            --expect "ALERT!  $_root does not exist"
    fi
    guest_boot "$_v-virtio" \
        --disk "$_img,if=virtio,format=$(_guest_format "$_img"),snapshot" \
        --nic "virtio,addr=5,mac=$GUEST_MAC" "$@" --fail 'GUEST-REPORT' \
        --linger 0
    grep -a -E 'Gave up|ALERT|Timed out waiting|does not exist|Entering emer' \
        "$T/$_v-virtio.log" | sed 's/^/  /'

    [ "$(hash_of "$_img")" = "$_before" ] || fail "$_img was changed"
    echo "ok $_v: source boot as on VMware, unconverted boot on virtio stuck," \
        "image unchanged"
}
