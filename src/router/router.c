/* router.c - building the rule index and matching against it.
 *
 * Build: every rule gets its compiled conditions (hostnames first, regexes
 * last, since any failing condition ends the test and regexes cost most).
 * Each rule is then filed in the index under the one condition that keeps
 * it out of the most lookups (see pick_index_cond), or in the "always" list
 * when no condition can be indexed (inverted, present/absent, unanchored
 * regexes).
 *
 * Match: for every indexed attribute, fetch its values once, look each up
 * in the exact table and walk its tries; every hit is a sorted candidate
 * list. A list is scanned in order until a rule holds or ids reach `best`,
 * the lowest matching rule found so far. The answer is the lowest rule id
 * that holds among all candidates, which is the linear scan's answer
 * because a rule not offered by the index can't hold.
 *
 * Large tables are bound by cache misses, not instructions, so: identical
 * conditions compile once and are shared (thousands of rules saying
 * "method in [GET, HEAD]" read one cached object), a rule's match-time data
 * is 32 bytes, and a rule found through an exact/prefix/suffix/in
 * condition doesn't test that condition again. */
#include "router/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/index.h"
#include "router/match.h"

/* A condition as a rule uses it: the matcher plus its attribute slot (the
 * router's dense id for a distinct attribute name, for the value cache). */
struct rcond {
    const struct match_cond *m;
    uint32_t slot;
};

struct route_rule {
    const struct cfg_rule *cfg;
    const struct cfg_route *route;
    unsigned index;
    unsigned in_route;   /* position in route->rules */
    char *name;          /* owned */
    uint32_t cond_off;   /* into router->conds */
    uint32_t ncond;
    uint64_t *cum;       /* owned: running sums of backend weights */
    size_t nb;
    const struct router *r;
};

/* What matching reads of a rule, packed apart from the rest: 32 bytes,
 * holding the first two conditions inline, so testing a typical candidate
 * of a large table reads one line here plus the (shared, usually cached)
 * conditions. Further conditions are at router->conds[cond_off + 2...]. */
#define HOT_CONDS 2
struct rhot {
    const struct match_cond *m[HOT_CONDS];
    uint32_t slot[HOT_CONDS];
    uint16_t ncond;
    uint16_t skip;       /* condition the index already proved, or NO_SKIP */
    uint32_t cond_off;
};
#define NO_SKIP UINT16_MAX
_Static_assert(sizeof(struct rhot) == 32, "a rule's hot part is half a cache line");

/* An attribute whose values the index looks up. */
struct islot {
    uint32_t slot;
    uint8_t exact_views;                       /* bit per match_view with exact keys */
    struct ridx_trie *trie[MATCH_VIEW_COUNT][2]; /* [view][0 prefix, 1 suffix] */
};

struct router {
    struct route_rule *rules;
    size_t nrules;
    struct rhot *hot;          /* per rule */
    struct rcond *conds;
    size_t nconds;
    struct match_cond **owned; /* every compiled condition, for freeing */
    size_t nowned;
    const struct attr_key **slots; /* slot -> key (points into a condition) */
    size_t nslots;
    struct islot *islots;
    size_t nislots;
    struct ridx_hash *exact;   /* tag = slot << 2 | view */
    uint32_t *always;          /* rules with no indexed condition, ascending */
    size_t nalways;
};

/* ---- small helpers ---------------------------------------------------------- */

/* Makes room for one more element in *arr (n used, *cap allocated). */
static int grow(void *arrp, size_t n, size_t *cap, size_t size)
{
    void **arr = arrp;
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, nc * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

/* Borrows rt and name: whether the route attaches to listener name. */
static bool has_listener(const struct cfg_route *rt, const char *name)
{
    for (size_t i = 0; i < rt->nlisteners; i++)
        if (rt->listeners[i] && strcmp(rt->listeners[i], name) == 0)
            return true;
    return false;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrules; i++) {
        free(r->rules[i].name);
        free(r->rules[i].cum);
    }
    free(r->rules);
    free(r->hot);
    free(r->conds);
    for (size_t i = 0; i < r->nowned; i++)
        match_free(r->owned[i]);
    free(r->owned);
    free(r->slots);
    for (size_t i = 0; i < r->nislots; i++)
        for (int v = 0; v < MATCH_VIEW_COUNT; v++)
            for (int d = 0; d < 2; d++)
                ridx_trie_free(r->islots[i].trie[v][d]);
    free(r->islots);
    ridx_hash_free(r->exact);
    free(r->always);
    free(r);
}

/* ---- build ------------------------------------------------------------------- */

struct builder {
    struct router *r;
    size_t cap_rules, cap_conds, cap_owned, cap_slots, cap_islots, cap_always;
    struct ridx_hash *slot_names; /* attribute name -> [slot] */
    struct ridx_hash *cond_sigs;  /* condition signature -> [index in owned] */
    char *err;
    size_t errlen;
};

/* Sets b's error to out of memory; returns -1. */
static int oom(struct builder *b)
{
    snprintf(b->err, b->errlen, "out of memory building router");
    return -1;
}

/* Takes ownership of m (freed with the router even on later errors). */
static int own(struct builder *b, struct match_cond *m)
{
    if (grow(&b->r->owned, b->r->nowned, &b->cap_owned, sizeof(*b->r->owned)) < 0) {
        match_free(m);
        return oom(b);
    }
    b->r->owned[b->r->nowned++] = m;
    return 0;
}

/* The slot of m's attribute, adding one on first sight. -1 when out of memory. */
static int64_t slot_of(struct builder *b, const struct match_cond *m)
{
    const struct attr_key *k = match_key(m);
    uint32_t n;
    const uint32_t *v = ridx_hash_get(b->slot_names, 0, k->name, k->len, false, &n);
    if (v)
        return v[0];
    struct router *r = b->r;
    if (grow(&r->slots, r->nslots, &b->cap_slots, sizeof(*r->slots)) < 0 ||
        ridx_hash_add(b->slot_names, 0, k->name, k->len, (uint32_t)r->nslots) < 0)
        return -1;
    r->slots[r->nslots] = k;
    return (int64_t)r->nslots++;
}

/* A byte string equal for conditions that test the same thing, so
 * repeated conditions (method in [GET, HEAD] on thousands of rules) compile
 * once and stay in cache. hosts != NULL makes it a hostnames signature.
 * Caller frees the result; NULL when out of memory. */
static char *cond_sig(const struct cfg_cond *c, char *const *hosts, size_t nhosts, size_t *len)
{
    size_t n = 16 + (c && c->attr ? strlen(c->attr) : 0);
    const char *const *vals = hosts ? (const char *const *)hosts : NULL;
    size_t nvals = nhosts;
    if (!hosts) {
        vals = c->op == CFG_MATCH_IN ? (const char *const *)c->values : (const char *const *)&c->value;
        nvals = c->op == CFG_MATCH_IN ? c->nvalues : c->value ? 1 : 0;
    }
    for (size_t i = 0; i < nvals; i++)
        n += 12 + (vals[i] ? strlen(vals[i]) : 0);
    char *sig = malloc(n);
    if (!sig)
        return NULL;
    size_t o = hosts ? (size_t)snprintf(sig, n, "H")
                     : (size_t)snprintf(sig, n, "C%d%d%d%s", (int)c->op, c->invert, c->ignore_case,
                                        c->attr ? c->attr : "");
    for (size_t i = 0; i < nvals; i++) /* length-prefixed: no separator ambiguity */
        o += (size_t)snprintf(sig + o, n - o, "%c%zu:%s", 0, vals[i] ? strlen(vals[i]) : 0,
                              vals[i] ? vals[i] : "");
    *len = o;
    return sig;
}

/* The compiled condition for c (or for hostnames when hosts != NULL),
 * shared with earlier identical ones; it belongs to the router. NULL with
 * err set on error. */
static struct match_cond *intern_cond(struct builder *b, const struct cfg_cond *c,
                                      char *const *hosts, size_t nhosts, struct cfg_where where)
{
    size_t len;
    char *sig = cond_sig(c, hosts, nhosts, &len);
    if (!sig) {
        oom(b);
        return NULL;
    }
    uint32_t n;
    const uint32_t *v = ridx_hash_get(b->cond_sigs, 0, sig, len, false, &n);
    if (v) {
        free(sig);
        return b->r->owned[v[0]];
    }
    struct match_cond *m = hosts ? match_compile_hosts(hosts, nhosts, where, b->err, b->errlen)
                                 : match_compile(c, b->err, b->errlen);
    if (!m || own(b, m) < 0) {
        free(sig);
        return NULL;
    }
    if (ridx_hash_add(b->cond_sigs, 0, sig, len, (uint32_t)(b->r->nowned - 1)) < 0) {
        free(sig);
        oom(b);
        return NULL;
    }
    free(sig);
    return m;
}

/* Appends m (owned by the router already) to the current rule's conditions. 0 or -1. */
static int add_cond(struct builder *b, const struct match_cond *m)
{
    struct router *r = b->r;
    int64_t slot = slot_of(b, m);
    if (slot < 0 || grow(&r->conds, r->nconds, &b->cap_conds, sizeof(*r->conds)) < 0)
        return oom(b);
    r->conds[r->nconds].m = m;
    r->conds[r->nconds].slot = (uint32_t)slot;
    r->nconds++;
    return 0;
}

/* Compiles rule ri of rt (borrowed; host is the route's shared hostnames
 * condition or NULL) into a new route_rule. 0, or -1 with the error set. */
static int add_rule(struct builder *b, const struct cfg_route *rt, size_t ri,
                    const struct match_cond *host)
{
    struct router *r = b->r;
    const struct cfg_rule *cr = &rt->rules[ri];
    if (grow(&r->rules, r->nrules, &b->cap_rules, sizeof(*r->rules)) < 0)
        return oom(b);
    struct route_rule *rr = &r->rules[r->nrules];
    memset(rr, 0, sizeof(*rr));
    rr->cfg = cr;
    rr->route = rt;
    rr->index = (unsigned)r->nrules;
    rr->in_route = (unsigned)ri;
    rr->cond_off = (uint32_t)r->nconds;
    r->nrules++; /* counted now so router_free() frees what we attach */

    if (cr->name) {
        rr->name = strdup(cr->name);
    } else {
        size_t len = strlen(rt->name ? rt->name : "") + 24;
        rr->name = malloc(len);
        if (rr->name)
            snprintf(rr->name, len, "%s/%zu", rt->name ? rt->name : "", ri);
    }
    if (!rr->name)
        return oom(b);

    if (cr->nbackends) {
        rr->cum = malloc(cr->nbackends * sizeof(*rr->cum));
        if (!rr->cum)
            return oom(b);
        uint64_t sum = 0;
        for (size_t i = 0; i < cr->nbackends; i++)
            rr->cum[i] = sum += cr->backends[i].weight;
        rr->nb = cr->nbackends;
    }

    if (host && add_cond(b, host) < 0)
        return -1;
    /* two passes: cheap conditions first, regexes last */
    const struct match_cond **ms = calloc(cr->nconds ? cr->nconds : 1, sizeof(*ms));
    if (!ms)
        return oom(b);
    int rc = 0;
    for (size_t i = 0; i < cr->nconds && rc == 0; i++) {
        struct match_cond *m = intern_cond(b, &cr->conds[i], NULL, 0, cr->where);
        if (!m)
            rc = -1;
        else
            ms[i] = m;
    }
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t i = 0; i < cr->nconds && rc == 0; i++)
            if (match_is_costly(ms[i]) == (pass == 1))
                rc = add_cond(b, ms[i]);
    free(ms);
    rr->ncond = (uint32_t)(r->nconds - rr->cond_off);
    return rc;
}

/* Borrows cfg and listener: adds the rules of every route on listener. 0 or -1. */
static int collect_rules(struct builder *b, const struct config *cfg, const char *listener)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct cfg_route *rt = &cfg->routes[i];
        if (!has_listener(rt, listener))
            continue;
        struct match_cond *host = NULL;
        if (rt->nhostnames &&
            !(host = intern_cond(b, NULL, rt->hostnames, rt->nhostnames, rt->where)))
            return -1;
        for (size_t j = 0; j < rt->nrules; j++)
            if (add_rule(b, rt, j, host) < 0)
                return -1;
    }
    return 0;
}

/* Borrows h: the counting table's tag for a hint of attribute slot. */
static uint32_t count_tag(uint32_t slot, const struct match_hint *h)
{
    return slot << 4 | (uint32_t)h->kind << 2 | (uint32_t)h->view;
}

/* Chooses the condition rule `ri` is filed under, or -1. The cost of a
 * condition estimates how many lookups will offer the rule in vain: an
 * exact key is offered only for that value but shares its list with every
 * rule using the same key; a prefix or suffix is offered for every value
 * extending it (weighted 4x), and one of 0 or 1 byte ("/") for nearly all
 * of them. Ties prefer path, then authority, then the first condition. */
static int pick_index_cond(const struct router *r, const struct ridx_hash *counts, size_t ri)
{
    const struct route_rule *rr = &r->rules[ri];
    int best = -1, best_rank = 0;
    uint64_t best_cost = UINT64_MAX;
    for (uint32_t c = 0; c < rr->ncond; c++) {
        const struct rcond *rc = &r->conds[rr->cond_off + c];
        size_t nh = match_nhints(rc->m);
        if (nh == 0)
            continue;
        uint64_t cost = 0;
        for (size_t i = 0; i < nh; i++) {
            struct match_hint h = match_hint(rc->m, i);
            uint32_t n = 1;
            ridx_hash_get(counts, count_tag(rc->slot, &h), h.key, h.len, false, &n);
            if (h.kind == MATCH_HINT_EXACT)
                cost += n;
            else
                cost += 4 * (uint64_t)n + (h.len <= 1 ? r->nrules : 0);
        }
        int id = match_key(rc->m)->id;
        int rank = id == ATTR_PATH ? 0 : id == ATTR_AUTHORITY ? 1 : 2;
        if (cost < best_cost || (cost == best_cost && rank < best_rank)) {
            best = (int)c;
            best_cost = cost;
            best_rank = rank;
        }
    }
    return best;
}

/* The islot for slot, adding it on first use; NULL when out of memory. */
static struct islot *islot_of(struct builder *b, uint32_t slot)
{
    struct router *r = b->r;
    for (size_t i = 0; i < r->nislots; i++)
        if (r->islots[i].slot == slot)
            return &r->islots[i];
    if (grow(&r->islots, r->nislots, &b->cap_islots, sizeof(*r->islots)) < 0)
        return NULL;
    struct islot *s = &r->islots[r->nislots++];
    memset(s, 0, sizeof(*s));
    s->slot = slot;
    return s;
}

/* Borrows rc: files rule ri under every hint of its condition rc. 0 or -1. */
static int file_rule(struct builder *b, size_t ri, const struct rcond *rc)
{
    struct router *r = b->r;
    struct islot *s = islot_of(b, rc->slot);
    if (!s)
        return oom(b);
    for (size_t i = 0, nh = match_nhints(rc->m); i < nh; i++) {
        struct match_hint h = match_hint(rc->m, i);
        if (h.kind == MATCH_HINT_EXACT) {
            s->exact_views |= (uint8_t)(1u << h.view);
            if (ridx_hash_add(r->exact, rc->slot << 2 | (uint32_t)h.view, h.key, h.len,
                              (uint32_t)ri) < 0)
                return oom(b);
            continue;
        }
        int dir = h.kind == MATCH_HINT_SUFFIX;
        struct ridx_trie **t = &s->trie[h.view][dir];
        if (!*t && !(*t = ridx_trie_new(dir)))
            return oom(b);
        if (ridx_trie_add(*t, h.key, h.len, (uint32_t)ri) < 0)
            return oom(b);
    }
    return 0;
}

/* Picks each rule's index condition and builds the index of b->r. 0 or -1. */
static int build_index(struct builder *b)
{
    struct router *r = b->r;
    struct ridx_hash *counts = ridx_hash_new();
    r->exact = ridx_hash_new();
    if (!counts || !r->exact) {
        ridx_hash_free(counts);
        return oom(b);
    }
    /* pass 1: how many rules share each possible key */
    for (size_t ri = 0; ri < r->nrules; ri++) {
        const struct route_rule *rr = &r->rules[ri];
        for (uint32_t c = 0; c < rr->ncond; c++) {
            const struct rcond *rc = &r->conds[rr->cond_off + c];
            for (size_t i = 0, nh = match_nhints(rc->m); i < nh; i++) {
                struct match_hint h = match_hint(rc->m, i);
                if (ridx_hash_add(counts, count_tag(rc->slot, &h), h.key, h.len, (uint32_t)ri) < 0) {
                    ridx_hash_free(counts);
                    return oom(b);
                }
            }
        }
    }
    /* pass 2: file each rule under its best condition, in rule order */
    int rc = 0;
    r->hot = aligned_alloc(32, (r->nrules ? r->nrules : 1) * sizeof(*r->hot));
    if (!r->hot)
        rc = oom(b);
    else
        memset(r->hot, 0, (r->nrules ? r->nrules : 1) * sizeof(*r->hot));
    for (size_t ri = 0; ri < r->nrules && rc == 0; ri++) {
        const struct route_rule *rr = &r->rules[ri];
        int c = pick_index_cond(r, counts, ri);
        struct rhot *h = &r->hot[ri];
        if (rr->ncond >= NO_SKIP) {
            snprintf(b->err, b->errlen, "%s:%d: too many conditions",
                     rr->cfg->where.file ? rr->cfg->where.file : "<config>", rr->cfg->where.line);
            rc = -1;
            break;
        }
        h->cond_off = rr->cond_off;
        h->ncond = (uint16_t)rr->ncond;
        h->skip = NO_SKIP;
        for (uint32_t k = 0; k < HOT_CONDS && k < rr->ncond; k++) {
            h->m[k] = r->conds[rr->cond_off + k].m;
            h->slot[k] = r->conds[rr->cond_off + k].slot;
        }
        if (c >= 0) {
            const struct rcond *ic = &r->conds[rr->cond_off + (uint32_t)c];
            if (match_hints_imply(ic->m))
                h->skip = (uint16_t)c;
            rc = file_rule(b, ri, ic);
        } else if (grow(&r->always, r->nalways, &b->cap_always, sizeof(*r->always)) < 0) {
            rc = oom(b);
        } else {
            r->always[r->nalways++] = (uint32_t)ri;
        }
    }
    ridx_hash_free(counts);
    if (rc == 0 && ridx_hash_freeze(r->exact) < 0)
        rc = oom(b);
    for (size_t i = 0; i < r->nislots && rc == 0; i++)
        for (int v = 0; v < MATCH_VIEW_COUNT; v++)
            for (int d = 0; d < 2; d++)
                if (r->islots[i].trie[v][d] && ridx_trie_freeze(r->islots[i].trie[v][d]) < 0)
                    rc = oom(b);
    return rc;
}

struct router *router_build(const struct config *cfg, const char *listener_name, char *err,
                            size_t errlen)
{
    static char dummy[1];
    struct builder b = {0};
    b.err = err && errlen ? err : dummy;
    b.errlen = err && errlen ? errlen : sizeof(dummy);
    b.r = calloc(1, sizeof(*b.r));
    b.slot_names = ridx_hash_new();
    b.cond_sigs = ridx_hash_new();
    if (!b.r || !b.slot_names || !b.cond_sigs) {
        oom(&b);
        goto fail;
    }
    if (collect_rules(&b, cfg, listener_name) < 0 || build_index(&b) < 0)
        goto fail;
    for (size_t i = 0; i < b.r->nrules; i++)
        b.r->rules[i].r = b.r;
    ridx_hash_free(b.slot_names);
    ridx_hash_free(b.cond_sigs);
    return b.r;
fail:
    ridx_hash_free(b.slot_names);
    ridx_hash_free(b.cond_sigs);
    router_free(b.r);
    return NULL;
}

/* ---- match ------------------------------------------------------------------- */

/* Per-match cache of attribute values by slot, on the matcher's stack:
 * a getter runs once per attribute however many rules test it. Two extra
 * entries serve when the cache is full, one for the index walk and one for
 * rule tests, so neither overwrites values the other is still reading. */
#define MC_SLOTS 16
#define MC_VALS 8
#define MC_WALK MC_SLOTS
#define MC_TEST (MC_SLOTS + 1)

struct mcache {
    const struct router *r;
    const struct attr_src *src;
    int n;
    uint32_t bigmask;            /* entries whose big[] is set */
    uint32_t slot[MC_SLOTS];
    int cnt[MC_SLOTS + 2];
    const attr_val *vals[MC_SLOTS + 2];
    attr_val *big[MC_SLOTS + 2]; /* owned heap arrays for long lists */
    attr_val inl[MC_SLOTS + 2][MC_VALS];
};

/* Explain's record of the rules tested, in test order. */
#define TRACE_MAX 64
struct trace {
    uint32_t id[TRACE_MAX];
    size_t n;
};

struct mctx {
    struct mcache c;
    uint32_t best;
    struct trace *trace;
};

/* Fetches slot's values into cache entry e (which owns any heap array); the count. */
static int fetch(struct mcache *c, int e, uint32_t slot)
{
    const struct attr_key *k = c->r->slots[slot];
    if (c->bigmask & (1u << e)) {
        free(c->big[e]);
        c->bigmask &= ~(1u << e);
    }
    int n = attr_get(c->src, k, c->inl[e], MC_VALS);
    c->vals[e] = c->inl[e];
    if (n > MC_VALS) {
        attr_val *big = malloc((size_t)n * sizeof(*big));
        if (big) {
            int n2 = attr_get(c->src, k, big, n);
            c->big[e] = big;
            c->bigmask |= 1u << e;
            c->vals[e] = big;
            n = n2 < n ? n2 : n;
        } else {
            n = MC_VALS; /* out of memory: the first values only */
        }
    }
    c->cnt[e] = n;
    return n;
}

/* Values of slot (borrowed from the message or the cache) -> count. */
static inline int cache_get(struct mcache *c, uint32_t slot, int spare, const attr_val **out)
{
    for (int i = 0; i < c->n; i++)
        if (c->slot[i] == slot) {
            *out = c->vals[i];
            return c->cnt[i];
        }
    int e = spare;
    if (c->n < MC_SLOTS) {
        e = c->n++;
        c->slot[e] = slot;
    }
    int n = fetch(c, e, slot);
    *out = c->vals[e];
    return n;
}

/* Frees the heap arrays c owns. */
static void cache_done(struct mcache *c)
{
    for (int i = 0; c->bigmask; i++)
        if (c->bigmask & (1u << i)) {
            free(c->big[i]);
            c->bigmask &= ~(1u << i);
        }
}

/* Whether all conditions of rule id hold; skip is a condition known to
 * hold (the one the index found the rule through) or NO_SKIP. */
static bool rule_holds(struct mctx *x, uint32_t id, uint32_t skip)
{
    const struct router *r = x->c.r;
    const struct rhot *h = &r->hot[id];
    const attr_val *v;
    for (uint32_t i = 0; i < h->ncond && i < HOT_CONDS; i++) {
        if (i == skip)
            continue;
        int n = cache_get(&x->c, h->slot[i], MC_TEST, &v);
        if (!match_test(h->m[i], v, n))
            return false;
    }
    const struct rcond *rc = &r->conds[h->cond_off];
    for (uint32_t i = HOT_CONDS; i < h->ncond; i++) {
        if (i == skip)
            continue;
        int n = cache_get(&x->c, rc[i].slot, MC_TEST, &v);
        if (!match_test(rc[i].m, v, n))
            return false;
    }
    return true;
}

/* Tests a sorted candidate list up to the best rule found so far;
 * indexed says the list came from the index (not the always list), so
 * each rule's indexed condition is known to hold. */
static void scan(struct mctx *x, const uint32_t *ids, uint32_t n, bool indexed)
{
    for (uint32_t i = 0; i < n && ids[i] < x->best; i++) {
        if (x->trace && x->trace->n < TRACE_MAX)
            x->trace->id[x->trace->n++] = ids[i];
        if (rule_holds(x, ids[i], indexed ? x->c.r->hot[ids[i]].skip : NO_SKIP)) {
            x->best = ids[i];
            return;
        }
    }
}

/* Borrows s and v: scans every candidate list the index has for value v. */
static void lookup_value(struct mctx *x, const struct islot *s, const attr_val *v)
{
    const struct router *r = x->c.r;
    for (int view = 0; view < MATCH_VIEW_COUNT; view++) {
        size_t len = view == MATCH_VIEW_HOST ? match_host_len(v->p, v->len) : v->len;
        bool fold = view != MATCH_VIEW_RAW;
        if (s->exact_views & (1u << view)) {
            uint32_t n;
            const uint32_t *ids = ridx_hash_get(r->exact, s->slot << 2 | (uint32_t)view, v->p,
                                                len, fold, &n);
            if (ids)
                scan(x, ids, n, true);
        }
        for (int d = 0; d < 2; d++) {
            if (!s->trie[view][d])
                continue;
            struct ridx_walk w;
            const uint32_t *ids;
            uint32_t n;
            ridx_walk_init(&w, s->trie[view][d], v->p, len, fold);
            while ((ids = ridx_walk_next(&w, &n)))
                if (ids[0] < x->best)
                    scan(x, ids, n, true);
        }
    }
}

/* The first matching rule (points into r) or NULL; trace, when not NULL,
 * records the candidates tested. */
static const struct route_rule *match(const struct router *r, const struct attr_src *src,
                                      struct trace *trace)
{
    struct mctx x;
    x.c.r = r;
    x.c.src = src;
    x.c.n = 0;
    x.c.bigmask = 0;
    x.best = UINT32_MAX;
    x.trace = trace;
    for (size_t i = 0; i < r->nislots; i++) {
        const struct islot *s = &r->islots[i];
        const attr_val *v;
        int n = cache_get(&x.c, s->slot, MC_WALK, &v);
        for (int j = 0; j < n; j++)
            lookup_value(&x, s, &v[j]);
    }
    scan(&x, r->always, (uint32_t)r->nalways, false);
    cache_done(&x.c);
    return x.best == UINT32_MAX ? NULL : &r->rules[x.best];
}

const struct route_rule *router_match(const struct router *r, const struct attr_src *src)
{
    return match(r, src, NULL);
}

/* ---- accessors, pick --------------------------------------------------------- */

size_t router_nrules(const struct router *r) { return r->nrules; }

const struct route_rule *router_rule(const struct router *r, size_t i)
{
    return i < r->nrules ? &r->rules[i] : NULL;
}

const struct cfg_rule *route_rule_cfg(const struct route_rule *rr) { return rr->cfg; }
const struct cfg_route *route_rule_route(const struct route_rule *rr) { return rr->route; }
unsigned route_rule_index(const struct route_rule *rr) { return rr->index; }
const char *route_rule_name(const struct route_rule *rr) { return rr->name; }

int route_rule_test(const struct route_rule *rr, const struct attr_src *src)
{
    const struct rcond *rc = &rr->r->conds[rr->cond_off];
    for (uint32_t i = 0; i < rr->ncond; i++)
        if (!match_eval(rc[i].m, src))
            return 0;
    return 1;
}

int route_pick_backend(const struct route_rule *rr, uint32_t random)
{
    if (rr->nb == 0 || rr->cum[rr->nb - 1] == 0)
        return -1;
    /* scale random into [0, total): x = random * total / 2^32, split in
     * halves because the total of many 32-bit weights can exceed 2^32 */
    uint64_t total = rr->cum[rr->nb - 1];
    uint64_t x = (uint64_t)random * (total >> 32) + (((uint64_t)random * (uint32_t)total) >> 32);
    size_t lo = 0, hi = rr->nb - 1; /* first i with cum[i] > x */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rr->cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (int)lo;
}

/* ---- explain ----------------------------------------------------------------- */

/* qsort order of uint32_t values. */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int router_explain(const struct router *r, const struct attr_src *src, char *out, size_t outlen)
{
    struct trace t;
    t.n = 0;
    const struct route_rule *m = match(r, src, &t);
    uint32_t best = m ? m->index : UINT32_MAX;
    size_t n = 0;
    int w;
#define PUT(...)                                                                       \
    do {                                                                               \
        w = snprintf(out + (n < outlen ? n : outlen), n < outlen ? outlen - n : 0,    \
                     __VA_ARGS__);                                                     \
        if (w > 0)                                                                     \
            n += (size_t)w;                                                            \
    } while (0)
    if (outlen)
        out[0] = 0;
    if (m)
        PUT("matched rule %u \"%s\" (route %s, %s:%d)\n", m->index, m->name,
            m->route->name ? m->route->name : "", m->cfg->where.file ? m->cfg->where.file : "?",
            m->cfg->where.line);
    else
        PUT("no rule matched\n");
    /* candidates the index offered before the winner, in rule order */
    qsort(t.id, t.n, sizeof(t.id[0]), cmp_u32);
    size_t shown = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.id[i] >= best || (i && t.id[i] == t.id[i - 1]))
            continue;
        const struct route_rule *rr = &r->rules[t.id[i]];
        const struct rcond *rc = &r->conds[rr->cond_off];
        char why[256] = "?";
        for (uint32_t c = 0; c < rr->ncond; c++)
            if (!match_eval(rc[c].m, src)) {
                match_describe(rc[c].m, why, sizeof(why));
                break;
            }
        PUT("  rule %u \"%s\" (route %s): failed %s\n", rr->index, rr->name,
            rr->route->name ? rr->route->name : "", why);
        shown++;
    }
    size_t before = m ? m->index + 1 : r->nrules;
    PUT("%zu of %zu rules tested%s%s\n", shown + (m != NULL), before,
        shown + (m != NULL) < before ? "; the index ruled out the others" : "",
        t.n == TRACE_MAX ? " (trace truncated)" : "");
#undef PUT
    return m ? (int)m->index : -1;
}
