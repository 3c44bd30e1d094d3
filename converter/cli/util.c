/* SPDX-License-Identifier: MIT */
/*
 * Small output helpers shared by the subcommands: sizes for people and the
 * progress meter.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double
now_seconds (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

const char *
human_size (uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                         "PiB", "EiB" };
    double v = (double) bytes;
    unsigned u = 0;

    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf (buf, len, "%" PRIu64 " B", bytes);
    }
    else {
        snprintf (buf, len, "%.3g %s", v, units[u]);
    }
    return buf;
}

void
progress_start (struct progress *p, const char *label)
{
    p->label = label;
    p->start = p->last = now_seconds ();
    p->last_done = 0;
    p->shown = false;
    p->tty = isatty (STDERR_FILENO);
}

void
progress_update (void *opaque, uint64_t done, uint64_t total)
{
    struct progress *p = opaque;
    double t = now_seconds (), el = t - p->start, rate, pct;
    long eta;

    /* A terminal gets a line redrawn 4 times a second; a log file a new
     * line every 10 seconds, so it stays readable. */
    if (t - p->last < (p->tty ? 0.25 : 10.0) && done < total) {
        return;
    }
    p->last = t;
    p->last_done = done;
    pct = total > 0 ? 100.0 * (double) done / (double) total : 100.0;
    rate = el > 0 ? (double) done / el / 1e6 : 0;
    eta = rate > 0 ? (long) ((double) (total - done) / 1e6 / rate) : 0;
    fprintf (stderr, "%s%s%s%6.2f%%  %8.1f MB/s  ETA %ld:%02ld:%02ld%s",
             p->tty ? "\r" : "",
             p->label != NULL ? p->label : "", p->label != NULL ? " " : "",
             pct, rate, eta / 3600, eta / 60 % 60, eta % 60,
             p->tty ? " " : "\n");
    p->shown = p->tty;
}

void
progress_end (struct progress *p)
{
    if (p->shown) {
        fputc ('\n', stderr);
    }
}
