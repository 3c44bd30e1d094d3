/* SPDX-License-Identifier: MIT */
/*
 * The receiver's tokens file.
 *
 * One token per line; `#` starts a comment; blank lines are ignored.  A
 * line "TOKEN" is a single-use token, consumed (removed from the file) by
 * the first job that uses it; "TOKEN reusable" may start any number of
 * jobs (a PXE fleet).  A consumed token stays valid for its own job, which
 * keeps the token's SHA-256 so that the sender can resume.  The file is
 * read on every authentication, so tokens can be added while the receiver
 * runs, and rewritten atomically (rename) when a token is consumed.
 */
#ifndef VMC_TOKENS_H
#define VMC_TOKENS_H

#include <stdbool.h>

#define TOKEN_HASH_HEX 65

enum token_kind { TOKEN_NONE, TOKEN_SINGLE, TOKEN_REUSABLE };

/* Look TOKEN up in FILE.  TOKEN_NONE when absent (or FILE is NULL);
 * -1 when the file cannot be read. */
int tokens_lookup (const char *file, const char *token, enum token_kind *kind);

/* Remove a single-use TOKEN from FILE (atomically).  0 when removed, -1
 * when it was not there any more (another job took it) or on error. */
int tokens_consume (const char *file, const char *token);

/* Lowercase hex SHA-256 of TOKEN, into OUT. */
void token_hash (const char *token, char out[TOKEN_HASH_HEX]);

/* Compare two strings in time that does not depend on where they differ. */
bool secret_equal (const char *a, const char *b);

#endif
