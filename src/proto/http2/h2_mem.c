/* h2_mem.c - nghttp2's allocator: a per-thread cache of small blocks.
 *
 * nghttp2 allocates and frees several small objects per stream (the stream,
 * frames, header name/value copies, HPACK entries). Through glibc malloc
 * that was a tenth of the proxy's CPU per HTTP/2 request; a cache of freed
 * blocks in eight power-of-two classes (64 B .. 8 KiB) makes most of them a
 * pointer pop. Larger requests go straight to malloc.
 *
 * Every block starts with a 16-byte header (class, and for large blocks the
 * size), which keeps the payload 16-byte aligned. A session lives and dies
 * on one thread (its worker), so the cache needs no lock; each class keeps
 * at most CLASS_BYTES worth of blocks (1 MiB per thread in all), and
 * h2_mem_thread_free() returns them when the thread ends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http2/h2_int.h"

#define NCLASS 8
#define MIN_SHIFT 6 /* 64 bytes */
#define HDR 16
#define LARGE 0xffu
#define CLASS_BYTES (128u * 1024)

struct hdr {
    uint32_t cls;
    uint32_t pad;
    size_t size; /* large blocks: usable bytes */
};

struct freeblk {
    struct freeblk *next;
};

static __thread struct {
    struct freeblk *head;
    uint32_t n;
} cache[NCLASS];

/* The class whose blocks hold n payload bytes, or -1 when none does. */
static int class_of(size_t n)
{
    size_t total = n + HDR;
    for (int c = 0; c < NCLASS; c++)
        if (total <= ((size_t)1 << (MIN_SHIFT + c)))
            return c;
    return -1;
}

static size_t usable(const struct hdr *h)
{
    return h->cls == LARGE ? h->size : ((size_t)1 << (MIN_SHIFT + h->cls)) - HDR;
}

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    int c = class_of(size);
    struct hdr *h;
    if (c < 0) {
        h = malloc(size + HDR);
        if (!h)
            return NULL;
        h->cls = LARGE;
        h->size = size;
    } else if (cache[c].head) {
        h = (struct hdr *)cache[c].head;
        cache[c].head = cache[c].head->next;
        cache[c].n--;
        h->cls = (uint32_t)c;
    } else {
        h = malloc((size_t)1 << (MIN_SHIFT + c));
        if (!h)
            return NULL;
        h->cls = (uint32_t)c;
    }
    return (char *)h + HDR;
}

static void mem_free(void *p, void *ud)
{
    (void)ud;
    if (!p)
        return;
    struct hdr *h = (struct hdr *)((char *)p - HDR);
    uint32_t c = h->cls;
    if (c == LARGE || cache[c].n >= (CLASS_BYTES >> (MIN_SHIFT + c))) {
        free(h);
        return;
    }
    struct freeblk *b = (struct freeblk *)h;
    b->next = cache[c].head;
    cache[c].head = b;
    cache[c].n++;
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mem_malloc(n * size, ud);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *mem_realloc(void *p, size_t size, void *ud)
{
    if (!p)
        return mem_malloc(size, ud);
    if (size == 0) {
        mem_free(p, ud);
        return NULL;
    }
    struct hdr *h = (struct hdr *)((char *)p - HDR);
    size_t have = usable(h);
    if (size <= have && h->cls != LARGE)
        return p;
    void *q = mem_malloc(size, ud);
    if (!q)
        return NULL;
    memcpy(q, p, have < size ? have : size);
    mem_free(p, ud);
    return q;
}

static nghttp2_mem h2_mem_table = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};

nghttp2_mem *h2_mem(void) { return &h2_mem_table; }

void *h2_mem_alloc(size_t n) { return mem_malloc(n, NULL); }

void *h2_mem_zalloc(size_t n) { return mem_calloc(1, n, NULL); }

void h2_mem_release(void *p) { mem_free(p, NULL); }

void h2_mem_thread_free(void)
{
    for (int c = 0; c < NCLASS; c++) {
        while (cache[c].head) {
            struct freeblk *b = cache[c].head;
            cache[c].head = b->next;
            free(b);
        }
        cache[c].n = 0;
    }
}
