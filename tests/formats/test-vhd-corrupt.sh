#!/bin/sh
# Damaged VHD images, one field at a time: each must fail with exit status
# 1 and one line naming "vhd" and the field, never a crash.  Uses the
# ASan + UBSan build when it exists (make check builds it), unless
# VMCONVERT says otherwise.  Then the deeper check: overlapping blocks and
# differing footer copies are reported as corruption (exit status 2).
if [ -z "${VMCONVERT:-}" ] &&
   [ -x "$(dirname "$0")/../../build/asan/vmconvert" ]; then
    VMCONVERT=$(cd "$(dirname "$0")/../../build/asan" && pwd)/vmconvert
fi
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires test -x "$TOOLS/mkdisk"
requires test -x "$TOOLS/mk-vhd-diff"

# put_be NBYTES FILE OFFSET VALUE: store VALUE big-endian.
put_be () {
    _n=$1 _v=$4 _s=""
    while [ "$_n" -gt 0 ]; do
        _n=$((_n - 1))
        _s="$_s$(printf '\\%03o' $(((_v >> (_n * 8)) & 255)))"
    done
    # shellcheck disable=SC2059 # the format is the escaped bytes
    printf "$_s" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}

# put_str FILE OFFSET STRING (printf escapes allowed).
put_str () {
    # shellcheck disable=SC2059
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# fix_csum FILE START LEN CSUM_AT: recompute a VHD checksum.
fix_csum () {
    _sum=$(od -An -tu1 -v -j "$2" -N "$3" "$1" | awk -v at="$4" '
        { for (i = 1; i <= NF; i++) { if (n < at || n >= at + 4) s += $i; n++ } }
        END { printf "%.0f", 4294967295 - s }')
    put_be 4 "$1" $(($2 + $4)) "$_sum"
}

# Footer fields are patched in both copies of a dynamic disk.
fix_footers () {
    fix_csum "$1" 0 512 64
    fix_csum "$1" $(($(stat -c %s "$1") - 512)) 512 64
}
footer_be () {
    # footer_be NBYTES FILE FIELD_OFFSET VALUE
    put_be "$1" "$2" "$3" "$4"
    put_be "$1" "$2" $(($(stat -c %s "$2") - 512 + $3)) "$4"
    fix_footers "$2"
}

# bad MESSAGE: the damaged $T/bad.vhd must be refused with MESSAGE.
bad () {
    expect_error 1 "$1" "$VMCONVERT" convert -O raw "$T/bad.vhd" "$T/out.raw"
    expect_error 1 "$1" "$VMCONVERT" info "$T/bad.vhd"
    [ ! -e "$T/out.raw" ] || fail "output left behind"
}

"$TOOLS/mkdisk" -s 31 $((5 * 1048576 + 3072)) "$T/ref.raw"
qemu-img convert -f raw -O vpc "$T/ref.raw" "$T/dyn.vhd"
qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on \
    "$T/ref.raw" "$T/fixed.vhd"
dyn=$T/dyn.vhd
end=$(($(stat -c %s "$dyn") - 512))       # footer at the end
hdr=512                                    # dynamic header
bat=1536                                   # BAT

# Footer.
cp "$dyn" "$T/bad.vhd"; put_str "$T/bad.vhd" 0 XXXXXXXX
bad 'vhd: footer copy at the start .*cookie'
cp "$dyn" "$T/bad.vhd"; put_str "$T/bad.vhd" 0 XXXXXXXX
put_str "$T/bad.vhd" "$end" XXXXXXXX
expect_error 1 'vhd: no footer cookie' \
    "$VMCONVERT" convert -f vhd -O raw "$T/bad.vhd" "$T/out.raw"
cp "$dyn" "$T/bad.vhd"; put_str "$T/bad.vhd" 100 '\001'
bad 'vhd: footer .*checksum'
cp "$dyn" "$T/bad.vhd"; footer_be 4 "$T/bad.vhd" 12 0x00020000
bad 'vhd: footer .*file format version'
cp "$dyn" "$T/bad.vhd"; footer_be 4 "$T/bad.vhd" 60 5
bad 'vhd: footer .*disk type 5'
cp "$dyn" "$T/bad.vhd"; put_be 4 "$T/bad.vhd" 60 2; fix_csum "$T/bad.vhd" 0 512 64
bad 'vhd: disk type 2 \(fixed\) in the footer copy'
cp "$dyn" "$T/bad.vhd"; footer_be 8 "$T/bad.vhd" 16 0x7fffffff00
bad 'vhd: footer data offset'
cp "$dyn" "$T/bad.vhd"; footer_be 8 "$T/bad.vhd" 16 100
bad 'vhd: footer data offset'
cp "$dyn" "$T/bad.vhd"; put_str "$T/bad.vhd" 28 qem2
put_be 8 "$T/bad.vhd" 48 $((3000 * 1073741824)); fix_csum "$T/bad.vhd" 0 512 64
bad 'vhd: footer .*current size .*2040 GiB'

# Dynamic header.
cp "$dyn" "$T/bad.vhd"; put_str "$T/bad.vhd" "$hdr" cxsparsX
bad 'vhd: dynamic header .*cookie'
cp "$dyn" "$T/bad.vhd"; put_str "$T/bad.vhd" $((hdr + 900)) '\001'
bad 'vhd: dynamic header checksum'
cp "$dyn" "$T/bad.vhd"; put_be 4 "$T/bad.vhd" $((hdr + 24)) 0x00020000
fix_csum "$T/bad.vhd" "$hdr" 1024 36
bad 'vhd: dynamic header version'
for bs in 3000 0 256 0x20000000; do
    cp "$dyn" "$T/bad.vhd"; put_be 4 "$T/bad.vhd" $((hdr + 32)) "$bs"
    fix_csum "$T/bad.vhd" "$hdr" 1024 36
    bad "vhd: block size $((bs))"
done
cp "$dyn" "$T/bad.vhd"; put_be 4 "$T/bad.vhd" $((hdr + 28)) 1
fix_csum "$T/bad.vhd" "$hdr" 1024 36
bad 'vhd: max table entries 1 cannot hold'
cp "$dyn" "$T/bad.vhd"; put_be 4 "$T/bad.vhd" $((hdr + 28)) 0x7fffffff
fix_csum "$T/bad.vhd" "$hdr" 1024 36
bad 'vhd: BAT .*max table entries .*past end of file'
cp "$dyn" "$T/bad.vhd"; put_be 8 "$T/bad.vhd" $((hdr + 16)) 0x100000000
fix_csum "$T/bad.vhd" "$hdr" 1024 36
bad 'vhd: BAT at table offset'

# BAT entries.
cp "$dyn" "$T/bad.vhd"; put_be 4 "$T/bad.vhd" "$bat" 0x00ffffff
bad 'vhd: BAT entry 0 .*past end of file'
cp "$dyn" "$T/bad.vhd"; put_be 4 "$T/bad.vhd" $((bat + 4)) 0
bad 'vhd: BAT entry 1 .*footer copy'
cp "$dyn" "$T/bad.vhd"; truncate -s 1048576 "$T/bad.vhd"
bad 'vhd: BAT entry [0-9]+ .*past end of file'

# Fixed disk: the size must fit the data area.
f=$(($(stat -c %s "$T/fixed.vhd") - 512))
cp "$T/fixed.vhd" "$T/bad.vhd"
put_be 8 "$T/bad.vhd" $((f + 48)) $((f + 4096))
fix_csum "$T/bad.vhd" "$f" 512 64
bad 'vhd: virtual size .*data area'
cp "$T/fixed.vhd" "$T/bad.vhd"; put_str "$T/bad.vhd" $((f + 200)) '\001'
expect_error 1 'vhd: footer .*checksum' \
    "$VMCONVERT" convert -f vhd -O raw "$T/bad.vhd" "$T/out.raw"

# Differencing disk: parent locators.  Entry i is at 512 + 576 + 24 * i.
mkdir "$T/d"
cp "$dyn" "$T/d/parent.vhd"
qemu-img convert -f vpc -O raw "$T/d/parent.vhd" "$T/d/parent.raw"
"$TOOLS/mk-vhd-diff" "$T/d/parent.vhd" "$T/d/parent.raw" "$T/d/child.vhd" \
    "$T/d/merged.raw" "$T/d/qemu.raw"
loc=$((hdr + 576))
cp "$T/d/child.vhd" "$T/d/bad.vhd"
put_be 4 "$T/d/bad.vhd" $((loc + 8)) 0x100000
fix_csum "$T/d/bad.vhd" "$hdr" 1024 36
expect_error 1 'vhd: parent locator 0: data length' \
    "$VMCONVERT" convert -O raw "$T/d/bad.vhd" "$T/out.raw"
cp "$T/d/child.vhd" "$T/d/bad.vhd"
put_be 8 "$T/d/bad.vhd" $((loc + 24 + 16)) 0x40000000
fix_csum "$T/d/bad.vhd" "$hdr" 1024 36
expect_error 1 'vhd: parent locator 1: data offset .*past end of file' \
    "$VMCONVERT" convert -O raw "$T/d/bad.vhd" "$T/out.raw"
# A lone UTF-16 surrogate in the relative path (locator 0's data).
cp "$T/d/child.vhd" "$T/d/bad.vhd"
put_str "$T/d/bad.vhd" 1536 '\000\330x\000'
expect_error 1 'vhd: parent locator 0: invalid UTF-16' \
    "$VMCONVERT" convert -O raw "$T/d/bad.vhd" "$T/out.raw"

# check: two BAT entries sharing a block, and footer copies that differ.
cp "$dyn" "$T/bad.vhd"
b0=$(od -An -tu1 -j "$bat" -N 4 "$dyn" | awk '{ printf "%.0f", (($1 * 256 + $2) * 256 + $3) * 256 + $4 }')
put_be 4 "$T/bad.vhd" $((bat + 4)) "$b0"
set +e
"$VMCONVERT" check "$T/bad.vhd" >"$T/check.out" 2>&1
st=$?
set -e
[ "$st" = 2 ] || { cat "$T/check.out"; fail "check exit status $st, not 2"; }
grep -q 'ERROR: vhd: BAT entry 1 .*overlaps' "$T/check.out" ||
    { cat "$T/check.out"; fail "check: overlap not reported"; }
cp "$dyn" "$T/bad.vhd"; put_be 4 "$T/bad.vhd" 24 12345; fix_csum "$T/bad.vhd" 0 512 64
set +e
"$VMCONVERT" check "$T/bad.vhd" >"$T/check.out" 2>&1
st=$?
set -e
[ "$st" = 2 ] || { cat "$T/check.out"; fail "check exit status $st, not 2"; }
grep -q 'ERROR: vhd: the footer copy at the start differs' "$T/check.out" ||
    { cat "$T/check.out"; fail "check: footer copies not compared"; }
exit 0
