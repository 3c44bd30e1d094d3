# Shared helpers for the partition/LVM map tests; source after functions.sh.
#
#   loop_at FILE OFFSET SIZE   sets LOOP to a loop device over that byte
#                              range of FILE (detached when the test exits)
#   mkswap_at FILE OFFSET SIZE LABEL
#   ranges.py                  $RANGES: checks on used ranges (see it)
# shellcheck shell=sh

RANGES=$(dirname "$0")/ranges.py

# Cleanup detaches every loop device still over one of the test's files
# (never a device number that may have been reused by someone else).
loop_at () {
    cleanup_fn "detach_loops_of '$1'"
    LOOP=$(losetup -f --show -o "$2" --sizelimit "$3" "$1") ||
        fail "losetup $1 at $2"
}

detach_loops_of () {
    losetup -n -O NAME -j "$1" | while read -r _l; do
        losetup -d "$_l"
    done
}

# mkswap_at FILE OFFSET SIZE LABEL: a swap area there (only its header
# page is written; the rest keeps whatever was there); SWAP_UUID is its
# UUID as blkid reads it.  (Not in a subshell: the loop device must be
# registered for cleanup in the test's own shell.)
mkswap_at () {
    loop_at "$1" "$2" "$3"
    mkswap -L "$4" "$LOOP" >/dev/null 2>&1 || fail "mkswap on $LOOP"
    SWAP_UUID=$(blkid -p -o value -s UUID "$LOOP")
    losetup -d "$LOOP"
}
