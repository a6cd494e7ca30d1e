/* h2_session.c - HTTP/2 session lifecycle, byte pumping, GOAWAY, limits.
 *
 * Bytes in: h2_feed hands them to nghttp2_session_mem_recv. Bytes out:
 * h2_pull asks nghttp2_session_mem_send for one serialised chunk at a time
 * and copies it into the caller's buffer; what does not fit waits in a
 * small staging buffer. DATA frames are therefore only produced while the
 * caller has room for them, which is what keeps output bounded.
 *
 * nghttp2 reports most connection errors only by queueing a GOAWAY, not
 * through a return value. So that h2_feed can still say "connection error"
 * at once, it moves queued control frames into staging right away (the
 * "drain": bounded by H2_STAGE_SOFT, and DATA is held back by deferring
 * body callbacks for its duration) and watches for a GOAWAY carrying an
 * error code going out. Fatal nghttp2 errors (bad preface, flood, out of
 * memory) leave the nghttp2 session unusable: the session then writes its
 * own GOAWAY into staging and never calls nghttp2 again ("dead"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/http2/h2_int.h"

#define DEF_MAX_STREAMS 100
#define DEF_WINDOW 65535
#define DEF_CONN_WINDOW (1u << 20)
#define DEF_FRAME 16384
#define DEF_HEADER_LIST (64u * 1024)
#define DEF_MAX_HEADERS 256
#define DEF_TABLE 4096
#define DEF_RESETS 100
#define MAX_WINDOW 0x7fffffffu
#define MAX_FRAME 16777215u

/* nghttp2's flood limits, set explicitly so they are documented here. */
#define MAX_OUTBOUND_ACK 1000  /* queued SETTINGS/PING ACKs before FLOODED */
#define MAX_SETTINGS 32        /* entries in one SETTINGS frame */
#define MAX_CONTINUATIONS 8    /* CONTINUATION frames after one HEADERS */

void h2_settings_default(struct h2_settings *s)
{
    s->max_concurrent_streams = DEF_MAX_STREAMS;
    s->initial_window_size = DEF_WINDOW;
    s->connection_window_size = DEF_CONN_WINDOW;
    s->max_frame_size = DEF_FRAME;
    s->max_header_list_size = DEF_HEADER_LIST;
    s->max_headers = DEF_MAX_HEADERS;
    s->header_table_size = DEF_TABLE;
    s->max_resets_per_sec = DEF_RESETS;
}

/* Applies defaults to zero fields and checks ranges. out: caller's; in:
 * borrowed, may be NULL. */
static int settings_fill(struct h2_settings *out, const struct h2_settings *in)
{
    struct h2_settings d;
    h2_settings_default(&d);
    if (!in) {
        *out = d;
        return 0;
    }
    *out = *in;
#define DEF(f) if (out->f == 0) out->f = d.f
    DEF(max_concurrent_streams);
    DEF(initial_window_size);
    DEF(connection_window_size);
    DEF(max_frame_size);
    DEF(max_header_list_size);
    DEF(max_headers);
    DEF(header_table_size);
    DEF(max_resets_per_sec);
#undef DEF
    if (out->initial_window_size > MAX_WINDOW || out->connection_window_size > MAX_WINDOW)
        return -1;
    if (out->max_frame_size < DEF_FRAME || out->max_frame_size > MAX_FRAME)
        return -1;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Counts one event; returns 1 when the estimate for the last second is
 * over limit. r: session-owned. */
static int rate_hit(struct h2_rate *r, uint32_t limit)
{
    uint64_t now = now_ms();
    uint64_t el = now - r->start_ms;
    if (el >= 2000) {
        r->prev = 0;
        r->cur = 0;
        r->start_ms = now;
        el = 0;
    } else if (el >= 1000) {
        r->prev = r->cur;
        r->cur = 0;
        r->start_ms += 1000;
        el -= 1000;
    }
    r->cur++;
    uint64_t est = (uint64_t)r->prev * (1000 - el) / 1000 + r->cur;
    return est > limit;
}

/* Records why the session failed, for h2_last_error. why: borrowed, copied. */
static void set_error(struct h2_session *s, const char *why)
{
    snprintf(s->err, sizeof(s->err), "%s", why);
}

/* ---- output staging ------------------------------------------------------ */

/* Appends n bytes (p: borrowed). 0, or -1 out of memory. */
static int stage_append(struct h2_session *s, const uint8_t *p, size_t n)
{
    if (s->stage_off > 0 && s->stage_len > 0)
        memmove(s->stage, s->stage + s->stage_off, s->stage_len);
    s->stage_off = 0;
    if (s->stage_len + n > s->stage_cap) {
        size_t cap = s->stage_cap ? s->stage_cap : 4096;
        while (cap < s->stage_len + n)
            cap *= 2;
        uint8_t *b = realloc(s->stage, cap);
        if (!b)
            return -1;
        s->stage = b;
        s->stage_cap = cap;
    }
    memcpy(s->stage + s->stage_len, p, n);
    s->stage_len += n;
    return 0;
}

/* Moves up to cap staged bytes into out (caller's). Returns the count. */
static size_t stage_take(struct h2_session *s, uint8_t *out, size_t cap)
{
    size_t n = s->stage_len < cap ? s->stage_len : cap;
    if (n == 0)
        return 0;
    memcpy(out, s->stage + s->stage_off, n);
    s->stage_off += n;
    s->stage_len -= n;
    if (s->stage_len == 0) {
        /* Idle sessions should hold no output memory beyond a small block. */
        s->stage_off = 0;
        if (s->stage_cap > 4096) {
            free(s->stage);
            s->stage = NULL;
            s->stage_cap = 0;
        }
    }
    return n;
}

/* Writes 4 bytes at p (caller's). */
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The session is beyond use: stop calling nghttp2 and stage our own GOAWAY
 * (after an empty SETTINGS when nothing went out yet: a server's first
 * frame must be SETTINGS). why: static string. */
static void die(struct h2_session *s, uint32_t code, const char *why)
{
    if (s->dead)
        return;
    s->dead = 1;
    s->conn_err = 1;
    set_error(s, why);
    uint8_t f[9 + 17];
    size_t n = 0;
    if (s->bytes_out == 0) {
        if (!s->server)
            return; /* no preface sent: nothing meaningful to say */
        memset(f, 0, 9);
        f[3] = NGHTTP2_SETTINGS;
        n = 9;
    }
    memset(f + n, 0, 9);
    f[n + 2] = 8;
    f[n + 3] = NGHTTP2_GOAWAY;
    put32(f + n + 9, (uint32_t)s->last_peer_stream & 0x7fffffffu);
    put32(f + n + 13, code);
    n += 17;
    stage_append(s, f, n); /* out of memory here: the caller just closes */
}

/* Maps a fatal nghttp2 error to a GOAWAY and dies. s: borrowed. */
static void ng_fail(struct h2_session *s, long rv)
{
    switch (rv) {
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
        die(s, H2_PROTOCOL_ERROR, "bad client connection preface");
        break;
    case NGHTTP2_ERR_FLOODED:
        die(s, H2_ENHANCE_YOUR_CALM, "flood: too many frames queued for a peer that does not read");
        break;
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
        die(s, H2_ENHANCE_YOUR_CALM, "CONTINUATION flood");
        break;
    case NGHTTP2_ERR_NOMEM:
        die(s, H2_INTERNAL_ERROR, "out of memory");
        break;
    default:
        die(s, H2_INTERNAL_ERROR, nghttp2_strerror((int)rv));
        break;
    }
}

/* Borrows why (copied). */
void h2s_conn_error(struct h2_session *s, uint32_t code, const char *why)
{
    if (s->dead || s->conn_err)
        return;
    s->conn_err = 1;
    set_error(s, why);
    int rv = nghttp2_session_terminate_session(s->ng, code);
    if (rv != 0 && nghttp2_is_fatal(rv))
        ng_fail(s, rv);
}

/* s: borrowed. */
void h2s_count_reset(struct h2_session *s)
{
    if (s->server && rate_hit(&s->resets, s->set.max_resets_per_sec))
        h2s_conn_error(s, H2_ENHANCE_YOUR_CALM, "rapid reset: too many stream resets per second");
}

/* s: borrowed. */
void h2s_count_empty(struct h2_session *s)
{
    if (rate_hit(&s->empties, s->set.max_resets_per_sec))
        h2s_conn_error(s, H2_ENHANCE_YOUR_CALM, "flood of empty DATA frames");
}

/* ---- streams ------------------------------------------------------------- */

struct h2_stream *h2s_stream_new(struct h2_session *s, int32_t id)
{
    struct h2_stream *st = h2_mem_zalloc(sizeof(*st));
    if (!st)
        return NULL;
    st->id = id;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->nstreams++;
    return st;
}

/* st: session-owned, unlinked and freed. */
void h2s_stream_free(struct h2_session *s, struct h2_stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->nstreams--;
    if (st->local)
        s->nlocal--;
    free(st->trailers);
    h2_mem_release(st);
}

/* Returns a session-owned stream or NULL. */
struct h2_stream *h2s_stream(const struct h2_session *s, int32_t id)
{
    if (id <= 0)
        return NULL;
    if (!s->dead) {
        struct h2_stream *st = nghttp2_session_get_stream_user_data(s->ng, id);
        if (st)
            return st;
    }
    /* Requests not sent yet have no nghttp2 stream; neither does anything
     * once the session is dead. */
    for (struct h2_stream *st = s->streams; st; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

/* Queues our SETTINGS and the connection window. 0 or -1. */
static int send_settings(struct h2_session *s)
{
    nghttp2_settings_entry iv[8];
    size_t n = 0;
    if (s->server) {
        iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                           s->set.max_concurrent_streams};
    } else {
        iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
    }
    if (s->set.initial_window_size != DEF_WINDOW)
        iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                           s->set.initial_window_size};
    if (s->set.max_frame_size != DEF_FRAME)
        iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_FRAME_SIZE, s->set.max_frame_size};
    iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                                       s->set.max_header_list_size};
    if (s->set.header_table_size != DEF_TABLE)
        iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,
                                           s->set.header_table_size};
    /* No RFC 7540 priority tree: nothing to flood, nothing to keep for
     * closed streams. */
    iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1};
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, n) != 0)
        return -1;
    if (s->set.connection_window_size != DEF_WINDOW &&
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)s->set.connection_window_size) != 0)
        return -1;
    return 0;
}

/* Returns an owned session or NULL. cb, set: borrowed. */
static struct h2_session *session_new(const struct h2_callbacks *cb, void *ud,
                                      const struct h2_settings *set, int server)
{
    struct h2_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (settings_fill(&s->set, set) < 0) {
        free(s);
        return NULL;
    }
    if (cb)
        s->cb = *cb;
    s->ud = ud;
    s->server = server;
    s->resets.start_ms = s->empties.start_ms = now_ms();
    s->goaway_last = 0x7fffffff;

    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rv = -1;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    h2r_install(cbs);
    h2t_install(cbs);
    /* Windows reopen only through h2_consume: per-stream back-pressure. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(opt, MAX_SETTINGS);
    nghttp2_option_set_max_continuations(opt, MAX_CONTINUATIONS);
    nghttp2_option_set_no_closed_streams(opt, 1);
    if (server) {
        /* Our own counter (h2s_count_reset) answers first with
         * ENHANCE_YOUR_CALM; nghttp2's token bucket is the backstop. */
        uint64_t n = s->set.max_resets_per_sec;
        nghttp2_option_set_stream_reset_rate_limit(opt, 10 * n, n);
        rv = nghttp2_session_server_new3(&s->ng, cbs, s, opt, h2_mem());
    } else {
        uint32_t peer = s->set.max_concurrent_streams < 100 ? s->set.max_concurrent_streams : 100;
        nghttp2_option_set_peer_max_concurrent_streams(opt, peer);
        nghttp2_option_set_max_reserved_remote_streams(opt, 0);
        rv = nghttp2_session_client_new3(&s->ng, cbs, s, opt, h2_mem());
    }
out:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rv != 0 || send_settings(s) < 0) {
        if (s->ng)
            nghttp2_session_del(s->ng);
        free(s);
        return NULL;
    }
    return s;
}

/* Borrows cb and s (copied); returns an owned session. */
struct h2_session *h2_session_server(const struct h2_callbacks *cb, void *ud,
                                     const struct h2_settings *s)
{
    return session_new(cb, ud, s, 1);
}

/* Borrows cb and s (copied); returns an owned session. */
struct h2_session *h2_session_client(const struct h2_callbacks *cb, void *ud,
                                     const struct h2_settings *s)
{
    return session_new(cb, ud, s, 0);
}

/* Frees s (owned) and every stream in it. */
void h2_session_free(struct h2_session *s)
{
    if (!s)
        return;
    s->freeing = 1;
    for (struct h2_stream *st = s->streams; st; st = st->next) {
        if (!st->visible)
            continue;
        if (s->cb.on_reset && !st->app_reset)
            s->cb.on_reset(s->ud, st->id, H2_CANCEL);
        if (s->cb.on_close)
            s->cb.on_close(s->ud, st->id, H2_CANCEL);
    }
    nghttp2_session_del(s->ng);
    while (s->streams)
        h2s_stream_free(s, s->streams);
    h2r_acc_free(&s->acc);
    free(s->stage);
    free(s);
}

/* ---- bytes in, bytes out ------------------------------------------------- */

/* Moves queued control frames into staging so that a GOAWAY nghttp2 queued
 * is seen now (see the top of the file). Body callbacks called meanwhile
 * are deferred, then resumed. */
static void drain(struct h2_session *s)
{
    if (s->dead || nghttp2_session_get_outbound_queue_size(s->ng) == 0)
        return;
    s->draining = 1;
    while (!s->dead && s->stage_len < H2_STAGE_SOFT &&
           nghttp2_session_get_outbound_queue_size(s->ng) > 0) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(s->ng, &p);
        if (n < 0) {
            ng_fail(s, n);
            break;
        }
        if (n == 0)
            break;
        s->bytes_out += (uint64_t)n;
        if (stage_append(s, p, (size_t)n) < 0)
            die(s, H2_INTERNAL_ERROR, "out of memory");
    }
    s->draining = 0;
    if (s->dead)
        return;
    for (struct h2_stream *st = s->streams; st; st = st->next) {
        if (st->drain_deferred) {
            st->drain_deferred = 0;
            nghttp2_session_resume_data(s->ng, st->id);
        }
    }
}

/* Borrows in. */
ssize_t h2_feed(struct h2_session *s, const uint8_t *in, size_t len)
{
    if (!s || s->freeing)
        return H2_ERR_ARG;
    if (s->dead || s->conn_err)
        return H2_ERR;
    ssize_t r = nghttp2_session_mem_recv(s->ng, in, len);
    if (r < 0) {
        ng_fail(s, r);
        return H2_ERR;
    }
    drain(s);
    if (s->dead || s->conn_err)
        return H2_ERR;
    return r;
}

/* Writes into the caller's out. */
ssize_t h2_pull(struct h2_session *s, uint8_t *out, size_t cap)
{
    if (!s || s->freeing)
        return H2_ERR_ARG;
    size_t n = stage_take(s, out, cap);
    while (n < cap && !s->dead) {
        const uint8_t *p;
        ssize_t r = nghttp2_session_mem_send(s->ng, &p);
        if (r < 0) {
            ng_fail(s, r);
            n += stage_take(s, out + n, cap - n);
            break;
        }
        if (r == 0)
            break;
        s->bytes_out += (uint64_t)r;
        size_t c = (size_t)r < cap - n ? (size_t)r : cap - n;
        memcpy(out + n, p, c);
        n += c;
        if (c < (size_t)r) {
            if (stage_append(s, p + c, (size_t)r - c) < 0)
                die(s, H2_INTERNAL_ERROR, "out of memory");
            break;
        }
    }
    return (ssize_t)n;
}

/* s: borrowed. */
int h2_want_read(const struct h2_session *s)
{
    return s && !s->dead && !s->conn_err && nghttp2_session_want_read(s->ng);
}

/* s: borrowed. */
int h2_want_write(const struct h2_session *s)
{
    return s && (s->stage_len > 0 || (!s->dead && nghttp2_session_want_write(s->ng)));
}

/* s: borrowed. */
size_t h2_output_pending(const struct h2_session *s)
{
    return s->stage_len;
}

/* ---- GOAWAY -------------------------------------------------------------- */

int h2_goaway(struct h2_session *s, uint32_t error_code)
{
    if (!s || s->freeing)
        return H2_ERR_ARG;
    if (s->dead)
        return H2_ERR;
    int rv;
    if (error_code == H2_NO_ERROR) {
        int32_t last = s->server ? nghttp2_session_get_last_proc_stream_id(s->ng) : 0;
        rv = nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, last, H2_NO_ERROR, NULL, 0);
        /* nghttp2 still accepts streams until the GOAWAY is actually sent;
         * those are refused in h2_recv.c, as the client will assume. */
        if (rv == 0 && s->server)
            s->goaway_last = last;
    } else {
        s->app_goaway = 1;
        rv = nghttp2_session_terminate_session(s->ng, error_code);
    }
    if (rv == NGHTTP2_ERR_NOMEM)
        return H2_ERR_NOMEM;
    return rv == 0 ? H2_OK : H2_ERR_STREAM;
}

/* s: borrowed. */
int h2_shutdown_notice(struct h2_session *s)
{
    if (!s || s->freeing || !s->server)
        return H2_ERR_ARG;
    if (s->dead)
        return H2_ERR;
    int rv = nghttp2_submit_shutdown_notice(s->ng);
    if (rv == NGHTTP2_ERR_NOMEM)
        return H2_ERR_NOMEM;
    return rv == 0 ? H2_OK : H2_ERR_STREAM;
}

/* ---- queries ------------------------------------------------------------- */

int h2_can_open_stream(const struct h2_session *s)
{
    if (!s || s->server || s->dead || s->conn_err || s->freeing)
        return 0;
    nghttp2_session *ng = s->ng;
    if (!nghttp2_session_check_request_allowed(ng))
        return 0;
    if (nghttp2_session_get_next_stream_id(ng) > 0x7fffffffu)
        return 0;
    uint32_t limit =
        nghttp2_session_get_remote_settings(ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (s->set.max_concurrent_streams < limit)
        limit = s->set.max_concurrent_streams;
    return s->nlocal < limit;
}

/* s: borrowed. */
size_t h2_open_streams(const struct h2_session *s)
{
    return s ? s->nstreams : 0;
}

/* Returns a string owned by s. */
const char *h2_last_error(const struct h2_session *s)
{
    return s ? s->err : "";
}
