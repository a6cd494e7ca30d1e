/* wasm_call.h - proxy_http_call for WasmPlugins: one HTTP/1.1 request to
 * a cluster of the generation, its answer read whole (wasm_call.c). */
#ifndef STRAND_WASM_CALL_H
#define STRAND_WASM_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/worker.h"
#include "wasm/pw_host.h"

struct wf_call;

/* The answer: :status then the response's fields (nheaders 0: the call
 * failed: no connection, a bad or oversized answer, the timeout). All
 * borrowed for the callback. */
struct wf_call_answer {
    const struct pw_kv *headers;
    size_t nheaders;
    const uint8_t *body;
    size_t body_len;
};

/* Called once per started call, from the worker's loop (never from inside
 * wf_call_start); ud as given. */
typedef void (*wf_call_done_fn)(void *ud, uint32_t token, const struct wf_call_answer *a);

/* Starts call (borrowed; :method, :path and :authority required) to the
 * HTTP/1.1 cluster it names in wg (borrowed, must outlive the call). On
 * PW_OK the call runs and *link points at it until it ends (then NULL);
 * else a pw_status: PW_BAD_ARGUMENT (unknown or non-HTTP/1.1 cluster,
 * missing pseudo-header), PW_INTERNAL_FAILURE (no endpoint, no memory). */
int wf_call_start(struct wgen *wg, const struct pw_http_call *call, uint32_t token,
                  wf_call_done_fn done, void *ud, struct wf_call **link);
/* Stops a running call without calling done (NULL allowed); frees it. */
void wf_call_cancel(struct wf_call *c);

#endif
