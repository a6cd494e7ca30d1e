/* sort: n pseudo-random u32 (n <= MAX_N), sorted in place by an introsort-
 * free quicksort (median of three, insertion sort below 16, recursion on the
 * smaller side). Memory-heavy: loads, stores, compares, branches.
 * run(n) = a position-weighted sum of the sorted array, or 0xdeadbeef when
 * it is not sorted. */
#include "common.h"

#define MAX_N (4u << 20)
static u32 a[MAX_N];

static void insertion(u32 *v, long lo, long hi)
{
    for (long i = lo + 1; i <= hi; i++) {
        u32 x = v[i];
        long j = i - 1;
        while (j >= lo && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

static void swap(u32 *v, long i, long j)
{
    u32 t = v[i];
    v[i] = v[j];
    v[j] = t;
}

static void quicksort(u32 *v, long lo, long hi)
{
    while (hi - lo >= 16) {
        long mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) swap(v, mid, lo);
        if (v[hi] < v[lo]) swap(v, hi, lo);
        if (v[hi] < v[mid]) swap(v, hi, mid);
        u32 p = v[mid];
        long i = lo, j = hi;
        for (;;) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i >= j) break;
            swap(v, i, j);
            i++;
            j--;
        }
        /* [lo, j] <= p <= [j + 1, hi]: recurse on the smaller part */
        if (j - lo < hi - j) {
            quicksort(v, lo, j);
            lo = j + 1;
        } else {
            quicksort(v, j + 1, hi);
            hi = j;
        }
    }
    insertion(v, lo, hi);
}

u32 run(u32 n)
{
    if (n > MAX_N) n = MAX_N;
    u32 s = 0x9e3779b9u;
    for (u32 i = 0; i < n; i++) a[i] = xs32(&s);
    if (n > 1) quicksort(a, 0, (long)n - 1);
    u32 sum = 0;
    for (u32 i = 0; i < n; i++) {
        if (i && a[i - 1] > a[i]) return 0xdeadbeefu;
        sum = sum * 31u + a[i];
    }
    return sum;
}
