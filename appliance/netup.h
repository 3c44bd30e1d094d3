/* SPDX-License-Identifier: MIT */
/*
 * Bringing up the network from the settings (dracut's ip=, vlan=,
 * ifname=, nameserver=), with busybox's ip and udhcpc.
 */
#ifndef VMC_APPLIANCE_NETUP_H
#define VMC_APPLIANCE_NETUP_H

#include <stddef.h>

#include "config.h"

/* Configure every interface as the settings say (DHCP on every Ethernet
 * interface when there is no ip=).  Returns 0 when at least one
 * interface has an address (or a static one was set), else -1 with the
 * reason in WHY. */
int net_up (const struct config *c, char *why, size_t whylen);

#endif
