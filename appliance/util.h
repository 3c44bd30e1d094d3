/* SPDX-License-Identifier: MIT */
/*
 * Small things the appliance's parts share: the log and running
 * commands.
 */
#ifndef VMC_APPLIANCE_UTIL_H
#define VMC_APPLIANCE_UTIL_H

#include <stddef.h>

/* Open the log (appended to; also where commands' output goes).  Until
 * then, and when it cannot be opened, log lines go to stderr. */
void applog_open (const char *path);

/* One line in the log, with the seconds since boot. */
void applog (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Run ARGV (searched in PATH) with stdin from /dev/null and stdout and
 * stderr into the log, and wait at most TIMEOUT seconds (then it is
 * killed).  Returns its exit status, or -1 when it could not run or was
 * killed. */
int run_cmd (const char *const argv[], int timeout);

/* Start ARGV like run_cmd without waiting: its PID, or -1. */
int spawn_cmd (const char *const argv[]);

/* Wait for a PID from spawn_cmd, at most TIMEOUT seconds: its status as
 * run_cmd returns it. */
int wait_cmd (int pid, int timeout);

/* Read a whole small file (at most CAP-1 bytes) into BUF, NUL
 * terminated: its length, or -1. */
long read_small_file (const char *path, char *buf, size_t cap);

/* The first line of the sysfs (or procfs) file DIR/NAME (DIR alone when
 * NAME is NULL) into OUT: printable ASCII only, blanks trimmed at both
 * ends.  Its length, or -1 when the file cannot be read. */
int sysfs_attr (const char *dir, const char *name, char *out, size_t cap);

/* Seconds since boot (CLOCK_BOOTTIME). */
double uptime_seconds (void);

#endif
