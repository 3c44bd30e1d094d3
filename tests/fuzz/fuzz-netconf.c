/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the network configuration parsers (converter/fixup/
 * netconf*.c) over text from a guest's files, and the kernel command line
 * check of appliance/netname.c.  The first byte picks the parser (and,
 * for ifcfg, a Red Hat or a SUSE path); the rest is the file.  Every
 * parsed field must stay NUL-terminated within its array and every count
 * within its cap; lookups, merging and JSON then run over the result.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../appliance/netname.h"
#include "../../converter/fixup/netconf.h"

static void
check_terminated (const char *s, size_t cap)
{
    if (memchr (s, '\0', cap) == NULL) {
        abort ();
    }
}

static void
check (const struct net_config *c)
{
    if (c->n > NETCONF_MAX_IFACES || c->n > c->cap ||
        c->ninc > NETCONF_MAX_INCLUDES) {
        abort ();
    }
    for (size_t k = 0; k < c->n; k++) {
        const struct net_iface *i = &c->v[k];

        check_terminated (i->name, sizeof i->name);
        check_terminated (i->mac, sizeof i->mac);
        check_terminated (i->gateway4, sizeof i->gateway4);
        check_terminated (i->gateway6, sizeof i->gateway6);
        check_terminated (i->source, sizeof i->source);
        check_terminated (i->tool, sizeof i->tool);
        if (i->naddr > NETCONF_MAX_ADDRS || i->ndns > NETCONF_MAX_DNS ||
            (i->mac[0] != '\0' && strlen (i->mac) != 17)) {
            abort ();
        }
        for (unsigned a = 0; a < i->naddr; a++) {
            check_terminated (i->addr[a].addr, sizeof i->addr[a].addr);
            if (i->addr[a].prefix > 128) {
                abort ();
            }
        }
        for (unsigned d = 0; d < i->ndns; d++) {
            check_terminated (i->dns[d], sizeof i->dns[d]);
        }
    }
    for (unsigned k = 0; k < c->ninc; k++) {
        check_terminated (c->inc[k].pattern, sizeof c->inc[k].pattern);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static FILE *null;
    static char cmdline[4096];
    struct net_config c = { 0 };
    const char *text = (const char *) data + 1;
    size_t len;
    int r = 0;

    if (size == 0) {
        return 0;
    }
    if (null == NULL) {
        null = fopen ("/dev/null", "w");
    }
    len = size - 1;
    switch (data[0] % 9) {
    case 0:
        r = netconf_parse_ifupdown (&c, "/etc/network/interfaces", text, len);
        break;
    case 1:
        r = netconf_parse_ifcfg (&c, "/etc/sysconfig/network-scripts/ifcfg-"
                                 "eth0", text, len);
        break;
    case 2:
        r = netconf_parse_ifcfg (&c, "/etc/sysconfig/network/ifcfg-eth0",
                                 text, len);
        break;
    case 3:
        r = netconf_parse_nm_keyfile (&c, "/etc/NetworkManager/"
                                      "system-connections/a.nmconnection",
                                      text, len);
        break;
    case 4:
        r = netconf_parse_netplan (&c, "/etc/netplan/a.yaml", text, len);
        break;
    case 5:
        r = netconf_parse_networkd (&c, "/etc/systemd/network/a.network",
                                    text, len);
        break;
    case 6:
        r = netconf_parse_udev_rules (&c, "/etc/udev/rules.d/70-a.rules",
                                      text, len);
        break;
    case 7:
        r = netconf_parse_link (&c, "/etc/systemd/network/a.link", text, len);
        break;
    case 8:
        len = len < sizeof cmdline - 1 ? len : sizeof cmdline - 1;
        memcpy (cmdline, text, len);
        cmdline[len] = '\0';
        (void) netname_kernel_is_predictable_disabled (cmdline);
        return 0;
    }
    if (r != 0) {
        abort ();
    }
    check (&c);
    netconf_merge (&c);
    check (&c);
    for (size_t k = 0; k < c.n; k++) {
        if (c.v[k].name[0] != '\0') {
            (void) netconf_mac_of (&c, c.v[k].name);
        }
        if (c.v[k].mac[0] != '\0') {
            (void) netconf_name_of (&c, c.v[k].mac);
        }
        if (null != NULL) {
            netconf_iface_json (null, &c.v[k]);
        }
    }
    netconf_free (&c);
    return 0;
}
