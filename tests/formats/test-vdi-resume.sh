#!/bin/sh
# VDI checkpoint/resume, beyond the common cuts of test-resume.sh: cuts at
# 0, just after the start, inside a block whose rest is zeros in the source
# (garbage left there would show), on a block boundary followed by whole
# zero blocks (twice), and at the last granule boundary; the same cuts with
# a later checkpoint whose state was lost (resume-stale: its block map entries
# are in the file); a cut at the very end of a disk whose size is a whole
# number of granules; and an interrupted file must not look like a VDI.
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

for opts in static=off static=on; do
    for tool in resume-test resume-stale; do
        rm -f "$T/out.vdi"
        # shellcheck disable=SC2086 # the cut list is several arguments
        "$TOOLS/$tool" -O vdi -o "$opts" "$T/ref.raw" "$T/out.vdi" $cuts \
            2>"$T/err" || { cat "$T/err" >&2; fail "$opts: $tool failed"; }
        [ "$(grep -c 'crashed and resumed' "$T/err")" -ge 7 ] ||
            fail "$opts: $tool: fewer resumes than cuts"
        qemu-img compare -q -f raw -F vdi "$T/ref.raw" "$T/out.vdi" ||
            fail "$opts: $tool: resumed image differs from the source"
        qemu-img check -q -f vdi "$T/out.vdi" ||
            fail "$opts: $tool: qemu-img check"
        "$VMCONVERT" check "$T/out.vdi" >/dev/null ||
            fail "$opts: $tool: vmconvert check"
    done
    rm -f "$T/out.vdi"
    "$TOOLS/resume-test" -O vdi -o "$opts" "$T/even.raw" "$T/out.vdi" 3M 5M \
        2>"$T/err" || { cat "$T/err" >&2; fail "$opts: end of even.raw"; }
    qemu-img compare -q -f raw -F vdi "$T/even.raw" "$T/out.vdi" ||
        fail "$opts: cut at the end: resumed image differs from the source"
    rm -f "$T/out.vdi"
    "$TOOLS/resume-stale" -k -O vdi -o "$opts" "$T/ref.raw" "$T/out.vdi" 5M \
        2>"$T/err" || { cat "$T/err" >&2; fail "$opts: resume-stale -k"; }
    "$VMCONVERT" info "$T/out.vdi" | grep -q '^file format: raw$' ||
        fail "$opts: an interrupted file looks like an image"
done
[ "$(hash_of "$T/ref.raw")" = "$before" ] || fail "source modified"
echo "ok"
