/* bench/wasm/common.h - shared by the CPU-bound workloads of bench/wasm.sh.
 *
 * Each workload is one C file defining `uint32_t run(uint32_t n)` (the
 * checksum of the work for size n). It is built twice:
 *   - to wasm32 with clang -nostdlib (no libc, no imports): `run` and
 *     `bench` (= run(BENCH_N), for wasm-interp, which cannot pass
 *     arguments) are exported;
 *   - natively with gcc -O2 and -DNATIVE_MAIN: main() reads n (and a
 *     repeat count) from argv, so the compiler cannot fold it, and prints
 *     the checksum.
 * No libc calls in the workloads, so both builds run the same code. */
#ifndef BENCH_WASM_COMMON_H
#define BENCH_WASM_COMMON_H

typedef unsigned int u32;
typedef unsigned long long u64;

#ifndef BENCH_N
#define BENCH_N 1
#endif

#if defined(__wasm__)
#define EXPORT(name) __attribute__((export_name(name)))
#else
#define EXPORT(name)
#endif

/* xorshift32: the pseudo-random input every workload generates itself. */
static inline u32 xs32(u32 *s)
{
    u32 x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

EXPORT("run") u32 run(u32 n);

EXPORT("bench") u32 bench(void);
u32 bench(void) { return run(BENCH_N); }

#ifdef NATIVE_MAIN
#include <stdio.h>
#include <stdlib.h>
/* native N [REPS]: run(N) REPS times (default 1), print the checksum. The
 * runs are timed together and divided by REPS (the native runs are short).
 * n goes through a volatile so that no run can be folded or hoisted. */
int main(int argc, char **argv)
{
    volatile u32 n = argc > 1 ? (u32)strtoul(argv[1], NULL, 0) : BENCH_N;
    long reps = argc > 2 ? strtol(argv[2], NULL, 0) : 1;
    u32 sum = 0;
    for (long i = 0; i < reps; i++) {
        u32 s = run(n);
        if (i && s != sum) {
            printf("checksum changed between runs: %u, %u\n", sum, s);
            return 1;
        }
        sum = s;
    }
    printf("%u\n", sum);
    return 0;
}
#endif

#endif
