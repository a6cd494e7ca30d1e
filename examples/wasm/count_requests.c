/* count_requests.c - HTTP filter: count requests in a custom metric.
 *
 * The root context defines the counter `wasm_requests_total` (in
 * proxy_on_vm_start, or in proxy_on_configure if that failed); every
 * request's headers add 1 to it. When a request is finished
 * (proxy_on_log) the filter logs one line at INFO:
 *
 *     count_requests: GET /path -> 200 (total 42)
 *
 * with the total read back through proxy_get_metric. No configuration. */
#include "proxy_wasm.h"

#define METRIC "wasm_requests_total"

static uint32_t metric_id;
static int metric_ok;
static uint32_t root_id;

static void define_metric(void)
{
    if (metric_ok)
        return;
    if (pw_define_metric(PROXY_METRIC_COUNTER, METRIC, &metric_id) == PROXY_OK)
        metric_ok = 1;
    else
        pw_log(PROXY_LOG_ERROR, "count_requests: cannot define " METRIC);
}

void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id)
{
    if (parent_context_id == 0)
        root_id = context_id;
}

proxy_bool_t proxy_on_vm_start(uint32_t root_context_id, size_t vm_configuration_size)
{
    define_metric();
    return 1;
}

proxy_bool_t proxy_on_configure(uint32_t root_context_id, size_t size)
{
    define_metric();
    return metric_ok;
}

proxy_action_t proxy_on_request_headers(uint32_t context_id, size_t num_headers,
                                        proxy_bool_t end_of_stream)
{
    if (metric_ok)
        proxy_increment_metric(metric_id, 1);
    return PROXY_ACTION_CONTINUE;
}

/* Append the value of header `name` of map to buf, or "-" when absent. */
static size_t append_header(char *buf, size_t len, size_t cap, proxy_map_type_t map,
                            const char *name)
{
    uint8_t *v;
    size_t n;
    if (pw_get_header(map, name, &v, &n) == PROXY_OK && n > 0)
        len = pw_append(buf, len, cap, v, n);
    else
        len = pw_append_str(buf, len, cap, "-");
    pw_free(v);
    return len;
}

void proxy_on_log(uint32_t context_id)
{
    if (context_id == root_id)
        return;
    char line[512];
    size_t len = 0, cap = sizeof line;
    len = pw_append_str(line, len, cap, "count_requests: ");
    len = append_header(line, len, cap, PROXY_MAP_HTTP_REQUEST_HEADERS, ":method");
    len = pw_append_str(line, len, cap, " ");
    len = append_header(line, len, cap, PROXY_MAP_HTTP_REQUEST_HEADERS, ":path");
    len = pw_append_str(line, len, cap, " -> ");
    len = append_header(line, len, cap, PROXY_MAP_HTTP_RESPONSE_HEADERS, ":status");
    uint64_t total;
    if (metric_ok && proxy_get_metric(metric_id, &total) == PROXY_OK) {
        len = pw_append_str(line, len, cap, " (total ");
        len = pw_append_u64(line, len, cap, total);
        len = pw_append_str(line, len, cap, ")");
    }
    proxy_log(PROXY_LOG_INFO, line, len);
}

proxy_bool_t proxy_on_done(uint32_t context_id) { return 1; }

void proxy_on_delete(uint32_t context_id) {}
