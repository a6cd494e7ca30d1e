/* wasm_int.h - internal types of the WebAssembly runtime, shared by the
 * decoder, validator, compiler, interpreter and module code.
 *
 * Pipeline: wasm_decode.c turns bytes into a struct wasm_module (sections,
 * function bodies as byte ranges); wasm_validate.c type-checks every body;
 * wasm_compile.c translates each body into struct wasm_code (an array of
 * 64-bit words, see "Internal code" below); wasm_exec.c runs that code;
 * wasm_module.c instantiates and holds the public API together. */
#ifndef STRAND_WASM_INT_H
#define STRAND_WASM_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wasm/wasm.h"

#define WASM_PAGE 65536u
#define WASM_MAX_PAGES 65536u
#define WASM_MAX_LOCALS 50000u /* per function, params included */
#define WASM_MAX_TABLE 10000000u /* entries per table (80 MB): a cap on table.grow */
#define WASM_NOMAX UINT32_MAX

struct wasm_functype {
    uint32_t np, nr;
    uint32_t nps, nrs; /* the same counted in 64-bit slots (a v128 takes two) */
    uint8_t *t; /* np params then nr results */
};

struct wasm_lim {
    uint32_t min, max; /* max == WASM_NOMAX: none */
};

/* A constant expression, already checked: one producing instruction. */
enum cexpr_op { CE_CONST, CE_GLOBAL, CE_REF_FUNC, CE_REF_NULL };
struct wasm_cexpr {
    uint8_t op;
    uint8_t type; /* value type produced */
    uint32_t idx; /* global or function index */
    uint64_t bits, hi; /* hi: a v128's upper half */
};

struct wasm_import {
    char *module, *name;  /* NUL-terminated copies; may contain NUL */
    uint32_t module_len, name_len;
    uint8_t kind;        /* enum wasm_extern_kind */
    uint32_t idx;        /* index in the func/table/memory/global space */
};

struct wasm_tabledef {
    uint8_t type;
    struct wasm_lim lim;
};

struct wasm_globaldef {
    uint8_t type, mut;
    struct wasm_cexpr init; /* defined globals only */
};

struct wasm_export {
    char *name;
    uint32_t name_len;
    uint8_t kind;
    uint32_t idx;
};

enum seg_mode { SEG_ACTIVE, SEG_PASSIVE, SEG_DECLARATIVE };

struct wasm_elem {
    uint8_t mode, type;
    uint32_t table;
    struct wasm_cexpr offset;
    uint32_t n;
    struct wasm_cexpr *items;
};

struct wasm_data {
    uint8_t mode;
    uint32_t mem;
    struct wasm_cexpr offset;
    uint32_t len;
    uint8_t *bytes;
};

/* Internal code of one function: register-style, over the frame's 64-bit
 * slots (params, declared locals, constants, then one home slot per
 * operand stack position; see wasm_compile.c). A v128 value takes two
 * consecutive slots, low half first, wherever it lives. Each instruction starts with
 * a word whose low 32 bits are the internal opcode and whose high 32 bits
 * hold its result slot or first immediate (a branch offset, a store's
 * memory offset, ...); the next word usually names the operand slots
 * (x | y << 32). Branch offsets are in words, relative to the branch's
 * first word. Nothing is decoded, searched or pushed at run time. */
struct wasm_code {
    uint64_t *w;
    uint32_t nw;
    uint32_t nlocals;    /* slots of the declared locals after the params (zeroed on entry) */
    uint32_t nconsts;    /* constants copied after the locals on entry */
    uint64_t *consts;
    uint32_t frame_max;  /* highest slot used by the frame, params included */
    uint32_t np;         /* slots of the params */
};

/* A function body as decoded (byte range in the input, valid during load). */
struct wasm_body {
    size_t off, end;      /* expression bytes */
    uint32_t nlocals;     /* declared locals */
    uint8_t *locals;      /* all local types: params then declared */
};

struct wasm_module {
    struct wasm_functype *types;
    uint32_t ntypes;
    struct wasm_import *imports;
    uint32_t nimports;
    uint32_t nfuncs, nfunc_imports;
    uint32_t *func_type;          /* type index per function */
    uint32_t ntables, ntable_imports;
    struct wasm_tabledef *tables;
    uint32_t nmems, nmem_imports;
    struct wasm_lim *mems;
    uint32_t nglobals, nglobal_imports;
    struct wasm_globaldef *globals;
    uint32_t nexports;
    struct wasm_export *exports;
    int64_t start;                /* -1: none */
    uint32_t nelems;
    struct wasm_elem *elems;
    uint32_t ndatas;
    int has_datacount;
    struct wasm_data *datas;
    uint8_t *declared_refs;       /* per function: may be used by ref.func */
    struct wasm_body *bodies;     /* during load only */
    struct wasm_code *codes;      /* per defined function */
};

/* --- runtime objects --- */

struct wasm_func {
    const struct wasm_functype *type;
    struct wasm_instance *inst;   /* NULL for host functions */
    const struct wasm_code *code;
    wasm_host_fn host;
    void *user;
    int host_owned;
    struct wasm_functype own;     /* host functions: their type */
};

struct wasm_memory {
    uint8_t *data;
    uint64_t size;   /* bytes */
    uint32_t pages, max;
    int host_owned;
};

struct wasm_table {
    uint64_t *e;     /* references: a struct wasm_func * or a host pointer; 0 is null */
    uint32_t size, max;
    uint8_t type;
    int host_owned;
};

struct wasm_global {
    uint64_t v[2];   /* v[0] the value; a v128 uses both, low half first */
    uint8_t type, mut;
    int host_owned;
};

struct wasm_frame {
    const uint64_t *pc;
    uint64_t *fp;
    struct wasm_instance *inst;
};

struct wasm_instance {
    const struct wasm_module *mod;
    struct wasm_func **funcs;
    struct wasm_func *own_funcs;
    struct wasm_table **tables;
    struct wasm_table *own_tables;
    struct wasm_memory **mems;
    struct wasm_memory *own_mems;
    struct wasm_global **globals;
    struct wasm_global *own_globals;
    uint64_t **elem_refs;         /* per segment, resolved references */
    uint32_t *elem_len;           /* 0 once dropped */
    uint32_t *data_len;           /* 0 once dropped */
    struct wasm_limits lim;
    uint64_t fuel;                /* budget of the running call */
    uint64_t *stack, *stack_end;
    uint64_t *sp;                 /* first free slot for a nested call */
    struct wasm_frame *frames;
    uint32_t depth;
    void *user;
    char trap_msg[128];
};

/* --- wasm_decode.c --- */

/* A byte reader with the module's error reporting. */
struct wasm_reader {
    const uint8_t *b;
    size_t pos, end;
    struct wasm_error *err;
};

int wasm_fail(struct wasm_reader *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int wasm_read_u8(struct wasm_reader *r, uint8_t *v);
int wasm_read_u32(struct wasm_reader *r, uint32_t *v);
int wasm_read_s32(struct wasm_reader *r, int32_t *v);
int wasm_read_s33(struct wasm_reader *r, int64_t *v);
int wasm_read_s64(struct wasm_reader *r, int64_t *v);

/* One decoded instruction: op is the opcode byte, or 0xfc00|sub for the
 * 0xfc prefix. Immediates by kind of instruction. */
struct wasm_instr {
    uint32_t op;
    uint32_t a, b;          /* indices, memarg align/offset, block type index */
    int64_t bt;             /* block type: -64 empty, -1..-17 value type, >=0 index */
    uint64_t bits, hi;      /* constants (hi: a v128's upper half, or shuffle lanes 8..15) */
    uint8_t lane;           /* SIMD lane index */
    uint32_t ntargets;      /* br_table: count (default excluded) */
    size_t targets_off;     /* br_table: reader offset of the label vector */
    uint8_t *sel_types;     /* unused */
};

/* Decodes the instruction at r; returns 0 or a negative status. */
int wasm_read_instr(struct wasm_reader *r, struct wasm_instr *in);
/* Params and results of a block type already validated (bt as decoded);
 * the pointers are into m or static. */
void wasm_block_sig(const struct wasm_module *m, int64_t bt, const uint8_t **pt, uint32_t *np,
                    const uint8_t **rt, uint32_t *nr);

int wasm_decode(const uint8_t *b, size_t len, struct wasm_module *m, struct wasm_error *err);
void wasm_module_clear(struct wasm_module *m);

/* --- wasm_validate.c --- */
int wasm_validate_module(const uint8_t *b, struct wasm_module *m, struct wasm_error *err);

/* --- wasm_compile.c --- */
int wasm_compile_func(const uint8_t *b, const struct wasm_module *m, uint32_t fidx,
                      struct wasm_code *out, struct wasm_error *err);

/* --- wasm_exec.c --- */
/* Runs f with args in inst->sp[0..np); results land in the same slots.
 * Returns WASM_OK or a trap status with inst->trap_msg set. */
int wasm_exec(struct wasm_instance *inst, struct wasm_func *f);
/* Grows mem by n pages within its maximum and cap (0: none); old pages or -1. */
int64_t wasm_mem_grow(struct wasm_memory *mem, uint32_t n, uint32_t cap);

/* Shared helpers. */
static inline int wasm_is_num(uint8_t t)
{
    return t == WASM_I32 || t == WASM_I64 || t == WASM_F32 || t == WASM_F64;
}
static inline int wasm_is_ref(uint8_t t)
{
    return t == WASM_FUNCREF || t == WASM_EXTERNREF;
}
static inline int wasm_is_val(uint8_t t)
{
    return wasm_is_num(t) || wasm_is_ref(t) || t == WASM_V128;
}
/* Frame slots a value of type t takes. */
static inline uint32_t wasm_slots(uint8_t t)
{
    return t == WASM_V128 ? 2 : 1;
}
static inline uint32_t wasm_slots_of(const uint8_t *t, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) k += wasm_slots(t[i]);
    return k;
}
/* A typed value into its slots / out of them (i32 and f32 zero-extended);
 * both return the slots used. */
static inline uint32_t wasm_val_to_slots(const struct wasm_val *v, uint64_t *s)
{
    if (v->type == WASM_V128) {
        memcpy(s, v->of.v128, 16);
        return 2;
    }
    s[0] = v->type == WASM_I32 || v->type == WASM_F32 ? v->of.u32 : v->of.u64;
    return 1;
}
static inline uint32_t wasm_val_from_slots(struct wasm_val *v, uint8_t t, const uint64_t *s)
{
    memset(&v->of, 0, sizeof(v->of));
    v->type = (enum wasm_type)t;
    if (t == WASM_V128) {
        memcpy(v->of.v128, s, 16);
        return 2;
    }
    v->of.u64 = t == WASM_I32 || t == WASM_F32 ? (uint32_t)s[0] : s[0];
    return 1;
}

/* --- wasm_simd.c: the 0xfd prefix (fixed-width SIMD) --- */

/* What a SIMD instruction takes and gives, for the decoder (immediates),
 * the validator and the compiler (operands). 0: no such instruction. */
enum wasm_simd_kind {
    SK_NONE,
    SK_LOAD,       /* memarg; i32 -> v128 */
    SK_STORE,      /* memarg; i32 v128 -> */
    SK_LOAD_LANE,  /* memarg, lane; i32 v128 -> v128 */
    SK_STORE_LANE, /* memarg, lane; i32 v128 -> */
    SK_CONST,      /* 16 bytes; -> v128 */
    SK_SHUFFLE,    /* 16 lane indices < 32; v128 v128 -> v128 */
    SK_EXTRACT,    /* lane; v128 -> scalar */
    SK_REPLACE,    /* lane; v128 scalar -> v128 */
    SK_SPLAT,      /* scalar -> v128 */
    SK_UNARY,      /* v128 -> v128 */
    SK_BINARY,     /* v128 v128 -> v128 */
    SK_TERNARY,    /* v128 v128 v128 -> v128 (bitselect) */
    SK_TEST,       /* v128 -> i32 */
    SK_SHIFT,      /* v128 i32 -> v128 */
};
int wasm_simd_kind(uint32_t sub);
/* The scalar type of a splat, extract_lane or replace_lane. */
uint8_t wasm_simd_scalar(uint32_t sub);
/* Lanes of the lane index immediate (extract/replace, load/store lane). */
uint32_t wasm_simd_lanes(uint32_t sub);
/* log2 of the natural alignment (bytes accessed) of a memory instruction. */
uint32_t wasm_simd_align(uint32_t sub);

/* Sub-operations of OP_SIMD past the real ones: v128 moves the interpreter
 * leaves to wasm_simd_exec so its dispatch loop stays small. */
enum {
    SIMD_GLOBAL_GET = 0x100, /* d <- global w1 lo */
    SIMD_GLOBAL_SET = 0x101, /* global w2 <- w1 lo's slots */
    SIMD_SELECT = 0x102,     /* d <- w2's i32 ? x : y */
};

/* Runs the OP_SIMD instruction at pc (word 0: OP_SIMD | sub << 16 | d <<
 * 32; word 1: x | y << 32; word 2: third operand, memarg offset | lane <<
 * 32, or lane; const and shuffle: words 2-3 the 16 immediate bytes) over
 * fp, with inst's globals and memory 0 at mbase (msize bytes). Returns the
 * instruction's length in words, or WASM_TRAP_MEMORY. Borrows everything. */
int wasm_simd_exec(const uint64_t *pc, uint64_t *fp, struct wasm_instance *inst, uint8_t *mbase,
                   uint64_t msize);
static inline int wasm_functype_eq(const struct wasm_functype *a, const struct wasm_functype *b)
{
    return a == b || (a->np == b->np && a->nr == b->nr && !memcmp(a->t, b->t, a->np + a->nr));
}

/* Internal opcodes that are not WebAssembly opcodes of the same number
 * (those are used as is: numeric 0x45..0xc4, loads/stores, locals, ...). */
enum {
    OP_JMP = 0x02,        /* a: offset */
    OP_BR_MOVE = 0x03,    /* a: offset; w1: height | arity << 32 */
    OP_BR_IF_MOVE = 0x04, /* as BR_MOVE, when the popped i32 is non-zero */
    OP_BR_UNLESS = 0x05,  /* a: offset, when the popped i32 is zero */
    OP_MOV = 0x07,        /* d: dst; w1: src */
    OP_BR_IF = 0x0d,      /* a: offset, when the popped i32 is non-zero */
    OP_BR_TABLE = 0x0e,   /* a: n; then n+1 pairs (offset, height | arity << 32) */
    OP_RETURN = 0x0f,     /* a: result count */
    OP_CALL = 0x10,       /* a: function index */
    OP_CALL_INDIRECT = 0x11, /* a: type index; w1: table index */
    OP_DROP = 0x1a,
    OP_SELECT = 0x1b,
    OP_LOCAL_GET = 0x20, OP_LOCAL_SET = 0x21, OP_LOCAL_TEE = 0x22,
    OP_GLOBAL_GET = 0x23, OP_GLOBAL_SET = 0x24,
    OP_TABLE_GET = 0x25, OP_TABLE_SET = 0x26,
    OP_I32_CONST = 0x41,  /* a: value */
    OP_CONST64 = 0x42,    /* w1: the 64-bit pattern (i64, f64, f32) */
    OP_REF_IS_NULL = 0xd1,
    OP_REF_FUNC = 0xd2,   /* a: function index */
    OP_FC = 0x100,        /* 0xfc sub-opcodes: OP_FC + sub */
    OP_BR_CMP = 0x112,    /* + 0..9: branch if i32 compare 0x46+k of w1 x | y holds */
    OP_BR_CMPI = 0x11c,   /* + 0..9: the same with w1 x | imm32 */
    OP_MOVI = 0x126,      /* packed: d, imm32 (zero-extended) in the high half */
    OP_CALL_DIRECT = 0x127, /* a: first argument slot; w1: the callee's struct wasm_code */
    /* Backward branches (to a loop header) spend one unit of fuel when
     * taken: every endless loop goes through one, and forward branches and
     * straight-line code stay free. */
    OP_JMP_B = 0x130, OP_BR_MOVE_B = 0x131, OP_BR_IF_MOVE_B = 0x132,
    OP_BR_UNLESS_B = 0x133, OP_BR_IF_B = 0x134,
    OP_BR_CMP_B = 0x140,  /* + 0..9 */
    OP_BR_CMPI_B = 0x14a, /* + 0..9 */
    OP_ACC_X = 0x200,     /* + op: the variant taking its first operand from the last result */
    OP_ACC_Y = 0x400,     /* + op: the variant taking its second operand from the last result */
    OP_IMM = 0x500,       /* + op: binary op with a 16-bit signed immediate as second operand */
    OP_IMM_ACC = 0x600,   /* + op: the same taking its first operand from the last result */
    OP_LOAD_ADD = 0x700,  /* + load - 0x28: t = x + y (packed word 0, t in d), load [t + w1 lo] into w1 hi */
    OP_LOAD_ADDI = 0x710, /* + load - 0x28: the same with t = x + imm16 */
    OP_MOV2 = 0x720,      /* packed d, x, then w1 d | x: two moves, w1's first */
    OP_STORE_ADD = 0x730,  /* + store - 0x36: t = x + y (packed word 0), store w1 lo's value at t + w1 hi */
    OP_STORE_ADDI = 0x740, /* + store - 0x36: the same with t = x + imm16 */
    OP_STORE_VADD = 0x750, /* i32.store of r = x + y (packed word 0) at w1 lo's address + w1 hi */
    OP_STORE_VADDI = 0x751, /* the same with r = x + imm16 */
    OP_ADDI_BR = 0x760,   /* + 0..9: t = x + imm16 (packed word 0), backward branch if t cmp w1 lo's slot */
    OP_ADDI_BRI = 0x76a,  /* + 0..9: the same against w1 lo as imm32; w1 hi: offset */
    OP_PAIR_IMM = 0x780,  /* + first * 4 + second: two i32 operations (wasm_compile.c, */
    OP_PAIR_NIMM = 8,     /* fuse_pair); word 0 the first, packed, with an imm16 */
    OP_PAIR_REG = 0x7a0,  /* or with two slots; word 1: the second's other operand */
    OP_PAIR_NREG = 6,     /* slot | its result slot */
    OP_SIMD = 0x7b8,      /* + sub << 16 + kind << 28: a 0xfd instruction, run by wasm_simd_exec */
    OP_MOV128 = 0x7b9,    /* packed: d, x: a v128's two slots */
    OP_STORE_VMADD = 0x7ba, /* i32.store of x * y + c: word 0 and 1 the (mul, add) pair, w2 address slot | offset */
    OP_PRE_ADDBR = 0x7bb, /* + 0..9 (+ 10: the ADDI_BRI forms): an i32.add of an imm16 (packed)
                           * right before an OP_ADDI_BR[I] + 0..9, which follows as it was */
    /* an i32.add (packed) right before a direct call or a return, entering
     * that instruction's handler directly: + 0 with an imm16, + 1 slots */
    OP_PRE_CALL = 0x7cf,
    OP_PRE_RETURN = 0x7d1,
    OP_STORE_VMADD_ACC = 0x7d3, /* the same, x taken from acc */
    OP_PAIR_IMM_ACC = 0x7e0, /* OP_PAIR_IMM and OP_PAIR_REG forms whose first operation */
    OP_PAIR_REG_ACC = 0x800, /* takes its first operand from acc */
    OP_PRE_ADDBR_ACC = 0x820, /* + 0..19: as OP_PRE_ADDBR for an i32.add of acc and slot y */
    OP_COUNT = 0x834,
};

#endif
