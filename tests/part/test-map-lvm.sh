#!/bin/sh
# LVM2: a volume group over two GPT partitions, made by the LVM tools
# themselves (with activation off: device-mapper is not needed), holding
# a linear LV with swap, a striped LV (2 stripes of 4 KiB) with a swap
# area of 16 KiB pages (its header spans both PVs), and an LV of garbage.
# Where each LV lies comes from `lvs --segments` and `pvs` (independent);
# `vmconvert map` must find the swap areas (blkid's UUIDs) through the
# segments, count used the PV labels/metadata, the swap headers at their
# disk offsets and the garbage LV's extents, and leave the rest of the
# LVs and the free extents unused.  With one PV missing, the striped LV
# counts used on the PV that is here, with a warning.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/lib.sh"
requires sgdisk --version
requires jq --version
requires mkswap --version
requires losetup --version
requires pvcreate --version
requires lvcreate --version

d=$T/disk.raw
"$TOOLS/mkdisk" -s 21 -d 100 256M "$d"
sgdisk -n1:2048:+96M -t1:8e00 -n2:0:+96M -t2:8e00 "$d" >/dev/null || fail "sgdisk"
s1=$(sgdisk -i1 "$d" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
s2=$(sgdisk -i2 "$d" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
p1=$((s1 * 512)) p2=$((s2 * 512)) psz=$((96 << 20))

# A private LVM configuration: only our devices, no udev, no backups.
export LVM_SYSTEM_DIR=$T/lvm
mkdir -p "$LVM_SYSTEM_DIR"
cat >"$LVM_SYSTEM_DIR/lvm.conf" <<'EOT'
devices { obtain_device_list_from_udev = 0 external_device_info_source = "none" use_devicesfile = 0 }
activation { udev_sync = 0 udev_rules = 0 }
global { activation = 0 }
backup { backup = 0 archive = 0 }
EOT
loop_at "$d" "$p1" "$psz"
L1=$LOOP
loop_at "$d" "$p2" "$psz"
L2=$LOOP
lvm () {
    cmd=$1
    shift
    "$cmd" --devices "$L1" --devices "$L2" "$@" 2>>"$T/lvm.log" ||
        { cat "$T/lvm.log" >&2; fail "$cmd $*"; }
}
lvm pvcreate -ff -y "$L1" "$L2" >/dev/null
lvm vgcreate -s 1M vgt "$L1" "$L2" >/dev/null
lvm lvcreate -an --zero n -L 24M -n lin vgt "$L1" >/dev/null
lvm lvcreate -an --zero n -L 16M -i 2 -I 4 -n str vgt >/dev/null
lvm lvcreate -an --zero n -L 8M -n junk vgt "$L2" >/dev/null
lvm lvs --reportformat json --units b --nosuffix \
    -o lv_name,lv_size,seg_pe_ranges,stripes,stripesize vgt >"$T/lvs.json"
lvm pvs --reportformat json --units b --nosuffix -o pv_name,pe_start \
    >"$T/pvs.json"
lvm pvs --segments --reportformat json --units b --nosuffix \
    -o pv_name,pvseg_start,pvseg_size,lv_name >"$T/pvsegs.json"
detach_loops_of "$d"

# Disk offset of extent N of the PV on loop device DEV.
pe_start () { jq -r ".report[0].pv[] | select(.pv_name == \"$1\") | .pe_start" "$T/pvs.json"; }
pvoff () { if [ "$1" = "$L1" ]; then echo "$p1"; else echo "$p2"; fi; }
ext () { echo $(($(pvoff "$1") + $(pe_start "$1") + $2 * 1048576)); }
# "DEV:FIRST-LAST ..." of an LV.
ranges () { jq -r ".report[0].lv[] | select(.lv_name == \"$1\") | .seg_pe_ranges" "$T/lvs.json"; }
dev_of () { echo "${1%%:*}"; }
first_of () { r=${1#*:}; echo "${r%-*}"; }
last_of () { echo "${1##*-}"; }

lin=$(ranges lin)
lin_off=$(ext "$(dev_of "$lin")" "$(first_of "$lin")")
mkswap_at "$d" "$lin_off" $((24 << 20)) linswap
u_lin=$SWAP_UUID

# The striped LV: a swap area with 16 KiB pages, written through the
# striping LVM reports (chunk i on stripe i % 2, row i / 2).
"$TOOLS/mkdisk" -s 22 -d 100 16M "$T/str.img"
mkswap -p 16384 -L strswap "$T/str.img" >/dev/null 2>&1 || fail "mkswap -p"
u_str=$(blkid -p -o value -s UUID "$T/str.img")
set -- $(ranges str)
[ $# -eq 2 ] || fail "striped LV ranges: $*"
sa=$1 sb=$2
[ "$(jq -r '.report[0].lv[] | select(.lv_name == "str") | .stripe_size' "$T/lvs.json")" = 4096 ] ||
    fail "stripe size is not 4096"
offa=$(ext "$(dev_of "$sa")" "$(first_of "$sa")")
offb=$(ext "$(dev_of "$sb")" "$(first_of "$sb")")
/usr/bin/python3 - "$T/str.img" "$d" "$offa" "$offb" <<'PY'
import sys
img, disk, a, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(img, "rb") as f, open(disk, "r+b") as o:
    for i in range(4):
        chunk = f.read(4096)
        o.seek((a, b)[i % 2] + (i // 2) * 4096)
        o.write(chunk)
PY
junk=$(ranges junk)
junk_off=$(ext "$(dev_of "$junk")" "$(first_of "$junk")")

"$VMCONVERT" map --json "$d" >"$T/map.json" 2>"$T/map.err" ||
    { cat "$T/map.err" >&2; fail "vmconvert map"; }
v () { jq -r ".volumes[] | select(.name == \"$1\") | $2" "$T/map.json"; }
[ "$(jq -r '.volume_groups[0].name' "$T/map.json")" = vgt ] || fail "no VG vgt"
# The LV list and sizes against lvs.
jq -r '.report[0].lv[] | [.lv_name, .lv_size] | @tsv' "$T/lvs.json" | sort >"$T/want"
jq -r '.volumes[] | select(.kind == "lv") | [(.name | sub("^vgt/"; "")), (.size | tostring)] | @tsv' \
    "$T/map.json" | sort >"$T/got"
diff "$T/want" "$T/got" >&2 || fail "LV list differs from lvs"
[ "$(v vgt/lin .fs)" = swap ] && [ "$(v vgt/lin .uuid)" = "$u_lin" ] ||
    fail "linear LV: $(v vgt/lin .)"
[ "$(v vgt/str .fs)" = swap ] && [ "$(v vgt/str .uuid)" = "$u_str" ] &&
    [ "$(v vgt/str .segment_type)" = striped ] || fail "striped LV: $(v vgt/str .)"
[ "$(v vgt/junk .all_used)" = true ] || fail "garbage LV not all used"

pvs_end () { echo $(($(ext "$1" "$2") + 1048576)); }
"$RANGES" covers "$T/map.json" 0 \
    "$p1:$((p1 + $(pe_start "$L1")))" "$p2:$((p2 + $(pe_start "$L2")))" \
    "$lin_off:$((lin_off + 4096))" \
    "$offa:$((offa + 8192))" "$offb:$((offb + 8192))" \
    "$junk_off:$(pvs_end "$(dev_of "$junk")" "$(last_of "$junk")")" ||
    fail "used ranges miss LVM metadata or LV data"
"$RANGES" avoids "$T/map.json" 0 \
    "$((lin_off + 8192)):$(pvs_end "$(dev_of "$lin")" "$(last_of "$lin")")" \
    "$((offa + 8192)):$(pvs_end "$(dev_of "$sa")" "$(last_of "$sa")")" \
    "$((offb + 8192)):$(pvs_end "$(dev_of "$sb")" "$(last_of "$sb")")" ||
    fail "unused LV space counted used"
# Free extents (pvs --segments, no LV): unused.
free=$(jq -r '.report[0].pvseg[] | select(.lv_name == "") |
              "\(.pv_name) \(.pvseg_start) \(.pvseg_size)"' "$T/pvsegs.json")
[ -n "$free" ] || fail "no free extents to check"
echo "$free" | while read -r dev st n; do
    a=$(ext "$dev" "$st")
    "$RANGES" avoids "$T/map.json" 0 "$a:$((a + n * 1048576))" ||
        fail "free extents $dev $st+$n counted used"
done

# The same PVs as two disks (a VG spanning the disks of one machine,
# mapped together): the striped LV's header is found across them.
dd if="$d" of="$T/pva.raw" bs=1M skip=$((p1 >> 20)) count=96 status=none
dd if="$d" of="$T/pvb.raw" bs=1M skip=$((p2 >> 20)) count=96 status=none
"$VMCONVERT" map --json "$T/pva.raw" "$T/pvb.raw" >"$T/two.json" 2>"$T/two.err" ||
    fail "map of two disks"
[ "$(jq -r '.volume_groups[0].pvs_present' "$T/two.json")" = 2 ] ||
    fail "the VG spanning two disks: $(jq -c .volume_groups "$T/two.json")"
[ "$(jq -r '.volumes[] | select(.name == "vgt/str") | .uuid' "$T/two.json")" = "$u_str" ] ||
    fail "striped LV across two disks not found"
# Disk index and disk-relative offset of a stripe's first extent.
disk_of () { if [ "$(dev_of "$1")" = "$L1" ]; then echo 0; else echo 1; fi; }
rel () { echo $(($1 - $(pvoff "$(dev_of "$2")"))); }
for s in "$sa" "$sb"; do
    o=$(rel "$(ext "$(dev_of "$s")" "$(first_of "$s")")" "$s")
    e=$(rel "$(pvs_end "$(dev_of "$s")" "$(last_of "$s")")" "$s")
    "$RANGES" covers "$T/two.json" "$(disk_of "$s")" "$o:$((o + 8192))" &&
    "$RANGES" avoids "$T/two.json" "$(disk_of "$s")" "$((o + 8192)):$e" ||
        fail "used ranges of the two disks (stripe $s)"
done
"$VMCONVERT" map "$T/pvb.raw" >/dev/null 2>"$T/one.err" || fail "map of one of them"
grep -q 'not among the disks' "$T/one.err" || fail "one disk alone: no warning"

# PV 2 missing (its label wiped): the striped LV counts used where it is.
cp "$d" "$T/miss.raw"
dd if=/dev/zero of="$T/miss.raw" bs=512 seek=$((s2)) count=4 conv=notrunc status=none
"$VMCONVERT" map --json "$T/miss.raw" >"$T/miss.json" 2>"$T/miss.err" || fail "map miss"
grep -q 'warning: .*not among the disks' "$T/miss.err" ||
    fail "no warning for the missing PV: $(cat "$T/miss.err")"
[ "$(jq -r '.volumes[] | select(.name == "vgt/str") | .all_used' "$T/miss.json")" = true ] ||
    fail "striped LV with a missing PV not all used"
[ "$(dev_of "$sa")" = "$L1" ] && s_here=$sa || s_here=$sb
o=$(ext "$L1" "$(first_of "$s_here")")
"$RANGES" covers "$T/miss.json" 0 "$o:$(pvs_end "$L1" "$(last_of "$s_here")")" ||
    fail "the present PV's extents of the striped LV not used"
[ "$(jq -r '.volumes[] | select(.name == "vgt/lin") | .fs' "$T/miss.json")" = swap ] ||
    fail "linear LV on the present PV no longer mapped"
echo ok
