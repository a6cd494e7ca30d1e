/* db_check.h - active checks of read replicas (Cluster spec.replicaCheck).
 *
 * Each worker checks the endpoints of a replica cluster on its own loop,
 * for its own view of the cluster (struct wcluster), once a database
 * session of that worker has routed a read there. Every `interval` each
 * endpoint gets one check: connect (non-blocking), log in with the
 * cluster's auth (PostgreSQL: trust, md5, cleartext, SCRAM-SHA-256;
 * MySQL/MariaDB: mysql_native_password), run the lag query and read the
 * lag in seconds. The connection stays open for the next check; a failed
 * check closes it and the next one reconnects.
 *
 * An endpoint is out when its last check failed (connect, login, query
 * error, timeout), said NULL (not replicating) or reported more lag than
 * maxLag, and before its first result; one good check brings it back.
 * Routing (db.c) sends no read to an out endpoint and none at all to the
 * cluster when every endpoint is out: the reads go to the primary.
 *
 * Gauges strand_db_replica_up{cluster,endpoint} (1 in, 0 out) and
 * strand_db_replica_lag_seconds (-1 when unknown) show the latest result
 * of any worker: each result replaces a process-wide published value and
 * the worker adds the difference to its own shard, so the shards always
 * sum to the last published value. */
#ifndef STRAND_DB_CHECK_H
#define STRAND_DB_CHECK_H

#include <stdint.h>

struct wcluster;
struct db_check;

/* Starts the checks of wc's endpoints for the listener protocol proto
 * (CFG_PROTO_POSTGRES or CFG_PROTO_MYSQL), unless wc's cluster has no
 * replicaCheck or they already run (the first protocol stays). wc:
 * borrowed; the checker it creates is wc->dbc, freed by db_check_free.
 * Worker thread only. 0, or -1 when out of memory. */
int db_check_start(struct wcluster *wc, int proto);

/* Endpoints of wc (bit i = endpoint i) that must not take reads now: out
 * by their last check or not checked yet. 0 when the cluster has no
 * replicaCheck; every endpoint when the checks could not start. wc:
 * borrowed. */
uint64_t db_check_out_mask(const struct wcluster *wc);

/* Stops the checks and frees dc (NULL allowed); sockets are closed now,
 * memory after the loop's current batch. Takes ownership. */
void db_check_free(struct db_check *dc);

#endif
