#!/bin/sh
# qcow2 backing chains: raw base <- qcow2 <- qcow2 with relative and
# absolute backing names, a base smaller than the overlay, extended L2
# overlays (subclusters falling through to the backing file), info --json
# listing the chain, a loop refused with a clear message, and a chain
# deeper than the core's limit refused.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c "import json"

mkdir "$T/d" "$T/d/sub"
# The base is smaller than the overlays (16 MiB vs 20 MiB + 3 sectors).
"$TOOLS/mkdisk" -s 5 $((16 * 1024 * 1024)) "$T/d/base.raw"
size=$((20 * 1024 * 1024 + 3 * 512))

# mid: relative backing name; top: absolute backing name.
(cd "$T/d/sub" && qemu-img create -q -f qcow2 -b ../base.raw -F raw \
    mid.qcow2 "$size")
qemu-io -c "write -P 0x11 1M 64k" -c "write -P 0x22 15M 2M" \
    -c "write -z 4M 128k" "$T/d/sub/mid.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$T/d/sub/mid.qcow2" -F qcow2 \
    -o extended_l2=on,cluster_size=128K "$T/d/top.qcow2" "$size"
qemu-io -c "write -P 0x33 1040k 4k" -c "write -P 0x44 19M 8k" \
    -c "write -z 64k 4k" -c "write -P 0x55 $((size - 512)) 512" \
    "$T/d/top.qcow2" >/dev/null

before=$(hash_of "$T/d/base.raw" "$T/d/sub/mid.qcow2" "$T/d/top.qcow2")
# The reference: qemu's own view of the chain.
qemu-img convert -O raw "$T/d/top.qcow2" "$T/ref.raw"
(cd "$T" && "$VMCONVERT" convert -O raw d/top.qcow2 "$T/out.raw")
qcompare "$T/ref.raw" "$T/out.raw"
qcompare "$T/d/top.qcow2" "$T/out.raw"
"$VMCONVERT" convert -O raw "$T/d/sub/mid.qcow2" "$T/mid.raw"
qcompare "$T/d/sub/mid.qcow2" "$T/mid.raw"
# And to qcow2 (flattened).
"$VMCONVERT" convert -O qcow2 "$T/d/top.qcow2" "$T/flat.qcow2"
qemu-img check -q "$T/flat.qcow2" || fail "flattened image: qemu-img check"
qcompare "$T/d/top.qcow2" "$T/flat.qcow2"
[ "$before" = "$(hash_of "$T/d/base.raw" "$T/d/sub/mid.qcow2" \
    "$T/d/top.qcow2")" ] || fail "a source was modified"

# info --json lists the chain: top, mid, base.
"$VMCONVERT" info --json "$T/d/top.qcow2" >"$T/info.json"
python3 - "$T/info.json" <<'PY' || fail "info --json does not list the chain"
import json, sys
j = json.load(open(sys.argv[1]))
chain = j["backing-chain"]
assert j["format"] == "qcow2", j
assert j["backing-filename-format"] == "qcow2", j
assert j["backing-filename"].endswith("/d/sub/mid.qcow2"), j
assert [c["format"] for c in chain] == ["qcow2", "raw"], chain
assert chain[0]["backing-filename"] == "../base.raw", chain
assert chain[0]["full-backing-filename"].endswith("base.raw"), chain
assert j["format-specific"]["extended l2"] == "true", j
PY
"$VMCONVERT" info "$T/d/top.qcow2" | grep -q "backing file: .*mid.qcow2" ||
    fail "info does not show the backing file"

# A loop: a <- b <- a (made with rebase -u) is refused in one line.
qemu-img create -q -f qcow2 "$T/a.qcow2" 1M
qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 "$T/b.qcow2" 1M
qemu-img rebase -u -b b.qcow2 -F qcow2 "$T/a.qcow2"
expect_error 1 "loop" "$VMCONVERT" convert -O raw "$T/a.qcow2" "$T/loop.raw"
expect_error 1 "loop" "$VMCONVERT" info "$T/b.qcow2"
# A self loop.
qemu-img create -q -f qcow2 "$T/self.qcow2" 1M
qemu-img rebase -u -b self.qcow2 -F qcow2 "$T/self.qcow2"
expect_error 1 "loop" "$VMCONVERT" convert -O raw "$T/self.qcow2" "$T/x.raw"

# Depth: a chain of 8 is read correctly; one of 70 is refused.
qemu-img create -q -f qcow2 "$T/c0.qcow2" 1M
qemu-io -c "write -P 0x60 0 512" "$T/c0.qcow2" >/dev/null
i=1
while [ $i -le 70 ]; do
    qemu-img create -q -f qcow2 -b "c$((i - 1)).qcow2" -F qcow2 \
        "$T/c$i.qcow2" 1M
    i=$((i + 1))
done
qemu-io -c "write -P 0x68 4k 512" "$T/c8.qcow2" >/dev/null
"$VMCONVERT" convert -O raw "$T/c8.qcow2" "$T/c8.raw"
qcompare "$T/c8.qcow2" "$T/c8.raw"
expect_error 1 "deeper" "$VMCONVERT" convert -O raw "$T/c70.qcow2" "$T/c.raw"

# A missing backing file: one clear line.
qemu-img create -q -u -f qcow2 -b gone.raw -F raw "$T/orphan.qcow2" 1M
expect_error 1 "backing file" "$VMCONVERT" convert -O raw "$T/orphan.qcow2" \
    "$T/o.raw"
echo "all qcow2 backing tests passed"
