/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the fat used-block map (converter/fs/fs-fat.c).  The input
 * is a volume twice over: as it is (an in-memory raw image, through
 * fs_identify and every filesystem type), and read as the first bytes of a
 * 64 MiB volume whose rest is zeros, through the fat type alone -- so a
 * seed of a few hundred KiB can describe a filesystem far larger than the
 * input.
 */
#include <stdio.h>
#include <string.h>

#include <stdint.h>
#include <stdlib.h>

#include "../../converter/fs/fs.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"

extern const struct fs_type fs_fat;

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

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
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
    if (fs_fat.probe (&v) == 1) {
        memset (&r, 0, sizeof r);
        snprintf (r.type, sizeof r.type, "%s", fs_fat.name);
        if (fs_fat.used (&v, &r) == 0)
            check_result (&v, &r);
        fs_result_free (&r);
    }
    return 0;
}
