/* SPDX-License-Identifier: MIT */
/*
 * vhdx: log replay, into memory.
 *
 * [MS-VHDX] 2.3: metadata updates (BAT, metadata region) go through a
 * write-ahead log first.  A header whose LogGuid is not zero says the log
 * may hold updates that never reached their place: a reader must replay it
 * before trusting anything after the headers.  We never write the source,
 * so the replay builds an overlay of the file in memory instead, and every
 * read after the headers goes through vhdx_vread().
 *
 * The log region is a circular buffer of 4 KiB sectors.  An entry is one
 * or more sectors:
 *
 *   Entry header (first 64 bytes of the first sector)
 *     0  Signature          4  "loge"
 *     4  Checksum           4  CRC-32C of the EntryLength bytes of the
 *                              entry (wrapping), this field 0
 *     8  EntryLength        4  multiple of 4 KiB
 *    12  Tail               4  log offset of the first entry of the
 *                              sequence this entry ends
 *    16  SequenceNumber     8  > 0; +1 from one entry to the next
 *    24  DescriptorCount    4
 *    28  Reserved           4
 *    32  LogGuid           16  must equal the header's LogGuid
 *    48  FlushedFileOffset  8  the file was at least this long, durably
 *    56  LastFileOffset     8  everything allocated fits below this
 *   then DescriptorCount descriptors of 32 bytes (continuing into more
 *   sectors as needed):
 *     zero descriptor:  "zero", Reserved 4, ZeroLength 8, FileOffset 8,
 *                       SequenceNumber 8     (write ZeroLength zero bytes)
 *     data descriptor:  "desc", TrailingBytes 4, LeadingBytes 8,
 *                       FileOffset 8, SequenceNumber 8
 *   then one 4 KiB data sector per data descriptor, in order:
 *     "data", SequenceHigh 4, 4084 bytes of data, SequenceLow 4
 *   The 4 KiB written at FileOffset are LeadingBytes, the 4084 bytes, and
 *   TrailingBytes: the sector's own first 8 and last 4 bytes carry the
 *   signature and sequence number instead.
 *
 * Replay (2.3.3): find the active sequence, the valid sequence whose head
 * has the highest sequence number.  A sequence is the run of entries from
 * the head's Tail to the head, each starting where the previous one ends
 * (wrapping) with the next sequence number; all must be valid.  Apply its
 * descriptors in order, then the file is at least LastFileOffset long.
 *
 * Entries that fail the signature, the LogGuid or the checksum are only
 * invalid: torn writes are what a log is for.  But an entry that passes the
 * checksum and is still malformed (unknown descriptor, bad data sector,
 * misaligned offset), a replay that would write the headers or the log
 * itself, a file shorter than the head's FlushedFileOffset, or a log too
 * big to handle are refused: we cannot tell what the disk holds.
 *
 * Limits: the log region is at most VHDX_LOG_MAX (16 MiB) and is read
 * whole; at most VHDX_LOG_MAX_OPS descriptors are applied; checksums over
 * candidate entries are budgeted to 16 times the log size, so overlapping
 * hostile entries cannot make the scan quadratic.  After replay the log
 * buffer stays in memory: the overlay's data points into it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/crc32c.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/rounding.h"
#include "vhdx.h"

enum entry_state { ENTRY_UNKNOWN, ENTRY_INVALID, ENTRY_VALID };

struct entry {
    uint8_t state;
    uint32_t length;
    uint32_t tail;
    uint64_t seq;
    uint32_t ndesc;
    uint64_t flushed;
    uint64_t last;
};

struct log_scan {
    struct image *img;
    const unsigned char *buf;   /* the log region */
    uint64_t len;
    uint64_t nsect;
    struct entry *ent;          /* per sector: the entry starting there */
    uint64_t crc_budget;
    bool matching_seen;         /* an entry with our LogGuid was seen */
};

/* One write of the replay: [start, end) gets DATA (4 KiB) or zeros. */
struct op {
    uint64_t start, end;
    const unsigned char *data;
};

static const unsigned char *
sector_at (const struct log_scan *ls, uint64_t pos)
{
    return ls->buf + pos % ls->len;
}

/* Where the 32-byte descriptor I of the entry at POS is. */
static const unsigned char *
desc_at (const struct log_scan *ls, uint64_t pos, uint32_t i)
{
    uint64_t d = VHDX_LOG_HEADER_SIZE + (uint64_t) i * VHDX_LOG_DESC_SIZE;

    return sector_at (ls, pos + ROUND_DOWN (d, VHDX_LOG_SECTOR)) +
        d % VHDX_LOG_SECTOR;
}

static uint64_t
desc_sectors (uint32_t ndesc)
{
    return DIV_ROUND_UP (VHDX_LOG_HEADER_SIZE +
                         (uint64_t) ndesc * VHDX_LOG_DESC_SIZE,
                         (uint64_t) VHDX_LOG_SECTOR);
}

/* Decide whether a valid entry starts at log offset POS.  -1 only for a
 * refusal (an entry that checks out but is malformed). */
static int
check_entry (struct log_scan *ls, uint64_t pos)
{
    struct entry *e = &ls->ent[pos / VHDX_LOG_SECTOR];
    struct vhdx *s = ls->img->priv;
    const unsigned char *h = sector_at (ls, pos), *d, *ds;
    uint64_t nsec, ndata = 0, k, zl, fo;
    uint32_t stored, crc;
    static const unsigned char zero4[4];

    e->state = ENTRY_INVALID;
    if (memcmp (h, "loge", 4) != 0 || memcmp (h + 32, s->log_guid, 16) != 0) {
        return 0;
    }
    ls->matching_seen = true;
    e->length = get_le32 (h + 8);
    e->tail = get_le32 (h + 12);
    e->seq = get_le64 (h + 16);
    e->ndesc = get_le32 (h + 24);
    e->flushed = get_le64 (h + 48);
    e->last = get_le64 (h + 56);
    nsec = e->length / VHDX_LOG_SECTOR;
    if (e->length == 0 || e->length % VHDX_LOG_SECTOR != 0 ||
        e->length > ls->len || e->tail % VHDX_LOG_SECTOR != 0 ||
        e->tail >= ls->len || e->seq == 0 ||
        desc_sectors (e->ndesc) > nsec) {
        return 0;
    }
    /* The checksum, sector by sector (an entry may wrap). */
    if (ls->crc_budget < e->length) {
        vmc_error ("vhdx: the log needs replay and holds too many "
                   "overlapping entries to scan");
        return -1;
    }
    ls->crc_budget -= e->length;
    stored = get_le32 (h + 4);
    crc = crc32c (0, h, 4);
    crc = crc32c (crc, zero4, 4);
    crc = crc32c (crc, h + 8, VHDX_LOG_SECTOR - 8);
    for (k = 1; k < nsec; k++) {
        crc = crc32c (crc, sector_at (ls, pos + k * VHDX_LOG_SECTOR),
                      VHDX_LOG_SECTOR);
    }
    if (!checksum_ok (stored, crc)) {
        return 0;
    }

    /* From here on the entry is what its writer meant: anything wrong is
     * corruption, not a torn write. */
    for (k = 0; k < e->ndesc; k++) {
        d = desc_at (ls, pos, (uint32_t) k);
        fo = get_le64 (d + 16);
        if (get_le64 (d + 24) != e->seq) {
            vmc_error ("vhdx: the log needs replay and descriptor %" PRIu64
                       " of the entry at log offset %" PRIu64 " has the "
                       "wrong sequence number", k, pos);
            return -1;
        }
        if (fo % VHDX_LOG_SECTOR != 0) {
            vmc_error ("vhdx: the log needs replay and descriptor %" PRIu64
                       " of the entry at log offset %" PRIu64 " has the "
                       "unaligned file offset 0x%" PRIx64, k, pos, fo);
            return -1;
        }
        if (memcmp (d, "zero", 4) == 0) {
            zl = get_le64 (d + 8);
            if (zl % VHDX_LOG_SECTOR != 0) {
                vmc_error ("vhdx: the log needs replay and zero descriptor %"
                           PRIu64 " of the entry at log offset %" PRIu64
                           " has the unaligned length %" PRIu64, k, pos, zl);
                return -1;
            }
        }
        else if (memcmp (d, "desc", 4) == 0) {
            if (desc_sectors (e->ndesc) + ndata >= nsec) {
                vmc_error ("vhdx: the log needs replay and the entry at log "
                           "offset %" PRIu64 " is too short for its data",
                           pos);
                return -1;
            }
            ds = sector_at (ls, pos + (desc_sectors (e->ndesc) + ndata) *
                            VHDX_LOG_SECTOR);
            if (memcmp (ds, "data", 4) != 0 ||
                get_le32 (ds + 4) != (uint32_t) (e->seq >> 32) ||
                get_le32 (ds + VHDX_LOG_SECTOR - 4) != (uint32_t) e->seq) {
                vmc_error ("vhdx: the log needs replay and data sector %"
                           PRIu64 " of the entry at log offset %" PRIu64
                           " does not match its descriptor", ndata, pos);
                return -1;
            }
            ndata++;
        }
        else {
            vmc_error ("vhdx: the log needs replay and descriptor %" PRIu64
                       " of the entry at log offset %" PRIu64 " has the "
                       "unknown signature 0x%08" PRIx32, k, pos,
                       get_le32 (d));
            return -1;
        }
    }
    e->state = ENTRY_VALID;
    return 0;
}

/* Is the sequence ending with the entry at HEAD valid (all entries from its
 * Tail up to it)?  Sets *count to its number of entries. */
static bool
sequence_valid (const struct log_scan *ls, uint64_t head, uint64_t *count)
{
    const struct entry *h = &ls->ent[head / VHDX_LOG_SECTOR], *e, *n;
    uint64_t pos = h->tail, total = 0, next;

    *count = 0;
    for (;;) {
        e = &ls->ent[pos / VHDX_LOG_SECTOR];
        if (e->state != ENTRY_VALID) {
            return false;
        }
        total += e->length;
        (*count)++;
        if (total > ls->len) {
            return false;           /* a sequence cannot lap itself */
        }
        if (pos == head) {
            return true;
        }
        next = (pos + e->length) % ls->len;
        n = &ls->ent[next / VHDX_LOG_SECTOR];
        if (n->state != ENTRY_VALID || n->seq != e->seq + 1) {
            return false;
        }
        pos = next;
    }
}

static int
cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}

/* Heap of op indices, highest index (latest write) on top. */
static void
heap_push (uint32_t *heap, size_t *n, uint32_t v)
{
    size_t i = (*n)++, p;

    while (i > 0 && heap[p = (i - 1) / 2] < v) {
        heap[i] = heap[p];
        i = p;
    }
    heap[i] = v;
}

static void
heap_pop (uint32_t *heap, size_t *n)
{
    size_t i = 0, c;
    uint32_t v = heap[--(*n)];

    while ((c = 2 * i + 1) < *n) {
        if (c + 1 < *n && heap[c + 1] > heap[c]) {
            c++;
        }
        if (heap[c] <= v) {
            break;
        }
        heap[i] = heap[c];
        i = c;
    }
    if (*n > 0) {
        heap[i] = v;
    }
}

/* Flatten the ops (later ones win) into sorted, disjoint segments.  Events
 * are packed as (position, op index * 2 + is_start) pairs; a sweep keeps
 * the active ops in a heap and the latest one owns each stretch. */
static int
build_overlay (struct image *img, const struct op *ops, uint32_t nops)
{
    struct vhdx *s = img->priv;
    uint64_t *ev = NULL, pos;
    uint32_t *heap = NULL, top;
    bool *active = NULL;
    size_t nheap = 0, i, nev = 2 * (size_t) nops;
    struct vhdx_seg *seg, *last;
    int r = -1;

    ev = calloc (nev * 2 + 1, sizeof *ev);
    heap = calloc (nops + 1, sizeof *heap);
    active = calloc (nops + 1, sizeof *active);
    s->segs = calloc (nev + 1, sizeof *s->segs);
    if (ev == NULL || heap == NULL || active == NULL || s->segs == NULL) {
        vmc_perror ("vhdx: log replay");
        goto out;
    }
    for (i = 0; i < nops; i++) {
        ev[4 * i] = ops[i].start;
        ev[4 * i + 1] = (uint64_t) i * 2 + 1;
        ev[4 * i + 2] = ops[i].end;
        ev[4 * i + 3] = (uint64_t) i * 2;
    }
    /* Sort pairs by position (16-byte records). */
    qsort (ev, nev, 2 * sizeof *ev, cmp_u64);
    s->nsegs = 0;
    for (i = 0; i < nev;) {
        pos = ev[2 * i];
        for (; i < nev && ev[2 * i] == pos; i++) {
            uint32_t op = (uint32_t) (ev[2 * i + 1] / 2);

            if (ev[2 * i + 1] & 1) {
                active[op] = true;
                heap_push (heap, &nheap, op);
            }
            else {
                active[op] = false;
            }
        }
        while (nheap > 0 && !active[heap[0]]) {
            heap_pop (heap, &nheap);
        }
        if (i == nev || nheap == 0) {
            continue;
        }
        top = heap[0];
        last = s->nsegs > 0 ? &s->segs[s->nsegs - 1] : NULL;
        if (last != NULL && last->start + last->len == pos &&
            ops[top].data == NULL && last->data == NULL) {
            last->len += ev[2 * i] - pos;       /* zeros meet zeros */
            continue;
        }
        seg = &s->segs[s->nsegs++];
        seg->start = pos;
        seg->len = ev[2 * i] - pos;
        seg->data = ops[top].data != NULL ?
            ops[top].data + (pos - ops[top].start) : NULL;
    }
    r = 0;
out:
    free (ev);
    free (heap);
    free (active);
    return r;
}

/* Turn the active sequence from TAIL into ops (data sectors are rewritten
 * in place into the 4 KiB they stand for). */
static int
collect_ops (struct log_scan *ls, uint64_t tail, uint64_t count,
             struct op **opsp, uint32_t *nopsp, uint64_t *max_end)
{
    struct vhdx *s = ls->img->priv;
    unsigned char *buf = (unsigned char *) ls->buf;
    struct op *ops = NULL;
    uint32_t nops = 0, k;
    uint64_t pos = tail, c, ndata, fo, len, end, total;
    const struct entry *e;
    const unsigned char *d;
    unsigned char *ds;

    /* Size the list by the descriptors of the sequence. */
    for (c = 0, total = 0; c < count; c++) {
        e = &ls->ent[pos / VHDX_LOG_SECTOR];
        total += e->ndesc;
        pos = (pos + e->length) % ls->len;
    }
    if (total > VHDX_LOG_MAX_OPS) {
        vmc_error ("vhdx: the log needs replay and holds more than %u "
                   "descriptors", VHDX_LOG_MAX_OPS);
        return -1;
    }
    ops = calloc (total + 1, sizeof *ops);
    if (ops == NULL) {
        vmc_perror ("vhdx: log replay");
        return -1;
    }
    pos = tail;
    *max_end = 0;
    for (c = 0; c < count; c++) {
        e = &ls->ent[pos / VHDX_LOG_SECTOR];
        ndata = 0;
        for (k = 0; k < e->ndesc; k++) {
            d = desc_at (ls, pos, k);
            fo = get_le64 (d + 16);
            if (memcmp (d, "zero", 4) == 0) {
                len = get_le64 (d + 8);
                ds = NULL;
                if (len == 0) {
                    continue;
                }
            }
            else {
                len = VHDX_LOG_SECTOR;
                ds = buf + (pos + (desc_sectors (e->ndesc) + ndata) *
                            VHDX_LOG_SECTOR) % ls->len;
                ndata++;
                /* LeadingBytes and TrailingBytes take back their place. */
                memcpy (ds, d + 8, 8);
                memcpy (ds + VHDX_LOG_SECTOR - 4, d + 4, 4);
            }
            if (ckd_add (&end, fo, len) || end > VHDX_MAX_FILE_SIZE) {
                vmc_error ("vhdx: the log needs replay and writes past "
                           "%" PRIu64 " TiB (file offset 0x%" PRIx64 ")",
                           VHDX_MAX_FILE_SIZE >> 40, fo);
                goto fail;
            }
            if (fo < VHDX_RT1_OFF) {
                vmc_error ("vhdx: the log needs replay and writes into the "
                           "file headers (file offset 0x%" PRIx64 ")", fo);
                goto fail;
            }
            if (fo < s->log_off + s->log_len && s->log_off < end) {
                vmc_error ("vhdx: the log needs replay and writes into the "
                           "log itself (file offset 0x%" PRIx64 ")", fo);
                goto fail;
            }
            ops[nops].start = fo;
            ops[nops].end = end;
            ops[nops].data = ds;
            nops++;
            *max_end = MAX (*max_end, end);
        }
        pos = (pos + e->length) % ls->len;
    }
    *opsp = ops;
    *nopsp = nops;
    return 0;
fail:
    free (ops);
    return -1;
}

int
vhdx_log_replay (struct image *img)
{
    struct vhdx *s = img->priv;
    struct log_scan ls = { 0 };
    struct op *ops = NULL;
    uint32_t nops = 0;
    uint64_t pos, count, best = UINT64_MAX, best_count = 0, max_end;
    const struct entry *h;
    char g[VHDX_GUID_STR];
    int r = -1;

    vhdx_guid_str (s->log_guid, g);
    if (s->log_len == 0) {
        vmc_error ("vhdx: the log needs replay (log GUID %s) but the header "
                   "gives it no space", g);
        return -1;
    }
    if (s->log_len > VHDX_LOG_MAX) {
        vmc_error ("vhdx: the log needs replay and its %" PRIu64 " MiB are "
                   "more than the %u MiB this reader replays",
                   s->log_len / VHDX_MIB, VHDX_LOG_MAX / VHDX_MIB);
        return -1;
    }
    ls.img = img;
    ls.len = s->log_len;
    ls.nsect = s->log_len / VHDX_LOG_SECTOR;
    ls.crc_budget = 16 * s->log_len;
    s->log_buf = image_alloc_table (img, "log", s->log_len, 1, VHDX_LOG_MAX);
    ls.ent = image_alloc_table (img, "log entries", ls.nsect,
                                sizeof *ls.ent,
                                VHDX_LOG_MAX / VHDX_LOG_SECTOR *
                                sizeof *ls.ent);
    if (s->log_buf == NULL || ls.ent == NULL) {
        goto out;
    }
    ls.buf = s->log_buf;
    if (bdev_pread (img->file, s->log_buf, s->log_len, s->log_off) == -1) {
        goto out;
    }
    for (pos = 0; pos < ls.len; pos += VHDX_LOG_SECTOR) {
        if (check_entry (&ls, pos) == -1) {
            goto out;
        }
    }
    for (pos = 0; pos < ls.len; pos += VHDX_LOG_SECTOR) {
        h = &ls.ent[pos / VHDX_LOG_SECTOR];
        if (h->state != ENTRY_VALID || !sequence_valid (&ls, pos, &count)) {
            continue;
        }
        if (best != UINT64_MAX &&
            h->seq == ls.ent[best / VHDX_LOG_SECTOR].seq) {
            vmc_error ("vhdx: the log needs replay and two log sequences "
                       "end with sequence number %" PRIu64, h->seq);
            goto out;
        }
        if (best == UINT64_MAX || h->seq > ls.ent[best / VHDX_LOG_SECTOR].seq) {
            best = pos;
            best_count = count;
        }
    }
    if (best == UINT64_MAX) {
        /* Nothing was committed: at most a torn first entry. */
        vmc_warn ("vhdx: %s: log GUID %s is set but the log holds no valid "
                  "sequence%s; nothing to replay", img->filename, g,
                  ls.matching_seen ? " (only damaged or torn entries)" : "");
        r = 0;
        goto out;
    }
    h = &ls.ent[best / VHDX_LOG_SECTOR];
    if (h->flushed > s->file_size) {
        vmc_error ("vhdx: the log needs replay and the file (%" PRIu64
                   " bytes) is shorter than its flushed size %" PRIu64
                   ": the file was truncated", s->file_size, h->flushed);
        goto out;
    }
    if (h->last > VHDX_MAX_FILE_SIZE) {
        vmc_error ("vhdx: the log needs replay and its last file offset 0x%"
                   PRIx64 " is past %" PRIu64 " TiB", h->last,
                   VHDX_MAX_FILE_SIZE >> 40);
        goto out;
    }
    if (collect_ops (&ls, h->tail, best_count, &ops, &nops, &max_end) == -1 ||
        build_overlay (img, ops, nops) == -1) {
        goto out;
    }
    s->vfile_size = MAX (s->file_size, MAX (h->last, max_end));
    s->log_replayed = true;
    s->log_entries = best_count;
    s->log_head_seq = h->seq;
    r = 0;
out:
    free (ops);
    free (ls.ent);
    if (!s->log_replayed) {
        free (s->log_buf);
        s->log_buf = NULL;
    }
    return r;
}

int
vhdx_vread (struct image *img, void *buf, size_t count, uint64_t offset)
{
    struct vhdx *s = img->priv;
    unsigned char *p = buf;
    uint64_t real = 0, end, a, b;
    size_t lo, hi, mid;

    if (range_outside (offset, count, s->vfile_size)) {
        vmc_error ("vhdx: read of %zu bytes at 0x%" PRIx64 " is past the "
                   "end of the file", count, offset);
        return -1;
    }
    if (offset < s->file_size) {
        real = MIN ((uint64_t) count, s->file_size - offset);
        if (bdev_pread (img->file, p, real, offset) == -1) {
            return -1;
        }
    }
    memset (p + real, 0, count - real);
    if (s->nsegs == 0) {
        return 0;
    }
    /* The first segment that ends after offset. */
    end = offset + count;
    lo = 0;
    hi = s->nsegs;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (s->segs[mid].start + s->segs[mid].len <= offset) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    for (; lo < s->nsegs && s->segs[lo].start < end; lo++) {
        const struct vhdx_seg *g = &s->segs[lo];

        a = MAX (g->start, offset);
        b = MIN (g->start + g->len, end);
        if (g->data != NULL) {
            memcpy (p + (a - offset), g->data + (a - g->start), b - a);
        }
        else {
            memset (p + (a - offset), 0, b - a);
        }
    }
    return 0;
}

void
vhdx_log_free (struct vhdx *s)
{
    free (s->segs);
    s->segs = NULL;
    s->nsegs = 0;
    free (s->log_buf);
    s->log_buf = NULL;
}
