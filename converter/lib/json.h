/* SPDX-License-Identifier: MIT */
/*
 * Writing JSON: string literals with every character that needs it
 * escaped.  (Reading JSON is not needed: the only JSON that comes from
 * outside, a sender's source facts, is validated and stored verbatim.)
 */
#ifndef VMC_JSON_H
#define VMC_JSON_H

#include <stdio.h>

/* Write S as a JSON string literal, quotes included. */
void json_string (FILE *fp, const char *s);

#endif
