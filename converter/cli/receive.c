/* SPDX-License-Identifier: MIT */
/*
 * vmconvert receive: the receiver daemon (network/receiver.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../network/proto.h"
#include "../../network/receiver.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/options.h"
#include "../lib/rounding.h"
#include "cli.h"

static void
receive_usage (FILE *fp)
{
    fprintf (fp,
             "Usage: vmconvert receive --dir DIR [--listen ADDR[:PORT]]\n"
             "         [--format FMT] [-o KEY=VAL,...] [--tokens FILE]\n"
             "         [--cert FILE --key FILE] [--client-ca FILE]\n"
             "         [--idle-timeout SECONDS] [--max-connections N]\n"
             "         [--ack-bytes SIZE] [--ack-ms MS]\n"
             "\n"
             "Receive disks from `vmconvert send` over TLS 1.3 and write each\n"
             "job into DIR/JOB/ (one image per disk, and job.json).  Prints\n"
             "the certificate's fingerprint (the one thing a sender must be\n"
             "told) and the address it listens on, then serves until SIGTERM.\n"
             "\n"
             "  --listen ADDR[:PORT]   address to listen on (default\n"
             "                         0.0.0.0:%d; IPv6: [ADDR]:PORT)\n"
             "  --dir DIR              where jobs are written (required)\n"
             "  --format FMT           qcow2 (default), raw, vmdk, vhdx, vhd,\n"
             "                         vdi\n"
             "  -o KEY=VAL,...         creation options of that format\n"
             "  --tokens FILE          sender tokens, one per line; a line\n"
             "                         \"TOKEN reusable\" may start many jobs,\n"
             "                         others are used up by the first\n"
             "  --cert FILE --key FILE the server certificate (default: a\n"
             "                         self-signed one, made once in\n"
             "                         DIR/.tls/)\n"
             "  --client-ca FILE       accept client certificates signed by\n"
             "                         this CA (instead of, or besides, tokens)\n"
             "  --idle-timeout SECONDS drop a silent sender (default 60)\n"
             "  --max-connections N    refuse more at once (default 256)\n"
             "  --ack-bytes SIZE       make data durable and acknowledge it\n"
             "                         at least every SIZE bytes (default\n"
             "                         64M) ...\n"
             "  --ack-ms MS            ... and every MS milliseconds (1000)\n"
             "  -h, --help             this text\n", PROTO_DEFAULT_PORT);
}

int
cmd_receive (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "dir", required_argument, NULL, 'd' },
        { "format", required_argument, NULL, 'F' },
        { "options", required_argument, NULL, 'o' },
        { "tokens", required_argument, NULL, 't' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "client-ca", required_argument, NULL, 'a' },
        { "idle-timeout", required_argument, NULL, 'i' },
        { "max-connections", required_argument, NULL, 'm' },
        { "ack-bytes", required_argument, NULL, 'B' },
        { "ack-ms", required_argument, NULL, 'M' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct receiver_config c = {
        .listen = "0.0.0.0",
        .format = "qcow2",
        .idle_timeout_ms = 60000,
        .ack_bytes = 64u << 20,
        .ack_ms = 1000,
        .max_conns = 256,
    };
    struct options check = { 0 };
    uint64_t v;
    int opt, r;

    while ((opt = getopt_long (argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': c.listen = optarg; break;
        case 'd': c.dir = optarg; break;
        case 'F': c.format = optarg; break;
        case 'o': c.options = optarg; break;
        case 't': c.tokens = optarg; break;
        case 'c': c.cert = optarg; break;
        case 'k': c.key = optarg; break;
        case 'a': c.client_ca = optarg; break;
        case 'i':
        case 'm':
        case 'B':
        case 'M':
            if (parse_size (optarg, &v) == -1 || v == 0 || v > (1ull << 40)) {
                cli_errorf ("--%s: \"%s\" is not a positive number",
                            opt == 'i' ? "idle-timeout" : opt == 'm'
                            ? "max-connections" : opt == 'B' ? "ack-bytes"
                            : "ack-ms", optarg);
                return 1;
            }
            if (opt == 'i') {
                c.idle_timeout_ms = (int) MIN (v, 86400) * 1000;
            }
            else if (opt == 'm') {
                c.max_conns = (unsigned) MIN (v, 100000);
            }
            else if (opt == 'B') {
                c.ack_bytes = v;
            }
            else {
                c.ack_ms = (int) MIN (v, 3600000);
            }
            break;
        case 'h': receive_usage (stdout); return 0;
        default: receive_usage (stderr); return 1;
        }
    }
    if (c.dir == NULL || optind != argc) {
        receive_usage (stderr);
        return 1;
    }
    /* Creation options are checked now, not at the first job. */
    if (c.options != NULL) {
        const struct image_format *fmt = image_format_by_name (c.format);

        if (fmt == NULL || options_parse (&check, c.options) == -1 ||
            options_check (&check, fmt->create_opts, fmt->name) == -1) {
            options_free (&check);
            cli_error ();
            return 1;
        }
        options_free (&check);
    }
    r = receiver_run (&c);
    if (r != 0 && vmc_get_error ()[0] != '\0') {
        cli_error ();
    }
    return r;
}
