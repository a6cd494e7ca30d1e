/* h2_recv.c - nghttp2 receive callbacks: header lists, body data, stream
 * ends, and the checks nghttp2 leaves to the application.
 *
 * nghttp2 already enforces RFC 9113's messaging rules on what it receives
 * (pseudo-header set and order, lower-case names, connection-specific
 * fields, content-length against DATA) and answers violations with
 * RST_STREAM PROTOCOL_ERROR. Added here: the header list limits, the
 * Host/:authority rules of RFC 9113 8.3.1, a few :path checks, and counting
 * peer-caused resets for the rapid-reset limit.
 *
 * A header list is collected whole before anything is shown to the caller,
 * so a request is either delivered complete and valid or not at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http2/h2_int.h"

/* a: session-owned; frees its buffers. */
void h2r_acc_free(struct h2_hacc *a)
{
    free(a->buf);
    free(a->ents);
    free(a->hs);
    memset(a, 0, sizeof(*a));
}

/* Appends one field. a: session-owned; name, value: borrowed. 0 or -1. */
static int acc_add(struct h2_hacc *a, const uint8_t *name, size_t nlen, const uint8_t *value,
                   size_t vlen)
{
    size_t need = a->len + nlen + vlen + 2;
    if (need > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < need)
            cap *= 2;
        char *b = realloc(a->buf, cap);
        if (!b)
            return -1;
        a->buf = b;
        a->cap = cap;
    }
    if (a->n == a->ncap) {
        size_t cap = a->ncap ? a->ncap * 2 : 16;
        struct h2_hent *e = realloc(a->ents, cap * sizeof(*e));
        if (!e)
            return -1;
        a->ents = e;
        a->ncap = cap;
    }
    struct h2_hent *e = &a->ents[a->n++];
    e->name = (uint32_t)a->len;
    e->nlen = (uint32_t)nlen;
    memcpy(a->buf + a->len, name, nlen);
    a->buf[a->len + nlen] = 0;
    a->len += nlen + 1;
    e->value = (uint32_t)a->len;
    e->vlen = (uint32_t)vlen;
    if (vlen)
        memcpy(a->buf + a->len, value, vlen);
    a->buf[a->len + vlen] = 0;
    a->len += vlen + 1;
    return 0;
}

/* Builds the delivery array with room for `extra` more entries. Returns
 * session-owned memory or NULL. */
static struct h2_header *acc_headers(struct h2_hacc *a, size_t extra)
{
    if (a->n + extra > a->hcap) {
        size_t cap = a->n + extra + 8;
        struct h2_header *hs = realloc(a->hs, cap * sizeof(*hs));
        if (!hs)
            return NULL;
        a->hs = hs;
        a->hcap = cap;
    }
    for (size_t i = 0; i < a->n; i++) {
        a->hs[i].name = a->buf + a->ents[i].name;
        a->hs[i].nlen = a->ents[i].nlen;
        a->hs[i].value = a->buf + a->ents[i].value;
        a->hs[i].vlen = a->ents[i].vlen;
    }
    return a->hs;
}

/* After delivery: a big list's memory is not kept for the session's
 * lifetime (idle connections should cost little). */
static void acc_trim(struct h2_hacc *a)
{
    if (a->cap > 8192 || a->ncap > 64) {
        int32_t id = a->stream_id;
        h2r_acc_free(a);
        a->stream_id = id;
    }
}

/* Borrows both. */
static int is_request_block(const struct h2_session *s, const nghttp2_frame *f)
{
    return s->server && f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST;
}

/* nghttp2 callback: ng, f borrowed; ud is the session. */
static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_session *s = ud;
    struct h2_hacc *a = &s->acc;
    acc_trim(a); /* the previous list may have been cut short */
    a->stream_id = f->hd.stream_id;
    a->len = 0;
    a->n = 0;
    a->list_size = 0;
    a->too_large = 0;
    if (is_request_block(s, f)) {
        struct h2_stream *st = h2s_stream_new(s, f->hd.stream_id);
        if (!st)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, st);
        if (f->hd.stream_id > s->last_peer_stream)
            s->last_peer_stream = f->hd.stream_id;
    }
    return 0;
}

/* nghttp2 callback: ng, f, name, value borrowed; ud is the session. */
static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct h2_session *s = ud;
    struct h2_hacc *a = &s->acc;
    if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != a->stream_id || a->too_large)
        return 0;
    a->list_size += nlen + vlen + 32;
    if (a->list_size > s->set.max_header_list_size || a->n >= s->set.max_headers) {
        a->too_large = 1;
        /* A request gets a 431 once the block is complete (decoding must go
         * on for HPACK state anyway); anything else resets the stream. */
        return is_request_block(s, f) ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (acc_add(a, name, nlen, value, vlen) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

/* Resets a stream the caller never saw, for a reason the peer caused.
 * why: static string, copied. */
static void reject(struct h2_session *s, int32_t id, uint32_t code, const char *why)
{
    snprintf(s->lib_msg, sizeof(s->lib_msg), "stream %d: %s", id, why);
    nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, id, code);
    h2s_count_reset(s);
}

/* The caller's callback asked for a reset. st: session-owned. */
static void app_reset(struct h2_session *s, struct h2_stream *st)
{
    st->app_reset = 1;
    nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, H2_INTERNAL_ERROR);
}

/* The peer's side ended: tell the caller once. st: session-owned or NULL. */
static void remote_end(struct h2_session *s, struct h2_stream *st)
{
    if (!st || st->remote_ended)
        return;
    st->remote_ended = 1;
    if (st->visible && !st->app_reset && s->cb.on_end_stream)
        s->cb.on_end_stream(s->ud, st->id);
}

/* A request head is complete: check what nghttp2 does not, then deliver. */
static int request_done(struct h2_session *s, struct h2_stream *st, int end)
{
    struct h2_hacc *a = &s->acc;
    if (a->too_large) {
        static const nghttp2_nv nv[] = {
            {(uint8_t *)":status", (uint8_t *)"431", 7, 3, NGHTTP2_NV_FLAG_NONE},
        };
        st->final_sent = 1;
        if (end)
            st->remote_ended = 1;
        int rv = nghttp2_submit_response(s->ng, st->id, nv, 1, NULL);
        return nghttp2_is_fatal(rv) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
    }
    if (st->id > s->goaway_last) {
        /* Opened after our GOAWAY named a lower last stream: the client
         * treats it as unprocessed (and may retry it elsewhere), so it
         * must not be processed here. */
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, H2_REFUSED_STREAM);
        return 0;
    }
    struct h2_header *hs = acc_headers(a, 1);
    if (!hs)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    size_t n = a->n, npseudo = 0;
    const struct h2_header *method = NULL, *scheme = NULL, *path = NULL, *authority = NULL;
    const struct h2_header *host = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct h2_header *h = &hs[i];
        if (h->nlen > 0 && h->name[0] == ':') {
            npseudo = i + 1;
            if (h->nlen == 7 && memcmp(h->name, ":method", 7) == 0)
                method = h;
            else if (h->nlen == 7 && memcmp(h->name, ":scheme", 7) == 0)
                scheme = h;
            else if (h->nlen == 5 && memcmp(h->name, ":path", 5) == 0)
                path = h;
            else if (h->nlen == 10 && memcmp(h->name, ":authority", 10) == 0)
                authority = h;
        } else if (h->nlen == 4 && memcmp(h->name, "host", 4) == 0) {
            if (host) {
                reject(s, st->id, H2_PROTOCOL_ERROR, "duplicate host field");
                return 0;
            }
            host = h;
        }
    }
    if (!method) {
        reject(s, st->id, H2_PROTOCOL_ERROR, "request without :method");
        return 0;
    }
    int connect = method->vlen == 7 && memcmp(method->value, "CONNECT", 7) == 0;
    if (!connect) {
        int options = method->vlen == 7 && memcmp(method->value, "OPTIONS", 7) == 0;
        if (!scheme || !path || path->vlen == 0 ||
            (path->value[0] != '/' && !(options && path->vlen == 1 && path->value[0] == '*'))) {
            reject(s, st->id, H2_PROTOCOL_ERROR, "bad :path or :scheme");
            return 0;
        }
        int web = h2h_ieq(scheme->value, scheme->vlen, "http", 4) ||
                  h2h_ieq(scheme->value, scheme->vlen, "https", 5);
        /* RFC 9113 8.3.1: http(s) needs an authority, and Host must not
         * name another one than :authority. */
        if (web && !authority && (!host || host->vlen == 0)) {
            reject(s, st->id, H2_PROTOCOL_ERROR, "request without :authority or host");
            return 0;
        }
    }
    if (authority && host && !h2h_ieq(authority->value, authority->vlen, host->value, host->vlen)) {
        reject(s, st->id, H2_PROTOCOL_ERROR, "host does not match :authority");
        return 0;
    }
    if (!authority && host) {
        /* Give the caller one place to look: :authority, last pseudo-header. */
        const char *hv = host->value;
        size_t hl = host->vlen;
        memmove(&hs[npseudo + 1], &hs[npseudo], (n - npseudo) * sizeof(*hs));
        hs[npseudo].name = ":authority";
        hs[npseudo].nlen = 10;
        hs[npseudo].value = hv;
        hs[npseudo].vlen = hl;
        n++;
    }
    st->visible = 1;
    if (s->cb.on_request && s->cb.on_request(s->ud, st->id, hs, n, end) != 0)
        app_reset(s, st);
    if (end)
        remote_end(s, st);
    return 0;
}

/* A complete header block other than a request: a response (client) or
 * trailers (both sides). */
static int headers_done(struct h2_session *s, const nghttp2_frame *f);

/* HEADERS complete: dispatch, then give back big buffers. f: borrowed. */
static int headers_complete(struct h2_session *s, const nghttp2_frame *f)
{
    int rv = headers_done(s, f);
    acc_trim(&s->acc);
    return rv;
}

/* Borrows f; s is the session. */
static int headers_done(struct h2_session *s, const nghttp2_frame *f)
{
    int32_t id = f->hd.stream_id;
    struct h2_stream *st = h2s_stream(s, id);
    struct h2_hacc *a = &s->acc;
    int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (!st || a->stream_id != id)
        return 0;
    if (is_request_block(s, f))
        return request_done(s, st, end);
    if (a->too_large || !st->visible || st->app_reset) {
        if (end)
            remote_end(s, st);
        return 0;
    }
    struct h2_header *hs = acc_headers(a, 0);
    if (!hs && a->n > 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    int rv = 0;
    if (!s->server && a->n > 0 && hs[0].nlen == 7 && memcmp(hs[0].name, ":status", 7) == 0) {
        int status = 0;
        for (size_t i = 0; i < hs[0].vlen; i++)
            status = status * 10 + (hs[0].value[i] - '0'); /* nghttp2 checked: 3 digits */
        if (s->cb.on_response)
            rv = s->cb.on_response(s->ud, id, status, hs + 1, a->n - 1, end);
    } else if (s->cb.on_trailers) {
        rv = s->cb.on_trailers(s->ud, id, hs, a->n);
    }
    if (rv != 0)
        app_reset(s, st);
    if (end)
        remote_end(s, st);
    return 0;
}

/* nghttp2 callback: ng, f borrowed; ud is the session. */
static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_session *s = ud;
    if (s->conn_err)
        return 0;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        return headers_complete(s, f);
    case NGHTTP2_DATA:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            remote_end(s, h2s_stream(s, f->hd.stream_id));
        else if (f->hd.length == 0)
            h2s_count_empty(s);
        return 0;
    case NGHTTP2_RST_STREAM:
        h2s_count_reset(s); /* server side only */
        return 0;
    case NGHTTP2_GOAWAY:
        if (s->cb.on_goaway)
            s->cb.on_goaway(s->ud, f->goaway.last_stream_id, f->goaway.error_code);
        return 0;
    default:
        return 0;
    }
}

/* nghttp2 callback: ng, data borrowed; ud is the session. */
static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct h2_session *s = ud;
    struct h2_stream *st = h2s_stream(s, id);
    if (!st || !st->visible || st->app_reset || s->conn_err || !s->cb.on_data) {
        /* Nobody will forward these bytes: give the window back now. */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    /* The connection window reopens at once; only the stream's waits for
     * h2_consume. So a stalled stream never blocks the others, and what
     * the caller holds is bounded by the stream windows. */
    nghttp2_session_consume_connection(ng, len);
    st->unconsumed += len;
    if (s->cb.on_data(s->ud, id, data, len) != 0)
        app_reset(s, st);
    return 0;
}

/* nghttp2 callback: ng borrowed; ud is the session; frees the stream. */
static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    struct h2_session *s = ud;
    struct h2_stream *st = h2s_stream(s, id);
    if (!st)
        return 0;
    if (st->visible) {
        if (code != H2_NO_ERROR && !st->app_reset && s->cb.on_reset)
            s->cb.on_reset(s->ud, id, code);
        if (s->cb.on_close)
            s->cb.on_close(s->ud, id, code);
    }
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    h2s_stream_free(s, st);
    return 0;
}

/* nghttp2 callback: ng, f borrowed; ud is the session. */
static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int lib_error, void *ud)
{
    struct h2_session *s = ud;
    if (!s->lib_msg[0])
        snprintf(s->lib_msg, sizeof(s->lib_msg), "%s", nghttp2_strerror(lib_error));
    /* A stream error the peer provoked costs us a reset just like one it
     * sent ("made you reset"): count it. */
    if (f->hd.stream_id != 0)
        h2s_count_reset(s);
    return 0;
}

/* nghttp2 callback: ng, msg borrowed (copied); ud is the session. */
static int on_error(nghttp2_session *ng, int lib_error, const char *msg, size_t len, void *ud)
{
    struct h2_session *s = ud;
    size_t n = len < sizeof(s->lib_msg) - 1 ? len : sizeof(s->lib_msg) - 1;
    memcpy(s->lib_msg, msg, n);
    s->lib_msg[n] = 0;
    return 0;
}

/* Writes into the caller's cbs. */
void h2r_install(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
}
