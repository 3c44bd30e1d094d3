/* SPDX-License-Identifier: MIT */
/*
 * A small TLS wrapper: OpenSSL stays behind this header.
 *
 * The shape is OpenBSD libtls's: a configuration shared by connections, a
 * connection made from a connected socket by accept or connect, read and
 * write, close.  Only TLS 1.3 is spoken.  The server authenticates with a
 * certificate (self-signed ones are made here too); the client trusts it
 * either by its SHA-256 fingerprint ("sha256:<64 hex>", pinning: nothing
 * else is needed) or through a CA file.  The server may require client
 * certificates signed by a CA.  Errors go through vmc_error().
 */
#ifndef VMC_TLS_H
#define VMC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_conf;
struct tls;

/* "sha256:" + 64 hex digits + NUL */
#define TLS_FINGERPRINT_LEN 72

/* Server settings.  CLIENT_CA may be NULL (no client certificates asked
 * for); when given, a client that presents a certificate must present one
 * signed by it, and tls_peer_cert_verified() says whether it did
 * (tls_peer_cert_error() says why not). */
struct tls_conf *tls_conf_server (const char *cert_file, const char *key_file,
                                  const char *client_ca_file);

/* Client settings: exactly one of FINGERPRINT and CA_FILE.  CERT_FILE and
 * KEY_FILE (both or neither) give a client certificate. */
struct tls_conf *tls_conf_client (const char *fingerprint, const char *ca_file,
                                  const char *cert_file, const char *key_file);

void tls_conf_free (struct tls_conf *conf);

/* Handshake on a connected socket, which the connection then owns (closed
 * by tls_close, also on failure).  TIMEOUT_MS bounds every later read and
 * write too (0: none). */
struct tls *tls_accept_fd (struct tls_conf *conf, int fd, int timeout_ms);
struct tls *tls_connect_fd (struct tls_conf *conf, int fd,
                            const char *server_name, int timeout_ms);

/* Read up to LEN bytes: > 0 bytes read, 0 on a clean end of stream, -1 on
 * error or timeout (errno ETIMEDOUT). */
ssize_t tls_read (struct tls *t, void *buf, size_t len);

/* Read exactly LEN bytes; -1 on error, timeout or early end of stream. */
int tls_read_full (struct tls *t, void *buf, size_t len);

/* True when a read would not block: decrypted data is buffered, or the
 * socket becomes readable within TIMEOUT_MS (0: just look). */
bool tls_readable (struct tls *t, int timeout_ms);

/* Write all of BUF; -1 on error or timeout. */
int tls_write_all (struct tls *t, const void *buf, size_t len);

/* The peer certificate's fingerprint, "sha256:<hex>"; -1 if none. */
int tls_peer_fingerprint (struct tls *t, char out[TLS_FINGERPRINT_LEN]);

/* True when the peer presented a certificate that the configured CA
 * verified (server side, with a client CA). */
bool tls_peer_cert_verified (struct tls *t);

/* Server side: why the certificate the client presented did not verify
 * ("the client certificate is not trusted: certificate has expired"), or
 * NULL when it presented none or a good one.  A bad client certificate
 * does not fail the handshake: the server refuses the client when it
 * asks for something, and can tell it why. */
const char *tls_peer_cert_error (struct tls *t);

/* The negotiated cipher suite name, for logs. */
const char *tls_cipher (struct tls *t);

/* Send close_notify (best effort), close the socket, free.  NULL is fine. */
void tls_close (struct tls *t);

/* Like tls_close, but first stop sending and discard what the peer still
 * sends, for up to LINGER_MS: a peer busy writing then reads our last
 * message (an error) instead of losing it to a connection reset. */
void tls_close_linger (struct tls *t, int linger_ms);

/* Make a self-signed certificate (EC P-256, 10 years) for COMMON_NAME and
 * its key (mode 0600) in two new files. */
int tls_make_self_signed (const char *cert_file, const char *key_file,
                          const char *common_name);

/* The fingerprint of the certificate in a PEM file. */
int tls_cert_file_fingerprint (const char *cert_file,
                               char out[TLS_FINGERPRINT_LEN]);

/* Check the syntax of "sha256:<64 hex>" (case-insensitive hex). */
bool tls_fingerprint_valid (const char *fp);

#endif
