/* SPDX-License-Identifier: MIT */
/*
 * The names a Linux guest's udev would give one of this machine's NICs:
 * what systemd-udevd's net_id builtin computes (ID_NET_NAME_ONBOARD,
 * _SLOT, _PATH, _MAC) from sysfs, and which of them the default
 * NamePolicy picks.  The appliance runs on the source machine, so these
 * are the names the guest had there; the fixups pin each of them to its
 * MAC before the NIC moves to another bus.  netname.c says which naming
 * schemes are followed and what is not covered.
 */
#ifndef VMC_APPLIANCE_NETNAME_H
#define VMC_APPLIANCE_NETNAME_H

#include <stdbool.h>

/* The default scheme of systemd 252 (Debian 12); 247 is Debian 11's. */
#define NETNAME_SCHEME_DEFAULT 252
#define NETNAME_SCHEME_MIN 247
#define NETNAME_SCHEME_MAX 252

struct netname {
    char onboard[64];       /* ID_NET_NAME_ONBOARD, "" when none */
    char slot[64];          /* ID_NET_NAME_SLOT */
    char path[64];          /* ID_NET_NAME_PATH */
    char mac[64];           /* ID_NET_NAME_MAC */
    char chosen[16];        /* the pick of NamePolicy=onboard slot path;
                             * "" when the kernel's name stays */
};

/* Compute the names for the interface IFNAME under SYSROOT (the sysfs
 * root, "/sys") with naming scheme SCHEME (a systemd version from
 * NETNAME_SCHEME_MIN to NETNAME_SCHEME_MAX; 0 for the default).  An
 * interface that gets no predictable name (virtual, not on PCI) is not
 * an error: every field is "".  0, or -1 with vmc_error set when IFNAME
 * is not an interface there or SCHEME is not supported. */
int netname_compute (const char *sysroot, const char *ifname, unsigned scheme,
                     struct netname *out);

/* Does the kernel command line CMDLINE turn predictable names off
 * (net.ifnames=0, or another false boolean, the last one winning)?  Then
 * udev leaves the kernel's ethN names alone. */
bool netname_kernel_is_predictable_disabled (const char *cmdline);

#endif
