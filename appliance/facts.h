/* SPDX-License-Identifier: MIT */
/*
 * The summary of the source machine that travels with the job (stored in
 * the receiver's job.json): firmware, CPUs, memory, DMI identity, the
 * hypervisor it ran on, disks and NICs.  Never the token.
 */
#ifndef VMC_APPLIANCE_FACTS_H
#define VMC_APPLIANCE_FACTS_H

#include <stdio.h>

#include "disks.h"

#define NICS_MAX 32

struct nic_info {
    char name[32];
    char mac[18];
    char driver[48];
    char path[48];                  /* PCI address, "" for virtual ones */
    unsigned mtu;
    int speed_mbps;                 /* -1: unknown */
    int carrier;                    /* -1: unknown (down) */
    char addrs[4][64];              /* "10.0.2.15/24" */
    unsigned naddrs;
};

struct nic_list {
    struct nic_info n[NICS_MAX];
    unsigned count;
};

/* Ethernet interfaces under SYSROOT/class/net (not lo), with their
 * addresses when ADDRS (read from the running system). */
void nics_scan (const char *sysroot, struct nic_list *l, int addrs);

/* The hypervisor this machine runs on, from DMI and CPU flags: "vmware",
 * "hyperv", "xen", "virtualbox", "kvm", or "" for physical/unknown. */
const char *facts_hypervisor (const char *sysroot, const char *procroot);

/* Write the summary as one JSON object.  0, or -1 on a write error. */
int facts_write (FILE *fp, const char *sysroot, const char *procroot,
                 const struct disk_list *disks, const struct nic_list *nics);

#endif
