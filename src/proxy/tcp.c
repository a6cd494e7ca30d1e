/* tcp.c - the TCP proxy: route a connection on its attributes (addresses,
 * ports, and with TLS the SNI, ALPN and client identity), connect to an
 * endpoint of the chosen cluster (retrying other endpoints on connect
 * failure), then hand both sockets to a tunnel.
 *
 * Two kinds of listener need the client's first bytes before routing: a
 * TLS-terminating tcp listener runs the handshake, and a TLS passthrough
 * listener (`protocol: tls`) peeks at the ClientHello without consuming it,
 * so the upstream receives the untouched TLS stream. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "proxy/accesslog.h"
#include "proxy/gen.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/proto.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"
#include "router/attr.h"
#include "router/authz.h"
#include "router/ratelimit.h"
#include "router/router.h"
#include "tls/tls.h"

/* A TCP session before and after its tunnel exists. */
struct tsess {
    struct loop_io io;          /* the client socket, before routing */
    struct loop_timer timer;    /* bounds the handshake / ClientHello wait */
    struct sio cs;              /* the client stream (TLS when terminated) */
    char sni[256], alpn[256];   /* passthrough: from the ClientHello */
    int peeked;
    char errbuf[160];
    struct worker *w;
    struct gen_listener *gl;
    struct wgen *wg;
    struct wcluster *wc;
    const struct route_rule *rr;
    int cfd;
    struct uconn_try ct;        /* connect attempts */
    uint64_t t_start_us;
    char peer_ip[INET6_ADDRSTRLEN];
    char port[8];
    struct gen_stats *stats;
};

struct tcp_attr_ctx {
    struct tsess *s;
};

static int tcp_attr_get(void *ctx, const struct attr_key *key, attr_val *out, int max)
{
    struct tsess *s = ((struct tcp_attr_ctx *)ctx)->s;
    const char *v;
    switch (key->id) {
    case ATTR_SOURCE_ADDRESS:
        v = s->peer_ip;
        break;
    case ATTR_DESTINATION_PORT:
        v = s->port;
        break;
    case ATTR_PROTOCOL:
        v = s->gl->cfg->proto == CFG_PROTO_TLS_PASSTHROUGH ? "tls" : "tcp";
        break;
    default:
        if (key->len == 7 && memcmp(key->name, "tls.sni", 7) == 0)
            v = s->cs.tls ? tls_conn_sni(s->cs.tls) : s->peeked ? s->sni : NULL;
        else if (key->len == 8 && memcmp(key->name, "tls.alpn", 8) == 0)
            v = s->cs.tls ? tls_conn_alpn(s->cs.tls) : s->peeked ? s->alpn : NULL;
        else if (key->len == 15 && memcmp(key->name, "source.identity", 15) == 0)
            v = s->cs.tls ? tls_conn_peer_identity(s->cs.tls) : NULL;
        else
            return 0;
        if (!v || (s->peeked && !*v))
            return 0; /* absent: no SNI/ALPN sent, no verified identity */
        break;
    }
    if (max > 0)
        out[0] = (attr_val){v, strlen(v)};
    return 1;
}

/* The same attributes with the session itself as ctx, for the tunnel's
 * filters (the session outlives its tunnel). */
static int tcp_sess_attr(void *s, const struct attr_key *key, attr_val *out, int max)
{
    struct tcp_attr_ctx ctx = {s};
    return tcp_attr_get(&ctx, key, out, max);
}

static void sess_log(struct tsess *s, const struct tunnel_stats *st, const char *err)
{
    struct worker *w = s->w;
    if (!w->alog)
        return;
    struct alog_rec rec = {0};
    rec.start_ms = unix_ms();
    rec.duration_us = st ? st->duration_us : loop_now_us() - s->t_start_us;
    rec.protocol = ALOG_TCP;
    rec.listener = alog_cstr(s->gl->cfg->name);
    if (s->rr)
        rec.route = alog_cstr(s->gl->rules[route_rule_index(s->rr)].name);
    if (s->wc)
        rec.cluster = alog_cstr(s->wc->gc->cfg->name);
    rec.source = alog_cstr(s->peer_ip);
    rec.outcome = err ? ALOG_UNAVAILABLE : ALOG_OK;
    rec.bytes_in = st ? st->bytes_up : 0;
    rec.bytes_out = st ? st->bytes_down : 0;
    rec.reason = alog_cstr(err);
    alog_write(w->alog, &rec);
}

static void sess_end(struct tsess *s, const char *err)
{
    if (err) {
        sess_log(s, NULL, err);
        loop_timer_cancel(s->w->loop, &s->timer);
        if (s->io.cb)
            loop_io_del(s->w->loop, &s->io);
        sio_tls_close(&s->cs);
        close(s->cfd);
        metrics_gauge_add(s->w->shard, s->gl->m_conn_active, -1);
        worker_conn_closed(s->w);
    }
    wgen_release(s->wg);
    /* Deferred: an event for s->io may still be in this batch. */
    loop_defer_free(s->w->loop, free, s);
}

static void tunnel_done(void *ud, const struct tunnel_stats *st)
{
    struct tsess *s = ud;
    sess_log(s, st, NULL);
    wgen_release(s->wg);
    free(s);
}

static void sess_connect(struct tsess *s);

static void sess_connected(void *owner, struct uconn *uc, int err)
{
    struct tsess *s = owner;
    struct worker *w = s->w;
    uconn_try_done(s->wc, &s->ct, err);
    if (err) {
        sess_connect(s);
        return;
    }
    /* The tunnel now owns the client socket; the session stays as the
     * tunnel's log context, and its client-side accounting moves there. */
    metrics_gauge_add(w->shard, s->gl->m_conn_active, -1);
    worker_conn_closed(w);
    struct buf a = {0}, b = {0};
    struct tunnel_attrs attrs = {tcp_sess_attr, s};
    tunnel_new(w, s->gl, &s->cs, &a, &b, uc, s->gl->cfg->idle_timeout_ms, tunnel_done, s, &attrs);
}

static void sess_io(void *owner, struct uconn *uc, unsigned events) {}

static const struct uconn_ops sess_ops = {sess_connected, sess_io};

/* Tries the next endpoint; ends the session when none is left. */
static void sess_connect(struct tsess *s)
{
    struct uconn *uc;
    int rc = uconn_try_next(s->wc, route_rule_cfg(s->rr), &s->ct, &sess_ops, s, &uc);
    if (rc != UCONN_TRY_STARTED)
        sess_end(s, uconn_try_reason(rc));
}

/* Routes the session on its attributes and starts connecting. */
static void sess_route(struct tsess *s)
{
    struct worker *w = s->w;
    struct gen_listener *gl = s->gl;
    struct tcp_attr_ctx ctx = {s};
    struct attr_src src = {tcp_attr_get, &ctx};
    s->rr = router_match(gl->router, &src);
    const char *why;
    const struct cfg_authz *deny = authz_check(gl->authz, &src, &why);
    if (deny) {
        /* TCP has no way to say no: the connection is closed. */
        metrics_add(w->shard, gl->m_denied, 1);
        snprintf(s->errbuf, sizeof(s->errbuf), "%s %s", why, deny->name);
        sess_end(s, s->errbuf);
        return;
    }
    int lim = rl_check_now(gl->rl, &src, NULL);
    if (lim >= 0) {
        metrics_add(w->shard, gl->m_limited[lim], 1);
        snprintf(s->errbuf, sizeof(s->errbuf), "rate limited by %s", rl_list_at(gl->rl, lim)->name);
        sess_end(s, s->errbuf);
        return;
    }
    if (!s->rr) {
        metrics_add(w->shard, gl->noroute.tcp_conns, 1);
        sess_end(s, "no route matched");
        return;
    }
    struct gen_rule *gr = &gl->rules[route_rule_index(s->rr)];
    const struct cfg_rule *cr = route_rule_cfg(s->rr);
    int b = route_pick_backend(s->rr, (uint32_t)worker_rand(w));
    int ci = b >= 0 ? gen_cluster_index(s->wg->gen, cr->backends[b].cluster) : -1;
    if (ci < 0) {
        metrics_add(w->shard, gr->direct.tcp_conns, 1);
        sess_end(s, "no backend available");
        return;
    }
    s->stats = &gr->backends[b];
    metrics_add(w->shard, s->stats->tcp_conns, 1);
    s->wc = &s->wg->clusters[ci];
    sess_connect(s);
}

/* The first bytes arrived: finish the handshake or read the ClientHello,
 * then route. Both are bounded by the listener's header timeout. */
static void sess_pre_io(struct loop *l, struct loop_io *io, unsigned events)
{
    struct tsess *s = io->ud;
    if (s->cs.tls) {
        int rc = tls_conn_handshake(s->cs.tls);
        if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
            loop_io_set(l, io, rc == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE);
            return;
        }
        if (rc != 1) {
            metrics_add(s->w->shard, s->gl->m_tls_errors, 1);
            sess_end(s, "TLS handshake failed");
            return;
        }
    } else {
        unsigned char hello[TLS_HELLO_MAX + 64];
        ssize_t n = recv(io->fd, hello, sizeof(hello), MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        int rc = n > 0 ? tls_peek_client_hello(hello, (size_t)n, s->sni, sizeof(s->sni), s->alpn,
                                               sizeof(s->alpn))
                       : -1;
        if (rc == 0 && (size_t)n < sizeof(hello))
            return; /* wait for the rest of the ClientHello */
        if (rc != 1) {
            sess_end(s, n == 0 ? "client closed before its ClientHello" : "not a TLS ClientHello");
            return;
        }
        s->peeked = 1;
    }
    loop_timer_cancel(l, &s->timer);
    loop_io_del(l, io);
    s->io.cb = NULL;
    sess_route(s);
}

static void sess_pre_timeout(struct loop *l, struct loop_timer *t)
{
    sess_end(t->ud, "timed out waiting for the TLS handshake");
}

static void tcp_accept(struct worker *w, struct gen_listener *gl, int fd,
                       const struct sockaddr_storage *peer)
{
    struct tsess *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return;
    }
    s->w = w;
    s->gl = gl;
    s->wg = worker_wgen(w);
    wgen_hold(s->wg);
    s->cfd = fd;
    s->cs.fd = fd;
    s->t_start_us = loop_now_us();
    net_ip_str((const struct sockaddr *)peer, s->peer_ip, sizeof(s->peer_ip));
    snprintf(s->port, sizeof(s->port), "%d", net_port((const struct sockaddr *)&gl->cfg->addr));
    net_nodelay(fd);
    worker_conn_opened(w);
    metrics_gauge_add(w->shard, gl->m_conn_active, 1);
    metrics_add(w->shard, gl->m_conn_total, 1);
    if (!gl->tls && gl->cfg->proto != CFG_PROTO_TLS_PASSTHROUGH) {
        sess_route(s);
        return;
    }
    if (gl->tls && !(s->cs.tls = tls_conn_server(gl->tls, fd))) {
        sess_end(s, "out of memory");
        return;
    }
    s->io.fd = fd;
    s->io.cb = sess_pre_io;
    s->io.ud = s;
    s->timer.cb = sess_pre_timeout;
    s->timer.ud = s;
    if (loop_io_add(w->loop, &s->io, LOOP_READ) < 0) {
        s->io.cb = NULL;
        sess_end(s, "cannot watch the connection");
        return;
    }
    loop_timer_arm(w->loop, &s->timer, loop_now(w->loop) + gl->cfg->header_timeout_ms);
}

static void tcp_drain(struct worker *w) {}

const struct proto_handler tcp_handler = {"tcp", tcp_accept, tcp_drain};
