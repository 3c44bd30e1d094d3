/* SPDX-License-Identifier: MIT */
/*
 * Device names that change with the hardware, replaced by the UUIDs of
 * the filesystems they name: /etc/fstab, /etc/crypttab, the resume
 * device, and root= / resume= on the kernel command line wherever the
 * boot loader keeps it (grub.cfg, /etc/default/grub, grubenv's kernelopts,
 * BLS entries, GRUB legacy's menu.lst, /etc/kernel/cmdline).
 * GRUB_DISABLE_LINUX_UUID=true is commented out, so that the guest's next
 * update-grub writes UUIDs too.  GRUB's device.map and the device caches
 * of blkid and LVM (which name the old disks) are removed.
 *
 * A name is replaced only when it resolves, as inspection resolves it, to
 * a filesystem with a UUID; LVM names (/dev/mapper/vg-lv, /dev/vg/lv) are
 * stable and stay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "conftext.h"
#include "fixup.h"

#define STEP "devices"
#define EDIT_MAX (8u << 20)

/* The stable name for a device SPEC of length N, into OUT: 1 when SPEC is
 * a hardware name of a filesystem with a UUID, 0 to leave it. */
static int
stable_name (const struct inspection *in, const char *spec, size_t n,
             char *out, size_t cap)
{
    char s[256];
    bool bydev = false;
    int vi;

    if (n == 0 || n >= sizeof s) {
        return 0;
    }
    memcpy (s, spec, n);
    s[n] = '\0';
    if (!text_starts (s, "/dev/")) {
        return 0;
    }
    vi = insp_resolve_spec (in, s, &bydev);
    if (vi < 0 || !bydev || insp_vol_uuid (in, vi)[0] == '\0') {
        return 0;
    }
    snprintf (out, cap, "UUID=%s", insp_vol_uuid (in, vi));
    return 1;
}

/* A growing output buffer. */
struct out {
    char *p;
    size_t n, cap;
    bool failed;
};

static void
put (struct out *o, const char *s, size_t n)
{
    if (o->failed) {
        return;
    }
    if (o->n + n + 1 > o->cap) {
        size_t cap = (o->n + n + 1) * 2;
        char *p = realloc (o->p, cap);

        if (p == NULL) {
            o->failed = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy (o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

static void
puts_ (struct out *o, const char *s)
{
    put (o, s, strlen (s));
}

/* What follows a line of TEXT (from text_next_line, which ended at POS):
 * its own end of line, "\n" or "\r\n" or nothing at the end, kept. */
static void
put_eol (struct out *o, const char *text, const char *l, size_t ll,
         size_t pos)
{
    put (o, l + ll, (size_t) (text + pos - (l + ll)));
}

/* An edit of a file's TEXT into OUT: 0 to write OUT (when it differs),
 * 1 to leave the file as it is. */
typedef int (*edit_fn) (const struct inspection *in, struct fixup_report *rep,
                        const char *path, const char *text, size_t len,
                        struct out *o, const void *arg);

/* Read PATH (at most MAX bytes; a missing file is left alone), EDIT it,
 * and replace it when the edit changed it.  0, or -1 (reported). */
static int
edit_file (const struct inspection *in, const struct guest *g,
           struct fixup_report *rep, const char *path, size_t max,
           edit_fn edit, const void *arg)
{
    struct out o = { 0 };
    size_t len;
    char *text;
    int r = guest_read (g, path, max, &text, &len);

    if (r != 0) {
        if (r < 0) {
            report_error (rep, STEP, "%s: %s", path, vmc_get_error ());
        }
        return r < 0 ? -1 : 0;
    }
    r = edit (in, rep, path, text, len, &o, arg);
    if (r == 0 && o.failed) {
        report_error (rep, STEP, "%s: out of memory", path);
        r = -1;
    }
    else if (r == 0 && !(o.n == len && memcmp (o.p, text, len) == 0) &&
             guest_write (g, path, o.p, o.n, 0644) < 0) {
        report_error (rep, STEP, "%s: %s", path, vmc_get_error ());
        r = -1;
    }
    free (o.p);
    free (text);
    return r < 0 ? -1 : 0;
}

/* ---- fstab and crypttab ---------------------------------------------- */

/* Replace the device field (field *ARG, 0-based) of each line. */
static int
edit_table (const struct inspection *in, struct fixup_report *rep,
            const char *path, const char *text, size_t len, struct out *o,
            const void *arg)
{
    unsigned field = *(const unsigned *) arg;
    size_t pos = 0, ll;
    const char *l;

    while (text_next_line (text, len, &pos, &l, &ll)) {
        size_t i = 0, s, e;
        unsigned f = 0;
        char repl[300];

        /* The start and end of field FIELD. */
        for (;;) {
            while (i < ll && (l[i] == ' ' || l[i] == '\t')) {
                i++;
            }
            s = i;
            while (i < ll && l[i] != ' ' && l[i] != '\t') {
                i++;
            }
            e = i;
            if (f == field || s == e) {
                break;
            }
            f++;
        }
        if (f == field && s < e && l[0] != '#' &&
            !(field > 0 && l[strspn (l, " \t")] == '#') &&
            stable_name (in, l + s, e - s, repl, sizeof repl)) {
            report_change (rep, STEP, path, "%.*s -> %s", (int) (e - s),
                           l + s, repl);
            put (o, l, s);
            puts_ (o, repl);
            put (o, l + e, ll - e);
        }
        else {
            put (o, l, ll);
        }
        put_eol (o, text, l, ll, pos);
    }
    return 0;
}

static int
rewrite_table (const struct inspection *in, const struct guest *g,
               struct fixup_report *rep, const char *path, unsigned field)
{
    return edit_file (in, g, rep, path, EDIT_MAX, edit_table, &field);
}

/* ---- kernel command lines -------------------------------------------- */

/* Where a kernel argument may start: after a blank, a quote, a newline,
 * or grubenv's "kernelopts=" (whose value begins with root= on RHEL 8). */
static bool
token_start (const char *t, size_t i)
{
    return i == 0 || t[i - 1] == ' ' || t[i - 1] == '\t' || t[i - 1] == '"' ||
           t[i - 1] == '\'' || t[i - 1] == '\n' ||
           (i >= 11 && memcmp (t + i - 11, "kernelopts=", 11) == 0);
}

/* Replace root=DEV, resume=DEV and RESUME=DEV values in TEXT. */
static int
edit_cmdline (const struct inspection *in, struct fixup_report *rep,
              const char *path, const char *t, size_t len, struct out *o,
              const void *arg)
{
    static const char *const keys[] = { "root=", "resume=", "RESUME=" };
    size_t i = 0, copied = 0;

    (void) arg;
    while (i < len) {
        bool hit = false;

        for (size_t k = 0; k < 3 && !hit; k++) {
            size_t kl = strlen (keys[k]), e;
            char repl[300];

            if (len - i <= kl || memcmp (t + i, keys[k], kl) != 0 ||
                !token_start (t, i)) {
                continue;
            }
            e = i + kl;
            while (e < len && t[e] != ' ' && t[e] != '\t' && t[e] != '"' &&
                   t[e] != '\'' && t[e] != '\n' && t[e] != '\r' &&
                   t[e] != ';') {
                e++;
            }
            if (stable_name (in, t + i + kl, e - i - kl, repl, sizeof repl)) {
                report_change (rep, STEP, path, "%.*s -> %s%s", (int) (e - i),
                               t + i, keys[k], repl);
                put (o, t + copied, i + kl - copied);
                puts_ (o, repl);
                copied = e;
                i = e;
                hit = true;
            }
        }
        if (!hit) {
            i++;
        }
    }
    put (o, t + copied, len - copied);
    return 0;
}

static int
rewrite_cmdline_file (const struct inspection *in, const struct guest *g,
                      struct fixup_report *rep, const char *path)
{
    return edit_file (in, g, rep, path, EDIT_MAX, edit_cmdline, NULL);
}

/* GRUB's environment block is exactly 1024 bytes, padded with '#'. */
static int
edit_grubenv (const struct inspection *in, struct fixup_report *rep,
              const char *path, const char *text, size_t len, struct out *o,
              const void *arg)
{
    size_t body = len;

    if (len != 1024 || !text_starts (text, "# GRUB Environment Block")) {
        return 1;
    }
    while (body > 0 && text[body - 1] == '#') {
        body--;
    }
    edit_cmdline (in, rep, path, text, body, o, arg);
    if (o->n > 1024) {
        report_warning (rep, STEP, "%s: the new kernelopts do not fit in "
                        "1024 bytes; left as it was", path);
        return 1;
    }
    while (o->n < 1024 && !o->failed) {
        put (o, "#", 1);
    }
    return 0;
}

/* GRUB_DISABLE_LINUX_UUID=true makes update-grub write device names. */
static int
edit_grub_defaults (const struct inspection *in, struct fixup_report *rep,
                    const char *path, const char *text, size_t len,
                    struct out *o, const void *arg)
{
    size_t pos = 0, ll;
    const char *l;

    (void) in;
    (void) arg;
    while (text_next_line (text, len, &pos, &l, &ll)) {
        char k[64], v[64];

        if (text_assignment (l, ll, k, sizeof k, v, sizeof v) &&
            strcmp (k, "GRUB_DISABLE_LINUX_UUID") == 0 &&
            strcmp (v, "true") == 0) {
            puts_ (o, "# vmconvert: device names change with the hardware; "
                   "GRUB names the root by UUID\n#");
            report_change (rep, STEP, path, "GRUB_DISABLE_LINUX_UUID=true "
                           "commented out");
        }
        put (o, l, ll);
        put_eol (o, text, l, ll, pos);
    }
    return 0;
}

/* BLS entries: every *.conf of DIR. */
static int
bls_entries (const struct inspection *in, const struct guest *g,
             struct fixup_report *rep, const char *dir)
{
    struct guest_names names;
    int r = 0;

    if (guest_list (g, dir, &names) < 0) {
        return 0;
    }
    for (size_t i = 0; i < names.n; i++) {
        size_t l = strlen (names.v[i]);
        char p[600];

        if (l <= 5 || strcmp (names.v[i] + l - 5, ".conf") != 0) {
            continue;
        }
        snprintf (p, sizeof p, "%s/%s", dir, names.v[i]);
        if (rewrite_cmdline_file (in, g, rep, p) < 0) {
            r = -1;
        }
    }
    guest_names_free (&names);
    return r;
}

int
fixup_devices (const struct inspection *in, const struct guest *g,
               const struct fixup_opts *o, struct fixup_report *rep)
{
    static const char *const cmdline_files[] = {
        "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/etc/default/grub",
        "/boot/grub/menu.lst", "/boot/grub/grub.conf", "/etc/kernel/cmdline",
        "/etc/initramfs-tools/conf.d/resume", "/etc/sysconfig/bootloader",
        NULL,
    };
    static const char *const stale[] = {
        "/etc/blkid/blkid.tab", "/etc/blkid.tab", "/etc/lvm/cache/.cache",
        "/etc/lvm/devices/system.devices", "/boot/grub/device.map",
        "/boot/grub2/device.map", NULL,
    };
    int r = 0;

    fixup_say (o, "device names: fstab, crypttab, boot loader");
    if (rewrite_table (in, g, rep, "/etc/fstab", 0) < 0) {
        r = -1;
    }
    if (rewrite_table (in, g, rep, "/etc/crypttab", 1) < 0) {
        r = -1;
    }
    for (size_t i = 0; cmdline_files[i] != NULL; i++) {
        if (rewrite_cmdline_file (in, g, rep, cmdline_files[i]) < 0) {
            r = -1;
        }
    }
    if (in->grub_cfg[0] != '\0' && strcmp (in->grub_cfg,
                                           "/boot/grub/grub.cfg") != 0 &&
        strcmp (in->grub_cfg, "/boot/grub2/grub.cfg") != 0 &&
        rewrite_cmdline_file (in, g, rep, in->grub_cfg) < 0) {
        r = -1;
    }
    if (edit_file (in, g, rep, "/boot/grub2/grubenv", 64 * 1024,
                   edit_grubenv, NULL) < 0 ||
        edit_file (in, g, rep, "/boot/grub/grubenv", 64 * 1024,
                   edit_grubenv, NULL) < 0) {
        r = -1;
    }
    if (edit_file (in, g, rep, "/etc/default/grub", EDIT_MAX,
                   edit_grub_defaults, NULL) < 0) {
        r = -1;
    }
    if (bls_entries (in, g, rep, "/boot/loader/entries") < 0) {
        r = -1;
    }
    if (in->esp_mount[0] != '\0') {
        char p[128];

        snprintf (p, sizeof p, "%s/loader/entries", in->esp_mount);
        if (bls_entries (in, g, rep, p) < 0) {
            r = -1;
        }
    }
    for (size_t i = 0; stale[i] != NULL; i++) {
        if (!guest_exists (g, stale[i])) {
            continue;
        }
        if (guest_unlink (g, stale[i]) < 0) {
            report_warning (rep, STEP, "%s: %s", stale[i], vmc_get_error ());
        }
        else {
            report_change (rep, STEP, stale[i], "removed (it names the "
                           "source's devices)");
        }
    }
    return r;
}
