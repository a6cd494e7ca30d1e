/* test_h1.c - unit tests for the strict HTTP/1 parser (src/proto/http1).
 *
 * Every request and response case is also fed one byte at a time (each
 * prefix copied into its own exact-size allocation, so AddressSanitizer sees
 * any read past the end): every prefix must give H1_INCOMPLETE or exactly the
 * whole input's result. Chunked bodies are fed in random splits through a
 * caller-like buffer that keeps unconsumed bytes. Prints "N passed, M failed". */
#include "proto/http1/h1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"



#define MAXH 32
#define MAXB 8192

static struct h1_header hdrs[MAXH];

/* Returns a malloc'ed exact-size copy (caller frees). */
static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    return p;
}

static int streq(h1_str s, const char *lit)
{
    return s.p && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* Parses a request whole and byte by byte; returns the whole result and
 * leaves *req filled from the whole parse (pointing into *keep, which the
 * caller frees). */
static int parse_req_ex(const char *s, size_t n, struct h1_request *req, size_t maxh,
                        size_t maxb, char **keep, int line)
{
    char *whole = dup_exact(s, n);
    req->headers = hdrs;
    int r = h1_parse_request(whole, n, req, maxh, maxb);
    const char *err = req->error;
    int seen_final = 0, ok = 1;
    size_t step = n > 2048 ? 61 : 1;
    for (size_t k = 0; k < n; k += step) {
        char *pre = dup_exact(s, k);
        struct h1_request pr;
        struct h1_header ph[MAXH];
        pr.headers = ph;
        int pk = h1_parse_request(pre, k, &pr, maxh, maxb);
        free(pre);
        if (pk == H1_INCOMPLETE) {
            if (seen_final) ok = 0; /* results must not go back to incomplete */
            continue;
        }
        if (pk != r || pr.error != err) ok = 0;
        seen_final = 1;
    }
    if (!ok) fprintf(stderr, "line %d: incremental parse differs from whole (%d)\n", line, r);
    CHECK(ok);
    /* The h1_head_scan gate must let the same result through. */
    size_t pos = 0, have;
    int gated = H1_INCOMPLETE;
    for (have = 0; have <= n && gated == H1_INCOMPLETE; have += step ? step : 1) {
        if (h1_head_scan(whole, have, &pos) || have >= maxb) {
            struct h1_request gr;
            struct h1_header gh[MAXH];
            gr.headers = gh;
            gated = h1_parse_request(whole, have, &gr, maxh, maxb);
        }
        if (have == n) break;
        if (have + step > n) have = n - step;
    }
    if (r != H1_INCOMPLETE && gated != r && !(r < 0 && gated == H1_INCOMPLETE)) {
        fprintf(stderr, "line %d: gated parse gives %d, whole %d\n", line, gated, r);
        CHECK(0);
    }
    *keep = whole;
    return r;
}

#define PARSE_REQ(lit, reqp, keep) parse_req_ex(lit, sizeof(lit) - 1, reqp, MAXH, MAXB, keep, __LINE__)

/* Expects the request literal to give code (0: success consuming it all). */
static void expect_req(const char *s, size_t n, int code, int line)
{
    struct h1_request req;
    char *keep;
    int r = parse_req_ex(s, n, &req, MAXH, MAXB, &keep, line);
    int want = code == 0 ? (int)n : code;
    if (r != want) {
        fprintf(stderr, "line %d: request gave %d (%s), want %d\n", line, r,
                req.error ? req.error : "-", want);
        failed++;
    } else {
        passed++;
        if (r < 0 && r != H1_INCOMPLETE) CHECK(req.error != NULL);
    }
    if (getenv("H1_VERBOSE")) printf("line %d: %d %s\n", line, r, req.error ? req.error : "");
    free(keep);
}
#define REQ(lit, code) expect_req(lit, sizeof(lit) - 1, code, __LINE__)

static int parse_resp_ex(const char *s, size_t n, struct h1_response *resp, int head,
                         char **keep, int line)
{
    char *whole = dup_exact(s, n);
    resp->headers = hdrs;
    int r = h1_parse_response(whole, n, resp, MAXH, MAXB, head);
    const char *err = resp->error;
    int seen_final = 0, ok = 1;
    for (size_t k = 0; k < n; k++) {
        char *pre = dup_exact(s, k);
        struct h1_response pr;
        struct h1_header ph[MAXH];
        pr.headers = ph;
        int pk = h1_parse_response(pre, k, &pr, MAXH, MAXB, head);
        free(pre);
        if (pk == H1_INCOMPLETE) {
            if (seen_final) ok = 0;
            continue;
        }
        if (pk != r || pr.error != err) ok = 0;
        seen_final = 1;
    }
    if (!ok) fprintf(stderr, "line %d: incremental response parse differs (%d)\n", line, r);
    CHECK(ok);
    *keep = whole;
    return r;
}

static void expect_resp(const char *s, size_t n, int head, int code, int line)
{
    struct h1_response resp;
    char *keep;
    int r = parse_resp_ex(s, n, &resp, head, &keep, line);
    int want = code == 0 ? (int)n : code;
    if (r != want) {
        fprintf(stderr, "line %d: response gave %d (%s), want %d\n", line, r,
                resp.error ? resp.error : "-", want);
        failed++;
    } else {
        passed++;
    }
    if (getenv("H1_VERBOSE")) printf("line %d: %d %s\n", line, r, resp.error ? resp.error : "");
    free(keep);
}
#define RESP(lit, code) expect_resp(lit, sizeof(lit) - 1, 0, code, __LINE__)

/* ---- requests: valid ---- */

static void test_request_basic(void)
{
    struct h1_request req;
    char *k;
    static const char s[] = "GET /a/b?x=1&y=2 HTTP/1.1\r\n"
                            "Host: example.com\r\n"
                            "User-Agent: test/1.0\r\n"
                            "Accept:   */*  \t\r\n"
                            "X-Empty:\r\n"
                            "\r\n";
    int r = PARSE_REQ(s, &req, &k);
    CHECK(r == (int)sizeof(s) - 1);
    CHECK(streq(req.method, "GET"));
    CHECK(req.method_id == H1_M_GET);
    CHECK(streq(req.target, "/a/b?x=1&y=2"));
    CHECK(streq(req.path, "/a/b"));
    CHECK(streq(req.query, "x=1&y=2"));
    CHECK(req.minor_version == 1);
    CHECK(req.nheaders == 4);
    CHECK(streq(req.headers[0].name, "Host"));
    CHECK(streq(req.headers[0].value, "example.com"));
    CHECK(streq(req.headers[2].name, "Accept"));
    CHECK(streq(req.headers[2].value, "*/*"));
    CHECK(req.headers[3].value.len == 0 && req.headers[3].value.p != NULL);
    CHECK(streq(req.host, "example.com"));
    CHECK(streq(req.authority, "example.com"));
    CHECK(req.body == H1_BODY_NONE);
    CHECK(req.flags == H1_F_KEEPALIVE);
    CHECK(req.error == NULL);
    CHECK(req.connection.p == NULL && req.upgrade.p == NULL);
    free(k);

    static const char q[] = "GET /? HTTP/1.1\r\nHost: a\r\n\r\n";
    r = PARSE_REQ(q, &req, &k);
    CHECK(r > 0 && streq(req.path, "/") && req.query.p && req.query.len == 0);
    free(k);
    static const char nq[] = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    r = PARSE_REQ(nq, &req, &k);
    CHECK(r > 0 && streq(req.path, "/x") && req.query.p == NULL);
    free(k);

    /* Trailing bytes (a body or the next request) are not consumed. */
    static const char body[] = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
    r = PARSE_REQ(body, &req, &k);
    CHECK(r == (int)(sizeof(body) - 1 - 8));
    CHECK(req.body == H1_BODY_LENGTH && req.content_length == 5);
    CHECK(req.method_id == H1_M_POST);
    CHECK(req.flags & H1_F_CONTENT_LENGTH);
    free(k);
}

static void test_request_versions_keepalive(void)
{
    struct h1_request req;
    char *k;
    static const char a[] = "GET / HTTP/1.0\r\n\r\n";
    CHECK(PARSE_REQ(a, &req, &k) > 0 && req.minor_version == 0 && req.flags == 0 &&
          req.host.p == NULL && req.authority.p == NULL);
    free(k);
    static const char b[] = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK(PARSE_REQ(b, &req, &k) > 0 && (req.flags & H1_F_KEEPALIVE));
    CHECK(streq(req.connection, "Keep-Alive"));
    free(k);
    static const char c[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    CHECK(PARSE_REQ(c, &req, &k) > 0 && req.flags == H1_F_CONN_CLOSE);
    free(k);
    static const char d[] = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n";
    CHECK(PARSE_REQ(d, &req, &k) > 0 && req.flags == H1_F_CONN_CLOSE);
    free(k);
    static const char e[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: ,, foo ,\r\n\r\n";
    CHECK(PARSE_REQ(e, &req, &k) > 0 && req.flags == H1_F_KEEPALIVE);
    free(k);
}

static void test_request_flags(void)
{
    struct h1_request req;
    char *k;
    static const char up[] = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                             "Upgrade: websocket\r\n\r\n";
    CHECK(PARSE_REQ(up, &req, &k) > 0 && (req.flags & H1_F_UPGRADE) &&
          streq(req.upgrade, "websocket") && (req.flags & H1_F_KEEPALIVE));
    free(k);
    static const char up2[] = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    CHECK(PARSE_REQ(up2, &req, &k) > 0 && !(req.flags & H1_F_UPGRADE));
    free(k);
    static const char up3[] = "GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    CHECK(PARSE_REQ(up3, &req, &k) > 0 && !(req.flags & H1_F_UPGRADE));
    free(k);
    static const char ex[] = "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                             "Content-Length: 10\r\n\r\n";
    CHECK(PARSE_REQ(ex, &req, &k) > 0 && (req.flags & H1_F_EXPECT_CONTINUE) &&
          !(req.flags & H1_F_EXPECT_OTHER));
    free(k);
    static const char ex10[] = "PUT /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
    CHECK(PARSE_REQ(ex10, &req, &k) > 0 && !(req.flags & H1_F_EXPECT_CONTINUE));
    free(k);
    static const char exo[] = "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n";
    CHECK(PARSE_REQ(exo, &req, &k) > 0 && (req.flags & H1_F_EXPECT_OTHER));
    free(k);
    static const char te[] = "GET / HTTP/1.1\r\nHost: a\r\nTE: deflate, Trailers\r\n\r\n";
    CHECK(PARSE_REQ(te, &req, &k) > 0 && (req.flags & H1_F_HAS_TE_TRAILERS));
    free(k);
    static const char ch[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n";
    CHECK(PARSE_REQ(ch, &req, &k) > 0 && req.body == H1_BODY_CHUNKED &&
          (req.flags & H1_F_TRANSFER_ENCODING));
    free(k);
    static const char cl0[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    CHECK(PARSE_REQ(cl0, &req, &k) > 0 && req.body == H1_BODY_NONE &&
          (req.flags & H1_F_CONTENT_LENGTH));
    free(k);
    static const char clz[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n";
    CHECK(PARSE_REQ(clz, &req, &k) > 0 && req.body == H1_BODY_LENGTH && req.content_length == 7);
    free(k);
    static const char clmax[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n";
    CHECK(PARSE_REQ(clmax, &req, &k) > 0 && req.content_length == UINT64_C(9223372036854775807));
    free(k);
}

static void test_request_targets(void)
{
    struct h1_request req;
    char *k;
    static const char star[] = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(PARSE_REQ(star, &req, &k) > 0 && (req.flags & H1_F_ASTERISK_FORM) && streq(req.path, "*"));
    free(k);
    static const char con[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    CHECK(PARSE_REQ(con, &req, &k) > 0 && (req.flags & H1_F_AUTHORITY_FORM) &&
          streq(req.authority, "example.com:443") && req.method_id == H1_M_CONNECT &&
          req.path.len == 0);
    free(k);
    static const char con6[] = "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n";
    CHECK(PARSE_REQ(con6, &req, &k) > 0 && streq(req.authority, "[::1]:8443"));
    free(k);
    static const char abs[] = "GET http://Example.com:8080/p/q?z=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
    CHECK(PARSE_REQ(abs, &req, &k) > 0 && (req.flags & H1_F_ABSOLUTE_FORM) &&
          streq(req.authority, "Example.com:8080") && streq(req.path, "/p/q") &&
          streq(req.query, "z=1") && streq(req.host, "example.com:8080"));
    free(k);
    static const char abs2[] = "GET HTTPS://a.b?x HTTP/1.1\r\nHost: a.b\r\n\r\n";
    CHECK(PARSE_REQ(abs2, &req, &k) > 0 && streq(req.authority, "a.b") && req.path.len == 0 &&
          streq(req.query, "x"));
    free(k);
    static const char abs10[] = "GET http://a.b/ HTTP/1.0\r\n\r\n";
    CHECK(PARSE_REQ(abs10, &req, &k) > 0 && streq(req.authority, "a.b") && req.host.p == NULL);
    free(k);
    static const char emptyhost[] = "GET / HTTP/1.1\r\nHost:\r\n\r\n";
    CHECK(PARSE_REQ(emptyhost, &req, &k) > 0 && req.host.p && req.host.len == 0);
    free(k);
    static const char lead[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(PARSE_REQ(lead, &req, &k) == (int)sizeof(lead) - 1 && streq(req.method, "GET"));
    free(k);

    REQ("GET /%7Efoo/a;b=c,d!$&'()*+:@~ HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    REQ("GET //double//slash HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    REQ("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0); /* 8 */
    REQ("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    REQ("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("CONNECT example.com:70000 HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 3\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 0\r\n\r\n", 0);
    REQ("GET example.com/x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET http://user@a/x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET http://a:80/x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET http://a/x HTTP/1.1\r\n\r\n", H1_ERR_BAD_REQUEST); /* 1.1 still needs Host */
    REQ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /a\x80 HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /aaaaaaaaaaaaaaaaaaaaaaaa\tb HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /aaaaaaaaaaaaaaaaaaaaaaaa\"<>{}|\\^` HTTP/1.1\r\nHost: a\r\n\r\n", 0);
}

/* ---- requests: the smuggling and strictness rules ---- */

static void test_request_line_errors(void)
{
    REQ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / http/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/11.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", H1_ERR_VERSION);
    REQ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", H1_ERR_VERSION);
    REQ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", H1_ERR_VERSION);
    REQ("GET / HTTP/3.0\r\n\r\n", H1_ERR_VERSION);
    REQ("GET / HTTP/2.0 \r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET /\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\rHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET  HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", H1_ERR_BAD_REQUEST); /* TLS hello */
    REQ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", H1_ERR_VERSION);
}

static void test_header_syntax(void)
{
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", H1_ERR_BAD_REQUEST);  /* obs-fold */
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", H1_ERR_BAD_REQUEST); /* SP before colon */
    REQ("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX-A(b: x\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX/y: x\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX\0: x\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaa\x7f\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaa\rb\r\n\r\n", H1_ERR_BAD_REQUEST); /* bare CR */
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n", H1_ERR_BAD_REQUEST); /* bare LF */
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\r\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\nHost: a\n\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9 \x80\xff\r\n\r\n", 0); /* obs-text */
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\t\r\n\r\n", 0);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef0123456789abcdef0123456789abcdef\r\n\r\n", 0);
    REQ("GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", 0);
}

static void test_host_rules(void)
{
    REQ("GET / HTTP/1.1\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a%2eb\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a:1x\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: []\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a]b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: [::ffff:10.0.0.1]:443\r\n\r\n", 0);
    REQ("GET / HTTP/1.1\r\nHost: my-host_1.example.com:65535\r\n\r\n", 0);
    REQ("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n", 0);
}

static void test_content_length_rules(void)
{
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xd9\xa5\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t5 \r\n\r\n", 0); /* OWS is not the value */
    REQ("POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5\r\n\r\n", 0);
}

static void test_transfer_encoding_rules(void)
{
    /* Both framings: the classic CL.TE / TE.CL desync. */
    REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", H1_ERR_BAD_REQUEST);
    /* Codings. */
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", H1_ERR_NOT_IMPLEMENTED);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n", H1_ERR_NOT_IMPLEMENTED);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_NOT_IMPLEMENTED);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 0);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\t\r\n\r\n", 0);
    REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n", 0); /* another field */
}

static void test_connection_rules(void)
{
    REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: close\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: 1\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Transfer-Encoding\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: HOST\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: clo se\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close;x\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: a\r\nUpgrade: b\r\n\r\n", H1_ERR_BAD_REQUEST);
    REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, x-custom\r\nTE: trailers\r\n\r\n", 0);
}

static void test_limits(void)
{
    struct h1_request req;
    char *k;
    char buf[MAXB * 2 + 64];
    size_t n;

    /* Exactly max_headers fields parse; one more is 431. */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < MAXH; i++) n += (size_t)sprintf(buf + n, "H%d: v\r\n", i);
    memcpy(buf + n, "\r\n", 2);
    CHECK(parse_req_ex(buf, n + 2, &req, MAXH, MAXB, &k, __LINE__) == H1_ERR_BAD_REQUEST);
    free(k); /* no Host among them */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < MAXH - 1; i++) n += (size_t)sprintf(buf + n, "H%d: v\r\n", i);
    memcpy(buf + n, "\r\n", 2);
    CHECK(parse_req_ex(buf, n + 2, &req, MAXH, MAXB, &k, __LINE__) == (int)n + 2);
    CHECK(req.nheaders == MAXH);
    free(k);
    n += (size_t)sprintf(buf + n, "Extra: v\r\n\r\n");
    CHECK(parse_req_ex(buf, n, &req, MAXH, MAXB, &k, __LINE__) == H1_ERR_TOO_LARGE);
    free(k);
    CHECK(parse_req_ex(buf, n, &req, 0, MAXB, &k, __LINE__) == H1_ERR_TOO_LARGE);
    free(k);

    /* A head of exactly max_bytes parses; one byte more is 431, and so is
     * an unfinished head once max_bytes have arrived. */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    size_t fill = 200 - n - 4;
    memset(buf + n, 'x', fill);
    n += fill;
    memcpy(buf + n, "\r\n\r\n", 4);
    n += 4;
    CHECK(n == 200);
    CHECK(parse_req_ex(buf, n, &req, MAXH, 200, &k, __LINE__) == 200);
    free(k);
    CHECK(parse_req_ex(buf, n, &req, MAXH, 199, &k, __LINE__) == H1_ERR_TOO_LARGE);
    CHECK(req.error != NULL);
    free(k);
    CHECK(parse_req_ex(buf, 150, &req, MAXH, 100, &k, __LINE__) == H1_ERR_TOO_LARGE);
    free(k);
    CHECK(parse_req_ex(buf, 100, &req, MAXH, 100, &k, __LINE__) == H1_ERR_TOO_LARGE);
    free(k);
    CHECK(parse_req_ex(buf, 99, &req, MAXH, 100, &k, __LINE__) == H1_INCOMPLETE);
    free(k);
    /* An endless header line or endless leading garbage-free stream. */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'y', sizeof(buf) - n);
    CHECK(parse_req_ex(buf, sizeof(buf), &req, MAXH, MAXB, &k, __LINE__) == H1_ERR_TOO_LARGE);
    free(k);

    /* A target over max_bytes / 2 is 414, even before it ends. */
    n = (size_t)sprintf(buf, "GET /");
    memset(buf + n, 'a', MAXB / 2);
    n += MAXB / 2;
    CHECK(parse_req_ex(buf, n, &req, MAXH, MAXB, &k, __LINE__) == H1_ERR_URI_TOO_LONG);
    free(k);
    n += (size_t)sprintf(buf + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(parse_req_ex(buf, n, &req, MAXH, MAXB, &k, __LINE__) == H1_ERR_URI_TOO_LONG);
    free(k);
    n = (size_t)sprintf(buf, "GET /");
    memset(buf + n, 'a', MAXB / 2 - 1);
    n += MAXB / 2 - 1;
    n += (size_t)sprintf(buf + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(parse_req_ex(buf, n, &req, MAXH, MAXB, &k, __LINE__) == (int)n);
    free(k);
}

/* ---- responses ---- */

static void test_responses(void)
{
    struct h1_response resp;
    char *k;
    static const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: x\r\n\r\nhello world!";
    int r = parse_resp_ex(a, sizeof(a) - 1, &resp, 0, &k, __LINE__);
    CHECK(r == (int)sizeof(a) - 1 - 12);
    CHECK(resp.status == 200 && streq(resp.reason, "OK") && resp.minor_version == 1);
    CHECK(resp.body == H1_BODY_LENGTH && resp.content_length == 12);
    CHECK((resp.flags & H1_F_KEEPALIVE) && resp.nheaders == 2);
    free(k);

    static const char b[] = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
    CHECK(parse_resp_ex(b, sizeof(b) - 1, &resp, 0, &k, __LINE__) > 0 &&
          resp.body == H1_BODY_UNTIL_CLOSE && !(resp.flags & H1_F_KEEPALIVE));
    free(k);
    static const char c[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(parse_resp_ex(c, sizeof(c) - 1, &resp, 0, &k, __LINE__) > 0 &&
          resp.body == H1_BODY_CHUNKED && (resp.flags & H1_F_KEEPALIVE));
    free(k);
    static const char d[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    CHECK(parse_resp_ex(d, sizeof(d) - 1, &resp, 0, &k, __LINE__) > 0 && resp.body == H1_BODY_CHUNKED);
    free(k);
    static const char e[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    CHECK(parse_resp_ex(e, sizeof(e) - 1, &resp, 0, &k, __LINE__) > 0 &&
          resp.body == H1_BODY_UNTIL_CLOSE && !(resp.flags & H1_F_KEEPALIVE));
    free(k);
    static const char f[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    CHECK(parse_resp_ex(f, sizeof(f) - 1, &resp, 1, &k, __LINE__) > 0 && resp.body == H1_BODY_NONE &&
          resp.content_length == 100 && (resp.flags & H1_F_KEEPALIVE));
    free(k);
    static const char g[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(parse_resp_ex(g, sizeof(g) - 1, &resp, 1, &k, __LINE__) > 0 && resp.body == H1_BODY_NONE);
    free(k);
    static const char h[] = "HTTP/1.1 204 No Content\r\n\r\n";
    CHECK(parse_resp_ex(h, sizeof(h) - 1, &resp, 0, &k, __LINE__) > 0 && resp.body == H1_BODY_NONE &&
          (resp.flags & H1_F_KEEPALIVE));
    free(k);
    static const char i[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n";
    CHECK(parse_resp_ex(i, sizeof(i) - 1, &resp, 0, &k, __LINE__) > 0 && resp.body == H1_BODY_NONE);
    free(k);
    static const char j[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
    CHECK(parse_resp_ex(j, sizeof(j) - 1, &resp, 0, &k, __LINE__) == 25 && resp.status == 100 &&
          resp.body == H1_BODY_NONE);
    free(k);
    static const char up[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    CHECK(parse_resp_ex(up, sizeof(up) - 1, &resp, 0, &k, __LINE__) > 0 && (resp.flags & H1_F_UPGRADE) &&
          resp.body == H1_BODY_NONE && streq(resp.upgrade, "websocket"));
    free(k);
    static const char v10[] = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n";
    CHECK(parse_resp_ex(v10, sizeof(v10) - 1, &resp, 0, &k, __LINE__) > 0 && !(resp.flags & H1_F_KEEPALIVE));
    free(k);
    static const char v10k[] = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n";
    CHECK(parse_resp_ex(v10k, sizeof(v10k) - 1, &resp, 0, &k, __LINE__) > 0 && (resp.flags & H1_F_KEEPALIVE));
    free(k);
    static const char cl[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n";
    CHECK(parse_resp_ex(cl, sizeof(cl) - 1, &resp, 0, &k, __LINE__) > 0 &&
          resp.flags == (H1_F_CONN_CLOSE | H1_F_CONTENT_LENGTH) && resp.body == H1_BODY_LENGTH);
    free(k);
    static const char nr[] = "HTTP/1.1 404\r\n\r\n";
    CHECK(parse_resp_ex(nr, sizeof(nr) - 1, &resp, 0, &k, __LINE__) > 0 && resp.status == 404 &&
          resp.reason.len == 0);
    free(k);
    static const char cl0[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    CHECK(parse_resp_ex(cl0, sizeof(cl0) - 1, &resp, 0, &k, __LINE__) > 0 && resp.body == H1_BODY_NONE &&
          (resp.flags & H1_F_KEEPALIVE));
    free(k);

    RESP("HTTP/1.1 200 \r\n\r\n", 0);
    RESP("HTTP/1.1 200 Very  OK \t\x80\r\n\r\n", 0);
    RESP("HTTP/1.1 599 x\r\n\r\n", 0);
    RESP("HTTP/1.1 099 x\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 600 x\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 2000 OK\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 20 OK\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1  200 OK\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 O\x01K\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nX: y\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/2.0 200 OK\r\n\r\n", H1_ERR_VERSION);
    RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 304 OK\r\nContent-Length: x\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 204 OK\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 100 OK\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nConnection: a\r\nConnection: b\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("http/1.1 200 OK\r\n\r\n", H1_ERR_BAD_REQUEST);
    RESP("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\n\r\n", 0); /* Host rules are request-only */
}

/* ---- chunked ---- */

static unsigned rng_state = 12345;
static unsigned rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 16) & 0x7fff;
}

/* Feeds body in pieces (max_piece: random piece sizes 1..max_piece, 0 = all
 * at once) through a caller-like buffer that keeps unconsumed bytes and
 * hands each call an exact-size copy. Returns 1 done, 0 incomplete, -1 error.
 * out (caller's, >= len bytes) collects payload; *used = bytes consumed. */
static int feed_chunked(const char *body, size_t len, size_t max_piece, int scan, char *out,
                        size_t *outlen, size_t *used)
{
    struct h1_chunked c;
    memset(&c, 0, sizeof(c));
    size_t start = 0, have = 0;
    *outlen = 0;
    for (;;) {
        char *win = dup_exact(body + start, have - start);
        const char *data;
        size_t dlen = 0;
        int r = scan ? h1_chunked_scan(&c, win, have - start)
                     : h1_chunked_decode(&c, win, have - start, &data, &dlen);
        if (r >= 0 && (size_t)r > have - start) r = -2; /* consumed more than given */
        if (r >= 0 && dlen) {
            if (data < win || data + dlen > win + (have - start)) r = -2;
            else memcpy(out + *outlen, data, dlen), *outlen += dlen;
        }
        free(win);
        if (r < 0) {
            *used = start;
            return r == -2 ? -2 : -1;
        }
        start += (size_t)r;
        if (h1_chunked_done(&c)) break;
        if (r == 0) {
            if (have == len) break;
            size_t piece = max_piece ? 1 + rnd() % max_piece : len;
            have = have + piece > len ? len : have + piece;
        }
    }
    *used = start;
    return h1_chunked_done(&c) ? 1 : 0;
}

struct chunk_case {
    const char *body;
    size_t len;
    int result;          /* 1 done, 0 incomplete, -1 error */
    const char *payload; /* for done */
    size_t msg_len;      /* bytes forming the message (done) */
};
#define CC_OK(b, pl) {b, sizeof(b) - 1, 1, pl, sizeof(b) - 1}
#define CC_OKN(b, pl, n) {b, sizeof(b) - 1, 1, pl, n}
#define CC_ERR(b) {b, sizeof(b) - 1, -1, NULL, 0}
#define CC_INC(b) {b, sizeof(b) - 1, 0, NULL, 0}

static void test_chunked_cases(void)
{
    static const struct chunk_case cases[] = {
        CC_OK("5\r\nhello\r\n0\r\n\r\n", "hello"),
        CC_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"),
        CC_OK("0\r\n\r\n", ""),
        CC_OK("A\r\n0123456789\r\n0\r\n\r\n", "0123456789"),
        CC_OK("a\r\n0123456789\r\n00\r\n\r\n", "0123456789"),
        CC_OK("0000000000000003\r\nabc\r\n0\r\n\r\n", "abc"),
        CC_OK("3;foo=bar\r\nabc\r\n0;last\r\n\r\n", "abc"),
        CC_OK("3 ; foo = bar ;baz\r\nabc\r\n0\r\n\r\n", "abc"),
        CC_OK("3;foo=\"a \\\"q\\\" ;=\"\r\nabc\r\n0\r\n\r\n", "abc"),
        CC_OK("3\r\nabc\r\n0\r\nX-Trailer: 1\r\nY: \r\n\r\n", "abc"),
        CC_OK("3\r\na\r\n\r\n0\r\n\r\n", "a\r\n"), /* data may hold anything */
        CC_OKN("1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", "a", 11), /* stops at message end */
        CC_INC("5\r\nhel"),
        CC_INC("5\r\nhello\r\n0\r\n"),
        CC_INC("5;a=\"x"),
        CC_ERR("\r\n"),
        CC_ERR("-1\r\nx\r\n0\r\n\r\n"),
        CC_ERR("+1\r\nx\r\n0\r\n\r\n"),
        CC_ERR("0x1\r\nx\r\n0\r\n\r\n"),
        CC_ERR(" 1\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1 \r\nx\r\n0\r\n\r\n"),
        CC_ERR("1\t\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;a \r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;a=b \r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;=b\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;a=\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;a=b=c\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;a=\"b\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;a=\"\x01\"\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1;a\x7f\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1x\r\nx\r\n0\r\n\r\n"),
        CC_ERR("1\nx\r\n0\r\n\r\n"),          /* bare LF after size */
        CC_ERR("1\rx\r\n0\r\n\r\n"),          /* bare CR */
        CC_ERR("1\r\nx\n0\r\n\r\n"),          /* bare LF after data */
        CC_ERR("1\r\nxx\r\n0\r\n\r\n"),       /* data longer than size */
        CC_ERR("1\r\nx\r\r\n0\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\n\n"),
        CC_ERR("1\r\nx\r\n0\r\n\r\r"),
        CC_ERR("00000000000000001\r\nx\r\n0\r\n\r\n"), /* 17 digits */
        CC_ERR("10000000000000000\r\n"),               /* > 64 bits */
        CC_ERR("1\r\nx\r\n0\r\n obs: fold\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\nX: a\r\n b\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\nX : a\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\nX: a\nY: b\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\nX: \x01\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\nContent-Length: 5\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\ntransfer-encoding: chunked\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\nHost: evil\r\n\r\n"),
        CC_ERR("1\r\nx\r\n0\r\nNoColon\r\n\r\n"),
        CC_ERR("g\r\n"),
        CC_ERR(";a\r\n"),
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct chunk_case *cc = &cases[i];
        for (int scan = 0; scan < 2; scan++) {
            /* whole, byte by byte, then random splits */
            for (int trial = 0; trial < 40; trial++) {
                size_t maxp = trial == 0 ? 0 : trial == 1 ? 1 : 1 + rnd() % 8;
                size_t olen, used;
                int r = feed_chunked(cc->body, cc->len, maxp, scan, out, &olen, &used);
                int ok = r == cc->result;
                if (ok && r == 1) {
                    ok = used == cc->msg_len;
                    if (!scan) ok = ok && olen == strlen(cc->payload) &&
                                    memcmp(out, cc->payload, olen) == 0;
                }
                if (!ok) {
                    fprintf(stderr, "chunk case %zu (scan %d, piece %zu): got %d used %zu\n", i,
                            scan, maxp, r, used);
                    failed++;
                    goto next;
                }
            }
            passed++;
        next:;
        }
    }
}

static void test_chunked_limits(void)
{
    static char big[H1_CHUNK_TRAILERS_MAX * 2];
    char out[64];
    size_t olen, used;

    /* Extension just under the line limit is fine; at the limit it fails,
     * also when it never ends (bounded buffering). */
    size_t n = (size_t)sprintf(big, "1;x=");
    memset(big + n, 'v', H1_CHUNK_LINE_MAX - n - 2);
    n = H1_CHUNK_LINE_MAX - 2;
    n += (size_t)sprintf(big + n, "\r\na\r\n0\r\n\r\n");
    CHECK(feed_chunked(big, n, 0, 0, out, &olen, &used) == 1 && olen == 1 && out[0] == 'a');
    n = (size_t)sprintf(big, "1;x=");
    memset(big + n, 'v', H1_CHUNK_LINE_MAX - n - 1);
    n = H1_CHUNK_LINE_MAX - 1;
    n += (size_t)sprintf(big + n, "\r\na\r\n0\r\n\r\n");
    CHECK(feed_chunked(big, n, 0, 0, out, &olen, &used) == -1);
    CHECK(feed_chunked(big, n, 3, 1, out, &olen, &used) == -1);
    memset(big + 4, 'v', sizeof(big) - 4);
    CHECK(feed_chunked(big, sizeof(big), 0, 1, out, &olen, &used) == -1);
    CHECK(feed_chunked(big, sizeof(big), 700, 1, out, &olen, &used) == -1);

    /* Trailer section bound. */
    n = (size_t)sprintf(big, "0\r\n");
    while (n < H1_CHUNK_TRAILERS_MAX + 100) n += (size_t)sprintf(big + n, "X-T: 0123456789\r\n");
    n += (size_t)sprintf(big + n, "\r\n");
    CHECK(feed_chunked(big, n, 0, 1, out, &olen, &used) == -1);
    n = (size_t)sprintf(big, "0\r\n");
    while (n < H1_CHUNK_TRAILERS_MAX - 100) n += (size_t)sprintf(big + n, "X-T: 0123456789\r\n");
    n += (size_t)sprintf(big + n, "\r\n");
    CHECK(feed_chunked(big, n, 0, 1, out, &olen, &used) == 1 && used == n);

    /* The largest chunk size is framing-valid; its data just never ends. */
    struct h1_chunked c;
    memset(&c, 0, sizeof(c));
    CHECK(h1_chunked_scan(&c, "ffffffffffffffff\r\nabc", 21) == 21 && c.remaining == UINT64_MAX - 3);
    /* Errors are sticky. */
    memset(&c, 0, sizeof(c));
    CHECK(h1_chunked_scan(&c, "z", 1) == H1_ERR_BAD_REQUEST);
    CHECK(h1_chunked_scan(&c, "0\r\n\r\n", 5) == H1_ERR_BAD_REQUEST);
    /* Done consumes nothing more. */
    memset(&c, 0, sizeof(c));
    CHECK(h1_chunked_scan(&c, "0\r\n\r\nxyz", 8) == 5 && h1_chunked_done(&c));
    CHECK(h1_chunked_scan(&c, "xyz", 3) == 0);
    /* decode returns one run at a time and then the rest of the framing */
    const char *d;
    size_t dl;
    memset(&c, 0, sizeof(c));
    static const char two[] = "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n";
    int r = h1_chunked_decode(&c, two, sizeof(two) - 1, &d, &dl);
    CHECK(r == 5 && dl == 2 && d == two + 3);
    r = h1_chunked_decode(&c, two + 5, sizeof(two) - 6, &d, &dl);
    CHECK(r == 8 && dl == 3 && memcmp(d, "cde", 3) == 0);
    r = h1_chunked_decode(&c, two + 13, sizeof(two) - 14, &d, &dl);
    CHECK(r == 7 && dl == 0 && h1_chunked_done(&c));
}

/* Random valid chunked bodies, random splits: decode == payload, scan == all. */
/* hold_trailers: the scan stops after the last chunk's line; the section
 * is then parsed whole into fields (values trimmed), with the decoder's
 * rules and limits. */
static void test_chunked_held_trailers(void)
{
    static const char msg[] = "3\r\nabc\r\n0\r\nX-Sum: a1 \r\nx-e:\r\n\r\nNEXT";
    struct h1_chunked c = {.hold_trailers = 1};
    struct h1_header hs[4];
    size_t n = 99;
    int r = h1_chunked_scan(&c, msg, sizeof(msg) - 1);
    CHECK(r == 11 && h1_chunked_at_trailers(&c) && !h1_chunked_done(&c), "%d", r);
    CHECK(h1_chunked_scan(&c, msg + r, sizeof(msg) - 1 - (size_t)r) == 0); /* stays */
    CHECK(h1_chunked_trailers(&c, msg + r, 10, hs, 4, &n) == H1_INCOMPLETE);
    int t = h1_chunked_trailers(&c, msg + r, sizeof(msg) - 1 - (size_t)r, hs, 4, &n);
    CHECK(t == 20 && n == 2 && h1_chunked_done(&c), "%d %zu", t, n);
    CHECK(h1_str_ieq(hs[0].name, "x-sum") && hs[0].value.len == 2 &&
          memcmp(hs[0].value.p, "a1", 2) == 0);
    CHECK(hs[1].name.len == 3 && hs[1].value.len == 0);

    static const char *const bad[] = {"Host: a\r\n\r\n", "Content-Length: 1\r\n\r\n",
                                      " x: 1\r\n\r\n", "x 1\r\n\r\n", "x: 1\n\r\n",
                                      "a: 1\r\nb: 2\r\nc: 3\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct h1_chunked b = {.hold_trailers = 1};
        CHECK(h1_chunked_scan(&b, "0\r\n", 3) == 3);
        CHECK(h1_chunked_trailers(&b, bad[i], strlen(bad[i]), hs, 2, &n) == H1_ERR_BAD_REQUEST,
              "%s", bad[i]);
        CHECK(h1_chunked_trailers(&b, "\r\n", 2, hs, 2, &n) == H1_ERR_BAD_REQUEST); /* sticky */
    }
    static char big[H1_CHUNK_TRAILERS_MAX + 128]; /* the last line may pass the limit */
    size_t len = 0;
    while (len < H1_CHUNK_TRAILERS_MAX)
        len += (size_t)sprintf(big + len, "x: %0100d\r\n", 0);
    struct h1_chunked b = {.hold_trailers = 1};
    static struct h1_header many[H1_CHUNK_TRAILERS_MAX / 4];
    h1_chunked_scan(&b, "0\r\n", 3);
    CHECK(h1_chunked_trailers(&b, big, len, many, H1_CHUNK_TRAILERS_MAX / 4, &n) ==
          H1_ERR_BAD_REQUEST); /* over the section limit, even unfinished */
    CHECK(h1_trailer_forwardable((h1_str){"x-a", 3}, (h1_str){"v w", 3}));
    CHECK(!h1_trailer_forwardable((h1_str){"connection", 10}, (h1_str){"x", 1}));
    CHECK(!h1_trailer_forwardable((h1_str){"x-a", 3}, (h1_str){"v\r\nx: y", 8}));
    CHECK(!h1_trailer_forwardable((h1_str){"x a", 3}, (h1_str){"v", 1}));
}

static void test_chunked_random(void)
{
    static char body[65536], payload[32768], out[32768];
    int ok = 1;
    for (int iter = 0; iter < 300 && ok; iter++) {
        size_t n = 0, pl = 0;
        int nchunks = (int)(rnd() % 6);
        for (int i = 0; i < nchunks; i++) {
            size_t sz = 1 + rnd() % 700;
            n += (size_t)sprintf(body + n, rnd() % 2 ? "%zx" : "%zX", sz);
            if (rnd() % 3 == 0) n += (size_t)sprintf(body + n, ";ext=%u", rnd());
            n += (size_t)sprintf(body + n, "\r\n");
            for (size_t j = 0; j < sz; j++) payload[pl + j] = body[n + j] = (char)rnd();
            n += sz;
            pl += sz;
            n += (size_t)sprintf(body + n, "\r\n");
        }
        n += (size_t)sprintf(body + n, "0\r\n");
        if (rnd() % 2) n += (size_t)sprintf(body + n, "Trailer-%u: v\r\n", rnd());
        n += (size_t)sprintf(body + n, "\r\n");
        for (int scan = 0; scan < 2; scan++) {
            size_t olen, used;
            size_t maxp = iter % 10 == 0 ? 1 : 1 + rnd() % 300;
            int r = feed_chunked(body, n, maxp, scan, out, &olen, &used);
            if (r != 1 || used != n || (!scan && (olen != pl || memcmp(out, payload, pl) != 0))) {
                fprintf(stderr, "random chunked iter %d scan %d failed (r=%d)\n", iter, scan, r);
                ok = 0;
            }
        }
    }
    CHECK(ok);
}

/* How the proxy uses it: head, raw-forwarded chunked body, next request. */
static void test_pipeline(void)
{
    static const char s[] = "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "3\r\nabc\r\n0\r\n\r\n"
                            "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    char *buf = dup_exact(s, sizeof(s) - 1);
    size_t n = sizeof(s) - 1, off = 0;
    struct h1_request req;
    struct h1_chunked c;
    req.headers = hdrs;
    int r = h1_parse_request(buf, n, &req, MAXH, MAXB);
    CHECK(r == 57 && req.body == H1_BODY_CHUNKED && streq(req.path, "/a"));
    off = (size_t)r;
    memset(&c, 0, sizeof(c));
    r = h1_chunked_scan(&c, buf + off, n - off);
    CHECK(r == 13 && h1_chunked_done(&c));
    off += (size_t)r;
    req.headers = hdrs;
    r = h1_parse_request(buf + off, n - off, &req, MAXH, MAXB);
    CHECK(r == (int)(n - off) && streq(req.path, "/b") && req.body == H1_BODY_NONE);
    free(buf);
}

/* ---- helpers ---- */

static void test_helpers(void)
{
    h1_str s = {"Keep-Alive", 10};
    CHECK(h1_str_ieq(s, "keep-alive"));
    CHECK(!h1_str_ieq(s, "keep-alivex"));
    CHECK(!h1_str_ieq(s, "keep-aliv"));
    h1_str e = {"", 0};
    CHECK(h1_str_ieq(e, ""));
    h1_str list = {" foo ,\tBar;x, ,close ", 21};
    CHECK(h1_token_list_has(list, "foo"));
    CHECK(h1_token_list_has(list, "close"));
    CHECK(h1_token_list_has(list, "bar;x"));
    CHECK(!h1_token_list_has(list, "bar"));
    CHECK(!h1_token_list_has(list, "clos"));
    CHECK(!h1_token_list_has(list, ""));
    h1_str none = {NULL, 0};
    CHECK(!h1_token_list_has(none, "close"));

    static const char *hop[] = {"Connection", "keep-alive", "PROXY-CONNECTION", "te", "Upgrade"};
    static const char *e2e[] = {"Transfer-Encoding", "Trailer", "Content-Length", "Host",
                                "Proxy-Authorization", "tea", "Connection2", "x"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        h1_str n = {hop[i], strlen(hop[i])};
        CHECK(h1_header_is_hop_by_hop(n));
    }
    for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++) {
        h1_str n = {e2e[i], strlen(e2e[i])};
        CHECK(!h1_header_is_hop_by_hop(n));
    }
    h1_str conn = {"close, X-Secret", 15};
    h1_str xs = {"x-secret", 8}, xo = {"x-other", 7}, up = {"upgrade", 7};
    CHECK(h1_header_should_strip(xs, conn));
    CHECK(!h1_header_should_strip(xo, conn));
    CHECK(h1_header_should_strip(up, none));

    CHECK(strcmp(h1_status_reason(200), "OK") == 0);
    CHECK(strcmp(h1_status_reason(431), "Request Header Fields Too Large") == 0);
    CHECK(strcmp(h1_status_reason(505), "HTTP Version Not Supported") == 0);
    CHECK(strcmp(h1_status_reason(799), "Unknown") == 0);

    CHECK(h1_is_tchar('a') && h1_is_tchar('~') && !h1_is_tchar(' ') && !h1_is_tchar(':') &&
          !h1_is_tchar('\x80') && !h1_is_tchar('"'));

    /* h1_head_scan finds terminators split across calls, once each. */
    static const char hs[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t pos = 0;
    CHECK(!h1_head_scan(hs, 25, &pos));
    CHECK(!h1_head_scan(hs, 26, &pos));
    CHECK(h1_head_scan(hs, 27, &pos) && pos == 27);
    CHECK(!h1_head_scan(hs, 27, &pos));
    pos = 0;
    CHECK(h1_head_scan(hs, 27, &pos));
    pos = 0;
    CHECK(!h1_head_scan("\n\n\r\n", 4, &pos));
    pos = 0;
    CHECK(h1_head_scan("\r\n\r\nGET", 7, &pos) && pos == 4);
    CHECK(!h1_head_scan("\r\n\r\nGET", 7, &pos));
}

int main(void)
{
    test_request_basic();
    test_request_versions_keepalive();
    test_request_flags();
    test_request_targets();
    test_request_line_errors();
    test_header_syntax();
    test_host_rules();
    test_content_length_rules();
    test_transfer_encoding_rules();
    test_connection_rules();
    test_limits();
    test_responses();
    test_chunked_cases();
    test_chunked_limits();
    test_chunked_held_trailers();
    test_chunked_random();
    test_pipeline();
    test_helpers();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
