/* SPDX-License-Identifier: MIT */
/*
 * The sender (`vmconvert send`, and the appliance): streams disks to a
 * receiver over TLS, resuming by itself after a dropped connection or a
 * restarted receiver (network/PROTOCOL.md).
 */
#ifndef VMC_SENDER_H
#define VMC_SENDER_H

#include <stdbool.h>
#include <stdint.h>

enum progress_mode { PROGRESS_NONE, PROGRESS_TEXT, PROGRESS_JSON };

struct sender_config {
    const char *to;                 /* HOST[:PORT] */
    const char *fingerprint;        /* trust the receiver by fingerprint */
    const char *ca;                 /* ... or through a CA file */
    const char *cert, *key;         /* a client certificate, optional */
    const char *token;
    const char *job;                /* NULL: the host name */
    int compress;                   /* COMP_NONE, COMP_ZSTD, COMP_ZLIB */
    int level;                      /* 0: the method's fast default */
    const char *const *sources;
    unsigned nsources;
    const char *source_format;      /* -f, for every source */
    const char *facts_file;         /* JSON about the source, optional */
    enum progress_mode progress;
    int retry_seconds;              /* give up after this long without
                                     * progress */
    uint64_t window;                /* unacknowledged bytes in flight */
    int timeout_ms;                 /* connect and idle timeout */
    uint64_t max_rate;              /* bytes per second on the wire, 0: no
                                     * limit */
    bool all_blocks;                /* no used-block map: send everything */
    double backoff;                 /* first wait before reconnecting, in
                                     * seconds (0: 1 s); doubled while no
                                     * progress is made, up to 30 s */
};

/* Send every source as one job.  Returns the exit status: 0 when every
 * disk was verified by the receiver. */
int sender_run (const struct sender_config *c);

#endif
