#!/usr/bin/python3
# mkseed-sparse.py IMG SEED: write the non-zero 512-byte sectors of IMG as
# the sparse-segment input of fuzz-xfs.c (be32 sector, be16 length, data).
import struct, sys

out = bytearray()
with open(sys.argv[1], "rb") as f:
    data = f.read()
zero = bytes(512)
i, n = 0, len(data) // 512
while i < n:
    if data[i * 512:(i + 1) * 512] == zero:
        i += 1
        continue
    j = i
    while j < n and j - i < 127 and data[j * 512:(j + 1) * 512] != zero:
        j += 1
    out += struct.pack(">IH", i, (j - i) * 512) + data[i * 512:j * 512]
    i = j
with open(sys.argv[2], "wb") as f:
    f.write(out)
print(len(out))
