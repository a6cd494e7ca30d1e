/* lb.c - load balancing policies and passive outlier detection.
 *
 * Eligibility. A pick considers endpoints in tiers and uses the first tier
 * that is not empty: (1) weight > 0, not ejected, not excluded; (2) the same
 * ignoring `exclude` (a retry may land on the host that just failed rather
 * than on an ejected one); (3) ignoring ejection but honouring exclude;
 * (4) any endpoint with weight > 0. Tier 3 and 4 are a last resort: the
 * ejection cap below always leaves one endpoint in, but the proxy must never
 * fail a request just because our bookkeeping says everything is bad.
 *
 * Outlier detection. An endpoint is ejected after `consecutive_5xx` 5xx in
 * a row, or `consecutive_failures` connect failures/resets/timeouts in a row
 * (0 disables either). Only LB_OK breaks a streak; a 5xx does not reset the
 * failure streak nor the reverse, since neither is a sign of health. The
 * ejection lasts base_ejection_ms doubled per earlier ejection (1, 2, 4, 8,
 * then 10x as a cap, like Envoy's default 300s max for a 30s base); a host
 * that stays in for a whole base period is forgiven one level. At most
 * max_ejection_percent of the endpoints (rounded down, and never all of them)
 * are out at once; when the cap is reached the streak is kept, so the host
 * is ejected on its next failure once a slot frees up. Results of attempts
 * that finish while their host is ejected are ignored by the detector.
 * Expiry is lazy: a pick or a result sweeps the hosts once the earliest
 * ejection has ended.
 *
 * Latency estimate (least_request). Peak-EWMA in the spirit of Finagle and
 * Linkerd, with one change: an idle estimate decays towards the cluster's
 * typical latency instead of towards zero. Decaying to zero makes an idle
 * host look infinitely fast, and P2C then sends it a burst of requests until
 * the first answer comes back; decaying to the mean just makes it average.
 *   - read at time t: mean + (ewma - mean) * exp(-(t - stamp) / tau)
 *   - a sample above the current read value replaces it (peak: react at once
 *     to a slow host); a lower one is blended in with the same time weight,
 *     so the estimate moves on a time scale of tau whatever the request rate
 *   - failures count as max(latency, 4 * mean) so a host that fails fast does
 *     not attract traffic; the mean itself only learns from LB_OK samples
 *   - a host never observed reads as the mean (neutral), so new hosts get
 *     their share right away.
 * The score is (active + 1) * estimate, lower wins.
 *
 * Ring (consistent_hash). Weights are divided by their gcd, then each unit
 * gets 160 virtual nodes (at most 65536 entries in all; bigger weight sums are
 * scaled down, each host keeping at least one node). Node positions derive
 * from the endpoint address, not its index or the seed, so every worker and
 * every reload with the same addresses agree on where a key goes. */
#include "proxy/lb.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define LB_MAX_HOSTS (1 << 20)
#define LB_RING_VNODES 160u
#define LB_RING_MAX 65536u
#define LB_EWMA_TAU_MS 10000.0
#define LB_DEFAULT_RTT_US 1000.0    /* neutral estimate before any sample; only ratios matter */
#define LB_FAIL_PENALTY 4.0
#define LB_MEAN_WEIGHT (1.0 / 16)   /* per-sample weight of the cluster mean */
#define LB_EJECT_MAX_MULT 10u
#define LB_RAND_TRIES 8
#define LB_RR_WARMUP_MAX 128u       /* random start of the weighted schedule, see lb_new */

/* Hash constants: arbitrary odd 64-bit values with balanced bits. */
#define LB_K0 0x83c3f90864e6e9edULL
#define LB_K1 0x19f0aacc8aa7a9d3ULL
#define LB_K2 0x963b4cc7478ddd57ULL
#define LB_K3 0xaae2ef183fa3a409ULL
#define LB_GOLDEN 0x9e3779b97f4a7c15ULL

struct lb_host {
    uint32_t weight;
    int active;
    uint32_t cons_5xx;
    uint32_t cons_fail;
    uint32_t eject_level;       /* earlier ejections, for the backoff */
    bool ejected;
    bool observed;              /* ewma_us holds a real sample */
    uint64_t ejected_until;     /* end of the current or the last ejection */
    double ewma_us;
    uint64_t stamp_ms;          /* time of the last sample */
    int64_t rr_current;         /* smooth weighted round robin credit */
};

struct lb_vnode {
    uint64_t pos;
    uint32_t host;
};

/* Which endpoints a pick may return (see the tiers above). */
struct lb_filter {
    bool skip_ejected;
    uint64_t exclude;
    int skip;                   /* one more index to avoid (P2C's second draw), or -1 */
};

struct lb {
    enum cfg_lb policy;
    struct cfg_outlier outlier;
    uint64_t rng;
    int n;
    int npickable;              /* endpoints with weight > 0 */
    int nejected;               /* all of them have weight > 0 */
    uint64_t next_expiry;       /* earliest ejected_until of an ejected host */
    uint32_t ejections;
    bool uniform;               /* all weights > 0 are equal: round robin is a cursor */
    int rr_cursor;
    uint64_t total_weight;
    uint64_t *cum;              /* cum[i] = weight[0] + ... + weight[i] */
    struct lb_vnode *ring;
    size_t nring;
    bool have_mean;
    double mean_us;             /* typical latency of the cluster (LB_OK samples) */
    struct lb_host hosts[];
};

/* ---- randomness and hashing ---- */

/* splitmix64's finaliser: a bijection with full avalanche. */
static uint64_t lb_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* lb is borrowed; advances its generator (splitmix64). */
static uint64_t lb_rand(struct lb *lb) {
    lb->rng += LB_GOLDEN;
    return lb_mix64(lb->rng);
}

/* 64x64 -> 128 multiply folded to 64 bits: the core mixing step. */
static inline uint64_t lb_fold_mul(uint64_t a, uint64_t b) {
#ifdef __SIZEOF_INT128__
    __extension__ typedef unsigned __int128 u128;
    u128 r = (u128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
    uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
    uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;
    uint64_t lo = (mid << 32) | (uint32_t)ll;
    uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return lo ^ hi;
#endif
}

/* p is borrowed, read only; n <= 8 bytes, zero-padded, host byte order. */
static inline uint64_t lb_read(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    memcpy(&v, p, n);
    return v;
}

/* p is borrowed, read only. */
uint64_t lb_hash_bytes(const void *p, size_t len) {
    const unsigned char *s = p;
    size_t n = len;
    uint64_t h = lb_fold_mul((uint64_t)len ^ LB_K0, LB_K1);

    /* 16 bytes per step: each word is keyed, then multiplied with the other
     * so every input bit reaches every output bit of the product. */
    while (n > 16) {
        h = lb_fold_mul(lb_read(s, 8) ^ LB_K2, lb_read(s + 8, 8) ^ h ^ LB_K3);
        s += 16;
        n -= 16;
    }
    uint64_t a = 0, b = 0;
    if (n > 8) {
        a = lb_read(s, 8);
        b = lb_read(s + 8, n - 8);
    } else if (n > 0) {
        a = lb_read(s, n);
    }
    h = lb_fold_mul(a ^ LB_K1, b ^ h ^ LB_K2);
    return lb_mix64(h ^ len);
}

/* ---- eligibility and ejection ---- */

/* lb and f are borrowed. */
static inline bool lb_eligible(const struct lb *lb, int i, const struct lb_filter *f) {
    const struct lb_host *h = &lb->hosts[i];
    if (h->weight == 0 || i == f->skip)
        return false;
    if (f->skip_ejected && h->ejected)
        return false;
    return !(i < 64 && (f->exclude >> i & 1u));
}

/* lb is borrowed. Ends the ejections that are over: O(n), but only when one
 * has expired. */
static void lb_expire(struct lb *lb, uint64_t now) {
    if (lb->nejected == 0 || now < lb->next_expiry)
        return;
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < lb->n; i++) {
        struct lb_host *h = &lb->hosts[i];
        if (!h->ejected)
            continue;
        if (now >= h->ejected_until) {
            h->ejected = false;
            lb->nejected--;
        } else if (h->ejected_until < next) {
            next = h->ejected_until;
        }
    }
    lb->next_expiry = next;
}

/* lb is borrowed. Ejects idx unless the cap or a zero base forbids it. */
static void lb_eject(struct lb *lb, int idx, uint64_t now) {
    struct lb_host *h = &lb->hosts[idx];
    const struct cfg_outlier *o = &lb->outlier;
    uint64_t pct = o->max_ejection_percent > 100 ? 100 : o->max_ejection_percent;
    int cap = (int)((uint64_t)lb->npickable * pct / 100);
    if (cap > lb->npickable - 1)
        cap = lb->npickable - 1;
    if (lb->nejected >= cap || o->base_ejection_ms == 0)
        return;

    if (h->eject_level > 0 && now > h->ejected_until) {
        uint64_t forgive = (now - h->ejected_until) / o->base_ejection_ms;
        h->eject_level = forgive >= h->eject_level ? 0 : h->eject_level - (uint32_t)forgive;
    }
    uint64_t mult = 1;
    for (uint32_t k = 0; k < h->eject_level && mult < LB_EJECT_MAX_MULT; k++)
        mult *= 2;
    if (mult > LB_EJECT_MAX_MULT)
        mult = LB_EJECT_MAX_MULT;
    uint64_t dur = o->base_ejection_ms > UINT64_MAX / mult ? UINT64_MAX : o->base_ejection_ms * mult;

    h->ejected = true;
    h->ejected_until = now > UINT64_MAX - dur ? UINT64_MAX : now + dur;
    if (h->eject_level < 64)
        h->eject_level++;
    h->cons_5xx = h->cons_fail = 0;
    lb->nejected++;
    lb->ejections++;
    if (h->ejected_until < lb->next_expiry)
        lb->next_expiry = h->ejected_until;
}

/* lb is borrowed, f is the caller's to fill. Picks the first non-empty tier
 * for this request; false if there is none. */
static bool lb_filter_for(const struct lb *lb, uint64_t exclude, struct lb_filter *f) {
    if (lb->n < 64)
        exclude &= (UINT64_C(1) << lb->n) - 1;
    int ex_all = 0, ex_healthy = 0;
    for (uint64_t m = exclude; m; m &= m - 1) {
        const struct lb_host *h = &lb->hosts[__builtin_ctzll(m)];
        if (h->weight == 0)
            continue;
        ex_all++;
        ex_healthy += !h->ejected;
    }
    int healthy = lb->npickable - lb->nejected;
    f->skip = -1;
    if (healthy - ex_healthy > 0) {
        f->skip_ejected = true, f->exclude = exclude;
    } else if (healthy > 0) {
        f->skip_ejected = true, f->exclude = 0;
    } else if (lb->npickable - ex_all > 0) {
        f->skip_ejected = false, f->exclude = exclude;
    } else if (lb->npickable > 0) {
        f->skip_ejected = false, f->exclude = 0;
    } else {
        return false;
    }
    return true;
}

/* ---- latency estimate ---- */

/* lb is borrowed. The estimate of a host without history. */
static double lb_neutral(const struct lb *lb) {
    return lb->have_mean ? lb->mean_us : LB_DEFAULT_RTT_US;
}

static double lb_decay(uint64_t from, uint64_t to) {
    return to > from ? exp(-(double)(to - from) / LB_EWMA_TAU_MS) : 1.0;
}

/* lb and h are borrowed. h's latency estimate at now, in microseconds. */
static double lb_estimate(const struct lb *lb, const struct lb_host *h, uint64_t now) {
    double neutral = lb_neutral(lb);
    if (!h->observed)
        return neutral;
    return neutral + (h->ewma_us - neutral) * lb_decay(h->stamp_ms, now);
}

/* lb and h are borrowed. Feeds one sample into h's estimate. */
static void lb_observe(struct lb *lb, struct lb_host *h, double sample, uint64_t now) {
    if (!h->observed) {
        h->observed = true;
        h->ewma_us = sample;
    } else {
        double cur = lb_estimate(lb, h, now);
        double w = lb_decay(h->stamp_ms, now);
        h->ewma_us = sample >= cur ? sample : cur * w + sample * (1.0 - w);
    }
    if (now > h->stamp_ms)
        h->stamp_ms = now;
}

/* lb is borrowed. P2C cost of host i: lower is better. */
static double lb_score(const struct lb *lb, int i, uint64_t now) {
    const struct lb_host *h = &lb->hosts[i];
    /* A floor of 1us keeps the active count meaningful when latencies are 0. */
    return (h->active + 1.0) * fmax(lb_estimate(lb, h, now), 1.0);
}

/* ---- policies ---- */

/* lb and f are borrowed. A weighted random eligible host, or -1. */
static int lb_pick_random(struct lb *lb, const struct lb_filter *f) {
    /* Weighted draw over all endpoints, retried a few times: cheap while
     * most endpoints are eligible, which is the common case. */
    for (int t = 0; t < LB_RAND_TRIES; t++) {
        uint64_t r = lb_rand(lb) % lb->total_weight;
        int lo = 0, hi = lb->n - 1;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (lb->cum[mid] > r)
                hi = mid;
            else
                lo = mid + 1;
        }
        if (lb_eligible(lb, lo, f))
            return lo;
    }
    uint64_t sum = 0;
    for (int i = 0; i < lb->n; i++)
        if (lb_eligible(lb, i, f))
            sum += lb->hosts[i].weight;
    if (sum == 0)
        return -1;
    uint64_t r = lb_rand(lb) % sum;
    for (int i = 0; i < lb->n; i++) {
        if (!lb_eligible(lb, i, f))
            continue;
        if (r < lb->hosts[i].weight)
            return i;
        r -= lb->hosts[i].weight;
    }
    return -1;
}

/* Smooth weighted round robin (as in nginx): every eligible host earns its
 * weight, the richest is picked and pays the total. Over sum(weights) picks
 * each host gets exactly its weight, spread out rather than in runs.
 * lb and f are borrowed. */
static int lb_pick_rr(struct lb *lb, const struct lb_filter *f) {
    if (lb->uniform) {
        for (int k = 0; k < lb->n; k++) {
            int i = lb->rr_cursor + k;
            if (i >= lb->n)
                i -= lb->n;
            if (lb_eligible(lb, i, f)) {
                lb->rr_cursor = i + 1 == lb->n ? 0 : i + 1;
                return i;
            }
        }
        return -1;
    }
    int64_t total = 0;
    int best = -1;
    for (int i = 0; i < lb->n; i++) {
        if (!lb_eligible(lb, i, f))
            continue;
        struct lb_host *h = &lb->hosts[i];
        h->rr_current += h->weight;
        total += h->weight;
        if (best < 0 || h->rr_current > lb->hosts[best].rr_current)
            best = i;
    }
    if (best >= 0)
        lb->hosts[best].rr_current -= total;
    return best;
}

/* lb and f are borrowed. The better of two distinct random hosts. */
static int lb_pick_p2c(struct lb *lb, const struct lb_filter *f, uint64_t now) {
    int a = lb_pick_random(lb, f);
    if (a < 0)
        return -1;
    struct lb_filter g = *f;
    g.skip = a;
    int b = lb_pick_random(lb, &g);
    if (b < 0)
        return a;
    return lb_score(lb, b, now) < lb_score(lb, a, now) ? b : a;
}

/* The first eligible host clockwise from the key: a host that is skipped
 * only gives away its own keys, each to its successor on the ring.
 * lb and f are borrowed. */
static int lb_pick_ring(struct lb *lb, uint64_t hash, const struct lb_filter *f) {
    uint64_t key = lb_mix64(hash);
    size_t lo = 0, hi = lb->nring;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lb->ring[mid].pos < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < lb->nring; k++) {
        size_t j = lo + k;
        if (j >= lb->nring)
            j -= lb->nring;
        if (lb_eligible(lb, (int)lb->ring[j].host, f))
            return (int)lb->ring[j].host;
    }
    return lb_pick_random(lb, f);
}

/* lb is borrowed. */
int lb_pick(struct lb *lb, uint64_t hash, int have_hash, uint64_t exclude, uint64_t now_ms) {
    if (!lb || lb->npickable == 0)
        return -1;
    lb_expire(lb, now_ms);
    struct lb_filter f;
    if (!lb_filter_for(lb, exclude, &f))
        return -1;
    switch (lb->policy) {
    case CFG_LB_LEAST_REQUEST:
        return lb_pick_p2c(lb, &f, now_ms);
    case CFG_LB_HASH:
        if (have_hash && lb->nring > 0)
            return lb_pick_ring(lb, hash, &f);
        return lb_pick_random(lb, &f);
    default:
        return lb_pick_rr(lb, &f);
    }
}

/* ---- results ---- */

/* lb is borrowed. */
void lb_request_start(struct lb *lb, int idx) {
    if (lb && idx >= 0 && idx < lb->n)
        lb->hosts[idx].active++;
}

/* lb is borrowed. */
void lb_request_end(struct lb *lb, int idx, int kind, uint64_t latency_us, uint64_t now_ms) {
    if (!lb || idx < 0 || idx >= lb->n)
        return;
    struct lb_host *h = &lb->hosts[idx];
    if (h->active > 0)
        h->active--;
    lb_expire(lb, now_ms);

    double lat = (double)latency_us;
    if (kind == LB_OK) {
        if (lb->policy == CFG_LB_LEAST_REQUEST) {
            lb->mean_us = lb->have_mean ? lb->mean_us + (lat - lb->mean_us) * LB_MEAN_WEIGHT : lat;
            lb->have_mean = true;
            lb_observe(lb, h, lat, now_ms);
        }
        h->cons_5xx = h->cons_fail = 0;
        return;
    }
    if (lb->policy == CFG_LB_LEAST_REQUEST)
        lb_observe(lb, h, fmax(lat, LB_FAIL_PENALTY * lb_neutral(lb)), now_ms);
    if (h->ejected || h->weight == 0)
        return;

    const struct cfg_outlier *o = &lb->outlier;
    bool trip;
    if (kind == LB_5XX) {
        h->cons_5xx += h->cons_5xx < UINT32_MAX;
        trip = o->consecutive_5xx > 0 && h->cons_5xx >= o->consecutive_5xx;
    } else {
        h->cons_fail += h->cons_fail < UINT32_MAX;
        trip = o->consecutive_failures > 0 && h->cons_fail >= o->consecutive_failures;
    }
    if (trip)
        lb_eject(lb, idx, now_ms);
}

/* ---- construction ---- */

/* a and b are borrowed ring entries (qsort). */
static int lb_vnode_cmp(const void *a, const void *b) {
    const struct lb_vnode *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return x->host < y->host ? -1 : x->host > y->host;
}

static uint64_t lb_gcd(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* lb is borrowed and gets a ring it owns; c is only read. 0, or -1 when out
 * of memory. */
static int lb_build_ring(struct lb *lb, const struct cfg_cluster *c) {
    uint64_t g = 0, units = 0;
    for (int i = 0; i < lb->n; i++)
        if (lb->hosts[i].weight)
            g = lb_gcd(g, lb->hosts[i].weight);
    if (g == 0)
        return 0;
    for (int i = 0; i < lb->n; i++)
        units += lb->hosts[i].weight / g;
    bool scale = units > LB_RING_MAX / LB_RING_VNODES;

    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        for (int i = 0; i < lb->n; i++) {
            uint64_t w = lb->hosts[i].weight / g;
            if (w == 0)
                continue;
            uint64_t v = scale ? w * LB_RING_MAX / units : w * LB_RING_VNODES;
            if (v == 0)
                v = 1;
            if (pass == 0) {
                total += v;
                continue;
            }
            const char *addr = c->endpoints[i].address;
            uint64_t base = addr ? lb_hash_bytes(addr, strlen(addr)) : lb_mix64((uint64_t)i + 1);
            for (uint64_t j = 1; j <= v; j++) {
                lb->ring[k].pos = lb_mix64(base + j * LB_GOLDEN);
                lb->ring[k].host = (uint32_t)i;
                k++;
            }
        }
        if (pass == 0) {
            lb->ring = malloc(total * sizeof *lb->ring);
            if (!lb->ring)
                return -1;
            lb->nring = total;
        }
    }
    qsort(lb->ring, lb->nring, sizeof *lb->ring, lb_vnode_cmp);
    return 0;
}

/* c is only read during the call; the caller owns the result (lb_free). */
struct lb *lb_new(const struct cfg_cluster *c, uint64_t seed) {
    if (!c || c->nendpoints > LB_MAX_HOSTS)
        return NULL;
    int n = (int)c->nendpoints;
    struct lb *lb = calloc(1, sizeof *lb + (size_t)n * sizeof lb->hosts[0]);
    if (!lb)
        return NULL;
    lb->cum = calloc(n ? (size_t)n : 1, sizeof *lb->cum);
    if (!lb->cum) {
        lb_free(lb);
        return NULL;
    }
    lb->policy = c->lb == CFG_LB_LEAST_REQUEST || c->lb == CFG_LB_HASH ? c->lb : CFG_LB_ROUND_ROBIN;
    lb->outlier = c->outlier;
    lb->rng = seed;
    lb->n = n;
    lb->next_expiry = UINT64_MAX;
    lb->uniform = true;
    uint32_t first = 0;
    for (int i = 0; i < n; i++) {
        uint32_t w = c->endpoints[i].weight;
        lb->hosts[i].weight = w;
        lb->total_weight += w;
        lb->cum[i] = lb->total_weight;
        if (w == 0)
            continue;
        lb->npickable++;
        if (first == 0)
            first = w;
        else if (w != first)
            lb->uniform = false;
    }
    if (lb->policy == CFG_LB_HASH && lb_build_ring(lb, c) < 0) {
        lb_free(lb);
        return NULL;
    }
    /* Every worker starts its round robin somewhere else, or they would all
     * send their first requests to endpoint 0 at the same moment. */
    if (n > 0)
        lb->rr_cursor = (int)(lb_rand(lb) % (uint64_t)n);
    if (lb->policy == CFG_LB_ROUND_ROBIN && !lb->uniform) {
        struct lb_filter all = {false, 0, -1};
        uint64_t span = lb->total_weight < LB_RR_WARMUP_MAX ? lb->total_weight : LB_RR_WARMUP_MAX;
        for (uint64_t k = lb_rand(lb) % span; k > 0; k--)
            lb_pick_rr(lb, &all);
    }
    return lb;
}

/* Takes lb (may be NULL) and frees everything it owns. */
void lb_free(struct lb *lb) {
    if (!lb)
        return;
    free(lb->ring);
    free(lb->cum);
    free(lb);
}

/* ---- accessors (lb is borrowed, NULL reads as empty) ---- */

int lb_size(const struct lb *lb) {
    return lb ? lb->n : 0;
}

int lb_is_ejected(const struct lb *lb, int idx, uint64_t now_ms) {
    if (!lb || idx < 0 || idx >= lb->n)
        return 0;
    const struct lb_host *h = &lb->hosts[idx];
    return h->ejected && now_ms < h->ejected_until;
}

/* lb is borrowed. */
void lb_uneject(struct lb *lb, int idx, uint64_t now_ms) {
    if (!lb || idx < 0 || idx >= lb->n || !lb->hosts[idx].ejected)
        return;
    struct lb_host *h = &lb->hosts[idx];
    h->ejected = false;
    if (h->ejected_until > now_ms)
        h->ejected_until = now_ms; /* the backoff's forgiveness counts from now */
    h->cons_5xx = h->cons_fail = 0;
    lb->nejected--;
}

uint32_t lb_ejections_total(const struct lb *lb) {
    return lb ? lb->ejections : 0;
}

int lb_active(const struct lb *lb, int idx) {
    return lb && idx >= 0 && idx < lb->n ? lb->hosts[idx].active : 0;
}
