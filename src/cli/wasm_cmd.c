/* wasm_cmd.c - `strand wasm`: the WebAssembly runtime from the command line,
 * through its public API only (src/wasm/wasm.h).
 *
 *   strand wasm spectest FILE.json        run a wast2json script; last line "N passed, M failed"
 *   strand wasm run FILE.wasm EXPORT [ARGS...] [--fuel N]
 *
 * The spec runner follows the reference interpreter's conventions: a
 * `spectest` module with print functions, globals (666), a table (10..20
 * funcref) and a memory (1..2 pages); `register` makes an instance's exports
 * importable under a name. Text-form assert_malformed/assert_invalid modules
 * are skipped (only binary ones can be loaded) and counted as skipped.
 * v128 values come as wast2json writes them, lanes of a "lane_type", and
 * expected float lanes may be nan:canonical / nan:arithmetic each. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm/wasm.h"

/* --- a small JSON reader: enough for wast2json output --- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jtype t;
    char *s;          /* strings (NUL-terminated, may contain NUL) and numbers */
    size_t slen;
    size_t n;         /* array items / object members */
    struct jv *items;
    char **keys;
};

struct jparser {
    const char *p, *end;
    int err;
};

static void jskip(struct jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hex4(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

static char *jstring(struct jparser *j, size_t *len)
{
    j->p++; /* opening quote */
    size_t cap = 16, n = 0;
    char *o = malloc(cap);
    while (o && j->p < j->end && *j->p != '"') {
        if (n + 8 > cap) {
            char *no = realloc(o, cap *= 2);
            if (!no) break;
            o = no;
        }
        char c = *j->p++;
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        if (j->p >= j->end) break;
        c = *j->p++;
        switch (c) {
        case 'n': o[n++] = '\n'; break;
        case 't': o[n++] = '\t'; break;
        case 'r': o[n++] = '\r'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'u': {
            uint32_t cp, lo;
            if (j->end - j->p < 4 || hex4(j->p, &cp)) goto bad;
            j->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
                j->p[1] == 'u' && !hex4(j->p + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                j->p += 6;
            }
            n += utf8_put(o + n, cp);
            break;
        }
        default: o[n++] = c; break;
        }
    }
    if (!o || j->p >= j->end) goto bad;
    j->p++;
    o[n] = 0;
    *len = n;
    return o;
bad:
    free(o);
    j->err = 1;
    return NULL;
}

static void jfree(struct jv *v)
{
    free(v->s);
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

static int jvalue(struct jparser *j, struct jv *v, int depth)
{
    memset(v, 0, sizeof(*v));
    jskip(j);
    if (j->p >= j->end || depth > 64) return j->err = 1, -1;
    char c = *j->p;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v->t = obj ? J_OBJ : J_ARR;
        j->p++;
        size_t cap = 0;
        for (;;) {
            jskip(j);
            if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
                j->p++;
                return 0;
            }
            if (v->n) {
                if (j->p >= j->end || *j->p != ',') return j->err = 1, -1;
                j->p++;
                jskip(j);
            }
            if (v->n == cap) {
                cap = cap ? cap * 2 : 8;
                struct jv *ni = realloc(v->items, cap * sizeof(*ni));
                if (!ni) return j->err = 1, -1;
                v->items = ni;
                if (obj) {
                    char **nk = realloc(v->keys, cap * sizeof(*nk));
                    if (!nk) return j->err = 1, -1;
                    v->keys = nk;
                }
            }
            if (obj) {
                size_t kl;
                if (j->p >= j->end || *j->p != '"') return j->err = 1, -1;
                char *k = jstring(j, &kl);
                if (!k) return -1;
                v->keys[v->n] = k;
                jskip(j);
                if (j->p >= j->end || *j->p != ':') {
                    memset(&v->items[v->n++], 0, sizeof(*v->items));
                    return j->err = 1, -1;
                }
                j->p++;
            }
            int rc = jvalue(j, &v->items[v->n], depth + 1);
            v->n++;
            if (rc) return rc;
        }
    }
    if (c == '"') {
        v->t = J_STR;
        v->s = jstring(j, &v->slen);
        return v->s ? 0 : -1;
    }
    const char *s = j->p;
    while (j->p < j->end && !strchr(",]} \n\r\t", *j->p)) j->p++;
    size_t n = (size_t)(j->p - s);
    if (n == 4 && !memcmp(s, "null", 4)) v->t = J_NULL;
    else if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5))) v->t = J_BOOL;
    else if (n) v->t = J_NUM;
    else return j->err = 1, -1;
    v->s = strndup(s, n);
    v->slen = n;
    return 0;
}

static const struct jv *jget(const struct jv *o, const char *key)
{
    if (!o || o->t != J_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->items[i];
    return NULL;
}

static const char *jstr(const struct jv *o, const char *key)
{
    const struct jv *v = jget(o, key);
    return v && (v->t == J_STR || v->t == J_NUM) ? v->s : NULL;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(b, cap *= 2);
        if (!nb) {
            free(b);
            b = NULL;
        }
        b = nb;
    }
    fclose(f);
    if (b) *len = n;
    return b;
}

/* --- the spectest host module --- */

static const char *print_fn(void *user, struct wasm_instance *caller, const struct wasm_val *args,
                            struct wasm_val *results)
{
    return NULL;
}

struct named {
    char *name;
    struct wasm_instance *inst;
};

struct runner {
    const char *json_path;
    char dir[4096];
    struct wasm_func *print[7];
    struct wasm_global *g_i32, *g_i64, *g_f32, *g_f64;
    struct wasm_table *table;
    struct wasm_memory *memory;
    struct wasm_module **mods;
    size_t nmods, capmods;
    struct wasm_instance **insts; /* every instance ever made, freed at the end */
    size_t ninsts, capinsts;
    struct named *names;          /* $name -> instance */
    size_t nnames;
    struct named *regs;           /* register "as" -> instance */
    size_t nregs;
    struct wasm_instance *cur;
    long passed, failed, skipped;
};

static int spectest_init(struct runner *r)
{
    static const enum wasm_type t_i32[] = {WASM_I32}, t_i64[] = {WASM_I64}, t_f32[] = {WASM_F32},
                                t_f64[] = {WASM_F64}, t_i32f32[] = {WASM_I32, WASM_F32},
                                t_f64f64[] = {WASM_F64, WASM_F64};
    r->print[0] = wasm_func_new_host(NULL, 0, NULL, 0, print_fn, NULL);
    r->print[1] = wasm_func_new_host(t_i32, 1, NULL, 0, print_fn, NULL);
    r->print[2] = wasm_func_new_host(t_i64, 1, NULL, 0, print_fn, NULL);
    r->print[3] = wasm_func_new_host(t_f32, 1, NULL, 0, print_fn, NULL);
    r->print[4] = wasm_func_new_host(t_f64, 1, NULL, 0, print_fn, NULL);
    r->print[5] = wasm_func_new_host(t_i32f32, 2, NULL, 0, print_fn, NULL);
    r->print[6] = wasm_func_new_host(t_f64f64, 2, NULL, 0, print_fn, NULL);
    struct wasm_val v = {.type = WASM_I32};
    v.of.i32 = 666;
    r->g_i32 = wasm_global_new(v, 0);
    v.type = WASM_I64;
    v.of.i64 = 666;
    r->g_i64 = wasm_global_new(v, 0);
    v.type = WASM_F32;
    v.of.f32 = 666.6f;
    r->g_f32 = wasm_global_new(v, 0);
    v.type = WASM_F64;
    v.of.f64 = 666.6;
    r->g_f64 = wasm_global_new(v, 0);
    r->table = wasm_table_new(WASM_FUNCREF, 10, 20);
    r->memory = wasm_memory_new(1, 2);
    for (int i = 0; i < 7; i++)
        if (!r->print[i]) return -1;
    return r->g_i32 && r->g_i64 && r->g_f32 && r->g_f64 && r->table && r->memory ? 0 : -1;
}

static void runner_free(struct runner *r)
{
    for (size_t i = r->ninsts; i-- > 0;) wasm_instance_free(r->insts[i]);
    for (size_t i = 0; i < r->nmods; i++) wasm_module_free(r->mods[i]);
    for (size_t i = 0; i < r->nnames; i++) free(r->names[i].name);
    for (size_t i = 0; i < r->nregs; i++) free(r->regs[i].name);
    free(r->mods);
    free(r->insts);
    free(r->names);
    free(r->regs);
    for (int i = 0; i < 7; i++) wasm_func_free(r->print[i]);
    wasm_global_free(r->g_i32);
    wasm_global_free(r->g_i64);
    wasm_global_free(r->g_f32);
    wasm_global_free(r->g_f64);
    wasm_table_free(r->table);
    wasm_memory_free(r->memory);
}

static int spectest_lookup(struct runner *r, const char *name, struct wasm_extern *ex)
{
    static const char *prints[] = {"print", "print_i32", "print_i64", "print_f32",
                                   "print_f64", "print_i32_f32", "print_f64_f64"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(name, prints[i])) {
            ex->kind = WASM_EXTERN_FUNC;
            ex->of.func = r->print[i];
            return 0;
        }
    ex->kind = WASM_EXTERN_GLOBAL;
    if (!strcmp(name, "global_i32")) return ex->of.global = r->g_i32, 0;
    if (!strcmp(name, "global_i64")) return ex->of.global = r->g_i64, 0;
    if (!strcmp(name, "global_f32")) return ex->of.global = r->g_f32, 0;
    if (!strcmp(name, "global_f64")) return ex->of.global = r->g_f64, 0;
    if (!strcmp(name, "table")) return ex->kind = WASM_EXTERN_TABLE, ex->of.table = r->table, 0;
    if (!strcmp(name, "memory")) return ex->kind = WASM_EXTERN_MEMORY, ex->of.memory = r->memory, 0;
    return -1;
}

static struct wasm_instance *find_named(struct named *list, size_t n, const char *name)
{
    for (size_t i = n; i-- > 0;)
        if (!strcmp(list[i].name, name)) return list[i].inst;
    return NULL;
}

static int add_named(struct named **list, size_t *n, const char *name, struct wasm_instance *inst)
{
    struct named *nl = realloc(*list, (*n + 1) * sizeof(**list));
    if (!nl) return -1;
    *list = nl;
    nl[*n].name = strdup(name);
    nl[*n].inst = inst;
    if (!nl[*n].name) return -1;
    (*n)++;
    return 0;
}

static int keep_inst(struct runner *r, struct wasm_instance *inst)
{
    if (r->ninsts == r->capinsts) {
        size_t nc = r->capinsts ? r->capinsts * 2 : 16;
        struct wasm_instance **ni = realloc(r->insts, nc * sizeof(*ni));
        if (!ni) return -1;
        r->insts = ni;
        r->capinsts = nc;
    }
    r->insts[r->ninsts++] = inst;
    return 0;
}

static int keep_mod(struct runner *r, struct wasm_module *m)
{
    if (r->nmods == r->capmods) {
        size_t nc = r->capmods ? r->capmods * 2 : 16;
        struct wasm_module **nm = realloc(r->mods, nc * sizeof(*nm));
        if (!nm) return -1;
        r->mods = nm;
        r->capmods = nc;
    }
    r->mods[r->nmods++] = m;
    return 0;
}

/* Loads FILENAME (relative to the JSON file). */
static int load_module(struct runner *r, const char *file, struct wasm_module **m, struct wasm_error *err)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s%s", r->dir, file);
    size_t len;
    char *bytes = read_file(path, &len);
    if (!bytes) {
        snprintf(err->msg, sizeof(err->msg), "cannot read %.200s", path);
        err->code = WASM_ERR_ARG;
        return WASM_ERR_ARG;
    }
    int rc = wasm_module_load((const uint8_t *)bytes, len, m, err);
    free(bytes);
    return rc;
}

/* Resolves m's imports against spectest and registered instances, then
 * instantiates. Any instance made is kept until the end (its functions may
 * live on in tables of other instances even if instantiation failed). */
static int link_and_instantiate(struct runner *r, struct wasm_module *m, struct wasm_instance **out,
                                struct wasm_error *err)
{
    size_t n = wasm_module_import_count(m);
    struct wasm_extern *ex = calloc(n ? n : 1, sizeof(*ex));
    if (!ex) return WASM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *mod, *name;
        size_t mlen, nlen;
        enum wasm_extern_kind kind;
        wasm_module_import(m, i, &mod, &mlen, &name, &nlen, &kind);
        ex[i].kind = kind;
        ex[i].of.func = NULL;
        struct wasm_instance *src;
        if (!strcmp(mod, "spectest")) {
            spectest_lookup(r, name, &ex[i]);
        } else if ((src = find_named(r->regs, r->nregs, mod))) {
            if (wasm_instance_export(src, name, nlen, &ex[i])) {
                ex[i].kind = kind;
                ex[i].of.func = NULL;
            }
        }
    }
    struct wasm_instance *inst = NULL;
    int rc = wasm_instantiate(m, ex, n, NULL, &inst, err);
    free(ex);
    if (inst) keep_inst(r, inst);
    *out = rc ? NULL : inst;
    return rc;
}

/* Bytes per lane of a v128 in wast2json's "lane_type", 0 if unknown. */
static size_t lane_size(const char *lt)
{
    if (!lt) return 0;
    if (!strcmp(lt, "i8")) return 1;
    if (!strcmp(lt, "i16")) return 2;
    if (!strcmp(lt, "i32") || !strcmp(lt, "f32")) return 4;
    if (!strcmp(lt, "i64") || !strcmp(lt, "f64")) return 8;
    return 0;
}

/* The lanes of a v128 JSON value: *n lanes of *size bytes, the strings in
 * (*vals)->items. -1 if malformed. */
static int v128_lanes(const struct jv *a, size_t *size, const struct jv **vals)
{
    *size = lane_size(jstr(a, "lane_type"));
    *vals = jget(a, "value");
    if (!*size || !*vals || (*vals)->t != J_ARR || (*vals)->n != 16 / *size) return -1;
    for (size_t i = 0; i < (*vals)->n; i++)
        if ((*vals)->items[i].t != J_STR) return -1;
    return 0;
}

/* A lane's integer pattern (wast2json writes unsigned decimals). */
static uint64_t lane_bits(const char *s)
{
    return s[0] == '-' ? (uint64_t)strtoll(s, NULL, 10) : strtoull(s, NULL, 10);
}

static int parse_v128(const struct jv *a, struct wasm_val *v)
{
    size_t size;
    const struct jv *vals;
    if (v128_lanes(a, &size, &vals)) return -1;
    v->type = WASM_V128;
    for (size_t i = 0; i < vals->n; i++) {
        uint64_t bits = lane_bits(vals->items[i].s);
        for (size_t k = 0; k < size; k++) v->of.v128[i * size + k] = (uint8_t)(bits >> 8 * k);
    }
    return 0;
}

/* Parses a JSON value of a wast2json argument into v. */
static int parse_val(const struct jv *a, struct wasm_val *v)
{
    const char *t = jstr(a, "type"), *s = jstr(a, "value");
    if (!t) return -1;
    memset(v, 0, sizeof(*v));
    if (!strcmp(t, "v128")) return parse_v128(a, v);
    if (!strcmp(t, "i32")) v->type = WASM_I32;
    else if (!strcmp(t, "i64")) v->type = WASM_I64;
    else if (!strcmp(t, "f32")) v->type = WASM_F32;
    else if (!strcmp(t, "f64")) v->type = WASM_F64;
    else if (!strcmp(t, "externref")) v->type = WASM_EXTERNREF;
    else if (!strcmp(t, "funcref")) v->type = WASM_FUNCREF;
    else return -1;
    if (v->type == WASM_EXTERNREF || v->type == WASM_FUNCREF) {
        if (!s || !strcmp(s, "null")) v->of.ref = NULL;
        else v->of.ref = (void *)(uintptr_t)(strtoull(s, NULL, 10) + 1);
        return 0;
    }
    if (!s) return -1;
    uint64_t bits = strtoull(s, NULL, 10);
    if (v->type == WASM_I32 || v->type == WASM_F32) v->of.u32 = (uint32_t)bits;
    else v->of.u64 = bits;
    return 0;
}

/* Does a float's bit pattern b (f32 if size 4, else f64) match s: a
 * decimal pattern, nan:canonical or nan:arithmetic? */
static int match_float(const char *s, uint64_t b, size_t size)
{
    uint64_t sign = size == 4 ? 0x80000000u : 0x8000000000000000ull;
    uint64_t quiet = size == 4 ? 0x7fc00000u : 0x7ff8000000000000ull;
    if (!strcmp(s, "nan:canonical")) return (b & ~sign) == quiet;
    if (!strcmp(s, "nan:arithmetic")) return (b & quiet) == quiet;
    return b == lane_bits(s);
}

/* Lane by lane, floats as match_float, integers modulo the lane width. */
static int match_v128(const struct jv *e, const struct wasm_val *got)
{
    size_t size;
    const struct jv *vals;
    if (got->type != WASM_V128 || v128_lanes(e, &size, &vals)) return 0;
    int fl = jstr(e, "lane_type")[0] == 'f';
    uint64_t mask = size == 8 ? UINT64_MAX : ((uint64_t)1 << 8 * size) - 1;
    for (size_t i = 0; i < vals->n; i++) {
        uint64_t b = 0;
        for (size_t k = 0; k < size; k++) b |= (uint64_t)got->of.v128[i * size + k] << 8 * k;
        const char *s = vals->items[i].s;
        if (fl ? !match_float(s, b, size) : b != (lane_bits(s) & mask)) return 0;
    }
    return 1;
}

/* Does got match the expected JSON value (nan:canonical, nan:arithmetic,
 * null, a bare funcref meaning any non-null one, v128 lanes)? */
static int match_val(const struct jv *e, const struct wasm_val *got)
{
    const char *t = jstr(e, "type"), *s = jstr(e, "value");
    if (!t) return 0;
    if (!strcmp(t, "v128")) return match_v128(e, got);
    if (!strcmp(t, "funcref")) {
        if (got->type != WASM_FUNCREF) return 0;
        if (!s) return got->of.ref != NULL;
        return !strcmp(s, "null") ? got->of.ref == NULL : got->of.ref != NULL;
    }
    if (!strcmp(t, "externref")) {
        if (got->type != WASM_EXTERNREF) return 0;
        if (!s || !strcmp(s, "null")) return got->of.ref == NULL;
        return got->of.ref == (void *)(uintptr_t)(strtoull(s, NULL, 10) + 1);
    }
    if (!s) return 0;
    if (!strcmp(t, "f32") && got->type == WASM_F32) return match_float(s, got->of.u32, 4);
    if (!strcmp(t, "f64") && got->type == WASM_F64) return match_float(s, got->of.u64, 8);
    if (!strcmp(t, "i32") && got->type == WASM_I32) return got->of.u32 == (uint32_t)strtoull(s, NULL, 10);
    if (!strcmp(t, "i64") && got->type == WASM_I64) return got->of.u64 == strtoull(s, NULL, 10);
    return 0;
}

static void fmt_val(const struct wasm_val *v, char *buf, size_t cap)
{
    switch (v->type) {
    case WASM_I32: snprintf(buf, cap, "i32:%" PRIu32, v->of.u32); break;
    case WASM_I64: snprintf(buf, cap, "i64:%" PRIu64, v->of.u64); break;
    case WASM_F32: snprintf(buf, cap, "f32:%" PRIu32 " (%g)", v->of.u32, (double)v->of.f32); break;
    case WASM_F64: snprintf(buf, cap, "f64:%" PRIu64 " (%g)", v->of.u64, v->of.f64); break;
    case WASM_V128: {
        uint32_t l[4];
        memcpy(l, v->of.v128, 16);
        snprintf(buf, cap, "v128:i32x4 0x%08" PRIx32 " 0x%08" PRIx32 " 0x%08" PRIx32
                 " 0x%08" PRIx32, l[0], l[1], l[2], l[3]);
        break;
    }
    default: snprintf(buf, cap, "ref:%s", v->of.ref ? "non-null" : "null"); break;
    }
}

/* An expected JSON value as "type:value" (a v128's lanes after its lane type). */
static void fmt_expected(const struct jv *e, char *buf, size_t cap)
{
    const char *t = jstr(e, "type"), *s = jstr(e, "value");
    const struct jv *lanes = jget(e, "value");
    const char *lt = jstr(e, "lane_type");
    size_t n = (size_t)snprintf(buf, cap, "%s:%s", t ? t : "?", s ? s : "");
    if (s || !lanes || lanes->t != J_ARR) return;
    n = (size_t)snprintf(buf, cap, "%s:%s", t ? t : "?", lt ? lt : "?");
    for (size_t i = 0; i < lanes->n && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, " %s", lanes->items[i].s ? lanes->items[i].s : "?");
}

/* Runs an invoke/get action; results into res (at most 64). Returns the
 * status and the result count in *nres. */
static int do_action(struct runner *r, const struct jv *act, struct wasm_val *res, size_t *nres,
                     struct wasm_error *err)
{
    memset(err, 0, sizeof(*err));
    *nres = 0;
    const char *type = jstr(act, "type"), *modname = jstr(act, "module");
    const struct jv *field = jget(act, "field");
    struct wasm_instance *inst = modname ? find_named(r->names, r->nnames, modname) : r->cur;
    if (!inst || !type || !field || field->t != J_STR) {
        snprintf(err->msg, sizeof(err->msg), "no module for the action");
        return err->code = WASM_ERR_ARG;
    }
    struct wasm_extern ex;
    if (wasm_instance_export(inst, field->s, field->slen, &ex)) {
        snprintf(err->msg, sizeof(err->msg), "unknown export \"%s\"", field->s);
        return err->code = WASM_ERR_ARG;
    }
    if (!strcmp(type, "get")) {
        if (ex.kind != WASM_EXTERN_GLOBAL) return err->code = WASM_ERR_ARG;
        res[0] = wasm_global_get(ex.of.global);
        *nres = 1;
        return 0;
    }
    if (ex.kind != WASM_EXTERN_FUNC) return err->code = WASM_ERR_ARG;
    const struct jv *args = jget(act, "args");
    struct wasm_val av[64];
    size_t na = args ? args->n : 0;
    if (na > 64) return err->code = WASM_ERR_ARG;
    for (size_t i = 0; i < na; i++)
        if (parse_val(&args->items[i], &av[i])) {
            snprintf(err->msg, sizeof(err->msg), "unsupported argument type");
            return err->code = WASM_ERR_ARG;
        }
    size_t nr = wasm_func_result_count(ex.of.func);
    if (nr > 64) return err->code = WASM_ERR_ARG;
    int rc = wasm_call(inst, ex.of.func, av, na, res, err);
    if (!rc) *nres = nr;
    return rc;
}

#define FAIL(line, ...)                                                                      \
    do {                                                                                     \
        r->failed++;                                                                         \
        printf("%s:%ld: ", r->json_path, (long)(line));                                      \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
    } while (0)

static void run_command(struct runner *r, const struct jv *c)
{
    const char *type = jstr(c, "type"), *line_s = jstr(c, "line"), *file = jstr(c, "filename");
    const char *mtype = jstr(c, "module_type");
    long line = line_s ? strtol(line_s, NULL, 10) : 0;
    struct wasm_error err;
    memset(&err, 0, sizeof(err));
    struct wasm_module *m = NULL;
    struct wasm_instance *inst = NULL;
    struct wasm_val res[64];
    size_t nres;
    if (!type) return;
    if (!strcmp(type, "module")) {
        r->cur = NULL;
        if (!file || load_module(r, file, &m, &err)) {
            FAIL(line, "module failed to load: %s", err.msg);
            return;
        }
        keep_mod(r, m);
        if (link_and_instantiate(r, m, &inst, &err)) {
            FAIL(line, "module failed to instantiate: %s", err.msg);
            return;
        }
        r->cur = inst;
        const char *name = jstr(c, "name");
        if (name) add_named(&r->names, &r->nnames, name, inst);
        return;
    }
    if (!strcmp(type, "register")) {
        const char *as = jstr(c, "as"), *name = jstr(c, "name");
        struct wasm_instance *src = name ? find_named(r->names, r->nnames, name) : r->cur;
        if (!as || !src) {
            FAIL(line, "register: no module");
            return;
        }
        add_named(&r->regs, &r->nregs, as, src);
        return;
    }
    if (!strcmp(type, "action")) {
        int rc = do_action(r, jget(c, "action"), res, &nres, &err);
        if (rc) FAIL(line, "action failed: %s", err.msg);
        else r->passed++;
        return;
    }
    if (!strcmp(type, "assert_return")) {
        int rc = do_action(r, jget(c, "action"), res, &nres, &err);
        const struct jv *exp = jget(c, "expected");
        size_t ne = exp ? exp->n : 0;
        if (rc) {
            FAIL(line, "assert_return: %s", err.msg);
            return;
        }
        if (ne != nres) {
            FAIL(line, "assert_return: %zu results, expected %zu", nres, ne);
            return;
        }
        for (size_t i = 0; i < ne; i++)
            if (!match_val(&exp->items[i], &res[i])) {
                char got[96], want[256];
                fmt_val(&res[i], got, sizeof(got));
                fmt_expected(&exp->items[i], want, sizeof(want));
                FAIL(line, "assert_return: result %zu is %s, expected %s", i, got, want);
                return;
            }
        r->passed++;
        return;
    }
    if (!strcmp(type, "assert_trap") || !strcmp(type, "assert_exhaustion")) {
        int rc = do_action(r, jget(c, "action"), res, &nres, &err);
        const char *want = jstr(c, "text");
        if (rc <= WASM_TRAP_UNREACHABLE) {
            if (!strcmp(type, "assert_exhaustion") && rc != WASM_TRAP_STACK)
                FAIL(line, "%s: trapped with \"%s\", expected stack exhaustion", type, err.msg);
            else if (want && strncmp(want, err.msg, strlen(err.msg)))
                FAIL(line, "%s: trapped with \"%s\", expected \"%s\"", type, err.msg, want);
            else r->passed++;
        } else {
            FAIL(line, "%s: %s, expected a trap \"%s\"", type, rc ? err.msg : "returned", want);
        }
        return;
    }
    if (!strcmp(type, "assert_invalid") || !strcmp(type, "assert_malformed")) {
        if (mtype && strcmp(mtype, "binary")) {
            r->skipped++;
            return;
        }
        if (!file) return;
        int rc = load_module(r, file, &m, &err);
        if (rc == WASM_ERR_MALFORMED || rc == WASM_ERR_INVALID) {
            r->passed++;
        } else {
            if (!rc) wasm_module_free(m);
            FAIL(line, "%s: module loaded, expected \"%s\"", type, jstr(c, "text"));
        }
        return;
    }
    if (!strcmp(type, "assert_unlinkable") || !strcmp(type, "assert_uninstantiable")) {
        if (!file || load_module(r, file, &m, &err)) {
            FAIL(line, "%s: module failed to load: %s", type, err.msg);
            return;
        }
        keep_mod(r, m);
        int rc = link_and_instantiate(r, m, &inst, &err);
        const char *want = jstr(c, "text");
        int ok = !strcmp(type, "assert_unlinkable")
                     ? rc == WASM_ERR_LINK
                     : rc <= WASM_TRAP_UNREACHABLE && (!want || !strncmp(want, err.msg, strlen(err.msg)));
        if (ok) r->passed++;
        else FAIL(line, "%s: %s, expected \"%s\"", type, rc ? err.msg : "instantiated", want);
        return;
    }
    r->skipped++;
}

static int cmd_spectest(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "strand wasm: cannot read %s\n", path);
        return 2;
    }
    struct jparser jp = {text, text + len, 0};
    struct jv root;
    int rc = jvalue(&jp, &root, 0);
    free(text);
    const struct jv *cmds = rc ? NULL : jget(&root, "commands");
    if (!cmds || cmds->t != J_ARR) {
        fprintf(stderr, "strand wasm: %s: not a wast2json file\n", path);
        jfree(&root);
        return 2;
    }
    struct runner r;
    memset(&r, 0, sizeof(r));
    r.json_path = path;
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(r.dir, sizeof(r.dir), "%.*s/", (int)(slash - path), path);
    if (spectest_init(&r)) {
        fprintf(stderr, "strand wasm: out of memory\n");
        runner_free(&r);
        jfree(&root);
        return 2;
    }
    for (size_t i = 0; i < cmds->n; i++) run_command(&r, &cmds->items[i]);
    printf("%ld skipped\n", r.skipped);
    printf("%ld passed, %ld failed\n", r.passed, r.failed);
    long failed = r.failed;
    runner_free(&r);
    jfree(&root);
    return failed ? 1 : 0;
}

/* --- run --- */

static int parse_arg(const char *s, enum wasm_type t, struct wasm_val *v)
{
    char *end;
    errno = 0;
    v->type = t;
    switch (t) {
    case WASM_I32: {
        long long x = strtoll(s, &end, 0);
        if (x < INT32_MIN || x > UINT32_MAX) return -1;
        v->of.u32 = (uint32_t)x;
        break;
    }
    case WASM_I64:
        if (s[0] == '-') v->of.i64 = strtoll(s, &end, 0);
        else v->of.u64 = strtoull(s, &end, 0);
        break;
    case WASM_F32: v->of.f32 = strtof(s, &end); break;
    case WASM_F64: v->of.f64 = strtod(s, &end); break;
    default: return -1;
    }
    return errno || *end || end == s ? -1 : 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *file = NULL, *export = NULL;
    const char *args[64];
    int nargs = 0;
    struct wasm_limits lim = {0};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--fuel") && i + 1 < argc) lim.fuel = strtoull(argv[++i], NULL, 0);
        else if (!file) file = argv[i];
        else if (!export) export = argv[i];
        else if (nargs < 64) args[nargs++] = argv[i];
        else {
            fprintf(stderr, "strand wasm run: too many arguments\n");
            return 2;
        }
    }
    if (!file || !export) {
        fprintf(stderr, "usage: strand wasm run FILE.wasm EXPORT [ARGS...] [--fuel N]\n");
        return 2;
    }
    size_t len;
    char *bytes = read_file(file, &len);
    if (!bytes) {
        fprintf(stderr, "strand wasm run: cannot read %s\n", file);
        return 2;
    }
    struct wasm_module *m;
    struct wasm_error err;
    int rc = wasm_module_load((const uint8_t *)bytes, len, &m, &err);
    free(bytes);
    if (rc) {
        fprintf(stderr, "%s: %s\n", file, err.msg);
        return 1;
    }
    /* imports: only the spectest module's */
    struct runner r;
    memset(&r, 0, sizeof(r));
    size_t ni = wasm_module_import_count(m);
    struct wasm_extern *ex = calloc(ni ? ni : 1, sizeof(*ex));
    int ret = 1;
    struct wasm_instance *inst = NULL;
    if (!ex || spectest_init(&r)) {
        fprintf(stderr, "strand wasm run: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < ni; i++) {
        const char *mod, *name;
        enum wasm_extern_kind kind;
        wasm_module_import(m, i, &mod, NULL, &name, NULL, &kind);
        ex[i].kind = kind;
        if (!strcmp(mod, "spectest") && !spectest_lookup(&r, name, &ex[i])) continue;
        fprintf(stderr, "%s: unresolved import %s.%s\n", file, mod, name);
        goto out;
    }
    rc = wasm_instantiate(m, ex, ni, &lim, &inst, &err);
    if (rc) {
        fprintf(stderr, "%s: %s\n", file, err.msg);
        goto out;
    }
    struct wasm_func *f = wasm_instance_func(inst, export);
    if (!f) {
        fprintf(stderr, "%s: no exported function \"%s\"\n", file, export);
        goto out;
    }
    size_t np = wasm_func_param_count(f), nr = wasm_func_result_count(f);
    if ((size_t)nargs != np || nr > 64) {
        fprintf(stderr, "%s: %s takes %zu arguments, %d given\n", file, export, np, nargs);
        goto out;
    }
    struct wasm_val av[64], rv[64];
    for (size_t i = 0; i < np; i++)
        if (parse_arg(args[i], wasm_func_param_type(f, i), &av[i])) {
            fprintf(stderr, "%s: bad argument \"%s\"\n", file, args[i]);
            goto out;
        }
    rc = wasm_call(inst, f, av, np, rv, &err);
    if (rc) {
        fprintf(stderr, "trap: %s\n", err.msg);
        goto out;
    }
    for (size_t i = 0; i < nr; i++) {
        switch (rv[i].type) {
        case WASM_I32: printf("%" PRId32 "\n", rv[i].of.i32); break;
        case WASM_I64: printf("%" PRId64 "\n", rv[i].of.i64); break;
        case WASM_F32: printf("%.9g\n", (double)rv[i].of.f32); break;
        case WASM_F64: printf("%.17g\n", rv[i].of.f64); break;
        case WASM_V128: {
            char b[96];
            fmt_val(&rv[i], b, sizeof(b));
            printf("%s\n", b);
            break;
        }
        default: printf("%s\n", rv[i].of.ref ? "ref" : "null"); break;
        }
    }
    ret = 0;
out:
    wasm_instance_free(inst);
    free(ex);
    runner_free(&r);
    wasm_module_free(m);
    return ret;
}

/* Entry point from main.c: argv[0] is "wasm". */
int wasm_cmd_main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "spectest")) return cmd_spectest(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_run(argc - 2, argv + 2);
    fprintf(stderr, "usage: strand wasm spectest FILE.json\n"
                    "       strand wasm run FILE.wasm EXPORT [ARGS...] [--fuel N]\n");
    return 2;
}
