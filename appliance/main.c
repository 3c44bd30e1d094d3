/* SPDX-License-Identifier: MIT */
/*
 * vmconvert-appliance: the program the appliance's /init starts (as
 * process 1) once the kernel modules are loaded.
 *
 *   1. every disk is set read-only (BLKROSET) as soon as it shows up;
 *   2. settings: the file vmconvert.cfg on the boot medium, then the
 *      kernel command line (which wins);
 *   3. the disks to send are chosen by stable attributes;
 *   4. the network comes up (dracut's ip= syntax; DHCP by default);
 *   5. without vmconvert.server, a person is asked on the console;
 *   6. the disks are streamed with the same sender as `vmconvert send`,
 *      which reconnects and resumes by itself; the console shows
 *      progress;
 *   7. a success or failure page says what happened and what to do; then
 *      vmconvert.post (poweroff, reboot, shell) on success, a choice on
 *      failure.
 *
 * `vmconvert-appliance --plan [--sysroot DIR] [--cmdline FILE]
 * [--config FILE]` prints the settings, disks and facts it would use and
 * changes nothing: for trying settings on any machine, and for tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "../converter/lib/error.h"
#include "../network/proto.h"
#include "../network/sender.h"
#include "config.h"
#include "disks.h"
#include "facts.h"
#include "netname.h"
#include "netup.h"
#include "overlay.h"
#include "screen.h"
#include "util.h"

#define RUN_DIR    "/run/vmconvert"
#define MEDIUM_DIR RUN_DIR "/medium"
#define FACTS_FILE RUN_DIR "/facts.json"
#define CFG_NAME   "vmconvert.cfg"

static struct config cfg;
static struct disk_list disks;
static struct nic_list nics;
static char job_name[80];
/* The fixed-up guest: its snapshots are what is sent. */
static struct overlay ov;
static bool fixed;
static bool fix_done, fix_failed;   /* fix_guest() ran: it succeeded (or
                                     * there was no guest), it failed */
/* vmconvert.mode=fixup, known from the kernel command line before the
 * disks are seen: the disks are the host's overlays, not the source. */
static bool fixup_vm;

/* ---- disks --------------------------------------------------------- */

/* Scan until the set of disks has not changed for a second (at most
 * MAX seconds), setting each one read-only the moment it is seen. */
static void
settle_disks (int max)
{
    double start = uptime_seconds (), stable_since = start;
    char seen[DISKS_MAX][32];
    unsigned nseen = 0;

    for (;;) {
        struct disk_list l;
        bool changed = false;

        if (disks_scan ("/sys", "/dev", &l) == 0) {
            for (unsigned i = 0; i < l.n; i++) {
                unsigned k;

                for (k = 0; k < nseen; k++) {
                    if (strcmp (seen[k], l.d[i].kname) == 0) {
                        break;
                    }
                }
                if (k < nseen) {
                    continue;
                }
                if (fixup_vm) {
                    applog ("disk: %s (an overlay: left writable)",
                            l.d[i].kname);
                }
                else if (disk_lock_ro ("/sys", "/dev", l.d[i].kname) == -1) {
                    applog ("read-only: %s", vmc_get_error ());
                }
                else {
                    applog ("read-only: %s", l.d[i].kname);
                }
                if (nseen < DISKS_MAX) {
                    snprintf (seen[nseen++], sizeof seen[0], "%s",
                              l.d[i].kname);
                }
                changed = true;
            }
        }
        double t = uptime_seconds ();

        if (changed) {
            stable_since = t;
        }
        if (t - stable_since >= 1.0 || t - start >= max) {
            return;
        }
        usleep (250000);
    }
}

/* Read vmconvert.cfg from the boot medium: the FAT partition of a USB
 * stick (a person can edit it on any computer) or the ISO 9660 root. */
static void
read_medium_config (void)
{
    static const char *const cds[] = { "sr0", "sr1", "sr2", "sr3" };
    char text[64 * 1024], dev[64], path[128];
    struct disk_list l;

    mkdir (MEDIUM_DIR, 0700);
    if (disks_scan ("/sys", "/dev", &l) == -1) {
        l.n = 0;
    }
    /* Partitions of a boot stick first (the editable copy), then the
     * ISO 9660 file system of a CD or a stick. */
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < l.n + 4; i++) {
            const char *k = i < l.n ? l.d[i].kname : cds[i - l.n];

            snprintf (dev, sizeof dev, "/dev/%s", k);
            if (i < l.n ? !l.d[i].boot_medium : !disk_is_boot_medium (dev)) {
                continue;
            }
            for (int part = pass == 0 ? 1 : 0; part <= (pass == 0 ? 8 : 0);
                 part++) {
                const char *fstype = pass == 0 ? "vfat" : "iso9660";
                long n;

                if (part > 0) {
                    snprintf (dev, sizeof dev, "/dev/%s%s%d", k,
                              strncmp (k, "nvme", 4) == 0 ||
                              strncmp (k, "mmcblk", 6) == 0 ? "p" : "", part);
                }
                if (mount (dev, MEDIUM_DIR, fstype, MS_RDONLY | MS_NOSUID |
                           MS_NODEV | MS_NOEXEC, NULL) == -1) {
                    continue;
                }
                snprintf (path, sizeof path, "%s/%s", MEDIUM_DIR, CFG_NAME);
                n = read_small_file (path, text, sizeof text);
                umount (MEDIUM_DIR);
                if (n >= 0) {
                    char name[96];

                    snprintf (name, sizeof name, "%s on %s", CFG_NAME, dev);
                    applog ("settings from %s (%ld bytes)", name, n);
                    config_parse_file (&cfg, text, (size_t) n, name);
                    return;
                }
            }
        }
    }
}

/* ---- the interactive setup ------------------------------------------ */

static void
show_disks (void)
{
    for (unsigned i = 0; i < disks.n; i++) {
        const struct disk_info *d = &disks.d[i];
        char line[400], size[32];

        if (d->size >= 10000000000ull) {
            snprintf (size, sizeof size, "%.0f GB", (double) d->size / 1e9);
        }
        else {
            snprintf (size, sizeof size, "%.1f MB", (double) d->size / 1e6);
        }
        snprintf (line, sizeof line, "  %u) %-8s %10s  %s %s  %s%s%s",
                  i + 1, d->kname, size, d->vendor,
                  d->model, d->name, d->selected ? "" : "  -- not sent: ",
                  d->selected ? "" : d->why);
        screen_say ("%s", line);
    }
}

static void
ask_value (const char *what, char *val, size_t cap)
{
    char prompt[400], buf[1024];

    snprintf (prompt, sizeof prompt, "%s%s%s%s: ", what,
              val[0] != '\0' ? " [" : "", val[0] != '\0' ? val : "",
              val[0] != '\0' ? "]" : "");
    if (screen_ask (prompt, buf, cap < sizeof buf ? cap : sizeof buf, -1) >
        0) {
        memcpy (val, buf, strlen (buf) + 1);
    }
}

/* Fill in what the settings lack: 0 to start sending, -1 to give up. */
static int
interactive (bool net_ok)
{
    char buf[1400], why[300];

    for (;;) {
        screen_heading ("vmconvert appliance: interactive setup");
        screen_say ("disks found:");
        show_disks ();
        while (!net_ok) {
            char ip[300] = "";

            screen_say ("the network is not up");
            ask_value ("ip= setting (e.g. 192.168.1.50::192.168.1.1:24::"
                       "eth0:none), or Enter to try DHCP again", ip,
                       sizeof ip);
            if (ip[0] != '\0') {
                struct ip_conf c;

                if (config_parse_ip (ip, &c, why, sizeof why) == -1) {
                    screen_say ("ip=%s: %s", ip, why);
                    continue;
                }
                cfg.ip[0] = c;
                cfg.nip = 1;
            }
            net_ok = net_up (&cfg, why, sizeof why) == 0;
            if (!net_ok) {
                screen_say ("%s", why);
            }
        }
        if (screen_ask ("receiver URL (vmconvert://TOKEN@HOST:PORT/JOB?"
                        "fingerprint=sha256:...),\r\n  or Enter to type "
                        "each setting: ", buf, sizeof buf, -1) > 0) {
            if (config_parse_url (&cfg, buf, why, sizeof why) == -1) {
                screen_say ("that URL: %s", why);
                continue;
            }
        }
        else {
            struct config tmp = cfg;
            char v[300];

            tmp.nmsgs = tmp.nerrors = 0;
            snprintf (v, sizeof v, "%s", cfg.server);
            ask_value ("receiver (HOST or HOST:PORT)", v, sizeof v);
            snprintf (buf, sizeof buf, "vmconvert.server=%s", v);
            config_apply (&tmp, buf, "console");
            snprintf (v, sizeof v, "%s", cfg.fingerprint);
            ask_value ("receiver's fingerprint (sha256:...)", v, sizeof v);
            snprintf (buf, sizeof buf, "vmconvert.fingerprint=%s", v);
            config_apply (&tmp, buf, "console");
            v[0] = '\0';
            ask_value ("token", v, sizeof v);
            if (v[0] != '\0') {
                snprintf (buf, sizeof buf, "vmconvert.token=%s", v);
                config_apply (&tmp, buf, "console");
            }
            snprintf (v, sizeof v, "%s", job_name);
            ask_value ("job name", v, sizeof v);
            snprintf (buf, sizeof buf, "vmconvert.job=%s", v);
            config_apply (&tmp, buf, "console");
            if (tmp.nerrors > 0) {
                for (unsigned i = 0; i < tmp.nmsgs; i++) {
                    screen_say ("%s", tmp.msgs[i]);
                }
                screen_ask ("press Enter to start again ", buf, sizeof buf,
                            -1);
                continue;
            }
            tmp.nmsgs = cfg.nmsgs;
            tmp.nerrors = cfg.nerrors;
            memcpy (tmp.msgs, cfg.msgs, sizeof tmp.msgs);
            cfg = tmp;
        }
        if (cfg.job[0] != '\0') {
            snprintf (job_name, sizeof job_name, "%s", cfg.job);
        }
        if (cfg.server[0] == '\0' || cfg.fingerprint[0] == '\0') {
            screen_say ("a receiver and its fingerprint are needed");
            continue;
        }
        /* Disks: numbers from the list, or all. */
        if (screen_ask ("disks to send, by number (e.g. 1,3) [the ones "
                        "not marked]: ", buf, sizeof buf, -1) > 0) {
            char sel[1024] = "", *save = NULL, *tok;
            bool bad = false;

            for (tok = strtok_r (buf, ", ", &save); tok != NULL;
                 tok = strtok_r (NULL, ", ", &save)) {
                unsigned long n = strtoul (tok, NULL, 10);
                size_t len = strlen (sel);

                if (n < 1 || n > disks.n) {
                    screen_say ("%s: not a disk number", tok);
                    bad = true;
                    break;
                }
                snprintf (sel + len, sizeof sel - len, "%sname:%s",
                          len > 0 ? "," : "", disks.d[n - 1].name);
            }
            if (bad) {
                continue;
            }
            snprintf (cfg.disks, sizeof cfg.disks, "%s", sel);
        }
        if (disks_select (&disks, cfg.disks, why, sizeof why) == -1) {
            screen_say ("%s", why);
            continue;
        }
        screen_say ("testing the connection to %s ...", cfg.server);
        {
            struct sender_config sc = {
                .to = cfg.server, .fingerprint = cfg.fingerprint,
                .token = cfg.token, .job = job_name, .timeout_ms = 15000,
            };

            if (sender_probe (&sc) == -1) {
                screen_say ("the connection test failed: %s",
                            vmc_get_error ());
                screen_ask ("press Enter to change the settings ", buf,
                            sizeof buf, -1);
                continue;
            }
        }
        screen_say ("connection OK: the receiver is the one with that "
                    "fingerprint and accepts the token");
        {
            uint64_t total = 0;
            unsigned n = 0;

            for (unsigned i = 0; i < disks.n; i++) {
                if (disks.d[i].selected) {
                    total += disks.d[i].size;
                    n++;
                }
            }
            snprintf (buf, sizeof buf, "start sending %u disk(s), %.1f GB, "
                      "to %s as job %s? [Y/n] ", n, (double) total / 1e9,
                      cfg.server, job_name);
        }
        {
            char ans[16];

            if (screen_ask (buf, ans, sizeof ans, -1) <= 0 || ans[0] == 'y' ||
                ans[0] == 'Y') {
                return 0;
            }
        }
    }
}

/* ---- sending --------------------------------------------------------- */

struct run_state {
    struct progress_view v;
    const char *names[PROTO_MAX_DISKS];
    const char *models[PROTO_MAX_DISKS];
    char status[300];
    struct send_event done;
};

static void
on_event (void *opaque, const struct send_event *ev)
{
    struct run_state *rs = opaque;

    switch (ev->kind) {
    case SEND_MESSAGE:
        snprintf (rs->status, sizeof rs->status, "%s", ev->message);
        rs->v.status = rs->status;
        screen_say ("%s", ev->message);
        break;
    case SEND_WARNING:
        screen_say ("warning: %s", ev->message);
        break;
    case SEND_CONNECTED:
        rs->v.status = NULL;
        screen_say ("connected to %s: the receiver is verified and has the "
                    "job", cfg.server);
        break;
    case SEND_PROGRESS:
        rs->v.disk = ev->disk;
        rs->v.ndisks = ev->ndisks;
        rs->v.disk_name = rs->names[ev->disk];
        rs->v.disk_model = rs->models[ev->disk];
        rs->v.disk_size = ev->total;
        rs->v.disk_sent = ev->sent;
        rs->v.job_total = ev->job_total;
        rs->v.job_sent = ev->job_sent;
        rs->v.mbps = ev->mbps;
        rs->v.eta_seconds = ev->eta_seconds;
        screen_progress (&rs->v, false);
        break;
    case SEND_DISK_DONE:
        screen_say ("disk %u of %u (%s): sent and verified by the receiver, "
                    "sha256 %.16s...", ev->disk + 1, ev->ndisks,
                    rs->names[ev->disk], ev->digest);
        break;
    case SEND_DONE:
        rs->done = *ev;
        break;
    }
}

/* Advice for a failure, from the sender's message. */
static const char *
advice (const char *err)
{
    if (strstr (err, "fingerprint") != NULL) {
        return "The receiver's certificate is not the one vmconvert."
               "fingerprint names. Nothing was sent. Compare it with the "
               "fingerprint `vmconvert receive` printed when it started.";
    }
    if (strstr (err, "authentication") != NULL ||
        strstr (err, "token") != NULL) {
        return "The receiver refused the token: check vmconvert.token "
               "against the receiver's tokens file.";
    }
    if (strstr (err, "connect") != NULL || strstr (err, "refused") != NULL ||
        strstr (err, "timed out") != NULL || strstr (err, "unreachable") !=
        NULL || strstr (err, "resolve") != NULL) {
        return "The receiver could not be reached: check vmconvert.server, "
               "that `vmconvert receive` runs there, the network settings "
               "(ip=) and firewalls.";
    }
    if (strstr (err, "read") != NULL || strstr (err, "I/O") != NULL) {
        return "A source disk could not be read: check the disk's health "
               "(the log names the offset). Try again to resume.";
    }
    return "Try again: the job resumes where it stopped.";
}

static int
send_disks (struct run_state *rs, char *err, size_t errlen)
{
    const char *sources[PROTO_MAX_DISKS];
    unsigned n = 0;
    struct sender_config sc = {
        .to = cfg.server, .fingerprint = cfg.fingerprint,
        .token = cfg.token[0] != '\0' ? cfg.token : NULL, .job = job_name,
        .compress = cfg.compress, .level = cfg.level,
        .facts_file = FACTS_FILE, .progress = PROGRESS_NONE,
        .retry_seconds = cfg.retry_seconds, .window = 64u << 20,
        .timeout_ms = 60000, .max_rate = cfg.max_rate,
        .all_blocks = cfg.all_blocks, .backoff = 1,
        .format = cfg.format[0] != '\0' ? cfg.format : NULL,
        .on_event = on_event, .opaque = rs,
    };
    int r;

    for (unsigned i = 0; i < disks.n && n < PROTO_MAX_DISKS; i++) {
        if (disks.d[i].selected) {
            sources[n] = fixed ? ov.snap[n] : disks.d[i].dev;
            rs->names[n] = disks.d[i].name;
            rs->models[n] = disks.d[i].model;
            n++;
        }
    }
    sc.sources = sources;
    sc.nsources = n;
    sc.names = rs->names;
    rs->v.server = cfg.server;
    rs->v.job = job_name;
    rs->v.ndisks = n;
    rs->v.disk_name = rs->names[0];
    rs->v.disk_model = rs->models[0];
    rs->v.eta_seconds = -1;
    screen_say ("sending %u disk(s) to %s as job %s", n, cfg.server,
                job_name);
    r = sender_run (&sc);
    if (r != 0) {
        snprintf (err, errlen, "%s", vmc_get_error ());
    }
    return r;
}

/* ---- the end ----------------------------------------------------------- */

static void
run_shell (void)
{
    pid_t pid = fork ();

    if (pid == 0) {
        int fd = open ("/dev/console", O_RDWR);

        setsid ();
        if (fd != -1) {
            ioctl (fd, TIOCSCTTY, 1);
            dup2 (fd, 0);
            dup2 (fd, 1);
            dup2 (fd, 2);
        }
        execl ("/bin/sh", "sh", "-l", (char *) NULL);
        _exit (127);
    }
    if (pid > 0) {
        waitpid (pid, NULL, 0);
    }
}

static void __attribute__ ((noreturn))
power (enum post_action a)
{
    sync ();
    if (a == POST_REBOOT) {
        screen_say ("rebooting");
        reboot (RB_AUTOBOOT);
    }
    screen_say ("powering off");
    reboot (RB_POWER_OFF);
    for (;;) {
        pause ();
    }
}

/* The machine's facts, with the fixup report as "fixup" when there is
 * one: it travels with the job into the receiver's job.json. */
static void
write_facts (void)
{
    FILE *fp = fopen (FACTS_FILE, "we"), *ms;
    char *buf = NULL;
    size_t len = 0;
    int r = -1;

    nics_scan ("/sys", &nics, 1);
    ms = open_memstream (&buf, &len);
    if (ms != NULL && (facts_write (ms, "/sys", "/proc", &disks, &nics) < 0
                       || ferror (ms))) {
        fclose (ms);
        ms = NULL;
        len = 0;
    }
    else if (ms != NULL) {
        fclose (ms);
        ms = NULL;
    }
    if (fp != NULL && buf != NULL && len > 0) {
        char *end = strrchr (buf, '}');

        if (end != NULL && ov.report != NULL && ov.report_len > 0) {
            size_t rl = ov.report_len;

            while (rl > 0 && ov.report[rl - 1] == '\n') {
                rl--;
            }
            fwrite (buf, 1, (size_t) (end - buf), fp);
            fputs (",\"fixup\":", fp);
            fwrite (ov.report, 1, rl, fp);
            fputs ("}\n", fp);
        }
        else {
            fwrite (buf, 1, len, fp);
        }
        r = ferror (fp) ? -1 : 0;
    }
    if (r < 0) {
        applog ("writing %s failed", FACTS_FILE);
    }
    if (fp != NULL) {
        fclose (fp);
    }
    free (buf);
}

/* ---- guest fixups ------------------------------------------------------ */

static void
fixup_progress (void *opaque, const char *msg)
{
    (void) opaque;
    screen_say ("fixup: %s", msg);
}

/* The options of the fixups: the target, and the MACs of the guest's
 * interfaces -- vmconvert.mac= first, then this machine's NICs under
 * each name the guest's udev could have given them. */
static void
fixup_options (struct fixup_opts *fo, FILE *log)
{
    char list[sizeof cfg.macs], *save = NULL, *tok;

    memset (fo, 0, sizeof *fo);
    fo->target = TARGET_KVM;
    if (cfg.target[0] != '\0') {
        insp_target_parse (cfg.target, &fo->target);
    }
    fo->log = log;
    fo->say = fixup_progress;
    snprintf (list, sizeof list, "%s", cfg.macs);
    for (tok = strtok_r (list, ",", &save); tok != NULL &&
         fo->nmacs < FIXUP_MAX_MACS; tok = strtok_r (NULL, ",", &save)) {
        if (fixup_parse_mac (tok, &fo->macs[fo->nmacs]) == 0) {
            fo->nmacs++;
        }
        else {
            screen_say ("vmconvert.mac: %s (ignored)", vmc_get_error ());
        }
    }
    if (fixup_vm) {
        return;                 /* the NICs here are not the source's */
    }
    nics_scan ("/sys", &nics, 0);
    for (unsigned i = 0; i < nics.count; i++) {
        struct netname nn;
        const char *names[4];

        if (netname_compute ("/sys", nics.n[i].name, NETNAME_SCHEME_DEFAULT,
                             &nn) == -1) {
            continue;
        }
        names[0] = nn.onboard;
        names[1] = nn.slot;
        names[2] = nn.path;
        names[3] = nn.mac;
        for (size_t k = 0; k < 4 && fo->nmacs < FIXUP_MAX_MACS; k++) {
            struct fixup_mac *m = &fo->macs[fo->nmacs];

            if (names[k][0] == '\0' || strlen (names[k]) >= sizeof m->name) {
                continue;
            }
            snprintf (m->name, sizeof m->name, "%s", names[k]);
            snprintf (m->mac, sizeof m->mac, "%s", nics.n[i].mac);
            snprintf (m->from, sizeof m->from, "this machine's %.16s",
                      nics.n[i].name);
            fo->nmacs++;
        }
    }
}

/* Inspect the selected disks and fix up their guest on snapshots (or, in
 * the fixup VM, in place).  0 when the disks can be sent (fixed up, or
 * unchanged when there is no guest and vmconvert.fixup=auto), -1 with ERR
 * when the conversion must stop. */
static int
fix_guest (char *err, size_t errlen)
{
    const char *devs[OVERLAY_MAX_DISKS];
    struct inspect_opts io = { .root = cfg.root, .target = TARGET_KVM };
    struct fixup_opts fo;
    FILE *log;
    size_t n = 0;
    int r;

    for (unsigned i = 0; i < disks.n && n < OVERLAY_MAX_DISKS; i++) {
        if (disks.d[i].selected) {
            devs[n++] = disks.d[i].dev;
        }
    }
    if (cfg.target[0] != '\0') {
        insp_target_parse (cfg.target, &io.target);
    }
    overlay_free (&ov);             /* a failed earlier try */
    screen_say ("inspecting the guest on %zu disk(s)", n);
    if (overlay_inspect (&ov, devs, n, &io) < 0) {
        snprintf (err, errlen, "inspecting the disks: %s", vmc_get_error ());
        overlay_free (&ov);
        return -1;
    }
    {
        const struct inspection *in = &ov.in;

        if (in->root >= 0) {
            screen_say ("guest: %s (%s %s, %s) on %s, %s, %s, %zu kernel(s)",
                        in->pretty, in->distro, in->version, in->arch,
                        in->map.vols[in->root].name, in->firmware,
                        in->initramfs_tool, in->nkernels);
        }
        for (size_t i = 0; i < in->nproblems; i++) {
            screen_say ("%s: %s", in->problems[i].sev == SEV_ERROR ?
                        "pre-flight error" : "pre-flight warning",
                        in->problems[i].msg);
            if (in->problems[i].sev == SEV_ERROR &&
                in->problems[i].advice[0] != '\0') {
                screen_say ("  what to do: %s", in->problems[i].advice);
            }
        }
        if (in->root < 0 && in->nroots == 0 && cfg.fixup == FIXUP_AUTO &&
            !fixup_vm) {
            screen_say ("no Linux guest on these disks: they are sent "
                        "unchanged");
            overlay_free (&ov);
            return 0;
        }
        if (in->nerrors > 0 || in->root < 0) {
            const struct insp_problem *p = NULL;
            const char *advice = "";

            /* Pre-flight names an error for every refusal (no root,
             * several roots, ...): the first says why. */
            for (size_t i = 0; i < in->nproblems && p == NULL; i++) {
                if (in->problems[i].sev == SEV_ERROR) {
                    p = &in->problems[i];
                    advice = p->advice;
                }
            }

            snprintf (err, errlen, "pre-flight: the guest cannot be "
                      "converted: %s.%s%s%s", p != NULL ? p->msg :
                      "no root filesystem", advice[0] != '\0' ? " " : "",
                      advice, fixup_vm ? "" : " (vmconvert.fixup=0 sends "
                      "the disks unchanged)");
            return -1;
        }
    }
    log = fopen (RUN_DIR "/fixup.log", "ae");
    fixup_options (&fo, log);
    screen_say ("fixing up the guest for %s%s", insp_target_name (fo.target),
                fixup_vm ? "" : " on snapshots of the read-only disks");
    r = overlay_fixup (&ov, fixup_vm, &fo);
    if (log != NULL) {
        fclose (log);
    }
    if (r == 0 && overlay_check (&ov) < 0) {
        r = -1;
    }
    if (r < 0) {
        snprintf (err, errlen, "fixup: %s (the log is %s/fixup.log)",
                  vmc_get_error (), RUN_DIR);
        return -1;
    }
    screen_say ("the guest is fixed up%s", fixup_vm ? "" :
                ": the snapshots are sent, the disks were not written");
    fixed = true;
    return 0;
}

/* vmconvert.mode=fixup: the VM `vmconvert convert --fixup` boots on a
 * host.  The report goes to the second serial port between markers, the
 * result to the console; then the VM powers off. */
static void __attribute__ ((noreturn))
fixup_vm_run (void)
{
    char err[1200] = "";
    int r = fix_guest (err, sizeof err);
    int fd = open ("/dev/ttyS1", O_WRONLY | O_NOCTTY | O_CLOEXEC);

    if (fd >= 0) {
        struct termios tio;

        /* Raw, fast: the report's bytes as they are. */
        if (tcgetattr (fd, &tio) == 0) {
            cfmakeraw (&tio);
            cfsetospeed (&tio, B115200);
            tcsetattr (fd, TCSANOW, &tio);
        }
        dprintf (fd, "\nVMCONVERT-REPORT-BEGIN\n");
        if (ov.report != NULL) {
            size_t off = 0;

            while (off < ov.report_len) {
                ssize_t w = write (fd, ov.report + off, ov.report_len - off);

                if (w <= 0) {
                    break;
                }
                off += (size_t) w;
            }
        }
        else {
            FILE *fp = fdopen (dup (fd), "w");

            if (fp != NULL) {
                if (ov.have_in) {
                    inspect_print_json (fp, &ov.in);
                }
                else {
                    fputs ("{}\n", fp);
                }
                fclose (fp);
            }
        }
        dprintf (fd, "\nVMCONVERT-REPORT-END\n");
        /* Powering off next: the port's buffer must be out first. */
        tcdrain (fd);
        close (fd);
    }
    if (r < 0) {
        screen_say ("%s", err);
    }
    screen_say ("VMCONVERT-FIXUP-DONE %s", r == 0 ? "ok" : "failed");
    overlay_free (&ov);
    power (POST_POWEROFF);
}

static void
default_job_name (void)
{
    if (cfg.job[0] != '\0') {
        snprintf (job_name, sizeof job_name, "%s", cfg.job);
        return;
    }
    /* The first NIC's MAC: the same machine gets the same job after a
     * reboot, so the transfer resumes. */
    nics_scan ("/sys", &nics, 0);
    snprintf (job_name, sizeof job_name, "p2v");
    if (nics.count > 0) {
        size_t o = strlen (job_name);

        job_name[o++] = '-';
        for (const char *p = nics.n[0].mac; *p != '\0' && o + 1 <
             sizeof job_name; p++) {
            if (*p != ':') {
                job_name[o++] = *p;
            }
        }
        job_name[o] = '\0';
    }
}

static int
plan (int argc, char **argv)
{
    const char *sysroot = "/sys", *cmdline = "/proc/cmdline", *file = NULL;
    static char text[64 * 1024];
    long n;
    char why[300];

    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp (argv[i], "--sysroot") == 0) {
            sysroot = argv[i + 1];
        }
        else if (strcmp (argv[i], "--cmdline") == 0) {
            cmdline = argv[i + 1];
        }
        else if (strcmp (argv[i], "--config") == 0) {
            file = argv[i + 1];
        }
        else {
            fprintf (stderr, "usage: vmconvert-appliance --plan [--sysroot "
                     "DIR] [--cmdline FILE] [--config FILE]\n");
            return 2;
        }
    }
    config_init (&cfg);
    if (file != NULL && (n = read_small_file (file, text, sizeof text)) >= 0) {
        config_parse_file (&cfg, text, (size_t) n, file);
    }
    if ((n = read_small_file (cmdline, text, sizeof text)) >= 0) {
        config_parse_cmdline (&cfg, text, (size_t) n);
    }
    printf ("server %s\nfingerprint %s\ntoken %s\njob %s\ndisks %s\n"
            "format %s\ncompress %d:%d\npost %d\nmaxrate %" PRIu64 "\n"
            "retry %d\nallblocks %d\n", cfg.server, cfg.fingerprint,
            cfg.token[0] != '\0' ? "(set)" : "", cfg.job, cfg.disks,
            cfg.format, cfg.compress, cfg.level, (int) cfg.post, cfg.max_rate,
            cfg.retry_seconds, (int) cfg.all_blocks);
    for (unsigned i = 0; i < cfg.nip; i++) {
        const struct ip_conf *ip = &cfg.ip[i];

        printf ("ip dev=%s method=%d addr=%s prefix=%u peer=%s gw=%s "
                "host=%s mtu=%u mac=%s dns=%s,%s\n", ip->dev, (int) ip->method,
                ip->addr, ip->prefix, ip->peer, ip->gateway, ip->hostname,
                ip->mtu, ip->mac, ip->dns[0], ip->dns[1]);
    }
    for (unsigned i = 0; i < cfg.ndns; i++) {
        printf ("nameserver %s\n", cfg.dns[i]);
    }
    for (unsigned i = 0; i < cfg.nvlan; i++) {
        printf ("vlan %s %s %u\n", cfg.vlan[i].name, cfg.vlan[i].phys,
                cfg.vlan[i].id);
    }
    for (unsigned i = 0; i < cfg.nifname; i++) {
        printf ("ifname %s %s\n", cfg.ifname[i].name, cfg.ifname[i].mac);
    }
    for (unsigned i = 0; i < cfg.nmsgs; i++) {
        printf ("message %s\n", cfg.msgs[i]);
    }
    if (disks_scan (sysroot, "/dev", &disks) == -1) {
        fprintf (stderr, "vmconvert-appliance: %s\n", vmc_get_error ());
        return 1;
    }
    if (disks_select (&disks, cfg.disks, why, sizeof why) == -1) {
        printf ("select-error %s\n", why);
    }
    nics_scan (sysroot, &nics, strcmp (sysroot, "/sys") == 0);
    fflush (stdout);
    return facts_write (stdout, sysroot, strcmp (sysroot, "/sys") == 0
                        ? "/proc" : sysroot, &disks, &nics) == 0 ? 0 : 1;
}

int
main (int argc, char **argv)
{
    static char text[64 * 1024];
    char why[300], err[1200];
    bool net_ok;
    long n;

    if (argc > 1 && strcmp (argv[1], "--plan") == 0) {
        return plan (argc, argv);
    }
    if (getpid () != 1 && getenv ("VMCONVERT_APPLIANCE_NOT_INIT") == NULL) {
        fprintf (stderr, "vmconvert-appliance: this is the boot program of "
                 "the vmconvert appliance: it sets every disk of this "
                 "machine read-only. It runs as process 1 only (try "
                 "--plan).\n");
        return 2;
    }
    mkdir (RUN_DIR, 0700);
    applog_open (RUN_DIR "/log");
    signal (SIGPIPE, SIG_IGN);
    /* The fixup VM's disks are the host's overlays; everywhere else rule
     * 1 holds: nothing writes the source disks.  The wait also lets slow
     * controllers finish finding theirs. */
    if ((n = read_small_file ("/proc/cmdline", text, sizeof text)) >= 0) {
        struct config early;

        config_init (&early);
        config_parse_cmdline (&early, text, (size_t) n);
        fixup_vm = early.fixup_vm;
    }
    settle_disks (30);
    screen_init ();
    screen_quiet_kernel ();
    screen_say (fixup_vm ? "vmconvert appliance %s: fixup VM (the disks are "
                "overlays of the source)" : "vmconvert appliance %s: every "
                "disk is now read-only", VMC_VERSION);

    config_init (&cfg);
    read_medium_config ();
    if ((n = read_small_file ("/proc/cmdline", text, sizeof text)) >= 0) {
        config_parse_cmdline (&cfg, text, (size_t) n);
    }
    for (unsigned i = 0; i < cfg.nmsgs; i++) {
        screen_say ("%s", cfg.msgs[i]);
    }

    if (disks_scan ("/sys", "/dev", &disks) == -1) {
        disks.n = 0;
    }
    if (disks_select (&disks, cfg.disks, why, sizeof why) == -1 &&
        cfg.disks[0] != '\0') {
        /* A disk asked for by name may come late. */
        settle_disks (30);
        disks_scan ("/sys", "/dev", &disks);
        if (disks_select (&disks, cfg.disks, why, sizeof why) == -1) {
            screen_say ("%s", why);
        }
    }
    screen_say ("disks:");
    show_disks ();
    cfg.fixup_vm = fixup_vm;
    if (fixup_vm) {
        fixup_vm_run ();
    }
    /* Fail early: with the settings complete, the guest is inspected and
     * fixed up before the network is even up. */
    if (cfg.fixup != FIXUP_NO && cfg.server[0] != '\0' &&
        cfg.fingerprint[0] != '\0' && !cfg.interactive &&
        cfg.nerrors == 0 && disks_select (&disks, cfg.disks, why,
                                           sizeof why) == 0) {
        fix_done = fix_guest (err, sizeof err) == 0;
        fix_failed = !fix_done;
    }

    screen_say ("bringing up the network");
    net_ok = net_up (&cfg, why, sizeof why) == 0;
    if (!net_ok) {
        screen_say ("network: %s", why);
    }
    nics_scan ("/sys", &nics, 1);
    for (unsigned i = 0; i < nics.count; i++) {
        screen_say ("network: %s %s (%s) %s", nics.n[i].name, nics.n[i].mac,
                    nics.n[i].driver, nics.n[i].naddrs > 0
                    ? nics.n[i].addrs[0] : "no address");
    }
    default_job_name ();

    for (;;) {
        struct run_state rs;
        const char *lines[8];
        char l0[700], l1[300], l2[300], l3[300];
        char ans[16];
        bool ready = cfg.server[0] != '\0' && cfg.fingerprint[0] != '\0' &&
                     net_ok && cfg.nerrors == 0 && !cfg.interactive;

        if (!ready) {
            if (interactive (net_ok) == -1) {
                power (POST_POWEROFF);
            }
            net_ok = true;
            cfg.nerrors = 0;
            cfg.interactive = false;
        }
        if (fix_failed) {
            fix_failed = false;
            goto failed;            /* ERR says why */
        }
        if (!fixed && disks_select (&disks, cfg.disks, why, sizeof why) ==
            -1) {
            snprintf (err, sizeof err, "%s", why);
            goto failed;
        }
        if (!fix_done && cfg.fixup != FIXUP_NO) {
            if (fix_guest (err, sizeof err) < 0) {
                goto failed;
            }
            fix_done = true;
        }
        write_facts ();
        memset (&rs, 0, sizeof rs);
        if (send_disks (&rs, err, sizeof err) == 0) {
            char total[32];

            snprintf (total, sizeof total, "%.1f GB",
                      (double) rs.done.job_total / 1e9);
            snprintf (l0, sizeof l0, "All %u disk(s), %s, were sent to %s "
                      "and verified by the receiver.", rs.v.ndisks, total,
                      cfg.server);
            snprintf (l1, sizeof l1, "Job %s: %.0f s, %.1f MB/s; %.1f MB on "
                      "the wire, %.1f MB sent again, %" PRIu64
                      " reconnection(s).", job_name, rs.done.seconds,
                      rs.done.mbps, (double) rs.done.wire_bytes / 1e6,
                      (double) rs.done.resent_bytes / 1e6,
                      rs.done.reconnects);
            snprintf (l2, sizeof l2, "Next: on the target host, make the VM "
                      "from the images in the receiver's job directory %s/.",
                      job_name);
            snprintf (l3, sizeof l3, "This machine was not changed. "
                      "vmconvert.post=%s follows in %d seconds.",
                      cfg.post == POST_REBOOT ? "reboot" :
                      cfg.post == POST_SHELL ? "shell" : "poweroff",
                      cfg.wait_seconds);
            lines[0] = l0;
            lines[1] = l1;
            lines[2] = l2;
            lines[3] = l3;
            lines[4] = NULL;
            screen_final (true, "the conversion is done", lines);
            if (cfg.post == POST_SHELL) {
                run_shell ();
                power (POST_POWEROFF);
            }
            snprintf (l1, sizeof l1, "press Enter within %d s for a shell "
                      "instead ", cfg.wait_seconds);
            if (cfg.wait_seconds > 0 &&
                screen_ask (l1, ans, sizeof ans, cfg.wait_seconds) >= 0) {
                run_shell ();
            }
            power (cfg.post);
        }
    failed:
        snprintf (l0, sizeof l0, "%s", advice (err));
        lines[0] = err;
        lines[1] = "";
        lines[2] = l0;
        lines[3] = "";
        lines[4] = "Enter: try again    s: shell    p: power off    r: reboot";
        lines[5] = NULL;
        screen_final (false, "the disks were not all sent", lines);
        for (;;) {
            if (screen_ask ("your choice: ", ans, sizeof ans, -1) < 0) {
                continue;
            }
            if (ans[0] == 's') {
                run_shell ();
                screen_final (false, "the disks were not all sent", lines);
                continue;
            }
            if (ans[0] == 'p') {
                power (POST_POWEROFF);
            }
            if (ans[0] == 'r') {
                power (POST_REBOOT);
            }
            break;
        }
        /* Try again: ask for settings when they were the trouble. */
        if (strstr (err, "fingerprint") != NULL ||
            strstr (err, "authentication") != NULL ||
            strstr (err, "token") != NULL) {
            cfg.interactive = true;
        }
    }
}
