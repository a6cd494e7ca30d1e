/* test_ratelimit.c - the RateLimit kind: loading (src/config) and the
 * buckets (src/router/ratelimit.c), with a clock the test drives.
 *
 * Standalone: prints one line per failure and "N passed, M failed", exits
 * non-zero on any failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "router/attr.h"
#include "router/ratelimit.h"

#include "check.h"
#include "check_config.h"



#define API "apiVersion: strand.dev/v1alpha1\n"
#define BASE                                                                                   \
    API "kind: Listener\nmetadata: {name: web}\nspec: {address: 127.0.0.1:10000}\n---\n" API   \
        "kind: Listener\nmetadata: {name: raw}\nspec: {address: 127.0.0.1:10001, protocol: "   \
        "tcp}\n---\n" API "kind: Listener\nmetadata: {name: pg}\nspec: {address: "             \
        "127.0.0.1:10002, protocol: postgres}\n---\n"
#define RL(name) API "kind: RateLimit\nmetadata: {name: " name "}\nspec:\n"

#define SEC 1000000000ull

static struct config *load(const char *yaml, char *err, size_t errlen)
{
    return load_yaml(yaml, strlen(yaml), err, errlen);
}

/* The error names t.yaml, the line of the `#<` marker and substr. */
static void expect_err(int src_line, const char *yaml, const char *substr)
{
    char err[512];
    struct config *cfg = load(yaml, err, sizeof(err));
    check_load_err(src_line, cfg, err, yaml, substr);
}
#define EXPECT_ERR(yaml, substr) expect_err(__LINE__, yaml, substr)

static void test_load(void)
{
    char err[512];
    struct config *cfg = load(BASE RL("a") "  targets: [web, pg]\n  rules:\n"
                                           "  - match: [{attribute: source.address, exact: 10.0.0.1}]\n"
                                           "    key: source.address\n"
                                           "    limit: {requests: 5, per: 1m}\n"
                                           "    burst: 2\n    maxKeys: 100\n"
                                           "  - limit: {requests: 100}\n",
                              err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (!cfg)
        return;
    CHECK(cfg->nratelimits == 1, "%zu", cfg->nratelimits);
    const struct cfg_ratelimit *r = &cfg->ratelimits[0];
    CHECK(strcmp(r->name, "a") == 0 && r->nlisteners == 2 && r->nrules == 2, "shape");
    CHECK(r->rules[0].nconds == 1 && r->rules[0].key && strcmp(r->rules[0].key, "source.address") == 0,
          "rule 0 match/key");
    CHECK(r->rules[0].requests == 5 && r->rules[0].per_ms == 60000 && r->rules[0].burst == 2 &&
              r->rules[0].max_keys == 100,
          "rule 0 numbers");
    CHECK(r->rules[1].nconds == 0 && !r->rules[1].key && r->rules[1].requests == 100 &&
              r->rules[1].per_ms == 1000 && r->rules[1].burst == 100,
          "rule 1 defaults");
    char *j = config_to_json(cfg);
    CHECK(j && strstr(j, "\"rateLimits\"") && strstr(j, "\"perMs\":60000"), "json: %s", j ? j : "");
    free(j);
    config_free(cfg);

    EXPECT_ERR(BASE RL("a") "  targets: [nope]  #<\n  rules: [{limit: {requests: 1}}]\n", "nope");
    EXPECT_ERR(BASE RL("a") "  targets: [web]\n  rules:\n  - limit: {requests: 0}  #<\n",
               "requests");
    EXPECT_ERR(BASE RL("a") "  targets: [web]\n  rules:\n  - match: []  #<\n    burst: 3\n",
               "limit");
    EXPECT_ERR(BASE RL("a") "  targets: [web]\n  rules:\n  - limit: {requests: 1}\n"
                            "    maxKeys: 10  #<\n",
               "only with key");
    /* sql.verb is not offered by http listeners. */
    EXPECT_ERR(BASE RL("a") "  targets: [web, pg]\n  rules:\n"
                            "  - match: [{attribute: sql.verb, exact: SELECT}]  #<\n"
                            "    limit: {requests: 1}\n",
               "sql.verb");
    EXPECT_ERR(BASE RL("a") "  targets: [pg]\n  rules:\n  - key: path  #<\n"
                            "    limit: {requests: 1}\n",
               "path");
    EXPECT_ERR(BASE RL("a") "  targets: [web]\n  rules: [{limit: {requests: 1}}]\n---\n"
               RL("a") "  targets: [web]\n  rules: [{limit: {requests: 1}}]\n",
               "duplicate RateLimit");
    EXPECT_ERR(BASE RL("a") "  targets: [web]\n  rules: [{limit: {requests: 1, per: 0s}}]  #<\n",
               "per");
}

/* A set + list for listener `web` from rules (YAML after "  rules:\n"). */
struct fixture {
    struct config *cfg;
    struct rl_set *set;
    struct rl_list *list;
};

static int fixture(struct fixture *f, const char *rules)
{
    char err[512], yaml[4096];
    snprintf(yaml, sizeof(yaml), "%s%s  targets: [web]\n  rules:\n%s", BASE, RL("lim"), rules);
    memset(f, 0, sizeof(*f));
    f->cfg = load(yaml, err, sizeof(err));
    CHECK(f->cfg != NULL, "%s", err);
    if (!f->cfg)
        return -1;
    f->set = rl_set_build(f->cfg, err, sizeof(err));
    CHECK(f->set != NULL, "%s", err);
    f->list = rl_list_build(f->set, "web", err, sizeof(err));
    CHECK(f->list != NULL, "%s", err);
    return f->list ? 0 : -1;
}

static void fixture_free(struct fixture *f)
{
    rl_list_free(f->list);
    rl_set_free(f->set);
    config_free(f->cfg);
}

/* How many of n messages from src at `now` are allowed. */
static int allowed(struct fixture *f, struct attr_set *as, uint64_t now, int n)
{
    struct attr_src src = attr_set_src(as);
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += rl_check(f->list, &src, now, NULL) < 0;
    return ok;
}

static void test_buckets(void)
{
    struct fixture f;
    struct attr_set a, b;
    attr_set_init(&a);
    attr_set_add(&a, "source.address", "10.0.0.1");
    attr_set_add(&a, "path", "/api/x");
    attr_set_init(&b);
    attr_set_add(&b, "source.address", "10.0.0.2");
    attr_set_add(&b, "path", "/other");

    /* 10 per second, burst 10: a burst of 10 at t0, then one per 100 ms. */
    if (fixture(&f, "  - limit: {requests: 10}\n") == 0) {
        uint64_t t0 = 1000 * SEC;
        CHECK(allowed(&f, &a, t0, 20) == 10, "burst of 10");
        CHECK(allowed(&f, &b, t0, 1) == 0, "one bucket for everyone");
        CHECK(allowed(&f, &a, t0 + SEC / 10, 5) == 1, "one token per 100 ms");
        CHECK(allowed(&f, &a, t0 + SEC / 10 + SEC / 20, 1) == 0, "not before it is due");
        uint64_t retry = 0;
        struct attr_src src = attr_set_src(&a);
        CHECK(rl_check(f.list, &src, t0 + SEC / 10 + SEC / 20, &retry) == 0 && retry == 50,
              "retry in 50 ms, got %llu", (unsigned long long)retry);
        CHECK(allowed(&f, &a, t0 + 10 * SEC, 100) == 10, "refilled to the burst, no more");
        /* 25 s at 10/s: exactly 250 pass when spread evenly. */
        int ok = 0;
        for (int i = 0; i < 1000; i++)
            ok += allowed(&f, &a, t0 + 20 * SEC + (uint64_t)i * (SEC / 40), 1);
        /* The bucket is full at the start: 250 + its burst of 10. */
        CHECK(ok >= 259 && ok <= 261, "long-run rate: %d of 1000 at 40/s", ok);
        CHECK(rl_list_count(f.list) == 1 && strcmp(rl_list_at(f.list, 0)->name, "lim") == 0,
              "list names its RateLimit");
    }
    fixture_free(&f);

    /* Keyed: a bucket per source.address; conditions select messages. */
    if (fixture(&f, "  - match: [{attribute: path, prefix: /api}]\n"
                    "    key: source.address\n    limit: {requests: 2, per: 1h}\n") == 0) {
        uint64_t t0 = 5 * SEC;
        CHECK(allowed(&f, &a, t0, 5) == 2, "a: 2 per hour");
        struct attr_set c;
        attr_set_init(&c);
        attr_set_add(&c, "source.address", "10.0.0.3");
        attr_set_add(&c, "path", "/api/y");
        CHECK(allowed(&f, &c, t0, 5) == 2, "c has its own bucket");
        CHECK(allowed(&f, &b, t0, 50) == 50, "b does not match the rule: unlimited");
        CHECK(allowed(&f, &a, t0 + 1800 * SEC, 2) == 1, "a: one more after half an hour");
    }
    fixture_free(&f);

    /* Two rules: a refusal by the second gives the first its token back. */
    if (fixture(&f, "  - limit: {requests: 3, per: 1h}\n"
                    "  - match: [{attribute: path, prefix: /api}]\n    limit: {requests: 1, per: 1h}\n") == 0) {
        uint64_t t0 = 7 * SEC;
        CHECK(allowed(&f, &a, t0, 4) == 1, "/api: 1 per hour");
        CHECK(allowed(&f, &b, t0, 4) == 2, "the refused /api calls did not use the shared tokens");
    }
    fixture_free(&f);

    /* More live keys than the table holds: still never more than the
     * limit for any one key (undercounting only). */
    if (fixture(&f, "  - key: source.address\n    limit: {requests: 1, per: 1h}\n    maxKeys: 4\n") == 0) {
        uint64_t t0 = 9 * SEC;
        int ok = 0;
        for (int k = 0; k < 200; k++) {
            struct attr_set s;
            char ip[32];
            attr_set_init(&s);
            snprintf(ip, sizeof(ip), "10.1.%d.%d", k / 250, k % 250);
            attr_set_add(&s, "source.address", ip);
            ok += allowed(&f, &s, t0, 3);
        }
        CHECK(ok >= 200 && ok <= 600, "each key gets its one token (got %d)", ok);
        CHECK(allowed(&f, &a, t0, 3) == 1, "a fresh key: one token, the rest refused");
    }
    fixture_free(&f);
}

/* A reload that keeps a rule as it was keeps its bucket; a changed rate
 * gets a fresh one. */
static void test_reload(void)
{
    struct fixture a, b, c;
    struct attr_set as;
    attr_set_init(&as);
    attr_set_add(&as, "source.address", "10.0.0.1");
    if (fixture(&a, "  - limit: {requests: 2, per: 1h}\n") != 0)
        goto out_a;
    CHECK(allowed(&a, &as, 50 * SEC, 5) == 2, "old generation: 2");
    /* The new generation is built while the old one still lives. */
    if (fixture(&b, "  - match: [{attribute: path, absent: true}]\n    limit: {requests: 2, per: 1h}\n") == 0)
        CHECK(allowed(&b, &as, 51 * SEC, 5) == 0, "same rule, other conditions: still empty");
    fixture_free(&a);
    if (fixture(&c, "  - limit: {requests: 3, per: 1h}\n") == 0)
        CHECK(allowed(&c, &as, 52 * SEC, 5) == 3, "a changed rate starts full");
    if (b.list)
        CHECK(allowed(&b, &as, 53 * SEC, 1) == 0, "the old state lives while a generation uses it");
    fixture_free(&b);
    fixture_free(&c);
    return;
out_a:
    fixture_free(&a);
}

/* Every worker shares the buckets: 4 threads hammering one bucket get
 * exactly its burst between them. */
struct hammer {
    struct fixture *f;
    struct attr_set *as;
    int ok;
};

static void *hammer_run(void *p)
{
    struct hammer *h = p;
    h->ok = allowed(h->f, h->as, 100 * SEC, 20000);
    return NULL;
}

static void test_threads(void)
{
    struct fixture f;
    struct attr_set a;
    attr_set_init(&a);
    attr_set_add(&a, "source.address", "10.0.0.1");
    for (int keyed = 0; keyed < 2; keyed++) {
        if (fixture(&f, keyed ? "  - key: source.address\n    limit: {requests: 1000, per: 1h}\n"
                              : "  - limit: {requests: 1000, per: 1h}\n") != 0) {
            fixture_free(&f);
            continue;
        }
        struct hammer h[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            h[i] = (struct hammer){&f, &a, 0};
            pthread_create(&t[i], NULL, hammer_run, &h[i]);
        }
        int total = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            total += h[i].ok;
        }
        CHECK(total == 1000, "%s: 4 threads got %d tokens of 1000", keyed ? "keyed" : "shared",
              total);
        fixture_free(&f);
    }
}

int main(void)
{
    test_load();
    test_buckets();
    test_reload();
    test_threads();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
