/* h1_chunked.c - chunked transfer coding (RFC 9112 section 7.1), zero copy.
 *
 * One state machine serves both the decoder (which hands out payload runs)
 * and the scanner (which only validates, for forwarding framing unchanged).
 * Framing lines are consumed only when complete: a line is re-read from its
 * start on the next call instead of being remembered byte by byte, which
 * keeps the state tiny and means no partial line is ever passed on. Lines
 * are bounded by H1_CHUNK_LINE_MAX, so re-reading costs little and the
 * caller never has to hold more than one line. Payload is passed on as soon
 * as it arrives. */
#include "proto/http1/h1.h"

#include <string.h>

enum {
    H1_CS_SIZE = 0, /* expecting a chunk-size line (zero-initialised start) */
    H1_CS_DATA,     /* inside chunk data, `remaining` bytes left */
    H1_CS_DATA_END, /* expecting the CRLF after chunk data */
    H1_CS_TRAILER,  /* expecting a trailer field line or the final CRLF */
    H1_CS_DONE,
    H1_CS_ERROR, /* sticky: framing was invalid */
};

#define CC(c) (h1_cclass[(uint8_t)(c)])
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

/* Parses "chunk-size [chunk-ext] CRLF" at p. Returns the line length with
 * *size set, 0 when the bytes so far are a valid but unfinished line, or -1.
 * Grammar (RFC 9112 7.1.1):
 *   chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *   ext-val   = token / quoted-string
 * so whitespace is only allowed next to ';' and '=', never before CRLF.
 * Borrows [p, end). */
static int chunk_line(const char *p, const char *end, uint64_t *size)
{
    const char *s = p;
    uint64_t v = 0;
    int digits = 0, ws = 0;

    while (p < end && (CC(*p) & H1_C_HEX)) {
        if (++digits > 16) return -1; /* 16 hex digits always fit in 64 bits */
        v = v << 4 | (uint64_t)((*p & 0xf) + (*p >> 6) * 9);
        p++;
    }
    if (p == end) return 0;
    if (digits == 0) return -1;
    for (;;) {
        while (p < end && IS_OWS(*p)) p++, ws = 1;
        if (p == end) return 0;
        if (*p == '\r') {
            if (ws) return -1;
            break;
        }
        if (*p != ';') return -1;
        p++;
        while (p < end && IS_OWS(*p)) p++;
        const char *name = p;
        while (p < end && (CC(*p) & H1_C_TCHAR)) p++;
        if (p == end) return 0;
        if (p == name) return -1;
        ws = 0;
        while (p < end && IS_OWS(*p)) p++, ws = 1;
        if (p == end) return 0;
        if (*p != '=') continue; /* loop top decides if the BWS was legal */
        p++;
        ws = 0;
        while (p < end && IS_OWS(*p)) p++;
        if (p == end) return 0;
        if (*p == '"') {
            for (p++;; p++) {
                if (p == end) return 0;
                if (*p == '"') break;
                if (*p == '\\') { /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
                    if (++p == end) return 0;
                    if (!(CC(*p) & H1_C_VALUE)) return -1;
                } else if (!(CC(*p) & H1_C_QDTEXT)) {
                    return -1;
                }
            }
            p++;
        } else {
            const char *val = p;
            while (p < end && (CC(*p) & H1_C_TCHAR)) p++;
            if (p == end) return 0;
            if (p == val) return -1;
        }
    }
    if (p + 1 == end) return 0;
    if (p[1] != '\n') return -1;
    p += 2;
    if (p - s > H1_CHUNK_LINE_MAX) return -1;
    *size = v;
    return (int)(p - s);
}

/* Parses one trailer field line, or the final empty line (returns 2 with
 * p[0] == '\r'). Returns the length, 0 while unfinished, or -1.
 * Borrows [p, end). */
static int trailer_line(const char *p, const char *end)
{
    const char *s = p;
    if (p == end) return 0;
    if (*p == '\r') {
        if (p + 1 == end) return 0;
        return p[1] == '\n' ? 2 : -1;
    }
    const char *name = p;
    while (p < end && (CC(*p) & H1_C_TCHAR)) p++; /* SP first = obs-fold: empty name */
    if (p == end) return 0;
    if (*p != ':' || p == name) return -1;
    /* Fields a careless recipient might merge into the head and re-frame or
     * re-route by: RFC 9110 6.5.1 forbids them in trailers anyway. */
    size_t n = (size_t)(p - name);
    h1_str nm = {name, n};
    if ((n == 14 && h1_str_ieq(nm, "content-length")) ||
        (n == 17 && h1_str_ieq(nm, "transfer-encoding")) || (n == 4 && h1_str_ieq(nm, "host")))
        return -1;
    p++;
    while (p < end && (CC(*p) & H1_C_VALUE)) p++;
    if (p == end) return 0;
    if (*p != '\r') return -1;
    if (p + 1 == end) return 0;
    if (p[1] != '\n') return -1;
    p += 2;
    if (p - s > H1_CHUNK_LINE_MAX) return -1;
    return (int)(p - s);
}

/* Runs the machine over buf[0..len). decode: stop after one payload run
 * and report it in *data and *dlen (pointers into buf, borrowed). */
static int chunked_run(struct h1_chunked *c, const char *buf, size_t len, int decode,
                       const char **data, size_t *dlen)
{
    if (len > INT32_MAX) len = INT32_MAX; /* the count is returned as an int */
    const char *p = buf, *end = buf + len;
    uint64_t size;
    int r;

    for (;;) {
        size_t avail = (size_t)(end - p);
        switch (c->state) {
        case H1_CS_SIZE:
            r = chunk_line(p, end, &size);
            if (r < 0 || (r == 0 && avail >= H1_CHUNK_LINE_MAX)) goto bad;
            if (r == 0) return (int)(p - buf);
            p += r;
            if (size == 0) {
                c->state = H1_CS_TRAILER;
                if (c->hold_trailers) return (int)(p - buf);
            } else {
                c->remaining = size;
                c->state = H1_CS_DATA;
            }
            break;
        case H1_CS_DATA: {
            if (avail == 0) return (int)(p - buf);
            size_t n = c->remaining < avail ? (size_t)c->remaining : avail;
            if (decode) {
                *data = p;
                *dlen = n;
            }
            p += n;
            c->remaining -= n;
            if (c->remaining == 0) c->state = H1_CS_DATA_END;
            if (decode) return (int)(p - buf);
            break;
        }
        case H1_CS_DATA_END:
            /* Judge each byte as soon as it is here: a lone byte that is
             * not CR is already an error. */
            if (avail == 0) return (int)(p - buf);
            if (p[0] != '\r') goto bad;
            if (avail == 1) return (int)(p - buf);
            if (p[1] != '\n') goto bad;
            p += 2;
            c->state = H1_CS_SIZE;
            break;
        case H1_CS_TRAILER:
            if (c->hold_trailers) return (int)(p - buf); /* h1_chunked_trailers' part */
            r = trailer_line(p, end);
            if (r < 0 || (r == 0 && avail >= H1_CHUNK_LINE_MAX)) goto bad;
            if (r == 0) return (int)(p - buf);
            if (r == 2 && p[0] == '\r') {
                c->state = H1_CS_DONE;
                return (int)(p + 2 - buf);
            }
            c->trailer_bytes += (uint32_t)r;
            if (c->trailer_bytes > H1_CHUNK_TRAILERS_MAX) goto bad;
            p += r;
            break;
        case H1_CS_DONE:
            return (int)(p - buf);
        default:
            return H1_ERR_BAD_REQUEST;
        }
    }
bad:
    c->state = H1_CS_ERROR;
    return H1_ERR_BAD_REQUEST;
}

/* Borrows buf; *data points into it. */
int h1_chunked_decode(struct h1_chunked *c, const char *buf, size_t len, const char **data,
                      size_t *data_len)
{
    *data = buf;
    *data_len = 0;
    return chunked_run(c, buf, len, 1, data, data_len);
}

/* Borrows buf and c. */
int h1_chunked_scan(struct h1_chunked *c, const char *buf, size_t len)
{
    return chunked_run(c, buf, len, 0, NULL, NULL);
}

/* Borrows c. */
int h1_chunked_done(const struct h1_chunked *c)
{
    return c->state == H1_CS_DONE;
}

/* Borrows c. */
int h1_chunked_at_trailers(const struct h1_chunked *c)
{
    return c->state == H1_CS_TRAILER;
}

/* One trailer field line p[0..r) (CRLF included) as a header: the name
 * before ':', the value with OWS trimmed. Borrows p. */
static struct h1_header trailer_field(const char *p, int r)
{
    const char *colon = memchr(p, ':', (size_t)r), *v = colon + 1, *e = p + r - 2;
    while (v < e && IS_OWS(*v)) v++;
    while (e > v && IS_OWS(e[-1])) e--;
    return (struct h1_header){{p, (size_t)(colon - p)}, {v, (size_t)(e - v)}};
}

/* Borrows buf; hs is the caller's. */
int h1_chunked_trailers(struct h1_chunked *c, const char *buf, size_t len, struct h1_header *hs,
                        size_t max, size_t *n)
{
    if (c->state != H1_CS_TRAILER) return H1_ERR_BAD_REQUEST;
    const char *p = buf, *end = buf + len;
    size_t k = 0;
    for (;;) {
        int r = trailer_line(p, end);
        if (r == 0 && (size_t)(end - p) < H1_CHUNK_LINE_MAX)
            return H1_INCOMPLETE;
        if (r <= 0) break;
        if (r == 2 && p[0] == '\r') {
            c->state = H1_CS_DONE;
            *n = k;
            return (int)(p + 2 - buf);
        }
        if (k == max || (size_t)(p + r - buf) > H1_CHUNK_TRAILERS_MAX) break;
        hs[k++] = trailer_field(p, r);
        p += r;
    }
    c->state = H1_CS_ERROR;
    return H1_ERR_BAD_REQUEST;
}
