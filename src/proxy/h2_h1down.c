/* h2_h1down.c - an HTTP/1.1 client's request to an HTTP/2 cluster: the
 * other direction of translation. The request, routed by http.c as usual,
 * becomes a struct h2s (st->h1 set) driven by h2_exchange.c exactly like a
 * request that came over HTTP/2; this file is its client side:
 *
 *   hc->in --(de-chunk / count)--> reqb --> upstream HTTP/2 stream
 *   hc->out <--(chunk if no length)-- respb <-- upstream
 *
 * The connection sits in HC_H1X for the duration (hc->xst) and goes back
 * to HC_HEAD (or closes) when the response is written. Trailers from the
 * upstream are not forwarded: HTTP/1.1 clients rarely ask for them, and
 * gRPC, which needs them, speaks HTTP/2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/http2/grpc.h"
#include "proxy/h2_int.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"

/* ---- the request --------------------------------------------------------- */

static const struct h1_header *find(const struct h1_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (h1_str_ieq(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

static char *take(char **p)
{
    char *s = *p;
    *p = NULL;
    return s;
}

/* r: routed to an HTTP/2 cluster, still owned by the caller (its path,
 * authority and user-agent copies move to the stream, and so does its hold
 * on hc->wg). req: the parsed head, borrowed. 0, or -1 when out of memory
 * (nothing was taken). */
int h1x_begin(struct hconn *hc, struct hreq *r, const struct h1_request *req, size_t head_len,
              struct wf_stream *wf)
{
    /* The request as HTTP/2 fields: pseudo-headers, then the fields with
     * lower-case names and without hop-by-hop ones. */
    static __thread struct h2_header hs[HTTP_MAX_HEADERS_CAP + 4];
    static __thread char scratch[16384];
    size_t n = 0, used = 0;
    struct h2s *st = h2_mem_zalloc(sizeof(*st));
    if (!st)
        return -1;
    hs[n++] = (struct h2_header){":method", 7, req->method.p, req->method.len};
    char *path = scratch;
    size_t pl = req->path.len ? req->path.len : 1;
    memcpy(path, req->path.len ? req->path.p : "/", pl);
    if (req->query.p && pl + 1 + req->query.len < sizeof(scratch) / 2) {
        path[pl++] = '?';
        memcpy(path + pl, req->query.p, req->query.len);
        pl += req->query.len;
    }
    used = pl;
    hs[n++] = (struct h2_header){":path", 5, path, pl};
    const char *auth = req->authority.len ? req->authority.p : r->wc->gc->cfg->name;
    size_t al = req->authority.len ? req->authority.len : strlen(auth);
    hs[n++] = (struct h2_header){":authority", 10, auth, al};
    for (size_t i = 0; i < req->nheaders && n < sizeof(hs) / sizeof(hs[0]); i++) {
        const struct h1_header *h = &req->headers[i];
        if (h1_header_should_strip(h->name, req->connection) || h1_str_ieq(h->name, "host") ||
            h1_str_ieq(h->name, "transfer-encoding") ||
            (req->body != H1_BODY_LENGTH && h1_str_ieq(h->name, "content-length")))
            continue;
        if (used + h->name.len >= sizeof(scratch))
            break;
        char *name = scratch + used;
        for (size_t k = 0; k < h->name.len; k++)
            name[k] = (char)((h->name.p[k] >= 'A' && h->name.p[k] <= 'Z') ? h->name.p[k] + 32
                                                                            : h->name.p[k]);
        used += h->name.len;
        hs[n++] = (struct h2_header){name, h->name.len, h->value.p, h->value.len};
    }

    st->hc = hc;
    st->h1 = 1;
    st->ep = -1;
    st->grpc_status = -1;
    st->replay = 1;
    st->t_start_us = r->t_start_us;
    st->timer.ud = st;
    st->timer.cb = h2s_timeout;
    wlist_init(&st->pending_link);
    wlist_init(&st->us.uwait);
    memcpy(st->method, r->method, sizeof(st->method));
    st->head_only = r->head_only;
    st->path = take(&r->path);
    st->authority = take(&r->authority);
    st->user_agent = take(&r->user_agent);
    memcpy(st->request_id, r->request_id, sizeof(st->request_id));
    st->rr = r->rr;
    st->backend = r->backend;
    st->stats = r->stats;
    st->wc = r->wc;
    st->hash = r->hash;
    st->have_hash = r->have_hash;
    st->h1req = r->body;
    st->req_done = r->body.done;
    st->has_length = req->body == H1_BODY_LENGTH;
    const struct h1_header *ct = find(req, "content-type");
    st->grpc = ct && grpc_is_content_type(ct->value.p, ct->value.len);
    st->h1_http10 = r->http10;
    st->h1_keepalive = r->client_keepalive;
    st->h1_close_after = r->close_after;
    st->state = H2S_CONNECTING;

    hc->xst = st;
    hc->state = HC_H1X;
    if (wf)
        h2_wf_adopt(st, wf);
    /* The fields point into hc->in: build the upstream head before the
     * head's bytes go. */
    h2s_go(st, hs, n);
    buf_consume(&hc->in, (uint32_t)head_len);
    return 0;
}

/* The chunked request stopped at its trailer section: once it is all in
 * hc->in, its fields HTTP/2 may carry become st->req_trl (names lower
 * case) for the filters and the upstream. 0 (done, or waiting for more),
 * -1 when malformed or larger than the buffer. */
static int take_trailers(struct h2s *st)
{
    struct hconn *hc = st->hc;
    struct h1_header hv[HTTP_MAX_HEADERS_CAP];
    struct h2_header out[HTTP_MAX_HEADERS_CAP];
    size_t n = 0, k = 0;
    int t = h1_chunked_trailers(&st->h1req.ch, buf_start(&hc->in), buf_len(&hc->in), hv,
                                HTTP_MAX_HEADERS_CAP, &n);
    if (t == H1_INCOMPLETE)
        return buf_full(&hc->in) ? -1 : 0;
    if (t < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (h1_trailer_forwardable(hv[i].name, hv[i].value))
            out[k++] = (struct h2_header){hv[i].name.p, hv[i].name.len, hv[i].value.p,
                                          hv[i].value.len};
    h2_hlist_free(&st->req_trl);
    if (k && h2_hlist_copy(&st->req_trl, out, k) < 0)
        return -1;
    for (size_t i = 0; i < st->req_trl.n; i++) /* HTTP/2 wants lower-case names */
        for (char *c = (char *)st->req_trl.v[i].name; *c; c++)
            *c = (char)h1_lower[(uint8_t)*c];
    buf_consume(&hc->in, (uint32_t)t);
    st->h1req.done = 1;
    return 0;
}

/* Moves request body bytes from hc->in into reqb. Returns the count, or -1
 * on malformed chunked framing. */
static ssize_t pump_body(struct h2s *st)
{
    struct hconn *hc = st->hc;
    struct hbody *b = &st->h1req;
    ssize_t moved = 0;
    while (!b->done && buf_len(&hc->in) > 0) {
        uint32_t room = buf_room(&st->reqb);
        const char *in = buf_start(&hc->in);
        size_t len = buf_len(&hc->in);
        if (b->kind == H1_BODY_LENGTH) {
            size_t k = len < b->left ? len : (size_t)b->left;
            if (k > room)
                k = room;
            if (k == 0 || buf_put(&st->reqb, in, k) < 0)
                break;
            buf_consume(&hc->in, (uint32_t)k);
            b->left -= k;
            b->done = b->left == 0;
            moved += (ssize_t)k;
            continue;
        }
        /* Chunked: feed at most `room` bytes, so the payload the decoder
         * returns always fits; a framing line (<= H1_CHUNK_LINE_MAX) needs
         * that much room, or an empty reqb for a long trailer section. */
        if (room < H1_CHUNK_LINE_MAX + 8 && buf_len(&st->reqb) > 0)
            break;
        if (len > room)
            len = room;
        const char *data;
        size_t dlen;
        int c = h1_chunked_decode(&b->ch, in, len, &data, &dlen);
        if (c < 0)
            return -1;
        if (c == 0)
            break;
        if (dlen > 0 && buf_put(&st->reqb, data, dlen) < 0)
            return -1;
        buf_consume(&hc->in, (uint32_t)c);
        moved += (ssize_t)dlen;
        b->done = h1_chunked_done(&b->ch);
    }
    if (!b->done && b->kind == H1_BODY_CHUNKED && h1_chunked_at_trailers(&b->ch) &&
        buf_len(&hc->in) > 0 && take_trailers(st) < 0)
        return -1;
    return moved;
}

/* ---- the response -------------------------------------------------------- */

static int put(struct buf *b, const char *p, size_t n) { return buf_put(b, p, n); }

static int put_s(struct buf *b, const char *s) { return buf_put(b, s, strlen(s)); }

/* st: borrowed; hs: borrowed, written out at once. */
int h1x_respond(struct h2s *st, int status, const struct h2_header *hs, size_t n, int body)
{
    struct hconn *hc = st->hc;
    struct buf *o = &hc->out;
    uint32_t mark = o->data ? o->tail : 0;
    char line[64];
    snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\n", status, h1_status_reason(status));
    int rc = put_s(o, line);
    int has_cl = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (hs[i].nlen == 14 && memcmp(hs[i].name, "content-length", 14) == 0)
            has_cl = 1;
        rc |= put(o, hs[i].name, hs[i].nlen) | put(o, ": ", 2) | put(o, hs[i].value, hs[i].vlen) |
              put(o, "\r\n", 2);
    }
    if (body && !has_cl) {
        if (st->h1_http10)
            st->h1_close_after = 1; /* the end of the body is the close */
        else {
            st->h1_resp_chunked = 1;
            rc |= put_s(o, "transfer-encoding: chunked\r\n");
        }
    } else if (!body && !has_cl && status != 204 && status != 304 && !st->head_only) {
        rc |= put_s(o, "content-length: 0\r\n");
    }
    if (st->h1_close_after || hc->w->draining)
        rc |= put_s(o, "connection: close\r\n");
    else if (st->h1_http10)
        rc |= put_s(o, "connection: keep-alive\r\n");
    rc |= put(o, "\r\n", 2);
    if (rc != 0) {
        if (o->data)
            o->tail = mark < o->head ? o->head : mark;
        return -1;
    }
    h2_mark(hc);
    return 0;
}

void h1x_wake(struct h2s *st) { h2_mark(st->hc); }

void h1x_abort(struct h2s *st)
{
    st->h1_broken = 1;
    h2_mark(st->hc);
}

/* Moves response bytes from respb to hc->out (chunk-framed when needed),
 * and writes the end once the upstream finished. */
static void pump_resp(struct h2s *st)
{
    struct hconn *hc = st->hc;
    size_t moved = 0;
    while (buf_len(&st->respb) > 0) {
        uint32_t room = buf_room(&hc->out);
        size_t len = buf_len(&st->respb);
        if (st->h1_resp_chunked) {
            if (room < 32)
                break;
            if (len > room - 24)
                len = room - 24;
            char hdr[24];
            int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
            put(&hc->out, hdr, (size_t)hl);
            put(&hc->out, buf_start(&st->respb), len);
            put(&hc->out, "\r\n", 2);
        } else {
            if (len > room)
                len = room;
            if (len == 0)
                break;
            put(&hc->out, buf_start(&st->respb), len);
        }
        buf_consume(&st->respb, (uint32_t)len);
        st->resp_bytes += len;
        moved += len;
    }
    if (moved && st->up == H2S_UP_H2)
        h2u_consumed(st, moved);
    if (st->resp_submitted && st->resp_done && buf_len(&st->respb) == 0 && !st->h1_resp_ended) {
        if (!st->h1_resp_chunked)
            st->h1_resp_ended = 1;
        else if (buf_room(&hc->out) >= 5 && put(&hc->out, "0\r\n\r\n", 5) == 0)
            st->h1_resp_ended = 1;
    }
}

/* Ends the request; the connection is ready for the next one or closing. */
static void finish(struct hconn *hc, struct h2s *st)
{
    int close_after = st->h1_close_after || !st->h1req.done || !st->h1_keepalive ||
                      hc->w->draining || st->reset_down;
    hc->xst = NULL;
    h2s_finish(st);
    wgen_release(hc->wg);
    loop_defer_free(hc->w->loop, h2s_free, st);
    if (hc->closed)
        return;
    hc->state = close_after ? HC_CLOSING : HC_HEAD;
    hc_arm(hc);
}

void h1x_close(struct hconn *hc)
{
    struct h2s *st = hc->xst;
    if (!st)
        return;
    st->reset_down = 1;
    finish(hc, st);
}

void h1x_update(struct hconn *hc)
{
    struct h2s *st = hc->xst;
    if (!st || hc->closed)
        return;
    if (st->h1_broken) {
        hc_close(hc);
        return;
    }
    ssize_t got = pump_body(st);
    if (got < 0) {
        st->h1_close_after = 1;
        st->h1req.done = 1;
        if (!st->resp_submitted) {
            h2s_local(st, 400, "malformed chunked request body", OUTCOME_CLIENT_ERROR);
        } else {
            hc_close(hc);
            return;
        }
    } else if (got > 0 || (st->h1req.done && !st->req_done)) {
        metrics_add(hc->w->shard, hc->gl->m_bytes_in, (uint64_t)got);
        st->req_bytes += (uint64_t)got;
        st->req_done = st->h1req.done;
        /* Filters see the payload just moved (the tail of reqb), then the
         * trailers in place of the body's end. */
        int trl = st->req_done && st->req_trl.n;
        if (st->wf && st->state != H2S_DONE &&
            (((got > 0 || !trl) &&
              h2_wf_req_body(st, (const uint8_t *)buf_start(&st->reqb) + buf_len(&st->reqb) - got,
                             (size_t)got, st->req_done && !trl) < 0) ||
             (trl && h2_wf_req_trailers(st) < 0)))
            goto respond;
        /* A body larger than a block cannot be replayed: release what was
         * sent so that reading can go on. */
        if (!st->req_done && buf_room(&st->reqb) < H1_CHUNK_LINE_MAX + 8)
            h2s_release_replay(st);
        if (st->up == H2S_UP_H2)
            h2u_body_ready(st);
    }
respond:
    for (int rounds = 0; rounds < 8; rounds++) {
        pump_resp(st);
        uint32_t before = buf_len(&hc->out);
        if (hc_flush(hc) < 0) {
            hc_close(hc);
            return;
        }
        if (buf_len(&hc->out) == before || buf_len(&st->respb) == 0)
            break;
    }
    if (st->h1_resp_ended && buf_len(&hc->out) == 0) {
        finish(hc, st);
        return;
    }
    hc_arm(hc); /* progress either way keeps the connection alive */
    unsigned mask = buf_len(&hc->out) > 0 ? LOOP_WRITE : 0;
    if (!hc->read_eof && buf_has_room(&hc->in))
        mask |= LOOP_READ;
    loop_io_set(hc_loop(hc), &hc->io, mask | hc->sio.want);
}
