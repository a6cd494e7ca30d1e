/* http.c - the HTTP/1.1 proxy: downstream connection and request state
 * machines.
 *
 * A connection (struct hconn) alternates between HC_HEAD (reading a request
 * head) and HC_REQ (one request in flight); pipelined requests wait in the
 * client buffer until the previous response is complete. A request (struct
 * hreq) is routed on its attributes, gets an upstream connection (pooled or
 * new, possibly after waiting for a slot), streams its body, then streams
 * the response back. Bytes move between the two sockets through bounded
 * buffers: when one side cannot take more, reading from the other stops,
 * which is the whole back-pressure story.
 *
 * Retries: a request can be sent again only while all of it is still in
 * hand. Requests whose body is complete in the client buffer when routed
 * ("replay" mode) keep it there until the response head arrives; larger
 * bodies stream and lose the right to retry with their first byte sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "proxy/accesslog.h"
#include "proxy/http_int.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/proto.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"
#include "router/router.h"

static void hc_close(struct hconn *hc);
static void hc_update(struct hconn *hc);
static void hc_on_io(struct loop *l, struct loop_io *io, unsigned events);
static void hc_on_io_inner(struct hconn *hc, unsigned events);
static void hc_process_head(struct hconn *hc);
static void req_finish(struct hreq *r);
static void req_timeout(struct loop *l, struct loop_timer *t);
static void hc_kick(struct hconn *hc);
static void http_slot_freed(struct wcluster *wc);
static void req_attempt(struct hreq *r);
static void req_update(struct hreq *r);
static void req_local(struct hreq *r, int status, const char *msg, int outcome);

static const struct uconn_ops req_uconn_ops;

static struct loop *hc_loop(struct hconn *hc) { return hc->w->loop; }

/* ---- connection ---------------------------------------------------------- */

static void hc_free(void *p)
{
    struct hconn *hc = p;
    buf_free(&hc->in);
    buf_free(&hc->out);
    free(hc);
}

static void hc_close(struct hconn *hc)
{
    if (hc->closed)
        return;
    hc->closed = 1;
    struct worker *w = hc->w;
    if (hc->req)
        req_finish(hc->req);
    loop_timer_cancel(w->loop, &hc->timer);
    loop_io_del(w->loop, &hc->io);
    if (hc->io.fd >= 0)
        close(hc->io.fd);
    wlist_del(&hc->link);
    metrics_gauge_add(w->shard, hc->gl->m_conn_active, -1);
    wgen_release(hc->wg);
    worker_conn_closed(w);
    loop_defer_free(w->loop, hc_free, hc);
}

static void hc_timeout(struct loop *l, struct loop_timer *t)
{
    struct hconn *hc = t->ud;
    if (hc->state == HC_HEAD && buf_len(&hc->in) > 0) {
        /* A head that never completes: tell the client, then go. */
        buf_shrink(&hc->out);
        http_local_response(hc, 408, "text/plain", "request timeout\n", 16, HTTP_CONN_CLOSE, NULL);
        hc->state = HC_CLOSING;
        hc_update(hc);
        return;
    }
    hc_close(hc);
}

/* Arms the connection timer for the current state. */
static void hc_arm(struct hconn *hc)
{
    const struct cfg_listener *lc = hc->gl->cfg;
    uint64_t now = loop_now(hc_loop(hc));
    uint64_t ms = lc->idle_timeout_ms;
    if (hc->state == HC_HEAD && buf_len(&hc->in) > 0)
        ms = lc->header_timeout_ms;
    loop_timer_arm(hc_loop(hc), &hc->timer, now + ms);
}

/* Writes hc->out; returns -1 if the connection died. */
static int hc_flush(struct hconn *hc)
{
    while (buf_len(&hc->out) > 0) {
        ssize_t n = buf_write_fd(&hc->out, hc->io.fd);
        if (n < 0) {
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        metrics_add(hc->w->shard, hc->gl->m_bytes_out, (uint64_t)n);
    }
    return 0;
}

/* Recomputes the connection's interest from its state. */
static void hc_update(struct hconn *hc)
{
    if (hc->closed)
        return;
    if (hc->req) {
        req_update(hc->req);
        return;
    }
    if (hc_flush(hc) < 0) {
        hc_close(hc);
        return;
    }
    unsigned mask = 0;
    if (buf_len(&hc->out) > 0)
        mask |= LOOP_WRITE;
    if (hc->state == HC_CLOSING) {
        if (buf_len(&hc->out) == 0) {
            /* Half-close first so the client reads our answer before a
             * reset could destroy it. */
            shutdown(hc->io.fd, SHUT_WR);
            hc_close(hc);
            return;
        }
    } else if (!hc->read_eof) {
        mask |= LOOP_READ;
    }
    loop_io_set(hc_loop(hc), &hc->io, mask);
}

/* Reads what the client sent; returns bytes read, 0 on EOF/full/again, -1
 * when the connection is gone. */
static ssize_t hc_read(struct hconn *hc)
{
    ssize_t n = buf_read_fd(&hc->in, hc->io.fd);
    if (n > 0) {
        metrics_add(hc->w->shard, hc->gl->m_bytes_in, (uint64_t)n);
        return n;
    }
    if (n == 0) {
        hc->read_eof = 1;
        return 0;
    }
    if (n == -2 || errno == EAGAIN)
        return 0;
    return -1;
}

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* HTTP/2 comes with the next release; until then a prior-knowledge client
 * gets a GOAWAY with HTTP_1_1_REQUIRED, the protocol's own way to say so. */
static int hc_refuse_h2(struct hconn *hc)
{
    size_t n = buf_len(&hc->in);
    size_t m = n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1;
    if (hc->nrequests > 0 || memcmp(buf_start(&hc->in), h2_preface, m) != 0)
        return 0;
    if (m < sizeof(h2_preface) - 1)
        return 1; /* wait for the rest of the preface */
    static const unsigned char frames[] = {
        0, 0, 0, 4, 0, 0, 0, 0, 0,                  /* SETTINGS, empty */
        0, 0, 8, 7, 0, 0, 0, 0, 0,                  /* GOAWAY */
        0, 0, 0, 0,                                 /* last stream 0 */
        0, 0, 0, 0x0d,                              /* HTTP_1_1_REQUIRED */
    };
    buf_append(&hc->out, frames, sizeof(frames));
    hc->state = HC_CLOSING;
    return 1;
}

static void hc_on_io(struct loop *l, struct loop_io *io, unsigned events)
{
    struct hconn *hc = io->ud;
    hc_on_io_inner(hc, events);
    hc_kick(hc);
}

static void hc_on_io_inner(struct hconn *hc, unsigned events)
{
    if (hc->req) {
        struct hreq *r = hc->req;
        if (events & LOOP_READ) {
            if (hc_read(hc) < 0) {
                hc_close(hc);
                return;
            }
            if (hc->read_eof && !r->body.done && r->state != HR_LOCAL) {
                /* The client left before sending its whole request. */
                hc_close(hc);
                return;
            }
        }
        hc_arm(hc);
        req_update(r);
        return;
    }
    if (events & LOOP_READ) {
        ssize_t n = hc_read(hc);
        if (n < 0) {
            hc_close(hc);
            return;
        }
        if (hc->state == HC_HEAD) {
            if (buf_len(&hc->in) > 0)
                hc_process_head(hc);
            else if (hc->read_eof) {
                hc_close(hc);
                return;
            }
        }
        if (hc->closed)
            return;
    }
    if (!hc->req)
        hc_arm(hc);
    hc_update(hc);
}

static void hc_accept(struct worker *w, struct gen_listener *gl, int fd,
                      const struct sockaddr_storage *peer)
{
    uconn_slot_freed = http_slot_freed;
    struct hconn *hc = calloc(1, sizeof(*hc));
    if (!hc) {
        close(fd);
        return;
    }
    hc->w = w;
    hc->wg = worker_wgen(w);
    wgen_hold(hc->wg);
    hc->gl = gl;
    hc->io.fd = fd;
    hc->io.cb = hc_on_io;
    hc->io.ud = hc;
    hc->timer.cb = hc_timeout;
    hc->timer.ud = hc;
    hc->state = HC_HEAD;
    wlist_init(&hc->link);
    wlist_add(&w->hconns, &hc->link);
    net_ip_str((const struct sockaddr *)peer, hc->peer_ip, sizeof(hc->peer_ip));
    /* The listener's own port: no getsockname() per connection. */
    hc->local_port = net_port((const struct sockaddr *)&gl->cfg->addr);
    net_nodelay(fd);
    worker_conn_opened(w);
    metrics_gauge_add(w->shard, gl->m_conn_active, 1);
    metrics_add(w->shard, gl->m_conn_total, 1);
    if (loop_io_add(w->loop, &hc->io, LOOP_READ) < 0) {
        hc_close(hc);
        return;
    }
    hc_arm(hc);
}

#define HTTP_CONN_OF(l) ((struct hconn *)((char *)(l) - offsetof(struct hconn, link)))

static void hc_drain(struct worker *w)
{
    /* Idle connections go now; busy ones close after their response. */
    struct wlink *it = w->hconns.next;
    while (it != &w->hconns) {
        struct hconn *hc = HTTP_CONN_OF(it);
        it = it->next;
        if (!hc->req && buf_len(&hc->in) == 0 && hc->state == HC_HEAD)
            hc_close(hc);
    }
}

const struct proto_handler http_handler = {"http", hc_accept, hc_drain};

/* ---- request set-up ------------------------------------------------------ */

static char *dup_str(h1_str s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.p, s.len);
        p[s.len] = 0;
    }
    return p;
}

static void req_free(struct hreq *r)
{
    buf_free(&r->head_buf);
    free(r->path);
    free(r->authority);
    free(r->user_agent);
    free(r);
}

static void req_free_cb(void *p) { req_free(p); }

static const struct h1_header *find_header(const struct h1_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (h1_str_ieq(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

/* Answers a malformed head and closes: the client's framing can no longer be
 * trusted, so nothing after it may be read as another request. */
static void hc_reject(struct hconn *hc, int status, const char *why)
{
    char body[160];
    int n = snprintf(body, sizeof(body), "%s\n", why ? why : h1_status_reason(status));
    buf_shrink(&hc->out);
    http_local_response(hc, status, "text/plain", body, (size_t)n, HTTP_CONN_CLOSE, NULL);
    struct gen_stats *s = &hc->gl->noroute;
    metrics_add(hc->w->shard, s->code[status / 100], 1);
    if (hc->w->alog) {
        struct alog_rec rec = {0};
        rec.start_ms = unix_ms();
        rec.protocol = ALOG_HTTP;
        rec.listener = alog_cstr(hc->gl->cfg->name);
        rec.source = alog_cstr(hc->peer_ip);
        rec.status = status;
        rec.outcome = ALOG_CLIENT_ERROR;
        rec.reason = alog_cstr(why);
        alog_write(hc->w->alog, &rec);
    }
    hc->state = HC_CLOSING;
    buf_free(&hc->in);
}

static void hc_process_head(struct hconn *hc)
{
    const struct cfg_listener *lc = hc->gl->cfg;
    if (hc_refuse_h2(hc))
        return;
    struct h1_header headers[HTTP_MAX_HEADERS_CAP];
    struct h1_request req;
    memset(&req, 0, sizeof(req));
    req.headers = headers;
    size_t maxh = lc->max_headers < HTTP_MAX_HEADERS_CAP ? lc->max_headers : HTTP_MAX_HEADERS_CAP;
    size_t maxb = lc->max_header_bytes;
    if (maxb > buf_block_size())
        maxb = buf_block_size();
    /* Only parse once the head looks complete: re-parsing a head that
     * trickles in byte by byte would cost O(n^2). */
    if (!h1_head_scan(buf_start(&hc->in), buf_len(&hc->in), &hc->scan_pos) &&
        buf_len(&hc->in) < maxb && !buf_full(&hc->in)) {
        if (hc->read_eof)
            hc_close(hc);
        return;
    }
    hc->scan_pos = 0;
    int rc = h1_parse_request(buf_start(&hc->in), buf_len(&hc->in), &req, maxh, maxb);
    if (rc == H1_INCOMPLETE) {
        if (buf_full(&hc->in) || buf_len(&hc->in) >= maxb)
            hc_reject(hc, 431, "request header too large");
        else if (hc->read_eof)
            hc_close(hc);
        return;
    }
    if (rc < 0) {
        hc_reject(hc, -rc, req.error ? req.error : h1_status_reason(-rc));
        return;
    }

    struct hreq *r = calloc(1, sizeof(*r));
    if (!r) {
        hc_reject(hc, 503, "out of memory");
        return;
    }
    hc->nrequests++;
    r->hc = hc;
    r->ep = -1;
    r->t_start_us = loop_now_us();
    r->timer.ud = r;
    wlist_init(&r->pending_link);
    hc->req = r;
    hc->state = HC_REQ;
    wgen_hold(hc->wg);

    size_t ml = req.method.len < sizeof(r->method) - 1 ? req.method.len : sizeof(r->method) - 1;
    memcpy(r->method, req.method.p, ml);
    r->head_only = h1_str_ieq(req.method, "HEAD");
    /* Copies for the access log only: the client buffer moves on. */
    if (hc->w->alog) {
        r->path = dup_str(req.target);
        r->authority = dup_str(req.host);
        const struct h1_header *ua = find_header(&req, "user-agent");
        if (ua)
            r->user_agent = dup_str(ua->value);
    }
    if (hc->w->alog || hc->gl->cfg->request_id) {
        const struct h1_header *rid = find_header(&req, "x-request-id");
        if (rid && rid->value.len > 0 && rid->value.len < sizeof(r->request_id))
            memcpy(r->request_id, rid->value.p, rid->value.len);
        else
            http_request_id(hc->w, r->request_id);
    }
    r->http10 = req.minor_version == 0;
    r->client_keepalive = (req.flags & H1_F_KEEPALIVE) != 0;
    r->upgrade = (req.flags & H1_F_UPGRADE) && h1_token_list_has(req.upgrade, "websocket");
    r->close_after = !r->client_keepalive;

    r->body.kind = req.body;
    r->body.left = req.content_length;
    r->body.done = req.body == H1_BODY_NONE || (req.body == H1_BODY_LENGTH && req.content_length == 0);

    /* Route on the message's attributes. */
    struct http_attr_ctx actx = {&req, hc};
    struct attr_src src = {http_attr_get, &actx};
    struct gen_listener *gl = hc->gl;
    r->rr = router_match(gl->router, &src);
    r->stats = &gl->noroute;
    if (!r->rr) {
        buf_consume(&hc->in, (uint32_t)rc);
        req_local(r, 404, "no route matched", OUTCOME_CLIENT_ERROR);
        return;
    }
    const struct cfg_rule *cr = route_rule_cfg(r->rr);
    struct gen_rule *gr = &gl->rules[route_rule_index(r->rr)];
    if (cr->direct.status) {
        r->stats = &gr->direct;
        buf_consume(&hc->in, (uint32_t)rc);
        r->error = NULL;
        req_local(r, cr->direct.status, NULL, OUTCOME_OK);
        return;
    }
    r->backend = route_pick_backend(r->rr, (uint32_t)worker_rand(hc->w));
    int ci = r->backend >= 0 ? gen_cluster_index(hc->wg->gen, cr->backends[r->backend].cluster) : -1;
    if (ci < 0) {
        buf_consume(&hc->in, (uint32_t)rc);
        req_local(r, 503, "no backend available", OUTCOME_UNAVAILABLE);
        return;
    }
    r->stats = &gr->backends[r->backend];
    r->wc = &hc->wg->clusters[ci];

    /* Consistent hashing needs the attribute's value now, while the head
     * is still parsed. */
    const char *hattr = cr->hash_attr ? cr->hash_attr : r->wc->gc->cfg->hash_attr;
    uint64_t hash = 0;
    int have_hash = 0;
    if (r->wc->gc->cfg->lb == CFG_LB_HASH && hattr) {
        struct attr_key key;
        attr_val v[1];
        if (attr_key_init(&key, hattr, strlen(hattr)) == 0 && attr_get(&src, &key, v, 1) > 0) {
            hash = lb_hash_bytes(v[0].p, v[0].len);
            have_hash = 1;
        }
    }
    r->hash = hash;
    r->have_hash = have_hash;
    int hl = http_build_request_head(r, &req, &r->head_buf);
    buf_consume(&hc->in, (uint32_t)rc);
    if (hl < 0) {
        req_local(r, 431, "request header too large after rewriting", OUTCOME_CLIENT_ERROR);
        return;
    }
    r->head_len = (uint32_t)hl;

    /* Is the whole body already here? Then keep it for retries. */
    if (r->body.kind == H1_BODY_LENGTH)
        r->replay = buf_len(&hc->in) >= r->body.left;
    else if (r->body.kind == H1_BODY_NONE)
        r->replay = 1;
    else {
        struct h1_chunked probe = r->body.ch;
        int sc = h1_chunked_scan(&probe, buf_start(&hc->in), buf_len(&hc->in));
        r->replay = sc >= 0 && h1_chunked_done(&probe);
    }
    r->timer.cb = req_timeout;
    uint64_t tmo = cr->timeout_ms ? cr->timeout_ms : gl->cfg->request_timeout_ms;
    r->deadline_ms = loop_now(hc_loop(hc)) + tmo;
    req_attempt(r);
}

/* ---- local responses ----------------------------------------------------- */

/* The Connection header a response to r needs, if any. */
static int http_conn_header(const struct hreq *r)
{
    if (r->close_after)
        return HTTP_CONN_CLOSE;
    return r->http10 ? HTTP_CONN_KEEPALIVE : HTTP_CONN_NONE;
}

/* Answers the request from the proxy itself: a direct response (msg NULL)
 * or a refusal/error described by msg. */
static void req_local(struct hreq *r, int status, const char *msg, int outcome)
{
    struct hconn *hc = r->hc;
    const struct cfg_rule *cr = r->rr ? route_rule_cfg(r->rr) : NULL;
    if (r->uc) {
        uconn_close(r->uc);
        r->uc = NULL;
    }
    loop_timer_cancel(hc_loop(hc), &r->timer);
    r->state = HR_LOCAL;
    r->resp_status = status;
    r->outcome = outcome;
    r->error = msg;
    /* A body we did not read would be taken for the next request. */
    if (!r->body.done)
        r->close_after = 1;
    if (hc->w->draining)
        r->close_after = 1;
    int rc;
    if (!msg && cr && cr->direct.status) {
        const char *b = cr->direct.body ? cr->direct.body : "";
        rc = http_local_response(hc, status, cr->direct.content_type, b, strlen(b),
                                 http_conn_header(r), &cr->response_headers);
    } else {
        char body[256];
        int n = snprintf(body, sizeof(body), "%s\n", msg ? msg : h1_status_reason(status));
        if (n >= (int)sizeof(body))
            n = sizeof(body) - 1;
        rc = http_local_response(hc, status, "text/plain", body, (size_t)n, http_conn_header(r),
                                 NULL);
    }
    if (rc < 0)
        r->close_after = 1;
    r->resp_head_done = 1;
}

/* ---- attempts ------------------------------------------------------------ */

static void req_unpend(struct hreq *r)
{
    if (r->pending) {
        wlist_del(&r->pending_link);
        r->wc->npending--;
        atomic_fetch_sub_explicit(&r->wc->gc->pending, 1, memory_order_relaxed);
        r->pending = 0;
    }
}

/* Closes the books on the current attempt. */
static void attempt_end(struct hreq *r, int kind, int outcome)
{
    if (r->ep < 0)
        return;
    struct wcluster *wc = r->wc;
    struct worker *w = r->hc->w;
    uint64_t lat = loop_now_us() - r->t_attempt_us;
    lb_request_end(wc->lb, r->ep, kind, lat, loop_now(w->loop));
    wc->active--;
    atomic_fetch_sub_explicit(&wc->gc->active, 1, memory_order_relaxed);
    metrics_add(w->shard, wc->gc->m_endpoint[r->ep * OUTCOME_N + outcome], 1);
    uint32_t ej = lb_ejections_total(wc->lb);
    if (ej != wc->ejections_seen) {
        metrics_add(w->shard, wc->gc->m_ejections, ej - wc->ejections_seen);
        wc->ejections_seen = ej;
    }
    r->ep = -1;
}

static int retry_allowed(struct hreq *r, unsigned trigger)
{
    const struct cfg_retry *rt = &route_rule_cfg(r->rr)->retry;
    if (!(rt->on & trigger) || r->attempts > rt->attempts)
        return 0;
    struct wcluster *wc = r->wc;
    uint32_t budget = wc->active * rt->budget_percent / 100;
    if (budget < rt->min_retry_concurrency)
        budget = rt->min_retry_concurrency;
    if (!r->retrying && wc->retries_active >= budget)
        return 0;
    return 1;
}

/* Whether every byte of the request can still be sent again. */
static int req_replayable(const struct hreq *r) { return r->replay || r->body_bytes == 0; }

/* The attempt failed before a usable response: retry or answer locally.
 * kind is an LB_* outcome; fresh says the failure happened on a reused
 * keep-alive connection before any response byte (the classic race with the
 * server closing it), which is always worth one retry. */
static void attempt_failed(struct hreq *r, int kind, int fresh)
{
    static const int outc[] = {
        [LB_OK] = OUTCOME_OK, [LB_5XX] = OUTCOME_SERVER_ERROR,
        [LB_CONNECT_FAIL] = OUTCOME_UNAVAILABLE, [LB_RESET] = OUTCOME_RESET,
        [LB_TIMEOUT] = OUTCOME_TIMEOUT,
    };
    struct hconn *hc = r->hc;
    attempt_end(r, fresh ? LB_OK : kind, outc[kind]);
    if (r->uc) {
        uconn_close(r->uc);
        r->uc = NULL;
    }
    loop_timer_cancel(hc_loop(hc), &r->timer);
    if (req_replayable(r)) {
        if (fresh && !r->fresh_retry_used) {
            r->fresh_retry_used = 1;
            r->attempts--; /* not the route's retry to spend */
            req_attempt(r);
            return;
        }
        unsigned trig = 0;
        if (kind == LB_CONNECT_FAIL)
            trig = CFG_RETRY_CONNECT_FAILURE | CFG_RETRY_GATEWAY_ERROR;
        else if (kind == LB_RESET)
            trig = CFG_RETRY_RESET;
        else if (kind == LB_TIMEOUT)
            trig = CFG_RETRY_5XX | CFG_RETRY_GATEWAY_ERROR;
        if (retry_allowed(r, trig)) {
            if (!r->retrying) {
                r->retrying = 1;
                r->wc->retries_active++;
            }
            metrics_add(hc->w->shard, r->wc->gc->m_retries, 1);
            req_attempt(r);
            return;
        }
    }
    switch (kind) {
    case LB_CONNECT_FAIL:
        req_local(r, 503, "upstream connect error", OUTCOME_UNAVAILABLE);
        break;
    case LB_TIMEOUT:
        req_local(r, 504, "upstream request timeout", OUTCOME_TIMEOUT);
        break;
    default:
        req_local(r, 502, "upstream connection reset before response", OUTCOME_RESET);
        break;
    }
}

static void req_timeout(struct loop *l, struct loop_timer *t)
{
    struct hreq *r = t->ud;
    struct hconn *hc = r->hc;
    if (r->state == HR_CONNECTING && r->pending) {
        req_unpend(r);
        req_local(r, 504, "timed out waiting for an upstream connection", OUTCOME_TIMEOUT);
    } else if (!r->resp_head_done) {
        if (loop_now(l) >= r->deadline_ms) {
            /* The route's whole budget is spent: no retry. */
            attempt_end(r, LB_TIMEOUT, OUTCOME_TIMEOUT);
            req_local(r, 504, "upstream request timeout", OUTCOME_TIMEOUT);
        } else {
            attempt_failed(r, LB_TIMEOUT, 0);
        }
    }
    hc_kick(hc);
}

static void req_arm(struct hreq *r)
{
    const struct cfg_rule *cr = route_rule_cfg(r->rr);
    uint64_t when = r->deadline_ms;
    uint64_t now = loop_now(hc_loop(r->hc));
    if (cr->retry.per_try_timeout_ms && now + cr->retry.per_try_timeout_ms < when)
        when = now + cr->retry.per_try_timeout_ms;
    loop_timer_arm(hc_loop(r->hc), &r->timer, when);
}

static void overflow(struct hreq *r, const char *what)
{
    char msg[200];
    static __thread char keep[200];
    snprintf(msg, sizeof(msg), "upstream overflow: cluster %s reached %s", r->wc->gc->cfg->name,
             what);
    memcpy(keep, msg, sizeof(keep));
    metrics_add(r->hc->w->shard, r->wc->gc->m_overflow, 1);
    req_local(r, 503, keep, OUTCOME_UNAVAILABLE);
}

/* Closes one pooled connection of wc to make room for a new one. */
static int close_one_idle(struct wcluster *wc)
{
    for (size_t i = 0; i < wc->gc->cfg->nendpoints; i++)
        if (uconn_has_idle(wc, (int)i)) {
            struct wlink *l = wc->idle[i].prev; /* least recently used */
            uconn_close((struct uconn *)((char *)l - offsetof(struct uconn, idle_link)));
            return 1;
        }
    return 0;
}

static void exchange_start(struct hreq *r)
{
    r->state = HR_EXCHANGE;
    r->uc_readable = 0;
    r->head_sent = 0;
    if (r->replay)
        r->body_off = 0;
    r->resp_head_done = 0;
    memset(&r->resp, 0, sizeof(r->resp));
    req_update(r);
}

static void req_attempt(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct wcluster *wc = r->wc;
    uint64_t now = loop_now(hc_loop(hc));
    r->state = HR_CONNECTING;
    if (now >= r->deadline_ms) {
        req_local(r, 504, "upstream request timeout", OUTCOME_TIMEOUT);
        return;
    }
    if (atomic_load_explicit(&wc->gc->active, memory_order_relaxed) >= wc->gc->cfg->max_requests) {
        overflow(r, "maxRequests");
        return;
    }
    int ep = lb_pick(wc->lb, r->hash, r->have_hash, r->tried, now);
    if (ep < 0) {
        req_local(r, 503, "no healthy upstream endpoint", OUTCOME_UNAVAILABLE);
        return;
    }
    if (!uconn_has_idle(wc, ep) && !uconn_can_open(wc) && !close_one_idle(wc)) {
        if (atomic_load_explicit(&wc->gc->pending, memory_order_relaxed) >= wc->gc->cfg->max_pending) {
            overflow(r, "maxConnections and maxPendingRequests");
            return;
        }
        r->pending = 1;
        wc->npending++;
        atomic_fetch_add_explicit(&wc->gc->pending, 1, memory_order_relaxed);
        wlist_add_tail(&wc->pending, &r->pending_link);
        loop_timer_arm(hc_loop(hc), &r->timer, r->deadline_ms);
        return;
    }
    r->ep = ep;
    if (ep < 64)
        r->tried |= 1ull << ep;
    r->attempts++;
    lb_request_start(wc->lb, ep);
    wc->active++;
    atomic_fetch_add_explicit(&wc->gc->active, 1, memory_order_relaxed);
    r->t_attempt_us = loop_now_us();
    int ready = 0;
    struct uconn *uc = uconn_get(wc, ep, &req_uconn_ops, r, &ready);
    if (!uc) {
        attempt_failed(r, LB_CONNECT_FAIL, 0);
        return;
    }
    r->uc = uc;
    req_arm(r);
    if (ready)
        exchange_start(r);
}

/* A connection slot freed up in wc: let the oldest waiting request go. */
static void http_slot_freed(struct wcluster *wc)
{
    /* Starting a request may free another slot (closing an idle
     * connection): one request per outermost call is enough. */
    static __thread int busy;
    if (busy || wlist_empty(&wc->pending))
        return;
    int idle = 0;
    for (size_t i = 0; i < wc->gc->cfg->nendpoints && !idle; i++)
        idle = uconn_has_idle(wc, (int)i);
    if (!idle && !uconn_can_open(wc))
        return;
    busy = 1;
    struct hreq *r = (struct hreq *)((char *)wc->pending.next - offsetof(struct hreq, pending_link));
    struct hconn *hc = r->hc; /* r may be gone by the end */
    req_unpend(r);
    loop_timer_cancel(hc_loop(hc), &r->timer);
    req_attempt(r);
    busy = 0;
    hc_kick(hc);
}

static void req_connected(void *owner, struct uconn *uc, int err)
{
    struct hreq *r = owner;
    struct hconn *hc = r->hc; /* r may be gone by the end */
    if (err) {
        r->uc = NULL; /* already closed by the pool */
        attempt_failed(r, LB_CONNECT_FAIL, 0);
    } else {
        exchange_start(r);
    }
    hc_kick(hc);
}

static void req_uc_io(void *owner, struct uconn *uc, unsigned events)
{
    struct hreq *r = owner;
    struct hconn *hc = r->hc;
    if (events & LOOP_READ)
        r->uc_readable = 1;
    req_update(r);
    hc_kick(hc);
}

static const struct uconn_ops req_uconn_ops = {req_connected, req_uc_io};

/* ---- body framing -------------------------------------------------------- */

/* How many of the avail bytes at src belong to the body and may be
 * forwarded now; -1 on malformed chunked framing. */
static ssize_t body_forwardable(struct hbody *b, const char *src, size_t avail)
{
    switch (b->kind) {
    case H1_BODY_NONE:
        return 0;
    case H1_BODY_LENGTH:
        return (ssize_t)(avail < b->left ? avail : b->left);
    case H1_BODY_UNTIL_CLOSE:
        return (ssize_t)avail;
    case H1_BODY_CHUNKED:
        if (!h1_chunked_done(&b->ch) && avail > b->scanned) {
            int n = h1_chunked_scan(&b->ch, src + b->scanned, avail - b->scanned);
            if (n < 0)
                return -1;
            b->scanned += (uint32_t)n;
        }
        return b->scanned;
    }
    return 0;
}

static void body_advance(struct hbody *b, size_t n)
{
    if (b->kind == H1_BODY_LENGTH) {
        b->left -= n;
        b->done = b->left == 0;
    } else if (b->kind == H1_BODY_CHUNKED) {
        b->scanned -= (uint32_t)n;
        b->done = h1_chunked_done(&b->ch) && b->scanned == 0;
    }
}

/* ---- the exchange -------------------------------------------------------- */

enum { IO_DONE, IO_BLOCKED, IO_IDLE, IO_ERROR };

/* Sends what can be sent of the request. */
static int req_send(struct hreq *r)
{
    struct hconn *hc = r->hc;
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        if (r->head_sent < r->head_len)
            iov[n++] = (struct iovec){r->head_buf.data + r->head_sent, r->head_len - r->head_sent};
        size_t skip = r->replay ? r->body_off : 0;
        ssize_t bl = 0;
        if (!r->body.done) {
            bl = body_forwardable(&r->body, buf_start(&hc->in) + skip,
                                  buf_len(&hc->in) > skip ? buf_len(&hc->in) - skip : 0);
            if (bl < 0)
                return IO_ERROR;
            if (bl > 0)
                iov[n++] = (struct iovec){buf_start(&hc->in) + skip, (size_t)bl};
        }
        if (n == 0)
            return r->body.done ? IO_DONE : IO_IDLE;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(r->uc->io.fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN)
                return IO_BLOCKED;
            if (errno == EINTR)
                continue;
            return IO_ERROR + 1; /* upstream reset */
        }
        size_t left = (size_t)w;
        size_t h = r->head_len - r->head_sent;
        if (h > left)
            h = left;
        r->head_sent += (uint32_t)h;
        left -= h;
        if (left > 0) {
            body_advance(&r->body, left);
            r->body_bytes += left;
            if (r->replay)
                r->body_off += (uint32_t)left;
            else
                buf_consume(&hc->in, (uint32_t)left);
        }
    }
}

/* Writes hc->out and then response body bytes from the upstream buffer. */
static int resp_send(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct uconn *uc = r->uc;
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        if (buf_len(&hc->out) > 0)
            iov[n++] = (struct iovec){buf_start(&hc->out), buf_len(&hc->out)};
        ssize_t bl = 0;
        if (uc && r->resp_head_done && !r->resp.done && buf_len(&uc->in) > 0) {
            bl = body_forwardable(&r->resp, buf_start(&uc->in), buf_len(&uc->in));
            if (bl < 0)
                return IO_ERROR;
            if (bl > 0)
                iov[n++] = (struct iovec){buf_start(&uc->in), (size_t)bl};
        }
        if (n == 0)
            return IO_IDLE;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(hc->io.fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN)
                return IO_BLOCKED;
            if (errno == EINTR)
                continue;
            return IO_ERROR + 1;
        }
        metrics_add(hc->w->shard, hc->gl->m_bytes_out, (uint64_t)w);
        r->resp_bytes += (uint64_t)w;
        size_t left = (size_t)w;
        size_t h = buf_len(&hc->out);
        if (h > left)
            h = left;
        buf_consume(&hc->out, (uint32_t)h);
        left -= h;
        if (left > 0) {
            body_advance(&r->resp, left);
            buf_consume(&uc->in, (uint32_t)left);
        }
    }
}

static void req_to_tunnel(struct hreq *r);

/* Parses the response head in uc->in. Returns 1 when the exchange may go on,
 * 0 when it needs more bytes, -1 when the request was handed elsewhere
 * (retry, local answer, tunnel). */
static int resp_head(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct uconn *uc = r->uc;
    struct h1_header headers[HTTP_MAX_HEADERS_CAP];
    for (;;) {
        struct h1_response resp;
        memset(&resp, 0, sizeof(resp));
        resp.headers = headers;
        int rc = h1_parse_response(buf_start(&uc->in), buf_len(&uc->in), &resp,
                                   HTTP_MAX_HEADERS_CAP, buf_block_size(), r->head_only);
        if (rc == H1_INCOMPLETE) {
            if (buf_full(&uc->in)) {
                attempt_end(r, LB_5XX, OUTCOME_SERVER_ERROR);
                req_local(r, 502, "upstream response header too large", OUTCOME_SERVER_ERROR);
                return -1;
            }
            return 0;
        }
        if (rc < 0) {
            attempt_end(r, LB_5XX, OUTCOME_SERVER_ERROR);
            req_local(r, 502, "upstream sent a malformed response", OUTCOME_SERVER_ERROR);
            return -1;
        }
        if (resp.status == 101) {
            if (!r->upgrade) {
                attempt_end(r, LB_5XX, OUTCOME_SERVER_ERROR);
                req_local(r, 502, "upstream switched protocols unasked", OUTCOME_SERVER_ERROR);
                return -1;
            }
            r->resp_status = 101;
            if (http_build_response_head(r, &resp) < 0) {
                req_local(r, 502, "upstream response header too large", OUTCOME_SERVER_ERROR);
                return -1;
            }
            buf_consume(&uc->in, (uint32_t)rc);
            attempt_end(r, LB_OK, OUTCOME_OK);
            req_to_tunnel(r);
            return -1;
        }
        if (resp.status < 200) {
            /* Interim responses (100 Continue, 103) pass through as is. */
            if (buf_append(&hc->out, buf_start(&uc->in), (size_t)rc) < 0)
                return 0;
            buf_consume(&uc->in, (uint32_t)rc);
            continue;
        }
        const struct cfg_rule *cr = route_rule_cfg(r->rr);
        unsigned trig = 0;
        if (resp.status >= 500)
            trig |= CFG_RETRY_5XX;
        if (resp.status == 502 || resp.status == 503 || resp.status == 504)
            trig |= CFG_RETRY_GATEWAY_ERROR;
        if (trig && req_replayable(r) && r->body.done && retry_allowed(r, trig)) {
            attempt_end(r, LB_5XX, OUTCOME_SERVER_ERROR);
            uconn_close(uc);
            r->uc = NULL;
            loop_timer_cancel(hc_loop(hc), &r->timer);
            if (!r->retrying) {
                r->retrying = 1;
                r->wc->retries_active++;
            }
            metrics_add(hc->w->shard, r->wc->gc->m_retries, 1);
            req_attempt(r);
            return -1;
        }
        (void)cr;
        r->resp_status = resp.status;
        r->resp.kind = resp.body;
        r->resp.left = resp.content_length;
        r->resp.done = resp.body == H1_BODY_NONE ||
                       (resp.body == H1_BODY_LENGTH && resp.content_length == 0);
        r->resp_until_close = resp.body == H1_BODY_UNTIL_CLOSE;
        /* The upstream closing its side is its own business; the client's
         * connection only has to close when the body has no framing. */
        if (r->resp_until_close || !r->body.done || hc->w->draining)
            r->close_after = 1;
        r->upstream_close = !(resp.flags & H1_F_KEEPALIVE) || r->resp_until_close;
        if (http_build_response_head(r, &resp) < 0) {
            attempt_end(r, LB_5XX, OUTCOME_SERVER_ERROR);
            req_local(r, 502, "upstream response header too large", OUTCOME_SERVER_ERROR);
            return -1;
        }
        buf_consume(&uc->in, (uint32_t)rc);
        r->resp_head_done = 1;
        loop_timer_cancel(hc_loop(hc), &r->timer);
        attempt_end(r, resp.status >= 500 ? LB_5XX : LB_OK,
                    resp.status >= 500 ? OUTCOME_SERVER_ERROR
                                       : resp.status >= 400 ? OUTCOME_CLIENT_ERROR : OUTCOME_OK);
        r->outcome = resp.status >= 500 ? OUTCOME_SERVER_ERROR
                     : resp.status >= 400 ? OUTCOME_CLIENT_ERROR : OUTCOME_OK;
        /* The replayed body is no longer needed. */
        if (r->replay && r->body_off) {
            buf_consume(&hc->in, r->body_off);
            r->body_off = 0;
            r->replay = 0;
        }
        return 1;
    }
}

/* Drives the request: moves bytes both ways and sets both sockets'
 * interest. Every event of the request ends up here. */
static void req_update(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct loop *l = hc_loop(hc);
    if (r->state == HR_LOCAL) {
        if (hc_flush(hc) < 0) {
            hc_close(hc);
            return;
        }
        if (buf_len(&hc->out) == 0) {
            req_finish(r);
            return;
        }
        loop_io_set(l, &hc->io, LOOP_WRITE);
        return;
    }
    if (r->state == HR_CONNECTING) {
        /* Nothing to move; only notice a client that goes away. */
        loop_io_set(l, &hc->io, buf_has_room(&hc->in) && !hc->read_eof ? LOOP_READ : 0);
        return;
    }
    struct uconn *uc = r->uc;
    unsigned ucmask = 0, hcmask = 0;

    int s = req_send(r);
    if (s == IO_ERROR) {
        req_local(r, 400, "malformed chunked request body", OUTCOME_CLIENT_ERROR);
        r->close_after = 1;
        req_update(r);
        return;
    }
    if (s > IO_ERROR) {
        /* The upstream refused more of the request; its response, if any,
         * may still be readable, so only fail when nothing came back. */
        if (!r->resp_head_done && buf_len(&uc->in) == 0) {
            attempt_failed(r, LB_RESET, uc->reused && r->head_sent == 0);
            return;
        }
    }
    if (s == IO_BLOCKED)
        ucmask |= LOOP_WRITE;
    /* Keep reading the client while there is room: the rest of the body,
     * the next pipelined request, or its going away. Leaving the interest
     * unchanged also saves epoll_ctl calls. */
    if (!hc->read_eof && buf_has_room(&hc->in))
        hcmask |= LOOP_READ;

    for (;;) {
        if (!r->resp_head_done) {
            int h = resp_head(r);
            if (h < 0)
                return;
            if (h == 0) {
                /* Interim responses (100 Continue) must reach the client
                 * now: it may be waiting for one before sending its body. */
                if (buf_len(&hc->out) > 0) {
                    int o = resp_send(r);
                    if (o >= IO_ERROR) {
                        hc_close(hc);
                        return;
                    }
                    if (o == IO_BLOCKED)
                        hcmask |= LOOP_WRITE;
                }
                goto need_upstream;
            }
        }
        int o = resp_send(r);
        if (o >= IO_ERROR) {
            if (o == IO_ERROR) {
                attempt_end(r, LB_5XX, OUTCOME_SERVER_ERROR);
                r->outcome = OUTCOME_SERVER_ERROR;
            }
            hc_close(hc);
            return;
        }
        if (o == IO_BLOCKED) {
            hcmask |= LOOP_WRITE;
            break; /* the client is slow: stop reading the upstream */
        }
        if (r->resp.done && buf_len(&hc->out) == 0) {
            req_finish(r);
            return;
        }
    need_upstream:;
        /* Read only when epoll said so: trying right after sending the
         * request would almost always cost a read() that finds nothing. */
        if (!r->uc_readable) {
            ucmask |= LOOP_READ;
            break;
        }
        uint32_t room = buf_has_room(&uc->in) ? (uc->in.data ? buf_space(&uc->in) : buf_block_size()) : 0;
        ssize_t n = buf_read_fd(&uc->in, uc->io.fd);
        if (n > 0) {
            /* A short read drained the socket; a full one may have left
             * more, which level-triggered epoll would report anyway. */
            if ((uint32_t)n < room)
                r->uc_readable = 0;
            continue;
        }
        r->uc_readable = 0;
        if (n == 0) {
            if (!r->resp_head_done) {
                if (buf_len(&uc->in) == 0) {
                    attempt_failed(r, LB_RESET, uc->reused && r->body_bytes == 0);
                    return;
                }
                attempt_end(r, LB_RESET, OUTCOME_RESET);
                req_local(r, 502, "upstream closed mid-response header", OUTCOME_RESET);
                req_update(r);
                return;
            }
            if (r->resp_until_close) {
                r->resp.done = 1;
                r->upstream_close = 1;
                if (buf_len(&uc->in) > 0)
                    continue;
                if (buf_len(&hc->out) == 0) {
                    req_finish(r);
                    return;
                }
                hcmask |= LOOP_WRITE;
                break;
            }
            /* Truncated body: the client can only learn it from a close. */
            r->outcome = OUTCOME_RESET;
            hc_close(hc);
            return;
        }
        if (n == -2) {
            break; /* upstream buffer full, waiting for the client */
        }
        if (errno == EAGAIN) {
            ucmask |= LOOP_READ;
            break;
        }
        if (!r->resp_head_done && buf_len(&uc->in) == 0) {
            attempt_failed(r, LB_RESET, uc->reused && r->body_bytes == 0);
            return;
        }
        r->outcome = OUTCOME_RESET;
        hc_close(hc);
        return;
    }
    loop_io_set(l, &uc->io, ucmask);
    loop_io_set(l, &hc->io, hcmask);
}

/* ---- the end of a request ------------------------------------------------ */

static void req_log(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct worker *w = hc->w;
    uint64_t dur = loop_now_us() - r->t_start_us;
    int status = r->resp_status;
    if (status >= 100 && status < 600)
        metrics_add(w->shard, r->stats->code[status / 100], 1);
    metrics_observe(w->shard, r->stats->duration, dur);
    if (!w->alog)
        return;
    struct alog_rec rec = {0};
    rec.start_ms = unix_ms();
    rec.duration_us = dur;
    rec.protocol = ALOG_HTTP;
    rec.listener = alog_cstr(hc->gl->cfg->name);
    if (r->rr)
        rec.route = alog_cstr(hc->gl->rules[route_rule_index(r->rr)].name);
    if (r->wc)
        rec.cluster = alog_cstr(r->wc->gc->cfg->name);
    rec.source = alog_cstr(hc->peer_ip);
    rec.method = alog_cstr(r->method);
    rec.authority = alog_cstr(r->authority);
    rec.path = alog_cstr(r->path);
    rec.status = status;
    rec.outcome = outcome_alog[r->outcome];
    rec.bytes_in = r->body_bytes;
    rec.bytes_out = r->resp_bytes;
    rec.request_id = alog_cstr(r->request_id);
    rec.user_agent = alog_cstr(r->user_agent);
    rec.reason = alog_cstr(r->error);
    rec.retries = r->attempts > 1 ? r->attempts - 1 : 0;
    alog_write(w->alog, &rec);
}

/* Ends the request, successful or not, and readies the connection for the
 * next one (or for closing). Frees r. */
static void req_finish(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct worker *w = hc->w;
    req_log(r);
    req_unpend(r);
    loop_timer_cancel(w->loop, &r->timer);
    if (r->ep >= 0)
        attempt_end(r, LB_RESET, OUTCOME_RESET);
    if (r->retrying)
        r->wc->retries_active--;
    if (r->uc) {
        int reuse = r->resp.done && r->body.done && !r->upstream_close;
        uconn_release(r->uc, reuse);
        r->uc = NULL;
    }
    if (r->replay && r->body_off)
        buf_consume(&hc->in, r->body_off);
    int close_after = r->close_after || !r->body.done || w->draining;
    hc->req = NULL;
    wgen_release(hc->wg);
    /* Deferred: callers up the stack may still compare against r. */
    loop_defer_free(w->loop, req_free_cb, r);
    if (hc->closed)
        return;
    hc->state = close_after ? HC_CLOSING : HC_HEAD;
    hc_arm(hc);
}

/* After any event: flush local answers, parse pipelined requests and set
 * the interest. Every entry point of this file ends here, so a request that
 * turned into a local answer deep inside some callback still gets written. */
static void hc_kick(struct hconn *hc)
{
    while (!hc->closed) {
        if (hc->req) {
            if (hc->req->state != HR_LOCAL)
                return; /* the exchange keeps its own interest current */
            req_update(hc->req);
            if (hc->req)
                return; /* still writing */
            continue;
        }
        if (hc->state != HC_HEAD || buf_len(&hc->in) == 0)
            break;
        uint32_t before = buf_len(&hc->in);
        hc_process_head(hc);
        if (!hc->req && buf_len(&hc->in) == before)
            break; /* incomplete head */
    }
    if (!hc->closed && !hc->req)
        hc_update(hc);
}

/* ---- websocket --------------------------------------------------------- */

static void req_to_tunnel(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct uconn *uc = r->uc;
    struct worker *w = hc->w;
    /* The tunnel takes both sockets and whatever each side already sent:
     * toward the client our 101 head then the upstream's first bytes. */
    int ok = buf_len(&uc->in) == 0 ||
             buf_append(&hc->out, buf_start(&uc->in), buf_len(&uc->in)) == 0;
    buf_free(&uc->in);
    r->uc = NULL;
    r->resp.done = 1;
    r->body.done = 1;
    r->upstream_close = 1;
    int cfd = hc->io.fd;
    loop_io_del(w->loop, &hc->io);
    hc->io.fd = -1;
    if (!ok) {
        uconn_close(uc);
        close(cfd);
    } else {
        tunnel_new(w, hc->gl, cfd, &hc->out, &hc->in, uc, hc->gl->cfg->idle_timeout_ms, NULL,
                   NULL);
    }
    req_finish(r);
    hc_close(hc);
}
