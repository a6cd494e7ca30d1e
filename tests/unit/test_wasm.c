/* test_wasm.c - unit tests for the WebAssembly runtime (src/wasm) through
 * its public API, on modules built by hand as byte arrays: decode errors
 * with their offsets, validation errors, traps (and the instance staying
 * usable after them), the three limits (memory pages, call depth, fuel),
 * host function imports (also re-entering wasm from a host call), imported
 * memories and globals, bounds checks of the host's memory accessors, and
 * the two-slot layout of v128 values (test_v128). Prints "N passed, M
 * failed". */
#include "wasm/wasm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"



/* A module under construction: sections appended with their sizes. */
struct mb {
    uint8_t b[4096];
    size_t n;
};

static void mb_init(struct mb *m)
{
    static const uint8_t hdr[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
    memcpy(m->b, hdr, 8);
    m->n = 8;
}

/* Appends section id with the given content (content shorter than 128). */
static void mb_sec(struct mb *m, uint8_t id, const uint8_t *c, size_t len)
{
    m->b[m->n++] = id;
    m->b[m->n++] = (uint8_t)len;
    memcpy(m->b + m->n, c, len);
    m->n += len;
}

#define SEC(m, id, ...)                                                                      \
    do {                                                                                     \
        static const uint8_t c_[] = {__VA_ARGS__};                                           \
        mb_sec((m), (id), c_, sizeof(c_));                                                   \
    } while (0)

/* A module with one function of type (i32 i32) -> i32 exported as "f", its
 * body given as raw bytes (without the locals vector). */
static void one_func(struct mb *m, const uint8_t *body, size_t blen)
{
    mb_init(m);
    SEC(m, 1, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f);
    SEC(m, 3, 0x01, 0x00);
    SEC(m, 7, 0x01, 0x01, 'f', 0x00, 0x00);
    uint8_t code[128];
    code[0] = 0x01;
    code[1] = (uint8_t)(blen + 1);
    code[2] = 0x00; /* no locals */
    memcpy(code + 3, body, blen);
    mb_sec(m, 10, code, blen + 3);
}

static struct wasm_val i32v(int32_t x)
{
    struct wasm_val v = {.type = WASM_I32};
    v.of.i32 = x;
    return v;
}

static int load(struct mb *m, struct wasm_module **mod, struct wasm_error *err)
{
    return wasm_module_load(m->b, m->n, mod, err);
}

static void test_decode_errors(void)
{
    struct wasm_module *mod = (struct wasm_module *)1;
    struct wasm_error err;
    CHECK(wasm_module_load((const uint8_t *)"", 0, &mod, &err) == WASM_ERR_MALFORMED);
    CHECK(mod == NULL && err.code == WASM_ERR_MALFORMED && strstr(err.msg, "magic"));
    static const uint8_t badver[] = {0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00};
    CHECK(wasm_module_load(badver, sizeof(badver), &mod, &err) == WASM_ERR_MALFORMED);
    CHECK(strstr(err.msg, "version") != NULL);
    /* a section whose size runs past the end: reported at byte 10 */
    static const uint8_t trunc[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01};
    CHECK(wasm_module_load(trunc, sizeof(trunc), &mod, &err) == WASM_ERR_MALFORMED);
    CHECK(err.offset == 10 && strstr(err.msg, "byte 0xa:") == err.msg);
    /* an over-long LEB128 (6 bytes for a u32) in the type count */
    static const uint8_t leb[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
                                  0x01, 0x07, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00};
    CHECK(wasm_module_load(leb, sizeof(leb), &mod, &err) == WASM_ERR_MALFORMED);
    CHECK(err.offset == 15 && strstr(err.msg, "too long"));
    /* sections out of order: function (3) after code would be; here export before type */
    struct mb m;
    mb_init(&m);
    SEC(&m, 7, 0x00);
    SEC(&m, 1, 0x00);
    CHECK(load(&m, &mod, &err) == WASM_ERR_MALFORMED && strstr(err.msg, "order"));
    /* unknown opcode 0xff inside a body */
    static const uint8_t body[] = {0xff, 0x0b};
    one_func(&m, body, sizeof(body));
    CHECK(load(&m, &mod, &err) == WASM_ERR_MALFORMED && strstr(err.msg, "illegal opcode"));
    CHECK(err.offset == m.n - 2);
}

static void test_validation_errors(void)
{
    struct wasm_module *mod;
    struct wasm_error err;
    struct mb m;
    /* returns an i64 where i32 is declared */
    static const uint8_t b1[] = {0x42, 0x00, 0x0b};
    one_func(&m, b1, sizeof(b1));
    CHECK(load(&m, &mod, &err) == WASM_ERR_INVALID && strstr(err.msg, "type mismatch"));
    CHECK(err.offset == m.n - 1); /* at the final end */
    /* unknown local */
    static const uint8_t b2[] = {0x20, 0x05, 0x0b};
    one_func(&m, b2, sizeof(b2));
    CHECK(load(&m, &mod, &err) == WASM_ERR_INVALID && strstr(err.msg, "unknown local"));
    /* branch to a label that does not exist */
    static const uint8_t b3[] = {0x41, 0x00, 0x0c, 0x03, 0x0b};
    one_func(&m, b3, sizeof(b3));
    CHECK(load(&m, &mod, &err) == WASM_ERR_INVALID && strstr(err.msg, "unknown label"));
    /* memory access without a memory */
    static const uint8_t b4[] = {0x20, 0x00, 0x28, 0x02, 0x00, 0x0b};
    one_func(&m, b4, sizeof(b4));
    CHECK(load(&m, &mod, &err) == WASM_ERR_INVALID && strstr(err.msg, "unknown memory"));
    /* valid: add */
    static const uint8_t ok[] = {0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b};
    one_func(&m, ok, sizeof(ok));
    CHECK(load(&m, &mod, &err) == WASM_OK && mod);
    wasm_module_free(mod);
}

/* Loads and instantiates one_func(body) with no imports. */
static struct wasm_instance *inst_of(const uint8_t *body, size_t blen, const struct wasm_limits *lim,
                                     struct wasm_module **mod)
{
    struct mb m;
    struct wasm_error err;
    struct wasm_instance *inst = NULL;
    one_func(&m, body, blen);
    if (load(&m, mod, &err)) {
        fprintf(stderr, "load: %s\n", err.msg);
        return NULL;
    }
    if (wasm_instantiate(*mod, NULL, 0, lim, &inst, &err)) {
        fprintf(stderr, "instantiate: %s\n", err.msg);
        wasm_instance_free(inst);
        return NULL;
    }
    return inst;
}

static void test_calls_and_traps(void)
{
    struct wasm_module *mod;
    struct wasm_error err;
    /* f(a, b) = a / b (signed) */
    static const uint8_t body[] = {0x20, 0x00, 0x20, 0x01, 0x6d, 0x0b};
    struct wasm_instance *inst = inst_of(body, sizeof(body), NULL, &mod);
    CHECK(inst != NULL);
    if (!inst) return;
    struct wasm_func *f = wasm_instance_func(inst, "f");
    CHECK(f && wasm_func_param_count(f) == 2 && wasm_func_result_count(f) == 1);
    CHECK(wasm_func_param_type(f, 0) == WASM_I32 && wasm_func_result_type(f, 0) == WASM_I32);
    struct wasm_val args[2] = {i32v(-7), i32v(2)}, res[1];
    CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_OK && res[0].of.i32 == -3);
    args[1] = i32v(0);
    CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_TRAP_DIV_ZERO);
    CHECK(strcmp(err.msg, "integer divide by zero") == 0);
    args[0] = i32v(INT32_MIN);
    args[1] = i32v(-1);
    CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_TRAP_OVERFLOW);
    /* still usable after traps */
    args[0] = i32v(100);
    args[1] = i32v(7);
    CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_OK && res[0].of.i32 == 14);
    /* wrong arity / types are refused, not run */
    CHECK(wasm_call(inst, f, args, 1, res, &err) == WASM_ERR_ARG);
    args[1].type = WASM_I64;
    CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_ERR_ARG);
    CHECK(wasm_instance_func(inst, "nope") == NULL);
    wasm_instance_free(inst);
    wasm_module_free(mod);

    /* unreachable */
    static const uint8_t unr[] = {0x00, 0x0b};
    inst = inst_of(unr, sizeof(unr), NULL, &mod);
    CHECK(inst != NULL);
    if (!inst) return;
    args[0] = i32v(1), args[1] = i32v(2);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "f"), args, 2, res, &err) == WASM_TRAP_UNREACHABLE);
    CHECK(strcmp(err.msg, "unreachable") == 0);
    wasm_instance_free(inst);
    wasm_module_free(mod);
}

static void test_fuel(void)
{
    struct wasm_module *mod;
    struct wasm_error err;
    /* loop br 0 end; i32.const 0 */
    static const uint8_t body[] = {0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00, 0x0b};
    struct wasm_limits lim = {.fuel = 10000};
    struct wasm_instance *inst = inst_of(body, sizeof(body), &lim, &mod);
    CHECK(inst != NULL);
    if (!inst) return;
    struct wasm_func *f = wasm_instance_func(inst, "f");
    struct wasm_val args[2] = {i32v(0), i32v(0)}, res[1];
    CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_TRAP_FUEL);
    CHECK(strcmp(err.msg, "out of fuel") == 0 && wasm_instance_fuel_left(inst) == 0);
    /* fuel is reset for each call: it stops again, and a larger budget too */
    CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_TRAP_FUEL);
    wasm_instance_set_fuel(inst, 1000000);
    CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_TRAP_FUEL);
    wasm_instance_free(inst);
    wasm_module_free(mod);

    /* a terminating function leaves fuel over */
    static const uint8_t add[] = {0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b};
    inst = inst_of(add, sizeof(add), &lim, &mod);
    CHECK(inst != NULL);
    if (!inst) return;
    CHECK(wasm_call(inst, wasm_instance_func(inst, "f"), args, 2, res, &err) == WASM_OK);
    CHECK(wasm_instance_fuel_left(inst) > 0 && wasm_instance_fuel_left(inst) < 10000);
    wasm_instance_free(inst);
    wasm_module_free(mod);
}

static void test_call_depth(void)
{
    struct wasm_module *mod;
    struct wasm_error err;
    /* f(a, b) = f(a, b): endless recursion */
    static const uint8_t body[] = {0x20, 0x00, 0x20, 0x01, 0x10, 0x00, 0x0b};
    struct wasm_limits lim = {.max_call_depth = 50};
    struct wasm_instance *inst = inst_of(body, sizeof(body), &lim, &mod);
    CHECK(inst != NULL);
    if (!inst) return;
    struct wasm_val args[2] = {i32v(1), i32v(2)}, res[1];
    CHECK(wasm_call(inst, wasm_instance_func(inst, "f"), args, 2, res, &err) == WASM_TRAP_STACK);
    CHECK(strcmp(err.msg, "call stack exhausted") == 0);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "f"), args, 2, res, &err) == WASM_TRAP_STACK);
    wasm_instance_free(inst);
    wasm_module_free(mod);
    /* the default limit stops it too (no C recursion, no crash) */
    inst = inst_of(body, sizeof(body), NULL, &mod);
    CHECK(inst && wasm_call(inst, wasm_instance_func(inst, "f"), args, 2, res, &err) == WASM_TRAP_STACK);
    wasm_instance_free(inst);
    wasm_module_free(mod);
}

/* A module with memory (min 1) exported as "mem" and
 * "grow"(n) = memory.grow(n), "load"(a) = i32.load(a), "store"(a, v). */
static void mem_module(struct mb *m, uint8_t min_pages)
{
    mb_init(m);
    SEC(m, 1, 0x03, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x00, 0x60, 0x00, 0x00);
    SEC(m, 3, 0x03, 0x00, 0x00, 0x01);
    uint8_t mem[] = {0x01, 0x00, min_pages};
    mb_sec(m, 5, mem, sizeof(mem));
    SEC(m, 7, 0x04, 0x04, 'g', 'r', 'o', 'w', 0x00, 0x00, 0x04, 'l', 'o', 'a', 'd', 0x00, 0x01,
        0x05, 's', 't', 'o', 'r', 'e', 0x00, 0x02, 0x03, 'm', 'e', 'm', 0x02, 0x00);
    SEC(m, 10, 0x03,
        0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b,
        0x07, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b,
        0x09, 0x00, 0x20, 0x00, 0x20, 0x01, 0x36, 0x02, 0x00, 0x0b);
}

static void test_memory(void)
{
    struct mb m;
    struct wasm_module *mod;
    struct wasm_instance *inst = NULL;
    struct wasm_error err;
    struct wasm_val res[1];
    mem_module(&m, 1);
    CHECK(load(&m, &mod, &err) == WASM_OK);
    if (!mod) return;
    struct wasm_limits lim = {.max_pages = 4};
    CHECK(wasm_instantiate(mod, NULL, 0, &lim, &inst, &err) == WASM_OK);
    if (!inst) return;
    struct wasm_memory *mem = wasm_instance_memory(inst);
    CHECK(mem && wasm_memory_size(mem) == 65536);
    /* the page limit: 1 + 3 fits, one more does not */
    struct wasm_val a = i32v(3);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "grow"), &a, 1, res, &err) == WASM_OK && res[0].of.i32 == 1);
    a = i32v(1);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "grow"), &a, 1, res, &err) == WASM_OK && res[0].of.i32 == -1);
    CHECK(wasm_memory_size(mem) == 4 * 65536);
    /* host writes, wasm reads; wasm writes, host reads */
    uint32_t v = 0xdeadbeef, back = 0;
    CHECK(wasm_memory_write(mem, 100, &v, 4) == WASM_OK);
    a = i32v(100);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "load"), &a, 1, res, &err) == WASM_OK &&
          res[0].of.u32 == 0xdeadbeef);
    struct wasm_val sa[2] = {i32v(200), i32v(0x01020304)};
    CHECK(wasm_call(inst, wasm_instance_func(inst, "store"), sa, 2, NULL, &err) == WASM_OK);
    CHECK(wasm_memory_read(mem, 200, &back, 4) == WASM_OK && back == 0x01020304);
    /* bounds: the last 4 bytes are fine, one past is not, huge addresses neither */
    uint64_t end = wasm_memory_size(mem);
    CHECK(wasm_memory_write(mem, end - 4, &v, 4) == WASM_OK);
    CHECK(wasm_memory_write(mem, end - 3, &v, 4) == WASM_TRAP_MEMORY);
    CHECK(wasm_memory_read(mem, end, &back, 1) == WASM_TRAP_MEMORY);
    CHECK(wasm_memory_read(mem, UINT64_MAX - 1, &back, 4) == WASM_TRAP_MEMORY);
    CHECK(wasm_memory_read(mem, end, &back, 0) == WASM_OK);
    /* wasm out of bounds traps and leaves the instance usable */
    a = i32v((int32_t)(end - 3));
    CHECK(wasm_call(inst, wasm_instance_func(inst, "load"), &a, 1, res, &err) == WASM_TRAP_MEMORY);
    CHECK(strcmp(err.msg, "out of bounds memory access") == 0);
    a = i32v(-1);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "load"), &a, 1, res, &err) == WASM_TRAP_MEMORY);
    a = i32v(100);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "load"), &a, 1, res, &err) == WASM_OK);
    wasm_instance_free(inst);
    wasm_module_free(mod);

    /* a module whose initial memory exceeds the limit is refused */
    mem_module(&m, 8);
    CHECK(load(&m, &mod, &err) == WASM_OK);
    inst = (struct wasm_instance *)1;
    CHECK(wasm_instantiate(mod, NULL, 0, &lim, &inst, &err) == WASM_ERR_NOMEM && inst == NULL);
    wasm_module_free(mod);
}

static const char *host_add(void *user, struct wasm_instance *caller, const struct wasm_val *args,
                            struct wasm_val *results)
{
    int *calls = user;
    (*calls)++;
    if (args[0].of.i32 == 13) return "unlucky";
    results[0].of.i32 = args[0].of.i32 + args[1].of.i32;
    return NULL;
}

static void test_host_imports(void)
{
    /* imports env.add (i32 i32)->i32, env.mem (memory 1), env.g (mut i32);
     * "f"(a, b) = add(a, b) + g, and stores the sum at mem[0] */
    struct mb m;
    mb_init(&m);
    SEC(&m, 1, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f);
    SEC(&m, 2, 0x03, 0x03, 'e', 'n', 'v', 0x03, 'a', 'd', 'd', 0x00, 0x00,
        0x03, 'e', 'n', 'v', 0x03, 'm', 'e', 'm', 0x02, 0x00, 0x01,
        0x03, 'e', 'n', 'v', 0x01, 'g', 0x03, 0x7f, 0x01);
    SEC(&m, 3, 0x01, 0x00);
    SEC(&m, 7, 0x01, 0x01, 'f', 0x00, 0x01);
    SEC(&m, 10, 0x01, 0x16, 0x01, 0x01, 0x7f,
        0x20, 0x00, 0x20, 0x01, 0x10, 0x00, 0x23, 0x00, 0x6a, 0x22, 0x02,
        0x41, 0x00, 0x20, 0x02, 0x36, 0x02, 0x00, 0x0b);
    struct wasm_module *mod;
    struct wasm_error err;
    int rc = load(&m, &mod, &err);
    CHECK(rc == WASM_OK);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(wasm_module_import_count(mod) == 3);
    const char *im, *nm;
    size_t iml, nml;
    enum wasm_extern_kind kind;
    CHECK(wasm_module_import(mod, 1, &im, &iml, &nm, &nml, &kind) == 0 && !strcmp(im, "env") &&
          !strcmp(nm, "mem") && nml == 3 && kind == WASM_EXTERN_MEMORY);
    int calls = 0;
    enum wasm_type p[2] = {WASM_I32, WASM_I32}, r[1] = {WASM_I32};
    struct wasm_func *hf = wasm_func_new_host(p, 2, r, 1, host_add, &calls);
    struct wasm_memory *mem = wasm_memory_new(1, 1);
    struct wasm_global *g = wasm_global_new(i32v(1000), 1);
    struct wasm_extern ex[3] = {{WASM_EXTERN_FUNC, {.func = hf}},
                                {WASM_EXTERN_MEMORY, {.memory = mem}},
                                {WASM_EXTERN_GLOBAL, {.global = g}}};
    struct wasm_instance *inst = NULL;
    /* wrong kinds are refused at link time */
    struct wasm_extern wrong[3] = {ex[1], ex[0], ex[2]};
    CHECK(wasm_instantiate(mod, wrong, 3, NULL, &inst, &err) == WASM_ERR_LINK && inst == NULL);
    /* an immutable global where a mutable one is imported */
    struct wasm_global *gi = wasm_global_new(i32v(1), 0);
    struct wasm_extern wrong2[3] = {ex[0], ex[1], {WASM_EXTERN_GLOBAL, {.global = gi}}};
    CHECK(wasm_instantiate(mod, wrong2, 3, NULL, &inst, &err) == WASM_ERR_LINK);
    CHECK(wasm_instantiate(mod, ex, 3, NULL, &inst, &err) == WASM_OK);
    if (inst) {
        struct wasm_func *f = wasm_instance_func(inst, "f");
        struct wasm_val args[2] = {i32v(2), i32v(3)}, res[1];
        CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_OK && res[0].of.i32 == 1005 && calls == 1);
        uint32_t stored = 0;
        CHECK(wasm_memory_read(mem, 0, &stored, 4) == WASM_OK && stored == 1005);
        CHECK(wasm_global_set(g, i32v(1)) == WASM_OK);
        CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_OK && res[0].of.i32 == 6);
        CHECK(wasm_global_set(gi, i32v(5)) == WASM_ERR_ARG);
        /* a host error becomes a trap with its message */
        args[0] = i32v(13);
        CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_TRAP_HOST && !strcmp(err.msg, "unlucky"));
        args[0] = i32v(1);
        CHECK(wasm_call(inst, f, args, 2, res, &err) == WASM_OK && res[0].of.i32 == 5);
    }
    wasm_instance_free(inst);
    wasm_module_free(mod);
    wasm_func_free(hf);
    wasm_memory_free(mem);
    wasm_global_free(g);
    wasm_global_free(gi);
}

/* A host function that calls back into its caller (as proxy-wasm hosts
 * do to allocate guest memory): h(x) = caller.g(x, 10). */
static const char *host_reenter(void *user, struct wasm_instance *caller,
                                const struct wasm_val *args, struct wasm_val *results)
{
    struct wasm_val a[2] = {args[0], i32v(10)}, r[1];
    struct wasm_error err;
    struct wasm_func *g = wasm_instance_func(caller, "g");
    if (!g || wasm_call(caller, g, a, 2, r, &err)) return "re-entry failed";
    results[0] = r[0];
    return NULL;
}

static void test_reentry_and_linking(void)
{
    /* imports env.h (i32)->i32; f(a, b) = h(a) + b; g(a, b) = a * b */
    struct mb m;
    mb_init(&m);
    SEC(&m, 1, 0x02, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f);
    SEC(&m, 2, 0x01, 0x03, 'e', 'n', 'v', 0x01, 'h', 0x00, 0x01);
    SEC(&m, 3, 0x02, 0x00, 0x00);
    SEC(&m, 7, 0x02, 0x01, 'f', 0x00, 0x01, 0x01, 'g', 0x00, 0x02);
    SEC(&m, 10, 0x02, 0x09, 0x00, 0x20, 0x00, 0x10, 0x00, 0x20, 0x01, 0x6a, 0x0b,
        0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6c, 0x0b);
    struct wasm_module *mod;
    struct wasm_error err;
    CHECK(load(&m, &mod, &err) == WASM_OK);
    if (!mod) return;
    enum wasm_type p[1] = {WASM_I32};
    struct wasm_func *h = wasm_func_new_host(p, 1, p, 1, host_reenter, NULL);
    struct wasm_extern ex = {WASM_EXTERN_FUNC, {.func = h}};
    struct wasm_instance *a = NULL, *b = NULL;
    struct wasm_limits lim = {.fuel = 1000};
    CHECK(wasm_instantiate(mod, &ex, 1, &lim, &a, &err) == WASM_OK);
    if (a) {
        struct wasm_val args[2] = {i32v(3), i32v(4)}, res[1];
        CHECK(wasm_call(a, wasm_instance_func(a, "f"), args, 2, res, &err) == WASM_OK && res[0].of.i32 == 34);
        CHECK(wasm_instance_fuel_left(a) < 1000);
        /* another instance's export of the wrong type cannot satisfy h */
        struct wasm_extern fx;
        CHECK(wasm_instance_export(a, "f", 1, &fx) == 0 && fx.kind == WASM_EXTERN_FUNC);
        CHECK(wasm_instantiate(mod, &fx, 1, NULL, &b, &err) == WASM_ERR_LINK && b == NULL);
    }
    wasm_instance_free(b);
    wasm_instance_free(a);
    wasm_func_free(h);
    wasm_module_free(mod);
}

/* Fused and immediate instruction forms (wasm_compile.c turns these byte
 * patterns into one internal instruction each): the results and the traps
 * must be those of the separate instructions, at the edges too: sums that
 * wrap at 2^32 before the offset is added, offsets near 4 GiB, immediates
 * at the ends of their range, fuel on a fused loop back edge. Each body is
 * a function (i32 a, i32 b) -> i32 with one i32 local (2) and one page of
 * memory, run by fused_run. */
static int fused_run(const uint8_t *body, size_t blen, int32_t a, int32_t b, int32_t *out,
                     uint64_t fuel)
{
    struct mb m;
    mb_init(&m);
    SEC(&m, 1, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f);
    SEC(&m, 3, 0x01, 0x00);
    SEC(&m, 5, 0x01, 0x01, 0x01, 0x01); /* memory: 1 page, max 1 */
    SEC(&m, 7, 0x01, 0x01, 'f', 0x00, 0x00);
    uint8_t code[128];
    code[0] = 0x01;
    code[1] = (uint8_t)(blen + 3);
    code[2] = 0x01, code[3] = 0x01, code[4] = 0x7f; /* one i32 local */
    memcpy(code + 5, body, blen);
    mb_sec(&m, 10, code, blen + 5);
    struct wasm_module *mod;
    struct wasm_instance *inst = NULL;
    struct wasm_error err;
    struct wasm_limits lim = {.fuel = fuel};
    int rc = load(&m, &mod, &err);
    if (rc) {
        printf("load: %s\n", err.msg);
        return rc;
    }
    rc = wasm_instantiate(mod, NULL, 0, &lim, &inst, &err);
    if (!rc) {
        struct wasm_val args[2] = {i32v(a), i32v(b)}, res[1];
        rc = wasm_call(inst, wasm_instance_func(inst, "f"), args, 2, res, &err);
        if (!rc) *out = res[0].of.i32;
    }
    wasm_instance_free(inst);
    wasm_module_free(mod);
    return rc;
}

#define FUSED(fuel, a, b, out, ...)                                                          \
    ({                                                                                       \
        static const uint8_t fb_[] = {__VA_ARGS__};                                          \
        fused_run(fb_, sizeof(fb_), (a), (b), (out), (fuel));                                \
    })

/* i32.store 0x11223344 at 4, so loads have something to find */
#define PUT4 0x41, 0x04, 0x41, 0xc4, 0xe6, 0x88, 0x89, 0x01, 0x36, 0x02, 0x00

static void test_fused_loads(void)
{
    int32_t r = 0;
    /* i32.load (a + b): the sum wraps to 4 before the bounds check */
    CHECK(FUSED(0, -4, 8, &r, PUT4, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x28, 0x02, 0x00, 0x0b) == 0 &&
          r == 0x11223344, "%x", r);
    CHECK(FUSED(0, 65532, 4, &r, PUT4, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x28, 0x02, 0x00, 0x0b) ==
          WASM_TRAP_MEMORY);
    /* i32.load offset=4 (a + 8): wraps to 0, then + 4 */
    CHECK(FUSED(0, -8, 0, &r, PUT4, 0x20, 0x00, 0x41, 0x08, 0x6a, 0x28, 0x02, 0x04, 0x0b) == 0 &&
          r == 0x11223344, "%x", r);
    /* offset 0xfffffffc: the effective address is 4 GiB + a, out of bounds */
    CHECK(FUSED(0, 8, 0, &r, PUT4, 0x20, 0x00, 0x41, 0x08, 0x6a, 0x28, 0x02, 0xfc, 0xff, 0xff,
                0xff, 0x0f, 0x0b) == WASM_TRAP_MEMORY);
    /* the immediate at INT16_MIN: (a + -32768) with a = 32772 is 4 */
    CHECK(FUSED(0, 32772, 0, &r, PUT4, 0x20, 0x00, 0x41, 0x80, 0x80, 0x7e, 0x6a, 0x28, 0x02, 0x00,
                0x0b) == 0 && r == 0x11223344, "%x", r);
    /* the sum tee'd to a local and read again after the load: a + 8 + load */
    CHECK(FUSED(0, -4, 0, &r, PUT4, 0x20, 0x00, 0x41, 0x08, 0x6a, 0x22, 0x02, 0x28, 0x02, 0x00,
                0x20, 0x02, 0x6a, 0x0b) == 0 && r == 0x11223348, "%x", r);
    /* i64.load8_s through the fused form: byte 7 of 0x11223344 at 4 is 0x11 */
    CHECK(FUSED(0, 3, 4, &r, PUT4, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x30, 0x00, 0x00, 0xa7, 0x0b) == 0 &&
          r == 0x11, "%x", r);
}

static void test_fused_stores(void)
{
    int32_t r = 0;
    /* store b at (a + b), read back at a + b: address fused */
    CHECK(FUSED(0, 100, 7, &r, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x20, 0x01, 0x36, 0x02, 0x00, 0x20, 0x00,
                0x20, 0x01, 0x6a, 0x28, 0x02, 0x00, 0x0b) == 0 && r == 7, "%d", r);
    /* the last four bytes are in bounds, one more is not (nothing written) */
    CHECK(FUSED(0, 65530, 2, &r, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x20, 0x01, 0x36, 0x02, 0x00, 0x41,
                0x00, 0x0b) == 0);
    CHECK(FUSED(0, 65531, 2, &r, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x20, 0x01, 0x36, 0x02, 0x00, 0x41,
                0x00, 0x0b) == WASM_TRAP_MEMORY);
    /* address a + 16 with offset 0xfffffff0 (wraps in 32 bits, not in 64) */
    CHECK(FUSED(0, -16, 1, &r, 0x20, 0x00, 0x41, 0x10, 0x6a, 0x20, 0x01, 0x3a, 0x00, 0xf0, 0xff,
                0xff, 0xff, 0x0f, 0x41, 0x00, 0x0b) == WASM_TRAP_MEMORY);
    /* the stored value is the sum itself (the address reads the local the
     * sum was tee'd into): mem[a + 1] = a + 1 */
    CHECK(FUSED(0, 40, 0, &r, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x02, 0x20, 0x02, 0x36, 0x02, 0x00,
                0x20, 0x02, 0x28, 0x02, 0x00, 0x0b) == 0 && r == 41, "%d", r);
    /* value fused: mem[16] = a + b, wrapping */
    CHECK(FUSED(0, -1, 2, &r, 0x41, 0x10, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x36, 0x02, 0x00, 0x41, 0x10,
                0x28, 0x02, 0x00, 0x0b) == 0 && r == 1, "%d", r);
    /* value fused with an immediate, address out of bounds by one byte */
    CHECK(FUSED(0, 65533, 2, &r, 0x20, 0x00, 0x20, 0x01, 0x41, 0x80, 0x80, 0x7e, 0x6a, 0x36, 0x02,
                0x00, 0x41, 0x00, 0x0b) == WASM_TRAP_MEMORY);
    CHECK(FUSED(0, 65532, 2, &r, 0x20, 0x00, 0x20, 0x01, 0x41, 0x80, 0x80, 0x7e, 0x6a, 0x36, 0x02,
                0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b) == 0 && r == 2 - 32768, "%d", r);
}

static void test_fused_branches(void)
{
    int32_t r = 0;
    /* loop { a += -1; br_if (a >s b) } a: the i += k; compare-and-branch form */
    static const uint8_t down[] = {0x03, 0x40, 0x20, 0x00, 0x41, 0x7f, 0x6a, 0x22, 0x00, 0x20, 0x01,
                                   0x4a, 0x0d, 0x00, 0x0b, 0x20, 0x00, 0x0b};
    CHECK(fused_run(down, sizeof(down), 10, 3, &r, 0) == 0 && r == 3, "%d", r);
    CHECK(fused_run(down, sizeof(down), 10, -3, &r, 0) == 0 && r == -3, "%d", r);
    /* the same with local.set and the operands the other way: br_if (b <s a) */
    static const uint8_t down2[] = {0x03, 0x40, 0x20, 0x00, 0x41, 0x7f, 0x6a, 0x21, 0x00, 0x20, 0x01,
                                    0x20, 0x00, 0x48, 0x0d, 0x00, 0x0b, 0x20, 0x00, 0x0b};
    CHECK(fused_run(down2, sizeof(down2), 10, 3, &r, 0) == 0 && r == 3, "%d", r);
    /* against an immediate: br_if (a >u 0x80000000) counting down from
     * 0x80000005: unsigned compare with imm32 = INT32_MIN */
    static const uint8_t downu[] = {0x03, 0x40, 0x20, 0x00, 0x41, 0x7f, 0x6a, 0x22, 0x00, 0x41, 0x80,
                                    0x80, 0x80, 0x80, 0x78, 0x4b, 0x0d, 0x00, 0x0b, 0x20, 0x00, 0x0b};
    CHECK(fused_run(downu, sizeof(downu), (int32_t)0x80000005u, 0, &r, 0) == 0 && r == INT32_MIN,
          "%d", r);
    /* an endless fused loop (a += 1 while a != 0 from 1: 2^32 - 1 turns)
     * is stopped by fuel on its back edge */
    static const uint8_t endless[] = {0x03, 0x40, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x00, 0x41, 0x00,
                                      0x47, 0x0d, 0x00, 0x0b, 0x20, 0x00, 0x0b};
    CHECK(fused_run(endless, sizeof(endless), 1, 0, &r, 10000) == WASM_TRAP_FUEL);
    /* if (a <s INT32_MIN + 1) 1 else 2: compare-with-imm32 and branch */
    static const uint8_t lt[] = {0x20, 0x00, 0x41, 0x81, 0x80, 0x80, 0x80, 0x78, 0x48, 0x04, 0x7f, 0x41,
                                 0x01, 0x05, 0x41, 0x02, 0x0b, 0x0b};
    CHECK(fused_run(lt, sizeof(lt), INT32_MIN, 0, &r, 0) == 0 && r == 1, "%d", r);
    CHECK(fused_run(lt, sizeof(lt), INT32_MIN + 1, 0, &r, 0) == 0 && r == 2, "%d", r);
}

/* Forms that run two or three instructions as one: a store of x * y + c,
 * a second loop counter stepped before the fused i += k branch, an add
 * right before a direct call or a return, and the call's result read from
 * acc after the return. */
static void test_fused_more(void)
{
    int32_t r = 0;
    /* mem[a] = b + t, t = a * b tee'd to local 2; then mem[a] + local 2 */
    static const uint8_t madd[] = {0x20, 0x00, 0x20, 0x01, 0x20, 0x00, 0x20, 0x01, 0x6c, 0x22, 0x02,
                                   0x6a, 0x36, 0x02, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x20, 0x02,
                                   0x6a, 0x0b};
    CHECK(fused_run(madd, sizeof(madd), 8, 3, &r, 0) == 0 && r == 51, "%d", r);
    /* the product wraps: 8 * 0x40000001 is 8 */
    CHECK(fused_run(madd, sizeof(madd), 8, 0x40000001, &r, 0) == 0 && r == 0x40000011, "%x", r);
    /* the address's last 4 bytes fit, one more does not */
    CHECK(fused_run(madd, sizeof(madd), 65532, 1, &r, 0) == 0 && r == 65532 * 2 + 1, "%d", r);
    CHECK(fused_run(madd, sizeof(madd), 65533, 1, &r, 0) == WASM_TRAP_MEMORY);
    /* a factor just loaded (read from acc), on either side of the
     * product: mem[a] = b + mem[a] * b, then mem[a] = b + b * mem[a] */
    CHECK(FUSED(0, 4, 2, &r, PUT4, 0x20, 0x00, 0x20, 0x01, 0x20, 0x00, 0x28, 0x02, 0x00, 0x20, 0x01,
                0x6c, 0x6a, 0x36, 0x02, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b) == 0 &&
          r == 0x2244668a, "%x", r);
    CHECK(FUSED(0, 4, 3, &r, PUT4, 0x20, 0x00, 0x20, 0x01, 0x20, 0x01, 0x20, 0x00, 0x28, 0x02, 0x00,
                0x6c, 0x6a, 0x36, 0x02, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b) == 0 &&
          r == 0x336699cf, "%x", r);
    /* pairs whose first operation takes the value before it from acc:
     * rotl(a + b, 7) ^ b (immediate form); with r = rotl(a, b) (which
     * pairs with nothing): (b & r) | a (slots, the acc operand on the
     * right: swapped) and (b - r) ^ a (sub does not commute: the slot form) */
    uint32_t ua = 0x9abcdef0u, ub = 0x13572468u, sum = ua + ub;
    uint32_t rot = (ua << (ub & 31)) | (ua >> ((32 - (ub & 31)) & 31));
    CHECK(FUSED(0, (int32_t)ua, (int32_t)ub, &r, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x41, 0x07, 0x77, 0x20,
                0x01, 0x73, 0x0b) == 0 && (uint32_t)r == (((sum << 7) | (sum >> 25)) ^ ub), "%x", r);
    CHECK(FUSED(0, (int32_t)ua, (int32_t)ub, &r, 0x20, 0x01, 0x20, 0x00, 0x20, 0x01, 0x77, 0x71, 0x20,
                0x00, 0x72, 0x0b) == 0 && (uint32_t)r == ((ub & rot) | ua), "%x", r);
    CHECK(FUSED(0, (int32_t)ua, (int32_t)ub, &r, 0x20, 0x01, 0x20, 0x00, 0x20, 0x01, 0x77, 0x6b, 0x20,
                0x00, 0x73, 0x0b) == 0 && (uint32_t)r == ((ub - rot) ^ ua), "%x", r);
    /* the same with r on the left: (r - b) ^ a takes r from acc */
    CHECK(FUSED(0, (int32_t)ua, (int32_t)ub, &r, 0x20, 0x00, 0x20, 0x01, 0x77, 0x20, 0x01, 0x6b, 0x20,
                0x00, 0x73, 0x0b) == 0 && (uint32_t)r == ((rot - ub) ^ ua), "%x", r);
    /* loop { a += 4; l2 += 1; br_if (l2 <u b) } a */
    static const uint8_t two[] = {0x03, 0x40, 0x20, 0x00, 0x41, 0x04, 0x6a, 0x21, 0x00, 0x20, 0x02,
                                  0x41, 0x01, 0x6a, 0x22, 0x02, 0x20, 0x01, 0x49, 0x0d, 0x00, 0x0b,
                                  0x20, 0x00, 0x0b};
    CHECK(fused_run(two, sizeof(two), 0, 5, &r, 0) == 0 && r == 20, "%d", r);
    CHECK(fused_run(two, sizeof(two), -8, 1, &r, 0) == 0 && r == -4, "%d", r);
    /* a += 2 against an immediate (l2 <u 7); then `two` with b = -1
     * (l2 <u 2^32 - 1: about forever), stopped by fuel */
    static const uint8_t twoi[] = {0x03, 0x40, 0x20, 0x00, 0x41, 0x02, 0x6a, 0x21, 0x00, 0x20, 0x02,
                                   0x41, 0x01, 0x6a, 0x22, 0x02, 0x41, 0x07, 0x49, 0x0d, 0x00, 0x0b,
                                   0x20, 0x00, 0x0b};
    CHECK(fused_run(twoi, sizeof(twoi), 1, 2, &r, 0) == 0 && r == 15, "%d", r);
    CHECK(fused_run(two, sizeof(two), 0, -1, &r, 10000) == WASM_TRAP_FUEL);
    /* loop { l2 += mem[4] (an add taking the load from acc, either side);
     * a += 1; br_if (a <u b) } l2: the sum enters the counter's branch */
    static const uint8_t sumy[] = {PUT4, 0x03, 0x40, 0x20, 0x02, 0x41, 0x00, 0x28, 0x02, 0x04, 0x6a,
                                   0x21, 0x02, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x00, 0x20, 0x01,
                                   0x49, 0x0d, 0x00, 0x0b, 0x20, 0x02, 0x0b};
    CHECK(fused_run(sumy, sizeof(sumy), 0, 3, &r, 0) == 0 && r == 0x336699cc, "%x", r);
    static const uint8_t sumx[] = {PUT4, 0x03, 0x40, 0x41, 0x00, 0x28, 0x02, 0x04, 0x20, 0x02, 0x6a,
                                   0x21, 0x02, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x00, 0x41, 0x02,
                                   0x49, 0x0d, 0x00, 0x0b, 0x20, 0x02, 0x0b};
    CHECK(fused_run(sumx, sizeof(sumx), 0, 0, &r, 0) == 0 && r == 0x22446688, "%x", r);
    /* f(a, b) = a == 0 ? b + 7 (add then return) : f(a - 1, b + 3) (add
     * then call) + b (the result from acc): f(2, 1) = 19 */
    static const uint8_t rec[] = {0x20, 0x00, 0x45, 0x04, 0x7f, 0x20, 0x01, 0x41, 0x07, 0x6a, 0x0f,
                                  0x05, 0x20, 0x00, 0x41, 0x7f, 0x6a, 0x20, 0x01, 0x41, 0x03, 0x6a,
                                  0x10, 0x00, 0x20, 0x01, 0x6a, 0x0b, 0x0b};
    CHECK(fused_run(rec, sizeof(rec), 2, 1, &r, 0) == 0 && r == 19, "%d", r);
    CHECK(fused_run(rec, sizeof(rec), 0, -7, &r, 0) == 0 && r == 0, "%d", r);
    /* f(a, b) = a == 0 ? b + a (slots) : f(a - 1, a + b) - 1 (the call's
     * argument an add of two slots): f(3, 0) = 6 - 3 */
    static const uint8_t recr[] = {0x20, 0x00, 0x45, 0x04, 0x7f, 0x20, 0x01, 0x20, 0x00, 0x6a, 0x0f,
                                   0x05, 0x20, 0x00, 0x41, 0x7f, 0x6a, 0x20, 0x00, 0x20, 0x01, 0x6a,
                                   0x10, 0x00, 0x41, 0x01, 0x6b, 0x0b, 0x0b};
    CHECK(fused_run(recr, sizeof(recr), 3, 0, &r, 0) == 0 && r == 3, "%d", r);
    /* deep enough to run out of fuel through the fused call */
    CHECK(fused_run(rec, sizeof(rec), 1000, 0, &r, 100) == WASM_TRAP_FUEL);
}

static void test_immediates(void)
{
    int32_t r = 0;
    /* a + INT16_MIN and a + INT16_MAX (immediates) and a + 32768 (not one) */
    CHECK(FUSED(0, 5, 0, &r, 0x20, 0x00, 0x41, 0x80, 0x80, 0x7e, 0x6a, 0x0b) == 0 && r == 5 - 32768);
    CHECK(FUSED(0, 5, 0, &r, 0x20, 0x00, 0x41, 0xff, 0xff, 0x01, 0x6a, 0x0b) == 0 && r == 5 + 32767);
    CHECK(FUSED(0, 5, 0, &r, 0x20, 0x00, 0x41, 0x80, 0x80, 0x02, 0x6a, 0x0b) == 0 && r == 5 + 32768);
    /* the constant on the left of a non-commutative op: 10 - a */
    CHECK(FUSED(0, 3, 0, &r, 0x41, 0x0a, 0x20, 0x00, 0x6b, 0x0b) == 0 && r == 7);
    /* shift counts are masked: a << 33 is a << 1 */
    CHECK(FUSED(0, 3, 0, &r, 0x20, 0x00, 0x41, 0x21, 0x74, 0x0b) == 0 && r == 6);
    /* i64: (i64)a + -1, unsigned compare with -1 (all ones) */
    CHECK(FUSED(0, 0, 0, &r, 0x20, 0x00, 0xad, 0x42, 0x7f, 0x7c, 0x42, 0x7f, 0x51, 0x0b) == 0 && r == 1);
    CHECK(FUSED(0, 7, 0, &r, 0x20, 0x00, 0xac, 0x42, 0x7f, 0x56, 0x0b) == 0 && r == 0);
    /* division traps are not immediate forms: a / 0 still traps */
    CHECK(FUSED(0, 7, 0, &r, 0x20, 0x00, 0x41, 0x00, 0x6d, 0x0b) == WASM_TRAP_DIV_ZERO);
    /* pairs of operations: rotl(a, 7) ^ b, (a - b) + b, and (a << 3) tee'd
     * to a local that is also the second's other operand */
    CHECK(FUSED(0, (int32_t)0x80000001u, 5, &r, 0x20, 0x00, 0x41, 0x07, 0x77, 0x20, 0x01, 0x73, 0x0b) ==
          0 && r == (0xc0 ^ 5), "%x", r);
    CHECK(FUSED(0, INT32_MIN, 1, &r, 0x20, 0x00, 0x20, 0x01, 0x6b, 0x20, 0x01, 0x6a, 0x0b) == 0 &&
          r == INT32_MIN, "%d", r);
    CHECK(FUSED(0, 5, 0, &r, 0x20, 0x00, 0x41, 0x03, 0x74, 0x22, 0x02, 0x20, 0x02, 0x6a, 0x0b) == 0 &&
          r == 80, "%d", r);
    /* swap through locals (two moves in one instruction, in order) */
    CHECK(FUSED(0, 2, 9, &r, 0x20, 0x00, 0x20, 0x01, 0x21, 0x00, 0x21, 0x01, 0x20, 0x00, 0x41, 0x0a,
                0x6c, 0x20, 0x01, 0x6a, 0x0b) == 0 && r == 92, "%d", r);
}

/* --- v128: two slots per value --- */

/* The module of test_v128 (wat2wasm of the text below): every place a
 * v128 crosses a slot boundary the compiler computes, next to scalars
 * that shift the offsets.
 *
 * (module
 *   (import "env" "swap" (func $swap (param i32 v128 i64) (result v128 i32)))
 *   (import "env" "h" (global $h v128))
 *   (global $g (export "g") (mut v128) (v128.const i32x4 1 2 3 4))
 *   (global $k v128 (global.get $h))
 *   ;; params and results around a v128 shift every slot offset
 *   (func $mix (export "mix") (param $a i32) (param $v v128) (param $b i64) (param $w v128)
 *     (result i64 v128 i32)
 *     (local $t v128) (local $x i32)
 *     (local.set $t (i32x4.add (local.get $v) (local.get $w)))
 *     (local.set $x (i32.add (local.get $a) (i32x4.extract_lane 3 (local.get $t))))
 *     (local.get $b) (local.get $t) (local.get $x))
 *   ;; the same through a call from wasm
 *   (func (export "call_mix") (param $a i32) (param $v v128) (result i32 v128 i64)
 *     (local $r i64) (local $s v128)
 *     (call $mix (local.get $a) (local.get $v) (i64.const 5) (v128.const i32x4 10 20 30 40))
 *     (local.set $a) (local.set $s) (local.set $r)
 *     (local.get $a) (local.get $s) (local.get $r))
 *   ;; br_table, br_if and br carrying a v128 and an i32 over values below
 *   ;; them (br_if taken when lane 0 of the doubled vector is not 0)
 *   (func (export "br") (param $sel i32) (param $v v128) (result i64 v128 i32)
 *     (local $x i32)
 *     (i64.const 9)
 *     (block $out (result v128 i32)
 *       (block $b1 (result v128 i32)
 *         (i32.const 7)
 *         (i32x4.add (local.get $v) (i32x4.splat (i32.const 1)))
 *         (local.get $sel)
 *         (br_table $b1 $out (local.get $sel))
 *         (drop) (drop) (drop))
 *       (local.set $x)
 *       (i32x4.mul (v128.const i32x4 2 2 2 2))
 *       (local.set $v)
 *       (i32.const 5)
 *       (local.get $v)
 *       (i32.add (local.get $x) (i32.const 1000))
 *       (br_if $out (i32x4.extract_lane 0 (local.get $v)))
 *       (br $out)))
 *   ;; a loop whose parameter is a v128 accumulator, moved on every back edge
 *   (func (export "loop") (param $n i32) (result v128)
 *     (local $t v128)
 *     (v128.const i32x4 0 0 0 0)
 *     (loop $l (param v128) (result v128)
 *       (local.set $t)
 *       (i32.const 3)
 *       (i32x4.add (local.get $t) (v128.const i32x4 1 2 3 4))
 *       (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
 *       (br_if $l)
 *       (local.set $t) (drop) (local.get $t)))
 *   ;; select, untyped and typed; the results leave by br_if to the function
 *   ;; or return, from above an i32
 *   (func (export "sel") (param $c i32) (param $a v128) (param $b v128) (result v128 v128)
 *     (i32.const 9)
 *     (select (local.get $a) (local.get $b) (local.get $c))
 *     (select (result v128) (local.get $b) (local.get $a) (local.get $c))
 *     (br_if 0 (local.get $c))
 *     (return))
 *   ;; the mutable global += the immutable one (initialized from the import)
 *   (func (export "bump") (result v128)
 *     (global.set $g (i32x4.add (global.get $g) (global.get $k)))
 *     (global.get $g))
 *   ;; a host function with a v128 among scalars both ways
 *   (func (export "host") (param $v v128) (result i32 v128 i32)
 *     (i32.const 77)
 *     (call $swap (i32.const 3) (local.get $v) (i64.const 4))))
 */
static const uint8_t v128_module[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x45, 0x0a, 0x60,
    0x03, 0x7f, 0x7b, 0x7e, 0x02, 0x7b, 0x7f, 0x60, 0x04, 0x7f, 0x7b, 0x7e,
    0x7b, 0x03, 0x7e, 0x7b, 0x7f, 0x60, 0x02, 0x7f, 0x7b, 0x03, 0x7f, 0x7b,
    0x7e, 0x60, 0x02, 0x7f, 0x7b, 0x03, 0x7e, 0x7b, 0x7f, 0x60, 0x00, 0x02,
    0x7b, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7b, 0x60, 0x01, 0x7b, 0x01, 0x7b,
    0x60, 0x03, 0x7f, 0x7b, 0x7b, 0x02, 0x7b, 0x7b, 0x60, 0x00, 0x01, 0x7b,
    0x60, 0x01, 0x7b, 0x03, 0x7f, 0x7b, 0x7f, 0x02, 0x15, 0x02, 0x03, 0x65,
    0x6e, 0x76, 0x04, 0x73, 0x77, 0x61, 0x70, 0x00, 0x00, 0x03, 0x65, 0x6e,
    0x76, 0x01, 0x68, 0x03, 0x7b, 0x00, 0x03, 0x08, 0x07, 0x01, 0x02, 0x03,
    0x05, 0x07, 0x08, 0x09, 0x06, 0x1b, 0x02, 0x7b, 0x01, 0xfd, 0x0c, 0x01,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04,
    0x00, 0x00, 0x00, 0x0b, 0x7b, 0x00, 0x23, 0x00, 0x0b, 0x07, 0x36, 0x08,
    0x01, 0x67, 0x03, 0x01, 0x03, 0x6d, 0x69, 0x78, 0x00, 0x01, 0x08, 0x63,
    0x61, 0x6c, 0x6c, 0x5f, 0x6d, 0x69, 0x78, 0x00, 0x02, 0x02, 0x62, 0x72,
    0x00, 0x03, 0x04, 0x6c, 0x6f, 0x6f, 0x70, 0x00, 0x04, 0x03, 0x73, 0x65,
    0x6c, 0x00, 0x05, 0x04, 0x62, 0x75, 0x6d, 0x70, 0x00, 0x06, 0x04, 0x68,
    0x6f, 0x73, 0x74, 0x00, 0x07, 0x0a, 0x96, 0x02, 0x07, 0x1f, 0x02, 0x01,
    0x7b, 0x01, 0x7f, 0x20, 0x01, 0x20, 0x03, 0xfd, 0xae, 0x01, 0x21, 0x04,
    0x20, 0x00, 0x20, 0x04, 0xfd, 0x1b, 0x03, 0x6a, 0x21, 0x05, 0x20, 0x02,
    0x20, 0x04, 0x20, 0x05, 0x0b, 0x2c, 0x02, 0x01, 0x7e, 0x01, 0x7b, 0x20,
    0x00, 0x20, 0x01, 0x42, 0x05, 0xfd, 0x0c, 0x0a, 0x00, 0x00, 0x00, 0x14,
    0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x10,
    0x01, 0x21, 0x00, 0x21, 0x03, 0x21, 0x02, 0x20, 0x00, 0x20, 0x03, 0x20,
    0x02, 0x0b, 0x4e, 0x01, 0x01, 0x7f, 0x42, 0x09, 0x02, 0x04, 0x02, 0x04,
    0x41, 0x07, 0x20, 0x01, 0x41, 0x01, 0xfd, 0x11, 0xfd, 0xae, 0x01, 0x20,
    0x00, 0x20, 0x00, 0x0e, 0x01, 0x00, 0x01, 0x1a, 0x1a, 0x1a, 0x0b, 0x21,
    0x02, 0xfd, 0x0c, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xb5, 0x01, 0x21, 0x01,
    0x41, 0x05, 0x20, 0x01, 0x20, 0x02, 0x41, 0xe8, 0x07, 0x6a, 0x20, 0x01,
    0xfd, 0x1b, 0x00, 0x0d, 0x00, 0x0c, 0x00, 0x0b, 0x0b, 0x42, 0x01, 0x01,
    0x7b, 0xfd, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x06, 0x21, 0x01, 0x41,
    0x03, 0x20, 0x01, 0xfd, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
    0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0xfd, 0xae, 0x01,
    0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, 0x21, 0x01, 0x1a,
    0x20, 0x01, 0x0b, 0x0b, 0x19, 0x00, 0x41, 0x09, 0x20, 0x01, 0x20, 0x02,
    0x20, 0x00, 0x1b, 0x20, 0x02, 0x20, 0x01, 0x20, 0x00, 0x1c, 0x01, 0x7b,
    0x20, 0x00, 0x0d, 0x00, 0x0f, 0x0b, 0x0d, 0x00, 0x23, 0x01, 0x23, 0x02,
    0xfd, 0xae, 0x01, 0x24, 0x01, 0x23, 0x01, 0x0b, 0x0d, 0x00, 0x41, 0xcd,
    0x00, 0x41, 0x03, 0x20, 0x00, 0x42, 0x04, 0x10, 0x00, 0x0b
};

static struct wasm_val i32x4(uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    struct wasm_val v = {.type = WASM_V128};
    uint32_t l[4] = {a, b, c, d};
    memcpy(v.of.v128, l, 16);
    return v;
}

static int is_i32x4(const struct wasm_val *v, uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    uint32_t l[4];
    memcpy(l, v->of.v128, 16);
    return v->type == WASM_V128 && l[0] == a && l[1] == b && l[2] == c && l[3] == d;
}

/* env.swap(a, v, b) = (v with its i32 lanes reversed, a + b) */
static const char *host_swap(void *user, struct wasm_instance *caller, const struct wasm_val *args,
                             struct wasm_val *results)
{
    (void)user, (void)caller;
    uint32_t l[4], r[4];
    if (args[0].type != WASM_I32 || args[1].type != WASM_V128 || args[2].type != WASM_I64)
        return "bad argument types";
    memcpy(l, args[1].of.v128, 16);
    for (int i = 0; i < 4; i++) r[i] = l[3 - i];
    memcpy(results[0].of.v128, r, 16);
    results[1].of.i32 = args[0].of.i32 + (int32_t)args[2].of.i64;
    return NULL;
}

static void test_v128(void)
{
    struct wasm_module *mod;
    struct wasm_error err;
    CHECK(wasm_module_load(v128_module, sizeof(v128_module), &mod, &err) == WASM_OK, "%s", err.msg);
    if (!mod) return;
    enum wasm_type p[3] = {WASM_I32, WASM_V128, WASM_I64}, r[2] = {WASM_V128, WASM_I32};
    struct wasm_func *swap = wasm_func_new_host(p, 3, r, 2, host_swap, NULL);
    struct wasm_global *h = wasm_global_new(i32x4(100, 200, 300, 400), 0);
    struct wasm_extern ex[2] = {{WASM_EXTERN_FUNC, {.func = swap}}, {WASM_EXTERN_GLOBAL, {.global = h}}};
    struct wasm_instance *inst = NULL;
    CHECK(wasm_instantiate(mod, ex, 2, NULL, &inst, &err) == WASM_OK, "%s", err.msg);
    if (!inst) goto out;
    struct wasm_val a[4], res[3];
    /* from the host: v128 arguments and results among scalars */
    a[0] = i32v(5), a[1] = i32x4(1, 2, 3, 4), a[2].type = WASM_I64, a[2].of.u64 = 0x1122334455667788ull;
    a[3] = i32x4(10, 20, 30, 40);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "mix"), a, 4, res, &err) == WASM_OK, "%s", err.msg);
    CHECK(res[0].type == WASM_I64 && res[0].of.u64 == 0x1122334455667788ull);
    CHECK(is_i32x4(&res[1], 11, 22, 33, 44) && res[2].type == WASM_I32 && res[2].of.i32 == 49);
    /* the same function called from wasm */
    a[0] = i32v(1);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "call_mix"), a, 2, res, &err) == WASM_OK, "%s", err.msg);
    CHECK(res[0].of.i32 == 45 && is_i32x4(&res[1], 11, 22, 33, 44) && res[2].of.i64 == 5);
    /* branches: br_table to either block, then br_if */
    struct wasm_func *br = wasm_instance_func(inst, "br");
    a[0] = i32v(0);
    CHECK(wasm_call(inst, br, a, 2, res, &err) == WASM_OK, "%s", err.msg);
    CHECK(res[0].of.i64 == 9 && is_i32x4(&res[1], 4, 6, 8, 10) && res[2].of.i32 == 1000);
    a[1] = i32x4(UINT32_MAX, 2, 3, 4); /* br_if not taken: br */
    CHECK(wasm_call(inst, br, a, 2, res, &err) == WASM_OK, "%s", err.msg);
    CHECK(res[0].of.i64 == 9 && is_i32x4(&res[1], 0, 6, 8, 10) && res[2].of.i32 == 1000);
    a[0] = i32v(1), a[1] = i32x4(1, 2, 3, 4);
    CHECK(wasm_call(inst, br, a, 2, res, &err) == WASM_OK);
    CHECK(res[0].of.i64 == 9 && is_i32x4(&res[1], 2, 3, 4, 5) && res[2].of.i32 == 1);
    a[0] = i32v(7); /* the default */
    CHECK(wasm_call(inst, br, a, 2, res, &err) == WASM_OK);
    CHECK(res[0].of.i64 == 9 && is_i32x4(&res[1], 2, 3, 4, 5) && res[2].of.i32 == 7);
    a[0] = i32v(3);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "loop"), a, 1, res, &err) == WASM_OK);
    CHECK(is_i32x4(&res[0], 3, 6, 9, 12));
    /* select */
    struct wasm_func *sel = wasm_instance_func(inst, "sel");
    a[0] = i32v(1), a[1] = i32x4(1, 2, 3, 4), a[2] = i32x4(5, 6, 7, 8);
    CHECK(wasm_call(inst, sel, a, 3, res, &err) == WASM_OK);
    CHECK(is_i32x4(&res[0], 1, 2, 3, 4) && is_i32x4(&res[1], 5, 6, 7, 8));
    a[0] = i32v(0);
    CHECK(wasm_call(inst, sel, a, 3, res, &err) == WASM_OK);
    CHECK(is_i32x4(&res[0], 5, 6, 7, 8) && is_i32x4(&res[1], 1, 2, 3, 4));
    /* globals: g += k (k initialized from the host's global) */
    struct wasm_func *bump = wasm_instance_func(inst, "bump");
    CHECK(wasm_call(inst, bump, NULL, 0, res, &err) == WASM_OK && is_i32x4(&res[0], 101, 202, 303, 404));
    CHECK(wasm_call(inst, bump, NULL, 0, res, &err) == WASM_OK && is_i32x4(&res[0], 201, 402, 603, 804));
    struct wasm_extern g;
    CHECK(wasm_instance_export(inst, "g", 1, &g) == 0 && g.kind == WASM_EXTERN_GLOBAL);
    struct wasm_val gv = wasm_global_get(g.of.global);
    CHECK(is_i32x4(&gv, 201, 402, 603, 804));
    CHECK(wasm_global_set(g.of.global, i32x4(0, 0, 0, 1)) == WASM_OK);
    CHECK(wasm_call(inst, bump, NULL, 0, res, &err) == WASM_OK && is_i32x4(&res[0], 100, 200, 300, 401));
    /* a host function taking and returning a v128 among scalars */
    a[0] = i32x4(1, 2, 3, 4);
    CHECK(wasm_call(inst, wasm_instance_func(inst, "host"), a, 1, res, &err) == WASM_OK, "%s", err.msg);
    CHECK(res[0].of.i32 == 77 && is_i32x4(&res[1], 4, 3, 2, 1) && res[2].of.i32 == 7);
    /* and that host function called directly from the host */
    a[0] = i32v(3), a[1] = i32x4(1, 2, 3, 4), a[2].type = WASM_I64, a[2].of.i64 = 4;
    CHECK(wasm_call(inst, swap, a, 3, res, &err) == WASM_OK && is_i32x4(&res[0], 4, 3, 2, 1) &&
          res[1].of.i32 == 7);
out:
    wasm_instance_free(inst);
    wasm_func_free(swap);
    wasm_global_free(h);
    wasm_module_free(mod);
}

int main(void)
{
    test_decode_errors();
    test_validation_errors();
    test_calls_and_traps();
    test_fuel();
    test_call_depth();
    test_memory();
    test_host_imports();
    test_reentry_and_linking();
    test_fused_loads();
    test_fused_stores();
    test_fused_branches();
    test_fused_more();
    test_immediates();
    test_v128();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
