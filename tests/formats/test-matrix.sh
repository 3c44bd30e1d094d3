#!/bin/sh
# The full read x write matrix.  One reference disk (known content: data,
# patterns, written zeros, holes, first and last sectors set; its size a
# multiple of no cluster, grain or block size) is turned by qemu-img into
# every readable format and subformat; vmconvert converts each of those into
# every writable format and subformat; qemu-img judges every output: check
# (where qemu-img has one for the format) and compare with the reference.
# Every source file's hash is the same after the run as before.
. "$(dirname "$0")/../functions.sh"
requires qemu-img --version
requires jq --version

ref=$T/ref.raw
"$TOOLS/mkdisk" -s 11 -d 55 $((24 * 1048576 + 3 * 512)) "$ref"

# Sources: name, qemu-img convert arguments.
mksrc () {
    name=$1
    shift
    qemu-img convert -f raw "$@" "$ref" "$T/src-$name" ||
        fail "qemu-img could not make source $name"
}
mksrc raw -O raw
mksrc qcow2 -O qcow2
mksrc qcow2-v2 -O qcow2 -o compat=0.10
mksrc qcow2-zlib -O qcow2 -c
mksrc qcow2-zstd -O qcow2 -c -o compression_type=zstd
mksrc qcow2-4k -O qcow2 -o cluster_size=4096
mksrc vmdk-sparse -O vmdk -o subformat=monolithicSparse
mksrc vmdk-2gsparse -O vmdk -o subformat=twoGbMaxExtentSparse
mksrc vmdk-flat -O vmdk -o subformat=monolithicFlat
mksrc vmdk-2gflat -O vmdk -o subformat=twoGbMaxExtentFlat
mksrc vmdk-stream -O vmdk -o subformat=streamOptimized
mksrc vhd-dynamic -O vpc -o subformat=dynamic
mksrc vhd-fixed -O vpc -o subformat=fixed,force_size=on
mksrc vhdx -O vhdx
mksrc vhdx-1m -O vhdx -o block_size=1M
mksrc vdi -O vdi
mksrc vdi-static -O vdi -o static=on

# Every file of every source (extents included), hashed before.
hash_of "$T"/src-* >"$T/hashes.before"

# Targets: name, format, options, whether qemu-img check applies.
targets="
raw raw - no
qcow2 qcow2 - yes
qcow2-zstd qcow2 -c,compression_type=zstd yes
qcow2-zlib qcow2 -c yes
vmdk-sparse vmdk subformat=monolithicSparse yes
vmdk-stream vmdk subformat=streamOptimized yes
vhd-dynamic vpc subformat=dynamic no
vhd-fixed vpc subformat=fixed no
vhdx vhdx - yes
vdi vdi - yes
"

n=0
for src in "$T"/src-*; do
    case $src in
    *-s0[0-9][0-9] | *-f0[0-9][0-9] | *-flat-flat) continue ;;
    esac
    sname=${src##*/src-}
    while read -r tname tfmt topts tcheck; do
        [ -n "$tname" ] || continue
        out=$T/out-$sname-$tname
        set -- -O "$tfmt"
        case $topts in
        -) ;;
        -c) set -- "$@" -c ;;
        -c,*) set -- "$@" -c -o "${topts#-c,}" ;;
        *) set -- "$@" -o "$topts" ;;
        esac
        "$VMCONVERT" convert "$@" "$src" "$out" ||
            fail "convert $sname -> $tname failed"
        if [ "$tcheck" = yes ]; then
            qemu-img check -q -f "$tfmt" "$out" ||
                fail "qemu-img check $sname -> $tname"
        fi
        if ! qemu-img compare -f raw -F "$tfmt" "$ref" "$out" \
            >"$T/compare.out" 2>&1; then
            # What qemu-img saw, and how the source's files were laid out
            # (holes included) when it differed.
            cat "$T/compare.out"
            for f in "$src"*; do
                echo "$f:"
                qemu-img map -f raw --output=json "$f" | head -n 40
            done
            fail "qemu-img compare: $sname -> $tname differs from the reference"
        fi
        rm -f "$out"*
    done <<EOT
$targets
EOT
    n=$((n + 1))
done
[ "$n" -ge 17 ] || fail "only $n sources were converted"

# A raw source whose size is not even a multiple of 512: formats that
# round the virtual size up get a padded tail, which must read as zeros.
head -c 1000100 "$ref" >"$T/odd.raw"
while read -r tname tfmt topts tcheck; do
    [ -n "$tname" ] || continue
    out=$T/odd-$tname
    set -- -O "$tfmt"
    case $topts in
    -) ;;
    -c) set -- "$@" -c ;;
    -c,*) set -- "$@" -c -o "${topts#-c,}" ;;
    *) set -- "$@" -o "$topts" ;;
    esac
    "$VMCONVERT" convert "$@" "$T/odd.raw" "$out" 2>"$T/err" ||
        { cat "$T/err" >&2; fail "convert odd-size raw -> $tname failed"; }
    size=$(qemu-img info --output=json -f "$tfmt" "$out" | jq '."virtual-size"')
    [ "$size" -ge 1000100 ] || fail "odd-size raw -> $tname: size $size"
    if [ "$tcheck" = yes ]; then
        qemu-img check -q -f "$tfmt" "$out" ||
            fail "qemu-img check odd-size raw -> $tname"
    fi
    qemu-img compare -q -f raw -F "$tfmt" "$T/odd.raw" "$out" ||
        fail "qemu-img compare: odd-size raw -> $tname differs"
    rm -f "$out"*
done <<EOT
$targets
EOT

hash_of "$T"/src-* >"$T/hashes.after"
cmp -s "$T/hashes.before" "$T/hashes.after" || fail "a source file changed"
exit 0
