/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a VHDX in packed form (see tests/tools/mk-vhdx-pack.c),
 * expanded into a sparse file in memory, opened and read through.  A valid
 * VHDX needs more than 4 MiB, so plain inputs under -max_len never reach
 * the metadata, the BAT or the log; packed ones do.
 *
 * Its seeds are in tests/fuzz/corpus/vhdx-packed/.  Records are applied in
 * order into a 64 MiB buffer; only what the previous input dirtied is
 * cleared, so the cost per input follows the input, not the file size.
 */
#include <string.h>
#include <sys/mman.h>

#include "harness.h"

#define PACK_MAX_FILE (64u << 20)
#define PACK_MAX_RECORDS 4096

/* mmap'ed, not static: LeakSanitizer scans global data for pointers,
 * and 64 MiB of it at every leak check would dominate the run time. */
static unsigned char *file;
static struct { uint32_t off, len; } dirty[PACK_MAX_RECORDS];
static unsigned ndirty;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t pos = 4, n;
    uint32_t fsize, off;
    unsigned i;

    if (file == NULL) {
        file = mmap (NULL, PACK_MAX_FILE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (file == MAP_FAILED) {
            abort ();
        }
    }
    for (i = 0; i < ndirty; i++) {
        memset (file + dirty[i].off, 0, dirty[i].len);
    }
    ndirty = 0;
    if (size < 4) {
        return 0;
    }
    fsize = (uint32_t) data[0] | (uint32_t) data[1] << 8 |
        (uint32_t) data[2] << 16 | (uint32_t) data[3] << 24;
    if (fsize > PACK_MAX_FILE) {
        fsize = PACK_MAX_FILE;
    }
    while (pos + 6 <= size && ndirty < PACK_MAX_RECORDS) {
        off = (uint32_t) data[pos] | (uint32_t) data[pos + 1] << 8 |
            (uint32_t) data[pos + 2] << 16 | (uint32_t) data[pos + 3] << 24;
        n = (size_t) data[pos + 4] | (size_t) data[pos + 5] << 8;
        pos += 6;
        if (n > size - pos) {
            n = size - pos;
        }
        if (off < fsize) {
            if (n > fsize - off) {
                n = fsize - off;
            }
            memcpy (file + off, data + pos, n);
            dirty[ndirty].off = off;
            dirty[ndirty].len = (uint32_t) n;
            ndirty++;
        }
        pos += n;
    }
    return fuzz_image (file, fsize, "vhdx");
}
