#!/bin/sh
# vhdx log replay: tests/tools/mk-vhdx-log adds a log sequence to a clean
# qemu-img image (data rewritten, a block made present through the BAT,
# zeros, a later write over an earlier one, a torn entry and a stale entry
# that must both be ignored) and writes the raw the replayed image must
# read as.  qemu-img check -r all replays a copy: it must agree with that
# raw, which judges the generator.  vmconvert must show the same content
# without writing the source (hash unchanged).  A wrapped sequence is read
# too (qemu-img 7.2 replays only the part after the wrap, so it cannot
# judge that case).  Corrupt logs are refused in one line; a log whose only
# entries are torn has nothing to replay.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

size=$((20 * 1024 * 1024 + 5 * 512))
"$TOOLS/mkdisk" -s 5 "$size" "$T/ref.raw"
qemu-img convert -f raw -O vhdx -o block_size=1M,block_state_zero=off \
    "$T/ref.raw" "$T/clean.vhdx"

make_log () {
    cp "$T/clean.vhdx" "$T/log.vhdx"
    cp "$T/ref.raw" "$T/expect.raw"
    "$TOOLS/mk-vhdx-log" log "$@" "$T/log.vhdx" "$T/expect.raw"
}

echo "== replay"
make_log
cmp -s "$T/ref.raw" "$T/expect.raw" && fail "the log changes nothing"
before=$(hash_of "$T/log.vhdx")
# qemu-img refuses to read it without replaying (read-only).
if qemu-img convert -f vhdx -O raw "$T/log.vhdx" "$T/q.raw" 2>/dev/null; then
    fail "qemu-img read an image whose log needs replay"
fi
cp "$T/log.vhdx" "$T/qemu.vhdx"
qemu-img check -r all "$T/qemu.vhdx" >/dev/null 2>&1 || true
qemu-img check "$T/qemu.vhdx" >/dev/null || fail "qemu-img check after replay"
qcompare -f vhdx -F raw "$T/qemu.vhdx" "$T/expect.raw"

"$VMCONVERT" info "$T/log.vhdx" >"$T/info"
grep -q 'log replayed: yes' "$T/info" || fail "info does not say replayed"
rm -f "$T/out.raw"
"$VMCONVERT" convert -O raw "$T/log.vhdx" "$T/out.raw"
qcompare -f raw -F raw "$T/expect.raw" "$T/out.raw"
"$VMCONVERT" compare "$T/log.vhdx" "$T/qemu.vhdx" >/dev/null ||
    fail "vmconvert compare with the qemu-replayed copy"
"$VMCONVERT" check "$T/log.vhdx" >/dev/null || fail "vmconvert check"
rm -f "$T/w.vhdx"
"$VMCONVERT" convert -O vhdx -o block_size=1M "$T/log.vhdx" "$T/w.vhdx"
qemu-img check "$T/w.vhdx" >/dev/null || fail "check of the rewritten image"
qcompare -f raw -F vhdx "$T/expect.raw" "$T/w.vhdx"
[ "$(hash_of "$T/log.vhdx")" = "$before" ] || fail "the source was modified"

echo "== replay of a sequence that wraps around the end of the log"
make_log -W
before=$(hash_of "$T/log.vhdx")
rm -f "$T/out.raw"
"$VMCONVERT" convert -O raw "$T/log.vhdx" "$T/out.raw"
qcompare -f raw -F raw "$T/expect.raw" "$T/out.raw"
[ "$(hash_of "$T/log.vhdx")" = "$before" ] || fail "the source was modified"

echo "== corrupt logs"
make_log -c flushed
expect_error 1 "vhdx: the log needs replay and .*truncated" \
    "$VMCONVERT" convert -O raw "$T/log.vhdx" "$T/bad.raw"
make_log -c header
expect_error 1 "vhdx: the log needs replay and writes into the file headers" \
    "$VMCONVERT" convert -O raw "$T/log.vhdx" "$T/bad.raw"
make_log -c desc
expect_error 1 "vhdx: the log needs replay and .*unknown signature" \
    "$VMCONVERT" info "$T/log.vhdx"
# The log lies past the end of the file.
cp "$T/clean.vhdx" "$T/log.vhdx"
truncate -s 1500K "$T/log.vhdx"
expect_error 1 "vhdx: header 2: log .* past the end of the file" \
    "$VMCONVERT" info "$T/log.vhdx"

echo "== only a torn entry: nothing to replay"
make_log -c torn
rm -f "$T/out.raw"
"$VMCONVERT" convert -O raw "$T/log.vhdx" "$T/out.raw" 2>"$T/err"
grep -q 'no valid sequence' "$T/err" || fail "no warning for a torn log"
qcompare -f raw -F raw "$T/ref.raw" "$T/out.raw"
echo "PASS"
