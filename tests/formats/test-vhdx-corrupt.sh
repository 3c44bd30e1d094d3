#!/bin/sh
# vhdx corrupt input: a good qemu-img image damaged one field at a time
# (fields inside checksummed structures are re-checksummed with
# mk-vhdx-log resum, so the field itself is what the reader must judge).
# Each must fail with exit status 1 and one line naming vhdx and the field.
# Run it with the ASan build too: VMCONVERT=build/asan/vmconvert.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

"$TOOLS/mkdisk" -s 9 $((12 * 1024 * 1024 + 512)) "$T/ref.raw"
qemu-img convert -f raw -O vhdx -o block_size=1M,block_state_zero=off \
    "$T/ref.raw" "$T/good.vhdx"

# qemu-img's layout: log at 1M, BAT at 2M, metadata at 3M with the items
# at +64K: File Parameters (block size, flags), Virtual Disk Size, Virtual
# Disk ID, Logical Sector Size, Physical Sector Size.
H1=65536 H2=131072 RT1=196608 RT2=262144
BAT=2097152 MD=3145728 ITEMS=$((3145728 + 65536))

# poke FILE OFFSET BYTES: write printf-escaped BYTES at OFFSET.
poke () {
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

resum () {
    for o in "$@"; do
        "$TOOLS/mk-vhdx-log" resum "$T/bad.vhdx" "$o"
    done
}

# bad DESCRIPTION PATTERN: the damaged $T/bad.vhdx must be refused.
bad () {
    echo "== $1"
    expect_error 1 "vhdx.*$2" "$VMCONVERT" convert -f vhdx -O raw \
        "$T/bad.vhdx" "$T/out.raw"
    expect_error 1 "vhdx.*$2" "$VMCONVERT" info -f vhdx "$T/bad.vhdx"
}

fresh () {
    cp "$T/good.vhdx" "$T/bad.vhdx"
}

# The file type identifier.
fresh; poke "$T/bad.vhdx" 7 'X'
bad "file type identifier" "file type identifier"
fresh; truncate -s 200K "$T/bad.vhdx"
bad "file too short" "too short"

# Headers: both damaged, else the other one is used.
fresh; poke "$T/bad.vhdx" $H1 'X'; poke "$T/bad.vhdx" $H2 'X'
bad "header signature" "both headers are invalid.*signature"
fresh; poke "$T/bad.vhdx" $((H1 + 4)) '\377'
poke "$T/bad.vhdx" $((H2 + 4)) '\377'
bad "header checksum" "both headers are invalid.*checksum"
fresh
for h in $H1 $H2; do poke "$T/bad.vhdx" $((h + 66)) '\2'; done
resum $H1 $H2
bad "header version" "header .: version 2 is not supported"
fresh
for h in $H1 $H2; do poke "$T/bad.vhdx" $((h + 64)) '\1'; done
resum $H1 $H2
bad "log version" "header .: log version 1"
for h in $H1 $H2; do poke "$T/bad.vhdx" $((h + 64)) '\0'; done
for h in $H1 $H2; do poke "$T/bad.vhdx" $((h + 72)) '\0\0\030'; done
resum $H1 $H2
bad "log offset not 1M aligned" "header .: log offset 0x180000"
fresh
for h in $H1 $H2; do poke "$T/bad.vhdx" $((h + 72)) '\0\0\0\0\0\1'; done
resum $H1 $H2
bad "log offset past the end" "header .: log .* past the end of the file"
fresh
for h in $H1 $H2; do poke "$T/bad.vhdx" $((h + 68)) '\0\1\0\0'; done
resum $H1 $H2
bad "log length" "header .: log length 256"

# Region tables: both damaged, else the other one is used.
fresh; poke "$T/bad.vhdx" $RT1 'X'; poke "$T/bad.vhdx" $RT2 'X'
bad "region table signature" "both region tables are invalid.*signature"
fresh; poke "$T/bad.vhdx" $((RT1 + 4)) '\377'
poke "$T/bad.vhdx" $((RT2 + 4)) '\377'
bad "region table checksum" "both region tables are invalid.*checksum"
fresh
for r in $RT1 $RT2; do poke "$T/bad.vhdx" $((r + 8)) '\0\010'; done
resum $RT1 $RT2
bad "region table entry count" "entry count 2048"
fresh
for r in $RT1 $RT2; do poke "$T/bad.vhdx" $((r + 33)) '\010'; done
resum $RT1 $RT2
bad "BAT region offset" "offset 0x200800 is not a multiple of 1 MiB"
fresh
for r in $RT1 $RT2; do poke "$T/bad.vhdx" $((r + 36)) '\1'; done
resum $RT1 $RT2
bad "BAT region past the end" "extends past the end of the file"
fresh
for r in $RT1 $RT2; do poke "$T/bad.vhdx" $((r + 66)) '\020'; done
resum $RT1 $RT2
bad "metadata region on the log" "overlaps the log"
fresh
for r in $RT1 $RT2; do
    poke "$T/bad.vhdx" $((r + 8)) '\3'
    poke "$T/bad.vhdx" $((r + 80)) \
        '\021\021\021\021\042\042\063\063\104\104\125\125\146\146\167\167'
    poke "$T/bad.vhdx" $((r + 96)) '\0\0\100\0\0\0\0\0\0\0\020\0\1\0\0\0'
done
resum $RT1 $RT2
bad "unknown required region" \
    "region 11111111-2222-3333-4444-555566667777 is required"

# Only one copy damaged: still readable, and check reports it.
fresh; poke "$T/bad.vhdx" $((RT1 + 4)) '\377'; poke "$T/bad.vhdx" $H1 'X'
rm -f "$T/out.raw"
"$VMCONVERT" convert -O raw "$T/bad.vhdx" "$T/out.raw" ||
    fail "one bad region table and header should not stop reading"
qcompare -f raw -F raw "$T/ref.raw" "$T/out.raw"
set +e
"$VMCONVERT" check "$T/bad.vhdx" >"$T/check.out" 2>&1
st=$?
set -e
[ "$st" -eq 2 ] || fail "check exit status $st, expected 2"
grep -q 'region table 1 is invalid' "$T/check.out" || fail "check: table 1"
grep -q 'header 1 is invalid' "$T/check.out" || fail "check: header 1"

# Metadata.
fresh; poke "$T/bad.vhdx" $((MD + 7)) 'X'
bad "metadata signature" "metadata table signature"
fresh; poke "$T/bad.vhdx" $((MD + 10)) '\270\013'
bad "metadata entry count" "metadata table entry count 3000"
fresh; poke "$T/bad.vhdx" $((MD + 10)) '\4'
bad "metadata item missing" "Physical Sector Size is missing"
fresh; poke "$T/bad.vhdx" $((MD + 32 + 32 + 16)) '\0\0\040\0'
bad "metadata item outside its region" \
    "metadata item 2fa54224-.* is not inside the metadata region"
fresh; poke "$T/bad.vhdx" $((MD + 32 + 64)) '\377'
bad "unknown required metadata item" \
    "metadata item beca12ff-b2e6-.* is required"
fresh; poke "$T/bad.vhdx" $ITEMS '\0\0\060\0'
bad "block size 3M" "block size 3145728"
fresh; poke "$T/bad.vhdx" $ITEMS '\0\0\0\040'
bad "block size 512M" "block size 536870912"
fresh; poke "$T/bad.vhdx" $((ITEMS + 4)) '\2'
bad "HasParent" "differencing images are not supported"
fresh; poke "$T/bad.vhdx" $((ITEMS + 8)) '\0\0\0\0\0\0\0\0'
bad "virtual size 0" "virtual disk size 0 "
fresh; poke "$T/bad.vhdx" $((ITEMS + 8)) '\0\0\0\0\0\0\0\020'
bad "virtual size 2^60" "virtual disk size 1152921504606846976"
fresh; poke "$T/bad.vhdx" $((ITEMS + 32)) '\0\4'
bad "logical sector size" "logical sector size 1024"
fresh; poke "$T/bad.vhdx" $((ITEMS + 36)) '\350\3'
bad "physical sector size" "physical sector size 1000"

# BAT entries.
fresh; poke "$T/bad.vhdx" $BAT '\6\0\0\0\372\0\0\0'
bad "BAT entry past EOF" "BAT entry 0 .* past end of file"
fresh; poke "$T/bad.vhdx" $((BAT + 8)) '\6\0\0\0\0\0\0\0'
bad "BAT entry into the header" "BAT entry 1 .* into the file header"
fresh; poke "$T/bad.vhdx" $((BAT + 16)) '\5\0\0\0\0\0\0\0'
bad "BAT entry state" "BAT entry 2 .* invalid state 5"
fresh; poke "$T/bad.vhdx" $((BAT + 24)) '\7\0\0\0\0\0\0\0'
bad "BAT entry PARTIALLY_PRESENT" "BAT entry 3 .* PARTIALLY_PRESENT"

# Two blocks at the same place: check finds the overlap.
fresh
dd if="$T/good.vhdx" of="$T/bad.vhdx" bs=8 count=1 skip=$((BAT / 8)) \
    seek=$((BAT / 8 + 5)) conv=notrunc status=none
set +e
"$VMCONVERT" check "$T/bad.vhdx" >"$T/check.out" 2>&1
st=$?
set -e
[ "$st" -eq 2 ] || fail "check of overlapping blocks: exit status $st"
grep -q 'BAT entry 5 .* overlaps' "$T/check.out" || fail "no overlap found"
echo "PASS"
