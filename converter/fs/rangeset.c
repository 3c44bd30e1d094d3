/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "../lib/checked-overflow.h"
#include "../lib/error.h"
#include "rangeset.h"

/* Index of the first range whose end is >= START (ranges that touch or
 * overlap [START, ...) are merged from there). */
static size_t
first_reaching (const struct rangeset *s, uint64_t start)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].end < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int
grow (struct rangeset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct range *r;

    if (cap > SIZE_MAX / sizeof *r) {
        vmc_error ("range set: too many ranges");
        return -1;
    }
    r = realloc (s->r, cap * sizeof *r);
    if (r == NULL) {
        vmc_error ("range set: out of memory (%zu ranges)", s->n);
        return -1;
    }
    s->r = r;
    s->cap = cap;
    return 0;
}

int
rangeset_add (struct rangeset *s, uint64_t start, uint64_t len)
{
    uint64_t end;
    size_t i, j;

    if (len == 0)
        return 0;
    if (ckd_add (&end, start, len)) {
        vmc_error ("range set: range %llu+%llu overflows",
                   (unsigned long long) start, (unsigned long long) len);
        return -1;
    }
    /* Fast path: at or after the last range. */
    if (s->n > 0 && s->r[s->n - 1].end >= start &&
        s->r[s->n - 1].start <= start) {
        if (end > s->r[s->n - 1].end)
            s->r[s->n - 1].end = end;
        return 0;
    }
    i = first_reaching (s, start);
    /* Ranges i .. j-1 touch or overlap [start, end): merge them. */
    j = i;
    while (j < s->n && s->r[j].start <= end)
        j++;
    if (j > i) {
        if (s->r[i].start < start)
            start = s->r[i].start;
        if (s->r[j - 1].end > end)
            end = s->r[j - 1].end;
        s->r[i].start = start;
        s->r[i].end = end;
        memmove (&s->r[i + 1], &s->r[j], (s->n - j) * sizeof *s->r);
        s->n -= j - i - 1;
        return 0;
    }
    if (s->n == s->cap && grow (s) < 0)
        return -1;
    memmove (&s->r[i + 1], &s->r[i], (s->n - i) * sizeof *s->r);
    s->r[i].start = start;
    s->r[i].end = end;
    s->n++;
    return 0;
}

uint64_t
rangeset_bytes (const struct rangeset *s)
{
    uint64_t total = 0;

    for (size_t i = 0; i < s->n; i++)
        total += s->r[i].end - s->r[i].start;
    return total;
}

int
rangeset_lookup (const struct rangeset *s, uint64_t offset, uint64_t *next)
{
    size_t i;

    if (offset == UINT64_MAX) {     /* no range can hold it */
        if (next)
            *next = UINT64_MAX;
        return 0;
    }
    /* r[i] is the first range with end > offset. */
    i = first_reaching (s, offset + 1);
    if (i < s->n && s->r[i].start <= offset) {
        if (next)
            *next = s->r[i].end;
        return 1;
    }
    if (next)
        *next = i < s->n ? s->r[i].start : UINT64_MAX;
    return 0;
}

void
rangeset_free (struct rangeset *s)
{
    free (s->r);
    s->r = NULL;
    s->n = s->cap = 0;
}
