/* SPDX-License-Identifier: MIT */
/*
 * netconf: what the format parsers (netconf-*.c) share with netconf.c:
 * the model's helpers, the rules for addresses, MACs and DNS servers, and
 * the line readers.  Private to the parsers; the API is netconf.h.  The
 * names begin with nc_, as they are visible to the whole library.
 */
#ifndef VMC_FIXUP_NETCONF_INT_H
#define VMC_FIXUP_NETCONF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "netconf.h"

#define LINE_MAX_ 4096              /* a logical line, continuations and
                                     * all */

/* The prefix nc_add_addr gives an address without one: the host's, the
 * classful one for IPv4 and 64 for IPv6 (ifcfg), 24 and 64
 * (NetworkManager), the classful one and 128 (ifupdown). */
enum { DEF_HOST, DEF_CLASSFUL, DEF_NM, DEF_IFUPDOWN };

/* A text read line by line: what is left of it, and the lines read. */
struct lines {
    const char *p, *end;
    unsigned lineno;
};

/* Copy N bytes of S into DST (CAP bytes) if they fit and are printable. */
bool nc_set_n (char *dst, size_t cap, const char *s, size_t n);
/* nc_set_n of the whole string S. */
bool nc_set_str (char *dst, size_t cap, const char *s);
/* A new entry of TOOL from PATH, or NULL (*ERR set on memory errors). */
struct net_iface *nc_add_iface (struct net_config *c, const char *path,
                                const char *tool, int *err);
/* Lower-case xx:xx:xx:xx:xx:xx from the N bytes at S, in any notation. */
bool nc_parse_mac (const char *s, size_t n, char out[18]);
/* 4 or 6 for an address inet_pton accepts, else 0. */
int nc_addr_family (const char *a);
/* The decimal number in the N bytes at S, at most MAX, into *V; or -1. */
int nc_parse_uint (const char *s, size_t n, unsigned max, unsigned *v);
/* A netmask or a bare number as a prefix of FAMILY (4 or 6), or -1. */
int nc_mask_prefix (const char *m, int family);
/* Add the address S (MASK or DEF when it has no prefix): its index, or -1. */
int nc_add_addr (struct net_config *c, struct net_iface *i, const char *s,
                 const char *mask, int def);
/* A gateway into gateway4 or gateway6, by its family ("%dev" cut). */
void nc_set_gateway (struct net_config *c, struct net_iface *i, const char *s);
/* The N bytes at S as a DNS server of I (duplicates dropped). */
void nc_add_dns (struct net_config *c, struct net_iface *i, const char *s,
                 size_t n);
/* Each blank- (or SEPS-) separated word of S as a DNS server. */
void nc_add_dns_list (struct net_config *c, struct net_iface *i, const char *s,
                      const char *seps);
/* systemd's, netplan's and ifcfg's boolean words; -1 for others. */
int nc_parse_bool (const char *s);
/* The next physical line into BUF (*BAD: skip it); false at the end. */
bool nc_next_line (struct lines *l, char *buf, size_t cap, bool *bad);
/* The next line with backslash continuations joined; false at the end. */
bool nc_next_logical (struct lines *l, char *buf, size_t cap, bool *bad);
/* S without its leading and trailing blanks (cut in place). */
char *nc_trim (char *s);
/* Split S in place into at most MAX blank-separated words. */
unsigned nc_split_words (char *s, char **w, unsigned max);

#endif
