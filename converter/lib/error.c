/* SPDX-License-Identifier: MIT */
/*
 * Per-thread error message storage; see error.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

#define ERROR_MAX 1024

static __thread char errbuf[ERROR_MAX];

static void
default_warn (const char *msg)
{
    fprintf (stderr, "vmconvert: warning: %s\n", msg);
}

static void (*warn_hook) (const char *msg) = default_warn;

void
vmc_error (const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (errbuf, sizeof errbuf, fmt, ap);
    va_end (ap);
    errno = saved;
}

void
vmc_perror (const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    size_t n;

    va_start (ap, fmt);
    vsnprintf (errbuf, sizeof errbuf, fmt, ap);
    va_end (ap);
    n = strlen (errbuf);
    snprintf (errbuf + n, sizeof errbuf - n, ": %s", strerror (saved));
    errno = saved;
}

void
vmc_error_prefix (const char *fmt, ...)
{
    int saved = errno;
    char prefix[256];
    size_t plen, olen;
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (prefix, sizeof prefix, fmt, ap);
    va_end (ap);
    plen = strlen (prefix);
    olen = strlen (errbuf);
    /* Move the old message right, truncating it if it no longer fits. */
    if (olen > ERROR_MAX - 1 - (plen + 2)) {
        olen = ERROR_MAX - 1 - (plen + 2);
    }
    memmove (errbuf + plen + 2, errbuf, olen);
    memcpy (errbuf, prefix, plen);
    errbuf[plen] = ':';
    errbuf[plen + 1] = ' ';
    errbuf[plen + 2 + olen] = '\0';
    errno = saved;
}

const char *
vmc_get_error (void)
{
    return errbuf;
}

void
vmc_set_error_string (const char *msg)
{
    snprintf (errbuf, sizeof errbuf, "%s", msg);
}

void
vmc_warn (const char *fmt, ...)
{
    char msg[ERROR_MAX];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    warn_hook (msg);
}

void
vmc_set_warn_hook (void (*hook) (const char *msg))
{
    warn_hook = hook != NULL ? hook : default_warn;
}
