#!/bin/sh
# Make the seed corpus of fuzz-initrd (tests/fuzz/corpus/initrd/): a few
# tiny initramfs files of the shapes guests have -- a plain newc cpio, the
# same compressed with gzip, zstd and xz (crc32, as the kernel wants), an
# early uncompressed microcode cpio followed by a gzip'ed main one (as
# Debian and dracut write them), and two compressed archives with zero
# padding between.  Needs cpio, gzip, zstd, xz.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$here/corpus/initrd
w=$(mktemp -d "${TMPDIR:-/tmp}/initrd-seeds.XXXXXX")
trap 'rm -rf "$w"' EXIT
mkdir -p "$out" "$w/main/usr/lib/modules/6.1.0/kernel/drivers/block" \
    "$w/early/kernel/x86/microcode"
printf 'm\n' >"$w/main/usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko"
printf '#!/bin/sh\n' >"$w/main/init"
ln -s init "$w/main/linuxrc"
printf 'u\n' >"$w/early/kernel/x86/microcode/GenuineIntel.bin"
# Fixed times, so that the seeds are the same bytes on every run.
find "$w" -exec touch -h -d @1700000000 {} +
arc () { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible); }
arc "$w/main" >"$out/plain"
gzip -n -9 <"$out/plain" >"$out/gzip"
# Small windows (zstd knows the size from the file; xz is told), so that
# each run of the target does not allocate the default 8 MiB dictionary.
zstd -q -19 -f "$out/plain" -o "$out/zstd"
xz --check=crc32 --lzma2=preset=6,dict=4KiB <"$out/plain" >"$out/xz"
{ arc "$w/early"; cat "$out/gzip"; } >"$out/early-gzip"
{ cat "$out/zstd"; head -c 512 /dev/zero; cat "$out/xz"; } >"$out/zstd-pad-xz"
ls -l "$out"
