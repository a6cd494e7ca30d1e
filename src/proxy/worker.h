/* worker.h - a worker thread: one event loop, its share of the listening
 * sockets, and its own copy of every cluster's state (load balancer,
 * connection pools, limits), so the request path takes no locks.
 *
 * The server thread talks to a worker only through loop_async_send(): a new
 * generation to adopt, or a request to drain and stop. */
#ifndef STRAND_WORKER_H
#define STRAND_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/loop.h"
#include "proxy/gen.h"

struct lb;
struct alog;
struct metrics_shard;
struct uconn;
struct hreq;
struct db_pool;
struct db_check;
struct wf_wgen;
struct wf_inbox;

/* A doubly linked list node, embedded in the objects it links. */
struct wlink {
    struct wlink *prev, *next;
};

static inline void wlist_init(struct wlink *h) { h->prev = h->next = h; }
static inline int wlist_empty(const struct wlink *h) { return h->next == h; }
static inline void wlist_add(struct wlink *h, struct wlink *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}
static inline void wlist_add_tail(struct wlink *h, struct wlink *n) { wlist_add(h->prev, n); }
static inline void wlist_del(struct wlink *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* One cluster as seen by one worker for one generation. */
struct wcluster {
    struct gen_cluster *gc;
    struct wgen *wg;
    struct lb *lb;
    struct wlink *idle;         /* per endpoint: pooled keep-alive connections */
    uint32_t conns;             /* open upstream connections */
    uint32_t active;            /* requests in flight */
    uint32_t npending;          /* requests waiting for a connection */
    uint32_t retries_active;
    uint32_t ejections_seen;
    struct wlink pending;       /* struct hreq waiting for a connection slot */
    struct wlink pending_h2;    /* struct h2s waiting likewise (HTTP/2 clients) */
    struct wlink *h2pool;       /* per endpoint: HTTP/2 sessions (struct h2u) */
    struct db_check *dbc;       /* replica checks (db_check.h), started lazily; or NULL */
    struct db_pool *pgpool;     /* idle PostgreSQL server connections (pg_pool.h); or NULL */
    struct db_pool *mypool;     /* idle MySQL server connections (my_pool.h); or NULL */
};

/* One generation as seen by one worker. */
struct wgen {
    struct gen *gen;
    struct worker *w;
    struct wcluster *clusters;  /* same order as gen->clusters */
    uint32_t users;             /* connections and requests holding it */
    int free_queued;            /* retired, unused: wgen_release queued its free */
    struct wf_wgen *wasm;       /* this worker's WasmPlugin VMs, made on first use */
};

struct wlistener {
    struct loop_io io;
    struct worker *w;
    struct gen_listener *gl;
};

struct worker {
    unsigned id;
    pthread_t thread;
    struct loop *loop;
    struct metrics_shard *shard;
    struct alog *alog;
    char *alog_path;

    struct wgen *cur;
    struct wlistener *listeners;
    size_t nlisteners;

    _Atomic(struct gen *) next_gen; /* handed over by the server */
    atomic_int stop_req;            /* 1 = drain and stop */
    atomic_uint_fast64_t drain_ms;  /* how long draining may take */
    atomic_uint_fast64_t gen_seen;  /* id of the generation in use */
    atomic_int exited;
    int joined;                     /* worker_join done (server thread only) */
    atomic_int unlistened;          /* stopped watching listening sockets */

    struct wlink hconns;            /* downstream HTTP connections */
    uint32_t nconns;                /* every downstream connection, any protocol */
    int draining;
    uint64_t drain_deadline;
    uint64_t rng;
    struct loop_timer tick;         /* access-log flush, drain checks */
    struct wf_inbox *wasm_inbox;    /* shared-queue notifications for this worker's VMs */
};

/* Creates worker `id` (not started); NULL on failure. Caller owns it. */
struct worker *worker_new(unsigned id);
/* Starts the thread with generation g (the worker takes a reference). */
int worker_start(struct worker *w, struct gen *g);
/* Hands a new generation to a running worker (it takes a reference). */
void worker_set_gen(struct worker *w, struct gen *g);
/* Asks the worker to stop accepting, drain until deadline_ms (monotonic ms)
 * and exit. */
void worker_stop(struct worker *w, uint64_t drain_ms);
/* Waits for the worker's thread to end (once; later calls return at once). */
void worker_join(struct worker *w);
/* Joins and frees the worker. Join every worker first when they share
 * state a running one may still touch (a shared queue's notification
 * reaching another worker's inbox). */
void worker_join_free(struct worker *w);

/* Test hooks (fuzz targets): run a worker without its thread. The caller
 * drives w->loop with loop_run_once() and hands sockets to a listener's
 * handler itself. worker_test_adopt: adopt g (caller keeps its reference)
 * on the calling thread, as the thread would at start or on a reload; 0 or
 * -1. worker_test_free: tear w down on that thread (close connections
 * first); the caller then calls buf_pool_free(). See worker.c. */
int worker_test_adopt(struct worker *w, struct gen *g);
void worker_test_free(struct worker *w);

/* Worker-local helpers for the protocol handlers. */
uint64_t worker_rand(struct worker *w);
/* A handle on wg for a new user (connection or request). */
void wgen_hold(struct wgen *wg);
/* Releases a handle; frees wg when unused and no longer current. */
void wgen_release(struct wgen *wg);
/* The worker's current view; NULL before start. */
static inline struct wgen *worker_wgen(struct worker *w) { return w->cur; }
/* Book-keeping of downstream connections (for draining). */
void worker_conn_opened(struct worker *w);
void worker_conn_closed(struct worker *w);

#endif
