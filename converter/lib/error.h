/* SPDX-License-Identifier: MIT */
/*
 * The library's single error channel.
 *
 * A library function that fails records one message with vmc_error() and
 * returns -1 (or NULL).  The message names what failed and where, e.g.
 * "vmdk: grain table 17 points past end of file".  Only the executables
 * print it (vmc_get_error()) and decide the exit status.  The message is
 * per thread, so the copy engine's threads do not trample each other.
 */
#ifndef VMC_ERROR_H
#define VMC_ERROR_H

#include <stdarg.h>

/* Record an error message (printf-style).  errno is preserved. */
void vmc_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Like vmc_error, with ": strerror(errno)" appended.  errno is preserved. */
void vmc_perror (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Prefix the current message with "prefix: ", to add context on the way up. */
void vmc_error_prefix (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2)));

/* The last message recorded on this thread ("" if none). */
const char *vmc_get_error (void);

/* Copy another thread's message into this thread's slot. */
void vmc_set_error_string (const char *msg);

/* Warnings are not errors: they go to a hook the executable installs
 * (stderr by default) and the operation continues. */
void vmc_warn (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void vmc_set_warn_hook (void (*hook) (const char *msg));

#endif
