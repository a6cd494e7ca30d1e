/* test_grpc.c - unit tests for the gRPC helpers (src/proto/http2/grpc.c):
 * path parsing, grpc-timeout, status names/outcomes/HTTP mapping,
 * grpc-message encoding, and the trailers-only error response, which is
 * also sent through a real server session and read back by a client one.
 * Prints "N passed, M failed". */
#include "proto/http2/grpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"



/* Borrows both. */
static int str_is(struct grpc_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* Borrows all. */
static int path_ok(const char *p, const char *svc, const char *m)
{
    struct grpc_str a = {0}, b = {0};
    /* exact-size copy so a read past the end would show under ASan */
    size_t n = strlen(p);
    char *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    int r = grpc_parse_path(c, n, &a, &b);
    int ok = r == 0 && str_is(a, svc) && str_is(b, m) && a.p >= c && b.p + b.len <= c + n;
    free(c);
    return ok;
}

/* Borrows p. */
static int path_bad(const char *p)
{
    struct grpc_str a, b;
    size_t n = strlen(p);
    char *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    int r = grpc_parse_path(c, n, &a, &b);
    free(c);
    return r == -1;
}

static void test_path(void)
{
    CHECK(path_ok("/pkg.Service/Method", "pkg.Service", "Method"));
    CHECK(path_ok("/helloworld.Greeter/SayHello", "helloworld.Greeter", "SayHello"));
    CHECK(path_ok("/a.b.c.D/E", "a.b.c.D", "E"));
    CHECK(path_ok("/S/M", "S", "M"));
    CHECK(path_bad(""));
    CHECK(path_bad("/"));
    CHECK(path_bad("//M"));
    CHECK(path_bad("/S/"));
    CHECK(path_bad("/S"));
    CHECK(path_bad("S/M"));
    CHECK(path_bad("/a/b/c"));
    CHECK(path_bad("/S/M?x=1"));
    CHECK(path_bad("/S//"));
}

/* Borrows v; writes *ms. */
static int tmo(const char *v, uint64_t *ms)
{
    return grpc_parse_timeout(v, strlen(v), ms);
}

static void test_timeout(void)
{
    uint64_t ms = 0;
    CHECK(tmo("100m", &ms) == 0 && ms == 100);
    CHECK(tmo("5S", &ms) == 0 && ms == 5000);
    CHECK(tmo("1H", &ms) == 0 && ms == 3600000);
    CHECK(tmo("2M", &ms) == 0 && ms == 120000);
    CHECK(tmo("1500u", &ms) == 0 && ms == 2);
    CHECK(tmo("1000u", &ms) == 0 && ms == 1);
    CHECK(tmo("1n", &ms) == 0 && ms == 1);
    CHECK(tmo("0m", &ms) == 0 && ms == 0);
    CHECK(tmo("99999999H", &ms) == 0 && ms == 99999999ull * 3600000);
    CHECK(tmo("12345678n", &ms) == 0 && ms == 13);
    CHECK(tmo("123456789m", &ms) == -1); /* 9 digits */
    CHECK(tmo("m", &ms) == -1);
    CHECK(tmo("", &ms) == -1);
    CHECK(tmo("10", &ms) == -1);
    CHECK(tmo("10s", &ms) == -1);  /* units are case-sensitive */
    CHECK(tmo("10x", &ms) == -1);
    CHECK(tmo("-1S", &ms) == -1);
    CHECK(tmo(" 1S", &ms) == -1);
    CHECK(tmo("1 S", &ms) == -1);
}

static void test_status(void)
{
    int code = -1;
    CHECK(grpc_parse_status("0", 1, &code) == 0 && code == 0);
    CHECK(grpc_parse_status("14", 2, &code) == 0 && code == 14);
    CHECK(grpc_parse_status("", 0, &code) == -1);
    CHECK(grpc_parse_status("1x", 2, &code) == -1);
    CHECK(grpc_parse_status("1000", 4, &code) == -1);
    CHECK(strcmp(grpc_status_name(0), "OK") == 0);
    CHECK(strcmp(grpc_status_name(4), "DEADLINE_EXCEEDED") == 0);
    CHECK(strcmp(grpc_status_name(7), "PERMISSION_DENIED") == 0);
    CHECK(strcmp(grpc_status_name(8), "RESOURCE_EXHAUSTED") == 0);
    CHECK(strcmp(grpc_status_name(14), "UNAVAILABLE") == 0);
    CHECK(strcmp(grpc_status_name(16), "UNAUTHENTICATED") == 0);
    CHECK(strcmp(grpc_status_name(17), "UNKNOWN") == 0);
    CHECK(strcmp(grpc_status_name(-1), "UNKNOWN") == 0);

    CHECK(grpc_status_outcome(GRPC_OK) == GRPC_OUT_OK);
    CHECK(grpc_status_outcome(GRPC_CANCELLED) == GRPC_OUT_CLIENT_ERROR);
    CHECK(grpc_status_outcome(GRPC_INVALID_ARGUMENT) == GRPC_OUT_CLIENT_ERROR);
    CHECK(grpc_status_outcome(GRPC_NOT_FOUND) == GRPC_OUT_CLIENT_ERROR);
    CHECK(grpc_status_outcome(GRPC_DEADLINE_EXCEEDED) == GRPC_OUT_TIMEOUT);
    CHECK(grpc_status_outcome(GRPC_PERMISSION_DENIED) == GRPC_OUT_DENIED);
    CHECK(grpc_status_outcome(GRPC_RESOURCE_EXHAUSTED) == GRPC_OUT_DENIED);
    CHECK(grpc_status_outcome(GRPC_UNAUTHENTICATED) == GRPC_OUT_DENIED);
    CHECK(grpc_status_outcome(GRPC_UNAVAILABLE) == GRPC_OUT_UNAVAILABLE);
    CHECK(grpc_status_outcome(GRPC_INTERNAL) == GRPC_OUT_SERVER_ERROR);
    CHECK(grpc_status_outcome(GRPC_UNIMPLEMENTED) == GRPC_OUT_SERVER_ERROR);
    CHECK(grpc_status_outcome(GRPC_DATA_LOSS) == GRPC_OUT_SERVER_ERROR);
    CHECK(grpc_status_outcome(GRPC_UNKNOWN) == GRPC_OUT_SERVER_ERROR);
    CHECK(grpc_status_outcome(99) == GRPC_OUT_SERVER_ERROR);
    int all_named = 1;
    for (int i = 0; i <= 16; i++)
        all_named &= strcmp(grpc_outcome_name(grpc_status_outcome(i)), "unknown") != 0;
    CHECK(all_named);
    CHECK(strcmp(grpc_outcome_name(GRPC_OUT_OK), "ok") == 0);
    CHECK(strcmp(grpc_outcome_name(GRPC_OUT_CLIENT_ERROR), "client_error") == 0);
    CHECK(strcmp(grpc_outcome_name(GRPC_OUT_SERVER_ERROR), "server_error") == 0);
    CHECK(strcmp(grpc_outcome_name(GRPC_OUT_DENIED), "denied") == 0);
    CHECK(strcmp(grpc_outcome_name(GRPC_OUT_TIMEOUT), "timeout") == 0);
    CHECK(strcmp(grpc_outcome_name(GRPC_OUT_UNAVAILABLE), "unavailable") == 0);
    CHECK(strcmp(grpc_outcome_name((enum grpc_outcome)42), "unknown") == 0);

    CHECK(grpc_status_from_http(400) == GRPC_INTERNAL);
    CHECK(grpc_status_from_http(401) == GRPC_UNAUTHENTICATED);
    CHECK(grpc_status_from_http(403) == GRPC_PERMISSION_DENIED);
    CHECK(grpc_status_from_http(404) == GRPC_UNIMPLEMENTED);
    CHECK(grpc_status_from_http(429) == GRPC_UNAVAILABLE);
    CHECK(grpc_status_from_http(502) == GRPC_UNAVAILABLE);
    CHECK(grpc_status_from_http(503) == GRPC_UNAVAILABLE);
    CHECK(grpc_status_from_http(504) == GRPC_UNAVAILABLE);
    CHECK(grpc_status_from_http(500) == GRPC_UNKNOWN);
    CHECK(grpc_status_from_http(200) == GRPC_UNKNOWN);
    CHECK(grpc_status_from_http(100) == GRPC_INTERNAL);

    CHECK(grpc_is_content_type("application/grpc", 16));
    CHECK(grpc_is_content_type("application/grpc+proto", 22));
    CHECK(grpc_is_content_type("application/grpc;charset=utf-8", 30));
    CHECK(grpc_is_content_type("Application/GRPC", 16));
    CHECK(!grpc_is_content_type("application/grpc-web", 20));
    CHECK(!grpc_is_content_type("application/json", 16));
    CHECK(!grpc_is_content_type("application/grp", 15));
}

static void test_message(void)
{
    char out[64], back[64];
    ssize_t n = grpc_message_encode("no access", 9, out, sizeof(out));
    CHECK(n == 9 && memcmp(out, "no access", 9) == 0);
    n = grpc_message_encode("100% d\xc3\xa9ni\n", 12, out, sizeof(out));
    CHECK(n == 22 && memcmp(out, "100%25 d%C3%A9ni%0A", 19) == 0);
    ssize_t m = grpc_message_decode(out, (size_t)n, back, sizeof(back));
    CHECK(m == 12 && memcmp(back, "100% d\xc3\xa9ni\n", 12) == 0);
    CHECK(grpc_message_encode("\x01", 1, out, 2) == -1);
    CHECK(grpc_message_encode("ab", 2, out, 1) == -1);
    m = grpc_message_decode("a%zz%4", 6, back, sizeof(back));
    CHECK(m == 6 && memcmp(back, "a%zz%4", 6) == 0);
    m = grpc_message_decode("%41%4a", 6, back, sizeof(back));
    CHECK(m == 2 && memcmp(back, "AJ", 2) == 0);
    /* every byte round-trips */
    char all[256], enc[768], dec[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    n = grpc_message_encode(all, 256, enc, sizeof(enc));
    CHECK(n > 0);
    int printable = 1;
    for (ssize_t i = 0; i < n; i++)
        printable &= enc[i] >= 0x20 && enc[i] <= 0x7e;
    CHECK(printable);
    m = grpc_message_decode(enc, (size_t)n, dec, sizeof(dec));
    CHECK(m == 256 && memcmp(dec, all, 256) == 0);
}

/* ---- the refusal through a real session pair -------------------------------- */

struct seen {
    int status, ends, closes, trailers;
    char grpc_status[8], grpc_message[128], ctype[64];
};

static struct seen seen;
static struct grpc_error_response refusal;

/* Borrows h; writes the caller's dst. */
static void copyv(char *dst, size_t cap, const struct h2_header *h)
{
    size_t n = h->vlen < cap - 1 ? h->vlen : cap - 1;
    memcpy(dst, h->value, n);
    dst[n] = 0;
}

/* Callback: ud points at the server session; hs borrowed. */
static int s_request(void *ud, int32_t id, const struct h2_header *hs, size_t n, int end)
{
    struct h2_session *s = *(struct h2_session **)ud;
    return h2_submit_response(s, id, refusal.status, refusal.headers, refusal.n, NULL, NULL);
}

/* Callback: hs borrowed. */
static int c_response(void *ud, int32_t id, int status, const struct h2_header *hs, size_t n,
                      int end)
{
    seen.status = status;
    const struct h2_header *h;
    if ((h = h2_header_get(hs, n, "grpc-status")))
        copyv(seen.grpc_status, sizeof(seen.grpc_status), h);
    if ((h = h2_header_get(hs, n, "grpc-message")))
        copyv(seen.grpc_message, sizeof(seen.grpc_message), h);
    if ((h = h2_header_get(hs, n, "content-type")))
        copyv(seen.ctype, sizeof(seen.ctype), h);
    return 0;
}

/* Callback. */
static void c_end(void *ud, int32_t id)
{
    seen.ends++;
}

/* Callback. */
static void c_close(void *ud, int32_t id, uint32_t code)
{
    seen.closes++;
}

/* Borrows both sessions. */
static void pump(struct h2_session *a, struct h2_session *b)
{
    uint8_t buf[16384];
    for (int i = 0; i < 100; i++) {
        ssize_t x = h2_pull(a, buf, sizeof(buf));
        if (x > 0)
            h2_feed(b, buf, (size_t)x);
        ssize_t y = h2_pull(b, buf, sizeof(buf));
        if (y > 0)
            h2_feed(a, buf, (size_t)y);
        if (x <= 0 && y <= 0)
            break;
    }
}

static void test_error_response(void)
{
    struct grpc_error_response r;
    CHECK(grpc_error_response(&r, GRPC_OK, "x") == -1);
    CHECK(grpc_error_response(&r, 17, "x") == -1);
    CHECK(grpc_error_response(&r, GRPC_PERMISSION_DENIED, "denied by policy") == 0);
    CHECK(r.status == 200 && r.nall == 4 && r.n == 3 && r.headers == r.all + 1);
    CHECK(r.all[0].nlen == 7 && memcmp(r.all[0].name, ":status", 7) == 0);
    CHECK(r.all[0].vlen == 3 && memcmp(r.all[0].value, "200", 3) == 0);
    CHECK(r.all[1].vlen == 16 && memcmp(r.all[1].value, "application/grpc", 16) == 0);
    CHECK(r.all[2].vlen == 1 && r.all[2].value[0] == '7');
    CHECK(r.all[3].vlen == 16 && memcmp(r.all[3].value, "denied by policy", 16) == 0);
    CHECK(grpc_error_response(&r, GRPC_RESOURCE_EXHAUSTED, NULL) == 0);
    CHECK(r.nall == 3 && r.all[2].vlen == 1 && r.all[2].value[0] == '8');
    CHECK(grpc_error_response(&r, GRPC_UNAVAILABLE, "") == 0);
    CHECK(r.nall == 3 && r.all[2].vlen == 2 && memcmp(r.all[2].value, "14", 2) == 0);
    CHECK(grpc_error_response(&r, GRPC_DEADLINE_EXCEEDED, "deadline 100% spent") == 0);
    CHECK(r.all[2].value[0] == '4' && r.all[3].vlen == 21 &&
          memcmp(r.all[3].value, "deadline 100%25 spent", 21) == 0);
    char longmsg[1000];
    memset(longmsg, '\n', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = 0;
    CHECK(grpc_error_response(&r, GRPC_INTERNAL, longmsg) == 0);
    CHECK(r.all[3].vlen == GRPC_MAX_MESSAGE * 3);

    /* refusals through a server session, read back by a client session */
    int codes[] = {GRPC_PERMISSION_DENIED, GRPC_RESOURCE_EXHAUSTED, GRPC_UNAVAILABLE,
                   GRPC_DEADLINE_EXCEEDED};
    for (size_t i = 0; i < 4; i++) {
        memset(&seen, 0, sizeof(seen));
        CHECK(grpc_error_response(&refusal, codes[i], "refused: r\xc3\xa9" "ason") == 0);
        struct h2_session *srv = NULL;
        struct h2_callbacks scb = {.on_request = s_request};
        struct h2_callbacks ccb = {.on_response = c_response, .on_end_stream = c_end,
                                   .on_close = c_close};
        srv = h2_session_server(&scb, &srv, NULL);
        struct h2_session *cli = h2_session_client(&ccb, NULL, NULL);
        struct h2_header req[] = {
            {":method", 7, "POST", 4}, {":scheme", 7, "http", 4},
            {":path", 5, "/pkg.Svc/Call", 13}, {":authority", 10, "svc", 3},
            {"content-type", 12, "application/grpc", 16}, {"te", 2, "trailers", 8},
        };
        CHECK(h2_submit_request(cli, req, 6, NULL, NULL, NULL) == 1);
        pump(cli, srv);
        char want[8];
        snprintf(want, sizeof(want), "%d", codes[i]);
        CHECK(seen.status == 200 && seen.ends == 1 && seen.closes == 1);
        CHECK(strcmp(seen.grpc_status, want) == 0);
        CHECK(strcmp(seen.ctype, "application/grpc") == 0);
        CHECK(strcmp(seen.grpc_message, "refused: r%C3%A9ason") == 0);
        h2_session_free(cli);
        h2_session_free(srv);
    }
}

int main(void)
{
    test_path();
    test_timeout();
    test_status();
    test_message();
    test_error_response();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
