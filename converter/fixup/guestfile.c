/* SPDX-License-Identifier: MIT */
/*
 * A mounted guest's files, resolved inside its root: see guestfile.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/error.h"
#include "guestfile.h"

#define COPY_MAX (512u << 20)       /* a file guest_copy copies */

int
guest_open (struct guest *g, const char *root)
{
    memset (g, 0, sizeof *g);
    snprintf (g->root, sizeof g->root, "%s", root);
    g->rootfd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g->rootfd < 0) {
        vmc_perror ("%s", root);
        return -1;
    }
    return 0;
}

void
guest_close (struct guest *g)
{
    if (g->rootfd >= 0) {
        close (g->rootfd);
    }
    g->rootfd = -1;
}

int
guest_openat (const struct guest *g, const char *path, int flags,
              mode_t mode)
{
    struct open_how how;

    memset (&how, 0, sizeof how);
    how.flags = (uint64_t) (flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    while (*path == '/') {
        path++;
    }
    if (*path == '\0') {
        path = ".";
    }
    return (int) syscall (SYS_openat2, g->rootfd, path, &how, sizeof how);
}

/* Whether FD is in one of the directories guest_mount_api fills with this
 * machine's own filesystems (/proc, /sys, /dev, /run of the guest's
 * root): a guest's symlink into them (/etc/udev/rules.d -> /dev/shm)
 * would lead a file operation out of the guest.  Where FD is comes from
 * the kernel (its path through /proc/self/fd), after every link. */
static bool
in_api_dir (const struct guest *g, int fd)
{
    static const char *const api[] = { "/proc", "/sys", "/dev", "/run" };
    char at[64], root[4096], p[4096];
    ssize_t rl, pl;

    snprintf (at, sizeof at, "/proc/self/fd/%d", g->rootfd);
    rl = readlink (at, root, sizeof root - 1);
    snprintf (at, sizeof at, "/proc/self/fd/%d", fd);
    pl = readlink (at, p, sizeof p - 1);
    if (rl <= 0 || pl <= 0) {
        return true;                /* cannot tell: refuse */
    }
    if (rl == 1) {
        rl = 0;                     /* the guest is "/" */
    }
    p[pl] = '\0';
    if (pl < rl || memcmp (p, root, (size_t) rl) != 0) {
        return false;
    }
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        size_t l = strlen (api[i]);

        if (strncmp (p + rl, api[i], l) == 0 &&
            (p[rl + l] == '\0' || p[rl + l] == '/')) {
            return true;
        }
    }
    return false;
}

/* guest_openat for the guest's files: never in the API directories. */
static int
file_openat (const struct guest *g, const char *path, int flags, mode_t mode)
{
    int fd = guest_openat (g, path, flags, mode);

    if (fd >= 0 && in_api_dir (g, fd)) {
        close (fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

int
guest_read (const struct guest *g, const char *path, size_t max, char **buf,
            size_t *len)
{
    int fd = file_openat (g, path, O_RDONLY, 0);
    struct stat st;
    char *b;
    size_t n = 0;

    if (fd < 0) {
        if (errno == ENOENT) {
            return 1;
        }
        vmc_perror ("%s", path);
        return -1;
    }
    if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) ||
        (uint64_t) st.st_size > max) {
        vmc_error ("%s: not a regular file of at most %zu bytes", path, max);
        close (fd);
        return -1;
    }
    b = malloc ((size_t) st.st_size + 1);
    if (b == NULL) {
        vmc_perror ("malloc");
        close (fd);
        return -1;
    }
    while (n < (size_t) st.st_size) {
        ssize_t r = read (fd, b + n, (size_t) st.st_size - n);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        n += (size_t) r;
    }
    close (fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* The directory of PATH opened inside the guest, and the last component
 * into BASE. */
static int
open_parent (const struct guest *g, const char *path, char *base,
             size_t basecap)
{
    char dir[4096];
    const char *slash = strrchr (path, '/');
    int fd;

    if (slash == NULL || slash[1] == '\0' ||
        (size_t) (slash - path) >= sizeof dir ||
        strlen (slash + 1) >= basecap || strcmp (slash + 1, ".") == 0 ||
        strcmp (slash + 1, "..") == 0) {
        vmc_error ("%s: not a file path", path);
        return -1;
    }
    memcpy (dir, path, (size_t) (slash - path));
    dir[slash - path] = '\0';
    memcpy (base, slash + 1, strlen (slash + 1) + 1);
    fd = file_openat (g, dir[0] != '\0' ? dir : "/", O_RDONLY | O_DIRECTORY,
                      0);
    if (fd < 0) {
        vmc_perror ("%s", dir[0] != '\0' ? dir : "/");
    }
    return fd;
}

static int
write_file (const struct guest *g, const char *path, const char *buf,
            size_t len, mode_t mode, unsigned depth)
{
    char base[256], tmp[300];
    struct stat st;
    int dfd, fd = -1, r = -1;
    size_t off = 0;
    bool old;

    if (depth > 8) {
        vmc_error ("%s: too many levels of symbolic links", path);
        return -1;
    }
    dfd = open_parent (g, path, base, sizeof base);
    if (dfd < 0) {
        return -1;
    }
    /* The file itself, when it is a symlink, stays one: its target
     * (inside the guest) is what is replaced. */
    {
        char target[4096];
        ssize_t tl = readlinkat (dfd, base, target, sizeof target - 1);

        if (tl > 0) {
            char full[4400];

            target[tl] = '\0';
            close (dfd);
            if (target[0] == '/') {
                snprintf (full, sizeof full, "%s", target);
            }
            else {
                snprintf (full, sizeof full, "%.*s/%s",
                          (int) (strrchr (path, '/') - path), path, target);
            }
            return write_file (g, full, buf, len, mode, depth + 1);
        }
    }
    old = fstatat (dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG (st.st_mode);
    snprintf (tmp, sizeof tmp, ".%s.vmconvert-new", base);
    unlinkat (dfd, tmp, 0);
    fd = openat (dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                 O_CLOEXEC, old ? st.st_mode & 07777 : mode);
    if (fd < 0) {
        vmc_perror ("%s: creating a new file", path);
        goto out;
    }
    if (old && (fchown (fd, st.st_uid, st.st_gid) < 0 ||
                fchmod (fd, st.st_mode & 07777) < 0)) {
        vmc_perror ("%s: setting owner and mode", path);
        goto out;
    }
    while (off < len) {
        ssize_t w = write (fd, buf + off, len - off);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            vmc_perror ("%s: writing", path);
            goto out;
        }
        off += (size_t) w;
    }
    if (fsync (fd) < 0) {
        vmc_perror ("%s: fsync", path);
        goto out;
    }
    if (renameat (dfd, tmp, dfd, base) < 0) {
        vmc_perror ("%s: rename", path);
        goto out;
    }
    r = 0;
out:
    if (fd >= 0) {
        close (fd);
    }
    if (r < 0) {
        unlinkat (dfd, tmp, 0);
    }
    close (dfd);
    return r;
}

int
guest_write (const struct guest *g, const char *path, const char *buf,
             size_t len, mode_t mode)
{
    return write_file (g, path, buf, len, mode, 0);
}

bool
guest_exists (const struct guest *g, const char *path)
{
    int fd = file_openat (g, path, O_PATH, 0);

    if (fd < 0) {
        return false;
    }
    close (fd);
    return true;
}

int
guest_unlink (const struct guest *g, const char *path)
{
    char base[256];
    int dfd = open_parent (g, path, base, sizeof base), r = 0;

    if (dfd < 0) {
        return errno == ENOENT ? 0 : -1;
    }
    if (unlinkat (dfd, base, 0) < 0 && errno != ENOENT) {
        vmc_perror ("%s: unlink", path);
        r = -1;
    }
    close (dfd);
    return r;
}

int
guest_copy (const struct guest *g, const char *src, const char *dst)
{
    char *buf;
    size_t len;
    int r = guest_read (g, src, COPY_MAX, &buf, &len);

    if (r != 0) {
        if (r == 1) {
            vmc_error ("%s: no such file", src);
        }
        return -1;
    }
    r = guest_write (g, dst, buf, len, 0644);
    free (buf);
    return r;
}

int
guest_mkdirs (const struct guest *g, const char *path)
{
    char p[4096];
    size_t n = strlen (path);

    if (n >= sizeof p) {
        vmc_error ("%s: path too long", path);
        return -1;
    }
    memcpy (p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            int fd;

            p[i] = '\0';
            fd = file_openat (g, p, O_RDONLY | O_DIRECTORY, 0);
            if (fd >= 0) {
                close (fd);
            }
            else {
                char base[256];
                int dfd = open_parent (g, p, base, sizeof base);

                if (dfd < 0) {
                    return -1;
                }
                if (mkdirat (dfd, base, 0755) < 0 && errno != EEXIST) {
                    vmc_perror ("%s: mkdir", p);
                    close (dfd);
                    return -1;
                }
                close (dfd);
            }
            p[i] = c;
        }
    }
    return 0;
}

static int
name_cmp (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

int
guest_list (const struct guest *g, const char *path,
            struct guest_names *names)
{
    int fd = file_openat (g, path, O_RDONLY | O_DIRECTORY, 0);
    struct dirent *de;
    DIR *d;

    names->v = NULL;
    names->n = 0;
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return 0;
        }
        vmc_perror ("%s", path);
        return -1;
    }
    d = fdopendir (fd);
    if (d == NULL) {
        vmc_perror ("%s", path);
        close (fd);
        return -1;
    }
    while ((de = readdir (d)) != NULL && names->n < GUEST_NAMES_MAX) {
        char **v;

        if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0) {
            continue;
        }
        v = realloc (names->v, (names->n + 1) * sizeof *v);
        if (v == NULL || (v[names->n] = strdup (de->d_name)) == NULL) {
            if (v != NULL) {
                names->v = v;
            }
            vmc_perror ("malloc");
            closedir (d);
            guest_names_free (names);
            return -1;
        }
        names->v = v;
        names->n++;
    }
    closedir (d);
    if (names->n > 0) {
        qsort (names->v, names->n, sizeof *names->v, name_cmp);
    }
    return 0;
}

void
guest_names_free (struct guest_names *names)
{
    for (size_t i = 0; i < names->n; i++) {
        free (names->v[i]);
    }
    free (names->v);
    names->v = NULL;
    names->n = 0;
}
