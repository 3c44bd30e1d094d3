/* SPDX-License-Identifier: MIT */
/*
 * A receiver's job directory: DIR/JOB/.
 *
 *   job.json         for people and programs: state, progress, source
 *                    facts, per-disk digests and errors (rewritten
 *                    atomically; never read back)
 *   job.meta         what the receiver itself needs to resume the job
 *                    (format, options, disks, token hash), one "key value"
 *                    line each
 *   job.facts        the sender's source facts, verbatim (checked JSON)
 *   diskN.EXT.part   disk N while it arrives
 *   diskN.EXT        disk N once its digest is verified
 *   diskN.state      disk N's last checkpoint: durable offset and the
 *                    image writer's state (rewritten atomically)
 *   diskN.hashes     the 16-byte hashes of disk N's 1 MiB blocks below the
 *                    durable offset, for the digest
 *   .lock            flock'd by the one connection serving the job
 *   .reserve         space kept free for the state files while the job
 *                    is in progress (see job_reserve)
 *
 * Every file name is made here; nothing that comes from the network is
 * used as a path except the job name, which the protocol restricts to
 * [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
 */
#ifndef VMC_JOB_H
#define VMC_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../converter/lib/digest.h"
#include "../converter/lib/image.h"
#include "proto.h"

enum disk_state { DISK_RECEIVING = 0, DISK_DONE = 1, DISK_FAILED = 2 };

struct job_disk {
    char name[256];                 /* the sender's name for the disk */
    uint64_t size;
    enum disk_state state;
    uint64_t durable;               /* from diskN.state */
    unsigned char img_state[IMAGE_STATE_MAX];
    size_t img_state_len;           /* 0: nothing written yet */
    char digest[2 * DIGEST_LEN + 1];    /* hex, once verified */
    char error[256];
};

struct job {
    char name[80];
    char *dir;                      /* DIR/JOB */
    int lockfd;
    bool exists;                    /* job.meta was there */
    char format[16];
    char options[512];              /* creation options, "-o" syntax */
    char token_hash[65];            /* of the token that started the job */
    char state[16];                 /* receiving, paused, done, failed */
    char error[512];
    char peer[64];                  /* address of the last sender */
    uint32_t ndisks;
    struct job_disk disks[PROTO_MAX_DISKS];
    unsigned char *facts;
    size_t facts_len;
    uint64_t started, updated;      /* seconds since the epoch */
};

/* Open (creating if needed) and lock the job NAME under ROOT.  Returns
 * NULL with errno EBUSY when another connection holds it. */
struct job *job_open (const char *root, const char *name);

/* Path of a file in the job directory, into OUT. */
void job_path (const struct job *j, char *out, size_t len, const char *fmt,
               ...) __attribute__ ((format (printf, 4, 5)));

/* The file name of disk I ("disk0.qcow2"), final or in progress. */
void job_disk_file (const struct job *j, uint32_t i, bool part, char *out,
                    size_t len);

/* Record a new job's description (format, options, disks, facts). */
int job_save_meta (struct job *j);

/* Rewrite job.json from the current state. */
int job_save_json (struct job *j);

/* Durably record disk I's checkpoint (durable offset and image state). */
int job_save_disk_state (struct job *j, uint32_t i);

/* Append block hashes to diskN.hashes, and make them durable. */
int job_append_hashes (struct job *j, uint32_t i, const unsigned char *h,
                       size_t n);

/* Cut diskN.hashes to N block hashes (after a resume). */
int job_truncate_hashes (struct job *j, uint32_t i, uint64_t n);

/* The digest over disk I's stored block hashes. */
int job_disk_digest (struct job *j, uint32_t i,
                     unsigned char out[DIGEST_LEN]);

/* Space held in reserve (DIR/JOB/.reserve), so that the job's state can
 * still be recorded when its disk fills up: job_reserve() makes sure it
 * is there (-1 with errno ENOSPC when the disk has no room for it),
 * job_unreserve() gives it back. */
int job_reserve (struct job *j);
void job_unreserve (struct job *j);

/* Unlock and free; NULL is fine. */
void job_close (struct job *j);

#endif
