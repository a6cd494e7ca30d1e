/* h2_up.h - streams on the pooled upstream HTTP/2 sessions of h2_up.c.
 *
 * A session (struct h2u) to one endpoint of a `protocol: http2` cluster
 * carries streams from several owners: proxied requests (struct h2s, see
 * h2_int.h) and the gRPC calls of WasmPlugins (wasm_grpc.c). Each owner
 * embeds a struct h2u_stream and gets the stream's events through its ops,
 * called from inside the session's socket events (h2_feed, or the session
 * dying): an owner must not close other sessions from there, and should not
 * run long work (a filter call) before returning. */
#ifndef STRAND_H2_UP_H
#define STRAND_H2_UP_H

#include <stddef.h>
#include <stdint.h>

#include "proto/http2/h2.h"
#include "proxy/worker.h"

struct h2u;
struct h2u_stream;

struct h2u_stream_ops {
    /* The session can take the stream now: submit the request on s
     * (h2_submit_request with us as stream_ud) and return its stream id,
     * or an H2_ERR_* (the stream is then lost, fresh). */
    int32_t (*submit)(struct h2u_stream *us, struct h2_session *s);
    /* Optional: the stream was submitted (us->usid set), or the owner
     * resumed it: where trailers go once the request body is over. */
    void (*ready)(struct h2u_stream *us, struct h2_session *s);
    /* The final response head: regular fields (borrowed). */
    void (*response)(struct h2u_stream *us, int status, const struct h2_header *hs, size_t n,
                     int end);
    /* Body bytes (borrowed); the stream's window reopens when the owner
     * calls h2u_stream_consumed. */
    void (*data)(struct h2u_stream *us, const uint8_t *p, size_t len);
    /* Trailers (borrowed; on_end follows with hs NULL), or the end of the
     * stream (hs NULL, n 0). */
    void (*end)(struct h2u_stream *us, const struct h2_header *hs, size_t n);
    /* The stream left its session before it ended: kind is LB_CONNECT_FAIL
     * (the connection never came up) or LB_RESET; fresh: the server never
     * worked on it (safe to send again); code: the reset's error code. us
     * is detached already (us->u NULL). */
    void (*lost)(struct h2u_stream *us, int kind, int fresh, uint32_t code);
};

/* The owner's part of one upstream stream; zero it, then wlist_init(uwait). */
struct h2u_stream {
    const struct h2u_stream_ops *ops;
    struct h2u *u;               /* the session, NULL when detached */
    int32_t usid;                /* its stream id, 0 before submitted */
    struct wlink uwait;          /* waiting for u to connect */
};

/* Opens us (the owner's, borrowed until detached) on a session to endpoint
 * ep of wc (existing with room, or a new connection). 0: submitted now or
 * once connected (ops->submit); -1: no connection could be started (errno),
 * nothing kept. */
int h2u_stream_open(struct wcluster *wc, int ep, struct h2u_stream *us,
                    const struct h2u_stream_ops *ops);
/* Whether a stream to ep could start now (a session with room, or room
 * for a new connection). wc: borrowed. */
int h2u_can_start(struct wcluster *wc, int ep);
/* Request body bytes became available for us (h2_resume). */
void h2u_stream_resume(struct h2u_stream *us);
/* The owner took n response bytes: reopen us's window by n. */
void h2u_stream_consumed(struct h2u_stream *us, size_t n);
/* Detaches us from its session (resetting its upstream stream with CANCEL
 * unless it is over); no op when detached. The owner may free us after. */
void h2u_stream_detach(struct h2u_stream *us);
/* Closes wc's sessions that carry no stream (generation retired). */
void h2u_close_idle(struct wcluster *wc);

#endif
