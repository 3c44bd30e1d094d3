/* SPDX-License-Identifier: MIT */
/*
 * Frames and messages of the transfer protocol; see proto.h and
 * PROTOCOL.md.  Decoders treat every byte as hostile: each field is read
 * through a bounds-checked cursor, checked for range, and the payload must
 * be consumed exactly.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../converter/lib/byteorder.h"
#include "../converter/lib/error.h"
#include "proto.h"
#include "tls.h"

bool
proto_error_retryable (uint32_t code)
{
    switch (code) {
    case PERR_BUSY:
    case PERR_NO_SPACE:
    case PERR_IO:
    case PERR_INTERNAL:
    case PERR_SHUTDOWN:
        return true;
    default:
        return false;
    }
}

const char *
proto_type_name (uint32_t type)
{
    static const char *const names[] = {
        "?", "HELLO", "WELCOME", "ERROR", "JOB", "STATE", "EXTENT", "ACK",
        "DISK_END", "DISK_DONE", "PING", "PONG", "ABORT",
    };

    return type < sizeof names / sizeof names[0] ? names[type] : "?";
}

/* ---- payload builder ---------------------------------------------- */

static unsigned char *
wspace (struct wbuf *w, size_t n)
{
    unsigned char *p;

    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return NULL;
    }
    p = w->p + w->len;
    w->len += n;
    return p;
}

void
put_u8 (struct wbuf *w, uint8_t v)
{
    unsigned char *p = wspace (w, 1);

    if (p != NULL) {
        *p = v;
    }
}

void
put_u16 (struct wbuf *w, uint16_t v)
{
    unsigned char *p = wspace (w, 2);

    if (p != NULL) {
        put_be16 (p, v);
    }
}

void
put_u32 (struct wbuf *w, uint32_t v)
{
    unsigned char *p = wspace (w, 4);

    if (p != NULL) {
        put_be32 (p, v);
    }
}

void
put_u64 (struct wbuf *w, uint64_t v)
{
    unsigned char *p = wspace (w, 8);

    if (p != NULL) {
        put_be64 (p, v);
    }
}

void
put_bytes (struct wbuf *w, const void *src, size_t n)
{
    unsigned char *p = wspace (w, n);

    if (p != NULL && n > 0) {
        memcpy (p, src, n);
    }
}

void
put_string (struct wbuf *w, const char *s)
{
    size_t n = strlen (s);

    if (n > PROTO_MAX_STRING) {
        w->overflow = true;
        return;
    }
    put_u16 (w, (uint16_t) n);
    put_bytes (w, s, n);
}

/* ---- payload reader ----------------------------------------------- */

const unsigned char *
get_bytes (struct rbuf *r, size_t n)
{
    const unsigned char *p;

    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t
get_u8 (struct rbuf *r)
{
    const unsigned char *p = get_bytes (r, 1);

    return p != NULL ? *p : 0;
}

uint16_t
get_u16 (struct rbuf *r)
{
    const unsigned char *p = get_bytes (r, 2);

    return p != NULL ? get_be16 (p) : 0;
}

uint32_t
get_u32 (struct rbuf *r)
{
    const unsigned char *p = get_bytes (r, 4);

    return p != NULL ? get_be32 (p) : 0;
}

uint64_t
get_u64 (struct rbuf *r)
{
    const unsigned char *p = get_bytes (r, 8);

    return p != NULL ? get_be64 (p) : 0;
}

int
get_string (struct rbuf *r, char *out, size_t outcap)
{
    uint16_t n = get_u16 (r);
    const unsigned char *p;
    size_t i;

    out[0] = '\0';
    if (r->bad || (size_t) n >= outcap) {
        r->bad = true;
        return -1;
    }
    p = get_bytes (r, n);
    if (p == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            r->bad = true;
            return -1;
        }
    }
    memcpy (out, p, n);
    out[n] = '\0';
    return 0;
}

/* Fail decoding MSG at FIELD unless the cursor is good; on success also
 * require that the payload was consumed exactly. */
static int
finish (struct rbuf *r, const char *msg, const char *field)
{
    if (r->bad) {
        vmc_error ("protocol: %s: bad or truncated %s", msg, field);
        return -1;
    }
    if (r->pos != r->len) {
        vmc_error ("protocol: %s: %zu unexpected bytes at the end", msg,
                   r->len - r->pos);
        return -1;
    }
    return 0;
}

#define RBUF(p, len) { (p), (len), 0, false }

/* ---- messages ----------------------------------------------------- */

void
enc_hello (struct wbuf *w, const struct msg_hello *m)
{
    put_bytes (w, PROTO_MAGIC, 8);
    put_u32 (w, m->version);
    put_string (w, m->token);
    put_string (w, m->job);
    put_u32 (w, m->flags);
}

int
dec_hello (const unsigned char *p, size_t len, struct msg_hello *m)
{
    struct rbuf r = RBUF (p, len);
    const unsigned char *magic = get_bytes (&r, 8);

    if (magic == NULL || memcmp (magic, PROTO_MAGIC, 8) != 0) {
        vmc_error ("protocol: HELLO: bad magic (not a vmconvert sender)");
        return -1;
    }
    m->version = get_u32 (&r);
    if (r.bad) {
        return finish (&r, "HELLO", "version");
    }
    if (m->version != PROTO_VERSION) {
        /* Decoded no further: a later version may differ after this. */
        return 0;
    }
    if (get_string (&r, m->token, sizeof m->token) == -1) {
        return finish (&r, "HELLO", "token");
    }
    if (get_string (&r, m->job, sizeof m->job) == -1) {
        return finish (&r, "HELLO", "job name");
    }
    m->flags = get_u32 (&r);
    return finish (&r, "HELLO", "flags");
}

void
enc_job (struct wbuf *w, const struct msg_job *m)
{
    uint32_t i;

    put_u32 (w, m->ndisks);
    put_u32 (w, m->facts_len);
    put_bytes (w, m->facts, m->facts_len);
    for (i = 0; i < m->ndisks && i < PROTO_MAX_DISKS; i++) {
        put_string (w, m->disks[i].name);
        put_u64 (w, m->disks[i].size);
        put_u32 (w, m->disks[i].flags);
    }
    put_string (w, m->format);
}

int
dec_job (const unsigned char *p, size_t len, struct msg_job *m)
{
    struct rbuf r = RBUF (p, len);
    uint32_t i;

    m->ndisks = get_u32 (&r);
    if (r.bad || m->ndisks == 0 || m->ndisks > PROTO_MAX_DISKS) {
        vmc_error ("protocol: JOB: disk count %" PRIu32 " out of range "
                   "(1..%d)", m->ndisks, PROTO_MAX_DISKS);
        return -1;
    }
    m->facts_len = get_u32 (&r);
    if (m->facts_len > PROTO_MAX_FACTS) {
        vmc_error ("protocol: JOB: source facts of %" PRIu32 " bytes "
                   "(limit %u)", m->facts_len, PROTO_MAX_FACTS);
        return -1;
    }
    m->facts = get_bytes (&r, m->facts_len);
    if (m->facts == NULL) {
        return finish (&r, "JOB", "source facts");
    }
    if (m->facts_len > 0 && !json_valid (m->facts, m->facts_len)) {
        vmc_error ("protocol: JOB: the source facts are not valid JSON");
        return -1;
    }
    for (i = 0; i < m->ndisks; i++) {
        if (get_string (&r, m->disks[i].name, sizeof m->disks[i].name) ==
            -1) {
            return finish (&r, "JOB", "disk name");
        }
        m->disks[i].size = get_u64 (&r);
        m->disks[i].flags = get_u32 (&r);
        if (r.bad) {
            return finish (&r, "JOB", "disk");
        }
        /* 2^62 bytes: beyond any real disk, and safe from overflow. */
        if (m->disks[i].size == 0 || m->disks[i].size > (UINT64_C (1) << 62)) {
            vmc_error ("protocol: JOB: disk %" PRIu32 " size %" PRIu64
                       " out of range", i, m->disks[i].size);
            return -1;
        }
    }
    get_string (&r, m->format, sizeof m->format);
    return finish (&r, "JOB", "format");
}

void
enc_state (struct wbuf *w, const struct msg_state *m)
{
    uint32_t i;

    put_u32 (w, m->ndisks);
    for (i = 0; i < m->ndisks && i < PROTO_MAX_DISKS; i++) {
        put_u64 (w, m->disks[i].durable);
        put_u32 (w, m->disks[i].state);
    }
}

int
dec_state (const unsigned char *p, size_t len, struct msg_state *m)
{
    struct rbuf r = RBUF (p, len);
    uint32_t i;

    m->ndisks = get_u32 (&r);
    if (r.bad || m->ndisks == 0 || m->ndisks > PROTO_MAX_DISKS) {
        vmc_error ("protocol: STATE: disk count %" PRIu32 " out of range",
                   m->ndisks);
        return -1;
    }
    for (i = 0; i < m->ndisks; i++) {
        m->disks[i].durable = get_u64 (&r);
        m->disks[i].state = get_u32 (&r);
        if (!r.bad && m->disks[i].state > 2) {
            vmc_error ("protocol: STATE: disk %" PRIu32 " state %" PRIu32
                       " unknown", i, m->disks[i].state);
            return -1;
        }
    }
    return finish (&r, "STATE", "disks");
}

void
enc_extent_header (struct wbuf *w, const struct msg_extent *m)
{
    put_u32 (w, m->disk);
    put_u64 (w, m->offset);
    put_u32 (w, m->length);
    put_u8 (w, m->kind);
    put_u8 (w, m->compression);
    put_u16 (w, 0);
    put_bytes (w, m->hash, PROTO_HASH_LEN);
}

int
dec_extent (const unsigned char *p, size_t len, struct msg_extent *m)
{
    struct rbuf r = RBUF (p, len);
    const unsigned char *h;

    m->disk = get_u32 (&r);
    m->offset = get_u64 (&r);
    m->length = get_u32 (&r);
    m->kind = get_u8 (&r);
    m->compression = get_u8 (&r);
    (void) get_u16 (&r);
    h = get_bytes (&r, PROTO_HASH_LEN);
    if (h == NULL) {
        return finish (&r, "EXTENT", "header");
    }
    memcpy (m->hash, h, PROTO_HASH_LEN);
    if (m->length == 0 || m->length > PROTO_MAX_EXTENT) {
        vmc_error ("protocol: EXTENT: length %" PRIu32 " out of range "
                   "(1..%u)", m->length, PROTO_MAX_EXTENT);
        return -1;
    }
    if (m->kind > EXT_KIND_ZERO) {
        vmc_error ("protocol: EXTENT: unknown kind %u", m->kind);
        return -1;
    }
    if (m->compression > COMP_ZLIB) {
        vmc_error ("protocol: EXTENT: unknown compression %u",
                   m->compression);
        return -1;
    }
    m->data = p + r.pos;
    m->data_len = (uint32_t) (len - r.pos);
    if (m->kind == EXT_KIND_ZERO && m->data_len != 0) {
        vmc_error ("protocol: EXTENT: a zero extent carries %" PRIu32
                   " bytes of data", m->data_len);
        return -1;
    }
    if (m->kind == EXT_KIND_DATA && m->compression == COMP_NONE &&
        m->data_len != m->length) {
        vmc_error ("protocol: EXTENT: %" PRIu32 " bytes of data for a "
                   "length of %" PRIu32, m->data_len, m->length);
        return -1;
    }
    if (m->kind == EXT_KIND_DATA && m->data_len == 0) {
        vmc_error ("protocol: EXTENT: a data extent without data");
        return -1;
    }
    return 0;
}

void
enc_ack (struct wbuf *w, uint32_t disk, uint64_t durable)
{
    put_u32 (w, disk);
    put_u64 (w, durable);
}

int
dec_ack (const unsigned char *p, size_t len, uint32_t *disk,
         uint64_t *durable)
{
    struct rbuf r = RBUF (p, len);

    *disk = get_u32 (&r);
    *durable = get_u64 (&r);
    return finish (&r, "ACK", "fields");
}

void
enc_disk_end (struct wbuf *w, uint32_t disk,
              const unsigned char digest[DIGEST_LEN])
{
    put_u32 (w, disk);
    put_bytes (w, digest, DIGEST_LEN);
}

int
dec_disk_end (const unsigned char *p, size_t len, uint32_t *disk,
              unsigned char digest[DIGEST_LEN])
{
    struct rbuf r = RBUF (p, len);
    const unsigned char *d;

    *disk = get_u32 (&r);
    d = get_bytes (&r, DIGEST_LEN);
    if (d != NULL) {
        memcpy (digest, d, DIGEST_LEN);
    }
    return finish (&r, "DISK_END", "digest");
}

void
enc_disk_done (struct wbuf *w, uint32_t disk, uint32_t status,
               const unsigned char digest[DIGEST_LEN])
{
    put_u32 (w, disk);
    put_u32 (w, status);
    put_bytes (w, digest, DIGEST_LEN);
}

int
dec_disk_done (const unsigned char *p, size_t len, uint32_t *disk,
               uint32_t *status, unsigned char digest[DIGEST_LEN])
{
    struct rbuf r = RBUF (p, len);
    const unsigned char *d;

    *disk = get_u32 (&r);
    *status = get_u32 (&r);
    d = get_bytes (&r, DIGEST_LEN);
    if (d != NULL) {
        memcpy (digest, d, DIGEST_LEN);
    }
    if (!r.bad && *status > 1) {
        vmc_error ("protocol: DISK_DONE: unknown status %" PRIu32, *status);
        return -1;
    }
    return finish (&r, "DISK_DONE", "fields");
}

void
enc_error (struct wbuf *w, uint32_t code, const char *message)
{
    char m[512];

    snprintf (m, sizeof m, "%s", message);
    put_u32 (w, code);
    put_string (w, m);
}

int
dec_error (const unsigned char *p, size_t len, struct msg_error *m)
{
    struct rbuf r = RBUF (p, len);

    m->code = get_u32 (&r);
    if (get_string (&r, m->message, sizeof m->message) == -1) {
        return finish (&r, "ERROR", "message");
    }
    return finish (&r, "ERROR", "fields");
}

void
enc_abort (struct wbuf *w, const char *message)
{
    char m[512];

    snprintf (m, sizeof m, "%s", message);
    put_string (w, m);
}

int
dec_abort (const unsigned char *p, size_t len, char *message, size_t cap)
{
    struct rbuf r = RBUF (p, len);

    if (get_string (&r, message, cap) == -1) {
        return finish (&r, "ABORT", "message");
    }
    return finish (&r, "ABORT", "fields");
}

bool
proto_job_name_valid (const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9');

        if (i >= 64 || !(alnum || (i > 0 && (c == '.' || c == '_' ||
                                             c == '-')))) {
            return false;
        }
    }
    return i > 0;
}

/* ---- JSON validation (RFC 8259), iterative over a bounded stack ---- */

struct jscan {
    const unsigned char *p;
    size_t len, pos;
};

static void
skip_ws (struct jscan *j)
{
    while (j->pos < j->len && (j->p[j->pos] == ' ' || j->p[j->pos] == '\t' ||
                               j->p[j->pos] == '\n' || j->p[j->pos] == '\r')) {
        j->pos++;
    }
}

static bool
scan_string (struct jscan *j)
{
    unsigned i;

    j->pos++;                       /* opening quote */
    while (j->pos < j->len) {
        unsigned char c = j->p[j->pos++];

        if (c == '"') {
            return true;
        }
        if (c < 0x20) {
            return false;
        }
        if (c == '\\') {
            if (j->pos >= j->len) {
                return false;
            }
            c = j->p[j->pos++];
            if (c == 'u') {
                for (i = 0; i < 4; i++) {
                    if (j->pos >= j->len ||
                        !((j->p[j->pos] >= '0' && j->p[j->pos] <= '9') ||
                          ((j->p[j->pos] | 0x20) >= 'a' &&
                           (j->p[j->pos] | 0x20) <= 'f'))) {
                        return false;
                    }
                    j->pos++;
                }
            }
            else if (strchr ("\"\\/bfnrt", c) == NULL || c == '\0') {
                return false;
            }
        }
    }
    return false;
}

static bool
scan_digits (struct jscan *j)
{
    size_t start = j->pos;

    while (j->pos < j->len && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') {
        j->pos++;
    }
    return j->pos > start;
}

static bool
scan_number (struct jscan *j)
{
    if (j->p[j->pos] == '-') {
        j->pos++;
    }
    if (j->pos < j->len && j->p[j->pos] == '0') {
        j->pos++;
    }
    else if (!scan_digits (j)) {
        return false;
    }
    if (j->pos < j->len && j->p[j->pos] == '.') {
        j->pos++;
        if (!scan_digits (j)) {
            return false;
        }
    }
    if (j->pos < j->len && (j->p[j->pos] | 0x20) == 'e') {
        j->pos++;
        if (j->pos < j->len && (j->p[j->pos] == '+' || j->p[j->pos] == '-')) {
            j->pos++;
        }
        if (!scan_digits (j)) {
            return false;
        }
    }
    return true;
}

static bool
scan_word (struct jscan *j, const char *w)
{
    size_t n = strlen (w);

    if (j->len - j->pos < n || memcmp (j->p + j->pos, w, n) != 0) {
        return false;
    }
    j->pos += n;
    return true;
}

bool
json_valid (const unsigned char *p, size_t len)
{
    struct jscan j = { p, len, 0 };
    char stack[64];                 /* '{' or '[' per open container */
    unsigned depth = 0;
    bool need_value = true, allow_close = false;

    for (;;) {
        skip_ws (&j);
        if (!need_value && depth == 0) {
            return j.pos == j.len;      /* one value, nothing after it */
        }
        if (j.pos >= j.len) {
            return false;
        }
        if (need_value) {
            unsigned char c = j.p[j.pos];

            if (allow_close && depth > 0 &&
                c == (stack[depth - 1] == '{' ? '}' : ']')) {
                j.pos++;
                depth--;
                need_value = false;
            }
            else if (c == '{' || c == '[') {
                if (depth == sizeof stack) {
                    return false;
                }
                stack[depth++] = (char) c;
                j.pos++;
                allow_close = true;
                if (c == '{') {
                    skip_ws (&j);
                    if (j.pos < j.len && j.p[j.pos] == '}') {
                        continue;       /* the close is handled above */
                    }
                    if (j.pos >= j.len || j.p[j.pos] != '"' ||
                        !scan_string (&j)) {
                        return false;
                    }
                    skip_ws (&j);
                    if (j.pos >= j.len || j.p[j.pos++] != ':') {
                        return false;
                    }
                    allow_close = false;
                }
                continue;
            }
            else if (c == '"') {
                if (!scan_string (&j)) {
                    return false;
                }
                need_value = false;
            }
            else if (c == '-' || (c >= '0' && c <= '9')) {
                if (!scan_number (&j)) {
                    return false;
                }
                need_value = false;
            }
            else if (scan_word (&j, "true") || scan_word (&j, "false") ||
                     scan_word (&j, "null")) {
                need_value = false;
            }
            else {
                return false;
            }
            allow_close = false;
            continue;
        }
        /* After a value inside a container: a comma or the close. */
        if (j.p[j.pos] == ',') {
            j.pos++;
            if (stack[depth - 1] == '{') {
                skip_ws (&j);
                if (j.pos >= j.len || j.p[j.pos] != '"' || !scan_string (&j)) {
                    return false;
                }
                skip_ws (&j);
                if (j.pos >= j.len || j.p[j.pos++] != ':') {
                    return false;
                }
            }
            need_value = true;
            allow_close = false;
        }
        else if (j.p[j.pos] == (stack[depth - 1] == '{' ? '}' : ']')) {
            j.pos++;
            depth--;
        }
        else {
            return false;
        }
    }
}

/* ---- frame I/O ---------------------------------------------------- */

int
proto_send (struct tls *t, uint32_t type, const struct wbuf *payload)
{
    unsigned char hdr[8];
    size_t len = payload != NULL ? payload->len : 0;

    if (payload != NULL && payload->overflow) {
        vmc_error ("protocol: internal error: %s payload overflow",
                   proto_type_name (type));
        return -1;
    }
    put_be32 (hdr, type);
    put_be32 (hdr + 4, (uint32_t) len);
    if (tls_write_all (t, hdr, sizeof hdr) == -1 ||
        (len > 0 && tls_write_all (t, payload->p, len) == -1)) {
        return -1;
    }
    return 0;
}

int
proto_recv (struct tls *t, uint32_t *type, unsigned char *buf, size_t cap,
            size_t *len)
{
    unsigned char hdr[8];
    ssize_t got;
    uint32_t n;

    /* The end of the stream between frames is a clean close. */
    got = tls_read (t, hdr, sizeof hdr);
    if (got == 0) {
        return 1;
    }
    if (got == -1 ||
        tls_read_full (t, hdr + got, sizeof hdr - (size_t) got) == -1) {
        return -1;
    }
    *type = get_be32 (hdr);
    n = get_be32 (hdr + 4);
    if (*type < MSG_HELLO || *type > MSG_ABORT) {
        errno = EPROTO;
        vmc_error ("protocol: unknown frame type %" PRIu32, *type);
        return -1;
    }
    if (n > cap || n > PROTO_MAX_FRAME) {
        errno = EPROTO;
        vmc_error ("protocol: %s frame of %" PRIu32 " bytes is too large "
                   "(limit %zu)", proto_type_name (*type), n,
                   cap < PROTO_MAX_FRAME ? cap : (size_t) PROTO_MAX_FRAME);
        return -1;
    }
    if (n > 0 && tls_read_full (t, buf, n) == -1) {
        return -1;
    }
    *len = n;
    return 0;
}
