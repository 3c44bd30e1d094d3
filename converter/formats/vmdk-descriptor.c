/* SPDX-License-Identifier: MIT */
/*
 * vmdk: the text descriptor (VMDK 1.1 technote, "The Descriptor File").
 *
 * A descriptor is a small text file (or the text embedded in a sparse
 * extent) made of lines:
 *
 *   # Disk DescriptorFile                   comments start with '#'
 *   version=1
 *   CID=fffffffe                            hex content id
 *   parentCID=ffffffff                      ffffffff: no parent
 *   createType="monolithicSparse"
 *   parentFileNameHint="parent.vmdk"        delta disks only
 *   RW 4192256 SPARSE "disk-s001.vmdk"      extent lines: access, sectors,
 *   RW 4192256 FLAT "disk-f001.vmdk" 0      type, "file", [offset]
 *   RW 1024 ZERO
 *   ddb.adapterType = "ide"                 the disk database
 *
 * Hostile input: the text is at most VMDK_DESC_MAX bytes (the caller caps
 * what it reads), at most VMDK_MAX_EXTENTS extent lines, every number is
 * parsed with overflow checks, file names must be quoted, non-empty and
 * free of control characters.  Unknown keys and lines are ignored, as
 * VMware does; malformed extent lines are errors since they decide what
 * is read.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "vmdk.h"

/* Longest line kept for parsing; longer lines are errors. */
#define LINE_MAX_LEN 8192

static bool
is_blank (char c)
{
    return c == ' ' || c == '\t';
}

/* Parse an unsigned decimal (or hex with BASE 16) number of the whole
 * string S; false on junk or overflow. */
static bool
parse_u64 (const char *s, unsigned base, uint64_t *out)
{
    uint64_t v = 0;
    unsigned d;

    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s >= '0' && *s <= '9') {
            d = (unsigned) (*s - '0');
        }
        else if (base == 16 && *s >= 'a' && *s <= 'f') {
            d = (unsigned) (*s - 'a' + 10);
        }
        else if (base == 16 && *s >= 'A' && *s <= 'F') {
            d = (unsigned) (*s - 'A' + 10);
        }
        else {
            return false;
        }
        if (ckd_mul (&v, v, (uint64_t) base) || ckd_add (&v, v, d)) {
            return false;
        }
    }
    *out = v;
    return true;
}

/* Remove surrounding double quotes from a value in place. */
static char *
unquote (char *v)
{
    size_t n = strlen (v);

    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v[n - 1] = '\0';
        return v + 1;
    }
    return v;
}

static void
copy_value (char *dst, size_t size, const char *v)
{
    size_t n = strlen (v);

    if (n >= size) {
        n = size - 1;
    }
    memcpy (dst, v, n);
    dst[n] = '\0';
}

/* Split the next blank-separated token off *P; NULL at the end. */
static char *
next_token (char **p)
{
    char *s = *p, *t;

    while (is_blank (*s)) {
        s++;
    }
    if (*s == '\0') {
        return NULL;
    }
    t = s;
    while (*s != '\0' && !is_blank (*s)) {
        s++;
    }
    if (*s != '\0') {
        *s++ = '\0';
    }
    *p = s;
    return t;
}

/* An extent line: ACCESS SECTORS TYPE ["FILE" [OFFSET]]. */
static int
parse_extent (struct vmdk_desc *d, char *line, unsigned lineno)
{
    struct vmdk_desc_extent *e;
    char *p = line, *acc, *sec, *type, *name = NULL, *end, *off;
    size_t nlen;

    if (d->n_ext >= VMDK_MAX_EXTENTS) {
        vmc_error ("vmdk: descriptor has more than %u extents",
                   VMDK_MAX_EXTENTS);
        return -1;
    }
    e = &d->ext[d->n_ext];
    memset (e, 0, sizeof *e);
    acc = next_token (&p);
    sec = next_token (&p);
    type = next_token (&p);
    if (acc == NULL || sec == NULL || type == NULL) {
        vmc_error ("vmdk: descriptor line %u: extent line is incomplete",
                   lineno);
        return -1;
    }
    e->access = strcmp (acc, "RW") == 0 ? VMDK_RW
        : strcmp (acc, "RDONLY") == 0 ? VMDK_RDONLY : VMDK_NOACCESS;
    if (!parse_u64 (sec, 10, &e->sectors) || e->sectors > VMDK_MAX_SECTORS) {
        vmc_error ("vmdk: descriptor line %u: extent sector count \"%.40s\" "
                   "is not a number up to %llu", lineno, sec,
                   (unsigned long long) VMDK_MAX_SECTORS);
        return -1;
    }
    if (strcmp (type, "SPARSE") == 0) {
        e->type = VMDK_EXT_SPARSE;
    }
    else if (strcmp (type, "VMFSSPARSE") == 0) {
        /* ESX sparse (COWD); the file's magic decides. */
        e->type = VMDK_EXT_SPARSE;
    }
    else if (strcmp (type, "FLAT") == 0 || strcmp (type, "VMFS") == 0) {
        e->type = VMDK_EXT_FLAT;
    }
    else if (strcmp (type, "ZERO") == 0) {
        e->type = VMDK_EXT_ZERO;
    }
    else {
        vmc_error ("vmdk: descriptor line %u: extent type \"%.40s\" is not "
                   "supported (SPARSE, VMFSSPARSE, FLAT, VMFS, ZERO)", lineno, type);
        return -1;
    }
    while (is_blank (*p)) {
        p++;
    }
    if (e->type != VMDK_EXT_ZERO || *p != '\0') {
        if (*p != '"' || (end = strchr (p + 1, '"')) == NULL) {
            vmc_error ("vmdk: descriptor line %u: extent file name must be "
                       "in double quotes", lineno);
            return -1;
        }
        name = p + 1;
        *end = '\0';
        p = end + 1;
        nlen = strlen (name);
        if (nlen == 0 || nlen > 4095) {
            vmc_error ("vmdk: descriptor line %u: extent file name is empty "
                       "or too long", lineno);
            return -1;
        }
        for (size_t i = 0; i < nlen; i++) {
            if ((unsigned char) name[i] < 0x20 || name[i] == 0x7f) {
                vmc_error ("vmdk: descriptor line %u: extent file name has a "
                           "control character", lineno);
                return -1;
            }
        }
    }
    off = next_token (&p);
    if (off != NULL) {
        if (!parse_u64 (off, 10, &e->offset) ||
            e->offset > VMDK_MAX_SECTORS) {
            vmc_error ("vmdk: descriptor line %u: extent offset \"%.40s\" is "
                       "not a number", lineno, off);
            return -1;
        }
        if (e->type != VMDK_EXT_FLAT && e->offset != 0) {
            vmc_error ("vmdk: descriptor line %u: only flat extents have an "
                       "offset", lineno);
            return -1;
        }
    }
    if (next_token (&p) != NULL) {
        vmc_error ("vmdk: descriptor line %u: junk after the extent",
                   lineno);
        return -1;
    }
    if (e->type == VMDK_EXT_ZERO) {
        name = NULL;
    }
    else if (name == NULL) {
        vmc_error ("vmdk: descriptor line %u: extent has no file name",
                   lineno);
        return -1;
    }
    if (name != NULL && (e->file = strdup (name)) == NULL) {
        vmc_perror ("vmdk: descriptor");
        return -1;
    }
    d->n_ext++;
    return 0;
}

/* A key=value line; unknown keys are ignored. */
static int
parse_keyval (struct vmdk_desc *d, char *line, unsigned lineno)
{
    char *eq = strchr (line, '='), *k = line, *v, *e;
    uint64_t n;

    if (eq == NULL) {
        return 0;
    }
    *eq = '\0';
    e = eq;
    while (e > k && is_blank (e[-1])) {
        *--e = '\0';
    }
    v = eq + 1;
    while (is_blank (*v)) {
        v++;
    }
    e = v + strlen (v);
    while (e > v && is_blank (e[-1])) {
        *--e = '\0';
    }
    v = unquote (v);

    if (strcmp (k, "version") == 0) {
        if (!parse_u64 (v, 10, &n) || n == 0 || n > 3) {
            vmc_error ("vmdk: descriptor line %u: version \"%.20s\" is not "
                       "supported (1-3)", lineno, v);
            return -1;
        }
        d->version = (unsigned) n;
    }
    else if (strcmp (k, "CID") == 0 || strcmp (k, "parentCID") == 0) {
        if (!parse_u64 (v, 16, &n) || n > UINT32_MAX) {
            vmc_error ("vmdk: descriptor line %u: %s \"%.20s\" is not a "
                       "32-bit hex number", lineno, k, v);
            return -1;
        }
        if (k[0] == 'C') {
            d->cid = (uint32_t) n;
            d->has_cid = true;
        }
        else {
            d->parent_cid = (uint32_t) n;
            d->has_parent_cid = true;
        }
    }
    else if (strcmp (k, "createType") == 0) {
        if (strlen (v) >= sizeof d->create_type) {
            vmc_error ("vmdk: descriptor line %u: createType is too long",
                       lineno);
            return -1;
        }
        copy_value (d->create_type, sizeof d->create_type, v);
    }
    else if (strcmp (k, "parentFileNameHint") == 0) {
        free (d->parent_hint);
        d->parent_hint = NULL;
        if (*v != '\0' && (d->parent_hint = strdup (v)) == NULL) {
            vmc_perror ("vmdk: descriptor");
            return -1;
        }
    }
    else if (strcmp (k, "ddb.adapterType") == 0) {
        copy_value (d->adapter, sizeof d->adapter, v);
    }
    else if (strcmp (k, "ddb.virtualHWVersion") == 0) {
        copy_value (d->hwversion, sizeof d->hwversion, v);
    }
    return 0;
}

static bool
starts_extent (const char *s)
{
    static const char *const acc[] = { "RW", "RDONLY", "NOACCESS" };
    size_t i, n;

    for (i = 0; i < 3; i++) {
        n = strlen (acc[i]);
        if (strncmp (s, acc[i], n) == 0 && is_blank (s[n])) {
            return true;
        }
    }
    return false;
}

int
vmdk_desc_parse (const char *text, size_t len, struct vmdk_desc *d)
{
    const char *p, *end, *nl;
    char *line = NULL;
    unsigned lineno = 0;
    size_t n;
    int r = -1;

    memset (d, 0, sizeof *d);
    d->parent_cid = UINT32_MAX;
    if (len > VMDK_DESC_MAX) {
        vmc_error ("vmdk: descriptor of %zu bytes is too large (limit %u)",
                   len, VMDK_DESC_MAX);
        return -1;
    }
    n = strnlen (text, len);
    end = text + n;
    /* The extent table grows by doubling up to VMDK_MAX_EXTENTS. */
    d->ext = calloc (16, sizeof *d->ext);
    line = malloc (LINE_MAX_LEN + 1);
    if (d->ext == NULL || line == NULL) {
        vmc_perror ("vmdk: descriptor");
        goto out;
    }
    {
        unsigned cap = 16;

        for (p = text; p < end; p = nl + 1) {
            char *s, *e;

            lineno++;
            nl = memchr (p, '\n', (size_t) (end - p));
            if (nl == NULL) {
                nl = end;
            }
            if ((size_t) (nl - p) > LINE_MAX_LEN) {
                vmc_error ("vmdk: descriptor line %u is longer than %d "
                           "bytes", lineno, LINE_MAX_LEN);
                goto out;
            }
            memcpy (line, p, (size_t) (nl - p));
            line[nl - p] = '\0';
            s = line;
            while (is_blank (*s)) {
                s++;
            }
            e = s + strlen (s);
            while (e > s && (is_blank (e[-1]) || e[-1] == '\r')) {
                *--e = '\0';
            }
            if (*s == '\0' || *s == '#') {
                continue;
            }
            if (starts_extent (s)) {
                if (d->n_ext == cap) {
                    struct vmdk_desc_extent *ne;

                    if (cap >= VMDK_MAX_EXTENTS) {
                        vmc_error ("vmdk: descriptor has more than %u "
                                   "extents", VMDK_MAX_EXTENTS);
                        goto out;
                    }
                    ne = realloc (d->ext, 2 * cap * sizeof *ne);
                    if (ne == NULL) {
                        vmc_perror ("vmdk: descriptor");
                        goto out;
                    }
                    d->ext = ne;
                    cap *= 2;
                }
                if (parse_extent (d, s, lineno) == -1) {
                    goto out;
                }
            }
            else if (parse_keyval (d, s, lineno) == -1) {
                goto out;
            }
            if (nl == end) {
                break;
            }
        }
    }
    r = 0;
out:
    free (line);
    return r;
}

void
vmdk_desc_free (struct vmdk_desc *d)
{
    unsigned i;

    if (d->ext != NULL) {
        for (i = 0; i < d->n_ext; i++) {
            free (d->ext[i].file);
        }
    }
    free (d->ext);
    free (d->parent_hint);
    memset (d, 0, sizeof *d);
}

/* A descriptor file is small text: only printable bytes (UTF-8 allowed),
 * tabs and line ends, then possibly NUL padding; and it either starts with
 * the "# Disk DescriptorFile" comment or has a createType= line. */
bool
vmdk_desc_probe (const unsigned char *head, size_t len, uint64_t file_size)
{
    static const char sig[] = "# Disk DescriptorFile";
    size_t i, textlen;
    const unsigned char *p;

    if (file_size > VMDK_DESC_MAX || len < 16) {
        return false;
    }
    textlen = strnlen ((const char *) head, len);
    for (i = 0; i < textlen; i++) {
        unsigned char c = head[i];

        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            return false;
        }
    }
    for (i = textlen; i < len; i++) {
        if (head[i] != 0) {
            return false;
        }
    }
    if (textlen >= sizeof sig - 1 && memcmp (head, sig, sizeof sig - 1) == 0) {
        return true;
    }
    for (p = head; p < head + textlen;) {
        const unsigned char *q = p;

        while (q < head + textlen && is_blank ((char) *q)) {
            q++;
        }
        if ((size_t) (head + textlen - q) > 10 &&
            memcmp (q, "createType", 10) == 0) {
            q += 10;
            while (q < head + textlen && is_blank ((char) *q)) {
                q++;
            }
            if (q < head + textlen && *q == '=') {
                return true;
            }
        }
        p = memchr (p, '\n', (size_t) (head + textlen - p));
        if (p == NULL) {
            break;
        }
        p++;
    }
    return false;
}
