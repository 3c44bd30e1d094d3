/* SPDX-License-Identifier: MIT */
/*
 * The receiver daemon (`vmconvert receive`): accepts senders over TLS,
 * authenticates them, and writes each job's disks into DIR/JOB/ as the
 * data arrives, acknowledging only what is durable (network/PROTOCOL.md).
 */
#ifndef VMC_RECEIVER_H
#define VMC_RECEIVER_H

#include <stdbool.h>
#include <stdint.h>

struct receiver_config {
    const char *listen;         /* "ADDR[:PORT]", "[V6ADDR]:PORT" */
    const char *dir;            /* job directories go here */
    const char *format;         /* output format (default qcow2) */
    const char *options;        /* creation options ("-o" syntax) or NULL */
    const char *tokens;         /* tokens file or NULL */
    const char *cert, *key;     /* NULL: self-signed under DIR/.tls/ */
    const char *client_ca;      /* client certificates, or NULL */
    int idle_timeout_ms;        /* drop a silent sender after this */
    uint64_t ack_bytes;         /* checkpoint at least this often */
    int ack_ms;                 /* ... and at least this often */
    unsigned max_conns;         /* refuse connections beyond this */
};

/* Serve until SIGTERM or SIGINT.  Prints "fingerprint sha256:..." and
 * "listening ADDR:PORT" on stdout when ready; logs on stderr.  Returns
 * the exit status. */
int receiver_run (const struct receiver_config *c);

#endif
