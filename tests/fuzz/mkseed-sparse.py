#!/usr/bin/python3
# mkseed-sparse.py [--xfs-logblocks N] IMG SEED: write the non-zero
# 512-byte sectors of IMG as the sparse-segment input of fuzz-xfs.c (be32
# sector, be16 length, data).  --xfs-logblocks shrinks the XFS log the
# superblock claims (fixing its CRC on v5, blanking the rest of the old
# log), so that each fuzz run does not read megabytes of log blocks; the
# unmount record mkfs.xfs or xfs_repair -L wrote is in the first few blocks
# and stays valid.
import struct, sys

args = sys.argv[1:]
logblocks = None
if args[0] == "--xfs-logblocks":
    logblocks = int(args[1])
    args = args[2:]
with open(args[0], "rb") as f:
    data = bytearray(f.read())


def crc32c(buf):
    crc = 0xffffffff
    for b in buf:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


if logblocks is not None:
    # Blank the part of the log past the new end.
    bs = struct.unpack_from(">I", data, 4)[0]
    logstart = struct.unpack_from(">Q", data, 48)[0]
    agblocks = struct.unpack_from(">I", data, 84)[0]
    agblklog = data[124]
    old = struct.unpack_from(">I", data, 96)[0]
    lin = (logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1))
    a, b = (lin + logblocks) * bs, (lin + old) * bs
    data[a:b] = bytes(b - a)
    struct.pack_into(">I", data, 96, logblocks)
    if struct.unpack_from(">H", data, 100)[0] & 0xf == 5:
        sectsize = struct.unpack_from(">H", data, 102)[0]
        struct.pack_into("<I", data, 224, 0)
        struct.pack_into("<I", data, 224, crc32c(data[:sectsize]))
out = bytearray()
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
with open(args[1], "wb") as f:
    f.write(out)
print(len(out))
