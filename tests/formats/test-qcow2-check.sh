#!/bin/sh
# qcow2 check: vmconvert check passes on clean images made by qemu-img
# (plain, compressed, extended L2, snapshots, bitmaps, small clusters), and
# on images we damage it finds the problem with the exit status qemu-img
# check gives (2 corruption, 3 leaks only) and names it.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version

cat >"$T/q2.py" <<'PY'
# q2.py FILE CMD ARGS: locate and patch qcow2 structures for the tests.
import struct, sys
f, cmd = sys.argv[1], sys.argv[2]
d = bytearray(open(f, "rb").read())
be64 = lambda o: struct.unpack(">Q", d[o:o + 8])[0]
be32 = lambda o: struct.unpack(">I", d[o:o + 4])[0]
cb = be32(20); cs = 1 << cb
l1 = be64(40); rt = be64(48)
l2 = be64(l1) & 0x00fffffffffffe00
rb0 = be64(rt)
def setref(cluster, v):
    blk = be64(rt + 8 * (cluster // (cs // 2)))
    o = blk + 2 * (cluster % (cs // 2))
    d[o:o + 2] = struct.pack(">H", v)
if cmd == "zero-ref":          # refcount of the first data cluster -> 0
    setref((be64(l2) & 0x00fffffffffffe00) >> cb, 0)
elif cmd == "l2-past-eof":     # first L2 entry -> past the end
    d[l2:l2 + 8] = struct.pack(">Q", (1 << 63) | (len(d) + 16 * cs))
elif cmd == "l2-dup":          # second L2 entry -> same cluster as first
    d[l2 + 8:l2 + 16] = d[l2:l2 + 8]
elif cmd == "leak":            # a new cluster at the end with refcount 1
    n = len(d) // cs
    d += bytes(cs)
    setref(n, 1)
open(f, "wb").write(d)
PY

"$TOOLS/mkdisk" -s 9 $((8 * 1024 * 1024 + 3 * 512)) "$T/ref.raw"

clean () {
    qemu-img check -q "$1" || fail "$2: qemu-img check says broken"
    "$VMCONVERT" check "$1" >"$T/out" ||
        { cat "$T/out"; fail "$2: vmconvert check failed"; }
    grep -q "No errors" "$T/out" || fail "$2: no verdict"
    echo "ok: clean: $2"
}

n=0
for opts in "-o cluster_size=65536" "-o cluster_size=512" "-o compat=0.10" \
            "-c -o cluster_size=4096" "-c -o compression_type=zstd" \
            "-o extended_l2=on" "-o refcount_bits=1,cluster_size=4096" \
            "-o refcount_bits=64,cluster_size=4096"; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    qemu-img convert -O qcow2 $opts "$T/ref.raw" "$T/c$n.qcow2"
    clean "$T/c$n.qcow2" "$opts"
done
# Snapshots, zero clusters, overwritten compressed clusters, bitmaps.
n=$((n + 1))
qemu-img convert -c -O qcow2 -o cluster_size=4096 "$T/ref.raw" "$T/c$n.qcow2"
qemu-img snapshot -c s1 "$T/c$n.qcow2"
qemu-io -c "write -P 0x12 0 1M" -c "write -z 2M 512k" "$T/c$n.qcow2" >/dev/null
qemu-img snapshot -c s2 "$T/c$n.qcow2"
qemu-io -c "write -P 0x13 100k 8k" "$T/c$n.qcow2" >/dev/null
qemu-img bitmap --add "$T/c$n.qcow2" b0
qemu-img bitmap --add -g 65536 "$T/c$n.qcow2" b1
clean "$T/c$n.qcow2" "snapshots + bitmaps"
# Our own output.
"$VMCONVERT" convert -O qcow2 -c "$T/ref.raw" "$T/ours.qcow2"
clean "$T/ours.qcow2" "vmconvert -c output"

# damaged CMD STATUS PATTERN: both checkers must return STATUS.
damaged () {
    cp "$T/c1.qcow2" "$T/bad.qcow2"
    python3 "$T/q2.py" "$T/bad.qcow2" "$1"
    set +e
    qemu-img check "$T/bad.qcow2" >"$T/qout" 2>&1
    qs=$?
    "$VMCONVERT" check "$T/bad.qcow2" >"$T/out" 2>&1
    vs=$?
    set -e
    [ "$qs" = "$2" ] || { cat "$T/qout"; fail "$1: qemu-img check says $qs"; }
    [ "$vs" = "$2" ] || { cat "$T/out"; fail "$1: vmconvert check says $vs"; }
    grep -Eq "$3" "$T/out" || { cat "$T/out"; fail "$1: not named"; }
    echo "ok: $1: exit $vs: $(grep -E "$3" "$T/out" | head -1)"
}
damaged zero-ref 2 "ERROR: qcow2: cluster [0-9]+ .*refcount=0 reference=1"
damaged l2-past-eof 2 "ERROR: qcow2: L2 entry .*past end of file"
damaged l2-dup 2 "ERROR: qcow2: cluster [0-9]+ .*refcount=1 reference=2"
damaged leak 3 "Leaked: qcow2: cluster [0-9]+ .*refcount=1 reference=0"
echo "all qcow2 check tests passed"
