/* SPDX-License-Identifier: MIT */
/*
 * Creation options: "-o key=val,key=val" as qemu-img spells them.
 *
 * A value may contain a comma written twice (",,"), as in qemu-img.  Each
 * format lists the keys it accepts (struct create_option); the core refuses
 * any other key before the format's create() runs, so formats only read
 * keys they declared.
 */
#ifndef VMC_OPTIONS_H
#define VMC_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

struct option_kv {
    char *key;
    char *value;
};

struct options {
    struct option_kv *kv;
    unsigned count;
};

/* One accepted key, for validation and for "-o help". */
struct create_option {
    const char *name;
    const char *help;
};

/* Parse STR ("a=1,b=2") and append to OPTS.  A later key overrides an
 * earlier one.  -1 on a malformed string. */
int options_parse (struct options *opts, const char *str);

/* Set one key (copying both strings). */
int options_set (struct options *opts, const char *key, const char *value);

/* The value of KEY, or NULL. */
const char *options_get (const struct options *opts, const char *key);

/* KEY as a size with an optional K/M/G/T suffix (powers of 1024).
 * Sets *out to DEF when absent.  -1 with a message when malformed. */
int options_get_size (const struct options *opts, const char *key,
                      uint64_t def, uint64_t *out);

/* KEY as on/off/true/false/yes/no/1/0.  DEF when absent. */
int options_get_bool (const struct options *opts, const char *key, bool def,
                      bool *out);

/* Parse a size string ("10G", "512", "1.5M" is refused). */
int parse_size (const char *str, uint64_t *out);

/* Check that every key of OPTS is in the NULL-terminated list ALLOWED. */
int options_check (const struct options *opts,
                   const struct create_option *allowed, const char *fmtname);

void options_free (struct options *opts);

#endif
