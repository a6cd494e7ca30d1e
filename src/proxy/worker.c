/* worker.c - worker threads: adopt generations, accept connections, drain.
 *
 * Adopting a generation: register the new generation's listening sockets
 * (the server opened them; unchanged addresses keep their sockets), build
 * this worker's cluster state, and keep the previous view alive until the
 * last connection using it ends. */
#include "proxy/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "proxy/accesslog.h"
#include "proxy/db_check.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/my_pool.h"
#include "proxy/pg_pool.h"
#include "proxy/proto.h"
#include "proxy/upstream.h"
#include "proxy/wasm_filter.h"

#define WORKER_TICK_MS 100

const struct proto_handler *proto_handler(enum cfg_proto proto)
{
    switch (proto) {
    case CFG_PROTO_HTTP:
        return &http_handler;
    case CFG_PROTO_TCP:
    case CFG_PROTO_TLS_PASSTHROUGH: /* TCP after a look at the ClientHello */
        return &tcp_handler;
    case CFG_PROTO_POSTGRES:
        return &pg_handler;
    case CFG_PROTO_MYSQL:
        return &mysql_handler;
    }
    return NULL;
}

uint64_t worker_rand(struct worker *w)
{
    /* xorshift64*: fast, and good enough for load balancing and ids. */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void worker_conn_opened(struct worker *w) { w->nconns++; }
void worker_conn_closed(struct worker *w) { w->nconns--; }

void wgen_hold(struct wgen *wg) { wg->users++; }

/* Closes wc's idle upstream connections of every kind: HTTP/1 keep-alive,
 * HTTP/2 sessions without streams, pooled PostgreSQL and MySQL connections. */
static void cluster_close_idle(struct wcluster *wc)
{
    uconn_close_idle(wc);
    h2u_close_idle(wc);
    pg_pool_close(wc);
    my_pool_close(wc);
}

static void wgen_free(struct wgen *wg)
{
    /* First: the filters' HTTP calls hold connections of the clusters. */
    wf_wgen_free(wg);
    for (size_t i = 0; i < wg->gen->nclusters; i++) {
        db_check_free(wg->clusters[i].dbc);
        lb_free(wg->clusters[i].lb);
        free(wg->clusters[i].idle);
        free(wg->clusters[i].h2pool);
    }
    free(wg->clusters);
    gen_unref(wg->gen);
    free(wg);
}

/* The deferred end of a retired view: freed unless a user came back
 * meanwhile (a filter's tick or call of its VMs can open a connection). */
static void wgen_free_deferred(void *p)
{
    struct wgen *wg = p;
    wg->free_queued = 0;
    if (wg->users == 0)
        wgen_free(wg);
}

void wgen_release(struct wgen *wg)
{
    /* Deferred to the end of the batch: the last user is often an
     * upstream connection closed from deep inside its owner (an HTTP/2
     * session, a filter's call), which still reads its cluster after. */
    if (--wg->users == 0 && wg != wg->w->cur && !wg->free_queued) {
        wg->free_queued = 1;
        loop_defer_free(wg->w->loop, wgen_free_deferred, wg);
    }
}

/* Returns this worker's view of g (holding a reference on g), or NULL. */
static struct wgen *wgen_new(struct worker *w, struct gen *g)
{
    struct wgen *wg = calloc(1, sizeof(*wg));
    if (!wg)
        return NULL;
    wg->w = w;
    wg->gen = gen_ref(g);
    wg->clusters = calloc(g->nclusters ? g->nclusters : 1, sizeof(*wg->clusters));
    if (!wg->clusters)
        goto fail;
    for (size_t i = 0; i < g->nclusters; i++) {
        struct wcluster *wc = &wg->clusters[i];
        const struct cfg_cluster *cc = g->clusters[i].cfg;
        wc->gc = &g->clusters[i];
        wc->wg = wg;
        wc->lb = lb_new(cc, ((uint64_t)w->id << 32) ^ g->id ^ (uint64_t)i * 0x9E3779B97F4A7C15ull);
        wc->idle = calloc(cc->nendpoints, sizeof(*wc->idle));
        wc->h2pool = calloc(cc->nendpoints, sizeof(*wc->h2pool));
        if (!wc->lb || !wc->idle || !wc->h2pool)
            goto fail;
        for (size_t e = 0; e < cc->nendpoints; e++) {
            wlist_init(&wc->idle[e]);
            wlist_init(&wc->h2pool[e]);
        }
        wlist_init(&wc->pending);
        wlist_init(&wc->pending_h2);
    }
    return wg;
fail:
    if (wg->clusters)
        for (size_t i = 0; i < g->nclusters; i++) {
            lb_free(wg->clusters[i].lb);
            free(wg->clusters[i].idle);
            free(wg->clusters[i].h2pool);
        }
    free(wg->clusters);
    gen_unref(g);
    free(wg);
    return NULL;
}

static void on_accept(struct loop *l, struct loop_io *io, unsigned events)
{
    struct wlistener *wl = io->ud;
    struct worker *w = wl->w;
    const struct proto_handler *ph = proto_handler(wl->gl->cfg->proto);
    /* Bounded so one busy listener cannot starve the rest of the loop. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* EINVAL: the server shut the socket down for a drain. */
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED && errno != EINVAL)
                log_warn("worker %u: accept on %s: %s", w->id, wl->gl->cfg->address,
                         strerror(errno));
            return;
        }
        ph->accept(w, wl->gl, fd, &peer);
    }
}

static void listeners_unregister(struct worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        loop_io_del(w->loop, &w->listeners[i].io);
    /* Events for these listeners may still sit in the current batch. */
    if (w->listeners)
        loop_defer_free(w->loop, free, w->listeners);
    w->listeners = NULL;
    w->nlisteners = 0;
}

static void listeners_register(struct worker *w, struct gen *g)
{
    w->listeners = calloc(g->nlisteners ? g->nlisteners : 1, sizeof(*w->listeners));
    if (!w->listeners)
        return;
    for (size_t i = 0; i < g->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[w->nlisteners];
        wl->w = w;
        wl->gl = &g->listeners[i];
        wl->io.fd = g->listeners[i].fds[w->id];
        wl->io.cb = on_accept;
        wl->io.ud = wl;
        if (wl->io.fd < 0 || loop_io_add(w->loop, &wl->io, LOOP_READ) < 0) {
            log_error("worker %u: cannot watch listener %s", w->id, wl->gl->cfg->address);
            continue;
        }
        w->nlisteners++;
    }
}

static void adopt(struct worker *w, struct gen *g)
{
    struct wgen *wg = wgen_new(w, g);
    gen_unref(g); /* the server's hand-over reference; wg holds its own */
    if (!wg) {
        log_error("worker %u: out of memory adopting configuration %llu", w->id,
                  (unsigned long long)g->id);
        return;
    }
    if (!w->alog_path || !g->cfg->access_log.path ||
        strcmp(w->alog_path, g->cfg->access_log.path) != 0) {
        if (w->alog) {
            alog_flush(w->alog);
            alog_close(w->alog);
            w->alog = NULL;
        }
        free(w->alog_path);
        w->alog_path = NULL;
        if (g->cfg->access_log.path) {
            w->alog = alog_open(g->cfg->access_log.path);
            if (!w->alog)
                log_error("access log %s: %s", g->cfg->access_log.path, strerror(errno));
            w->alog_path = strdup(g->cfg->access_log.path);
        }
    }
    listeners_unregister(w);
    struct wgen *old = w->cur;
    wg->users++; /* being current is a use */
    w->cur = wg;
    listeners_register(w, g);
    atomic_store(&w->gen_seen, g->id);
    if (old) {
        for (size_t i = 0; i < old->gen->nclusters; i++)
            cluster_close_idle(&old->clusters[i]);
        /* HTTP/2 clients on the old configuration are asked to move on. */
        http_retire(w);
        wgen_release(old);
    }
}

static void start_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    listeners_unregister(w);
    atomic_store(&w->unlistened, 1);
    http_handler.drain(w);
    tcp_handler.drain(w);
    pg_handler.drain(w);
    mysql_handler.drain(w);
    if (w->cur)
        for (size_t i = 0; i < w->cur->gen->nclusters; i++)
            cluster_close_idle(&w->cur->clusters[i]);
}

static void on_async(struct loop *l, void *ud)
{
    struct worker *w = ud;
    /* Any thread may have enqueued to a shared queue one of our VMs
     * registered: its proxy_on_queue_ready runs here, on our thread. */
    wf_inbox_run(w);
    struct gen *g = atomic_exchange(&w->next_gen, NULL);
    if (g && !w->draining)
        adopt(w, g);
    else if (g)
        gen_unref(g);
    if (atomic_load(&w->stop_req) && !w->draining) {
        w->drain_deadline = loop_now(l) + atomic_load(&w->drain_ms);
        start_drain(w);
    }
}

static void on_tick(struct loop *l, struct loop_timer *t)
{
    struct worker *w = t->ud;
    if (w->alog)
        alog_flush(w->alog);
    /* Limits are shared by all workers and generations, but a freed slot
     * only wakes the waiters of the worker and generation that freed it;
     * the others look again here. */
    if (w->cur && uconn_slot_freed)
        for (size_t i = 0; i < w->cur->gen->nclusters; i++)
            if (w->cur->clusters[i].npending)
                uconn_slot_freed(&w->cur->clusters[i]);
    if (w->draining) {
        /* Idle keep-alive connections may have become idle since. */
        http_handler.drain(w);
        if (w->nconns == 0 || loop_now(l) >= w->drain_deadline) {
            loop_stop(l);
            return;
        }
    }
    loop_timer_arm(l, t, loop_now(l) + WORKER_TICK_MS);
}

/* The end of a worker's loop, on its thread: flushes the access log, stops
 * listening, closes idle upstream connections and drops the current view. */
static void release_view(struct worker *w)
{
    if (w->alog)
        alog_flush(w->alog);
    listeners_unregister(w);
    /* The filters' calls hold upstream connections, which hold their
     * generation: they go first, or it would never be freed. */
    wf_worker_drop_calls();
    struct wgen *cur = w->cur;
    if (cur) {
        for (size_t i = 0; i < cur->gen->nclusters; i++)
            cluster_close_idle(&cur->clusters[i]);
        w->cur = NULL;
        if (--cur->users == 0)
            wgen_free(cur);
    }
    loop_run_deferred(w->loop);
}

/* What worker_join_free and worker_test_free release after the thread. */
static void worker_free(struct worker *w)
{
    if (w->alog)
        alog_close(w->alog);
    free(w->alog_path);
    loop_free(w->loop);
    metrics_shard_free(w->shard);
    wf_inbox_free(w->wasm_inbox);
    free(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    loop_update_time(w->loop);
    w->tick.cb = on_tick;
    w->tick.ud = w;
    loop_timer_arm(w->loop, &w->tick, loop_now(w->loop) + WORKER_TICK_MS);
    loop_run(w->loop);
    /* Pooled state is released on this thread: buffer blocks go back to
     * this thread's pool, which is freed last. Connections that outlived
     * the drain deadline are abandoned with the process. */
    release_view(w);
    h2_batch_free();
    buf_pool_free();
    atomic_store(&w->exited, 1);
    return NULL;
}

/* Returns a worker owned by the caller. */
struct worker *worker_new(unsigned id)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->id = id;
    w->loop = loop_new();
    w->shard = metrics_shard_new();
    w->wasm_inbox = wf_inbox_new();
    if (!w->loop || !w->shard || !w->wasm_inbox || loop_async_init(w->loop, on_async, w) < 0) {
        loop_free(w->loop);
        if (w->shard)
            metrics_shard_free(w->shard);
        wf_inbox_free(w->wasm_inbox);
        free(w);
        return NULL;
    }
    wlist_init(&w->hconns);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    w->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)(id + 1) << 40) ^
             (uint64_t)(uintptr_t)w;
    if (!w->rng)
        w->rng = 1;
    return w;
}

static void *worker_boot(void *arg)
{
    struct worker *w = arg;
    struct gen *g = atomic_exchange(&w->next_gen, NULL);
    buf_set_block_size(g->cfg->buffer_bytes);
    adopt(w, g);
    return worker_main(w);
}

/* g: the worker takes one reference. */
int worker_start(struct worker *w, struct gen *g)
{
    atomic_store(&w->next_gen, gen_ref(g));
    if (pthread_create(&w->thread, NULL, worker_boot, w) != 0) {
        gen_unref(atomic_exchange(&w->next_gen, NULL));
        return -1;
    }
    return 0;
}

/* g: the worker takes one reference. */
void worker_set_gen(struct worker *w, struct gen *g)
{
    struct gen *old = atomic_exchange(&w->next_gen, gen_ref(g));
    if (old)
        gen_unref(old); /* superseded before the worker saw it */
    loop_async_send(w->loop);
}

void worker_stop(struct worker *w, uint64_t drain_ms)
{
    atomic_store(&w->drain_ms, drain_ms);
    atomic_store(&w->stop_req, 1);
    loop_async_send(w->loop);
}

/* ---- test hooks ------------------------------------------------------------
 * For fuzz targets and tests that drive a worker's loop on their own thread
 * (loop_run_once) instead of starting it: the same adopt / tear-down steps
 * worker_boot and worker_main take, without the thread. Not used by the
 * proxy. */

/* Adopts g on the calling thread (which becomes the worker's thread: its
 * buffer pool is used) as worker_boot does; may be called again for a
 * reload (older HTTP/2 clients get a GOAWAY). Listeners whose socket for
 * this worker is -1 are skipped with a log line. g: the caller keeps its
 * reference. 0, or -1 when out of memory. */
int worker_test_adopt(struct worker *w, struct gen *g)
{
    struct wgen *before = w->cur;
    if (!before) {
        buf_set_block_size(g->cfg->buffer_bytes);
        w->tick.cb = on_tick;
        w->tick.ud = w;
        loop_timer_arm(w->loop, &w->tick, loop_now(w->loop) + WORKER_TICK_MS);
    }
    adopt(w, gen_ref(g));
    return w->cur != before ? 0 : -1;
}

/* Tears down a worker set up with worker_test_adopt (never started), on
 * the same thread, as the end of worker_main and worker_join_free do.
 * Connections still open are abandoned (close them first). The thread's
 * buffer pool is left to the caller (buf_pool_free). Takes ownership. */
void worker_test_free(struct worker *w)
{
    loop_timer_cancel(w->loop, &w->tick);
    release_view(w);
    worker_free(w);
}

void worker_join(struct worker *w)
{
    if (!w->joined)
        pthread_join(w->thread, NULL);
    w->joined = 1;
}

/* Takes ownership of w. */
void worker_join_free(struct worker *w)
{
    worker_join(w);
    worker_free(w);
}
