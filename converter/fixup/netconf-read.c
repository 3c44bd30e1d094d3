/* SPDX-License-Identifier: MIT */
/*
 * A guest's network configuration read from its tree (files.h) with the
 * parsers of netconf.h, from every place each tool keeps it: ifupdown's
 * /etc/network/interfaces and what it sources; ifcfg-NAME files in
 * /etc/sysconfig/network-scripts (and /etc/sysconfig/network on SUSE);
 * NetworkManager's keyfiles in /etc/NetworkManager/system-connections;
 * netplan's YAML in /etc/netplan; networkd's .network files, and the
 * .link files beside them, in /etc/systemd/network; udev rules that name
 * interfaces in /etc/udev/rules.d.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "inspect.h"
#include "netconf.h"

#define CONF_MAX (1u << 20)
#define DIR_MAX 512

typedef int (*parser) (struct net_config *, const char *, const char *,
                       size_t);

static void
parse_file (const struct tree *t, struct net_config *c, const char *path,
            parser p)
{
    char *buf;
    size_t len;

    if (tree_read_file (t, path, CONF_MAX, &buf, &len) != 0) {
        return;
    }
    p (c, path, buf, len);
    free (buf);
}

struct dir_names {
    char (*v)[256];
    size_t n;
};

static int
add_name (void *opaque, const char *name, enum file_kind kind)
{
    struct dir_names *d = opaque;

    if (kind == FK_DIR || d->n == DIR_MAX) {
        return 0;
    }
    snprintf (d->v[d->n++], sizeof d->v[0], "%s", name);
    return 0;
}

/* Every file of DIR whose name matches the shell pattern PAT. */
static void
parse_dir (const struct tree *t, struct net_config *c, const char *dir,
           const char *pat, parser p)
{
    struct dir_names d = { NULL, 0 };
    bool ex;

    d.v = calloc (DIR_MAX, sizeof *d.v);
    if (d.v == NULL) {
        return;
    }
    if (tree_list (t, dir, &ex, add_name, &d) == 0) {
        for (size_t i = 0; i < d.n; i++) {
            char path[600];

            if (fnmatch (pat, d.v[i], 0) != 0) {
                continue;
            }
            snprintf (path, sizeof path, "%s/%s", dir, d.v[i]);
            parse_file (t, c, path, p);
        }
    }
    free (d.v);
}

/* ifupdown's "source" patterns and "source-directory" directories, each
 * read once, in the order they come (they may name further ones). */
static void
ifupdown_includes (const struct tree *t, struct net_config *c)
{
    for (unsigned i = 0; i < c->ninc && i < NETCONF_MAX_INCLUDES; i++) {
        char dir[256], pat[256];
        const struct net_include *inc = &c->inc[i];
        const char *slash;

        if (inc->directory) {
            /* Files named with letters, digits, '_' and '-' only. */
            struct dir_names d = { NULL, 0 };
            bool ex;

            d.v = calloc (DIR_MAX, sizeof *d.v);
            if (d.v == NULL) {
                return;
            }
            if (tree_list (t, inc->pattern, &ex, add_name, &d) == 0) {
                for (size_t k = 0; k < d.n; k++) {
                    char path[600];

                    if (d.v[k][strspn (d.v[k], "abcdefghijklmnopqrstuvwxyz"
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789_-")] != '\0') {
                        continue;
                    }
                    snprintf (path, sizeof path, "%s/%s", inc->pattern,
                              d.v[k]);
                    parse_file (t, c, path, netconf_parse_ifupdown);
                }
            }
            free (d.v);
            continue;
        }
        slash = strrchr (inc->pattern, '/');
        if (slash == NULL) {
            continue;
        }
        snprintf (dir, sizeof dir, "%.*s", (int) (slash - inc->pattern),
                  inc->pattern);
        snprintf (pat, sizeof pat, "%s", slash + 1);
        if (strpbrk (dir, "*?[") != NULL) {
            continue;               /* wildcards in directories: rare */
        }
        if (strpbrk (pat, "*?[") == NULL) {
            parse_file (t, c, inc->pattern, netconf_parse_ifupdown);
        }
        else {
            parse_dir (t, c, dir[0] != '\0' ? dir : "/", pat,
                       netconf_parse_ifupdown);
        }
    }
}

int
netconf_read (const struct tree *t, struct net_config *c)
{
    parse_file (t, c, "/etc/network/interfaces", netconf_parse_ifupdown);
    ifupdown_includes (t, c);
    parse_dir (t, c, "/etc/sysconfig/network-scripts", "ifcfg-*",
               netconf_parse_ifcfg);
    parse_dir (t, c, "/etc/sysconfig/network", "ifcfg-*",
               netconf_parse_ifcfg);
    parse_dir (t, c, "/etc/NetworkManager/system-connections", "*",
               netconf_parse_nm_keyfile);
    parse_dir (t, c, "/etc/netplan", "*.yaml", netconf_parse_netplan);
    parse_dir (t, c, "/etc/systemd/network", "*.network",
               netconf_parse_networkd);
    parse_dir (t, c, "/etc/systemd/network", "*.link", netconf_parse_link);
    parse_dir (t, c, "/etc/udev/rules.d", "*.rules",
               netconf_parse_udev_rules);
    netconf_merge (c);
    return 0;
}
