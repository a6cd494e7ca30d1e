/* mysql_proxy.c - the MySQL/MariaDB proxy: pass-through authentication,
 * then a command loop with per-statement policy and metrics.
 *
 * In MySQL the server speaks first, and the proxy relays the handshake
 * rather than terminating it, so a session is routed once at accept time
 * on connection attributes only (source.address, destination.port,
 * protocol): db.user and db.name are not known yet. Routing on them would
 * need terminated authentication (the proxy greeting the client itself).
 * The server's greeting is relayed with the capabilities the proxy cannot
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
 * side. */
#include <errno.h>
#include <netinet/in.h>
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
    struct uconn *uc;           /* NULL until connected */
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
    uint8_t pend_err[ERR_ROOM]; /* refusal of a > 16 MiB command, sent after its last packet */
    int pend_err_len;

    uint64_t bytes_in, bytes_out;
    const char *reason;         /* first failure, for the access log */
    char errbuf[160];
};

/* The worker thread's sessions, so drain() can find them. Thread-local:
 * each worker has its own list and only its own thread touches it. */
static _Thread_local struct wlink sessions;

static const struct uconn_ops ms_uc_ops;
static void ms_run(struct msess *s);

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
    ms_log(s, err);
    loop_timer_cancel(w->loop, &s->timer);
    if (s->io_added)
        loop_io_del(w->loop, &s->io);
    sio_tls_close(&s->cs);
    close(s->cfd);
    if (s->uc)
        uconn_close(s->uc);
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

/* Before the relay exists: writes one ERR packet (sequence 0, in place of
 * the greeting) straight to the fresh socket, best effort, and ends. */
static void refuse_now(struct msess *s, uint16_t code, const char *state, const char *msg)
{
    uint8_t pkt[ERR_ROOM];
    int n = my_build_err(pkt, sizeof(pkt), 0, MY_CLIENT_PROTOCOL_41, code, state, msg, strlen(msg));
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

/* ---- client -> server --------------------------------------------------- */

/* A statement refused by policy: the packet (and, for a > 16 MiB command,
 * the packets after it) are dropped; the client gets ERR 1142. */
static void refuse_command(struct msess *s, const struct my_pkt *pkt, int verb,
                           const struct cfg_authz *deny, const char *why)
{
    metrics_add(s->w->shard, s->gl->m_denied, 1);
    db_stmt_record(s->w, s->stats, verb, DB_DENIED, 0, 0);
    char msg[400];
    if (deny)
        snprintf(msg, sizeof(msg), "%s command denied to user '%s' by policy %s%s",
                 sqlc_verb_name((enum sqlc_verb)verb), s->user, deny->name,
                 why && strncmp(why, "no ALLOW", 8) == 0 ? " (no ALLOW policy matched)" : "");
    else
        snprintf(msg, sizeof(msg), "%s command denied to user '%s': %s",
                 sqlc_verb_name((enum sqlc_verb)verb), s->user, why);
    s->ms.phase = MY_PH_COMMAND;
    s->stmt_active = 0;
    s->c_left = MY_HDR_LEN + pkt->len;
    s->c_drop = 1;
    if (s->ms.in_msg) {
        s->ms.in_msg = 0;
        s->c_dropping = 1;
        s->pend_err_len = my_build_err(s->pend_err, sizeof(s->pend_err), 0,
                                       s->ms.caps | MY_CLIENT_PROTOCOL_41,
                                       MY_ER_TABLEACCESS_DENIED, "42000", msg, strlen(msg));
        return;
    }
    send_err(s, (uint8_t)(pkt->seq + 1), MY_ER_TABLEACCESS_DENIED, "42000", msg);
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
        /* Checked like a new session when the server accepts it. */
        copy_str(s->pend_user, sizeof(s->pend_user), c->user);
        copy_str(s->pend_db, sizeof(s->pend_db), c->schema);
        s->pend_has_db = s->pend_db[0] != 0;
        break;
    case MY_COM_STMT_CLOSE:
        stmt_forget(s, c->stmt_id);
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
            refuse_command(s, pkt, verb < 0 ? SQLC_V_OTHER : verb, deny, why);
            return 0;
        }
    }
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
    if (rc == MY_R_DONE && c->cmd == MY_COM_QUIT)
        s->quit = 1;
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
        if (!on_command(s, pkt, rc))
            return s->dead ? -1 : 1;
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
        if (s->quit || s->closing)
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
        if (have < len) {
            if (hold(in, MY_HDR_LEN + len) < 0) {
                ms_end(s, "out of memory");
                return -1;
            }
            return 0;
        }
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
        int rc = s_packet(s, &pkt);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        moved = 1;
    }
    return moved;
}

/* ---- the event loop side ---------------------------------------------- */

/* Moves bytes until nothing moves, then sets the interest of both sockets. */
static void ms_run(struct msess *s)
{
    if (s->dead || !s->uc)
        return;
    struct worker *w = s->w;
    struct sio *us = &s->uc->sio;
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
        if (r < 0)
            return;
        moved |= r;
        if (buf_len(&s->uout) > 0) {
            n = sio_write_buf(us, &s->uout);
            if (n > 0)
                moved = 1;
            else if (n < 0 && errno != EAGAIN) {
                buf_free(&s->uout);
                s->u_eof = 1;
            }
        }
        if (s->u_ready && !s->u_eof && buf_has_room(&s->uc->in)) {
            uint32_t room = s->uc->in.data ? buf_space(&s->uc->in) : buf_block_size();
            n = sio_read_buf(us, &s->uc->in);
            if (n > 0)
                moved = 1;
            else if (n == 0 || (n == -1 && errno != EAGAIN))
                s->u_eof = 1;
            if (n < 0 || (n > 0 && (uint32_t)n < room))
                s->u_ready = 0;
        }
        r = s_process(s);
        if (r < 0)
            return;
        moved |= r;
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
        if (s->u_eof && !s->closing)
            start_closing(s, s->ms.phase == MY_PH_COMMAND || s->ms.phase == MY_PH_CLOSED
                                 ? NULL : "upstream closed the connection");
        if (s->closing && buf_len(&s->cout) == 0 &&
            (!s->s_left || (s->u_eof && buf_len(&s->uc->in) == 0))) {
            ms_end(s, NULL);
            return;
        }
        /* Bytes TLS already decrypted are never reported by epoll. */
        if (!s->u_eof && sio_pending(us) && buf_has_room(&s->uc->in))
            continue;
        break;
    }
    unsigned cm = 0, um = 0;
    if (!s->c_eof && !s->closing && !s->quit && buf_has_room(&s->cin))
        cm |= LOOP_READ;
    if (buf_len(&s->cout) > 0)
        cm |= LOOP_WRITE;
    if (!s->u_eof && buf_has_room(&s->uc->in))
        um |= LOOP_READ;
    if (buf_len(&s->uout) > 0)
        um |= LOOP_WRITE;
    loop_io_set(w->loop, &s->io, cm | s->cs.want);
    uconn_want(s->uc, um | us->want);
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
    uconn_try_done(s->wc, &s->ct, err);
    if (err) {
        ms_connect(s);
        return;
    }
    s->uc = uc;
    s->u_ready = 1; /* the greeting may already be there */
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
    int ready, err, rc;
    while ((rc = uconn_try_next(s->wc, route_rule_cfg(s->rr), &s->ct, &ms_uc_ops, s, &uc, &ready,
                                &err)) == UCONN_TRY_ERROR)
        ;
    if (rc != UCONN_TRY_STARTED) {
        snprintf(s->errbuf, sizeof(s->errbuf), "Can't connect to the database through the proxy: %s",
                 uconn_try_reason(rc));
        refuse_now(s, 2003, "HY000", s->errbuf);
        return;
    }
    if (ready) /* a pooled connection: not expected for a database cluster */
        ms_connected(s, uc, 0);
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
        if (s->w != w || s->dead || !s->uc)
            continue;
        if (s->ms.phase == MY_PH_COMMAND && !s->c_left && buf_len(&s->cin) == 0 &&
            buf_len(&s->uout) == 0) {
            start_closing(s, NULL);
            ms_run(s);
        }
    }
}

const struct proto_handler mysql_handler = {"mysql", ms_accept, ms_drain};
