/* wasm_compile.c - translates a validated function body into register-style
 * internal code (see "Internal code" in wasm_int.h).
 *
 * Validation guarantees the operand stack height at every instruction, so
 * each operand stack position d has a fixed home slot L + sh[d] in the frame
 * (L: params, locals and constants; sh[d]: the slots the entries below d
 * take, which is d unless a v128, two slots, is among them). Locals sit at
 * prefix sums of their widths the same way (lslot), so a module without
 * v128 gets exactly the layout it always had. Instructions name their
 * operand and result slots directly; nothing is pushed or popped at run
 * time. Two cheap tricks remove
 * most copies:
 *   - local.get emits nothing: the stack entry becomes an alias of the
 *     local's slot, and the consumer reads the local directly. An alias is
 *     materialized (copied home) before its local is written and at every
 *     control instruction, so values crossing blocks are always at home.
 *   - local.set/tee right after the instruction that produced the value
 *     retargets that instruction's result slot to the local.
 * Branches carry their target offset and, when values must move, the source
 * and target slots; blocks disappear; loops become a fuel check at their
 * header; code after an unconditional branch is not emitted. Forward
 * branches are chained through their offset field until their block ends. */
#include <stdlib.h>

#include "wasm/wasm_int.h"

#define WASM_MAX_CONSTS 64 /* constant slots per function */

struct cctl {
    uint8_t op;         /* 0 function, 0x02 block, 0x03 loop, 0x04 if, 0x05 else */
    uint8_t dead_entry; /* the block began in unreachable code */
    uint32_t base;      /* stack depth below the block's params */
    uint32_t np, nr;
    const uint8_t *pt, *rt; /* their types */
    uint32_t start;     /* loop: header position */
    uint32_t chain;     /* forward branches to the end: word position + 1, 0 none */
    uint32_t else_fix;  /* if: the BR_UNLESS to patch at else/end, + 1 */
};

struct cstate {
    struct wasm_reader *r;
    const struct wasm_module *m;
    uint64_t *w;
    uint32_t nw, capw;
    struct cctl *c;
    uint32_t nc, capc;
    uint32_t *vs;       /* per stack entry: its slot (home, or an aliased local) */
    uint32_t *sh;       /* per stack depth d <= h: slots taken below it (HOME) */
    uint32_t *lslot;    /* per local (params first): its first slot */
    const uint8_t *ltypes; /* per local: its type */
    uint32_t *nalias;   /* per local or constant slot: stack entries aliasing it */
    uint32_t naliased;  /* all aliased stack entries */
    uint32_t alias_lo;  /* no aliased entry below this depth */
    uint32_t h, caph, hmax; /* hmax: the most slots the stack took */
    uint32_t L;         /* params + locals + constants: first home slot */
    uint32_t L0;        /* params + locals: first constant slot */
    uint64_t consts[WASM_MAX_CONSTS];
    uint32_t nconsts;
    uint32_t cuse[WASM_MAX_CONSTS]; /* per constant: operands reading its slot */
    uint8_t *written;   /* per param or local slot: set so far (params: always) */
    int loop_seen;      /* a loop began: code may run more than once */
    int64_t last_dst;   /* word holding the result slot of the last instruction, -1 none */
    uint32_t call_acc;  /* the last instruction is a direct call: its first result's slot
                         * (the callee's return leaves that value in acc), else UINT32_MAX */
    int last_packed;    /* that instruction is in the packed one-word form */
    int64_t last_at;    /* where the last instruction starts, -1 none */
    int64_t before_at;  /* where the one before it starts, -1 none */
    int64_t before2_at; /* and the one before that (a compare taken into a branch
                         * and the add fused with it leave two to look back on) */
    uint32_t label_at;  /* position of the last label (a branch target) */
    int dead;
};

#define HOME(s, d) ((s)->L + (s)->sh[d])

#define TRY(x)                                                                               \
    do {                                                                                     \
        int rc_ = (x);                                                                       \
        if (rc_) return rc_;                                                                 \
    } while (0)

static int grow_words(struct cstate *s, uint32_t n)
{
    if (s->nw + n <= s->capw) return 0;
    uint32_t nc = s->capw ? s->capw * 2 : 64;
    while (nc < s->nw + n) nc *= 2;
    uint64_t *p = realloc(s->w, (size_t)nc * 8);
    if (!p) return wasm_fail(s->r, WASM_ERR_NOMEM, "out of memory");
    s->w = p;
    s->capw = nc;
    return 0;
}

static uint64_t word(uint32_t op, uint32_t a)
{
    return (uint64_t)op | (uint64_t)a << 32;
}

static uint64_t pair(uint32_t a, uint32_t b)
{
    return (uint64_t)a | (uint64_t)b << 32;
}


/* Emits an instruction of n words; a result slot in word 0's high half
 * (has_dst) makes it a candidate for retargeting by local.set. */
static int emit(struct cstate *s, int has_dst, uint32_t n, uint64_t w0, uint64_t w1, uint64_t w2)
{
    TRY(grow_words(s, n));
    s->last_dst = has_dst ? (int64_t)s->nw : -1;
    s->call_acc = UINT32_MAX;
    s->last_packed = 0;
    s->before2_at = s->before_at;
    s->before_at = s->last_at;
    s->last_at = s->nw;
    s->w[s->nw++] = w0;
    if (n > 1) s->w[s->nw++] = w1;
    if (n > 2) s->w[s->nw++] = w2;
    return 0;
}

/* Nothing known of the last instruction's result (a label is placed, or
 * the instruction was removed). */
static void no_last(struct cstate *s)
{
    s->last_dst = -1;
    s->call_acc = UINT32_MAX;
}

/* Removes the last instruction (to emit a fused one in its place). */
static void drop_last(struct cstate *s)
{
    s->nw = (uint32_t)s->last_at;
    s->last_at = s->before_at;
    s->before_at = s->before2_at;
    s->before2_at = -1;
    no_last(s);
}

/* Room for stack entry h (vs[h], sh[h + 1]). */
static int reserve(struct cstate *s, uint32_t h)
{
    if (h < s->caph) return 0;
    uint32_t nc = s->caph ? s->caph : 64;
    while (nc <= h) nc *= 2;
    uint32_t *p = realloc(s->vs, (size_t)nc * 4);
    if (!p) return wasm_fail(s->r, WASM_ERR_NOMEM, "out of memory");
    s->vs = p;
    p = realloc(s->sh, ((size_t)nc + 1) * 4);
    if (!p) return wasm_fail(s->r, WASM_ERR_NOMEM, "out of memory");
    s->sh = p;
    s->caph = nc;
    return 0;
}

/* Slots of stack entry d, and of the top n entries. */
static uint32_t width_at(const struct cstate *s, uint32_t d)
{
    return s->sh[d + 1] - s->sh[d];
}

static uint32_t top_slots(const struct cstate *s, uint32_t n)
{
    return s->sh[s->h] - s->sh[s->h - n];
}

/* The packed one-word form of numeric operations and moves:
 * op | d << 16 | x << 32 | y << 48. Frames are limited to 65536 slots. */
static int emit_packed(struct cstate *s, int has_dst, uint32_t op, uint32_t d, uint32_t x, uint32_t y)
{
    if ((d | x | y) > 0xffffu)
        return wasm_fail(s->r, WASM_ERR_NOMEM, "function needs more than 65536 value slots");
    TRY(emit(s, has_dst, 1, (uint64_t)op | (uint64_t)d << 16 | (uint64_t)x << 32 | (uint64_t)y << 48, 0, 0));
    s->last_packed = 1;
    return 0;
}

static uint32_t last_dst_slot(const struct cstate *s)
{
    uint64_t w = s->w[s->last_dst];
    return s->last_packed ? (uint32_t)(w >> 16) & 0xffffu : (uint32_t)(w >> 32);
}

static void retarget_last(struct cstate *s, uint32_t k)
{
    uint64_t *w = &s->w[s->last_dst];
    if (s->last_packed) *w = (*w & ~(uint64_t)0xffff0000u) | (uint64_t)k << 16;
    else *w = (*w & 0xffffffffu) | (uint64_t)k << 32;
}

/* Operand count of numeric instructions: 1 (unary) or 2 (binary). */
static int numeric_arity(uint32_t op)
{
    if (op >= 0xfc00 && op <= 0xfc07) return 1;
    if (op == 0x45 || op == 0x50 || (op >= 0x67 && op <= 0x69) || (op >= 0x79 && op <= 0x7b) ||
        (op >= 0x8b && op <= 0x91) || (op >= 0x99 && op <= 0x9f) || (op >= 0xa7 && op <= 0xc4))
        return 1;
    return 2;
}

/* The slot the previous instruction wrote, when nothing can jump between
 * it and the next one: the interpreter still holds that value in a
 * register (acc), so the next instruction can take it from there instead
 * of reloading the slot it was just stored to. */
static uint32_t prev_slot(const struct cstate *s)
{
    return s->last_dst >= 0 ? last_dst_slot(s) : s->call_acc;
}

/* Which operands of op have an acc variant: 1 the first, 3 both. */
static int acc_operands(uint32_t op)
{
    if (op >= 0x28 && op <= 0x35) return 1;
    if (op >= 0x36 && op <= 0x3e) return 3;
    if ((op >= 0x6d && op <= 0x70) || (op >= 0x7f && op <= 0x82)) return 0;
    if ((op >= 0x45 && op <= 0xc4) || (op >= OP_FC && op <= OP_FC + 7) || op == 0xd1)
        return numeric_arity(op >= OP_FC ? 0xfc00 + (op - OP_FC) : op) == 1 ? 1 : 3;
    return 0;
}

/* The opcode to emit for op with operands x and y (y unused: UINT32_MAX). */
static uint32_t with_acc(uint32_t op, uint32_t prev, uint32_t x, uint32_t y)
{
    int k = acc_operands(op);
    if (prev == UINT32_MAX || !k) return op;
    if (x == prev) return op + OP_ACC_X;
    if ((k & 2) && y == prev) return op + OP_ACC_Y;
    return op;
}

/* Pushes an entry of w slots held in slot (its home, or an alias). */
static int push_slot(struct cstate *s, uint32_t slot, uint32_t w)
{
    TRY(reserve(s, s->h));
    if (slot != HOME(s, s->h)) {
        s->nalias[slot]++, s->naliased++;
        if (s->h < s->alias_lo) s->alias_lo = s->h;
    }
    s->vs[s->h] = slot;
    s->sh[s->h + 1] = s->sh[s->h] + w;
    s->h++;
    if (s->sh[s->h] > s->hmax) s->hmax = s->sh[s->h];
    return 0;
}

/* Pushes a value of w slots computed into its home slot. */
static int push_home(struct cstate *s, uint32_t w)
{
    return push_slot(s, HOME(s, s->h), w);
}

static int is_const(const struct cstate *s, uint32_t slot)
{
    return slot >= s->L0 && slot < s->L;
}

/* Pops the top entry. Its slot counts as read: a constant's slot is kept
 * (copied in on entry) unless every read of it became an immediate, which
 * unuse() records. */
static uint32_t pop_slot(struct cstate *s)
{
    uint32_t v = s->vs[--s->h];
    if (v != HOME(s, s->h)) s->nalias[v]--, s->naliased--;
    if (is_const(s, v)) s->cuse[v - s->L0]++;
    return v;
}

static void unuse(struct cstate *s, uint32_t slot)
{
    if (is_const(s, slot)) s->cuse[slot - s->L0]--;
}

/* A constant that a 32-bit immediate carries exactly (zero-extended). */
static int const_u32(const struct cstate *s, uint32_t slot)
{
    return is_const(s, slot) && s->consts[slot - s->L0] <= UINT32_MAX;
}

/* Copies slot v to d: a MOVI when v is a constant the word can carry. */
static int emit_mov(struct cstate *s, int has_dst, uint32_t d, uint32_t v)
{
    if (!const_u32(s, v)) {
        if (is_const(s, v)) s->cuse[v - s->L0]++;
        int64_t at = s->last_at;
        if (at < 0 || at + 1 != s->nw || s->label_at == s->nw || (uint16_t)s->w[at] != OP_MOV)
            return emit_packed(s, has_dst, OP_MOV, d, v, 0);
        /* right after another move, nothing jumping between: one MOV2
         * does both, the earlier one moved to word 1 */
        uint64_t first = s->w[at];
        drop_last(s);
        TRY(emit_packed(s, has_dst, OP_MOV2, d, v, 0));
        TRY(grow_words(s, 1));
        s->w[s->nw++] = pair((uint32_t)(first >> 16) & 0xffffu, (uint32_t)(first >> 32) & 0xffffu);
        return 0;
    }
    uint64_t k = s->consts[v - s->L0];
    if (d > 0xffffu) return wasm_fail(s->r, WASM_ERR_NOMEM, "function needs more than 65536 value slots");
    TRY(emit(s, has_dst, 1, (uint64_t)OP_MOVI | (uint64_t)d << 16 | k << 32, 0, 0));
    s->last_packed = 1;
    return 0;
}

/* Copies a value of w slots from v to d (MOV128 for a v128). */
static int emit_move(struct cstate *s, uint32_t d, uint32_t v, uint32_t w)
{
    if (w == 2) return emit_packed(s, 0, OP_MOV128, d, v, 0);
    return emit_mov(s, 1, d, v);
}

/* Copies aliased entries home: all of them (local == UINT32_MAX) or those
 * of one local. The counts keep this free when there is nothing to copy,
 * so compiling stays linear in the body's size. */
static int materialize(struct cstate *s, uint32_t local)
{
    if (local == UINT32_MAX ? s->naliased == 0 : s->nalias[local] == 0) return 0;
    for (uint32_t d = s->alias_lo; d < s->h; d++) {
        uint32_t home = HOME(s, d), v = s->vs[d];
        if (v == home || (local != UINT32_MAX && v != local)) continue;
        TRY(emit_move(s, home, v, width_at(s, d)));
        s->vs[d] = home;
        s->nalias[v]--, s->naliased--;
    }
    if (s->naliased == 0) s->alias_lo = UINT32_MAX;
    return 0;
}

/* After a label: entries from depth `from` up are gone and the stack holds
 * n values of types t from there, at home (those below are untouched since
 * the block began, when they were materialized; from <= h: a block's base
 * never goes below the stack, unreachable code included). */
static int reset_height(struct cstate *s, uint32_t from, const uint8_t *t, uint32_t n)
{
    for (uint32_t d = from; d < s->h; d++)
        if (s->vs[d] != HOME(s, d)) s->nalias[s->vs[d]]--, s->naliased--;
    TRY(reserve(s, from + n));
    for (uint32_t i = 0, d = from; i < n; i++, d++) {
        s->sh[d + 1] = s->sh[d] + wasm_slots(t[i]);
        s->vs[d] = HOME(s, d);
    }
    s->h = from + n;
    if (s->sh[s->h] > s->hmax) s->hmax = s->sh[s->h];
    return 0;
}

static void set_off(struct cstate *s, uint32_t at, uint32_t target)
{
    int32_t off = (int32_t)(target - at);
    s->w[at] = (s->w[at] & 0xffffffffu) | (uint64_t)(uint32_t)off << 32;
}

static void chain(struct cstate *s, struct cctl *c, uint32_t at)
{
    s->w[at] = (s->w[at] & 0xffffffffu) | (uint64_t)c->chain << 32;
    c->chain = at + 1;
}

static void patch_chain(struct cstate *s, struct cctl *c, uint32_t target)
{
    uint32_t p = c->chain;
    while (p) {
        uint32_t at = p - 1;
        p = (uint32_t)(s->w[at] >> 32);
        set_off(s, at, target);
    }
    c->chain = 0;
}

/* The backward form of a branch opcode (see OP_JMP_B). */
static uint32_t back_op(uint32_t op)
{
    switch (op) {
    case OP_JMP: return OP_JMP_B;
    case OP_BR_MOVE: return OP_BR_MOVE_B;
    case OP_BR_IF_MOVE: return OP_BR_IF_MOVE_B;
    case OP_BR_UNLESS: return OP_BR_UNLESS_B;
    case OP_BR_IF: return OP_BR_IF_B;
    }
    if (op >= OP_BR_CMP && op < OP_BR_CMP + 10) return OP_BR_CMP_B + (op - OP_BR_CMP);
    return OP_BR_CMPI_B + (op - OP_BR_CMPI);
}

/* Points the branch at `at` to its label c: a loop's header (backward, the
 * fuel-spending form) or, chained until the block ends, its end. */
static void link_branch(struct cstate *s, struct cctl *c, uint32_t at)
{
    if (c->op == 0x03) {
        uint32_t op = back_op((uint16_t)s->w[at]);
        s->w[at] = (s->w[at] & ~(uint64_t)0xffffu) | op;
        set_off(s, at, c->start);
    } else {
        chain(s, c, at);
    }
}

/* The last instruction, when it is a packed i32.add in one word with no
 * label after it, becomes its OP_PRE_* form (pre: OP_PRE_CALL or
 * OP_PRE_RETURN) so that it enters the next instruction's handler with a
 * jump instead of a dispatch. The add keeps its fields; only the form
 * that took an operand from acc now reads its slot. */
static void pre_form(struct cstate *s, uint32_t pre)
{
    int64_t at = s->last_at;
    if (at < 0 || at + 1 != s->nw || s->label_at > at || s->label_at == s->nw) return;
    uint32_t op = (uint16_t)s->w[at];
    if (op == OP_IMM + 0x6a || op == OP_IMM_ACC + 0x6a) op = pre;
    else if (op == 0x6a || op == OP_ACC_X + 0x6a || op == OP_ACC_Y + 0x6a) op = pre + 1;
    else return;
    s->w[at] = (s->w[at] & ~(uint64_t)0xffffu) | op;
}

/* A return of nr slots of values from slot src up, where nothing jumps in between
 * the last instruction and this one. A single value that instruction
 * computed is computed into slot 0 instead, where the caller takes it
 * (nothing in this frame runs after it), so the return moves nothing. */
static int emit_return(struct cstate *s, uint32_t nr, uint32_t src)
{
    if (nr == 1 && s->last_dst >= 0 && last_dst_slot(s) == src && src == HOME(s, s->h - 1)) {
        retarget_last(s, 0);
        pre_form(s, OP_PRE_RETURN);
        return emit(s, 0, 2, word(OP_RETURN, 0), 0, 0);
    }
    return emit(s, 0, 2, word(OP_RETURN, nr), src, 0);
}

/* A branch to label l; cond: the slot of the condition (br_if) or
 * UINT32_MAX. The stack is materialized. Values move as slots. */
static int branch(struct cstate *s, uint32_t l, uint32_t cond)
{
    struct cctl *c = &s->c[s->nc - 1 - l];
    uint32_t arity = c->op == 0x03 ? c->np : c->nr, n = top_slots(s, arity);
    if (c->op == 0) { /* to the function: a return */
        if (cond == UINT32_MAX) return emit_return(s, n, HOME(s, s->h - arity));
        TRY(emit(s, 0, 2, word(OP_BR_UNLESS, 4), cond, 0));
        return emit(s, 0, 2, word(OP_RETURN, n), HOME(s, s->h - arity), 0);
    }
    uint32_t src = HOME(s, s->h - arity), dst = HOME(s, c->base);
    uint32_t at = s->nw;
    if (src != dst && arity) {
        if (cond != UINT32_MAX)
            TRY(emit(s, 0, 3, word(OP_BR_IF_MOVE, 0), pair(src, dst), pair(n, cond)));
        else
            TRY(emit(s, 0, 3, word(OP_BR_MOVE, 0), pair(src, dst), n));
    } else if (cond != UINT32_MAX) {
        TRY(emit(s, 0, 2, word(OP_BR_IF, 0), cond, 0));
    } else {
        TRY(emit(s, 0, 1, word(OP_JMP, 0), 0, 0));
    }
    link_branch(s, c, at);
    return 0;
}

static int push_ctl(struct cstate *s, uint8_t op, const uint8_t *pt, uint32_t np, const uint8_t *rt,
                    uint32_t nr)
{
    if (s->nc == s->capc) {
        uint32_t nc = s->capc ? s->capc * 2 : 16;
        struct cctl *p = realloc(s->c, nc * sizeof(*p));
        if (!p) return wasm_fail(s->r, WASM_ERR_NOMEM, "out of memory");
        s->c = p;
        s->capc = nc;
    }
    struct cctl *c = &s->c[s->nc++];
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->dead_entry = (uint8_t)s->dead;
    c->base = s->h >= np ? s->h - np : 0;
    c->np = np, c->nr = nr;
    c->pt = pt, c->rt = rt;
    c->start = s->nw;
    return 0;
}


/* The slot of a constant gathered by scan_consts, or UINT32_MAX. */
static uint32_t const_slot(const struct cstate *s, uint64_t bits)
{
    for (uint32_t i = 0; i < s->nconsts; i++)
        if (s->consts[i] == bits) return s->L0 + i;
    return UINT32_MAX;
}

/* Collects the body's most frequent kind of operand, constants, into
 * read-only frame slots (copied in on entry), so instructions read them
 * like locals instead of executing a constant instruction each time. */
static int scan_consts(struct cstate *s, const uint8_t *b, const struct wasm_body *bd)
{
    struct wasm_reader rd = {b, bd->off, bd->end, s->r->err};
    while (rd.pos < rd.end) {
        struct wasm_instr in;
        TRY(wasm_read_instr(&rd, &in));
        if (in.op < 0x41 || in.op > 0x44) continue;
        uint32_t i = 0;
        while (i < s->nconsts && s->consts[i] != in.bits) i++;
        if (i == s->nconsts && s->nconsts < WASM_MAX_CONSTS) s->consts[s->nconsts++] = in.bits;
    }
    /* ref.null reads 0; constants stay unique so that a reordering of
     * them (wasm_compile_func) maps each value to one slot */
    if (const_slot(s, 0) == UINT32_MAX && s->nconsts < WASM_MAX_CONSTS) s->consts[s->nconsts++] = 0;
    return 0;
}

/* Comparisons with their operands swapped (a < b is b > a), for the i32
 * and i64 compares 0x46..0x5a, and the commutative operations; 0 when the
 * operands cannot be swapped. */
static uint32_t swapped_op(uint32_t op)
{
    static const uint8_t cmp[10] = {0, 1, 4, 5, 2, 3, 8, 9, 6, 7};
    if (op >= 0x46 && op <= 0x4f) return 0x46 + cmp[op - 0x46];
    if (op >= 0x51 && op <= 0x5a) return 0x51 + cmp[op - 0x51];
    if (op == 0x6a || op == 0x6c || (op >= 0x71 && op <= 0x73) || op == 0x7c || op == 0x7e ||
        (op >= 0x83 && op <= 0x85))
        return op;
    return 0;
}

/* Operations with an immediate form (OP_IMM): integer compares and the
 * integer arithmetic without traps. */
static int has_imm_form(uint32_t op)
{
    return (op >= 0x46 && op <= 0x4f) || (op >= 0x51 && op <= 0x5a) || (op >= 0x6a && op <= 0x6c) ||
           (op >= 0x71 && op <= 0x78) || (op >= 0x7c && op <= 0x7e) || (op >= 0x83 && op <= 0x8a);
}

/* The constant in slot y as a 16-bit immediate of op, when it fits: the
 * interpreter sign-extends it to the operation's width. */
static int imm16_of(const struct cstate *s, uint32_t op, uint32_t y, int32_t *k)
{
    if (!is_const(s, y)) return 0;
    uint64_t v = s->consts[y - s->L0];
    int64_t sv = op <= 0x4f || (op >= 0x67 && op <= 0x78) ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
    if (sv < INT16_MIN || sv > INT16_MAX) return 0;
    *k = (int32_t)sv;
    return 1;
}

/* Pairs of i32 operations in one instruction (OP_PAIR): the second reads
 * the first's result, as in the chains of shifts, rotates and xors of
 * hashes and ciphers. The first has an immediate (PAIR_FIRST_IMM) or two
 * slots (PAIR_FIRST_REG); the second is commutative (PAIR_SECOND), so the
 * result may be either of its operands. */
static const uint8_t PAIR_FIRST_IMM[OP_PAIR_NIMM] = {0x77, 0x78, 0x74, 0x76, 0x75, 0x71, 0x73, 0x6a};
static const uint8_t PAIR_FIRST_REG[OP_PAIR_NREG] = {0x71, 0x73, 0x6a, 0x72, 0x6b, 0x6c};
static const uint8_t PAIR_SECOND[4] = {0x73, 0x6a, 0x72, 0x71};

static int index_of(const uint8_t *t, int n, uint32_t op)
{
    for (int i = 0; i < n; i++)
        if (t[i] == op) return i;
    return -1;
}

/* The second operation op of a pair, on x and y, one of which the last
 * instruction computed (prev): that instruction becomes word 0 of an
 * OP_PAIR (still writing its result, which may be a local), word 1 the
 * second's other operand | its result slot, where last_dst points. 1 when
 * fused. */
static int fuse_pair(struct cstate *s, uint32_t op, uint32_t prev, uint32_t x, uint32_t y)
{
    int b = index_of(PAIR_SECOND, 4, op), a;
    if (b < 0 || prev == UINT32_MAX || (x != prev && y != prev) || !s->last_packed) return 0;
    uint64_t w0 = s->w[s->last_dst];
    uint32_t first = (uint16_t)w0, base;
    if (first >= OP_IMM && first < OP_IMM_ACC + 0x100) {
        a = index_of(PAIR_FIRST_IMM, OP_PAIR_NIMM, first & 0xffu);
        base = first >= OP_IMM_ACC ? OP_PAIR_IMM_ACC : OP_PAIR_IMM;
    } else {
        base = OP_PAIR_REG;
        if (first >= OP_ACC_Y && first < OP_IMM) {
            first -= OP_ACC_Y;
            if (first != 0x6b) { /* commutes (not sub): the acc operand to x */
                w0 = (w0 & 0xffffffffu) | (w0 >> 48) << 32 | ((w0 >> 32) & 0xffffu) << 48;
                base = OP_PAIR_REG_ACC;
            }
        } else if (first >= OP_ACC_X && first < OP_ACC_Y) {
            first -= OP_ACC_X;
            base = OP_PAIR_REG_ACC;
        }
        a = first < 0x100 ? index_of(PAIR_FIRST_REG, OP_PAIR_NREG, first) : -1;
    }
    if (a < 0) return 0;
    drop_last(s);
    TRY(emit(s, 0, 2, (w0 & ~(uint64_t)0xffffu) | (base + (uint32_t)a * 4 + (uint32_t)b),
             pair(x == prev ? y : x, HOME(s, s->h)), 0));
    s->last_dst = s->nw - 1;
    return 1;
}

/* A binary numeric operation x op y into the next home slot. A constant
 * operand that fits becomes an immediate (constants go to the right when
 * the operation allows it). */
static int emit_binary(struct cstate *s, uint32_t op, uint32_t prev, uint32_t x, uint32_t y)
{
    int32_t k;
    int fused = fuse_pair(s, op, prev, x, y);
    if (fused) return fused < 0 ? fused : 0;
    if (has_imm_form(op)) {
        if (is_const(s, x) && !is_const(s, y) && swapped_op(op)) {
            uint32_t t = x;
            x = y, y = t;
            op = swapped_op(op);
        }
        if (imm16_of(s, op, y, &k)) {
            unuse(s, y);
            return emit_packed(s, 1, (x == prev ? OP_IMM_ACC : OP_IMM) + op, HOME(s, s->h), x,
                               (uint16_t)k);
        }
    }
    return emit_packed(s, 1, with_acc(op, prev, x, y), HOME(s, s->h), x, y);
}

/* If the condition slot cond was just computed by an i32 comparison (or
 * eqz), removes that instruction and returns its opcode and operands so
 * the branch can test them itself: *xy is x | y, or x | imm32 with *imm
 * set when one operand is a constant. */
static uint32_t take_compare(struct cstate *s, uint32_t cond, uint64_t *xy, int *imm)
{
    *imm = 0;
    if (s->last_dst < 0 || !s->last_packed || cond != HOME(s, s->h)) return 0;
    uint64_t w0 = s->w[s->last_dst];
    uint32_t op = (uint16_t)w0, x = (uint32_t)(w0 >> 32) & 0xffffu, y = (uint32_t)(w0 >> 48);
    if (op >= OP_IMM) {
        op -= op >= OP_IMM_ACC ? OP_IMM_ACC : OP_IMM;
        y = (uint32_t)(int32_t)(int16_t)y;
        *imm = 1;
    } else {
        op = op >= OP_ACC_Y ? op - OP_ACC_Y : op >= OP_ACC_X ? op - OP_ACC_X : op;
    }
    if (last_dst_slot(s) != cond || op < 0x45 || op > 0x4f) return 0;
    if (op != 0x45 && !*imm && const_u32(s, x) && !is_const(s, y)) {
        uint32_t t = x;
        x = y, y = t;
        op = swapped_op(op);
    }
    if (op != 0x45 && !*imm && const_u32(s, y)) {
        unuse(s, y);
        y = (uint32_t)s->consts[y - s->L0];
        *imm = 1;
    }
    *xy = pair(x, y);
    drop_last(s);
    return op;
}

/* A load whose address the last instruction computed with i32.add (the
 * common base + index): replaced, with the add, by one instruction that
 * still writes the sum (it may be a local, or read again) and then loads.
 * Word 0 is the add in packed form (OP_LOAD_ADD[I] + load), word 1 the
 * offset and the result slot, where last_dst points. Returns 0 when the
 * pattern is not there, else 1 or a negative status. */
static int fuse_add_load(struct cstate *s, uint32_t op, uint32_t a, uint32_t off)
{
    if (s->last_dst < 0 || !s->last_packed || last_dst_slot(s) != a) return 0;
    uint64_t w0 = s->w[s->last_dst];
    uint32_t add = (uint16_t)w0, fused;
    if (add == 0x6a || add == OP_ACC_X + 0x6a || add == OP_ACC_Y + 0x6a) fused = OP_LOAD_ADD;
    else if (add == OP_IMM + 0x6a || add == OP_IMM_ACC + 0x6a) fused = OP_LOAD_ADDI;
    else return 0;
    drop_last(s);
    TRY(emit(s, 0, 2, (w0 & ~(uint64_t)0xffffu) | (fused + op - 0x28), pair(off, HOME(s, s->h)), 0));
    s->last_dst = s->nw - 1;
    return 1;
}

/* The last instruction when it is an i32.add (any form): 1 with slot
 * operands, 2 with an immediate, else 0. */
static int last_is_add(const struct cstate *s)
{
    if (s->last_dst < 0 || !s->last_packed) return 0;
    uint32_t op = (uint16_t)s->w[s->last_dst];
    if (op == 0x6a || op == OP_ACC_X + 0x6a || op == OP_ACC_Y + 0x6a) return 1;
    return op == OP_IMM + 0x6a || op == OP_IMM_ACC + 0x6a ? 2 : 0;
}

/* The last instruction is the pair i32.mul then i32.add of the product
 * (multiply-accumulate): 1 in the OP_PAIR_REG form, 2 in the one taking
 * a factor from acc, else 0. */
static int last_is_madd(const struct cstate *s)
{
    uint32_t k = (uint32_t)(index_of(PAIR_FIRST_REG, OP_PAIR_NREG, 0x6c) * 4 +
                            index_of(PAIR_SECOND, 4, 0x6a));
    if (s->last_at < 0 || s->last_dst != s->last_at + 1) return 0;
    uint32_t op = (uint16_t)s->w[s->last_at];
    return op == OP_PAIR_REG + k ? 1 : op == OP_PAIR_REG_ACC + k ? 2 : 0;
}

/* A store right after the i32.add computing its address (as for loads;
 * OP_STORE_ADD[I], word 1 value slot | offset), or for i32.store, its
 * value (OP_STORE_VADD[I], word 1 address slot | offset): one instruction
 * instead of two, the sum still written to its slot. 1 when fused. */
static int fuse_add_store(struct cstate *s, uint32_t op, uint32_t a, uint32_t v, uint32_t off)
{
    int kind = last_is_add(s);
    uint32_t t = kind ? last_dst_slot(s) : UINT32_MAX, fused;
    uint64_t w1;
    if (kind && t == a) {
        fused = (kind == 1 ? OP_STORE_ADD : OP_STORE_ADDI) + op - 0x36;
        w1 = pair(v, off);
    } else if (op == 0x36 && last_is_madd(s) && last_dst_slot(s) == v) {
        /* x * y + c stored: the pair's two words, then address | offset */
        uint64_t p0 = s->w[s->last_at], p1 = s->w[s->last_at + 1];
        /* a factor in acc (the element just loaded, most often) stays out of memory */
        uint32_t fop = last_is_madd(s) == 2 ? OP_STORE_VMADD_ACC : OP_STORE_VMADD;
        drop_last(s);
        TRY(emit(s, 0, 3, (p0 & ~(uint64_t)0xffffu) | fop, p1, pair(a, off)));
        return 1;
    } else if (kind && t == v && op == 0x36) {
        fused = kind == 1 ? OP_STORE_VADD : OP_STORE_VADDI;
        w1 = pair(a, off);
    } else {
        return 0;
    }
    uint64_t w0 = s->w[s->last_dst];
    drop_last(s);
    TRY(emit(s, 0, 2, (w0 & ~(uint64_t)0xffffu) | fused, w1, 0));
    return 1;
}

/* A backward br_if on a compare whose left operand (after take_compare,
 * swapped there if needed) the instruction before computed with
 * i32.add of an immediate: the loop counter idiom i += k; if (i < n)
 * continue. The compare is gone already; the add becomes OP_ADDI_BR[I]
 * + compare, word 1 the other operand (slot or imm32) | offset. 1 when
 * fused. */
static int fuse_addi_branch(struct cstate *s, struct cctl *t, uint32_t cmp, uint64_t xy, int imm)
{
    int64_t at = s->last_at;
    static const uint8_t swap[10] = {0, 1, 4, 5, 2, 3, 8, 9, 6, 7};
    if (t->op != 0x03 || cmp == 0x45 || at < 0 || at + 1 != s->nw || s->label_at > at) return 0;
    uint64_t w0 = s->w[at];
    uint32_t op = (uint16_t)w0, d = (uint32_t)(w0 >> 16) & 0xffffu, k = cmp - 0x46;
    uint32_t x = (uint32_t)xy, y = (uint32_t)(xy >> 32);
    if (op != OP_IMM + 0x6a && op != OP_IMM_ACC + 0x6a) return 0;
    if (x != d) {
        if (imm || y != d) return 0;
        y = x, k = swap[k]; /* other < sum is sum > other */
    }
    drop_last(s);
    TRY(emit(s, 0, 2, (w0 & ~(uint64_t)0xffffu) | ((imm ? OP_ADDI_BRI : OP_ADDI_BR) + k),
             pair(y, t->start - (uint32_t)at), 0));
    /* a second induction variable stepped right before (p += 4; i += 1;
     * if (i < n) continue), or a sum taking the value before it from acc
     * (s += f(i) in a loop): that add jumps straight into this one's
     * handler instead of through the dispatch table. It keeps its packed
     * form and this instruction its own, so nothing else changes. */
    int64_t pre = s->before_at;
    if (pre >= 0 && pre + 1 == s->last_at && s->label_at <= pre) {
        uint64_t pw = s->w[pre];
        uint32_t pop = (uint16_t)pw, form = UINT32_MAX;
        if (pop == OP_IMM + 0x6a || pop == OP_IMM_ACC + 0x6a) {
            form = OP_PRE_ADDBR;
        } else if (pop == OP_ACC_X + 0x6a) { /* acc + y */
            form = OP_PRE_ADDBR_ACC;
        } else if (pop == OP_ACC_Y + 0x6a) { /* x + acc: x to y's field */
            form = OP_PRE_ADDBR_ACC;
            pw = (pw & ~((uint64_t)0xffffu << 48)) | ((pw >> 32) & 0xffffu) << 48;
        }
        if (form != UINT32_MAX)
            s->w[pre] = (pw & ~(uint64_t)0xffffu) | (form + (imm ? 10 : 0) + k);
    }
    return 1;
}

/* local.set / local.tee of local idx with the top value. */
static int set_local(struct cstate *s, uint32_t idx, int tee)
{
    uint32_t v = pop_slot(s), k = s->lslot[idx], w = wasm_slots(s->ltypes[idx]);
    int aliased = s->nalias[k] != 0;
    if (v == k) {
        /* local.get k; local.set k */
    } else if (!s->loop_seen && !s->written[k] && is_const(s, v) && s->consts[v - s->L0] == 0) {
        /* k is still the zero it starts with: before the first loop, code
         * runs at most once per call, in order, so nothing wrote k yet */
        unuse(s, v);
    } else if (!aliased && v == HOME(s, s->h) && s->last_dst >= 0 && last_dst_slot(s) == v) {
        /* (never a v128: what computes one has no retargetable result) */
        retarget_last(s, k);
        s->written[k] = 1;
    } else {
        if (aliased) TRY(materialize(s, k));
        unuse(s, v); /* emit_mov counts it again if it reads the slot */
        TRY(emit_move(s, k, v, w));
        s->written[k] = 1;
    }
    /* the last instruction's result stays known (in k when it was
     * retargeted): a retarget needs a home slot, which k is not, and the
     * next instruction may still take the value from acc or fuse with it */
    if (tee) TRY(push_slot(s, k, w));
    return 0;
}

/* A 0xfd instruction: one OP_SIMD, its words as wasm_simd_exec reads
 * them; the result (if any) at the next home slot. */
static int compile_simd(struct cstate *s, const struct wasm_instr *in)
{
    uint32_t sub = in->op - 0xfd00, x = 0, y = 0, w = 2; /* w: result slots */
    uint64_t w2 = in->lane;
    int kind = wasm_simd_kind(sub);
    switch (kind) {
    case SK_LOAD:
        x = pop_slot(s);
        w2 = in->b;
        break;
    case SK_LOAD_LANE: case SK_STORE: case SK_STORE_LANE:
        y = pop_slot(s), x = pop_slot(s);
        w2 = pair(in->b, in->lane);
        if (kind != SK_LOAD_LANE) w = 0;
        break;
    case SK_CONST:
        break;
    case SK_EXTRACT: case SK_TEST:
        x = pop_slot(s), w = 1;
        break;
    case SK_SPLAT: case SK_UNARY:
        x = pop_slot(s);
        break;
    case SK_TERNARY:
        w2 = pop_slot(s), y = pop_slot(s), x = pop_slot(s);
        break;
    default: /* binary, shift, replace_lane, shuffle */
        y = pop_slot(s), x = pop_slot(s);
        break;
    }
    /* the kind rides along (bits 28-31) so execution need not work it out */
    uint64_t w0 = word(OP_SIMD | sub << 16 | (uint32_t)kind << 28, w ? HOME(s, s->h) : 0);
    if (kind == SK_CONST || kind == SK_SHUFFLE) { /* the 16 bytes in words 2-3 */
        TRY(emit(s, 0, 3, w0, pair(x, y), in->bits));
        TRY(grow_words(s, 1));
        s->w[s->nw++] = in->hi;
    } else {
        TRY(emit(s, 0, 3, w0, pair(x, y), w2));
    }
    return w ? push_home(s, w) : 0;
}

/* global.get / global.set of a v128 global (SIMD_GLOBAL_GET/SET). */
static int global_v128(struct cstate *s, uint32_t op, uint32_t idx)
{
    if (op == 0x23) {
        TRY(emit(s, 0, 3, word(OP_SIMD | SIMD_GLOBAL_GET << 16, HOME(s, s->h)), idx, 0));
        return push_home(s, 2);
    }
    return emit(s, 0, 3, word(OP_SIMD | SIMD_GLOBAL_SET << 16, 0), pop_slot(s), idx);
}

static int compile_body(struct cstate *s, const uint8_t *b, const struct wasm_body *bd,
                        const struct wasm_functype *ft)
{
    const struct wasm_module *m = s->m;
    struct wasm_reader *rd = s->r;
    const uint8_t *pt, *rt;
    TRY(push_ctl(s, 0, NULL, 0, ft->t + ft->np, ft->nr));
    while (rd->pos < rd->end && s->nc) {
        struct wasm_instr in;
        TRY(wasm_read_instr(rd, &in));
        uint32_t op = in.op, np, nr;
        if (s->dead) {
            /* only nesting matters in unreachable code */
            if (op == 0x02 || op == 0x03 || op == 0x04) {
                wasm_block_sig(m, in.bt, &pt, &np, &rt, &nr);
                TRY(push_ctl(s, (uint8_t)op, pt, 0, rt, nr));
                s->c[s->nc - 1].np = np;
                continue;
            }
            if (op != 0x05 && op != 0x0b) continue;
        }
        struct cctl *c = &s->c[s->nc - 1];
        switch (op) {
        case 0x00:
            TRY(emit(s, 0, 1, word(0x00, 0), 0, 0));
            s->dead = 1;
            break;
        case 0x01: break;
        case 0x02: case 0x03:
            wasm_block_sig(m, in.bt, &pt, &np, &rt, &nr);
            TRY(materialize(s, UINT32_MAX));
            TRY(push_ctl(s, (uint8_t)op, pt, np, rt, nr));
            no_last(s);
            s->label_at = s->nw;
            if (op == 0x03) s->loop_seen = 1;
            break;
        case 0x04: {
            wasm_block_sig(m, in.bt, &pt, &np, &rt, &nr);
            uint32_t cond = pop_slot(s);
            uint64_t xy = 0;
            int imm;
            uint32_t cmp = take_compare(s, cond, &xy, &imm);
            TRY(materialize(s, UINT32_MAX));
            TRY(push_ctl(s, 0x04, pt, np, rt, nr));
            s->c[s->nc - 1].else_fix = s->nw + 1;
            if (cmp == 0x45) { /* if (eqz x): skip unless x == 0, i.e. when x != 0 */
                TRY(emit(s, 0, 2, word(OP_BR_IF, 0), (uint32_t)xy, 0));
            } else if (cmp) { /* jump to else when the comparison fails */
                static const uint8_t neg[10] = {1, 0, 8, 9, 6, 7, 4, 5, 2, 3};
                uint32_t bop = (imm ? OP_BR_CMPI : OP_BR_CMP) + neg[cmp - 0x46];
                TRY(emit(s, 0, 2, word(bop, 0), xy, 0));
            } else {
                TRY(emit(s, 0, 2, word(OP_BR_UNLESS, 0), cond, 0));
            }
            break;
        }
        case 0x05:
            if (!s->dead) {
                TRY(materialize(s, UINT32_MAX));
                chain(s, c, s->nw);
                TRY(emit(s, 0, 1, word(OP_JMP, 0), 0, 0));
            }
            if (c->else_fix) set_off(s, c->else_fix - 1, s->nw);
            c->else_fix = 0;
            c->op = 0x05;
            s->dead = c->dead_entry;
            TRY(reset_height(s, c->base, c->pt, c->np));
            no_last(s);
            s->label_at = s->nw;
            break;
        case 0x0b:
            if (!s->dead) TRY(materialize(s, UINT32_MAX));
            if (s->nc == 1 && !c->chain && !s->dead) { /* the function's end, only fallen into */
                s->nc = 0;
                TRY(emit_return(s, ft->nrs, HOME(s, 0)));
                break;
            }
            if (c->else_fix) set_off(s, c->else_fix - 1, s->nw);
            patch_chain(s, c, s->nw);
            s->nc--;
            no_last(s);
            s->label_at = s->nw;
            if (s->nc == 0) {
                TRY(reset_height(s, 0, ft->t + ft->np, ft->nr));
                TRY(emit(s, 0, 2, word(OP_RETURN, ft->nrs), HOME(s, 0), 0));
                break;
            }
            s->dead = c->dead_entry;
            TRY(reset_height(s, c->base, c->rt, c->nr));
            break;
        case 0x0c:
            TRY(materialize(s, UINT32_MAX));
            TRY(branch(s, in.a, UINT32_MAX));
            s->dead = 1;
            break;
        case 0x0d: {
            uint32_t cond = pop_slot(s);
            struct cctl *t = &s->c[s->nc - 1 - in.a];
            uint32_t arity = t->op == 0x03 ? t->np : t->nr;
            uint64_t xy = 0;
            uint32_t cmp = 0;
            int imm = 0;
            if (t->op != 0 && (arity == 0 || HOME(s, s->h - arity) == HOME(s, t->base)))
                cmp = take_compare(s, cond, &xy, &imm);
            TRY(materialize(s, UINT32_MAX));
            if (cmp == 0x45) { /* br_if (eqz x): branch unless x */
                uint32_t at = s->nw;
                TRY(emit(s, 0, 2, word(OP_BR_UNLESS, 0), (uint32_t)xy, 0));
                link_branch(s, t, at);
            } else if (cmp) {
                uint32_t at = s->nw;
                int fused = fuse_addi_branch(s, t, cmp, xy, imm);
                if (fused < 0) return fused;
                if (!fused) {
                    TRY(emit(s, 0, 2, word((imm ? OP_BR_CMPI : OP_BR_CMP) + (cmp - 0x46), 0), xy, 0));
                    link_branch(s, t, at);
                }
            } else {
                TRY(branch(s, in.a, cond));
            }
            break;
        }
        case 0x0e: {
            uint32_t idx = pop_slot(s);
            TRY(materialize(s, UINT32_MAX));
            const struct cctl *dflt = &s->c[s->nc - 1 - in.a];
            uint32_t arity = dflt->op == 0x03 ? dflt->np : dflt->nr, n = top_slots(s, arity);
            TRY(emit(s, 0, 2, word(OP_BR_TABLE, in.ntargets), pair(idx, HOME(s, s->h - arity)), 0));
            struct wasm_reader lr = {b, in.targets_off, rd->end, rd->err};
            for (uint32_t i = 0; i <= in.ntargets; i++) {
                uint32_t l = in.a;
                if (i < in.ntargets) wasm_read_u32(&lr, &l);
                struct cctl *t = &s->c[s->nc - 1 - l];
                uint32_t at = s->nw;
                /* to the function: the final RETURN takes values at home 0 */
                uint32_t dst = t->op == 0 ? HOME(s, 0) : HOME(s, t->base);
                TRY(emit(s, 0, 2, 0, pair(dst, n), 0));
                if (t->op == 0x03) set_off(s, at, t->start);
                else chain(s, t, at);
            }
            s->dead = 1;
            break;
        }
        case 0x0f:
            TRY(materialize(s, UINT32_MAX));
            TRY(emit_return(s, ft->nrs, HOME(s, s->h - ft->nr)));
            s->dead = 1;
            break;
        case 0x10: case 0x11: {
            const struct wasm_functype *ct = &m->types[op == 0x10 ? m->func_type[in.a] : in.a];
            uint32_t idx = op == 0x11 ? pop_slot(s) : 0;
            TRY(materialize(s, UINT32_MAX));
            uint32_t base = HOME(s, s->h - ct->np);
            int direct = op == 0x10 && in.a >= m->nfunc_imports; /* same instance, not a host function */
            if (direct) {
                pre_form(s, OP_PRE_CALL);
                TRY(emit(s, 0, 2, word(OP_CALL_DIRECT, base),
                         (uint64_t)(uintptr_t)&m->codes[in.a - m->nfunc_imports], 0));
            } else if (op == 0x10) TRY(emit(s, 0, 2, word(OP_CALL, in.a), base, 0));
            else TRY(emit(s, 0, 3, word(OP_CALL_INDIRECT, in.a), pair(base, in.b), idx));
            s->h -= ct->np;
            for (uint32_t i = 0; i < ct->nr; i++) TRY(push_home(s, wasm_slots(ct->t[ct->np + i])));
            /* the callee's return leaves its first result in acc: the next
             * instruction may read it from there (not through the slot the
             * return just wrote: a store-to-load wait on every call) */
            if (direct && ct->nr && ct->t[ct->np] != WASM_V128)
                s->call_acc = base;
            /* the callee's frame starts at base: make room for its results */
            break;
        }
        case 0x1a: pop_slot(s); break;
        case 0x1b: case 0x1c: {
            uint32_t cond = pop_slot(s), y = pop_slot(s), x = pop_slot(s);
            if (width_at(s, s->h) == 2) {
                uint32_t op3 = OP_SIMD | SIMD_SELECT << 16;
                TRY(emit(s, 0, 3, word(op3, HOME(s, s->h)), pair(x, y), cond));
                TRY(push_home(s, 2));
                break;
            }
            TRY(emit(s, 1, 3, word(OP_SELECT, HOME(s, s->h)), pair(x, y), cond));
            TRY(push_home(s, 1));
            break;
        }
        case 0x20: TRY(push_slot(s, s->lslot[in.a], wasm_slots(s->ltypes[in.a]))); break;
        case 0x21: TRY(set_local(s, in.a, 0)); break;
        case 0x22: TRY(set_local(s, in.a, 1)); break;
        case 0x23:
            if (m->globals[in.a].type == WASM_V128) {
                TRY(global_v128(s, op, in.a));
                break;
            }
            TRY(emit(s, 1, 2, word(OP_GLOBAL_GET, HOME(s, s->h)), in.a, 0));
            TRY(push_home(s, 1));
            break;
        case 0x24: {
            if (m->globals[in.a].type == WASM_V128) {
                TRY(global_v128(s, op, in.a));
                break;
            }
            uint32_t v = pop_slot(s);
            TRY(emit(s, 0, 2, word(OP_GLOBAL_SET, in.a), v, 0));
            break;
        }
        case 0x25: {
            uint32_t i = pop_slot(s);
            TRY(emit(s, 1, 2, word(OP_TABLE_GET, HOME(s, s->h)), pair(i, in.a), 0));
            TRY(push_home(s, 1));
            break;
        }
        case 0x26: {
            uint32_t v = pop_slot(s), i = pop_slot(s);
            TRY(emit(s, 0, 2, word(OP_TABLE_SET, in.a), pair(i, v), 0));
            break;
        }
        case 0x3f:
            TRY(emit(s, 1, 1, word(0x3f, HOME(s, s->h)), 0, 0));
            TRY(push_home(s, 1));
            break;
        case 0x40: {
            uint32_t n = pop_slot(s);
            TRY(emit(s, 1, 2, word(0x40, HOME(s, s->h)), n, 0));
            TRY(push_home(s, 1));
            break;
        }
        case 0x41: case 0x42: case 0x43: case 0x44: case 0xd0: {
            uint64_t bits = op == 0xd0 ? 0 : in.bits;
            uint32_t k = const_slot(s, bits);
            if (k != UINT32_MAX) {
                TRY(push_slot(s, k, 1));
            } else {
                TRY(emit(s, 1, 2, word(OP_CONST64, HOME(s, s->h)), bits, 0));
                TRY(push_home(s, 1));
            }
            break;
        }
        case 0xd1: {
            uint32_t prev = prev_slot(s), a = pop_slot(s);
            TRY(emit_packed(s, 1, with_acc(OP_REF_IS_NULL, prev, a, UINT32_MAX), HOME(s, s->h), a, 0));
            TRY(push_home(s, 1));
            break;
        }
        case 0xd2:
            TRY(emit(s, 1, 2, word(OP_REF_FUNC, HOME(s, s->h)), in.a, 0));
            TRY(push_home(s, 1));
            break;
        default: {
            uint32_t prev = prev_slot(s);
            if (op >= 0xfd00) {
                TRY(compile_simd(s, &in));
            } else if (op >= 0x28 && op <= 0x35) { /* loads */
                uint32_t a = pop_slot(s);
                int fused = fuse_add_load(s, op, a, in.b);
                if (fused < 0) return fused;
                if (!fused)
                    TRY(emit(s, 1, 2, word(with_acc(op, prev, a, UINT32_MAX), HOME(s, s->h)), pair(a, in.b), 0));
                TRY(push_home(s, 1));
            } else if (op >= 0x36 && op <= 0x3e) { /* stores */
                uint32_t v = pop_slot(s), a = pop_slot(s);
                int fused = fuse_add_store(s, op, a, v, in.b);
                if (fused < 0) return fused;
                if (!fused) TRY(emit(s, 0, 2, word(with_acc(op, prev, a, v), in.b), pair(a, v), 0));
            } else if ((op >= 0x45 && op <= 0xc4) || (op >= 0xfc00 && op <= 0xfc07)) {
                uint32_t iop = op >= 0xfc00 ? OP_FC + (op & 0xff) : op;
                if (numeric_arity(op) == 1) {
                    uint32_t a = pop_slot(s);
                    TRY(emit_packed(s, 1, with_acc(iop, prev, a, UINT32_MAX), HOME(s, s->h), a, 0));
                } else {
                    uint32_t y = pop_slot(s), x = pop_slot(s);
                    TRY(emit_binary(s, iop, prev, x, y));
                }
                TRY(push_home(s, 1));
            } else {
                /* bulk memory and table operations: operands at home, in order */
                static const uint8_t pops[18] = {[8] = 3, [10] = 3, [11] = 3, [12] = 3,
                                                 [14] = 3, [15] = 2, [17] = 3};
                uint32_t sub = op & 0xff, n = pops[sub];
                TRY(materialize(s, UINT32_MAX));
                s->h -= n;
                TRY(emit(s, 0, 2, word(OP_FC + sub, in.a), pair(HOME(s, s->h), in.b), 0));
                if (sub == 15 || sub == 16) TRY(push_home(s, 1));
            }
            break;
        }
        }
    }
    if (s->nc) return wasm_fail(rd, WASM_ERR_MALFORMED, "unexpected end of function");
    return 0;
}

/* One translation of the body into s (whose constants are gathered). */
static int compile_pass(struct cstate *s, const uint8_t *b, const struct wasm_body *bd,
                        const struct wasm_functype *ft)
{
    s->r->pos = bd->off;
    s->nw = s->nc = s->h = s->hmax = s->naliased = 0;
    TRY(reserve(s, 0));
    s->sh[0] = 0;
    s->alias_lo = UINT32_MAX;
    s->last_at = s->before_at = s->before2_at = -1;
    no_last(s);
    s->label_at = 0;
    s->dead = s->loop_seen = 0;
    memset(s->cuse, 0, sizeof(s->cuse));
    memset(s->nalias, 0, ((size_t)s->L + 1) * sizeof(*s->nalias));
    memset(s->written, 0, s->L0);
    memset(s->written, 1, ft->nps);
    return compile_body(s, b, bd, ft);
}

/* Puts the constants still read from their slots first, so that the
 * function entry copies only those; returns whether the order changed.
 * Compiling again with the new order makes the same choices (they depend
 * on values, not on slot numbers), only with other slot numbers. */
static int sort_consts(struct cstate *s)
{
    uint64_t used[WASM_MAX_CONSTS], unused[WASM_MAX_CONSTS];
    uint32_t nu = 0, nn = 0, changed = 0;
    for (uint32_t i = 0; i < s->nconsts; i++) {
        if (s->cuse[i]) changed |= nn != 0, used[nu++] = s->consts[i];
        else unused[nn++] = s->consts[i];
    }
    memcpy(s->consts, used, nu * 8);
    memcpy(s->consts + nu, unused, nn * 8);
    return changed != 0;
}

/* Constants to copy in on entry: up to the last one read from its slot. */
static uint32_t consts_read(const struct cstate *s)
{
    uint32_t n = s->nconsts;
    while (n && !s->cuse[n - 1]) n--;
    return n;
}

int wasm_compile_func(const uint8_t *b, const struct wasm_module *m, uint32_t fidx,
                      struct wasm_code *out, struct wasm_error *err)
{
    const struct wasm_body *bd = &m->bodies[fidx - m->nfunc_imports];
    const struct wasm_functype *ft = &m->types[m->func_type[fidx]];
    struct wasm_reader rd = {b, bd->off, bd->end, err};
    struct cstate st;
    memset(&st, 0, sizeof(st));
    st.r = &rd;
    st.m = m;
    st.last_dst = -1;
    st.call_acc = UINT32_MAX;
    uint32_t nl = ft->np + bd->nlocals;
    st.ltypes = bd->locals;
    st.lslot = malloc(((size_t)nl + 1) * sizeof(*st.lslot));
    if (!st.lslot) return wasm_fail(&rd, WASM_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < nl; i++) st.lslot[i] = st.L0, st.L0 += wasm_slots(bd->locals[i]);
    int rc = scan_consts(&st, b, bd);
    st.L = st.L0 + st.nconsts;
    st.nalias = calloc((size_t)st.L + 1, sizeof(*st.nalias));
    st.written = malloc((size_t)st.L0 + 1);
    if ((!st.nalias || !st.written) && !rc) rc = wasm_fail(&rd, WASM_ERR_NOMEM, "out of memory");
    if (!rc) rc = compile_pass(&st, b, bd, ft);
    if (!rc && sort_consts(&st)) rc = compile_pass(&st, b, bd, ft);
    uint32_t ncopy = rc ? 0 : consts_read(&st);
    if (ncopy) {
        out->consts = malloc((size_t)ncopy * 8);
        if (!out->consts) rc = wasm_fail(&rd, WASM_ERR_NOMEM, "out of memory");
        else memcpy(out->consts, st.consts, (size_t)ncopy * 8);
    }
    free(st.c);
    free(st.vs);
    free(st.sh);
    free(st.lslot);
    free(st.nalias);
    free(st.written);
    if (rc) {
        free(st.w);
        return rc;
    }
    out->w = st.w;
    out->nw = st.nw;
    out->np = ft->nps;
    out->nlocals = st.L0 - ft->nps;
    out->nconsts = ncopy;
    /* callee frames start inside this one, so results may land above hmax */
    out->frame_max = st.L + st.hmax + ft->nrs + 1;
    return 0;
}
