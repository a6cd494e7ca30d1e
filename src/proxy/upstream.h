/* upstream.h - connections to cluster endpoints and their keep-alive pools.
 *
 * An upstream connection (uconn) belongs to one worker's wcluster. Its owner
 * (an HTTP request or a TCP session) receives its events through a small
 * callback table; while pooled it has no owner and any activity on it
 * (the server closing it, stray bytes) simply closes it. */
#ifndef STRAND_UPSTREAM_H
#define STRAND_UPSTREAM_H

#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "proxy/sio.h"
#include "proxy/worker.h"

struct uconn;

struct uconn_ops {
    /* The connect finished (err = 0) or failed (err = errno value, or
     * ETIMEDOUT after the cluster's connect timeout). On failure the uconn is
     * already closed and must not be touched again. */
    void (*connected)(void *owner, struct uconn *uc, int err);
    /* Readable and/or writable, as asked with uconn_want(). */
    void (*io)(void *owner, struct uconn *uc, unsigned events);
};

enum uconn_state { UC_CONNECTING, UC_TLS, UC_ACTIVE, UC_IDLE };

struct uconn {
    struct loop_io io;
    struct sio sio;            /* io.fd, maybe TLS over it */
    struct loop_timer timer;   /* connect timeout, then pool idle timeout */
    struct wcluster *wc;
    int ep;                    /* endpoint index in the cluster */
    enum uconn_state state;
    int reused;                /* carried a request before this one */
    struct buf in;             /* bytes read from the endpoint */
    struct wlink idle_link;
    const struct uconn_ops *ops;
    void *owner;
};

/* Returns a connection to endpoint ep for owner: a pooled one (state
 * UC_ACTIVE, ready now; *ready = 1) or a new one (UC_CONNECTING, *ready = 0,
 * ops->connected comes later). NULL on immediate failure (errno set). The
 * owner holds the uconn until it calls uconn_release or uconn_close. */
struct uconn *uconn_get(struct wcluster *wc, int ep, const struct uconn_ops *ops, void *owner,
                        int *ready);
/* Sets the events the owner wants (LOOP_READ | LOOP_WRITE). */
void uconn_want(struct uconn *uc, unsigned mask);
/* Gives the connection back: pooled when reusable, else closed. */
void uconn_release(struct uconn *uc, int reusable);
/* Closes the connection and frees it (deferred to the end of the batch). */
void uconn_close(struct uconn *uc);
/* Whether the cluster may open another connection (per-worker share). */
int uconn_can_open(const struct wcluster *wc);
/* Whether an idle pooled connection to ep exists. */
int uconn_has_idle(const struct wcluster *wc, int ep);
/* Closes every pooled connection of wc (generation retired). */
void uconn_close_idle(struct wcluster *wc);
/* Connect attempts of a connection-level session (tcp, postgres, mysql):
 * the endpoints tried so far and the attempt in flight. Zero it to start. */
struct uconn_try {
    int ep;                 /* endpoint of the attempt in flight */
    uint64_t tried;         /* endpoints tried (bit mask of the first 64) */
    uint32_t attempts;
    uint64_t t_start_us;    /* the attempt in flight began */
    /* Read replicas (db.c): pick only endpoints not tried, not in `avoid`
     * and not ejected, with none of lb_pick's fallbacks (a read that finds
     * no such endpoint goes to the primary instead). */
    int strict;
    uint64_t avoid;
};

/* Why uconn_try_next did not start an attempt. */
enum {
    UCONN_TRY_STARTED = 0,
    UCONN_TRY_EXHAUSTED,    /* the route's retries (or every endpoint once) are used up */
    UCONN_TRY_FULL,         /* the cluster's maxConnections (counted in m_overflow) */
    UCONN_TRY_NO_ENDPOINT,  /* no healthy endpoint left to try */
};

struct cfg_rule;
/* Starts the next attempt to an endpoint of wc not tried yet, within the
 * rule's retry budget (retries.attempts, else each endpoint once), with
 * the LB and counter books of tcp-like sessions. An endpoint whose connect
 * fails at once is booked as failed and the next one tried. On
 * UCONN_TRY_STARTED *out is a new connection, connecting: ops->connected
 * follows (the cluster's pooled connections are HTTP keep-alive ones and
 * never handed to a byte stream or a database session). cr, t: borrowed;
 * owner: passed to ops. */
int uconn_try_next(struct wcluster *wc, const struct cfg_rule *cr, struct uconn_try *t,
                   const struct uconn_ops *ops, void *owner, struct uconn **out);
/* Why no attempt started (UCONN_TRY_*), as a short static phrase. */
const char *uconn_try_reason(int rc);
/* Closes the books of the attempt in flight: err 0 = connected. */
void uconn_try_done(struct wcluster *wc, struct uconn_try *t, int err);

/* Hook the HTTP layer sets: called when a connection slot frees up in wc so
 * that waiting requests can proceed. */
extern void (*uconn_slot_freed)(struct wcluster *wc);

#endif
