/* SPDX-License-Identifier: MIT */
/*
 * vmconvert send: stream disks to a receiver (network/sender.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../network/proto.h"
#include "../../network/sender.h"
#include "../lib/error.h"
#include "../lib/image.h"
#include "../lib/options.h"
#include "../lib/rounding.h"
#include "cli.h"

static void
send_usage (FILE *fp)
{
    fprintf (fp,
             "Usage: vmconvert send --to HOST[:PORT] (--fingerprint sha256:HEX |\n"
             "         --ca FILE) [--token TOKEN | --token-file FILE] [--job NAME]\n"
             "         [--compress zstd|zlib|none] [--level N] [-f FMT] [-O FMT]\n"
             "         [--facts FILE] [--progress[=text|json|none]]\n"
             "         [--retry SECONDS] [--backoff SECONDS] [--window SIZE]\n"
             "         [--timeout SECONDS] [--max-rate RATE] [--cert FILE --key FILE]\n"
             "         [--all-blocks] SRC...\n"
             "\n"
             "Send each SRC (an image file of any readable format, or a block\n"
             "device) to a `vmconvert receive` over TLS 1.3, as one job.  Only\n"
             "data is sent; every extent carries a hash and every disk ends\n"
             "with a digest the receiver checks.  A dropped connection or a\n"
             "restarted receiver is resumed from what the receiver made\n"
             "durable.\n"
             "\n"
             "  --to HOST[:PORT]         the receiver (default port %d)\n"
             "  --fingerprint sha256:HEX trust the receiver by its certificate's\n"
             "                           fingerprint (what it prints at start)\n"
             "  --ca FILE                ... or through this CA\n"
             "  --token TOKEN            a token from the receiver's tokens file\n"
             "  --token-file FILE        ... read from FILE (not visible in ps);\n"
             "                           also $VMCONVERT_TOKEN\n"
             "  --cert FILE --key FILE   a client certificate\n"
             "  --job NAME               the job's name (default: host name)\n"
             "  --compress METHOD        zstd, zlib or none (default none: best\n"
             "                           on fast links; zstd for 1 GbE or less)\n"
             "  --level N                compression level (default: fast)\n"
             "  -f FMT                   read every SRC as FMT\n"
             "  -O FMT                   ask the receiver to write FMT (qcow2,\n"
             "                           raw, vmdk, vhdx, vhd, vdi; default:\n"
             "                           the receiver's --format)\n"
             "  --facts FILE             JSON about the source machine, stored\n"
             "                           in the job's job.json\n"
             "  --progress[=MODE]        text (default with --progress), json\n"
             "                           (one object per line), none\n"
             "  --retry SECONDS          keep reconnecting for this long without\n"
             "                           progress (default 3600)\n"
             "  --backoff SECONDS        first wait before reconnecting (default\n"
             "                           1, fractions allowed); doubled after\n"
             "                           each attempt without progress, up to 30\n"
             "  --window SIZE            unacknowledged data in flight\n"
             "                           (default 256M; 2M at least in effect)\n"
             "  --timeout SECONDS        connect and idle timeout (default 60)\n"
             "  --max-rate RATE          at most RATE bytes per second on the\n"
             "                           wire (e.g. 50M), to spare a shared link\n"
             "  --all-blocks             send every block: no used-block map\n"
             "                           (by default the disks are mapped\n"
             "                           together, see `vmconvert map`, and\n"
             "                           unused ranges are sent as zeros)\n"
             "  -h, --help               this text\n", PROTO_DEFAULT_PORT);
}

static char *
read_token_file (const char *path)
{
    char buf[512], *nl;
    FILE *fp = fopen (path, "r");

    if (fp == NULL || fgets (buf, sizeof buf, fp) == NULL) {
        if (fp != NULL) {
            fclose (fp);
        }
        cli_errorf ("%s: cannot read a token", path);
        return NULL;
    }
    fclose (fp);
    nl = strpbrk (buf, "\r\n");
    if (nl != NULL) {
        *nl = '\0';
    }
    return strdup (buf);
}

/* A number of seconds, with a fraction: 0.001 to 30. */
static int
parse_seconds (const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod (s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0.001 && v <= 30)) {
        return -1;
    }
    *out = v;
    return 0;
}

int
cmd_send (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "to", required_argument, NULL, 'T' },
        { "fingerprint", required_argument, NULL, 'P' },
        { "ca", required_argument, NULL, 'A' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "token", required_argument, NULL, 't' },
        { "token-file", required_argument, NULL, 'K' },
        { "job", required_argument, NULL, 'j' },
        { "compress", required_argument, NULL, 'z' },
        { "level", required_argument, NULL, 'L' },
        { "format", required_argument, NULL, 'f' },
        { "output-format", required_argument, NULL, 'O' },
        { "facts", required_argument, NULL, 'x' },
        { "progress", optional_argument, NULL, 'p' },
        { "retry", required_argument, NULL, 'r' },
        { "window", required_argument, NULL, 'w' },
        { "timeout", required_argument, NULL, 'o' },
        { "all-blocks", no_argument, NULL, 'B' },
        { "backoff", required_argument, NULL, 'b' },
        { "max-rate", required_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct sender_config c = {
        .compress = COMP_NONE,
        .progress = PROGRESS_NONE,
        .retry_seconds = 3600,
        .window = 256u << 20,
        .timeout_ms = 60000,
        .backoff = 1,
    };
    char *token = NULL;
    uint64_t v;
    int opt, r;

    while ((opt = getopt_long (argc, argv, "f:O:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'T': c.to = optarg; break;
        case 'P': c.fingerprint = optarg; break;
        case 'A': c.ca = optarg; break;
        case 'c': c.cert = optarg; break;
        case 'k': c.key = optarg; break;
        case 't': c.token = optarg; break;
        case 'K':
            free (token);
            token = read_token_file (optarg);
            if (token == NULL) {
                return 1;
            }
            c.token = token;
            break;
        case 'j': c.job = optarg; break;
        case 'z':
            if (strcmp (optarg, "zstd") == 0) {
                c.compress = COMP_ZSTD;
            }
            else if (strcmp (optarg, "zlib") == 0) {
                c.compress = COMP_ZLIB;
            }
            else if (strcmp (optarg, "none") == 0) {
                c.compress = COMP_NONE;
            }
            else {
                cli_errorf ("--compress: \"%s\" is not zstd, zlib or none",
                            optarg);
                return 1;
            }
            break;
        case 'L':
            if (parse_size (optarg, &v) == -1 || v < 1 || v > 19) {
                cli_errorf ("--level: \"%s\" is not 1 to 19", optarg);
                return 1;
            }
            c.level = (int) v;
            break;
        case 'f': c.source_format = optarg; break;
        case 'O':
            if (image_format_by_name (optarg) == NULL ||
                image_format_by_name (optarg)->create == NULL) {
                cli_errorf ("-O: \"%s\" is not a format vmconvert writes",
                            optarg);
                return 1;
            }
            c.format = optarg;
            break;
        case 'B': c.all_blocks = true; break;
        case 'x': c.facts_file = optarg; break;
        case 'p':
            if (optarg == NULL || strcmp (optarg, "text") == 0) {
                c.progress = PROGRESS_TEXT;
            }
            else if (strcmp (optarg, "json") == 0) {
                c.progress = PROGRESS_JSON;
            }
            else if (strcmp (optarg, "none") == 0) {
                c.progress = PROGRESS_NONE;
            }
            else {
                cli_errorf ("--progress: \"%s\" is not text, json or none",
                            optarg);
                return 1;
            }
            break;
        case 'r':
        case 'o':
            if (parse_size (optarg, &v) == -1 || v > 30 * 86400 ||
                (opt == 'o' && v == 0)) {
                cli_errorf ("--%s: \"%s\" is not a number of seconds",
                            opt == 'r' ? "retry" : "timeout", optarg);
                return 1;
            }
            if (opt == 'r') {
                c.retry_seconds = (int) v;
            }
            else {
                c.timeout_ms = (int) v * 1000;
            }
            break;
        case 'b':
            if (parse_seconds (optarg, &c.backoff) == -1) {
                cli_errorf ("--backoff: \"%s\" is not a number of seconds "
                            "from 0.001 to 30", optarg);
                return 1;
            }
            break;
        case 'R':
            if (parse_size (optarg, &v) == -1 || v < 4096) {
                cli_errorf ("--max-rate: \"%s\" is not a rate of 4K (bytes "
                            "per second) or more", optarg);
                return 1;
            }
            c.max_rate = v;
            break;
        case 'w':
            if (parse_size (optarg, &v) == -1 || v < (1u << 20)) {
                cli_errorf ("--window: \"%s\" is not a size of 1M or more",
                            optarg);
                return 1;
            }
            c.window = v;
            break;
        case 'h': send_usage (stdout); free (token); return 0;
        default: send_usage (stderr); free (token); return 1;
        }
    }
    if (c.token == NULL) {
        c.token = getenv ("VMCONVERT_TOKEN");
    }
    if (c.to == NULL || optind >= argc ||
        (c.fingerprint == NULL) == (c.ca == NULL)) {
        if (c.to != NULL && optind < argc) {
            cli_errorf ("give exactly one of --fingerprint and --ca");
        }
        else {
            send_usage (stderr);
        }
        free (token);
        return 1;
    }
    c.sources = (const char *const *) argv + optind;
    c.nsources = (unsigned) (argc - optind);
    r = sender_run (&c);
    if (r != 0) {
        cli_error ();
    }
    free (token);
    return r;
}
