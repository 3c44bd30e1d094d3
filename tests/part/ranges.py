#!/usr/bin/python3
"""Checks on the used ranges of `vmconvert map --json` (stdin or a file).

  ranges.py used MAP.json [DISK]          print "START END" lines
  ranges.py expect MAP.json DISK R...     the disk's used ranges must be
                                          exactly the ranges R ("S:E"),
                                          after rounding them outwards to
                                          4 KiB and merging
  ranges.py covers MAP.json DISK R...     every R must be inside the used
                                          ranges
  ranges.py avoids MAP.json DISK R...     no R may touch a used range
  ranges.py copied MAP.json SRC OUT       OUT (raw) equals SRC (raw) inside
                                          the used ranges of disk 0 and is
                                          zero outside them
"""
import json
import sys

A = 4096


def load(path):
    with open(path) as f:
        return json.load(f)


def disk_ranges(m, disk):
    d = m["disks"][int(disk)]
    return [tuple(r) for r in d["used_ranges"]], d["size"]


def parse(args):
    out = []
    for a in args:
        s, e = a.split(":")
        out.append((int(s), int(e)))
    return out


def merge(rs, size):
    rs = sorted((s // A * A, min(-(-e // A) * A, size)) for s, e in rs if e > s)
    out = []
    for s, e in rs:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def inside(rs, s, e):
    return any(a <= s and e <= b for a, b in rs)


def touches(rs, s, e):
    return any(a < e and s < b for a, b in rs)


def main():
    cmd, m = sys.argv[1], load(sys.argv[2])
    if cmd == "used":
        rs, _ = disk_ranges(m, sys.argv[3] if len(sys.argv) > 3 else 0)
        for s, e in rs:
            print(s, e)
        return 0
    if cmd in ("expect", "covers", "avoids"):
        rs, size = disk_ranges(m, sys.argv[3])
        want = parse(sys.argv[4:])
        if cmd == "expect":
            w = merge(want, size)
            if w != rs:
                print("used ranges differ:\n  got    %s\n  expect %s" % (rs, w))
                return 1
        elif cmd == "covers":
            bad = [r for r in want if not inside(rs, *r)]
            if bad:
                print("not covered by used ranges:", bad, "used:", rs)
                return 1
        else:
            bad = [r for r in want if touches(rs, *r)]
            if bad:
                print("unexpectedly used:", bad, "used:", rs)
                return 1
        return 0
    if cmd == "copied":
        rs, size = disk_ranges(m, 0)
        src, out = open(sys.argv[3], "rb"), open(sys.argv[4], "rb")
        pos = 0
        chunk = 1 << 20
        for s, e in rs + [(size, size)]:
            # Unused [pos, s): zeros in OUT.
            out.seek(pos)
            while pos < s:
                n = min(chunk, s - pos)
                b = out.read(n)
                if b.count(0) != len(b) or len(b) != n:
                    print("unused range at %d..%d is not zero" % (pos, s))
                    return 1
                pos += n
            src.seek(s)
            out.seek(s)
            p = s
            while p < e:
                n = min(chunk, e - p)
                if src.read(n) != out.read(n):
                    print("used range %d..%d differs near %d" % (s, e, p))
                    return 1
                p += n
            pos = max(pos, e)
        return 0
    print("unknown command", cmd)
    return 2


sys.exit(main())
