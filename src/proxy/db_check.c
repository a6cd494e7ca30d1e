/* db_check.c - replica checks: one small client per endpoint of a replica
 * cluster, driven by the worker's loop (see db_check.h).
 *
 * An endpoint's check is a little state machine:
 *
 *   IDLE --timer--> CONNECTING --connected--> LOGIN --ready--> QUERY
 *                                                               |
 *   READY (connection kept) <------------ result ---------------+
 *   READY --timer--> QUERY
 *
 * One timer per endpoint serves both as the check's deadline (connect +
 * login + query within `timeout`) and as the start of the next check
 * (`interval` after the previous one started). Any failure closes the
 * connection and records the endpoint out; the next check reconnects.
 * Messages are decoded with the protocol codecs (src/proto/pg,
 * src/proto/mysql) from a bounded input buffer. */
#include "proxy/db_check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "proto/mysql/my.h"
#include "proto/pg/pg.h"
#include "proto/pg/pg_scram.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/worker.h"

#define DBC_IN_MAX (1u << 20)   /* largest message or packet a check reads */
#define DBC_OUT_MAX 8192u       /* startup/login/query messages */
#define DBC_PG_DATABASE "postgres"
#define DBC_LAG_NULL INT64_MIN  /* the query said NULL: not replicating */

/* The defaults of docs/config.md. PostgreSQL: NULL on a primary (not
 * replicating); on a standby 0 when everything received has been replayed,
 * else the age of the last replayed transaction (more than a read can
 * miss). `<=`, not `=`: a restarted standby streams again from the start
 * of a WAL segment, so until the primary writes again the position
 * received stays behind the one replayed, and `=` would report a growing
 * lag for an idle primary. */
static const char pg_default_query[] =
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0 "
    "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END";
static const char my_default_query[] = "SHOW SLAVE STATUS";

/* ---- published gauges ------------------------------------------------------
 *
 * Several workers (and generations) may check the same endpoint. Gauges are
 * per-shard deltas summed when rendered, so each series keeps one
 * process-wide published value: a worker swaps its result in and adds the
 * difference to its own shard. The exchange orders all updates, so the
 * deltas telescope: the shards sum to the last published value. Entries
 * live until exit, like the series they describe. */
struct dbc_series {
    struct dbc_series *next;
    uint32_t up, lag;
    _Atomic int64_t up_pub, lag_pub;
    char labels[];
};

static pthread_mutex_t series_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dbc_series *series_list;

/* cluster, endpoint: borrowed. Returns the process-wide entry (never
 * freed), or NULL when out of memory. */
static struct dbc_series *series_for(const char *cluster, const char *endpoint)
{
    char c[256], e[256], labels[600];
    metrics_label_escape(c, sizeof(c), cluster);
    metrics_label_escape(e, sizeof(e), endpoint);
    snprintf(labels, sizeof(labels), "cluster=\"%s\",endpoint=\"%s\"", c, e);
    pthread_mutex_lock(&series_mu);
    struct dbc_series *s = series_list;
    while (s && strcmp(s->labels, labels) != 0)
        s = s->next;
    if (!s && (s = calloc(1, sizeof(*s) + strlen(labels) + 1)) != NULL) {
        strcpy(s->labels, labels);
        s->up = metrics_gauge("strand_db_replica_up",
                              "1 when the replica's last check passed (reads may go there), "
                              "0 when it failed, lagged or was not replicating.",
                              labels);
        s->lag = metrics_gauge_milli("strand_db_replica_lag_seconds",
                                     "Replication lag of the replica's last check; -1 when "
                                     "unknown (check failed or not replicating).",
                                     labels);
        s->next = series_list;
        series_list = s;
    }
    pthread_mutex_unlock(&series_mu);
    return s;
}

/* Makes the gauge `id` (published value *pub) read v. shard: the calling
 * worker's. */
static void publish(struct metrics_shard *shard, uint32_t id, _Atomic int64_t *pub, int64_t v)
{
    int64_t old = atomic_exchange(pub, v);
    metrics_gauge_add(shard, id, v - old);
}

/* ---- state ------------------------------------------------------------------ */

enum dbc_state { DC_IDLE, DC_CONNECTING, DC_LOGIN, DC_READY, DC_QUERY };

struct dbc_ep {
    struct db_check *dc;
    int idx;
    enum dbc_state state;
    struct loop_io io;          /* fd -1 when no connection */
    struct loop_timer timer;    /* deadline of the check in flight, else the next check */
    uint64_t started_ms;        /* the current (or last) check began */
    uint8_t known;              /* a check has finished */
    uint8_t up;                 /* its verdict */
    char why_out[64];           /* the reason last logged for being out */
    char *in;                   /* bytes read, not yet decoded */
    uint32_t inlen, incap;
    char out[DBC_OUT_MAX];      /* bytes to write */
    uint32_t outlen, outoff;
    /* the query's answer */
    int got_row;                /* a first row was read */
    int64_t row_lag;            /* its lag column (ms), or DBC_LAG_NULL */
    int bad_value;              /* the lag column is not a number */
    char err[160];              /* an error the server sent */
    struct pg_scram scram;      /* PostgreSQL SCRAM-SHA-256 login */
    /* MySQL */
    uint64_t caps;
    struct my_login login;      /* MySQL: the proxy's login, then caps */
    struct my_resp resp;
    int lag_col;                /* column to read: Seconds_Behind_* or 0 */
    uint64_t cols_seen;
    struct dbc_series *ser;
};

struct db_check {
    struct loop *loop;
    struct lb *lb;              /* the wcluster's (it outlives the checker) */
    struct metrics_shard *shard;
    const struct cfg_cluster *cc;
    int proto;                  /* CFG_PROTO_POSTGRES or CFG_PROTO_MYSQL */
    const char *query;
    size_t n;
    struct dbc_ep ep[];
};

static void ep_begin(struct dbc_ep *e);

/* ---- connection and results -------------------------------------------- */

/* Closes e's connection (if any); the check state goes back to IDLE.
 * e: borrowed (as in every ep_ and protocol function below: the endpoint
 * lives in its db_check). */
static void ep_close(struct dbc_ep *e)
{
    if (e->io.fd >= 0) {
        loop_io_del(e->dc->loop, &e->io);
        close(e->io.fd);
        e->io.fd = -1;
    }
    e->state = DC_IDLE;
    e->inlen = 0;
    e->outlen = e->outoff = 0;
}

/* Records the check's verdict, keeps the connection when ok, and arms the
 * timer for the next check. lag_ms: the lag, DBC_LAG_NULL, or -1 with ok 0
 * (why says what failed). */
static void ep_result(struct dbc_ep *e, int ok, int64_t lag_ms, const char *why)
{
    struct db_check *dc = e->dc;
    const char *addr = dc->cc->endpoints[e->idx].address;
    char reason[200] = "";
    int up = 0;
    if (!ok)
        snprintf(reason, sizeof(reason), "check failed: %s", why);
    else if (lag_ms == DBC_LAG_NULL)
        snprintf(reason, sizeof(reason), "not replicating (lag NULL)");
    else if ((uint64_t)lag_ms > dc->cc->replica_check.max_lag_ms)
        snprintf(reason, sizeof(reason), "lag %.3f s over maxLag", (double)lag_ms / 1000.0);
    else
        up = 1;
    /* Logged on a change of verdict, or of the kind of failure (a lag
     * that merely grows is not news). */
    char kind[64];
    snprintf(kind, sizeof(kind), "%.*s", (int)strcspn(reason, "0123456789"), reason);
    if (up && (!e->known || !e->up)) {
        log_info("replica check: cluster %s endpoint %s in", dc->cc->name, addr);
        /* Back in: an ejection for the failures that put it out would keep
         * reads away for up to baseEjectionTime more (as Envoy's
         * successful_active_health_check_uneject_host). */
        lb_uneject(dc->lb, e->idx, loop_now(dc->loop));
    }
    else if (!up && (!e->known || e->up || strcmp(kind, e->why_out) != 0))
        log_warn("replica check: cluster %s endpoint %s out: %s", dc->cc->name, addr, reason);
    snprintf(e->why_out, sizeof(e->why_out), "%s", up ? "" : kind);
    e->known = 1;
    e->up = (uint8_t)up;
    if (e->ser) {
        publish(dc->shard, e->ser->up, &e->ser->up_pub, up);
        int64_t shown = (!ok || lag_ms == DBC_LAG_NULL) ? -1000 : lag_ms;
        publish(dc->shard, e->ser->lag, &e->ser->lag_pub, shown);
    }
    if (ok)
        e->state = DC_READY;
    else
        ep_close(e);
    uint64_t next = e->started_ms + dc->cc->replica_check.interval_ms;
    uint64_t now = loop_now(dc->loop);
    loop_timer_arm(dc->loop, &e->timer, next > now ? next : now);
}

static void ep_fail(struct dbc_ep *e, const char *why) { ep_result(e, 0, -1, why); }

/* Queues n bytes at p for the server. 0, or -1 (too long). */
static int ep_send(struct dbc_ep *e, const void *p, size_t n)
{
    if (n > sizeof(e->out) - e->outlen)
        return -1;
    memcpy(e->out + e->outlen, p, n);
    e->outlen += (uint32_t)n;
    return 0;
}

/* Writes what is queued. 0, or -1 on a socket error. */
static int ep_flush(struct dbc_ep *e)
{
    while (e->outoff < e->outlen) {
        ssize_t n = write(e->io.fd, e->out + e->outoff, e->outlen - e->outoff);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0)
            return -1;
        e->outoff += (uint32_t)n;
    }
    if (e->outoff == e->outlen)
        e->outlen = e->outoff = 0;
    loop_io_set(e->dc->loop, &e->io, LOOP_READ | (e->outlen ? LOOP_WRITE : 0));
    return 0;
}

/* Reads what the socket has. 1 bytes came, 0 none (EAGAIN), -1 EOF or
 * error, -2 the buffer would exceed DBC_IN_MAX. */
static int ep_read(struct dbc_ep *e)
{
    if (e->incap - e->inlen < 4096) {
        uint32_t cap = e->incap ? e->incap * 2 : 8192;
        if (cap > DBC_IN_MAX)
            return -2;
        char *p = realloc(e->in, cap);
        if (!p)
            return -2;
        e->in = p;
        e->incap = cap;
    }
    ssize_t n = read(e->io.fd, e->in + e->inlen, e->incap - e->inlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    e->inlen += (uint32_t)n;
    return 1;
}

/* Drops the first n bytes read (a decoded message). */
static void ep_consume(struct dbc_ep *e, size_t n)
{
    memmove(e->in, e->in + n, e->inlen - n);
    e->inlen -= (uint32_t)n;
}

/* Parses a lag in seconds (text p[0..n), borrowed) into milliseconds. 0,
 * or -1 when it is not a number. */
static int parse_lag(const char *p, size_t n, int64_t *ms)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    char *end;
    double v = strtod(tmp, &end);
    if (*end != 0 || isnan(v))
        return -1;
    if (v < 0)
        v = 0; /* clocks of the same host may disagree by a hair */
    if (v > 1e12)
        v = 1e12;
    *ms = (int64_t)(v * 1000.0 + 0.5);
    return 0;
}

/* ---- PostgreSQL ----------------------------------------------------------- */

/* Queues a SASL message of the SCRAM exchange: the initial response
 * (with the mechanism) when first, else a response. 0 or -1. */
static int pg_send_scram(struct dbc_ep *e, int first, const char *data, int n)
{
    char m[512];
    if (n < 0)
        return -1;
    int len = first ? pg_build_sasl_initial(m, sizeof(m), "SCRAM-SHA-256", data, (size_t)n)
                    : pg_build_sasl_response(m, sizeof(m), data, (size_t)n);
    return len < 0 ? -1 : ep_send(e, m, (size_t)len);
}

/* One step of SCRAM-SHA-256 for an Authentication message a. 0 or -1. */
static int pg_scram_step(struct dbc_ep *e, const struct pg_auth *a)
{
    const char *pw = e->dc->cc->auth_password ? e->dc->cc->auth_password : "";
    char msg[320];
    switch (a->code) {
    case PG_AUTH_SASL:
        if (!a->scram_sha256)
            return -1;
        return pg_send_scram(e, 1, msg, pg_scram_first(&e->scram, msg, sizeof(msg)));
    case PG_AUTH_SASL_CONTINUE:
        return pg_send_scram(e, 0, msg,
                             pg_scram_final(&e->scram, pw, a->data.p, a->data.len, msg,
                                            sizeof(msg)));
    default:
        return pg_scram_verify(&e->scram, a->data.p, a->data.len);
    }
}

/* Starts the PostgreSQL login: the StartupMessage. 0 or -1. */
static int pg_login(struct dbc_ep *e)
{
    const char *user = e->dc->cc->auth_user;
    struct pg_param p[3] = {
        {{"user", 4}, {user, strlen(user)}},
        {{"database", 8}, {DBC_PG_DATABASE, strlen(DBC_PG_DATABASE)}},
        {{"application_name", 16}, {"strand-replica-check", 20}},
    };
    char sb[1024];
    int n = pg_build_startup(sb, sizeof(sb), 3, 0, p, 3);
    return n < 0 ? -1 : ep_send(e, sb, (size_t)n);
}

/* Sends the lag query (the connection is idle). 0 or -1. */
static int pg_query(struct dbc_ep *e)
{
    char q[DBC_OUT_MAX];
    int n = pg_build_query(q, sizeof(q), e->dc->query);
    if (n < 0 || ep_send(e, q, (size_t)n) < 0)
        return -1;
    e->got_row = 0;
    e->bad_value = 0;
    e->err[0] = 0;
    e->state = DC_QUERY;
    return 0;
}

/* An Authentication message during the login. 0, or -1 after ep_fail. */
static int pg_auth(struct dbc_ep *e, const struct pg_msg *m)
{
    const struct cfg_cluster *cc = e->dc->cc;
    const char *pw = cc->auth_password ? cc->auth_password : "";
    struct pg_auth a;
    char pb[512];
    int n = 0;
    if (pg_be_auth(m, &a) != PG_OK) {
        ep_fail(e, "unexpected authentication message");
        return -1;
    }
    switch (a.code) {
    case PG_AUTH_OK:
        return 0;
    case PG_AUTH_MD5:
        n = pg_build_md5_password(pb, sizeof(pb), cc->auth_user, pw, a.salt);
        break;
    case PG_AUTH_CLEARTEXT:
        n = pg_build_password(pb, sizeof(pb), pw);
        break;
    case PG_AUTH_SASL:
    case PG_AUTH_SASL_CONTINUE:
    case PG_AUTH_SASL_FINAL:
        n = pg_scram_step(e, &a);
        break;
    default:
        n = -1;
    }
    if (n < 0 || (n > 0 && ep_send(e, pb, (size_t)n) < 0)) {
        ep_fail(e, "login: unsupported or failed authentication");
        return -1;
    }
    return 0;
}

/* The first column of a DataRow. */
static void pg_data_row(struct dbc_ep *e, const struct pg_msg *m)
{
    uint16_t ncols;
    if (e->got_row || pg_be_data_row(m, &ncols) != PG_OK || ncols < 1 || m->body_len < 6)
        return;
    e->got_row = 1;
    uint32_t len;
    memcpy(&len, m->body + 2, 4);
    len = ntohl(len);
    if (len == 0xffffffffu)
        e->row_lag = DBC_LAG_NULL;
    else if (len > m->body_len - 6 || parse_lag(m->body + 6, len, &e->row_lag) < 0)
        e->bad_value = 1;
}

/* One whole message from the server. 0, or -1 after ep_fail/ep_result. */
static int pg_message(struct dbc_ep *e, const struct pg_msg *m)
{
    switch (m->type) {
    case 'R':
        return e->state == DC_LOGIN ? pg_auth(e, m) : (ep_fail(e, "authentication out of turn"), -1);
    case 'E': {
        struct pg_error pe;
        if (pg_be_error(m, &pe) == PG_OK)
            snprintf(e->err, sizeof(e->err), "%.*s", (int)pe.message.len, pe.message.p);
        if (e->state == DC_LOGIN) {
            char why[200];
            snprintf(why, sizeof(why), "login refused: %s", e->err);
            ep_fail(e, why);
            return -1;
        }
        if (!e->err[0])
            snprintf(e->err, sizeof(e->err), "error");
        return 0;
    }
    case 'D':
        if (e->state == DC_QUERY)
            pg_data_row(e, m);
        return 0;
    case 'Z':
        if (e->state == DC_LOGIN)
            return pg_query(e) < 0 ? (ep_fail(e, "query too long"), -1) : 0;
        if (e->state != DC_QUERY)
            return 0;
        if (e->err[0]) {
            char why[200];
            snprintf(why, sizeof(why), "query: %s", e->err);
            ep_fail(e, why);
        } else if (e->bad_value)
            ep_fail(e, "query: the lag is not a number");
        else
            ep_result(e, 1, e->got_row ? e->row_lag : DBC_LAG_NULL, NULL);
        return -1; /* the check is over: nothing more is expected */
    default:
        return 0; /* ParameterStatus, BackendKeyData, notices, row shapes, ... */
    }
}

/* Decodes what has been read. 0 to go on, -1 when the check ended. */
static int pg_input(struct dbc_ep *e)
{
    while (e->inlen >= 5) {
        struct pg_msg m;
        int rc = pg_frame(e->in, e->inlen, DBC_IN_MAX, &m);
        if (rc == PG_INCOMPLETE)
            return 0;
        if (rc != PG_OK) {
            ep_fail(e, "invalid message from the server");
            return -1;
        }
        rc = pg_message(e, &m);
        if (e->io.fd >= 0)
            ep_consume(e, m.len);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- MySQL / MariaDB ------------------------------------------------------ */

/* Sends the lag query. 0 or -1. */
static int my_query(struct dbc_ep *e)
{
    uint8_t q[DBC_OUT_MAX];
    const char *sql = e->dc->query;
    int n = my_build_query(q, sizeof(q), e->caps, sql, strlen(sql));
    if (n < 0 || ep_send(e, q, (size_t)n) < 0)
        return -1;
    my_resp_init(&e->resp, MY_COM_QUERY, e->caps, 1);
    e->got_row = 0;
    e->bad_value = 0;
    e->lag_col = 0;
    e->cols_seen = 0;
    e->state = DC_QUERY;
    return 0;
}

/* One packet of the login (my_login_feed: the cluster's auth user with
 * mysql_native_password). 1 logged in, 0 go on, -1 refused or failed. */
static int my_login_step(struct dbc_ep *e, const struct my_pkt *pkt, const uint8_t *p)
{
    uint8_t out[1024];
    size_t n = 0;
    int rc = my_login_feed(&e->login, pkt, p, pkt->len, out, sizeof(out), &n);
    if (rc < 0 || (n && ep_send(e, out, n) < 0))
        return -1;
    if (rc != MY_R_DONE)
        return 0;
    e->caps = e->login.caps;
    return 1;
}

/* A column definition: remembers the lag column's index when it is named
 * Seconds_Behind_Master (SHOW SLAVE STATUS) or Seconds_Behind_Source
 * (MySQL 8's SHOW REPLICA STATUS); otherwise the first column counts. */
static void my_column(struct dbc_ep *e, const uint8_t *p, size_t n)
{
    struct my_rd rd = {p, p + n};
    my_str s;
    for (int i = 0; i < 5; i++)
        if (my_rd_lenenc_str(&rd, &s) != 0)
            return;
    if ((s.len == 21 && strncasecmp(s.p, "Seconds_Behind_Master", 21) == 0) ||
        (s.len == 21 && strncasecmp(s.p, "Seconds_Behind_Source", 21) == 0))
        e->lag_col = (int)e->cols_seen;
    e->cols_seen++;
}

/* A text-protocol row: the lag column of the first one. */
static void my_row(struct dbc_ep *e, const uint8_t *p, size_t n)
{
    if (e->got_row)
        return;
    e->got_row = 1;
    size_t off = 0;
    for (int i = 0; i <= e->lag_col; i++) {
        my_str s;
        int is_null = 0;
        int k = my_lenenc_str(p + off, n - off, &s, &is_null);
        if (k <= 0) {
            e->bad_value = 1;
            return;
        }
        off += (size_t)k;
        if (i == e->lag_col) {
            if (is_null)
                e->row_lag = DBC_LAG_NULL;
            else if (parse_lag(s.p, s.len, &e->row_lag) < 0)
                e->bad_value = 1;
        }
    }
}

/* One packet of the query's answer. 0 go on, -1 the check ended. */
static int my_answer(struct dbc_ep *e, const struct my_pkt *pkt, const uint8_t *p)
{
    int rc = my_resp_feed(&e->resp, pkt, p, pkt->len);
    if (rc < 0 || rc == MY_R_CLIENT) {
        ep_fail(e, "unexpected answer to the query");
        return -1;
    }
    if (e->resp.kind == MY_RK_COLUMN_DEF && e->resp.nresultsets == 1)
        my_column(e, p, pkt->len);
    else if (e->resp.kind == MY_RK_ROW && e->resp.nresultsets == 1)
        my_row(e, p, pkt->len);
    if (rc != MY_R_DONE)
        return 0;
    if (e->resp.error) {
        char why[64];
        snprintf(why, sizeof(why), "query: error %u", e->resp.err_code);
        ep_fail(e, why);
    } else if (e->bad_value)
        ep_fail(e, "query: the lag is not a number");
    else
        ep_result(e, 1, e->got_row ? e->row_lag : DBC_LAG_NULL, NULL);
    return -1;
}

/* Decodes what has been read. 0 to go on, -1 when the check ended. */
static int my_input(struct dbc_ep *e)
{
    while (e->inlen >= MY_HDR_LEN) {
        struct my_pkt pkt;
        my_pkt_header((const uint8_t *)e->in, e->inlen, &pkt);
        if (pkt.len >= DBC_IN_MAX - MY_HDR_LEN) {
            ep_fail(e, "packet too large");
            return -1;
        }
        if (e->inlen < MY_HDR_LEN + pkt.len)
            return 0;
        const uint8_t *p = (const uint8_t *)e->in + MY_HDR_LEN;
        int rc = 0;
        if (e->state == DC_QUERY) {
            rc = my_answer(e, &pkt, p);
        } else if (e->state == DC_LOGIN) {
            int a = my_login_step(e, &pkt, p);
            if (a < 0) {
                ep_fail(e, "login refused or failed");
                rc = -1;
            } else if (a == 1 && my_query(e) < 0) {
                ep_fail(e, "query too long");
                rc = -1;
            }
        } else {
            ep_fail(e, "packet out of turn");
            rc = -1;
        }
        if (e->io.fd >= 0)
            ep_consume(e, MY_HDR_LEN + pkt.len);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- events --------------------------------------------------------------- */

static void ep_event(struct loop *l, struct loop_io *io, unsigned events)
{
    struct dbc_ep *e = io->ud;
    (void)l;
    if (e->state == DC_CONNECTING) {
        int err = net_connect_error(io->fd);
        if (err) {
            ep_fail(e, strerror(err));
            return;
        }
        e->state = DC_LOGIN;
        e->caps = 0;
        if (e->dc->proto == CFG_PROTO_MYSQL)
            my_login_init(&e->login, e->dc->cc->auth_user, e->dc->cc->auth_password, NULL,
                          MY_CLIENT_LONG_PASSWORD | MY_CLIENT_LONG_FLAG | MY_CLIENT_TRANSACTIONS,
                          0);
        if (e->dc->proto == CFG_PROTO_POSTGRES && pg_login(e) < 0) {
            ep_fail(e, "cannot build the startup message");
            return;
        }
    } else if (e->state == DC_READY || e->state == DC_IDLE) {
        /* Between checks the server has nothing to say: EOF or a notice
         * of shutdown. Closing now makes the next check reconnect. */
        ep_close(e);
        return;
    }
    if ((events & LOOP_READ) && e->state != DC_CONNECTING) {
        int rc = ep_read(e);
        if (rc < 0) {
            ep_fail(e, rc == -2 ? "answer too large" : "connection closed");
            return;
        }
        int done = e->dc->proto == CFG_PROTO_POSTGRES ? pg_input(e) : my_input(e);
        if (done < 0) {
            if (e->io.fd >= 0)
                loop_io_set(e->dc->loop, &e->io, LOOP_READ);
            return;
        }
    }
    if (ep_flush(e) < 0)
        ep_fail(e, "write failed");
}

/* Starts a check: over the kept connection, or a new one. */
static void ep_begin(struct dbc_ep *e)
{
    struct db_check *dc = e->dc;
    e->started_ms = loop_now(dc->loop);
    loop_timer_arm(dc->loop, &e->timer, e->started_ms + dc->cc->replica_check.timeout_ms);
    if (e->state == DC_READY) {
        int rc = dc->proto == CFG_PROTO_POSTGRES ? pg_query(e) : my_query(e);
        if (rc < 0 || ep_flush(e) < 0)
            ep_fail(e, "cannot send the query");
        return;
    }
    const struct cfg_endpoint *ce = &dc->cc->endpoints[e->idx];
    int fd = net_connect((const struct sockaddr *)&ce->addr, ce->addrlen);
    if (fd < 0) {
        ep_fail(e, strerror(errno));
        return;
    }
    e->io.fd = fd;
    e->io.cb = ep_event; /* loop_io_del cleared it when the last socket closed */
    e->io.ud = e;
    if (loop_io_add(dc->loop, &e->io, LOOP_WRITE) < 0) {
        int err = errno;
        close(fd);
        e->io.fd = -1;
        ep_fail(e, strerror(err));
        return;
    }
    e->state = DC_CONNECTING;
}

static void ep_timer(struct loop *l, struct loop_timer *t)
{
    struct dbc_ep *e = t->ud;
    (void)l;
    if (e->state == DC_IDLE || e->state == DC_READY)
        ep_begin(e);
    else
        ep_fail(e, e->state == DC_CONNECTING ? "timeout connecting"
                   : e->state == DC_LOGIN    ? "timeout logging in"
                                             : "timeout waiting for the lag");
}

/* ---- lifecycle ------------------------------------------------------------ */

int db_check_start(struct wcluster *wc, int proto)
{
    const struct cfg_cluster *cc = wc->gc->cfg;
    if (wc->dbc || !cc->replica_check.enabled)
        return 0;
    size_t n = cc->nendpoints;
    struct db_check *dc = calloc(1, sizeof(*dc) + n * sizeof(struct dbc_ep));
    if (!dc)
        return -1;
    struct worker *w = wc->wg->w;
    dc->loop = w->loop;
    dc->lb = wc->lb;
    dc->shard = w->shard;
    dc->cc = cc;
    dc->proto = proto;
    dc->query = cc->replica_check.query ? cc->replica_check.query
                : proto == CFG_PROTO_MYSQL   ? my_default_query
                                             : pg_default_query;
    dc->n = n;
    uint64_t now = loop_now(w->loop);
    for (size_t i = 0; i < n; i++) {
        struct dbc_ep *e = &dc->ep[i];
        e->dc = dc;
        e->idx = (int)i;
        e->io.fd = -1;
        e->io.cb = ep_event;
        e->io.ud = e;
        e->timer.cb = ep_timer;
        e->timer.ud = e;
        e->ser = series_for(cc->name, cc->endpoints[i].address);
        loop_timer_arm(w->loop, &e->timer, now);
    }
    wc->dbc = dc;
    return 0;
}

uint64_t db_check_out_mask(const struct wcluster *wc)
{
    const struct cfg_cluster *cc = wc->gc->cfg;
    if (!cc->replica_check.enabled)
        return 0;
    const struct db_check *dc = wc->dbc;
    if (!dc)
        return ~0ull;
    uint64_t out = 0;
    for (size_t i = 0; i < dc->n && i < 64; i++)
        if (!dc->ep[i].known || !dc->ep[i].up)
            out |= 1ull << i;
    return out;
}

static void dc_free_mem(void *p)
{
    struct db_check *dc = p;
    for (size_t i = 0; i < dc->n; i++)
        free(dc->ep[i].in);
    free(dc);
}

void db_check_free(struct db_check *dc)
{
    if (!dc)
        return;
    for (size_t i = 0; i < dc->n; i++) {
        loop_timer_cancel(dc->loop, &dc->ep[i].timer);
        ep_close(&dc->ep[i]);
    }
    /* An event for one of the sockets may sit in the current batch. */
    loop_defer_free(dc->loop, dc_free_mem, dc);
}
