/* SPDX-License-Identifier: MIT */
/*
 * Creation option parsing (-o) and size strings.
 */
#include <string.h>

#include "../../converter/lib/error.h"
#include "../../converter/lib/options.h"
#include "test.h"

static void
test_parse (void)
{
    struct options o = { 0 };
    static const struct create_option allowed[] = {
        { "subformat", "" }, { "cluster_size", "" }, { "name", "" },
        { NULL, NULL },
    };
    uint64_t v;
    bool b;

    CHECK (options_parse (&o, "subformat=streamOptimized,cluster_size=64k") ==
           0);
    CHECK (o.count == 2);
    CHECK (strcmp (options_get (&o, "subformat"), "streamOptimized") == 0);
    CHECK (options_get_size (&o, "cluster_size", 0, &v) == 0 && v == 65536);
    CHECK (options_get_size (&o, "absent", 42, &v) == 0 && v == 42);
    CHECK (options_get (&o, "absent") == NULL);
    /* A later key overrides; ",," is a literal comma. */
    CHECK (options_parse (&o, "subformat=x,name=a,,b,,") == 0);
    CHECK (strcmp (options_get (&o, "subformat"), "x") == 0);
    CHECK (strcmp (options_get (&o, "name"), "a,b,") == 0);
    CHECK (o.count == 3);
    CHECK (options_check (&o, allowed, "t") == 0);
    CHECK (options_set (&o, "bogus", "1") == 0);
    CHECK (options_check (&o, allowed, "t") == -1);
    CHECK (strstr (vmc_get_error (), "bogus") != NULL);
    CHECK (options_parse (&o, "novalue") == -1);
    CHECK (options_parse (&o, "=x") == -1);
    CHECK (options_parse (&o, ",,,") == -1 || o.count == 4);
    CHECK (options_set (&o, "flag", "on") == 0);
    CHECK (options_get_bool (&o, "flag", false, &b) == 0 && b);
    CHECK (options_set (&o, "flag", "maybe") == 0);
    CHECK (options_get_bool (&o, "flag", false, &b) == -1);
    CHECK (options_get_bool (&o, "absent", true, &b) == 0 && b);
    options_free (&o);
    CHECK (o.count == 0 && o.kv == NULL);
    options_free (NULL);
}

static void
test_sizes (void)
{
    uint64_t v;

    CHECK (parse_size ("0", &v) == 0 && v == 0);
    CHECK (parse_size ("512", &v) == 0 && v == 512);
    CHECK (parse_size ("512b", &v) == 0 && v == 512);
    CHECK (parse_size ("4k", &v) == 0 && v == 4096);
    CHECK (parse_size ("4K", &v) == 0 && v == 4096);
    CHECK (parse_size ("4KiB", &v) == 0 && v == 4096);
    CHECK (parse_size ("2M", &v) == 0 && v == 2u << 20);
    CHECK (parse_size ("3G", &v) == 0 && v == UINT64_C (3) << 30);
    CHECK (parse_size ("1T", &v) == 0 && v == UINT64_C (1) << 40);
    CHECK (parse_size ("16383P", &v) == 0);
    CHECK (parse_size ("16384P", &v) == -1);
    CHECK (parse_size ("18446744073709551615", &v) == 0 && v == UINT64_MAX);
    CHECK (parse_size ("18446744073709551616", &v) == -1);
    CHECK (parse_size ("", &v) == -1);
    CHECK (parse_size ("-1", &v) == -1);
    CHECK (parse_size ("1.5M", &v) == -1);
    CHECK (parse_size ("1X", &v) == -1);
    CHECK (parse_size ("1KK", &v) == -1);
    CHECK (parse_size (" 1", &v) == -1);
}

int
main (void)
{
    test_parse ();
    test_sizes ();
    return test_status ();
}
