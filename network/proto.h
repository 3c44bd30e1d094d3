/* SPDX-License-Identifier: MIT */
/*
 * The transfer protocol's frames and messages (network/PROTOCOL.md).
 *
 * Encoding: a struct wbuf collects a payload with put_*() (an overflow is
 * remembered, not a crash); proto_send() writes header and payload.
 * Decoding: every byte from the network is hostile.  proto_recv() refuses
 * a frame longer than the caller's limit before reading its payload; a
 * struct rbuf reads fields with get_*(), which fail softly past the end,
 * and each message decoder checks the payload was exactly consumed and
 * every field is in range, naming the message and the field on error.
 */
#ifndef VMC_PROTO_H
#define VMC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../converter/lib/digest.h"

#define PROTO_VERSION 1
#define PROTO_MAGIC "VMCNVRT1"
#define PROTO_DEFAULT_PORT 10874
#define PROTO_MAX_EXTENT (4u << 20)
#define PROTO_MAX_FRAME ((8u << 20) + 4096)
#define PROTO_MAX_DISKS 64
#define PROTO_MAX_FACTS (1u << 20)
#define PROTO_MAX_STRING 4096
#define PROTO_HASH_LEN 16

enum proto_type {
    MSG_HELLO = 1,
    MSG_WELCOME = 2,
    MSG_ERROR = 3,
    MSG_JOB = 4,
    MSG_STATE = 5,
    MSG_EXTENT = 6,
    MSG_ACK = 7,
    MSG_DISK_END = 8,
    MSG_DISK_DONE = 9,
    MSG_PING = 10,
    MSG_PONG = 11,
    MSG_ABORT = 12,
};

enum proto_error {
    PERR_PROTOCOL = 1,
    PERR_AUTH = 2,
    PERR_VERSION = 3,
    PERR_BAD_JOB = 4,
    PERR_JOB_MISMATCH = 5,
    PERR_BUSY = 6,
    PERR_NO_SPACE = 7,
    PERR_IO = 8,
    PERR_VERIFY = 9,
    PERR_INTERNAL = 10,
    PERR_SHUTDOWN = 11,
};

enum extent_kind { EXT_KIND_DATA = 0, EXT_KIND_ZERO = 1 };
enum extent_comp { COMP_NONE = 0, COMP_ZSTD = 1, COMP_ZLIB = 2 };

/* True for errors after which a sender should reconnect and resume. */
bool proto_error_retryable (uint32_t code);
const char *proto_type_name (uint32_t type);

/* Payload builder. */
struct wbuf {
    unsigned char *p;
    size_t len, cap;
    bool overflow;
};

void put_u8 (struct wbuf *w, uint8_t v);
void put_u16 (struct wbuf *w, uint16_t v);
void put_u32 (struct wbuf *w, uint32_t v);
void put_u64 (struct wbuf *w, uint64_t v);
void put_bytes (struct wbuf *w, const void *p, size_t n);
void put_string (struct wbuf *w, const char *s);

/* Payload reader. */
struct rbuf {
    const unsigned char *p;
    size_t len, pos;
    bool bad;
};

uint8_t get_u8 (struct rbuf *r);
uint16_t get_u16 (struct rbuf *r);
uint32_t get_u32 (struct rbuf *r);
uint64_t get_u64 (struct rbuf *r);
/* Points into the payload; NULL (and r->bad) when short. */
const unsigned char *get_bytes (struct rbuf *r, size_t n);
/* A string into OUT (NUL-terminated), refusing NULs, control characters
 * and strings that do not fit.  -1 with r->bad on error. */
int get_string (struct rbuf *r, char *out, size_t outcap);

/* Messages. */
struct msg_hello {
    uint32_t version;
    char token[256];
    char job[80];
    uint32_t flags;
};

struct msg_disk {
    char name[256];
    uint64_t size;
    uint32_t flags;
};

struct msg_job {
    uint32_t ndisks;
    const unsigned char *facts;     /* into the payload */
    uint32_t facts_len;
    struct msg_disk disks[PROTO_MAX_DISKS];
    char format[16];                /* "": the receiver's choice */
};

struct msg_state_disk {
    uint64_t durable;
    uint32_t state;
};

struct msg_state {
    uint32_t ndisks;
    struct msg_state_disk disks[PROTO_MAX_DISKS];
};

struct msg_extent {
    uint32_t disk;
    uint64_t offset;
    uint32_t length;
    uint8_t kind;
    uint8_t compression;
    unsigned char hash[PROTO_HASH_LEN];
    const unsigned char *data;      /* into the payload */
    uint32_t data_len;
};

struct msg_error {
    uint32_t code;
    char message[512];
};

/* Encoders append a message's payload to W (which the caller resets). */
void enc_hello (struct wbuf *w, const struct msg_hello *m);
void enc_job (struct wbuf *w, const struct msg_job *m);
void enc_state (struct wbuf *w, const struct msg_state *m);
/* The extent header only; the data follows with put_bytes. */
void enc_extent_header (struct wbuf *w, const struct msg_extent *m);
void enc_ack (struct wbuf *w, uint32_t disk, uint64_t durable);
void enc_disk_end (struct wbuf *w, uint32_t disk,
                   const unsigned char digest[DIGEST_LEN]);
void enc_disk_done (struct wbuf *w, uint32_t disk, uint32_t status,
                    const unsigned char digest[DIGEST_LEN]);
void enc_error (struct wbuf *w, uint32_t code, const char *message);
void enc_abort (struct wbuf *w, const char *message);

/* Decoders: 0, or -1 with a message naming the message and field. */
int dec_hello (const unsigned char *p, size_t len, struct msg_hello *m);
int dec_job (const unsigned char *p, size_t len, struct msg_job *m);
int dec_state (const unsigned char *p, size_t len, struct msg_state *m);
int dec_extent (const unsigned char *p, size_t len, struct msg_extent *m);
int dec_ack (const unsigned char *p, size_t len, uint32_t *disk,
             uint64_t *durable);
int dec_disk_end (const unsigned char *p, size_t len, uint32_t *disk,
                  unsigned char digest[DIGEST_LEN]);
int dec_disk_done (const unsigned char *p, size_t len, uint32_t *disk,
                   uint32_t *status, unsigned char digest[DIGEST_LEN]);
int dec_error (const unsigned char *p, size_t len, struct msg_error *m);
int dec_abort (const unsigned char *p, size_t len, char *message,
               size_t cap);

/* True when S is a valid job name ([A-Za-z0-9][A-Za-z0-9._-]{0,63}). */
bool proto_job_name_valid (const char *s);

/* True when P[0..len) is one well-formed JSON value (RFC 8259), nesting
 * at most 64 deep.  The receiver stores the sender's facts verbatim only
 * after this check. */
bool json_valid (const unsigned char *p, size_t len);

/* Frame I/O over a TLS connection. */
struct tls;
int proto_send (struct tls *t, uint32_t type, const struct wbuf *payload);
/* Receive one frame: *type, payload into BUF (capacity CAP), *len.
 * A frame longer than CAP is refused before its payload is read (errno
 * EPROTO).  Returns 0, 1 when the peer closed the stream cleanly between
 * frames, -1 on error. */
int proto_recv (struct tls *t, uint32_t *type, unsigned char *buf, size_t cap,
                size_t *len);

#endif
