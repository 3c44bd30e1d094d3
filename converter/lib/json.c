/* SPDX-License-Identifier: MIT */
/*
 * JSON string literals; see json.h.  Bytes >= 0x80 are passed through
 * (UTF-8 stays UTF-8); control characters become \uXXXX.
 */
#include "json.h"

void
json_string (FILE *fp, const char *s)
{
    const unsigned char *p;

    fputc ('"', fp);
    for (p = (const unsigned char *) s; *p != '\0'; p++) {
        switch (*p) {
        case '"': fputs ("\\\"", fp); break;
        case '\\': fputs ("\\\\", fp); break;
        case '\n': fputs ("\\n", fp); break;
        case '\r': fputs ("\\r", fp); break;
        case '\t': fputs ("\\t", fp); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fprintf (fp, "\\u%04x", *p);
            }
            else {
                fputc (*p, fp);
            }
        }
    }
    fputc ('"', fp);
}
