/* wasm_float.h - IEEE 754 helpers where plain C differs from WebAssembly:
 * sign operations on bits (NaN payloads kept), min/max with NaN and signed
 * zeros, float-to-int conversion range checks (the C cast is undefined out
 * of range) and the saturating variants. Static inline: the interpreter's
 * hot loop uses them directly. */
#ifndef STRAND_WASM_FLOAT_H
#define STRAND_WASM_FLOAT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float wf_f32(uint64_t s)
{
    uint32_t u = (uint32_t)s;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint64_t wf_b32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline double wf_f64(uint64_t s)
{
    double d;
    memcpy(&d, &s, 8);
    return d;
}
static inline uint64_t wf_b64(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* min/max: a NaN operand gives a NaN (propagated through an arithmetic op so
 * it is quieted); -0 is less than +0. */
static inline float wf_min32(float a, float b)
{
    if (a != a || b != b) return a + b;
    if (a == b) return wf_f32(wf_b32(a) | wf_b32(b));
    return a < b ? a : b;
}
static inline float wf_max32(float a, float b)
{
    if (a != a || b != b) return a + b;
    if (a == b) return wf_f32(wf_b32(a) & wf_b32(b));
    return a > b ? a : b;
}
static inline double wf_min64(double a, double b)
{
    if (a != a || b != b) return a + b;
    if (a == b) return wf_f64(wf_b64(a) | wf_b64(b));
    return a < b ? a : b;
}
static inline double wf_max64(double a, double b)
{
    if (a != a || b != b) return a + b;
    if (a == b) return wf_f64(wf_b64(a) & wf_b64(b));
    return a > b ? a : b;
}

/* Float-to-int: 0 on success, 1 NaN (invalid conversion), 2 out of range
 * (integer overflow). The bounds are exact in both float types. */
static inline int wf_trunc_i32s(double x, int32_t *out)
{
    if (x != x) return 1;
    if (!(x > -2147483649.0 && x < 2147483648.0)) return 2;
    *out = (int32_t)x;
    return 0;
}
static inline int wf_trunc_u32(double x, uint32_t *out)
{
    if (x != x) return 1;
    if (!(x > -1.0 && x < 4294967296.0)) return 2;
    *out = (uint32_t)x;
    return 0;
}
static inline int wf_trunc_i64s(double x, int64_t *out)
{
    if (x != x) return 1;
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) return 2;
    *out = (int64_t)x;
    return 0;
}
static inline int wf_trunc_u64(double x, uint64_t *out)
{
    if (x != x) return 1;
    if (!(x > -1.0 && x < 18446744073709551616.0)) return 2;
    *out = (uint64_t)x;
    return 0;
}

/* Saturating variants: NaN gives 0, out of range clamps. */
static inline uint32_t wf_sat_i32s(double x)
{
    if (x != x) return 0;
    if (x <= -2147483649.0) return (uint32_t)INT32_MIN;
    if (x >= 2147483648.0) return (uint32_t)INT32_MAX;
    return (uint32_t)(int32_t)x;
}
static inline uint32_t wf_sat_u32(double x)
{
    if (x != x || x <= -1.0) return 0;
    if (x >= 4294967296.0) return UINT32_MAX;
    return (uint32_t)x;
}
static inline uint64_t wf_sat_i64s(double x)
{
    if (x != x) return 0;
    if (x < -9223372036854775808.0) return (uint64_t)INT64_MIN;
    if (x >= 9223372036854775808.0) return (uint64_t)INT64_MAX;
    return (uint64_t)(int64_t)x;
}
static inline uint64_t wf_sat_u64(double x)
{
    if (x != x || x <= -1.0) return 0;
    if (x >= 18446744073709551616.0) return UINT64_MAX;
    return (uint64_t)x;
}

#endif
