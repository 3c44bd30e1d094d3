/* SPDX-License-Identifier: MIT */
/*
 * A minimal device-mapper client and loop devices (dm.h).
 *
 * Device-mapper is driven through version 4 of its ioctl interface on
 * /dev/mapper/control (linux/dm-ioctl.h).  Every ioctl takes a struct
 * dm_ioctl, followed by its data: DM_TABLE_LOAD reads target specs
 * (struct dm_target_spec, then the parameter string, padded to 8 bytes;
 * each spec's "next" is the distance to the following one), and
 * DM_TABLE_STATUS writes them back (there "next" counts from the first
 * spec).  A device is made in three steps, as the kernel wants: create
 * the device (a name and a number, no table), load a table (the inactive
 * one), resume (the inactive table becomes the live one).
 *
 * The appliance has no udev, so the nodes are ours to make: devtmpfs
 * makes /dev/dm-N itself when the disk appears; we make it with mknod
 * only when it is missing (a /dev without devtmpfs), and always the
 * /dev/mapper/NAME link that udev would make.
 *
 * Loop devices follow linux/loop.h: a free one from /dev/loop-control
 * (LOOP_CTL_GET_FREE), then LOOP_CONFIGURE (kernel 5.8), or on older
 * kernels LOOP_SET_FD and LOOP_SET_STATUS64.
 *
 * The snapshots (Documentation/admin-guide/device-mapper/snapshot.rst):
 * "snapshot <origin> <COW device> N <chunk size>".  The origin is a disk
 * the appliance has made read-only (BLKROSET); the snapshot target opens
 * it for reading only, so that works, and nothing of the snapshot's is
 * ever written there.  Reads of chunks not yet written come from the
 * origin; the first write to a chunk copies it to the COW device and
 * the write goes there.  The COW device is a loop device on a sparse file
 * in /run (tmpfs), so it costs RAM only as chunks are written.  See
 * snap_create() for why it is not persistent and what happens when it
 * fills up.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "../converter/lib/checked-overflow.h"
#include "../converter/lib/error.h"
#include "dm.h"

/* The struct dm_ioctl header is 312 bytes, a multiple of 8, so the data
 * that follows it is aligned as the kernel wants. */
#define DM_HDR sizeof (struct dm_ioctl)

/* A table larger than this is not something the appliance makes (an LV
 * of a few hundred segments is well under it). */
#define DM_MAX_TARGETS 4096

/* Status and table replies: start here, double while the kernel says
 * the buffer was too small, up to the last size. */
#define DM_REPLY_MIN (16u << 10)
#define DM_REPLY_MAX (4u << 20)

/* Where snap_create() keeps the copy-on-write files (a tmpfs). */
#define COW_DIR "/run/vmconvert/cow"

/* The snapshot chunk: 8 sectors, 4 KiB, the page and filesystem block
 * size, so a 4 KiB write copies no more than itself. */
#define SNAP_CHUNK 8

static char sysroot[PATH_MAX];

void
dm_set_sysroot (const char *root)
{
    size_t n = root != NULL ? strlen (root) : 0;

    while (n > 0 && root[n - 1] == '/') {
        n--;
    }
    if (n >= sizeof sysroot) {
        n = 0;
    }
    if (n > 0) {
        memcpy (sysroot, root, n);
    }
    sysroot[n] = '\0';
}

/* ROOT + the path made from FMT into OUT: 0, or -1 (with a message) when
 * it does not fit. */
static int __attribute__ ((format (printf, 3, 4)))
rpath (char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    size_t n = strlen (sysroot);
    int r;

    if (n >= cap) {
        vmc_error ("device-mapper: path too long");
        return -1;
    }
    memcpy (out, sysroot, n + 1);
    va_start (ap, fmt);
    r = vsnprintf (out + n, cap - n, fmt, ap);
    va_end (ap);
    if (r < 0 || (size_t) r >= cap - n) {
        vmc_error ("device-mapper: path too long");
        return -1;
    }
    return 0;
}

static void
sleep_ms (long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep (&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Append to OUT (holding *LEN bytes of CAP): false when it does not fit. */
static bool __attribute__ ((format (printf, 4, 5)))
append (char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (*len >= cap) {
        return false;
    }
    va_start (ap, fmt);
    r = vsnprintf (out + *len, cap - *len, fmt, ap);
    va_end (ap);
    if (r < 0 || (size_t) r >= cap - *len) {
        out[*len] = '\0';
        return false;
    }
    *len += (size_t) r;
    return true;
}

/* Device names become /dev/mapper/NAME and file names under COW_DIR, so
 * only a conservative set of characters is accepted. */
static int
check_name (const char *name)
{
    size_t n;

    if (name == NULL || name[0] == '\0') {
        vmc_error ("device-mapper: empty device name");
        return -1;
    }
    n = strlen (name);
    if (n > DM_NAME_MAX) {
        vmc_error ("device-mapper: device name %.32s... is longer than %d "
                   "bytes", name, DM_NAME_MAX);
        return -1;
    }
    if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0 ||
        strcmp (name, "control") == 0) {
        vmc_error ("device-mapper: %s cannot be a device name", name);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
              c == '+')) {
            vmc_error ("device-mapper: device name \"%s\": only letters, "
                       "digits and -_.+ are allowed", name);
            return -1;
        }
    }
    return 0;
}

/* A device in a target line: a path or MAJOR:MINOR, printable and
 * without blanks, which would split it into two arguments. */
static int
check_dev (const char *what, const char *dev)
{
    if (dev == NULL || dev[0] == '\0') {
        vmc_error ("device-mapper: %s: no device", what);
        return -1;
    }
    for (const char *p = dev; *p != '\0'; p++) {
        if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f) {
            vmc_error ("device-mapper: %s: device \"%s\" has a blank or an "
                       "unprintable character", what, dev);
            return -1;
        }
    }
    return 0;
}

/* ---- The control device and its ioctls ---------------------------- */

/* Make node PATH (a block or character device, per TYPE) for DEVNUM
 * unless it is there already. */
static int
ensure_node (const char *path, mode_t type, dev_t devnum)
{
    struct stat st;

    if (stat (path, &st) == 0) {
        if ((st.st_mode & S_IFMT) == type && st.st_rdev == devnum) {
            return 0;
        }
        vmc_error ("device-mapper: %s exists and is not device %u:%u", path,
                   major (devnum), minor (devnum));
        return -1;
    }
    if (errno != ENOENT) {
        vmc_perror ("device-mapper: %s", path);
        return -1;
    }
    if (mknod (path, type | 0600, devnum) != 0 && errno != EEXIST) {
        vmc_perror ("device-mapper: mknod %s", path);
        return -1;
    }
    return 0;
}

/* The MAJOR:MINOR a sysfs "dev" file holds. */
static int
read_devnum (const char *path, dev_t *out)
{
    char buf[32];
    unsigned ma, mi;
    char tail;
    ssize_t n;
    int fd = open (path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return -1;
    }
    n = read (fd, buf, sizeof buf - 1);
    close (fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    if (sscanf (buf, "%u:%u%c", &ma, &mi, &tail) != 3 || tail != '\n') {
        return -1;
    }
    *out = makedev (ma, mi);
    return 0;
}

/* /dev/mapper/control, opened.  A kernel with device-mapper has the
 * misc device; devtmpfs normally makes its node, else we do. */
static int
ctl_open (void)
{
    char path[PATH_MAX], sys[PATH_MAX];
    dev_t devnum;
    int fd;

    if (rpath (path, sizeof path, "/dev/%s/%s", DM_DIR,
               DM_CONTROL_NODE) != 0) {
        return -1;
    }
    fd = open (path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        return fd;
    }
    if (errno != ENOENT) {
        vmc_perror ("device-mapper: %s", path);
        return -1;
    }
    if (rpath (sys, sizeof sys, "/sys/class/misc/device-mapper/dev") != 0) {
        return -1;
    }
    if (read_devnum (sys, &devnum) != 0) {
        vmc_error ("device-mapper: %s is missing: the kernel has no "
                   "device-mapper (is the dm_mod module loaded?)", path);
        return -1;
    }
    if (rpath (sys, sizeof sys, "/dev/%s", DM_DIR) != 0) {
        return -1;
    }
    if (mkdir (sys, 0755) != 0 && errno != EEXIST) {
        vmc_perror ("device-mapper: mkdir %s", sys);
        return -1;
    }
    if (ensure_node (path, S_IFCHR, devnum) != 0) {
        return -1;
    }
    fd = open (path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        vmc_perror ("device-mapper: %s", path);
    }
    return fd;
}

/* A struct dm_ioctl of SIZE bytes in all (header and data) for NAME. */
static void
io_init (struct dm_ioctl *io, size_t size, const char *name, uint32_t flags)
{
    memset (io, 0, DM_HDR);
    /* The interface version we speak: 4.0.0, which every kernel with
     * version 4 accepts (it checks the major, and that ours is not
     * newer than its minor). */
    io->version[0] = DM_VERSION_MAJOR;
    io->data_size = (uint32_t) size;
    io->data_start = (uint32_t) DM_HDR;
    io->flags = flags;
    if (name != NULL) {
        size_t n = strlen (name);

        memcpy (io->name, name, n < DM_NAME_LEN ? n : DM_NAME_LEN - 1);
    }
}

static int
dm_call (int fd, unsigned long cmd, const char *cmdname, struct dm_ioctl *io,
         const char *name)
{
    if (ioctl (fd, cmd, io) == 0) {
        return 0;
    }
    if (name != NULL) {
        vmc_perror ("device-mapper: %s %s", cmdname, name);
    } else {
        vmc_perror ("device-mapper: %s", cmdname);
    }
    return -1;
}

int
dm_version_check (void)
{
    struct dm_ioctl io;
    int fd = ctl_open ();
    int r;

    if (fd < 0) {
        return -1;
    }
    io_init (&io, sizeof io, NULL, 0);
    r = dm_call (fd, DM_VERSION, "DM_VERSION", &io, NULL);
    close (fd);
    if (r != 0) {
        return -1;
    }
    if (io.version[0] != DM_VERSION_MAJOR) {
        vmc_error ("device-mapper: the kernel speaks version %u.%u.%u of the "
                   "ioctl interface, not %u", io.version[0], io.version[1],
                   io.version[2], DM_VERSION_MAJOR);
        return -1;
    }
    return 0;
}

/* ---- Tables ------------------------------------------------------- */

long
dm_pack_targets (const struct dm_target *t, size_t n, void *buf, size_t cap)
{
    unsigned char *out = buf;
    uint64_t next_start = 0;
    size_t off = 0;

    if (t == NULL || n == 0) {
        vmc_error ("device-mapper: a table needs at least one target");
        return -1;
    }
    if (n > DM_MAX_TARGETS) {
        vmc_error ("device-mapper: %zu targets, more than %d", n,
                   DM_MAX_TARGETS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct dm_target_spec spec;
        size_t tlen = strnlen (t[i].type, sizeof t[i].type);
        size_t plen = strnlen (t[i].params, sizeof t[i].params);
        size_t rec = (sizeof spec + plen + 1 + 7) & ~(size_t) 7;

        if (tlen == 0 || tlen >= sizeof t[i].type ||
            plen >= sizeof t[i].params) {
            vmc_error ("device-mapper: target %zu: the type or the "
                       "parameters are empty or not terminated", i);
            return -1;
        }
        for (size_t j = 0; j < tlen; j++) {
            unsigned char c = (unsigned char) t[i].type[j];

            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_')) {
                vmc_error ("device-mapper: target %zu: bad type \"%s\"", i,
                           t[i].type);
                return -1;
            }
        }
        /* The kernel wants the targets back to back from sector 0. */
        if (t[i].start != next_start) {
            vmc_error ("device-mapper: target %zu starts at sector %" PRIu64
                       ", not %" PRIu64 " where the one before ends", i,
                       t[i].start, next_start);
            return -1;
        }
        if (t[i].len == 0 || ckd_add (&next_start, t[i].start, t[i].len)) {
            vmc_error ("device-mapper: target %zu: bad length %" PRIu64, i,
                       t[i].len);
            return -1;
        }
        if (rec > cap - off || off > cap) {
            vmc_error ("device-mapper: the table does not fit in %zu bytes",
                       cap);
            return -1;
        }
        memset (&spec, 0, sizeof spec);
        spec.sector_start = t[i].start;
        spec.length = t[i].len;
        spec.next = (uint32_t) rec;
        memcpy (spec.target_type, t[i].type, tlen);
        memcpy (out + off, &spec, sizeof spec);
        memset (out + off + sizeof spec, 0, rec - sizeof spec);
        memcpy (out + off + sizeof spec, t[i].params, plen);
        off += rec;
    }
    return (long) off;
}

int
dm_format_specs (const void *data, size_t len, uint32_t count, char *out,
                 size_t cap)
{
    const unsigned char *p = data;
    size_t off = 0, used = 0;

    if (cap == 0) {
        vmc_error ("device-mapper: no room for the status");
        return -1;
    }
    out[0] = '\0';
    if (count > DM_MAX_TARGETS) {
        vmc_error ("device-mapper: the kernel returned %" PRIu32 " targets",
                   count);
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct dm_target_spec spec;
        const char *str, *nul;
        char type[DM_MAX_TYPE_NAME + 1];

        if (off > len || len - off < sizeof spec) {
            vmc_error ("device-mapper: target %" PRIu32 " of the reply is "
                       "out of bounds", i);
            return -1;
        }
        memcpy (&spec, p + off, sizeof spec);
        str = (const char *) p + off + sizeof spec;
        nul = memchr (str, '\0', len - off - sizeof spec);
        if (nul == NULL) {
            vmc_error ("device-mapper: target %" PRIu32 " of the reply is "
                       "not terminated", i);
            return -1;
        }
        memcpy (type, spec.target_type, DM_MAX_TYPE_NAME);
        type[DM_MAX_TYPE_NAME] = '\0';
        if (!append (out, cap, &used, "%" PRIu64 " %" PRIu64 " %s%s%s\n",
                     (uint64_t) spec.sector_start, (uint64_t) spec.length,
                     type, str[0] != '\0' ? " " : "", str)) {
            vmc_error ("device-mapper: the status does not fit in %zu bytes",
                       cap);
            return -1;
        }
        /* The offsets count from the first spec and must move on. */
        if (i + 1 < count && spec.next <= off) {
            vmc_error ("device-mapper: target %" PRIu32 " of the reply does "
                       "not lead to the next", i);
            return -1;
        }
        off = spec.next;
    }
    return (int) count;
}

/* DM_TABLE_STATUS of NAME with FLAGS, formatted. */
static int
dm_query (const char *name, uint32_t flags, char *out, size_t cap)
{
    struct dm_ioctl *io = NULL;
    size_t size = DM_REPLY_MIN;
    int fd = -1, r = -1;

    if (check_name (name) != 0) {
        return -1;
    }
    if (out == NULL || cap == 0) {
        vmc_error ("device-mapper: %s: no room for the status", name);
        return -1;
    }
    fd = ctl_open ();
    if (fd < 0) {
        return -1;
    }
    for (;;) {
        free (io);
        io = calloc (1, size);
        if (io == NULL) {
            vmc_error ("device-mapper: out of memory");
            goto out;
        }
        io_init (io, size, name, flags);
        if (dm_call (fd, DM_TABLE_STATUS, "DM_TABLE_STATUS", io, name) != 0) {
            goto out;
        }
        if (!(io->flags & DM_BUFFER_FULL_FLAG)) {
            break;
        }
        if (size >= DM_REPLY_MAX) {
            vmc_error ("device-mapper: the status of %s is larger than %u "
                       "bytes", name, DM_REPLY_MAX);
            goto out;
        }
        size *= 2;
    }
    if (io->data_start < DM_HDR || io->data_start > io->data_size ||
        io->data_size > size) {
        vmc_error ("device-mapper: %s: the kernel's reply is out of bounds",
                   name);
        goto out;
    }
    r = dm_format_specs ((unsigned char *) io + io->data_start,
                         io->data_size - io->data_start, io->target_count,
                         out, cap);
    if (r < 0) {
        vmc_error_prefix ("%s", name);
    }
out:
    free (io);
    if (fd >= 0) {
        close (fd);
    }
    return r;
}

int
dm_status (const char *name, char *out, size_t cap)
{
    return dm_query (name, 0, out, cap);
}

int
dm_table (const char *name, char *out, size_t cap)
{
    return dm_query (name, DM_STATUS_TABLE_FLAG, out, cap);
}

/* ---- Devices ------------------------------------------------------ */

/* DM_DEV_REMOVE, retried while the device is busy: something (blkid, a
 * closing file descriptor) may hold it open for a moment. */
static int
remove_dev (int fd, const char *name)
{
    struct dm_ioctl io;

    for (int tries = 0;; tries++) {
        io_init (&io, sizeof io, name, 0);
        if (ioctl (fd, DM_DEV_REMOVE, &io) == 0) {
            return 0;
        }
        if (errno == ENXIO) {
            vmc_error ("device-mapper: no device %s", name);
            return -1;
        }
        if (errno != EBUSY || tries >= 10) {
            break;
        }
        sleep_ms (100);
    }
    if (errno == EBUSY) {
        int open_count = -1;

        io_init (&io, sizeof io, name, 0);
        if (ioctl (fd, DM_DEV_STATUS, &io) == 0) {
            open_count = io.open_count;
        }
        vmc_error ("device-mapper: %s is in use (open count %d; mounted?)",
                   name, open_count);
        errno = EBUSY;
        return -1;
    }
    vmc_perror ("device-mapper: DM_DEV_REMOVE %s", name);
    return -1;
}

static int
mapper_link (const char *name, const char *path)
{
    char dir[PATH_MAX], link[PATH_MAX];

    if (rpath (dir, sizeof dir, "/dev/%s", DM_DIR) != 0 ||
        rpath (link, sizeof link, "/dev/%s/%s", DM_DIR, name) != 0) {
        return -1;
    }
    if (mkdir (dir, 0755) != 0 && errno != EEXIST) {
        vmc_perror ("device-mapper: mkdir %s", dir);
        return -1;
    }
    /* The device name is unique in the kernel, which has just given it to
     * us, so a link of that name is left from a device that is gone. */
    if (unlink (link) != 0 && errno != ENOENT) {
        vmc_perror ("device-mapper: removing the old %s", link);
        return -1;
    }
    if (symlink (path, link) != 0) {
        vmc_perror ("device-mapper: symlink %s", link);
        return -1;
    }
    return 0;
}

static void
mapper_unlink (const char *name)
{
    char link[PATH_MAX];
    struct stat st;
    int saved = errno;

    if (rpath (link, sizeof link, "/dev/%s/%s", DM_DIR, name) == 0 &&
        lstat (link, &st) == 0 && S_ISLNK (st.st_mode)) {
        unlink (link);
    }
    errno = saved;
}

/* Word N (from 0) of S, blank separated, into OUT: false when there is
 * none or it does not fit. */
static bool
nth_word (const char *s, int n, char *out, size_t cap)
{
    for (int i = 0;; i++) {
        size_t w;

        s += strspn (s, " \t\n");
        w = strcspn (s, " \t\n");
        if (w == 0) {
            return false;
        }
        if (i == n) {
            if (w >= cap) {
                return false;
            }
            memcpy (out, s, w);
            out[w] = '\0';
            return true;
        }
        s += w;
    }
}

/* Whether block device DEV (a path or MAJOR:MINOR) is read-only in the
 * kernel, as sysfs says ("ro", which BLKROSET sets): 1, 0, or -1 when
 * that cannot be told (the kernel then judges the device itself). */
static int
dev_read_only (const char *dev)
{
    char path[PATH_MAX], buf[8];
    unsigned ma, mi;
    struct stat st;
    char tail;
    ssize_t n;
    int fd;

    if (sscanf (dev, "%u:%u%c", &ma, &mi, &tail) != 2) {
        if (stat (dev, &st) != 0 || !S_ISBLK (st.st_mode)) {
            return -1;
        }
        ma = major (st.st_rdev);
        mi = minor (st.st_rdev);
    }
    if (rpath (path, sizeof path, "/sys/dev/block/%u:%u/ro", ma, mi) != 0 ||
        (fd = open (path, O_RDONLY | O_CLOEXEC)) < 0) {
        return -1;
    }
    n = read (fd, buf, sizeof buf);
    close (fd);
    if (n < 1 || (buf[0] != '0' && buf[0] != '1')) {
        return -1;
    }
    return buf[0] == '1';
}

/*
 * A read-write table must not write a device that is read-only: the
 * kernel opens it anyway and lets dm's writes through to it (it only
 * warns "Trying to write to read-only block-device"), so BLKROSET alone
 * does not keep the appliance from writing a source disk through a
 * mapping of its own.  Checked for the targets we make: linear and
 * striped write their devices, a snapshot its COW (its origin is only
 * read).
 */
static int
check_writable (const char *name, const struct dm_target *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int first, step;
        char word[sizeof t[i].params];

        if (strcmp (t[i].type, "linear") == 0) {
            first = 0;
            step = 0;
        } else if (strcmp (t[i].type, "striped") == 0) {
            first = 2;
            step = 2;
        } else if (strcmp (t[i].type, "snapshot") == 0) {
            first = 1;
            step = 0;
        } else {
            continue;
        }
        for (int w = first; nth_word (t[i].params, w, word, sizeof word);
             w += step) {
            if (dev_read_only (word) == 1) {
                vmc_error ("device-mapper: %s: %s is read-only, and target "
                           "%zu (%s) would write it", name, word, i,
                           t[i].type);
                return -1;
            }
            if (step == 0) {
                break;
            }
        }
    }
    return 0;
}

int
dm_create (const char *name, const struct dm_target *t, size_t n,
           bool readonly, char *dev, size_t devcap)
{
    struct dm_ioctl *io = NULL;
    char node[PATH_MAX], rel[64];
    size_t size;
    long packed;
    dev_t devnum;
    bool created = false, linked = false;
    int fd = -1, r = -1;

    if (check_name (name) != 0) {
        return -1;
    }
    if (t == NULL || n == 0 || n > DM_MAX_TARGETS) {
        vmc_error ("device-mapper: %s: a table needs 1 to %d targets", name,
                   DM_MAX_TARGETS);
        return -1;
    }
    /* Check and pack the table before anything is created. */
    size = DM_HDR + n * (sizeof (struct dm_target_spec) +
                         sizeof t[0].params + 8);
    io = calloc (1, size);
    if (io == NULL) {
        vmc_error ("device-mapper: out of memory");
        return -1;
    }
    packed = dm_pack_targets (t, n, (unsigned char *) io + DM_HDR,
                              size - DM_HDR);
    if (packed < 0) {
        vmc_error_prefix ("%s", name);
        goto out;
    }
    if (!readonly && check_writable (name, t, n) != 0) {
        goto out;
    }
    fd = ctl_open ();
    if (fd < 0) {
        goto out;
    }

    io_init (io, DM_HDR, name, 0);
    if (dm_call (fd, DM_DEV_CREATE, "DM_DEV_CREATE", io, name) != 0) {
        if (errno == EBUSY) {
            vmc_error ("device-mapper: a device named %s exists already",
                       name);
        }
        goto out;
    }
    created = true;

    io_init (io, DM_HDR + (size_t) packed, name,
             readonly ? DM_READONLY_FLAG : 0);
    io->target_count = (uint32_t) n;
    if (ioctl (fd, DM_TABLE_LOAD, io) != 0) {
        /* The kernel says what it disliked in its log only. */
        vmc_perror ("device-mapper: loading the table of %s (%s %s%s; the "
                    "kernel log says why)", name, t[0].type,
                    n > 1 ? "..." : "", n > 1 ? "" : t[0].params);
        goto out;
    }

    /* DM_DEV_SUSPEND without DM_SUSPEND_FLAG is a resume: the loaded
     * table becomes the live one. */
    io_init (io, DM_HDR, name, 0);
    if (dm_call (fd, DM_DEV_SUSPEND, "resuming", io, name) != 0) {
        goto out;
    }
    devnum = (dev_t) io->dev;

    if ((size_t) snprintf (rel, sizeof rel, "dm-%u", minor (devnum)) >=
        sizeof rel || rpath (node, sizeof node, "/dev/%s", rel) != 0) {
        goto out;
    }
    if (ensure_node (node, S_IFBLK, devnum) != 0) {
        goto out;
    }
    if ((size_t) snprintf (node, sizeof node, "../%s", rel) >= sizeof node ||
        mapper_link (name, node) != 0) {
        goto out;
    }
    linked = true;
    if (rpath (node, sizeof node, "/dev/%s", rel) != 0) {
        goto out;
    }
    if (dev != NULL) {
        if (strlen (node) >= devcap) {
            vmc_error ("device-mapper: %s: no room for the node's name", name);
            goto out;
        }
        memcpy (dev, node, strlen (node) + 1);
    }
    r = 0;
out:
    if (r != 0 && created) {
        int saved = errno;

        if (linked) {
            mapper_unlink (name);
        }
        /* Our message stays the one that counts. */
        io_init (io, DM_HDR, name, 0);
        ioctl (fd, DM_DEV_REMOVE, io);
        errno = saved;
    }
    free (io);
    if (fd >= 0) {
        close (fd);
    }
    return r;
}

int
dm_remove (const char *name)
{
    int fd, r;

    if (check_name (name) != 0) {
        return -1;
    }
    fd = ctl_open ();
    if (fd < 0) {
        return -1;
    }
    r = remove_dev (fd, name);
    close (fd);
    if (r == 0 || errno == ENXIO) {
        mapper_unlink (name);
    }
    return r;
}

/* ---- Target lines ------------------------------------------------- */

/* A target that could not be made is left empty, which no table takes. */
static void
clear (struct dm_target *t)
{
    if (t != NULL) {
        memset (t, 0, sizeof *t);
    }
}

static int __attribute__ ((format (printf, 5, 6)))
target (struct dm_target *t, uint64_t start, uint64_t len, const char *type,
        const char *fmt, ...)
{
    va_list ap;
    int r;

    if (t == NULL) {
        vmc_error ("device-mapper: %s: no target", type);
        return -1;
    }
    memset (t, 0, sizeof *t);
    if (len == 0 || start + len < start) {
        vmc_error ("device-mapper: %s: bad range %" PRIu64 "+%" PRIu64, type,
                   start, len);
        return -1;
    }
    t->start = start;
    t->len = len;
    memcpy (t->type, type, strlen (type) + 1);
    va_start (ap, fmt);
    r = vsnprintf (t->params, sizeof t->params, fmt, ap);
    va_end (ap);
    if (r < 0 || (size_t) r >= sizeof t->params) {
        memset (t, 0, sizeof *t);
        vmc_error ("device-mapper: %s: the parameters are longer than %zu "
                   "bytes", type, sizeof t->params - 1);
        return -1;
    }
    return 0;
}

int
dm_linear (struct dm_target *t, uint64_t start, uint64_t len, const char *dev,
           uint64_t offset_sectors)
{
    uint64_t end;

    clear (t);
    if (check_dev ("linear", dev) != 0) {
        return -1;
    }
    if (ckd_add (&end, offset_sectors, len)) {
        vmc_error ("device-mapper: linear: offset %" PRIu64 " + length %"
                   PRIu64 " overflows", offset_sectors, len);
        return -1;
    }
    return target (t, start, len, "linear", "%s %" PRIu64, dev,
                   offset_sectors);
}

int
dm_striped (struct dm_target *t, uint64_t start, uint64_t len, uint32_t chunk,
            size_t n, const char *const *devs, const uint64_t *offsets)
{
    char params[sizeof t->params];
    size_t used = 0;

    clear (t);
    if (n == 0 || devs == NULL || offsets == NULL) {
        vmc_error ("device-mapper: striped: no stripes");
        return -1;
    }
    if (chunk == 0) {
        vmc_error ("device-mapper: striped: chunk size 0");
        return -1;
    }
    /* dm-stripe's own checks, so that the error is ours and says why. */
    if (len % n != 0 || (len / n) % chunk != 0) {
        vmc_error ("device-mapper: striped: %" PRIu64 " sectors do not make "
                   "%zu stripes of whole %" PRIu32 "-sector chunks", len, n,
                   chunk);
        return -1;
    }
    if (!append (params, sizeof params, &used, "%zu %" PRIu32, n, chunk)) {
        goto toolong;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t end;

        if (check_dev ("striped", devs[i]) != 0) {
            return -1;
        }
        if (ckd_add (&end, offsets[i], len / n)) {
            vmc_error ("device-mapper: striped: stripe %zu: offset %" PRIu64
                       " overflows", i, offsets[i]);
            return -1;
        }
        if (!append (params, sizeof params, &used, " %s %" PRIu64, devs[i],
                     offsets[i])) {
            goto toolong;
        }
    }
    return target (t, start, len, "striped", "%s", params);
toolong:
    vmc_error ("device-mapper: striped: %zu stripes do not fit in a target "
               "line", n);
    return -1;
}

int
dm_snapshot (struct dm_target *t, uint64_t start, uint64_t len,
             const char *origin, const char *cow, bool persistent,
             uint32_t chunk)
{
    clear (t);
    if (check_dev ("snapshot origin", origin) != 0 ||
        check_dev ("snapshot COW", cow) != 0) {
        return -1;
    }
    if (chunk == 0 || (chunk & (chunk - 1)) != 0) {
        vmc_error ("device-mapper: snapshot: chunk size %" PRIu32 " is not "
                   "a power of two", chunk);
        return -1;
    }
    return target (t, start, len, "snapshot", "%s %s %s %" PRIu32, origin,
                   cow, persistent ? "P" : "N", chunk);
}

/* ---- Loop devices ------------------------------------------------- */

/* Open loop device N, which LOOP_CTL_GET_FREE has just made: devtmpfs
 * makes its node, and if there is no devtmpfs we make it from sysfs. */
static int
open_loop (int n, char *path, size_t cap)
{
    char sys[PATH_MAX];
    dev_t devnum;
    int fd;

    if (rpath (path, cap, "/dev/loop%d", n) != 0) {
        return -1;
    }
    fd = open (path, O_RDWR | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) {
        if (fd < 0) {
            vmc_perror ("loop: %s", path);
        }
        return fd;
    }
    if (rpath (sys, sizeof sys, "/sys/block/loop%d/dev", n) != 0) {
        return -1;
    }
    if (read_devnum (sys, &devnum) != 0) {
        vmc_error ("loop: %s is missing and %s does not say its number",
                   path, sys);
        return -1;
    }
    if (ensure_node (path, S_IFBLK, devnum) != 0) {
        vmc_error_prefix ("loop");
        return -1;
    }
    fd = open (path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        vmc_perror ("loop: %s", path);
    }
    return fd;
}

int
loop_attach (const char *file, bool readonly, char *dev, size_t cap)
{
    char path[PATH_MAX];
    struct loop_config cfg;
    int ffd = -1, ctl = -1, lfd = -1, r = -1;
    size_t flen;

    if (file == NULL || file[0] == '\0' || dev == NULL || cap == 0) {
        vmc_error ("loop: no file or no room for the device's name");
        return -1;
    }
    ffd = open (file, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (ffd < 0) {
        vmc_perror ("loop: %s", file);
        return -1;
    }
    if (rpath (path, sizeof path, "/dev/loop-control") != 0) {
        goto out;
    }
    ctl = open (path, O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
        if (errno == ENOENT) {
            vmc_error ("loop: %s is missing (is the loop module loaded?)",
                       path);
        } else {
            vmc_perror ("loop: %s", path);
        }
        goto out;
    }

    memset (&cfg, 0, sizeof cfg);
    cfg.fd = (uint32_t) ffd;
    cfg.info.lo_flags = readonly ? LO_FLAGS_READ_ONLY : 0;
    /* Informational (losetup shows it); the kernel keeps 63 bytes. */
    flen = strlen (file);
    if (flen >= LO_NAME_SIZE) {
        flen = LO_NAME_SIZE - 1;
    }
    memcpy (cfg.info.lo_file_name, file, flen);

    /* Someone else may take the free device between our asking and our
     * binding it: then it is busy and we ask again. */
    for (int tries = 0;; tries++) {
        int n = ioctl (ctl, LOOP_CTL_GET_FREE);

        if (n < 0) {
            vmc_perror ("loop: LOOP_CTL_GET_FREE");
            goto out;
        }
        lfd = open_loop (n, path, sizeof path);
        if (lfd < 0) {
            goto out;
        }
        if (ioctl (lfd, LOOP_CONFIGURE, &cfg) == 0) {
            break;
        }
        if (errno == EINVAL) {
            /* A kernel before 5.8 has no LOOP_CONFIGURE.  LOOP_SET_FD
             * makes the device read-only when the file is. */
            if (ioctl (lfd, LOOP_SET_FD, ffd) == 0) {
                if (ioctl (lfd, LOOP_SET_STATUS64, &cfg.info) != 0) {
                    vmc_perror ("loop: LOOP_SET_STATUS64 %s", path);
                    ioctl (lfd, LOOP_CLR_FD, 0);
                    goto out;
                }
                break;
            }
            if (errno != EBUSY) {
                vmc_perror ("loop: LOOP_SET_FD %s", path);
                goto out;
            }
        } else if (errno != EBUSY) {
            vmc_perror ("loop: LOOP_CONFIGURE %s", path);
            goto out;
        }
        close (lfd);
        lfd = -1;
        if (tries >= 10) {
            vmc_error ("loop: every free loop device was taken before we "
                       "could bind it");
            goto out;
        }
    }
    if (strlen (path) >= cap) {
        vmc_error ("loop: no room for the name %s", path);
        ioctl (lfd, LOOP_CLR_FD, 0);
        goto out;
    }
    memcpy (dev, path, strlen (path) + 1);
    r = 0;
out:
    if (lfd >= 0) {
        close (lfd);
    }
    if (ctl >= 0) {
        close (ctl);
    }
    close (ffd);
    return r;
}

int
loop_detach (const char *dev)
{
    int fd;

    if (dev == NULL || dev[0] == '\0') {
        vmc_error ("loop: no device");
        return -1;
    }
    fd = open (dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vmc_perror ("loop: %s", dev);
        return -1;
    }
    /* When someone else still has it open, the kernel detaches it at
     * their last close and returns success now. */
    if (ioctl (fd, LOOP_CLR_FD, 0) != 0) {
        if (errno == ENXIO) {
            vmc_error ("loop: %s is not attached", dev);
        } else {
            vmc_perror ("loop: LOOP_CLR_FD %s", dev);
        }
        close (fd);
        return -1;
    }
    close (fd);
    return 0;
}

/* ---- Snapshots ---------------------------------------------------- */

static int
cow_path (const char *name, char *out, size_t cap)
{
    return rpath (out, cap, "%s/%s", COW_DIR, name);
}

static int
mkdir_p (const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen (path);

    if (n >= sizeof buf) {
        vmc_error ("snapshot: path too long");
        return -1;
    }
    memcpy (buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];

            buf[i] = '\0';
            if (mkdir (buf, 0700) != 0 && errno != EEXIST) {
                vmc_perror ("snapshot: mkdir %s", buf);
                return -1;
            }
            buf[i] = c;
        }
    }
    return 0;
}

/*
 * Why not persistent ("P"): a persistent store writes a header and
 * metadata areas to the COW device so that the snapshot survives a
 * reboot; ours lives in RAM and dies with the appliance, so that is work
 * (and COW space) for nothing.  The transient store keeps the exception
 * table in kernel memory only.
 *
 * When the COW fills up: the first write that needs a chunk more than
 * the COW has makes the kernel invalidate the whole snapshot.  From then
 * on every read and write of the snapshot device fails with EIO, and its
 * status says "Invalid" (the origin is unaffected).  A filesystem on it
 * sees I/O errors, and what it wrote before may be incomplete, so the
 * snapshot can no longer be trusted: callers must check snap_usage()
 * after their writes (after unmounting, or at least after syncfs) and
 * refuse to send an invalid snapshot.  The COW file is sparse in a tmpfs,
 * so COW_BYTES may be generous: only written chunks cost RAM (plus the
 * kernel's exception table, some tens of bytes per chunk).
 */
int
snap_create (const char *name, const char *origin, uint64_t cow_bytes,
             char *dev, size_t cap)
{
    char dir[PATH_MAX], file[PATH_MAX], loop[PATH_MAX];
    struct dm_target t;
    struct stat st;
    uint64_t size = 0;
    bool made_file = false, attached = false;
    int fd, r = -1;

    if (check_name (name) != 0) {
        return -1;
    }
    if (origin == NULL || origin[0] == '\0') {
        vmc_error ("snapshot %s: no origin", name);
        return -1;
    }
    /* Fewer than a few chunks is a mistake, not a store. */
    if (cow_bytes < 16 * SNAP_CHUNK * 512) {
        vmc_error ("snapshot %s: a copy-on-write store of %" PRIu64 " bytes "
                   "is too small", name, cow_bytes);
        return -1;
    }
    fd = open (origin, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vmc_perror ("snapshot %s: %s", name, origin);
        return -1;
    }
    if (fstat (fd, &st) != 0 || !S_ISBLK (st.st_mode)) {
        vmc_error ("snapshot %s: %s is not a block device", name, origin);
        close (fd);
        return -1;
    }
    if (ioctl (fd, BLKGETSIZE64, &size) != 0) {
        vmc_perror ("snapshot %s: BLKGETSIZE64 %s", name, origin);
        close (fd);
        return -1;
    }
    close (fd);
    if (size < 512) {
        vmc_error ("snapshot %s: %s is empty", name, origin);
        return -1;
    }

    if (rpath (dir, sizeof dir, "%s", COW_DIR) != 0 ||
        cow_path (name, file, sizeof file) != 0 || mkdir_p (dir) != 0) {
        return -1;
    }
    /* O_EXCL: a file of that name may be the COW of a live snapshot,
     * which truncating would destroy. */
    fd = open (file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        vmc_error ("snapshot %s: %s exists: a snapshot of that name exists "
                   "or was not removed", name, file);
        return -1;
    }
    if (fd < 0) {
        vmc_perror ("snapshot %s: %s", name, file);
        return -1;
    }
    made_file = true;
    if (ftruncate (fd, (off_t) (cow_bytes & ~(uint64_t) 4095)) != 0) {
        vmc_perror ("snapshot %s: sizing %s", name, file);
        close (fd);
        goto out;
    }
    close (fd);
    if (loop_attach (file, false, loop, sizeof loop) != 0) {
        vmc_error_prefix ("snapshot %s", name);
        goto out;
    }
    attached = true;
    /* A partial sector at the end of the origin cannot be mapped. */
    if (dm_snapshot (&t, 0, size / 512, origin, loop, false,
                     SNAP_CHUNK) != 0 ||
        dm_create (name, &t, 1, false, dev, cap) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        int saved = errno;
        char keep[1024];

        /* The first failure's message is the one the caller sees. */
        snprintf (keep, sizeof keep, "%s", vmc_get_error ());
        if (attached) {
            loop_detach (loop);
        }
        if (made_file) {
            unlink (file);
        }
        vmc_set_error_string (keep);
        errno = saved;
    }
    return r;
}

int
snap_parse_status (const char *status, uint64_t *used, uint64_t *total,
                   bool *invalid)
{
    unsigned long long u, t, m;
    char *end;
    const char *p = status;

    *used = *total = 0;
    *invalid = false;
    if (status == NULL) {
        vmc_error ("snapshot: no status");
        return -1;
    }
    /* "Invalid": the store filled up (or failed).  "Overflow" is how a
     * persistent store with overflow support ("PO") says it is full,
     * "Merge failed" a merge that cannot go on: none can be sent. */
    if (strcmp (status, "Invalid") == 0 || strcmp (status, "Overflow") == 0 ||
        strcmp (status, "Merge failed") == 0) {
        *invalid = true;
        return 0;
    }
    /* "<sectors allocated>/<total sectors> <metadata sectors>" */
    if (*p < '0' || *p > '9') {
        goto bad;
    }
    errno = 0;
    u = strtoull (p, &end, 10);
    if (errno != 0 || *end != '/' || end[1] < '0' || end[1] > '9') {
        goto bad;
    }
    t = strtoull (end + 1, &end, 10);
    if (errno != 0 || *end != ' ' || end[1] < '0' || end[1] > '9') {
        goto bad;
    }
    m = strtoull (end + 1, &end, 10);
    if (errno != 0 || *end != '\0' || u > t || m > t) {
        goto bad;
    }
    *used = u;
    *total = t;
    return 0;
bad:
    vmc_error ("snapshot: unexpected status \"%.64s\"", status);
    return -1;
}

/* The one line of snapshot NAME's status or table: what follows
 * "START LEN snapshot ", in BUF. */
static const char *
snap_line (const char *name, bool table, char *buf, size_t cap)
{
    static const char type[] = " snapshot ";
    char *p;
    int n = table ? dm_table (name, buf, cap) : dm_status (name, buf, cap);

    if (n < 0) {
        return NULL;
    }
    p = strstr (buf, type);
    if (n != 1 || p == NULL || p > strchr (buf, '\n')) {
        vmc_error ("snapshot: %s is not a snapshot device", name);
        return NULL;
    }
    p += sizeof type - 1;
    p[strcspn (p, "\n")] = '\0';
    return p;
}

int
snap_usage (const char *name, uint64_t *used, uint64_t *total, bool *invalid)
{
    char buf[512];
    const char *st;
    uint64_t u, t;
    bool inv;

    if (used == NULL || total == NULL || invalid == NULL) {
        vmc_error ("snapshot: nowhere to put the usage");
        return -1;
    }
    *used = *total = 0;
    *invalid = false;
    st = snap_line (name, false, buf, sizeof buf);
    if (st == NULL || snap_parse_status (st, &u, &t, &inv) != 0) {
        if (st != NULL) {
            vmc_error_prefix ("%s", name);
        }
        return -1;
    }
    *used = u * 512;
    *total = t * 512;
    *invalid = inv;
    return 0;
}

int
snap_remove (const char *name)
{
    char buf[1024], sys[PATH_MAX], real[PATH_MAX], loop[PATH_MAX];
    char file[PATH_MAX];
    const char *tab, *base;
    unsigned ma, mi;
    int r = 0;

    /* The table names the COW by number: "ORIGIN MAJ:MIN N 8". */
    tab = snap_line (name, true, buf, sizeof buf);
    if (tab == NULL) {
        return -1;
    }
    tab += strcspn (tab, " ");
    if (sscanf (tab, " %u:%u ", &ma, &mi) != 2) {
        vmc_error ("snapshot %s: no COW device in its table", name);
        return -1;
    }
    if (dm_remove (name) != 0) {
        return -1;
    }
    if (rpath (sys, sizeof sys, "/sys/dev/block/%u:%u", ma, mi) != 0 ||
        realpath (sys, real) == NULL ||
        (base = strrchr (real, '/')) == NULL ||
        strncmp (base + 1, "loop", 4) != 0 ||
        rpath (loop, sizeof loop, "/dev/%s", base + 1) != 0) {
        vmc_error ("snapshot %s: its COW device %u:%u is not a loop device",
                   name, ma, mi);
        r = -1;
    } else if (loop_detach (loop) != 0) {
        vmc_error_prefix ("snapshot %s", name);
        r = -1;
    }
    /* The RAM goes with the file (the loop device may hold it until it
     * is detached). */
    if (cow_path (name, file, sizeof file) == 0 && unlink (file) != 0 &&
        errno != ENOENT && r == 0) {
        vmc_perror ("snapshot %s: removing %s", name, file);
        r = -1;
    }
    return r;
}
