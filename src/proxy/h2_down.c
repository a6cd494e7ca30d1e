/* h2_down.c - the downstream HTTP/2 connection: a client that sent the
 * prior-knowledge preface (h2c) or chose "h2" by ALPN. The connection keeps
 * its struct hconn (accounting, TLS, draining, timers) in state HC_H2 and
 * hands its bytes to an HTTP/2 server session; each request stream becomes
 * a struct h2s that h2_exchange.c routes and sends upstream.
 *
 * Re-entrancy: session callbacks run inside h2_feed and h2_pull and may
 * reach code that asks for another h2d_update (a stream answered locally,
 * a window reopened). h2d_update is therefore guarded: a nested call only
 * marks the connection and the outer call loops. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/h2_int.h"
#include "proxy/metrics.h"
#include "tls/tls.h"

/* Per-connection guard for h2d_update; lives beside struct h2d. */
struct h2d_full {
    struct h2d d;
    int busy, again;
};

#define H2S_OF(l) ((struct h2s *)((char *)(l) - offsetof(struct h2s, link)))

static struct h2s *stream_of(struct hconn *hc, int32_t id)
{
    return h2_stream_ud(hc->h2->s, id);
}

/* ---- session callbacks --------------------------------------------------- */

static int on_request(void *ud, int32_t id, const struct h2_header *hs, size_t n, int end)
{
    struct hconn *hc = ud;
    if (hc->w->draining) {
        h2_reset(hc->h2->s, id, H2_REFUSED_STREAM);
        return 0;
    }
    struct h2s *st = h2_mem_zalloc(sizeof(*st));
    if (!st)
        return -1;
    st->hc = hc;
    st->id = id;
    st->ep = -1;
    st->grpc_status = -1;
    st->req_done = end;
    st->replay = 1;
    st->t_start_us = loop_now_us();
    st->timer.ud = st;
    st->timer.cb = h2s_timeout;
    wlist_init(&st->pending_link);
    wlist_init(&st->us.uwait);
    wlist_add_tail(&hc->h2->streams, &st->link);
    hc->h2->nstreams++;
    hc->nrequests++;
    wgen_hold(hc->wg);
    h2_set_stream_ud(hc->h2->s, id, st);
    h2s_begin(st, hs, n);
    return 0;
}

/* Lets the upstream side of st know that request bytes (or the end) came. */
static void body_ready(struct h2s *st)
{
    if (st->up == H2S_UP_H2)
        h2u_body_ready(st);
    else if (st->up == H2S_UP_H1)
        h2h1_update(st);
}

static int on_data(void *ud, int32_t id, const uint8_t *data, size_t len)
{
    struct hconn *hc = ud;
    struct h2s *st = stream_of(hc, id);
    if (!st || st->state == H2S_DONE || st->resp_done ||
        (st->wf && h2_wf_req_body(st, data, len, 0) < 0)) {
        /* Nobody wants these bytes any more: let them go. */
        h2_consume(hc->h2->s, id, len);
        return 0;
    }
    /* The stream window equals the block size and only reopens as bytes
     * leave reqb, so this fits, except at the start of a connection: until
     * the client has our SETTINGS it may send the protocol's default
     * window (65535 bytes). A private block holds that once. */
    if (buf_put(&st->reqb, data, len) < 0 &&
        (buf_grow(&st->reqb, 65536) < 0 || buf_put(&st->reqb, data, len) < 0))
        return -1;
    st->req_bytes += len;
    metrics_add(hc->w->shard, hc->gl->m_bytes_in, len);
    /* The whole body so far no longer fits: give up the right to retry,
     * so the bytes already sent can go and the client's window reopens. */
    if (buf_room(&st->reqb) == 0)
        h2s_release_replay(st);
    body_ready(st);
    return 0;
}

/* The client's trailers (END_STREAM follows): kept for the upstream, and
 * for the filters at the end of the stream. */
static int on_trailers(void *ud, int32_t id, const struct h2_header *hs, size_t n)
{
    struct hconn *hc = ud;
    struct h2s *st = stream_of(hc, id);
    if (!st || st->state == H2S_DONE || n == 0)
        return 0;
    h2_hlist_free(&st->req_trl);
    return h2_hlist_copy(&st->req_trl, hs, n);
}

static void on_end_stream(void *ud, int32_t id)
{
    struct hconn *hc = ud;
    struct h2s *st = stream_of(hc, id);
    if (!st || st->req_done)
        return;
    st->req_done = 1;
    /* Trailers stand for the body's end as the filters see it. */
    if (st->wf && st->state != H2S_DONE &&
        (st->req_trl.n ? h2_wf_req_trailers(st) : h2_wf_req_body(st, NULL, 0, 1)) < 0)
        return;
    body_ready(st);
}

static void on_reset(void *ud, int32_t id, uint32_t code)
{
    struct hconn *hc = ud;
    struct h2s *st = stream_of(hc, id);
    (void)code;
    if (st)
        st->reset_down = 1;
}

void h2s_free(void *p)
{
    struct h2s *st = p;
    buf_free(&st->reqb);
    buf_free(&st->respb);
    buf_free(&st->ubuf);
    h2_hlist_free(&st->up_head);
    h2_hlist_free(&st->req_trl);
    h2_hlist_free(&st->h1resp_trl);
    free(st->path);
    free(st->authority);
    free(st->user_agent);
    h2_mem_release(st);
}

static void on_close(void *ud, int32_t id, uint32_t code)
{
    struct hconn *hc = ud;
    struct h2s *st = stream_of(hc, id);
    if (!st)
        return;
    if (code != H2_NO_ERROR)
        st->reset_down = 1;
    h2_set_stream_ud(hc->h2->s, id, NULL);
    h2s_finish(st);
    wlist_del(&st->link);
    hc->h2->nstreams--;
    wgen_release(hc->wg);
    loop_defer_free(hc->w->loop, h2s_free, st);
}

static const struct h2_callbacks down_cb = {
    .on_request = on_request,
    .on_data = on_data,
    .on_trailers = on_trailers,
    .on_end_stream = on_end_stream,
    .on_reset = on_reset,
    .on_close = on_close,
};

/* ---- the connection ------------------------------------------------------ */

int h2d_start(struct hconn *hc)
{
    struct h2d_full *f = calloc(1, sizeof(*f));
    if (!f) {
        hc_close(hc);
        return -1;
    }
    struct h2_settings set;
    h2_settings_default(&set);
    /* A stream's unconsumed request bytes sit in one buffer block. */
    set.initial_window_size = buf_block_size();
    set.max_headers = hc->gl->cfg->max_headers;
    set.max_header_list_size = hc->gl->cfg->max_header_bytes;
    f->d.s = h2_session_server(&down_cb, hc, &set);
    if (!f->d.s) {
        free(f);
        hc_close(hc);
        return -1;
    }
    wlist_init(&f->d.streams);
    hc->h2 = &f->d;
    hc->state = HC_H2;
    buf_shrink(&hc->out);
    /* What was read so far (the preface, maybe more) belongs to the session. */
    if (buf_len(&hc->in) > 0) {
        if (h2_feed(f->d.s, (const uint8_t *)buf_start(&hc->in), buf_len(&hc->in)) < 0)
            f->d.failed = 1;
        buf_consume(&hc->in, buf_len(&hc->in));
    }
    h2d_update(hc);
    return 0;
}

void h2d_free(struct hconn *hc)
{
    struct h2d *d = hc->h2;
    if (!d)
        return;
    /* Closing every stream runs on_close, which needs hc->h2. */
    h2_session_free(d->s);
    d->s = NULL;
    hc->h2 = NULL;
    free((struct h2d_full *)d);
}

void h2d_goaway(struct hconn *hc)
{
    struct h2d *d = hc->h2;
    if (!d || d->goaway)
        return;
    d->goaway = 1;
    h2_goaway(d->s, H2_NO_ERROR);
    h2d_update(hc);
}

void h2d_timeout(struct hconn *hc)
{
    /* No byte moved either way for the idle timeout: streams stalled by a
     * client that stopped reading (or opening its window) go with it.
     * Say goodbye properly first. */
    h2d_goaway(hc);
    if (!hc->closed)
        hc_close(hc);
}

/* Reads and feeds the session. -1 when the connection is gone. */
static int h2d_read(struct hconn *hc)
{
    struct h2d *d = hc->h2;
    for (int rounds = 0; rounds < 4; rounds++) {
        ssize_t n = sio_read_buf(&hc->sio, &hc->in);
        if (n == 0) {
            hc->read_eof = 1;
            return 0;
        }
        if (n < 0)
            return n == -2 || errno == EAGAIN ? 0 : -1;
        metrics_add(hc->w->shard, hc->gl->m_bytes_in, (uint64_t)n);
        ssize_t f = h2_feed(d->s, (const uint8_t *)buf_start(&hc->in), buf_len(&hc->in));
        buf_consume(&hc->in, buf_len(&hc->in));
        if (f < 0) {
            log_debug("listener %s: HTTP/2 connection from %s failed: %s", hc->gl->cfg->name,
                      hc->peer_ip, h2_last_error(d->s));
            d->failed = 1;
            return 0;
        }
        /* TLS may hold decrypted bytes epoll will never report. */
        if (sio_pending(&hc->sio) == 0)
            break;
    }
    return 0;
}

void h2d_on_io(struct hconn *hc, unsigned events)
{
    if ((events & LOOP_READ) && !hc->h2->failed && !hc->read_eof) {
        if (h2d_read(hc) < 0) {
            hc_close(hc);
            return;
        }
        hc_arm(hc);
    }
    h2d_update(hc);
}

/* Pulls frames into hc->out and writes them. -1 when the socket died, else
 * 1 when frames were produced (progress), 0 when there was nothing to do. */
static int h2d_flush(struct hconn *hc)
{
    struct h2d *d = hc->h2;
    int progress = 0;
    for (;;) {
        if (hc_flush(hc) < 0)
            return -1;
        if (buf_len(&hc->out) > 0)
            return progress; /* the socket is full */
        if (buf_ensure(&hc->out) < 0)
            return progress;
        ssize_t n = h2_pull(d->s, (uint8_t *)hc->out.data + hc->out.tail,
                            hc->out.cap - hc->out.tail);
        if (n <= 0) {
            buf_shrink(&hc->out);
            return progress;
        }
        hc->out.tail += (uint32_t)n;
        progress = 1;
    }
}

void h2d_update(struct hconn *hc)
{
    if (!hc->closed && hc->state == HC_H1X) {
        hc_kick(hc); /* the request may end and the next one begin */
        return;
    }
    if (hc->closed || !hc->h2)
        return;
    struct h2d_full *f = (struct h2d_full *)hc->h2;
    if (f->busy) {
        f->again = 1;
        return;
    }
    f->busy = 1;
    int dead = 0, progress = 0;
    do {
        f->again = 0;
        int r = h2d_flush(hc);
        dead = r < 0;
        progress |= r > 0;
    } while (f->again && !dead && !hc->closed);
    f->busy = 0;
    if (hc->closed)
        return;
    struct h2d *d = &f->d;
    /* Bytes going to the client count as activity for the idle timer, as
     * bytes coming from it do (h2d_on_io). */
    if (progress)
        hc_arm(hc);
    int pending_out = buf_len(&hc->out) > 0;
    if (dead || (hc->read_eof && d->nstreams == 0) ||
        (!pending_out && (d->failed || (!h2_want_read(d->s) && !h2_want_write(d->s))))) {
        if (!dead && !pending_out) {
            if (hc->sio.tls)
                tls_conn_shutdown(hc->sio.tls);
            shutdown(hc->io.fd, SHUT_WR);
        }
        hc_close(hc);
        return;
    }
    unsigned mask = pending_out ? LOOP_WRITE : 0;
    if (!hc->read_eof && !d->failed && h2_want_read(d->s))
        mask |= LOOP_READ;
    loop_io_set(hc_loop(hc), &hc->io, mask | hc->sio.want);
}
