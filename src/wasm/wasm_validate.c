/* wasm_validate.c - module and function validation (WebAssembly 2.0),
 * following the algorithm of the spec's appendix: a stack of operand
 * types (with "unknown" below unreachable code) and a stack of control
 * frames. Errors are WASM_ERR_INVALID with the byte offset. The compiler
 * relies on every body having passed through here. */
#include <stdlib.h>

#include "wasm/wasm_int.h"

#define UNK 0 /* unknown operand type (unreachable code) */

struct ctl {
    uint8_t op; /* 0x02 block, 0x03 loop, 0x04 if, 0x05 else; 0 function */
    uint8_t unreachable;
    uint32_t height;
    const uint8_t *pt, *rt;
    uint32_t np, nr;
};

struct vstate {
    struct wasm_reader *r;
    const struct wasm_module *m;
    uint8_t *vals;
    uint32_t nvals, capvals;
    struct ctl *ctls;
    uint32_t nctls, capctls;
};

#define INVALID(...) wasm_fail(v->r, WASM_ERR_INVALID, __VA_ARGS__)

static int push(struct vstate *v, uint8_t t)
{
    if (v->nvals == v->capvals) {
        uint32_t nc = v->capvals ? v->capvals * 2 : 64;
        uint8_t *p = realloc(v->vals, nc);
        if (!p) return wasm_fail(v->r, WASM_ERR_NOMEM, "out of memory");
        v->vals = p;
        v->capvals = nc;
    }
    v->vals[v->nvals++] = t;
    return 0;
}

/* Pops one operand, expected of type want (UNK: any); *got is its type. */
static int pop(struct vstate *v, uint8_t want, uint8_t *got)
{
    struct ctl *c = &v->ctls[v->nctls - 1];
    uint8_t t;
    if (v->nvals == c->height) {
        if (!c->unreachable) return INVALID("type mismatch (operand stack underflow)");
        t = UNK;
    } else {
        t = v->vals[--v->nvals];
    }
    if (want != UNK && t != UNK && t != want) return INVALID("type mismatch");
    if (got) *got = t == UNK ? want : t;
    return 0;
}

static int pops(struct vstate *v, const uint8_t *t, uint32_t n)
{
    for (uint32_t i = n; i-- > 0;) {
        int rc = pop(v, t[i], NULL);
        if (rc) return rc;
    }
    return 0;
}

static int pushes(struct vstate *v, const uint8_t *t, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        int rc = push(v, t[i]);
        if (rc) return rc;
    }
    return 0;
}

static int push_ctl(struct vstate *v, uint8_t op, const uint8_t *pt, uint32_t np,
                    const uint8_t *rt, uint32_t nr)
{
    if (v->nctls == v->capctls) {
        uint32_t nc = v->capctls ? v->capctls * 2 : 16;
        struct ctl *p = realloc(v->ctls, nc * sizeof(*p));
        if (!p) return wasm_fail(v->r, WASM_ERR_NOMEM, "out of memory");
        v->ctls = p;
        v->capctls = nc;
    }
    struct ctl *c = &v->ctls[v->nctls++];
    c->op = op;
    c->unreachable = 0;
    c->height = v->nvals;
    c->pt = pt, c->np = np, c->rt = rt, c->nr = nr;
    return pushes(v, pt, np);
}

static void set_unreachable(struct vstate *v)
{
    struct ctl *c = &v->ctls[v->nctls - 1];
    v->nvals = c->height;
    c->unreachable = 1;
}

static int label(struct vstate *v, uint32_t l, const uint8_t **t, uint32_t *n)
{
    if (l >= v->nctls) return INVALID("unknown label %u", l);
    struct ctl *c = &v->ctls[v->nctls - 1 - l];
    if (c->op == 0x03) *t = c->pt, *n = c->np;
    else *t = c->rt, *n = c->nr;
    return 0;
}

static int blocktype(struct vstate *v, int64_t bt, const uint8_t **pt, uint32_t *np,
                     const uint8_t **rt, uint32_t *nr)
{
    if (bt >= 0 && (uint64_t)bt >= v->m->ntypes) return INVALID("unknown type %lld", (long long)bt);
    wasm_block_sig(v->m, bt, pt, np, rt, nr);
    return 0;
}

/* Operand and result types of numeric opcodes 0x45..0xc4: "in1 in2 > out". */
static int numeric_sig(uint32_t op, uint8_t *a, uint8_t *b, uint8_t *o)
{
    const uint8_t I = 0x7f, L = 0x7e, F = 0x7d, D = 0x7c;
    *b = 0;
    if (op == 0x45) *a = I, *o = I;
    else if (op <= 0x4f) *a = *b = I, *o = I;
    else if (op == 0x50) *a = L, *o = I;
    else if (op <= 0x5a) *a = *b = L, *o = I;
    else if (op <= 0x60) *a = *b = F, *o = I;
    else if (op <= 0x66) *a = *b = D, *o = I;
    else if (op <= 0x69) *a = I, *o = I;
    else if (op <= 0x78) *a = *b = I, *o = I;
    else if (op <= 0x7b) *a = L, *o = L;
    else if (op <= 0x8a) *a = *b = L, *o = L;
    else if (op <= 0x91) *a = F, *o = F;
    else if (op <= 0x98) *a = *b = F, *o = F;
    else if (op <= 0x9f) *a = D, *o = D;
    else if (op <= 0xa6) *a = *b = D, *o = D;
    else {
        static const uint8_t conv[][2] = {
            /* a7 */ {0x7e, 0x7f}, {0x7d, 0x7f}, {0x7d, 0x7f}, {0x7c, 0x7f}, {0x7c, 0x7f},
            /* ac */ {0x7f, 0x7e}, {0x7f, 0x7e}, {0x7d, 0x7e}, {0x7d, 0x7e}, {0x7c, 0x7e},
            /* b1 */ {0x7c, 0x7e}, {0x7f, 0x7d}, {0x7f, 0x7d}, {0x7e, 0x7d}, {0x7e, 0x7d},
            /* b6 */ {0x7c, 0x7d}, {0x7f, 0x7c}, {0x7f, 0x7c}, {0x7e, 0x7c}, {0x7e, 0x7c},
            /* bb */ {0x7d, 0x7c}, {0x7d, 0x7f}, {0x7c, 0x7e}, {0x7f, 0x7d}, {0x7e, 0x7c},
            /* c0 */ {0x7f, 0x7f}, {0x7f, 0x7f}, {0x7e, 0x7e}, {0x7e, 0x7e}, {0x7e, 0x7e},
        };
        if (op > 0xc4) return -1;
        *a = conv[op - 0xa7][0];
        *o = conv[op - 0xa7][1];
    }
    return 0;
}

static const uint8_t mem_align[] = {
    /* 0x28 */ 2, 3, 2, 3, 0, 0, 1, 1, 0, 0, 1, 1, 2, 2,
    /* 0x36 */ 2, 3, 2, 3, 0, 1, 0, 1, 2,
};
static const uint8_t mem_type[] = {
    0x7f, 0x7e, 0x7d, 0x7c, 0x7f, 0x7f, 0x7f, 0x7f, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e,
    0x7f, 0x7e, 0x7d, 0x7c, 0x7f, 0x7f, 0x7e, 0x7e, 0x7e,
};

#define TRY(x)                                                                               \
    do {                                                                                     \
        int rc_ = (x);                                                                       \
        if (rc_) return rc_;                                                                 \
    } while (0)

static int need_mem(struct vstate *v, uint32_t idx)
{
    if (idx >= v->m->nmems) return INVALID("unknown memory %u", idx);
    return 0;
}

static int need_table(struct vstate *v, uint32_t idx)
{
    if (idx >= v->m->ntables) return INVALID("unknown table %u", idx);
    return 0;
}

/* A 0xfd instruction: immediates (alignment, lane indices), then operands
 * and results by kind (SK_*). */
static int validate_simd(struct vstate *v, const struct wasm_instr *in)
{
    const uint8_t V = WASM_V128, I = WASM_I32;
    uint32_t sub = in->op - 0xfd00;
    int kind = wasm_simd_kind(sub);
    if (kind >= SK_LOAD && kind <= SK_STORE_LANE) {
        TRY(need_mem(v, 0));
        if (in->a > wasm_simd_align(sub))
            return INVALID("alignment must not be larger than natural");
    }
    if (kind == SK_LOAD_LANE || kind == SK_STORE_LANE || kind == SK_EXTRACT || kind == SK_REPLACE)
        if (in->lane >= wasm_simd_lanes(sub)) return INVALID("invalid lane index");
    if (kind == SK_SHUFFLE)
        for (int i = 0; i < 8; i++)
            if (((in->bits >> 8 * i) & 0xff) >= 32 || ((in->hi >> 8 * i) & 0xff) >= 32)
                return INVALID("invalid lane index");
    switch (kind) {
    case SK_LOAD: TRY(pop(v, I, NULL)); return push(v, V);
    case SK_STORE: case SK_STORE_LANE: TRY(pop(v, V, NULL)); return pop(v, I, NULL);
    case SK_LOAD_LANE: TRY(pop(v, V, NULL)); TRY(pop(v, I, NULL)); return push(v, V);
    case SK_CONST: return push(v, V);
    case SK_EXTRACT: TRY(pop(v, V, NULL)); return push(v, wasm_simd_scalar(sub));
    case SK_REPLACE:
        TRY(pop(v, wasm_simd_scalar(sub), NULL));
        TRY(pop(v, V, NULL));
        return push(v, V);
    case SK_SPLAT: TRY(pop(v, wasm_simd_scalar(sub), NULL)); return push(v, V);
    case SK_UNARY: TRY(pop(v, V, NULL)); return push(v, V);
    case SK_SHUFFLE: case SK_BINARY: TRY(pop(v, V, NULL)); TRY(pop(v, V, NULL)); return push(v, V);
    case SK_TERNARY:
        TRY(pop(v, V, NULL));
        TRY(pop(v, V, NULL));
        TRY(pop(v, V, NULL));
        return push(v, V);
    case SK_TEST: TRY(pop(v, V, NULL)); return push(v, I);
    case SK_SHIFT: TRY(pop(v, I, NULL)); TRY(pop(v, V, NULL)); return push(v, V);
    default: return INVALID("illegal opcode");
    }
}

static int validate_body(struct vstate *v, uint32_t fidx)
{
    const struct wasm_module *m = v->m;
    const struct wasm_body *bd = &m->bodies[fidx - m->nfunc_imports];
    const struct wasm_functype *ft = &m->types[m->func_type[fidx]];
    struct wasm_reader *r = v->r;
    uint32_t nlocals = ft->np + bd->nlocals;
    v->nvals = v->nctls = 0;
    TRY(push_ctl(v, 0, NULL, 0, ft->t + ft->np, ft->nr));
    r->pos = bd->off;
    r->end = bd->end;
    while (r->pos < r->end) {
        struct wasm_instr in;
        size_t at = r->pos;
        TRY(wasm_read_instr(r, &in));
        size_t after = r->pos;
        r->pos = at; /* errors point at the instruction */
        uint32_t op = in.op;
        uint8_t t, t2, a, b, o;
        const uint8_t *pt, *rt;
        uint32_t np, nr;
        switch (op) {
        case 0x00: set_unreachable(v); break;
        case 0x01: break;
        case 0x02: case 0x03: case 0x04:
            TRY(blocktype(v, in.bt, &pt, &np, &rt, &nr));
            if (op == 0x04) TRY(pop(v, 0x7f, NULL));
            TRY(pops(v, pt, np));
            TRY(push_ctl(v, (uint8_t)op, pt, np, rt, nr));
            break;
        case 0x05: {
            struct ctl *c = &v->ctls[v->nctls - 1];
            if (c->op != 0x04) return INVALID("else without if");
            TRY(pops(v, c->rt, c->nr));
            if (v->nvals != c->height) return INVALID("type mismatch (values left at else)");
            c->op = 0x05;
            c->unreachable = 0;
            TRY(pushes(v, c->pt, c->np));
            break;
        }
        case 0x0b: {
            struct ctl c = v->ctls[v->nctls - 1];
            TRY(pops(v, c.rt, c.nr));
            if (v->nvals != c.height) return INVALID("type mismatch (values left at end)");
            if (c.op == 0x04 && (c.np != c.nr || (c.np && memcmp(c.pt, c.rt, c.np))))
                return INVALID("type mismatch (if without else)");
            v->nctls--;
            if (v->nctls == 0) {
                if (after != bd->end) {
                    r->pos = after;
                    return wasm_fail(r, WASM_ERR_MALFORMED, "section size mismatch (code after end)");
                }
                r->pos = after;
                return 0;
            }
            TRY(pushes(v, c.rt, c.nr));
            break;
        }
        case 0x0c:
            TRY(label(v, in.a, &rt, &nr));
            TRY(pops(v, rt, nr));
            set_unreachable(v);
            break;
        case 0x0d:
            TRY(pop(v, 0x7f, NULL));
            TRY(label(v, in.a, &rt, &nr));
            TRY(pops(v, rt, nr));
            TRY(pushes(v, rt, nr));
            break;
        case 0x0e: {
            TRY(pop(v, 0x7f, NULL));
            TRY(label(v, in.a, &rt, &nr));
            struct wasm_reader lr = {r->b, in.targets_off, r->end, r->err};
            for (uint32_t i = 0; i < in.ntargets; i++) {
                uint32_t l, n2;
                const uint8_t *t3;
                wasm_read_u32(&lr, &l);
                TRY(label(v, l, &t3, &n2));
                if (n2 != nr) return INVALID("type mismatch (br_table arity)");
                /* pop and push back what was there (unknowns stay unknown) */
                uint32_t save = v->nvals;
                TRY(pops(v, t3, n2));
                v->nvals = save;
            }
            TRY(pops(v, rt, nr));
            set_unreachable(v);
            break;
        }
        case 0x0f:
            TRY(pops(v, ft->t + ft->np, ft->nr));
            set_unreachable(v);
            break;
        case 0x10: {
            if (in.a >= m->nfuncs) return INVALID("unknown function %u", in.a);
            const struct wasm_functype *ct = &m->types[m->func_type[in.a]];
            TRY(pops(v, ct->t, ct->np));
            TRY(pushes(v, ct->t + ct->np, ct->nr));
            break;
        }
        case 0x11: {
            TRY(need_table(v, in.b));
            if (m->tables[in.b].type != WASM_FUNCREF) return INVALID("type mismatch (call_indirect table)");
            if (in.a >= m->ntypes) return INVALID("unknown type %u", in.a);
            const struct wasm_functype *ct = &m->types[in.a];
            TRY(pop(v, 0x7f, NULL));
            TRY(pops(v, ct->t, ct->np));
            TRY(pushes(v, ct->t + ct->np, ct->nr));
            break;
        }
        case 0x1a: TRY(pop(v, UNK, NULL)); break;
        case 0x1b:
            TRY(pop(v, 0x7f, NULL));
            TRY(pop(v, UNK, &t));
            TRY(pop(v, UNK, &t2));
            if (wasm_is_ref(t) || wasm_is_ref(t2)) return INVALID("type mismatch (select on references)");
            if (t != UNK && t2 != UNK && t != t2) return INVALID("type mismatch");
            TRY(push(v, t == UNK ? t2 : t));
            break;
        case 0x1c:
            TRY(pop(v, 0x7f, NULL));
            TRY(pop(v, (uint8_t)in.b, NULL));
            TRY(pop(v, (uint8_t)in.b, NULL));
            TRY(push(v, (uint8_t)in.b));
            break;
        case 0x20: case 0x21: case 0x22:
            if (in.a >= nlocals) return INVALID("unknown local %u", in.a);
            t = bd->locals[in.a];
            if (op != 0x20) TRY(pop(v, t, NULL));
            if (op != 0x21) TRY(push(v, t));
            break;
        case 0x23: case 0x24:
            if (in.a >= m->nglobals) return INVALID("unknown global %u", in.a);
            t = m->globals[in.a].type;
            if (op == 0x23) {
                TRY(push(v, t));
            } else {
                if (!m->globals[in.a].mut) return INVALID("global is immutable");
                TRY(pop(v, t, NULL));
            }
            break;
        case 0x25: case 0x26:
            TRY(need_table(v, in.a));
            t = m->tables[in.a].type;
            if (op == 0x25) {
                TRY(pop(v, 0x7f, NULL));
                TRY(push(v, t));
            } else {
                TRY(pop(v, t, NULL));
                TRY(pop(v, 0x7f, NULL));
            }
            break;
        case 0x3f:
            TRY(need_mem(v, 0));
            TRY(push(v, 0x7f));
            break;
        case 0x40:
            TRY(need_mem(v, 0));
            TRY(pop(v, 0x7f, NULL));
            TRY(push(v, 0x7f));
            break;
        case 0x41: TRY(push(v, 0x7f)); break;
        case 0x42: TRY(push(v, 0x7e)); break;
        case 0x43: TRY(push(v, 0x7d)); break;
        case 0x44: TRY(push(v, 0x7c)); break;
        case 0xd0: TRY(push(v, (uint8_t)in.a)); break;
        case 0xd1:
            TRY(pop(v, UNK, &t));
            if (t != UNK && !wasm_is_ref(t)) return INVALID("type mismatch (ref.is_null)");
            TRY(push(v, 0x7f));
            break;
        case 0xd2:
            if (in.a >= m->nfuncs) return INVALID("unknown function %u", in.a);
            if (!m->declared_refs[in.a]) return INVALID("undeclared function reference");
            TRY(push(v, WASM_FUNCREF));
            break;
        default:
            if (op >= 0x28 && op <= 0x3e) {
                TRY(need_mem(v, 0));
                if (in.a > mem_align[op - 0x28])
                    return INVALID("alignment must not be larger than natural");
                if (op <= 0x35) {
                    TRY(pop(v, 0x7f, NULL));
                    TRY(push(v, mem_type[op - 0x28]));
                } else {
                    TRY(pop(v, mem_type[op - 0x28], NULL));
                    TRY(pop(v, 0x7f, NULL));
                }
                break;
            }
            if (op >= 0x45 && op <= 0xc4) {
                if (numeric_sig(op, &a, &b, &o)) return INVALID("illegal opcode");
                if (b) TRY(pop(v, b, NULL));
                TRY(pop(v, a, NULL));
                TRY(push(v, o));
                break;
            }
            if (op >= 0xfd00 && op <= 0xfdff) {
                TRY(validate_simd(v, &in));
                break;
            }
            if (op >= 0xfc00 && op <= 0xfc07) {
                static const uint8_t src[] = {0x7d, 0x7d, 0x7c, 0x7c, 0x7d, 0x7d, 0x7c, 0x7c};
                TRY(pop(v, src[op - 0xfc00], NULL));
                TRY(push(v, op < 0xfc04 ? 0x7f : 0x7e));
                break;
            }
            switch (op) {
            case 0xfc08:
                TRY(need_mem(v, 0));
                if (!m->has_datacount) return wasm_fail(r, WASM_ERR_MALFORMED, "data count section required");
                if (in.a >= m->ndatas) return INVALID("unknown data segment %u", in.a);
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, 0x7f, NULL));
                break;
            case 0xfc09:
                if (!m->has_datacount) return wasm_fail(r, WASM_ERR_MALFORMED, "data count section required");
                if (in.a >= m->ndatas) return INVALID("unknown data segment %u", in.a);
                break;
            case 0xfc0a: case 0xfc0b:
                TRY(need_mem(v, 0));
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, 0x7f, NULL));
                break;
            case 0xfc0c:
                TRY(need_table(v, in.b));
                if (in.a >= m->nelems) return INVALID("unknown elem segment %u", in.a);
                if (m->elems[in.a].type != m->tables[in.b].type) return INVALID("type mismatch (table.init)");
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, 0x7f, NULL));
                break;
            case 0xfc0d:
                if (in.a >= m->nelems) return INVALID("unknown elem segment %u", in.a);
                break;
            case 0xfc0e:
                TRY(need_table(v, in.a));
                TRY(need_table(v, in.b));
                if (m->tables[in.a].type != m->tables[in.b].type) return INVALID("type mismatch (table.copy)");
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, 0x7f, NULL));
                break;
            case 0xfc0f:
                TRY(need_table(v, in.a));
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, m->tables[in.a].type, NULL));
                TRY(push(v, 0x7f));
                break;
            case 0xfc10:
                TRY(need_table(v, in.a));
                TRY(push(v, 0x7f));
                break;
            case 0xfc11:
                TRY(need_table(v, in.a));
                TRY(pop(v, 0x7f, NULL));
                TRY(pop(v, m->tables[in.a].type, NULL));
                TRY(pop(v, 0x7f, NULL));
                break;
            default:
                return INVALID("illegal opcode");
            }
        }
        r->pos = after;
    }
    return wasm_fail(r, WASM_ERR_MALFORMED, "unexpected end of section or function");
}

/* The type a constant expression produces, or an error. */
static int cexpr_type(struct vstate *v, const struct wasm_cexpr *e, uint8_t *t)
{
    const struct wasm_module *m = v->m;
    switch (e->op) {
    case CE_GLOBAL:
        if (e->idx >= m->nglobal_imports) return INVALID("unknown global %u", e->idx);
        if (m->globals[e->idx].mut) return INVALID("constant expression required");
        *t = m->globals[e->idx].type;
        return 0;
    case CE_REF_FUNC:
        if (e->idx >= m->nfuncs) return INVALID("unknown function %u", e->idx);
        *t = WASM_FUNCREF;
        return 0;
    default:
        *t = e->type;
        return 0;
    }
}

static int check_cexpr(struct vstate *v, const struct wasm_cexpr *e, uint8_t want)
{
    uint8_t t = 0;
    TRY(cexpr_type(v, e, &t));
    if (t != want) return INVALID("type mismatch (constant expression)");
    return 0;
}

static int check_lim(struct vstate *v, const struct wasm_lim *l, uint64_t cap, const char *what)
{
    uint64_t max = l->max == WASM_NOMAX ? UINT64_MAX : l->max;
    if (l->min > cap || (l->max != WASM_NOMAX && max > cap))
        return INVALID("%s size must be at most %llu", what, (unsigned long long)cap);
    if (l->max != WASM_NOMAX && l->min > max) return INVALID("size minimum must not be greater than maximum");
    return 0;
}

static int cmp_export(const void *a, const void *b)
{
    const struct wasm_export *x = *(const struct wasm_export *const *)a;
    const struct wasm_export *y = *(const struct wasm_export *const *)b;
    if (x->name_len != y->name_len) return x->name_len < y->name_len ? -1 : 1;
    return memcmp(x->name, y->name, x->name_len);
}

/* Export names are distinct: sorted, so n log n however many there are. */
static int unique_exports(struct vstate *v)
{
    const struct wasm_module *m = v->m;
    if (m->nexports < 2) return 0;
    const struct wasm_export **e = malloc(m->nexports * sizeof(*e));
    if (!e) return wasm_fail(v->r, WASM_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < m->nexports; i++) e[i] = &m->exports[i];
    qsort(e, m->nexports, sizeof(*e), cmp_export);
    int dup = 0;
    for (uint32_t i = 1; i < m->nexports && !dup; i++) dup = !cmp_export(&e[i - 1], &e[i]);
    free(e);
    return dup ? INVALID("duplicate export name") : 0;
}

int wasm_validate_module(const uint8_t *b, struct wasm_module *m, struct wasm_error *err)
{
    struct wasm_reader rd = {b, 0, 0, err};
    struct vstate vs = {&rd, m, NULL, 0, 0, NULL, 0, 0}, *v = &vs;
    int rc = 0;
    m->declared_refs = calloc(m->nfuncs ? m->nfuncs : 1, 1);
    if (!m->declared_refs) return wasm_fail(&rd, WASM_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < m->ntables; i++)
        TRY(check_lim(v, &m->tables[i].lim, UINT32_MAX, "table"));
    if (m->nmems > 1) return INVALID("multiple memories");
    for (uint32_t i = 0; i < m->nmems; i++)
        TRY(check_lim(v, &m->mems[i], WASM_MAX_PAGES, "memory"));
    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++) {
        TRY(check_cexpr(v, &m->globals[i].init, m->globals[i].type));
        if (m->globals[i].init.op == CE_REF_FUNC) m->declared_refs[m->globals[i].init.idx] = 1;
    }
    for (uint32_t i = 0; i < m->nexports; i++) {
        const struct wasm_export *e = &m->exports[i];
        uint32_t lim = e->kind == 0 ? m->nfuncs : e->kind == 1 ? m->ntables
                     : e->kind == 2 ? m->nmems : m->nglobals;
        if (e->idx >= lim) return INVALID("unknown export index %u", e->idx);
        if (e->kind == 0) m->declared_refs[e->idx] = 1;
    }
    TRY(unique_exports(v));
    if (m->start >= 0) {
        if ((uint64_t)m->start >= m->nfuncs) return INVALID("unknown function %lld", (long long)m->start);
        const struct wasm_functype *ft = &m->types[m->func_type[m->start]];
        if (ft->np || ft->nr) return INVALID("start function must have type [] -> []");
    }
    for (uint32_t i = 0; i < m->nelems; i++) {
        const struct wasm_elem *e = &m->elems[i];
        if (e->mode == SEG_ACTIVE) {
            TRY(need_table(v, e->table));
            if (m->tables[e->table].type != e->type) return INVALID("type mismatch (element segment)");
            TRY(check_cexpr(v, &e->offset, WASM_I32));
        }
        for (uint32_t k = 0; k < e->n; k++) {
            TRY(check_cexpr(v, &e->items[k], e->type));
            if (e->items[k].op == CE_REF_FUNC) m->declared_refs[e->items[k].idx] = 1;
        }
    }
    for (uint32_t i = 0; i < m->ndatas && m->datas; i++) {
        const struct wasm_data *d = &m->datas[i];
        if (d->mode == SEG_ACTIVE) {
            TRY(need_mem(v, d->mem));
            TRY(check_cexpr(v, &d->offset, WASM_I32));
        }
    }
    for (uint32_t f = m->nfunc_imports; f < m->nfuncs && !rc; f++) rc = validate_body(v, f);
    free(vs.vals);
    free(vs.ctls);
    return rc;
}
