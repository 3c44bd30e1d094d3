#!/bin/sh
# The read x write matrix again, with the AddressSanitizer + UBSan build of
# vmconvert: every reader and writer on real images, with memory errors,
# leaks and undefined behaviour fatal.
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ -x "$top/build/asan/vmconvert" ] || { echo "needs the ASan build"; exit 77; }
VMCONVERT=$top/build/asan/vmconvert exec "$here/test-matrix.sh"
