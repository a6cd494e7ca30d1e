/* my_pool.h - idle MySQL/MariaDB server connections kept for reuse.
 *
 * Only sessions the proxy authenticated itself (Listener auth) pool: their
 * server connections are all logged in as the cluster's auth user, so one
 * can serve any client that asked the server for the same capabilities
 * and character set (the pool key; capabilities shape responses, the
 * character set is what COM_RESET_CONNECTION restores). A session that
 * ends between commands and outside a transaction hands its connection
 * here; the pool sends COM_RESET_CONNECTION (MySQL 5.7.3+, MariaDB 10.2.4+:
 * rolls back, drops temporary tables, prepared statements, user
 * variables, locks and session settings) and waits for its OK before the
 * connection may be taken again, so no client ever sees another's session
 * state. The database is not part of the key: the taker selects its own
 * with COM_INIT_DB. Connections are per worker and generation (struct
 * wcluster), kept by db_pool.c: at most DB_POOL_MAX per cluster, closed
 * after the cluster's idleTimeout, when the generation retires and on
 * drain. */
#ifndef STRAND_MY_POOL_H
#define STRAND_MY_POOL_H

#include <stddef.h>
#include <stdint.h>

struct wcluster;
struct uconn;

/* What a pooled connection was logged in with, and what the pool knows. */
struct my_pool_key {
    uint64_t want;     /* capabilities the proxy asked the server for */
    uint8_t charset;   /* the login's character set */
};

/* Takes uc (connected to endpoint uc->ep of wc, logged in with key, idle:
 * nothing in flight or buffered either way); caps are the capabilities
 * negotiated with the server. The connection is reset before reuse; on any
 * failure it is closed. Borrows key. */
void my_pool_put(struct wcluster *wc, struct uconn *uc, const struct my_pool_key *key,
                 uint64_t caps);
/* A reset connection for key, or NULL. On success the caller owns the
 * returned uconn (set its ops/owner before the next event) and *caps and
 * *status hold its negotiated capabilities and the server status of the
 * reset's OK. Skips endpoints the load balancer has ejected. Borrows key. */
struct uconn *my_pool_take(struct wcluster *wc, const struct my_pool_key *key, uint64_t *caps,
                           uint16_t *status);
/* Closes every pooled connection of wc (generation retired, drain) and
 * frees the pool. */
void my_pool_close(struct wcluster *wc);
/* Connections pooled in wc (idle or being reset). */
size_t my_pool_size(const struct wcluster *wc);

#endif
