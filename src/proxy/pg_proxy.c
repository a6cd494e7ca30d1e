/* pg_proxy.c - the PostgreSQL proxy: a connection-level handler like tcp.c
 * that understands the v3 protocol's framing.
 *
 * A session goes through four phases:
 *   STARTUP  read the client's first message; an SSLRequest is answered
 *            'S' and TLS started when the listener has tls (then no plain
 *            session is accepted), else 'N' like a GSSENCRequest; a CancelRequest is
 *            forwarded to the server that issued its key (pg_cancel.c);
 *            the StartupMessage gives db.user and db.name.
 *   CONNECT  route once on the session's attributes (db.*, source.address,
 *            destination.port, protocol), check the AuthorizationPolicies,
 *            connect to an endpoint (other endpoints on connect failure).
 *   AUTH     the client's StartupMessage is sent as is and the
 *            authentication exchange is relayed unchanged both ways
 *            (trust, md5, SCRAM pass through) until ReadyForQuery.
 *   READY    the statement loop: messages are framed in both directions;
 *            Query and Parse are classified (src/proto/sql) and checked
 *            against the policies with the statement's attributes, the
 *            rest is streamed through untouched.
 *
 * Read/write split: a simple Query that only reads, outside a transaction
 * and with nothing in flight, is routed again with its statement
 * attributes; when the rule picks another cluster that has `auth`
 * credentials (a read replica), it runs on the session's own replica
 * connection, opened lazily and authenticated with those credentials, and
 * its answer is relayed in place of the home server's. Session state, the
 * extended protocol and (for 1 s) writes pin the session home; a replica
 * that fails before answering is given up for the session and the Query
 * goes home. Details in the "read replicas" section.
 *
 * Refusing a statement: its messages are not forwarded; a Sync is sent to
 * the server in its place (for a Parse, the client's own Sync ends the
 * swallowed batch), so the server answers one ReadyForQuery exactly where
 * the refused statement's would have been, and the ErrorResponse (42501)
 * is written just before that ReadyForQuery. Answers thus stay in the
 * client's order whatever is pipelined. The ReadyForQuery carries the
 * server's real transaction status: inside a transaction block a refusal
 * leaves it 'T' (the server's transaction is not failed), where PostgreSQL
 * itself would report 'E'.
 *
 * Statements in flight: every Query, Sync and FunctionCall gets one entry in
 * a bounded FIFO that the server's ReadyForQuery closes; its metrics
 * (db_stmt_record) are recorded then, with the rows of its CommandCompletes.
 * An extended-protocol batch counts as one statement, the verb of its first
 * Execute (else its first Parse). When the FIFO is full the client is not
 * read until the server catches up (back-pressure), as when a buffer is
 * full. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/net.h"
#include "proto/pg/pg.h"
#include "proto/pg/pg_scram.h"
#include "proto/sql/sqlc.h"
#include "proxy/accesslog.h"
#include "proxy/db.h"
#include "proxy/gen.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/pg_cancel.h"
#include "proxy/pg_pool.h"
#include "proxy/pg_users.h"
#include "proxy/proto.h"
#include "proxy/sio.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "router/attr.h"
#include "router/authz.h"
#include "router/router.h"
#include "tls/tls.h"

#define PG_INSPECT_MAX (1u << 20) /* largest message decoded whole (Query, Parse, ...) */
#define PG_INFLIGHT 32            /* statements awaiting their ReadyForQuery */
#define PG_STMTS 32               /* named prepared statements remembered (verb only) */
#define PG_NAME_MAX 64            /* NAMEDATALEN: longer names are not remembered */
#define PG_STARTUP_PARAMS 64
#define PG_NEGOTIATIONS 4         /* SSL/GSSENC requests before the startup */
#define PG_STICKY_US 1000000      /* after a write, reads stay on the primary this long */

enum pg_phase { PH_STARTUP, PH_CLIENT_AUTH, PH_CONNECT, PH_AUTH, PH_READY };

/* One statement (Query, Sync of a batch, FunctionCall) awaiting the server's
 * ReadyForQuery. */
struct pg_inflight {
    uint8_t verb;
    uint8_t denied;       /* REF_*: write the ErrorResponse before its ReadyForQuery */
    uint8_t error;        /* the server answered an ErrorResponse */
    char code[6];         /* ... with this SQLSTATE (the first one) */
    uint64_t start_us;
    uint64_t rows;
    const char *policy;   /* the refusing policy's or RateLimit's name (config-owned; the
                           * session holds the generation) */
};

/* The server answered f's statement with ErrorResponse m. */
static void f_error(struct pg_inflight *f, const struct pg_msg *m)
{
    struct pg_error e;
    if (!f->error && pg_be_error(m, &e) == PG_OK && e.sqlstate.len == 5)
        memcpy(f->code, e.sqlstate.p, 5);
    f->error = 1;
}

struct pg_stmt {
    char name[PG_NAME_MAX];
    uint8_t verb;
    uint8_t used;
};

/* The session's read-replica connection (see "read replicas" below). */
enum rep_state { RS_NONE, RS_CONNECTING, RS_AUTH, RS_READY };

struct pg_rep {
    enum rep_state state;
    struct wcluster *wc;        /* the replica's cluster (set once) */
    const struct route_rule *rr; /* the rule that picked it (retries) */
    struct gen_stats *stats;    /* that rule's backend: the statements' metrics */
    struct uconn *uc;
    struct uconn_try ct;
    int connecting;             /* a connect attempt is open */
    unsigned pinned : 1;        /* session state or extended protocol: home for good */
    unsigned eof : 1;
    unsigned busy : 1;          /* the Query at the head of cin is the replica's */
    unsigned sent : 1;          /* ... and it has been written to the replica */
    unsigned started : 1;       /* ... and part of its answer reached the client */
    uint64_t sticky_until_us;   /* after a write: home until then */
    uint64_t down_until_us;     /* the replica failed: home until then */
    uint32_t qbytes;            /* the held Query's length (in cin) */
    struct pg_inflight f;       /* the held Query's metrics */
    struct buf up, uin;         /* to / from the replica */
    uint32_t pass, skip;        /* replica bytes to forward / to drop */
    struct pg_scram scram;      /* the login's SCRAM-SHA-256 exchange */
};

struct pgs {
    struct wlink link;          /* the worker's sessions (drain) */
    struct loop_io io;          /* the client socket */
    struct loop_timer timer;    /* startup timeout, then idle timeout */
    struct sio cs;
    struct worker *w;
    struct gen_listener *gl;
    struct wgen *wg;
    struct wcluster *wc;
    const struct route_rule *rr;
    struct gen_stats *stats;
    struct uconn *uc;
    enum pg_phase phase;
    struct uconn_try ct;        /* connect attempts */
    int connecting;             /* a connect attempt is open (lb/active books) */
    uint64_t t_start_us;
    uint64_t bytes_in, bytes_out;

    struct buf cin;             /* read from the client, not yet handled */
    struct buf up;              /* to the server */
    struct buf uin;             /* read from the server, not yet handled */
    struct buf down;            /* to the client */
    uint32_t fe_pass, fe_skip;  /* client bytes still to forward / to drop */
    uint32_t be_pass;           /* server bytes still to forward */
    int negotiations;

    unsigned c_eof : 1, u_eof : 1, closing : 1, closed : 1, terminated : 1, draining : 1;
    /* epoll said readable and no read has drained the socket since: a
     * read that would find nothing costs a syscall per event otherwise. */
    unsigned c_ready : 1, u_ready : 1;
    unsigned last_be_error : 1; /* the last whole server message was an ErrorResponse */
    char tx;                    /* last ReadyForQuery status, 0 before */
    unsigned sqlc_modes;        /* SQLC_MODE_PG_BACKSLASH_STRINGS when the server says so */

    /* The open extended-query batch (messages since the last Sync). */
    struct {
        int open, has_verb, has_exec, denied;
        uint8_t verb;
        uint64_t start_us;
        const char *policy;
    } batch;
    uint8_t portal_verb;        /* verb of the statement last bound */
    uint8_t unnamed_verb;       /* verb of the unnamed prepared statement */
    struct pg_stmt stmts[PG_STMTS];
    unsigned stmt_next;

    struct pg_inflight q[PG_INFLIGHT];
    unsigned qhead, qlen;
    struct pg_rep rep;

    char user[PG_NAME_MAX * 4], dbname[PG_NAME_MAX * 4];
    char peer_ip[64];
    char port[8];
    struct db_attrs attrs;
    const char *err;            /* why the session ended early (access log) */
    char errbuf[320];
    struct pg_cancel_key *cancel_key; /* the server's BackendKeyData, registered */

    /* Listener spec.auth: the proxy authenticates the client itself and
     * logs into the server with the cluster's credentials. */
    unsigned term : 1, user_known : 1, client_first_done : 1;
    struct pg_scram_secret secret;        /* the client user's (or a made-up one) */
    struct pg_scram_server scr;           /* the client's exchange */
    struct pg_scram login;                /* the proxy's exchange with the server */
    char *startup;                        /* the client's StartupMessage, to rebuild */
    uint32_t startup_len;
    /* Pooling (terminated sessions only): what a later client of this
     * server connection must be told, and the pool key (the client's
     * startup parameters but the user: database, encoding, ...). */
    struct pg_conn_info ci;
    char *pool_key;
    size_t pool_key_len;
};

/* Sessions of this worker thread, for drain. */
static __thread struct wlink pg_sessions;
static __thread int pg_sessions_init;

static void run(struct pgs *s);
static void rep_close(struct pgs *s, int graceful);

static void s_free(void *p)
{
    struct pgs *s = p;
    free(s->startup);
    free(s->pool_key);
    pg_conn_info_clear(&s->ci);
    buf_free(&s->cin);
    buf_free(&s->up);
    buf_free(&s->uin);
    buf_free(&s->down);
    buf_free(&s->rep.up);
    buf_free(&s->rep.uin);
    free(s);
}

static void s_log(struct pgs *s)
{
    db_log_session(s->w, ALOG_POSTGRES, s->gl, s->rr, s->wc, s->peer_ip, s->t_start_us, s->bytes_in,
                   s->bytes_out, s->err);
}

/* Closes both sides and frees the session (deferred). Statements still in
 * flight are recorded as failed. */
/* A terminated session's server connection may serve another client
 * when the session ends between statements, outside a transaction, with
 * nothing half sent or unread in either direction (pg_pool resets it). */
static int poolable(const struct pgs *s)
{
    return s->term && !s->connecting && !s->closing && !s->u_eof && s->phase == PH_READY &&
           s->tx == 'I' && s->qlen == 0 && !s->batch.open && s->be_pass == 0 && s->fe_pass == 0 &&
           buf_len(&s->uin) == 0 && buf_len(&s->up) == 0 && s->ci.key_len > 0;
}

static void s_end(struct pgs *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    struct worker *w = s->w;
    for (; s->qlen > 0; s->qlen--) {
        struct pg_inflight *f = &s->q[s->qhead];
        s->qhead = (s->qhead + 1) % PG_INFLIGHT;
        if (s->stats)
            db_stmt_record(w, s->stats, f->verb, f->denied ? db_refusal_outcome(f->denied) : DB_FAILED,
                           loop_now_us() - f->start_us, f->rows);
    }
    if (s->rep.busy)
        db_stmt_record(w, s->rep.stats, s->rep.f.verb, DB_FAILED,
                       loop_now_us() - s->rep.f.start_us, s->rep.f.rows);
    rep_close(s, 1);
    pg_cancel_forget(s->cancel_key);
    s->cancel_key = NULL;
    s_log(s);
    wlist_del(&s->link);
    loop_timer_cancel(w->loop, &s->timer);
    loop_io_del(w->loop, &s->io);
    sio_tls_close(&s->cs);
    close(s->io.fd);
    if (s->connecting)
        uconn_try_done(s->wc, &s->ct, ECONNABORTED);
    if (s->uc && poolable(s))
        pg_pool_put(s->wc, s->uc, &s->ci, s->pool_key, s->pool_key_len);
    else if (s->uc)
        uconn_close(s->uc);
    s->uc = NULL;
    metrics_gauge_add(w->shard, s->gl->m_conn_active, -1);
    worker_conn_closed(w);
    wgen_release(s->wg);
    loop_defer_free(w->loop, s_free, s);
}

/* Writes an ErrorResponse (and, for a statement, nothing else) to the
 * client, then ends the session once it is delivered. */
static void s_fail(struct pgs *s, const char *severity, const char *sqlstate, const char *msg)
{
    char eb[512];
    if (!s->err)
        s->err = msg;
    int n = pg_build_error(eb, sizeof(eb), severity, sqlstate, msg);
    /* The message goes at a boundary only: never inside a forwarded one. */
    if (n > 0 && s->be_pass == 0 && s->rep.pass == 0)
        buf_append(&s->down, eb, (size_t)n);
    s->closing = 1;
    if (s->uc) {
        uconn_close(s->uc);
        s->uc = NULL;
    }
    rep_close(s, 0);
    /* A client that does not read its error must not hold the session. */
    loop_timer_arm(s->w->loop, &s->timer, loop_now(s->w->loop) + 5000);
}

static void s_timeout(struct loop *l, struct loop_timer *t)
{
    struct pgs *s = t->ud;
    if (s->closing || s->phase == PH_CONNECT) {
        s->err = s->err ? s->err : "timed out";
        s_end(s);
        return;
    }
    s_fail(s, "FATAL", s->phase <= PH_CLIENT_AUTH ? "08P01" : "57P05",
           s->phase == PH_STARTUP       ? "timed out waiting for the startup message"
           : s->phase == PH_CLIENT_AUTH ? "timed out during authentication"
                                        : "terminating connection due to idle timeout");
    run(s);
}

/* ---- Routing and connecting ---------------------------------------------- */

static void s_connect(struct pgs *s);

static int fit(struct buf *b, size_t len);

/* Terminated sessions: the client's StartupMessage again, with the
 * cluster's user in place of the client's, into s->up. 0 or -1. */
static int term_startup(struct pgs *s)
{
    struct pg_msg m;
    struct pg_param params[PG_STARTUP_PARAMS];
    struct pg_startup st;
    memset(&st, 0, sizeof(st));
    st.params = params;
    if (pg_frame_startup(s->startup, s->startup_len, PG_STARTUP_MAX, &m) != PG_OK ||
        pg_parse_startup(&m, &st, PG_STARTUP_PARAMS) != PG_OK || st.nparams > PG_STARTUP_PARAMS)
        return -1;
    const char *user = s->wc->gc->cfg->auth_user;
    for (size_t i = 0; i < st.nparams; i++)
        if (params[i].name.len == 4 && memcmp(params[i].name.p, "user", 4) == 0)
            params[i].value = (pg_str){user, strlen(user)};
    char *b = malloc(s->startup_len + 256);
    int n = b ? pg_build_startup(b, s->startup_len + 256, st.major, st.minor, params, st.nparams)
              : -1;
    int rc = n > 0 && fit(&s->up, (size_t)n) == 0 && buf_append(&s->up, b, (size_t)n) == 0 ? 0 : -1;
    free(b);
    free(s->startup);
    s->startup = NULL;
    return rc;
}

/* The books of a finished connect attempt; on failure, the next attempt.
 * Never calls run() (callers inside run() continue themselves). */
static void s_connect_done(struct pgs *s, struct uconn *uc, int err)
{
    s->connecting = 0;
    uconn_try_done(s->wc, &s->ct, err);
    if (err) {
        s->uc = NULL;
        s_connect(s);
        return;
    }
    s->uc = uc;
    s->phase = PH_AUTH;
    s->u_ready = 1;
    if (s->term && term_startup(s) < 0)
        s_fail(s, "FATAL", "53200", "cannot build the startup message for the server");
}

static void s_connected(void *owner, struct uconn *uc, int err)
{
    struct pgs *s = owner;
    s_connect_done(s, uc, err);
    run(s);
}

static void s_uc_io(void *owner, struct uconn *uc, unsigned events)
{
    struct pgs *s = owner;
    (void)uc;
    if (events & LOOP_READ)
        s->u_ready = 1;
    run(s);
}

static const struct uconn_ops pg_uc_ops = {s_connected, s_uc_io};

/* standard_conforming_strings from a ParameterStatus m (borrowed) decides
 * how the classifier reads backslashes in '' strings. */
static void param_mode(struct pgs *s, const struct pg_msg *m)
{
    pg_str name, value;
    if (pg_be_param_status(m, &name, &value) == PG_OK && name.len == 27 &&
        memcmp(name.p, "standard_conforming_strings", 27) == 0)
        s->sqlc_modes = value.len == 3 && memcmp(value.p, "off", 3) == 0
                            ? SQLC_MODE_PG_BACKSLASH_STRINGS
                            : 0;
}

/* Registers the key (pid, key[0..len), borrowed) that server endpoint ep of
 * the session's cluster gave it, so CancelRequests reach that server. */
static void register_cancel(struct pgs *s, int ep, uint32_t pid, const void *key, size_t len)
{
    const struct cfg_endpoint *e = &s->wc->gc->cfg->endpoints[ep];
    s->cancel_key = pg_cancel_remember(pid, key, len, (const struct sockaddr *)&e->addr,
                                       e->addrlen);
}

/* A terminated session continues on a pooled server connection: the
 * client is told what a login would have told it (AuthenticationOk, the
 * server's parameters, its key, ReadyForQuery). */
static void pooled_start(struct pgs *s, struct uconn *uc)
{
    char hdr[300];
    int n = pg_build_auth_ok(hdr, sizeof(hdr));
    int k = n > 0 ? pg_build_key_data(hdr + n, sizeof(hdr) - (size_t)n, s->ci.pid, s->ci.key,
                                      s->ci.key_len)
                  : -1;
    int z = k > 0 ? pg_build_ready(hdr + n + k, sizeof(hdr) - (size_t)(n + k), 'I') : -1;
    uc->ops = &pg_uc_ops;
    uc->owner = s;
    s->uc = uc;
    s->ct.ep = uc->ep;
    s->phase = PH_READY;
    s->tx = 'I';
    s->u_ready = 1;
    free(s->startup);
    s->startup = NULL;
    if (z < 0 || fit(&s->down, (size_t)(n + k + z) + s->ci.params_len) < 0) {
        s_fail(s, "FATAL", "53200", "out of memory");
        return;
    }
    /* The parameters, applied as if the server had just sent them. */
    for (uint32_t off = 0; off + 5 <= s->ci.params_len;) {
        struct pg_msg m;
        if (pg_frame(s->ci.params + off, s->ci.params_len - off, PG_INSPECT_MAX, &m) != PG_OK)
            break;
        param_mode(s, &m);
        off += (uint32_t)m.len;
    }
    if (buf_append(&s->down, hdr, (size_t)n) < 0 ||
        buf_append(&s->down, s->ci.params, s->ci.params_len) < 0 ||
        buf_append(&s->down, hdr + n, (size_t)(k + z)) < 0) {
        s_fail(s, "FATAL", "53200", "out of memory");
        return;
    }
    register_cancel(s, uc->ep, s->ci.pid, s->ci.key, s->ci.key_len);
}

/* Tries the next endpoint; fails the session when none is left. */
static void s_connect(struct pgs *s)
{
    struct uconn *uc;
    if (s->term && (uc = pg_pool_take(s->wc, s->pool_key, s->pool_key_len, &s->ci))) {
        pooled_start(s, uc);
        return;
    }
    int rc = uconn_try_next(s->wc, route_rule_cfg(s->rr), &s->ct, &pg_uc_ops, s, &uc);
    if (rc == UCONN_TRY_FULL) {
        s_fail(s, "FATAL", "53300", "too many connections to the database server");
        return;
    }
    if (rc != UCONN_TRY_STARTED) {
        s_fail(s, "FATAL", "08006",
               rc == UCONN_TRY_NO_ENDPOINT ? "no healthy database server"
                                           : "could not connect to the database server");
        return;
    }
    s->connecting = 1;
    s->uc = uc; /* closed by s_end if the session ends while connecting */
}

/* Routes the session once on its attributes and starts connecting. */
static void s_route(struct pgs *s)
{
    struct worker *w = s->w;
    struct gen_listener *gl = s->gl;
    struct attr_src src = {db_attr_get, &s->attrs};
    s->rr = router_match(gl->router, &src);
    const char *why = "denied by policy";
    const struct cfg_authz *deny = authz_check(gl->authz, &src, &why);
    if (deny) {
        metrics_add(w->shard, gl->m_denied, 1);
        snprintf(s->errbuf, sizeof(s->errbuf), "permission denied by policy %s", deny->name);
        s_fail(s, "FATAL", "42501", s->errbuf);
        return;
    }
    if (!s->rr) {
        metrics_add(w->shard, gl->noroute.tcp_conns, 1);
        snprintf(s->errbuf, sizeof(s->errbuf), "no route for database \"%s\"", s->dbname);
        s_fail(s, "FATAL", "08004", s->errbuf);
        return;
    }
    struct gen_rule *gr = &gl->rules[route_rule_index(s->rr)];
    const struct cfg_rule *cr = route_rule_cfg(s->rr);
    int b = route_pick_backend(s->rr, (uint32_t)worker_rand(w));
    int ci = b >= 0 ? gen_cluster_index(s->wg->gen, cr->backends[b].cluster) : -1;
    if (ci < 0) {
        metrics_add(w->shard, gr->direct.tcp_conns, 1);
        s_fail(s, "FATAL", "08004", "no backend available for this database");
        return;
    }
    s->stats = &gr->backends[b];
    metrics_add(w->shard, s->stats->tcp_conns, 1);
    s->wc = &s->wg->clusters[ci];
    s->phase = PH_CONNECT;
    s_connect(s);
}

/* ---- Startup phase -------------------------------------------------------- */

static int copy_str(char *dst, size_t cap, pg_str v)
{
    if (v.len >= cap)
        return -1;
    memcpy(dst, v.p, v.len);
    dst[v.len] = 0;
    return 0;
}

/* The pool key of a terminated session: protocol version and every
 * startup parameter but the user, as the client sent them (one driver
 * sends the same ones in the same order, so its sessions share). */
static int pool_key(struct pgs *s, const struct pg_startup *st)
{
    size_t n = 4;
    for (size_t i = 0; i < st->nparams && i < PG_STARTUP_PARAMS; i++)
        n += st->params[i].name.len + st->params[i].value.len + 2;
    char *k = malloc(n);
    if (!k)
        return -1;
    size_t o = 0;
    k[o++] = (char)(st->major >> 8), k[o++] = (char)st->major;
    k[o++] = (char)(st->minor >> 8), k[o++] = (char)st->minor;
    for (size_t i = 0; i < st->nparams && i < PG_STARTUP_PARAMS; i++) {
        const struct pg_param *p = &st->params[i];
        if (p->name.len == 4 && memcmp(p->name.p, "user", 4) == 0)
            continue;
        memcpy(k + o, p->name.p, p->name.len);
        o += p->name.len;
        k[o++] = 0;
        memcpy(k + o, p->value.p, p->value.len);
        o += p->value.len;
        k[o++] = 0;
    }
    s->pool_key = k;
    s->pool_key_len = o;
    return 0;
}

/* Handles the client's untyped first message(s). Returns 1 when it made
 * progress, 0 to wait. */
static int startup_step(struct pgs *s)
{
    struct pg_msg m;
    int rc = pg_frame_startup(buf_start(&s->cin), buf_len(&s->cin), PG_STARTUP_MAX, &m);
    if (rc == PG_INCOMPLETE)
        return 0;
    if (rc < 0) {
        s_fail(s, "FATAL", "08P01", "invalid startup packet");
        return 1;
    }
    struct pg_param params[PG_STARTUP_PARAMS];
    struct pg_startup st;
    memset(&st, 0, sizeof(st));
    st.params = params;
    rc = pg_parse_startup(&m, &st, PG_STARTUP_PARAMS);
    if (rc == PG_ERR_VERSION) {
        s_fail(s, "FATAL", "0A000", "unsupported frontend protocol");
        return 1;
    }
    if (rc < 0) {
        s_fail(s, "FATAL", "08P01", "invalid startup packet");
        return 1;
    }
    if (st.kind == PG_STARTUP_SSL || st.kind == PG_STARTUP_GSSENC) {
        /* Bytes after the request would have been sent before our answer:
         * a client must wait for it (they could be a TLS hello). */
        if (buf_len(&s->cin) != m.len || ++s->negotiations > PG_NEGOTIATIONS) {
            s->err = "bytes after an SSL/GSSENC request";
            s_end(s);
            return 1;
        }
        buf_consume(&s->cin, (uint32_t)m.len);
        if (st.kind == PG_STARTUP_SSL && s->gl->tls && !s->cs.tls) {
            /* 'S' in plain text, then the client's handshake: reads
             * through s->cs drive it (sio), then the StartupMessage. */
            if (send(s->cs.fd, "S", 1, MSG_NOSIGNAL) != 1 ||
                !(s->cs.tls = tls_conn_server(s->gl->tls, s->cs.fd))) {
                s->err = "cannot start TLS";
                s_end(s);
            }
            return 1;
        }
        char n[1];
        pg_build_ssl_refuse(n, sizeof(n));
        buf_append(&s->down, n, 1);
        return 1;
    }
    if (st.kind == PG_STARTUP_CANCEL) {
        /* No answer either way, as from a server. */
        s->err = pg_cancel_forward(s->w, st.pid, st.cancel_key.p, st.cancel_key.len)
                     ? "cancel request forwarded"
                     : "cancel request for no session of this proxy";
        s_end(s);
        return 1;
    }
    if (!st.user.len) {
        s_fail(s, "FATAL", "28000", "no PostgreSQL user name specified in startup packet");
        return 1;
    }
    if (s->gl->tls && !s->cs.tls) {
        /* A listener with tls is hostssl: no session in plain text. */
        s_fail(s, "FATAL", "28000", "this listener accepts SSL connections only (sslmode=require)");
        return 1;
    }
    if (st.replication_mode != PG_REPL_NONE) {
        s_fail(s, "FATAL", "0A000", "replication connections are not proxied");
        return 1;
    }
    if (copy_str(s->user, sizeof(s->user), st.user) < 0 ||
        copy_str(s->dbname, sizeof(s->dbname), st.database.len ? st.database : st.user) < 0) {
        s_fail(s, "FATAL", "08P01", "user or database name too long");
        return 1;
    }
    s->attrs.user = s->user;
    s->attrs.dbname = s->dbname;
    /* The StartupMessage came through TLS: the handshake is done. */
    s->attrs.identity = s->cs.tls ? tls_conn_peer_identity(s->cs.tls) : NULL;
    if (s->gl->pg_users) {
        /* Ours to authenticate: SCRAM-SHA-256 (the only method offered),
         * then the server login with the cluster's user. */
        if (!(s->startup = malloc(m.len))) {
            s_fail(s, "FATAL", "53200", "out of memory");
            return 1;
        }
        memcpy(s->startup, buf_start(&s->cin), m.len);
        s->startup_len = (uint32_t)m.len;
        if (pool_key(s, &st) < 0) {
            s_fail(s, "FATAL", "53200", "out of memory");
            return 1;
        }
        buf_consume(&s->cin, (uint32_t)m.len);
        s->term = 1;
        s->user_known = pg_users_secret(s->gl->pg_users, s->user, &s->secret) == 1;
        char r[64];
        int n = pg_build_auth_sasl(r, sizeof(r));
        if (n > 0)
            buf_append(&s->down, r, (size_t)n);
        s->phase = PH_CLIENT_AUTH;
        return 1;
    }
    /* The original bytes go to the server once connected. */
    if (m.len > buf_block_size() && buf_grow(&s->up, (uint32_t)m.len) < 0) {
        s_fail(s, "FATAL", "53200", "out of memory");
        return 1;
    }
    if (buf_append(&s->up, buf_start(&s->cin), m.len) < 0) {
        s_fail(s, "FATAL", "53200", "out of memory");
        return 1;
    }
    buf_consume(&s->cin, (uint32_t)m.len);
    loop_timer_arm(s->w->loop, &s->timer, loop_now(s->w->loop) + s->gl->cfg->idle_timeout_ms);
    s_route(s);
    return 1;
}

/* ---- Terminated authentication (Listener spec.auth) ------------------------ */

/* The client's two SCRAM-SHA-256 messages: SASLInitialResponse (answered
 * with the server-first-message) and SASLResponse (checked, answered with
 * the server-final-message, then the session is routed). A wrong password
 * and an unknown user fail alike, with PostgreSQL's own words. */
static int client_auth_step(struct pgs *s)
{
    struct pg_msg m;
    int rc = pg_frame(buf_start(&s->cin), buf_len(&s->cin), 4096, &m);
    if (rc == PG_INCOMPLETE)
        return 0;
    if (rc != PG_OK || m.type != 'p') {
        s_fail(s, "FATAL", "08P01", "expected a SASL response from the client");
        return 1;
    }
    char msg[PG_SCRAM_MSG_MAX], out[PG_SCRAM_MSG_MAX + 64];
    int n, k, verified = 0;
    if (!s->client_first_done) {
        pg_str mech, data;
        int has = 0;
        char nonce[PG_SCRAM_NONCE_LEN + 1];
        if (pg_fe_sasl_initial(&m, &mech, &data, &has) != PG_OK || !has || mech.len != 13 ||
            memcmp(mech.p, "SCRAM-SHA-256", 13) != 0) {
            s_fail(s, "FATAL", "28000", "SCRAM-SHA-256 is the only authentication offered");
            return 1;
        }
        if ((rc = pg_scram_server_parse_client_first(&s->scr, data.p, data.len)) != PG_OK) {
            s_fail(s, "FATAL", rc == PG_ERR_SCRAM_CBIND ? "0A000" : "08P01", pg_scram_strerror(rc));
            return 1;
        }
        if ((n = pg_scram_nonce(nonce, sizeof(nonce))) < 0 ||
            (n = pg_scram_server_first(&s->scr, &s->secret, nonce, (size_t)n, msg, sizeof(msg))) < 0 ||
            (k = pg_build_auth_sasl_continue(out, sizeof(out), msg, (size_t)n)) < 0) {
            s_fail(s, "FATAL", "XX000", "SCRAM exchange failed in the proxy");
            return 1;
        }
        s->client_first_done = 1;
    } else {
        if (pg_scram_server_verify_client_final(&s->scr, m.body, m.body_len) != PG_OK ||
            !s->user_known) {
            snprintf(s->errbuf, sizeof(s->errbuf), "password authentication failed for user \"%s\"",
                     s->user);
            s_fail(s, "FATAL", "28P01", s->errbuf);
            return 1;
        }
        if ((n = pg_scram_server_final(&s->scr, msg, sizeof(msg))) < 0 ||
            (k = pg_build_auth_sasl_final(out, sizeof(out), msg, (size_t)n)) < 0) {
            s_fail(s, "FATAL", "XX000", "SCRAM exchange failed in the proxy");
            return 1;
        }
        verified = 1;
    }
    buf_consume(&s->cin, (uint32_t)m.len);
    buf_append(&s->down, out, (size_t)k);
    if (verified) { /* AuthenticationOk comes from the server's login */
        loop_timer_arm(s->w->loop, &s->timer, loop_now(s->w->loop) + s->gl->cfg->idle_timeout_ms);
        s_route(s);
    }
    return 1;
}

/* ---- Statements ------------------------------------------------------------ */

static struct pg_inflight *q_push(struct pgs *s, uint8_t verb, uint64_t start_us)
{
    struct pg_inflight *f = &s->q[(s->qhead + s->qlen) % PG_INFLIGHT];
    s->qlen++;
    memset(f, 0, sizeof(*f));
    f->verb = verb;
    f->start_us = start_us;
    return f;
}

static struct pg_inflight *q_head(struct pgs *s) { return s->qlen ? &s->q[s->qhead] : NULL; }

static void stmt_put(struct pgs *s, pg_str name, uint8_t verb)
{
    if (!name.len) {
        s->unnamed_verb = verb;
        return;
    }
    if (name.len >= PG_NAME_MAX)
        return;
    struct pg_stmt *slot = NULL;
    for (unsigned i = 0; i < PG_STMTS && !slot; i++)
        if (s->stmts[i].used && strlen(s->stmts[i].name) == name.len &&
            memcmp(s->stmts[i].name, name.p, name.len) == 0)
            slot = &s->stmts[i];
    if (!slot)
        slot = &s->stmts[s->stmt_next++ % PG_STMTS];
    memcpy(slot->name, name.p, name.len);
    slot->name[name.len] = 0;
    slot->verb = verb;
    slot->used = 1;
}

static uint8_t stmt_get(struct pgs *s, pg_str name)
{
    if (!name.len)
        return s->unnamed_verb;
    for (unsigned i = 0; i < PG_STMTS; i++)
        if (s->stmts[i].used && strlen(s->stmts[i].name) == name.len &&
            memcmp(s->stmts[i].name, name.p, name.len) == 0)
            return s->stmts[i].verb;
    return SQLC_V_OTHER;
}

/* Classifies sql and checks it against the listener's policies, then its
 * RateLimits. Returns REF_NONE, or REF_DENIED / REF_LIMITED with *name set
 * to the refusing policy's / RateLimit's name (config-owned). */
static int stmt_check(struct pgs *s, const char *command, pg_str sql, struct sqlc_result *res,
                      const char **name)
{
    sqlc_classify(SQLC_POSTGRES, s->sqlc_modes, sql.p, sql.len, res);
    s->attrs.command = command;
    s->attrs.cls = res;
    s->attrs.in_transaction = s->tx == 'T' || s->tx == 'E';
    struct attr_src src = {db_attr_get, &s->attrs};
    int ref = db_stmt_refusal(s->w, s->gl, &src, name);
    if (ref == REF_NONE)
        db_count_tables(s->w, s->gl, res);
    s->attrs.command = NULL;
    s->attrs.cls = NULL;
    return ref;
}

static void batch_start(struct pgs *s)
{
    if (!s->batch.open) {
        memset(&s->batch, 0, sizeof(s->batch));
        s->batch.open = 1;
        s->batch.start_us = loop_now_us();
    }
}

/* Free bytes at the end of b, taking a block if it holds none. */
static uint32_t room(struct buf *b)
{
    return buf_ensure(b) < 0 ? 0 : buf_space(b);
}

/* Moves up to `*left` bytes from in to out (streaming a forwarded message). */
static int pass(struct buf *in, struct buf *out, uint32_t *left)
{
    uint32_t n = buf_len(in);
    if (n > *left)
        n = *left;
    if (n == 0)
        return 0;
    uint32_t r = room(out);
    if (n > r)
        n = r;
    if (n == 0)
        return 0;
    buf_append(out, buf_start(in), n);
    buf_consume(in, n);
    *left -= n;
    return 1;
}

/* Makes sure buffer b can hold a whole message of len bytes. */
static int fit(struct buf *b, size_t len)
{
    if (len <= buf_block_size() || (b->data && b->cap >= len))
        return 0;
    return buf_grow(b, (uint32_t)len);
}

/* ---- Read replicas ----------------------------------------------------------
 *
 * A simple Query that only reads may run on a replica instead of the
 * session's home server: the route is matched again with the statement's
 * attributes and, when its rule picks another cluster that has `auth`
 * credentials, the Query goes there. Only when that cannot change what the
 * client sees: the statement is SQLC_READ_ONLY (no locking read, no session
 * state, no transaction control), the session is idle ('I'), nothing is in
 * flight at home (answers stay in order), and the session is not pinned:
 * for good after a session-state statement or any extended-protocol
 * message, and for PG_STICKY_US after a write (read-your-writes).
 *
 * The replica connection is opened on the first such Query, authenticates
 * with the cluster's credentials (trust, md5, cleartext, SCRAM-SHA-256
 * without channel binding), and stays with the session. While it connects and while
 * its answer is relayed the Query is held at the head of cin and the client
 * is not read further (fe_step waits on rep.busy). Its ParameterStatus,
 * BackendKeyData, notifications and out-of-statement notices are dropped.
 *
 * Failures: when the replica cannot be opened or authenticated, or it
 * fails before any of the answer reached the client, it is given up for the
 * next DB_REPLICA_RETRY_US (rep.down_until_us) and the held Query is
 * handled again, now going home: reads never fail because of a replica.
 * After that the session tries the replica cluster again, on a new
 * connection to an endpoint usable then. A failure in the middle of an
 * answer ends the client session, like a server loss.
 *
 * Health: the connection is opened only to an endpoint that is neither
 * ejected by the load balancer nor out by the replica checks (db_check.h),
 * and while no endpoint is usable reads go home. A kept connection whose
 * endpoint has gone out since is closed before the next read (which then
 * opens another, or goes home). */

static void rep_connect(struct pgs *s);

/* Closes the replica connection (first a Terminate, best effort, when it is
 * idle and `graceful`). The replica's buffered bytes are dropped. */
static void rep_close(struct pgs *s, int graceful)
{
    struct pg_rep *r = &s->rep;
    if (r->connecting) {
        uconn_try_done(r->wc, &r->ct, ECONNABORTED);
        r->connecting = 0;
    }
    if (r->uc) {
        if (graceful && r->state == RS_READY && !r->busy && !r->eof && buf_len(&r->up) == 0) {
            char x[8];
            int n = pg_build_terminate(x, sizeof(x));
            struct iovec iov = {x, (size_t)n};
            if (n > 0)
                (void)sio_writev(&r->uc->sio, &iov, 1);
        }
        uconn_close(r->uc);
        r->uc = NULL;
    }
    buf_consume(&r->up, buf_len(&r->up));
    buf_consume(&r->uin, buf_len(&r->uin));
    r->pass = r->skip = 0;
    r->eof = 0;
    r->state = RS_NONE;
}

/* Gives up on the replica for the rest of the session. A held Query whose
 * answer had not started goes back to fe_step (which now sends it home);
 * one whose answer had started ends the session. Never calls run(). */
static void rep_fail(struct pgs *s, const char *why)
{
    struct pg_rep *r = &s->rep;
    log_info("postgres: read replica %s given up for this session: %s",
             r->wc ? r->wc->gc->cfg->name : "?", why);
    if (r->busy && r->started) {
        db_stmt_record(s->w, r->stats, r->f.verb, DB_FAILED, loop_now_us() - r->f.start_us,
                       r->f.rows);
        r->busy = 0;
        s_fail(s, "FATAL", "08006", "the read replica failed during a statement");
    }
    rep_close(s, 0);
    r->down_until_us = loop_now_us() + DB_REPLICA_RETRY_US;
    r->busy = r->sent = r->started = 0;
}

static void rep_connect_done(struct pgs *s, struct uconn *uc, int err)
{
    struct pg_rep *r = &s->rep;
    r->connecting = 0;
    uconn_try_done(r->wc, &r->ct, err);
    if (err) {
        r->uc = NULL;
        rep_connect(s);
        return;
    }
    r->uc = uc;
    const char *user = r->wc->gc->cfg->auth_user;
    struct pg_param p[3] = {
        {{"user", 4}, {user, strlen(user)}},
        {{"database", 8}, {s->dbname, strlen(s->dbname)}},
        {{"application_name", 16}, {"strand", 6}},
    };
    char sb[1024];
    int n = pg_build_startup(sb, sizeof(sb), 3, 0, p, 3);
    if (n < 0 || buf_append(&r->up, sb, (size_t)n) < 0) {
        rep_fail(s, "cannot build the startup message");
        return;
    }
    r->state = RS_AUTH;
}

static void rep_connected(void *owner, struct uconn *uc, int err)
{
    struct pgs *s = owner;
    rep_connect_done(s, uc, err);
    run(s);
}

static const struct uconn_ops rep_uc_ops = {rep_connected, s_uc_io};

/* Tries the next endpoint of the replica cluster; gives up when none is
 * left. */
static void rep_connect(struct pgs *s)
{
    struct pg_rep *r = &s->rep;
    struct uconn *uc;
    int rc = db_replica_connect(r->wc, route_rule_cfg(r->rr), &r->ct, &rep_uc_ops, s, &uc);
    if (rc != UCONN_TRY_STARTED) {
        rep_fail(s, uconn_try_reason(rc));
        return;
    }
    r->connecting = 1;
    r->uc = uc;
    r->state = RS_CONNECTING;
}

/* Called for an allowed simple Query of qbytes bytes at the head of cin
 * (res: its classification): updates the pins and, when the Query goes to
 * the replica, holds it there and returns 1. 0: it goes home. */
static int rep_take(struct pgs *s, const struct sqlc_result *res, uint32_t qbytes)
{
    struct pg_rep *r = &s->rep;
    uint64_t now = loop_now_us();
    unsigned fl = res->flags;
    int ok = db_replica_eligible(fl) && s->tx == 'I' && s->qlen == 0 && !s->batch.open &&
             now >= r->down_until_us && !r->pinned && now >= r->sticky_until_us;
    if (fl & SQLC_SESSION_STATE)
        r->pinned = 1;
    if (!(fl & SQLC_READ_ONLY))
        r->sticky_until_us = now + PG_STICKY_US;
    if (!ok)
        return 0;
    s->attrs.command = "query";
    s->attrs.cls = res;
    s->attrs.in_transaction = 0;
    const struct route_rule *rr;
    struct gen_stats *stats;
    struct wcluster *wc = db_replica_route(s->w, s->gl, s->wg, s->wc, &s->attrs, &rr, &stats);
    s->attrs.command = NULL;
    s->attrs.cls = NULL;
    if (!wc)
        return 0;
    if (r->wc && r->wc != wc)
        return 0; /* one replica cluster per session: the first one picked */
    if (r->uc && r->state == RS_READY && r->uc->ep < 64 &&
        (db_replica_unusable(wc) >> r->uc->ep & 1))
        rep_close(s, 1); /* its endpoint went out since: another, or home */
    r->wc = wc;
    r->rr = rr;
    r->stats = stats;
    r->busy = 1;
    r->sent = r->started = 0;
    r->qbytes = qbytes;
    memset(&r->f, 0, sizeof(r->f));
    r->f.verb = (uint8_t)res->verb;
    r->f.start_us = now;
    if (r->state == RS_NONE) {
        memset(&r->ct, 0, sizeof(r->ct)); /* a fresh set of attempts */
        rep_connect(s); /* may give up at once: then busy is 0 again */
    }
    return r->busy;
}

static int is_fatal(const struct pg_msg *m)
{
    struct pg_error e;
    if (pg_be_error(m, &e) != PG_OK)
        return 1;
    pg_str v = e.severity_v.len ? e.severity_v : e.severity;
    return (v.len == 5 && memcmp(v.p, "FATAL", 5) == 0) ||
           (v.len == 5 && memcmp(v.p, "PANIC", 5) == 0);
}

/* The proxy's answer to a server's authentication request a, logging in
 * with cluster c's credentials (a read replica, or the home server of a
 * terminated session): the message in out[0..cap) and its length, 0 when
 * nothing is to be sent (AuthenticationOk, SASL final verified), -1 when
 * the method is not supported or the exchange failed (sc: the login's
 * SCRAM state). */
static int login_answer(struct pg_scram *sc, const struct cfg_cluster *c,
                        const struct pg_auth *a, char *out, size_t cap)
{
    const char *pw = c->auth_password ? c->auth_password : "";
    char msg[320];
    int n;
    switch (a->code) {
    case PG_AUTH_OK:
        return 0;
    case PG_AUTH_MD5:
        return pg_build_md5_password(out, cap, c->auth_user, pw, a->salt);
    case PG_AUTH_CLEARTEXT:
        return pg_build_password(out, cap, pw);
    case PG_AUTH_SASL:
        if (!a->scram_sha256 || (n = pg_scram_first(sc, msg, sizeof(msg))) < 0)
            return -1;
        return pg_build_sasl_initial(out, cap, "SCRAM-SHA-256", msg, (size_t)n);
    case PG_AUTH_SASL_CONTINUE:
        n = pg_scram_final(sc, pw, a->data.p, a->data.len, msg, sizeof(msg));
        return n < 0 ? -1 : pg_build_sasl_response(out, cap, msg, (size_t)n);
    case PG_AUTH_SASL_FINAL:
        return pg_scram_verify(sc, a->data.p, a->data.len);
    default:
        return -1;
    }
}

/* One step of the replica -> proxy direction. 1: progress, 0: wait. */
static int rep_step(struct pgs *s)
{
    struct pg_rep *r = &s->rep;
    if (r->pass)
        return pass(&r->uin, &s->down, &r->pass);
    if (r->skip) {
        uint32_t n = buf_len(&r->uin) < r->skip ? buf_len(&r->uin) : r->skip;
        buf_consume(&r->uin, n);
        r->skip -= n;
        return n > 0;
    }
    uint32_t n = buf_len(&r->uin);
    if (n < 5)
        return 0;
    struct pg_msg m;
    if (pg_frame_header(buf_start(&r->uin), n, PG_MESSAGE_MAX, &m) != PG_OK) {
        rep_fail(s, "invalid message from the read replica");
        return 1;
    }
    uint8_t t = m.type;
    int relay = r->busy && r->sent; /* the held Query's answer */
    if (t == 'S' || t == 'K' || t == 'A' || (!relay && t != 'R' && t != 'E' && t != 'Z')) {
        r->skip = (uint32_t)m.len; /* kept to itself */
        return 1;
    }
    if (relay && t != 'C' && t != 'E' && t != 'Z') {
        if (s->be_pass)
            return 0; /* at a boundary of the home's messages only */
        r->started = 1;
        r->pass = (uint32_t)m.len;
        return 1;
    }
    if (m.len > PG_INSPECT_MAX) {
        rep_fail(s, "message from the read replica too large");
        return 1;
    }
    if (n < m.len) {
        if (fit(&r->uin, m.len) < 0)
            rep_fail(s, "out of memory");
        return 0;
    }
    if (pg_frame(buf_start(&r->uin), n, PG_INSPECT_MAX, &m) != PG_OK) {
        rep_fail(s, "invalid message from the read replica");
        return 1;
    }
    if (!relay) {
        if (t == 'E') {
            rep_fail(s, r->state == RS_AUTH ? "the read replica refused the session"
                                            : "the read replica closed the connection");
            return 1;
        }
        if (t == 'Z' && r->state == RS_AUTH)
            r->state = RS_READY;
        if (t == 'R') {
            struct pg_auth a;
            char pb[512];
            if (r->state != RS_AUTH || pg_be_auth(&m, &a) != PG_OK) {
                rep_fail(s, "unexpected authentication message from the read replica");
                return 1;
            }
            int pn = login_answer(&r->scram, r->wc->gc->cfg, &a, pb, sizeof(pb));
            if (pn < 0 || (pn > 0 && buf_append(&r->up, pb, (size_t)pn) < 0)) {
                rep_fail(s, "cannot answer the read replica's authentication request");
                return 1;
            }
        }
        buf_consume(&r->uin, (uint32_t)m.len);
        return 1;
    }
    if (s->be_pass)
        return 0;
    switch (t) {
    case 'E':
        if (!r->started && is_fatal(&m)) {
            rep_fail(s, "the read replica ended the connection");
            return 1;
        }
        f_error(&r->f, &m);
        break;
    case 'C': {
        struct pg_command_complete cc;
        if (pg_be_command_complete(&m, &cc) == PG_OK && cc.has_rows)
            r->f.rows += cc.rows;
        break;
    }
    case 'Z': {
        if (room(&s->down) < m.len)
            return 0; /* the client must read first */
        buf_append(&s->down, buf_start(&r->uin), m.len);
        buf_consume(&r->uin, (uint32_t)m.len);
        db_stmt_record(s->w, r->stats, r->f.verb, r->f.error ? DB_ERROR : DB_OK,
                       loop_now_us() - r->f.start_us, r->f.rows);
        if (r->f.error)
            db_stmt_error(s->w, r->stats, r->f.code[0] ? r->f.code : "unknown");
        buf_consume(&s->cin, r->qbytes); /* the held Query is answered */
        r->busy = r->sent = r->started = 0;
        return 1;
    }
    }
    r->started = 1;
    r->pass = (uint32_t)m.len;
    return 1;
}

/* 1 when the replica has closed and what it sent can no longer move. */
static int rep_stuck(struct pgs *s)
{
    struct pg_rep *r = &s->rep;
    uint32_t n = buf_len(&r->uin);
    if (r->pass || r->skip)
        return n == 0;
    struct pg_msg m;
    return n < 5 || pg_frame_header(buf_start(&r->uin), n, PG_MESSAGE_MAX, &m) != PG_OK ||
           m.len > n;
}

/* The replica connection's I/O: sends the held Query once authenticated,
 * relays its answer. 1: progress. */
static int rep_io(struct pgs *s)
{
    struct pg_rep *r = &s->rep;
    int progress = 0;
    if (!r->uc || r->state < RS_AUTH)
        return 0;
    if (r->busy && !r->sent && r->state == RS_READY && buf_len(&r->up) == 0) {
        if (fit(&r->up, r->qbytes) < 0 || buf_append(&r->up, buf_start(&s->cin), r->qbytes) < 0) {
            rep_fail(s, "out of memory");
            return 1;
        }
        r->sent = 1;
    }
    if (buf_len(&r->up) > 0 && !r->eof) {
        ssize_t n = sio_write_buf(&r->uc->sio, &r->up);
        if (n > 0)
            progress = 1;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            r->eof = 1;
    }
    if (!r->eof && buf_has_room(&r->uin)) {
        ssize_t n = sio_read_buf(&r->uc->sio, &r->uin);
        if (n == 0)
            r->eof = 1;
        else if (n > 0)
            progress = 1;
        else if (n == -1 && errno != EAGAIN && errno != EINTR)
            r->eof = 1;
    }
    while (!s->closing && r->uc && rep_step(s))
        progress = 1;
    if (r->uc && r->eof && !s->closing && rep_stuck(s)) {
        rep_fail(s, "the read replica closed the connection");
        progress = 1;
    }
    return progress;
}

/* One step of the client -> server direction. 1: progress, 0: wait. */
static int fe_step(struct pgs *s)
{
    if (s->fe_pass)
        return pass(&s->cin, &s->up, &s->fe_pass);
    if (s->fe_skip) {
        uint32_t n = buf_len(&s->cin) < s->fe_skip ? buf_len(&s->cin) : s->fe_skip;
        buf_consume(&s->cin, n);
        s->fe_skip -= n;
        return n > 0;
    }
    if (s->rep.busy || s->terminated || buf_len(&s->cin) < 5)
        return 0; /* rep.busy: the replica answers the Query at the head first */
    struct pg_msg m;
    if (pg_frame_header(buf_start(&s->cin), buf_len(&s->cin), PG_MESSAGE_MAX, &m) != PG_OK) {
        s_fail(s, "FATAL", "08P01", "invalid frontend message");
        return 1;
    }
    if (s->phase == PH_AUTH) {
        s->fe_pass = (uint32_t)m.len;
        return 1;
    }
    uint8_t t = m.type;
    if (t == 'X') {
        /* A terminated session's server connection outlives the client
         * (pg_pool): the Terminate is the client's, not the server's. */
        s->terminated = 1;
        if (s->term)
            s->fe_skip = (uint32_t)m.len;
        else
            s->fe_pass = (uint32_t)m.len;
        return 1;
    }
    if (t != 'Q')
        s->rep.pinned = 1; /* extended protocol, COPY, ...: home for good */
    if (s->batch.denied && t != 'S') {
        s->fe_skip = (uint32_t)m.len; /* the rest of a refused batch */
        return 1;
    }
    int whole = t == 'Q' || t == 'P' || t == 'B';
    if (t == 'S' || t == 'F' || t == 'Q') {
        if (s->qlen >= PG_INFLIGHT || room(&s->up) < 5)
            return 0; /* the server must catch up first */
    }
    if (whole) {
        if (m.len > PG_INSPECT_MAX) {
            if (t == 'B') {
                s->portal_verb = SQLC_V_OTHER;
                batch_start(s);
                s->fe_pass = (uint32_t)m.len;
                return 1;
            }
            s_fail(s, "FATAL", "54000", "statement too large for the proxy to check");
            return 1;
        }
        if (buf_len(&s->cin) < m.len) {
            if (fit(&s->cin, m.len) < 0) {
                s_fail(s, "FATAL", "53200", "out of memory");
                return 1;
            }
            return 0;
        }
        if (pg_frame(buf_start(&s->cin), buf_len(&s->cin), PG_INSPECT_MAX, &m) != PG_OK) {
            s_fail(s, "FATAL", "08P01", "invalid frontend message");
            return 1;
        }
    }
    struct sqlc_result res;
    switch (t) {
    case 'Q': {
        pg_str sql;
        if (pg_fe_query(&m, &sql) != PG_OK) {
            s_fail(s, "FATAL", "08P01", "invalid Query message");
            return 1;
        }
        const char *refuser = NULL;
        int ref = stmt_check(s, "query", sql, &res, &refuser);
        if (!ref && rep_take(s, &res, (uint32_t)m.len))
            return 1; /* held for the replica (rep_io sends it) */
        struct pg_inflight *f = q_push(s, (uint8_t)res.verb, loop_now_us());
        if (ref) {
            /* The server answers the Sync with the ReadyForQuery that
             * follows our ErrorResponse. */
            f->denied = (uint8_t)ref;
            f->policy = refuser;
            buf_consume(&s->cin, (uint32_t)m.len);
            char sync[8];
            int n = pg_build_sync(sync, sizeof(sync));
            buf_append(&s->up, sync, (size_t)n);
            return 1;
        }
        break;
    }
    case 'P': {
        struct pg_parse p;
        if (pg_fe_parse(&m, &p) != PG_OK) {
            s_fail(s, "FATAL", "08P01", "invalid Parse message");
            return 1;
        }
        batch_start(s);
        const char *refuser = NULL;
        int ref = stmt_check(s, "prepare", p.query, &res, &refuser);
        if (!s->batch.has_verb) {
            s->batch.verb = (uint8_t)res.verb;
            s->batch.has_verb = 1;
        }
        if (ref) {
            s->batch.denied = ref;
            s->batch.verb = (uint8_t)res.verb;
            s->batch.policy = refuser;
            buf_consume(&s->cin, (uint32_t)m.len);
            return 1;
        }
        stmt_put(s, p.name, (uint8_t)res.verb);
        break;
    }
    case 'B': {
        struct pg_bind b;
        batch_start(s);
        s->portal_verb = pg_fe_bind(&m, &b) == PG_OK ? stmt_get(s, b.statement) : SQLC_V_OTHER;
        break;
    }
    case 'E':
        batch_start(s);
        if (!s->batch.has_exec) {
            s->batch.has_exec = 1;
            s->batch.verb = s->portal_verb;
            s->batch.has_verb = 1;
        }
        break;
    case 'D':
    case 'C':
    case 'H':
        batch_start(s);
        break;
    case 'S': {
        uint64_t start = s->batch.open ? s->batch.start_us : loop_now_us();
        struct pg_inflight *f = q_push(s, s->batch.open ? s->batch.verb : SQLC_V_OTHER, start);
        f->denied = (uint8_t)s->batch.denied;
        f->policy = s->batch.policy;
        memset(&s->batch, 0, sizeof(s->batch));
        break;
    }
    case 'F':
        q_push(s, SQLC_V_OTHER, loop_now_us());
        break;
    default:
        break; /* CopyData/CopyDone/CopyFail and the rest: as they are */
    }
    s->fe_pass = (uint32_t)m.len;
    return 1;
}

/* The statement at the head of the FIFO got its ReadyForQuery. */
static void stmt_done(struct pgs *s)
{
    struct pg_inflight *f = q_head(s);
    if (!f)
        return;
    enum db_outcome o = f->denied ? db_refusal_outcome(f->denied) : f->error ? DB_ERROR : DB_OK;
    db_stmt_record(s->w, s->stats, f->verb, o, loop_now_us() - f->start_us, f->rows);
    if (o == DB_ERROR)
        db_stmt_error(s->w, s->stats, f->code[0] ? f->code : "unknown");
    s->qhead = (s->qhead + 1) % PG_INFLIGHT;
    s->qlen--;
}

/* One step of the server -> client direction. 1: progress, 0: wait. */
/* A ParameterStatus from the server (whole message m): the classifier's
 * string mode, and for terminated sessions the list a later client of this
 * connection is told (pg_pool). */
static void server_param(struct pgs *s, const struct pg_msg *m)
{
    param_mode(s, m);
    if (s->term && pg_conn_info_param(&s->ci, m) != 0)
        s->ci.key_len = 0; /* an incomplete list: never pool this connection */
}

/* The server's BackendKeyData, registered so that the client's
 * CancelRequests (new connections, any worker) reach this server. */
static void remember_key(struct pgs *s, const struct pg_msg *m)
{
    uint32_t pid, key32;
    pg_str key;
    if (s->cancel_key || s->phase != PH_AUTH || pg_be_key_data(m, &pid, &key, &key32) != PG_OK)
        return;
    register_cancel(s, s->ct.ep, pid, key.p, key.len);
    if (s->term && key.len <= sizeof(s->ci.key)) {
        s->ci.pid = pid;
        memcpy(s->ci.key, key.p, key.len);
        s->ci.key_len = (uint16_t)key.len;
    }
}

static int be_step(struct pgs *s)
{
    if (s->be_pass)
        return pass(&s->uin, &s->down, &s->be_pass);
    if (s->rep.pass || buf_len(&s->uin) < 5)
        return 0;
    struct pg_msg m;
    if (pg_frame_header(buf_start(&s->uin), buf_len(&s->uin), PG_MESSAGE_MAX, &m) != PG_OK) {
        s_fail(s, "FATAL", "08P01", "invalid message from the database server");
        return 1;
    }
    uint8_t t = m.type;
    int login = s->term && s->phase == PH_AUTH && t == 'R';
    if (t != 'C' && t != 'E' && t != 'Z' && t != 'S' && t != 'K' && !login) {
        s->last_be_error = 0;
        s->be_pass = (uint32_t)m.len;
        return 1;
    }
    if (m.len > PG_INSPECT_MAX) {
        s_fail(s, "FATAL", "08P01", "message from the database server too large");
        return 1;
    }
    if (buf_len(&s->uin) < m.len) {
        if (fit(&s->uin, m.len) < 0) {
            s_fail(s, "FATAL", "53200", "out of memory");
            return 1;
        }
        return 0;
    }
    if (pg_frame(buf_start(&s->uin), buf_len(&s->uin), PG_INSPECT_MAX, &m) != PG_OK) {
        s_fail(s, "FATAL", "08P01", "invalid message from the database server");
        return 1;
    }
    struct pg_inflight *f = s->phase == PH_READY ? q_head(s) : NULL;
    s->last_be_error = t == 'E';
    switch (t) {
    case 'C': {
        struct pg_command_complete cc;
        if (f && pg_be_command_complete(&m, &cc) == PG_OK && cc.has_rows)
            f->rows += cc.rows;
        break;
    }
    case 'E':
        if (f)
            f_error(f, &m);
        break;
    case 'K':
        remember_key(s, &m);
        break;
    case 'R': {
        /* A terminated session's login (only then is 'R' inspected): the
         * proxy answers with the cluster's credentials; the client sees
         * only the final AuthenticationOk. */
        struct pg_auth a;
        char pb[512];
        int pn = pg_be_auth(&m, &a) == PG_OK ? login_answer(&s->login, s->wc->gc->cfg, &a, pb,
                                                             sizeof(pb))
                                             : -1;
        if (pn < 0 || (pn > 0 && buf_append(&s->up, pb, (size_t)pn) < 0)) {
            s_fail(s, "FATAL", "08006",
                   "the proxy could not log into the database server with the cluster's "
                   "credentials (unsupported authentication method or failed exchange)");
            return 1;
        }
        if (a.code != PG_AUTH_OK) {
            buf_consume(&s->uin, (uint32_t)m.len);
            return 1;
        }
        break;
    }
    case 'S':
        server_param(s, &m);
        break;
    case 'Z': {
        char st;
        if (pg_be_ready(&m, &st) != PG_OK) {
            s_fail(s, "FATAL", "08P01", "invalid ReadyForQuery from the database server");
            return 1;
        }
        if (f && f->denied) {
            char eb[512], msg[300];
            /* PostgreSQL has no rate-limit code; 53400 is its class 53
             * (insufficient resources) "configuration_limit_exceeded". */
            int lim = f->denied == REF_LIMITED;
            snprintf(msg, sizeof(msg), lim ? "rate limit exceeded: %s limited by RateLimit %s"
                                           : "permission denied: %s refused by policy %s",
                     sqlc_verb_name((enum sqlc_verb)f->verb), f->policy ? f->policy : "?");
            int n = pg_build_error(eb, sizeof(eb), "ERROR", lim ? "53400" : "42501", msg);
            if (n < 0)
                n = 0;
            if (room(&s->down) < (uint32_t)n + m.len)
                return 0; /* the client must read first */
            buf_append(&s->down, eb, (size_t)n);
        }
        s->tx = st;
        if (s->phase == PH_AUTH)
            s->phase = PH_READY;
        else
            stmt_done(s);
        break;
    }
    }
    s->be_pass = (uint32_t)m.len;
    return 1;
}

/* ---- The session loop ------------------------------------------------------ */

/* 1: nothing is in flight, the session may close without cutting a
 * statement. */
static int s_idle(const struct pgs *s)
{
    return s->phase != PH_READY ||
           (s->qlen == 0 && !s->rep.busy && !s->batch.open && s->fe_pass == 0 && s->be_pass == 0 &&
            buf_len(&s->cin) == 0 && buf_len(&s->uin) == 0);
}

/* 1 when the server has closed and what it sent can no longer move: a
 * message cut short, or nothing left. */
static int be_stuck(struct pgs *s)
{
    uint32_t n = buf_len(&s->uin);
    if (s->be_pass)
        return n == 0;
    struct pg_msg m;
    return n < 5 || pg_frame_header(buf_start(&s->uin), n, PG_MESSAGE_MAX, &m) != PG_OK ||
           m.len > n;
}

static void s_drain_close(struct pgs *s)
{
    s_fail(s, "FATAL", "57P01", "terminating connection: the proxy is shutting down");
}

static void run(struct pgs *s)
{
    if (s->closed)
        return;
    struct worker *w = s->w;
    uint64_t in0 = s->bytes_in, out0 = s->bytes_out;
    for (int iter = 0; iter < 64 && !s->closed; iter++) {
        int progress = 0;
        /* Client -> proxy. Decrypted bytes inside TLS are never reported
         * by epoll. */
        if (sio_pending(&s->cs))
            s->c_ready = 1;
        if (s->c_ready && !s->c_eof && !s->closing && !s->terminated && buf_has_room(&s->cin)) {
            uint32_t room = s->cin.data ? buf_space(&s->cin) : buf_block_size();
            ssize_t n = sio_read_buf(&s->cs, &s->cin);
            if (n == 0)
                s->c_eof = 1;
            else if (n > 0)
                progress = 1, s->bytes_in += (uint64_t)n;
            else if (n == -1 && errno != EAGAIN && errno != EINTR)
                s->c_eof = 1;
            if (n < 0 || (n > 0 && (uint32_t)n < room))
                s->c_ready = 0; /* drained */
        }
        if (s->c_eof && !s->terminated) {
            if (!s->err && s->phase != PH_READY)
                s->err = "client closed the connection";
            s_end(s);
            return;
        }
        if (!s->closing) {
            if (s->phase == PH_STARTUP)
                progress |= startup_step(s);
            else if (s->phase == PH_CLIENT_AUTH)
                progress |= client_auth_step(s);
            else if (s->phase >= PH_AUTH)
                while (!s->closing && fe_step(s))
                    progress = 1;
        }
        if (s->closed)
            return;
        /* Proxy <-> server. */
        if (s->uc && s->phase >= PH_AUTH && !s->closing) {
            if (buf_len(&s->up) > 0) {
                ssize_t n = sio_write_buf(&s->uc->sio, &s->up);
                if (n > 0)
                    progress = 1;
                else if (n < 0 && errno != EAGAIN && errno != EINTR)
                    s->u_eof = 1;
            }
            if (s->u_ready && !s->u_eof && buf_has_room(&s->uin)) {
                uint32_t room = s->uin.data ? buf_space(&s->uin) : buf_block_size();
                ssize_t n = sio_read_buf(&s->uc->sio, &s->uin);
                if (n == 0)
                    s->u_eof = 1;
                else if (n > 0)
                    progress = 1;
                else if (n == -1 && errno != EAGAIN && errno != EINTR)
                    s->u_eof = 1;
                if (n < 0 || (n > 0 && (uint32_t)n < room))
                    s->u_ready = 0;
            }
            while (!s->closing && be_step(s))
                progress = 1;
            if (s->closed)
                return;
            if (s->u_eof && !s->closing && be_stuck(s)) {
                /* The server went away: tell the client unless the server
                 * already said why (its FATAL ErrorResponse) or a message
                 * was cut short (the client sees the connection drop). */
                if (!s->last_be_error && s->be_pass == 0)
                    s_fail(s, "FATAL", "08006", "the database server closed the connection");
                else {
                    s->closing = 1;
                    s->err = s->phase == PH_READY ? NULL : "database server refused the session";
                }
                if (s->uc) {
                    uconn_close(s->uc);
                    s->uc = NULL;
                }
            }
        }
        /* Proxy <-> read replica. */
        if (s->rep.uc && !s->closing) {
            progress |= rep_io(s);
            if (s->closed)
                return;
        }
        /* Proxy -> client. */
        if (buf_len(&s->down) > 0) {
            ssize_t n = sio_write_buf(&s->cs, &s->down);
            if (n > 0)
                progress = 1, s->bytes_out += (uint64_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                s->err = s->err ? s->err : "client write failed";
                s_end(s);
                return;
            }
        }
        if (s->draining && !s->closing && s_idle(s))
            s_drain_close(s);
        if (!progress)
            break;
    }
    if (s->closing && buf_len(&s->down) == 0) {
        s_end(s);
        return;
    }
    if (s->terminated && s->fe_pass == 0 && buf_len(&s->up) == 0) {
        s_end(s); /* Terminate delivered */
        return;
    }
    unsigned cm = 0, um = 0;
    if (buf_len(&s->down) > 0)
        cm |= LOOP_WRITE;
    if (!s->closing && !s->terminated && buf_has_room(&s->cin))
        cm |= LOOP_READ;
    loop_io_set(w->loop, &s->io, cm | s->cs.want);
    if (s->uc && s->phase >= PH_AUTH) {
        if (buf_len(&s->up) > 0)
            um |= LOOP_WRITE;
        if (!s->u_eof && buf_has_room(&s->uin))
            um |= LOOP_READ;
        uconn_want(s->uc, um);
    }
    if (s->rep.uc && s->rep.state >= RS_AUTH) {
        um = 0;
        if (buf_len(&s->rep.up) > 0 && !s->rep.eof)
            um |= LOOP_WRITE;
        if (!s->rep.eof && buf_has_room(&s->rep.uin))
            um |= LOOP_READ;
        uconn_want(s->rep.uc, um);
    }
    buf_shrink(&s->rep.up);
    buf_shrink(&s->rep.uin);
    buf_shrink(&s->cin);
    buf_shrink(&s->up);
    buf_shrink(&s->uin);
    buf_shrink(&s->down);
    if (s->bytes_in != in0)
        metrics_add(w->shard, s->gl->m_bytes_in, s->bytes_in - in0);
    if (s->bytes_out != out0)
        metrics_add(w->shard, s->gl->m_bytes_out, s->bytes_out - out0);
    if ((s->bytes_in != in0 || s->bytes_out != out0) && s->phase != PH_STARTUP && !s->closing)
        loop_timer_arm(w->loop, &s->timer, loop_now(w->loop) + s->gl->cfg->idle_timeout_ms);
}

static void s_client_io(struct loop *l, struct loop_io *io, unsigned events)
{
    struct pgs *s = io->ud;
    (void)l;
    /* TLS may need the socket writable to go on reading (a handshake). */
    if ((events & LOOP_READ) || ((events & LOOP_WRITE) && (s->cs.want & LOOP_WRITE)))
        s->c_ready = 1;
    run(s);
}

static void pg_accept(struct worker *w, struct gen_listener *gl, int fd,
                      const struct sockaddr_storage *peer)
{
    if (!pg_sessions_init) {
        wlist_init(&pg_sessions);
        pg_sessions_init = 1;
    }
    struct pgs *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return;
    }
    s->w = w;
    s->gl = gl;
    s->wg = worker_wgen(w);
    wgen_hold(s->wg);
    s->cs.fd = fd;
    s->t_start_us = loop_now_us();
    net_ip_str((const struct sockaddr *)peer, s->peer_ip, sizeof(s->peer_ip));
    snprintf(s->port, sizeof(s->port), "%d", net_port((const struct sockaddr *)&gl->cfg->addr));
    s->attrs.proto = "postgres";
    s->attrs.peer_ip = s->peer_ip;
    s->attrs.port = s->port;
    net_nodelay(fd);
    worker_conn_opened(w);
    metrics_gauge_add(w->shard, gl->m_conn_active, 1);
    metrics_add(w->shard, gl->m_conn_total, 1);
    wlist_add_tail(&pg_sessions, &s->link);
    s->io.fd = fd;
    s->io.cb = s_client_io;
    s->io.ud = s;
    s->timer.cb = s_timeout;
    s->timer.ud = s;
    if (loop_io_add(w->loop, &s->io, LOOP_READ) < 0) {
        s->err = "cannot watch the connection";
        s_end(s);
        return;
    }
    uint64_t t = gl->cfg->header_timeout_ms ? gl->cfg->header_timeout_ms : 10000;
    loop_timer_arm(w->loop, &s->timer, loop_now(w->loop) + t);
    if (w->draining) {
        s->draining = 1;
        s_drain_close(s);
    }
    run(s);
}

#define PGS_OF(l) ((struct pgs *)((char *)(l) - offsetof(struct pgs, link)))

/* Idle sessions close now (with a 57P01 FATAL), the others when their
 * statements are answered. */
static void pg_drain(struct worker *w)
{
    if (!pg_sessions_init)
        return;
    struct wlink *l = pg_sessions.next;
    while (l != &pg_sessions) {
        struct pgs *s = PGS_OF(l);
        l = l->next;
        if (s->w != w || s->closed)
            continue;
        s->draining = 1;
        run(s); /* may end s; l already points past it */
    }
}

const struct proto_handler pg_handler = {"postgres", pg_accept, pg_drain};
