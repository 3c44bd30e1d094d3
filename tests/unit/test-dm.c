/* SPDX-License-Identifier: MIT */
/*
 * appliance/dm.c without a kernel: target lines, the DM_TABLE_LOAD data
 * it packs (checked against linux/dm-ioctl.h's layout), the
 * DM_TABLE_STATUS replies it reads (made here as the kernel lays them
 * out), snapshot status lines, and the checks that happen before any
 * ioctl, over a made-up /dev and /sys.  The real thing is tested by
 * tests/appliance/test-appliance-dm.sh in the appliance's kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../../appliance/dm.h"
#include "../../converter/lib/error.h"
#include "test.h"

static bool
error_has (const char *s)
{
    if (strstr (vmc_get_error (), s) != NULL) {
        return true;
    }
    fprintf (stderr, "  error \"%s\" lacks \"%s\"\n", vmc_get_error (), s);
    return false;
}

static void
test_lines (void)
{
    struct dm_target t;
    const char *devs[3] = { "8:16", "/dev/vdb", "8:48" };
    const uint64_t offs[3] = { 2048, 0, 384 };
    char longdev[200];
    const char *many[8];
    uint64_t manyoffs[8] = { 0 };

    CHECK (dm_linear (&t, 0, 1000, "/dev/vda", 2048) == 0);
    CHECK (t.start == 0 && t.len == 1000);
    CHECK (strcmp (t.type, "linear") == 0);
    CHECK (strcmp (t.params, "/dev/vda 2048") == 0);
    CHECK (dm_linear (&t, 1000, 24, "253:0", 0) == 0);
    CHECK (t.start == 1000 && strcmp (t.params, "253:0 0") == 0);

    /* What would split into two arguments, or is not there. */
    CHECK (dm_linear (&t, 0, 8, "/dev/my disk", 0) == -1);
    CHECK (error_has ("blank"));
    CHECK (dm_linear (&t, 0, 8, "/dev/a\nb", 0) == -1);
    CHECK (dm_linear (&t, 0, 8, "", 0) == -1);
    CHECK (dm_linear (&t, 0, 8, NULL, 0) == -1);
    CHECK (dm_linear (NULL, 0, 8, "/dev/a", 0) == -1);
    CHECK (dm_linear (&t, 0, 0, "/dev/a", 0) == -1);
    CHECK (dm_linear (&t, UINT64_MAX - 4, 8, "/dev/a", 0) == -1);
    CHECK (dm_linear (&t, 0, 8, "/dev/a", UINT64_MAX - 4) == -1);
    CHECK (error_has ("overflows"));

    CHECK (dm_striped (&t, 0, 3 * 4 * 128, 128, 3, devs, offs) == 0);
    CHECK (strcmp (t.type, "striped") == 0 && t.len == 1536);
    CHECK (strcmp (t.params, "3 128 8:16 2048 /dev/vdb 0 8:48 384") == 0);
    /* 1000 sectors are not 3 stripes, 1536 are not 2 of whole 1024s. */
    CHECK (dm_striped (&t, 0, 1000, 8, 3, devs, offs) == -1);
    CHECK (error_has ("whole"));
    CHECK (dm_striped (&t, 0, 1536, 1024, 2, devs, offs) == -1);
    CHECK (dm_striped (&t, 0, 1536, 0, 3, devs, offs) == -1);
    CHECK (dm_striped (&t, 0, 1536, 8, 0, devs, offs) == -1);
    memset (longdev, 'x', sizeof longdev - 1);
    longdev[0] = '/';
    longdev[sizeof longdev - 1] = '\0';
    for (int i = 0; i < 8; i++) {
        many[i] = longdev;
    }
    CHECK (dm_striped (&t, 0, 8 * 8, 8, 8, many, manyoffs) == -1);
    CHECK (error_has ("do not fit"));
    CHECK (t.params[0] == '\0');

    CHECK (dm_snapshot (&t, 0, 65536, "/dev/vda", "7:0", false, 8) == 0);
    CHECK (strcmp (t.type, "snapshot") == 0 && t.len == 65536);
    CHECK (strcmp (t.params, "/dev/vda 7:0 N 8") == 0);
    CHECK (dm_snapshot (&t, 0, 65536, "/dev/vda", "/dev/loop3", true, 16) ==
           0);
    CHECK (strcmp (t.params, "/dev/vda /dev/loop3 P 16") == 0);
    CHECK (dm_snapshot (&t, 0, 65536, "/dev/vda", "7:0", false, 12) == -1);
    CHECK (error_has ("power of two"));
    CHECK (dm_snapshot (&t, 0, 65536, "/dev/vda", "", false, 8) == -1);
}

static void
test_pack (void)
{
    struct dm_target t[3];
    unsigned char buf[4096];
    struct dm_target_spec s;
    long n;

    CHECK (dm_linear (&t[0], 0, 100, "/dev/vda", 2048) == 0);
    CHECK (dm_linear (&t[1], 100, 50, "8:16", 7) == 0);
    memset (buf, 0xee, sizeof buf);
    n = dm_pack_targets (t, 2, buf, sizeof buf);
    /* Each spec is 40 bytes, then the string and its NUL, padded to 8:
     * "/dev/vda 2048" 14 -> 56, "8:16 7" 7 -> 48. */
    CHECK (sizeof s == 40);
    CHECK (n == 56 + 48);
    memcpy (&s, buf, sizeof s);
    CHECK (s.sector_start == 0 && s.length == 100 && s.status == 0);
    CHECK (s.next == 56);
    CHECK (strcmp (s.target_type, "linear") == 0);
    CHECK (strcmp ((char *) buf + 40, "/dev/vda 2048") == 0);
    CHECK (buf[55] == 0);
    memcpy (&s, buf + 56, sizeof s);
    CHECK (s.sector_start == 100 && s.length == 50 && s.next == 48);
    CHECK (strcmp ((char *) buf + 96, "8:16 7") == 0);
    CHECK (buf[104] == 0xee);

    /* The kernel wants contiguous targets from 0. */
    t[1].start = 101;
    CHECK (dm_pack_targets (t, 2, buf, sizeof buf) == -1);
    CHECK (error_has ("starts at sector 101"));
    t[1].start = 100;
    t[0].start = 8;
    CHECK (dm_pack_targets (t, 1, buf, sizeof buf) == -1);
    t[0].start = 0;
    CHECK (dm_pack_targets (t, 0, buf, sizeof buf) == -1);
    CHECK (dm_pack_targets (NULL, 1, buf, sizeof buf) == -1);
    CHECK (dm_pack_targets (t, 2, buf, 100) == -1);
    CHECK (error_has ("does not fit"));
    CHECK (dm_pack_targets (t, 2, buf, 104) == 104);
    memcpy (t[2].type, "linearlinearline", 16);
    t[2].start = 150;
    t[2].len = 1;
    CHECK (dm_pack_targets (t, 3, buf, sizeof buf) == -1);
    memcpy (t[2].type, "Linear", 7);
    CHECK (dm_pack_targets (t, 3, buf, sizeof buf) == -1);
    CHECK (error_has ("bad type"));
    memcpy (t[2].type, "zero", 5);
    t[2].params[0] = '\0';
    CHECK (dm_pack_targets (t, 3, buf, sizeof buf) == 104 + 48);
    memset (t[2].params, 'a', sizeof t[2].params);
    CHECK (dm_pack_targets (t, 3, buf, sizeof buf) == -1);
}

/* A DM_TABLE_STATUS reply as the kernel writes it: specs and strings,
 * each "next" the offset of the following spec from the first. */
static size_t
reply (unsigned char *buf, size_t cap, int n, const char *const *types,
       const char *const *strs)
{
    size_t off = 0;

    memset (buf, 0, cap);
    for (int i = 0; i < n; i++) {
        struct dm_target_spec s = { .sector_start = 1000u * (unsigned) i,
                                    .length = 1000 };
        size_t l = strlen (strs[i]) + 1, start = off;

        off = (start + sizeof s + l + 7) & ~(size_t) 7;
        s.next = (uint32_t) off;
        memcpy (s.target_type, types[i], strlen (types[i]));
        memcpy (buf + start, &s, sizeof s);
        memcpy (buf + start + sizeof s, strs[i], l);
    }
    return off;
}

static void
test_status_reply (void)
{
    static const char *const types[] = { "snapshot", "linear", "error" };
    static const char *const strs[] = { "16/2048 0", "", "x" };
    unsigned char buf[1024];
    char out[256];
    size_t len = reply (buf, sizeof buf, 3, types, strs);
    struct dm_target_spec s;

    CHECK (dm_format_specs (buf, len, 3, out, sizeof out) == 3);
    CHECK (strcmp (out, "0 1000 snapshot 16/2048 0\n1000 1000 linear\n"
                   "2000 1000 error x\n") == 0);
    CHECK (dm_format_specs (buf, len, 0, out, sizeof out) == 0);
    CHECK (out[0] == '\0');
    CHECK (dm_format_specs (buf, len, 3, out, 30) == -1);
    CHECK (error_has ("does not fit"));
    /* More targets than the reply holds, a string without its NUL, a
     * "next" that goes back. */
    CHECK (dm_format_specs (buf, len, 4, out, sizeof out) == -1);
    CHECK (error_has ("out of bounds"));
    CHECK (dm_format_specs (buf, 49, 1, out, sizeof out) == -1);
    CHECK (error_has ("not terminated"));
    memcpy (&s, buf, sizeof s);
    s.next = 0;
    memcpy (buf, &s, sizeof s);
    CHECK (dm_format_specs (buf, len, 2, out, sizeof out) == -1);
    CHECK (error_has ("does not lead"));
    s.next = 4000;
    memcpy (buf, &s, sizeof s);
    CHECK (dm_format_specs (buf, len, 2, out, sizeof out) == -1);
    CHECK (dm_format_specs (buf, len, 5000, out, sizeof out) == -1);
}

static void
test_snap_status (void)
{
    uint64_t u = 1, t = 1;
    bool inv = true;

    CHECK (snap_parse_status ("16/2048 0", &u, &t, &inv) == 0);
    CHECK (u == 16 && t == 2048 && !inv);
    CHECK (snap_parse_status ("0/131072 0", &u, &t, &inv) == 0);
    CHECK (u == 0 && t == 131072 && !inv);
    CHECK (snap_parse_status ("48/2048 16", &u, &t, &inv) == 0);
    CHECK (u == 48);
    CHECK (snap_parse_status ("Invalid", &u, &t, &inv) == 0);
    CHECK (inv && u == 0 && t == 0);
    CHECK (snap_parse_status ("Overflow", &u, &t, &inv) == 0 && inv);
    CHECK (snap_parse_status ("Merge failed", &u, &t, &inv) == 0 && inv);

    CHECK (snap_parse_status ("Unknown", &u, &t, &inv) == -1);
    CHECK (error_has ("unexpected status"));
    CHECK (!inv);
    CHECK (snap_parse_status ("16/2048", &u, &t, &inv) == -1);
    CHECK (snap_parse_status ("16/2048 0 1", &u, &t, &inv) == -1);
    CHECK (snap_parse_status ("16 2048 0", &u, &t, &inv) == -1);
    CHECK (snap_parse_status ("-1/2048 0", &u, &t, &inv) == -1);
    CHECK (snap_parse_status ("20/10 0", &u, &t, &inv) == -1);
    CHECK (snap_parse_status ("1/99999999999999999999999 0", &u, &t,
                              &inv) == -1);
    CHECK (snap_parse_status ("", &u, &t, &inv) == -1);
    CHECK (snap_parse_status ("Invalid ", &u, &t, &inv) == -1);
    CHECK (snap_parse_status (NULL, &u, &t, &inv) == -1);
}

/* Over a made-up root: what is refused before any ioctl, and the
 * messages when the kernel's parts are missing. */
static void
test_no_kernel (const char *root)
{
    struct dm_target t;
    char dev[64], path[PATH_MAX], name[200];
    uint64_t u, tot;
    bool inv;
    int fd;

    dm_set_sysroot (root);
    CHECK (dm_linear (&t, 0, 8, "/dev/vda", 0) == 0);

    CHECK (dm_create ("a/b", &t, 1, false, dev, sizeof dev) == -1);
    CHECK (error_has ("only letters"));
    CHECK (dm_create ("", &t, 1, false, dev, sizeof dev) == -1);
    CHECK (dm_create ("..", &t, 1, false, dev, sizeof dev) == -1);
    CHECK (dm_create ("control", &t, 1, false, dev, sizeof dev) == -1);
    memset (name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    CHECK (dm_create (name, &t, 1, false, dev, sizeof dev) == -1);
    CHECK (error_has ("longer than 127"));
    name[DM_NAME_MAX] = '\0';
    CHECK (dm_remove (name) == -1);
    CHECK (error_has ("dm_mod"));
    CHECK (dm_create ("ok", &t, 0, false, dev, sizeof dev) == -1);
    t.start = 3;
    CHECK (dm_create ("ok", &t, 1, false, dev, sizeof dev) == -1);
    CHECK (error_has ("starts at sector 3"));
    t.start = 0;

    /* No /dev/mapper/control and nothing in sysfs: the module. */
    CHECK (dm_version_check () == -1);
    CHECK (error_has ("dm_mod module"));
    CHECK (dm_create ("ok", &t, 1, false, dev, sizeof dev) == -1);
    CHECK (error_has ("dm_mod module"));
    CHECK (dm_status ("ok", path, sizeof path) == -1);
    CHECK (error_has ("dm_mod module"));
    CHECK (snap_usage ("ok", &u, &tot, &inv) == -1);
    CHECK (snap_remove ("ok") == -1);

    CHECK (loop_attach ("/nonexistent", false, dev, sizeof dev) == -1);
    CHECK (error_has ("/nonexistent"));
    CHECK (loop_attach ("/dev/null", true, dev, sizeof dev) == -1);
    CHECK (error_has ("loop module"));
    CHECK (loop_detach ("") == -1);

    /* The origin must be a block device; nothing is left in /run. */
    CHECK (snap_create ("s", "/dev/null", 1 << 20, dev, sizeof dev) == -1);
    CHECK (error_has ("not a block device"));
    CHECK (snap_create ("s", "/nonexistent", 1 << 20, dev, sizeof dev) ==
           -1);
    CHECK (snap_create ("s", "/dev/null", 4096, dev, sizeof dev) == -1);
    CHECK (error_has ("too small"));
    CHECK (snap_create ("s/x", "/dev/null", 1 << 20, dev, sizeof dev) == -1);
    snprintf (path, sizeof path, "%s/run/vmconvert/cow/s", root);
    CHECK (access (path, F_OK) != 0);

    /* Sysfs knows the misc device but /dev lacks the node: it is made
     * (as root), here pointing at /dev/null, which then refuses the
     * ioctl. */
    snprintf (path, sizeof path, "%s/sys/class/misc/device-mapper", root);
    CHECK (mkdir (path, 0755) == 0 || errno == EEXIST);
    snprintf (path, sizeof path, "%s/sys/class/misc/device-mapper/dev",
              root);
    fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK (fd >= 0 && write (fd, "1:3\n", 4) == 4);
    close (fd);
    CHECK (dm_version_check () == -1);
    if (geteuid () == 0) {
        struct stat st;

        snprintf (path, sizeof path, "%s/dev/mapper/control", root);
        CHECK (stat (path, &st) == 0 && S_ISCHR (st.st_mode) &&
               st.st_rdev == makedev (1, 3));
        CHECK (error_has ("DM_VERSION"));
    }

    /* A read-write table that would write a read-only device (sysfs
     * "ro" 1, as after BLKROSET) is refused before the kernel sees it;
     * read-only tables, a snapshot's origin and writable devices go on
     * (to the control node, /dev/null here). */
    {
        static const char *const dirs[] = {
            "/sys/dev", "/sys/dev/block", "/sys/dev/block/7:0",
            "/sys/dev/block/7:1",
        };
        const char *devs[2] = { "7:1", "7:0" };
        const uint64_t offs[2] = { 0, 0 };

        for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
            snprintf (path, sizeof path, "%s%s", root, dirs[i]);
            CHECK (mkdir (path, 0755) == 0);
        }
        for (int i = 0; i < 2; i++) {
            snprintf (path, sizeof path, "%s/sys/dev/block/7:%d/ro", root, i);
            fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            CHECK (fd >= 0 && write (fd, i == 0 ? "1\n" : "0\n", 2) == 2);
            close (fd);
        }
        CHECK (dm_linear (&t, 0, 8, "7:0", 0) == 0);
        CHECK (dm_create ("rw", &t, 1, false, dev, sizeof dev) == -1);
        CHECK (error_has ("7:0 is read-only"));
        CHECK (dm_create ("ro", &t, 1, true, dev, sizeof dev) == -1);
        CHECK (strstr (vmc_get_error (), "read-only") == NULL);
        CHECK (dm_linear (&t, 0, 8, "7:1", 0) == 0);
        CHECK (dm_create ("rw", &t, 1, false, dev, sizeof dev) == -1);
        CHECK (strstr (vmc_get_error (), "read-only") == NULL);
        CHECK (dm_striped (&t, 0, 16, 8, 2, devs, offs) == 0);
        CHECK (dm_create ("rw", &t, 1, false, dev, sizeof dev) == -1);
        CHECK (error_has ("7:0 is read-only"));
        CHECK (dm_snapshot (&t, 0, 16, "7:0", "7:1", false, 8) == 0);
        CHECK (dm_create ("snap", &t, 1, false, dev, sizeof dev) == -1);
        CHECK (strstr (vmc_get_error (), "read-only") == NULL);
        CHECK (dm_snapshot (&t, 0, 16, "7:1", "7:0", false, 8) == 0);
        CHECK (dm_create ("snap", &t, 1, false, dev, sizeof dev) == -1);
        CHECK (error_has ("7:0 is read-only"));
    }
    dm_set_sysroot (NULL);
}

int
main (void)
{
    char root[] = "/tmp/test-dm.XXXXXX", cmd[128];

    test_lines ();
    test_pack ();
    test_status_reply ();
    test_snap_status ();
    if (mkdtemp (root) == NULL) {
        perror ("mkdtemp");
        return 1;
    }
    {
        char p[PATH_MAX];

        snprintf (p, sizeof p, "%s/dev", root);
        CHECK (mkdir (p, 0755) == 0);
        snprintf (p, sizeof p, "%s/sys", root);
        CHECK (mkdir (p, 0755) == 0);
        snprintf (p, sizeof p, "%s/sys/class", root);
        CHECK (mkdir (p, 0755) == 0);
        snprintf (p, sizeof p, "%s/sys/class/misc", root);
        CHECK (mkdir (p, 0755) == 0);
    }
    test_no_kernel (root);
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system (cmd) != 0) {
        fprintf (stderr, "could not remove %s\n", root);
    }
    return test_status ();
}
