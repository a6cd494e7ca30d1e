/* db.c - attributes and statement metrics shared by the database proxies
 * (see db.h). */
#include "proxy/db.h"

#include <string.h>

#include "core/loop.h"
#include "proxy/accesslog.h"
#include "proxy/db_check.h"
#include "proxy/lb.h"
#include "proxy/metrics.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "router/authz.h"
#include "router/ratelimit.h"
#include "router/router.h"

static int one(attr_val *out, int max, const char *p)
{
    if (!p)
        return 0;
    if (max > 0)
        out[0] = (attr_val){p, strlen(p)};
    return 1;
}

static int is(const struct attr_key *key, const char *name)
{
    size_t n = strlen(name);
    return key->len == n && memcmp(key->name, name, n) == 0;
}

/* ctx: a struct db_attrs, borrowed. */
int db_attr_get(void *ctx, const struct attr_key *key, attr_val *out, int max)
{
    const struct db_attrs *a = ctx;
    switch (key->id) {
    case ATTR_SOURCE_ADDRESS:
        return one(out, max, a->peer_ip);
    case ATTR_DESTINATION_PORT:
        return one(out, max, a->port);
    case ATTR_PROTOCOL:
        return one(out, max, a->proto);
    case ATTR_SQL_VERB:
        return a->cls ? one(out, max, sqlc_verb_name(a->cls->verb)) : 0;
    case ATTR_SQL_TABLES: {
        if (!a->cls)
            return 0;
        size_t n = sqlc_table_count(a->cls);
        for (size_t i = 0; i < n && (int)i < max; i++) {
            size_t len;
            const char *t = sqlc_table(a->cls, i, &len);
            out[i] = (attr_val){t, len};
        }
        return (int)n;
    }
    default:
        break;
    }
    if (is(key, "source.identity"))
        return a->identity ? one(out, max, a->identity) : 0;
    if (is(key, "db.user"))
        return one(out, max, a->user);
    if (is(key, "db.name"))
        return one(out, max, a->dbname);
    if (is(key, "sql.command"))
        return one(out, max, a->command);
    if (is(key, "sql.in_transaction"))
        return one(out, max, a->in_transaction ? "true" : "false");
    return 0;
}

int db_replica_eligible(unsigned fl)
{
    return (fl & SQLC_READ_ONLY) &&
           !(fl & (SQLC_LOCKING_READ | SQLC_SESSION_STATE | SQLC_TXN_BEGIN | SQLC_TXN_END |
                   SQLC_UNTERMINATED));
}

/* wc: borrowed. */
uint64_t db_replica_unusable(struct wcluster *wc)
{
    uint64_t now = loop_now(wc->wg->w->loop);
    uint64_t out = db_check_out_mask(wc);
    int n = lb_size(wc->lb);
    for (int i = 0; i < n && i < 64; i++)
        if (lb_is_ejected(wc->lb, i, now))
            out |= 1ull << i;
    return out;
}

/* wc: borrowed. */
int db_replica_any_usable(struct wcluster *wc)
{
    const struct cfg_cluster *cc = wc->gc->cfg;
    uint64_t out = db_replica_unusable(wc);
    for (size_t i = 0; i < cc->nendpoints; i++)
        if (cc->endpoints[i].weight > 0 && (i >= 64 || !(out >> i & 1)))
            return 1;
    return 0;
}

/* wc, cr, t, ops, owner: borrowed; *out is the owner's connection. */
int db_replica_connect(struct wcluster *wc, const struct cfg_rule *cr, struct uconn_try *t,
                       const struct uconn_ops *ops, void *owner, struct uconn **out)
{
    t->strict = 1;
    t->avoid = db_replica_unusable(wc);
    return uconn_try_next(wc, cr, t, ops, owner, out);
}

/* w, gl, wg, home, a: borrowed; *rr and *stats point into the generation. */
struct wcluster *db_replica_route(struct worker *w, struct gen_listener *gl, struct wgen *wg,
                                  const struct wcluster *home, struct db_attrs *a,
                                  const struct route_rule **rr, struct gen_stats **stats)
{
    if (!gl->router)
        return NULL;
    struct attr_src src = {db_attr_get, a};
    const struct route_rule *r = router_match(gl->router, &src);
    if (!r)
        return NULL;
    const struct cfg_rule *cr = route_rule_cfg(r);
    int b = route_pick_backend(r, (uint32_t)worker_rand(w));
    int ci = b >= 0 ? gen_cluster_index(wg->gen, cr->backends[b].cluster) : -1;
    if (ci < 0)
        return NULL;
    struct wcluster *wc = &wg->clusters[ci];
    if (wc == home || !wc->gc->cfg->auth_user)
        return NULL;
    if (wc->gc->cfg->replica_check.enabled)
        (void)db_check_start(wc, a->proto && strcmp(a->proto, "mysql") == 0 ? CFG_PROTO_MYSQL
                                                                           : CFG_PROTO_POSTGRES);
    if (!db_replica_any_usable(wc))
        return NULL; /* every replica is out: the read goes home */
    *rr = r;
    *stats = &gl->rules[route_rule_index(r)].backends[b];
    return wc;
}

/* w, gl, rr, wc, peer_ip, err: borrowed. */
void db_log_session(struct worker *w, int protocol, const struct gen_listener *gl,
                    const struct route_rule *rr, const struct wcluster *wc, const char *peer_ip,
                    uint64_t t_start_us, uint64_t bytes_in, uint64_t bytes_out, const char *err)
{
    if (!w->alog)
        return;
    struct alog_rec rec = {0};
    rec.start_ms = unix_ms();
    rec.duration_us = loop_now_us() - t_start_us;
    rec.protocol = (enum alog_proto)protocol;
    rec.listener = alog_cstr(gl->cfg->name);
    if (rr)
        rec.route = alog_cstr(gl->rules[route_rule_index(rr)].name);
    if (wc)
        rec.cluster = alog_cstr(wc->gc->cfg->name);
    rec.source = alog_cstr(peer_ip);
    rec.outcome = err ? ALOG_UNAVAILABLE : ALOG_OK;
    rec.bytes_in = bytes_in;
    rec.bytes_out = bytes_out;
    rec.reason = alog_cstr(err);
    alog_write(w->alog, &rec);
}

void db_stmt_record(struct worker *w, struct gen_stats *s, int verb, enum db_outcome outcome,
                    uint64_t duration_us, uint64_t rows)
{
    metrics_add(w->shard, gen_stats_db(s, GEN_DB_STATEMENTS, verb, (int)outcome), 1);
    metrics_observe(w->shard, gen_stats_db(s, GEN_DB_DURATION, verb, 0), duration_us);
    if (rows)
        metrics_add(w->shard, gen_stats_db(s, GEN_DB_ROWS, verb, 0), rows);
}

/* Borrows everything. */
int db_stmt_refusal(struct worker *w, const struct gen_listener *gl, const struct attr_src *src,
                    const char **name)
{
    const char *why;
    const struct cfg_authz *deny = authz_check(gl->authz, src, &why);
    if (deny) {
        metrics_add(w->shard, gl->m_denied, 1);
        *name = deny->name;
        return REF_DENIED;
    }
    return db_stmt_limited(w, gl, src, name) ? REF_LIMITED : REF_NONE;
}

/* Borrows everything. */
int db_stmt_limited(struct worker *w, const struct gen_listener *gl, const struct attr_src *src,
                    const char **name)
{
    int lim = rl_check_now(gl->rl, src, NULL);
    if (lim < 0)
        return 0;
    metrics_add(w->shard, gl->m_limited[lim], 1);
    *name = rl_list_at(gl->rl, lim)->name;
    return 1;
}
