/* SPDX-License-Identifier: MIT */
/*
 * The appliance's settings: `vmconvert.*` options and dracut's network
 * options (ip=, nameserver=, vlan=, ifname=) from the kernel command line
 * and from a file on the boot medium (same syntax, one option per line).
 * The kernel command line wins over the file.
 */
#ifndef VMC_APPLIANCE_CONFIG_H
#define VMC_APPLIANCE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_IP       8
#define CFG_MAX_VLAN     8
#define CFG_MAX_IFNAME   8
#define CFG_MAX_DNS      3
#define CFG_MAX_MSGS     16

enum ip_method {
    IP_DHCP,                        /* dhcp, on, any, single-dhcp */
    IP_DHCP6,                       /* dhcp6 */
    IP_AUTO6,                       /* auto6, link6, either6: SLAAC */
    IP_STATIC,                      /* none, off with an address */
    IP_OFF,                         /* none, off without one: link up only */
};

/* One ip= option.  An empty dev means "every interface" (DHCP) or "the
 * first interface with a link" (static). */
struct ip_conf {
    char dev[32];
    enum ip_method method;
    char addr[64];                  /* static: the address, no brackets */
    unsigned prefix;                /* static: prefix length */
    char peer[64], gateway[64];
    char hostname[64];
    unsigned mtu;                   /* 0: leave it */
    char mac[18];                   /* "": leave it */
    char dns[2][64];
};

struct vlan_conf {
    char name[32];                  /* e.g. eth0.100, vlan100 */
    char phys[32];
    unsigned id;
};

struct ifname_conf {
    char name[32];
    char mac[18];                   /* lower case, colon separated */
};

enum post_action { POST_POWEROFF, POST_REBOOT, POST_SHELL };

struct config {
    char server[300];               /* HOST[:PORT]; "" asks on the console */
    char fingerprint[80];
    char token[256];
    char job[80];                   /* "": from the machine's identity */
    char disks[1024];               /* comma-separated selectors; "": all */
    char format[16];                /* "": the receiver's choice */
    int compress;                   /* COMP_* */
    int level;
    enum post_action post;
    uint64_t max_rate;              /* bytes per second, 0: no limit */
    int retry_seconds;
    int wait_seconds;               /* on the success page before post */
    bool all_blocks;
    bool interactive;               /* vmconvert.interactive=1 */
    /* Guest fixups: vmconvert.fixup=auto (fix up the Linux guest found,
     * send the disks unchanged when there is none), yes (refuse when
     * there is none), no (send the disks unchanged). */
    enum fixup_mode { FIXUP_AUTO, FIXUP_YES, FIXUP_NO } fixup;
    char target[16];                /* vmconvert.target: kvm (default),
                                     * hyperv, vmware */
    char root[160];                 /* vmconvert.root: which root, when
                                     * there are several */
    char macs[512];                 /* vmconvert.mac=NAME=MAC,...: MACs of
                                     * the guest's interfaces */
    bool fixup_vm;                  /* vmconvert.mode=fixup: fix up the
                                     * disks in place (they are overlays),
                                     * report on ttyS1, send nothing */

    struct ip_conf ip[CFG_MAX_IP];
    unsigned nip;
    char dns[CFG_MAX_DNS][64];
    unsigned ndns;
    struct vlan_conf vlan[CFG_MAX_VLAN];
    unsigned nvlan;
    struct ifname_conf ifname[CFG_MAX_IFNAME];
    unsigned nifname;

    /* What was wrong with the options, for the console: unknown names
     * are warnings, bad values errors (the option is then ignored). */
    char msgs[CFG_MAX_MSGS][200];
    unsigned nmsgs;
    unsigned nerrors;
};

/* Defaults: everything empty, post=poweroff, retry one day. */
void config_init (struct config *c);

/* Apply one "key=value" (or a bare key).  SOURCE names where it came from
 * for messages ("kernel command line", "vmconvert.cfg line 3").  Options
 * that are not ours (root=, console=, ...) are ignored silently. */
void config_apply (struct config *c, const char *opt, const char *source);

/* Apply every option of a kernel command line: words separated by
 * blanks; a double-quoted stretch keeps its blanks (param="a b"). */
void config_parse_cmdline (struct config *c, const char *cmdline,
                           size_t len);

/* Apply a config file's text: one option per line (or several separated
 * by blanks, as on the command line); '#' starts a comment; the
 * "vmconvert." prefix may be left out. */
void config_parse_file (struct config *c, const char *text, size_t len,
                        const char *name);

/* Parse one dracut ip= value into *ip: 0, or -1 with a message in WHY. */
int config_parse_ip (const char *val, struct ip_conf *ip, char *why,
                     size_t whylen);

/* Parse a connection URL, vmconvert://[TOKEN@]HOST[:PORT][/JOB]
 * [?fingerprint=sha256:HEX][&format=FMT], into c: 0, or -1 with a
 * message in WHY. */
int config_parse_url (struct config *c, const char *url, char *why,
                      size_t whylen);

/* A MAC in any case, with ':' or '-': lower case with ':' into out[18].
 * 0, or -1 when it is not a MAC. */
int config_norm_mac (const char *in, char out[18]);

#endif
