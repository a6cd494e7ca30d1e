/* http_exchange.c - the HTTP/1.1 proxy, upstream side: attempts (endpoint
 * choice, limits, retries, timeouts), local answers, and the exchange that
 * streams the request up and the response back with bounded buffers.
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

#include "core/net.h"
#include "proxy/h2_int.h"
#include "proxy/http_int.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/upstream.h"
#include "router/router.h"

static const struct uconn_ops req_uconn_ops;

/* ---- local responses ----------------------------------------------------- */

/* The Connection header a response to r needs, if any. */
static int http_conn_header(const struct hreq *r)
{
    if (r->close_after)
        return HTTP_CONN_CLOSE;
    return r->http10 ? HTTP_CONN_KEEPALIVE : HTTP_CONN_NONE;
}

/* The state every local answer starts from: the upstream side dropped. */
static void local_begin(struct hreq *r, int status, const char *msg, int outcome)
{
    struct hconn *hc = r->hc;
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
}

/* Answers the request from the proxy itself: a direct response (msg NULL)
 * or a refusal/error described by msg. */
void req_local(struct hreq *r, int status, const char *msg, int outcome)
{
    struct hconn *hc = r->hc;
    const struct cfg_rule *cr = r->rr ? route_rule_cfg(r->rr) : NULL;
    local_begin(r, status, msg, outcome);
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
        /* A RateLimit says when to come back (RFC 9110 Retry-After). */
        char ra[16], raname[] = "retry-after";
        struct cfg_header h = {raname, ra};
        struct cfg_header_ops ops = {.set = &h, .nset = 1};
        int retry = status == 429 && r->retry_after;
        if (retry)
            snprintf(ra, sizeof(ra), "%u", r->retry_after);
        rc = http_local_response(hc, status, "text/plain", body, (size_t)n, http_conn_header(r),
                                 retry ? &ops : NULL);
    }
    if (rc < 0)
        r->close_after = 1;
    r->resp_head_done = 1;
}

void req_local_body(struct hreq *r, int status, const char *ctype, const char *body, size_t len,
                    const struct cfg_header_ops *ops, const char *msg, int outcome)
{
    local_begin(r, status, msg, outcome);
    if (http_local_response(r->hc, status, ctype, body, len, http_conn_header(r), ops) < 0)
        r->close_after = 1;
    r->resp_head_done = 1;
}

/* ---- attempts ------------------------------------------------------------ */

void req_unpend(struct hreq *r)
{
    if (r->pending) {
        wlist_del(&r->pending_link);
        r->wc->npending--;
        atomic_fetch_sub_explicit(&r->wc->gc->lim->pending, 1, memory_order_relaxed);
        r->pending = 0;
    }
}

void http_attempt_books(struct worker *w, struct wcluster *wc, int ep, uint64_t t_attempt_us,
                        int kind, int outcome, int release)
{
    uint64_t lat = loop_now_us() - t_attempt_us;
    lb_request_end(wc->lb, ep, kind, lat, loop_now(w->loop));
    if (release)
        http_active_release(wc);
    metrics_add(w->shard, wc->gc->m_endpoint[ep * OUTCOME_N + outcome], 1);
    uint32_t ej = lb_ejections_total(wc->lb);
    if (ej != wc->ejections_seen) {
        metrics_add(w->shard, wc->gc->m_ejections, ej - wc->ejections_seen);
        wc->ejections_seen = ej;
    }
}

/* Closes the books on the current attempt. */
void attempt_end(struct hreq *r, int kind, int outcome)
{
    if (r->ep < 0)
        return;
    http_attempt_books(r->hc->w, r->wc, r->ep, r->t_attempt_us, kind, outcome, 1);
    r->ep = -1;
}

void http_active_release(struct wcluster *wc)
{
    wc->active--;
    atomic_fetch_sub_explicit(&wc->gc->lim->active, 1, memory_order_relaxed);
}

int http_retry_allowed(const struct cfg_retry *rt, const struct wcluster *wc, uint32_t attempts,
                       int retrying, unsigned trigger)
{
    if (!(rt->on & trigger) || attempts > rt->attempts)
        return 0;
    uint32_t budget = wc->active * rt->budget_percent / 100;
    if (budget < rt->min_retry_concurrency)
        budget = rt->min_retry_concurrency;
    if (!retrying && wc->retries_active >= budget)
        return 0;
    return 1;
}

static int retry_allowed(struct hreq *r, unsigned trigger)
{
    return http_retry_allowed(&route_rule_cfg(r->rr)->retry, r->wc, r->attempts, r->retrying,
                              trigger);
}

int http_failure_outcome(int kind)
{
    static const int outc[] = {
        [LB_OK] = OUTCOME_OK, [LB_5XX] = OUTCOME_SERVER_ERROR,
        [LB_CONNECT_FAIL] = OUTCOME_UNAVAILABLE, [LB_RESET] = OUTCOME_RESET,
        [LB_TIMEOUT] = OUTCOME_TIMEOUT,
    };
    return outc[kind];
}

unsigned http_failure_trigger(int kind)
{
    if (kind == LB_CONNECT_FAIL)
        return CFG_RETRY_CONNECT_FAILURE | CFG_RETRY_GATEWAY_ERROR;
    if (kind == LB_RESET)
        return CFG_RETRY_RESET;
    if (kind == LB_TIMEOUT)
        return CFG_RETRY_5XX | CFG_RETRY_GATEWAY_ERROR;
    return 0;
}

void http_failure_answer(int kind, int *status, const char **msg)
{
    switch (kind) {
    case LB_CONNECT_FAIL:
        *status = 503;
        *msg = "upstream connect error";
        break;
    case LB_TIMEOUT:
        *status = 504;
        *msg = "upstream request timeout";
        break;
    default:
        *status = 502;
        *msg = "upstream connection reset before response";
        break;
    }
}

/* Starts the next attempt as a retry (counted against the budget). */
static void retry_start(struct hreq *r)
{
    if (!r->retrying) {
        r->retrying = 1;
        r->wc->retries_active++;
    }
    metrics_add(r->hc->w->shard, r->wc->gc->m_retries, 1);
    req_attempt(r);
}

/* Whether every byte of the request can still be sent again. */
static int req_replayable(const struct hreq *r) { return r->replay || r->body_bytes == 0; }

/* The attempt failed before a usable response: retry or answer locally.
 * kind is an LB_* outcome; fresh says the failure happened on a reused
 * keep-alive connection before any response byte (the classic race with the
 * server closing it), which is always worth one retry. */
static void attempt_failed(struct hreq *r, int kind, int fresh)
{
    struct hconn *hc = r->hc;
    attempt_end(r, fresh ? LB_OK : kind, http_failure_outcome(kind));
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
        if (retry_allowed(r, http_failure_trigger(kind))) {
            retry_start(r);
            return;
        }
    }
    int status;
    const char *msg;
    http_failure_answer(kind, &status, &msg);
    req_local(r, status, msg, http_failure_outcome(kind));
}

void req_timeout(struct loop *l, struct loop_timer *t)
{
    struct hreq *r = t->ud;
    struct hconn *hc = r->hc;
    if (r->state == HR_FILTER) {
        req_local(r, 504, "timed out waiting for a wasm filter to continue", OUTCOME_TIMEOUT);
    } else if (r->state == HR_CONNECTING && r->pending) {
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
    /* Kept in the request: the access log reads it when the request ends. */
    snprintf(r->errbuf, sizeof(r->errbuf), "upstream overflow: cluster %s reached %s",
             r->wc->gc->cfg->name, what);
    metrics_add(r->hc->w->shard, r->wc->gc->m_overflow, 1);
    req_local(r, 503, r->errbuf, OUTCOME_UNAVAILABLE);
}

int http_close_one_idle(struct wcluster *wc)
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
    r->wf_req_fwd = 0;
    if (r->replay) {
        /* The body goes again from its start: its framing state as at the
         * head. A trailer section the filters saw already is kept and sent
         * again (req_send), not taken and filtered a second time. */
        char *trl = r->body.trl;
        uint32_t trl_len = r->body.trl_len;
        r->body = r->body0;
        r->body.trl = trl;
        r->body.trl_len = trl_len;
        r->body_off = 0;
        r->trl_skipped = 0;
    }
    r->resp_head_done = 0;
    free(r->resp.trl);
    memset(&r->resp, 0, sizeof(r->resp));
    req_update(r);
}

void req_attempt(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct wcluster *wc = r->wc;
    uint64_t now = loop_now(hc_loop(hc));
    r->state = HR_CONNECTING;
    if (now >= r->deadline_ms) {
        req_local(r, 504, "upstream request timeout", OUTCOME_TIMEOUT);
        return;
    }
    if (atomic_load_explicit(&wc->gc->lim->active, memory_order_relaxed) >= wc->gc->cfg->max_requests) {
        overflow(r, "maxRequests");
        return;
    }
    int ep = lb_pick(wc->lb, r->hash, r->have_hash, r->tried, now);
    if (ep < 0) {
        req_local(r, 503, "no healthy upstream endpoint", OUTCOME_UNAVAILABLE);
        return;
    }
    if (!uconn_has_idle(wc, ep) && !uconn_can_open(wc) && !http_close_one_idle(wc)) {
        if (atomic_load_explicit(&wc->gc->lim->pending, memory_order_relaxed) >= wc->gc->cfg->max_pending) {
            overflow(r, "maxConnections and maxPendingRequests");
            return;
        }
        r->pending = 1;
        wc->npending++;
        atomic_fetch_add_explicit(&wc->gc->lim->pending, 1, memory_order_relaxed);
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
    atomic_fetch_add_explicit(&wc->gc->lim->active, 1, memory_order_relaxed);
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
void http_slot_freed(struct wcluster *wc)
{
    /* Starting a request may free another slot (closing an idle
     * connection): one request per outermost call is enough. */
    static __thread int busy;
    if (busy || h2s_slot_freed(wc) || wlist_empty(&wc->pending))
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
    /* A download the client reads as fast as it comes never wakes the
     * client side, so upstream progress must keep the connection alive. */
    hc_arm(hc);
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
        b->done = h1_chunked_done(&b->ch) && b->scanned == 0 && b->trl_sent == b->trl_len;
    }
}

/* ---- chunked trailers ----------------------------------------------------- */

/* The trailer section as this proxy writes it: the fields a proxy may
 * pass, then the empty line, into b->trl. 0 or -1 (out of memory). */
static int trailers_build(struct hbody *b, const struct h1_header *hs, size_t n)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += hs[i].name.len + hs[i].value.len + 4;
    char *p = malloc(len);
    if (!p)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!h1_trailer_forwardable(hs[i].name, hs[i].value))
            continue;
        memcpy(p + o, hs[i].name.p, hs[i].name.len);
        o += hs[i].name.len;
        memcpy(p + o, ": ", 2);
        memcpy(p + o + 2, hs[i].value.p, hs[i].value.len);
        o += 2 + hs[i].value.len;
        memcpy(p + o, "\r\n", 2);
        o += 2;
    }
    memcpy(p + o, "\r\n", 2);
    b->trl = p;
    b->trl_len = (uint32_t)(o + 2);
    b->trl_sent = 0;
    return 0;
}

enum { TRL_WAIT = 0, TRL_BAD = -1, TRL_ENDED = -2 };

/* b stopped at its trailer section, whose bytes start at src (avail of
 * them, in a buffer that is full when full is set): parses it whole, runs
 * the filters, builds what goes out. Returns the raw section's length
 * (the caller consumes it), TRL_WAIT while it is incomplete, TRL_BAD when
 * it is malformed or cannot fit, TRL_ENDED when a filter ended r. */
static int trailers_take(struct hreq *r, struct hbody *b, int resp, const char *src,
                         size_t avail, int full)
{
    struct h1_header hv[HTTP_MAX_HEADERS_CAP];
    const struct h1_header *hs = hv;
    size_t n = 0;
    int t = h1_chunked_trailers(&b->ch, src, avail, hv, HTTP_MAX_HEADERS_CAP, &n);
    if (t == H1_INCOMPLETE)
        return full ? TRL_BAD : TRL_WAIT;
    if (t < 0)
        return TRL_BAD;
    if (r->wf && http_wf_trailers(r, resp, &hs, &n) < 0)
        return TRL_ENDED;
    return trailers_build(b, hs, n) < 0 ? TRL_BAD : t;
}

/* The held section of b still to write, as iov[*n] (none when it is not
 * built yet or is out). */
static void trailers_iov(const struct hbody *b, struct iovec *iov, int *n)
{
    if (b->trl && b->trl_sent < b->trl_len)
        iov[(*n)++] = (struct iovec){b->trl + b->trl_sent, b->trl_len - b->trl_sent};
}

/* w bytes of b's held section were written. */
static void trailers_sent(struct hbody *b, size_t w)
{
    b->trl_sent += (uint32_t)w;
    b->done = b->trl_sent == b->trl_len;
}

/* ---- the exchange -------------------------------------------------------- */

enum { IO_LOCAL = -1, IO_DONE, IO_BLOCKED, IO_IDLE, IO_ERROR };

/* The filters see the n request body bytes at p just sent, unless an
 * earlier attempt showed them already (a retry sends them again). */
static int req_body_shown(struct hreq *r, const char *p, size_t n)
{
    uint64_t off = r->wf_req_fwd;
    r->wf_req_fwd += n;
    if (off + n <= r->wf_req_shown)
        return 0;
    size_t skip = r->wf_req_shown > off ? (size_t)(r->wf_req_shown - off) : 0;
    r->wf_req_shown = off + n;
    return http_wf_body(r, 0, p + skip, n - skip, r->body.done);
}

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
            size_t avail = buf_len(&hc->in) > skip ? buf_len(&hc->in) - skip : 0;
            bl = body_forwardable(&r->body, buf_start(&hc->in) + skip, avail);
            if (bl < 0)
                return IO_ERROR;
            if (bl > 0) {
                iov[n++] = (struct iovec){buf_start(&hc->in) + skip, (size_t)bl};
            } else if (r->body.kind == H1_BODY_CHUNKED && h1_chunked_at_trailers(&r->body.ch)) {
                /* the body is out up to its trailer section: that goes
                 * next, rewritten (held in r->body.trl) */
                if (r->body.trl && r->replay && !r->trl_skipped) {
                    /* a retry: the section held (and filtered) by the
                     * first attempt goes again as it is; its bytes are
                     * passed over */
                    r->body_off += r->trl_raw;
                    r->trl_skipped = 1;
                } else if (!r->body.trl && r->head_sent == r->head_len) {
                    int t = trailers_take(r, &r->body, 0, buf_start(&hc->in) + skip, avail,
                                          buf_full(&hc->in));
                    if (t == TRL_BAD)
                        return IO_ERROR;
                    if (t == TRL_ENDED)
                        return IO_LOCAL;
                    if (t > 0 && r->replay) {
                        r->body_off += (uint32_t)t;
                        r->trl_raw = (uint32_t)t;
                        r->trl_skipped = 1;
                    } else if (t > 0) {
                        buf_consume(&hc->in, (uint32_t)t);
                    }
                }
                trailers_iov(&r->body, iov, &n);
            }
        }
        if (n == 0)
            return r->body.done ? IO_DONE : IO_IDLE;
        ssize_t w = sio_writev(&r->uc->sio, iov, n);
        if (w < 0) {
            if (errno == EAGAIN)
                return IO_BLOCKED;
            return IO_ERROR + 1; /* upstream reset */
        }
        size_t left = (size_t)w;
        size_t h = r->head_len - r->head_sent;
        if (h > left)
            h = left;
        r->head_sent += (uint32_t)h;
        left -= h;
        if (left > 0 && bl == 0) {
            trailers_sent(&r->body, left); /* the held section goes alone */
        } else if (left > 0) {
            body_advance(&r->body, left);
            r->body_bytes += left;
            if (r->wf && req_body_shown(r, buf_start(&hc->in) + skip, left) < 0)
                return IO_LOCAL;
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
            else if (r->resp.kind == H1_BODY_CHUNKED && !r->resp.trl &&
                     h1_chunked_at_trailers(&r->resp.ch)) {
                int t = trailers_take(r, &r->resp, 1, buf_start(&uc->in), buf_len(&uc->in),
                                      buf_full(&uc->in));
                if (t == TRL_BAD)
                    return IO_ERROR;
                if (t == TRL_ENDED)
                    return IO_ERROR + 1;
                if (t > 0)
                    buf_consume(&uc->in, (uint32_t)t);
            }
        }
        if (uc && r->resp_head_done && bl == 0)
            trailers_iov(&r->resp, iov, &n);
        if (n == 0)
            return IO_IDLE;
        ssize_t w = sio_writev(&hc->sio, iov, n);
        if (w < 0) {
            if (errno == EAGAIN)
                return IO_BLOCKED;
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
        if (left > 0 && bl == 0) {
            trailers_sent(&r->resp, left);
        } else if (left > 0) {
            body_advance(&r->resp, left);
            if (r->wf && http_wf_body(r, 1, buf_start(&uc->in), left, r->resp.done) < 0)
                return IO_ERROR + 1;
            buf_consume(&uc->in, (uint32_t)left);
        }
    }
}


/* Parses the response head in uc->in. Returns 1 when the exchange may go on,
 * 0 when it needs more bytes, -1 when the request was handed elsewhere
 * (retry, local answer, tunnel). */
static int resp_head(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct uconn *uc = r->uc;
    struct h1_header headers[HTTP_MAX_HEADERS_CAP];
    for (;;) {
        if (buf_len(&uc->in) == 0)
            return 0; /* nothing yet: no buffer to parse (it may be NULL) */
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
            retry_start(r);
            return -1;
        }
        r->resp_status = resp.status;
        r->resp.kind = resp.body;
        r->resp.ch.hold_trailers = 1; /* the trailer section is rewritten */
        r->resp.left = resp.content_length;
        r->resp.done = resp.body == H1_BODY_NONE ||
                       (resp.body == H1_BODY_LENGTH && resp.content_length == 0);
        r->resp_until_close = resp.body == H1_BODY_UNTIL_CLOSE;
        /* The upstream closing its side is its own business; the client's
         * connection only has to close when the body has no framing. */
        if (r->resp_until_close || !r->body.done || hc->w->draining)
            r->close_after = 1;
        r->upstream_close = !(resp.flags & H1_F_KEEPALIVE) || r->resp_until_close;
        if (r->wf && http_wf_response(r, &resp) < 0)
            return -1;
        if (http_build_response_head(r, &resp) < 0) {
            attempt_end(r, LB_5XX, OUTCOME_SERVER_ERROR);
            req_local(r, 502, "upstream response header too large", OUTCOME_SERVER_ERROR);
            return -1;
        }
        buf_consume(&uc->in, (uint32_t)rc);
        r->resp_head_done = 1;
        loop_timer_cancel(hc_loop(hc), &r->timer);
        r->outcome = resp.status >= 500 ? OUTCOME_SERVER_ERROR
                     : resp.status >= 400 ? OUTCOME_CLIENT_ERROR : OUTCOME_OK;
        attempt_end(r, resp.status >= 500 ? LB_5XX : LB_OK, r->outcome);
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
void req_update(struct hreq *r)
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
    if (r->state == HR_CONNECTING || r->state == HR_FILTER) {
        /* Nothing to move; only notice a client that goes away. */
        loop_io_set(l, &hc->io, buf_has_room(&hc->in) && !hc->read_eof ? LOOP_READ : 0);
        return;
    }
    struct uconn *uc = r->uc;
    unsigned ucmask = 0, hcmask = 0;

    int s = req_send(r);
    if (s == IO_LOCAL) { /* a filter answered: the upstream side is gone */
        req_update(r);
        return;
    }
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
        ssize_t n = sio_read_buf(&uc->sio, &uc->in);
        if (n > 0) {
            /* A short read drained the socket; a full one may have left
             * more, which level-triggered epoll would report anyway.
             * Bytes TLS already decrypted are never reported: read on. */
            if ((uint32_t)n < room && sio_pending(&uc->sio) == 0)
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
                if (r->wf && buf_len(&uc->in) == 0 && http_wf_body(r, 1, NULL, 0, 1) < 0) {
                    hc_close(hc);
                    return;
                }
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
    loop_io_set(l, &uc->io, ucmask | uc->sio.want);
    loop_io_set(l, &hc->io, hcmask | hc->sio.want);
}

