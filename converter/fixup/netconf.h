/* SPDX-License-Identifier: MIT */
/*
 * A Linux guest's network configuration, read from the text of its
 * files into one model: which interfaces are configured, by name and/or
 * MAC, with which addresses.  The fixups use it to keep each configured
 * interface's name once its NIC sits on another bus (a .link file or a
 * udev rule pins the name to the MAC), and the inspector reports it.
 *
 * One parser per format; each takes the file's path (recorded as the
 * source, and used for names that come from the file name) and its text,
 * which is hostile: it need not be NUL-terminated, may hold NULs and may
 * be of any length.  Malformed lines and values are skipped and counted,
 * never fatal; -1 (with vmc_error) only when memory runs out.  Several
 * files may be parsed into the same net_config.
 *
 * When a file gives an address without a prefix, the prefix is what the
 * real tool would use: for IPv4 the classful one in ifupdown (ifup -n
 * shows it) and ifcfg files (ipcalc's default, as initscripts and
 * NetworkManager apply it), 24 in NetworkManager keyfiles, 32 in
 * networkd; for IPv6 128 in ifupdown and networkd (the bare address goes
 * to the kernel), 64 in ifcfg files and keyfiles.  netplan refuses an
 * address without a prefix, and so do we.
 */
#ifndef VMC_FIXUP_NETCONF_H
#define VMC_FIXUP_NETCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define NETCONF_MAX_IFACES 256      /* interfaces kept; more are skipped */
#define NETCONF_MAX_ADDRS 8
#define NETCONF_MAX_DNS 4
#define NETCONF_MAX_INCLUDES 64

struct net_addr {
    char addr[64];                  /* IPv4 or IPv6, as written */
    unsigned prefix;
};

struct net_iface {
    char name[32];                  /* "" when matched only by MAC; for
                                     * networkd and netplan matches, the
                                     * glob or list as written */
    char mac[18];                   /* lower-case xx:xx:..., "" unknown */
    bool dhcp4, dhcp6, auto6;       /* auto6: SLAAC */
    bool manual;                    /* brought up without addresses of
                                     * its own (ifupdown "manual", ifcfg
                                     * BOOTPROTO=none without IPADDR,
                                     * NetworkManager method=disabled) */
    struct net_addr addr[NETCONF_MAX_ADDRS];
    unsigned naddr;
    char gateway4[64], gateway6[64];
    char dns[NETCONF_MAX_DNS][64];
    unsigned ndns;
    char source[256];               /* the file */
    char tool[16];                  /* ifupdown ifcfg networkmanager
                                     * netplan networkd udev-rule link */
};

/* A file ifupdown's "source" or "source-directory" names: the caller,
 * who reads the guest's files, expands the pattern (shell wildcards) and
 * parses those files too.  Relative patterns have been made relative to
 * the directory of the file that names them. */
struct net_include {
    char pattern[256];
    bool directory;                 /* source-directory: every file in it
                                     * whose name is letters, digits, '_'
                                     * and '-' */
};

struct net_config {
    struct net_iface *v;
    size_t n, cap;
    struct net_include inc[NETCONF_MAX_INCLUDES];
    unsigned ninc;
    unsigned skipped;               /* lines or values not understood, or
                                     * past a cap */
};

/* Zero C; a zeroed struct is an empty configuration. */
void netconf_init (struct net_config *c);
/* Free what C holds and zero it (C may be NULL). */
void netconf_free (struct net_config *c);

/* /etc/network/interfaces and the files it sources (interfaces(5)). */
int netconf_parse_ifupdown (struct net_config *c, const char *path,
                            const char *text, size_t len);
/* ifcfg-NAME of Red Hat (network-scripts) and SUSE (sysconfig/network):
 * the name comes from DEVICE=, or else from the file's name. */
int netconf_parse_ifcfg (struct net_config *c, const char *path,
                         const char *text, size_t len);
/* NetworkManager keyfiles (*.nmconnection, nm-settings-keyfile(5)). */
int netconf_parse_nm_keyfile (struct net_config *c, const char *path,
                              const char *text, size_t len);
/* netplan YAML (the .yaml files of /etc/netplan): ethernets, bonds,
 * bridges, vlans.  Each file gives its own entries; netplan's merging of
 * the same id across files is left to the caller. */
int netconf_parse_netplan (struct net_config *c, const char *path,
                           const char *text, size_t len);
/* systemd-networkd .network files (systemd.network(5)); one entry per
 * MAC in [Match] MACAddress= when there are several. */
int netconf_parse_networkd (struct net_config *c, const char *path,
                            const char *text, size_t len);
/* udev rules that name interfaces by MAC (70-persistent-net.rules):
 * entries of tool "udev-rule" with only name and mac. */
int netconf_parse_udev_rules (struct net_config *c, const char *path,
                              const char *text, size_t len);
/* systemd .link files (systemd.link(5)) with [Link] Name=: entries of
 * tool "link" with the name and the MAC it is matched by ("" when it is
 * matched otherwise, e.g. by Path=, which a new bus breaks). */
int netconf_parse_link (struct net_config *c, const char *path,
                        const char *text, size_t len);

/* The MAC of the interface named NAME (exactly) in any entry, or NULL. */
const char *netconf_mac_of (const struct net_config *c, const char *name);
/* The name an entry gives the interface with MAC (any case), or NULL. */
const char *netconf_name_of (const struct net_config *c, const char *mac);
/* Give entries that have a name but no MAC the MAC another entry knows
 * for that name, and entries matched only by MAC the name another entry
 * gives it. */
void netconf_merge (struct net_config *c);

/* One entry as a JSON object (json.h). */
void netconf_iface_json (FILE *fp, const struct net_iface *i);

#endif
