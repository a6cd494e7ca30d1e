/* loop.c - epoll event loop with a lazy timer heap.
 *
 * Timers: proxies re-arm idle timers on every read, almost always pushing
 * the deadline later. Moving a heap entry each time would cost O(log n) per
 * packet, so a timer keeps two times: `deadline` (what the owner wants) and
 * `key` (where it sits in the heap, never later than deadline). Pushing the
 * deadline later only writes `deadline`; when the heap pops the entry early
 * it is re-inserted at its real deadline instead of firing. Pulling a
 * deadline earlier sifts the entry up. */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct loop {
    int epfd;
    int stop;
    uint64_t now;
    struct loop_timer **heap;
    uint32_t nheap, capheap;
    struct loop_io async_io;
    loop_async_fn async_cb;
    void *async_ud;
    struct loop_deferred *deferred;
    uint32_t ndeferred, capdeferred;
};

struct loop_deferred {
    void (*fn)(void *);
    void *p;
};

static void run_deferred(struct loop *l);

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t loop_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Returns a new loop or NULL; caller owns it. */
struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->async_io.fd = -1;
    l->now = mono_ms();
    return l;
}

/* Takes ownership of l and frees it. */
void loop_free(struct loop *l)
{
    if (!l)
        return;
    if (l->async_io.fd >= 0)
        close(l->async_io.fd);
    run_deferred(l);
    close(l->epfd);
    free(l->heap);
    free(l->deferred);
    free(l);
}

void loop_stop(struct loop *l) { l->stop = 1; }
uint64_t loop_now(const struct loop *l) { return l->now; }
void loop_update_time(struct loop *l) { l->now = mono_ms(); }

static uint32_t epoll_bits(unsigned mask)
{
    uint32_t ev = 0;
    if (mask & LOOP_READ)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (mask & LOOP_WRITE)
        ev |= EPOLLOUT;
    return ev;
}

/* io stays owned by the caller; the loop keeps a pointer until loop_io_del. */
int loop_io_add(struct loop *l, struct loop_io *io, unsigned mask)
{
    struct epoll_event ev = {.events = epoll_bits(mask), .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return -1;
    io->mask = mask;
    return 0;
}

/* io is the caller's; only its registration changes. */
int loop_io_set(struct loop *l, struct loop_io *io, unsigned mask)
{
    if (io->mask == mask)
        return 0;
    struct epoll_event ev = {.events = epoll_bits(mask), .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -1;
    io->mask = mask;
    return 0;
}

/* io is the caller's; the loop forgets it. */
void loop_io_del(struct loop *l, struct loop_io *io)
{
    if (io->fd >= 0 && io->cb)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->mask = 0;
    io->cb = NULL; /* marks stale events of this batch */
}

/* Takes ownership of p until fn(p) runs. */
void loop_defer_free(struct loop *l, void (*fn)(void *), void *p)
{
    if (l->ndeferred == l->capdeferred) {
        uint32_t cap = l->capdeferred ? l->capdeferred * 2 : 64;
        struct loop_deferred *d = realloc(l->deferred, cap * sizeof(*d));
        if (!d) {
            /* Freeing now risks a use-after-free; leaking is the safer miss. */
            return;
        }
        l->deferred = d;
        l->capdeferred = cap;
    }
    l->deferred[l->ndeferred++] = (struct loop_deferred){fn, p};
}

void loop_run_deferred(struct loop *l) { run_deferred(l); }

static void run_deferred(struct loop *l)
{
    /* fn may defer more frees; they run in this same pass. */
    for (uint32_t i = 0; i < l->ndeferred; i++)
        l->deferred[i].fn(l->deferred[i].p);
    l->ndeferred = 0;
}

/* Heap helpers: 0-based array, slot = index + 1. */
static void heap_place(struct loop *l, uint32_t i, struct loop_timer *t)
{
    l->heap[i] = t;
    t->slot = i + 1;
}

static void heap_up(struct loop *l, uint32_t i)
{
    struct loop_timer *t = l->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (l->heap[p]->key <= t->key)
            break;
        heap_place(l, i, l->heap[p]);
        i = p;
    }
    heap_place(l, i, t);
}

static void heap_down(struct loop *l, uint32_t i)
{
    struct loop_timer *t = l->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && l->heap[c + 1]->key < l->heap[c]->key)
            c++;
        if (t->key <= l->heap[c]->key)
            break;
        heap_place(l, i, l->heap[c]);
        i = c;
    }
    heap_place(l, i, t);
}

static void heap_remove(struct loop *l, struct loop_timer *t)
{
    uint32_t i = t->slot - 1;
    struct loop_timer *last = l->heap[--l->nheap];
    t->slot = 0;
    if (i == l->nheap)
        return;
    heap_place(l, i, last);
    heap_up(l, i);
    heap_down(l, last->slot - 1);
}

static int heap_insert(struct loop *l, struct loop_timer *t)
{
    if (l->nheap == l->capheap) {
        uint32_t cap = l->capheap ? l->capheap * 2 : 64;
        struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (!h)
            return -1;
        l->heap = h;
        l->capheap = cap;
    }
    t->key = t->deadline;
    heap_place(l, l->nheap++, t);
    heap_up(l, l->nheap - 1);
    return 0;
}

/* t is the caller's; the loop keeps a pointer until it fires or is cancelled. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t deadline_ms)
{
    t->deadline = deadline_ms;
    if (!t->slot) {
        /* On allocation failure the timer silently never fires, which would
         * leak a connection forever; better to abort loudly. */
        if (heap_insert(l, t) < 0)
            abort();
        return;
    }
    if (deadline_ms >= t->key)
        return; /* lazy: re-inserted at the real deadline when popped */
    t->key = deadline_ms;
    heap_up(l, t->slot - 1);
}

/* t is the caller's; afterwards the loop holds no pointer to it. */
void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    if (t->slot)
        heap_remove(l, t);
}

static void run_timers(struct loop *l)
{
    while (l->nheap > 0) {
        struct loop_timer *t = l->heap[0];
        if (t->key > l->now)
            break;
        if (t->deadline > l->now) {
            t->key = t->deadline;
            heap_down(l, 0);
            continue;
        }
        heap_remove(l, t);
        t->cb(l, t);
    }
}

static int next_timeout(struct loop *l)
{
    if (l->nheap == 0)
        return 1000;
    uint64_t k = l->heap[0]->key;
    if (k <= l->now)
        return 0;
    uint64_t d = k - l->now;
    return d > 1000 ? 1000 : (int)d;
}

static void async_ready(struct loop *l, struct loop_io *io, unsigned events)
{
    uint64_t v;
    while (read(io->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        ;
    l->async_cb(l, l->async_ud);
}

/* ud is the caller's and must outlive the loop. */
int loop_async_init(struct loop *l, loop_async_fn cb, void *ud)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    l->async_io.fd = fd;
    l->async_io.cb = async_ready;
    l->async_cb = cb;
    l->async_ud = ud;
    if (loop_io_add(l, &l->async_io, LOOP_READ) < 0) {
        close(fd);
        l->async_io.fd = -1;
        return -1;
    }
    return 0;
}

void loop_async_send(struct loop *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->async_io.fd, &one, sizeof(one));
    (void)n; /* EAGAIN means a wake-up is already pending */
}

/* One batch: wait up to timeout_ms for events, dispatch them, then run due
 * timers and deferred frees. Returns the number of events fetched, or -1 on
 * an epoll error (EINTR counts as 0 events). */
static int loop_iterate(struct loop *l, struct epoll_event *evs, int timeout_ms)
{
    int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -1;
    l->now = mono_ms();
    for (int i = 0; i < n; i++) {
        struct loop_io *io = evs[i].data.ptr;
        if (!io->cb)
            continue;
        uint32_t e = evs[i].events;
        unsigned ready = 0;
        if (e & (EPOLLIN | EPOLLRDHUP))
            ready |= LOOP_READ;
        if (e & EPOLLOUT)
            ready |= LOOP_WRITE;
        if (e & (EPOLLERR | EPOLLHUP))
            ready |= LOOP_READ | LOOP_WRITE;
        io->cb(l, io, ready);
    }
    run_timers(l);
    run_deferred(l);
    return n < 0 ? 0 : n;
}

int loop_run(struct loop *l)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    l->stop = 0;
    while (!l->stop) {
        if (loop_iterate(l, evs, next_timeout(l)) < 0)
            return -1;
    }
    run_deferred(l);
    return 0;
}

/* Test hook (fuzz targets drive a worker's loop from their own thread). */
int loop_run_once(struct loop *l, int timeout_ms)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    int t = next_timeout(l);
    if (timeout_ms >= 0 && timeout_ms < t)
        t = timeout_ms;
    return loop_iterate(l, evs, t);
}
