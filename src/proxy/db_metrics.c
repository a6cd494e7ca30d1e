/* db_metrics.c - database series whose label values come from traffic:
 * tables a statement names and the error codes servers answer with.
 *
 *   strand_db_table_statements_total{listener,table,verb}
 *   strand_db_errors_total{listener,route,cluster,code}
 *
 * Registering a series takes the registry's lock and builds a label
 * string, too slow for every statement, so each worker thread keeps a small
 * direct-mapped cache from a hash of the label values to the series id.
 * The key is made of the values themselves (not pointers), so a cached id
 * can never belong to a freed generation's series. A 64-bit collision
 * would count one statement under another series; at 512 slots that is
 * not a practical concern.
 *
 * Table names are whatever clients write, so they are capped per listener
 * and generation (DB_TABLES_MAX distinct names; the rest count as table
 * "_other"): a client cannot grow the metrics without bound. Error codes
 * are bounded by the servers (SQLSTATEs, MySQL error numbers). */
#include "proxy/db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/metrics.h"
#include "proxy/worker.h"

#define CACHE_SLOTS 512
#define DB_TABLES_MAX 1000
#define SET_SLOTS 2048          /* > 2 * DB_TABLES_MAX, power of two */

struct cache_slot {
    uint64_t key;
    uint32_t id;
};

static __thread struct cache_slot cache[CACHE_SLOTS];

/* The distinct table names seen on one listener (gen_listener.tables). */
struct db_table_set {
    pthread_mutex_t mu;
    size_t n;
    char *names[SET_SLOTS];
};

static uint64_t mix(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0x1f) * 1099511628211ull;
}

static uint64_t mix_n(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (h ^ 0x1f) * 1099511628211ull;
}

static uint64_t finish(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

static uint32_t cache_get(uint64_t key)
{
    struct cache_slot *c = &cache[key & (CACHE_SLOTS - 1)];
    return c->key == key ? c->id : METRICS_INVALID;
}

static void cache_put(uint64_t key, uint32_t id)
{
    if (id != METRICS_INVALID)
        cache[key & (CACHE_SLOTS - 1)] = (struct cache_slot){key, id};
}

/* The set of gl, made on first use; NULL when out of memory. */
static struct db_table_set *table_set(struct gen_listener *gl)
{
    struct db_table_set *t = atomic_load_explicit(&gl->tables, memory_order_acquire);
    if (t)
        return t;
    struct db_table_set *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    pthread_mutex_init(&n->mu, NULL);
    struct db_table_set *expect = NULL;
    if (atomic_compare_exchange_strong_explicit(&gl->tables, &expect, n, memory_order_acq_rel,
                                                memory_order_acquire))
        return n;
    pthread_mutex_destroy(&n->mu);
    free(n);
    return expect;
}

/* 1 when name[0..len) may have its own series on gl (seen before, or
 * there is room), 0 when it counts as "_other". */
static int table_admit(struct gen_listener *gl, const char *name, size_t len)
{
    struct db_table_set *t = table_set(gl);
    if (!t)
        return 0;
    uint64_t h = finish(mix_n(1469598103934665603ull, name, len));
    int ok = 0;
    pthread_mutex_lock(&t->mu);
    size_t j = h & (SET_SLOTS - 1);
    for (; t->names[j]; j = (j + 1) & (SET_SLOTS - 1))
        if (strlen(t->names[j]) == len && memcmp(t->names[j], name, len) == 0) {
            ok = 1;
            break;
        }
    if (!ok && t->n < DB_TABLES_MAX && (t->names[j] = strndup(name, len))) {
        t->n++;
        ok = 1;
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void db_table_set_free(struct db_table_set *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < SET_SLOTS; i++)
        free(t->names[i]);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Borrows gl and cls. */
void db_count_tables(struct worker *w, struct gen_listener *gl, const struct sqlc_result *cls)
{
    size_t n = sqlc_table_count(cls);
    if (n == 0)
        return;
    const char *verb = sqlc_verb_name(cls->verb);
    uint64_t base = mix(mix(1469598103934665603ull, "tables"), gl->cfg->name);
    base = mix(base, verb);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *t = sqlc_table(cls, i, &len);
        uint64_t key = finish(mix_n(base, t, len));
        uint32_t id = cache_get(key);
        if (id == METRICS_INVALID) {
            char l[256], tb[256], labels[700];
            metrics_label_escape(l, sizeof(l), gl->cfg->name);
            if (table_admit(gl, t, len))
                metrics_label_escape(tb, sizeof(tb), t);
            else
                snprintf(tb, sizeof(tb), "_other");
            snprintf(labels, sizeof(labels), "listener=\"%s\",table=\"%s\",verb=\"%s\"", l, tb,
                     verb);
            id = metrics_counter("strand_db_table_statements_total",
                                 "Database statements sent to a server, by listener, table named "
                                 "and verb (a statement counts once per table; at most 1000 "
                                 "tables per listener, the rest as _other).",
                                 labels);
            cache_put(key, id);
        }
        metrics_add(w->shard, id, 1);
    }
}

/* Borrows s and code. */
void db_stmt_error(struct worker *w, struct gen_stats *s, const char *code)
{
    if (!s || !code || !*code)
        return;
    uint64_t key = mix(1469598103934665603ull, "errors");
    key = finish(mix(mix(mix(mix(key, s->listener), s->route), s->cluster), code));
    uint32_t id = cache_get(key);
    if (id == METRICS_INVALID) {
        char l[256], r[512], c[256], k[64], labels[1200];
        metrics_label_escape(l, sizeof(l), s->listener ? s->listener : "");
        metrics_label_escape(r, sizeof(r), s->route ? s->route : "");
        metrics_label_escape(c, sizeof(c), s->cluster ? s->cluster : "");
        metrics_label_escape(k, sizeof(k), code);
        snprintf(labels, sizeof(labels), "listener=\"%s\",route=\"%s\",cluster=\"%s\",code=\"%s\"",
                 l, r, c, k);
        id = metrics_counter("strand_db_errors_total",
                             "Database statements the server answered with an error, by "
                             "listener, route, cluster and code (PostgreSQL SQLSTATE, MySQL "
                             "error number).",
                             labels);
        cache_put(key, id);
    }
    metrics_add(w->shard, id, 1);
}
