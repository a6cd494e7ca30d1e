/* ratelimit.c - shared GCRA buckets for RateLimit rules; see ratelimit.h. */
#include "router/ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/match.h"

#define GROUP_SLOTS 8

/* Keyed buckets: a slot is free when h == 0 or its time has passed. */
struct rl_group {
    atomic_flag lock;
    uint64_t h[GROUP_SLOTS];
    uint64_t tat[GROUP_SLOTS];
};

/* The state of one rule's bucket(s), shared by every generation whose rule
 * has the same identity (RateLimit name, rule index, rate, burst, key and
 * maxKeys), so a reload that leaves a limit alone does not refill it; a
 * control plane may push configuration every few seconds. */
struct rl_state {
    struct rl_state *next;          /* the registry's list */
    int refs;                       /* under reg_mu */
    char *id;
    _Atomic uint64_t tat;           /* unkeyed bucket */
    struct rl_group *groups;        /* keyed buckets */
    uint64_t gmask;
};

struct rl_rule {
    const struct cfg_ratelimit_rule *cfg;
    size_t limit;                   /* index of its RateLimit in cfg->ratelimits */
    struct match_cond **conds;
    size_t nconds;
    struct attr_key key;            /* when cfg->key */
    uint64_t t_ns;                  /* one token every t_ns */
    uint64_t tau_ns;                /* burst * t_ns: how far ahead tat may run */
    struct rl_state *st;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rl_state *reg;

struct rl_set {
    const struct config *cfg;
    struct rl_rule *rules;          /* every rule of every RateLimit, in order */
    size_t nrules;
};

struct rl_list {
    struct rl_rule **rules;         /* the rules of the listener's RateLimits */
    size_t nrules;
    size_t *limits;                 /* indices into set->cfg->ratelimits, distinct */
    size_t nlimits;
    const struct config *cfg;
};

uint64_t rl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX / 4 : r;
}

static uint64_t pow2_at_least(uint64_t n)
{
    uint64_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* rule compiled into r (borrowed; r owns what it allocates). 0 or -1. */
/* The shared state for rule `index` of RateLimit `name` (c: its config),
 * with one more reference; NULL when out of memory. Borrows all. */
static struct rl_state *state_get(const char *name, size_t index,
                                  const struct cfg_ratelimit_rule *c)
{
    char id[512];
    snprintf(id, sizeof(id), "%s/%zu/%u/%llu/%u/%s/%u", name, index, c->requests,
             (unsigned long long)c->per_ms, c->burst, c->key ? c->key : "", c->key ? c->max_keys : 0);
    pthread_mutex_lock(&reg_mu);
    struct rl_state *st = reg;
    while (st && strcmp(st->id, id) != 0)
        st = st->next;
    if (st) {
        st->refs++;
        pthread_mutex_unlock(&reg_mu);
        return st;
    }
    st = calloc(1, sizeof(*st));
    if (st && !(st->id = strdup(id))) {
        free(st);
        st = NULL;
    }
    if (st && c->key) {
        uint64_t ngroups = pow2_at_least(((uint64_t)c->max_keys * 2 + GROUP_SLOTS - 1) / GROUP_SLOTS);
        if ((st->groups = calloc(ngroups, sizeof(*st->groups)))) {
            for (uint64_t g = 0; g < ngroups; g++)
                atomic_flag_clear(&st->groups[g].lock);
            st->gmask = ngroups - 1;
        } else {
            free(st->id);
            free(st);
            st = NULL;
        }
    }
    if (st) {
        atomic_init(&st->tat, 0);
        st->refs = 1;
        st->next = reg;
        reg = st;
    }
    pthread_mutex_unlock(&reg_mu);
    return st;
}

/* Drops a reference to st (NULL allowed); the last one frees it. */
static void state_put(struct rl_state *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&reg_mu);
    if (--st->refs > 0) {
        pthread_mutex_unlock(&reg_mu);
        return;
    }
    for (struct rl_state **p = &reg; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
    free(st->groups);
    free(st->id);
    free(st);
}

static int rule_build(struct rl_rule *r, const struct cfg_ratelimit_rule *c, size_t limit,
                      const char *name, size_t index, char *err, size_t errlen)
{
    r->cfg = c;
    r->limit = limit;
    r->t_ns = sat_mul(c->per_ms, 1000000ull) / c->requests;
    if (r->t_ns == 0)
        r->t_ns = 1;
    r->tau_ns = sat_mul(r->t_ns, c->burst);
    if (c->nconds && !(r->conds = calloc(c->nconds, sizeof(*r->conds))))
        goto oom;
    for (size_t i = 0; i < c->nconds; i++) {
        if (!(r->conds[i] = match_compile(&c->conds[i], err, errlen)))
            return -1;
        r->nconds++;
    }
    if (c->key && attr_key_init(&r->key, c->key, strlen(c->key)) != 0) {
        snprintf(err, errlen, "%s:%d: bad key attribute", c->where.file, c->where.line);
        return -1;
    }
    if (!(r->st = state_get(name, index, c)))
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "%s:%d: out of memory", c->where.file, c->where.line);
    return -1;
}

static void rule_free(struct rl_rule *r)
{
    for (size_t i = 0; i < r->nconds; i++)
        match_free(r->conds[i]);
    free(r->conds);
    state_put(r->st);
}

/* Borrows cfg; the set is the caller's. */
struct rl_set *rl_set_build(const struct config *cfg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = 0;
    size_t n = 0;
    for (size_t i = 0; i < cfg->nratelimits; i++)
        n += cfg->ratelimits[i].nrules;
    if (n == 0)
        return NULL;
    struct rl_set *set = calloc(1, sizeof(*set));
    if (!set || !(set->rules = calloc(n, sizeof(*set->rules)))) {
        free(set);
        snprintf(err, errlen, "out of memory building rate limits");
        return NULL;
    }
    set->cfg = cfg;
    for (size_t i = 0; i < cfg->nratelimits; i++)
        for (size_t j = 0; j < cfg->ratelimits[i].nrules; j++)
            if (rule_build(&set->rules[set->nrules++], &cfg->ratelimits[i].rules[j], i,
                           cfg->ratelimits[i].name, j, err, errlen) != 0) {
                rl_set_free(set);
                return NULL;
            }
    return set;
}

void rl_set_free(struct rl_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->nrules; i++)
        rule_free(&set->rules[i]);
    free(set->rules);
    free(set);
}

static bool targets(const struct cfg_ratelimit *rl, const char *listener)
{
    for (size_t i = 0; i < rl->nlisteners; i++)
        if (strcmp(rl->listeners[i], listener) == 0)
            return true;
    return false;
}

/* Borrows set; the list is the caller's. */
struct rl_list *rl_list_build(struct rl_set *set, const char *listener_name, char *err,
                              size_t errlen)
{
    if (errlen)
        err[0] = 0;
    if (!set)
        return NULL;
    const struct config *cfg = set->cfg;
    size_t nrules = 0, nlimits = 0;
    for (size_t i = 0; i < cfg->nratelimits; i++)
        if (targets(&cfg->ratelimits[i], listener_name)) {
            nlimits++;
            nrules += cfg->ratelimits[i].nrules;
        }
    if (nlimits == 0)
        return NULL;
    struct rl_list *l = calloc(1, sizeof(*l));
    if (l) {
        l->rules = calloc(nrules, sizeof(*l->rules));
        l->limits = calloc(nlimits, sizeof(*l->limits));
    }
    if (!l || !l->rules || !l->limits) {
        rl_list_free(l);
        snprintf(err, errlen, "out of memory building rate limits");
        return NULL;
    }
    l->cfg = cfg;
    for (size_t i = 0, r = 0; i < cfg->nratelimits; i++) {
        size_t nr = cfg->ratelimits[i].nrules;
        if (targets(&cfg->ratelimits[i], listener_name)) {
            l->limits[l->nlimits++] = i;
            for (size_t j = 0; j < nr; j++)
                l->rules[l->nrules++] = &set->rules[r + j];
        }
        r += nr;
    }
    return l;
}

void rl_list_free(struct rl_list *l)
{
    if (!l)
        return;
    free(l->rules);
    free(l->limits);
    free(l);
}

size_t rl_list_count(const struct rl_list *l)
{
    return l ? l->nlimits : 0;
}

const struct cfg_ratelimit *rl_list_at(const struct rl_list *l, size_t i)
{
    return &l->cfg->ratelimits[l->limits[i]];
}

/* One GCRA step on *tat: takes a token (returns 1 and moves *tat) or
 * refuses (returns 0, *wait_ns = time until a token is due). */
static int gcra(uint64_t *tat, uint64_t now, const struct rl_rule *r, uint64_t *wait_ns)
{
    uint64_t next = (*tat > now ? *tat : now) + r->t_ns;
    if (next - now > r->tau_ns) {
        *wait_ns = next - now - r->tau_ns;
        return 0;
    }
    *tat = next;
    return 1;
}

static int take_shared(struct rl_rule *r, uint64_t now, uint64_t *wait_ns)
{
    uint64_t old = atomic_load_explicit(&r->st->tat, memory_order_relaxed);
    for (;;) {
        uint64_t t = old;
        if (!gcra(&t, now, r, wait_ns))
            return 0;
        if (atomic_compare_exchange_weak_explicit(&r->st->tat, &old, t, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 1;
    }
}

/* FNV-1a over every value (with a separator), then a final mix; never 0. */
static uint64_t key_hash(const attr_val *v, int n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < v[i].len; j++)
            h = (h ^ (unsigned char)v[i].p[j]) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

static void group_lock(struct rl_group *g)
{
    while (atomic_flag_test_and_set_explicit(&g->lock, memory_order_acquire))
        ;
}

static void group_unlock(struct rl_group *g)
{
    atomic_flag_clear_explicit(&g->lock, memory_order_release);
}

/* delta > 0 takes a token for key h; delta < 0 gives one back. */
static int take_keyed(struct rl_rule *r, uint64_t h, uint64_t now, int give_back,
                      uint64_t *wait_ns)
{
    struct rl_group *g = &r->st->groups[(h >> 7) & r->st->gmask];
    int slot = -1, free_slot = -1, oldest = 0, ok = 1;
    group_lock(g);
    for (int i = 0; i < GROUP_SLOTS; i++) {
        if (g->h[i] == h) {
            slot = i;
            break;
        }
        if (free_slot < 0 && (g->h[i] == 0 || g->tat[i] <= now))
            free_slot = i;
        if (g->tat[i] < g->tat[oldest])
            oldest = i;
    }
    if (give_back) {
        if (slot >= 0 && g->tat[slot] >= r->t_ns)
            g->tat[slot] -= r->t_ns;
        group_unlock(g);
        return 1;
    }
    if (slot < 0) {
        slot = free_slot >= 0 ? free_slot : oldest;
        g->h[slot] = h;
        g->tat[slot] = 0;
    }
    ok = gcra(&g->tat[slot], now, r, wait_ns);
    group_unlock(g);
    return ok;
}

static int rule_holds(const struct rl_rule *r, const struct attr_src *src)
{
    for (size_t c = 0; c < r->nconds; c++)
        if (!match_eval(r->conds[c], src))
            return 0;
    return 1;
}

/* The key's hash for src (values borrowed only during the call). */
static uint64_t rule_key(const struct rl_rule *r, const struct attr_src *src)
{
    attr_val v[16];
    int n = attr_get(src, &r->key, v, 16);
    return key_hash(v, n > 16 ? 16 : n);
}

static void give_back(struct rl_rule *r, const struct attr_src *src)
{
    if (r->st->groups) {
        uint64_t unused;
        take_keyed(r, rule_key(r, src), 0, 1, &unused);
    } else {
        atomic_fetch_sub_explicit(&r->st->tat, r->t_ns, memory_order_relaxed);
    }
}

/* Borrows l and src. */
int rl_check(const struct rl_list *l, const struct attr_src *src, uint64_t now_ns,
             uint64_t *retry_ms)
{
    if (!l)
        return -1;
    for (size_t i = 0; i < l->nrules; i++) {
        struct rl_rule *r = l->rules[i];
        if (!rule_holds(r, src))
            continue;
        uint64_t wait = 0;
        int ok = r->st->groups ? take_keyed(r, rule_key(r, src), now_ns, 0, &wait)
                           : take_shared(r, now_ns, &wait);
        if (ok)
            continue;
        for (size_t j = 0; j < i; j++)
            if (rule_holds(l->rules[j], src))
                give_back(l->rules[j], src);
        if (retry_ms)
            *retry_ms = (wait + 999999) / 1000000;
        for (size_t k = 0; k < l->nlimits; k++)
            if (l->limits[k] == r->limit)
                return (int)k;
        return 0;
    }
    return -1;
}
