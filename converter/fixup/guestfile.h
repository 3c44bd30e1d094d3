/* SPDX-License-Identifier: MIT */
/*
 * Files of a mounted guest, changed from outside it: every path is
 * resolved inside the guest's root directory (openat2 RESOLVE_IN_ROOT),
 * so a symlink the guest made (/etc/fstab -> /dev/sda) can never lead a
 * write out of the guest; nor into the guest's /proc, /sys, /dev and /run,
 * which hold this machine's filesystems while the guest's tools run
 * (guestcmd.h): the functions below refuse paths there (EXDEV), except
 * guest_openat, with which those mount points are opened.  Files are
 * replaced atomically: a new file in the same directory with the old
 * one's mode and owner, fsync, rename.
 */
#ifndef VMC_FIXUP_GUESTFILE_H
#define VMC_FIXUP_GUESTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct guest {
    int rootfd;                 /* the guest's root directory */
    char root[256];             /* its path, for commands and messages */
};

/* Open the guest mounted at ROOT: 0, or -1 with a message. */
int guest_open (struct guest *g, const char *root);
void guest_close (struct guest *g);

/* Open PATH (absolute, inside the guest) with FLAGS: an fd, or -1 with
 * errno set (ENOENT when it does not exist). */
int guest_openat (const struct guest *g, const char *path, int flags,
                  mode_t mode);

/* The whole file PATH (at most MAX bytes, NUL-terminated): 0; 1 when it
 * does not exist; -1 on an error (message set). */
int guest_read (const struct guest *g, const char *path, size_t max,
                char **buf, size_t *len);

/* Replace (or create, with MODE) PATH with LEN bytes of BUF.  0, or -1
 * with a message. */
int guest_write (const struct guest *g, const char *path, const char *buf,
                 size_t len, mode_t mode);

/* Whether PATH exists (symlinks followed inside the guest). */
bool guest_exists (const struct guest *g, const char *path);

/* Remove file PATH: 0 (also when it did not exist), -1 with a message. */
int guest_unlink (const struct guest *g, const char *path);

/* Copy file SRC to DST inside the guest (DST replaced): 0, -1. */
int guest_copy (const struct guest *g, const char *src, const char *dst);

/* Make directory PATH and its parents (mode 0755): 0, -1. */
int guest_mkdirs (const struct guest *g, const char *path);

/* The names in directory PATH (not "." and ".."), sorted, at most
 * GUEST_NAMES_MAX.  0 (an absent directory gives none), -1 on an
 * error. */
#define GUEST_NAMES_MAX 4096
struct guest_names {
    char **v;
    size_t n;
};
int guest_list (const struct guest *g, const char *path,
                struct guest_names *names);
void guest_names_free (struct guest_names *names);

#endif
