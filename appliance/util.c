/* SPDX-License-Identifier: MIT */
/* The appliance's log and command runner (util.h). */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int log_fd = -1;

void
applog_open (const char *path)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (fd != -1) {
        if (log_fd != -1) {
            close (log_fd);
        }
        log_fd = fd;
    }
}

double
uptime_seconds (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_BOOTTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void
applog (const char *fmt, ...)
{
    char line[2048];
    int n;
    va_list ap;

    n = snprintf (line, sizeof line, "[%8.3f] ", uptime_seconds ());
    va_start (ap, fmt);
    vsnprintf (line + n, sizeof line - (size_t) n, fmt, ap);
    va_end (ap);
    n = (int) strlen (line);
    if (n < (int) sizeof line - 1) {
        line[n++] = '\n';
    }
    if (write (log_fd != -1 ? log_fd : STDERR_FILENO, line, (size_t) n) < 0) {
        /* Nowhere else to say it. */
    }
}

int
spawn_cmd (const char *const argv[])
{
    pid_t pid;
    char cmd[512] = "";

    for (int i = 0; argv[i] != NULL; i++) {
        size_t n = strlen (cmd);

        snprintf (cmd + n, sizeof cmd - n, "%s%s", i > 0 ? " " : "", argv[i]);
    }
    applog ("run: %s", cmd);
    pid = fork ();
    if (pid == -1) {
        applog ("fork: %s", strerror (errno));
        return -1;
    }
    if (pid == 0) {
        int null = open ("/dev/null", O_RDONLY);
        int out = log_fd != -1 ? log_fd : STDERR_FILENO;

        if (null != -1) {
            dup2 (null, STDIN_FILENO);
        }
        dup2 (out, STDOUT_FILENO);
        dup2 (out, STDERR_FILENO);
        signal (SIGPIPE, SIG_DFL);
        execvp (argv[0], (char *const *) argv);
        dprintf (out, "%s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    return (int) pid;
}

int
wait_cmd (int pid, int timeout)
{
    double end = uptime_seconds () + timeout;
    int status;

    for (;;) {
        pid_t r = waitpid ((pid_t) pid, &status, WNOHANG);

        if (r == (pid_t) pid) {
            break;
        }
        if (r == -1 && errno != EINTR) {
            return -1;
        }
        if (uptime_seconds () > end) {
            kill ((pid_t) pid, SIGKILL);
            waitpid ((pid_t) pid, &status, 0);
            applog ("pid %d: killed after %d s", pid, timeout);
            return -1;
        }
        usleep (20000);
    }
    if (WIFEXITED (status)) {
        if (WEXITSTATUS (status) != 0) {
            applog ("pid %d: exit status %d", pid, WEXITSTATUS (status));
        }
        return WEXITSTATUS (status);
    }
    applog ("pid %d: killed by signal %d", pid, WTERMSIG (status));
    return -1;
}

int
run_cmd (const char *const argv[], int timeout)
{
    int pid = spawn_cmd (argv);

    return pid == -1 ? -1 : wait_cmd (pid, timeout);
}

long
read_small_file (const char *path, char *buf, size_t cap)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;

    if (fd == -1) {
        return -1;
    }
    while (got + 1 < cap) {
        ssize_t n = read (fd, buf + got, cap - 1 - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t) n;
    }
    close (fd);
    buf[got] = '\0';
    return (long) got;
}

int
sysfs_attr (const char *dir, const char *name, char *out, size_t cap)
{
    char path[PATH_MAX], buf[512];
    size_t o = 0, start = 0;
    long n;

    out[0] = '\0';
    if ((size_t) snprintf (path, sizeof path, "%s%s%s", dir,
                           name != NULL ? "/" : "", name != NULL ? name : "")
        >= sizeof path || (n = read_small_file (path, buf, sizeof buf)) < 0) {
        return -1;
    }
    while (start < (size_t) n && buf[start] == ' ') {
        start++;
    }
    for (size_t i = start; i < (size_t) n && buf[i] != '\n' && o + 1 < cap;
         i++) {
        if ((unsigned char) buf[i] >= 0x20 && (unsigned char) buf[i] < 0x7f) {
            out[o++] = buf[i];
        }
    }
    while (o > 0 && out[o - 1] == ' ') {
        o--;
    }
    out[o] = '\0';
    return (int) o;
}
