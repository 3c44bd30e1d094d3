#!/bin/sh
# Make the seed corpus of fuzz-ntfs (tests/fuzz/corpus/ntfs/): small mkntfs
# volumes, a few files written through ntfs-3g, packed in fuzz-ntfs.c's
# sparse form.  $UpCase (128 KiB that the parser never reads) is left out
# to keep the seeds small.  Needs root (FUSE), mkntfs, ntfs-3g.
set -eu
out=$(cd "$(dirname "$0")" && pwd)/corpus/ntfs
w=$(mktemp -d "${TMPDIR:-/tmp}/ntfs-seeds.XXXXXX")
trap 'mountpoint -q "$w/m" && umount "$w/m"; rm -rf "$w"' EXIT
mkdir -p "$out" "$w/m"

pack () {   # IMG OUT
    /usr/bin/python3 - "$1" "$2" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
bps = struct.unpack_from("<H", d, 0x0B)[0]
cluster = bps * d[0x0D]
mft = struct.unpack_from("<Q", d, 0x30)[0] * cluster
cpm = struct.unpack_from("<b", d, 0x40)[0]
rec = cpm * cluster if cpm > 0 else 1 << -cpm
r = bytearray(d[mft + 10 * rec:mft + 11 * rec])      # $UpCase
uo, uc = struct.unpack_from("<HH", r, 4)
for i in range(1, uc):
    r[i * 512 - 2:i * 512] = r[uo + 2 * i:uo + 2 * i + 2]
off = struct.unpack_from("<H", r, 0x14)[0]
while struct.unpack_from("<I", r, off)[0] != 0x80:
    off += struct.unpack_from("<I", r, off + 4)[0]
mp = off + struct.unpack_from("<H", r, off + 0x20)[0]
h = r[mp]
ls, os_ = h & 15, h >> 4
length = int.from_bytes(r[mp + 1:mp + 1 + ls], "little")
lcn = int.from_bytes(r[mp + 1 + ls:mp + 1 + ls + os_], "little")
d[lcn * cluster:(lcn + length) * cluster] = bytes(length * cluster)
nsec = len(d) // 512
ext, data = [], b""
s = 0
def kind(i):
    b = d[i * 512:(i + 1) * 512]
    return 0 if b.count(0) == 512 else 1 if b.count(255) == 512 else 2
while s < nsec:
    k = kind(s)
    e = s + 1
    while e < nsec and kind(e) == k and e - s < 0x7fff:
        e += 1
    if k == 1:
        ext.append((s, (e - s) | 0x8000))
    elif k == 2:
        ext.append((s, e - s))
        data += d[s * 512:e * 512]
    s = e
o = struct.pack("<HH", nsec, len(ext))
for a, b in ext:
    o += struct.pack("<HH", a, b)
open(sys.argv[2], "wb").write(o + data)
PY
}

truncate -s 2M "$w/a.raw"
mkntfs -F -f -Q -q -c 512 -L seed "$w/a.raw" >/dev/null 2>&1
pack "$w/a.raw" "$out/empty-c512"

truncate -s 3M "$w/b.raw"
mkntfs -F -f -Q -q -c 4096 "$w/b.raw" >/dev/null 2>&1
ntfs-3g "$w/b.raw" "$w/m"
mkdir "$w/m/dir"
i=0
while [ $i -lt 60 ]; do
    printf 'file %d\n' $i >"$w/m/root-file-with-a-long-name-$i"
    i=$((i + 1))
done
head -c 20000 /dev/zero | tr '\0' x >"$w/m/dir/big"
printf 'wake' >"$w/m/hiberfil.sys"
umount "$w/m"
pack "$w/b.raw" "$out/files-c4096"
ls -l "$out"
