/* test_lb.c - unit tests for the per-worker load balancer (src/proxy/lb.c).
 *
 * Clusters are filled by hand (no config loader involved). Randomised
 * policies run with fixed seeds and bounded iterations, and their checks
 * are either exact properties (a host that loses every comparison is never
 * picked) or loose statistical bounds, so they do not flake. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/lb.h"

#include "check.h"



#define MAXH 16

/* A cluster with its endpoints and addresses in one place. */
struct fixture {
    struct cfg_cluster c;
    struct cfg_endpoint ep[MAXH];
    char addr[MAXH][32];
};

/* fx is the caller's; weights is read during the call only. Endpoint i gets
 * the address 10.0.0.(i+1):8080 and Envoy-like outlier defaults. */
static void fx_init(struct fixture *fx, enum cfg_lb policy, const uint32_t *weights, int n) {
    memset(fx, 0, sizeof *fx);
    for (int i = 0; i < n; i++) {
        snprintf(fx->addr[i], sizeof fx->addr[i], "10.0.0.%d:8080", i + 1);
        fx->ep[i].address = fx->addr[i];
        fx->ep[i].weight = weights[i];
    }
    fx->c.name = "test";
    fx->c.endpoints = fx->ep;
    fx->c.nendpoints = (size_t)n;
    fx->c.lb = policy;
    fx->c.outlier.consecutive_5xx = 5;
    fx->c.outlier.consecutive_failures = 5;
    fx->c.outlier.base_ejection_ms = 30000;
    fx->c.outlier.max_ejection_percent = 50;
}

/* lb is borrowed. A pick without hash and without exclusions. */
static int pick(struct lb *lb, uint64_t now) {
    return lb_pick(lb, 0, 0, 0, now);
}

/* lb is borrowed. Reports `count` results of `kind` on idx at time now. */
static void fail_n(struct lb *lb, int idx, int kind, int count, uint64_t now) {
    for (int i = 0; i < count; i++) {
        lb_request_start(lb, idx);
        lb_request_end(lb, idx, kind, 1000, now);
    }
}

/* The hash the proxy would compute for the attribute value "user-<k>". */
static uint64_t key_hash(int k) {
    char key[32];
    int len = snprintf(key, sizeof key, "user-%d", k);
    return lb_hash_bytes(key, (size_t)len);
}

/* ---- round robin ---- */

static void test_rr_exact_counts(void) {
    const uint32_t w[] = {5, 1, 1, 3};
    const int total = 10;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct fixture fx;
        fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 4);
        struct lb *lb = lb_new(&fx.c, seed);
        CHECK(lb != NULL);
        /* Every window of one full cycle holds each host exactly weight times. */
        int ok = 1;
        for (int cycle = 0; cycle < 5; cycle++) {
            int cnt[4] = {0};
            for (int k = 0; k < total; k++) {
                int i = pick(lb, 0);
                if (i < 0 || i > 3)
                    ok = 0;
                else
                    cnt[i]++;
            }
            for (int i = 0; i < 4; i++)
                ok &= cnt[i] == (int)w[i];
        }
        CHECK(ok);
        lb_free(lb);
    }
}

static void test_rr_smooth_equal(void) {
    const uint32_t w[] = {1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 3);
    struct lb *lb = lb_new(&fx.c, 42);
    int cnt[3] = {0}, prev = -1, repeats = 0;
    for (int k = 0; k < 300; k++) {
        int i = pick(lb, 0);
        CHECK(i >= 0 && i < 3);
        if (i < 0)
            break;
        repeats += i == prev;
        prev = i;
        cnt[i]++;
    }
    CHECK(repeats == 0);
    CHECK(cnt[0] == 100 && cnt[1] == 100 && cnt[2] == 100);
    lb_free(lb);
}

/* Longest run of one host over many picks. lb is borrowed. */
static int longest_run(struct lb *lb, int picks, int *who) {
    int prev = -1, run = 0, best = 0;
    for (int k = 0; k < picks; k++) {
        int i = pick(lb, 0);
        run = i == prev ? run + 1 : 1;
        prev = i;
        if (run > best) {
            best = run;
            *who = i;
        }
    }
    return best;
}

static void test_rr_smooth_weighted(void) {
    const uint32_t w21[] = {2, 1};
    const uint32_t w511[] = {5, 1, 1};
    struct fixture fx;
    int who = -1;

    fx_init(&fx, CFG_LB_ROUND_ROBIN, w21, 2);
    struct lb *lb = lb_new(&fx.c, 7);
    CHECK(longest_run(lb, 300, &who) <= 2);
    lb_free(lb);

    /* 5:1:1 interleaves as a a b a c a a: never the five in one block. */
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w511, 3);
    lb = lb_new(&fx.c, 7);
    CHECK(longest_run(lb, 700, &who) <= 4);
    lb_free(lb);
}

static void test_rr_workers_start_apart(void) {
    const uint32_t w[] = {1, 1, 1, 1, 1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 8);
    int seen[8] = {0}, distinct = 0;
    for (uint64_t seed = 0; seed < 16; seed++) {
        struct lb *lb = lb_new(&fx.c, seed * 7919 + 1);
        int i = pick(lb, 0);
        if (i >= 0 && !seen[i]++)
            distinct++;
        lb_free(lb);
    }
    CHECK(distinct >= 3);
}

/* ---- weights of zero, empty clusters ---- */

static void test_weight_zero(void) {
    const uint32_t w[] = {2, 0, 1, 0};
    const enum cfg_lb policies[] = {CFG_LB_ROUND_ROBIN, CFG_LB_LEAST_REQUEST, CFG_LB_HASH};
    for (int p = 0; p < 3; p++) {
        struct fixture fx;
        fx_init(&fx, policies[p], w, 4);
        struct lb *lb = lb_new(&fx.c, 3);
        int cnt[4] = {0}, bad = 0;
        for (int k = 0; k < 3000; k++) {
            int i = lb_pick(lb, key_hash(k), k & 1, 0, 0);
            if (i < 0 || i > 3)
                bad++;
            else
                cnt[i]++;
        }
        CHECK(bad == 0);
        CHECK(cnt[1] == 0 && cnt[3] == 0);
        CHECK(cnt[0] > 0 && cnt[2] > 0);
        /* Excluding every host with a weight still never yields a weight-0 one. */
        int i = lb_pick(lb, 0, 0, 0x5, 0);
        CHECK(i == 0 || i == 2);
        lb_free(lb);
    }
}

static void test_empty(void) {
    const uint32_t zero[] = {0, 0, 0};
    const enum cfg_lb policies[] = {CFG_LB_ROUND_ROBIN, CFG_LB_LEAST_REQUEST, CFG_LB_HASH};
    for (int p = 0; p < 3; p++) {
        struct fixture fx;
        fx_init(&fx, policies[p], zero, 3);
        struct lb *lb = lb_new(&fx.c, 1);
        CHECK(lb != NULL);
        CHECK(lb_size(lb) == 3);
        CHECK(lb_pick(lb, 123, 1, 0, 0) == -1);
        lb_free(lb);

        fx_init(&fx, policies[p], zero, 0);
        lb = lb_new(&fx.c, 1);
        CHECK(lb != NULL);
        CHECK(lb_size(lb) == 0);
        CHECK(lb_pick(lb, 123, 1, 0, 0) == -1);
        lb_request_start(lb, 0);
        lb_request_end(lb, 0, LB_5XX, 1, 0);
        CHECK(lb_active(lb, 0) == 0);
        lb_free(lb);
    }
    CHECK(lb_new(NULL, 1) == NULL);
    lb_free(NULL);
}

/* ---- least request ---- */

static void test_p2c_fewer_active(void) {
    const uint32_t w[] = {1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 3);
    struct lb *lb = lb_new(&fx.c, 99);
    for (int k = 0; k < 8; k++)
        lb_request_start(lb, 0);
    CHECK(lb_active(lb, 0) == 8);
    int cnt[3] = {0};
    for (int k = 0; k < 3000; k++) {
        int i = pick(lb, 0);
        if (i >= 0)
            cnt[i]++;
    }
    /* Host 0 is always compared with a less loaded host and always loses. */
    CHECK(cnt[0] == 0);
    CHECK(cnt[1] > 1200 && cnt[2] > 1200);
    lb_free(lb);

    /* Two hosts: the less loaded one wins every time, as the load moves. */
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 2);
    lb = lb_new(&fx.c, 5);
    int ok = 1;
    for (int k = 0; k < 200; k++) {
        int i = pick(lb, 0);
        int expect = lb_active(lb, 0) < lb_active(lb, 1) ? 0 : lb_active(lb, 1) < lb_active(lb, 0) ? 1 : i;
        ok &= i == expect;
        lb_request_start(lb, i);
    }
    CHECK(ok);
    CHECK(lb_active(lb, 0) == 100 && lb_active(lb, 1) == 100);
    lb_free(lb);
}

static void test_p2c_lower_latency(void) {
    const uint32_t w[] = {1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 4);
    struct lb *lb = lb_new(&fx.c, 11);
    const uint64_t lat[] = {100000, 10000, 1000, 1000};
    for (int r = 0; r < 5; r++)
        for (int i = 0; i < 4; i++) {
            lb_request_start(lb, i);
            lb_request_end(lb, i, LB_OK, lat[i], 1000);
        }
    int cnt[4] = {0};
    for (int k = 0; k < 4000; k++) {
        int i = pick(lb, 1000);
        if (i >= 0)
            cnt[i]++;
    }
    CHECK(cnt[0] == 0);                      /* slowest loses every comparison */
    CHECK(cnt[1] > 0 && cnt[1] < 1200);      /* wins only against host 0: ~1/6 */
    CHECK(cnt[2] > cnt[1] && cnt[3] > cnt[1]);
    CHECK(cnt[2] > 1100 && cnt[3] > 1100);
    lb_free(lb);
}

static void test_p2c_new_host_neutral(void) {
    const uint32_t w[] = {1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 3);
    struct lb *lb = lb_new(&fx.c, 21);
    /* Hosts 0 and 1 have history, host 2 (just added) has none. */
    for (int r = 0; r < 50; r++)
        for (int i = 0; i < 2; i++) {
            lb_request_start(lb, i);
            lb_request_end(lb, i, LB_OK, 2000 + (uint64_t)(r % 3) * 100, 5000);
        }
    int cnt[3] = {0};
    for (int k = 0; k < 3000; k++) {
        int i = pick(lb, 5000);
        if (i >= 0)
            cnt[i]++;
    }
    CHECK(cnt[2] > 600);
    lb_free(lb);
}

static void test_p2c_decay(void) {
    const uint32_t w[] = {1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 2);
    struct lb *lb = lb_new(&fx.c, 8);
    lb_request_start(lb, 1);
    lb_request_end(lb, 1, LB_OK, 1000, 0);
    lb_request_start(lb, 0);
    lb_request_end(lb, 0, LB_OK, 100000, 0);
    lb_request_start(lb, 1); /* host 1 now has one request in flight */
    /* Right after the slow answer host 0 costs far more than a busy host 1 ... */
    CHECK(pick(lb, 0) == 1);
    CHECK(pick(lb, 1000) == 1);
    /* ... but idle, its estimate decays back towards the cluster's typical
     * latency, and then the idle host beats the busy one. */
    CHECK(pick(lb, 100000) == 0);
    lb_free(lb);
}

static void test_p2c_fast_failures_penalised(void) {
    const uint32_t w[] = {1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 2);
    struct lb *lb = lb_new(&fx.c, 8);
    for (int r = 0; r < 10; r++)
        for (int i = 0; i < 2; i++) {
            lb_request_start(lb, i);
            lb_request_end(lb, i, LB_OK, 1000, 10);
        }
    /* Host 0 answers 503 in 50us: it must not look like the fastest host. */
    lb_request_start(lb, 0);
    lb_request_end(lb, 0, LB_5XX, 50, 20);
    int ok = 1;
    for (int k = 0; k < 50; k++)
        ok &= pick(lb, 20) == 1;
    CHECK(ok);
    lb_free(lb);
}

static void test_p2c_weighted(void) {
    const uint32_t w[] = {3, 1, 0};
    struct fixture fx;
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 3);
    struct lb *lb = lb_new(&fx.c, 77);
    /* Equal scores: the first draw wins ties, so traffic follows the weights. */
    int cnt[3] = {0};
    for (int k = 0; k < 4000; k++) {
        int i = pick(lb, 0);
        if (i >= 0)
            cnt[i]++;
    }
    CHECK(cnt[2] == 0);
    CHECK(cnt[0] > 2700 && cnt[0] < 3300);
    lb_free(lb);
}

/* ---- outlier detection ---- */

static void test_eject_5xx(void) {
    const uint32_t w[] = {1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 4);
    fx.c.outlier.consecutive_5xx = 3;
    fx.c.outlier.base_ejection_ms = 1000;
    struct lb *lb = lb_new(&fx.c, 1);

    /* Two 5xx, an OK, two more: the OK broke the streak. */
    fail_n(lb, 1, LB_5XX, 2, 100);
    fail_n(lb, 1, LB_OK, 1, 100);
    fail_n(lb, 1, LB_5XX, 2, 100);
    CHECK(!lb_is_ejected(lb, 1, 100));
    CHECK(lb_ejections_total(lb) == 0);

    fail_n(lb, 1, LB_5XX, 1, 100); /* third in a row */
    CHECK(lb_is_ejected(lb, 1, 100));
    CHECK(lb_ejections_total(lb) == 1);
    CHECK(lb_active(lb, 1) == 0);

    int hit = 0;
    for (int k = 0; k < 300; k++)
        hit += pick(lb, 500) == 1;
    CHECK(hit == 0);
    CHECK(lb_is_ejected(lb, 1, 1099));

    /* Back after base_ejection_ms. */
    CHECK(!lb_is_ejected(lb, 1, 1100));
    hit = 0;
    for (int k = 0; k < 40; k++)
        hit += pick(lb, 1100) == 1;
    CHECK(hit == 10);

    /* Ejected again soon after: twice as long (1200 + 2000). */
    fail_n(lb, 1, LB_5XX, 3, 1200);
    CHECK(lb_is_ejected(lb, 1, 3199));
    CHECK(!lb_is_ejected(lb, 1, 3200));
    CHECK(lb_ejections_total(lb) == 2);
    lb_free(lb);
}

static void test_eject_backoff_cap_and_forgiveness(void) {
    const uint32_t w[] = {1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 2);
    fx.c.outlier.consecutive_5xx = 1;
    fx.c.outlier.base_ejection_ms = 100;
    struct lb *lb = lb_new(&fx.c, 1);

    /* Re-ejected the moment it returns: 1, 2, 4, 8, then capped at 10x. */
    const uint64_t expect[] = {100, 200, 400, 800, 1000, 1000, 1000};
    uint64_t now = 0;
    int ok = 1;
    for (int k = 0; k < 7; k++) {
        fail_n(lb, 0, LB_5XX, 1, now);
        ok &= lb_is_ejected(lb, 0, now + expect[k] - 1) && !lb_is_ejected(lb, 0, now + expect[k]);
        now += expect[k];
        lb_pick(lb, 0, 0, 0, now); /* lets the balancer notice the expiry */
    }
    CHECK(ok);
    CHECK(lb_ejections_total(lb) == 7);

    /* Healthy for a long time: the backoff is forgiven, back to the base. */
    now += 100000;
    fail_n(lb, 0, LB_5XX, 1, now);
    CHECK(lb_is_ejected(lb, 0, now + 99));
    CHECK(!lb_is_ejected(lb, 0, now + 100));
    lb_free(lb);
}

static void test_eject_failures(void) {
    const uint32_t w[] = {1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 4);
    fx.c.outlier.consecutive_failures = 3;
    fx.c.outlier.consecutive_5xx = 0; /* disabled */
    struct lb *lb = lb_new(&fx.c, 1);

    fail_n(lb, 2, LB_5XX, 20, 10);
    CHECK(!lb_is_ejected(lb, 2, 10));

    fail_n(lb, 2, LB_CONNECT_FAIL, 1, 10);
    fail_n(lb, 2, LB_RESET, 1, 10);
    fail_n(lb, 2, LB_OK, 1, 10);
    fail_n(lb, 2, LB_TIMEOUT, 1, 10);
    fail_n(lb, 2, LB_CONNECT_FAIL, 1, 10);
    CHECK(!lb_is_ejected(lb, 2, 10));
    fail_n(lb, 2, LB_RESET, 1, 10);
    CHECK(lb_is_ejected(lb, 2, 10));
    CHECK(lb_is_ejected(lb, 2, 30009));
    CHECK(!lb_is_ejected(lb, 2, 30010));

    int hit = 0;
    for (int k = 0; k < 500; k++)
        hit += pick(lb, 20) == 2;
    CHECK(hit == 0);
    lb_free(lb);
}

static void test_eject_inflight_ignored(void) {
    const uint32_t w[] = {1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 4);
    fx.c.outlier.consecutive_5xx = 2;
    fx.c.outlier.base_ejection_ms = 1000;
    struct lb *lb = lb_new(&fx.c, 1);
    for (int k = 0; k < 5; k++)
        lb_request_start(lb, 0);
    for (int k = 0; k < 5; k++)
        lb_request_end(lb, 0, LB_5XX, 10, 0);
    /* The late results neither extend the ejection nor count twice. */
    CHECK(lb_ejections_total(lb) == 1);
    CHECK(!lb_is_ejected(lb, 0, 1000));
    /* And the host comes back with a clean streak: one 5xx is not enough. */
    fail_n(lb, 0, LB_5XX, 1, 1000);
    CHECK(!lb_is_ejected(lb, 0, 1000));
    lb_free(lb);
}

static void test_max_ejection_percent(void) {
    uint32_t w[10];
    for (int i = 0; i < 10; i++)
        w[i] = 1;
    struct fixture fx;

    /* 4 hosts at 50%: two go out, the others stay whatever they do. */
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 4);
    struct lb *lb = lb_new(&fx.c, 1);
    for (int i = 0; i < 4; i++)
        fail_n(lb, i, LB_5XX, 5, 0);
    int out = 0;
    for (int i = 0; i < 4; i++)
        out += lb_is_ejected(lb, i, 0);
    CHECK(out == 2);
    CHECK(lb_ejections_total(lb) == 2);
    CHECK(lb_is_ejected(lb, 0, 0) && lb_is_ejected(lb, 1, 0));
    /* Host 2 kept its streak: once a slot frees, its next failure ejects it. */
    CHECK(lb_pick(lb, 0, 0, 0, 30000) >= 0);
    fail_n(lb, 2, LB_5XX, 1, 30000);
    CHECK(lb_is_ejected(lb, 2, 30000));
    lb_free(lb);

    /* 10 hosts at 25%: two. */
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 10);
    fx.c.outlier.max_ejection_percent = 25;
    lb = lb_new(&fx.c, 1);
    for (int i = 0; i < 10; i++)
        fail_n(lb, i, LB_CONNECT_FAIL, 5, 0);
    CHECK(lb_ejections_total(lb) == 2);
    lb_free(lb);

    /* 0% turns ejection off. */
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 4);
    fx.c.outlier.max_ejection_percent = 0;
    lb = lb_new(&fx.c, 1);
    fail_n(lb, 0, LB_5XX, 50, 0);
    CHECK(lb_ejections_total(lb) == 0);
    lb_free(lb);

    /* A single host is never ejected, even at 100%. */
    fx_init(&fx, CFG_LB_ROUND_ROBIN, w, 1);
    fx.c.outlier.max_ejection_percent = 100;
    lb = lb_new(&fx.c, 1);
    fail_n(lb, 0, LB_5XX, 50, 0);
    CHECK(lb_ejections_total(lb) == 0);
    CHECK(pick(lb, 0) == 0);
    lb_free(lb);
}

static void test_all_failing_still_picks(void) {
    const uint32_t w[] = {1, 2, 1};
    const enum cfg_lb policies[] = {CFG_LB_ROUND_ROBIN, CFG_LB_LEAST_REQUEST, CFG_LB_HASH};
    for (int p = 0; p < 3; p++) {
        struct fixture fx;
        fx_init(&fx, policies[p], w, 3);
        fx.c.outlier.max_ejection_percent = 100;
        struct lb *lb = lb_new(&fx.c, 4);
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < 3; i++)
                fail_n(lb, i, LB_5XX, 5, 0);
        /* All three fail; two are ejected, the last one stays in. */
        CHECK(lb_ejections_total(lb) == 2);
        CHECK(!lb_is_ejected(lb, 2, 0));
        int ok = 1;
        for (int k = 0; k < 200; k++) {
            ok &= lb_pick(lb, key_hash(k), 1, 0, 10) == 2;
            ok &= lb_pick(lb, 0, 0, 0, 10) == 2;
            ok &= lb_pick(lb, 0, 0, 1u << 2, 10) == 2; /* excluded, but all that is left */
        }
        CHECK(ok);
        lb_free(lb);
    }
}

/* ---- exclude ---- */

static void test_exclude(void) {
    const uint32_t w[] = {1, 1, 1, 1};
    const enum cfg_lb policies[] = {CFG_LB_ROUND_ROBIN, CFG_LB_LEAST_REQUEST, CFG_LB_HASH};
    for (int p = 0; p < 3; p++) {
        struct fixture fx;
        fx_init(&fx, policies[p], w, 4);
        fx.c.outlier.consecutive_5xx = 1;
        struct lb *lb = lb_new(&fx.c, 9);
        int bad = 0, cnt[4] = {0};
        for (int k = 0; k < 1000; k++) {
            int i = lb_pick(lb, key_hash(k), 1, 0x1 | 0x4, 0);
            if (i != 1 && i != 3)
                bad++;
            else
                cnt[i]++;
        }
        CHECK(bad == 0);
        CHECK(cnt[1] > 0 && cnt[3] > 0);

        /* Every host excluded (and bits past the end): exclude is ignored. */
        int seen = 0;
        for (int k = 0; k < 400; k++) {
            int i = lb_pick(lb, key_hash(k), 1, ~UINT64_C(0), 0);
            if (i >= 0 && i < 4)
                seen |= 1 << i;
        }
        CHECK(seen == 0xf);

        /* Host 1 ejected, 0/2/3 excluded: a healthy excluded host beats the
         * ejected one. */
        fail_n(lb, 1, LB_5XX, 1, 0);
        CHECK(lb_is_ejected(lb, 1, 0));
        bad = 0;
        for (int k = 0; k < 400; k++) {
            int i = lb_pick(lb, key_hash(k), 1, 0xd, 0);
            bad += i == 1 || i < 0;
        }
        CHECK(bad == 0);
        lb_free(lb);
    }
}

static void test_exclude_retry_on_hash(void) {
    const uint32_t w[] = {1, 1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_HASH, w, 5);
    struct lb *lb = lb_new(&fx.c, 1);
    int ok = 1;
    for (int k = 0; k < 500; k++) {
        uint64_t h = key_hash(k);
        int first = lb_pick(lb, h, 1, 0, 0);
        int retry = lb_pick(lb, h, 1, UINT64_C(1) << first, 0);
        int again = lb_pick(lb, h, 1, UINT64_C(1) << first, 0);
        ok &= first >= 0 && retry >= 0 && retry != first && retry == again;
    }
    CHECK(ok);
    lb_free(lb);
}

/* ---- consistent hash ---- */

#define NKEYS 10000

static void test_hash_stable(void) {
    const uint32_t w[] = {1, 1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_HASH, w, 5);
    struct lb *a = lb_new(&fx.c, 1);
    struct lb *b = lb_new(&fx.c, 0xdeadbeef); /* another worker */

    /* The same endpoints listed in reverse order (a reload that reordered). */
    struct fixture rev;
    fx_init(&rev, CFG_LB_HASH, w, 5);
    for (int i = 0; i < 5; i++)
        strcpy(rev.addr[i], fx.addr[4 - i]);
    struct lb *r = lb_new(&rev.c, 3);

    int same = 1, same_workers = 1, same_reordered = 1;
    for (int k = 0; k < NKEYS; k++) {
        uint64_t h = key_hash(k);
        int x = lb_pick(a, h, 1, 0, 0);
        same &= x == lb_pick(a, h, 1, 0, 0);
        same_workers &= x == lb_pick(b, h, 1, 0, 0);
        same_reordered &= x == 4 - lb_pick(r, h, 1, 0, 0);
    }
    CHECK(same);
    CHECK(same_workers);
    CHECK(same_reordered);
    lb_free(a);
    lb_free(b);
    lb_free(r);
}

static void test_hash_distribution(void) {
    const uint32_t w[] = {1, 1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_HASH, w, 5);
    struct lb *lb = lb_new(&fx.c, 1);
    int cnt[5] = {0};
    for (int k = 0; k < NKEYS; k++) {
        int i = lb_pick(lb, key_hash(k), 1, 0, 0);
        if (i >= 0)
            cnt[i]++;
    }
    for (int i = 0; i < 5; i++)
        CHECK(cnt[i] > 1400 && cnt[i] < 2600);
    lb_free(lb);

    /* Weights shape the ring: 2:1:1 gives host 0 about half of the keys. */
    const uint32_t w211[] = {2, 1, 1};
    fx_init(&fx, CFG_LB_HASH, w211, 3);
    lb = lb_new(&fx.c, 1);
    int c0 = 0;
    for (int k = 0; k < NKEYS; k++)
        c0 += lb_pick(lb, key_hash(k), 1, 0, 0) == 0;
    CHECK(c0 > 4000 && c0 < 6000);
    lb_free(lb);

    /* Large weights are reduced by their gcd and scaled to the ring cap. */
    const uint32_t big[] = {3000001, 1000000};
    fx_init(&fx, CFG_LB_HASH, big, 2);
    lb = lb_new(&fx.c, 1);
    c0 = 0;
    for (int k = 0; k < NKEYS; k++)
        c0 += lb_pick(lb, key_hash(k), 1, 0, 0) == 0;
    CHECK(c0 > 6500 && c0 < 8500);
    lb_free(lb);
}

static void test_hash_ejection_moves_few(void) {
    const uint32_t w[] = {1, 1, 1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_HASH, w, 5);
    fx.c.outlier.base_ejection_ms = 1000;
    struct lb *lb = lb_new(&fx.c, 1);
    static int before[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        before[k] = lb_pick(lb, key_hash(k), 1, 0, 0);

    fail_n(lb, 3, LB_5XX, 5, 0);
    CHECK(lb_is_ejected(lb, 3, 0));
    int moved = 0, moved_wrong = 0, to_ejected = 0;
    for (int k = 0; k < NKEYS; k++) {
        int i = lb_pick(lb, key_hash(k), 1, 0, 10);
        to_ejected += i == 3;
        if (i != before[k]) {
            moved++;
            moved_wrong += before[k] != 3;
        }
    }
    CHECK(to_ejected == 0);
    CHECK(moved_wrong == 0);
    CHECK(moved > 0 && moved < NKEYS * 30 / 100);

    /* When the ejection ends the keys go home. */
    int home = 1;
    for (int k = 0; k < NKEYS; k++)
        home &= lb_pick(lb, key_hash(k), 1, 0, 1000) == before[k];
    CHECK(home);
    lb_free(lb);
}

static void test_hash_without_key(void) {
    const uint32_t w[] = {1, 1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_HASH, w, 3);
    struct lb *lb = lb_new(&fx.c, 1);
    int cnt[3] = {0}, bad = 0;
    for (int k = 0; k < 3000; k++) {
        int i = lb_pick(lb, 12345, 0, 0, 0); /* hash ignored without have_hash */
        if (i < 0 || i > 2)
            bad++;
        else
            cnt[i]++;
    }
    CHECK(bad == 0);
    CHECK(cnt[0] > 700 && cnt[1] > 700 && cnt[2] > 700);
    lb_free(lb);
}

/* ---- hash function, counters ---- */

static int popcount64(uint64_t x) {
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

static void test_hash_bytes(void) {
    unsigned char buf[64];
    for (int i = 0; i < 64; i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    CHECK(lb_hash_bytes(buf, 40) == lb_hash_bytes(buf, 40));
    CHECK(lb_hash_bytes("", 0) == lb_hash_bytes(NULL, 0));

    /* Prefixes of every length hash differently (including zero padding). */
    unsigned char zeros[40] = {0};
    uint64_t seen[82];
    int nseen = 0, dup = 0;
    for (int len = 0; len <= 40; len++) {
        uint64_t h1 = lb_hash_bytes(buf, (size_t)len), h2 = lb_hash_bytes(zeros, (size_t)len);
        for (int j = 0; j < nseen; j++)
            dup += seen[j] == h1 || seen[j] == h2;
        seen[nseen++] = h1;
        seen[nseen++] = h2;
    }
    CHECK(dup == 0);

    /* Avalanche: flipping any one input bit flips about half the output. */
    const size_t lens[] = {3, 8, 13, 16, 24, 40};
    int ok = 1;
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        uint64_t base = lb_hash_bytes(buf, lens[l]);
        long total = 0;
        int bits = (int)lens[l] * 8;
        for (int b = 0; b < bits; b++) {
            buf[b / 8] ^= (unsigned char)(1u << (b % 8));
            int d = popcount64(base ^ lb_hash_bytes(buf, lens[l]));
            buf[b / 8] ^= (unsigned char)(1u << (b % 8));
            ok &= d >= 12 && d <= 52;
            total += d;
        }
        double avg = (double)total / bits;
        ok &= avg > 28 && avg < 36;
    }
    CHECK(ok);
}

static void test_active_counts(void) {
    const uint32_t w[] = {1, 1};
    struct fixture fx;
    fx_init(&fx, CFG_LB_LEAST_REQUEST, w, 2);
    struct lb *lb = lb_new(&fx.c, 1);
    lb_request_start(lb, 1);
    lb_request_start(lb, 1);
    CHECK(lb_active(lb, 1) == 2);
    lb_request_end(lb, 1, LB_OK, 10, 0);
    lb_request_end(lb, 1, LB_OK, 10, 0);
    lb_request_end(lb, 1, LB_OK, 10, 0); /* unmatched: stays at zero */
    CHECK(lb_active(lb, 1) == 0);
    lb_request_start(lb, -1);
    lb_request_start(lb, 2);
    lb_request_end(lb, 7, LB_5XX, 10, 0);
    CHECK(lb_active(lb, -1) == 0 && lb_active(lb, 2) == 0);
    CHECK(lb_is_ejected(lb, 5, 0) == 0);
    lb_free(lb);
}

int main(void) {
    test_rr_exact_counts();
    test_rr_smooth_equal();
    test_rr_smooth_weighted();
    test_rr_workers_start_apart();
    test_weight_zero();
    test_empty();
    test_p2c_fewer_active();
    test_p2c_lower_latency();
    test_p2c_new_host_neutral();
    test_p2c_decay();
    test_p2c_fast_failures_penalised();
    test_p2c_weighted();
    test_eject_5xx();
    test_eject_backoff_cap_and_forgiveness();
    test_eject_failures();
    test_eject_inflight_ignored();
    test_max_ejection_percent();
    test_all_failing_still_picks();
    test_exclude();
    test_exclude_retry_on_hash();
    test_hash_stable();
    test_hash_distribution();
    test_hash_ejection_moves_few();
    test_hash_without_key();
    test_hash_bytes();
    test_active_counts();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
