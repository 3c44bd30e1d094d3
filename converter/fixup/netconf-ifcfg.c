/* SPDX-License-Identifier: MIT */
/*
 * ifcfg-NAME files of Red Hat (network-scripts) and SUSE
 * (sysconfig/network), into the model of netconf.h: the name comes from
 * DEVICE=, or else from the file's name.  Written from the ifcfg
 * variables of initscripts' sysconfig.txt and SUSE's ifcfg(5); an
 * address without a prefix gets ipcalc's default (its class for IPv4, 64
 * for IPv6), as initscripts and NetworkManager apply it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/error.h"
#include "netconf-int.h"

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

    return s == NULL || (b = nc_parse_bool (s)) == -1 ? def : b == 1;
}

static const char *
base_name (const char *path)
{
    const char *b = strrchr (path, '/');

    return b != NULL ? b + 1 : path;
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
    while (nc_next_line (&l, line, LINE_MAX_, &bad)) {
        char *t = nc_trim (line), *eq;
        size_t kn;

        if (bad) {
            c->skipped++;
            continue;
        }
        if (strncmp (t, "export ", 7) == 0) {
            t = nc_trim (t + 7);
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
    if (!nc_set_str (name, sizeof name, s) || strcmp (name, "lo") == 0 ||
        ((s = kv_get (v, n, "TYPE")) != NULL &&
         strcasecmp (s, "Loopback") == 0)) {
        goto out;
    }
    i = nc_add_iface (c, path, "ifcfg", &err);
    if (i == NULL) {
        goto out;
    }
    memcpy (i->name, name, strlen (name) + 1);
    /* HWADDR matches the NIC; MACADDR (and SUSE's LLADDR) set one. */
    if (((s = kv_get (v, n, "HWADDR")) != NULL && s[0] != '\0') ||
        ((s = kv_get (v, n, "MACADDR")) != NULL && s[0] != '\0') ||
        ((s = kv_get (v, n, "LLADDR")) != NULL && s[0] != '\0')) {
        if (!nc_parse_mac (s, strlen (s), i->mac)) {
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
        nc_add_addr (c, i, v[k].val, mask, DEF_CLASSFUL);
    }
    if ((s = kv_get (v, n, "GATEWAY")) != NULL && s[0] != '\0') {
        nc_set_gateway (c, i, s);
    }
    for (unsigned d = 1; d <= 9; d++) {
        char key[8];

        snprintf (key, sizeof key, "DNS%u", d);
        if ((s = kv_get (v, n, key)) != NULL && s[0] != '\0') {
            nc_add_dns (c, i, s, strlen (s));
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
            nc_add_addr (c, i, s, NULL, DEF_CLASSFUL);
        }
        if ((s = kv_get (v, n, "IPV6ADDR_SECONDARIES")) != NULL) {
            char buf[512], *w[NETCONF_MAX_ADDRS];
            unsigned nw;

            snprintf (buf, sizeof buf, "%s", s);
            nw = nc_split_words (buf, w, NETCONF_MAX_ADDRS);
            for (unsigned k = 0; k < nw; k++) {
                nc_add_addr (c, i, w[k], NULL, DEF_CLASSFUL);
            }
        }
        if ((s = kv_get (v, n, "IPV6_DEFAULTGW")) != NULL && s[0] != '\0') {
            nc_set_gateway (c, i, s);
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
