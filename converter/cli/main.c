/* SPDX-License-Identifier: MIT */
/*
 * vmconvert: entry point and subcommand dispatch.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../lib/error.h"
#include "../lib/image.h"
#include "cli.h"

#ifndef VMC_VERSION
#define VMC_VERSION "0.1"
#endif

static const struct {
    const char *name;
    int (*fn) (int argc, char **argv);
    const char *summary;
} commands[] = {
    { "info", cmd_info, "show an image's format, sizes and backing chain" },
    { "convert", cmd_convert, "convert an image to another format" },
    { "compare", cmd_compare, "compare the guest contents of two images" },
    { "check", cmd_check, "check an image's metadata for consistency" },
    { "map", cmd_map, "show partitions, LVM, filesystems and used space" },
    { "inspect", cmd_inspect, "find the guest OS and check it can be converted" },
    { "digest", cmd_digest, "print the digest of an image's guest content" },
    { "send", cmd_send, "stream disks to a receiver over TLS" },
    { "receive", cmd_receive, "receive disks from senders over TLS" },
};

void
cli_error (void)
{
    fprintf (stderr, "vmconvert: %s\n", vmc_get_error ());
}

void
cli_errorf (const char *fmt, ...)
{
    va_list ap;

    fputs ("vmconvert: ", stderr);
    va_start (ap, fmt);
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    fputc ('\n', stderr);
}

void
print_formats (FILE *fp, bool writable_only)
{
    const struct image_format *const *f;

    for (f = image_formats (); *f != NULL; f++) {
        if (writable_only && (*f)->create == NULL) {
            continue;
        }
        fprintf (fp, "  %-6s %s%s%s%s\n", (*f)->name, (*f)->description,
                 (*f)->alias != NULL ? " (alias " : "",
                 (*f)->alias != NULL ? (*f)->alias : "",
                 (*f)->alias != NULL ? ")" : "");
    }
}

static void
usage (FILE *fp)
{
    size_t i;

    fprintf (fp,
             "Usage: vmconvert COMMAND [OPTIONS] ...\n"
             "\n"
             "Commands:\n");
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        fprintf (fp, "  %-8s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf (fp,
             "\n"
             "Run \"vmconvert COMMAND --help\" for a command's options.\n"
             "\n"
             "Formats:\n");
    print_formats (fp, false);
}

int
main (int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        usage (stderr);
        return 1;
    }
    if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
        strcmp (argv[1], "help") == 0) {
        usage (stdout);
        return 0;
    }
    if (strcmp (argv[1], "--version") == 0 || strcmp (argv[1], "-V") == 0) {
        printf ("vmconvert %s\n", VMC_VERSION);
        return 0;
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp (argv[1], commands[i].name) == 0) {
            return commands[i].fn (argc - 1, argv + 1);
        }
    }
    cli_errorf ("unknown command \"%s\" (see vmconvert --help)", argv[1]);
    return 1;
}
