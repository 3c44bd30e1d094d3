/* SPDX-License-Identifier: MIT */
/*
 * mk-vhdx-log: make VHDX test images whose log needs replay, and read
 * VHDX images to raw with a reader independent of converter/formats.
 *
 *   mk-vhdx-log log [-W] [-c KIND] VHDX RAW
 *       VHDX is a clean dynamic image (made by qemu-img from RAW, with at
 *       least one block present and one block absent).  Both files are
 *       changed in place: VHDX gets a log sequence ([MS-VHDX] 2.3) that a
 *       reader must replay, and the header that makes it current; RAW gets
 *       the content the replayed image must show.  The sequence:
 *         entry 1: a data descriptor rewriting 4 KiB inside a present block;
 *         entry 2: a new block appended to the file (written directly, as
 *                  Hyper-V writes payload), made present by a data
 *                  descriptor on the BAT page (LastFileOffset grows);
 *         entry 3: a zero descriptor (8 KiB inside the present block), and
 *                  two data descriptors, one rewriting entry 1's 4 KiB again
 *                  (the later write wins);
 *       followed by a torn entry 4 (bad checksum: must be ignored) that
 *       would zero the whole block, and a stale entry of an older log GUID
 *       with a valid checksum (must be ignored too).
 *       -W places the sequence so that entry 2 wraps around the end of the
 *       log.  -c KIND makes the log corrupt instead, for refusal tests:
 *         flushed  the head's FlushedFileOffset is past the end of the file
 *         header   entry 3 also writes into header 1
 *         desc     a descriptor has an unknown signature (checksum valid)
 *         torn     entry 1 is torn, so no sequence is valid (nothing to
 *                  replay; RAW is left as it was)
 *   mk-vhdx-log raw VHDX OUT
 *       Write the guest content of a clean, non-differencing VHDX to OUT,
 *       for images qemu-img cannot read (4096-byte logical sectors).
 *   mk-vhdx-log resum VHDX OFFSET
 *       Recompute the checksum of the header (OFFSET 64K or 128K) or region
 *       table (192K or 256K) at OFFSET, after a test changed a field in it.
 *
 * The code trusts its input (it is given images qemu-img or vmconvert
 * made) and checks just enough to fail loudly rather than mislead.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../converter/lib/byteorder.h"
#include "../../converter/lib/crc32c.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define SECTOR 4096u

struct vhdx {
    int fd;
    uint64_t file_size;
    unsigned cur;               /* current header: 0 or 1 */
    unsigned char header[4096];
    uint64_t log_off, log_len;
    uint64_t bat_off, md_off;
    uint32_t block_size, lss;
    uint64_t size, nblocks, chunk_ratio;
};

static void __attribute__ ((noreturn))
die (const char *msg)
{
    fprintf (stderr, "mk-vhdx-log: %s\n", msg);
    exit (1);
}

static void
rd (int fd, void *buf, size_t n, uint64_t off)
{
    if (pread (fd, buf, n, (off_t) off) != (ssize_t) n) {
        die ("short read");
    }
}

static void
wr (int fd, const void *buf, size_t n, uint64_t off)
{
    if (pwrite (fd, buf, n, (off_t) off) != (ssize_t) n) {
        die ("short write");
    }
}

static uint32_t
checksum (const unsigned char *buf, size_t len)
{
    static const unsigned char zero[4];
    uint32_t c = crc32c (0, buf, 4);

    c = crc32c (c, zero, 4);
    return crc32c (c, buf + 8, len - 8);
}

static const unsigned char guid_bat[16] = {
    0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
    0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08 };
static const unsigned char guid_md[16] = {
    0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B,
    0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E };
static const unsigned char guid_params[16] = {
    0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D,
    0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B };
static const unsigned char guid_size[16] = {
    0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48,
    0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8 };
static const unsigned char guid_lss[16] = {
    0x1D, 0xBF, 0x41, 0x81, 0x6F, 0xA9, 0x09, 0x47,
    0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F };

static void
vhdx_open (struct vhdx *v, const char *path, int flags)
{
    unsigned char h[2][4096], rt[65536], md[65536];
    struct stat st;
    uint32_t i, n;
    bool ok[2];

    v->fd = open (path, flags);
    if (v->fd == -1 || fstat (v->fd, &st) == -1) {
        perror (path);
        exit (1);
    }
    v->file_size = (uint64_t) st.st_size;
    rd (v->fd, h[0], 4096, 64 * KIB);
    rd (v->fd, h[1], 4096, 128 * KIB);
    for (i = 0; i < 2; i++) {
        ok[i] = memcmp (h[i], "head", 4) == 0 &&
            get_le32 (h[i] + 4) == checksum (h[i], 4096);
    }
    if (!ok[0] && !ok[1]) {
        die ("no valid header");
    }
    v->cur = (!ok[1] || (ok[0] && get_le64 (h[0] + 8) > get_le64 (h[1] + 8)))
        ? 0 : 1;
    memcpy (v->header, h[v->cur], 4096);
    for (i = 48; i < 64; i++) {
        if (v->header[i] != 0) {
            die ("the log of the input is not clean");
        }
    }
    v->log_len = get_le32 (v->header + 68);
    v->log_off = get_le64 (v->header + 72);
    rd (v->fd, rt, sizeof rt, 192 * KIB);
    n = get_le32 (rt + 8);
    for (i = 0; i < n && i < 2047; i++) {
        if (memcmp (rt + 16 + 32 * i, guid_bat, 16) == 0) {
            v->bat_off = get_le64 (rt + 32 + 32 * i);
        }
        if (memcmp (rt + 16 + 32 * i, guid_md, 16) == 0) {
            v->md_off = get_le64 (rt + 32 + 32 * i);
        }
    }
    if (v->bat_off == 0 || v->md_off == 0) {
        die ("no BAT or metadata region");
    }
    rd (v->fd, md, sizeof md, v->md_off);
    n = get_le16 (md + 10);
    for (i = 0; i < n && i < 2047; i++) {
        const unsigned char *e = md + 32 + 32 * i;
        unsigned char item[8];

        rd (v->fd, item, 8, v->md_off + get_le32 (e + 16));
        if (memcmp (e, guid_params, 16) == 0) {
            v->block_size = get_le32 (item);
            if (get_le32 (item + 4) & 2) {
                die ("differencing images are not handled");
            }
        }
        else if (memcmp (e, guid_size, 16) == 0) {
            v->size = get_le64 (item);
        }
        else if (memcmp (e, guid_lss, 16) == 0) {
            v->lss = get_le32 (item);
        }
    }
    if (v->block_size == 0 || v->size == 0 || v->lss == 0) {
        die ("metadata items missing");
    }
    v->chunk_ratio = (8ull * MIB) * v->lss / v->block_size;
    v->nblocks = (v->size + v->block_size - 1) / v->block_size;
}

static uint64_t
bat_index (const struct vhdx *v, uint64_t blk)
{
    return blk + blk / v->chunk_ratio;
}

static uint64_t
bat_get (const struct vhdx *v, uint64_t blk)
{
    unsigned char b[8];

    rd (v->fd, b, 8, v->bat_off + 8 * bat_index (v, blk));
    return get_le64 (b);
}

/* ---- raw: an independent reader ------------------------------------ */

static int
cmd_raw (const char *in, const char *out)
{
    struct vhdx v = { 0 };
    unsigned char *buf;
    uint64_t blk, e, len;
    int ofd;

    vhdx_open (&v, in, O_RDONLY);
    ofd = open (out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (ofd == -1 || ftruncate (ofd, (off_t) v.size) == -1) {
        perror (out);
        return 1;
    }
    buf = malloc (v.block_size);
    if (buf == NULL) {
        die ("malloc");
    }
    for (blk = 0; blk < v.nblocks; blk++) {
        e = bat_get (&v, blk);
        len = v.size - blk * v.block_size;
        if (len > v.block_size) {
            len = v.block_size;
        }
        switch (e & 7) {
        case 0: case 1: case 2: case 3:
            break;
        case 6:
            rd (v.fd, buf, len, e & ~(MIB - 1));
            wr (ofd, buf, len, blk * v.block_size);
            break;
        default:
            die ("unexpected block state");
        }
    }
    free (buf);
    close (ofd);
    close (v.fd);
    return 0;
}

/* ---- log: build a log sequence -------------------------------------- */

struct desc {
    bool zero;
    uint64_t file_off;
    uint64_t zero_len;
    unsigned char data[SECTOR];
};

struct entry {
    uint64_t seq;
    uint32_t tail;              /* log offset of the sequence's first entry */
    uint64_t flushed, last;
    unsigned ndesc;
    struct desc d[4];
    bool torn;
    const unsigned char *guid;
};

static unsigned char log_guid[16] = {
    0x4c, 0x4f, 0x47, 0x21, 0x11, 0x22, 0x33, 0x44,
    0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8 };
static unsigned char old_guid[16] = {
    0x01, 0x1d, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44,
    0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8 };

static uint32_t
entry_sectors (const struct entry *e)
{
    unsigned i, ndata = 0;

    for (i = 0; i < e->ndesc; i++) {
        ndata += !e->d[i].zero;
    }
    return (uint32_t) ((64 + 32 * e->ndesc + SECTOR - 1) / SECTOR + ndata);
}

/* Serialize E into the circular log image LOG (LEN bytes) at POS. */
static void
put_entry (unsigned char *log, uint64_t len, uint64_t pos,
           const struct entry *e)
{
    uint32_t nsec = entry_sectors (e), k, hs;
    unsigned char *buf = calloc (nsec, SECTOR), *h = buf, *d;
    unsigned i, ndata = 0;
    uint32_t crc;

    if (buf == NULL) {
        die ("calloc");
    }
    hs = (uint32_t) ((64 + 32 * e->ndesc + SECTOR - 1) / SECTOR);
    memcpy (h, "loge", 4);
    put_le32 (h + 8, nsec * SECTOR);
    put_le32 (h + 12, e->tail);
    put_le64 (h + 16, e->seq);
    put_le32 (h + 24, e->ndesc);
    memcpy (h + 32, e->guid, 16);
    put_le64 (h + 48, e->flushed);
    put_le64 (h + 56, e->last);
    for (i = 0; i < e->ndesc; i++) {
        d = h + 64 + 32 * i;
        if (e->d[i].zero) {
            memcpy (d, "zero", 4);
            put_le64 (d + 8, e->d[i].zero_len);
        }
        else {
            unsigned char *ds = buf + (hs + ndata) * SECTOR;

            memcpy (d, "desc", 4);
            memcpy (d + 4, e->d[i].data + SECTOR - 4, 4);     /* trailing */
            memcpy (d + 8, e->d[i].data, 8);                  /* leading */
            memcpy (ds, "data", 4);
            put_le32 (ds + 4, (uint32_t) (e->seq >> 32));
            memcpy (ds + 8, e->d[i].data + 8, SECTOR - 12);
            put_le32 (ds + SECTOR - 4, (uint32_t) e->seq);
            ndata++;
        }
        put_le64 (d + 16, e->d[i].file_off);
        put_le64 (d + 24, e->seq);
    }
    crc = crc32c (0, buf, 4);
    crc = crc32c (crc, "\0\0\0\0", 4);
    crc = crc32c (crc, buf + 8, (size_t) nsec * SECTOR - 8);
    put_le32 (h + 4, e->torn ? crc ^ 0x5a5a5a5a : crc);
    for (k = 0; k < nsec; k++) {
        memcpy (log + (pos + (uint64_t) k * SECTOR) % len, buf + k * SECTOR,
                SECTOR);
    }
    free (buf);
}

static void
fill_pattern (unsigned char *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (unsigned char) ((i * 131 + seed * 7919 + (i >> 8)) ^ seed);
    }
}

static int
cmd_log (int argc, char **argv)
{
    struct vhdx v = { 0 };
    const char *kind = NULL;
    bool wrap = false;
    struct entry e[5];
    unsigned char *log, page[SECTOR], *blockbuf, hdr[4096];
    uint64_t blk1 = UINT64_MAX, blk2 = UINT64_MAX, b, ent, off1, newoff;
    uint64_t pos, seq0 = 0x100000005ull, batpage, bi, expect_len;
    uint32_t tail;
    int c, rfd;
    unsigned i;

    optind = 1;
    while ((c = getopt (argc, argv, "Wc:")) != -1) {
        switch (c) {
        case 'W': wrap = true; break;
        case 'c': kind = optarg; break;
        default: die ("usage: mk-vhdx-log log [-W] [-c KIND] VHDX RAW");
        }
    }
    if (argc - optind != 2) {
        die ("usage: mk-vhdx-log log [-W] [-c KIND] VHDX RAW");
    }
    vhdx_open (&v, argv[optind], O_RDWR);
    rfd = open (argv[optind + 1], O_RDWR);
    if (rfd == -1) {
        perror (argv[optind + 1]);
        return 1;
    }
    /* A present block and an absent block that lies whole in the disk. */
    for (b = 0; b < v.nblocks; b++) {
        ent = bat_get (&v, b);
        if ((ent & 7) == 6 && blk1 == UINT64_MAX) {
            blk1 = b;
        }
        if ((ent & 7) != 6 && blk2 == UINT64_MAX &&
            (b + 1) * v.block_size <= v.size) {
            blk2 = b;
        }
    }
    if (blk1 == UINT64_MAX || blk2 == UINT64_MAX || v.block_size < 64 * KIB) {
        die ("need a present and an absent block");
    }
    off1 = bat_get (&v, blk1) & ~(MIB - 1);
    newoff = (v.file_size + MIB - 1) & ~(MIB - 1);

    /* The new block's content, written straight into the file. */
    blockbuf = calloc (1, v.block_size);
    if (blockbuf == NULL) {
        die ("calloc");
    }
    fill_pattern (blockbuf, 4 * KIB, 2);
    fill_pattern (blockbuf + v.block_size - 4 * KIB, 4 * KIB, 6);
    wr (v.fd, blockbuf, v.block_size, newoff);

    memset (e, 0, sizeof e);
    for (i = 0; i < 5; i++) {
        e[i].seq = seq0 + i;
        e[i].guid = log_guid;
        e[i].flushed = newoff + v.block_size;
        e[i].last = newoff + v.block_size;
    }
    /* Entry 1: 4 KiB at +4 KiB of block 1. */
    e[0].ndesc = 1;
    e[0].d[0].file_off = off1 + 4096;
    fill_pattern (e[0].d[0].data, SECTOR, 1);
    e[0].flushed = e[0].last = v.file_size;
    /* Entry 2: the BAT page of block 2. */
    bi = bat_index (&v, blk2);
    batpage = (v.bat_off + bi * 8) & ~(uint64_t) (SECTOR - 1);
    rd (v.fd, page, SECTOR, batpage);
    put_le64 (page + (v.bat_off + bi * 8 - batpage), newoff | 6);
    e[1].ndesc = 1;
    e[1].d[0].file_off = batpage;
    memcpy (e[1].d[0].data, page, SECTOR);
    /* Entry 3: zeros at +16 KiB (8 KiB), data at +32 KiB, +4 KiB again. */
    e[2].ndesc = 3;
    e[2].d[0].zero = true;
    e[2].d[0].file_off = off1 + 16384;
    e[2].d[0].zero_len = 8192;
    e[2].d[1].file_off = off1 + 32768;
    fill_pattern (e[2].d[1].data, SECTOR, 3);
    e[2].d[2].file_off = off1 + 4096;
    fill_pattern (e[2].d[2].data, SECTOR, 4);
    /* Entry 4: torn; would zero all of block 1. */
    e[3].ndesc = 1;
    e[3].d[0].zero = true;
    e[3].d[0].file_off = off1;
    e[3].d[0].zero_len = v.block_size;
    e[3].torn = true;
    /* A stale entry of another log GUID, valid otherwise. */
    e[4].seq = seq0 + 100;
    e[4].guid = old_guid;
    e[4].ndesc = 1;
    e[4].d[0].zero = true;
    e[4].d[0].file_off = off1;
    e[4].d[0].zero_len = v.block_size;

    if (kind != NULL && strcmp (kind, "flushed") == 0) {
        e[2].flushed = newoff + v.block_size + MIB;
    }
    else if (kind != NULL && strcmp (kind, "header") == 0) {
        e[2].ndesc = 4;
        e[2].d[3].file_off = 64 * KIB;
        fill_pattern (e[2].d[3].data, SECTOR, 5);
    }
    else if (kind != NULL && strcmp (kind, "torn") == 0) {
        e[0].torn = true;
    }
    else if (kind != NULL && strcmp (kind, "desc") != 0) {
        die ("unknown corruption kind");
    }

    log = calloc (1, v.log_len);
    if (log == NULL) {
        die ("calloc");
    }
    /* Entry 1 is 2 sectors: with -W it starts 3 sectors before the end, so
     * entry 2 (2 sectors) straddles the end of the log. */
    pos = wrap ? v.log_len - 3 * SECTOR : 0;
    tail = (uint32_t) pos;
    for (i = 0; i < 4; i++) {
        e[i].tail = tail;
        put_entry (log, v.log_len, pos, &e[i]);
        pos = (pos + (uint64_t) entry_sectors (&e[i]) * SECTOR) % v.log_len;
    }
    e[4].tail = (uint32_t) pos;
    put_entry (log, v.log_len, pos + 2 * SECTOR, &e[4]);
    if (kind != NULL && strcmp (kind, "desc") == 0) {
        /* An unknown descriptor in entry 2, checksum recomputed. */
        uint64_t p2 = (tail + 2 * SECTOR) % v.log_len;

        memcpy (log + p2 + 64, "dexc", 4);
        put_le32 (log + p2 + 4, 0);
        put_le32 (log + p2 + 4, checksum (log + p2, 2 * SECTOR));
        if (wrap) {
            die ("-c desc and -W do not mix");
        }
    }
    wr (v.fd, log, v.log_len, v.log_off);

    /* The other header slot becomes current, with the log GUID set. */
    memcpy (hdr, v.header, 4096);
    put_le64 (hdr + 8, get_le64 (hdr + 8) + 1);
    memcpy (hdr + 48, log_guid, 16);
    put_le32 (hdr + 4, 0);
    put_le32 (hdr + 4, checksum (hdr, 4096));
    wr (v.fd, hdr, 4096, v.cur == 0 ? 128 * KIB : 64 * KIB);

    /* What the replayed disk holds. */
    if (kind == NULL) {
        fill_pattern (page, SECTOR, 4);
        wr (rfd, page, SECTOR, blk1 * v.block_size + 4096);
        memset (page, 0, SECTOR);
        wr (rfd, page, SECTOR, blk1 * v.block_size + 16384);
        wr (rfd, page, SECTOR, blk1 * v.block_size + 20480);
        fill_pattern (page, SECTOR, 3);
        wr (rfd, page, SECTOR, blk1 * v.block_size + 32768);
        expect_len = v.block_size;
        wr (rfd, blockbuf, expect_len, blk2 * v.block_size);
    }
    free (blockbuf);
    free (log);
    close (rfd);
    close (v.fd);
    return 0;
}

static int
cmd_resum (const char *path, const char *offstr)
{
    uint64_t off = strtoull (offstr, NULL, 0);
    size_t len;
    unsigned char *buf;
    int fd;

    if (off == 64 * KIB || off == 128 * KIB) {
        len = 4096;
    }
    else if (off == 192 * KIB || off == 256 * KIB) {
        len = 64 * KIB;
    }
    else {
        die ("resum: OFFSET must be 65536, 131072, 196608 or 262144");
    }
    fd = open (path, O_RDWR);
    buf = malloc (len);
    if (fd == -1 || buf == NULL) {
        perror (path);
        return 1;
    }
    rd (fd, buf, len, off);
    put_le32 (buf + 4, checksum (buf, len));
    wr (fd, buf, len, off);
    free (buf);
    close (fd);
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc == 4 && strcmp (argv[1], "resum") == 0) {
        return cmd_resum (argv[2], argv[3]);
    }
    if (argc >= 2 && strcmp (argv[1], "log") == 0) {
        return cmd_log (argc - 1, argv + 1);
    }
    if (argc == 4 && strcmp (argv[1], "raw") == 0) {
        return cmd_raw (argv[2], argv[3]);
    }
    fprintf (stderr,
             "usage: mk-vhdx-log log [-W] [-c KIND] VHDX RAW\n"
             "       mk-vhdx-log raw VHDX OUT\n"
             "       mk-vhdx-log resum VHDX OFFSET\n");
    return 2;
}
