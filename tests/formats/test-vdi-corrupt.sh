#!/bin/sh
# Damaged VDI images, one header field or block map entry at a time: each
# must fail with exit status 1 and one line naming "vdi" and the field,
# never a crash.  Uses the ASan + UBSan build when it exists (make check
# builds it), unless VMCONVERT says otherwise.  Then the deeper check:
# shared data blocks and a wrong allocated count are corruption (exit 2).
if [ -z "${VMCONVERT:-}" ] &&
   [ -x "$(dirname "$0")/../../build/asan/vmconvert" ]; then
    VMCONVERT=$(cd "$(dirname "$0")/../../build/asan" && pwd)/vmconvert
fi
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires test -x "$TOOLS/mkdisk"

# put_le NBYTES FILE OFFSET VALUE: store VALUE little-endian.
put_le () {
    _i=0 _s=""
    while [ "$_i" -lt "$1" ]; do
        _s="$_s$(printf '\\%03o' $((($4 >> (_i * 8)) & 255)))"
        _i=$((_i + 1))
    done
    # shellcheck disable=SC2059 # the format is the escaped bytes
    printf "$_s" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}

# field NBYTES OFFSET VALUE MESSAGE: $T/good.vdi with one field changed
# must be refused with MESSAGE.
field () {
    cp "$T/good.vdi" "$T/bad.vdi"
    put_le "$1" "$T/bad.vdi" "$2" "$3"
    bad "$4"
}

bad () {
    expect_error 1 "$1" \
        "$VMCONVERT" convert -f vdi -O raw "$T/bad.vdi" "$T/out.raw"
    expect_error 1 "$1" "$VMCONVERT" info -f vdi "$T/bad.vdi"
    [ ! -e "$T/out.raw" ] || fail "output left behind"
}

"$TOOLS/mkdisk" -s 61 $((5 * 1048576 + 3072)) "$T/ref.raw"
qemu-img convert -f raw -O vdi "$T/ref.raw" "$T/good.vdi"
map=$(od -An -tu4 -j $((0x154)) -N 4 "$T/good.vdi" | tr -d ' ')
blocks=$(od -An -tu4 -j $((0x180)) -N 4 "$T/good.vdi" | tr -d ' ')
[ "$blocks" = 6 ] || fail "expected 6 blocks, got $blocks"

field 4 $((0x40)) 0xbeda1070 'vdi: signature'
field 4 $((0x44)) 0x00010000 'vdi: header version 1\.0 '
field 4 $((0x44)) 0x00020001 'vdi: header version 2\.1 '
field 4 $((0x48)) 16 'vdi: header size 16 '
field 4 $((0x48)) 0x1000 'vdi: header size 4096 '
field 4 $((0x4c)) 3 'vdi: image type 3 \(undo\)'
field 4 $((0x4c)) 4 'vdi: image type 4 \(differencing'
field 4 $((0x4c)) 9 'vdi: image type 9 '
field 4 $((0x168)) 4096 'vdi: sector size 4096'
field 4 $((0x178)) 3000 'vdi: block size 3000 '
field 4 $((0x178)) 0 'vdi: block size 0 '
field 4 $((0x178)) 0x20000000 'vdi: block size 536870912 '
field 4 $((0x17c)) 512 'vdi: block extra'
field 4 $((0x180)) 0x7fffffff 'vdi: blocks in image 2147483647 is too many'
field 4 $((0x180)) 5 'vdi: disk size .*5 blocks in image'
field 4 $((0x184)) 7 'vdi: blocks allocated 7 '
field 8 $((0x170)) 0x7ffffffffffffff0 'vdi: disk size .*needs more'
field 4 $((0x154)) 0x201 'vdi: block map offset'
field 4 $((0x154)) 0x100 'vdi: block map offset'
field 4 $((0x154)) 0x40000000 'vdi: block map offset'
field 4 $((0x158)) 0x401 'vdi: data offset'
field 4 $((0x158)) 0x200 'vdi: data offset'
field 4 "$map" 100 'vdi: block map entry 0 \(100\) is out of range'
field 4 $((map + 8)) 6 'vdi: block map entry 2 \(6\) is out of range'

# Block data past the end of the file.
cp "$T/good.vdi" "$T/bad.vdi"
truncate -s $(($(stat -c %s "$T/good.vdi") - 1048576)) "$T/bad.vdi"
bad 'vdi: block map entry [0-9]+ .* points past end of file'
cp "$T/good.vdi" "$T/bad.vdi"
truncate -s 100 "$T/bad.vdi"
bad 'vdi: file of 100 bytes is too small'

# check: two entries sharing a data block; a wrong allocated count.
cp "$T/good.vdi" "$T/bad.vdi"
put_le 4 "$T/bad.vdi" $((map + 4)) "$(od -An -tu4 -j "$map" -N 4 "$T/good.vdi" | tr -d ' ')"
set +e
"$VMCONVERT" check "$T/bad.vdi" >"$T/check.out" 2>&1
st=$?
set -e
[ "$st" = 2 ] || { cat "$T/check.out"; fail "check exit status $st, not 2"; }
grep -q 'ERROR: vdi: block map entries 0 and 1 both use data block' \
    "$T/check.out" || { cat "$T/check.out"; fail "sharing not reported"; }
cp "$T/good.vdi" "$T/bad.vdi"
n=$(od -An -tu4 -j $((0x184)) -N 4 "$T/good.vdi" | tr -d ' ')
put_le 4 "$T/bad.vdi" $((0x184)) $((n - 1))
set +e
"$VMCONVERT" check "$T/bad.vdi" >"$T/check.out" 2>&1
st=$?
set -e
[ "$st" = 2 ] || { cat "$T/check.out"; fail "check exit status $st, not 2"; }
grep -q "ERROR: vdi: $n blocks are allocated, the header says $((n - 1))" \
    "$T/check.out" || { cat "$T/check.out"; fail "count not checked"; }
exit 0
