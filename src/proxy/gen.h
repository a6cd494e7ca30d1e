/* gen.h - a configuration generation: everything built once from a config
 * and shared read-only by every worker (routers, metric series ids, listening
 * sockets). A reload builds a new generation and hands it to the workers;
 * the old one lives until the last connection that uses it has finished. */
#ifndef STRAND_GEN_H
#define STRAND_GEN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct router;
struct tls_server;
struct authz;
struct tls_client;
struct rl_set;
struct rl_list;
struct db_table_set;
struct pg_users;
struct my_users;
struct wf_gen;

/* Series ids of one (listener, rule, backend) combination. */
struct gen_db_ids;

struct gen_stats {
    uint32_t code[6];       /* strand_http_requests_total by status class 1xx..5xx; [0] unused */
    uint32_t duration;      /* strand_http_request_duration_seconds */
    uint32_t tcp_conns;     /* strand_tcp_connections_total */
    /* strand_grpc_requests_total by grpc-status (0-16), registered on first
     * use (most routes never see gRPC): 0 = not yet, else id + 1. Written
     * with release, read with acquire, so a worker sees the id only after
     * the registry made room for it in every shard. */
    _Atomic uint32_t grpc[17];
    const char *listener, *route, *cluster; /* label values (gen/config-owned) */
    /* Database statement series (db.h), registered on first use; the
     * block itself is allocated on first use too (freed with the gen). */
    _Atomic(struct gen_db_ids *) db;
};

/* Which database series gen_stats_db returns. */
enum { GEN_DB_STATEMENTS, GEN_DB_DURATION, GEN_DB_ROWS };

/* The strand_grpc_requests_total series of s for grpc-status code (0-16;
 * others count as UNKNOWN), registered when first needed. Any thread. */
uint32_t gen_stats_grpc(struct gen_stats *s, int code);
/* The series of s for database statements of verb (SQLC_V_*, the label is
 * its name) and, for GEN_DB_STATEMENTS, outcome (enum db_outcome: ok, error,
 * denied, failed, limited): strand_db_statements_total, ..._duration_seconds,
 * strand_db_rows_total. Registered when first needed; METRICS_INVALID on
 * failure (safe to use). Any thread. */
uint32_t gen_stats_db(struct gen_stats *s, int kind, int verb, int outcome);

struct gen_rule {
    char *name;                 /* "<route>/<rule>": metrics label and log field */
    struct gen_stats *backends; /* one per cfg_rule backend */
    struct gen_stats direct;    /* direct responses and local refusals */
};

struct gen_listener {
    const struct cfg_listener *cfg;
    struct router *router;
    struct gen_rule *rules;     /* indexed by route_rule_index() */
    size_t nrules;
    struct gen_stats noroute;   /* requests that matched no rule */
    int *fds;                   /* listening socket per worker (owned by the server) */
    struct tls_server *tls;     /* TLS termination, or NULL */
    struct authz *authz;        /* authorization policies, or NULL when none */
    struct rl_list *rl;         /* rate limits, or NULL when none */
    struct pg_users *pg_users;  /* postgres spec.auth: clients the proxy authenticates */
    struct my_users *my_users;  /* mysql spec.auth: likewise */
    uint32_t *m_limited;        /* strand_ratelimited_total per RateLimit of rl */
    /* Table names with their own strand_db_table_statements_total series
     * (db_metrics.c), made on first use, freed with the generation. */
    _Atomic(struct db_table_set *) tables;
    uint16_t *wasm;             /* WasmPlugins on this listener (indices of
                                 * cfg->wasm), by order; wasm_filter.c */
    uint32_t nwasm;
    uint32_t m_tls_errors, m_denied;
    uint32_t m_conn_active, m_conn_total, m_bytes_in, m_bytes_out;
};

/* Circuit-breaker counts of one cluster name across all workers and all
 * generations: the limits are per cluster, not per worker, and a reload must
 * not reset them while the old generation's connections drain. Atomic adds,
 * touched once per request. */
struct gen_limits {
    atomic_uint conns, pending, active;
};

struct gen_cluster {
    const struct cfg_cluster *cfg;
    struct tls_client *tls;     /* TLS origination, or NULL */
    struct gen_limits *lim;     /* shared by every generation with this cluster name */
    uint32_t m_conn_active, m_retries, m_ejections, m_overflow;
    /* Clusters with auth (database logins the proxy makes): pooled
     * PostgreSQL server connections and how often one was reused. */
    uint32_t m_pool_conns, m_pool_reused;
    uint32_t *m_endpoint;       /* per endpoint, 6 outcomes: see enum outcome */
};

enum outcome {
    OUTCOME_OK = 0,
    OUTCOME_CLIENT_ERROR,
    OUTCOME_SERVER_ERROR,
    OUTCOME_TIMEOUT,
    OUTCOME_UNAVAILABLE,
    OUTCOME_RESET,
    OUTCOME_N
};
extern const char *const outcome_names[OUTCOME_N];
/* The access log's outcome for each (enum alog_outcome values). */
extern const int outcome_alog[OUTCOME_N];
/* Wall-clock milliseconds since the epoch, for log records. */
uint64_t unix_ms(void);

struct gen {
    atomic_int refs;
    uint64_t id;
    struct config *cfg;
    unsigned nworkers;
    struct gen_listener *listeners;
    size_t nlisteners;
    struct gen_cluster *clusters;   /* same order as cfg->clusters */
    size_t nclusters;
    struct rl_set *rl;              /* every RateLimit's buckets, or NULL */
    struct wf_gen *wasm;            /* loaded WasmPlugins (wasm_filter.c), or NULL */
};

/* Builds a generation from cfg, taking ownership of cfg on success (on
 * failure cfg stays the caller's). Listening sockets are not opened here
 * (gen_listener.fds is allocated and filled with -1). NULL + err on error. */
struct gen *gen_build(struct config *cfg, unsigned nworkers, uint64_t id, char *err, size_t errlen);
/* Adds a reference; returns g. */
struct gen *gen_ref(struct gen *g);
/* Drops a reference; the last one frees the generation and its config (not
 * the listening sockets, which the server owns). Safe from any thread. */
void gen_unref(struct gen *g);
/* Frees the per-name limit counters; call once, after the last generation
 * is gone (process exit). */
void gen_limits_free(void);
/* Index of the cluster named `name` in g->clusters, or -1. */
int gen_cluster_index(const struct gen *g, const char *name);

#endif
