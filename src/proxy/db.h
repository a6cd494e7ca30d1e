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
    const char *port;            /* destination.port, as text */
    const char *command;         /* sql.command: "query", "prepare", "execute", ... or NULL */
    const struct sqlc_result *cls; /* sql.verb, sql.tables */
    int in_transaction;          /* sql.in_transaction: "true" / "false" */
};

/* attr_src getter over a struct db_attrs (ctx). */
int db_attr_get(void *ctx, const struct attr_key *key, attr_val *out, int max);

/* Statement outcomes in the metrics: ok, or error (the server's), denied
 * (a policy), failed (the upstream went away). */
enum db_outcome { DB_OK, DB_ERROR, DB_DENIED, DB_FAILED, DB_OUTCOME_N };

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
 * rule picks when that is not home and the proxy can log into it (Cluster
 * auth), with *rr and *stats (the rule backend's) set; NULL otherwise. */
struct wcluster *db_replica_route(struct worker *w, struct gen_listener *gl, struct wgen *wg,
                                  const struct wcluster *home, struct db_attrs *a,
                                  const struct route_rule **rr, struct gen_stats **stats);

/* The session's access-log record (one per database session): protocol
 * ALOG_POSTGRES or ALOG_MYSQL; err NULL when it ended well (else the
 * reason, and the outcome says unavailable). All pointers borrowed; rr and
 * wc may be NULL (not routed / not connected). */
struct route_rule;
struct wcluster;
void db_log_session(struct worker *w, int protocol, const struct gen_listener *gl,
                    const struct route_rule *rr, const struct wcluster *wc, const char *peer_ip,
                    uint64_t t_start_us, uint64_t bytes_in, uint64_t bytes_out, const char *err);

#endif
