/* SPDX-License-Identifier: MIT */
/*
 * GPT (UEFI specification, chapter 5 "GUID Partition Table Disk Layout")
 * and MBR (the classic PC partition table with extended partitions
 * chaining EBRs).
 *
 * GPT: the primary header at LBA 1 (512- or 4096-byte sectors), checked
 * by its CRC-32, its own LBA, a sane geometry and the entry array's
 * CRC-32; when it fails the backup header at the last LBA is used (with a
 * warning).  Entries must lie inside the usable LBA range and must not
 * overlap; any failure makes the whole disk count used.  Everything
 * outside the usable range (MBR, headers, both entry arrays) is table
 * metadata.  A protective MBR (type 0xEE) says GPT; a hybrid MBR (0xEE
 * plus other entries) is ignored in favour of the GPT.
 *
 * MBR: four primary entries at byte 446, signature 0x55AA at 510.  An
 * extended partition (0x05, 0x0F, 0x85) holds a chain of EBRs: each EBR's
 * first entry is a logical partition (start relative to that EBR), its
 * second links to the next EBR (start relative to the extended
 * partition).  The chain is capped and must stay inside the extended
 * partition; a bad chain makes the whole extended partition count used.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../lib/checksum.h"
#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "part.h"

#define GPT_MAX_ENTRIES_BYTES (4u << 20)
#define EBR_MAX 128

void
whys_add (struct whys *w, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (buf, sizeof buf, fmt, ap);
    va_end (ap);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp (w->msg[i], buf) == 0)
            return;
    if (w->n == WHY_MAX) {
        w->dropped++;
        return;
    }
    w->msg[w->n] = strdup (buf);
    if (w->msg[w->n] != NULL)
        w->n++;
}

void
whys_free (struct whys *w)
{
    for (size_t i = 0; i < w->n; i++)
        free (w->msg[i]);
    w->n = 0;
    w->dropped = 0;
}

void
part_table_free (struct part_table *t)
{
    free (t->e);
    t->e = NULL;
    t->n = 0;
    rangeset_free (&t->meta);
}

static void
table_bad (struct part_table *t, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static void
table_bad (struct part_table *t, const char *fmt, ...)
{
    va_list ap;

    t->all_used = true;
    va_start (ap, fmt);
    vsnprintf (t->why, sizeof t->why, fmt, ap);
    va_end (ap);
}

static int
add_entry (struct part_table *t, const struct part_entry *pe)
{
    if (t->n == PART_MAX) {
        table_bad (t, "more than %d partitions", PART_MAX);
        return 0;
    }
    if (t->e == NULL) {
        t->e = calloc (PART_MAX, sizeof *t->e);
        if (t->e == NULL) {
            vmc_perror ("calloc");
            return -1;
        }
    }
    t->e[t->n++] = *pe;
    return 0;
}

/* ---- GPT ------------------------------------------------------------ */

static void
guid_str (char *out, size_t len, const unsigned char *g)
{
    snprintf (out, len,
              "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X",
              get_le32 (g), get_le16 (g + 4), get_le16 (g + 6), g[8], g[9],
              g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* UTF-16LE (N code units) to printable UTF-8; anything odd becomes '?'. */
static void
utf16_name (char *out, size_t len, const unsigned char *p, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned c = get_le16 (p + 2 * i);

        if (c == 0)
            break;
        if (c >= 0xd800 && c < 0xe000)
            c = '?';
        if (c < 0x20 || c == 0x7f)
            c = '?';
        if (c < 0x80) {
            if (k + 1 >= len)
                break;
            out[k++] = (char) c;
        }
        else if (c < 0x800) {
            if (k + 2 >= len)
                break;
            out[k++] = (char) (0xc0 | (c >> 6));
            out[k++] = (char) (0x80 | (c & 0x3f));
        }
        else {
            if (k + 3 >= len)
                break;
            out[k++] = (char) (0xe0 | (c >> 12));
            out[k++] = (char) (0x80 | ((c >> 6) & 0x3f));
            out[k++] = (char) (0x80 | (c & 0x3f));
        }
    }
    out[k] = 0;
}


struct gpt {
    uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
    uint32_t nentries, entry_size;
    unsigned char guid[16];
    unsigned char *entries;         /* nentries * entry_size bytes */
};

/* Read and check the header at LBA.  1 valid, 0 not (*WHY set), -1 error. */
static int
gpt_read_header (const struct volume *v, uint32_t ss, uint64_t lba,
                 struct gpt *g, char *why, size_t whylen)
{
    unsigned char *h;
    uint64_t nsect = v->size / ss, bytes, off, ents_sectors;
    uint32_t hsize, crc;
    int r = -1;

    memset (g, 0, sizeof *g);
    h = malloc (ss);
    if (h == NULL) {
        vmc_perror ("malloc");
        return -1;
    }
    if (lba >= nsect || v->pread (v, h, ss, lba * ss) < 0)
        goto out;
    r = 0;
    if (memcmp (h, "EFI PART", 8) != 0) {
        snprintf (why, whylen, "no GPT signature at LBA %llu",
                  (unsigned long long) lba);
        goto out;
    }
    hsize = get_le32 (h + 12);
    if (hsize < 92 || hsize > ss) {
        snprintf (why, whylen, "GPT header size %u invalid", hsize);
        goto out;
    }
    crc = get_le32 (h + 16);
    memset (h + 16, 0, 4);
    if (!checksum_ok (crc, (uint32_t) crc32 (0, h, hsize))) {
        snprintf (why, whylen, "GPT header at LBA %llu: bad CRC",
                  (unsigned long long) lba);
        goto out;
    }
    g->my_lba = get_le64 (h + 24);
    g->alt_lba = get_le64 (h + 32);
    g->first_usable = get_le64 (h + 40);
    g->last_usable = get_le64 (h + 48);
    memcpy (g->guid, h + 56, 16);
    g->entries_lba = get_le64 (h + 72);
    g->nentries = get_le32 (h + 80);
    g->entry_size = get_le32 (h + 84);
    if (g->my_lba != lba) {
        snprintf (why, whylen, "GPT header at LBA %llu says it is at %llu",
                  (unsigned long long) lba, (unsigned long long) g->my_lba);
        goto out;
    }
    if (g->entry_size < 128 || g->entry_size > 4096 ||
        (g->entry_size & (g->entry_size - 1)) != 0 || g->nentries == 0 ||
        (uint64_t) g->nentries * g->entry_size > GPT_MAX_ENTRIES_BYTES) {
        snprintf (why, whylen, "GPT entry array geometry invalid (%u x %u)",
                  g->nentries, g->entry_size);
        goto out;
    }
    bytes = (uint64_t) g->nentries * g->entry_size;
    ents_sectors = (bytes + ss - 1) / ss;
    if (g->first_usable > g->last_usable || g->last_usable >= nsect ||
        g->entries_lba >= nsect || ents_sectors > nsect - g->entries_lba ||
        g->first_usable < 2 ||
        /* The entry array and the header lie outside the usable range. */
        !(g->entries_lba + ents_sectors <= g->first_usable ||
          g->entries_lba > g->last_usable) ||
        (lba >= g->first_usable && lba <= g->last_usable)) {
        snprintf (why, whylen, "GPT header at LBA %llu: geometry outside "
                  "the disk", (unsigned long long) lba);
        goto out;
    }
    g->entries = malloc (bytes);
    if (g->entries == NULL) {
        vmc_perror ("malloc");
        r = -1;
        goto out;
    }
    off = g->entries_lba * ss;
    if (v->pread (v, g->entries, bytes, off) < 0) {
        r = -1;
        goto out;
    }
    if (!checksum_ok (get_le32 (h + 88), (uint32_t) crc32 (0, g->entries,
                                                      (uInt) bytes))) {
        snprintf (why, whylen, "GPT entry array at LBA %llu: bad CRC",
                  (unsigned long long) g->entries_lba);
        goto out;
    }
    r = 1;
out:
    if (r != 1) {
        free (g->entries);
        g->entries = NULL;
    }
    free (h);
    return r;
}

static const unsigned char bios_boot_guid[16] = {
    0x48, 0x61, 0x68, 0x21, 0x49, 0x64, 0x6f, 0x6e,
    0x74, 0x4e, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49,
};

static int
cmp_start (const void *a, const void *b)
{
    const struct part_entry *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* 1 when a GPT was found (T filled), 0 when none, -1 on error. */
static int
gpt_read (const struct volume *v, struct part_table *t, struct whys *w,
          bool protective)
{
    static const uint32_t sizes[] = { 512, 4096 };
    char why1[200] = "", why2[200] = "";
    struct gpt g = { 0 };
    uint32_t ss = 0;
    int r;

    for (size_t i = 0; i < 2; i++) {
        uint64_t nsect = v->size / sizes[i];
        if (nsect < 4)
            continue;
        r = gpt_read_header (v, sizes[i], 1, &g, why1, sizeof why1);
        if (r < 0)
            return -1;
        if (r == 1) {
            ss = sizes[i];
            break;
        }
        if (strncmp (why1, "no GPT", 6) == 0) {
            /* Only look at the backup when the MBR says GPT. */
            if (!protective)
                continue;
        }
        r = gpt_read_header (v, sizes[i], nsect - 1, &g, why2, sizeof why2);
        if (r < 0)
            return -1;
        if (r == 1) {
            ss = sizes[i];
            whys_add (w, "%s: primary GPT unusable (%s): using the backup",
                      v->name, why1);
            break;
        }
        if (strncmp (why1, "no GPT", 6) != 0) {
            table_bad (t, "GPT unusable: %s; backup: %s", why1, why2);
            snprintf (t->kind, sizeof t->kind, "gpt");
            t->sector_size = sizes[i];
            return 1;
        }
    }
    if (ss == 0) {
        if (protective) {
            snprintf (t->kind, sizeof t->kind, "gpt");
            table_bad (t, "protective MBR but no usable GPT (%s)", why1);
            return 1;
        }
        return 0;
    }
    snprintf (t->kind, sizeof t->kind, "gpt");
    t->sector_size = ss;
    guid_str (t->disk_id, sizeof t->disk_id, g.guid);
    /* Everything outside the usable range is the table's. */
    if (rangeset_add (&t->meta, 0, g.first_usable * ss) < 0 ||
        rangeset_add (&t->meta, (g.last_usable + 1) * ss,
                      v->size - (g.last_usable + 1) * ss) < 0)
        goto fail;
    for (uint32_t i = 0; i < g.nentries; i++) {
        const unsigned char *e = g.entries + (size_t) i * g.entry_size;
        static const unsigned char zero[16];
        struct part_entry pe = { 0 };
        uint64_t first, last;

        if (memcmp (e, zero, 16) == 0)
            continue;
        first = get_le64 (e + 32);
        last = get_le64 (e + 40);
        if (first > last || first < g.first_usable ||
            last > g.last_usable) {
            table_bad (t, "GPT partition %u (LBA %llu-%llu) outside the "
                       "usable range", i + 1, (unsigned long long) first,
                       (unsigned long long) last);
            break;
        }
        pe.number = i + 1;
        pe.start = first * ss;
        pe.size = (last - first + 1) * ss;
        guid_str (pe.type, sizeof pe.type, e);
        guid_str (pe.guid, sizeof pe.guid, e + 16);
        utf16_name (pe.name, sizeof pe.name, e + 56, 36);
        pe.bios_boot = memcmp (e, bios_boot_guid, 16) == 0;
        if (add_entry (t, &pe) < 0)
            goto fail;
        if (t->all_used)
            break;
    }
    free (g.entries);
    g.entries = NULL;
    if (t->n > 1) {
        /* Check overlaps on a sorted copy; keep the table order. */
        struct part_entry *s = malloc (t->n * sizeof *s);
        if (s == NULL) {
            vmc_perror ("malloc");
            goto fail;
        }
        memcpy (s, t->e, t->n * sizeof *s);
        qsort (s, t->n, sizeof *s, cmp_start);
        for (size_t i = 1; i < t->n; i++)
            if (s[i].start < s[i - 1].start + s[i - 1].size) {
                table_bad (t, "GPT partitions %u and %u overlap",
                           s[i - 1].number, s[i].number);
                break;
            }
        free (s);
    }
    return 1;
fail:
    free (g.entries);
    return -1;
}

/* ---- MBR ------------------------------------------------------------ */

static bool
is_extended (unsigned type)
{
    return type == 0x05 || type == 0x0f || type == 0x85;
}

/* Walk the EBR chain of the extended partition [ext, ext + ext_len)
 * (sectors).  A bad chain makes the extended partition count used: it is
 * then added as one entry of type "extended" (all of it used). */
static int
mbr_logicals (const struct volume *v, struct part_table *t, uint64_t ext,
              uint64_t ext_len, struct whys *w)
{
    unsigned char s[512];
    uint64_t ebr = ext, prev = 0;
    unsigned number = 5;
    char why[200] = "";

    for (unsigned n = 0;; n++) {
        uint64_t lstart, llen, next;

        if (n == EBR_MAX) {
            snprintf (why, sizeof why, "more than %d logical partitions",
                      EBR_MAX);
            break;
        }
        if (ebr < ext || ebr >= ext + ext_len || (n > 0 && ebr <= prev)) {
            snprintf (why, sizeof why, "EBR at sector %llu outside the "
                      "extended partition or out of order",
                      (unsigned long long) ebr);
            break;
        }
        if (v->pread (v, s, 512, ebr * 512) < 0)
            return -1;
        if (s[510] != 0x55 || s[511] != 0xaa) {
            snprintf (why, sizeof why, "EBR at sector %llu has no signature",
                      (unsigned long long) ebr);
            break;
        }
        if (rangeset_add (&t->meta, ebr * 512, 512) < 0)
            return -1;
        lstart = get_le32 (s + 446 + 8);
        llen = get_le32 (s + 446 + 12);
        if (s[446 + 4] != 0 && llen > 0) {
            struct part_entry pe = { 0 };

            if (lstart == 0 || ebr + lstart + llen > ext + ext_len) {
                snprintf (why, sizeof why, "logical partition %u outside "
                          "the extended partition", number);
                break;
            }
            pe.number = number++;
            pe.start = (ebr + lstart) * 512;
            pe.size = llen * 512;
            snprintf (pe.type, sizeof pe.type, "0x%02x", s[446 + 4]);
            if (add_entry (t, &pe) < 0)
                return -1;
            if (t->all_used)
                return 0;
        }
        next = get_le32 (s + 462 + 8);
        if (s[462 + 4] == 0 || get_le32 (s + 462 + 12) == 0 || next == 0)
            return 0;
        if (!is_extended (s[462 + 4])) {
            snprintf (why, sizeof why, "EBR link of type 0x%02x",
                      s[462 + 4]);
            break;
        }
        prev = ebr;
        ebr = ext + next;
    }
    whys_add (w, "%s: extended partition: %s: all of it counts as used",
              v->name, why);
    {
        struct part_entry pe = { 0 };
        pe.number = 0;
        pe.start = ext * 512;
        pe.size = ext_len * 512;
        snprintf (pe.type, sizeof pe.type, "extended");
        snprintf (pe.name, sizeof pe.name, "(unreadable EBR chain)");
        return add_entry (t, &pe);
    }
}

int
part_read (const struct volume *v, struct part_table *t, struct whys *w)
{
    unsigned char s[512];
    bool protective = false, others = false, valid = true;
    uint64_t nsect = v->size / 512;
    int r;

    memset (t, 0, sizeof *t);
    snprintf (t->kind, sizeof t->kind, "none");
    if (v->size < 512)
        return 0;
    if (v->pread (v, s, 512, 0) < 0)
        return -1;
    if (s[510] == 0x55 && s[511] == 0xaa) {
        for (int i = 0; i < 4; i++) {
            const unsigned char *e = s + 446 + 16 * i;
            if (e[4] == 0xee)
                protective = true;
            else if (e[4] != 0)
                others = true;
            if (e[0] != 0 && e[0] != 0x80)
                valid = false;
        }
    }
    else
        valid = false;
    r = gpt_read (v, t, w, protective && valid);
    if (r != 0) {
        if (r == 1 && protective && others)
            whys_add (w, "%s: hybrid MBR: using the GPT", v->name);
        if (r == 1 && !protective && !t->all_used)
            whys_add (w, "%s: GPT without a protective MBR: using the GPT",
                      v->name);
        return r < 0 ? -1 : 0;
    }
    if (!valid || !others)
        return 0;
    /* Check the primaries before trusting them (a volume boot record
     * also ends in 0x55AA). */
    for (int i = 0; i < 4; i++) {
        const unsigned char *e = s + 446 + 16 * i;
        uint64_t st = get_le32 (e + 8), len = get_le32 (e + 12);
        if (e[4] == 0)
            continue;
        if (st == 0 || len == 0 || st + len > nsect)
            return 0;
    }
    snprintf (t->kind, sizeof t->kind, "mbr");
    t->sector_size = 512;
    snprintf (t->disk_id, sizeof t->disk_id, "0x%08x", get_le32 (s + 440));
    if (rangeset_add (&t->meta, 0, 512) < 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        const unsigned char *e = s + 446 + 16 * i;
        uint64_t st = get_le32 (e + 8), len = get_le32 (e + 12);
        struct part_entry pe = { 0 };

        if (e[4] == 0)
            continue;
        if (is_extended (e[4])) {
            if (mbr_logicals (v, t, st, len, w) < 0)
                return -1;
            continue;
        }
        pe.number = (unsigned) i + 1;
        pe.start = st * 512;
        pe.size = len * 512;
        snprintf (pe.type, sizeof pe.type, "0x%02x", e[4]);
        if (add_entry (t, &pe) < 0)
            return -1;
    }
    if (t->n > 1) {
        struct part_entry *c = malloc (t->n * sizeof *c);
        if (c == NULL) {
            vmc_perror ("malloc");
            return -1;
        }
        memcpy (c, t->e, t->n * sizeof *c);
        qsort (c, t->n, sizeof *c, cmp_start);
        for (size_t i = 1; i < t->n; i++)
            if (c[i].start < c[i - 1].start + c[i - 1].size) {
                table_bad (t, "MBR partitions %u and %u overlap",
                           c[i - 1].number, c[i].number);
                break;
            }
        free (c);
    }
    return 0;
}
