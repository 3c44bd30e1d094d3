/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../lib/error.h"
#include "../lib/image.h"
#include "fs.h"

extern const struct fs_type fs_swap;
extern const struct fs_type fs_exfat;
extern const struct fs_type fs_fat;
extern const struct fs_type fs_ntfs;
extern const struct fs_type fs_ext;
extern const struct fs_type fs_xfs;

/* In probing order: types whose magic is at a fixed place first. */
const struct fs_type *const fs_types[] = {
    &fs_xfs,
    &fs_swap,
    &fs_ntfs,       /* "NTFS    " at 3 */
    &fs_exfat,      /* "EXFAT   " at 3: before FAT, whose probe is weaker */
    &fs_ext,        /* magic 0xEF53 at 1080 */
    &fs_fat,        /* last: a BPB is recognised by its geometry alone */
    NULL,
};

static int
image_volume_pread (const struct volume *v, void *buf, size_t count,
                    uint64_t offset)
{
    if (offset > v->size || count > v->size - offset) {
        vmc_error ("%s: read of %zu bytes at %llu is past its end (%llu)",
                   v->name, count, (unsigned long long) offset,
                   (unsigned long long) v->size);
        return -1;
    }
    return image_pread (v->img, buf, count, v->img_offset + offset);
}

void
volume_of_image (struct volume *v, const char *name, struct image *img,
                 uint64_t offset, uint64_t size)
{
    memset (v, 0, sizeof *v);
    snprintf (v->name, sizeof v->name, "%s", name);
    v->size = size;
    v->pread = image_volume_pread;
    v->img = img;
    v->img_offset = offset;
}

int
fs_identify (const struct volume *v, struct fs_result *r)
{
    memset (r, 0, sizeof *r);
    for (size_t i = 0; fs_types[i] != NULL; i++) {
        const struct fs_type *t = fs_types[i];
        int p = t->probe (v);

        if (p < 0)
            return -1;
        if (p == 0)
            continue;
        snprintf (r->type, sizeof r->type, "%s", t->name);
        if (t->used (v, r) < 0) {
            fs_result_free (r);
            return -1;
        }
        return 0;
    }
    snprintf (r->type, sizeof r->type, "unknown");
    r->all_used = true;
    snprintf (r->why, sizeof r->why, "no filesystem recognised");
    return 0;
}

void
fs_result_free (struct fs_result *r)
{
    rangeset_free (&r->used);
}

int
fs_all_used (struct fs_result *r, const char *fmt, ...)
{
    va_list ap;

    if (r->all_used) {
        return 0;
    }
    r->all_used = true;
    va_start (ap, fmt);
    vsnprintf (r->why, sizeof r->why, fmt, ap);
    va_end (ap);
    return 0;
}

int
fs_unclean (struct fs_result *r, const char *fmt, ...)
{
    va_list ap;

    r->unclean = true;
    if (r->all_used) {
        return 0;
    }
    r->all_used = true;
    va_start (ap, fmt);
    vsnprintf (r->why, sizeof r->why, fmt, ap);
    va_end (ap);
    return 0;
}

void
fs_printable (char *dst, size_t dstlen, const unsigned char *src, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n && src[i] != 0 && k + 1 < dstlen; i++) {
        dst[k++] = src[i] >= 0x20 && src[i] < 0x7f ? (char) src[i] : '?';
    }
    dst[k] = 0;
}
