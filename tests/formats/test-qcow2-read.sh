#!/bin/sh
# qcow2 read: images made by qemu-img in every flavour we read (v2, v3,
# cluster sizes 512 to 2M, extended L2, zlib and zstd compression, zero
# clusters, an internal snapshot with data changed after it) are converted
# to raw by vmconvert and judged identical by qemu-img compare; vmconvert
# check must agree with qemu-img check that they are clean.  Sources are
# never modified.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires qemu-io --version

# 24 MiB + 7 sectors: not a multiple of any cluster size.
"$TOOLS/mkdisk" -s 11 $((24 * 1024 * 1024 + 7 * 512)) "$T/ref.raw"

check_read () {
    name=$1 img=$2 ref=$3
    before=$(hash_of "$img")
    "$VMCONVERT" convert -O raw "$img" "$T/out.raw" ||
        fail "$name: vmconvert convert failed"
    qcompare "$ref" "$T/out.raw"
    qcompare "$img" "$T/out.raw"
    qemu-img check -q "$img" || fail "$name: qemu-img check says broken"
    "$VMCONVERT" check "$img" >"$T/check.out" ||
        { cat "$T/check.out"; fail "$name: vmconvert check failed"; }
    "$VMCONVERT" info "$img" >/dev/null || fail "$name: info failed"
    [ "$before" = "$(hash_of "$img")" ] || fail "$name: source modified"
    rm -f "$T/out.raw"
    echo "ok: $name"
}

n=0
for opts in "compat=0.10" "compat=1.1" "cluster_size=512" "cluster_size=4096" \
            "cluster_size=65536" "cluster_size=2M" \
            "extended_l2=on,cluster_size=128K" "extended_l2=on,cluster_size=64K"
do
    n=$((n + 1))
    qemu-img convert -O qcow2 -o "$opts" "$T/ref.raw" "$T/i$n.qcow2"
    check_read "$opts" "$T/i$n.qcow2" "$T/ref.raw"
done

# Compressed, zlib and zstd, small and default clusters.
for opts in "compression_type=zlib" "compression_type=zstd" \
            "compression_type=zlib,cluster_size=4096" \
            "compression_type=zstd,cluster_size=512"; do
    n=$((n + 1))
    qemu-img convert -c -O qcow2 -o "$opts" "$T/ref.raw" "$T/i$n.qcow2"
    check_read "-c $opts" "$T/i$n.qcow2" "$T/ref.raw"
done
"$VMCONVERT" info "$T/i$n.qcow2" | grep -q "compression type: zstd" ||
    fail "info does not report zstd"

# Zero clusters (v3 flag, and extended-L2 subcluster zero bits), with the
# reference changed the same way.
for opts in "cluster_size=65536" "extended_l2=on,cluster_size=128K"; do
    n=$((n + 1))
    cp "$T/ref.raw" "$T/z.raw"
    qemu-img convert -O qcow2 -o "$opts" "$T/ref.raw" "$T/i$n.qcow2"
    for cmd in "write -z 0 1M" "write -z 5M 64k" "write -z 8208k 8k" \
               "write -z 23M 4k"; do
        qemu-io -f qcow2 -c "$cmd" "$T/i$n.qcow2" >/dev/null
        qemu-io -f raw -c "$cmd" "$T/z.raw" >/dev/null
    done
    "$VMCONVERT" info --json "$T/i$n.qcow2" >/dev/null
    check_read "zero clusters $opts" "$T/i$n.qcow2" "$T/z.raw"
done

# An internal snapshot, then the active layer changed: we read the active
# layer, and check walks the snapshot's tables too.
n=$((n + 1))
cp "$T/ref.raw" "$T/s.raw"
qemu-img convert -O qcow2 -o cluster_size=4096 "$T/ref.raw" "$T/i$n.qcow2"
qemu-img snapshot -c snap1 "$T/i$n.qcow2"
for cmd in "write -P 0xab 1M 300k" "write -z 3M 64k" "write -P 0x5c 24M 3584"; do
    qemu-io -f qcow2 -c "$cmd" "$T/i$n.qcow2" >/dev/null
    qemu-io -f raw -c "$cmd" "$T/s.raw" >/dev/null
done
qemu-img snapshot -c snap2 "$T/i$n.qcow2"
qemu-io -f qcow2 -c "write -P 0x77 7M 1M" "$T/i$n.qcow2" >/dev/null
qemu-io -f raw -c "write -P 0x77 7M 1M" "$T/s.raw" >/dev/null
"$VMCONVERT" info "$T/i$n.qcow2" | grep -q "snapshots: 2" ||
    fail "info does not report 2 snapshots"
check_read "snapshots" "$T/i$n.qcow2" "$T/s.raw"

# Compressed data overwritten in place (mixed compressed and normal).
n=$((n + 1))
qemu-img convert -c -O qcow2 "$T/ref.raw" "$T/i$n.qcow2"
qemu-io -f qcow2 -c "write -P 0x42 2M 100k" "$T/i$n.qcow2" >/dev/null
cp "$T/ref.raw" "$T/c.raw"
qemu-io -f raw -c "write -P 0x42 2M 100k" "$T/c.raw" >/dev/null
check_read "compressed then rewritten" "$T/i$n.qcow2" "$T/c.raw"
echo "all qcow2 read tests passed"
