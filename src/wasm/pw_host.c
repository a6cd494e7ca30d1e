/* pw_host.c - proxy-wasm plugins, VMs, contexts and the callbacks into the
 * filter (the host functions it calls back are in pw_abi.c).
 *
 * Lifecycle driven here, as the ABI says: per VM, _initialize (or _start)
 * once, then the root context: proxy_on_context_create(root, 0),
 * proxy_on_vm_start(root, 0) and proxy_on_configure(root, config size);
 * per stream, proxy_on_context_create(id, root), the stream callbacks,
 * proxy_on_done and, once that answered true or the filter called
 * proxy_done, proxy_on_log and proxy_on_delete.
 *
 * Every call into the filter runs with the VM's fuel budget (the runtime
 * refills it per call from the host, not for the nested allocator calls
 * pw_abi.c makes). A trap marks the VM broken: the embedder applies its
 * failure policy and calls pw_vm_recreate. */
#include "wasm/pw_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum cb {
    CB_CONTEXT_CREATE, CB_VM_START, CB_CONFIGURE, CB_DONE, CB_LOG, CB_DELETE, CB_TICK,
    CB_NEW_CONNECTION, CB_DOWNSTREAM_DATA, CB_UPSTREAM_DATA, CB_DOWNSTREAM_CLOSE,
    CB_UPSTREAM_CLOSE, CB_REQUEST_HEADERS, CB_REQUEST_BODY, CB_REQUEST_TRAILERS,
    CB_RESPONSE_HEADERS, CB_RESPONSE_BODY, CB_RESPONSE_TRAILERS, CB_HTTP_CALL_RESPONSE,
    CB_QUEUE_READY, CB_GRPC_INITIAL, CB_GRPC_RECEIVE, CB_GRPC_TRAILING, CB_GRPC_CLOSE, NCB
};

/* Export name, i32 parameter count, i32 result count. */
static const struct {
    const char *name;
    uint8_t np, nr;
} cbs[NCB] = {
    [CB_CONTEXT_CREATE] = {"proxy_on_context_create", 2, 0},
    [CB_VM_START] = {"proxy_on_vm_start", 2, 1},
    [CB_CONFIGURE] = {"proxy_on_configure", 2, 1},
    [CB_DONE] = {"proxy_on_done", 1, 1},
    [CB_LOG] = {"proxy_on_log", 1, 0},
    [CB_DELETE] = {"proxy_on_delete", 1, 0},
    [CB_TICK] = {"proxy_on_tick", 1, 0},
    [CB_NEW_CONNECTION] = {"proxy_on_new_connection", 1, 1},
    [CB_DOWNSTREAM_DATA] = {"proxy_on_downstream_data", 3, 1},
    [CB_UPSTREAM_DATA] = {"proxy_on_upstream_data", 3, 1},
    [CB_DOWNSTREAM_CLOSE] = {"proxy_on_downstream_connection_close", 2, 0},
    [CB_UPSTREAM_CLOSE] = {"proxy_on_upstream_connection_close", 2, 0},
    [CB_REQUEST_HEADERS] = {"proxy_on_request_headers", 3, 1},
    [CB_REQUEST_BODY] = {"proxy_on_request_body", 3, 1},
    [CB_REQUEST_TRAILERS] = {"proxy_on_request_trailers", 2, 1},
    [CB_RESPONSE_HEADERS] = {"proxy_on_response_headers", 3, 1},
    [CB_RESPONSE_BODY] = {"proxy_on_response_body", 3, 1},
    [CB_RESPONSE_TRAILERS] = {"proxy_on_response_trailers", 2, 1},
    [CB_HTTP_CALL_RESPONSE] = {"proxy_on_http_call_response", 5, 0},
    [CB_QUEUE_READY] = {"proxy_on_queue_ready", 2, 0},
    [CB_GRPC_INITIAL] = {"proxy_on_grpc_receive_initial_metadata", 3, 0},
    [CB_GRPC_RECEIVE] = {"proxy_on_grpc_receive", 3, 0},
    [CB_GRPC_TRAILING] = {"proxy_on_grpc_receive_trailing_metadata", 3, 0},
    [CB_GRPC_CLOSE] = {"proxy_on_grpc_close", 3, 0},
};

/* The VM's resolved callbacks live after its struct. */
struct pw_vm_full {
    struct pw_vm vm;
    struct wasm_func *cb[NCB];
    int depth; /* pw_* entry points running (re-entrance guard) */
};

#define FULL(vm) ((struct pw_vm_full *)(vm))

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* --- plugins --- */

/* Does the import's type match sig ("ii:i", 'I' = i64)? Borrows m. */
static bool sig_matches(const struct wasm_module *m, size_t i, const char *sig)
{
    enum wasm_type t[32];
    size_t np, nr;
    if (wasm_module_import_functype(m, i, &np, &nr, t, 32) != WASM_OK || np + nr > 32)
        return false;
    size_t k = 0;
    for (const char *s = sig; *s; s++) {
        if (*s == ':') {
            if (k != np)
                return false;
            continue;
        }
        if (k >= np + nr || t[k] != (*s == 'I' ? WASM_I64 : WASM_I32))
            return false;
        k++;
    }
    return k == np + nr;
}

static bool has_export(const struct wasm_module *m, const char *name)
{
    size_t n = wasm_module_export_count(m), len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        const char *en;
        size_t el;
        if (wasm_module_export(m, i, &en, &el, NULL) == WASM_OK && el == len &&
            memcmp(en, name, len) == 0)
            return true;
    }
    return false;
}

/* Borrows everything; *out is the caller's. */
int pw_plugin_new(const char *name, const uint8_t *wasm, size_t len, const uint8_t *cfg,
                  size_t cfg_len, struct pw_plugin **out, char *err, size_t errlen)
{
    struct wasm_error werr;
    struct wasm_module *m;
    *out = NULL;
    if (wasm_module_load(wasm, len, &m, &werr) != WASM_OK)
        return fail(err, errlen, "invalid module: %s", werr.msg);
    struct pw_plugin *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        wasm_module_free(m);
        return fail(err, errlen, "out of memory");
    }
    p->mod = m;
    p->nimports = wasm_module_import_count(m);
    p->imports = calloc(p->nimports + 1, sizeof(*p->imports));
    p->name = strdup(name ? name : "");
    p->cfg = malloc(cfg_len ? cfg_len : 1);
    if (p->imports == NULL || p->name == NULL || p->cfg == NULL) {
        pw_plugin_free(p);
        return fail(err, errlen, "out of memory");
    }
    if (cfg_len)
        memcpy(p->cfg, cfg, cfg_len);
    p->cfg_len = cfg_len;
    for (size_t i = 0; i < p->nimports; i++) {
        const char *mod, *nm;
        size_t ml, nl;
        enum wasm_extern_kind kind;
        wasm_module_import(m, i, &mod, &ml, &nm, &nl, &kind);
        const struct pw_import *imp = pw_import_find(mod, ml, nm, nl);
        if (imp == NULL || kind != WASM_EXTERN_FUNC) {
            fail(err, errlen, "unknown import %.*s.%.*s (not a host function of proxy-wasm ABI "
                 "0.2.1 or WASI preview1 this host provides)", (int)(ml > 100 ? 100 : ml), mod,
                 (int)(nl > 100 ? 100 : nl), nm);
            pw_plugin_free(p);
            return -1;
        }
        if (!sig_matches(m, i, imp->sig)) {
            fail(err, errlen, "import %s.%s has the wrong signature", imp->module, imp->name);
            pw_plugin_free(p);
            return -1;
        }
        p->imports[i] = imp;
    }
    if (has_export(m, "proxy_abi_version_0_2_1"))
        p->abi = PW_ABI_0_2_1;
    else if (has_export(m, "proxy_abi_version_0_2_0"))
        p->abi = PW_ABI_0_2_0;
    else {
        pw_plugin_free(p);
        return fail(err, errlen, "no proxy_abi_version_0_2_1 or proxy_abi_version_0_2_0 export "
                    "(not a proxy-wasm filter, or an unsupported ABI version)");
    }
    if (!has_export(m, "proxy_on_memory_allocate") && !has_export(m, "malloc")) {
        pw_plugin_free(p);
        return fail(err, errlen, "exports neither proxy_on_memory_allocate nor malloc");
    }
    *out = p;
    return 0;
}

/* Takes ownership of p. */
void pw_plugin_free(struct pw_plugin *p)
{
    if (p == NULL)
        return;
    wasm_module_free(p->mod);
    free(p->imports);
    free(p->name);
    free(p->cfg);
    free(p);
}

enum pw_abi pw_plugin_abi(const struct pw_plugin *p)
{
    return p->abi;
}

const char *pw_plugin_name(const struct pw_plugin *p)
{
    return p->name;
}

/* --- calls into the filter --- */

struct pw_ctx *pw_find_ctx(struct pw_vm *vm, uint32_t id)
{
    for (struct pw_ctx *c = vm->live; c; c = c->next)
        if (c->id == id && c->gen == vm->gen && c->state != CTX_DELETED)
            return c;
    return NULL;
}

static void vm_log(struct pw_vm *vm, int level, const char *msg)
{
    if (vm->ops->log)
        vm->ops->log(vm->user, level, msg, strlen(msg));
}

/* Calls callback cb with args on behalf of ctx (NULL: the root context).
 * A missing callback leaves *res at its default. 0, or PW_ERR_TRAP with
 * the VM marked broken and vm->errbuf set. */
static int invoke(struct pw_vm *vm, struct pw_ctx *ctx, enum cb cb, const uint32_t *args,
                  uint32_t *res)
{
    struct wasm_func *f = FULL(vm)->cb[cb];
    if (f == NULL)
        return 0;
    struct wasm_val av[8], rv[1];
    for (size_t i = 0; i < cbs[cb].np; i++)
        av[i] = (struct wasm_val){WASM_I32, {.u32 = args[i]}};
    struct pw_ctx *saved = vm->cur;
    vm->cur = ctx;
    struct wasm_error err;
    int rc = wasm_call(vm->inst, f, av, cbs[cb].np, rv, &err);
    vm->cur = saved;
    if (rc != WASM_OK) {
        vm->broken = true;
        vm->traps++;
        snprintf(vm->errbuf, sizeof(vm->errbuf), "%s: %s", cbs[cb].name, err.msg);
        return PW_ERR_TRAP;
    }
    if (cbs[cb].nr && res)
        *res = rv[0].of.u32;
    return 0;
}

/* proxy_on_log and proxy_on_delete of a finished context. */
static int finalize(struct pw_vm *vm, struct pw_ctx *c)
{
    uint32_t id = c->id;
    c->state = CTX_DELETED;
    if (invoke(vm, c, CB_LOG, &id, NULL) != 0)
        return PW_ERR_TRAP;
    return invoke(vm, c, CB_DELETE, &id, NULL);
}

/* After a top-level callback: finish the contexts the filter released
 * with proxy_done, and tell the embedder. */
static int run_pending(struct pw_vm *vm)
{
    int rc = 0;
    /* Every top-level call ends here: skip the walk over the live
     * contexts unless a proxy_done asked for it. */
    while (vm->nfinalize > 0 && !vm->broken) {
        struct pw_ctx *c = vm->live;
        while (c && !(c->finalize && c->state == CTX_DONE_PENDING && c->gen == vm->gen))
            c = c->next;
        if (c == NULL) {
            vm->nfinalize = 0; /* the rest belong to an older instance */
            break;
        }
        c->finalize = false;
        vm->nfinalize--;
        rc = finalize(vm, c);
        if (rc == 0 && vm->ops->done)
            vm->ops->done(c->user);
    }
    return rc;
}

/* Top-level call: guards, the call, deferred finalizations. */
static int top(struct pw_vm *vm, struct pw_ctx *ctx, enum cb cb, const uint32_t *args,
               uint32_t *res)
{
    if (vm->broken)
        return PW_ERR_BROKEN;
    if (FULL(vm)->depth > 0) {
        snprintf(vm->errbuf, sizeof(vm->errbuf), "%s: called from inside a pw_ops callback",
                 cbs[cb].name);
        return PW_ERR_STATE;
    }
    FULL(vm)->depth++;
    int rc = invoke(vm, ctx, cb, args, res);
    if (rc == 0)
        rc = run_pending(vm);
    FULL(vm)->depth--;
    return rc;
}

/* An action result: 0 and 1 as they are, anything else Continue (logged
 * once per VM). */
static int action(struct pw_vm *vm, enum cb cb, uint32_t v)
{
    if (v <= PW_PAUSE)
        return (int)v;
    if (!vm->warned_action) {
        char msg[160];
        snprintf(msg, sizeof(msg), "wasm plugin %s: %s returned %u, not Continue (0) or Pause "
                 "(1); treated as Continue", vm->plugin->name, cbs[cb].name, v);
        vm_log(vm, PW_LOG_WARN, msg);
        vm->warned_action = true;
    }
    return PW_CONTINUE;
}

/* --- VMs --- */

static void free_hostfns(struct pw_vm *vm)
{
    for (size_t i = 0; vm->hostfns && i < vm->plugin->nimports; i++)
        wasm_func_free(vm->hostfns[i]);
    free(vm->hostfns);
    vm->hostfns = NULL;
}

/* Host functions for every import, with user = vm. */
static int make_hostfns(struct pw_vm *vm)
{
    const struct pw_plugin *p = vm->plugin;
    vm->hostfns = calloc(p->nimports + 1, sizeof(*vm->hostfns));
    if (vm->hostfns == NULL)
        return -1;
    for (size_t i = 0; i < p->nimports; i++) {
        enum wasm_type t[16];
        size_t np = 0, nr = 0;
        bool res = false;
        for (const char *s = p->imports[i]->sig; *s; s++) {
            if (*s == ':') {
                res = true;
                continue;
            }
            t[np + nr] = *s == 'I' ? WASM_I64 : WASM_I32;
            if (res)
                nr++;
            else
                np++;
        }
        vm->hostfns[i] = wasm_func_new_host(t, np, t + np, nr, p->imports[i]->fn, vm);
        if (vm->hostfns[i] == NULL)
            return -1;
    }
    return 0;
}

/* Does f take np i32 and return nr i32? */
static bool cb_type_ok(const struct wasm_func *f, size_t np, size_t nr)
{
    if (wasm_func_param_count(f) != np || wasm_func_result_count(f) != nr)
        return false;
    for (size_t i = 0; i < np; i++)
        if (wasm_func_param_type(f, i) != WASM_I32)
            return false;
    return nr == 0 || wasm_func_result_type(f, 0) == WASM_I32;
}

/* Instantiates the plugin and starts the root context; on failure the VM
 * is broken with errbuf set. */
static int start(struct pw_vm *vm)
{
    const struct pw_plugin *p = vm->plugin;
    struct pw_vm_full *full = FULL(vm);
    struct wasm_error err;
    struct wasm_extern *ex = calloc(p->nimports + 1, sizeof(*ex));
    if (ex == NULL)
        goto oom;
    for (size_t i = 0; i < p->nimports; i++)
        ex[i] = (struct wasm_extern){WASM_EXTERN_FUNC, {.func = vm->hostfns[i]}};
    struct wasm_limits lim = {.max_pages = vm->opts.max_pages, .fuel = vm->opts.fuel};
    vm->broken = true; /* until the root context is up */
    int rc = wasm_instantiate(p->mod, ex, p->nimports, &lim, &vm->inst, &err);
    free(ex);
    if (rc != WASM_OK) {
        if (vm->inst)
            wasm_instance_free(vm->inst);
        vm->inst = NULL;
        snprintf(vm->errbuf, sizeof(vm->errbuf), "instantiate: %s", err.msg);
        return -1;
    }
    vm->gen++;
    vm->warned_action = false;
    vm->nmetrics = 0;
    vm->cur = NULL;
    vm->call_resp = NULL;
    vm->grpc_resp = NULL;
    if (wasm_instance_memory(vm->inst) == NULL) {
        snprintf(vm->errbuf, sizeof(vm->errbuf), "the module has no memory");
        return -1;
    }
    vm->alloc = wasm_instance_func(vm->inst, "proxy_on_memory_allocate");
    if (vm->alloc == NULL)
        vm->alloc = wasm_instance_func(vm->inst, "malloc");
    if (vm->alloc == NULL || !cb_type_ok(vm->alloc, 1, 1)) {
        snprintf(vm->errbuf, sizeof(vm->errbuf), "no usable allocator export "
                 "(proxy_on_memory_allocate or malloc, (i32) -> i32)");
        return -1;
    }
    for (int i = 0; i < NCB; i++) {
        struct wasm_func *f = wasm_instance_func(vm->inst, cbs[i].name);
        if (f != NULL && !cb_type_ok(f, cbs[i].np, cbs[i].nr)) {
            snprintf(vm->errbuf, sizeof(vm->errbuf), "export %s has the wrong signature",
                     cbs[i].name);
            return -1;
        }
        full->cb[i] = f;
    }
    /* _initialize (reactor) then main if exported, else _start (command). */
    struct wasm_func *init = wasm_instance_func(vm->inst, "_initialize");
    const char *what = "_initialize";
    if (init == NULL) {
        init = wasm_instance_func(vm->inst, "_start");
        what = "_start";
    }
    if (init != NULL) {
        if (!cb_type_ok(init, 0, 0)) {
            snprintf(vm->errbuf, sizeof(vm->errbuf), "export %s has the wrong signature", what);
            return -1;
        }
        if (wasm_call(vm->inst, init, NULL, 0, NULL, &err) != WASM_OK) {
            vm->traps++;
            snprintf(vm->errbuf, sizeof(vm->errbuf), "%s: %s", what, err.msg);
            return -1;
        }
        struct wasm_func *mainf = wasm_instance_func(vm->inst, "main");
        if (init != NULL && strcmp(what, "_initialize") == 0 && mainf && cb_type_ok(mainf, 2, 1)) {
            struct wasm_val av[2] = {{WASM_I32, {.u32 = 0}}, {WASM_I32, {.u32 = 0}}}, rv[1];
            if (wasm_call(vm->inst, mainf, av, 2, rv, &err) != WASM_OK) {
                vm->traps++;
                snprintf(vm->errbuf, sizeof(vm->errbuf), "main: %s", err.msg);
                return -1;
            }
        }
    }
    vm->broken = false;
    vm->root_id = vm->next_id++;
    if (vm->next_id == 0)
        vm->next_id = 1;
    uint32_t args[2] = {vm->root_id, 0}, ok = 1;
    if (top(vm, NULL, CB_CONTEXT_CREATE, args, NULL) != 0)
        return -1;
    if (top(vm, NULL, CB_VM_START, args, &ok) != 0)
        return -1;
    if (!ok) {
        vm->broken = true;
        snprintf(vm->errbuf, sizeof(vm->errbuf), "proxy_on_vm_start returned false");
        return -1;
    }
    args[1] = (uint32_t)p->cfg_len;
    ok = 1;
    if (top(vm, NULL, CB_CONFIGURE, args, &ok) != 0)
        return -1;
    if (!ok) {
        vm->broken = true;
        snprintf(vm->errbuf, sizeof(vm->errbuf),
                 "proxy_on_configure returned false (the plugin rejected its configuration)");
        return -1;
    }
    return 0;
oom:
    snprintf(vm->errbuf, sizeof(vm->errbuf), "out of memory");
    return -1;
}

/* Borrows p, ops, user; *out is the caller's. */
int pw_vm_new(const struct pw_plugin *p, const struct pw_ops *ops, void *user,
              const struct pw_vm_opts *opts, struct pw_vm **out, char *err, size_t errlen)
{
    *out = NULL;
    struct pw_vm_full *full = calloc(1, sizeof(*full));
    if (full == NULL)
        return fail(err, errlen, "out of memory");
    struct pw_vm *vm = &full->vm;
    static const struct pw_ops no_ops;
    vm->plugin = p;
    vm->ops = ops ? ops : &no_ops;
    vm->user = user;
    vm->opts.log_level = PW_LOG_INFO;
    if (opts != NULL)
        vm->opts = *opts;
    if (vm->opts.fuel == 0)
        vm->opts.fuel = PW_DEFAULT_FUEL;
    if (vm->opts.max_pages == 0)
        vm->opts.max_pages = 4096;
    vm->next_id = 1;
    if (make_hostfns(vm) != 0) {
        pw_vm_free(vm);
        return fail(err, errlen, "out of memory");
    }
    if (start(vm) != 0) {
        fail(err, errlen, "%s", vm->errbuf);
        pw_vm_free(vm);
        return -1;
    }
    *out = vm;
    return 0;
}

/* Takes ownership of vm (its contexts must be freed already). */
void pw_vm_free(struct pw_vm *vm)
{
    if (vm == NULL)
        return;
    pw_queue_detach(vm); /* before anything goes: an enqueue may be telling it now */
    for (struct pw_ctx *c = vm->live; c; c = c->next)
        c->vm = NULL; /* defensive: a late pw_ctx_free only frees the struct */
    if (vm->inst)
        wasm_instance_free(vm->inst);
    free_hostfns(vm);
    free(vm->metrics);
    free(FULL(vm));
}

/* Borrows vm. */
int pw_vm_recreate(struct pw_vm *vm)
{
    if (FULL(vm)->depth > 0)
        return -1;
    /* The new instance registers its queues again if it wants them. */
    pw_queue_detach(vm);
    if (vm->inst)
        wasm_instance_free(vm->inst);
    vm->inst = NULL;
    memset(FULL(vm)->cb, 0, sizeof(FULL(vm)->cb));
    return start(vm) == 0 ? 0 : -1;
}

bool pw_vm_broken(const struct pw_vm *vm)
{
    return vm->broken;
}

const char *pw_vm_error(const struct pw_vm *vm)
{
    return vm->errbuf;
}

uint64_t pw_vm_traps(const struct pw_vm *vm)
{
    return vm->traps;
}

uint32_t pw_vm_root_id(const struct pw_vm *vm)
{
    return vm->root_id;
}

int pw_vm_tick(struct pw_vm *vm)
{
    return top(vm, NULL, CB_TICK, &vm->root_id, NULL);
}

/* Everything borrowed for the call. */
int pw_http_call_response(struct pw_vm *vm, uint32_t token, const struct pw_kv *headers,
                          size_t nheaders, const uint8_t *body, size_t body_len,
                          const struct pw_kv *trailers, size_t ntrailers)
{
    struct pw_call_resp cr = {headers, trailers, nheaders, ntrailers, body, body_len};
    uint32_t args[5] = {vm->root_id, token, (uint32_t)nheaders, (uint32_t)body_len,
                        (uint32_t)ntrailers};
    if (vm->broken)
        return PW_ERR_BROKEN;
    vm->call_resp = &cr;
    int rc = top(vm, NULL, CB_HTTP_CALL_RESPONSE, args, NULL);
    vm->call_resp = NULL;
    return rc;
}

int pw_vm_queue_ready(struct pw_vm *vm, uint32_t queue_id)
{
    uint32_t args[2] = {vm->root_id, queue_id};
    return top(vm, NULL, CB_QUEUE_READY, args, NULL);
}

/* One gRPC callback on the root context with gr served meanwhile; arg is
 * the callback's third argument. gr: borrowed for the call. */
static int grpc_cb(struct pw_vm *vm, enum cb cb, uint32_t token, uint32_t arg,
                   const struct pw_grpc_resp *gr)
{
    uint32_t args[3] = {vm->root_id, token, arg};
    if (vm->broken)
        return PW_ERR_BROKEN;
    vm->grpc_resp = gr;
    int rc = top(vm, NULL, cb, args, NULL);
    vm->grpc_resp = NULL;
    return rc;
}

/* md: borrowed for the call. */
int pw_grpc_initial_metadata(struct pw_vm *vm, uint32_t token, const struct pw_kv *md, size_t n)
{
    struct pw_grpc_resp gr = {.map = PW_MAP_GRPC_INITIAL_METADATA, .md = md, .nmd = n};
    return grpc_cb(vm, CB_GRPC_INITIAL, token, (uint32_t)n, &gr);
}

/* msg: borrowed for the call. */
int pw_grpc_message(struct pw_vm *vm, uint32_t token, const uint8_t *msg, size_t len)
{
    static const uint8_t none;
    struct pw_grpc_resp gr = {.map = -1, .msg = msg ? msg : &none, .msg_len = len};
    return grpc_cb(vm, CB_GRPC_RECEIVE, token, (uint32_t)len, &gr);
}

/* md: borrowed for the call. */
int pw_grpc_trailing_metadata(struct pw_vm *vm, uint32_t token, const struct pw_kv *md,
                              size_t n)
{
    struct pw_grpc_resp gr = {.map = PW_MAP_GRPC_TRAILING_METADATA, .md = md, .nmd = n};
    return grpc_cb(vm, CB_GRPC_TRAILING, token, (uint32_t)n, &gr);
}

/* msg: borrowed for the call. */
int pw_grpc_close(struct pw_vm *vm, uint32_t token, uint32_t status, const char *msg,
                  size_t len)
{
    struct pw_grpc_resp gr = {.map = -1, .closing = true, .status = status,
                              .text = msg ? msg : "", .text_len = msg ? len : 0};
    return grpc_cb(vm, CB_GRPC_CLOSE, token, status, &gr);
}

/* --- stream contexts --- */

/* Borrows vm and user; the context is the caller's. */
struct pw_ctx *pw_ctx_new(struct pw_vm *vm, enum pw_ctx_kind kind, void *user)
{
    if (vm->broken)
        return NULL;
    struct pw_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(vm->errbuf, sizeof(vm->errbuf), "out of memory");
        return NULL;
    }
    c->vm = vm;
    c->gen = vm->gen;
    c->kind = kind;
    c->user = user;
    do {
        c->id = vm->next_id++;
    } while (c->id == 0 || c->id == vm->root_id);
    c->next = vm->live;
    if (vm->live)
        vm->live->prev = c;
    vm->live = c;
    uint32_t args[2] = {c->id, vm->root_id};
    if (top(vm, c, CB_CONTEXT_CREATE, args, NULL) != 0) {
        c->state = CTX_DELETED;
        pw_ctx_free(c);
        return NULL;
    }
    return c;
}

uint32_t pw_ctx_id(const struct pw_ctx *ctx)
{
    return ctx->id;
}

/* Checks ctx can take a stream callback of kind k. */
static int usable(const struct pw_ctx *ctx, enum pw_ctx_kind k)
{
    if (ctx->vm == NULL || ctx->vm->broken || ctx->gen != ctx->vm->gen)
        return PW_ERR_BROKEN;
    if (ctx->kind != k || ctx->state != CTX_LIVE)
        return PW_ERR_STATE;
    return 0;
}

/* A stream callback returning an action. */
static int stream_cb(struct pw_ctx *ctx, enum pw_ctx_kind k, enum cb cb, uint32_t a1, uint32_t a2)
{
    int rc = usable(ctx, k);
    if (rc != 0)
        return rc;
    uint32_t args[3] = {ctx->id, a1, a2}, res = PW_CONTINUE;
    rc = top(ctx->vm, ctx, cb, args, &res);
    return rc != 0 ? rc : action(ctx->vm, cb, res);
}

int pw_http_request_headers(struct pw_ctx *ctx, uint32_t nheaders, bool end_of_stream)
{
    return stream_cb(ctx, PW_CTX_HTTP, CB_REQUEST_HEADERS, nheaders, end_of_stream);
}

int pw_http_request_body(struct pw_ctx *ctx, uint32_t size, bool end_of_stream)
{
    return stream_cb(ctx, PW_CTX_HTTP, CB_REQUEST_BODY, size, end_of_stream);
}

int pw_http_request_trailers(struct pw_ctx *ctx, uint32_t ntrailers)
{
    return stream_cb(ctx, PW_CTX_HTTP, CB_REQUEST_TRAILERS, ntrailers, 0);
}

int pw_http_response_headers(struct pw_ctx *ctx, uint32_t nheaders, bool end_of_stream)
{
    return stream_cb(ctx, PW_CTX_HTTP, CB_RESPONSE_HEADERS, nheaders, end_of_stream);
}

int pw_http_response_body(struct pw_ctx *ctx, uint32_t size, bool end_of_stream)
{
    return stream_cb(ctx, PW_CTX_HTTP, CB_RESPONSE_BODY, size, end_of_stream);
}

int pw_http_response_trailers(struct pw_ctx *ctx, uint32_t ntrailers)
{
    return stream_cb(ctx, PW_CTX_HTTP, CB_RESPONSE_TRAILERS, ntrailers, 0);
}

int pw_tcp_new_connection(struct pw_ctx *ctx)
{
    return stream_cb(ctx, PW_CTX_TCP, CB_NEW_CONNECTION, 0, 0);
}

int pw_tcp_downstream_data(struct pw_ctx *ctx, uint32_t size, bool end_of_stream)
{
    return stream_cb(ctx, PW_CTX_TCP, CB_DOWNSTREAM_DATA, size, end_of_stream);
}

int pw_tcp_upstream_data(struct pw_ctx *ctx, uint32_t size, bool end_of_stream)
{
    return stream_cb(ctx, PW_CTX_TCP, CB_UPSTREAM_DATA, size, end_of_stream);
}

int pw_tcp_downstream_close(struct pw_ctx *ctx, enum pw_peer peer)
{
    int rc = usable(ctx, PW_CTX_TCP);
    uint32_t args[2] = {ctx->id, (uint32_t)peer};
    return rc != 0 ? rc : top(ctx->vm, ctx, CB_DOWNSTREAM_CLOSE, args, NULL);
}

int pw_tcp_upstream_close(struct pw_ctx *ctx, enum pw_peer peer)
{
    int rc = usable(ctx, PW_CTX_TCP);
    uint32_t args[2] = {ctx->id, (uint32_t)peer};
    return rc != 0 ? rc : top(ctx->vm, ctx, CB_UPSTREAM_CLOSE, args, NULL);
}

int pw_ctx_finish(struct pw_ctx *ctx)
{
    int rc = usable(ctx, ctx->kind);
    if (rc != 0)
        return rc;
    struct pw_vm *vm = ctx->vm;
    uint32_t res = 1;
    if ((rc = top(vm, ctx, CB_DONE, &ctx->id, &res)) != 0)
        return rc;
    if (res == 0) {
        ctx->state = CTX_DONE_PENDING;
        return 0;
    }
    FULL(vm)->depth++;
    rc = finalize(vm, ctx);
    if (rc == 0)
        rc = run_pending(vm);
    FULL(vm)->depth--;
    return rc != 0 ? rc : 1;
}

/* Takes ownership of ctx. */
void pw_ctx_free(struct pw_ctx *ctx)
{
    if (ctx == NULL)
        return;
    struct pw_vm *vm = ctx->vm;
    if (vm != NULL) {
        if (ctx->state != CTX_DELETED && !vm->broken && ctx->gen == vm->gen &&
            FULL(vm)->depth == 0) {
            ctx->state = CTX_DELETED;
            top(vm, ctx, CB_DELETE, &ctx->id, NULL);
        }
        if (ctx->prev)
            ctx->prev->next = ctx->next;
        else
            vm->live = ctx->next;
        if (ctx->next)
            ctx->next->prev = ctx->prev;
    }
    free(ctx);
}
