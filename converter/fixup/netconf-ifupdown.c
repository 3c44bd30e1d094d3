/* SPDX-License-Identifier: MIT */
/*
 * ifupdown: /etc/network/interfaces and the files it sources (its
 * "source" and "source-directory" lines become includes the caller
 * expands), into the model of netconf.h.  Written from interfaces(5) of
 * ifupdown 0.8; an address without a prefix gets what ifup -n shows: its
 * class for IPv4, 128 for IPv6.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "netconf-int.h"

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
    i = nc_add_iface (c, path, "ifupdown", err);
    if (i != NULL && !nc_set_str (i->name, sizeof i->name, name)) {
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
    while (err == 0 && nc_next_logical (&l, line, LINE_MAX_, &bad)) {
        char *w[64], *s = nc_trim (line);
        unsigned nw;

        if (bad) {
            c->skipped++;
            continue;
        }
        if (s[0] == '#' || s[0] == '\0') {
            continue;
        }
        nw = nc_split_words (s, w, 64);
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
            if (!nc_set_n (name, sizeof name, w[1], n)) {
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
            int k = nc_add_addr (c, st.i, w[1], NULL, DEF_IFUPDOWN);

            if (k >= 0 && strchr (w[1], '/') == NULL) {
                st.bare |= 1u << k;
            }
        }
        else if (strcmp (w[0], "netmask") == 0 && nw >= 2) {
            st.mask = nc_mask_prefix (w[1], st.family);
            if (st.mask < 0) {
                c->skipped++;
            }
        }
        else if (strcmp (w[0], "gateway") == 0 && nw >= 2) {
            nc_set_gateway (c, st.i, w[1]);
        }
        else if (strcmp (w[0], "dns-nameservers") == 0 ||
                 strcmp (w[0], "dns-nameserver") == 0) {
            for (unsigned k = 1; k < nw; k++) {
                nc_add_dns (c, st.i, w[k], strlen (w[k]));
            }
        }
        else if (strcmp (w[0], "hwaddress") == 0 && nw >= 2) {
            const char *m = nw >= 3 && strcmp (w[1], "ether") == 0 ? w[2]
                                                                   : w[1];

            if (!nc_parse_mac (m, strlen (m), st.i->mac)) {
                c->skipped++;
            }
        }
    }
    stanza_end (&st);
    free (line);
    return err;
}
