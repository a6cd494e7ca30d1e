/* grpc.c - gRPC-over-HTTP/2 helpers (see grpc.h). The rules come from the
 * gRPC over HTTP/2 protocol document (path, grpc-timeout, grpc-status,
 * grpc-message) and the HTTP to gRPC status mapping document. */
#include <string.h>

#include "proto/http2/grpc.h"

/* Borrows path; service and method point into it. */
int grpc_parse_path(const char *path, size_t len, struct grpc_str *service,
                    struct grpc_str *method)
{
    if (len < 4 || path[0] != '/')
        return -1;
    const char *slash = memchr(path + 1, '/', len - 1);
    if (!slash)
        return -1;
    size_t slen = (size_t)(slash - (path + 1));
    size_t mlen = len - slen - 2;
    if (slen == 0 || mlen == 0 || memchr(slash + 1, '/', mlen) || memchr(path, '?', len))
        return -1;
    service->p = path + 1;
    service->len = slen;
    method->p = slash + 1;
    method->len = mlen;
    return 0;
}

/* Borrows v; writes *ms. */
int grpc_parse_timeout(const char *v, size_t len, uint64_t *ms)
{
    if (len < 2 || len > 9)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < len - 1; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        *ms = n * 3600000;
        return 0;
    case 'M':
        *ms = n * 60000;
        return 0;
    case 'S':
        *ms = n * 1000;
        return 0;
    case 'm':
        *ms = n;
        return 0;
    case 'u':
        *ms = (n + 999) / 1000;
        return 0;
    case 'n':
        *ms = (n + 999999) / 1000000;
        return 0;
    default:
        return -1;
    }
}

/* Borrows v; writes *code. */
int grpc_parse_status(const char *v, size_t len, int *code)
{
    if (len < 1 || len > 3)
        return -1;
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    *code = n;
    return 0;
}

/* Borrows v. */
int grpc_is_content_type(const char *v, size_t len)
{
    static const char ct[] = "application/grpc";
    size_t n = sizeof(ct) - 1;
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        if (c != ct[i])
            return 0;
    }
    return len == n || v[n] == '+' || v[n] == ';';
}

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

/* Returns a static string. */
const char *grpc_status_name(int code)
{
    if (code < 0 || code > GRPC_UNAUTHENTICATED)
        code = GRPC_UNKNOWN;
    return status_names[code];
}

/* Why each: a status is the client's doing (bad input, its own cancel, a
 * state conflict it can resolve), the server's (it failed or lacks the
 * method), a policy refusal (auth, quota), a deadline, or unavailability
 * (the one status clients retry on their own). */
static const unsigned char status_outcome[] = {
    [GRPC_OK] = GRPC_OUT_OK,
    [GRPC_CANCELLED] = GRPC_OUT_CLIENT_ERROR,
    [GRPC_UNKNOWN] = GRPC_OUT_SERVER_ERROR,
    [GRPC_INVALID_ARGUMENT] = GRPC_OUT_CLIENT_ERROR,
    [GRPC_DEADLINE_EXCEEDED] = GRPC_OUT_TIMEOUT,
    [GRPC_NOT_FOUND] = GRPC_OUT_CLIENT_ERROR,
    [GRPC_ALREADY_EXISTS] = GRPC_OUT_CLIENT_ERROR,
    [GRPC_PERMISSION_DENIED] = GRPC_OUT_DENIED,
    [GRPC_RESOURCE_EXHAUSTED] = GRPC_OUT_DENIED,
    [GRPC_FAILED_PRECONDITION] = GRPC_OUT_CLIENT_ERROR,
    [GRPC_ABORTED] = GRPC_OUT_CLIENT_ERROR,
    [GRPC_OUT_OF_RANGE] = GRPC_OUT_CLIENT_ERROR,
    [GRPC_UNIMPLEMENTED] = GRPC_OUT_SERVER_ERROR,
    [GRPC_INTERNAL] = GRPC_OUT_SERVER_ERROR,
    [GRPC_UNAVAILABLE] = GRPC_OUT_UNAVAILABLE,
    [GRPC_DATA_LOSS] = GRPC_OUT_SERVER_ERROR,
    [GRPC_UNAUTHENTICATED] = GRPC_OUT_DENIED,
};

enum grpc_outcome grpc_status_outcome(int code)
{
    if (code < 0 || code > GRPC_UNAUTHENTICATED)
        code = GRPC_UNKNOWN;
    return (enum grpc_outcome)status_outcome[code];
}

/* Returns a static string. */
const char *grpc_outcome_name(enum grpc_outcome o)
{
    static const char *const names[] = {"ok",      "client_error", "server_error",
                                        "denied",  "timeout",      "unavailable"};
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "unknown";
}

int grpc_status_from_http(int http_status)
{
    if (http_status >= 100 && http_status < 200)
        return GRPC_INTERNAL; /* interim responses should never reach this */
    switch (http_status) {
    case 400:
    case 431:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

static const char hexd[] = "0123456789ABCDEF";

/* Borrows msg; writes into the caller's out. */
ssize_t grpc_message_encode(const char *msg, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            if (n + 1 > cap)
                return -1;
            out[n++] = (char)c;
        } else {
            if (n + 3 > cap)
                return -1;
            out[n++] = '%';
            out[n++] = hexd[c >> 4];
            out[n++] = hexd[c & 15];
        }
    }
    return (ssize_t)n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Borrows v; writes into the caller's out. */
ssize_t grpc_message_decode(const char *v, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n + 1 > cap)
            return -1;
        int hi, lo;
        if (v[i] == '%' && i + 2 < len && (hi = hexval(v[i + 1])) >= 0 &&
            (lo = hexval(v[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = v[i];
        }
    }
    return (ssize_t)n;
}

/* Fills the caller's r; borrows msg (copied). */
int grpc_error_response(struct grpc_error_response *r, int code, const char *msg)
{
    if (code <= GRPC_OK || code > GRPC_UNAUTHENTICATED)
        return -1;
    memset(r, 0, sizeof(*r));
    r->status = 200;
    size_t clen = 0;
    if (code >= 10)
        r->code[clen++] = (char)('0' + code / 10);
    r->code[clen++] = (char)('0' + code % 10);
    size_t k = 0;
    r->all[k++] = (struct h2_header){":status", 7, "200", 3};
    r->all[k++] = (struct h2_header){"content-type", 12, "application/grpc", 16};
    r->all[k++] = (struct h2_header){"grpc-status", 11, r->code, clen};
    if (msg && *msg) {
        size_t len = strlen(msg);
        if (len > GRPC_MAX_MESSAGE)
            len = GRPC_MAX_MESSAGE;
        ssize_t m = grpc_message_encode(msg, len, r->message, sizeof(r->message));
        /* cannot fail: three bytes per input byte at most */
        r->all[k++] = (struct h2_header){"grpc-message", 12, r->message, (size_t)m};
    }
    r->nall = k;
    r->headers = r->all + 1;
    r->n = k - 1;
    return 0;
}
