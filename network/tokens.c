/* SPDX-License-Identifier: MIT */
/*
 * The tokens file; see tokens.h.
 *
 * Consumption is serialised by a process-wide mutex (connections are
 * threads) and by an exclusive flock on the file (another receiver on the
 * same file), then the remaining lines are written to a temporary file
 * that replaces the original.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../converter/lib/error.h"
#include "tokens.h"

#define LINE_MAX_LEN 1024

static pthread_mutex_t tokens_lock = PTHREAD_MUTEX_INITIALIZER;

bool
secret_equal (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b), i;
    unsigned char diff = la != lb;

    for (i = 0; i < la && i < lb; i++) {
        diff |= (unsigned char) (a[i] ^ b[i]);
    }
    return diff == 0;
}

void
token_hash (const char *token, char out[TOKEN_HASH_HEX])
{
    unsigned char md[32];
    unsigned int len = 0, i;

    EVP_Digest (token, strlen (token), md, &len, EVP_sha256 (), NULL);
    for (i = 0; i < 32; i++) {
        snprintf (out + 2 * i, 3, "%02x", md[i]);
    }
}

/* Split LINE into its token and kind; false for blank and comment lines
 * and for lines that are not "TOKEN [reusable]". */
static bool
parse_line (char *line, char **tok, enum token_kind *kind)
{
    char *p = line, *end;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '\0' || *p == '#' || *p == '\n') {
        return false;
    }
    end = p;
    while (*end != '\0' && *end != ' ' && *end != '\t' && *end != '\n' &&
           *end != '\r') {
        end++;
    }
    *tok = p;
    *kind = TOKEN_SINGLE;
    if (*end != '\0') {
        char *rest = end + 1;

        *end = '\0';
        while (*rest == ' ' || *rest == '\t') {
            rest++;
        }
        if (strncmp (rest, "reusable", 8) == 0) {
            *kind = TOKEN_REUSABLE;
        }
    }
    return true;
}

int
tokens_lookup (const char *file, const char *token, enum token_kind *kind)
{
    char line[LINE_MAX_LEN], *tok;
    enum token_kind k;
    FILE *fp;

    *kind = TOKEN_NONE;
    if (file == NULL || token[0] == '\0') {
        return 0;
    }
    fp = fopen (file, "r");
    if (fp == NULL) {
        vmc_perror ("%s", file);
        return -1;
    }
    while (fgets (line, sizeof line, fp) != NULL) {
        /* Every line is compared, so the time taken does not tell which
         * token matched. */
        if (parse_line (line, &tok, &k) && secret_equal (tok, token) &&
            *kind == TOKEN_NONE) {
            *kind = k;
        }
    }
    fclose (fp);
    return 0;
}

int
tokens_consume (const char *file, const char *token)
{
    char line[LINE_MAX_LEN], copy[LINE_MAX_LEN], *tok, *tmp = NULL;
    enum token_kind k;
    bool found = false;
    FILE *in = NULL, *out = NULL;
    struct stat st;
    int fd = -1, lockfd = -1, r = -1;

    pthread_mutex_lock (&tokens_lock);
    lockfd = open (file, O_RDONLY | O_CLOEXEC);
    if (lockfd == -1 || flock (lockfd, LOCK_EX) == -1 ||
        fstat (lockfd, &st) == -1) {
        vmc_perror ("%s", file);
        goto out;
    }
    in = fopen (file, "r");
    if (in == NULL || asprintf (&tmp, "%s.tmp.%d", file, (int) getpid ()) == -1) {
        tmp = NULL;
        vmc_perror ("%s", file);
        goto out;
    }
    fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
               st.st_mode & 0777);
    if (fd == -1 || (out = fdopen (fd, "w")) == NULL) {
        vmc_perror ("%s", tmp);
        goto out;
    }
    fd = -1;
    while (fgets (line, sizeof line, in) != NULL) {
        memcpy (copy, line, sizeof copy);
        if (!found && parse_line (copy, &tok, &k) && k == TOKEN_SINGLE &&
            secret_equal (tok, token)) {
            found = true;
            continue;
        }
        fputs (line, out);
    }
    if (!found) {
        vmc_error ("the token was already used");
        goto out;
    }
    if (fflush (out) != 0 || fsync (fileno (out)) != 0) {
        vmc_perror ("%s", tmp);
        goto out;
    }
    if (rename (tmp, file) == -1) {
        vmc_perror ("rename %s", file);
        goto out;
    }
    free (tmp);
    tmp = NULL;
    r = 0;
out:
    if (out != NULL) {
        fclose (out);
    }
    if (fd != -1) {
        close (fd);
    }
    if (tmp != NULL) {
        unlink (tmp);
        free (tmp);
    }
    if (in != NULL) {
        fclose (in);
    }
    if (lockfd != -1) {
        close (lockfd);
    }
    pthread_mutex_unlock (&tokens_lock);
    return r;
}
