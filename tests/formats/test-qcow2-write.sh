#!/bin/sh
# qcow2 write: vmconvert convert -O qcow2 from a reference raw disk, with the
# default options, cluster sizes 512 to 2M, compat 0.10, -c with zlib and
# zstd.  Judged by qemu-img: check clean (no errors, no leaks), compare
# identical, info reports the compat level and compression type; the file's
# allocation stays within 5% of the data present (at cluster granularity)
# plus metadata.  Bad options are refused in one line.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires python3 -c "import json"

# 16 MiB + 5 sectors, sparse regions and explicit zeros included.
"$TOOLS/mkdisk" -s 7 $((16 * 1024 * 1024 + 5 * 512)) "$T/ref.raw"
before=$(hash_of "$T/ref.raw")

# Bytes of guest clusters of size CS that hold non-zero data in FILE.
data_clusters () {
    python3 - "$1" "$2" <<'PY'
import sys
f, cs = sys.argv[1], int(sys.argv[2])
zero = bytes(cs)
n = 0
with open(f, "rb") as fp:
    while True:
        b = fp.read(cs)
        if not b:
            break
        if b != zero[:len(b)]:
            n += 1
print(n * cs)
PY
}

# "compat compression-type cluster-size" from qemu-img info --output=json.
info_fields () {
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); \
d=j['format-specific']['data']; \
print(d.get('compat'), d.get('compression-type'), j['cluster-size'])" "$1"
}

# Data clusters per cluster size, computed once each.
data_cache=""
data_for () {
    _v=$(printf '%s\n' "$data_cache" | sed -n "s/^$1=//p")
    if [ -z "$_v" ]; then
        _v=$(data_clusters "$T/ref.raw" "$1")
        data_cache="$data_cache
$1=$_v"
    fi
    echo "$_v"
}

check_write () {
    name=$1 cs=$2 compat=$3 ctype=$4
    shift 4
    rm -f "$T/w.qcow2"
    "$VMCONVERT" convert -O qcow2 "$@" "$T/ref.raw" "$T/w.qcow2" ||
        fail "$name: convert failed"
    qemu-img check "$T/w.qcow2" >"$T/qcheck.out" 2>&1 ||
        { cat "$T/qcheck.out"; fail "$name: qemu-img check not clean"; }
    grep -q "No errors were found" "$T/qcheck.out" ||
        { cat "$T/qcheck.out"; fail "$name: qemu-img check not clean"; }
    qcompare "$T/ref.raw" "$T/w.qcow2"
    "$VMCONVERT" check "$T/w.qcow2" >/dev/null || fail "$name: vmconvert check"
    qemu-img info --output=json "$T/w.qcow2" >"$T/info.json"
    set -- $(info_fields "$T/info.json")
    [ "$1" = "$compat" ] || fail "$name: compat is $1, not $compat"
    if [ "$compat" = 1.1 ]; then
        [ "$2" = "$ctype" ] || fail "$name: compression type $2, not $ctype"
    fi
    [ "$3" = "$cs" ] || fail "$name: cluster size $3, not $cs"
    # Allocation: data clusters + metadata (L2 tables, L1, refcounts,
    # header), with 5% slack; compressed output must be smaller still.
    data=$(data_for "$cs")
    alloc=$(( $(stat -c %b "$T/w.qcow2") * 512 ))
    meta=$(( (data / cs) * 8 + 4 * cs + 262144 ))
    limit=$(( data + data / 20 + meta ))
    [ "$alloc" -le "$limit" ] ||
        fail "$name: $alloc bytes allocated for $data bytes of data"
    echo "ok: $name ($alloc bytes allocated, $data of data clusters)"
}

check_write "default" 65536 1.1 zlib
check_write "cluster_size=512" 512 1.1 zlib -o cluster_size=512
check_write "cluster_size=4K" 4096 1.1 zlib -o cluster_size=4K
check_write "cluster_size=2M" 2097152 1.1 zlib -o cluster_size=2M
check_write "compat=0.10" 65536 0.10 zlib -o compat=0.10
check_write "compat=v3" 65536 1.1 zlib -o compat=v3,refcount_bits=16
check_write "-c zlib" 65536 1.1 zlib -c
check_write "-c zstd" 65536 1.1 zstd -c -o compression_type=zstd
check_write "-c zlib 512" 512 1.1 zlib -c -o cluster_size=512
check_write "-c zstd 4K" 4096 1.1 zstd -c -o compression_type=zstd,cluster_size=4K
check_write "-c zstd 2M" 2097152 1.1 zstd -c -o compression_type=zstd,cluster_size=2M
check_write "-c compat=0.10" 65536 0.10 zlib -c -o compat=0.10

# Compression must actually compress this disk's patterns.
"$VMCONVERT" convert -O qcow2 "$T/ref.raw" "$T/plain.qcow2"
"$VMCONVERT" convert -O qcow2 -c "$T/ref.raw" "$T/comp.qcow2"
[ "$(stat -c %b "$T/comp.qcow2")" -lt "$(stat -c %b "$T/plain.qcow2")" ] ||
    fail "-c did not make the image smaller"

# A disk whose size is not a multiple of 512: qemu sees it rounded up.
head -c 100001 "$T/ref.raw" >"$T/odd.raw"
"$VMCONVERT" convert -O qcow2 "$T/odd.raw" "$T/odd.qcow2"
qemu-img check -q "$T/odd.qcow2" || fail "odd size: qemu-img check"
qemu-img compare -q "$T/odd.raw" "$T/odd.qcow2" 2>/dev/null ||
    qemu-img compare "$T/odd.qcow2" "$T/odd.raw" >/dev/null ||
    fail "odd size: compare"
# An empty disk and a big sparse one.
: >"$T/empty.raw"
"$VMCONVERT" convert -O qcow2 "$T/empty.raw" "$T/empty.qcow2"
qemu-img check -q "$T/empty.qcow2" || fail "empty: qemu-img check"
truncate -s 3T "$T/big.raw"
printf 'end' | dd of="$T/big.raw" bs=1 seek=$((3 * 1024 * 1024 * 1024 * 1024 - 3)) conv=notrunc 2>/dev/null
"$VMCONVERT" convert -O qcow2 "$T/big.raw" "$T/big.qcow2"
qemu-img check -q "$T/big.qcow2" || fail "3T sparse: qemu-img check"
[ "$(stat -c %b "$T/big.qcow2")" -lt 4096 ] || fail "3T sparse: too big"
"$VMCONVERT" convert -O raw "$T/big.qcow2" "$T/big2.raw"
[ "$(tail -c 3 "$T/big2.raw")" = end ] || fail "3T sparse: tail lost"
qemu-img map --output=json "$T/big.qcow2" | grep -c '"data": true' |
    grep -qx 1 || fail "3T sparse: more than one data extent"

# Refused options: one line each.
expect_error 1 "cluster_size" "$VMCONVERT" convert -O qcow2 -o cluster_size=1000 \
    "$T/ref.raw" "$T/x.qcow2"
expect_error 1 "cluster_size" "$VMCONVERT" convert -O qcow2 -o cluster_size=4M \
    "$T/ref.raw" "$T/x.qcow2"
expect_error 1 "refcount_bits" "$VMCONVERT" convert -O qcow2 -o refcount_bits=8 \
    "$T/ref.raw" "$T/x.qcow2"
expect_error 1 "compression_type" "$VMCONVERT" convert -O qcow2 \
    -o compression_type=lzo "$T/ref.raw" "$T/x.qcow2"
expect_error 1 "zstd" "$VMCONVERT" convert -O qcow2 -c \
    -o compression_type=zstd,compat=0.10 "$T/ref.raw" "$T/x.qcow2"
expect_error 1 "compat" "$VMCONVERT" convert -O qcow2 -o compat=2.0 \
    "$T/ref.raw" "$T/x.qcow2"
expect_error 1 "extended_l2" "$VMCONVERT" convert -O qcow2 -o extended_l2=on \
    "$T/ref.raw" "$T/x.qcow2"
[ "$before" = "$(hash_of "$T/ref.raw")" ] || fail "source modified"
echo "all qcow2 write tests passed"
