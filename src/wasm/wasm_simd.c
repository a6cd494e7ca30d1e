/* wasm_simd.c - fixed-width SIMD (the 0xfd prefix, WebAssembly 2.0): what
 * each instruction takes (for the decoder, validator and compiler) and its
 * execution, out of the interpreter's dispatch loop.
 *
 * wasm_exec() has one handler for all of them, OP_SIMD, which calls
 * wasm_simd_exec() with the instruction: the dispatch loop stays small
 * (clang's compile time grows quadratically with its handlers) and modules
 * without v128 run exactly as before. A v128 sits in two consecutive frame
 * slots, low half first; on the little-endian hosts this runtime targets
 * (its loads and stores are plain memcpy too) that is the value's memory
 * order, so lanes are read and written through a union. Operations are
 * plain C over lanes; float lanes follow the scalar instructions (NaN
 * results of arithmetic, min/max and rounding as in wasm_float.h). */
#include "wasm/wasm_float.h"
#include "wasm/wasm_int.h"

typedef union {
    uint8_t u8[16];
    int8_t i8[16];
    uint16_t u16[8];
    int16_t i16[8];
    uint32_t u32[4];
    int32_t i32[4];
    uint64_t u64[2];
    int64_t i64[2];
    float f32[4];
    double f64[2];
} v128;

/* The helpers below borrow their v128 operands and write only the result
 * they are handed (r), which may not alias an operand. */

int wasm_simd_kind(uint32_t sub)
{
    static const uint8_t reserved[] = {0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4,
                                       0xbb, 0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4,
                                       0xe2, 0xee};
    if (sub > 0xff) return SK_NONE;
    for (size_t i = 0; i < sizeof(reserved); i++)
        if (sub == reserved[i]) return SK_NONE;
    if (sub <= 0x0a || sub == 0x5c || sub == 0x5d) return SK_LOAD;
    if (sub == 0x0b) return SK_STORE;
    if (sub == 0x0c) return SK_CONST;
    if (sub == 0x0d) return SK_SHUFFLE;
    if (sub >= 0x0f && sub <= 0x14) return SK_SPLAT;
    if (sub >= 0x15 && sub <= 0x22) {
        /* per shape: extract (i8x16 and i16x8: _s and _u), then replace */
        static const uint8_t rep[] = {0x17, 0x1a, 0x1c, 0x1e, 0x20, 0x22};
        for (size_t i = 0; i < sizeof(rep); i++)
            if (sub == rep[i]) return SK_REPLACE;
        return SK_EXTRACT;
    }
    if (sub == 0x52) return SK_TERNARY;
    if (sub == 0x53 || sub == 0x63 || sub == 0x64 || sub == 0x83 || sub == 0x84 || sub == 0xa3 ||
        sub == 0xa4 || sub == 0xc3 || sub == 0xc4)
        return SK_TEST;
    if (sub >= 0x54 && sub <= 0x57) return SK_LOAD_LANE;
    if (sub >= 0x58 && sub <= 0x5b) return SK_STORE_LANE;
    if ((sub & 0x1f) >= 0x0b && (sub & 0x1f) <= 0x0d && sub >= 0x6b && sub <= 0xcd) return SK_SHIFT;
    /* unary: not, conversions, abs/neg/popcnt/sqrt, rounding, extends */
    if (sub == 0x4d || sub == 0x5e || sub == 0x5f || sub == 0x60 || sub == 0x61 || sub == 0x62 ||
        (sub >= 0x67 && sub <= 0x6a) || sub == 0x74 || sub == 0x75 || sub == 0x7a ||
        (sub >= 0x7c && sub <= 0x81) || (sub >= 0x87 && sub <= 0x8a) || sub == 0x94 ||
        sub == 0xa0 || sub == 0xa1 || (sub >= 0xa7 && sub <= 0xaa) || sub == 0xc0 ||
        sub == 0xc1 || (sub >= 0xc7 && sub <= 0xca) || sub == 0xe0 || sub == 0xe1 ||
        sub == 0xe3 || sub == 0xec || sub == 0xed || sub == 0xef || sub >= 0xf8)
        return SK_UNARY;
    return SK_BINARY;
}

uint8_t wasm_simd_scalar(uint32_t sub)
{
    static const uint8_t splat[6] = {WASM_I32, WASM_I32, WASM_I32, WASM_I64, WASM_F32, WASM_F64};
    if (sub >= 0x0f && sub <= 0x14) return splat[sub - 0x0f];
    if (sub <= 0x1c) return WASM_I32;
    if (sub <= 0x1e) return WASM_I64;
    return sub <= 0x20 ? WASM_F32 : WASM_F64;
}

uint32_t wasm_simd_lanes(uint32_t sub)
{
    if (sub >= 0x54 && sub <= 0x5b) return 16u >> ((sub - 0x54) & 3);
    if (sub <= 0x17) return 16;
    if (sub <= 0x1a) return 8;
    if (sub <= 0x1c || sub == 0x1f || sub == 0x20) return 4;
    return 2;
}

uint32_t wasm_simd_align(uint32_t sub)
{
    static const uint8_t load[11] = {4, 3, 3, 3, 3, 3, 3, 0, 1, 2, 3};
    if (sub <= 0x0a) return load[sub];
    if (sub == 0x0b) return 4;
    if (sub >= 0x54 && sub <= 0x5b) return (sub - 0x54) & 3;
    return sub == 0x5c ? 2 : 3;
}

/* --- lane arithmetic --- */

static inline int8_t sat8(int v)
{
    return (int8_t)(v < INT8_MIN ? INT8_MIN : v > INT8_MAX ? INT8_MAX : v);
}
static inline uint8_t satu8(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > UINT8_MAX ? UINT8_MAX : v);
}
static inline int16_t sat16(int32_t v)
{
    return (int16_t)(v < INT16_MIN ? INT16_MIN : v > INT16_MAX ? INT16_MAX : v);
}
static inline uint16_t satu16(int32_t v)
{
    return (uint16_t)(v < 0 ? 0 : v > UINT16_MAX ? UINT16_MAX : v);
}
/* Rounding as the scalar f32/f64 instructions: a NaN stays a quiet NaN. */
static inline float ceil32(float a) { return a != a ? a + a : ceilf(a); }
static inline float floor32(float a) { return a != a ? a + a : floorf(a); }
static inline float trunc32(float a) { return a != a ? a + a : truncf(a); }
static inline float nearest32(float a) { return a != a ? a + a : nearbyintf(a); }
static inline double ceil64(double a) { return a != a ? a + a : ceil(a); }
static inline double floor64(double a) { return a != a ? a + a : floor(a); }
static inline double trunc64(double a) { return a != a ? a + a : trunc(a); }
static inline double nearest64(double a) { return a != a ? a + a : nearbyint(a); }

/* r.F[i] = expr for each of the n lanes (a, b: the operands) */
#define MAP(F, n, expr)                                                                      \
    do {                                                                                     \
        for (int i = 0; i < (n); i++) r.F[i] = (expr);                                       \
    } while (0)

/* Lane i of n-byte lanes, sign- or zero-extended. */
static int64_t lane_s(const v128 *v, uint32_t n, int i)
{
    switch (n) {
    case 1: return v->i8[i];
    case 2: return v->i16[i];
    case 4: return v->i32[i];
    default: return v->i64[i];
    }
}

/* All ones in the low n bytes. */
static uint64_t lane_mask(uint32_t n)
{
    return n == 8 ? UINT64_MAX : ((uint64_t)1 << 8 * n) - 1;
}

static uint64_t lane_u(const v128 *v, uint32_t n, int i)
{
    return (uint64_t)lane_s(v, n, i) & lane_mask(n);
}

/* Integer relation k (the order of i8x16.eq..ge_u: eq ne lt_s lt_u gt_s
 * gt_u le_s le_u ge_s ge_u) of lane i. */
static int int_holds(uint32_t k, const v128 *a, const v128 *b, uint32_t n, int i)
{
    int64_t x = lane_s(a, n, i), y = lane_s(b, n, i);
    uint64_t ux = lane_u(a, n, i), uy = lane_u(b, n, i);
    switch (k) {
    case 0: return x == y;
    case 1: return x != y;
    case 2: return x < y;
    case 3: return ux < uy;
    case 4: return x > y;
    case 5: return ux > uy;
    case 6: return x <= y;
    case 7: return ux <= uy;
    case 8: return x >= y;
    default: return ux >= uy;
    }
}

/* Float relation k (eq ne lt gt le ge); false with a NaN except ne. */
static int float_holds(uint32_t k, double x, double y)
{
    switch (k) {
    case 0: return x == y;
    case 1: return x != y;
    case 2: return x < y;
    case 3: return x > y;
    case 4: return x <= y;
    default: return x >= y;
    }
}

/* Comparisons 0x23..0x4c and i64x2's 0xd6..0xdb: all ones in the lanes
 * where the relation holds. */
static int compare(uint32_t sub, const v128 *a, const v128 *b, v128 *r)
{
    static const uint8_t i64k[6] = {0, 1, 2, 4, 6, 8}; /* i64x2 has no _u */
    uint32_t n, k;
    int f = 0;
    if (sub >= 0x23 && sub <= 0x40) n = 1u << (sub - 0x23) / 10, k = (sub - 0x23) % 10;
    else if (sub >= 0xd6 && sub <= 0xdb) n = 8, k = i64k[sub - 0xd6];
    else if (sub >= 0x41 && sub <= 0x4c) n = sub <= 0x46 ? 4 : 8, k = (sub - 0x41) % 6, f = 1;
    else return 0;
    for (int i = 0; i < (int)(16 / n); i++) {
        int t = !f     ? int_holds(k, a, b, n, i)
                : n == 4 ? float_holds(k, a->f32[i], b->f32[i])
                         : float_holds(k, a->f64[i], b->f64[i]);
        memset(r->u8 + i * n, t ? 0xff : 0, n);
    }
    return 1;
}

/* f32x4 (from 0xe0) and f64x2 (from 0xec) arithmetic, in the same order:
 * abs neg - sqrt add sub mul div min max pmin pmax. F: the lanes as
 * floats, U: as bits, S: the sign bit (abs and neg keep NaN payloads). */
#define FLOAT_ARITH(base, F, U, n, S, sqrt_, min_, max_)                                     \
    case (base) + 0x0: MAP(U, n, a.U[i] & ~(S)); break;                                      \
    case (base) + 0x1: MAP(U, n, a.U[i] ^ (S)); break;                                       \
    case (base) + 0x3: MAP(F, n, sqrt_(a.F[i])); break;                                      \
    case (base) + 0x4: MAP(F, n, a.F[i] + b.F[i]); break;                                    \
    case (base) + 0x5: MAP(F, n, a.F[i] - b.F[i]); break;                                    \
    case (base) + 0x6: MAP(F, n, a.F[i] * b.F[i]); break;                                    \
    case (base) + 0x7: MAP(F, n, a.F[i] / b.F[i]); break;                                    \
    case (base) + 0x8: MAP(F, n, min_(a.F[i], b.F[i])); break;                               \
    case (base) + 0x9: MAP(F, n, max_(a.F[i], b.F[i])); break;                               \
    case (base) + 0xa: MAP(F, n, b.F[i] < a.F[i] ? b.F[i] : a.F[i]); break; /* pmin */      \
    case (base) + 0xb: MAP(F, n, a.F[i] < b.F[i] ? b.F[i] : a.F[i]); break; /* pmax */

/* Float lanes: arithmetic, rounding, conversions. */
static int floats(uint32_t sub, const v128 *pa, const v128 *pb, v128 *pr)
{
    v128 a = *pa, b = *pb, r;
    memset(&r, 0, sizeof(r));
    switch (sub) {
    case 0x5e: MAP(f32, 2, (float)a.f64[i]); break; /* demote, lanes 2-3 zero */
    case 0x5f: MAP(f64, 2, (double)a.f32[i]); break; /* promote_low */
    case 0x67: MAP(f32, 4, ceil32(a.f32[i])); break;
    case 0x68: MAP(f32, 4, floor32(a.f32[i])); break;
    case 0x69: MAP(f32, 4, trunc32(a.f32[i])); break;
    case 0x6a: MAP(f32, 4, nearest32(a.f32[i])); break;
    case 0x74: MAP(f64, 2, ceil64(a.f64[i])); break;
    case 0x75: MAP(f64, 2, floor64(a.f64[i])); break;
    case 0x7a: MAP(f64, 2, trunc64(a.f64[i])); break;
    case 0x94: MAP(f64, 2, nearest64(a.f64[i])); break;
        FLOAT_ARITH(0xe0, f32, u32, 4, 0x80000000u, sqrtf, wf_min32, wf_max32)
        FLOAT_ARITH(0xec, f64, u64, 2, 0x8000000000000000ull, sqrt, wf_min64, wf_max64)
    case 0xf8: MAP(u32, 4, wf_sat_i32s(a.f32[i])); break;
    case 0xf9: MAP(u32, 4, wf_sat_u32(a.f32[i])); break;
    case 0xfa: MAP(f32, 4, (float)a.i32[i]); break;
    case 0xfb: MAP(f32, 4, (float)a.u32[i]); break;
    case 0xfc: MAP(u32, 2, wf_sat_i32s(a.f64[i])); break; /* _zero: lanes 2-3 stay 0 */
    case 0xfd: MAP(u32, 2, wf_sat_u32(a.f64[i])); break;
    case 0xfe: MAP(f64, 2, (double)a.i32[i]); break;
    case 0xff: MAP(f64, 2, (double)a.u32[i]); break;
    default: return 0;
    }
    *pr = r;
    return 1;
}

/* The shape of an integer instruction from 0x60 on: lanes of n bytes. */
static uint32_t shape_bytes(uint32_t sub)
{
    return 1u << ((sub - 0x60) >> 5);
}

/* Lane i of n-byte lanes of r = the low n bytes of v (little-endian). */
static void set_lane(v128 *r, uint32_t n, int i, uint64_t v)
{
    memcpy(r->u8 + i * n, &v, n);
}

/* The v128 -> i32 tests: any_true, and per shape all_true, bitmask. */
static uint32_t test(uint32_t sub, const v128 *a)
{
    if (sub == 0x53) return (a->u64[0] | a->u64[1]) != 0;
    uint32_t n = shape_bytes(sub), all = 1, mask = 0;
    for (int i = 0; i < 16 / (int)n; i++) {
        all &= lane_u(a, n, i) != 0;
        mask |= (uint32_t)(lane_u(a, n, i) >> (8 * n - 1)) << i;
    }
    return (sub & 0x1f) == 0x03 ? all : mask;
}

/* shl, shr_s, shr_u per shape, by k modulo the lane width. */
static void shift(uint32_t sub, const v128 *a, uint32_t k, v128 *r)
{
    uint32_t n = shape_bytes(sub), off = (sub - 0x60) & 0x1f;
    k &= 8 * n - 1;
    for (int i = 0; i < 16 / (int)n; i++)
        set_lane(r, n, i, off == 0x0b ? lane_u(a, n, i) << k
                          : off == 0x0c ? (uint64_t)(lane_s(a, n, i) >> k) : lane_u(a, n, i) >> k);
}

/* Integer operations particular to one or two shapes: swizzle, bitwise,
 * popcnt, narrowing, q15mulr, extadd_pairwise, dot. */
static int integers(uint32_t sub, const v128 *pa, const v128 *pb, v128 *pr)
{
    v128 a = *pa, b = *pb, r;
    memset(&r, 0, sizeof(r));
    switch (sub) {
    case 0x0e: MAP(u8, 16, b.u8[i] < 16 ? a.u8[b.u8[i]] : 0); break; /* swizzle */
    case 0x4d: MAP(u64, 2, ~a.u64[i]); break;
    case 0x4e: MAP(u64, 2, a.u64[i] & b.u64[i]); break;
    case 0x4f: MAP(u64, 2, a.u64[i] & ~b.u64[i]); break;
    case 0x50: MAP(u64, 2, a.u64[i] | b.u64[i]); break;
    case 0x51: MAP(u64, 2, a.u64[i] ^ b.u64[i]); break;
    case 0x62: MAP(u8, 16, (uint8_t)__builtin_popcount(a.u8[i])); break;
    case 0x65: MAP(i8, 16, sat8(i < 8 ? a.i16[i] : b.i16[i - 8])); break;
    case 0x66: MAP(u8, 16, satu8(i < 8 ? a.i16[i] : b.i16[i - 8])); break;
    case 0x7c: MAP(i16, 8, (int16_t)(a.i8[2 * i] + a.i8[2 * i + 1])); break;
    case 0x7d: MAP(u16, 8, (uint16_t)(a.u8[2 * i] + a.u8[2 * i + 1])); break;
    case 0x7e: MAP(i32, 4, a.i16[2 * i] + a.i16[2 * i + 1]); break;
    case 0x7f: MAP(u32, 4, (uint32_t)a.u16[2 * i] + a.u16[2 * i + 1]); break;
    case 0x82: MAP(i16, 8, sat16((a.i16[i] * b.i16[i] + 0x4000) >> 15)); break; /* q15mulr_sat_s */
    case 0x85: MAP(i16, 8, sat16(i < 4 ? a.i32[i] : b.i32[i - 4])); break;
    case 0x86: MAP(u16, 8, satu16(i < 4 ? a.i32[i] : b.i32[i - 4])); break;
    case 0xba: /* dot: the only overflow, 2 * (-32768)^2, wraps */
        MAP(u32, 4, (uint32_t)((int64_t)a.i16[2 * i] * b.i16[2 * i] +
                               (int64_t)a.i16[2 * i + 1] * b.i16[2 * i + 1]));
        break;
    default: return 0;
    }
    *pr = r;
    return 1;
}

/* Lane i of the lanes of n / 2 bytes, sign- or zero-extended. */
static uint64_t half_lane(const v128 *v, uint32_t n, int i, int sign)
{
    return sign ? (uint64_t)lane_s(v, n / 2, i) : lane_u(v, n / 2, i);
}

static int64_t clamp(int64_t x, int64_t lo, int64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* The integer operations every shape has at the same offset from its base
 * (0x60 i8x16, 0x80 i16x8, 0xa0 i32x4, 0xc0 i64x2), computed on n-byte
 * lanes as 64-bit values. A shape without one has a reserved opcode there
 * (refused by the decoder) or one of another family, which compare(),
 * floats() and integers() take before this. */
static int by_shape(uint32_t sub, const v128 *a, const v128 *b, v128 *r)
{
    if (sub < 0x60 || sub >= 0xe0) return 0;
    uint32_t off = (sub - 0x60) & 0x1f, n = shape_bytes(sub);
    int lanes = 16 / (int)n;
    uint64_t umax = lane_mask(n);
    int64_t smax = (int64_t)(umax >> 1);
    for (int i = 0; i < lanes; i++) {
        int64_t x = lane_s(a, n, i), y = lane_s(b, n, i);
        uint64_t ux = lane_u(a, n, i), uy = lane_u(b, n, i), v;
        switch (off) {
        case 0x00: v = x < 0 ? 0 - ux : ux; break;                       /* abs */
        case 0x01: v = 0 - ux; break;                                    /* neg */
        case 0x07: case 0x08: case 0x09: case 0x0a:                      /* extend low/high s/u */
            v = half_lane(a, n, i + (off == 8 || off == 10 ? lanes : 0), off <= 8);
            break;
        case 0x0e: v = ux + uy; break;                                   /* add */
        case 0x0f: v = (uint64_t)clamp(x + y, -smax - 1, smax); break;   /* add_sat_s */
        case 0x10: v = ux + uy > umax ? umax : ux + uy; break;           /* add_sat_u */
        case 0x11: v = ux - uy; break;                                   /* sub */
        case 0x12: v = (uint64_t)clamp(x - y, -smax - 1, smax); break;   /* sub_sat_s */
        case 0x13: v = ux < uy ? 0 : ux - uy; break;                     /* sub_sat_u */
        case 0x15: v = ux * uy; break;                                   /* mul */
        case 0x16: v = x < y ? ux : uy; break;                           /* min_s */
        case 0x17: v = ux < uy ? ux : uy; break;                         /* min_u */
        case 0x18: v = x > y ? ux : uy; break;                           /* max_s */
        case 0x19: v = ux > uy ? ux : uy; break;                         /* max_u */
        case 0x1b: v = (ux + uy + 1) >> 1; break;                        /* avgr_u */
        case 0x1c: case 0x1d: case 0x1e: case 0x1f: {                    /* extmul low/high s/u */
            int j = i + (off & 1 ? lanes : 0), sign = off <= 0x1d;
            v = half_lane(a, n, j, sign) * half_lane(b, n, j, sign);
            break;
        }
        default: return 0;
        }
        set_lane(r, n, i, v);
    }
    return 1;
}

/* Any operation of lanes (binary, unary with b = a): r = a op b. */
static void lanes_op(uint32_t sub, const v128 *a, const v128 *b, v128 *r)
{
    if (!compare(sub, a, b, r) && !floats(sub, a, b, r) && !integers(sub, a, b, r))
        by_shape(sub, a, b, r);
}

/* splat: every lane of r from the scalar slot s. */
static void splat(uint32_t sub, uint64_t s, v128 *r)
{
    switch (sub) {
    case 0x0f: for (int i = 0; i < 16; i++) r->u8[i] = (uint8_t)s; break;
    case 0x10: for (int i = 0; i < 8; i++) r->u16[i] = (uint16_t)s; break;
    case 0x11: case 0x13: for (int i = 0; i < 4; i++) r->u32[i] = (uint32_t)s; break;
    default: r->u64[0] = r->u64[1] = s; break;
    }
}

/* extract_lane k of a as a slot value (i32 and f32 zero-extended). */
static uint64_t extract(uint32_t sub, const v128 *a, uint32_t k)
{
    switch (sub) {
    case 0x15: return (uint32_t)(int32_t)a->i8[k];
    case 0x16: return a->u8[k];
    case 0x18: return (uint32_t)(int32_t)a->i16[k];
    case 0x19: return a->u16[k];
    case 0x1b: case 0x1f: return a->u32[k];
    default: return a->u64[k];
    }
}

/* replace_lane k of r with the scalar slot s. */
static void replace(uint32_t sub, v128 *r, uint32_t k, uint64_t s)
{
    switch (sub) {
    case 0x17: r->u8[k] = (uint8_t)s; break;
    case 0x1a: r->u16[k] = (uint16_t)s; break;
    case 0x1c: case 0x20: r->u32[k] = (uint32_t)s; break;
    default: r->u64[k] = s; break;
    }
}

/* The loads: v128.load, the extending loads, splats and _zero loads, from
 * p (already bounds-checked for access_size(sub) bytes). */
static void load(uint32_t sub, const uint8_t *p, v128 *r)
{
    v128 a;
    memset(r, 0, sizeof(*r));
    memset(&a, 0, sizeof(a));
    switch (sub) {
    case 0x00: memcpy(r, p, 16); return;
    case 0x07: splat(0x0f, p[0], r); return;
    case 0x08: memcpy(&a, p, 2); splat(0x10, a.u16[0], r); return;
    case 0x09: memcpy(&a, p, 4); splat(0x11, a.u32[0], r); return;
    case 0x0a: memcpy(&a, p, 8); splat(0x12, a.u64[0], r); return;
    case 0x5c: memcpy(r, p, 4); return;
    case 0x5d: memcpy(r, p, 8); return;
    }
    memcpy(&a, p, 8);
    static const uint8_t extend[6] = {0x87, 0x89, 0xa7, 0xa9, 0xc7, 0xc9}; /* extend_low */
    lanes_op(extend[sub - 0x01], &a, &a, r);
}

/* Bytes a memory instruction reads or writes. */
static uint32_t access_size(uint32_t sub)
{
    if (sub == 0x00 || sub == 0x0b) return 16;
    if (sub >= 0x54 && sub <= 0x5b) return 1u << ((sub - 0x54) & 3);
    return 1u << wasm_simd_align(sub);
}

/* Memory instructions: word 1 x (address) | y (v128 operand), word 2
 * offset | lane << 32. 0, or WASM_TRAP_MEMORY. */
static int memory(uint32_t sub, int kind, const uint64_t *pc, uint64_t *fp, uint8_t *mbase,
                  uint64_t msize)
{
    uint32_t x = (uint32_t)pc[1], y = (uint32_t)(pc[1] >> 32), lane = (uint32_t)(pc[2] >> 32);
    uint32_t n = access_size(sub);
    uint64_t ea = (uint64_t)(uint32_t)fp[x] + (uint32_t)pc[2];
    if (ea + n > msize) return WASM_TRAP_MEMORY;
    uint8_t *p = mbase + ea;
    v128 v;
    switch (kind) {
    case SK_LOAD:
        load(sub, p, &v);
        break;
    case SK_STORE:
        memcpy(p, fp + y, 16);
        return 0;
    case SK_LOAD_LANE:
        memcpy(&v, fp + y, 16);
        memcpy(v.u8 + lane * n, p, n);
        break;
    default: /* SK_STORE_LANE */
        memcpy(&v, fp + y, 16);
        memcpy(p, v.u8 + lane * n, n);
        return 0;
    }
    memcpy(fp + (uint32_t)(pc[0] >> 32), &v, 16);
    return 0;
}

/* r = a op b over whole vectors of one lane type: fixed loops the C
 * compiler turns into vector instructions. The operands are copied first
 * (the result may overwrite them). */
#define WHOLE(T, N, expr)                                                                      \
    do {                                                                                       \
        memcpy(&a, fp + x, 16);                                                                \
        memcpy(&b, fp + y, 16);                                                                \
        for (int i = 0; i < (N); i++) r.T[i] = (expr);                                         \
        memcpy(fp + d, &r, 16);                                                                \
        return 3;                                                                              \
    } while (0)

/* The operations compiled vector code runs most (whole loads and stores,
 * bitwise operations, integer add, sub and mul), done directly: the
 * general paths below find an operation by its family first. 0 when sub
 * is not one of them; else as wasm_simd_exec. */
static int frequent(uint32_t sub, const uint64_t *pc, uint64_t *fp, uint8_t *mbase,
                    uint64_t msize)
{
    uint32_t d = (uint32_t)(pc[0] >> 32), x = (uint32_t)pc[1], y = (uint32_t)(pc[1] >> 32);
    v128 a, b, r;
    switch (sub) {
    case 0x00: case 0x0b: { /* v128.load, v128.store */
        uint64_t ea = (uint64_t)(uint32_t)fp[x] + (uint32_t)pc[2];
        if (ea + 16 > msize) return WASM_TRAP_MEMORY;
        if (sub == 0x00) memcpy(fp + d, mbase + ea, 16);
        else memcpy(mbase + ea, fp + y, 16);
        return 3;
    }
    case 0x4e: WHOLE(u64, 2, a.u64[i] & b.u64[i]);
    case 0x4f: WHOLE(u64, 2, a.u64[i] & ~b.u64[i]);
    case 0x50: WHOLE(u64, 2, a.u64[i] | b.u64[i]);
    case 0x51: WHOLE(u64, 2, a.u64[i] ^ b.u64[i]);
    case 0x6e: WHOLE(u8, 16, (uint8_t)(a.u8[i] + b.u8[i]));
    case 0x71: WHOLE(u8, 16, (uint8_t)(a.u8[i] - b.u8[i]));
    case 0x8e: WHOLE(u16, 8, (uint16_t)(a.u16[i] + b.u16[i]));
    case 0x91: WHOLE(u16, 8, (uint16_t)(a.u16[i] - b.u16[i]));
    case 0x95: WHOLE(u16, 8, (uint16_t)((uint32_t)a.u16[i] * b.u16[i]));
    case 0xae: WHOLE(u32, 4, a.u32[i] + b.u32[i]);
    case 0xb1: WHOLE(u32, 4, a.u32[i] - b.u32[i]);
    case 0xb5: WHOLE(u32, 4, a.u32[i] * b.u32[i]);
    case 0xce: WHOLE(u64, 2, a.u64[i] + b.u64[i]);
    case 0xd1: WHOLE(u64, 2, a.u64[i] - b.u64[i]);
    case 0xd5: WHOLE(u64, 2, a.u64[i] * b.u64[i]);
    }
    return 0;
}

int wasm_simd_exec(const uint64_t *pc, uint64_t *fp, struct wasm_instance *inst, uint8_t *mbase,
                   uint64_t msize)
{
    uint32_t sub = (uint32_t)(pc[0] >> 16) & 0xfffu, d = (uint32_t)(pc[0] >> 32);
    uint32_t x = (uint32_t)pc[1], y = (uint32_t)(pc[1] >> 32);
    int kind = (int)(pc[0] >> 28) & 0xf; /* wasm_simd_kind(sub), from the compiler */
    int n = frequent(sub, pc, fp, mbase, msize);
    if (n) return n;
    v128 a, b, r;
    switch (sub) {
    case SIMD_GLOBAL_GET:
        memcpy(fp + d, inst->globals[x]->v, 16);
        return 3;
    case SIMD_GLOBAL_SET:
        memcpy(inst->globals[(uint32_t)pc[2]]->v, fp + x, 16);
        return 3;
    case SIMD_SELECT:
        memmove(fp + d, fp + ((uint32_t)fp[(uint32_t)pc[2]] ? x : y), 16);
        return 3;
    case 0x0c: /* v128.const: words 2-3 */
        memcpy(fp + d, pc + 2, 16);
        return 4;
    }
    if (kind >= SK_LOAD && kind <= SK_STORE_LANE) {
        int rc = memory(sub, kind, pc, fp, mbase, msize);
        return rc ? rc : 3;
    }
    if (kind == SK_SPLAT) {
        memset(&r, 0, sizeof(r));
        splat(sub, fp[x], &r);
        memcpy(fp + d, &r, 16);
        return 3;
    }
    /* operands first: the result may overwrite them */
    memcpy(&a, fp + x, 16);
    if (kind == SK_EXTRACT) {
        fp[d] = extract(sub, &a, (uint32_t)pc[2]);
        return 3;
    } else if (kind == SK_REPLACE) {
        r = a;
        replace(sub, &r, (uint32_t)pc[2], fp[y]);
    } else if (kind == SK_SHUFFLE) {
        uint8_t ab[32], lanes[16];
        memcpy(ab, fp + x, 16);
        memcpy(ab + 16, fp + y, 16);
        memcpy(lanes, pc + 2, 16);
        for (int i = 0; i < 16; i++) r.u8[i] = ab[lanes[i]];
        memcpy(fp + d, &r, 16);
        return 4;
    } else if (kind == SK_TEST) {
        fp[d] = test(sub, &a);
        return 3;
    } else if (kind == SK_SHIFT) {
        shift(sub, &a, (uint32_t)fp[y], &r);
    } else if (kind == SK_TERNARY) { /* bitselect: a where c is 1, else b */
        uint64_t c[2];
        memcpy(&b, fp + y, 16);
        memcpy(c, fp + (uint32_t)pc[2], 16);
        for (int i = 0; i < 2; i++) r.u64[i] = (a.u64[i] & c[i]) | (b.u64[i] & ~c[i]);
    } else {
        if (kind == SK_BINARY) memcpy(&b, fp + y, 16);
        else b = a;
        lanes_op(sub, &a, &b, &r);
    }
    memcpy(fp + d, &r, 16);
    return 3;
}
