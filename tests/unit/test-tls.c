/* SPDX-License-Identifier: MIT */
/*
 * The TLS wrapper over socket pairs: a pinned fingerprint connects and
 * moves data; a wrong fingerprint, an untrusted CA, a TLS 1.2 client and a
 * plaintext client are all refused with a clear reason; client
 * certificates are verified against the client CA (a bad one is reported,
 * not refused in the handshake: the receiver refuses it at HELLO).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "../../converter/lib/error.h"
#include "../../network/tls.h"
#include "test.h"

static char dir[] = "/tmp/vmc-tls.XXXXXX";
static char cert[256], key[256], cert2[256], key2[256], ccert[256], ckey[256];

struct server_args {
    struct tls_conf *conf;
    int fd;
    bool ok;
    bool verified;
    char err[1024];
    char cert_err[256];             /* tls_peer_cert_error() */
};

static void *
server_thread (void *arg)
{
    struct server_args *a = arg;
    struct tls *t;
    char buf[5];

    t = tls_accept_fd (a->conf, a->fd, 5000);
    if (t == NULL) {
        snprintf (a->err, sizeof a->err, "%s", vmc_get_error ());
        return NULL;
    }
    a->verified = tls_peer_cert_verified (t);
    snprintf (a->cert_err, sizeof a->cert_err, "%s",
              tls_peer_cert_error (t) != NULL ? tls_peer_cert_error (t) : "");
    if (tls_read_full (t, buf, 5) == 0 && memcmp (buf, "hello", 5) == 0 &&
        tls_write_all (t, "world", 5) == 0) {
        a->ok = true;
    }
    tls_close (t);
    return NULL;
}

/* Connect a client with CONF to a server with SCONF; true when data moved
 * both ways.  *client_err gets the client's error. */
static bool
run_pair (struct tls_conf *sconf, struct tls_conf *cconf,
          struct server_args *sa, char *client_err, size_t errlen)
{
    pthread_t th;
    struct tls *t;
    int sv[2];
    char buf[5];
    bool ok = false;

    if (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
        return false;
    }
    memset (sa, 0, sizeof *sa);
    sa->conf = sconf;
    sa->fd = sv[0];
    pthread_create (&th, NULL, server_thread, sa);
    t = tls_connect_fd (cconf, sv[1], "localhost", 5000);
    client_err[0] = '\0';
    if (t == NULL) {
        snprintf (client_err, errlen, "%s", vmc_get_error ());
    }
    else {
        ok = tls_write_all (t, "hello", 5) == 0 &&
             tls_read_full (t, buf, 5) == 0 && memcmp (buf, "world", 5) == 0;
        if (!ok) {
            snprintf (client_err, errlen, "%s", vmc_get_error ());
        }
        CHECK (strstr (tls_cipher (t), "AES") != NULL);
        tls_close (t);
    }
    pthread_join (th, NULL);
    return ok && sa->ok;
}

static void
test_pinning (void)
{
    char fp[TLS_FINGERPRINT_LEN], fp2[TLS_FINGERPRINT_LEN], err[1024];
    struct tls_conf *s, *c;
    struct server_args sa;

    CHECK (tls_cert_file_fingerprint (cert, fp) == 0);
    CHECK (tls_fingerprint_valid (fp));
    CHECK (tls_cert_file_fingerprint (cert2, fp2) == 0);
    CHECK (strcmp (fp, fp2) != 0);
    s = tls_conf_server (cert, key, NULL);
    CHECK (s != NULL);

    c = tls_conf_client (fp, NULL, NULL, NULL);
    CHECK (c != NULL);
    CHECK (run_pair (s, c, &sa, err, sizeof err));
    CHECK (!sa.verified);
    tls_conf_free (c);

    /* Upper-case hex is the same fingerprint. */
    for (char *p = fp + 7; *p != '\0'; p++) {
        if (*p >= 'a' && *p <= 'f') {
            *p = (char) (*p - 'a' + 'A');
        }
    }
    c = tls_conf_client (fp, NULL, NULL, NULL);
    CHECK (run_pair (s, c, &sa, err, sizeof err));
    tls_conf_free (c);

    c = tls_conf_client (fp2, NULL, NULL, NULL);
    CHECK (!run_pair (s, c, &sa, err, sizeof err));
    CHECK (strstr (err, "wrong server certificate fingerprint") != NULL);
    CHECK (!sa.ok && sa.err[0] != '\0');
    tls_conf_free (c);

    CHECK (tls_conf_client ("sha256:12", NULL, NULL, NULL) == NULL);
    CHECK (strstr (vmc_get_error (), "not a fingerprint") != NULL);
    CHECK (tls_conf_client (NULL, NULL, NULL, NULL) == NULL);
    tls_conf_free (s);
}

static void
test_ca (void)
{
    struct tls_conf *s, *c;
    struct server_args sa;
    char err[1024];

    /* A self-signed certificate is its own CA. */
    s = tls_conf_server (cert, key, NULL);
    c = tls_conf_client (NULL, cert, NULL, NULL);
    CHECK (s != NULL && c != NULL);
    CHECK (run_pair (s, c, &sa, err, sizeof err));
    tls_conf_free (c);

    c = tls_conf_client (NULL, cert2, NULL, NULL);
    CHECK (!run_pair (s, c, &sa, err, sizeof err));
    CHECK (strstr (err, "server certificate not trusted") != NULL);
    tls_conf_free (c);
    tls_conf_free (s);

    /* Client certificates: one signed by the client CA is verified; one
     * that is not is not verified, and the server can say why (the
     * handshake completes, so the receiver can tell the sender). */
    s = tls_conf_server (cert, key, ccert);
    c = tls_conf_client (NULL, cert, ccert, ckey);
    CHECK (run_pair (s, c, &sa, err, sizeof err));
    CHECK (sa.verified);
    CHECK (sa.cert_err[0] == '\0');
    tls_conf_free (c);
    c = tls_conf_client (NULL, cert, cert2, key2);
    CHECK (run_pair (s, c, &sa, err, sizeof err));
    CHECK (!sa.verified);
    CHECK (strstr (sa.cert_err, "client certificate is not trusted") != NULL);
    tls_conf_free (c);
    /* No client certificate at all: accepted, not verified (a token may
     * authenticate it instead). */
    c = tls_conf_client (NULL, cert, NULL, NULL);
    CHECK (run_pair (s, c, &sa, err, sizeof err));
    CHECK (!sa.verified);
    CHECK (sa.cert_err[0] == '\0');
    tls_conf_free (c);
    tls_conf_free (s);
}

static void *
old_client_thread (void *arg)
{
    int fd = *(int *) arg;
    SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
    SSL *ssl;

    SSL_CTX_set_max_proto_version (ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify (ctx, SSL_VERIFY_NONE, NULL);
    ssl = SSL_new (ctx);
    SSL_set_fd (ssl, fd);
    CHECK (SSL_connect (ssl) != 1);
    SSL_free (ssl);
    SSL_CTX_free (ctx);
    close (fd);
    return NULL;
}

static void
test_refusals (void)
{
    struct tls_conf *s = tls_conf_server (cert, key, NULL);
    pthread_t th;
    int sv[2];

    /* TLS 1.2 only client. */
    CHECK (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pthread_create (&th, NULL, old_client_thread, &sv[1]);
    CHECK (tls_accept_fd (s, sv[0], 5000) == NULL);
    pthread_join (th, NULL);

    /* Plaintext: a client that speaks something else. */
    CHECK (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK (write (sv[1], "GET / HTTP/1.0\r\n\r\n", 18) == 18);
    shutdown (sv[1], SHUT_WR);
    CHECK (tls_accept_fd (s, sv[0], 5000) == NULL);
    CHECK (strstr (vmc_get_error (), "not a TLS client: it sent plaintext "
                   "(\"GET / HTTP/1.0....\")") != NULL);
    close (sv[1]);

    /* A client that never speaks: the handshake times out. */
    CHECK (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    errno = 0;
    CHECK (tls_accept_fd (s, sv[0], 300) == NULL);
    CHECK (strstr (vmc_get_error (), "timed out") != NULL);
    close (sv[1]);
    tls_conf_free (s);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    if (mkdtemp (dir) == NULL) {
        return 99;
    }
    snprintf (cert, sizeof cert, "%s/cert.pem", dir);
    snprintf (key, sizeof key, "%s/key.pem", dir);
    snprintf (cert2, sizeof cert2, "%s/cert2.pem", dir);
    snprintf (key2, sizeof key2, "%s/key2.pem", dir);
    snprintf (ccert, sizeof ccert, "%s/client.pem", dir);
    snprintf (ckey, sizeof ckey, "%s/client-key.pem", dir);
    CHECK (tls_make_self_signed (cert, key, "localhost") == 0);
    CHECK (tls_make_self_signed (cert2, key2, "localhost") == 0);
    CHECK (tls_make_self_signed (ccert, ckey, "client") == 0);
    /* Never overwrite an existing key. */
    CHECK (tls_make_self_signed (cert, key, "localhost") == -1);

    test_pinning ();
    test_ca ();
    test_refusals ();

    unlink (cert); unlink (key); unlink (cert2); unlink (key2);
    unlink (ccert); unlink (ckey);
    rmdir (dir);
    return test_status ();
}
