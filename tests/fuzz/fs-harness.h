/* SPDX-License-Identifier: MIT */
/*
 * The body of a filesystem fuzz target (fuzz-fat.c, fuzz-exfat.c): the
 * input is a volume twice over: as it is (an in-memory raw image, through
 * fs_identify and every filesystem type), and read as the first bytes of a
 * 64 MiB volume whose rest is zeros, through type T alone -- so a seed of
 * a few hundred KiB can describe a filesystem far larger than the input.
 * Every result must have its ranges sorted, disjoint and inside the
 * volume.
 */
#ifndef VMC_FUZZ_FS_HARNESS_H
#define VMC_FUZZ_FS_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fs/fs.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"

#define ZERO_EXTENDED_SIZE (64ull << 20)

static void
fuzz_quiet (const char *msg)
{
    (void) msg;
}

struct mem {
    const uint8_t *data;
    size_t size;
};

static int
mem_pread (const struct volume *v, void *buf, size_t count, uint64_t offset)
{
    const struct mem *m = v->priv;
    size_t n = 0;

    if (offset > v->size || count > v->size - offset)
        abort ();                   /* the parser read past the volume */
    if (offset < m->size) {
        n = count < m->size - offset ? count : (size_t) (m->size - offset);
        memcpy (buf, m->data + offset, n);
    }
    memset ((char *) buf + n, 0, count - n);
    return 0;
}

static void
check_result (const struct volume *v, const struct fs_result *r)
{
    uint64_t prev = 0;

    if (r->all_used)
        return;
    /* Ranges sorted, disjoint and inside the volume. */
    for (size_t i = 0; i < r->used.n; i++) {
        if (r->used.r[i].start < prev || r->used.r[i].end <= r->used.r[i].start
            || r->used.r[i].end > v->size)
            abort ();
        prev = r->used.r[i].end;
    }
}

static int
fuzz_fs_type (const struct fs_type *t, const uint8_t *data, size_t size)
{
    struct mem m = { data, size };
    struct image *img;
    struct volume v;
    struct fs_result r;

    vmc_set_warn_hook (fuzz_quiet);
    img = image_open_memory (data, size, "raw", IMAGE_OPEN_NO_BACKING);
    if (img != NULL) {
        volume_of_image (&v, "fuzz", img, 0, img->size);
        if (fs_identify (&v, &r) == 0) {
            check_result (&v, &r);
            fs_result_free (&r);
        }
        image_close (img);
    }

    memset (&v, 0, sizeof v);
    snprintf (v.name, sizeof v.name, "fuzz");
    v.size = size > ZERO_EXTENDED_SIZE ? size : ZERO_EXTENDED_SIZE;
    v.pread = mem_pread;
    v.priv = &m;
    if (t->probe (&v) == 1) {
        memset (&r, 0, sizeof r);
        snprintf (r.type, sizeof r.type, "%s", t->name);
        if (t->used (&v, &r) == 0)
            check_result (&v, &r);
        fs_result_free (&r);
    }
    return 0;
}

#endif
