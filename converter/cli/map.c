/* SPDX-License-Identifier: MIT */
/*
 * vmconvert map [--json] [-f FMT] IMG|DEV...
 *
 * The disk map of one machine's disks (mapped together, so that an LVM
 * volume group may span them): partition tables, LVM volume groups and
 * logical volumes, and for each partition or LV its filesystem and the
 * bytes in use; the disk's used ranges are what convert and send copy.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/error.h"
#include "../lib/image.h"
#include "../part/map.h"
#include "cli.h"

static void
map_usage (FILE *fp)
{
    fprintf (fp,
             "Usage: vmconvert map [--json] [-f FMT] IMG|DEV...\n"
             "\n"
             "Show what convert and send copy from the disks of one machine:\n"
             "the partition table (GPT, MBR with logical partitions), LVM2\n"
             "volume groups and logical volumes, and for each partition or\n"
             "LV its filesystem, label, UUID and the bytes in use.  Anything\n"
             "not recognised or not fully understood counts as used, with a\n"
             "warning saying why.  The disks are mapped together: a volume\n"
             "group may span them.\n"
             "\n"
             "  -f, --format FMT   read the images as FMT (default: probe)\n"
             "      --json         one JSON object, with the used ranges\n"
             "  -h, --help         this text\n");
}

/* A copy of S that is valid UTF-8 without control characters. */
static const char *
clean (const char *s, char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t k = 0;

    while (*p && k + 5 < len) {
        unsigned n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2
            : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = n > 0;

        for (unsigned i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (!ok || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
            buf[k++] = '?';
            p++;
            continue;
        }
        memcpy (buf + k, p, n);
        k += n;
        p += n;
    }
    buf[k] = 0;
    return buf;
}

static void
jstr (const char *s)
{
    char buf[1024];

    json_string (stdout, clean (s, buf, sizeof buf));
}

static void
print_ranges (const struct rangeset *s)
{
    printf ("[");
    for (size_t i = 0; i < s->n; i++)
        printf ("%s[%" PRIu64 ", %" PRIu64 "]", i ? ", " : "", s->r[i].start,
                s->r[i].end);
    printf ("]");
}

static void
print_json (const struct disk_map *m)
{
    printf ("{\n  \"disks\": [");
    for (size_t d = 0; d < m->ndisks; d++) {
        const struct map_disk *md = &m->disks[d];
        uint64_t used = rangeset_bytes (&md->used);

        printf ("%s\n    {\"name\": ", d ? "," : "");
        jstr (md->name);
        printf (", \"size\": %" PRIu64 ", \"partition_table\": ", md->size);
        jstr (md->pt.kind);
        printf (", \"sector_size\": %u, \"disk_id\": ", md->pt.sector_size);
        jstr (md->pt.disk_id);
        printf (", \"table_all_used\": %s, \"table_why\": ",
                md->pt.all_used ? "true" : "false");
        jstr (md->pt.why);
        printf (",\n     \"partitions\": [");
        for (size_t i = 0; i < md->pt.n; i++) {
            const struct part_entry *e = &md->pt.e[i];
            printf ("%s\n       {\"number\": %u, \"start\": %" PRIu64
                    ", \"size\": %" PRIu64 ", \"type\": ", i ? "," : "",
                    e->number, e->start, e->size);
            jstr (e->type);
            printf (", \"name\": ");
            jstr (e->name);
            printf (", \"uuid\": ");
            jstr (e->guid);
            printf ("}");
        }
        printf ("],\n     \"used_bytes\": %" PRIu64 ", \"used_share\": %.6f,"
                "\n     \"used_ranges\": ", used,
                md->size ? (double) used / (double) md->size : 0.0);
        print_ranges (&md->used);
        printf ("}");
    }
    printf ("],\n  \"volume_groups\": [");
    for (size_t i = 0; i < m->nvgs; i++) {
        const struct map_vg *g = &m->vgs[i];
        printf ("%s\n    {\"name\": ", i ? "," : "");
        jstr (g->name);
        printf (", \"id\": ");
        jstr (g->id);
        printf (", \"extent_size\": %" PRIu64 ", \"pvs\": %u, "
                "\"pvs_present\": %u, \"lvs\": %u}", g->extent_size, g->pvs,
                g->pvs_present, g->lvs);
    }
    printf ("],\n  \"volumes\": [");
    for (size_t i = 0; i < m->nvols; i++) {
        const struct map_vol *v = &m->vols[i];
        printf ("%s\n    {\"name\": ", i ? "," : "");
        jstr (v->name);
        printf (", \"kind\": ");
        jstr (v->kind);
        printf (", \"disk\": %d, \"number\": %u, \"start\": %" PRIu64
                ", \"size\": %" PRIu64 ", \"vg\": ", v->disk, v->number,
                v->start, v->size);
        jstr (v->vg);
        if (strcmp (v->kind, "lv") == 0) {
            printf (", \"segment_type\": ");
            jstr (v->lv_segtype);
            printf (", \"stripes\": %u", v->lv_stripes);
        }
        printf (",\n     \"fs\": ");
        jstr (v->fs.type);
        printf (", \"label\": ");
        jstr (v->fs.label);
        printf (", \"uuid\": ");
        jstr (v->fs.uuid);
        printf (", \"block_size\": %u, \"all_used\": %s, \"why\": ",
                v->fs.block_size, v->fs.all_used ? "true" : "false");
        jstr (v->fs.why);
        printf (", \"used_bytes\": %" PRIu64, v->used_bytes);
        if (!v->fs.all_used && strcmp (v->fs.type, "LVM2_member") != 0) {
            printf (",\n     \"used_ranges\": ");
            print_ranges (&v->fs.used);
        }
        printf ("}");
    }
    printf ("],\n  \"warnings\": [");
    for (size_t i = 0; i < m->whys.n; i++) {
        printf ("%s\n    ", i ? "," : "");
        jstr (m->whys.msg[i]);
    }
    printf ("]\n}\n");
}

static void
print_text (const struct disk_map *m)
{
    char b1[32], b2[32], c1[256], c2[256], c3[256];

    for (size_t d = 0; d < m->ndisks; d++) {
        const struct map_disk *md = &m->disks[d];

        printf ("Disk %s: %s (%" PRIu64 " bytes), partition table: %s",
                md->name, human_size (md->size, b1, sizeof b1), md->size,
                md->pt.kind);
        if (strcmp (md->pt.kind, "none") != 0)
            printf (" (%u-byte sectors, id %s)", md->pt.sector_size,
                    md->pt.disk_id);
        printf ("\n");
        if (md->pt.all_used)
            printf ("  table unusable: %s\n", md->pt.why);
        if (md->pt.n > 0)
            printf ("  %-4s %14s %14s  %-36s  %s\n", "#", "start", "size",
                    "type", "name");
        for (size_t i = 0; i < md->pt.n; i++) {
            const struct part_entry *e = &md->pt.e[i];
            printf ("  %-4u %14" PRIu64 " %14" PRIu64 "  %-36s  %s\n",
                    e->number, e->start, e->size, e->type,
                    clean (e->name, c1, sizeof c1));
        }
    }
    for (size_t i = 0; i < m->nvgs; i++) {
        const struct map_vg *g = &m->vgs[i];
        printf ("LVM volume group %s (id %s): extent size %s, %u PVs (%u "
                "here), %u LVs\n", clean (g->name, c1, sizeof c1),
                clean (g->id, c2, sizeof c2),
                human_size (g->extent_size, b1, sizeof b1), g->pvs,
                g->pvs_present, g->lvs);
    }
    printf ("Volumes:\n");
    for (size_t i = 0; i < m->nvols; i++) {
        const struct map_vol *v = &m->vols[i];
        printf ("  %-24s %-9s %-11s", clean (v->name, c1, sizeof c1), v->kind,
                v->fs.type);
        if (v->fs.label[0])
            printf (" label=%s", clean (v->fs.label, c2, sizeof c2));
        if (v->fs.uuid[0])
            printf (" uuid=%s", clean (v->fs.uuid, c3, sizeof c3));
        if (v->vg[0])
            printf (" vg=%s", clean (v->vg, c2, sizeof c2));
        if (strcmp (v->kind, "lv") == 0)
            printf (" %s", v->lv_segtype);
        if (strcmp (v->fs.type, "LVM2_member") == 0 && !v->fs.all_used)
            printf ("  (mapped through its VG)\n");
        else
            printf ("  used %s of %s%s%s\n",
                    human_size (v->used_bytes, b1, sizeof b1),
                    human_size (v->size, b2, sizeof b2),
                    v->fs.all_used ? ", all used: " : "",
                    v->fs.all_used ? clean (v->fs.why, c2, sizeof c2) : "");
    }
    for (size_t d = 0; d < m->ndisks; d++) {
        const struct map_disk *md = &m->disks[d];
        uint64_t used = rangeset_bytes (&md->used);
        printf ("Total %s: %s used of %s (%.1f%%)\n", md->name,
                human_size (used, b1, sizeof b1),
                human_size (md->size, b2, sizeof b2),
                md->size ? 100.0 * (double) used / (double) md->size : 0.0);
    }
}

void
map_print_warnings (const struct disk_map *m)
{
    for (size_t i = 0; i < m->whys.n; i++)
        fprintf (stderr, "vmconvert: warning: %s\n", m->whys.msg[i]);
    if (m->whys.dropped)
        fprintf (stderr, "vmconvert: warning: %zu more warnings\n",
                 m->whys.dropped);
}

int
cmd_map (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *format = NULL;
    struct image **imgs = NULL;
    struct disk_map m;
    bool json = false;
    int c, r = 1, n;

    while ((c = getopt_long (argc, argv, "f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'j': json = true; break;
        case 'h': map_usage (stdout); return 0;
        default: map_usage (stderr); return 1;
        }
    }
    if (optind >= argc) {
        map_usage (stderr);
        return 1;
    }
    n = argc - optind;
    imgs = calloc ((size_t) n, sizeof *imgs);
    if (imgs == NULL) {
        cli_errorf ("out of memory");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        imgs[i] = image_open (argv[optind + i], format, 0);
        if (imgs[i] == NULL) {
            cli_error ();
            goto out;
        }
    }
    if (disk_map_build (&m, imgs, (const char *const *) argv + optind,
                        (size_t) n) < 0) {
        cli_error ();
        disk_map_free (&m);
        goto out;
    }
    map_print_warnings (&m);
    if (json)
        print_json (&m);
    else
        print_text (&m);
    disk_map_free (&m);
    r = 0;
out:
    for (int i = 0; i < n; i++)
        image_close (imgs[i]);
    free (imgs);
    return r;
}
