/* SPDX-License-Identifier: MIT */
/*
 * Linux swap (mkswap's version 1 header, "SWAPSPACE2" at the end of the
 * first page).  Only the header page is in use: the rest holds nothing a
 * booted guest reads -- unless it holds a hibernation image (the header's
 * signature is replaced by a suspend signature), which a resume would
 * read: then the whole volume is in use.
 *
 * Layout (linux/include/linux/swap.h, union swap_header): bootbits[1024],
 * version u32, last_page u32, nr_badpages u32, uuid[16], volume_name[16],
 * ..., the signature in the last 10 bytes of the page.  Page sizes 4 KiB
 * to 64 KiB.
 */
#include <stdio.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "fs.h"

static const uint32_t page_sizes[] = { 4096, 8192, 16384, 65536 };

static const char *const hibernation_sigs[] = {
    "S1SUSPEND", "S2SUSPEND", "ULSUSPEND", "LINHIB0001",
};

/* The page size whose last 10 bytes hold SIG-like magic; 0 when none.
 * *KIND: 1 swap, 2 hibernation image. */
static int
find_page (const struct volume *v, uint32_t *page, int *kind)
{
    unsigned char sig[10];

    *page = 0;
    *kind = 0;
    for (size_t i = 0; i < sizeof page_sizes / sizeof *page_sizes; i++) {
        uint32_t ps = page_sizes[i];

        if (v->size < 2 * (uint64_t) ps)
            break;
        if (v->pread (v, sig, sizeof sig, ps - sizeof sig) < 0)
            return -1;
        if (memcmp (sig, "SWAPSPACE2", 10) == 0) {
            *page = ps;
            *kind = 1;
            return 0;
        }
        for (size_t j = 0; j < sizeof hibernation_sigs /
             sizeof *hibernation_sigs; j++) {
            size_t l = strlen (hibernation_sigs[j]);
            if (memcmp (sig, hibernation_sigs[j], l) == 0) {
                *page = ps;
                *kind = 2;
                return 0;
            }
        }
    }
    return 0;
}

static int
swap_probe (const struct volume *v)
{
    uint32_t page;
    int kind;

    if (find_page (v, &page, &kind) < 0)
        return -1;
    return kind != 0;
}


static int
swap_used (const struct volume *v, struct fs_result *r)
{
    unsigned char h[1024 + 64];
    uint32_t page, version;
    int kind;

    if (find_page (v, &page, &kind) < 0)
        return -1;
    r->block_size = page;
    if (kind == 2) {
        return fs_unclean (r, "swap holds a hibernation image (a resume "
                            "would read it)");
    }
    if (v->pread (v, h, sizeof h, 0) < 0)
        return -1;
    version = get_le32 (h + 1024);
    if (version != 1) {
        return fs_all_used (r, "swap header version %u unknown", version);
    }
    snprintf (r->uuid, sizeof r->uuid,
              "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
              "%02x%02x%02x%02x%02x%02x",
              h[1036], h[1037], h[1038], h[1039], h[1040], h[1041],
              h[1042], h[1043], h[1044], h[1045], h[1046], h[1047],
              h[1048], h[1049], h[1050], h[1051]);
    fs_printable (r->label, sizeof r->label, h + 1052, 16);
    return rangeset_add (&r->used, 0, page);
}

const struct fs_type fs_swap = {
    .name = "swap",
    .probe = swap_probe,
    .used = swap_used,
};
