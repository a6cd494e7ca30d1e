/* tcp.c - the TCP proxy: route a connection on its attributes (addresses,
 * ports), connect to an endpoint of the chosen cluster (retrying other
 * endpoints on connect failure), then hand both sockets to a tunnel. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "router/router.h"

/* A TCP session before and after its tunnel exists. */
struct tsess {
    struct worker *w;
    struct gen_listener *gl;
    struct wgen *wg;
    struct wcluster *wc;
    const struct route_rule *rr;
    int cfd;
    int ep;
    uint64_t tried;
    uint32_t attempts;
    uint64_t t_start_us, t_attempt_us;
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
        v = "tcp";
        break;
    default:
        return 0;
    }
    if (max > 0)
        out[0] = (attr_val){v, strlen(v)};
    return 1;
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
        close(s->cfd);
        metrics_gauge_add(s->w->shard, s->gl->m_conn_active, -1);
        worker_conn_closed(s->w);
    }
    wgen_release(s->wg);
    free(s);
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
    struct wcluster *wc = s->wc;
    struct worker *w = s->w;
    lb_request_end(wc->lb, s->ep, err ? LB_CONNECT_FAIL : LB_OK, loop_now_us() - s->t_attempt_us,
                   loop_now(w->loop));
    wc->active--;
    metrics_add(w->shard, wc->gc->m_endpoint[s->ep * OUTCOME_N + (err ? OUTCOME_UNAVAILABLE : OUTCOME_OK)], 1);
    if (err) {
        sess_connect(s);
        return;
    }
    /* The tunnel now owns the client socket; the session stays as the
     * tunnel's log context, and its client-side accounting moves there. */
    metrics_gauge_add(w->shard, s->gl->m_conn_active, -1);
    worker_conn_closed(w);
    struct buf a = {0}, b = {0};
    tunnel_new(w, s->gl, s->cfd, &a, &b, uc, s->gl->cfg->idle_timeout_ms, tunnel_done, s);
}

static void sess_io(void *owner, struct uconn *uc, unsigned events) {}

static const struct uconn_ops sess_ops = {sess_connected, sess_io};

/* Tries the next endpoint; ends the session when none is left. */
static void sess_connect(struct tsess *s)
{
    struct wcluster *wc = s->wc;
    const struct cfg_rule *cr = route_rule_cfg(s->rr);
    uint32_t limit = 1 + (cr->retry.attempts > 0 ? cr->retry.attempts : (uint32_t)wc->gc->cfg->nendpoints - 1);
    uint64_t now = loop_now(s->w->loop);
    if (s->attempts >= limit) {
        sess_end(s, "upstream connect error");
        return;
    }
    if (!uconn_can_open(wc)) {
        metrics_add(s->w->shard, wc->gc->m_overflow, 1);
        sess_end(s, "upstream overflow: maxConnections");
        return;
    }
    int ep = lb_pick(wc->lb, 0, 0, s->tried, now);
    if (ep < 0) {
        sess_end(s, "no healthy upstream endpoint");
        return;
    }
    if (s->attempts > 0)
        metrics_add(s->w->shard, wc->gc->m_retries, 1);
    s->attempts++;
    s->ep = ep;
    if (ep < 64)
        s->tried |= 1ull << ep;
    lb_request_start(wc->lb, ep);
    wc->active++;
    s->t_attempt_us = loop_now_us();
    int ready;
    /* TCP streams are never pooled, so this is always a fresh connect. */
    struct uconn *uc = uconn_get(wc, ep, &sess_ops, s, &ready);
    if (!uc) {
        sess_connected(s, NULL, errno);
        return;
    }
    uc->reused = 0;
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
    s->t_start_us = loop_now_us();
    net_ip_str((const struct sockaddr *)peer, s->peer_ip, sizeof(s->peer_ip));
    snprintf(s->port, sizeof(s->port), "%d", net_port((const struct sockaddr *)&gl->cfg->addr));
    net_nodelay(fd);
    worker_conn_opened(w);
    metrics_gauge_add(w->shard, gl->m_conn_active, 1);
    metrics_add(w->shard, gl->m_conn_total, 1);

    struct tcp_attr_ctx ctx = {s};
    struct attr_src src = {tcp_attr_get, &ctx};
    s->rr = router_match(gl->router, &src);
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

static void tcp_drain(struct worker *w) {}

const struct proto_handler tcp_handler = {"tcp", tcp_accept, tcp_drain};
