#!/usr/bin/python3
# ntfs-patch.py IMG ACTION: damage an NTFS image in place the way a crash
# or a bad disk would, for tests/fs/test-fs-ntfs.sh.  Only the few
# structures needed are located (boot sector, MFT records in the first
# $MFT run, the first run of an unnamed $DATA attribute).
#
#   dirty         set VOLUME_IS_DIRTY in $Volume's $VOLUME_INFORMATION
#   fixup N       break the update sequence of MFT record N
#   logfile FLAGS write a restart page into $LogFile whose restart area
#                 has one client in use and the given flags (0: unclean,
#                 2: clean)
import struct
import sys


def boot(f):
    f.seek(0)
    b = f.read(512)
    assert b[3:11] == b"NTFS    "
    bps = struct.unpack_from("<H", b, 0x0B)[0]
    spc = b[0x0D]
    cluster = bps * spc
    mft_lcn = struct.unpack_from("<Q", b, 0x30)[0]
    boot.mirr_lcn = struct.unpack_from("<Q", b, 0x38)[0]
    cpm = struct.unpack_from("<b", b, 0x40)[0]
    rec = cpm * cluster if cpm > 0 else 1 << -cpm
    return cluster, mft_lcn, rec


def record_offset(f, n):
    cluster, mft_lcn, rec = boot(f)
    return mft_lcn * cluster + n * rec, rec


def read_record(f, n):
    off, rec = record_offset(f, n)
    f.seek(off)
    b = bytearray(f.read(rec))
    assert b[0:4] == b"FILE"
    uo, uc = struct.unpack_from("<HH", b, 4)
    for i in range(1, uc):
        b[i * 512 - 2:i * 512] = b[uo + 2 * i:uo + 2 * i + 2]
    return off, b


def find_attr(b, atype):
    off = struct.unpack_from("<H", b, 0x14)[0]
    while True:
        t, length = struct.unpack_from("<II", b, off)
        if t == 0xFFFFFFFF:
            raise SystemExit("attribute 0x%x not found" % atype)
        if t == atype and b[off + 9] == 0:
            return off
        off += length


def first_run_lcn(b, a):
    mp = struct.unpack_from("<H", b, a + 0x20)[0]
    h = b[a + mp]
    ls, os_ = h & 15, h >> 4
    return int.from_bytes(b[a + mp + 1 + ls:a + mp + 1 + ls + os_], "little",
                          signed=True)


def dirty(path):
    with open(path, "r+b") as f:
        off, b = read_record(f, 3)
        a = find_attr(b, 0x70)
        vo = struct.unpack_from("<H", b, a + 0x14)[0]
        pos = a + vo + 0x0A
        assert pos % 512 < 510
        flags = struct.unpack_from("<H", b, pos)[0] | 1
        # $MFTMirr holds a copy of records 0-3.
        cluster, mft_lcn, rec = boot(f)
        for base in (off, boot.mirr_lcn * cluster + 3 * rec):
            f.seek(base + pos)
            f.write(struct.pack("<H", flags))


def fixup(path, n):
    with open(path, "r+b") as f:
        off, _ = record_offset(f, n)
        f.seek(off + 510)
        v = struct.unpack("<H", f.read(2))[0]
        f.seek(off + 510)
        f.write(struct.pack("<H", v ^ 0x5A5A))


def logfile(path, flags):
    with open(path, "r+b") as f:
        cluster = boot(f)[0]
        _, b = read_record(f, 2)
        a = find_attr(b, 0x80)
        lcn = first_run_lcn(b, a)
        size = struct.unpack_from("<Q", b, a + 0x30)[0]
        page = bytearray(4096)
        page[0:4] = b"RSTR"
        # usa offset, usa count (1 + 4096/512), chkdsk lsn, system and log
        # page sizes, restart area offset, minor and major version 1.1
        struct.pack_into("<HHQIIHhh", page, 4, 0x1E, 9, 0, 4096, 4096,
                         0x30, 1, 1)
        ra = 0x30
        # current lsn, log clients, free list, in-use list, flags,
        # seq number bits, restart area length, client array offset,
        # file size, last lsn data length, record header length,
        # log page data offset, open count
        # (sequence number bits + bits of the file size = 67)
        struct.pack_into("<QHHHHIHHqIHHI", page, ra, 0x1000, 1, 0xFFFF, 0,
                         flags, 67 - size.bit_length(), 0x40 + 0xA0, 0x40, size, 0, 0x30, 0x40,
                         1)
        c = ra + 0x40
        # oldest lsn, client restart lsn, prev, next, seq, reserved,
        # name length (bytes), name
        struct.pack_into("<QQHHH6xI", page, c, 0x1000, 0x1000, 0xFFFF,
                         0xFFFF, 0, 8)
        page[c + 0x20:c + 0x28] = "NTFS".encode("utf-16-le")
        usn = 1
        struct.pack_into("<H", page, 0x1E, usn)
        for i in range(1, 9):
            page[0x1E + 2 * i:0x20 + 2 * i] = page[i * 512 - 2:i * 512]
            struct.pack_into("<H", page, i * 512 - 2, usn)
        for copy in range(2):
            f.seek(lcn * cluster + copy * 4096)
            f.write(page)


def main():
    path, action = sys.argv[1], sys.argv[2]
    if action == "dirty":
        dirty(path)
    elif action == "fixup":
        fixup(path, int(sys.argv[3]))
    elif action == "logfile":
        logfile(path, int(sys.argv[3]))
    else:
        raise SystemExit("unknown action " + action)


if __name__ == "__main__":
    main()
