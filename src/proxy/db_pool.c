/* db_pool.c - idle database server connections; see db_pool.h. The
 * protocols supply the reset request and read its answer (pg_pool.c:
 * DISCARD ALL, my_pool.c: COM_RESET_CONNECTION). */
#include "proxy/db_pool.h"

#include <errno.h>
#include <stdlib.h>

#include "core/log.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/sio.h"
#include "proxy/upstream.h"

#define RESET_TIMEOUT_MS 5000

struct db_pool {
    struct wlink list;            /* entries, most recently parked first */
    size_t n;
};

static struct loop *wc_loop(const struct wcluster *wc) { return wc->wg->w->loop; }

static struct db_pooled *of_link(struct wlink *l)
{
    return (struct db_pooled *)((char *)l - offsetof(struct db_pooled, link));
}

/* Deferred: an event for the entry may still be queued. */
static void entry_free(void *p)
{
    struct db_pooled *e = p;
    buf_free(&e->out);
    e->ops->free(e);
}

/* Takes e out of its pool and its gauge; freed later. */
static void unlink_entry(struct db_pooled *e)
{
    struct loop *l = wc_loop(e->wc);
    wlist_del(&e->link);
    e->pool->n--;
    metrics_gauge_add(e->wc->wg->w->shard, e->wc->gc->m_pool_conns, -1);
    loop_timer_cancel(l, &e->timer);
    loop_defer_free(l, entry_free, e);
}

static void pooled_close(struct db_pooled *e, const char *why)
{
    struct uconn *uc = e->uc;
    if (why)
        log_debug("%s: pooled connection to %s closed: %s", e->ops->proto,
                  e->wc->gc->cfg->endpoints[uc->ep].address, why);
    unlink_entry(e);
    uconn_close(uc); /* last: it may release the worker's view of the generation */
}

static void pooled_timeout(struct loop *l, struct loop_timer *t)
{
    struct db_pooled *e = t->ud;
    (void)l;
    pooled_close(e, e->resetting ? "the reset was not answered in time" : "idle timeout");
}

/* Reads what arrived. NULL, or why the connection must close. */
static const char *pooled_read(struct db_pooled *e)
{
    struct uconn *uc = e->uc;
    for (;;) {
        if (buf_ensure(&uc->in) < 0 || buf_space(&uc->in) == 0)
            return "out of memory, or an answer larger than a buffer";
        ssize_t n = sio_read_buf(&uc->sio, &uc->in);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return "the server closed it";
        if (n < 0)
            break;
    }
    if (buf_len(&uc->in) == 0)
        return NULL;
    if (!e->resetting)
        return "the server sent something while idle";
    return e->ops->answer(e);
}

static void pooled_io(void *owner, struct uconn *uc, unsigned events)
{
    struct db_pooled *e = owner;
    const char *why = NULL;
    if (buf_len(&e->out) > 0) {
        ssize_t n = sio_write_buf(&uc->sio, &e->out);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            pooled_close(e, "write failed");
            return;
        }
    }
    if ((events & LOOP_READ) && (why = pooled_read(e)) != NULL) {
        pooled_close(e, why);
        return;
    }
    uconn_want(uc, LOOP_READ | (buf_len(&e->out) > 0 ? LOOP_WRITE : 0));
}

static void pooled_connected(void *owner, struct uconn *uc, int err)
{
    (void)owner, (void)uc, (void)err; /* pooled connections are connected */
}

static const struct uconn_ops pooled_ops = {pooled_connected, pooled_io};

/* Takes uc and e. */
void db_pool_put(struct db_pool **poolp, struct wcluster *wc, struct db_pooled *e,
                 struct uconn *uc, const struct db_pool_ops *ops)
{
    struct worker *w = wc->wg->w;
    e->ops = ops;
    if (w->draining || wc->wg != w->cur || (!*poolp && !(*poolp = calloc(1, sizeof(**poolp))))) {
        entry_free(e);
        uconn_close(uc);
        return;
    }
    struct db_pool *p = *poolp;
    if (!p->list.next)
        wlist_init(&p->list);
    if (p->n >= DB_POOL_MAX) {
        entry_free(e);
        uconn_close(uc);
        return;
    }
    e->pool = p;
    e->wc = wc;
    e->uc = uc;
    e->resetting = 1;
    e->timer.cb = pooled_timeout;
    e->timer.ud = e;
    wlist_add(&p->list, &e->link);
    p->n++;
    metrics_gauge_add(w->shard, wc->gc->m_pool_conns, 1);
    uc->ops = &pooled_ops;
    uc->owner = e;
    loop_timer_arm(w->loop, &e->timer, loop_now(w->loop) + RESET_TIMEOUT_MS);
    pooled_io(e, uc, 0);
}

void db_pool_idle(struct db_pooled *e)
{
    struct loop *l = wc_loop(e->wc);
    e->resetting = 0;
    loop_timer_arm(l, &e->timer, loop_now(l) + e->wc->gc->cfg->idle_timeout_ms);
}

/* Borrows arg; the entry stays the pool's until db_pool_taken. */
struct db_pooled *db_pool_take(struct db_pool *p, int (*fits)(const struct db_pooled *e,
                                                              const void *arg),
                               const void *arg)
{
    if (!p || !p->list.next)
        return NULL;
    for (struct wlink *l = p->list.next; l != &p->list; l = l->next) {
        struct db_pooled *e = of_link(l);
        if (e->resetting || !fits(e, arg) ||
            lb_is_ejected(e->wc->lb, e->uc->ep, loop_now(wc_loop(e->wc))))
            continue;
        metrics_add(e->wc->wg->w->shard, e->wc->gc->m_pool_reused, 1);
        return e;
    }
    return NULL;
}

/* The connection becomes the caller's. */
struct uconn *db_pool_taken(struct db_pooled *e)
{
    struct uconn *uc = e->uc;
    unlink_entry(e);
    uc->ops = NULL;
    uc->owner = NULL;
    return uc;
}

void db_pool_close(struct db_pool **poolp)
{
    struct db_pool *p = *poolp;
    if (!p)
        return;
    while (p->list.next && !wlist_empty(&p->list))
        pooled_close(of_link(p->list.next), NULL);
    *poolp = NULL;
    free(p);
}

size_t db_pool_size(const struct db_pool *p)
{
    return p ? p->n : 0;
}
