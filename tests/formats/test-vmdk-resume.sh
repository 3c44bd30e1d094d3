#!/bin/sh
# VMDK checkpoint/resume beyond test-resume.sh: garbage after a checkpoint
# long enough to make the monolithicSparse writer write grain tables in
# place past the checkpoint (which resume must drop, also for tables the
# resumed writer never writes again) and the streamOptimized writer emit
# grain tables past it; cuts inside grains and at the very end.  Judged by
# qemu-img check and compare; a resumed streamOptimized image must have no
# trace of the checkpoints' grain directory copy in its overhead.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

size=$((40 * 1048576 + 3584))
"$TOOLS/mkdisk" -s 31 -d 55 $size "$T/ref.raw"
# 100 MiB: data in [0, 3M) and [96M, 100M) only, so that the grain tables
# of [32M, 96M) stay empty in the real image.
"$TOOLS/mkdisk" -s 7 -d 90 $((4 * 1048576)) "$T/a.raw"
truncate -s 100M "$T/sp.raw"
dd if="$T/a.raw" of="$T/sp.raw" bs=1M count=3 conv=notrunc status=none
dd if="$T/a.raw" of="$T/sp.raw" bs=1M seek=96 count=4 conv=notrunc \
    status=none
before=$(hash_of "$T/ref.raw" "$T/sp.raw")
cuts="1 1M 1500000 5000000 9M 9M 12345678 17M 33M 40M"

# u64 FILE OFFSET: a little-endian u64 of FILE.
u64 () {
    od -An -t u8 -j "$2" -N 8 "$1" | tr -d ' '
}

# run NAME SRC GARBAGE_MIB CUTS RESUME-TEST-OPTIONS...
run () {
    name=$1 src=$2 gb=$(($3 * 1048576)) c=$4
    shift 4
    rm -f "$T/out.vmdk"
    # shellcheck disable=SC2086 # the cut list is several arguments
    "$TOOLS/resume-test" -O vmdk -g $gb "$@" "$src" "$T/out.vmdk" $c \
        2>"$T/err" || { cat "$T/err" >&2; fail "$name: resume-test"; }
    qemu-img check -q -f vmdk "$T/out.vmdk" >"$T/check" 2>&1 ||
        { head -5 "$T/check" >&2; fail "$name: qemu-img check"; }
    qemu-img compare -q -f raw -F vmdk "$src" "$T/out.vmdk" ||
        fail "$name: resumed image differs from the source"
    "$VMCONVERT" check "$T/out.vmdk" >/dev/null ||
        fail "$name: vmconvert check"
    # streamOptimized (version 3): zeros from the descriptor's end to the
    # first grain.
    if [ "$(od -An -t u4 -j 4 -N 4 "$T/out.vmdk" | tr -d ' ')" = 3 ]; then
        from=$(( (1 + $(u64 "$T/out.vmdk" 36)) * 512 ))
        to=$(( $(u64 "$T/out.vmdk" 64) * 512 ))
        cmp -s -n $((to - from)) -i "$from:0" "$T/out.vmdk" /dev/zero ||
            fail "$name: the overhead is not zero past the descriptor"
    fi
    echo "ok: $name"
}

for sub in monolithicSparse streamOptimized; do
    run "$sub" "$T/ref.raw" 3 "$cuts" -o subformat=$sub
    run "$sub g40" "$T/ref.raw" 40 "$cuts" -o subformat=$sub
    run "$sub sparse end" "$T/sp.raw" 70 "1M 100M 100M" -o subformat=$sub
done
run "zeroed_grain g40" "$T/ref.raw" 40 "$cuts" -o zeroed_grain=on
run "-c" "$T/ref.raw" 3 "$cuts" -c
[ "$(hash_of "$T/ref.raw" "$T/sp.raw")" = "$before" ] || fail "source modified"
