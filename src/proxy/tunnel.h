/* tunnel.h - an opaque byte pipe between a client socket and an upstream
 * connection: TCP proxying and upgraded (websocket) HTTP connections.
 *
 * Each direction has one bounded buffer; a full buffer stops reading its
 * source. End of stream on one side is passed on as a half-close
 * (shutdown(SHUT_WR)) once the buffer toward the other side is drained, so
 * protocols that rely on half-close keep working. */
#ifndef STRAND_TUNNEL_H
#define STRAND_TUNNEL_H

#include <stdint.h>

#include "core/buf.h"
#include "proxy/sio.h"
#include "router/attr.h"

struct worker;
struct gen_listener;
struct uconn;
struct tunnel;

struct tunnel_stats {
    uint64_t bytes_up;    /* client -> upstream */
    uint64_t bytes_down;  /* upstream -> client */
    uint64_t duration_us;
    int reason;           /* 0 clean close, else errno or ETIMEDOUT */
};

/* Called once when the tunnel is gone; ud is the caller's. */
typedef void (*tunnel_done_fn)(void *ud, const struct tunnel_stats *st);

/* The connection's attributes, for the stream filters (WasmPlugins) of a
 * tcp listener: the getter of attr.h over ctx, which must outlive the
 * tunnel. NULL: the tunnel runs no filters (upgraded HTTP connections). */
struct tunnel_attrs {
    attr_get_fn get;
    void *ctx;
};

/* Takes ownership of the client stream *cs (its fd and TLS, if any), uc and
 * the two buffers (their contents are sent first: to_client toward the
 * client, to_upstream toward the upstream); borrows attrs. With attrs and
 * WasmPlugins on gl, every byte read passes through the filters
 * (wasm_filter.h) before it is written on (the two buffers must then be
 * empty: tcp listeners hand over none). Returns the tunnel, or NULL after closing
 * everything (and calling done). */
struct tunnel *tunnel_new(struct worker *w, struct gen_listener *gl, struct sio *cs,
                          struct buf *to_client, struct buf *to_upstream, struct uconn *uc,
                          uint64_t idle_ms, tunnel_done_fn done, void *done_ud,
                          const struct tunnel_attrs *attrs);

#endif
