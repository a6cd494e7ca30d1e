/* accesslog.h - JSON-lines access log, one writer per worker thread.
 *
 * Each worker owns a `struct alog`: records are formatted into its buffer
 * and written with one write() per batch of whole lines when the buffer
 * passes ALOG_FLUSH_AT or when the worker's timer calls alog_flush(). Several
 * workers may open the same path: O_APPEND makes each write() land whole at
 * the end of a regular file, and for pipes (stdout under a supervisor) a
 * flush writes at most PIPE_BUF bytes of whole lines per write() so lines of
 * different workers never interleave. Nothing here is thread-safe: every
 * call for one alog comes from its owner thread.
 *
 * One line per request (http) or connection (tcp), always with every key so
 * log pipelines see a fixed schema; an absent string or status is null:
 * {"time":"2024-05-01T12:00:00.123Z","start_ms":1714564800123,
 *  "duration_us":1520,"protocol":"http","listener":"web","route":"default/api",
 *  "cluster":"v1","upstream":"10.0.0.7:8080","source":"192.0.2.1:51234",
 *  "method":"GET","authority":"example.com","path":"/api?q=1","status":200,
 *  "outcome":"ok","bytes_in":0,"bytes_out":512,"retries":0,
 *  "request_id":"...","user_agent":"curl/8.0","reason":null,"grpc_status":null}
 * Strings are escaped for JSON (control characters as \uXXXX, invalid UTF-8
 * as \ufffd per bad byte) and cut at ALOG_FIELD_MAX output bytes with a
 * trailing "...", so a hostile request cannot make a line unbounded. */
#ifndef STRAND_ACCESSLOG_H
#define STRAND_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ALOG_FLUSH_AT (32u * 1024)   /* buffered bytes that trigger a write */
#define ALOG_FIELD_MAX 4096u         /* escaped bytes kept per string field */

/* A borrowed byte string: p points into the caller's buffers (request head,
 * config) and only has to live for the alog_write call. p == NULL means
 * absent (null); p != NULL with len 0 is the empty string. Need not be
 * NUL-terminated nor valid UTF-8. */
struct alog_str {
    const char *p;
    size_t len;
};

/* s: borrowed C string or NULL; the result points at it. */
static inline struct alog_str alog_cstr(const char *s)
{
    struct alog_str r = {s, s ? strlen(s) : 0};
    return r;
}

/* "http" (HTTP/1.x), "tcp", "http2", "grpc" (a gRPC call over HTTP/2),
 * "postgres", "mysql" (one record per database session). */
enum alog_proto { ALOG_HTTP, ALOG_TCP, ALOG_HTTP2, ALOG_GRPC, ALOG_POSTGRES, ALOG_MYSQL };

enum alog_outcome {
    ALOG_OK,            /* completed (any status the upstream chose) */
    ALOG_CLIENT_ERROR,  /* bad request, client reset, client went away */
    ALOG_SERVER_ERROR,  /* upstream failed or answered 5xx */
    ALOG_DENIED,        /* refused by policy (no route, limits, filters) */
    ALOG_TIMEOUT,       /* a timeout ended it */
    ALOG_UNAVAILABLE,   /* no healthy upstream / circuit open */
};

/* Returns a static string: "ok", "client_error", ..., "unknown". */
const char *alog_outcome_name(enum alog_outcome o);

struct alog_rec {
    uint64_t start_ms;          /* unix time, milliseconds */
    uint64_t duration_us;
    enum alog_proto protocol;
    enum alog_outcome outcome;
    int status;                 /* HTTP status; 0 = none (null), e.g. tcp */
    uint32_t retries;
    uint64_t bytes_in;          /* from the client */
    uint64_t bytes_out;         /* to the client */
    struct alog_str listener;
    struct alog_str route;
    struct alog_str cluster;
    struct alog_str upstream;   /* "host:port" of the endpoint used */
    struct alog_str source;     /* client "host:port" */
    struct alog_str method;
    struct alog_str authority;
    struct alog_str path;
    struct alog_str request_id;
    struct alog_str user_agent;
    struct alog_str reason;     /* why it did not go well, e.g. "upstream_connect_timeout" */
    int has_grpc_status;        /* grpc_status is set (else the key is null) */
    int grpc_status;            /* the call's grpc-status */
};

struct alog;

/* path: borrowed ("stdout" or a file path, opened O_APPEND|O_CREAT, 0644).
 * Returns a new alog the caller frees with alog_close, or NULL with errno. */
struct alog *alog_open(const char *path);
/* Flushes (best effort) and frees a; closes the file unless it is stdout.
 * a may be NULL. */
void alog_close(struct alog *a);

/* a: the caller's alog; r: borrowed, only read during the call. Appends one
 * line, writing out the buffer first if a worst-case line might not fit and
 * after if it passed ALOG_FLUSH_AT. A record that cannot be buffered
 * (output stuck, see alog_flush) is dropped and counted. */
void alog_write(struct alog *a, const struct alog_rec *r);

/* a: the caller's alog. Writes every buffered line. Returns 0, or -1 with
 * errno: EAGAIN/EWOULDBLOCK keeps the unwritten lines for the next flush;
 * any other error drops them (counted in alog_dropped) so a broken disk
 * cannot wedge the worker. Call it from a timer (~100 ms) and at shutdown. */
int alog_flush(struct alog *a);

/* a: the caller's alog. Opens the path again (after log rotation renamed
 * the file), flushing what was buffered to the old file first. A no-op for
 * stdout. Returns 0, or -1 with errno and the old file still in use. */
int alog_reopen(struct alog *a);

/* a: borrowed. Lines lost to write errors or a full buffer so far. */
uint64_t alog_dropped(const struct alog *a);

#endif
