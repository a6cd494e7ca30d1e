/* fuzz_h1.c - libFuzzer target for the HTTP/1 parser (src/proto/http1).
 *
 * The first input byte selects what to do, the rest is the message:
 *   bits 0-1  mode: 0 request head, 1 response head, 2 chunked body,
 *             3 request head followed by its body (chunked or not)
 *   bit  2    response: the request was HEAD
 *   bits 3-5  max_headers: 64, 1, 2, 3, 8, 16, 0, 100
 *   bits 6-7  max_bytes:   65536, 8192, 512, 128
 * Seeds starting with '@' are requests, 'A' responses, 'B' chunked bodies,
 * 'C' requests with bodies, 'E' responses to HEAD.
 *
 * Beyond "no crash, no sanitizer report", it checks invariants: results
 * are valid codes, every returned pointer lies inside the consumed bytes,
 * consumed <= len, feeding in pieces gives the whole input's result, and
 * the decoder and the scanner agree, also with the trailer section held
 * and parsed apart (h1_chunked_trailers). A broken invariant aborts. */
#include "proto/http1/h1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const size_t max_headers_tab[8] = {64, 1, 2, 3, 8, 16, 0, 100};
static const size_t max_bytes_tab[4] = {65536, 8192, 512, 128};

/* Returns a malloc'ed exact-size copy so ASan flags any read past len. */
static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (n) memcpy(p, s, n);
    return p;
}

static void check_str(h1_str s, const char *lo, const char *hi)
{
    if (!s.p) {
        ASSERT(s.len == 0);
        return;
    }
    ASSERT(s.p >= lo && s.p + s.len <= hi);
}

static int valid_code(int r)
{
    return r == H1_INCOMPLETE || r == H1_ERR_BAD_REQUEST || r == H1_ERR_URI_TOO_LONG ||
           r == H1_ERR_TOO_LARGE || r == H1_ERR_NOT_IMPLEMENTED || r == H1_ERR_VERSION;
}

static void check_headers(const struct h1_header *h, size_t n, const char *lo, const char *hi)
{
    for (size_t i = 0; i < n; i++) {
        check_str(h[i].name, lo, hi);
        check_str(h[i].value, lo, hi);
        ASSERT(h[i].name.len > 0);
        for (size_t j = 0; j < h[i].name.len; j++) ASSERT(h1_is_tchar(h[i].name.p[j]));
        for (size_t j = 0; j < h[i].value.len; j++) {
            unsigned char c = (unsigned char)h[i].value.p[j];
            ASSERT(c >= 0x20 || c == '\t');
            ASSERT(c != 0x7f);
        }
        if (h[i].value.len) {
            ASSERT(h[i].value.p[0] != ' ' && h[i].value.p[0] != '\t');
            char last = h[i].value.p[h[i].value.len - 1];
            ASSERT(last != ' ' && last != '\t');
        }
    }
}

/* Prefix lengths to try: all of them for short inputs, a spread otherwise. */
static size_t prefix_step(size_t n)
{
    return n <= 512 ? 1 : n / 256;
}

static int parse_req(const char *buf, size_t n, struct h1_request *req, struct h1_header *h,
                     size_t mh, size_t mb)
{
    req->headers = h;
    return h1_parse_request(buf, n, req, mh, mb);
}

static void check_chunked(const char *data, size_t n, unsigned seed);

static void fuzz_request(const char *data, size_t n, size_t mh, size_t mb, int with_body)
{
    static struct h1_header h[128], h2[128];
    struct h1_request req, req2;
    char *buf = dup_exact(data, n);
    int r = parse_req(buf, n, &req, h, mh, mb);

    ASSERT(r > 0 || valid_code(r));
    if (r > 0) {
        const char *lo = buf, *hi = buf + r;
        ASSERT((size_t)r <= n && (size_t)r <= mb);
        ASSERT(req.error == NULL);
        ASSERT(req.nheaders <= mh);
        ASSERT(req.minor_version == 0 || req.minor_version == 1);
        check_str(req.method, lo, hi);
        check_str(req.target, lo, hi);
        check_str(req.path, lo, hi);
        check_str(req.query, lo, hi);
        check_str(req.host, lo, hi);
        check_str(req.authority, lo, hi);
        check_str(req.upgrade, lo, hi);
        check_str(req.connection, lo, hi);
        ASSERT(req.method.len > 0 && req.target.len > 0);
        ASSERT(req.target.len <= mb / 2);
        check_headers(req.headers, req.nheaders, lo, hi);
        ASSERT(req.body == H1_BODY_NONE || req.body == H1_BODY_LENGTH ||
               req.body == H1_BODY_CHUNKED);
        if (req.body == H1_BODY_LENGTH) ASSERT(req.content_length > 0);
        if (req.body == H1_BODY_CHUNKED)
            ASSERT(req.minor_version == 1 && !(req.flags & H1_F_CONTENT_LENGTH));
        ASSERT(!((req.flags & H1_F_KEEPALIVE) && (req.flags & H1_F_CONN_CLOSE)));
        if (req.minor_version == 1) ASSERT(req.host.p != NULL);
        /* The head alone parses to the same length, and a limit of exactly
         * the head length still accepts it while one less rejects it. */
        ASSERT(parse_req(buf, (size_t)r, &req2, h2, mh, mb) == r);
        int exact = parse_req(buf, n, &req2, h2, mh, (size_t)r);
        ASSERT(exact == r || (exact == H1_ERR_URI_TOO_LONG && req.target.len > (size_t)r / 2));
        int less = parse_req(buf, n, &req2, h2, mh, (size_t)r - 1);
        ASSERT(less == H1_ERR_TOO_LARGE || less == H1_ERR_URI_TOO_LONG);
    } else if (r != H1_INCOMPLETE) {
        ASSERT(req.error != NULL);
    }
    /* Determinism and the prefix property. */
    ASSERT(parse_req(buf, n, &req2, h2, mh, mb) == r);
    size_t step = prefix_step(n);
    int final_seen = 0;
    for (size_t k = 0; k < n; k += step) {
        char *pre = dup_exact(data, k);
        int rk = parse_req(pre, k, &req2, h2, mh, mb);
        free(pre);
        if (rk == H1_INCOMPLETE) {
            ASSERT(!final_seen); /* results never go back to incomplete */
            continue;
        }
        ASSERT(rk == r);
        if (r < 0) ASSERT(req2.error == req.error);
        final_seen = 1;
    }
    /* The head_scan gate never hides a complete head. */
    if (r > 0) {
        size_t pos = 0;
        ASSERT(h1_head_scan(buf, n, &pos) || n >= mb);
    }
    if (with_body && r > 0 && req.body == H1_BODY_CHUNKED)
        check_chunked(buf + r, n - (size_t)r, (unsigned)n);
    free(buf);
}

static void fuzz_response(const char *data, size_t n, size_t mh, size_t mb, int head)
{
    static struct h1_header h[128], h2[128];
    struct h1_response resp, resp2;
    char *buf = dup_exact(data, n);
    resp.headers = h;
    int r = h1_parse_response(buf, n, &resp, mh, mb, head);

    ASSERT(r > 0 || valid_code(r));
    if (r > 0) {
        const char *lo = buf, *hi = buf + r;
        ASSERT((size_t)r <= n && (size_t)r <= mb);
        ASSERT(resp.error == NULL && resp.nheaders <= mh);
        ASSERT(resp.status >= 100 && resp.status <= 599);
        ASSERT(resp.minor_version == 0 || resp.minor_version == 1);
        check_str(resp.reason, lo, hi);
        check_str(resp.connection, lo, hi);
        check_str(resp.upgrade, lo, hi);
        check_headers(resp.headers, resp.nheaders, lo, hi);
        if (head || resp.status < 200 || resp.status == 204 || resp.status == 304)
            ASSERT(resp.body == H1_BODY_NONE);
        if (resp.body == H1_BODY_LENGTH) ASSERT(resp.content_length > 0);
        if (resp.body == H1_BODY_UNTIL_CLOSE) ASSERT(!(resp.flags & H1_F_KEEPALIVE));
        resp2.headers = h2;
        ASSERT(h1_parse_response(buf, (size_t)r, &resp2, mh, mb, head) == r);
        resp2.headers = h2;
        ASSERT(h1_parse_response(buf, n, &resp2, mh, (size_t)r - 1, head) == H1_ERR_TOO_LARGE);
        if (resp.body == H1_BODY_CHUNKED) check_chunked(buf + r, n - (size_t)r, (unsigned)r);
    } else if (r != H1_INCOMPLETE) {
        ASSERT(resp.error != NULL);
    }
    size_t step = prefix_step(n);
    int final_seen = 0;
    for (size_t k = 0; k < n; k += step) {
        char *pre = dup_exact(data, k);
        resp2.headers = h2;
        int rk = h1_parse_response(pre, k, &resp2, mh, mb, head);
        free(pre);
        if (rk == H1_INCOMPLETE) {
            ASSERT(!final_seen); /* results never go back to incomplete */
            continue;
        }
        ASSERT(rk == r);
        final_seen = 1;
    }
    free(buf);
}

/* Result of running the chunked machine over data in pieces. */
struct chunk_run {
    int status; /* 1 done, 0 ran out of input, -1 error */
    size_t used;
    size_t outlen;
};

/* Feeds data to decode (or scan) as a caller would: unconsumed bytes stay
 * and new ones are appended; piece sizes come from a tiny PRNG (seed 0 =
 * everything at once). out collects the payload (capacity n). */
static struct chunk_run run_chunked(const char *data, size_t n, int scan, unsigned seed,
                                    char *out)
{
    struct h1_chunked c;
    struct chunk_run res = {0, 0, 0};
    size_t start = 0, have = seed ? 0 : n;
    memset(&c, 0, sizeof(c));
    for (;;) {
        size_t avail = have - start;
        char *win = dup_exact(data + start, avail);
        const char *d = NULL;
        size_t dl = 0;
        int r = scan ? h1_chunked_scan(&c, win, avail) : h1_chunked_decode(&c, win, avail, &d, &dl);
        ASSERT(r >= 0 || r == H1_ERR_BAD_REQUEST);
        if (r >= 0) {
            ASSERT((size_t)r <= avail);
            if (!scan && dl) {
                ASSERT(d >= win && d + dl <= win + r);
                memcpy(out + res.outlen, d, dl);
                res.outlen += dl;
            }
        }
        free(win);
        if (r < 0) {
            res.status = -1;
            break;
        }
        start += (size_t)r;
        if (h1_chunked_done(&c)) {
            res.status = 1;
            break;
        }
        if (r == 0) {
            /* No progress with a full line's worth buffered means a bug. */
            ASSERT(avail < H1_CHUNK_LINE_MAX);
            if (have == n) break;
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 64;
            have = have + piece > n ? n : have + piece;
        }
    }
    res.used = start;
    return res;
}

/* The scanner stopping before the trailer section, then the section
 * parsed whole, ends where the plain scan does, or fails where it does.
 * data: the whole input (n bytes), as one piece. */
static void check_held(const char *data, size_t n, const struct chunk_run *whole)
{
    /* Room for every line a section within the limit can hold ("a:"). */
    static struct h1_header hs[H1_CHUNK_TRAILERS_MAX / 4];
    const size_t max = H1_CHUNK_TRAILERS_MAX / 4;
    struct h1_chunked c;
    memset(&c, 0, sizeof(c));
    c.hold_trailers = 1;
    char *win = dup_exact(data, n);
    int r = h1_chunked_scan(&c, win, n), t = 0;
    size_t k = 0;
    if (r >= 0 && h1_chunked_at_trailers(&c)) {
        t = h1_chunked_trailers(&c, win + r, n - (size_t)r, hs, max, &k);
        ASSERT(t > 0 || t == H1_INCOMPLETE || t == H1_ERR_BAD_REQUEST);
        if (t > 0) {
            ASSERT(h1_chunked_done(&c) && k <= max);
            check_headers(hs, k, win + r, win + r + t);
        }
    }
    if (whole->status == 1)
        ASSERT(r >= 0 && t > 0 && (size_t)r + (size_t)t == whole->used);
    else if (whole->status == -1)
        ASSERT(r < 0 || t == H1_ERR_BAD_REQUEST);
    else
        ASSERT(r >= 0 && t <= 0 && t != H1_ERR_BAD_REQUEST);
    free(win);
}

static void check_chunked(const char *data, size_t n, unsigned seed)
{
    char *out1 = malloc(n + 1), *out2 = malloc(n + 1);
    struct chunk_run whole = run_chunked(data, n, 0, 0, out1);
    struct chunk_run scanned = run_chunked(data, n, 1, 0, out2);
    ASSERT(whole.status == scanned.status);
    if (whole.status >= 0) ASSERT(whole.used == scanned.used);
    ASSERT(whole.used <= n && whole.outlen <= whole.used);
    for (unsigned s = 1; s <= 3; s++) {
        struct chunk_run part = run_chunked(data, n, s & 1, seed * 7 + s, out2);
        ASSERT(part.status == whole.status);
        if (whole.status >= 0) ASSERT(part.used == whole.used);
        if (!(s & 1)) ASSERT(part.outlen == whole.outlen && memcmp(out1, out2, whole.outlen) == 0);
    }
    check_held(data, n, &whole);
    if (whole.status == 1) {
        /* The message alone is complete too: nothing after it was needed. */
        struct chunk_run again = run_chunked(data, whole.used, 1, 0, out2);
        ASSERT(again.status == 1 && again.used == whole.used);
    }
    free(out1);
    free(out2);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1) return 0;
    unsigned sel = data[0];
    const char *msg = (const char *)data + 1;
    size_t n = size - 1;
    size_t mh = max_headers_tab[(sel >> 3) & 7];
    size_t mb = max_bytes_tab[(sel >> 6) & 3];
    switch (sel & 3) {
    case 0: fuzz_request(msg, n, mh, mb, 0); break;
    case 1: fuzz_response(msg, n, mh, mb, (sel >> 2) & 1); break;
    case 2: check_chunked(msg, n, sel); break;
    case 3: fuzz_request(msg, n, mh, mb, 1); break;
    }
    return 0;
}
