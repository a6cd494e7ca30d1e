/* fuzz_wasm.c - libFuzzer target for the WebAssembly runtime (src/wasm).
 *
 * The input is a module. It is decoded and validated; if valid it is
 * instantiated with stub imports (host functions returning zeros, a small
 * memory and table, zero globals of every value type, v128 included) under
 * small limits (16 pages, call depth 200, 20000 units of fuel per call) and
 * every exported function is called with zero arguments. Beyond "no crash,
 * no sanitizer report": a load error always carries a message, a call
 * returns OK or a trap/arg status, and the instance keeps working after a
 * trap (the first export is called again). */
#include "wasm/wasm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const char *stub(void *user, struct wasm_instance *caller, const struct wasm_val *args,
                        struct wasm_val *results)
{
    (void)user, (void)caller, (void)args, (void)results;
    return NULL; /* results were zeroed by the runtime */
}

static void call_all(struct wasm_instance *inst, const struct wasm_module *m)
{
    struct wasm_val args[64], res[64];
    size_t ne = wasm_module_export_count(m);
    for (size_t i = 0; i < ne && i < 16; i++) {
        const char *name;
        size_t len;
        enum wasm_extern_kind kind;
        wasm_module_export(m, i, &name, &len, &kind);
        struct wasm_extern ex;
        ASSERT(wasm_instance_export(inst, name, len, &ex) == 0 && ex.kind == kind);
        if (kind != WASM_EXTERN_FUNC) continue;
        struct wasm_func *f = ex.of.func;
        size_t np = wasm_func_param_count(f);
        if (np > 64 || wasm_func_result_count(f) > 64) continue;
        for (size_t k = 0; k < np; k++) {
            memset(&args[k], 0, sizeof(args[k]));
            args[k].type = wasm_func_param_type(f, k);
        }
        struct wasm_error err;
        int rc = wasm_call(inst, f, args, np, res, &err);
        ASSERT(rc == 0 || rc <= WASM_TRAP_UNREACHABLE);
        if (rc) ASSERT(err.msg[0]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wasm_module *m;
    struct wasm_error err;
    int rc = wasm_module_load(data, size, &m, &err);
    if (rc) {
        ASSERT(m == NULL && err.msg[0] && err.code == rc);
        return 0;
    }
    size_t ni = wasm_module_import_count(m);
    struct wasm_extern *ex = calloc(ni ? ni : 1, sizeof(*ex));
    struct wasm_func **funcs = calloc(ni ? ni : 1, sizeof(*funcs));
    struct wasm_memory *mem = wasm_memory_new(1, 16);
    struct wasm_table *tf = wasm_table_new(WASM_FUNCREF, 10, 20);
    struct wasm_table *te = wasm_table_new(WASM_EXTERNREF, 10, 20);
    struct wasm_global *globals[10] = {0};
    static const enum wasm_type gt[] = {WASM_I32, WASM_I64, WASM_F32, WASM_F64, WASM_V128};
    for (int i = 0; i < 10; i++) {
        struct wasm_val v;
        memset(&v, 0, sizeof(v));
        v.type = gt[i % 5];
        globals[i] = wasm_global_new(v, i >= 5);
    }
    for (size_t i = 0; ex && funcs && i < ni; i++) {
        enum wasm_extern_kind kind;
        wasm_module_import(m, i, NULL, NULL, NULL, NULL, &kind);
        ex[i].kind = kind;
        ex[i].of.func = NULL;
        if (kind == WASM_EXTERN_MEMORY) ex[i].of.memory = mem;
        if (kind == WASM_EXTERN_TABLE) ex[i].of.table = tf;
        if (kind == WASM_EXTERN_GLOBAL) ex[i].of.global = globals[i % 10];
    }
    /* function imports: a stub of the import's own type */
    for (size_t i = 0; ex && funcs && i < ni; i++)
        if (ex[i].kind == WASM_EXTERN_FUNC) {
            enum wasm_type t[128];
            size_t np, nr;
            if (wasm_module_import_functype(m, i, &np, &nr, t, 128) == 0 && np <= 64 && nr <= 64)
                funcs[i] = wasm_func_new_host(t, np, t + np, nr, stub, NULL);
            ex[i].of.func = funcs[i];
        }
    struct wasm_limits lim = {.max_pages = 16, .max_call_depth = 200, .stack_slots = 1 << 16,
                              .fuel = 20000};
    struct wasm_instance *inst = NULL;
    if (ex && funcs) {
        rc = wasm_instantiate(m, ex, ni, &lim, &inst, &err);
        if (!rc) {
            call_all(inst, m);
            call_all(inst, m); /* after any traps of the first round */
        }
    }
    wasm_instance_free(inst);
    for (size_t i = 0; funcs && i < ni; i++) wasm_func_free(funcs[i]);
    for (int i = 0; i < 10; i++) wasm_global_free(globals[i]);
    wasm_memory_free(mem);
    wasm_table_free(tf);
    wasm_table_free(te);
    free(ex);
    free(funcs);
    wasm_module_free(m);
    return 0;
}
