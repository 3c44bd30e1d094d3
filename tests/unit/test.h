/* SPDX-License-Identifier: MIT */
/*
 * A minimal unit-test harness: CHECK(cond) records a failure with its line
 * and goes on; the test's main returns test_status() (0 pass, 1 fail).
 */
#ifndef VMC_TEST_H
#define VMC_TEST_H

#include <stdio.h>

static int test_failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__,         \
                     __LINE__, #cond);                                      \
            test_failures++;                                                \
        }                                                                   \
    } while (0)

static inline int
test_status (void)
{
    if (test_failures > 0) {
        fprintf (stderr, "%d check(s) failed\n", test_failures);
        return 1;
    }
    return 0;
}

#endif
