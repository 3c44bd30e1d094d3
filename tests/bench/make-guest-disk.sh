#!/bin/bash
# make-guest-disk.sh SIZE OUT.raw [SEED]
#
# Build a realistic guest disk image, without mounting anything (no loop
# devices, no root-only mounts): the filesystems are made in plain files or
# at an offset of the image itself.
#
#   GPT, 1 MiB aligned (sgdisk)
#   p1  EFI system partition, FAT32, SIZE/16 (256 MiB at 4 GiB, >= 64 MiB):
#       ~20 % of it in boot loader, kernel and initrd sized blobs; free
#       space zero (as after mkfs.fat).
#   p2  ext4 root (4 KiB blocks), the rest: ~40 % in use: real OS files
#       sampled from the build host's /usr (ELF, python, docs, .gz),
#       incompressible media and archives, generated text (logs, CSV,
#       prose, source, configuration), "mostly zero" database pages, in
#       ~17,000 files of varied sizes.  Populated with mke2fs -d; the
#       partition is filled with pseudo-random garbage first and mke2fs
#       runs with nodiscard, so free blocks hold stale non-zero data, as on
#       a disk that has been in use for a while.  Inode tables and the
#       journal are zeroed (lazy_itable_init=0, lazy_journal_init=0), as
#       the kernel would have done after the first mount.
#   p3  Linux swap, SIZE/8 (512 MiB at 4 GiB): a swap header over garbage.
#
# Deterministic given SEED (default "vmconvert-bench-1"): the same seed gives
# the same image byte for byte on the same host.  Only the sample of /usr
# depends on the host (and changes when its packages change).
#
# Also writes OUT.stats (sizes, bytes in files, filesystem blocks in use,
# non-zero 4 KiB blocks) and checks the result with sgdisk -v, e2fsck -fn,
# fsck.fat -n and blkid.  Needs: gdisk e2fsprogs dosfstools mtools
# util-linux coreutils tar gcc (for tests/bench/benchtool.c, unless
# BENCHTOOL names a built one).  About a minute for 4 GiB.
set -euo pipefail
umask 022

die () { echo "make-guest-disk: $*" >&2; exit 1; }

{ [ $# -ge 2 ] && [ $# -le 3 ]; } || die "usage: make-guest-disk.sh SIZE OUT.raw [SEED]"
size=$(numfmt --from=iec "$1") || die "bad SIZE: $1"
out=$2
seed=${3:-vmconvert-bench-1}
here=$(cd "$(dirname "$0")" && pwd)
MiB=1048576
# A fixed time for every timestamp the tools write (2024-01-01).
epoch=1704067200

(( size >= 512 * MiB )) || die "SIZE must be at least 512M"
(( size % MiB == 0 )) || die "SIZE must be a multiple of 1 MiB"
for t in sgdisk sfdisk jq mke2fs e2fsck dumpe2fs debugfs mkfs.fat fsck.fat mcopy mkswap blkid; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done

outdir=$(cd "$(dirname "$out")" && pwd)
tmp=$(mktemp -d "$outdir/.guest-disk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

bt=${BENCHTOOL:-}
if [ -z "$bt" ]; then
    bt=$tmp/benchtool
    ${CC:-cc} -std=gnu11 -O2 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
        -o "$bt" "$here/benchtool.c" -lm
fi

log () { printf 'make-guest-disk: %s\n' "$*" >&2; }
t0=$(date +%s)

# ---- Layout, in MiB.
total_mib=$(( size / MiB ))
esp_mib=$(( total_mib / 16 )); (( esp_mib >= 64 )) || esp_mib=64
swap_mib=$(( total_mib / 8 ))
esp_start=1
root_start=$(( esp_start + esp_mib ))
root_mib=$(( total_mib - 1 - esp_mib - swap_mib - 1 ))   # last MiB: backup GPT
swap_start=$(( root_start + root_mib ))
esp_len=$(( esp_mib * MiB ))
root_off=$(( root_start * MiB )); root_len=$(( root_mib * MiB ))
swap_off=$(( swap_start * MiB )); swap_len=$(( swap_mib * MiB ))

part=$out.part
rm -f "$part"
truncate -s "$size" "$part"

# ---- Stale garbage in the root and swap partitions.
log "garbage in root ($root_mib MiB) and swap ($swap_mib MiB)"
"$bt" fill "$part" "$root_off" "$root_len" "$seed" stale-root
"$bt" fill "$part" "$swap_off" "$swap_len" "$seed" stale-swap

# ---- GPT.  (Not sgdisk -q: sgdisk 1.0.9 then writes nothing, exit 0.)
sgdisk -o -U "$("$bt" uuid "$seed" disk)" \
    -n "1:${esp_start}M:+${esp_mib}M" -t 1:ef00 -c 1:"EFI System" \
    -u "1:$("$bt" uuid "$seed" part1)" \
    -n "2:${root_start}M:+${root_mib}M" -t 2:8304 -c 2:root \
    -u "2:$("$bt" uuid "$seed" part2)" \
    -n "3:${swap_start}M:+${swap_mib}M" -t 3:8200 -c 3:swap \
    -u "3:$("$bt" uuid "$seed" part3)" \
    "$part" >/dev/null

# ---- p1: ESP.  ~20 % of the partition in files (53.5 MB at 4 GiB).
log "ESP ($esp_mib MiB)"
esp_budget=$(( esp_len / 5 ))
"$bt" esp "$tmp/esp" "$seed" "$esp_budget" >"$tmp/esp.count"
find "$tmp/esp" -exec touch -h -d "@$epoch" {} +
truncate -s "$esp_len" "$tmp/esp.img"
volid=$("$bt" uuid "$seed" esp | cut -c1-8)
SOURCE_DATE_EPOCH=$epoch mkfs.fat -F 32 -n EFI -i "$volid" --invariant \
    "$tmp/esp.img" >/dev/null
SOURCE_DATE_EPOCH=$epoch MTOOLS_SKIP_CHECK=1 \
    mcopy -s -p -m -Q -i "$tmp/esp.img" "$tmp/esp/"* ::/
dd if="$tmp/esp.img" of="$part" bs=1M seek="$esp_start" conv=notrunc,sparse \
    status=none

# ---- p2: ext4 root.  Budgets per kind, as shares of the partition; with
# the filesystem's own metadata (journal, inode tables) ~40 % is in use.
log "root tree"
root_dir=$tmp/root
mkdir -p "$root_dir"
os_budget=$((   root_len * 124 / 1000 ))
rand_budget=$(( root_len * 120 / 1000 ))
text_budget=$(( root_len * 100 / 1000 ))
db_budget=$((   root_len *  40 / 1000 ))
# Real OS files: regular files under 32 MiB from /usr, a hashed sample.
find /usr -xdev -type f -size -32M -printf '%s\t%p\n' 2>/dev/null |
    "$bt" pick "$seed" "$os_budget" 2>"$tmp/pick.log" >"$tmp/os.list"
{ tar -C / --null --no-recursion -T "$tmp/os.list" -cf - 2>/dev/null || true; } |
    tar -C "$root_dir" -xf -
"$bt" tree "$root_dir" "$seed" "$rand_budget" "$text_budget" "$db_budget" \
    >"$tmp/tree.count"
mkdir -p "$root_dir"/{boot/efi,dev,proc,sys,run,tmp,mnt,media,opt,srv,root} \
    "$root_dir"/var/{tmp,spool,mail} "$root_dir"/home/alice/.config
chmod 1777 "$root_dir/tmp" "$root_dir/var/tmp"
chmod 0700 "$root_dir/root"
find "$root_dir" -exec touch -h -d "@$epoch" {} +

log "mke2fs"
root_blocks=$(( root_len / 4096 ))
E2FSPROGS_FAKE_TIME=$epoch mke2fs -q -F -t ext4 -b 4096 -L root \
    -U "$("$bt" uuid "$seed" ext4)" \
    -E "offset=$root_off,nodiscard,lazy_itable_init=0,lazy_journal_init=0,hash_seed=$("$bt" uuid "$seed" htree),root_owner=0:0" \
    -d "$root_dir" "$part" "$root_blocks"
# mke2fs -d copies each inode's ctime from the source tree, where it is the
# time this script ran and cannot be set; pin it for a reproducible image.
{
    echo "sif / ctime @$epoch"
    (cd "$root_dir" && find . -mindepth 1 -printf '%P\n') |
        grep -v '["\\]' | sed "s|.*|sif \"/&\" ctime @$epoch|"
} >"$tmp/debugfs.cmds"
E2FSPROGS_FAKE_TIME=$epoch debugfs -w -f "$tmp/debugfs.cmds" \
    "$part?offset=$root_off" >/dev/null 2>"$tmp/debugfs.log" || {
    cat "$tmp/debugfs.log" >&2; die "debugfs failed"; }

# ---- p3: swap.  mkswap writes only the first page (boot bits zeroed,
# header, signature); make it on a sparse file of the right size and copy
# that page over the garbage.
log "swap"
truncate -s "$swap_len" "$tmp/swap.img"
mkswap -q -L swap -U "$("$bt" uuid "$seed" swap)" "$tmp/swap.img" >/dev/null
dd if="$tmp/swap.img" of="$part" bs=4096 count=1 seek=$(( swap_off / 4096 )) \
    conv=notrunc status=none

# ---- Checks.
log "checks"
# sgdisk -v says "No problems found" of a disk with no GPT at all (it
# makes one in memory): sfdisk must see the three partitions.
[ "$(sfdisk --json "$part" 2>/dev/null | jq '.partitiontable.partitions | length')" = 3 ] ||
    die "the disk has no GPT with 3 partitions"
sgdisk -v "$part" | grep -q 'No problems found' || {
    sgdisk -v "$part" >&2; die "sgdisk -v found problems"; }
e2fsck -fn "$part?offset=$root_off" >"$tmp/e2fsck.log" 2>&1 || {
    cat "$tmp/e2fsck.log" >&2; die "e2fsck found problems"; }
dd if="$part" of="$tmp/esp.check" bs=1M skip="$esp_start" count="$esp_mib" \
    status=none
fsck.fat -n "$tmp/esp.check" >"$tmp/fsck.fat.log" 2>&1 || {
    cat "$tmp/fsck.fat.log" >&2; die "fsck.fat found problems"; }
[ "$(blkid -p -o value -s TYPE -O "$swap_off" "$part")" = swap ] ||
    die "blkid does not see the swap signature"
[ "$(blkid -p -o value -s TYPE -O "$root_off" "$part")" = ext4 ] ||
    die "blkid does not see ext4 in p2"

# ---- Stats.
log "stats"
read -r esp_files esp_bytes <"$tmp/esp.count"
os_files=$(tr -cd '\0' <"$tmp/os.list" | wc -c)
os_bytes=$(cd "$root_dir" && tr '\0' '\n' <"$tmp/os.list" |
           xargs -d '\n' stat -c %s | awk '{ s += $1 } END { print s + 0 }')
read -r gen_files gen_bytes <"$tmp/tree.count"
root_files=$(find "$root_dir" -type f | wc -l)
root_bytes=$(find "$root_dir" -type f -printf '%s\n' |
             awk '{ s += $1 } END { print s + 0 }')
dumpe2fs -h "$part?offset=$root_off" 2>/dev/null >"$tmp/dumpe2fs"
bcount=$(awk -F: '/^Block count:/ { print $2 + 0 }' "$tmp/dumpe2fs")
bfree=$(awk -F: '/^Free blocks:/ { print $2 + 0 }' "$tmp/dumpe2fs")
ext4_used=$(( (bcount - bfree) * 4096 ))
ext4_free=$(( bfree * 4096 ))
esp_free=$(MTOOLS_SKIP_CHECK=1 mdir -i "$tmp/esp.img" ::/ |
           awk '/bytes free/ { gsub(/ /, "", $0); sub(/bytesfree/, ""); print }')
esp_used=$(( esp_len - esp_free ))
read -r nz_blocks all_blocks < <("$bt" nonzero "$part")

pct () { awk -v a="$1" -v b="$size" 'BEGIN { printf "%.1f %%", 100 * a / b }'; }
{
    echo "# $(basename "$out"): made by tests/bench/make-guest-disk.sh $1 (seed $seed)"
    echo "# bytes, and % of the virtual disk size"
    printf 'virtual_size:        %14d  %s\n' "$size" "$(pct "$size")"
    printf 'partition_esp:       %14d  %s  FAT32 at %d MiB\n' "$esp_len" "$(pct "$esp_len")" "$esp_start"
    printf 'partition_root:      %14d  %s  ext4 at %d MiB\n' "$root_len" "$(pct "$root_len")" "$root_start"
    printf 'partition_swap:      %14d  %s  swap at %d MiB\n' "$swap_len" "$(pct "$swap_len")" "$swap_start"
    printf 'file_bytes:          %14d  %s  %d files (ext4 %d, ESP %d)\n' \
        $(( root_bytes + esp_bytes )) "$(pct $(( root_bytes + esp_bytes )))" \
        $(( root_files + esp_files )) "$root_files" "$esp_files"
    printf '  os_files_from_usr: %14d  %s  %d files\n' "$os_bytes" "$(pct "$os_bytes")" "$os_files"
    printf '  generated_files:   %14d  %s  %d files (media, text, database pages)\n' \
        "$gen_bytes" "$(pct "$gen_bytes")" "$gen_files"
    printf '  esp_files:         %14d  %s  %d files\n' "$esp_bytes" "$(pct "$esp_bytes")" "$esp_files"
    printf 'fs_blocks_in_use:    %14d  %s  ext4 incl. metadata and journal + ESP\n' \
        $(( ext4_used + esp_used )) "$(pct $(( ext4_used + esp_used )))"
    printf '  ext4_in_use:       %14d  %s  %s of the partition\n' "$ext4_used" "$(pct "$ext4_used")" \
        "$(awk -v a="$ext4_used" -v b="$root_len" 'BEGIN { printf "%.1f %%", 100 * a / b }')"
    printf '  esp_in_use:        %14d  %s\n' "$esp_used" "$(pct "$esp_used")"
    printf 'stale_garbage:       %14d  %s  ext4 free blocks + swap body\n' \
        $(( ext4_free + swap_len - 4096 )) "$(pct $(( ext4_free + swap_len - 4096 )))"
    printf 'nonzero_4k_blocks:   %14d  %s  %d of %d blocks\n' $(( nz_blocks * 4096 )) \
        "$(pct $(( nz_blocks * 4096 )))" "$nz_blocks" "$all_blocks"
} >"$out.stats.part"

mv "$part" "$out"
mv "$out.stats.part" "$out.stats"
log "done in $(( $(date +%s) - t0 )) s: $out"
cat "$out.stats"
