/* SPDX-License-Identifier: MIT */
/*
 * Job directories; see job.h.
 *
 * Everything the receiver must find again after a crash is written with
 * write_atomic (a temporary file, fsync, rename, fsync of the directory),
 * so a file is either the old version or the new one.  job.meta and
 * diskN.state are our own files, but they are still parsed defensively:
 * a damaged one is an error, never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "../converter/lib/byteorder.h"
#include "../converter/lib/error.h"
#include "../converter/lib/json.h"
#include "job.h"

#define DISK_STATE_MAGIC "VMCDSKS1"
#define META_MAX (64 * 1024)

void
job_path (const struct job *j, char *out, size_t len, const char *fmt, ...)
{
    char name[128];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (name, sizeof name, fmt, ap);
    va_end (ap);
    snprintf (out, len, "%s/%s", j->dir, name);
}

void
job_disk_file (const struct job *j, uint32_t i, bool part, char *out,
               size_t len)
{
    const char *ext = strcmp (j->format, "vpc") == 0 ? "vhd" : j->format;

    snprintf (out, len, "disk%" PRIu32 ".%s%s", i, ext, part ? ".part" : "");
}

/* Write BUF to NAME in the job directory, atomically and durably. */
static int
write_atomic (struct job *j, const char *name, const void *buf, size_t len)
{
    char path[4096], tmp[4096];
    int fd, dfd;

    job_path (j, path, sizeof path, "%s", name);
    job_path (j, tmp, sizeof tmp, ".%s.tmp", name);
    fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        vmc_perror ("%s", tmp);
        return -1;
    }
    while (len > 0) {
        ssize_t r = write (fd, buf, len);

        if (r == -1 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            vmc_perror ("%s", tmp);
            close (fd);
            unlink (tmp);
            return -1;
        }
        buf = (const char *) buf + r;
        len -= (size_t) r;
    }
    if (fsync (fd) == -1 || close (fd) == -1) {
        vmc_perror ("%s", tmp);
        unlink (tmp);
        return -1;
    }
    if (rename (tmp, path) == -1) {
        vmc_perror ("%s", path);
        unlink (tmp);
        return -1;
    }
    dfd = open (j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd != -1) {
        fsync (dfd);
        close (dfd);
    }
    return 0;
}

/* Read a whole small file; NULL with errno ENOENT when it is absent. */
static unsigned char *
read_small (struct job *j, const char *name, size_t max, size_t *len)
{
    char path[4096];
    unsigned char *buf;
    struct stat st;
    ssize_t r;
    int fd;

    job_path (j, path, sizeof path, "%s", name);
    fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        if (errno != ENOENT) {
            vmc_perror ("%s", path);
        }
        return NULL;
    }
    if (fstat (fd, &st) == -1 || (uint64_t) st.st_size > max) {
        vmc_error ("%s: too large", path);
        close (fd);
        errno = EFBIG;
        return NULL;
    }
    buf = malloc ((size_t) st.st_size + 1);
    if (buf == NULL) {
        close (fd);
        return NULL;
    }
    r = read (fd, buf, (size_t) st.st_size);
    close (fd);
    if (r != st.st_size) {
        vmc_error ("%s: short read", path);
        free (buf);
        errno = EIO;
        return NULL;
    }
    buf[r] = '\0';
    *len = (size_t) r;
    return buf;
}

static void
hex_encode (const char *s, char *out, size_t outlen)
{
    size_t i;

    out[0] = '-';
    out[1] = '\0';
    for (i = 0; s[i] != '\0' && 2 * i + 2 < outlen; i++) {
        snprintf (out + 2 * i, 3, "%02x", (unsigned char) s[i]);
    }
}

static int
hex_decode (const char *hex, char *out, size_t outlen)
{
    size_t i, n = strlen (hex);
    unsigned v;

    if (strcmp (hex, "-") == 0) {
        out[0] = '\0';
        return 0;
    }
    if (n % 2 != 0 || n / 2 >= outlen) {
        return -1;
    }
    for (i = 0; i < n / 2; i++) {
        if (sscanf (hex + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (char) v;
    }
    out[n / 2] = '\0';
    return 0;
}

/* Copy a field that must fit; -1 when it does not. */
static int
set_field (char *dst, size_t len, const char *src)
{
    size_t n = strlen (src);

    if (n >= len) {
        return -1;
    }
    memcpy (dst, src, n + 1);
    return 0;
}

static int
load_meta (struct job *j)
{
    char *meta, *line, *save = NULL, key[32], a[1100];
    unsigned long long v1;
    size_t len;

    meta = (char *) read_small (j, "job.meta", META_MAX, &len);
    if (meta == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        return -1;
    }
    j->exists = true;
    for (line = strtok_r (meta, "\n", &save); line != NULL;
         line = strtok_r (NULL, "\n", &save)) {
        if (sscanf (line, "%31s %1099s", key, a) != 2) {
            continue;
        }
        if (strcmp (key, "format") == 0) {
            if (set_field (j->format, sizeof j->format, a) == -1) {
                goto bad;
            }
        }
        else if (strcmp (key, "options") == 0) {
            if (hex_decode (a, j->options, sizeof j->options) == -1) {
                goto bad;
            }
        }
        else if (strcmp (key, "token") == 0) {
            if (set_field (j->token_hash, sizeof j->token_hash,
                           strcmp (a, "-") == 0 ? "" : a) == -1) {
                goto bad;
            }
        }
        else if (strcmp (key, "state") == 0) {
            if (set_field (j->state, sizeof j->state, a) == -1) {
                goto bad;
            }
        }
        else if (strcmp (key, "error") == 0) {
            if (hex_decode (a, j->error, sizeof j->error) == -1) {
                goto bad;
            }
        }
        else if (strcmp (key, "started") == 0) {
            j->started = strtoull (a, NULL, 10);
        }
        else if (strcmp (key, "disks") == 0) {
            v1 = strtoull (a, NULL, 10);
            if (v1 == 0 || v1 > PROTO_MAX_DISKS) {
                goto bad;
            }
            j->ndisks = (uint32_t) v1;
        }
        else if (strcmp (key, "disk") == 0) {
            char name[1100], digest[80], error[600];
            unsigned idx, st;
            struct job_disk *d;

            /* disk INDEX SIZE STATE NAMEHEX DIGEST ERRORHEX */
            if (sscanf (line, "disk %u %llu %u %1099s %79s %599s", &idx, &v1,
                        &st, name, digest, error) != 6 ||
                idx >= j->ndisks || st > DISK_FAILED ||
                strlen (digest) > 2 * DIGEST_LEN) {
                goto bad;
            }
            d = &j->disks[idx];
            d->size = v1;
            d->state = (enum disk_state) st;
            if (hex_decode (name, d->name, sizeof d->name) == -1 ||
                hex_decode (error, d->error, sizeof d->error) == -1) {
                goto bad;
            }
            if (strcmp (digest, "-") != 0) {
                memcpy (d->digest, digest, strlen (digest) + 1);
            }
        }
    }
    free (meta);
    return 0;
bad:
    vmc_error ("%s/job.meta: damaged line \"%.60s\"", j->dir, line);
    free (meta);
    return -1;
}

static int
load_disk_states (struct job *j)
{
    unsigned char *buf;
    char name[64];
    size_t len;
    uint32_t i, slen;

    for (i = 0; i < j->ndisks; i++) {
        snprintf (name, sizeof name, "disk%" PRIu32 ".state", i);
        buf = read_small (j, name, IMAGE_STATE_MAX + 64, &len);
        if (buf == NULL) {
            if (errno == ENOENT) {
                continue;
            }
            return -1;
        }
        slen = len >= 28 ? get_le32 (buf + 16) : 0;
        if (len < 28 || memcmp (buf, DISK_STATE_MAGIC, 8) != 0 ||
            slen > IMAGE_STATE_MAX || len != 28 + (size_t) slen ||
            get_le64 (buf + 20 + slen) != XXH64 (buf, 20 + slen, 0)) {
            vmc_error ("%s/%s: damaged checkpoint", j->dir, name);
            free (buf);
            return -1;
        }
        j->disks[i].durable = get_le64 (buf + 8);
        j->disks[i].img_state_len = slen;
        memcpy (j->disks[i].img_state, buf + 20, slen);
        free (buf);
    }
    return 0;
}

/* A disk is renamed to its final name only once its digest matched (see
 * receiver.c), and recorded done in job.meta right after.  A receiver
 * that died in between left a verified disk that job.meta still calls
 * receiving, with no partial file to resume: every resume would fail to
 * open it.  Such a disk is recorded done now, with the digest of its
 * block hashes (the one that matched). */
static int
recover_renamed (struct job *j)
{
    unsigned char dg[DIGEST_LEN];
    char file[64], part[4096], final[4096];
    bool changed = false, all_done = true;
    struct stat st;
    uint32_t i;

    for (i = 0; i < j->ndisks; i++) {
        struct job_disk *d = &j->disks[i];

        job_disk_file (j, i, true, file, sizeof file);
        job_path (j, part, sizeof part, "%s", file);
        job_disk_file (j, i, false, file, sizeof file);
        job_path (j, final, sizeof final, "%s", file);
        if (d->state == DISK_RECEIVING && stat (part, &st) == -1 &&
            errno == ENOENT && stat (final, &st) == 0) {
            if (job_disk_digest (j, i, dg) == -1) {
                return -1;
            }
            d->state = DISK_DONE;
            d->durable = d->size;
            digest_hex (dg, d->digest);
            changed = true;
        }
        all_done &= d->state == DISK_DONE;
    }
    if (!changed) {
        return 0;
    }
    if (all_done) {
        snprintf (j->state, sizeof j->state, "done");
    }
    return job_save_meta (j) == -1 || job_save_json (j) == -1 ? -1 : 0;
}

struct job *
job_open (const char *root, const char *name)
{
    struct job *j;
    char path[4096];

    if (!proto_job_name_valid (name)) {
        vmc_error ("invalid job name");
        errno = EINVAL;
        return NULL;
    }
    j = calloc (1, sizeof *j);
    if (j == NULL || asprintf (&j->dir, "%s/%s", root, name) == -1) {
        free (j);
        vmc_perror ("job");
        return NULL;
    }
    j->lockfd = -1;
    snprintf (j->name, sizeof j->name, "%s", name);
    if (mkdir (j->dir, 0700) == -1 && errno != EEXIST) {
        vmc_perror ("%s", j->dir);
        goto fail;
    }
    job_path (j, path, sizeof path, ".lock");
    j->lockfd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->lockfd == -1) {
        vmc_perror ("%s", path);
        goto fail;
    }
    if (flock (j->lockfd, LOCK_EX | LOCK_NB) == -1) {
        int e = errno;

        vmc_error ("job %s is being served by another connection", name);
        job_close (j);
        errno = e == EWOULDBLOCK ? EBUSY : e;
        return NULL;
    }
    snprintf (j->state, sizeof j->state, "receiving");
    if (load_meta (j) == -1 || load_disk_states (j) == -1) {
        goto fail;
    }
    if (j->exists) {
        size_t len;

        j->facts = read_small (j, "job.facts", PROTO_MAX_FACTS, &len);
        j->facts_len = j->facts != NULL ? len : 0;
        if (recover_renamed (j) == -1) {
            goto fail;
        }
    }
    return j;
fail:
    job_close (j);
    errno = EIO;
    return NULL;
}

int
job_save_meta (struct job *j)
{
    char *buf = malloc (META_MAX), hex[1100], name[600], err[1100];
    size_t off = 0;
    uint32_t i;
    int r;

    if (buf == NULL) {
        vmc_perror ("malloc");
        return -1;
    }
    if (j->started == 0) {
        j->started = (uint64_t) time (NULL);
    }
    hex_encode (j->options, hex, sizeof hex);
    hex_encode (j->error, err, sizeof err);
    off += (size_t) snprintf (buf + off, META_MAX - off,
                              "version 1\nformat %s\noptions %s\ntoken %s\n"
                              "state %s\nerror %s\nstarted %" PRIu64
                              "\ndisks %" PRIu32 "\n", j->format, hex,
                              j->token_hash[0] != '\0' ? j->token_hash : "-",
                              j->state, err, j->started, j->ndisks);
    for (i = 0; i < j->ndisks && off < META_MAX; i++) {
        const struct job_disk *d = &j->disks[i];

        hex_encode (d->name, name, sizeof name);
        hex_encode (d->error, err, sizeof err);
        off += (size_t) snprintf (buf + off, META_MAX - off,
                                  "disk %" PRIu32 " %" PRIu64 " %d %s %s %s\n",
                                  i, d->size, (int) d->state, name,
                                  d->digest[0] != '\0' ? d->digest : "-", err);
    }
    r = off < META_MAX ? write_atomic (j, "job.meta", buf, off) : -1;
    if (r == 0 && j->facts_len > 0 &&
        write_atomic (j, "job.facts", j->facts, j->facts_len) == -1) {
        r = -1;
    }
    free (buf);
    return r;
}

int
job_save_disk_state (struct job *j, uint32_t i)
{
    struct job_disk *d = &j->disks[i];
    unsigned char buf[IMAGE_STATE_MAX + 64];
    char name[64];

    memcpy (buf, DISK_STATE_MAGIC, 8);
    put_le64 (buf + 8, d->durable);
    put_le32 (buf + 16, (uint32_t) d->img_state_len);
    memcpy (buf + 20, d->img_state, d->img_state_len);
    put_le64 (buf + 20 + d->img_state_len,
              XXH64 (buf, 20 + d->img_state_len, 0));
    snprintf (name, sizeof name, "disk%" PRIu32 ".state", i);
    return write_atomic (j, name, buf, 28 + d->img_state_len);
}

static int
open_hashes (struct job *j, uint32_t i, int flags)
{
    char path[4096];
    int fd;

    job_path (j, path, sizeof path, "disk%" PRIu32 ".hashes", i);
    fd = open (path, flags | O_CLOEXEC, 0644);
    if (fd == -1) {
        vmc_perror ("%s", path);
    }
    return fd;
}

int
job_append_hashes (struct job *j, uint32_t i, const unsigned char *h,
                   size_t n)
{
    size_t len = n * DIGEST_BLOCK_HASH;
    int fd;

    if (n == 0) {
        return 0;
    }
    fd = open_hashes (j, i, O_WRONLY | O_CREAT | O_APPEND);
    if (fd == -1) {
        return -1;
    }
    while (len > 0) {
        ssize_t r = write (fd, h, len);

        if (r == -1 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            vmc_perror ("disk%" PRIu32 ".hashes", i);
            close (fd);
            return -1;
        }
        h += r;
        len -= (size_t) r;
    }
    if (fdatasync (fd) == -1) {
        vmc_perror ("disk%" PRIu32 ".hashes", i);
        close (fd);
        return -1;
    }
    close (fd);
    return 0;
}

int
job_truncate_hashes (struct job *j, uint32_t i, uint64_t n)
{
    int fd = open_hashes (j, i, O_WRONLY | O_CREAT);
    struct stat st;

    if (fd == -1) {
        return -1;
    }
    if (fstat (fd, &st) == -1 ||
        (uint64_t) st.st_size < n * DIGEST_BLOCK_HASH) {
        vmc_error ("disk%" PRIu32 ".hashes: %" PRIu64 " block hashes "
                   "missing", i, n - (uint64_t) st.st_size / DIGEST_BLOCK_HASH);
        close (fd);
        return -1;
    }
    if (ftruncate (fd, (off_t) (n * DIGEST_BLOCK_HASH)) == -1) {
        vmc_perror ("disk%" PRIu32 ".hashes", i);
        close (fd);
        return -1;
    }
    close (fd);
    return 0;
}

int
job_disk_digest (struct job *j, uint32_t i, unsigned char out[DIGEST_LEN])
{
    uint64_t n = (j->disks[i].size + DIGEST_BLOCK - 1) / DIGEST_BLOCK;
    unsigned char *h;
    int fd, r = -1;
    ssize_t got;

    /* 16 bytes per MiB: 64 MiB for a 4 TiB disk, read once at the end. */
    h = malloc (n * DIGEST_BLOCK_HASH);
    fd = open_hashes (j, i, O_RDONLY);
    if (h == NULL || fd == -1) {
        goto out;
    }
    got = pread (fd, h, n * DIGEST_BLOCK_HASH, 0);
    if (got != (ssize_t) (n * DIGEST_BLOCK_HASH)) {
        vmc_error ("disk%" PRIu32 ".hashes: %zd bytes, %" PRIu64 " expected",
                   i, got, n * DIGEST_BLOCK_HASH);
        goto out;
    }
    r = digest_blocks_final (h, n, out);
out:
    if (fd != -1) {
        close (fd);
    }
    free (h);
    return r;
}

static const char *
disk_state_name (enum disk_state s)
{
    return s == DISK_DONE ? "done" : s == DISK_FAILED ? "failed" : "receiving";
}

int
job_save_json (struct job *j)
{
    char *buf = NULL, file[64];
    size_t len = 0;
    uint64_t done = 0, total = 0;
    uint32_t i;
    FILE *fp;
    int r;

    fp = open_memstream (&buf, &len);
    if (fp == NULL) {
        vmc_perror ("open_memstream");
        return -1;
    }
    j->updated = (uint64_t) time (NULL);
    for (i = 0; i < j->ndisks; i++) {
        total += j->disks[i].size;
        done += j->disks[i].state == DISK_DONE ? j->disks[i].size
                                               : j->disks[i].durable;
    }
    fprintf (fp, "{\n  \"job\": ");
    json_string (fp, j->name);
    fprintf (fp, ",\n  \"state\": ");
    json_string (fp, j->state);
    fprintf (fp, ",\n  \"error\": ");
    if (j->error[0] != '\0') {
        json_string (fp, j->error);
    }
    else {
        fprintf (fp, "null");
    }
    fprintf (fp, ",\n  \"format\": ");
    json_string (fp, j->format);
    fprintf (fp, ",\n  \"started\": %" PRIu64 ",\n  \"updated\": %" PRIu64,
             j->started, j->updated);
    fprintf (fp, ",\n  \"peer\": ");
    json_string (fp, j->peer);
    fprintf (fp, ",\n  \"progress\": {\"durable_bytes\": %" PRIu64
             ", \"total_bytes\": %" PRIu64 ", \"percent\": %.2f}",
             done, total, total > 0 ? 100.0 * (double) done / (double) total
                                    : 0.0);
    fprintf (fp, ",\n  \"source\": ");
    if (j->facts_len > 0) {
        fwrite (j->facts, 1, j->facts_len, fp);
    }
    else {
        fprintf (fp, "null");
    }
    fprintf (fp, ",\n  \"disks\": [");
    for (i = 0; i < j->ndisks; i++) {
        const struct job_disk *d = &j->disks[i];

        job_disk_file (j, i, d->state != DISK_DONE, file, sizeof file);
        fprintf (fp, "%s\n    {\"index\": %" PRIu32 ", \"name\": ",
                 i > 0 ? "," : "", i);
        json_string (fp, d->name);
        fprintf (fp, ", \"size\": %" PRIu64 ", \"file\": ", d->size);
        json_string (fp, file);
        fprintf (fp, ", \"state\": \"%s\", \"durable_bytes\": %" PRIu64,
                 disk_state_name (d->state),
                 d->state == DISK_DONE ? d->size : d->durable);
        fprintf (fp, ", \"digest\": ");
        if (d->digest[0] != '\0') {
            json_string (fp, d->digest);
        }
        else {
            fprintf (fp, "null");
        }
        fprintf (fp, ", \"error\": ");
        if (d->error[0] != '\0') {
            json_string (fp, d->error);
        }
        else {
            fprintf (fp, "null");
        }
        fprintf (fp, "}");
    }
    fprintf (fp, "\n  ]\n}\n");
    if (fclose (fp) != 0) {
        free (buf);
        vmc_perror ("job.json");
        return -1;
    }
    r = write_atomic (j, "job.json", buf, len);
    free (buf);
    return r;
}

/* Enough for a rewrite of job.meta and job.json (which holds the facts)
 * while the old copies still exist. */
static uint64_t
reserve_size (const struct job *j)
{
    return (256u << 10) + 2 * (uint64_t) j->facts_len;
}

int
job_reserve (struct job *j)
{
    char path[4096];
    struct stat st;
    int fd, e;

    job_path (j, path, sizeof path, ".reserve");
    if (stat (path, &st) == 0 && (uint64_t) st.st_size >= reserve_size (j)) {
        return 0;
    }
    fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1) {
        vmc_perror ("%s", path);
        return -1;
    }
    e = posix_fallocate (fd, 0, (off_t) reserve_size (j));
    close (fd);
    if (e != 0) {
        unlink (path);
        errno = e;
        vmc_perror ("%s", path);
        return -1;
    }
    return 0;
}

void
job_unreserve (struct job *j)
{
    char path[4096];

    job_path (j, path, sizeof path, ".reserve");
    (void) unlink (path);
}

void
job_close (struct job *j)
{
    if (j == NULL) {
        return;
    }
    if (j->lockfd != -1) {
        close (j->lockfd);
    }
    free (j->facts);
    free (j->dir);
    free (j);
}
