/* wasm_grpc.h - proxy_grpc_call and proxy_grpc_stream for WasmPlugins: a
 * filter's gRPC call to an http2 cluster of the generation, on the
 * cluster's pooled HTTP/2 sessions (h2_up.c), its answer handed back piece
 * by piece (wasm_grpc.c). */
#ifndef STRAND_WASM_GRPC_H
#define STRAND_WASM_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/worker.h"
#include "wasm/pw_host.h"

struct wf_grpc;

/* Where a call's answer goes, in this order: initial metadata (not for a
 * trailers-only answer, nor a failed call), each message (without the
 * 5-byte prefix), trailing metadata (when the answer ended with trailers),
 * then the close with the grpc-status and its decoded message (or 14
 * UNAVAILABLE: no connection or no endpoint, 4 DEADLINE_EXCEEDED: the
 * timeout, 13 INTERNAL: a malformed answer, 8 RESOURCE_EXHAUSTED: an
 * answer over WF_GRPC_MAX_BUF). Every callback runs from a timer of the
 * worker's loop, never from inside wf_grpc_* or a session event; the owner
 * may wf_grpc_cancel the call from inside any of them, and nothing follows
 * then. All pointers are borrowed for the callback; ud as given. The call
 * is freed once close returns. */
struct wf_grpc_sink {
    void (*initial)(void *ud, uint32_t token, const struct pw_kv *md, size_t n);
    void (*message)(void *ud, uint32_t token, const uint8_t *msg, size_t len);
    void (*trailing)(void *ud, uint32_t token, const struct pw_kv *md, size_t n);
    void (*close)(void *ud, uint32_t token, uint32_t status, const char *msg, size_t len);
};

/* Unanswered bytes one call may hold (its messages not delivered yet). */
#define WF_GRPC_MAX_BUF (4u << 20)

/* Starts call (borrowed; service and method non-empty) to the http2
 * cluster it names in wg (borrowed, must outlive the call): POST
 * /service/method with the metadata as fields, content-type
 * application/grpc, te trailers and, for a unary call, grpc-timeout and a
 * timer (timeout_ms, 0: 5 s). On PW_OK the call runs and *link points at it
 * until it is freed (then NULL), even when it already failed (the failure
 * comes through the sink). Else PW_PARSE_FAILURE (no such cluster),
 * PW_BAD_ARGUMENT (not an http2 cluster) or PW_INTERNAL_FAILURE (no
 * memory). sink, ud: borrowed until the call ends. */
int wf_grpc_start(struct wgen *wg, const struct pw_grpc_call *call, uint32_t token,
                  const struct wf_grpc_sink *sink, void *ud, struct wf_grpc **link);
/* A message on a stream (msg NULL: none, only the end), end: the last one.
 * PW_OK, PW_BAD_ARGUMENT (a unary call, or the stream's side has ended),
 * PW_INTERNAL_FAILURE (no memory). c, msg: borrowed. */
int wf_grpc_send(struct wf_grpc *c, const uint8_t *msg, size_t len, bool end);
/* proxy_grpc_close: a stream's side ends (its answer still comes); a
 * unary call is cancelled. c: borrowed (maybe freed). */
void wf_grpc_close(struct wf_grpc *c);
/* Stops the call without any more callbacks (NULL allowed); frees it,
 * at once or, from inside one of its callbacks, when that returns. */
void wf_grpc_cancel(struct wf_grpc *c);

#endif
