/* SPDX-License-Identifier: MIT */
/*
 * netplan YAML (the .yaml files of /etc/netplan): ethernets, bonds,
 * bridges, vlans, into the model of netconf.h, through the subset of YAML
 * described below.  Written from netplan's YAML reference.  Each file gives
 * its own entries; netplan's merging of the same id across files is left
 * to the caller.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "netconf-int.h"

/* ---- a YAML subset, for netplan --------------------------------------- */

/*
 * Enough of YAML 1.2 for what netplan's documentation and installers
 * write: block mappings and sequences by indentation (spaces only), a
 * sequence at its key's indentation, "- key: value" items, flow
 * sequences and mappings on one line, single- and double-quoted scalars,
 * comments.  Not supported (the line is skipped or the value left
 * empty): block scalars (| and >, whose lines are skipped), multi-line
 * flow collections and quoted scalars, anchors, aliases, tags, several
 * documents (only the first is read).  The tree is a bounded array of
 * nodes; flow collections nest at most YAML_MAX_DEPTH deep, and so do
 * block collections.
 */
#define YAML_MAX_NODES 2048
#define YAML_MAX_DEPTH 32

enum { Y_NULL, Y_SCALAR, Y_MAP, Y_SEQ };

struct ynode {
    unsigned char type;
    int child, last, next;          /* children, and the next sibling */
    char key[64];                   /* in a mapping */
    char val[128];                  /* a scalar */
};

struct yaml {
    struct ynode *n;
    int count;
    struct net_config *c;
};

/* A new child of PARENT (-1: the root) with KEY (or NULL), or -1. */
static int
y_new (struct yaml *y, int parent, const char *key, size_t klen)
{
    struct ynode *n;
    int k;

    if (y->count >= YAML_MAX_NODES) {
        y->c->skipped++;
        return -1;
    }
    k = y->count;
    n = &y->n[k];
    memset (n, 0, sizeof *n);
    n->child = n->last = n->next = -1;
    if (key != NULL && !nc_set_n (n->key, sizeof n->key, key, klen)) {
        y->c->skipped++;
        return -1;
    }
    y->count++;
    if (parent >= 0) {
        if (y->n[parent].last >= 0) {
            y->n[y->n[parent].last].next = k;
        }
        else {
            y->n[parent].child = k;
        }
        y->n[parent].last = k;
    }
    return k;
}

static void
y_scalar (struct yaml *y, int k, const char *s, size_t n)
{
    if (nc_set_n (y->n[k].val, sizeof y->n[k].val, s, n)) {
        y->n[k].type = Y_SCALAR;
    }
    else {
        y->c->skipped++;
    }
}

/* A quoted scalar at S (at its quote) into OUT: the text after it, or
 * NULL when it is not closed on this line. */
static const char *
y_quoted (const char *s, char *out, size_t cap, size_t *outlen)
{
    char q = *s++;
    size_t o = 0;

    for (;; s++) {
        char ch = *s;

        if (ch == '\0') {
            return NULL;
        }
        if (ch == q) {
            if (q == '\'' && s[1] == '\'') {
                s++;
            }
            else {
                break;
            }
        }
        else if (q == '"' && ch == '\\' && s[1] != '\0') {
            ch = *++s;
            ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
        }
        if (o + 1 < cap) {
            out[o++] = ch;
        }
        else {
            return NULL;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return s + 1;
}

static const char *
skip_ws (const char *s)
{
    return s + strspn (s, " \t");
}

/* One flow value at S as a child KEY of PARENT: the text after it, or
 * NULL when it is malformed. */
static const char *
y_flow (struct yaml *y, int parent, const char *key, size_t klen,
        const char *s, unsigned depth)
{
    char buf[128];
    size_t n;
    int k;

    s = skip_ws (s);
    if (depth >= YAML_MAX_DEPTH) {
        y->c->skipped++;
        return NULL;
    }
    k = y_new (y, parent, key, klen);
    if (k < 0) {
        return NULL;
    }
    if (*s == '[' || *s == '{') {
        char close = *s == '[' ? ']' : '}';

        y->n[k].type = *s == '[' ? Y_SEQ : Y_MAP;
        s = skip_ws (s + 1);
        while (*s != close) {
            const char *ks = NULL;
            size_t kl = 0;

            if (close == '}') {
                /* key: value, the key plain or quoted. */
                if (*s == '"' || *s == '\'') {
                    s = y_quoted (s, buf, sizeof buf, &kl);
                    if (s == NULL) {
                        return NULL;
                    }
                    ks = buf;
                }
                else {
                    ks = s;
                    while (*s != '\0' && *s != ',' && *s != '}' &&
                           !(*s == ':' && (s[1] == ' ' || s[1] == ',' ||
                                           s[1] == '}' || s[1] == '\0'))) {
                        s++;
                    }
                    kl = (size_t) (s - ks);
                    while (kl > 0 && ks[kl - 1] == ' ') {
                        kl--;
                    }
                }
                s = skip_ws (s);
                if (*s != ':') {
                    return NULL;
                }
                {
                    char kcopy[64];

                    if (!nc_set_n (kcopy, sizeof kcopy, ks, kl)) {
                        return NULL;
                    }
                    s = y_flow (y, k, kcopy, kl, s + 1, depth + 1);
                }
            }
            else {
                s = y_flow (y, k, NULL, 0, s, depth + 1);
            }
            if (s == NULL) {
                return NULL;
            }
            s = skip_ws (s);
            if (*s == ',') {
                s = skip_ws (s + 1);
            }
            else if (*s != close) {
                return NULL;
            }
        }
        return s + 1;
    }
    if (*s == '"' || *s == '\'') {
        s = y_quoted (s, buf, sizeof buf, &n);
        if (s != NULL) {
            y_scalar (y, k, buf, n);
        }
        return s;
    }
    n = strcspn (s, ",]}");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n > 0) {
        y_scalar (y, k, s, n);
    }
    return s + strcspn (s, ",]}");
}

/* The value text V (trimmed, comment cut) of the node K. */
static bool
y_value (struct yaml *y, int k, const char *v)
{
    int parent = k;

    if (*v == '[' || *v == '{') {
        /* Parse the collection as the only child of K, then make K the
         * collection. */
        int save = y->count;
        const char *end = y_flow (y, parent, NULL, 0, v, 0);
        int f;

        if (end == NULL || *skip_ws (end) != '\0') {
            y->count = save;
            y->n[k].child = y->n[k].last = -1;
            y->c->skipped++;
            return false;
        }
        f = y->n[k].child;
        y->n[k].type = y->n[f].type;
        y->n[k].child = y->n[f].child;
        y->n[k].last = y->n[f].last;
        return true;
    }
    if (*v == '"' || *v == '\'') {
        char buf[128];
        size_t n;
        const char *end = y_quoted (v, buf, sizeof buf, &n);

        if (end == NULL || *skip_ws (end) != '\0') {
            y->c->skipped++;
            return false;
        }
        y_scalar (y, k, buf, n);
        return true;
    }
    y_scalar (y, k, v, strlen (v));
    return true;
}

/* Cut a comment (a '#' at the start or after a blank, outside quotes)
 * and trailing blanks. */
static void
y_cut_comment (char *s)
{
    char q = 0;
    size_t n;

    for (char *p = s; *p != '\0'; p++) {
        if (q != 0) {
            if (*p == q) {
                q = 0;
            }
        }
        else if ((*p == '"' || *p == '\'') &&
                 (p == s || strchr (" \t[{,:-", p[-1]) != NULL)) {
            q = *p;
        }
        else if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    n = strlen (s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
}

/* The ": " that ends a block mapping's key in S, or NULL. */
static char *
y_key_end (char *s)
{
    char q = 0;

    if (*s == '"' || *s == '\'') {
        q = *s++;
        for (; *s != '\0' && *s != q; s++) {
        }
        if (*s == '\0') {
            return NULL;
        }
        s++;
    }
    for (; *s != '\0'; s++) {
        if (*s == ':' && (s[1] == ' ' || s[1] == '\t' || s[1] == '\0')) {
            return s;
        }
    }
    return NULL;
}

struct ystack {
    int node;
    int indent;
};

static void
y_parse (struct yaml *y, const char *text, size_t len)
{
    struct lines l = { text, text + len, 0 };
    struct ystack st[YAML_MAX_DEPTH];
    int depth = 0, pend = -1, pend_indent = -1, block_indent = -1;
    char *line = malloc (LINE_MAX_);
    bool bad;

    if (line == NULL) {
        y->count = -1;
        return;
    }
    while (nc_next_line (&l, line, LINE_MAX_, &bad)) {
        int indent = (int) strspn (line, " ");
        char *s = line + indent;
        int was_pend = pend, was_pend_indent = pend_indent;

        if (bad) {
            y->c->skipped++;
            continue;
        }
        if (block_indent >= 0) {
            if (*s == '\0' || indent > block_indent) {
                continue;
            }
            block_indent = -1;
        }
        y_cut_comment (s);
        if (*s == '\0') {
            continue;
        }
        if (indent == 0 && (strcmp (s, "---") == 0 || s[0] == '%')) {
            continue;
        }
        if (indent == 0 && strcmp (s, "...") == 0) {
            break;
        }
        if (*s == '\t') {
            y->c->skipped++;
            continue;
        }
        pend = -1;
        if (depth == 0) {
            int root = y_new (y, -1, NULL, 0);

            if (root < 0) {
                break;
            }
            y->n[root].type = s[0] == '-' && (s[1] == ' ' || s[1] == '\0')
                              ? Y_SEQ : Y_MAP;
            st[depth++] = (struct ystack) { root, indent };
        }
        while (depth > 1 && st[depth - 1].indent > indent) {
            depth--;
        }
        if (st[depth - 1].indent > indent) {
            y->c->skipped++;          /* left of the root */
            continue;
        }
        if (st[depth - 1].indent < indent ||
            (st[depth - 1].indent == indent &&
             y->n[st[depth - 1].node].type == Y_MAP && s[0] == '-' &&
             was_pend >= 0 && was_pend_indent == indent)) {
            /* The first entry of the collection a key or item opened. */
            if (was_pend < 0 || was_pend_indent > indent ||
                depth >= YAML_MAX_DEPTH) {
                y->c->skipped++;
                continue;
            }
            y->n[was_pend].type = s[0] == '-' && (s[1] == ' ' || s[1] == '\0')
                                  ? Y_SEQ : Y_MAP;
            st[depth++] = (struct ystack) { was_pend, indent };
        }
        /* A sequence at its key's indentation ends at the next key. */
        if (y->n[st[depth - 1].node].type == Y_SEQ && s[0] != '-' &&
            depth > 1 && st[depth - 2].indent == indent) {
            depth--;
        }
        /* The entry, at st[depth - 1]; "- " items may hold more. */
        for (unsigned guard = 0; guard < YAML_MAX_DEPTH; guard++) {
            int top = st[depth - 1].node, k;

            if (y->n[top].type == Y_SEQ) {
                int col;

                if (s[0] != '-' || (s[1] != ' ' && s[1] != '\0')) {
                    y->c->skipped++;
                    break;
                }
                col = indent + 1 + (int) strspn (s + 1, " ");
                s = s + 1 + strspn (s + 1, " ");
                k = y_new (y, top, NULL, 0);
                if (k < 0) {
                    break;
                }
                if (*s == '\0') {
                    pend = k;
                    pend_indent = indent;
                    break;
                }
                if ((s[0] == '-' && (s[1] == ' ' || s[1] == '\0')) ||
                    (s[0] != '[' && s[0] != '{' && y_key_end (s) != NULL)) {
                    if (depth >= YAML_MAX_DEPTH) {
                        y->c->skipped++;
                        break;
                    }
                    y->n[k].type = s[0] == '-' ? Y_SEQ : Y_MAP;
                    st[depth++] = (struct ystack) { k, col };
                    indent = col;
                    continue;
                }
                y_value (y, k, s);
                break;
            }
            else {
                char *ke = y_key_end (s), *v;
                size_t kl;

                if (ke == NULL) {
                    y->c->skipped++;
                    break;
                }
                kl = (size_t) (ke - s);
                v = ke + 1;
                v += strspn (v, " \t");
                if (s[0] == '"' || s[0] == '\'') {
                    char kb[64];
                    size_t n;

                    if (y_quoted (s, kb, sizeof kb, &n) == NULL) {
                        y->c->skipped++;
                        break;
                    }
                    k = y_new (y, top, kb, n);
                }
                else {
                    k = y_new (y, top, s, kl);
                }
                if (k < 0) {
                    break;
                }
                if (*v == '\0') {
                    pend = k;
                    pend_indent = indent;
                }
                else if (*v == '|' || *v == '>') {
                    block_indent = indent;
                }
                else {
                    y_value (y, k, v);
                }
                break;
            }
        }
    }
    free (line);
}

/* The last child of K with KEY, or -1. */
static int
y_get (const struct yaml *y, int k, const char *key)
{
    int found = -1;

    if (k < 0 || y->n[k].type != Y_MAP) {
        return -1;
    }
    for (int c = y->n[k].child; c >= 0; c = y->n[c].next) {
        if (strcmp (y->n[c].key, key) == 0) {
            found = c;
        }
    }
    return found;
}

static const char *
y_str (const struct yaml *y, int k, const char *key)
{
    int c = y_get (y, k, key);

    return c >= 0 && y->n[c].type == Y_SCALAR ? y->n[c].val : NULL;
}

static bool
y_true (const struct yaml *y, int k, const char *key)
{
    const char *s = y_str (y, k, key);

    return s != NULL && nc_parse_bool (s) == 1;
}

/* One interface of netplan's network: ID is its node. */
static int
netplan_iface (struct yaml *y, int id, const char *path)
{
    struct net_config *c = y->c;
    int match = y_get (y, id, "match"), k, err = 0;
    const char *s, *name = y->n[id].key;
    struct net_iface *i = nc_add_iface (c, path, "netplan", &err);

    if (i == NULL) {
        return err;
    }
    if (match >= 0) {
        name = y_str (y, match, "name");
        if (name == NULL) {
            name = "";
        }
        if ((s = y_str (y, match, "macaddress")) != NULL &&
            !nc_parse_mac (s, strlen (s), i->mac)) {
            c->skipped++;
        }
    }
    if ((s = y_str (y, id, "set-name")) != NULL) {
        name = s;
    }
    if (!nc_set_str (i->name, sizeof i->name, name)) {
        c->skipped++;
    }
    i->dhcp4 = y_true (y, id, "dhcp4");
    i->dhcp6 = y_true (y, id, "dhcp6");
    i->auto6 = y_true (y, id, "accept-ra");
    k = y_get (y, id, "addresses");
    if (k >= 0 && y->n[k].type == Y_SEQ) {
        for (int a = y->n[k].child; a >= 0; a = y->n[a].next) {
            /* "- 10.0.0.5/24" or, with options, "- 10.0.0.5/24: {...}". */
            const char *v = y->n[a].type == Y_SCALAR ? y->n[a].val
                            : y->n[a].type == Y_MAP && y->n[a].child >= 0
                            ? y->n[y->n[a].child].key : NULL;

            if (v == NULL || strchr (v, '/') == NULL) {
                c->skipped++;
                continue;
            }
            nc_add_addr (c, i, v, NULL, DEF_HOST);
        }
    }
    if ((s = y_str (y, id, "gateway4")) != NULL) {
        nc_set_gateway (c, i, s);
    }
    if ((s = y_str (y, id, "gateway6")) != NULL) {
        nc_set_gateway (c, i, s);
    }
    k = y_get (y, id, "routes");
    if (k >= 0 && y->n[k].type == Y_SEQ) {
        for (int r = y->n[k].child; r >= 0; r = y->n[r].next) {
            const char *to = y_str (y, r, "to"), *via = y_str (y, r, "via");

            if (to != NULL && via != NULL &&
                (strcmp (to, "default") == 0 || strcmp (to, "0.0.0.0/0") == 0
                 || strcmp (to, "::/0") == 0)) {
                nc_set_gateway (c, i, via);
            }
        }
    }
    k = y_get (y, y_get (y, id, "nameservers"), "addresses");
    if (k >= 0 && y->n[k].type == Y_SEQ) {
        for (int d = y->n[k].child; d >= 0; d = y->n[d].next) {
            if (y->n[d].type == Y_SCALAR) {
                nc_add_dns (c, i, y->n[d].val, strlen (y->n[d].val));
            }
        }
    }
    return 0;
}

int
netconf_parse_netplan (struct net_config *c, const char *path,
                       const char *text, size_t len)
{
    static const char *const groups[] = { "ethernets", "bonds", "bridges",
                                          "vlans" };
    struct yaml y = { malloc (YAML_MAX_NODES * sizeof (struct ynode)), 0, c };
    int net, err = 0;

    if (y.n == NULL) {
        vmc_error ("netconf: out of memory");
        return -1;
    }
    y_parse (&y, text, len);
    if (y.count < 0) {
        free (y.n);
        vmc_error ("netconf: out of memory");
        return -1;
    }
    net = y.count > 0 ? y_get (&y, 0, "network") : -1;
    for (unsigned g = 0; g < 4 && net >= 0 && err == 0; g++) {
        int grp = y_get (&y, net, groups[g]);

        if (grp < 0 || y.n[grp].type != Y_MAP) {
            continue;
        }
        for (int id = y.n[grp].child; id >= 0 && err == 0;
             id = y.n[id].next) {
            if (strcmp (y.n[id].key, "lo") == 0) {
                continue;
            }
            err = netplan_iface (&y, id, path);
        }
    }
    free (y.n);
    return err;
}
