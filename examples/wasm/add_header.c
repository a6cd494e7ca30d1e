/* add_header.c - HTTP filter: stamp requests and responses with a header.
 *
 * Request:  x-strand-wasm: <value>  (replacing any value the client sent, so
 *                                    the upstream can trust it)
 * Response: x-strand-wasm: <value>  (appended)
 *
 * <value> is the plugin configuration, trimmed of surrounding whitespace
 * and of one pair of surrounding double quotes; "1" when the configuration
 * is empty. A configuration that is not a valid header value (control
 * characters) makes proxy_on_configure fail. */
#include "proxy_wasm.h"

#define HEADER "x-strand-wasm"

static char default_value[] = "1";
static char *value = default_value; /* NUL-terminated */
static size_t value_len = 1;

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

proxy_bool_t proxy_on_vm_start(uint32_t root_context_id, size_t vm_configuration_size)
{
    return 1;
}

proxy_bool_t proxy_on_configure(uint32_t root_context_id, size_t size)
{
    uint8_t *cfg;
    size_t n;
    if (pw_get_buffer(PROXY_BUFFER_PLUGIN_CONFIGURATION, size, &cfg, &n) != PROXY_OK) {
        pw_log(PROXY_LOG_ERROR, "add_header: cannot read the plugin configuration");
        return 0;
    }
    size_t b = 0, e = n;
    while (b < e && is_space(cfg[b]))
        b++;
    while (e > b && is_space(cfg[e - 1]))
        e--;
    if (e - b >= 2 && cfg[b] == '"' && cfg[e - 1] == '"') {
        b++;
        e--;
    }
    for (size_t i = b; i < e; i++) {
        if ((cfg[i] < 0x20 && cfg[i] != '\t') || cfg[i] == 0x7f) {
            pw_log(PROXY_LOG_ERROR, "add_header: configuration is not a valid header value");
            pw_free(cfg);
            return 0;
        }
    }
    char *v = default_value;
    size_t vl = 1;
    if (e > b) {
        v = malloc(e - b + 1);
        if (!v) {
            pw_free(cfg);
            return 0;
        }
        memcpy(v, cfg + b, e - b);
        v[e - b] = 0;
        vl = e - b;
    }
    pw_free(cfg);
    if (value != default_value)
        free(value);
    value = v;
    value_len = vl;
    pw_log(PROXY_LOG_INFO, "add_header: configured");
    return 1;
}

void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id) {}

proxy_action_t proxy_on_request_headers(uint32_t context_id, size_t num_headers,
                                        proxy_bool_t end_of_stream)
{
    proxy_replace_header_map_value(PROXY_MAP_HTTP_REQUEST_HEADERS, HEADER, sizeof HEADER - 1,
                                   (const uint8_t *)value, value_len);
    return PROXY_ACTION_CONTINUE;
}

proxy_action_t proxy_on_response_headers(uint32_t context_id, size_t num_headers,
                                         proxy_bool_t end_of_stream)
{
    proxy_add_header_map_value(PROXY_MAP_HTTP_RESPONSE_HEADERS, HEADER, sizeof HEADER - 1,
                               (const uint8_t *)value, value_len);
    return PROXY_ACTION_CONTINUE;
}

proxy_bool_t proxy_on_done(uint32_t context_id) { return 1; }

void proxy_on_delete(uint32_t context_id) {}
