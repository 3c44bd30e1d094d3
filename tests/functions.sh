# Shared setup for shell tests: source it first, then say what you need.
#
#   . "$(dirname "$0")/../functions.sh"
#   requires qemu-img --version
#   ... use $T (a temporary directory) and $VMCONVERT ...
#
# Exit statuses follow automake: 0 pass, 77 skip (a tool is missing), any
# other failure.  Everything registered with cleanup_fn runs at exit, also
# when the test fails, and $T is removed.
# shellcheck shell=sh

set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
VMCONVERT=${VMCONVERT:-$top/build/vmconvert}
TOOLS=${TOOLS:-$top/build/tests/tools}
export VMCONVERT TOOLS

T=$(mktemp -d "${TMPDIR:-/tmp}/vmc-test.XXXXXX")
_cleanups=""

cleanup_fn () {
    _cleanups="$*
$_cleanups"
}

_run_cleanups () {
    _status=$?
    set +e
    printf '%s\n' "$_cleanups" | while IFS= read -r _c; do
        [ -n "$_c" ] && eval "$_c"
    done
    [ -n "${KEEP_T:-}" ] || rm -rf "$T"
    exit "$_status"
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

# requires CMD ARGS...: skip the test unless CMD ARGS runs successfully.
requires () {
    if ! "$@" >/dev/null 2>&1; then
        echo "$0: skipped: needs: $*"
        exit 77
    fi
}

fail () {
    echo "FAIL: $*" >&2
    exit 1
}

# hash_of FILE...: one sha256 line per file, for before/after checks.
hash_of () {
    sha256sum "$@"
}

# expect_error STATUS MESSAGE CMD ARGS...: CMD must exit with STATUS and
# print MESSAGE (a grep -E pattern) on stderr, in one line.
expect_error () {
    _want=$1 _msg=$2
    shift 2
    set +e
    "$@" >"$T/.out" 2>"$T/.err"
    _got=$?
    set -e
    if [ "$_got" -ne "$_want" ]; then
        cat "$T/.err" >&2
        fail "$*: exit status $_got, expected $_want"
    fi
    if ! grep -Eq -- "$_msg" "$T/.err"; then
        cat "$T/.err" >&2
        fail "$*: stderr does not match \"$_msg\""
    fi
    if [ "$(wc -l <"$T/.err")" -gt 1 ]; then
        cat "$T/.err" >&2
        fail "$*: more than one line of error output"
    fi
}

# qcompare A B: qemu-img compare must say identical.
qcompare () {
    qemu-img compare "$@" >/dev/null || fail "qemu-img compare $*: differ"
}
