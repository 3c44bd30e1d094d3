/* SPDX-License-Identifier: MIT */
/*
 * The fixup report: see fixup.h.  Fragments are written as they happen
 * into memory streams and joined at the end.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "../lib/json.h"
#include "fixup.h"

int
report_init (struct fixup_report *r)
{
    memset (r, 0, sizeof *r);
    r->changes = open_memstream (&r->changes_buf, &r->changes_len);
    r->commands = open_memstream (&r->commands_buf, &r->commands_len);
    r->warnings = open_memstream (&r->warnings_buf, &r->warnings_len);
    r->errors = open_memstream (&r->errors_buf, &r->errors_len);
    r->ifaces = open_memstream (&r->ifaces_buf, &r->ifaces_len);
    if (r->changes == NULL || r->commands == NULL || r->warnings == NULL ||
        r->errors == NULL || r->ifaces == NULL) {
        vmc_perror ("open_memstream");
        report_free (r);
        return -1;
    }
    return 0;
}

void
report_free (struct fixup_report *r)
{
    FILE **f[] = { &r->changes, &r->commands, &r->warnings, &r->errors,
                   &r->ifaces };

    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (*f[i] != NULL) {
            fclose (*f[i]);
        }
        *f[i] = NULL;
    }
    free (r->changes_buf);
    free (r->commands_buf);
    free (r->warnings_buf);
    free (r->errors_buf);
    free (r->ifaces_buf);
    memset (r, 0, sizeof *r);
}

static void
sep (FILE *fp, unsigned *n)
{
    if ((*n)++ > 0) {
        fputc (',', fp);
    }
}

void
report_change (struct fixup_report *r, const char *step, const char *file,
               const char *fmt, ...)
{
    char what[1024];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (what, sizeof what, fmt, ap);
    va_end (ap);
    sep (r->changes, &r->nchanges);
    fputs ("{\"step\":", r->changes);
    json_string (r->changes, step);
    fputs (",\"file\":", r->changes);
    if (file != NULL) {
        json_string (r->changes, file);
    }
    else {
        fputs ("null", r->changes);
    }
    fputs (",\"what\":", r->changes);
    json_string (r->changes, what);
    fputc ('}', r->changes);
}

static void
note (FILE *fp, unsigned *n, const char *step, const char *fmt, va_list ap)
{
    char msg[1024];

    vsnprintf (msg, sizeof msg, fmt, ap);
    sep (fp, n);
    fputs ("{\"step\":", fp);
    json_string (fp, step);
    fputs (",\"message\":", fp);
    json_string (fp, msg);
    fputc ('}', fp);
}

void
report_warning (struct fixup_report *r, const char *step, const char *fmt,
                ...)
{
    va_list ap;

    va_start (ap, fmt);
    note (r->warnings, &r->nwarnings, step, fmt, ap);
    va_end (ap);
}

void
report_error (struct fixup_report *r, const char *step, const char *fmt, ...)
{
    va_list ap;

    va_start (ap, fmt);
    note (r->errors, &r->nerrors, step, fmt, ap);
    va_end (ap);
}

void
report_command (struct fixup_report *r, const char *step,
                const char *const *argv, const struct guest_cmd *c)
{
    sep (r->commands, &r->ncommands);
    fputs ("{\"step\":", r->commands);
    json_string (r->commands, step);
    fputs (",\"argv\":[", r->commands);
    for (size_t i = 0; argv[i] != NULL; i++) {
        if (i > 0) {
            fputc (',', r->commands);
        }
        json_string (r->commands, argv[i]);
    }
    fprintf (r->commands, "],\"status\":%d,\"seconds\":%.1f,\"output_end\":",
             c->status, c->seconds);
    json_string (r->commands, c->tail);
    fputc ('}', r->commands);
}

void
report_iface (struct fixup_report *r, const char *name, const char *mac,
              const char *how, const char *file)
{
    sep (r->ifaces, &r->nifaces);
    fputs ("{\"name\":", r->ifaces);
    json_string (r->ifaces, name);
    fputs (",\"mac\":", r->ifaces);
    if (mac != NULL && mac[0] != '\0') {
        json_string (r->ifaces, mac);
    }
    else {
        fputs ("null", r->ifaces);
    }
    fputs (",\"pinned_by\":", r->ifaces);
    json_string (r->ifaces, how);
    fputs (",\"file\":", r->ifaces);
    if (file != NULL) {
        json_string (r->ifaces, file);
    }
    else {
        fputs ("null", r->ifaces);
    }
    fputc ('}', r->ifaces);
}

static void
section (FILE *fp, const char *name, FILE *src, char *const *buf,
         const size_t *len)
{
    /* The stream's buffer and length are only current after a flush. */
    fflush (src);
    fputc (',', fp);
    json_string (fp, name);
    fputs (":[", fp);
    if (*len > 0) {
        fwrite (*buf, 1, *len, fp);
    }
    fputc (']', fp);
}

void
report_write (const struct fixup_report *r, FILE *fp,
              const struct inspection *in, enum insp_target target)
{
    fputs ("{\"result\":", fp);
    json_string (fp, r->nerrors == 0 ? "ok" : "failed");
    fputs (",\"target\":", fp);
    json_string (fp, insp_target_name (target));
    fputs (",\"guest\":{\"root\":", fp);
    json_string (fp, in->root >= 0 ? in->map.vols[in->root].name : "");
    fputs (",\"distro\":", fp);
    json_string (fp, in->distro);
    fputs (",\"version\":", fp);
    json_string (fp, in->version);
    fputs (",\"pretty_name\":", fp);
    json_string (fp, in->pretty);
    fputs (",\"firmware\":", fp);
    json_string (fp, in->firmware);
    fputs (",\"initramfs_tool\":", fp);
    json_string (fp, in->initramfs_tool);
    fputs ("}", fp);
    section (fp, "changes", r->changes, &r->changes_buf, &r->changes_len);
    section (fp, "commands", r->commands, &r->commands_buf, &r->commands_len);
    section (fp, "interfaces", r->ifaces, &r->ifaces_buf, &r->ifaces_len);
    section (fp, "warnings", r->warnings, &r->warnings_buf, &r->warnings_len);
    section (fp, "errors", r->errors, &r->errors_buf, &r->errors_len);
    fputs ("}\n", fp);
}

int
fixup_parse_mac (const char *s, struct fixup_mac *m)
{
    const char *eq = strchr (s, '=');
    char mac[64], name[64];
    size_t o = 0;

    memset (m, 0, sizeof *m);
    if (eq != NULL) {
        snprintf (name, sizeof name, "%.*s", (int) (eq - s), s);
        snprintf (mac, sizeof mac, "%s", eq + 1);
    }
    else if (strlen (s) > 18 && s[17] == ':') {
        snprintf (mac, sizeof mac, "%.17s", s);
        snprintf (name, sizeof name, "%s", s + 18);
    }
    else {
        vmc_error ("%s: give NAME=MAC (e.g. ens192=00:50:56:12:34:56)", s);
        return -1;
    }
    if (name[0] == '\0' || strlen (name) > 15 || strchr (name, '/') ||
        strchr (name, ' ')) {
        vmc_error ("%s: %s is not an interface name", s, name);
        return -1;
    }
    for (size_t i = 0; mac[i] != '\0'; i++) {
        char c = (char) tolower ((unsigned char) mac[i]);

        if (o >= 17 || !(i % 3 == 2 ? c == ':' || c == '-' :
                         isxdigit ((unsigned char) c))) {
            vmc_error ("%s: %s is not a MAC address", s, mac);
            return -1;
        }
        m->mac[o++] = c == '-' ? ':' : c;
    }
    if (o != 17) {
        vmc_error ("%s: %s is not a MAC address", s, mac);
        return -1;
    }
    m->mac[o] = '\0';
    memcpy (m->name, name, strlen (name) + 1);   /* checked: at most 15 */
    snprintf (m->from, sizeof m->from, "command line");
    return 0;
}
