/* test_pw_host.c - unit tests of the proxy-wasm host core (src/wasm/pw_*)
 * with the real example filters (examples/wasm, built into
 * BUILD/examples/wasm/ next to this binary) and a few hand-written modules
 * (their text is in the comments; the bytes are wat2wasm's output), through
 * a mock embedder that keeps header maps, buffers, metrics, the local
 * response and the log lines in one struct. Prints "N passed, M failed". */
#include "wasm/pw_host.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* --- the mock embedder --- */

#define MAXH 32
struct hdr {
    char k[64], v[256];
};

struct mock {
    struct hdr maps[4][MAXH];
    size_t nmap[4];
    uint8_t buf[4][8192];
    size_t blen[4];
    struct {
        char name[64];
        int type;
        uint64_t v;
    } metrics[16];
    size_t nmetrics;
    int lr_status;
    char lr_body[256], lr_details[64];
    size_t lr_body_len;
    struct hdr lr_headers[8];
    size_t lr_nheaders;
    int64_t lr_grpc;
    char logs[64][256];
    size_t nlogs;
    uint32_t tick_ms;
    unsigned lookups, lookup_limit, done_calls;
    char call_cluster[32];
    size_t call_nheaders;
    uint32_t call_timeout;
    int continued; /* stream type + 1 of the last proxy_continue_stream */
};

static int m_each(void *user, int map, pw_kv_fn fn, void *arg)
{
    struct mock *m = user;
    if (map > 3)
        return PW_NOT_FOUND;
    if (m->lookup_limit && ++m->lookups > m->lookup_limit)
        return PW_NOT_FOUND;
    for (size_t i = 0; i < m->nmap[map]; i++) {
        struct pw_kv kv = {m->maps[map][i].k, strlen(m->maps[map][i].k), m->maps[map][i].v,
                           strlen(m->maps[map][i].v)};
        if (fn(arg, &kv))
            break;
    }
    return PW_OK;
}

static void set_hdr(struct hdr *h, const struct pw_kv *kv)
{
    snprintf(h->k, sizeof(h->k), "%.*s", (int)kv->key_len, kv->key);
    snprintf(h->v, sizeof(h->v), "%.*s", (int)kv->value_len, kv->value);
}

static int m_add(void *user, int map, const struct pw_kv *kv)
{
    struct mock *m = user;
    if (m->nmap[map] == MAXH)
        return PW_INTERNAL_FAILURE;
    set_hdr(&m->maps[map][m->nmap[map]++], kv);
    return PW_OK;
}

static int m_remove(void *user, int map, const char *key, size_t len)
{
    struct mock *m = user;
    size_t j = 0;
    for (size_t i = 0; i < m->nmap[map]; i++)
        if (!(strlen(m->maps[map][i].k) == len && memcmp(m->maps[map][i].k, key, len) == 0))
            m->maps[map][j++] = m->maps[map][i];
    m->nmap[map] = j;
    return PW_OK;
}

static int m_replace(void *user, int map, const struct pw_kv *kv)
{
    m_remove(user, map, kv->key, kv->key_len);
    return m_add(user, map, kv);
}

static int m_set(void *user, int map, const struct pw_kv *kv, size_t n)
{
    struct mock *m = user;
    m->nmap[map] = 0;
    for (size_t i = 0; i < n && i < MAXH; i++)
        m_add(user, map, &kv[i]);
    return PW_OK;
}

static int m_buf_get(void *user, int b, const uint8_t **d, size_t *len)
{
    struct mock *m = user;
    *d = m->buf[b];
    *len = m->blen[b];
    return PW_OK;
}

static int m_local(void *user, const struct pw_local_response *r)
{
    struct mock *m = user;
    m->lr_status = (int)r->status;
    m->lr_body_len = r->body_len < sizeof(m->lr_body) ? r->body_len : sizeof(m->lr_body) - 1;
    memcpy(m->lr_body, r->body, m->lr_body_len);
    snprintf(m->lr_details, sizeof(m->lr_details), "%.*s", (int)r->details_len, r->details);
    m->lr_nheaders = 0;
    for (size_t i = 0; i < r->nheaders && i < 8; i++)
        set_hdr(&m->lr_headers[m->lr_nheaders++], &r->headers[i]);
    m->lr_grpc = r->grpc_status;
    return PW_OK;
}

static int m_define(void *user, int type, const char *name, size_t len, uint32_t *id)
{
    struct mock *m = user;
    for (size_t i = 0; i < m->nmetrics; i++)
        if (strlen(m->metrics[i].name) == len && memcmp(m->metrics[i].name, name, len) == 0) {
            *id = (uint32_t)i + 100;
            return PW_OK;
        }
    if (m->nmetrics == 16)
        return PW_INTERNAL_FAILURE;
    snprintf(m->metrics[m->nmetrics].name, 64, "%.*s", (int)len, name);
    m->metrics[m->nmetrics].type = type;
    *id = (uint32_t)m->nmetrics++ + 100;
    return PW_OK;
}

static int m_incr(void *user, uint32_t id, int64_t d)
{
    struct mock *m = user;
    if (id < 100 || id - 100 >= m->nmetrics)
        return PW_NOT_FOUND;
    m->metrics[id - 100].v += (uint64_t)d;
    return PW_OK;
}

static int m_record(void *user, uint32_t id, uint64_t v)
{
    struct mock *m = user;
    if (id < 100 || id - 100 >= m->nmetrics)
        return PW_NOT_FOUND;
    m->metrics[id - 100].v = v;
    return PW_OK;
}

static int m_get(void *user, uint32_t id, uint64_t *v)
{
    struct mock *m = user;
    if (id < 100 || id - 100 >= m->nmetrics)
        return PW_NOT_FOUND;
    *v = m->metrics[id - 100].v;
    return PW_OK;
}

static void m_log(void *user, int level, const char *msg, size_t len)
{
    struct mock *m = user;
    if (m->nlogs < 64)
        snprintf(m->logs[m->nlogs++], 256, "%d %.*s", level, (int)len, msg);
}

static void m_tick(void *user, uint32_t ms)
{
    ((struct mock *)user)->tick_ms = ms;
}

static void m_done(void *user)
{
    ((struct mock *)user)->done_calls++;
}

static int m_property(void *user, const char *path, size_t len, const uint8_t **v, size_t *vl)
{
    (void)user;
    if (len == 12 && memcmp(path, "request\0path", 12) == 0) {
        *v = (const uint8_t *)"/the/path";
        *vl = 9;
        return PW_OK;
    }
    return PW_NOT_FOUND;
}

static int m_http_call(void *user, const struct pw_http_call *c, uint32_t *token)
{
    struct mock *m = user;
    snprintf(m->call_cluster, sizeof(m->call_cluster), "%.*s", (int)c->cluster_len, c->cluster);
    m->call_nheaders = c->nheaders;
    m->call_timeout = c->timeout_ms;
    *token = 77;
    return PW_OK;
}

static int m_continue(void *user, int stream)
{
    ((struct mock *)user)->continued = stream + 1;
    return PW_OK;
}

static const struct pw_ops ops = {
    .property_get = m_property, .http_call = m_http_call, .continue_stream = m_continue,
    .map_each = m_each, .map_add = m_add, .map_replace = m_replace, .map_remove = m_remove,
    .map_set = m_set, .buffer_get = m_buf_get, .send_local_response = m_local,
    .metric_define = m_define, .metric_increment = m_incr, .metric_record = m_record,
    .metric_get = m_get, .log = m_log, .set_tick_period = m_tick, .done = m_done,
};

static const char *hdr_get(const struct mock *m, int map, const char *k)
{
    for (size_t i = 0; i < m->nmap[map]; i++)
        if (strcmp(m->maps[map][i].k, k) == 0)
            return m->maps[map][i].v;
    return NULL;
}

static void hdr_put(struct mock *m, int map, const char *k, const char *v)
{
    struct pw_kv kv = {k, strlen(k), v, strlen(v)};
    m_add(m, map, &kv);
}

static uint64_t metric(const struct mock *m, const char *name)
{
    for (size_t i = 0; i < m->nmetrics; i++)
        if (strcmp(m->metrics[i].name, name) == 0)
            return m->metrics[i].v;
    return UINT64_MAX;
}

static bool logged(const struct mock *m, const char *line)
{
    for (size_t i = 0; i < m->nlogs; i++)
        if (strcmp(m->logs[i], line) == 0)
            return true;
    return false;
}

/* --- modules --- */

static char module_dir[PATH_MAX + 32];

/* Reads BUILD/examples/wasm/NAME.wasm into a new buffer; NULL (and a
 * failure) when it is missing. */
static uint8_t *read_example(const char *name, size_t *len)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s.wasm", module_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        CHECK(0, "missing %s: build the wasm_examples target (needs clang for wasm32-wasi)",
              path);
        return NULL;
    }
    uint8_t *b = malloc(1 << 20);
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* A plugin from an example module and configuration; NULL on failure. */
static struct pw_plugin *example(const char *name, const char *cfg)
{
    size_t len;
    uint8_t *b = read_example(name, &len);
    if (b == NULL)
        return NULL;
    struct pw_plugin *p = NULL;
    char err[300];
    int rc = pw_plugin_new(name, b, len, (const uint8_t *)cfg, cfg ? strlen(cfg) : 0, &p, err,
                           sizeof(err));
    CHECK(rc == 0, "%s: %s", name, err);
    free(b);
    return p;
}

static struct pw_vm *vm_of(struct pw_plugin *p, struct mock *m, uint64_t fuel)
{
    struct pw_vm *vm = NULL;
    char err[600];
    struct pw_vm_opts o = {.fuel = fuel, .log_level = PW_LOG_INFO};
    int rc = pw_vm_new(p, &ops, m, &o, &vm, err, sizeof(err));
    CHECK(rc == 0 && vm != NULL, "%s", err);
    return vm;
}

/* spin.wasm:
 * (module
 *   (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
 *   (memory (export "memory") 1)
 *   (data (i32.const 16) "a")
 *   (func (export "proxy_abi_version_0_2_1"))
 *   (func (export "proxy_on_memory_allocate") (param i32) (result i32) (local $i i32)
 *     (loop $l
 *       (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *       (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
 *     (i32.const 1024))
 *   (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
 *     (loop $l (br $l))
 *     (i32.const 0))
 *   (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
 *     (block $out
 *       (loop $l
 *         (br_if $out (call $get (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 36)))
 *         (br $l)))
 *     (i32.const 0))
 *   (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 1))) */
static const uint8_t spin_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x19, 0x04, 0x60, 0x05, 0x7f, 0x7f, 0x7f,
    0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x03, 0x7f, 0x7f,
    0x7f, 0x01, 0x7f, 0x02, 0x22, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x1a, 0x70, 0x72, 0x6f, 0x78, 0x79,
    0x5f, 0x67, 0x65, 0x74, 0x5f, 0x68, 0x65, 0x61, 0x64, 0x65, 0x72, 0x5f, 0x6d, 0x61, 0x70, 0x5f,
    0x76, 0x61, 0x6c, 0x75, 0x65, 0x00, 0x00, 0x03, 0x06, 0x05, 0x01, 0x02, 0x03, 0x03, 0x03, 0x05,
    0x03, 0x01, 0x00, 0x01, 0x07, 0x8e, 0x01, 0x06, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02,
    0x00, 0x17, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x61, 0x62, 0x69, 0x5f, 0x76, 0x65, 0x72, 0x73,
    0x69, 0x6f, 0x6e, 0x5f, 0x30, 0x5f, 0x32, 0x5f, 0x31, 0x00, 0x01, 0x18, 0x70, 0x72, 0x6f, 0x78,
    0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x5f, 0x61, 0x6c, 0x6c, 0x6f,
    0x63, 0x61, 0x74, 0x65, 0x00, 0x02, 0x18, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f,
    0x72, 0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x5f, 0x68, 0x65, 0x61, 0x64, 0x65, 0x72, 0x73, 0x00,
    0x03, 0x19, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x72, 0x65, 0x73, 0x70, 0x6f,
    0x6e, 0x73, 0x65, 0x5f, 0x68, 0x65, 0x61, 0x64, 0x65, 0x72, 0x73, 0x00, 0x04, 0x15, 0x70, 0x72,
    0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x72, 0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x5f, 0x62,
    0x6f, 0x64, 0x79, 0x00, 0x05, 0x0a, 0x48, 0x05, 0x02, 0x00, 0x0b, 0x19, 0x01, 0x01, 0x7f, 0x03,
    0x40, 0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, 0x20, 0x01, 0x41, 0xe8, 0x07, 0x49, 0x0d, 0x00,
    0x0b, 0x41, 0x80, 0x08, 0x0b, 0x09, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00, 0x0b, 0x1a,
    0x00, 0x02, 0x40, 0x03, 0x40, 0x41, 0x00, 0x41, 0x10, 0x41, 0x01, 0x41, 0x20, 0x41, 0x24, 0x10,
    0x00, 0x0d, 0x01, 0x0c, 0x00, 0x0b, 0x0b, 0x41, 0x00, 0x0b, 0x04, 0x00, 0x41, 0x01, 0x0b, 0x0b,
    0x07, 0x01, 0x00, 0x41, 0x10, 0x0b, 0x01, 0x61,
};

/* oob.wasm:
 * (module
 *   (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
 *   (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
 *   (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
 *   (memory (export "memory") 1)
 *   (data (i32.const 16) "a")
 *   (func (export "proxy_abi_version_0_2_1"))
 *   (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
 *   (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
 *     (drop (call $tick
 *       (i32.add
 *         (i32.add
 *           (i32.mul (call $log (i32.const 2) (i32.const 0xfffffff0) (i32.const 100)) (i32.const 10000))
 *           (i32.mul (call $get (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 0xfffffff0) (i32.const 65536)) (i32.const 100)))
 *         (call $get (i32.const 0) (i32.const 70000) (i32.const 1) (i32.const 32) (i32.const 36)))))
 *     (i32.const 0))) */
static const uint8_t oob_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x19, 0x04, 0x60, 0x03, 0x7f, 0x7f, 0x7f,
    0x01, 0x7f, 0x60, 0x05, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f,
    0x60, 0x00, 0x00, 0x02, 0x5b, 0x03, 0x03, 0x65, 0x6e, 0x76, 0x09, 0x70, 0x72, 0x6f, 0x78, 0x79,
    0x5f, 0x6c, 0x6f, 0x67, 0x00, 0x00, 0x03, 0x65, 0x6e, 0x76, 0x1a, 0x70, 0x72, 0x6f, 0x78, 0x79,
    0x5f, 0x67, 0x65, 0x74, 0x5f, 0x68, 0x65, 0x61, 0x64, 0x65, 0x72, 0x5f, 0x6d, 0x61, 0x70, 0x5f,
    0x76, 0x61, 0x6c, 0x75, 0x65, 0x00, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x22, 0x70, 0x72, 0x6f, 0x78,
    0x79, 0x5f, 0x73, 0x65, 0x74, 0x5f, 0x74, 0x69, 0x63, 0x6b, 0x5f, 0x70, 0x65, 0x72, 0x69, 0x6f,
    0x64, 0x5f, 0x6d, 0x69, 0x6c, 0x6c, 0x69, 0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64, 0x73, 0x00, 0x02,
    0x03, 0x04, 0x03, 0x03, 0x02, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x5a, 0x04, 0x06, 0x6d,
    0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x17, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x61, 0x62,
    0x69, 0x5f, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x5f, 0x30, 0x5f, 0x32, 0x5f, 0x31, 0x00,
    0x03, 0x18, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x6d, 0x65, 0x6d, 0x6f, 0x72,
    0x79, 0x5f, 0x61, 0x6c, 0x6c, 0x6f, 0x63, 0x61, 0x74, 0x65, 0x00, 0x04, 0x18, 0x70, 0x72, 0x6f,
    0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x72, 0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x5f, 0x68, 0x65,
    0x61, 0x64, 0x65, 0x72, 0x73, 0x00, 0x05, 0x0a, 0x42, 0x03, 0x02, 0x00, 0x0b, 0x05, 0x00, 0x41,
    0x80, 0x08, 0x0b, 0x37, 0x00, 0x41, 0x02, 0x41, 0x70, 0x41, 0xe4, 0x00, 0x10, 0x00, 0x41, 0x90,
    0xce, 0x00, 0x6c, 0x41, 0x00, 0x41, 0x10, 0x41, 0x01, 0x41, 0x70, 0x41, 0x80, 0x80, 0x04, 0x10,
    0x01, 0x41, 0xe4, 0x00, 0x6c, 0x6a, 0x41, 0x00, 0x41, 0xf0, 0xa2, 0x04, 0x41, 0x01, 0x41, 0x20,
    0x41, 0x24, 0x10, 0x01, 0x6a, 0x10, 0x02, 0x1a, 0x41, 0x00, 0x0b, 0x0b, 0x07, 0x01, 0x00, 0x41,
    0x10, 0x0b, 0x01, 0x61,
};

/* unknown.wasm:
 * (module
 *   (import "env" "proxy_frobnicate" (func (param i32) (result i32)))
 *   (memory (export "memory") 1)
 *   (func (export "proxy_abi_version_0_2_1"))
 *   (func (export "malloc") (param i32) (result i32) (i32.const 0))) */
static const uint8_t unknown_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x09, 0x02, 0x60, 0x01, 0x7f, 0x01, 0x7f,
    0x60, 0x00, 0x00, 0x02, 0x18, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x10, 0x70, 0x72, 0x6f, 0x78, 0x79,
    0x5f, 0x66, 0x72, 0x6f, 0x62, 0x6e, 0x69, 0x63, 0x61, 0x74, 0x65, 0x00, 0x00, 0x03, 0x03, 0x02,
    0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x2d, 0x03, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72,
    0x79, 0x02, 0x00, 0x17, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x61, 0x62, 0x69, 0x5f, 0x76, 0x65,
    0x72, 0x73, 0x69, 0x6f, 0x6e, 0x5f, 0x30, 0x5f, 0x32, 0x5f, 0x31, 0x00, 0x01, 0x06, 0x6d, 0x61,
    0x6c, 0x6c, 0x6f, 0x63, 0x00, 0x02, 0x0a, 0x09, 0x02, 0x02, 0x00, 0x0b, 0x04, 0x00, 0x41, 0x00,
    0x0b,
};

/* abi.wasm: header map pairs out and in (and the three forms of an empty
 * map, and a truncated one), a property, an HTTP call and its response
 * (effective context, call body buffer, continue), an unexpected action
 * value, a late proxy_done from a tick, a negative counter delta, WASI
 * fd_write:
 * (module
 *   (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
 *   (import "env" "proxy_set_header_map_pairs" (func $set_pairs (param i32 i32 i32) (result i32)))
 *   (import "env" "proxy_get_property" (func $get_prop (param i32 i32 i32 i32) (result i32)))
 *   (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
 *   (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
 *   (import "env" "proxy_set_effective_context" (func $set_eff (param i32) (result i32)))
 *   (import "env" "proxy_get_buffer_bytes" (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
 *   (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
 *   (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
 *   (import "env" "proxy_increment_metric" (func $incr (param i32 i64) (result i32)))
 *   (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
 *   (import "env" "proxy_done" (func $done (result i32)))
 *   (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
 *   (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
 *   (memory (export "memory") 1)
 *   (global $heap (mut i32) (i32.const 4096))
 *   (global $ctx (mut i32) (i32.const 0))
 *   (data (i32.const 100) "request\00path")
 *   (data (i32.const 120) "x-path")
 *   (data (i32.const 130) "be")
 *   (data (i32.const 140) "\03\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\02\00\00\00\0a\00\00\00\01\00\00\00:method\00GET\00:path\00/x\00:authority\00a\00")
 *   (data (i32.const 210) "x-call-body")
 *   (data (i32.const 230) "ctr")
 *   (data (i32.const 300) "\40\01\00\00\0b\00\00\00")
 *   (data (i32.const 320) "hello wasi\n")
 *   (data (i32.const 410) "\05\00\00\00\01\00\00\00")
 *   (func (export "proxy_abi_version_0_2_1"))
 *   (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
 *     (local.set $p (global.get $heap))
 *     (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
 *     (local.get $p))
 *   (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
 *     (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 340)))
 *     (i32.const 1))
 *   (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
 *     (if (local.get $parent) (then (global.set $ctx (local.get $id)))))
 *   (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
 *     (drop (call $get_pairs (i32.const 0) (i32.const 32) (i32.const 36)))
 *     (drop (call $set_pairs (i32.const 2) (i32.load (i32.const 32)) (i32.load (i32.const 36))))
 *     (drop (call $get_prop (i32.const 100) (i32.const 12) (i32.const 32) (i32.const 36)))
 *     (drop (call $add (i32.const 0) (i32.const 120) (i32.const 6) (i32.load (i32.const 32)) (i32.load (i32.const 36))))
 *     (drop (call $http_call (i32.const 130) (i32.const 2) (i32.const 140) (i32.const 62)
 *                            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 40)))
 *     (i32.const 1))
 *   (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
 *     (drop (call $set_eff (global.get $ctx)))
 *     (drop (call $get_buf (i32.const 4) (i32.const 0) (local.get 3) (i32.const 32) (i32.const 36)))
 *     (drop (call $add (i32.const 0) (i32.const 210) (i32.const 11) (i32.load (i32.const 32)) (i32.load (i32.const 36))))
 *     (drop (call $continue (i32.const 0))))
 *   (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 7))
 *   (func (export "proxy_on_request_trailers") (param i32 i32) (result i32)
 *     (drop (call $set_tick
 *       (i32.add (i32.add (i32.add
 *         (i32.mul (call $set_pairs (i32.const 3) (i32.const 400) (i32.const 0)) (i32.const 1000))
 *         (i32.mul (call $set_pairs (i32.const 3) (i32.const 400) (i32.const 1)) (i32.const 100)))
 *         (i32.mul (call $set_pairs (i32.const 3) (i32.const 404) (i32.const 4)) (i32.const 10)))
 *         (call $set_pairs (i32.const 3) (i32.const 410) (i32.const 8)))))
 *     (i32.const 0))
 *   (func (export "proxy_on_done") (param i32) (result i32) (i32.const 0))
 *   (func (export "proxy_on_tick") (param i32)
 *     (drop (call $define (i32.const 0) (i32.const 230) (i32.const 3) (i32.const 44)))
 *     (drop (call $set_tick (call $incr (i32.load (i32.const 44)) (i64.const -1))))
 *     (drop (call $set_eff (global.get $ctx)))
 *     (drop (call $done)))
 *   (func (export "proxy_on_log") (param i32)
 *     (drop (call $log (i32.const 2) (i32.const 120) (i32.const 6))))) */
static const uint8_t abi_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x50, 0x0c, 0x60, 0x03, 0x7f, 0x7f, 0x7f,
    0x01, 0x7f, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x05, 0x7f, 0x7f, 0x7f, 0x7f,
    0x7f, 0x01, 0x7f, 0x60, 0x0a, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01,
    0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7e, 0x01, 0x7f, 0x60, 0x00, 0x01, 0x7f,
    0x60, 0x00, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x00, 0x60, 0x05,
    0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x00, 0x60, 0x01, 0x7f, 0x00, 0x02, 0x91, 0x03, 0x0e, 0x03, 0x65,
    0x6e, 0x76, 0x1a, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x67, 0x65, 0x74, 0x5f, 0x68, 0x65, 0x61,
    0x64, 0x65, 0x72, 0x5f, 0x6d, 0x61, 0x70, 0x5f, 0x70, 0x61, 0x69, 0x72, 0x73, 0x00, 0x00, 0x03,
    0x65, 0x6e, 0x76, 0x1a, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x73, 0x65, 0x74, 0x5f, 0x68, 0x65,
    0x61, 0x64, 0x65, 0x72, 0x5f, 0x6d, 0x61, 0x70, 0x5f, 0x70, 0x61, 0x69, 0x72, 0x73, 0x00, 0x00,
    0x03, 0x65, 0x6e, 0x76, 0x12, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x67, 0x65, 0x74, 0x5f, 0x70,
    0x72, 0x6f, 0x70, 0x65, 0x72, 0x74, 0x79, 0x00, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x1a, 0x70, 0x72,
    0x6f, 0x78, 0x79, 0x5f, 0x61, 0x64, 0x64, 0x5f, 0x68, 0x65, 0x61, 0x64, 0x65, 0x72, 0x5f, 0x6d,
    0x61, 0x70, 0x5f, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x00, 0x02, 0x03, 0x65, 0x6e, 0x76, 0x0f, 0x70,
    0x72, 0x6f, 0x78, 0x79, 0x5f, 0x68, 0x74, 0x74, 0x70, 0x5f, 0x63, 0x61, 0x6c, 0x6c, 0x00, 0x03,
    0x03, 0x65, 0x6e, 0x76, 0x1b, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x73, 0x65, 0x74, 0x5f, 0x65,
    0x66, 0x66, 0x65, 0x63, 0x74, 0x69, 0x76, 0x65, 0x5f, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x78, 0x74,
    0x00, 0x04, 0x03, 0x65, 0x6e, 0x76, 0x16, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x67, 0x65, 0x74,
    0x5f, 0x62, 0x75, 0x66, 0x66, 0x65, 0x72, 0x5f, 0x62, 0x79, 0x74, 0x65, 0x73, 0x00, 0x02, 0x03,
    0x65, 0x6e, 0x76, 0x15, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x63, 0x6f, 0x6e, 0x74, 0x69, 0x6e,
    0x75, 0x65, 0x5f, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d, 0x00, 0x04, 0x03, 0x65, 0x6e, 0x76, 0x13,
    0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x64, 0x65, 0x66, 0x69, 0x6e, 0x65, 0x5f, 0x6d, 0x65, 0x74,
    0x72, 0x69, 0x63, 0x00, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x16, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f,
    0x69, 0x6e, 0x63, 0x72, 0x65, 0x6d, 0x65, 0x6e, 0x74, 0x5f, 0x6d, 0x65, 0x74, 0x72, 0x69, 0x63,
    0x00, 0x05, 0x03, 0x65, 0x6e, 0x76, 0x22, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x73, 0x65, 0x74,
    0x5f, 0x74, 0x69, 0x63, 0x6b, 0x5f, 0x70, 0x65, 0x72, 0x69, 0x6f, 0x64, 0x5f, 0x6d, 0x69, 0x6c,
    0x6c, 0x69, 0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64, 0x73, 0x00, 0x04, 0x03, 0x65, 0x6e, 0x76, 0x0a,
    0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x64, 0x6f, 0x6e, 0x65, 0x00, 0x06, 0x03, 0x65, 0x6e, 0x76,
    0x09, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6c, 0x6f, 0x67, 0x00, 0x00, 0x16, 0x77, 0x61, 0x73,
    0x69, 0x5f, 0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f, 0x70, 0x72, 0x65, 0x76, 0x69,
    0x65, 0x77, 0x31, 0x08, 0x66, 0x64, 0x5f, 0x77, 0x72, 0x69, 0x74, 0x65, 0x00, 0x01, 0x03, 0x0c,
    0x0b, 0x07, 0x04, 0x08, 0x09, 0x00, 0x0a, 0x00, 0x08, 0x04, 0x0b, 0x0b, 0x05, 0x03, 0x01, 0x00,
    0x01, 0x06, 0x0c, 0x02, 0x7f, 0x01, 0x41, 0x80, 0x20, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b, 0x07,
    0x8d, 0x02, 0x0c, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x17, 0x70, 0x72, 0x6f,
    0x78, 0x79, 0x5f, 0x61, 0x62, 0x69, 0x5f, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x5f, 0x30,
    0x5f, 0x32, 0x5f, 0x31, 0x00, 0x0e, 0x18, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f,
    0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x5f, 0x61, 0x6c, 0x6c, 0x6f, 0x63, 0x61, 0x74, 0x65, 0x00,
    0x0f, 0x11, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x76, 0x6d, 0x5f, 0x73, 0x74,
    0x61, 0x72, 0x74, 0x00, 0x10, 0x17, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x63,
    0x6f, 0x6e, 0x74, 0x65, 0x78, 0x74, 0x5f, 0x63, 0x72, 0x65, 0x61, 0x74, 0x65, 0x00, 0x11, 0x18,
    0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x72, 0x65, 0x71, 0x75, 0x65, 0x73, 0x74,
    0x5f, 0x68, 0x65, 0x61, 0x64, 0x65, 0x72, 0x73, 0x00, 0x12, 0x1b, 0x70, 0x72, 0x6f, 0x78, 0x79,
    0x5f, 0x6f, 0x6e, 0x5f, 0x68, 0x74, 0x74, 0x70, 0x5f, 0x63, 0x61, 0x6c, 0x6c, 0x5f, 0x72, 0x65,
    0x73, 0x70, 0x6f, 0x6e, 0x73, 0x65, 0x00, 0x13, 0x19, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f,
    0x6e, 0x5f, 0x72, 0x65, 0x73, 0x70, 0x6f, 0x6e, 0x73, 0x65, 0x5f, 0x68, 0x65, 0x61, 0x64, 0x65,
    0x72, 0x73, 0x00, 0x14, 0x19, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x72, 0x65,
    0x71, 0x75, 0x65, 0x73, 0x74, 0x5f, 0x74, 0x72, 0x61, 0x69, 0x6c, 0x65, 0x72, 0x73, 0x00, 0x15,
    0x0d, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x64, 0x6f, 0x6e, 0x65, 0x00, 0x16,
    0x0d, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x74, 0x69, 0x63, 0x6b, 0x00, 0x17,
    0x0c, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f, 0x6e, 0x5f, 0x6c, 0x6f, 0x67, 0x00, 0x18, 0x0a,
    0xb3, 0x02, 0x0b, 0x02, 0x00, 0x0b, 0x17, 0x01, 0x01, 0x7f, 0x23, 0x00, 0x21, 0x01, 0x23, 0x00,
    0x20, 0x00, 0x6a, 0x41, 0x07, 0x6a, 0x41, 0x78, 0x71, 0x24, 0x00, 0x20, 0x01, 0x0b, 0x11, 0x00,
    0x41, 0x01, 0x41, 0xac, 0x02, 0x41, 0x01, 0x41, 0xd4, 0x02, 0x10, 0x0d, 0x1a, 0x41, 0x01, 0x0b,
    0x0b, 0x00, 0x20, 0x01, 0x04, 0x40, 0x20, 0x00, 0x24, 0x01, 0x0b, 0x0b, 0x56, 0x00, 0x41, 0x00,
    0x41, 0x20, 0x41, 0x24, 0x10, 0x00, 0x1a, 0x41, 0x02, 0x41, 0x20, 0x28, 0x02, 0x00, 0x41, 0x24,
    0x28, 0x02, 0x00, 0x10, 0x01, 0x1a, 0x41, 0xe4, 0x00, 0x41, 0x0c, 0x41, 0x20, 0x41, 0x24, 0x10,
    0x02, 0x1a, 0x41, 0x00, 0x41, 0xf8, 0x00, 0x41, 0x06, 0x41, 0x20, 0x28, 0x02, 0x00, 0x41, 0x24,
    0x28, 0x02, 0x00, 0x10, 0x03, 0x1a, 0x41, 0x82, 0x01, 0x41, 0x02, 0x41, 0x8c, 0x01, 0x41, 0x3e,
    0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0xe8, 0x07, 0x41, 0x28, 0x10, 0x04, 0x1a,
    0x41, 0x01, 0x0b, 0x2d, 0x00, 0x23, 0x01, 0x10, 0x05, 0x1a, 0x41, 0x04, 0x41, 0x00, 0x20, 0x03,
    0x41, 0x20, 0x41, 0x24, 0x10, 0x06, 0x1a, 0x41, 0x00, 0x41, 0xd2, 0x01, 0x41, 0x0b, 0x41, 0x20,
    0x28, 0x02, 0x00, 0x41, 0x24, 0x28, 0x02, 0x00, 0x10, 0x03, 0x1a, 0x41, 0x00, 0x10, 0x07, 0x1a,
    0x0b, 0x04, 0x00, 0x41, 0x07, 0x0b, 0x39, 0x00, 0x41, 0x03, 0x41, 0x90, 0x03, 0x41, 0x00, 0x10,
    0x01, 0x41, 0xe8, 0x07, 0x6c, 0x41, 0x03, 0x41, 0x90, 0x03, 0x41, 0x01, 0x10, 0x01, 0x41, 0xe4,
    0x00, 0x6c, 0x6a, 0x41, 0x03, 0x41, 0x94, 0x03, 0x41, 0x04, 0x10, 0x01, 0x41, 0x0a, 0x6c, 0x6a,
    0x41, 0x03, 0x41, 0x9a, 0x03, 0x41, 0x08, 0x10, 0x01, 0x6a, 0x10, 0x0a, 0x1a, 0x41, 0x00, 0x0b,
    0x04, 0x00, 0x41, 0x00, 0x0b, 0x22, 0x00, 0x41, 0x00, 0x41, 0xe6, 0x01, 0x41, 0x03, 0x41, 0x2c,
    0x10, 0x08, 0x1a, 0x41, 0x2c, 0x28, 0x02, 0x00, 0x42, 0x7f, 0x10, 0x09, 0x10, 0x0a, 0x1a, 0x23,
    0x01, 0x10, 0x05, 0x1a, 0x10, 0x0b, 0x1a, 0x0b, 0x0c, 0x00, 0x41, 0x02, 0x41, 0xf8, 0x00, 0x41,
    0x06, 0x10, 0x0c, 0x1a, 0x0b, 0x0b, 0xb2, 0x01, 0x09, 0x00, 0x41, 0xe4, 0x00, 0x0b, 0x0c, 0x72,
    0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x00, 0x70, 0x61, 0x74, 0x68, 0x00, 0x41, 0xf8, 0x00, 0x0b,
    0x06, 0x78, 0x2d, 0x70, 0x61, 0x74, 0x68, 0x00, 0x41, 0x82, 0x01, 0x0b, 0x02, 0x62, 0x65, 0x00,
    0x41, 0x8c, 0x01, 0x0b, 0x3e, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
    0x00, 0x05, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x3a, 0x6d, 0x65, 0x74, 0x68, 0x6f, 0x64, 0x00, 0x47, 0x45, 0x54, 0x00, 0x3a, 0x70, 0x61,
    0x74, 0x68, 0x00, 0x2f, 0x78, 0x00, 0x3a, 0x61, 0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x74, 0x79,
    0x00, 0x61, 0x00, 0x00, 0x41, 0xd2, 0x01, 0x0b, 0x0b, 0x78, 0x2d, 0x63, 0x61, 0x6c, 0x6c, 0x2d,
    0x62, 0x6f, 0x64, 0x79, 0x00, 0x41, 0xe6, 0x01, 0x0b, 0x03, 0x63, 0x74, 0x72, 0x00, 0x41, 0xac,
    0x02, 0x0b, 0x08, 0x40, 0x01, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x41, 0xc0, 0x02, 0x0b,
    0x0b, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x77, 0x61, 0x73, 0x69, 0x0a, 0x00, 0x41, 0x9a, 0x03,
    0x0b, 0x08, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
};

/* --- tests --- */

static void test_add_header(void)
{
    struct pw_plugin *p = example("add_header", " \"hello\"\n");
    if (p == NULL)
        return;
    CHECK(pw_plugin_abi(p) == PW_ABI_0_2_1);
    struct mock m = {0};
    struct pw_vm *vm = vm_of(p, &m, 0);
    if (vm == NULL)
        goto out;
    CHECK(logged(&m, "2 add_header: configured"), "%s", m.nlogs ? m.logs[0] : "no log");
    struct pw_ctx *c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
    CHECK(c != NULL);
    hdr_put(&m, PW_MAP_REQUEST_HEADERS, ":path", "/");
    hdr_put(&m, PW_MAP_REQUEST_HEADERS, "x-strand-wasm", "evil");
    CHECK(pw_http_request_headers(c, 2, true) == PW_CONTINUE);
    const char *v = hdr_get(&m, PW_MAP_REQUEST_HEADERS, "x-strand-wasm");
    CHECK(v && strcmp(v, "hello") == 0, "%s", v ? v : "(none)");
    CHECK(m.nmap[PW_MAP_REQUEST_HEADERS] == 2);
    hdr_put(&m, PW_MAP_RESPONSE_HEADERS, "x-strand-wasm", "upstream");
    CHECK(pw_http_response_headers(c, 1, false) == PW_CONTINUE);
    CHECK(m.nmap[PW_MAP_RESPONSE_HEADERS] == 2);
    CHECK(strcmp(m.maps[PW_MAP_RESPONSE_HEADERS][1].v, "hello") == 0);
    CHECK(pw_http_request_body(c, 0, true) == PW_CONTINUE); /* not exported: Continue */
    CHECK(pw_tcp_downstream_data(c, 1, false) == PW_ERR_STATE); /* wrong kind */
    CHECK(pw_ctx_finish(c) == 1);
    CHECK(pw_http_request_headers(c, 2, true) == PW_ERR_STATE); /* finished */
    pw_ctx_free(c);
    CHECK(pw_vm_traps(vm) == 0);
    pw_vm_free(vm);

    /* a configuration the filter refuses fails the VM */
    struct pw_plugin *bad = example("add_header", "a\001b");
    if (bad) {
        struct pw_vm *v2 = NULL;
        char err[600] = "";
        CHECK(pw_vm_new(bad, &ops, &m, NULL, &v2, err, sizeof(err)) != 0 && v2 == NULL);
        CHECK(strstr(err, "proxy_on_configure returned false") != NULL, "%s", err);
        pw_plugin_free(bad);
    }
out:
    pw_plugin_free(p);
}

static void test_abi020(void)
{
    struct pw_plugin *p = example("add_header_abi020", "v020");
    if (p == NULL)
        return;
    CHECK(pw_plugin_abi(p) == PW_ABI_0_2_0);
    struct mock m = {0};
    struct pw_vm *vm = vm_of(p, &m, 0); /* configure reads the config: allocates via malloc */
    if (vm) {
        struct pw_ctx *c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
        CHECK(pw_http_request_headers(c, 0, true) == PW_CONTINUE);
        const char *v = hdr_get(&m, PW_MAP_REQUEST_HEADERS, "x-strand-wasm");
        CHECK(v && strcmp(v, "v020") == 0, "%s", v ? v : "(none)");
        CHECK(pw_ctx_finish(c) == 1);
        pw_ctx_free(c);
        pw_vm_free(vm);
    }
    pw_plugin_free(p);
}

static void test_deny_header(void)
{
    struct pw_plugin *p = example("deny_header", "x-block, X-Evil");
    if (p == NULL)
        return;
    struct mock m = {0};
    struct pw_vm *vm = vm_of(p, &m, 0);
    if (vm) {
        struct pw_ctx *c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
        hdr_put(&m, PW_MAP_REQUEST_HEADERS, ":path", "/ok");
        CHECK(pw_http_request_headers(c, 1, true) == PW_CONTINUE);
        CHECK(m.lr_status == 0);
        pw_ctx_finish(c);
        pw_ctx_free(c);

        c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
        hdr_put(&m, PW_MAP_REQUEST_HEADERS, "x-evil", "");
        CHECK(pw_http_request_headers(c, 2, true) == PW_PAUSE);
        CHECK(m.lr_status == 403, "%d", m.lr_status);
        CHECK(m.lr_body_len == 15 && memcmp(m.lr_body, "denied by wasm\n", 15) == 0);
        CHECK(strcmp(m.lr_details, "wasm_deny_header") == 0);
        CHECK(m.lr_nheaders == 1 && strcmp(m.lr_headers[0].k, "content-type") == 0 &&
              strcmp(m.lr_headers[0].v, "text/plain") == 0);
        CHECK(m.lr_grpc == -1);
        CHECK(pw_ctx_finish(c) == 1);
        pw_ctx_free(c);
        pw_vm_free(vm);
    }
    pw_plugin_free(p);
}

static void test_count_requests(void)
{
    struct pw_plugin *p = example("count_requests", NULL);
    if (p == NULL)
        return;
    struct mock m = {0};
    struct pw_vm *vm = vm_of(p, &m, 0);
    if (vm) {
        for (int i = 0; i < 5; i++) {
            memset(m.nmap, 0, sizeof(m.nmap));
            struct pw_ctx *c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
            CHECK(c != NULL);
            hdr_put(&m, PW_MAP_REQUEST_HEADERS, ":method", "GET");
            hdr_put(&m, PW_MAP_REQUEST_HEADERS, ":path", "/p");
            CHECK(pw_http_request_headers(c, 2, true) == PW_CONTINUE);
            hdr_put(&m, PW_MAP_RESPONSE_HEADERS, ":status", "200");
            CHECK(pw_http_response_headers(c, 1, true) == PW_CONTINUE);
            CHECK(pw_ctx_finish(c) == 1);
            pw_ctx_free(c);
        }
        CHECK(metric(&m, "wasm_requests_total") == 5, "%llu",
              (unsigned long long)metric(&m, "wasm_requests_total"));
        CHECK(logged(&m, "2 count_requests: GET /p -> 200 (total 5)"), "%s",
              m.nlogs ? m.logs[m.nlogs - 1] : "no log");
        pw_vm_free(vm);
    }
    pw_plugin_free(p);
}

static void test_tcp_bytes(void)
{
    struct pw_plugin *p = example("tcp_bytes", NULL);
    if (p == NULL)
        return;
    struct mock m = {0};
    struct pw_vm *vm = vm_of(p, &m, 0);
    if (vm) {
        struct pw_ctx *c = pw_ctx_new(vm, PW_CTX_TCP, &m);
        CHECK(pw_tcp_new_connection(c) == PW_CONTINUE);
        m.blen[PW_BUFFER_DOWNSTREAM_DATA] = 100;
        CHECK(pw_tcp_downstream_data(c, 100, false) == PW_CONTINUE);
        CHECK(pw_tcp_downstream_data(c, 20, true) == PW_CONTINUE);
        CHECK(pw_tcp_upstream_data(c, 4096, true) == PW_CONTINUE);
        CHECK(pw_tcp_downstream_close(c, PW_PEER_REMOTE) == 0);
        CHECK(pw_tcp_upstream_close(c, PW_PEER_LOCAL) == 0);
        CHECK(pw_http_request_headers(c, 0, true) == PW_ERR_STATE);
        CHECK(pw_ctx_finish(c) == 1);
        char line[128];
        snprintf(line, sizeof(line), "2 tcp_bytes: connection %u closed, 120 bytes in, 4096 bytes out",
                 pw_ctx_id(c));
        CHECK(logged(&m, line), "%s", m.nlogs ? m.logs[m.nlogs - 1] : "no log");
        pw_ctx_free(c);
        CHECK(metric(&m, "wasm_tcp_bytes_in_total") == 120);
        CHECK(metric(&m, "wasm_tcp_bytes_out_total") == 4096);
        pw_vm_free(vm);
    }
    pw_plugin_free(p);
}

/* An endless loop is stopped by fuel; a nested allocator call does not
 * refill the callback's budget; the VM is broken until recreated. */
static void test_fuel_and_recreate(void)
{
    struct pw_plugin *p = NULL;
    char err[300];
    int rc = pw_plugin_new("spin", spin_wasm, sizeof(spin_wasm), NULL, 0, &p, err, sizeof(err));
    CHECK(rc == 0, "%s", err);
    if (rc)
        return;
    struct mock m = {0};
    struct pw_vm *vm = vm_of(p, &m, 1000000);
    if (vm == NULL) {
        pw_plugin_free(p);
        return;
    }
    struct pw_ctx *c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
    CHECK(pw_http_request_headers(c, 0, true) == PW_ERR_TRAP);
    CHECK(strstr(pw_vm_error(vm), "proxy_on_request_headers") &&
          strstr(pw_vm_error(vm), "out of fuel"), "%s", pw_vm_error(vm));
    CHECK(pw_vm_broken(vm) && pw_vm_traps(vm) == 1);
    CHECK(pw_http_request_body(c, 0, true) == PW_ERR_BROKEN);
    CHECK(pw_ctx_new(vm, PW_CTX_HTTP, &m) == NULL);
    pw_ctx_free(c);

    CHECK(pw_vm_recreate(vm) == 0, "%s", pw_vm_error(vm));
    CHECK(!pw_vm_broken(vm));
    c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
    CHECK(c != NULL && pw_http_request_body(c, 0, true) == PW_PAUSE);

    /* each lookup costs ~1000 units in the allocator: with 1M units the
     * loop must stop after about 1000 lookups, long before 100000 */
    hdr_put(&m, PW_MAP_REQUEST_HEADERS, "a", "1");
    m.lookup_limit = 100000;
    CHECK(pw_http_response_headers(c, 0, true) == PW_ERR_TRAP);
    CHECK(strstr(pw_vm_error(vm), "out of fuel") != NULL, "%s", pw_vm_error(vm));
    CHECK(m.lookups > 100 && m.lookups < 5000, "%u lookups", m.lookups);
    CHECK(pw_vm_traps(vm) == 2);
    pw_ctx_free(c);
    pw_vm_free(vm);
    pw_plugin_free(p);
}

/* Bad guest pointers answer INVALID_MEMORY_ACCESS (6); the module reports
 * the three statuses through the tick period: 6*10000 + 6*100 + 6. */
static void test_bad_pointers(void)
{
    struct pw_plugin *p = NULL;
    char err[300];
    int rc = pw_plugin_new("oob", oob_wasm, sizeof(oob_wasm), NULL, 0, &p, err, sizeof(err));
    CHECK(rc == 0, "%s", err);
    if (rc)
        return;
    struct mock m = {0};
    struct pw_vm *vm = vm_of(p, &m, 0);
    if (vm) {
        struct pw_ctx *c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
        hdr_put(&m, PW_MAP_REQUEST_HEADERS, "a", "1");
        CHECK(pw_http_request_headers(c, 1, true) == PW_CONTINUE);
        CHECK(m.tick_ms == 60606, "%u", m.tick_ms);
        CHECK(!pw_vm_broken(vm));
        pw_ctx_free(c);
        pw_vm_free(vm);
    }
    pw_plugin_free(p);
}

static void test_abi_calls(void)
{
    struct pw_plugin *p = NULL;
    char err[300];
    int rc = pw_plugin_new("abi", abi_wasm, sizeof(abi_wasm), NULL, 0, &p, err, sizeof(err));
    CHECK(rc == 0, "%s", err);
    if (rc)
        return;
    struct mock m = {0};
    struct pw_vm *vm = vm_of(p, &m, 0);
    if (vm == NULL) {
        pw_plugin_free(p);
        return;
    }
    CHECK(logged(&m, "2 hello wasi"), "%s", m.nlogs ? m.logs[0] : "no log");
    struct pw_ctx *c = pw_ctx_new(vm, PW_CTX_HTTP, &m);
    hdr_put(&m, PW_MAP_REQUEST_HEADERS, ":path", "/the/path");
    hdr_put(&m, PW_MAP_REQUEST_HEADERS, "a", "");
    CHECK(pw_http_request_headers(c, 2, true) == PW_PAUSE);
    CHECK(m.nmap[PW_MAP_RESPONSE_HEADERS] == 2 &&
          strcmp(m.maps[PW_MAP_RESPONSE_HEADERS][0].v, "/the/path") == 0 &&
          strcmp(m.maps[PW_MAP_RESPONSE_HEADERS][1].k, "a") == 0 &&
          m.maps[PW_MAP_RESPONSE_HEADERS][1].v[0] == 0);
    const char *v = hdr_get(&m, PW_MAP_REQUEST_HEADERS, "x-path");
    CHECK(v && strcmp(v, "/the/path") == 0, "%s", v ? v : "(none)");
    CHECK(strcmp(m.call_cluster, "be") == 0 && m.call_nheaders == 3 && m.call_timeout == 1000);

    struct pw_kv rh[] = {{":status", 7, "200", 3}};
    CHECK(pw_http_call_response(vm, 77, rh, 1, (const uint8_t *)"pong", 4, NULL, 0) == 0,
          "%s", pw_vm_error(vm));
    v = hdr_get(&m, PW_MAP_REQUEST_HEADERS, "x-call-body");
    CHECK(v && strcmp(v, "pong") == 0, "%s", v ? v : "(none)");
    CHECK(m.continued == PW_STREAM_REQUEST + 1);

    /* empty maps as size 0, one 0 byte, count 0: OK; count 5 in 8 bytes: BAD_ARGUMENT */
    hdr_put(&m, PW_MAP_RESPONSE_TRAILERS, "t", "1");
    CHECK(pw_http_request_trailers(c, 0) == PW_CONTINUE);
    CHECK(m.tick_ms == PW_BAD_ARGUMENT, "%u", m.tick_ms);
    CHECK(m.nmap[PW_MAP_RESPONSE_TRAILERS] == 0);

    size_t before = m.nlogs;
    CHECK(pw_http_response_headers(c, 0, false) == PW_CONTINUE); /* returns 7 */
    CHECK(m.nlogs == before + 1 && strstr(m.logs[before], "returned 7"));
    CHECK(pw_http_response_headers(c, 0, false) == PW_CONTINUE);
    CHECK(m.nlogs == before + 1); /* logged once */

    CHECK(pw_ctx_finish(c) == 0); /* proxy_on_done said false */
    CHECK(m.done_calls == 0 && !logged(&m, "2 x-path"));
    m.tick_ms = 0;
    CHECK(pw_vm_tick(vm) == 0, "%s", pw_vm_error(vm));
    CHECK(m.tick_ms == PW_BAD_ARGUMENT, "%u", m.tick_ms); /* counter, negative delta */
    CHECK(m.done_calls == 1 && logged(&m, "2 x-path"));
    pw_ctx_free(c);
    CHECK(pw_vm_traps(vm) == 0);
    pw_vm_free(vm);
    pw_plugin_free(p);
}

static void test_load_errors(void)
{
    struct pw_plugin *p = NULL;
    char err[300] = "";
    CHECK(pw_plugin_new("u", unknown_wasm, sizeof(unknown_wasm), NULL, 0, &p, err,
                        sizeof(err)) != 0 && p == NULL);
    CHECK(strstr(err, "unknown import env.proxy_frobnicate") != NULL, "%s", err);
    static const uint8_t junk[] = {0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00};
    CHECK(pw_plugin_new("j", junk, sizeof(junk), NULL, 0, &p, err, sizeof(err)) != 0);
    CHECK(strncmp(err, "invalid module: ", 16) == 0, "%s", err);
}

static void *cas_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        for (;;) {
            uint8_t *v;
            size_t len;
            uint32_t cas;
            uint32_t n = 0;
            if (pw_shared_get("pw-test-counter", 15, &v, &len, &cas) == PW_OK && len == 4)
                memcpy(&n, v, 4);
            free(v);
            n++;
            if (pw_shared_set("pw-test-counter", 15, (uint8_t *)&n, 4, cas) == PW_OK)
                break;
        }
    }
    return NULL;
}

static void test_shared_data(void)
{
    uint8_t *v;
    size_t len;
    uint32_t cas, cas2;
    CHECK(pw_shared_get("pw-test-k", 9, &v, &len, &cas) == PW_NOT_FOUND);
    CHECK(pw_shared_set("pw-test-k", 9, (const uint8_t *)"one", 3, 12345) == PW_OK); /* new key */
    CHECK(pw_shared_get("pw-test-k", 9, &v, &len, &cas) == PW_OK && len == 3 &&
          memcmp(v, "one", 3) == 0 && cas != 0);
    free(v);
    CHECK(pw_shared_set("pw-test-k", 9, (const uint8_t *)"two", 3, cas) == PW_OK);
    CHECK(pw_shared_get("pw-test-k", 9, &v, &len, &cas2) == PW_OK && cas2 != cas);
    free(v);
    CHECK(pw_shared_set("pw-test-k", 9, (const uint8_t *)"three", 5, cas) == PW_CAS_MISMATCH);
    CHECK(pw_shared_get("pw-test-k", 9, &v, &len, &cas) == PW_OK && len == 3 &&
          memcmp(v, "two", 3) == 0 && cas == cas2);
    free(v);
    CHECK(pw_shared_set("pw-test-k", 9, NULL, 0, 0) == PW_OK); /* cas 0: unconditional */
    CHECK(pw_shared_get("pw-test-k", 9, &v, &len, &cas) == PW_OK && len == 0 && v == NULL);

    /* created first: a get that finds no key returns cas 0, and a set with
     * cas 0 is unconditional, which would race */
    uint32_t zero = 0;
    CHECK(pw_shared_set("pw-test-counter", 15, (uint8_t *)&zero, 4, 0) == PW_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, cas_worker, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    uint32_t n = 0;
    CHECK(pw_shared_get("pw-test-counter", 15, &v, &len, &cas) == PW_OK && len == 4);
    if (v)
        memcpy(&n, v, 4);
    free(v);
    CHECK(n == 4000, "%u", n);
}

int main(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        printf("cannot read /proc/self/exe\n");
        return 1;
    }
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(module_dir, sizeof(module_dir), "%s/examples/wasm", exe);

    test_add_header();
    test_abi020();
    test_deny_header();
    test_count_requests();
    test_tcp_bytes();
    test_fuel_and_recreate();
    test_bad_pointers();
    test_abi_calls();
    test_load_errors();
    test_shared_data();
    return check_report();
}
