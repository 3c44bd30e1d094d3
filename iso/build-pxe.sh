#!/bin/sh
# build-pxe.sh: the files a TFTP (or HTTP) server needs to boot the
# appliance over the network.
#
#   iso/build-pxe.sh --kernel VMLINUZ --initrd INITRD --out DIR
#                    [--append "ARGS"]
#
#   --append ARGS  more kernel parameters, added to every boot entry
#
# DIR receives:
#   vmlinuz initrd.img     the appliance
#   boot.ipxe              for iPXE (QEMU/KVM NICs, or iPXE chain-loaded)
#   pxelinux.0 ldlinux.c32 and pxelinux.cfg/default: BIOS PXE ROMs
#   grubx64.efi grub.cfg   UEFI PXE firmware (GRUB, standalone; it reads
#                          grub.cfg from the same server)
#   dnsmasq.conf.example   proxy DHCP + TFTP beside an existing DHCP server
# The settings (vmconvert.server, .fingerprint, .token, ...) go on the
# kernel command line: each of boot.ipxe, pxelinux.cfg/default and grub.cfg
# has a block of them, commented out, at its top.
set -eu
umask 022

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=iso/params.sh
. "$here/params.sh"
kernel="" initrd="" out="" append=""

usage () {
    sed -n '5,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die () {
    echo "iso/build-pxe.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --kernel) [ $# -ge 2 ] || usage; kernel=$2; shift 2 ;;
    --initrd) [ $# -ge 2 ] || usage; initrd=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --append) [ $# -ge 2 ] || usage; append=$2; shift 2 ;;
    *) usage ;;
    esac
done
if [ -z "$kernel" ] || [ -z "$initrd" ] || [ -z "$out" ]; then
    usage
fi
for f in "$kernel" "$initrd"; do
    [ -f "$f" ] || die "$f: no such file"
done
pxelinux=/usr/lib/PXELINUX/pxelinux.0
modules_dir=/usr/lib/syslinux/modules/bios
[ -f "$pxelinux" ] || die "$pxelinux: missing (apt-get install pxelinux)"
[ -f "$modules_dir/ldlinux.c32" ] || die "$modules_dir: missing (apt-get install syslinux-common)"
[ -d /usr/lib/grub/x86_64-efi ] || die "GRUB for EFI missing (apt-get install grub-efi-amd64-bin)"
command -v grub-mkstandalone >/dev/null 2>&1 || die "grub-mkstandalone: missing (apt-get install grub-common)"

params="$KERNEL_PARAMS${append:+ $append}"
case $params in
*[\"\'\\\;\$]*) die "--append: quotes, backslashes, \$ and ; are not allowed: $append" ;;
esac

mkdir -p "$out/pxelinux.cfg"
cp "$kernel" "$out/vmlinuz"
cp "$initrd" "$out/initrd.img"

# iPXE.  Names are relative to the script's own URL, so the directory works
# over TFTP and HTTP alike.  initrd=initrd.img is required on the kernel
# line: without it, an EFI kernel booted by iPXE finds no initrd.
cat >"$out/boot.ipxe" <<EOF
#!ipxe
# vmconvert appliance, booted by iPXE.  Settings for every machine that
# boots this script: remove the # and edit (see the README's kernel
# command-line options; extra takes any of them, space separated).
#set server 192.0.2.10:10874
#set fingerprint sha256:0000000000000000000000000000000000000000000000000000000000000000
#set token CHANGE-ME
#set extra vmconvert.compress=zstd

set params initrd=initrd.img $params
isset \${server} && set params \${params} vmconvert.server=\${server} ||
isset \${fingerprint} && set params \${params} vmconvert.fingerprint=\${fingerprint} ||
isset \${token} && set params \${params} vmconvert.token=\${token} ||
isset \${extra} && set params \${params} \${extra} ||
echo vmconvert: booting with \${params}
kernel vmlinuz \${params}
initrd initrd.img
boot
EOF

# BIOS PXE: pxelinux with the same menu as the ISO's.
for f in ldlinux.c32 libcom32.c32 libutil.c32 menu.c32; do
    cp "$modules_dir/$f" "$out/"
done
cp "$pxelinux" "$out/pxelinux.0"
cat >"$out/pxelinux.cfg/default" <<EOF
# vmconvert appliance, booted by pxelinux (BIOS).  Settings: add them to
# both APPEND lines, e.g. vmconvert.server=192.0.2.10:10874
# vmconvert.fingerprint=sha256:... vmconvert.token=CHANGE-ME
SERIAL 0 115200
UI menu.c32
MENU TITLE vmconvert
TIMEOUT 10
DEFAULT vmconvert
LABEL vmconvert
  MENU LABEL vmconvert appliance
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND $params
LABEL shell
  MENU LABEL vmconvert appliance (shell)
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND $params $SHELL_PARAM
EOF

# UEFI PXE: GRUB, whose built-in config reads grub.cfg from the server it
# was loaded from.
cat >"$out/grub.cfg" <<EOF
# vmconvert appliance, booted by GRUB (UEFI PXE).  Settings: remove the #
# and edit; extra takes any kernel command-line options.
#set server=192.0.2.10:10874
#set fingerprint=sha256:0000000000000000000000000000000000000000000000000000000000000000
#set token=CHANGE-ME
#set extra="vmconvert.compress=zstd"

set params="$params"
if [ -n "\$server" ]; then set params="\$params vmconvert.server=\$server"; fi
if [ -n "\$fingerprint" ]; then set params="\$params vmconvert.fingerprint=\$fingerprint"; fi
if [ -n "\$token" ]; then set params="\$params vmconvert.token=\$token"; fi
if [ -n "\$extra" ]; then set params="\$params \$extra"; fi
set timeout=1
set default=0
menuentry "vmconvert appliance" {
    linux (\$root)/vmlinuz \$params
    initrd (\$root)/initrd.img
}
menuentry "vmconvert appliance (shell)" {
    linux (\$root)/vmlinuz \$params $SHELL_PARAM
    initrd (\$root)/initrd.img
}
EOF
st=$(mktemp -d "${TMPDIR:-/tmp}/vmc-pxe.XXXXXX")
trap 'rm -rf "$st"' EXIT
cat >"$st/embed.cfg" <<'EOF'
if serial --unit=0 --speed=115200; then
    terminal_input serial console
    terminal_output serial console
fi
set root=tftp
if [ -n "$cmdpath" ]; then regexp --set=1:root '^\(([^)]*)\)' "$cmdpath"; fi
configfile ($root)/grub.cfg
EOF
grub_mods="net efinet tftp linux normal serial terminal echo test regexp configfile all_video"
grub-mkstandalone -O x86_64-efi -o "$out/grubx64.efi" \
    --modules="$grub_mods" --install-modules="$grub_mods boot" \
    --locales= --fonts= --themes= "boot/grub/grub.cfg=$st/embed.cfg"

cat >"$out/dnsmasq.conf.example" <<'EOF'
# dnsmasq as a proxy DHCP and TFTP server for the vmconvert appliance.
#
# Proxy DHCP: the network's own DHCP server keeps handing out addresses;
# dnsmasq only tells PXE clients what to boot.  Run it on a host on the
# same network segment as the machines to migrate:
#   dnsmasq --no-daemon --conf-file=dnsmasq.conf.example
# (Debian: package dnsmasq-base).  Edit the lines marked EDIT.

# No DNS service, DHCP and TFTP only.
port=0
log-dhcp

# EDIT: the interface facing the machines, and that network's address:
# "proxy" means answer PXE clients only, hand out no addresses.
interface=eth0
dhcp-range=192.0.2.0,proxy

# EDIT: this directory (the output of `make pxe`).
enable-tftp
tftp-root=/srv/vmconvert/pxe

# Clients running iPXE (QEMU/KVM's NICs, or iPXE chain-loaded) say so with
# DHCP option 175; they get the iPXE script.
dhcp-match=set:ipxe,175
dhcp-boot=tag:ipxe,boot.ipxe

# Other PXE clients get a boot loader by firmware: pxelinux for BIOS, GRUB
# for UEFI.  Both read their configuration from the same directory.
pxe-prompt="vmconvert appliance",1
pxe-service=tag:!ipxe,x86PC,"vmconvert appliance (BIOS)",pxelinux
pxe-service=tag:!ipxe,x86-64_EFI,"vmconvert appliance (UEFI)",grubx64.efi
EOF

echo "iso/build-pxe.sh: $out: $(find "$out" -type f | wc -l) files, $(du -sk "$out" | cut -f1) KiB" >&2
