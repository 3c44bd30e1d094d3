#!/bin/sh
# VHD reading, judged by qemu-img: dynamic and fixed images made by
# qemu-img (with and without force_size), the old 511-byte footer, the
# virtual size chosen per creator application, and differencing disks
# built by mk-vhd-diff (qemu-img cannot make them) with every kind of
# parent locator.  Sources are never modified.
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

# fix_csum FILE START LEN CSUM_AT: recompute a VHD checksum (one's
# complement of the byte sum, the field itself counted as zero).
fix_csum () {
    _sum=$(od -An -tu1 -v -j "$2" -N "$3" "$1" | awk -v at="$4" '
        { for (i = 1; i <= NF; i++) { if (n < at || n >= at + 4) s += $i; n++ } }
        END { printf "%.0f", 4294967295 - s }')
    put_be 4 "$1" $(($2 + $4)) "$_sum"
}

vsize_qemu () {
    qemu-img info --output=json -f vpc "$1" |
        sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

vsize_ours () {
    "$VMCONVERT" info --json "$1" |
        sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p' | head -n 1
}

# read_ok IMG REF: convert IMG to raw; the output must match IMG as qemu
# reads it and the reference; IMG must not change.
read_ok () {
    _before=$(hash_of "$1")
    rm -f "$T/out.raw"
    "$VMCONVERT" convert -O raw "$1" "$T/out.raw" ||
        fail "convert $1"
    [ "$(hash_of "$1")" = "$_before" ] || fail "$1 was modified"
    qcompare -f vpc -F raw "$1" "$T/out.raw"
    qcompare -f raw -F raw "$2" "$T/out.raw"
    [ "$(vsize_ours "$1")" = "$(vsize_qemu "$1")" ] ||
        fail "$1: virtual size $(vsize_ours "$1"), qemu-img says $(vsize_qemu "$1")"
}

# 37 MiB + 3 sectors: not a multiple of the 2 MiB block, nor of a CHS
# geometry.
size=$((37 * 1048576 + 1536))
"$TOOLS/mkdisk" -s 11 "$size" "$T/ref.raw"

for opts in subformat=dynamic subformat=fixed \
            subformat=dynamic,force_size=on subformat=fixed,force_size=on; do
    qemu-img convert -f raw -O vpc -o "$opts" "$T/ref.raw" "$T/q.vhd"
    read_ok "$T/q.vhd" "$T/ref.raw"
    "$VMCONVERT" info "$T/q.vhd" | grep -q '^file format: vhd$' ||
        fail "$opts: not probed as vhd"
    "$VMCONVERT" check "$T/q.vhd" >/dev/null || fail "$opts: check failed"
    cp "$T/q.vhd" "$T/q-$(echo "$opts" | tr ',=' '__').vhd"
done
fixed=$T/q-subformat_fixed_force_size_on.vhd
dynamic=$T/q-subformat_dynamic.vhd

# The alias, and a fixed disk named by format.
rm -f "$T/out.raw"
"$VMCONVERT" convert -f vpc -O raw "$fixed" "$T/out.raw"
qcompare -f raw -F raw "$T/ref.raw" "$T/out.raw"

# Virtual PC 2004's 511-byte footer: the same footer minus its last
# (reserved, zero) byte.  qemu cannot read it; judge against the raw.
cp "$fixed" "$T/old.vhd"
truncate -s -1 "$T/old.vhd"
rm -f "$T/out.raw"
"$VMCONVERT" convert -O raw "$T/old.vhd" "$T/out.raw"
qcompare -f raw -F raw "$T/ref.raw" "$T/out.raw"

# The virtual size per creator application.  A fixed disk with a data area
# of $size bytes, current size $size, and a smaller geometry (1000/4/17 =
# 34816000 bytes).  The creators qemu-img knows must give qemu's size;
# VirtualBox and Azure disks use the current size (qemu 7.2 cuts them to
# the geometry, losing the end of the disk).
f=$((size))     # footer offset in $fixed
for app in 'win ' 'qem2' 'd2v ' 'CTXS' 'tap\000' 'vpc ' 'vs  ' 'qemu' \
           'vbox' 'wa\000\000'; do
    cp "$fixed" "$T/c.vhd"
    # shellcheck disable=SC2059
    printf "$app" | dd of="$T/c.vhd" bs=1 seek=$((f + 28)) conv=notrunc \
        status=none
    put_be 2 "$T/c.vhd" $((f + 56)) 1000
    put_be 1 "$T/c.vhd" $((f + 58)) 4
    put_be 1 "$T/c.vhd" $((f + 59)) 17
    fix_csum "$T/c.vhd" "$f" 512 64
    case "$app" in
    'vpc '|'vs  '|qemu) want=34816000 ;;
    *) want=$size ;;
    esac
    got=$(vsize_ours "$T/c.vhd")
    [ "$got" = "$want" ] || fail "creator '$app': size $got, expected $want"
    case "$app" in
    vbox|wa*)
        rm -f "$T/out.raw"
        "$VMCONVERT" convert -O raw "$T/c.vhd" "$T/out.raw"
        qcompare -f raw -F raw "$T/ref.raw" "$T/out.raw"
        ;;
    *)
        [ "$got" = "$(vsize_qemu "$T/c.vhd")" ] ||
            fail "creator '$app': qemu-img says $(vsize_qemu "$T/c.vhd")"
        rm -f "$T/out.raw"
        "$VMCONVERT" convert -O raw "$T/c.vhd" "$T/out.raw"
        qcompare -f vpc -F raw "$T/c.vhd" "$T/out.raw"
        ;;
    esac
done

# Differencing disks.  MERGED is the child over its parent; QEMU is what
# qemu reads (it opens the child as a dynamic disk without parent), which
# checks the child's structure with qemu-img.
mkdir "$T/d"
cp "$dynamic" "$T/d/parent.vhd"
qemu-img convert -f vpc -O raw "$T/d/parent.vhd" "$T/d/parent.raw"
diff_ok () {
    # diff_ok MK-VHD-DIFF-OPTIONS...
    rm -f "$T/d/child.vhd"
    "$TOOLS/mk-vhd-diff" "$@" "$T/d/parent.vhd" "$T/d/parent.raw" \
        "$T/d/child.vhd" "$T/d/merged.raw" "$T/d/qemu.raw"
    qcompare -f vpc -F raw "$T/d/child.vhd" "$T/d/qemu.raw"
    _before=$(hash_of "$T/d/child.vhd" "$T/d/parent.vhd")
    rm -f "$T/out.raw"
    "$VMCONVERT" convert -O raw "$T/d/child.vhd" "$T/out.raw" ||
        fail "convert differencing disk ($*)"
    [ "$(hash_of "$T/d/child.vhd" "$T/d/parent.vhd")" = "$_before" ] ||
        fail "the chain was modified"
    qcompare -f raw -F raw "$T/d/merged.raw" "$T/out.raw"
    "$VMCONVERT" check "$T/d/child.vhd" >/dev/null ||
        fail "check of differencing disk ($*)"
}
diff_ok -s 1
"$VMCONVERT" info "$T/d/child.vhd" >"$T/info"
grep -q '^subformat: differencing$' "$T/info" || fail "no differencing"
grep -q '^backing file: \./parent\.vhd' "$T/info" || fail "relative locator"
diff_ok -s 2 -b 64K
diff_ok -s 3 -l kn          # absolute Windows path missing: parent name
diff_ok -s 4 -l x           # MacX file URL
diff_ok -s 5 -l i           # Wi2r
diff_ok -s 6 -l n           # only the parent unicode name

# A fixed parent (probed by its footer at the end).
cp "$fixed" "$T/d/parent.vhd"
qemu-img convert -f vpc -O raw "$T/d/parent.vhd" "$T/d/parent.raw"
diff_ok -s 7

# Wrong parent: unique ids differ, or the parent is gone.
"$TOOLS/mk-vhd-diff" -u "$T/d/parent.vhd" "$T/d/parent.raw" \
    "$T/d/child.vhd" "$T/d/merged.raw" "$T/d/qemu.raw"
expect_error 1 'vhd: parent .* unique id' \
    "$VMCONVERT" convert -O raw "$T/d/child.vhd" "$T/out2.raw"
"$TOOLS/mk-vhd-diff" "$T/d/parent.vhd" "$T/d/parent.raw" \
    "$T/d/child.vhd" "$T/d/merged.raw" "$T/d/qemu.raw"
mv "$T/d/parent.vhd" "$T/d/gone.vhd"
expect_error 1 'cannot open backing file' \
    "$VMCONVERT" convert -O raw "$T/d/child.vhd" "$T/out2.raw"
[ ! -e "$T/out2.raw" ] || fail "failed conversion left its output"
exit 0
