/* SPDX-License-Identifier: MIT */
/*
 * rawclient: a misbehaving `vmconvert send`, for the receiver's bad-input
 * tests.  It speaks the protocol with network/proto.h and network/tls.h,
 * but sends what MODE says, then reports how the receiver answered.
 *
 *   rawclient [-p FINGERPRINT] [-t TOKEN] [-j JOB] [-s SOURCE] [-w SECONDS]
 *             [-O FORMAT] HOST:PORT MODE
 *
 * Modes without TLS:
 *   plain       sends an HTTP request in plaintext
 *   tcp-stall   connects and sends nothing
 *   trickle     sends the start of a TLS record, then a byte every half
 *               second (each read the receiver makes succeeds)
 * Modes over TLS (-p is needed):
 *   tls-stall   completes the handshake and sends nothing
 *   trickle-hello  sends a HELLO a byte every half second
 *   garbage     sends a line of text instead of a frame
 *   oversized   sends a HELLO frame header that announces 4 GiB, and waits
 *   early       sends an EXTENT before HELLO
 *   version     sends a HELLO of protocol version 2
 *   short-hello sends a HELLO whose payload stops after 5 bytes
 *   no-job      sends HELLO, then an EXTENT instead of JOB
 * Modes that send the raw file SOURCE as a one-disk job (-t, -j, -s):
 *   bad-hash    its first data extent with a wrong hash
 *   bad-digest  every extent right, then DISK_END with a wrong digest (the
 *               right one with one bit flipped)
 *   good        every extent and the digest right (a control)
 *   mid-stall   HELLO, JOB, then half of the first extent, and nothing more
 * A job that the receiver already has is continued at its durable offset.
 *
 * What the receiver did is said in one line on stderr, and the exit
 * status: 0 the disk was verified (DISK_DONE, status 0); 1 rawclient
 * itself failed; 2 the receiver sent ERROR (its name and message are
 * printed); 3 DISK_DONE said the digest does not match; 4 the receiver
 * closed the connection without a word (after how long is printed);
 * 5 the receiver still had the connection open after -w SECONDS (default
 * 30).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "../../converter/lib/digest.h"
#include "../../converter/lib/error.h"
#include "../../network/addr.h"
#include "../../network/proto.h"
#include "../../network/tls.h"

#define CHUNK (1u << 20)
#define REPLY_CAP (64u << 10)

enum { R_VERIFIED, R_LOCAL, R_ERROR, R_MISMATCH, R_CLOSED, R_OPEN };

static const char *fingerprint, *token = "fleet", *job = "rawjob", *source;
static const char *format = "";        /* -O: the format the JOB asks for */
static int wait_s = 30;
static double t0;
static size_t trickled;             /* bytes sent by the trickle modes */

static double
now (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
say (int status, const char *fmt, ...)
{
    va_list ap;

    fprintf (stderr, "rawclient: ");
    va_start (ap, fmt);
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    fputc ('\n', stderr);
    return status;
}

static int
local_error (const char *what)
{
    return say (R_LOCAL, "%s: %s", what, vmc_get_error ());
}

static const char *
error_name (uint32_t code)
{
    static const char *const names[] = {
        "?", "protocol", "auth", "version", "bad-job", "job-mismatch", "busy",
        "no-space", "io", "verify", "internal", "shutdown",
    };

    return code < sizeof names / sizeof names[0] ? names[code] : "?";
}

/* Read frames until one that ends the exchange: ERROR, DISK_DONE, the end
 * of the connection, or -w SECONDS of silence. */
static int
await_verdict (struct tls *t)
{
    static unsigned char buf[REPLY_CAP];
    unsigned char dg[DIGEST_LEN];
    char hex[2 * DIGEST_LEN + 1];
    struct msg_error e;
    uint32_t type, disk, status;
    size_t len;
    int r;

    for (;;) {
        r = proto_recv (t, &type, buf, sizeof buf, &len);
        if (r == 1 || (r == -1 && errno != ETIMEDOUT)) {
            return say (R_CLOSED, "the receiver closed the connection after "
                        "%.1f s without a message", now () - t0);
        }
        if (r == -1) {
            return say (R_OPEN, "the receiver kept the connection open for "
                        "%d s", wait_s);
        }
        switch (type) {
        case MSG_ERROR:
            if (dec_error (buf, len, &e) == -1) {
                return local_error ("a bad ERROR");
            }
            return say (R_ERROR, "receiver ERROR %s after %.1f s: %s",
                        error_name (e.code), now () - t0, e.message);
        case MSG_DISK_DONE:
            if (dec_disk_done (buf, len, &disk, &status, dg) == -1) {
                return local_error ("a bad DISK_DONE");
            }
            digest_hex (dg, hex);
            if (status != 0) {
                return say (R_MISMATCH, "DISK_DONE disk %" PRIu32 ": digest "
                            "mismatch (the receiver's digest is %s)", disk,
                            hex);
            }
            return say (R_VERIFIED, "DISK_DONE disk %" PRIu32 ": verified "
                        "(%s)", disk, hex);
        default:
            break;              /* WELCOME, STATE, ACK, PONG */
        }
    }
}

/* The plaintext modes: bytes (or none) on a TCP connection. */
static int
run_tcp (const char *host, const char *port, const char *mode)
{
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    struct pollfd pfd;
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    int fd;

    fd = net_connect (host, port, 5000);
    if (fd == -1) {
        return local_error ("connect");
    }
    t0 = now ();
    if (strcmp (mode, "plain") == 0 &&
        write (fd, req, sizeof req - 1) != (ssize_t) sizeof req - 1) {
        close (fd);
        return say (R_LOCAL, "write: %s", strerror (errno));
    }
    for (;;) {
        int left = (int) ((t0 + wait_s - now ()) * 1000);
        bool trickle = strcmp (mode, "trickle") == 0;

        pfd.fd = fd;
        pfd.events = POLLIN;
        if (trickle && left > 0 && poll (&pfd, 1, 500) == 0) {
            /* A handshake record of 512 bytes, never finished. */
            static const unsigned char rec[] = { 0x16, 3, 1, 2, 0 };
            unsigned char b = trickled < sizeof rec ? rec[trickled] : 0;

            if (write (fd, &b, 1) != 1) {
                break;
            }
            trickled++;
            continue;
        }
        if (left <= 0 || poll (&pfd, 1, left) != 1) {
            close (fd);
            return say (R_OPEN, "the receiver kept the connection open for "
                        "%d s", wait_s);
        }
        n = read (fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        total += (size_t) n;
    }
    close (fd);
    if (trickled > 0) {
        return say (R_CLOSED, "the receiver closed the connection after "
                    "%.1f s (%zu bytes received, %zu sent a byte at a time)",
                    now () - t0, total, trickled);
    }
    return say (R_CLOSED, "the receiver closed the connection after %.1f s "
                "(%zu bytes received)", now () - t0, total);
}

static int
send_raw (struct tls *t, const void *p, size_t len)
{
    if (tls_write_all (t, p, len) == -1) {
        return local_error ("write");
    }
    return 0;
}

static int
send_hello (struct tls *t, uint32_t version)
{
    unsigned char buf[1024];
    struct wbuf w = { buf, 0, sizeof buf, false };
    struct msg_hello h = { version, "", "", 0 };

    snprintf (h.token, sizeof h.token, "%s", token);
    snprintf (h.job, sizeof h.job, "%s", job);
    enc_hello (&w, &h);
    return proto_send (t, MSG_HELLO, &w) == -1 ? local_error ("HELLO") : 0;
}

/* An EXTENT frame of zeros: 8 header bytes and 40 of payload. */
static int
send_zero_extent (struct tls *t, uint64_t offset)
{
    unsigned char buf[64];
    struct wbuf w = { buf, 0, sizeof buf, false };
    struct msg_extent m = { 0 };

    m.offset = offset;
    m.length = 4096;
    m.kind = EXT_KIND_ZERO;
    enc_extent_header (&w, &m);
    return proto_send (t, MSG_EXTENT, &w) == -1 ? local_error ("EXTENT") : 0;
}

/* HELLO and JOB for SOURCE: 0 with the disk's durable offset in *start
 * when the receiver answers STATE, else -1 with the verdict in *r. */
static int
start_job (struct tls *t, uint64_t size, uint64_t *start, int *r)
{
    static struct msg_job m;
    static unsigned char buf[REPLY_CAP];
    struct wbuf w = { buf, 0, sizeof buf, false };
    struct msg_state st;
    uint32_t type;
    size_t len;

    *r = R_LOCAL;
    if (send_hello (t, PROTO_VERSION) == -1) {
        return -1;
    }
    m.ndisks = 1;
    snprintf (m.disks[0].name, sizeof m.disks[0].name, "rawclient");
    m.disks[0].size = size;
    snprintf (m.format, sizeof m.format, "%s", format);
    enc_job (&w, &m);
    if (proto_send (t, MSG_JOB, &w) == -1) {
        *r = await_verdict (t);
        return -1;
    }
    /* WELCOME, then STATE; anything else ends it (await_verdict says). */
    while (tls_readable (t, wait_s * 1000) &&
           proto_recv (t, &type, buf, sizeof buf, &len) == 0) {
        if (type == MSG_STATE) {
            if (dec_state (buf, len, &st) == -1 || st.ndisks != 1) {
                *r = local_error ("a bad STATE");
                return -1;
            }
            *start = st.disks[0].durable;
            return 0;
        }
        if (type == MSG_ERROR) {
            struct msg_error e;

            *r = dec_error (buf, len, &e) == -1 ? local_error ("a bad ERROR")
                 : say (R_ERROR, "receiver ERROR %s after %.1f s: %s",
                        error_name (e.code), now () - t0, e.message);
            return -1;
        }
    }
    *r = await_verdict (t);
    return -1;
}

static int
collect (void *opaque, uint64_t index, const unsigned char *h)
{
    unsigned char *hashes = opaque;

    memcpy (hashes + index * DIGEST_BLOCK_HASH, h, DIGEST_BLOCK_HASH);
    return 0;
}

/* The job modes. */
static int
run_job (struct tls *t, const char *mode)
{
    static unsigned char frame[64 + CHUNK], data[CHUNK];
    unsigned char *hashes = NULL, dg[DIGEST_LEN];
    uint64_t size, start = 0, off, nblocks;
    struct digest *d = NULL;
    struct stat st;
    int fd, r = R_LOCAL;

    fd = source != NULL ? open (source, O_RDONLY | O_CLOEXEC) : -1;
    if (fd == -1 || fstat (fd, &st) == -1 || st.st_size <= 0) {
        return say (R_LOCAL, "-s SOURCE: a non-empty raw file is needed");
    }
    size = (uint64_t) st.st_size;
    nblocks = (size + DIGEST_BLOCK - 1) / DIGEST_BLOCK;
    hashes = calloc (nblocks, DIGEST_BLOCK_HASH);
    d = digest_new (size, 0, collect, hashes);
    if (hashes == NULL || d == NULL) {
        r = local_error ("digest");
        goto out;
    }
    if (start_job (t, size, &start, &r) == -1) {
        goto out;
    }
    r = R_LOCAL;
    for (off = 0; off < size; off += CHUNK) {
        size_t n = (size_t) (size - off < CHUNK ? size - off : CHUNK);
        struct wbuf w = { frame, 0, sizeof frame, false };
        struct msg_extent m = { 0 };
        XXH128_canonical_t h;

        if (pread (fd, data, n, (off_t) off) != (ssize_t) n) {
            r = say (R_LOCAL, "%s: read error", source);
            goto out;
        }
        if (digest_update (d, data, n) == -1) {
            r = local_error ("digest");
            goto out;
        }
        if (off < start) {
            continue;
        }
        m.offset = off;
        m.length = (uint32_t) n;
        m.kind = EXT_KIND_DATA;
        XXH128_canonicalFromHash (&h, XXH3_128bits (data, n));
        memcpy (m.hash, h.digest, PROTO_HASH_LEN);
        if (strcmp (mode, "bad-hash") == 0) {
            m.hash[0] ^= 1;
        }
        enc_extent_header (&w, &m);
        put_bytes (&w, data, n);
        if (strcmp (mode, "mid-stall") == 0) {
            /* The frame header and half of the payload, then silence. */
            unsigned char hdr[8] = { 0, 0, 0, MSG_EXTENT,
                                     (unsigned char) (w.len >> 24),
                                     (unsigned char) (w.len >> 16),
                                     (unsigned char) (w.len >> 8),
                                     (unsigned char) w.len };

            if (send_raw (t, hdr, 8) == -1 ||
                send_raw (t, frame, w.len / 2) == -1) {
                r = R_LOCAL;
                goto out;
            }
            t0 = now ();
            r = await_verdict (t);
            goto out;
        }
        if (proto_send (t, MSG_EXTENT, &w) == -1) {
            /* The receiver may have said why before it closed. */
            r = await_verdict (t);
            goto out;
        }
        if (strcmp (mode, "bad-hash") == 0) {
            r = await_verdict (t);
            goto out;
        }
    }
    if (digest_blocks_final (hashes, nblocks, dg) == -1) {
        r = local_error ("digest");
        goto out;
    }
    if (strcmp (mode, "bad-digest") == 0) {
        dg[DIGEST_LEN - 1] ^= 1;
    }
    {
        unsigned char buf[64];
        struct wbuf w = { buf, 0, sizeof buf, false };

        enc_disk_end (&w, 0, dg);
        if (proto_send (t, MSG_DISK_END, &w) == -1) {
            r = await_verdict (t);
            goto out;
        }
    }
    r = await_verdict (t);
out:
    digest_free (d);
    free (hashes);
    close (fd);
    return r;
}

/* The modes that break the protocol before any job. */
static int
run_early (struct tls *t, const char *mode)
{
    static const char text[] = "this is not a frame of the vmconvert "
                               "protocol\n";
    /* HELLO, 4 GiB - 16 bytes. */
    static const unsigned char huge[8] = { 0, 0, 0, MSG_HELLO,
                                           0xff, 0xff, 0xff, 0xf0 };
    static const unsigned char short_hello[13] = { 0, 0, 0, MSG_HELLO,
                                                   0, 0, 0, 5,
                                                   'V', 'M', 'C', 'N', 'V' };
    int r = 0;

    t0 = now ();
    if (strcmp (mode, "tls-stall") == 0) {
        r = 0;
    }
    else if (strcmp (mode, "garbage") == 0) {
        r = send_raw (t, text, sizeof text - 1);
    }
    else if (strcmp (mode, "oversized") == 0) {
        r = send_raw (t, huge, sizeof huge);
    }
    else if (strcmp (mode, "early") == 0) {
        r = send_zero_extent (t, 0);
    }
    else if (strcmp (mode, "version") == 0) {
        r = send_hello (t, PROTO_VERSION + 1);
    }
    else if (strcmp (mode, "short-hello") == 0) {
        r = send_raw (t, short_hello, sizeof short_hello);
    }
    else if (strcmp (mode, "trickle-hello") == 0) {
        unsigned char buf[1024];
        struct wbuf w = { buf + 8, 0, sizeof buf - 8, false };
        struct msg_hello h = { PROTO_VERSION, "", "", 0 };

        snprintf (h.token, sizeof h.token, "%s", token);
        snprintf (h.job, sizeof h.job, "%s", job);
        enc_hello (&w, &h);
        memcpy (buf, (const unsigned char[]) { 0, 0, 0, MSG_HELLO,
                                               0, 0, (unsigned char) (w.len >> 8),
                                               (unsigned char) w.len }, 8);
        /* A TLS record a byte, until the receiver gives up (it reads as
         * soon as one is there). */
        for (trickled = 0; trickled < w.len + 8; trickled++) {
            if (tls_readable (t, 500)) {
                break;
            }
            if (tls_write_all (t, buf + trickled, 1) == -1) {
                break;
            }
        }
    }
    else if (strcmp (mode, "no-job") == 0) {
        r = send_hello (t, PROTO_VERSION);
        if (r == 0) {
            r = send_zero_extent (t, 0);
        }
    }
    else {
        return say (R_LOCAL, "unknown mode %s", mode);
    }
    return r == -1 ? R_LOCAL : await_verdict (t);
}

int
main (int argc, char **argv)
{
    char host[256], port[16];
    struct tls_conf *conf;
    struct tls *t;
    const char *mode;
    int opt, fd, r;

    while ((opt = getopt (argc, argv, "p:t:j:s:w:O:")) != -1) {
        switch (opt) {
        case 'p': fingerprint = optarg; break;
        case 't': token = optarg; break;
        case 'j': job = optarg; break;
        case 's': source = optarg; break;
        case 'O': format = optarg; break;
        case 'w': {
            char *end;
            long v = strtol (optarg, &end, 10);

            wait_s = *end == '\0' && v > 0 && v <= 3600 ? (int) v : -1;
            break;
        }
        default:
            fprintf (stderr, "usage: rawclient [-p FP] [-t TOKEN] [-j JOB] "
                     "[-s SOURCE] [-w SECONDS] HOST:PORT MODE\n");
            return R_LOCAL;
        }
    }
    if (argc - optind != 2 || wait_s <= 0 ||
        net_split_hostport (argv[optind], host, sizeof host, port,
                            sizeof port, PROTO_DEFAULT_PORT) == -1) {
        return say (R_LOCAL, "usage: rawclient [options] HOST:PORT MODE");
    }
    mode = argv[optind + 1];
    if (strcmp (mode, "plain") == 0 || strcmp (mode, "tcp-stall") == 0 ||
        strcmp (mode, "trickle") == 0) {
        return run_tcp (host, port, mode);
    }
    conf = tls_conf_client (fingerprint, NULL, NULL, NULL);
    if (conf == NULL) {
        return local_error ("-p");
    }
    fd = net_connect (host, port, 5000);
    if (fd == -1) {
        tls_conf_free (conf);
        return local_error ("connect");
    }
    t0 = now ();
    t = tls_connect_fd (conf, fd, host, wait_s * 1000);
    if (t == NULL) {
        tls_conf_free (conf);
        return local_error ("TLS");
    }
    if (strcmp (mode, "bad-hash") == 0 || strcmp (mode, "bad-digest") == 0 ||
        strcmp (mode, "good") == 0 || strcmp (mode, "mid-stall") == 0) {
        r = run_job (t, mode);
    }
    else {
        r = run_early (t, mode);
    }
    tls_close (t);
    tls_conf_free (conf);
    return r;
}
