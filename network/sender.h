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

/* What the sender tells a program that drives it (the appliance) instead
 * of printing, when sender_config.on_event is set. */
enum send_event_kind {
    SEND_MESSAGE,                   /* message: something worth saying */
    SEND_WARNING,                   /* message: e.g. a disk copied whole */
    SEND_CONNECTED,                 /* the receiver is verified, job accepted */
    SEND_PROGRESS,                  /* disk, sent, durable, total, mbps, eta */
    SEND_DISK_DONE,                 /* disk verified by the receiver; digest */
    SEND_DONE,                      /* the job: bytes, seconds, wire, resent */
};

struct send_event {
    enum send_event_kind kind;
    const char *message;
    unsigned disk, ndisks;
    const char *source;
    uint64_t sent, durable, total;  /* this disk (SEND_PROGRESS) */
    uint64_t job_sent, job_total;   /* all disks */
    double mbps;
    long eta_seconds;               /* of the whole job; -1: unknown */
    const char *digest;             /* hex (SEND_DISK_DONE) */
    double seconds;                 /* SEND_DONE */
    uint64_t wire_bytes, resent_bytes, reconnects;
};

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
    const char *format;             /* ask the receiver to write this
                                     * format (NULL: its --format) */
    const char *const *names;       /* the disks' names in the job (NULL:
                                     * the sources' base names) */
    void (*on_event) (void *opaque, const struct send_event *ev);
    void *opaque;                   /* for on_event */
};

/* Send every source as one job.  Returns the exit status: 0 when every
 * disk was verified by the receiver. */
int sender_run (const struct sender_config *c);

/* Connect, verify the receiver and present the token, without starting
 * a job: 0 when the receiver would accept this sender, else -1 with the
 * reason left in vmc_get_error(). */
int sender_probe (const struct sender_config *c);

#endif
