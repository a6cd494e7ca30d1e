/* h1_parse.c - request and response head parsing (RFC 9112 sections 2-6).
 *
 * One left-to-right pass over the caller's bytes. Every check is made as
 * soon as the bytes it needs are present and never looks past them, which
 * is what makes a parse of a prefix either H1_INCOMPLETE or the very result
 * the whole message gives. Rules that relate several fields (framing, Host,
 * keep-alive) are settled once the empty line ending the head is reached.
 *
 * The hot loops (request-target, field names and values) test 16 bytes at
 * a time with SSE2 (elsewhere: 8 with portable SWAR arithmetic, 4 table
 * lookups per test for names) and use the class table only for the last
 * few bytes; short tokens (method, list elements) go through the table. */
#include "proto/http1/h1.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define CC(c) (h1_cclass[(uint8_t)(c)])

#ifdef __SSE2__
/* 16 bytes per step; the mask has a 1 for every acceptable byte, and the
 * first 0 is exactly where to stop, so no byte is looked at twice.
 * Borrows [p, end); returns the first byte that cannot be in a field value. */
static inline const char *scan_value(const char *p, const char *end)
{
    const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    for (;;) {
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, del),
                                          _mm_cmpeq_epi8(_mm_max_epu8(v, sp), v));
            unsigned m = (unsigned)_mm_movemask_epi8(ok);
            if (m != 0xffff) {
                p += __builtin_ctz(~m);
                goto stop;
            }
            p += 16;
        }
        while (p < end && (CC(*p) & H1_C_VALUE)) p++;
        return p;
    stop:
        if (*p != '\t') return p;
        p++; /* HTAB is the one acceptable byte below SP */
    }
}

/* Field names are nearly always letters, digits and '-': find the first
 * other byte 16 at a time; the caller's table loop takes it from there.
 * Borrows [p, end); returns a pointer into it. */
static inline const char *scan_name(const char *p, const char *end)
{
    const __m128i a = _mm_set1_epi8('a'), z = _mm_set1_epi8(25), zero = _mm_set1_epi8('0');
    const __m128i nine = _mm_set1_epi8(9), dash = _mm_set1_epi8('-'), low = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* x in [lo, lo + n] <=> (x - lo) mod 256 <= n, unsigned */
        __m128i l = _mm_sub_epi8(_mm_or_si128(v, low), a);
        __m128i d = _mm_sub_epi8(v, zero);
        __m128i ok = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(l, z), l),
                                  _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, dash));
        unsigned m = (unsigned)_mm_movemask_epi8(ok);
        if (m != 0xffff) return p + __builtin_ctz(~m);
        p += 16;
    }
    return p;
}

/* Borrows [p, end); returns the first byte that cannot be in a target. */
static inline const char *scan_target(const char *p, const char *end)
{
    const __m128i lo = _mm_set1_epi8(0x21), hi = _mm_set1_epi8(0x7e), hash = _mm_set1_epi8('#');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i ok = _mm_and_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, lo), v),
                                   _mm_cmpeq_epi8(_mm_min_epu8(v, hi), v));
        ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, hash), ok);
        unsigned m = (unsigned)_mm_movemask_epi8(ok);
        if (m != 0xffff) return p + __builtin_ctz(~m);
        p += 16;
    }
    while (p < end && (CC(*p) & H1_C_TARGET)) p++;
    return p;
}
#else
/* Portable SWAR: eight bytes per step, then the table for the last ones. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Non-zero iff some byte of x is < n (n <= 128); exact as an "any" test. */
#define HASLESS(x, n) (((x) - ONES * (n)) & ~(x) & HIGHS)
#define HASBYTE(x, b) HASLESS((x) ^ (ONES * (b)), 1)

/* Borrows p (8 readable bytes). */
static inline uint64_t load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Borrows [p, end); returns the first byte that cannot be in a field value. */
static inline const char *scan_value(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load8(p);
        if (HASLESS(x, 0x20) | HASBYTE(x, 0x7f)) break;
        p += 8;
    }
    while (p < end && (CC(*p) & H1_C_VALUE)) p++;
    return p;
}

/* Borrows [p, end); returns a pointer into it. */
static inline const char *scan_name(const char *p, const char *end)
{
    /* Four lookups per test: names are short, so loop overhead matters. */
    while (end - p >= 4 && (CC(p[0]) & CC(p[1]) & CC(p[2]) & CC(p[3]) & H1_C_TCHAR)) p += 4;
    return p;
}

/* Borrows [p, end); returns the first byte that cannot be in a target. */
static inline const char *scan_target(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load8(p);
        if (HASLESS(x, 0x21) | (x & HIGHS) | HASBYTE(x, 0x7f) | HASBYTE(x, '#')) break;
        p += 8;
    }
    while (p < end && (CC(*p) & H1_C_TARGET)) p++;
    return p;
}
#endif

/* Field state gathered while the header lines go by, shared by requests and
 * responses; the end-of-head checks turn it into framing and flags. */
struct fstate {
    int is_request;
    unsigned flags;
    int nhost, nconn, nupgrade, ncl;
    int te_present, te_nchunked, te_last_chunked, te_other;
    int conn_close, conn_keepalive, conn_upgrade;
    uint64_t clen;
    h1_str host, connection, upgrade;
    const char *error;
};

#define FAIL(fs, code, msg)                                                                 \
    do {                                                                                     \
        (fs)->error = (msg);                                                                 \
        return (code);                                                                       \
    } while (0)

/* Compares n bytes of p, case-insensitively, with lit, which holds only
 * lower-case letters, digits, '-', ':' and '/'. OR-ing 0x20 lower-cases a
 * letter; the only other bytes it maps onto lit's characters are CTLs
 * (e.g. CR | 0x20 == '-'), and p has been checked to hold none, so eight
 * bytes can be compared at once. Borrows both (lit has n readable bytes). */
static inline int name_is(const char *p, const char *lit, size_t n)
{
    const uint64_t low = 0x2020202020202020ull;
    uint64_t a, b;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&a, p + i, 8);
            memcpy(&b, lit + i, 8);
            if ((a | low) != b) return 0;
        }
        memcpy(&a, p + n - 8, 8); /* the last eight, maybe overlapping */
        memcpy(&b, lit + n - 8, 8);
        return (a | low) == b;
    }
    for (size_t i = 0; i < n; i++)
        if ((p[i] | 0x20) != lit[i]) return 0;
    return 1;
}

/* 1 if s is a valid host [":" port]; need_port: port must be present. Borrows s. */
static int authority_ok(h1_str s, int need_port)
{
    const char *p = s.p, *end = s.p + s.len;
    if (s.len == 0) return 0;
    if (*p == '[') { /* IP-literal: hex, ':' and '.' (IPv6, maybe v4-mapped) */
        p++;
        while (p < end && *p != ']') {
            if (!(CC(*p) & H1_C_HEX) && *p != ':' && *p != '.') return 0;
            p++;
        }
        if (p == end || p == s.p + 1) return 0;
        p++;
    } else {
        while (p < end && (CC(*p) & H1_C_HOST)) p++;
        if (p == s.p) return 0;
    }
    if (p == end) return !need_port;
    if (*p++ != ':') return 0;
    /* An empty port is legal URI syntax but only invites disagreement. */
    if (p == end || end - p > 5) return 0;
    unsigned port = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return 0;
        port = port * 10 + (unsigned)(*p - '0');
    }
    return port <= 65535;
}

/* Steps through a comma-separated list: sets *elem to the OWS-trimmed
 * element starting at p (maybe empty) and returns where the next one
 * starts, or NULL after the last. A trailing comma yields a last, empty
 * element, which is what lets callers see "chunked,".
 * Borrows [p, end); *elem and the result point into it. */
static inline const char *next_elem(const char *p, const char *end, h1_str *elem)
{
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *e = comma ? comma : end;
    while (p < e && (CC(*p) & H1_C_OWS)) p++;
    while (e > p && (CC(e[-1]) & H1_C_OWS)) e--;
    elem->p = p;
    elem->len = (size_t)(e - p);
    return comma ? comma + 1 : NULL;
}

/* Borrows both. */
static inline int bytes_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h1_lower[(uint8_t)a[i]] != h1_lower[(uint8_t)b[i]]) return 0;
    return 1;
}

/* Borrows s. */
static inline int all_tchar(h1_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!(CC(s.p[i]) & H1_C_TCHAR)) return 0;
    return 1;
}

/* Borrows v; updates *fs. */
static int field_content_length(struct fstate *fs, h1_str v)
{
    if (++fs->ncl > 1) FAIL(fs, H1_ERR_BAD_REQUEST, "duplicate Content-Length");
    if (v.len == 0) FAIL(fs, H1_ERR_BAD_REQUEST, "empty Content-Length");
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned)(uint8_t)v.p[i] - '0';
        if (d > 9) FAIL(fs, H1_ERR_BAD_REQUEST, "invalid Content-Length");
        /* 63 bits, so callers can hold it in an off_t or int64_t. */
        if (n > (UINT64_C(0x7fffffffffffffff) - d) / 10)
            FAIL(fs, H1_ERR_BAD_REQUEST, "Content-Length too large");
        n = n * 10 + d;
    }
    fs->clen = n;
    fs->flags |= H1_F_CONTENT_LENGTH;
    return 0;
}

/* Borrows v; updates *fs. */
static int field_transfer_encoding(struct fstate *fs, h1_str v)
{
    const char *p = v.p, *end = v.p + v.len;
    h1_str el;
    fs->te_present = 1;
    fs->flags |= H1_F_TRANSFER_ENCODING;
    /* Several Transfer-Encoding lines form one list, in order. Empty
     * elements are legal list syntax but "chunked," is exactly where
     * implementations disagree about the final coding, so refuse them. */
    if (v.len == 0) FAIL(fs, H1_ERR_BAD_REQUEST, "empty Transfer-Encoding");
    while (p) {
        p = next_elem(p, end, &el);
        if (el.len == 0 || !all_tchar(el))
            FAIL(fs, H1_ERR_BAD_REQUEST, "malformed Transfer-Encoding");
        if (el.len == 7 && name_is(el.p, "chunked", 7)) {
            fs->te_nchunked++;
            fs->te_last_chunked = 1;
        } else {
            fs->te_other++;
            fs->te_last_chunked = 0;
        }
    }
    return 0;
}

/* Borrows v; updates *fs, which keeps pointing into it. */
static int field_connection(struct fstate *fs, h1_str v)
{
    const char *p = v.p, *end = v.p + v.len;
    h1_str el;
    /* One Connection line only: the proxy strips what `connection` names,
     * and a second line would silently name more. */
    if (++fs->nconn > 1) FAIL(fs, H1_ERR_BAD_REQUEST, "duplicate Connection");
    fs->connection = v;
    while (p) {
        p = next_elem(p, end, &el);
        if (el.len == 0) continue;
        if (!all_tchar(el)) FAIL(fs, H1_ERR_BAD_REQUEST, "malformed Connection");
        switch (el.len) {
        case 4:
            if (name_is(el.p, "host", 4)) goto framing;
            break;
        case 5:
            if (name_is(el.p, "close", 5)) fs->conn_close = 1;
            break;
        case 7:
            if (name_is(el.p, "upgrade", 7)) fs->conn_upgrade = 1;
            break;
        case 10:
            if (name_is(el.p, "keep-alive", 10)) fs->conn_keepalive = 1;
            break;
        case 14:
            if (name_is(el.p, "content-length", 14)) goto framing;
            break;
        case 17:
            if (name_is(el.p, "transfer-encoding", 17)) goto framing;
            break;
        }
    }
    return 0;
framing:
    /* A hop-by-hop nomination would make the proxy delete the very field
     * it framed (or routed) the message by. */
    FAIL(fs, H1_ERR_BAD_REQUEST, "Connection names a framing field");
}

/* Interprets the fields that matter to framing and routing.
 * Borrows name and v; *fs may keep pointers into v. */
static int on_field(struct fstate *fs, h1_str name, h1_str v)
{
    const char *n = name.p;
    switch (name.len) {
    case 2:
        if (fs->is_request && name_is(n, "te", 2) && h1_token_list_has(v, "trailers"))
            fs->flags |= H1_F_HAS_TE_TRAILERS;
        break;
    case 4:
        if (fs->is_request && name_is(n, "host", 4)) {
            if (++fs->nhost > 1) FAIL(fs, H1_ERR_BAD_REQUEST, "duplicate Host");
            /* Empty is how a client says the target has no authority. */
            if (v.len && !authority_ok(v, 0)) FAIL(fs, H1_ERR_BAD_REQUEST, "invalid Host");
            fs->host = v;
        }
        break;
    case 6:
        if (fs->is_request && name_is(n, "expect", 6))
            fs->flags |= (v.len == 12 && name_is(v.p, "100-continue", 12))
                             ? H1_F_EXPECT_CONTINUE
                             : H1_F_EXPECT_OTHER;
        break;
    case 7:
        if (name_is(n, "upgrade", 7)) {
            if (++fs->nupgrade > 1) FAIL(fs, H1_ERR_BAD_REQUEST, "duplicate Upgrade");
            fs->upgrade = v;
        }
        break;
    case 10:
        if (name_is(n, "connection", 10)) return field_connection(fs, v);
        break;
    case 14:
        if (name_is(n, "content-length", 14)) return field_content_length(fs, v);
        break;
    case 17:
        if (name_is(n, "transfer-encoding", 17)) return field_transfer_encoding(fs, v);
        break;
    }
    return 0;
}

/* Parses field lines from *pp through the empty line, filling hdrs.
 * Returns 0 with *pp just past the empty line, H1_INCOMPLETE or an error.
 * hdrs: caller's array of max entries, borrowed. */
static int parse_fields(const char **pp, const char *end, struct h1_header *hdrs, size_t max,
                        size_t *nout, struct fstate *fs)
{
    const char *p = *pp;
    size_t n = 0;
    int r;

    for (;;) {
        if (p == end) goto incomplete;
        if (*p == '\r') {
            if (p + 1 == end) goto incomplete;
            if (p[1] != '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "bare CR");
            *pp = p + 2;
            *nout = n;
            return 0;
        }
        if (*p == '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "bare LF");
        if (*p == ' ' || *p == '\t') FAIL(fs, H1_ERR_BAD_REQUEST, "obsolete line folding");
        if (n == max) FAIL(fs, H1_ERR_TOO_LARGE, "too many header fields");

        /* field-name ":" OWS field-value OWS CRLF */
        const char *name = p;
        p = scan_name(p, end);
        while (p < end && (CC(*p) & H1_C_TCHAR)) p++;
        if (p == end) goto incomplete;
        if (*p != ':') {
            if (*p == ' ' || *p == '\t') FAIL(fs, H1_ERR_BAD_REQUEST, "whitespace before colon");
            FAIL(fs, H1_ERR_BAD_REQUEST, "invalid header name");
        }
        if (p == name) FAIL(fs, H1_ERR_BAD_REQUEST, "empty header name");
        hdrs[n].name.p = name;
        hdrs[n].name.len = (size_t)(p - name);
        p++;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *val = p;
        p = scan_value(p, end);
        if (p == end) goto incomplete;
        if (*p != '\r') {
            if (*p == '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "bare LF");
            FAIL(fs, H1_ERR_BAD_REQUEST, "invalid character in header value");
        }
        if (p + 1 == end) goto incomplete;
        if (p[1] != '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "bare CR");
        const char *vend = p;
        while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
        hdrs[n].value.p = val;
        hdrs[n].value.len = (size_t)(vend - val);
        p += 2;
        if ((r = on_field(fs, hdrs[n].name, hdrs[n].value)) != 0) {
            *nout = n + 1;
            return r;
        }
        n++;
    }
incomplete:
    *nout = n;
    return H1_INCOMPLETE;
}

/* Parses "HTTP/" DIGIT "." DIGIT at p. Returns 8 with *major and *minor set,
 * H1_INCOMPLETE, or H1_ERR_BAD_REQUEST. Borrows [p, end). */
static int parse_version(const char *p, const char *end, int *major, int *minor)
{
    static const char lit[] = "HTTP/";
    if (end - p >= 8 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0')) {
        *major = 1;
        *minor = p[7] - '0';
        return 8;
    }
    for (int i = 0; i < 8; i++) {
        if (p + i == end) return H1_INCOMPLETE;
        char c = p[i];
        int ok = i < 5 ? c == lit[i] : i == 6 ? c == '.' : (c >= '0' && c <= '9');
        if (!ok) return H1_ERR_BAD_REQUEST;
    }
    *major = p[5] - '0';
    *minor = p[7] - '0';
    return 8;
}

/* Borrows m. */
static enum h1_method method_id(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0) return H1_M_GET;
        if (memcmp(m, "PUT", 3) == 0) return H1_M_PUT;
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0) return H1_M_POST;
        if (memcmp(m, "HEAD", 4) == 0) return H1_M_HEAD;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0) return H1_M_PATCH;
        if (memcmp(m, "TRACE", 5) == 0) return H1_M_TRACE;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0) return H1_M_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0) return H1_M_OPTIONS;
        if (memcmp(m, "CONNECT", 7) == 0) return H1_M_CONNECT;
        break;
    }
    return H1_M_OTHER;
}

/* Splits req->target into path/query/authority by its form (RFC 9112 3.2).
 * Fills *req with pointers into its own target. */
static int classify_target(struct h1_request *req, struct fstate *fs)
{
    const char *t = req->target.p, *end = t + req->target.len;
    const char *q;

    if (req->method_id == H1_M_CONNECT) {
        if (!authority_ok(req->target, 1))
            FAIL(fs, H1_ERR_BAD_REQUEST, "CONNECT needs host:port target");
        req->authority = req->target;
        fs->flags |= H1_F_AUTHORITY_FORM;
        return 0;
    }
    if (*t == '/') {
        q = memchr(t, '?', (size_t)(end - t));
    } else if (req->target.len == 1 && *t == '*') {
        if (req->method_id != H1_M_OPTIONS)
            FAIL(fs, H1_ERR_BAD_REQUEST, "'*' target needs OPTIONS");
        fs->flags |= H1_F_ASTERISK_FORM;
        req->path = req->target;
        return 0;
    } else {
        /* absolute-form; only the schemes a reverse proxy can serve. */
        size_t skip;
        if (req->target.len >= 7 && name_is(t, "http://", 7)) skip = 7;
        else if (req->target.len >= 8 && name_is(t, "https://", 8)) skip = 8;
        else FAIL(fs, H1_ERR_BAD_REQUEST, "invalid request target");
        const char *a = t + skip, *ae = a;
        while (ae < end && *ae != '/' && *ae != '?') ae++;
        h1_str auth = {a, (size_t)(ae - a)};
        if (memchr(a, '@', auth.len)) FAIL(fs, H1_ERR_BAD_REQUEST, "userinfo in target");
        if (!authority_ok(auth, 0)) FAIL(fs, H1_ERR_BAD_REQUEST, "invalid authority in target");
        req->authority = auth;
        fs->flags |= H1_F_ABSOLUTE_FORM;
        t = ae;
        q = memchr(t, '?', (size_t)(end - t));
    }
    if (q) {
        req->path.p = t;
        req->path.len = (size_t)(q - t);
        req->query.p = q + 1;
        req->query.len = (size_t)(end - q - 1);
    } else {
        req->path.p = t;
        req->path.len = (size_t)(end - t);
    }
    return 0;
}

/* Keep-alive per RFC 9112 9.3: 1.1 persists unless "close"; 1.0 only on
 * an explicit "keep-alive". Borrows fs. */
static unsigned persistence(const struct fstate *fs, int minor)
{
    unsigned f = fs->conn_close ? H1_F_CONN_CLOSE : 0;
    if (!fs->conn_close && (minor == 1 || fs->conn_keepalive)) f |= H1_F_KEEPALIVE;
    return f;
}

/* Borrows [buf, end); fills *req and *fs with pointers into it. */
static int request_head(const char *buf, const char *end, struct h1_request *req,
                        size_t max_headers, size_t max_target, struct fstate *fs)
{
    const char *p = buf;
    int r, major, minor;

    /* RFC 9112 2.2: a server SHOULD ignore at least one empty line before
     * the request-line (clients used to send a CRLF after a POST body). */
    for (int empty = 0; p < end && (*p == '\r' || *p == '\n'); empty++) {
        if (*p == '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "bare LF");
        if (p + 1 == end) return H1_INCOMPLETE;
        if (p[1] != '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "bare CR");
        if (empty == H1_MAX_LEADING_CRLF) FAIL(fs, H1_ERR_BAD_REQUEST, "too many empty lines");
        p += 2;
    }

    /* method SP */
    const char *m = p;
    while (p < end && (CC(*p) & H1_C_TCHAR)) p++;
    if (p == end) return H1_INCOMPLETE;
    if (p == m || *p != ' ') FAIL(fs, H1_ERR_BAD_REQUEST, "invalid method");
    req->method.p = m;
    req->method.len = (size_t)(p - m);
    req->method_id = method_id(m, req->method.len);

    /* request-target SP */
    const char *t = ++p;
    p = scan_target(p, end);
    if ((size_t)(p - t) > max_target) FAIL(fs, H1_ERR_URI_TOO_LONG, "request target too long");
    if (p == end) return H1_INCOMPLETE;
    if (*p != ' ') {
        if (*p == '#') FAIL(fs, H1_ERR_BAD_REQUEST, "fragment in request target");
        if (*p == '\r' || *p == '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "missing HTTP version");
        FAIL(fs, H1_ERR_BAD_REQUEST, "invalid character in request target");
    }
    if (p == t) FAIL(fs, H1_ERR_BAD_REQUEST, "empty request target");
    req->target.p = t;
    req->target.len = (size_t)(p - t);
    p++;

    /* HTTP-version CRLF */
    r = parse_version(p, end, &major, &minor);
    if (r < 0) {
        if (r == H1_ERR_BAD_REQUEST) fs->error = "invalid HTTP version";
        return r;
    }
    p += r;
    if (p == end) return H1_INCOMPLETE;
    if (*p != '\r') FAIL(fs, H1_ERR_BAD_REQUEST, *p == '\n' ? "bare LF" : "invalid request line");
    if (p + 1 == end) return H1_INCOMPLETE;
    if (p[1] != '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "bare CR");
    p += 2;
    if (major != 1 || minor > 1) FAIL(fs, H1_ERR_VERSION, "unsupported HTTP version");
    req->minor_version = minor;
    if ((r = classify_target(req, fs)) != 0) return r;

    r = parse_fields(&p, end, req->headers, max_headers, &req->nheaders, fs);
    if (r != 0) return r;

    /* Framing (RFC 9112 6.1-6.3), strictest reading. */
    if (fs->te_present) {
        if (minor == 0) FAIL(fs, H1_ERR_BAD_REQUEST, "Transfer-Encoding in HTTP/1.0");
        if (fs->ncl) FAIL(fs, H1_ERR_BAD_REQUEST, "both Content-Length and Transfer-Encoding");
        if (fs->te_nchunked > 1) FAIL(fs, H1_ERR_BAD_REQUEST, "chunked applied twice");
        if (!fs->te_last_chunked) FAIL(fs, H1_ERR_BAD_REQUEST, "chunked is not the final coding");
        if (fs->te_other) FAIL(fs, H1_ERR_NOT_IMPLEMENTED, "unsupported transfer coding");
        req->body = H1_BODY_CHUNKED;
    } else if (fs->ncl && fs->clen) {
        req->body = H1_BODY_LENGTH;
    }
    req->content_length = fs->clen;
    /* CONNECT has no content; a body would become tunnel bytes upstream. */
    if (req->method_id == H1_M_CONNECT && req->body != H1_BODY_NONE)
        FAIL(fs, H1_ERR_BAD_REQUEST, "CONNECT with a body");

    if (minor == 1 && fs->nhost == 0) FAIL(fs, H1_ERR_BAD_REQUEST, "missing Host");
    req->host = fs->host;
    if (fs->flags & H1_F_ABSOLUTE_FORM) {
        /* RFC 9112 3.2.2 says to ignore Host here; refusing a mismatch
         * instead keeps every hop agreeing on where the request goes. */
        if (fs->nhost && (fs->host.len != req->authority.len ||
                          !bytes_ieq(fs->host.p, req->authority.p, fs->host.len)))
            FAIL(fs, H1_ERR_BAD_REQUEST, "Host differs from target authority");
    } else if (!(fs->flags & H1_F_AUTHORITY_FORM)) {
        req->authority = fs->host;
    }

    unsigned f = fs->flags | persistence(fs, minor);
    if (minor == 0) /* RFC 9110 10.1.1 and 7.8: 1.0 ignores both */
        f &= ~(H1_F_EXPECT_CONTINUE | H1_F_EXPECT_OTHER);
    else if (fs->conn_upgrade && fs->upgrade.len)
        f |= H1_F_UPGRADE;
    req->flags = f;
    req->connection = fs->connection;
    req->upgrade = fs->upgrade;
    return (int)(p - buf);
}

/* Borrows buf; fills *req with pointers into it. */
int h1_parse_request(const char *buf, size_t len, struct h1_request *req, size_t max_headers,
                     size_t max_bytes)
{
    struct h1_header *hdrs = req->headers;
    struct fstate fs;
    int r;

    memset(req, 0, sizeof(*req));
    memset(&fs, 0, sizeof(fs));
    req->headers = hdrs;
    fs.is_request = 1;
    if (max_bytes > INT32_MAX) max_bytes = INT32_MAX; /* head length is an int */
    /* Never look past max_bytes: a head that does not end inside the
     * limit is too large however the rest of it looks. */
    size_t window = len < max_bytes ? len : max_bytes;
    r = request_head(buf, buf + window, req, max_headers, max_bytes / 2, &fs);
    if (r == H1_INCOMPLETE && len >= max_bytes) {
        fs.error = "request head too large";
        r = H1_ERR_TOO_LARGE;
    }
    if (r < 0) req->error = r == H1_INCOMPLETE ? NULL : fs.error;
    return r;
}

/* Borrows [buf, end); fills *resp and *fs with pointers into it. */
static int response_head(const char *buf, const char *end, struct h1_response *resp,
                         size_t max_headers, int method_head, struct fstate *fs)
{
    const char *p = buf;
    int r, major, minor;

    /* HTTP-version SP 3DIGIT [SP reason-phrase] CRLF */
    r = parse_version(p, end, &major, &minor);
    if (r < 0) {
        if (r == H1_ERR_BAD_REQUEST) fs->error = "invalid HTTP version";
        return r;
    }
    p += r;
    if (p == end) return H1_INCOMPLETE;
    if (*p++ != ' ') FAIL(fs, H1_ERR_BAD_REQUEST, "invalid status line");
    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end) return H1_INCOMPLETE;
        if (*p < '0' || *p > '9') FAIL(fs, H1_ERR_BAD_REQUEST, "invalid status code");
        status = status * 10 + (*p - '0');
    }
    if (p == end) return H1_INCOMPLETE;
    const char *reason = p;
    if (*p == ' ') { /* servers that omit the SP before an empty reason exist */
        reason = ++p;
        while (p < end && (CC(*p) & H1_C_VALUE)) p++;
        if (p == end) return H1_INCOMPLETE;
    }
    if (*p != '\r') FAIL(fs, H1_ERR_BAD_REQUEST, *p == '\n' ? "bare LF" : "invalid status line");
    if (p + 1 == end) return H1_INCOMPLETE;
    if (p[1] != '\n') FAIL(fs, H1_ERR_BAD_REQUEST, "bare CR");
    resp->reason.p = reason;
    resp->reason.len = (size_t)(p - reason);
    p += 2;
    if (major != 1 || minor > 1) FAIL(fs, H1_ERR_VERSION, "unsupported HTTP version");
    if (status < 100 || status > 599) FAIL(fs, H1_ERR_BAD_REQUEST, "invalid status code");
    resp->status = status;
    resp->minor_version = minor;

    r = parse_fields(&p, end, resp->headers, max_headers, &resp->nheaders, fs);
    if (r != 0) return r;

    int informational = status < 200;
    if (fs->te_present) {
        if (minor == 0) FAIL(fs, H1_ERR_BAD_REQUEST, "Transfer-Encoding in HTTP/1.0");
        if (fs->ncl) FAIL(fs, H1_ERR_BAD_REQUEST, "both Content-Length and Transfer-Encoding");
        if (fs->te_nchunked > 1) FAIL(fs, H1_ERR_BAD_REQUEST, "chunked applied twice");
        /* RFC 9112 6.1: never in 1xx/204; a client might still believe it. */
        if (informational || status == 204)
            FAIL(fs, H1_ERR_BAD_REQUEST, "Transfer-Encoding in a response without body");
    }
    resp->content_length = fs->clen;
    if (method_head || informational || status == 204 || status == 304)
        resp->body = H1_BODY_NONE;
    else if (fs->te_present)
        resp->body = fs->te_last_chunked ? H1_BODY_CHUNKED : H1_BODY_UNTIL_CLOSE;
    else if (fs->ncl)
        resp->body = fs->clen ? H1_BODY_LENGTH : H1_BODY_NONE;
    else
        resp->body = H1_BODY_UNTIL_CLOSE;

    unsigned f = fs->flags | persistence(fs, minor);
    if (resp->body == H1_BODY_UNTIL_CLOSE) f &= ~H1_F_KEEPALIVE;
    if (status == 101) f |= H1_F_UPGRADE;
    resp->flags = f;
    resp->connection = fs->connection;
    resp->upgrade = fs->upgrade;
    return (int)(p - buf);
}

/* Borrows buf; fills *resp with pointers into it. */
int h1_parse_response(const char *buf, size_t len, struct h1_response *resp, size_t max_headers,
                      size_t max_bytes, int method_head)
{
    struct h1_header *hdrs = resp->headers;
    struct fstate fs;
    int r;

    memset(resp, 0, sizeof(*resp));
    memset(&fs, 0, sizeof(fs));
    resp->headers = hdrs;
    if (max_bytes > INT32_MAX) max_bytes = INT32_MAX;
    size_t window = len < max_bytes ? len : max_bytes;
    r = response_head(buf, buf + window, resp, max_headers, method_head, &fs);
    if (r == H1_INCOMPLETE && len >= max_bytes) {
        fs.error = "response head too large";
        r = H1_ERR_TOO_LARGE;
    }
    if (r < 0) resp->error = r == H1_INCOMPLETE ? NULL : fs.error;
    return r;
}
