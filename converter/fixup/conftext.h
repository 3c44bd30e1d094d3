/* SPDX-License-Identifier: MIT */
/*
 * Small readers for the text files of a Linux guest (os-release, fstab,
 * crypttab, /etc/default/grub, dpkg's status file, ...).  Every file comes
 * from the guest and is hostile: lines are taken as they come (no line is
 * too long to skip, none is trusted to end in a newline), fields are
 * copied into fixed-size buffers and cut, never overflowed.
 */
#ifndef VMC_FIXUP_CONFTEXT_H
#define VMC_FIXUP_CONFTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Iterate over the lines of TEXT[0..LEN): *POS is the offset of the next
 * line (start at 0).  0 at the end; otherwise 1 with *LINE and *LLEN set
 * to the line without its newline (and without a trailing '\r'). */
int text_next_line (const char *text, size_t len, size_t *pos,
                    const char **line, size_t *llen);

/* Split LINE[0..LLEN) into at most MAX whitespace-separated fields, each
 * copied NUL-terminated into FIELDS[i] (FIELDCAP bytes, cut when longer),
 * stopping at a '#' that starts a field.  fstab's octal escapes (\040 for
 * a space) are decoded when UNESCAPE.  Returns the number of fields. */
size_t text_fields (const char *line, size_t llen, char fields[][256],
                    size_t max, bool unescape);

/* A shell-style assignment line "KEY=value" (os-release, ifcfg,
 * /etc/default/grub): KEY into KEY (KEYCAP), the value unquoted (single
 * and double quotes, backslash escapes inside double quotes) into VAL
 * (VALCAP).  "export " before KEY is allowed.  1 when the line is such an
 * assignment, 0 otherwise (comments, blank lines, anything else). */
int text_assignment (const char *line, size_t llen, char *key,
                     size_t keycap, char *val, size_t valcap);

/* The value of KEY in shell-assignment text, unquoted, into VAL: 1 when
 * found (the last assignment wins, as in a shell), 0 when not. */
int text_get_var (const char *text, size_t len, const char *key, char *val,
                  size_t valcap);

/* Copy at most N bytes of SRC into DST (CAP bytes), NUL-terminated, with
 * bytes that are not printable ASCII replaced by '?'. */
void text_copy_printable (char *dst, size_t cap, const char *src, size_t n);

/* Copy SRC into DST (CAP bytes), cut to fit, always NUL-terminated. */
void text_set (char *dst, size_t cap, const char *src);

/* true when S begins with PREFIX. */
bool text_starts (const char *s, const char *prefix);

/* Compare two version strings the way sort -V roughly does (runs of
 * digits compared as numbers): <0, 0, >0. */
int text_vercmp (const char *a, const char *b);

#endif
