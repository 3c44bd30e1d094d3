/* SPDX-License-Identifier: MIT */
/*
 * Reading files from FAT12, FAT16 and FAT32 (files.h), from Microsoft's
 * "FAT32 File System Specification" (fatgen103): the boot sector through
 * fs-fat.c's parser (fs-fat.h), directories of 32-byte entries, long file
 * names (section 7, "Long File Name Implementation"), cluster chains.
 *
 * Names: a long name (a run of LFN entries, attribute 0x0F, numbered
 * down to 1 from the one marked 0x40, each carrying the checksum of the
 * 8.3 name that follows) is used when the run is complete and its
 * checksum matches; otherwise the 8.3 name, lowercased where the NT flags
 * in byte 12 say so (0x08 the base, 0x10 the extension), as Windows and
 * Linux show it.  UTF-16 long names become UTF-8; 8.3 bytes above 0x7F
 * (an OEM code page we do not decode) become U+FFFD.  Lookup compares
 * the name with both the long and the 8.3 name, ignoring ASCII case.
 *
 * Inode numbers, which FAT does not have: the root directory is 1; any
 * other file or directory is the byte offset, in the volume, of its 8.3
 * directory entry (a multiple of 32, never below the first FAT).  stat()
 * reads that entry again.  Mode: 0755 for directories, 0644 for files
 * (0444 when read-only); uid and gid 0; the modification time is read as
 * UTC.  There are no symlinks.
 *
 * Limits: a cluster chain must end (end-of-chain mark) before it has more
 * clusters than the volume, and may not come back to a cluster it went
 * through (Brent's cycle detection: no memory per cluster); a free, bad,
 * reserved or out-of-range entry inside a chain is an error; a file's
 * chain must hold its size.  A directory has at most 65536 entries (2 MiB,
 * the specification's limit).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "files.h"
#include "fs-fat.h"

#define FAT_ROOT_INO 1
#define FAT_WIN 4096                /* bytes of the FAT cached */
#define FAT_DIR_MAX_ENTRIES 65536
#define FAT_NAME_MAX 1024           /* 255 UTF-16 units as UTF-8, + NUL */
#define LFN_MAX_SLOTS 20            /* 20 x 13 = 260 >= 255 units */

#define ATTR_READ_ONLY 0x01
#define ATTR_VOLUME_ID 0x08
#define ATTR_DIRECTORY 0x10
#define ATTR_LONG_NAME 0x0F
#define ATTR_LONG_NAME_MASK 0x3F

struct fat_files {
    const struct volume *v;
    struct fat_geom g;
    uint64_t fat_off;               /* the FAT that is read */
    uint64_t fat_bytes;
    uint32_t eoc;                   /* entries >= this end a chain */
    uint32_t bad;                   /* the bad-cluster mark */
    /* A window of the FAT. */
    unsigned char win[FAT_WIN + 4];
    uint64_t win_off;
    size_t win_len;
    /* The chain last read through pread: checked once from FIRST to its
     * end (LEN clusters), and where the last read left off. */
    uint32_t chk_first, chk_len;
    uint32_t cur_index, cur_clus;
};

/* A directory entry, decoded. */
struct fat_dirent {
    char name[FAT_NAME_MAX];        /* the long name, or the 8.3 one */
    char short_name[16];            /* the 8.3 name, as shown */
    uint64_t pos;                   /* byte offset of the 8.3 entry */
    uint8_t attr;
    uint32_t clus;
    uint32_t size;
    uint16_t wtime, wdate;          /* DIR_WrtTime, DIR_WrtDate */
};

/* ---- The FAT and cluster chains ---- */

/* FAT entry of cluster C: 0 with *E set, or -1. */
static int
fat_get (struct fat_files *f, uint32_t c, uint32_t *e)
{
    uint64_t bo;
    size_t nb = f->g.bits == 32 ? 4 : 2;
    const unsigned char *p;

    if (f->g.bits == 12)
        bo = (uint64_t) c + c / 2;
    else
        bo = (uint64_t) c * (uint64_t) (f->g.bits / 8);
    if (range_outside (bo, nb, f->fat_bytes)) {
        vmc_error ("%s: FAT: cluster %" PRIu32 " has no FAT entry",
                   f->v->name, c);
        return -1;
    }
    if (f->win_len == 0 || bo < f->win_off ||
        bo + nb > f->win_off + f->win_len) {
        uint64_t off = bo & ~(uint64_t) (FAT_WIN - 1);
        uint64_t len = f->fat_bytes - off;

        if (len > sizeof f->win)
            len = sizeof f->win;
        f->win_len = 0;
        if (f->v->pread (f->v, f->win, (size_t) len, f->fat_off + off) < 0)
            return -1;
        f->win_off = off;
        f->win_len = (size_t) len;
    }
    p = f->win + (bo - f->win_off);
    if (f->g.bits == 32)
        *e = get_le32 (p) & 0x0FFFFFFF;
    else if (f->g.bits == 16)
        *e = get_le16 (p);
    else
        *e = c & 1 ? get_le16 (p) >> 4 : get_le16 (p) & 0xFFF;
    return 0;
}

static bool
fat_is_data (const struct fat_files *f, uint32_t c)
{
    return c >= 2 && c - 2 < f->g.clusters;
}

/* A walk along a chain, with Brent's cycle detection: the tortoise jumps
 * to the hare at every power of two steps; the hare meets it again only
 * when the chain loops. */
struct chain {
    uint32_t clus;                  /* the current cluster; 0 past the end */
    uint32_t index;
    uint32_t tortoise, power, lam;
};

static int
chain_start (struct fat_files *f, struct chain *ch, uint32_t first,
             const char *what)
{
    if (!fat_is_data (f, first)) {
        vmc_error ("%s: FAT: %s starts at cluster %" PRIu32 ", which is "
                   "out of range", f->v->name, what, first);
        return -1;
    }
    ch->clus = first;
    ch->index = 0;
    ch->tortoise = first;
    ch->power = ch->lam = 1;
    return 0;
}

/* Move to the next cluster: 0 (ch->clus 0 at the end of the chain), or
 * -1. */
static int
chain_next (struct fat_files *f, struct chain *ch, const char *what)
{
    uint32_t e;

    if (fat_get (f, ch->clus, &e) < 0)
        return -1;
    if (e >= f->eoc) {
        ch->clus = 0;
        return 0;
    }
    if (!fat_is_data (f, e)) {
        vmc_error ("%s: FAT: %s: cluster %" PRIu32 " is followed by %s %"
                   PRIu32, f->v->name, what, ch->clus,
                   e == 0 ? "a free entry" : e == f->bad ? "a bad cluster"
                   : "an out-of-range entry", e);
        return -1;
    }
    ch->clus = e;
    ch->index++;
    if (ch->clus == ch->tortoise) {
        vmc_error ("%s: FAT: %s: the cluster chain loops back to cluster %"
                   PRIu32, f->v->name, what, e);
        return -1;
    }
    if (ch->index >= f->g.clusters) {
        vmc_error ("%s: FAT: %s: cluster chain longer than the %" PRIu32
                   " clusters", f->v->name, what, f->g.clusters);
        return -1;
    }
    if (ch->power == ch->lam) {
        ch->tortoise = ch->clus;
        ch->power *= 2;
        ch->lam = 0;
    }
    ch->lam++;
    return 0;
}

static uint64_t
clus_offset (const struct fat_files *f, uint32_t c)
{
    /* c - 2 < clusters, and the clusters end inside the volume. */
    return f->g.data_start + (uint64_t) (c - 2) * f->g.csize;
}

/* ---- Directory entries ---- */

static uint8_t
lfn_checksum (const unsigned char *e)
{
    uint8_t sum = 0;

    for (int i = 0; i < 11; i++)
        sum = (uint8_t) (((sum & 1) << 7) + (sum >> 1) + e[i]);
    return sum;
}

/* Append code point U as UTF-8 to D (capacity CAP, used *N): false when
 * it does not fit. */
static bool
utf8_put (char *d, size_t cap, size_t *n, uint32_t u)
{
    unsigned char b[4];
    size_t k;

    if (u < 0x80) {
        b[0] = (unsigned char) u;
        k = 1;
    }
    else if (u < 0x800) {
        b[0] = (unsigned char) (0xC0 | u >> 6);
        b[1] = (unsigned char) (0x80 | (u & 0x3F));
        k = 2;
    }
    else if (u < 0x10000) {
        b[0] = (unsigned char) (0xE0 | u >> 12);
        b[1] = (unsigned char) (0x80 | ((u >> 6) & 0x3F));
        b[2] = (unsigned char) (0x80 | (u & 0x3F));
        k = 3;
    }
    else {
        b[0] = (unsigned char) (0xF0 | u >> 18);
        b[1] = (unsigned char) (0x80 | ((u >> 12) & 0x3F));
        b[2] = (unsigned char) (0x80 | ((u >> 6) & 0x3F));
        b[3] = (unsigned char) (0x80 | (u & 0x3F));
        k = 4;
    }
    if (*n + k >= cap)
        return false;
    memcpy (d + *n, b, k);
    *n += k;
    return true;
}

/* The 8.3 name of entry E as shown: "NAME.EXT", lowercased by the NT
 * flags. */
static void
short_name (const unsigned char *e, char *d, size_t cap)
{
    size_t n = 0, bl = 8, el = 3;

    while (bl > 0 && e[bl - 1] == ' ')
        bl--;
    while (el > 0 && e[8 + el - 1] == ' ')
        el--;
    for (size_t i = 0; i < bl + el; i++) {
        unsigned char c = i < bl ? e[i] : e[8 + i - bl];
        bool lower = i < bl ? (e[12] & 0x08) != 0 : (e[12] & 0x10) != 0;

        if (i == bl && !utf8_put (d, cap, &n, '.'))
            break;
        if (i == 0 && c == 0x05)
            c = 0xE5;                   /* KANJI lead byte, stored as 05 */
        if (lower && c >= 'A' && c <= 'Z')
            c = (unsigned char) (c - 'A' + 'a');
        if (!utf8_put (d, cap, &n, c >= 0x80 ? 0xFFFD : c))
            break;
    }
    d[n] = 0;
}

/* The long name in UNITS (UTF-16, up to a 0x0000) into D: false when it
 * is empty or holds a character no name may hold. */
static bool
long_name (const uint16_t *units, size_t count, char *d, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < count && units[i] != 0; i++) {
        uint32_t u = units[i];

        if (u >= 0xD800 && u < 0xDC00 && i + 1 < count &&
            units[i + 1] >= 0xDC00 && units[i + 1] < 0xE000) {
            u = 0x10000 + ((u - 0xD800) << 10) + (units[i + 1] - 0xDC00);
            i++;
        }
        else if (u >= 0xD800 && u < 0xE000)
            u = 0xFFFD;                 /* a lone surrogate */
        if (u == '/' || !utf8_put (d, cap, &n, u))
            return false;
    }
    d[n] = 0;
    return n > 0;
}

/* The long-name run being collected. */
struct lfn {
    bool active;
    int expect;                     /* the next sequence number wanted */
    int slots;
    uint8_t csum;
    uint16_t u[LFN_MAX_SLOTS * 13];
};

static void
lfn_entry (struct lfn *l, const unsigned char *e)
{
    static const uint8_t at[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24,
                                    28, 30 };
    int seq = e[0] & 0x1F;

    if (e[0] & 0x40) {
        if (seq == 0 || seq > LFN_MAX_SLOTS) {
            l->active = false;
            return;
        }
        l->active = true;
        l->slots = seq;
        l->expect = seq;
        l->csum = e[13];
        memset (l->u, 0, sizeof l->u);
    }
    else if (!l->active || seq != l->expect || e[13] != l->csum ||
             seq == 0) {
        l->active = false;
        return;
    }
    for (int k = 0; k < 13; k++)
        l->u[(seq - 1) * 13 + k] = get_le16 (e + at[k]);
    l->expect = seq - 1;
}

/* Read the 8.3 entry that is inode INO. */
static int
read_entry (struct fat_files *f, uint64_t ino, struct fat_dirent *de)
{
    unsigned char e[32];
    uint64_t lo = f->g.bits == 32 ? f->g.data_start : f->g.root_start;

    if (ino % 32 != 0 || ino < lo || range_outside (ino, 32, f->g.end)) {
        vmc_error ("%s: FAT: no inode %" PRIu64, f->v->name, ino);
        return -1;
    }
    if (f->v->pread (f->v, e, sizeof e, ino) < 0)
        return -1;
    memset (de, 0, sizeof *de);
    de->pos = ino;
    de->attr = e[11];
    de->clus = get_le16 (e + 26);
    if (f->g.bits == 32)
        de->clus |= (uint32_t) get_le16 (e + 20) << 16;
    de->size = get_le32 (e + 28);
    de->wtime = get_le16 (e + 22);
    de->wdate = get_le16 (e + 24);
    return 0;
}

/* Call FN for each entry of directory DIR (its inode number) until FN
 * returns non-zero (then that value); 0 at the end, -1 on an error. */
static int
dir_iterate (struct fat_files *f, uint64_t dir,
             int (*fn) (struct fat_files *f, const struct fat_dirent *de,
                        void *opaque),
             void *opaque)
{
    struct fat_dirent de;
    struct lfn lfn = { .active = false };
    struct chain ch = { 0 };
    unsigned char *buf = NULL;
    uint64_t off, len, entries = 0;
    char what[48];
    int ret = -1;
    bool fixed;

    snprintf (what, sizeof what, "directory %" PRIu64, dir);
    if (dir == FAT_ROOT_INO && f->g.bits != 32) {
        fixed = true;
        off = f->g.root_start;
        len = (uint64_t) f->g.root_ents * 32;
    }
    else {
        uint32_t first;

        if (dir == FAT_ROOT_INO)
            first = f->g.root_clus;
        else {
            if (read_entry (f, dir, &de) < 0)
                return -1;
            if (!(de.attr & ATTR_DIRECTORY)) {
                vmc_error ("%s: FAT: %s is not a directory", f->v->name,
                           what);
                return -1;
            }
            first = de.clus;
        }
        if (chain_start (f, &ch, first, what) < 0)
            return -1;
        fixed = false;
        off = clus_offset (f, ch.clus);
        len = f->g.csize;
    }
    buf = malloc (f->g.csize > 32768 ? f->g.csize : 32768);
    if (buf == NULL) {
        vmc_error ("out of memory");
        return -1;
    }

    for (;;) {
        /* One cluster, or a piece of the fixed root directory. */
        size_t piece = len < 32768 || !fixed ? (size_t) len : 32768;

        if (f->v->pread (f->v, buf, piece, off) < 0)
            goto out;
        for (size_t i = 0; i + 32 <= piece; i += 32) {
            const unsigned char *e = buf + i;
            int r;

            if (++entries > FAT_DIR_MAX_ENTRIES) {
                vmc_error ("%s: FAT: %s has more than %d entries",
                           f->v->name, what, FAT_DIR_MAX_ENTRIES);
                goto out;
            }
            if (e[0] == 0x00) {
                ret = 0;                /* the end of the directory */
                goto out;
            }
            if (e[0] == 0xE5) {
                lfn.active = false;     /* a deleted entry */
                continue;
            }
            if ((e[11] & ATTR_LONG_NAME_MASK) == ATTR_LONG_NAME) {
                lfn_entry (&lfn, e);
                continue;
            }
            if ((e[11] & ATTR_VOLUME_ID) || e[0] == '.') {
                lfn.active = false;     /* the label, ".", ".." */
                continue;
            }
            memset (&de, 0, sizeof de);
            short_name (e, de.short_name, sizeof de.short_name);
            if (!(lfn.active && lfn.expect == 0 &&
                  lfn.csum == lfn_checksum (e) &&
                  long_name (lfn.u, (size_t) lfn.slots * 13, de.name,
                             sizeof de.name)))
                snprintf (de.name, sizeof de.name, "%s", de.short_name);
            lfn.active = false;
            de.pos = off + i;
            de.attr = e[11];
            de.clus = get_le16 (e + 26);
            if (f->g.bits == 32)
                de.clus |= (uint32_t) get_le16 (e + 20) << 16;
            de.size = get_le32 (e + 28);
            r = fn (f, &de, opaque);
            if (r != 0) {
                ret = r;
                goto out;
            }
        }
        if (fixed) {
            off += piece;
            len -= piece;
            if (len < 32) {
                ret = 0;
                goto out;
            }
        }
        else {
            if (chain_next (f, &ch, what) < 0)
                goto out;
            if (ch.clus == 0) {
                ret = 0;
                goto out;
            }
            off = clus_offset (f, ch.clus);
        }
    }

 out:
    free (buf);
    return ret;
}

/* ---- The operations ---- */

static int
fat_files_open (const struct volume *v, void **priv)
{
    unsigned char b[512];
    struct fat_files *f;
    const char *bad;

    if (v->size < sizeof b) {
        vmc_error ("%s: FAT: volume too small", v->name);
        return -1;
    }
    f = calloc (1, sizeof *f);
    if (f == NULL) {
        vmc_error ("out of memory");
        return -1;
    }
    f->v = v;
    if (v->pread (v, b, sizeof b, 0) < 0)
        goto fail;
    bad = fat_bpb_geometry (b, v->size, &f->g);
    if (bad != NULL) {
        vmc_error ("%s: FAT: %s", v->name, bad);
        goto fail;
    }
    if (f->g.active_fat >= f->g.nfats) {
        vmc_error ("%s: FAT: active FAT %" PRIu32 " out of range", v->name,
                   f->g.active_fat);
        goto fail;
    }
    if (f->g.bits == 32 && !fat_is_data (f, f->g.root_clus)) {
        vmc_error ("%s: FAT: root directory cluster %" PRIu32 " out of "
                   "range", v->name, f->g.root_clus);
        goto fail;
    }
    f->fat_bytes = (uint64_t) f->g.fatsz * f->g.bps;
    f->fat_off = f->g.fat_start + (uint64_t) f->g.active_fat * f->fat_bytes;
    f->eoc = f->g.bits == 12 ? 0xFF8 : f->g.bits == 16 ? 0xFFF8 : 0x0FFFFFF8;
    f->bad = f->eoc - 1;
    *priv = f;
    return 0;

 fail:
    free (f);
    return -1;
}

static void
fat_files_close (void *priv)
{
    free (priv);
}

static uint64_t
fat_files_root (void *priv)
{
    (void) priv;
    return FAT_ROOT_INO;
}

static bool
ascii_caseeq (const char *a, const char *b)
{
    for (; *a != 0 && *b != 0; a++, b++) {
        unsigned char x = (unsigned char) *a, y = (unsigned char) *b;

        if (x >= 'A' && x <= 'Z')
            x = (unsigned char) (x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char) (y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return *a == *b;
}

struct fat_find {
    const char *name;
    uint64_t ino;
};

static int
find_cb (struct fat_files *f, const struct fat_dirent *de, void *opaque)
{
    struct fat_find *q = opaque;

    (void) f;
    if (ascii_caseeq (q->name, de->name) ||
        ascii_caseeq (q->name, de->short_name)) {
        q->ino = de->pos;
        return 1;
    }
    return 0;
}

static int
fat_files_lookup (void *priv, uint64_t dir, const char *name, uint64_t *ino)
{
    struct fat_files *f = priv;
    struct fat_find q = { name, 0 };
    int r;

    r = dir_iterate (f, dir, find_cb, &q);
    if (r < 0)
        return -1;
    if (r == 0)
        return 1;
    *ino = q.ino;
    return 0;
}

/* Days from 1970-01-01 to Y-M-D of the proleptic Gregorian calendar,
 * counting years from March so that the leap day comes last. */
static int64_t
days_from_civil (int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;

    if (m <= 2)
        y--;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
fat_files_stat (void *priv, uint64_t ino, struct file_stat *st)
{
    struct fat_files *f = priv;
    struct fat_dirent de;
    unsigned time, date, mon, day;

    memset (st, 0, sizeof *st);
    if (ino == FAT_ROOT_INO) {
        st->kind = FK_DIR;
        st->mode = 040755;
        return 0;
    }
    if (read_entry (f, ino, &de) < 0)
        return -1;
    if (de.attr & ATTR_DIRECTORY) {
        st->kind = FK_DIR;
        st->mode = 040755;
    }
    else {
        st->kind = FK_REG;
        st->size = de.size;
        st->mode = de.attr & ATTR_READ_ONLY ? 0100444 : 0100644;
    }
    /* DIR_WrtTime: hours 15-11, minutes 10-5, 2-second units 4-0;
     * DIR_WrtDate: years since 1980 15-9, month 8-5, day 4-0. */
    time = de.wtime;
    date = de.wdate;
    mon = (date >> 5) & 15;
    day = date & 31;
    if (mon >= 1 && mon <= 12 && day >= 1)
        st->mtime = days_from_civil (1980 + (date >> 9), mon, day) * 86400 +
            (int64_t) (time >> 11) * 3600 + ((time >> 5) & 63) * 60 +
            (time & 31) * 2;
    return 0;
}

static ssize_t
fat_files_pread (void *priv, uint64_t ino, void *buf, size_t count,
                 uint64_t offset)
{
    struct fat_files *f = priv;
    struct fat_dirent de;
    char what[48];
    uint64_t need;
    uint32_t k;
    size_t done = 0;

    if (ino == FAT_ROOT_INO) {
        vmc_error ("%s: FAT: the root directory is not a file", f->v->name);
        return -1;
    }
    if (read_entry (f, ino, &de) < 0)
        return -1;
    snprintf (what, sizeof what, "file %" PRIu64, ino);
    if (de.attr & ATTR_DIRECTORY) {
        vmc_error ("%s: FAT: %s is a directory", f->v->name, what);
        return -1;
    }
    if (offset >= de.size || count == 0)
        return 0;
    if (count > de.size - offset)
        count = (size_t) (de.size - offset);
    need = (de.size + f->g.csize - 1) / f->g.csize;

    /* Check the whole chain once (it must end, not loop), then walk it
     * from where the last read stopped. */
    if (f->chk_first != de.clus || f->chk_len == 0) {
        struct chain ch;

        /* Nothing checked until this check ends well: a chain that
         * failed must not leave an earlier length behind for cluster 0. */
        f->chk_first = 0;
        f->chk_len = 0;
        if (chain_start (f, &ch, de.clus, what) < 0)
            return -1;
        while (ch.clus != 0)
            if (chain_next (f, &ch, what) < 0)
                return -1;
        f->chk_first = de.clus;
        f->chk_len = ch.index + 1;
        f->cur_index = 0;
        f->cur_clus = de.clus;
    }
    /* The chain must hold the file: checked on every read, as two entries
     * may share a first cluster (crossed chains) and not a size. */
    if (need > f->chk_len) {
        vmc_error ("%s: FAT: %s: its %" PRIu32 " bytes need %" PRIu64
                   " clusters, its chain has %" PRIu32, f->v->name, what,
                   de.size, need, f->chk_len);
        return -1;
    }
    k = (uint32_t) (offset / f->g.csize);
    if (k < f->cur_index) {
        f->cur_index = 0;
        f->cur_clus = de.clus;
    }
    while (done < count) {
        uint64_t within = (offset + done) % f->g.csize;
        size_t n = count - done;

        k = (uint32_t) ((offset + done) / f->g.csize);
        while (f->cur_index < k) {
            uint32_t e;

            /* Inside the checked chain: every entry is a data cluster. */
            if (fat_get (f, f->cur_clus, &e) < 0)
                return -1;
            if (!fat_is_data (f, e)) {
                vmc_error ("%s: FAT: %s: the chain changed", f->v->name,
                           what);
                return -1;
            }
            f->cur_clus = e;
            f->cur_index++;
        }
        if (n > f->g.csize - within)
            n = (size_t) (f->g.csize - within);
        if (!fat_is_data (f, f->cur_clus)) {
            vmc_error ("%s: FAT: %s: cluster %" PRIu32 " out of range",
                       f->v->name, what, f->cur_clus);
            return -1;
        }
        if (f->v->pread (f->v, (char *) buf + done, n,
                         clus_offset (f, f->cur_clus) + within) < 0)
            return -1;
        done += n;
    }
    return (ssize_t) done;
}

static ssize_t
fat_files_readlink (void *priv, uint64_t ino, char *buf, size_t cap)
{
    struct fat_files *f = priv;

    (void) buf; (void) cap;
    vmc_error ("%s: FAT: inode %" PRIu64 ": FAT has no symbolic links",
               f->v->name, ino);
    return -1;
}

struct fat_readdir {
    int (*fn) (void *opaque, const char *name, uint64_t ino,
               enum file_kind kind);
    void *opaque;
};

static int
readdir_cb (struct fat_files *f, const struct fat_dirent *de, void *opaque)
{
    struct fat_readdir *r = opaque;

    (void) f;
    return r->fn (r->opaque, de->name, de->pos,
                  de->attr & ATTR_DIRECTORY ? FK_DIR : FK_REG);
}

static int
fat_files_readdir (void *priv, uint64_t ino,
                   int (*fn) (void *opaque, const char *name, uint64_t ino,
                              enum file_kind kind),
                   void *opaque)
{
    struct fat_readdir r = { fn, opaque };

    return dir_iterate (priv, ino, readdir_cb, &r);
}

const struct fs_files fs_files_fat = {
    .name = "vfat",
    .open = fat_files_open,
    .close = fat_files_close,
    .root = fat_files_root,
    .lookup = fat_files_lookup,
    .stat = fat_files_stat,
    .pread = fat_files_pread,
    .readlink = fat_files_readlink,
    .readdir = fat_files_readdir,
};
