/* pg_pool.h - idle PostgreSQL server connections kept for reuse.
 *
 * Only sessions the proxy authenticated itself (Listener auth) pool: their
 * server connections are all logged in as the cluster's user, so one can
 * serve any client whose startup asked for the same database and
 * parameters (the pool key). A session that ends cleanly (idle, outside a
 * transaction, nothing in flight) hands its connection here; the pool
 * sends DISCARD ALL (which drops prepared statements, temporary tables,
 * settings, LISTENs, advisory locks and the role a session set) and waits
 * for its ReadyForQuery before the connection may be taken again, so no
 * client ever sees another's session state. Connections are per worker and
 * generation (struct wcluster), kept by db_pool.c: closed after the
 * cluster's idleTimeout or when the generation retires.
 *
 * The pool also keeps, per connection, what a new client must be told as
 * if it had logged in: the server's ParameterStatus messages (latest value
 * per name) and its BackendKeyData. */
#ifndef STRAND_PG_POOL_H
#define STRAND_PG_POOL_H

#include <stddef.h>
#include <stdint.h>

struct wcluster;
struct uconn;
struct pg_msg;

/* What a pooled connection carries besides its socket. */
struct pg_conn_info {
    char *params;               /* ParameterStatus messages, whole; malloc'ed */
    uint32_t params_len;
    uint32_t pid;               /* BackendKeyData */
    uint8_t key[256];
    uint16_t key_len;
};

/* Sets or replaces the ParameterStatus message m (whole, borrowed) in ci's
 * list, by parameter name. 0, or -1 when out of memory / malformed. */
int pg_conn_info_param(struct pg_conn_info *ci, const struct pg_msg *m);
/* Frees what ci owns (not ci). */
void pg_conn_info_clear(struct pg_conn_info *ci);

/* Takes uc (connected to endpoint uc->ep of wc, idle with ReadyForQuery 'I'
 * seen and nothing buffered either way) and *ci (moved: *ci is left empty)
 * for the pool under key[0..key_len) (copied). The connection is reset
 * before reuse; on any failure it is closed. */
void pg_pool_put(struct wcluster *wc, struct uconn *uc, struct pg_conn_info *ci, const char *key,
                 size_t key_len);
/* An idle connection for key, or NULL. On success *ci receives its info
 * (the caller's to clear) and the caller owns the returned uconn (set its
 * ops/owner before the next event). Skips endpoints the load balancer has
 * ejected. */
struct uconn *pg_pool_take(struct wcluster *wc, const char *key, size_t key_len,
                           struct pg_conn_info *ci);
/* Closes every pooled connection of wc (generation retired, drain) and
 * frees the pool. */
void pg_pool_close(struct wcluster *wc);
/* Connections pooled in wc (idle or being reset). */
size_t pg_pool_size(const struct wcluster *wc);

#endif
