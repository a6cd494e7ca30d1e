/* wasm_decode.c - the binary format: LEB128 readers, the section decoder
 * that fills a struct wasm_module, and the instruction decoder shared by the
 * validator and the compiler. Structural errors (bad LEB128, truncation,
 * wrong section order, unknown opcodes) are WASM_ERR_MALFORMED; index range
 * and type errors are left to wasm_validate.c unless they are cheaper here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "wasm/wasm_int.h"

int wasm_fail(struct wasm_reader *r, int code, const char *fmt, ...)
{
    if (r->err && r->err->code == WASM_OK) {
        char reason[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        r->err->code = code;
        r->err->offset = r->pos;
        snprintf(r->err->msg, sizeof(r->err->msg), "byte 0x%zx: %s", r->pos, reason);
    }
    return code;
}

#define MALFORMED(...) wasm_fail(r, WASM_ERR_MALFORMED, __VA_ARGS__)
#define INVALID(...) wasm_fail(r, WASM_ERR_INVALID, __VA_ARGS__)

int wasm_read_u8(struct wasm_reader *r, uint8_t *v)
{
    *v = 0;
    if (r->pos >= r->end) return MALFORMED("unexpected end");
    *v = r->b[r->pos++];
    return 0;
}

/* Unsigned or signed LEB128 of at most `bits` bits. The last byte's unused
 * bits must be zero (unsigned) or copies of the sign bit (signed). */
static int read_leb(struct wasm_reader *r, unsigned bits, int sign, uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift = 0;
    *out = 0;
    unsigned maxbytes = (bits + 6) / 7;
    for (unsigned i = 0;; i++) {
        if (r->pos >= r->end) return MALFORMED("unexpected end (LEB128)");
        uint8_t byte = r->b[r->pos++];
        if (i == maxbytes - 1) {
            if (byte & 0x80) return MALFORMED("integer representation too long");
            unsigned used = bits - shift; /* value bits in this byte */
            uint8_t rest = (uint8_t)(byte & 0x7f) >> used;
            if (sign) {
                uint8_t signbit = (byte >> (used - 1)) & 1;
                uint8_t want = signbit ? (uint8_t)(0x7f >> used) : 0;
                if (rest != want) return MALFORMED("integer too large");
            } else if (rest) {
                return MALFORMED("integer too large");
            }
        }
        v |= (uint64_t)(byte & 0x7f) << shift;
        shift += 7;
        if (!(byte & 0x80)) {
            if (sign && shift < 64 && (byte & 0x40)) v |= ~(uint64_t)0 << shift;
            break;
        }
    }
    *out = v;
    return 0;
}

int wasm_read_u32(struct wasm_reader *r, uint32_t *v)
{
    uint64_t x;
    *v = 0;
    int rc = read_leb(r, 32, 0, &x);
    if (rc) return rc;
    *v = (uint32_t)x;
    return 0;
}

int wasm_read_s32(struct wasm_reader *r, int32_t *v)
{
    uint64_t x;
    int rc = read_leb(r, 32, 1, &x);
    if (rc) return rc;
    *v = (int32_t)(uint32_t)x;
    return 0;
}

int wasm_read_s33(struct wasm_reader *r, int64_t *v)
{
    uint64_t x;
    int rc = read_leb(r, 33, 1, &x);
    if (rc) return rc;
    *v = (int64_t)x;
    return 0;
}

int wasm_read_s64(struct wasm_reader *r, int64_t *v)
{
    uint64_t x;
    int rc = read_leb(r, 64, 1, &x);
    if (rc) return rc;
    *v = (int64_t)x;
    return 0;
}

static int read_fixed(struct wasm_reader *r, size_t n, uint64_t *v)
{
    *v = 0;
    if (r->end - r->pos < n) return MALFORMED("unexpected end");
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) x |= (uint64_t)r->b[r->pos + i] << (8 * i);
    r->pos += n;
    *v = x;
    return 0;
}

static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

static int read_name(struct wasm_reader *r, char **out, uint32_t *len)
{
    uint32_t n;
    int rc = wasm_read_u32(r, &n);
    if (rc) return rc;
    if (r->end - r->pos < n) return MALFORMED("unexpected end (name)");
    if (!utf8_valid(r->b + r->pos, n)) return MALFORMED("malformed UTF-8 encoding");
    if (out) {
        char *s = malloc((size_t)n + 1);
        if (!s) return wasm_fail(r, WASM_ERR_NOMEM, "out of memory");
        memcpy(s, r->b + r->pos, n);
        s[n] = 0;
        *out = s;
        *len = n;
    }
    r->pos += n;
    return 0;
}

static int read_valtype(struct wasm_reader *r, uint8_t *t)
{
    int rc = wasm_read_u8(r, t);
    if (rc) return rc;
    if (wasm_is_val(*t)) return 0;
    r->pos--;
    return MALFORMED("malformed value type 0x%02x", *t);
}

static int read_reftype(struct wasm_reader *r, uint8_t *t)
{
    int rc = wasm_read_u8(r, t);
    if (rc) return rc;
    if (!wasm_is_ref(*t)) {
        r->pos--;
        return MALFORMED("malformed reference type");
    }
    return 0;
}

static int read_limits(struct wasm_reader *r, struct wasm_lim *l)
{
    uint8_t flag;
    int rc = wasm_read_u8(r, &flag);
    if (rc) return rc;
    if (flag > 1) {
        r->pos--;
        return MALFORMED("integer too large (limits flag)");
    }
    if ((rc = wasm_read_u32(r, &l->min))) return rc;
    l->max = WASM_NOMAX;
    if (flag && (rc = wasm_read_u32(r, &l->max))) return rc;
    if (flag && l->max == WASM_NOMAX) l->max = WASM_NOMAX - 1; /* keep "none" distinct */
    return 0;
}

/* Allocation of n elements of size sz, counted against the bytes left so a
 * forged count cannot ask for gigabytes (each element takes >= 1 byte). */
static void *alloc_vec(struct wasm_reader *r, uint32_t n, size_t sz, int *rc)
{
    *rc = 0;
    if (n > r->end - r->pos) {
        *rc = MALFORMED("unexpected end (vector length %u)", n);
        return NULL;
    }
    void *p = calloc(n ? n : 1, sz);
    if (!p) *rc = wasm_fail(r, WASM_ERR_NOMEM, "out of memory");
    return p;
}

static int read_memarg(struct wasm_reader *r, struct wasm_instr *in)
{
    int rc = wasm_read_u32(r, &in->a); /* align */
    return rc ? rc : wasm_read_u32(r, &in->b); /* offset */
}

/* A 0xfd instruction: op 0xfd00 + sub (sub < 256), immediates by kind. */
static int read_simd(struct wasm_reader *r, struct wasm_instr *in)
{
    uint32_t sub;
    int rc;
    size_t at = r->pos - 1;
    if ((rc = wasm_read_u32(r, &sub))) return rc;
    int kind = sub < 256 ? wasm_simd_kind(sub) : SK_NONE;
    if (kind == SK_NONE) {
        r->pos = at;
        return MALFORMED("illegal opcode 0xfd %u", sub);
    }
    in->op = 0xfd00 + sub;
    switch (kind) {
    case SK_LOAD: case SK_STORE:
        return read_memarg(r, in);
    case SK_LOAD_LANE: case SK_STORE_LANE:
        if ((rc = read_memarg(r, in))) return rc;
        return wasm_read_u8(r, &in->lane);
    case SK_EXTRACT: case SK_REPLACE:
        return wasm_read_u8(r, &in->lane);
    case SK_CONST: case SK_SHUFFLE:
        if ((rc = read_fixed(r, 8, &in->bits))) return rc;
        return read_fixed(r, 8, &in->hi);
    default:
        return 0;
    }
}

int wasm_read_instr(struct wasm_reader *r, struct wasm_instr *in)
{
    uint8_t op, z;
    int rc;
    uint64_t bits;
    in->a = in->b = 0;
    if ((rc = wasm_read_u8(r, &op))) return rc;
    in->op = op;
    switch (op) {
    case 0x00: case 0x01: case 0x05: case 0x0b: case 0x0f: case 0x1a: case 0x1b:
    case 0xd1:
        return 0;
    case 0x02: case 0x03: case 0x04:
        if ((rc = wasm_read_s33(r, &in->bt))) return rc;
        if (in->bt < 0 && in->bt != -64) {
            uint8_t t = (uint8_t)(0x80 + in->bt);
            if (in->bt < -64 || !wasm_is_val(t))
                return MALFORMED("malformed block type");
        }
        return 0;
    case 0x0c: case 0x0d: case 0x10: case 0x20: case 0x21: case 0x22: case 0x23:
    case 0x24: case 0x25: case 0x26: case 0xd2:
        return wasm_read_u32(r, &in->a);
    case 0x0e: {
        if ((rc = wasm_read_u32(r, &in->ntargets))) return rc;
        if (in->ntargets > r->end - r->pos) return MALFORMED("unexpected end (br_table)");
        in->targets_off = r->pos;
        uint32_t t;
        for (uint32_t i = 0; i < in->ntargets; i++)
            if ((rc = wasm_read_u32(r, &t))) return rc;
        return wasm_read_u32(r, &in->a);
    }
    case 0x11:
        if ((rc = wasm_read_u32(r, &in->a))) return rc;
        return wasm_read_u32(r, &in->b);
    case 0x1c: {
        if ((rc = wasm_read_u32(r, &in->a))) return rc;
        if (in->a != 1) return INVALID("invalid result arity (select)");
        uint8_t t;
        if ((rc = read_valtype(r, &t))) return rc;
        in->b = t;
        return 0;
    }
    case 0x3f: case 0x40:
        if ((rc = wasm_read_u8(r, &z))) return rc;
        if (z) return MALFORMED("zero byte expected");
        return 0;
    case 0x41: {
        int32_t v;
        if ((rc = wasm_read_s32(r, &v))) return rc;
        in->bits = (uint32_t)v;
        return 0;
    }
    case 0x42: {
        int64_t v;
        if ((rc = wasm_read_s64(r, &v))) return rc;
        in->bits = (uint64_t)v;
        return 0;
    }
    case 0x43:
        if ((rc = read_fixed(r, 4, &bits))) return rc;
        in->bits = bits;
        return 0;
    case 0x44:
        if ((rc = read_fixed(r, 8, &bits))) return rc;
        in->bits = bits;
        return 0;
    case 0xd0:
        if ((rc = read_reftype(r, &z))) return rc;
        in->a = z;
        return 0;
    case 0xfd:
        return read_simd(r, in);
    case 0xfc: {
        uint32_t sub;
        if ((rc = wasm_read_u32(r, &sub))) return rc;
        in->op = 0xfc00 | (sub & 0xff);
        if (sub > 17) return MALFORMED("illegal opcode 0xfc %u", sub);
        switch (sub) {
        case 8:
            if ((rc = wasm_read_u32(r, &in->a))) return rc;
            if ((rc = wasm_read_u8(r, &z))) return rc;
            if (z) return MALFORMED("zero byte expected");
            return 0;
        case 9: case 13: case 15: case 16: case 17:
            return wasm_read_u32(r, &in->a);
        case 10:
            for (int i = 0; i < 2; i++) {
                if ((rc = wasm_read_u8(r, &z))) return rc;
                if (z) return MALFORMED("zero byte expected");
            }
            return 0;
        case 11:
            if ((rc = wasm_read_u8(r, &z))) return rc;
            if (z) return MALFORMED("zero byte expected");
            return 0;
        case 12: case 14:
            if ((rc = wasm_read_u32(r, &in->a))) return rc;
            return wasm_read_u32(r, &in->b);
        default:
            return 0;
        }
    }
    default:
        if (op >= 0x28 && op <= 0x3e) return read_memarg(r, in);
        if (op >= 0x45 && op <= 0xc4) return 0;
        r->pos--;
        return MALFORMED("illegal opcode 0x%02x", op);
    }
}

void wasm_block_sig(const struct wasm_module *m, int64_t bt, const uint8_t **pt, uint32_t *np,
                    const uint8_t **rt, uint32_t *nr)
{
    static const uint8_t one[256] = {
        [0x7f] = 0x7f, [0x7e] = 0x7e, [0x7d] = 0x7d, [0x7c] = 0x7c, [0x7b] = 0x7b,
        [0x70] = 0x70, [0x6f] = 0x6f,
    };
    *pt = *rt = NULL;
    *np = *nr = 0;
    if (bt == -64) return;
    if (bt < 0) {
        *rt = &one[0x80 + bt];
        *nr = 1;
        return;
    }
    const struct wasm_functype *ft = &m->types[bt];
    *pt = ft->t, *np = ft->np, *rt = ft->t + ft->np, *nr = ft->nr;
}

/* A constant expression: one instruction then end. Types are checked by
 * the validator. */
static int read_cexpr(struct wasm_reader *r, struct wasm_cexpr *e)
{
    struct wasm_instr in;
    int rc = wasm_read_instr(r, &in);
    if (rc) return rc;
    e->idx = 0;
    e->bits = e->hi = 0;
    switch (in.op) {
    case 0x41: e->op = CE_CONST, e->type = WASM_I32, e->bits = in.bits; break;
    case 0x42: e->op = CE_CONST, e->type = WASM_I64, e->bits = in.bits; break;
    case 0x43: e->op = CE_CONST, e->type = WASM_F32, e->bits = in.bits; break;
    case 0x44: e->op = CE_CONST, e->type = WASM_F64, e->bits = in.bits; break;
    case 0xd0: e->op = CE_REF_NULL, e->type = (uint8_t)in.a; break;
    case 0xd2: e->op = CE_REF_FUNC, e->type = WASM_FUNCREF, e->idx = in.a; break;
    case 0x23: e->op = CE_GLOBAL, e->type = 0, e->idx = in.a; break;
    case 0xfd0c: e->op = CE_CONST, e->type = WASM_V128, e->bits = in.bits, e->hi = in.hi; break;
    case 0x0b: return INVALID("type mismatch (empty constant expression)");
    default: return INVALID("constant expression required");
    }
    uint8_t end;
    if ((rc = wasm_read_u8(r, &end))) return rc;
    if (end != 0x0b) {
        r->pos--;
        /* decode it to tell "illegal opcode" from "not constant" */
        if ((rc = wasm_read_instr(r, &in))) return rc;
        return INVALID("constant expression required");
    }
    return 0;
}

static int sec_types(struct wasm_reader *r, struct wasm_module *m)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (!(m->types = alloc_vec(r, n, sizeof(*m->types), &rc))) return rc;
    m->ntypes = n;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t form;
        if ((rc = wasm_read_u8(r, &form))) return rc;
        if (form != 0x60) return MALFORMED("integer representation too long (type form)");
        uint32_t np, nr;
        if ((rc = wasm_read_u32(r, &np))) return rc;
        if (np > r->end - r->pos) return MALFORMED("unexpected end");
        uint8_t *t = malloc((size_t)np + 1);
        if (!t) return wasm_fail(r, WASM_ERR_NOMEM, "out of memory");
        m->types[i].t = t;
        m->types[i].np = np;
        for (uint32_t k = 0; k < np; k++)
            if ((rc = read_valtype(r, &t[k]))) return rc;
        if ((rc = wasm_read_u32(r, &nr))) return rc;
        if (nr > r->end - r->pos) return MALFORMED("unexpected end");
        t = realloc(t, (size_t)np + nr + 1);
        if (!t) return wasm_fail(r, WASM_ERR_NOMEM, "out of memory");
        m->types[i].t = t;
        m->types[i].nr = nr;
        for (uint32_t k = 0; k < nr; k++)
            if ((rc = read_valtype(r, &t[np + k]))) return rc;
        m->types[i].nps = wasm_slots_of(t, np);
        m->types[i].nrs = wasm_slots_of(t + np, nr);
    }
    return 0;
}

/* Grows one of the index spaces by one entry. */
#define PUSH(arr, cnt, cap)                                                                  \
    do {                                                                                     \
        if ((cnt) == (cap)) {                                                                \
            uint32_t nc = (cap) ? (cap) * 2 : 8;                                             \
            void *np_ = realloc((arr), (size_t)nc * sizeof(*(arr)));                         \
            if (!np_) return wasm_fail(r, WASM_ERR_NOMEM, "out of memory");                  \
            (arr) = np_;                                                                     \
            memset((arr) + (cap), 0, (size_t)(nc - (cap)) * sizeof(*(arr)));                 \
            (cap) = nc;                                                                      \
        }                                                                                    \
    } while (0)

struct caps {
    uint32_t funcs, tables, mems, globals;
};

static int sec_imports(struct wasm_reader *r, struct wasm_module *m, struct caps *c)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (!(m->imports = alloc_vec(r, n, sizeof(*m->imports), &rc))) return rc;
    for (uint32_t i = 0; i < n; i++) {
        struct wasm_import *im = &m->imports[i];
        m->nimports = i + 1;
        if ((rc = read_name(r, &im->module, &im->module_len))) return rc;
        if ((rc = read_name(r, &im->name, &im->name_len))) return rc;
        uint8_t kind;
        if ((rc = wasm_read_u8(r, &kind))) return rc;
        im->kind = kind;
        switch (kind) {
        case 0: {
            uint32_t t;
            if ((rc = wasm_read_u32(r, &t))) return rc;
            if (t >= m->ntypes) return INVALID("unknown type %u", t);
            PUSH(m->func_type, m->nfuncs, c->funcs);
            im->idx = m->nfuncs;
            m->func_type[m->nfuncs++] = t;
            m->nfunc_imports++;
            break;
        }
        case 1:
            PUSH(m->tables, m->ntables, c->tables);
            im->idx = m->ntables;
            if ((rc = read_reftype(r, &m->tables[m->ntables].type))) return rc;
            if ((rc = read_limits(r, &m->tables[m->ntables].lim))) return rc;
            m->ntables++, m->ntable_imports++;
            break;
        case 2:
            PUSH(m->mems, m->nmems, c->mems);
            im->idx = m->nmems;
            if ((rc = read_limits(r, &m->mems[m->nmems]))) return rc;
            m->nmems++, m->nmem_imports++;
            break;
        case 3: {
            PUSH(m->globals, m->nglobals, c->globals);
            im->idx = m->nglobals;
            struct wasm_globaldef *g = &m->globals[m->nglobals];
            if ((rc = read_valtype(r, &g->type))) return rc;
            if ((rc = wasm_read_u8(r, &g->mut))) return rc;
            if (g->mut > 1) return MALFORMED("malformed mutability");
            m->nglobals++, m->nglobal_imports++;
            break;
        }
        default:
            r->pos--;
            return MALFORMED("malformed import kind");
        }
    }
    return 0;
}

static int sec_funcs(struct wasm_reader *r, struct wasm_module *m, struct caps *c, uint32_t *ndef)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (n > r->end - r->pos) return MALFORMED("unexpected end");
    *ndef = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t;
        if ((rc = wasm_read_u32(r, &t))) return rc;
        if (t >= m->ntypes) return INVALID("unknown type %u", t);
        PUSH(m->func_type, m->nfuncs, c->funcs);
        m->func_type[m->nfuncs++] = t;
    }
    return 0;
}

static int sec_tables(struct wasm_reader *r, struct wasm_module *m, struct caps *c)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (n > r->end - r->pos) return MALFORMED("unexpected end");
    for (uint32_t i = 0; i < n; i++) {
        PUSH(m->tables, m->ntables, c->tables);
        if ((rc = read_reftype(r, &m->tables[m->ntables].type))) return rc;
        if ((rc = read_limits(r, &m->tables[m->ntables].lim))) return rc;
        m->ntables++;
    }
    return 0;
}

static int sec_mems(struct wasm_reader *r, struct wasm_module *m, struct caps *c)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (n > r->end - r->pos) return MALFORMED("unexpected end");
    for (uint32_t i = 0; i < n; i++) {
        PUSH(m->mems, m->nmems, c->mems);
        if ((rc = read_limits(r, &m->mems[m->nmems]))) return rc;
        m->nmems++;
    }
    return 0;
}

static int sec_globals(struct wasm_reader *r, struct wasm_module *m, struct caps *c)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (n > r->end - r->pos) return MALFORMED("unexpected end");
    for (uint32_t i = 0; i < n; i++) {
        PUSH(m->globals, m->nglobals, c->globals);
        struct wasm_globaldef *g = &m->globals[m->nglobals];
        if ((rc = read_valtype(r, &g->type))) return rc;
        if ((rc = wasm_read_u8(r, &g->mut))) return rc;
        if (g->mut > 1) return MALFORMED("malformed mutability");
        if ((rc = read_cexpr(r, &g->init))) return rc;
        m->nglobals++;
    }
    return 0;
}

static int sec_exports(struct wasm_reader *r, struct wasm_module *m)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (!(m->exports = alloc_vec(r, n, sizeof(*m->exports), &rc))) return rc;
    for (uint32_t i = 0; i < n; i++) {
        struct wasm_export *e = &m->exports[i];
        m->nexports = i + 1;
        if ((rc = read_name(r, &e->name, &e->name_len))) return rc;
        if ((rc = wasm_read_u8(r, &e->kind))) return rc;
        if (e->kind > 3) return MALFORMED("malformed export kind");
        if ((rc = wasm_read_u32(r, &e->idx))) return rc;
    }
    return 0;
}

static int sec_elems(struct wasm_reader *r, struct wasm_module *m)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (!(m->elems = alloc_vec(r, n, sizeof(*m->elems), &rc))) return rc;
    for (uint32_t i = 0; i < n; i++) {
        struct wasm_elem *e = &m->elems[i];
        m->nelems = i + 1;
        uint32_t flags;
        if ((rc = wasm_read_u32(r, &flags))) return rc;
        if (flags > 7) return MALFORMED("malformed elements segment kind");
        e->type = WASM_FUNCREF;
        e->mode = (flags & 1) ? ((flags & 2) ? SEG_DECLARATIVE : SEG_PASSIVE) : SEG_ACTIVE;
        if ((flags & 3) == 2 && (rc = wasm_read_u32(r, &e->table))) return rc;
        if (!(flags & 1) && (rc = read_cexpr(r, &e->offset))) return rc;
        if (flags & 3) {
            uint8_t k;
            if (flags & 4) {
                if ((rc = read_reftype(r, &k))) return rc;
                e->type = k;
            } else {
                if ((rc = wasm_read_u8(r, &k))) return rc;
                if (k != 0) return MALFORMED("malformed element kind");
            }
        }
        uint32_t cnt;
        if ((rc = wasm_read_u32(r, &cnt))) return rc;
        if (!(e->items = alloc_vec(r, cnt, sizeof(*e->items), &rc))) return rc;
        e->n = cnt;
        for (uint32_t k = 0; k < cnt; k++) {
            if (flags & 4) {
                if ((rc = read_cexpr(r, &e->items[k]))) return rc;
            } else {
                e->items[k].op = CE_REF_FUNC;
                e->items[k].type = WASM_FUNCREF;
                if ((rc = wasm_read_u32(r, &e->items[k].idx))) return rc;
            }
        }
    }
    return 0;
}

static int sec_code(struct wasm_reader *r, struct wasm_module *m, uint32_t ndef)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (n != ndef) return MALFORMED("function and code section have inconsistent lengths");
    if (!(m->bodies = alloc_vec(r, n, sizeof(*m->bodies), &rc))) return rc;
    for (uint32_t i = 0; i < n; i++) {
        struct wasm_body *bd = &m->bodies[i];
        uint32_t size;
        if ((rc = wasm_read_u32(r, &size))) return rc;
        if (size > r->end - r->pos) return MALFORMED("unexpected end (code size)");
        size_t end = r->pos + size;
        struct wasm_reader sub = {r->b, r->pos, end, r->err};
        const struct wasm_functype *ft = &m->types[m->func_type[m->nfunc_imports + i]];
        uint32_t ngroups;
        if ((rc = wasm_read_u32(&sub, &ngroups))) return rc;
        uint64_t total = ft->np;
        size_t save = sub.pos;
        for (uint32_t g = 0; g < ngroups; g++) {
            uint32_t cnt;
            uint8_t t;
            if ((rc = wasm_read_u32(&sub, &cnt))) return rc;
            if ((rc = read_valtype(&sub, &t))) return rc;
            total += cnt;
            if (total > WASM_MAX_LOCALS) {
                r->pos = sub.pos;
                return MALFORMED("too many locals");
            }
        }
        bd->locals = malloc((size_t)total + 1);
        if (!bd->locals) return wasm_fail(r, WASM_ERR_NOMEM, "out of memory");
        memcpy(bd->locals, ft->t, ft->np);
        bd->nlocals = (uint32_t)total - ft->np;
        sub.pos = save;
        uint32_t k = ft->np;
        for (uint32_t g = 0; g < ngroups; g++) {
            uint32_t cnt;
            uint8_t t;
            wasm_read_u32(&sub, &cnt);
            read_valtype(&sub, &t);
            memset(bd->locals + k, t, cnt);
            k += cnt;
        }
        bd->off = sub.pos;
        bd->end = end;
        if (bd->end == bd->off || r->b[bd->end - 1] != 0x0b) {
            r->pos = end;
            return MALFORMED("section size mismatch (function body must end with end)");
        }
        r->pos = end;
    }
    return 0;
}

static int sec_data(struct wasm_reader *r, struct wasm_module *m)
{
    uint32_t n;
    int rc;
    if ((rc = wasm_read_u32(r, &n))) return rc;
    if (m->has_datacount && n != m->ndatas) return MALFORMED("data count and data section have inconsistent lengths");
    if (!(m->datas = alloc_vec(r, n, sizeof(*m->datas), &rc))) return rc;
    m->ndatas = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct wasm_data *d = &m->datas[i];
        m->ndatas = i + 1;
        uint32_t flags;
        if ((rc = wasm_read_u32(r, &flags))) return rc;
        if (flags > 2) return MALFORMED("malformed data segment kind");
        d->mode = flags == 1 ? SEG_PASSIVE : SEG_ACTIVE;
        if (flags == 2 && (rc = wasm_read_u32(r, &d->mem))) return rc;
        if (flags != 1 && (rc = read_cexpr(r, &d->offset))) return rc;
        if ((rc = wasm_read_u32(r, &d->len))) return rc;
        if (d->len > r->end - r->pos) return MALFORMED("unexpected end of section or function");
        d->bytes = malloc(d->len ? d->len : 1);
        if (!d->bytes) return wasm_fail(r, WASM_ERR_NOMEM, "out of memory");
        memcpy(d->bytes, r->b + r->pos, d->len);
        r->pos += d->len;
    }
    return 0;
}

/* Position of a section id in the required order (custom sections aside). */
static int sec_rank(uint8_t id)
{
    static const int rank[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10};
    return rank[id];
}

int wasm_decode(const uint8_t *b, size_t len, struct wasm_module *m, struct wasm_error *err)
{
    struct wasm_reader rd = {b, 0, len, err}, *r = &rd;
    struct caps caps = {0};
    uint64_t v;
    int rc;
    uint32_t ndef = 0;
    int seen_func = 0, seen_code = 0;
    m->start = -1;
    if (len < 4 || read_fixed(r, 4, &v) || v != 0x6d736100) return MALFORMED("magic header not detected");
    if (len < 8) return MALFORMED("unexpected end (version)");
    read_fixed(r, 4, &v);
    if (v != 1) return MALFORMED("unknown binary version");
    int last = 0;
    while (r->pos < r->end) {
        uint8_t id;
        uint32_t size;
        if ((rc = wasm_read_u8(r, &id))) return rc;
        if (id > 12) {
            r->pos--;
            return MALFORMED("malformed section id %u", id);
        }
        if ((rc = wasm_read_u32(r, &size))) return rc;
        if (size > r->end - r->pos) return MALFORMED("section size mismatch (unexpected end)");
        size_t send = r->pos + size;
        struct wasm_reader sr = {b, r->pos, send, err};
        if (id) {
            if (sec_rank(id) <= last) {
                r->pos--;
                return MALFORMED("unexpected content after last section (section %u out of order)", id);
            }
            last = sec_rank(id);
        }
        switch (id) {
        case 0: rc = read_name(&sr, NULL, NULL); sr.pos = send; break;
        case 1: rc = sec_types(&sr, m); break;
        case 2: rc = sec_imports(&sr, m, &caps); break;
        case 3: rc = sec_funcs(&sr, m, &caps, &ndef); seen_func = 1; break;
        case 4: rc = sec_tables(&sr, m, &caps); break;
        case 5: rc = sec_mems(&sr, m, &caps); break;
        case 6: rc = sec_globals(&sr, m, &caps); break;
        case 7: rc = sec_exports(&sr, m); break;
        case 8: {
            uint32_t s;
            rc = wasm_read_u32(&sr, &s);
            m->start = s;
            break;
        }
        case 9: rc = sec_elems(&sr, m); break;
        case 10: rc = sec_code(&sr, m, ndef); seen_code = 1; break;
        case 11: rc = sec_data(&sr, m); break;
        case 12: {
            uint32_t c;
            rc = wasm_read_u32(&sr, &c);
            m->has_datacount = 1;
            m->ndatas = c;
            break;
        }
        }
        if (rc) return rc;
        if (sr.pos != send) {
            r->pos = sr.pos;
            return MALFORMED("section size mismatch");
        }
        r->pos = send;
    }
    (void)seen_func;
    if (ndef && !seen_code) return MALFORMED("function and code section have inconsistent lengths");
    if (m->has_datacount && !m->datas && m->ndatas)
        return MALFORMED("data count and data section have inconsistent lengths");
    return 0;
}

void wasm_module_clear(struct wasm_module *m)
{
    for (uint32_t i = 0; i < m->ntypes; i++) free(m->types[i].t);
    free(m->types);
    for (uint32_t i = 0; i < m->nimports; i++) {
        free(m->imports[i].module);
        free(m->imports[i].name);
    }
    free(m->imports);
    free(m->func_type);
    free(m->tables);
    free(m->mems);
    free(m->globals);
    for (uint32_t i = 0; i < m->nexports; i++) free(m->exports[i].name);
    free(m->exports);
    for (uint32_t i = 0; i < m->nelems; i++) free(m->elems[i].items);
    free(m->elems);
    if (m->datas)
        for (uint32_t i = 0; i < m->ndatas; i++) free(m->datas[i].bytes);
    free(m->datas);
    free(m->declared_refs);
    if (m->bodies)
        for (uint32_t i = 0; i < m->nfuncs - m->nfunc_imports; i++) free(m->bodies[i].locals);
    free(m->bodies);
    if (m->codes)
        for (uint32_t i = 0; i < m->nfuncs - m->nfunc_imports; i++) {
            free(m->codes[i].w);
            free(m->codes[i].consts);
        }
    free(m->codes);
    memset(m, 0, sizeof(*m));
}
