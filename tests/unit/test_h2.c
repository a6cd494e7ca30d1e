/* test_h2.c - unit tests for the HTTP/2 layer (src/proto/http2).
 *
 * Most tests connect a client session and a server session in memory: the
 * h2_pull output of one is fed to the other, in a bounded loop, with pull
 * sizes varied to exercise the output staging. Protocol abuse is written
 * as raw frames (a tiny HPACK literal encoder below) into a server session.
 * The interop tests run a small poll() server over loopback with these
 * sessions and drive it with the real nghttp and h2load binaries (skipped
 * when they are not installed).
 *
 * `test_h2 --gen-corpus DIR` writes the fuzz seed corpus (client flights
 * captured from these sessions) instead of testing.
 * Prints "N passed, M failed". */
#include "proto/http2/h2.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"



/* ---- test peers ------------------------------------------------------------ */

#define MAXID 4096

struct tstream {
    int32_t id;
    /* what arrived */
    int requests, responses, interim, status, ends, resets, closes, trailers, after_close;
    uint32_t reset_code, close_code;
    char method[16], path[128], authority[128], xhdr[64], tr_val[64];
    int nheaders;
    uint64_t rx;
    int rx_bad;
    int hold;             /* do not consume received body bytes */
    size_t max_held;
    /* what to send */
    uint64_t tx_total, tx_off;
    int tx_defer;         /* body callback says deferred */
    int tx_trailers;      /* submit trailers before eof */
    int tx_calls;
    struct tpeer *p;
};

enum { RESP_NOW, RESP_AT_END, RESP_NONE };

struct tpeer {
    struct h2_session *s;
    int server;
    struct tstream st[MAXID];
    int requests, goaways, feed_err, closes;
    uint32_t goaway_code;
    int32_t goaway_last;
    size_t max_pending;
    /* server behaviour */
    int mode;
    int resp_status;
    uint64_t resp_body;   /* RESP_NOW: body size; RESP_AT_END: 0 = echo size */
    int resp_trailers;
    int hold_all;         /* new streams hold their data */
};

/* Returns p's slot for id (owned by p). */
static struct tstream *ts(struct tpeer *p, int32_t id)
{
    if (id <= 0 || id >= MAXID) {
        fprintf(stderr, "stream id %d out of test range\n", id);
        abort();
    }
    struct tstream *t = &p->st[id];
    t->id = id;
    t->p = p;
    return t;
}

static uint8_t pat(int32_t id, uint64_t off)
{
    return (uint8_t)(off * 7 + (uint64_t)id * 13);
}

/* Borrows h; writes the caller's dst. */
static void hcopy(char *dst, size_t cap, const struct h2_header *h)
{
    size_t n = h->vlen < cap - 1 ? h->vlen : cap - 1;
    memcpy(dst, h->value, n);
    dst[n] = 0;
}

/* Body callback: ud is the stream slot; buf is the session's. */
static ssize_t body_fn(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof, int *deferred)
{
    struct tstream *t = ud;
    t->tx_calls++;
    if (t->tx_defer) {
        *deferred = 1;
        return 0;
    }
    uint64_t left = t->tx_total - t->tx_off;
    size_t n = left < len ? (size_t)left : len;
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(id, t->tx_off + i);
    t->tx_off += n;
    if (t->tx_off == t->tx_total) {
        if (t->tx_trailers) {
            struct h2_header tr[] = {{"x-trailer", 9, "done", 4}, {"grpc-status", 11, "0", 1}};
            if (h2_submit_trailers(t->p->s, id, tr, 2) != H2_OK)
                return -1;
        }
        *eof = 1;
    }
    return (ssize_t)n;
}

/* p: borrowed; the body reads p's slot for id. */
static int respond(struct tpeer *p, int32_t id, int status, uint64_t body, int trailers)
{
    struct tstream *t = ts(p, id);
    t->tx_total = body;
    t->tx_off = 0;
    t->tx_trailers = trailers;
    struct h2_header hs[] = {{"content-type", 12, "text/plain", 10}, {"x-server", 8, "strand", 6}};
    return h2_submit_response(p->s, id, status, hs, 2, (body || trailers) ? body_fn : NULL, t);
}

/* Callback: ud is the peer; hs borrowed. */
static int cb_request(void *ud, int32_t id, const struct h2_header *hs, size_t n, int end)
{
    struct tpeer *p = ud;
    struct tstream *t = ts(p, id);
    t->requests++;
    t->nheaders = (int)n;
    t->hold = p->hold_all;
    p->requests++;
    for (size_t i = 0; i < n; i++) {
        if (hs[i].nlen == 7 && !memcmp(hs[i].name, ":method", 7))
            hcopy(t->method, sizeof(t->method), &hs[i]);
        else if (hs[i].nlen == 5 && !memcmp(hs[i].name, ":path", 5))
            hcopy(t->path, sizeof(t->path), &hs[i]);
        else if (hs[i].nlen == 10 && !memcmp(hs[i].name, ":authority", 10))
            hcopy(t->authority, sizeof(t->authority), &hs[i]);
        else if (hs[i].nlen == 8 && !memcmp(hs[i].name, "x-custom", 8))
            hcopy(t->xhdr, sizeof(t->xhdr), &hs[i]);
    }
    if (p->mode == RESP_NOW)
        return respond(p, id, p->resp_status, p->resp_body, p->resp_trailers) == H2_OK ? 0 : -1;
    return 0;
}

/* Callback: ud is the peer; hs borrowed. */
static int cb_response(void *ud, int32_t id, int status, const struct h2_header *hs, size_t n,
                       int end)
{
    struct tpeer *p = ud;
    struct tstream *t = ts(p, id);
    if (t->closes)
        t->after_close++;
    if (status < 200)
        t->interim++;
    else
        t->responses++;
    t->status = status;
    t->nheaders = (int)n;
    const struct h2_header *x = h2_header_get(hs, n, "x-server");
    if (x)
        hcopy(t->xhdr, sizeof(t->xhdr), x);
    return 0;
}

/* Callback: ud is the peer; data borrowed. */
static int cb_data(void *ud, int32_t id, const uint8_t *data, size_t len)
{
    struct tpeer *p = ud;
    struct tstream *t = ts(p, id);
    if (t->closes)
        t->after_close++;
    for (size_t i = 0; i < len; i++)
        if (data[i] != pat(id, t->rx + i))
            t->rx_bad++;
    t->rx += len;
    if (!t->hold)
        h2_consume(p->s, id, len);
    size_t held = h2_stream_unconsumed(p->s, id);
    if (held > t->max_held)
        t->max_held = held;
    return 0;
}

/* Callback: ud is the peer; hs borrowed. */
static int cb_trailers(void *ud, int32_t id, const struct h2_header *hs, size_t n)
{
    struct tpeer *p = ud;
    struct tstream *t = ts(p, id);
    t->trailers++;
    const struct h2_header *x = h2_header_get(hs, n, "x-trailer");
    if (x)
        hcopy(t->tr_val, sizeof(t->tr_val), x);
    return 0;
}

/* Callback: ud is the peer. */
static void cb_end(void *ud, int32_t id)
{
    struct tpeer *p = ud;
    struct tstream *t = ts(p, id);
    if (t->closes)
        t->after_close++;
    t->ends++;
    if (p->server && p->mode == RESP_AT_END)
        respond(p, id, p->resp_status, p->resp_body ? p->resp_body : t->rx, p->resp_trailers);
}

/* Callback: ud is the peer. */
static void cb_reset(void *ud, int32_t id, uint32_t code)
{
    struct tstream *t = ts(ud, id);
    if (t->closes)
        t->after_close++;
    t->resets++;
    t->reset_code = code;
}

/* Callback: ud is the peer. */
static void cb_close(void *ud, int32_t id, uint32_t code)
{
    struct tpeer *p = ud;
    struct tstream *t = ts(p, id);
    if (t->closes)
        t->after_close++;
    t->closes++;
    t->close_code = code;
    p->closes++;
}

/* Callback: ud is the peer. */
static void cb_goaway(void *ud, int32_t last, uint32_t code)
{
    struct tpeer *p = ud;
    p->goaways++;
    p->goaway_last = last;
    p->goaway_code = code;
}

static const struct h2_callbacks tcb = {
    cb_request, cb_response, cb_data, cb_trailers, cb_end, cb_reset, cb_close, cb_goaway,
};

/* Returns a zeroed heap peer (tests free it with peer_free). */
static struct tpeer *peer_new(int server, const struct h2_settings *set)
{
    struct tpeer *p = calloc(1, sizeof(*p));
    p->server = server;
    p->resp_status = 200;
    p->s = server ? h2_session_server(&tcb, p, set) : h2_session_client(&tcb, p, set);
    if (!p->s)
        abort();
    return p;
}

/* Frees p (owned) and its session. */
static void peer_free(struct tpeer *p)
{
    if (!p)
        return;
    h2_session_free(p->s);
    free(p);
}

/* 0 = random pull sizes, else fixed. */
static size_t pull_cap = 16384;
static unsigned rng = 12345;

static unsigned rnd(void)
{
    rng = rng * 1103515245u + 12345u;
    return (rng >> 16) & 0x7fff;
}

static uint8_t *capture;       /* when set, client->server bytes are appended */
static size_t capture_len, capture_cap;

/* Borrows p (copied into the capture). */
static void cap_add(const uint8_t *p, size_t n)
{
    if (capture_len + n > capture_cap) {
        capture_cap = (capture_len + n) * 2;
        capture = realloc(capture, capture_cap);
    }
    memcpy(capture + capture_len, p, n);
    capture_len += n;
}

/* Moves what from has to send into to; returns bytes moved. */
static size_t xfer(struct tpeer *from, struct tpeer *to)
{
    static uint8_t buf[65536];
    size_t total = 0;
    for (int i = 0; i < 64; i++) {
        size_t cap = pull_cap ? pull_cap : 1 + rnd() % 20000;
        ssize_t n = h2_pull(from->s, buf, cap);
        if (h2_output_pending(from->s) > from->max_pending)
            from->max_pending = h2_output_pending(from->s);
        if (n <= 0)
            break;
        total += (size_t)n;
        if (capture && !from->server)
            cap_add(buf, (size_t)n);
        if (!to->feed_err) {
            ssize_t r = h2_feed(to->s, buf, (size_t)n);
            if (r < 0)
                to->feed_err = 1;
            else if (r != n)
                fprintf(stderr, "short feed %zd of %zd\n", r, n);
        }
    }
    return total;
}

/* Pumps both ways until nothing moves; returns the rounds used. */
static int pump(struct tpeer *a, struct tpeer *b)
{
    int r;
    for (r = 0; r < 200000; r++)
        if (xfer(a, b) + xfer(b, a) == 0)
            break;
    return r;
}

/* Submits a request whose body callback reads the stream's own slot: the
 * slot for the next id is predicted (client ids go 1, 3, 5, ...). */
static int32_t req(struct tpeer *c, int32_t expect_id, const char *path, uint64_t body,
                   int trailers)
{
    struct h2_header hs[] = {
        {":method", 7, body ? "POST" : "GET", body ? 4 : 3},
        {":scheme", 7, "http", 4},
        {":path", 5, path, strlen(path)},
        {":authority", 10, "example.test", 12},
        {"x-custom", 8, "hello", 5},
    };
    struct tstream *t = ts(c, expect_id);
    t->tx_total = body;
    t->tx_off = 0;
    t->tx_trailers = trailers;
    t->hold = c->hold_all;
    int32_t id = h2_submit_request(c->s, hs, 5, (body || trailers) ? body_fn : NULL, t, t);
    return id;
}

/* ---- in-memory tests ------------------------------------------------------- */

static void test_basic(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NOW;
    s->resp_body = 11;
    int32_t id = req(c, 1, "/hello?x=1", 0, 0);
    CHECK(id == 1);
    CHECK(h2_stream_ud(c->s, 1) == &c->st[1]);
    pump(c, s);
    struct tstream *sv = &s->st[1], *cl = &c->st[1];
    CHECK(sv->requests == 1);
    CHECK(strcmp(sv->method, "GET") == 0);
    CHECK(strcmp(sv->path, "/hello?x=1") == 0);
    CHECK(strcmp(sv->authority, "example.test") == 0);
    CHECK(strcmp(sv->xhdr, "hello") == 0);
    CHECK(sv->ends == 1);
    CHECK(cl->responses == 1 && cl->status == 200);
    CHECK(strcmp(cl->xhdr, "strand") == 0);
    CHECK(cl->nheaders == 2); /* :status not in the list */
    CHECK(cl->rx == 11 && cl->rx_bad == 0);
    CHECK(cl->ends == 1 && cl->closes == 1 && cl->close_code == 0 && cl->resets == 0);
    CHECK(sv->closes == 1 && sv->close_code == 0);
    CHECK(cl->after_close == 0 && sv->after_close == 0);
    CHECK(h2_open_streams(c->s) == 0 && h2_open_streams(s->s) == 0);
    CHECK(h2_want_read(c->s) && h2_want_read(s->s));
    CHECK(!c->feed_err && !s->feed_err);
    peer_free(c);
    peer_free(s);
}

static void test_post_echo(void)
{
    pull_cap = 0; /* random pull sizes */
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_AT_END; /* echo the size */
    req(c, 1, "/upload", 300000, 0);
    req(c, 3, "/upload", 1, 0);
    pump(c, s);
    CHECK(s->st[1].rx == 300000 && s->st[1].rx_bad == 0);
    CHECK(s->st[3].rx == 1);
    CHECK(c->st[1].rx == 300000 && c->st[1].rx_bad == 0 && c->st[1].ends == 1);
    CHECK(c->st[3].rx == 1 && c->st[3].closes == 1);
    CHECK(c->st[1].close_code == 0 && s->st[1].close_code == 0);
    pull_cap = 16384;
    peer_free(c);
    peer_free(s);
}

static void test_tiny_pulls(void)
{
    pull_cap = 1;
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NOW;
    s->resp_body = 3000;
    req(c, 1, "/", 0, 0);
    pump(c, s);
    CHECK(c->st[1].rx == 3000 && c->st[1].rx_bad == 0 && c->st[1].closes == 1);
    pull_cap = 16384;
    peer_free(c);
    peer_free(s);
}

static void test_concurrent(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    int ok = 1;
    for (int i = 0; i < 100; i++)
        ok &= req(c, 1 + 2 * i, "/many", 0, 0) == 1 + 2 * i;
    CHECK(ok);
    CHECK(h2_open_streams(c->s) == 100);
    CHECK(!h2_can_open_stream(c->s));
    CHECK(req(c, 201, "/toomany", 0, 0) == H2_ERR_REFUSED);
    pump(c, s);
    CHECK(s->requests == 100);
    CHECK(h2_open_streams(s->s) == 100);
    /* answer in reverse order, with bodies of different sizes */
    for (int i = 99; i >= 0; i--)
        respond(s, 1 + 2 * i, 200, (uint64_t)i * 100, 0);
    pump(c, s);
    int done = 0, good = 1;
    for (int i = 0; i < 100; i++) {
        struct tstream *t = &c->st[1 + 2 * i];
        done += t->closes == 1 && t->close_code == 0;
        good &= t->rx == (uint64_t)i * 100 && t->rx_bad == 0;
    }
    CHECK(done == 100);
    CHECK(good);
    CHECK(h2_can_open_stream(c->s));
    CHECK(h2_open_streams(c->s) == 0 && h2_open_streams(s->s) == 0);
    peer_free(c);
    peer_free(s);
}

static void test_peer_stream_limit(void)
{
    struct h2_settings set = {.max_concurrent_streams = 5};
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, &set);
    s->mode = RESP_NONE;
    pump(c, s); /* SETTINGS exchange */
    int n = 0;
    while (h2_can_open_stream(c->s) && n < 50) {
        req(c, 1 + 2 * n, "/", 0, 0);
        n++;
    }
    CHECK(n == 5);
    pump(c, s);
    CHECK(s->requests == 5);
    respond(s, 1, 200, 0, 0);
    pump(c, s);
    CHECK(h2_can_open_stream(c->s));
    peer_free(c);
    peer_free(s);
}

/* 8 MiB on one stream whose consumer stalls, while another completes: the
 * stalled stream holds at most its window, the other is not blocked, and
 * nothing is buffered beyond the staging bound. */
static void test_flow_isolation(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/big", 0, 0);
    req(c, 3, "/small", 0, 0);
    c->st[1].hold = 1;
    pump(c, s);
    respond(s, 1, 200, 8u << 20, 0);
    respond(s, 3, 200, 1u << 20, 0);
    pump(c, s);
    struct tstream *big = &c->st[1], *small = &c->st[3];
    CHECK(small->rx == (1u << 20) && small->closes == 1 && small->close_code == 0);
    CHECK(big->rx == 65535);
    CHECK(big->closes == 0);
    CHECK(h2_stream_unconsumed(c->s, 1) == 65535);
    /* the server produced only what the window allowed */
    CHECK(s->st[1].tx_off == 65535);
    CHECK(s->max_pending <= H2_STAGE_SOFT + 16384 + 9);
    /* drain slowly: 1000 bytes at a time */
    size_t max_held = 0;
    int rounds = 0;
    while (big->closes == 0 && rounds < 200000) {
        size_t held = h2_stream_unconsumed(c->s, 1);
        if (held > max_held)
            max_held = held;
        size_t k = held < 1000 ? held : 1000;
        h2_consume(c->s, 1, k);
        pump(c, s);
        rounds++;
    }
    CHECK(big->rx == (8u << 20) && big->rx_bad == 0);
    CHECK(big->closes == 1 && big->close_code == 0);
    CHECK(max_held <= 65535);
    CHECK(s->st[1].tx_off - big->rx <= 65535);
    CHECK(h2_consume(c->s, 1, 10) == H2_OK); /* closed: harmless */
    peer_free(c);
    peer_free(s);
}

/* The same the other way: an upload the server does not consume. */
static void test_upload_isolation(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_AT_END;
    s->resp_body = 5;
    s->hold_all = 1;
    req(c, 1, "/up", 4u << 20, 0);
    pump(c, s);
    CHECK(s->st[1].rx == 65535);
    CHECK(c->st[1].tx_off == 65535);
    s->hold_all = 0;
    req(c, 3, "/up2", 100000, 0);
    pump(c, s);
    h2_consume(s->s, 3, h2_stream_unconsumed(s->s, 3));
    s->st[3].hold = 0;
    pump(c, s);
    for (int i = 0; i < 100 && s->st[3].ends == 0; i++) {
        h2_consume(s->s, 3, h2_stream_unconsumed(s->s, 3));
        pump(c, s);
    }
    CHECK(s->st[3].rx == 100000 && c->st[3].closes == 1);
    CHECK(s->st[1].rx == 65535); /* still stalled */
    for (int i = 0; i < 10000 && c->st[1].closes == 0; i++) {
        h2_consume(s->s, 1, h2_stream_unconsumed(s->s, 1));
        pump(c, s);
    }
    CHECK(s->st[1].rx == (4u << 20) && s->st[1].rx_bad == 0);
    CHECK(c->st[1].closes == 1 && c->st[1].rx == 5);
    peer_free(c);
    peer_free(s);
}

static void test_trailers(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_AT_END;
    s->resp_body = 1000;
    s->resp_trailers = 1;
    req(c, 1, "/grpc", 5000, 1);
    pump(c, s);
    CHECK(s->st[1].rx == 5000);
    CHECK(s->st[1].trailers == 1 && strcmp(s->st[1].tr_val, "done") == 0);
    CHECK(s->st[1].ends == 1);
    CHECK(c->st[1].rx == 1000);
    CHECK(c->st[1].trailers == 1 && strcmp(c->st[1].tr_val, "done") == 0);
    CHECK(c->st[1].ends == 1 && c->st[1].closes == 1 && c->st[1].close_code == 0);
    /* trailers with an empty body */
    s->resp_body = 0;
    s->mode = RESP_NONE;
    req(c, 3, "/empty", 0, 1);
    pump(c, s);
    CHECK(s->st[3].trailers == 1 && s->st[3].ends == 1);
    struct tstream *t = ts(s, 3);
    t->tx_total = 0;
    t->tx_defer = 1;
    struct h2_header hs[] = {{"content-type", 12, "application/grpc", 16}};
    CHECK(h2_submit_response(s->s, 3, 200, hs, 1, body_fn, t) == H2_OK);
    pump(c, s);
    CHECK(c->st[3].responses == 1 && c->st[3].ends == 0);
    struct h2_header tr[] = {{"grpc-status", 11, "7", 1}, {"x-trailer", 9, "late", 4}};
    CHECK(h2_submit_trailers(s->s, 3, tr, 2) == H2_OK);
    CHECK(h2_submit_trailers(s->s, 3, tr, 2) == H2_ERR_STREAM); /* once */
    t->tx_defer = 0;
    CHECK(h2_resume(s->s, 3) == H2_OK);
    pump(c, s);
    CHECK(c->st[3].trailers == 1 && strcmp(c->st[3].tr_val, "late") == 0);
    CHECK(c->st[3].closes == 1 && c->st[3].close_code == 0);
    peer_free(c);
    peer_free(s);
}

static void test_deferred_body(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/slow", 0, 0);
    pump(c, s);
    struct tstream *t = ts(s, 1);
    t->tx_total = 50000;
    t->tx_defer = 1;
    CHECK(h2_submit_response(s->s, 1, 200, NULL, 0, body_fn, t) == H2_OK);
    CHECK(h2_submit_response(s->s, 1, 200, NULL, 0, NULL, NULL) == H2_ERR_STREAM);
    pump(c, s);
    CHECK(c->st[1].responses == 1 && c->st[1].rx == 0);
    int calls = t->tx_calls;
    pump(c, s);
    CHECK(t->tx_calls == calls); /* not polled while deferred */
    t->tx_defer = 0;
    CHECK(h2_resume(s->s, 1) == H2_OK);
    pump(c, s);
    CHECK(c->st[1].rx == 50000 && c->st[1].closes == 1);
    CHECK(h2_resume(s->s, 1) == H2_ERR_STREAM); /* gone */
    peer_free(c);
    peer_free(s);
}

static void test_interim(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/cont", 10, 0);
    c->st[1].tx_defer = 1;
    pump(c, s);
    CHECK(s->st[1].requests == 1);
    CHECK(h2_submit_interim(s->s, 1, 100, NULL, 0) == H2_OK);
    CHECK(h2_submit_interim(s->s, 1, 101, NULL, 0) == H2_ERR_ARG);
    CHECK(h2_submit_interim(s->s, 1, 200, NULL, 0) == H2_ERR_ARG);
    pump(c, s);
    CHECK(c->st[1].interim == 1 && c->st[1].status == 100 && c->st[1].responses == 0);
    c->st[1].tx_defer = 0;
    h2_resume(c->s, 1);
    s->mode = RESP_AT_END;
    pump(c, s);
    CHECK(c->st[1].responses == 1 && c->st[1].status == 200 && c->st[1].rx == 10);
    peer_free(c);
    peer_free(s);
}

static void test_reset(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/a", 0, 0);
    req(c, 3, "/b", 100000, 0);
    c->st[3].tx_defer = 1;
    pump(c, s);
    CHECK(s->requests == 2);
    /* client cancels stream 1 */
    CHECK(h2_reset(c->s, 1, H2_CANCEL) == H2_OK);
    pump(c, s);
    CHECK(s->st[1].resets == 1 && s->st[1].reset_code == H2_CANCEL);
    CHECK(s->st[1].closes == 1 && s->st[1].close_code == H2_CANCEL);
    CHECK(c->st[1].resets == 0); /* we asked for it: only on_close */
    CHECK(c->st[1].closes == 1 && c->st[1].close_code == H2_CANCEL);
    /* server refuses stream 3 mid-upload */
    CHECK(h2_reset(s->s, 3, H2_REFUSED_STREAM) == H2_OK);
    pump(c, s);
    CHECK(c->st[3].resets == 1 && c->st[3].reset_code == H2_REFUSED_STREAM);
    CHECK(c->st[3].closes == 1);
    CHECK(h2_reset(s->s, 3, H2_CANCEL) == H2_ERR_STREAM);
    CHECK(h2_open_streams(c->s) == 0 && h2_open_streams(s->s) == 0);
    /* a request reset before it was ever sent */
    int32_t id = req(c, 5, "/never", 0, 0);
    CHECK(id == 5);
    CHECK(h2_reset(c->s, 5, H2_CANCEL) == H2_OK);
    pump(c, s);
    CHECK(s->st[5].requests == 0);
    CHECK(c->st[5].closes == 1);
    CHECK(h2_open_streams(c->s) == 0);
    CHECK(h2_can_open_stream(c->s));
    peer_free(c);
    peer_free(s);
}

static void test_callback_reset(void)
{
    /* a callback returning non-zero resets its stream with INTERNAL_ERROR */
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NOW;
    s->resp_status = 99; /* h2_submit_response fails -> cb_request returns -1 */
    req(c, 1, "/x", 0, 0);
    pump(c, s);
    CHECK(s->st[1].requests == 1 && s->st[1].resets == 0 && s->st[1].closes == 1);
    CHECK(c->st[1].resets == 1 && c->st[1].reset_code == H2_INTERNAL_ERROR);
    peer_free(c);
    peer_free(s);
}

static void test_goaway_graceful(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/one", 0, 0);
    req(c, 3, "/two", 0, 0);
    pump(c, s);
    CHECK(s->requests == 2);
    CHECK(h2_goaway(s->s, H2_NO_ERROR) == H2_OK);
    /* a request racing the GOAWAY */
    CHECK(req(c, 5, "/late", 0, 0) == 5);
    pump(c, s);
    CHECK(c->goaways == 1 && c->goaway_last == 3 && c->goaway_code == 0);
    CHECK(s->st[5].requests == 0);
    CHECK(c->st[5].resets == 1 && c->st[5].reset_code == H2_REFUSED_STREAM);
    CHECK(!h2_can_open_stream(c->s));
    CHECK(req(c, 7, "/after", 0, 0) == H2_ERR_REFUSED);
    CHECK(h2_want_read(s->s)); /* streams still open */
    respond(s, 1, 200, 100, 0);
    respond(s, 3, 200, 200, 0);
    pump(c, s);
    CHECK(c->st[1].rx == 100 && c->st[1].close_code == 0);
    CHECK(c->st[3].rx == 200 && c->st[3].close_code == 0);
    CHECK(!h2_want_read(s->s) && !h2_want_write(s->s));
    CHECK(!h2_want_read(c->s) && !h2_want_write(c->s));
    CHECK(!c->feed_err && !s->feed_err);
    peer_free(c);
    peer_free(s);
}

static void test_shutdown_notice(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/one", 0, 0);
    pump(c, s);
    CHECK(h2_shutdown_notice(s->s) == H2_OK);
    CHECK(h2_shutdown_notice(c->s) == H2_ERR_ARG);
    pump(c, s);
    CHECK(c->goaways == 1 && c->goaway_last == 0x7fffffff);
    CHECK(!h2_can_open_stream(c->s));
    CHECK(h2_goaway(s->s, H2_NO_ERROR) == H2_OK);
    respond(s, 1, 200, 1, 0);
    pump(c, s);
    CHECK(c->goaways == 2 && c->goaway_last == 1);
    CHECK(c->st[1].closes == 1 && c->st[1].close_code == 0);
    CHECK(!h2_want_read(s->s) && !h2_want_write(s->s));
    peer_free(c);
    peer_free(s);
}

static void test_goaway_error(void)
{
    /* the caller ends a session with an error code */
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/a", 0, 0);
    pump(c, s);
    CHECK(h2_goaway(s->s, H2_INTERNAL_ERROR) == H2_OK);
    pump(c, s);
    CHECK(c->goaways == 1 && c->goaway_code == H2_INTERNAL_ERROR && c->goaway_last == 1);
    CHECK(!s->feed_err); /* our own choice, not a peer's error */
    CHECK(!h2_want_read(s->s) && !h2_want_write(s->s));
    CHECK(!h2_can_open_stream(c->s));
    CHECK(h2_submit_response(s->s, 1, 200, NULL, 0, NULL, NULL) == H2_OK ||
          !h2_want_write(s->s));
    peer_free(c);
    peer_free(s);
}

static void test_session_free_cancels(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/a", 0, 0);
    req(c, 3, "/b", 0, 0);
    pump(c, s);
    h2_session_free(s->s);
    s->s = NULL;
    CHECK(s->st[1].resets == 1 && s->st[1].reset_code == H2_CANCEL && s->st[1].closes == 1);
    CHECK(s->st[3].closes == 1);
    peer_free(s);
    peer_free(c);
}

static void test_submit_checks(void)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/", 0, 0);
    pump(c, s);
    struct h2_header upper[] = {{"Content-Type", 12, "x", 1}};
    struct h2_header conn[] = {{"connection", 10, "close", 5}};
    struct h2_header te[] = {{"te", 2, "gzip", 4}};
    struct h2_header crlf[] = {{"x-a", 3, "a\r\nb", 4}};
    struct h2_header pseudo[] = {{":path", 5, "/", 1}};
    CHECK(h2_submit_response(s->s, 1, 200, upper, 1, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_response(s->s, 1, 200, conn, 1, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_response(s->s, 1, 200, te, 1, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_response(s->s, 1, 200, crlf, 1, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_response(s->s, 1, 200, pseudo, 1, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_response(s->s, 1, 101, NULL, 0, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_response(s->s, 9, 200, NULL, 0, NULL, NULL) == H2_ERR_STREAM);
    CHECK(h2_submit_response(c->s, 1, 200, NULL, 0, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_trailers(s->s, 1, pseudo, 1) == H2_ERR_ARG);
    CHECK(h2_submit_response(s->s, 1, 204, NULL, 0, NULL, NULL) == H2_OK);
    struct h2_header nopath[] = {{":method", 7, "GET", 3}, {":scheme", 7, "http", 4},
                                 {":authority", 10, "a", 1}};
    struct h2_header late[] = {{":method", 7, "GET", 3}, {":scheme", 7, "http", 4},
                               {"x-a", 3, "1", 1}, {":path", 5, "/", 1}};
    struct h2_header conn_ok[] = {{":method", 7, "CONNECT", 7}, {":authority", 10, "a:443", 5}};
    struct h2_header badpath[] = {{":method", 7, "GET", 3}, {":scheme", 7, "http", 4},
                                  {":path", 5, "x", 1}};
    struct h2_header dup[] = {{":method", 7, "GET", 3}, {":method", 7, "GET", 3},
                              {":scheme", 7, "http", 4}, {":path", 5, "/", 1}};
    struct h2_header keep[] = {{":method", 7, "GET", 3}, {":scheme", 7, "http", 4},
                               {":path", 5, "/", 1}, {"keep-alive", 10, "5", 1}};
    CHECK(h2_submit_request(c->s, nopath, 3, NULL, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_request(c->s, late, 4, NULL, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_request(c->s, badpath, 3, NULL, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_request(c->s, dup, 4, NULL, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_request(c->s, keep, 4, NULL, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_request(s->s, keep, 3, NULL, NULL, NULL) == H2_ERR_ARG);
    CHECK(h2_submit_request(c->s, conn_ok, 2, NULL, NULL, NULL) == 3);
    CHECK(h2_header_is_connection_specific("Transfer-Encoding", 17, "chunked", 7));
    CHECK(h2_header_is_connection_specific("TE", 2, "trailers, gzip", 14));
    CHECK(!h2_header_is_connection_specific("te", 2, "Trailers", 8));
    CHECK(!h2_header_is_connection_specific("content-length", 14, "1", 1));
    CHECK(strcmp(h2_error_name(H2_ENHANCE_YOUR_CALM), "ENHANCE_YOUR_CALM") == 0);
    CHECK(strcmp(h2_error_name(99), "UNKNOWN") == 0);
    struct h2_settings bad = {.max_frame_size = 100};
    CHECK(h2_session_server(&tcb, NULL, &bad) == NULL);
    struct h2_settings bad2 = {.initial_window_size = 0x80000000u};
    CHECK(h2_session_client(&tcb, NULL, &bad2) == NULL);
    peer_free(c);
    peer_free(s);
}

static void test_header_limits(void)
{
    /* the server answers 431 to a request head over its limits */
    struct h2_settings small = {.max_header_list_size = 4096, .max_headers = 10};
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, &small);
    s->mode = RESP_NOW;
    pump(c, s);
    char big[6000];
    memset(big, 'a', sizeof(big));
    struct h2_header hs[] = {
        {":method", 7, "GET", 3}, {":scheme", 7, "http", 4}, {":path", 5, "/", 1},
        {":authority", 10, "x", 1}, {"x-big", 5, big, sizeof(big)},
    };
    int32_t id = h2_submit_request(c->s, hs, 5, NULL, NULL, NULL);
    CHECK(id == 1);
    pump(c, s);
    CHECK(s->requests == 0);
    CHECK(ts(c, 1)->status == 431 && c->st[1].closes == 1);
    struct h2_header many[20];
    memcpy(many, hs, 4 * sizeof(hs[0]));
    for (int i = 4; i < 20; i++)
        many[i] = (struct h2_header){"x-n", 3, "1", 1};
    CHECK(h2_submit_request(c->s, many, 20, NULL, NULL, NULL) == 3);
    CHECK(h2_submit_request(c->s, many, 9, NULL, NULL, NULL) == 5);
    pump(c, s);
    CHECK(ts(c, 3)->status == 431);
    CHECK(ts(c, 5)->status == 200 && s->requests == 1);
    CHECK(!s->feed_err && !c->feed_err);
    peer_free(c);
    peer_free(s);

    /* a client resets a response head over its limits */
    c = peer_new(0, &small);
    s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    req(c, 1, "/", 0, 0);
    pump(c, s);
    struct h2_header rh[] = {{"x-big", 5, big, sizeof(big)}};
    CHECK(h2_submit_response(s->s, 1, 200, rh, 1, NULL, NULL) == H2_OK);
    pump(c, s);
    CHECK(c->st[1].responses == 0);
    CHECK(c->st[1].resets == 1 && c->st[1].closes == 1);
    CHECK(!c->feed_err);
    peer_free(c);
    peer_free(s);
}

/* ---- raw frames -------------------------------------------------------------- */

struct wbuf {
    uint8_t b[1 << 20];
    size_t n;
};

/* Appends p (borrowed) to w (caller's). */
static void w_bytes(struct wbuf *w, const void *p, size_t n)
{
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

/* Appends a frame to w (caller's); payload borrowed. */
static void w_frame(struct wbuf *w, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid,
                    const uint8_t *payload)
{
    uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                    (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    w_bytes(w, h, 9);
    if (len && payload)
        w_bytes(w, payload, len);
}

/* Appends the client preface and SETTINGS to w. */
static void w_preface(struct wbuf *w)
{
    w_bytes(w, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    w_frame(w, 0, 4, 0, 0, NULL);
}

/* HPACK integer with an n-bit prefix. */
static size_t hp_int(uint8_t *p, uint32_t v, int bits, uint8_t first)
{
    uint32_t max = (1u << bits) - 1;
    if (v < max) {
        p[0] = first | (uint8_t)v;
        return 1;
    }
    size_t k = 0;
    p[k++] = first | (uint8_t)max;
    v -= max;
    while (v >= 128) {
        p[k++] = (uint8_t)(v % 128 + 128);
        v /= 128;
    }
    p[k++] = (uint8_t)v;
    return k;
}

/* Literal header field without indexing, new name, no Huffman. */
static size_t hp_lit(uint8_t *p, const char *name, const char *value, size_t vlen)
{
    size_t k = 0, nl = strlen(name);
    p[k++] = 0;
    k += hp_int(p + k, (uint32_t)nl, 7, 0);
    memcpy(p + k, name, nl);
    k += nl;
    k += hp_int(p + k, (uint32_t)vlen, 7, 0);
    memcpy(p + k, value, vlen);
    return k + vlen;
}

/* A HEADERS frame carrying name/value pairs (NULL-terminated list). */
static void w_headers(struct wbuf *w, uint32_t sid, uint8_t flags, const char *const *kv)
{
    static uint8_t blk[65536];
    size_t n = 0;
    for (; kv[0]; kv += 2)
        n += hp_lit(blk + n, kv[0], kv[1], strlen(kv[1]));
    w_frame(w, (uint32_t)n, 1, flags | 0x4, sid, blk);
}

/* Parsed output of a session: the frames it sent. */
struct outscan {
    int frames, settings_first, goaway, rst, headers;
    uint32_t goaway_code, rst_code[64];
    int32_t rst_sid[64], goaway_last;
};

/* Borrows b; fills the caller's o. */
static void scan_out(const uint8_t *b, size_t n, struct outscan *o)
{
    memset(o, 0, sizeof(*o));
    size_t off = 0;
    while (off + 9 <= n) {
        uint32_t len = (uint32_t)b[off] << 16 | (uint32_t)b[off + 1] << 8 | b[off + 2];
        uint8_t type = b[off + 3];
        int32_t sid = (int32_t)((uint32_t)(b[off + 5] & 0x7f) << 24 | (uint32_t)b[off + 6] << 16 |
                                (uint32_t)b[off + 7] << 8 | b[off + 8]);
        const uint8_t *pl = b + off + 9;
        if (off + 9 + len > n)
            break;
        if (o->frames == 0)
            o->settings_first = type == 4;
        o->frames++;
        if (type == 7 && len >= 8) {
            o->goaway++;
            o->goaway_last = (int32_t)((uint32_t)(pl[0] & 0x7f) << 24 | (uint32_t)pl[1] << 16 |
                                       (uint32_t)pl[2] << 8 | pl[3]);
            o->goaway_code = (uint32_t)pl[4] << 24 | (uint32_t)pl[5] << 16 |
                             (uint32_t)pl[6] << 8 | pl[7];
        } else if (type == 3 && len == 4) {
            if (o->rst < 64) {
                o->rst_sid[o->rst] = sid;
                o->rst_code[o->rst] = (uint32_t)pl[0] << 24 | (uint32_t)pl[1] << 16 |
                                      (uint32_t)pl[2] << 8 | pl[3];
            }
            o->rst++;
        } else if (type == 1) {
            o->headers++;
        }
        off += 9 + len;
    }
}

/* Feeds w into a fresh server (in chunks of `chunk`), pulls everything.
 * Returns the first negative feed result, or 0. */
static ssize_t raw_run(struct tpeer *s, const struct wbuf *w, size_t chunk, struct outscan *o)
{
    static uint8_t out[1 << 20];
    size_t outn = 0;
    ssize_t err = 0;
    for (size_t off = 0; off < w->n && !err; off += chunk) {
        size_t n = w->n - off < chunk ? w->n - off : chunk;
        ssize_t r = h2_feed(s->s, w->b + off, n);
        if (r < 0)
            err = r;
        else if ((size_t)r != n)
            err = -100;
    }
    for (int i = 0; i < 10000; i++) {
        ssize_t n = h2_pull(s->s, out + outn, sizeof(out) - outn);
        if (n <= 0)
            break;
        outn += (size_t)n;
    }
    scan_out(out, outn, o);
    return err;
}

static void test_bad_preface(void)
{
    struct tpeer *s = peer_new(1, NULL);
    struct wbuf *w = calloc(1, sizeof(*w));
    w_bytes(w, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    struct outscan o;
    CHECK(raw_run(s, w, 5, &o) == H2_ERR);
    CHECK(o.settings_first && o.goaway == 1 && o.goaway_code == H2_PROTOCOL_ERROR);
    CHECK(h2_feed(s->s, (const uint8_t *)"x", 1) == H2_ERR);
    CHECK(!h2_want_read(s->s) && !h2_want_write(s->s));
    CHECK(strstr(h2_last_error(s->s), "preface") != NULL);
    peer_free(s);
    /* a preface split at every byte is fine */
    s = peer_new(1, NULL);
    w->n = 0;
    w_preface(w);
    CHECK(raw_run(s, w, 1, &o) == 0);
    CHECK(o.settings_first && o.goaway == 0);
    CHECK(h2_want_read(s->s));
    peer_free(s);
    free(w);
}

static void test_invalid_frames(void)
{
    struct wbuf *w = calloc(1, sizeof(*w));
    struct outscan o;
    struct {
        const char *what;
        uint8_t type, flags;
        uint32_t sid, len;
        uint8_t payload[16];
        uint32_t code;
    } cases[] = {
        {"DATA on stream 0", 0, 0, 0, 4, {1, 2, 3, 4}, H2_PROTOCOL_ERROR},
        {"WINDOW_UPDATE 0 on connection", 8, 0, 0, 4, {0, 0, 0, 0}, H2_PROTOCOL_ERROR},
        {"PING of 7 bytes", 6, 0, 0, 7, {0}, H2_FRAME_SIZE_ERROR},
        {"SETTINGS on a stream", 4, 0, 1, 0, {0}, H2_PROTOCOL_ERROR},
        {"SETTINGS bad window", 4, 0, 0, 6, {0, 4, 0x80, 0, 0, 0}, H2_FLOW_CONTROL_ERROR},
        {"HEADERS on stream 2", 1, 5, 2, 1, {0x82}, H2_PROTOCOL_ERROR},
        {"CONTINUATION unexpected", 9, 4, 1, 1, {0x82}, H2_PROTOCOL_ERROR},
        {"DATA on idle stream", 0, 0, 5, 1, {0}, H2_PROTOCOL_ERROR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tpeer *s = peer_new(1, NULL);
        w->n = 0;
        w_preface(w);
        w_frame(w, cases[i].len, cases[i].type, cases[i].flags, cases[i].sid, cases[i].payload);
        ssize_t r = raw_run(s, w, 4096, &o);
        if (r != H2_ERR || o.goaway != 1 || o.goaway_code != cases[i].code)
            fprintf(stderr, "case %s: r=%zd goaway=%d code=%u\n", cases[i].what, r, o.goaway,
                    o.goaway_code);
        CHECK(r == H2_ERR);
        CHECK(o.goaway == 1 && o.goaway_code == cases[i].code);
        CHECK(!h2_want_read(s->s) && !h2_want_write(s->s));
        peer_free(s);
    }
    /* frame larger than SETTINGS_MAX_FRAME_SIZE */
    struct tpeer *s = peer_new(1, NULL);
    w->n = 0;
    w_preface(w);
    static const char *const get[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                      ":authority", "a", NULL};
    w_headers(w, 1, 0, get);
    static uint8_t big[20000];
    w_frame(w, sizeof(big), 0, 0, 1, big);
    CHECK(raw_run(s, w, 1000, &o) == H2_ERR);
    CHECK(o.goaway == 1 && o.goaway_code == H2_FRAME_SIZE_ERROR);
    peer_free(s);
    free(w);
}

static void test_malformed_requests(void)
{
    struct wbuf *w = calloc(1, sizeof(*w));
    struct outscan o;
    static const char *const conn[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                       ":authority", "a", "connection", "keep-alive", NULL};
    static const char *const te_bad[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                         ":authority", "a", "te", "gzip", NULL};
    static const char *const te_ok[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                        ":authority", "a", "te", "trailers", NULL};
    static const char *const upper[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                        ":authority", "a", "X-Up", "1", NULL};
    static const char *const nopath[] = {":method", "GET", ":scheme", "http", ":authority", "a",
                                         NULL};
    static const char *const mismatch[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                           ":authority", "a.test", "host", "b.test", NULL};
    static const char *const noauth[] = {":method", "GET", ":scheme", "http", ":path", "/", NULL};
    static const char *const relpath[] = {":method", "GET", ":scheme", "http", ":path", "x",
                                          ":authority", "a", NULL};
    static const char *const hostonly[] = {":method", "GET", ":scheme", "https", ":path", "/h",
                                           "host", "h.test", "x-custom", "v", NULL};
    static const char *const star[] = {":method", "OPTIONS", ":scheme", "http", ":path", "*",
                                       ":authority", "a", NULL};
    struct {
        const char *const *kv;
        int ok;
    } cases[] = {
        {conn, 0}, {te_bad, 0}, {te_ok, 1}, {upper, 0}, {nopath, 0},
        {mismatch, 0}, {noauth, 0}, {relpath, 0}, {hostonly, 1}, {star, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tpeer *s = peer_new(1, NULL);
        s->mode = RESP_NOW;
        w->n = 0;
        w_preface(w);
        w_headers(w, 1, 1, cases[i].kv);
        ssize_t r = raw_run(s, w, 4096, &o);
        CHECK(r == 0);
        CHECK(o.goaway == 0);
        if (cases[i].ok) {
            CHECK(s->requests == 1 && o.rst == 0 && o.headers == 1);
        } else {
            if (!(s->requests == 0 && o.rst == 1))
                fprintf(stderr, "malformed case %zu: requests=%d rst=%d\n", i, s->requests, o.rst);
            CHECK(s->requests == 0 && o.rst == 1 && o.rst_sid[0] == 1 &&
                  o.rst_code[0] == H2_PROTOCOL_ERROR);
        }
        if (cases[i].kv == hostonly)
            CHECK(strcmp(s->st[1].authority, "h.test") == 0 && s->st[1].nheaders == 6 &&
                  strcmp(s->st[1].xhdr, "v") == 0);
        CHECK(h2_open_streams(s->s) == 0);
        peer_free(s);
    }
    free(w);
}

static void test_rapid_reset(void)
{
    /* over the limit: GOAWAY ENHANCE_YOUR_CALM */
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    int i;
    for (i = 0; i < 300 && !s->feed_err; i++) {
        int32_t id = req(c, 1 + 2 * i, "/rr", 0, 0);
        if (id < 0)
            break;
        pump(c, s);
        h2_reset(c->s, id, H2_CANCEL);
        pump(c, s);
    }
    CHECK(s->feed_err);
    CHECK(i > 100 && i <= 102);
    CHECK(c->goaways == 1 && c->goaway_code == H2_ENHANCE_YOUR_CALM);
    CHECK(!h2_want_read(s->s) && !h2_want_write(s->s));
    CHECK(strstr(h2_last_error(s->s), "rapid reset") != NULL);
    peer_free(c);
    peer_free(s);
    /* under the limit: fine */
    c = peer_new(0, NULL);
    s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    for (i = 0; i < 90; i++) {
        int32_t id = req(c, 1 + 2 * i, "/rr", 0, 0);
        pump(c, s);
        h2_reset(c->s, id, H2_CANCEL);
        pump(c, s);
    }
    CHECK(!s->feed_err && c->goaways == 0);
    CHECK(s->requests == 90);
    peer_free(c);
    peer_free(s);
    /* raw: HEADERS + RST_STREAM pairs in one burst ("made you reset"
     * variants count too: malformed requests) */
    s = peer_new(1, NULL);
    struct wbuf *w = calloc(1, sizeof(*w));
    w_preface(w);
    static const char *const get[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                      ":authority", "a", NULL};
    static const char *const bad[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                      ":authority", "a", "connection", "x", NULL};
    uint8_t cancel[4] = {0, 0, 0, 8};
    for (i = 0; i < 200; i++) {
        uint32_t sid = 1 + 2 * (uint32_t)i;
        if (i % 2) {
            w_headers(w, sid, 1, bad);
        } else {
            w_headers(w, sid, 0, get);
            w_frame(w, 4, 3, 0, sid, cancel);
        }
    }
    struct outscan o;
    CHECK(raw_run(s, w, 1 << 20, &o) == H2_ERR);
    CHECK(o.goaway == 1 && o.goaway_code == H2_ENHANCE_YOUR_CALM);
    CHECK(s->requests <= 101);
    peer_free(s);
    free(w);
}

static void test_floods(void)
{
    struct wbuf *w = calloc(1, sizeof(*w));
    struct outscan o;
    /* CONTINUATION flood */
    struct tpeer *s = peer_new(1, NULL);
    w_preface(w);
    uint8_t blk[64];
    size_t n = hp_lit(blk, ":method", "GET", 3);
    w_frame(w, (uint32_t)n, 1, 0, 1, blk); /* HEADERS without END_HEADERS */
    n = hp_lit(blk, "x-a", "b", 1);
    for (int i = 0; i < 50; i++)
        w_frame(w, (uint32_t)n, 9, 0, 1, blk);
    CHECK(raw_run(s, w, 4096, &o) == H2_ERR);
    CHECK(o.goaway == 1 && o.goaway_code == H2_ENHANCE_YOUR_CALM);
    peer_free(s);
    /* PING flood from a peer that does not read */
    s = peer_new(1, NULL);
    w->n = 0;
    w_preface(w);
    uint8_t ping[8] = {0};
    for (int i = 0; i < 6000; i++)
        w_frame(w, 8, 6, 0, 0, ping);
    ssize_t err = 0;
    size_t max_pending = 0;
    for (size_t off = 0; off < w->n && !err; off += 4096) {
        size_t k = w->n - off < 4096 ? w->n - off : 4096;
        err = h2_feed(s->s, w->b + off, k);
        if (err > 0)
            err = 0;
        if (h2_output_pending(s->s) > max_pending)
            max_pending = h2_output_pending(s->s);
    }
    CHECK(err == H2_ERR);
    CHECK(max_pending <= H2_STAGE_SOFT + 64);
    CHECK(strstr(h2_last_error(s->s), "flood") != NULL);
    peer_free(s);
    /* SETTINGS flood, same story */
    s = peer_new(1, NULL);
    w->n = 0;
    w_preface(w);
    for (int i = 0; i < 6000; i++)
        w_frame(w, 0, 4, 0, 0, NULL);
    err = 0;
    for (size_t off = 0; off < w->n && !err; off += 4096) {
        size_t k = w->n - off < 4096 ? w->n - off : 4096;
        err = h2_feed(s->s, w->b + off, k);
        if (err > 0)
            err = 0;
    }
    CHECK(err == H2_ERR);
    peer_free(s);
    /* a reading peer can PING as much as it likes */
    struct tpeer *c = peer_new(0, NULL);
    s = peer_new(1, NULL);
    w->n = 0;
    w_preface(w);
    for (int i = 0; i < 5000; i++)
        w_frame(w, 8, 6, 0, 0, ping);
    err = 0;
    uint8_t out[65536];
    for (size_t off = 0; off < w->n && !err; off += 4096) {
        size_t k = w->n - off < 4096 ? w->n - off : 4096;
        err = h2_feed(s->s, w->b + off, k);
        if (err > 0)
            err = 0;
        while (h2_pull(s->s, out, sizeof(out)) > 0)
            ;
    }
    CHECK(err == 0);
    peer_free(s);
    peer_free(c);
    /* empty DATA frames */
    s = peer_new(1, NULL);
    w->n = 0;
    w_preface(w);
    static const char *const post[] = {":method", "POST", ":scheme", "http", ":path", "/",
                                       ":authority", "a", NULL};
    w_headers(w, 1, 0, post);
    for (int i = 0; i < 1000; i++)
        w_frame(w, 0, 0, 0, 1, NULL);
    CHECK(raw_run(s, w, 4096, &o) == H2_ERR);
    CHECK(o.goaway == 1 && o.goaway_code == H2_ENHANCE_YOUR_CALM);
    peer_free(s);
    /* too many streams at once: before the client acknowledged our
     * SETTINGS the extra streams are refused; after, it is a connection
     * error (nghttp2's choice among RFC 9113 5.1.2's options) */
    static const char *const get[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                      ":authority", "a", NULL};
    for (int acked = 0; acked < 2; acked++) {
        s = peer_new(1, NULL);
        s->mode = RESP_NONE;
        w->n = 0;
        w_preface(w);
        if (acked)
            w_frame(w, 0, 4, 1, 0, NULL);
        for (int i = 0; i < 110; i++)
            w_headers(w, 1 + 2 * (uint32_t)i, 0, get);
        ssize_t rr = raw_run(s, w, 4096, &o);
        CHECK(s->requests == 100);
        if (acked) {
            CHECK(rr == H2_ERR && o.goaway == 1 && o.goaway_code == H2_PROTOCOL_ERROR);
        } else {
            CHECK(rr == 0 && o.goaway == 0 && o.rst == 10 && o.rst_code[0] == H2_REFUSED_STREAM);
        }
        peer_free(s);
    }
    free(w);
}

static void test_padding_and_window(void)
{
    /* padded DATA: padding is given back to the window by the library */
    struct tpeer *s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    struct wbuf *w = calloc(1, sizeof(*w));
    w_preface(w);
    static const char *const post[] = {":method", "POST", ":scheme", "http", ":path", "/",
                                       ":authority", "a", NULL};
    w_headers(w, 1, 0, post);
    uint8_t pl[1001];
    memset(pl, 0, sizeof(pl));
    pl[0] = 200; /* pad length */
    for (int i = 0; i < 800; i++)
        pl[1 + i] = pat(1, (uint64_t)i);
    w_frame(w, sizeof(pl), 0, 0x8 | 0x1, 1, pl);
    struct outscan o;
    CHECK(raw_run(s, w, 4096, &o) == 0);
    CHECK(s->st[1].rx == 800 && s->st[1].rx_bad == 0 && s->st[1].ends == 1);
    peer_free(s);
    /* sending more than the stream window is a stream error */
    s = peer_new(1, NULL);
    s->mode = RESP_NONE;
    s->hold_all = 1;
    w->n = 0;
    w_preface(w);
    w_frame(w, 0, 4, 1, 0, NULL);
    w_headers(w, 1, 0, post);
    static uint8_t chunk[16384];
    for (int i = 0; i < 5; i++)
        w_frame(w, sizeof(chunk), 0, 0, 1, chunk);
    CHECK(raw_run(s, w, 65536, &o) == 0);
    CHECK(o.rst == 1 && o.rst_code[0] == H2_FLOW_CONTROL_ERROR);
    CHECK(s->st[1].resets == 1 && s->st[1].closes == 1);
    peer_free(s);
    free(w);
}

/* ---- interop with nghttp and h2load ---------------------------------------- */

struct iconn {
    int fd;
    struct h2_session *s;
    uint8_t out[32768];
    size_t off, len;
    int closing;
};

struct istream {
    uint64_t rx;
    char path[64];
    char body[128];
    size_t blen, boff;
    uint64_t big, sent;
};

static int interop_requests;

/* Body callback: ud is the stream state; buf is the session's. */
static ssize_t ibody(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof, int *deferred)
{
    struct istream *st = ud;
    if (st->big) {
        uint64_t left = st->big - st->sent;
        size_t n = left < len ? (size_t)left : len;
        memset(buf, 'z', n);
        st->sent += n;
        *eof = st->sent == st->big;
        return (ssize_t)n;
    }
    size_t n = st->blen - st->boff < len ? st->blen - st->boff : len;
    memcpy(buf, st->body + st->boff, n);
    st->boff += n;
    *eof = st->boff == st->blen;
    return (ssize_t)n;
}

/* st: owned by the stream (freed in i_close), used by the body. */
static void irespond(struct iconn *c, int32_t id, struct istream *st)
{
    struct h2_header hs[] = {{"content-type", 12, "text/plain", 10},
                             {"server", 6, "strand-test", 11}};
    h2_submit_response(c->s, id, 200, hs, 2, ibody, st);
}

/* Callback: ud is the connection; hs borrowed. */
static int i_request(void *ud, int32_t id, const struct h2_header *hs, size_t n, int end)
{
    struct iconn *c = ud;
    struct istream *st = calloc(1, sizeof(*st));
    const struct h2_header *p = h2_header_get(hs, n, ":path");
    snprintf(st->path, sizeof(st->path), "%.*s", (int)p->vlen, p->value);
    h2_set_stream_ud(c->s, id, st);
    interop_requests++;
    if (strcmp(st->path, "/big") == 0)
        st->big = 4u << 20;
    if (end) {
        st->blen = (size_t)snprintf(st->body, sizeof(st->body), "hello from strand %s\n", st->path);
        irespond(c, id, st);
    }
    return 0;
}

/* Callback: ud is the connection; d borrowed. */
static int i_data(void *ud, int32_t id, const uint8_t *d, size_t len)
{
    struct iconn *c = ud;
    struct istream *st = h2_stream_ud(c->s, id);
    st->rx += len;
    h2_consume(c->s, id, len);
    return 0;
}

/* Callback: ud is the connection. */
static void i_end(void *ud, int32_t id)
{
    struct iconn *c = ud;
    struct istream *st = h2_stream_ud(c->s, id);
    if (st->blen == 0 && !st->big) {
        st->blen = (size_t)snprintf(st->body, sizeof(st->body), "got %llu bytes\n",
                                    (unsigned long long)st->rx);
        irespond(c, id, st);
    }
}

/* Callback: ud is the connection; frees the stream state. */
static void i_close(void *ud, int32_t id, uint32_t code)
{
    struct iconn *c = ud;
    free(h2_stream_ud(c->s, id));
}

static const struct h2_callbacks icb = {i_request, NULL, i_data, NULL, i_end, NULL, i_close, NULL};

/* Runs cmd (argv) with stdout+stderr to a file while serving HTTP/2 on lfd.
 * Returns the exit status (or -1 on timeout) and fills outp (malloc'ed). */
static int serve_while(int lfd, char *const argv[], char **outp, int timeout_s)
{
    char tmpl[] = "/tmp/test_h2_XXXXXX";
    int ofd = mkstemp(tmpl);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(ofd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    struct iconn *conns[32] = {0};
    int status = -1, done = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    static uint8_t in[65536];
    while (!done) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        struct pollfd pf[33];
        int np = 0;
        pf[np++] = (struct pollfd){lfd, POLLIN, 0};
        for (int i = 0; i < 32; i++) {
            if (!conns[i])
                continue;
            struct iconn *c = conns[i];
            /* produce output while there is room */
            while (!c->closing || c->len == 0) {
                if (c->len == 0)
                    c->off = 0;
                size_t room = sizeof(c->out) - c->off - c->len;
                if (room < 1024)
                    break;
                ssize_t n = h2_pull(c->s, c->out + c->off + c->len, room);
                if (n <= 0)
                    break;
                c->len += (size_t)n;
            }
            short ev = POLLIN;
            if (c->len)
                ev |= POLLOUT;
            pf[np++] = (struct pollfd){c->fd, ev, 0};
        }
        poll(pf, (nfds_t)np, 20);
        if (pf[0].revents & POLLIN) {
            int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
            for (int i = 0; fd >= 0 && i < 32; i++) {
                if (!conns[i]) {
                    conns[i] = calloc(1, sizeof(struct iconn));
                    conns[i]->fd = fd;
                    conns[i]->s = h2_session_server(&icb, conns[i], NULL);
                    fd = -1;
                }
            }
            if (fd >= 0)
                close(fd);
        }
        for (int i = 0; i < 32; i++) {
            struct iconn *c = conns[i];
            if (!c)
                continue;
            int dead = 0;
            ssize_t n = read(c->fd, in, sizeof(in));
            if (n > 0) {
                if (h2_feed(c->s, in, (size_t)n) < 0)
                    c->closing = 1;
            } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                dead = 1;
            }
            while (c->len > 0) {
                ssize_t k = write(c->fd, c->out + c->off, c->len);
                if (k <= 0)
                    break;
                c->off += (size_t)k;
                c->len -= (size_t)k;
            }
            if (!h2_want_read(c->s) && !h2_want_write(c->s) && c->len == 0)
                dead = 1;
            if (dead) {
                close(c->fd);
                h2_session_free(c->s);
                free(c);
                conns[i] = NULL;
            }
        }
        if (waitpid(pid, &status, WNOHANG) == pid)
            done = 1;
    }
    for (int i = 0; i < 32; i++) {
        if (conns[i]) {
            close(conns[i]->fd);
            h2_session_free(conns[i]->s);
            free(conns[i]);
        }
    }
    off_t sz = lseek(ofd, 0, SEEK_END);
    char *out = malloc((size_t)sz + 1);
    ssize_t got = pread(ofd, out, (size_t)sz, 0);
    out[got > 0 ? got : 0] = 0;
    close(ofd);
    unlink(tmpl);
    *outp = out;
    if (!done)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_interop(void)
{
    const char *nghttp = "/usr/bin/nghttp", *h2load = "/usr/bin/h2load";
    if (access(nghttp, X_OK) != 0 || access(h2load, X_OK) != 0) {
        fprintf(stderr, "interop: nghttp/h2load not installed, skipped\n");
        return;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 64) != 0) {
        CHECK(!"listen");
        return;
    }
    socklen_t al = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &al);
    char url[128], urlbig[128], url2[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/interop", ntohs(a.sin_port));
    snprintf(urlbig, sizeof(urlbig), "http://127.0.0.1:%d/big", ntohs(a.sin_port));
    snprintf(url2, sizeof(url2), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    char *out = NULL;

    /* nghttp -v: a GET, frames printed */
    char *argv1[] = {(char *)nghttp, "-v", url, NULL};
    int rc = serve_while(lfd, argv1, &out, 20);
    CHECK(rc == 0);
    CHECK(strstr(out, ":status: 200") != NULL);
    CHECK(strstr(out, "hello from strand /interop") != NULL);
    CHECK(strstr(out, "recv SETTINGS frame") != NULL);
    if (rc != 0)
        fprintf(stderr, "nghttp output:\n%s\n", out);
    free(out);

    /* nghttp -d: a 300 kB upload, echoed as a count */
    char dpath[] = "/tmp/test_h2_dXXXXXX";
    int dfd = mkstemp(dpath);
    static char blob[300000];
    memset(blob, 'q', sizeof(blob));
    CHECK(write(dfd, blob, sizeof(blob)) == (ssize_t)sizeof(blob));
    close(dfd);
    char *argv2[] = {(char *)nghttp, "-d", dpath, url, NULL};
    rc = serve_while(lfd, argv2, &out, 20);
    CHECK(rc == 0);
    CHECK(strstr(out, "got 300000 bytes") != NULL);
    if (rc != 0 || !strstr(out, "got 300000 bytes"))
        fprintf(stderr, "nghttp -d output:\n%.2000s\n", out);
    free(out);
    unlink(dpath);

    /* nghttp: a 4 MiB download (flow control against a real client) */
    char *argv3[] = {(char *)nghttp, urlbig, NULL};
    rc = serve_while(lfd, argv3, &out, 30);
    CHECK(rc == 0);
    CHECK(strlen(out) == (4u << 20));
    free(out);

    /* h2load: 1000 requests, 4 connections, 10 streams each */
    interop_requests = 0;
    char *argv4[] = {(char *)h2load, "-n", "1000", "-c", "4", "-m", "10", url2, NULL};
    rc = serve_while(lfd, argv4, &out, 60);
    CHECK(rc == 0);
    CHECK(strstr(out, "1000 succeeded, 0 failed, 0 errored") != NULL);
    CHECK(strstr(out, "status codes: 1000 2xx") != NULL);
    CHECK(interop_requests == 1000);
    const char *line = strstr(out, "requests:");
    if (line)
        fprintf(stderr, "h2load %.*s\n", (int)(strchr(line, '\n') - line), line);
    else
        fprintf(stderr, "h2load output:\n%.3000s\n", out);
    free(out);
    close(lfd);
}

/* ---- fuzz seed corpus ------------------------------------------------------ */

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *b,
                       size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fputc(mode, f);
    fwrite(b, 1, n, f);
    fclose(f);
}

/* Captures client->server bytes of a scenario run against a server. */
static void seed_run(const char *dir, const char *name, int kind)
{
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_AT_END;
    s->resp_body = 100;
    s->resp_trailers = kind == 2;
    capture_len = 0;
    uint8_t *tmp = calloc(1, 1);
    capture = tmp;
    capture_cap = 1;
    switch (kind) {
    case 0:
        req(c, 1, "/", 0, 0);
        break;
    case 1:
        req(c, 1, "/upload", 20000, 0);
        break;
    case 2:
        req(c, 1, "/pkg.Service/Method", 300, 1);
        break;
    case 3:
        for (int i = 0; i < 8; i++)
            req(c, 1 + 2 * i, "/many", (uint64_t)i * 10, 0);
        break;
    case 4:
        req(c, 1, "/a", 0, 0);
        req(c, 3, "/b", 1000, 0);
        c->st[3].tx_defer = 1;
        pump(c, s);
        h2_reset(c->s, 3, H2_CANCEL);
        break;
    }
    pump(c, s);
    /* mode 0: raw bytes into a server (preface included) */
    write_seed(dir, name, 0, capture, capture_len);
    free(capture);
    capture = NULL;
    peer_free(c);
    peer_free(s);
}

/* Borrows dir. */
static void gen_corpus(const char *dir)
{
    mkdir(dir, 0755);
    seed_run(dir, "get", 0);
    seed_run(dir, "post", 1);
    seed_run(dir, "trailers", 2);
    seed_run(dir, "concurrent", 3);
    seed_run(dir, "reset", 4);
    /* mode 2: what a server sends to a client that asked GET / and POST */
    struct tpeer *c = peer_new(0, NULL), *s = peer_new(1, NULL);
    s->mode = RESP_AT_END;
    s->resp_body = 500;
    s->resp_trailers = 1;
    req(c, 1, "/", 0, 0);
    req(c, 3, "/p", 10, 0);
    uint8_t buf[65536];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        ssize_t k = h2_pull(c->s, buf, sizeof(buf));
        if (k > 0)
            h2_feed(s->s, buf, (size_t)k);
        ssize_t m = h2_pull(s->s, buf + n, sizeof(buf) - n);
        if (m > 0) {
            h2_feed(c->s, buf + n, (size_t)m);
            n += (size_t)m;
        }
        if (k <= 0 && m <= 0)
            break;
    }
    write_seed(dir, "server_flight", 2, buf, n);
    peer_free(c);
    peer_free(s);
    struct wbuf *w = calloc(1, sizeof(*w));
    static const char *const bad[] = {":method", "GET", ":scheme", "http", ":path", "/",
                                      ":authority", "a", "connection", "x", NULL};
    w_headers(w, 1, 1, bad);
    uint8_t ping[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    w_frame(w, 8, 6, 0, 0, ping);
    w_frame(w, 4, 8, 0, 0, (const uint8_t *)"\0\0\1\0");
    write_seed(dir, "after_preface", 1, w->b, w->n);
    free(w);
}

/* Borrows argv. */
int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--gen-corpus") == 0) {
        gen_corpus(argv[2]);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    test_basic();
    test_post_echo();
    test_tiny_pulls();
    test_concurrent();
    test_peer_stream_limit();
    test_flow_isolation();
    test_upload_isolation();
    test_trailers();
    test_deferred_body();
    test_interim();
    test_reset();
    test_callback_reset();
    test_goaway_graceful();
    test_shutdown_notice();
    test_goaway_error();
    test_session_free_cancels();
    test_submit_checks();
    test_header_limits();
    test_bad_preface();
    test_invalid_frames();
    test_malformed_requests();
    test_rapid_reset();
    test_floods();
    test_padding_and_window();
    test_interop();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
