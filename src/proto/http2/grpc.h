/* grpc.h - gRPC-over-HTTP/2 helpers for the proxy: pure functions over the
 * caller's bytes, no allocation, no I/O.
 *
 *  - the method path "/pkg.Service/Method" split into service and method
 *    (the attributes grpc.service and grpc.method);
 *  - the grpc-timeout header ("100m", "5S") in milliseconds;
 *  - grpc-status codes: names, and the Strand outcome each one counts as;
 *  - an HTTP status mapped to a grpc-status, for responses without one
 *    (grpc/doc/http-grpc-status-mapping.md);
 *  - grpc-message percent-encoding, and the trailers-only response the
 *    proxy sends when it refuses a call itself (denied, rate limited,
 *    no upstream, deadline passed). */
#ifndef STRAND_GRPC_H
#define STRAND_GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/http2/h2.h"

/* The 17 canonical status codes. */
enum grpc_status {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

/* What a call's status counts as in Strand's metrics and access log. The
 * values and names are those of the access log's outcomes (enum
 * alog_outcome in proxy/accesslog.h), so the proxy can use them as is. */
enum grpc_outcome {
    GRPC_OUT_OK = 0,
    GRPC_OUT_CLIENT_ERROR,
    GRPC_OUT_SERVER_ERROR,
    GRPC_OUT_DENIED,
    GRPC_OUT_TIMEOUT,
    GRPC_OUT_UNAVAILABLE,
};

/* A byte range inside the caller's string; not NUL-terminated. */
struct grpc_str {
    const char *p;
    size_t len;
};

/* Splits a gRPC method path "/pkg.Service/Method": exactly two non-empty
 * segments, no query. Returns 0 and fills service ("pkg.Service") and
 * method ("Method"), pointing into path; -1 when path is not one.
 * path: borrowed; service, method: caller's, point into path. */
int grpc_parse_path(const char *path, size_t len, struct grpc_str *service,
                    struct grpc_str *method);

/* Parses a grpc-timeout value: 1 to 8 ASCII digits then one unit of H M S
 * (hours, minutes, seconds) m u n (milli-, micro-, nanoseconds). Returns 0
 * and *ms (sub-millisecond remainders round up, so only "0x" gives 0), or -1.
 * v: borrowed; ms: caller's. */
int grpc_parse_timeout(const char *v, size_t len, uint64_t *ms);

/* Parses a grpc-status value (decimal, 0 to 999). Returns 0 and *code, or -1.
 * v: borrowed; code: caller's. */
int grpc_parse_status(const char *v, size_t len, int *code);

/* Whether a content-type is gRPC's: "application/grpc", optionally followed
 * by "+format" or ";params". v: borrowed. */
int grpc_is_content_type(const char *v, size_t len);

/* "OK", "CANCELLED", ...; "UNKNOWN" for codes outside 0-16 (the gRPC rule
 * for unknown codes). Returns a static string. */
const char *grpc_status_name(int code);
/* The outcome a status counts as; codes outside 0-16 count as UNKNOWN. */
enum grpc_outcome grpc_status_outcome(int code);
/* "ok", "client_error", ... Returns a static string. */
const char *grpc_outcome_name(enum grpc_outcome o);
/* The grpc-status a client should assume for an HTTP response without one. */
int grpc_status_from_http(int http_status);

/* Percent-encodes msg for grpc-message: bytes outside 0x20-0x7e and '%'
 * become "%XX". Writes at most cap bytes to out (not NUL-terminated) and
 * returns the length, or -1 when it does not fit. msg: borrowed; out:
 * caller's. */
ssize_t grpc_message_encode(const char *msg, size_t len, char *out, size_t cap);
/* Decodes a grpc-message; malformed escapes are kept as they are. Same
 * contract as grpc_message_encode (the result is never longer). */
ssize_t grpc_message_decode(const char *v, size_t len, char *out, size_t cap);

/* Longest grpc-message (before encoding) an error response carries; longer
 * messages are cut. */
#define GRPC_MAX_MESSAGE 256

/* A trailers-only error response, self-contained: the header array points
 * into the struct, so keep it in place while submitting.
 *   all/nall:  ":status" "200", "content-type" "application/grpc",
 *              "grpc-status" N, "grpc-message" (when a message was given)
 *   headers/n: the same without ":status", for h2_submit_response(s, id,
 *              status, headers, n, NULL, NULL) */
struct grpc_error_response {
    int status;                  /* always 200: gRPC errors travel in grpc-status */
    struct h2_header all[4];
    size_t nall;
    const struct h2_header *headers;
    size_t n;
    char code[8];
    char message[GRPC_MAX_MESSAGE * 3];
};

/* Fills r for grpc-status code (1-16) and msg (NULL or borrowed, copied,
 * cut at GRPC_MAX_MESSAGE bytes). Returns 0, or -1 for a code out of range
 * (OK is not an error). r: caller's. */
int grpc_error_response(struct grpc_error_response *r, int code, const char *msg);

#endif
