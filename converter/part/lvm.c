/* SPDX-License-Identifier: MIT */
/*
 * LVM2 physical volumes: the label, the PV header, the metadata area and
 * the metadata text (lvm2's on-disk format: lib/format_text/layout.h and
 * the text format documented in lvm2's doc/ and man lvm.conf).
 *
 *   label (one of the first 4 sectors): "LABELONE", sector number (u64),
 *     crc (u32, over bytes 20..511), offset of the PV header (u32),
 *     "LVM2 001".
 *   PV header: uuid[32], device size (u64), then two lists of
 *     (offset u64, size u64) ended by a zero entry: data areas, then
 *     metadata areas.
 *   metadata area header (512 bytes at the area's start): crc (u32, over
 *     bytes 4..511), magic " LVM2 x[5A%r0N*>", version 1, start, size,
 *     raw locations (offset, size, crc, flags) ended by a zero offset.
 *     The text is at start + offset in a circular buffer that wraps to
 *     start + 512.
 *
 * Checksums are CRC-32 without the final inversion, seeded 0xf597a6cf.
 * The config text: sections NAME { ... }, KEY = VALUE, arrays [ a, b ],
 * "strings" with \ escapes, integers, # comments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../lib/checksum.h"
#include "../lib/byteorder.h"
#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "part.h"

#define LVM_TEXT_MAX (8u << 20)
#define CFG_MAX_DEPTH 32
#define CFG_MAX_NODES 200000
#define LVM_CRC_SEED 0xf597a6cfu

uint32_t
lvm_crc (uint32_t seed, const void *buf, size_t len)
{
    uLong c = ~seed & 0xffffffffu;

    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt) len;
        c = crc32 (c, buf, n);
        buf = (const char *) buf + n;
        len -= n;
    }
    return ~(uint32_t) c;
}


/* ---- the config text parser ---------------------------------------- */

struct cfg_parser {
    const char *p, *end;
    unsigned nodes;
    char err[128];
};

static void
skip_space (struct cfg_parser *c)
{
    while (c->p < c->end) {
        if (*c->p == '#') {
            while (c->p < c->end && *c->p != '\n')
                c->p++;
        }
        else if (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' ||
                 *c->p == '\r')
            c->p++;
        else
            break;
    }
}

static bool
is_ident (char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.' ||
        ch == '+' || ch == '/';
}

static struct cfg_node *
new_node (struct cfg_parser *c, enum cfg_type type)
{
    struct cfg_node *n;

    if (c->nodes >= CFG_MAX_NODES) {
        snprintf (c->err, sizeof c->err, "too many values");
        return NULL;
    }
    n = calloc (1, sizeof *n);
    if (n == NULL) {
        snprintf (c->err, sizeof c->err, "out of memory");
        return NULL;
    }
    c->nodes++;
    n->type = type;
    return n;
}

static char *
parse_string (struct cfg_parser *c)
{
    const char *s = ++c->p;         /* after the opening quote */
    size_t n = 0;
    char *out;

    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\' && c->p + 1 < c->end)
            c->p++;
        c->p++;
        n++;
    }
    if (c->p >= c->end) {
        snprintf (c->err, sizeof c->err, "unterminated string");
        return NULL;
    }
    out = malloc (n + 1);
    if (out == NULL) {
        snprintf (c->err, sizeof c->err, "out of memory");
        return NULL;
    }
    n = 0;
    while (s < c->p) {
        if (*s == '\\' && s + 1 < c->p)
            s++;
        out[n++] = *s++;
    }
    out[n] = 0;
    c->p++;                         /* the closing quote */
    return out;
}

static struct cfg_node *parse_value (struct cfg_parser *c, unsigned depth);

static int
parse_number (struct cfg_parser *c, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0;
    bool any = false;

    if (c->p < c->end && *c->p == '-') {
        neg = true;
        c->p++;
    }
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (ckd_mul (&v, v, 10) || ckd_add (&v, v, (uint64_t) (*c->p - '0'))
            || v > (uint64_t) INT64_MAX) {
            snprintf (c->err, sizeof c->err, "number too large");
            return -1;
        }
        c->p++;
        any = true;
    }
    /* A fraction (rare: only in unimportant keys) is dropped. */
    if (any && c->p < c->end && *c->p == '.') {
        c->p++;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (!any) {
        snprintf (c->err, sizeof c->err, "bad value");
        return -1;
    }
    *out = neg ? -(int64_t) v : (int64_t) v;
    return 0;
}

/* Members until '}' (or the end, at the top level). */
static struct cfg_node *
parse_members (struct cfg_parser *c, unsigned depth, bool top,
               struct cfg_node *sec)
{
    struct cfg_node **tail = &sec->child;

    if (depth > CFG_MAX_DEPTH) {
        snprintf (c->err, sizeof c->err, "nested too deeply");
        return NULL;
    }
    for (;;) {
        const char *k;
        struct cfg_node *n;
        size_t klen;

        skip_space (c);
        if (c->p >= c->end) {
            if (top)
                return sec;
            snprintf (c->err, sizeof c->err, "missing }");
            return NULL;
        }
        if (*c->p == '}') {
            if (top) {
                snprintf (c->err, sizeof c->err, "unexpected }");
                return NULL;
            }
            c->p++;
            return sec;
        }
        k = c->p;
        while (c->p < c->end && is_ident (*c->p))
            c->p++;
        klen = (size_t) (c->p - k);
        if (klen == 0 || klen > 1024) {
            snprintf (c->err, sizeof c->err, "bad key");
            return NULL;
        }
        skip_space (c);
        if (c->p >= c->end) {
            snprintf (c->err, sizeof c->err, "truncated");
            return NULL;
        }
        if (*c->p == '{') {
            c->p++;
            n = new_node (c, CFG_SECTION);
            if (n == NULL)
                return NULL;
            *tail = n;
            tail = &n->next;
            if (parse_members (c, depth + 1, false, n) == NULL)
                goto set_key_fail;
        }
        else if (*c->p == '=') {
            c->p++;
            skip_space (c);
            n = parse_value (c, depth + 1);
            if (n == NULL)
                return NULL;
            *tail = n;
            tail = &n->next;
        }
        else {
            snprintf (c->err, sizeof c->err, "expected = or {");
            return NULL;
        }
        n->key = strndup (k, klen);
        if (n->key == NULL) {
            snprintf (c->err, sizeof c->err, "out of memory");
            return NULL;
        }
        continue;
set_key_fail:
        return NULL;
    }
}

static struct cfg_node *
parse_value (struct cfg_parser *c, unsigned depth)
{
    struct cfg_node *n;

    if (depth > CFG_MAX_DEPTH) {
        snprintf (c->err, sizeof c->err, "nested too deeply");
        return NULL;
    }
    if (c->p >= c->end) {
        snprintf (c->err, sizeof c->err, "missing value");
        return NULL;
    }
    if (*c->p == '"') {
        n = new_node (c, CFG_STRING);
        if (n == NULL)
            return NULL;
        n->str = parse_string (c);
        if (n->str == NULL) {
            cfg_free (n);
            return NULL;
        }
        return n;
    }
    if (*c->p == '[') {
        struct cfg_node **tail;

        c->p++;
        n = new_node (c, CFG_ARRAY);
        if (n == NULL)
            return NULL;
        tail = &n->child;
        for (;;) {
            struct cfg_node *e;

            skip_space (c);
            if (c->p < c->end && *c->p == ']') {
                c->p++;
                return n;
            }
            e = parse_value (c, depth + 1);
            if (e == NULL || e->type == CFG_ARRAY) {
                if (e != NULL)
                    snprintf (c->err, sizeof c->err, "nested array");
                cfg_free (e);
                cfg_free (n);
                return NULL;
            }
            *tail = e;
            tail = &e->next;
            skip_space (c);
            if (c->p < c->end && *c->p == ',')
                c->p++;
            else if (!(c->p < c->end && *c->p == ']')) {
                snprintf (c->err, sizeof c->err, "expected , or ]");
                cfg_free (n);
                return NULL;
            }
        }
    }
    n = new_node (c, CFG_NUMBER);
    if (n == NULL)
        return NULL;
    if (parse_number (c, &n->num) < 0) {
        cfg_free (n);
        return NULL;
    }
    return n;
}

struct cfg_node *
cfg_parse (const char *text, size_t len)
{
    struct cfg_parser c = { .p = text, .end = text + len };
    struct cfg_node *root;

    root = calloc (1, sizeof *root);
    if (root == NULL) {
        vmc_perror ("calloc");
        return NULL;
    }
    root->type = CFG_SECTION;
    if (parse_members (&c, 0, true, root) == NULL) {
        vmc_error ("LVM metadata: %s at byte %zu", c.err,
                   (size_t) (c.p - text));
        cfg_free (root);
        return NULL;
    }
    return root;
}

void
cfg_free (struct cfg_node *n)
{
    /* Iterative along siblings, recursive (depth-capped) into children. */
    while (n != NULL) {
        struct cfg_node *next = n->next;
        cfg_free (n->child);
        free (n->key);
        free (n->str);
        free (n);
        n = next;
    }
}

const struct cfg_node *
cfg_get (const struct cfg_node *s, const char *key)
{
    if (s == NULL || s->type != CFG_SECTION)
        return NULL;
    for (const struct cfg_node *n = s->child; n != NULL; n = n->next)
        if (n->key != NULL && strcmp (n->key, key) == 0)
            return n;
    return NULL;
}

int
cfg_get_num (const struct cfg_node *s, const char *key, int64_t *out)
{
    const struct cfg_node *n = cfg_get (s, key);

    if (n == NULL || n->type != CFG_NUMBER)
        return -1;
    *out = n->num;
    return 0;
}

const char *
cfg_get_str (const struct cfg_node *s, const char *key)
{
    const struct cfg_node *n = cfg_get (s, key);

    return n != NULL && n->type == CFG_STRING ? n->str : NULL;
}

/* ---- the PV label and metadata area -------------------------------- */

static int
find_label (const struct volume *v, unsigned char *sec, unsigned *which)
{
    for (unsigned i = 0; i < 4; i++) {
        if ((uint64_t) (i + 1) * 512 > v->size)
            return 0;
        if (v->pread (v, sec, 512, (uint64_t) i * 512) < 0)
            return -1;
        if (memcmp (sec, "LABELONE", 8) == 0 &&
            memcmp (sec + 24, "LVM2 001", 8) == 0 &&
            get_le64 (sec + 8) == i) {
            *which = i;
            return 1;
        }
    }
    return 0;
}

int
lvm_probe (const struct volume *v)
{
    unsigned char sec[512];
    unsigned which;

    return find_label (v, sec, &which);
}

void
lvm_pv_free (struct lvm_pv *pv)
{
    rangeset_free (&pv->meta);
    free (pv->text);
    pv->text = NULL;
}

/* Read the text of the metadata area at [START, START + SIZE).  0 with
 * pv->text set, or with *WHY set; -1 on a read error. */
static int
read_mda (const struct volume *v, struct lvm_pv *pv, uint64_t start,
          uint64_t size, char *why, size_t whylen)
{
    unsigned char h[512];
    uint64_t off, len, first;
    uint32_t crc, flags;
    char *text;

    if (size < 1024 || start > v->size || size > v->size - start) {
        snprintf (why, whylen, "metadata area outside the PV");
        return 0;
    }
    if (v->pread (v, h, 512, start) < 0)
        return -1;
    if (memcmp (h + 4, " LVM2 x[5A%r0N*>", 16) != 0 ||
        get_le32 (h + 20) != 1) {
        snprintf (why, whylen, "metadata area header has no LVM2 magic");
        return 0;
    }
    if (!checksum_ok (get_le32 (h), lvm_crc (LVM_CRC_SEED, h + 4, 508))) {
        snprintf (why, whylen, "metadata area header: bad checksum");
        return 0;
    }
    if (get_le64 (h + 24) != start || get_le64 (h + 32) != size) {
        snprintf (why, whylen, "metadata area header: wrong start/size");
        return 0;
    }
    off = get_le64 (h + 40);
    len = get_le64 (h + 48);
    crc = get_le32 (h + 56);
    flags = get_le32 (h + 60);
    if (off == 0) {
        snprintf (why, whylen, "PV not in a volume group (no metadata)");
        return 0;
    }
    if (flags & 1) {
        snprintf (why, whylen, "metadata area ignored");
        return 0;
    }
    if (off < 512 || off >= size || len == 0 || len > size - 512 ||
        len > LVM_TEXT_MAX) {
        snprintf (why, whylen, "metadata location outside its area");
        return 0;
    }
    text = malloc (len + 1);
    if (text == NULL) {
        vmc_perror ("malloc");
        return -1;
    }
    first = len < size - off ? len : size - off;
    if (v->pread (v, text, first, start + off) < 0 ||
        (first < len && v->pread (v, text + first, len - first,
                                  start + 512) < 0)) {
        free (text);
        return -1;
    }
    text[len] = 0;
    if (!checksum_ok (crc, lvm_crc (LVM_CRC_SEED, text, len))) {
        free (text);
        snprintf (why, whylen, "metadata text: bad checksum");
        return 0;
    }
    /* Text ends at the first NUL, if any. */
    pv->text_len = strnlen (text, len);
    pv->text = text;
    return 0;
}

int
lvm_pv_read (const struct volume *v, struct lvm_pv *pv)
{
    unsigned char sec[512];
    unsigned which;
    uint32_t hoff;
    const unsigned char *ph;
    int r, list = 0;
    unsigned entries = 0;

    memset (pv, 0, sizeof *pv);
    r = find_label (v, sec, &which);
    if (r <= 0) {
        if (r == 0)
            snprintf (pv->why, sizeof pv->why, "no LVM label");
        return r;
    }
    if (rangeset_add (&pv->meta, 0, 4 * 512) < 0)
        return -1;
    if (!checksum_ok (get_le32 (sec + 16), lvm_crc (LVM_CRC_SEED, sec + 20,
                                                   512 - 20))) {
        snprintf (pv->why, sizeof pv->why, "LVM label: bad checksum");
        return 0;
    }
    hoff = get_le32 (sec + 20);
    if (hoff < 32 || hoff > 512 - 32 - 8 - 16) {
        snprintf (pv->why, sizeof pv->why, "LVM label: bad header offset");
        return 0;
    }
    ph = sec + hoff;
    for (int i = 0; i < 32; i++) {
        unsigned char ch = ph[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
              (ch >= 'A' && ch <= 'Z'))) {
            snprintf (pv->why, sizeof pv->why, "LVM PV uuid not printable");
            return 0;
        }
        pv->uuid[i] = (char) ch;
    }
    pv->uuid[32] = 0;
    pv->dev_size = get_le64 (ph + 32);
    /* The two lists of (offset, size), each ending in a zero entry. */
    for (const unsigned char *p = ph + 40; p + 16 <= sec + 512; p += 16) {
        uint64_t off = get_le64 (p), size = get_le64 (p + 8);

        if (off == 0) {
            if (++list == 2)
                break;
            continue;
        }
        if (++entries > 16)
            break;
        if (list == 0) {
            if (pv->pe_start == 0 || off < pv->pe_start)
                pv->pe_start = off;
        }
        else {
            char why[200] = "";

            if (off > v->size || size > v->size - off) {
                snprintf (pv->why, sizeof pv->why,
                          "metadata area outside the PV");
                return 0;
            }
            if (rangeset_add (&pv->meta, off, size) < 0)
                return -1;
            if (pv->text == NULL) {
                if (read_mda (v, pv, off, size, why, sizeof why) < 0)
                    return -1;
                if (pv->text == NULL && pv->why[0] == 0)
                    snprintf (pv->why, sizeof pv->why, "%s", why);
            }
        }
    }
    if (list < 2) {
        snprintf (pv->why, sizeof pv->why, "PV header lists not terminated");
        free (pv->text);
        pv->text = NULL;
        return 0;
    }
    if (pv->pe_start == 0 || pv->pe_start > v->size) {
        snprintf (pv->why, sizeof pv->why, "PV has no data area");
        free (pv->text);
        pv->text = NULL;
        return 0;
    }
    if (pv->text != NULL)
        pv->why[0] = 0;
    else if (pv->why[0] == 0)
        snprintf (pv->why, sizeof pv->why, "PV has no metadata area");
    return 0;
}
