/* check.h - the one assertion the unit tests share.
 *
 * CHECK(cond) or CHECK(cond, "fmt", args...): counts a pass, or counts a
 * failure and prints "FAIL file:line: cond" with the optional message. Each
 * test binary prints "N passed, M failed" at the end (check_report) and
 * exits non-zero on any failure, which is what ctest looks at. Tests never
 * stop at the first failure: one run shows all of them. */
#ifndef STRAND_TEST_CHECK_H
#define STRAND_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (cond) {                                                                            \
            passed++;                                                                          \
        } else {                                                                               \
            failed++;                                                                          \
            printf("FAIL %s:%d: %s:", __FILE__, __LINE__, #cond);                              \
            printf(" " __VA_ARGS__);                                                           \
            printf("\n");                                                                      \
        }                                                                                      \
    } while (0)

/* Prints the tally; the exit status for main. */
static inline int check_report(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed != 0;
}

#endif
