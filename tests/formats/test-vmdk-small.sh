#!/bin/sh
# vmdk small grains: tiny images with 4 KiB grains, a short last grain and
# zeroed-grain GTEs (tests/tools/mk-vmdk-tiny: qemu-img only writes 64 KiB
# grains), checked first against qemu-img, then read by vmconvert, checked,
# and rewritten as monolithicSparse and streamOptimized.  These images are
# also the fuzz seeds in tests/fuzz/corpus/vmdk/.
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
# The fuzz seeds are these images: keep them in sync.
seeds=$(dirname "$0")/../fuzz/corpus/vmdk
for f in sparse zeroed stream; do
    cmp "$T/$f.vmdk" "$seeds/tiny-$f.vmdk" ||
        fail "fuzz seed tiny-$f.vmdk is stale"
done
echo "vmdk small: ok"
