/* SPDX-License-Identifier: MIT */
/*
 * Network bring-up (netup.h).  The order dracut uses: rename interfaces
 * by MAC (ifname=), create VLANs (vlan=), then each ip= in turn: MTU and
 * MAC, link up, then a static address and gateway, DHCP (udhcpc, one per
 * interface, all at once: a server with four ports and one cable should
 * not wait for three time-outs in a row), or IPv6 autoconfiguration.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "facts.h"
#include "netup.h"
#include "util.h"

#define UDHCPC_SCRIPT "/etc/udhcpc.script"

static int
ip_cmd (const char *a1, const char *a2, const char *a3, const char *a4,
        const char *a5, const char *a6, const char *a7, const char *a8)
{
    const char *argv[] = { "ip", a1, a2, a3, a4, a5, a6, a7, a8, NULL };

    return run_cmd (argv, 10);
}

static int
link_up (const struct ip_conf *ip, const char *dev)
{
    char mtu[16];

    if (ip != NULL && ip->mac[0] != '\0') {
        ip_cmd ("link", "set", "dev", dev, "address", ip->mac, NULL, NULL);
    }
    if (ip != NULL && ip->mtu != 0) {
        snprintf (mtu, sizeof mtu, "%u", ip->mtu);
        ip_cmd ("link", "set", "dev", dev, "mtu", mtu, NULL, NULL);
    }
    return ip_cmd ("link", "set", "dev", dev, "up", NULL, NULL, NULL);
}

/* Does DEV (or any interface, when DEV is NULL) have an address of
 * FAMILY that is not link-local? */
static bool
has_address (const char *dev, int family)
{
    struct ifaddrs *ifa, *i;
    bool found = false;

    if (getifaddrs (&ifa) == -1) {
        return false;
    }
    for (i = ifa; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || strcmp (i->ifa_name, "lo") == 0 ||
            (dev != NULL && strcmp (i->ifa_name, dev) != 0)) {
            continue;
        }
        if (i->ifa_addr->sa_family == AF_INET && (family == 0 ||
                                                  family == AF_INET)) {
            found = true;
        }
        if (i->ifa_addr->sa_family == AF_INET6 && (family == 0 ||
                                                   family == AF_INET6)) {
            const struct in6_addr *a =
                &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;

            found = !IN6_IS_ADDR_LINKLOCAL (a);
        }
    }
    freeifaddrs (ifa);
    return found;
}

static void
write_resolv (const struct config *c)
{
    FILE *fp;
    unsigned n = 0;

    if (c->ndns == 0) {
        bool any = false;

        for (unsigned i = 0; i < c->nip; i++) {
            any = any || c->ip[i].dns[0][0] != '\0';
        }
        if (!any) {
            return;                 /* udhcpc's script writes DHCP's */
        }
    }
    fp = fopen ("/etc/resolv.conf", "we");
    if (fp == NULL) {
        return;
    }
    for (unsigned i = 0; i < c->ndns; i++, n++) {
        fprintf (fp, "nameserver %s\n", c->dns[i]);
    }
    for (unsigned i = 0; i < c->nip; i++) {
        for (unsigned k = 0; k < 2; k++) {
            if (c->ip[i].dns[k][0] != '\0') {
                fprintf (fp, "nameserver %s\n", c->ip[i].dns[k]);
            }
        }
    }
    fclose (fp);
}

/* DHCP on each of DEVS at once; true when any got a lease. */
static bool
dhcp (char devs[][32], unsigned ndevs, bool v6)
{
    int pids[NICS_MAX];
    bool ok = false;

    for (unsigned i = 0; i < ndevs; i++) {
        /* Foreground, quit once leased, give up after 8 tries 2 s
         * apart (a switch port may take a while to forward). */
        const char *argv4[] = { "udhcpc", "-i", devs[i], "-s", UDHCPC_SCRIPT,
                                "-f", "-q", "-n", "-t", "8", "-T", "2",
                                NULL };
        const char *argv6[] = { "udhcpc6", "-i", devs[i], "-s", UDHCPC_SCRIPT,
                                "-f", "-q", "-n", "-t", "8", "-T", "2",
                                NULL };

        pids[i] = spawn_cmd (v6 ? argv6 : argv4);
    }
    for (unsigned i = 0; i < ndevs; i++) {
        if (pids[i] != -1 && wait_cmd (pids[i], 40) == 0) {
            ok = true;
        }
    }
    return ok;
}

int
net_up (const struct config *c, char *why, size_t whylen)
{
    struct ip_conf dflt = { .method = IP_DHCP };
    const struct ip_conf *list = c->nip > 0 ? c->ip : &dflt;
    unsigned nlist = c->nip > 0 ? c->nip : 1;
    struct nic_list nics;
    bool any = false;

    ip_cmd ("link", "set", "dev", "lo", "up", NULL, NULL, NULL);
    nics_scan ("/sys", &nics, 0);
    for (unsigned i = 0; i < c->nifname; i++) {
        for (unsigned k = 0; k < nics.count; k++) {
            if (strcmp (nics.n[k].mac, c->ifname[i].mac) == 0 &&
                strcmp (nics.n[k].name, c->ifname[i].name) != 0) {
                ip_cmd ("link", "set", "dev", nics.n[k].name, "down", NULL,
                        NULL, NULL);
                ip_cmd ("link", "set", "dev", nics.n[k].name, "name",
                        c->ifname[i].name, NULL, NULL);
            }
        }
    }
    for (unsigned i = 0; i < c->nvlan; i++) {
        char id[16];
        const char *argv[] = { "ip", "link", "add", "link", c->vlan[i].phys,
                               "name", c->vlan[i].name, "type", "vlan", "id",
                               id, NULL };

        snprintf (id, sizeof id, "%u", c->vlan[i].id);
        link_up (NULL, c->vlan[i].phys);
        run_cmd (argv, 10);
    }
    nics_scan ("/sys", &nics, 0);
    if (nics.count == 0) {
        snprintf (why, whylen, "no network interface found (is the NIC's "
                  "driver in the appliance?)");
        return -1;
    }
    for (unsigned i = 0; i < nlist; i++) {
        const struct ip_conf *ip = &list[i];
        char devs[NICS_MAX][32];
        unsigned ndevs = 0;

        if (ip->dev[0] != '\0') {
            snprintf (devs[ndevs++], sizeof devs[0], "%.31s", ip->dev);
        }
        else {
            for (unsigned k = 0; k < nics.count; k++) {
                /* The parents of VLANs carry no address of their own. */
                bool parent = false;

                for (unsigned v = 0; v < c->nvlan; v++) {
                    parent = parent || strcmp (c->vlan[v].phys,
                                               nics.n[k].name) == 0;
                }
                if (!parent) {
                    snprintf (devs[ndevs++], sizeof devs[0], "%.31s",
                              nics.n[k].name);
                }
            }
            for (unsigned v = 0; v < c->nvlan && ndevs < NICS_MAX; v++) {
                snprintf (devs[ndevs++], sizeof devs[0], "%.31s",
                          c->vlan[v].name);
            }
        }
        for (unsigned k = 0; k < ndevs; k++) {
            link_up (ip, devs[k]);
        }
        switch (ip->method) {
        case IP_STATIC: {
            char cidr[80];
            const char *dev = devs[0];

            /* Without a named interface: the first one with a link. */
            if (ip->dev[0] == '\0') {
                sleep (1);
                nics_scan ("/sys", &nics, 0);
                for (unsigned k = 0; k < nics.count; k++) {
                    if (nics.n[k].carrier == 1) {
                        dev = nics.n[k].name;
                        break;
                    }
                }
            }
            snprintf (cidr, sizeof cidr, "%s/%u", ip->addr, ip->prefix);
            if (ip_cmd ("addr", "add", cidr, "dev", dev,
                        ip->peer[0] != '\0' ? "peer" : NULL, ip->peer, NULL)
                != 0) {
                snprintf (why, whylen, "could not set %s on %s", cidr, dev);
                return -1;
            }
            if (ip->gateway[0] != '\0') {
                ip_cmd ("route", "replace", "default", "via", ip->gateway,
                        "dev", dev, NULL);
            }
            if (ip->hostname[0] != '\0') {
                sethostname (ip->hostname, strlen (ip->hostname));
            }
            applog ("network: %s on %s", cidr, dev);
            any = true;
            break;
        }
        case IP_DHCP:
        case IP_DHCP6:
            if (dhcp (devs, ndevs, ip->method == IP_DHCP6)) {
                any = true;
            }
            break;
        case IP_AUTO6:
            for (int t = 0; t < 100 && !any; t++) {
                for (unsigned k = 0; k < ndevs && !any; k++) {
                    any = has_address (devs[k], AF_INET6);
                }
                if (!any) {
                    usleep (100000);
                }
            }
            break;
        case IP_OFF:
            break;
        }
    }
    write_resolv (c);
    if (!any && !has_address (NULL, 0)) {
        snprintf (why, whylen, "no interface got an address (%s); check "
                  "the cable, the DHCP server, or set ip= (see the README)",
                  c->nip > 0 ? "as ip= says" : "DHCP on every interface");
        return -1;
    }
    return 0;
}
