#!/bin/sh
# VHDX checkpoint/resume, beyond the common cuts of test-resume.sh: cuts at
# 0, just after the start, inside a block whose rest is zeros in the source
# (garbage left there would show), on a block boundary followed by whole
# zero blocks (twice), and at the last granule boundary; the same cuts with
# a later checkpoint whose state was lost (resume-stale: its BAT entries
# are in the file); a cut at the very end of a disk whose size is a whole
# number of granules; and an interrupted file must not look like a VHDX
# (the identifier and headers are written last).  A sparse disk larger
# than a BAT window (8192 entries) checks that entries flushed into a later
# window after the checkpoint are dropped.
#
# A cut at the very end of a disk whose size is not a whole number of
# granules is not tried: the sink calls that position settled while it
# still holds the partial last granule, so no writer can resume there.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires test -x "$TOOLS/resume-stale"

size=$((24 * 1048576 + 3584))
"$TOOLS/mkdisk" -s 7 -d 80 "$size" "$T/ref.raw"
zeros () {
    dd if=/dev/zero of="$T/ref.raw" bs=4096 seek=$(($1 / 4096)) \
        count=$(($2 / 4096)) conv=notrunc status=none
}
zeros $((3 * 1048576 + 8192)) $((1536 * 1024 - 8192))
zeros $((8 * 1048576)) $((4 * 1048576))
zeros $((13 * 1048576 + 524288)) 524288
"$TOOLS/mkdisk" -s 8 $((5 * 1048576)) "$T/even.raw"
before=$(hash_of "$T/ref.raw")
cuts="0 4K $((3 * 1048576 + 8192)) 8M 8M $((13 * 1048576 + 524288))
      $((size / 4096 * 4096))"

for opts in subformat=dynamic block_size=1M block_size=1M,block_state_zero=on \
            subformat=fixed,block_size=1M; do
    for tool in resume-test resume-stale; do
        rm -f "$T/out.vhdx"
        # shellcheck disable=SC2086 # the cut list is several arguments
        "$TOOLS/$tool" -O vhdx -o "$opts" "$T/ref.raw" "$T/out.vhdx" $cuts \
            2>"$T/err" || { cat "$T/err" >&2; fail "$opts: $tool failed"; }
        [ "$(grep -c 'crashed and resumed' "$T/err")" -ge 7 ] ||
            fail "$opts: $tool: fewer resumes than cuts"
        qemu-img compare -q -f raw -F vhdx "$T/ref.raw" "$T/out.vhdx" ||
            fail "$opts: $tool: resumed image differs from the source"
        qemu-img check -q -f vhdx "$T/out.vhdx" ||
            fail "$opts: $tool: qemu-img check"
        "$VMCONVERT" check "$T/out.vhdx" >/dev/null ||
            fail "$opts: $tool: vmconvert check"
    done
    rm -f "$T/out.vhdx"
    "$TOOLS/resume-test" -O vhdx -o "$opts" "$T/even.raw" "$T/out.vhdx" 3M 5M \
        2>"$T/err" || { cat "$T/err" >&2; fail "$opts: end of even.raw"; }
    qemu-img compare -q -f raw -F vhdx "$T/even.raw" "$T/out.vhdx" ||
        fail "$opts: cut at the end: resumed image differs from the source"
    rm -f "$T/out.vhdx"
    "$TOOLS/resume-stale" -k -O vhdx -o "$opts" "$T/ref.raw" "$T/out.vhdx" 5M \
        2>"$T/err" || { cat "$T/err" >&2; fail "$opts: resume-stale -k"; }
    "$VMCONVERT" info "$T/out.vhdx" | grep -q '^file format: raw$' ||
        fail "$opts: an interrupted file looks like an image"
done
[ "$(hash_of "$T/ref.raw")" = "$before" ] || fail "source modified"

# 1M blocks: BAT window 1 starts near guest 8 GiB.  The checkpoint at 8G
# is followed by garbage in blocks whose entries are in window 1, and the
# lost checkpoint writes them; the real disk has nothing there, so the
# resumed writer never writes window 1: the file must read as zeros there.
big=$((8 * 1073741824 + 16 * 1048576))
truncate -s "$big" "$T/big.raw"
head -c 1048576 "$T/ref.raw" | dd of="$T/big.raw" conv=notrunc status=none
# qemu reads every VHDX block as data, so only the ranges that were ever
# written are compared (raw nodes with an offset over each image).
window () { # DRIVER OFFSET LENGTH FILE
    printf 'json:{"driver":"raw","offset":%s,"size":%s,"file":' "$2" "$3"
    printf '{"driver":"%s","file":{"driver":"file","filename":"%s"}}}' \
        "$1" "$4"
}
for opts in block_size=1M block_size=1M,block_state_zero=on; do
    rm -f "$T/out.vhdx"
    "$TOOLS/resume-stale" -O vhdx -o "$opts" "$T/big.raw" "$T/out.vhdx" \
        1M 8G 2>"$T/err" ||
        { cat "$T/err" >&2; fail "big $opts: resume-stale failed"; }
    qemu-img check -q -f vhdx "$T/out.vhdx" ||
        fail "big $opts: qemu-img check"
    for range in "0 $((16 * 1048576))" \
                 "$((8 * 1073741824 - 1048576)) $((17 * 1048576))"; do
        # shellcheck disable=SC2086 # offset and length
        qemu-img compare -q "$(window raw $range "$T/big.raw")" \
            "$(window vhdx $range "$T/out.vhdx")" ||
            fail "big $opts: resumed image differs from the source at $range"
    done
done
echo "ok"
