#!/bin/sh
# fetch-kernel.sh OUTDIR: put Debian's kernel, extracted, into OUTDIR and
# print its version (e.g. 6.12.117+deb12-amd64) on stdout.
#
# The kernel package is downloaded with `apt-get download` and unpacked
# with `dpkg -x`: it is never installed, so the host's boot setup is not
# touched.  Preferred: bookworm-security's linux-image-6.12-amd64 (it has
# ntfs3 and boots faster under QEMU); else the distribution's default
# linux-image-amd64.  The meta package only names the real one, so the
# real name comes from the meta package's Depends (as `apt-cache depends`
# shows it).
#
# The .deb ships no modules.dep, so `depmod -b` runs over the unpacked tree.
#
# Cache: OUTDIR/.package records "PACKAGE VERSION"; when it matches what apt
# resolves now, nothing is done.  When apt resolves nothing (no package
# lists: run apt-get update) and OUTDIR already holds a kernel, that kernel
# is used with a warning.
#
# Layout of OUTDIR afterwards:
#   boot/vmlinuz-KVER  boot/config-KVER  lib/modules/KVER/  .package
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1

say () {
    echo "fetch-kernel: $*" >&2
}

# cached_kver: the version of the kernel already in $out, or nothing.
cached_kver () {
    for d in "$out"/lib/modules/*; do
        k=${d##*/}
        if [ -f "$out/boot/vmlinuz-$k" ] && [ -f "$d/modules.dep" ]; then
            echo "$k"
            return 0
        fi
    done
}

# resolve META: print "PACKAGE VERSION" of the kernel META depends on.  The
# meta package pins it ("linux-image-X (= VERSION)"), so one apt-cache call
# (about 1.5 s here) answers both.
resolve () {
    apt-cache show --no-all-versions "$1" 2>/dev/null | awk '
        $1 == "Depends:" && $2 ~ /^linux-image-/ && $3 == "(=" {
            sub(/\).*/, "", $4); print $2, $4; found = 1; exit
        }
        END { exit !found }'
}

want=$(resolve linux-image-6.12-amd64 || resolve linux-image-amd64 || true)
have=$(cached_kver || true)
if [ -z "$want" ]; then
    if [ -n "$have" ]; then
        say "warning: apt resolves no kernel package (run apt-get update); using the cached $have"
        echo "$have"
        exit 0
    fi
    say "apt resolves neither linux-image-6.12-amd64 nor linux-image-amd64; run apt-get update"
    exit 1
fi
if [ -n "$have" ] && [ "$(cat "$out/.package" 2>/dev/null)" = "$want" ]; then
    say "cached: $want"
    echo "$have"
    exit 0
fi

pkg=${want% *}
say "downloading $want"
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
# As root, apt downloads as the _apt user, which cannot write here; the
# sandbox buys nothing for a file we only unpack.
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2)
deb=$(ls "$work"/*.deb)
mkdir "$work/root"
dpkg -x "$deb" "$work/root"
rm -f "$deb"
# A merged-/usr package would ship usr/lib/modules; depmod -b looks in lib/.
if [ ! -d "$work/root/lib/modules" ] && [ -d "$work/root/usr/lib/modules" ]; then
    ln -s usr/lib "$work/root/lib"
fi
set -- "$work"/root/lib/modules/*
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    say "$deb: expected exactly one lib/modules/KVER"
    exit 1
fi
kver=${1##*/}
if [ ! -f "$work/root/boot/vmlinuz-$kver" ]; then
    say "$deb: no boot/vmlinuz-$kver"
    exit 1
fi
depmod -b "$work/root" "$kver"
echo "$want" >"$work/root/.package"
rm -rf "$out"
mv "$work/root" "$out"
say "kernel $kver in $out"
echo "$kver"
