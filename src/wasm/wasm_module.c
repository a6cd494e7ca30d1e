/* wasm_module.c - the public API around the pipeline: loading (decode,
 * validate, compile), instantiation (import matching, globals, tables,
 * memories, segment initialization, start function), exports, calls from
 * the host, and host-made functions, memories, tables and globals. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "wasm/wasm_int.h"

static int set_err(struct wasm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(struct wasm_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
        err->offset = 0;
    }
    return code;
}

const char *wasm_status_str(int code)
{
    switch (code) {
    case WASM_OK: return "ok";
    case WASM_ERR_MALFORMED: return "malformed module";
    case WASM_ERR_INVALID: return "invalid module";
    case WASM_ERR_LINK: return "incompatible import";
    case WASM_ERR_NOMEM: return "out of memory or limit exceeded";
    case WASM_ERR_ARG: return "bad argument";
    case WASM_TRAP_UNREACHABLE: return "unreachable";
    case WASM_TRAP_MEMORY: return "out of bounds memory access";
    case WASM_TRAP_TABLE: return "out of bounds table access";
    case WASM_TRAP_DIV_ZERO: return "integer divide by zero";
    case WASM_TRAP_OVERFLOW: return "integer overflow";
    case WASM_TRAP_CONVERSION: return "invalid conversion to integer";
    case WASM_TRAP_STACK: return "call stack exhausted";
    case WASM_TRAP_SIGNATURE: return "indirect call type mismatch";
    case WASM_TRAP_NULL: return "uninitialized element";
    case WASM_TRAP_FUEL: return "out of fuel";
    case WASM_TRAP_HOST: return "host function error";
    default: return "unknown error";
    }
}

/* --- modules --- */

int wasm_module_load(const uint8_t *bytes, size_t len, struct wasm_module **out,
                     struct wasm_error *err)
{
    struct wasm_error local;
    if (!err) err = &local;
    memset(err, 0, sizeof(*err));
    *out = NULL;
    struct wasm_module *m = calloc(1, sizeof(*m));
    if (!m) return set_err(err, WASM_ERR_NOMEM, "out of memory");
    int rc = wasm_decode(bytes, len, m, err);
    if (!rc) rc = wasm_validate_module(bytes, m, err);
    uint32_t ndef = m->nfuncs - m->nfunc_imports;
    if (!rc && ndef) {
        m->codes = calloc(ndef, sizeof(*m->codes));
        if (!m->codes) rc = set_err(err, WASM_ERR_NOMEM, "out of memory");
        for (uint32_t i = 0; !rc && i < ndef; i++)
            rc = wasm_compile_func(bytes, m, m->nfunc_imports + i, &m->codes[i], err);
    }
    if (rc) {
        wasm_module_clear(m);
        free(m);
        return rc;
    }
    for (uint32_t i = 0; i < ndef; i++) free(m->bodies[i].locals);
    free(m->bodies);
    m->bodies = NULL;
    *out = m;
    return 0;
}

void wasm_module_free(struct wasm_module *m)
{
    if (!m) return;
    wasm_module_clear(m);
    free(m);
}

size_t wasm_module_import_count(const struct wasm_module *m)
{
    return m->nimports;
}

int wasm_module_import(const struct wasm_module *m, size_t i, const char **module,
                       size_t *module_len, const char **name, size_t *name_len,
                       enum wasm_extern_kind *kind)
{
    if (i >= m->nimports) return WASM_ERR_ARG;
    if (module) *module = m->imports[i].module;
    if (module_len) *module_len = m->imports[i].module_len;
    if (name) *name = m->imports[i].name;
    if (name_len) *name_len = m->imports[i].name_len;
    if (kind) *kind = (enum wasm_extern_kind)m->imports[i].kind;
    return 0;
}

int wasm_module_import_functype(const struct wasm_module *m, size_t i, size_t *np, size_t *nr,
                                enum wasm_type *types, size_t cap)
{
    if (i >= m->nimports || m->imports[i].kind != WASM_EXTERN_FUNC) return WASM_ERR_ARG;
    const struct wasm_functype *t = &m->types[m->func_type[m->imports[i].idx]];
    *np = t->np;
    *nr = t->nr;
    for (size_t k = 0; k < (size_t)t->np + t->nr && k < cap; k++) types[k] = (enum wasm_type)t->t[k];
    return 0;
}

size_t wasm_module_export_count(const struct wasm_module *m)
{
    return m->nexports;
}

int wasm_module_export(const struct wasm_module *m, size_t i, const char **name,
                       size_t *name_len, enum wasm_extern_kind *kind)
{
    if (i >= m->nexports) return WASM_ERR_ARG;
    if (name) *name = m->exports[i].name;
    if (name_len) *name_len = m->exports[i].name_len;
    if (kind) *kind = (enum wasm_extern_kind)m->exports[i].kind;
    return 0;
}

/* --- instances --- */

/* The value of e into v[0] (and v[1], the upper half of a v128). */
static void eval_cexpr2(const struct wasm_instance *inst, const struct wasm_cexpr *e, uint64_t v[2])
{
    v[1] = 0;
    switch (e->op) {
    case CE_CONST: v[0] = e->bits, v[1] = e->hi; break;
    case CE_GLOBAL: memcpy(v, inst->globals[e->idx]->v, 16); break;
    case CE_REF_FUNC: v[0] = (uint64_t)(uintptr_t)inst->funcs[e->idx]; break;
    default: v[0] = 0; break;
    }
}

static uint64_t eval_cexpr(const struct wasm_instance *inst, const struct wasm_cexpr *e)
{
    uint64_t v[2];
    eval_cexpr2(inst, e, v);
    return v[0];
}

/* Import subtyping of limits: the provided object is at least as large and
 * its maximum at most the required one. */
static int lim_match(uint32_t size, uint32_t max, const struct wasm_lim *want)
{
    if (size < want->min) return 0;
    if (want->max == WASM_NOMAX) return 1;
    return max != WASM_NOMAX && max <= want->max;
}

static int link_imports(struct wasm_instance *inst, const struct wasm_extern *imports,
                        struct wasm_error *err)
{
    const struct wasm_module *m = inst->mod;
    for (uint32_t i = 0; i < m->nimports; i++) {
        const struct wasm_import *im = &m->imports[i];
        const struct wasm_extern *ex = &imports[i];
        if (ex->kind != im->kind || !ex->of.func)
            return set_err(err, WASM_ERR_LINK, "incompatible import type for %s.%s", im->module, im->name);
        int ok = 1;
        switch (im->kind) {
        case WASM_EXTERN_FUNC:
            ok = wasm_functype_eq(ex->of.func->type, &m->types[m->func_type[im->idx]]);
            inst->funcs[im->idx] = ex->of.func;
            break;
        case WASM_EXTERN_TABLE: {
            const struct wasm_tabledef *td = &m->tables[im->idx];
            ok = ex->of.table->type == td->type &&
                 lim_match(ex->of.table->size, ex->of.table->max, &td->lim);
            inst->tables[im->idx] = ex->of.table;
            break;
        }
        case WASM_EXTERN_MEMORY:
            ok = lim_match(ex->of.memory->pages, ex->of.memory->max, &m->mems[im->idx]);
            inst->mems[im->idx] = ex->of.memory;
            break;
        case WASM_EXTERN_GLOBAL: {
            const struct wasm_globaldef *gd = &m->globals[im->idx];
            ok = ex->of.global->type == gd->type && ex->of.global->mut == gd->mut;
            inst->globals[im->idx] = ex->of.global;
            break;
        }
        }
        if (!ok) return set_err(err, WASM_ERR_LINK, "incompatible import type for %s.%s", im->module, im->name);
    }
    return 0;
}

static void *xcalloc(size_t n, size_t sz, int *fail)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) *fail = 1;
    return p;
}

static int alloc_instance(struct wasm_instance *inst, struct wasm_error *err)
{
    const struct wasm_module *m = inst->mod;
    int fail = 0;
    inst->funcs = xcalloc(m->nfuncs, sizeof(*inst->funcs), &fail);
    inst->own_funcs = xcalloc(m->nfuncs - m->nfunc_imports, sizeof(*inst->own_funcs), &fail);
    inst->tables = xcalloc(m->ntables, sizeof(*inst->tables), &fail);
    inst->own_tables = xcalloc(m->ntables - m->ntable_imports, sizeof(*inst->own_tables), &fail);
    inst->mems = m->nmems ? xcalloc(m->nmems, sizeof(*inst->mems), &fail) : NULL;
    inst->own_mems = xcalloc(m->nmems - m->nmem_imports, sizeof(*inst->own_mems), &fail);
    inst->globals = xcalloc(m->nglobals, sizeof(*inst->globals), &fail);
    inst->own_globals = xcalloc(m->nglobals - m->nglobal_imports, sizeof(*inst->own_globals), &fail);
    inst->elem_refs = xcalloc(m->nelems, sizeof(*inst->elem_refs), &fail);
    inst->elem_len = xcalloc(m->nelems, sizeof(*inst->elem_len), &fail);
    inst->data_len = xcalloc(m->datas ? m->ndatas : 0, sizeof(*inst->data_len), &fail);
    inst->stack = malloc((size_t)inst->lim.stack_slots * 8);
    inst->frames = malloc(((size_t)inst->lim.max_call_depth + 1) * sizeof(*inst->frames));
    if (fail || !inst->stack || !inst->frames) return set_err(err, WASM_ERR_NOMEM, "out of memory");
    inst->stack_end = inst->stack + inst->lim.stack_slots;
    inst->sp = inst->stack;
    return 0;
}

/* Defines the instance's own functions, globals, tables and memories. */
static int define_objects(struct wasm_instance *inst, struct wasm_error *err)
{
    const struct wasm_module *m = inst->mod;
    for (uint32_t i = m->nfunc_imports; i < m->nfuncs; i++) {
        struct wasm_func *f = &inst->own_funcs[i - m->nfunc_imports];
        f->type = &m->types[m->func_type[i]];
        f->inst = inst;
        f->code = &m->codes[i - m->nfunc_imports];
        inst->funcs[i] = f;
    }
    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++) {
        struct wasm_global *g = &inst->own_globals[i - m->nglobal_imports];
        g->type = m->globals[i].type;
        g->mut = m->globals[i].mut;
        eval_cexpr2(inst, &m->globals[i].init, g->v);
        inst->globals[i] = g;
    }
    for (uint32_t i = m->ntable_imports; i < m->ntables; i++) {
        struct wasm_table *t = &inst->own_tables[i - m->ntable_imports];
        t->type = m->tables[i].type;
        t->size = m->tables[i].lim.min;
        t->max = m->tables[i].lim.max;
        inst->tables[i] = t;
        if (t->size > WASM_MAX_TABLE) return set_err(err, WASM_ERR_NOMEM, "table too large");
        t->e = calloc((size_t)t->size + 1, 8);
        if (!t->e) return set_err(err, WASM_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = m->nmem_imports; i < m->nmems; i++) {
        struct wasm_memory *mem = &inst->own_mems[i - m->nmem_imports];
        mem->pages = m->mems[i].min;
        mem->max = m->mems[i].max; /* as declared: import matching sees it; grow applies the cap */
        inst->mems[i] = mem;
        if (mem->pages > inst->lim.max_pages)
            return set_err(err, WASM_ERR_NOMEM, "memory of %u pages exceeds the limit of %u",
                           mem->pages, inst->lim.max_pages);
        mem->size = (uint64_t)mem->pages * WASM_PAGE;
        mem->data = calloc((size_t)mem->size + 8, 1);
        if (!mem->data) return set_err(err, WASM_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < m->nelems; i++) {
        const struct wasm_elem *e = &m->elems[i];
        inst->elem_refs[i] = calloc((size_t)e->n + 1, 8);
        if (!inst->elem_refs[i]) return set_err(err, WASM_ERR_NOMEM, "out of memory");
        for (uint32_t k = 0; k < e->n; k++) inst->elem_refs[i][k] = eval_cexpr(inst, &e->items[k]);
        inst->elem_len[i] = e->mode == SEG_DECLARATIVE ? 0 : e->n;
    }
    for (uint32_t i = 0; m->datas && i < m->ndatas; i++) inst->data_len[i] = m->datas[i].len;
    return 0;
}

/* Active segments, in order, as table.init/memory.init then drop. */
static int init_segments(struct wasm_instance *inst, struct wasm_error *err)
{
    const struct wasm_module *m = inst->mod;
    for (uint32_t i = 0; i < m->nelems; i++) {
        const struct wasm_elem *e = &m->elems[i];
        if (e->mode != SEG_ACTIVE) continue;
        uint64_t off = (uint32_t)eval_cexpr(inst, &e->offset);
        struct wasm_table *t = inst->tables[e->table];
        if (off + e->n > t->size)
            return set_err(err, WASM_TRAP_TABLE, "out of bounds table access");
        if (e->n) memcpy(t->e + off, inst->elem_refs[i], (size_t)e->n * 8);
        inst->elem_len[i] = 0;
    }
    for (uint32_t i = 0; m->datas && i < m->ndatas; i++) {
        const struct wasm_data *d = &m->datas[i];
        if (d->mode != SEG_ACTIVE) continue;
        uint64_t off = (uint32_t)eval_cexpr(inst, &d->offset);
        struct wasm_memory *mem = inst->mems[d->mem];
        if (off + d->len > mem->size)
            return set_err(err, WASM_TRAP_MEMORY, "out of bounds memory access");
        if (d->len) memcpy(mem->data + off, d->bytes, d->len);
        inst->data_len[i] = 0;
    }
    return 0;
}

int wasm_instantiate(const struct wasm_module *m, const struct wasm_extern *imports, size_t n,
                     const struct wasm_limits *limits, struct wasm_instance **out,
                     struct wasm_error *err)
{
    struct wasm_error local;
    if (!err) err = &local;
    memset(err, 0, sizeof(*err));
    *out = NULL;
    if (n != m->nimports)
        return set_err(err, WASM_ERR_LINK, "%zu imports given, module needs %u", n, m->nimports);
    struct wasm_instance *inst = calloc(1, sizeof(*inst));
    if (!inst) return set_err(err, WASM_ERR_NOMEM, "out of memory");
    inst->mod = m;
    if (limits) inst->lim = *limits;
    if (!inst->lim.max_pages || inst->lim.max_pages > WASM_MAX_PAGES) inst->lim.max_pages = WASM_MAX_PAGES;
    if (!inst->lim.max_call_depth) inst->lim.max_call_depth = 10000;
    if (!inst->lim.stack_slots) inst->lim.stack_slots = 1u << 20;
    int rc = alloc_instance(inst, err);
    if (!rc) rc = link_imports(inst, imports, err);
    if (!rc) rc = define_objects(inst, err);
    if (rc) {
        wasm_instance_free(inst);
        return rc;
    }
    /* From here on the instance's functions may escape into imported
     * tables, so a failing instance is still handed to the caller. */
    rc = init_segments(inst, err);
    if (!rc && m->start >= 0) rc = wasm_call(inst, inst->funcs[m->start], NULL, 0, NULL, err);
    *out = inst;
    return rc;
}

void wasm_instance_free(struct wasm_instance *inst)
{
    if (!inst) return;
    const struct wasm_module *m = inst->mod;
    if (inst->own_tables)
        for (uint32_t i = 0; i < m->ntables - m->ntable_imports; i++) free(inst->own_tables[i].e);
    if (inst->own_mems)
        for (uint32_t i = 0; i < m->nmems - m->nmem_imports; i++) free(inst->own_mems[i].data);
    if (inst->elem_refs)
        for (uint32_t i = 0; i < m->nelems; i++) free(inst->elem_refs[i]);
    free(inst->funcs);
    free(inst->own_funcs);
    free(inst->tables);
    free(inst->own_tables);
    free(inst->mems);
    free(inst->own_mems);
    free(inst->globals);
    free(inst->own_globals);
    free(inst->elem_refs);
    free(inst->elem_len);
    free(inst->data_len);
    free(inst->stack);
    free(inst->frames);
    free(inst);
}

int wasm_instance_export(struct wasm_instance *inst, const char *name, size_t len,
                         struct wasm_extern *out)
{
    const struct wasm_module *m = inst->mod;
    for (uint32_t i = 0; i < m->nexports; i++) {
        const struct wasm_export *e = &m->exports[i];
        if (e->name_len != len || memcmp(e->name, name, len)) continue;
        out->kind = (enum wasm_extern_kind)e->kind;
        switch (e->kind) {
        case WASM_EXTERN_FUNC: out->of.func = inst->funcs[e->idx]; break;
        case WASM_EXTERN_TABLE: out->of.table = inst->tables[e->idx]; break;
        case WASM_EXTERN_MEMORY: out->of.memory = inst->mems[e->idx]; break;
        default: out->of.global = inst->globals[e->idx]; break;
        }
        return 0;
    }
    return WASM_ERR_ARG;
}

struct wasm_func *wasm_instance_func(struct wasm_instance *inst, const char *name)
{
    struct wasm_extern ex;
    if (wasm_instance_export(inst, name, strlen(name), &ex) || ex.kind != WASM_EXTERN_FUNC) return NULL;
    return ex.of.func;
}

struct wasm_memory *wasm_instance_memory(struct wasm_instance *inst)
{
    return inst->mod->nmems ? inst->mems[0] : NULL;
}

void wasm_instance_set_fuel(struct wasm_instance *inst, uint64_t fuel)
{
    inst->lim.fuel = fuel;
}

uint64_t wasm_instance_fuel_left(const struct wasm_instance *inst)
{
    return inst->fuel;
}

void wasm_instance_set_user(struct wasm_instance *inst, void *user)
{
    inst->user = user;
}

void *wasm_instance_user(const struct wasm_instance *inst)
{
    return inst->user;
}

/* --- calls --- */

int wasm_call(struct wasm_instance *inst, struct wasm_func *f, const struct wasm_val *args,
              size_t nargs, struct wasm_val *results, struct wasm_error *err)
{
    struct wasm_error local;
    if (!err) err = &local;
    memset(err, 0, sizeof(*err));
    const struct wasm_functype *t = f->type;
    if (nargs != t->np) return set_err(err, WASM_ERR_ARG, "expected %u arguments, got %zu", t->np, nargs);
    for (size_t i = 0; i < nargs; i++)
        if ((uint8_t)args[i].type != t->t[i])
            return set_err(err, WASM_ERR_ARG, "argument %zu has the wrong type", i);
    struct wasm_instance *ctx = inst ? inst : f->inst;
    if (!ctx) { /* a host function called from the host */
        const char *msg = f->host(f->user, NULL, args, results);
        if (msg) return set_err(err, WASM_TRAP_HOST, "%s", msg);
        return 0;
    }
    uint64_t *base = ctx->sp, *p = base;
    size_t need = (t->nps > t->nrs ? t->nps : t->nrs) + 1;
    if ((size_t)(ctx->stack_end - base) < need)
        return set_err(err, WASM_TRAP_STACK, "call stack exhausted");
    if (ctx->depth == 0) ctx->fuel = ctx->lim.fuel ? ctx->lim.fuel : UINT64_MAX;
    for (size_t i = 0; i < nargs; i++) p += wasm_val_to_slots(&args[i], p);
    int rc;
    if (f->host) {
        /* host_call semantics, inline: typed values straight through */
        struct wasm_val rv[64];
        static const uint64_t zero[2];
        for (uint32_t i = 0; i < t->nr; i++) wasm_val_from_slots(&rv[i], t->t[t->np + i], zero);
        const char *msg = f->host(f->user, inst, args, rv);
        if (msg) return set_err(err, WASM_TRAP_HOST, "%s", msg);
        p = base;
        for (uint32_t i = 0; i < t->nr; i++) {
            rv[i].type = (enum wasm_type)t->t[t->np + i];
            p += wasm_val_to_slots(&rv[i], p);
        }
        rc = 0;
    } else {
        rc = wasm_exec(ctx, f);
    }
    ctx->sp = base;
    if (rc) return set_err(err, rc, "%s", ctx->trap_msg);
    p = base;
    for (uint32_t i = 0; i < t->nr && results; i++)
        p += wasm_val_from_slots(&results[i], t->t[t->np + i], p);
    return 0;
}

size_t wasm_func_param_count(const struct wasm_func *f)
{
    return f->type->np;
}

size_t wasm_func_result_count(const struct wasm_func *f)
{
    return f->type->nr;
}

enum wasm_type wasm_func_param_type(const struct wasm_func *f, size_t i)
{
    return (enum wasm_type)f->type->t[i];
}

enum wasm_type wasm_func_result_type(const struct wasm_func *f, size_t i)
{
    return (enum wasm_type)f->type->t[f->type->np + i];
}

struct wasm_func *wasm_func_new_host(const enum wasm_type *params, size_t np,
                                     const enum wasm_type *results, size_t nr, wasm_host_fn fn,
                                     void *user)
{
    if (np > 64 || nr > 64 || !fn) return NULL;
    struct wasm_func *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->own.t = malloc(np + nr + 1);
    if (!f->own.t) {
        free(f);
        return NULL;
    }
    for (size_t i = 0; i < np; i++) f->own.t[i] = (uint8_t)params[i];
    for (size_t i = 0; i < nr; i++) f->own.t[np + i] = (uint8_t)results[i];
    f->own.np = (uint32_t)np;
    f->own.nr = (uint32_t)nr;
    f->own.nps = wasm_slots_of(f->own.t, f->own.np);
    f->own.nrs = wasm_slots_of(f->own.t + np, f->own.nr);
    f->type = &f->own;
    f->host = fn;
    f->user = user;
    f->host_owned = 1;
    return f;
}

void wasm_func_free(struct wasm_func *f)
{
    if (!f || !f->host_owned) return;
    free(f->own.t);
    free(f);
}

/* --- host-made memories, tables, globals --- */

struct wasm_memory *wasm_memory_new(uint32_t min, uint32_t max)
{
    if (min > WASM_MAX_PAGES || (max != WASM_NOMAX && max < min)) return NULL;
    struct wasm_memory *mem = calloc(1, sizeof(*mem));
    if (!mem) return NULL;
    mem->pages = min;
    mem->max = max;
    mem->size = (uint64_t)min * WASM_PAGE;
    mem->data = calloc((size_t)mem->size + 8, 1);
    mem->host_owned = 1;
    if (!mem->data) {
        free(mem);
        return NULL;
    }
    return mem;
}

void wasm_memory_free(struct wasm_memory *mem)
{
    if (!mem || !mem->host_owned) return;
    free(mem->data);
    free(mem);
}

uint8_t *wasm_memory_data(struct wasm_memory *mem)
{
    return mem->data;
}

size_t wasm_memory_size(const struct wasm_memory *mem)
{
    return (size_t)mem->size;
}

int64_t wasm_memory_grow(struct wasm_memory *mem, uint32_t delta)
{
    return wasm_mem_grow(mem, delta, 0);
}

int wasm_memory_read(const struct wasm_memory *mem, uint64_t addr, void *dst, size_t len)
{
    if (addr > mem->size || len > mem->size - addr) return WASM_TRAP_MEMORY;
    if (len) memcpy(dst, mem->data + addr, len);
    return 0;
}

int wasm_memory_write(struct wasm_memory *mem, uint64_t addr, const void *src, size_t len)
{
    if (addr > mem->size || len > mem->size - addr) return WASM_TRAP_MEMORY;
    if (len) memcpy(mem->data + addr, src, len);
    return 0;
}

struct wasm_table *wasm_table_new(enum wasm_type elem, uint32_t min, uint32_t max)
{
    if (!wasm_is_ref((uint8_t)elem) || (max != WASM_NOMAX && max < min) || min > WASM_MAX_TABLE) return NULL;
    struct wasm_table *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->e = calloc((size_t)min + 1, 8);
    if (!t->e) {
        free(t);
        return NULL;
    }
    t->type = (uint8_t)elem;
    t->size = min;
    t->max = max;
    t->host_owned = 1;
    return t;
}

void wasm_table_free(struct wasm_table *t)
{
    if (!t || !t->host_owned) return;
    free(t->e);
    free(t);
}

uint32_t wasm_table_size(const struct wasm_table *t)
{
    return t->size;
}

struct wasm_global *wasm_global_new(struct wasm_val v, int mutable_)
{
    struct wasm_global *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->type = (uint8_t)v.type;
    g->mut = mutable_ ? 1 : 0;
    wasm_val_to_slots(&v, g->v);
    g->host_owned = 1;
    return g;
}

void wasm_global_free(struct wasm_global *g)
{
    if (g && g->host_owned) free(g);
}

struct wasm_val wasm_global_get(const struct wasm_global *g)
{
    struct wasm_val v;
    wasm_val_from_slots(&v, g->type, g->v);
    return v;
}

int wasm_global_set(struct wasm_global *g, struct wasm_val v)
{
    if (!g->mut || (uint8_t)v.type != g->type) return WASM_ERR_ARG;
    wasm_val_to_slots(&v, g->v);
    return 0;
}
