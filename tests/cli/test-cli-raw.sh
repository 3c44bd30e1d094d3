#!/bin/sh
# raw to raw through the whole command: the output is identical (judged by
# qemu-img), sparse, and the source is untouched; info, compare and check
# on raw images.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires jq --version

"$TOOLS/mkdisk" -s 7 -d 60 40M "$T/src.raw"
# A sparse tail: the last sector holds data, the rest of a long tail is a
# hole.
truncate -s 41M "$T/src.raw"
printf 'end' | dd of="$T/src.raw" bs=1 seek=$((41 * 1048576 - 3)) conv=notrunc 2>/dev/null
before=$(hash_of "$T/src.raw")

"$VMCONVERT" convert -p -O raw "$T/src.raw" "$T/dst.raw" 2>"$T/progress"
grep -q '100.00%' "$T/progress" || fail "no progress shown"
grep -q 'MB/s' "$T/progress" || fail "no rate in the progress"
qcompare "$T/src.raw" "$T/dst.raw"
[ "$(hash_of "$T/src.raw")" = "$before" ] || fail "source modified"
[ "$(stat -c %s "$T/dst.raw")" -eq $((41 * 1048576)) ] || fail "size"

# Sparse: no more allocated than the source's non-zero 4 KiB blocks.
nonzero=$(qemu-img map --output=json "$T/src.raw" >/dev/null; \
    od -An -v -w4096 -tx1 "$T/src.raw" | grep -c '[1-9a-f]' || true)
alloc=$(($(stat -c %b "$T/dst.raw") * 512))
# (+ 64 KiB: the host filesystem counts its extent-tree blocks in st_blocks.)
[ "$alloc" -le $((nonzero * 4096 + 65536)) ] ||
    fail "output allocates $alloc bytes for $nonzero non-zero blocks"
[ "$alloc" -gt 0 ] || fail "output has no data"

# info, text and JSON.
"$VMCONVERT" info "$T/src.raw" >"$T/info"
grep -q '^file format: raw$' "$T/info" || fail "info: format"
grep -q "^virtual size: .*($((41 * 1048576)) bytes)$" "$T/info" || fail "info: size"
"$VMCONVERT" info --json "$T/src.raw" >"$T/info.json"
[ "$(jq -r .format "$T/info.json")" = raw ] || fail "info --json: format"
[ "$(jq -r '."virtual-size"' "$T/info.json")" -eq $((41 * 1048576)) ] ||
    fail "info --json: size"
[ "$(jq -r '."actual-size"' "$T/info.json")" -eq \
  $(($(stat -c %b "$T/src.raw") * 512)) ] || fail "info --json: actual size"

# compare: identical; a byte changed at a known offset; sizes differ with
# zeros / non-zero past the end; a missing file.
"$VMCONVERT" compare "$T/src.raw" "$T/dst.raw" | grep -q 'identical' ||
    fail "compare identical"
printf '\001' | dd of="$T/dst.raw" bs=1 seek=12345678 conv=notrunc 2>/dev/null
cmp -l "$T/src.raw" "$T/dst.raw" | head -n 1 >"$T/cmp"
want=$(($(awk '{print $1}' "$T/cmp") - 1))
set +e
"$VMCONVERT" compare "$T/src.raw" "$T/dst.raw" >"$T/out"
st=$?
set -e
[ "$st" -eq 1 ] || fail "compare of different images: status $st"
grep -q "offset $want!" "$T/out" || fail "compare: wrong offset (want $want)"
cp --sparse=always "$T/src.raw" "$T/long.raw"
truncate -s 50M "$T/long.raw"
"$VMCONVERT" compare "$T/src.raw" "$T/long.raw" >"$T/out" ||
    fail "zero tail should compare equal"
grep -q 'size mismatch' "$T/out" || fail "no size warning"
printf 'x' | dd of="$T/long.raw" bs=1 seek=$((45 * 1048576)) conv=notrunc 2>/dev/null
set +e
"$VMCONVERT" compare "$T/src.raw" "$T/long.raw" >"$T/out"
st=$?
set -e
[ "$st" -eq 1 ] && grep -q "offset $((45 * 1048576))!" "$T/out" ||
    fail "non-zero tail: status $st"
expect_error 2 "nonexistent" "$VMCONVERT" compare "$T/src.raw" "$T/nonexistent"

"$VMCONVERT" check "$T/src.raw" | grep -q 'No errors' || fail "check"
[ "$(hash_of "$T/src.raw")" = "$before" ] || fail "source modified"
exit 0
