/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the appliance's settings parsers — a kernel command line,
 * a vmconvert.cfg file, one ip= value and a connection URL, all text a
 * person (or a DHCP/PXE server's boot script) supplies.  The first byte
 * picks the parser.  Every parsed field must stay NUL-terminated within
 * its array, which the checks below walk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../appliance/config.h"

static void
check_terminated (const char *s, size_t cap)
{
    if (memchr (s, '\0', cap) == NULL) {
        abort ();
    }
}

static void
check_config (const struct config *c)
{
    check_terminated (c->server, sizeof c->server);
    check_terminated (c->fingerprint, sizeof c->fingerprint);
    check_terminated (c->token, sizeof c->token);
    check_terminated (c->job, sizeof c->job);
    check_terminated (c->disks, sizeof c->disks);
    check_terminated (c->format, sizeof c->format);
    if (c->nip > CFG_MAX_IP || c->nvlan > CFG_MAX_VLAN ||
        c->nifname > CFG_MAX_IFNAME || c->ndns > CFG_MAX_DNS ||
        c->nmsgs > CFG_MAX_MSGS) {
        abort ();
    }
    for (unsigned i = 0; i < c->nip; i++) {
        check_terminated (c->ip[i].dev, sizeof c->ip[i].dev);
        check_terminated (c->ip[i].addr, sizeof c->ip[i].addr);
        check_terminated (c->ip[i].mac, sizeof c->ip[i].mac);
    }
    for (unsigned i = 0; i < c->nmsgs; i++) {
        check_terminated (c->msgs[i], sizeof c->msgs[i]);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static struct config c;
    char text[4096], why[200];
    struct ip_conf ip;
    size_t n;

    if (size == 0) {
        return 0;
    }
    n = size - 1 < sizeof text - 1 ? size - 1 : sizeof text - 1;
    memcpy (text, data + 1, n);
    text[n] = '\0';
    config_init (&c);
    switch (data[0] % 4) {
    case 0: config_parse_cmdline (&c, (const char *) data + 1, size - 1); break;
    case 1: config_parse_file (&c, (const char *) data + 1, size - 1, "f"); break;
    case 2:
        if (config_parse_ip (text, &ip, why, sizeof why) == 0) {
            check_terminated (ip.addr, sizeof ip.addr);
            check_terminated (ip.dev, sizeof ip.dev);
        }
        else {
            check_terminated (why, sizeof why);
        }
        break;
    case 3: (void) config_parse_url (&c, text, why, sizeof why); break;
    }
    check_config (&c);
    return 0;
}
