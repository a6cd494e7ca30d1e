/* pg_cancel.h - PostgreSQL CancelRequest through the proxy.
 *
 * A client cancels a running query by opening a new connection and sending
 * the pid and secret key its server gave it in BackendKeyData. Sessions
 * pass the server's BackendKeyData through unchanged, so the key the client
 * holds is the server's own; what the proxy must know is which server
 * issued it. Every session registers its key with the endpoint it is
 * connected to, in one process-wide table (any worker may receive the
 * cancel connection), and a CancelRequest whose pid and key match a live
 * session is forwarded to that endpoint over a new connection; anything
 * else is dropped silently, as a server does with a wrong key. */
#ifndef STRAND_PG_CANCEL_H
#define STRAND_PG_CANCEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct worker;
struct pg_cancel_key;

/* Registers a session's key (pid, key[0..len), len 4..256) as issued by the
 * server at addr (copied). Returns a handle for pg_cancel_forget, or NULL
 * when out of memory (the session then cannot be cancelled). Any thread. */
struct pg_cancel_key *pg_cancel_remember(uint32_t pid, const void *key, size_t len,
                                         const struct sockaddr *addr, socklen_t alen);
/* Removes a registration (NULL allowed); takes ownership of k. */
void pg_cancel_forget(struct pg_cancel_key *k);
/* Forwards a CancelRequest for (pid, key) on w's loop when a live session
 * registered it: 1 when a forward was started, 0 when nothing matched.
 * Borrows key. */
int pg_cancel_forward(struct worker *w, uint32_t pid, const void *key, size_t len);
/* Registered keys (for tests and the admin view). */
size_t pg_cancel_count(void);

#endif
