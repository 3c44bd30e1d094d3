/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the NTFS used-block map (converter/fs/fs-ntfs.c).
 *
 * The input is used twice: as a raw volume itself, and decoded as a sparse
 * volume, so that small seeds can stand for whole mkntfs volumes (whose
 * metadata lies spread over megabytes of zeros):
 *
 *   u16 size in 512-byte sectors (capped at 16384: 8 MiB)
 *   u16 count of extents, then per extent: u16 first sector, u16 length in
 *       sectors, bit 15 of the length set for "all 0xff" (no data)
 *   the data of the other extents, in order, 512 bytes a sector (zeros
 *   once the input runs out)
 *
 * Both go through image_open_memory, volume_of_image and fs_identify.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../converter/fs/fs.h"
#include "../../converter/lib/error.h"
#include "../../converter/lib/image.h"

#define MAX_SECTORS 16384u

static void
run_volume (const void *buf, size_t len)
{
    struct image *img;
    struct volume v;
    struct fs_result r;

    img = image_open_memory (buf, len, "raw", IMAGE_OPEN_NO_BACKING);
    if (img == NULL)
        return;
    volume_of_image (&v, "fuzz", img, 0, img->size);
    if (fs_identify (&v, &r) == 0)
        fs_result_free (&r);
    image_close (img);
}

static void
fuzz_quiet (const char *msg)
{
    (void) msg;
}

static uint16_t
le16 (const uint8_t *p)
{
    return (uint16_t) (p[0] | p[1] << 8);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static uint8_t vol[MAX_SECTORS * 512];
    size_t nsec, next, pos;

    vmc_set_warn_hook (fuzz_quiet);
    run_volume (data, size);

    if (size < 4)
        return 0;
    nsec = le16 (data);
    if (nsec > MAX_SECTORS)
        nsec = MAX_SECTORS;
    next = le16 (data + 2);
    pos = 4 + 4 * next;
    memset (vol, 0, nsec * 512);
    for (size_t i = 0; i < next && 4 + 4 * i + 4 <= size; i++) {
        size_t first = le16 (data + 4 + 4 * i);
        size_t cnt = le16 (data + 6 + 4 * i);
        int ff = (cnt & 0x8000) != 0;

        cnt &= 0x7fff;
        if (first >= nsec)
            continue;
        if (cnt > nsec - first)
            cnt = nsec - first;
        if (ff) {
            memset (vol + first * 512, 0xff, cnt * 512);
            continue;
        }
        for (size_t s = 0; s < cnt && pos < size; s++, pos += 512) {
            size_t l = size - pos < 512 ? size - pos : 512;

            memcpy (vol + (first + s) * 512, data + pos, l);
        }
    }
    run_volume (vol, nsec * 512);
    return 0;
}
