/* loop.h - the event loop: one per worker thread.
 *
 * Level-triggered epoll plus a timer heap and a cross-thread wake-up. The
 * whole API fits on this page on purpose (see Redis' ae.h): file events are
 * `struct loop_io` embedded in the caller's object, timers are `struct
 * loop_timer` embedded likewise, so the loop never allocates per fd or per
 * timer. Nothing here is thread-safe except loop_async_send(). */
#ifndef STRAND_LOOP_H
#define STRAND_LOOP_H

#include <stdint.h>

#define LOOP_READ 0x1u
#define LOOP_WRITE 0x2u

struct loop;
struct loop_io;
struct loop_timer;

/* events: LOOP_READ/LOOP_WRITE that are ready; errors and hang-ups are
 * reported as both so the handler finds out from read()/write(). */
typedef void (*loop_io_fn)(struct loop *l, struct loop_io *io, unsigned events);
typedef void (*loop_timer_fn)(struct loop *l, struct loop_timer *t);
typedef void (*loop_async_fn)(struct loop *l, void *ud);

struct loop_io {
    int fd;
    unsigned mask;      /* interest currently registered with epoll */
    loop_io_fn cb;
    void *ud;
};

struct loop_timer {
    uint64_t deadline;  /* ms, monotonic; what the owner asked for */
    uint64_t key;       /* ms the heap orders by; <= deadline, see loop.c */
    uint32_t slot;      /* index in the heap + 1; 0 = not scheduled */
    loop_timer_fn cb;
    void *ud;
};

/* Returns a new loop or NULL (errno set). Caller frees with loop_free. */
struct loop *loop_new(void);
/* Frees the loop; io and timers still registered are simply forgotten. */
void loop_free(struct loop *l);

/* Runs until loop_stop() is called. Returns 0, or -1 on an epoll error. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* Runs one batch, as one turn of loop_run does: waits for events at most
 * timeout_ms (less when a timer is due sooner; 0 = just poll), dispatches
 * them, runs due timers and deferred frees. Returns the number of events
 * fetched, or -1 on an epoll error. For tests and fuzz targets that drive
 * a loop from their own thread; the proxy itself only uses loop_run. */
int loop_run_once(struct loop *l, int timeout_ms);

/* Milliseconds of CLOCK_MONOTONIC, refreshed once per loop iteration. */
uint64_t loop_now(const struct loop *l);
/* Microseconds of CLOCK_MONOTONIC, read now (for latencies). */
uint64_t loop_now_us(void);
/* Forces loop_now() to be refreshed (after a long callback). */
void loop_update_time(struct loop *l);

/* io is owned by the caller and must stay valid until loop_io_del. fd, cb
 * and ud must be set before the call. Returns 0 or -1 (errno). */
int loop_io_add(struct loop *l, struct loop_io *io, unsigned mask);
/* Changes the interest; a no-op when it is unchanged. 0 or -1. */
int loop_io_set(struct loop *l, struct loop_io *io, unsigned mask);
/* Unregisters io (the fd stays open; closing it is the caller's job).
 * Events for io already fetched in this iteration are dropped, provided the
 * memory of io stays valid until the iteration ends: free objects holding an
 * io with loop_defer_free(), never directly from a callback. */
void loop_io_del(struct loop *l, struct loop_io *io);

/* Takes ownership of p: fn(p) runs after the current batch of events and
 * timers, when no fetched event can point to it any more. */
void loop_defer_free(struct loop *l, void (*fn)(void *), void *p);
/* Runs pending deferred frees now (outside loop_run, e.g. at thread exit). */
void loop_run_deferred(struct loop *l);

/* t is owned by the caller; cb/ud set before the first arm. Arming an armed
 * timer moves it. Pushing a deadline later is O(1). */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t deadline_ms);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline int loop_timer_armed(const struct loop_timer *t) { return t->slot != 0; }

/* A wake-up another thread may trigger: cb(l, ud) runs in the loop's thread
 * soon after loop_async_send(). Several sends may coalesce into one call. */
int loop_async_init(struct loop *l, loop_async_fn cb, void *ud);
/* Thread-safe. */
void loop_async_send(struct loop *l);

#endif
