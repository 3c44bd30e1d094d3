#!/bin/sh
# Every subcommand answers --help with its usage on stdout and exit 0;
# wrong usage exits 1 with the usage on stderr.
. "$(dirname "$0")/../functions.sh"

for cmd in info convert compare check; do
    "$VMCONVERT" "$cmd" --help >"$T/out" || fail "$cmd --help failed"
    grep -q "^Usage: vmconvert $cmd" "$T/out" || fail "$cmd --help: no usage"
done
"$VMCONVERT" --help | grep -q '^Usage: vmconvert COMMAND' || fail "--help"
"$VMCONVERT" --version | grep -Eq '^vmconvert [0-9]' || fail "--version"

# Wrong usage: status 1 (compare: 2, as qemu-img), usage on stderr.
for args in "" "info" "convert" "convert a" "check" "bogus" "info --bogus x"; do
    set +e
    # shellcheck disable=SC2086 # the words are separate arguments
    "$VMCONVERT" $args >"$T/out" 2>"$T/err"
    st=$?
    set -e
    [ "$st" -eq 1 ] || fail "'$args': status $st, expected 1"
    [ -s "$T/err" ] || fail "'$args': nothing on stderr"
    [ ! -s "$T/out" ] || fail "'$args': output on stdout"
done
set +e
"$VMCONVERT" compare onlyone >/dev/null 2>&1
st=$?
set -e
[ "$st" -eq 2 ] || fail "compare with one argument: status $st, expected 2"

# convert needs -O; -o help lists the format's options.
set +e
"$VMCONVERT" convert a b 2>"$T/err"
st=$?
set -e
[ "$st" -eq 1 ] && grep -q Usage "$T/err" || fail "convert without -O"
"$VMCONVERT" convert -O raw -o help >"$T/out"
grep -q "Creation options for raw" "$T/out" || fail "-o help"
expect_error 1 "unknown image format \"nope\"" "$VMCONVERT" convert -O nope -o help
exit 0
