#!/usr/bin/python3
# wipe-unused.py IMG FSUSED-OUTPUT [OFFSET:LEN]: overwrite every byte of IMG
# that is not inside a "range START END" line of fsused's output with a
# pattern, so that a test can prove no needed block was left out of the used
# ranges; prints the bytes overwritten.  OFFSET:LEN is overwritten too: a
# control, which the same test must catch.
import sys

img, out = sys.argv[1], sys.argv[2]
ranges = []
with open(out) as f:
    for line in f:
        w = line.split()
        if w and w[0] == "range":
            ranges.append((int(w[1]), int(w[2])))
ranges.sort()
if len(sys.argv) > 3:
    x, n = map(int, sys.argv[3].split(":"))
    cut = []
    for s, e in ranges:
        cut += [r for r in ((s, min(e, x)), (max(s, x + n), e)) if r[0] < r[1]]
    ranges = cut
pattern = bytes([0x5a, 0xc3, 0x96, 0x3c]) * (1 << 18)   # 1 MiB
with open(img, "r+b") as f:
    f.seek(0, 2)
    size = f.tell()
    pos = 0
    wiped = 0
    for start, end in ranges + [(size, size)]:
        while pos < start:
            n = min(start - pos, len(pattern))
            f.seek(pos)
            f.write(pattern[:n])
            pos += n
            wiped += n
        pos = max(pos, end)
print(wiped)
