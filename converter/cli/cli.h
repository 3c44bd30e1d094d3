/* SPDX-License-Identifier: MIT */
/*
 * The vmconvert command: one file per subcommand, sharing these helpers.
 * Subcommands return the process exit status; only they print.
 */
#ifndef VMC_CLI_H
#define VMC_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../lib/json.h"

int cmd_info (int argc, char **argv);
int cmd_convert (int argc, char **argv);
int cmd_compare (int argc, char **argv);
int cmd_check (int argc, char **argv);
int cmd_digest (int argc, char **argv);
int cmd_send (int argc, char **argv);
int cmd_receive (int argc, char **argv);
int cmd_map (int argc, char **argv);
int cmd_inspect (int argc, char **argv);

struct disk_map;
/* Print the map's warnings as "vmconvert: warning: ..." on stderr. */
void map_print_warnings (const struct disk_map *m);

/* Print "vmconvert: <msg>" for the library's last error. */
void cli_error (void);

/* Print "vmconvert: <fmt...>". */
void cli_errorf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* "1.5 GiB" style; buf of at least 32 bytes. */
const char *human_size (uint64_t bytes, char *buf, size_t len);

/* List the formats (for --help). */
void print_formats (FILE *fp, bool writable_only);

/* Progress meter on stderr: percent, MB/s, ETA; rate-limited. */
struct progress {
    const char *label;
    double start;
    double last;
    uint64_t last_done;
    bool shown;
    bool tty;                   /* stderr is a terminal: redraw one line */
};
void progress_start (struct progress *p, const char *label);
void progress_update (void *opaque, uint64_t done, uint64_t total);
void progress_end (struct progress *p);

double now_seconds (void);

#endif
