/* SPDX-License-Identifier: MIT */
/*
 * INI files into the model of netconf.h, through one parser:
 * NetworkManager keyfiles (*.nmconnection, nm-settings-keyfile(5)),
 * systemd-networkd .network files (systemd.network(5); one entry per MAC
 * in [Match] MACAddress= when there are several) and systemd .link files
 * (systemd.link(5)) with [Link] Name= (entries of tool "link" with the
 * name and the MAC it is matched by).
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "netconf-int.h"

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
    while (systemd ? nc_next_logical (&l, line, LINE_MAX_, &bad)
                   : nc_next_line (&l, line, LINE_MAX_, &bad)) {
        char *t = nc_trim (line), *eq;

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
                           !nc_set_n (section, sizeof section, t + 1,
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
        ini->kv (ini, section, nc_trim (t), nc_trim (eq + 1));
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

        if (nc_parse_uint (s, n, 255, &b[k]) == -1) {
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
        char *a = nc_trim (tok[k]), *comma = strchr (a, ',');
        unsigned p;

        if (a[0] == '\0') {
            continue;
        }
        if (comma != NULL) {
            *comma = '\0';
            nc_set_str (family == 6 ? nm->gw6 : nm->gw4, sizeof nm->gw4,
                        nc_trim (comma + 1));
        }
        if (strchr (a, '/') == NULL && k + 1 < nt &&
            nc_parse_uint (tok[k + 1], strlen (tok[k + 1]), 128, &p) == 0) {
            char buf[80];

            snprintf (buf, sizeof buf, "%.63s/%u", a, p);
            nc_add_addr (nm->ini.c, &nm->i, buf, NULL, DEF_NM);
            k++;
            if (k + 1 < nt && nc_addr_family (tok[k + 1]) != 0) {
                nc_set_str (family == 6 ? nm->gw6 : nm->gw4, sizeof nm->gw4,
                            tok[k + 1]);
                k++;
            }
            continue;
        }
        nc_add_addr (nm->ini.c, &nm->i, a, NULL, DEF_NM);
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
            !nc_set_str (nm->i.name, sizeof nm->i.name, v)) {
            c->skipped++;
        }
        else if (strcmp (key, "type") == 0) {
            nc_set_str (nm->type, sizeof nm->type, v);
        }
        return;
    }
    if (is_section (section, "ethernet", "802-3-ethernet")) {
        if (strcmp (key, "mac-address") == 0) {
            size_t n = strlen (v);

            while (n > 0 && v[n - 1] == ';') {
                n--;
            }
            if (!nc_parse_mac (v, n, nm->i.mac) &&
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
        nc_set_str (family == 4 ? nm->method4 : nm->method6,
                    sizeof nm->method4, v);
    }
    else if (key_numbered (key, "address") ||
             key_numbered (key, "addresses")) {
        nm_addresses (nm, family, v);
    }
    else if (strcmp (key, "gateway") == 0) {
        nc_set_gateway (c, &nm->i, v);
    }
    else if (strcmp (key, "dns") == 0) {
        nc_add_dns_list (c, &nm->i, v, "; ,");
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
        nc_set_gateway (c, &nm->i, nm->gw4);
    }
    if (nm->i.gateway6[0] == '\0' && nm->gw6[0] != '\0') {
        nc_set_gateway (c, &nm->i, nm->gw6);
    }
    /* method=auto is DHCP for IPv4 and router advertisements (with
     * DHCPv6 when they say so) for IPv6. */
    nm->i.dhcp4 = strcmp (nm->method4, "auto") == 0;
    nm->i.auto6 = strcmp (nm->method6, "auto") == 0;
    nm->i.dhcp6 = strcmp (nm->method6, "dhcp") == 0;
    nm->i.manual = strcmp (nm->method4, "disabled") == 0 &&
                   !nm->i.auto6 && !nm->i.dhcp6 && nm->i.naddr == 0;
    i = nc_add_iface (c, path, "networkmanager", &err);
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
    unsigned nw = nc_split_words (v, w, 32);

    /* An empty assignment resets the list. */
    if (nw == 0) {
        nd->nmacs = 0;
    }
    for (unsigned k = 0; k < nw; k++) {
        if (nd->nmacs >= ND_MAX_MACS ||
            !nc_parse_mac (w[k], strlen (w[k]), nd->macs[nd->nmacs])) {
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
        nc_set_gateway (ini->c, &nd->i, nd->route_gw);
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
            nc_add_addr (c, &nd->i, v, NULL, DEF_HOST);
        }
        else if (strcmp (key, "Gateway") == 0) {
            nc_set_gateway (c, &nd->i, v);
        }
        else if (strcmp (key, "DNS") == 0) {
            nc_add_dns_list (c, &nd->i, v, " \t");
        }
        else if (strcmp (key, "DHCP") == 0) {
            int b = nc_parse_bool (v);

            nd->i.dhcp4 = b == 1 || strcmp (v, "ipv4") == 0 ||
                          strcmp (v, "both") == 0;
            nd->i.dhcp6 = b == 1 || strcmp (v, "ipv6") == 0 ||
                          strcmp (v, "both") == 0;
        }
        else if (strcmp (key, "IPv6AcceptRA") == 0) {
            nd->i.auto6 = nc_parse_bool (v) == 1;
        }
    }
    else if (strcmp (section, "Address") == 0 &&
             strcmp (key, "Address") == 0) {
        nc_add_addr (c, &nd->i, v, NULL, DEF_HOST);
    }
    else if (strcmp (section, "Route") == 0) {
        if (strcmp (key, "Gateway") == 0) {
            nc_set_str (nd->route_gw, sizeof nd->route_gw, v);
        }
        else if (strcmp (key, "Destination") == 0) {
            nc_set_str (nd->route_dst, sizeof nd->route_dst, v);
        }
    }
    else if (strcmp (section, "Link") == 0 && strcmp (key, "Name") == 0) {
        if (!nc_set_str (nd->link_name, sizeof nd->link_name, v)) {
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
        struct net_iface *i = nc_add_iface (c, path, tool, &err);

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
