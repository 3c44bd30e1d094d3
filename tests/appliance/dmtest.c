/* SPDX-License-Identifier: MIT */
/*
 * dmtest: appliance/dm.c in the appliance's kernel, for
 * tests/appliance/test-appliance-dm.sh.  Installed as
 * /sbin/vmconvert-appliance in a test initramfs, it runs as PID 1 after
 * /init and does what the appliance will do to fix up a guest without
 * writing its disk:
 *
 *   - sets the disk with serial "origin" read-only (BLKROSET) and checks
 *     that writing it directly fails;
 *   - makes a snapshot of it with the COW in RAM (snap_create), and one
 *     dm-linear device per partition of its MBR on top of the snapshot;
 *   - mounts the first partition (ext4) read-write, changes hello.txt,
 *     writes keep.txt, big1 and big2 (dmtest.write MiB in all) and
 *     deletes big1, unmounts;
 *   - prints the snapshot's usage, the sha256 of the whole snapshot, of
 *     the origin and of the second partition through its linear device,
 *     copies the snapshot to the disk with serial "scratch" if there is
 *     one (for the host to check with e2fsck and debugfs);
 *   - removes everything and checks that nothing is left.
 *
 * Options: dmtest.cow=BYTES (the COW store, 64 MiB), dmtest.write=MIB (8),
 * dmtest.expect=ok|invalid: with "invalid" the COW is meant to be too
 * small, and the snapshot must end up invalid and unreadable.
 *
 * Console lines: DMTEST-OK STEP, DMTEST-FAIL STEP: WHY, DMTEST-INFO,
 * DMTEST-SNAP used=B total=B invalid=0|1, DMTEST-HASH WHAT HEX, and at
 * the end DMTEST-DONE failures=N; then it powers the machine off.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../appliance/dm.h"
#include "../../converter/lib/error.h"

#define SNAP "vmc-snap"
#define MNT "/mnt"
#define BUFSZ (1u << 20)
#define KEEP_LINES 20000

static char cmdline[4096];
static int failures;
static unsigned char buf[BUFSZ];

static void __attribute__ ((format (printf, 2, 3)))
fail (const char *step, const char *fmt, ...)
{
    va_list ap;

    printf ("DMTEST-FAIL %s: ", step);
    va_start (ap, fmt);
    vprintf (fmt, ap);
    va_end (ap);
    printf ("\n");
    failures++;
}

static void
ok (const char *step)
{
    printf ("DMTEST-OK %s\n", step);
}

/* A library call's result: OK, or FAIL with its message. */
static bool
lib (const char *step, int r)
{
    if (r < 0) {
        fail (step, "%s", vmc_get_error ());
        return false;
    }
    ok (step);
    return true;
}

static const char *
param (const char *name, char *out, size_t cap)
{
    size_t n = strlen (name);

    for (const char *p = cmdline; *p != '\0';) {
        size_t w;

        p += strspn (p, " \n");
        w = strcspn (p, " \n");
        if (w > n && strncmp (p, name, n) == 0 && p[n] == '=') {
            size_t v = w - n - 1 < cap - 1 ? w - n - 1 : cap - 1;

            memcpy (out, p + n + 1, v);
            out[v] = '\0';
            return out;
        }
        p += w;
    }
    return NULL;
}

static void
read_line (const char *path, char *out, size_t cap)
{
    FILE *f = fopen (path, "r");

    out[0] = '\0';
    if (f != NULL) {
        if (fgets (out, (int) cap, f) == NULL) {
            out[0] = '\0';
        }
        fclose (f);
    }
    out[strcspn (out, "\n")] = '\0';
}

/* /dev/NAME of the disk whose serial is SERIAL, waiting for it up to
 * TRIES quarter seconds. */
static bool
find_disk (const char *serial, char *out, size_t cap, int tries)
{
    for (int i = 0; i < tries; i++) {
        DIR *d = opendir ("/sys/block");
        struct dirent *e;

        while (d != NULL && (e = readdir (d)) != NULL) {
            char path[PATH_MAX], s[128];

            if (e->d_name[0] == '.') {
                continue;
            }
            snprintf (path, sizeof path, "/sys/block/%s/serial", e->d_name);
            read_line (path, s, sizeof s);
            if (strcmp (s, serial) == 0) {
                snprintf (out, cap, "/dev/%s", e->d_name);
                closedir (d);
                return true;
            }
        }
        if (d != NULL) {
            closedir (d);
        }
        usleep (250000);
    }
    return false;
}

/* The sha256 of the whole of DEV into HEX: the number of bytes read, or
 * -1 with errno as the failed call left it. */
static int64_t
hash_dev (const char *dev, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    int64_t total = 0;
    int fd = open (dev, O_RDONLY | O_CLOEXEC);
    int saved;

    if (fd < 0 || ctx == NULL || !EVP_DigestInit_ex (ctx, EVP_sha256 (),
                                                     NULL)) {
        goto err;
    }
    for (;;) {
        ssize_t n = read (fd, buf, BUFSZ);

        if (n < 0) {
            goto err;
        }
        if (n == 0) {
            break;
        }
        EVP_DigestUpdate (ctx, buf, (size_t) n);
        total += n;
    }
    EVP_DigestFinal_ex (ctx, md, &mdlen);
    for (unsigned i = 0; i < mdlen && i < 32; i++) {
        snprintf (hex + 2 * i, 3, "%02x", md[i]);
    }
    EVP_MD_CTX_free (ctx);
    close (fd);
    return total;
err:
    saved = errno;
    EVP_MD_CTX_free (ctx);
    if (fd >= 0) {
        close (fd);
    }
    errno = saved;
    return -1;
}

/* Write LEN bytes of a xorshift sequence from SEED to PATH, or when SEED
 * is 0 the numbered lines of keep.txt, and fsync it.  0 or an errno. */
static int
write_file (const char *path, uint64_t len, uint64_t seed)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint64_t x = seed, done = 0;
    int err = 0;

    if (fd < 0) {
        return errno;
    }
    if (seed == 0) {
        /* Lines the host makes again with awk to compare. */
        for (int i = 0; i < KEEP_LINES && err == 0; i++) {
            char line[64];
            int n = snprintf (line, sizeof line, "vmconvert dm test line %d\n",
                              i);

            if (write (fd, line, (size_t) n) != n) {
                err = errno != 0 ? errno : EIO;
            }
        }
    }
    while (seed != 0 && done < len && err == 0) {
        size_t n = len - done < BUFSZ ? (size_t) (len - done) : BUFSZ;
        ssize_t w;

        for (size_t i = 0; i + 8 <= n; i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy (buf + i, &x, 8);
        }
        w = write (fd, buf, n);
        if (w != (ssize_t) n) {
            err = w < 0 ? errno : EIO;
        }
        done += n;
    }
    if (err == 0 && fsync (fd) != 0) {
        err = errno;
    }
    if (close (fd) != 0 && err == 0) {
        err = errno;
    }
    return err;
}

/* The changes a fix-up makes, through the filesystem. */
static int
change_files (uint64_t write_bytes)
{
    FILE *f;
    int err;

    if (rename (MNT "/hello.txt", MNT "/hello.old") != 0) {
        return errno;
    }
    f = fopen (MNT "/hello.txt", "w");
    if (f == NULL) {
        return errno;
    }
    fprintf (f, "changed in the snapshot\n");
    if (fclose (f) != 0) {
        return errno;
    }
    if ((err = write_file (MNT "/keep.txt", 0, 0)) != 0 ||
        (err = write_file (MNT "/big1", write_bytes / 2, 1)) != 0 ||
        (err = write_file (MNT "/big2", write_bytes / 2, 2)) != 0) {
        return err;
    }
    if (unlink (MNT "/big1") != 0) {
        return errno;
    }
    sync ();
    return 0;
}

/* Copy SRC to the start of DST and flush it. */
static int64_t
copy_dev (const char *src, const char *dst)
{
    int in = open (src, O_RDONLY | O_CLOEXEC);
    int out = open (dst, O_WRONLY | O_CLOEXEC);
    int64_t total = 0;
    ssize_t n;

    if (in < 0 || out < 0) {
        total = -1;
        goto out;
    }
    while ((n = read (in, buf, BUFSZ)) > 0) {
        if (write (out, buf, (size_t) n) != n) {
            total = -1;
            goto out;
        }
        total += n;
    }
    if (n < 0 || fsync (out) != 0) {
        total = -1;
    }
out:
    if (in >= 0) {
        close (in);
    }
    if (out >= 0) {
        close (out);
    }
    return total;
}

/* Writing the read-only origin must fail.  It writes back what is there,
 * so that even if it did not fail, the disk would not change. */
static void
check_origin_unwritable (const char *origin)
{
    int fd = open (origin, O_RDWR | O_CLOEXEC);
    ssize_t w;

    if (fd < 0) {
        printf ("DMTEST-INFO opening %s for writing fails: %s\n", origin,
                strerror (errno));
        ok ("origin unwritable");
        return;
    }
    if (pread (fd, buf, 4096, 1 << 20) != 4096) {
        fail ("origin unwritable", "reading %s: %s", origin, strerror (errno));
        close (fd);
        return;
    }
    w = pwrite (fd, buf, 4096, 1 << 20);
    if (w >= 0) {
        fail ("origin unwritable", "writing %s succeeded", origin);
    } else if (errno != EPERM) {
        fail ("origin unwritable", "writing %s: %s, not EPERM", origin,
              strerror (errno));
    } else {
        printf ("DMTEST-INFO writing %s fails: %s\n", origin,
                strerror (errno));
        ok ("origin unwritable");
    }
    close (fd);
}

/* Striped over the two halves of partition 2 (at sector 51200, 8192
 * sectors) on the snapshot, in 4 KiB chunks: the host makes the same
 * interleave to compare the hash. */
static void
check_striped (const char *snapdev)
{
    const char *devs[2] = { snapdev, snapdev };
    const uint64_t offs[2] = { 51200, 51200 + 4096 };
    struct dm_target t;
    char dev[PATH_MAX], hex[65];

    if (dm_striped (&t, 0, 8192, 8, 2, devs, offs) != 0 ||
        dm_create ("vmc-stripe", &t, 1, true, dev, sizeof dev) != 0) {
        fail ("striped", "%s", vmc_get_error ());
        return;
    }
    if (hash_dev ("/dev/mapper/vmc-stripe", hex) != 8192 * 512) {
        fail ("striped", "reading: %s", strerror (errno));
    } else {
        printf ("DMTEST-HASH striped %s\n", hex);
        ok ("striped");
    }
    if (dm_remove ("vmc-stripe") != 0) {
        fail ("striped", "%s", vmc_get_error ());
    }
}

/* A read-only loop device refuses writes. */
static void
check_loop_ro (void)
{
    char dev[PATH_MAX];
    int fd, ro = 0;

    fd = open ("/run/dmtest.img", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate (fd, 1 << 20) != 0) {
        fail ("loop ro", "/run/dmtest.img: %s", strerror (errno));
        return;
    }
    close (fd);
    if (loop_attach ("/run/dmtest.img", true, dev, sizeof dev) != 0) {
        fail ("loop ro", "%s", vmc_get_error ());
        return;
    }
    fd = open (dev, O_RDWR | O_CLOEXEC);
    if (fd < 0 || ioctl (fd, BLKROGET, &ro) != 0 || ro != 1 ||
        pwrite (fd, buf, 4096, 0) >= 0) {
        fail ("loop ro", "%s is not read-only (ro=%d)", dev, ro);
    } else {
        ok ("loop ro");
    }
    if (fd >= 0) {
        close (fd);
    }
    if (loop_detach (dev) != 0) {
        fail ("loop ro", "%s", vmc_get_error ());
    }
    unlink ("/run/dmtest.img");
}

/* A read-write table straight on the read-only origin must be refused:
 * the kernel would let its writes through.  And a read-only one works. */
static void
check_rw_linear (const char *origin)
{
    struct dm_target t;
    char dev[PATH_MAX], hex[65];

    if (dm_linear (&t, 0, 8, origin, 2048) != 0) {
        fail ("rw linear", "%s", vmc_get_error ());
        return;
    }
    if (dm_create ("vmc-rw", &t, 1, false, dev, sizeof dev) == 0) {
        fail ("rw linear", "a read-write linear on the read-only origin");
        dm_remove ("vmc-rw");
        return;
    }
    printf ("DMTEST-INFO a read-write linear on the origin: %s\n",
            vmc_get_error ());
    if (dm_create ("vmc-ro", &t, 1, true, dev, sizeof dev) != 0) {
        fail ("rw linear", "read-only: %s", vmc_get_error ());
        return;
    }
    if (hash_dev (dev, hex) != 4096) {
        fail ("rw linear", "reading %s: %s", dev, strerror (errno));
    } else {
        ok ("rw linear");
    }
    if (dm_remove ("vmc-ro") != 0) {
        fail ("rw linear", "%s", vmc_get_error ());
    }
}

static void
poweroff (void)
{
    fflush (stdout);
    sync ();
    reboot (RB_POWER_OFF);
    for (;;) {
        pause ();
    }
}

int
main (void)
{
    char origin[300], scratch[300], snapdev[PATH_MAX], val[64], hex[65];
    char parts[4][PATH_MAX], pname[4][32], path[PATH_MAX];
    uint64_t cow = 64u << 20, write_bytes = 8u << 20, used, total;
    bool expect_invalid = false, invalid, have_scratch, mounted = false;
    bool have_snap = false;
    int fd, ro = 0, nparts = 0, err;
    unsigned char mbr[512];

    setvbuf (stdout, NULL, _IOLBF, 0);
    read_line ("/proc/cmdline", cmdline, sizeof cmdline);
    printf ("DMTEST-START %s\n", cmdline);
    if (param ("dmtest.cow", val, sizeof val)) {
        cow = strtoull (val, NULL, 10);
    }
    if (param ("dmtest.write", val, sizeof val)) {
        write_bytes = strtoull (val, NULL, 10) << 20;
    }
    expect_invalid = param ("dmtest.expect", val, sizeof val) &&
                     strcmp (val, "invalid") == 0;
    memset (parts, 0, sizeof parts);

    if (!find_disk ("origin", origin, sizeof origin, 40)) {
        fail ("disks", "no disk with serial \"origin\"");
        goto done;
    }
    /* The disks are there together once /init has let us start. */
    have_scratch = find_disk ("scratch", scratch, sizeof scratch, 1);
    printf ("DMTEST-INFO origin %s, scratch %s\n", origin,
            have_scratch ? scratch : "none");

    if (!lib ("version", dm_version_check ())) {
        goto done;
    }

    /* As the appliance does, before anything else touches the disk. */
    fd = open (origin, O_RDONLY | O_CLOEXEC);
    ro = 1;
    if (fd < 0 || ioctl (fd, BLKROSET, &ro) != 0 ||
        ioctl (fd, BLKROGET, &ro) != 0 || ro != 1) {
        fail ("blkroset", "%s: %s", origin, strerror (errno));
        goto done;
    }
    if (pread (fd, mbr, sizeof mbr, 0) != (ssize_t) sizeof mbr) {
        fail ("mbr", "reading %s: %s", origin, strerror (errno));
        goto done;
    }
    close (fd);
    ok ("blkroset");
    /* For the record: whether the kernel's partition devices show the
     * whole disk's flag (their writes are refused either way). */
    for (int i = 1; i <= 4; i++) {
        char ros[8];

        snprintf (path, sizeof path, "/sys/block/%s/%s%d/ro", origin + 5,
                  origin + 5, i);
        read_line (path, ros, sizeof ros);
        if (ros[0] != '\0') {
            printf ("DMTEST-INFO partition %s%d ro=%s\n", origin + 5, i, ros);
        }
    }
    check_origin_unwritable (origin);

    if (!lib ("snap_create", snap_create (SNAP, origin, cow, snapdev,
                                          sizeof snapdev))) {
        goto done;
    }
    have_snap = true;
    printf ("DMTEST-INFO snapshot %s of %s, COW %" PRIu64 " bytes\n", snapdev,
            origin, cow);
    if (snap_create (SNAP, origin, cow, path, sizeof path) == 0) {
        fail ("snap_create twice", "a second snapshot named " SNAP);
    } else {
        printf ("DMTEST-INFO a second snapshot " SNAP ": %s\n", vmc_get_error ());
        ok ("snap_create twice");
    }
    {
        struct dm_target t;

        if (dm_linear (&t, 0, 8, snapdev, 0) != 0 ||
            dm_create (SNAP, &t, 1, true, path, sizeof path) == 0) {
            fail ("dm_create twice", "a second device named " SNAP);
        } else {
            printf ("DMTEST-INFO a second device " SNAP ": %s\n",
                    vmc_get_error ());
            ok ("dm_create twice");
        }
    }
    if (lib ("snap_usage before", snap_usage (SNAP, &used, &total,
                                              &invalid))) {
        printf ("DMTEST-SNAP used=%" PRIu64 " total=%" PRIu64
                " invalid=%d\n", used, total, invalid);
    }

    /* The MBR's primary partitions, each a linear device on the
     * snapshot. */
    if (mbr[510] != 0x55 || mbr[511] != 0xaa) {
        fail ("mbr", "no MBR signature");
        goto done;
    }
    for (int i = 0; i < 4; i++) {
        const unsigned char *e = mbr + 446 + 16 * i;
        uint32_t start = (uint32_t) e[8] | (uint32_t) e[9] << 8 |
                         (uint32_t) e[10] << 16 | (uint32_t) e[11] << 24;
        uint32_t len = (uint32_t) e[12] | (uint32_t) e[13] << 8 |
                       (uint32_t) e[14] << 16 | (uint32_t) e[15] << 24;
        struct dm_target t;

        if (e[4] == 0 || len == 0) {
            continue;
        }
        snprintf (pname[nparts], sizeof pname[nparts], SNAP "-p%d", i + 1);
        printf ("DMTEST-PART %d start=%" PRIu32 " sectors=%" PRIu32 "\n",
                i + 1, start, len);
        if (dm_linear (&t, 0, len, snapdev, start) != 0 ||
            dm_create (pname[nparts], &t, 1, false, parts[nparts],
                       sizeof parts[nparts]) != 0) {
            fail ("linear", "%s", vmc_get_error ());
            goto done;
        }
        nparts++;
    }
    if (nparts < 2) {
        fail ("linear", "%d partitions, the test disk has 2", nparts);
        goto done;
    }
    ok ("linear");
    if (lib ("dm_status", dm_table (pname[0], path, sizeof path))) {
        printf ("DMTEST-INFO table of %s: %s", pname[0], path);
    }
    if (hash_dev ("/dev/mapper/" SNAP "-p2", hex) < 0) {
        fail ("hash p2", "%s", strerror (errno));
    } else {
        printf ("DMTEST-HASH p2 %s\n", hex);
    }
    check_striped (snapdev);
    check_loop_ro ();
    check_rw_linear (origin);

    if (mount ("/dev/mapper/" SNAP "-p1", MNT, "ext4", 0, NULL) != 0) {
        fail ("mount", "%s", strerror (errno));
        goto done;
    }
    mounted = true;
    read_line (MNT "/hello.txt", path, sizeof path);
    printf ("DMTEST-INFO hello.txt: %s\n", path);
    ok ("mount");
    err = change_files (write_bytes);
    if (err != 0 && !expect_invalid) {
        fail ("write", "%s", strerror (err));
    } else if (err != 0) {
        printf ("DMTEST-INFO writing with a full COW: %s\n", strerror (err));
    } else {
        ok ("write");
    }
    /* Busy while mounted: the error must say so, after the retries. */
    if (dm_remove (pname[0]) == 0) {
        fail ("remove busy", "removed a mounted device");
        mounted = false;
    } else {
        printf ("DMTEST-INFO removing mounted %s: %s\n", pname[0],
                vmc_get_error ());
        ok ("remove busy");
    }
    if (mounted && umount (MNT) != 0) {
        fail ("umount", "%s", strerror (errno));
        goto done;
    }
    mounted = false;
    ok ("umount");

    if (!lib ("snap_usage", snap_usage (SNAP, &used, &total, &invalid))) {
        goto done;
    }
    printf ("DMTEST-SNAP used=%" PRIu64 " total=%" PRIu64 " invalid=%d\n",
            used, total, invalid);
    if (expect_invalid) {
        if (!invalid) {
            fail ("invalid", "the snapshot is still valid");
        } else if (hash_dev (snapdev, hex) >= 0) {
            fail ("invalid", "an invalid snapshot can be read");
        } else {
            printf ("DMTEST-INFO reading the invalid snapshot: %s\n",
                    strerror (errno));
            ok ("invalid");
        }
    } else {
        if (invalid || used < write_bytes || used > total) {
            fail ("usage", "%" PRIu64 " of %" PRIu64 " bytes used, "
                  "invalid=%d, after writing %" PRIu64, used, total, invalid,
                  write_bytes);
        } else {
            ok ("usage");
        }
        if (hash_dev (snapdev, hex) < 0) {
            fail ("hash snapshot", "%s", strerror (errno));
        } else {
            printf ("DMTEST-HASH snapshot %s\n", hex);
        }
        if (have_scratch) {
            int64_t n = copy_dev (snapdev, scratch);

            if (n < 0) {
                fail ("scratch", "%s", strerror (errno));
            } else {
                printf ("DMTEST-INFO copied %" PRId64 " bytes to %s\n", n,
                        scratch);
                ok ("scratch");
            }
        }
    }
    if (hash_dev (origin, hex) < 0) {
        fail ("hash origin", "%s", strerror (errno));
    } else {
        printf ("DMTEST-HASH origin %s\n", hex);
    }

done:
    if (mounted && umount (MNT) != 0) {
        fail ("umount", "%s", strerror (errno));
    }
    for (int i = 0; i < nparts; i++) {
        if (dm_remove (pname[i]) != 0) {
            fail ("remove", "%s", vmc_get_error ());
        }
    }
    if (have_snap) {
        struct stat st;
        char bf[256];

        if (lib ("snap_remove", snap_remove (SNAP))) {
            /* Nothing left: the devices, the link, the loop device, the
             * RAM. */
            read_line ("/sys/block/loop0/loop/backing_file", bf, sizeof bf);
            if (lstat ("/dev/mapper/" SNAP, &st) == 0 ||
                lstat ("/dev/mapper/" SNAP "-p1", &st) == 0 ||
                access ("/run/vmconvert/cow/" SNAP, F_OK) == 0 ||
                bf[0] != '\0') {
                fail ("clean", "something is left (loop0 backing \"%s\")",
                      bf);
            } else {
                ok ("clean");
            }
            if (snap_usage (SNAP, &used, &total, &invalid) == 0) {
                fail ("clean", "snap_usage of a removed snapshot works");
            }
        }
        fd = open (origin, O_RDONLY | O_CLOEXEC);
        ro = 0;
        if (fd < 0 || ioctl (fd, BLKROGET, &ro) != 0 || ro != 1) {
            fail ("still read-only", "%s", origin);
        }
        if (fd >= 0) {
            close (fd);
        }
    }
    printf ("DMTEST-DONE failures=%d\n", failures);
    poweroff ();
}
