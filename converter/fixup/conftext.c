/* SPDX-License-Identifier: MIT */
/*
 * Readers for a guest's text files: lines, fields, shell assignments.
 * See conftext.h.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conftext.h"

int
text_next_line (const char *text, size_t len, size_t *pos, const char **line,
                size_t *llen)
{
    size_t p = *pos, e;
    const char *nl;

    if (p >= len) {
        return 0;
    }
    nl = memchr (text + p, '\n', len - p);
    e = nl != NULL ? (size_t) (nl - text) : len;
    *line = text + p;
    *llen = e - p;
    if (*llen > 0 && (*line)[*llen - 1] == '\r') {
        (*llen)--;
    }
    *pos = nl != NULL ? e + 1 : len;
    return 1;
}

static bool
is_space (char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

size_t
text_fields (const char *line, size_t llen, char fields[][256], size_t max,
             bool unescape)
{
    size_t i = 0, n = 0;

    while (n < max) {
        size_t o = 0;

        while (i < llen && is_space (line[i])) {
            i++;
        }
        if (i >= llen || line[i] == '#' || line[i] == '\0') {
            break;
        }
        while (i < llen && !is_space (line[i]) && line[i] != '\0') {
            char c = line[i++];

            if (unescape && c == '\\' && i + 2 < llen &&
                line[i] >= '0' && line[i] <= '3' &&
                line[i + 1] >= '0' && line[i + 1] <= '7' &&
                line[i + 2] >= '0' && line[i + 2] <= '7') {
                c = (char) (((line[i] - '0') << 6) | ((line[i + 1] - '0') << 3)
                            | (line[i + 2] - '0'));
                i += 3;
                if (c == '\0') {
                    c = '?';
                }
            }
            if (o + 1 < sizeof fields[0]) {
                fields[n][o++] = c;
            }
        }
        fields[n][o] = '\0';
        n++;
    }
    return n;
}

int
text_assignment (const char *line, size_t llen, char *key, size_t keycap,
                 char *val, size_t valcap)
{
    size_t i = 0, k = 0, o = 0;
    char q = 0;

    while (i < llen && is_space (line[i])) {
        i++;
    }
    if (llen - i > 7 && memcmp (line + i, "export ", 7) == 0) {
        i += 7;
        while (i < llen && is_space (line[i])) {
            i++;
        }
    }
    if (i >= llen || !(isalpha ((unsigned char) line[i]) || line[i] == '_')) {
        return 0;
    }
    while (i < llen && (isalnum ((unsigned char) line[i]) || line[i] == '_')) {
        if (k + 1 < keycap) {
            key[k++] = line[i];
        }
        i++;
    }
    if (keycap > 0) {
        key[k] = '\0';
    }
    if (i >= llen || line[i] != '=') {
        return 0;
    }
    i++;
    while (i < llen) {
        char c = line[i++];

        if (q == 0) {
            if (c == '"' || c == '\'') {
                q = c;
                continue;
            }
            if (is_space (c) || c == '#' || c == ';') {
                break;
            }
            if (c == '\\' && i < llen) {
                c = line[i++];
            }
        }
        else if (c == q) {
            q = 0;
            continue;
        }
        else if (q == '"' && c == '\\' && i < llen &&
                 strchr ("\"\\$`", line[i]) != NULL) {
            c = line[i++];
        }
        if (c == '\0') {
            c = '?';
        }
        if (o + 1 < valcap) {
            val[o++] = c;
        }
    }
    if (valcap > 0) {
        val[o] = '\0';
    }
    return 1;
}

int
text_get_var (const char *text, size_t len, const char *key, char *val,
              size_t valcap)
{
    size_t pos = 0, ll;
    const char *l;
    int found = 0;
    char k[128], v[4096];

    while (text_next_line (text, len, &pos, &l, &ll)) {
        if (text_assignment (l, ll, k, sizeof k, v, sizeof v) &&
            strcmp (k, key) == 0) {
            snprintf (val, valcap, "%s", v);
            found = 1;
        }
    }
    return found;
}

void
text_copy_printable (char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0;

    if (cap == 0) {
        return;
    }
    for (size_t i = 0; i < n && src[i] != '\0' && o + 1 < cap; i++) {
        unsigned char c = (unsigned char) src[i];

        dst[o++] = c >= 0x20 && c < 0x7f ? (char) c : '?';
    }
    dst[o] = '\0';
}

void
text_set (char *dst, size_t cap, const char *src)
{
    size_t n;

    if (cap == 0) {
        return;
    }
    n = strnlen (src, cap - 1);
    memcpy (dst, src, n);
    dst[n] = '\0';
}

bool
text_starts (const char *s, const char *prefix)
{
    return strncmp (s, prefix, strlen (prefix)) == 0;
}

int
text_vercmp (const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        if (isdigit ((unsigned char) *a) && isdigit ((unsigned char) *b)) {
            const char *ea = a, *eb = b;

            while (*a == '0') {
                a++;
            }
            while (*b == '0') {
                b++;
            }
            for (ea = a; isdigit ((unsigned char) *ea); ea++) {
            }
            for (eb = b; isdigit ((unsigned char) *eb); eb++) {
            }
            if (ea - a != eb - b) {
                return ea - a < eb - b ? -1 : 1;
            }
            for (; a < ea; a++, b++) {
                if (*a != *b) {
                    return *a < *b ? -1 : 1;
                }
            }
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b) {
            return (unsigned char) *a < (unsigned char) *b ? -1 : 1;
        }
        a++;
        b++;
    }
    return 0;
}
