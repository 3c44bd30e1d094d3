/* SPDX-License-Identifier: MIT */
/*
 * The appliance's console (screen.h).
 *
 * The consoles are those in /sys/class/tty/console/active ("tty0 ttyS0"
 * for console=tty0 console=ttyS0,115200).  A virtual terminal (ttyN) gets
 * full pages drawn with ANSI sequences the Linux console understands, the
 * percentage in digits five lines high; a serial console (ttyS*, hvc*,
 * ...) gets plain lines, which also read well in a log or an IPMI
 * serial-over-LAN session.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "screen.h"
#include "util.h"

#define MAX_CONSOLES 4

struct console {
    int fd;
    bool vt;
    char name[32];
    double last;                    /* last progress shown */
    int cols, rows;
};

static struct console cons[MAX_CONSOLES];
static unsigned ncons;

static double
mono (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
add_console (const char *name)
{
    char path[64];
    struct console *c;
    struct winsize ws;
    int fd;

    if (ncons >= MAX_CONSOLES) {
        return;
    }
    snprintf (path, sizeof path, "/dev/%s", name);
    fd = open (path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd == -1) {
        return;
    }
    c = &cons[ncons++];
    memset (c, 0, sizeof *c);
    c->fd = fd;
    snprintf (c->name, sizeof c->name, "%s", name);
    c->vt = strncmp (name, "tty", 3) == 0 && name[3] >= '0' && name[3] <= '9';
    c->cols = 80;
    c->rows = 25;
    if (ioctl (fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40 &&
        ws.ws_row >= 20) {
        c->cols = ws.ws_col;
        c->rows = ws.ws_row;
    }
}

void
screen_init (void)
{
    char active[256], *save = NULL, *tok;

    if (read_small_file ("/sys/class/tty/console/active", active,
                         sizeof active) > 0) {
        for (tok = strtok_r (active, " \n", &save); tok != NULL;
             tok = strtok_r (NULL, " \n", &save)) {
            add_console (tok);
        }
    }
    if (ncons == 0) {
        add_console ("console");
    }
    if (ncons == 0) {
        /* Run from a shell for a test: standard output. */
        cons[0].fd = STDOUT_FILENO;
        cons[0].cols = 80;
        cons[0].rows = 25;
        snprintf (cons[0].name, sizeof cons[0].name, "stdout");
        ncons = 1;
    }
}

void
screen_quiet_kernel (void)
{
    /* Only emergencies on the console; dmesg still has everything. */
    klogctl (8 /* SYSLOG_ACTION_CONSOLE_LEVEL */, NULL, 1);
}

static void
put (const struct console *c, const char *s)
{
    size_t len = strlen (s);

    while (len > 0) {
        ssize_t n = write (c->fd, s, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        s += n;
        len -= (size_t) n;
    }
}

static void
putf (const struct console *c, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
putf (const struct console *c, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (buf, sizeof buf, fmt, ap);
    va_end (ap);
    put (c, buf);
}

void
screen_say (const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (buf, sizeof buf, fmt, ap);
    va_end (ap);
    applog ("%s", buf);
    for (unsigned i = 0; i < ncons; i++) {
        putf (&cons[i], "vmconvert: %s\r\n", buf);
    }
}

/* Sizes for people: 1 decimal below 100, none above. */
static void
human (uint64_t b, char *out, size_t cap)
{
    static const char *const units[] = { "B", "KB", "MB", "GB", "TB", "PB" };
    double v = (double) b;
    unsigned u = 0;

    while (v >= 1000 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1000;
        u++;
    }
    snprintf (out, cap, v < 100 && u > 0 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void
hms (long s, char *out, size_t cap)
{
    if (s < 0) {
        snprintf (out, cap, "--:--:--");
    }
    else {
        snprintf (out, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
}

/* Digits five rows high, five columns wide: '#' is a block. */
static const char *const big_font[12][5] = {
    { "#####", "#   #", "#   #", "#   #", "#####" },   /* 0 */
    { "  #  ", " ##  ", "  #  ", "  #  ", " ### " },   /* 1 */
    { "#####", "    #", "#####", "#    ", "#####" },   /* 2 */
    { "#####", "    #", " ####", "    #", "#####" },   /* 3 */
    { "#   #", "#   #", "#####", "    #", "    #" },   /* 4 */
    { "#####", "#    ", "#####", "    #", "#####" },   /* 5 */
    { "#####", "#    ", "#####", "#   #", "#####" },   /* 6 */
    { "#####", "    #", "   # ", "  #  ", "  #  " },   /* 7 */
    { "#####", "#   #", "#####", "#   #", "#####" },   /* 8 */
    { "#####", "#   #", "#####", "    #", "#####" },   /* 9 */
    { "##  #", "## # ", "  #  ", " # ##", "#  ##" },   /* % */
    { "     ", "     ", "     ", "     ", "     " },   /* blank */
};

static void
big_text (const struct console *c, const char *s, int indent)
{
    for (int row = 0; row < 5; row++) {
        char line[512];
        size_t o = 0;

        for (int i = 0; i < indent && o + 1 < sizeof line; i++) {
            line[o++] = ' ';
        }
        for (const char *p = s; *p != '\0'; p++) {
            int g = *p >= '0' && *p <= '9' ? *p - '0' : *p == '%' ? 10 : 11;

            for (const char *q = big_font[g][row]; *q != '\0'; q++) {
                /* U+2588 FULL BLOCK: three bytes of UTF-8. */
                if (*q == '#' && o + 4 < sizeof line) {
                    memcpy (line + o, "\xe2\x96\x88", 3);
                    o += 3;
                }
                else if (o + 2 < sizeof line) {
                    line[o++] = ' ';
                }
            }
            if (o + 3 < sizeof line) {
                line[o++] = ' ';
                line[o++] = ' ';
            }
        }
        line[o] = '\0';
        putf (c, "%s\r\n", line);
    }
}

static void
bar (const struct console *c, double frac, int width)
{
    int fill = (int) (frac * width + 0.5);

    put (c, "  ");
    for (int i = 0; i < width; i++) {
        put (c, i < fill ? "\xe2\x96\x88" : "\xe2\x96\x91");
    }
    put (c, "\r\n");
}

void
screen_heading (const char *title)
{
    for (unsigned i = 0; i < ncons; i++) {
        struct console *c = &cons[i];

        if (c->vt) {
            putf (c, "\033[0m\033[H\033[2J\033[1;44;37m %-*.*s\033[0m\r\n\r\n",
                  c->cols - 1, c->cols - 1, title);
        }
        else {
            putf (c, "\r\n==== %s ====\r\n", title);
        }
    }
}

void
screen_progress (const struct progress_view *v, bool force)
{
    double t = mono ();
    double frac = v->disk_size > 0 ? (double) v->disk_sent /
                                     (double) v->disk_size : 1.0;
    double jfrac = v->job_total > 0 ? (double) v->job_sent /
                                      (double) v->job_total : 1.0;
    char size[32], sent[32], eta[32], pct[8];

    if (frac > 1) {
        frac = 1;
    }
    human (v->disk_size, size, sizeof size);
    human (v->disk_sent, sent, sizeof sent);
    hms (v->eta_seconds, eta, sizeof eta);
    snprintf (pct, sizeof pct, "%d%%", (int) (frac * 100));
    for (unsigned i = 0; i < ncons; i++) {
        struct console *c = &cons[i];

        if (!force && t - c->last < (c->vt ? 0.5 : 5.0)) {
            continue;
        }
        c->last = t;
        if (!c->vt) {
            putf (c, "vmconvert: disk %u/%u %s: %5.1f%%  %.1f MB/s  ETA %s  "
                  "(all disks %.1f%%)%s%s\r\n", v->disk + 1, v->ndisks,
                  v->disk_name, frac * 100, v->mbps, eta, jfrac * 100,
                  v->status != NULL ? "  " : "",
                  v->status != NULL ? v->status : "");
            continue;
        }
        putf (c, "\033[0m\033[H\033[2J\033[1;44;37m %-*.*s\033[0m\r\n",
              c->cols - 1, c->cols - 1, "vmconvert: sending this machine's "
              "disks");
        putf (c, "\r\n  to %s   job %s\r\n\r\n", v->server, v->job);
        putf (c, "  \033[1mDisk %u of %u\033[0m   %s   %s   %s\r\n\r\n",
              v->disk + 1, v->ndisks, v->disk_name, v->disk_model, size);
        putf (c, "\033[1;32m");
        big_text (c, pct, 4);
        putf (c, "\033[0m\r\n");
        bar (c, frac, c->cols - 6);
        putf (c, "\r\n  \033[1m%.1f MB/s\033[0m     ETA \033[1m%s\033[0m     "
              "%s of %s\r\n", v->mbps, eta, sent, size);
        putf (c, "  all disks: %.1f%%\r\n\r\n", jfrac * 100);
        if (v->status != NULL) {
            putf (c, "  \033[1;33m%s\033[0m\r\n", v->status);
        }
    }
}

void
screen_final (bool ok, const char *title, const char *const lines[])
{
    applog ("%s: %s", ok ? "SUCCESS" : "FAILED", title);
    for (unsigned i = 0; lines[i] != NULL; i++) {
        applog ("  %s", lines[i]);
    }
    for (unsigned i = 0; i < ncons; i++) {
        struct console *c = &cons[i];

        if (c->vt) {
            putf (c, "\033[0m\033[H\033[2J\033[1;%s;37m\r\n", ok ? "42" : "41");
            big_text (c, "", 0);
            putf (c, "\033[H\r\n\r\n  %s\r\n\r\n  %s\r\n\r\n",
                  ok ? "SUCCESS" : "FAILED", title);
            for (unsigned k = 0; lines[k] != NULL; k++) {
                putf (c, "  %s\r\n", lines[k]);
            }
            putf (c, "\033[J\033[0m\r\n");
        }
        else {
            putf (c, "\r\nvmconvert: ======== %s ========\r\n"
                  "vmconvert: %s\r\n", ok ? "SUCCESS" : "FAILED", title);
            for (unsigned k = 0; lines[k] != NULL; k++) {
                putf (c, "vmconvert:   %s\r\n", lines[k]);
            }
        }
    }
}

int
screen_ask (const char *prompt, char *buf, size_t cap, int timeout)
{
    struct pollfd pfd[MAX_CONSOLES];
    double end = mono () + timeout;
    static char partial[MAX_CONSOLES][512];
    static size_t plen[MAX_CONSOLES];

    /* Forget what was typed before the question, then ask: flushing
     * after the prompt would lose an answer typed (or scanned) as soon as
     * the prompt appeared. */
    for (unsigned i = 0; i < ncons; i++) {
        tcflush (cons[i].fd, TCIFLUSH);
        plen[i] = 0;
    }
    for (unsigned i = 0; i < ncons; i++) {
        putf (&cons[i], "%s", prompt);
    }
    for (;;) {
        int ms = timeout < 0 ? -1 : (int) ((end - mono ()) * 1000);
        int r;

        if (timeout >= 0 && ms <= 0) {
            return -1;
        }
        for (unsigned i = 0; i < ncons; i++) {
            pfd[i].fd = cons[i].fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        r = poll (pfd, ncons, ms);
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        for (unsigned i = 0; r > 0 && i < ncons; i++) {
            char in[256];
            ssize_t n;

            if (!(pfd[i].revents & POLLIN)) {
                continue;
            }
            n = read (cons[i].fd, in, sizeof in);
            for (ssize_t k = 0; k < n; k++) {
                if (in[k] == '\n' || in[k] == '\r') {
                    size_t len = plen[i] < cap ? plen[i] : cap - 1;

                    memcpy (buf, partial[i], len);
                    buf[len] = '\0';
                    /* Trim blanks at both ends. */
                    while (len > 0 && (buf[len - 1] == ' ' ||
                                       buf[len - 1] == '\t')) {
                        buf[--len] = '\0';
                    }
                    while (buf[0] == ' ' || buf[0] == '\t') {
                        memmove (buf, buf + 1, len--);
                    }
                    applog ("input on %s: %zu characters", cons[i].name, len);
                    for (unsigned o = 0; o < ncons; o++) {
                        if (o != i) {
                            putf (&cons[o], "(answered on %s)\r\n",
                                  cons[i].name);
                        }
                    }
                    return (int) len;
                }
                if ((unsigned char) in[k] >= 0x20 &&
                    plen[i] + 1 < sizeof partial[i]) {
                    partial[i][plen[i]++] = in[k];
                }
                else if ((in[k] == 0x7f || in[k] == 0x08) && plen[i] > 0) {
                    plen[i]--;      /* not in canonical mode */
                }
            }
        }
    }
}
