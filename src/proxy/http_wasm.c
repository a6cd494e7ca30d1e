/* http_wasm.c - WasmPlugins on HTTP/1.1 requests (wasm_filter.h).
 *
 * After authorization and RateLimits (refusals cost no filter call), the
 * request head is copied into the stream's map: :method, :path (the
 * request-target), :authority (Host), :scheme, then every field with a
 * lower-case name. The filters run on it; the request then goes on from a
 * head rebuilt from the map, so it no longer points into the client
 * buffer and a filter may keep the request waiting.
 *
 * The framing is not the filters' to change: Content-Length and
 * Transfer-Encoding are written as parsed whatever the map says, so a
 * filter cannot make the proxy and the upstream disagree on where the
 * body ends. The route was chosen before the filters ran and stays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http_int.h"
#include "proxy/lb.h"
#include "proxy/upstream.h"
#include "proxy/wasm_filter.h"
#include "router/router.h"

static void wf_resume_cb(void *owner);

static int wf_attr(void *owner, const struct attr_key *key, attr_val *out, int max)
{
    struct hreq *r = owner;
    return http_conn_attr(r->hc, key, out, max);
}

static const struct wf_embed http_wf_embed = {wf_attr, wf_resume_cb};

static h1_str kv_str(const struct wf_kv *kv)
{
    return kv ? (h1_str){kv->value, kv->value_len} : (h1_str){NULL, 0};
}

static bool is_framing(const char *name)
{
    return strcmp(name, "content-length") == 0 || strcmp(name, "transfer-encoding") == 0;
}

/* Rebuilds the request head from the map into *req (headers in hs, cap
 * entries; strings point into the map and cl). */
static void synth_request(struct hreq *r, struct h1_request *req, struct h1_header *hs, size_t cap,
                          char cl[24])
{
    struct wf_map *m = wf_req_map(r->wf);
    memset(req, 0, sizeof(*req));
    req->headers = hs;
    req->method = kv_str(wf_map_get(m, ":method", 7));
    if (!req->method.p)
        req->method = (h1_str){r->method, strlen(r->method)};
    req->method_id = (enum h1_method)r->wf_method_id;
    req->target = kv_str(wf_map_get(m, ":path", 5));
    if (!req->target.p || req->target.len == 0)
        req->target = (h1_str){"/", 1};
    const char *q = memchr(req->target.p, '?', req->target.len);
    req->path = (h1_str){req->target.p, q ? (size_t)(q - req->target.p) : req->target.len};
    if (q)
        req->query = (h1_str){q + 1, req->target.len - req->path.len - 1};
    req->minor_version = r->http10 ? 0 : 1;
    req->flags = r->wf_flags;
    req->body = r->body.kind;
    req->content_length = r->body.kind == H1_BODY_LENGTH ? r->body.left : 0;
    req->host = kv_str(wf_map_get(m, ":authority", 10));
    req->authority = req->host;
    size_t n = 0;
    if (req->host.p)
        hs[n++] = (struct h1_header){{"host", 4}, req->host};
    for (uint32_t i = 0; i < m->n && n + 1 < cap; i++) {
        const struct wf_kv *kv = &m->e[i];
        if (kv->key[0] == ':' || strcmp(kv->key, "host") == 0 || is_framing(kv->key))
            continue;
        hs[n++] = (struct h1_header){{kv->key, kv->key_len}, {kv->value, kv->value_len}};
        if (strcmp(kv->key, "connection") == 0)
            req->connection = hs[n - 1].value;
        else if (strcmp(kv->key, "upgrade") == 0)
            req->upgrade = hs[n - 1].value;
    }
    if (r->body.kind == H1_BODY_LENGTH && n < cap) {
        int l = snprintf(cl, 24, "%llu", (unsigned long long)r->body.left);
        hs[n++] = (struct h1_header){{"content-length", 14}, {cl, (size_t)l}};
    } else if (r->body.kind == H1_BODY_CHUNKED && n < cap) {
        hs[n++] = (struct h1_header){{"transfer-encoding", 17}, {"chunked", 7}};
    }
    req->nheaders = n;
}

/* The filters' local response, as the client gets it. */
static void answer_local(struct hreq *r)
{
    const struct wf_local *l = wf_local(r->wf);
    struct cfg_header hs[64];
    struct cfg_header_ops ops = {.set = hs};
    for (uint32_t i = 0; i < l->headers.n && ops.nset < 64; i++) {
        const char *k = l->headers.e[i].key;
        /* The proxy frames the answer itself. */
        if (k[0] == ':' || is_framing(k) || strcmp(k, "connection") == 0)
            continue;
        hs[ops.nset++] = (struct cfg_header){l->headers.e[i].key, l->headers.e[i].value};
    }
    snprintf(r->errbuf, sizeof(r->errbuf), "wasm local response%s%s", l->details ? ": " : "",
             l->details ? l->details : "");
    int st = l->status;
    req_local_body(r, st, "text/plain", l->body ? l->body : "", l->body_len, &ops, r->errbuf,
                   st >= 500 ? OUTCOME_SERVER_ERROR : st >= 400 ? OUTCOME_CLIENT_ERROR
                                                    : OUTCOME_OK);
}

static void fail_closed(struct hreq *r)
{
    snprintf(r->errbuf, sizeof(r->errbuf), "%s", wf_fail_reason(r->wf));
    req_local(r, 500, r->errbuf, OUTCOME_SERVER_ERROR);
}

/* What the request-header phase decided. */
static void after_request(struct hreq *r, int res)
{
    switch (res) {
    case WF_CONTINUE: {
        struct h1_header hs[HTTP_MAX_HEADERS_CAP + 2];
        struct h1_request req;
        char cl[24];
        synth_request(r, &req, hs, sizeof(hs) / sizeof(hs[0]), cl);
        req_route(r, &req, 0);
        return;
    }
    case WF_PAUSE:
        req_update(r); /* waits, watching only for the client going away */
        return;
    case WF_LOCAL:
        answer_local(r);
        return;
    default:
        fail_closed(r);
        return;
    }
}

static void wf_resume_cb(void *owner)
{
    struct hreq *r = owner;
    struct hconn *hc = r->hc;
    if (r->state != HR_FILTER)
        return; /* the request went on already; nothing waits */
    after_request(r, wf_resume(r->wf));
    hc_kick(hc);
}

/* Copies the parsed head into the map. 0 or -1 (out of memory). */
static int fill_request(struct hreq *r, const struct h1_request *req)
{
    struct wf_map *m = wf_req_map(r->wf);
    const char *scheme = r->hc->sio.tls ? "https" : "http";
    h1_str auth = req->authority.p ? req->authority : req->host;
    if (wf_map_add(m, ":method", 7, req->method.p, req->method.len, false) < 0 ||
        wf_map_add(m, ":path", 5, req->target.p, req->target.len, false) < 0 ||
        (auth.p && wf_map_add(m, ":authority", 10, auth.p, auth.len, false) < 0) ||
        wf_map_add(m, ":scheme", 7, scheme, strlen(scheme), false) < 0)
        return -1;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct h1_header *h = &req->headers[i];
        if (h1_str_ieq(h->name, "host"))
            continue;
        if (wf_map_add(m, h->name.p, h->name.len, h->value.p, h->value.len, true) < 0)
            return -1;
    }
    return 0;
}

int http_wf_request(struct hreq *r, const struct h1_request *req, uint32_t head_len)
{
    struct hconn *hc = r->hc;
    int failed;
    const char *route = r->rr ? route_rule_route(r->rr)->name : NULL;
    r->wf = wf_stream_new(hc->wg, hc->gl, route, false, &http_wf_embed, r, &failed);
    if (!r->wf && !failed)
        return 0;
    if (r->rr)
        r->stats = &hc->gl->rules[route_rule_index(r->rr)].direct;
    if (!r->wf) {
        buf_consume(&hc->in, head_len);
        req_local(r, 500, "a wasm filter could not start", OUTCOME_SERVER_ERROR);
        return 1;
    }
    wf_set_names(r->wf, r->rr ? route_rule_name(r->rr) : NULL, NULL);
    r->wf_flags = req->flags;
    r->wf_method_id = (int)req->method_id;
    int ok = fill_request(r, req) == 0;
    buf_consume(&hc->in, head_len);
    if (!ok) {
        req_local(r, 503, "out of memory", OUTCOME_UNAVAILABLE);
        return 1;
    }
    /* A filter that pauses gets the listener's request timeout to go on. */
    r->state = HR_FILTER;
    r->timer.cb = req_timeout;
    r->deadline_ms = loop_now(hc_loop(hc)) + hc->gl->cfg->request_timeout_ms;
    loop_timer_arm(hc_loop(hc), &r->timer, r->deadline_ms);
    after_request(r, wf_request_headers(r->wf, r->body.done));
    return 1;
}

/* Rebuilds resp's headers from the map: the filters' fields, the
 * framing as parsed. hs: storage for the new list, valid while r lives. */
static void synth_response(struct hreq *r, struct h1_response *resp, struct h1_header *hs,
                           size_t cap)
{
    struct wf_map *m = wf_resp_map(r->wf);
    size_t n = 0;
    for (uint32_t i = 0; i < m->n && n < cap; i++) {
        const struct wf_kv *kv = &m->e[i];
        if (kv->key[0] == ':' || is_framing(kv->key))
            continue;
        hs[n++] = (struct h1_header){{kv->key, kv->key_len}, {kv->value, kv->value_len}};
    }
    for (size_t i = 0; i < resp->nheaders && n < cap; i++)
        if (h1_str_ieq(resp->headers[i].name, "content-length") ||
            h1_str_ieq(resp->headers[i].name, "transfer-encoding"))
            hs[n++] = resp->headers[i];
    const struct wf_kv *st = wf_map_get(m, ":status", 7);
    int status = st ? atoi(st->value) : 0;
    if (status >= 200 && status <= 599 && status != resp->status) {
        resp->status = status;
        r->resp_status = status;
        const char *reason = h1_status_reason(status);
        resp->reason = (h1_str){reason, strlen(reason)};
    }
    resp->headers = hs;
    resp->nheaders = n;
}

int http_wf_response(struct hreq *r, struct h1_response *resp)
{
    /* Storage for a rebuilt list: one request per thread is in here. */
    static __thread struct h1_header hs[HTTP_MAX_HEADERS_CAP + 2];
    struct wf_map *m = wf_resp_map(r->wf);
    char st[4] = {(char)('0' + resp->status / 100), (char)('0' + resp->status / 10 % 10),
                  (char)('0' + resp->status % 10), 0};
    int ok = wf_map_add(m, ":status", 7, st, 3, false) == 0;
    for (size_t i = 0; ok && i < resp->nheaders; i++)
        ok = wf_map_add(m, resp->headers[i].name.p, resp->headers[i].name.len,
                        resp->headers[i].value.p, resp->headers[i].value.len, true) == 0;
    if (r->wc)
        wf_set_names(r->wf, r->rr ? route_rule_name(r->rr) : NULL, r->wc->gc->cfg->name);
    int res = ok ? wf_response_headers(r->wf, r->resp.done) : WF_CONTINUE;
    if (res == WF_CONTINUE || res == WF_PAUSE) {
        if (m->dirty)
            synth_response(r, resp, hs, sizeof(hs) / sizeof(hs[0]));
        return 0;
    }
    /* The upstream answered fine; the filter replaces its answer. */
    attempt_end(r, LB_OK, OUTCOME_OK);
    r->upstream_close = 1;
    if (res == WF_LOCAL)
        answer_local(r);
    else
        fail_closed(r);
    return -1;
}

static int body_call(struct hreq *r, int resp, const char *p, size_t n, int eos)
{
    const uint8_t *b = (const uint8_t *)p;
    return resp ? wf_response_body(r->wf, b, n, eos) : wf_request_body(r->wf, b, n, eos);
}

/* Chunked: the payload runs of p[0..n) (after what carry held). */
static int dechunk(struct hreq *r, struct http_wf_body *d, int resp, const char *p, size_t n,
                   int eos)
{
    char *joined = NULL;
    if (d->ncarry) {
        if (!(joined = malloc(d->ncarry + n))) {
            d->broken = 1;
            return WF_CONTINUE;
        }
        memcpy(joined, d->carry, d->ncarry);
        if (n)
            memcpy(joined + d->ncarry, p, n);
        p = joined;
        n += d->ncarry;
        d->ncarry = 0;
    }
    int res = WF_CONTINUE;
    size_t off = 0;
    while (off < n && res == WF_CONTINUE) {
        const char *data;
        size_t dl;
        int c = h1_chunked_decode(&d->ch, p + off, n - off, &data, &dl);
        if (c < 0) {
            d->broken = 1; /* the forwarding side answers bad framing */
            break;
        }
        if (c == 0) {
            /* A framing line cut by a partial write: keep it for later. */
            size_t rest = n - off;
            if (!h1_chunked_done(&d->ch) && rest <= sizeof(d->carry)) {
                memcpy(d->carry, p + off, rest);
                d->ncarry = (uint8_t)rest;
            } else if (!h1_chunked_done(&d->ch)) {
                d->broken = 1;
            }
            break;
        }
        off += (size_t)c;
        if (dl)
            res = body_call(r, resp, data, dl, 0);
    }
    free(joined);
    if (res == WF_CONTINUE && eos)
        res = body_call(r, resp, NULL, 0, 1);
    return res;
}

/* What a body phase (or the trailer phase) answered: 0 to go on, else
 * the request is answered (request) or must be cut (response): -1. */
static int body_result(struct hreq *r, int resp, int res)
{
    if (res == WF_CONTINUE || res == WF_PAUSE)
        return 0;
    if (resp) {
        /* The response head is out: cutting the connection is all that is
         * left to say it went wrong. */
        snprintf(r->errbuf, sizeof(r->errbuf), "%s",
                 res == WF_LOCAL ? "a wasm filter answered after the response started"
                                 : wf_fail_reason(r->wf));
        r->error = r->errbuf;
        r->outcome = OUTCOME_SERVER_ERROR;
        return -1;
    }
    if (res == WF_LOCAL)
        answer_local(r);
    else
        fail_closed(r);
    return -1;
}

int http_wf_trailers(struct hreq *r, int resp, const struct h1_header **hs, size_t *n)
{
    static __thread struct h1_header out[HTTP_MAX_HEADERS_CAP];
    if (*n == 0) /* no trailers: the body's end, as without a section */
        return http_wf_body(r, resp, NULL, 0, 1);
    struct wf_map *m = resp ? wf_resp_trailers(r->wf) : wf_req_trailers(r->wf);
    for (size_t i = 0; i < *n; i++)
        if (wf_map_add(m, (*hs)[i].name.p, (*hs)[i].name.len, (*hs)[i].value.p,
                       (*hs)[i].value.len, true) < 0)
            return 0; /* out of memory: the trailers go as they came */
    int res = resp ? wf_response_trailers(r->wf) : wf_request_trailers(r->wf);
    if (body_result(r, resp, res) < 0)
        return -1;
    if (m->dirty) {
        size_t k = 0;
        for (uint32_t i = 0; i < m->n && k < HTTP_MAX_HEADERS_CAP; i++)
            if (m->e[i].key[0] != ':')
                out[k++] = (struct h1_header){{m->e[i].key, m->e[i].key_len},
                                              {m->e[i].value, m->e[i].value_len}};
        *hs = out;
        *n = k;
    }
    return 0;
}

int http_wf_body(struct hreq *r, int resp, const char *p, size_t n, int eos)
{
    struct http_wf_body *d = resp ? &r->wf_dresp : &r->wf_dreq;
    enum h1_body_kind kind = resp ? r->resp.kind : r->body.kind;
    int res;
    if (kind != H1_BODY_CHUNKED)
        res = body_call(r, resp, p, n, eos);
    else
        res = d->broken ? WF_CONTINUE : dechunk(r, d, resp, p, n, eos);
    return body_result(r, resp, res);
}
