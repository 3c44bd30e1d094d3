#!/bin/sh
# build.sh: build the appliance's initramfs, a cpio (newc) archive
# compressed with zstd, reproducibly: the same inputs give the same bytes.
#
#   initramfs/build.sh --kernel KDIR --out FILE [--appliance PROG]
#                      [--add SRC:DEST]... [--modules LIST] [--level N]
#
#   --kernel KDIR     a kernel unpacked by fetch-kernel.sh (boot/vmlinuz-KVER,
#                     lib/modules/KVER with modules.dep)
#   --out FILE        the initramfs to write
#   --appliance PROG  the static program /init starts, installed as
#                     /sbin/vmconvert-appliance
#   --add SRC:DEST    any other file, installed at DEST (absolute; the mode
#                     is kept); repeatable
#   --modules LIST    module list (default: modules.list beside this script)
#   --level N         zstd level (default 19; 0 writes no compression)
#
# Contents: busybox (static) as /bin/busybox and /bin/sh only (/init makes
# the other applet links at boot: faster than ~400 ln calls here), /init,
# the udhcpc event script, the modules from LIST with all their
# dependencies, decompressed (one zstd pass over plain .ko compresses
# better than zstd over .ko.xz) and indexed by depmod, and the named files.
# Every entry is owned by 0:0 and dated SOURCE_DATE_EPOCH (default 0), in
# sorted order.  Nothing else comes from the host.
set -eu
umask 022

here=$(cd "$(dirname "$0")" && pwd)
kdir="" out="" appliance="" modlist=$here/modules.list level=19
adds=""
nl='
'

usage () {
    sed -n '4,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die () {
    echo "initramfs/build.sh: $*" >&2
    exit 1
}

warn () {
    echo "initramfs/build.sh: warning: $*" >&2
}

while [ $# -gt 0 ]; do
    case $1 in
    --kernel) [ $# -ge 2 ] || usage; kdir=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --appliance) [ $# -ge 2 ] || usage; appliance=$2; shift 2 ;;
    --add) [ $# -ge 2 ] || usage; adds="$adds$2$nl"; shift 2 ;;
    --modules) [ $# -ge 2 ] || usage; modlist=$2; shift 2 ;;
    --level) [ $# -ge 2 ] || usage; level=$2; shift 2 ;;
    *) usage ;;
    esac
done
if [ -z "$kdir" ] || [ -z "$out" ]; then
    usage
fi
[ -d "$kdir" ] || die "$kdir: no such directory"
kdir=$(cd "$kdir" && pwd)
case $level in
'' | *[!0-9]*) die "--level: not a number: $level" ;;
esac

kver=""
for d in "$kdir"/lib/modules/*; do
    if [ -f "$d/modules.dep" ] && [ -f "$kdir/boot/vmlinuz-${d##*/}" ]; then
        [ -z "$kver" ] || die "$kdir holds more than one kernel"
        kver=${d##*/}
    fi
done
[ -n "$kver" ] || die "$kdir: no kernel (boot/vmlinuz-KVER and lib/modules/KVER/modules.dep); run fetch-kernel.sh"
mods=$kdir/lib/modules/$kver

busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox: missing (apt-get install busybox-static)"

# is_dynamic FILE: true for an ELF program that needs a dynamic loader,
# which the initramfs does not have.
is_dynamic () {
    [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ] || return 1
    command -v readelf >/dev/null 2>&1 || return 1
    readelf -l "$1" 2>/dev/null | grep -q 'INTERP'
}
is_dynamic "$busybox" && die "$busybox is dynamically linked; install busybox-static"

st=$(mktemp -d "${TMPDIR:-/tmp}/vmc-initramfs.XXXXXX")
trap 'rm -rf "$st"' EXIT

# The skeleton.
for d in bin sbin usr/bin usr/sbin etc/udhcpc proc sys dev run \
         tmp mnt root "lib/modules/$kver"; do
    mkdir -p "$st/$d"
done
chmod 1777 "$st/tmp"
chmod 0700 "$st/root"
cp "$busybox" "$st/bin/busybox"
chmod 0755 "$st/bin/busybox"
ln -s busybox "$st/bin/sh"
install -m 0755 "$here/init" "$st/init"
install -m 0755 "$here/udhcpc.script" "$st/etc/udhcpc/default.script"
ln -s udhcpc/default.script "$st/etc/udhcpc.script"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$st/etc/passwd"
printf 'root:x:0:\ntty:x:5:\ndisk:x:6:\n' >"$st/etc/group"
ln -s /proc/mounts "$st/etc/mtab"

# The modules: resolve each name with its dependencies and softdeps,
# against this kernel only (-C /dev/null: no modprobe.d from the host).
count=0
paths=$st/.paths
: >"$paths"
grep -v '^[[:space:]]*#' "$modlist" | sed 's/#.*//' >"$st/.list"
while read -r name flag rest; do
    [ -n "$name" ] || continue
    if [ -n "$rest" ] || { [ -n "$flag" ] && [ "$flag" != optional ]; }; then
        die "$modlist: bad line: $name $flag $rest"
    fi
    if ! dep=$(modprobe -C /dev/null -d "$kdir" -S "$kver" --show-depends \
               "$name" 2>/dev/null); then
        if [ "$flag" = optional ]; then
            warn "kernel $kver has no module $name (optional): skipped"
            continue
        fi
        die "kernel $kver has no module $name, neither built in nor a .ko (a typo? mark it optional in $modlist if the kernel may lack it)"
    fi
    count=$((count + 1))
    printf '%s\n' "$dep" | while read -r verb path _; do
        case $verb in
        insmod)
            case $path in
            "$mods"/*) printf '%s\n' "${path#"$mods"/}" >>"$paths" ;;
            *) die "$name: module outside $mods: $path" ;;
            esac ;;
        builtin) ;;
        *) die "$name: unexpected modprobe output: $verb $path" ;;
        esac
    done
done <"$st/.list"
sort -u "$paths" -o "$paths"
nko=$(wc -l <"$paths")
if [ "$nko" -gt 0 ]; then
    (cd "$mods" && tr '\n' '\0' <"$paths" |
        xargs -0 cp --parents -t "$st/lib/modules/$kver")
fi
# Plain .ko: the whole archive is compressed once, and better, by zstd.
find "$st/lib/modules" -name '*.ko.xz' -exec xz -d {} +
find "$st/lib/modules" -name '*.ko.zst' -exec zstd -q -d --rm {} +
find "$st/lib/modules" -name '*.ko.gz' -exec gzip -d {} +
for f in modules.order modules.builtin modules.builtin.modinfo; do
    if [ -f "$mods/$f" ]; then
        cp "$mods/$f" "$st/lib/modules/$kver/$f"
    fi
done
depmod -C /dev/null -b "$st" "$kver"
rm -f "$paths" "$st/.list"

# The caller's files.
if [ -n "$appliance" ]; then
    adds="$appliance:/sbin/vmconvert-appliance$nl$adds"
fi
printf '%s' "$adds" | while IFS= read -r spec; do
    src=${spec%:*}
    dest=${spec##*:}
    [ "$src" != "$spec" ] || die "--add $spec: expected SRC:DEST"
    case $dest in
    /*) ;;
    *) die "--add $spec: DEST must be an absolute path" ;;
    esac
    [ -f "$src" ] || die "$src: no such file"
    is_dynamic "$src" && die "$src is dynamically linked; the initramfs has no shared libraries (link it with -static)"
    mkdir -p "$st$(dirname "$dest")"
    cp "$src" "$st$dest"
    chmod "$(stat -c %a "$src")" "$st$dest"
done

# Reproducible archive: fixed dates, owner 0:0, sorted names, inode
# numbers from cpio's --reproducible.
find "$st" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
mkdir -p "$(dirname "$out")"
tmp=$out.tmp.$$
(
    cd "$st"
    find . -mindepth 1 -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc --owner=0:0 --reproducible --quiet
) | if [ "$level" -eq 0 ]; then cat; else zstd -q "-$level" -c; fi >"$tmp"
mv "$tmp" "$out"
echo "initramfs/build.sh: $out: kernel $kver, $count modules listed, $nko .ko files, $(stat -c %s "$out") bytes" >&2
