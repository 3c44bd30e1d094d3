#!/usr/bin/python3
# disk-digest.py RAWFILE: the disk digest of network/PROTOCOL.md, computed
# independently of vmconvert: SHA-256 over the XXH3-128 (canonical,
# big-endian) of each 1 MiB block of the virtual disk.
import hashlib
import sys

import xxhash

h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    while True:
        block = f.read(1 << 20)
        if not block:
            break
        h.update(xxhash.xxh3_128(block).digest())
print(h.hexdigest())
