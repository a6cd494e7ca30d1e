/* h2_h1up.c - an HTTP/2 stream sent to an HTTP/1.1 upstream (translation).
 *
 * Request: st->up_head becomes a request line and field block in st->ubuf;
 * :authority becomes Host, split cookie fields are joined again (RFC 9113
 * 8.2.3), connection-specific fields are dropped. The body keeps the
 * client's framing when there is one (its content-length, or none when the
 * stream ended with its head); otherwise it goes chunked, each run of reqb
 * copied into ubuf between its framing lines.
 *
 * Response: interim heads are dropped, the final head's fields lower-cased
 * and stripped of hop-by-hop ones, and the body decoded and handed to the
 * stream only as far as respb has room: a slow client stops the reads from
 * the upstream until it drained respb (the exchange calls h2h1_update).
 *
 * I/O follows http_exchange.c: level-triggered epoll, reads only after epoll
 * reported the socket readable, the interest set at the end of every pass.
 * The connection is pooled again only when both messages ended cleanly. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "proxy/h2_int.h"
#include "proxy/lb.h"
#include "proxy/upstream.h"

enum { IO_DONE, IO_BLOCKED, IO_IDLE, IO_ERROR };

static const struct uconn_ops h1_ops;

/* ---- the request head ---------------------------------------------------- */

/* Whether p[0..n) is lit. Borrows both. */
static int is(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* Appends "name: value\r\n". 0, or -1 when it does not fit. Borrows all. */
static int put_field(struct buf *b, const char *name, size_t nlen, const char *v, size_t vlen)
{
    if (buf_append(b, name, nlen) < 0 || buf_append(b, ": ", 2) < 0 ||
        buf_append(b, v, vlen) < 0 || buf_append(b, "\r\n", 2) < 0)
        return -1;
    return 0;
}

/* Fields this hop writes itself (host, framing, cookie) or must not pass. */
static int field_skipped(const struct h2_header *h)
{
    static const char *const names[] = {"host", "te", "connection", "keep-alive",
                                        "proxy-connection", "transfer-encoding", "upgrade",
                                        "content-length", "cookie"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (is(h->name, h->nlen, names[i]))
            return 1;
    return 0;
}

/* HTTP/2 clients may send one cookie field per pair; HTTP/1.1 wants one
 * line. Borrows both. 0 or -1. */
static int put_cookies(struct buf *b, const struct h2_hlist *h)
{
    int first = 1;
    for (size_t i = 0; i < h->n; i++) {
        if (!is(h->v[i].name, h->v[i].nlen, "cookie"))
            continue;
        if (buf_append(b, first ? "cookie: " : "; ", first ? 8 : 2) < 0 ||
            buf_append(b, h->v[i].value, h->v[i].vlen) < 0)
            return -1;
        first = 0;
    }
    return first ? 0 : buf_append(b, "\r\n", 2);
}

/* Body framing: the client's length, none for a request that ended with its
 * head, else chunked. Borrows method. 0 or -1. */
static int put_framing(struct h2s *st, const struct h2_header *method)
{
    const struct h2_header *cl = h2_header_get(st->up_head.v, st->up_head.n, "content-length");
    if (st->has_length && cl)
        return put_field(&st->ubuf, "content-length", 14, cl->value, cl->vlen);
    if (st->req_done && st->req_bytes == 0 && st->req_trl.n == 0) {
        /* Some servers refuse these methods without a length (411). */
        const char *m = method->value;
        size_t ml = method->vlen;
        if (is(m, ml, "POST") || is(m, ml, "PUT") || is(m, ml, "PATCH"))
            return put_field(&st->ubuf, "content-length", 14, "0", 1);
        return 0;
    }
    st->h1_chunked = 1;
    return put_field(&st->ubuf, "transfer-encoding", 17, "chunked", 7);
}

/* Writes the request head into st->ubuf (empty). 0, -1 when it does not fit
 * in one block, -2 when out of memory. */
static int head_build(struct h2s *st)
{
    const struct h2_hlist *h = &st->up_head;
    struct buf *b = &st->ubuf;
    const struct h2_header *method = h2_header_get(h->v, h->n, ":method");
    const struct h2_header *path = h2_header_get(h->v, h->n, ":path");
    const struct h2_header *auth = h2_header_get(h->v, h->n, ":authority");
    if (!auth)
        auth = h2_header_get(h->v, h->n, "host");
    if (!method || !path)
        return -1; /* h2s_begin never lets such a stream through */
    if (buf_ensure(b) < 0)
        return -2;
    if (buf_append(b, method->value, method->vlen) < 0 || buf_append(b, " ", 1) < 0 ||
        buf_append(b, path->value, path->vlen) < 0 || buf_append(b, " HTTP/1.1\r\n", 11) < 0 ||
        put_field(b, "host", 4, auth ? auth->value : "", auth ? auth->vlen : 0) < 0)
        return -1;
    for (size_t i = 0; i < h->n; i++) {
        const struct h2_header *f = &h->v[i];
        if (f->nlen == 0 || f->name[0] == ':' || field_skipped(f))
            continue;
        if (put_field(b, f->name, f->nlen, f->value, f->vlen) < 0)
            return -1;
    }
    if (put_cookies(b, h) < 0 || put_framing(st, method) < 0 || buf_append(b, "\r\n", 2) < 0)
        return -1;
    return 0;
}

/* ---- the request body ---------------------------------------------------- */

/* Body bytes of this attempt not sent yet (*p: into reqb). In replay mode
 * reqb keeps what was sent, for a retry; req_off marks the end of it. */
static size_t body_pending(const struct h2s *st, const char **p)
{
    uint32_t skip = st->replay ? st->req_off : 0;
    uint32_t len = buf_len(&st->reqb);
    if (len <= skip)
        return 0;
    *p = buf_start(&st->reqb) + skip;
    return len - skip;
}

/* Whether no body byte was taken in this attempt: replay mode marks them
 * with req_off, otherwise they leave reqb (which holds all received ones). */
static int body_untouched(const struct h2s *st)
{
    return st->replay ? st->req_off == 0 : buf_len(&st->reqb) == st->req_bytes;
}

/* Appends the last chunk with the client's trailers (those HTTP/1.1 can
 * carry) to ub. 0, or -1 when it does not fit now (ub is left as it was). */
static int put_last_chunk(const struct h2s *st, struct buf *ub)
{
    uint32_t mark = ub->tail;
    int rc = buf_append(ub, "0\r\n", 3);
    for (size_t i = 0; rc == 0 && i < st->req_trl.n; i++) {
        const struct h2_header *h = &st->req_trl.v[i];
        if (h1_trailer_forwardable((h1_str){h->name, h->nlen}, (h1_str){h->value, h->vlen}))
            rc = put_field(ub, h->name, h->nlen, h->value, h->vlen);
    }
    if (rc == 0)
        rc = buf_append(ub, "\r\n", 2);
    if (rc < 0)
        ub->tail = mark;
    return rc;
}

/* Chunked: copies the next run of body bytes into the empty ubuf between
 * its framing lines, then the last chunk (with the trailers) once the
 * client's body is in: in a round of its own when it does not fit after
 * the data, and without the trailers when they do not fit in a block. */
static void chunk_stage(struct h2s *st)
{
    struct buf *ub = &st->ubuf;
    const char *p = NULL;
    size_t n = body_pending(st, &p);
    size_t max = buf_block_size() - 32; /* size line, CRLF, last chunk */
    if (n > max)
        n = max;
    if (n > 0) {
        char line[24];
        int l = snprintf(line, sizeof(line), "%zx\r\n", n);
        if (buf_append(ub, line, (size_t)l) < 0 || buf_append(ub, p, n) < 0 ||
            buf_append(ub, "\r\n", 2) < 0) {
            buf_free(ub); /* out of memory; ubuf held nothing else: next event */
            return;
        }
        h2s_req_taken(st, n);
    }
    if (!st->req_done || body_pending(st, &p) != 0)
        return;
    if (put_last_chunk(st, ub) == 0 ||
        (buf_len(ub) == 0 && buf_append(ub, "0\r\n\r\n", 5) == 0))
        st->h1_last_chunk = 1;
}

/* Writes what can be written of the request: ubuf (head, chunk framing),
 * then body bytes straight from reqb when they need no framing. */
static int req_send(struct h2s *st)
{
    struct buf *ub = &st->ubuf;
    for (;;) {
        const char *p = NULL;
        if (st->h1_head_sent && buf_len(ub) == 0) {
            if (st->h1_last_chunk ||
                (!st->h1_chunked && st->req_done && body_pending(st, &p) == 0)) {
                st->h1_body_done = 1;
                return IO_DONE;
            }
            if (st->h1_chunked)
                chunk_stage(st);
        }
        struct iovec iov[2];
        int n = 0;
        if (buf_len(ub) > 0)
            iov[n++] = (struct iovec){buf_start(ub), buf_len(ub)};
        size_t bl = st->h1_chunked ? 0 : body_pending(st, &p);
        if (bl > 0)
            iov[n++] = (struct iovec){(void *)p, bl};
        if (n == 0)
            return IO_IDLE;
        ssize_t w = sio_writev(&st->uc->sio, iov, n);
        if (w < 0)
            return errno == EAGAIN ? IO_BLOCKED : IO_ERROR;
        size_t u = buf_len(ub) < (size_t)w ? buf_len(ub) : (size_t)w;
        buf_consume(ub, (uint32_t)u);
        if (buf_len(ub) == 0)
            st->h1_head_sent = 1;
        if ((size_t)w > u)
            h2s_req_taken(st, (size_t)w - u);
    }
}

/* ---- the response -------------------------------------------------------- */

/* The response ended: the connection goes back (pooled only when the
 * request went out whole too), then the stream ends. */
static void resp_finish(struct h2s *st)
{
    struct uconn *uc = st->uc;
    int reuse = st->h1_reuse && st->h1_body_done;
    st->uc = NULL;
    st->up = H2S_UP_NONE;
    buf_free(&st->ubuf);
    uconn_release(uc, reuse);
    /* st may be gone after its end: the trailers are handed over first */
    struct h2_hlist trl = st->h1resp_trl;
    memset(&st->h1resp_trl, 0, sizeof(st->h1resp_trl));
    h2s_resp_end(st, trl.n ? trl.v : NULL, trl.n);
    h2_hlist_free(&trl);
}

/* A response the stream cannot use: 502. Returns -1. */
static int resp_bad(struct h2s *st, const char *msg)
{
    h2s_attempt_end(st, LB_5XX, OUTCOME_SERVER_ERROR);
    h2h1_detach(st);
    h2s_local(st, 502, msg, OUTCOME_SERVER_ERROR);
    return -1;
}

/* A field of the upstream's bytes in `in` as HTTP/2 wants it: the name
 * lower-cased in place (those bytes are ours and consumed right after
 * they are handed on). Borrows in; the result points into it. */
static struct h2_header h2_field(struct buf *in, h1_str name, h1_str value)
{
    char *p = buf_start(in) + (name.p - buf_start(in));
    for (size_t j = 0; j < name.len; j++)
        p[j] = (char)h1_lower[(uint8_t)p[j]];
    return (struct h2_header){p, name.len, value.p, value.len};
}

/* Parses the response head in uc->in and submits it. 1 when the body
 * follows, 0 when more bytes are needed, -1 when st went elsewhere (retry,
 * local answer) or the response is over. */
static int resp_head(struct h2s *st)
{
    struct buf *in = &st->uc->in;
    struct h1_header hh[HTTP_MAX_HEADERS_CAP];
    struct h2_header hs[HTTP_MAX_HEADERS_CAP];
    struct h1_response resp;
    int rc;
    for (;;) {
        if (buf_len(in) == 0)
            return 0;
        memset(&resp, 0, sizeof(resp));
        resp.headers = hh;
        rc = h1_parse_response(buf_start(in), buf_len(in), &resp, HTTP_MAX_HEADERS_CAP,
                               buf_block_size(), st->head_only);
        if (rc == H1_INCOMPLETE)
            return buf_full(in) ? resp_bad(st, "upstream response header too large") : 0;
        if (rc < 0)
            return resp_bad(st, "upstream sent a malformed response");
        if (resp.status == 101)
            return resp_bad(st, "upstream switched protocols unasked");
        if (resp.status >= 200)
            break;
        buf_consume(in, (uint32_t)rc); /* interim (100, 103): dropped */
    }
    size_t n = 0;
    for (size_t i = 0; i < resp.nheaders; i++) {
        const struct h1_header *f = &hh[i];
        if (h1_header_should_strip(f->name, resp.connection) ||
            h2_header_is_connection_specific(f->name.p, f->name.len, f->value.p, f->value.len))
            continue;
        hs[n++] = h2_field(in, f->name, f->value);
    }
    int end = resp.body == H1_BODY_NONE ||
              (resp.body == H1_BODY_LENGTH && resp.content_length == 0);
    memset(&st->h1resp, 0, sizeof(st->h1resp));
    st->h1resp.ch.hold_trailers = 1; /* they become the HTTP/2 trailers */
    st->h1resp.kind = resp.body;
    st->h1resp.left = resp.content_length;
    st->h1resp.done = end;
    st->h1_reuse = (resp.flags & H1_F_KEEPALIVE) && resp.body != H1_BODY_UNTIL_CLOSE;
    /* hs points into uc->in: consumed only once h2s_response copied it. */
    if (h2s_response(st, resp.status, hs, n, end) < 0)
        return -1;
    buf_consume(&st->uc->in, (uint32_t)rc);
    if (end) {
        resp_finish(st);
        return -1;
    }
    return 1;
}

/* The trailer section of a chunked response (the decoder stopped before
 * it), parsed whole: what may go on (no hop-by-hop or framing fields,
 * names lower-cased for HTTP/2) is kept for the stream's end. 1 when
 * taken, 0 while more bytes are needed, -1 when malformed or too large. */
static int resp_trailers(struct h2s *st)
{
    struct buf *in = &st->uc->in;
    struct h1_header hv[HTTP_MAX_HEADERS_CAP];
    struct h2_header hs[HTTP_MAX_HEADERS_CAP];
    size_t n = 0, k = 0;
    int t = h1_chunked_trailers(&st->h1resp.ch, buf_start(in), buf_len(in), hv,
                                HTTP_MAX_HEADERS_CAP, &n);
    if (t == H1_INCOMPLETE)
        return buf_full(in) ? -1 : 0;
    if (t < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (h1_trailer_forwardable(hv[i].name, hv[i].value))
            hs[k++] = h2_field(in, hv[i].name, hv[i].value);
    }
    if (k > 0 && h2_hlist_copy(&st->h1resp_trl, hs, k) < 0)
        return -1;
    buf_consume(in, (uint32_t)t);
    st->h1resp.done = 1;
    return 1;
}

/* Moves decoded body bytes from uc->in to the stream, as many as respb
 * takes. 0, -1 on malformed chunked framing, -2 when the stream dropped
 * the upstream meanwhile. */
static int resp_body(struct h2s *st)
{
    struct hbody *b = &st->h1resp;
    while (!b->done && buf_len(&st->uc->in) > 0) {
        if (b->kind == H1_BODY_CHUNKED && h1_chunked_at_trailers(&b->ch)) {
            int t = resp_trailers(st);
            if (t <= 0)
                return t;
            continue;
        }
        size_t room = buf_room(&st->respb);
        if (room == 0)
            return 0;
        const char *p = buf_start(&st->uc->in);
        size_t len = buf_len(&st->uc->in), take, used;
        if (b->kind == H1_BODY_CHUNKED) {
            /* A run longer than the room is decoded again over a shorter
             * input, so the decoder's state never runs ahead of respb. */
            struct h1_chunked save = b->ch;
            const char *d;
            int c = h1_chunked_decode(&b->ch, p, len, &d, &take);
            if (c > 0 && take > room) {
                b->ch = save;
                c = h1_chunked_decode(&b->ch, p, (size_t)(d - p) + room, &d, &take);
            }
            if (c < 0)
                return -1;
            if (c == 0)
                return 0; /* a partial framing line */
            used = (size_t)c;
            p = d;
            b->done = h1_chunked_done(&b->ch);
        } else {
            take = len < room ? len : room;
            if (b->kind == H1_BODY_LENGTH) {
                take = take < b->left ? take : (size_t)b->left;
                b->left -= take;
                b->done = b->left == 0;
            }
            used = take;
        }
        if (take > 0) {
            h2s_resp_data(st, (const uint8_t *)p, take);
            if (st->up != H2S_UP_H1)
                return -2;
        }
        buf_consume(&st->uc->in, (uint32_t)used);
    }
    return 0;
}

/* The upstream closed (eof) or failed. Returns -1: st went elsewhere. */
static int resp_closed(struct h2s *st, int eof)
{
    if (!st->resp_head_done && buf_len(&st->uc->in) == 0) {
        int fresh = st->uc->reused && body_untouched(st);
        h2h1_detach(st);
        h2s_attempt_failed(st, LB_RESET, fresh);
    } else if (!st->resp_head_done) {
        h2s_attempt_end(st, LB_RESET, OUTCOME_RESET);
        h2h1_detach(st);
        h2s_local(st, 502, "upstream closed mid-response header", OUTCOME_RESET);
    } else if (eof && st->h1resp.kind == H1_BODY_UNTIL_CLOSE) {
        /* resp_body left nothing in uc->in, or there would be no read. */
        st->h1resp.done = 1;
        resp_finish(st);
    } else {
        h2h1_detach(st); /* truncated body: only a reset can say so */
        h2s_resp_abort(st, H2_INTERNAL_ERROR);
    }
    return -1;
}

/* Reads the upstream and moves the response on. 0 with *mask set, or -1
 * when st went elsewhere or the response is over. */
static int resp_pump(struct h2s *st, unsigned *mask)
{
    struct uconn *uc = st->uc;
    for (;;) {
        if (!st->resp_head_done && resp_head(st) < 0)
            return -1;
        if (st->resp_head_done) {
            int b = resp_body(st);
            if (b == -2)
                return -1;
            if (b < 0) {
                h2h1_detach(st);
                h2s_resp_abort(st, H2_INTERNAL_ERROR);
                return -1;
            }
            if (st->h1resp.done) {
                resp_finish(st);
                return -1;
            }
            if (buf_room(&st->respb) == 0)
                return 0; /* the client is slow: no reading until it drains respb */
        }
        /* Read only when epoll said so: right after sending the request a
         * read would almost always find nothing. */
        if (!st->h1_readable) {
            *mask |= LOOP_READ;
            return 0;
        }
        uint32_t room = uc->in.data ? buf_space(&uc->in) : buf_block_size();
        ssize_t n = sio_read_buf(&uc->sio, &uc->in);
        if (n > 0) {
            /* A short read drained the socket; bytes TLS already decrypted
             * are never reported by epoll: read on. */
            if ((uint32_t)n < room && sio_pending(&uc->sio) == 0)
                st->h1_readable = 0;
            continue;
        }
        if (n == -2)
            return 0; /* uc->in full: only while respb is */
        st->h1_readable = 0;
        if (n < 0 && errno == EAGAIN) {
            *mask |= LOOP_READ;
            return 0;
        }
        return resp_closed(st, n == 0);
    }
}

/* ---- the exchange -------------------------------------------------------- */

void h2h1_update(struct h2s *st)
{
    struct uconn *uc = st->uc;
    if (st->up != H2S_UP_H1 || !uc || uc->state != UC_ACTIVE)
        return; /* still connecting (h1_connected follows), or over */
    if (!st->h1_head_sent && buf_len(&st->ubuf) == 0) {
        int rc = head_build(st);
        if (rc < 0) {
            h2h1_detach(st);
            if (rc == -2)
                h2s_local(st, 503, "out of memory", OUTCOME_UNAVAILABLE);
            else
                h2s_local(st, 431, "request header too large for HTTP/1.1 upstream",
                          OUTCOME_CLIENT_ERROR);
            return;
        }
    }
    unsigned mask = 0;
    int s = st->h1_wfailed ? IO_IDLE : req_send(st);
    if (s == IO_ERROR) {
        /* The upstream refused more of the request; an early answer (413,
         * say) may still be readable, so fail only when nothing came. */
        if (!st->resp_head_done && buf_len(&uc->in) == 0) {
            int fresh = uc->reused && body_untouched(st);
            h2h1_detach(st);
            h2s_attempt_failed(st, LB_RESET, fresh);
            return;
        }
        st->h1_wfailed = 1;
    }
    if (s == IO_BLOCKED)
        mask |= LOOP_WRITE;
    if (resp_pump(st, &mask) < 0)
        return;
    loop_io_set(st->hc->w->loop, &uc->io, mask | uc->sio.want);
}

/* The uconn's events; st may be gone after h2h1_update, hc is not. */
static void h1_connected(void *owner, struct uconn *uc, int err)
{
    struct h2s *st = owner;
    struct hconn *hc = st->hc;
    if (err) {
        st->uc = NULL; /* already closed by the pool */
        h2h1_detach(st);
        h2s_attempt_failed(st, LB_CONNECT_FAIL, 0);
    } else {
        h2h1_update(st);
    }
    h2_mark(hc); /* the client's output goes at the end of the batch */
}

static void h1_io(void *owner, struct uconn *uc, unsigned events)
{
    struct h2s *st = owner;
    struct hconn *hc = st->hc;
    if (events & LOOP_READ)
        st->h1_readable = 1;
    h2h1_update(st);
    h2_mark(hc);
}

static const struct uconn_ops h1_ops = {h1_connected, h1_io};

int h2h1_start(struct h2s *st)
{
    int ready = 0;
    buf_free(&st->ubuf);
    st->h1_head_sent = st->h1_chunked = st->h1_body_done = st->h1_last_chunk = 0;
    st->h1_readable = st->h1_reuse = st->h1_wfailed = 0;
    memset(&st->h1resp, 0, sizeof(st->h1resp));
    h2_hlist_free(&st->h1resp_trl);
    st->uc = uconn_get(st->wc, st->ep, &h1_ops, st, &ready);
    if (!st->uc)
        return -1;
    st->up = H2S_UP_H1;
    if (ready)
        h2h1_update(st);
    return 0;
}

void h2h1_detach(struct h2s *st)
{
    struct uconn *uc = st->uc;
    st->uc = NULL;
    st->up = H2S_UP_NONE;
    buf_free(&st->ubuf);
    if (uc)
        uconn_close(uc);
}
