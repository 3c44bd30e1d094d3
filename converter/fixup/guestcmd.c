/* SPDX-License-Identifier: MIT */
/*
 * The guest's tools in a chroot: see guestcmd.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/error.h"
#include "guestcmd.h"

static const char *const api_dirs[] = { "/proc", "/sys", "/dev", "/run" };

static double
mono (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Mount onto directory DIR of the guest, named through /proc/self/fd so
 * that the directory opened inside the guest is the one used. */
int
guest_mount_at (const struct guest *g, const char *dir, const char *src,
                const char *type, unsigned long flags, const char *data)
{
    char at[64];
    int fd = guest_openat (g, dir, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0), r;

    if (fd < 0) {
        if (errno == ENOENT) {
            char base[512];

            snprintf (base, sizeof base, "%s", dir);
            if (guest_mkdirs (g, base) == 0) {
                fd = guest_openat (g, dir, O_PATH | O_DIRECTORY | O_NOFOLLOW,
                                   0);
            }
        }
        if (fd < 0) {
            vmc_perror ("guest %s", dir);
            return -1;
        }
    }
    snprintf (at, sizeof at, "/proc/self/fd/%d", fd);
    r = mount (src, at, type, flags, data);
    if (r < 0) {
        vmc_perror ("mounting %s on the guest's %s", src, dir);
    }
    close (fd);
    return r;
}

int
guest_umount_at (const struct guest *g, const char *dir)
{
    int fd = guest_openat (g, dir, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0), r;
    char at[64];

    if (fd < 0) {
        vmc_perror ("guest %s", dir);
        return -1;
    }
    snprintf (at, sizeof at, "/proc/self/fd/%d", fd);
    r = umount2 (at, 0);
    if (r < 0) {
        vmc_perror ("unmounting the guest's %s", dir);
    }
    close (fd);
    return r;
}

void
guest_umount_api (const struct guest *g)
{
    /* Through the directory opened inside the guest, as for mounting:
     * the path as a string could lead out of the guest. */
    for (int i = 3; i >= 0; i--) {
        int fd = guest_openat (g, api_dirs[i], O_PATH | O_DIRECTORY |
                               O_NOFOLLOW, 0);
        char at[64];

        if (fd < 0) {
            continue;
        }
        snprintf (at, sizeof at, "/proc/self/fd/%d", fd);
        umount2 (at, MNT_DETACH);
        close (fd);
    }
}

int
guest_mount_api (const struct guest *g)
{
    if (guest_mount_at (g, "/proc", "proc", "proc", MS_NOSUID | MS_NODEV |
                  MS_NOEXEC, NULL) < 0 ||
        guest_mount_at (g, "/sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV |
                  MS_NOEXEC, NULL) < 0 ||
        guest_mount_at (g, "/dev", "/dev", NULL, MS_BIND | MS_REC, NULL) < 0 ||
        guest_mount_at (g, "/run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV,
                  "mode=0755") < 0) {
        guest_umount_api (g);
        return -1;
    }
    return 0;
}

/* The command's process: in a PID namespace of its own, whose first
 * process (this code) reaps everything and exits with the command's
 * status, so that whatever the guest's tools leave running (a daemon a
 * package script started) is killed when it ends.  The command runs
 * chrooted, without the capabilities that could undo the appliance's
 * protection of the source disks (CAP_SYS_ADMIN sets them read-write,
 * CAP_SYS_RAWIO and CAP_MKNOD reach devices behind that) or change the
 * running kernel. */
static void __attribute__ ((noreturn))
run_child (const struct guest *g, const char *const *argv,
           const char *const *envp, int out)
{
    static const int drop[] = {
        CAP_SYS_ADMIN, CAP_SYS_RAWIO, CAP_MKNOD, CAP_SYS_MODULE,
        CAP_SYS_BOOT, CAP_SYS_TIME, CAP_NET_ADMIN, CAP_SYS_PTRACE,
    };
    int null = open ("/dev/null", O_RDONLY), st;
    pid_t cmd;

    setsid ();
    if (null >= 0) {
        dup2 (null, 0);
    }
    dup2 (out, 1);
    dup2 (out, 2);
    if (unshare (CLONE_NEWPID) < 0) {
        dprintf (2, "unshare: %s\n", strerror (errno));
        _exit (127);
    }
    cmd = fork ();
    if (cmd < 0) {
        _exit (127);
    }
    if (cmd > 0) {
        /* Outside the namespace: wait for its first process. */
        while (waitpid (cmd, &st, 0) < 0) {
            if (errno != EINTR) {
                _exit (127);
            }
        }
        _exit (WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
    }
    /* Process 1 of the namespace. */
    cmd = fork ();
    if (cmd < 0) {
        _exit (127);
    }
    if (cmd == 0) {
        if (chroot (g->root) < 0 || chdir ("/") < 0) {
            dprintf (2, "chroot %s: %s\n", g->root, strerror (errno));
            _exit (127);
        }
        for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) {
            if (prctl (PR_CAPBSET_DROP, drop[i], 0, 0, 0) < 0) {
                dprintf (2, "dropping capability %d: %s\n", drop[i],
                         strerror (errno));
                _exit (127);
            }
        }
        mkdir ("/run/vmconvert-tmp", 0700);
        execve (argv[0], (char *const *) argv, (char *const *) envp);
        dprintf (2, "%s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    for (;;) {
        pid_t w = waitpid (-1, &st, 0);

        if (w == cmd) {
            _exit (WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
        }
        if (w < 0 && errno != EINTR) {
            _exit (127);
        }
    }
}

static void
tail_add (struct guest_cmd *r, const char *buf, size_t n)
{
    size_t have = strlen (r->tail), cap = sizeof r->tail - 1;

    if (n >= cap) {
        memcpy (r->tail, buf + n - cap, cap);
        r->tail[cap] = '\0';
        return;
    }
    if (have + n > cap) {
        size_t drop = have + n - cap;

        memmove (r->tail, r->tail + drop, have - drop + 1);
        have -= drop;
    }
    memcpy (r->tail + have, buf, n);
    r->tail[have + n] = '\0';
}

int
guest_run (const struct guest *g, const char *const *argv,
           const char *const *env, int timeout, FILE *log,
           struct guest_cmd *r)
{
    static const char *const base_env[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C", "LC_ALL=C", "HOME=/root", "TMPDIR=/run/vmconvert-tmp",
        "DEBIAN_FRONTEND=noninteractive", "TERM=dumb",
    };
    const char *envp[32];
    size_t ne = 0;
    int pfd[2];
    pid_t pid;
    double start = mono ();
    bool at_line_start = true;

    memset (r, 0, sizeof *r);
    r->status = -1;
    for (size_t i = 0; i < sizeof base_env / sizeof base_env[0]; i++) {
        envp[ne++] = base_env[i];
    }
    for (size_t i = 0; env != NULL && env[i] != NULL && ne < 31; i++) {
        envp[ne++] = env[i];
    }
    envp[ne] = NULL;
    if (pipe2 (pfd, O_CLOEXEC) < 0) {
        vmc_perror ("pipe");
        return -1;
    }
    pid = fork ();
    if (pid < 0) {
        vmc_perror ("fork");
        close (pfd[0]);
        close (pfd[1]);
        return -1;
    }
    if (pid == 0) {
        run_child (g, argv, envp, pfd[1]);
    }
    close (pfd[1]);
    if (log != NULL) {
        fprintf (log, "+");
        for (size_t i = 0; argv[i] != NULL; i++) {
            fprintf (log, " %s", argv[i]);
        }
        fprintf (log, "\n");
        fflush (log);
    }
    for (;;) {
        struct pollfd p = { .fd = pfd[0], .events = POLLIN };
        double left = timeout - (mono () - start);
        char buf[4096];
        ssize_t n;

        if (left <= 0) {
            kill (-pid, SIGKILL);
            kill (pid, SIGKILL);
            tail_add (r, "\n[vmconvert: killed after the time limit]\n", 42);
            break;
        }
        if (poll (&p, 1, (int) (left * 1000) + 1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) {
            continue;
        }
        n = read (pfd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        tail_add (r, buf, (size_t) n);
        if (log != NULL) {
            for (ssize_t i = 0; i < n; i++) {
                if (at_line_start) {
                    fputs ("  ", log);
                }
                fputc (buf[i], log);
                at_line_start = buf[i] == '\n';
            }
            fflush (log);
        }
    }
    close (pfd[0]);
    {
        int st;

        while (waitpid (pid, &st, 0) < 0) {
            if (errno != EINTR) {
                vmc_perror ("waitpid");
                return -1;
            }
        }
        if (mono () - start >= timeout) {
            r->status = -1;
        }
        else if (WIFEXITED (st)) {
            r->status = WEXITSTATUS (st);
        }
        else if (WIFSIGNALED (st)) {
            r->status = 128 + WTERMSIG (st);
        }
    }
    r->seconds = mono () - start;
    return 0;
}
