/* tunnel.c - bidirectional copy with half-close and back-pressure.
 *
 * Without filters each direction is one bounded buffer: read into it,
 * write it out. With WasmPlugins (a tcp listener's stream filters) the
 * buffer only receives reads; each read is handed to the filters, which
 * keep the bytes they hold (Pause) and release the rest, maybe changed,
 * into the filter stream's output queue, and that queue is written on. */
#include "proxy/tunnel.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "proxy/gen.h"
#include "proxy/metrics.h"
#include "proxy/upstream.h"
#include "proxy/wasm_filter.h"
#include "proxy/worker.h"
#include "tls/tls.h"

struct tunnel {
    struct loop_io cio;           /* client side; the upstream side is uc->io */
    struct sio cs;                /* the client stream over cio.fd */
    struct loop_timer timer;
    struct worker *w;
    struct gen_listener *gl;
    struct wgen *wg;
    struct uconn *uc;
    struct buf down;              /* upstream -> client */
    struct buf up;                /* client -> upstream */
    unsigned c_eof, u_eof;               /* read side finished */
    unsigned c_shut : 1, u_shut : 1;     /* we shut down writing to it */
    unsigned closed : 1;
    uint64_t idle_ms;
    uint64_t t_start_us;
    struct tunnel_stats st;
    tunnel_done_fn done;
    void *done_ud;
    struct wf_stream *wf;         /* the stream filters, or NULL */
    struct tunnel_attrs attrs;
};

static const struct uconn_ops tunnel_uc_ops;

static void t_free(void *p)
{
    struct tunnel *t = p;
    buf_free(&t->up);
    buf_free(&t->down);
    free(t);
}

static void t_close(struct tunnel *t, int reason)
{
    if (t->closed)
        return;
    t->closed = 1;
    struct worker *w = t->w;
    loop_timer_cancel(w->loop, &t->timer);
    loop_io_del(w->loop, &t->cio);
    sio_tls_close(&t->cs);
    close(t->cio.fd);
    if (t->uc)
        uconn_close(t->uc);
    if (t->wf) {
        wf_tcp_closed(t->wf, false);
        wf_tcp_closed(t->wf, true);
        wf_stream_free(t->wf);
        t->wf = NULL;
    }
    t->st.reason = reason;
    t->st.duration_us = loop_now_us() - t->t_start_us;
    if (t->done)
        t->done(t->done_ud, &t->st);
    metrics_gauge_add(w->shard, t->gl->m_conn_active, -1);
    wgen_release(t->wg);
    worker_conn_closed(w);
    loop_defer_free(w->loop, t_free, t);
}

/* Moves bytes src -> buffer -> dst; returns 0 or an errno. */
static int pump(struct buf *b, struct sio *src, struct sio *dst, unsigned *src_eof,
                uint64_t *count)
{
    for (;;) {
        if (buf_len(b) > 0) {
            ssize_t n = sio_write_buf(dst, b);
            if (n < 0)
                return errno == EAGAIN ? 0 : errno;
            *count += (uint64_t)n;
            if (buf_len(b) > 0)
                return 0; /* partial write: the destination is full */
        }
        if (*src_eof)
            return 0;
        ssize_t n = sio_read_buf(src, b);
        if (n == 0) {
            *src_eof = 1;
            return 0;
        }
        if (n == -2)
            return 0;
        if (n < 0)
            return errno == EAGAIN ? 0 : errno;
    }
}

/* pump() through the filters: b receives reads only; the filter stream's
 * output queue of direction `from_up` is what gets written to dst. */
static int pump_filtered(struct tunnel *t, bool from_up, struct buf *b, struct sio *src,
                         struct sio *dst, unsigned *src_eof, uint64_t *count)
{
    for (;;) {
        const uint8_t *p;
        size_t n;
        while ((n = wf_tcp_out(t->wf, from_up, &p)) > 0) {
            struct iovec iov = {(void *)p, n};
            ssize_t w = sio_writev(dst, &iov, 1);
            if (w < 0)
                return errno == EAGAIN ? 0 : errno;
            wf_tcp_consume(t->wf, from_up, (size_t)w);
            *count += (uint64_t)w;
            if ((size_t)w < n)
                return 0; /* the destination is full */
        }
        /* A filter holding this much without letting go is stopped by
         * not reading on (the idle timeout ends the connection). */
        if (*src_eof || wf_tcp_held(t->wf, from_up) >= WF_TCP_MAX_HELD)
            return 0;
        ssize_t r = sio_read_buf(src, b);
        if (r == -2)
            return 0;
        if (r < 0)
            return errno == EAGAIN ? 0 : errno;
        if (r == 0)
            *src_eof = 1;
        int rc = wf_tcp_data(t->wf, from_up, (const uint8_t *)buf_start(b), buf_len(b), r == 0);
        buf_consume(b, buf_len(b));
        if (rc == WF_FAIL)
            return ECONNABORTED;
    }
}

/* Bytes still to be written toward the upstream (up) or the client. */
static size_t t_queued(struct tunnel *t, bool up)
{
    if (!t->wf)
        return buf_len(up ? &t->up : &t->down);
    const uint8_t *p;
    return wf_tcp_out(t->wf, !up, &p);
}

/* Whether reading the client (up) or the upstream may go on. */
static bool t_can_read(struct tunnel *t, bool up)
{
    if (!t->wf)
        return true;
    return wf_tcp_held(t->wf, !up) < WF_TCP_MAX_HELD;
}

static void t_run(struct tunnel *t)
{
    int ufd = t->uc->io.fd, cfd = t->cio.fd;
    struct sio *us = &t->uc->sio;
    uint64_t up0 = t->st.bytes_up, down0 = t->st.bytes_down;
    int err;
    if (t->wf) {
        err = pump_filtered(t, false, &t->up, &t->cs, us, &t->c_eof, &t->st.bytes_up);
        if (!err)
            err = pump_filtered(t, true, &t->down, us, &t->cs, &t->u_eof, &t->st.bytes_down);
    } else {
        err = pump(&t->up, &t->cs, us, &t->c_eof, &t->st.bytes_up);
        if (!err)
            err = pump(&t->down, us, &t->cs, &t->u_eof, &t->st.bytes_down);
    }
    if (err) {
        t_close(t, err);
        return;
    }
    uint64_t moved = t->st.bytes_up - up0 + t->st.bytes_down - down0;
    if (t->st.bytes_up != up0)
        metrics_add(t->w->shard, t->gl->m_bytes_in, t->st.bytes_up - up0);
    if (t->st.bytes_down != down0)
        metrics_add(t->w->shard, t->gl->m_bytes_out, t->st.bytes_down - down0);
    /* Pass end-of-stream on once everything before it is delivered. */
    if (t->c_eof && t_queued(t, true) == 0 && !t->u_shut) {
        if (us->tls)
            tls_conn_shutdown(us->tls); /* close_notify is TLS's half-close */
        shutdown(ufd, SHUT_WR);
        t->u_shut = 1;
    }
    if (t->u_eof && t_queued(t, false) == 0 && !t->c_shut) {
        if (t->cs.tls)
            tls_conn_shutdown(t->cs.tls);
        shutdown(cfd, SHUT_WR);
        t->c_shut = 1;
    }
    if (t->u_shut && t->c_shut) {
        t_close(t, 0);
        return;
    }
    unsigned cm = 0, um = 0;
    if (t_queued(t, true) > 0)
        um |= LOOP_WRITE;
    else if (!t->c_eof && t_can_read(t, true))
        cm |= LOOP_READ;
    if (t_queued(t, false) > 0)
        cm |= LOOP_WRITE;
    else if (!t->u_eof && t_can_read(t, false))
        um |= LOOP_READ;
    /* Bytes TLS already decrypted are never reported by epoll. */
    if ((sio_pending(&t->cs) && buf_has_room(&t->up)) || (sio_pending(us) && buf_has_room(&t->down))) {
        t_run(t);
        return;
    }
    loop_io_set(t->w->loop, &t->cio, cm | t->cs.want);
    uconn_want(t->uc, um | us->want);
    if (moved)
        loop_timer_arm(t->w->loop, &t->timer, loop_now(t->w->loop) + t->idle_ms);
}

static void t_client_io(struct loop *l, struct loop_io *io, unsigned events) { t_run(io->ud); }

static void t_uc_io(void *owner, struct uconn *uc, unsigned events) { t_run(owner); }

static void t_uc_connected(void *owner, struct uconn *uc, int err) {}

static const struct uconn_ops tunnel_uc_ops = {t_uc_connected, t_uc_io};

static void t_timeout(struct loop *l, struct loop_timer *tm) { t_close(tm->ud, ETIMEDOUT); }

static int t_wf_attr(void *owner, const struct attr_key *key, attr_val *out, int max)
{
    struct tunnel *t = owner;
    return t->attrs.get(t->attrs.ctx, key, out, max);
}

/* A filter closed the stream from outside a data call (a tick). */
static void t_wf_resume(void *owner)
{
    struct tunnel *t = owner;
    if (t->wf && wf_resume(t->wf) == WF_FAIL)
        t_close(t, ECONNABORTED);
}

static const struct wf_embed t_wf_embed = {t_wf_attr, t_wf_resume};

/* Takes ownership of *cs, uc, *to_client and *to_upstream (left empty). */
struct tunnel *tunnel_new(struct worker *w, struct gen_listener *gl, struct sio *cs,
                          struct buf *to_client, struct buf *to_upstream, struct uconn *uc,
                          uint64_t idle_ms, tunnel_done_fn done, void *done_ud,
                          const struct tunnel_attrs *attrs)
{
    int cfd = cs->fd;
    struct tunnel *t = calloc(1, sizeof(*t));
    if (!t) {
        sio_tls_close(cs);
        close(cfd);
        uconn_close(uc);
        buf_free(to_client);
        buf_free(to_upstream);
        return NULL;
    }
    t->w = w;
    t->gl = gl;
    t->wg = worker_wgen(w);
    wgen_hold(t->wg);
    t->uc = uc;
    uc->ops = &tunnel_uc_ops;
    uc->owner = t;
    t->down = *to_client;
    t->up = *to_upstream;
    *to_client = (struct buf){0};
    *to_upstream = (struct buf){0};
    t->idle_ms = idle_ms;
    t->done = done;
    t->done_ud = done_ud;
    t->t_start_us = loop_now_us();
    t->cs = *cs;
    *cs = (struct sio){.fd = -1};
    t->cio.fd = cfd;
    t->cio.cb = t_client_io;
    t->cio.ud = t;
    t->timer.cb = t_timeout;
    t->timer.ud = t;
    worker_conn_opened(w);
    metrics_gauge_add(w->shard, gl->m_conn_active, 1);
    if (loop_io_add(w->loop, &t->cio, 0) < 0) {
        t_close(t, errno);
        return NULL;
    }
    loop_timer_arm(w->loop, &t->timer, loop_now(w->loop) + idle_ms);
    if (attrs && wf_listener_has(gl)) {
        int failed;
        t->attrs = *attrs;
        t->wf = wf_stream_new(t->wg, gl, NULL, true, &t_wf_embed, t, &failed);
        if (failed || (t->wf && wf_tcp_open(t->wf) == WF_FAIL)) {
            t_close(t, ECONNABORTED);
            return NULL;
        }
    }
    t_run(t);
    return t;
}
