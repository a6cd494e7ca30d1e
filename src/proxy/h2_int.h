/* h2_int.h - types shared by the HTTP/2 proxy files: h2_down.c (the
 * downstream HTTP/2 connection and its streams), h2_exchange.c (attempts
 * and the response path), h2_up.c (pooled upstream HTTP/2 sessions),
 * h2_h1up.c (an HTTP/2 stream sent to an HTTP/1.1 upstream) and h2_attr.c
 * (attributes of an HTTP/2 request). Not used outside src/proxy/h2_*.c and
 * the two hooks http.c calls.
 *
 * One stream (struct h2s) is one request. Its bytes flow through two
 * bounded buffers, each at most one buffer block (the flow-control window
 * of the HTTP/2 side that fills it equals the block size, so a peer can
 * never send more than fits):
 *
 *   client --DATA--> reqb --> upstream (HTTP/2 stream, or HTTP/1.1 body)
 *   client <--DATA-- respb <-- upstream
 *
 * A window reopens (h2_consume) only when bytes leave the buffer, so a slow
 * reader on one side stalls only its own stream, with at most two blocks
 * held per stream. */
#ifndef STRAND_H2_INT_H
#define STRAND_H2_INT_H

#include <stdint.h>

#include "proto/http1/h1.h"
#include "proto/http2/h2.h"
#include "proxy/h2_up.h"
#include "proxy/http_int.h"

/* A header list the stream owns: entries point into one allocation. */
struct h2_hlist {
    struct h2_header *v;
    size_t n;
    char *mem;
};

/* The HTTP/2 state of a downstream connection in HC_H2. */
struct h2d {
    struct h2_session *s;
    struct wlink streams;       /* struct h2s, open ones */
    uint32_t nstreams;
    int goaway;                 /* a graceful GOAWAY was queued */
    int failed;                 /* h2_feed failed: flush, then close */
};

enum h2s_up { H2S_UP_NONE, H2S_UP_H2, H2S_UP_H1 };

enum h2s_state {
    H2S_ROUTING,     /* head seen, not routed yet (never visible outside on_request) */
    H2S_CONNECTING,  /* waiting for an upstream (connection, session, slot) */
    H2S_EXCHANGE,    /* the request is with the upstream */
    H2S_DONE,        /* the response is submitted in full (or the stream reset) */
};

struct h2s {
    struct hconn *hc;
    int32_t id;
    enum h2s_state state;
    struct wlink link;          /* in hc->h2->streams */
    uint64_t t_start_us;
    uint64_t deadline_ms;       /* response head expected by then */
    struct loop_timer timer;

    /* What the route decided (same meaning as in struct hreq). */
    const struct route_rule *rr;
    int backend;
    struct gen_stats *stats;
    struct wcluster *wc;
    int ep;
    uint64_t tried;
    uint32_t attempts;
    int retrying;
    int holds_active;           /* counts in wc->active until it ends */
    uint64_t t_attempt_us;
    uint64_t hash;
    int have_hash;
    struct wlink pending_link;  /* waiting for a connection slot (wc->pending) */
    int pending;

    /* The request. */
    struct h2_hlist up_head;    /* pseudo-headers then fields, as sent upstream */
    int has_length;             /* the client sent content-length */
    int grpc;                   /* content-type application/grpc */
    int head_only;
    int req_done;               /* the client ended its side */
    struct buf reqb;            /* body bytes from the client, not yet released */
    uint32_t req_off;           /* replay: bytes of reqb sent in this attempt */
    int replay;                 /* reqb holds the whole body so far: retry possible */
    uint64_t req_bytes;         /* body bytes received */
    struct h2_hlist req_trl;    /* the client's trailers (after the filters'), or none */
    int req_trl_sent;           /* H2S_UP_H2: submitted on this attempt's stream */

    /* The attempt. */
    enum h2s_up up;
    struct h2u_stream us;       /* H2S_UP_H2: the stream on an upstream session */
    struct uconn *uc;           /* H2S_UP_H1 */
    struct buf ubuf;            /* H2S_UP_H1: head / chunk framing being written */
    int h1_head_sent;           /* H2S_UP_H1: the head has left ubuf */
    int h1_chunked;             /* H2S_UP_H1: the body is sent chunked */
    int h1_body_done;           /* H2S_UP_H1: the whole request body is written */
    struct hbody h1resp;        /* H2S_UP_H1: response framing */
    struct h2_hlist h1resp_trl; /* H2S_UP_H1: the response's chunked trailers, for its end */
    int h1_readable;
    int h1_reuse;               /* H2S_UP_H1: the connection may be pooled after */

    /* The response. */
    int resp_status;
    int resp_head_done;         /* a final head came from the upstream */
    int resp_submitted;         /* ... and was submitted to the client */
    struct buf respb;           /* body bytes for the client */
    int resp_done;              /* the upstream ended its body */
    int trailers_sent;          /* trailers were submitted after the body */
    int grpc_status;            /* -1 until known */
    uint64_t resp_bytes;
    int outcome;
    int denied;
    uint32_t retry_after;       /* seconds, for a 429 from a RateLimit; 0 = none */
    int reset_down;             /* the downstream stream was reset/closed */

    /* For the access log. */
    char method[16];
    char *path;
    char *authority;
    char *user_agent;
    char request_id[40];
    const char *error;
    char errbuf[160];

    /* HTTP/1.1 client (h2_h1down.c): the request came over HTTP/1.1 and
     * goes to an HTTP/2 cluster. */
    int h1;                     /* the client speaks HTTP/1.1 (id is 0) */
    struct hbody h1req;         /* request body framing in hc->in */
    int h1_resp_chunked;        /* the response body is sent chunked */
    int h1_resp_ended;          /* the response's last byte is in hc->out */
    int h1_broken;              /* the response cannot complete: close */
    int h1_close_after;         /* close the connection after this request */
    int h1_http10;
    int h1_keepalive;

    /* WasmPlugins of the stream (h2_wasm.c), or NULL; wf_wait: a filter
     * paused the request head; wf_cl: the client's content-length. */
    struct wf_stream *wf;
    int wf_wait;
    char wf_cl[24];

    /* h2_h1up.c */
    int h1_last_chunk;          /* H2S_UP_H1: the chunked body's last chunk is in ubuf */
    int h1_wfailed;             /* H2S_UP_H1: the upstream refused more of the request */
};

/* h2_down.c */
/* The connection switches to HTTP/2 (prior-knowledge preface in hc->in, or
 * ALPN h2): creates the session and feeds it what was read. 0, or -1 when
 * out of memory (the connection is closed). */
int h2d_start(struct hconn *hc);
/* Events on a connection in HC_H2. */
void h2d_on_io(struct hconn *hc, unsigned events);
/* Moves queued frames to the socket and sets the interest; closes the
 * connection when the session is over. Every h2 entry point ends here. */
void h2d_update(struct hconn *hc);
/* Frees the session (closing every stream); from hc_close. */
void h2d_free(struct hconn *hc);
/* Graceful GOAWAY: open streams finish, new ones are refused. */
void h2d_goaway(struct hconn *hc);
/* The idle timer fired. */
void h2d_timeout(struct hconn *hc);
/* Ends the stream's books (log, metrics, upstream); once per stream. */
void h2s_finish(struct h2s *st);
/* Frees a finished stream and what it owns (a loop_defer_free callback). */
void h2s_free(void *st);

/* h2_exchange.c */
/* Routes and starts the stream whose head is hs (borrowed). */
void h2s_begin(struct h2s *st, const struct h2_header *hs, size_t n);
/* Answers the stream locally: gRPC status for gRPC calls, else an HTTP
 * status with a short text body. */
void h2s_local(struct h2s *st, int status, const char *msg, int outcome);
/* Answers with a response of the caller's making: fields hs (without
 * content-length), body; a gRPC call gets grpc_code (when >= 0) as its
 * status instead. All borrowed; msg must outlive st (the access log). */
void h2s_local_body(struct h2s *st, int status, const struct h2_header *hs, size_t n,
                    const char *body, size_t len, int grpc_code, const char *msg, int outcome);
/* Routes the stream on from its head (the client's, or one a filter
 * rewrote; borrowed for the call). */
void h2s_route(struct h2s *st, const struct h2_header *hs, size_t n);

/* h2_wasm.c: WasmPlugins on HTTP/2 streams */
/* Runs the request-header filters; 1 when they took the stream over
 * (answered, waiting, or routed on), 0 when no filter applies. */
int h2_wf_request(struct h2s *st, const struct h2_header *hs, size_t n);
/* Runs the response-header filters over *status / *hs / *n (which may be
 * replaced by a list valid until the next call on this thread). 0 to go
 * on, -1 when the stream was answered locally instead. */
int h2_wf_response(struct h2s *st, int *status, const struct h2_header **hs, size_t *n);
/* Body bytes for the filters: request bytes as they arrive (held back
 * while the request headers are paused, then shown from reqb), response
 * bytes as they go to the client; eos once at the end. 0 to go on, -1
 * when the stream was answered or reset instead. */
int h2_wf_req_body(struct h2s *st, const uint8_t *p, size_t n, int eos);
/* Runs the request-trailer filters over st->req_trl (replaced when they
 * changed it); held back while the request head is paused, then run when
 * it goes on. 0 to go on, -1 when the stream was answered instead. */
int h2_wf_req_trailers(struct h2s *st);
/* Runs the response-trailer filters over *trl / *n (replaced by a list
 * valid until the next call on this thread when changed). 0, or -1 when
 * the stream was reset instead. */
int h2_wf_trailers(struct h2s *st, const struct h2_header **trl, size_t *n);
/* st takes over wf (the filters of the HTTP/1.1 request it continues). */
void h2_wf_adopt(struct h2s *st, struct wf_stream *wf);
int h2_wf_resp_body(struct h2s *st, const uint8_t *p, size_t n, int eos);
/* Starts (or restarts) an attempt. */
void h2s_attempt(struct h2s *st);
/* The attempt failed before a usable response: retry or answer. */
void h2s_attempt_failed(struct h2s *st, int lbkind, int fresh);
/* Closes the books on the current attempt. */
void h2s_attempt_end(struct h2s *st, int lbkind, int outcome);
/* A final response head from the upstream: checks retries, submits it to
 * the client. hs: regular fields (borrowed). Returns 0, or -1 when the
 * stream was handed to a retry or a local answer. */
int h2s_response(struct h2s *st, int status, const struct h2_header *hs, size_t n, int end);
/* Response body bytes from the upstream (appended to respb; the caller
 * made sure they fit). */
void h2s_resp_data(struct h2s *st, const uint8_t *p, size_t len);
/* The upstream finished the response (trailers may be given, borrowed). */
void h2s_resp_end(struct h2s *st, const struct h2_header *trl, size_t n);
/* The upstream failed after the response head: reset the client stream. */
void h2s_resp_abort(struct h2s *st, uint32_t code);
/* Gives up the right to retry: the request bytes already sent upstream
 * leave reqb and the client may send more (once a response is taken, or
 * when the body outgrows reqb). Harmless when already given up. */
void h2s_release_replay(struct h2s *st);
/* Request body bytes were taken by the upstream side: n bytes from the
 * front of reqb (replay mode: past req_off). */
void h2s_req_taken(struct h2s *st, size_t n);
/* Drops the upstream side (attempt over, or the stream is gone). */
void h2s_detach(struct h2s *st);
void h2s_timeout(struct loop *l, struct loop_timer *t);
/* uconn_slot_freed: let the oldest waiting stream of wc go. */
int h2s_slot_freed(struct wcluster *wc);
void h2s_unpend(struct h2s *st);
/* The request body source for upstream HTTP/2 (h2_body_read_fn). */
ssize_t h2s_req_read(void *ud, int32_t id, uint8_t *buf, size_t len, int *eof, int *deferred);

/* h2_up.c: pooled upstream HTTP/2 sessions (the generic stream calls are
 * in h2_up.h) */
/* Opens st's stream on a session to st->ep (existing or new). 0 (the
 * stream is submitted or waits for the connection) or -1 (connect failed
 * at once; errno). */
int h2u_start(struct h2s *st);
/* Request body bytes arrived for st (or its request ended). */
void h2u_body_ready(struct h2s *st);
/* The client took response bytes: reopen the upstream window by n. */
void h2u_consumed(struct h2s *st, size_t n);
/* Detaches st from its session (resetting its upstream stream with CANCEL
 * unless it is over). */
void h2u_detach(struct h2s *st);

/* h2_h1up.c: an HTTP/2 stream sent to an HTTP/1.1 upstream */
int h2h1_start(struct h2s *st);
/* Moves bytes both ways; called on any event of either side. */
void h2h1_update(struct h2s *st);
void h2h1_detach(struct h2s *st);

/* h2_h1down.c: an HTTP/1.1 request carried to an HTTP/2 cluster */
/* Takes over the routed request r whose head req of head_len bytes starts
 * hc->in (consumed here): the connection goes to HC_H1X. r's copies and
 * generation hold move to the new stream, and so do its filters wf (NULL:
 * none); the caller frees r. 0, or -1 when out of memory (nothing taken). */
int h1x_begin(struct hconn *hc, struct hreq *r, const struct h1_request *req, size_t head_len,
              struct wf_stream *wf);
/* The exchange's calls on the client side (see dn_* in h2_exchange.c). */
int h1x_respond(struct h2s *st, int status, const struct h2_header *hs, size_t n, int body);
void h1x_wake(struct h2s *st);
void h1x_abort(struct h2s *st);
/* Moves bytes for a connection in HC_H1X and finishes the request when
 * its response is written (the connection then returns to HC_HEAD or
 * HC_CLOSING). */
void h1x_update(struct hconn *hc);
/* hc_close: the client went away. */
void h1x_close(struct hconn *hc);

/* The rest of h2s_begin once routed: request head, timeout, first attempt.
 * hs: the request as HTTP/2 fields (borrowed). */
void h2s_go(struct h2s *st, const struct h2_header *hs, size_t n);
/* Marks hc for an update (h2d_update) at the end of the current batch of
 * events, when all its streams' output is written at once; h2_unmark
 * forgets it (hc is closing). */
void h2_mark(struct hconn *hc);
void h2_unmark(struct hconn *hc);
/* Frees the per-thread batch sets (worker exit). */
void h2_batch_free(void);

/* h2_attr.c */
struct h2_attr_ctx {
    const struct h2_header *hs;
    size_t n;
    const struct hconn *hc;
};
int h2_attr_get(void *ctx, const struct attr_key *key, attr_val *out, int max);

/* Copies hs into l (one allocation). 0 or -1. */
int h2_hlist_copy(struct h2_hlist *l, const struct h2_header *hs, size_t n);
void h2_hlist_free(struct h2_hlist *l);

#endif
