/* h2_up.c - pooled HTTP/2 sessions to the endpoints of `protocol: http2`
 * clusters. One session (struct h2u) rides on one upstream connection
 * (struct uconn, which did the connect and TLS) and carries up to the
 * peer's stream limit of requests at once, from any downstream connection
 * of the worker, HTTP/2 or HTTP/1.1, and from the filters' gRPC calls.
 * Sessions live in wc->h2pool[ep]; a stream takes the first one with room,
 * or opens a new connection when the cluster's connection limit allows.
 * Streams are struct h2u_stream (h2_up.h): the session reports to their
 * owner's ops; the proxied requests' ops are at the end of this file.
 *
 * A session never closes itself from inside code that another session's
 * callback is running: output errors are left for its own socket event,
 * which is the one place a session dies. When it dies every stream it
 * carried learns it through on_reset/on_close: requests without a response
 * yet are retried or refused by h2_exchange.c, the others reset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "proxy/h2_int.h"
#include "proxy/lb.h"
#include "proxy/upstream.h"

struct h2u {
    struct wcluster *wc;
    int ep;
    struct uconn *uc;
    struct h2_session *s;
    struct buf out;             /* frames pulled, not yet written */
    struct wlink link;          /* in wc->h2pool[ep] */
    struct wlink waiting;       /* struct h2s (uwait) until connected */
    struct loop_timer idle;
    uint32_t nstreams;          /* streams attached, waiting ones included */
    int connected, dead, goaway;
    int readable;
    int busy;
    int dirty;                  /* in the end-of-batch set */
};

#define H2U_OF(l) ((struct h2u *)((char *)(l) - offsetof(struct h2u, link)))
#define US_OF_WAIT(l) ((struct h2u_stream *)((char *)(l) - offsetof(struct h2u_stream, uwait)))
#define H2S_OF(p) ((struct h2s *)((char *)(p) - offsetof(struct h2s, us)))

static struct loop *u_loop(const struct h2u *u) { return u->wc->wg->w->loop; }

/* ---- end-of-batch flushing ----------------------------------------------- */

/* Connections and sessions that got output to write during this batch of
 * events. They are written once, after the batch (a loop_defer_free call
 * runs then), so a burst of responses for one client costs one write, not
 * one per stream. A connection in the set has hc->h2_dirty set; one that
 * closes leaves the set (h2_unmark), so the set never holds freed memory. */
struct dirty_set {
    void **v;
    uint32_t n, cap;
};
static __thread struct dirty_set dconns, dsessions;
static __thread int flush_scheduled;

static void flush_batch(void *unused);

static int set_add(struct dirty_set *d, void *p)
{
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        void **v = realloc(d->v, cap * sizeof(*v));
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = p;
    return 0;
}

static void set_del(struct dirty_set *d, void *p)
{
    for (uint32_t i = 0; i < d->n; i++)
        if (d->v[i] == p) {
            d->v[i] = d->v[--d->n];
            return;
        }
}

static void schedule(struct loop *l)
{
    if (!flush_scheduled) {
        flush_scheduled = 1;
        loop_defer_free(l, flush_batch, NULL);
    }
}

void h2_mark(struct hconn *hc)
{
    if (hc->h2_dirty || hc->closed)
        return;
    if (set_add(&dconns, hc) < 0) {
        h2d_update(hc); /* no memory for the set: write now */
        return;
    }
    hc->h2_dirty = 1;
    schedule(hc->w->loop);
}

void h2_unmark(struct hconn *hc)
{
    if (hc->h2_dirty) {
        set_del(&dconns, hc);
        hc->h2_dirty = 0;
    }
}

static void u_flush(struct h2u *u);

/* Queues u's output for the end of the batch. */
static void u_kick(struct h2u *u)
{
    if (u->dirty || u->dead || !u->connected)
        return;
    if (set_add(&dsessions, u) < 0) {
        u_flush(u);
        return;
    }
    u->dirty = 1;
    schedule(u_loop(u));
}

static void flush_batch(void *unused)
{
    (void)unused;
    flush_scheduled = 0;
    /* Writing to a client can reopen an upstream window and the other way
     * round; a few rounds settle it, anything left waits for the next
     * batch. */
    for (int round = 0; round < 4 && (dconns.n || dsessions.n); round++) {
        while (dconns.n > 0) {
            struct hconn *hc = dconns.v[--dconns.n];
            hc->h2_dirty = 0;
            h2d_update(hc);
        }
        while (dsessions.n > 0) {
            struct h2u *u = dsessions.v[--dsessions.n];
            u->dirty = 0;
            u_flush(u);
        }
    }
    if (dconns.n || dsessions.n)
        flush_scheduled = 0; /* rescheduled by the next mark */
}

/* Frees the per-thread sets (worker exit). */
void h2_batch_free(void)
{
    free(dconns.v);
    free(dsessions.v);
    dconns = (struct dirty_set){0};
    dsessions = (struct dirty_set){0};
    h2_mem_thread_free();
}

/* ---- streams ------------------------------------------------------------- */

static void unlink_stream(struct h2u *u, struct h2u_stream *us);

static struct h2u_stream *stream(struct h2u *u, int32_t sid)
{
    return h2_stream_ud(u->s, sid);
}

static void submit(struct h2u *u, struct h2u_stream *us)
{
    int32_t sid = us->ops->submit(us, u->s);
    if (sid < 0) {
        /* The peer's stream limit shrank under us: the owner tries again. */
        unlink_stream(u, us);
        us->ops->lost(us, LB_RESET, 1, H2_REFUSED_STREAM);
        return;
    }
    us->usid = sid;
    if (us->ops->ready)
        us->ops->ready(us, u->s);
}

static void unlink_stream(struct h2u *u, struct h2u_stream *us)
{
    if (!wlist_empty(&us->uwait))
        wlist_del(&us->uwait);
    us->u = NULL;
    us->usid = 0;
    u->nstreams--;
}

/* ---- session callbacks --------------------------------------------------- */

static int on_response(void *ud, int32_t sid, int status, const struct h2_header *hs, size_t n,
                       int end)
{
    struct h2u *u = ud;
    struct h2u_stream *us = stream(u, sid);
    if (!us || status < 200)
        return 0; /* interim responses end here */
    us->ops->response(us, status, hs, n, end);
    return 0;
}

static int on_data(void *ud, int32_t sid, const uint8_t *data, size_t len)
{
    struct h2u *u = ud;
    struct h2u_stream *us = stream(u, sid);
    if (!us) {
        h2_consume(u->s, sid, len);
        return 0;
    }
    /* The window reopens when the owner takes the bytes (h2u_stream_consumed). */
    us->ops->data(us, data, len);
    return 0;
}

static int on_trailers(void *ud, int32_t sid, const struct h2_header *hs, size_t n)
{
    struct h2u *u = ud;
    struct h2u_stream *us = stream(u, sid);
    if (us)
        us->ops->end(us, hs, n);
    return 0;
}

static void on_end_stream(void *ud, int32_t sid)
{
    struct h2u *u = ud;
    struct h2u_stream *us = stream(u, sid);
    if (us)
        us->ops->end(us, NULL, 0);
}

/* The upstream stream sid ended without (or before the end of) its
 * response; fresh: the server never touched it. */
static void stream_lost(struct h2u *u, int32_t sid, int fresh, uint32_t abort_code)
{
    struct h2u_stream *us = stream(u, sid);
    if (!us)
        return;
    h2_set_stream_ud(u->s, sid, NULL);
    unlink_stream(u, us);
    us->ops->lost(us, LB_RESET, fresh, abort_code);
}

static void on_reset(void *ud, int32_t sid, uint32_t code)
{
    /* REFUSED_STREAM: the server did not touch it, always safe to send
     * again. */
    stream_lost(ud, sid, code == H2_REFUSED_STREAM,
                code == H2_NO_ERROR ? H2_INTERNAL_ERROR : code);
}

/* A stream still linked at its close (a reset already unlinked it). */
static void on_close(void *ud, int32_t sid, uint32_t code)
{
    (void)code;
    stream_lost(ud, sid, 0, H2_INTERNAL_ERROR);
}

static void on_goaway(void *ud, int32_t last, uint32_t code)
{
    struct h2u *u = ud;
    (void)last;
    (void)code;
    u->goaway = 1; /* no new streams here; the open ones finish */
}

static const struct h2_callbacks up_cb = {
    .on_response = on_response,
    .on_data = on_data,
    .on_trailers = on_trailers,
    .on_end_stream = on_end_stream,
    .on_reset = on_reset,
    .on_close = on_close,
    .on_goaway = on_goaway,
};

/* ---- the session --------------------------------------------------------- */

static void u_free(void *p)
{
    struct h2u *u = p;
    buf_free(&u->out);
    free(u);
}

/* Ends the session: every stream it carried fails or resets. */
static void u_close(struct h2u *u)
{
    if (u->dead && !u->s)
        return;
    u->dead = 1;
    if (u->dirty) {
        set_del(&dsessions, u);
        u->dirty = 0;
    }
    if (!wlist_empty(&u->link))
        wlist_del(&u->link);
    loop_timer_cancel(u_loop(u), &u->idle);
    while (!wlist_empty(&u->waiting)) {
        struct h2u_stream *us = US_OF_WAIT(u->waiting.next);
        unlink_stream(u, us);
        us->ops->lost(us, LB_CONNECT_FAIL, 0, H2_CONNECT_ERROR);
    }
    struct h2_session *s = u->s;
    u->s = NULL;
    if (s) {
        /* on_reset/on_close of the open streams run here and look up
         * streams through u->s: give it back for the duration. */
        u->s = s;
        h2_session_free(s);
        u->s = NULL;
    }
    if (u->uc) {
        uconn_close(u->uc);
        u->uc = NULL;
    }
    loop_defer_free(u_loop(u), u_free, u);
}

/* Pulls frames and writes them; never closes (see the file comment). */
static void u_flush(struct h2u *u)
{
    if (!u->connected || u->dead || u->busy)
        return;
    for (;;) {
        while (buf_len(&u->out) > 0) {
            ssize_t n = sio_write_buf(&u->uc->sio, &u->out);
            if (n < 0) {
                if (errno != EAGAIN)
                    u->dead = 1; /* found again by the next socket event */
                goto want;
            }
        }
        if (buf_ensure(&u->out) < 0)
            break;
        ssize_t n = h2_pull(u->s, (uint8_t *)u->out.data + u->out.tail,
                            u->out.cap - u->out.tail);
        if (n <= 0) {
            buf_shrink(&u->out);
            break;
        }
        u->out.tail += (uint32_t)n;
    }
want:;
    unsigned mask = LOOP_READ;
    if (buf_len(&u->out) > 0 || u->dead)
        mask |= LOOP_WRITE;
    loop_io_set(u_loop(u), &u->uc->io, mask | u->uc->sio.want);
}

/* Whether the session should go now that a stream left it. */
static void u_check_idle(struct h2u *u)
{
    if (u->nstreams > 0 || u->dead || u->busy)
        return; /* busy: u_io looks again after h2_feed */
    struct worker *w = u->wc->wg->w;
    if (w->draining || u->wc->wg != w->cur || u->goaway) {
        u_close(u);
        return;
    }
    loop_timer_arm(u_loop(u), &u->idle, loop_now(u_loop(u)) + u->wc->gc->cfg->idle_timeout_ms);
}

static void u_idle_timeout(struct loop *l, struct loop_timer *t)
{
    struct h2u *u = t->ud;
    (void)l;
    if (u->nstreams == 0)
        u_close(u);
    }

static void u_io(void *owner, struct uconn *uc, unsigned events)
{
    struct h2u *u = owner;
    (void)uc;
    if (!u->dead && (events & LOOP_READ)) {
        for (int rounds = 0; rounds < 4 && !u->dead; rounds++) {
            ssize_t n = sio_read_buf(&u->uc->sio, &u->uc->in);
            if (n == 0 || (n < 0 && n != -2 && errno != EAGAIN)) {
                u->dead = 1;
                break;
            }
            if (n < 0)
                break;
            u->busy = 1;
            ssize_t f = h2_feed(u->s, (const uint8_t *)buf_start(&u->uc->in),
                                buf_len(&u->uc->in));
            u->busy = 0;
            buf_consume(&u->uc->in, buf_len(&u->uc->in));
            if (f < 0) {
                log_warn("cluster %s: HTTP/2 session with %s failed: %s", u->wc->gc->cfg->name,
                         u->wc->gc->cfg->endpoints[u->ep].address, h2_last_error(u->s));
                u->busy = 0;
                u_flush(u); /* the GOAWAY, best effort */
                u->dead = 1;
                break;
            }
            if (sio_pending(&u->uc->sio) == 0)
                break;
        }
    }
    if (!u->dead) {
        u_flush(u);
        u_check_idle(u);
    }
    if (!u->dead && !h2_want_read(u->s) && !h2_want_write(u->s) && buf_len(&u->out) == 0)
        u->dead = 1; /* the session is over (GOAWAY both ways) */
    if (u->dead)
        u_close(u);
}

static void u_connected(void *owner, struct uconn *uc, int err)
{
    struct h2u *u = owner;
    if (err) {
        u->uc = NULL; /* closed by the pool */
        log_debug("cluster %s: connect to %s failed: %s", u->wc->gc->cfg->name,
                  u->wc->gc->cfg->endpoints[u->ep].address, strerror(err));
        u_close(u);
        return;
    }
    (void)uc;
    u->connected = 1;
    while (!wlist_empty(&u->waiting)) {
        struct h2u_stream *us = US_OF_WAIT(u->waiting.next);
        wlist_del(&us->uwait);
        submit(u, us);
    }
    u_flush(u);
    u_check_idle(u);
}

static const struct uconn_ops u_ops = {u_connected, u_io};

/* A session of wc to ep that can take another stream, or NULL. */
static struct h2u *find(struct wcluster *wc, int ep)
{
    for (struct wlink *l = wc->h2pool[ep].next; l != &wc->h2pool[ep]; l = l->next) {
        struct h2u *u = H2U_OF(l);
        if (u->dead || u->goaway)
            continue;
        if (u->connected ? h2_can_open_stream(u->s) : u->nstreams < 100)
            return u;
    }
    return NULL;
}

int h2u_can_start(struct wcluster *wc, int ep)
{
    return find(wc, ep) != NULL || uconn_can_open(wc);
}

static struct h2u *u_open(struct wcluster *wc, int ep)
{
    struct h2u *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->wc = wc;
    u->ep = ep;
    wlist_init(&u->waiting);
    wlist_init(&u->link);
    u->idle.cb = u_idle_timeout;
    u->idle.ud = u;
    struct h2_settings set;
    h2_settings_default(&set);
    /* A stream's unread response bytes sit in one buffer block. */
    set.initial_window_size = buf_block_size();
    u->s = h2_session_client(&up_cb, u, &set);
    if (!u->s) {
        free(u);
        errno = ENOMEM;
        return NULL;
    }
    int ready = 0;
    u->uc = uconn_get(wc, ep, &u_ops, u, &ready);
    if (!u->uc) {
        int e = errno;
        h2_session_free(u->s);
        free(u);
        errno = e;
        return NULL;
    }
    wlist_add_tail(&wc->h2pool[ep], &u->link);
    if (ready)
        u->connected = 1;
    return u;
}

/* Borrows wc and us (until detached). */
int h2u_stream_open(struct wcluster *wc, int ep, struct h2u_stream *us,
                    const struct h2u_stream_ops *ops)
{
    struct h2u *u = find(wc, ep);
    if (!u && !(u = u_open(wc, ep)))
        return -1;
    loop_timer_cancel(u_loop(u), &u->idle);
    us->ops = ops;
    us->u = u;
    us->usid = 0;
    u->nstreams++;
    if (!u->connected) {
        wlist_add_tail(&u->waiting, &us->uwait);
        return 0;
    }
    submit(u, us);
    u_kick(u);
    return 0;
}

/* Borrows us. */
void h2u_stream_resume(struct h2u_stream *us)
{
    struct h2u *u = us->u;
    if (!u || us->usid <= 0)
        return;
    if (us->ops->ready)
        us->ops->ready(us, u->s);
    h2_resume(u->s, us->usid);
    u_kick(u);
}

/* Borrows us. */
void h2u_stream_consumed(struct h2u_stream *us, size_t n)
{
    struct h2u *u = us->u;
    if (!u || us->usid <= 0)
        return;
    h2_consume(u->s, us->usid, n);
    u_kick(u);
}

/* Borrows us. */
void h2u_stream_detach(struct h2u_stream *us)
{
    struct h2u *u = us->u;
    if (!u)
        return;
    if (us->usid > 0 && u->s) {
        h2_set_stream_ud(u->s, us->usid, NULL);
        /* RST_STREAM CANCEL: the upstream stops working on it, and the
         * session stops reading the request body from the owner. Harmless
         * when the stream already ended. */
        h2_reset(u->s, us->usid, H2_CANCEL);
    }
    unlink_stream(u, us);
    u_kick(u);
    u_check_idle(u);
}

void h2u_close_idle(struct wcluster *wc)
{
    for (size_t i = 0; i < wc->gc->cfg->nendpoints; i++) {
        struct wlink *l = wc->h2pool[i].next;
        while (l != &wc->h2pool[i]) {
            struct h2u *u = H2U_OF(l);
            l = l->next;
            if (u->nstreams == 0)
                u_close(u);
            else
                u->goaway = 1; /* close when its last stream ends */
        }
    }
    }

/* ---- proxied requests (struct h2s) ---------------------------------------- */

static int32_t rq_submit(struct h2u_stream *us, struct h2_session *s)
{
    struct h2s *st = H2S_OF(us);
    int body = !(st->req_done && buf_len(&st->reqb) == 0 && st->req_bytes == 0 &&
                 st->req_trl.n == 0);
    st->req_trl_sent = 0;
    return h2_submit_request(s, st->up_head.v, st->up_head.n, body ? h2s_req_read : NULL, st,
                             us);
}

/* The client's trailers go on the upstream stream once, after the request
 * ended and before the body source reports its end (it does only when
 * req_done, and this runs first wherever req_done is seen: on submit and
 * on every resume). */
static void rq_ready(struct h2u_stream *us, struct h2_session *s)
{
    struct h2s *st = H2S_OF(us);
    if (!st->req_done || st->req_trl.n == 0 || st->req_trl_sent || us->usid <= 0)
        return;
    st->req_trl_sent = 1;
    if (h2_submit_trailers(s, us->usid, st->req_trl.v, st->req_trl.n) != 0)
        h2_reset(s, us->usid, H2_INTERNAL_ERROR);
}

static void rq_response(struct h2u_stream *us, int status, const struct h2_header *hs, size_t n,
                        int end)
{
    struct h2s *st = H2S_OF(us);
    h2_mark(st->hc);
    h2s_response(st, status, hs, n, end);
}

static void rq_data(struct h2u_stream *us, const uint8_t *p, size_t len)
{
    struct h2s *st = H2S_OF(us);
    h2_mark(st->hc);
    h2s_resp_data(st, p, len);
}

static void rq_end(struct h2u_stream *us, const struct h2_header *hs, size_t n)
{
    struct h2s *st = H2S_OF(us);
    if (!hs && !st->resp_head_done)
        return; /* the end of a stream whose head was refused */
    h2_mark(st->hc);
    h2s_resp_end(st, hs, n);
}

/* Requests without a response yet are retried or answered by
 * h2_exchange.c; a started response is reset with code. */
static void rq_lost(struct h2u_stream *us, int kind, int fresh, uint32_t code)
{
    struct h2s *st = H2S_OF(us);
    st->up = H2S_UP_NONE;
    h2_mark(st->hc);
    if (!st->resp_head_done)
        h2s_attempt_failed(st, kind, fresh);
    else if (!st->resp_done)
        h2s_resp_abort(st, code);
}

static const struct h2u_stream_ops rq_ops = {.submit = rq_submit, .ready = rq_ready,
                                             .response = rq_response, .data = rq_data,
                                             .end = rq_end, .lost = rq_lost};

int h2u_start(struct h2s *st)
{
    /* Set first: a refused submit inside the open already moves the
     * stream on (rq_lost), to a retry maybe. */
    st->up = H2S_UP_H2;
    if (h2u_stream_open(st->wc, st->ep, &st->us, &rq_ops) < 0) {
        st->up = H2S_UP_NONE;
        return -1;
    }
    return 0;
}

void h2u_body_ready(struct h2s *st) { h2u_stream_resume(&st->us); }

void h2u_consumed(struct h2s *st, size_t n) { h2u_stream_consumed(&st->us, n); }

void h2u_detach(struct h2s *st) { h2u_stream_detach(&st->us); }
