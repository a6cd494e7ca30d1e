/* gen.c - builds a generation: routers per listener and the metric series
 * every request will touch, so the request path only adds to known ids. */
#include "proxy/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "core/net.h"
#include "proto/http2/grpc.h"
#include "proto/sql/sqlc.h"
#include "proxy/accesslog.h"
#include "proxy/db.h"
#include "proxy/metrics.h"
#include "proxy/my_users.h"
#include "proxy/pg_users.h"
#include "proxy/wasm_filter.h"
#include "router/authz.h"
#include "router/ratelimit.h"
#include "router/router.h"
#include "tls/tls.h"

const char *const outcome_names[OUTCOME_N] = {
    "ok", "client_error", "server_error", "timeout", "unavailable", "reset",
};

const int outcome_alog[OUTCOME_N] = {
    ALOG_OK, ALOG_CLIENT_ERROR, ALOG_SERVER_ERROR, ALOG_TIMEOUT, ALOG_UNAVAILABLE, ALOG_SERVER_ERROR,
};

uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define H_REQS "Requests handled, by listener, route, cluster and status class."
#define H_DUR "Request latency from first byte received to last byte sent."
#define H_TCP "TCP connections proxied, by listener, route and cluster."

/* Cluster name -> shared limit counters. Only the main thread builds
 * generations, so the list needs no lock; entries live until exit. */
struct limits_entry {
    struct gen_limits lim;
    struct limits_entry *next;
    char name[];
};
static struct limits_entry *limits_list;

static struct gen_limits *limits_for(const char *name)
{
    for (struct limits_entry *e = limits_list; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return &e->lim;
    size_t n = strlen(name) + 1;
    struct limits_entry *e = calloc(1, sizeof(*e) + n);
    if (!e)
        return NULL;
    memcpy(e->name, name, n);
    e->next = limits_list;
    limits_list = e;
    return &e->lim;
}

void gen_limits_free(void)
{
    while (limits_list) {
        struct limits_entry *n = limits_list->next;
        free(limits_list);
        limits_list = n;
    }
}

static void esc(char *out, size_t outlen, const char *in)
{
    metrics_label_escape(out, outlen, in ? in : "");
}

static void stats_init(struct gen_stats *s, const char *listener, const char *route,
                       const char *cluster, int tcp)
{
    char l[256], r[512], c[256], labels[1200];
    esc(l, sizeof(l), listener);
    esc(r, sizeof(r), route);
    esc(c, sizeof(c), cluster);
    memset(s, 0, sizeof(*s));
    s->listener = listener;
    s->route = route;
    s->cluster = cluster;
    if (tcp) {
        snprintf(labels, sizeof(labels), "listener=\"%s\",route=\"%s\",cluster=\"%s\"", l, r, c);
        s->tcp_conns = metrics_counter("strand_tcp_connections_total", H_TCP, labels);
        return;
    }
    for (int k = 1; k <= 5; k++) {
        snprintf(labels, sizeof(labels),
                 "listener=\"%s\",route=\"%s\",cluster=\"%s\",code=\"%dxx\"", l, r, c, k);
        s->code[k] = metrics_counter("strand_http_requests_total", H_REQS, labels);
    }
    snprintf(labels, sizeof(labels), "listener=\"%s\",route=\"%s\",cluster=\"%s\"", l, r, c);
    s->duration = metrics_histogram("strand_http_request_duration_seconds", H_DUR, labels);
}

uint32_t gen_stats_grpc(struct gen_stats *s, int code)
{
    if (code < 0 || code > 16)
        code = 2; /* UNKNOWN, as gRPC says for codes it does not know */
    uint32_t id = atomic_load_explicit(&s->grpc[code], memory_order_acquire);
    if (id)
        return id - 1;
    char l[256], r[512], c[256], labels[1300];
    esc(l, sizeof(l), s->listener);
    esc(r, sizeof(r), s->route);
    esc(c, sizeof(c), s->cluster);
    snprintf(labels, sizeof(labels),
             "listener=\"%s\",route=\"%s\",cluster=\"%s\",grpc_status=\"%s\"", l, r, c,
             grpc_status_name(code));
    id = metrics_counter("strand_grpc_requests_total",
                         "gRPC calls completed, by grpc-status (the proxy's own refusals "
                         "included).",
                         labels);
    /* Two workers may race here: both get the same id from the registry. */
    atomic_store_explicit(&s->grpc[code], id + 1, memory_order_release);
    return id;
}

struct gen_db_ids {
    _Atomic uint32_t stmts[SQLC_V_COUNT_][5];
    _Atomic uint32_t dur[SQLC_V_COUNT_];
    _Atomic uint32_t rows[SQLC_V_COUNT_];
};

uint32_t gen_stats_db(struct gen_stats *s, int kind, int verb, int outcome)
{
    static const char *const outcomes[5] = {"ok", "error", "denied", "failed", "limited"};
    if (verb < 0 || verb >= SQLC_V_COUNT_ || outcome < 0 || outcome > 4)
        return METRICS_INVALID;
    struct gen_db_ids *d = atomic_load_explicit(&s->db, memory_order_acquire);
    if (!d) {
        struct gen_db_ids *n = calloc(1, sizeof(*n));
        if (!n)
            return METRICS_INVALID;
        struct gen_db_ids *expect = NULL;
        if (atomic_compare_exchange_strong_explicit(&s->db, &expect, n, memory_order_acq_rel,
                                                    memory_order_acquire))
            d = n;
        else {
            free(n); /* another worker was first */
            d = expect;
        }
    }
    _Atomic uint32_t *slot = kind == GEN_DB_STATEMENTS ? &d->stmts[verb][outcome]
                             : kind == GEN_DB_DURATION ? &d->dur[verb]
                                                       : &d->rows[verb];
    uint32_t id = atomic_load_explicit(slot, memory_order_acquire);
    if (id)
        return id - 1;
    char l[256], r[512], c[256], labels[1400];
    esc(l, sizeof(l), s->listener);
    esc(r, sizeof(r), s->route);
    esc(c, sizeof(c), s->cluster);
    int n = snprintf(labels, sizeof(labels), "listener=\"%s\",route=\"%s\",cluster=\"%s\",verb=\"%s\"",
                     l, r, c, sqlc_verb_name((enum sqlc_verb)verb));
    if (kind == GEN_DB_STATEMENTS)
        snprintf(labels + n, sizeof(labels) - (size_t)n, ",outcome=\"%s\"", outcomes[outcome]);
    if (kind == GEN_DB_STATEMENTS)
        id = metrics_counter("strand_db_statements_total",
                             "Database statements, by listener, route, cluster, verb and "
                             "outcome (ok, error from the server, denied by a policy, failed "
                             "with the upstream, limited by a RateLimit).",
                             labels);
    else if (kind == GEN_DB_DURATION)
        id = metrics_histogram("strand_db_statement_duration_seconds",
                               "Database statement latency, from the statement received to "
                               "its response complete.",
                               labels);
    else
        id = metrics_counter("strand_db_rows_total",
                             "Rows returned or affected, as the database reported them.",
                             labels);
    atomic_store_explicit(slot, id + 1, memory_order_release);
    return id;
}

static void stats_free(struct gen_stats *s) { free(atomic_load(&s->db)); }

static void listener_metrics(struct gen_listener *gl)
{
    char l[256], labels[300];
    esc(l, sizeof(l), gl->cfg->name);
    snprintf(labels, sizeof(labels), "listener=\"%s\"", l);
    gl->m_conn_active = metrics_gauge("strand_downstream_connections_active",
                                      "Open client connections.", labels);
    gl->m_conn_total = metrics_counter("strand_downstream_connections_total",
                                       "Client connections accepted.", labels);
    gl->m_bytes_in = metrics_counter("strand_downstream_bytes_received_total",
                                     "Bytes received from clients.", labels);
    gl->m_bytes_out = metrics_counter("strand_downstream_bytes_sent_total",
                                      "Bytes sent to clients.", labels);
    gl->m_denied = metrics_counter("strand_authz_denied_total",
                                   "Messages refused by authorization policies.", labels);
    gl->m_tls_errors = metrics_counter("strand_downstream_tls_handshake_errors_total",
                                       "TLS handshakes with clients that failed.", labels);
}

/* strand_ratelimited_total{listener,ratelimit} for each RateLimit of gl. */
static int ratelimit_metrics(struct gen_listener *gl)
{
    size_t n = rl_list_count(gl->rl);
    if (n == 0)
        return 0;
    if (!(gl->m_limited = calloc(n, sizeof(*gl->m_limited))))
        return -1;
    char l[256], r[256], labels[600];
    esc(l, sizeof(l), gl->cfg->name);
    for (size_t i = 0; i < n; i++) {
        esc(r, sizeof(r), rl_list_at(gl->rl, i)->name);
        snprintf(labels, sizeof(labels), "listener=\"%s\",ratelimit=\"%s\"", l, r);
        gl->m_limited[i] = metrics_counter("strand_ratelimited_total",
                                           "Messages refused by a RateLimit.", labels);
    }
    return 0;
}

static int cluster_metrics(struct gen_cluster *gc)
{
    char c[256], e[256], labels[700];
    esc(c, sizeof(c), gc->cfg->name);
    snprintf(labels, sizeof(labels), "cluster=\"%s\"", c);
    gc->m_conn_active = metrics_gauge("strand_upstream_connections_active",
                                      "Open connections to upstream endpoints.", labels);
    gc->m_retries = metrics_counter("strand_upstream_retries_total", "Retries attempted.", labels);
    gc->m_ejections = metrics_counter("strand_upstream_ejections_total",
                                      "Endpoints ejected by outlier detection.", labels);
    gc->m_overflow = metrics_counter("strand_upstream_overflow_total",
                                     "Requests refused by a cluster limit.", labels);
    gc->m_pool_conns = gc->m_pool_reused = METRICS_INVALID;
    if (gc->cfg->auth_user) {
        gc->m_pool_conns = metrics_gauge("strand_db_pool_connections",
                                         "Server connections kept for reuse (being reset or idle).",
                                         labels);
        gc->m_pool_reused = metrics_counter("strand_db_pool_reused_total",
                                            "Sessions that got a pooled server connection.",
                                            labels);
    }
    gc->m_endpoint = calloc(gc->cfg->nendpoints * OUTCOME_N, sizeof(uint32_t));
    if (!gc->m_endpoint)
        return -1;
    for (size_t i = 0; i < gc->cfg->nendpoints; i++) {
        esc(e, sizeof(e), gc->cfg->endpoints[i].address);
        for (int o = 0; o < OUTCOME_N; o++) {
            snprintf(labels, sizeof(labels), "cluster=\"%s\",endpoint=\"%s\",outcome=\"%s\"", c,
                     e, outcome_names[o]);
            gc->m_endpoint[i * OUTCOME_N + o] = metrics_counter(
                "strand_upstream_requests_total", "Attempts sent to upstream endpoints.", labels);
        }
    }
    return 0;
}

/* Reads the listener's certificates now, so a bad file rejects the whole
 * configuration (and a reload keeps the running one). */
static int listener_tls(struct gen_listener *gl, char *err, size_t errlen)
{
    const struct cfg_listener_tls *t = &gl->cfg->tls;
    if (!t->enabled)
        return 0;
    struct tls_cert_spec certs[100];
    size_t n = t->ncerts < 100 ? t->ncerts : 100;
    for (size_t i = 0; i < n; i++)
        certs[i] = (struct tls_cert_spec){t->certs[i].cert_file, t->certs[i].key_file,
                                          (const char **)t->certs[i].sni, t->certs[i].nsni};
    struct tls_server_spec spec = {certs, n, (const char **)t->alpn, t->nalpn,
                                   t->client_ca_file, t->require_client_cert, t->min_version};
    char why[512];
    gl->tls = tls_server_new(&spec, why, sizeof(why));
    if (!gl->tls) {
        snprintf(err, errlen, "%s:%d: listener %s: tls: %s", gl->cfg->where.file,
                 gl->cfg->where.line, gl->cfg->name, why);
        return -1;
    }
    return 0;
}

static int cluster_tls(struct gen_cluster *gc, char *err, size_t errlen)
{
    const struct cfg_cluster_tls *t = &gc->cfg->tls;
    if (!t->enabled)
        return 0;
    struct tls_client_spec spec = {t->ca_file, t->verify, t->sni, (const char **)t->alpn,
                                   t->nalpn, t->cert_file, t->key_file, NULL};
    char why[512];
    gc->tls = tls_client_new(&spec, why, sizeof(why));
    if (!gc->tls) {
        snprintf(err, errlen, "%s:%d: cluster %s: tls: %s", gc->cfg->where.file,
                 gc->cfg->where.line, gc->cfg->name, why);
        return -1;
    }
    return 0;
}

static int listener_build(struct gen *g, struct gen_listener *gl, char *err, size_t errlen)
{
    const struct cfg_listener *lc = gl->cfg;
    int tcp = lc->proto == CFG_PROTO_TCP;
    gl->fds = malloc(g->nworkers * sizeof(int));
    if (!gl->fds)
        goto oom;
    for (unsigned i = 0; i < g->nworkers; i++)
        gl->fds[i] = -1;
    gl->router = router_build(g->cfg, lc->name, err, errlen);
    if (!gl->router || listener_tls(gl, err, errlen) < 0)
        return -1;
    gl->authz = authz_build(g->cfg, lc->name, err, errlen);
    if (!gl->authz && err[0])
        return -1;
    gl->rl = rl_list_build(g->rl, lc->name, err, errlen);
    if (!gl->rl && err[0])
        return -1;
    err[0] = 0;
    if (lc->proto == CFG_PROTO_POSTGRES)
        gl->pg_users = pg_users_build(lc, err, errlen);
    else
        gl->my_users = my_users_build(lc, err, errlen);
    if (err[0])
        return -1;
    listener_metrics(gl);
    if (ratelimit_metrics(gl) < 0)
        goto oom;
    stats_init(&gl->noroute, lc->name, "", "", tcp);
    gl->nrules = router_nrules(gl->router);
    gl->rules = calloc(gl->nrules ? gl->nrules : 1, sizeof(*gl->rules));
    if (!gl->rules)
        goto oom;
    for (size_t i = 0; i < gl->nrules; i++) {
        const struct route_rule *rr = router_rule(gl->router, i);
        const struct cfg_rule *cr = route_rule_cfg(rr);
        const char *rn = route_rule_name(rr);
        struct gen_rule *gr = &gl->rules[i];
        /* Unnamed rules are already "<route>/<index>"; named ones get the
         * route in front so the label is unique across routes. */
        size_t nl = strlen(rn) + strlen(route_rule_route(rr)->name) + 2;
        gr->name = malloc(nl);
        if (!gr->name)
            goto oom;
        if (strchr(rn, '/'))
            snprintf(gr->name, nl, "%s", rn);
        else
            snprintf(gr->name, nl, "%s/%s", route_rule_route(rr)->name, rn);
        const char *rname = gr->name;
        stats_init(&gr->direct, lc->name, rname, "", tcp);
        gr->backends = calloc(cr->nbackends ? cr->nbackends : 1, sizeof(*gr->backends));
        if (!gr->backends)
            goto oom;
        for (size_t b = 0; b < cr->nbackends; b++)
            stats_init(&gr->backends[b], lc->name, rname, cr->backends[b].cluster, tcp);
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory building listener %s", lc->name);
    return -1;
}

static void gen_free(struct gen *g)
{
    wf_gen_free(g);
    for (size_t i = 0; i < g->nlisteners; i++) {
        struct gen_listener *gl = &g->listeners[i];
        stats_free(&gl->noroute);
        if (gl->rules)
            for (size_t r = 0; r < gl->nrules; r++) {
                stats_free(&gl->rules[r].direct);
                const struct cfg_rule *cr = route_rule_cfg(router_rule(gl->router, r));
                for (size_t b = 0; gl->rules[r].backends && b < cr->nbackends; b++)
                    stats_free(&gl->rules[r].backends[b]);
                free(gl->rules[r].backends);
                free(gl->rules[r].name);
            }
        free(gl->rules);
        router_free(gl->router);
        tls_server_free(gl->tls);
        authz_free(gl->authz);
        rl_list_free(gl->rl);
        pg_users_free(gl->pg_users);
        my_users_free(gl->my_users);
        free(gl->m_limited);
        db_table_set_free(atomic_load(&gl->tables));
        free(gl->fds);
    }
    for (size_t i = 0; i < g->nclusters; i++) {
        free(g->clusters[i].m_endpoint);
        tls_client_free(g->clusters[i].tls);
    }
    free(g->listeners);
    free(g->clusters);
    rl_set_free(g->rl);
    config_free(g->cfg);
    free(g);
}

/* Takes ownership of cfg on success only; returns a generation with one ref. */
struct gen *gen_build(struct config *cfg, unsigned nworkers, uint64_t id, char *err, size_t errlen)
{
    struct gen *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->id = id;
    g->cfg = cfg;
    g->nworkers = nworkers;
    g->listeners = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*g->listeners));
    g->clusters = calloc(cfg->nclusters ? cfg->nclusters : 1, sizeof(*g->clusters));
    if (!g->listeners || !g->clusters) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    g->nclusters = cfg->nclusters;
    for (size_t i = 0; i < cfg->nclusters; i++) {
        g->clusters[i].cfg = &cfg->clusters[i];
        g->clusters[i].lim = limits_for(cfg->clusters[i].name);
        if (!g->clusters[i].lim || cluster_metrics(&g->clusters[i]) < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (cluster_tls(&g->clusters[i], err, errlen) < 0)
            goto fail;
    }
    g->rl = rl_set_build(cfg, err, errlen);
    if (!g->rl && err[0])
        goto fail;
    g->nlisteners = cfg->nlisteners;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        g->listeners[i].cfg = &cfg->listeners[i];
        if (listener_build(g, &g->listeners[i], err, errlen) < 0)
            goto fail;
    }
    if (wf_gen_build(g, err, errlen) < 0)
        goto fail;
    return g;
fail:
    g->cfg = NULL; /* stays the caller's */
    gen_free(g);
    return NULL;
}

/* Returns g with one more reference. */
struct gen *gen_ref(struct gen *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

/* Drops the caller's reference to g. */
void gen_unref(struct gen *g)
{
    if (g && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
        gen_free(g);
}

int gen_cluster_index(const struct gen *g, const char *name)
{
    for (size_t i = 0; i < g->nclusters; i++)
        if (strcmp(g->clusters[i].cfg->name, name) == 0)
            return (int)i;
    return -1;
}
