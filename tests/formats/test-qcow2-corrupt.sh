#!/bin/sh
# qcow2 hostile input: a good image with one header field damaged at a
# time must be refused with exit status 1 and one line on stderr naming
# qcow2 and the field.  Also: encrypted images and external data files are
# refused clearly, corrupt L2 entries and compressed data fail the
# conversion cleanly.  Run it with the ASan binary too.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 --version

# poke FILE OFFSET HEX: write the bytes HEX (e.g. 0000ffff) at OFFSET.
poke () {
    _hex=$3 _fmt=""
    while [ -n "$_hex" ]; do
        _rest=${_hex#??}
        _fmt="$_fmt\\$(printf '%03o' "0x${_hex%"$_rest"}")"
        _hex=$_rest
    done
    # shellcheck disable=SC2059 # the format is the octal escapes built above
    printf "$_fmt" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# A good image: data, a backing file name, a snapshot, 512-byte clusters
# (the L1 table spans several clusters).
"$TOOLS/mkdisk" -s 3 $((4 * 1024 * 1024)) "$T/base.raw"
qemu-img create -q -f qcow2 -b base.raw -F raw -o cluster_size=512 \
    "$T/good.qcow2" 4M
qemu-io -c "write -P 0x31 0 64k" -c "write -P 0x32 3M 100k" "$T/good.qcow2" \
    >/dev/null
qemu-img snapshot -c s1 "$T/good.qcow2"
"$VMCONVERT" convert -O raw "$T/good.qcow2" "$T/good.raw"
qcompare "$T/good.qcow2" "$T/good.raw"

# bad NAME OFFSET HEX PATTERN: damage a copy, expect a clean refusal.
bad () {
    cp "$T/good.qcow2" "$T/bad.qcow2"
    poke "$T/bad.qcow2" "$2" "$3"
    expect_error 1 "qcow2.*$4" "$VMCONVERT" convert -O raw "$T/bad.qcow2" \
        "$T/bad.raw"
    echo "ok: $1: $(cat "$T/.err")"
}

bad "version 4" 4 00000004 "version"
cp "$T/good.qcow2" "$T/bad.qcow2"
poke "$T/bad.qcow2" 20 0000001f
expect_error 1 "qcow2.*cluster_bits" "$VMCONVERT" info "$T/bad.qcow2"
expect_error 1 "qcow2.*cluster_bits" "$VMCONVERT" check "$T/bad.qcow2"
bad "cluster_bits 8" 20 00000008 "cluster_bits"
bad "cluster_bits 31" 20 0000001f "cluster_bits"
bad "size huge" 24 7fffffffffffffff "size"
bad "size needs more L1" 24 0000100000000000 "l1_size"
bad "crypt_method AES" 32 00000001 "encrypted"
bad "l1_size 0" 36 00000000 "l1_size"
bad "l1_size huge" 36 7fffffff "l1_size"
bad "l1_table_offset unaligned" 40 0000000000010001 "l1_table_offset"
bad "l1_table_offset past EOF" 40 0000100000000000 "l1_table_offset"
bad "refcount_table_offset 0" 48 0000000000000000 "refcount_table_offset"
bad "refcount_table_offset unaligned" 48 0000000000000208 "refcount_table_offset"
bad "refcount_table_offset past EOF" 48 00000fff00000000 "refcount_table_offset"
bad "refcount_table_clusters 0" 56 00000000 "refcount_table_clusters"
bad "refcount_table_clusters huge" 56 7fffffff "refcount_table_clusters"
bad "nb_snapshots huge" 60 7fffffff "nb_snapshots"
bad "nb_snapshots past EOF" 60 00010000 "nb_snapshots"
bad "snapshots_offset unaligned" 64 0000000000000204 "snapshots_offset"
bad "backing_file_size 2000" 16 000007d0 "backing_file_size"
bad "backing_file_offset past EOF" 8 00000000ffffff00 "backing_file_offset"
bad "incompatible unknown bit 40" 72 0000010000000000 "incompatible feature bit 40"
bad "incompatible external data" 72 0000000000000004 "external data files are not supported"
bad "refcount_order 7" 96 00000007 "refcount_order"
bad "header_length 50" 100 00000032 "header_length"
bad "header_length 105" 100 00000069 "header_length"
bad "header_length huge" 100 00100000 "header_length"
bad "compression type bit without type" 72 0000000000000008 "compression_type"
bad "header extension length" 116 00ffffff "header extension"

# Encrypted (LUKS) images: refused in one line.
# (qemu-img's key-derivation benchmark can fail on a loaded machine: retry.)
for try in 1 2 3 4 5; do
    qemu-img create -q -f qcow2 --object secret,id=s,data=x \
        -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
        -o cluster_size=4096 "$T/luks.qcow2" 1M 2>/dev/null && break
    [ "$try" = 5 ] && fail "qemu-img cannot create a LUKS image"
done
expect_error 1 "qcow2: encrypted images are not supported" \
    "$VMCONVERT" convert -O raw "$T/luks.qcow2" "$T/x.raw"
echo "ok: luks: $(cat "$T/.err")"
# An external data file: refused in one line.
qemu-img create -q -f qcow2 -o data_file="$T/data.bin" "$T/ext.qcow2" 1M
expect_error 1 "qcow2: external data files are not supported" \
    "$VMCONVERT" convert -O raw "$T/ext.qcow2" "$T/x.raw"
echo "ok: data file: $(cat "$T/.err")"

# Damaged mapping entries fail the conversion cleanly.  Find the first L2
# table and the first data cluster.
l2=$(python3 - "$T/good.qcow2" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
l1 = struct.unpack(">Q", d[40:48])[0]
print(struct.unpack(">Q", d[l1:l1 + 8])[0] & 0x00fffffffffffe00)
PY
)
cp "$T/good.qcow2" "$T/bad.qcow2"
poke "$T/bad.qcow2" "$l2" 8000000100000000
expect_error 1 "qcow2.*past end of file" "$VMCONVERT" convert -O raw \
    "$T/bad.qcow2" "$T/bad.raw"
echo "ok: L2 entry past EOF: $(cat "$T/.err")"
# Unaligned host offset (64 KiB clusters so that it can be unaligned).
qemu-img create -q -f qcow2 "$T/u.qcow2" 1M
qemu-io -c "write -P 0x31 0 64k" "$T/u.qcow2" >/dev/null
ul2=$(python3 - "$T/u.qcow2" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
l1 = struct.unpack(">Q", d[40:48])[0]
print(struct.unpack(">Q", d[l1:l1 + 8])[0] & 0x00fffffffffffe00)
PY
)
poke "$T/u.qcow2" "$ul2" 8000000000031200
expect_error 1 "qcow2.*unaligned" "$VMCONVERT" convert -O raw \
    "$T/u.qcow2" "$T/bad.raw"
echo "ok: L2 entry unaligned: $(cat "$T/.err")"
# L1 entry pointing past EOF.
l1=$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); \
print(struct.unpack('>Q', d[40:48])[0])" "$T/good.qcow2")
cp "$T/good.qcow2" "$T/bad.qcow2"
poke "$T/bad.qcow2" "$l1" 8000100000000000
expect_error 1 "qcow2.*L2 table.*past end of file" "$VMCONVERT" convert \
    -O raw "$T/bad.qcow2" "$T/bad.raw"
echo "ok: L1 entry past EOF: $(cat "$T/.err")"

# Compressed garbage: a compressed image whose first compressed cluster is
# overwritten.
"$TOOLS/mkdisk" -s 4 $((1024 * 1024)) "$T/c.raw"
qemu-img convert -c -O qcow2 -o cluster_size=4096 "$T/c.raw" "$T/c.qcow2"
for ct in zlib zstd; do
    qemu-img convert -c -O qcow2 -o cluster_size=4096,compression_type=$ct \
        "$T/c.raw" "$T/c.qcow2"
    off=$(python3 - "$T/c.qcow2" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
cb = struct.unpack(">I", d[20:24])[0]
l1 = struct.unpack(">Q", d[40:48])[0]
l2 = struct.unpack(">Q", d[l1:l1 + 8])[0] & 0x00fffffffffffe00
x = 62 - (cb - 8)
for i in range((1 << cb) // 8):
    e = struct.unpack(">Q", d[l2 + 8 * i:l2 + 8 * i + 8])[0]
    if e & (1 << 62):
        print(e & ((1 << x) - 1))
        break
PY
)
    poke "$T/c.qcow2" "$off" ffffffffffffffffffffffffffffffff
    expect_error 1 "qcow2: compressed cluster.*not valid" "$VMCONVERT" \
        convert -O raw "$T/c.qcow2" "$T/c2.raw"
    echo "ok: $ct garbage: $(cat "$T/.err")"
done

# Truncated file: the L1 table or the refcount table is gone.
cp "$T/good.qcow2" "$T/bad.qcow2"
truncate -s 1024 "$T/bad.qcow2"
expect_error 1 "qcow2" "$VMCONVERT" convert -O raw "$T/bad.qcow2" "$T/bad.raw"
echo "ok: truncated: $(cat "$T/.err")"
head -c 50 "$T/good.qcow2" >"$T/bad.qcow2"
expect_error 1 "qcow2" "$VMCONVERT" convert -f qcow2 -O raw "$T/bad.qcow2" \
    "$T/bad.raw"
echo "ok: 50 bytes: $(cat "$T/.err")"
echo "all qcow2 corrupt-input tests passed"
