#!/bin/sh
# Checkpoint and resume of every writer, as the network receiver uses them
# after it was killed: tests/tools/resume-test crashes the writer at
# several points, each time after writing garbage past its checkpoint, then
# resumes it; qemu-img must find the result consistent (check) and
# identical to the source (compare).
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

# Not a multiple of any cluster/grain/block size; sparse and dense parts.
"$TOOLS/mkdisk" -s 31 -d 55 $((40 * 1048576 + 3584)) "$T/ref.raw"
before=$(hash_of "$T/ref.raw")
cuts="1M 5000000 9M 9M 17M 33M"

while read -r name fmt opts check; do
    [ -n "$name" ] || continue
    set -- -O "$fmt"
    case $opts in
    -) ;;
    -c) set -- "$@" -c ;;
    -c,*) set -- "$@" -c -o "${opts#-c,}" ;;
    *) set -- "$@" -o "$opts" ;;
    esac
    # shellcheck disable=SC2086 # the cut list is several arguments
    "$TOOLS/resume-test" "$@" "$T/ref.raw" "$T/out.$name" $cuts \
        2>"$T/err" || { cat "$T/err" >&2; fail "$name: resume-test failed"; }
    [ "$(grep -c 'crashed and resumed' "$T/err")" -ge 5 ] ||
        fail "$name: fewer resumes than cuts"
    if [ "$check" = yes ]; then
        qemu-img check -q -f "$fmt" "$T/out.$name" ||
            fail "$name: qemu-img check after resumes"
    fi
    qemu-img compare -q -f raw -F "$fmt" "$T/ref.raw" "$T/out.$name" ||
        fail "$name: resumed image differs from the source"
    rm -f "$T/out.$name"
    echo "ok: $name"
done <<EOT
raw raw - no
vhd-dynamic vpc - no
vhd-fixed vpc subformat=fixed no
vhd-azure vpc azure=on no
vdi vdi - yes
vdi-static vdi static=on yes
vhdx vhdx - yes
vhdx-1m vhdx block_size=1M yes
vhdx-fixed vhdx subformat=fixed yes
qcow2 qcow2 - yes
qcow2-2M qcow2 cluster_size=2M yes
qcow2-zstd qcow2 -c,compression_type=zstd yes
qcow2-zlib qcow2 -c yes
qcow2-v2 qcow2 compat=0.10 yes
vmdk vmdk subformat=monolithicSparse yes
vmdk-stream vmdk subformat=streamOptimized yes
EOT
[ "$(hash_of "$T/ref.raw")" = "$before" ] || fail "source modified"
