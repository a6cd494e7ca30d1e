/* buf.c - bounded buffers with a small per-thread block pool.
 *
 * Keeping a few free blocks per thread avoids a malloc/free pair per
 * request; keeping only a few returns memory to the system once a burst of
 * connections is over. */
#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_POOL_MAX 64

static __thread uint32_t block_size = 32768;
static __thread char *pool[BUF_POOL_MAX];
static __thread int npool;

void buf_set_block_size(uint32_t size)
{
    while (npool > 0)
        free(pool[--npool]);
    block_size = size;
}

uint32_t buf_block_size(void) { return block_size; }

void buf_pool_free(void)
{
    while (npool > 0)
        free(pool[--npool]);
}

/* Returns a block owned by the caller, or NULL. */
static char *block_get(void)
{
    if (npool > 0)
        return pool[--npool];
    return malloc(block_size);
}

/* Takes ownership of p. */
static void block_put(char *p, uint32_t cap)
{
    if (npool < BUF_POOL_MAX && cap == block_size)
        pool[npool++] = p;
    else
        free(p);
}

int buf_ensure(struct buf *b)
{
    if (b->data)
        return 0;
    b->data = block_get();
    if (!b->data)
        return -1;
    b->cap = block_size;
    b->head = b->tail = 0;
    return 0;
}

uint32_t buf_space(struct buf *b)
{
    if (!b->data)
        return 0;
    if (b->tail == b->cap && b->head > 0) {
        uint32_t n = b->tail - b->head;
        memmove(b->data, b->data + b->head, n);
        b->head = 0;
        b->tail = n;
    }
    return b->cap - b->tail;
}

void buf_consume(struct buf *b, uint32_t n)
{
    b->head += n;
    if (b->head >= b->tail) {
        b->head = b->tail = 0;
        buf_shrink(b);
    }
}

void buf_shrink(struct buf *b)
{
    if (b->data && b->head == b->tail) {
        block_put(b->data, b->cap);
        b->data = NULL;
        b->head = b->tail = b->cap = 0;
    }
}

void buf_free(struct buf *b)
{
    if (b->data)
        block_put(b->data, b->cap);
    b->data = NULL;
    b->head = b->tail = b->cap = 0;
}

int buf_append(struct buf *b, const void *p, size_t len)
{
    if (buf_ensure(b) < 0 || buf_space(b) < len)
        return -1;
    memcpy(b->data + b->tail, p, len);
    b->tail += (uint32_t)len;
    return 0;
}

int buf_grow(struct buf *b, uint32_t cap)
{
    if (b->data && b->cap >= cap)
        return 0;
    char *p = malloc(cap);
    if (!p)
        return -1;
    uint32_t n = b->tail - b->head;
    if (b->data) {
        memcpy(p, b->data + b->head, n);
        block_put(b->data, b->cap);
    }
    b->data = p;
    b->cap = cap;
    b->head = 0;
    b->tail = n;
    return 0;
}

uint32_t buf_room(const struct buf *b)
{
    return b->data ? b->cap - (b->tail - b->head) : buf_block_size();
}

int buf_put(struct buf *b, const void *p, size_t len)
{
    if (buf_ensure(b) < 0 || buf_room(b) < len)
        return -1;
    if (b->cap - b->tail < len) {
        uint32_t n = b->tail - b->head;
        memmove(b->data, b->data + b->head, n);
        b->head = 0;
        b->tail = n;
    }
    memcpy(b->data + b->tail, p, len);
    b->tail += (uint32_t)len;
    return 0;
}

ssize_t buf_read_fd(struct buf *b, int fd)
{
    if (buf_ensure(b) < 0) {
        errno = ENOMEM;
        return -1;
    }
    uint32_t space = buf_space(b);
    if (space == 0)
        return -2;
    ssize_t n;
    do
        n = read(fd, b->data + b->tail, space);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        b->tail += (uint32_t)n;
    else if (b->head == b->tail)
        buf_shrink(b);
    return n;
}

ssize_t buf_write_fd(struct buf *b, int fd)
{
    uint32_t len = buf_len(b);
    if (len == 0)
        return 0;
    ssize_t n;
    do
        n = send(fd, b->data + b->head, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        buf_consume(b, (uint32_t)n);
    return n;
}
