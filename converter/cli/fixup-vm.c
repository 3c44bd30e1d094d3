/* SPDX-License-Identifier: MIT */
/*
 * convert --fixup on a host: the appliance boots in QEMU (KVM when
 * /dev/kvm can be used, TCG otherwise) over a qcow2 overlay of the source
 * image (made with qemu-img; QEMU opens the source read-only, as the
 * overlay's backing file), fixes the guest up there with the same code as
 * on a source machine (vmconvert.mode=fixup), writes its report to its
 * second serial port, and powers off.  The caller then copies from the
 * overlay.  The appliance's kernel and initrd are found in --appliance
 * DIR, $VMCONVERT_APPLIANCE, beside the program (build/appliance/), or in
 * PREFIX/share/vmconvert.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/error.h"
#include "cli.h"
#include "fixup-vm.h"

#define REPORT_MAX (16u << 20)

static volatile sig_atomic_t stop_signal;

static void
on_signal (int sig)
{
    stop_signal = sig;
}

static bool
has_files (const char *dir, char *kernel, char *initrd, size_t cap)
{
    struct stat st;

    snprintf (kernel, cap, "%s/vmlinuz", dir);
    snprintf (initrd, cap, "%s/initrd.img", dir);
    return stat (kernel, &st) == 0 && S_ISREG (st.st_mode) &&
           stat (initrd, &st) == 0 && S_ISREG (st.st_mode);
}

static int
find_appliance (const char *dir, char *kernel, char *initrd, size_t cap)
{
    char self[PATH_MAX], cand[PATH_MAX + 64];
    const char *env = getenv ("VMCONVERT_APPLIANCE");
    ssize_t n;

    if (dir != NULL) {
        if (has_files (dir, kernel, initrd, cap)) {
            return 0;
        }
        vmc_error ("%s: no vmlinuz and initrd.img there", dir);
        return -1;
    }
    if (env != NULL && env[0] != '\0' && has_files (env, kernel, initrd, cap)) {
        return 0;
    }
    n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        char *slash;

        self[n] = '\0';
        slash = strrchr (self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf (cand, sizeof cand, "%s/appliance", self);
            if (has_files (cand, kernel, initrd, cap)) {
                return 0;
            }
            snprintf (cand, sizeof cand, "%s/../share/vmconvert", self);
            if (has_files (cand, kernel, initrd, cap)) {
                return 0;
            }
        }
    }
    vmc_error ("the appliance's kernel and initrd were not found (make "
               "initramfs builds them; give --appliance DIR)");
    return -1;
}

/* Run ARGV, wait; its stderr into ERRBUF.  The exit status, -1. */
static int
run_tool (const char *const *argv, char *errbuf, size_t cap)
{
    int pfd[2], st;
    pid_t pid;
    size_t o = 0;

    if (pipe (pfd) < 0) {
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
        int null = open ("/dev/null", O_RDWR);

        dup2 (null, 0);
        dup2 (null, 1);
        dup2 (pfd[1], 2);
        close (pfd[0]);
        execvp (argv[0], (char *const *) argv);
        dprintf (2, "%s: %s", argv[0], strerror (errno));
        _exit (127);
    }
    close (pfd[1]);
    for (;;) {
        char b[512];
        ssize_t r = read (pfd[0], b, sizeof b);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        for (ssize_t i = 0; i < r && o + 1 < cap; i++) {
            errbuf[o++] = b[i] == '\n' ? ' ' : b[i];
        }
    }
    errbuf[o] = '\0';
    close (pfd[0]);
    while (waitpid (pid, &st, 0) < 0) {
        if (errno != EINTR) {
            vmc_perror ("waitpid");
            return -1;
        }
    }
    return WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
}

static const char *
qemu_format (const char *ours)
{
    return strcmp (ours, "vhd") == 0 ? "vpc" : ours;
}

static bool
kvm_usable (void)
{
    int fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        return false;
    }
    close (fd);
    return true;
}

/* New lines of the console since *POS, "vmconvert: " ones to stderr. */
static void
follow_console (const char *path, long *pos, bool *done_ok, bool *done_any)
{
    FILE *fp = fopen (path, "re");
    char line[1200];

    if (fp == NULL) {
        return;
    }
    if (fseek (fp, *pos, SEEK_SET) == 0) {
        while (fgets (line, sizeof line, fp) != NULL) {
            size_t l = strlen (line);
            char *p;

            if (l == 0 || line[l - 1] != '\n') {
                break;              /* not complete yet */
            }
            *pos += (long) l;
            line[strcspn (line, "\r\n")] = '\0';
            p = strstr (line, "vmconvert: ");
            if (p == NULL) {
                continue;
            }
            p += 11;
            if (strncmp (p, "VMCONVERT-FIXUP-DONE ", 21) == 0) {
                *done_any = true;
                *done_ok = strcmp (p + 21, "ok") == 0;
                continue;
            }
            fprintf (stderr, "vmconvert: fixup VM: %s\n", p);
        }
    }
    fclose (fp);
}

static double
mono (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* The report between the markers on the second serial port. */
static int
read_report (struct fixup_vm *f, const char *path)
{
    FILE *fp = fopen (path, "re");
    char *buf, *b, *e;
    size_t n;

    if (fp == NULL) {
        vmc_perror ("%s", path);
        return -1;
    }
    buf = malloc (REPORT_MAX + 1);
    if (buf == NULL) {
        fclose (fp);
        vmc_perror ("malloc");
        return -1;
    }
    n = fread (buf, 1, REPORT_MAX, fp);
    fclose (fp);
    buf[n] = '\0';
    b = strstr (buf, "VMCONVERT-REPORT-BEGIN\n");
    e = b != NULL ? strstr (b, "\nVMCONVERT-REPORT-END") : NULL;
    if (b == NULL || e == NULL) {
        free (buf);
        vmc_error ("the fixup VM wrote no report");
        return -1;
    }
    b += 23;
    f->report = malloc ((size_t) (e - b) + 2);
    if (f->report == NULL) {
        free (buf);
        vmc_perror ("malloc");
        return -1;
    }
    /* The serial line may have turned \n into \r\n. */
    f->report_len = 0;
    for (const char *p = b; p < e; p++) {
        if (*p != '\r') {
            f->report[f->report_len++] = *p;
        }
    }
    if (f->report_len == 0 || f->report[f->report_len - 1] != '\n') {
        f->report[f->report_len++] = '\n';
    }
    f->report[f->report_len] = '\0';
    free (buf);
    return 0;
}

int
fixup_vm_run (struct fixup_vm *f)
{
    char kernel[PATH_MAX], initrd[PATH_MAX], src[PATH_MAX], err[2048];
    char console[PATH_MAX + 32], report[PATH_MAX + 32], append[2048];
    char drive[PATH_MAX + 128], mem[32];
    const char *tmp = getenv ("TMPDIR");
    const char *argv[40];
    struct sigaction sa, old_int, old_term;
    size_t a = 0;
    pid_t pid;
    long pos = 0;
    bool done_ok = false, done_any = false, kvm = kvm_usable ();
    double start;
    int st = 0, r = -1;

    if (find_appliance (f->appliance, kernel, initrd, sizeof kernel) < 0) {
        return -1;
    }
    if (realpath (f->src, src) == NULL) {
        vmc_perror ("%s", f->src);
        return -1;
    }
    snprintf (f->tmpdir, sizeof f->tmpdir, "%s/vmconvert-fixup-XXXXXX",
              tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    if (mkdtemp (f->tmpdir) == NULL) {
        vmc_perror ("%s", f->tmpdir);
        f->tmpdir[0] = '\0';
        return -1;
    }
    snprintf (f->overlay, sizeof f->overlay, "%s/overlay.qcow2", f->tmpdir);
    snprintf (console, sizeof console, "%s/console.log", f->tmpdir);
    snprintf (report, sizeof report, "%s/report.txt", f->tmpdir);
    {
        const char *qi[] = {
            "qemu-img", "create", "-q", "-f", "qcow2", "-F",
            qemu_format (f->src_format), "-b", src, f->overlay, NULL,
        };
        int q = run_tool (qi, err, sizeof err);

        if (q != 0) {
            vmc_error ("qemu-img create (the overlay) failed%s%s",
                       err[0] ? ": " : "", err);
            return -1;
        }
    }
    {
        size_t o = (size_t) snprintf (append, sizeof append,
                                      "console=ttyS0,115200 panic=-1 "
                                      "loglevel=3 vmconvert.mode=fixup "
                                      "vmconvert.target=%s", f->target);

        if (f->root != NULL && f->root[0] != '\0' && o < sizeof append) {
            o += (size_t) snprintf (append + o, sizeof append - o,
                                    " vmconvert.root=%s", f->root);
        }
        for (size_t i = 0; i < f->nmacs && o < sizeof append; i++) {
            o += (size_t) snprintf (append + o, sizeof append - o,
                                    " vmconvert.mac=%s", f->macs[i]);
        }
        if (o >= sizeof append) {
            vmc_error ("too many --mac options");
            return -1;
        }
    }
    snprintf (drive, sizeof drive, "file=%s,format=qcow2,if=none,id=disk0,"
              "cache=writeback", f->overlay);
    snprintf (mem, sizeof mem, "%d", f->memory_mb > 0 ? f->memory_mb : 2048);
    argv[a++] = getenv ("VMCONVERT_QEMU") != NULL ? getenv ("VMCONVERT_QEMU")
                : "qemu-system-x86_64";
    argv[a++] = "-nodefaults";
    argv[a++] = "-display";
    argv[a++] = "none";
    argv[a++] = "-no-reboot";
    argv[a++] = "-accel";
    argv[a++] = kvm ? "kvm" : "tcg";
    if (kvm) {
        argv[a++] = "-cpu";
        argv[a++] = "host";
    }
    argv[a++] = "-m";
    argv[a++] = mem;
    argv[a++] = "-kernel";
    argv[a++] = kernel;
    argv[a++] = "-initrd";
    argv[a++] = initrd;
    argv[a++] = "-append";
    argv[a++] = append;
    argv[a++] = "-drive";
    argv[a++] = drive;
    argv[a++] = "-device";
    argv[a++] = "virtio-blk-pci,drive=disk0,serial=vmconvert-disk0";
    argv[a++] = "-nic";
    argv[a++] = "none";
    {
        static char s0[PATH_MAX + 40], s1[PATH_MAX + 40];

        snprintf (s0, sizeof s0, "file:%s", console);
        snprintf (s1, sizeof s1, "file:%s", report);
        argv[a++] = "-serial";
        argv[a++] = s0;
        argv[a++] = "-serial";
        argv[a++] = s1;
    }
    argv[a] = NULL;
    fprintf (stderr, "vmconvert: fixup VM: booting the appliance (%s) over "
             "an overlay of %s\n", kvm ? "KVM" : "TCG, no /dev/kvm: slower",
             f->src);

    memset (&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction (SIGINT, &sa, &old_int);
    sigaction (SIGTERM, &sa, &old_term);
    stop_signal = 0;
    pid = fork ();
    if (pid < 0) {
        vmc_perror ("fork");
        goto out;
    }
    if (pid == 0) {
        int null = open ("/dev/null", O_RDWR);

        dup2 (null, 0);
        dup2 (null, 1);
        execvp (argv[0], (char *const *) argv);
        dprintf (2, "vmconvert: %s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    start = mono ();
    for (;;) {
        pid_t w = waitpid (pid, &st, WNOHANG);

        follow_console (console, &pos, &done_ok, &done_any);
        if (w == pid) {
            break;
        }
        if (w < 0 && errno != EINTR) {
            vmc_perror ("waitpid");
            kill (pid, SIGKILL);
            waitpid (pid, NULL, 0);
            goto out;
        }
        if (stop_signal != 0 || (f->timeout > 0 &&
                                 mono () - start > f->timeout)) {
            kill (pid, SIGKILL);
            waitpid (pid, NULL, 0);
            if (stop_signal != 0) {
                vmc_error ("interrupted (signal %d): the fixup VM was "
                           "stopped", (int) stop_signal);
            }
            else {
                vmc_error ("the fixup VM did not finish in %d seconds (its "
                           "console: %s)", f->timeout, console);
            }
            goto out;
        }
        usleep (250000);
    }
    follow_console (console, &pos, &done_ok, &done_any);
    f->seconds = mono () - start;
    if (!WIFEXITED (st) || WEXITSTATUS (st) != 0) {
        vmc_error ("QEMU failed (status %d)", WIFEXITED (st) ?
                   WEXITSTATUS (st) : 128 + WTERMSIG (st));
        goto out;
    }
    if (read_report (f, report) < 0) {
        goto out;
    }
    if (!done_any) {
        vmc_error ("the fixup VM stopped before it finished");
        goto out;
    }
    r = done_ok ? 0 : 1;
    if (!done_ok) {
        vmc_error ("the fixups failed: see the report");
    }
out:
    sigaction (SIGINT, &old_int, NULL);
    sigaction (SIGTERM, &old_term, NULL);
    return r;
}

void
fixup_vm_cleanup (struct fixup_vm *f)
{
    if (f->tmpdir[0] != '\0' && getenv ("VMCONVERT_KEEP_FIXUP_VM") != NULL) {
        fprintf (stderr, "vmconvert: fixup VM files kept in %s\n", f->tmpdir);
        f->tmpdir[0] = '\0';
    }
    if (f->tmpdir[0] != '\0') {
        const char *names[] = { "overlay.qcow2", "console.log", "report.txt",
                                NULL };

        for (size_t i = 0; names[i] != NULL; i++) {
            char p[PATH_MAX + 32];

            snprintf (p, sizeof p, "%s/%s", f->tmpdir, names[i]);
            unlink (p);
        }
        rmdir (f->tmpdir);
        f->tmpdir[0] = '\0';
    }
    free (f->report);
    f->report = NULL;
}
