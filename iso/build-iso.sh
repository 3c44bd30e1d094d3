#!/bin/sh
# build-iso.sh: the appliance's hybrid ISO, bootable from a CD/DVD or a USB
# stick, through BIOS (isolinux) or UEFI (GRUB).
#
#   iso/build-iso.sh --kernel VMLINUZ --initrd INITRD --out ISO
#                    [--append "ARGS"] [--config FILE]
#
#   --append ARGS  more kernel parameters, added to every boot entry
#   --config FILE  the settings template put at /vmconvert.cfg on the ESP
#                  and at the ISO root (default: iso/vmconvert.cfg)
#
# Layout (ISO 9660 with Rock Ridge and Joliet, volume id VMCONVERT):
#   /boot/vmlinuz /boot/initrd.img   the appliance
#   /isolinux/                       BIOS: isolinux and its menu
#   /boot/efiboot.img                UEFI: the El Torito EFI image, a FAT
#                                    file system that is also the stick's
#                                    ESP partition: EFI/BOOT/BOOTX64.EFI
#                                    (GRUB, standalone, its menu inside)
#                                    and vmconvert.cfg, with a few MiB free
#                                    for a person to edit it
#   /vmconvert.cfg                   the same template, read-only
# isohdpfx.bin and -isohybrid-gpt-basdat give it an MBR and a GPT, so it
# can be dd'ed to a stick as it is.
set -eu
umask 022

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=iso/params.sh
. "$here/params.sh"
kernel="" initrd="" out="" append="" config=$here/vmconvert.cfg

usage () {
    sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die () {
    echo "iso/build-iso.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --kernel) [ $# -ge 2 ] || usage; kernel=$2; shift 2 ;;
    --initrd) [ $# -ge 2 ] || usage; initrd=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --append) [ $# -ge 2 ] || usage; append=$2; shift 2 ;;
    --config) [ $# -ge 2 ] || usage; config=$2; shift 2 ;;
    *) usage ;;
    esac
done
if [ -z "$kernel" ] || [ -z "$initrd" ] || [ -z "$out" ]; then
    usage
fi
for f in "$kernel" "$initrd" "$config"; do
    [ -f "$f" ] || die "$f: no such file"
done
isolinux_dir=/usr/lib/ISOLINUX
modules_dir=/usr/lib/syslinux/modules/bios
for f in "$isolinux_dir/isolinux.bin" "$isolinux_dir/isohdpfx.bin"; do
    [ -f "$f" ] || die "$f: missing (apt-get install isolinux)"
done
[ -f "$modules_dir/ldlinux.c32" ] || die "$modules_dir: missing (apt-get install syslinux-common)"
[ -d /usr/lib/grub/x86_64-efi ] || die "GRUB for EFI missing (apt-get install grub-efi-amd64-bin)"
for tool in xorriso grub-mkstandalone mkfs.vfat mcopy mmd; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool: missing (install-deps)"
done
# Every time and identifier that can be fixed is fixed (GRUB's memdisk is
# the exception): rebuilding the same inputs changes little.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}"

params="$KERNEL_PARAMS${append:+ $append}"
case $params in
*[\"\'\\\;\$]*) die "--append: quotes, backslashes, \$ and ; are not allowed: $append" ;;
esac

st=$(mktemp -d "${TMPDIR:-/tmp}/vmc-iso.XXXXXX")
trap 'rm -rf "$st"' EXIT
mkdir -p "$st/iso/boot" "$st/iso/isolinux" "$st/efi/EFI/BOOT"
cp "$kernel" "$st/iso/boot/vmlinuz"
cp "$initrd" "$st/iso/boot/initrd.img"
cp "$config" "$st/iso/vmconvert.cfg"

# GRUB finds the ISO by a file named after its content: not by /boot/vmlinuz,
# which the machine's own disks may have too.
id=$(cat "$st/iso/boot/vmlinuz" "$st/iso/boot/initrd.img" | sha256sum |
     cut -c1-16)
: >"$st/iso/boot/vmconvert-$id.id"

# BIOS: isolinux with a menu on the screen and the serial port; Tab edits
# the kernel parameters.  TIMEOUT is in tenths of a second.
for f in ldlinux.c32 libcom32.c32 libutil.c32 menu.c32; do
    cp "$modules_dir/$f" "$st/iso/isolinux/"
done
cp "$isolinux_dir/isolinux.bin" "$st/iso/isolinux/"
cat >"$st/iso/isolinux/isolinux.cfg" <<EOF
SERIAL 0 115200
UI menu.c32
MENU TITLE vmconvert
TIMEOUT 10
DEFAULT vmconvert
LABEL vmconvert
  MENU LABEL vmconvert appliance
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND $params
LABEL shell
  MENU LABEL vmconvert appliance (shell)
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND $params $SHELL_PARAM
EOF

# UEFI: GRUB with its menu built in, on the serial port too when there is
# one.  `e` edits an entry's kernel parameters.
cat >"$st/grub.cfg" <<EOF
if serial --unit=0 --speed=115200; then
    terminal_input serial console
    terminal_output serial console
fi
set timeout=1
set default=0
search --no-floppy --set=root --file /boot/vmconvert-$id.id
menuentry "vmconvert appliance" {
    linux (\$root)/boot/vmlinuz $params
    initrd (\$root)/boot/initrd.img
}
menuentry "vmconvert appliance (shell)" {
    linux (\$root)/boot/vmlinuz $params $SHELL_PARAM
    initrd (\$root)/boot/initrd.img
}
EOF
grub_mods="part_gpt part_msdos iso9660 fat search search_fs_file linux normal serial terminal echo test all_video"
# shellcheck disable=SC2086 # the module lists are word lists
grub-mkstandalone -O x86_64-efi -o "$st/efi/EFI/BOOT/BOOTX64.EFI" \
    --modules="$grub_mods" --install-modules="$grub_mods configfile boot" \
    --locales= --fonts= --themes= "boot/grub/grub.cfg=$st/grub.cfg"
cp "$config" "$st/efi/vmconvert.cfg"

# The FAT image: GRUB plus 4 MiB free, so the stick's config can be edited.
efi_bytes=$(stat -c %s "$st/efi/EFI/BOOT/BOOTX64.EFI")
esp_mib=$(((efi_bytes + 1048575) / 1048576 + 4))
img=$st/iso/boot/efiboot.img
mkfs.vfat -C --invariant -i 564d4356 -n VMCONVERT "$img" $((esp_mib * 1024)) >/dev/null
find "$st/efi" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mmd -i "$img" ::/EFI ::/EFI/BOOT
mcopy -m -i "$img" "$st/efi/EFI/BOOT/BOOTX64.EFI" ::/EFI/BOOT/
mcopy -m -i "$img" "$st/efi/vmconvert.cfg" ::/

find "$st/iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$(dirname "$out")"
xorriso -report_about SORRY -as mkisofs -o "$out.tmp.$$" -iso-level 3 -V VMCONVERT -J -R \
    -isohybrid-mbr "$isolinux_dir/isohdpfx.bin" \
    -c isolinux/boot.cat -b isolinux/isolinux.bin -no-emul-boot \
    -boot-load-size 4 -boot-info-table \
    -eltorito-alt-boot -e boot/efiboot.img -no-emul-boot -isohybrid-gpt-basdat \
    "$st/iso" 2>"$st/xorriso.log" || { cat "$st/xorriso.log" >&2; exit 1; }
mv "$out.tmp.$$" "$out"
size=$(stat -c %s "$out")
echo "iso/build-iso.sh: $out: $size bytes ($(((size + 1048575) / 1048576)) MiB), ESP $esp_mib MiB" >&2
