#!/bin/sh
# Every readable format and subformat, written by qemu-img, sent in one job
# to a receiver for each target format: qemu-img compare with the
# reference says identical, qemu-img check passes where it applies, every
# disk of job.json is done with the reference's digest (computed by
# disk-digest.py, independently of vmconvert), and every source
# file's hash is the same afterwards.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/net.sh"
requires qemu-img --version

ref=$T/ref.raw
"$TOOLS/mkdisk" -s 12 -d 55 $((20 * 1048576 + 7 * 512)) "$ref"

mksrc () {
    name=$1
    shift
    qemu-img convert -f raw "$@" "$ref" "$T/src-$name" ||
        fail "qemu-img could not make source $name"
}
mksrc raw -O raw
mksrc qcow2 -O qcow2
mksrc qcow2-v2 -O qcow2 -o compat=0.10
mksrc qcow2-zlib -O qcow2 -c
mksrc qcow2-zstd -O qcow2 -c -o compression_type=zstd
mksrc vmdk-sparse -O vmdk -o subformat=monolithicSparse
mksrc vmdk-2gsparse -O vmdk -o subformat=twoGbMaxExtentSparse
mksrc vmdk-flat -O vmdk -o subformat=monolithicFlat
mksrc vmdk-2gflat -O vmdk -o subformat=twoGbMaxExtentFlat
mksrc vmdk-stream -O vmdk -o subformat=streamOptimized
mksrc vhd-dynamic -O vpc -o subformat=dynamic
mksrc vhd-fixed -O vpc -o subformat=fixed,force_size=on
mksrc vhdx -O vhdx
mksrc vdi -O vdi
mksrc vdi-static -O vdi -o static=on
# A qcow2 overlay over a VMDK base: a backing chain sent as one disk.
qemu-img create -q -f qcow2 -b "$T/src-vmdk-sparse" -F vmdk \
    "$T/src-overlay" || fail "qemu-img create overlay"

srcs=""
for s in "$T"/src-*; do
    case $s in
    *-s0[0-9][0-9] | *-f0[0-9][0-9] | *-flat-flat) continue ;;
    esac
    srcs="$srcs $s"
done
ndisks=$(echo $srcs | wc -w)
# Each source's expected digest, from qemu-img's reading of it (VHD sizes
# are rounded to a CHS geometry, so not every source is the reference's size).
for s in $srcs; do
    case ${s##*/src-} in
    vhdx*) f=vhdx ;; vhd*) f=vpc ;; overlay) f=qcow2 ;; *) f=${s##*/src-} f=${f%%-*} ;;
    esac
    qemu-img convert -f "$f" -O raw "$s" "$T/expect.raw"
    "$(dirname "$0")/disk-digest.py" "$T/expect.raw" >"$s.digest"
done
rm -f "$T/expect.raw"
hash_of "$T"/src-* | grep -v '\.digest$' >"$T/hashes.before"

# Target: name, receive --format, -o options, whether qemu-img check applies.
while read -r tname tfmt topts tcheck; do
    [ -n "$tname" ] || continue
    if [ "$topts" = - ]; then
        start_receiver "rx-$tname" --format "$tfmt"
    else
        start_receiver "rx-$tname" --format "$tfmt" -o "$topts"
    fi
    # shellcheck disable=SC2086 # the source list is several arguments
    send_job --token fleet --job "all-to-$tname" $srcs 2>"$T/send.err" ||
        { cat "$T/send.err" >&2; fail "send to $tname failed"; }
    grep -q "verified" "$T/send.err" || fail "$tname: sender did not verify"
    stop_receiver
    j=$RX_DIR/all-to-$tname
    [ "$(jq -r .state "$j/job.json")" = done ] || fail "$tname: job not done"
    [ "$(jq '.disks | length' "$j/job.json")" -eq "$ndisks" ] ||
        fail "$tname: job.json does not list $ndisks disks"
    i=0
    for s in $srcs; do
        [ "$(jq -r ".disks[$i].state" "$j/job.json")" = done ] ||
            fail "$tname: disk $i not done"
        [ "$(jq -r ".disks[$i].digest" "$j/job.json")" = "$(cat "$s.digest")" ] ||
            fail "$tname: disk $i ($(jq -r ".disks[$i].name" "$j/job.json")) digest is not the reference's (disk-digest.py)"
        f=$j/$(jq -r ".disks[$i].file" "$j/job.json")
        [ -f "$f" ] || fail "$tname: disk $i: no file $f"
        if [ "$tcheck" = yes ]; then
            qemu-img check -q -f "$tfmt" "$f" ||
                fail "qemu-img check ${s##*/} -> $tname"
        fi
        qemu-img compare -q -f raw -F "$tfmt" "$ref" "$f" ||
            fail "${s##*/} -> $tname: differs from the reference"
        i=$((i + 1))
    done
    # No staging copies or partial files are left behind.
    if ls "$j" | grep -q '\.part$'; then fail "$tname: .part files left"; fi
    echo "ok: $ndisks disks -> $tname"
done <<EOT
qcow2 qcow2 - yes
raw raw - no
vmdk vmdk - yes
vmdk-stream vmdk subformat=streamOptimized yes
vhdx vhdx - yes
vhd vpc - no
vdi vdi - yes
EOT
hash_of "$T"/src-* | grep -v '\.digest$' | cmp -s - "$T/hashes.before" || fail "a source changed"
