/* wasm_grpc.c - proxy_grpc_call / proxy_grpc_stream: a filter's gRPC call
 * to an http2 cluster of the generation (an authorization or rate-limit
 * service, a log sink).
 *
 * A call is one stream (struct h2u_stream) on the cluster's pooled HTTP/2
 * sessions, to the endpoint its load balancer picks, so calls share the
 * connections the proxied requests use. The session reports the answer
 * from inside its socket events; a call only stores it there (metadata
 * copies, message bytes) and arms its `kick` timer, whose callback hands
 * the pieces to the owner (the filter's VM) from a clean stack: a filter
 * call never runs inside h2_feed, and a filter may start, send on or
 * cancel calls from its callbacks. Message bytes are consumed (the
 * window reopened) as they are copied, at most WF_GRPC_MAX_BUF held. */
#include "proxy/wasm_grpc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/http2/grpc.h"
#include "proxy/gen.h"
#include "proxy/h2_up.h"
#include "proxy/lb.h"

#define WF_GRPC_DEFAULT_MS 5000

/* A metadata list the call owns: pairs pointing into one block. */
struct wf_md {
    struct pw_kv *kv;
    size_t n;
};

struct wf_grpc {
    struct h2u_stream us;        /* first: the session's stream_ud */
    struct wcluster *wc;
    int ep;                      /* the endpoint's LB books are open, or -1 */
    uint64_t t_start_us;
    uint32_t token;
    bool stream;                 /* proxy_grpc_stream */
    const struct wf_grpc_sink *sink;
    void *ud;
    struct wf_grpc **link;       /* the owner's pointer, cleared when freed */
    struct loop_timer deadline, kick;
    /* The request: head, then framed messages not yet taken by the session. */
    struct h2_header *head;
    size_t nhead;
    uint8_t *req;
    size_t req_len, req_off, req_cap;
    bool req_end;                /* no message follows */
    /* The answer. */
    int http_status;             /* 0 until the head came */
    bool trailers_only;          /* the head ended the stream */
    bool initial_sent;
    struct wf_md initial, trailing;
    bool has_trailing;
    uint8_t *resp;               /* framed messages, from resp_off on undelivered */
    size_t resp_len, resp_off, resp_cap;
    bool done;                   /* the close below is decided */
    uint32_t status;
    char *text;                  /* the status message (malloc'd), or NULL */
    size_t text_len;
    bool in_cb, cancelled;       /* a sink callback runs / was cancelled from it */
};

static struct loop *g_loop(const struct wf_grpc *c) { return c->wc->wg->w->loop; }

/* ---- small pieces -------------------------------------------------------- */

/* Appends n bytes at p to the growing block *b (len, cap), at most max in
 * all. 0, or -1 over max or without memory. */
static int bytes_add(uint8_t **b, size_t *len, size_t *cap, const void *p, size_t n, size_t max)
{
    if (*len + n > max)
        return -1;
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 1024;
        while (nc < *len + n)
            nc *= 2;
        uint8_t *nb = realloc(*b, nc);
        if (!nb)
            return -1;
        *b = nb;
        *cap = nc;
    }
    if (n)
        memcpy(*b + *len, p, n);
    *len += n;
    return 0;
}

/* Copies the session's fields hs (borrowed) into md (one allocation); 0 or -1. */
static int md_copy(struct wf_md *md, const struct h2_header *hs, size_t n)
{
    size_t size = n * sizeof(struct pw_kv) + 1;
    for (size_t i = 0; i < n; i++)
        size += hs[i].nlen + hs[i].vlen + 2;
    char *mem = malloc(size);
    if (!mem)
        return -1;
    struct pw_kv *kv = (struct pw_kv *)(void *)mem;
    char *p = mem + n * sizeof(struct pw_kv);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, hs[i].name, hs[i].nlen);
        p[hs[i].nlen] = 0;
        char *v = p + hs[i].nlen + 1;
        memcpy(v, hs[i].value, hs[i].vlen);
        v[hs[i].vlen] = 0;
        kv[i] = (struct pw_kv){p, hs[i].nlen, v, hs[i].vlen};
        p = v + hs[i].vlen + 1;
    }
    free(md->kv);
    md->kv = kv;
    md->n = n;
    return 0;
}

/* The value of field name in md, or NULL (length in *len). */
static const char *md_get(const struct wf_md *md, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < md->n; i++)
        if (md->kv[i].key_len == nl && memcmp(md->kv[i].key, name, nl) == 0) {
            *len = md->kv[i].value_len;
            return md->kv[i].value;
        }
    return NULL;
}

/* Appends one framed message (the 5-byte gRPC prefix, then msg). */
static int frame_add(struct wf_grpc *c, const uint8_t *msg, size_t len)
{
    uint8_t pre[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    if (len > UINT32_MAX || bytes_add(&c->req, &c->req_len, &c->req_cap, pre, 5, SIZE_MAX) ||
        bytes_add(&c->req, &c->req_len, &c->req_cap, msg, len, SIZE_MAX))
        return -1;
    return 0;
}

/* ---- the end of a call --------------------------------------------------- */

static void call_free(struct wf_grpc *c)
{
    h2u_stream_detach(&c->us);
    loop_timer_cancel(g_loop(c), &c->deadline);
    loop_timer_cancel(g_loop(c), &c->kick);
    if (c->ep >= 0)
        lb_request_end(c->wc->lb, c->ep, LB_RESET, loop_now_us() - c->t_start_us,
                       loop_now(g_loop(c)));
    if (c->link)
        *c->link = NULL;
    free(c->head);
    free(c->req);
    free(c->resp);
    free(c->initial.kv);
    free(c->trailing.kv);
    free(c->text);
    free(c);
}

static void kick(struct wf_grpc *c)
{
    if (!loop_timer_armed(&c->kick))
        loop_timer_arm(g_loop(c), &c->kick, loop_now(g_loop(c)));
}

/* Decides the close: status and message (msg borrowed, len bytes, copied).
 * The stream leaves its session; what was received stays for delivery. */
static void finish(struct wf_grpc *c, uint32_t status, const char *msg, size_t len, int lbkind)
{
    if (c->done)
        return;
    c->done = true;
    c->status = status;
    if (len && (c->text = malloc(len)) != NULL) {
        memcpy(c->text, msg, len);
        c->text_len = len;
    }
    h2u_stream_detach(&c->us);
    loop_timer_cancel(g_loop(c), &c->deadline);
    if (c->ep >= 0) {
        lb_request_end(c->wc->lb, c->ep, lbkind, loop_now_us() - c->t_start_us,
                       loop_now(g_loop(c)));
        c->ep = -1;
    }
    kick(c);
}

static void fail(struct wf_grpc *c, uint32_t status, const char *why, int lbkind)
{
    finish(c, status, why, strlen(why), lbkind);
}

/* Whether the undelivered bytes are whole, uncompressed messages (the
 * check at the end of the answer). */
static bool framing_ok(const struct wf_grpc *c)
{
    size_t off = c->resp_off;
    while (off < c->resp_len) {
        const uint8_t *p = c->resp + off;
        if (c->resp_len - off < 5 || p[0] != 0)
            return false;
        size_t n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
        if (c->resp_len - off - 5 < n)
            return false;
        off += 5 + n;
    }
    return true;
}

/* The answer ended: with trailers (md: initial or trailing copy) or
 * without any. Reads grpc-status and grpc-message. */
static void answer_end(struct wf_grpc *c, const struct wf_md *md)
{
    size_t sl = 0, ml = 0;
    const char *sv = md ? md_get(md, "grpc-status", &sl) : NULL;
    const char *mv = md ? md_get(md, "grpc-message", &ml) : NULL;
    int code;
    if (c->http_status != 200) {
        char why[48];
        snprintf(why, sizeof(why), "upstream answered HTTP %d", c->http_status);
        fail(c, (uint32_t)grpc_status_from_http(c->http_status), why,
             c->http_status >= 500 ? LB_5XX : LB_OK);
    } else if (!sv || grpc_parse_status(sv, sl, &code) != 0) {
        fail(c, GRPC_INTERNAL, "the answer has no valid grpc-status", LB_OK);
    } else if (!framing_ok(c)) {
        fail(c, GRPC_INTERNAL, "malformed gRPC message framing (or a compressed message)",
             LB_OK);
    } else {
        /* Decoding never lengthens the message. */
        char *text = malloc(ml ? ml : 1);
        ssize_t tl = text && mv ? grpc_message_decode(mv, ml, text, ml) : 0;
        finish(c, (uint32_t)code, text, tl > 0 ? (size_t)tl : 0, LB_OK);
        free(text);
    }
}

/* The next whole message after resp_off (not consumed), or 0. Malformed
 * or compressed frames wait for the end-of-answer check. */
static int next_message(struct wf_grpc *c, const uint8_t **msg, size_t *len)
{
    size_t have = c->resp_len - c->resp_off;
    const uint8_t *p = c->resp + c->resp_off;
    if (have < 5 || p[0] != 0)
        return 0;
    size_t n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    if (have - 5 < n)
        return 0;
    *msg = p + 5;
    *len = n;
    return 1;
}

/* Hands what came so far to the owner (the kick timer). */
static void deliver(struct loop *l, struct loop_timer *t)
{
    struct wf_grpc *c = t->ud;
    const struct wf_grpc_sink *k = c->sink;
    bool grpc_body = c->http_status == 200 && !c->trailers_only;
    (void)l;
    c->in_cb = true;
    if (c->http_status && !c->trailers_only && !c->initial_sent) {
        c->initial_sent = true;
        k->initial(c->ud, c->token, c->initial.kv, c->initial.n);
        if (c->cancelled)
            goto gone;
    }
    const uint8_t *msg;
    size_t len;
    while (grpc_body && next_message(c, &msg, &len)) {
        c->resp_off += 5 + len;
        k->message(c->ud, c->token, msg, len);
        if (c->cancelled)
            goto gone;
    }
    if (c->resp_off == c->resp_len)
        c->resp_off = c->resp_len = 0; /* everything delivered: reuse the block */
    if (!c->done) {
        c->in_cb = false;
        return;
    }
    if (c->has_trailing) {
        const struct wf_md *md = c->trailers_only ? &c->initial : &c->trailing;
        k->trailing(c->ud, c->token, md->kv, md->n);
        if (c->cancelled)
            goto gone;
    }
    k->close(c->ud, c->token, c->status, c->text, c->text_len);
gone:
    call_free(c);
}

static void on_deadline(struct loop *l, struct loop_timer *t)
{
    (void)l;
    fail(t->ud, GRPC_DEADLINE_EXCEEDED, "deadline exceeded", LB_TIMEOUT);
}

/* ---- the stream's events (h2_up.c) ---------------------------------------- */

#define CALL_OF(us) ((struct wf_grpc *)(void *)(us))

static ssize_t body_read(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof,
                         int *deferred)
{
    struct wf_grpc *c = ud;
    size_t have = c->req_len - c->req_off;
    (void)id;
    size_t n = have < len ? have : len;
    if (n)
        memcpy(buf, c->req + c->req_off, n);
    c->req_off += n;
    if (c->req_off == c->req_len) {
        c->req_off = c->req_len = 0;
        if (c->req_end)
            *eof = 1;
        else if (n == 0)
            *deferred = 1; /* wf_grpc_send resumes it */
    }
    return (ssize_t)n;
}

static int32_t g_submit(struct h2u_stream *us, struct h2_session *s)
{
    struct wf_grpc *c = CALL_OF(us);
    return h2_submit_request(s, c->head, c->nhead, body_read, c, us);
}

static void g_response(struct h2u_stream *us, int status, const struct h2_header *hs, size_t n,
                       int end)
{
    struct wf_grpc *c = CALL_OF(us);
    c->http_status = status;
    if (md_copy(&c->initial, hs, n) != 0) {
        fail(c, GRPC_INTERNAL, "out of memory", LB_OK);
        return;
    }
    if (end) {
        /* Trailers-only: the head carries grpc-status (or nothing). */
        c->trailers_only = true;
        c->has_trailing = true;
        answer_end(c, &c->initial);
        return;
    }
    size_t cl;
    const char *ct = md_get(&c->initial, "content-type", &cl);
    if (status == 200 && (!ct || !grpc_is_content_type(ct, cl))) {
        fail(c, GRPC_INTERNAL, "the answer is not gRPC (content-type)", LB_OK);
        return;
    }
    kick(c);
}

static void g_data(struct h2u_stream *us, const uint8_t *p, size_t len)
{
    struct wf_grpc *c = CALL_OF(us);
    if (bytes_add(&c->resp, &c->resp_len, &c->resp_cap, p, len, WF_GRPC_MAX_BUF) != 0) {
        fail(c, GRPC_RESOURCE_EXHAUSTED, "answer too large", LB_OK);
        return;
    }
    h2u_stream_consumed(us, len);
    kick(c);
}

static void g_end(struct h2u_stream *us, const struct h2_header *hs, size_t n)
{
    struct wf_grpc *c = CALL_OF(us);
    if (hs) {
        if (md_copy(&c->trailing, hs, n) != 0) {
            fail(c, GRPC_INTERNAL, "out of memory", LB_OK);
            return;
        }
        c->has_trailing = true;
        answer_end(c, &c->trailing);
        return;
    }
    answer_end(c, NULL); /* ended without trailers: no grpc-status */
}

/* The gRPC status for a stream reset with an HTTP/2 error code (gRPC's
 * PROTOCOL-HTTP2 mapping). */
static uint32_t reset_status(uint32_t code)
{
    switch (code) {
    case H2_REFUSED_STREAM: return GRPC_UNAVAILABLE;
    case H2_CANCEL: return GRPC_CANCELLED;
    case H2_ENHANCE_YOUR_CALM: return GRPC_RESOURCE_EXHAUSTED;
    case H2_INADEQUATE_SECURITY: return GRPC_PERMISSION_DENIED;
    default: return GRPC_INTERNAL;
    }
}

static void g_lost(struct h2u_stream *us, int kind, int fresh, uint32_t code)
{
    struct wf_grpc *c = CALL_OF(us);
    (void)fresh;
    if (kind == LB_CONNECT_FAIL)
        fail(c, GRPC_UNAVAILABLE, "cannot connect to the upstream", kind);
    else if (!c->http_status)
        fail(c, GRPC_UNAVAILABLE, "the upstream closed the stream before answering", kind);
    else
        fail(c, reset_status(code), "the upstream reset the stream", kind);
}

static const struct h2u_stream_ops g_ops = {.submit = g_submit, .response = g_response,
                                            .data = g_data, .end = g_end, .lost = g_lost};

/* ---- starting ------------------------------------------------------------- */

/* Adds field name: value to the head block at *p (lower-cased name). */
static void head_put(struct wf_grpc *c, char **p, const char *name, size_t nl, const char *value,
                     size_t vl)
{
    char *n = *p;
    for (size_t i = 0; i < nl; i++)
        n[i] = (char)tolower((unsigned char)name[i]);
    char *v = n + nl;
    memcpy(v, value, vl);
    *p = v + vl;
    c->head[c->nhead++] = (struct h2_header){n, nl, v, vl};
}

/* Whether a filter's metadata entry stays out of the head: pseudo-headers,
 * the fields the call sets itself, connection-specific ones. */
static bool md_skipped(const struct pw_kv *kv)
{
    static const char *const own[] = {"content-type", "te", "grpc-timeout", "host"};
    if (kv->key_len == 0 || kv->key[0] == ':')
        return true;
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (kv->key_len == strlen(own[i]) && strncasecmp(kv->key, own[i], kv->key_len) == 0)
            return true;
    return h2_header_is_connection_specific(kv->key, kv->key_len, kv->value, kv->value_len);
}

/* The request head: pseudo-headers, gRPC's fields, the metadata. 0 or -1. */
static int build_head(struct wf_grpc *c, const struct pw_grpc_call *call, bool tls,
                      uint32_t timeout_ms)
{
    char tmo[16] = "";
    size_t size = 2 * (call->service_len + call->method_len) + call->cluster_len + 128;
    for (size_t i = 0; i < call->nmetadata; i++)
        size += call->metadata[i].key_len + call->metadata[i].value_len;
    c->head = malloc((call->nmetadata + 8) * sizeof(*c->head) + size);
    if (!c->head)
        return -1;
    char *p = (char *)(c->head + call->nmetadata + 8);
    head_put(c, &p, ":method", 7, "POST", 4);
    head_put(c, &p, ":scheme", 7, tls ? "https" : "http", tls ? 5 : 4);
    /* :path is /service/method: composed past the block's used part (the
     * size counts it twice), then put in place. */
    char *pv = p + 5 + call->service_len + call->method_len + 2;
    size_t pl = (size_t)sprintf(pv, "/%.*s/%.*s", (int)call->service_len, call->service,
                                (int)call->method_len, call->method);
    head_put(c, &p, ":path", 5, pv, pl);
    head_put(c, &p, ":authority", 10, call->cluster, call->cluster_len);
    head_put(c, &p, "content-type", 12, "application/grpc", 16);
    head_put(c, &p, "te", 2, "trailers", 8);
    if (timeout_ms) {
        /* grpc-timeout takes at most 8 digits: seconds past that. */
        int n = timeout_ms <= 99999999u
                    ? snprintf(tmo, sizeof(tmo), "%um", timeout_ms)
                    : snprintf(tmo, sizeof(tmo), "%uS", (timeout_ms + 999) / 1000);
        head_put(c, &p, "grpc-timeout", 12, tmo, (size_t)n);
    }
    for (size_t i = 0; i < call->nmetadata; i++) {
        const struct pw_kv *kv = &call->metadata[i];
        if (!md_skipped(kv))
            head_put(c, &p, kv->key, kv->key_len, kv->value, kv->value_len);
    }
    return 0;
}

/* Looks up the cluster the call names: its index, or a pw_status (< 0
 * as -status). */
static int find_cluster(struct wgen *wg, const struct pw_grpc_call *call)
{
    char name[256];
    if (call->cluster_len >= sizeof(name))
        return -PW_PARSE_FAILURE;
    memcpy(name, call->cluster, call->cluster_len);
    name[call->cluster_len] = 0;
    int ci = gen_cluster_index(wg->gen, name);
    if (ci < 0)
        return -PW_PARSE_FAILURE;
    if (wg->gen->clusters[ci].cfg->protocol != CFG_UPSTREAM_HTTP2)
        return -PW_BAD_ARGUMENT;
    return ci;
}

/* Opens the stream to an endpoint, or fails the call (delivered later). */
static void call_open(struct wf_grpc *c)
{
    struct loop *l = g_loop(c);
    int ep = lb_pick(c->wc->lb, 0, 0, 0, loop_now(l));
    if (ep < 0) {
        fail(c, GRPC_UNAVAILABLE, "no healthy upstream endpoint", LB_OK);
        return;
    }
    if (!h2u_can_start(c->wc, ep)) {
        fail(c, GRPC_UNAVAILABLE, "the cluster's connection limit is reached", LB_OK);
        return;
    }
    c->ep = ep;
    c->t_start_us = loop_now_us();
    lb_request_start(c->wc->lb, ep);
    if (h2u_stream_open(c->wc, ep, &c->us, &g_ops) < 0)
        fail(c, GRPC_UNAVAILABLE, "cannot connect to the upstream", LB_CONNECT_FAIL);
}

/* Borrows wg, call, sink, ud; the call is the owner's through *link. */
int wf_grpc_start(struct wgen *wg, const struct pw_grpc_call *call, uint32_t token,
                  const struct wf_grpc_sink *sink, void *ud, struct wf_grpc **link)
{
    int ci = find_cluster(wg, call);
    if (ci < 0)
        return -ci;
    struct wf_grpc *c = calloc(1, sizeof(*c));
    if (!c)
        return PW_INTERNAL_FAILURE;
    uint32_t ms = call->stream ? 0 : call->timeout_ms ? call->timeout_ms : WF_GRPC_DEFAULT_MS;
    c->wc = &wg->clusters[ci];
    c->ep = -1;
    c->token = token;
    c->stream = call->stream;
    c->sink = sink;
    c->ud = ud;
    c->deadline = (struct loop_timer){.cb = on_deadline, .ud = c};
    c->kick = (struct loop_timer){.cb = deliver, .ud = c};
    wlist_init(&c->us.uwait);
    if (build_head(c, call, wg->gen->clusters[ci].cfg->tls.enabled, ms) != 0 ||
        (!call->stream && frame_add(c, call->message, call->message_len) != 0)) {
        free(c->head);
        free(c->req);
        free(c);
        return PW_INTERNAL_FAILURE;
    }
    c->req_end = !call->stream;
    c->link = link;
    *link = c;
    if (ms)
        loop_timer_arm(g_loop(c), &c->deadline, loop_now(g_loop(c)) + ms);
    call_open(c);
    return PW_OK;
}

/* ---- the owner's calls ---------------------------------------------------- */

/* Borrows c and msg. */
int wf_grpc_send(struct wf_grpc *c, const uint8_t *msg, size_t len, bool end)
{
    if (!c->stream || c->req_end)
        return PW_BAD_ARGUMENT;
    if (msg && frame_add(c, msg, len) != 0)
        return PW_INTERNAL_FAILURE;
    c->req_end = end;
    h2u_stream_resume(&c->us);
    return PW_OK;
}

/* Borrows c (frees it for a unary call). */
void wf_grpc_close(struct wf_grpc *c)
{
    if (c->stream && !c->req_end)
        wf_grpc_send(c, NULL, 0, true);
    else if (!c->stream)
        wf_grpc_cancel(c);
}

/* Takes c. */
void wf_grpc_cancel(struct wf_grpc *c)
{
    if (!c || c->cancelled)
        return;
    if (c->in_cb) {
        /* deliver() frees it once the callback returns. */
        c->cancelled = true;
        h2u_stream_detach(&c->us);
        loop_timer_cancel(g_loop(c), &c->deadline);
        loop_timer_cancel(g_loop(c), &c->kick);
        return;
    }
    call_free(c);
}
