/* SPDX-License-Identifier: MIT */
/*
 * vmconvert check [-f FMT] IMG: metadata consistency.  Exit status as
 * qemu-img check: 0 no errors, 1 the check could not run (the image could
 * not even be opened), 2 corruption found, 3 only leaked clusters.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "../lib/error.h"
#include "../lib/image.h"
#include "cli.h"

/* Print at most this many findings; count the rest. */
#define MAX_PRINTED 100

struct report_state {
    uint64_t printed;
};

static void
report (void *opaque, bool is_error, const char *msg)
{
    struct report_state *st = opaque;

    if (st->printed++ < MAX_PRINTED) {
        printf ("%s: %s\n", is_error ? "ERROR" : "Leaked", msg);
    }
}

static void
check_usage (FILE *fp)
{
    fprintf (fp,
             "Usage: vmconvert check [-f FMT] IMG\n"
             "\n"
             "Check the metadata of IMG for consistency.  Exit status: 0 no\n"
             "errors, 1 the check could not run, 2 corruption, 3 leaks only.\n"
             "\n"
             "  -f, --format FMT   read IMG as FMT (default: probe)\n"
             "  -h, --help         this text\n");
}

int
cmd_check (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct report_state st = { 0 };
    struct check_result res = { 0 };
    const char *format = NULL;
    struct image *img;
    int c, r;

    while ((c = getopt_long (argc, argv, "f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'h': check_usage (stdout); return 0;
        default: check_usage (stderr); return 1;
        }
    }
    if (argc - optind != 1) {
        check_usage (stderr);
        return 1;
    }
    img = image_open (argv[optind], format, IMAGE_OPEN_NO_BACKING);
    if (img == NULL) {
        cli_error ();
        return 1;
    }
    res.report = report;
    res.opaque = &st;
    if (image_check (img, &res) == -1) {
        cli_error ();
        image_close (img);
        return 1;
    }
    if (st.printed > MAX_PRINTED) {
        printf ("... and %" PRIu64 " more\n", st.printed - MAX_PRINTED);
    }
    if (res.errors > 0) {
        printf ("\n%" PRIu64 " errors were found on the image.\n"
                "Data may be corrupted, or further writes to the image may "
                "corrupt it.\n", res.errors);
        r = 2;
    }
    else if (res.leaks > 0) {
        printf ("\n%" PRIu64 " leaked clusters were found on the image.\n"
                "This means waste of disk space, but no harm to data.\n",
                res.leaks);
        r = 3;
    }
    else {
        printf ("No errors were found on the image.\n");
        r = 0;
    }
    image_close (img);
    return r;
}
