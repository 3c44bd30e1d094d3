/* SPDX-License-Identifier: MIT */
/*
 * The sender; see sender.h and PROTOCOL.md.
 *
 * Two threads per disk: a producer reads the source by block status, cuts
 * it into extents (1 MiB windows; runs of zero 64 KiB granules become zero
 * extents), hashes and optionally compresses them, and queues ready frames
 * in a small ring; the calling thread encrypts and sends them, reading the
 * receiver's ACKs as they come and stopping when the unacknowledged window
 * is full.
 *
 * The disk digest is folded in only as far as the receiver acknowledged:
 * block hashes of sent but unacknowledged data are kept aside, so that
 * after a reconnect the digest continues exactly at the receiver's durable
 * offset.  When the receiver is ahead of what this process has hashed (a
 * new sender process resuming a job), the missing blocks are hashed again
 * from the source, without sending anything.
 *
 * Errors come in two kinds: retryable (the connection dropped, the
 * receiver restarts, is busy or out of space) — reconnect with backoff,
 * for as long as --retry allows without progress — and final (wrong
 * fingerprint or token, a job mismatch, a digest mismatch, an unreadable
 * source, which is also reported to the receiver with ABORT).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include "../converter/lib/digest.h"
#include "../converter/lib/error.h"
#include "../converter/lib/image.h"
#include "../converter/lib/iszero.h"
#include "../converter/lib/json.h"
#include "../converter/lib/rounding.h"
#include "../converter/part/map.h"
#include "addr.h"
#include "proto.h"
#include "sender.h"
#include "tls.h"

#define WINDOW (1u << 20)           /* data read per slot */
#define GRAN (64u << 10)            /* zero runs are found at this size */
#define MAX_ZERO_RUN (256ull << 20) /* zeros covered by one slot */
#define NSLOTS 8
#define SLOT_CAP ((2u << 20) + (64u << 10))
#define HDR_LEN (8 + 4 + 8 + 4 + 4 + PROTO_HASH_LEN)
/* The receiver acknowledges only where it can checkpoint: at a multiple
 * of its checkpoint unit (a 1 MiB digest block, or a larger cluster:
 * qcow2's go up to 2 MiB).  A sender that waits for an acknowledgement
 * because its window is full must wait at such a position, or both sides
 * would wait for each other. */
#define ACK_ALIGN (2u << 20)

enum outcome { S_DONE, S_RETRY, S_FATAL };

struct disk {
    const char *path;
    struct image *img;
    uint64_t size;
    bool done;
    EVP_MD_CTX *sha;                /* block hashes folded so far */
    uint64_t folded;                /* blocks in sha */
    unsigned char *unacked;         /* hashes of blocks folded+0 .. +n */
    uint64_t nunacked, cap;
    uint64_t acked;                 /* durable offset on the receiver */
    uint64_t sent;                  /* end of what was sent */
    uint64_t max_sent;              /* the furthest ever sent */
    const struct rangeset *used;    /* the disk map's used ranges, or NULL
                                     * (--all-blocks): the rest is sent as
                                     * zeros, and hashed as zeros */
};

struct slot {
    uint64_t start, end;            /* guest range */
    unsigned char *buf;             /* frames, back to back */
    size_t len;
    unsigned char *hashes;          /* block hashes completed here */
    uint64_t first_block, nhashes, hcap;
    uint64_t data_bytes;
    uint64_t resent_bytes;          /* data below producer.resend_end */
};

struct producer {
    struct sender *s;
    struct disk *d;
    uint32_t index;
    uint64_t start;
    uint64_t resend_end;            /* sent before, up to here */
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct slot slots[NSLOTS];
    unsigned head, tail, filled;
    bool done, failed, stop;
    char error[1024];
    struct slot *cur;               /* being filled (producer side) */
    struct digest *dg;
    ZSTD_CCtx *zc;
    unsigned char *rbuf;
};

struct sender {
    const struct sender_config *c;
    struct tls_conf *tls;
    struct tls *t;
    char host[256], port[16];
    char job[80];
    struct disk disks[PROTO_MAX_DISKS];
    unsigned ndisks;
    char *facts;
    size_t facts_len;
    unsigned char *frame;           /* incoming frames */
    char last_error[1024];
    double start_time, last_progress, last_report;
    uint64_t wire_bytes, data_bytes, resent_bytes;
    double rate_start;              /* --max-rate: first byte sent */
    uint64_t rate_bytes;            /* ... and bytes since */
    uint64_t resent_max;            /* the most resent in one connection */
    uint64_t reconnects;            /* after lost or refused connections */
    uint64_t guest_bytes;           /* guest bytes sent in this run */
    uint32_t cur_disk;
    bool progress_shown;
    struct disk_map map;
    bool have_map;
};

static double
now (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
emit (struct sender *s, struct send_event *ev)
{
    ev->ndisks = s->ndisks;
    s->c->on_event (s->c->opaque, ev);
}

static void
say (struct sender *s, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    if (s->c->on_event != NULL) {
        emit (s, &(struct send_event) { .kind = SEND_MESSAGE,
                                        .message = msg });
        return;
    }
    if (s->progress_shown) {
        fputc ('\n', stderr);
        s->progress_shown = false;
    }
    if (s->c->progress == PROGRESS_JSON) {
        fprintf (stderr, "{\"event\": \"message\", \"message\": ");
        json_string (stderr, msg);
        fprintf (stderr, "}\n");
    }
    else {
        fprintf (stderr, "vmconvert send: %s\n", msg);
    }
}

static void
report_progress (struct sender *s, bool force)
{
    struct disk *d = &s->disks[s->cur_disk];
    double t = now (), el = t - s->start_time, rate, pct;
    uint64_t job_sent = 0, job_total = 0;
    long eta;

    /* Text on a terminal: one line redrawn twice a second; in a log: a
     * new line every 10 seconds. */
    if ((s->c->progress == PROGRESS_NONE && s->c->on_event == NULL) ||
        (!force && t - s->last_report <
         (s->c->progress == PROGRESS_TEXT && s->c->on_event == NULL &&
          !isatty (STDERR_FILENO) ? 10.0 : 0.5))) {
        return;
    }
    s->last_report = t;
    pct = d->size > 0 ? 100.0 * (double) d->sent / (double) d->size : 100.0;
    rate = el > 0 ? (double) s->guest_bytes / el / 1e6 : 0;
    eta = rate > 0 ? (long) ((double) (d->size - d->sent) / 1e6 / rate) : 0;
    if (s->c->on_event != NULL) {
        for (unsigned i = 0; i < s->ndisks; i++) {
            job_sent += s->disks[i].done ? s->disks[i].size
                                         : s->disks[i].sent;
            job_total += s->disks[i].size;
        }
        emit (s, &(struct send_event) {
            .kind = SEND_PROGRESS, .disk = s->cur_disk, .source = d->path,
            .sent = d->sent, .durable = d->acked, .total = d->size,
            .job_sent = job_sent, .job_total = job_total, .mbps = rate,
            .eta_seconds = rate > 0 ? (long) ((double) (job_total - job_sent)
                                              / 1e6 / rate) : -1 });
    }
    else if (s->c->progress == PROGRESS_JSON) {
        fprintf (stderr, "{\"event\": \"progress\", \"disk\": %" PRIu32
                 ", \"source\": ", s->cur_disk);
        json_string (stderr, d->path);
        fprintf (stderr, ", \"sent\": %" PRIu64 ", \"durable\": %" PRIu64
                 ", \"total\": %" PRIu64 ", \"percent\": %.2f, "
                 "\"mbps\": %.1f, \"eta_seconds\": %ld}\n", d->sent,
                 d->acked, d->size, pct, rate, eta);
    }
    else {
        bool tty = isatty (STDERR_FILENO);

        fprintf (stderr, "%sdisk %" PRIu32 "/%u %s: %6.2f%%  %8.1f MB/s  ETA "
                 "%ld:%02ld:%02ld%s", tty ? "\r" : "", s->cur_disk + 1,
                 s->ndisks, d->path, pct, rate, eta / 3600, eta / 60 % 60,
                 eta % 60, tty ? " " : "\n");
        s->progress_shown = tty;
    }
}

/* ---- digest bookkeeping (main thread) ------------------------------ */

static int
fold_block (struct disk *d, const unsigned char *h)
{
    if (EVP_DigestUpdate (d->sha, h, DIGEST_BLOCK_HASH) != 1) {
        vmc_error ("SHA-256 failed");
        return -1;
    }
    d->folded++;
    return 0;
}

static int
fold_cb (void *opaque, uint64_t index, const unsigned char *h)
{
    (void) index;
    return fold_block (opaque, h);
}

/* Blocks wholly below OFFSET (all of them at the end of the disk). */
static uint64_t
blocks_below (const struct disk *d, uint64_t offset)
{
    return offset == d->size ? (d->size + DIGEST_BLOCK - 1) / DIGEST_BLOCK
                             : offset / DIGEST_BLOCK;
}

/* Fold block hashes up to OFFSET: from the unacknowledged ones when we
 * have them, else by hashing the source again. */
static int
fold_to (struct disk *d, uint64_t offset)
{
    uint64_t want = blocks_below (d, offset), n;
    unsigned char *buf = NULL;
    struct digest *dg = NULL;
    struct extent e;
    uint64_t pos, end;
    int r = -1;

    n = MIN (want > d->folded ? want - d->folded : 0, d->nunacked);
    for (uint64_t i = 0; i < n; i++) {
        if (fold_block (d, d->unacked + i * DIGEST_BLOCK_HASH) == -1) {
            return -1;
        }
    }
    if (n > 0) {
        /* (Not before: unacked is NULL until the first hashes come.) */
        memmove (d->unacked, d->unacked + n * DIGEST_BLOCK_HASH,
                 (d->nunacked - n) * DIGEST_BLOCK_HASH);
        d->nunacked -= n;
    }
    if (d->folded >= want) {
        return 0;
    }
    /* The receiver has more than this process hashed: hash it again. */
    d->nunacked = 0;
    pos = d->folded * DIGEST_BLOCK;
    end = MIN (want * DIGEST_BLOCK, d->size);
    buf = malloc (DIGEST_BLOCK);
    dg = digest_new (d->size, pos, fold_cb, d);
    if (buf == NULL || dg == NULL) {
        goto out;
    }
    while (pos < end) {
        if (map_block_status (d->img, d->used, pos, end - pos, &e) == -1) {
            goto out;
        }
        n = e.type == EXTENT_ZERO ? e.length : MIN (e.length,
                                                    (uint64_t) DIGEST_BLOCK);
        if (e.type == EXTENT_ZERO ? digest_update (dg, NULL, n)
            : (image_pread (d->img, buf, n, pos) == -1 ||
               digest_update (dg, buf, n) == -1) ? -1 : 0) {
            goto out;
        }
        pos += n;
    }
    r = 0;
out:
    digest_free (dg);
    free (buf);
    return r;
}

/* Drop hashes of blocks at or beyond OFFSET (they will be sent again). */
static void
forget_from (struct disk *d, uint64_t offset)
{
    uint64_t keep = blocks_below (d, offset);

    d->nunacked = keep > d->folded ? MIN (d->nunacked, keep - d->folded) : 0;
}

static int
add_unacked (struct disk *d, const unsigned char *h, uint64_t n)
{
    return digest_hashes_append (&d->unacked, &d->nunacked, &d->cap, h, n);
}

static int
final_digest (struct disk *d, unsigned char out[DIGEST_LEN])
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new ();
    unsigned int len = 0;
    int r = -1;

    if (copy != NULL && EVP_MD_CTX_copy_ex (copy, d->sha) == 1 &&
        (d->nunacked == 0 ||
         EVP_DigestUpdate (copy, d->unacked,
                           d->nunacked * DIGEST_BLOCK_HASH) == 1) &&
        EVP_DigestFinal_ex (copy, out, &len) == 1 && len == DIGEST_LEN) {
        r = 0;
    }
    else {
        vmc_error ("SHA-256 failed");
    }
    EVP_MD_CTX_free (copy);
    return r;
}

/* ---- the producer thread ------------------------------------------- */

static int
slot_hash_cb (void *opaque, uint64_t index, const unsigned char *h)
{
    struct producer *p = opaque;
    struct slot *sl = p->cur;

    if (sl->nhashes == 0) {
        sl->first_block = index;
    }
    return digest_hashes_append (&sl->hashes, &sl->nhashes, &sl->hcap, h, 1);
}

/* Append one extent frame to the current slot. */
static int
add_extent (struct producer *p, uint64_t offset, uint32_t length,
            const unsigned char *data)
{
    struct slot *sl = p->cur;
    const struct sender_config *c = p->s->c;
    struct msg_extent m = { 0 };
    unsigned char *hdr = sl->buf + sl->len, *payload = hdr + HDR_LEN;
    struct wbuf w = { hdr + 8, 0, HDR_LEN - 8, false };
    size_t plen = 0, room = SLOT_CAP - sl->len - HDR_LEN;
    XXH128_canonical_t h;

    m.disk = p->index;
    m.offset = offset;
    m.length = length;
    m.kind = data != NULL ? EXT_KIND_DATA : EXT_KIND_ZERO;
    m.compression = COMP_NONE;
    if (data != NULL) {
        XXH128_canonicalFromHash (&h, XXH3_128bits (data, length));
        memcpy (m.hash, h.digest, PROTO_HASH_LEN);
        if (c->compress == COMP_ZSTD) {
            size_t n = ZSTD_compressCCtx (p->zc, payload, room, data, length,
                                          c->level != 0 ? c->level : 1);

            if (!ZSTD_isError (n) && n < length) {
                m.compression = COMP_ZSTD;
                plen = n;
            }
        }
        else if (c->compress == COMP_ZLIB) {
            uLongf n = room;

            if (compress2 (payload, &n, data, length,
                           c->level != 0 ? c->level : 1) == Z_OK &&
                n < length) {
                m.compression = COMP_ZLIB;
                plen = n;
            }
        }
        if (m.compression == COMP_NONE) {
            memcpy (payload, data, length);
            plen = length;
        }
        sl->data_bytes += length;
        if (offset < p->resend_end) {
            sl->resent_bytes += MIN ((uint64_t) length,
                                     p->resend_end - offset);
        }
    }
    enc_extent_header (&w, &m);
    if (w.overflow || w.len != HDR_LEN - 8) {
        vmc_error ("internal error: extent header");
        return -1;
    }
    /* The frame header, now that the payload's length is known. */
    hdr[0] = 0;
    hdr[1] = 0;
    hdr[2] = 0;
    hdr[3] = MSG_EXTENT;
    hdr[4] = (unsigned char) ((w.len + plen) >> 24);
    hdr[5] = (unsigned char) ((w.len + plen) >> 16);
    hdr[6] = (unsigned char) ((w.len + plen) >> 8);
    hdr[7] = (unsigned char) (w.len + plen);
    sl->len += HDR_LEN + plen;
    return 0;
}

/* Fill the current slot from the source at OFF; returns the new offset,
 * or UINT64_MAX on error. */
static uint64_t
fill_slot (struct producer *p, uint64_t off, struct extent *cur)
{
    struct disk *d = p->d;
    uint64_t n, g, glen, run_start, end;
    bool run_zero;

    if (!(cur->offset <= off && off < cur->offset + cur->length)) {
        if (map_block_status (d->img, d->used, off, d->size - off,
                              cur) == -1) {
            return UINT64_MAX;
        }
    }
    if (cur->type != EXTENT_DATA) {
        end = MIN (cur->offset + cur->length, d->size);
        end = MIN (end, off + MAX_ZERO_RUN);
        /* Slots of zeros end on an ACK_ALIGN boundary they cross, so that
         * the sender passes no such boundary without checking its window
         * there (window_full): runs that start and end inside 2 MiB blocks
         * would otherwise let any amount of data between them through. */
        if (!IS_ALIGNED (off, ACK_ALIGN)) {
            end = MIN (end, ROUND_UP (off, (uint64_t) ACK_ALIGN));
        }
        else if (ROUND_DOWN (end, (uint64_t) ACK_ALIGN) > off) {
            end = ROUND_DOWN (end, (uint64_t) ACK_ALIGN);
        }
        for (uint64_t o = off; o < end; o += n) {
            n = MIN (end - o, (uint64_t) PROTO_MAX_EXTENT);
            if (add_extent (p, o, (uint32_t) n, NULL) == -1) {
                return UINT64_MAX;
            }
        }
        if (digest_update (p->dg, NULL, end - off) == -1) {
            return UINT64_MAX;
        }
        return end;
    }
    end = MIN (MIN (ROUND_DOWN (off, WINDOW) + WINDOW, d->size),
               cur->offset + cur->length);
    n = end - off;
    if (image_pread (d->img, p->rbuf, n, off) == -1) {
        vmc_error_prefix ("%s: read error in the range %" PRIu64 "-%" PRIu64,
                          d->path, off, end - 1);
        return UINT64_MAX;
    }
    /* Runs of zero and non-zero granules (granules aligned on the disk). */
    run_start = 0;
    run_zero = false;
    for (g = 0; g < n; g += glen) {
        bool z;

        glen = MIN (GRAN - (off + g) % GRAN, n - g);
        z = is_zero (p->rbuf + g, glen);
        if (g > 0 && z != run_zero) {
            if (add_extent (p, off + run_start, (uint32_t) (g - run_start),
                            run_zero ? NULL : p->rbuf + run_start) == -1) {
                return UINT64_MAX;
            }
            run_start = g;
        }
        run_zero = z;
    }
    if (add_extent (p, off + run_start, (uint32_t) (n - run_start),
                    run_zero ? NULL : p->rbuf + run_start) == -1 ||
        digest_update (p->dg, p->rbuf, n) == -1) {
        return UINT64_MAX;
    }
    return end;
}

static void *
producer_thread (void *arg)
{
    struct producer *p = arg;
    struct extent cur = { 0, 0, EXTENT_DATA };
    uint64_t off = p->start;
    struct slot *sl;

    while (off < p->d->size) {
        pthread_mutex_lock (&p->lock);
        while (p->filled == NSLOTS && !p->stop) {
            pthread_cond_wait (&p->cond, &p->lock);
        }
        if (p->stop) {
            pthread_mutex_unlock (&p->lock);
            return NULL;
        }
        sl = &p->slots[p->head];
        pthread_mutex_unlock (&p->lock);

        sl->start = off;
        sl->len = 0;
        sl->nhashes = 0;
        sl->data_bytes = 0;
        sl->resent_bytes = 0;
        p->cur = sl;
        off = fill_slot (p, off, &cur);
        if (off == UINT64_MAX) {
            pthread_mutex_lock (&p->lock);
            p->failed = true;
            snprintf (p->error, sizeof p->error, "%s", vmc_get_error ());
            pthread_cond_broadcast (&p->cond);
            pthread_mutex_unlock (&p->lock);
            return NULL;
        }
        sl->end = off;
        pthread_mutex_lock (&p->lock);
        p->head = (p->head + 1) % NSLOTS;
        p->filled++;
        pthread_cond_broadcast (&p->cond);
        pthread_mutex_unlock (&p->lock);
    }
    pthread_mutex_lock (&p->lock);
    p->done = true;
    pthread_cond_broadcast (&p->cond);
    pthread_mutex_unlock (&p->lock);
    return NULL;
}

static void
producer_free (struct producer *p)
{
    unsigned i;

    if (p == NULL) {
        return;
    }
    for (i = 0; i < NSLOTS; i++) {
        free (p->slots[i].buf);
        free (p->slots[i].hashes);
    }
    digest_free (p->dg);
    ZSTD_freeCCtx (p->zc);
    free (p->rbuf);
    pthread_mutex_destroy (&p->lock);
    pthread_cond_destroy (&p->cond);
    free (p);
}

static struct producer *
producer_start (struct sender *s, uint32_t index, uint64_t start)
{
    struct producer *p = calloc (1, sizeof *p);
    unsigned i;

    if (p == NULL) {
        vmc_perror ("calloc");
        return NULL;
    }
    p->s = s;
    p->d = &s->disks[index];
    p->index = index;
    p->start = start;
    p->resend_end = p->d->max_sent;
    pthread_mutex_init (&p->lock, NULL);
    pthread_cond_init (&p->cond, NULL);
    p->rbuf = malloc (WINDOW);
    p->zc = ZSTD_createCCtx ();
    p->dg = digest_new (p->d->size, start, slot_hash_cb, p);
    for (i = 0; i < NSLOTS; i++) {
        p->slots[i].buf = malloc (SLOT_CAP);
        if (p->slots[i].buf == NULL) {
            break;
        }
    }
    if (p->rbuf == NULL || p->zc == NULL || p->dg == NULL || i < NSLOTS ||
        pthread_create (&p->th, NULL, producer_thread, p) != 0) {
        vmc_error ("cannot start reading %s", p->d->path);
        producer_free (p);
        return NULL;
    }
    return p;
}

static void
producer_stop (struct producer *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock (&p->lock);
    p->stop = true;
    pthread_cond_broadcast (&p->cond);
    pthread_mutex_unlock (&p->lock);
    pthread_join (p->th, NULL);
    producer_free (p);
}

/* ---- talking to the receiver --------------------------------------- */

static enum outcome
fail_retry (struct sender *s, const char *fmt, ...)
{
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (s->last_error, sizeof s->last_error, fmt, ap);
    va_end (ap);
    return S_RETRY;
}

static enum outcome
fail_fatal (struct sender *s, const char *fmt, ...)
{
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (s->last_error, sizeof s->last_error, fmt, ap);
    va_end (ap);
    return S_FATAL;
}

static enum outcome
on_error_frame (struct sender *s, size_t len)
{
    struct msg_error e;

    if (dec_error (s->frame, len, &e) == -1) {
        return fail_fatal (s, "the receiver sent a bad ERROR: %s",
                           vmc_get_error ());
    }
    if (proto_error_retryable (e.code)) {
        return fail_retry (s, "receiver: %s", e.message);
    }
    return fail_fatal (s, "receiver: %s", e.message);
}

static int
send_frame (struct sender *s, uint32_t type, const struct wbuf *w)
{
    if (proto_send (s->t, type, w) == -1) {
        return -1;
    }
    s->wire_bytes += 8 + (w != NULL ? w->len : 0);
    return 0;
}

/* Handle one incoming frame while streaming disk D.  *disk_done is set by
 * a DISK_DONE for D. */
static enum outcome
handle_incoming (struct sender *s, uint32_t di, bool *disk_done)
{
    struct disk *d = &s->disks[di];
    unsigned char dg[DIGEST_LEN];
    uint32_t type, disk, status;
    uint64_t durable;
    size_t len;

    switch (proto_recv (s->t, &type, s->frame, PROTO_MAX_FRAME, &len)) {
    case 0:
        break;
    case 1:
        return fail_retry (s, "the receiver closed the connection");
    default:
        return fail_retry (s, "%s", vmc_get_error ());
    }
    switch (type) {
    case MSG_ACK:
        if (dec_ack (s->frame, len, &disk, &durable) == -1) {
            return fail_fatal (s, "%s", vmc_get_error ());
        }
        if (disk != di || durable < d->acked || durable > d->sent) {
            return fail_fatal (s, "the receiver acknowledged disk %" PRIu32
                               " up to %" PRIu64 ", which was not sent",
                               disk, durable);
        }
        if (fold_to (d, durable) == -1) {
            return fail_fatal (s, "%s", vmc_get_error ());
        }
        d->acked = durable;
        s->last_progress = now ();
        return S_DONE;
    case MSG_DISK_DONE:
        if (dec_disk_done (s->frame, len, &disk, &status, dg) == -1 ||
            disk != di) {
            return fail_fatal (s, "bad DISK_DONE from the receiver");
        }
        if (status != 0) {
            return fail_fatal (s, "disk %" PRIu32 " (%s): the receiver's "
                               "digest does not match: the copy is NOT "
                               "verified", di, d->path);
        }
        *disk_done = true;
        return S_DONE;
    case MSG_ERROR:
        return on_error_frame (s, len);
    case MSG_PING:
        return send_frame (s, MSG_PONG, NULL) == -1
               ? fail_retry (s, "%s", vmc_get_error ()) : S_DONE;
    case MSG_PONG:
        return S_DONE;
    default:
        return fail_fatal (s, "unexpected %s from the receiver",
                           proto_type_name (type));
    }
}

/* A write failed: the receiver may have said why just before closing
 * (a full disk, a shutdown); report that rather than the reset. */
static enum outcome
write_failed (struct sender *s)
{
    uint32_t type;
    size_t len;

    snprintf (s->last_error, sizeof s->last_error, "%s", vmc_get_error ());
    while (tls_readable (s->t, 500) &&
           proto_recv (s->t, &type, s->frame, PROTO_MAX_FRAME, &len) == 0) {
        if (type == MSG_ERROR) {
            return on_error_frame (s, len);
        }
    }
    return S_RETRY;
}

/* The sender waits for acknowledgements only where the receiver can
 * acknowledge everything sent (a multiple of ACK_ALIGN), and goes on to
 * the next such position otherwise, which is at most ACK_ALIGN of data
 * further (no slot crosses one without ending there): so it waits when
 * that much more would not fit in the window.  Unacknowledged data thus
 * stays within the window, or within ACK_ALIGN when the window is
 * smaller. */
static bool
window_full (const struct sender *s, const struct disk *d)
{
    uint64_t room = s->c->window > ACK_ALIGN ? s->c->window - ACK_ALIGN : 0;

    return d->sent - d->acked > room && d->sent < d->size &&
           d->sent % ACK_ALIGN == 0;
}

/* --max-rate: after sending LEN more bytes, sleep until the average
 * since the first byte is back at the limit. */
static void
pace (struct sender *s, size_t len)
{
    double ahead;

    if (s->c->max_rate == 0) {
        return;
    }
    if (s->rate_start == 0) {
        s->rate_start = now ();
    }
    s->rate_bytes += len;
    ahead = s->rate_start + (double) s->rate_bytes / (double) s->c->max_rate
            - now ();
    if (ahead > 0) {
        struct timespec ts = { (time_t) ahead,
                               (long) ((ahead - (double) (time_t) ahead) * 1e9) };
        while (nanosleep (&ts, &ts) == -1 && errno == EINTR) {
        }
    }
}

/* Stream disk DI from its durable offset to DISK_DONE. */
static enum outcome
send_disk (struct sender *s, uint32_t di)
{
    struct disk *d = &s->disks[di];
    unsigned char buf[64], dg[DIGEST_LEN];
    struct wbuf w = { buf, 0, sizeof buf, false };
    struct producer *p;
    enum outcome o = S_DONE;
    bool disk_done = false, eof = false;
    struct slot *sl;
    uint64_t again = 0;             /* data sent before, sent again */

    s->cur_disk = di;
    d->sent = d->acked;
    p = producer_start (s, di, d->acked);
    if (p == NULL) {
        return fail_fatal (s, "%s", vmc_get_error ());
    }
    while (!eof) {
        pthread_mutex_lock (&p->lock);
        while (p->filled == 0 && !p->done && !p->failed) {
            pthread_cond_wait (&p->cond, &p->lock);
        }
        if (p->failed) {
            char msg[1024];

            snprintf (msg, sizeof msg, "%s", p->error);
            pthread_mutex_unlock (&p->lock);
            producer_stop (p);
            w.p = s->frame;
            w.cap = 1024;
            w.len = 0;
            enc_abort (&w, msg);
            (void) send_frame (s, MSG_ABORT, &w);
            /* Close gently, so the receiver reads the ABORT: closing with
             * ACKs unread would reset the connection, and a reset can
             * discard what the receiver has not read yet. */
            tls_close_linger (s->t, 2000);
            s->t = NULL;
            return fail_fatal (s, "%s", msg);
        }
        if (p->filled == 0 && p->done) {
            pthread_mutex_unlock (&p->lock);
            break;
        }
        sl = &p->slots[p->tail];
        pthread_mutex_unlock (&p->lock);

        if (tls_write_all (s->t, sl->buf, sl->len) == -1) {
            o = write_failed (s);
            break;
        }
        s->wire_bytes += sl->len;
        pace (s, sl->len);
        s->data_bytes += sl->data_bytes;
        s->guest_bytes += sl->end - sl->start;
        again += sl->resent_bytes;
        if (sl->nhashes > 0 && add_unacked (d, sl->hashes, sl->nhashes) == -1) {
            o = fail_fatal (s, "%s", vmc_get_error ());
            break;
        }
        d->sent = sl->end;
        d->max_sent = MAX (d->max_sent, d->sent);
        eof = sl->end == d->size;
        pthread_mutex_lock (&p->lock);
        p->tail = (p->tail + 1) % NSLOTS;
        p->filled--;
        pthread_cond_broadcast (&p->cond);
        pthread_mutex_unlock (&p->lock);

        /* Read what the receiver said; block while the window is full. */
        while (tls_readable (s->t, 0) || window_full (s, d)) {
            o = handle_incoming (s, di, &disk_done);
            if (o != S_DONE) {
                break;
            }
        }
        if (o != S_DONE) {
            break;
        }
        report_progress (s, false);
    }
    s->resent_bytes += again;
    s->resent_max = MAX (s->resent_max, again);
    producer_stop (p);
    if (o != S_DONE) {
        forget_from (d, d->acked);
        return o;
    }
    if (final_digest (d, dg) == -1) {
        return fail_fatal (s, "%s", vmc_get_error ());
    }
    w.len = 0;
    enc_disk_end (&w, di, dg);
    if (send_frame (s, MSG_DISK_END, &w) == -1) {
        forget_from (d, d->acked);
        return fail_retry (s, "%s", vmc_get_error ());
    }
    while (!disk_done) {
        o = handle_incoming (s, di, &disk_done);
        if (o != S_DONE) {
            forget_from (d, d->acked);
            return o;
        }
    }
    d->done = true;
    d->acked = d->size;
    report_progress (s, true);
    if (s->c->on_event != NULL) {
        char hex[2 * DIGEST_LEN + 1];

        digest_hex (dg, hex);
        emit (s, &(struct send_event) { .kind = SEND_DISK_DONE, .disk = di,
                                        .source = d->path, .digest = hex,
                                        .total = d->size });
    }
    else if (s->c->progress == PROGRESS_JSON) {
        char hex[2 * DIGEST_LEN + 1];

        digest_hex (dg, hex);
        fprintf (stderr, "{\"event\": \"disk_done\", \"disk\": %" PRIu32
                 ", \"source\": ", di);
        json_string (stderr, d->path);
        fprintf (stderr, ", \"digest\": \"%s\"}\n", hex);
    }
    else {
        say (s, "disk %" PRIu32 " (%s): %" PRIu64 " bytes sent and verified "
             "by the receiver", di, d->path, d->size);
    }
    return S_DONE;
}

/* Connect, verify the receiver's certificate and present the token and
 * the job's name: S_DONE once the receiver says WELCOME.  s->t is left
 * open (or NULL) for the caller to close. */
static enum outcome
connect_hello (struct sender *s)
{
    struct msg_hello h = { PROTO_VERSION, "", "", 0 };
    unsigned char buf[1024];
    struct wbuf w = { buf, 0, sizeof buf, false };
    uint32_t type;
    size_t len;
    int fd;

    fd = net_connect (s->host, s->port, s->c->timeout_ms);
    if (fd == -1) {
        return fail_retry (s, "%s", vmc_get_error ());
    }
    s->t = tls_connect_fd (s->tls, fd, s->host, s->c->timeout_ms);
    if (s->t == NULL) {
        /* A certificate that is not the right one will not become right
         * by trying again. */
        if (errno == EPERM) {
            return fail_fatal (s, "%s: %s", s->c->to, vmc_get_error ());
        }
        return fail_retry (s, "%s", vmc_get_error ());
    }
    snprintf (h.token, sizeof h.token, "%s", s->c->token != NULL
              ? s->c->token : "");
    snprintf (h.job, sizeof h.job, "%s", s->job);
    enc_hello (&w, &h);
    if (send_frame (s, MSG_HELLO, &w) == -1 ||
        proto_recv (s->t, &type, s->frame, PROTO_MAX_FRAME, &len) != 0) {
        return fail_retry (s, "the receiver closed the connection: %s",
                           vmc_get_error ());
    }
    if (type == MSG_ERROR) {
        return on_error_frame (s, len);
    }
    if (type != MSG_WELCOME) {
        return fail_fatal (s, "the receiver answered %s to HELLO",
                           proto_type_name (type));
    }
    return S_DONE;
}

static enum outcome
handshake (struct sender *s)
{
    static __thread struct msg_job job;
    struct msg_state st;
    unsigned char *buf;
    struct wbuf w;
    uint32_t type;
    size_t len;
    unsigned i;

    buf = malloc (PROTO_MAX_FACTS + 64 * 1024);
    if (buf == NULL) {
        return fail_fatal (s, "out of memory");
    }
    w = (struct wbuf) { buf, 0, PROTO_MAX_FACTS + 64 * 1024, false };
    memset (&job, 0, sizeof job);
    job.ndisks = s->ndisks;
    job.facts = (const unsigned char *) s->facts;
    job.facts_len = (uint32_t) s->facts_len;
    snprintf (job.format, sizeof job.format, "%s",
              s->c->format != NULL ? s->c->format : "");
    for (i = 0; i < s->ndisks; i++) {
        const char *base = strrchr (s->disks[i].path, '/');

        snprintf (job.disks[i].name, sizeof job.disks[i].name, "%s",
                  s->c->names != NULL ? s->c->names[i]
                  : base != NULL ? base + 1 : s->disks[i].path);
        job.disks[i].size = s->disks[i].size;
    }
    w.len = 0;
    enc_job (&w, &job);
    if (send_frame (s, MSG_JOB, &w) == -1 ||
        proto_recv (s->t, &type, s->frame, PROTO_MAX_FRAME, &len) != 0) {
        free (buf);
        return fail_retry (s, "the receiver closed the connection: %s",
                           vmc_get_error ());
    }
    free (buf);
    if (type == MSG_ERROR) {
        return on_error_frame (s, len);
    }
    if (type != MSG_STATE || dec_state (s->frame, len, &st) == -1 ||
        st.ndisks != s->ndisks) {
        return fail_fatal (s, "the receiver's STATE does not match the job");
    }
    for (i = 0; i < s->ndisks; i++) {
        struct disk *d = &s->disks[i];

        if (st.disks[i].state == 2) {
            return fail_fatal (s, "disk %u (%s) failed on the receiver", i,
                               d->path);
        }
        if (st.disks[i].durable > d->size ||
            (st.disks[i].durable < d->acked && !d->done)) {
            return fail_fatal (s, "the receiver's state for disk %u went "
                               "back (%" PRIu64 ", had %" PRIu64 ")", i,
                               st.disks[i].durable, d->acked);
        }
        if (st.disks[i].state == 1) {
            d->done = true;
            d->acked = d->size;
            continue;
        }
        if (fold_to (d, st.disks[i].durable) == -1) {
            return fail_fatal (s, "%s", vmc_get_error ());
        }
        forget_from (d, st.disks[i].durable);
        d->acked = st.disks[i].durable;
        if (d->acked > 0) {
            say (s, "disk %u (%s): the receiver has %" PRIu64 " of %" PRIu64
                 " bytes; resuming there", i, d->path, d->acked, d->size);
        }
    }
    return S_DONE;
}

static enum outcome
session (struct sender *s)
{
    enum outcome o;
    unsigned i;

    o = connect_hello (s);
    if (o == S_DONE) {
        o = handshake (s);
    }
    if (o == S_DONE && s->c->on_event != NULL) {
        emit (s, &(struct send_event) { .kind = SEND_CONNECTED });
    }
    for (i = 0; o == S_DONE && i < s->ndisks; i++) {
        if (!s->disks[i].done) {
            o = send_disk (s, i);
        }
    }
    if (s->t != NULL) {
        tls_close (s->t);
        s->t = NULL;
    }
    return o;
}

/* ---- setup --------------------------------------------------------- */

/* The default job name: the host name, with anything a job name may not
 * hold turned into '-'. */
static void
default_job (char *out, size_t len)
{
    char host[256] = "";
    size_t i;

    gethostname (host, sizeof host - 1);
    for (i = 0; host[i] != '\0' && i + 1 < len && i < 64; i++) {
        char c = host[i];

        out[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || (i > 0 && (c == '.' || c == '_')))
                 ? c : '-';
    }
    out[i] = '\0';
    if (!proto_job_name_valid (out)) {
        snprintf (out, len, "job");
    }
}

/* The source facts: the given file (checked to be JSON), or what we know
 * about the sources. */
static int
load_facts (struct sender *s)
{
    const struct sender_config *c = s->c;
    size_t cap = 0;
    FILE *fp;
    unsigned i;

    if (c->facts_file != NULL) {
        char *buf = malloc (PROTO_MAX_FACTS + 1);
        size_t n;

        fp = fopen (c->facts_file, "r");
        if (buf == NULL || fp == NULL) {
            free (buf);
            vmc_perror ("%s", c->facts_file);
            return -1;
        }
        n = fread (buf, 1, PROTO_MAX_FACTS + 1, fp);
        fclose (fp);
        if (n > PROTO_MAX_FACTS || !json_valid ((unsigned char *) buf, n)) {
            free (buf);
            vmc_error ("%s: not JSON, or larger than 1 MiB", c->facts_file);
            return -1;
        }
        s->facts = buf;
        s->facts_len = n;
        return 0;
    }
    fp = open_memstream (&s->facts, &cap);
    if (fp == NULL) {
        vmc_perror ("open_memstream");
        return -1;
    }
    fprintf (fp, "{\"sender\": {\"program\": \"vmconvert send\"}, \"disks\": [");
    for (i = 0; i < s->ndisks; i++) {
        fprintf (fp, "%s{\"source\": ", i > 0 ? ", " : "");
        json_string (fp, s->disks[i].path);
        fprintf (fp, ", \"format\": ");
        json_string (fp, s->disks[i].img->fmt->name);
        fprintf (fp, ", \"size\": %" PRIu64 "}", s->disks[i].size);
    }
    fprintf (fp, "]}");
    if (fclose (fp) != 0) {
        return -1;
    }
    s->facts_len = strlen (s->facts);
    return 0;
}

/* The used-block map of all the disks together (a volume group may span
 * them); its warnings are printed once, here. */
static int
build_map (struct sender *s)
{
    struct image *imgs[PROTO_MAX_DISKS];
    const char *names[PROTO_MAX_DISKS];

    for (unsigned i = 0; i < s->ndisks; i++) {
        imgs[i] = s->disks[i].img;
        names[i] = s->disks[i].path;
    }
    if (disk_map_build (&s->map, imgs, names, s->ndisks) == -1) {
        disk_map_free (&s->map);
        vmc_error_prefix ("mapping the used blocks");
        return -1;
    }
    s->have_map = true;
    for (size_t i = 0; i < s->map.whys.n; i++) {
        if (s->c->on_event != NULL) {
            emit (s, &(struct send_event) { .kind = SEND_WARNING,
                                            .message = s->map.whys.msg[i] });
        }
        else if (s->c->progress == PROGRESS_JSON) {
            fprintf (stderr, "{\"event\": \"warning\", \"message\": ");
            json_string (stderr, s->map.whys.msg[i]);
            fprintf (stderr, "}\n");
        }
        else {
            fprintf (stderr, "vmconvert: warning: %s\n", s->map.whys.msg[i]);
        }
    }
    for (unsigned i = 0; i < s->ndisks; i++) {
        s->disks[i].used = &s->map.disks[i].used;
    }
    return 0;
}

int
sender_run (const struct sender_config *c)
{
    struct sender s;
    enum outcome o;
    double backoff = c->backoff > 0 ? c->backoff : 1;
    unsigned i;
    int status = 1;

    memset (&s, 0, sizeof s);
    s.c = c;
    signal (SIGPIPE, SIG_IGN);
    if (c->nsources == 0 || c->nsources > PROTO_MAX_DISKS) {
        vmc_error ("give 1 to %d sources", PROTO_MAX_DISKS);
        return 1;
    }
    if (net_split_hostport (c->to, s.host, sizeof s.host, s.port,
                            sizeof s.port, PROTO_DEFAULT_PORT) == -1) {
        return 1;
    }
    if (c->job != NULL) {
        if (!proto_job_name_valid (c->job)) {
            vmc_error ("job name \"%s\": use letters, digits, '.', '_', '-' "
                       "(64 at most, starting with a letter or digit)",
                       c->job);
            return 1;
        }
        snprintf (s.job, sizeof s.job, "%s", c->job);
    }
    else {
        default_job (s.job, sizeof s.job);
    }
    s.ndisks = c->nsources;
    for (i = 0; i < s.ndisks; i++) {
        s.disks[i].path = c->sources[i];
        s.disks[i].img = image_open (c->sources[i], c->source_format, 0);
        s.disks[i].sha = EVP_MD_CTX_new ();
        if (s.disks[i].img == NULL) {
            goto out;
        }
        if (s.disks[i].sha == NULL ||
            EVP_DigestInit_ex (s.disks[i].sha, EVP_sha256 (), NULL) != 1) {
            vmc_error ("SHA-256 unavailable");
            goto out;
        }
        s.disks[i].size = s.disks[i].img->size;
    }
    if (!c->all_blocks && build_map (&s) == -1) {
        goto out;
    }
    s.tls = tls_conf_client (c->fingerprint, c->ca, c->cert, c->key);
    s.frame = malloc (PROTO_MAX_FRAME);
    if (s.tls == NULL || s.frame == NULL || load_facts (&s) == -1) {
        goto out;
    }
    s.start_time = s.last_progress = now ();
    for (;;) {
        uint64_t acked_before = 0;

        for (i = 0; i < s.ndisks; i++) {
            acked_before += s.disks[i].acked;
        }
        o = session (&s);
        if (o == S_DONE) {
            status = 0;
            break;
        }
        if (o == S_FATAL) {
            vmc_error ("%s", s.last_error);
            goto out;
        }
        for (i = 0; i < s.ndisks; i++) {
            acked_before -= s.disks[i].acked;
        }
        s.reconnects++;
        if (acked_before != 0) {
            /* Progress was made. */
            backoff = c->backoff > 0 ? c->backoff : 1;
        }
        if (now () - s.last_progress > c->retry_seconds) {
            vmc_error ("gave up after %d s without progress: %s",
                       c->retry_seconds, s.last_error);
            goto out;
        }
        say (&s, "%s; retrying in %.3g s", s.last_error, backoff);
        usleep ((useconds_t) (backoff * 1e6));
        backoff = MIN (backoff * 2, 30.0);
    }
    {
        double el = now () - s.start_time;
        uint64_t total = 0;

        for (i = 0; i < s.ndisks; i++) {
            total += s.disks[i].size;
        }
        if (c->on_event != NULL) {
            emit (&s, &(struct send_event) {
                .kind = SEND_DONE, .job_sent = total, .job_total = total,
                .seconds = el, .mbps = el > 0 ? (double) total / el / 1e6 : 0,
                .wire_bytes = s.wire_bytes, .resent_bytes = s.resent_bytes,
                .reconnects = s.reconnects });
        }
        else if (c->progress == PROGRESS_JSON) {
            fprintf (stderr, "{\"event\": \"done\", \"job\": ");
            json_string (stderr, s.job);
            fprintf (stderr, ", \"disks\": %u, \"bytes\": %" PRIu64
                     ", \"seconds\": %.2f, \"data_bytes\": %" PRIu64
                     ", \"wire_bytes\": %" PRIu64 ", \"resent_bytes\": %"
                     PRIu64 ", \"resent_max\": %" PRIu64 ", \"reconnects\": %"
                     PRIu64 "}\n", s.ndisks, total, el, s.data_bytes,
                     s.wire_bytes, s.resent_bytes, s.resent_max, s.reconnects);
        }
        else {
            say (&s, "job %s: %u disk(s), %" PRIu64 " bytes in %.1f s "
                 "(%.1f MB/s); %" PRIu64 " bytes of data, %" PRIu64
                 " on the wire, %" PRIu64 " resent; verified", s.job,
                 s.ndisks, total, el, el > 0 ? (double) total / el / 1e6 : 0,
                 s.data_bytes, s.wire_bytes, s.resent_bytes);
        }
    }
out:
    for (i = 0; i < s.ndisks; i++) {
        image_close (s.disks[i].img);
        EVP_MD_CTX_free (s.disks[i].sha);
        free (s.disks[i].unacked);
    }
    if (s.have_map) {
        disk_map_free (&s.map);
    }
    tls_conf_free (s.tls);
    free (s.frame);
    free (s.facts);
    return status;
}

int
sender_probe (const struct sender_config *c)
{
    struct sender s;
    int r = -1;

    memset (&s, 0, sizeof s);
    s.c = c;
    signal (SIGPIPE, SIG_IGN);
    snprintf (s.job, sizeof s.job, "%s", c->job != NULL ? c->job : "probe");
    if (net_split_hostport (c->to, s.host, sizeof s.host, s.port,
                            sizeof s.port, PROTO_DEFAULT_PORT) == -1) {
        return -1;
    }
    s.tls = tls_conf_client (c->fingerprint, c->ca, c->cert, c->key);
    s.frame = malloc (PROTO_MAX_FRAME);
    if (s.tls != NULL && s.frame != NULL) {
        if (connect_hello (&s) == S_DONE) {
            r = 0;
        }
        else {
            vmc_error ("%s", s.last_error);
        }
    }
    if (s.t != NULL) {
        tls_close (s.t);
    }
    tls_conf_free (s.tls);
    free (s.frame);
    return r;
}
