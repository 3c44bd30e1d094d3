#!/bin/sh
# vmdk corrupt input: damage one field at a time in good images (made by
# qemu-img and by vmconvert) and in descriptors; vmconvert must exit 1
# with one line on stderr naming vmdk and the field, never crash.  Run it
# with the ASan binary too: VMCONVERT=build/asan/vmconvert.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

"$TOOLS/mkdisk" -s 5 $((4 * 1024 * 1024 - 1536)) "$T/ref.raw"
qemu-img convert -f raw -O vmdk "$T/ref.raw" "$T/good.vmdk"
"$VMCONVERT" convert -O vmdk -o subformat=streamOptimized "$T/ref.raw" \
    "$T/stream.vmdk"

# poke FILE OFFSET BYTE...: overwrite bytes (decimal or 0x..) in place.
poke () {
    _f=$1 _o=$2
    shift 2
    for _b in "$@"; do
        # shellcheck disable=SC2059 # the format is the octal escape
        printf "\\$(printf '%03o' "$_b")"
    done | dd of="$_f" bs=1 seek="$_o" conv=notrunc 2>/dev/null
}

# poke_le FILE OFFSET NBYTES VALUE: a little-endian integer.
poke_le () {
    _f=$1 _o=$2 _n=$3 _v=$4 _i=0 _bytes=""
    while [ $_i -lt "$_n" ]; do
        _bytes="$_bytes $(( (_v >> (8 * _i)) & 255 ))"
        _i=$((_i + 1))
    done
    # shellcheck disable=SC2086 # split the byte list
    poke "$_f" "$_o" $_bytes
}

# peek_le FILE OFFSET NBYTES: a little-endian integer.
peek_le () {
    od -A n -t u1 -j "$2" -N "$3" "$1" |
        awk '{ for (i = 1; i <= NF; i++) b[n++] = $i }
             END { v = 0; for (i = n - 1; i >= 0; i--) v = v * 256 + b[i];
                   printf "%d\n", v }'
}

# bad PATTERN FILE: converting FILE (as vmdk) must fail with PATTERN.
bad () {
    expect_error 1 "vmdk: .*$1" "$VMCONVERT" convert -f vmdk -O raw "$2" \
        "$T/out.raw"
    [ ! -e "$T/out.raw" ] || fail "$1: partial output left behind"
}

# damage NAME PATTERN OFFSET NBYTES VALUE [FILE]: on a copy of good.vmdk.
damage () {
    _src=${6:-$T/good.vmdk}
    cp "$_src" "$T/bad.vmdk"
    poke_le "$T/bad.vmdk" "$3" "$4" "$5"
    bad "$2" "$T/bad.vmdk"
}

damage magic "KDMV magic" 0 4 0x11223344
damage version "version 9 " 4 4 9
damage flags "flags 0x.* unknown incompatible" 8 4 0x00800003
damage capacity "capacity" 12 8 0x1000000000000000
damage grainSize "grainSize 3 " 20 8 3
damage grainSize0 "grainSize 0 " 20 8 0
damage grainSizeHuge "grainSize" 20 8 0x100000
damage descriptorSize "descriptorSize" 36 8 0x100000
damage numGTEsPerGT "numGTEsPerGT 1024" 44 4 1024
damage gdOffset "gdOffset" 56 8 0xffffff00
damage gdOffsetHuge "gdOffset" 56 8 0x7fffffffffffffff
damage newline "newline detection" 73 1 0x0d
damage compressAlgorithm "compressAlgorithm 7" 77 2 7

# A grain directory entry and a grain table entry past the end of file.
gd=$(peek_le "$T/good.vmdk" 56 8)
gt=$(peek_le "$T/good.vmdk" $((gd * 512)) 4)
damage gd-entry "grain directory entry 0 points past the end" \
    $((gd * 512)) 4 0x7fffff00
damage gt-entry "grain table 0 entry 0 points past the end" \
    $((gt * 512)) 4 0x7fffff00
# vmconvert check: GT entry 1 made a copy of entry 0 is two entries on one
# grain, and the grain table no longer matches its redundant copy.
cp "$T/good.vmdk" "$T/bad.vmdk"
e0=$(peek_le "$T/bad.vmdk" $((gt * 512)) 4)
poke_le "$T/bad.vmdk" $((gt * 512 + 4)) 4 "$e0"
set +e
"$VMCONVERT" check "$T/bad.vmdk" >"$T/check.out" 2>&1
st=$?
set -e
[ $st -eq 2 ] || fail "check of a damaged grain table: exit $st"
grep -q "redundant copy differ at entry 1" "$T/check.out" ||
    fail "check: no GT diff"
grep -q "two grain table entries point to overlapping grains" "$T/check.out" ||
    fail "check: no overlap"
qemu-img check "$T/good.vmdk" >/dev/null || fail "good.vmdk damaged"

# streamOptimized: the first grain marker's LBA and size, the footer.
damage grain-lba "grain marker at sector 128 has LBA 256" 65536 8 256 \
    "$T/stream.vmdk"
damage grain-size "grain marker at sector 128 has size" 65544 4 0x7fffffff \
    "$T/stream.vmdk"
end=$(stat -c %s "$T/stream.vmdk")
damage footer "footer marker" $((end - 1536 + 12)) 4 7 "$T/stream.vmdk"
damage footer-eos "end-of-stream marker" $((end - 512 + 12)) 4 2 \
    "$T/stream.vmdk"
damage footer-gd "footer gdOffset" $((end - 1024 + 56)) 8 0xffffff00 \
    "$T/stream.vmdk"
cp "$T/stream.vmdk" "$T/bad.vmdk"
dd if=/dev/urandom of="$T/bad.vmdk" bs=1 seek=$((65536 + 14)) count=64 \
    conv=notrunc 2>/dev/null
bad "compressed grain at sector 128 has corrupt deflate data" \
    "$T/bad.vmdk"

# Descriptors.
desc () {
    {
        echo '# Disk DescriptorFile'
        echo 'version=1'
        echo 'CID=12345678'
        echo 'parentCID=ffffffff'
        echo "createType=\"$1\""
        shift
        for l in "$@"; do
            echo "$l"
        done
    } >"$T/d.vmdk"
}
truncate -s 1M "$T/d-flat.vmdk"
desc monolithicFlat 'RW 2048 FLAT "d-flat.vmdk" 0'
"$VMCONVERT" convert -O raw "$T/d.vmdk" "$T/ok.raw" || fail "good descriptor"
desc monolithicFlat 'RW 2048 FLAT "missing-flat.vmdk" 0'
bad "extent 1: .*missing-flat.vmdk" "$T/d.vmdk"
desc monolithicFlat 'RW 99999999999999999999 FLAT "d-flat.vmdk" 0'
bad "extent sector count" "$T/d.vmdk"
desc monolithicFlat 'RW 100000000000000 ZERO' 'RW 100000000000000 ZERO'
bad "extents add up to more than" "$T/d.vmdk"
desc monolithicFlat 'RW 4096 FLAT "d-flat.vmdk" 0'
bad "flat extent .* the descriptor needs" "$T/d.vmdk"
desc monolithicFlat 'RW 2048 FLAT "d-flat.vmdk" 18446744073709551615'
bad "extent offset" "$T/d.vmdk"
desc monolithicFlat 'RW 2048 FLAT d-flat.vmdk 0'
bad "double quotes" "$T/d.vmdk"
desc vmfs 'RW 2048 SESPARSE "d-flat.vmdk"'
bad "extent type \"SESPARSE\"" "$T/d.vmdk"
desc fullDevice 'RW 2048 FLAT "d-flat.vmdk" 0'
bad "createType \"fullDevice\" is not supported" "$T/d.vmdk"
desc monolithicFlat
bad "no extents" "$T/d.vmdk"
desc twoGbMaxExtentSparse 'RW 2048 SPARSE "d-flat.vmdk"'
bad "d-flat.vmdk: header magic" "$T/d.vmdk"
desc twoGbMaxExtentSparse "RW 99999999 SPARSE \"good.vmdk\""
bad "extent .* sectors but its capacity" "$T/d.vmdk"
# Too many extents, and a descriptor over the 1 MiB cap.
{
    echo '# Disk DescriptorFile'
    echo 'createType="monolithicFlat"'
    i=0
    while [ $i -lt 4100 ]; do
        echo 'RW 1 FLAT "d-flat.vmdk" 0'
        i=$((i + 1))
    done
} >"$T/d.vmdk"
bad "more than 4096 extents" "$T/d.vmdk"
{
    echo '# Disk DescriptorFile'
    echo 'createType="monolithicFlat"'
    head -c 1100000 /dev/zero | tr '\0' '#'
    echo
} >"$T/d.vmdk"
bad "descriptor file of [0-9]* bytes is too large" \
    "$T/d.vmdk"
# A delta disk whose parent is missing, and one without a hint.
desc monolithicFlat 'RW 2048 FLAT "d-flat.vmdk" 0' \
    'parentFileNameHint="nope.vmdk"'
sed -i 's/parentCID=ffffffff/parentCID=01020304/' "$T/d.vmdk"
expect_error 1 "cannot open backing file" "$VMCONVERT" convert -O raw \
    "$T/d.vmdk" "$T/out.raw"
desc monolithicFlat 'RW 2048 FLAT "d-flat.vmdk" 0'
sed -i 's/parentCID=ffffffff/parentCID=01020304/' "$T/d.vmdk"
bad "parentFileNameHint" "$T/d.vmdk"
# A delta disk whose parent changed after the delta was made (CID).
qemu-img create -q -f vmdk -b good.vmdk -F vmdk "$T/delta.vmdk"
"$VMCONVERT" convert -O raw "$T/delta.vmdk" "$T/ok2.raw" || fail "delta"
at=$(grep -boa '^CID=' "$T/good.vmdk" | head -n 1 | cut -d: -f1)
# qemu writes the CID without leading zeros: replace it by another hex
# number of the same length, so the descriptor keeps its layout.
cid=$(grep -ao '^CID=[0-9a-f]*' "$T/good.vmdk" | head -n 1 | cut -d= -f2)
newcid=$(printf '%s' "$cid" | tr '0-9a-f' '123456789abcdef1')
printf '%s' "$newcid" | dd of="$T/good.vmdk" bs=1 seek=$((at + 4)) \
    conv=notrunc 2>/dev/null
# The message prints the CID with 8 digits: a shorter one gets leading
# zeros there.
bad "parentCID [0-9a-f]* does not match the CID 0*$newcid" "$T/delta.vmdk"
# ESX sparse (COWD): damaged version, granularity, root offset; a delta
# extent opened without its descriptor.
"$TOOLS/mk-vmdk-tiny" "$T"
damage cowd-version "COWD version 7 " 4 4 7 "$T/cowd.vmdk"
damage cowd-gran "COWD granularity 3 " 16 4 3 "$T/cowd.vmdk"
damage cowd-root "COWD rootOffset" 20 4 0x7fffffff "$T/cowd.vmdk"
damage cowd-roots "numRootEntries 0 is too small" 24 4 0 "$T/cowd.vmdk"
damage cowd-leaf "grain directory entry 0 points past the end" 2048 4 \
    0x7fffff00 "$T/cowd.vmdk"
bad "delta disk: open its descriptor" "$T/cowd-delta.vmdk"
echo "vmdk corrupt: ok"
