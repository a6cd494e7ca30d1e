/* wasm_filter.h - WasmPlugins (proxy-wasm filters) in the data path.
 *
 * The host core (src/wasm/pw_host.h) knows nothing of the proxy; this file
 * is the embedder: it loads each plugin once per generation, starts one VM
 * per plugin per worker (lazily, on the first request that needs it), and
 * runs a chain of contexts per HTTP request or tcp connection, answering
 * the filters' host calls (header maps, bodies, properties, local
 * responses, metrics, logs, ticks) from the stream's state.
 *
 * HTTP/1.1 and HTTP/2 clients (http.c, h2_down.c) and tcp listeners
 * (tcp.c / tunnel.c) call in. A request's header maps are copies (struct
 * wf_map) the protocol fills before a phase and reads back after it when
 * a filter changed them (wf_map_dirty): the maps outlive the client's
 * buffer, so a filter may pause a request and continue it later.
 *
 * Results of a phase (enum wf_result): go on; wait (the filter paused: the
 * embedder's resume callback fires when it continues, then call
 * wf_resume); answer locally (wf_local); or fail (a trap, a broken VM or
 * proxy_close_stream under failurePolicy closed: answer 500 / close).
 * Under failurePolicy open a failing plugin is skipped for the rest of the
 * stream. Every trap is counted (strand_wasm_traps_total), logged, and the
 * VM is recreated for the next stream. */
#ifndef STRAND_WASM_FILTER_H
#define STRAND_WASM_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/attr.h"

struct gen;
struct gen_listener;
struct worker;
struct wgen;
struct wf_stream;

enum wf_result {
    WF_CONTINUE = 0,
    WF_PAUSE,   /* wait for the embedder's resume callback, then wf_resume */
    WF_LOCAL,   /* answer with wf_local() */
    WF_FAIL,    /* fail closed: 500 / close; wf_fail_reason() says why */
};

/* A header map entry; key and value are NUL-terminated copies (key lower
 * case for requests and responses built by the embedder). */
struct wf_kv {
    char *key;
    uint32_t key_len;
    char *value;
    uint32_t value_len;
};

struct wf_map {
    struct wf_kv *e;
    uint32_t n, cap;
    bool dirty; /* a filter changed it */
};

/* A local response a filter asked for (proxy_send_local_response). */
struct wf_local {
    int status;
    int64_t grpc_status;     /* -1: plain HTTP */
    char *body;
    size_t body_len;
    char *details;           /* for the access log */
    struct wf_map headers;
};

/* What the protocol handler provides to its streams. */
struct wf_embed {
    /* A Strand attribute the maps cannot answer (connection attributes:
     * source.address, destination.port, source.identity, tls.*): the attr
     * getter contract of attr.h; owner is the stream's owner. */
    int (*attr)(void *owner, const struct attr_key *key, attr_val *out, int max);
    /* A paused phase may go on (proxy_continue_stream, a local response or
     * proxy_close_stream after the filter returned Pause): call wf_resume.
     * Called from a timer, never from inside a filter call. */
    void (*resume)(void *owner);
};

/* --- the map (wasm_map.c) --- */

/* Appends a copy of key (lower-cased when lower) and value. 0 or -1. */
int wf_map_add(struct wf_map *m, const char *key, size_t klen, const char *value, size_t vlen,
               bool lower);
/* The first value of key (ASCII case-insensitive), or NULL; borrowed from m. */
const struct wf_kv *wf_map_get(const struct wf_map *m, const char *key, size_t klen);
/* Removes every entry of key; returns how many. */
uint32_t wf_map_remove(struct wf_map *m, const char *key, size_t klen);
/* Frees every entry (the map stays usable). */
void wf_map_clear(struct wf_map *m);

/* --- generations (gen.c) and workers (worker.c) --- */

/* Loads every WasmPlugin of g->cfg and gives each listener its plugin list
 * (gen_listener.wasm), sorted by order. 0, or -1 with err filled. */
int wf_gen_build(struct gen *g, char *err, size_t errlen);
/* Frees what wf_gen_build made (every worker's VMs are gone already). */
void wf_gen_free(struct gen *g);
/* Frees wg's VMs and stops their timers; no stream of wg may be alive. */
void wf_wgen_free(struct wgen *wg);
/* Stops the HTTP and gRPC calls of every VM of this worker thread (of
 * every generation it still holds) without a callback: the worker ends,
 * and the calls' upstream connections must not keep their generation
 * alive. */
void wf_worker_drop_calls(void);

/* Shared-queue notifications for one worker's VMs: any thread posts (the
 * enqueuer's, through pw_ops.queue_ready) and wakes the worker's loop,
 * whose async handler calls wf_inbox_run to deliver them on the worker's
 * thread (proxy_on_queue_ready). new: NULL when out of memory; the
 * caller owns it and frees it with wf_inbox_free (NULL is fine) once no
 * VM of the worker is left. */
struct wf_inbox *wf_inbox_new(void);
void wf_inbox_free(struct wf_inbox *in);
void wf_inbox_run(struct worker *w);

/* --- streams --- */

/* The filters of listener gl that apply to a request matched by a rule of
 * Route `route` (NULL: none matched), or to a tcp connection (tcp true):
 * a new stream whose contexts are created, owned by the caller
 * (wf_stream_free), with e and owner borrowed. NULL with *failed 0 when no
 * plugin applies (or every one that failed to start is fail-open); NULL
 * with *failed 1 when a fail-closed plugin's VM cannot start (answer 500
 * or close). */
struct wf_stream *wf_stream_new(struct wgen *wg, const struct gen_listener *gl,
                                const char *route, bool tcp, const struct wf_embed *e,
                                void *owner, int *failed);
/* proxy_on_done / on_log / on_delete of every context, then frees s. */
void wf_stream_free(struct wf_stream *s);
/* Whether any plugin targets gl (cheap: a field test). */
bool wf_listener_has(const struct gen_listener *gl);

/* The request and response header maps (pseudo-headers first: :method,
 * :path, :authority, :scheme; :status). Owned by s. */
struct wf_map *wf_req_map(struct wf_stream *s);
struct wf_map *wf_resp_map(struct wf_stream *s);
/* Hands s to another owner (an HTTP/1.1 request that continues as an
 * HTTP/2 stream): e and owner borrowed, as in wf_stream_new. */
void wf_set_owner(struct wf_stream *s, const struct wf_embed *e, void *owner);
/* For the route_name / cluster_name properties (borrowed, must outlive s). */
void wf_set_names(struct wf_stream *s, const char *route, const char *cluster);

/* HTTP phases: request headers (in plugin order), response headers (in
 * reverse order). A Pause at response headers is taken as Continue (the
 * response is not held; docs/wasm.md). eos: no body follows. */
int wf_request_headers(struct wf_stream *s, bool eos);
int wf_response_headers(struct wf_stream *s, bool eos);
/* Body bytes (request: as the client sends them, after the request
 * headers went on; response: as they go to the client), payload only (no
 * chunked framing), then once with eos. The filters see each chunk
 * (proxy_get_buffer_bytes) and may answer (WF_LOCAL: before the response
 * started only) or fail; a Pause is taken as Continue: bodies stream
 * through and are not held (docs/wasm.md). */
int wf_request_body(struct wf_stream *s, const uint8_t *p, size_t n, bool eos);
int wf_response_body(struct wf_stream *s, const uint8_t *p, size_t n, bool eos);

/* Request trailers (HTTP/2, HTTP/1.1 chunked): the embedder fills
 * wf_req_trailers(s) once the request headers went on, runs the phase
 * (plugin order; it stands for the body's end: no body call with eos
 * comes before it) and sends the map on, changed or not. WF_LOCAL answers
 * the request (the upstream side is dropped), WF_FAIL fails it; a Pause is
 * taken as Continue (trailers are not held). */
struct wf_map *wf_req_trailers(struct wf_stream *s);
int wf_request_trailers(struct wf_stream *s);
/* Response trailers (HTTP/2, HTTP/1.1 chunked): the embedder fills
 * wf_resp_trailers(s), runs the phase (reverse order), and sends the map
 * when dirty. A local response is too late here: only WF_FAIL (the stream
 * is reset) counts. */
struct wf_map *wf_resp_trailers(struct wf_stream *s);
int wf_response_trailers(struct wf_stream *s);

/* After the resume callback: the rest of the paused phase. */
int wf_resume(struct wf_stream *s);
/* Whether the request phase is paused (waiting for the filter). */
bool wf_paused(const struct wf_stream *s);
/* The local response after WF_LOCAL; borrowed from s. */
const struct wf_local *wf_local(const struct wf_stream *s);
/* Why a phase failed ("wasm plugin 'x' failed: ..."); borrowed from s. */
const char *wf_fail_reason(const struct wf_stream *s);

/* TCP: the connection is open (proxy_on_new_connection). */
int wf_tcp_open(struct wf_stream *s);
/* Bytes read from the client (up false) or the upstream (up true), maybe
 * none at end of stream. They join the direction's pending bytes, which
 * the filter sees and may change (proxy_set_buffer_bytes); on Continue the
 * pending bytes move to the direction's output. WF_CONTINUE, WF_PAUSE
 * (kept pending) or WF_FAIL (close the connection). */
int wf_tcp_data(struct wf_stream *s, bool up, const uint8_t *p, size_t n, bool eos);
/* The bytes ready to be written toward the other side of direction up
 * (borrowed, valid until the next call on s), and consuming n of them. */
size_t wf_tcp_out(struct wf_stream *s, bool up, const uint8_t **p);
void wf_tcp_consume(struct wf_stream *s, bool up, size_t n);
/* Bytes of direction up held by a paused filter or not yet written; the
 * tunnel stops reading a direction above WF_TCP_MAX_HELD. */
size_t wf_tcp_held(const struct wf_stream *s, bool up);
#define WF_TCP_MAX_HELD (1u << 20)
/* The side up (upstream) or client closed: proxy_on_{upstream,downstream}_
 * connection_close. */
void wf_tcp_closed(struct wf_stream *s, bool up);

#endif
