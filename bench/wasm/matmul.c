/* matmul: C = A x B for n x n u32 matrices (n <= MAX_N), i-k-j loop order;
 * pseudo-random A and B. Integer only, so native and wasm agree bit for bit.
 * run(n) = a position-weighted sum of C. */
#include "common.h"

#define MAX_N 512
static u32 A[MAX_N * MAX_N], B[MAX_N * MAX_N], C[MAX_N * MAX_N];

u32 run(u32 n)
{
    if (n > MAX_N) n = MAX_N;
    u32 s = 12345;
    for (u32 i = 0; i < n * n; i++) {
        A[i] = xs32(&s) & 0xffff;
        B[i] = xs32(&s) & 0xffff;
    }
    for (u32 i = 0; i < n; i++) {
        u32 *ci = &C[i * n];
        /* k = 0 writes the row (no memset: the wasm build has no libc) */
        for (u32 j = 0; j < n; j++) ci[j] = A[i * n] * B[j];
        for (u32 k = 1; k < n; k++) {
            u32 aik = A[i * n + k];
            const u32 *bk = &B[k * n];
            for (u32 j = 0; j < n; j++) ci[j] += aik * bk[j];
        }
    }
    u32 sum = 0;
    for (u32 i = 0; i < n * n; i++) sum = sum * 33u ^ C[i];
    return sum;
}
