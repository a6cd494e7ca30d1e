/* tcp_bytes.c - TCP (stream) filter: count proxied bytes.
 *
 * Two counters, defined by the root context:
 *   wasm_tcp_bytes_in_total   bytes received from clients (downstream data)
 *   wasm_tcp_bytes_out_total  bytes received from upstreams (upstream data)
 * Data always passes unchanged (Continue). Each connection's own totals are
 * kept per context and logged at INFO when the host finishes it:
 *
 *     tcp_bytes: connection 7 closed, 120 bytes in, 4096 bytes out
 *
 * No configuration. */
#include "proxy_wasm.h"

static uint32_t in_id, out_id;
static int metrics_ok;

/* Per-connection totals, in a small chained hash table by context id. */
struct conn {
    uint32_t id;
    uint64_t in, out;
    struct conn *next;
};

#define NBUCKETS 64
static struct conn *buckets[NBUCKETS];

static struct conn **conn_slot(uint32_t id)
{
    struct conn **pp = &buckets[id % NBUCKETS];
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    return pp;
}

static struct conn *conn_find(uint32_t id) { return *conn_slot(id); }

static void define_metrics(void)
{
    if (metrics_ok)
        return;
    if (pw_define_metric(PROXY_METRIC_COUNTER, "wasm_tcp_bytes_in_total", &in_id) == PROXY_OK &&
        pw_define_metric(PROXY_METRIC_COUNTER, "wasm_tcp_bytes_out_total", &out_id) == PROXY_OK)
        metrics_ok = 1;
    else
        pw_log(PROXY_LOG_ERROR, "tcp_bytes: cannot define the byte counters");
}

proxy_bool_t proxy_on_vm_start(uint32_t root_context_id, size_t vm_configuration_size)
{
    define_metrics();
    return 1;
}

proxy_bool_t proxy_on_configure(uint32_t root_context_id, size_t size)
{
    define_metrics();
    return metrics_ok;
}

void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id)
{
    if (parent_context_id == 0 || conn_find(context_id))
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return; /* still counted in the metrics, just not logged */
    c->id = context_id;
    struct conn **slot = &buckets[context_id % NBUCKETS];
    c->next = *slot;
    *slot = c;
}

proxy_action_t proxy_on_new_connection(uint32_t context_id)
{
    pw_log_num(PROXY_LOG_DEBUG, "tcp_bytes: new connection ", context_id, "");
    return PROXY_ACTION_CONTINUE;
}

proxy_action_t proxy_on_downstream_data(uint32_t context_id, size_t data_size,
                                        proxy_bool_t end_of_stream)
{
    if (metrics_ok && data_size)
        proxy_increment_metric(in_id, (int64_t)data_size);
    struct conn *c = conn_find(context_id);
    if (c)
        c->in += data_size;
    return PROXY_ACTION_CONTINUE;
}

proxy_action_t proxy_on_upstream_data(uint32_t context_id, size_t data_size,
                                      proxy_bool_t end_of_stream)
{
    if (metrics_ok && data_size)
        proxy_increment_metric(out_id, (int64_t)data_size);
    struct conn *c = conn_find(context_id);
    if (c)
        c->out += data_size;
    return PROXY_ACTION_CONTINUE;
}

void proxy_on_downstream_connection_close(uint32_t context_id, proxy_peer_type_t peer)
{
    pw_log_num(PROXY_LOG_DEBUG, "tcp_bytes: downstream closed, peer type ", peer, "");
}

void proxy_on_upstream_connection_close(uint32_t context_id, proxy_peer_type_t peer)
{
    pw_log_num(PROXY_LOG_DEBUG, "tcp_bytes: upstream closed, peer type ", peer, "");
}

proxy_bool_t proxy_on_done(uint32_t context_id) { return 1; }

void proxy_on_log(uint32_t context_id)
{
    struct conn *c = conn_find(context_id);
    if (!c)
        return;
    char line[160];
    size_t len = 0, cap = sizeof line;
    len = pw_append_str(line, len, cap, "tcp_bytes: connection ");
    len = pw_append_u64(line, len, cap, c->id);
    len = pw_append_str(line, len, cap, " closed, ");
    len = pw_append_u64(line, len, cap, c->in);
    len = pw_append_str(line, len, cap, " bytes in, ");
    len = pw_append_u64(line, len, cap, c->out);
    len = pw_append_str(line, len, cap, " bytes out");
    proxy_log(PROXY_LOG_INFO, line, len);
}

void proxy_on_delete(uint32_t context_id)
{
    struct conn **slot = conn_slot(context_id);
    struct conn *c = *slot;
    if (!c)
        return;
    *slot = c->next;
    free(c);
}
