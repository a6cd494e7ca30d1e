/* http.c - the HTTP/1.1 proxy, client side: the downstream connection
 * state machine, request set-up and routing, the end of a request.
 * http_exchange.c talks to the upstream.
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
#include "proxy/h2_int.h"
#include "proxy/http_int.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/proto.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"
#include "proxy/wasm_filter.h"
#include "router/ratelimit.h"
#include "router/authz.h"
#include "router/router.h"
#include "tls/tls.h"

static void hc_update(struct hconn *hc);
static void hc_on_io(struct loop *l, struct loop_io *io, unsigned events);
static void hc_on_io_inner(struct hconn *hc, unsigned events);
static void hc_process_head(struct hconn *hc);

/* ---- connection ---------------------------------------------------------- */

static void hc_free(void *p)
{
    struct hconn *hc = p;
    buf_free(&hc->in);
    buf_free(&hc->out);
    free(hc);
}

void hc_close(struct hconn *hc)
{
    if (hc->closed)
        return;
    hc->closed = 1;
    struct worker *w = hc->w;
    if (hc->req)
        req_finish(hc->req);
    h1x_close(hc);
    h2d_free(hc);
    h2_unmark(hc);
    loop_timer_cancel(w->loop, &hc->timer);
    loop_io_del(w->loop, &hc->io);
    sio_tls_close(&hc->sio);
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
    if (hc->state == HC_H2) {
        h2d_timeout(hc);
        return;
    }
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
void hc_arm(struct hconn *hc)
{
    const struct cfg_listener *lc = hc->gl->cfg;
    uint64_t now = loop_now(hc_loop(hc));
    uint64_t ms = lc->idle_timeout_ms;
    if ((hc->state == HC_HEAD && buf_len(&hc->in) > 0) || hc->state == HC_TLS)
        ms = lc->header_timeout_ms;
    loop_timer_arm(hc_loop(hc), &hc->timer, now + ms);
}

/* Writes hc->out; returns -1 if the connection died. */
int hc_flush(struct hconn *hc)
{
    while (buf_len(&hc->out) > 0) {
        ssize_t n = sio_write_buf(&hc->sio, &hc->out);
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
    if (hc->state == HC_H2) {
        h2d_update(hc);
        return;
    }
    if (hc->state == HC_H1X) {
        h1x_update(hc);
        return;
    }
    if (hc->state == HC_TLS) {
        loop_io_set(hc_loop(hc), &hc->io, hc->hs_want);
        return;
    }
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
             * reset could destroy it (TLS says so with close_notify). */
            if (hc->sio.tls)
                tls_conn_shutdown(hc->sio.tls);
            shutdown(hc->io.fd, SHUT_WR);
            hc_close(hc);
            return;
        }
    } else if (!hc->read_eof) {
        mask |= LOOP_READ;
    }
    loop_io_set(hc_loop(hc), &hc->io, mask | hc->sio.want);
}

/* Reads what the client sent; returns bytes read, 0 on EOF/full/again, -1
 * when the connection is gone. */
static ssize_t hc_read(struct hconn *hc)
{
    ssize_t n = sio_read_buf(&hc->sio, &hc->in);
    if (n > 0) {
        /* TLS may hold decrypted bytes epoll will never report: take them
         * while there is room. */
        ssize_t more;
        while (sio_pending(&hc->sio) > 0 && (more = sio_read_buf(&hc->sio, &hc->in)) > 0)
            n += more;
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

/* A first request that starts like the HTTP/2 preface is HTTP/2 with prior
 * knowledge (h2c). 1 when the connection was handed to HTTP/2 (or is
 * waiting for the rest of the preface), 0 for HTTP/1. */
static int hc_detect_h2(struct hconn *hc)
{
    size_t n = buf_len(&hc->in);
    size_t m = n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1;
    if (hc->nrequests > 0 || memcmp(buf_start(&hc->in), h2_preface, m) != 0)
        return 0;
    if (m < sizeof(h2_preface) - 1) {
        if (hc->read_eof)
            hc_close(hc);
        return 1; /* wait for the rest of the preface */
    }
    h2d_start(hc);
    return 1;
}

static void hc_on_io(struct loop *l, struct loop_io *io, unsigned events)
{
    struct hconn *hc = io->ud;
    hc_on_io_inner(hc, events);
    hc_kick(hc);
}

/* Drives the TLS handshake: 1 when done (the connection is now HC_HEAD),
 * 0 while it goes on, -1 when it failed (the connection is closed). */
static int hc_handshake(struct hconn *hc)
{
    int rc = tls_conn_handshake(hc->sio.tls);
    if (rc == 1) {
        hc->state = HC_HEAD;
        return 1;
    }
    if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
        hc->hs_want = rc == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE;
        return 0;
    }
    log_debug("listener %s: TLS handshake with %s failed: %s", hc->gl->cfg->name, hc->peer_ip,
              tls_conn_error(hc->sio.tls));
    metrics_add(hc->w->shard, hc->gl->m_tls_errors, 1);
    hc_close(hc);
    return -1;
}

static void hc_on_io_inner(struct hconn *hc, unsigned events)
{
    if (hc->state == HC_TLS) {
        if (hc_handshake(hc) <= 0)
            return;
        const char *alpn = tls_conn_alpn(hc->sio.tls);
        if (alpn && strcmp(alpn, "h2") == 0) {
            if (h2d_start(hc) == 0)
                h2d_on_io(hc, LOOP_READ);
            return;
        }
        events |= LOOP_READ; /* the first request may already be decrypted */
    }
    if (hc->state == HC_H2) {
        h2d_on_io(hc, events);
        return;
    }
    if (hc->state == HC_H1X) {
        if ((events & LOOP_READ) && hc_read(hc) < 0) {
            hc_close(hc);
            return;
        }
        if (hc->read_eof && !hc->xst->h1req.done) {
            /* The client left before sending its whole request. */
            hc_close(hc);
            return;
        }
        hc_arm(hc);
        return; /* hc_kick moves the bytes */
    }
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
    hc->sio.fd = fd;
    hc->io.cb = hc_on_io;
    hc->io.ud = hc;
    hc->timer.cb = hc_timeout;
    hc->timer.ud = hc;
    hc->state = HC_HEAD;
    if (gl->tls) {
        hc->sio.tls = tls_conn_server(gl->tls, fd);
        if (!hc->sio.tls) {
            close(fd);
            free(hc);
            wgen_release(worker_wgen(w));
            return;
        }
        hc->state = HC_TLS;
        hc->hs_want = LOOP_READ;
    }
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
        if (hc->state == HC_H2)
            h2d_goaway(hc); /* open streams finish, new ones are refused */
        else if (!hc->req && buf_len(&hc->in) == 0 && hc->state == HC_HEAD)
            hc_close(hc);
    }
}

void http_retire(struct worker *w)
{
    struct wlink *it = w->hconns.next;
    while (it != &w->hconns) {
        struct hconn *hc = HTTP_CONN_OF(it);
        it = it->next;
        if (hc->state == HC_H2 && hc->wg != w->cur)
            h2d_goaway(hc);
    }
}

const struct proto_handler http_handler = {"http", hc_accept, hc_drain};

void http_init(void)
{
    /* Set once, before any worker thread runs: the pool tells the HTTP
     * layer when a waiting request may take a freed connection slot. */
    uconn_slot_freed = http_slot_freed;
}

/* ---- request set-up ------------------------------------------------------ */

static char *dup_str(h1_str s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        if (s.len) /* an absent field is {NULL, 0} */
            memcpy(p, s.p, s.len);
        p[s.len] = 0;
    }
    return p;
}

static void req_free(struct hreq *r)
{
    buf_free(&r->head_buf);
    free(r->body.trl);
    free(r->resp.trl);
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
    if (hc_detect_h2(hc))
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
    r->body.ch.hold_trailers = 1; /* the trailer section is rewritten */
    r->body.left = req.content_length;
    r->body.done = req.body == H1_BODY_NONE || (req.body == H1_BODY_LENGTH && req.content_length == 0);

    /* Route on the message's attributes. */
    struct http_attr_ctx actx = {&req, hc};
    struct attr_src src = {http_attr_get, &actx};
    struct gen_listener *gl = hc->gl;
    r->rr = router_match(gl->router, &src);
    r->stats = &gl->noroute;
    const char *why;
    uint64_t wait_ms = 0;
    const struct cfg_authz *deny = authz_check(gl->authz, &src, &why);
    if (deny) {
        if (r->rr)
            r->stats = &gl->rules[route_rule_index(r->rr)].direct;
        r->denied = 1;
        metrics_add(hc->w->shard, gl->m_denied, 1);
        buf_consume(&hc->in, (uint32_t)rc);
        snprintf(r->errbuf, sizeof(r->errbuf), "%s %s", why, deny->name);
        req_local(r, 403, r->errbuf, OUTCOME_CLIENT_ERROR);
        return;
    }
    int lim = rl_check_now(gl->rl, &src, &wait_ms);
    if (lim >= 0) {
        if (r->rr)
            r->stats = &gl->rules[route_rule_index(r->rr)].direct;
        metrics_add(hc->w->shard, gl->m_limited[lim], 1);
        buf_consume(&hc->in, (uint32_t)rc);
        r->retry_after = http_retry_after(wait_ms);
        snprintf(r->errbuf, sizeof(r->errbuf), "rate limited by %s", rl_list_at(gl->rl, lim)->name);
        req_local(r, 429, r->errbuf, OUTCOME_CLIENT_ERROR);
        return;
    }
    /* WasmPlugins see (and may change) the request before it goes on. */
    if (wf_listener_has(gl) && http_wf_request(r, &req, (uint32_t)rc))
        return;
    req_route(r, &req, (uint32_t)rc);
}

/* Routes r on to its answer or its cluster: req is the parsed head (or one
 * a filter rewrote), consume the bytes of hc->in still holding it. */
void req_route(struct hreq *r, const struct h1_request *req, uint32_t consume)
{
    struct hconn *hc = r->hc;
    struct gen_listener *gl = hc->gl;
    struct http_attr_ctx actx = {req, hc};
    struct attr_src src = {http_attr_get, &actx};
    if (!r->rr) {
        buf_consume(&hc->in, consume);
        req_local(r, 404, "no route matched", OUTCOME_CLIENT_ERROR);
        return;
    }
    const struct cfg_rule *cr = route_rule_cfg(r->rr);
    struct gen_rule *gr = &gl->rules[route_rule_index(r->rr)];
    if (cr->direct.status) {
        r->stats = &gr->direct;
        buf_consume(&hc->in, consume);
        r->error = NULL;
        req_local(r, cr->direct.status, NULL, OUTCOME_OK);
        return;
    }
    r->backend = route_pick_backend(r->rr, (uint32_t)worker_rand(hc->w));
    int ci = r->backend >= 0 ? gen_cluster_index(hc->wg->gen, cr->backends[r->backend].cluster) : -1;
    if (ci < 0) {
        buf_consume(&hc->in, consume);
        req_local(r, 503, "no backend available", OUTCOME_UNAVAILABLE);
        return;
    }
    r->stats = &gr->backends[r->backend];
    r->wc = &hc->wg->clusters[ci];
    if (r->wc->gc->cfg->protocol == CFG_UPSTREAM_HTTP2 && r->upgrade) {
        buf_consume(&hc->in, consume);
        req_local(r, 501, "protocol upgrades are not proxied to HTTP/2 clusters",
                  OUTCOME_CLIENT_ERROR);
        return;
    }

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
    if (r->wc->gc->cfg->protocol == CFG_UPSTREAM_HTTP2) {
        /* Translated to HTTP/2: the exchange of h2_exchange.c takes the
         * request over, with r's hold on the generation. */
        if (h1x_begin(hc, r, req, consume, r->wf) == 0) {
            r->wf = NULL; /* the stream has the filters now */
            /* A filter's wait armed r's timer; r goes now. */
            loop_timer_cancel(hc_loop(hc), &r->timer);
            hc->req = NULL;
            req_free(r);
            return;
        }
        buf_consume(&hc->in, consume);
        req_local(r, 503, "out of memory", OUTCOME_UNAVAILABLE);
        return;
    }
    int hl = http_build_request_head(r, req, &r->head_buf);
    buf_consume(&hc->in, consume);
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
        probe.hold_trailers = 0; /* the whole message, trailers included */
        int sc = buf_len(&hc->in) ? h1_chunked_scan(&probe, buf_start(&hc->in), buf_len(&hc->in))
                                  : 0;
        r->replay = sc >= 0 && h1_chunked_done(&probe);
    }
    if (r->replay)
        r->body0 = r->body; /* each attempt sends the body from its start */
    r->timer.cb = req_timeout;
    uint64_t tmo = cr->timeout_ms ? cr->timeout_ms : gl->cfg->request_timeout_ms;
    r->deadline_ms = loop_now(hc_loop(hc)) + tmo;
    req_attempt(r);
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
    rec.outcome = r->denied ? ALOG_DENIED : outcome_alog[r->outcome];
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
void req_finish(struct hreq *r)
{
    struct hconn *hc = r->hc;
    struct worker *w = hc->w;
    /* Filters see the end (proxy_on_done, on_log) while hc is still alive. */
    wf_stream_free(r->wf);
    r->wf = NULL;
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
void hc_kick(struct hconn *hc)
{
    if (hc->state == HC_H2) {
        h2d_update(hc);
        return;
    }
    if (hc->state == HC_H1X) {
        h1x_update(hc);
        if (hc->closed || hc->state == HC_H1X)
            return;
    }
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

void req_to_tunnel(struct hreq *r)
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
    struct sio cs = hc->sio;
    loop_io_del(w->loop, &hc->io);
    hc->io.fd = -1;
    hc->sio = (struct sio){.fd = -1};
    if (!ok) {
        uconn_close(uc);
        sio_tls_close(&cs);
        close(cs.fd);
    } else {
        tunnel_new(w, hc->gl, &cs, &hc->out, &hc->in, uc, hc->gl->cfg->idle_timeout_ms, NULL,
                   NULL, NULL);
    }
    req_finish(r);
    hc_close(hc);
}
