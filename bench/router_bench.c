/* router_bench.c - router_match() cost as the table grows.
 *
 * Builds tables of 10, 100, 1000 and 10000 routes shaped like a real
 * mesh config (exact health paths, API prefixes, tenant headers, versioned
 * regexes, virtual hosts, plus a few rules the index can't narrow) and
 * times a mix of requests that hit some route and requests that miss. The
 * index should make the 10000-route table about as fast as the 10-route
 * one; a linear scan over the same rules is shown for scale.
 *
 * Build: gcc -O2 -Isrc bench/router_bench.c src/router/{attr,match,index,router}.c -lpcre2-8 -lpthread */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/attr.h"
#include "router/router.h"

#define NREQ 4096

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Returns a heap copy of the formatted string (freed with the config). */
static char *fmt(const char *f, unsigned i)
{
    char buf[128];
    snprintf(buf, sizeof(buf), f, i);
    return strdup(buf);
}

static struct cfg_cond cond(const char *attr, enum cfg_match_op op, char *value)
{
    struct cfg_cond c;
    memset(&c, 0, sizeof(c));
    c.attr = strdup(attr);
    c.op = op;
    c.value = value;
    c.where.file = "bench.yaml";
    c.where.line = 1;
    return c;
}

/* Route i's shape (see make_route). Multiplying by 7 (coprime to 10)
 * spreads the kinds so even the 10-route table (8 regular routes) has
 * every shape; names are fixed width ("/svc00042/") so keys and requests
 * are as long in every table and only the number of routes varies. */
static int kind_of(unsigned i) { return (int)(i * 7 % 10); }

/* Fills rt as route number i (all allocations owned by the config). */
static void make_route(struct cfg_route *rt, unsigned i, unsigned nroutes)
{
    memset(rt, 0, sizeof(*rt));
    rt->name = fmt("route-%u", i);
    rt->listeners = calloc(1, sizeof(char *));
    rt->listeners[0] = strdup("web");
    rt->nlisteners = 1;
    rt->rules = calloc(2, sizeof(*rt->rules));
    rt->nrules = 1;
    struct cfg_rule *r = &rt->rules[0];
    r->conds = calloc(3, sizeof(*r->conds));
    r->backends = calloc(1, sizeof(*r->backends));
    r->backends[0].cluster = fmt("cluster-%u", i);
    r->backends[0].weight = 1;
    r->nbackends = 1;
    if (i >= nroutes - 2) {
        /* the few rules no index can narrow: the table's tail */
        if (i == nroutes - 2)
            r->conds[r->nconds++] = cond("path", CFG_MATCH_REGEX, strdup("\\.(php|asp)$"));
        else
            r->conds[r->nconds++] = cond("header.x-debug-route", CFG_MATCH_PRESENT, NULL);
        return;
    }
    switch (kind_of(i)) {
    case 0: case 1: case 2: case 3: { /* exact health check, GET/HEAD only */
        r->conds[r->nconds++] = cond("path", CFG_MATCH_EXACT, fmt("/svc%05u/health", i));
        struct cfg_cond m = cond("method", CFG_MATCH_IN, NULL);
        m.values = calloc(2, sizeof(char *));
        m.values[0] = strdup("GET");
        m.values[1] = strdup("HEAD");
        m.nvalues = 2;
        r->conds[r->nconds++] = m;
        break;
    }
    case 4: case 5: case 6: /* API prefix; a second rule for the canary */
        r->conds[r->nconds++] = cond("path", CFG_MATCH_PREFIX, fmt("/svc%05u/api/", i));
        rt->nrules = 2;
        rt->rules[1] = rt->rules[0];
        rt->rules[1].conds = calloc(3, sizeof(struct cfg_cond));
        rt->rules[1].conds[0] = cond("path", CFG_MATCH_PREFIX, fmt("/svc%05u/api/", i));
        rt->rules[1].nconds = 1;
        rt->rules[1].backends = calloc(1, sizeof(struct cfg_backend));
        rt->rules[1].backends[0].cluster = fmt("cluster-%u", i);
        rt->rules[1].backends[0].weight = 1;
        /* the canary rule comes first: header condition on top of the prefix */
        r->conds[r->nconds++] = cond("header.x-canary", CFG_MATCH_EXACT, strdup("1"));
        break;
    case 7: /* per-tenant prefix */
        r->conds[r->nconds++] = cond("path", CFG_MATCH_PREFIX, fmt("/svc%05u/", i));
        r->conds[r->nconds++] = cond("header.x-tenant", CFG_MATCH_EXACT, fmt("t%u", i % 50));
        break;
    case 8: /* versioned item paths */
        r->conds[r->nconds++] =
            cond("path", CFG_MATCH_REGEX, fmt("^/svc%05u/v[0-9]+/items/[0-9]+$", i));
        break;
    default: /* a virtual host */
        rt->hostnames = calloc(1, sizeof(char *));
        rt->hostnames[0] = fmt("svc%05u.example.com", i);
        rt->nhostnames = 1;
        r->conds[r->nconds++] = cond("path", CFG_MATCH_PREFIX, strdup("/"));
        break;
    }
}

static void free_config(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        struct cfg_route *rt = &cfg->routes[i];
        for (size_t j = 0; j < rt->nrules; j++) {
            struct cfg_rule *r = &rt->rules[j];
            for (size_t k = 0; k < r->nconds; k++) {
                free(r->conds[k].attr);
                free(r->conds[k].value);
                for (size_t v = 0; v < r->conds[k].nvalues; v++)
                    free(r->conds[k].values[v]);
                free(r->conds[k].values);
            }
            free(r->conds);
            free(r->backends[0].cluster);
            free(r->backends);
        }
        free(rt->rules);
        free(rt->name);
        free(rt->listeners[0]);
        free(rt->listeners);
        if (rt->nhostnames)
            free(rt->hostnames[0]);
        free(rt->hostnames);
    }
    free(cfg->routes);
}

/* A parsed request as a codec would hold it: a few pointers into one
 * small buffer, with a getter that switches on the interned id. Compact, as
 * a request just parsed is: the bench measures the router, not misses on
 * request memory. */
struct bstr {
    const char *p;
    size_t len;
};

struct breq {
    struct bstr method, path, authority;
    struct bstr hname[4], hval[4];
    int nh;
    char buf[96];
};

static struct bstr S(const char *s)
{
    struct bstr b = {s, strlen(s)};
    return b;
}

static int one(struct bstr s, attr_val *out, int max)
{
    if (!s.p)
        return 0;
    if (max > 0) {
        out[0].p = s.p;
        out[0].len = s.len;
    }
    return 1;
}

static int breq_get(void *ctx, const struct attr_key *key, attr_val *out, int max)
{
    const struct breq *q = ctx;
    switch (key->id) {
    case ATTR_METHOD:
        return one(q->method, out, max);
    case ATTR_PATH:
        return one(q->path, out, max);
    case ATTR_AUTHORITY:
        return one(q->authority, out, max);
    case ATTR_HEADER: {
        int n = 0;
        for (int i = 0; i < q->nh; i++)
            if (q->hname[i].len == key->sublen && !memcmp(q->hname[i].p, key->sub, key->sublen))
                n += one(q->hval[i], out + n, max - n);
        return n;
    }
    default:
        return 0;
    }
}

/* Copies s into q's buffer; returns the copy (owned by q). */
static struct bstr put(struct breq *q, size_t *used, const char *s)
{
    size_t n = strlen(s);
    if (*used + n > sizeof(q->buf))
        abort();
    struct bstr b = {memcpy(q->buf + *used, s, n), n};
    *used += n;
    return b;
}

/* A request that some route of the table matches, or (miss) none does. */
static void make_request(struct breq *q, unsigned nroutes, int miss)
{
    char p[128], t[16];
    size_t used = 0;
    memset(q, 0, sizeof(*q));
    q->method = S("GET");
    q->hname[0] = S("user-agent");
    q->hval[0] = S("curl/8.0");
    q->hname[1] = S("accept");
    q->hval[1] = S("*/*");
    q->nh = 2;
    unsigned i = rnd() % (nroutes - 2);
    if (miss) {
        q->authority = S("unknown.example.org");
        switch (rnd() % 3) {
        case 0: snprintf(p, sizeof(p), "/nothing/here/%u", rnd() % 1000); break;
        case 1: snprintf(p, sizeof(p), "/svc%05u/unknown", i); break;
        default: snprintf(p, sizeof(p), "/svc%05u/v2/items/abc", i); break;
        }
        q->path = put(q, &used, p);
        return;
    }
    switch (kind_of(i)) {
    case 0: case 1: case 2: case 3:
        q->authority = S("mesh.local:8080");
        snprintf(p, sizeof(p), "/svc%05u/health", i);
        break;
    case 4: case 5: case 6:
        q->authority = S("mesh.local:8080");
        snprintf(p, sizeof(p), "/svc%05u/api/orders/%u", i, rnd() % 100);
        if (rnd() % 4 == 0) {
            q->hname[q->nh] = S("x-canary");
            q->hval[q->nh++] = S("1");
        }
        break;
    case 7:
        q->authority = S("mesh.local");
        snprintf(p, sizeof(p), "/svc%05u/reports", i);
        snprintf(t, sizeof(t), "t%u", i % 50);
        q->hname[q->nh] = S("x-tenant");
        q->hval[q->nh++] = put(q, &used, t);
        break;
    case 8:
        q->authority = S("mesh.local");
        snprintf(p, sizeof(p), "/svc%05u/v%u/items/%u", i, 1 + rnd() % 3, rnd() % 10000);
        break;
    default:
        snprintf(p, sizeof(p), "svc%05u.example.com:443", i);
        q->authority = put(q, &used, p);
        snprintf(p, sizeof(p), "/index.html");
        break;
    }
    q->path = put(q, &used, p);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static const struct route_rule *linear(const struct router *r, const struct attr_src *src)
{
    for (size_t i = 0, n = router_nrules(r); i < n; i++)
        if (route_rule_test(router_rule(r, i), src))
            return router_rule(r, i);
    return NULL;
}

#define NSIZES 4
static const unsigned sizes[NSIZES] = {10, 100, 1000, 10000};

struct table {
    struct config cfg;
    struct router *r;
    struct breq *reqs;
    struct attr_src *srcs;
    double build_ms, best, lin;
    int hits;
};

/* Times 2^16 matches over t's requests; returns ns per match. A proxy
 * matches a request it has just parsed, whose bytes are in cache, so the
 * bench prefetches each request a few iterations ahead: the cache misses
 * left are the router's own, which is what grows with the table. */
__attribute__((noinline)) static double time_matches(const struct table *t)
{
    volatile uintptr_t sink = 0;
    double t0 = now_ns();
    for (int k = 0; k < (1 << 16); k++) {
        const char *next = (const char *)&t->reqs[(k + 4) & (NREQ - 1)];
        for (size_t off = 0; off < sizeof(struct breq); off += 64)
            __builtin_prefetch(next + off);
        sink += (uintptr_t)router_match(t->r, &t->srcs[k & (NREQ - 1)]);
    }
    (void)sink;
    return (now_ns() - t0) / (1 << 16);
}

/* Usage: router_bench [routes [rounds]]  (one size only and no linear
 * scan, for profiling) */
int main(int argc, char **argv)
{
    unsigned only = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 0;
    int rounds = argc > 2 ? atoi(argv[2]) : 40;
    static struct table tabs[NSIZES];
    for (int si = 0; si < NSIZES; si++) {
        struct table *t = &tabs[si];
        unsigned n = sizes[si];
        if (only && n != only)
            continue;
        t->cfg.routes = calloc(n, sizeof(*t->cfg.routes));
        t->cfg.nroutes = n;
        for (unsigned i = 0; i < n; i++)
            make_route(&t->cfg.routes[i], i, n);
        char err[256];
        double t0 = now_ns();
        t->r = router_build(&t->cfg, "web", err, sizeof(err));
        t->build_ms = (now_ns() - t0) / 1e6;
        if (!t->r) {
            fprintf(stderr, "build: %s\n", err);
            return 1;
        }
        t->reqs = calloc(NREQ, sizeof(*t->reqs));
        t->srcs = calloc(NREQ, sizeof(*t->srcs));
        for (int k = 0; k < NREQ; k++) {
            make_request(&t->reqs[k], n, k % 2);
            t->srcs[k].get = breq_get;
            t->srcs[k].ctx = &t->reqs[k];
        }
        /* the index must agree with a linear scan on every request */
        for (int k = 0; k < NREQ; k++) {
            const struct route_rule *a = router_match(t->r, &t->srcs[k]);
            if (a != linear(t->r, &t->srcs[k])) {
                fprintf(stderr, "mismatch on request %d\n", k);
                return 1;
            }
            t->hits += a != NULL;
        }
        if (!only) {
            int iters = (int)(2000000 / router_nrules(t->r)) + 256;
            volatile uintptr_t sink = 0;
            t0 = now_ns();
            for (int k = 0; k < iters; k++)
                sink += (uintptr_t)linear(t->r, &t->srcs[k & (NREQ - 1)]);
            (void)sink;
            t->lin = (now_ns() - t0) / iters;
        }
        t->best = 1e18;
    }
    /* Rounds interleave the sizes so a noisy neighbour slows all alike;
     * each size keeps its best round. */
    for (int round = 0; round < rounds; round++)
        for (int si = 0; si < NSIZES; si++) {
            if (!tabs[si].r)
                continue;
            double ns = time_matches(&tabs[si]);
            if (ns < tabs[si].best)
                tabs[si].best = ns;
        }
    printf("%7s %7s %9s %6s %10s %12s\n", "routes", "rules", "build_ms", "hit%", "ns/match",
           "linear_ns");
    for (int si = 0; si < NSIZES; si++) {
        struct table *t = &tabs[si];
        if (!t->r)
            continue;
        printf("%7u %7zu %9.2f %5.1f%% %10.1f %12.1f\n", sizes[si], router_nrules(t->r),
               t->build_ms, 100.0 * t->hits / NREQ, t->best, t->lin);
        router_free(t->r);
        free_config(&t->cfg);
        free(t->reqs);
        free(t->srcs);
    }
    if (!only)
        printf("ratio 10000/10 routes: %.2f\n", tabs[3].best / tabs[0].best);
    return 0;
}
