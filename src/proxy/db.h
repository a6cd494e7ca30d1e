/* db.h - what the PostgreSQL (pg_proxy.c) and MySQL (mysql_proxy.c) proxies
 * share: the attributes of a database session and of one statement, and
 * the per-statement golden metrics.
 *
 * A session is routed once, when the client has said who it is (db.user,
 * db.name, source.*), like a TCP connection. Every statement is then
 * classified (src/proto/sql) and checked against the listener's
 * AuthorizationPolicies with the statement's attributes added (sql.command,
 * sql.verb, sql.tables, sql.in_transaction); a refused statement is
 * answered in the protocol's own words and the session goes on. */
#ifndef STRAND_DB_H
#define STRAND_DB_H

#include <stdint.h>

#include "proto/sql/sqlc.h"
#include "proxy/gen.h"
#include "router/attr.h"

struct worker;

/* The attributes of a session and, while one is being checked, of its
 * current statement. Strings are borrowed from the session (NUL-terminated
 * copies it owns) or from the statement's bytes; `cls` may be NULL between
 * statements (then the sql.* attributes other than sql.in_transaction are
 * absent). */
struct db_attrs {
    const char *proto;           /* "postgres" or "mysql": the protocol attribute */
    const char *user;            /* db.user, or NULL */
    const char *dbname;          /* db.name, or NULL */
    const char *peer_ip;         /* source.address */
    const char *identity;        /* source.identity (TLS client certificate), or NULL */
    const char *port;            /* destination.port, as text */
    const char *command;         /* sql.command: "query", "prepare", "execute", ... or NULL */
    const struct sqlc_result *cls; /* sql.verb, sql.tables */
    int in_transaction;          /* sql.in_transaction: "true" / "false" */
};

/* attr_src getter over a struct db_attrs (ctx). */
int db_attr_get(void *ctx, const struct attr_key *key, attr_val *out, int max);

/* Statement outcomes in the metrics: ok, or error (the server's), denied
 * (a policy), failed (the upstream went away). */
enum db_outcome { DB_OK, DB_ERROR, DB_DENIED, DB_FAILED, DB_LIMITED, DB_OUTCOME_N };

/* Records one finished statement against s (the route backend's stats, or
 * the listener's noroute/direct ones): strand_db_statements_total{listener,
 * route,cluster,verb,outcome}, strand_db_statement_duration_seconds{...,verb}
 * and strand_db_rows_total{...,verb} (rows as the protocol reported them;
 * pass 0 when unknown). Series are registered on first use (most routes see
 * few verbs). verb: sqlc's verb index (SQLC_V_*). Worker thread only. */
void db_stmt_record(struct worker *w, struct gen_stats *s, int verb, enum db_outcome outcome,
                    uint64_t duration_us, uint64_t rows);

/* Read/write split. A statement may leave the session's home connection
 * for a read replica only when it is a pure read (not a locking read, not
 * a session-state change, not transaction control, fully lexed). */
int db_replica_eligible(unsigned sqlc_flags);
struct wgen;
struct wcluster;
struct route_rule;
/* Routes the statement again (a: the session's attributes with the
 * statement's cls and command set; borrowed) and returns the cluster its
 * rule picks when that is not home, the proxy can log into it (Cluster
 * auth) and at least one of its endpoints is usable for reads (below),
 * with *rr and *stats (the rule backend's) set; NULL otherwise: the read
 * goes home. Starts the cluster's replica checks (db_check.h) the first
 * time, for the session's protocol (a->proto). */
struct wcluster *db_replica_route(struct worker *w, struct gen_listener *gl, struct wgen *wg,
                                  const struct wcluster *home, struct db_attrs *a,
                                  const struct route_rule **rr, struct gen_stats **stats);

/* Endpoints of a replica cluster (bit i = endpoint i) that must not take
 * reads now: ejected by the load balancer's outlier detection, or out by
 * the replica checks (Cluster replicaCheck). wc: borrowed. */
uint64_t db_replica_unusable(struct wcluster *wc);
/* 1 when some endpoint of wc with a weight may take reads now. */
int db_replica_any_usable(struct wcluster *wc);
struct uconn_try;
struct uconn_ops;
struct uconn;
struct cfg_rule;
/* uconn_try_next for a replica connection: only usable endpoints not tried
 * yet, never lb_pick's fallbacks (UCONN_TRY_NO_ENDPOINT instead, and the
 * read goes home). Arguments as uconn_try_next's. */
int db_replica_connect(struct wcluster *wc, const struct cfg_rule *cr, struct uconn_try *t,
                       const struct uconn_ops *ops, void *owner, struct uconn **out);
/* A session whose replica failed sends its reads home this long, then
 * tries the replica cluster again (if an endpoint is usable by then). */
#define DB_REPLICA_RETRY_US 3000000ull

/* The session's access-log record (one per database session): protocol
 * ALOG_POSTGRES or ALOG_MYSQL; err NULL when it ended well (else the
 * reason, and the outcome says unavailable). All pointers borrowed; rr and
 * wc may be NULL (not routed / not connected). */
struct route_rule;
struct wcluster;
void db_log_session(struct worker *w, int protocol, const struct gen_listener *gl,
                    const struct route_rule *rr, const struct wcluster *wc, const char *peer_ip,
                    uint64_t t_start_us, uint64_t bytes_in, uint64_t bytes_out, const char *err);

/* Why a statement is refused: not at all, by an AuthorizationPolicy, or by
 * a RateLimit (which only sees statements the policies let through). */
enum { REF_NONE = 0, REF_DENIED = 1, REF_LIMITED = 2 };
struct attr_src;
/* Checks a classified statement (src, borrowed) against gl's policies and
 * RateLimits and counts a refusal in their metrics. Returns REF_*; *name:
 * the refusing policy's / RateLimit's name (config-owned). */
int db_stmt_refusal(struct worker *w, const struct gen_listener *gl, const struct attr_src *src,
                    const char **name);
/* strand_db_table_statements_total{listener,table,verb}: one per table cls
 * names (db_metrics.c). Call for statements sent to a server. Borrows. */
void db_count_tables(struct worker *w, struct gen_listener *gl, const struct sqlc_result *cls);
/* strand_db_errors_total{listener,route,cluster,code} for a statement the
 * server answered with error `code` (SQLSTATE, or a MySQL error number as
 * text). s may be NULL (nothing counted). Borrows. */
void db_stmt_error(struct worker *w, struct gen_stats *s, const char *code);
/* Frees a listener's table-name set (NULL allowed); gen.c at the end. */
struct db_table_set;
void db_table_set_free(struct db_table_set *t);
/* The RateLimit part of db_stmt_refusal alone (for a caller that checks
 * policies itself): 1 and *name set when a RateLimit refuses src, counted. */
int db_stmt_limited(struct worker *w, const struct gen_listener *gl, const struct attr_src *src,
                    const char **name);
static inline enum db_outcome db_refusal_outcome(int ref)
{
    return ref == REF_LIMITED ? DB_LIMITED : DB_DENIED;
}

#endif
