/* db_pool.h - idle database server connections kept for reuse: what
 * pg_pool.c and my_pool.c share.
 *
 * A pool belongs to one cluster of one worker and generation (struct
 * wcluster) and holds entries that the protocol's pool embeds in its own
 * (struct db_pooled first). An entry is RESETTING from db_pool_put (the
 * protocol's reset request is written, its answer read into uc->in and
 * handed to ops->answer) until the protocol calls db_pool_idle; then it is
 * IDLE until taken, until the cluster's idleTimeout, or until any byte
 * arrives. Any surprise closes the connection. At most DB_POOL_MAX
 * entries per pool. */
#ifndef STRAND_DB_POOL_H
#define STRAND_DB_POOL_H

#include <stddef.h>

#include "core/buf.h"
#include "core/loop.h"
#include "proxy/worker.h"

#define DB_POOL_MAX 128           /* pooled connections per cluster and worker */

struct uconn;
struct db_pooled;

struct db_pool_ops {
    const char *proto;            /* for logs: "postgres", "mysql" */
    const char *reset_name;       /* the reset request, for logs */
    /* The answer to the reset so far, in e->uc->in: consumes what it
     * reads; NULL to go on (db_pool_idle once the answer is complete), or
     * why the connection must close. */
    const char *(*answer)(struct db_pooled *e);
    /* Frees the protocol's entry that embeds e. */
    void (*free)(struct db_pooled *e);
};

struct db_pooled {
    struct wlink link;
    struct db_pool *pool;
    struct wcluster *wc;
    struct uconn *uc;
    const struct db_pool_ops *ops;
    int resetting;
    struct buf out;               /* the reset request, until written */
    struct loop_timer timer;
};

/* Takes uc and the entry e (the protocol's, zeroed but for its own
 * fields, with e->out holding the reset request) into *poolp (made on
 * first use) of wc. On any failure (draining, a retired generation, the
 * pool full) ops->free(e) and the connection are closed. */
void db_pool_put(struct db_pool **poolp, struct wcluster *wc, struct db_pooled *e,
                 struct uconn *uc, const struct db_pool_ops *ops);
/* The reset is answered: e waits, idle, for a taker. */
void db_pool_idle(struct db_pooled *e);
/* The first idle entry of p that fits(e, arg) says is good and whose
 * endpoint is not ejected, out of the pool (counted as reused); NULL when
 * none. The caller takes what it needs from the entry, then hands it to
 * db_pool_taken. Borrows arg. */
struct db_pooled *db_pool_take(struct db_pool *p, int (*fits)(const struct db_pooled *e,
                                                              const void *arg),
                               const void *arg);
/* Frees a taken entry (later) and returns its connection, now the
 * caller's (set its ops/owner before the next event). */
struct uconn *db_pool_taken(struct db_pooled *e);
/* Closes every pooled connection of *poolp and frees the pool. */
void db_pool_close(struct db_pool **poolp);
/* Connections in p (idle or being reset); p may be NULL. */
size_t db_pool_size(const struct db_pool *p);

#endif
