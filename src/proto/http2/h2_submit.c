/* h2_submit.c - the sending side: response and request heads, trailers,
 * body providers, and per-stream operations (resume, consume, reset).
 *
 * Bodies are pulled, never pushed: a stream's body callback is only called
 * from inside h2_pull, when nghttp2 is about to build a DATA frame and the
 * peer's flow-control window allows it. A callback with nothing to give
 * defers the stream; h2_resume puts it back in line. Trailers are kept by
 * the stream until its body callback reports eof, then sent in place of
 * END_STREAM on the last DATA frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http2/h2_int.h"

/* nghttp2 return value -> H2_* value. */
static int map_ng(int rv)
{
    if (rv == 0)
        return H2_OK;
    if (rv == NGHTTP2_ERR_NOMEM)
        return H2_ERR_NOMEM;
    if (nghttp2_is_fatal(rv))
        return H2_ERR;
    return H2_ERR_STREAM;
}

/* Whether the session can take submissions at all. s: borrowed. */
static int usable(const struct h2_session *s)
{
    return s && !s->freeing && !s->dead;
}

/* nghttp2 data callback: buf is nghttp2's; src->ptr is the stream. */
static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_session *s = ud;
    struct h2_stream *st = src->ptr;
    if (s->draining) {
        /* h2_feed's control-frame drain: no DATA now, see h2_session.c. */
        st->drain_deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (st->app_reset)
        return NGHTTP2_ERR_DEFERRED; /* the caller let go of the body source */
    int eof = 0, deferred = 0;
    ssize_t n = st->body(st->body_ud, id, buf, len, &eof, &deferred);
    if (n < 0 || (size_t)n > len) {
        st->app_reset = 1;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (eof) {
        st->body_done = 1;
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->trailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            int rv = nghttp2_submit_trailer(ng, id, st->trailers, st->ntrailers);
            free(st->trailers);
            st->trailers = NULL;
            if (rv != 0)
                return nghttp2_is_fatal(rv) ? NGHTTP2_ERR_CALLBACK_FAILURE
                                            : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return n;
    }
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    return n;
}

/* nghttp2 callback: ng, f borrowed; ud is the session. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_session *s = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        /* nghttp2 found a connection error while receiving (see the top of
         * h2_session.c): from now on h2_feed says H2_ERR. */
        if (f->goaway.error_code != H2_NO_ERROR && !s->app_goaway && !s->conn_err) {
            s->conn_err = 1;
            if (f->goaway.opaque_data_len > 0)
                snprintf(s->err, sizeof(s->err), "GOAWAY %s sent: %.*s",
                         h2_error_name(f->goaway.error_code), (int)f->goaway.opaque_data_len,
                         (const char *)f->goaway.opaque_data);
            else
                snprintf(s->err, sizeof(s->err), "GOAWAY %s sent: %s",
                         h2_error_name(f->goaway.error_code), s->lib_msg);
        }
        return 0;
    }
    if (s->server && (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* The response is complete but the request is not: ask the client
         * to stop sending (RFC 9113 8.1), which also frees the stream. */
        struct h2_stream *st = h2s_stream(s, f->hd.stream_id);
        if (st && !st->remote_ended)
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, H2_NO_ERROR);
    }
    return 0;
}

/* Writes into the caller's cbs. */
void h2t_install(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
}

/* ---- heads --------------------------------------------------------------- */

/* Borrows hs; H2_OK when every field may go out. */
static int check_list(const struct h2_header *hs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h2h_check_regular(&hs[i]) != H2_OK)
            return H2_ERR_ARG;
    return H2_OK;
}

/* Sets up a stream's body provider. st: session-owned; prd: caller's. */
static nghttp2_data_provider *provider(struct h2_stream *st, h2_body_read_fn body, void *body_ud,
                                       nghttp2_data_provider *prd)
{
    if (!body)
        return NULL;
    st->body = body;
    st->body_ud = body_ud;
    prd->source.ptr = st;
    prd->read_callback = body_read;
    return prd;
}

/* Borrows hs (copied) and body_ud. */
int h2_submit_response(struct h2_session *s, int32_t stream_id, int status,
                       const struct h2_header *hs, size_t n, h2_body_read_fn body, void *body_ud)
{
    if (!usable(s) || !s->server || status < 200 || status > 599 || check_list(hs, n) != H2_OK)
        return H2_ERR_ARG;
    struct h2_stream *st = h2s_stream(s, stream_id);
    if (!st || !st->visible || st->final_sent || st->app_reset)
        return H2_ERR_STREAM;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    size_t nvlen;
    nghttp2_nv *nv = h2h_nv(hs, n, code, &nvlen);
    if (!nv)
        return H2_ERR_NOMEM;
    nghttp2_data_provider prd;
    int rv =
        nghttp2_submit_response(s->ng, stream_id, nv, nvlen, provider(st, body, body_ud, &prd));
    h2_mem_release(nv);
    if (rv == 0)
        st->final_sent = 1;
    return map_ng(rv);
}

/* Borrows hs (copied). */
int h2_submit_interim(struct h2_session *s, int32_t stream_id, int status,
                      const struct h2_header *hs, size_t n)
{
    if (!usable(s) || !s->server || status < 100 || status > 199 || status == 101 ||
        check_list(hs, n) != H2_OK)
        return H2_ERR_ARG;
    struct h2_stream *st = h2s_stream(s, stream_id);
    if (!st || !st->visible || st->final_sent || st->app_reset)
        return H2_ERR_STREAM;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    size_t nvlen;
    nghttp2_nv *nv = h2h_nv(hs, n, code, &nvlen);
    if (!nv)
        return H2_ERR_NOMEM;
    int rv = nghttp2_submit_headers(s->ng, NGHTTP2_FLAG_NONE, stream_id, NULL, nv, nvlen, NULL);
    h2_mem_release(nv);
    return map_ng(rv);
}

/* Borrows hs (copied). */
int h2_submit_trailers(struct h2_session *s, int32_t stream_id, const struct h2_header *hs,
                       size_t n)
{
    if (!usable(s) || n == 0 || check_list(hs, n) != H2_OK)
        return H2_ERR_ARG;
    struct h2_stream *st = h2s_stream(s, stream_id);
    if (!st || !st->visible || !st->body || st->body_done || st->trailers || st->app_reset)
        return H2_ERR_STREAM;
    st->trailers = h2h_copy(hs, n);
    if (!st->trailers)
        return H2_ERR_NOMEM;
    st->ntrailers = n;
    return H2_OK;
}

/* Checks a request's header list: known pseudo-headers, once each, first,
 * the ones the method needs; regular fields as for responses. hs: borrowed. */
static int check_request(const struct h2_header *hs, size_t n)
{
    static const char *const pseudo[] = {":method", ":scheme", ":path", ":authority"};
    const struct h2_header *seen[4] = {0};
    size_t i = 0;
    for (; i < n && hs[i].nlen > 0 && hs[i].name[0] == ':'; i++) {
        size_t k = 0;
        while (k < 4 && !(strlen(pseudo[k]) == hs[i].nlen &&
                          memcmp(pseudo[k], hs[i].name, hs[i].nlen) == 0))
            k++;
        if (k == 4 || seen[k] || hs[i].vlen == 0 || !hs[i].value)
            return H2_ERR_ARG;
        for (size_t j = 0; j < hs[i].vlen; j++)
            if ((unsigned char)hs[i].value[j] <= ' ' || hs[i].value[j] == 0x7f)
                return H2_ERR_ARG;
        seen[k] = &hs[i];
    }
    if (check_list(hs + i, n - i) != H2_OK || !seen[0])
        return H2_ERR_ARG;
    int connect = seen[0]->vlen == 7 && memcmp(seen[0]->value, "CONNECT", 7) == 0;
    if (connect)
        return (!seen[1] && !seen[2] && seen[3]) ? H2_OK : H2_ERR_ARG;
    if (!seen[1] || !seen[2])
        return H2_ERR_ARG;
    const struct h2_header *p = seen[2];
    if (p->value[0] != '/' && !(p->vlen == 1 && p->value[0] == '*'))
        return H2_ERR_ARG;
    return H2_OK;
}

/* Borrows hs (copied), body_ud and stream_ud. */
int32_t h2_submit_request(struct h2_session *s, const struct h2_header *hs, size_t n,
                          h2_body_read_fn body, void *body_ud, void *stream_ud)
{
    if (!usable(s) || s->server || check_request(hs, n) != H2_OK)
        return H2_ERR_ARG;
    if (!h2_can_open_stream(s))
        return H2_ERR_REFUSED;
    size_t nvlen;
    nghttp2_nv *nv = h2h_nv(hs, n, NULL, &nvlen);
    if (!nv)
        return H2_ERR_NOMEM;
    struct h2_stream *st = h2s_stream_new(s, 0);
    if (!st) {
        h2_mem_release(nv);
        return H2_ERR_NOMEM;
    }
    st->visible = 1;
    st->local = 1;
    st->ud = stream_ud;
    s->nlocal++;
    nghttp2_data_provider prd;
    int32_t id =
        nghttp2_submit_request(s->ng, NULL, nv, nvlen, provider(st, body, body_ud, &prd), st);
    h2_mem_release(nv);
    if (id < 0) {
        h2s_stream_free(s, st);
        return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? H2_ERR_REFUSED : map_ng(id);
    }
    st->id = id;
    return id;
}

/* ---- stream operations --------------------------------------------------- */

int h2_resume(struct h2_session *s, int32_t stream_id)
{
    if (!usable(s))
        return s && s->dead ? H2_ERR : H2_ERR_ARG;
    struct h2_stream *st = h2s_stream(s, stream_id);
    if (!st)
        return H2_ERR_STREAM;
    /* NGHTTP2_ERR_INVALID_ARGUMENT: not deferred, nghttp2 will ask anyway. */
    int rv = nghttp2_session_resume_data(s->ng, stream_id);
    return nghttp2_is_fatal(rv) ? H2_ERR_NOMEM : H2_OK;
}

/* s: borrowed. */
int h2_consume(struct h2_session *s, int32_t stream_id, size_t n)
{
    if (!usable(s))
        return s && s->dead ? H2_ERR : H2_ERR_ARG;
    struct h2_stream *st = h2s_stream(s, stream_id);
    if (!st)
        return H2_OK; /* closed meanwhile: nothing to reopen */
    if (n > st->unconsumed)
        return H2_ERR_ARG;
    st->unconsumed -= n;
    int rv = nghttp2_session_consume_stream(s->ng, stream_id, n);
    return nghttp2_is_fatal(rv) ? H2_ERR_NOMEM : H2_OK;
}

/* s: borrowed. */
int h2_reset(struct h2_session *s, int32_t stream_id, uint32_t error_code)
{
    if (!usable(s))
        return s && s->dead ? H2_ERR : H2_ERR_ARG;
    struct h2_stream *st = h2s_stream(s, stream_id);
    if (!st)
        return H2_ERR_STREAM;
    /* From now on the body source is never read again: the caller may free
     * what it reads from. */
    st->app_reset = 1;
    return map_ng(nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, stream_id, error_code));
}

/* Returns the caller's pointer as given. */
void *h2_stream_ud(struct h2_session *s, int32_t stream_id)
{
    struct h2_stream *st = s ? h2s_stream(s, stream_id) : NULL;
    return st ? st->ud : NULL;
}

/* Borrows ud (the caller's). */
int h2_set_stream_ud(struct h2_session *s, int32_t stream_id, void *ud)
{
    struct h2_stream *st = s ? h2s_stream(s, stream_id) : NULL;
    if (!st || !st->visible)
        return H2_ERR_STREAM;
    st->ud = ud;
    return H2_OK;
}

/* s: borrowed. */
size_t h2_stream_unconsumed(const struct h2_session *s, int32_t stream_id)
{
    struct h2_stream *st = s ? h2s_stream(s, stream_id) : NULL;
    return st ? st->unconsumed : 0;
}
