/* proto.h - the table of downstream protocol handlers.
 *
 * A listener's `protocol` selects an entry; the worker hands each accepted
 * socket to it and knows nothing else of the protocol. Adding a protocol
 * means adding an entry here (see docs/architecture.md). */
#ifndef STRAND_PROTO_H
#define STRAND_PROTO_H

#include <sys/socket.h>

#include "config/config.h"

struct worker;
struct gen_listener;

struct proto_handler {
    const char *name;
    /* Takes ownership of fd (non-blocking, accepted on gl). */
    void (*accept)(struct worker *w, struct gen_listener *gl, int fd,
                   const struct sockaddr_storage *peer);
    /* The worker starts draining: close idle connections, finish the rest. */
    void (*drain)(struct worker *w);
};

/* Returns the handler for proto, or NULL. */
const struct proto_handler *proto_handler(enum cfg_proto proto);

extern const struct proto_handler http_handler;
/* Process-wide set-up of the HTTP handler; call before starting workers. */
void http_init(void);
extern const struct proto_handler tcp_handler;
extern const struct proto_handler pg_handler;    /* pg_proxy.c */
extern const struct proto_handler mysql_handler; /* mysql_proxy.c */

struct wcluster;
/* A new generation became current: HTTP/2 clients still on an older one get
 * a graceful GOAWAY, so their next requests use the new configuration. */
void http_retire(struct worker *w);
/* Closes wc's HTTP/2 upstream sessions that carry no stream; the others
 * close after their last one. */
void h2u_close_idle(struct wcluster *wc);
/* Frees the HTTP/2 code's per-thread state (worker exit). */
void h2_batch_free(void);

#endif
