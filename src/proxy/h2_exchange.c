/* h2_exchange.c - one HTTP/2 request stream through the proxy: routing and
 * policy on its attributes, the request head as sent upstream, attempts
 * (endpoint choice, limits, retries, timeouts), local answers, and the
 * response path back to the client. The upstream side is h2_up.c (HTTP/2
 * clusters) or h2_h1up.c (HTTP/1.1 clusters).
 *
 * gRPC calls (content-type application/grpc) are answered in gRPC's own
 * words: a refusal is a trailers-only response with a grpc-status, and the
 * call's outcome in metrics and logs comes from grpc-status, not from the
 * HTTP status (always 200 for gRPC). grpc-timeout shortens the route's
 * timeout; a retry on `unavailable` repeats a call answered UNAVAILABLE
 * while its whole request is still in hand.
 *
 * Retries follow the HTTP/1 rule: possible while every request byte is
 * still held (reqb keeps the body in "replay" mode until it outgrows one
 * buffer block) and no response byte went to the client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "proto/http2/grpc.h"
#include "proxy/accesslog.h"
#include "proxy/h2_int.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/upstream.h"
#include "proxy/wasm_filter.h"
#include "router/ratelimit.h"
#include "router/authz.h"
#include "router/router.h"

static struct loop *st_loop(const struct h2s *st) { return st->hc->w->loop; }

/* ---- the client side ----------------------------------------------------- */

/* A stream's client is an HTTP/2 stream of st->hc, or (st->h1) the HTTP/1.1
 * request st->hc carries to an HTTP/2 cluster (h2_h1down.c). These five
 * calls are everything the exchange asks of it. */

static ssize_t resp_read(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof, int *deferred);

/* Submits the response head; body says whether a body follows. */
static int dn_respond(struct h2s *st, int status, const struct h2_header *hs, size_t n, int body)
{
    if (st->h1)
        return h1x_respond(st, status, hs, n, body);
    return h2_submit_response(st->hc->h2->s, st->id, status, hs, n, body ? resp_read : NULL, st);
}

/* Response bytes (or the end) are waiting in respb. */
static void dn_resume(struct h2s *st)
{
    if (st->h1) {
        h1x_wake(st);
    } else {
        h2_resume(st->hc->h2->s, st->id);
        h2_mark(st->hc); /* the DATA goes out at the end of the batch */
    }
}

/* n request bytes left reqb for good: the client may send more. */
static void dn_consume(struct h2s *st, size_t n)
{
    if (st->h1) {
        h1x_wake(st);
    } else {
        h2_consume(st->hc->h2->s, st->id, n);
        /* The WINDOW_UPDATE must reach the client even when this runs in
         * an upstream session's output pass. */
        h2_mark(st->hc);
    }
}

/* The response cannot be completed. */
static void dn_reset(struct h2s *st, uint32_t code)
{
    if (st->h1)
        h1x_abort(st);
    else
        h2_reset(st->hc->h2->s, st->id, code);
}

static int dn_trailers(struct h2s *st, const struct h2_header *hs, size_t n)
{
    if (st->h1)
        return -1; /* an HTTP/1.1 client gets the body without trailers */
    return h2_submit_trailers(st->hc->h2->s, st->id, hs, n);
}

/* ---- the request head as sent upstream ---------------------------------- */

#define UP_MAX_FIELDS (HTTP_MAX_HEADERS_CAP + 24)

struct hb {
    struct h2_header v[UP_MAX_FIELDS];
    size_t n;
    char scratch[2048]; /* composed values */
    size_t used;
    int overflow;
};

static void hb_add(struct hb *b, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (b->n == UP_MAX_FIELDS) {
        b->overflow = 1;
        return;
    }
    b->v[b->n++] = (struct h2_header){name, nlen, value, vlen};
}

static void hb_addc(struct hb *b, const char *name, const char *value)
{
    hb_add(b, name, strlen(name), value, strlen(value));
}

/* Composes "a, b" (or just b) into scratch; returns it or NULL. */
static const char *hb_join(struct hb *b, const struct h2_header *old, const char *add,
                           size_t *len)
{
    size_t ol = old ? old->vlen + 2 : 0, al = strlen(add);
    if (b->used + ol + al + 1 > sizeof(b->scratch)) {
        b->overflow = 1;
        return NULL;
    }
    char *p = b->scratch + b->used;
    if (old) {
        memcpy(p, old->value, old->vlen);
        memcpy(p + old->vlen, ", ", 2);
    }
    memcpy(p + ol, add, al);
    p[ol + al] = 0;
    b->used += ol + al + 1;
    *len = ol + al;
    return p;
}

static int name_in(const char *name, size_t nlen, char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == nlen && memcmp(list[i], name, nlen) == 0)
            return 1;
    return 0;
}

static int ops_drop(const struct cfg_header_ops *ops, const char *name, size_t nlen)
{
    if (name_in(name, nlen, ops->remove, ops->nremove))
        return 1;
    for (size_t i = 0; i < ops->nset; i++)
        if (strlen(ops->set[i].name) == nlen && memcmp(ops->set[i].name, name, nlen) == 0)
            return 1;
    return 0;
}

static void ops_add(struct hb *b, const struct cfg_header_ops *ops)
{
    for (size_t i = 0; i < ops->nset; i++)
        hb_addc(b, ops->set[i].name, ops->set[i].value);
    for (size_t i = 0; i < ops->nadd; i++)
        hb_addc(b, ops->add[i].name, ops->add[i].value);
}

/* :path after the rule's rewrite.pathPrefix, composed into scratch. */
static void hb_path(struct hb *b, const struct cfg_rule *cr, const struct h2_header *p)
{
    if (!cr->rewrite_prefix) {
        hb_add(b, ":path", 5, p->value, p->vlen);
        return;
    }
    const char *pre = http_rule_prefix(cr);
    size_t pl = strlen(pre), nl = strlen(cr->rewrite_prefix);
    if (p->vlen < pl || memcmp(p->value, pre, pl) != 0) {
        hb_add(b, ":path", 5, p->value, p->vlen);
        return;
    }
    const char *rest = p->value + pl;
    size_t rl = p->vlen - pl;
    if (b->used + nl + rl + 3 > sizeof(b->scratch)) {
        b->overflow = 1;
        return;
    }
    char *o = b->scratch + b->used, *q = o;
    memcpy(q, cr->rewrite_prefix, nl);
    q += nl;
    /* "/api" + "/x" rewritten to "/" gives "/x", not "//x". */
    if (nl > 0 && cr->rewrite_prefix[nl - 1] == '/' && rl > 0 && rest[0] == '/') {
        rest++;
        rl--;
    } else if (rl > 0 && rest[0] != '/' && rest[0] != '?' &&
               (nl == 0 || cr->rewrite_prefix[nl - 1] != '/')) {
        *q++ = '/';
    }
    if (q == o || o[0] != '/') {
        memmove(o + 1, o, (size_t)(q - o));
        o[0] = '/';
        q++;
    }
    memcpy(q, rest, rl);
    q += rl;
    *q = 0;
    b->used += (size_t)(q - o) + 1;
    hb_add(b, ":path", 5, o, (size_t)(q - o));
}

/* Builds st->up_head from the client's head hs. 0 or -1 (too large). */
static int build_up_head(struct h2s *st, const struct h2_header *hs, size_t n)
{
    const struct cfg_rule *cr = route_rule_cfg(st->rr);
    const struct cfg_listener *lc = st->hc->gl->cfg;
    const struct cfg_header_ops *ops = &cr->request_headers;
    static __thread struct hb b;
    b.n = 0;
    b.used = 0;
    b.overflow = 0;
    const struct h2_header *m = h2_header_get(hs, n, ":method");
    const struct h2_header *p = h2_header_get(hs, n, ":path");
    const struct h2_header *a = h2_header_get(hs, n, ":authority");
    hb_add(&b, ":method", 7, m->value, m->vlen);
    if (st->wc->gc->tls)
        hb_add(&b, ":scheme", 7, "https", 5);
    else
        hb_add(&b, ":scheme", 7, "http", 4);
    hb_path(&b, cr, p);
    hb_add(&b, ":authority", 10, a->value, a->vlen);
    const struct h2_header *xff = NULL, *via = NULL;
    int have_rid = 0, have_xfp = 0;
    for (size_t i = 0; i < n; i++) {
        const struct h2_header *h = &hs[i];
        if (h->name[0] == ':' || ops_drop(ops, h->name, h->nlen))
            continue;
        if (h->nlen == 4 && memcmp(h->name, "host", 4) == 0)
            continue; /* :authority says it */
        if (lc->xff && h->nlen == 15 && memcmp(h->name, "x-forwarded-for", 15) == 0) {
            xff = h;
            continue;
        }
        if (lc->via && h->nlen == 3 && memcmp(h->name, "via", 3) == 0) {
            via = h;
            continue;
        }
        if (h->nlen == 12 && memcmp(h->name, "x-request-id", 12) == 0)
            have_rid = 1;
        if (h->nlen == 17 && memcmp(h->name, "x-forwarded-proto", 17) == 0)
            have_xfp = 1;
        hb_add(&b, h->name, h->nlen, h->value, h->vlen);
    }
    size_t l;
    const char *v;
    if (lc->xff) {
        if ((v = hb_join(&b, xff, st->hc->peer_ip, &l)))
            hb_add(&b, "x-forwarded-for", 15, v, l);
        if (!have_xfp)
            hb_addc(&b, "x-forwarded-proto", st->hc->sio.tls ? "https" : "http");
    }
    if (lc->via && (v = hb_join(&b, via, st->h1 ? "1.1 strand" : "2 strand", &l)))
        hb_add(&b, "via", 3, v, l);
    if (lc->request_id && !have_rid)
        hb_addc(&b, "x-request-id", st->request_id);
    ops_add(&b, ops);
    if (b.overflow)
        return -1;
    return h2_hlist_copy(&st->up_head, b.v, b.n);
}

/* ---- routing ------------------------------------------------------------- */

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

void h2s_begin(struct h2s *st, const struct h2_header *hs, size_t n)
{
    struct hconn *hc = st->hc;
    struct gen_listener *gl = hc->gl;
    const struct h2_header *m = h2_header_get(hs, n, ":method");
    const struct h2_header *p = h2_header_get(hs, n, ":path");
    const struct h2_header *a = h2_header_get(hs, n, ":authority");
    const struct h2_header *ct = h2_header_get(hs, n, "content-type");
    st->state = H2S_CONNECTING;
    size_t ml = m->vlen < sizeof(st->method) - 1 ? m->vlen : sizeof(st->method) - 1;
    memcpy(st->method, m->value, ml);
    st->head_only = m->vlen == 4 && memcmp(m->value, "HEAD", 4) == 0;
    st->grpc = ct && grpc_is_content_type(ct->value, ct->vlen);
    st->has_length = h2_header_get(hs, n, "content-length") != NULL;
    if (hc->w->alog) {
        if (p)
            st->path = dup_n(p->value, p->vlen);
        if (a)
            st->authority = dup_n(a->value, a->vlen);
        const struct h2_header *ua = h2_header_get(hs, n, "user-agent");
        if (ua)
            st->user_agent = dup_n(ua->value, ua->vlen);
    }
    const struct h2_header *rid = h2_header_get(hs, n, "x-request-id");
    if (rid && rid->vlen > 0 && rid->vlen < sizeof(st->request_id))
        memcpy(st->request_id, rid->value, rid->vlen);
    else if (hc->w->alog || gl->cfg->request_id)
        http_request_id(hc->w, st->request_id);
    st->stats = &gl->noroute;
    if (!p || !a || (m->vlen == 7 && memcmp(m->value, "CONNECT", 7) == 0)) {
        h2s_local(st, 405, "CONNECT is not supported over HTTP/2", OUTCOME_CLIENT_ERROR);
        return;
    }

    struct h2_attr_ctx actx = {hs, n, hc};
    struct attr_src src = {h2_attr_get, &actx};
    st->rr = router_match(gl->router, &src);
    const char *why;
    const struct cfg_authz *deny = authz_check(gl->authz, &src, &why);
    if (deny) {
        if (st->rr)
            st->stats = &gl->rules[route_rule_index(st->rr)].direct;
        st->denied = 1;
        metrics_add(hc->w->shard, gl->m_denied, 1);
        snprintf(st->errbuf, sizeof(st->errbuf), "%s %s", why, deny->name);
        h2s_local(st, 403, st->errbuf, OUTCOME_CLIENT_ERROR);
        return;
    }
    uint64_t wait_ms = 0;
    int lim = rl_check_now(gl->rl, &src, &wait_ms);
    if (lim >= 0) {
        if (st->rr)
            st->stats = &gl->rules[route_rule_index(st->rr)].direct;
        metrics_add(hc->w->shard, gl->m_limited[lim], 1);
        st->retry_after = http_retry_after(wait_ms);
        snprintf(st->errbuf, sizeof(st->errbuf), "rate limited by %s",
                 rl_list_at(gl->rl, lim)->name);
        h2s_local(st, 429, st->errbuf, OUTCOME_CLIENT_ERROR);
        return;
    }
    /* WasmPlugins see (and may change) the request before it goes on. */
    if (wf_listener_has(gl) && h2_wf_request(st, hs, n))
        return;
    h2s_route(st, hs, n);
}

void h2s_route(struct h2s *st, const struct h2_header *hs, size_t n)
{
    struct hconn *hc = st->hc;
    struct gen_listener *gl = hc->gl;
    struct h2_attr_ctx actx = {hs, n, hc};
    struct attr_src src = {h2_attr_get, &actx};
    if (!st->rr) {
        h2s_local(st, 404, "no route matched", OUTCOME_CLIENT_ERROR);
        return;
    }
    const struct cfg_rule *cr = route_rule_cfg(st->rr);
    struct gen_rule *gr = &gl->rules[route_rule_index(st->rr)];
    if (cr->direct.status) {
        st->stats = &gr->direct;
        h2s_local(st, cr->direct.status, NULL, OUTCOME_OK);
        return;
    }
    st->backend = route_pick_backend(st->rr, (uint32_t)worker_rand(hc->w));
    int ci = st->backend >= 0
                 ? gen_cluster_index(hc->wg->gen, cr->backends[st->backend].cluster)
                 : -1;
    if (ci < 0) {
        h2s_local(st, 503, "no backend available", OUTCOME_UNAVAILABLE);
        return;
    }
    st->stats = &gr->backends[st->backend];
    st->wc = &hc->wg->clusters[ci];
    const char *hattr = cr->hash_attr ? cr->hash_attr : st->wc->gc->cfg->hash_attr;
    if (st->wc->gc->cfg->lb == CFG_LB_HASH && hattr) {
        struct attr_key key;
        attr_val v[1];
        if (attr_key_init(&key, hattr, strlen(hattr)) == 0 && attr_get(&src, &key, v, 1) > 0) {
            st->hash = lb_hash_bytes(v[0].p, v[0].len);
            st->have_hash = 1;
        }
    }
    h2s_go(st, hs, n);
}

void h2s_go(struct h2s *st, const struct h2_header *hs, size_t n)
{
    struct gen_listener *gl = st->hc->gl;
    const struct cfg_rule *cr = route_rule_cfg(st->rr);
    if (build_up_head(st, hs, n) < 0) {
        h2s_local(st, 431, "request header too large after rewriting", OUTCOME_CLIENT_ERROR);
        return;
    }
    uint64_t tmo = cr->timeout_ms ? cr->timeout_ms : gl->cfg->request_timeout_ms;
    const struct h2_header *gt = st->grpc ? h2_header_get(hs, n, "grpc-timeout") : NULL;
    uint64_t gms;
    /* The caller's deadline, when sooner, is the request's timeout. */
    if (gt && grpc_parse_timeout(gt->value, gt->vlen, &gms) == 0 && gms < tmo)
        tmo = gms;
    st->deadline_ms = loop_now(st_loop(st)) + tmo;
    h2s_attempt(st);
}

/* ---- local answers ------------------------------------------------------- */

/* The response body source: bytes in respb, then the end. */
static ssize_t resp_read(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof, int *deferred)
{
    struct h2s *st = ud;
    (void)id;
    size_t have = buf_len(&st->respb);
    if (have == 0) {
        if (st->resp_done)
            *eof = 1;
        else
            *deferred = 1;
        return 0;
    }
    size_t n = have < len ? have : len;
    memcpy(buf, buf_start(&st->respb), n);
    buf_consume(&st->respb, (uint32_t)n);
    st->resp_bytes += n;
    if (st->resp_done && n == have)
        *eof = 1;
    /* Room again: the upstream side may go on. */
    if (st->up == H2S_UP_H2)
        h2u_consumed(st, n);
    else if (st->up == H2S_UP_H1)
        h2h1_update(st);
    return (ssize_t)n;
}

/* The gRPC status a refusal with HTTP status `status` becomes. */
static int grpc_refusal(int status, int outcome)
{
    switch (status) {
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
        return GRPC_RESOURCE_EXHAUSTED;
    case 504:
        return GRPC_DEADLINE_EXCEEDED;
    case 503:
        return outcome == OUTCOME_UNAVAILABLE ? GRPC_UNAVAILABLE : GRPC_RESOURCE_EXHAUSTED;
    default:
        return grpc_status_from_http(status);
    }
}

static void local_grpc(struct h2s *st, int code, const char *msg)
{
    struct grpc_error_response g;
    if (grpc_error_response(&g, code, msg) < 0)
        grpc_error_response(&g, GRPC_INTERNAL, msg);
    st->resp_status = 200;
    st->grpc_status = code;
    st->resp_done = 1;
    if (dn_respond(st, 200, g.headers, g.n, 0) < 0)
        dn_reset(st, H2_INTERNAL_ERROR);
}

static void local_http(struct h2s *st, int status, const char *msg)
{
    const struct cfg_rule *cr = st->rr ? route_rule_cfg(st->rr) : NULL;
    char body[256], clen[24];
    const char *ctype = "text/plain", *b;
    size_t bl;
    struct h2_header hs[64];
    size_t n = 0;
    if (!msg && cr && cr->direct.status) {
        b = cr->direct.body ? cr->direct.body : "";
        bl = strlen(b);
        ctype = cr->direct.content_type ? cr->direct.content_type : "text/plain";
        const struct cfg_header_ops *ops = &cr->response_headers;
        for (size_t i = 0; i < ops->nset && n < 30; i++)
            hs[n++] = (struct h2_header){ops->set[i].name, strlen(ops->set[i].name),
                                         ops->set[i].value, strlen(ops->set[i].value)};
        for (size_t i = 0; i < ops->nadd && n < 60; i++)
            hs[n++] = (struct h2_header){ops->add[i].name, strlen(ops->add[i].name),
                                         ops->add[i].value, strlen(ops->add[i].value)};
    } else {
        int k = snprintf(body, sizeof(body), "%s\n", msg ? msg : h1_status_reason(status));
        if (k >= (int)sizeof(body))
            k = sizeof(body) - 1;
        b = body;
        bl = (size_t)k;
    }
    char ra[16];
    if (status == 429 && st->retry_after) {
        int k = snprintf(ra, sizeof(ra), "%u", st->retry_after);
        hs[n++] = (struct h2_header){"retry-after", 11, ra, (size_t)k};
    }
    hs[n++] = (struct h2_header){"content-type", 12, ctype, strlen(ctype)};
    int cl = snprintf(clen, sizeof(clen), "%zu", bl);
    hs[n++] = (struct h2_header){"content-length", 14, clen, (size_t)cl};
    st->resp_status = status;
    buf_free(&st->respb);
    int nobody = bl == 0 || st->head_only || status == 204 || status == 304;
    if (!nobody && buf_put(&st->respb, b, bl) < 0)
        nobody = 1;
    st->resp_done = 1;
    if (dn_respond(st, status, hs, n, !nobody) < 0)
        dn_reset(st, H2_INTERNAL_ERROR);
}

/* The state every local answer starts from; 0 when the answer may be
 * submitted. */
static int local_begin(struct h2s *st, const char *msg, int outcome)
{
    if (st->ep >= 0)
        h2s_attempt_end(st, LB_OK, outcome); /* not the endpoint's fault */
    h2s_detach(st);
    h2s_unpend(st);
    loop_timer_cancel(st_loop(st), &st->timer);
    st->outcome = outcome;
    st->error = msg;
    st->state = H2S_DONE;
    if (st->reset_down)
        return -1;
    if (st->resp_submitted) {
        /* The head is gone already: only a reset can tell the client. */
        dn_reset(st, H2_INTERNAL_ERROR);
        return -1;
    }
    st->resp_submitted = 1;
    return 0;
}

void h2s_local_body(struct h2s *st, int status, const struct h2_header *hs, size_t n,
                    const char *body, size_t len, int grpc_code, const char *msg, int outcome)
{
    if (local_begin(st, msg, outcome) < 0)
        return;
    if (st->grpc && grpc_code >= 0) {
        local_grpc(st, grpc_code, msg);
        return;
    }
    struct h2_header out[66];
    char clen[24];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        out[k++] = hs[i];
    out[k++] = (struct h2_header){"content-length", 14, clen,
                                  (size_t)snprintf(clen, sizeof(clen), "%zu", len)};
    st->resp_status = status;
    buf_free(&st->respb);
    int nobody = len == 0 || st->head_only || status == 204 || status == 304;
    if (!nobody && buf_put(&st->respb, body, len) < 0)
        nobody = 1;
    st->resp_done = 1;
    if (dn_respond(st, status, out, k, !nobody) < 0)
        dn_reset(st, H2_INTERNAL_ERROR);
}

void h2s_local(struct h2s *st, int status, const char *msg, int outcome)
{
    if (local_begin(st, msg, outcome) < 0)
        return;
    if (st->grpc)
        local_grpc(st, grpc_refusal(status, outcome), msg);
    else
        local_http(st, status, msg);
}

/* ---- attempts ------------------------------------------------------------ */

void h2s_unpend(struct h2s *st)
{
    if (!st->pending)
        return;
    wlist_del(&st->pending_link);
    st->wc->npending--;
    atomic_fetch_sub_explicit(&st->wc->gc->lim->pending, 1, memory_order_relaxed);
    st->pending = 0;
}

void h2s_attempt_end(struct h2s *st, int kind, int outcome)
{
    if (st->ep < 0)
        return;
    http_attempt_books(st->hc->w, st->wc, st->ep, st->t_attempt_us, kind, outcome, 1);
    st->ep = -1;
}

void h2s_detach(struct h2s *st)
{
    if (st->up == H2S_UP_H2)
        h2u_detach(st);
    else if (st->up == H2S_UP_H1)
        h2h1_detach(st);
    st->up = H2S_UP_NONE;
}

static void arm(struct h2s *st)
{
    const struct cfg_rule *cr = route_rule_cfg(st->rr);
    uint64_t when = st->deadline_ms;
    uint64_t now = loop_now(st_loop(st));
    if (cr->retry.per_try_timeout_ms && now + cr->retry.per_try_timeout_ms < when)
        when = now + cr->retry.per_try_timeout_ms;
    loop_timer_arm(st_loop(st), &st->timer, when);
}

static void overflow(struct h2s *st, const char *what)
{
    snprintf(st->errbuf, sizeof(st->errbuf), "upstream overflow: cluster %s reached %s",
             st->wc->gc->cfg->name, what);
    metrics_add(st->hc->w->shard, st->wc->gc->m_overflow, 1);
    h2s_local(st, 503, st->errbuf, OUTCOME_SERVER_ERROR);
    st->outcome = OUTCOME_UNAVAILABLE;
}

/* Whether the whole request can still be sent again. */
static int replayable(const struct h2s *st)
{
    return st->replay && !st->resp_submitted;
}

static void pend(struct h2s *st)
{
    struct wcluster *wc = st->wc;
    if (atomic_load_explicit(&wc->gc->lim->pending, memory_order_relaxed) >=
        wc->gc->cfg->max_pending) {
        overflow(st, "maxConnections and maxPendingRequests");
        return;
    }
    st->pending = 1;
    wc->npending++;
    atomic_fetch_add_explicit(&wc->gc->lim->pending, 1, memory_order_relaxed);
    wlist_add_tail(&wc->pending_h2, &st->pending_link);
    loop_timer_arm(st_loop(st), &st->timer, st->deadline_ms);
}

void h2s_attempt(struct h2s *st)
{
    struct wcluster *wc = st->wc;
    uint64_t now = loop_now(st_loop(st));
    st->state = H2S_CONNECTING;
    st->req_off = 0;
    if (now >= st->deadline_ms) {
        h2s_local(st, 504, "upstream request timeout", OUTCOME_TIMEOUT);
        return;
    }
    if (atomic_load_explicit(&wc->gc->lim->active, memory_order_relaxed) >=
        wc->gc->cfg->max_requests) {
        overflow(st, "maxRequests");
        return;
    }
    int ep = lb_pick(wc->lb, st->hash, st->have_hash, st->tried, now);
    if (ep < 0) {
        h2s_local(st, 503, "no healthy upstream endpoint", OUTCOME_UNAVAILABLE);
        return;
    }
    int h2 = wc->gc->cfg->protocol == CFG_UPSTREAM_HTTP2;
    if (h2 ? !h2u_can_start(wc, ep) : (!uconn_has_idle(wc, ep) && !uconn_can_open(wc) &&
                                       !http_close_one_idle(wc))) {
        pend(st);
        return;
    }
    st->ep = ep;
    if (ep < 64)
        st->tried |= 1ull << ep;
    st->attempts++;
    lb_request_start(wc->lb, ep);
    wc->active++;
    atomic_fetch_add_explicit(&wc->gc->lim->active, 1, memory_order_relaxed);
    st->t_attempt_us = loop_now_us();
    st->state = H2S_EXCHANGE;
    arm(st);
    if ((h2 ? h2u_start(st) : h2h1_start(st)) < 0)
        h2s_attempt_failed(st, LB_CONNECT_FAIL, 0);
}

int h2s_slot_freed(struct wcluster *wc)
{
    static __thread int busy;
    if (busy || wlist_empty(&wc->pending_h2))
        return 0;
    struct h2s *st =
        (struct h2s *)((char *)wc->pending_h2.next - offsetof(struct h2s, pending_link));
    int h2 = wc->gc->cfg->protocol == CFG_UPSTREAM_HTTP2;
    int idle = 0;
    for (size_t i = 0; i < wc->gc->cfg->nendpoints && !idle; i++)
        idle = h2 ? h2u_can_start(wc, (int)i) : uconn_has_idle(wc, (int)i);
    if (!idle && !uconn_can_open(wc))
        return 0;
    busy = 1;
    struct hconn *hc = st->hc;
    h2s_unpend(st);
    loop_timer_cancel(st_loop(st), &st->timer);
    h2s_attempt(st);
    busy = 0;
    h2d_update(hc);
    return 1;
}

static void retry_start(struct h2s *st)
{
    if (!st->retrying) {
        st->retrying = 1;
        st->wc->retries_active++;
    }
    metrics_add(st->hc->w->shard, st->wc->gc->m_retries, 1);
    h2s_attempt(st);
}

static int retry_ok(struct h2s *st, unsigned trig)
{
    return http_retry_allowed(&route_rule_cfg(st->rr)->retry, st->wc, st->attempts,
                              st->retrying, trig);
}

void h2s_attempt_failed(struct h2s *st, int kind, int fresh)
{
    h2s_attempt_end(st, fresh ? LB_OK : kind, http_failure_outcome(kind));
    h2s_detach(st);
    loop_timer_cancel(st_loop(st), &st->timer);
    if (st->reset_down) {
        st->state = H2S_DONE;
        return;
    }
    if (replayable(st)) {
        if (fresh && st->attempts <= 1) {
            st->attempts--; /* the keep-alive race: not the route's retry */
            h2s_attempt(st);
            return;
        }
        if (retry_ok(st, http_failure_trigger(kind))) {
            retry_start(st);
            return;
        }
    }
    int status;
    const char *msg;
    http_failure_answer(kind, &status, &msg);
    h2s_local(st, status, msg, http_failure_outcome(kind));
}

void h2s_timeout(struct loop *l, struct loop_timer *t)
{
    struct h2s *st = t->ud;
    struct hconn *hc = st->hc;
    if (st->wf_wait) {
        st->wf_wait = 0;
        h2s_local(st, 504, "timed out waiting for a wasm filter to continue", OUTCOME_TIMEOUT);
    } else if (st->pending) {
        h2s_unpend(st);
        h2s_local(st, 504, "timed out waiting for an upstream connection", OUTCOME_TIMEOUT);
    } else if (!st->resp_head_done) {
        if (loop_now(l) >= st->deadline_ms) {
            /* The whole budget is spent: no retry; the upstream stream is
             * reset (CANCEL) by the detach. */
            h2s_attempt_end(st, LB_TIMEOUT, OUTCOME_TIMEOUT);
            h2s_local(st, 504, "upstream request timeout", OUTCOME_TIMEOUT);
        } else {
            h2s_attempt_failed(st, LB_TIMEOUT, 0);
        }
    }
    h2d_update(hc);
}

/* ---- the response -------------------------------------------------------- */

static int outcome_of_status(int status)
{
    return status >= 500 ? OUTCOME_SERVER_ERROR
           : status >= 400 ? OUTCOME_CLIENT_ERROR : OUTCOME_OK;
}

static int outcome_of_grpc(int code)
{
    switch (grpc_status_outcome(code)) {
    case GRPC_OUT_OK:
        return OUTCOME_OK;
    case GRPC_OUT_CLIENT_ERROR:
    case GRPC_OUT_DENIED:
        return OUTCOME_CLIENT_ERROR;
    case GRPC_OUT_TIMEOUT:
        return OUTCOME_TIMEOUT;
    case GRPC_OUT_UNAVAILABLE:
        return OUTCOME_UNAVAILABLE;
    default:
        return OUTCOME_SERVER_ERROR;
    }
}

/* Reads grpc-status from a header list (head of a trailers-only response,
 * or trailers) into st. */
static void take_grpc_status(struct h2s *st, const struct h2_header *hs, size_t n)
{
    const struct h2_header *g = h2_header_get(hs, n, "grpc-status");
    int code;
    if (g && grpc_parse_status(g->value, g->vlen, &code) == 0) {
        st->grpc_status = code;
        st->outcome = outcome_of_grpc(code);
    }
}

/* Fields for the client: the upstream's minus the route's removals, plus
 * its additions and via. Returns the count written to out. */
static size_t resp_fields(struct h2s *st, const struct h2_header *hs, size_t n,
                          struct h2_header *out, size_t cap)
{
    const struct cfg_header_ops *ops = &route_rule_cfg(st->rr)->response_headers;
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap - 32; i++) {
        if (ops_drop(ops, hs[i].name, hs[i].nlen))
            continue;
        out[k++] = hs[i];
    }
    for (size_t i = 0; i < ops->nset && k < cap - 16; i++)
        out[k++] = (struct h2_header){ops->set[i].name, strlen(ops->set[i].name),
                                      ops->set[i].value, strlen(ops->set[i].value)};
    for (size_t i = 0; i < ops->nadd && k < cap - 1; i++)
        out[k++] = (struct h2_header){ops->add[i].name, strlen(ops->add[i].name),
                                      ops->add[i].value, strlen(ops->add[i].value)};
    return k;
}

void h2s_release_replay(struct h2s *st)
{
    if (!st->replay)
        return;
    st->replay = 0;
    if (st->req_off) {
        buf_consume(&st->reqb, st->req_off);
        dn_consume(st, st->req_off);
        st->req_off = 0;
    }
}

int h2s_response(struct h2s *st, int status, const struct h2_header *hs, size_t n, int end)
{
    if (st->wf && !st->reset_down && h2_wf_response(st, &status, &hs, &n) < 0)
        return -1;
    unsigned trig = 0;
    if (status >= 500)
        trig |= CFG_RETRY_5XX;
    if (status == 502 || status == 503 || status == 504)
        trig |= CFG_RETRY_GATEWAY_ERROR;
    const struct h2_header *g = st->grpc ? h2_header_get(hs, n, "grpc-status") : NULL;
    int gcode = -1;
    if (g && grpc_parse_status(g->value, g->vlen, &gcode) == 0 && gcode == GRPC_UNAVAILABLE)
        trig |= CFG_RETRY_UNAVAILABLE;
    if (trig && replayable(st) && st->req_done && !st->reset_down && retry_ok(st, trig)) {
        h2s_attempt_end(st, LB_5XX, OUTCOME_SERVER_ERROR);
        h2s_detach(st);
        loop_timer_cancel(st_loop(st), &st->timer);
        retry_start(st);
        return -1;
    }
    st->resp_head_done = 1;
    st->resp_status = status;
    st->outcome = outcome_of_status(status);
    if (st->grpc)
        take_grpc_status(st, hs, n);
    int unhealthy = status >= 500 || gcode == GRPC_UNAVAILABLE;
    /* The endpoint's books close with the head, but a stream keeps counting
     * against maxRequests until it ends: on an HTTP/2 cluster nothing else
     * bounds how many run at once. */
    http_attempt_books(st->hc->w, st->wc, st->ep, st->t_attempt_us,
                       unhealthy ? LB_5XX : LB_OK, st->outcome, 0);
    st->ep = -1;
    st->holds_active = 1;
    loop_timer_cancel(st_loop(st), &st->timer);
    h2s_release_replay(st);
    if (st->reset_down)
        return 0;
    struct h2_header out[UP_MAX_FIELDS];
    size_t k = resp_fields(st, hs, n, out, UP_MAX_FIELDS);
    if (st->hc->gl->cfg->via && k < UP_MAX_FIELDS)
        out[k++] = st->h1 ? (struct h2_header){"via", 3, "1.1 strand", 10}
                          : (struct h2_header){"via", 3, "2 strand", 8};
    int nobody = end || st->head_only || status == 204 || status == 304;
    if (end)
        st->resp_done = 1;
    st->resp_submitted = 1;
    if (dn_respond(st, status, out, k, !nobody) < 0) {
        log_debug("listener %s: cannot forward response %d: invalid header list",
                  st->hc->gl->cfg->name, status);
        st->outcome = OUTCOME_SERVER_ERROR;
        dn_reset(st, H2_INTERNAL_ERROR);
    }
    return 0;
}

void h2s_resp_data(struct h2s *st, const uint8_t *p, size_t len)
{
    if (st->reset_down || st->head_only)
        return;
    if (st->wf && h2_wf_resp_body(st, p, len, 0) < 0)
        return;
    if (buf_put(&st->respb, p, len) < 0) {
        /* Cannot happen while the windows equal the block size. */
        h2s_resp_abort(st, H2_INTERNAL_ERROR);
        return;
    }
    dn_resume(st);
}

void h2s_resp_end(struct h2s *st, const struct h2_header *trl, size_t n)
{
    if (st->resp_done)
        return;
    if (st->wf && !st->reset_down && !st->head_only && h2_wf_resp_body(st, NULL, 0, 1) < 0)
        return;
    st->resp_done = 1;
    st->state = H2S_DONE;
    /* Filters first: the status counted is the one the client gets. */
    if (st->wf && trl && n > 0 && !st->reset_down && h2_wf_trailers(st, &trl, &n) < 0)
        return;
    if (st->grpc && trl)
        take_grpc_status(st, trl, n);
    if (st->reset_down)
        return;
    if (trl && n > 0) {
        struct h2_header out[UP_MAX_FIELDS];
        size_t k = 0;
        for (size_t i = 0; i < n && k < UP_MAX_FIELDS; i++)
            out[k++] = trl[i];
        if (dn_trailers(st, out, k) == 0)
            st->trailers_sent = 1;
    }
    dn_resume(st);
}

void h2s_resp_abort(struct h2s *st, uint32_t code)
{
    st->outcome = OUTCOME_RESET;
    st->state = H2S_DONE;
    h2s_detach(st);
    if (!st->reset_down)
        dn_reset(st, code);
    st->reset_down = 1;
}

void h2s_req_taken(struct h2s *st, size_t n)
{
    if (st->replay) {
        st->req_off += (uint32_t)n;
        return;
    }
    buf_consume(&st->reqb, (uint32_t)n);
    dn_consume(st, n);
}

ssize_t h2s_req_read(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof, int *deferred)
{
    struct h2s *st = ud;
    (void)id;
    size_t off = st->replay ? st->req_off : 0;
    size_t have = buf_len(&st->reqb) - off;
    if (have == 0) {
        if (st->req_done)
            *eof = 1;
        else
            *deferred = 1;
        return 0;
    }
    size_t n = have < len ? have : len;
    memcpy(buf, buf_start(&st->reqb) + off, n);
    h2s_req_taken(st, n);
    if (st->req_done && n == have)
        *eof = 1;
    return (ssize_t)n;
}

/* ---- the end ------------------------------------------------------------- */

void h2s_finish(struct h2s *st)
{
    struct hconn *hc = st->hc;
    struct worker *w = hc->w;
    /* Filters see the end (proxy_on_done, on_log) while hc is alive. */
    wf_stream_free(st->wf);
    st->wf = NULL;
    st->wf_wait = 0;
    h2s_detach(st);
    h2s_unpend(st);
    loop_timer_cancel(w->loop, &st->timer);
    if (st->ep >= 0)
        h2s_attempt_end(st, LB_RESET, OUTCOME_RESET);
    if (st->retrying)
        st->wc->retries_active--;
    if (st->holds_active)
        http_active_release(st->wc);
    if (st->reset_down && !st->resp_done && st->outcome == OUTCOME_OK)
        st->outcome = OUTCOME_CLIENT_ERROR; /* the client gave up */
    uint64_t dur = loop_now_us() - st->t_start_us;
    int status = st->resp_status;
    if (status >= 100 && status < 600)
        metrics_add(w->shard, st->stats->code[status / 100], 1);
    metrics_observe(w->shard, st->stats->duration, dur);
    if (st->grpc && st->grpc_status >= 0)
        metrics_add(w->shard, gen_stats_grpc(st->stats, st->grpc_status), 1);
    metrics_add(w->shard, hc->gl->m_bytes_out, st->resp_bytes);
    if (!w->alog)
        return;
    struct alog_rec rec = {0};
    rec.start_ms = unix_ms();
    rec.duration_us = dur;
    rec.protocol = st->grpc ? ALOG_GRPC : st->h1 ? ALOG_HTTP : ALOG_HTTP2;
    rec.listener = alog_cstr(hc->gl->cfg->name);
    if (st->rr)
        rec.route = alog_cstr(hc->gl->rules[route_rule_index(st->rr)].name);
    if (st->wc)
        rec.cluster = alog_cstr(st->wc->gc->cfg->name);
    rec.source = alog_cstr(hc->peer_ip);
    rec.method = alog_cstr(st->method);
    rec.authority = alog_cstr(st->authority);
    rec.path = alog_cstr(st->path);
    rec.status = status;
    rec.outcome = st->denied ? ALOG_DENIED : outcome_alog[st->outcome];
    rec.bytes_in = st->req_bytes;
    rec.bytes_out = st->resp_bytes;
    rec.request_id = alog_cstr(st->request_id[0] ? st->request_id : NULL);
    rec.user_agent = alog_cstr(st->user_agent);
    rec.reason = alog_cstr(st->error);
    rec.retries = st->attempts > 1 ? st->attempts - 1 : 0;
    rec.has_grpc_status = st->grpc && st->grpc_status >= 0;
    rec.grpc_status = st->grpc_status;
    alog_write(w->alog, &rec);
}
