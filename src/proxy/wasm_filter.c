/* wasm_filter.c - the proxy-wasm embedder: plugins per generation, VMs per
 * worker, a chain of contexts per stream, and the host callbacks (struct
 * pw_ops) that answer filters from the stream's state. See wasm_filter.h.
 *
 * Every pw_ops callback gets the `user` of the context the filter acts on:
 * a struct wf_slot for a stream context, the struct wf_vm for the root
 * context. Both start with struct wf_user so one cast tells them apart.
 *
 * Callbacks never call back into the embedder's request code: what a
 * filter asks for from a tick (continue, a local response, a close) is
 * recorded in the stream and delivered by the stream's resume timer, on a
 * later turn of the loop, when no filter call is on the stack. */
#include "proxy/wasm_filter.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "proxy/gen.h"
#include "proxy/metrics.h"
#include "proxy/wasm_call.h"
#include "proxy/wasm_grpc.h"
#include "proxy/worker.h"
#include "wasm/pw_host.h"

/* ---- types --------------------------------------------------------------- */

/* One WasmPlugin of a generation: loaded once, shared by every worker. */
struct wf_plugin {
    const struct cfg_wasm *cfg;
    struct pw_plugin *p;
    char *labels;            /* plugin="name" */
    uint32_t m_traps, m_fail_closed, m_fail_open, m_queue_full;
};

struct wf_gen {
    struct wf_plugin *pl;
    size_t n;
};

struct wf_vm;

struct wf_user {
    bool stream;             /* a struct wf_slot, else the struct wf_vm */
    struct wf_vm *vm;
};

#define WF_VM_METRICS 64
#define WF_VM_CALLS 64   /* proxy_http_call in flight per VM, and gRPC calls */

/* One plugin's instance on one worker. */
struct wf_vm {
    struct wf_user u;
    const struct wf_plugin *pl;
    struct worker *w;
    struct wgen *wg;         /* the clusters proxy_http_call may use */
    struct pw_vm *vm;        /* NULL until first needed, or after a failed start */
    struct wf_call *calls[WF_VM_CALLS]; /* proxy_http_call in flight */
    struct { struct wf_grpc *c; uint32_t token; } grpcs[WF_VM_CALLS]; /* gRPC calls, streams */
    uint32_t next_token;         /* of both kinds of calls */
    struct loop_timer tick;
    uint32_t tick_ms;
    uint64_t retry_at;       /* a failed start is not retried before (loop ms) */
    /* Metrics this VM defined: type, and a gauge's last value on this worker. */
    uint32_t nmet;
    struct { uint32_t id; int type; int64_t last; } met[WF_VM_METRICS];
};

struct wf_wgen {
    struct wlink link;       /* in this thread's list of every wgen's VMs */
    size_t n;
    struct wf_vm vms[];
};

/* Every wf_wgen of this worker thread, current and retired, so that the
 * worker's end can stop all their calls (wf_worker_drop_calls). */
static __thread struct wlink thread_wgens;

struct wf_slot {
    struct wf_user u;
    struct wf_stream *s;
    struct pw_ctx *ctx;      /* NULL: skipped (failed open, or never started) */
};

struct wf_bytes {
    uint8_t *p;
    size_t len, cap, off;    /* off: consumed from the front (output queues) */
};

enum wf_phase { PH_NONE, PH_REQ_HEADERS, PH_RESP_HEADERS, PH_REQ_BODY, PH_RESP_BODY,
                PH_REQ_TRAILERS, PH_RESP_TRAILERS, PH_TCP_OPEN, PH_TCP_DOWN, PH_TCP_UP };

struct wf_stream {
    struct worker *w;
    const struct wf_embed *e;
    void *owner;
    const char *route, *cluster;
    bool tcp;
    struct wf_map req, resp, req_tr, resp_tr;
    /* The phase being run, and where a paused one goes on. */
    enum wf_phase phase;
    uint32_t next;
    bool eos;
    bool in_call;            /* a filter call of this stream is on the stack */
    bool continued;          /* proxy_continue_stream during that call */
    bool paused;             /* waiting for the filter (request headers) */
    bool local_set, close_req;
    const uint8_t *body;     /* the chunk of a body phase */
    size_t body_len;
    struct wf_local local;
    struct loop_timer resume;
    struct wf_bytes pend[2]; /* tcp, [0] client->upstream, [1] upstream->client */
    struct wf_bytes out[2];
    uint8_t *prop;           /* the last property value handed out */
    size_t prop_cap;
    char fail[256];
    uint32_t n;
    struct wf_slot slots[];
};

static const struct pw_ops wf_ops;

/* ---- small helpers ------------------------------------------------------- */

static struct wf_stream *stream_of(void *user)
{
    struct wf_user *u = user;
    return u->stream ? ((struct wf_slot *)user)->s : NULL;
}

static int bytes_put(struct wf_bytes *b, size_t at, size_t size, const uint8_t *p, size_t n)
{
    /* Replace [at, at+size) of the live bytes with p[0..n). */
    if (at > b->len - b->off)
        at = b->len - b->off;
    if (size > b->len - b->off - at)
        size = b->len - b->off - at;
    size_t need = b->len - b->off - size + n;
    if (need > 16u * WF_TCP_MAX_HELD)
        return -1;
    if (b->off) { /* compact first: the front was written out */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memmove(b->p + at + n, b->p + at + size, b->len - at - size);
    if (n)
        memcpy(b->p + at, p, n);
    b->len = need;
    return 0;
}

static void bytes_free(struct wf_bytes *b)
{
    free(b->p);
    *b = (struct wf_bytes){0};
}

static void map_free(struct wf_map *m)
{
    wf_map_clear(m);
    free(m->e);
    m->e = NULL;
    m->cap = 0;
}

static void local_clear(struct wf_local *l)
{
    free(l->body);
    free(l->details);
    map_free(&l->headers);
    l->body = l->details = NULL;
    l->body_len = 0;
}

/* ---- generations ----------------------------------------------------------- */

static int plugin_order(const struct gen *g, const uint16_t *a, const uint16_t *b)
{
    int32_t oa = g->cfg->wasm[*a].order, ob = g->cfg->wasm[*b].order;
    if (oa != ob)
        return oa < ob ? -1 : 1;
    return *a < *b ? -1 : *a > *b;
}

/* Insertion sort by order (lists are short; stable for equal orders). */
static void sort_plugins(const struct gen *g, uint16_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && plugin_order(g, &v[j - 1], &v[j]) > 0; j--) {
            uint16_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

static int plugin_load(struct wf_plugin *pl, const struct cfg_wasm *cw, char *err, size_t errlen)
{
    char perr[400], esc[300];
    pl->cfg = cw;
    if (pw_plugin_new(cw->name, cw->bytes, cw->nbytes, (const uint8_t *)cw->config,
                      cw->config ? cw->config_len : 0, &pl->p, perr, sizeof(perr)) != 0) {
        snprintf(err, errlen, "%s:%d: WasmPlugin '%s': %s", cw->where.file, cw->where.line,
                 cw->name, perr);
        return -1;
    }
    metrics_label_escape(esc, sizeof(esc), cw->name);
    if (asprintf(&pl->labels, "plugin=\"%s\"", esc) < 0) {
        pl->labels = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pl->m_traps = metrics_counter("strand_wasm_traps_total",
                                  "WasmPlugin calls that trapped (out of fuel included).",
                                  pl->labels);
    char l2[400];
    snprintf(l2, sizeof(l2), "%s,policy=\"closed\"", pl->labels);
    pl->m_fail_closed = metrics_counter(
        "strand_wasm_failures_total",
        "Requests and connections a failing WasmPlugin affected, by failurePolicy.", l2);
    snprintf(l2, sizeof(l2), "%s,policy=\"open\"", pl->labels);
    pl->m_fail_open = metrics_counter(
        "strand_wasm_failures_total",
        "Requests and connections a failing WasmPlugin affected, by failurePolicy.", l2);
    pl->m_queue_full = metrics_counter(
        "strand_wasm_queue_full_total",
        "Items a WasmPlugin could not enqueue because the shared queue was full.", pl->labels);
    return 0;
}

/* The listener's plugins, sorted. */
static int listener_plugins(struct gen *g, struct gen_listener *gl)
{
    const struct config *cfg = g->cfg;
    uint16_t *v = calloc(cfg->nwasm, sizeof(*v));
    if (!v)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < cfg->nwasm; i++)
        for (size_t j = 0; j < cfg->wasm[i].nlisteners; j++)
            if (strcmp(cfg->wasm[i].listeners[j], gl->cfg->name) == 0) {
                v[n++] = (uint16_t)i;
                break;
            }
    if (n == 0) {
        free(v);
        return 0;
    }
    sort_plugins(g, v, n);
    gl->wasm = v;
    gl->nwasm = (uint32_t)n;
    return 0;
}

int wf_gen_build(struct gen *g, char *err, size_t errlen)
{
    const struct config *cfg = g->cfg;
    if (cfg->nwasm == 0)
        return 0;
    struct wf_gen *wg = calloc(1, sizeof(*wg));
    if (!wg || !(wg->pl = calloc(cfg->nwasm, sizeof(*wg->pl)))) {
        free(wg);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->wasm = wg;
    for (size_t i = 0; i < cfg->nwasm; i++) {
        if (plugin_load(&wg->pl[i], &cfg->wasm[i], err, errlen) < 0)
            return -1;
        wg->n++;
    }
    for (size_t i = 0; i < g->nlisteners; i++)
        if (listener_plugins(g, &g->listeners[i]) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    return 0;
}

void wf_gen_free(struct gen *g)
{
    for (size_t i = 0; i < g->nlisteners; i++)
        free(g->listeners[i].wasm);
    struct wf_gen *wg = g->wasm;
    if (!wg)
        return;
    for (size_t i = 0; i < wg->n; i++) {
        pw_plugin_free(wg->pl[i].p);
        free(wg->pl[i].labels);
    }
    free(wg->pl);
    free(wg);
    g->wasm = NULL;
}

bool wf_listener_has(const struct gen_listener *gl) { return gl->nwasm > 0; }

/* ---- VMs ------------------------------------------------------------------ */

static void vm_tick(struct loop *l, struct loop_timer *t);
static void inbox_forget(struct wf_inbox *in, const struct wf_vm *vm);

static struct wf_wgen *wgen_vms(struct wgen *wg)
{
    if (wg->wasm)
        return wg->wasm;
    struct wf_gen *g = wg->gen->wasm;
    struct wf_wgen *ww = calloc(1, sizeof(*ww) + g->n * sizeof(ww->vms[0]));
    if (!ww)
        return NULL;
    ww->n = g->n;
    if (!thread_wgens.next)
        wlist_init(&thread_wgens);
    wlist_add(&thread_wgens, &ww->link);
    for (size_t i = 0; i < g->n; i++) {
        struct wf_vm *vm = &ww->vms[i];
        vm->u.vm = vm;
        vm->pl = &g->pl[i];
        vm->w = wg->w;
        vm->wg = wg;
        vm->tick.cb = vm_tick;
        vm->tick.ud = vm;
    }
    wg->wasm = ww;
    return ww;
}

/* Stops the VM's HTTP and gRPC calls, with no callback. */
static void vm_drop_calls(struct wf_vm *vm)
{
    for (int k = 0; k < WF_VM_CALLS; k++) {
        wf_call_cancel(vm->calls[k]);
        wf_grpc_cancel(vm->grpcs[k].c);
    }
}

void wf_worker_drop_calls(void)
{
    if (!thread_wgens.next)
        return;
    for (struct wlink *l = thread_wgens.next; l != &thread_wgens; l = l->next) {
        struct wf_wgen *ww = (struct wf_wgen *)(void *)l;
        for (size_t i = 0; i < ww->n; i++)
            vm_drop_calls(&ww->vms[i]);
    }
}

void wf_wgen_free(struct wgen *wg)
{
    struct wf_wgen *ww = wg->wasm;
    if (!ww)
        return;
    for (size_t i = 0; i < ww->n; i++) {
        loop_timer_cancel(wg->w->loop, &ww->vms[i].tick);
        vm_drop_calls(&ww->vms[i]);
        /* No queue tells the VM any more once it is freed; then its
         * notifications still waiting go. */
        pw_vm_free(ww->vms[i].vm);
        inbox_forget(wg->w->wasm_inbox, &ww->vms[i]);
    }
    wlist_del(&ww->link);
    free(ww);
    wg->wasm = NULL;
}

/* A trap (or any failure) of vm: counted and logged once per trap. The
 * instance's HTTP and gRPC calls are dropped: their tokens mean nothing to
 * the instance that replaces it. */
static void vm_trapped(struct wf_vm *vm, int rc)
{
    if (rc != PW_ERR_TRAP)
        return;
    metrics_add(vm->w->shard, vm->pl->m_traps, 1);
    loop_timer_cancel(vm->w->loop, &vm->tick);
    vm_drop_calls(vm);
    log_warn("wasm plugin '%s' trapped: %s (the instance is recreated for the next stream)",
             vm->pl->cfg->name, pw_vm_error(vm->vm));
}

/* A running VM for vm's plugin: started or recreated as needed. NULL when
 * it cannot start (logged; not retried for a second). */
static struct pw_vm *vm_ready(struct wf_vm *vm)
{
    uint64_t now = loop_now(vm->w->loop);
    if (vm->vm && !pw_vm_broken(vm->vm))
        return vm->vm;
    if (now < vm->retry_at)
        return NULL;
    char err[400];
    int rc;
    if (vm->vm) {
        loop_timer_cancel(vm->w->loop, &vm->tick);
        rc = pw_vm_recreate(vm->vm);
        if (rc != 0)
            snprintf(err, sizeof(err), "%s", pw_vm_error(vm->vm));
    } else {
        struct pw_vm_opts o = {.fuel = vm->pl->cfg->fuel, .log_level = PW_LOG_INFO};
        rc = pw_vm_new(vm->pl->p, &wf_ops, &vm->u, &o, &vm->vm, err, sizeof(err));
    }
    if (rc != 0) {
        log_error("wasm plugin '%s': cannot start its VM: %s", vm->pl->cfg->name, err);
        vm->retry_at = now + 1000;
        return NULL;
    }
    return vm->vm;
}

static void vm_tick(struct loop *l, struct loop_timer *t)
{
    struct wf_vm *vm = t->ud;
    if (!vm->vm || pw_vm_broken(vm->vm) || !vm->tick_ms)
        return;
    /* Armed before the call: the filter may change or stop the period. */
    loop_timer_arm(l, &vm->tick, loop_now(l) + vm->tick_ms);
    int rc = pw_vm_tick(vm->vm);
    if (rc < 0)
        vm_trapped(vm, rc);
}

/* ---- shared-queue notifications ------------------------------------------- */

/* Beyond this many waiting notifications a worker drops new ones: the
 * items stay in their queue for the filter's next dequeue. */
#define WF_INBOX_MAX 65536u

struct wf_note {
    struct wf_vm *vm;        /* NULL once its VM is freed */
    uint32_t queue_id;
};

struct wf_inbox {
    pthread_mutex_t mu;      /* posts come from any worker's thread */
    struct wf_note *v;
    size_t n, cap;
};

struct wf_inbox *wf_inbox_new(void)
{
    struct wf_inbox *in = calloc(1, sizeof(*in));
    if (in && pthread_mutex_init(&in->mu, NULL) != 0) {
        free(in);
        return NULL;
    }
    return in;
}

/* Takes ownership of in. */
void wf_inbox_free(struct wf_inbox *in)
{
    if (!in)
        return;
    pthread_mutex_destroy(&in->mu);
    free(in->v);
    free(in);
}

/* Any thread: appends a notification. 0, or -1 when it was dropped. */
static int inbox_post(struct wf_inbox *in, struct wf_vm *vm, uint32_t queue_id)
{
    int rc = 0;
    pthread_mutex_lock(&in->mu);
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 16;
        struct wf_note *v = cap <= WF_INBOX_MAX ? realloc(in->v, cap * sizeof(*v)) : NULL;
        if (v) {
            in->v = v;
            in->cap = cap;
        }
    }
    if (in->n < in->cap)
        in->v[in->n++] = (struct wf_note){vm, queue_id};
    else
        rc = -1;
    pthread_mutex_unlock(&in->mu);
    return rc;
}

/* The worker's thread: vm is being freed; drop what waits for it. */
static void inbox_forget(struct wf_inbox *in, const struct wf_vm *vm)
{
    pthread_mutex_lock(&in->mu);
    for (size_t i = 0; i < in->n; i++)
        if (in->v[i].vm == vm)
            in->v[i].vm = NULL;
    pthread_mutex_unlock(&in->mu);
}

/* The oldest notification, taken out; 0 when none. One at a time: a
 * filter call may end a view and free VMs the rest point to (forgotten
 * in the inbox, so never delivered). */
static int inbox_take(struct wf_inbox *in, struct wf_note *out)
{
    int got = 0;
    pthread_mutex_lock(&in->mu);
    if (in->n > 0) {
        *out = in->v[0];
        memmove(in->v, in->v + 1, (in->n - 1) * sizeof(in->v[0]));
        in->n--;
        got = 1;
    }
    pthread_mutex_unlock(&in->mu);
    return got;
}

void wf_inbox_run(struct worker *w)
{
    struct wf_note nt;
    while (inbox_take(w->wasm_inbox, &nt)) {
        struct wf_vm *vm = nt.vm;
        if (!vm || !vm->vm || pw_vm_broken(vm->vm))
            continue;
        int rc = pw_vm_queue_ready(vm->vm, nt.queue_id);
        if (rc < 0)
            vm_trapped(vm, rc);
    }
}

/* ---- streams -------------------------------------------------------------- */

static void resume_cb(struct loop *l, struct loop_timer *t)
{
    struct wf_stream *s = t->ud;
    s->e->resume(s->owner);
}

/* Something a filter did outside a call of this stream needs the embedder. */
static void schedule_resume(struct wf_stream *s)
{
    if (!s->in_call && !loop_timer_armed(&s->resume))
        loop_timer_arm(s->w->loop, &s->resume, loop_now(s->w->loop));
}

static bool route_listed(const struct cfg_wasm *cw, const char *route)
{
    if (cw->nroutes == 0)
        return true;
    for (size_t i = 0; route && i < cw->nroutes; i++)
        if (strcmp(cw->routes[i], route) == 0)
            return true;
    return false;
}

/* A failed plugin of s: counted; skipped (open) or the phase fails (closed). */
static int slot_failed(struct wf_stream *s, struct wf_slot *sl, const char *why)
{
    const struct wf_plugin *pl = sl->u.vm->pl;
    if (sl->ctx) {
        pw_ctx_free(sl->ctx);
        sl->ctx = NULL;
    }
    if (pl->cfg->failure == CFG_FAIL_OPEN) {
        metrics_add(s->w->shard, pl->m_fail_open, 1);
        return WF_CONTINUE;
    }
    metrics_add(s->w->shard, pl->m_fail_closed, 1);
    snprintf(s->fail, sizeof(s->fail), "wasm plugin '%s' failed: %s", pl->cfg->name, why);
    return WF_FAIL;
}

struct wf_stream *wf_stream_new(struct wgen *wg, const struct gen_listener *gl,
                                const char *route, bool tcp, const struct wf_embed *e,
                                void *owner, int *failed)
{
    *failed = 0;
    if (gl->nwasm == 0)
        return NULL;
    struct wf_wgen *ww = wgen_vms(wg);
    if (!ww) {
        *failed = 1;
        return NULL;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < gl->nwasm; i++)
        n += tcp || route_listed(ww->vms[gl->wasm[i]].pl->cfg, route);
    if (n == 0)
        return NULL;
    struct wf_stream *s = calloc(1, sizeof(*s) + n * sizeof(s->slots[0]));
    if (!s) {
        *failed = 1;
        return NULL;
    }
    s->w = wg->w;
    s->e = e;
    s->owner = owner;
    s->route = route;
    s->tcp = tcp;
    s->local.grpc_status = -1;
    s->resume.cb = resume_cb;
    s->resume.ud = s;
    uint32_t live = 0;
    for (uint32_t i = 0; i < gl->nwasm; i++) {
        struct wf_vm *vm = &ww->vms[gl->wasm[i]];
        if (!tcp && !route_listed(vm->pl->cfg, route))
            continue;
        struct wf_slot *sl = &s->slots[s->n++];
        sl->u = (struct wf_user){true, vm};
        sl->s = s;
        struct pw_vm *pv = vm_ready(vm);
        if (pv)
            sl->ctx = pw_ctx_new(pv, tcp ? PW_CTX_TCP : PW_CTX_HTTP, &sl->u);
        if (pv && !sl->ctx)
            vm_trapped(vm, PW_ERR_TRAP);
        if (!sl->ctx && slot_failed(s, sl, pv ? "context creation failed" : "VM not running") ==
                            WF_FAIL) {
            log_warn("%s", s->fail);
            wf_stream_free(s);
            *failed = 1;
            return NULL;
        }
        live += sl->ctx != NULL;
    }
    if (live == 0) {
        wf_stream_free(s);
        return NULL;
    }
    return s;
}

void wf_stream_free(struct wf_stream *s)
{
    if (!s)
        return;
    /* What the filters ask for while finishing has nobody to go to: no
     * resume may be scheduled (it would outlive s). */
    s->in_call = true;
    for (uint32_t i = 0; i < s->n; i++) {
        struct wf_slot *sl = &s->slots[i];
        if (!sl->ctx)
            continue;
        /* A filter that wants to finish later (proxy_on_done false) is not
         * waited for: the stream is over for the proxy. */
        int rc = pw_ctx_finish(sl->ctx);
        if (rc < 0)
            vm_trapped(sl->u.vm, rc);
        pw_ctx_free(sl->ctx);
    }
    loop_timer_cancel(s->w->loop, &s->resume);
    map_free(&s->req);
    map_free(&s->resp);
    map_free(&s->req_tr);
    map_free(&s->resp_tr);
    local_clear(&s->local);
    for (int d = 0; d < 2; d++) {
        bytes_free(&s->pend[d]);
        bytes_free(&s->out[d]);
    }
    free(s->prop);
    free(s);
}

struct wf_map *wf_req_map(struct wf_stream *s) { return &s->req; }
struct wf_map *wf_resp_map(struct wf_stream *s) { return &s->resp; }
void wf_set_owner(struct wf_stream *s, const struct wf_embed *e, void *owner)
{
    s->e = e;
    s->owner = owner;
}

void wf_set_names(struct wf_stream *s, const char *route, const char *cluster)
{
    s->route = route;
    s->cluster = cluster;
}
bool wf_paused(const struct wf_stream *s) { return s->paused; }
const struct wf_local *wf_local(const struct wf_stream *s) { return &s->local; }
const char *wf_fail_reason(const struct wf_stream *s) { return s->fail; }

/* One filter call of the current phase. */
static int call_one(struct wf_stream *s, struct pw_ctx *c)
{
    switch (s->phase) {
    case PH_REQ_HEADERS: return pw_http_request_headers(c, s->req.n, s->eos);
    case PH_RESP_HEADERS: return pw_http_response_headers(c, s->resp.n, s->eos);
    case PH_REQ_TRAILERS: return pw_http_request_trailers(c, s->req_tr.n);
    case PH_RESP_TRAILERS: return pw_http_response_trailers(c, s->resp_tr.n);
    case PH_REQ_BODY: return pw_http_request_body(c, (uint32_t)s->body_len, s->eos);
    case PH_RESP_BODY: return pw_http_response_body(c, (uint32_t)s->body_len, s->eos);
    case PH_TCP_OPEN: return pw_tcp_new_connection(c);
    case PH_TCP_DOWN:
        return pw_tcp_downstream_data(c, (uint32_t)(s->pend[0].len - s->pend[0].off), s->eos);
    case PH_TCP_UP:
        return pw_tcp_upstream_data(c, (uint32_t)(s->pend[1].len - s->pend[1].off), s->eos);
    default: return PW_ERR_STATE;
    }
}

/* Runs the current phase from s->next on. Response phases go through the
 * chain backwards, as the response travels back through the filters. */
static int run_phase(struct wf_stream *s)
{
    bool back = s->phase == PH_RESP_HEADERS || s->phase == PH_RESP_BODY ||
                s->phase == PH_RESP_TRAILERS || s->phase == PH_TCP_UP;
    bool pausable = s->phase == PH_REQ_HEADERS || s->phase == PH_TCP_DOWN || s->phase == PH_TCP_UP;
    while (s->next < s->n) {
        struct wf_slot *sl = &s->slots[back ? s->n - 1 - s->next : s->next];
        s->next++;
        if (!sl->ctx)
            continue;
        s->in_call = true;
        s->continued = false;
        int rc = call_one(s, sl->ctx);
        s->in_call = false;
        if (rc < 0) {
            vm_trapped(sl->u.vm, rc);
            if (slot_failed(s, sl, pw_vm_error(sl->u.vm->vm)) == WF_FAIL)
                return WF_FAIL;
            continue;
        }
        if (s->local_set)
            return WF_LOCAL;
        if (s->close_req) {
            snprintf(s->fail, sizeof(s->fail), "wasm plugin '%s' closed the stream",
                     sl->u.vm->pl->cfg->name);
            return WF_FAIL;
        }
        if (rc == PW_PAUSE && pausable && !s->continued) {
            s->paused = s->phase == PH_REQ_HEADERS;
            return WF_PAUSE;
        }
    }
    return WF_CONTINUE;
}

static int start_phase(struct wf_stream *s, enum wf_phase ph, bool eos)
{
    /* A local response of an earlier phase was answered (or could not be:
     * the response had started); this phase reports only its own. */
    s->local_set = false;
    s->phase = ph;
    s->next = 0;
    s->eos = eos;
    s->paused = false;
    return run_phase(s);
}

int wf_request_headers(struct wf_stream *s, bool eos) { return start_phase(s, PH_REQ_HEADERS, eos); }
int wf_response_headers(struct wf_stream *s, bool eos)
{
    return start_phase(s, PH_RESP_HEADERS, eos);
}

static int body_phase(struct wf_stream *s, enum wf_phase ph, const uint8_t *p, size_t n, bool eos)
{
    /* A body phase never interrupts a paused request phase. */
    enum wf_phase saved = s->phase;
    uint32_t next = s->next;
    bool paused = s->paused;
    s->body = p;
    s->body_len = n;
    int rc = start_phase(s, ph, eos);
    s->body = NULL;
    s->body_len = 0;
    if (paused) {
        s->phase = saved;
        s->next = next;
        s->paused = true;
    }
    return rc;
}

int wf_request_body(struct wf_stream *s, const uint8_t *p, size_t n, bool eos)
{
    return body_phase(s, PH_REQ_BODY, p, n, eos);
}

int wf_response_body(struct wf_stream *s, const uint8_t *p, size_t n, bool eos)
{
    return body_phase(s, PH_RESP_BODY, p, n, eos);
}

struct wf_map *wf_req_trailers(struct wf_stream *s) { return &s->req_tr; }
struct wf_map *wf_resp_trailers(struct wf_stream *s) { return &s->resp_tr; }

/* Trailers are not held: the phase runs once the head went on (like a
 * body's end), so a Pause there is taken as Continue. */
int wf_request_trailers(struct wf_stream *s)
{
    int rc = body_phase(s, PH_REQ_TRAILERS, NULL, 0, true);
    return rc == WF_PAUSE ? WF_CONTINUE : rc;
}

int wf_response_trailers(struct wf_stream *s)
{
    int rc = start_phase(s, PH_RESP_TRAILERS, true);
    return rc == WF_PAUSE ? WF_CONTINUE : rc;
}

int wf_resume(struct wf_stream *s)
{
    if (s->local_set)
        return WF_LOCAL;
    if (s->close_req) {
        snprintf(s->fail, sizeof(s->fail), "a wasm plugin closed the stream");
        return WF_FAIL;
    }
    if (!s->paused)
        return WF_CONTINUE;
    s->paused = false;
    return run_phase(s);
}

/* ---- TCP ------------------------------------------------------------------ */

int wf_tcp_open(struct wf_stream *s)
{
    int rc = start_phase(s, PH_TCP_OPEN, false);
    return rc == WF_PAUSE ? WF_CONTINUE : rc;
}

int wf_tcp_data(struct wf_stream *s, bool up, const uint8_t *p, size_t n, bool eos)
{
    struct wf_bytes *pb = &s->pend[up];
    if (n && bytes_put(pb, pb->len - pb->off, 0, p, n) < 0) {
        snprintf(s->fail, sizeof(s->fail), "wasm filter: out of memory holding stream bytes");
        return WF_FAIL;
    }
    int rc = start_phase(s, up ? PH_TCP_UP : PH_TCP_DOWN, eos);
    if (rc == WF_FAIL)
        return rc;
    /* At the end of the stream nothing more can come to wait for. */
    if (rc == WF_PAUSE && !eos)
        return WF_PAUSE;
    struct wf_bytes *ob = &s->out[up];
    size_t len = pb->len - pb->off;
    if (len && bytes_put(ob, ob->len - ob->off, 0, pb->p + pb->off, len) < 0) {
        snprintf(s->fail, sizeof(s->fail), "wasm filter: out of memory holding stream bytes");
        return WF_FAIL;
    }
    pb->len = pb->off = 0;
    return WF_CONTINUE;
}

size_t wf_tcp_out(struct wf_stream *s, bool up, const uint8_t **p)
{
    struct wf_bytes *b = &s->out[up];
    *p = b->p + b->off;
    return b->len - b->off;
}

void wf_tcp_consume(struct wf_stream *s, bool up, size_t n)
{
    struct wf_bytes *b = &s->out[up];
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

size_t wf_tcp_held(const struct wf_stream *s, bool up)
{
    return s->pend[up].len - s->pend[up].off + s->out[up].len - s->out[up].off;
}

void wf_tcp_closed(struct wf_stream *s, bool up)
{
    for (uint32_t i = 0; i < s->n; i++) {
        struct wf_slot *sl = &s->slots[i];
        if (!sl->ctx)
            continue;
        int rc = up ? pw_tcp_upstream_close(sl->ctx, PW_PEER_REMOTE)
                    : pw_tcp_downstream_close(sl->ctx, PW_PEER_REMOTE);
        if (rc < 0) {
            vm_trapped(sl->u.vm, rc);
            slot_failed(s, sl, pw_vm_error(sl->u.vm->vm));
        }
    }
}

/* ---- host callbacks: maps ---------------------------------------------------- */

static struct wf_map *map_of(struct wf_stream *s, int map)
{
    if (!s || s->tcp)
        return NULL;
    switch (map) {
    case PW_MAP_REQUEST_HEADERS: return &s->req;
    case PW_MAP_REQUEST_TRAILERS: return &s->req_tr;
    case PW_MAP_RESPONSE_HEADERS: return &s->resp;
    case PW_MAP_RESPONSE_TRAILERS: return &s->resp_tr;
    default: return NULL;
    }
}

static int op_map_each(void *user, int map, pw_kv_fn fn, void *arg)
{
    struct wf_map *m = map_of(stream_of(user), map);
    if (!m)
        return PW_NOT_FOUND;
    for (uint32_t i = 0; i < m->n; i++) {
        struct pw_kv kv = {m->e[i].key, m->e[i].key_len, m->e[i].value, m->e[i].value_len};
        if (fn(arg, &kv))
            break;
    }
    return PW_OK;
}

static int op_map_add(void *user, int map, const struct pw_kv *kv)
{
    struct wf_map *m = map_of(stream_of(user), map);
    if (!m)
        return PW_NOT_FOUND;
    if (wf_map_add(m, kv->key, kv->key_len, kv->value, kv->value_len, true) < 0)
        return PW_BAD_ARGUMENT;
    m->dirty = true;
    return PW_OK;
}

static int op_map_remove(void *user, int map, const char *key, size_t key_len)
{
    struct wf_map *m = map_of(stream_of(user), map);
    if (!m)
        return PW_NOT_FOUND;
    if (wf_map_remove(m, key, key_len))
        m->dirty = true;
    return PW_OK;
}

static int op_map_replace(void *user, int map, const struct pw_kv *kv)
{
    int rc = op_map_remove(user, map, kv->key, kv->key_len);
    return rc == PW_OK ? op_map_add(user, map, kv) : rc;
}

static int op_map_set(void *user, int map, const struct pw_kv *pairs, size_t n)
{
    struct wf_map *m = map_of(stream_of(user), map);
    if (!m)
        return PW_NOT_FOUND;
    wf_map_clear(m);
    m->dirty = true;
    for (size_t i = 0; i < n; i++)
        if (wf_map_add(m, pairs[i].key, pairs[i].key_len, pairs[i].value, pairs[i].value_len,
                       true) < 0)
            return PW_BAD_ARGUMENT;
    return PW_OK;
}

/* ---- host callbacks: buffers ------------------------------------------------ */

static int op_buffer_get(void *user, int buffer, const uint8_t **data, size_t *len)
{
    struct wf_stream *s = stream_of(user);
    if (!s)
        return PW_NOT_FOUND;
    if ((buffer == PW_BUFFER_REQUEST_BODY && s->phase == PH_REQ_BODY) ||
        (buffer == PW_BUFFER_RESPONSE_BODY && s->phase == PH_RESP_BODY)) {
        *data = s->body;
        *len = s->body_len;
        return PW_OK;
    }
    if (s->tcp && (buffer == PW_BUFFER_DOWNSTREAM_DATA || buffer == PW_BUFFER_UPSTREAM_DATA)) {
        struct wf_bytes *b = &s->pend[buffer == PW_BUFFER_UPSTREAM_DATA];
        *data = b->p + b->off;
        *len = b->len - b->off;
        return PW_OK;
    }
    return PW_NOT_FOUND;
}

static int op_buffer_set(void *user, int buffer, size_t start, size_t size, const uint8_t *data,
                         size_t len)
{
    struct wf_stream *s = stream_of(user);
    if (!s)
        return PW_NOT_FOUND;
    if (s->tcp && (buffer == PW_BUFFER_DOWNSTREAM_DATA || buffer == PW_BUFFER_UPSTREAM_DATA))
        return bytes_put(&s->pend[buffer == PW_BUFFER_UPSTREAM_DATA], start, size, data, len) < 0
                   ? PW_BAD_ARGUMENT
                   : PW_OK;
    /* HTTP bodies stream through the proxy without being held, so their
     * bytes cannot be rewritten (docs/wasm.md). */
    return PW_UNIMPLEMENTED;
}

/* ---- host callbacks: properties --------------------------------------------- */

/* Hands out a copy of v (valid until the next property call on s). */
static int prop_out(struct wf_stream *s, const void *v, size_t n, const uint8_t **out,
                    size_t *outlen)
{
    if (n > s->prop_cap) {
        uint8_t *p = realloc(s->prop, n);
        if (!p)
            return PW_INTERNAL_FAILURE;
        s->prop = p;
        s->prop_cap = n;
    }
    if (n)
        memcpy(s->prop, v, n);
    *out = s->prop;
    *outlen = n;
    return PW_OK;
}

/* Integers are 8 bytes little-endian, as the SDKs decode them. */
static int prop_int(struct wf_stream *s, int64_t v, const uint8_t **out, size_t *outlen)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)v >> (8 * i));
    return prop_out(s, b, 8, out, outlen);
}

static int prop_str(struct wf_stream *s, const char *v, const uint8_t **out, size_t *outlen)
{
    return v ? prop_out(s, v, strlen(v), out, outlen) : PW_NOT_FOUND;
}

static int prop_map(struct wf_stream *s, const char *key, const uint8_t **out, size_t *outlen)
{
    const struct wf_kv *kv = wf_map_get(&s->req, key, strlen(key));
    return kv ? prop_out(s, kv->value, kv->value_len, out, outlen) : PW_NOT_FOUND;
}

/* A Strand attribute by name: request attributes from the request map
 * (it may have been changed by a filter), the rest from the embedder. */
static int prop_attr(struct wf_stream *s, const char *name, const uint8_t **out, size_t *outlen,
                     bool as_int)
{
    struct attr_key key;
    attr_val v[1];
    if (attr_key_init(&key, name, strlen(name)) != 0)
        return PW_NOT_FOUND;
    switch (key.id) {
    case ATTR_METHOD: return s->tcp ? PW_NOT_FOUND : prop_map(s, ":method", out, outlen);
    case ATTR_AUTHORITY: return s->tcp ? PW_NOT_FOUND : prop_map(s, ":authority", out, outlen);
    case ATTR_SCHEME: return s->tcp ? PW_NOT_FOUND : prop_map(s, ":scheme", out, outlen);
    case ATTR_HEADER: return s->tcp ? PW_NOT_FOUND : prop_map(s, key.sub, out, outlen);
    case ATTR_PATH: {
        const struct wf_kv *kv = s->tcp ? NULL : wf_map_get(&s->req, ":path", 5);
        if (!kv)
            return PW_NOT_FOUND;
        const char *q = memchr(kv->value, '?', kv->value_len);
        return prop_out(s, kv->value, q ? (size_t)(q - kv->value) : kv->value_len, out, outlen);
    }
    default: break;
    }
    if (!s->e->attr || s->e->attr(s->owner, &key, v, 1) < 1)
        return PW_NOT_FOUND;
    if (as_int) {
        char num[24];
        size_t n = v[0].len < sizeof(num) - 1 ? v[0].len : sizeof(num) - 1;
        memcpy(num, v[0].p, n);
        num[n] = 0;
        return prop_int(s, strtoll(num, NULL, 10), out, outlen);
    }
    return prop_out(s, v[0].p, v[0].len, out, outlen);
}

/* Envoy's attribute names (what SDK filters ask for) mapped onto Strand's;
 * any other dotted name is looked up as a Strand attribute ("header.x",
 * "source.identity", "tls.sni", ...). */
static int op_property_get(void *user, const char *path, size_t len, const uint8_t **value,
                           size_t *value_len)
{
    struct wf_stream *s = stream_of(user);
    char name[256];
    if (!s || len == 0 || len >= sizeof(name))
        return PW_NOT_FOUND;
    for (size_t i = 0; i < len; i++)
        name[i] = path[i] ? path[i] : '.';
    while (len > 0 && name[len - 1] == '.')
        len--;
    name[len] = 0;
    const uint8_t **o = value;
    size_t *ol = value_len;
    if (!s->tcp) {
        if (strcmp(name, "request.path") == 0)
            return prop_map(s, ":path", o, ol);
        if (strcmp(name, "request.url_path") == 0)
            return prop_attr(s, "path", o, ol, false);
        if (strcmp(name, "request.host") == 0)
            return prop_map(s, ":authority", o, ol);
        if (strcmp(name, "request.method") == 0)
            return prop_map(s, ":method", o, ol);
        if (strcmp(name, "request.scheme") == 0)
            return prop_map(s, ":scheme", o, ol);
        if (strcmp(name, "request.id") == 0)
            return prop_map(s, "x-request-id", o, ol);
        if (strcmp(name, "request.protocol") == 0)
            return prop_attr(s, "protocol", o, ol, false);
        if (strcmp(name, "response.code") == 0) {
            const struct wf_kv *kv = wf_map_get(&s->resp, ":status", 7);
            return kv ? prop_int(s, strtoll(kv->value, NULL, 10), o, ol) : PW_NOT_FOUND;
        }
        if (strcmp(name, "route_name") == 0)
            return prop_str(s, s->route, o, ol);
        if (strcmp(name, "cluster_name") == 0)
            return prop_str(s, s->cluster, o, ol);
    }
    if (strcmp(name, "source.principal") == 0 ||
        strcmp(name, "connection.uri_san_peer_certificate") == 0)
        return prop_attr(s, "source.identity", o, ol, false);
    if (strcmp(name, "connection.requested_server_name") == 0)
        return prop_attr(s, "tls.sni", o, ol, false);
    if (strcmp(name, "connection.mtls") == 0) {
        uint8_t yes = prop_attr(s, "source.identity", o, ol, false) == PW_OK;
        return prop_out(s, &yes, 1, o, ol);
    }
    if (strcmp(name, "destination.port") == 0)
        return prop_attr(s, "destination.port", o, ol, true);
    return prop_attr(s, name, o, ol, false);
}

/* ---- host callbacks: stream actions ---------------------------------------- */

static int op_send_local_response(void *user, const struct pw_local_response *r)
{
    struct wf_stream *s = stream_of(user);
    if (!s || s->tcp)
        return PW_NOT_FOUND;
    if (r->status < 200 || r->status > 599)
        return PW_BAD_ARGUMENT;
    local_clear(&s->local);
    struct wf_local *l = &s->local;
    l->status = (int)r->status;
    l->grpc_status = r->grpc_status;
    if (r->body_len && !(l->body = malloc(r->body_len)))
        return PW_INTERNAL_FAILURE;
    if (r->body_len)
        memcpy(l->body, r->body, r->body_len);
    l->body_len = r->body_len;
    if (r->details_len) {
        /* details are not NUL-terminated (strndup may read past them) */
        if (!(l->details = malloc(r->details_len + 1)))
            return PW_INTERNAL_FAILURE;
        memcpy(l->details, r->details, r->details_len);
        l->details[r->details_len] = 0;
    }
    for (size_t i = 0; i < r->nheaders; i++)
        if (wf_map_add(&l->headers, r->headers[i].key, r->headers[i].key_len, r->headers[i].value,
                       r->headers[i].value_len, true) < 0)
            return PW_BAD_ARGUMENT;
    s->local_set = true;
    schedule_resume(s);
    return PW_OK;
}

static int op_continue_stream(void *user, int stream)
{
    struct wf_stream *s = stream_of(user);
    if (!s)
        return PW_NOT_FOUND;
    if (s->in_call)
        s->continued = true;
    else if (s->paused)
        schedule_resume(s);
    return PW_OK;
}

static int op_close_stream(void *user, int stream)
{
    struct wf_stream *s = stream_of(user);
    if (!s)
        return PW_NOT_FOUND;
    s->close_req = true;
    schedule_resume(s);
    return PW_OK;
}

/* ---- host callbacks: metrics, logs, ticks ----------------------------------- */

/* "strand_wasm_" + the name (less a leading "wasm_", so "wasm_bytes" does
 * not become strand_wasm_wasm_bytes) with anything outside [a-z0-9_] as
 * '_'; counters end in _total (the registry's rule). */
static int metric_family(int type, const char *name, size_t len, char *out, size_t outlen)
{
    static const char pre[] = "strand_wasm_";
    size_t o = sizeof(pre) - 1;
    if (len > 5 && strncasecmp(name, "wasm_", 5) == 0) {
        name += 5;
        len -= 5;
    }
    if (len == 0 || o + len + 7 > outlen)
        return -1;
    memcpy(out, pre, o);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        out[o++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '_';
    }
    out[o] = 0;
    if (type == PW_METRIC_COUNTER && (o < 6 || strcmp(out + o - 6, "_total") != 0))
        strcpy(out + o, "_total");
    return 0;
}

static int op_metric_define(void *user, int type, const char *name, size_t len, uint32_t *id)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    char fam[200];
    if (metric_family(type, name, len, fam, sizeof(fam)) < 0)
        return PW_BAD_ARGUMENT;
    static const char help[] = "Defined by a WasmPlugin filter.";
    const char *labels = vm->pl->labels;
    uint32_t m = type == PW_METRIC_COUNTER ? metrics_counter(fam, help, labels)
                 : type == PW_METRIC_GAUGE ? metrics_gauge(fam, help, labels)
                                           : metrics_histogram(fam, help, labels);
    if (m == METRICS_INVALID)
        return PW_BAD_ARGUMENT;
    for (uint32_t i = 0; i < vm->nmet; i++)
        if (vm->met[i].id == m) {
            *id = m;
            return PW_OK;
        }
    if (vm->nmet == WF_VM_METRICS)
        return PW_BAD_ARGUMENT;
    vm->met[vm->nmet].id = m;
    vm->met[vm->nmet].type = type;
    vm->met[vm->nmet].last = 0;
    vm->nmet++;
    *id = m;
    return PW_OK;
}

static int vm_metric(struct wf_vm *vm, uint32_t id)
{
    for (uint32_t i = 0; i < vm->nmet; i++)
        if (vm->met[i].id == id)
            return (int)i;
    return -1;
}

static int op_metric_increment(void *user, uint32_t id, int64_t delta)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    int i = vm_metric(vm, id);
    if (i < 0)
        return PW_NOT_FOUND;
    if (vm->met[i].type == PW_METRIC_COUNTER)
        metrics_add(vm->w->shard, id, (uint64_t)delta);
    else if (vm->met[i].type == PW_METRIC_GAUGE) {
        metrics_gauge_add(vm->w->shard, id, delta);
        vm->met[i].last += delta;
    } else
        return PW_BAD_ARGUMENT;
    return PW_OK;
}

static int op_metric_record(void *user, uint32_t id, uint64_t value)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    int i = vm_metric(vm, id);
    if (i < 0)
        return PW_NOT_FOUND;
    if (vm->met[i].type == PW_METRIC_HISTOGRAM) {
        metrics_observe(vm->w->shard, id, value);
    } else if (vm->met[i].type == PW_METRIC_GAUGE) {
        /* Each worker's shard holds its own VM's value; the scrape sums
         * them (every worker runs its own instance). */
        metrics_gauge_add(vm->w->shard, id, (int64_t)value - vm->met[i].last);
        vm->met[i].last = (int64_t)value;
    } else {
        return PW_BAD_ARGUMENT;
    }
    return PW_OK;
}

static int op_metric_get(void *user, uint32_t id, uint64_t *value)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    if (vm_metric(vm, id) < 0)
        return PW_NOT_FOUND;
    *value = metrics_read(id);
    return PW_OK;
}

static void op_log(void *user, int level, const char *msg, size_t len)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    enum log_level l = level <= PW_LOG_DEBUG ? LOG_DEBUG
                       : level == PW_LOG_INFO ? LOG_INFO
                       : level == PW_LOG_WARN ? LOG_WARN
                                              : LOG_ERROR;
    log_msg(l, "wasm %s: %.*s", vm->pl->cfg->name, (int)(len > 4000 ? 4000 : len), msg);
}

static void op_set_tick_period(void *user, uint32_t ms)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    vm->tick_ms = ms;
    if (ms == 0)
        loop_timer_cancel(vm->w->loop, &vm->tick);
    else
        loop_timer_arm(vm->w->loop, &vm->tick, loop_now(vm->w->loop) + ms);
}

/* ---- host callbacks: shared queues ------------------------------------------ */

/* Any thread, under the core's queue lock (so vm is alive): hand the news
 * to vm's worker, whose loop delivers it. */
static void op_queue_ready(void *user, uint32_t queue_id)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    struct worker *w = vm->w;
    if (inbox_post(w->wasm_inbox, vm, queue_id) == 0)
        loop_async_send(w->loop);
}

static void op_queue_full(void *user, uint32_t queue_id)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    (void)queue_id;
    metrics_add(vm->w->shard, vm->pl->m_queue_full, 1);
}

/* ---- host callbacks: HTTP calls --------------------------------------------- */

static void call_done(void *ud, uint32_t token, const struct wf_call_answer *a)
{
    struct wf_vm *vm = ud;
    if (!vm->vm || pw_vm_broken(vm->vm))
        return;
    int rc = pw_http_call_response(vm->vm, token, a->headers, a->nheaders, a->body, a->body_len,
                                   NULL, 0);
    if (rc < 0)
        vm_trapped(vm, rc);
}

/* The next call token of vm (never 0; HTTP and gRPC calls share them, so
 * a filter can key one table by token). */
static uint32_t vm_token(struct wf_vm *vm)
{
    if (++vm->next_token == 0)
        vm->next_token = 1;
    return vm->next_token;
}

static int op_http_call(void *user, const struct pw_http_call *call, uint32_t *token)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    int slot = -1;
    for (int k = 0; k < WF_VM_CALLS && slot < 0; k++)
        if (!vm->calls[k])
            slot = k;
    if (slot < 0)
        return PW_INTERNAL_FAILURE;
    uint32_t t = vm_token(vm);
    int rc = wf_call_start(vm->wg, call, t, call_done, vm, &vm->calls[slot]);
    if (rc == PW_OK)
        *token = t;
    return rc;
}

/* ---- host callbacks: gRPC calls --------------------------------------------- */

/* After a delivery to the filter: a trap drops the VM's calls (the one
 * delivering included: its sink stops). */
static void grpc_delivered(struct wf_vm *vm, int rc)
{
    if (rc < 0)
        vm_trapped(vm, rc);
}

/* Whether vm can take a gRPC callback now. */
static bool grpc_vm_ok(const struct wf_vm *vm)
{
    return vm->vm && !pw_vm_broken(vm->vm);
}

static void grpc_initial(void *ud, uint32_t token, const struct pw_kv *md, size_t n)
{
    struct wf_vm *vm = ud;
    if (grpc_vm_ok(vm))
        grpc_delivered(vm, pw_grpc_initial_metadata(vm->vm, token, md, n));
}

static void grpc_message(void *ud, uint32_t token, const uint8_t *msg, size_t len)
{
    struct wf_vm *vm = ud;
    if (grpc_vm_ok(vm))
        grpc_delivered(vm, pw_grpc_message(vm->vm, token, msg, len));
}

static void grpc_trailing(void *ud, uint32_t token, const struct pw_kv *md, size_t n)
{
    struct wf_vm *vm = ud;
    if (grpc_vm_ok(vm))
        grpc_delivered(vm, pw_grpc_trailing_metadata(vm->vm, token, md, n));
}

static void grpc_close(void *ud, uint32_t token, uint32_t status, const char *msg, size_t len)
{
    struct wf_vm *vm = ud;
    if (grpc_vm_ok(vm))
        grpc_delivered(vm, pw_grpc_close(vm->vm, token, status, msg, len));
}

static const struct wf_grpc_sink grpc_sink = {grpc_initial, grpc_message, grpc_trailing,
                                              grpc_close};

static int op_grpc_call(void *user, const struct pw_grpc_call *call, uint32_t *token)
{
    struct wf_vm *vm = ((struct wf_user *)user)->vm;
    int slot = -1;
    for (int k = 0; k < WF_VM_CALLS && slot < 0; k++)
        if (!vm->grpcs[k].c)
            slot = k;
    if (slot < 0)
        return PW_INTERNAL_FAILURE;
    uint32_t t = vm_token(vm);
    int rc = wf_grpc_start(vm->wg, call, t, &grpc_sink, vm, &vm->grpcs[slot].c);
    if (rc == PW_OK) {
        vm->grpcs[slot].token = t;
        *token = t;
    }
    return rc;
}

/* The VM's gRPC call with token, or NULL. Borrows vm. */
static struct wf_grpc *grpc_of(struct wf_vm *vm, uint32_t token)
{
    for (int k = 0; k < WF_VM_CALLS; k++)
        if (vm->grpcs[k].c && vm->grpcs[k].token == token)
            return vm->grpcs[k].c;
    return NULL;
}

static int op_grpc_send(void *user, uint32_t token, const uint8_t *msg, size_t len, bool end)
{
    struct wf_grpc *c = grpc_of(((struct wf_user *)user)->vm, token);
    return c ? wf_grpc_send(c, msg, len, end) : PW_NOT_FOUND;
}

static int op_grpc_cancel(void *user, uint32_t token, bool close)
{
    struct wf_grpc *c = grpc_of(((struct wf_user *)user)->vm, token);
    if (!c)
        return PW_NOT_FOUND;
    if (close)
        wf_grpc_close(c);
    else
        wf_grpc_cancel(c);
    return PW_OK;
}

static const struct pw_ops wf_ops = {
    .map_each = op_map_each,
    .map_add = op_map_add,
    .map_replace = op_map_replace,
    .map_remove = op_map_remove,
    .map_set = op_map_set,
    .buffer_get = op_buffer_get,
    .buffer_set = op_buffer_set,
    .property_get = op_property_get,
    .send_local_response = op_send_local_response,
    .continue_stream = op_continue_stream,
    .close_stream = op_close_stream,
    .http_call = op_http_call,
    .grpc_call = op_grpc_call,
    .grpc_send = op_grpc_send,
    .grpc_cancel = op_grpc_cancel,
    .metric_define = op_metric_define,
    .metric_increment = op_metric_increment,
    .metric_record = op_metric_record,
    .metric_get = op_metric_get,
    .log = op_log,
    .set_tick_period = op_set_tick_period,
    .queue_ready = op_queue_ready,
    .queue_full = op_queue_full,
};
