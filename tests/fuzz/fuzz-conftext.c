/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the guest text readers (converter/fixup/conftext.c) over
 * a guest's file: every line, split into fields (with and without fstab's
 * octal escapes) and read as a shell assignment; a few variables looked
 * up; the first two lines compared as versions.  Lines must lie inside
 * the text, fields and values must stay NUL-terminated within their
 * buffers, and the version order must be antisymmetric.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fixup/conftext.h"

#define FIELDS 6

static void
terminated (const char *s, size_t cap)
{
    if (memchr (s, '\0', cap) == NULL) {
        abort ();
    }
}

static int
sign (int v)
{
    return v < 0 ? -1 : v > 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static const char *const keys[] = {
        "ID", "VERSION_ID", "GRUB_DISABLE_LINUX_UUID", "HWADDR", "",
    };
    const char *text = (const char *) data;
    char fields[FIELDS][256], key[16], val[64], v[4096], a[256], b[256];
    size_t pos = 0, ll, nlines = 0;
    const char *l;

    a[0] = b[0] = '\0';
    while (text_next_line (text, size, &pos, &l, &ll)) {
        size_t n;

        if (l < text || l + ll > text + size || pos > size) {
            abort ();
        }
        for (int u = 0; u < 2; u++) {
            memset (fields, 'x', sizeof fields);
            n = text_fields (l, ll, fields, FIELDS, u == 1);
            if (n > FIELDS) {
                abort ();
            }
            for (size_t i = 0; i < n; i++) {
                terminated (fields[i], sizeof fields[i]);
            }
        }
        memset (key, 'x', sizeof key);
        memset (val, 'x', sizeof val);
        if (text_assignment (l, ll, key, sizeof key, val, sizeof val)) {
            terminated (key, sizeof key);
            terminated (val, sizeof val);
        }
        if (nlines == 0) {
            text_copy_printable (a, sizeof a, l, ll);
        }
        else if (nlines == 1) {
            text_copy_printable (b, sizeof b, l, ll);
        }
        nlines++;
    }
    if (pos != size) {
        abort ();
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        memset (v, 'x', sizeof v);
        if (text_get_var (text, size, keys[i], v, sizeof v)) {
            terminated (v, sizeof v);
        }
    }
    terminated (a, sizeof a);
    for (const char *p = a; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            abort ();       /* text_copy_printable let a byte through */
        }
    }
    if (text_vercmp (a, a) != 0 ||
        sign (text_vercmp (a, b)) != -sign (text_vercmp (b, a))) {
        abort ();
    }
    text_set (v, 8, a);
    terminated (v, 8);
    return 0;
}
