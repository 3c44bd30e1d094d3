#!/usr/bin/python3
# mapped-ref.py SRC.raw MAP.json OUT.raw: OUT is SRC with every byte outside
# the disk's used ranges (vmconvert map --json) made a hole: what a mapped
# convert or send must produce, for qemu-img compare.  (The map itself is
# judged against the filesystems' own tools by tests/part/test-map-guests.sh.)
import ctypes
import json
import os
import shutil
import subprocess
import sys

src, mapfile, out = sys.argv[1:4]
with open(mapfile) as f:
    disk = json.load(f)["disks"][0]
size = disk["size"]
used = disk["used_ranges"]
subprocess.run(["cp", "--sparse=always", src, out], check=True)
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong,
                           ctypes.c_longlong]
PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
fd = os.open(out, os.O_RDWR)
pos = 0
for start, end in used + [[size, size]]:
    if start > pos:
        if libc.fallocate(fd, PUNCH, pos, start - pos) != 0:
            sys.exit("fallocate: " + os.strerror(ctypes.get_errno()))
    pos = max(pos, end)
os.close(fd)
