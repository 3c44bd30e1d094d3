/* SPDX-License-Identifier: MIT */
/*
 * Parsers of Linux network configuration into one model (netconf.h).
 * Written from the formats' documentation: interfaces(5) of ifupdown
 * 0.8, the ifcfg variables of initscripts' sysconfig.txt and SUSE's
 * ifcfg(5), nm-settings-keyfile(5), netplan's YAML reference,
 * systemd.network(5) and systemd.link(5), and udev(7) for rules.
 *
 * Every file is hostile.  Lines are read one at a time into a bounded
 * buffer (longer lines, and lines holding NUL bytes, are skipped); values
 * that do not fit their field, addresses inet_pton refuses and MACs that
 * are not six octets are skipped; counts are capped (NETCONF_MAX_*); the
 * YAML parser has no recursion past YAML_MAX_DEPTH and a node cap.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/error.h"
#include "../lib/json.h"
#include "netconf.h"

#define LINE_MAX_ 4096              /* a logical line, continuations and
                                     * all */

/* ---- the model -------------------------------------------------------- */

void
netconf_init (struct net_config *c)
{
    memset (c, 0, sizeof *c);
}

void
netconf_free (struct net_config *c)
{
    if (c == NULL) {
        return;
    }
    free (c->v);
    memset (c, 0, sizeof *c);
}

/* Copy N bytes of S into DST (CAP bytes) if they fit and are printable
 * (UTF-8 passes): true when copied. */
static bool
set_n (char *dst, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    if (n >= cap) {
        return false;
    }
    memcpy (dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool
set_str (char *dst, size_t cap, const char *s)
{
    return set_n (dst, cap, s, strlen (s));
}

/* A new entry of TOOL from PATH, or NULL (*ERR set on memory errors,
 * c->skipped counted when the cap is reached). */
static struct net_iface *
add_iface (struct net_config *c, const char *path, const char *tool,
           int *err)
{
    struct net_iface *i;

    if (c->n >= NETCONF_MAX_IFACES) {
        c->skipped++;
        return NULL;
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap == 0 ? 8 : c->cap * 2;
        struct net_iface *nv;

        if (ncap > NETCONF_MAX_IFACES) {
            ncap = NETCONF_MAX_IFACES;
        }
        nv = realloc (c->v, ncap * sizeof *nv);
        if (nv == NULL) {
            vmc_error ("netconf: out of memory");
            *err = -1;
            return NULL;
        }
        c->v = nv;
        c->cap = ncap;
    }
    i = &c->v[c->n++];
    memset (i, 0, sizeof *i);
    if (!set_str (i->source, sizeof i->source, path)) {
        /* A path too long to record is cut, not fatal: it only says
         * where the entry came from. */
        snprintf (i->source, sizeof i->source, "%.*s",
                  (int) sizeof i->source - 1, path);
    }
    set_str (i->tool, sizeof i->tool, tool);
    return i;
}

/* Lower-case xx:xx:xx:xx:xx:xx from colon-, hyphen- or dot-delimited
 * hexadecimal (systemd.link(5) accepts all three). */
static bool
parse_mac (const char *s, size_t n, char out[18])
{
    unsigned char b[6];
    unsigned k = 0;
    size_t i = 0;

    if (n == 14 && s[4] == '.' && s[9] == '.') {
        char hex[12];
        unsigned h = 0;

        for (i = 0; i < 14; i++) {
            if (i == 4 || i == 9) {
                continue;
            }
            if (!isxdigit ((unsigned char) s[i])) {
                return false;
            }
            hex[h++] = s[i];
        }
        for (k = 0; k < 6; k++) {
            char pair[3] = { hex[k * 2], hex[k * 2 + 1], '\0' };

            b[k] = (unsigned char) strtoul (pair, NULL, 16);
        }
    }
    else if (n == 17) {
        for (k = 0; k < 6; k++) {
            const char *p = s + k * 3;
            char h[3] = { p[0], p[1], '\0' };

            if (!isxdigit ((unsigned char) p[0]) ||
                !isxdigit ((unsigned char) p[1]) ||
                (k < 5 && p[2] != ':' && p[2] != '-') ||
                (k > 0 && p[-1] != s[2])) {
                return false;
            }
            b[k] = (unsigned char) strtoul (h, NULL, 16);
        }
    }
    if (k != 6) {
        return false;
    }
    snprintf (out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2],
              b[3], b[4], b[5]);
    return true;
}

/* 4 or 6 for an address inet_pton accepts, else 0. */
static int
addr_family (const char *a)
{
    unsigned char buf[16];

    if (inet_pton (AF_INET, a, buf) == 1) {
        return 4;
    }
    if (inet_pton (AF_INET6, a, buf) == 1) {
        return 6;
    }
    return 0;
}

static int
parse_uint (const char *s, size_t n, unsigned max, unsigned *v)
{
    unsigned long x = 0;

    if (n == 0 || n > 10) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isdigit ((unsigned char) s[i])) {
            return -1;
        }
        x = x * 10 + (unsigned) (s[i] - '0');
    }
    if (x > max) {
        return -1;
    }
    *v = (unsigned) x;
    return 0;
}

/* A dotted netmask with contiguous ones, or a bare number, as a prefix
 * of the FAMILY; -1 when it is neither. */
static int
mask_prefix (const char *m, int family)
{
    struct in_addr a;
    unsigned p;

    if (parse_uint (m, strlen (m), family == 6 ? 128 : 32, &p) == 0) {
        return (int) p;
    }
    if (family == 4 && inet_pton (AF_INET, m, &a) == 1) {
        uint32_t v = ntohl (a.s_addr);

        for (p = 0; p < 32 && (v & (0x80000000u >> p)) != 0; p++) {
        }
        if (p < 32 && (v << p) != 0) {
            return -1;
        }
        return (int) p;
    }
    return -1;
}

/* The classful prefix of an IPv4 address (ipcalc's default). */
static unsigned
classful (const char *a)
{
    unsigned first = (unsigned) strtoul (a, NULL, 10);

    return first < 128 ? 8 : first < 192 ? 16 : 24;
}

enum { DEF_HOST, DEF_CLASSFUL, DEF_NM, DEF_IFUPDOWN };

/* Add the address S ("A", "A/N") with DEFPREFIX's rule for a missing
 * prefix; MASK (or NULL) a netmask or prefix given apart.  The index of
 * the address, or -1 when it was skipped. */
static int
add_addr (struct net_config *c, struct net_iface *i, const char *s,
          const char *mask, int def)
{
    char a[64];
    const char *slash = strchr (s, '/');
    size_t n = slash != NULL ? (size_t) (slash - s) : strlen (s);
    int fam, prefix = -1;

    if (!set_n (a, sizeof a, s, n) || (fam = addr_family (a)) == 0) {
        c->skipped++;
        return -1;
    }
    if (slash != NULL) {
        prefix = mask_prefix (slash + 1, fam);
    }
    else if (mask != NULL && mask[0] != '\0') {
        prefix = mask_prefix (mask, fam);
    }
    else if (def == DEF_HOST) {
        prefix = fam == 4 ? 32 : 128;
    }
    else if (def == DEF_CLASSFUL) {
        prefix = fam == 4 ? (int) classful (a) : 64;
    }
    else if (def == DEF_IFUPDOWN) {
        prefix = fam == 4 ? (int) classful (a) : 128;
    }
    else {
        prefix = fam == 4 ? 24 : 64;
    }
    if (prefix < 0) {
        c->skipped++;
        return -1;
    }
    for (unsigned k = 0; k < i->naddr; k++) {
        if (strcmp (i->addr[k].addr, a) == 0) {
            i->addr[k].prefix = (unsigned) prefix;
            return (int) k;
        }
    }
    if (i->naddr >= NETCONF_MAX_ADDRS) {
        c->skipped++;
        return -1;
    }
    memcpy (i->addr[i->naddr].addr, a, strlen (a) + 1);
    i->addr[i->naddr].prefix = (unsigned) prefix;
    return (int) i->naddr++;
}

/* A gateway into gateway4 or gateway6, by its family ("%dev" cut). */
static void
set_gateway (struct net_config *c, struct net_iface *i, const char *s)
{
    char g[64];
    size_t n = strcspn (s, "%");
    int fam;

    if (!set_n (g, sizeof g, s, n) || (fam = addr_family (g)) == 0) {
        c->skipped++;
        return;
    }
    memcpy (fam == 4 ? i->gateway4 : i->gateway6, g, strlen (g) + 1);
}

static void
add_dns (struct net_config *c, struct net_iface *i, const char *s, size_t n)
{
    char d[64];

    if (!set_n (d, sizeof d, s, n) || addr_family (d) == 0) {
        c->skipped++;
        return;
    }
    for (unsigned k = 0; k < i->ndns; k++) {
        if (strcmp (i->dns[k], d) == 0) {
            return;
        }
    }
    if (i->ndns >= NETCONF_MAX_DNS) {
        c->skipped++;
        return;
    }
    memcpy (i->dns[i->ndns++], d, strlen (d) + 1);
}

/* Each blank- (or SEPS-) separated word of S as a DNS server. */
static void
add_dns_list (struct net_config *c, struct net_iface *i, const char *s,
              const char *seps)
{
    while (*s != '\0') {
        size_t n;

        s += strspn (s, seps);
        n = strcspn (s, seps);
        if (n > 0) {
            add_dns (c, i, s, n);
        }
        s += n;
    }
}

/* systemd's, netplan's and ifcfg's boolean words; -1 for others. */
static int
parse_bool (const char *s)
{
    static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
    static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

    for (unsigned k = 0; k < 6; k++) {
        if (strcasecmp (s, yes[k]) == 0) {
            return 1;
        }
        if (strcasecmp (s, no[k]) == 0) {
            return 0;
        }
    }
    return -1;
}

/* ---- lines ------------------------------------------------------------ */

struct lines {
    const char *p, *end;
    unsigned lineno;
};

/* The next physical line into BUF (without its newline or a CR before
 * it); *BAD when it was too long or held a NUL (BUF is then "").  False
 * at the end of the text. */
static bool
next_line (struct lines *l, char *buf, size_t cap, bool *bad)
{
    const char *nl;
    size_t n;

    *bad = false;
    buf[0] = '\0';
    if (l->p >= l->end) {
        return false;
    }
    nl = memchr (l->p, '\n', (size_t) (l->end - l->p));
    n = nl != NULL ? (size_t) (nl - l->p) : (size_t) (l->end - l->p);
    l->lineno++;
    if (n > 0 && l->p[n - 1] == '\r') {
        n--;
    }
    if (n >= cap || memchr (l->p, '\0', n) != NULL) {
        *bad = true;
    }
    else {
        memcpy (buf, l->p, n);
        buf[n] = '\0';
    }
    l->p = nl != NULL ? nl + 1 : l->end;
    return true;
}

/* A logical line: physical lines ending in a backslash are joined (the
 * backslash dropped), as in interfaces(5) and udev rules. */
static bool
next_logical (struct lines *l, char *buf, size_t cap, bool *bad)
{
    char part[LINE_MAX_];
    bool pbad;
    size_t n = 0;

    *bad = false;
    buf[0] = '\0';
    for (unsigned k = 0;; k++) {
        size_t pn;

        if (!next_line (l, part, sizeof part, &pbad)) {
            return k > 0;
        }
        *bad |= pbad;
        pn = strlen (part);
        if (pn > 0 && part[pn - 1] == '\\') {
            part[--pn] = '\0';
            if (n + pn < cap) {
                memcpy (buf + n, part, pn + 1);
                n += pn;
            }
            else {
                *bad = true;
            }
            continue;
        }
        if (n + pn < cap) {
            memcpy (buf + n, part, pn + 1);
        }
        else {
            *bad = true;
        }
        if (*bad) {
            buf[0] = '\0';
        }
        return true;
    }
}

static char *
trim (char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    n = strlen (s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
    return s;
}

/* Split S in place into at most MAX blank-separated words. */
static unsigned
split_words (char *s, char **w, unsigned max)
{
    unsigned n = 0;

    while (*s != '\0' && n < max) {
        s += strspn (s, " \t");
        if (*s == '\0') {
            break;
        }
        w[n++] = s;
        s += strcspn (s, " \t");
        if (*s != '\0') {
            *s++ = '\0';
        }
    }
    return n;
}

static const char *
base_name (const char *path)
{
    const char *b = strrchr (path, '/');

    return b != NULL ? b + 1 : path;
}

/* ---- ifupdown --------------------------------------------------------- */

static void
add_include (struct net_config *c, const char *path, const char *pat,
             bool directory)
{
    struct net_include *inc;
    const char *slash = strrchr (path, '/');
    int n;

    if (c->ninc >= NETCONF_MAX_INCLUDES) {
        c->skipped++;
        return;
    }
    inc = &c->inc[c->ninc];
    if (pat[0] == '/' || slash == NULL) {
        n = snprintf (inc->pattern, sizeof inc->pattern, "%s", pat);
    }
    else {
        n = snprintf (inc->pattern, sizeof inc->pattern, "%.*s/%s",
                      (int) (slash - path), path, pat);
    }
    if (n < 0 || (size_t) n >= sizeof inc->pattern) {
        c->skipped++;
        return;
    }
    inc->directory = directory;
    c->ninc++;
}

/* The ifupdown entry for NAME: stanzas for one interface may be spread
 * over inet and inet6 and over sourced files. */
static struct net_iface *
ifupdown_iface (struct net_config *c, const char *path, const char *name,
                int *err)
{
    struct net_iface *i;

    for (size_t k = 0; k < c->n; k++) {
        if (strcmp (c->v[k].tool, "ifupdown") == 0 &&
            strcmp (c->v[k].name, name) == 0) {
            return &c->v[k];
        }
    }
    i = add_iface (c, path, "ifupdown", err);
    if (i != NULL && !set_str (i->name, sizeof i->name, name)) {
        c->n--;
        c->skipped++;
        return NULL;
    }
    return i;
}

/* The stanza being read: its interface and family, the addresses it
 * added without a prefix and its netmask, which may come after them. */
struct stanza {
    struct net_iface *i;
    int family;
    int mask;                       /* prefix from netmask, or -1 */
    unsigned bare;                  /* bit k: addr[k] had no prefix */
};

static void
stanza_end (struct stanza *st)
{
    if (st->i != NULL && st->mask >= 0) {
        for (unsigned k = 0; k < st->i->naddr; k++) {
            unsigned max = strchr (st->i->addr[k].addr, ':') ? 128 : 32;

            if ((st->bare & (1u << k)) != 0 && (unsigned) st->mask <= max) {
                st->i->addr[k].prefix = (unsigned) st->mask;
            }
        }
    }
    memset (st, 0, sizeof *st);
    st->mask = -1;
}

int
netconf_parse_ifupdown (struct net_config *c, const char *path,
                        const char *text, size_t len)
{
    struct lines l = { text, text + len, 0 };
    struct stanza st = { NULL, 0, -1, 0 };
    char *line = malloc (LINE_MAX_);
    int err = 0;
    bool bad;

    if (line == NULL) {
        vmc_error ("netconf: out of memory");
        return -1;
    }
    while (err == 0 && next_logical (&l, line, LINE_MAX_, &bad)) {
        char *w[64], *s = trim (line);
        unsigned nw;

        if (bad) {
            c->skipped++;
            continue;
        }
        if (s[0] == '#' || s[0] == '\0') {
            continue;
        }
        nw = split_words (s, w, 64);
        if (strcmp (w[0], "iface") == 0) {
            char name[32];
            size_t n;

            stanza_end (&st);
            if (nw < 4) {
                c->skipped++;
                continue;
            }
            /* An alias eth0:1 adds its addresses to eth0. */
            n = strcspn (w[1], ":");
            if (!set_n (name, sizeof name, w[1], n)) {
                c->skipped++;
                continue;
            }
            if (strcmp (name, "lo") == 0 || strcmp (w[3], "loopback") == 0) {
                continue;
            }
            if (strcmp (w[2], "inet") != 0 && strcmp (w[2], "inet6") != 0) {
                c->skipped++;
                continue;
            }
            st.i = ifupdown_iface (c, path, name, &err);
            if (st.i == NULL) {
                continue;
            }
            st.family = w[2][4] == '6' ? 6 : 4;
            if (strcmp (w[3], "dhcp") == 0 || strcmp (w[3], "bootp") == 0) {
                *(st.family == 6 ? &st.i->dhcp6 : &st.i->dhcp4) = true;
            }
            else if (strcmp (w[3], "auto") == 0 && st.family == 6) {
                st.i->auto6 = true;
            }
            else if (strcmp (w[3], "manual") == 0) {
                st.i->manual = true;
            }
        }
        else if (strcmp (w[0], "source") == 0 ||
                 strcmp (w[0], "source-directory") == 0) {
            stanza_end (&st);
            for (unsigned k = 1; k < nw; k++) {
                add_include (c, path, w[k], w[0][6] == '-');
            }
        }
        else if (strcmp (w[0], "auto") == 0 ||
                 strncmp (w[0], "allow-", 6) == 0 ||
                 strcmp (w[0], "mapping") == 0 ||
                 strcmp (w[0], "rename") == 0 ||
                 strcmp (w[0], "no-auto-down") == 0 ||
                 strcmp (w[0], "no-scripts") == 0) {
            stanza_end (&st);
        }
        else if (st.i == NULL) {
            /* Options of a skipped stanza (lo, a mapping). */
        }
        else if (strcmp (w[0], "address") == 0 && nw >= 2) {
            int k = add_addr (c, st.i, w[1], NULL, DEF_IFUPDOWN);

            if (k >= 0 && strchr (w[1], '/') == NULL) {
                st.bare |= 1u << k;
            }
        }
        else if (strcmp (w[0], "netmask") == 0 && nw >= 2) {
            st.mask = mask_prefix (w[1], st.family);
            if (st.mask < 0) {
                c->skipped++;
            }
        }
        else if (strcmp (w[0], "gateway") == 0 && nw >= 2) {
            set_gateway (c, st.i, w[1]);
        }
        else if (strcmp (w[0], "dns-nameservers") == 0 ||
                 strcmp (w[0], "dns-nameserver") == 0) {
            for (unsigned k = 1; k < nw; k++) {
                add_dns (c, st.i, w[k], strlen (w[k]));
            }
        }
        else if (strcmp (w[0], "hwaddress") == 0 && nw >= 2) {
            const char *m = nw >= 3 && strcmp (w[1], "ether") == 0 ? w[2]
                                                                   : w[1];

            if (!parse_mac (m, strlen (m), st.i->mac)) {
                c->skipped++;
            }
        }
    }
    stanza_end (&st);
    free (line);
    return err;
}

/* ---- ifcfg ------------------------------------------------------------ */

#define IFCFG_MAX_VARS 256

struct kv {
    char key[40];
    char val[512];
};

/* A shell value: quotes removed ('...' literal; "..." and bare with
 * backslash escapes), ending at an unquoted blank, the rest of the line
 * a comment.  -1 for an unterminated quote or a value too long. */
static int
shell_value (const char *s, char *out, size_t cap)
{
    size_t o = 0;
    char q = 0;

    for (; *s != '\0'; s++) {
        char ch = *s;

        if (q == '\'') {
            if (ch == '\'') {
                q = 0;
                continue;
            }
        }
        else if (q == '"') {
            if (ch == '"') {
                q = 0;
                continue;
            }
            if (ch == '\\' && s[1] != '\0' && strchr ("\"\\$`", s[1])) {
                ch = *++s;
            }
        }
        else {
            if (ch == ' ' || ch == '\t') {
                break;
            }
            if (ch == '\'' || ch == '"') {
                q = ch;
                continue;
            }
            if (ch == '\\' && s[1] != '\0') {
                ch = *++s;
            }
        }
        if (o + 1 >= cap) {
            return -1;
        }
        out[o++] = ch;
    }
    out[o] = '\0';
    return q != 0 ? -1 : 0;
}

/* The last value of KEY, or NULL. */
static const char *
kv_get (const struct kv *v, unsigned n, const char *key)
{
    for (unsigned k = n; k-- > 0;) {
        if (strcmp (v[k].key, key) == 0) {
            return v[k].val;
        }
    }
    return NULL;
}

static bool
kv_last (const struct kv *v, unsigned n, unsigned k)
{
    for (unsigned j = k + 1; j < n; j++) {
        if (strcmp (v[j].key, v[k].key) == 0) {
            return false;
        }
    }
    return true;
}

static bool
kv_yes (const struct kv *v, unsigned n, const char *key, bool def)
{
    const char *s = kv_get (v, n, key);
    int b;

    return s == NULL || (b = parse_bool (s)) == -1 ? def : b == 1;
}

int
netconf_parse_ifcfg (struct net_config *c, const char *path,
                     const char *text, size_t len)
{
    struct lines l = { text, text + len, 0 };
    const bool suse = strstr (path, "sysconfig/network/") != NULL &&
                      strstr (path, "network-scripts") == NULL;
    const char *base = base_name (path), *s;
    struct kv *v = malloc (IFCFG_MAX_VARS * sizeof *v);
    char *line = malloc (LINE_MAX_), name[32] = "";
    struct net_iface *i;
    unsigned n = 0;
    int err = 0;
    bool bad;

    if (v == NULL || line == NULL) {
        vmc_error ("netconf: out of memory");
        free (v);
        free (line);
        return -1;
    }
    while (next_line (&l, line, LINE_MAX_, &bad)) {
        char *t = trim (line), *eq;
        size_t kn;

        if (bad) {
            c->skipped++;
            continue;
        }
        if (strncmp (t, "export ", 7) == 0) {
            t = trim (t + 7);
        }
        if (t[0] == '#' || t[0] == '\0') {
            continue;
        }
        eq = strchr (t, '=');
        kn = eq != NULL ? (size_t) (eq - t) : 0;
        if (kn == 0 || kn >= sizeof v[0].key || n >= IFCFG_MAX_VARS ||
            strspn (t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789_") != kn ||
            shell_value (eq + 1, v[n].val, sizeof v[n].val) == -1) {
            c->skipped++;
            continue;
        }
        memcpy (v[n].key, t, kn);
        v[n].key[kn] = '\0';
        n++;
    }

    /* The name: DEVICE=, else the file's name after "ifcfg-". */
    s = kv_get (v, n, "DEVICE");
    if (s == NULL || s[0] == '\0') {
        s = strncmp (base, "ifcfg-", 6) == 0 ? base + 6 : "";
    }
    if (!set_str (name, sizeof name, s) || strcmp (name, "lo") == 0 ||
        ((s = kv_get (v, n, "TYPE")) != NULL &&
         strcasecmp (s, "Loopback") == 0)) {
        goto out;
    }
    i = add_iface (c, path, "ifcfg", &err);
    if (i == NULL) {
        goto out;
    }
    memcpy (i->name, name, strlen (name) + 1);
    /* HWADDR matches the NIC; MACADDR (and SUSE's LLADDR) set one. */
    if (((s = kv_get (v, n, "HWADDR")) != NULL && s[0] != '\0') ||
        ((s = kv_get (v, n, "MACADDR")) != NULL && s[0] != '\0') ||
        ((s = kv_get (v, n, "LLADDR")) != NULL && s[0] != '\0')) {
        if (!parse_mac (s, strlen (s), i->mac)) {
            c->skipped++;
        }
    }
    s = kv_get (v, n, "BOOTPROTO");
    if (s != NULL) {
        if (strcasecmp (s, "dhcp") == 0) {
            /* SUSE's dhcp is both families; Red Hat's only IPv4. */
            i->dhcp4 = true;
            i->dhcp6 = suse;
        }
        else if (strcasecmp (s, "bootp") == 0 ||
                 strcasecmp (s, "dhcp4") == 0) {
            i->dhcp4 = true;
        }
        else if (strcasecmp (s, "dhcp6") == 0) {
            i->dhcp6 = true;
        }
        else if (strcasecmp (s, "dhcp+autoip") == 0) {
            i->dhcp4 = true;
        }
    }
    /* IPADDR, IPADDR0.., IPADDR_x: each with the PREFIX, PREFIXLEN or
     * NETMASK of the same suffix. */
    for (unsigned k = 0; k < n; k++) {
        char key[64];
        const char *suffix, *mask;

        if (strncmp (v[k].key, "IPADDR", 6) != 0 || !kv_last (v, n, k) ||
            v[k].val[0] == '\0') {
            continue;
        }
        suffix = v[k].key + 6;
        snprintf (key, sizeof key, "PREFIX%s", suffix);
        mask = kv_get (v, n, key);
        if (mask == NULL) {
            snprintf (key, sizeof key, "PREFIXLEN%s", suffix);
            mask = kv_get (v, n, key);
        }
        if (mask == NULL) {
            snprintf (key, sizeof key, "NETMASK%s", suffix);
            mask = kv_get (v, n, key);
        }
        add_addr (c, i, v[k].val, mask, DEF_CLASSFUL);
    }
    if ((s = kv_get (v, n, "GATEWAY")) != NULL && s[0] != '\0') {
        set_gateway (c, i, s);
    }
    for (unsigned d = 1; d <= 9; d++) {
        char key[8];

        snprintf (key, sizeof key, "DNS%u", d);
        if ((s = kv_get (v, n, key)) != NULL && s[0] != '\0') {
            add_dns (c, i, s, strlen (s));
        }
    }
    if (kv_yes (v, n, "IPV6INIT", false)) {
        if (kv_yes (v, n, "DHCPV6C", false)) {
            i->dhcp6 = true;
        }
        else if (kv_yes (v, n, "IPV6_AUTOCONF",
                         !kv_yes (v, n, "IPV6FORWARDING", false))) {
            i->auto6 = true;
        }
        if ((s = kv_get (v, n, "IPV6ADDR")) != NULL && s[0] != '\0') {
            add_addr (c, i, s, NULL, DEF_CLASSFUL);
        }
        if ((s = kv_get (v, n, "IPV6ADDR_SECONDARIES")) != NULL) {
            char buf[512], *w[NETCONF_MAX_ADDRS];
            unsigned nw;

            snprintf (buf, sizeof buf, "%s", s);
            nw = split_words (buf, w, NETCONF_MAX_ADDRS);
            for (unsigned k = 0; k < nw; k++) {
                add_addr (c, i, w[k], NULL, DEF_CLASSFUL);
            }
        }
        if ((s = kv_get (v, n, "IPV6_DEFAULTGW")) != NULL && s[0] != '\0') {
            set_gateway (c, i, s);
        }
    }
    if (!i->dhcp4 && !i->dhcp6 && !i->auto6 && i->naddr == 0) {
        i->manual = true;
    }
out:
    free (v);
    free (line);
    return err;
}

/* ---- INI files: NetworkManager keyfiles, .network, .link -------------- */

/* Each section and key=value of an INI file: SECTION is the current
 * section's name ("" before the first), KEY and VALUE trimmed. */
struct ini {
    void (*kv) (struct ini *, const char *section, const char *key,
                char *value);
    void (*section_end) (struct ini *, const char *section);
    struct net_config *c;
};

static int
ini_parse (struct ini *ini, const char *text, size_t len, bool systemd)
{
    struct lines l = { text, text + len, 0 };
    char *line = malloc (LINE_MAX_), section[64] = "";
    bool bad, skip_section = false;

    if (line == NULL) {
        vmc_error ("netconf: out of memory");
        return -1;
    }
    /* systemd joins lines ending in a backslash; GLib's keyfiles do
     * not. */
    while (systemd ? next_logical (&l, line, LINE_MAX_, &bad)
                   : next_line (&l, line, LINE_MAX_, &bad)) {
        char *t = trim (line), *eq;

        if (bad) {
            ini->c->skipped++;
            continue;
        }
        if (t[0] == '#' || (systemd && t[0] == ';') || t[0] == '\0') {
            continue;
        }
        if (t[0] == '[') {
            char *close = strchr (t, ']');

            if (ini->section_end != NULL && !skip_section) {
                ini->section_end (ini, section);
            }
            skip_section = close == NULL ||
                           !set_n (section, sizeof section, t + 1,
                                   (size_t) (close - t - 1));
            if (skip_section) {
                ini->c->skipped++;
                section[0] = '\0';
            }
            continue;
        }
        eq = strchr (t, '=');
        if (eq == NULL || skip_section) {
            ini->c->skipped++;
            continue;
        }
        *eq = '\0';
        ini->kv (ini, section, trim (t), trim (eq + 1));
    }
    if (ini->section_end != NULL && !skip_section) {
        ini->section_end (ini, section);
    }
    free (line);
    return 0;
}

/* NetworkManager keyfile state. */
struct nm {
    struct ini ini;
    struct net_iface i;
    char type[32];
    char method4[16], method6[16];
    char gw4[64], gw6[64];          /* from addressN=A/N,GW */
};

/* GLib keyfile escapes, in place. */
static void
glib_unescape (char *s)
{
    char *o = s;

    for (; *s != '\0'; s++) {
        if (*s == '\\' && s[1] != '\0') {
            s++;
            switch (*s) {
            case 's': *o++ = ' '; break;
            case 't': *o++ = '\t'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            default: *o++ = *s; break;
            }
            continue;
        }
        *o++ = *s;
    }
    *o = '\0';
}

/* The old keyfile MAC, a list of six decimal bytes "82;84;0;18;52;86;". */
static bool
nm_byte_list_mac (const char *s, char out[18])
{
    unsigned b[6], k = 0;

    while (*s != '\0' && k < 6) {
        size_t n = strcspn (s, ";");

        if (parse_uint (s, n, 255, &b[k]) == -1) {
            return false;
        }
        k++;
        s += n;
        s += *s == ';';
    }
    if (k != 6 || *s != '\0') {
        return false;
    }
    snprintf (out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2],
              b[3], b[4], b[5]);
    return true;
}

/* addressN / addressesN: "A/N,GW" items separated by ';', or the old
 * integer form "A;N;GW;". */
static void
nm_addresses (struct nm *nm, int family, char *v)
{
    char *tok[3 * NETCONF_MAX_ADDRS];
    unsigned nt = 0;

    while (*v != '\0' && nt < 3 * NETCONF_MAX_ADDRS) {
        size_t n = strcspn (v, ";");

        tok[nt++] = v;
        v += n;
        if (*v == ';') {
            *v++ = '\0';
        }
    }
    for (unsigned k = 0; k < nt; k++) {
        char *a = trim (tok[k]), *comma = strchr (a, ',');
        unsigned p;

        if (a[0] == '\0') {
            continue;
        }
        if (comma != NULL) {
            *comma = '\0';
            set_str (family == 6 ? nm->gw6 : nm->gw4, sizeof nm->gw4,
                     trim (comma + 1));
        }
        if (strchr (a, '/') == NULL && k + 1 < nt &&
            parse_uint (tok[k + 1], strlen (tok[k + 1]), 128, &p) == 0) {
            char buf[80];

            snprintf (buf, sizeof buf, "%.63s/%u", a, p);
            add_addr (nm->ini.c, &nm->i, buf, NULL, DEF_NM);
            k++;
            if (k + 1 < nt && addr_family (tok[k + 1]) != 0) {
                set_str (family == 6 ? nm->gw6 : nm->gw4, sizeof nm->gw4,
                         tok[k + 1]);
                k++;
            }
            continue;
        }
        add_addr (nm->ini.c, &nm->i, a, NULL, DEF_NM);
    }
}

static bool
is_section (const char *s, const char *a, const char *b)
{
    return strcmp (s, a) == 0 || (b != NULL && strcmp (s, b) == 0);
}

static bool
key_numbered (const char *key, const char *stem)
{
    size_t n = strlen (stem);

    return strncmp (key, stem, n) == 0 &&
           strspn (key + n, "0123456789") == strlen (key + n);
}

static void
nm_kv (struct ini *ini, const char *section, const char *key, char *v)
{
    struct nm *nm = (struct nm *) ini;
    struct net_config *c = ini->c;
    int family;

    glib_unescape (v);
    if (strcmp (section, "connection") == 0) {
        if (strcmp (key, "interface-name") == 0 &&
            !set_str (nm->i.name, sizeof nm->i.name, v)) {
            c->skipped++;
        }
        else if (strcmp (key, "type") == 0) {
            set_str (nm->type, sizeof nm->type, v);
        }
        return;
    }
    if (is_section (section, "ethernet", "802-3-ethernet")) {
        if (strcmp (key, "mac-address") == 0) {
            size_t n = strlen (v);

            while (n > 0 && v[n - 1] == ';') {
                n--;
            }
            if (!parse_mac (v, n, nm->i.mac) &&
                !nm_byte_list_mac (v, nm->i.mac)) {
                c->skipped++;
            }
        }
        return;
    }
    if (strcmp (section, "ipv4") == 0) {
        family = 4;
    }
    else if (strcmp (section, "ipv6") == 0) {
        family = 6;
    }
    else {
        return;
    }
    if (strcmp (key, "method") == 0) {
        set_str (family == 4 ? nm->method4 : nm->method6, sizeof nm->method4,
                 v);
    }
    else if (key_numbered (key, "address") ||
             key_numbered (key, "addresses")) {
        nm_addresses (nm, family, v);
    }
    else if (strcmp (key, "gateway") == 0) {
        set_gateway (c, &nm->i, v);
    }
    else if (strcmp (key, "dns") == 0) {
        add_dns_list (c, &nm->i, v, "; ,");
    }
}

int
netconf_parse_nm_keyfile (struct net_config *c, const char *path,
                          const char *text, size_t len)
{
    struct nm *nm = calloc (1, sizeof *nm);
    struct net_iface *i;
    int err = 0;

    if (nm == NULL) {
        vmc_error ("netconf: out of memory");
        return -1;
    }
    nm->ini.kv = nm_kv;
    nm->ini.c = c;
    if (ini_parse (&nm->ini, text, len, false) == -1) {
        free (nm);
        return -1;
    }
    if (strcmp (nm->type, "loopback") == 0 ||
        strcmp (nm->i.name, "lo") == 0) {
        goto out;
    }
    if (nm->i.gateway4[0] == '\0' && nm->gw4[0] != '\0') {
        set_gateway (c, &nm->i, nm->gw4);
    }
    if (nm->i.gateway6[0] == '\0' && nm->gw6[0] != '\0') {
        set_gateway (c, &nm->i, nm->gw6);
    }
    /* method=auto is DHCP for IPv4 and router advertisements (with
     * DHCPv6 when they say so) for IPv6. */
    nm->i.dhcp4 = strcmp (nm->method4, "auto") == 0;
    nm->i.auto6 = strcmp (nm->method6, "auto") == 0;
    nm->i.dhcp6 = strcmp (nm->method6, "dhcp") == 0;
    nm->i.manual = strcmp (nm->method4, "disabled") == 0 &&
                   !nm->i.auto6 && !nm->i.dhcp6 && nm->i.naddr == 0;
    i = add_iface (c, path, "networkmanager", &err);
    if (i != NULL) {
        memcpy (nm->i.source, i->source, sizeof i->source);
        memcpy (nm->i.tool, i->tool, sizeof i->tool);
        *i = nm->i;
    }
out:
    free (nm);
    return err;
}

/* systemd-networkd .network and .link state. */
#define ND_MAX_MACS 8

struct nd {
    struct ini ini;
    struct net_iface i;
    char macs[ND_MAX_MACS][18];
    unsigned nmacs;
    char name[64];                  /* [Match] Name= words */
    char link_name[32];             /* [Link] Name= */
    char route_gw[64], route_dst[64];
};

static void
nd_macs (struct nd *nd, char *v)
{
    char *w[32];
    unsigned nw = split_words (v, w, 32);

    /* An empty assignment resets the list. */
    if (nw == 0) {
        nd->nmacs = 0;
    }
    for (unsigned k = 0; k < nw; k++) {
        if (nd->nmacs >= ND_MAX_MACS ||
            !parse_mac (w[k], strlen (w[k]), nd->macs[nd->nmacs])) {
            nd->ini.c->skipped++;
            continue;
        }
        nd->nmacs++;
    }
}

static void
nd_route_end (struct ini *ini, const char *section)
{
    struct nd *nd = (struct nd *) ini;

    if (strcmp (section, "Route") == 0 && nd->route_gw[0] != '\0' &&
        (nd->route_dst[0] == '\0' || strcmp (nd->route_dst, "0.0.0.0/0") == 0
         || strcmp (nd->route_dst, "::/0") == 0)) {
        set_gateway (ini->c, &nd->i, nd->route_gw);
    }
    nd->route_gw[0] = nd->route_dst[0] = '\0';
}

static void
nd_kv (struct ini *ini, const char *section, const char *key, char *v)
{
    struct nd *nd = (struct nd *) ini;
    struct net_config *c = ini->c;

    if (strcmp (section, "Match") == 0) {
        if (strcmp (key, "MACAddress") == 0 ||
            strcmp (key, "PermanentMACAddress") == 0) {
            nd_macs (nd, v);
        }
        else if (strcmp (key, "Name") == 0) {
            size_t n = strlen (nd->name);

            if (v[0] == '\0') {
                nd->name[0] = '\0';
            }
            else if (n + strlen (v) + 2 > sizeof nd->name) {
                c->skipped++;
            }
            else {
                snprintf (nd->name + n, sizeof nd->name - n, "%s%s",
                          n > 0 ? " " : "", v);
            }
        }
    }
    else if (strcmp (section, "Network") == 0) {
        if (strcmp (key, "Address") == 0) {
            add_addr (c, &nd->i, v, NULL, DEF_HOST);
        }
        else if (strcmp (key, "Gateway") == 0) {
            set_gateway (c, &nd->i, v);
        }
        else if (strcmp (key, "DNS") == 0) {
            add_dns_list (c, &nd->i, v, " \t");
        }
        else if (strcmp (key, "DHCP") == 0) {
            int b = parse_bool (v);

            nd->i.dhcp4 = b == 1 || strcmp (v, "ipv4") == 0 ||
                          strcmp (v, "both") == 0;
            nd->i.dhcp6 = b == 1 || strcmp (v, "ipv6") == 0 ||
                          strcmp (v, "both") == 0;
        }
        else if (strcmp (key, "IPv6AcceptRA") == 0) {
            nd->i.auto6 = parse_bool (v) == 1;
        }
    }
    else if (strcmp (section, "Address") == 0 &&
             strcmp (key, "Address") == 0) {
        add_addr (c, &nd->i, v, NULL, DEF_HOST);
    }
    else if (strcmp (section, "Route") == 0) {
        if (strcmp (key, "Gateway") == 0) {
            set_str (nd->route_gw, sizeof nd->route_gw, v);
        }
        else if (strcmp (key, "Destination") == 0) {
            set_str (nd->route_dst, sizeof nd->route_dst, v);
        }
    }
    else if (strcmp (section, "Link") == 0 && strcmp (key, "Name") == 0) {
        if (!set_str (nd->link_name, sizeof nd->link_name, v)) {
            c->skipped++;
        }
    }
}

/* One entry per MAC (or one without): I's configuration with NAME. */
static int
nd_emit (struct nd *nd, const char *path, const char *tool)
{
    struct net_config *c = nd->ini.c;
    unsigned n = nd->nmacs > 0 ? nd->nmacs : 1;
    int err = 0;

    if (strlen (nd->name) >= sizeof nd->i.name) {
        c->skipped++;
        return 0;
    }
    for (unsigned k = 0; k < n; k++) {
        struct net_iface *i = add_iface (c, path, tool, &err);

        if (i == NULL) {
            break;
        }
        memcpy (nd->i.source, i->source, sizeof i->source);
        memcpy (nd->i.tool, i->tool, sizeof i->tool);
        *i = nd->i;
        memcpy (i->name, nd->name, strlen (nd->name) + 1);
        if (nd->nmacs > 0) {
            memcpy (i->mac, nd->macs[k], sizeof i->mac);
        }
    }
    return err;
}

int
netconf_parse_networkd (struct net_config *c, const char *path,
                        const char *text, size_t len)
{
    struct nd *nd = calloc (1, sizeof *nd);
    int r = -1;

    if (nd == NULL) {
        vmc_error ("netconf: out of memory");
        return -1;
    }
    nd->ini.kv = nd_kv;
    nd->ini.section_end = nd_route_end;
    nd->ini.c = c;
    if (ini_parse (&nd->ini, text, len, true) == 0) {
        r = 0;
        /* A .network that matches nothing names no interface of ours. */
        if (nd->name[0] != '\0' || nd->nmacs > 0) {
            r = nd_emit (nd, path, "networkd");
        }
    }
    free (nd);
    return r;
}

int
netconf_parse_link (struct net_config *c, const char *path,
                    const char *text, size_t len)
{
    struct nd *nd = calloc (1, sizeof *nd);
    int r = -1;

    if (nd == NULL) {
        vmc_error ("netconf: out of memory");
        return -1;
    }
    nd->ini.kv = nd_kv;
    nd->ini.c = c;
    if (ini_parse (&nd->ini, text, len, true) == 0) {
        r = 0;
        if (nd->link_name[0] != '\0') {
            /* Only the name and the MAC: the rest of nd->i is the
             * [Network] of a .network, which a .link has not. */
            memset (&nd->i, 0, sizeof nd->i);
            memcpy (nd->name, nd->link_name, sizeof nd->link_name);
            r = nd_emit (nd, path, "link");
        }
    }
    free (nd);
    return r;
}

/* ---- udev rules ------------------------------------------------------- */

/* One KEY OP "VALUE" of a rule line at *P: false at the end of the line
 * or when the rest is malformed. */
static bool
udev_token (const char **p, char *key, size_t kcap, char *op, char *val,
            size_t vcap)
{
    const char *s = *p, *k;
    size_t n = 0;

    s += strspn (s, " \t,");
    if (*s == '\0' || *s == '#') {
        return false;
    }
    k = s;
    while (*s != '\0' && !strchr ("=!+-:", *s) && *s != ' ' && *s != '\t') {
        if (*s == '{') {
            s += strcspn (s, "}");
            if (*s == '\0') {
                return false;
            }
        }
        s++;
    }
    if ((size_t) (s - k) >= kcap || s == k) {
        return false;
    }
    memcpy (key, k, (size_t) (s - k));
    key[s - k] = '\0';
    s += strspn (s, " \t");
    if (s[0] == '=' && s[1] == '=') {
        memcpy (op, "==", 3);
    }
    else if (s[0] != '\0' && strchr ("!+-:", s[0]) && s[1] == '=') {
        op[0] = s[0];
        op[1] = '=';
        op[2] = '\0';
    }
    else if (s[0] == '=') {
        memcpy (op, "=", 2);
    }
    else {
        return false;
    }
    s += strlen (op);
    s += strspn (s, " \t");
    if (*s != '"') {
        return false;
    }
    for (s++; *s != '"'; s++) {
        if (*s == '\0') {
            return false;
        }
        if (*s == '\\' && (s[1] == '"' || s[1] == '\\')) {
            s++;
        }
        if (n + 1 >= vcap) {
            return false;
        }
        val[n++] = *s;
    }
    val[n] = '\0';
    *p = s + 1;
    return true;
}

int
netconf_parse_udev_rules (struct net_config *c, const char *path,
                          const char *text, size_t len)
{
    struct lines l = { text, text + len, 0 };
    char *line = malloc (LINE_MAX_);
    int err = 0;
    bool bad;

    if (line == NULL) {
        vmc_error ("netconf: out of memory");
        return -1;
    }
    while (err == 0 && next_logical (&l, line, LINE_MAX_, &bad)) {
        const char *p = trim (line);
        char key[64], op[3], val[256], name[32] = "", mac[18] = "";
        bool net = false, other = false, ok = true;
        struct net_iface *i;

        if (bad) {
            c->skipped++;
            continue;
        }
        if (*p == '#' || *p == '\0') {
            continue;
        }
        while (udev_token (&p, key, sizeof key, op, val, sizeof val)) {
            if (strcmp (key, "SUBSYSTEM") == 0 && strcmp (op, "==") == 0) {
                net = strcmp (val, "net") == 0;
                other = !net;
            }
            else if ((strcmp (key, "ATTR{address}") == 0 ||
                      strcmp (key, "ATTRS{address}") == 0) &&
                     strcmp (op, "==") == 0) {
                ok &= parse_mac (val, strlen (val), mac);
            }
            else if (strcmp (key, "NAME") == 0 &&
                     (strcmp (op, "=") == 0 || strcmp (op, ":=") == 0)) {
                ok &= set_str (name, sizeof name, val) &&
                      strcspn (val, "$%*?[") == strlen (val);
            }
        }
        p += strspn (p, " \t,");
        if (*p != '\0' && *p != '#') {
            c->skipped++;
            continue;
        }
        /* A rule naming an interface by its MAC; without SUBSYSTEM it
         * still can only be a network interface when it sets NAME. */
        if (other || name[0] == '\0' || mac[0] == '\0' || !ok) {
            if (!ok) {
                c->skipped++;
            }
            continue;
        }
        (void) net;
        i = add_iface (c, path, "udev-rule", &err);
        if (i != NULL) {
            memcpy (i->name, name, sizeof name);
            memcpy (i->mac, mac, sizeof mac);
        }
    }
    free (line);
    return err;
}

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
    if (key != NULL && !set_n (n->key, sizeof n->key, key, klen)) {
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
    if (set_n (y->n[k].val, sizeof y->n[k].val, s, n)) {
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

                    if (!set_n (kcopy, sizeof kcopy, ks, kl)) {
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
    while (next_line (&l, line, LINE_MAX_, &bad)) {
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

    return s != NULL && parse_bool (s) == 1;
}

/* One interface of netplan's network: ID is its node. */
static int
netplan_iface (struct yaml *y, int id, const char *path)
{
    struct net_config *c = y->c;
    int match = y_get (y, id, "match"), k, err = 0;
    const char *s, *name = y->n[id].key;
    struct net_iface *i = add_iface (c, path, "netplan", &err);

    if (i == NULL) {
        return err;
    }
    if (match >= 0) {
        name = y_str (y, match, "name");
        if (name == NULL) {
            name = "";
        }
        if ((s = y_str (y, match, "macaddress")) != NULL &&
            !parse_mac (s, strlen (s), i->mac)) {
            c->skipped++;
        }
    }
    if ((s = y_str (y, id, "set-name")) != NULL) {
        name = s;
    }
    if (!set_str (i->name, sizeof i->name, name)) {
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
            add_addr (c, i, v, NULL, DEF_HOST);
        }
    }
    if ((s = y_str (y, id, "gateway4")) != NULL) {
        set_gateway (c, i, s);
    }
    if ((s = y_str (y, id, "gateway6")) != NULL) {
        set_gateway (c, i, s);
    }
    k = y_get (y, id, "routes");
    if (k >= 0 && y->n[k].type == Y_SEQ) {
        for (int r = y->n[k].child; r >= 0; r = y->n[r].next) {
            const char *to = y_str (y, r, "to"), *via = y_str (y, r, "via");

            if (to != NULL && via != NULL &&
                (strcmp (to, "default") == 0 || strcmp (to, "0.0.0.0/0") == 0
                 || strcmp (to, "::/0") == 0)) {
                set_gateway (c, i, via);
            }
        }
    }
    k = y_get (y, y_get (y, id, "nameservers"), "addresses");
    if (k >= 0 && y->n[k].type == Y_SEQ) {
        for (int d = y->n[k].child; d >= 0; d = y->n[d].next) {
            if (y->n[d].type == Y_SCALAR) {
                add_dns (c, i, y->n[d].val, strlen (y->n[d].val));
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

/* ---- lookups and JSON ------------------------------------------------- */

const char *
netconf_mac_of (const struct net_config *c, const char *name)
{
    for (size_t k = 0; k < c->n; k++) {
        if (c->v[k].mac[0] != '\0' && c->v[k].name[0] != '\0' &&
            strcmp (c->v[k].name, name) == 0) {
            return c->v[k].mac;
        }
    }
    return NULL;
}

const char *
netconf_name_of (const struct net_config *c, const char *mac)
{
    char m[18];

    if (!parse_mac (mac, strlen (mac), m)) {
        return NULL;
    }
    for (size_t k = 0; k < c->n; k++) {
        if (c->v[k].name[0] != '\0' && strcmp (c->v[k].mac, m) == 0 &&
            strcspn (c->v[k].name, "*?[ !") == strlen (c->v[k].name)) {
            return c->v[k].name;
        }
    }
    return NULL;
}

void
netconf_merge (struct net_config *c)
{
    for (size_t k = 0; k < c->n; k++) {
        struct net_iface *i = &c->v[k];
        const char *s;

        if (i->mac[0] == '\0' && i->name[0] != '\0' &&
            (s = netconf_mac_of (c, i->name)) != NULL) {
            memcpy (i->mac, s, sizeof i->mac);
        }
        else if (i->name[0] == '\0' && i->mac[0] != '\0' &&
                 (s = netconf_name_of (c, i->mac)) != NULL) {
            memcpy (i->name, s, strlen (s) + 1);
        }
    }
}

static void
json_bool (FILE *fp, const char *key, bool v)
{
    fprintf (fp, ", \"%s\": %s", key, v ? "true" : "false");
}

static void
json_kv (FILE *fp, const char *key, const char *v, bool first)
{
    fprintf (fp, "%s\"%s\": ", first ? "" : ", ", key);
    json_string (fp, v);
}

void
netconf_iface_json (FILE *fp, const struct net_iface *i)
{
    fputc ('{', fp);
    json_kv (fp, "name", i->name, true);
    json_kv (fp, "mac", i->mac, false);
    json_kv (fp, "tool", i->tool, false);
    json_kv (fp, "source", i->source, false);
    json_bool (fp, "dhcp4", i->dhcp4);
    json_bool (fp, "dhcp6", i->dhcp6);
    json_bool (fp, "auto6", i->auto6);
    json_bool (fp, "manual", i->manual);
    fputs (", \"addresses\": [", fp);
    for (unsigned k = 0; k < i->naddr && k < NETCONF_MAX_ADDRS; k++) {
        char a[80];

        snprintf (a, sizeof a, "%s/%u", i->addr[k].addr, i->addr[k].prefix);
        if (k > 0) {
            fputs (", ", fp);
        }
        json_string (fp, a);
    }
    fputc (']', fp);
    json_kv (fp, "gateway4", i->gateway4, false);
    json_kv (fp, "gateway6", i->gateway6, false);
    fputs (", \"dns\": [", fp);
    for (unsigned k = 0; k < i->ndns && k < NETCONF_MAX_DNS; k++) {
        if (k > 0) {
            fputs (", ", fp);
        }
        json_string (fp, i->dns[k]);
    }
    fputs ("]}", fp);
}
