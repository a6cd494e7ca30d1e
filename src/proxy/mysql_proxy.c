/* mysql_proxy.c - the MySQL/MariaDB proxy: pass-through or terminated
 * authentication, then a command loop with per-statement policy and
 * metrics.
 *
 * In MySQL the server speaks first. By default the proxy relays the
 * handshake rather than terminating it, so a session is routed once at
 * accept time on connection attributes only (source.address,
 * destination.port, protocol): db.user and db.name are not known yet. A
 * listener with `auth` greets the client itself instead and routes after
 * checking it (see "terminated authentication"). The server's greeting is relayed with the capabilities the proxy cannot
 * follow cleared (SSL: no TLS yet; compression; query attributes), the
 * client's HandshakeResponse41 gives db.user and db.name, and the auth
 * exchange (switches, caching_sha2 fast/full auth) flows both ways until
 * the server's OK or ERR. After the OK the session is checked against the
 * listener's AuthorizationPolicies (db.user and db.name known); a refusal
 * becomes ERR 1045 in place of the OK and the connection closes.
 *
 * Then the protocol is strictly request/response: every client command is
 * parsed (my_session_client); COM_QUERY and COM_STMT_PREPARE are
 * classified (sqlc), COM_STMT_EXECUTE inherits the classification of its
 * prepare, and the statement is checked against the policies. A refused
 * statement never reaches the server: the client gets ERR 1142 and the
 * session goes on. Server packets are fed to the response state machine
 * (my_session_server) until the response is complete, which gives the
 * statement's outcome and rows for db_stmt_record, the transaction state
 * and prepared statement ids.
 *
 * Bytes move packet by packet through bounded buffers in both directions:
 * a packet is looked at when its header and the few payload bytes the
 * codec needs are in hand, then streamed on (so a > 16 MiB row passes a
 * 32 KiB buffer). The one exception is the first packet of a COM_QUERY or
 * COM_STMT_PREPARE, held whole (up to 16 MiB) so that the classifier sees
 * the whole statement text. A full output buffer stops reads on the other
 * side.
 *
 * Read/write split: a read-only COM_QUERY outside a transaction, on a
 * session not pinned by session state and not within 1 s of a write, is
 * routed again with its statement attributes; when the rule picks another
 * cluster that has `auth` credentials (a read replica), it runs on the
 * session's own replica connection (opened lazily, logged into with those
 * credentials) and its answer is relayed in place of the home server's.
 * Details in the "read replicas" section. */
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/net.h"
#include "proto/mysql/my.h"
#include "proto/sql/sqlc.h"
#include "proxy/accesslog.h"
#include "proxy/db.h"
#include "proxy/gen.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/my_pool.h"
#include "proxy/my_users.h"
#include "proxy/proto.h"
#include "proxy/upstream.h"
#include "router/attr.h"
#include "router/authz.h"
#include "router/router.h"

#define ERR_ROOM 600u     /* an ERR packet the proxy writes: 4 + 9 + 512 bytes at most */
#define NAME_MAX_ 256     /* db.user / db.name copies */
#define STMT_SLOTS 16     /* prepared statements remembered per session */

/* Capability bits the proxy clears, as they sit in the wire's bytes. */
#define CAPS_B0_CLEAR 0x20u /* CLIENT_COMPRESS (bit 5) */
#define CAPS_B1_CLEAR 0x08u /* CLIENT_SSL (bit 11) */
#define CAPS_B3_CLEAR 0x0cu /* CLIENT_ZSTD_COMPRESSION (26), CLIENT_QUERY_ATTRIBUTES (27) */

/* A prepared statement's classification, for COM_STMT_EXECUTE. */
struct stmt_slot {
    uint32_t id;
    uint8_t used;
    struct sqlc_result cls;
};

struct stmt_table {
    struct stmt_slot slot[STMT_SLOTS];
    unsigned next;              /* round-robin victim when full */
    struct sqlc_result pending; /* the COM_STMT_PREPARE being answered */
};

/* Terminated sessions: the client's handshake with the proxy (HELLO: its
 * HandshakeResponse41 is awaited, SWITCH: its answer to an
 * AuthSwitchRequest), then the server's (LOGIN: the proxy logs in, INITDB:
 * a pooled connection selects the client's database), then READY. */
enum term_phase { TP_OFF, TP_HELLO, TP_SWITCH, TP_LOGIN, TP_INITDB, TP_READY };

/* The session's read-replica connection (see "read replicas" below). */
enum rep_state { RS_NONE, RS_CONNECTING, RS_GREETING, RS_AUTH, RS_READY };

struct mrep {
    enum rep_state state;
    struct wcluster *wc;         /* the replica's cluster (set once) */
    const struct route_rule *rr; /* the rule that picked it (retries) */
    struct gen_stats *stats;     /* that rule's backend: the statements' metrics */
    struct uconn *uc;
    struct uconn_try ct;
    int connecting;              /* a connect attempt is open */
    uint8_t pinned;              /* session state: home for good */
    uint8_t busy;                /* the COM_QUERY at the head of cin is the replica's */
    uint8_t sent;                /* ... and it has been queued for the replica */
    uint8_t started;             /* ... and part of its answer reached the client */
    uint8_t done;                /* ... and its last packet has been seen */
    uint8_t eof, ready;
    uint64_t sticky_until_us;    /* after a write: home until then */
    uint64_t down_until_us;      /* the replica failed: home until then */
    uint32_t qbytes;             /* the held COM_QUERY packet (header included) */
    uint32_t left;               /* bytes of the replica packet still to relay */
    int verb;
    uint64_t t_us;
    struct buf out;              /* to the replica; uc->in holds its bytes */
    struct my_resp resp;
    struct my_login login;
    char db[256];                /* the database the connection was opened with */
};

struct msess {
    struct loop_io io;          /* the client socket */
    struct loop_timer timer;    /* handshake / idle / closing bound */
    struct sio cs;
    struct wlink link;          /* this thread's sessions (drain) */
    struct worker *w;
    struct gen_listener *gl;
    struct wgen *wg;
    struct wcluster *wc;
    const struct route_rule *rr;
    struct gen_stats *stats;
    struct uconn *uc;           /* connecting or connected, else NULL */
    int connecting;             /* a connect attempt is open (lb/active books) */
    int cfd;
    struct uconn_try ct;        /* connect attempts */
    uint64_t t_start_us;
    char peer_ip[INET6_ADDRSTRLEN];
    char port[8];

    struct buf cin;             /* from the client, not yet passed on */
    struct buf cout;            /* to the client */
    struct buf uout;            /* to the server; uc->in holds the server's bytes */
    uint32_t c_left, s_left;    /* bytes of the current packet still to pass (header included) */
    uint8_t c_drop, s_drop;     /* ... and they are dropped, not passed */
    uint8_t c_dropping;         /* dropping the later packets of a refused > 16 MiB command */
    uint8_t client_turn;        /* the server waits for the client (auth reply, LOCAL INFILE) */
    uint8_t io_added, dead, c_eof, u_eof, closing, quit;
    /* epoll said readable and no read has drained the socket since: saves
     * a read that would find nothing on every event. */
    uint8_t c_ready, u_ready;
    struct my_session ms;

    char user[NAME_MAX_], dbname[NAME_MAX_];
    char pend_user[NAME_MAX_], pend_db[NAME_MAX_];
    uint8_t has_user, has_db, pend_has_db;
    uint16_t status;            /* server status of the last OK/EOF */
    uint8_t cur_cmd;            /* the command being answered */
    uint8_t stmt_active;        /* a statement is in flight: record it when answered */
    int stmt_verb;
    uint64_t t_stmt_us;
    struct stmt_table *stmts;   /* allocated on the first COM_STMT_PREPARE */
    struct mrep rep;            /* read replica (read/write split) */
    uint8_t pend_err[ERR_ROOM]; /* refusal of a > 16 MiB command, sent after its last packet */
    int pend_err_len;

    uint64_t bytes_in, bytes_out;
    const char *reason;         /* first failure, for the access log */
    char errbuf[160];

    /* Listener spec.auth (see "terminated authentication"): the proxy's
     * own greeting and check, then its login to the server. */
    uint8_t term;               /* enum term_phase; TP_OFF passes authentication through */
    uint8_t cseq;               /* sequence id of the proxy's next packet to the client */
    uint8_t scramble[20];       /* the proxy's greeting's */
    uint8_t no_pool;            /* COM_SET_OPTION: a state COM_RESET_CONNECTION may keep */
    struct my_login login;      /* with the home server (caps: negotiated there) */
};

/* The worker thread's sessions, so drain() can find them. Thread-local:
 * each worker has its own list and only its own thread touches it. */
static _Thread_local struct wlink sessions;

static const struct uconn_ops ms_uc_ops;
static void ms_run(struct msess *s);
static void rep_close(struct msess *s, int graceful);

/* ---- attributes ------------------------------------------------------- */

static void attrs_of(const struct msess *s, struct db_attrs *a)
{
    memset(a, 0, sizeof(*a));
    a->proto = "mysql";
    a->user = s->has_user ? s->user : NULL;
    a->dbname = s->has_db ? s->dbname : NULL;
    a->peer_ip = s->peer_ip;
    a->port = s->port;
    a->in_transaction = (s->status & MY_SERVER_STATUS_IN_TRANS) != 0;
}

/* Copies v into dst (cap bytes, NUL-terminated, cut at an embedded NUL). */
static void copy_str(char *dst, size_t cap, my_str v)
{
    size_t n = v.p ? v.len : 0;
    if (n >= cap)
        n = cap - 1;
    const char *nul = n ? memchr(v.p, 0, n) : NULL;
    if (nul)
        n = (size_t)(nul - v.p);
    if (n)
        memcpy(dst, v.p, n);
    dst[n] = 0;
}

/* ---- prepared statements ------------------------------------------------ */

static struct stmt_slot *stmt_find(struct msess *s, uint32_t id)
{
    if (!s->stmts)
        return NULL;
    for (int i = 0; i < STMT_SLOTS; i++)
        if (s->stmts->slot[i].used && s->stmts->slot[i].id == id)
            return &s->stmts->slot[i];
    return NULL;
}

/* Remembers the pending classification under id; the oldest goes when full
 * (its executes are then classified as unknown, after its prepare passed). */
static void stmt_add(struct msess *s, uint32_t id)
{
    struct stmt_table *t = s->stmts;
    struct stmt_slot *slot = stmt_find(s, id);
    for (int i = 0; !slot && i < STMT_SLOTS; i++)
        if (!t->slot[i].used)
            slot = &t->slot[i];
    if (!slot) {
        slot = &t->slot[t->next];
        t->next = (t->next + 1) % STMT_SLOTS;
    }
    slot->id = id;
    slot->used = 1;
    slot->cls = t->pending;
}

static void stmt_forget(struct msess *s, uint32_t id)
{
    struct stmt_slot *slot = stmt_find(s, id);
    if (slot)
        slot->used = 0;
}

static void stmt_clear(struct msess *s)
{
    if (s->stmts)
        for (int i = 0; i < STMT_SLOTS; i++)
            s->stmts->slot[i].used = 0;
}

/* ---- session end ---------------------------------------------------------- */

static void ms_log(struct msess *s, const char *err)
{
    db_log_session(s->w, ALOG_MYSQL, s->gl, s->rr, s->wc, s->peer_ip, s->t_start_us, s->bytes_in,
                   s->bytes_out, err);
}

static uint64_t login_want(const struct msess *s);

/* A terminated session's server connection may serve another client when
 * the session ends cleanly between commands, outside a transaction, with
 * nothing half sent or unread either way (my_pool resets it). */
static int poolable(const struct msess *s, const char *err)
{
    return s->term == TP_READY && !err && !s->reason && !s->connecting && !s->u_eof &&
           s->ms.phase == MY_PH_COMMAND && !(s->status & MY_SERVER_STATUS_IN_TRANS) &&
           !s->c_left && !s->s_left && !s->c_dropping && !s->client_turn && !s->ms.in_msg &&
           !s->stmt_active && !s->rep.busy && !s->no_pool && buf_len(&s->uout) == 0 &&
           buf_len(&s->uc->in) == 0;
}

/* Ends the session and frees it (deferred: an event may still be queued). */
static void ms_end(struct msess *s, const char *err)
{
    if (s->dead)
        return;
    s->dead = 1;
    struct worker *w = s->w;
    if (!err)
        err = s->reason;
    if (s->stmt_active)
        db_stmt_record(w, s->stats, s->stmt_verb, DB_FAILED, loop_now_us() - s->t_stmt_us, 0);
    if (s->rep.busy && s->rep.stats)
        db_stmt_record(w, s->rep.stats, s->rep.verb, DB_FAILED, loop_now_us() - s->rep.t_us,
                       s->rep.resp.rows);
    s->rep.busy = 0;
    rep_close(s, 0);
    buf_free(&s->rep.out);
    ms_log(s, err);
    loop_timer_cancel(w->loop, &s->timer);
    if (s->io_added)
        loop_io_del(w->loop, &s->io);
    sio_tls_close(&s->cs);
    close(s->cfd);
    if (s->connecting)
        uconn_try_done(s->wc, &s->ct, ECONNABORTED);
    if (s->uc && poolable(s, err)) {
        struct my_pool_key key = {login_want(s), s->ms.hsr.charset};
        my_pool_put(s->wc, s->uc, &key, s->login.caps);
    } else if (s->uc) {
        uconn_close(s->uc);
    }
    s->uc = NULL;
    buf_free(&s->cin);
    buf_free(&s->cout);
    buf_free(&s->uout);
    free(s->stmts);
    s->stmts = NULL;
    if (s->link.next)
        wlist_del(&s->link);
    metrics_gauge_add(w->shard, s->gl->m_conn_active, -1);
    worker_conn_closed(w);
    wgen_release(s->wg);
    loop_defer_free(w->loop, free, s);
}

/* Before the relay exists: writes one ERR packet straight to the socket,
 * best effort, and ends. Its sequence id is 0 in place of the server's
 * greeting, or the next one of a terminated login. */
static void refuse_now(struct msess *s, uint16_t code, const char *state, const char *msg)
{
    uint8_t pkt[ERR_ROOM];
    int n = my_build_err(pkt, sizeof(pkt), s->cseq, MY_CLIENT_PROTOCOL_41, code, state, msg,
                         strlen(msg));
    if (n > 0) {
        struct iovec iov = {pkt, (size_t)n};
        if (sio_writev(&s->cs, &iov, 1) > 0)
            s->bytes_out += (uint64_t)n;
    }
    ms_end(s, msg);
}

/* Queues an ERR packet for the client (room was reserved: ERR_ROOM). */
static void send_err(struct msess *s, uint8_t seq, uint16_t code, const char *state,
                     const char *msg)
{
    uint8_t pkt[ERR_ROOM];
    int n = my_build_err(pkt, sizeof(pkt), seq, s->ms.caps | MY_CLIENT_PROTOCOL_41, code, state,
                         msg, strlen(msg));
    if (n > 0 && buf_put(&s->cout, pkt, (size_t)n) < 0)
        log_debug("mysql: no room for an ERR packet to %s", s->peer_ip);
}

static void start_closing(struct msess *s, const char *why)
{
    if (!s->reason)
        s->reason = why;
    s->closing = 1;
}

/* ---- buffers -------------------------------------------------------------- */

/* Makes sure b can hold total contiguous bytes from its head (growing a
 * private block for the rare large packet). 0 or -1. */
static int hold(struct buf *b, uint32_t total)
{
    if (b->data ? b->cap >= total : buf_block_size() >= total)
        return 0;
    return buf_grow(b, total);
}

/* Makes sure the small packet (a greeting, a login packet) of len payload
 * bytes at the head of in is whole there. 1: it is, 0: wait for more,
 * -1: the session ended (out of memory). */
static int whole(struct msess *s, struct buf *in, uint32_t len)
{
    if (buf_len(in) - MY_HDR_LEN >= len)
        return 1;
    if (hold(in, MY_HDR_LEN + len) < 0) {
        ms_end(s, "out of memory");
        return -1;
    }
    return 0;
}

/* Passes up to *left bytes from in to out (or drops them); returns bytes. */
static uint32_t pass(struct buf *in, struct buf *out, uint32_t *left, int drop)
{
    uint32_t n = buf_len(in);
    if (n > *left)
        n = *left;
    if (!n)
        return 0;
    if (!drop) {
        if (buf_ensure(out) < 0)
            return 0;
        uint32_t sp = buf_space(out);
        if (n > sp)
            n = sp;
        if (!n)
            return 0;
        memcpy(out->data + out->tail, buf_start(in), n);
        out->tail += n;
    }
    buf_consume(in, n);
    *left -= n;
    return n;
}

/* ---- policy ------------------------------------------------------------- */

/* The session check once authenticated (db.user, db.name known, no
 * statement). Returns the refusing policy or NULL. */
static const struct cfg_authz *session_denied(struct msess *s)
{
    struct db_attrs a;
    attrs_of(s, &a);
    struct attr_src src = {db_attr_get, &a};
    const char *why;
    return authz_check(s->gl->authz, &src, &why);
}

/* ---- read replicas -----------------------------------------------------------
 *
 * A COM_QUERY that only reads may run on a replica instead of the session's
 * home server: the route is matched again with the statement's attributes
 * and, when its rule picks another cluster that has `auth` credentials, the
 * query goes there. Only when that cannot change what the client sees: the
 * statement is SQLC_READ_ONLY (no locking read, no session state, no
 * transaction control) and names no user variable, the last OK/EOF said
 * autocommit on and no transaction, the query is one packet, and the
 * session is not pinned: for good after a session-state statement,
 * COM_STMT_PREPARE or COM_CHANGE_USER, and for REP_STICKY_US after a write
 * (read-your-writes).
 *
 * The replica connection is opened on the first such query and logs in
 * with the cluster's credentials (mysql_native_password, an auth switch to
 * it included) and the session's current database, asking for the
 * capabilities that shape responses exactly as the client negotiated them
 * (the replica's packets are relayed as they are: their sequence ids start
 * at 1 like the home server's would). While it connects and answers, the
 * query is held at the head of cin and the client's later commands wait.
 *
 * Failures: a replica that cannot be opened or logged into, or fails before
 * any of the answer reached the client, is given up for the next
 * DB_REPLICA_RETRY_US (rep.down_until_us) and the held query is handled
 * again, now going home; after that the session tries the replica cluster
 * again on a new connection. A failure in the middle of an answer ends the
 * client session, like a server loss.
 *
 * Health: the connection is opened only to an endpoint that is neither
 * ejected by the load balancer nor out by the replica checks (db_check.h),
 * and while no endpoint is usable reads go home. A kept connection whose
 * endpoint has gone out since is closed before the next read (which then
 * opens another, or goes home). */

#define REP_STICKY_US 1000000
/* Capabilities copied from the client's handshake for the proxy's own
 * logins (read replicas, terminated sessions' servers). */
#define LOGIN_COPY_CAPS                                                                     \
    (MY_CLIENT_LONG_PASSWORD | MY_CLIENT_FOUND_ROWS | MY_CLIENT_LONG_FLAG |                 \
     MY_CLIENT_IGNORE_SPACE | MY_CLIENT_TRANSACTIONS | MY_CLIENT_MULTI_STATEMENTS |         \
     MY_CLIENT_MULTI_RESULTS | MY_CLIENT_PS_MULTI_RESULTS | MY_CLIENT_SESSION_TRACK |       \
     MY_CLIENT_DEPRECATE_EOF | MY_CLIENT_OPTIONAL_RESULTSET_METADATA |                    \
     MY_MARIADB_CLIENT_EXTENDED_METADATA | MY_MARIADB_CLIENT_PROGRESS)
/* Capabilities that change the shape of a query's response: those the
 * proxy negotiates with a server must equal the client's. */
#define SHAPE_CAPS                                                                          \
    (MY_CLIENT_PROTOCOL_41 | MY_CLIENT_MULTI_RESULTS | MY_CLIENT_SESSION_TRACK |            \
     MY_CLIENT_DEPRECATE_EOF | MY_CLIENT_OPTIONAL_RESULTSET_METADATA |                    \
     MY_MARIADB_CLIENT_EXTENDED_METADATA | MY_MARIADB_CLIENT_PROGRESS)

static void rep_connect(struct msess *s);

static const char *cur_db(const struct msess *s) { return s->has_db ? s->dbname : ""; }

/* Closes the replica connection (a COM_QUIT first, best effort, when it is
 * idle and `graceful`). Its buffered bytes are dropped. */
static void rep_close(struct msess *s, int graceful)
{
    struct mrep *r = &s->rep;
    if (r->connecting) {
        uconn_try_done(r->wc, &r->ct, ECONNABORTED);
        r->connecting = 0;
    }
    if (r->uc) {
        if (graceful && r->state == RS_READY && !r->busy && !r->eof && buf_len(&r->out) == 0) {
            uint8_t q[8];
            int n = my_build_quit(q, sizeof(q));
            struct iovec iov = {q, (size_t)(n > 0 ? n : 0)};
            if (n > 0)
                (void)sio_writev(&r->uc->sio, &iov, 1);
        }
        uconn_close(r->uc);
        r->uc = NULL;
    }
    buf_consume(&r->out, buf_len(&r->out));
    r->left = 0;
    r->eof = r->ready = 0;
    r->state = RS_NONE;
}

/* Gives up on the replica for the rest of the session. A held query whose
 * answer had not started goes back to c_process (which now sends it home);
 * one whose answer had started ends the session (s->dead afterwards). */
static void rep_fail(struct msess *s, const char *why)
{
    struct mrep *r = &s->rep;
    log_info("mysql: read replica %s given up for this session: %s",
             r->wc ? r->wc->gc->cfg->name : "?", why);
    int cut = r->busy && r->started;
    if (cut) {
        db_stmt_record(s->w, r->stats, r->verb, DB_FAILED, loop_now_us() - r->t_us,
                       r->resp.rows);
        r->busy = 0;
    }
    rep_close(s, 0);
    r->down_until_us = loop_now_us() + DB_REPLICA_RETRY_US;
    r->busy = r->sent = r->started = r->done = 0;
    if (cut)
        ms_end(s, "the read replica failed during a statement");
}

static void rep_connected(void *owner, struct uconn *uc, int err)
{
    struct msess *s = owner;
    struct mrep *r = &s->rep;
    r->connecting = 0;
    uconn_try_done(r->wc, &r->ct, err);
    if (err) {
        r->uc = NULL;
        rep_connect(s);
    } else {
        r->uc = uc;
        r->state = RS_GREETING;
        r->ready = 1;
    }
    ms_run(s);
}

static void rep_uc_io(void *owner, struct uconn *uc, unsigned events)
{
    struct msess *s = owner;
    (void)uc;
    if (events & LOOP_READ)
        s->rep.ready = 1;
    ms_run(s);
}

static const struct uconn_ops rep_uc_ops = {rep_connected, rep_uc_io};

/* Tries the next endpoint of the replica cluster; gives up when none is
 * left. */
static void rep_connect(struct msess *s)
{
    struct mrep *r = &s->rep;
    struct uconn *uc;
    int rc = db_replica_connect(r->wc, route_rule_cfg(r->rr), &r->ct, &rep_uc_ops, s, &uc);
    if (rc != UCONN_TRY_STARTED) {
        rep_fail(s, uconn_try_reason(rc));
        return;
    }
    r->connecting = 1;
    r->uc = uc;
    r->state = RS_CONNECTING;
    snprintf(r->db, sizeof(r->db), "%s", cur_db(s));
}

/* 1 when the statement text names a user variable (@x, not @@x): it lives
 * in the home server's session. Conservative: '@' inside a literal or a
 * quoted name counts too. */
static int names_user_var(const struct my_command *c)
{
    const char *p = c->sql.p;
    size_t n = c->sql.len;
    for (size_t i = 0; p && i < n; i++) {
        if (p[i] != '@')
            continue;
        if (i + 1 < n && p[i + 1] == '@') {
            i++; /* @@system_variable */
            continue;
        }
        return 1;
    }
    return 0;
}

/* Called for an allowed COM_QUERY (pkt at the head of cin, res its
 * classification): updates the pins and, when the query goes to the
 * replica, holds it there and returns 1. 0: it goes home. */
static int rep_take(struct msess *s, const struct my_pkt *pkt, const struct sqlc_result *res)
{
    struct mrep *r = &s->rep;
    uint64_t now = loop_now_us();
    unsigned fl = res->flags;
    if (fl & SQLC_SESSION_STATE)
        r->pinned = 1;
    if (!(fl & SQLC_READ_ONLY))
        r->sticky_until_us = now + REP_STICKY_US;
    int ok = db_replica_eligible(fl) && !(s->status & MY_SERVER_STATUS_IN_TRANS) &&
             (s->status & MY_SERVER_STATUS_AUTOCOMMIT) && !s->ms.in_msg &&
             pkt->len < MY_MAX_PAYLOAD && now >= r->down_until_us && !r->pinned &&
             now >= r->sticky_until_us && !s->c_dropping && buf_len(&s->uout) == 0 &&
             !names_user_var(&s->ms.last);
    if (!ok)
        return 0;
    struct db_attrs a;
    attrs_of(s, &a);
    a.command = "query";
    a.cls = res;
    const struct route_rule *rr;
    struct gen_stats *stats;
    struct wcluster *wc = db_replica_route(s->w, s->gl, s->wg, s->wc, &a, &rr, &stats);
    if (!wc)
        return 0;
    if (r->wc && r->wc != wc)
        return 0; /* one replica cluster per session: the first one picked */
    if (r->state != RS_NONE && strcmp(r->db, cur_db(s)) != 0)
        rep_close(s, 1); /* COM_INIT_DB since: a new login with the new database */
    if (r->uc && r->state == RS_READY && r->uc->ep < 64 &&
        (db_replica_unusable(wc) >> r->uc->ep & 1))
        rep_close(s, 1); /* its endpoint went out since: another, or home */
    r->wc = wc;
    r->rr = rr;
    r->stats = stats;
    r->busy = 1;
    r->sent = r->started = r->done = 0;
    r->qbytes = MY_HDR_LEN + pkt->len;
    r->verb = (int)res->verb;
    r->t_us = now;
    r->left = 0;
    if (r->state == RS_NONE) {
        memset(&r->ct, 0, sizeof(r->ct)); /* a fresh set of attempts */
        rep_connect(s); /* may give up at once: then busy is 0 again */
    }
    return r->busy;
}

/* Queues a packet for the replica. */
static int rep_send(struct mrep *r, const uint8_t *p, size_t n)
{
    if (hold(&r->out, buf_len(&r->out) + (uint32_t)n) < 0)
        return -1;
    return buf_put(&r->out, p, n);
}

/* The capabilities the proxy's logins ask for (also the pool key's): what
 * shapes responses as the client negotiated it, with the proxy for a
 * terminated session, else with its server. */
static uint64_t login_want(const struct msess *s)
{
    return (s->term ? s->ms.caps : s->ms.client_caps) & LOGIN_COPY_CAPS;
}

/* Prepares the proxy's login to a server of cluster cc (borrowed, like
 * db) for this session: the cluster's auth credentials, the client's
 * response-shaping capabilities and character set. For a terminated
 * session those are what the client negotiated with the proxy. */
static void login_init(const struct msess *s, struct my_login *lg, const struct cfg_cluster *cc,
                       const char *db)
{
    my_login_init(lg, cc->auth_user, cc->auth_password, db, login_want(s), s->ms.hsr.charset);
}

/* One login packet from the replica (greeting or auth exchange), whole in
 * p[0..len). 0, or -1 after rep_fail. */
static int rep_login_packet(struct msess *s, const struct my_pkt *pkt, const uint8_t *p,
                            uint32_t len)
{
    struct mrep *r = &s->rep;
    uint8_t out[1024];
    size_t n = 0;
    int greeting = r->state == RS_GREETING;
    if (greeting)
        login_init(s, &r->login, r->wc->gc->cfg, r->db);
    int rc = my_login_feed(&r->login, pkt, p, len, out, sizeof(out), &n);
    if (rc < 0) {
        rep_fail(s, rc == MY_E_DENIED ? (greeting ? "the read replica refused the connection"
                                                  : "the read replica refused the login")
                    : greeting ? "unexpected greeting from the read replica"
                               : "the read replica asks for an unsupported authentication method");
        return -1;
    }
    if (greeting && ((r->login.caps ^ s->ms.caps) & SHAPE_CAPS)) {
        rep_fail(s, "the read replica cannot answer in the client's format");
        return -1;
    }
    if (n && rep_send(r, out, n) < 0) {
        rep_fail(s, "out of memory");
        return -1;
    }
    r->state = rc == MY_R_DONE ? RS_READY : RS_AUTH;
    return 0;
}

/* strand_db_errors_total for a statement answered by ERR r->err_code. */
static void record_error(struct msess *s, struct gen_stats *stats, const struct my_resp *r)
{
    char code[8];
    snprintf(code, sizeof(code), "%u", (unsigned)r->err_code);
    db_stmt_error(s->w, stats, r->err_code ? code : "unknown");
}

/* The held query's answer is complete and relayed. */
static void rep_finish(struct msess *s)
{
    struct mrep *r = &s->rep;
    const struct my_resp *rs = &r->resp;
    uint64_t rows = rs->nresultsets ? rs->rows : rs->affected_rows;
    db_stmt_record(s->w, r->stats, r->verb, rs->error ? DB_ERROR : DB_OK,
                   loop_now_us() - r->t_us, rows);
    if (rs->error)
        record_error(s, r->stats, rs);
    buf_consume(&s->cin, r->qbytes); /* the held query is answered */
    r->busy = r->sent = r->started = r->done = 0;
    if (s->w->draining)
        start_closing(s, NULL);
}

/* One step of the replica -> proxy direction. 1: progress, 0: wait, -1:
 * the session ended. */
static int rep_step(struct msess *s)
{
    struct mrep *r = &s->rep;
    struct buf *in = &r->uc->in;
    if (r->left) {
        if (!pass(in, &s->cout, &r->left, 0))
            return 0;
        if (!r->left && r->done)
            rep_finish(s);
        return 1;
    }
    if (buf_len(in) < MY_HDR_LEN)
        return 0;
    struct my_pkt pkt;
    my_pkt_header((const uint8_t *)buf_start(in), buf_len(in), &pkt);
    uint8_t *p = (uint8_t *)buf_start(in) + MY_HDR_LEN;
    uint32_t have = buf_len(in) - MY_HDR_LEN;
    if (r->state == RS_GREETING || r->state == RS_AUTH || !r->busy || !r->sent) {
        /* Login packets, or a packet out of turn (a shutdown notice...). */
        if (r->state != RS_GREETING && r->state != RS_AUTH) {
            rep_fail(s, "the read replica sent a packet out of turn");
            return s->dead ? -1 : 1;
        }
        if (pkt.len >= 65536) {
            rep_fail(s, "oversized login packet from the read replica");
            return 1;
        }
        if (have < pkt.len) {
            if (hold(in, MY_HDR_LEN + pkt.len) < 0) {
                rep_fail(s, "out of memory");
                return 1;
            }
            return 0;
        }
        int rc = rep_login_packet(s, &pkt, p, pkt.len);
        if (rc == 0)
            buf_consume(in, MY_HDR_LEN + pkt.len);
        return 1;
    }
    /* The held query's answer. */
    uint32_t avail = have < pkt.len ? have : pkt.len;
    int rc = my_resp_feed(&r->resp, &pkt, p, avail);
    if (rc == MY_INCOMPLETE) {
        if (hold(in, MY_HDR_LEN + r->resp.need) < 0) {
            rep_fail(s, "out of memory");
            return s->dead ? -1 : 1;
        }
        return 0;
    }
    if (rc < 0 || rc == MY_R_CLIENT) {
        rep_fail(s, "unexpected answer from the read replica");
        return s->dead ? -1 : 1;
    }
    if (!r->started && rc == MY_R_DONE && r->resp.error &&
        (r->resp.err_code == MY_ER_SERVER_SHUTDOWN || r->resp.err_code == 1927 /* killed */)) {
        rep_fail(s, "the read replica is shutting down");
        return 1;
    }
    r->started = 1;
    r->left = MY_HDR_LEN + pkt.len;
    r->done = rc == MY_R_DONE;
    return 1;
}

/* 1 when the replica has closed and what it sent can no longer move. */
static int rep_stuck(struct msess *s)
{
    struct mrep *r = &s->rep;
    uint32_t n = buf_len(&r->uc->in);
    if (r->left)
        return n == 0;
    return 1; /* rep_step ran to a stop: a packet cut short, or nothing */
}

/* The replica connection's I/O: login, sends the held query, relays its
 * answer. 1: progress, 0: none, -1: the session ended. */
static int rep_io(struct msess *s)
{
    struct mrep *r = &s->rep;
    int moved = 0;
    if (!r->uc || r->state < RS_GREETING)
        return 0;
    if (r->busy && !r->sent && r->state == RS_READY && buf_len(&r->out) == 0) {
        if (rep_send(r, (const uint8_t *)buf_start(&s->cin), r->qbytes) < 0) {
            rep_fail(s, "out of memory");
            return 1;
        }
        my_resp_init(&r->resp, MY_COM_QUERY, r->login.caps, 1);
        r->sent = 1;
    }
    if (buf_len(&r->out) > 0 && !r->eof) {
        ssize_t n = sio_write_buf(&r->uc->sio, &r->out);
        if (n > 0)
            moved = 1;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            r->eof = 1;
    }
    if (r->ready && !r->eof && buf_has_room(&r->uc->in)) {
        uint32_t room = r->uc->in.data ? buf_space(&r->uc->in) : buf_block_size();
        ssize_t n = sio_read_buf(&r->uc->sio, &r->uc->in);
        if (n == 0)
            r->eof = 1;
        else if (n > 0)
            moved = 1;
        else if (n == -1 && errno != EAGAIN && errno != EINTR)
            r->eof = 1;
        if (n < 0 || (n > 0 && (uint32_t)n < room))
            r->ready = 0;
    }
    for (;;) {
        if (s->dead || s->closing || !r->uc)
            break;
        int rc = rep_step(s);
        if (rc < 0 || s->dead)
            return -1;
        if (!rc)
            break;
        moved = 1;
    }
    if (r->uc && r->eof && !s->closing && rep_stuck(s)) {
        rep_fail(s, "the read replica closed the connection");
        return s->dead ? -1 : 1;
    }
    return moved;
}

/* ---- terminated authentication ---------------------------------------------
 *
 * A listener with `auth` greets the client itself (term_start): its own
 * HandshakeV10 with TERM_CAPS, a fresh scramble and mysql_native_password.
 * The client's HandshakeResponse41 is checked against my_users (a client
 * that asks for another plugin, like MySQL 8's caching_sha2_password, is
 * switched to mysql_native_password first); only then is the session
 * routed, with db.user and db.name known, so routes and session policies
 * can use them. The server login is the proxy's own (login_init: the
 * cluster's auth user, the client's database, character set and
 * response-shaping capabilities); its OK becomes the client's OK, with the
 * client's sequence ids. From there the session is relayed as usual.
 *
 * Pooling: such a session's server connection goes to my_pool when the
 * session ends between commands and outside a transaction (COM_QUIT is
 * not forwarded). A new session that named a database is first offered a
 * pooled connection logged in with the same capabilities and character
 * set; COM_INIT_DB then selects its database (COM_RESET_CONNECTION keeps
 * the previous client's). One without a database always gets a new
 * connection, since "no database" cannot be selected again. */

#define NATIVE "mysql_native_password"
#define TERM_VERSION "5.5.5-10.11.0-Strand"
#define TERM_CHARSET 45 /* utf8mb4_general_ci, for clients that take the server's */
/* What the proxy's greeting offers: no TLS, compression, LOCAL INFILE,
 * connection attributes or MariaDB extensions (CLIENT_MYSQL set), and only
 * response shapes MySQL 5.7+ and MariaDB 10.2+ servers all follow. */
#define TERM_CAPS                                                                           \
    (MY_CLIENT_LONG_PASSWORD | MY_CLIENT_FOUND_ROWS | MY_CLIENT_LONG_FLAG |                 \
     MY_CLIENT_CONNECT_WITH_DB | MY_CLIENT_IGNORE_SPACE | MY_CLIENT_PROTOCOL_41 |           \
     MY_CLIENT_TRANSACTIONS | MY_CLIENT_SECURE_CONNECTION | MY_CLIENT_MULTI_STATEMENTS |    \
     MY_CLIENT_MULTI_RESULTS | MY_CLIENT_PS_MULTI_RESULTS | MY_CLIENT_PLUGIN_AUTH |         \
     MY_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | MY_CLIENT_SESSION_TRACK |                   \
     MY_CLIENT_DEPRECATE_EOF)
#define MY_ER_HANDSHAKE 1043 /* 08S01 Bad handshake */

/* Thread ids of the proxy's greetings: from a range servers do not reach,
 * so a client's KILL with one finds no session. */
static atomic_uint term_ids;

static void ms_route(struct msess *s);
static void ms_client_io(struct loop *l, struct loop_io *io, unsigned events);
static void server_fault(struct msess *s, const struct my_pkt *pkt, const uint8_t *p,
                         uint32_t avail, const char *why);

/* Sends the proxy's greeting and waits for the client's answer. */
static void term_start(struct msess *s)
{
    struct worker *w = s->w;
    struct my_handshake hs;
    uint8_t pkt[160];
    memset(&hs, 0, sizeof(hs));
    hs.protocol_version = 10;
    hs.server_version = (my_str){TERM_VERSION, sizeof(TERM_VERSION) - 1};
    hs.connection_id = 0xf0000000u | (atomic_fetch_add(&term_ids, 1) & 0x0fffffffu);
    hs.scramble_len = 20;
    hs.caps = TERM_CAPS;
    hs.charset = TERM_CHARSET;
    hs.status = MY_SERVER_STATUS_AUTOCOMMIT;
    hs.auth_plugin = (my_str){NATIVE, sizeof(NATIVE) - 1};
    int n = my_scramble_random(s->scramble, sizeof(s->scramble));
    memcpy(hs.scramble, s->scramble, sizeof(s->scramble));
    if (n == 0)
        n = my_build_handshake(pkt, sizeof(pkt), &hs);
    if (n < 0 || buf_put(&s->cout, pkt, (size_t)n) < 0) {
        ms_end(s, "cannot greet the client");
        return;
    }
    s->term = TP_HELLO;
    s->ms.server_caps = TERM_CAPS;
    s->io.cb = ms_client_io;
    s->io.ud = s;
    if (loop_io_add(w->loop, &s->io, LOOP_READ | LOOP_WRITE) < 0) {
        ms_end(s, "cannot watch the connection");
        return;
    }
    s->io_added = 1;
    loop_timer_arm(w->loop, &s->timer, loop_now(w->loop) + s->gl->cfg->header_timeout_ms);
    ms_run(s);
}

/* The client's name and password are checked: the session policies, then
 * routing (and connecting, or a pooled connection). */
static void term_verified(struct msess *s, const uint8_t *resp, size_t len)
{
    char msg[400];
    if (!my_users_check(s->gl->my_users, s->user, s->scramble, resp, len)) {
        snprintf(msg, sizeof(msg), "Access denied for user '%s'@'%s' (using password: %s)",
                 s->user, s->peer_ip, len ? "YES" : "NO");
        send_err(s, s->cseq, MY_ER_ACCESS_DENIED, "28000", msg);
        start_closing(s, "authentication failed");
        return;
    }
    const struct cfg_authz *deny = session_denied(s);
    if (deny) {
        metrics_add(s->w->shard, s->gl->m_denied, 1);
        snprintf(msg, sizeof(msg), "Access denied by policy %s", deny->name);
        send_err(s, s->cseq, MY_ER_ACCESS_DENIED, "28000", msg);
        snprintf(s->errbuf, sizeof(s->errbuf), "denied by policy %s", deny->name);
        start_closing(s, s->errbuf);
        return;
    }
    s->term = TP_LOGIN;
    ms_route(s);
}

/* The client's HandshakeResponse41 in p[0..len). Returns 1 with *resp set
 * to its mysql_native_password answer, or 0 when it was answered already
 * (an auth switch, or a refusal). */
static int term_hello(struct msess *s, const uint8_t *p, uint32_t len, const uint8_t **resp,
                      size_t *rlen)
{
    struct my_hs_response *h = &s->ms.hsr;
    int e = my_parse_hs_response(p, len, TERM_CAPS, h);
    if (e == 0 && h->ssl_request) {
        send_err(s, s->cseq, MY_ER_ACCESS_DENIED, "08S01",
                 "TLS is not supported by this proxy listener yet");
        start_closing(s, "client asked for TLS");
        return 0;
    }
    if (e < 0 || !(h->caps & MY_CLIENT_SECURE_CONNECTION)) {
        send_err(s, s->cseq, MY_ER_HANDSHAKE, "08S01", "Bad handshake");
        start_closing(s, "malformed handshake response");
        return 0;
    }
    copy_str(s->user, sizeof(s->user), h->user);
    s->has_user = 1;
    copy_str(s->dbname, sizeof(s->dbname), h->database);
    s->has_db = s->dbname[0] != 0;
    s->ms.client_caps = h->caps;
    s->ms.caps = TERM_CAPS & h->caps;
    int native = !(h->caps & MY_CLIENT_PLUGIN_AUTH) || h->auth_plugin.len == 0 ||
                 (h->auth_plugin.len == sizeof(NATIVE) - 1 &&
                  memcmp(h->auth_plugin.p, NATIVE, sizeof(NATIVE) - 1) == 0);
    *resp = (const uint8_t *)h->auth_response.p;
    *rlen = h->auth_response.len;
    /* The strings point into cin, which is about to move on. */
    h->user = h->auth_response = h->database = h->auth_plugin = h->attrs = (my_str){NULL, 0};
    if (native)
        return 1;
    uint8_t sw[64];
    int n = my_build_auth_switch(sw, sizeof(sw), s->cseq, NATIVE, s->scramble, 20);
    if (n < 0 || buf_put(&s->cout, sw, (size_t)n) < 0) {
        start_closing(s, "cannot switch the client's authentication method");
        return 0;
    }
    s->term = TP_SWITCH;
    return 0;
}

/* A client packet before the session is routed: the handshake response or
 * the answer to the auth switch, never forwarded. Like c_packet. */
static int term_client_packet(struct msess *s, const struct my_pkt *pkt)
{
    uint8_t *p = (uint8_t *)buf_start(&s->cin) + MY_HDR_LEN;
    uint32_t len = pkt->len;
    if (len >= 65536) {
        ms_end(s, "oversized handshake response");
        return -1;
    }
    int w = whole(s, &s->cin, len);
    if (w <= 0)
        return w;
    if (buf_room(&s->cout) < ERR_ROOM)
        return 0;
    s->c_left = MY_HDR_LEN + len;
    s->c_drop = 1;
    s->cseq = (uint8_t)(pkt->seq + 1);
    if (pkt->seq != (s->term == TP_HELLO ? 1 : 3)) {
        send_err(s, s->cseq, MY_ER_HANDSHAKE, "08S01", "Bad handshake");
        start_closing(s, "client packet out of sequence");
        return 1;
    }
    const uint8_t *resp = p;
    size_t rlen = len;
    if (s->term == TP_HELLO && !term_hello(s, p, len, &resp, &rlen))
        return 1;
    term_verified(s, resp, rlen);
    return s->dead ? -1 : 1;
}

/* A pooled connection for the session, if one fits: it selects the
 * client's database (TP_INITDB) before the client is told OK. 1 when
 * taken. */
static int term_pooled(struct msess *s)
{
    struct my_pool_key key = {login_want(s), s->ms.hsr.charset};
    uint64_t caps;
    uint16_t status;
    if (!s->has_db)
        return 0;
    struct uconn *uc = my_pool_take(s->wc, &key, &caps, &status);
    if (!uc)
        return 0;
    uc->ops = &ms_uc_ops;
    uc->owner = s;
    s->uc = uc;
    s->u_ready = 1;
    memset(&s->login, 0, sizeof(s->login));
    s->login.caps = caps;
    s->login.status = status;
    size_t dl = strlen(s->dbname);
    uint8_t q[MY_HDR_LEN + 1 + NAME_MAX_];
    my_pkt_put_header(q, (uint32_t)(1 + dl), 0);
    q[MY_HDR_LEN] = MY_COM_INIT_DB;
    memcpy(q + MY_HDR_LEN + 1, s->dbname, dl);
    if (buf_put(&s->uout, q, MY_HDR_LEN + 1 + dl) < 0) {
        start_closing(s, "out of memory");
        return 1;
    }
    s->term = TP_INITDB;
    return 1;
}

/* The server logged the proxy in (or selected the database on a pooled
 * connection): the client gets its OK, and the session its relay. */
static void term_ready(struct msess *s)
{
    uint8_t ok[64];
    if ((s->login.caps ^ s->ms.caps) & SHAPE_CAPS) {
        send_err(s, s->cseq, MY_ER_HANDSHAKE, "08S01",
                 "The database server cannot answer in the format this client negotiated "
                 "with the proxy");
        start_closing(s, "the server's capabilities differ from the client's");
        return;
    }
    int n = my_build_ok(ok, sizeof(ok), s->cseq, s->ms.caps, 0, 0, s->login.status, 0, NULL, 0);
    if (n < 0 || buf_put(&s->cout, ok, (size_t)n) < 0) {
        start_closing(s, "out of memory");
        return;
    }
    s->status = s->login.status;
    s->term = TP_READY;
    s->ms.phase = MY_PH_COMMAND;
    s->ms.authed = 1;
    if (s->w->draining)
        start_closing(s, NULL);
}

/* The server refused the proxy's login (or the database): its ERR
 * (p[0..len)) goes to the client with the client's sequence id. */
static void term_refused(struct msess *s, const uint8_t *p, uint32_t len)
{
    struct my_err e;
    char msg[520];
    if (my_parse_err(p, len, len, MY_CLIENT_PROTOCOL_41, &e) == 0) {
        copy_str(msg, sizeof(msg), e.message);
        send_err(s, s->cseq, e.code, e.sqlstate[0] ? e.sqlstate : "HY000", msg);
    } else {
        send_err(s, s->cseq, MY_ER_ACCESS_DENIED, "28000",
                 "The database server refused the proxy's login");
    }
    start_closing(s, "the server refused the proxy's login");
}

/* A server packet while the proxy logs in or selects the database on a
 * pooled connection; like s_packet, never forwarded. */
static int term_server_packet(struct msess *s, const struct my_pkt *pkt)
{
    struct buf *in = &s->uc->in;
    uint8_t *p = (uint8_t *)buf_start(in) + MY_HDR_LEN;
    uint32_t have = buf_len(in) - MY_HDR_LEN, len = pkt->len;
    uint8_t out[1024];
    size_t n = 0;
    int rc;
    if (buf_room(&s->cout) < ERR_ROOM)
        return 0;
    if (len >= 65536) {
        server_fault(s, pkt, p, have < len ? have : len, "oversized login packet from the server");
        return 1;
    }
    if ((rc = whole(s, in, len)) <= 0)
        return rc;
    s->s_left = MY_HDR_LEN + len;
    s->s_drop = 1;
    if (s->term == TP_INITDB) {
        struct my_ok ok;
        rc = len && p[0] == 0xff ? MY_E_DENIED
             : len && p[0] == 0x00 && my_parse_ok(p, len, len, s->login.caps, &ok) == 0
                 ? MY_R_DONE : MY_E_MALFORMED;
        if (rc == MY_R_DONE)
            s->login.status = ok.status;
    } else {
        rc = my_login_feed(&s->login, pkt, p, len, out, sizeof(out), &n);
    }
    if (rc == MY_E_DENIED) {
        term_refused(s, p, len);
    } else if (rc < 0) {
        send_err(s, s->cseq, MY_ER_HANDSHAKE, "08S01",
                 rc == MY_E_UNSUPPORTED ? "The database server asks the proxy for an "
                                          "authentication method it does not support"
                                        : "Unexpected packet from the database server");
        start_closing(s, "the proxy's login failed");
    } else if (n && buf_put(&s->uout, out, n) < 0) {
        start_closing(s, "out of memory");
    } else if (rc == MY_R_DONE) {
        term_ready(s);
    }
    return 1;
}

/* ---- client -> server --------------------------------------------------- */

/* Answers the command in pkt with an ERR instead of the server: its packet
 * (and, for a > 16 MiB command, the packets after it) are dropped. */
static void drop_command(struct msess *s, const struct my_pkt *pkt, uint16_t code,
                         const char *state, const char *msg)
{
    s->ms.phase = MY_PH_COMMAND;
    s->stmt_active = 0;
    s->c_left = MY_HDR_LEN + pkt->len;
    s->c_drop = 1;
    if (s->ms.in_msg) {
        s->ms.in_msg = 0;
        s->c_dropping = 1;
        s->pend_err_len = my_build_err(s->pend_err, sizeof(s->pend_err), 0,
                                       s->ms.caps | MY_CLIENT_PROTOCOL_41, code, state, msg,
                                       strlen(msg));
        return;
    }
    send_err(s, (uint8_t)(pkt->seq + 1), code, state, msg);
}

/* Refuses the command in pkt: by policy deny (or for the reason why), or,
 * with limit set, by that RateLimit (ERR 1226, as MySQL answers a user over
 * a max_queries_per_hour resource limit; the refusal is counted already). */
static void refuse_command(struct msess *s, const struct my_pkt *pkt, int verb,
                           const struct cfg_authz *deny, const char *why, const char *limit)
{
    if (!limit)
        metrics_add(s->w->shard, s->gl->m_denied, 1);
    db_stmt_record(s->w, s->stats, verb, limit ? DB_LIMITED : DB_DENIED, 0, 0);
    char msg[400];
    uint16_t code = limit ? MY_ER_USER_LIMIT_REACHED : MY_ER_TABLEACCESS_DENIED;
    if (limit)
        snprintf(msg, sizeof(msg), "User '%s' has exceeded the '%s' resource (RateLimit %s)",
                 s->user, sqlc_verb_name((enum sqlc_verb)verb), limit);
    else if (deny)
        snprintf(msg, sizeof(msg), "%s command denied to user '%s' by policy %s%s",
                 sqlc_verb_name((enum sqlc_verb)verb), s->user, deny->name,
                 why && strncmp(why, "no ALLOW", 8) == 0 ? " (no ALLOW policy matched)" : "");
    else
        snprintf(msg, sizeof(msg), "%s command denied to user '%s': %s",
                 sqlc_verb_name((enum sqlc_verb)verb), s->user, why);
    drop_command(s, pkt, code, "42000", msg);
}

/* A command was parsed (s->ms.last): classify, check, remember what the
 * response will need. Returns 1 to forward it, 0 when it was refused. */
static int on_command(struct msess *s, const struct my_pkt *pkt, int rc)
{
    const struct my_command *c = &s->ms.last;
    struct sqlc_result cls;
    const struct sqlc_result *clsp = NULL;
    const char *command = NULL;
    int verb = -1;
    unsigned modes = (s->status & MY_SERVER_STATUS_NO_BACKSLASH_ESCAPES)
                         ? SQLC_MODE_NO_BACKSLASH_ESCAPES : 0;
    struct db_attrs a;
    attrs_of(s, &a);
    s->cur_cmd = c->cmd;
    switch (c->cmd) {
    case MY_COM_QUERY:
    case MY_COM_STMT_PREPARE:
        command = c->cmd == MY_COM_QUERY ? "query" : "prepare";
        sqlc_classify(SQLC_MYSQL, modes, c->sql.p ? c->sql.p : "", c->sql.len, &cls);
        clsp = &cls;
        verb = (int)cls.verb;
        break;
    case MY_COM_STMT_EXECUTE: {
        command = "execute";
        struct stmt_slot *slot = stmt_find(s, c->stmt_id);
        clsp = slot ? &slot->cls : NULL;
        verb = slot ? (int)slot->cls.verb : SQLC_V_OTHER;
        break;
    }
    case MY_COM_INIT_DB:
        /* Checked with the database it switches to, so that a policy on
         * db.name cannot be sidestepped by changing databases. */
        command = "init_db";
        copy_str(s->pend_db, sizeof(s->pend_db), c->schema);
        s->pend_has_db = s->pend_db[0] != 0;
        a.dbname = s->pend_has_db ? s->pend_db : NULL;
        break;
    case MY_COM_CHANGE_USER:
        if (s->term) {
            /* The client's answer is to the proxy's scramble, and the
             * server knows neither the client's user nor that scramble. */
            drop_command(s, pkt, MY_ER_UNKNOWN_COM, "08S01",
                         "COM_CHANGE_USER is not supported on a listener that authenticates "
                         "clients itself");
            return 0;
        }
        /* Checked like a new session when the server accepts it. */
        copy_str(s->pend_user, sizeof(s->pend_user), c->user);
        copy_str(s->pend_db, sizeof(s->pend_db), c->schema);
        s->pend_has_db = s->pend_db[0] != 0;
        break;
    case MY_COM_STMT_CLOSE:
        stmt_forget(s, c->stmt_id);
        break;
    case MY_COM_SET_OPTION:
        /* Multi-statements on or off for the connection: a pooled one
         * must keep what the next client negotiated. */
        s->no_pool = 1;
        break;
    default:
        break;
    }
    if (command) {
        a.command = command;
        a.cls = clsp;
        struct attr_src src = {db_attr_get, &a};
        const char *why = NULL;
        const struct cfg_authz *deny = authz_check(s->gl->authz, &src, &why);
        /* A statement longer than one packet (16 MiB) is classified from
         * its first packet only; when that cuts a literal or a comment the
         * verb is unknown, and a policy could be sidestepped by padding.
         * With policies on the listener such a statement is refused. */
        if (!deny && s->gl->authz && clsp && s->ms.in_msg && (clsp->flags & SQLC_UNTERMINATED))
            why = "a statement over 16 MiB that cannot be classified, on a listener with "
                  "policies";
        else if (!deny)
            why = NULL;
        if (deny || why) {
            refuse_command(s, pkt, verb < 0 ? SQLC_V_OTHER : verb, deny, why, NULL);
            return 0;
        }
        const char *limit = NULL;
        if (db_stmt_limited(s->w, s->gl, &src, &limit)) {
            refuse_command(s, pkt, verb < 0 ? SQLC_V_OTHER : verb, NULL, NULL, limit);
            return 0;
        }
        if (clsp)
            db_count_tables(s->w, s->gl, clsp);
    }
    if (c->cmd == MY_COM_QUERY && rep_take(s, pkt, &cls)) {
        s->ms.phase = MY_PH_COMMAND; /* the replica answers; home stays idle */
        return 2;
    }
    if (c->cmd == MY_COM_STMT_PREPARE || c->cmd == MY_COM_CHANGE_USER)
        s->rep.pinned = 1; /* statements bound to the home connection, a new user */
    else if (c->cmd == MY_COM_STMT_EXECUTE && !(clsp && (clsp->flags & SQLC_READ_ONLY)))
        s->rep.sticky_until_us = loop_now_us() + REP_STICKY_US;
    if (verb >= 0) {
        s->stmt_active = 1;
        s->stmt_verb = verb;
        s->t_stmt_us = loop_now_us();
    }
    if (c->cmd == MY_COM_STMT_PREPARE) {
        if (!s->stmts && !(s->stmts = calloc(1, sizeof(*s->stmts)))) {
            start_closing(s, "out of memory");
            return 0;
        }
        s->stmts->pending = cls;
    }
    if (rc == MY_R_DONE && c->cmd == MY_COM_QUIT) {
        s->quit = 1;
        if (s->term) {
            /* Not forwarded: the server connection outlives the client
             * (pooling), the session ends when its bytes are out. */
            s->ms.phase = MY_PH_COMMAND;
            s->c_left = MY_HDR_LEN + pkt->len;
            s->c_drop = 1;
            return 0;
        }
    }
    return 1;
}

/* Looks at the client packet at the head of cin. Returns 1 when it was
 * taken (c_left set), 0 to wait (bytes, output room, or the server's turn),
 * -1 when the session ended. */
static int c_packet(struct msess *s, const struct my_pkt *pkt)
{
    uint8_t *p = (uint8_t *)buf_start(&s->cin) + MY_HDR_LEN;
    uint32_t have = buf_len(&s->cin) - MY_HDR_LEN;
    uint32_t len = pkt->len, need = 0;
    if (s->term == TP_HELLO || s->term == TP_SWITCH)
        return term_client_packet(s, pkt);
    if (s->term == TP_LOGIN || s->term == TP_INITDB)
        return 0; /* the client waits for its OK */
    if (s->c_dropping) {
        s->c_left = MY_HDR_LEN + len;
        s->c_drop = 1;
        if (len < MY_MAX_PAYLOAD) {
            s->c_dropping = 0;
            if (s->pend_err_len > 0) {
                s->pend_err[3] = (uint8_t)(pkt->seq + 1);
                buf_put(&s->cout, s->pend_err, (size_t)s->pend_err_len);
            }
        }
        return 1;
    }
    enum my_phase ph = s->ms.phase;
    switch (ph) {
    case MY_PH_HS_RESPONSE:
        if (len >= 65536) {
            ms_end(s, "oversized handshake response");
            return -1;
        }
        need = len;
        break;
    case MY_PH_COMMAND:
        if (buf_room(&s->cout) < ERR_ROOM)
            return 0; /* keep room for a refusal */
        if (len && have < 1)
            return 0;
        if (len) {
            uint8_t cmd = p[0];
            need = (cmd == MY_COM_QUERY || cmd == MY_COM_STMT_PREPARE) ? len
                   : len < MY_RESP_PEEK ? len : MY_RESP_PEEK;
        }
        break;
    case MY_PH_AUTH:
    case MY_PH_RESPONSE:
        if (!s->ms.in_msg && !s->client_turn)
            return 0; /* the server's turn: the client's next bytes wait */
        break;
    default:
        return 0; /* greeting not relayed yet, or closed */
    }
    if (have < need) {
        if (hold(&s->cin, MY_HDR_LEN + need) < 0) {
            ms_end(s, "out of memory");
            return -1;
        }
        return 0;
    }
    uint32_t avail = have < len ? have : len;
    if (ph == MY_PH_HS_RESPONSE) {
        /* A client asking for TLS although the greeting did not offer it. */
        if (len == 32 && (p[1] & CAPS_B1_CLEAR)) {
            send_err(s, (uint8_t)(pkt->seq + 1), MY_ER_ACCESS_DENIED, "08S01",
                     "TLS is not supported by this proxy listener yet");
            s->c_left = MY_HDR_LEN + len;
            s->c_drop = 1;
            start_closing(s, "client asked for TLS");
            return 1;
        }
        if (len >= 4) {
            p[0] &= (uint8_t)~CAPS_B0_CLEAR;
            p[1] &= (uint8_t)~CAPS_B1_CLEAR;
            p[3] &= (uint8_t)~CAPS_B3_CLEAR;
        }
    }
    uint32_t more;
    int rc = my_session_client(&s->ms, pkt, p, avail, &more);
    if (rc == MY_INCOMPLETE) {
        if (hold(&s->cin, MY_HDR_LEN + more) < 0) {
            ms_end(s, "out of memory");
            return -1;
        }
        return 0;
    }
    if (rc < 0) {
        log_debug("mysql: malformed client packet from %s (%d)", s->peer_ip, rc);
        ms_end(s, "malformed client packet");
        return -1;
    }
    if (ph == MY_PH_HS_RESPONSE) {
        copy_str(s->user, sizeof(s->user), s->ms.hsr.user);
        s->has_user = 1;
        copy_str(s->dbname, sizeof(s->dbname), s->ms.hsr.database);
        s->has_db = s->dbname[0] != 0;
    } else if (ph == MY_PH_COMMAND) {
        int oc = on_command(s, pkt, rc);
        if (!oc || s->dead)
            return s->dead ? -1 : 1;
        if (oc == 2)
            return 1; /* held at the head of cin for the read replica */
    } else if (rc == MY_R_MORE) {
        s->client_turn = 0;
    }
    s->c_left = MY_HDR_LEN + len;
    s->c_drop = 0;
    return 1;
}

static int c_process(struct msess *s)
{
    int moved = 0;
    for (;;) {
        if (s->c_left) {
            if (!pass(&s->cin, &s->uout, &s->c_left, s->c_drop))
                break;
            moved = 1;
            continue;
        }
        if (s->quit || s->closing || s->rep.busy)
            break;
        struct my_pkt pkt;
        if (buf_len(&s->cin) < MY_HDR_LEN)
            break;
        my_pkt_header((const uint8_t *)buf_start(&s->cin), buf_len(&s->cin), &pkt);
        int rc = c_packet(s, &pkt);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        moved = 1;
    }
    return moved;
}

/* ---- server -> client --------------------------------------------------- */

/* Clears the capabilities the proxy cannot follow in a HandshakeV10
 * payload, in place. 0, or -1 when it is too short to hold them. */
static int patch_greeting(uint8_t *p, uint32_t len)
{
    const uint8_t *nul = len > 1 ? memchr(p + 1, 0, len - 1) : NULL;
    if (!nul)
        return -1;
    size_t off = (size_t)(nul - p) + 1 + 4 + 8 + 1; /* version, thread id, scramble 1, filler */
    if (off + 2 > len)
        return -1;
    p[off] &= (uint8_t)~CAPS_B0_CLEAR;
    p[off + 1] &= (uint8_t)~CAPS_B1_CLEAR;
    if (off + 7 <= len) /* charset, status, then the upper capability bytes */
        p[off + 6] &= (uint8_t)~CAPS_B3_CLEAR;
    return 0;
}

/* A response finished: metrics and the session state it changes. */
static void on_response_done(struct msess *s)
{
    const struct my_resp *r = &s->ms.resp;
    if (!r->error && (r->kind == MY_RK_OK || r->kind == MY_RK_EOF))
        s->status = r->status;
    if (s->stmt_active) {
        s->stmt_active = 0;
        uint64_t rows = r->nresultsets ? r->rows : r->affected_rows;
        db_stmt_record(s->w, s->stats, s->stmt_verb, r->error ? DB_ERROR : DB_OK,
                       loop_now_us() - s->t_stmt_us, rows);
        if (r->error)
            record_error(s, s->stats, r);
    }
    if (r->error)
        return;
    switch (s->cur_cmd) {
    case MY_COM_STMT_PREPARE:
        if (s->stmts)
            stmt_add(s, r->stmt_id);
        break;
    case MY_COM_INIT_DB:
        memcpy(s->dbname, s->pend_db, sizeof(s->dbname));
        s->has_db = s->pend_has_db;
        break;
    case MY_COM_CHANGE_USER:
        memcpy(s->user, s->pend_user, sizeof(s->user));
        memcpy(s->dbname, s->pend_db, sizeof(s->dbname));
        s->has_db = s->pend_has_db;
        /* a new session state */
        /* fall through */
    case MY_COM_RESET_CONNECTION:
        stmt_clear(s);
        break;
    default:
        break;
    }
}

/* Authentication (or COM_CHANGE_USER) succeeded: the session policy.
 * Returns 1 when refused (the OK is dropped, ERR 1045 sent in its place). */
static int auth_done(struct msess *s, const struct my_pkt *pkt)
{
    const struct cfg_authz *deny = session_denied(s);
    if (!deny)
        return 0;
    metrics_add(s->w->shard, s->gl->m_denied, 1);
    char msg[300];
    snprintf(msg, sizeof(msg), "Access denied by policy %s", deny->name);
    send_err(s, pkt->seq, MY_ER_ACCESS_DENIED, "28000", msg);
    snprintf(s->errbuf, sizeof(s->errbuf), "denied by policy %s", deny->name);
    start_closing(s, s->errbuf);
    return 1;
}

/* A server packet the session cannot place: pass it on if it is a whole
 * ERR (the server's last word before closing), then close. */
static void server_fault(struct msess *s, const struct my_pkt *pkt, const uint8_t *p,
                         uint32_t avail, const char *why)
{
    if (avail == pkt->len && pkt->len && p[0] == 0xff &&
        buf_room(&s->cout) >= MY_HDR_LEN + pkt->len)
        buf_put(&s->cout, p - MY_HDR_LEN, MY_HDR_LEN + pkt->len);
    else if (!avail || p[0] != 0xff)
        send_err(s, pkt->seq, MY_CR_MALFORMED_PACKET, "HY000", "Malformed packet (from the server, via the proxy)");
    buf_free(&s->uc->in);
    s->u_eof = 1;
    start_closing(s, why);
}

/* Looks at the server packet at the head of uc->in; like c_packet. */
static int s_packet(struct msess *s, const struct my_pkt *pkt)
{
    struct buf *in = &s->uc->in;
    uint8_t *p = (uint8_t *)buf_start(in) + MY_HDR_LEN;
    uint32_t have = buf_len(in) - MY_HDR_LEN;
    uint32_t len = pkt->len;
    uint32_t avail = have < len ? have : len;
    enum my_phase ph = s->ms.phase;
    if (buf_room(&s->cout) < ERR_ROOM)
        return 0; /* keep room for a refusal */
    if (ph == MY_PH_GREETING) {
        if (len >= 65536) {
            server_fault(s, pkt, p, avail, "oversized server greeting");
            return 1;
        }
        int w = whole(s, in, len);
        if (w <= 0)
            return w;
        if (len && p[0] == 10 && patch_greeting(p, len) < 0) {
            server_fault(s, pkt, p, avail, "malformed server greeting");
            return 1;
        }
    } else if (ph == MY_PH_AUTH || ph == MY_PH_RESPONSE) {
        if (s->client_turn || s->ms.in_msg) {
            server_fault(s, pkt, p, avail, "server packet out of turn");
            return 1;
        }
    } else {
        server_fault(s, pkt, p, avail, "server packet out of turn");
        return 1;
    }
    int rc = my_session_server(&s->ms, pkt, p, avail);
    if (rc == MY_INCOMPLETE) {
        if (hold(in, MY_HDR_LEN + s->ms.resp.need) < 0) {
            ms_end(s, "out of memory");
            return -1;
        }
        return 0;
    }
    if (rc < 0) {
        log_debug("mysql: unexpected server packet for %s (%d)", s->peer_ip, rc);
        server_fault(s, pkt, p, avail, "malformed server packet");
        return 1;
    }
    s->s_left = MY_HDR_LEN + len;
    s->s_drop = 0;
    if (rc == MY_R_CLIENT)
        s->client_turn = 1;
    if (ph == MY_PH_GREETING) {
        if (s->ms.phase == MY_PH_CLOSED)
            start_closing(s, "server refused the connection");
    } else if (ph == MY_PH_AUTH && rc == MY_R_DONE) {
        if (!s->ms.authed) {
            start_closing(s, "authentication failed");
        } else {
            s->status = s->ms.resp.status;
            if (auth_done(s, pkt))
                s->s_drop = 1;
            else
                loop_timer_arm(s->w->loop, &s->timer,
                               loop_now(s->w->loop) + s->gl->cfg->idle_timeout_ms);
        }
    } else if (ph == MY_PH_RESPONSE && rc == MY_R_DONE) {
        on_response_done(s);
        if (s->cur_cmd == MY_COM_CHANGE_USER && !s->ms.resp.error && auth_done(s, pkt))
            s->s_drop = 1;
    }
    if (s->w->draining && s->ms.phase == MY_PH_COMMAND)
        start_closing(s, NULL); /* the command is answered: close while draining */
    return 1;
}

static int s_process(struct msess *s)
{
    int moved = 0;
    struct buf *in = &s->uc->in;
    for (;;) {
        if (s->s_left) {
            if (!pass(in, &s->cout, &s->s_left, s->s_drop))
                break;
            moved = 1;
            continue;
        }
        if (s->closing)
            break;
        struct my_pkt pkt;
        if (buf_len(in) < MY_HDR_LEN)
            break;
        my_pkt_header((const uint8_t *)buf_start(in), buf_len(in), &pkt);
        int rc = s->term == TP_LOGIN || s->term == TP_INITDB ? term_server_packet(s, &pkt)
                                                             : s_packet(s, &pkt);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        moved = 1;
    }
    return moved;
}

/* ---- the event loop side ---------------------------------------------- */

/* The server connection's stream once connected, else NULL (a terminated
 * session talks to its client alone until it is routed and connected). */
static struct sio *up_sio(struct msess *s)
{
    return s->uc && !s->connecting ? &s->uc->sio : NULL;
}

/* Moves bytes until nothing moves, then sets the interest of both sockets. */
static void ms_run(struct msess *s)
{
    if (s->dead)
        return;
    struct worker *w = s->w;
    struct sio *us;
    int any = 0;
    for (;;) {
        int moved = 0;
        ssize_t n;
        if (s->c_ready && !s->c_eof && !s->closing && !s->quit && buf_has_room(&s->cin)) {
            uint32_t room = s->cin.data ? buf_space(&s->cin) : buf_block_size();
            n = sio_read_buf(&s->cs, &s->cin);
            if (n > 0) {
                moved = 1;
                s->bytes_in += (uint64_t)n;
                metrics_add(w->shard, s->gl->m_bytes_in, (uint64_t)n);
            } else if (n == 0 || (n == -1 && errno != EAGAIN)) {
                s->c_eof = 1;
            }
            if (n < 0 || (n > 0 && (uint32_t)n < room))
                s->c_ready = 0; /* drained */
        }
        int r = c_process(s);
        if (r < 0 || s->dead)
            return;
        moved |= r;
        us = up_sio(s);
        if (us && buf_len(&s->uout) > 0) {
            n = sio_write_buf(us, &s->uout);
            if (n > 0)
                moved = 1;
            else if (n < 0 && errno != EAGAIN) {
                buf_free(&s->uout);
                s->u_eof = 1;
            }
        }
        if (us && s->u_ready && !s->u_eof && buf_has_room(&s->uc->in)) {
            uint32_t room = s->uc->in.data ? buf_space(&s->uc->in) : buf_block_size();
            n = sio_read_buf(us, &s->uc->in);
            if (n > 0)
                moved = 1;
            else if (n == 0 || (n == -1 && errno != EAGAIN))
                s->u_eof = 1;
            if (n < 0 || (n > 0 && (uint32_t)n < room))
                s->u_ready = 0;
        }
        if (us) {
            r = s_process(s);
            if (r < 0)
                return;
            moved |= r;
        }
        if (s->rep.uc && !s->closing) {
            r = rep_io(s);
            if (r < 0 || s->dead)
                return;
            moved |= r;
        }
        if (buf_len(&s->cout) > 0) {
            n = sio_write_buf(&s->cs, &s->cout);
            if (n > 0) {
                moved = 1;
                s->bytes_out += (uint64_t)n;
                metrics_add(w->shard, s->gl->m_bytes_out, (uint64_t)n);
            } else if (n < 0 && errno != EAGAIN) {
                ms_end(s, "client write error");
                return;
            }
        }
        any |= moved;
        if (moved)
            continue;
        if (s->c_eof) {
            ms_end(s, NULL); /* the client went away (or quit) */
            return;
        }
        if (s->quit && buf_len(&s->uout) == 0 && !s->c_left) {
            ms_end(s, NULL);
            return;
        }
        if (s->u_eof && !s->closing) {
            if (s->term == TP_LOGIN || s->term == TP_INITDB)
                send_err(s, s->cseq, MY_CR_SERVER_LOST, "HY000",
                         "Lost connection to the database server during the proxy's login");
            start_closing(s, s->ms.phase == MY_PH_COMMAND || s->ms.phase == MY_PH_CLOSED
                                 ? NULL : "upstream closed the connection");
            continue; /* the ERR may go out */
        }
        if (s->closing && buf_len(&s->cout) == 0 &&
            (!us || !s->s_left || (s->u_eof && buf_len(&s->uc->in) == 0))) {
            ms_end(s, NULL);
            return;
        }
        /* Bytes TLS already decrypted are never reported by epoll. */
        if (us && !s->u_eof && sio_pending(us) && buf_has_room(&s->uc->in))
            continue;
        break;
    }
    unsigned cm = 0, um = 0;
    if (!s->c_eof && !s->closing && !s->quit && buf_has_room(&s->cin))
        cm |= LOOP_READ;
    if (buf_len(&s->cout) > 0)
        cm |= LOOP_WRITE;
    loop_io_set(w->loop, &s->io, cm | s->cs.want);
    if (us) {
        if (!s->u_eof && buf_has_room(&s->uc->in))
            um |= LOOP_READ;
        if (buf_len(&s->uout) > 0)
            um |= LOOP_WRITE;
        uconn_want(s->uc, um | us->want);
    }
    if (s->rep.uc && s->rep.state >= RS_GREETING) {
        um = 0;
        if (buf_len(&s->rep.out) > 0 && !s->rep.eof)
            um |= LOOP_WRITE;
        if (!s->rep.eof && buf_has_room(&s->rep.uc->in))
            um |= LOOP_READ;
        uconn_want(s->rep.uc, um | s->rep.uc->sio.want);
    }
    if (any || s->closing) {
        uint64_t ms = s->ms.phase == MY_PH_COMMAND || s->ms.phase == MY_PH_RESPONSE
                          ? s->gl->cfg->idle_timeout_ms : s->gl->cfg->header_timeout_ms;
        if (s->closing)
            ms = s->gl->cfg->header_timeout_ms;
        loop_timer_arm(w->loop, &s->timer, loop_now(w->loop) + ms);
    }
}

static void ms_client_io(struct loop *l, struct loop_io *io, unsigned events)
{
    struct msess *s = io->ud;
    (void)l;
    if (events & LOOP_READ)
        s->c_ready = 1;
    ms_run(s);
}

static void ms_uc_io(void *owner, struct uconn *uc, unsigned events)
{
    struct msess *s = owner;
    (void)uc;
    if (events & LOOP_READ)
        s->u_ready = 1;
    ms_run(s);
}

static void ms_timeout(struct loop *l, struct loop_timer *t)
{
    (void)l;
    struct msess *s = t->ud;
    ms_end(s, s->ms.phase == MY_PH_COMMAND ? "idle timeout" : "timed out");
}

/* ---- connecting ------------------------------------------------------------ */

static void ms_connect(struct msess *s);

static void ms_connected(void *owner, struct uconn *uc, int err)
{
    struct msess *s = owner;
    struct worker *w = s->w;
    s->connecting = 0;
    uconn_try_done(s->wc, &s->ct, err);
    if (err) {
        s->uc = NULL;
        ms_connect(s);
        return;
    }
    s->uc = uc;
    s->u_ready = 1; /* the greeting may already be there */
    if (s->term) {
        /* The client is watched already and waits for the login. */
        login_init(s, &s->login, s->wc->gc->cfg, s->has_db ? s->dbname : NULL);
        ms_run(s);
        return;
    }
    s->io.fd = s->cfd;
    s->io.cb = ms_client_io;
    s->io.ud = s;
    if (loop_io_add(w->loop, &s->io, LOOP_READ) < 0) {
        ms_end(s, "cannot watch the connection");
        return;
    }
    s->io_added = 1;
    loop_timer_arm(w->loop, &s->timer, loop_now(w->loop) + s->gl->cfg->header_timeout_ms);
    ms_run(s);
}

static const struct uconn_ops ms_uc_ops = {ms_connected, ms_uc_io};

/* Tries the next endpoint; refuses the client when none is left. */
static void ms_connect(struct msess *s)
{
    struct uconn *uc;
    if (s->term && term_pooled(s))
        return;
    int rc = uconn_try_next(s->wc, route_rule_cfg(s->rr), &s->ct, &ms_uc_ops, s, &uc);
    if (rc != UCONN_TRY_STARTED) {
        snprintf(s->errbuf, sizeof(s->errbuf), "Can't connect to the database through the proxy: %s",
                 uconn_try_reason(rc));
        refuse_now(s, 2003, "HY000", s->errbuf);
        return;
    }
    /* ms_connected follows; until then ms_end must close it. */
    s->uc = uc;
    s->connecting = 1;
}

/* Routes on the connection's attributes (no db.user/db.name yet). */
static void ms_route(struct msess *s)
{
    struct worker *w = s->w;
    struct gen_listener *gl = s->gl;
    struct db_attrs a;
    attrs_of(s, &a);
    struct attr_src src = {db_attr_get, &a};
    s->rr = router_match(gl->router, &src);
    if (!s->rr) {
        metrics_add(w->shard, gl->noroute.tcp_conns, 1);
        refuse_now(s, 1130, "HY000", "Host is not allowed to connect: no route matched this connection");
        return;
    }
    struct gen_rule *gr = &gl->rules[route_rule_index(s->rr)];
    const struct cfg_rule *cr = route_rule_cfg(s->rr);
    int b = route_pick_backend(s->rr, (uint32_t)worker_rand(w));
    int ci = b >= 0 ? gen_cluster_index(s->wg->gen, cr->backends[b].cluster) : -1;
    if (ci < 0) {
        metrics_add(w->shard, gr->direct.tcp_conns, 1);
        refuse_now(s, 2003, "HY000", "Can't connect to the database through the proxy: no backend available");
        return;
    }
    s->stats = &gr->backends[b];
    metrics_add(w->shard, s->stats->tcp_conns, 1);
    s->wc = &s->wg->clusters[ci];
    ms_connect(s);
}

static void ms_accept(struct worker *w, struct gen_listener *gl, int fd,
                      const struct sockaddr_storage *peer)
{
    struct msess *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return;
    }
    if (!sessions.next)
        wlist_init(&sessions);
    s->w = w;
    s->gl = gl;
    s->wg = worker_wgen(w);
    wgen_hold(s->wg);
    s->cfd = fd;
    s->cs.fd = fd;
    s->io.fd = fd;
    s->timer.cb = ms_timeout;
    s->timer.ud = s;
    s->t_start_us = loop_now_us();
    s->stats = &gl->noroute;
    my_session_init(&s->ms);
    net_ip_str((const struct sockaddr *)peer, s->peer_ip, sizeof(s->peer_ip));
    snprintf(s->port, sizeof(s->port), "%d", net_port((const struct sockaddr *)&gl->cfg->addr));
    net_nodelay(fd);
    wlist_add_tail(&sessions, &s->link);
    worker_conn_opened(w);
    metrics_gauge_add(w->shard, gl->m_conn_active, 1);
    metrics_add(w->shard, gl->m_conn_total, 1);
    if (gl->my_users)
        term_start(s);
    else
        ms_route(s);
}

/* Idle sessions (waiting for the client's next command) close now; the
 * others close once their current command is answered (s_packet). Sessions
 * still connecting close after their handshake. */
static void ms_drain(struct worker *w)
{
    if (!sessions.next)
        return;
    struct wlink *l = sessions.next;
    while (l != &sessions) {
        struct msess *s = (struct msess *)((char *)l - offsetof(struct msess, link));
        l = l->next;
        if (s->w != w || s->dead)
            continue;
        if (s->term == TP_HELLO || s->term == TP_SWITCH) {
            start_closing(s, NULL); /* not logged in yet: nothing to finish */
            ms_run(s);
            continue;
        }
        if (!s->uc)
            continue;
        if (s->ms.phase == MY_PH_COMMAND && !s->c_left && !s->rep.busy && buf_len(&s->cin) == 0 &&
            buf_len(&s->uout) == 0) {
            start_closing(s, NULL);
            ms_run(s);
        }
    }
}

const struct proto_handler mysql_handler = {"mysql", ms_accept, ms_drain};
