/* wasm_call.c - proxy_http_call: a filter's own HTTP/1.1 request to a
 * cluster of the generation (an auth service, a policy server).
 *
 * One call is one request on a connection from the cluster's keep-alive
 * pool (or a new one), to the endpoint the cluster's load balancer picks.
 * The answer is read whole (at most WF_CALL_MAX_BODY bytes of body, any
 * framing) and handed back through the done callback, which delivers it to
 * the filter (proxy_on_http_call_response); a failure, the call's timeout
 * or an oversized answer is delivered as a failed call (no headers). */
#include "proxy/wasm_call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/http1/h1.h"
#include "proxy/lb.h"
#include "proxy/upstream.h"

#define WF_CALL_MAX_BODY (1u << 20)
#define WF_CALL_MAX_HEADERS 100
#define WF_CALL_DEFAULT_MS 5000

struct wf_call {
    struct wcluster *wc;
    struct uconn *uc;
    int ep;
    uint64_t t_start_us;
    struct loop_timer timer;
    uint32_t token;
    wf_call_done_fn done;
    void *ud;
    char *req;               /* the request, head and body */
    size_t req_len, req_sent;
    /* The answer. */
    int head_done;
    int status;
    enum h1_body_kind kind;
    uint64_t left;           /* H1_BODY_LENGTH: bytes still to come */
    struct h1_chunked ch;
    int keepalive;
    char *head;              /* the response head, kept for its fields */
    struct h1_header hs[WF_CALL_MAX_HEADERS];
    size_t nhs;
    uint8_t *body;
    size_t body_len, body_cap;
    struct wf_call **link;   /* the owner's pointer to this call, cleared at the end */
};

static const struct uconn_ops call_ops;

static void call_free(struct wf_call *c)
{
    free(c->req);
    free(c->head);
    free(c->body);
    free(c);
}

/* Ends the call: the answer (ok) or a failure to the owner, the
 * connection back to the pool when it can carry another request. */
static void call_end(struct wf_call *c, int ok)
{
    struct loop *l = c->wc->wg->w->loop;
    loop_timer_cancel(l, &c->timer);
    if (c->uc) {
        uconn_release(c->uc, ok && c->keepalive);
        c->uc = NULL;
    }
    if (c->ep >= 0) {
        lb_request_end(c->wc->lb, c->ep, ok ? LB_OK : LB_RESET, loop_now_us() - c->t_start_us,
                       loop_now(l));
        c->ep = -1;
    }
    struct wf_call_answer a = {0};
    struct pw_kv kv[WF_CALL_MAX_HEADERS + 1];
    char st[8];
    if (ok) {
        snprintf(st, sizeof(st), "%03d", c->status % 1000);
        kv[a.nheaders++] = (struct pw_kv){":status", 7, st, 3};
        for (size_t i = 0; i < c->nhs; i++)
            kv[a.nheaders++] = (struct pw_kv){c->hs[i].name.p, c->hs[i].name.len,
                                              c->hs[i].value.p, c->hs[i].value.len};
        a.headers = kv;
        a.body = c->body;
        a.body_len = c->body_len;
    }
    if (c->link)
        *c->link = NULL;
    c->done(c->ud, c->token, &a);
    call_free(c);
}

static int body_put(struct wf_call *c, const char *p, size_t n)
{
    if (c->body_len + n > WF_CALL_MAX_BODY)
        return -1;
    if (c->body_len + n > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + n)
            cap *= 2;
        uint8_t *b = realloc(c->body, cap);
        if (!b)
            return -1;
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    return 0;
}

/* The response head in uc->in: 1 parsed, 0 need more, -1 bad. */
static int read_head(struct wf_call *c)
{
    struct uconn *uc = c->uc;
    for (;;) {
        if (buf_len(&uc->in) == 0)
            return 0;
        struct h1_response r;
        memset(&r, 0, sizeof(r));
        r.headers = c->hs;
        int n = h1_parse_response(buf_start(&uc->in), buf_len(&uc->in), &r, WF_CALL_MAX_HEADERS,
                                  buf_block_size(), 0);
        if (n == H1_INCOMPLETE)
            return buf_full(&uc->in) ? -1 : 0;
        if (n < 0)
            return -1;
        if (r.status < 200) { /* 100 Continue and friends */
            buf_consume(&uc->in, (uint32_t)n);
            continue;
        }
        /* The fields point into uc->in, which moves on: keep a copy. */
        if (!(c->head = malloc((size_t)n)))
            return -1;
        memcpy(c->head, buf_start(&uc->in), (size_t)n);
        for (size_t i = 0; i < r.nheaders; i++) {
            c->hs[i].name.p = c->head + (c->hs[i].name.p - buf_start(&uc->in));
            c->hs[i].value.p = c->head + (c->hs[i].value.p - buf_start(&uc->in));
        }
        c->nhs = r.nheaders;
        c->status = r.status;
        c->kind = r.body;
        c->left = r.content_length;
        c->keepalive = (r.flags & H1_F_KEEPALIVE) != 0;
        buf_consume(&uc->in, (uint32_t)n);
        c->head_done = 1;
        return 1;
    }
}

/* Body bytes in uc->in: 1 the answer is complete, 0 need more, -1 bad. */
static int read_body(struct wf_call *c)
{
    struct uconn *uc = c->uc;
    switch (c->kind) {
    case H1_BODY_NONE:
        return 1;
    case H1_BODY_LENGTH: {
        size_t n = buf_len(&uc->in) < c->left ? buf_len(&uc->in) : (size_t)c->left;
        if (n && body_put(c, buf_start(&uc->in), n) < 0)
            return -1;
        buf_consume(&uc->in, (uint32_t)n);
        c->left -= n;
        return c->left == 0;
    }
    case H1_BODY_CHUNKED:
        while (!h1_chunked_done(&c->ch) && buf_len(&uc->in) > 0) {
            const char *d;
            size_t dl;
            int k = h1_chunked_decode(&c->ch, buf_start(&uc->in), buf_len(&uc->in), &d, &dl);
            if (k < 0 || (dl && body_put(c, d, dl) < 0))
                return -1;
            if (k == 0)
                break;
            buf_consume(&uc->in, (uint32_t)k);
        }
        return h1_chunked_done(&c->ch);
    case H1_BODY_UNTIL_CLOSE:
        if (buf_len(&uc->in) && body_put(c, buf_start(&uc->in), buf_len(&uc->in)) < 0)
            return -1;
        buf_consume(&uc->in, buf_len(&uc->in));
        return 0; /* done at end of stream */
    }
    return -1;
}

static void call_run(struct wf_call *c)
{
    struct uconn *uc = c->uc;
    while (c->req_sent < c->req_len) {
        struct iovec iov = {c->req + c->req_sent, c->req_len - c->req_sent};
        ssize_t w = sio_writev(&uc->sio, &iov, 1);
        if (w < 0) {
            if (errno == EAGAIN) {
                uconn_want(uc, LOOP_WRITE | uc->sio.want);
                return;
            }
            call_end(c, 0);
            return;
        }
        c->req_sent += (size_t)w;
    }
    for (;;) {
        int r = c->head_done ? 1 : read_head(c);
        if (r == 1)
            r = read_body(c);
        if (r < 0) {
            call_end(c, 0);
            return;
        }
        if (r == 1 && c->head_done) {
            call_end(c, 1);
            return;
        }
        ssize_t n = sio_read_buf(&uc->sio, &uc->in);
        if (n == 0) {
            /* End of stream: only an until-close body ends this way. */
            c->keepalive = 0;
            call_end(c, c->head_done && c->kind == H1_BODY_UNTIL_CLOSE);
            return;
        }
        if (n < 0 && n != -2) {
            if (errno == EAGAIN) {
                uconn_want(uc, LOOP_READ | uc->sio.want);
                return;
            }
            call_end(c, 0);
            return;
        }
    }
}

static void call_connected(void *owner, struct uconn *uc, int err)
{
    struct wf_call *c = owner;
    if (err) {
        c->uc = NULL; /* already closed */
        call_end(c, 0);
        return;
    }
    call_run(c);
}

static void call_io(void *owner, struct uconn *uc, unsigned events) { call_run(owner); }

static const struct uconn_ops call_ops = {call_connected, call_io};

static void call_timeout(struct loop *l, struct loop_timer *t)
{
    struct wf_call *c = t->ud;
    c->keepalive = 0;
    call_end(c, 0);
}

static bool kv_is(const struct pw_kv *kv, const char *name)
{
    size_t n = strlen(name);
    return kv->key_len == n && strncasecmp(kv->key, name, n) == 0;
}

/* The request as HTTP/1.1 bytes: the pseudo-headers become the request
 * line and Host; framing is the proxy's (content-length of the body). */
static char *build_request(const struct pw_http_call *call, size_t *len)
{
    const struct pw_kv *method = NULL, *path = NULL, *auth = NULL;
    size_t cap = 64 + call->body_len;
    for (size_t i = 0; i < call->nheaders; i++) {
        const struct pw_kv *kv = &call->headers[i];
        cap += kv->key_len + kv->value_len + 4;
        if (kv_is(kv, ":method"))
            method = kv;
        else if (kv_is(kv, ":path"))
            path = kv;
        else if (kv_is(kv, ":authority"))
            auth = kv;
    }
    char *b = malloc(cap);
    if (!b || !method || !path || !auth) {
        free(b);
        return NULL;
    }
    size_t o = (size_t)sprintf(b, "%.*s %.*s HTTP/1.1\r\nhost: %.*s\r\n", (int)method->value_len,
                               method->value, (int)path->value_len, path->value,
                               (int)auth->value_len, auth->value);
    for (size_t i = 0; i < call->nheaders; i++) {
        const struct pw_kv *kv = &call->headers[i];
        if (kv->key_len == 0 || kv->key[0] == ':' || kv_is(kv, "host") ||
            kv_is(kv, "content-length") || kv_is(kv, "transfer-encoding") ||
            kv_is(kv, "connection"))
            continue;
        o += (size_t)sprintf(b + o, "%.*s: %.*s\r\n", (int)kv->key_len, kv->key,
                             (int)kv->value_len, kv->value);
    }
    o += (size_t)sprintf(b + o, "content-length: %zu\r\n\r\n", call->body_len);
    if (call->body_len)
        memcpy(b + o, call->body, call->body_len);
    *len = o + call->body_len;
    return b;
}

int wf_call_start(struct wgen *wg, const struct pw_http_call *call, uint32_t token,
                  wf_call_done_fn done, void *ud, struct wf_call **link)
{
    char name[256];
    if (call->cluster_len == 0 || call->cluster_len >= sizeof(name))
        return PW_BAD_ARGUMENT;
    memcpy(name, call->cluster, call->cluster_len);
    name[call->cluster_len] = 0;
    int ci = gen_cluster_index(wg->gen, name);
    if (ci < 0 || wg->gen->clusters[ci].cfg->protocol != CFG_UPSTREAM_HTTP1)
        return PW_BAD_ARGUMENT;
    struct wcluster *wc = &wg->clusters[ci];
    struct loop *l = wg->w->loop;
    int ep = lb_pick(wc->lb, 0, 0, 0, loop_now(l));
    if (ep < 0)
        return PW_INTERNAL_FAILURE;
    struct wf_call *c = calloc(1, sizeof(*c));
    if (!c)
        return PW_INTERNAL_FAILURE;
    if (!(c->req = build_request(call, &c->req_len))) {
        free(c);
        return PW_BAD_ARGUMENT;
    }
    c->wc = wc;
    c->token = token;
    c->done = done;
    c->ud = ud;
    c->link = link;
    c->ep = -1;
    c->timer.cb = call_timeout;
    c->timer.ud = c;
    int ready = 0;
    c->uc = uconn_get(wc, ep, &call_ops, c, &ready);
    if (!c->uc) {
        call_free(c);
        return PW_INTERNAL_FAILURE;
    }
    c->ep = ep;
    c->t_start_us = loop_now_us();
    lb_request_start(wc->lb, ep);
    *link = c;
    uint32_t ms = call->timeout_ms ? call->timeout_ms : WF_CALL_DEFAULT_MS;
    loop_timer_arm(l, &c->timer, loop_now(l) + ms);
    if (ready)
        uconn_want(c->uc, LOOP_WRITE); /* the io callback sends it */
    return PW_OK;
}

void wf_call_cancel(struct wf_call *c)
{
    if (!c)
        return;
    loop_timer_cancel(c->wc->wg->w->loop, &c->timer);
    if (c->uc)
        uconn_close(c->uc);
    if (c->ep >= 0)
        lb_request_end(c->wc->lb, c->ep, LB_RESET, loop_now_us() - c->t_start_us,
                       loop_now(c->wc->wg->w->loop));
    if (c->link)
        *c->link = NULL;
    call_free(c);
}
