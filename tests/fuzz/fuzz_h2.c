/* fuzz_h2.c - libFuzzer target for the HTTP/2 layer (src/proto/http2).
 *
 * The first input byte selects what to do, the rest is the peer's bytes:
 *   bits 0-1  mode: 0 server, input raw (client preface included);
 *             1 server, a valid preface + SETTINGS put in front;
 *             2 client that sent a GET and a POST, input is the server's;
 *             3 server with tiny limits, preface put in front
 *   bit  2    pull 7 bytes at a time (else 16 KiB)
 *   bit  3    the application never consumes body bytes (else at once)
 *   bits 4-7  feed chunk size: 1 + k * k * 64 bytes
 * Seeds: mode 0 are client flights captured from our own client session,
 * mode 2 a server flight (see test_h2 --gen-corpus).
 *
 * The server answers every request with a small response (body, sometimes
 * trailers), the client consumes what it gets; output is pulled between
 * feeds. Beyond "no crash, no sanitizer report, no leak", it checks:
 * h2_feed returns all bytes or H2_ERR, and H2_ERR forever after; output
 * staging stays bounded; every stream the application saw gets exactly one
 * on_close (per-stream state is heap-allocated and freed there, so a
 * missing close is a leak and a double close a double free). */
#include "proto/http2/h2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

struct fstream {
    int32_t id;
    size_t body_left;
    int trailers;
    int answered;
};

struct fctx {
    struct h2_session *s;
    int hold;
    int live;   /* per-stream states allocated and not yet closed */
};

/* Body callback: ud is the stream state; buf is the session's. */
static ssize_t body(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof, int *deferred)
{
    struct fstream *st = ud;
    size_t n = st->body_left < len ? st->body_left : len;
    memset(buf, 'b', n);
    st->body_left -= n;
    if (st->body_left == 0)
        *eof = 1;
    return (ssize_t)n;
}

/* Answers a request once: 200 with a short body, trailers on odd streams. */
static void answer(struct fctx *c, struct fstream *st)
{
    if (st->answered)
        return;
    st->answered = 1;
    st->body_left = 100;
    struct h2_header hs[] = {{"content-type", 12, "text/plain", 10}};
    if (h2_submit_response(c->s, st->id, 200, hs, 1, body, st) != H2_OK)
        return;
    if (st->id % 4 == 1) {
        struct h2_header tr[] = {{"grpc-status", 11, "0", 1}};
        h2_submit_trailers(c->s, st->id, tr, 1);
    }
}

/* Callback: ud is the context; hs borrowed. */
static int on_request(void *ud, int32_t id, const struct h2_header *hs, size_t n, int end)
{
    struct fctx *c = ud;
    for (size_t i = 0; i < n; i++)
        ASSERT(hs[i].name && hs[i].nlen > 0 && hs[i].value && hs[i].value[hs[i].vlen] == 0);
    ASSERT(h2_header_get(hs, n, ":method") != NULL);
    struct fstream *st = calloc(1, sizeof(*st));
    ASSERT(st);
    st->id = id;
    c->live++;
    ASSERT(h2_set_stream_ud(c->s, id, st) == H2_OK);
    if (end || id % 3 == 0)
        answer(c, st);
    return 0;
}

/* Callback: hs borrowed. */
static int on_response(void *ud, int32_t id, int status, const struct h2_header *hs, size_t n,
                       int end)
{
    ASSERT(status >= 100 && status <= 999);
    return 0;
}

/* Callback: ud is the context; d borrowed. */
static int on_data(void *ud, int32_t id, const uint8_t *d, size_t len)
{
    struct fctx *c = ud;
    if (!c->hold)
        ASSERT(h2_consume(c->s, id, len) == H2_OK);
    return 0;
}

/* Callback: ud is the context. */
static void on_end(void *ud, int32_t id)
{
    struct fctx *c = ud;
    struct fstream *st = h2_stream_ud(c->s, id);
    if (st)
        answer(c, st);
}

/* Callback: ud is the context; frees the stream state. */
static void on_close(void *ud, int32_t id, uint32_t code)
{
    struct fctx *c = ud;
    struct fstream *st = h2_stream_ud(c->s, id);
    if (st) {
        c->live--;
        free(st);
    }
}

static const struct h2_callbacks cbs = {on_request, on_response, on_data, NULL, on_end,
                                        NULL,       on_close,    NULL};

/* Body callback for the client's POST: ud is its state. */
static ssize_t req_body(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof, int *deferred)
{
    struct fstream *st = ud;
    return body(st, id, buf, len, eof, deferred);
}

/* Borrows data. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    int mode = ctl & 3;
    size_t pull = (ctl & 4) ? 7 : 16384;
    size_t k = ctl >> 4;
    size_t chunk = 1 + k * k * 64;

    struct fctx c = {.hold = (ctl & 8) != 0};
    struct h2_settings tiny = {.max_concurrent_streams = 3, .initial_window_size = 1024,
                               .max_header_list_size = 512, .max_headers = 8,
                               .header_table_size = 256, .max_resets_per_sec = 5};
    struct fstream *cs = NULL;
    if (mode == 2) {
        c.s = h2_session_client(&cbs, &c, NULL);
        ASSERT(c.s);
        struct h2_header get[] = {{":method", 7, "GET", 3}, {":scheme", 7, "http", 4},
                                  {":path", 5, "/", 1}, {":authority", 10, "a", 1}};
        struct h2_header post[] = {{":method", 7, "POST", 4}, {":scheme", 7, "http", 4},
                                   {":path", 5, "/p", 2}, {":authority", 10, "a", 1}};
        ASSERT(h2_submit_request(c.s, get, 4, NULL, NULL, NULL) == 1);
        cs = calloc(1, sizeof(*cs));
        cs->body_left = 3000;
        ASSERT(h2_submit_request(c.s, post, 4, req_body, cs, NULL) == 3);
    } else {
        c.s = h2_session_server(&cbs, &c, mode == 3 ? &tiny : NULL);
        ASSERT(c.s);
    }

    static uint8_t out[16384];
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    int failed = 0;
    if (mode == 1 || mode == 3) {
        ssize_t r = h2_feed(c.s, preface, sizeof(preface) - 1);
        ASSERT(r == (ssize_t)sizeof(preface) - 1);
    }
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t r = h2_feed(c.s, data + off, n);
        if (failed) {
            ASSERT(r == H2_ERR);
        } else {
            ASSERT(r == (ssize_t)n || r == H2_ERR);
            failed = r == H2_ERR;
        }
        for (int i = 0; i < 4; i++) {
            ssize_t m = h2_pull(c.s, out, pull);
            ASSERT(m >= 0 && (size_t)m <= pull);
            if (m == 0)
                break;
        }
        ASSERT(h2_output_pending(c.s) <= H2_STAGE_SOFT + (64u << 10) + 64);
    }
    /* drain what is left, bounded */
    for (int i = 0; i < 10000; i++) {
        ssize_t m = h2_pull(c.s, out, sizeof(out));
        ASSERT(m >= 0);
        if (m == 0)
            break;
    }
    if (failed)
        ASSERT(!h2_want_read(c.s));
    h2_session_free(c.s);
    ASSERT(c.live == 0);
    free(cs);
    return 0;
}
