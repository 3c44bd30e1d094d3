#!/bin/sh
# qcow2 checkpoint/resume beyond test-resume.sh: small clusters (so that
# the garbage written after a checkpoint fills and rewrites in place the
# current L2 table and refcount block, which resume must not trust past
# the checkpoint), big ones, compressed packing across clusters, cuts
# inside clusters and at the very end, and a sparse disk whose tables the
# resumed writer leaves partly empty (stale entries would survive there).
# Judged by qemu-img check and compare.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

size=$((40 * 1048576 + 3584))
"$TOOLS/mkdisk" -s 31 -d 55 $size "$T/ref.raw"
# 24 MiB: data in [0, 3M) and [20M, 24M), a hole between; even size, so
# that the last cut is at the very end.
"$TOOLS/mkdisk" -s 7 -d 90 $((4 * 1048576)) "$T/a.raw"
truncate -s 24M "$T/sp.raw"
dd if="$T/a.raw" of="$T/sp.raw" bs=1M count=3 conv=notrunc status=none
dd if="$T/a.raw" of="$T/sp.raw" bs=1M seek=20 count=4 conv=notrunc \
    status=none
before=$(hash_of "$T/ref.raw" "$T/sp.raw")
cuts="1 1M 1500000 5000000 9M 9M 12345678 17M 33M 40M"

# run NAME SRC GARBAGE_MIB CUTS RESUME-TEST-OPTIONS...
run () {
    name=$1 src=$2 gb=$(($3 * 1048576)) c=$4
    shift 4
    rm -f "$T/out.qcow2"
    # shellcheck disable=SC2086 # the cut list is several arguments
    "$TOOLS/resume-test" -O qcow2 -g $gb "$@" "$src" "$T/out.qcow2" $c \
        2>"$T/err" || { cat "$T/err" >&2; fail "$name: resume-test"; }
    qemu-img check -q -f qcow2 "$T/out.qcow2" >"$T/check" 2>&1 ||
        { head -5 "$T/check" >&2; fail "$name: qemu-img check"; }
    qemu-img compare -q -f raw -F qcow2 "$src" "$T/out.qcow2" ||
        fail "$name: resumed image differs from the source"
    echo "ok: $name"
}

# With 512-byte clusters an L2 table maps 32 KiB and a refcount block
# covers 128 KiB: 3 MiB of garbage cross many.  With 4 KiB clusters they
# cover 2 and 8 MiB: 20 MiB of garbage.
run "512" "$T/ref.raw" 3 "$cuts" -o cluster_size=512
run "-c 512" "$T/ref.raw" 3 "$cuts" -c -o cluster_size=512
run "-c v2 1K" "$T/ref.raw" 3 "$cuts" -c -o compat=0.10,cluster_size=1024
run "4K" "$T/ref.raw" 20 "$cuts" -o cluster_size=4096
run "-c 4K" "$T/ref.raw" 20 "$cuts" -c -o cluster_size=4096
run "-c zstd 4K" "$T/ref.raw" 20 "$cuts" -c \
    -o cluster_size=4096,compression_type=zstd
run "-c 2M" "$T/ref.raw" 3 "$cuts" -c -o cluster_size=2M
run "sparse 8K" "$T/sp.raw" 30 "1M 24M" -o cluster_size=8192
run "sparse -c 8K" "$T/sp.raw" 30 "1M 24M" -c -o cluster_size=8192
run "sparse 64K end" "$T/sp.raw" 3 "1 20M 24M 24M"
[ "$(hash_of "$T/ref.raw" "$T/sp.raw")" = "$before" ] || fail "source modified"
