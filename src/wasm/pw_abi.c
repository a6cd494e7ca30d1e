/* pw_abi.c - the host functions of the proxy-wasm ABI (module "env") and
 * the WASI calls SDK-built filters import (module
 * "wasi_snapshot_preview1"), over the embedder's struct pw_ops.
 *
 * Every guest pointer is bounds-checked against linear memory: a bad one
 * makes the call answer INVALID_MEMORY_ACCESS (WASI: FAULT), never a host
 * crash nor a trap. Data returned to the filter is copied into memory the
 * module allocates itself (proxy_on_memory_allocate, else malloc), called
 * re-entrantly from here; an allocation may grow memory, so no pointer
 * into linear memory is kept across one. A trap inside the allocator (its
 * fuel is the callback's: the nested call does not get a budget of its
 * own) becomes a trap of the host call. */
#include "wasm/pw_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define ARG(i) (a[i].of.u32)
#define RET(st)                                                                                \
    do {                                                                                       \
        int st_ = (st);                                                                        \
        if (st_ < 0)                                                                           \
            return vm->trapbuf;                                                                \
        r[0].type = WASM_I32;                                                                  \
        r[0].of.u32 = (uint32_t)st_;                                                           \
        return NULL;                                                                           \
    } while (0)
#define HOSTFN(name)                                                                           \
    static const char *name(void *user, struct wasm_instance *caller,                          \
                            const struct wasm_val *a, struct wasm_val *r)

/* Largest single buffer the host copies in or out of a filter. */
#define PW_MAX_COPY (64u * 1024 * 1024)

enum { WASI_SUCCESS = 0, WASI_BADF = 8, WASI_FAULT = 21, WASI_INVAL = 28, WASI_NOTSUP = 58,
       WASI_SPIPE = 70, WASI_NOTCAPABLE = 76 };

/* --- linear memory --- */

/* A pointer to guest bytes [addr, addr+len), or NULL when out of bounds.
 * Valid until the memory grows (any allocation). len 0 gives a non-NULL
 * pointer for any addr <= size. */
static uint8_t *gmem(struct pw_vm *vm, uint32_t addr, uint32_t len)
{
    struct wasm_memory *m = vm->inst ? wasm_instance_memory(vm->inst) : NULL;
    if (m == NULL)
        return NULL;
    size_t size = wasm_memory_size(m);
    if ((uint64_t)addr + len > size)
        return NULL;
    static uint8_t empty;
    uint8_t *base = wasm_memory_data(m);
    return base ? base + addr : &empty;
}

static int put_u32(struct pw_vm *vm, uint32_t addr, uint32_t v)
{
    uint8_t *p = gmem(vm, addr, 4);
    if (p == NULL)
        return -1;
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    memcpy(p, b, 4);
    return 0;
}

static int put_u64(struct pw_vm *vm, uint32_t addr, uint64_t v)
{
    uint8_t *p = gmem(vm, addr, 8);
    if (p == NULL)
        return -1;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return 0;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A malloc'd copy of guest bytes (NULL-safe for len 0: returns a 1-byte
 * block); *st gets INVALID_MEMORY_ACCESS or INTERNAL_FAILURE on failure. */
static uint8_t *gcopy(struct pw_vm *vm, uint32_t addr, uint32_t len, int *st)
{
    if (len > PW_MAX_COPY) {
        *st = PW_INVALID_MEMORY_ACCESS;
        return NULL;
    }
    uint8_t *p = gmem(vm, addr, len);
    if (p == NULL) {
        *st = PW_INVALID_MEMORY_ACCESS;
        return NULL;
    }
    uint8_t *c = malloc(len ? len : 1);
    if (c == NULL) {
        *st = PW_INTERNAL_FAILURE;
        return NULL;
    }
    memcpy(c, p, len);
    return c;
}

/* Allocates len bytes in the guest through its allocator, copies data
 * there and writes the pointer and size to ptr_out / size_out. Empty data
 * is returned as pointer 0, size 0 without calling the allocator. Returns a
 * status, or -1 when the allocator trapped (message in vm->trapbuf). */
static int ret_bytes(struct pw_vm *vm, const void *data, size_t len, uint32_t ptr_out,
                     uint32_t size_out)
{
    if (gmem(vm, ptr_out, 4) == NULL || gmem(vm, size_out, 4) == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    if (len > PW_MAX_COPY)
        return PW_INTERNAL_FAILURE;
    uint32_t p = 0;
    if (len > 0) {
        if (vm->alloc == NULL)
            return PW_INTERNAL_FAILURE;
        struct wasm_val arg = {WASM_I32, {.u32 = (uint32_t)len}}, res[1];
        struct wasm_error err;
        /* Nested call: the instance is inside a host call (depth > 0), so
         * the runtime keeps spending the callback's fuel. */
        if (wasm_call(vm->inst, vm->alloc, &arg, 1, res, &err) != WASM_OK) {
            snprintf(vm->trapbuf, sizeof(vm->trapbuf), "memory allocator: %.200s", err.msg);
            return -1;
        }
        p = res[0].of.u32;
        if (p == 0)
            return PW_INTERNAL_FAILURE;
        uint8_t *dst = gmem(vm, p, (uint32_t)len); /* re-fetched: memory may have grown */
        if (dst == NULL)
            return PW_INVALID_MEMORY_ACCESS;
        memcpy(dst, data, len);
    }
    if (put_u32(vm, ptr_out, p) || put_u32(vm, size_out, (uint32_t)len))
        return PW_INVALID_MEMORY_ACCESS;
    return PW_OK;
}

/* --- header maps --- */

/* A host-side list of pairs with copied bytes. */
struct kvlist {
    struct pw_kv *kv;
    size_t n, cap;
    bool oom;
};

static void kvlist_free(struct kvlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->kv[i].key); /* key and value share one block */
    free(l->kv);
}

static int kvlist_add(void *arg, const struct pw_kv *kv)
{
    struct kvlist *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct pw_kv *nk = realloc(l->kv, cap * sizeof(*nk));
        if (nk == NULL) {
            l->oom = true;
            return 1;
        }
        l->kv = nk;
        l->cap = cap;
    }
    char *b = malloc(kv->key_len + kv->value_len + 2);
    if (b == NULL) {
        l->oom = true;
        return 1;
    }
    memcpy(b, kv->key, kv->key_len);
    b[kv->key_len] = 0;
    memcpy(b + kv->key_len + 1, kv->value, kv->value_len);
    b[kv->key_len + 1 + kv->value_len] = 0;
    l->kv[l->n++] = (struct pw_kv){b, kv->key_len, b + kv->key_len + 1, kv->value_len};
    return 0;
}

static bool map_known(uint32_t map)
{
    return map <= PW_MAP_HTTP_CALL_RESPONSE_TRAILERS;
}

/* Walks map `map` of the effective context; a status. */
static int map_each(struct pw_vm *vm, uint32_t map, pw_kv_fn fn, void *arg)
{
    if (!map_known(map))
        return PW_BAD_ARGUMENT;
    if (map == PW_MAP_HTTP_CALL_RESPONSE_HEADERS || map == PW_MAP_HTTP_CALL_RESPONSE_TRAILERS) {
        const struct pw_call_resp *cr = vm->call_resp;
        if (cr == NULL)
            return PW_NOT_FOUND;
        const struct pw_kv *kv = map == PW_MAP_HTTP_CALL_RESPONSE_HEADERS ? cr->headers : cr->trailers;
        size_t n = map == PW_MAP_HTTP_CALL_RESPONSE_HEADERS ? cr->nheaders : cr->ntrailers;
        for (size_t i = 0; i < n; i++)
            if (fn(arg, &kv[i]))
                break;
        return PW_OK;
    }
    if (map == PW_MAP_GRPC_INITIAL_METADATA || map == PW_MAP_GRPC_TRAILING_METADATA) {
        const struct pw_grpc_resp *gr = vm->grpc_resp;
        if (gr == NULL || gr->map != (int)map)
            return PW_NOT_FOUND; /* served only during its own callback */
        for (size_t i = 0; i < gr->nmd; i++)
            if (fn(arg, &gr->md[i]))
                break;
        return PW_OK;
    }
    if (vm->cur == NULL && map <= PW_MAP_RESPONSE_TRAILERS)
        return PW_NOT_FOUND; /* the root context has no stream */
    if (vm->ops->map_each == NULL)
        return PW_NOT_FOUND;
    return vm->ops->map_each(pw_cur_user(vm), (int)map, fn, arg);
}

/* Collects map into l (caller frees l); a status. */
static int map_collect(struct pw_vm *vm, uint32_t map, struct kvlist *l)
{
    memset(l, 0, sizeof(*l));
    int st = map_each(vm, map, kvlist_add, l);
    if (st == PW_OK && l->oom)
        st = PW_INTERNAL_FAILURE;
    return st;
}

/* The ABI serialization of l into a new malloc'd block (*out, *len). */
static int map_serialize(const struct pw_kv *kv, size_t n, uint8_t **out, size_t *len)
{
    size_t size = 4 + 8 * n;
    for (size_t i = 0; i < n; i++)
        size += kv[i].key_len + kv[i].value_len + 2;
    uint8_t *b = malloc(size);
    if (b == NULL)
        return -1;
    uint8_t *p = b;
#define PUT32(v)                                                                               \
    do {                                                                                       \
        uint32_t v_ = (uint32_t)(v);                                                           \
        p[0] = (uint8_t)v_, p[1] = (uint8_t)(v_ >> 8), p[2] = (uint8_t)(v_ >> 16),             \
        p[3] = (uint8_t)(v_ >> 24);                                                            \
        p += 4;                                                                                \
    } while (0)
    PUT32(n);
    for (size_t i = 0; i < n; i++) {
        PUT32(kv[i].key_len);
        PUT32(kv[i].value_len);
    }
#undef PUT32
    for (size_t i = 0; i < n; i++) {
        memcpy(p, kv[i].key, kv[i].key_len);
        p += kv[i].key_len;
        *p++ = 0;
        memcpy(p, kv[i].value, kv[i].value_len);
        p += kv[i].value_len;
        *p++ = 0;
    }
    *out = b;
    *len = size;
    return 0;
}

/* Parses a serialized map held in d[0..n) (a host copy the result points
 * into) into a new array *kv (caller frees; NULL when empty). An empty map
 * may be size 0, a single 0 byte, or count 0. 0 or -1 when malformed. */
static int map_parse(const uint8_t *d, size_t n, struct pw_kv **kv, size_t *count)
{
    *kv = NULL;
    *count = 0;
    if (n == 0 || (n == 1 && d[0] == 0))
        return 0;
    if (n < 4)
        return -1;
    uint32_t c = get_u32(d);
    if (c == 0)
        return 0;
    if ((uint64_t)c * 8 > n - 4)
        return -1;
    struct pw_kv *out = calloc(c, sizeof(*out));
    if (out == NULL)
        return -1;
    size_t pos = 4 + (size_t)c * 8;
    for (uint32_t i = 0; i < c; i++) {
        uint32_t kl = get_u32(d + 4 + 8 * (size_t)i), vl = get_u32(d + 8 + 8 * (size_t)i);
        if ((uint64_t)kl + vl + 2 > n - pos || d[pos + kl] != 0 || d[pos + kl + 1 + vl] != 0) {
            free(out);
            return -1;
        }
        out[i] = (struct pw_kv){(const char *)d + pos, kl, (const char *)d + pos + kl + 1, vl};
        pos += (size_t)kl + vl + 2;
    }
    *kv = out;
    *count = c;
    return 0;
}

/* Reads and parses a serialized map from guest memory; *copy holds the
 * bytes the pairs point into. Both are the caller's. A status. */
static int gmap(struct pw_vm *vm, uint32_t addr, uint32_t len, uint8_t **copy, struct pw_kv **kv,
                size_t *n)
{
    int st = PW_OK;
    *kv = NULL;
    *n = 0;
    if ((*copy = gcopy(vm, addr, len, &st)) == NULL)
        return st;
    if (map_parse(*copy, len, kv, n) != 0)
        return PW_BAD_ARGUMENT;
    return PW_OK;
}

struct finder {
    const char *key;
    size_t key_len;
    uint8_t *value; /* malloc'd copy once found */
    size_t value_len;
    bool found, oom;
};

static int find_fn(void *arg, const struct pw_kv *kv)
{
    struct finder *f = arg;
    if (kv->key_len != f->key_len || strncasecmp(kv->key, f->key, f->key_len) != 0)
        return 0;
    f->found = true;
    f->value = malloc(kv->value_len ? kv->value_len : 1);
    if (f->value == NULL)
        f->oom = true;
    else
        memcpy(f->value, kv->value, kv->value_len);
    f->value_len = kv->value_len;
    return 1;
}

HOSTFN(h_get_header_map_size)
{
    struct pw_vm *vm = user;
    struct kvlist l;
    int st = map_collect(vm, ARG(0), &l);
    if (st == PW_OK) {
        size_t size = 4 + 8 * l.n;
        for (size_t i = 0; i < l.n; i++)
            size += l.kv[i].key_len + l.kv[i].value_len + 2;
        if (put_u32(vm, ARG(1), (uint32_t)size))
            st = PW_INVALID_MEMORY_ACCESS;
    }
    kvlist_free(&l);
    RET(st);
}

HOSTFN(h_get_header_map_pairs)
{
    struct pw_vm *vm = user;
    struct kvlist l;
    int st = map_collect(vm, ARG(0), &l);
    if (st == PW_OK) {
        uint8_t *b;
        size_t len;
        if (map_serialize(l.kv, l.n, &b, &len) != 0) {
            st = PW_INTERNAL_FAILURE;
        } else {
            st = ret_bytes(vm, b, len, ARG(1), ARG(2));
            free(b);
        }
    }
    kvlist_free(&l);
    RET(st);
}

/* The stream maps are writable in a stream context only. */
static int map_writable(struct pw_vm *vm, uint32_t map)
{
    if (!map_known(map) || map > PW_MAP_RESPONSE_TRAILERS)
        return PW_BAD_ARGUMENT;
    if (vm->cur == NULL)
        return PW_NOT_FOUND;
    return PW_OK;
}

HOSTFN(h_set_header_map_pairs)
{
    struct pw_vm *vm = user;
    int st = map_writable(vm, ARG(0));
    uint8_t *copy = NULL;
    struct pw_kv *kv = NULL;
    size_t n = 0;
    if (st == PW_OK)
        st = gmap(vm, ARG(1), ARG(2), &copy, &kv, &n);
    if (st == PW_OK)
        st = vm->ops->map_set ? vm->ops->map_set(pw_cur_user(vm), (int)ARG(0), kv, n)
                              : PW_UNIMPLEMENTED;
    free(copy);
    free(kv);
    RET(st);
}

HOSTFN(h_get_header_map_value)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    struct finder f = {0};
    char *key = (char *)gcopy(vm, ARG(1), ARG(2), &st);
    if (key != NULL) {
        f.key = key;
        f.key_len = ARG(2);
        st = map_each(vm, ARG(0), find_fn, &f);
        if (st == PW_OK && f.oom)
            st = PW_INTERNAL_FAILURE;
        else if (st == PW_OK && !f.found)
            st = PW_NOT_FOUND;
        else if (st == PW_OK)
            st = ret_bytes(vm, f.value, f.value_len, ARG(3), ARG(4));
    }
    free(key);
    free(f.value);
    RET(st);
}

/* add (kind 'a') or replace ('r') a value. */
static int map_put(struct pw_vm *vm, const struct wasm_val *a, char kind)
{
    int st = map_writable(vm, ARG(0));
    if (st != PW_OK)
        return st;
    uint8_t *k = gcopy(vm, ARG(1), ARG(2), &st), *v = k ? gcopy(vm, ARG(3), ARG(4), &st) : NULL;
    if (v != NULL) {
        struct pw_kv kv = {(const char *)k, ARG(2), (const char *)v, ARG(4)};
        int (*op)(void *, int, const struct pw_kv *) =
            kind == 'a' ? vm->ops->map_add : vm->ops->map_replace;
        st = op ? op(pw_cur_user(vm), (int)ARG(0), &kv) : PW_UNIMPLEMENTED;
    }
    free(k);
    free(v);
    return st;
}

HOSTFN(h_add_header_map_value)
{
    struct pw_vm *vm = user;
    RET(map_put(vm, a, 'a'));
}

HOSTFN(h_replace_header_map_value)
{
    struct pw_vm *vm = user;
    RET(map_put(vm, a, 'r'));
}

HOSTFN(h_remove_header_map_value)
{
    struct pw_vm *vm = user;
    int st = map_writable(vm, ARG(0));
    uint8_t *k = st == PW_OK ? gcopy(vm, ARG(1), ARG(2), &st) : NULL;
    if (k != NULL)
        st = vm->ops->map_remove ? vm->ops->map_remove(pw_cur_user(vm), (int)ARG(0),
                                                       (const char *)k, ARG(2))
                                 : PW_UNIMPLEMENTED;
    free(k);
    RET(st);
}

/* --- buffers --- */

/* A borrowed view of buffer `type`; a status. */
static int buffer_view(struct pw_vm *vm, uint32_t type, const uint8_t **d, size_t *len)
{
    static const uint8_t none;
    *d = &none;
    *len = 0;
    switch (type) {
    case PW_BUFFER_VM_CONFIGURATION:
        return PW_OK;
    case PW_BUFFER_PLUGIN_CONFIGURATION:
        *d = vm->plugin->cfg;
        *len = vm->plugin->cfg_len;
        return PW_OK;
    case PW_BUFFER_HTTP_CALL_RESPONSE_BODY:
        if (vm->call_resp == NULL)
            return PW_NOT_FOUND;
        *d = vm->call_resp->body ? vm->call_resp->body : &none;
        *len = vm->call_resp->body_len;
        return PW_OK;
    case PW_BUFFER_GRPC_CALL_MESSAGE:
        if (vm->grpc_resp == NULL || vm->grpc_resp->msg == NULL)
            return PW_NOT_FOUND;
        *d = vm->grpc_resp->msg;
        *len = vm->grpc_resp->msg_len;
        return PW_OK;
    case PW_BUFFER_FOREIGN_FUNCTION_ARGUMENTS:
        return PW_NOT_FOUND;
    case PW_BUFFER_REQUEST_BODY:
    case PW_BUFFER_RESPONSE_BODY:
    case PW_BUFFER_DOWNSTREAM_DATA:
    case PW_BUFFER_UPSTREAM_DATA:
        if (vm->cur == NULL || vm->ops->buffer_get == NULL)
            return PW_NOT_FOUND;
        return vm->ops->buffer_get(pw_cur_user(vm), (int)type, d, len);
    default:
        return PW_BAD_ARGUMENT;
    }
}

HOSTFN(h_get_buffer_bytes)
{
    struct pw_vm *vm = user;
    const uint8_t *d;
    size_t len;
    int st = buffer_view(vm, ARG(0), &d, &len);
    if (st == PW_OK) {
        uint32_t start = ARG(1), max = ARG(2);
        if (start > len) {
            st = PW_BAD_ARGUMENT;
        } else {
            size_t n = len - start < max ? len - start : max;
            /* a copy: the allocator runs guest code before we copy out */
            uint8_t *c = malloc(n ? n : 1);
            if (c == NULL) {
                st = PW_INTERNAL_FAILURE;
            } else {
                if (n)
                    memcpy(c, d + start, n);
                st = ret_bytes(vm, c, n, ARG(3), ARG(4));
                free(c);
            }
        }
    }
    RET(st);
}

HOSTFN(h_get_buffer_status)
{
    struct pw_vm *vm = user;
    const uint8_t *d;
    size_t len;
    int st = buffer_view(vm, ARG(0), &d, &len);
    if (st == PW_OK && (put_u32(vm, ARG(1), (uint32_t)len) || put_u32(vm, ARG(2), 0)))
        st = PW_INVALID_MEMORY_ACCESS;
    RET(st);
}

HOSTFN(h_set_buffer_bytes)
{
    struct pw_vm *vm = user;
    uint32_t type = ARG(0);
    int st = PW_OK;
    if (type > PW_BUFFER_FOREIGN_FUNCTION_ARGUMENTS)
        RET(PW_BAD_ARGUMENT);
    if (type > PW_BUFFER_UPSTREAM_DATA || vm->cur == NULL)
        RET(PW_NOT_FOUND); /* read-only, or no stream */
    uint8_t *v = gcopy(vm, ARG(3), ARG(4), &st);
    if (v != NULL)
        st = vm->ops->buffer_set
                 ? vm->ops->buffer_set(pw_cur_user(vm), (int)type, ARG(1), ARG(2), v, ARG(4))
                 : PW_UNIMPLEMENTED;
    free(v);
    RET(st);
}

/* --- logging, time, timers --- */

static void do_log(struct pw_vm *vm, int level, const char *msg, size_t len)
{
    if (vm->ops->log)
        vm->ops->log(pw_cur_user(vm), level, msg, len);
}

HOSTFN(h_log)
{
    struct pw_vm *vm = user;
    if (ARG(0) > PW_LOG_CRITICAL)
        RET(PW_BAD_ARGUMENT);
    int st = PW_OK;
    char *m = (char *)gcopy(vm, ARG(1), ARG(2), &st);
    if (m != NULL)
        do_log(vm, (int)ARG(0), m, ARG(2));
    free(m);
    RET(st);
}

HOSTFN(h_get_log_level)
{
    struct pw_vm *vm = user;
    RET(put_u32(vm, ARG(0), (uint32_t)vm->opts.log_level) ? PW_INVALID_MEMORY_ACCESS : PW_OK);
}

static uint64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

HOSTFN(h_get_current_time)
{
    struct pw_vm *vm = user;
    RET(put_u64(vm, ARG(0), now_ns(CLOCK_REALTIME)) ? PW_INVALID_MEMORY_ACCESS : PW_OK);
}

HOSTFN(h_set_tick_period)
{
    struct pw_vm *vm = user;
    if (vm->ops->set_tick_period)
        vm->ops->set_tick_period(vm->user, ARG(0));
    RET(PW_OK);
}

/* --- context lifecycle --- */

HOSTFN(h_done)
{
    struct pw_vm *vm = user;
    if (vm->cur == NULL || vm->cur->state != CTX_DONE_PENDING)
        RET(PW_NOT_FOUND);
    if (!vm->cur->finalize)
        vm->nfinalize++;
    vm->cur->finalize = true; /* proxy_on_log/delete run once the callback returns */
    RET(PW_OK);
}

HOSTFN(h_set_effective_context)
{
    struct pw_vm *vm = user;
    if (ARG(0) == vm->root_id) {
        vm->cur = NULL;
        RET(PW_OK);
    }
    struct pw_ctx *c = pw_find_ctx(vm, ARG(0));
    if (c == NULL)
        RET(PW_BAD_ARGUMENT);
    vm->cur = c;
    RET(PW_OK);
}

/* --- stream control --- */

static int stream_op(struct pw_vm *vm, uint32_t stream, int (*op)(void *, int))
{
    if (stream > PW_STREAM_UPSTREAM)
        return PW_BAD_ARGUMENT;
    if (vm->cur == NULL)
        return PW_NOT_FOUND;
    return op ? op(pw_cur_user(vm), (int)stream) : PW_UNIMPLEMENTED;
}

HOSTFN(h_continue_stream)
{
    struct pw_vm *vm = user;
    RET(stream_op(vm, ARG(0), vm->ops->continue_stream));
}

HOSTFN(h_close_stream)
{
    struct pw_vm *vm = user;
    RET(stream_op(vm, ARG(0), vm->ops->close_stream));
}

HOSTFN(h_get_status)
{
    struct pw_vm *vm = user;
    const struct pw_grpc_resp *gr = vm->grpc_resp;
    if (gr != NULL && gr->closing) {
        if (put_u32(vm, ARG(0), gr->status))
            RET(PW_INVALID_MEMORY_ACCESS);
        RET(ret_bytes(vm, gr->text, gr->text_len, ARG(1), ARG(2)));
    }
    if (vm->call_resp == NULL)
        RET(PW_NOT_FOUND);
    uint32_t code = 0;
    for (size_t i = 0; i < vm->call_resp->nheaders; i++) {
        const struct pw_kv *kv = &vm->call_resp->headers[i];
        if (kv->key_len == 7 && memcmp(kv->key, ":status", 7) == 0) {
            for (size_t j = 0; j < kv->value_len && j < 3; j++)
                if (kv->value[j] >= '0' && kv->value[j] <= '9')
                    code = code * 10 + (uint32_t)(kv->value[j] - '0');
            break;
        }
    }
    if (put_u32(vm, ARG(0), code))
        RET(PW_INVALID_MEMORY_ACCESS);
    RET(ret_bytes(vm, "", 0, ARG(1), ARG(2)));
}

HOSTFN(h_send_local_response)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint8_t *details = gcopy(vm, ARG(1), ARG(2), &st);
    uint8_t *body = details ? gcopy(vm, ARG(3), ARG(4), &st) : NULL;
    uint8_t *hcopy = NULL;
    struct pw_kv *kv = NULL;
    size_t n = 0;
    if (body != NULL)
        st = gmap(vm, ARG(5), ARG(6), &hcopy, &kv, &n);
    if (body != NULL && st == PW_OK) {
        if (vm->cur == NULL || vm->cur->kind != PW_CTX_HTTP) {
            st = PW_NOT_FOUND;
        } else if (vm->ops->send_local_response == NULL) {
            st = PW_UNIMPLEMENTED;
        } else {
            struct pw_local_response lr = {
                .status = ARG(0), .details = (const char *)details, .details_len = ARG(2),
                .body = body, .body_len = ARG(4), .headers = kv, .nheaders = n,
                .grpc_status = ARG(7) == 0xFFFFFFFFu ? -1 : (int64_t)ARG(7)};
            st = vm->ops->send_local_response(pw_cur_user(vm), &lr);
        }
    }
    free(details);
    free(body);
    free(hcopy);
    free(kv);
    RET(st);
}

/* --- HTTP calls --- */

static bool has_key(const struct pw_kv *kv, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (kv[i].key_len == kl && memcmp(kv[i].key, key, kl) == 0 && kv[i].value_len > 0)
            return true;
    return false;
}

HOSTFN(h_http_call)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint8_t *up = NULL, *hc = NULL, *body = NULL, *tc = NULL;
    struct pw_kv *h = NULL, *t = NULL;
    size_t nh = 0, nt = 0;
    if (gmem(vm, ARG(9), 4) == NULL) {
        st = PW_INVALID_MEMORY_ACCESS;
        goto out;
    }
    if ((up = gcopy(vm, ARG(0), ARG(1), &st)) == NULL ||
        (st = gmap(vm, ARG(2), ARG(3), &hc, &h, &nh)) != PW_OK ||
        (body = gcopy(vm, ARG(4), ARG(5), &st)) == NULL ||
        (st = gmap(vm, ARG(6), ARG(7), &tc, &t, &nt)) != PW_OK)
        goto out;
    if (!has_key(h, nh, ":method") || !has_key(h, nh, ":path") ||
        !has_key(h, nh, ":authority")) {
        st = PW_BAD_ARGUMENT;
        goto out;
    }
    if (vm->ops->http_call == NULL) {
        st = PW_UNIMPLEMENTED;
        goto out;
    }
    struct pw_http_call call = {(const char *)up, ARG(1), h, nh, body, ARG(5), t, nt, ARG(8)};
    uint32_t token = 0;
    st = vm->ops->http_call(pw_cur_user(vm), &call, &token);
    if (st == PW_OK && put_u32(vm, ARG(9), token))
        st = PW_INVALID_MEMORY_ACCESS;
out:
    free(up);
    free(hc);
    free(h);
    free(body);
    free(tc);
    free(t);
    RET(st);
}

/* --- gRPC calls and streams --- */

/* Reads a protobuf varint from *p (before end) into *v; -1 when cut or
 * longer than 10 bytes. */
static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* The bytes of length-delimited field `field` in the protobuf message
 * [p, end) (pointing into it), skipping the other fields; -1 when absent
 * or malformed. */
static int pb_bytes(const uint8_t *p, const uint8_t *end, uint64_t field, const uint8_t **out,
                    size_t *len)
{
    while (p < end) {
        uint64_t key, n = 0;
        if (pb_varint(&p, end, &key) != 0)
            return -1;
        int wt = (int)(key & 7);
        if (wt == 1)
            n = 8;
        else if (wt == 5)
            n = 4;
        else if (wt != 0 && wt != 2)
            return -1; /* groups: not in a GrpcService */
        if ((wt == 0 || wt == 2) && pb_varint(&p, end, &n) != 0)
            return -1;
        if (wt == 0)
            n = 0; /* the varint was the value */
        if (n > (uint64_t)(end - p))
            return -1;
        if ((key & 7) == 2 && key >> 3 == field) {
            *out = p;
            *len = (size_t)n;
            return 0;
        }
        p += n;
    }
    return -1;
}

/* The cluster a filter names as its gRPC upstream: Envoy takes a
 * serialized GrpcService there (SDK filters written for Envoy pass one),
 * other hosts a plain name. A GrpcService starts with field 1, envoy_grpc
 * (0x0a), whose field 1 is cluster_name; anything else is a name as is. */
static void grpc_upstream(const uint8_t *up, size_t len, const char **name, size_t *nlen)
{
    const uint8_t *eg, *cn;
    size_t egl, cnl;
    *name = (const char *)up;
    *nlen = len;
    if (len > 0 && up[0] == 0x0a && pb_bytes(up, up + len, 1, &eg, &egl) == 0 &&
        pb_bytes(eg, eg + egl, 1, &cn, &cnl) == 0 && cnl > 0) {
        *name = (const char *)cn;
        *nlen = cnl;
    }
}

/* proxy_grpc_call (stream false) and proxy_grpc_stream: the arguments up
 * to the metadata are the same; then the call has message, timeout and
 * token pointer, the stream only the token pointer. A status. */
static int grpc_open(struct pw_vm *vm, const struct wasm_val *a, bool stream)
{
    uint32_t token_ptr = stream ? ARG(8) : ARG(11);
    uint8_t *up = NULL, *svc = NULL, *meth = NULL, *mc = NULL, *msg = NULL;
    struct pw_kv *md = NULL;
    size_t nmd = 0;
    int st = PW_OK;
    if (gmem(vm, token_ptr, 4) == NULL) {
        st = PW_INVALID_MEMORY_ACCESS;
        goto out;
    }
    if ((up = gcopy(vm, ARG(0), ARG(1), &st)) == NULL ||
        (svc = gcopy(vm, ARG(2), ARG(3), &st)) == NULL ||
        (meth = gcopy(vm, ARG(4), ARG(5), &st)) == NULL ||
        (st = gmap(vm, ARG(6), ARG(7), &mc, &md, &nmd)) != PW_OK ||
        (!stream && (msg = gcopy(vm, ARG(8), ARG(9), &st)) == NULL))
        goto out;
    struct pw_grpc_call call = {.service = (const char *)svc, .service_len = ARG(3),
                                .method = (const char *)meth, .method_len = ARG(5),
                                .metadata = md, .nmetadata = nmd, .stream = stream,
                                .message = msg, .message_len = stream ? 0 : ARG(9),
                                .timeout_ms = stream ? 0 : ARG(10)};
    grpc_upstream(up, ARG(1), &call.cluster, &call.cluster_len);
    if (call.cluster_len == 0) {
        st = PW_PARSE_FAILURE;
        goto out;
    }
    if (call.service_len == 0 || call.method_len == 0) {
        st = PW_BAD_ARGUMENT;
        goto out;
    }
    if (vm->ops->grpc_call == NULL) {
        st = PW_UNIMPLEMENTED;
        goto out;
    }
    uint32_t token = 0;
    st = vm->ops->grpc_call(pw_cur_user(vm), &call, &token);
    if (st == PW_OK && put_u32(vm, token_ptr, token))
        st = PW_INVALID_MEMORY_ACCESS;
out:
    free(up);
    free(svc);
    free(meth);
    free(mc);
    free(md);
    free(msg);
    return st;
}

HOSTFN(h_grpc_call)
{
    struct pw_vm *vm = user;
    RET(grpc_open(vm, a, false));
}

HOSTFN(h_grpc_stream)
{
    struct pw_vm *vm = user;
    RET(grpc_open(vm, a, true));
}

HOSTFN(h_grpc_send)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint8_t *msg = gcopy(vm, ARG(1), ARG(2), &st);
    if (msg != NULL)
        st = vm->ops->grpc_send ? vm->ops->grpc_send(pw_cur_user(vm), ARG(0), msg, ARG(2),
                                                     ARG(3) != 0)
                                : PW_UNIMPLEMENTED;
    free(msg);
    RET(st);
}

/* proxy_grpc_cancel and proxy_grpc_close. */
static int grpc_end(struct pw_vm *vm, uint32_t token, bool close)
{
    if (token == 0)
        return PW_BAD_ARGUMENT; /* never a token */
    if (vm->ops->grpc_cancel == NULL)
        return PW_UNIMPLEMENTED;
    return vm->ops->grpc_cancel(pw_cur_user(vm), token, close);
}

HOSTFN(h_grpc_cancel)
{
    struct pw_vm *vm = user;
    RET(grpc_end(vm, ARG(0), false));
}

HOSTFN(h_grpc_close)
{
    struct pw_vm *vm = user;
    RET(grpc_end(vm, ARG(0), true));
}

/* Foreign functions are not offered: the import exists so SDK-built
 * modules link, and every name is unknown. */
HOSTFN(h_call_foreign_function)
{
    struct pw_vm *vm = user;
    RET(PW_NOT_FOUND);
}

/* --- shared data --- */

HOSTFN(h_get_shared_data)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint8_t *k = gcopy(vm, ARG(0), ARG(1), &st), *v = NULL;
    size_t len = 0;
    uint32_t cas = 0;
    if (k != NULL && gmem(vm, ARG(4), 4) == NULL)
        st = PW_INVALID_MEMORY_ACCESS;
    else if (k != NULL && (st = pw_shared_get((const char *)k, ARG(1), &v, &len, &cas)) == PW_OK)
        st = ret_bytes(vm, v, len, ARG(2), ARG(3));
    if (st == PW_OK && put_u32(vm, ARG(4), cas))
        st = PW_INVALID_MEMORY_ACCESS;
    free(k);
    free(v);
    RET(st);
}

HOSTFN(h_set_shared_data)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint8_t *k = gcopy(vm, ARG(0), ARG(1), &st), *v = k ? gcopy(vm, ARG(2), ARG(3), &st) : NULL;
    if (v != NULL)
        st = pw_shared_set((const char *)k, ARG(1), v, ARG(3), ARG(4));
    free(k);
    free(v);
    RET(st);
}

/* --- shared queues (pw_queue.c) --- */

/* A queue id found or made with status st, written to guest address out. */
static int put_queue_id(struct pw_vm *vm, int st, uint32_t id, uint32_t out)
{
    if (st == PW_OK && put_u32(vm, out, id))
        return PW_INVALID_MEMORY_ACCESS;
    return st;
}

HOSTFN(h_register_shared_queue)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint32_t id = 0;
    char *name = (char *)gcopy(vm, ARG(0), ARG(1), &st);
    if (name != NULL)
        st = pw_queue_register(vm, name, ARG(1), &id);
    free(name);
    RET(put_queue_id(vm, st, id, ARG(2)));
}

HOSTFN(h_resolve_shared_queue)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint32_t id = 0;
    char *vm_id = (char *)gcopy(vm, ARG(0), ARG(1), &st);
    char *name = vm_id ? (char *)gcopy(vm, ARG(2), ARG(3), &st) : NULL;
    if (name != NULL)
        st = pw_queue_resolve(vm_id, ARG(1), name, ARG(3), &id);
    free(vm_id);
    free(name);
    RET(put_queue_id(vm, st, id, ARG(4)));
}

HOSTFN(h_enqueue_shared_queue)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint8_t *v = gcopy(vm, ARG(1), ARG(2), &st);
    if (v != NULL)
        st = pw_queue_enqueue(ARG(0), v, ARG(2));
    if (st == PW_INTERNAL_FAILURE && vm->ops->queue_full)
        vm->ops->queue_full(pw_cur_user(vm), ARG(0));
    free(v);
    RET(st);
}

HOSTFN(h_dequeue_shared_queue)
{
    struct pw_vm *vm = user;
    uint8_t *v = NULL;
    size_t len = 0;
    /* Checked first: an item popped for a bad pointer would be lost. */
    if (gmem(vm, ARG(1), 4) == NULL || gmem(vm, ARG(2), 4) == NULL)
        RET(PW_INVALID_MEMORY_ACCESS);
    int st = pw_queue_dequeue(ARG(0), &v, &len);
    if (st == PW_OK)
        st = ret_bytes(vm, v, len, ARG(1), ARG(2));
    free(v);
    RET(st);
}

/* --- metrics --- */

static struct pw_metric_def *metric_find(struct pw_vm *vm, uint32_t id)
{
    for (size_t i = 0; i < vm->nmetrics; i++)
        if (vm->metrics[i].id == id)
            return &vm->metrics[i];
    return NULL;
}

HOSTFN(h_define_metric)
{
    struct pw_vm *vm = user;
    if (ARG(0) > PW_METRIC_HISTOGRAM)
        RET(PW_BAD_ARGUMENT);
    int st = PW_OK;
    char *name = (char *)gcopy(vm, ARG(1), ARG(2), &st);
    uint32_t id = 0;
    if (name != NULL && gmem(vm, ARG(3), 4) == NULL)
        st = PW_INVALID_MEMORY_ACCESS;
    else if (name != NULL)
        st = vm->ops->metric_define
                 ? vm->ops->metric_define(pw_cur_user(vm), (int)ARG(0), name, ARG(2), &id)
                 : PW_UNIMPLEMENTED;
    free(name);
    if (st == PW_OK && metric_find(vm, id) == NULL) {
        if (vm->nmetrics == vm->cap_metrics) {
            size_t cap = vm->cap_metrics ? vm->cap_metrics * 2 : 8;
            struct pw_metric_def *m = realloc(vm->metrics, cap * sizeof(*m));
            if (m == NULL)
                RET(PW_INTERNAL_FAILURE);
            vm->metrics = m;
            vm->cap_metrics = cap;
        }
        vm->metrics[vm->nmetrics++] = (struct pw_metric_def){id, (int)ARG(0)};
    }
    if (st == PW_OK)
        put_u32(vm, ARG(3), id);
    RET(st);
}

HOSTFN(h_increment_metric)
{
    struct pw_vm *vm = user;
    struct pw_metric_def *m = metric_find(vm, ARG(0));
    if (m == NULL)
        RET(PW_NOT_FOUND);
    if (m->type == PW_METRIC_COUNTER && a[1].of.i64 < 0)
        RET(PW_BAD_ARGUMENT);
    RET(vm->ops->metric_increment
            ? vm->ops->metric_increment(pw_cur_user(vm), m->id, a[1].of.i64)
            : PW_UNIMPLEMENTED);
}

HOSTFN(h_record_metric)
{
    struct pw_vm *vm = user;
    struct pw_metric_def *m = metric_find(vm, ARG(0));
    if (m == NULL)
        RET(PW_NOT_FOUND);
    RET(vm->ops->metric_record ? vm->ops->metric_record(pw_cur_user(vm), m->id, a[1].of.u64)
                               : PW_UNIMPLEMENTED);
}

HOSTFN(h_get_metric)
{
    struct pw_vm *vm = user;
    struct pw_metric_def *m = metric_find(vm, ARG(0));
    if (m == NULL)
        RET(PW_NOT_FOUND);
    if (gmem(vm, ARG(1), 8) == NULL)
        RET(PW_INVALID_MEMORY_ACCESS);
    uint64_t v = 0;
    int st = vm->ops->metric_get ? vm->ops->metric_get(pw_cur_user(vm), m->id, &v)
                                 : PW_UNIMPLEMENTED;
    if (st == PW_OK)
        put_u64(vm, ARG(1), v);
    RET(st);
}

/* --- properties --- */

HOSTFN(h_get_property)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint32_t plen = ARG(1);
    char *path = (char *)gcopy(vm, ARG(0), plen, &st);
    if (path == NULL)
        RET(st);
    while (plen > 0 && path[plen - 1] == 0)
        plen--; /* some SDKs end the path with a NUL */
    const uint8_t *v = NULL;
    size_t vl = 0;
    uint8_t *copy = NULL;
    const char *name = vm->plugin->name;
    if ((plen == 11 && memcmp(path, "plugin_name", 11) == 0) ||
        (plen == 14 && memcmp(path, "plugin_root_id", 14) == 0)) {
        v = (const uint8_t *)name;
        vl = strlen(name);
    } else if (plen == 12 && memcmp(path, "plugin_vm_id", 12) == 0) {
        v = (const uint8_t *)"";
    } else if (vm->ops->property_get == NULL) {
        st = PW_NOT_FOUND;
    } else {
        st = vm->ops->property_get(pw_cur_user(vm), path, plen, &v, &vl);
    }
    if (st == PW_OK && vl > 0 && (copy = malloc(vl)) == NULL)
        st = PW_INTERNAL_FAILURE;
    if (st == PW_OK) {
        if (vl)
            memcpy(copy, v, vl);
        st = ret_bytes(vm, copy, vl, ARG(2), ARG(3));
    }
    free(copy);
    free(path);
    RET(st);
}

HOSTFN(h_set_property)
{
    struct pw_vm *vm = user;
    int st = PW_OK;
    uint8_t *p = gcopy(vm, ARG(0), ARG(1), &st), *v = p ? gcopy(vm, ARG(2), ARG(3), &st) : NULL;
    if (v != NULL)
        st = vm->ops->property_set
                 ? vm->ops->property_set(pw_cur_user(vm), (const char *)p, ARG(1), v, ARG(3))
                 : PW_NOT_FOUND;
    free(p);
    free(v);
    RET(st);
}

/* --- WASI --- */

#define WRET(e)                                                                                \
    do {                                                                                       \
        r[0].type = WASM_I32;                                                                  \
        r[0].of.u32 = (uint32_t)(e);                                                           \
        return NULL;                                                                           \
    } while (0)

/* fd_write: stdout logs at INFO, stderr at ERROR (one line per call, a
 * trailing newline dropped). */
HOSTFN(w_fd_write)
{
    struct pw_vm *vm = user;
    uint32_t fd = ARG(0), iovs = ARG(1), n = ARG(2);
    if (fd != 1 && fd != 2)
        WRET(WASI_BADF);
    if (n > 1024 || gmem(vm, iovs, n * 8) == NULL || gmem(vm, ARG(3), 4) == NULL)
        WRET(WASI_FAULT);
    size_t total = 0;
    char *buf = NULL;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *iov = gmem(vm, iovs + 8 * i, 8);
        uint32_t p = get_u32(iov), len = get_u32(iov + 4);
        const uint8_t *d = gmem(vm, p, len);
        if (d == NULL || total + len > PW_MAX_COPY) {
            free(buf);
            WRET(WASI_FAULT);
        }
        char *nb = realloc(buf, total + len + 1);
        if (nb == NULL) {
            free(buf);
            WRET(WASI_FAULT);
        }
        buf = nb;
        memcpy(buf + total, d, len);
        total += len;
    }
    size_t shown = total;
    while (shown > 0 && (buf[shown - 1] == '\n' || buf[shown - 1] == '\r'))
        shown--;
    if (shown > 0)
        do_log(vm, fd == 1 ? PW_LOG_INFO : PW_LOG_ERROR, buf, shown);
    free(buf);
    put_u32(vm, ARG(3), (uint32_t)total);
    WRET(WASI_SUCCESS);
}

HOSTFN(w_fd_read)
{
    struct pw_vm *vm = user;
    if (ARG(0) != 0)
        WRET(WASI_BADF);
    WRET(put_u32(vm, ARG(3), 0) ? WASI_FAULT : WASI_SUCCESS); /* stdin is empty */
}

HOSTFN(w_fd_close)
{
    WRET(ARG(0) <= 2 ? WASI_SUCCESS : WASI_BADF);
}

HOSTFN(w_fd_seek)
{
    WRET(ARG(0) <= 2 ? WASI_SPIPE : WASI_BADF);
}

HOSTFN(w_fd_fdstat_get)
{
    struct pw_vm *vm = user;
    if (ARG(0) > 2)
        WRET(WASI_BADF);
    uint8_t *p = gmem(vm, ARG(1), 24);
    if (p == NULL)
        WRET(WASI_FAULT);
    memset(p, 0, 24);
    p[0] = 2; /* character device */
    memset(p + 8, 0xff, 16); /* rights */
    WRET(WASI_SUCCESS);
}

HOSTFN(w_fd_fdstat_set_flags)
{
    WRET(ARG(0) <= 2 ? WASI_SUCCESS : WASI_BADF);
}

HOSTFN(w_badf)
{
    WRET(WASI_BADF); /* fd_prestat_get, fd_prestat_dir_name: no preopened directories */
}

HOSTFN(w_clock_time_get)
{
    struct pw_vm *vm = user;
    clockid_t id;
    switch (ARG(0)) {
    case 0: id = CLOCK_REALTIME; break;
    case 1: id = CLOCK_MONOTONIC; break;
    case 2: id = CLOCK_PROCESS_CPUTIME_ID; break;
    case 3: id = CLOCK_THREAD_CPUTIME_ID; break;
    default: WRET(WASI_NOTSUP);
    }
    WRET(put_u64(vm, ARG(2), now_ns(id)) ? WASI_FAULT : WASI_SUCCESS);
}

HOSTFN(w_clock_res_get)
{
    struct pw_vm *vm = user;
    if (ARG(0) > 3)
        WRET(WASI_NOTSUP);
    WRET(put_u64(vm, ARG(1), 1) ? WASI_FAULT : WASI_SUCCESS);
}

HOSTFN(w_random_get)
{
    struct pw_vm *vm = user;
    uint32_t len = ARG(1);
    if (len > 1024 * 1024)
        WRET(WASI_INVAL);
    uint8_t *p = gmem(vm, ARG(0), len);
    if (p == NULL)
        WRET(WASI_FAULT);
    size_t got = 0;
    while (got < len) {
        ssize_t k = getrandom(p + got, len - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            WRET(WASI_INVAL);
        got += (size_t)k;
    }
    WRET(WASI_SUCCESS);
}

/* environ_sizes_get, args_sizes_get: nothing (0 entries, 0 bytes). */
HOSTFN(w_sizes_get)
{
    struct pw_vm *vm = user;
    WRET(put_u32(vm, ARG(0), 0) || put_u32(vm, ARG(1), 0) ? WASI_FAULT : WASI_SUCCESS);
}

HOSTFN(w_success)
{
    WRET(WASI_SUCCESS); /* environ_get, args_get (nothing to write), sched_yield */
}

HOSTFN(w_notsup)
{
    WRET(WASI_NOTSUP); /* poll_oneoff */
}

HOSTFN(w_notcapable)
{
    WRET(WASI_NOTCAPABLE); /* path_open */
}

HOSTFN(w_proc_exit)
{
    struct pw_vm *vm = user;
    snprintf(vm->trapbuf, sizeof(vm->trapbuf), "proc_exit(%d) called", a[0].of.i32);
    return vm->trapbuf;
}

/* --- the table --- */

#define E(n, s, f) {"env", #n, s, f}
#define W(n, s, f) {"wasi_snapshot_preview1", #n, s, f}
static const struct pw_import imports[] = {
    E(proxy_log, "iii:i", h_log),
    E(proxy_get_log_level, "i:i", h_get_log_level),
    E(proxy_get_current_time_nanoseconds, "i:i", h_get_current_time),
    E(proxy_set_tick_period_milliseconds, "i:i", h_set_tick_period),
    E(proxy_get_buffer_bytes, "iiiii:i", h_get_buffer_bytes),
    E(proxy_set_buffer_bytes, "iiiii:i", h_set_buffer_bytes),
    E(proxy_get_buffer_status, "iii:i", h_get_buffer_status),
    E(proxy_get_header_map_size, "ii:i", h_get_header_map_size),
    E(proxy_get_header_map_pairs, "iii:i", h_get_header_map_pairs),
    E(proxy_set_header_map_pairs, "iii:i", h_set_header_map_pairs),
    E(proxy_get_header_map_value, "iiiii:i", h_get_header_map_value),
    E(proxy_add_header_map_value, "iiiii:i", h_add_header_map_value),
    E(proxy_replace_header_map_value, "iiiii:i", h_replace_header_map_value),
    E(proxy_remove_header_map_value, "iii:i", h_remove_header_map_value),
    E(proxy_continue_stream, "i:i", h_continue_stream),
    E(proxy_close_stream, "i:i", h_close_stream),
    E(proxy_get_status, "iii:i", h_get_status),
    E(proxy_send_local_response, "iiiiiiii:i", h_send_local_response),
    E(proxy_http_call, "iiiiiiiiii:i", h_http_call),
    E(proxy_grpc_call, "iiiiiiiiiiii:i", h_grpc_call),
    E(proxy_grpc_stream, "iiiiiiiii:i", h_grpc_stream),
    E(proxy_grpc_send, "iiii:i", h_grpc_send),
    E(proxy_grpc_cancel, "i:i", h_grpc_cancel),
    E(proxy_grpc_close, "i:i", h_grpc_close),
    E(proxy_get_shared_data, "iiiii:i", h_get_shared_data),
    E(proxy_set_shared_data, "iiiii:i", h_set_shared_data),
    E(proxy_register_shared_queue, "iii:i", h_register_shared_queue),
    E(proxy_resolve_shared_queue, "iiiii:i", h_resolve_shared_queue),
    E(proxy_enqueue_shared_queue, "iii:i", h_enqueue_shared_queue),
    E(proxy_dequeue_shared_queue, "iii:i", h_dequeue_shared_queue),
    E(proxy_define_metric, "iiii:i", h_define_metric),
    E(proxy_increment_metric, "iI:i", h_increment_metric),
    E(proxy_record_metric, "iI:i", h_record_metric),
    E(proxy_get_metric, "ii:i", h_get_metric),
    E(proxy_get_property, "iiii:i", h_get_property),
    E(proxy_set_property, "iiii:i", h_set_property),
    E(proxy_call_foreign_function, "iiiiii:i", h_call_foreign_function),
    E(proxy_done, ":i", h_done),
    E(proxy_set_effective_context, "i:i", h_set_effective_context),
    W(fd_write, "iiii:i", w_fd_write),
    W(fd_read, "iiii:i", w_fd_read),
    W(fd_close, "i:i", w_fd_close),
    W(fd_seek, "iIii:i", w_fd_seek),
    W(fd_fdstat_get, "ii:i", w_fd_fdstat_get),
    W(fd_fdstat_set_flags, "ii:i", w_fd_fdstat_set_flags),
    W(fd_prestat_get, "ii:i", w_badf),
    W(fd_prestat_dir_name, "iii:i", w_badf),
    W(clock_time_get, "iIi:i", w_clock_time_get),
    W(clock_res_get, "ii:i", w_clock_res_get),
    W(random_get, "ii:i", w_random_get),
    W(environ_sizes_get, "ii:i", w_sizes_get),
    W(environ_get, "ii:i", w_success),
    W(args_sizes_get, "ii:i", w_sizes_get),
    W(args_get, "ii:i", w_success),
    W(proc_exit, "i:", w_proc_exit),
    W(sched_yield, ":i", w_success),
    W(poll_oneoff, "iiii:i", w_notsup),
    W(path_open, "iiiiiIIii:i", w_notcapable),
};

/* Borrows both names. */
const struct pw_import *pw_import_find(const char *module, size_t mlen, const char *name,
                                       size_t nlen)
{
    for (size_t i = 0; i < sizeof(imports) / sizeof(imports[0]); i++)
        if (strlen(imports[i].module) == mlen && memcmp(imports[i].module, module, mlen) == 0 &&
            strlen(imports[i].name) == nlen && memcmp(imports[i].name, name, nlen) == 0)
            return &imports[i];
    return NULL;
}
