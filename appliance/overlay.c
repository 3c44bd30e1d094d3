/* SPDX-License-Identifier: MIT */
/*
 * The guest on an overlay: see overlay.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "../converter/lib/error.h"
#include "../converter/lib/image.h"
#include "dm.h"
#include "overlay.h"

#define GUEST_ROOT "/run/vmconvert/guest"
#define SECTOR 512

int
overlay_inspect (struct overlay *ov, const char *const *devs, size_t n,
                 const struct inspect_opts *o)
{
    memset (ov, 0, sizeof *ov);
    if (n == 0 || n > OVERLAY_MAX_DISKS) {
        vmc_error ("%zu disks: 1 to %d can be inspected", n,
                   OVERLAY_MAX_DISKS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf (ov->dev[i], sizeof ov->dev[i], "%s", devs[i]);
        snprintf (ov->snap[i], sizeof ov->snap[i], "%s", devs[i]);
        ov->imgs[i] = image_open (devs[i], "raw", 0);
        if (ov->imgs[i] == NULL) {
            return -1;
        }
        ov->n = i + 1;
    }
    ov->have_in = true;
    if (inspect_disks (&ov->in, ov->imgs, devs, n, o) < 0) {
        return -1;
    }
    preflight (&ov->in, o);
    return 0;
}

static const char *
mount_type (const char *fs)
{
    if (strncmp (fs, "ext", 3) == 0) {
        return "ext4";              /* ext4's driver mounts ext2 and ext3 */
    }
    return fs;
}

/* Map volume VI of the map on the base devices as device-mapper device
 * NAME; its node into DEV. */
static int
map_volume (struct overlay *ov, int vi, const char *name, char *dev,
            size_t cap)
{
    const struct map_vol *v = &ov->in.map.vols[vi];
    struct dm_target *t;
    size_t nt = 0;
    int r = -1;

    if (v->size % SECTOR != 0) {
        vmc_error ("%s: size %" PRIu64 " is not whole sectors", v->name,
                   v->size);
        return -1;
    }
    t = calloc (v->nsegs > 0 ? v->nsegs : 1, sizeof *t);
    if (t == NULL) {
        vmc_perror ("calloc");
        return -1;
    }
    if (strcmp (v->kind, "lv") != 0) {
        if (v->disk < 0 || (size_t) v->disk >= ov->n ||
            v->start % SECTOR != 0) {
            vmc_error ("%s: not a volume of these disks", v->name);
            goto out;
        }
        if (dm_linear (&t[nt++], 0, v->size / SECTOR, ov->snap[v->disk],
                       v->start / SECTOR) < 0) {
            goto out;
        }
    }
    else {
        for (size_t s = 0; s < v->nsegs; s++) {
            const struct map_lvseg *g = &v->segs[s];
            const char *devs[128];
            uint64_t offs[128];

            if (g->nstripes == 0 || g->nstripes > 128 ||
                g->start % SECTOR || g->len % SECTOR ||
                g->stripe_size % SECTOR) {
                vmc_error ("%s: segment %zu cannot be mapped", v->name, s);
                goto out;
            }
            for (unsigned k = 0; k < g->nstripes; k++) {
                if (g->area[k].disk < 0 || (size_t) g->area[k].disk >= ov->n
                    || g->area[k].off % SECTOR) {
                    vmc_error ("%s: segment %zu is not on these disks",
                               v->name, s);
                    goto out;
                }
                devs[k] = ov->snap[g->area[k].disk];
                offs[k] = g->area[k].off / SECTOR;
            }
            if ((g->nstripes == 1 ?
                 dm_linear (&t[nt], g->start / SECTOR, g->len / SECTOR,
                            devs[0], offs[0]) :
                 dm_striped (&t[nt], g->start / SECTOR, g->len / SECTOR,
                             (uint32_t) (g->stripe_size / SECTOR),
                             g->nstripes, devs, offs)) < 0) {
                goto out;
            }
            nt++;
        }
    }
    r = dm_create (name, t, nt, false, dev, cap);
out:
    free (t);
    return r;
}

static void
unmount_all (struct guest *g, const struct inspection *in, bool api,
             size_t mounted)
{
    if (api) {
        guest_umount_api (g);
    }
    for (size_t k = mounted; k-- > 1;) {
        if (guest_umount_at (g, in->tree.m[k].path) < 0) {
            /* Lazily, so that the root can still go. */
            char p[512];

            snprintf (p, sizeof p, "%s%s", GUEST_ROOT, in->tree.m[k].path);
            umount2 (p, MNT_DETACH);
        }
    }
    guest_close (g);
    if (mounted > 0 && umount (GUEST_ROOT) < 0) {
        umount2 (GUEST_ROOT, MNT_DETACH);
    }
    sync ();
}

int
overlay_fixup (struct overlay *ov, bool in_place, const struct fixup_opts *o)
{
    struct inspection *in = &ov->in;
    struct fixup_report rep;
    struct guest g = { .rootfd = -1 };
    struct sysinfo si;
    uint64_t ram = 0;
    size_t mounted = 0;
    bool api = false;
    int r = -1;

    if (in->root < 0) {
        vmc_error ("no guest to fix up");
        return -1;
    }
    if (dm_version_check () < 0) {
        return -1;
    }
    if (sysinfo (&si) == 0) {
        ram = (uint64_t) si.totalram * si.mem_unit;
    }
    for (size_t i = 0; i < ov->n && !in_place; i++) {
        char name[32];
        uint64_t cow = ov->imgs[i]->size;

        /* Sparse, in the appliance's RAM (a tmpfs): what the fixups
         * write, at most half the RAM for each disk. */
        if (ram > 0 && cow > ram / 2) {
            cow = ram / 2;
        }
        snprintf (name, sizeof name, "vmc-snap%zu", i);
        if (snap_create (name, ov->dev[i], cow, ov->snap[i],
                         sizeof ov->snap[i]) < 0) {
            vmc_error_prefix ("snapshot of %s", ov->dev[i]);
            return -1;
        }
        ov->snapped[i] = true;
    }
    if (report_init (&rep) < 0) {
        return -1;
    }
    mkdir (GUEST_ROOT, 0755);
    for (size_t k = 0; k < in->tree.n; k++) {
        const struct tree_mount *m = &in->tree.m[k];
        char dev[64];

        snprintf (ov->vols[ov->nvols], sizeof ov->vols[0], "vmc-vol%zu", k);
        if (map_volume (ov, in->tree_vols[k], ov->vols[ov->nvols], dev,
                        sizeof dev) < 0) {
            vmc_error_prefix ("mapping %s", m->vol.name);
            goto out;
        }
        ov->nvols++;
        if (k == 0) {
            if (mount (dev, GUEST_ROOT, mount_type (m->type), 0, NULL) < 0) {
                vmc_perror ("mounting %s (%s) on %s", m->vol.name, dev,
                            GUEST_ROOT);
                goto out;
            }
            mounted = 1;
            if (guest_open (&g, GUEST_ROOT) < 0) {
                goto out;
            }
            continue;
        }
        if (guest_mount_at (&g, m->path, dev, mount_type (m->type), 0, NULL)
            < 0) {
            vmc_error_prefix ("%s", m->vol.name);
            goto out;
        }
        mounted = k + 1;
    }
    if (guest_mount_api (&g) < 0) {
        goto out;
    }
    api = true;
    r = fixup_linux (in, &g, o, &rep);
    if (r < 0) {
        vmc_error ("the fixups failed: %u error(s), the report says which",
                   rep.nerrors);
    }
out:
    if (r < 0 && rep.nerrors == 0 && vmc_get_error ()[0] != '\0') {
        report_error (&rep, "overlay", "%s", vmc_get_error ());
    }
    {
        FILE *fp = open_memstream (&ov->report, &ov->report_len);

        if (fp != NULL) {
            report_write (&rep, fp, in, o->target);
            fclose (fp);
        }
    }
    report_free (&rep);
    unmount_all (&g, in, api, mounted);
    for (size_t v = ov->nvols; v-- > 0;) {
        dm_remove (ov->vols[v]);
    }
    ov->nvols = 0;
    return r;
}

int
overlay_check (const struct overlay *ov)
{
    for (size_t i = 0; i < ov->n; i++) {
        char name[32];
        uint64_t used, total;
        bool invalid;

        if (!ov->snapped[i]) {
            continue;
        }
        snprintf (name, sizeof name, "vmc-snap%zu", i);
        if (snap_usage (name, &used, &total, &invalid) < 0) {
            return -1;
        }
        if (invalid) {
            vmc_error ("the snapshot of %s ran out of RAM: the fixed-up disk "
                       "is incomplete (give the machine more memory)",
                       ov->dev[i]);
            return -1;
        }
    }
    return 0;
}

void
overlay_free (struct overlay *ov)
{
    for (size_t v = ov->nvols; v-- > 0;) {
        dm_remove (ov->vols[v]);
    }
    for (size_t i = 0; i < ov->n; i++) {
        if (ov->snapped[i]) {
            char name[32];

            snprintf (name, sizeof name, "vmc-snap%zu", i);
            snap_remove (name);
        }
        image_close (ov->imgs[i]);
    }
    if (ov->have_in) {
        inspect_free (&ov->in);
    }
    free (ov->report);
    memset (ov, 0, sizeof *ov);
}
