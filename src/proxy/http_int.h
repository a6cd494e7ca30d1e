/* http_int.h - types shared by the HTTP/1.1 proxy files (http.c: the
 * connection and request state machines, http_head.c: head rewriting,
 * http_attr.c: attributes). Not used outside src/proxy/http*.c. */
#ifndef STRAND_HTTP_INT_H
#define STRAND_HTTP_INT_H

#include <netinet/in.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "proto/http1/h1.h"
#include "proxy/gen.h"
#include "proxy/sio.h"
#include "proxy/worker.h"
#include "router/attr.h"

struct uconn;
struct route_rule;
struct h2d;
struct h2s;
struct wf_stream;

#define HTTP_MAX_HEADERS_CAP 256

/* Downstream connection states. */
enum hc_state {
    HC_TLS,      /* TLS handshake in progress */
    HC_HEAD,     /* waiting for (the rest of) a request head */
    HC_REQ,      /* a request is in flight */
    HC_CLOSING,  /* flushing the last bytes, then close */
    HC_H2,       /* HTTP/2: hc->h2 and h2_down.c own the connection */
    HC_H1X,      /* an HTTP/1.1 request to an HTTP/2 cluster: hc->xst, h2_h1down.c */
};

struct hconn {
    struct loop_io io;
    struct sio sio;         /* the client stream: io.fd, maybe TLS over it */
    struct loop_timer timer;
    struct worker *w;
    struct wgen *wg;
    struct gen_listener *gl;
    struct wlink link;
    enum hc_state state;
    struct buf in;          /* bytes from the client */
    struct buf out;         /* heads and local responses to the client */
    struct hreq *req;
    unsigned read_eof : 1;  /* the client shut down its side */
    unsigned closed : 1;
    unsigned h2_dirty : 1;  /* in h2_up.c's end-of-batch set (h2_mark) */
    uint32_t nrequests;
    size_t scan_pos;        /* h1_head_scan cursor over the pending head */
    unsigned hs_want;       /* HC_TLS: readiness the handshake waits for */
    char peer_ip[INET6_ADDRSTRLEN];
    int local_port;
    struct h2d *h2;         /* HC_H2: the HTTP/2 session and its streams */
    struct h2s *xst;        /* HC_H1X: the request */
};

/* A body as the filters see it: chunked framing taken off (a framing line
 * split between two writes waits in carry). */
struct http_wf_body {
    struct h1_chunked ch;
    uint8_t ncarry;
    uint8_t broken;             /* framing not followed: no more chunks shown */
    char carry[62];
};

/* Request states, from the head being complete to the response written. */
enum hreq_state {
    HR_CONNECTING,   /* waiting for an upstream connection (or a slot) */
    HR_EXCHANGE,     /* sending the request, receiving the response */
    HR_LOCAL,        /* a local response is being written */
    HR_FILTER,       /* a WasmPlugin paused the request head (http_wasm.c) */
};

/* Body framing tracker, for requests and responses alike. A chunked body's
 * trailer section is held (ch.hold_trailers): parsed whole, shown to the
 * filters, and written again from trl (fields a proxy must not pass
 * dropped), after the bytes before it went out. */
struct hbody {
    enum h1_body_kind kind;
    uint64_t left;          /* H1_BODY_LENGTH: bytes still to come */
    struct h1_chunked ch;   /* H1_BODY_CHUNKED: framing scanner */
    uint32_t scanned;       /* chunked: bytes at the front known to be body */
    int done;
    char *trl;              /* chunked: the trailer section to send (owned), or NULL */
    uint32_t trl_len, trl_sent;
};

struct hreq {
    struct hconn *hc;
    enum hreq_state state;
    uint64_t t_start_us;        /* head complete */
    uint64_t deadline_ms;       /* response head expected by then */
    struct loop_timer timer;    /* per-try / request timeout */

    /* What the route decided. */
    const struct route_rule *rr;
    int backend;
    struct gen_stats *stats;
    struct wcluster *wc;
    int ep;                     /* endpoint of the current attempt, -1 none */
    uint64_t tried;             /* endpoints tried (bit mask) */
    uint32_t attempts;          /* attempts made so far */
    int retrying;               /* counted in wc->retries_active */
    int fresh_retry_used;       /* the keep-alive race retry */
    uint64_t t_attempt_us;
    uint64_t hash;              /* consistent-hash key, when have_hash */
    int have_hash;

    /* The request as sent upstream. */
    struct buf head_buf;        /* a pooled block holding the head */
    uint32_t head_len, head_sent;
    struct hbody body;          /* request body */
    struct hbody body0;         /* replay: the body's framing state at the head */
    int replay;                 /* the whole body sits in hc->in from offset 0 */
    uint32_t body_off;          /* replay: bytes of hc->in already sent */
    uint32_t trl_raw;           /* replay: bytes of the held trailer section in hc->in */
    uint8_t trl_skipped;        /* replay: this attempt went past them (body_off) */
    uint64_t body_bytes;        /* request body bytes sent (all attempts: last) */
    int head_only;              /* HEAD request */
    int upgrade;                /* websocket upgrade asked for */
    int client_keepalive;
    int http10;

    struct uconn *uc;
    int uc_readable;            /* epoll reported the upstream readable */
    int resp_head_done;
    int resp_status;
    int close_after;            /* close the client connection when done */
    struct hbody resp;
    uint64_t resp_bytes;        /* bytes written to the client */
    int resp_until_close;
    int upstream_close;         /* the upstream connection cannot be reused */
    struct wlink pending_link;  /* in wc->pending while waiting for a slot */
    int pending;

    /* Kept for the access log (copies: the client buffer moves on). */
    char method[16];
    char *path;                 /* target as received */
    char *authority;
    char *user_agent;
    char request_id[40];
    const char *error;          /* why a local response was sent */
    char errbuf[160];           /* storage for a composed error */
    int denied;                 /* refused by an authorization policy */
    uint32_t retry_after;       /* seconds, for a 429 from a RateLimit; 0 = none */
    int outcome;

    /* WasmPlugins of the request (http_wasm.c), or NULL. The request head
     * then lives in the stream's map; these keep what the map must not
     * change: the parsed flags (request-target form) and the framing. */
    struct wf_stream *wf;
    unsigned wf_flags;
    int wf_method_id;
    uint64_t wf_req_fwd;        /* raw request body offset of this attempt's next byte */
    uint64_t wf_req_shown;      /* raw request body bytes the filters have seen */
    struct http_wf_body wf_dreq, wf_dresp;
};

static inline struct loop *hc_loop(struct hconn *hc) { return hc->w->loop; }

/* http.c (functions shared with http_exchange.c) */
void hc_close(struct hconn *hc);
/* (Re)arms the connection's idle/header timer: any progress counts. */
void hc_arm(struct hconn *hc);
/* Writes hc->out; -1 if the connection died. */
int hc_flush(struct hconn *hc);
/* After any event: flush local answers, parse pipelined requests, set the
 * interest. Every entry point ends here. */
void hc_kick(struct hconn *hc);
/* Ends the request (frees r, deferred) and readies the connection. */
void req_finish(struct hreq *r);
/* Hands both sockets of an upgraded request to a tunnel. */
void req_to_tunnel(struct hreq *r);
/* Routes r on (answer, cluster, attempt) from its head req (the parsed one
 * or a filter's rewrite); consume: bytes of hc->in the head still holds. */
void req_route(struct hreq *r, const struct h1_request *req, uint32_t consume);

/* http_exchange.c */
/* Answers r locally: a direct response (msg NULL) or a refusal/error. */
void req_local(struct hreq *r, int status, const char *msg, int outcome);
/* Answers r with a response of the caller's making (body, ctype and ops
 * borrowed); msg is the access log's reason (borrowed, must outlive r). */
void req_local_body(struct hreq *r, int status, const char *ctype, const char *body, size_t len,
                    const struct cfg_header_ops *ops, const char *msg, int outcome);
/* Starts (or restarts) an attempt: endpoint, limits, connection. */
void req_attempt(struct hreq *r);
/* Moves bytes both ways and sets both sockets' interest. */
void req_update(struct hreq *r);
void req_timeout(struct loop *l, struct loop_timer *t);
/* Closes the books on the current attempt (LB, counters, metrics). */
void attempt_end(struct hreq *r, int kind, int outcome);
void req_unpend(struct hreq *r);
/* uconn_slot_freed hook: lets the oldest waiting request of wc go. */
void http_slot_freed(struct wcluster *wc);
/* The books of one attempt to endpoint ep (LB, counters, metrics); shared by
 * the HTTP/1 and HTTP/2 paths. release: the request stops counting against
 * the cluster's maxRequests now (else the caller calls http_active_release
 * later, when a stream that outlives its response head ends). */
void http_attempt_books(struct worker *w, struct wcluster *wc, int ep, uint64_t t_attempt_us,
                        int kind, int outcome, int release);
void http_active_release(struct wcluster *wc);
/* Whether a retry for trigger (CFG_RETRY_*) is allowed after attempts
 * attempts; retrying says the request already counts in the budget. */
int http_retry_allowed(const struct cfg_retry *rt, const struct wcluster *wc, uint32_t attempts,
                       int retrying, unsigned trigger);
/* A failed attempt of kind (LB_*): its outcome, the retry triggers it
 * matches, and the answer when it is not retried. */
int http_failure_outcome(int kind);
unsigned http_failure_trigger(int kind);
void http_failure_answer(int kind, int *status, const char **msg);
/* Closes one pooled connection of wc to make room for a new one; 1 if it did. */
int http_close_one_idle(struct wcluster *wc);

/* http_head.c */
/* Builds the upstream request head into out (an empty buffer the caller
 * owns; it gets a pooled block). Returns its length, or -1 when it does not
 * fit in one block. */
int http_build_request_head(struct hreq *r, const struct h1_request *req, struct buf *out);
/* Appends the rewritten response head to r->hc->out. 0, or -1 when it does
 * not fit. */
int http_build_response_head(struct hreq *r, const struct h1_response *resp);
/* What a response says about the connection. */
enum { HTTP_CONN_NONE, HTTP_CONN_CLOSE, HTTP_CONN_KEEPALIVE };
/* Appends a complete local response to hc->out; conn is HTTP_CONN_*. 0 or -1. */
int http_local_response(struct hconn *hc, int status, const char *ctype, const char *body,
                        size_t bodylen, int conn, const struct cfg_header_ops *ops);
/* The prefix a rule matched `path` on, for rewrite.pathPrefix ("/" when it
 * has no prefix condition). cr: borrowed; returns a string it owns. */
const char *http_rule_prefix(const struct cfg_rule *cr);
/* Writes a version 4 UUID (36 chars + NUL) from w's generator. */
void http_request_id(struct worker *w, char out[40]);
/* Retry-After seconds for a RateLimit refusal that a token is due in
 * wait_ms: rounded up, at least 1. */
static inline uint32_t http_retry_after(uint64_t wait_ms)
{
    uint64_t s = (wait_ms + 999) / 1000;
    return s == 0 ? 1 : s > 86400 ? 86400 : (uint32_t)s;
}

/* http_wasm.c: WasmPlugins on HTTP/1.1 requests */
/* Runs the request-header filters of r (req: its parsed head, head_len
 * bytes of hc->in). 1 when they took the request over (it was answered,
 * waits for a filter, or was routed on), 0 when no filter applies. */
int http_wf_request(struct hreq *r, const struct h1_request *req, uint32_t head_len);
/* Runs the response-header filters on resp (its headers may be replaced by
 * the filters' map, in storage valid while r lives). 0 to go on, -1 when
 * r was answered locally instead. */
int http_wf_response(struct hreq *r, struct h1_response *resp);
/* Shows the filters n raw body bytes at p that were just forwarded, of the
 * request (resp 0) or the response; eos: the body is complete. 0, or -1
 * when a filter ended the request: a request was answered locally (the
 * upstream connection is gone), a response must be cut (close). */
int http_wf_body(struct hreq *r, int resp, const char *p, size_t n, int eos);
/* A chunked body's trailer section (fields *hs, *n, borrowed) reached the
 * proxy: the trailer filters run on it (request: plugin order; response:
 * backwards); with no field the body's end is shown instead. When they
 * changed the map, *hs / *n point to the new list (valid until the next
 * call on this thread). 0, or -1 as for http_wf_body. */
int http_wf_trailers(struct hreq *r, int resp, const struct h1_header **hs, size_t *n);

/* http_attr.c */
/* Attribute source over a parsed request; ctx is borrowed. */
struct http_attr_ctx {
    const struct h1_request *req;
    const struct hconn *hc;
};
int http_attr_get(void *ctx, const struct attr_key *key, attr_val *out, int max);
/* The attributes of the connection rather than the request (scheme,
 * protocol, source.address, destination.port, source.identity, tls.*);
 * 0 values for any other key. hc: borrowed. */
int http_conn_attr(const struct hconn *hc, const struct attr_key *key, attr_val *out, int max);
/* query.<name> values of the raw query string q[0..len) (borrowed; the
 * values point into it). */
int http_query_attr(const char *q, size_t len, const struct attr_key *key, attr_val *out, int max);

#endif
