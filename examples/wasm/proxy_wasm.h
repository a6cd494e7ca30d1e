/* proxy_wasm.h - Strand's C header for proxy-wasm filters (ABI v0.2.1).
 *
 * Written from the proxy-wasm ABI specification (v0.2.1, with v0.2.0 where
 * they differ); it is not derived from any SDK. Compile filters with
 *
 *     clang --target=wasm32-wasi -mexec-model=reactor -O2 \
 *           -o filter.wasm filter.c proxy_wasm.c
 *
 * proxy_wasm.c supplies the two exports every module needs:
 * proxy_abi_version_0_2_1 (the version marker) and proxy_on_memory_allocate
 * (the allocator the host uses for buffers it returns).
 *
 * Conventions of the ABI, in short:
 *  - Every host function lives in import module "env" and returns a
 *    proxy_status_t. Results come back through `return_*` pointers into
 *    linear memory.
 *  - Every parameter is a wasm i32 (pointers, sizes, ids, enums, bools are
 *    all 32 bits on wasm32) except where a 64-bit value travels by value:
 *    the delta of proxy_increment_metric and the value of
 *    proxy_record_metric are i64. 64-bit results (time, metric values) are
 *    written through a pointer, so those parameters are i32 as well.
 *  - Buffers returned by the host (uint8_t **return_*_data) are allocated
 *    inside the module by calling its exported proxy_on_memory_allocate; the
 *    filter owns them and releases them with free() (pw_free()). The host
 *    may report an empty result as pointer 0 with size 0.
 *  - Pointers passed *to* the host stay owned by the filter; the host copies
 *    what it needs before returning.
 *  - Callbacks (proxy_on_*) are all optional: a filter defines only the ones
 *    it needs. This header declares each with its export name, so defining
 *    one with a wrong signature is a compile error, and defining it is
 *    enough to export it.
 *  - bool parameters and results are i32: 0 is false, anything else true.
 */
#ifndef STRAND_PROXY_WASM_H
#define STRAND_PROXY_WASM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* PW_NATIVE_MOCK: compile a filter natively against a mock host (unit tests
 * of filter logic); the attributes are dropped and nothing is imported. */
#if !defined(__wasm32__) && !defined(PW_NATIVE_MOCK)
#error "proxy_wasm.h targets wasm32 (clang --target=wasm32-wasi)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- attributes --------------------------------------------------------- */

#ifndef PW_NATIVE_MOCK
/* Import a host function from module "env" under its ABI name. */
#define PW_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
/* Export a module function under the given name. */
#define PW_EXPORT(name) __attribute__((export_name(#name)))
#else
#define PW_IMPORT(name)
#define PW_EXPORT(name)
#endif

/* ---- types (all travel as i32) ------------------------------------------ */

typedef uint32_t proxy_status_t;      /* result of every host function */
typedef uint32_t proxy_log_level_t;
typedef uint32_t proxy_action_t;      /* result of stream callbacks */
typedef uint32_t proxy_buffer_type_t;
typedef uint32_t proxy_map_type_t;
typedef uint32_t proxy_peer_type_t;
typedef uint32_t proxy_stream_type_t;
typedef uint32_t proxy_metric_type_t;
typedef uint32_t proxy_bool_t;        /* 0 = false, non-zero = true */

/* proxy_status_t. 5, 9 and 11 are unassigned in the ABI. */
enum {
    PROXY_OK = 0,
    PROXY_NOT_FOUND = 1,
    PROXY_BAD_ARGUMENT = 2,
    PROXY_SERIALIZATION_FAILURE = 3,
    PROXY_PARSE_FAILURE = 4,
    PROXY_INVALID_MEMORY_ACCESS = 6,
    PROXY_EMPTY = 7,
    PROXY_CAS_MISMATCH = 8,
    PROXY_INTERNAL_FAILURE = 10,
    PROXY_UNIMPLEMENTED = 12,
};

/* proxy_log_level_t */
enum {
    PROXY_LOG_TRACE = 0,
    PROXY_LOG_DEBUG = 1,
    PROXY_LOG_INFO = 2,
    PROXY_LOG_WARN = 3,
    PROXY_LOG_ERROR = 4,
    PROXY_LOG_CRITICAL = 5,
};

/* proxy_action_t */
enum {
    PROXY_ACTION_CONTINUE = 0,
    PROXY_ACTION_PAUSE = 1,
};

/* proxy_buffer_type_t */
enum {
    PROXY_BUFFER_HTTP_REQUEST_BODY = 0,
    PROXY_BUFFER_HTTP_RESPONSE_BODY = 1,
    PROXY_BUFFER_DOWNSTREAM_DATA = 2,
    PROXY_BUFFER_UPSTREAM_DATA = 3,
    PROXY_BUFFER_HTTP_CALL_RESPONSE_BODY = 4,
    PROXY_BUFFER_GRPC_CALL_MESSAGE = 5,
    PROXY_BUFFER_VM_CONFIGURATION = 6,
    PROXY_BUFFER_PLUGIN_CONFIGURATION = 7,
    PROXY_BUFFER_FOREIGN_FUNCTION_ARGUMENTS = 8,
};

/* proxy_map_type_t */
enum {
    PROXY_MAP_HTTP_REQUEST_HEADERS = 0,
    PROXY_MAP_HTTP_REQUEST_TRAILERS = 1,
    PROXY_MAP_HTTP_RESPONSE_HEADERS = 2,
    PROXY_MAP_HTTP_RESPONSE_TRAILERS = 3,
    PROXY_MAP_GRPC_CALL_INITIAL_METADATA = 4,
    PROXY_MAP_GRPC_CALL_TRAILING_METADATA = 5,
    PROXY_MAP_HTTP_CALL_RESPONSE_HEADERS = 6,
    PROXY_MAP_HTTP_CALL_RESPONSE_TRAILERS = 7,
};

/* proxy_peer_type_t: who closed a TCP connection. */
enum {
    PROXY_PEER_UNKNOWN = 0,
    PROXY_PEER_LOCAL = 1,
    PROXY_PEER_REMOTE = 2,
};

/* proxy_stream_type_t */
enum {
    PROXY_STREAM_HTTP_REQUEST = 0,
    PROXY_STREAM_HTTP_RESPONSE = 1,
    PROXY_STREAM_DOWNSTREAM = 2,
    PROXY_STREAM_UPSTREAM = 3,
};

/* proxy_metric_type_t */
enum {
    PROXY_METRIC_COUNTER = 0,
    PROXY_METRIC_GAUGE = 1,
    PROXY_METRIC_HISTOGRAM = 2,
};

/* grpc_status argument of proxy_send_local_response for a plain HTTP reply. */
#define PROXY_GRPC_STATUS_NONE 0xffffffffu

/* ---- host functions: context lifecycle ---------------------------------- */

/* Tell the host a context that answered false in proxy_on_done may now be
 * finalized (proxy_on_log and proxy_on_delete follow). */
PW_IMPORT(proxy_done) proxy_status_t proxy_done(void);

/* Make context_id the one later host calls act on (e.g. resume the request
 * that issued an HTTP call from inside proxy_on_http_call_response). */
PW_IMPORT(proxy_set_effective_context)
proxy_status_t proxy_set_effective_context(uint32_t context_id);

/* ---- host functions: logging, time, timers ------------------------------ */

/* Log message[0..size) at level; the message stays the caller's. */
PW_IMPORT(proxy_log)
proxy_status_t proxy_log(proxy_log_level_t level, const char *message, size_t size);

/* Write the host's current log level to *return_level (v0.2.1 only). */
PW_IMPORT(proxy_get_log_level)
proxy_status_t proxy_get_log_level(proxy_log_level_t *return_level);

/* Write wall-clock time in ns since the epoch to *return_time (8 bytes, may
 * be unaligned); may be frozen for the duration of a callback. */
PW_IMPORT(proxy_get_current_time_nanoseconds)
proxy_status_t proxy_get_current_time_nanoseconds(uint64_t *return_time);

/* Call proxy_on_tick on the root context every period_ms; 0 stops it. */
PW_IMPORT(proxy_set_tick_period_milliseconds)
proxy_status_t proxy_set_tick_period_milliseconds(uint32_t period_ms);

/* ---- host functions: buffers -------------------------------------------- */

/* Copy up to max_size bytes from offset start of buffer `type` into a new
 * module allocation; *return_data (caller frees) and *return_size get it. */
PW_IMPORT(proxy_get_buffer_bytes)
proxy_status_t proxy_get_buffer_bytes(proxy_buffer_type_t type, size_t start, size_t max_size,
                                      uint8_t **return_data, size_t *return_size);

/* Replace `size` bytes at `start` of buffer `type` with data[0..data_size)
 * (start=0,size=0 prepends; start>=length appends); data stays the caller's. */
PW_IMPORT(proxy_set_buffer_bytes)
proxy_status_t proxy_set_buffer_bytes(proxy_buffer_type_t type, size_t start, size_t size,
                                      const uint8_t *data, size_t data_size);

/* Write the current length of buffer `type` to *return_size; the second
 * output is unused by the ABI and only has to be writable. */
PW_IMPORT(proxy_get_buffer_status)
proxy_status_t proxy_get_buffer_status(proxy_buffer_type_t type, size_t *return_size,
                                       uint32_t *return_unused);

/* ---- host functions: header maps ---------------------------------------- */

/* Write the size of the serialized form of map `type` to *return_size. */
PW_IMPORT(proxy_get_header_map_size)
proxy_status_t proxy_get_header_map_size(proxy_map_type_t type, size_t *return_size);

/* Serialize all pairs of map `type` (format: see pw_map_* below) into a new
 * module allocation; caller frees *return_data. */
PW_IMPORT(proxy_get_header_map_pairs)
proxy_status_t proxy_get_header_map_pairs(proxy_map_type_t type, uint8_t **return_data,
                                          size_t *return_size);

/* Replace the whole map `type` with the serialized pairs in data; data stays
 * the caller's. */
PW_IMPORT(proxy_set_header_map_pairs)
proxy_status_t proxy_set_header_map_pairs(proxy_map_type_t type, const uint8_t *data,
                                          size_t size);

/* Look up key in map `type`; the value is copied into a new module
 * allocation (caller frees *return_value). NOT_FOUND when absent. */
PW_IMPORT(proxy_get_header_map_value)
proxy_status_t proxy_get_header_map_value(proxy_map_type_t type, const char *key,
                                          size_t key_size, uint8_t **return_value,
                                          size_t *return_value_size);

/* Append key: value to map `type` (keeps existing values of key). */
PW_IMPORT(proxy_add_header_map_value)
proxy_status_t proxy_add_header_map_value(proxy_map_type_t type, const char *key,
                                          size_t key_size, const uint8_t *value,
                                          size_t value_size);

/* Set key to value in map `type`, dropping any previous values of key. */
PW_IMPORT(proxy_replace_header_map_value)
proxy_status_t proxy_replace_header_map_value(proxy_map_type_t type, const char *key,
                                              size_t key_size, const uint8_t *value,
                                              size_t value_size);

/* Remove every value of key from map `type` (OK even if it was absent). */
PW_IMPORT(proxy_remove_header_map_value)
proxy_status_t proxy_remove_header_map_value(proxy_map_type_t type, const char *key,
                                             size_t key_size);

/* ---- host functions: stream control ------------------------------------- */

/* Resume a stream this filter paused by returning PROXY_ACTION_PAUSE. */
PW_IMPORT(proxy_continue_stream)
proxy_status_t proxy_continue_stream(proxy_stream_type_t stream);

/* Close (TCP) or reset (HTTP) the given stream of the current context. */
PW_IMPORT(proxy_close_stream) proxy_status_t proxy_close_stream(proxy_stream_type_t stream);

/* After an HTTP or gRPC call: write its status code and a new module
 * allocation holding the status message (caller frees *return_message). */
PW_IMPORT(proxy_get_status)
proxy_status_t proxy_get_status(uint32_t *return_code, uint8_t **return_message,
                                size_t *return_message_size);

/* Answer the request from the proxy: status code, a details string for the
 * access log, body, serialized extra headers and a gRPC status
 * (PROXY_GRPC_STATUS_NONE for plain HTTP). All inputs stay the caller's. */
PW_IMPORT(proxy_send_local_response)
proxy_status_t proxy_send_local_response(uint32_t status_code, const char *details,
                                         size_t details_size, const uint8_t *body,
                                         size_t body_size, const uint8_t *headers,
                                         size_t headers_size, uint32_t grpc_status);

/* ---- host functions: HTTP and gRPC calls -------------------------------- */

/* Send an HTTP request to cluster `upstream` (headers must contain :method,
 * :path, :authority); *return_call_id identifies it in
 * proxy_on_http_call_response. Inputs stay the caller's. */
PW_IMPORT(proxy_http_call)
proxy_status_t proxy_http_call(const char *upstream, size_t upstream_size,
                               const uint8_t *headers, size_t headers_size,
                               const uint8_t *body, size_t body_size,
                               const uint8_t *trailers, size_t trailers_size,
                               uint32_t timeout_ms, uint32_t *return_call_id);

/* Start a unary gRPC call; replies arrive in proxy_on_grpc_* callbacks. */
PW_IMPORT(proxy_grpc_call)
proxy_status_t proxy_grpc_call(const char *upstream, size_t upstream_size,
                               const char *service, size_t service_size,
                               const char *method, size_t method_size,
                               const uint8_t *initial_metadata, size_t initial_metadata_size,
                               const uint8_t *message, size_t message_size,
                               uint32_t timeout_ms, uint32_t *return_call_id);

/* Open a gRPC stream; send on it with proxy_grpc_send. */
PW_IMPORT(proxy_grpc_stream)
proxy_status_t proxy_grpc_stream(const char *upstream, size_t upstream_size,
                                 const char *service, size_t service_size,
                                 const char *method, size_t method_size,
                                 const uint8_t *initial_metadata, size_t initial_metadata_size,
                                 uint32_t *return_stream_id);

/* Send one message on a gRPC stream, optionally half-closing it. */
PW_IMPORT(proxy_grpc_send)
proxy_status_t proxy_grpc_send(uint32_t stream_id, const uint8_t *message, size_t message_size,
                               proxy_bool_t end_stream);

/* Cancel a gRPC call or stream. */
PW_IMPORT(proxy_grpc_cancel) proxy_status_t proxy_grpc_cancel(uint32_t call_or_stream_id);

/* Close a gRPC call or stream. */
PW_IMPORT(proxy_grpc_close) proxy_status_t proxy_grpc_close(uint32_t call_or_stream_id);

/* ---- host functions: shared data and queues ----------------------------- */

/* Copy the shared value of key into a new module allocation (caller frees
 * *return_value) and write its compare-and-swap token to *return_cas. */
PW_IMPORT(proxy_get_shared_data)
proxy_status_t proxy_get_shared_data(const char *key, size_t key_size, uint8_t **return_value,
                                     size_t *return_value_size, uint32_t *return_cas);

/* Store value under key; a non-zero cas must match the current token. */
PW_IMPORT(proxy_set_shared_data)
proxy_status_t proxy_set_shared_data(const char *key, size_t key_size, const uint8_t *value,
                                     size_t value_size, uint32_t cas);

/* Create or open the queue `name` of this VM; writes its id. */
PW_IMPORT(proxy_register_shared_queue)
proxy_status_t proxy_register_shared_queue(const char *name, size_t name_size,
                                           uint32_t *return_queue_id);

/* Find the existing queue `name` of VM `vm_id`; writes its id. */
PW_IMPORT(proxy_resolve_shared_queue)
proxy_status_t proxy_resolve_shared_queue(const char *vm_id, size_t vm_id_size,
                                          const char *name, size_t name_size,
                                          uint32_t *return_queue_id);

/* Append a copy of value to queue queue_id. */
PW_IMPORT(proxy_enqueue_shared_queue)
proxy_status_t proxy_enqueue_shared_queue(uint32_t queue_id, const uint8_t *value,
                                          size_t value_size);

/* Pop the front item into a new module allocation (caller frees); EMPTY
 * when there is none. */
PW_IMPORT(proxy_dequeue_shared_queue)
proxy_status_t proxy_dequeue_shared_queue(uint32_t queue_id, uint8_t **return_value,
                                          size_t *return_value_size);

/* ---- host functions: metrics -------------------------------------------- */

/* Define (or find, if already defined) a metric of the given type and name;
 * writes its id. The name stays the caller's. */
PW_IMPORT(proxy_define_metric)
proxy_status_t proxy_define_metric(proxy_metric_type_t type, const char *name,
                                   size_t name_size, uint32_t *return_metric_id);

/* Add delta (an i64 on the wire) to a metric; counters refuse negatives. */
PW_IMPORT(proxy_increment_metric)
proxy_status_t proxy_increment_metric(uint32_t metric_id, int64_t delta);

/* Set a gauge, or record a sample in a histogram (value is an i64). */
PW_IMPORT(proxy_record_metric)
proxy_status_t proxy_record_metric(uint32_t metric_id, uint64_t value);

/* Write the metric's current value to *return_value (8 bytes). */
PW_IMPORT(proxy_get_metric)
proxy_status_t proxy_get_metric(uint32_t metric_id, uint64_t *return_value);

/* ---- host functions: properties and foreign functions ------------------- */

/* Read the property at path (segments separated by NUL bytes, e.g.
 * "request\0path") into a new module allocation (caller frees). */
PW_IMPORT(proxy_get_property)
proxy_status_t proxy_get_property(const char *path, size_t path_size, uint8_t **return_value,
                                  size_t *return_value_size);

/* Set the property at path (NUL-separated segments) to a copy of value. */
PW_IMPORT(proxy_set_property)
proxy_status_t proxy_set_property(const char *path, size_t path_size, const uint8_t *value,
                                  size_t value_size);

/* Call host extension `name` with an argument blob; any result lands in a
 * new module allocation (caller frees *return_results). */
PW_IMPORT(proxy_call_foreign_function)
proxy_status_t proxy_call_foreign_function(const char *name, size_t name_size,
                                           const uint8_t *arguments, size_t arguments_size,
                                           uint8_t **return_results,
                                           size_t *return_results_size);

/* ---- callbacks the host calls (define the ones you need) ---------------- */

/* Host-side allocator for returned buffers; defined in proxy_wasm.c. */
PW_EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size);
/* Never called: its presence announces ABI v0.2.1; defined in proxy_wasm.c. */
PW_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void);

/* Once per VM, on the root context; vm configuration via
 * PROXY_BUFFER_VM_CONFIGURATION. Return non-zero on success. */
PW_EXPORT(proxy_on_vm_start)
proxy_bool_t proxy_on_vm_start(uint32_t root_context_id, size_t vm_configuration_size);
/* Once per plugin start or reconfiguration, on the root context; read the
 * bytes via PROXY_BUFFER_PLUGIN_CONFIGURATION. Return non-zero on success. */
PW_EXPORT(proxy_on_configure)
proxy_bool_t proxy_on_configure(uint32_t root_context_id, size_t plugin_configuration_size);
/* A context was created: parent 0 means a root context, otherwise an HTTP
 * or TCP stream context whose root is parent_context_id. */
PW_EXPORT(proxy_on_context_create)
void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id);
/* The host is finished with the context; return non-zero to let it go now,
 * 0 to keep it until the filter calls proxy_done(). */
PW_EXPORT(proxy_on_done) proxy_bool_t proxy_on_done(uint32_t context_id);
/* Last look at a finished context (request/response headers still readable). */
PW_EXPORT(proxy_on_log) void proxy_on_log(uint32_t context_id);
/* The context is gone; drop any state kept for it. */
PW_EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t context_id);
/* Timer set by proxy_set_tick_period_milliseconds fired (root context). */
PW_EXPORT(proxy_on_tick) void proxy_on_tick(uint32_t root_context_id);
/* An item was enqueued on a queue this VM registered. */
PW_EXPORT(proxy_on_queue_ready) void proxy_on_queue_ready(uint32_t root_context_id,
                                                           uint32_t queue_id);

/* TCP: a downstream connection was accepted. */
PW_EXPORT(proxy_on_new_connection) proxy_action_t proxy_on_new_connection(uint32_t context_id);
/* TCP: data_size bytes from the client are available as
 * PROXY_BUFFER_DOWNSTREAM_DATA (the total buffered so far if paused). */
PW_EXPORT(proxy_on_downstream_data)
proxy_action_t proxy_on_downstream_data(uint32_t context_id, size_t data_size,
                                        proxy_bool_t end_of_stream);
/* TCP: the same for bytes from the upstream (PROXY_BUFFER_UPSTREAM_DATA). */
PW_EXPORT(proxy_on_upstream_data)
proxy_action_t proxy_on_upstream_data(uint32_t context_id, size_t data_size,
                                      proxy_bool_t end_of_stream);
/* TCP: the client side closed; peer says who closed it. */
PW_EXPORT(proxy_on_downstream_connection_close)
void proxy_on_downstream_connection_close(uint32_t context_id, proxy_peer_type_t peer);
/* TCP: the upstream side closed. */
PW_EXPORT(proxy_on_upstream_connection_close)
void proxy_on_upstream_connection_close(uint32_t context_id, proxy_peer_type_t peer);

/* HTTP: request headers arrived (PROXY_MAP_HTTP_REQUEST_HEADERS). */
PW_EXPORT(proxy_on_request_headers)
proxy_action_t proxy_on_request_headers(uint32_t context_id, size_t num_headers,
                                        proxy_bool_t end_of_stream);
/* HTTP: request body bytes available (PROXY_BUFFER_HTTP_REQUEST_BODY). */
PW_EXPORT(proxy_on_request_body)
proxy_action_t proxy_on_request_body(uint32_t context_id, size_t body_size,
                                     proxy_bool_t end_of_stream);
/* HTTP: request trailers arrived (PROXY_MAP_HTTP_REQUEST_TRAILERS). */
PW_EXPORT(proxy_on_request_trailers)
proxy_action_t proxy_on_request_trailers(uint32_t context_id, size_t num_trailers);
/* HTTP: response headers arrived (PROXY_MAP_HTTP_RESPONSE_HEADERS). */
PW_EXPORT(proxy_on_response_headers)
proxy_action_t proxy_on_response_headers(uint32_t context_id, size_t num_headers,
                                         proxy_bool_t end_of_stream);
/* HTTP: response body bytes available (PROXY_BUFFER_HTTP_RESPONSE_BODY). */
PW_EXPORT(proxy_on_response_body)
proxy_action_t proxy_on_response_body(uint32_t context_id, size_t body_size,
                                      proxy_bool_t end_of_stream);
/* HTTP: response trailers arrived (PROXY_MAP_HTTP_RESPONSE_TRAILERS). */
PW_EXPORT(proxy_on_response_trailers)
proxy_action_t proxy_on_response_trailers(uint32_t context_id, size_t num_trailers);

/* Reply to proxy_http_call: num_headers 0 means the call failed; read the
 * parts via PROXY_MAP_HTTP_CALL_RESPONSE_* and PROXY_BUFFER_HTTP_CALL_RESPONSE_BODY. */
PW_EXPORT(proxy_on_http_call_response)
void proxy_on_http_call_response(uint32_t root_context_id, uint32_t call_id,
                                 size_t num_headers, size_t body_size, size_t num_trailers);
/* gRPC: initial metadata of call_id (PROXY_MAP_GRPC_CALL_INITIAL_METADATA). */
PW_EXPORT(proxy_on_grpc_receive_initial_metadata)
void proxy_on_grpc_receive_initial_metadata(uint32_t root_context_id, uint32_t call_id,
                                            size_t num_elements);
/* gRPC: one message of call_id (PROXY_BUFFER_GRPC_CALL_MESSAGE). */
PW_EXPORT(proxy_on_grpc_receive)
void proxy_on_grpc_receive(uint32_t root_context_id, uint32_t call_id, size_t message_size);
/* gRPC: trailing metadata of call_id (PROXY_MAP_GRPC_CALL_TRAILING_METADATA). */
PW_EXPORT(proxy_on_grpc_receive_trailing_metadata)
void proxy_on_grpc_receive_trailing_metadata(uint32_t root_context_id, uint32_t call_id,
                                             size_t num_elements);
/* gRPC: call_id finished with status_code (message via proxy_get_status). */
PW_EXPORT(proxy_on_grpc_close)
void proxy_on_grpc_close(uint32_t root_context_id, uint32_t call_id, uint32_t status_code);
/* A host extension invoked this module (PROXY_BUFFER_FOREIGN_FUNCTION_ARGUMENTS). */
PW_EXPORT(proxy_on_foreign_function)
void proxy_on_foreign_function(uint32_t root_context_id, uint32_t function_id,
                               size_t arguments_size);

/* ---- helpers ------------------------------------------------------------ */

/* Release a buffer the host returned (allocated by proxy_on_memory_allocate). */
static inline void pw_free(void *p) { free(p); }

/* Log a NUL-terminated message. */
static inline proxy_status_t pw_log(proxy_log_level_t level, const char *msg)
{
    return proxy_log(level, msg, strlen(msg));
}

/* Append data[0..n) to buf (holding len of cap bytes), truncating at cap;
 * returns the new length. printf is avoided in these examples: it would
 * drag most of libc's stdio into every module. */
static inline size_t pw_append(char *buf, size_t len, size_t cap, const void *data, size_t n)
{
    if (len >= cap)
        return len;
    if (n > cap - len)
        n = cap - len;
    memcpy(buf + len, data, n);
    return len + n;
}

/* Append a NUL-terminated string (see pw_append). */
static inline size_t pw_append_str(char *buf, size_t len, size_t cap, const char *s)
{
    return pw_append(buf, len, cap, s, strlen(s));
}

/* Append the decimal form of n (see pw_append). */
static inline size_t pw_append_u64(char *buf, size_t len, size_t cap, uint64_t n)
{
    char digits[20];
    char out[20];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    for (size_t i = 0; i < nd; i++)
        out[i] = digits[nd - 1 - i];
    return pw_append(buf, len, cap, out, nd);
}

/* Log prefix, the decimal number n, then suffix (truncated to 256 bytes). */
static inline proxy_status_t pw_log_num(proxy_log_level_t level, const char *prefix,
                                        uint64_t n, const char *suffix)
{
    char buf[256];
    size_t len = pw_append_str(buf, 0, sizeof buf, prefix);
    len = pw_append_u64(buf, len, sizeof buf, n);
    len = pw_append_str(buf, len, sizeof buf, suffix);
    return proxy_log(level, buf, len);
}

/* Copy a whole host buffer (e.g. the plugin configuration) into a new
 * allocation the caller frees; *data is 0 and *size 0 when empty. */
static inline proxy_status_t pw_get_buffer(proxy_buffer_type_t type, size_t size,
                                           uint8_t **data, size_t *data_size)
{
    *data = NULL;
    *data_size = 0;
    if (size == 0)
        return PROXY_OK;
    return proxy_get_buffer_bytes(type, 0, size, data, data_size);
}

/* Get header `name`; on PROXY_OK *value (caller frees, may be 0 when the
 * value is empty) and *value_size hold its value. */
static inline proxy_status_t pw_get_header(proxy_map_type_t map, const char *name,
                                           uint8_t **value, size_t *value_size)
{
    *value = NULL;
    *value_size = 0;
    return proxy_get_header_map_value(map, name, strlen(name), value, value_size);
}

/* True when header `name` is present in map (any value, even empty). */
static inline int pw_has_header(proxy_map_type_t map, const char *name, size_t name_size)
{
    uint8_t *v = NULL;
    size_t n = 0;
    proxy_status_t st = proxy_get_header_map_value(map, name, name_size, &v, &n);
    pw_free(v);
    return st == PROXY_OK;
}

/* Append header name: value (both NUL-terminated). */
static inline proxy_status_t pw_add_header(proxy_map_type_t map, const char *name,
                                           const char *value)
{
    return proxy_add_header_map_value(map, name, strlen(name), (const uint8_t *)value,
                                      strlen(value));
}

/* Set header name to value, replacing earlier values. */
static inline proxy_status_t pw_replace_header(proxy_map_type_t map, const char *name,
                                               const char *value)
{
    return proxy_replace_header_map_value(map, name, strlen(name), (const uint8_t *)value,
                                          strlen(value));
}

/* Remove header name. */
static inline proxy_status_t pw_remove_header(proxy_map_type_t map, const char *name)
{
    return proxy_remove_header_map_value(map, name, strlen(name));
}

/* Define a metric by C-string name. */
static inline proxy_status_t pw_define_metric(proxy_metric_type_t type, const char *name,
                                              uint32_t *id)
{
    return proxy_define_metric(type, name, strlen(name), id);
}

/* Serialized header maps (little-endian):
 *   u32 count
 *   count x (u32 key_len, u32 value_len)
 *   count x (key bytes, 0x00, value bytes, 0x00)
 * Lengths exclude the NUL terminators. An empty map is size 0, or a single
 * 0x00 byte, or a count of 0. */

static inline uint32_t pw_load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void pw_store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Reader over a serialized map; the data stays the caller's. */
struct pw_map_iter {
    const uint8_t *data;
    size_t size;
    uint32_t count, index;
    size_t lens_off, str_off;
};

/* Start reading; returns 0 when the map is malformed (size too small for
 * its count). */
static inline int pw_map_iter_init(struct pw_map_iter *it, const uint8_t *data, size_t size)
{
    it->data = data;
    it->size = size;
    it->index = 0;
    it->count = 0;
    it->lens_off = 4;
    if (size < 4)
        return 1; /* empty map */
    it->count = pw_load_u32(data);
    if (it->count > (size - 4) / 8) {
        it->count = 0;
        return 0;
    }
    it->str_off = 4 + (size_t)it->count * 8;
    return 1;
}

/* Next pair: key/value point into the map (NUL-terminated there). Returns
 * 0 at the end or when the map is malformed. */
static inline int pw_map_next(struct pw_map_iter *it, const char **key, size_t *key_size,
                              const char **value, size_t *value_size)
{
    if (it->index >= it->count)
        return 0;
    uint32_t kl = pw_load_u32(it->data + it->lens_off);
    uint32_t vl = pw_load_u32(it->data + it->lens_off + 4);
    size_t avail = it->size > it->str_off ? it->size - it->str_off : 0;
    if (kl >= avail || vl >= avail - kl - 1) { /* each needs its NUL too */
        it->index = it->count;
        return 0;
    }
    size_t need = (size_t)kl + 1 + (size_t)vl + 1;
    *key = (const char *)it->data + it->str_off;
    *key_size = kl;
    *value = (const char *)it->data + it->str_off + kl + 1;
    *value_size = vl;
    it->lens_off += 8;
    it->str_off += need;
    it->index++;
    return 1;
}

/* One name/value pair to serialize (NUL-terminated strings). */
struct pw_pair {
    const char *key;
    const char *value;
};

/* Bytes needed to serialize n pairs. */
static inline size_t pw_map_serialized_size(const struct pw_pair *pairs, size_t n)
{
    size_t total = 4 + n * 8;
    for (size_t i = 0; i < n; i++)
        total += strlen(pairs[i].key) + 1 + strlen(pairs[i].value) + 1;
    return total;
}

/* Serialize n pairs into out (pw_map_serialized_size(pairs, n) bytes). */
static inline void pw_map_serialize(const struct pw_pair *pairs, size_t n, uint8_t *out)
{
    uint8_t *s = out + 4 + n * 8;
    pw_store_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(pairs[i].key), vl = strlen(pairs[i].value);
        pw_store_u32(out + 4 + i * 8, (uint32_t)kl);
        pw_store_u32(out + 8 + i * 8, (uint32_t)vl);
        memcpy(s, pairs[i].key, kl + 1);
        s += kl + 1;
        memcpy(s, pairs[i].value, vl + 1);
        s += vl + 1;
    }
}

#ifdef __cplusplus
}
#endif

#endif /* STRAND_PROXY_WASM_H */
