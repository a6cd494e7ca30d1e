/* my_pool.c - idle MySQL server connections of terminated sessions; see
 * my_pool.h.
 *
 * A pooled connection is RESETTING (COM_RESET_CONNECTION sent, its answer
 * not yet read) or IDLE. Any surprise - an ERR, a status still in a
 * transaction, bytes while idle, the server closing, a deadline - closes
 * it: a connection is only reused when the server confirmed a clean
 * session. */
#include "proxy/my_pool.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "proto/mysql/my.h"
#include "proxy/gen.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/sio.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#define RESET_TIMEOUT_MS 5000

struct my_pool {
    struct wlink list;            /* struct mpooled, most recently parked first */
    size_t n;
};

struct mpooled {
    struct wlink link;
    struct wcluster *wc;
    struct uconn *uc;
    struct my_pool_key key;
    uint64_t caps;
    uint16_t status;              /* of the reset's OK */
    int resetting;
    uint8_t out[8];               /* COM_RESET_CONNECTION, until written */
    int out_len;
    struct loop_timer timer;
};

static struct loop *wc_loop(const struct wcluster *wc) { return wc->wg->w->loop; }

static struct mpooled *of_link(struct wlink *l)
{
    return (struct mpooled *)((char *)l - offsetof(struct mpooled, link));
}

/* Unlinks e from its pool and its gauge; frees it later (an event for it
 * may be queued). The uconn is the caller's to close or keep. */
static void unlink_entry(struct mpooled *e)
{
    struct loop *l = wc_loop(e->wc);
    wlist_del(&e->link);
    e->wc->mypool->n--;
    metrics_gauge_add(e->wc->wg->w->shard, e->wc->gc->m_pool_conns, -1);
    loop_timer_cancel(l, &e->timer);
    loop_defer_free(l, free, e);
}

static void pooled_close(struct mpooled *e, const char *why)
{
    struct uconn *uc = e->uc;
    if (why)
        log_debug("mysql: pooled connection to %s closed: %s",
                  e->wc->gc->cfg->endpoints[uc->ep].address, why);
    unlink_entry(e);
    uconn_close(uc); /* last: it may release the worker's view of the generation */
}

static void pooled_timeout(struct loop *l, struct loop_timer *t)
{
    struct mpooled *e = t->ud;
    (void)l;
    pooled_close(e, e->resetting ? "COM_RESET_CONNECTION not answered in time" : "idle timeout");
}

/* The reset's answer, whole in uc->in: an OK outside a transaction makes
 * the connection idle. NULL, or why it must close. */
static const char *reset_answer(struct mpooled *e)
{
    struct buf *in = &e->uc->in;
    const uint8_t *p;
    struct my_pkt pkt;
    int n = my_packet_whole((const uint8_t *)buf_start(in), buf_len(in), &pkt, &p);
    if (n == MY_INCOMPLETE)
        return NULL;
    struct my_ok ok;
    if (n < 0 || pkt.seq != 1 || pkt.len == 0 || p[0] != 0x00 ||
        my_parse_ok(p, pkt.len, pkt.len, e->caps, &ok) != 0)
        return "COM_RESET_CONNECTION failed";
    if (ok.status & MY_SERVER_STATUS_IN_TRANS)
        return "still in a transaction after COM_RESET_CONNECTION";
    buf_consume(in, (uint32_t)n);
    if (buf_len(in) > 0)
        return "more than one answer to COM_RESET_CONNECTION";
    e->status = ok.status;
    e->resetting = 0;
    loop_timer_arm(wc_loop(e->wc), &e->timer,
                   loop_now(wc_loop(e->wc)) + e->wc->gc->cfg->idle_timeout_ms);
    return NULL;
}

/* Reads what arrived. NULL, or why the connection must close. */
static const char *pooled_read(struct mpooled *e)
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
    return reset_answer(e);
}

static void pooled_io(void *owner, struct uconn *uc, unsigned events)
{
    struct mpooled *e = owner;
    const char *why = NULL;
    if (e->out_len > 0) {
        struct iovec iov = {e->out, (size_t)e->out_len};
        ssize_t n = sio_writev(&uc->sio, &iov, 1);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            pooled_close(e, "write failed");
            return;
        }
        if (n > 0) {
            e->out_len -= (int)n;
            memmove(e->out, e->out + n, (size_t)e->out_len);
        }
    }
    if ((events & LOOP_READ) && (why = pooled_read(e)) != NULL) {
        pooled_close(e, why);
        return;
    }
    uconn_want(uc, LOOP_READ | (e->out_len > 0 ? LOOP_WRITE : 0));
}

static void pooled_connected(void *owner, struct uconn *uc, int err)
{
    (void)owner, (void)uc, (void)err; /* pooled connections are connected */
}

static const struct uconn_ops pooled_ops = {pooled_connected, pooled_io};

/* Takes uc; borrows key. */
void my_pool_put(struct wcluster *wc, struct uconn *uc, const struct my_pool_key *key,
                 uint64_t caps)
{
    struct worker *w = wc->wg->w;
    struct mpooled *e = NULL;
    if (w->draining || wc->wg != w->cur ||
        (!wc->mypool && !(wc->mypool = calloc(1, sizeof(*wc->mypool)))))
        goto drop;
    if (!wc->mypool->list.next)
        wlist_init(&wc->mypool->list);
    if (wc->mypool->n >= MY_POOL_MAX || !(e = calloc(1, sizeof(*e))))
        goto drop;
    e->out_len = my_build_simple(e->out, sizeof(e->out), MY_COM_RESET_CONNECTION);
    if (e->out_len < 0)
        goto drop;
    e->wc = wc;
    e->uc = uc;
    e->key = *key;
    e->caps = caps;
    e->resetting = 1;
    e->timer.cb = pooled_timeout;
    e->timer.ud = e;
    wlist_add(&wc->mypool->list, &e->link);
    wc->mypool->n++;
    metrics_gauge_add(w->shard, wc->gc->m_pool_conns, 1);
    uc->ops = &pooled_ops;
    uc->owner = e;
    loop_timer_arm(w->loop, &e->timer, loop_now(w->loop) + RESET_TIMEOUT_MS);
    pooled_io(e, uc, 0);
    return;
drop:
    free(e);
    uconn_close(uc);
}

/* Borrows key; the uconn becomes the caller's. */
struct uconn *my_pool_take(struct wcluster *wc, const struct my_pool_key *key, uint64_t *caps,
                           uint16_t *status)
{
    if (!wc->mypool || !wc->mypool->list.next)
        return NULL;
    uint64_t now = loop_now(wc_loop(wc));
    for (struct wlink *l = wc->mypool->list.next; l != &wc->mypool->list; l = l->next) {
        struct mpooled *e = of_link(l);
        if (e->resetting || e->key.want != key->want || e->key.charset != key->charset ||
            lb_is_ejected(wc->lb, e->uc->ep, now))
            continue;
        struct uconn *uc = e->uc;
        *caps = e->caps;
        *status = e->status;
        unlink_entry(e);
        metrics_add(wc->wg->w->shard, wc->gc->m_pool_reused, 1);
        uc->ops = NULL;
        uc->owner = NULL;
        return uc;
    }
    return NULL;
}

void my_pool_close(struct wcluster *wc)
{
    struct my_pool *p = wc->mypool;
    if (!p)
        return;
    while (p->list.next && !wlist_empty(&p->list))
        pooled_close(of_link(p->list.next), NULL);
    wc->mypool = NULL;
    free(p);
}

size_t my_pool_size(const struct wcluster *wc)
{
    return wc->mypool ? wc->mypool->n : 0;
}
