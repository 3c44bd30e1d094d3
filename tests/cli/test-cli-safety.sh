#!/bin/sh
# The source is never written: converting onto the source (or onto a file
# its chain uses) is refused, a failed conversion leaves no partial output,
# and errors are one line with exit status 1.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version

"$TOOLS/mkdisk" -s 3 -d 90 16M "$T/src.raw"
before=$(hash_of "$T/src.raw")

expect_error 1 "is a file of the source" "$VMCONVERT" convert -O raw "$T/src.raw" "$T/src.raw"
ln "$T/src.raw" "$T/hardlink.raw"
expect_error 1 "is a file of the source" "$VMCONVERT" convert -O raw "$T/src.raw" "$T/hardlink.raw"
ln -s "$T/src.raw" "$T/symlink.raw"
expect_error 1 "is a file of the source" "$VMCONVERT" convert -O raw "$T/src.raw" "$T/symlink.raw"
[ "$(hash_of "$T/src.raw")" = "$before" ] || fail "source modified"

expect_error 1 "nonexistent" "$VMCONVERT" convert -O raw "$T/nonexistent" "$T/x.raw"
expect_error 1 "No such file" "$VMCONVERT" convert -O raw "$T/src.raw" "$T/no/dir/x.raw"
expect_error 1 "unknown image format" "$VMCONVERT" convert -O bogus "$T/src.raw" "$T/x"
expect_error 1 "unknown creation option \"bogus\"" "$VMCONVERT" convert -O raw -o bogus=1 "$T/src.raw" "$T/x"
expect_error 1 "expected key=value" "$VMCONVERT" convert -O raw -o bogus "$T/src.raw" "$T/x"
expect_error 1 "not a regular file or block device" "$VMCONVERT" info "$T"
[ ! -e "$T/x" ] || fail "a refused conversion left an output file"

# A destination filesystem that fills up: one clear line, exit 1, and the
# partial output is removed.
if [ "$(id -u)" -eq 0 ]; then
    mkdir "$T/small"
    mount -t tmpfs -o size=2m tmpfs "$T/small"
    cleanup_fn umount "$T/small"
    expect_error 1 "No space left on device" \
        "$VMCONVERT" convert -O raw "$T/src.raw" "$T/small/out.raw"
    [ ! -e "$T/small/out.raw" ] || fail "partial output left behind"
fi
[ "$(hash_of "$T/src.raw")" = "$before" ] || fail "source modified"
exit 0
