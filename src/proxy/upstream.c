/* upstream.c - upstream connections and per-endpoint keep-alive pools. */
#include "proxy/upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "tls/tls.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "router/router.h"

void (*uconn_slot_freed)(struct wcluster *wc);

#define UCONN_OF_IDLE(l) ((struct uconn *)((char *)(l) - offsetof(struct uconn, idle_link)))

static struct loop *uc_loop(struct uconn *uc) { return uc->wc->wg->w->loop; }

static void uc_free(void *p)
{
    struct uconn *uc = p;
    buf_free(&uc->in);
    free(uc);
}

void uconn_close(struct uconn *uc)
{
    struct wcluster *wc = uc->wc;
    struct worker *w = wc->wg->w;
    loop_timer_cancel(w->loop, &uc->timer);
    loop_io_del(w->loop, &uc->io);
    sio_tls_close(&uc->sio);
    close(uc->io.fd);
    uc->io.fd = -1;
    if (uc->state == UC_IDLE)
        wlist_del(&uc->idle_link);
    wc->conns--;
    atomic_fetch_sub_explicit(&wc->gc->lim->conns, 1, memory_order_relaxed);
    metrics_gauge_add(w->shard, wc->gc->m_conn_active, -1);
    loop_defer_free(w->loop, uc_free, uc);
    struct wgen *wg = wc->wg;
    if (uconn_slot_freed)
        uconn_slot_freed(wc);
    wgen_release(wg);
}

static void uc_timeout(struct loop *l, struct loop_timer *t)
{
    struct uconn *uc = t->ud;
    if (uc->state == UC_CONNECTING || uc->state == UC_TLS) {
        const struct uconn_ops *ops = uc->ops;
        void *owner = uc->owner;
        uconn_close(uc);
        ops->connected(owner, uc, ETIMEDOUT);
        return;
    }
    uconn_close(uc); /* idle in the pool for too long */
}

static void uc_handshake(struct loop *l, struct uconn *uc)
{
    int rc = tls_conn_handshake(uc->sio.tls);
    if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
        loop_io_set(l, &uc->io, rc == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE);
        return;
    }
    const struct uconn_ops *ops = uc->ops;
    void *owner = uc->owner;
    if (rc != 1) {
        log_warn("cluster %s: TLS handshake with %s failed: %s", uc->wc->gc->cfg->name,
                 uc->wc->gc->cfg->endpoints[uc->ep].address, tls_conn_error(uc->sio.tls));
        uconn_close(uc);
        ops->connected(owner, uc, EPROTO);
        return;
    }
    loop_timer_cancel(l, &uc->timer);
    uc->state = UC_ACTIVE;
    loop_io_set(l, &uc->io, 0);
    ops->connected(owner, uc, 0);
}

static void uc_event(struct loop *l, struct loop_io *io, unsigned events)
{
    struct uconn *uc = io->ud;
    switch (uc->state) {
    case UC_CONNECTING: {
        int err = net_connect_error(io->fd);
        const struct uconn_ops *ops = uc->ops;
        void *owner = uc->owner;
        if (err) {
            uconn_close(uc);
            ops->connected(owner, uc, err);
            return;
        }
        if (uc->wc->gc->tls) {
            /* TLS to the upstream; the connect timeout covers the handshake.
             * Without a configured name the certificate must match the
             * endpoint's IP address. */
            const struct cfg_cluster *cc = uc->wc->gc->cfg;
            char ip[64];
            const char *sni = cc->tls.sni;
            if (!sni && cc->tls.verify)
                sni = net_ip_str((const struct sockaddr *)&cc->endpoints[uc->ep].addr, ip,
                                 sizeof(ip));
            uc->sio.tls = tls_conn_client(uc->wc->gc->tls, io->fd, sni);
            if (!uc->sio.tls) {
                uconn_close(uc);
                ops->connected(owner, uc, ENOMEM);
                return;
            }
            uc->state = UC_TLS;
            uc_handshake(l, uc);
            return;
        }
        loop_timer_cancel(l, &uc->timer);
        uc->state = UC_ACTIVE;
        loop_io_set(l, io, 0);
        ops->connected(owner, uc, 0);
        return;
    }
    case UC_TLS:
        uc_handshake(l, uc);
        return;
    case UC_ACTIVE:
        uc->ops->io(uc->owner, uc, events);
        return;
    case UC_IDLE:
        /* A pooled connection has nothing to say: EOF, an error or stray
         * bytes all mean it cannot carry another request. */
        uconn_close(uc);
        return;
    }
}

int uconn_can_open(const struct wcluster *wc)
{
    return atomic_load_explicit(&wc->gc->lim->conns, memory_order_relaxed) <
           wc->gc->cfg->max_connections;
}

int uconn_has_idle(const struct wcluster *wc, int ep) { return !wlist_empty(&wc->idle[ep]); }

static struct uconn *uc_open(struct wcluster *wc, int ep, const struct uconn_ops *ops,
                             void *owner);

/* owner is not owned; the returned uconn is the owner's until released. */
struct uconn *uconn_get(struct wcluster *wc, int ep, const struct uconn_ops *ops, void *owner,
                        int *ready)
{
    struct worker *w = wc->wg->w;
    if (!wlist_empty(&wc->idle[ep])) {
        /* Most recently used first: it is the least likely to have been
         * closed by the server's own keep-alive timeout. */
        struct uconn *uc = UCONN_OF_IDLE(wc->idle[ep].next);
        wlist_del(&uc->idle_link);
        loop_timer_cancel(w->loop, &uc->timer);
        uc->state = UC_ACTIVE;
        uc->reused = 1;
        uc->ops = ops;
        uc->owner = owner;
        /* Interest stays LOOP_READ: the response will want it, and not
         * toggling saves two epoll_ctl calls per request. */
        *ready = 1;
        return uc;
    }
    *ready = 0;
    return uc_open(wc, ep, ops, owner);
}

/* A new connection to endpoint ep, connecting; owner is not owned. NULL
 * with errno set when the connect fails at once. */
static struct uconn *uc_open(struct wcluster *wc, int ep, const struct uconn_ops *ops,
                             void *owner)
{
    struct worker *w = wc->wg->w;
    const struct cfg_endpoint *e = &wc->gc->cfg->endpoints[ep];
    int fd = net_connect((const struct sockaddr *)&e->addr, e->addrlen);
    if (fd < 0)
        return NULL;
    struct uconn *uc = calloc(1, sizeof(*uc));
    if (!uc) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    uc->io.fd = fd;
    uc->sio.fd = fd;
    uc->io.cb = uc_event;
    uc->io.ud = uc;
    uc->timer.cb = uc_timeout;
    uc->timer.ud = uc;
    uc->wc = wc;
    uc->ep = ep;
    uc->state = UC_CONNECTING;
    uc->ops = ops;
    uc->owner = owner;
    wlist_init(&uc->idle_link);
    if (loop_io_add(w->loop, &uc->io, LOOP_WRITE) < 0) {
        int e2 = errno;
        close(fd);
        free(uc);
        errno = e2;
        return NULL;
    }
    wc->conns++;
    atomic_fetch_add_explicit(&wc->gc->lim->conns, 1, memory_order_relaxed);
    wgen_hold(wc->wg);
    metrics_gauge_add(w->shard, wc->gc->m_conn_active, 1);
    loop_timer_arm(w->loop, &uc->timer, loop_now(w->loop) + wc->gc->cfg->connect_timeout_ms);
    return uc;
}

void uconn_want(struct uconn *uc, unsigned mask) { loop_io_set(uc_loop(uc), &uc->io, mask); }

void uconn_release(struct uconn *uc, int reusable)
{
    struct wcluster *wc = uc->wc;
    struct worker *w = wc->wg->w;
    if (!reusable || buf_len(&uc->in) > 0 || w->draining || wc->wg != w->cur) {
        uconn_close(uc);
        return;
    }
    buf_shrink(&uc->in);
    uc->state = UC_IDLE;
    uc->ops = NULL;
    uc->owner = NULL;
    wlist_add(&wc->idle[uc->ep], &uc->idle_link);
    loop_io_set(w->loop, &uc->io, LOOP_READ);
    loop_timer_arm(w->loop, &uc->timer, loop_now(w->loop) + wc->gc->cfg->idle_timeout_ms);
    if (uconn_slot_freed)
        uconn_slot_freed(wc);
}

int uconn_try_next(struct wcluster *wc, const struct cfg_rule *cr, struct uconn_try *t,
                   const struct uconn_ops *ops, void *owner, struct uconn **out)
{
    struct worker *w = wc->wg->w;
    uint32_t limit = 1 + (cr->retry.attempts > 0 ? cr->retry.attempts
                                                 : (uint32_t)wc->gc->cfg->nendpoints - 1);
again:
    if (t->attempts >= limit)
        return UCONN_TRY_EXHAUSTED;
    if (!uconn_can_open(wc)) {
        metrics_add(w->shard, wc->gc->m_overflow, 1);
        return UCONN_TRY_FULL;
    }
    uint64_t now = loop_now(w->loop);
    uint64_t excl = t->tried | (t->strict ? t->avoid : 0);
    int ep = lb_pick(wc->lb, 0, 0, excl, now);
    if (ep < 0)
        return UCONN_TRY_NO_ENDPOINT;
    if (t->strict && ((ep < 64 && (excl >> ep & 1)) || lb_is_ejected(wc->lb, ep, now)))
        return UCONN_TRY_NO_ENDPOINT; /* only lb_pick's fallbacks were left */
    if (t->attempts > 0)
        metrics_add(w->shard, wc->gc->m_retries, 1);
    t->attempts++;
    t->ep = ep;
    if (ep < 64)
        t->tried |= 1ull << ep;
    lb_request_start(wc->lb, ep);
    wc->active++;
    t->t_start_us = loop_now_us();
    /* Always a new connection: these are byte streams and database
     * sessions, and a pooled connection of the cluster is an HTTP
     * keep-alive one, mid-protocol. */
    struct uconn *uc = uc_open(wc, ep, ops, owner);
    if (!uc) {
        uconn_try_done(wc, t, errno ? errno : ECONNREFUSED);
        goto again;
    }
    uc->reused = 0;
    *out = uc;
    return UCONN_TRY_STARTED;
}

const char *uconn_try_reason(int rc)
{
    switch (rc) {
    case UCONN_TRY_FULL:
        return "upstream overflow: maxConnections";
    case UCONN_TRY_NO_ENDPOINT:
        return "no healthy upstream endpoint";
    default:
        return "upstream connect error";
    }
}

void uconn_try_done(struct wcluster *wc, struct uconn_try *t, int err)
{
    struct worker *w = wc->wg->w;
    lb_request_end(wc->lb, t->ep, err ? LB_CONNECT_FAIL : LB_OK, loop_now_us() - t->t_start_us,
                   loop_now(w->loop));
    wc->active--;
    metrics_add(w->shard,
                wc->gc->m_endpoint[t->ep * OUTCOME_N + (err ? OUTCOME_UNAVAILABLE : OUTCOME_OK)], 1);
}

void uconn_close_idle(struct wcluster *wc)
{
    for (size_t i = 0; i < wc->gc->cfg->nendpoints; i++)
        while (!wlist_empty(&wc->idle[i]))
            uconn_close(UCONN_OF_IDLE(wc->idle[i].next));
}
