/* pw_int.h - internals shared by the proxy-wasm host core's files
 * (pw_host.c: plugins, VMs, contexts and callbacks; pw_abi.c: the host
 * functions; pw_shared.c: shared data; pw_queue.c: shared queues). Never
 * include it from outside
 * src/wasm/pw_*.c. */
#ifndef STRAND_PW_INT_H
#define STRAND_PW_INT_H

#include "wasm/pw_host.h"
#include "wasm/wasm.h"

/* One host function the core offers (pw_abi.c holds the table). */
struct pw_import {
    const char *module; /* "env" or "wasi_snapshot_preview1" */
    const char *name;
    const char *sig;    /* params then results, 'i' = i32, 'I' = i64, ':' between */
    wasm_host_fn fn;
};

/* The import named module.name, or NULL. Borrows both. */
const struct pw_import *pw_import_find(const char *module, size_t mlen, const char *name,
                                       size_t nlen);

struct pw_plugin {
    char *name;
    struct wasm_module *mod;
    uint8_t *cfg;
    size_t cfg_len;
    enum pw_abi abi;
    size_t nimports;
    const struct pw_import **imports; /* per module import, in order */
};

enum ctx_state { CTX_LIVE = 0, CTX_DONE_PENDING, CTX_DELETED };

struct pw_ctx {
    struct pw_vm *vm;
    uint64_t gen;        /* the VM instance it belongs to */
    uint32_t id;
    enum pw_ctx_kind kind;
    enum ctx_state state;
    bool finalize;       /* proxy_done called while pending: finish after the callback */
    void *user;
    struct pw_ctx *prev, *next; /* the VM's live contexts */
};

/* A metric the filter defined, to refuse negative counter deltas. */
struct pw_metric_def {
    uint32_t id;
    int type;
};

/* The HTTP call response being delivered (pw_http_call_response). */
struct pw_call_resp {
    const struct pw_kv *headers, *trailers;
    size_t nheaders, ntrailers;
    const uint8_t *body;
    size_t body_len;
};

/* What a gRPC callback (pw_grpc_*) serves to the filter: one of the
 * metadata maps, the message, or the close status. */
struct pw_grpc_resp {
    int map;                     /* PW_MAP_GRPC_*_METADATA served, or -1 */
    const struct pw_kv *md;
    size_t nmd;
    const uint8_t *msg;          /* PW_BUFFER_GRPC_CALL_MESSAGE, or NULL */
    size_t msg_len;
    bool closing;                /* proxy_get_status answers status, text */
    uint32_t status;
    const char *text;
    size_t text_len;
};

struct pw_vm {
    const struct pw_plugin *plugin;
    const struct pw_ops *ops;
    void *user;
    struct pw_vm_opts opts;
    struct wasm_instance *inst;
    struct wasm_func **hostfns;  /* per import */
    struct wasm_func *alloc;     /* proxy_on_memory_allocate or malloc */
    uint64_t gen;                /* bumped by every (re)creation */
    bool broken;
    bool warned_action;          /* an unexpected action value was logged once */
    uint64_t traps;
    uint32_t root_id;
    uint32_t next_id;
    struct pw_ctx *cur;          /* effective context during a callback; NULL = root */
    struct pw_ctx *live;         /* list of live contexts */
    uint32_t nfinalize;          /* contexts with finalize set (run_pending's work) */
    const struct pw_call_resp *call_resp; /* during proxy_on_http_call_response */
    bool queue_owner;            /* registered a shared queue (pw_queue_detach's work) */
    const struct pw_grpc_resp *grpc_resp; /* during proxy_on_grpc_* */
    struct pw_metric_def *metrics;
    size_t nmetrics, cap_metrics;
    char errbuf[512];
    char trapbuf[256];           /* message a host function traps with */
};

/* The user pointer of the effective context. */
static inline void *pw_cur_user(const struct pw_vm *vm)
{
    return vm->cur ? vm->cur->user : vm->user;
}

/* Finds a live context of vm by id (NULL if none); borrows vm. */
struct pw_ctx *pw_find_ctx(struct pw_vm *vm, uint32_t id);

/* Shared queues (pw_queue.c), process-wide and thread-safe; statuses as
 * the ABI's calls answer them. Register creates or finds the queue
 * (vm's vm_id, name) and makes vm the one notified; borrows both. */
int pw_queue_register(struct pw_vm *vm, const char *name, size_t len, uint32_t *id);
/* The id of queue (vm_id, name): OK or NOT_FOUND. Borrows both. */
int pw_queue_resolve(const char *vm_id, size_t vl, const char *name, size_t nl, uint32_t *id);
/* Appends a copy of data (borrowed) and tells the queue's VM (its
 * ops->queue_ready, under the queues' lock). OK, NOT_FOUND, or
 * INTERNAL_FAILURE when the queue is full. */
int pw_queue_enqueue(uint32_t id, const uint8_t *data, size_t len);
/* Pops the front item into a new malloc'd *data (the caller's; NULL when
 * empty). OK, NOT_FOUND or EMPTY. */
int pw_queue_dequeue(uint32_t id, uint8_t **data, size_t *len);
/* vm (borrowed) is freed or recreated: no queue notifies it any more. */
void pw_queue_detach(struct pw_vm *vm);
/* Frees every shared data key (pw_shared.c; process exit). */
void pw_shared_cleanup(void);

#endif
