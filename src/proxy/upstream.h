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
/* Hook the HTTP layer sets: called when a connection slot frees up in wc so
 * that waiting requests can proceed. */
extern void (*uconn_slot_freed)(struct wcluster *wc);

#endif
