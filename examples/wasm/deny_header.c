/* deny_header.c - HTTP filter: refuse requests that carry a marker header.
 *
 * A request with header `x-deny` (any value, even empty), or with any of the
 * headers named in the plugin configuration, is answered by the proxy with
 *
 *     403, content-type: text/plain, body "denied by wasm\n"
 *
 * and never reaches the upstream (the callback returns Pause after
 * proxy_send_local_response). Other requests continue untouched.
 *
 * Configuration: header names separated by commas and/or whitespace,
 * e.g. "x-block, x-evil". Names are matched case-insensitively (they are
 * lowercased here; hosts keep header names lowercase). Empty: x-deny only. */
#include "proxy_wasm.h"

#define MAX_NAMES 16

static const char deny_body[] = "denied by wasm\n";
static const char deny_details[] = "wasm_deny_header";

struct name {
    const char *s;
    size_t len;
};

static struct name names[MAX_NAMES] = {{"x-deny", 6}};
static size_t nnames = 1;
static char *names_store; /* holds the configured names */
static uint8_t *local_headers; /* serialized content-type header */
static size_t local_headers_size;

static int is_sep(uint8_t c) { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

proxy_bool_t proxy_on_vm_start(uint32_t root_context_id, size_t vm_configuration_size)
{
    static const struct pw_pair hdrs[] = {{"content-type", "text/plain"}};
    local_headers_size = pw_map_serialized_size(hdrs, 1);
    local_headers = malloc(local_headers_size);
    if (!local_headers)
        return 0;
    pw_map_serialize(hdrs, 1, local_headers);
    return 1;
}

proxy_bool_t proxy_on_configure(uint32_t root_context_id, size_t size)
{
    uint8_t *cfg;
    size_t n;
    if (pw_get_buffer(PROXY_BUFFER_PLUGIN_CONFIGURATION, size, &cfg, &n) != PROXY_OK) {
        pw_log(PROXY_LOG_ERROR, "deny_header: cannot read the plugin configuration");
        return 0;
    }
    free(names_store);
    names_store = NULL;
    nnames = 1; /* x-deny always */
    if (n) {
        names_store = malloc(n);
        if (!names_store) {
            pw_free(cfg);
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            uint8_t c = cfg[i];
            names_store[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        size_t i = 0;
        while (i < n) {
            while (i < n && is_sep(cfg[i]))
                i++;
            size_t b = i;
            while (i < n && !is_sep(cfg[i]))
                i++;
            if (i == b)
                break;
            if (nnames == MAX_NAMES) {
                pw_log(PROXY_LOG_ERROR, "deny_header: too many header names");
                pw_free(cfg);
                return 0;
            }
            names[nnames].s = names_store + b;
            names[nnames].len = i - b;
            nnames++;
        }
    }
    pw_free(cfg);
    pw_log_num(PROXY_LOG_INFO, "deny_header: configured, ", nnames, " header name(s)");
    return 1;
}

void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id) {}

proxy_action_t proxy_on_request_headers(uint32_t context_id, size_t num_headers,
                                        proxy_bool_t end_of_stream)
{
    for (size_t i = 0; i < nnames; i++) {
        if (!pw_has_header(PROXY_MAP_HTTP_REQUEST_HEADERS, names[i].s, names[i].len))
            continue;
        pw_log(PROXY_LOG_INFO, "deny_header: request denied");
        proxy_send_local_response(403, deny_details, sizeof deny_details - 1,
                                  (const uint8_t *)deny_body, sizeof deny_body - 1,
                                  local_headers, local_headers_size, PROXY_GRPC_STATUS_NONE);
        return PROXY_ACTION_PAUSE;
    }
    return PROXY_ACTION_CONTINUE;
}

proxy_bool_t proxy_on_done(uint32_t context_id) { return 1; }

void proxy_on_delete(uint32_t context_id) {}
