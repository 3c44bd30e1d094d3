/* SPDX-License-Identifier: MIT */
/*
 * Parsing of "-o key=val,..." creation options; see options.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "options.h"

int
options_set (struct options *opts, const char *key, const char *value)
{
    struct option_kv *kv;
    unsigned i;
    char *v;

    v = strdup (value);
    if (v == NULL) {
        vmc_perror ("strdup");
        return -1;
    }
    for (i = 0; i < opts->count; i++) {
        if (strcmp (opts->kv[i].key, key) == 0) {
            free (opts->kv[i].value);
            opts->kv[i].value = v;
            return 0;
        }
    }
    kv = realloc (opts->kv, (opts->count + 1) * sizeof *kv);
    if (kv == NULL) {
        free (v);
        vmc_perror ("realloc");
        return -1;
    }
    opts->kv = kv;
    kv[opts->count].key = strdup (key);
    if (kv[opts->count].key == NULL) {
        free (v);
        vmc_perror ("strdup");
        return -1;
    }
    kv[opts->count].value = v;
    opts->count++;
    return 0;
}

int
options_parse (struct options *opts, const char *str)
{
    size_t len = strlen (str);
    char *buf, *key, *val;
    size_t i, o;
    int r = -1;

    /* Decode one item at a time into buf, turning ",," into ",". */
    buf = malloc (len + 1);
    if (buf == NULL) {
        vmc_perror ("malloc");
        return -1;
    }
    i = 0;
    while (i < len) {
        o = 0;
        while (i < len) {
            if (str[i] == ',') {
                if (i + 1 < len && str[i + 1] == ',') {
                    buf[o++] = ',';
                    i += 2;
                    continue;
                }
                break;
            }
            buf[o++] = str[i++];
        }
        buf[o] = '\0';
        i++;                    /* skip the separating comma */
        if (o == 0) {
            continue;
        }
        key = buf;
        val = strchr (buf, '=');
        if (val == NULL || val == key) {
            vmc_error ("option \"%s\": expected key=value", buf);
            goto out;
        }
        *val++ = '\0';
        if (options_set (opts, key, val) == -1) {
            goto out;
        }
    }
    r = 0;
out:
    free (buf);
    return r;
}

const char *
options_get (const struct options *opts, const char *key)
{
    unsigned i;

    if (opts == NULL) {
        return NULL;
    }
    for (i = 0; i < opts->count; i++) {
        if (strcmp (opts->kv[i].key, key) == 0) {
            return opts->kv[i].value;
        }
    }
    return NULL;
}

int
parse_size (const char *str, uint64_t *out)
{
    static const char units[] = "kmgtp";
    unsigned long long v;
    unsigned shift = 0;
    const char *u;
    char *end;

    if (str[0] < '0' || str[0] > '9') {
        vmc_error ("\"%s\" is not a size", str);
        return -1;
    }
    errno = 0;
    v = strtoull (str, &end, 10);
    if (errno != 0) {
        vmc_error ("\"%s\" is not a size", str);
        return -1;
    }
    /* Accept "", "b", or a unit letter followed by "", "b" or "ib". */
    if (*end != '\0' && (u = strchr (units, *end | 0x20)) != NULL) {
        shift = 10 * (unsigned) (u - units + 1);
        end++;
        if ((*end | 0x20) == 'i') {
            end++;
        }
    }
    if ((*end | 0x20) == 'b') {
        end++;
    }
    if (*end != '\0') {
        vmc_error ("\"%s\" is not a size (suffixes: K M G T P)", str);
        return -1;
    }
    if (shift > 0 && v > (UINT64_MAX >> shift)) {
        vmc_error ("size \"%s\" is too large", str);
        return -1;
    }
    *out = (uint64_t) v << shift;
    return 0;
}

int
options_get_size (const struct options *opts, const char *key, uint64_t def,
                  uint64_t *out)
{
    const char *v = options_get (opts, key);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (parse_size (v, out) == -1) {
        vmc_error_prefix ("option %s", key);
        return -1;
    }
    return 0;
}

int
options_get_bool (const struct options *opts, const char *key, bool def,
                  bool *out)
{
    const char *v = options_get (opts, key);

    if (v == NULL) {
        *out = def;
    }
    else if (strcmp (v, "on") == 0 || strcmp (v, "true") == 0 ||
             strcmp (v, "yes") == 0 || strcmp (v, "1") == 0) {
        *out = true;
    }
    else if (strcmp (v, "off") == 0 || strcmp (v, "false") == 0 ||
             strcmp (v, "no") == 0 || strcmp (v, "0") == 0) {
        *out = false;
    }
    else {
        vmc_error ("option %s: \"%s\" is not on or off", key, v);
        return -1;
    }
    return 0;
}

int
options_check (const struct options *opts, const struct create_option *allowed,
               const char *fmtname)
{
    unsigned i;
    const struct create_option *a;

    for (i = 0; i < opts->count; i++) {
        for (a = allowed; a != NULL && a->name != NULL; a++) {
            if (strcmp (a->name, opts->kv[i].key) == 0) {
                break;
            }
        }
        if (a == NULL || a->name == NULL) {
            vmc_error ("%s: unknown creation option \"%s\" (see -o help)",
                       fmtname, opts->kv[i].key);
            return -1;
        }
    }
    return 0;
}

void
options_free (struct options *opts)
{
    unsigned i;

    if (opts == NULL) {
        return;
    }
    for (i = 0; i < opts->count; i++) {
        free (opts->kv[i].key);
        free (opts->kv[i].value);
    }
    free (opts->kv);
    opts->kv = NULL;
    opts->count = 0;
}
