#!/bin/sh
# Linux swap: only the header page is in use; label and UUID as blkid
# reads them; a swap area holding a hibernation image is all in use;
# unknown content is all in use.
. "$(dirname "$0")/../functions.sh"
requires mkswap --version
requires blkid -V

truncate -s 64M "$T/swap.raw"
# Garbage first: the header is the only thing mkswap writes.
"$TOOLS/mkdisk" -s 3 -d 100 64M "$T/swap.raw"
mkswap -L swaplabel "$T/swap.raw" >/dev/null 2>&1 || fail "mkswap"
"$TOOLS/fsused" "$T/swap.raw" >"$T/out" || fail "fsused"
grep -qx 'type swap' "$T/out" || fail "not recognised as swap"
grep -qx 'all_used 0' "$T/out" || fail "swap counted all used"
[ "$(grep '^range' "$T/out")" = "range 0 4096" ] || fail "used ranges: $(cat "$T/out")"
[ "$(sed -n 's/^label //p' "$T/out")" = "$(blkid -o value -s LABEL "$T/swap.raw")" ] ||
    fail "label differs from blkid's"
[ "$(sed -n 's/^uuid //p' "$T/out")" = "$(blkid -o value -s UUID "$T/swap.raw")" ] ||
    fail "uuid differs from blkid's"

# A hibernation image: the kernel replaces the signature.
printf 'S1SUSPEND\0' | dd of="$T/swap.raw" bs=1 seek=4086 conv=notrunc status=none
"$TOOLS/fsused" "$T/swap.raw" >"$T/out" || fail "fsused"
grep -qx 'all_used 1' "$T/out" || fail "hibernation image not all in use"
grep -q '^why .*hibernation' "$T/out" || fail "no reason given"

# Random data: unknown, all in use.
"$TOOLS/mkdisk" -s 4 -d 100 1M "$T/junk.raw"
"$TOOLS/fsused" "$T/junk.raw" >"$T/out" || fail "fsused"
grep -qx 'type unknown' "$T/out" && grep -qx 'all_used 1' "$T/out" ||
    fail "unknown data not all in use"
echo ok
