/* SPDX-License-Identifier: MIT */
/*
 * The appliance's settings (config.h).  Everything here is parsed from
 * text a person typed on a boot menu or into a file, or from a URL: each
 * value is checked, a bad one is reported and ignored, and nothing is
 * fatal here — the console shows the messages and asks for what is
 * missing.
 *
 * dracut's network syntax (dracut.cmdline(7), "Network"):
 *   ip={dhcp|on|any|dhcp6|auto6|link6|either6|single-dhcp}
 *   ip=<interface>:{dhcp|on|any|dhcp6|auto6|link6|none|off}[:[<mtu>][:<mac>]]
 *   ip=<client-IP>:[<peer>]:<gateway-IP>:<netmask>:<client_hostname>:
 *      <interface>:{none|off|dhcp|on|any|dhcp6|auto6|ibft}
 *      [:[<mtu>][:<mac>]] or [:[<dns1>][:<dns2>]]
 *   nameserver=<IP>, vlan=<vlanname>:<phydevice>, ifname=<interface>:<MAC>
 * IPv6 addresses go in brackets; the netmask may be a prefix length.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../converter/lib/options.h"
#include "../network/proto.h"
#include "../network/tls.h"
#include "config.h"

#define KEY_PREFIX "vmconvert."

void
config_init (struct config *c)
{
    memset (c, 0, sizeof *c);
    c->compress = COMP_NONE;
    c->post = POST_POWEROFF;
    c->retry_seconds = 86400;
    c->wait_seconds = 10;
}

static void
msg (struct config *c, bool error, const char *fmt, ...)
{
    va_list ap;

    if (error) {
        c->nerrors++;
    }
    if (c->nmsgs >= CFG_MAX_MSGS) {
        return;
    }
    va_start (ap, fmt);
    vsnprintf (c->msgs[c->nmsgs++], sizeof c->msgs[0], fmt, ap);
    va_end (ap);
}

/* Copy VAL into OUT (size CAP), refusing what does not fit or holds
 * control characters. */
static int
set_str (char *out, size_t cap, const char *val)
{
    size_t n = strlen (val);

    if (n >= cap) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char) val[i] < 0x20 || val[i] == 0x7f) {
            return -1;
        }
    }
    memcpy (out, val, n + 1);
    return 0;
}

int
config_norm_mac (const char *in, char out[18])
{
    unsigned i;

    if (strlen (in) != 17) {
        return -1;
    }
    for (i = 0; i < 17; i++) {
        char ch = in[i];

        if (i % 3 == 2) {
            if (ch != ':' && ch != '-') {
                return -1;
            }
            out[i] = ':';
        }
        else if (isxdigit ((unsigned char) ch)) {
            out[i] = (char) tolower ((unsigned char) ch);
        }
        else {
            return -1;
        }
    }
    out[17] = '\0';
    return 0;
}

static bool
valid_ifname (const char *s)
{
    size_t n = strlen (s);

    if (n == 0 || n > 15) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum ((unsigned char) s[i]) && s[i] != '.' && s[i] != '-' &&
            s[i] != '_') {
            return false;
        }
    }
    return true;
}

static bool
valid_ip (const char *s, bool *v6)
{
    unsigned char buf[16];

    if (inet_pton (AF_INET, s, buf) == 1) {
        *v6 = false;
        return true;
    }
    if (inet_pton (AF_INET6, s, buf) == 1) {
        *v6 = true;
        return true;
    }
    return false;
}

/* A netmask: a prefix length, or a dotted IPv4 mask with contiguous
 * ones. */
static int
parse_mask (const char *s, bool v6, unsigned *prefix)
{
    char *end;
    unsigned long n;
    struct in_addr a;

    if (*s == '\0') {
        *prefix = v6 ? 64 : 24;
        return 0;
    }
    if (strchr (s, '.') == NULL) {
        n = strtoul (s, &end, 10);
        if (*end != '\0' || end == s || n > (v6 ? 128u : 32u)) {
            return -1;
        }
        *prefix = (unsigned) n;
        return 0;
    }
    if (v6 || inet_pton (AF_INET, s, &a) != 1) {
        return -1;
    }
    uint32_t m = ntohl (a.s_addr);
    unsigned p = 0;

    while (p < 32 && (m & (UINT32_C (1) << (31 - p)))) {
        p++;
    }
    if (p < 32 && (m << p) != 0) {
        return -1;                  /* not contiguous */
    }
    *prefix = p;
    return 0;
}

static int
parse_method (const char *s, enum ip_method *m)
{
    static const struct { const char *name; enum ip_method m; } t[] = {
        { "dhcp", IP_DHCP }, { "on", IP_DHCP }, { "any", IP_DHCP },
        { "single-dhcp", IP_DHCP }, { "dhcp6", IP_DHCP6 },
        { "auto6", IP_AUTO6 }, { "link6", IP_AUTO6 }, { "either6", IP_AUTO6 },
        { "none", IP_OFF }, { "off", IP_OFF },
    };

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strcmp (s, t[i].name) == 0) {
            *m = t[i].m;
            return 0;
        }
    }
    return -1;
}

/* Split VAL at ':' outside brackets into at most MAX fields (brackets
 * removed).  Returns the count, or -1 (too many fields, bad brackets). */
static int
split_fields (const char *val, char fields[][64], int max)
{
    int n = 0;
    size_t len = 0;
    bool in = false, was_bracketed = false;

    fields[0][0] = '\0';
    for (const char *p = val;; p++) {
        if (*p == '\0' || (*p == ':' && !in)) {
            if (in || n >= max) {
                return -1;
            }
            fields[n][len] = '\0';
            n++;
            if (*p == '\0') {
                return n;
            }
            if (n >= max) {
                return -1;
            }
            len = 0;
            was_bracketed = false;
            continue;
        }
        if (*p == '[' && len == 0 && !in && !was_bracketed) {
            in = true;
            continue;
        }
        if (*p == ']' && in) {
            in = false;
            was_bracketed = true;
            if (p[1] != '\0' && p[1] != ':') {
                return -1;
            }
            continue;
        }
        if (len + 1 >= 64) {
            return -1;
        }
        fields[n][len++] = *p;
    }
}

int
config_parse_ip (const char *val, struct ip_conf *ip, char *why,
                 size_t whylen)
{
    char f[9][64];
    int n;
    bool v6 = false;

    memset (ip, 0, sizeof *ip);
    n = split_fields (val, f, 9);
    if (n < 0) {
        snprintf (why, whylen, "too many fields or unbalanced brackets");
        return -1;
    }
    if (n == 1) {
        if (parse_method (f[0], &ip->method) == -1 || ip->method == IP_OFF) {
            snprintf (why, whylen, "\"%s\" is not dhcp, on, any, dhcp6, "
                      "auto6, link6 or either6", f[0]);
            return -1;
        }
        return 0;
    }
    if (n <= 4 && parse_method (f[1], &ip->method) == 0) {
        /* <interface>:<method>[:<mtu>[:<mac>]] */
        if (!valid_ifname (f[0])) {
            snprintf (why, whylen, "\"%s\" is not an interface name", f[0]);
            return -1;
        }
        snprintf (ip->dev, sizeof ip->dev, "%.15s", f[0]);
        if (n >= 3 && f[2][0] != '\0') {
            char *end;
            unsigned long mtu = strtoul (f[2], &end, 10);

            if (*end != '\0' || mtu < 576 || mtu > 65535) {
                snprintf (why, whylen, "MTU \"%s\" is not 576 to 65535", f[2]);
                return -1;
            }
            ip->mtu = (unsigned) mtu;
        }
        if (n == 4 && f[3][0] != '\0' && config_norm_mac (f[3], ip->mac) == -1) {
            snprintf (why, whylen, "\"%s\" is not a MAC address", f[3]);
            return -1;
        }
        return 0;
    }
    if (n < 7) {
        snprintf (why, whylen, "expected <client-IP>:[<peer>]:<gateway>:"
                  "<netmask>:<hostname>:<interface>:<method>");
        return -1;
    }
    /* <client-IP>:[<peer>]:<gateway-IP>:<netmask>:<hostname>:<interface>:
     * <method>[:[<mtu>][:<mac>]] or [:[<dns1>][:<dns2>]] */
    if (parse_method (f[6], &ip->method) == -1) {
        snprintf (why, whylen, "\"%s\" is not a method (none, off, dhcp, "
                  "on, any, dhcp6, auto6)", f[6]);
        return -1;
    }
    if (f[0][0] != '\0') {
        if (!valid_ip (f[0], &v6)) {
            snprintf (why, whylen, "\"%s\" is not an IP address", f[0]);
            return -1;
        }
        snprintf (ip->addr, sizeof ip->addr, "%s", f[0]);
        if (ip->method == IP_OFF) {
            ip->method = IP_STATIC;
        }
    }
    else if (ip->method == IP_OFF) {
        /* No address and no method: bring the link up only. */
    }
    if (f[1][0] != '\0') {
        bool pv6;

        if (!valid_ip (f[1], &pv6)) {
            snprintf (why, whylen, "peer \"%s\" is not an IP address", f[1]);
            return -1;
        }
        snprintf (ip->peer, sizeof ip->peer, "%s", f[1]);
    }
    if (f[2][0] != '\0') {
        bool gv6;

        if (!valid_ip (f[2], &gv6) || (ip->addr[0] != '\0' && gv6 != v6)) {
            snprintf (why, whylen, "gateway \"%s\" is not an IP address of "
                      "the same family", f[2]);
            return -1;
        }
        snprintf (ip->gateway, sizeof ip->gateway, "%s", f[2]);
    }
    if (parse_mask (f[3], v6, &ip->prefix) == -1) {
        snprintf (why, whylen, "netmask \"%s\" is neither a prefix length "
                  "nor a contiguous mask", f[3]);
        return -1;
    }
    if (set_str (ip->hostname, sizeof ip->hostname, f[4]) == -1) {
        snprintf (why, whylen, "bad host name");
        return -1;
    }
    if (f[5][0] != '\0') {
        if (!valid_ifname (f[5])) {
            snprintf (why, whylen, "\"%s\" is not an interface name", f[5]);
            return -1;
        }
        snprintf (ip->dev, sizeof ip->dev, "%.15s", f[5]);
    }
    /* Field 8 and 9: an MTU and a MAC, or one or two name servers. */
    for (int i = 7; i < n; i++) {
        bool dv6;
        char *end;
        unsigned long mtu;

        if (f[i][0] == '\0') {
            continue;
        }
        if (valid_ip (f[i], &dv6)) {
            snprintf (ip->dns[i - 7], sizeof ip->dns[0], "%s", f[i]);
            continue;
        }
        if (i == 8 && config_norm_mac (f[i], ip->mac) == 0) {
            continue;
        }
        mtu = strtoul (f[i], &end, 10);
        if (i == 7 && *end == '\0' && mtu >= 576 && mtu <= 65535) {
            ip->mtu = (unsigned) mtu;
            continue;
        }
        snprintf (why, whylen, "\"%s\" is neither an MTU, a MAC nor a name "
                  "server", f[i]);
        return -1;
    }
    return 0;
}

static int
parse_vlan (const char *val, struct vlan_conf *v, char *why, size_t whylen)
{
    const char *colon = strchr (val, ':');
    const char *digits;
    size_t n;
    char *end;
    unsigned long id;

    memset (v, 0, sizeof v[0]);
    if (colon == NULL || (n = (size_t) (colon - val)) == 0 ||
        n >= sizeof v->name) {
        snprintf (why, whylen, "expected <vlanname>:<phydevice>");
        return -1;
    }
    memcpy (v->name, val, n);
    v->name[n] = '\0';
    snprintf (v->phys, sizeof v->phys, "%.31s", colon + 1);
    if (!valid_ifname (v->name) || !valid_ifname (v->phys)) {
        snprintf (why, whylen, "bad interface name");
        return -1;
    }
    /* The id is the name's trailing digits: vlan0100, vlan100, eth0.0100,
     * eth0.100. */
    digits = v->name + strlen (v->name);
    while (digits > v->name && isdigit ((unsigned char) digits[-1])) {
        digits--;
    }
    id = strtoul (digits, &end, 10);
    if (*digits == '\0' || id < 1 || id > 4094 ||
        (digits > v->name && digits[-1] != '.' &&
         strncmp (v->name, "vlan", 4) != 0)) {
        snprintf (why, whylen, "cannot tell the VLAN id from \"%s\" (name "
                  "it vlan<ID> or <phys>.<ID>, ID 1-4094)", v->name);
        return -1;
    }
    v->id = (unsigned) id;
    return 0;
}

static bool
valid_host (const char *s)
{
    /* A host name, an IPv4 address, or an IPv6 address in brackets, and
     * an optional :PORT; the sender checks the details. */
    if (*s == '\0' || strlen (s) > 260) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!isalnum ((unsigned char) *s) && strchr (".-_:[]%", *s) == NULL) {
            return false;
        }
    }
    return true;
}

static int
parse_compress (struct config *c, const char *val)
{
    /* METHOD or METHOD:LEVEL */
    char m[16];
    const char *colon = strchr (val, ':');
    size_t n = colon != NULL ? (size_t) (colon - val) : strlen (val);
    int level = 0;

    if (n >= sizeof m) {
        return -1;
    }
    memcpy (m, val, n);
    m[n] = '\0';
    if (colon != NULL) {
        char *end;
        long l = strtol (colon + 1, &end, 10);

        if (*end != '\0' || end == colon + 1 || l < 1 || l > 19) {
            return -1;
        }
        level = (int) l;
    }
    if (strcmp (m, "zstd") == 0) {
        c->compress = COMP_ZSTD;
    }
    else if (strcmp (m, "zlib") == 0) {
        c->compress = COMP_ZLIB;
    }
    else if (strcmp (m, "none") == 0 || strcmp (m, "0") == 0) {
        c->compress = COMP_NONE;
    }
    else {
        return -1;
    }
    c->level = level;
    return 0;
}

static bool
is_bool (const char *v, bool *out)
{
    if (strcmp (v, "1") == 0 || strcmp (v, "yes") == 0 ||
        strcmp (v, "true") == 0 || strcmp (v, "on") == 0 || *v == '\0') {
        *out = true;
        return true;
    }
    if (strcmp (v, "0") == 0 || strcmp (v, "no") == 0 ||
        strcmp (v, "false") == 0 || strcmp (v, "off") == 0) {
        *out = false;
        return true;
    }
    return false;
}

static void
apply_ours (struct config *c, const char *key, const char *val,
            const char *source)
{
    char why[160];
    uint64_t v;
    bool b;

#define BAD(...) do { snprintf (why, sizeof why, __VA_ARGS__); goto bad; } \
                 while (0)
    if (strcmp (key, "server") == 0) {
        if (!valid_host (val) || set_str (c->server, sizeof c->server, val)) {
            BAD ("\"%s\" is not HOST[:PORT]", val);
        }
    }
    else if (strcmp (key, "fingerprint") == 0) {
        if (!tls_fingerprint_valid (val)) {
            BAD ("expected sha256: and 64 hex digits");
        }
        snprintf (c->fingerprint, sizeof c->fingerprint, "%s", val);
    }
    else if (strcmp (key, "token") == 0) {
        if (set_str (c->token, sizeof c->token, val) == -1) {
            BAD ("too long");
        }
    }
    else if (strcmp (key, "job") == 0) {
        if (!proto_job_name_valid (val)) {
            BAD ("\"%s\": use letters, digits, '.', '_', '-' (64 at most)",
                 val);
        }
        snprintf (c->job, sizeof c->job, "%s", val);
    }
    else if (strcmp (key, "disks") == 0) {
        if (set_str (c->disks, sizeof c->disks, val) == -1) {
            BAD ("too long");
        }
    }
    else if (strcmp (key, "format") == 0) {
        static const char *const ok[] = { "qcow2", "raw", "vmdk", "vhdx",
                                          "vhd", "vpc", "vdi" };
        size_t i;

        for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
            if (strcmp (val, ok[i]) == 0) {
                break;
            }
        }
        if (i == sizeof ok / sizeof ok[0]) {
            BAD ("\"%s\" is not qcow2, raw, vmdk, vhdx, vhd or vdi", val);
        }
        snprintf (c->format, sizeof c->format, "%s", val);
    }
    else if (strcmp (key, "compress") == 0) {
        if (parse_compress (c, val) == -1) {
            BAD ("\"%s\" is not zstd, zlib or none (optionally :LEVEL 1-19)",
                 val);
        }
    }
    else if (strcmp (key, "post") == 0) {
        if (strcmp (val, "poweroff") == 0) {
            c->post = POST_POWEROFF;
        }
        else if (strcmp (val, "reboot") == 0) {
            c->post = POST_REBOOT;
        }
        else if (strcmp (val, "shell") == 0) {
            c->post = POST_SHELL;
        }
        else {
            BAD ("\"%s\" is not poweroff, reboot or shell", val);
        }
    }
    else if (strcmp (key, "maxrate") == 0 || strcmp (key, "max_rate") == 0) {
        if (parse_size (val, &v) == -1 || (v != 0 && v < 4096)) {
            BAD ("\"%s\" is not a rate of 4K (bytes per second) or more, "
                 "or 0", val);
        }
        c->max_rate = v;
    }
    else if (strcmp (key, "retry") == 0) {
        if (parse_size (val, &v) == -1 || v < 10 || v > 30 * 86400) {
            BAD ("\"%s\" is not 10 to 2592000 seconds", val);
        }
        c->retry_seconds = (int) v;
    }
    else if (strcmp (key, "wait") == 0) {
        if (parse_size (val, &v) == -1 || v > 3600) {
            BAD ("\"%s\" is not 0 to 3600 seconds", val);
        }
        c->wait_seconds = (int) v;
    }
    else if (strcmp (key, "allblocks") == 0 ||
             strcmp (key, "all_blocks") == 0) {
        if (!is_bool (val, &b)) {
            BAD ("\"%s\" is not 0 or 1", val);
        }
        c->all_blocks = b;
    }
    else if (strcmp (key, "interactive") == 0) {
        if (!is_bool (val, &b)) {
            BAD ("\"%s\" is not 0 or 1", val);
        }
        c->interactive = b;
    }
    else if (strcmp (key, "fixup") == 0) {
        if (strcmp (val, "auto") == 0) {
            c->fixup = FIXUP_AUTO;
        }
        else if (is_bool (val, &b)) {
            c->fixup = b ? FIXUP_YES : FIXUP_NO;
        }
        else {
            BAD ("\"%s\" is not auto, 1 or 0", val);
        }
    }
    else if (strcmp (key, "target") == 0) {
        if (strcmp (val, "kvm") != 0 && strcmp (val, "hyperv") != 0 &&
            strcmp (val, "vmware") != 0) {
            BAD ("\"%s\" is not kvm, hyperv or vmware", val);
        }
        snprintf (c->target, sizeof c->target, "%s", val);
    }
    else if (strcmp (key, "root") == 0) {
        if (set_str (c->root, sizeof c->root, val) == -1) {
            BAD ("too long");
        }
    }
    else if (strcmp (key, "mac") == 0) {
        size_t l = strlen (c->macs);

        if (strlen (val) + l + 2 > sizeof c->macs) {
            BAD ("too long");
        }
        snprintf (c->macs + l, sizeof c->macs - l, "%s%s", l > 0 ? "," : "",
                  val);
    }
    else if (strcmp (key, "mode") == 0) {
        if (strcmp (val, "fixup") == 0) {
            c->fixup_vm = true;
        }
        else if (strcmp (val, "send") == 0) {
            c->fixup_vm = false;
        }
        else {
            BAD ("\"%s\" is not send or fixup", val);
        }
    }
    else if (strcmp (key, "initshell") == 0 || strcmp (key, "debug") == 0) {
        /* The init script's and the console's business. */
    }
    else {
        msg (c, false, "%s: unknown option vmconvert.%s (ignored)", source,
             key);
    }
    return;
bad:
    msg (c, true, "%s: vmconvert.%s: %s (ignored)", source, key, why);
#undef BAD
}

void
config_apply (struct config *c, const char *opt, const char *source)
{
    char key[64];
    const char *eq = strchr (opt, '=');
    const char *val = eq != NULL ? eq + 1 : "";
    size_t n = eq != NULL ? (size_t) (eq - opt) : strlen (opt);
    char why[160];

    if (n >= sizeof key) {
        return;
    }
    memcpy (key, opt, n);
    key[n] = '\0';
    if (strncmp (key, KEY_PREFIX, strlen (KEY_PREFIX)) == 0) {
        apply_ours (c, key + strlen (KEY_PREFIX), val, source);
    }
    else if (strcmp (key, "ip") == 0) {
        if (c->nip >= CFG_MAX_IP) {
            msg (c, true, "%s: more than %d ip= options", source, CFG_MAX_IP);
        }
        else if (config_parse_ip (val, &c->ip[c->nip], why, sizeof why) ==
                 -1) {
            msg (c, true, "%s: ip=%.60s: %s (ignored)", source, val, why);
        }
        else {
            c->nip++;
        }
    }
    else if (strcmp (key, "nameserver") == 0) {
        bool v6;

        if (!valid_ip (val, &v6)) {
            msg (c, true, "%s: nameserver=%.60s: not an IP address", source,
                 val);
        }
        else if (c->ndns < CFG_MAX_DNS) {
            snprintf (c->dns[c->ndns++], sizeof c->dns[0], "%s", val);
        }
    }
    else if (strcmp (key, "vlan") == 0) {
        if (c->nvlan >= CFG_MAX_VLAN) {
            msg (c, true, "%s: more than %d vlan= options", source,
                 CFG_MAX_VLAN);
        }
        else if (parse_vlan (val, &c->vlan[c->nvlan], why, sizeof why) == -1) {
            msg (c, true, "%s: vlan=%.60s: %s (ignored)", source, val, why);
        }
        else {
            c->nvlan++;
        }
    }
    else if (strcmp (key, "ifname") == 0) {
        const char *colon = strchr (val, ':');
        struct ifname_conf *f = &c->ifname[c->nifname];
        size_t ln = colon != NULL ? (size_t) (colon - val) : 0;

        if (c->nifname >= CFG_MAX_IFNAME) {
            msg (c, true, "%s: more than %d ifname= options", source,
                 CFG_MAX_IFNAME);
            return;
        }
        if (colon == NULL || ln == 0 || ln >= sizeof f->name ||
            config_norm_mac (colon + 1, f->mac) == -1) {
            msg (c, true, "%s: ifname=%.60s: expected <interface>:<MAC>",
                 source, val);
            return;
        }
        memcpy (f->name, val, ln);
        f->name[ln] = '\0';
        if (!valid_ifname (f->name)) {
            msg (c, true, "%s: ifname=%.60s: bad interface name", source, val);
            return;
        }
        c->nifname++;
    }
}

/* Split TEXT into words (blanks separate, double quotes group and are
 * dropped) and apply each.  Stops at a '#' that starts a word when
 * COMMENTS. */
static void
apply_words (struct config *c, const char *text, size_t len,
             const char *source, bool comments, bool add_prefix)
{
    char word[1400];
    size_t i = 0;

    while (i < len) {
        size_t n = 0;
        bool quoted = false, overflow = false;

        while (i < len && (text[i] == ' ' || text[i] == '\t' ||
                           text[i] == '\n' || text[i] == '\r')) {
            i++;
        }
        if (i >= len || text[i] == '\0') {
            return;
        }
        if (comments && text[i] == '#') {
            return;
        }
        for (; i < len && text[i] != '\0'; i++) {
            char ch = text[i];

            if (ch == '"') {
                quoted = !quoted;
                continue;
            }
            if (!quoted && (ch == ' ' || ch == '\t' || ch == '\n' ||
                            ch == '\r')) {
                break;
            }
            if (n + 1 < sizeof word) {
                word[n++] = ch;
            }
            else {
                overflow = true;
            }
        }
        word[n] = '\0';
        if (overflow) {
            msg (c, true, "%s: an option longer than %zu characters "
                 "(ignored)", source, sizeof word - 1);
            continue;
        }
        if (add_prefix && strncmp (word, KEY_PREFIX, strlen (KEY_PREFIX)) != 0
            && strncmp (word, "ip=", 3) != 0 &&
            strncmp (word, "nameserver=", 11) != 0 &&
            strncmp (word, "vlan=", 5) != 0 &&
            strncmp (word, "ifname=", 7) != 0) {
            char full[sizeof word + sizeof KEY_PREFIX];

            snprintf (full, sizeof full, "%s%s", KEY_PREFIX, word);
            config_apply (c, full, source);
        }
        else {
            config_apply (c, word, source);
        }
    }
}

void
config_parse_cmdline (struct config *c, const char *cmdline, size_t len)
{
    apply_words (c, cmdline, len, "kernel command line", false, false);
}

void
config_parse_file (struct config *c, const char *text, size_t len,
                   const char *name)
{
    size_t start = 0;
    unsigned line = 0;

    while (start < len) {
        size_t end = start;
        char source[160];

        while (end < len && text[end] != '\n') {
            end++;
        }
        line++;
        snprintf (source, sizeof source, "%s line %u", name, line);
        apply_words (c, text + start, end - start, source, true, true);
        start = end + 1;
    }
}

/* %XX decoding of a URL part into OUT (CAP). */
static int
url_decode (const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (ch == '%') {
            char hex[3];
            char *end;

            if (i + 2 >= n) {
                return -1;
            }
            hex[0] = s[i + 1];
            hex[1] = s[i + 2];
            hex[2] = '\0';
            if (!isxdigit ((unsigned char) hex[0]) ||
                !isxdigit ((unsigned char) hex[1])) {
                return -1;
            }
            ch = (char) strtoul (hex, &end, 16);
            i += 2;
        }
        if ((unsigned char) ch < 0x20 || o + 1 >= cap) {
            return -1;
        }
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

int
config_parse_url (struct config *c, const char *url, char *why,
                  size_t whylen)
{
    static const char scheme[] = "vmconvert://";
    const char *p, *auth_end, *at, *slash, *q;
    char host[300], job[80] = "", token[256] = "";
    struct config tmp;

    while (*url == ' ' || *url == '\t') {
        url++;
    }
    if (strncasecmp (url, scheme, strlen (scheme)) != 0) {
        snprintf (why, whylen, "a URL starts with %s", scheme);
        return -1;
    }
    p = url + strlen (scheme);
    auth_end = p + strcspn (p, "/?");
    at = memchr (p, '@', (size_t) (auth_end - p));
    if (at != NULL) {
        if (url_decode (p, (size_t) (at - p), token, sizeof token) == -1) {
            snprintf (why, whylen, "bad token in the URL");
            return -1;
        }
        p = at + 1;
    }
    if (url_decode (p, (size_t) (auth_end - p), host, sizeof host) == -1 ||
        !valid_host (host)) {
        snprintf (why, whylen, "bad host in the URL");
        return -1;
    }
    slash = *auth_end == '/' ? auth_end : NULL;
    q = strchr (auth_end, '?');
    if (slash != NULL) {
        const char *js = slash + 1;
        size_t jn = q != NULL ? (size_t) (q - js) : strlen (js);

        if (jn > 0 && (url_decode (js, jn, job, sizeof job) == -1 ||
                       !proto_job_name_valid (job))) {
            snprintf (why, whylen, "bad job name in the URL");
            return -1;
        }
    }
    /* Apply to a copy, so a bad URL changes nothing. */
    tmp = *c;
    tmp.nmsgs = tmp.nerrors = 0;
    snprintf (tmp.server, sizeof tmp.server, "%s", host);
    if (token[0] != '\0') {
        snprintf (tmp.token, sizeof tmp.token, "%s", token);
    }
    if (job[0] != '\0') {
        snprintf (tmp.job, sizeof tmp.job, "%s", job);
    }
    while (q != NULL && *q != '\0') {
        const char *k = q + 1, *amp = strchr (k, '&'), *eq;
        size_t kn = amp != NULL ? (size_t) (amp - k) : strlen (k);
        char kv[1400], opt[1500];

        eq = memchr (k, '=', kn);
        if (eq == NULL || url_decode (k, kn, kv, sizeof kv) == -1) {
            snprintf (why, whylen, "bad query in the URL");
            return -1;
        }
        snprintf (opt, sizeof opt, KEY_PREFIX "%s", kv);
        if (strncmp (kv, "fingerprint=", 12) != 0 &&
            strncmp (kv, "format=", 7) != 0 &&
            strncmp (kv, "compress=", 9) != 0 &&
            strncmp (kv, "token=", 6) != 0 && strncmp (kv, "job=", 4) != 0) {
            snprintf (why, whylen, "unknown URL parameter \"%.40s\"", kv);
            return -1;
        }
        config_apply (&tmp, opt, "URL");
        if (tmp.nerrors > 0) {
            snprintf (why, whylen, "%s", tmp.msgs[0]);
            return -1;
        }
        q = amp;
    }
    tmp.nmsgs = c->nmsgs;
    tmp.nerrors = c->nerrors;
    memcpy (tmp.msgs, c->msgs, sizeof tmp.msgs);
    *c = tmp;
    return 0;
}
