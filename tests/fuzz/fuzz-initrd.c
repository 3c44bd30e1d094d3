/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the initramfs reader (converter/fixup/initrd.c) over a
 * file held in memory -- cpio "newc" archives one after the other, each
 * plain or compressed with gzip, zstd or xz, with zero padding between.
 * Every name handed to the callback must be a NUL-terminated string
 * shorter than a cpio name may be; the result must be 0, 1 (with a reason)
 * or -1 (with a message).  Some inputs stop the listing early, which must
 * end it cleanly.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fixup/initrd.h"
#include "../../converter/lib/error.h"

struct seen {
    size_t n, stop_after;
};

static int
name_seen (void *opaque, const char *name)
{
    struct seen *s = opaque;

    if (strnlen (name, 4096) >= 4096) {
        abort ();
    }
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char why[160];
    struct seen s = { 0, size % 5 == 0 ? 3 : 0 };
    int r;

    memset (why, 'x', sizeof why);
    r = initrd_list_mem (data, size, name_seen, &s, why, sizeof why);
    if (memchr (why, '\0', sizeof why) == NULL) {
        abort ();
    }
    if (r == 1 && why[0] == '\0') {
        abort ();
    }
    if (r < -1 || r > 1 || (r == -1 && vmc_get_error ()[0] == '\0')) {
        abort ();
    }
    if (s.stop_after > 0 && s.n > s.stop_after) {
        abort ();               /* the callback asked to stop */
    }
    return 0;
}
