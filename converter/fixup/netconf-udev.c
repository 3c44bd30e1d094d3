/* SPDX-License-Identifier: MIT */
/*
 * udev rules that name interfaces by MAC (70-persistent-net.rules), into
 * the model of netconf.h: entries of tool "udev-rule" with only name and
 * mac.  Written from udev(7).
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "netconf-int.h"

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
    while (err == 0 && nc_next_logical (&l, line, LINE_MAX_, &bad)) {
        const char *p = nc_trim (line);
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
                ok &= nc_parse_mac (val, strlen (val), mac);
            }
            else if (strcmp (key, "NAME") == 0 &&
                     (strcmp (op, "=") == 0 || strcmp (op, ":=") == 0)) {
                ok &= nc_set_str (name, sizeof name, val) &&
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
        i = nc_add_iface (c, path, "udev-rule", &err);
        if (i != NULL) {
            memcpy (i->name, name, sizeof name);
            memcpy (i->mac, mac, sizeof mac);
        }
    }
    free (line);
    return err;
}
