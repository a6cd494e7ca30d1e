/* pw_host.h - the proxy-wasm host core (ABI 0.2.1, and 0.2.0), independent
 * of the proxy's HTTP and TCP code.
 *
 * Three objects:
 *  - a plugin (struct pw_plugin): the module, loaded and checked once
 *    (every import must be a host function we provide, with the right
 *    signature), its name and configuration bytes. Immutable: share it
 *    between worker threads.
 *  - a VM (struct pw_vm): one instance of the plugin for one worker thread,
 *    with its root context started (_initialize, proxy_on_context_create,
 *    proxy_on_vm_start, proxy_on_configure). Not thread-safe: one thread.
 *  - a stream context (struct pw_ctx): one HTTP stream or TCP connection.
 *
 * The embedder (the proxy) gives the VM a table of callbacks (struct
 * pw_ops) through which the filter's host calls reach headers, bodies,
 * properties, metrics, logs, timers and HTTP calls; each callback gets the
 * `user` pointer of the context the filter is acting on (the stream
 * context's, or the VM's for the root context). Shared data (key/value with
 * compare-and-swap) and shared queues live in this core, process-wide.
 *
 * Errors are values. Stream callbacks return PW_CONTINUE or PW_PAUSE, or
 * PW_ERR_TRAP when the filter trapped (out of fuel included): the VM is then
 * broken, every later call returns PW_ERR_BROKEN until pw_vm_recreate, and
 * pw_vm_error() holds the message. */
#ifndef STRAND_PW_HOST_H
#define STRAND_PW_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* proxy_status_t: what pw_ops callbacks return, passed on to the filter. */
enum pw_status {
    PW_OK = 0,
    PW_NOT_FOUND = 1,
    PW_BAD_ARGUMENT = 2,
    PW_SERIALIZATION_FAILURE = 3,
    PW_PARSE_FAILURE = 4,
    PW_INVALID_MEMORY_ACCESS = 6,
    PW_EMPTY = 7,
    PW_CAS_MISMATCH = 8,
    PW_INTERNAL_FAILURE = 10,
    PW_UNIMPLEMENTED = 12,
};

/* Results of the stream functions (proxy_action_t), or an error. */
enum pw_action {
    PW_CONTINUE = 0,
    PW_PAUSE = 1,
    PW_ERR_TRAP = -1,   /* the filter trapped in this call; the VM is now broken */
    PW_ERR_BROKEN = -2, /* the VM trapped earlier (or the context is from an old instance) */
    PW_ERR_STATE = -3,  /* wrong context kind or state (e.g. already deleted) */
};

enum pw_log_level { PW_LOG_TRACE = 0, PW_LOG_DEBUG, PW_LOG_INFO, PW_LOG_WARN, PW_LOG_ERROR,
                    PW_LOG_CRITICAL };

/* proxy_map_type_t */
enum pw_map {
    PW_MAP_REQUEST_HEADERS = 0,
    PW_MAP_REQUEST_TRAILERS = 1,
    PW_MAP_RESPONSE_HEADERS = 2,
    PW_MAP_RESPONSE_TRAILERS = 3,
    PW_MAP_GRPC_INITIAL_METADATA = 4,
    PW_MAP_GRPC_TRAILING_METADATA = 5,
    PW_MAP_HTTP_CALL_RESPONSE_HEADERS = 6,
    PW_MAP_HTTP_CALL_RESPONSE_TRAILERS = 7,
};

/* proxy_buffer_type_t */
enum pw_buffer {
    PW_BUFFER_REQUEST_BODY = 0,
    PW_BUFFER_RESPONSE_BODY = 1,
    PW_BUFFER_DOWNSTREAM_DATA = 2,
    PW_BUFFER_UPSTREAM_DATA = 3,
    PW_BUFFER_HTTP_CALL_RESPONSE_BODY = 4,
    PW_BUFFER_GRPC_CALL_MESSAGE = 5,
    PW_BUFFER_VM_CONFIGURATION = 6,
    PW_BUFFER_PLUGIN_CONFIGURATION = 7,
    PW_BUFFER_FOREIGN_FUNCTION_ARGUMENTS = 8,
};

/* proxy_stream_type_t, proxy_peer_type_t, proxy_metric_type_t */
enum pw_stream { PW_STREAM_REQUEST = 0, PW_STREAM_RESPONSE, PW_STREAM_DOWNSTREAM,
                 PW_STREAM_UPSTREAM };
enum pw_peer { PW_PEER_UNKNOWN = 0, PW_PEER_LOCAL, PW_PEER_REMOTE };
enum pw_metric { PW_METRIC_COUNTER = 0, PW_METRIC_GAUGE, PW_METRIC_HISTOGRAM };

enum pw_ctx_kind { PW_CTX_HTTP = 0, PW_CTX_TCP = 1 };
enum pw_abi { PW_ABI_0_2_0 = 0, PW_ABI_0_2_1 = 1 };

/* One header (or trailer, metadata) entry; bytes are not NUL-terminated. */
struct pw_kv {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

/* proxy_send_local_response, decoded. Everything is borrowed for the call. */
struct pw_local_response {
    uint32_t status;
    const char *details;
    size_t details_len;
    const uint8_t *body;
    size_t body_len;
    const struct pw_kv *headers;
    size_t nheaders;
    int64_t grpc_status; /* -1: plain HTTP (the ABI's 0xFFFFFFFF) */
};

/* proxy_http_call, decoded. Everything is borrowed for the call. */
struct pw_http_call {
    const char *cluster;
    size_t cluster_len;
    const struct pw_kv *headers; /* include :method, :path, :authority (checked) */
    size_t nheaders;
    const uint8_t *body;
    size_t body_len;
    const struct pw_kv *trailers;
    size_t ntrailers;
    uint32_t timeout_ms;
};

/* proxy_grpc_call and proxy_grpc_stream, decoded. Everything is borrowed
 * for the call. */
struct pw_grpc_call {
    const char *cluster;         /* the upstream: a cluster name, also when the
                                  * filter gave a serialized GrpcService
                                  * (envoy_grpc.cluster_name is taken) */
    size_t cluster_len;
    const char *service, *method; /* non-empty (checked) */
    size_t service_len, method_len;
    const struct pw_kv *metadata; /* initial metadata: request fields */
    size_t nmetadata;
    bool stream;                 /* proxy_grpc_stream: messages come with grpc_send */
    const uint8_t *message;      /* unary: the request message (no prefix) */
    size_t message_len;
    uint32_t timeout_ms;         /* unary: 0 means the embedder's default */
};

/* Called for each entry by pw_ops.map_each; non-zero stops the walk. */
typedef int (*pw_kv_fn)(void *arg, const struct pw_kv *kv);

/* The embedder's side. Every callback gets the `user` of the effective
 * context (a stream context's, or the VM's for the root context) and
 * returns an enum pw_status, which the filter sees; PW_NOT_FOUND says
 * "not available in this context". Pointers passed in are borrowed for the
 * call; pointers handed out (buffer_get, property_get) must stay valid
 * until the next callback on the same context. Any callback may be NULL:
 * the filter then gets PW_NOT_FOUND (data) or PW_UNIMPLEMENTED (actions).
 * Callbacks must not call pw_* functions of the same VM (they are refused
 * with PW_ERR_STATE) nor free contexts, except that `done` may
 * pw_ctx_free the context it reports. */
struct pw_ops {
    /* Header maps (enum pw_map; HTTP_CALL_RESPONSE_* maps are served by the
     * core during pw_http_call_response, never asked for here). Lookups of
     * one key (proxy_get_header_map_value) walk map_each and take the first
     * entry whose key matches ASCII case-insensitively. */
    int (*map_each)(void *user, int map, pw_kv_fn fn, void *arg);
    int (*map_add)(void *user, int map, const struct pw_kv *kv);
    int (*map_replace)(void *user, int map, const struct pw_kv *kv); /* drop all values, then add */
    int (*map_remove)(void *user, int map, const char *key, size_t key_len);
    int (*map_set)(void *user, int map, const struct pw_kv *pairs, size_t n); /* replace all */
    /* Buffers (enum pw_buffer; PLUGIN/VM_CONFIGURATION and
     * HTTP_CALL_RESPONSE_BODY are served by the core). buffer_set replaces
     * `size` bytes at `start` (start >= length appends). */
    int (*buffer_get)(void *user, int buffer, const uint8_t **data, size_t *len);
    int (*buffer_set)(void *user, int buffer, size_t start, size_t size, const uint8_t *data,
                      size_t len);
    /* Properties: path holds NUL-separated segments ("request\0path"), len
     * bytes. "plugin_name", "plugin_root_id" and "plugin_vm_id" are
     * answered by the core. */
    int (*property_get)(void *user, const char *path, size_t len, const uint8_t **value,
                        size_t *value_len);
    int (*property_set)(void *user, const char *path, size_t len, const uint8_t *value,
                        size_t value_len);
    int (*send_local_response)(void *user, const struct pw_local_response *r);
    int (*continue_stream)(void *user, int stream);
    int (*close_stream)(void *user, int stream);
    /* Start an HTTP call; *token identifies it in pw_http_call_response. */
    int (*http_call)(void *user, const struct pw_http_call *call, uint32_t *token);
    /* Start a gRPC call or stream; *token identifies it in pw_grpc_*. An
     * unknown cluster is PW_PARSE_FAILURE (the ABI's "unknown upstream"). */
    int (*grpc_call)(void *user, const struct pw_grpc_call *call, uint32_t *token);
    /* A message on a stream (end_stream: the last one); PW_NOT_FOUND for
     * an unknown token, PW_BAD_ARGUMENT for a unary call's. */
    int (*grpc_send)(void *user, uint32_t token, const uint8_t *msg, size_t len,
                     bool end_stream);
    /* proxy_grpc_cancel (close false): the call ends, no pw_grpc_* follows
     * for it. proxy_grpc_close (close true): a stream's side ends (the
     * answer still comes), a unary call is cancelled. PW_NOT_FOUND for an
     * unknown token. */
    int (*grpc_cancel)(void *user, uint32_t token, bool close);
    /* Metrics: ids are the embedder's. Defining a name again (another VM of
     * the plugin, or the same VM after pw_vm_recreate) should give the same
     * id. The core refuses a negative delta on a counter (PW_BAD_ARGUMENT)
     * and ids never defined on this VM (PW_NOT_FOUND) itself. */
    int (*metric_define)(void *user, int type, const char *name, size_t len, uint32_t *id);
    int (*metric_increment)(void *user, uint32_t id, int64_t delta);
    int (*metric_record)(void *user, uint32_t id, uint64_t value);
    int (*metric_get)(void *user, uint32_t id, uint64_t *value);
    /* A log line of the filter (proxy_log, or WASI stdout at INFO / stderr
     * at ERROR), without a trailing newline. */
    void (*log)(void *user, int level, const char *msg, size_t len);
    /* Arm (ms > 0) or stop (0) a periodic timer that calls pw_vm_tick;
     * always gets the VM's user. */
    void (*set_tick_period)(void *user, uint32_t ms);
    /* A context that finished late (proxy_on_done said false, then the
     * filter called proxy_done) has now run proxy_on_log and
     * proxy_on_delete: the embedder may pw_ctx_free it. */
    void (*done)(void *user);
    /* Shared queues. queue_ready: an item was enqueued on queue_id, which
     * this VM registered last. Called with the VM's user from the
     * enqueuing thread (any worker), under the queues' lock: it must only
     * hand the event to the VM's thread (which then calls
     * pw_vm_queue_ready), never call pw_* functions. queue_full: an enqueue
     * made on this context was refused, the queue being full (to count). */
    void (*queue_ready)(void *user, uint32_t queue_id);
    void (*queue_full)(void *user, uint32_t queue_id);
};

struct pw_plugin;
struct pw_vm;
struct pw_ctx;

/* --- plugins --- */

/* Loads wasm (len bytes) as plugin `name` with configuration bytes cfg
 * (cfg_len, may be 0). Checks every import is one this host provides with
 * the right signature (else "unknown import env.foo" / "wrong signature"),
 * and detects the ABI version. Copies what it keeps; *out is the caller's
 * (pw_plugin_free). On failure returns -1 with err filled. */
int pw_plugin_new(const char *name, const uint8_t *wasm, size_t len, const uint8_t *cfg,
                  size_t cfg_len, struct pw_plugin **out, char *err, size_t errlen);
/* Frees p; no VM of p may still be alive. */
void pw_plugin_free(struct pw_plugin *p);
/* Borrows p. */
enum pw_abi pw_plugin_abi(const struct pw_plugin *p);
const char *pw_plugin_name(const struct pw_plugin *p);

/* --- VMs (one per worker thread) --- */

struct pw_vm_opts {
    uint64_t fuel;      /* budget per callback call; 0: PW_DEFAULT_FUEL */
    uint32_t max_pages; /* linear memory cap in 64 KiB pages; 0: 4096 (256 MiB) */
    int log_level;      /* what proxy_get_log_level answers (taken as is: 0 is
                         * TRACE; opts == NULL gives PW_LOG_INFO) */
};
#define PW_DEFAULT_FUEL 50000000ull

/* Instantiates p (borrowed, must outlive the VM) with ops (borrowed; NULL:
 * every host call answers NOT_FOUND or UNIMPLEMENTED) and
 * user (borrowed; the root context's user), runs _initialize (or _start)
 * and starts the root context: proxy_on_context_create(root, 0),
 * proxy_on_vm_start, proxy_on_configure. false from either, or a trap,
 * fails it with err filled. opts may be NULL. *out is the caller's
 * (pw_vm_free). */
int pw_vm_new(const struct pw_plugin *p, const struct pw_ops *ops, void *user,
              const struct pw_vm_opts *opts, struct pw_vm **out, char *err, size_t errlen);
/* Frees vm; free its contexts (pw_ctx_free) first. */
void pw_vm_free(struct pw_vm *vm);
/* A fresh instance of the same plugin with the root context started again;
 * contexts of the old instance stay broken (free them). Keeps the trap
 * counter. 0, or -1 with pw_vm_error set (the VM stays broken). */
int pw_vm_recreate(struct pw_vm *vm);
/* True after a trap until pw_vm_recreate succeeds. */
bool pw_vm_broken(const struct pw_vm *vm);
/* The last error ("proxy_on_request_headers: out of fuel"); borrowed, valid
 * until the next call on vm. */
const char *pw_vm_error(const struct pw_vm *vm);
/* Traps (out of fuel included) since the VM was created. */
uint64_t pw_vm_traps(const struct pw_vm *vm);
/* The root context's id (what the filter sees in root callbacks). */
uint32_t pw_vm_root_id(const struct pw_vm *vm);
/* proxy_on_tick on the root context. 0 or PW_ERR_*. */
int pw_vm_tick(struct pw_vm *vm);
/* Delivers the answer to an HTTP call (token from pw_ops.http_call) to
 * proxy_on_http_call_response; nheaders == 0 means the call failed. The
 * maps and body are served to the filter during the callback; all borrowed.
 * 0 or PW_ERR_*. */
int pw_http_call_response(struct pw_vm *vm, uint32_t token, const struct pw_kv *headers,
                          size_t nheaders, const uint8_t *body, size_t body_len,
                          const struct pw_kv *trailers, size_t ntrailers);

/* proxy_on_queue_ready(root, queue_id), on the VM's thread after
 * pw_ops.queue_ready told of it. 0 or PW_ERR_*. */
int pw_vm_queue_ready(struct pw_vm *vm, uint32_t queue_id);

/* The answer to a gRPC call or stream (token from pw_ops.grpc_call), in
 * the order it comes: initial metadata (once), each message (without the
 * 5-byte prefix), trailing metadata (once, maybe empty), then the close
 * with the grpc-status (or the embedder's: 14 no connection, 4 deadline,
 * 13 malformed answer) and its message, which proxy_get_status reports
 * during proxy_on_grpc_close. Each runs the callback on the root context
 * and serves the maps, message or status to the filter during it (the
 * GRPC_* map and buffer types); all borrowed. 0 or PW_ERR_*. The filter
 * may cancel the call from a callback: the embedder then stops. */
int pw_grpc_initial_metadata(struct pw_vm *vm, uint32_t token, const struct pw_kv *md, size_t n);
int pw_grpc_message(struct pw_vm *vm, uint32_t token, const uint8_t *msg, size_t len);
int pw_grpc_trailing_metadata(struct pw_vm *vm, uint32_t token, const struct pw_kv *md,
                              size_t n);
int pw_grpc_close(struct pw_vm *vm, uint32_t token, uint32_t status, const char *msg,
                  size_t len);

/* --- stream contexts --- */

/* A new HTTP stream or TCP connection context (proxy_on_context_create(id,
 * root)); user is borrowed and passed to every pw_ops callback made on its
 * behalf. NULL on a broken VM or a trap (pw_vm_error says why). The
 * caller frees it with pw_ctx_free, before the VM. */
struct pw_ctx *pw_ctx_new(struct pw_vm *vm, enum pw_ctx_kind kind, void *user);
/* The context's id as the filter sees it. */
uint32_t pw_ctx_id(const struct pw_ctx *ctx);

/* HTTP callbacks: PW_CONTINUE, PW_PAUSE or PW_ERR_*. */
int pw_http_request_headers(struct pw_ctx *ctx, uint32_t nheaders, bool end_of_stream);
int pw_http_request_body(struct pw_ctx *ctx, uint32_t size, bool end_of_stream);
int pw_http_request_trailers(struct pw_ctx *ctx, uint32_t ntrailers);
int pw_http_response_headers(struct pw_ctx *ctx, uint32_t nheaders, bool end_of_stream);
int pw_http_response_body(struct pw_ctx *ctx, uint32_t size, bool end_of_stream);
int pw_http_response_trailers(struct pw_ctx *ctx, uint32_t ntrailers);

/* TCP callbacks: PW_CONTINUE, PW_PAUSE or PW_ERR_* (close: 0 or PW_ERR_*). */
int pw_tcp_new_connection(struct pw_ctx *ctx);
int pw_tcp_downstream_data(struct pw_ctx *ctx, uint32_t size, bool end_of_stream);
int pw_tcp_upstream_data(struct pw_ctx *ctx, uint32_t size, bool end_of_stream);
int pw_tcp_downstream_close(struct pw_ctx *ctx, enum pw_peer peer);
int pw_tcp_upstream_close(struct pw_ctx *ctx, enum pw_peer peer);

/* The stream is over: proxy_on_done, and when it answers true
 * proxy_on_log and proxy_on_delete. Returns 1 when the context is
 * finished, 0 when the filter keeps it (it will call proxy_done; then
 * pw_ops.done tells the embedder), or PW_ERR_*. */
int pw_ctx_finish(struct pw_ctx *ctx);
/* Frees ctx (proxy_on_delete first if it was never deleted and the VM is
 * healthy). Takes ownership. */
void pw_ctx_free(struct pw_ctx *ctx);

/* --- shared data (process-wide, thread-safe) --- */

/* Copies the value of key into a new malloc'd *value (caller frees; NULL
 * for an empty value) and its cas into *cas. PW_OK or PW_NOT_FOUND. */
int pw_shared_get(const char *key, size_t key_len, uint8_t **value, size_t *len, uint32_t *cas);
/* Sets key to a copy of value; a non-zero cas must equal the key's current
 * cas (PW_CAS_MISMATCH otherwise; an absent key accepts any cas). Every
 * successful set gives the key a new non-zero cas. */
int pw_shared_set(const char *key, size_t key_len, const uint8_t *value, size_t len, uint32_t cas);

/* Frees the shared data and shared queues (at process exit, once every VM
 * is freed), so leak checkers see a clean end. */
void pw_host_cleanup(void);

#endif
