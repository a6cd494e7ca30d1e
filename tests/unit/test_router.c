/* test_router.c - attributes, conditions, the router index and its helpers.
 *
 * Configs are built by hand (the loader lives elsewhere). The differential
 * test checks router_match() against both a linear scan over the same
 * compiled rules and an independent evaluator written from the config
 * semantics, over random rule sets and random messages. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/attr.h"
#include "router/index.h"
#include "router/match.h"
#include "router/router.h"

#include "check.h"



/* ---- test allocations: everything a hand-built config needs, freed at once */

static void **allocs;
static size_t nallocs, capallocs;

/* Returns zeroed memory owned by the test arena (freed by tfree_all). */
static void *talloc(size_t n)
{
    if (nallocs == capallocs) {
        capallocs = capallocs ? capallocs * 2 : 256;
        allocs = realloc(allocs, capallocs * sizeof(*allocs));
    }
    void *p = calloc(1, n ? n : 1);
    allocs[nallocs++] = p;
    return p;
}

/* Returns a copy of s in the test arena. */
static char *tstr(const char *s)
{
    char *d = talloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static void tfree_all(void)
{
    for (size_t i = 0; i < nallocs; i++)
        free(allocs[i]);
    nallocs = 0;
}

/* ---- building configs -------------------------------------------------------- */

static struct cfg_cond cond(const char *attr, enum cfg_match_op op, const char *value)
{
    struct cfg_cond c;
    memset(&c, 0, sizeof(c));
    c.attr = tstr(attr);
    c.op = op;
    c.value = value ? tstr(value) : NULL;
    c.where.file = "t.yaml";
    c.where.line = 7;
    return c;
}

/* An `in` condition over a NULL-terminated list of values. */
static struct cfg_cond cond_in(const char *attr, ...)
{
    struct cfg_cond c = cond(attr, CFG_MATCH_IN, NULL);
    const char *vals[32];
    size_t n = 0;
    va_list ap;
    va_start(ap, attr);
    for (const char *v; (v = va_arg(ap, const char *)) && n < 32;)
        vals[n++] = v;
    va_end(ap);
    c.values = talloc(n * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        c.values[i] = tstr(vals[i]);
    c.nvalues = n;
    return c;
}

/* A config with nroutes empty routes on listener "web"; rules added later. */
static struct config *cfg_new(size_t nroutes)
{
    struct config *cfg = talloc(sizeof(*cfg));
    cfg->routes = talloc(nroutes * sizeof(*cfg->routes));
    cfg->nroutes = nroutes;
    for (size_t i = 0; i < nroutes; i++) {
        struct cfg_route *rt = &cfg->routes[i];
        char name[32];
        snprintf(name, sizeof(name), "r%zu", i);
        rt->name = tstr(name);
        rt->listeners = talloc(sizeof(char *));
        rt->listeners[0] = tstr("web");
        rt->nlisteners = 1;
        rt->where.file = "t.yaml";
        rt->where.line = (int)i + 1;
    }
    return cfg;
}

/* Gives route rt n rules with room for up to 32 conditions each. */
static void route_rules(struct cfg_route *rt, size_t n)
{
    rt->rules = talloc(n * sizeof(*rt->rules));
    rt->nrules = n;
    for (size_t i = 0; i < n; i++) {
        rt->rules[i].conds = talloc(32 * sizeof(struct cfg_cond));
        rt->rules[i].where.file = "t.yaml";
        rt->rules[i].where.line = 100 + (int)i;
    }
}

static void add(struct cfg_rule *r, struct cfg_cond c) { r->conds[r->nconds++] = c; }

static void hostnames(struct cfg_route *rt, const char *const *h, size_t n)
{
    rt->hostnames = talloc(n * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        rt->hostnames[i] = tstr(h[i]);
    rt->nhostnames = n;
}

/* A one-route, one-rule config around condition c, compiled. */
static bool eval1(struct cfg_cond c, const struct attr_set *s)
{
    char err[256];
    struct match_cond *m = match_compile(&c, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "compile: %s\n", err);
        return false;
    }
    struct attr_src src = attr_set_src(s);
    bool r = match_eval(m, &src);
    match_free(m);
    return r;
}

/* An attr_set from "name", "value", ..., NULL pairs. */
static void set_of(struct attr_set *s, ...)
{
    attr_set_init(s);
    va_list ap;
    va_start(ap, s);
    for (const char *n; (n = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        attr_set_add(s, n, v);
    }
    va_end(ap);
}

static int match_index(const struct router *r, const struct attr_set *s)
{
    struct attr_src src = attr_set_src(s);
    const struct route_rule *rr = router_match(r, &src);
    return rr ? (int)route_rule_index(rr) : -1;
}

/* ---- attributes ---------------------------------------------------------------- */

static void test_attr(void)
{
    struct attr_key k;
    CHECK(attr_key_init(&k, "path", 4) == 0 && k.id == ATTR_PATH);
    CHECK(attr_key_init(&k, "authority", 9) == 0 && k.id == ATTR_AUTHORITY);
    CHECK(attr_key_init(&k, "header.x-user", 13) == 0 && k.id == ATTR_HEADER && k.sublen == 6 &&
          memcmp(k.sub, "x-user", 6) == 0);
    CHECK(attr_key_init(&k, "query.id", 8) == 0 && k.id == ATTR_QUERY && k.sublen == 2);
    CHECK(attr_key_init(&k, "sql.tables", 10) == 0 && k.id == ATTR_SQL_TABLES);
    CHECK(attr_key_init(&k, "pathx", 5) == 0 && k.id == ATTR_UNKNOWN);
    CHECK(attr_key_init(&k, "header.", 7) < 0);
    CHECK(attr_key_init(&k, "", 0) < 0);
    CHECK(strcmp(attr_id_name(ATTR_HEADER), "header") == 0);
    CHECK(strcmp(attr_id_name(ATTR_DESTINATION_PORT), "destination.port") == 0);
    char name[] = "header.X-User";
    attr_name_normalize(name, strlen(name));
    CHECK(strcmp(name, "header.x-user") == 0);
    char q[] = "query.ID";
    attr_name_normalize(q, strlen(q));
    CHECK(strcmp(q, "query.ID") == 0);

    struct attr_set s;
    set_of(&s, "path", "/a", "header.X-Tag", "one", "header.x-tag", "two", "method", "GET", NULL);
    struct attr_src src = attr_set_src(&s);
    attr_val v[4];
    struct attr_key kt;
    attr_key_init(&kt, "header.x-tag", 12);
    CHECK(attr_get(&src, &kt, v, 4) == 2 && v[0].len == 3 && memcmp(v[0].p, "one", 3) == 0 &&
          memcmp(v[1].p, "two", 3) == 0);
    CHECK(attr_get(&src, &kt, v, 1) == 2); /* count beyond max, like snprintf */
    CHECK(attr_get(&src, &kt, NULL, 0) == 2);
    attr_key_init(&k, "path", 4);
    CHECK(attr_get(&src, &k, v, 4) == 1 && v[0].len == 2);
    attr_key_init(&k, "scheme", 6);
    CHECK(attr_get(&src, &k, v, 4) == 0);
    /* bounded: the 33rd pair and oversized values are refused */
    attr_set_init(&s);
    int ok = 0;
    for (int i = 0; i < ATTR_SET_MAX + 1; i++)
        ok += attr_set_add(&s, "header.x", "v") == 0;
    CHECK(ok == ATTR_SET_MAX);
    attr_set_init(&s);
    static char big[ATTR_SET_BYTES + 1];
    memset(big, 'a', sizeof(big) - 1);
    CHECK(attr_set_add(&s, "path", big) < 0 && s.n == 0);
    CHECK(attr_set_add(&s, "header.", "x") < 0);
}

/* ---- conditions ---------------------------------------------------------------- */

static struct cfg_cond inv(struct cfg_cond c)
{
    c.invert = true;
    return c;
}

static struct cfg_cond icase(struct cfg_cond c)
{
    c.ignore_case = true;
    return c;
}

static void test_ops(void)
{
    struct attr_set s;
    set_of(&s, "path", "/api/users", "method", "GET", "header.x-env", "Prod", "header.x-empty", "",
           NULL);
    /* exact */
    CHECK(eval1(cond("path", CFG_MATCH_EXACT, "/api/users"), &s));
    CHECK(!eval1(cond("path", CFG_MATCH_EXACT, "/api/user"), &s));
    CHECK(!eval1(cond("path", CFG_MATCH_EXACT, "/API/users"), &s));
    CHECK(eval1(icase(cond("path", CFG_MATCH_EXACT, "/API/users")), &s));
    CHECK(!eval1(inv(cond("path", CFG_MATCH_EXACT, "/api/users")), &s));
    CHECK(eval1(inv(cond("path", CFG_MATCH_EXACT, "/x")), &s));
    CHECK(eval1(inv(cond("header.nope", CFG_MATCH_EXACT, "/x")), &s)); /* absent: test fails */
    CHECK(eval1(cond("header.x-empty", CFG_MATCH_EXACT, ""), &s));
    /* prefix */
    CHECK(eval1(cond("path", CFG_MATCH_PREFIX, "/api"), &s));
    CHECK(eval1(cond("path", CFG_MATCH_PREFIX, ""), &s));
    CHECK(eval1(cond("path", CFG_MATCH_PREFIX, "/api/users"), &s));
    CHECK(!eval1(cond("path", CFG_MATCH_PREFIX, "/api/users/"), &s));
    CHECK(!eval1(cond("path", CFG_MATCH_PREFIX, "/API"), &s));
    CHECK(eval1(icase(cond("path", CFG_MATCH_PREFIX, "/API")), &s));
    CHECK(eval1(inv(cond("path", CFG_MATCH_PREFIX, "/v2")), &s));
    CHECK(!eval1(cond("header.nope", CFG_MATCH_PREFIX, ""), &s));
    /* suffix */
    CHECK(eval1(cond("path", CFG_MATCH_SUFFIX, "users"), &s));
    CHECK(!eval1(cond("path", CFG_MATCH_SUFFIX, "Users"), &s));
    CHECK(eval1(icase(cond("path", CFG_MATCH_SUFFIX, "USERS")), &s));
    CHECK(!eval1(cond("path", CFG_MATCH_SUFFIX, "x/api/users"), &s));
    CHECK(!eval1(inv(cond("path", CFG_MATCH_SUFFIX, "/users")), &s));
    /* regex: anchored by the pattern only */
    CHECK(eval1(cond("path", CFG_MATCH_REGEX, "^/api/[a-z]+$"), &s));
    CHECK(eval1(cond("path", CFG_MATCH_REGEX, "users"), &s));
    CHECK(!eval1(cond("path", CFG_MATCH_REGEX, "^users"), &s));
    CHECK(!eval1(cond("path", CFG_MATCH_REGEX, "^/API"), &s));
    CHECK(eval1(icase(cond("path", CFG_MATCH_REGEX, "^/API")), &s));
    CHECK(eval1(inv(cond("path", CFG_MATCH_REGEX, "^/v[0-9]+/")), &s));
    CHECK(!eval1(cond("header.nope", CFG_MATCH_REGEX, ".*"), &s));
    CHECK(eval1(inv(cond("header.nope", CFG_MATCH_REGEX, ".*")), &s));
    /* present / absent */
    CHECK(eval1(cond("header.x-env", CFG_MATCH_PRESENT, NULL), &s));
    CHECK(eval1(cond("header.x-empty", CFG_MATCH_PRESENT, NULL), &s));
    CHECK(!eval1(cond("header.x-nope", CFG_MATCH_PRESENT, NULL), &s));
    CHECK(eval1(inv(cond("header.x-nope", CFG_MATCH_PRESENT, NULL)), &s));
    CHECK(eval1(cond("header.x-nope", CFG_MATCH_ABSENT, NULL), &s));
    CHECK(!eval1(cond("header.x-env", CFG_MATCH_ABSENT, NULL), &s));
    CHECK(eval1(inv(cond("header.x-env", CFG_MATCH_ABSENT, NULL)), &s));
    /* header names in conditions are case-insensitive */
    CHECK(eval1(cond("header.X-Env", CFG_MATCH_EXACT, "Prod"), &s));
    /* in */
    CHECK(eval1(cond_in("method", "HEAD", "GET", NULL), &s));
    CHECK(!eval1(cond_in("method", "HEAD", "POST", NULL), &s));
    CHECK(!eval1(cond_in("method", "get", NULL), &s));
    CHECK(eval1(icase(cond_in("method", "head", "get", NULL)), &s));
    CHECK(eval1(inv(cond_in("method", "HEAD", "POST", NULL)), &s));
    CHECK(!eval1(cond_in("method", NULL), &s)); /* empty set */
    CHECK(eval1(icase(cond("header.x-env", CFG_MATCH_EXACT, "prod")), &s));
}

static void test_lists(void)
{
    struct attr_set s;
    set_of(&s, "sql.tables", "users", "sql.tables", "Orders", "sql.verb", "SELECT", NULL);
    CHECK(eval1(cond("sql.tables", CFG_MATCH_EXACT, "users"), &s));
    CHECK(eval1(cond("sql.tables", CFG_MATCH_EXACT, "Orders"), &s));
    CHECK(!eval1(cond("sql.tables", CFG_MATCH_EXACT, "orders"), &s));
    CHECK(eval1(icase(cond("sql.tables", CFG_MATCH_EXACT, "orders")), &s));
    CHECK(eval1(cond("sql.tables", CFG_MATCH_PREFIX, "Ord"), &s));
    CHECK(eval1(cond("sql.tables", CFG_MATCH_REGEX, "^O"), &s));
    CHECK(eval1(cond_in("sql.tables", "x", "users", NULL), &s));
    /* invert of a list: no element matches */
    CHECK(!eval1(inv(cond("sql.tables", CFG_MATCH_EXACT, "users")), &s));
    CHECK(eval1(inv(cond("sql.tables", CFG_MATCH_EXACT, "payments")), &s));
    CHECK(eval1(cond("sql.tables", CFG_MATCH_PRESENT, NULL), &s));
    CHECK(!eval1(cond("sql.tables", CFG_MATCH_ABSENT, NULL), &s));
    CHECK(eval1(cond("kafka.topic", CFG_MATCH_ABSENT, NULL), &s));
    /* a list longer than any inline buffer: the match is the last element */
    attr_set_init(&s);
    char v[16];
    for (int i = 0; i < 24; i++) {
        snprintf(v, sizeof(v), "t%d", i);
        attr_set_add(&s, "sql.tables", v);
    }
    CHECK(eval1(cond("sql.tables", CFG_MATCH_EXACT, "t23"), &s));
    CHECK(eval1(inv(cond("sql.tables", CFG_MATCH_EXACT, "t24")), &s));
    CHECK(!eval1(inv(cond("sql.tables", CFG_MATCH_EXACT, "t23")), &s));

    /* the same through a router: index lookup and cache over a long list */
    struct config *cfg = cfg_new(1);
    route_rules(&cfg->routes[0], 3);
    add(&cfg->routes[0].rules[0], cond("sql.tables", CFG_MATCH_EXACT, "t99"));
    add(&cfg->routes[0].rules[1], cond("sql.tables", CFG_MATCH_EXACT, "t22"));
    add(&cfg->routes[0].rules[1], inv(cond("sql.tables", CFG_MATCH_PREFIX, "x")));
    add(&cfg->routes[0].rules[2], cond("sql.tables", CFG_MATCH_SUFFIX, "3"));
    char err[256];
    struct router *r = router_build(cfg, "web", err, sizeof(err));
    CHECK(r && match_index(r, &s) == 1);
    router_free(r);
}

/* The literal start of an anchored regex is what the index files it under. */
static void test_regex_hints(void)
{
    static const struct {
        const char *re;
        bool icase;
        const char *lit; /* NULL = no hint */
    } cases[] = {
        {"^/api/v[0-9]+", false, "/api/v"}, {"^/a?b", false, "/"},    {"^/a\\.b", false, "/a.b"},
        {"^/ab|^/c", false, NULL},         {"/api", false, NULL},     {"^/API", true, "/api"},
        {"^a+b", false, "a"},              {"^", false, NULL},        {"^\\d", false, NULL},
        {"^ab{2}", false, "a"},            {"^a*", false, NULL},      {"^(?i)abc", false, NULL},
        {"^/x(?i)abc", false, "/x"},       {"^/x.y", false, "/x"},    {"^a\\Qb", false, "a"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg_cond c = cond("path", CFG_MATCH_REGEX, cases[i].re);
        c.ignore_case = cases[i].icase;
        struct match_cond *m = match_compile(&c, err, sizeof(err));
        CHECK(m != NULL);
        if (!m)
            continue;
        bool ok;
        if (!cases[i].lit) {
            ok = match_nhints(m) == 0;
        } else {
            struct match_hint h = match_hint(m, 0);
            ok = match_nhints(m) == 1 && h.kind == MATCH_HINT_PREFIX &&
                 h.view == (cases[i].icase ? MATCH_VIEW_FOLD : MATCH_VIEW_RAW) &&
                 h.len == strlen(cases[i].lit) && memcmp(h.key, cases[i].lit, h.len) == 0;
        }
        if (!ok)
            fprintf(stderr, "regex hint for %s wrong\n", cases[i].re);
        CHECK(ok);
        match_free(m);
    }
    /* an inverted condition never narrows the candidates */
    struct cfg_cond c = inv(cond("path", CFG_MATCH_EXACT, "/a"));
    struct match_cond *m = match_compile(&c, err, sizeof(err));
    CHECK(m && match_nhints(m) == 0);
    match_free(m);

    struct config *cfg = cfg_new(1);
    route_rules(&cfg->routes[0], 3);
    add(&cfg->routes[0].rules[0], cond("path", CFG_MATCH_REGEX, "^/ab|^/c"));
    add(&cfg->routes[0].rules[1], cond("path", CFG_MATCH_REGEX, "^/A?b"));
    add(&cfg->routes[0].rules[2], icase(cond("path", CFG_MATCH_REGEX, "^/X/y")));
    struct router *r = router_build(cfg, "web", err, sizeof(err));
    CHECK(r != NULL);
    struct attr_set s;
    set_of(&s, "path", "/c", NULL);
    CHECK(r && match_index(r, &s) == 0);
    set_of(&s, "path", "/b", NULL);
    CHECK(r && match_index(r, &s) == 1);
    set_of(&s, "path", "/x/Y/z", NULL);
    CHECK(r && match_index(r, &s) == 2);
    router_free(r);
}

static void test_hosts(void)
{
    char err[256];
    const char *h[] = {"Example.com", "*.example.org", "[::1]"};
    struct cfg_where w = {"t.yaml", 3};
    struct match_cond *m = match_compile_hosts((char *const *)h, 3, w, err, sizeof(err));
    CHECK(m != NULL);
    if (!m)
        return;
    static const struct {
        const char *auth;
        bool ok;
    } cases[] = {
        {"example.com", true},      {"EXAMPLE.COM", true},       {"example.com:8080", true},
        {"example.com:", true},     {"www.example.com", false},  {"example.comx", false},
        {"a.example.org", true},    {"A.B.Example.ORG:443", true}, {"example.org", false},
        {".example.org", false},    {"xexample.org", false},     {"[::1]:80", true},
        {"[::1]", true},            {"[::2]:80", false},         {"", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        attr_val v = {cases[i].auth, strlen(cases[i].auth)};
        bool got = match_test(m, &v, 1);
        if (got != cases[i].ok)
            fprintf(stderr, "host case %s: got %d\n", cases[i].auth, got);
        CHECK(got == cases[i].ok);
    }
    CHECK(!match_test(m, NULL, 0));
    match_free(m);
    CHECK(match_host_len("a.b:80", 6) == 3);
    CHECK(match_host_len("[::1]:80", 8) == 5);
    CHECK(match_host_len("::1", 3) == 3);
    CHECK(match_host_len("a.b", 3) == 3);

    const char *bad[] = {"foo.*.com"};
    m = match_compile_hosts((char *const *)bad, 1, w, err, sizeof(err));
    CHECK(!m && strstr(err, "t.yaml:3:") && strstr(err, "bad hostname"));

    /* through the router: hostnames narrow each route's rules */
    struct config *cfg = cfg_new(3);
    const char *h0[] = {"api.example.com"};
    const char *h1[] = {"*.example.com"};
    hostnames(&cfg->routes[0], h0, 1);
    hostnames(&cfg->routes[1], h1, 1);
    for (int i = 0; i < 3; i++)
        route_rules(&cfg->routes[i], 1);
    add(&cfg->routes[0].rules[0], cond("path", CFG_MATCH_PREFIX, "/v1"));
    struct router *r = router_build(cfg, "web", err, sizeof(err));
    CHECK(r && router_nrules(r) == 3);
    if (!r)
        return;
    struct attr_set s;
    set_of(&s, "authority", "API.example.com:443", "path", "/v1/x", NULL);
    CHECK(match_index(r, &s) == 0);
    set_of(&s, "authority", "api.example.com", "path", "/v2", NULL);
    CHECK(match_index(r, &s) == 1);
    set_of(&s, "authority", "example.com", "path", "/v1", NULL);
    CHECK(match_index(r, &s) == 2);
    set_of(&s, "path", "/v1", NULL);
    CHECK(match_index(r, &s) == 2);
    /* the wildcard's suffix alone is not a host under it */
    set_of(&s, "authority", ".example.com", "path", "/v2", NULL);
    CHECK(match_index(r, &s) == 2);
    router_free(r);
}

/* ---- router -------------------------------------------------------------------------- */

static void test_first_match(void)
{
    char err[256];
    /* rule 0 is an unindexable (unanchored) regex; rule 5 an exact path */
    struct config *cfg = cfg_new(2);
    route_rules(&cfg->routes[0], 4);
    route_rules(&cfg->routes[1], 2);
    struct cfg_rule *a = cfg->routes[0].rules, *b = cfg->routes[1].rules;
    add(&a[0], cond("path", CFG_MATCH_REGEX, "\\.php$"));
    add(&a[1], cond("path", CFG_MATCH_PREFIX, "/api"));
    add(&a[1], cond("header.x-canary", CFG_MATCH_PRESENT, NULL));
    add(&a[2], cond("path", CFG_MATCH_EXACT, "/api/v1"));
    add(&a[3], cond("header.x-env", CFG_MATCH_EXACT, "prod"));
    add(&b[0], cond_in("method", "DELETE", NULL));
    add(&b[1], cond("path", CFG_MATCH_EXACT, "/api/v1/x.php"));
    a[1].name = tstr("canary");
    struct router *r = router_build(cfg, "web", err, sizeof(err));
    CHECK(r && router_nrules(r) == 6);
    if (!r)
        return;
    struct attr_set s;
    set_of(&s, "path", "/api/v1/x.php", NULL);
    CHECK(match_index(r, &s) == 0);
    set_of(&s, "path", "/api/v1/x.php", "method", "DELETE", NULL);
    CHECK(match_index(r, &s) == 0);
    set_of(&s, "path", "/api/v1", "header.x-canary", "1", NULL);
    CHECK(match_index(r, &s) == 1);
    set_of(&s, "path", "/api/v1", NULL);
    CHECK(match_index(r, &s) == 2);
    set_of(&s, "path", "/api/v1", "method", "DELETE", "header.x-env", "prod", NULL);
    CHECK(match_index(r, &s) == 2);
    set_of(&s, "path", "/x", "method", "DELETE", "header.x-env", "prod", NULL);
    CHECK(match_index(r, &s) == 3);
    set_of(&s, "path", "/x", "method", "DELETE", NULL);
    CHECK(match_index(r, &s) == 4);
    set_of(&s, "path", "/api/v1/x.phpx", NULL);
    CHECK(match_index(r, &s) == -1);
    set_of(&s, NULL);
    CHECK(match_index(r, &s) == -1);

    /* names, indices, route pointers */
    const struct route_rule *rr = router_rule(r, 1);
    CHECK(strcmp(route_rule_name(rr), "canary") == 0);
    CHECK(strcmp(route_rule_name(router_rule(r, 5)), "r1/1") == 0);
    CHECK(route_rule_cfg(router_rule(r, 5)) == &b[1]);
    CHECK(route_rule_route(router_rule(r, 5)) == &cfg->routes[1]);
    CHECK(route_rule_index(router_rule(r, 4)) == 4);
    CHECK(router_rule(r, 6) == NULL);

    char out[1024];
    set_of(&s, "path", "/api/v1", NULL);
    struct attr_src src = attr_set_src(&s);
    int idx = router_explain(r, &src, out, sizeof(out));
    CHECK(idx == 2 && strstr(out, "matched rule 2") && strstr(out, "rule 1 \"canary\"") &&
          strstr(out, "header.x-canary present") && strstr(out, "rule 0"));
    set_of(&s, "path", "/nope", NULL);
    src = attr_set_src(&s);
    CHECK(router_explain(r, &src, out, sizeof(out)) == -1 && strstr(out, "no rule matched"));
    CHECK(router_explain(r, &src, out, 8) == -1 && strlen(out) == 7);
    router_free(r);

    /* a regex catch-all first shadows everything, indexed or not */
    a[0].conds[0] = cond("path", CFG_MATCH_REGEX, ".*");
    r = router_build(cfg, "web", err, sizeof(err));
    set_of(&s, "path", "/api/v1/x.php", NULL);
    CHECK(r && match_index(r, &s) == 0);
    set_of(&s, "path", "/api/v1", "header.x-canary", "1", NULL);
    CHECK(r && match_index(r, &s) == 0);
    set_of(&s, "method", "DELETE", NULL);
    CHECK(r && match_index(r, &s) == 4);
    router_free(r);

    /* listeners: only routes attached to "web"; an empty rule matches all */
    cfg = cfg_new(3);
    cfg->routes[0].listeners[0] = tstr("admin");
    for (int i = 0; i < 3; i++)
        route_rules(&cfg->routes[i], 1);
    add(&cfg->routes[0].rules[0], cond("path", CFG_MATCH_PREFIX, "/"));
    add(&cfg->routes[1].rules[0], cond("path", CFG_MATCH_EXACT, "/a"));
    r = router_build(cfg, "web", err, sizeof(err));
    CHECK(r && router_nrules(r) == 2);
    set_of(&s, "path", "/a", NULL);
    CHECK(match_index(r, &s) == 0 && route_rule_route(router_rule(r, 0)) == &cfg->routes[1]);
    set_of(&s, "path", "/b", NULL);
    CHECK(match_index(r, &s) == 1);
    router_free(r);
    r = router_build(cfg, "nobody", err, sizeof(err));
    CHECK(r && router_nrules(r) == 0 && match_index(r, &s) == -1);
    router_free(r);
}

static void test_many_attrs(void)
{
    /* more distinct attributes than the per-match cache holds */
    char err[256], name[32], val[32];
    struct config *cfg = cfg_new(1);
    route_rules(&cfg->routes[0], 2);
    struct attr_set s;
    attr_set_init(&s);
    for (int i = 0; i < 24; i++) {
        snprintf(name, sizeof(name), "header.h%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        add(&cfg->routes[0].rules[0], cond(name, CFG_MATCH_EXACT, val));
        add(&cfg->routes[0].rules[1], cond(name, i == 23 ? CFG_MATCH_PRESENT : CFG_MATCH_PREFIX, "v"));
        attr_set_add(&s, name, i == 20 ? "x" : val);
    }
    struct router *r = router_build(cfg, "web", err, sizeof(err));
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK(match_index(r, &s) == -1);
    attr_set_init(&s);
    for (int i = 0; i < 24; i++) {
        snprintf(name, sizeof(name), "header.h%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        attr_set_add(&s, name, val);
    }
    CHECK(match_index(r, &s) == 0);
    router_free(r);
}

static void test_errors(void)
{
    char err[256];
    struct config *cfg = cfg_new(1);
    route_rules(&cfg->routes[0], 2);
    add(&cfg->routes[0].rules[0], cond("path", CFG_MATCH_PREFIX, "/"));
    struct cfg_cond c = cond("path", CFG_MATCH_REGEX, "^/api/(v[0-9]+");
    c.where.file = "routes.yaml";
    c.where.line = 42;
    add(&cfg->routes[0].rules[1], c);
    CHECK(router_build(cfg, "web", err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "routes.yaml:42: bad regex: ", 27) == 0 && strstr(err, " at offset 14"));
    fprintf(stderr, "  (regex error reads: %s)\n", err);

    c = cond("path", CFG_MATCH_EXACT, NULL);
    cfg->routes[0].rules[1].conds[0] = c;
    CHECK(router_build(cfg, "web", err, sizeof(err)) == NULL && strstr(err, "t.yaml:7:"));
    c = cond("header.", CFG_MATCH_PRESENT, NULL);
    cfg->routes[0].rules[1].conds[0] = c;
    CHECK(router_build(cfg, "web", err, sizeof(err)) == NULL && strstr(err, "bad attribute"));
    const char *h[] = {"*"};
    cfg->routes[0].rules[1].nconds = 0;
    hostnames(&cfg->routes[0], h, 1);
    CHECK(router_build(cfg, "web", err, sizeof(err)) == NULL && strstr(err, "t.yaml:1:"));
    CHECK(router_build(cfg, "web", NULL, 0) == NULL);
}

/* The i-th of n evenly spaced 32-bit values, rounded up: picking over
 * i = 0..n-1 then gives every backend exactly its share. */
static uint32_t spaced(int i, int n)
{
    return (uint32_t)((((uint64_t)i << 32) + (uint64_t)n - 1) / (uint64_t)n);
}

static void test_pick(void)
{
    char err[256];
    struct config *cfg = cfg_new(1);
    route_rules(&cfg->routes[0], 5);
    struct cfg_rule *ru = cfg->routes[0].rules;
    static const uint32_t w0[] = {90, 10}, w1[] = {0, 5, 0, 5, 0}, w2[] = {0, 0},
                          w4[] = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
    const uint32_t *ws[] = {w0, w1, w2, NULL, w4};
    size_t ns[] = {2, 5, 2, 0, 3};
    for (int i = 0; i < 5; i++) {
        ru[i].backends = talloc(ns[i] * sizeof(struct cfg_backend));
        ru[i].nbackends = ns[i];
        for (size_t j = 0; j < ns[i]; j++) {
            ru[i].backends[j].cluster = tstr("c");
            ru[i].backends[j].weight = ws[i][j];
        }
    }
    struct router *r = router_build(cfg, "web", err, sizeof(err));
    CHECK(r != NULL);
    if (!r)
        return;
    /* evenly spaced randoms give exact shares */
    int cnt[5] = {0};
    const int N = 1000;
    for (int i = 0; i < N; i++)
        cnt[route_pick_backend(router_rule(r, 0), spaced(i, N))]++;
    CHECK(cnt[0] == 900 && cnt[1] == 100);
    memset(cnt, 0, sizeof(cnt));
    for (int i = 0; i < N; i++) {
        int b = route_pick_backend(router_rule(r, 1), spaced(i, N));
        if (b >= 0)
            cnt[b]++;
    }
    CHECK(cnt[0] == 0 && cnt[2] == 0 && cnt[4] == 0 && cnt[1] == 500 && cnt[3] == 500);
    CHECK(route_pick_backend(router_rule(r, 0), 0) == 0);
    CHECK(route_pick_backend(router_rule(r, 0), UINT32_MAX) == 1);
    CHECK(route_pick_backend(router_rule(r, 1), UINT32_MAX) == 3);
    CHECK(route_pick_backend(router_rule(r, 2), 12345) == -1);
    CHECK(route_pick_backend(router_rule(r, 3), 12345) == -1);
    memset(cnt, 0, sizeof(cnt));
    for (int i = 0; i < 999; i++)
        cnt[route_pick_backend(router_rule(r, 4), spaced(i, 999))]++;
    CHECK(cnt[0] == 333 && cnt[1] == 333 && cnt[2] == 333);
    /* a pseudo-random sequence lands near the weights */
    memset(cnt, 0, sizeof(cnt));
    uint32_t x = 2463534242u;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        cnt[route_pick_backend(router_rule(r, 0), x)]++;
    }
    CHECK(cnt[0] > 89000 && cnt[0] < 91000);
    router_free(r);
}

/* ---- randomized differential test ----------------------------------------------- */

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static uint32_t rn(uint32_t n) { return rnd() % n; }
#define PICK(a) ((a)[rn(sizeof(a) / sizeof((a)[0]))])

static const char *const paths[] = {"/", "/a", "/a/", "/a/b", "/a/bc", "/a/b/c", "/A/B", "/b",
                                    "/b/c", "/ab", "/aab", "/a.b", "/a/b/cc", "", "/c", "/A/b"};
static const char *const prefixes[] = {"", "/", "/a", "/a/", "/a/b", "/A", "/b", "/a/b/c",
                                       "/ab", "/c", "/a/B"};
static const char *const suffixes[] = {"", "b", "/c", "c", "B", "bc", "/a/b"};
static const char *const regexes[] = {"^/a", "^/a/b$", "^/a/", "^/a+", "^/a?b", "^/[ab]", "b$",
                                      "^/a\\/b", "^/A", ".*", "^/(a|b)/", "^/a/b{1}", "^/a.b",
                                      "^/a\\.b", "^$", "^", "^/b/c", "^/a/b/c+", "^/a*b", "^/ab|^/c"};
static const char *const auths[] = {"example.com", "Example.COM:8080", "a.example.com",
                                    "b.a.example.com:80", "other.org", "[::1]:80", "[::1]",
                                    "x.org:443", "example.comx", "A.EXAMPLE.com", ".example.com",
                                    ".org:80"};
static const char *const hostcfg[] = {"example.com", "*.example.com", "other.org", "[::1]",
                                      "*.org", "A.Example.com"};
static const char *const methods[] = {"GET", "HEAD", "POST", "get", "PUT"};
static const char *const hvals[] = {"1", "2", "abc", "ABC", "", "ab"};
static const char *const tables[] = {"users", "orders", "Users", "items"};
static const char *const attrs[] = {"path", "path", "path", "path", "path", "authority", "method",
                                    "method", "header.x-a", "header.X-B", "query.q", "sql.tables"};

static const char *const *vocab(const char *attr, size_t *n)
{
#define V(a) (*n = sizeof(a) / sizeof(a[0]), a)
    if (!strcmp(attr, "path"))
        return V(paths);
    if (!strcmp(attr, "authority"))
        return V(auths);
    if (!strcmp(attr, "method"))
        return V(methods);
    if (!strcmp(attr, "sql.tables"))
        return V(tables);
    return V(hvals);
#undef V
}

static const char *rvocab(const char *attr)
{
    size_t n;
    const char *const *v = vocab(attr, &n);
    return v[rn((uint32_t)n)];
}

/* Sparse rule sets (no invert/present/absent, more conditions per rule)
 * leave many messages unmatched and push matches deep into the table. */
static bool sparse;

static struct cfg_cond random_cond(void)
{
    const char *attr = PICK(attrs);
    bool path = !strcmp(attr, "path");
    struct cfg_cond c;
    switch (rn(10)) {
    case 0:
    case 1:
    case 2:
        c = cond(attr, CFG_MATCH_EXACT, rvocab(attr));
        break;
    case 3:
    case 4:
        c = cond(attr, CFG_MATCH_PREFIX, path ? PICK(prefixes) : rvocab(attr));
        break;
    case 5:
        c = cond(attr, CFG_MATCH_SUFFIX, path ? PICK(suffixes) : rvocab(attr));
        break;
    case 6:
        c = cond(attr, CFG_MATCH_REGEX, path ? PICK(regexes) : "^a");
        break;
    case 7:
        if (!sparse && rn(3) == 0) {
            c = cond(attr, rn(2) ? CFG_MATCH_PRESENT : CFG_MATCH_ABSENT, NULL);
            break;
        }
        /* fall through */
    default: {
        c = cond(attr, CFG_MATCH_IN, NULL);
        size_t n = 1 + rn(3);
        c.values = talloc(n * sizeof(char *));
        for (size_t i = 0; i < n; i++)
            c.values[i] = tstr(rvocab(attr));
        c.nvalues = n;
    }
    }
    c.invert = !sparse && rn(12) == 0;
    c.ignore_case = rn(5) == 0;
    return c;
}

static struct config *random_config(size_t nroutes)
{
    struct config *cfg = cfg_new(nroutes);
    for (size_t i = 0; i < nroutes; i++) {
        struct cfg_route *rt = &cfg->routes[i];
        if (rn(10) == 0)
            rt->listeners[0] = tstr("other");
        if (rn(4) == 0) {
            size_t n = 1 + rn(2);
            const char *h[2] = {PICK(hostcfg), PICK(hostcfg)};
            hostnames(rt, h, n);
        }
        route_rules(rt, 1 + rn(4));
        for (size_t j = 0; j < rt->nrules; j++) {
            size_t nc = rn(200) == 0 && !sparse ? 0 : 1 + rn(3) + rn(2) + sparse;
            for (size_t k = 0; k < nc; k++)
                add(&rt->rules[j], random_cond());
        }
    }
    return cfg;
}

/* A vocabulary value most of the time, else one no rule mentions. */
static const char *mval(const char *attr)
{
    static const char *const noise[] = {"/zz", "/a/zz", "zz", "/", "ZZ:1"};
    return rn(4) ? rvocab(attr) : PICK(noise);
}

static void random_message(struct attr_set *s)
{
    attr_set_init(s);
    if (rn(10))
        attr_set_add(s, "path", mval("path"));
    if (rn(2))
        attr_set_add(s, "authority", mval("authority"));
    if (rn(3))
        attr_set_add(s, "method", mval("method"));
    for (int i = 0, n = (int)rn(3); i < n; i++)
        attr_set_add(s, rn(2) ? "header.x-a" : "header.X-A", mval("header.x-a"));
    if (rn(3) == 0)
        attr_set_add(s, "header.x-b", mval("header.x-b"));
    if (rn(3) == 0)
        attr_set_add(s, "query.q", mval("query.q"));
    for (int i = 0, n = (int)rn(4); i < n; i++)
        attr_set_add(s, "sql.tables", mval("sql.tables"));
}

/* The independent evaluator: the documented semantics over the config. */
static int ref_values(const struct attr_set *s, const char *attr, attr_val *out)
{
    char name[64];
    snprintf(name, sizeof(name), "%s", attr);
    if (!strncmp(name, "header.", 7))
        for (char *p = name + 7; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p += 32;
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (s->e[i].nlen == strlen(name) && !memcmp(s->buf + s->e[i].noff, name, strlen(name))) {
            out[n].p = s->buf + s->e[i].voff;
            out[n].len = s->e[i].vlen;
            n++;
        }
    return n;
}

static bool ref_eq(const char *a, size_t alen, const char *b, size_t blen, bool ic)
{
    return alen == blen && (ic ? strncasecmp(a, b, alen) == 0 : memcmp(a, b, alen) == 0);
}

static bool ref_cond(const struct cfg_cond *c, const struct attr_set *s)
{
    attr_val v[ATTR_SET_MAX];
    int n = ref_values(s, c->attr, v);
    bool r = false;
    if (c->op == CFG_MATCH_PRESENT)
        r = n > 0;
    else if (c->op == CFG_MATCH_ABSENT)
        r = n == 0;
    for (int i = 0; i < n && !r && c->op != CFG_MATCH_PRESENT && c->op != CFG_MATCH_ABSENT; i++) {
        size_t vl = c->value ? strlen(c->value) : 0;
        switch (c->op) {
        case CFG_MATCH_EXACT:
            r = ref_eq(v[i].p, v[i].len, c->value, vl, c->ignore_case);
            break;
        case CFG_MATCH_PREFIX:
            r = v[i].len >= vl && ref_eq(v[i].p, vl, c->value, vl, c->ignore_case);
            break;
        case CFG_MATCH_SUFFIX:
            r = v[i].len >= vl && ref_eq(v[i].p + v[i].len - vl, vl, c->value, vl, c->ignore_case);
            break;
        case CFG_MATCH_IN:
            for (size_t k = 0; k < c->nvalues && !r; k++)
                r = ref_eq(v[i].p, v[i].len, c->values[k], strlen(c->values[k]), c->ignore_case);
            break;
        case CFG_MATCH_REGEX: {
            int ec;
            PCRE2_SIZE off;
            pcre2_code *re = pcre2_compile((PCRE2_SPTR)c->value, PCRE2_ZERO_TERMINATED,
                                           c->ignore_case ? PCRE2_CASELESS : 0, &ec, &off, NULL);
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
            r = pcre2_match(re, (PCRE2_SPTR)v[i].p, v[i].len, 0, 0, md, NULL) >= 0;
            pcre2_match_data_free(md);
            pcre2_code_free(re);
            break;
        }
        default:
            break;
        }
    }
    return r != c->invert;
}

static bool ref_host(const struct cfg_route *rt, const struct attr_set *s)
{
    attr_val v[ATTR_SET_MAX];
    int n = ref_values(s, "authority", v);
    for (int i = 0; i < n; i++) {
        size_t hl = v[i].len;
        if (v[i].len && v[i].p[0] == '[') {
            const char *e = memchr(v[i].p, ']', v[i].len);
            hl = e ? (size_t)(e - v[i].p) + 1 : v[i].len;
        } else {
            const char *e = memchr(v[i].p, ':', v[i].len);
            hl = e ? (size_t)(e - v[i].p) : v[i].len;
        }
        for (size_t k = 0; k < rt->nhostnames; k++) {
            const char *h = rt->hostnames[k];
            if (h[0] == '*') {
                size_t sl = strlen(h + 1);
                if (hl > sl && strncasecmp(v[i].p + hl - sl, h + 1, sl) == 0)
                    return true;
            } else if (ref_eq(v[i].p, hl, h, strlen(h), true)) {
                return true;
            }
        }
    }
    return false;
}

/* First matching rule by walking the config in order, -1 if none. */
static int ref_match(const struct config *cfg, const struct attr_set *s)
{
    int idx = 0;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct cfg_route *rt = &cfg->routes[i];
        if (strcmp(rt->listeners[0], "web"))
            continue;
        bool host = rt->nhostnames == 0 || ref_host(rt, s);
        for (size_t j = 0; j < rt->nrules; j++, idx++) {
            bool ok = host;
            for (size_t k = 0; k < rt->rules[j].nconds && ok; k++)
                ok = ref_cond(&rt->rules[j].conds[k], s);
            if (ok)
                return idx;
        }
    }
    return -1;
}

static int linear_match(const struct router *r, const struct attr_set *s)
{
    struct attr_src src = attr_set_src(s);
    for (size_t i = 0; i < router_nrules(r); i++)
        if (route_rule_test(router_rule(r, i), &src))
            return (int)i;
    return -1;
}

static void test_differential(void)
{
    char err[256];
    long compared = 0, mismatches = 0, hits = 0, deep = 0;
    for (int round = 0; round < 40; round++) {
        sparse = round % 2;
        size_t nroutes = 20 + rn(200);
        struct config *cfg = random_config(nroutes);
        struct router *r = router_build(cfg, "web", err, sizeof(err));
        if (!r) {
            fprintf(stderr, "build: %s\n", err);
            failed++;
            tfree_all();
            continue;
        }
        for (int i = 0; i < 400; i++) {
            struct attr_set s;
            random_message(&s);
            int got = match_index(r, &s), lin = linear_match(r, &s), ref = ref_match(cfg, &s);
            compared++;
            hits += got >= 0;
            deep += got >= 20; /* past the first routes: the index did real work */
            if (got != lin || got != ref) {
                if (mismatches++ < 5) {
                    fprintf(stderr, "round %d: router %d linear %d reference %d\n", round, got,
                            lin, ref);
                    for (int k = 0; k < s.n; k++)
                        fprintf(stderr, "  %.*s = '%.*s'\n", s.e[k].nlen, s.buf + s.e[k].noff,
                                s.e[k].vlen, s.buf + s.e[k].voff);
                }
            }
        }
        router_free(r);
        tfree_all();
    }
    sparse = false;
    fprintf(stderr, "  differential: %ld messages, %ld matched a rule (%ld beyond rule 20), %ld mismatches\n",
            compared, hits, deep, mismatches);
    CHECK(mismatches == 0);
    CHECK(hits > compared / 4 && hits < compared * 9 / 10 && deep > compared / 10);
}

/* ---- index structures, directly -------------------------------------------------- */

static bool starts(const char *v, size_t vl, const char *k, size_t kl, bool rev, bool fold)
{
    if (kl > vl)
        return false;
    const char *p = rev ? v + vl - kl : v;
    return fold ? strncasecmp(p, k, kl) == 0 : memcmp(p, k, kl) == 0;
}

/* Tries with long edges (past the inline label), wide fan-out (past the
 * inline child bytes), suffix mode and folding, against brute force. */
static void test_trie(void)
{
    enum { NK = 600 };
    static char keys[NK][64];
    static size_t klen[NK];
    for (int mode = 0; mode < 4; mode++) {
        bool rev = mode & 1, fold = mode & 2;
        struct ridx_trie *t = ridx_trie_new(rev);
        CHECK(t != NULL);
        int add_failed = 0;
        for (int i = 0; i < NK; i++) {
            /* shared long stems, then a byte from a wide alphabet */
            int stem = (int)rn(4);
            size_t n = 0;
            if (stem == 1)
                n = (size_t)snprintf(keys[i], 64, "/a-very-long-shared-stem-of-forty-bytes/");
            else if (stem == 2)
                n = (size_t)snprintf(keys[i], 64, "/s");
            for (size_t extra = rn(6); extra > 0 && n < 60; extra--)
                keys[i][n++] = (char)(fold ? 'a' + rn(26) : 0x21 + rn(90));
            keys[i][n] = 0;
            klen[i] = n;
            if (rev) /* suffix keys: reverse so stems sit at the end */
                for (size_t a = 0, b = n ? n - 1 : 0; a < b; a++, b--) {
                    char c = keys[i][a];
                    keys[i][a] = keys[i][b];
                    keys[i][b] = c;
                }
            add_failed += ridx_trie_add(t, keys[i], n, (uint32_t)i) < 0;
        }
        CHECK(add_failed == 0);
        CHECK(ridx_trie_freeze(t) == 0);
        int bad = 0;
        for (int q = 0; q < 3000; q++) {
            char v[96];
            size_t vl;
            if (rn(2)) { /* extend a key */
                int k = (int)rn(NK);
                memcpy(v, keys[k], klen[k]);
                vl = klen[k];
                if (rev) {
                    memmove(v + 2, v, vl);
                    v[0] = 'q';
                    v[1] = 'Z';
                    vl += 2;
                } else if (rn(3) == 0 && vl > 0) {
                    /* end the value inside the key, whose remaining bytes
                     * stay in the buffer past the value's end */
                    vl -= 1 + rn((uint32_t)vl);
                } else {
                    for (size_t e = rn(8); e > 0; e--)
                        v[vl++] = (char)(0x21 + rn(90));
                }
            } else {
                vl = rn(20);
                for (size_t e = 0; e < vl; e++)
                    v[e] = (char)(0x21 + rn(90));
            }
            if (fold)
                for (size_t e = 0; e < vl; e++)
                    if (rn(2) && v[e] >= 'a' && v[e] <= 'z')
                        v[e] = (char)(v[e] - 32);
            static bool want[NK], got[NK];
            memset(want, 0, sizeof(want));
            memset(got, 0, sizeof(got));
            for (int k = 0; k < NK; k++)
                want[k] = starts(v, vl, keys[k], klen[k], rev, fold);
            struct ridx_walk w;
            const uint32_t *ids;
            uint32_t n;
            ridx_walk_init(&w, t, v, vl, fold);
            while ((ids = ridx_walk_next(&w, &n)))
                for (uint32_t j = 0; j < n; j++) {
                    got[ids[j]] = true;
                    if (j && ids[j] <= ids[j - 1])
                        bad++;
                }
            bad += memcmp(want, got, sizeof(want)) != 0;
        }
        CHECK(bad == 0);
        ridx_trie_free(t);
    }

    /* the exact table: growth, tags, folded lookups, lists in order */
    struct ridx_hash *h = ridx_hash_new();
    char k[32];
    for (uint32_t i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "key-%u", i % 1000);
        ridx_hash_add(h, i % 3, k, strlen(k), i);
        ridx_hash_add(h, i % 3, k, strlen(k), i); /* repeats are dropped */
    }
    CHECK(ridx_hash_size(h) == 3000);
    CHECK(ridx_hash_freeze(h) == 0);
    uint32_t n;
    /* "key-7" came as 7, 1007, 2007, 3007, 4007 with tags 1, 2, 0, 1, 2 */
    const uint32_t *ids = ridx_hash_get(h, 1, "key-7", 5, false, &n);
    CHECK(ids && n == 2 && ids[0] == 7 && ids[1] == 3007);
    ids = ridx_hash_get(h, 0, "key-7", 5, false, &n);
    CHECK(ids && n == 1 && ids[0] == 2007);
    CHECK(ridx_hash_get(h, 1, "KEY-7", 5, true, &n) && n == 2);
    CHECK(!ridx_hash_get(h, 1, "KEY-7", 5, false, &n));
    CHECK(!ridx_hash_get(h, 1, "key-1000", 8, false, &n));
    ridx_hash_free(h);
}

/* ---- threads ------------------------------------------------------------------------ */

#define TMSG 512
struct tjob {
    const struct router *r;
    const struct attr_set *msgs;
    const int *want;
    int iters;
    int bad;
    unsigned seed;
};

static void *thread_main(void *arg)
{
    struct tjob *j = arg;
    for (int i = 0; i < j->iters; i++) {
        int k = (int)((j->seed + (unsigned)i * 7919u) % TMSG);
        if (match_index(j->r, &j->msgs[k]) != j->want[k])
            j->bad++;
    }
    return NULL;
}

static void test_threads(void)
{
    char err[256];
    struct config *cfg = random_config(300);
    struct router *r = router_build(cfg, "web", err, sizeof(err));
    CHECK(r != NULL);
    if (!r)
        return;
    static struct attr_set msgs[TMSG];
    static int want[TMSG];
    for (int i = 0; i < TMSG; i++) {
        random_message(&msgs[i]);
        want[i] = ref_match(cfg, &msgs[i]);
    }
    pthread_t th[4];
    struct tjob jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct tjob){r, msgs, want, 20000, 0, (unsigned)i * 131u};
        CHECK(pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        bad += jobs[i].bad;
    }
    CHECK(bad == 0);
    router_free(r);
}

int main(void)
{
    test_attr();
    test_ops();
    test_lists();
    test_hosts();
    test_regex_hints();
    tfree_all();
    test_first_match();
    tfree_all();
    test_many_attrs();
    test_errors();
    test_pick();
    tfree_all();
    test_trie();
    test_differential();
    test_threads();
    tfree_all();
    free(allocs);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
