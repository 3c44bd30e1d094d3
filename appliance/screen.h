/* SPDX-License-Identifier: MIT */
/*
 * The appliance's console: every active console (a screen and a serial
 * port, typically) shows the same thing — on a screen as a full page
 * readable from across the room, on a serial port as log lines.  Input
 * is taken from whichever console a person types on.
 */
#ifndef VMC_APPLIANCE_SCREEN_H
#define VMC_APPLIANCE_SCREEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct progress_view {
    const char *server, *job;
    unsigned disk, ndisks;          /* disk is 0-based */
    const char *disk_name, *disk_model;
    uint64_t disk_size, disk_sent;
    uint64_t job_total, job_sent;
    double mbps;
    long eta_seconds;               /* -1: unknown */
    const char *status;             /* a line under the numbers, or NULL */
};

/* Open the consoles the kernel lists as active (or /dev/console). */
void screen_init (void);

/* A line on every console (and in the log). */
void screen_say (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Show progress: on screens redrawn at most twice a second, on serial
 * consoles a line every few seconds (FORCE: now). */
void screen_progress (const struct progress_view *v, bool force);

/* The final page: OK or failed, a title, and lines (what happened, what
 * to do next), NULL terminated. */
void screen_final (bool ok, const char *title, const char *const lines[]);

/* Clear the screens and write a heading (for the interactive setup). */
void screen_heading (const char *title);

/* Read a line from any console: its length (0 for an empty line), or -1
 * after TIMEOUT seconds (timeout < 0: wait for ever).  The prompt is
 * shown on every console. */
int screen_ask (const char *prompt, char *buf, size_t cap, int timeout);

/* Quiet the kernel on the console while the page is shown. */
void screen_quiet_kernel (void);

#endif
