/* fuzz.h - what the libFuzzer targets share: ASSERT for the invariants a
 * target checks beyond "no crash" (a failed one aborts, which libFuzzer
 * reports with the input that caused it). */
#ifndef STRAND_FUZZ_H
#define STRAND_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define ASSERT(c)                                                                            \
    do {                                                                                     \
        if (!(c)) {                                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);       \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

#endif
