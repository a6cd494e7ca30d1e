/* pg_pool.c - idle PostgreSQL server connections of terminated sessions;
 * see pg_pool.h.
 *
 * A pooled connection is RESETTING (DISCARD ALL sent, its answer not yet
 * read) or IDLE. Any surprise - an ErrorResponse, a transaction status
 * other than 'I', bytes while idle, the server closing, a deadline -
 * closes it: a connection is only ever reused when the server confirmed
 * a clean session. */
#include "proxy/pg_pool.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "proto/pg/pg.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/sio.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#define POOL_MAX 128              /* pooled connections per cluster and worker */
#define RESET_TIMEOUT_MS 5000
#define RESET_MSG_MAX 65536u      /* largest message of DISCARD ALL's answer */

struct pg_pool {
    struct wlink list;            /* struct pooled, most recently parked first */
    size_t n;
};

struct pooled {
    struct wlink link;
    struct wcluster *wc;
    struct uconn *uc;
    struct pg_conn_info ci;
    char *key;
    size_t key_len;
    int resetting, failed;
    struct buf out;
    struct loop_timer timer;
};

static struct loop *wc_loop(const struct wcluster *wc) { return wc->wg->w->loop; }

/* ---- ParameterStatus list ---------------------------------------------------- */

/* Borrows m; ci's list is rebuilt without the old message of that name. */
int pg_conn_info_param(struct pg_conn_info *ci, const struct pg_msg *m)
{
    pg_str name, value;
    if (pg_be_param_status(m, &name, &value) != PG_OK)
        return -1;
    const char *src = m->body - m->hdr_len;
    char *out = malloc(ci->params_len + m->len);
    if (!out)
        return -1;
    uint32_t n = 0;
    /* The list is whole ParameterStatus messages, one after the other. */
    for (uint32_t off = 0; off < ci->params_len;) {
        struct pg_msg old;
        pg_str other, v;
        if (pg_frame(ci->params + off, ci->params_len - off, ci->params_len - off, &old) != PG_OK)
            break;
        if (pg_be_param_status(&old, &other, &v) != PG_OK || other.len != name.len ||
            memcmp(other.p, name.p, name.len) != 0) {
            memcpy(out + n, ci->params + off, old.len);
            n += (uint32_t)old.len;
        }
        off += (uint32_t)old.len;
    }
    memcpy(out + n, src, m->len);
    n += (uint32_t)m->len;
    free(ci->params);
    ci->params = out;
    ci->params_len = n;
    return 0;
}

void pg_conn_info_clear(struct pg_conn_info *ci)
{
    free(ci->params);
    memset(ci, 0, sizeof(*ci));
}

/* ---- The pool ------------------------------------------------------------------ */

static void pooled_free(void *p)
{
    struct pooled *e = p;
    pg_conn_info_clear(&e->ci);
    free(e->key);
    buf_free(&e->out);
    free(e);
}

static void pooled_close(struct pooled *e, const char *why)
{
    if (why)
        log_debug("postgres: pooled connection to %s closed: %s",
                  e->wc->gc->cfg->endpoints[e->uc->ep].address, why);
    struct loop *l = wc_loop(e->wc);
    wlist_del(&e->link);
    e->wc->pgpool->n--;
    metrics_gauge_add(e->wc->wg->w->shard, e->wc->gc->m_pool_conns, -1);
    loop_timer_cancel(l, &e->timer);
    loop_defer_free(l, pooled_free, e);
    /* Last: closing may release the worker's view of the generation. */
    uconn_close(e->uc);
}

static void pooled_timeout(struct loop *l, struct loop_timer *t)
{
    struct pooled *e = t->ud;
    (void)l;
    pooled_close(e, e->resetting ? "DISCARD ALL not answered in time" : "idle timeout");
}

/* Reads what arrived; while resetting, follows DISCARD ALL's answer to its
 * ReadyForQuery. 0: fine, -1: closed (why in *why). */
static int pooled_read(struct pooled *e, const char **why)
{
    struct uconn *uc = e->uc;
    for (;;) {
        if (buf_ensure(&uc->in) < 0 || buf_space(&uc->in) == 0) {
            *why = "out of memory, or a message larger than a buffer";
            return -1;
        }
        ssize_t n = sio_read_buf(&uc->sio, &uc->in);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            *why = "the server closed it";
            return -1;
        }
        if (n < 0)
            break;
    }
    while (buf_len(&uc->in) > 0) {
        if (!e->resetting) {
            *why = "the server sent something while idle";
            return -1;
        }
        struct pg_msg m;
        int rc = pg_frame(buf_start(&uc->in), buf_len(&uc->in), RESET_MSG_MAX, &m);
        if (rc == PG_INCOMPLETE)
            return 0; /* DISCARD ALL's answer is a few small messages */
        if (rc != PG_OK) {
            *why = "invalid message";
            return -1;
        }
        char st = 0;
        if (m.type == 'E')
            e->failed = 1;
        else if (m.type == 'S' && pg_conn_info_param(&e->ci, &m) != 0)
            e->failed = 1;
        else if (m.type == 'Z' && (pg_be_ready(&m, &st) != PG_OK || st != 'I'))
            e->failed = 1;
        buf_consume(&uc->in, (uint32_t)m.len);
        if (m.type == 'Z') {
            if (e->failed) {
                *why = "DISCARD ALL failed";
                return -1;
            }
            e->resetting = 0;
            loop_timer_arm(wc_loop(e->wc), &e->timer,
                           loop_now(wc_loop(e->wc)) + e->wc->gc->cfg->idle_timeout_ms);
        }
    }
    return 0;
}

static void pooled_io(void *owner, struct uconn *uc, unsigned events)
{
    struct pooled *e = owner;
    const char *why = NULL;
    if (buf_len(&e->out) > 0) {
        ssize_t n = sio_write_buf(&uc->sio, &e->out);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            pooled_close(e, "write failed");
            return;
        }
    }
    if ((events & LOOP_READ) && pooled_read(e, &why) < 0) {
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

/* Takes uc and *ci; borrows key. */
void pg_pool_put(struct wcluster *wc, struct uconn *uc, struct pg_conn_info *ci, const char *key,
                 size_t key_len)
{
    struct worker *w = wc->wg->w;
    struct pooled *e = NULL;
    char q[32];
    int qn = pg_build_query(q, sizeof(q), "DISCARD ALL");
    if (w->draining || wc->wg != w->cur || qn < 0 ||
        (!wc->pgpool && !(wc->pgpool = calloc(1, sizeof(*wc->pgpool)))))
        goto drop;
    if (!wc->pgpool->list.next)
        wlist_init(&wc->pgpool->list);
    if (wc->pgpool->n >= POOL_MAX || !(e = calloc(1, sizeof(*e))) || !(e->key = malloc(key_len)))
        goto drop;
    if (buf_append(&e->out, q, (size_t)qn) < 0)
        goto drop;
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->wc = wc;
    e->uc = uc;
    e->ci = *ci;
    memset(ci, 0, sizeof(*ci));
    e->resetting = 1;
    e->timer.cb = pooled_timeout;
    e->timer.ud = e;
    wlist_add(&wc->pgpool->list, &e->link);
    wc->pgpool->n++;
    metrics_gauge_add(w->shard, wc->gc->m_pool_conns, 1);
    uc->ops = &pooled_ops;
    uc->owner = e;
    loop_timer_arm(w->loop, &e->timer, loop_now(w->loop) + RESET_TIMEOUT_MS);
    pooled_io(e, uc, 0);
    return;
drop:
    if (e) {
        free(e->key);
        buf_free(&e->out);
        free(e);
    }
    pg_conn_info_clear(ci);
    uconn_close(uc);
}

/* Borrows key; the uconn and *ci become the caller's. */
struct uconn *pg_pool_take(struct wcluster *wc, const char *key, size_t key_len,
                           struct pg_conn_info *ci)
{
    if (!wc->pgpool || !wc->pgpool->list.next)
        return NULL;
    uint64_t now = loop_now(wc_loop(wc));
    for (struct wlink *l = wc->pgpool->list.next; l != &wc->pgpool->list; l = l->next) {
        struct pooled *e = (struct pooled *)((char *)l - offsetof(struct pooled, link));
        if (e->resetting || e->key_len != key_len || memcmp(e->key, key, key_len) != 0 ||
            lb_is_ejected(wc->lb, e->uc->ep, now))
            continue;
        struct uconn *uc = e->uc;
        wlist_del(&e->link);
        wc->pgpool->n--;
        metrics_gauge_add(wc->wg->w->shard, wc->gc->m_pool_conns, -1);
        metrics_add(wc->wg->w->shard, wc->gc->m_pool_reused, 1);
        loop_timer_cancel(wc_loop(wc), &e->timer);
        *ci = e->ci;
        memset(&e->ci, 0, sizeof(e->ci));
        uc->ops = NULL;
        uc->owner = NULL;
        loop_defer_free(wc_loop(wc), pooled_free, e);
        return uc;
    }
    return NULL;
}

void pg_pool_close(struct wcluster *wc)
{
    struct pg_pool *p = wc->pgpool;
    if (!p)
        return;
    while (p->list.next && !wlist_empty(&p->list)) {
        struct wlink *l = p->list.next;
        pooled_close((struct pooled *)((char *)l - offsetof(struct pooled, link)), NULL);
    }
    wc->pgpool = NULL;
    free(p);
}

size_t pg_pool_size(const struct wcluster *wc)
{
    return wc->pgpool ? wc->pgpool->n : 0;
}
