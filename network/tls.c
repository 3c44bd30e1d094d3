/* SPDX-License-Identifier: MIT */
/*
 * The TLS wrapper over OpenSSL 3; see tls.h.
 *
 * Choices, each for a reason:
 * - TLS 1.3 only, AES-GCM first: AES-NI makes it the fastest AEAD on the
 *   machines we run on; ChaCha20-Poly1305 stays available for CPUs without
 *   it (OpenSSL's implementation is fast, unlike some others).
 * - No session tickets: every connection is a full handshake, and the
 *   server keeps no session state.
 * - Fingerprint pinning is done in the verify callback, so a wrong
 *   certificate aborts the handshake with an alert (the server logs it)
 *   and the client has sent nothing but the handshake.  A pinned
 *   certificate must still be within its validity dates.
 * - Timeouts are socket timeouts (SO_RCVTIMEO/SO_SNDTIMEO), so a stalled
 *   peer shows up as a failed read or write, mapped to ETIMEDOUT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../converter/lib/error.h"
#include "tls.h"

#define CIPHERSUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
                     "TLS_CHACHA20_POLY1305_SHA256"
/* A client on a CPU without AES instructions (an old server, or the
 * appliance under QEMU's emulated CPU) asks for ChaCha20 first: in
 * software it is several times faster than AES-GCM.  The server follows
 * the client's order. */
#define CIPHERSUITES_NO_AES "TLS_CHACHA20_POLY1305_SHA256:" \
                            "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"

static bool
cpu_has_aes (void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init ();
    return __builtin_cpu_supports ("aes");
#else
    return true;
#endif
}

/* Per connection: OpenSSL's read-ahead buffer (see new_ctx), the write
 * buffer (see set_bios). */
#ifndef READ_BUFFER
#define READ_BUFFER (256u << 10)
#endif
#ifndef WRITE_BUFFER
#define WRITE_BUFFER (256u << 10)
#endif

struct tls_conf {
    SSL_CTX *ctx;
    bool server;
    bool pinned;                        /* client: trust by fingerprint */
    char fingerprint[TLS_FINGERPRINT_LEN];
};

struct tls {
    SSL *ssl;
    int fd;
    struct tls_conf *conf;
    char verify_error[256];             /* why the peer was refused */
    char peer_cert_error[256];          /* server: why the client's
                                         * certificate did not verify */
};

static int ssl_conn_index = -1;

/* Append OpenSSL's queued errors to a message. */
static void
ssl_error (const char *what)
{
    char buf[256] = "";
    unsigned long e, last = 0;

    while ((e = ERR_get_error ()) != 0) {
        last = e;
    }
    if (last != 0) {
        ERR_error_string_n (last, buf, sizeof buf);
        vmc_error ("%s: %s", what, buf);
    }
    else {
        vmc_error ("%s failed", what);
    }
}

bool
tls_fingerprint_valid (const char *fp)
{
    size_t i;

    if (strncmp (fp, "sha256:", 7) != 0 || strlen (fp) != 7 + 64) {
        return false;
    }
    for (i = 7; fp[i] != '\0'; i++) {
        if (!((fp[i] >= '0' && fp[i] <= '9') ||
              (fp[i] >= 'a' && fp[i] <= 'f') ||
              (fp[i] >= 'A' && fp[i] <= 'F'))) {
            return false;
        }
    }
    return true;
}

static int
cert_fingerprint (X509 *cert, char out[TLS_FINGERPRINT_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;

    if (X509_digest (cert, EVP_sha256 (), md, &len) != 1 || len != 32) {
        ssl_error ("certificate digest");
        return -1;
    }
    memcpy (out, "sha256:", 7);
    for (i = 0; i < len; i++) {
        snprintf (out + 7 + 2 * i, 3, "%02x", md[i]);
    }
    return 0;
}

/* Verify callback for pinned clients: the chain is not checked against
 * any CA; the leaf certificate must have the pinned fingerprint and be
 * within its validity dates. */
static int
pinned_verify (int preverify, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data (store,
                                           SSL_get_ex_data_X509_STORE_CTX_idx ());
    struct tls *t = SSL_get_ex_data (ssl, ssl_conn_index);
    X509 *cert = X509_STORE_CTX_get_current_cert (store);
    char fp[TLS_FINGERPRINT_LEN];

    (void) preverify;
    if (X509_STORE_CTX_get_error_depth (store) != 0) {
        return 1;
    }
    if (cert == NULL || cert_fingerprint (cert, fp) == -1) {
        snprintf (t->verify_error, sizeof t->verify_error,
                  "the server sent no usable certificate");
        return 0;
    }
    if (strcasecmp (fp, t->conf->fingerprint) != 0) {
        snprintf (t->verify_error, sizeof t->verify_error,
                  "wrong server certificate fingerprint %s (expected %s)",
                  fp, t->conf->fingerprint);
        return 0;
    }
    if (X509_cmp_current_time (X509_get0_notAfter (cert)) <= 0) {
        snprintf (t->verify_error, sizeof t->verify_error,
                  "the pinned server certificate has expired");
        return 0;
    }
    if (X509_cmp_current_time (X509_get0_notBefore (cert)) >= 0) {
        snprintf (t->verify_error, sizeof t->verify_error,
                  "the pinned server certificate is not valid yet");
        return 0;
    }
    return 1;
}

/* Verify callback for CA-based checks: keep OpenSSL's verdict, remember a
 * readable reason.  A server lets the handshake finish even so: the
 * client is then refused at its HELLO, with the reason, rather than with
 * a TLS alert that a sender cannot tell from a dropped connection (and
 * would retry). */
static int
ca_verify (int preverify, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data (store,
                                           SSL_get_ex_data_X509_STORE_CTX_idx ());
    struct tls *t = SSL_get_ex_data (ssl, ssl_conn_index);
    int err = X509_STORE_CTX_get_error (store);

    if (t != NULL && t->conf->server) {
        if (!preverify && t->peer_cert_error[0] == '\0') {
            snprintf (t->peer_cert_error, sizeof t->peer_cert_error,
                      "the client certificate is not trusted: %s",
                      X509_verify_cert_error_string (err));
        }
        return 1;
    }
    if (!preverify && t != NULL && t->verify_error[0] == '\0') {
        snprintf (t->verify_error, sizeof t->verify_error,
                  "server certificate not trusted: %s",
                  X509_verify_cert_error_string (err));
    }
    return preverify;
}

static SSL_CTX *
new_ctx (bool server)
{
    SSL_CTX *ctx;

    if (ssl_conn_index == -1) {
        ssl_conn_index = SSL_get_ex_new_index (0, NULL, NULL, NULL, NULL);
    }
    ctx = SSL_CTX_new (server ? TLS_server_method () : TLS_client_method ());
    if (ctx == NULL) {
        ssl_error ("SSL_CTX_new");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version (ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites (ctx, server || cpu_has_aes ()
                                  ? CIPHERSUITES : CIPHERSUITES_NO_AES) != 1) {
        ssl_error ("TLS settings");
        SSL_CTX_free (ctx);
        return NULL;
    }
    SSL_CTX_set_num_tickets (ctx, 0);
    SSL_CTX_set_options (ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode (ctx, SSL_MODE_AUTO_RETRY);
    /* Read what the socket has, up to READ_BUFFER, in one read(): without
     * read-ahead OpenSSL reads each record's 5-byte header and then its
     * body, two system calls per 16 KiB record, each of which also makes
     * the kernel send a window update. */
    SSL_CTX_set_read_ahead (ctx, 1);
    SSL_CTX_set_default_read_buffer_len (ctx, READ_BUFFER);
    return ctx;
}

static int
load_cert_key (SSL_CTX *ctx, const char *cert_file, const char *key_file)
{
    if (SSL_CTX_use_certificate_chain_file (ctx, cert_file) != 1) {
        ssl_error (cert_file);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file (ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_error (key_file);
        return -1;
    }
    if (SSL_CTX_check_private_key (ctx) != 1) {
        ssl_error ("the key does not match the certificate");
        return -1;
    }
    return 0;
}

struct tls_conf *
tls_conf_server (const char *cert_file, const char *key_file,
                 const char *client_ca_file)
{
    struct tls_conf *conf;

    conf = calloc (1, sizeof *conf);
    if (conf == NULL) {
        vmc_perror ("calloc");
        return NULL;
    }
    conf->server = true;
    conf->ctx = new_ctx (true);
    if (conf->ctx == NULL ||
        load_cert_key (conf->ctx, cert_file, key_file) == -1) {
        tls_conf_free (conf);
        return NULL;
    }
    if (client_ca_file != NULL) {
        STACK_OF (X509_NAME) *names;

        if (SSL_CTX_load_verify_locations (conf->ctx, client_ca_file,
                                           NULL) != 1) {
            ssl_error (client_ca_file);
            tls_conf_free (conf);
            return NULL;
        }
        names = SSL_load_client_CA_file (client_ca_file);
        if (names != NULL) {
            SSL_CTX_set_client_CA_list (conf->ctx, names);
        }
        /* Ask for a certificate; one that is presented must verify, but a
         * client may also come with a token instead. */
        SSL_CTX_set_verify (conf->ctx, SSL_VERIFY_PEER, ca_verify);
    }
    return conf;
}

struct tls_conf *
tls_conf_client (const char *fingerprint, const char *ca_file,
                 const char *cert_file, const char *key_file)
{
    struct tls_conf *conf;

    if ((fingerprint == NULL) == (ca_file == NULL)) {
        vmc_error ("tls: give either a fingerprint or a CA file");
        return NULL;
    }
    if (fingerprint != NULL && !tls_fingerprint_valid (fingerprint)) {
        vmc_error ("tls: \"%s\" is not a fingerprint (sha256:<64 hex "
                   "digits>)", fingerprint);
        return NULL;
    }
    if ((cert_file == NULL) != (key_file == NULL)) {
        vmc_error ("tls: a client certificate needs both a certificate and "
                   "a key");
        return NULL;
    }
    conf = calloc (1, sizeof *conf);
    if (conf == NULL) {
        vmc_perror ("calloc");
        return NULL;
    }
    conf->ctx = new_ctx (false);
    if (conf->ctx == NULL) {
        tls_conf_free (conf);
        return NULL;
    }
    if (fingerprint != NULL) {
        conf->pinned = true;
        snprintf (conf->fingerprint, sizeof conf->fingerprint, "%s",
                  fingerprint);
        SSL_CTX_set_verify (conf->ctx, SSL_VERIFY_PEER, pinned_verify);
    }
    else {
        if (SSL_CTX_load_verify_locations (conf->ctx, ca_file, NULL) != 1) {
            ssl_error (ca_file);
            tls_conf_free (conf);
            return NULL;
        }
        SSL_CTX_set_verify (conf->ctx, SSL_VERIFY_PEER, ca_verify);
    }
    if (cert_file != NULL &&
        load_cert_key (conf->ctx, cert_file, key_file) == -1) {
        tls_conf_free (conf);
        return NULL;
    }
    return conf;
}

void
tls_conf_free (struct tls_conf *conf)
{
    if (conf == NULL) {
        return;
    }
    SSL_CTX_free (conf->ctx);
    free (conf);
}

static int
set_timeouts (int fd, int timeout_ms)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

    if (timeout_ms <= 0) {
        return 0;
    }
    if (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == -1 ||
        setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == -1) {
        vmc_perror ("setsockopt");
        return -1;
    }
    return 0;
}

/* Turn a failed SSL call into a message; timeouts become ETIMEDOUT. */
static void
io_error (struct tls *t, int r, const char *what)
{
    int err = SSL_get_error (t->ssl, r);

    if (t->verify_error[0] != '\0') {
        vmc_error ("%s", t->verify_error);
        errno = EPERM;
        return;
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        errno = ETIMEDOUT;
        vmc_error ("%s: timed out", what);
        return;
    }
    if (err == SSL_ERROR_SYSCALL && errno != 0) {
        vmc_perror ("%s", what);
        return;
    }
    if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
        errno = ECONNRESET;
        vmc_error ("%s: the connection was closed", what);
        return;
    }
    ssl_error (what);
    errno = EPROTO;
}

/* Reads straight from the socket (OpenSSL's read-ahead buffer, see
 * new_ctx); writes through a WRITE_BUFFER buffer, flushed by
 * tls_write_all, so that a large write goes out in large send() calls and
 * large TCP segments instead of one per 16 KiB record (OpenSSL flushes it
 * itself after handshake messages and alerts). */
static int
set_bios (SSL *ssl, int fd)
{
    BIO *sock = BIO_new_socket (fd, BIO_NOCLOSE);
    BIO *buf = BIO_new (BIO_f_buffer ());

    if (sock == NULL || buf == NULL ||
        BIO_set_write_buffer_size (buf, WRITE_BUFFER) != 1 ||
        BIO_up_ref (sock) != 1) {
        BIO_free (sock);
        BIO_free (buf);
        return -1;
    }
    /* One reference of sock for the chain, one for the read side. */
    BIO_push (buf, sock);
    SSL_set0_rbio (ssl, sock);
    SSL_set0_wbio (ssl, buf);
    return 0;
}

static struct tls *
tls_new (struct tls_conf *conf, int fd, int timeout_ms)
{
    struct tls *t;

    t = calloc (1, sizeof *t);
    if (t == NULL) {
        vmc_perror ("calloc");
        close (fd);
        return NULL;
    }
    t->fd = fd;
    t->conf = conf;
    if (set_timeouts (fd, timeout_ms) == -1) {
        tls_close (t);
        return NULL;
    }
    t->ssl = SSL_new (conf->ctx);
    if (t->ssl == NULL || set_bios (t->ssl, fd) == -1 ||
        SSL_set_ex_data (t->ssl, ssl_conn_index, t) != 1) {
        ssl_error ("SSL_new");
        tls_close (t);
        return NULL;
    }
    return t;
}

/* Before the handshake, look at what the client sent first: a TLS
 * connection starts with a handshake record (0x16).  Anything else is
 * reported as what it is, with the start of what was sent, rather than as
 * OpenSSL's "wrong version number" or "http request". */
static int
check_first_bytes (int fd)
{
    unsigned char b[24];
    char shown[sizeof b + 1];
    ssize_t n;
    size_t i;

    do {
        n = recv (fd, b, sizeof b, MSG_PEEK);
    } while (n == -1 && errno == EINTR);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        vmc_error ("TLS handshake: timed out (the client sent nothing)");
        errno = ETIMEDOUT;
        return -1;
    }
    if (n == 0) {
        vmc_error ("the client closed the connection before the TLS "
                   "handshake");
        errno = ECONNRESET;
        return -1;
    }
    if (n == -1 || b[0] == 0x16) {
        return 0;               /* SSL_accept tells the rest */
    }
    for (i = 0; i < (size_t) n; i++) {
        shown[i] = b[i] >= 0x20 && b[i] < 0x7f ? (char) b[i] : '.';
    }
    shown[n] = '\0';
    vmc_error ("not a TLS client: it sent plaintext (\"%s\"); vmconvert "
               "send speaks TLS 1.3", shown);
    errno = EPROTO;
    return -1;
}

struct tls *
tls_accept_fd (struct tls_conf *conf, int fd, int timeout_ms)
{
    struct tls *t = tls_new (conf, fd, timeout_ms);
    int r;

    if (t == NULL) {
        return NULL;
    }
    if (check_first_bytes (fd) == -1) {
        int e = errno;

        SSL_free (t->ssl);
        t->ssl = NULL;
        tls_close (t);
        errno = e;
        return NULL;
    }
    ERR_clear_error ();
    errno = 0;
    r = SSL_accept (t->ssl);
    if (r != 1) {
        int e;

        io_error (t, r, "TLS handshake");
        e = errno;
        SSL_free (t->ssl);
        t->ssl = NULL;
        tls_close (t);
        errno = e;
        return NULL;
    }
    return t;
}

struct tls *
tls_connect_fd (struct tls_conf *conf, int fd, const char *server_name,
                int timeout_ms)
{
    struct tls *t = tls_new (conf, fd, timeout_ms);
    unsigned char addr[16];
    int r;

    if (t == NULL) {
        return NULL;
    }
    if (!conf->pinned && server_name != NULL) {
        /* CA mode: the certificate must also name the server. */
        X509_VERIFY_PARAM *param = SSL_get0_param (t->ssl);

        if (inet_pton (AF_INET, server_name, addr) == 1 ||
            inet_pton (AF_INET6, server_name, addr) == 1) {
            r = X509_VERIFY_PARAM_set1_ip_asc (param, server_name);
        }
        else {
            r = X509_VERIFY_PARAM_set1_host (param, server_name, 0);
            SSL_set_tlsext_host_name (t->ssl, server_name);
        }
        if (r != 1) {
            ssl_error ("server name");
            tls_close (t);
            return NULL;
        }
    }
    ERR_clear_error ();
    errno = 0;
    r = SSL_connect (t->ssl);
    if (r != 1) {
        int e;

        io_error (t, r, "TLS handshake");
        e = errno;
        SSL_free (t->ssl);
        t->ssl = NULL;
        tls_close (t);
        errno = e;
        return NULL;
    }
    return t;
}

ssize_t
tls_read (struct tls *t, void *buf, size_t len)
{
    size_t got = 0;
    int r;

    ERR_clear_error ();
    errno = 0;
    r = SSL_read_ex (t->ssl, buf, len, &got);
    if (r == 1) {
        return (ssize_t) got;
    }
    if (SSL_get_error (t->ssl, r) == SSL_ERROR_ZERO_RETURN) {
        return 0;
    }
    io_error (t, r, "TLS read");
    return -1;
}

int
tls_read_full (struct tls *t, void *buf, size_t len)
{
    char *p = buf;
    ssize_t r;

    while (len > 0) {
        r = tls_read (t, p, len);
        if (r == -1) {
            return -1;
        }
        if (r == 0) {
            errno = ECONNRESET;
            vmc_error ("TLS read: the peer closed the connection");
            return -1;
        }
        p += r;
        len -= (size_t) r;
    }
    return 0;
}

bool
tls_readable (struct tls *t, int timeout_ms)
{
    struct pollfd pfd = { t->fd, POLLIN, 0 };

    /* Records already read ahead into OpenSSL's buffer, processed or not:
     * the socket may have nothing left. */
    if (SSL_has_pending (t->ssl)) {
        return true;
    }
    return poll (&pfd, 1, timeout_ms) == 1;
}

int
tls_write_all (struct tls *t, const void *buf, size_t len)
{
    size_t done = 0;
    int r;

    while (len > 0) {
        ERR_clear_error ();
        errno = 0;
        r = SSL_write_ex (t->ssl, buf, len, &done);
        if (r != 1) {
            io_error (t, r, "TLS write");
            return -1;
        }
        buf = (const char *) buf + done;
        len -= done;
    }
    ERR_clear_error ();
    errno = 0;
    if (BIO_flush (SSL_get_wbio (t->ssl)) != 1) {
        if (BIO_should_retry (SSL_get_wbio (t->ssl))) {
            errno = ETIMEDOUT;
            vmc_error ("TLS write: timed out");
        }
        else if (errno != 0) {
            vmc_perror ("TLS write");
        }
        else {
            errno = ECONNRESET;
            vmc_error ("TLS write: the connection was closed");
        }
        return -1;
    }
    return 0;
}

int
tls_peer_fingerprint (struct tls *t, char out[TLS_FINGERPRINT_LEN])
{
    X509 *cert = SSL_get0_peer_certificate (t->ssl);

    if (cert == NULL) {
        vmc_error ("the peer has no certificate");
        return -1;
    }
    return cert_fingerprint (cert, out);
}

bool
tls_peer_cert_verified (struct tls *t)
{
    return SSL_get0_peer_certificate (t->ssl) != NULL &&
           SSL_get_verify_result (t->ssl) == X509_V_OK &&
           t->peer_cert_error[0] == '\0' &&
           t->conf->server &&
           SSL_CTX_get_verify_mode (t->conf->ctx) != SSL_VERIFY_NONE;
}

const char *
tls_peer_cert_error (struct tls *t)
{
    if (SSL_get0_peer_certificate (t->ssl) == NULL) {
        return NULL;
    }
    if (t->peer_cert_error[0] != '\0') {
        return t->peer_cert_error;
    }
    if (SSL_get_verify_result (t->ssl) != X509_V_OK) {
        snprintf (t->peer_cert_error, sizeof t->peer_cert_error,
                  "the client certificate is not trusted: %s",
                  X509_verify_cert_error_string (SSL_get_verify_result (t->ssl)));
        return t->peer_cert_error;
    }
    return NULL;
}

const char *
tls_cipher (struct tls *t)
{
    return SSL_get_cipher_name (t->ssl);
}

void
tls_close (struct tls *t)
{
    if (t == NULL) {
        return;
    }
    if (t->ssl != NULL) {
        /* One close_notify, without waiting for the peer's. */
        ERR_clear_error ();
        SSL_shutdown (t->ssl);
        SSL_free (t->ssl);
    }
    if (t->fd != -1) {
        close (t->fd);
    }
    free (t);
}

void
tls_close_linger (struct tls *t, int linger_ms)
{
    char buf[65536];
    struct timespec ts;
    double end, left;
    struct pollfd pfd;

    if (t == NULL) {
        return;
    }
    if (t->ssl != NULL) {
        ERR_clear_error ();
        SSL_shutdown (t->ssl);
    }
    if (t->fd != -1 && shutdown (t->fd, SHUT_WR) == 0) {
        clock_gettime (CLOCK_MONOTONIC, &ts);
        end = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9 + linger_ms / 1e3;
        for (;;) {
            clock_gettime (CLOCK_MONOTONIC, &ts);
            left = end - ((double) ts.tv_sec + (double) ts.tv_nsec / 1e9);
            pfd.fd = t->fd;
            pfd.events = POLLIN;
            if (left <= 0 || poll (&pfd, 1, (int) (left * 1000)) != 1 ||
                read (t->fd, buf, sizeof buf) <= 0) {
                break;
            }
        }
    }
    if (t->ssl != NULL) {
        SSL_free (t->ssl);
        t->ssl = NULL;
    }
    tls_close (t);
}

int
tls_make_self_signed (const char *cert_file, const char *key_file,
                      const char *common_name)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    X509_NAME *name;
    X509_EXTENSION *ext = NULL;
    uint64_t serial;
    FILE *fp = NULL;
    char san[300];
    int fd, r = -1;

    key = EVP_EC_gen ("P-256");
    cert = X509_new ();
    if (key == NULL || cert == NULL) {
        ssl_error ("key generation");
        goto out;
    }
    if (RAND_bytes ((unsigned char *) &serial, sizeof serial) != 1) {
        ssl_error ("RAND_bytes");
        goto out;
    }
    serial >>= 1;               /* positive */
    name = X509_get_subject_name (cert);
    snprintf (san, sizeof san, "DNS:%s", common_name);
    if (X509_set_version (cert, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set_uint64 (X509_get_serialNumber (cert), serial) != 1 ||
        X509_gmtime_adj (X509_getm_notBefore (cert), -3600) == NULL ||
        X509_gmtime_adj (X509_getm_notAfter (cert),
                         10L * 366 * 24 * 3600) == NULL ||
        X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *) common_name, -1,
                                    -1, 0) != 1 ||
        X509_set_issuer_name (cert, name) != 1 ||
        X509_set_pubkey (cert, key) != 1) {
        ssl_error ("certificate fields");
        goto out;
    }
    ext = X509V3_EXT_conf_nid (NULL, NULL, NID_subject_alt_name, san);
    if (ext == NULL || X509_add_ext (cert, ext, -1) != 1 ||
        X509_sign (cert, key, EVP_sha256 ()) == 0) {
        ssl_error ("certificate signature");
        goto out;
    }

    fd = open (key_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1 || (fp = fdopen (fd, "w")) == NULL) {
        vmc_perror ("%s", key_file);
        if (fd != -1) {
            close (fd);
        }
        goto out;
    }
    if (PEM_write_PrivateKey (fp, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        fflush (fp) != 0 || fsync (fileno (fp)) != 0) {
        ssl_error (key_file);
        goto out;
    }
    fclose (fp);
    fd = open (cert_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd == -1 || (fp = fdopen (fd, "w")) == NULL) {
        vmc_perror ("%s", cert_file);
        if (fd != -1) {
            close (fd);
        }
        fp = NULL;
        goto out;
    }
    if (PEM_write_X509 (fp, cert) != 1 || fflush (fp) != 0 ||
        fsync (fileno (fp)) != 0) {
        ssl_error (cert_file);
        goto out;
    }
    r = 0;
out:
    if (fp != NULL) {
        fclose (fp);
    }
    X509_EXTENSION_free (ext);
    X509_free (cert);
    EVP_PKEY_free (key);
    return r;
}

int
tls_cert_file_fingerprint (const char *cert_file,
                           char out[TLS_FINGERPRINT_LEN])
{
    FILE *fp;
    X509 *cert;
    int r;

    fp = fopen (cert_file, "r");
    if (fp == NULL) {
        vmc_perror ("%s", cert_file);
        return -1;
    }
    cert = PEM_read_X509 (fp, NULL, NULL, NULL);
    fclose (fp);
    if (cert == NULL) {
        ssl_error (cert_file);
        return -1;
    }
    r = cert_fingerprint (cert, out);
    X509_free (cert);
    return r;
}
