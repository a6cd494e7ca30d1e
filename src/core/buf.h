/* buf.h - bounded byte buffers for connections.
 *
 * A buffer is a fixed-capacity block taken from a per-thread pool on first
 * use and handed back as soon as it is empty, so an idle keep-alive
 * connection holds no buffer memory at all. Capacity is the back-pressure
 * bound: when a buffer is full the owner stops reading its source. */
#ifndef STRAND_BUF_H
#define STRAND_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf {
    char *data;     /* NULL while released */
    uint32_t head;  /* first unread byte */
    uint32_t tail;  /* one past the last byte */
    uint32_t cap;
};

/* Size of blocks handed out on this thread (set once per worker, from config). */
void buf_set_block_size(uint32_t size);
uint32_t buf_block_size(void);
/* Frees this thread's pooled blocks (thread exit). */
void buf_pool_free(void);

static inline uint32_t buf_len(const struct buf *b) { return b->tail - b->head; }
/* The unread bytes; NULL (not NULL + 0, which C leaves undefined) when the
 * buffer holds no block. */
static inline char *buf_start(const struct buf *b) { return b->data ? b->data + b->head : NULL; }
static inline int buf_full(const struct buf *b) { return b->data && b->head == 0 && b->tail == b->cap; }

/* Makes sure b has a block; 0 or -1 when out of memory. */
int buf_ensure(struct buf *b);
/* Bytes that can be appended, after moving the data to the front if needed. */
uint32_t buf_space(struct buf *b);
/* Whether a read could add bytes: a released buffer has a whole block of
 * room waiting. */
static inline int buf_has_room(struct buf *b) { return !b->data || buf_space(b) > 0; }
/* Drops n bytes from the front; releases the block when it becomes empty. */
void buf_consume(struct buf *b, uint32_t n);
/* Returns the block to the pool if the buffer is empty (idle connections). */
void buf_shrink(struct buf *b);
/* Frees the block whatever it holds. */
void buf_free(struct buf *b);
/* Appends len bytes; returns 0, or -1 when they do not fit. */
int buf_append(struct buf *b, const void *p, size_t len);
/* Moves the unread bytes into a private block of cap bytes (freed, not
 * pooled, when the buffer empties). For the rare buffer that must briefly
 * hold more than a block. b: borrowed. 0, or -1 when out of memory. */
int buf_grow(struct buf *b, uint32_t cap);
/* Free bytes in the block, counting the consumed front (a whole block when
 * none is held). b: borrowed. */
uint32_t buf_room(const struct buf *b);
/* As buf_append, but moves the unread bytes to the front when only that
 * makes room: for buffers filled up to a flow-control window that reopens
 * as bytes are consumed. p: borrowed. 0, or -1 when they cannot fit. */
int buf_put(struct buf *b, const void *p, size_t len);
/* Reads from fd into the free space. Returns bytes read, 0 on EOF, -1 with
 * errno (EAGAIN when nothing is there), -2 when the buffer is full. */
ssize_t buf_read_fd(struct buf *b, int fd);
/* Writes the buffered bytes to fd and consumes what was written. Returns
 * bytes written or -1 with errno. */
ssize_t buf_write_fd(struct buf *b, int fd);

#endif
