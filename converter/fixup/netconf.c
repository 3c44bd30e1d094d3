/* SPDX-License-Identifier: MIT */
/*
 * Parsers of Linux network configuration into one model (netconf.h).
 * Written from the formats' documentation: interfaces(5) of ifupdown
 * 0.8, the ifcfg variables of initscripts' sysconfig.txt and SUSE's
 * ifcfg(5), nm-settings-keyfile(5), netplan's YAML reference,
 * systemd.network(5) and systemd.link(5), and udev(7) for rules.
 *
 * This file holds the model, the helpers the parsers share
 * (netconf-int.h), the lookups and the JSON.  Each format has a file of
 * its own: netconf-ifupdown.c, netconf-ifcfg.c, netconf-ini.c
 * (NetworkManager keyfiles, .network and .link files), netconf-udev.c
 * and netconf-netplan.c.
 *
 * Every file is hostile.  Lines are read one at a time into a bounded
 * buffer (longer lines, and lines holding NUL bytes, are skipped); values
 * that do not fit their field, addresses inet_pton refuses and MACs that
 * are not six octets are skipped; counts are capped (NETCONF_MAX_*); the
 * YAML parser has no recursion past YAML_MAX_DEPTH and a node cap.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/error.h"
#include "../lib/json.h"
#include "netconf-int.h"

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
bool
nc_set_n (char *dst, size_t cap, const char *s, size_t n)
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

bool
nc_set_str (char *dst, size_t cap, const char *s)
{
    return nc_set_n (dst, cap, s, strlen (s));
}

/* A new entry of TOOL from PATH, or NULL (*ERR set on memory errors,
 * c->skipped counted when the cap is reached). */
struct net_iface *
nc_add_iface (struct net_config *c, const char *path, const char *tool,
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
    if (!nc_set_str (i->source, sizeof i->source, path)) {
        /* A path too long to record is cut, not fatal: it only says
         * where the entry came from. */
        snprintf (i->source, sizeof i->source, "%.*s",
                  (int) sizeof i->source - 1, path);
    }
    nc_set_str (i->tool, sizeof i->tool, tool);
    return i;
}

/* Lower-case xx:xx:xx:xx:xx:xx from colon-, hyphen- or dot-delimited
 * hexadecimal (systemd.link(5) accepts all three). */
bool
nc_parse_mac (const char *s, size_t n, char out[18])
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
int
nc_addr_family (const char *a)
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

int
nc_parse_uint (const char *s, size_t n, unsigned max, unsigned *v)
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
int
nc_mask_prefix (const char *m, int family)
{
    struct in_addr a;
    unsigned p;

    if (nc_parse_uint (m, strlen (m), family == 6 ? 128 : 32, &p) == 0) {
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

/* Add the address S ("A", "A/N") with DEFPREFIX's rule for a missing
 * prefix; MASK (or NULL) a netmask or prefix given apart.  The index of
 * the address, or -1 when it was skipped. */
int
nc_add_addr (struct net_config *c, struct net_iface *i, const char *s,
             const char *mask, int def)
{
    char a[64];
    const char *slash = strchr (s, '/');
    size_t n = slash != NULL ? (size_t) (slash - s) : strlen (s);
    int fam, prefix = -1;

    if (!nc_set_n (a, sizeof a, s, n) || (fam = nc_addr_family (a)) == 0) {
        c->skipped++;
        return -1;
    }
    if (slash != NULL) {
        prefix = nc_mask_prefix (slash + 1, fam);
    }
    else if (mask != NULL && mask[0] != '\0') {
        prefix = nc_mask_prefix (mask, fam);
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
void
nc_set_gateway (struct net_config *c, struct net_iface *i, const char *s)
{
    char g[64];
    size_t n = strcspn (s, "%");
    int fam;

    if (!nc_set_n (g, sizeof g, s, n) || (fam = nc_addr_family (g)) == 0) {
        c->skipped++;
        return;
    }
    memcpy (fam == 4 ? i->gateway4 : i->gateway6, g, strlen (g) + 1);
}

void
nc_add_dns (struct net_config *c, struct net_iface *i, const char *s, size_t n)
{
    char d[64];

    if (!nc_set_n (d, sizeof d, s, n) || nc_addr_family (d) == 0) {
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
void
nc_add_dns_list (struct net_config *c, struct net_iface *i, const char *s,
                 const char *seps)
{
    while (*s != '\0') {
        size_t n;

        s += strspn (s, seps);
        n = strcspn (s, seps);
        if (n > 0) {
            nc_add_dns (c, i, s, n);
        }
        s += n;
    }
}

/* systemd's, netplan's and ifcfg's boolean words; -1 for others. */
int
nc_parse_bool (const char *s)
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

/* The next physical line into BUF (without its newline or a CR before
 * it); *BAD when it was too long or held a NUL (BUF is then "").  False
 * at the end of the text. */
bool
nc_next_line (struct lines *l, char *buf, size_t cap, bool *bad)
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
bool
nc_next_logical (struct lines *l, char *buf, size_t cap, bool *bad)
{
    char part[LINE_MAX_];
    bool pbad;
    size_t n = 0;

    *bad = false;
    buf[0] = '\0';
    for (unsigned k = 0;; k++) {
        size_t pn;

        if (!nc_next_line (l, part, sizeof part, &pbad)) {
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

char *
nc_trim (char *s)
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
unsigned
nc_split_words (char *s, char **w, unsigned max)
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

    if (!nc_parse_mac (mac, strlen (mac), m)) {
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
