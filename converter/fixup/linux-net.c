/* SPDX-License-Identifier: MIT */
/*
 * Network identity kept: each interface the guest's configuration names
 * (ifupdown, ifcfg, NetworkManager, netplan, systemd-networkd) keeps its
 * name on the new hypervisor's NIC, so that its static or DHCP
 * configuration still applies.  The name is pinned to the NIC's MAC with
 * a udev rule (/etc/udev/rules.d/70-vmconvert-net.rules) -- read by
 * systemd-udevd and by the udev of older guests alike, and sorted before
 * 80-net-setup-link.rules, whose naming it overrides.  DRIVERS=="?*" keeps
 * it off virtual devices (bridges, bonds, VLANs) that share the MAC.
 *
 * The MAC comes from outside the guest first (the source machine's NIC of
 * that name, in the appliance; --mac NAME=MAC), then from the guest's own
 * configuration (HWADDR=, mac-address=, an older persistent-net rule or
 * .link file).  The target VM must be given the same MAC: the report
 * lists every pin for its definition.  A guest with one configured
 * interface whose MAC is not known gets a rule that gives its name to the
 * first Ethernet NIC, with a warning; with several, each one is a warning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "fixup.h"

#define STEP "network"
#define RULES "/etc/udev/rules.d/70-vmconvert-net.rules"
#define MAX_NAMES 32

static bool
config_tool (const char *tool)
{
    return strcmp (tool, "ifupdown") == 0 || strcmp (tool, "ifcfg") == 0 ||
           strcmp (tool, "networkmanager") == 0 ||
           strcmp (tool, "netplan") == 0 || strcmp (tool, "networkd") == 0;
}

static bool
concrete_name (const char *n)
{
    if (n[0] == '\0' || strcmp (n, "lo") == 0 || strlen (n) > 15) {
        return false;
    }
    for (const char *p = n; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
              *p == '.' || *p == ':')) {
            return false;
        }
    }
    /* Aliases (eth0:1) and VLANs (eth0.100) ride on their parent. */
    return strchr (n, ':') == NULL && strchr (n, '.') == NULL;
}

static const char *
mac_for (const struct inspection *in, const struct fixup_opts *o,
         const char *name, const char **from)
{
    for (size_t i = 0; i < o->nmacs; i++) {
        if (strcmp (o->macs[i].name, name) == 0) {
            *from = o->macs[i].from;
            return o->macs[i].mac;
        }
    }
    for (size_t i = 0; i < in->net.n; i++) {
        if (strcmp (in->net.v[i].name, name) == 0 &&
            in->net.v[i].mac[0] != '\0') {
            *from = in->net.v[i].source;
            return in->net.v[i].mac;
        }
    }
    return NULL;
}

/* Whether PATH already holds exactly TEXT (a second run leaves it). */
static bool
same_file (const struct guest *g, const char *path, const char *text,
           size_t len)
{
    char *old;
    size_t olen;
    bool same;

    if (guest_read (g, path, len + 1, &old, &olen) != 0) {
        return false;
    }
    same = olen == len && memcmp (old, text, len) == 0;
    free (old);
    return same;
}

int
fixup_network (const struct inspection *in, const struct guest *g,
               const struct fixup_opts *o, struct fixup_report *rep)
{
    char names[MAX_NAMES][32];
    const char *macs[MAX_NAMES], *froms[MAX_NAMES];
    size_t n = 0, unknown = 0;
    char *text = NULL;
    size_t len = 0;
    FILE *fp;
    int r = 0;

    for (size_t i = 0; i < in->net.n && n < MAX_NAMES; i++) {
        const struct net_iface *f = &in->net.v[i];
        bool dup = false;

        if (!config_tool (f->tool)) {
            continue;
        }
        if (!concrete_name (f->name)) {
            if (f->name[0] == '\0' && f->mac[0] != '\0') {
                report_iface (rep, f->mac, f->mac, "its configuration "
                              "matches the MAC", f->source);
            }
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            dup |= strcmp (names[k], f->name) == 0;
        }
        if (dup) {
            continue;
        }
        snprintf (names[n], sizeof names[0], "%s", f->name);
        froms[n] = "";
        macs[n] = mac_for (in, o, f->name, &froms[n]);
        if (macs[n] == NULL) {
            unknown++;
        }
        n++;
    }
    if (n == 0) {
        return 0;
    }
    fixup_say (o, "network: pinning %zu interface name(s) to their MACs", n);
    fp = open_memstream (&text, &len);
    if (fp == NULL) {
        report_error (rep, STEP, "out of memory");
        return -1;
    }
    fprintf (fp, "# Written by vmconvert when this system moved to another "
             "hypervisor: each NIC\n# keeps the name its network "
             "configuration uses.  The VM must have these MACs.\n");
    for (size_t i = 0; i < n; i++) {
        if (macs[i] != NULL) {
            fprintf (fp, "SUBSYSTEM==\"net\", ACTION==\"add\", "
                     "DRIVERS==\"?*\", ATTR{address}==\"%s\", "
                     "ATTR{type}==\"1\", NAME=\"%s\"\n", macs[i], names[i]);
            report_iface (rep, names[i], macs[i], "udev rule (MAC from "
                          "the source machine or its configuration)", RULES);
            report_change (rep, STEP, RULES, "%s pinned to %s (MAC from %s)",
                           names[i], macs[i], froms[i]);
        }
        else if (n == 1) {
            fprintf (fp, "# The MAC was not known: the first Ethernet NIC "
                     "gets the name.\nSUBSYSTEM==\"net\", ACTION==\"add\", "
                     "DRIVERS==\"?*\", ATTR{type}==\"1\", KERNEL==\"eth*\", "
                     "NAME=\"%s\"\n", names[i]);
            report_iface (rep, names[i], NULL, "udev rule (the first "
                          "Ethernet NIC)", RULES);
            report_change (rep, STEP, RULES, "%s given to the first Ethernet "
                           "NIC", names[i]);
            report_warning (rep, STEP, "the MAC of %s is not known: the "
                            "first Ethernet NIC takes its name; give the "
                            "MAC (--mac %s=MAC) to pin it", names[i],
                            names[i]);
        }
        else {
            report_iface (rep, names[i], NULL, "not pinned", NULL);
            report_warning (rep, STEP, "the MAC of %s is not known: its "
                            "name is not pinned and may change (give --mac "
                            "%s=MAC)", names[i], names[i]);
        }
    }
    if (fclose (fp) != 0) {
        free (text);
        report_error (rep, STEP, "out of memory");
        return -1;
    }
    if ((unknown < n || n == 1) && !same_file (g, RULES, text, len)) {
        if (guest_mkdirs (g, "/etc/udev/rules.d") < 0 ||
            guest_write (g, RULES, text, len, 0644) < 0) {
            report_error (rep, STEP, "%s: %s", RULES, vmc_get_error ());
            r = -1;
        }
    }
    free (text);
    return r;
}
