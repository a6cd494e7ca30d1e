/* h1_bench.c - micro-benchmark of the HTTP/1 head parser.
 *
 * Parses a typical ~300-byte request with 8 headers (and a small response,
 * and a chunked body) N times and prints nanoseconds per parse, the best
 * of ROUNDS rounds so a noisy machine disturbs it less. Not a test: numbers
 * depend on the machine.
 *
 *   gcc -O2 -Isrc src/proto/http1/h1_*.c bench/h1_bench.c -o /tmp/h1_bench
 *   /tmp/h1_bench [iterations] */
#include "proto/http1/h1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char request[] =
    "GET /api/v1/users/12345/profile?fields=name,email&lang=en HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=abc123def456; theme=dark\r\n"
    "X-Request-Id: 7f3c2a1e-9b8d-4c6f\r\n"
    "\r\n";

static const char response[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 1234\r\n"
                               "Date: Mon, 25 Nov 2024 18:50:00 GMT\r\n"
                               "Server: backend\r\n"
                               "Cache-Control: no-cache\r\n"
                               "\r\n";

static const char chunked[] = "400\r\n"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "................................................................"
                              "\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\n\r\n";

#define ROUNDS 7

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    struct h1_header hdrs[64];
    volatile long sink = 0;
    double t0, t1;

    struct h1_request req;
    req.headers = hdrs;
    if (h1_parse_request(request, sizeof(request) - 1, &req, 64, 65536) != (int)sizeof(request) - 1) {
        fprintf(stderr, "sample request does not parse: %s\n", req.error);
        return 1;
    }
    double best = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            req.headers = hdrs;
            sink += h1_parse_request(request, sizeof(request) - 1, &req, 64, 65536);
        }
        t1 = now_ns();
        if (t1 - t0 < best) best = t1 - t0;
    }
    printf("request  (%zu bytes, %zu headers): %.1f ns/parse\n", sizeof(request) - 1, req.nheaders,
           best / (double)iters);

    struct h1_response resp;
    resp.headers = hdrs;
    best = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            resp.headers = hdrs;
            sink += h1_parse_response(response, sizeof(response) - 1, &resp, 64, 65536, 0);
        }
        t1 = now_ns();
        if (t1 - t0 < best) best = t1 - t0;
    }
    printf("response (%zu bytes, %zu headers): %.1f ns/parse\n", sizeof(response) - 1,
           resp.nheaders, best / (double)iters);

    best = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            struct h1_chunked c;
            memset(&c, 0, sizeof(c));
            sink += h1_chunked_scan(&c, chunked, sizeof(chunked) - 1);
        }
        t1 = now_ns();
        if (t1 - t0 < best) best = t1 - t0;
    }
    printf("chunked scan (%zu bytes, 2 chunks): %.1f ns/body\n", sizeof(chunked) - 1,
           best / (double)iters);
    return sink == 0;
}
