/* wasm_exec.c - the interpreter: runs internal code (wasm_compile.c) with
 * direct dispatch through a table of label addresses (computed goto).
 *
 * State lives in locals the compiler keeps in registers: pc, fp, acc (the
 * last result, for the operand variants at OP_ACC_X/OP_ACC_Y), the current
 * instance and its memory base and size (reloaded after anything that may
 * grow memory: calls, returns, memory.grow). The value stack and
 * the frame stack belong to the instance the host called (ctx); calls into
 * another instance's functions run on the same stacks with that instance's
 * memory, tables and globals. Wasm-to-wasm calls do not recurse in C, so the
 * call depth limit is the only bound on nesting. */
#include <stdio.h>
#include <stdlib.h>

#include "wasm/wasm_float.h"
#include "wasm/wasm_int.h"

#pragma GCC diagnostic ignored "-Woverride-init"
#ifdef __clang__
#pragma clang diagnostic ignored "-Winitializer-overrides"
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Calls host function f with its arguments in the slots at args; the
 * results replace them. Borrows everything. */
static int host_call(struct wasm_instance *caller, struct wasm_func *f, uint64_t *args)
{
    struct wasm_val av[64], rv[64];
    const struct wasm_functype *t = f->type;
    static const uint64_t zero[2];
    const uint64_t *a = args;
    for (uint32_t i = 0; i < t->np; i++) a += wasm_val_from_slots(&av[i], t->t[i], a);
    for (uint32_t i = 0; i < t->nr; i++) wasm_val_from_slots(&rv[i], t->t[t->np + i], zero);
    const char *msg = f->host(f->user, caller, av, rv);
    if (msg) {
        if (caller) snprintf(caller->trap_msg, sizeof(caller->trap_msg), "%s", msg);
        return WASM_TRAP_HOST;
    }
    /* a result's type is the signature's, whatever the host wrote in .type */
    for (uint32_t i = 0; i < t->nr; i++) {
        rv[i].type = (enum wasm_type)t->t[t->np + i];
        args += wasm_val_to_slots(&rv[i], args);
    }
    return 0;
}

static int64_t grow_table(struct wasm_table *t, uint32_t n, uint64_t init)
{
    uint64_t want = (uint64_t)t->size + n;
    if (want > t->max || want > WASM_MAX_TABLE) return -1;
    if (n) {
        uint64_t *e = realloc(t->e, (size_t)want * 8 + 8);
        if (!e) return -1;
        t->e = e;
        for (uint64_t i = t->size; i < want; i++) e[i] = init;
    }
    uint32_t old = t->size;
    t->size = (uint32_t)want;
    return old;
}

/* Grows mem by n pages within its own maximum and cap pages; returns the
 * old size in pages or -1. Shared with the public wasm_memory_grow. */
int64_t wasm_mem_grow(struct wasm_memory *mem, uint32_t n, uint32_t cap)
{
    uint64_t want = (uint64_t)mem->pages + n;
    uint64_t max = mem->max == WASM_NOMAX ? WASM_MAX_PAGES : mem->max;
    if (cap && cap < max) max = cap;
    if (want > max) return -1;
    if (n) {
        uint8_t *d = realloc(mem->data, (size_t)want * WASM_PAGE + 8);
        if (!d) return -1;
        memset(d + mem->size, 0, (size_t)n * WASM_PAGE);
        mem->data = d;
    }
    uint32_t old = mem->pages;
    mem->pages = (uint32_t)want;
    mem->size = want * WASM_PAGE;
    return old;
}

/* Fields are read from the code in memory rather than shifted out of a
 * register copy of the word: one load each, which is fewer instructions
 * than shift-and-mask and leaves the loads to run in parallel. pc has
 * already moved past word 0 when a handler runs. */
#define W16(i) (((const uint16_t *)pc)[(i) - 4])  /* 16-bit field i of word 0 */
#define W32(i) (((const uint32_t *)pc)[(i) - 2])  /* 32-bit half i of word 0 */
#define D W32(1)                       /* result slot or immediate of word 0 */
#define SD ((int32_t)W32(1))           /* branch offset */
#define X (((const uint32_t *)pc)[0])  /* first operand slot */
#define Y (((const uint32_t *)pc)[1])  /* second operand slot or immediate */
/* packed one-word form of numeric operations and moves: op | d | x | y, 16 bits each */
#define PD W16(1)
#define PX W16(2)
#define PY W16(3)
#define NEXT()                                                                               \
    do {                                                                                     \
        const void *to_ = labels[*(const uint16_t *)pc];                                     \
        pc++;                                                                                \
        goto *to_;                                                                           \
    } while (0)
#define JUMP() (pc = pc - 1 + SD) /* to the branch's target */
/* one unit of fuel, at function entry and on backward branches */
#define SPEND()                                                                              \
    do {                                                                                     \
        if (UNLIKELY(fuel == 0)) TRAP(WASM_TRAP_FUEL, "out of fuel");                        \
        fuel--;                                                                              \
    } while (0)
/* Pushes a frame for code with its arguments at nfp and starts it: fuel,
 * the depth and stack limits, then the declared locals zeroed and the
 * constants it reads from slots copied in (plain loops: most functions have
 * a handful, too few for a library call to pay off). */
#define ENTER(c_)                                                                            \
    do {                                                                                     \
        const struct wasm_code *ec_ = (c_);                                                  \
        uint32_t nl_ = ec_->nlocals, nk_ = ec_->nconsts;                                     \
        const uint64_t *k_ = ec_->consts;                                                    \
        SPEND();                                                                             \
        if (UNLIKELY(fr >= fr_end)) TRAP(WASM_TRAP_STACK, "call stack exhausted");           \
        if (UNLIKELY(ec_->frame_max > (size_t)(stack_end - nfp)))                            \
            TRAP(WASM_TRAP_STACK, "call stack exhausted");                                   \
        fr->pc = pc;                                                                         \
        fr->fp = fp;                                                                         \
        fr->inst = inst;                                                                     \
        fr++;                                                                                \
        fp = nfp;                                                                            \
        pc = ec_->w;                                                                         \
        uint64_t *lp_ = fp + ec_->np;                                                        \
        for (uint32_t i_ = 0; i_ < nl_; i_++) lp_[i_] = 0;                                   \
        lp_ += nl_;                                                                          \
        for (uint32_t i_ = 0; i_ < nk_; i_++) lp_[i_] = k_[i_];                              \
    } while (0)
/* The table entries of an OP_PRE_ADDBR family: + 0..9 before OP_ADDI_BR,
 * + 10..19 before OP_ADDI_BRI. */
#define PRE_ENTRIES(at, p)                                                                   \
    [(at) + 0] = &&p##0, [(at) + 1] = &&p##1, [(at) + 2] = &&p##2, [(at) + 3] = &&p##3,      \
    [(at) + 4] = &&p##4, [(at) + 5] = &&p##5, [(at) + 6] = &&p##6, [(at) + 7] = &&p##7,      \
    [(at) + 8] = &&p##8, [(at) + 9] = &&p##9, [(at) + 10] = &&p##i0, [(at) + 11] = &&p##i1,  \
    [(at) + 12] = &&p##i2, [(at) + 13] = &&p##i3, [(at) + 14] = &&p##i4,                     \
    [(at) + 15] = &&p##i5, [(at) + 16] = &&p##i6, [(at) + 17] = &&p##i7,                     \
    [(at) + 18] = &&p##i8, [(at) + 19] = &&p##i9
/* The table entries of the four pairs sharing a first operation. */
#define PAIR_ENTRIES(at, pfx) [at] = &&pfx##_xor, [(at) + 1] = &&pfx##_add, [(at) + 2] = &&pfx##_or, \
                              [(at) + 3] = &&pfx##_and
#define TRAP(code, msg)                                                                      \
    do {                                                                                     \
        rc = (code);                                                                         \
        tmsg = (msg);                                                                        \
        goto trap;                                                                           \
    } while (0)

#define RELOAD_INST()                                                                        \
    do {                                                                                     \
        globals = inst->globals;                                                             \
        mem = inst->mems ? inst->mems[0] : NULL;                                             \
        mbase = mem ? mem->data : NULL;                                                      \
        msize = mem ? mem->size : 0;                                                         \
    } while (0)
#define RELOAD_MEM()                                                                         \
    do {                                                                                     \
        if (mem) mbase = mem->data, msize = mem->size;                                       \
    } while (0)

#define I32(x) ((uint32_t)(x))
#define I64(x) ((uint64_t)(x))
#define F32(x) wf_f32(x)
#define F64(x) wf_f64(x)

#define UNOP(n, get, expr, put)                                                              \
    L_##n : {                                                                                \
        __typeof__(get(0)) a = get(fp[PX]);                                                  \
        fp[PD] = acc = put(expr);                                                            \
        NEXT();                                                                              \
    }                                                                                        \
    LA_##n : {                                                                               \
        __typeof__(get(0)) a = get(acc);                                                     \
        fp[PD] = acc = put(expr);                                                            \
        NEXT();                                                                              \
    }
#define BINOP(n, get, expr, put)                                                             \
    L_##n : {                                                                                \
        __typeof__(get(0)) a = get(fp[PX]), b = get(fp[PY]);                                 \
        fp[PD] = acc = put(expr);                                                            \
        NEXT();                                                                              \
    }                                                                                        \
    LA_##n : {                                                                               \
        __typeof__(get(0)) a = get(acc), b = get(fp[PY]);                                    \
        fp[PD] = acc = put(expr);                                                            \
        NEXT();                                                                              \
    }                                                                                        \
    LB_##n : {                                                                               \
        __typeof__(get(0)) a = get(fp[PX]), b = get(acc);                                    \
        fp[PD] = acc = put(expr);                                                            \
        NEXT();                                                                              \
    }
#define CMP(n, get, expr) BINOP(n, get, expr, (uint64_t))
/* the immediate forms (OP_IMM): a 16-bit signed immediate in place of y,
 * sign-extended to the operation's width */
#define IMM16 ((uint64_t)(int64_t)(int16_t)PY)
#define BINOPI(n, get, expr, put)                                                            \
    LI_##n : {                                                                               \
        __typeof__(get(0)) a = get(fp[PX]), b = get(IMM16);                                  \
        fp[PD] = acc = put(expr);                                                            \
        NEXT();                                                                              \
    }                                                                                        \
    LIA_##n : {                                                                              \
        __typeof__(get(0)) a = get(acc), b = get(IMM16);                                     \
        fp[PD] = acc = put(expr);                                                            \
        NEXT();                                                                              \
    }
/* operations with both forms */
#define BINOPX(n, get, expr, put) BINOP(n, get, expr, put) BINOPI(n, get, expr, put)
#define CMPX(n, get, expr) BINOPX(n, get, expr, (uint64_t))
#define PUT32(x) ((uint64_t)(uint32_t)(x))
#define PUT64(x) ((uint64_t)(x))
#define PUTF32(x) wf_b32(x)
#define PUTF64(x) wf_b64(x)

#define LOAD_AT(src, T, conv)                                                                \
    {                                                                                        \
        uint64_t ea = (uint64_t)(uint32_t)(src) + Y;                                         \
        if (UNLIKELY(ea + sizeof(T) > msize)) TRAP(WASM_TRAP_MEMORY, "out of bounds memory access"); \
        T v_;                                                                                \
        memcpy(&v_, mbase + ea, sizeof(T));                                                  \
        fp[D] = acc = conv(v_);                                                              \
        pc++;                                                                                \
        NEXT();                                                                              \
    }
/* fused with the i32.add computing the address (OP_LOAD_ADD): the sum t
 * to slot d of word 0, the value to the slot in word 1's high half */
#define LOAD_SUM(sum, T, conv)                                                               \
    {                                                                                        \
        uint32_t t_ = (uint32_t)(sum);                                                       \
        fp[PD] = t_;                                                                         \
        uint64_t ea = (uint64_t)t_ + X;                                                      \
        if (UNLIKELY(ea + sizeof(T) > msize)) TRAP(WASM_TRAP_MEMORY, "out of bounds memory access"); \
        T v_;                                                                                \
        memcpy(&v_, mbase + ea, sizeof(T));                                                  \
        fp[Y] = acc = conv(v_);                                                              \
        pc++;                                                                                \
        NEXT();                                                                              \
    }
#define LOAD(n, T, conv)                                                                     \
    L_##n : LOAD_AT(fp[X], T, conv)                                                          \
    LA_##n : LOAD_AT(acc, T, conv)                                                           \
    LX_##n : LOAD_SUM(fp[PX] + fp[PY], T, conv)                                              \
    LXI_##n : LOAD_SUM(fp[PX] + IMM16, T, conv)
#define STORE_AT(addr, val, T)                                                               \
    {                                                                                        \
        uint64_t ea = (uint64_t)(uint32_t)(addr) + D;                                        \
        if (UNLIKELY(ea + sizeof(T) > msize)) TRAP(WASM_TRAP_MEMORY, "out of bounds memory access"); \
        T v_ = (T)(val);                                                                     \
        memcpy(mbase + ea, &v_, sizeof(T));                                                  \
        pc++;                                                                                \
        NEXT();                                                                              \
    }
/* fused with the i32.add computing the address (OP_STORE_ADD): the sum t
 * to slot d of word 0 first (the value may be read from it) */
#define STORE_SUM(sum, T)                                                                    \
    {                                                                                        \
        uint32_t t_ = (uint32_t)(sum);                                                       \
        fp[PD] = t_;                                                                         \
        uint64_t ea = (uint64_t)t_ + Y;                                                      \
        if (UNLIKELY(ea + sizeof(T) > msize)) TRAP(WASM_TRAP_MEMORY, "out of bounds memory access"); \
        T v_ = (T)fp[X];                                                                     \
        memcpy(mbase + ea, &v_, sizeof(T));                                                  \
        pc++;                                                                                \
        NEXT();                                                                              \
    }
#define STORE(n, T)                                                                          \
    L_##n : STORE_AT(fp[X], fp[Y], T)                                                        \
    LA_##n : STORE_AT(acc, fp[Y], T)                                                         \
    LB_##n : STORE_AT(fp[X], acc, T)                                                         \
    LX_##n : STORE_SUM(fp[PX] + fp[PY], T)                                                   \
    LXI_##n : STORE_SUM(fp[PX] + IMM16, T)
/* i32.store of the value an i32.add computes (OP_STORE_VADD) */
#define STORE_VSUM(sum)                                                                      \
    {                                                                                        \
        uint32_t r_ = (uint32_t)(sum);                                                       \
        fp[PD] = acc = r_;                                                                   \
        uint64_t ea = (uint64_t)(uint32_t)fp[X] + Y;                                         \
        if (UNLIKELY(ea + 4 > msize)) TRAP(WASM_TRAP_MEMORY, "out of bounds memory access"); \
        memcpy(mbase + ea, &r_, 4);                                                          \
        pc++;                                                                                \
        NEXT();                                                                              \
    }
#define SX8_32(v) ((uint64_t)(uint32_t)(int32_t)(int8_t)(v))
#define SX16_32(v) ((uint64_t)(uint32_t)(int32_t)(int16_t)(v))
#define SX8_64(v) ((uint64_t)(int64_t)(int8_t)(v))
#define SX16_64(v) ((uint64_t)(int64_t)(int16_t)(v))
#define SX32_64(v) ((uint64_t)(int64_t)(int32_t)(v))
#define ZX(v) ((uint64_t)(v))

#define TRUNC_OF(src, fn, get, T, put)                                                       \
    {                                                                                        \
        T r_;                                                                                \
        int e_ = fn((double)get(src), &r_);                                                  \
        if (UNLIKELY(e_)) {                                                                  \
            if (e_ == 1) TRAP(WASM_TRAP_CONVERSION, "invalid conversion to integer");        \
            TRAP(WASM_TRAP_OVERFLOW, "integer overflow");                                    \
        }                                                                                    \
        fp[PD] = acc = put(r_);                                                              \
        NEXT();                                                                              \
    }
#define TRUNC(n, fn, get, T, put)                                                            \
    L_##n : TRUNC_OF(fp[PX], fn, get, T, put)                                                \
    LA_##n : TRUNC_OF(acc, fn, get, T, put)

static inline uint32_t rotl32(uint32_t a, uint32_t b)
{
    b &= 31;
    return (a << b) | (a >> ((32 - b) & 31));
}
static inline uint32_t rotr32(uint32_t a, uint32_t b)
{
    b &= 31;
    return (a >> b) | (a << ((32 - b) & 31));
}
static inline uint64_t rotl64(uint64_t a, uint64_t b)
{
    b &= 63;
    return (a << b) | (a >> ((64 - b) & 63));
}
static inline uint64_t rotr64(uint64_t a, uint64_t b)
{
    b &= 63;
    return (a >> b) | (a << ((64 - b) & 63));
}

/* Branch values: n slots from src to dst (ranges may overlap). */
static inline void move_slots(uint64_t *dst, const uint64_t *src, uint32_t n)
{
    if (n == 1) dst[0] = src[0];
    else if (n && dst != src) memmove(dst, src, (size_t)n * 8);
}

#if defined(__GNUC__) && !defined(__clang__)
/* keep the frame set-up loops as loops (GCC would turn them into calls) */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
#if defined(__clang__)
/* Clang 14 takes tens of minutes on this function with UBSan's checks
 * (BranchProbabilityInfo walks the exits of the one big dispatch loop for
 * each of its blocks: quadratic in the handlers). The fuzz build keeps
 * ASan here and UBSan everywhere else; GCC's sanitizer build keeps both. */
__attribute__((no_sanitize("undefined")))
#endif
int wasm_exec(struct wasm_instance *ctx, struct wasm_func *f)
{
    static const void *const labels[OP_COUNT] = {
        [0 ... OP_COUNT - 1] = &&L_bad,
#define L(n) [n] = &&L_##n
        L(0x00), L(0x02), L(0x03), L(0x04), L(0x05), L(0x07), L(0x0d), L(0x0e),
        L(0x0f), L(0x10), L(0x11), L(0x1b), L(0x23), L(0x24),
        L(0x25), L(0x26), L(0x28), L(0x29), L(0x2a), L(0x2b), L(0x2c), L(0x2d), L(0x2e),
        L(0x2f), L(0x30), L(0x31), L(0x32), L(0x33), L(0x34), L(0x35), L(0x36), L(0x37),
        L(0x38), L(0x39), L(0x3a), L(0x3b), L(0x3c), L(0x3d), L(0x3e), L(0x3f), L(0x40),
        L(0x41), L(0x42), L(0x45), L(0x46), L(0x47), L(0x48), L(0x49), L(0x4a), L(0x4b),
        L(0x4c), L(0x4d), L(0x4e), L(0x4f), L(0x50), L(0x51), L(0x52), L(0x53), L(0x54),
        L(0x55), L(0x56), L(0x57), L(0x58), L(0x59), L(0x5a), L(0x5b), L(0x5c), L(0x5d),
        L(0x5e), L(0x5f), L(0x60), L(0x61), L(0x62), L(0x63), L(0x64), L(0x65), L(0x66),
        L(0x67), L(0x68), L(0x69), L(0x6a), L(0x6b), L(0x6c), L(0x6d), L(0x6e), L(0x6f),
        L(0x70), L(0x71), L(0x72), L(0x73), L(0x74), L(0x75), L(0x76), L(0x77), L(0x78),
        L(0x79), L(0x7a), L(0x7b), L(0x7c), L(0x7d), L(0x7e), L(0x7f), L(0x80), L(0x81),
        L(0x82), L(0x83), L(0x84), L(0x85), L(0x86), L(0x87), L(0x88), L(0x89), L(0x8a),
        L(0x8b), L(0x8c), L(0x8d), L(0x8e), L(0x8f), L(0x90), L(0x91), L(0x92), L(0x93),
        L(0x94), L(0x95), L(0x96), L(0x97), L(0x98), L(0x99), L(0x9a), L(0x9b), L(0x9c),
        L(0x9d), L(0x9e), L(0x9f), L(0xa0), L(0xa1), L(0xa2), L(0xa3), L(0xa4), L(0xa5),
        L(0xa6), L(0xa7), L(0xa8), L(0xa9), L(0xaa), L(0xab), L(0xac), L(0xad), L(0xae),
        L(0xaf), L(0xb0), L(0xb1), L(0xb2), L(0xb3), L(0xb4), L(0xb5), L(0xb6), L(0xb7),
        L(0xb8), L(0xb9), L(0xba), L(0xbb), L(0xbc), L(0xbd), L(0xbe), L(0xbf), L(0xc0),
        L(0xc1), L(0xc2), L(0xc3), L(0xc4), L(0xd1), L(0xd2), L(0x100), L(0x101), L(0x102),
        L(0x103), L(0x104), L(0x105), L(0x106), L(0x107), L(0x108), L(0x109), L(0x10a),
        L(0x10b), L(0x10c), L(0x10d), L(0x10e), L(0x10f), L(0x110), L(0x111),
        L(0x112), L(0x113), L(0x114), L(0x115), L(0x116), L(0x117), L(0x118), L(0x119),
        L(0x11a), L(0x11b),
#undef L
        /* variants reading an operand from acc */
        [OP_ACC_X + 0x28] = &&LA_0x28, [OP_ACC_X + 0x29] = &&LA_0x29,
        [OP_ACC_X + 0x2a] = &&LA_0x2a, [OP_ACC_X + 0x2b] = &&LA_0x2b,
        [OP_ACC_X + 0x2c] = &&LA_0x2c, [OP_ACC_X + 0x2d] = &&LA_0x2d,
        [OP_ACC_X + 0x2e] = &&LA_0x2e, [OP_ACC_X + 0x2f] = &&LA_0x2f,
        [OP_ACC_X + 0x30] = &&LA_0x30, [OP_ACC_X + 0x31] = &&LA_0x31,
        [OP_ACC_X + 0x32] = &&LA_0x32, [OP_ACC_X + 0x33] = &&LA_0x33,
        [OP_ACC_X + 0x34] = &&LA_0x34, [OP_ACC_X + 0x35] = &&LA_0x35,
        [OP_ACC_X + 0x45] = &&LA_0x45, [OP_ACC_X + 0x50] = &&LA_0x50,
        [OP_ACC_X + 0x67] = &&LA_0x67, [OP_ACC_X + 0x68] = &&LA_0x68,
        [OP_ACC_X + 0x69] = &&LA_0x69, [OP_ACC_X + 0x79] = &&LA_0x79,
        [OP_ACC_X + 0x7a] = &&LA_0x7a, [OP_ACC_X + 0x7b] = &&LA_0x7b,
        [OP_ACC_X + 0x8b] = &&LA_0x8b, [OP_ACC_X + 0x8c] = &&LA_0x8c,
        [OP_ACC_X + 0x8d] = &&LA_0x8d, [OP_ACC_X + 0x8e] = &&LA_0x8e,
        [OP_ACC_X + 0x8f] = &&LA_0x8f, [OP_ACC_X + 0x90] = &&LA_0x90,
        [OP_ACC_X + 0x91] = &&LA_0x91, [OP_ACC_X + 0x99] = &&LA_0x99,
        [OP_ACC_X + 0x9a] = &&LA_0x9a, [OP_ACC_X + 0x9b] = &&LA_0x9b,
        [OP_ACC_X + 0x9c] = &&LA_0x9c, [OP_ACC_X + 0x9d] = &&LA_0x9d,
        [OP_ACC_X + 0x9e] = &&LA_0x9e, [OP_ACC_X + 0x9f] = &&LA_0x9f,
        [OP_ACC_X + 0xa7] = &&LA_0xa7, [OP_ACC_X + 0xa8] = &&LA_0xa8,
        [OP_ACC_X + 0xa9] = &&LA_0xa9, [OP_ACC_X + 0xaa] = &&LA_0xaa,
        [OP_ACC_X + 0xab] = &&LA_0xab, [OP_ACC_X + 0xac] = &&LA_0xac,
        [OP_ACC_X + 0xad] = &&LA_0xad, [OP_ACC_X + 0xae] = &&LA_0xae,
        [OP_ACC_X + 0xaf] = &&LA_0xaf, [OP_ACC_X + 0xb0] = &&LA_0xb0,
        [OP_ACC_X + 0xb1] = &&LA_0xb1, [OP_ACC_X + 0xb2] = &&LA_0xb2,
        [OP_ACC_X + 0xb3] = &&LA_0xb3, [OP_ACC_X + 0xb4] = &&LA_0xb4,
        [OP_ACC_X + 0xb5] = &&LA_0xb5, [OP_ACC_X + 0xb6] = &&LA_0xb6,
        [OP_ACC_X + 0xb7] = &&LA_0xb7, [OP_ACC_X + 0xb8] = &&LA_0xb8,
        [OP_ACC_X + 0xb9] = &&LA_0xb9, [OP_ACC_X + 0xba] = &&LA_0xba,
        [OP_ACC_X + 0xbb] = &&LA_0xbb, [OP_ACC_X + 0xbc] = &&LA_0xbc,
        [OP_ACC_X + 0xbd] = &&LA_0xbd, [OP_ACC_X + 0xbe] = &&LA_0xbe,
        [OP_ACC_X + 0xbf] = &&LA_0xbf, [OP_ACC_X + 0xc0] = &&LA_0xc0,
        [OP_ACC_X + 0xc1] = &&LA_0xc1, [OP_ACC_X + 0xc2] = &&LA_0xc2,
        [OP_ACC_X + 0xc3] = &&LA_0xc3, [OP_ACC_X + 0xc4] = &&LA_0xc4,
        [OP_ACC_X + 0xd1] = &&LA_0xd1, [OP_ACC_X + 0x100] = &&LA_0x100,
        [OP_ACC_X + 0x101] = &&LA_0x101, [OP_ACC_X + 0x102] = &&LA_0x102,
        [OP_ACC_X + 0x103] = &&LA_0x103, [OP_ACC_X + 0x104] = &&LA_0x104,
        [OP_ACC_X + 0x105] = &&LA_0x105, [OP_ACC_X + 0x106] = &&LA_0x106,
        [OP_ACC_X + 0x107] = &&LA_0x107, [OP_ACC_X + 0x36] = &&LA_0x36,
        [OP_ACC_Y + 0x36] = &&LB_0x36, [OP_ACC_X + 0x37] = &&LA_0x37,
        [OP_ACC_Y + 0x37] = &&LB_0x37, [OP_ACC_X + 0x38] = &&LA_0x38,
        [OP_ACC_Y + 0x38] = &&LB_0x38, [OP_ACC_X + 0x39] = &&LA_0x39,
        [OP_ACC_Y + 0x39] = &&LB_0x39, [OP_ACC_X + 0x3a] = &&LA_0x3a,
        [OP_ACC_Y + 0x3a] = &&LB_0x3a, [OP_ACC_X + 0x3b] = &&LA_0x3b,
        [OP_ACC_Y + 0x3b] = &&LB_0x3b, [OP_ACC_X + 0x3c] = &&LA_0x3c,
        [OP_ACC_Y + 0x3c] = &&LB_0x3c, [OP_ACC_X + 0x3d] = &&LA_0x3d,
        [OP_ACC_Y + 0x3d] = &&LB_0x3d, [OP_ACC_X + 0x3e] = &&LA_0x3e,
        [OP_ACC_Y + 0x3e] = &&LB_0x3e, [OP_ACC_X + 0x46] = &&LA_0x46,
        [OP_ACC_Y + 0x46] = &&LB_0x46, [OP_ACC_X + 0x47] = &&LA_0x47,
        [OP_ACC_Y + 0x47] = &&LB_0x47, [OP_ACC_X + 0x48] = &&LA_0x48,
        [OP_ACC_Y + 0x48] = &&LB_0x48, [OP_ACC_X + 0x49] = &&LA_0x49,
        [OP_ACC_Y + 0x49] = &&LB_0x49, [OP_ACC_X + 0x4a] = &&LA_0x4a,
        [OP_ACC_Y + 0x4a] = &&LB_0x4a, [OP_ACC_X + 0x4b] = &&LA_0x4b,
        [OP_ACC_Y + 0x4b] = &&LB_0x4b, [OP_ACC_X + 0x4c] = &&LA_0x4c,
        [OP_ACC_Y + 0x4c] = &&LB_0x4c, [OP_ACC_X + 0x4d] = &&LA_0x4d,
        [OP_ACC_Y + 0x4d] = &&LB_0x4d, [OP_ACC_X + 0x4e] = &&LA_0x4e,
        [OP_ACC_Y + 0x4e] = &&LB_0x4e, [OP_ACC_X + 0x4f] = &&LA_0x4f,
        [OP_ACC_Y + 0x4f] = &&LB_0x4f, [OP_ACC_X + 0x51] = &&LA_0x51,
        [OP_ACC_Y + 0x51] = &&LB_0x51, [OP_ACC_X + 0x52] = &&LA_0x52,
        [OP_ACC_Y + 0x52] = &&LB_0x52, [OP_ACC_X + 0x53] = &&LA_0x53,
        [OP_ACC_Y + 0x53] = &&LB_0x53, [OP_ACC_X + 0x54] = &&LA_0x54,
        [OP_ACC_Y + 0x54] = &&LB_0x54, [OP_ACC_X + 0x55] = &&LA_0x55,
        [OP_ACC_Y + 0x55] = &&LB_0x55, [OP_ACC_X + 0x56] = &&LA_0x56,
        [OP_ACC_Y + 0x56] = &&LB_0x56, [OP_ACC_X + 0x57] = &&LA_0x57,
        [OP_ACC_Y + 0x57] = &&LB_0x57, [OP_ACC_X + 0x58] = &&LA_0x58,
        [OP_ACC_Y + 0x58] = &&LB_0x58, [OP_ACC_X + 0x59] = &&LA_0x59,
        [OP_ACC_Y + 0x59] = &&LB_0x59, [OP_ACC_X + 0x5a] = &&LA_0x5a,
        [OP_ACC_Y + 0x5a] = &&LB_0x5a, [OP_ACC_X + 0x5b] = &&LA_0x5b,
        [OP_ACC_Y + 0x5b] = &&LB_0x5b, [OP_ACC_X + 0x5c] = &&LA_0x5c,
        [OP_ACC_Y + 0x5c] = &&LB_0x5c, [OP_ACC_X + 0x5d] = &&LA_0x5d,
        [OP_ACC_Y + 0x5d] = &&LB_0x5d, [OP_ACC_X + 0x5e] = &&LA_0x5e,
        [OP_ACC_Y + 0x5e] = &&LB_0x5e, [OP_ACC_X + 0x5f] = &&LA_0x5f,
        [OP_ACC_Y + 0x5f] = &&LB_0x5f, [OP_ACC_X + 0x60] = &&LA_0x60,
        [OP_ACC_Y + 0x60] = &&LB_0x60, [OP_ACC_X + 0x61] = &&LA_0x61,
        [OP_ACC_Y + 0x61] = &&LB_0x61, [OP_ACC_X + 0x62] = &&LA_0x62,
        [OP_ACC_Y + 0x62] = &&LB_0x62, [OP_ACC_X + 0x63] = &&LA_0x63,
        [OP_ACC_Y + 0x63] = &&LB_0x63, [OP_ACC_X + 0x64] = &&LA_0x64,
        [OP_ACC_Y + 0x64] = &&LB_0x64, [OP_ACC_X + 0x65] = &&LA_0x65,
        [OP_ACC_Y + 0x65] = &&LB_0x65, [OP_ACC_X + 0x66] = &&LA_0x66,
        [OP_ACC_Y + 0x66] = &&LB_0x66, [OP_ACC_X + 0x6a] = &&LA_0x6a,
        [OP_ACC_Y + 0x6a] = &&LB_0x6a, [OP_ACC_X + 0x6b] = &&LA_0x6b,
        [OP_ACC_Y + 0x6b] = &&LB_0x6b, [OP_ACC_X + 0x6c] = &&LA_0x6c,
        [OP_ACC_Y + 0x6c] = &&LB_0x6c, [OP_ACC_X + 0x71] = &&LA_0x71,
        [OP_ACC_Y + 0x71] = &&LB_0x71, [OP_ACC_X + 0x72] = &&LA_0x72,
        [OP_ACC_Y + 0x72] = &&LB_0x72, [OP_ACC_X + 0x73] = &&LA_0x73,
        [OP_ACC_Y + 0x73] = &&LB_0x73, [OP_ACC_X + 0x74] = &&LA_0x74,
        [OP_ACC_Y + 0x74] = &&LB_0x74, [OP_ACC_X + 0x75] = &&LA_0x75,
        [OP_ACC_Y + 0x75] = &&LB_0x75, [OP_ACC_X + 0x76] = &&LA_0x76,
        [OP_ACC_Y + 0x76] = &&LB_0x76, [OP_ACC_X + 0x77] = &&LA_0x77,
        [OP_ACC_Y + 0x77] = &&LB_0x77, [OP_ACC_X + 0x78] = &&LA_0x78,
        [OP_ACC_Y + 0x78] = &&LB_0x78, [OP_ACC_X + 0x7c] = &&LA_0x7c,
        [OP_ACC_Y + 0x7c] = &&LB_0x7c, [OP_ACC_X + 0x7d] = &&LA_0x7d,
        [OP_ACC_Y + 0x7d] = &&LB_0x7d, [OP_ACC_X + 0x7e] = &&LA_0x7e,
        [OP_ACC_Y + 0x7e] = &&LB_0x7e, [OP_ACC_X + 0x83] = &&LA_0x83,
        [OP_ACC_Y + 0x83] = &&LB_0x83, [OP_ACC_X + 0x84] = &&LA_0x84,
        [OP_ACC_Y + 0x84] = &&LB_0x84, [OP_ACC_X + 0x85] = &&LA_0x85,
        [OP_ACC_Y + 0x85] = &&LB_0x85, [OP_ACC_X + 0x86] = &&LA_0x86,
        [OP_ACC_Y + 0x86] = &&LB_0x86, [OP_ACC_X + 0x87] = &&LA_0x87,
        [OP_ACC_Y + 0x87] = &&LB_0x87, [OP_ACC_X + 0x88] = &&LA_0x88,
        [OP_ACC_Y + 0x88] = &&LB_0x88, [OP_ACC_X + 0x89] = &&LA_0x89,
        [OP_ACC_Y + 0x89] = &&LB_0x89, [OP_ACC_X + 0x8a] = &&LA_0x8a,
        [OP_ACC_Y + 0x8a] = &&LB_0x8a, [OP_ACC_X + 0x92] = &&LA_0x92,
        [OP_ACC_Y + 0x92] = &&LB_0x92, [OP_ACC_X + 0x93] = &&LA_0x93,
        [OP_ACC_Y + 0x93] = &&LB_0x93, [OP_ACC_X + 0x94] = &&LA_0x94,
        [OP_ACC_Y + 0x94] = &&LB_0x94, [OP_ACC_X + 0x95] = &&LA_0x95,
        [OP_ACC_Y + 0x95] = &&LB_0x95, [OP_ACC_X + 0x96] = &&LA_0x96,
        [OP_ACC_Y + 0x96] = &&LB_0x96, [OP_ACC_X + 0x97] = &&LA_0x97,
        [OP_ACC_Y + 0x97] = &&LB_0x97, [OP_ACC_X + 0x98] = &&LA_0x98,
        [OP_ACC_Y + 0x98] = &&LB_0x98, [OP_ACC_X + 0xa0] = &&LA_0xa0,
        [OP_ACC_Y + 0xa0] = &&LB_0xa0, [OP_ACC_X + 0xa1] = &&LA_0xa1,
        [OP_ACC_Y + 0xa1] = &&LB_0xa1, [OP_ACC_X + 0xa2] = &&LA_0xa2,
        [OP_ACC_Y + 0xa2] = &&LB_0xa2, [OP_ACC_X + 0xa3] = &&LA_0xa3,
        [OP_ACC_Y + 0xa3] = &&LB_0xa3, [OP_ACC_X + 0xa4] = &&LA_0xa4,
        [OP_ACC_Y + 0xa4] = &&LB_0xa4, [OP_ACC_X + 0xa5] = &&LA_0xa5,
        [OP_ACC_Y + 0xa5] = &&LB_0xa5, [OP_ACC_X + 0xa6] = &&LA_0xa6,
        [OP_ACC_Y + 0xa6] = &&LB_0xa6,
        /* immediate forms */
        [OP_IMM + 0x46] = &&LI_0x46, [OP_IMM_ACC + 0x46] = &&LIA_0x46,
        [OP_IMM + 0x47] = &&LI_0x47, [OP_IMM_ACC + 0x47] = &&LIA_0x47,
        [OP_IMM + 0x48] = &&LI_0x48, [OP_IMM_ACC + 0x48] = &&LIA_0x48,
        [OP_IMM + 0x49] = &&LI_0x49, [OP_IMM_ACC + 0x49] = &&LIA_0x49,
        [OP_IMM + 0x4a] = &&LI_0x4a, [OP_IMM_ACC + 0x4a] = &&LIA_0x4a,
        [OP_IMM + 0x4b] = &&LI_0x4b, [OP_IMM_ACC + 0x4b] = &&LIA_0x4b,
        [OP_IMM + 0x4c] = &&LI_0x4c, [OP_IMM_ACC + 0x4c] = &&LIA_0x4c,
        [OP_IMM + 0x4d] = &&LI_0x4d, [OP_IMM_ACC + 0x4d] = &&LIA_0x4d,
        [OP_IMM + 0x4e] = &&LI_0x4e, [OP_IMM_ACC + 0x4e] = &&LIA_0x4e,
        [OP_IMM + 0x4f] = &&LI_0x4f, [OP_IMM_ACC + 0x4f] = &&LIA_0x4f,
        [OP_IMM + 0x51] = &&LI_0x51, [OP_IMM_ACC + 0x51] = &&LIA_0x51,
        [OP_IMM + 0x52] = &&LI_0x52, [OP_IMM_ACC + 0x52] = &&LIA_0x52,
        [OP_IMM + 0x53] = &&LI_0x53, [OP_IMM_ACC + 0x53] = &&LIA_0x53,
        [OP_IMM + 0x54] = &&LI_0x54, [OP_IMM_ACC + 0x54] = &&LIA_0x54,
        [OP_IMM + 0x55] = &&LI_0x55, [OP_IMM_ACC + 0x55] = &&LIA_0x55,
        [OP_IMM + 0x56] = &&LI_0x56, [OP_IMM_ACC + 0x56] = &&LIA_0x56,
        [OP_IMM + 0x57] = &&LI_0x57, [OP_IMM_ACC + 0x57] = &&LIA_0x57,
        [OP_IMM + 0x58] = &&LI_0x58, [OP_IMM_ACC + 0x58] = &&LIA_0x58,
        [OP_IMM + 0x59] = &&LI_0x59, [OP_IMM_ACC + 0x59] = &&LIA_0x59,
        [OP_IMM + 0x5a] = &&LI_0x5a, [OP_IMM_ACC + 0x5a] = &&LIA_0x5a,
        [OP_IMM + 0x6a] = &&LI_0x6a, [OP_IMM_ACC + 0x6a] = &&LIA_0x6a,
        [OP_IMM + 0x6b] = &&LI_0x6b, [OP_IMM_ACC + 0x6b] = &&LIA_0x6b,
        [OP_IMM + 0x6c] = &&LI_0x6c, [OP_IMM_ACC + 0x6c] = &&LIA_0x6c,
        [OP_IMM + 0x71] = &&LI_0x71, [OP_IMM_ACC + 0x71] = &&LIA_0x71,
        [OP_IMM + 0x72] = &&LI_0x72, [OP_IMM_ACC + 0x72] = &&LIA_0x72,
        [OP_IMM + 0x73] = &&LI_0x73, [OP_IMM_ACC + 0x73] = &&LIA_0x73,
        [OP_IMM + 0x74] = &&LI_0x74, [OP_IMM_ACC + 0x74] = &&LIA_0x74,
        [OP_IMM + 0x75] = &&LI_0x75, [OP_IMM_ACC + 0x75] = &&LIA_0x75,
        [OP_IMM + 0x76] = &&LI_0x76, [OP_IMM_ACC + 0x76] = &&LIA_0x76,
        [OP_IMM + 0x77] = &&LI_0x77, [OP_IMM_ACC + 0x77] = &&LIA_0x77,
        [OP_IMM + 0x78] = &&LI_0x78, [OP_IMM_ACC + 0x78] = &&LIA_0x78,
        [OP_IMM + 0x7c] = &&LI_0x7c, [OP_IMM_ACC + 0x7c] = &&LIA_0x7c,
        [OP_IMM + 0x7d] = &&LI_0x7d, [OP_IMM_ACC + 0x7d] = &&LIA_0x7d,
        [OP_IMM + 0x7e] = &&LI_0x7e, [OP_IMM_ACC + 0x7e] = &&LIA_0x7e,
        [OP_IMM + 0x83] = &&LI_0x83, [OP_IMM_ACC + 0x83] = &&LIA_0x83,
        [OP_IMM + 0x84] = &&LI_0x84, [OP_IMM_ACC + 0x84] = &&LIA_0x84,
        [OP_IMM + 0x85] = &&LI_0x85, [OP_IMM_ACC + 0x85] = &&LIA_0x85,
        [OP_IMM + 0x86] = &&LI_0x86, [OP_IMM_ACC + 0x86] = &&LIA_0x86,
        [OP_IMM + 0x87] = &&LI_0x87, [OP_IMM_ACC + 0x87] = &&LIA_0x87,
        [OP_IMM + 0x88] = &&LI_0x88, [OP_IMM_ACC + 0x88] = &&LIA_0x88,
        [OP_IMM + 0x89] = &&LI_0x89, [OP_IMM_ACC + 0x89] = &&LIA_0x89,
        [OP_IMM + 0x8a] = &&LI_0x8a, [OP_IMM_ACC + 0x8a] = &&LIA_0x8a,
        /* compare with an immediate and branch, backward branches, moves, calls */
        [OP_BR_CMPI + 0] = &&L_brcmpi0, [OP_BR_CMPI + 1] = &&L_brcmpi1,
        [OP_BR_CMPI + 2] = &&L_brcmpi2, [OP_BR_CMPI + 3] = &&L_brcmpi3,
        [OP_BR_CMPI + 4] = &&L_brcmpi4, [OP_BR_CMPI + 5] = &&L_brcmpi5,
        [OP_BR_CMPI + 6] = &&L_brcmpi6, [OP_BR_CMPI + 7] = &&L_brcmpi7,
        [OP_BR_CMPI + 8] = &&L_brcmpi8, [OP_BR_CMPI + 9] = &&L_brcmpi9,
        [OP_BR_CMP_B + 0] = &&L_brcmpb0, [OP_BR_CMP_B + 1] = &&L_brcmpb1,
        [OP_BR_CMP_B + 2] = &&L_brcmpb2, [OP_BR_CMP_B + 3] = &&L_brcmpb3,
        [OP_BR_CMP_B + 4] = &&L_brcmpb4, [OP_BR_CMP_B + 5] = &&L_brcmpb5,
        [OP_BR_CMP_B + 6] = &&L_brcmpb6, [OP_BR_CMP_B + 7] = &&L_brcmpb7,
        [OP_BR_CMP_B + 8] = &&L_brcmpb8, [OP_BR_CMP_B + 9] = &&L_brcmpb9,
        [OP_BR_CMPI_B + 0] = &&L_brcmpib0, [OP_BR_CMPI_B + 1] = &&L_brcmpib1,
        [OP_BR_CMPI_B + 2] = &&L_brcmpib2, [OP_BR_CMPI_B + 3] = &&L_brcmpib3,
        [OP_BR_CMPI_B + 4] = &&L_brcmpib4, [OP_BR_CMPI_B + 5] = &&L_brcmpib5,
        [OP_BR_CMPI_B + 6] = &&L_brcmpib6, [OP_BR_CMPI_B + 7] = &&L_brcmpib7,
        [OP_BR_CMPI_B + 8] = &&L_brcmpib8, [OP_BR_CMPI_B + 9] = &&L_brcmpib9,
        [OP_JMP_B] = &&L_jmp_b, [OP_BR_MOVE_B] = &&L_br_move_b,
        [OP_BR_IF_MOVE_B] = &&L_br_if_move_b, [OP_BR_UNLESS_B] = &&L_br_unless_b,
        [OP_BR_IF_B] = &&L_br_if_b, [OP_MOVI] = &&L_movi, [OP_CALL_DIRECT] = &&L_call_direct,
        [OP_MOV2] = &&L_mov2, [OP_SIMD] = &&L_simd, [OP_MOV128] = &&L_mov128,
        /* pairs of i32 operations (OP_PAIR_IMM/REG + first * 4 + second) */
        PAIR_ENTRIES(OP_PAIR_IMM + 0, LPI_rotl), PAIR_ENTRIES(OP_PAIR_IMM + 4, LPI_rotr),
        PAIR_ENTRIES(OP_PAIR_IMM + 8, LPI_shl), PAIR_ENTRIES(OP_PAIR_IMM + 12, LPI_shr_u),
        PAIR_ENTRIES(OP_PAIR_IMM + 16, LPI_shr_s), PAIR_ENTRIES(OP_PAIR_IMM + 20, LPI_and),
        PAIR_ENTRIES(OP_PAIR_IMM + 24, LPI_xor), PAIR_ENTRIES(OP_PAIR_IMM + 28, LPI_add),
        PAIR_ENTRIES(OP_PAIR_REG + 0, LPR_and), PAIR_ENTRIES(OP_PAIR_REG + 4, LPR_xor),
        PAIR_ENTRIES(OP_PAIR_REG + 8, LPR_add), PAIR_ENTRIES(OP_PAIR_REG + 12, LPR_or),
        PAIR_ENTRIES(OP_PAIR_REG + 16, LPR_sub), PAIR_ENTRIES(OP_PAIR_REG + 20, LPR_mul),
        PAIR_ENTRIES(OP_PAIR_IMM_ACC + 0, LPI_rotl_a), PAIR_ENTRIES(OP_PAIR_IMM_ACC + 4, LPI_rotr_a),
        PAIR_ENTRIES(OP_PAIR_IMM_ACC + 8, LPI_shl_a), PAIR_ENTRIES(OP_PAIR_IMM_ACC + 12, LPI_shr_u_a),
        PAIR_ENTRIES(OP_PAIR_IMM_ACC + 16, LPI_shr_s_a), PAIR_ENTRIES(OP_PAIR_IMM_ACC + 20, LPI_and_a),
        PAIR_ENTRIES(OP_PAIR_IMM_ACC + 24, LPI_xor_a), PAIR_ENTRIES(OP_PAIR_IMM_ACC + 28, LPI_add_a),
        PAIR_ENTRIES(OP_PAIR_REG_ACC + 0, LPR_and_a), PAIR_ENTRIES(OP_PAIR_REG_ACC + 4, LPR_xor_a),
        PAIR_ENTRIES(OP_PAIR_REG_ACC + 8, LPR_add_a), PAIR_ENTRIES(OP_PAIR_REG_ACC + 12, LPR_or_a),
        PAIR_ENTRIES(OP_PAIR_REG_ACC + 16, LPR_sub_a), PAIR_ENTRIES(OP_PAIR_REG_ACC + 20, LPR_mul_a),
        /* loads and stores fused with the add computing their address or value */
        [OP_STORE_ADD + 0x00] = &&LX_0x36, [OP_STORE_ADDI + 0x00] = &&LXI_0x36,
        [OP_STORE_ADD + 0x01] = &&LX_0x37, [OP_STORE_ADDI + 0x01] = &&LXI_0x37,
        [OP_STORE_ADD + 0x02] = &&LX_0x38, [OP_STORE_ADDI + 0x02] = &&LXI_0x38,
        [OP_STORE_ADD + 0x03] = &&LX_0x39, [OP_STORE_ADDI + 0x03] = &&LXI_0x39,
        [OP_STORE_ADD + 0x04] = &&LX_0x3a, [OP_STORE_ADDI + 0x04] = &&LXI_0x3a,
        [OP_STORE_ADD + 0x05] = &&LX_0x3b, [OP_STORE_ADDI + 0x05] = &&LXI_0x3b,
        [OP_STORE_ADD + 0x06] = &&LX_0x3c, [OP_STORE_ADDI + 0x06] = &&LXI_0x3c,
        [OP_STORE_ADD + 0x07] = &&LX_0x3d, [OP_STORE_ADDI + 0x07] = &&LXI_0x3d,
        [OP_STORE_ADD + 0x08] = &&LX_0x3e, [OP_STORE_ADDI + 0x08] = &&LXI_0x3e,
        [OP_STORE_VADD] = &&L_store_vadd, [OP_STORE_VADDI] = &&L_store_vaddi,
        /* i += k; if (i cmp n) continue */
        [OP_ADDI_BR + 0] = &&L_addbr0, [OP_ADDI_BRI + 0] = &&L_addbri0,
        [OP_ADDI_BR + 1] = &&L_addbr1, [OP_ADDI_BRI + 1] = &&L_addbri1,
        [OP_ADDI_BR + 2] = &&L_addbr2, [OP_ADDI_BRI + 2] = &&L_addbri2,
        [OP_ADDI_BR + 3] = &&L_addbr3, [OP_ADDI_BRI + 3] = &&L_addbri3,
        [OP_ADDI_BR + 4] = &&L_addbr4, [OP_ADDI_BRI + 4] = &&L_addbri4,
        [OP_ADDI_BR + 5] = &&L_addbr5, [OP_ADDI_BRI + 5] = &&L_addbri5,
        [OP_ADDI_BR + 6] = &&L_addbr6, [OP_ADDI_BRI + 6] = &&L_addbri6,
        [OP_ADDI_BR + 7] = &&L_addbr7, [OP_ADDI_BRI + 7] = &&L_addbri7,
        [OP_ADDI_BR + 8] = &&L_addbr8, [OP_ADDI_BRI + 8] = &&L_addbri8,
        [OP_ADDI_BR + 9] = &&L_addbr9, [OP_ADDI_BRI + 9] = &&L_addbri9,
        PRE_ENTRIES(OP_PRE_ADDBR, L_preaddbr), PRE_ENTRIES(OP_PRE_ADDBR_ACC, L_preaddbra),
        [OP_STORE_VMADD] = &&L_store_vmadd, [OP_STORE_VMADD_ACC] = &&L_store_vmadd_acc,
        [OP_PRE_CALL] = &&L_precall_i, [OP_PRE_CALL + 1] = &&L_precall_r,
        [OP_PRE_RETURN] = &&L_preret_i, [OP_PRE_RETURN + 1] = &&L_preret_r,
        [OP_LOAD_ADD + 0x00] = &&LX_0x28, [OP_LOAD_ADDI + 0x00] = &&LXI_0x28,
        [OP_LOAD_ADD + 0x01] = &&LX_0x29, [OP_LOAD_ADDI + 0x01] = &&LXI_0x29,
        [OP_LOAD_ADD + 0x02] = &&LX_0x2a, [OP_LOAD_ADDI + 0x02] = &&LXI_0x2a,
        [OP_LOAD_ADD + 0x03] = &&LX_0x2b, [OP_LOAD_ADDI + 0x03] = &&LXI_0x2b,
        [OP_LOAD_ADD + 0x04] = &&LX_0x2c, [OP_LOAD_ADDI + 0x04] = &&LXI_0x2c,
        [OP_LOAD_ADD + 0x05] = &&LX_0x2d, [OP_LOAD_ADDI + 0x05] = &&LXI_0x2d,
        [OP_LOAD_ADD + 0x06] = &&LX_0x2e, [OP_LOAD_ADDI + 0x06] = &&LXI_0x2e,
        [OP_LOAD_ADD + 0x07] = &&LX_0x2f, [OP_LOAD_ADDI + 0x07] = &&LXI_0x2f,
        [OP_LOAD_ADD + 0x08] = &&LX_0x30, [OP_LOAD_ADDI + 0x08] = &&LXI_0x30,
        [OP_LOAD_ADD + 0x09] = &&LX_0x31, [OP_LOAD_ADDI + 0x09] = &&LXI_0x31,
        [OP_LOAD_ADD + 0x0a] = &&LX_0x32, [OP_LOAD_ADDI + 0x0a] = &&LXI_0x32,
        [OP_LOAD_ADD + 0x0b] = &&LX_0x33, [OP_LOAD_ADDI + 0x0b] = &&LXI_0x33,
        [OP_LOAD_ADD + 0x0c] = &&LX_0x34, [OP_LOAD_ADDI + 0x0c] = &&LXI_0x34,
        [OP_LOAD_ADD + 0x0d] = &&LX_0x35, [OP_LOAD_ADDI + 0x0d] = &&LXI_0x35,
    };
    int rc = 0;
    const char *tmsg = NULL;
    struct wasm_instance *inst = f->inst;
    struct wasm_global **globals;
    struct wasm_memory *mem;
    uint8_t *mbase;
    uint64_t msize;
    uint64_t fuel = ctx->fuel;
    uint32_t base_depth = ctx->depth;
    uint64_t *const stack_end = ctx->stack_end;
    /* fr: the next free frame record (frames[depth]); the depth limit is
     * reached at fr_end */
    struct wasm_frame *const frames = ctx->frames;
    struct wasm_frame *fr = frames + base_depth;
    struct wasm_frame *const fr_end = frames + ctx->lim.max_call_depth;
    uint64_t *fp = ctx->sp, *nfp = ctx->sp;
    const uint64_t *pc = NULL; /* the sentinel frame returns to the host */
    uint64_t acc = 0; /* acc: the last result, also in its slot */
    struct wasm_func *callee = f;
    const struct wasm_code *code;
    RELOAD_INST();
    goto do_call;

do_call: { /* callee, any function, with its arguments at nfp */
    if (UNLIKELY(callee->host)) {
        uint32_t np = callee->type->nps, nr = callee->type->nrs;
        SPEND();
        ctx->sp = nfp + (np > nr ? np : nr);
        ctx->fuel = fuel;
        ctx->depth = (uint32_t)(fr - frames);
        int hrc = host_call(inst, callee, nfp);
        if (hrc) TRAP(hrc, inst->trap_msg);
        fuel = ctx->fuel; /* the host may have re-entered wasm and spent some */
        RELOAD_MEM();
        if (!pc) goto done;
        NEXT();
    }
    code = callee->code;
    if (LIKELY(callee->inst == inst)) goto enter;
    ENTER(code);
    inst = callee->inst;
    RELOAD_INST();
    NEXT();
}

L_call_direct: /* a function of this module: word0 argument slot, word1 its code */
    code = (const struct wasm_code *)(uintptr_t)pc[0];
    nfp = fp + D;
    pc++;
enter:
    ENTER(code);
    NEXT();

L_0x0f: { /* return: word1 the first result slot */
    uint32_t n = D;
    /* the first result goes back in acc (a direct call's caller may read
     * it from there); n == 0 with results: the last instruction computed
     * the only one into slot 0 and acc already */
    if (n) {
        acc = fp[X];
        move_slots(fp, fp + X, n);
    }
    fr--;
    pc = fr->pc;
    fp = fr->fp;
    if (!pc) goto done;
    if (fr->inst != inst) {
        inst = fr->inst;
        RELOAD_INST();
    } else {
        RELOAD_MEM();
    }
    NEXT();
}

L_0x10: /* call: word1 the first argument slot */
    callee = inst->funcs[D];
    nfp = fp + X;
    pc++;
    goto do_call;

L_0x11: { /* call_indirect: word1 arg slot | table; word2 index slot */
    struct wasm_table *t = inst->tables[Y];
    uint32_t i = (uint32_t)fp[(uint32_t)pc[1]], type = D;
    nfp = fp + X;
    pc += 2;
    if (UNLIKELY(i >= t->size)) TRAP(WASM_TRAP_TABLE, "undefined element");
    callee = (struct wasm_func *)(uintptr_t)t->e[i];
    if (UNLIKELY(!callee)) TRAP(WASM_TRAP_NULL, "uninitialized element");
    if (UNLIKELY(!wasm_functype_eq(callee->type, &inst->mod->types[type])))
        TRAP(WASM_TRAP_SIGNATURE, "indirect call type mismatch");
    goto do_call;
}

L_0x00: TRAP(WASM_TRAP_UNREACHABLE, "unreachable");
L_0x02: JUMP(); NEXT(); /* jmp */
L_jmp_b: SPEND(); JUMP(); NEXT();
L_0x03: /* br with move: word1 src | dst, word2 arity */
    move_slots(fp + Y, fp + X, (uint32_t)pc[1]);
    JUMP();
    NEXT();
L_br_move_b:
    SPEND();
    move_slots(fp + Y, fp + X, (uint32_t)pc[1]);
    JUMP();
    NEXT();
L_0x04: /* br_if with move: word1 src | dst, word2 arity | cond */
    if ((uint32_t)fp[(uint32_t)(pc[1] >> 32)]) {
        move_slots(fp + Y, fp + X, (uint32_t)pc[1]);
        JUMP();
    } else {
        pc += 2;
    }
    NEXT();
L_br_if_move_b:
    if ((uint32_t)fp[(uint32_t)(pc[1] >> 32)]) {
        SPEND();
        move_slots(fp + Y, fp + X, (uint32_t)pc[1]);
        JUMP();
    } else {
        pc += 2;
    }
    NEXT();
L_0x05: /* br_unless: word1 cond */
    if (!(uint32_t)fp[X]) JUMP();
    else pc++;
    NEXT();
L_br_unless_b:
    if (!(uint32_t)fp[X]) {
        SPEND();
        JUMP();
    } else {
        pc++;
    }
    NEXT();
L_0x07: fp[PD] = acc = fp[PX]; NEXT(); /* mov (packed) */
L_movi: fp[PD] = acc = W32(1); NEXT(); /* packed: d, imm32 */
L_mov2: /* word 1's move, then word 0's */
    fp[X] = fp[Y];
    fp[PD] = acc = fp[PX];
    pc++;
    NEXT();
L_mov128: { /* packed: d, x; the ranges may overlap */
    uint64_t lo = fp[PX], hi = fp[PX + 1];
    fp[PD] = lo;
    fp[PD + 1] = hi;
    NEXT();
}
L_simd: { /* all of SIMD, out of line (wasm_simd.c) */
    int n = wasm_simd_exec(pc - 1, fp, inst, mbase, msize);
    if (UNLIKELY(n < 0)) TRAP(n, "out of bounds memory access");
    pc += n - 1;
    NEXT();
}
L_0x0d: /* br_if: word1 cond */
    if ((uint32_t)fp[X]) JUMP();
    else pc++;
    NEXT();
L_br_if_b:
    if ((uint32_t)fp[X]) {
        SPEND();
        JUMP();
    } else {
        pc++;
    }
    NEXT();
L_0x0e: { /* br_table: word1 index | src; then n+1 pairs (offset, dst | arity) */
    uint32_t i = (uint32_t)fp[X], src = Y;
    if (i > D) i = D;
    const uint64_t *e = pc + 1 + 2 * (size_t)i;
    int32_t off = (int32_t)(e[0] >> 32);
    if (off < 0) SPEND(); /* to a loop header */
    move_slots(fp + (uint32_t)e[1], fp + src, (uint32_t)(e[1] >> 32));
    pc = e + off;
    NEXT();
}
L_0x1b: /* select: word1 x | y, word2 cond */
    fp[D] = acc = (uint32_t)fp[(uint32_t)pc[1]] ? fp[X] : fp[Y];
    pc += 2;
    NEXT();
L_0x23: fp[D] = acc = globals[X]->v[0]; pc++; NEXT();
L_0x24: globals[D]->v[0] = fp[X]; pc++; NEXT();
L_0x25: { /* table.get: word1 index | table */
    struct wasm_table *t = inst->tables[Y];
    uint32_t i = (uint32_t)fp[X];
    if (UNLIKELY(i >= t->size)) TRAP(WASM_TRAP_TABLE, "out of bounds table access");
    fp[D] = acc = t->e[i];
    pc++;
    NEXT();
}
L_0x26: { /* table.set: word1 index | value */
    struct wasm_table *t = inst->tables[D];
    uint32_t i = (uint32_t)fp[X];
    if (UNLIKELY(i >= t->size)) TRAP(WASM_TRAP_TABLE, "out of bounds table access");
    t->e[i] = fp[Y];
    pc++;
    NEXT();
}
LOAD(0x28, uint32_t, ZX)
LOAD(0x29, uint64_t, ZX)
LOAD(0x2a, uint32_t, ZX)
LOAD(0x2b, uint64_t, ZX)
LOAD(0x2c, uint8_t, SX8_32)
LOAD(0x2d, uint8_t, ZX)
LOAD(0x2e, uint16_t, SX16_32)
LOAD(0x2f, uint16_t, ZX)
LOAD(0x30, uint8_t, SX8_64)
LOAD(0x31, uint8_t, ZX)
LOAD(0x32, uint16_t, SX16_64)
LOAD(0x33, uint16_t, ZX)
LOAD(0x34, uint32_t, SX32_64)
LOAD(0x35, uint32_t, ZX)
STORE(0x36, uint32_t)
STORE(0x37, uint64_t)
STORE(0x38, uint32_t)
STORE(0x39, uint64_t)
STORE(0x3a, uint8_t)
STORE(0x3b, uint16_t)
STORE(0x3c, uint8_t)
STORE(0x3d, uint16_t)
STORE(0x3e, uint32_t)
L_store_vadd: STORE_VSUM(fp[PX] + fp[PY])
L_store_vaddi: STORE_VSUM(fp[PX] + IMM16)
L_0x3f: fp[D] = acc = mem->pages; NEXT();
L_0x40: {
    int64_t old = wasm_mem_grow(mem, (uint32_t)fp[X], inst->lim.max_pages);
    fp[D] = acc = (uint32_t)(int32_t)old;
    RELOAD_MEM();
    pc++;
    NEXT();
}
L_0x41:
L_0x42: fp[D] = acc = pc[0]; pc++; NEXT(); /* constants */

/* i32 comparisons */
UNOP(0x45, I32, a == 0, PUT32)
CMPX(0x46, I32, a == b)
CMPX(0x47, I32, a != b)
CMPX(0x48, I32, (int32_t)a < (int32_t)b)
CMPX(0x49, I32, a < b)
CMPX(0x4a, I32, (int32_t)a > (int32_t)b)
CMPX(0x4b, I32, a > b)
CMPX(0x4c, I32, (int32_t)a <= (int32_t)b)
CMPX(0x4d, I32, a <= b)
CMPX(0x4e, I32, (int32_t)a >= (int32_t)b)
CMPX(0x4f, I32, a >= b)
/* i64 comparisons */
UNOP(0x50, I64, a == 0, PUT32)
CMPX(0x51, I64, a == b)
CMPX(0x52, I64, a != b)
CMPX(0x53, I64, (int64_t)a < (int64_t)b)
CMPX(0x54, I64, a < b)
CMPX(0x55, I64, (int64_t)a > (int64_t)b)
CMPX(0x56, I64, a > b)
CMPX(0x57, I64, (int64_t)a <= (int64_t)b)
CMPX(0x58, I64, a <= b)
CMPX(0x59, I64, (int64_t)a >= (int64_t)b)
CMPX(0x5a, I64, a >= b)
/* f32 / f64 comparisons */
CMP(0x5b, F32, a == b)
CMP(0x5c, F32, a != b)
CMP(0x5d, F32, a < b)
CMP(0x5e, F32, a > b)
CMP(0x5f, F32, a <= b)
CMP(0x60, F32, a >= b)
CMP(0x61, F64, a == b)
CMP(0x62, F64, a != b)
CMP(0x63, F64, a < b)
CMP(0x64, F64, a > b)
CMP(0x65, F64, a <= b)
CMP(0x66, F64, a >= b)
/* i32 arithmetic */
UNOP(0x67, I32, a ? (uint32_t)__builtin_clz(a) : 32u, PUT32)
UNOP(0x68, I32, a ? (uint32_t)__builtin_ctz(a) : 32u, PUT32)
UNOP(0x69, I32, (uint32_t)__builtin_popcount(a), PUT32)
BINOPX(0x6a, I32, a + b, PUT32)
BINOPX(0x6b, I32, a - b, PUT32)
BINOPX(0x6c, I32, a * b, PUT32)
L_0x6d: {
    int32_t a = (int32_t)(uint32_t)fp[PX], b = (int32_t)(uint32_t)fp[PY];
    if (UNLIKELY(b == 0)) TRAP(WASM_TRAP_DIV_ZERO, "integer divide by zero");
    if (UNLIKELY(a == INT32_MIN && b == -1)) TRAP(WASM_TRAP_OVERFLOW, "integer overflow");
    fp[PD] = acc = (uint32_t)(a / b);
    NEXT();
}
L_0x6e: {
    uint32_t a = (uint32_t)fp[PX], b = (uint32_t)fp[PY];
    if (UNLIKELY(b == 0)) TRAP(WASM_TRAP_DIV_ZERO, "integer divide by zero");
    fp[PD] = acc = a / b;
    NEXT();
}
L_0x6f: {
    int32_t a = (int32_t)(uint32_t)fp[PX], b = (int32_t)(uint32_t)fp[PY];
    if (UNLIKELY(b == 0)) TRAP(WASM_TRAP_DIV_ZERO, "integer divide by zero");
    fp[PD] = acc = b == -1 ? 0 : (uint32_t)(a % b);
    NEXT();
}
L_0x70: {
    uint32_t a = (uint32_t)fp[PX], b = (uint32_t)fp[PY];
    if (UNLIKELY(b == 0)) TRAP(WASM_TRAP_DIV_ZERO, "integer divide by zero");
    fp[PD] = acc = a % b;
    NEXT();
}
BINOPX(0x71, I32, a & b, PUT32)
BINOPX(0x72, I32, a | b, PUT32)
BINOPX(0x73, I32, a ^ b, PUT32)
BINOPX(0x74, I32, a << (b & 31), PUT32)
BINOPX(0x75, I32, (uint32_t)((int32_t)a >> (b & 31)), PUT32)
BINOPX(0x76, I32, a >> (b & 31), PUT32)
BINOPX(0x77, I32, rotl32(a, b), PUT32)
BINOPX(0x78, I32, rotr32(a, b), PUT32)
/* i64 arithmetic */
UNOP(0x79, I64, a ? (uint64_t)__builtin_clzll(a) : 64u, PUT64)
UNOP(0x7a, I64, a ? (uint64_t)__builtin_ctzll(a) : 64u, PUT64)
UNOP(0x7b, I64, (uint64_t)__builtin_popcountll(a), PUT64)
BINOPX(0x7c, I64, a + b, PUT64)
BINOPX(0x7d, I64, a - b, PUT64)
BINOPX(0x7e, I64, a * b, PUT64)
L_0x7f: {
    int64_t a = (int64_t)fp[PX], b = (int64_t)fp[PY];
    if (UNLIKELY(b == 0)) TRAP(WASM_TRAP_DIV_ZERO, "integer divide by zero");
    if (UNLIKELY(a == INT64_MIN && b == -1)) TRAP(WASM_TRAP_OVERFLOW, "integer overflow");
    fp[PD] = acc = (uint64_t)(a / b);
    NEXT();
}
L_0x80: {
    uint64_t a = fp[PX], b = fp[PY];
    if (UNLIKELY(b == 0)) TRAP(WASM_TRAP_DIV_ZERO, "integer divide by zero");
    fp[PD] = acc = a / b;
    NEXT();
}
L_0x81: {
    int64_t a = (int64_t)fp[PX], b = (int64_t)fp[PY];
    if (UNLIKELY(b == 0)) TRAP(WASM_TRAP_DIV_ZERO, "integer divide by zero");
    fp[PD] = acc = b == -1 ? 0 : (uint64_t)(a % b);
    NEXT();
}
L_0x82: {
    uint64_t a = fp[PX], b = fp[PY];
    if (UNLIKELY(b == 0)) TRAP(WASM_TRAP_DIV_ZERO, "integer divide by zero");
    fp[PD] = acc = a % b;
    NEXT();
}
BINOPX(0x83, I64, a & b, PUT64)
BINOPX(0x84, I64, a | b, PUT64)
BINOPX(0x85, I64, a ^ b, PUT64)
BINOPX(0x86, I64, a << (b & 63), PUT64)
BINOPX(0x87, I64, (uint64_t)((int64_t)a >> (b & 63)), PUT64)
BINOPX(0x88, I64, a >> (b & 63), PUT64)
BINOPX(0x89, I64, rotl64(a, b), PUT64)
BINOPX(0x8a, I64, rotr64(a, b), PUT64)
/* f32 arithmetic; sign operations on bits, rounding keeps NaNs quiet */
UNOP(0x8b, I32, a & 0x7fffffffu, PUT32)
UNOP(0x8c, I32, a ^ 0x80000000u, PUT32)
UNOP(0x8d, F32, a != a ? a + a : ceilf(a), PUTF32)
UNOP(0x8e, F32, a != a ? a + a : floorf(a), PUTF32)
UNOP(0x8f, F32, a != a ? a + a : truncf(a), PUTF32)
UNOP(0x90, F32, a != a ? a + a : nearbyintf(a), PUTF32)
UNOP(0x91, F32, sqrtf(a), PUTF32)
BINOP(0x92, F32, a + b, PUTF32)
BINOP(0x93, F32, a - b, PUTF32)
BINOP(0x94, F32, a * b, PUTF32)
BINOP(0x95, F32, a / b, PUTF32)
BINOP(0x96, F32, wf_min32(a, b), PUTF32)
BINOP(0x97, F32, wf_max32(a, b), PUTF32)
BINOP(0x98, I32, (a & 0x7fffffffu) | (b & 0x80000000u), PUT32)
/* f64 arithmetic */
UNOP(0x99, I64, a & 0x7fffffffffffffffull, PUT64)
UNOP(0x9a, I64, a ^ 0x8000000000000000ull, PUT64)
UNOP(0x9b, F64, a != a ? a + a : ceil(a), PUTF64)
UNOP(0x9c, F64, a != a ? a + a : floor(a), PUTF64)
UNOP(0x9d, F64, a != a ? a + a : trunc(a), PUTF64)
UNOP(0x9e, F64, a != a ? a + a : nearbyint(a), PUTF64)
UNOP(0x9f, F64, sqrt(a), PUTF64)
BINOP(0xa0, F64, a + b, PUTF64)
BINOP(0xa1, F64, a - b, PUTF64)
BINOP(0xa2, F64, a * b, PUTF64)
BINOP(0xa3, F64, a / b, PUTF64)
BINOP(0xa4, F64, wf_min64(a, b), PUTF64)
BINOP(0xa5, F64, wf_max64(a, b), PUTF64)
BINOP(0xa6, I64, (a & 0x7fffffffffffffffull) | (b & 0x8000000000000000ull), PUT64)
/* conversions */
UNOP(0xa7, I64, (uint32_t)a, PUT32)
TRUNC(0xa8, wf_trunc_i32s, F32, int32_t, PUT32)
TRUNC(0xa9, wf_trunc_u32, F32, uint32_t, PUT32)
TRUNC(0xaa, wf_trunc_i32s, F64, int32_t, PUT32)
TRUNC(0xab, wf_trunc_u32, F64, uint32_t, PUT32)
UNOP(0xac, I32, SX32_64(a), PUT64)
UNOP(0xad, I32, a, PUT64)
TRUNC(0xae, wf_trunc_i64s, F32, int64_t, PUT64)
TRUNC(0xaf, wf_trunc_u64, F32, uint64_t, PUT64)
TRUNC(0xb0, wf_trunc_i64s, F64, int64_t, PUT64)
TRUNC(0xb1, wf_trunc_u64, F64, uint64_t, PUT64)
UNOP(0xb2, I32, (float)(int32_t)a, PUTF32)
UNOP(0xb3, I32, (float)a, PUTF32)
UNOP(0xb4, I64, (float)(int64_t)a, PUTF32)
UNOP(0xb5, I64, (float)a, PUTF32)
UNOP(0xb6, F64, (float)a, PUTF32)
UNOP(0xb7, I32, (double)(int32_t)a, PUTF64)
UNOP(0xb8, I32, (double)a, PUTF64)
UNOP(0xb9, I64, (double)(int64_t)a, PUTF64)
UNOP(0xba, I64, (double)a, PUTF64)
UNOP(0xbb, F32, (double)a, PUTF64)
UNOP(0xbc, I32, a, PUT32)
UNOP(0xbd, I64, a, PUT64)
UNOP(0xbe, I32, a, PUT32)
UNOP(0xbf, I64, a, PUT64)
UNOP(0xc0, I32, SX8_32(a), PUT32)
UNOP(0xc1, I32, SX16_32(a), PUT32)
UNOP(0xc2, I64, SX8_64(a), PUT64)
UNOP(0xc3, I64, SX16_64(a), PUT64)
UNOP(0xc4, I64, SX32_64(a), PUT64)
/* pairs (OP_PAIR): t = a op b (word 0, b a slot or imm16) to slot d, then
 * t op2 c (c: word 1 lo's slot) to word 1 hi's slot */
#define PAIR(a_, b_, expr, expr2)                                                            \
    {                                                                                        \
        uint32_t a = (uint32_t)(a_), b = (uint32_t)(b_), t = (expr);                         \
        fp[PD] = t;                                                                          \
        uint32_t c = (uint32_t)fp[X];                                                        \
        fp[Y] = acc = (uint32_t)(expr2);                                                     \
        pc++;                                                                                \
        NEXT();                                                                              \
    }
#define PAIRS(pfx, a_, b_, expr)                                                             \
    pfx##_xor: PAIR(a_, b_, expr, t ^ c)                                                     \
    pfx##_add: PAIR(a_, b_, expr, t + c)                                                     \
    pfx##_or: PAIR(a_, b_, expr, t | c)                                                      \
    pfx##_and: PAIR(a_, b_, expr, t & c)
/* each pair twice: a from its slot, and (OP_PAIR_*_ACC) from acc, where
 * the previous instruction left it: a chain of dependent operations then
 * does not wait for each value to go through memory */
#define PAIRS2(pfx, b_, expr) PAIRS(pfx, fp[PX], b_, expr) PAIRS(pfx##_a, acc, b_, expr)
PAIRS2(LPI_rotl, IMM16, rotl32(a, b))
PAIRS2(LPI_rotr, IMM16, rotr32(a, b))
PAIRS2(LPI_shl, IMM16, a << (b & 31))
PAIRS2(LPI_shr_u, IMM16, a >> (b & 31))
PAIRS2(LPI_shr_s, IMM16, (uint32_t)((int32_t)a >> (b & 31)))
PAIRS2(LPI_and, IMM16, a & b)
PAIRS2(LPI_xor, IMM16, a ^ b)
PAIRS2(LPI_add, IMM16, a + b)
PAIRS2(LPR_and, fp[PY], a & b)
PAIRS2(LPR_xor, fp[PY], a ^ b)
PAIRS2(LPR_add, fp[PY], a + b)
PAIRS2(LPR_or, fp[PY], a | b)
PAIRS2(LPR_sub, fp[PY], a - b)
PAIRS2(LPR_mul, fp[PY], a * b)
/* references */
UNOP(0xd1, I64, a == 0, PUT32)
L_0xd2: fp[D] = acc = (uint64_t)(uintptr_t)inst->funcs[X]; pc++; NEXT();
/* 0xfc: saturating truncation */
UNOP(0x100, F32, wf_sat_i32s(a), PUT32)
UNOP(0x101, F32, wf_sat_u32(a), PUT32)
UNOP(0x102, F64, wf_sat_i32s(a), PUT32)
UNOP(0x103, F64, wf_sat_u32(a), PUT32)
UNOP(0x104, F32, wf_sat_i64s(a), PUT64)
UNOP(0x105, F32, wf_sat_u64(a), PUT64)
UNOP(0x106, F64, wf_sat_i64s(a), PUT64)
UNOP(0x107, F64, wf_sat_u64(a), PUT64)
/* bulk memory and tables: word0 imm D, word1 operand base X | imm Y;
 * operands fp[X], fp[X+1], fp[X+2] */
L_0x108: { /* memory.init data D */
    uint64_t *o = fp + X;
    uint64_t d = (uint32_t)o[0], s = (uint32_t)o[1], n = (uint32_t)o[2];
    uint32_t seg = D;
    pc++;
    if (UNLIKELY(s + n > inst->data_len[seg] || d + n > msize))
        TRAP(WASM_TRAP_MEMORY, "out of bounds memory access");
    if (n) memcpy(mbase + d, inst->mod->datas[seg].bytes + s, n);
    NEXT();
}
L_0x109: inst->data_len[D] = 0; pc++; NEXT();
L_0x10a: { /* memory.copy */
    uint64_t *o = fp + X;
    uint64_t d = (uint32_t)o[0], s = (uint32_t)o[1], n = (uint32_t)o[2];
    pc++;
    if (UNLIKELY(s + n > msize || d + n > msize)) TRAP(WASM_TRAP_MEMORY, "out of bounds memory access");
    if (n) memmove(mbase + d, mbase + s, n);
    NEXT();
}
L_0x10b: { /* memory.fill */
    uint64_t *o = fp + X;
    uint64_t d = (uint32_t)o[0], n = (uint32_t)o[2];
    uint8_t v = (uint8_t)o[1];
    pc++;
    if (UNLIKELY(d + n > msize)) TRAP(WASM_TRAP_MEMORY, "out of bounds memory access");
    if (n) memset(mbase + d, v, n);
    NEXT();
}
L_0x10c: { /* table.init elem D, table Y */
    struct wasm_table *t = inst->tables[Y];
    uint64_t *o = fp + X;
    uint64_t d = (uint32_t)o[0], s = (uint32_t)o[1], n = (uint32_t)o[2];
    uint32_t seg = D;
    pc++;
    if (UNLIKELY(s + n > inst->elem_len[seg] || d + n > t->size))
        TRAP(WASM_TRAP_TABLE, "out of bounds table access");
    if (n) memcpy(t->e + d, inst->elem_refs[seg] + s, n * 8);
    NEXT();
}
L_0x10d: inst->elem_len[D] = 0; pc++; NEXT();
L_0x10e: { /* table.copy dst D, src Y */
    struct wasm_table *td = inst->tables[D], *ts = inst->tables[Y];
    uint64_t *o = fp + X;
    uint64_t d = (uint32_t)o[0], s = (uint32_t)o[1], n = (uint32_t)o[2];
    pc++;
    if (UNLIKELY(s + n > ts->size || d + n > td->size)) TRAP(WASM_TRAP_TABLE, "out of bounds table access");
    if (n) memmove(td->e + d, ts->e + s, n * 8);
    NEXT();
}
L_0x10f: { /* table.grow D: fp[X] init, fp[X+1] n */
    uint64_t *o = fp + X;
    o[0] = (uint32_t)grow_table(inst->tables[D], (uint32_t)o[1], o[0]);
    pc++;
    NEXT();
}
L_0x110: fp[X] = inst->tables[D]->size; pc++; NEXT();
L_0x111: { /* table.fill D */
    struct wasm_table *t = inst->tables[D];
    uint64_t *o = fp + X;
    uint64_t d = (uint32_t)o[0], v = o[1], n = (uint32_t)o[2];
    pc++;
    if (UNLIKELY(d + n > t->size)) TRAP(WASM_TRAP_TABLE, "out of bounds table access");
    for (uint64_t i = 0; i < n; i++) t->e[d + i] = v;
    NEXT();
}

/* fused i32 compare and branch: word1 x | y, or x | imm32 (BR_CMPI);
 * the backward forms spend fuel when taken */
#define BRCMP(b_, expr, back)                                                                \
    {                                                                                        \
        uint32_t a = (uint32_t)fp[X], b = (b_);                                              \
        if (expr) {                                                                          \
            if (back) SPEND();                                                               \
            JUMP();                                                                          \
        } else {                                                                             \
            pc++;                                                                            \
        }                                                                                    \
        NEXT();                                                                              \
    }
#define BRCMPS(l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, b_, back)                             \
    l0: BRCMP(b_, a == b, back)                                                              \
    l1: BRCMP(b_, a != b, back)                                                              \
    l2: BRCMP(b_, (int32_t)a < (int32_t)b, back)                                             \
    l3: BRCMP(b_, a < b, back)                                                               \
    l4: BRCMP(b_, (int32_t)a > (int32_t)b, back)                                             \
    l5: BRCMP(b_, a > b, back)                                                               \
    l6: BRCMP(b_, (int32_t)a <= (int32_t)b, back)                                            \
    l7: BRCMP(b_, a <= b, back)                                                              \
    l8: BRCMP(b_, (int32_t)a >= (int32_t)b, back)                                            \
    l9: BRCMP(b_, a >= b, back)
BRCMPS(L_0x112, L_0x113, L_0x114, L_0x115, L_0x116, L_0x117, L_0x118, L_0x119, L_0x11a, L_0x11b,
       (uint32_t)fp[Y], 0)
BRCMPS(L_brcmpi0, L_brcmpi1, L_brcmpi2, L_brcmpi3, L_brcmpi4, L_brcmpi5, L_brcmpi6, L_brcmpi7,
       L_brcmpi8, L_brcmpi9, Y, 0)
BRCMPS(L_brcmpb0, L_brcmpb1, L_brcmpb2, L_brcmpb3, L_brcmpb4, L_brcmpb5, L_brcmpb6, L_brcmpb7,
       L_brcmpb8, L_brcmpb9, (uint32_t)fp[Y], 1)
/* i += imm16 (packed word 0), then the backward branch if i cmp w1 lo
 * (slot, or imm32), to w1 hi */
#define ADDBR(b_, expr)                                                                      \
    {                                                                                        \
        uint32_t a = (uint32_t)(fp[PX] + IMM16), b;                                          \
        fp[PD] = acc = a;                                                                    \
        b = (b_);                                                                            \
        if (expr) {                                                                          \
            SPEND();                                                                         \
            pc = pc - 1 + (int32_t)Y;                                                        \
        } else {                                                                             \
            pc++;                                                                            \
        }                                                                                    \
        NEXT();                                                                              \
    }
#define ADDBRS(l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, b_)                                   \
    l0: ADDBR(b_, a == b)                                                                    \
    l1: ADDBR(b_, a != b)                                                                    \
    l2: ADDBR(b_, (int32_t)a < (int32_t)b)                                                   \
    l3: ADDBR(b_, a < b)                                                                     \
    l4: ADDBR(b_, (int32_t)a > (int32_t)b)                                                   \
    l5: ADDBR(b_, a > b)                                                                     \
    l6: ADDBR(b_, (int32_t)a <= (int32_t)b)                                                  \
    l7: ADDBR(b_, a <= b)                                                                    \
    l8: ADDBR(b_, (int32_t)a >= (int32_t)b)                                                  \
    l9: ADDBR(b_, a >= b)   
ADDBRS(L_addbr0, L_addbr1, L_addbr2, L_addbr3, L_addbr4, L_addbr5, L_addbr6, L_addbr7, L_addbr8,
       L_addbr9, (uint32_t)fp[X])
ADDBRS(L_addbri0, L_addbri1, L_addbri2, L_addbri3, L_addbri4, L_addbri5, L_addbri6, L_addbri7,
       L_addbri8, L_addbri9, X)
/* OP_PRE_ADDBR[_ACC]: the add (OP_PRE_ADDBR: slot + imm16, from the slot
 * also when the form was OP_IMM_ACC; _ACC: acc + slot y), then the
 * OP_ADDI_BR[I] after it, entered directly (a jump the CPU always
 * predicts, unlike a dispatch) */
#define PREADDBR(expr, to)                                                                   \
    fp[PD] = (uint32_t)(expr);                                                               \
    pc++;                                                                                    \
    goto to;
#define PREADDBRS(p, expr)                                                                   \
    p##0: PREADDBR(expr, L_addbr0) p##1: PREADDBR(expr, L_addbr1)                            \
    p##2: PREADDBR(expr, L_addbr2) p##3: PREADDBR(expr, L_addbr3)                            \
    p##4: PREADDBR(expr, L_addbr4) p##5: PREADDBR(expr, L_addbr5)                            \
    p##6: PREADDBR(expr, L_addbr6) p##7: PREADDBR(expr, L_addbr7)                            \
    p##8: PREADDBR(expr, L_addbr8) p##9: PREADDBR(expr, L_addbr9)                            \
    p##i0: PREADDBR(expr, L_addbri0) p##i1: PREADDBR(expr, L_addbri1)                        \
    p##i2: PREADDBR(expr, L_addbri2) p##i3: PREADDBR(expr, L_addbri3)                        \
    p##i4: PREADDBR(expr, L_addbri4) p##i5: PREADDBR(expr, L_addbri5)                        \
    p##i6: PREADDBR(expr, L_addbri6) p##i7: PREADDBR(expr, L_addbri7)                        \
    p##i8: PREADDBR(expr, L_addbri8) p##i9: PREADDBR(expr, L_addbri9)
PREADDBRS(L_preaddbr, fp[PX] + IMM16)
PREADDBRS(L_preaddbra, acc + fp[PY])

/* OP_PRE_CALL, OP_PRE_RETURN: the i32.add, then the call or return after
 * it (acc set: a return of one value computed into slot 0 leaves it there) */
L_precall_i: fp[PD] = acc = (uint32_t)(fp[PX] + IMM16); pc++; goto L_call_direct;
L_precall_r: fp[PD] = acc = (uint32_t)(fp[PX] + fp[PY]); pc++; goto L_call_direct;
L_preret_i: fp[PD] = acc = (uint32_t)(fp[PX] + IMM16); pc++; goto L_0x0f;
L_preret_r: fp[PD] = acc = (uint32_t)(fp[PX] + fp[PY]); pc++; goto L_0x0f;

L_store_vmadd: /* i32.store of t + c, t = x * y: the pair's words, then w2 address | offset */
    acc = fp[PX];
L_store_vmadd_acc: {
    uint32_t t = (uint32_t)acc * (uint32_t)fp[PY];
    fp[PD] = t;
    uint32_t r = t + (uint32_t)fp[X];
    fp[Y] = acc = r;
    uint64_t ea = (uint64_t)(uint32_t)fp[(uint32_t)pc[1]] + (pc[1] >> 32);
    if (UNLIKELY(ea + 4 > msize)) TRAP(WASM_TRAP_MEMORY, "out of bounds memory access");
    memcpy(mbase + ea, &r, 4);
    pc += 2;
    NEXT();
}

BRCMPS(L_brcmpib0, L_brcmpib1, L_brcmpib2, L_brcmpib3, L_brcmpib4, L_brcmpib5, L_brcmpib6,
       L_brcmpib7, L_brcmpib8, L_brcmpib9, Y, 1)

L_bad:
    TRAP(WASM_TRAP_UNREACHABLE, "internal error: bad opcode");

done:
    ctx->depth = base_depth;
    ctx->fuel = fuel;
    return 0;
trap:
    if (tmsg != ctx->trap_msg) snprintf(ctx->trap_msg, sizeof(ctx->trap_msg), "%s", tmsg);
    ctx->depth = base_depth;
    ctx->fuel = fuel;
    return rc;
}
