/* probe_filter.c - a proxy-wasm filter for test_wasm_filters.py: each
 * request header `x-test` value asks for one behaviour the proxy must
 * handle, so the test can drive them one by one with curl.
 *
 *   pause       Pause on request headers; the next tick continues the
 *               request (proxy_set_effective_context + proxy_continue_stream)
 *               after adding x-resumed: 1.
 *   pause-deny  Pause; the next tick answers 401 instead.
 *   trap        unreachable (a trap).
 *   loop        an endless loop (stopped by the fuel budget).
 *   props       copies properties into request headers x-prop-*.
 *   rewrite     :path becomes /rewritten, x-secret is removed.
 *   status      the response gets :status 203 and x-resp-seen.
 *   close       proxy_close_stream.
 *   callout     proxy_http_call to cluster "auth" (GET /auth?user=<x-user>):
 *               a 200 continues the request with x-auth: <its body>, any
 *               other status answers 403 "callout said <status>".
 *   callout-slow the same to cluster "slow" with a 300 ms timeout: a failed
 *               call answers 503 "callout failed".
 *   enqueue     resolves the shared queue "probe-q" (every VM registers it
 *               at configure; the last one is told of items) and enqueues
 *               the x-item value; x-queue: <resolve status>,<enqueue status>.
 *               proxy_on_queue_ready dequeues every item (until EMPTY),
 *               counts it in probe_queue_items_total and appends it, with
 *               a ';', to the shared data key "probe-dequeued".
 *   queue-seen  x-queue-seen: the value of "probe-dequeued".
 *   resolve-unknown  x-queue: the status of resolving queue "no-such-queue".
 *
 * Request trailers: x-rename-me becomes x-renamed, x-probe-req-trailer gets
 * the configuration appended, and x-deny answers 403 "trailer denied";
 * when the request header x-echo-trailers names this plugin's
 * configuration, the request is answered 200 with the trailers as the
 * body ("name: value;" each), to show what reached this hop.
 * Response trailers: x-probe-trailer gets the configuration appended.
 *   grpc        proxy_grpc_call to cluster "peer", strand.test.Echo/Unary,
 *               message x-grpc-msg (default "meta"), timeout x-grpc-timeout
 *               ms (default 5000), metadata x-from-filter: <config>. When
 *               it closes the request is answered 200 (grpc-status 0) or
 *               502: body the reply message, headers x-grpc-status (the
 *               close's), x-grpc-code and x-grpc-message (proxy_get_status),
 *               x-grpc-peer (initial metadata x-peer), x-grpc-trailer
 *               (trailing x-trailer), x-grpc-order (callbacks seen: I, M, T, C).
 *   grpc-envoy  the same, the upstream given as a serialized GrpcService.
 *   grpc-dead   the same to cluster "dead" (nothing listens there).
 *   grpc-nope / grpc-h1  the same to an unknown cluster / the HTTP/1.1
 *               cluster "auth": answered 503 "grpc not started: <status>".
 *   grpc-stream proxy_grpc_stream to BidiStream of "peer": "one", then "two"
 *               with the end of the stream; answered as for grpc (the
 *               replies one after the other: "onetwo").
 *   grpc-bg     a call as for grpc that nothing waits for: the request goes
 *               on at once.
 *   grpc-cancel a call ("sleep:300") cancelled at once, then again: 200
 *               "cancelled <status> <status>"; no callback may follow.
 *               gRPC callbacks are counted in probe_grpc_callbacks_total.
 *
 * Every request: x-order gets the plugin configuration appended (so two
 * plugins show their order), and so does the response header x-resp-order
 * (responses run through the chain backwards). Body chunks are counted in
 * probe_req_body_bytes_total / probe_resp_body_bytes_total, their ends in
 * probe_body_eos_total; with `x-test: body-deny` a request body containing
 * "forbidden" is answered 403. TCP: bytes from the client
 * are upper-cased, held while they start with "WAIT" and have no newline
 * yet; a connection whose first bytes are "TRAP" traps. */
#include "proxy_wasm.h"

static char tag[16] = "?";
static uint32_t paused[64];
static int npaused;
static uint32_t m_req_body, m_resp_body, m_eos, m_queue_items, m_grpc_cb;
static uint32_t queue_id;

static int header_is(proxy_map_type_t map, const char *name, const char *want);
/* proxy_http_call in flight: token -> the request's context. */
static struct { uint32_t token, ctx; } calls[64];

proxy_bool_t proxy_on_vm_start(uint32_t root_context_id, size_t vm_configuration_size)
{
    return 1;
}

proxy_bool_t proxy_on_configure(uint32_t root_context_id, size_t size)
{
    uint8_t *cfg;
    size_t n;
    if (pw_get_buffer(PROXY_BUFFER_PLUGIN_CONFIGURATION, size, &cfg, &n) != PROXY_OK)
        return 0;
    if (n >= sizeof(tag))
        n = sizeof(tag) - 1;
    if (n) {
        memcpy(tag, cfg, n);
        tag[n] = 0;
    }
    pw_free(cfg);
    pw_define_metric(PROXY_METRIC_COUNTER, "probe_req_body_bytes_total", &m_req_body);
    pw_define_metric(PROXY_METRIC_COUNTER, "probe_resp_body_bytes_total", &m_resp_body);
    pw_define_metric(PROXY_METRIC_COUNTER, "probe_body_eos_total", &m_eos);
    pw_define_metric(PROXY_METRIC_COUNTER, "probe_queue_items_total", &m_queue_items);
    proxy_register_shared_queue("probe-q", 7, &queue_id);
    pw_define_metric(PROXY_METRIC_COUNTER, "probe_grpc_callbacks_total", &m_grpc_cb);
    proxy_set_tick_period_milliseconds(20);
    return 1;
}

/* Every item of our queue: counted and appended to "probe-dequeued". */
void proxy_on_queue_ready(uint32_t root_context_id, uint32_t id)
{
    uint8_t *item;
    size_t n;
    while (proxy_dequeue_shared_queue(id, &item, &n) == PROXY_OK) {
        proxy_increment_metric(m_queue_items, 1);
        for (int tries = 0; tries < 100; tries++) { /* another worker may set it too */
            char buf[512];
            uint8_t *old = NULL;
            size_t on = 0, len = 0;
            uint32_t cas = 0;
            if (proxy_get_shared_data("probe-dequeued", 14, &old, &on, &cas) == PROXY_OK)
                len = pw_append(buf, 0, sizeof(buf) - 1, old, on);
            pw_free(old);
            len = pw_append(buf, len, sizeof(buf) - 1, item, n);
            len = pw_append_str(buf, len, sizeof(buf) - 1, ";");
            if (proxy_set_shared_data("probe-dequeued", 14, (const uint8_t *)buf, len, cas) ==
                PROXY_OK)
                break;
        }
        pw_free(item);
    }
}

/* The x-test values that use the shared queue. */
static void queue_test(void)
{
    const proxy_map_type_t rq = PROXY_MAP_HTTP_REQUEST_HEADERS;
    char out[64];
    size_t len = 0;
    uint32_t id = 0;
    if (header_is(rq, "x-test", "enqueue")) {
        uint8_t *v = NULL;
        size_t n = 0;
        proxy_status_t r = proxy_resolve_shared_queue("", 0, "probe-q", 7, &id);
        pw_get_header(rq, "x-item", &v, &n);
        proxy_status_t e = proxy_enqueue_shared_queue(id, v, n);
        pw_free(v);
        len = pw_append_u64(out, 0, sizeof(out) - 1, r);
        len = pw_append_str(out, len, sizeof(out) - 1, ",");
        len = pw_append_u64(out, len, sizeof(out) - 1, e);
    } else if (header_is(rq, "x-test", "resolve-unknown")) {
        len = pw_append_u64(out, 0, sizeof(out) - 1,
                            proxy_resolve_shared_queue("", 0, "no-such-queue", 13, &id));
    } else if (header_is(rq, "x-test", "queue-seen")) {
        uint8_t *v = NULL;
        size_t n = 0;
        uint32_t cas;
        proxy_get_shared_data("probe-dequeued", 14, &v, &n, &cas);
        len = pw_append(out, 0, sizeof(out) - 1, v, n);
        pw_free(v);
        out[len] = 0;
        pw_replace_header(rq, "x-queue-seen", out);
        return;
    } else {
        return;
    }
    out[len] = 0;
    pw_replace_header(rq, "x-queue", out);
}

void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id) {}

static int header_is(proxy_map_type_t map, const char *name, const char *want)
{
    uint8_t *v;
    size_t n;
    int eq = pw_get_header(map, name, &v, &n) == PROXY_OK && n == strlen(want) &&
             memcmp(v, want, n) == 0;
    pw_free(v);
    return eq;
}

/* name += tag (the map's current value, or none). */
static void append_tag(proxy_map_type_t map, const char *name)
{
    char buf[128];
    uint8_t *v;
    size_t n, len = 0;
    if (pw_get_header(map, name, &v, &n) == PROXY_OK) {
        len = pw_append(buf, len, sizeof(buf) - 1, v, n);
        pw_free(v);
    }
    len = pw_append_str(buf, len, sizeof(buf) - 1, tag);
    buf[len] = 0;
    pw_replace_header(map, name, buf);
}

/* Copies property path (dotted, turned into the ABI's NUL-separated form)
 * into request header `header`; integers (8 bytes) are written in decimal. */
static void copy_prop(const char *dotted, const char *header, int is_int)
{
    char path[64];
    size_t pl = strlen(dotted);
    memcpy(path, dotted, pl);
    for (size_t i = 0; i < pl; i++)
        if (path[i] == '.')
            path[i] = 0;
    uint8_t *v = NULL;
    size_t n = 0;
    char out[128];
    size_t len = 0;
    if (proxy_get_property(path, pl, &v, &n) != PROXY_OK) {
        len = pw_append_str(out, 0, sizeof(out) - 1, "-");
    } else if (is_int && n == 8) {
        uint64_t x = 0;
        for (int i = 7; i >= 0; i--)
            x = x << 8 | v[i];
        len = pw_append_u64(out, 0, sizeof(out) - 1, x);
    } else {
        len = pw_append(out, 0, sizeof(out) - 1, v, n);
    }
    pw_free(v);
    out[len] = 0;
    pw_replace_header(PROXY_MAP_HTTP_REQUEST_HEADERS, header, out);
}

/* Asks cluster "auth" (or "slow", 300 ms timeout) GET /auth?user=<x-user>
 * and pauses; proxy_on_http_call_response decides. */
static proxy_action_t callout(uint32_t context_id, int slow)
{
    char path[128];
    size_t len = pw_append_str(path, 0, sizeof(path) - 1, "/auth?user=");
    uint8_t *u;
    size_t un;
    if (pw_get_header(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-user", &u, &un) == PROXY_OK) {
        len = pw_append(path, len, sizeof(path) - 1, u, un);
        pw_free(u);
    }
    path[len] = 0;
    /* The serialized map of the call's headers: :method, :path, :authority. */
    const char *kv[6] = {":method", "GET", ":path", path, ":authority", "auth.local"};
    uint8_t map[512];
    size_t off = 4 + 3 * 8;
    pw_store_u32(map, 3);
    for (int i = 0; i < 6; i++) {
        size_t n = strlen(kv[i]);
        pw_store_u32(map + 4 + 4 * i, (uint32_t)n);
        memcpy(map + off, kv[i], n);
        off += n;
        map[off++] = 0;
    }
    const char *cluster = slow ? "slow" : "auth";
    uint32_t token;
    if (proxy_http_call(cluster, strlen(cluster), map, off, NULL, 0, NULL, 0, slow ? 300 : 5000,
                        &token) != PROXY_OK) {
        static const char msg[] = "callout not started\n";
        proxy_send_local_response(500, "probe", 5, (const uint8_t *)msg, sizeof msg - 1, NULL,
                                  0, PROXY_GRPC_STATUS_NONE);
        return PROXY_ACTION_PAUSE;
    }
    for (int i = 0; i < 64; i++)
        if (calls[i].token == 0) {
            calls[i].token = token;
            calls[i].ctx = context_id;
            break;
        }
    return PROXY_ACTION_PAUSE;
}

void proxy_on_http_call_response(uint32_t root_context_id, uint32_t call_id, size_t num_headers,
                                 size_t body_size, size_t num_trailers)
{
    uint32_t ctx = 0;
    for (int i = 0; i < 64; i++)
        if (calls[i].token == call_id) {
            ctx = calls[i].ctx;
            calls[i].token = 0;
        }
    /* Read the answer while it is the current one, then act for the request. */
    uint8_t *st = NULL, *body = NULL;
    size_t stn = 0, bn = 0;
    if (num_headers)
        pw_get_header(PROXY_MAP_HTTP_CALL_RESPONSE_HEADERS, ":status", &st, &stn);
    if (body_size)
        proxy_get_buffer_bytes(PROXY_BUFFER_HTTP_CALL_RESPONSE_BODY, 0, body_size, &body, &bn);
    if (ctx == 0 || proxy_set_effective_context(ctx) != PROXY_OK) {
        pw_free(st);
        pw_free(body);
        return;
    }
    if (num_headers == 0) {
        static const char msg[] = "callout failed\n";
        proxy_send_local_response(503, "probe", 5, (const uint8_t *)msg, sizeof msg - 1, NULL, 0,
                                  PROXY_GRPC_STATUS_NONE);
    } else if (stn == 3 && memcmp(st, "200", 3) == 0) {
        char v[64];
        size_t n = pw_append(v, 0, sizeof(v) - 1, body, bn);
        v[n] = 0;
        pw_replace_header(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-auth", v);
        proxy_continue_stream(PROXY_STREAM_HTTP_REQUEST);
    } else {
        char msg[64];
        size_t n = pw_append_str(msg, 0, sizeof(msg) - 1, "callout said ");
        n = pw_append(msg, n, sizeof(msg) - 1, st, stn);
        proxy_send_local_response(403, "probe", 5, (const uint8_t *)msg, n, NULL, 0,
                                  PROXY_GRPC_STATUS_NONE);
    }
    pw_free(st);
    pw_free(body);
}

/* ---- gRPC calls ---- */

/* A call in flight: the request it decides, and what came back so far. */
static struct grpc_rec {
    uint32_t token, ctx;
    char order[8];
    char peer[32], trailer[32];
    char reply[512];
    size_t reply_len;
} grpcs[16];

static void local_text(uint32_t status, const char *text, size_t n)
{
    proxy_send_local_response(status, "probe", 5, (const uint8_t *)text, n, NULL, 0,
                              PROXY_GRPC_STATUS_NONE);
}

/* Request header name as a NUL-terminated string in buf (def if absent). */
static void header_str(const char *name, char *buf, size_t cap, const char *def)
{
    uint8_t *v;
    size_t n, len;
    if (pw_get_header(PROXY_MAP_HTTP_REQUEST_HEADERS, name, &v, &n) == PROXY_OK) {
        len = pw_append(buf, 0, cap - 1, v, n);
        pw_free(v);
    } else {
        len = pw_append_str(buf, 0, cap - 1, def);
    }
    buf[len] = 0;
}

/* Starts the call x-test `mode` asks for (see the top); the request waits. */
static proxy_action_t grpc_start(uint32_t context_id, const char *mode)
{
    /* GrpcService{envoy_grpc{cluster_name: "peer", authority: "x.y"}} */
    static const char envoy[] = "\x0a\x0b\x0a\x04peer\x12\x03x.y";
    char msg[64], tmo[16], text[64];
    header_str("x-grpc-msg", msg, sizeof(msg), "meta");
    header_str("x-grpc-timeout", tmo, sizeof(tmo), "5000");
    uint32_t ms = 0;
    for (const char *p = tmo; *p >= '0' && *p <= '9'; p++)
        ms = ms * 10 + (uint32_t)(*p - '0');
    const char *up = "peer";
    size_t up_len = 4;
    if (strcmp(mode, "grpc-envoy") == 0)
        up = envoy, up_len = sizeof(envoy) - 1;
    else if (strcmp(mode, "grpc-dead") == 0)
        up = "dead", up_len = 4;
    else if (strcmp(mode, "grpc-nope") == 0)
        up = "nope", up_len = 4;
    else if (strcmp(mode, "grpc-h1") == 0)
        up = "auth", up_len = 4;
    int cancel = strcmp(mode, "grpc-cancel") == 0;
    struct pw_pair md[1] = {{"x-from-filter", tag}};
    uint8_t map[128];
    pw_map_serialize(md, 1, map);
    const char *m = cancel ? "sleep:300" : msg;
    uint32_t token;
    proxy_status_t st;
    if (strcmp(mode, "grpc-stream") == 0) {
        st = proxy_grpc_stream(up, up_len, "strand.test.Echo", 16, "BidiStream", 10, map,
                               pw_map_serialized_size(md, 1), &token);
        if (st == PROXY_OK)
            st = proxy_grpc_send(token, (const uint8_t *)"one", 3, 0);
        if (st == PROXY_OK)
            st = proxy_grpc_send(token, (const uint8_t *)"two", 3, 1);
    } else {
        st = proxy_grpc_call(up, up_len, "strand.test.Echo", 16, "Unary", 5, map,
                             pw_map_serialized_size(md, 1), (const uint8_t *)m, strlen(m), ms,
                             &token);
    }
    size_t n;
    if (st != PROXY_OK) {
        n = pw_append_str(text, 0, sizeof(text), "grpc not started: ");
        n = pw_append_u64(text, n, sizeof(text), st);
        local_text(503, text, n);
        return PROXY_ACTION_PAUSE;
    }
    if (strcmp(mode, "grpc-bg") == 0)
        return PROXY_ACTION_CONTINUE;
    if (cancel) {
        n = pw_append_str(text, 0, sizeof(text), "cancelled ");
        n = pw_append_u64(text, n, sizeof(text), proxy_grpc_cancel(token));
        n = pw_append_str(text, n, sizeof(text), " ");
        n = pw_append_u64(text, n, sizeof(text), proxy_grpc_cancel(token));
        local_text(200, text, n);
        return PROXY_ACTION_PAUSE;
    }
    for (int i = 0; i < 16; i++)
        if (grpcs[i].token == 0) {
            memset(&grpcs[i], 0, sizeof(grpcs[i]));
            grpcs[i].token = token;
            grpcs[i].ctx = context_id;
            break;
        }
    return PROXY_ACTION_PAUSE;
}

/* The record of call token, counting the callback and noting its letter. */
static struct grpc_rec *grpc_seen(uint32_t token, char what)
{
    proxy_increment_metric(m_grpc_cb, 1);
    for (int i = 0; i < 16; i++)
        if (grpcs[i].token == token) {
            size_t n = strlen(grpcs[i].order);
            if (n + 1 < sizeof(grpcs[i].order))
                grpcs[i].order[n] = what;
            return &grpcs[i];
        }
    return NULL;
}

/* Copies the value of name in map into buf (cap bytes, NUL-terminated). */
static void map_str(proxy_map_type_t map, const char *name, char *buf, size_t cap)
{
    uint8_t *v;
    size_t n, len = 0;
    if (pw_get_header(map, name, &v, &n) == PROXY_OK) {
        len = pw_append(buf, 0, cap - 1, v, n);
        pw_free(v);
    }
    buf[len] = 0;
}

void proxy_on_grpc_receive_initial_metadata(uint32_t root_context_id, uint32_t call_id,
                                            size_t num_elements)
{
    struct grpc_rec *r = grpc_seen(call_id, 'I');
    if (r)
        map_str(PROXY_MAP_GRPC_CALL_INITIAL_METADATA, "x-peer", r->peer, sizeof(r->peer));
}

void proxy_on_grpc_receive(uint32_t root_context_id, uint32_t call_id, size_t message_size)
{
    struct grpc_rec *r = grpc_seen(call_id, 'M');
    uint8_t *d = NULL;
    size_t n = 0;
    if (r && proxy_get_buffer_bytes(PROXY_BUFFER_GRPC_CALL_MESSAGE, 0, message_size, &d, &n) ==
                 PROXY_OK)
        r->reply_len = pw_append(r->reply, r->reply_len, sizeof(r->reply), d, n);
    pw_free(d);
}

void proxy_on_grpc_receive_trailing_metadata(uint32_t root_context_id, uint32_t call_id,
                                             size_t num_elements)
{
    struct grpc_rec *r = grpc_seen(call_id, 'T');
    if (r)
        map_str(PROXY_MAP_GRPC_CALL_TRAILING_METADATA, "x-trailer", r->trailer,
                sizeof(r->trailer));
}

void proxy_on_grpc_close(uint32_t root_context_id, uint32_t call_id, uint32_t status_code)
{
    struct grpc_rec *r = grpc_seen(call_id, 'C');
    if (!r)
        return;
    uint32_t code = 999;
    uint8_t *m = NULL;
    size_t mn = 0;
    char st[12], cd[12], text[128];
    proxy_get_status(&code, &m, &mn);
    st[pw_append_u64(st, 0, sizeof(st) - 1, status_code)] = 0;
    cd[pw_append_u64(cd, 0, sizeof(cd) - 1, code)] = 0;
    text[pw_append(text, 0, sizeof(text) - 1, m, mn)] = 0;
    pw_free(m);
    struct pw_pair hs[] = {{"x-grpc-status", st}, {"x-grpc-code", cd}, {"x-grpc-message", text},
                           {"x-grpc-peer", r->peer}, {"x-grpc-trailer", r->trailer},
                           {"x-grpc-order", r->order}};
    uint8_t map[512];
    size_t mlen = pw_map_serialized_size(hs, 6);
    r->token = 0;
    if (mlen > sizeof(map) || proxy_set_effective_context(r->ctx) != PROXY_OK)
        return;
    pw_map_serialize(hs, 6, map);
    proxy_send_local_response(status_code == 0 ? 200 : 502, "probe", 5,
                              (const uint8_t *)r->reply, r->reply_len, map, mlen,
                              PROXY_GRPC_STATUS_NONE);
}

proxy_action_t proxy_on_request_headers(uint32_t context_id, size_t num_headers,
                                        proxy_bool_t end_of_stream)
{
    const proxy_map_type_t rq = PROXY_MAP_HTTP_REQUEST_HEADERS;
    append_tag(rq, "x-order");
    if (header_is(rq, "x-test", "trap"))
        __builtin_trap();
    if (header_is(rq, "x-test", "loop")) {
        volatile uint32_t spin = 1;
        while (spin)
            spin++;
    }
    if (header_is(rq, "x-test", "close")) {
        proxy_close_stream(PROXY_STREAM_HTTP_REQUEST);
        return PROXY_ACTION_PAUSE;
    }
    if (header_is(rq, "x-test", "props")) {
        copy_prop("request.path", "x-prop-path", 0);
        copy_prop("request.method", "x-prop-method", 0);
        copy_prop("source.address", "x-prop-source", 0);
        copy_prop("route_name", "x-prop-route", 0);
        copy_prop("destination.port", "x-prop-port", 1);
        copy_prop("plugin_name", "x-prop-plugin", 0);
        copy_prop("header.user-agent", "x-prop-ua", 0);
    }
    queue_test();
    if (header_is(rq, "x-test", "rewrite")) {
        pw_replace_header(rq, ":path", "/rewritten");
        pw_remove_header(rq, "x-secret");
    }
    if (header_is(rq, "x-test", "callout") || header_is(rq, "x-test", "callout-slow"))
        return callout(context_id, header_is(rq, "x-test", "callout-slow"));
    static const char *const grpc_modes[] = {"grpc", "grpc-envoy", "grpc-dead", "grpc-nope",
                                             "grpc-h1", "grpc-cancel", "grpc-stream", "grpc-bg"};
    for (size_t i = 0; i < sizeof(grpc_modes) / sizeof(grpc_modes[0]); i++)
        if (header_is(rq, "x-test", grpc_modes[i]))
            return grpc_start(context_id, grpc_modes[i]);
    if ((header_is(rq, "x-test", "pause") || header_is(rq, "x-test", "pause-deny")) &&
        npaused < 64) {
        paused[npaused++] = context_id;
        return PROXY_ACTION_PAUSE;
    }
    return PROXY_ACTION_CONTINUE;
}

void proxy_on_tick(uint32_t root_context_id)
{
    static const char body[] = "denied after a pause\n";
    for (int i = 0; i < npaused; i++) {
        if (proxy_set_effective_context(paused[i]) != PROXY_OK)
            continue; /* that request is gone */
        if (header_is(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-test", "pause-deny")) {
            proxy_send_local_response(401, "probe", 5, (const uint8_t *)body, sizeof body - 1,
                                      NULL, 0, PROXY_GRPC_STATUS_NONE);
        } else {
            pw_replace_header(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-resumed", "1");
            proxy_continue_stream(PROXY_STREAM_HTTP_REQUEST);
        }
    }
    npaused = 0;
}

proxy_action_t proxy_on_response_headers(uint32_t context_id, size_t num_headers,
                                         proxy_bool_t end_of_stream)
{
    const proxy_map_type_t rs = PROXY_MAP_HTTP_RESPONSE_HEADERS;
    append_tag(rs, "x-resp-order");
    if (header_is(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-test", "status")) {
        pw_replace_header(rs, ":status", "203");
        pw_replace_header(rs, "x-resp-seen", "1");
    }
    return PROXY_ACTION_CONTINUE;
}

/* Answers 200 with the request trailers as the body. */
static void echo_trailers(void)
{
    uint8_t *map = NULL;
    size_t size = 0, len = 0;
    char body[1024];
    struct pw_map_iter it;
    const char *k, *v;
    size_t kn, vn;
    proxy_get_header_map_pairs(PROXY_MAP_HTTP_REQUEST_TRAILERS, &map, &size);
    if (pw_map_iter_init(&it, map, size))
        while (pw_map_next(&it, &k, &kn, &v, &vn)) {
            len = pw_append(body, len, sizeof(body) - 1, k, kn);
            len = pw_append_str(body, len, sizeof(body) - 1, ": ");
            len = pw_append(body, len, sizeof(body) - 1, v, vn);
            len = pw_append_str(body, len, sizeof(body) - 1, ";");
        }
    pw_free(map);
    proxy_send_local_response(200, "probe", 5, (const uint8_t *)body, len, NULL, 0,
                              PROXY_GRPC_STATUS_NONE);
}

proxy_action_t proxy_on_request_trailers(uint32_t context_id, size_t num_trailers)
{
    const proxy_map_type_t rt = PROXY_MAP_HTTP_REQUEST_TRAILERS;
    static const char msg[] = "trailer denied\n";
    uint8_t *v;
    size_t n;
    if (pw_get_header(rt, "x-rename-me", &v, &n) == PROXY_OK) {
        char buf[128];
        size_t len = pw_append(buf, 0, sizeof(buf) - 1, v, n);
        buf[len] = 0;
        pw_free(v);
        pw_remove_header(rt, "x-rename-me");
        pw_replace_header(rt, "x-renamed", buf);
    }
    append_tag(rt, "x-probe-req-trailer");
    if (header_is(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-echo-trailers", tag)) {
        echo_trailers();
        return PROXY_ACTION_PAUSE;
    }
    if (pw_get_header(rt, "x-deny", &v, &n) == PROXY_OK) {
        pw_free(v);
        proxy_send_local_response(403, "probe", 5, (const uint8_t *)msg, sizeof msg - 1, NULL, 0,
                                  PROXY_GRPC_STATUS_NONE);
        return PROXY_ACTION_PAUSE;
    }
    return PROXY_ACTION_CONTINUE;
}

proxy_action_t proxy_on_response_trailers(uint32_t context_id, size_t num_trailers)
{
    append_tag(PROXY_MAP_HTTP_RESPONSE_TRAILERS, "x-probe-trailer");
    return PROXY_ACTION_CONTINUE;
}

static int body_has(proxy_buffer_type_t buf, size_t size, const char *needle)
{
    uint8_t *d = NULL;
    size_t n = 0, k = strlen(needle);
    int found = 0;
    if (size && proxy_get_buffer_bytes(buf, 0, size, &d, &n) == PROXY_OK)
        for (size_t i = 0; i + k <= n && !found; i++)
            found = memcmp(d + i, needle, k) == 0;
    pw_free(d);
    return found;
}

proxy_action_t proxy_on_request_body(uint32_t context_id, size_t body_size,
                                     proxy_bool_t end_of_stream)
{
    static const char msg[] = "forbidden body\n";
    proxy_increment_metric(m_req_body, (int64_t)body_size);
    if (end_of_stream)
        proxy_increment_metric(m_eos, 1);
    if (header_is(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-test", "body-deny") &&
        body_has(PROXY_BUFFER_HTTP_REQUEST_BODY, body_size, "forbidden")) {
        proxy_send_local_response(403, "probe", 5, (const uint8_t *)msg, sizeof msg - 1, NULL, 0,
                                  PROXY_GRPC_STATUS_NONE);
        return PROXY_ACTION_PAUSE;
    }
    return PROXY_ACTION_CONTINUE;
}

proxy_action_t proxy_on_response_body(uint32_t context_id, size_t body_size,
                                      proxy_bool_t end_of_stream)
{
    proxy_increment_metric(m_resp_body, (int64_t)body_size);
    if (end_of_stream)
        proxy_increment_metric(m_eos, 1);
    return PROXY_ACTION_CONTINUE;
}

/* ---- TCP ---- */

proxy_action_t proxy_on_new_connection(uint32_t context_id) { return PROXY_ACTION_CONTINUE; }

proxy_action_t proxy_on_downstream_data(uint32_t context_id, size_t data_size,
                                        proxy_bool_t end_of_stream)
{
    uint8_t *d = NULL;
    size_t n = 0;
    if (data_size == 0)
        return PROXY_ACTION_CONTINUE;
    if (proxy_get_buffer_bytes(PROXY_BUFFER_DOWNSTREAM_DATA, 0, data_size, &d, &n) != PROXY_OK)
        return PROXY_ACTION_CONTINUE;
    if (n >= 4 && memcmp(d, "TRAP", 4) == 0)
        __builtin_trap();
    /* "WAIT" holds the bytes until a newline arrives (Pause keeps them). */
    if (n >= 4 && memcmp(d, "WAIT", 4) == 0 && memchr(d, '\n', n) == NULL) {
        pw_free(d);
        return PROXY_ACTION_PAUSE;
    }
    for (size_t i = 0; i < n; i++)
        if (d[i] >= 'a' && d[i] <= 'z')
            d[i] = (uint8_t)(d[i] - 32);
    proxy_set_buffer_bytes(PROXY_BUFFER_DOWNSTREAM_DATA, 0, n, d, n);
    pw_free(d);
    return PROXY_ACTION_CONTINUE;
}

proxy_bool_t proxy_on_done(uint32_t context_id) { return 1; }

void proxy_on_delete(uint32_t context_id) {}
