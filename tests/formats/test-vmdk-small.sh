#!/bin/sh
# vmdk small grains: tiny images with 4 KiB grains, a short last grain,
# zeroed-grain GTEs and ESX sparse (COWD) extents (tests/tools/mk-vmdk-tiny:
# qemu-img writes neither), checked first against qemu-img, then read by
# vmconvert, checked, and rewritten as monolithicSparse and streamOptimized.
# These images are also the fuzz seeds in tests/fuzz/corpus/vmdk/.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

"$TOOLS/mk-vmdk-tiny" "$T"
for f in sparse zeroed stream; do
    qemu-img check "$T/$f.vmdk" >/dev/null || fail "qemu-img check $f"
    qcompare -F raw "$T/$f.vmdk" "$T/tiny.raw"
    hash_of "$T/$f.vmdk" >"$T/before"
    rm -f "$T/out.raw"
    "$VMCONVERT" convert -O raw "$T/$f.vmdk" "$T/out.raw" || fail "read $f"
    cmp "$T/out.raw" "$T/tiny.raw" || fail "$f: wrong bytes"
    hash_of "$T/$f.vmdk" | cmp -s - "$T/before" || fail "$f: source changed"
    "$VMCONVERT" check "$T/$f.vmdk" >/dev/null || fail "check $f"
    "$VMCONVERT" info "$T/$f.vmdk" | grep -q "cluster_size: 4096" ||
        fail "$f: cluster size"
    for sub in monolithicSparse streamOptimized; do
        rm -f "$T/o.vmdk"
        "$VMCONVERT" convert -O vmdk -o subformat=$sub "$T/$f.vmdk" \
            "$T/o.vmdk" || fail "$f -> $sub"
        qemu-img check "$T/o.vmdk" >/dev/null || fail "check $f -> $sub"
        qcompare -f raw "$T/tiny.raw" "$T/o.vmdk"
    done
done
# ESX sparse (COWD): qemu-img reads it only through a descriptor.
cat >"$T/cowd-desc.vmdk" <<EOF
# Disk DescriptorFile
version=1
CID=2468ace0
parentCID=ffffffff
createType="vmfsSparse"
RW 2045 VMFSSPARSE "cowd.vmdk"
EOF
qcompare -F raw "$T/cowd-desc.vmdk" "$T/tiny.raw"
for f in cowd.vmdk cowd-desc.vmdk; do
    rm -f "$T/out.raw"
    "$VMCONVERT" convert -O raw "$T/$f" "$T/out.raw" || fail "read $f"
    cmp "$T/out.raw" "$T/tiny.raw" || fail "$f: wrong bytes"
    "$VMCONVERT" check "$T/$f" >/dev/null || fail "check $f"
done
"$VMCONVERT" info "$T/cowd.vmdk" | grep -q "extents: 1 (VMFSSPARSE" ||
    fail "cowd: info"
# A COWD delta on a sparse parent, through its descriptor (as ESXi
# snapshots are), judged by qemu-img's reading of the same chain.
cat >"$T/snap.vmdk" <<EOF
# Disk DescriptorFile
version=1
CID=89abcdef
parentCID=01234567
createType="vmfsSparse"
parentFileNameHint="sparse.vmdk"
RW 2045 VMFSSPARSE "cowd-delta.vmdk"
EOF
qemu-img convert -O raw "$T/snap.vmdk" "$T/snap.raw"
cmp -s "$T/snap.raw" "$T/tiny.raw" && fail "delta: reads as its parent"
rm -f "$T/out.raw"
"$VMCONVERT" convert -O raw "$T/snap.vmdk" "$T/out.raw" || fail "snap"
cmp "$T/out.raw" "$T/snap.raw" || fail "delta: differs from qemu-img"
expect_error 1 "vmdk: .*delta disk: open its descriptor" "$VMCONVERT" \
    info "$T/cowd-delta.vmdk"

# The fuzz seeds are these images: keep them in sync.
seeds=$(dirname "$0")/../fuzz/corpus/vmdk
for f in sparse zeroed stream cowd; do
    cmp "$T/$f.vmdk" "$seeds/tiny-$f.vmdk" ||
        fail "fuzz seed tiny-$f.vmdk is stale"
done
echo "vmdk small: ok"
