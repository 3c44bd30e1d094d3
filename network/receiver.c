/* SPDX-License-Identifier: MIT */
/*
 * The receiver daemon; see receiver.h and PROTOCOL.md.
 *
 * One thread per connection, each with bounded buffers (one frame, one
 * decompressed extent, the sink's granule) and at most one disk image open
 * for writing.  A connection serves one job, which it locks: a second
 * connection for the same job is told to retry.  Data is written as it
 * arrives, straight into DIR/JOB/diskN.EXT.part; every ack_bytes or
 * ack_ms the image is checkpointed (image_checkpoint: data and mapping
 * metadata durable), the block hashes and the checkpoint state are saved,
 * and only then is the durable offset acknowledged.  A disk is renamed to
 * its final name once the digest of what was written matches the
 * sender's.
 *
 * Failures keep what is durable: a dropped or silent sender, a full disk
 * (the job is "paused" and the sender retries), SIGTERM (connections stop
 * between frames, checkpoint, and tell the sender to come back).  Nothing
 * a sender says is trusted: frames are bounded before they are read,
 * every message is decoded field by field, extents must continue exactly
 * where the disk is, and every hash is checked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include "../converter/lib/digest.h"
#include "../converter/lib/error.h"
#include "../converter/lib/image.h"
#include "../converter/lib/options.h"
#include "../converter/lib/rounding.h"
#include "../converter/lib/sink.h"
#include "addr.h"
#include "job.h"
#include "proto.h"
#include "receiver.h"
#include "tls.h"
#include "tokens.h"

struct receiver {
    const struct receiver_config *c;
    struct tls_conf *tls;
    atomic_bool stopping;
    pthread_mutex_t lock;       /* the connection list, the log */
    pthread_cond_t idle;        /* signalled when a connection ends */
    struct conn *conns;
    unsigned nconns;
};

/* The disk a connection is writing. */
struct writer {
    uint32_t disk;
    struct image *img;
    struct sink *sink;
    struct digest *dg;
    uint64_t pos;               /* guest bytes received and written */
    uint64_t ckpt_pos;          /* last checkpoint */
    double ckpt_time;
    unsigned char *hashes;      /* block hashes since the checkpoint */
    uint64_t nhashes, cap;
};

struct conn {
    struct receiver *r;
    struct conn *next;
    int fd;                     /* until the TLS connection owns it */
    int sock;                   /* the socket, for shutdown on stop */
    char peer[64];
    struct tls *t;
    struct job *job;
    unsigned char *frame;       /* one frame's payload */
    unsigned char *plain;       /* one decompressed extent */
    ZSTD_DCtx *zd;
    struct writer *w;           /* NULL when no disk is open */
    bool token_single;          /* authenticated by a single-use token */
    char token[256];
    uint64_t bytes_in;
    bool error_sent;            /* close gently, so the sender reads it */
    double accepted;            /* when; see drop_slow_clients */
    bool authenticated;         /* under r->lock */
    atomic_bool dropped;        /* by drop_slow_clients */
};

/* The largest HELLO: magic, version, two strings, flags. */
#define HELLO_MAX_FRAME (16u << 10)

static struct receiver *the_receiver;
static int stop_pipe[2] = { -1, -1 };

static double
now (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
rlog (struct conn *cn, const char *fmt, ...)
{
    struct receiver *r = cn != NULL ? cn->r : the_receiver;
    char msg[1200], ts[32];
    time_t t = time (NULL);
    struct tm tm;
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    strftime (ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", gmtime_r (&t, &tm));
    pthread_mutex_lock (&r->lock);
    if (cn != NULL) {
        fprintf (stderr, "%s vmconvert receive: [%s%s%s] %s\n", ts, cn->peer,
                 cn->job != NULL ? " " : "",
                 cn->job != NULL ? cn->job->name : "", msg);
    }
    else {
        fprintf (stderr, "%s vmconvert receive: %s\n", ts, msg);
    }
    pthread_mutex_unlock (&r->lock);
}

static int
send_msg (struct conn *cn, uint32_t type, const struct wbuf *w)
{
    return proto_send (cn->t, type, w);
}

static void
send_error (struct conn *cn, uint32_t code, const char *fmt, ...)
{
    unsigned char buf[1024];
    struct wbuf w = { buf, 0, sizeof buf, false };
    char msg[512];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    enc_error (&w, code, msg);
    (void) send_msg (cn, MSG_ERROR, &w);
    cn->error_sent = true;
    rlog (cn, "error sent to the sender: %s", msg);
}

/* ---- the job ------------------------------------------------------ */

static void
job_set_state (struct conn *cn, const char *state, const char *error)
{
    struct job *j = cn->job;

    snprintf (j->state, sizeof j->state, "%s", state);
    snprintf (j->error, sizeof j->error, "%s", error != NULL ? error : "");
    if (strcmp (state, "done") == 0 || strcmp (state, "failed") == 0) {
        job_unreserve (j);
    }
    if (job_save_meta (j) == -1 || job_save_json (j) == -1) {
        rlog (cn, "cannot record the job state: %s", vmc_get_error ());
    }
}

/* The receiver's part of the digest: block hashes are kept until the
 * next checkpoint, then appended to diskN.hashes. */
static int
collect_hash (void *opaque, uint64_t index,
              const unsigned char hash[DIGEST_BLOCK_HASH])
{
    struct writer *w = opaque;

    (void) index;
    return digest_hashes_append (&w->hashes, &w->nhashes, &w->cap, hash, 1);
}

static void
writer_free (struct writer *w)
{
    if (w == NULL) {
        return;
    }
    sink_free (w->sink);
    digest_free (w->dg);
    image_close (w->img);
    free (w->hashes);
    free (w);
}

static int
create_params (struct conn *cn, uint32_t disk, struct create_params *p,
               struct options *opts)
{
    memset (opts, 0, sizeof *opts);
    if (cn->job->options[0] != '\0' &&
        options_parse (opts, cn->job->options) == -1) {
        return -1;
    }
    p->size = cn->job->disks[disk].size;
    p->compress = false;
    p->opts = opts;
    return 0;
}

/* Open disk DISK for writing: new, or resumed from its checkpoint. */
static struct writer *
writer_open (struct conn *cn, uint32_t disk)
{
    struct job_disk *d = &cn->job->disks[disk];
    struct create_params p;
    struct options opts;
    struct writer *w;
    char file[64], path[4096];

    w = calloc (1, sizeof *w);
    if (w == NULL) {
        vmc_perror ("calloc");
        return NULL;
    }
    w->disk = disk;
    job_disk_file (cn->job, disk, true, file, sizeof file);
    job_path (cn->job, path, sizeof path, "%s", file);
    if (create_params (cn, disk, &p, &opts) == -1) {
        free (w);
        return NULL;
    }
    if (d->img_state_len == 0) {
        d->durable = 0;
        w->img = image_create (path, cn->job->format, &p);
    }
    else {
        w->img = image_resume (path, cn->job->format, &p, d->img_state,
                               d->img_state_len);
    }
    options_free (&opts);
    if (w->img == NULL ||
        job_truncate_hashes (cn->job, disk, d->durable / DIGEST_BLOCK) == -1 ||
        (w->sink = sink_new (w->img)) == NULL ||
        (w->dg = digest_new (d->size, d->durable, collect_hash, w)) == NULL) {
        writer_free (w);
        return NULL;
    }
    w->pos = w->ckpt_pos = d->durable;
    w->ckpt_time = now ();
    if (d->durable > 0) {
        rlog (cn, "disk %" PRIu32 ": resuming at %" PRIu64, disk, d->durable);
    }
    return w;
}

/* checkpoint: everything is durable, but the sender is gone. */
#define ACK_LOST (-2)

/* Make everything below w->pos durable and acknowledge it: 0, -1 when
 * something could not be made durable, ACK_LOST when only the ACK could
 * not be sent (the connection is lost; nothing is wrong here). */
static int
checkpoint (struct conn *cn)
{
    struct writer *w = cn->w;
    struct job_disk *d = &cn->job->disks[w->disk];
    unsigned char state[IMAGE_STATE_MAX], buf[64];
    struct wbuf ack = { buf, 0, sizeof buf, false };
    size_t len;

    if (w->pos == w->ckpt_pos) {
        return 0;
    }
    if (image_checkpoint (w->img, w->pos, state, &len) == -1 ||
        job_append_hashes (cn->job, w->disk, w->hashes, w->nhashes) == -1) {
        return -1;
    }
    memcpy (d->img_state, state, len);
    d->img_state_len = len;
    d->durable = w->pos;
    if (job_save_disk_state (cn->job, w->disk) == -1) {
        return -1;
    }
    w->nhashes = 0;
    w->ckpt_pos = w->pos;
    w->ckpt_time = now ();
    if (strcmp (cn->job->state, "paused") == 0) {
        snprintf (cn->job->state, sizeof cn->job->state, "receiving");
        cn->job->error[0] = '\0';
        (void) job_save_meta (cn->job);
        rlog (cn, "disk %" PRIu32 ": receiving again", w->disk);
    }
    (void) job_save_json (cn->job);
    enc_ack (&ack, w->disk, w->pos);
    return send_msg (cn, MSG_ACK, &ack) == -1 ? ACK_LOST : 0;
}


/* A checkpoint is possible where the image holds everything received and
 * the digest's blocks are complete. */
static bool
checkpoint_possible (struct conn *cn)
{
    struct writer *w = cn->w;
    uint64_t size = cn->job->disks[w->disk].size;
    uint64_t unit = MAX ((uint64_t) DIGEST_BLOCK, sink_granule (w->sink));

    return sink_settled (w->sink) && (w->pos % unit == 0 || w->pos == size);
}

/* A sender whose window is full sends nothing until it is acknowledged,
 * which may be long before ack_bytes or ack_ms are reached: when nothing
 * arrives for IDLE_ACK_MS, checkpoint and acknowledge what can be.  (The
 * sender pauses only where a checkpoint is possible; see sender.c.) */
#define IDLE_ACK_MS 50

static int
ack_when_idle (struct conn *cn)
{
    struct writer *w = cn->w;

    if (w == NULL || w->pos == w->ckpt_pos || !checkpoint_possible (cn) ||
        tls_readable (cn->t, IDLE_ACK_MS)) {
        return 0;
    }
    return checkpoint (cn);
}

/* Close the open disk; with a checkpoint first when the state allows. */
static void
writer_close (struct conn *cn, bool ckpt)
{
    if (cn->w == NULL) {
        return;
    }
    if (ckpt && checkpoint_possible (cn) && checkpoint (cn) == -1) {
        rlog (cn, "disk %" PRIu32 ": last checkpoint failed: %s", cn->w->disk,
              vmc_get_error ());
    }
    writer_free (cn->w);
    cn->w = NULL;
}

/* An I/O error on the receiver's side: a full disk pauses the job (the
 * sender retries), anything else too, with its message. */
static void
io_failure (struct conn *cn, const char *what)
{
    char msg[600];
    bool full = errno == ENOSPC || errno == EDQUOT;

    snprintf (msg, sizeof msg, "%s%s: %s",
              full ? "the receiver's disk is full: " : "", what,
              vmc_get_error ());
    writer_close (cn, false);
    /* The reserve makes the room to record why the job is paused. */
    if (full) {
        job_unreserve (cn->job);
    }
    job_set_state (cn, "paused", msg);
    send_error (cn, full ? PERR_NO_SPACE : PERR_IO, "%s", msg);
}

/* After a checkpoint that returned C (not 0): a receiver-side failure
 * pauses the job; a lost connection just ends it. */
static void
checkpoint_failed (struct conn *cn, int c)
{
    if (c == ACK_LOST) {
        rlog (cn, "connection lost: %s", vmc_get_error ());
    }
    else {
        io_failure (cn, "checkpoint");
    }
}

/* ---- messages ----------------------------------------------------- */

static int
handle_extent (struct conn *cn, const unsigned char *p, size_t len)
{
    struct msg_extent m;
    struct job_disk *d;
    const unsigned char *data = NULL;
    XXH128_canonical_t h;
    size_t n;
    int c;

    if (dec_extent (p, len, &m) == -1) {
        send_error (cn, PERR_PROTOCOL, "%s", vmc_get_error ());
        return -1;
    }
    if (m.disk >= cn->job->ndisks) {
        send_error (cn, PERR_PROTOCOL, "EXTENT: disk %" PRIu32
                    " is not in the job", m.disk);
        return -1;
    }
    d = &cn->job->disks[m.disk];
    if (d->state != DISK_RECEIVING) {
        send_error (cn, PERR_PROTOCOL, "EXTENT: disk %" PRIu32 " is %s",
                    m.disk, d->state == DISK_DONE ? "done" : "failed");
        return -1;
    }
    if (cn->w != NULL && cn->w->disk != m.disk) {
        writer_close (cn, true);
    }
    if (cn->w == NULL && (cn->w = writer_open (cn, m.disk)) == NULL) {
        io_failure (cn, "opening the disk image");
        return -1;
    }
    if (m.offset != cn->w->pos || m.length > d->size - m.offset) {
        send_error (cn, PERR_PROTOCOL, "EXTENT: disk %" PRIu32 " at %"
                    PRIu64 " (+%" PRIu32 "), expected %" PRIu64, m.disk,
                    m.offset, m.length, cn->w->pos);
        return -1;
    }
    if (m.kind == EXT_KIND_DATA) {
        switch (m.compression) {
        case COMP_NONE:
            data = m.data;
            break;
        case COMP_ZSTD:
            n = ZSTD_decompressDCtx (cn->zd, cn->plain, m.length, m.data,
                                     m.data_len);
            if (ZSTD_isError (n) || n != m.length) {
                send_error (cn, PERR_PROTOCOL, "EXTENT at %" PRIu64
                            ": bad zstd data", m.offset);
                return -1;
            }
            data = cn->plain;
            break;
        case COMP_ZLIB: {
            uLongf out = m.length;

            if (uncompress (cn->plain, &out, m.data, m.data_len) != Z_OK ||
                out != m.length) {
                send_error (cn, PERR_PROTOCOL, "EXTENT at %" PRIu64
                            ": bad zlib data", m.offset);
                return -1;
            }
            data = cn->plain;
            break;
        }
        }
        XXH128_canonicalFromHash (&h, XXH3_128bits (data, m.length));
        if (memcmp (h.digest, m.hash, PROTO_HASH_LEN) != 0) {
            char msg[200];

            snprintf (msg, sizeof msg, "disk %" PRIu32 ": the extent at %"
                      PRIu64 " does not match its hash", m.disk, m.offset);
            d->state = DISK_FAILED;
            snprintf (d->error, sizeof d->error, "%s", msg);
            writer_close (cn, false);
            job_set_state (cn, "failed", msg);
            send_error (cn, PERR_VERIFY, "%s", msg);
            return -1;
        }
    }
    if (digest_update (cn->w->dg, data, m.length) == -1) {
        send_error (cn, PERR_INTERNAL, "%s", vmc_get_error ());
        return -1;
    }
    if ((data != NULL ? sink_data (cn->w->sink, data, m.length)
                      : sink_zero (cn->w->sink, m.length)) == -1) {
        io_failure (cn, "writing");
        return -1;
    }
    cn->w->pos += m.length;
    cn->bytes_in += m.length;
    /* The last extent: write what the sink holds back, so the end can be
     * checkpointed like any other position. */
    if (cn->w->pos == d->size && sink_flush_tail (cn->w->sink) == -1) {
        io_failure (cn, "writing");
        return -1;
    }
    if ((cn->w->pos - cn->w->ckpt_pos >= cn->r->c->ack_bytes ||
         now () - cn->w->ckpt_time >= cn->r->c->ack_ms / 1000.0) &&
        checkpoint_possible (cn) && (c = checkpoint (cn)) != 0) {
        checkpoint_failed (cn, c);
        return -1;
    }
    return 0;
}

static int
handle_disk_end (struct conn *cn, const unsigned char *p, size_t len)
{
    unsigned char theirs[DIGEST_LEN], ours[DIGEST_LEN], buf[64];
    struct wbuf w = { buf, 0, sizeof buf, false };
    char file[64], from[4096], to[4096];
    struct job_disk *d;
    uint32_t disk, i;
    bool all_done = true;
    int match;

    if (dec_disk_end (p, len, &disk, theirs) == -1) {
        send_error (cn, PERR_PROTOCOL, "%s", vmc_get_error ());
        return -1;
    }
    if (disk >= cn->job->ndisks ||
        cn->job->disks[disk].state != DISK_RECEIVING) {
        send_error (cn, PERR_PROTOCOL, "DISK_END: disk %" PRIu32
                    " is not being received", disk);
        return -1;
    }
    d = &cn->job->disks[disk];
    if (cn->w != NULL && cn->w->disk != disk) {
        writer_close (cn, true);
    }
    if (cn->w == NULL && (cn->w = writer_open (cn, disk)) == NULL) {
        io_failure (cn, "opening the disk image");
        return -1;
    }
    if (cn->w->pos != d->size) {
        send_error (cn, PERR_PROTOCOL, "DISK_END: disk %" PRIu32 " has %"
                    PRIu64 " of %" PRIu64 " bytes", disk, cn->w->pos, d->size);
        return -1;
    }
    if (sink_flush_tail (cn->w->sink) == -1 ||
        image_finish (cn->w->img, true) == -1 ||
        job_append_hashes (cn->job, disk, cn->w->hashes,
                           cn->w->nhashes) == -1) {
        io_failure (cn, "finishing the disk image");
        return -1;
    }
    cn->w->nhashes = 0;
    writer_free (cn->w);
    cn->w = NULL;
    if (job_disk_digest (cn->job, disk, ours) == -1) {
        io_failure (cn, "computing the digest");
        return -1;
    }
    match = memcmp (ours, theirs, DIGEST_LEN) == 0;
    if (match) {
        job_disk_file (cn->job, disk, true, file, sizeof file);
        job_path (cn->job, from, sizeof from, "%s", file);
        job_disk_file (cn->job, disk, false, file, sizeof file);
        job_path (cn->job, to, sizeof to, "%s", file);
        if (rename (from, to) == -1) {
            vmc_perror ("rename %s", from);
            io_failure (cn, "renaming the finished disk");
            return -1;
        }
        d->state = DISK_DONE;
        d->durable = d->size;
        digest_hex (ours, d->digest);
        rlog (cn, "disk %" PRIu32 ": %" PRIu64 " bytes received, digest "
              "verified (%s)", disk, d->size, d->digest);
    }
    else {
        d->state = DISK_FAILED;
        snprintf (d->error, sizeof d->error, "the digest of what was "
                  "written does not match the sender's");
        rlog (cn, "disk %" PRIu32 ": DIGEST MISMATCH: %s", disk, d->error);
    }
    for (i = 0; i < cn->job->ndisks; i++) {
        all_done &= cn->job->disks[i].state == DISK_DONE;
    }
    if (!match) {
        job_set_state (cn, "failed", d->error);
    }
    else {
        job_set_state (cn, all_done ? "done" : "receiving", NULL);
        if (all_done) {
            rlog (cn, "job done: every disk verified");
        }
    }
    enc_disk_done (&w, disk, match ? 0 : 1, ours);
    if (send_msg (cn, MSG_DISK_DONE, &w) == -1) {
        return -1;
    }
    return match ? 0 : -1;
}

/* ---- the session --------------------------------------------------- */

/* Receive one frame of at most CAP bytes; -1 after reporting why.
 * Timeouts and closes are logged, not answered. */
static int
recv_frame (struct conn *cn, uint32_t *type, size_t *len, size_t cap)
{
    int r = proto_recv (cn->t, type, cn->frame, cap, len);

    if (r == 0) {
        return 0;
    }
    if (cn->dropped) {
        rlog (cn, "dropped: no HELLO within %d s",
              cn->r->c->idle_timeout_ms / 1000);
        return -1;
    }
    if (r == 1) {
        if (cn->job == NULL || strcmp (cn->job->state, "done") != 0) {
            rlog (cn, "the sender closed the connection");
        }
        return -1;
    }
    if (errno == EPROTO) {
        send_error (cn, PERR_PROTOCOL, "%s", vmc_get_error ());
    }
    else if (cn->r->stopping) {
        rlog (cn, "stopping");
    }
    else if (errno == ETIMEDOUT) {
        rlog (cn, "the sender was silent for %d s: dropped",
              cn->r->c->idle_timeout_ms / 1000);
    }
    else {
        rlog (cn, "connection lost: %s", vmc_get_error ());
    }
    return -1;
}

/* Authenticate the HELLO: a valid token, the token the job started with,
 * or a verified client certificate.  A token that is given must be right,
 * whatever the certificate, and a certificate that is presented must be
 * trusted, whatever the token (*WHY then says what is wrong with it). */
static bool
authenticate (struct conn *cn, const struct msg_hello *h, const char **why)
{
    const char *tokens = cn->r->c->tokens;
    enum token_kind kind = TOKEN_NONE;
    char hash[TOKEN_HASH_HEX], stored[TOKEN_HASH_HEX] = "";
    char path[4096], line[256];
    FILE *fp;

    *why = tls_peer_cert_error (cn->t);
    if (*why != NULL) {
        return false;
    }
    if (h->token[0] == '\0') {
        return tls_peer_cert_verified (cn->t);
    }
    if (tokens_lookup (tokens, h->token, &kind) == -1) {
        rlog (cn, "tokens file: %s", vmc_get_error ());
        return false;
    }
    if (kind != TOKEN_NONE) {
        cn->token_single = kind == TOKEN_SINGLE;
        snprintf (cn->token, sizeof cn->token, "%s", h->token);
        return true;
    }
    /* A consumed single-use token is still good for its own job. */
    snprintf (path, sizeof path, "%s/%s/job.meta", cn->r->c->dir, h->job);
    fp = fopen (path, "r");
    if (fp != NULL) {
        while (fgets (line, sizeof line, fp) != NULL) {
            if (sscanf (line, "token %64s", stored) == 1) {
                break;
            }
        }
        fclose (fp);
    }
    token_hash (h->token, hash);
    return stored[0] != '\0' && secret_equal (hash, stored);
}

/* Before a job takes data: room to record its state later, even if its
 * disk fills up (job_reserve).  On a full disk the job does not start or
 * stays paused, and the sender is told to come back. */
static int
reserve_space (struct conn *cn)
{
    bool full;

    if (job_reserve (cn->job) == 0) {
        return 0;
    }
    full = errno == ENOSPC || errno == EDQUOT;
    send_error (cn, full ? PERR_NO_SPACE : PERR_IO, "%s: %s; the job %s",
                full ? "the receiver's disk is full"
                     : "the receiver cannot write", vmc_get_error (),
                cn->job->exists ? "stays paused" : "cannot start yet");
    return -1;
}

static int
handle_job (struct conn *cn, const unsigned char *p, size_t len)
{
    static __thread struct msg_job m;
    unsigned char buf[16 + 12 * PROTO_MAX_DISKS];
    struct wbuf w = { buf, 0, sizeof buf, false };
    struct job *j = cn->job;
    struct msg_state st;
    uint32_t i;

    if (dec_job (p, len, &m) == -1) {
        send_error (cn, PERR_BAD_JOB, "%s", vmc_get_error ());
        return -1;
    }
    if (j->exists) {
        bool same = j->ndisks == m.ndisks;

        for (i = 0; same && i < m.ndisks; i++) {
            same = j->disks[i].size == m.disks[i].size;
        }
        if (!same) {
            send_error (cn, PERR_JOB_MISMATCH, "job %s exists with other "
                        "disks", j->name);
            return -1;
        }
        if (m.format[0] != '\0' && strcmp (m.format, j->format) != 0) {
            send_error (cn, PERR_JOB_MISMATCH, "job %s exists as %s, not %s",
                        j->name, j->format, m.format);
            return -1;
        }
        if (strcmp (j->state, "failed") == 0) {
            send_error (cn, PERR_BAD_JOB, "job %s failed (%s): start a new "
                        "job", j->name, j->error);
            return -1;
        }
        if (strcmp (j->state, "done") != 0 && reserve_space (cn) == -1) {
            return -1;
        }
    }
    else {
        const char *fmt = m.format[0] != '\0' ? m.format : cn->r->c->format;
        const struct image_format *f = image_format_by_name (fmt);

        /* The sender may ask for a format; the receiver's -o options
         * belong to its own --format only. */
        if (f == NULL || f->create == NULL) {
            send_error (cn, PERR_BAD_JOB, "format \"%s\" cannot be written "
                        "here", fmt);
            return -1;
        }
        snprintf (j->format, sizeof j->format, "%s", f->name);
        snprintf (j->options, sizeof j->options, "%s",
                  cn->r->c->options != NULL &&
                  f == image_format_by_name (cn->r->c->format)
                  ? cn->r->c->options : "");
        j->ndisks = m.ndisks;
        for (i = 0; i < m.ndisks; i++) {
            snprintf (j->disks[i].name, sizeof j->disks[i].name, "%s",
                      m.disks[i].name);
            j->disks[i].size = m.disks[i].size;
        }
        if (m.facts_len > 0) {
            j->facts = malloc (m.facts_len);
            if (j->facts == NULL) {
                send_error (cn, PERR_INTERNAL, "out of memory");
                return -1;
            }
            memcpy (j->facts, m.facts, m.facts_len);
            j->facts_len = m.facts_len;
        }
        if (reserve_space (cn) == -1) {
            return -1;
        }
        /* A single-use token is spent now, on the job it starts. */
        if (cn->token_single) {
            if (tokens_consume (cn->r->c->tokens, cn->token) == -1) {
                send_error (cn, PERR_AUTH, "authentication failed");
                rlog (cn, "single-use token: %s", vmc_get_error ());
                return -1;
            }
            token_hash (cn->token, j->token_hash);
        }
        if (job_save_meta (j) == -1) {
            io_failure (cn, "creating the job");
            return -1;
        }
        j->exists = true;
        rlog (cn, "new job: %" PRIu32 " disk(s)", j->ndisks);
    }
    /* A paused job stays paused, with its reason, until it makes progress
     * again (checkpoint): a sender retrying against a disk that is still
     * full does not make it look resumed. */
    if (strcmp (j->state, "done") != 0 && strcmp (j->state, "paused") != 0) {
        snprintf (j->state, sizeof j->state, "receiving");
        j->error[0] = '\0';
    }
    (void) job_save_meta (j);
    (void) job_save_json (j);
    st.ndisks = j->ndisks;
    for (i = 0; i < j->ndisks; i++) {
        st.disks[i].durable = j->disks[i].state == DISK_DONE
                              ? j->disks[i].size : j->disks[i].durable;
        st.disks[i].state = (uint32_t) j->disks[i].state;
    }
    enc_state (&w, &st);
    return send_msg (cn, MSG_STATE, &w);
}

static void
serve (struct conn *cn)
{
    struct receiver *r = cn->r;
    struct msg_hello h;
    struct msg_error er;
    uint32_t type;
    size_t len;
    const char *why;
    bool got_job = false;
    int c;

    cn->t = tls_accept_fd (r->tls, cn->fd, r->c->idle_timeout_ms);
    cn->fd = -1;                /* the TLS connection owns it now */
    if (cn->t == NULL) {
        if (cn->dropped) {
            rlog (cn, "refused: no TLS handshake within %d s",
                  r->c->idle_timeout_ms / 1000);
        }
        else {
            rlog (cn, "refused: %s", vmc_get_error ());
        }
        return;
    }
    /* Nothing but a small HELLO is read from a client not yet
     * authenticated. */
    if (recv_frame (cn, &type, &len, HELLO_MAX_FRAME) == -1) {
        return;
    }
    if (type != MSG_HELLO) {
        send_error (cn, PERR_PROTOCOL, "expected HELLO, got %s",
                    proto_type_name (type));
        return;
    }
    memset (&h, 0, sizeof h);
    if (dec_hello (cn->frame, len, &h) == -1) {
        send_error (cn, PERR_PROTOCOL, "%s", vmc_get_error ());
        return;
    }
    if (h.version != PROTO_VERSION) {
        send_error (cn, PERR_VERSION, "protocol version %" PRIu32
                    " is not supported (this receiver speaks %d)", h.version,
                    PROTO_VERSION);
        return;
    }
    if (!proto_job_name_valid (h.job)) {
        send_error (cn, PERR_BAD_JOB, "invalid job name (allowed: letters, "
                    "digits, '.', '_', '-'; 64 at most)");
        return;
    }
    if (!authenticate (cn, &h, &why)) {
        /* Slow down guessing. */
        usleep (200000);
        send_error (cn, PERR_AUTH, "authentication failed%s%s",
                    why != NULL ? ": " : "", why != NULL ? why : "");
        rlog (cn, "authentication failed for job %s%s%s", h.job,
              why != NULL ? ": " : "", why != NULL ? why : "");
        return;
    }
    pthread_mutex_lock (&r->lock);
    cn->authenticated = true;
    pthread_mutex_unlock (&r->lock);
    cn->job = job_open (r->c->dir, h.job);
    if (cn->job == NULL) {
        if (errno == EBUSY) {
            send_error (cn, PERR_BUSY, "job %s is busy with another "
                        "connection", h.job);
        }
        else {
            send_error (cn, PERR_INTERNAL, "%s", vmc_get_error ());
        }
        return;
    }
    snprintf (cn->job->peer, sizeof cn->job->peer, "%s", cn->peer);
    if (send_msg (cn, MSG_WELCOME, NULL) == -1) {
        return;
    }
    for (;;) {
        if (r->stopping) {
            writer_close (cn, true);
            send_error (cn, PERR_SHUTDOWN, "the receiver is stopping; "
                        "resume later");
            return;
        }
        if ((c = ack_when_idle (cn)) != 0) {
            checkpoint_failed (cn, c);
            return;
        }
        if (recv_frame (cn, &type, &len, PROTO_MAX_FRAME) == -1) {
            writer_close (cn, true);
            if (r->stopping) {
                send_error (cn, PERR_SHUTDOWN, "the receiver is stopping; "
                            "resume later");
            }
            return;
        }
        if (!got_job && type != MSG_JOB && type != MSG_PING) {
            send_error (cn, PERR_PROTOCOL, "expected JOB, got %s",
                        proto_type_name (type));
            return;
        }
        switch (type) {
        case MSG_JOB:
            if (got_job || handle_job (cn, cn->frame, len) == -1) {
                if (got_job) {
                    send_error (cn, PERR_PROTOCOL, "a second JOB");
                }
                return;
            }
            got_job = true;
            break;
        case MSG_EXTENT:
            if (handle_extent (cn, cn->frame, len) == -1) {
                writer_close (cn, false);
                return;
            }
            break;
        case MSG_DISK_END:
            if (handle_disk_end (cn, cn->frame, len) == -1) {
                return;
            }
            break;
        case MSG_PING:
            if (send_msg (cn, MSG_PONG, NULL) == -1) {
                return;
            }
            break;
        case MSG_PONG:
            break;
        case MSG_ABORT:
            if (dec_abort (cn->frame, len, er.message,
                           sizeof er.message) == -1) {
                snprintf (er.message, sizeof er.message, "(unreadable)");
            }
            writer_close (cn, true);
            job_set_state (cn, "failed", er.message);
            rlog (cn, "the sender aborted the job: %s", er.message);
            return;
        default:
            send_error (cn, PERR_PROTOCOL, "unexpected %s",
                        proto_type_name (type));
            writer_close (cn, true);
            return;
        }
    }
}

static void *
conn_thread (void *arg)
{
    struct conn *cn = arg, **pp;
    struct receiver *r = cn->r;

    cn->frame = malloc (PROTO_MAX_FRAME);
    cn->plain = malloc (PROTO_MAX_EXTENT);
    cn->zd = ZSTD_createDCtx ();
    if (cn->frame == NULL || cn->plain == NULL || cn->zd == NULL) {
        rlog (cn, "out of memory");
    }
    else {
        serve (cn);
    }
    if (cn->bytes_in > 0) {
        rlog (cn, "connection closed after %" PRIu64 " bytes", cn->bytes_in);
    }
    /* The socket is about to be closed, and its number reused: nobody may
     * shut it down any more. */
    pthread_mutex_lock (&r->lock);
    cn->sock = -1;
    pthread_mutex_unlock (&r->lock);
    writer_free (cn->w);
    if (cn->error_sent) {
        tls_close_linger (cn->t, 2000);
    }
    else {
        tls_close (cn->t);
    }
    if (cn->fd != -1) {
        close (cn->fd);
    }
    job_close (cn->job);
    ZSTD_freeDCtx (cn->zd);
    free (cn->frame);
    free (cn->plain);
    pthread_mutex_lock (&r->lock);
    for (pp = &r->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == cn) {
            *pp = cn->next;
            break;
        }
    }
    r->nconns--;
    pthread_cond_broadcast (&r->idle);
    pthread_mutex_unlock (&r->lock);
    free (cn);
    return NULL;
}

/* ---- listening ---------------------------------------------------- */

/* What a person types (or scans) into the appliance's console:
 * vmconvert://HOST:PORT/?fingerprint=sha256:HEX, with this machine's
 * name when listening on every address.  A token and a job name may be
 * added (vmconvert://TOKEN@HOST:PORT/JOB?...). */
static void
print_url (const char *bound, const char *fp)
{
    char host[256] = "";
    const char *colon = strrchr (bound, ':');
    size_t hl = colon != NULL ? (size_t) (colon - bound) : 0;

    if (colon == NULL) {
        return;
    }
    if ((hl == 7 && strncmp (bound, "0.0.0.0", 7) == 0) ||
        (hl == 4 && strncmp (bound, "[::]", 4) == 0)) {
        if (gethostname (host, sizeof host - 1) != 0) {
            return;
        }
    }
    else if (hl < sizeof host) {
        memcpy (host, bound, hl);
        host[hl] = '\0';
    }
    printf ("url vmconvert://%s%s/?fingerprint=%s\n", host, colon, fp);
}

/* A client gets the idle timeout for its TLS handshake and HELLO
 * together.  Socket timeouts bound each read only: a client trickling a
 * byte at a time would otherwise hold a connection, one of
 * max_connections, for ever without authenticating. */
static void
drop_slow_clients (struct receiver *r)
{
    double t = now ();

    pthread_mutex_lock (&r->lock);
    for (struct conn *cn = r->conns; cn != NULL; cn = cn->next) {
        if (!cn->authenticated && cn->sock != -1 && !cn->dropped &&
            t - cn->accepted > r->c->idle_timeout_ms / 1000.0) {
            cn->dropped = true;
            shutdown (cn->sock, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock (&r->lock);
}

static void
on_signal (int sig)
{
    char c = (char) sig;

    if (the_receiver != NULL) {
        the_receiver->stopping = true;
    }
    if (stop_pipe[1] != -1) {
        (void) !write (stop_pipe[1], &c, 1);
    }
}

static int
listen_on (const char *spec, char *bound, size_t blen)
{
    struct addrinfo hints = { 0 }, *ai = NULL, *a;
    char host[256], port[16], hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = -1, one = 1, e;

    if (net_split_hostport (spec, host, sizeof host, port, sizeof port,
                            PROTO_DEFAULT_PORT) == -1) {
        return -1;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    e = getaddrinfo (host[0] != '\0' ? host : NULL, port, &hints, &ai);
    if (e != 0) {
        vmc_error ("%s: %s", spec, gai_strerror (e));
        return -1;
    }
    for (a = ai; a != NULL; a = a->ai_next) {
        fd = socket (a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            continue;
        }
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind (fd, a->ai_addr, a->ai_addrlen) == 0 && listen (fd, 128) == 0) {
            break;
        }
        close (fd);
        fd = -1;
    }
    if (fd == -1) {
        vmc_perror ("listen on %s", spec);
        freeaddrinfo (ai);
        return -1;
    }
    freeaddrinfo (ai);
    if (getsockname (fd, (struct sockaddr *) &ss, &sl) == 0 &&
        getnameinfo ((struct sockaddr *) &ss, sl, hbuf, sizeof hbuf, pbuf,
                     sizeof pbuf, NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        snprintf (bound, blen, strchr (hbuf, ':') != NULL ? "[%s]:%s"
                  : "%s:%s", hbuf, pbuf);
    }
    return fd;
}

static void
peer_name (const struct sockaddr_storage *ss, socklen_t sl, char *out,
           size_t len)
{
    char h[NI_MAXHOST], p[NI_MAXSERV];

    if (getnameinfo ((const struct sockaddr *) ss, sl, h, sizeof h, p,
                     sizeof p, NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        snprintf (out, len, strchr (h, ':') != NULL ? "[%s]:%s" : "%s:%s", h,
                  p);
    }
    else {
        snprintf (out, len, "?");
    }
}

/* The certificate: given, or made once under DIR/.tls/. */
static int
setup_tls (struct receiver *r, char fp[TLS_FINGERPRINT_LEN])
{
    const struct receiver_config *c = r->c;
    char certp[4096], keyp[4096], tlsdir[4096], host[256] = "vmconvert";
    const char *cert = c->cert, *key = c->key;
    struct stat st;

    if ((cert == NULL) != (key == NULL)) {
        vmc_error ("--cert and --key go together");
        return -1;
    }
    if (cert == NULL) {
        if (snprintf (tlsdir, sizeof tlsdir, "%s/.tls", c->dir) >=
            (int) sizeof tlsdir - 16 ||
            snprintf (certp, sizeof certp, "%s/cert.pem", tlsdir) >=
            (int) sizeof certp ||
            snprintf (keyp, sizeof keyp, "%s/key.pem", tlsdir) >=
            (int) sizeof keyp) {
            vmc_error ("%s: path too long", c->dir);
            return -1;
        }
        if (mkdir (tlsdir, 0700) == -1 && errno != EEXIST) {
            vmc_perror ("%s", tlsdir);
            return -1;
        }
        if (stat (certp, &st) == -1) {
            gethostname (host, sizeof host - 1);
            if (tls_make_self_signed (certp, keyp, host) == -1) {
                return -1;
            }
            fprintf (stderr, "vmconvert receive: made a self-signed "
                     "certificate in %s\n", tlsdir);
        }
        cert = certp;
        key = keyp;
    }
    if (tls_cert_file_fingerprint (cert, fp) == -1) {
        return -1;
    }
    r->tls = tls_conf_server (cert, key, c->client_ca);
    return r->tls != NULL ? 0 : -1;
}

int
receiver_run (const struct receiver_config *c)
{
    struct receiver r = { 0 };
    struct sigaction sa = { 0 };
    char fp[TLS_FINGERPRINT_LEN], bound[300] = "?";
    struct pollfd pfd[2];
    pthread_attr_t attr;
    int lfd, status = 1;
    struct timespec deadline;

    r.c = c;
    pthread_mutex_init (&r.lock, NULL);
    pthread_cond_init (&r.idle, NULL);
    the_receiver = &r;
    if (c->tokens == NULL && c->client_ca == NULL) {
        vmc_error ("give --tokens or --client-ca: senders must authenticate");
        return 1;
    }
    if (c->tokens != NULL && access (c->tokens, R_OK) == -1) {
        vmc_perror ("%s", c->tokens);
        return 1;
    }
    if (image_format_by_name (c->format) == NULL) {
        return 1;
    }
    if (mkdir (c->dir, 0700) == -1 && errno != EEXIST) {
        vmc_perror ("%s", c->dir);
        return 1;
    }
    if (setup_tls (&r, fp) == -1) {
        return 1;
    }
    lfd = listen_on (c->listen, bound, sizeof bound);
    if (lfd == -1 || pipe2 (stop_pipe, O_CLOEXEC) == -1) {
        tls_conf_free (r.tls);
        return 1;
    }
    sa.sa_handler = on_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
    printf ("fingerprint %s\nlistening %s\n", fp, bound);
    print_url (bound, fp);
    fflush (stdout);
    rlog (NULL, "listening on %s, writing %s into %s", bound, c->format,
          c->dir);

    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    pfd[0].fd = lfd;
    pfd[0].events = POLLIN;
    pfd[1].fd = stop_pipe[0];
    pfd[1].events = POLLIN;
    while (!r.stopping) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        struct conn *cn;
        pthread_t th;
        int fd, n, one = 1;

        n = poll (pfd, 2, 1000);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            vmc_perror ("poll");
            break;
        }
        if (pfd[1].revents != 0 || r.stopping) {
            break;
        }
        drop_slow_clients (&r);
        if (n == 0) {
            continue;
        }
        fd = accept4 (lfd, (struct sockaddr *) &ss, &sl, SOCK_CLOEXEC);
        if (fd == -1) {
            continue;
        }
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cn = calloc (1, sizeof *cn);
        if (cn == NULL) {
            close (fd);
            continue;
        }
        cn->r = &r;
        cn->fd = fd;
        cn->sock = fd;
        cn->accepted = now ();
        peer_name (&ss, sl, cn->peer, sizeof cn->peer);
        pthread_mutex_lock (&r.lock);
        if (r.nconns >= c->max_conns) {
            pthread_mutex_unlock (&r.lock);
            rlog (cn, "refused: %u connections already", c->max_conns);
            close (fd);
            free (cn);
            continue;
        }
        cn->next = r.conns;
        r.conns = cn;
        r.nconns++;
        pthread_mutex_unlock (&r.lock);
        if (pthread_create (&th, &attr, conn_thread, cn) != 0) {
            pthread_mutex_lock (&r.lock);
            r.conns = cn->next;
            r.nconns--;
            pthread_mutex_unlock (&r.lock);
            close (fd);
            free (cn);
        }
    }
    close (lfd);

    /* Stop: wake every connection blocked in a read; each then stops
     * between frames, checkpoints and tells its sender to come back. */
    rlog (NULL, "stopping: %u connection(s) to finish", r.nconns);
    pthread_mutex_lock (&r.lock);
    for (struct conn *cn = r.conns; cn != NULL; cn = cn->next) {
        if (cn->sock != -1) {
            shutdown (cn->sock, SHUT_RD);
        }
    }
    pthread_mutex_unlock (&r.lock);
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    pthread_mutex_lock (&r.lock);
    while (r.nconns > 0) {
        if (pthread_cond_timedwait (&r.idle, &r.lock, &deadline) ==
            ETIMEDOUT) {
            break;
        }
    }
    status = r.nconns == 0 ? 0 : 1;
    pthread_mutex_unlock (&r.lock);
    if (status == 0) {
        rlog (NULL, "stopped");
        tls_conf_free (r.tls);
    }
    else {
        rlog (NULL, "stopped with %u connection(s) still busy", r.nconns);
    }
    return status;
}
