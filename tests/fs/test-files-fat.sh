#!/bin/sh
# Reading files from FAT12, FAT16 and FAT32 without mounting
# (converter/fs/fs-fat-files.c), judged against the directory the
# filesystems are filled from (mtools' mcopy -s), listed and hashed by
# find and sha256sum on the host:
#   - every entry, its kind, size and content hash agree, on FAT12, FAT16,
#     FAT32 and a FAT32 ESP inside a GPT disk: long names (mixed case,
#     spaces, UTF-8, 200 characters), 8.3 names lowercased by the NT flags
#     (checked in the raw entry), deep directories, a directory of many
#     clusters, files of several clusters and of exact cluster sizes, a
#     fragmented file (written into the gaps that deletions left);
#   - names are found ignoring case and by their 8.3 alias (as mdir
#     shows it);
#   - a looping cluster chain, and one that runs into a free cluster, are
#     errors (fast, not hangs).
. "$(dirname "$0")/../functions.sh"
requires mkfs.fat --help
requires mcopy --version
requires mdir --version
requires sfdisk --version
requires timeout --version
requires /usr/bin/python3 --version
FSREAD=$TOOLS/fsread
[ -x "$FSREAD" ] || fail "$FSREAD not built"
MTOOLS_SKIP_CHECK=1
export MTOOLS_SKIP_CHECK

src=$T/src
mkdir -p "$src/EFI/debian" "$src/Deep/a/b/c/d/e/f/g" "$src/many" \
    "$src/Mixed Case Dir"
echo 'set root=(hd0,gpt2)' >"$src/EFI/debian/grub.cfg"
head -c 300000 /dev/urandom >"$src/EFI/debian/grubx64.efi"
echo lower >"$src/lower.txt"
echo upper >"$src/UPPER.TXT"
echo mixed >"$src/MixedCase.Txt"
echo "ext only" >"$src/NAME.txt"
echo spaces >"$src/Mixed Case Dir/a file with spaces.conf"
echo unicode >"$src/café-ünïcode-名前.txt"
long=$(printf 'L%.0s' $(seq 1 190))
echo "long name" >"$src/Deep/$long.txt"
echo deep >"$src/Deep/a/b/c/d/e/f/g/deep.txt"
: >"$src/empty"
for n in 511 512 2048 4096 4097 65536; do
    head -c "$n" /dev/urandom >"$src/size-$n"
done
i=0
while [ "$i" -lt 300 ]; do
    echo "$i" >"$src/many/entry number $i.txt"
    i=$((i + 1))
done
# Filled in after the deletions, so that its chain has gaps.
head -c 700000 /dev/urandom >"$T/frag"

# expected DIR: "KIND SIZE HASH PATH" lines, sorted (FAT keeps no modes).
expected () {
    (cd "$1" && find . -type f -exec sha256sum {} + ) >"$T/hashes"
    (cd "$1" && find . -mindepth 1 -printf '%y\t%s\t%P\n') |
        awk -F '\t' -v hashes="$T/hashes" '
            BEGIN {
                while ((getline l < hashes) > 0)
                    hash[substr (l, 69)] = substr (l, 1, 64)
            }
            {
                s = $1 == "d" ? "-" : $2
                h = $1 == "f" ? hash[$3] : "-"
                print $1 " " s " " h " " $3
            }' | LC_ALL=C sort
}

# mkfat NAME SIZE-KIB MKFS-ARGS...: an image filled from the source, with
# a fragmented file.
mkfat () {
    name=$1 kib=$2
    shift 2
    img=$T/$name.img
    rm -f "$img"
    mkfs.fat -C "$@" "$img" "$kib" >/dev/null 2>&1 ||
        fail "$name: mkfs.fat $*"
    fill "$img" || fail "$name: filling it"
}

fill () {
    i=0
    while [ "$i" -lt 40 ]; do
        head -c 3000 /dev/zero >"$T/gap$i"
        mcopy -i "$1" "$T/gap$i" ::/ || return 1
        i=$((i + 1))
    done
    LC_ALL=C.UTF-8 mcopy -s -i "$1" "$src"/* ::/ || return 1
    i=0
    while [ "$i" -lt 40 ]; do
        mdel -i "$1" "::/gap$i" || return 1
        i=$((i + 2))
    done
    fatpy nohint "$1" 0 - || return 1
    mcopy -i "$1" "$T/frag" ::/Deep/fragmented.bin || return 1
    i=1
    while [ "$i" -lt 40 ]; do
        mdel -i "$1" "::/gap$i" || return 1
        i=$((i + 2))
    done
}

cp "$T/frag" "$src/Deep/fragmented.bin"
expected "$src" >"$T/expected"
rm "$src/Deep/fragmented.bin"
[ "$(wc -l <"$T/expected")" -gt 320 ] || fail "the source listing is short"

# fatpy OP IMG OFFSET PATH: the FAT at OFFSET of IMG read (and written)
# by this script from the spec (fatgen103), independently of the reader
# under test; PATH in 8.3 names.  OP: chain (print the FAT type and the
# number of runs in PATH's chain), ntflags (print its byte 12), loop
# (make its chain go back to its first cluster after three), free (free
# its second cluster, leaving the chain pointing at it), nohint (forget
# FAT32's next-free hint, so that mtools fills gaps first).
fatpy () {
    /usr/bin/python3 - "$@" <<'EOF'
import struct, sys
op, img, off = sys.argv[1], sys.argv[2], int(sys.argv[3])
f = open(img, "r+b")
def rd(o, n):
    f.seek(off + o); return f.read(n)
b = rd(0, 512)
bps, spc, rsvd, nfats, rootents, tot16, media, fat16 = \
    struct.unpack_from("<HBHBHHBH", b, 11)
tot = tot16 or struct.unpack_from("<I", b, 32)[0]
fatsz = fat16 or struct.unpack_from("<I", b, 36)[0]
rootsecs = (rootents * 32 + bps - 1) // bps
data = (rsvd + nfats * fatsz + rootsecs) * bps
clusters = (tot - rsvd - nfats * fatsz - rootsecs) // spc
bits = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
csize = spc * bps
def fat_get(c):
    o = rsvd * bps
    if bits == 12:
        w = struct.unpack("<H", rd(o + c + c // 2, 2))[0]
        return w >> 4 if c & 1 else w & 0xFFF
    if bits == 16:
        return struct.unpack("<H", rd(o + 2 * c, 2))[0]
    return struct.unpack("<I", rd(o + 4 * c, 4))[0] & 0x0FFFFFFF
def fat_set(c, v):
    for k in range(nfats):
        o = (rsvd + k * fatsz) * bps
        if bits == 12:
            p = o + c + c // 2
            w = struct.unpack("<H", rd(p, 2))[0]
            w = (w & 0x000F) | (v << 4) if c & 1 else (w & 0xF000) | v
            f.seek(off + p); f.write(struct.pack("<H", w))
        elif bits == 16:
            f.seek(off + o + 2 * c); f.write(struct.pack("<H", v))
        else:
            f.seek(off + o + 4 * c); f.write(struct.pack("<I", v))
def entries(first):
    if first == 0:
        yield from (rd((rsvd + nfats * fatsz) * bps + 32 * i, 32)
                    for i in range(rootents))
        return
    c = first
    while c < 0x0FFFFFF8 and (bits != 12 or c < 0xFF8) and \
            (bits != 16 or c < 0xFFF8):
        for i in range(csize // 32):
            yield rd(data + (c - 2) * csize + 32 * i, 32)
        c = fat_get(c)
def find(dirclus, name):
    for e in entries(dirclus):
        if e[0] == 0:
            break
        if e[0] == 0xE5 or e[11] & 0x0F == 0x0F:
            continue
        n = e[0:8].rstrip(b" ") + (b"." + e[8:11].rstrip(b" ")
                                   if e[8:11].strip() else b"")
        if n.decode("latin-1") == name:
            return e
    sys.exit("no " + name)
if op == "nohint":
    # FSI_Nxt_Free unknown: allocation starts from the first cluster.
    if bits == 32:
        f.seek(off + struct.unpack_from("<H", b, 48)[0] * bps + 492)
        f.write(struct.pack("<I", 0xFFFFFFFF))
    sys.exit(0)
root = 0 if bits != 32 else struct.unpack_from("<I", b, 44)[0]
e = None
for comp in sys.argv[4].split("/"):
    e = find(root, comp)
    root = struct.unpack_from("<H", e, 26)[0] | \
        (struct.unpack_from("<H", e, 20)[0] << 16 if bits == 32 else 0)
first, size = root, struct.unpack_from("<I", e, 28)[0]
if op == "ntflags":
    print(e[12])
elif op == "chain":
    runs, c = 0, first
    while c >= 2 and c < clusters + 2:
        nxt = fat_get(c)
        if nxt != c + 1:
            runs += 1
        c = nxt
    print(bits, runs)
elif op == "loop":
    c, prev = first, None
    for _ in range(3):
        prev, c = c, fat_get(c)
    fat_set(prev, first)
elif op == "free":
    fat_set(fat_get(first), 0)
EOF
}

# check NAME IMG OFFSET BITS: the listing equals the source's.
check () {
    name=$1 img=$2 off=$3 bits=$4
    timeout 300 "$FSREAD" "$img" "$off" 0 vfat find / >"$T/$name.find" ||
        fail "$name: fsread find failed"
    awk '{ $3 = ""; sub (/  /, " "); print }' "$T/$name.find" |
        LC_ALL=C sort >"$T/$name.got"
    if ! cmp -s "$T/expected" "$T/$name.got"; then
        diff "$T/expected" "$T/$name.got" | head -20 >&2
        fail "$name: the listing differs from the source directory"
    fi
    # The filesystem is what it is meant to be, and the file fragmented.
    info=$(fatpy chain "$img" "$off" DEEP/FRAGME~1.BIN)
    [ "${info% *}" = "$bits" ] || fail "$name: FAT${info% *}, not FAT$bits"
    [ "${info#* }" -gt 1 ] || fail "$name: fragmented.bin is not fragmented"
    [ "$(fatpy ntflags "$img" "$off" LOWER.TXT)" = 24 ] ||
        fail "$name: lower.txt has no NT lowercase flags"

    r() { "$FSREAD" "$img" "$off" 0 vfat "$@"; }
    r cat /efi/DEBIAN/Grub.Cfg | cmp -s - "$src/EFI/debian/grub.cfg" ||
        fail "$name: case-insensitive lookup"
    r cat /MIXEDCASE.TXT | cmp -s - "$src/MixedCase.Txt" ||
        fail "$name: case-insensitive lookup of a long name"
    alias=$(mdir -i "$img@@$off" ::/Deep | awk '/fragmented.bin$/ {
                print $1 "." $2 }')
    [ -n "$alias" ] || fail "$name: mdir shows no 8.3 alias"
    r cat "/Deep/$alias" | cmp -s - "$T/frag" ||
        fail "$name: lookup by the 8.3 alias $alias"
    r cat "/Deep/../Deep/a/../$long.txt" | cmp -s - "$src/Deep/$long.txt" ||
        fail "$name: '..'"
    r head 100 /EFI/debian/grubx64.efi | cmp -s - \
        "$(head -c 100 "$src/EFI/debian/grubx64.efi" >"$T/h"; echo "$T/h")" ||
        fail "$name: head"
    r stat /EFI | grep -q '^kind=d ' || fail "$name: stat of a directory"
    r stat /size-4097 | grep -q '^kind=f size=4097 ' ||
        fail "$name: stat of a file"
    expect_error 3 "no such file" "$FSREAD" "$img" "$off" 0 vfat cat /nope
    expect_error 3 "not a directory" "$FSREAD" "$img" "$off" 0 vfat \
        stat /lower.txt/x
    expect_error 1 "not a symbolic link" "$FSREAD" "$img" "$off" 0 vfat \
        readlink /lower.txt
    r ls /EFI/debian >"$T/ls.out" || fail "$name: ls"
    printf 'f grub.cfg\nf grubx64.efi\n' | cmp -s - "$T/ls.out" ||
        fail "$name: ls /EFI/debian"
}

start=$(date +%s)
mkfat fat12 4096 -F 12 -s 4
check fat12 "$T/fat12.img" 0 12
mkfat fat16 32768 -F 16 -s 4
check fat16 "$T/fat16.img" 0 16
mkfat fat32 65536 -F 32 -s 1
check fat32 "$T/fat32.img" 0 32

# An ESP: FAT32 as the first partition of a GPT disk, 1 MiB in.
truncate -s 80M "$T/disk.raw"
printf 'label: gpt\nstart=2048, size=133120, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n' |
    sfdisk -q "$T/disk.raw" >/dev/null || fail "sfdisk"
dd if="$T/fat32.img" of="$T/disk.raw" bs=1M seek=1 conv=notrunc 2>/dev/null ||
    fail "dd"
check esp "$T/disk.raw" 1048576 32

# Broken chains: a loop, and a chain that runs into a free cluster.
for kind in loop free; do
    for bits in 12 16 32; do
        cp "$T/fat$bits.img" "$T/bad.img"
        fatpy "$kind" "$T/bad.img" 0 DEEP/FRAGME~1.BIN
        expect_error 1 "FAT: .*(loops back|free entry)" \
            timeout 20 "$FSREAD" "$T/bad.img" 0 0 vfat cat \
            /Deep/fragmented.bin
    done
done
echo "ok: FAT file reading ($(($(date +%s) - start)) s)"
