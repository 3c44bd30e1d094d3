/* SPDX-License-Identifier: MIT */
/*
 * The range set of the used-block maps, against a bitmap model: random
 * additions in random order, then every byte's membership, the byte count
 * and lookups agree with the model.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fs/rangeset.h"
#include "test.h"

#define SPACE 4096

static void
test_edges (void)
{
    struct rangeset s = { 0 };
    uint64_t next;

    CHECK (rangeset_add (&s, 10, 0) == 0 && s.n == 0);
    CHECK (rangeset_add (&s, 100, 10) == 0);
    CHECK (rangeset_add (&s, 110, 5) == 0 && s.n == 1);   /* touching */
    CHECK (rangeset_add (&s, 90, 10) == 0 && s.n == 1);
    CHECK (s.r[0].start == 90 && s.r[0].end == 115);
    CHECK (rangeset_add (&s, 0, 1) == 0 && s.n == 2 && s.r[0].end == 1);
    CHECK (rangeset_add (&s, UINT64_MAX, 2) < 0);           /* overflow */
    CHECK (rangeset_add (&s, UINT64_MAX - 1, 1) == 0);
    CHECK (rangeset_lookup (&s, 0, &next) == 1 && next == 1);
    CHECK (rangeset_lookup (&s, 1, &next) == 0 && next == 90);
    CHECK (rangeset_lookup (&s, 114, &next) == 1 && next == 115);
    CHECK (rangeset_lookup (&s, 115, &next) == 0 &&
           next == UINT64_MAX - 1);
    CHECK (rangeset_lookup (&s, UINT64_MAX - 1, &next) == 1 &&
           next == UINT64_MAX);
    CHECK (rangeset_lookup (&s, UINT64_MAX, &next) == 0 &&
           next == UINT64_MAX);
    CHECK (rangeset_add (&s, 0, 200) == 0 && s.n == 2);     /* swallows */
    CHECK (rangeset_bytes (&s) == 201);
    rangeset_free (&s);
    CHECK (s.n == 0 && s.r == NULL);
}

static void
test_model (unsigned seed)
{
    static unsigned char model[SPACE];
    struct rangeset s = { 0 };
    uint64_t bytes = 0;

    srand (seed);
    memset (model, 0, sizeof model);
    for (int k = 0; k < 300; k++) {
        uint64_t start = (uint64_t) rand () % SPACE;
        uint64_t len = (uint64_t) rand () % 40;
        if (start + len > SPACE)
            len = SPACE - start;
        CHECK (rangeset_add (&s, start, len) == 0);
        memset (model + start, 1, len);
    }
    for (size_t i = 0; i < s.n; i++) {
        CHECK (s.r[i].start < s.r[i].end);
        if (i > 0)
            CHECK (s.r[i - 1].end < s.r[i].start);  /* merged, sorted */
    }
    for (uint64_t o = 0; o < SPACE; o++) {
        uint64_t next;
        int in = rangeset_lookup (&s, o, &next);
        bytes += model[o];
        CHECK (in == model[o]);
        CHECK (next > o);
        if (next < SPACE)
            CHECK (model[next] != model[o]);
        for (uint64_t p = o; p < next && p < SPACE; p++)
            if (model[p] != model[o]) {
                CHECK (!"lookup's next skips a change");
                break;
            }
    }
    CHECK (rangeset_bytes (&s) == bytes);
    rangeset_free (&s);
}

int
main (void)
{
    test_edges ();
    for (unsigned seed = 1; seed <= 50; seed++)
        test_model (seed);
    return test_status ();
}
