/* test_config.c - unit tests of the configuration loader (src/config/).
 *
 * Standalone: prints one line per failure and "N passed, M failed", exits
 * non-zero on any failure. Run from the repository root (it loads
 * examples/quickstart.yaml and docs/config.md).
 *
 * Error cases mark the line they expect the error on with a `#<` comment in
 * the YAML itself, so the expected line numbers stay right when a case is
 * edited. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config/config.h"
#include "proto/pg/pg_scram.h"
#include "proxy/pg_users.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "check_config.h"



#define API "apiVersion: strand.dev/v1alpha1\n"
/* A listener `web`, a tcp listener `raw` and clusters `be`, `be2`, `hash`
 * (consistent_hash without hashOn) for the route cases to refer to. */
#define BASE                                                                                   \
    API "kind: Listener\nmetadata: {name: web}\nspec: {address: 127.0.0.1:10000}\n---\n" API   \
        "kind: Listener\nmetadata: {name: raw}\nspec: {address: 127.0.0.1:10001, protocol: "   \
        "tcp}\n---\n" API "kind: Cluster\nmetadata: {name: be}\nspec:\n  endpoints: "           \
        "[{address: 127.0.0.1:8080}]\n---\n" API "kind: Cluster\nmetadata: {name: be2}\n"       \
        "spec:\n  endpoints: [{address: 127.0.0.1:8081}]\n---\n" API                            \
        "kind: Cluster\nmetadata: {name: hash}\nspec:\n  loadBalancer: consistent_hash\n"       \
        "  endpoints: [{address: 127.0.0.1:8082}]\n---\n"
#define ROUTE(parents) API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: " parents "\n  rules:\n"
#define HROUTE                                                                                 \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: h}\nspec:\n"  \
    "  parentRefs: [{name: web}]\n  rules:\n"

/* Loads one buffer named t.yaml; NULL on error (err filled). */
static struct config *load(const char *yaml, char *err, size_t errlen)
{
    return load_yaml(yaml, strlen(yaml), err, errlen);
}

/* Expects the load to fail with "t.yaml:<marker line>: ...substr...". */
static void expect_err_at(int src_line, const char *yaml, const char *substr)
{
    char err[1024];
    CHECK(marker_line(yaml) > 0, "case at line %d has no #< marker", src_line);
    struct config *cfg = load(yaml, err, sizeof(err));
    check_load_err(src_line, cfg, err, yaml, substr);
}
#define EXPECT_ERR(yaml, substr) expect_err_at(__LINE__, yaml, substr)

static void test_quickstart(void)
{
    const char *paths[] = {"examples/quickstart.yaml"};
    char err[512];
    struct config *cfg = NULL;
    int rc = config_load_files(paths, 1, &cfg, err, sizeof(err));
    CHECK(rc == 0, "%s", err);
    if (rc != 0)
        return;
    CHECK(cfg->workers == 1, "%u", cfg->workers);
    CHECK(cfg->admin_address && strcmp(cfg->admin_address, "127.0.0.1:9901") == 0, "admin");
    CHECK(cfg->admin_addr.ss_family == AF_INET, "admin family");
    CHECK(cfg->access_log.path && strcmp(cfg->access_log.path, "stdout") == 0, "log");
    CHECK(cfg->nlisteners == 1 && strcmp(cfg->listeners[0].name, "web") == 0, "listener");
    const struct cfg_listener *l = config_listener(cfg, "web");
    CHECK(l != NULL && l->proto == CFG_PROTO_HTTP, "web http");
    if (l != NULL) {
        const struct sockaddr_in *a = (const void *)&l->addr;
        CHECK(a->sin_family == AF_INET && ntohs(a->sin_port) == 10000 &&
                  ntohl(a->sin_addr.s_addr) == 0x7f000001,
              "web address");
        CHECK(l->addrlen == sizeof(struct sockaddr_in), "addrlen");
        CHECK(strcmp(l->where.file, "examples/quickstart.yaml") == 0 && l->where.line > 1,
              "where %s:%d", l->where.file, l->where.line);
    }
    const struct cfg_cluster *c = config_cluster(cfg, "backend");
    CHECK(c != NULL && c->nendpoints == 1, "cluster backend");
    if (c != NULL) {
        const struct sockaddr_in *a = (const void *)&c->endpoints[0].addr;
        CHECK(ntohs(a->sin_port) == 8080 && c->endpoints[0].weight == 1, "endpoint");
    }
    CHECK(config_cluster(cfg, "nope") == NULL && config_listener(cfg, "nope") == NULL, "lookup");
    CHECK(cfg->nroutes == 1, "%zu routes", cfg->nroutes);
    if (cfg->nroutes == 1) {
        const struct cfg_route *r = &cfg->routes[0];
        CHECK(strcmp(r->name, "default") == 0 && r->nlisteners == 1 &&
                  strcmp(r->listeners[0], "web") == 0,
              "route");
        CHECK(r->nrules == 2, "%zu rules", r->nrules);
        if (r->nrules == 2) {
            const struct cfg_rule *a = &r->rules[0], *b = &r->rules[1];
            CHECK(a->nconds == 1 && a->conds[0].op == CFG_MATCH_EXACT &&
                      strcmp(a->conds[0].attr, "path") == 0 &&
                      strcmp(a->conds[0].value, "/strand/hello") == 0,
                  "hello cond");
            CHECK(a->direct.status == 200 && a->direct.body != NULL &&
                      strcmp(a->direct.content_type, "text/plain") == 0 && a->nbackends == 0,
                  "hello direct");
            CHECK(b->nconds == 1 && b->conds[0].op == CFG_MATCH_PREFIX &&
                      strcmp(b->conds[0].value, "/") == 0,
                  "catch-all cond");
            CHECK(b->nbackends == 1 && strcmp(b->backends[0].cluster, "backend") == 0 &&
                      b->backends[0].weight == 1 && b->direct.status == 0,
                  "catch-all backend");
        }
    }
    config_free(cfg);
}

static void test_defaults(void)
{
    char err[512];
    struct config *cfg = load(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n", err,
                              sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg == NULL)
        return;
    CHECK(cfg->workers == 0, "workers");
    CHECK(cfg->admin_address && strcmp(cfg->admin_address, "127.0.0.1:9901") == 0,
          "admin default");
    CHECK(cfg->drain_timeout_ms == 15000 && cfg->buffer_bytes == 32768, "proxy defaults");
    CHECK(cfg->access_log.path == NULL, "no access log");
    const struct cfg_listener *l = config_listener(cfg, "web");
    CHECK(l && l->idle_timeout_ms == 300000 && l->request_timeout_ms == 15000 &&
              l->header_timeout_ms == 10000 && l->max_header_bytes == 65536 &&
              l->max_headers == 100 && l->xff && l->via && l->request_id,
          "listener defaults");
    l = config_listener(cfg, "raw");
    CHECK(l && l->proto == CFG_PROTO_TCP && l->idle_timeout_ms == 3600000, "tcp defaults");
    const struct cfg_cluster *c = config_cluster(cfg, "be");
    CHECK(c && c->lb == CFG_LB_ROUND_ROBIN && c->hash_attr == NULL &&
              c->max_connections == 1024 && c->max_pending == 1024 && c->max_requests == 4096 &&
              c->connect_timeout_ms == 2000 && c->idle_timeout_ms == 60000,
          "cluster defaults");
    CHECK(c && c->outlier.consecutive_5xx == 5 && c->outlier.consecutive_failures == 5 &&
              c->outlier.base_ejection_ms == 30000 && c->outlier.max_ejection_percent == 50,
          "outlier defaults");
    const struct cfg_rule *r = &cfg->routes[0].rules[0];
    CHECK(strcmp(r->name, "r/0") == 0, "rule name %s", r->name);
    CHECK(r->nconds == 0 && r->timeout_ms == 0 && r->retry.attempts == 0 && r->retry.on == 0 &&
              r->retry.per_try_timeout_ms == 0 && r->retry.budget_percent == 20 &&
              r->retry.min_retry_concurrency == 3 && r->rewrite_prefix == NULL &&
              r->hash_attr == NULL && r->direct.status == 0 && r->direct.content_type == NULL,
          "rule defaults");
    CHECK(cfg->routes[0].nhostnames == 0, "no hostnames");
    CHECK(cfg->nfiles == 1 && strcmp(cfg->files[0], "t.yaml") == 0, "files");
    config_free(cfg);

    /* An empty file, and empty documents, are a valid (empty) config. */
    cfg = load("# nothing\n", err, sizeof(err));
    CHECK(cfg != NULL && cfg->nlisteners == 0 && cfg->admin_address != NULL, "%s", err);
    config_free(cfg);
    cfg = load("---\n---\n", err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    config_free(cfg);
}

static void test_full_ok(void)
{
    char err[512];
    const char *y =
        API "kind: Proxy\nmetadata: {name: p}\nspec:\n  workers: 4\n  admin: {disabled: true}\n"
            "  drainTimeout: 1m30s\n  bufferBytes: 1024\n  accessLog: {path: /var/log/a.log}\n"
            "---\n" BASE API "kind: Cluster\nmetadata: {name: v1}\nspec:\n"
            "  endpoints:\n  - {address: '[::1]:9000', weight: 3}\n  - {address: localhost:9001}\n"
            "  loadBalancer: consistent_hash\n  hashOn: header.X-User\n  maxConnections: 7\n"
            "  maxPendingRequests: 0\n  maxRequests: 9\n  connectTimeout: 250ms\n"
            "  idleTimeout: 1.5s\n  outlierDetection: {consecutive5xx: 0, consecutiveFailures: 2,"
            " baseEjectionTime: 10s, maxEjectionPercent: 100}\n"
            "---\n" ROUTE("[web]") "  - name: api\n    match:\n"
                 "    - {attribute: path, prefix: /api}\n"
                 "    - {attribute: header.X-Canary, present: true}\n"
                 "    - {attribute: method, in: [GET, HEAD]}\n"
                 "    - {attribute: path, regex: '^/v[0-9]+/', invert: true}\n"
                 "    - {attribute: header.x-env, exact: Prod, ignoreCase: true}\n"
                 "    - {attribute: query.Q, absent: true}\n"
                 "    backends: [{cluster: v1, weight: 90}, {cluster: be, weight: 10}]\n"
                 "    timeout: 5s\n    retries: {attempts: 2, on: [5xx, reset], perTryTimeout: 1s,"
                 " budgetPercent: 30, minRetryConcurrency: 1}\n"
                 "    requestHeaders: {set: {X-A: b}, add: {x-c: ''}, remove: [X-Secret]}\n"
                 "    responseHeaders: {set: {x-served-by: strand}}\n"
                 "    rewrite: {pathPrefix: /}\n    hashOn: header.X-Other\n"
                 "  - match: [{attribute: path, exact: /hello}]\n"
                 "    directResponse: {status: 404, body: \"no\\n\", contentType: text/html}\n";
    struct config *cfg = load(y, err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg == NULL)
        return;
    CHECK(cfg->workers == 4 && cfg->admin_address == NULL && cfg->admin_addrlen == 0 &&
              cfg->drain_timeout_ms == 90000 && cfg->buffer_bytes == 1024 &&
              strcmp(cfg->access_log.path, "/var/log/a.log") == 0,
          "proxy");
    const struct cfg_cluster *c = config_cluster(cfg, "v1");
    CHECK(c && c->nendpoints == 2 && c->endpoints[0].weight == 3 &&
              c->endpoints[0].addr.ss_family == AF_INET6 &&
              c->endpoints[0].addrlen == sizeof(struct sockaddr_in6) &&
              strcmp(c->endpoints[0].address, "[::1]:9000") == 0,
          "v6 endpoint");
    CHECK(c && c->lb == CFG_LB_HASH && strcmp(c->hash_attr, "header.x-user") == 0 &&
              c->max_connections == 7 && c->max_pending == 0 && c->max_requests == 9 &&
              c->connect_timeout_ms == 250 && c->idle_timeout_ms == 1500,
          "cluster fields");
    CHECK(c && c->outlier.consecutive_5xx == 0 && c->outlier.consecutive_failures == 2 &&
              c->outlier.base_ejection_ms == 10000 && c->outlier.max_ejection_percent == 100,
          "outlier");
    const struct cfg_route *rt = &cfg->routes[0];
    const struct cfg_rule *r = &rt->rules[0];
    CHECK(r->nconds == 6, "%zu", r->nconds);
    if (r->nconds == 6) {
        CHECK(strcmp(r->conds[1].attr, "header.x-canary") == 0 &&
                  r->conds[1].op == CFG_MATCH_PRESENT,
              "header attr lower-cased: %s", r->conds[1].attr);
        CHECK(r->conds[2].op == CFG_MATCH_IN && r->conds[2].nvalues == 2 &&
                  strcmp(r->conds[2].values[1], "HEAD") == 0,
              "in");
        CHECK(r->conds[3].op == CFG_MATCH_REGEX && r->conds[3].invert &&
                  strcmp(r->conds[3].value, "^/v[0-9]+/") == 0,
              "regex");
        CHECK(r->conds[4].ignore_case && strcmp(r->conds[4].value, "Prod") == 0, "ignoreCase");
        CHECK(strcmp(r->conds[5].attr, "query.Q") == 0 && r->conds[5].op == CFG_MATCH_ABSENT,
              "query names keep case");
        CHECK(r->conds[0].where.line > 1 && strcmp(r->conds[0].where.file, "t.yaml") == 0,
              "cond where");
    }
    CHECK(r->nbackends == 2 && r->backends[0].weight == 90 &&
              strcmp(r->backends[1].cluster, "be") == 0,
          "backends");
    CHECK(r->timeout_ms == 5000 && r->retry.attempts == 2 &&
              r->retry.on == (CFG_RETRY_5XX | CFG_RETRY_RESET) &&
              r->retry.per_try_timeout_ms == 1000 && r->retry.budget_percent == 30 &&
              r->retry.min_retry_concurrency == 1,
          "retries");
    CHECK(r->request_headers.nset == 1 && strcmp(r->request_headers.set[0].name, "x-a") == 0 &&
              strcmp(r->request_headers.set[0].value, "b") == 0,
          "set lower-cased");
    CHECK(r->request_headers.nadd == 1 && strcmp(r->request_headers.add[0].value, "") == 0,
          "empty value");
    CHECK(r->request_headers.nremove == 1 &&
              strcmp(r->request_headers.remove[0], "x-secret") == 0,
          "remove lower-cased");
    CHECK(r->response_headers.nset == 1, "response headers");
    CHECK(r->rewrite_prefix && strcmp(r->rewrite_prefix, "/") == 0, "rewrite");
    CHECK(r->hash_attr && strcmp(r->hash_attr, "header.x-other") == 0, "rule hashOn");
    const struct cfg_rule *d = &rt->rules[1];
    CHECK(strcmp(d->name, "r/1") == 0 && d->direct.status == 404 &&
              strcmp(d->direct.body, "no\n") == 0 &&
              strcmp(d->direct.content_type, "text/html") == 0,
          "direct");
    config_free(cfg);

    /* retries with no `on` retry connect failures; a tcp route may too. */
    cfg = load(BASE ROUTE("[raw]") "  - backends: [{cluster: be}]\n"
                                   "    retries: {attempts: 1}\n"
                                   "    match: [{attribute: source.address, prefix: '10.'}]\n",
               err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg != NULL)
        CHECK(cfg->routes[0].rules[0].retry.on == CFG_RETRY_CONNECT_FAILURE, "default on");
    config_free(cfg);

    /* hostnames are lower-cased; wildcards allowed. */
    cfg = load(BASE API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [web]\n"
                        "  hostnames: [Example.COM, '*.example.org']\n"
                        "  rules: [{backends: [{cluster: be}]}]\n",
               err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg != NULL)
        CHECK(cfg->routes[0].nhostnames == 2 &&
                  strcmp(cfg->routes[0].hostnames[0], "example.com") == 0 &&
                  strcmp(cfg->routes[0].hostnames[1], "*.example.org") == 0,
              "hostnames");
    config_free(cfg);
}

static void test_errors(void)
{
    /* YAML syntax: libyaml's problem text at its line. */
    EXPECT_ERR("a: [1, 2\nb: 3 #<\n", "did not find expected ',' or ']'");
    EXPECT_ERR("a:\n  b: 1\n c: 2 #<\n", "did not find expected key");
    EXPECT_ERR("a: 1\nb: b: c #<\n", "mapping values are not allowed");
    EXPECT_ERR("a: 1\n\xff #<\n", "invalid leading UTF-8 octet");
    /* Anchors, aliases, tags, duplicates, depth, NUL. */
    EXPECT_ERR("a: &x 1 #<\nb: *x\n", "anchors");
    EXPECT_ERR("a: 1\nb: *x #<\n", "aliases");
    EXPECT_ERR("a: !!str 1 #<\n", "tags");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nkind: Proxy #<\n", "duplicate key 'kind'");
    EXPECT_ERR("a: \"x\\0y\" #<\n", "NUL");
    {
        char deep[400] = "";
        for (int i = 0; i < 70; i++)
            strcat(deep, "[");
        strcat(deep, " #<\n");
        EXPECT_ERR(deep, "nesting deeper than 64");
    }
    /* Document headers. */
    EXPECT_ERR("- a #<\n", "document: expected a mapping, got a sequence");
    EXPECT_ERR(API "kind: Gateway #<\nmetadata: {name: x}\n", "unknown kind 'Gateway'");
    EXPECT_ERR("apiVersion: v1 #<\nkind: Listener\n", "apiVersion of Listener must be");
    EXPECT_ERR("apiVersion: strand.dev/v1alpha1 #<\nkind: Listener\nspec: {}\n",
               "missing required key 'metadata'");
    EXPECT_ERR(API "kind: Listener\nmetadata: {labels: {a: b}} #<\n",
               "metadata: missing required key 'name'");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: Web_1} #<\n", "invalid name 'Web_1'");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web, namespace: x} #<\n",
               "unknown key 'namespace' in metadata");
    EXPECT_ERR("kind: Listener #<\n" API "metadata: {name: web}\n",
               "Listener 'web': missing required key 'spec'");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec: {address: 127.0.0.1:1}\n"
                   "status: {} #<\n",
               "unknown key 'status' in document");
    /* Proxy. */
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: a}\n---\nkind: Proxy #<\n" API
                   "metadata: {name: b}\n",
               "only one Proxy is allowed (the first is at t.yaml:1)");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  workers: 300 #<\n",
               "workers: 300 is out of range (0..256)");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  workers: {a: 1} #<\n",
               "workers: expected an integer, got a mapping");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  workers: '4' #<\n",
               "expected an integer, got a quoted string");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  workers: 1.5 #<\n",
               "expected an integer, got '1.5'");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  workers: -1 #<\n",
               "out of range");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  bufferBytes: 99999999999 #<\n",
               "bufferBytes: 99999999999 is out of range (1024..16777216)");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  drainTimeout: 5 #<\n",
               "write 5s or 5000ms");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  drainTimeout: 5 sec #<\n",
               "bad duration '5 sec'");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  drainTimeout: 9999h #<\n",
               "out of range (0ms..720h)");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  workerz: 1 #<\n",
               "unknown key 'workerz' in Proxy spec");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n"
                   "  admin: {disabled: true, address: 127.0.0.1:1} #<\n",
               "either address or disabled");
    EXPECT_ERR(API "kind: Proxy\nmetadata: {name: p}\nspec:\n  admin: {disabled: yes} #<\n",
               "expected true or false, got 'yes'");
    /* Listener. */
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec:\n  adress: 1.2.3.4:5 #<\n",
               "unknown key 'adress' in Listener spec (allowed: address, protocol");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec: #<\n  protocol: http\n",
               "missing required key 'address'");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec:\n  address: localhost #<\n",
               "bad address 'localhost': missing :port");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec:\n  address: example.com:80 #<\n",
               "no DNS");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec:\n  address: 1.2.3.4:0 #<\n",
               "port must be a number from 1 to 65535");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec:\n  address: ::1:80 #<\n",
               "need brackets");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec:\n  address: [1.2.3.4:80] #<\n",
               "address: expected a string, got a sequence");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: web}\nspec:\n  address: 127.0.0.1:9901 #<\n"
                   "---\n" API "kind: Proxy\nmetadata: {name: p}\nspec: {workers: 1}\n",
               "conflicts with the admin address");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: a}\nspec: {address: 0.0.0.0:80}\n---\n" API
                   "kind: Listener\nmetadata: {name: b}\nspec: {address: 127.0.0.1:80} #<\n",
               "conflicts with Listener 'a'");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: a}\nspec: {address: 127.0.0.1:80}\n---\n" API
                   "kind: Listener\nmetadata: {name: a} #<\nspec: {address: 127.0.0.1:81}\n",
               "duplicate Listener 'a'");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: a}\nspec:\n  address: 127.0.0.1:80\n"
                   "  protocol: tcp\n  requestTimeout: 5s #<\n",
               "'requestTimeout' applies only to http listeners");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: a}\nspec:\n  address: 127.0.0.1:80\n"
                   "  protocol: udp #<\n",
               "expected http, tcp, tls, postgres or mysql");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: a}\nspec:\n  address: 127.0.0.1:80\n"
                   "  headerTimeout: 0s #<\n",
               "out of range (1ms..720h)");
    /* Cluster. */
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: c}\nspec:\n  endpoints: [] #<\n",
               "endpoints: must not be empty");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: c}\nspec: #<\n  maxRequests: 1\n",
               "missing required key 'endpoints'");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: c}\nspec:\n  endpoints:\n"
                   "  - {address: 127.0.0.1:1, weight: 1000001} #<\n",
               "weight: 1000001 is out of range (0..1000000)");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: c}\nspec:\n  endpoints:\n"
                   "  - {address: 127.0.0.1:1}\n  - {address: 127.0.0.1:1} #<\n",
               "duplicate endpoint");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: c}\nspec:\n"
                   "  endpoints: [{address: 127.0.0.1:1}]\n  hashOn: header.x #<\n",
               "hashOn requires loadBalancer: consistent_hash");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: c}\nspec:\n"
                   "  endpoints: [{address: 127.0.0.1:1}]\n  loadBalancer: random #<\n",
               "expected round_robin");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: c}\nspec:\n"
                   "  endpoints: [{address: 127.0.0.1:1}]\n"
                   "  outlierDetection: {maxEjectionPercent: 101} #<\n",
               "maxEjectionPercent: 101 is out of range (0..100)");
    /* Route references and rule shape. */
    EXPECT_ERR(BASE ROUTE("[web, nope] #<") "  - backends: [{cluster: be}]\n",
               "unknown Listener 'nope'");
    EXPECT_ERR(BASE ROUTE("[web, raw] #<") "  - backends: [{cluster: be}]\n",
               "use one Route per protocol");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: nope}] #<\n",
               "unknown Cluster 'nope'");
    EXPECT_ERR(BASE ROUTE("[web]") "  - name: x #<\n    match: []\n",
               "rule 'x' needs backends or directResponse");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}] #<\n"
                                   "    directResponse: {status: 200}\n",
               "has both backends and directResponse");
    EXPECT_ERR(BASE ROUTE("[web]") "  - name: a\n    backends: [{cluster: be}]\n"
                                   "  - name: a #<\n    backends: [{cluster: be}]\n",
               "rule name 'a' is used twice");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be, weight: 0}] #<\n",
               "every backend weight is 0");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: hash}] #<\n",
               "Cluster 'hash' uses consistent_hash without hashOn");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n    hashOn: path #<\n",
               "hashOn has no effect");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n    hashOn: '' #<\n",
               "hashOn: must not be empty");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n    timeout: 1d #<\n",
               "bad duration '1d'");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    retries: {attempts: 11} #<\n",
               "attempts: 11 is out of range (0..10)");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    retries: {attempts: 1, on: [5xx, timeout]} #<\n",
               "unknown trigger 'timeout'");
    /* Conditions. */
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: path, exact: /a, prefix: /b}] #<\n",
               "condition has two operators ('exact' and 'prefix')");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: path}] #<\n",
               "condition needs one operator");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: path, equals: /}] #<\n",
               "unknown key 'equals' in match condition");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: header.x, present: false}] #<\n",
               "only 'present: true' is allowed");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: path, regex: '^/(a'}] #<\n",
               "bad regex '^/(a' for path at offset 4: missing closing parenthesis");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: header.a, absent: true, ignoreCase: true}] #<\n",
               "ignoreCase has no effect with absent");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: cookie.a, exact: b}] #<\n",
               "unknown attribute 'cookie.a'");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: 'header.x y', exact: b}] #<\n",
               "invalid header name in 'header.x y'");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: method, in: []}] #<\n",
               "in: must not be empty");
    /* Header operations, rewrite, direct responses. */
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    requestHeaders:\n      set: {'x a': b} #<\n",
               "invalid header name 'x a'");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    requestHeaders:\n      set: {x-a: \"b\\r\\nc\"} #<\n",
               "value of header 'x-a' contains a control character");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    requestHeaders:\n      set: {X-A: b, x-a: c} #<\n",
               "header 'x-a' is listed twice");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    responseHeaders:\n      remove: [Content-Length] #<\n",
               "header 'content-length' is managed by the proxy");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: path, prefix: /a}]\n"
                                   "    rewrite: {pathPrefix: b} #<\n",
               "rewrite prefix 'b' must start with '/'");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}] #<\n"
                                   "    rewrite: {pathPrefix: /b}\n",
               "rewrite needs a `path` prefix condition");
    EXPECT_ERR(BASE ROUTE("[web]") "  - directResponse: {status: 700} #<\n",
               "status: 700 is out of range (200..599)");
    EXPECT_ERR(BASE ROUTE("[web]") "  - directResponse: {status: 204, body: x} #<\n",
               "a 204 response has no body");
    EXPECT_ERR(BASE ROUTE("[web]") "  - directResponse: {body: x} #<\n",
               "directResponse: missing required key 'status'");
    EXPECT_ERR(BASE ROUTE("[web]") "  - directResponse: {status: 200} #<\n"
                                   "    timeout: 5s\n",
               "timeout has no effect with directResponse");
    /* tcp routes. */
    EXPECT_ERR(BASE ROUTE("[raw]") "  - directResponse: {status: 200} #<\n",
               "'directResponse' needs an http listener");
    EXPECT_ERR(BASE ROUTE("[raw]") "  - backends: [{cluster: be}]\n"
                                   "    requestHeaders: {set: {a: b}} #<\n",
               "'requestHeaders' needs an http listener");
    EXPECT_ERR(BASE ROUTE("[raw]") "  - backends: [{cluster: be}]\n"
                                   "    retries:\n      attempts: 1\n      on: [reset, 5xx] #<\n",
               "'5xx' needs an http listener");
    EXPECT_ERR(BASE ROUTE("[raw]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: path, prefix: /}] #<\n",
               "attribute 'path' is not available on tcp listeners");
    EXPECT_ERR(BASE API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [raw]\n"
                        "  hostnames: [a.com] #<\n  rules: [{backends: [{cluster: be}]}]\n",
               "hostnames need http listeners");
    EXPECT_ERR(BASE API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [web]\n"
                        "  hostnames: ['a.com:80'] #<\n  rules: [{backends: [{cluster: be}]}]\n",
               "invalid hostname 'a.com:80'");
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                   "    match: [{attribute: Header.x, present: true}] #<\n",
               "unknown attribute 'Header.x'");
}

static void test_errors2(void)
{
    EXPECT_ERR(BASE ROUTE("[web]") "  - backends: [{cluster: be}]\n---\n" API
                                   "kind: Route\nmetadata: {name: r} #<\nspec:\n"
                                   "  parents: [web]\n  rules: [{backends: [{cluster: be}]}]\n",
               "duplicate Route 'r'");
    /* A name of 254 characters is one too many. */
    char yaml[1024], name[255];
    memset(name, 'a', 254);
    name[254] = '\0';
    snprintf(yaml, sizeof(yaml), API "kind: Cluster\nmetadata: {name: %s} #<\n", name);
    EXPECT_ERR(yaml, "at most 253 characters");
    name[253] = '\0';
    snprintf(yaml, sizeof(yaml),
             API "kind: Cluster\nmetadata: {name: %s}\nspec: {endpoints: [{address: "
                 "127.0.0.1:1}]}\n",
             name);
    char err[512];
    struct config *cfg = load(yaml, err, sizeof(err));
    CHECK(cfg != NULL, "253-character name: %s", err);
    config_free(cfg);

    /* The error buffer is always NUL-terminated, even when short. */
    char small[12];
    cfg = load("a: *x\n", small, sizeof(small));
    CHECK(cfg == NULL && strlen(small) == sizeof(small) - 1, "truncated '%s'", small);
    cfg = load("a: *x\n", NULL, 0);
    CHECK(cfg == NULL, "NULL err buffer");

    /* Missing file: "path:0: reason". */
    const char *paths[] = {"/nonexistent/strand.yaml"};
    CHECK(config_load_files(paths, 1, &cfg, err, sizeof(err)) != 0 &&
              strncmp(err, "/nonexistent/strand.yaml:0: cannot open", 39) == 0,
          "%s", err);
    CHECK(config_load_files(paths, 0, &cfg, err, sizeof(err)) != 0, "no files");
}

static void test_httproute(void)
{
    char err[512];
    const char *y =
        BASE "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
             "metadata: {name: h, namespace: default, labels: {app: x}}\nspec:\n"
             "  parentRefs: [{name: web}]\n  hostnames: [Api.Example.com]\n  rules:\n"
             "  - matches:\n"
             "    - path: {type: PathPrefix, value: /api}\n"
             "      headers: [{name: X-Env, value: prod}, {name: x-v, value: '^v[0-9]$', type: "
             "RegularExpression}]\n"
             "      method: GET\n"
             "    - path: {type: Exact, value: /exact}\n"
             "      queryParams: [{name: Debug, value: '1'}]\n"
             "    backendRefs: [{name: be, weight: 3, port: 8080}, {name: be2}]\n"
             "    filters:\n"
             "    - type: RequestHeaderModifier\n"
             "      requestHeaderModifier:\n"
             "        set: [{name: X-A, value: b}]\n        add: [{name: x-c, value: d}]\n"
             "        remove: [X-Secret]\n"
             "    - type: ResponseHeaderModifier\n"
             "      responseHeaderModifier: {set: [{name: x-served-by, value: strand}]}\n"
             "    timeouts: {request: 10s, backendRequest: 2s}\n"
             "  - backendRefs: [{name: be}]\n"
             "    filters:\n    - type: URLRewrite\n"
             "      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}\n"
             "  - matches: [{path: {type: RegularExpression, value: '^/r/[a-z]+$'}}]\n"
             "    backendRefs: [{name: be}]\n";
    struct config *cfg = load(y, err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg == NULL)
        return;
    CHECK(cfg->nroutes == 1, "routes");
    const struct cfg_route *r = &cfg->routes[0];
    CHECK(strcmp(r->name, "h") == 0 && r->nlisteners == 1 && strcmp(r->listeners[0], "web") == 0,
          "parents");
    CHECK(r->nhostnames == 1 && strcmp(r->hostnames[0], "api.example.com") == 0, "hostnames");
    CHECK(r->nrules == 4, "two matches become two rules: %zu", r->nrules);
    if (r->nrules != 4) {
        config_free(cfg);
        return;
    }
    const struct cfg_rule *a = &r->rules[0], *b = &r->rules[1], *c = &r->rules[2],
                          *d = &r->rules[3];
    CHECK(a->nconds == 4, "a conds %zu", a->nconds);
    if (a->nconds == 4) {
        CHECK(strcmp(a->conds[0].attr, "path") == 0 && a->conds[0].op == CFG_MATCH_PREFIX &&
                  strcmp(a->conds[0].value, "/api") == 0,
              "path prefix");
        CHECK(strcmp(a->conds[1].attr, "header.x-env") == 0 && a->conds[1].op == CFG_MATCH_EXACT,
              "header exact");
        CHECK(a->conds[2].op == CFG_MATCH_REGEX && strcmp(a->conds[2].value, "^v[0-9]$") == 0,
              "header regex");
        CHECK(strcmp(a->conds[3].attr, "method") == 0 && strcmp(a->conds[3].value, "GET") == 0,
              "method");
    }
    CHECK(b->nconds == 2 && b->conds[0].op == CFG_MATCH_EXACT &&
              strcmp(b->conds[1].attr, "query.Debug") == 0,
          "second match");
    for (int i = 0; i < 2; i++) {
        const struct cfg_rule *x = i ? b : a;
        CHECK(x->nbackends == 2 && x->backends[0].weight == 3 && x->backends[1].weight == 1 &&
                  strcmp(x->backends[1].cluster, "be2") == 0,
              "backends %d", i);
        CHECK(x->request_headers.nset == 1 && strcmp(x->request_headers.set[0].name, "x-a") == 0 &&
                  x->request_headers.nadd == 1 && x->request_headers.nremove == 1 &&
                  strcmp(x->request_headers.remove[0], "x-secret") == 0,
              "request header ops %d", i);
        CHECK(x->response_headers.nset == 1, "response header ops %d", i);
        CHECK(x->timeout_ms == 10000 && x->retry.per_try_timeout_ms == 2000, "timeouts %d", i);
    }
    CHECK(strcmp(a->name, "h/0") == 0 && strcmp(b->name, "h/1") == 0, "names %s %s", a->name,
          b->name);
    CHECK(c->nconds == 1 && c->conds[0].op == CFG_MATCH_PREFIX &&
              strcmp(c->conds[0].value, "/") == 0,
          "default match is prefix /");
    CHECK(c->rewrite_prefix && strcmp(c->rewrite_prefix, "/v2") == 0, "URLRewrite");
    CHECK(d->nconds == 1 && d->conds[0].op == CFG_MATCH_REGEX, "regex path");
    config_free(cfg);

    EXPECT_ERR(BASE HROUTE "  - backendRefs: [{name: be}]\n"
                           "    matches: [{path: {type: Exact, value: /}, cookies: []}] #<\n",
               "unknown key 'cookies' in match");
    EXPECT_ERR(BASE HROUTE "  - backendRefs: [{name: be}]\n"
                           "    filters: [{type: RequestRedirect}] #<\n",
               "filter type 'RequestRedirect' is not supported");
    EXPECT_ERR(BASE HROUTE "  - backendRefs: [{name: nope}] #<\n", "unknown Cluster 'nope'");
    EXPECT_ERR(BASE HROUTE "  - backendRefs: [{name: be, kind: Service}] #<\n",
               "unknown key 'kind' in backendRef");
    EXPECT_ERR(BASE HROUTE "  - matches: [{path: {type: Exact, value: /a}}] #<\n",
               "missing required key 'backendRefs'");
    EXPECT_ERR(BASE HROUTE "  - backendRefs: [{name: be}]\n"
                           "    matches: [{path: {type: Glob, value: /a}}] #<\n",
               "type: 'Glob' is not supported");
    EXPECT_ERR(BASE HROUTE "  - backendRefs: [{name: be}]\n"
                           "    matches: [{path: {type: Exact, value: /a}}] #<\n"
                           "    filters:\n    - type: URLRewrite\n"
                           "      urlRewrite: {path: {type: ReplacePrefixMatch, "
                           "replacePrefixMatch: /b}}\n",
               "rewrite needs a `path` prefix condition");
    EXPECT_ERR(BASE HROUTE "  - backendRefs: [{name: be}]\n"
                           "    timeouts: {request: 10} #<\n",
               "has no unit");
    EXPECT_ERR(BASE "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                    "metadata: {name: h}\nspec:\n  parentRefs: [{name: raw}] #<\n"
                    "  rules: [{backendRefs: [{name: be}]}]\n",
               "needs http listeners");
    EXPECT_ERR(BASE "apiVersion: gateway.networking.k8s.io/v2 #<\nkind: HTTPRoute\n",
               "apiVersion of HTTPRoute");
}

/* A growable string for generated configs. */
struct sbuf {
    char *p;
    size_t len, cap;
};

/* Appends printf output to b (which owns its buffer). */
static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Borrows fmt; b owns the grown buffer. */
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void test_limits(void)
{
    char err[512];
    struct sbuf b = {0};
    /* Many objects load, and references resolve through the indexes. */
    for (int i = 0; i < 3000; i++)
        sb_printf(&b, API "kind: Cluster\nmetadata: {name: c%d}\n"
                          "spec: {endpoints: [{address: 127.0.0.1:%d}]}\n---\n",
                  i, 1000 + i);
    for (int i = 0; i < 200; i++)
        sb_printf(&b, API "kind: Listener\nmetadata: {name: l%d}\n"
                          "spec: {address: 127.0.0.2:%d}\n---\n",
                  i, 1000 + i);
    sb_printf(&b, API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [l7, l199]\n"
                      "  rules:\n");
    for (int i = 0; i < 1000; i++)
        sb_printf(&b, "  - backends: [{cluster: c%d}, {cluster: c%d}]\n", i, 2999 - i);
    struct config *cfg = load(b.p, err, sizeof(err));
    CHECK(cfg != NULL && cfg->nclusters == 3000 && cfg->routes[0].nrules == 1000, "%s", err);
    config_free(cfg);
    /* One rule too many. */
    sb_printf(&b, "  - backends: [{cluster: c0}]\n");
    cfg = load(b.p, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "rules: more than 1000 entries") != NULL, "%s", err);
    free(b.p);

    /* More than 1024 listeners. */
    memset(&b, 0, sizeof(b));
    for (int i = 0; i < 1025; i++)
        sb_printf(&b, API "kind: Listener\nmetadata: {name: l%d}\n"
                          "spec: {address: 127.0.0.3:%d}\n---\n",
                  i, 1000 + i);
    cfg = load(b.p, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "more than 1024 Listeners") != NULL, "%s", err);
    free(b.p);

    /* The node budget: a flat list of 1,000,001 scalars. */
    memset(&b, 0, sizeof(b));
    sb_printf(&b, "a: [");
    for (int i = 0; i < 1000001; i++)
        sb_printf(&b, "0,");
    sb_printf(&b, "0]\n");
    cfg = load(b.p, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "too many YAML nodes") != NULL, "%s", err);
    free(b.p);

    /* HTTPRoute lists use the Gateway API maxima. */
    memset(&b, 0, sizeof(b));
    sb_printf(&b, BASE HROUTE "  - backendRefs:\n");
    for (int i = 0; i < 17; i++)
        sb_printf(&b, "    - {name: be, weight: %d}\n", i);
    cfg = load(b.p, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "backendRefs: more than 16 entries") != NULL, "%s", err);
    free(b.p);
}

/* Writes text to dir/name and returns the new path (caller frees). */
static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        return NULL;
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static void test_multifile(void)
{
    char dir[] = "/tmp/strand_cfg_XXXXXX", err[512];
    if (mkdtemp(dir) == NULL) {
        CHECK(0, "mkdtemp");
        return;
    }
    /* The route comes first and refers to objects of later files. */
    char *a = write_file(dir, "a.yaml",
                         ROUTE("[web]") "  - backends: [{cluster: be}]\n");
    char *b = write_file(dir, "b.yaml",
                         API "kind: Listener\nmetadata: {name: web}\n"
                             "spec: {address: 127.0.0.1:10000}\n");
    char *c = write_file(dir, "c.yaml",
                         "# comment\n" API "kind: Cluster\nmetadata: {name: be}\n"
                         "spec: {endpoints: [{address: 127.0.0.1:1}]}\n---\n" API
                         "kind: Proxy\nmetadata: {name: p}\nspec: {workers: 2}\n");
    char *d = write_file(dir, "d.yaml",
                         API "kind: Listener\nmetadata: {name: web}\n"
                             "spec: {address: 127.0.0.1:10002}\n");
    char *e = write_file(dir, "e.yaml", "# only a comment\n");
    const char *ok[] = {a, b, c, e};
    struct config *cfg = NULL;
    int rc = config_load_files(ok, 4, &cfg, err, sizeof(err));
    CHECK(rc == 0, "%s", err);
    if (rc == 0) {
        CHECK(cfg->nfiles == 4 && strcmp(cfg->files[1], b) == 0, "files");
        CHECK(cfg->workers == 2, "proxy from c.yaml");
        CHECK(strcmp(cfg->routes[0].where.file, a) == 0 &&
                  strcmp(cfg->listeners[0].where.file, b) == 0 &&
                  strcmp(cfg->clusters[0].where.file, c) == 0 && cfg->clusters[0].where.line == 2,
              "where");
        config_free(cfg);
    }
    /* A duplicate across files names the second file and the first place. */
    const char *dup[] = {b, d};
    rc = config_load_files(dup, 2, &cfg, err, sizeof(err));
    char want[600];
    snprintf(want, sizeof(want), "%s:3: duplicate Listener 'web' (first defined at %s:1)", d, b);
    CHECK(rc != 0 && strcmp(err, want) == 0, "got '%s' want '%s'", err, want);
    /* A reference to a listener of a file not loaded. */
    const char *missing[] = {a, c};
    rc = config_load_files(missing, 2, &cfg, err, sizeof(err));
    snprintf(want, sizeof(want), "%s:5: unknown Listener 'web'", a);
    CHECK(rc != 0 && strcmp(err, want) == 0, "got '%s' want '%s'", err, want);
    char *files[] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++) {
        unlink(files[i]);
        free(files[i]);
    }
    rmdir(dir);
}

static void test_parse_values(void)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t ms;
    } durs[] = {{"250ms", 0, 250},    {"5s", 0, 5000},      {"2m", 0, 120000},
                {"1h", 0, 3600000},   {"1.5s", 0, 1500},    {"0s", 0, 0},
                {"1m30s", 0, 90000},  {"1h2m3s4ms", 0, 3723004}, {"0.001s", 0, 1},
                {"5", -1, 0},         {"", -1, 0},          {"s", -1, 0},
                {"1.5ms", -1, 0},     {"0.0001s", -1, 0},   {"5 s", -1, 0},
                {"-5s", -1, 0},       {"5S", -1, 0},        {"1s1m", -1, 0},
                {"1s1s", -1, 0},      {"1.s", -1, 0},       {".5s", -1, 0},
                {"999999999999h", 0, 999999999999ull * 3600000}, {"1000000000000h", -1, 0},
                {"5d", -1, 0}};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        uint64_t ms = 12345;
        int rc = config_parse_duration(durs[i].s, &ms);
        CHECK(rc == durs[i].rc && (rc != 0 || ms == durs[i].ms), "duration '%s': rc %d ms %llu",
              durs[i].s, rc, (unsigned long long)ms);
    }
    CHECK(config_parse_duration(NULL, &(uint64_t){0}) == -1, "NULL duration");

    static const struct {
        const char *s;
        int rc, family, port;
    } addrs[] = {{"127.0.0.1:80", 0, AF_INET, 80},  {"[::1]:80", 0, AF_INET6, 80},
                 {"localhost:65535", 0, AF_INET, 65535}, {"0.0.0.0:1", 0, AF_INET, 1},
                 {"[::]:8080", 0, AF_INET6, 8080},  {"127.0.0.1:0", -1, 0, 0},
                 {"127.0.0.1:65536", -1, 0, 0},      {"127.0.0.1", -1, 0, 0},
                 {":80", -1, 0, 0},                  {"::1:80", -1, 0, 0},
                 {"[::1]80", -1, 0, 0},              {"[::1]:", -1, 0, 0},
                 {"[]:80", -1, 0, 0},                {"example.com:80", -1, 0, 0},
                 {"127.1:80", -1, 0, 0},             {"127.0.0.1:+80", -1, 0, 0},
                 {"127.0.0.1:80 ", -1, 0, 0},        {"[1.2.3.4]:80", -1, 0, 0},
                 {"", -1, 0, 0}};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int rc = config_parse_address(addrs[i].s, &ss, &len);
        CHECK(rc == addrs[i].rc, "address '%s': rc %d", addrs[i].s, rc);
        if (rc == 0 && addrs[i].rc == 0) {
            int port = ss.ss_family == AF_INET
                           ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                           : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            CHECK(ss.ss_family == addrs[i].family && port == addrs[i].port &&
                      len == (ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                      : sizeof(struct sockaddr_in6)),
                  "address '%s' parsed wrong", addrs[i].s);
        }
    }
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK(config_parse_address("localhost:1", &ss, &len) == 0 &&
              ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_LOOPBACK),
          "localhost is 127.0.0.1");
}

/* Runs text through python's json module; true when it parses. */
static bool json_parses(const char *text)
{
    FILE *p = popen("/usr/bin/python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null",
                    "w");
    if (p == NULL)
        return false;
    fputs(text, p);
    return pclose(p) == 0;
}

/* Runs python's json module over text and evaluates expr (a Python
 * expression over the parsed document `d`, no single quotes); true when the
 * JSON parses and expr holds. */
static bool json_check(const char *text, const char *expr)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); "
             "sys.exit(0 if (%s) else 1)' 2>/dev/null",
             expr);
    FILE *p = popen(cmd, "w");
    if (p == NULL)
        return false;
    fputs(text, p);
    return pclose(p) == 0;
}

static void test_json(void)
{
    char err[512];
    const char *paths[] = {"examples/quickstart.yaml"};
    struct config *cfg = NULL;
    if (config_load_files(paths, 1, &cfg, err, sizeof(err)) == 0) {
        char *j = config_to_json(cfg);
        CHECK(j != NULL && json_parses(j), "quickstart JSON: %s", j ? j : "(null)");
        CHECK(j && strstr(j, "\"workers\":1") && strstr(j, "\"name\":\"backend\"") &&
                  strstr(j, "\"exact\":\"/strand/hello\"") &&
                  strstr(j, "\"source\":\"examples/quickstart.yaml:"),
              "JSON content");
        free(j);
        config_free(cfg);
    }
    /* Strings that need escaping: quotes, backslashes, control characters,
     * non-ASCII. */
    cfg = load(BASE ROUTE("[web]")
               "  - directResponse:\n      status: 200\n"
               "      body: \"q\\\" b\\\\ nl\\n tab\\t bell\\a \\u00e9 \\U0001F600 \\x01\"\n"
               "  - backends: [{cluster: be}]\n"
               "    match: [{attribute: header.x, in: ['\"', '\\', \"\\t\"]}]\n"
               "    requestHeaders: {set: {x-q: 'say \"hi\"'}}\n",
               err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg != NULL) {
        char *j = config_to_json(cfg);
        CHECK(j != NULL && json_parses(j), "escaped JSON: %s", j ? j : "(null)");
        CHECK(j && strstr(j, "q\\\" b\\\\ nl\\u000a tab\\u0009 bell\\u0007 \xc3\xa9 ") != NULL,
              "escapes: %s", j ? j : "");
        free(j);
        config_free(cfg);
    }
    CHECK(config_to_json(NULL) == NULL, "NULL config");
}

/* Every ```yaml block of docs/config.md must load: the examples cannot
 * rot. Returns the file's text (caller frees) or NULL. */
static char *docs_text(void)
{
    FILE *f = fopen("docs/config.md", "r");
    if (f == NULL)
        return NULL;
    char *text = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&text, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void test_docs_example(void)
{
    char err[512];
    char *text = docs_text();
    CHECK(text != NULL, "docs/config.md is readable");
    if (text == NULL)
        return;
    int blocks = 0;
    bool tls = false, passthrough = false, authz = false;
    for (char *start = strstr(text, "```yaml\n"), *end; start != NULL;
         start = strstr(end + 3, "```yaml\n")) {
        start += 8;
        if ((end = strstr(start, "```")) == NULL)
            break;
        char *y = strndup(start, (size_t)(end - start));
        if (y == NULL)
            break;
        blocks++;
        struct config *cfg = load(y, err, sizeof(err));
        CHECK(cfg != NULL, "docs example %d: %s", blocks, err);
        if (cfg != NULL) {
            char *j = config_to_json(cfg);
            CHECK(j != NULL && json_parses(j), "docs example %d JSON", blocks);
            free(j);
            authz |= cfg->nauthz > 0;
            for (size_t i = 0; i < cfg->nlisteners; i++) {
                tls |= cfg->listeners[i].tls.enabled;
                passthrough |= cfg->listeners[i].proto == CFG_PROTO_TLS_PASSTHROUGH;
            }
        }
        config_free(cfg);
        free(y);
    }
    CHECK(blocks >= 2, "docs/config.md has %d ```yaml blocks", blocks);
    CHECK(tls && passthrough, "the docs examples show TLS termination and passthrough");
    CHECK(authz, "the docs examples show an AuthorizationPolicy");
    free(text);
}

/* A TLS-terminating listener `s` (http) for the error cases below: its
 * body starts at line 6. */
#define TLSL(body)                                                                             \
    API "kind: Listener\nmetadata: {name: s}\nspec:\n  address: 127.0.0.1:10443\n" body
/* A cluster `c` whose body starts at line 6. */
#define TLSC(body)                                                                             \
    API "kind: Cluster\nmetadata: {name: c}\nspec:\n  endpoints: [{address: 127.0.0.1:1}]\n" body
/* BASE plus a passthrough listener `pt` and clusters that hash on
 * source.identity (`hid`) and grpc.method (`hgrpc`). */
#define TLSBASE                                                                                \
    BASE API "kind: Listener\nmetadata: {name: pt}\nspec: {address: 127.0.0.1:10002, "         \
             "protocol: tls}\n---\n" API                                                       \
             "kind: Cluster\nmetadata: {name: hid}\nspec:\n  loadBalancer: consistent_hash\n"  \
             "  hashOn: source.identity\n  endpoints: [{address: 127.0.0.1:8083}]\n---\n" API  \
             "kind: Cluster\nmetadata: {name: hgrpc}\nspec:\n  loadBalancer: consistent_hash\n" \
             "  hashOn: grpc.method\n  endpoints: [{address: 127.0.0.1:8084}]\n---\n"

static void test_tls(void)
{
    char err[512];
    const char *y =
        API "kind: Listener\nmetadata: {name: web}\nspec:\n"
            "  address: 127.0.0.1:10443\n  protocol: http\n  tls:\n    certificates:\n"
            "    - {certFile: /etc/strand/web.pem, keyFile: /etc/strand/web.key,\n"
            "       sni: [Web.Example.com, '*.example.com']}\n"
            "    - certFile: /etc/strand/default.pem\n      keyFile: /etc/strand/default.key\n"
            "    alpn: [h2, http/1.1]\n    clientCA: /etc/strand/ca.pem\n"
            "    requireClientCert: true\n    minVersion: 1.3\n"
        "---\n" API "kind: Listener\nmetadata: {name: plain}\nspec: {address: 127.0.0.1:10000}\n"
        "---\n" API "kind: Listener\nmetadata: {name: web-min}\nspec:\n"
            "  address: 127.0.0.1:10444\n"
            "  tls: {certificates: [{certFile: a.pem, keyFile: a.key, sni: [a.example.com]}]}\n"
        "---\n" API "kind: Listener\nmetadata: {name: raw}\nspec:\n  address: 127.0.0.1:10445\n"
            "  protocol: tcp\n  tls:\n    certificates: [{certFile: r.pem, keyFile: r.key}]\n"
            "    clientCA: ca.pem\n"
        "---\n" API "kind: Listener\nmetadata: {name: raw-alpn}\nspec:\n"
            "  address: 127.0.0.1:10446\n  protocol: tcp\n"
            "  tls: {certificates: [{certFile: r.pem, keyFile: r.key}], alpn: [imap, x-custom/2],"
            " minVersion: '1.2', requireClientCert: false}\n"
        "---\n" API "kind: Cluster\nmetadata: {name: api}\nspec:\n"
            "  endpoints: [{address: 10.0.0.1:443}]\n"
            "  tls: {caFile: /etc/strand/ca.pem, verify: true, sni: API.internal,"
            " alpn: [http/1.1], certFile: /etc/strand/client.pem,"
            " keyFile: /etc/strand/client.key}\n"
        "---\n" API "kind: Cluster\nmetadata: {name: dflt}\nspec:\n"
            "  endpoints: [{address: 10.0.0.2:443}]\n  tls: {caFile: ca.pem}\n"
        "---\n" API "kind: Cluster\nmetadata: {name: insecure}\nspec:\n"
            "  endpoints: [{address: 10.0.0.3:443}]\n"
            "  tls: {verify: false, sni: '10.0.0.3', alpn: []}\n"
        "---\n" API "kind: Cluster\nmetadata: {name: v6}\nspec:\n"
            "  endpoints: [{address: '[::1]:443'}]\n"
            "  tls: {caFile: ca.pem, sni: '::1', alpn: [h2, http/1.1]}\n"
        "---\n" API "kind: Cluster\nmetadata: {name: plain}\nspec: {endpoints: [{address: "
            "10.0.0.4:80}]}\n"
        "---\n" API "kind: Route\nmetadata: {name: web}\nspec:\n  parents: [web, plain, web-min]\n"
            "  rules:\n  - backends: [{cluster: api}]\n    match:\n"
            "    - {attribute: source.identity, prefix: 'spiffe://example.org/'}\n"
            "    - {attribute: tls.sni, exact: web.example.com}\n"
            "    - {attribute: tls.alpn, in: [h2, http/1.1]}\n"
            "    - {attribute: grpc.service, exact: pkg.Svc}\n"
            "    - {attribute: grpc.method, exact: Get}\n"
        "---\n" API "kind: Route\nmetadata: {name: raw}\nspec:\n  parents: [raw, raw-alpn]\n"
            "  rules:\n  - backends: [{cluster: dflt}]\n"
            "    match: [{attribute: source.identity, exact: 'spiffe://example.org/db'},"
            " {attribute: tls.alpn, exact: imap}]\n";
    struct config *cfg = load(y, err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg == NULL)
        return;
    const struct cfg_listener *l = config_listener(cfg, "web");
    CHECK(l && l->proto == CFG_PROTO_HTTP && l->tls.enabled && l->tls.ncerts == 2, "web tls");
    if (l && l->tls.ncerts == 2) {
        const struct cfg_tls_cert *a = &l->tls.certs[0], *b = &l->tls.certs[1];
        CHECK(strcmp(a->cert_file, "/etc/strand/web.pem") == 0 &&
                  strcmp(a->key_file, "/etc/strand/web.key") == 0,
              "cert 0 files");
        CHECK(a->nsni == 2 && strcmp(a->sni[0], "web.example.com") == 0 &&
                  strcmp(a->sni[1], "*.example.com") == 0,
              "sni lower-cased, wildcard kept");
        CHECK(a->where.line == line_of(y, "- {certFile: /etc/strand/web.pem") &&
                  strcmp(a->where.file, "t.yaml") == 0,
              "cert 0 at line %d", a->where.line);
        CHECK(b->nsni == 0 && b->sni == NULL &&
                  strcmp(b->cert_file, "/etc/strand/default.pem") == 0 &&
                  strcmp(b->key_file, "/etc/strand/default.key") == 0 &&
                  b->where.line == line_of(y, "- certFile: /etc/strand/default.pem"),
              "default cert at line %d", b->where.line);
    }
    CHECK(l && l->tls.nalpn == 2 && strcmp(l->tls.alpn[0], "h2") == 0 &&
              strcmp(l->tls.alpn[1], "http/1.1") == 0,
          "alpn in order");
    CHECK(l && strcmp(l->tls.client_ca_file, "/etc/strand/ca.pem") == 0 &&
              l->tls.require_client_cert && strcmp(l->tls.min_version, "1.3") == 0,
          "mTLS and minVersion (unquoted 1.3)");
    /* The http-listener defaults still apply under TLS. */
    CHECK(l && l->idle_timeout_ms == 300000 && l->request_timeout_ms == 15000 && l->xff,
          "http defaults");

    l = config_listener(cfg, "plain");
    CHECK(l && !l->tls.enabled && l->tls.certs == NULL && l->tls.ncerts == 0 &&
              l->tls.alpn == NULL && l->tls.nalpn == 0 && l->tls.client_ca_file == NULL &&
              !l->tls.require_client_cert && l->tls.min_version == NULL,
          "no tls: all unset");
    l = config_listener(cfg, "web-min");
    CHECK(l && l->tls.enabled && l->tls.ncerts == 1 && l->tls.nalpn == 2 &&
              strcmp(l->tls.alpn[0], "h2") == 0 && strcmp(l->tls.alpn[1], "http/1.1") == 0 &&
              l->tls.client_ca_file == NULL &&
              !l->tls.require_client_cert && strcmp(l->tls.min_version, "1.2") == 0,
          "http listener defaults: alpn [h2, http/1.1], no client CA, TLS 1.2");
    l = config_listener(cfg, "raw");
    CHECK(l && l->proto == CFG_PROTO_TCP && l->tls.enabled && l->tls.nalpn == 0 &&
              l->tls.alpn == NULL && strcmp(l->tls.client_ca_file, "ca.pem") == 0 &&
              !l->tls.require_client_cert && strcmp(l->tls.min_version, "1.2") == 0 &&
              l->idle_timeout_ms == 3600000,
          "tcp listener defaults: no alpn; optional client certificates");
    l = config_listener(cfg, "raw-alpn");
    CHECK(l && l->tls.nalpn == 2 && strcmp(l->tls.alpn[0], "imap") == 0 &&
              strcmp(l->tls.alpn[1], "x-custom/2") == 0 &&
              strcmp(l->tls.min_version, "1.2") == 0,
          "tcp alpn tokens, quoted minVersion");

    const struct cfg_cluster *c = config_cluster(cfg, "api");
    CHECK(c && c->tls.enabled && strcmp(c->tls.ca_file, "/etc/strand/ca.pem") == 0 &&
              c->tls.verify && strcmp(c->tls.sni, "api.internal") == 0 && c->tls.nalpn == 1 &&
              strcmp(c->tls.alpn[0], "http/1.1") == 0 &&
              strcmp(c->tls.cert_file, "/etc/strand/client.pem") == 0 &&
              strcmp(c->tls.key_file, "/etc/strand/client.key") == 0,
          "cluster tls fields");
    c = config_cluster(cfg, "dflt");
    CHECK(c && c->tls.enabled && c->tls.verify && c->tls.sni == NULL && c->tls.nalpn == 1 &&
              strcmp(c->tls.alpn[0], "http/1.1") == 0 && c->tls.cert_file == NULL &&
              c->tls.key_file == NULL,
          "cluster tls defaults: verify, alpn [http/1.1], no sni, no client cert");
    c = config_cluster(cfg, "insecure");
    CHECK(c && c->tls.enabled && !c->tls.verify && c->tls.ca_file == NULL &&
              strcmp(c->tls.sni, "10.0.0.3") == 0 && c->tls.nalpn == 0,
          "verify: false, IP sni, empty alpn");
    c = config_cluster(cfg, "v6");
    CHECK(c && strcmp(c->tls.sni, "::1") == 0 && c->tls.nalpn == 2, "IPv6 sni");
    c = config_cluster(cfg, "plain");
    CHECK(c && !c->tls.enabled && !c->tls.verify && c->tls.ca_file == NULL &&
              c->tls.sni == NULL && c->tls.alpn == NULL && c->tls.nalpn == 0 &&
              c->tls.cert_file == NULL && c->tls.key_file == NULL,
          "no cluster tls: all unset");

    /* The new attributes: on http and tcp routes. */
    CHECK(cfg->nroutes == 2 && cfg->routes[0].rules[0].nconds == 5 &&
              strcmp(cfg->routes[0].rules[0].conds[0].attr, "source.identity") == 0 &&
              strcmp(cfg->routes[0].rules[0].conds[4].attr, "grpc.method") == 0 &&
              cfg->routes[1].rules[0].nconds == 2 &&
              strcmp(cfg->routes[1].rules[0].conds[0].attr, "source.identity") == 0,
          "identity, tls and grpc attributes");

    char *j = config_to_json(cfg);
    CHECK(j != NULL && json_parses(j), "TLS JSON parses");
    CHECK(j && json_check(j, "d[\"listeners\"][0][\"tls\"] == {\"certificates\": ["
                             "{\"certFile\": \"/etc/strand/web.pem\", "
                             "\"keyFile\": \"/etc/strand/web.key\", "
                             "\"sni\": [\"web.example.com\", \"*.example.com\"], "
                             "\"source\": \"t.yaml:9\"}, "
                             "{\"certFile\": \"/etc/strand/default.pem\", "
                             "\"keyFile\": \"/etc/strand/default.key\", \"sni\": [], "
                             "\"source\": \"t.yaml:11\"}], "
                             "\"alpn\": [\"h2\", \"http/1.1\"], "
                             "\"clientCA\": \"/etc/strand/ca.pem\", "
                             "\"requireClientCert\": True, \"minVersion\": \"1.3\"}"),
          "listener tls JSON: %s", j ? j : "(null)");
    CHECK(j && json_check(j, "d[\"listeners\"][1][\"tls\"] is None and "
                             "d[\"clusters\"][4][\"tls\"] is None"),
          "tls: null when off");
    CHECK(j && json_check(j, "d[\"clusters\"][0][\"tls\"] == {\"caFile\": \"/etc/strand/ca.pem\","
                             " \"verify\": True, \"sni\": \"api.internal\", \"alpn\": "
                             "[\"http/1.1\"], \"certFile\": \"/etc/strand/client.pem\", "
                             "\"keyFile\": \"/etc/strand/client.key\"}"),
          "cluster tls JSON");
    CHECK(j && json_check(j, "d[\"clusters\"][2][\"tls\"] == {\"caFile\": None, \"verify\": "
                             "False, \"sni\": \"10.0.0.3\", \"alpn\": [], \"certFile\": None, "
                             "\"keyFile\": None}"),
          "cluster tls JSON with nulls");
    CHECK(j && json_check(j, "d[\"listeners\"][3][\"tls\"][\"alpn\"] == [] and "
                             "d[\"listeners\"][3][\"protocol\"] == \"tcp\""),
          "tcp listener JSON");
    /* Files are named, never read: the JSON holds paths only. */
    CHECK(j && strstr(j, "BEGIN") == NULL, "no file contents");
    free(j);
    config_free(cfg);
}

/* A listener with 100 certificates of 100 names each (the limits); with
 * dup, the very last name repeats a name of the first certificate. The
 * caller frees the text. */
static char *many_certs(bool dup)
{
    struct sbuf b = {0};
    sb_printf(&b, "%s", TLSL("  tls:\n    certificates:\n"));
    for (int i = 0; i < 100; i++) {
        sb_printf(&b, "    - certFile: c%d.pem\n      keyFile: c%d.key\n      sni:\n", i, i);
        for (int k = 0; k < 100; k++)
            if (dup && i == 99 && k == 99)
                sb_printf(&b, "      - H42.C0.Example.com #<\n");
            else
                sb_printf(&b, "      - h%d.c%d.example.com\n", k, i);
    }
    return b.p;
}

/* At the limits the names load, and a repeat among 10000 names is found
 * (case-insensitively) at its own line, naming the first certificate. */
static void test_tls_limits(void)
{
    char err[512];
    char *y = many_certs(false);
    struct config *cfg = load(y, err, sizeof(err));
    CHECK(cfg != NULL && cfg->listeners[0].tls.ncerts == 100 &&
              cfg->listeners[0].tls.certs[99].nsni == 100 &&
              strcmp(cfg->listeners[0].tls.certs[99].sni[99], "h99.c99.example.com") == 0,
          "%s", err);
    config_free(cfg);
    free(y);
    y = many_certs(true);
    expect_err_at(__LINE__, y,
                  "sni: 'h42.c0.example.com' is already served by the certificate at line 8");
    free(y);
}

static void test_tls_errors(void)
{
    /* Listener tls: shape and required keys. */
    EXPECT_ERR(TLSL("  tls:\n    certificates: [] #<\n"), "certificates: must not be empty");
    EXPECT_ERR(TLSL("  tls: #<\n    alpn: [h2]\n"), "tls: missing required key 'certificates'");
    EXPECT_ERR(TLSL("  tls: ~ #<\n"), "tls: expected a mapping, got null");
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a.pem, keyFile: a.key}]\n"
                    "    clientCa: ca.pem #<\n"),
               "unknown key 'clientCa' in tls (allowed: certificates, alpn, clientCA, "
               "requireClientCert, minVersion)");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n    - {certFile: a.pem} #<\n"),
               "certificate: missing required key 'keyFile'");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n    - certFile: a.pem\n      keyFile: '' #<\n"),
               "keyFile: must not be empty");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n    - certFile: #<\n      keyFile: a.key\n"),
               "certFile: expected a string, got null");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n    - {certFile: a, keyFile: b, name: x} #<\n"),
               "unknown key 'name' in certificate (allowed: certFile, keyFile, sni)");
    {
        /* A block sequence's line is that of its first item. */
        char y[8192] = TLSL("  tls:\n    certificates:\n");
        for (int i = 0; i < 101; i++)
            snprintf(y + strlen(y), sizeof(y) - strlen(y),
                     "    - {certFile: a, keyFile: b, sni: [h%d.example.com]}%s\n", i,
                     i == 0 ? " #<" : "");
        EXPECT_ERR(y, "certificates: more than 100 entries");
    }
    /* Server names. */
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n"
                    "    - {certFile: a, keyFile: b, sni: [ok.example.com, bad_name.com]} #<\n"),
               "sni: invalid server name 'bad_name.com'");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n"
                    "    - {certFile: a, keyFile: b, sni: ['a.example.com:443']} #<\n"),
               "invalid server name 'a.example.com:443'");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n"
                    "    - {certFile: a, keyFile: b, sni: ['*']} #<\n"),
               "invalid server name '*'");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n"
                    "    - {certFile: a, keyFile: b, sni: [10.0.0.1]} #<\n"),
               "sni: '10.0.0.1' is an IP address");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n    - {certFile: a, keyFile: b, sni: []} #<\n"),
               "sni: must not be empty (leave sni out for the default certificate)");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n"
                    "    - {certFile: a, keyFile: a, sni: [a.example.com, '*.example.com']}\n"
                    "    - {certFile: b, keyFile: b, sni: [b.example.com]}\n"
                    "    - certFile: c\n      keyFile: c\n      sni:\n      - c.example.com\n"
                    "      - A.Example.COM #<\n"),
               "sni: 'a.example.com' is already served by the certificate at line 8");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n"
                    "    - certFile: a\n      keyFile: a\n"
                    "      sni: [a.example.com, b.example.com, a.example.com] #<\n"),
               "sni: 'a.example.com' is listed twice");
    EXPECT_ERR(TLSL("  tls:\n    certificates:\n    - {certFile: a, keyFile: a}\n"
                    "    - {certFile: b, keyFile: b, sni: [b.example.com]}\n"
                    "    - {certFile: c, keyFile: c} #<\n"),
               "only one certificate may leave sni out (the default certificate is at line 8)");
    /* ALPN. */
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    alpn: [http/1.1, spdy/3] #<\n"),
               "alpn: 'spdy/3' is not offered on http listeners (use h2 or http/1.1)");
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    alpn: [h2, http/1.1, h2] #<\n"),
               "alpn: 'h2' is listed twice");
    EXPECT_ERR(TLSL("  protocol: tcp\n  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    alpn: [imap, 'x y'] #<\n"),
               "alpn: invalid protocol id 'x y' (1 to 255 visible ASCII characters)");
    EXPECT_ERR(TLSL("  protocol: tcp\n  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    alpn: [''] #<\n"),
               "alpn: must not be empty");
    {
        char y[1024] = TLSL("  protocol: tcp\n  tls:\n    certificates: [{certFile: a, "
                            "keyFile: b}]\n    alpn: [");
        memset(y + strlen(y), 'p', 256);
        strcpy(y + strlen(y), "] #<\n");
        EXPECT_ERR(y, "alpn: invalid protocol id");
    }
    /* Versions and client certificates. */
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    minVersion: 1.1 #<\n"),
               "minVersion: expected \"1.2\" or \"1.3\", got '1.1'");
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    minVersion: 1.20 #<\n"),
               "got '1.20'");
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    minVersion: TLSv1.3 #<\n"),
               "got 'TLSv1.3'");
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    requireClientCert: true #<\n"),
               "requireClientCert: true needs clientCA");
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    clientCA: ca.pem\n    requireClientCert: yes #<\n"),
               "requireClientCert: expected true or false, got 'yes'");
    EXPECT_ERR(TLSL("  tls:\n    certificates: [{certFile: a, keyFile: b}]\n"
                    "    clientCA: [ca.pem] #<\n"),
               "clientCA: expected a string, got a sequence");
    /* Passthrough listeners do not terminate TLS. */
    EXPECT_ERR(TLSL("  protocol: tls\n  tls: #<\n    certificates: [{certFile: a, keyFile: b}]\n"),
               "'tls' does not apply to protocol: tls");
    EXPECT_ERR(TLSL("  protocol: tls\n  via: false #<\n"), "'via' applies only to http listeners");
    EXPECT_ERR(TLSL("  protocol: TLS #<\n"), "protocol: expected http, tcp, tls, postgres or mysql, got 'TLS'");

    /* Cluster tls. */
    EXPECT_ERR(TLSC("  tls: {sni: api.internal} #<\n"),
               "tls: verify (on by default) needs caFile");
    EXPECT_ERR(TLSC("  tls: #<\n    sni: api.internal\n"), "needs caFile");
    EXPECT_ERR(TLSC("  tls:\n    sni: api.internal\n    verify: true #<\n"), "needs caFile");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem #<\n    verify: false\n"),
               "tls: caFile has no effect with verify: false");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    verify: 'false' #<\n"),
               "verify: expected true or false, got 'false'");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    certFile: client.pem #<\n"),
               "tls: certFile needs keyFile (a client certificate needs both)");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    keyFile: client.key #<\n"),
               "tls: keyFile needs certFile");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    certFile: a\n    keyFile: '' #<\n"),
               "keyFile: must not be empty");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    sni: '*.example.com' #<\n"),
               "sni: invalid server name '*.example.com' (a DNS name or an IP address");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    sni: '[::1]' #<\n"),
               "sni: invalid server name '[::1]'");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    sni: api.internal:443 #<\n"),
               "invalid server name 'api.internal:443'");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    alpn: [http/1.1, http/1.1] #<\n"),
               "alpn: 'http/1.1' is listed twice");
    EXPECT_ERR(TLSC("  tls:\n    caFile: ca.pem\n    serverName: x #<\n"),
               "unknown key 'serverName' in tls (allowed: caFile, verify, sni, alpn, certFile, "
               "keyFile)");
    EXPECT_ERR(TLSC("  tls: true #<\n"), "tls: expected a mapping, got a string");
}

static void test_passthrough_and_attributes(void)
{
    char err[512];
    const char *y =
        TLSBASE API "kind: Listener\nmetadata: {name: pt2}\nspec:\n  address: 127.0.0.1:10003\n"
                    "  protocol: tls\n  idleTimeout: 10m\n---\n"
        API "kind: Route\nmetadata: {name: sni}\nspec:\n  parents: [pt, pt2]\n  rules:\n"
            "  - name: exact\n    match: [{attribute: tls.sni, exact: a.example.com}]\n"
            "    backends: [{cluster: be}]\n"
            "  - name: wild\n    match:\n"
            "    - {attribute: tls.sni, suffix: .example.com, ignoreCase: true}\n"
            "    - {attribute: tls.alpn, in: [h2, http/1.1]}\n"
            "    - {attribute: source.address, prefix: '10.'}\n"
            "    - {attribute: destination.port, exact: '443'}\n"
            "    backends: [{cluster: be, weight: 3}, {cluster: be2}]\n"
            "    retries: {attempts: 2, on: [connect-failure, reset]}\n"
            "    timeout: 1h\n"
            "  - name: hashed\n    hashOn: tls.sni\n    backends: [{cluster: hash}]\n"
        "---\n" API "kind: Route\nmetadata: {name: h}\nspec:\n  parents: [web]\n  rules:\n"
            "  - match: [{attribute: grpc.method, exact: Get}, {attribute: grpc.service, "
            "prefix: pkg.}]\n    backends: [{cluster: hgrpc}, {cluster: hid}]\n"
        "---\n" API "kind: Route\nmetadata: {name: t}\nspec:\n  parents: [raw]\n  rules:\n"
            "  - match: [{attribute: source.identity, exact: 'spiffe://x/y'}, "
            "{attribute: tls.sni, present: true}]\n    backends: [{cluster: hid}]\n";
    struct config *cfg = load(y, err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg != NULL) {
        const struct cfg_listener *l = config_listener(cfg, "pt");
        CHECK(l && l->proto == CFG_PROTO_TLS_PASSTHROUGH && !l->tls.enabled &&
                  l->idle_timeout_ms == 3600000,
              "passthrough listener, tcp idle default");
        l = config_listener(cfg, "pt2");
        CHECK(l && l->idle_timeout_ms == 600000, "passthrough idleTimeout");
        const struct cfg_route *r = &cfg->routes[0];
        CHECK(strcmp(r->name, "sni") == 0 && r->nlisteners == 2 && r->nrules == 3, "sni route");
        if (r->nrules == 3) {
            CHECK(r->rules[0].nconds == 1 && strcmp(r->rules[0].conds[0].attr, "tls.sni") == 0 &&
                      strcmp(r->rules[0].conds[0].value, "a.example.com") == 0,
                  "tls.sni exact");
            CHECK(r->rules[1].nconds == 4 && r->rules[1].conds[0].ignore_case &&
                      strcmp(r->rules[1].conds[1].attr, "tls.alpn") == 0 &&
                      r->rules[1].conds[1].nvalues == 2 && r->rules[1].nbackends == 2 &&
                      r->rules[1].retry.attempts == 2 && r->rules[1].timeout_ms == 3600000,
                  "passthrough rule");
            CHECK(strcmp(r->rules[2].hash_attr, "tls.sni") == 0, "hashOn tls.sni");
        }
        char *j = config_to_json(cfg);
        CHECK(j && json_check(j, "[l[\"protocol\"] for l in d[\"listeners\"]] == [\"http\", "
                                 "\"tcp\", \"tls\", \"tls\"] and d[\"listeners\"][2][\"tls\"] "
                                 "is None and d[\"routes\"][0][\"rules\"][0][\"match\"][0]"
                                 "[\"attribute\"] == \"tls.sni\""),
              "passthrough JSON: %s", j ? j : "(null)");
        free(j);
    }
    config_free(cfg);

    /* Passthrough routes: tcp attributes plus tls.sni and tls.alpn only. */
    EXPECT_ERR(TLSBASE ROUTE("[pt]") "  - backends: [{cluster: be}]\n"
                                     "    match: [{attribute: path, prefix: /}] #<\n",
               "attribute 'path' is not available on tls passthrough listeners (use "
               "source.address, destination.port, protocol, tls.sni or tls.alpn)");
    EXPECT_ERR(TLSBASE ROUTE("[pt]") "  - backends: [{cluster: be}]\n"
                                     "    match: [{attribute: source.identity, present: true}]"
                                     " #<\n",
               "attribute 'source.identity' is not available on tls passthrough listeners");
    EXPECT_ERR(TLSBASE ROUTE("[pt]") "  - backends: [{cluster: hash}]\n"
                                     "    hashOn: header.x #<\n",
               "attribute 'header.x' is not available on tls passthrough listeners");
    EXPECT_ERR(TLSBASE ROUTE("[pt]") "  - backends: [{cluster: hid}] #<\n",
               "Cluster 'hid' hashes on 'source.identity', which tls listeners do not have");
    EXPECT_ERR(TLSBASE API "kind: Cluster\nmetadata: {name: up}\nspec:\n"
                           "  endpoints: [{address: 127.0.0.1:9443}]\n  tls: {caFile: ca.pem}\n"
                           "---\n" ROUTE("[pt]") "  - backends: [{cluster: up}] #<\n",
               "Cluster 'up' has tls, but tls passthrough routes forward the client's TLS");
    EXPECT_ERR(TLSBASE ROUTE("[pt]") "  - directResponse: {status: 200} #<\n",
               "'directResponse' needs an http listener (Route 'r' attaches to tls listeners)");
    EXPECT_ERR(TLSBASE ROUTE("[pt]") "  - backends: [{cluster: be}]\n"
                                     "    retries: {attempts: 1, on: [5xx]} #<\n",
               "'5xx' needs an http listener");
    EXPECT_ERR(TLSBASE API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [pt]\n"
                           "  hostnames: [a.com] #<\n  rules: [{backends: [{cluster: be}]}]\n",
               "hostnames need http listeners, not tls (match on tls.sni instead)");
    EXPECT_ERR(TLSBASE ROUTE("[pt, raw] #<") "  - backends: [{cluster: be}]\n",
               "Listener 'raw' is tcp but 'pt' is tls: use one Route per protocol");
    EXPECT_ERR(TLSBASE "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                       "metadata: {name: h}\nspec:\n  parentRefs: [{name: pt}] #<\n"
                       "  rules: [{backendRefs: [{name: be}]}]\n",
               "HTTPRoute 'h' needs http listeners; 'pt' is tls");
    /* tcp: source.identity and tls.* yes (above), grpc.* no. */
    EXPECT_ERR(TLSBASE ROUTE("[raw]") "  - backends: [{cluster: be}]\n"
                                      "    match: [{attribute: grpc.method, exact: Get}] #<\n",
               "attribute 'grpc.method' is not available on tcp listeners (use source.address, "
               "source.identity, destination.port, protocol, tls.sni or tls.alpn)");
    EXPECT_ERR(TLSBASE ROUTE("[raw]") "  - backends: [{cluster: hgrpc}] #<\n",
               "Cluster 'hgrpc' hashes on 'grpc.method', which tcp listeners do not have");
    /* Still strict about everything else, and the message lists every name. */
    EXPECT_ERR(TLSBASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                      "    match: [{attribute: tls.version, exact: '1.3'}] #<\n",
               "unknown attribute 'tls.version' (use method, path, authority, scheme, "
               "header.<name>, query.<name>, grpc.service, grpc.method, source.address, "
               "source.identity, destination.port, protocol, tls.sni, tls.alpn, db.user, db.name, "
               "sql.command, sql.verb, sql.tables or sql.in_transaction)");
    EXPECT_ERR(TLSBASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                      "    match: [{attribute: grpc.Method, exact: a}] #<\n",
               "unknown attribute 'grpc.Method'");
    EXPECT_ERR(TLSBASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                      "    match: [{attribute: source.identity.uri, exact: a}]"
                                      " #<\n",
               "unknown attribute 'source.identity.uri'");
    EXPECT_ERR(TLSBASE ROUTE("[web]") "  - backends: [{cluster: be}]\n"
                                      "    match: [{attribute: 'header.', present: true}] #<\n",
               "invalid header name in 'header.'");
}

/* An AuthorizationPolicy `p` without its spec (which follows). */
#define AZ API "kind: AuthorizationPolicy\nmetadata: {name: p}\n"
/* A policy `p` on `targets` whose rules follow (each "  - match: ..."). */
#define AZR(targets) AZ "spec:\n  targets: " targets "\n  action: DENY\n  rules:\n"

static void test_authz(void)
{
    char err[512];
    const char *y =
        TLSBASE AZ "spec:\n  targets: [web]          # Listener names\n  action: DENY\n"
                   "  rules:\n  - match:\n    - {attribute: path, prefix: /admin}\n"
                   "    - {attribute: source.identity, exact: "
                   "\"spiffe://cluster.local/ns/ops/sa/admin\", invert: true}\n"
                   "  - match:\n    - {attribute: method, exact: DELETE}\n"
        "---\n" API "kind: AuthorizationPolicy\nmetadata: {name: internal}\nspec:\n"
                    "  targets: [raw, pt, web]\n  action: ALLOW\n  rules:\n"
                    "  - match: [{attribute: source.address, in: ['10.0.0.1', '10.0.0.2']}]\n"
                    "  - match:\n"
                    "    - {attribute: tls.sni, suffix: .Example.com, ignoreCase: true}\n"
                    "    - {attribute: destination.port, regex: '^84[0-9]+$'}\n"
                    "    - {attribute: tls.alpn, absent: true}\n"
        /* Routes and policies are separate namespaces. */
        "---\n" API "kind: Route\nmetadata: {name: p}\nspec:\n  parents: [web]\n"
                    "  rules: [{backends: [{cluster: be}]}]\n";
    struct config *cfg = load(y, err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg != NULL) {
        CHECK(cfg->nauthz == 2 && cfg->nroutes == 1, "%zu policies", cfg->nauthz);
    }
    if (cfg != NULL && cfg->nauthz == 2) {
        const struct cfg_authz *a = &cfg->authz[0], *b = &cfg->authz[1];
        CHECK(strcmp(a->name, "p") == 0 && a->action == CFG_AUTHZ_DENY && a->nlisteners == 1 &&
                  strcmp(a->listeners[0], "web") == 0 && a->nrules == 2,
              "policy p");
        CHECK(strcmp(a->where.file, "t.yaml") == 0 && a->where.line == line_of(y, "kind: Auth") - 1,
              "policy p where %s:%d", a->where.file, a->where.line);
        if (a->nrules == 2) {
            const struct cfg_authz_rule *r0 = &a->rules[0], *r1 = &a->rules[1];
            CHECK(r0->nconds == 2 &&
                      r0->where.line == line_of(y, "  - match:\n    - {attribute: path"),
                  "rule 0: %zu conds, line %d", r0->nconds, r0->where.line);
            if (r0->nconds == 2) {
                CHECK(strcmp(r0->conds[0].attr, "path") == 0 &&
                          r0->conds[0].op == CFG_MATCH_PREFIX &&
                          strcmp(r0->conds[0].value, "/admin") == 0 && !r0->conds[0].invert,
                      "path prefix");
                CHECK(strcmp(r0->conds[1].attr, "source.identity") == 0 &&
                          r0->conds[1].op == CFG_MATCH_EXACT &&
                          strcmp(r0->conds[1].value, "spiffe://cluster.local/ns/ops/sa/admin") ==
                              0 &&
                          r0->conds[1].invert && !r0->conds[1].ignore_case,
                      "identity exact inverted");
                CHECK(r0->conds[1].where.line == line_of(y, "{attribute: source.identity"),
                      "cond line %d", r0->conds[1].where.line);
            }
            CHECK(r1->nconds == 1 && strcmp(r1->conds[0].attr, "method") == 0 &&
                      strcmp(r1->conds[0].value, "DELETE") == 0,
                  "method rule");
        }
        CHECK(strcmp(b->name, "internal") == 0 && b->action == CFG_AUTHZ_ALLOW &&
                  b->nlisteners == 3 && strcmp(b->listeners[0], "raw") == 0 &&
                  strcmp(b->listeners[1], "pt") == 0 && strcmp(b->listeners[2], "web") == 0 &&
                  b->nrules == 2,
              "policy internal");
        if (b->nrules == 2 && b->rules[0].nconds == 1 && b->rules[1].nconds == 3) {
            const struct cfg_cond *c = b->rules[0].conds;
            CHECK(c->op == CFG_MATCH_IN && c->nvalues == 2 && c->value == NULL &&
                      strcmp(c->values[1], "10.0.0.2") == 0,
                  "in values");
            c = b->rules[1].conds;
            CHECK(c[0].op == CFG_MATCH_SUFFIX && c[0].ignore_case &&
                      strcmp(c[0].value, ".Example.com") == 0 && c[1].op == CFG_MATCH_REGEX &&
                      c[2].op == CFG_MATCH_ABSENT && c[2].value == NULL,
                  "suffix/regex/absent");
        } else {
            CHECK(0, "internal rules: %zu", b->nrules);
        }
        char *j = config_to_json(cfg);
        CHECK(j != NULL && json_parses(j), "authz JSON: %s", j ? j : "(null)");
        char expr[1536];
        snprintf(expr, sizeof(expr),
                 "[(p[\"name\"], p[\"action\"], p[\"targets\"]) for p in "
                 "d[\"authorizationPolicies\"]] == [(\"p\", \"DENY\", [\"web\"]), "
                 "(\"internal\", \"ALLOW\", [\"raw\", \"pt\", \"web\"])] and "
                 "d[\"authorizationPolicies\"][0][\"rules\"][0][\"match\"][1] == "
                 "{\"attribute\": \"source.identity\", \"exact\": "
                 "\"spiffe://cluster.local/ns/ops/sa/admin\", \"invert\": True, "
                 "\"ignoreCase\": False, \"source\": \"t.yaml:%d\"} and "
                 "d[\"authorizationPolicies\"][1][\"rules\"][0][\"match\"][0]"
                 "[\"in\"] == [\"10.0.0.1\", \"10.0.0.2\"] and "
                 "d[\"authorizationPolicies\"][1][\"source\"].startswith("
                 "\"t.yaml:\") and len(d[\"routes\"]) == 1",
                 line_of(y, "{attribute: source.identity"));
        CHECK(j && json_check(j, expr), "authz JSON content: %s", j ? j : "(null)");
        free(j);
    }
    config_free(cfg);

    /* The spec and its keys. */
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web]\n  action: DENY\n  rules: [{match: "
                       "[{attribute: path, prefix: /}]}]\n  mode: strict #<\n",
               "unknown key 'mode' in AuthorizationPolicy spec (allowed: targets, action, "
               "rules)");
    EXPECT_ERR(BASE AZ "spec: #<\n  action: DENY\n  rules: [{match: [{attribute: path, "
                       "prefix: /}]}]\n",
               "AuthorizationPolicy spec: missing required key 'targets'");
    EXPECT_ERR(BASE AZ "spec: #<\n  targets: [web]\n  rules: [{match: [{attribute: path, "
                       "prefix: /}]}]\n",
               "AuthorizationPolicy spec: missing required key 'action'");
    EXPECT_ERR(BASE AZ "spec: #<\n  targets: [web]\n  action: ALLOW\n",
               "AuthorizationPolicy spec: missing required key 'rules'");
    EXPECT_ERR(BASE "apiVersion: strand.dev/v1alpha1 #<\nkind: AuthorizationPolicy\n"
                    "metadata: {name: p}\n",
               "AuthorizationPolicy 'p': missing required key 'spec'");
    EXPECT_ERR(BASE "apiVersion: strand.dev/v1 #<\nkind: AuthorizationPolicy\n"
                    "metadata: {name: p}\nspec: {}\n",
               "apiVersion of AuthorizationPolicy must be strand.dev/v1alpha1, got "
               "'strand.dev/v1'");
    EXPECT_ERR(BASE AZ "spec: [targets] #<\n",
               "AuthorizationPolicy spec: expected a mapping, got a sequence");
    /* action */
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web]\n  action: allow #<\n  rules: []\n",
               "action: expected ALLOW or DENY, got 'allow'");
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web]\n  action: AUDIT #<\n  rules: []\n",
               "action: expected ALLOW or DENY, got 'AUDIT'");
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web]\n  action: #<\n  rules: []\n",
               "action: expected a string, got null");
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web]\n  action: [DENY] #<\n  rules: []\n",
               "action: expected a string, got a sequence");
    /* targets */
    EXPECT_ERR(BASE AZ "spec:\n  targets: [] #<\n  action: DENY\n  rules: []\n",
               "targets: must not be empty");
    EXPECT_ERR(BASE AZ "spec:\n  targets: web #<\n  action: DENY\n  rules: []\n",
               "targets: expected a sequence, got a string");
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web, nope] #<\n  action: DENY\n  rules: []\n",
               "unknown Listener 'nope'");
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web, raw, web] #<\n  action: DENY\n  rules: []\n",
               "Listener 'web' is listed twice");
    EXPECT_ERR(BASE AZ "spec:\n  targets:\n  - web\n  - {name: raw} #<\n  action: DENY\n",
               "target: expected a string, got a mapping");
    /* rules */
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web]\n  action: DENY\n  rules: [] #<\n",
               "rules: must not be empty");
    EXPECT_ERR(BASE AZ "spec:\n  targets: [web]\n  action: DENY\n  rules: {match: []} #<\n",
               "rules: expected a sequence, got a mapping");
    EXPECT_ERR(BASE AZR("[web]") "  - match: [{attribute: path, prefix: /}]\n"
                                 "  - {} #<\n",
               "rule: missing required key 'match'");
    EXPECT_ERR(BASE AZR("[web]") "  - match: [] #<\n",
               "match: must not be empty (a rule without conditions would match every "
               "message)");
    EXPECT_ERR(BASE AZR("[web]") "  - match: #<\n",
               "match: expected a sequence, got null");
    EXPECT_ERR(BASE AZR("[web]") "  - match: [{attribute: path, prefix: /}]\n"
                                 "    backends: [{cluster: be}] #<\n",
               "unknown key 'backends' in rule (allowed: match)");
    EXPECT_ERR(BASE AZR("[web]") "  - [{attribute: path, prefix: /}] #<\n",
               "rule: expected a mapping, got a sequence");
    /* Conditions: the Route's syntax and checks. */
    EXPECT_ERR(BASE AZR("[web]") "  - match: [{attribute: path, prefix: /, negate: true}] #<\n",
               "unknown key 'negate' in match condition (allowed: attribute, exact, prefix, "
               "suffix, regex, present, absent, in, invert, ignoreCase)");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n    - {attribute: path, prefix: /,\n"
                                 "       exact: /a} #<\n",
               "condition has two operators ('prefix' and 'exact')");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n    - {attribute: path} #<\n",
               "condition needs one operator");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n    - {prefix: /} #<\n",
               "match condition: missing required key 'attribute'");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n    - {attribute: header.x, present: false} #<\n",
               "only 'present: true' is allowed");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n    - {attribute: header.x, present: true,\n"
                                 "       ignoreCase: true} #<\n",
               "ignoreCase has no effect with present");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n    - {attribute: header.x, in: []} #<\n",
               "in: must not be empty");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n    - {attribute: user, exact: bob} #<\n",
               "unknown attribute 'user' (use method, path,");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n    - {attribute: path, prefix: /}\n"
                                 "    - {attribute: path, regex: '/(a|b'} #<\n",
               "bad regex '/(a|b' for path at offset 5: missing closing parenthesis");
    EXPECT_ERR(BASE AZR("[web]") "  - match:\n"
                                 "    - {attribute: header.X-User, regex: '[z-a]'} #<\n",
               "bad regex '[z-a]' for header.x-user at offset 3: range out of order");
    /* ... and attributes every target listener offers. */
    EXPECT_ERR(BASE AZR("[raw]") "  - match:\n    - {attribute: path, prefix: /admin} #<\n",
               "attribute: attribute 'path' is not available on tcp listeners (use "
               "source.address, source.identity, destination.port, protocol, tls.sni or "
               "tls.alpn)");
    EXPECT_ERR(BASE AZR("[web, raw]") "  - match:\n    - {attribute: source.address, prefix: "
                                      "'10.'}\n    - {attribute: method, exact: GET} #<\n",
               "attribute 'method' is not available on tcp listeners");
    EXPECT_ERR(TLSBASE AZR("[pt]") "  - match:\n    - {attribute: source.identity, present: "
                                   "true} #<\n",
               "attribute 'source.identity' is not available on tls passthrough listeners (use "
               "source.address, destination.port, protocol, tls.sni or tls.alpn)");
    EXPECT_ERR(TLSBASE AZR("[web, pt]") "  - match:\n    - {attribute: header.x, present: "
                                        "true} #<\n",
               "attribute 'header.x' is not available on tls passthrough listeners (use "
               "source.address, destination.port, protocol, tls.sni or tls.alpn)");
    EXPECT_ERR(TLSBASE AZR("[raw, pt]") "  - match:\n    - {attribute: path, exact: /} #<\n",
               "attribute 'path' is not available on tcp listeners (use source.address, "
               "destination.port, protocol, tls.sni or tls.alpn)");
    /* Names are unique among policies. */
    EXPECT_ERR(BASE AZR("[web]") "  - match: [{attribute: path, prefix: /}]\n---\n" API
                                 "kind: AuthorizationPolicy\nmetadata: {name: p} #<\nspec:\n"
                                 "  targets: [raw]\n  action: ALLOW\n"
                                 "  rules: [{match: [{attribute: protocol, exact: tcp}]}]\n",
               "duplicate AuthorizationPolicy 'p' (first defined at t.yaml:");
    EXPECT_ERR(BASE API "kind: AuthorizationPolicy\nmetadata: {name: Admin_Only} #<\nspec: {}\n",
               "metadata.name: invalid name 'Admin_Only'");
}

/* Lists and the number of policies are bounded. */
static void test_authz_limits(void)
{
    char err[512];
    struct sbuf b = {0};
    sb_printf(&b, BASE AZR("[web]"));
    for (int i = 0; i < 100; i++) {
        sb_printf(&b, "  - match:\n");
        for (int j = 0; j < (i == 0 ? 100 : 1); j++)
            sb_printf(&b, "    - {attribute: header.x-%d, exact: v%d}\n", j, i);
    }
    struct config *cfg = load(b.p, err, sizeof(err));
    CHECK(cfg != NULL && cfg->nauthz == 1 && cfg->authz[0].nrules == 100 &&
              cfg->authz[0].rules[0].nconds == 100,
          "%s", err);
    config_free(cfg);
    sb_printf(&b, "  - match: [{attribute: path, prefix: /}]\n");
    cfg = load(b.p, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "rules: more than 100 entries") != NULL, "%s", err);
    free(b.p);

    memset(&b, 0, sizeof(b));
    sb_printf(&b, BASE AZR("[web]") "  - match:\n");
    for (int j = 0; j < 101; j++)
        sb_printf(&b, "    - {attribute: path, prefix: /%d}\n", j);
    cfg = load(b.p, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "match: more than 100 entries") != NULL, "%s", err);
    free(b.p);

    /* 10000 policies load (checked by the error coming from the next one:
     * loading them twice would double the slowest test under ASan). */
    memset(&b, 0, sizeof(b));
    sb_printf(&b, "%s", BASE);
    for (int i = 0; i < 10000; i++)
        sb_printf(&b, API "kind: AuthorizationPolicy\nmetadata: {name: p%d}\nspec: {targets: "
                          "[web], action: DENY, rules: [{match: [{attribute: path, exact: "
                          "/%d}]}]}\n---\n",
                  i, i);
    sb_printf(&b, API "kind: AuthorizationPolicy\nmetadata: {name: one-more}\nspec: {targets: "
                      "[web], action: DENY, rules: [{match: [{attribute: path, exact: /}]}]}\n");
    cfg = load(b.p, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "more than 10000 AuthorizationPolicies") != NULL &&
              line_of(b.p, "name: one-more") == atoi(err + strlen("t.yaml:")),
          "%s", err);
    free(b.p);
}

/* A policy in one file, its listeners in others; errors name the file. */
static void test_authz_multifile(void)
{
    char dir[] = "/tmp/strand_authz_XXXXXX", err[512], want[600];
    if (mkdtemp(dir) == NULL) {
        CHECK(0, "mkdtemp");
        return;
    }
    char *a = write_file(dir, "policy.yaml",
                         "# policies first\n" AZ "spec:\n  targets: [edge, raw]\n"
                         "  action: ALLOW\n  rules:\n"
                         "  - match: [{attribute: source.address, prefix: '10.'}]\n");
    char *b = write_file(dir, "edge.yaml",
                         API "kind: Listener\nmetadata: {name: edge}\n"
                             "spec: {address: 127.0.0.1:10000}\n");
    char *c = write_file(dir, "raw.yaml",
                         API "kind: Listener\nmetadata: {name: raw}\n"
                             "spec: {address: 127.0.0.1:10001, protocol: tcp}\n");
    char *d = write_file(dir, "bad.yaml",
                         AZ "spec:\n  targets: [edge, raw]\n  action: DENY\n  rules:\n"
                            "  - match: [{attribute: path, prefix: /admin}]\n");
    const char *ok[] = {a, b, c};
    struct config *cfg = NULL;
    int rc = config_load_files(ok, 3, &cfg, err, sizeof(err));
    CHECK(rc == 0, "%s", err);
    if (rc == 0) {
        CHECK(cfg->nauthz == 1 && cfg->authz[0].nlisteners == 2 &&
                  strcmp(cfg->authz[0].where.file, a) == 0 && cfg->authz[0].where.line == 2 &&
                  strcmp(cfg->authz[0].rules[0].conds[0].where.file, a) == 0,
              "policy from policy.yaml");
        char *j = config_to_json(cfg);
        snprintf(want, sizeof(want), "\"source\":\"%s:2\"", a);
        CHECK(j && json_parses(j) && strstr(j, want) != NULL, "JSON %s", j ? j : "(null)");
        free(j);
        config_free(cfg);
    }
    /* Without raw.yaml the target is unknown. */
    const char *missing[] = {a, b};
    rc = config_load_files(missing, 2, &cfg, err, sizeof(err));
    snprintf(want, sizeof(want), "%s:6: unknown Listener 'raw'", a);
    CHECK(rc != 0 && strcmp(err, want) == 0, "got '%s' want '%s'", err, want);
    /* `path` with a tcp target from another file; and a duplicate name. */
    const char *tcp[] = {b, c, d};
    rc = config_load_files(tcp, 3, &cfg, err, sizeof(err));
    snprintf(want, sizeof(want), "%s:8: attribute: attribute 'path' is not available on tcp "
                                 "listeners", d);
    CHECK(rc != 0 && strncmp(err, want, strlen(want)) == 0, "got '%s' want '%s'", err, want);
    const char *dup[] = {a, b, c, a};
    rc = config_load_files(dup, 4, &cfg, err, sizeof(err));
    snprintf(want, sizeof(want), "%s:4: duplicate AuthorizationPolicy 'p' (first defined at %s:2)",
             a, a);
    CHECK(rc != 0 && strcmp(err, want) == 0, "got '%s' want '%s'", err, want);
    char *files[] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        unlink(files[i]);
        free(files[i]);
    }
    rmdir(dir);
}

/* Cluster protocol (http1/http2), its ALPN default with tls, and the gRPC
 * retry trigger. */
static void test_http2(void)
{
    char err[512];
    const char *y = API "kind: Listener\nmetadata: {name: web}\nspec: {address: 127.0.0.1:10000}\n"
                    "---\n" API "kind: Cluster\nmetadata: {name: h1}\n"
                    "spec: {endpoints: [{address: 127.0.0.1:8080}]}\n"
                    "---\n" API "kind: Cluster\nmetadata: {name: g}\n"
                    "spec: {protocol: http2, endpoints: [{address: 127.0.0.1:8081}]}\n"
                    "---\n" API "kind: Cluster\nmetadata: {name: gs}\n"
                    "spec: {protocol: http2, endpoints: [{address: 127.0.0.1:8082}],\n"
                    "       tls: {verify: false}}\n"
                    "---\n" API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [web]\n"
                    "  rules:\n  - match: [{attribute: grpc.method, exact: Get}]\n"
                    "    backends: [{cluster: g}]\n"
                    "    retries: {attempts: 2, on: [unavailable, reset]}\n";
    struct config *cfg = load(y, err, sizeof(err));
    CHECK(cfg != NULL, "http2 config loads: %s", err);
    if (!cfg)
        return;
    const struct cfg_cluster *c = config_cluster(cfg, "h1");
    CHECK(c && c->protocol == CFG_UPSTREAM_HTTP1, "protocol defaults to http1");
    c = config_cluster(cfg, "g");
    CHECK(c && c->protocol == CFG_UPSTREAM_HTTP2, "protocol: http2");
    c = config_cluster(cfg, "gs");
    CHECK(c && c->tls.enabled && c->tls.nalpn == 1 && strcmp(c->tls.alpn[0], "h2") == 0,
          "http2 cluster with tls offers ALPN h2 by default");
    const struct cfg_retry *rt = &cfg->routes[0].rules[0].retry;
    CHECK(rt->on == (CFG_RETRY_UNAVAILABLE | CFG_RETRY_RESET), "retries.on: unavailable");
    char *json = config_to_json(cfg);
    CHECK(json && strstr(json, "\"protocol\":\"http2\"") && strstr(json, "\"unavailable\""),
          "admin view shows protocol and unavailable");
    free(json);
    config_free(cfg);
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: c}\n"
                   "spec: {endpoints: [{address: 127.0.0.1:8080}],\n"
                   "  protocol: h3}   #<\n",
               "protocol: expected http1 or http2, got 'h3'");
}

/* Database listeners: their attributes, tcp-like routes, no tls yet. */
static void test_db_listeners(void)
{
    char err[512];
    const char *y = API "kind: Listener\nmetadata: {name: pg}\n"
                    "spec: {address: 127.0.0.1:15432, protocol: postgres}\n"
                    "---\n" API "kind: Listener\nmetadata: {name: my}\n"
                    "spec: {address: 127.0.0.1:13306, protocol: mysql}\n"
                    "---\n" API "kind: Cluster\nmetadata: {name: primary}\n"
                    "spec: {endpoints: [{address: 127.0.0.1:5432}]}\n"
                    "---\n" API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [pg]\n"
                    "  rules:\n  - match: [{attribute: db.user, exact: app},\n"
                    "            {attribute: sql.tables, in: [users]}]\n"
                    "    backends: [{cluster: primary}]\n"
                    "    retries: {attempts: 1, on: [connect-failure]}\n"
                    "---\n" API "kind: AuthorizationPolicy\nmetadata: {name: no-delete}\n"
                    "spec:\n  targets: [pg, my]\n  action: DENY\n  rules:\n"
                    "  - match: [{attribute: sql.verb, exact: DELETE}, {attribute: db.name, exact: "
                    "shop}]\n";
    struct config *cfg = load(y, err, sizeof(err));
    CHECK(cfg != NULL, "postgres and mysql listeners load: %s", err);
    if (cfg) {
        CHECK(config_listener(cfg, "pg")->proto == CFG_PROTO_POSTGRES &&
                  config_listener(cfg, "my")->proto == CFG_PROTO_MYSQL,
              "protocols");
        CHECK(config_listener(cfg, "pg")->idle_timeout_ms == 3600000, "idle timeout 1h");
        char *json = config_to_json(cfg);
        CHECK(json && strstr(json, "\"protocol\":\"postgres\"") &&
                  strstr(json, "\"protocol\":\"mysql\""),
              "admin view names the protocols");
        free(json);
        config_free(cfg);
    }
    /* Cluster auth: the credentials for connections the proxy opens itself;
     * the admin view never shows the password. */
    cfg = load(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  auth: {user: strand, password: s3cret}\n",
               err, sizeof(err));
    CHECK(cfg && strcmp(cfg->clusters[0].auth_user, "strand") == 0 &&
              strcmp(cfg->clusters[0].auth_password, "s3cret") == 0,
          "cluster auth: %s", err);
    if (cfg) {
        char *json = config_to_json(cfg);
        CHECK(json && strstr(json, "\"user\":\"strand\"") && !strstr(json, "s3cret"),
              "admin view hides the password");
        free(json);
        config_free(cfg);
    }
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  auth: {password: x} #<\n",
               "auth: missing required key 'user'");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: my}\n"
                   "spec:\n  address: 127.0.0.1:13306\n  protocol: mysql\n"
                   "  tls: {certificates: [{certFile: a, keyFile: b}]} #<\n",
               "'tls' is not supported on mysql listeners yet");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: pg}\n"
                   "spec: {address: 127.0.0.1:15432, protocol: postgres}\n"
                   "---\n" API "kind: Cluster\nmetadata: {name: c}\n"
                   "spec: {endpoints: [{address: 127.0.0.1:5432}]}\n"
                   "---\n" API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [pg]\n"
                   "  rules:\n  - backends: [{cluster: c}]\n"
                   "    match: [{attribute: path, prefix: /}] #<\n",
               "attribute 'path' is not available on postgres listeners");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: my}\n"
                   "spec: {address: 127.0.0.1:13306, protocol: mysql}\n"
                   "---\n" API "kind: Cluster\nmetadata: {name: c}\n"
                   "spec: {endpoints: [{address: 127.0.0.1:3306}]}\n"
                   "---\n" API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [my]\n"
                   "  rules:\n  - backends: [{cluster: c}]\n"
                   "    requestHeaders: {set: {a: b}} #<\n",
               "'requestHeaders' needs an http listener");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: pg}\n"
                   "spec: {address: 127.0.0.1:15432, protocol: postgres}\n"
                   "---\n" API "kind: Cluster\nmetadata: {name: c}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5432}]\n  tls: {verify: false}\n"
                   "---\n" API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [pg]\n"
                   "  rules:\n  - backends: [{cluster: c}] #<\n",
               "Cluster 'c' has tls, which postgres routes do not support yet");
}

/* Listener auth (terminated PostgreSQL authentication): users with a
 * password or a pasted SCRAM verifier, secrets kept out of the admin view,
 * and the errors, including a route to a cluster the proxy cannot log into. */
#define TERM_L API "kind: Listener\nmetadata: {name: pg}\nspec:\n  address: 127.0.0.1:15432\n" \
               "  protocol: postgres\n"
#define VERIFIER "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$" \
                 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:" \
                 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
static void test_listener_auth(void)
{
    char err[512];
    struct config *cfg = load(TERM_L "  auth:\n    users:\n    - {user: app, password: pw1}\n"
                                     "    - {user: ops, scramSecret: \"" VERIFIER "\"}\n"
                                     "---\n" API "kind: Cluster\nmetadata: {name: c}\n"
                                     "spec: {endpoints: [{address: 127.0.0.1:5432}], auth: {user: s}}\n"
                                     "---\n" API "kind: Route\nmetadata: {name: r}\nspec:\n"
                                     "  parents: [pg]\n  rules: [{backends: [{cluster: c}]}]\n",
                              err, sizeof(err));
    CHECK(cfg != NULL, "listener auth loads: %s", err);
    if (cfg) {
        const struct cfg_listener *l = config_listener(cfg, "pg");
        CHECK(l->nauth_users == 2 && strcmp(l->auth_users[0].password, "pw1") == 0 &&
                  l->auth_users[1].scram_secret && !l->auth_users[1].password,
              "users");
        /* The secrets the proxy checks clients against (pg_users.c). */
        char e2[256];
        struct pg_users *pu = pg_users_build(l, e2, sizeof(e2));
        CHECK(pu != NULL, "pg_users_build: %s", e2);
        if (pu) {
            struct pg_scram_secret a, b, c2, d;
            CHECK(pg_users_secret(pu, "ops", &a) == 1 && a.iterations == 4096 &&
                      a.stored_key[0] == 0 && a.stored_key[31] == 31,
                  "a pasted verifier is used as it is");
            CHECK(pg_users_secret(pu, "app", &b) == 1 && b.iterations == 4096, "password user");
            CHECK(pg_users_secret(pu, "nobody", &c2) == 0 && pg_users_secret(pu, "nobody", &d) == 0 &&
                      c2.salt_len == d.salt_len && memcmp(c2.salt, d.salt, c2.salt_len) == 0,
                  "an unknown user gets the same made-up salt each time");
            CHECK(pg_users_secret(pu, "someone", &d) == 0 &&
                      memcmp(c2.salt, d.salt, c2.salt_len) != 0,
                  "... and two unknown users different ones, like real users");
            pg_users_free(pu);
        }
        char *json = config_to_json(cfg);
        CHECK(json && strstr(json, "\"user\":\"app\"") && strstr(json, "\"credential\":\"scramSecret\"") &&
                  !strstr(json, "pw1") && !strstr(json, "c2FsdHNhbHRz"),
              "admin view: users without secrets");
        free(json);
        config_free(cfg);
    }
    EXPECT_ERR(TERM_L "  auth:\n    users:\n    - {user: app} #<\n",
               "give exactly one of password or scramSecret");
    EXPECT_ERR(TERM_L "  auth:\n    users:\n    - {user: app, password: a, scramSecret: b} #<\n",
               "give exactly one of password or scramSecret");
    EXPECT_ERR(TERM_L "  auth:\n    users:\n    - {user: app, scramSecret: \"md5abc\"} #<\n",
               "scramSecret: expected SCRAM-SHA-256$");
    EXPECT_ERR(TERM_L "  auth:\n    users:\n    - {user: app, password: a}\n"
                      "    - {user: app, password: b} #<\n",
               "auth user 'app' listed twice");
    EXPECT_ERR(TERM_L "  auth: {users: []} #<\n", "users");
    /* source.identity: from TLS client certificates, which postgres
     * listeners can verify and mysql ones cannot (no TLS there yet). */
    cfg = load(TERM_L "---\n" API "kind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n"
                      "  targets: [pg]\n  action: DENY\n"
                      "  rules: [{match: [{attribute: source.identity, prefix: spiffe://}]}]\n",
               err, sizeof(err));
    CHECK(cfg != NULL, "source.identity on a postgres listener: %s", err);
    config_free(cfg);
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: my}\n"
                   "spec: {address: 127.0.0.1:13306, protocol: mysql}\n"
                   "---\n" API "kind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n"
                   "  targets: [my]\n  action: DENY\n"
                   "  rules: [{match: [{attribute: source.identity, prefix: x}]}] #<\n",
               "source.identity");
    EXPECT_ERR(API "kind: Listener\nmetadata: {name: t}\n"
                   "spec:\n  address: 127.0.0.1:13306\n  protocol: tcp\n"
                   "  auth: {users: [{user: a, password: b}]} #<\n",
               "'auth' applies only to postgres and mysql listeners");
    EXPECT_ERR(TERM_L "  auth: {users: [{user: a, password: b}]}\n"
                      "---\n" API "kind: Cluster\nmetadata: {name: c}\n"
                      "spec: {endpoints: [{address: 127.0.0.1:5432}]}\n"
                      "---\n" API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [pg]\n"
                      "  rules:\n  - backends: [{cluster: c}] #<\n",
               "cluster 'c' has no auth, but listener 'pg' authenticates clients itself");
}

/* Cluster replicaCheck: defaults, values, the admin view, and the errors
 * (only with auth, known keys, durations in range, at most 64 endpoints). */
static void test_replica_check(void)
{
    char err[512];
    struct config *cfg = load(API "kind: Cluster\nmetadata: {name: replica}\n"
                                  "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                                  "  auth: {user: strand, password: s3cret}\n"
                                  "  replicaCheck: {}\n"
                                  "---\n" API "kind: Cluster\nmetadata: {name: r2}\n"
                                  "spec:\n  endpoints: [{address: 127.0.0.1:5434}]\n"
                                  "  auth: {user: strand}\n"
                                  "  replicaCheck: {interval: 200ms, maxLag: 0s, timeout: 1s,\n"
                                  "                 query: \"SELECT lag FROM x\"}\n"
                                  "---\n" API "kind: Cluster\nmetadata: {name: plain}\n"
                                  "spec:\n  endpoints: [{address: 127.0.0.1:5435}]\n"
                                  "  auth: {user: strand}\n",
                              err, sizeof(err));
    CHECK(cfg != NULL, "replicaCheck loads: %s", err);
    if (!cfg)
        return;
    const struct cfg_replica_check *a = &config_cluster(cfg, "replica")->replica_check;
    const struct cfg_replica_check *b = &config_cluster(cfg, "r2")->replica_check;
    const struct cfg_replica_check *c = &config_cluster(cfg, "plain")->replica_check;
    CHECK(a->enabled && a->interval_ms == 1000 && a->max_lag_ms == 5000 && a->timeout_ms == 2000 &&
              a->query == NULL,
          "replicaCheck defaults: %llu %llu %llu", (unsigned long long)a->interval_ms,
          (unsigned long long)a->max_lag_ms, (unsigned long long)a->timeout_ms);
    CHECK(b->enabled && b->interval_ms == 200 && b->max_lag_ms == 0 && b->timeout_ms == 1000 &&
              b->query && strcmp(b->query, "SELECT lag FROM x") == 0,
          "replicaCheck values");
    CHECK(!c->enabled, "no replicaCheck unless asked for");
    char *json = config_to_json(cfg);
    CHECK(json && json_parses(json), "replicaCheck JSON: %s", json ? json : "(null)");
    CHECK(json && json_check(json, "[c.get(\"replicaCheck\") for c in d[\"clusters\"]] == ["
                                   "{\"intervalMs\": 1000, \"maxLagMs\": 5000, "
                                   "\"timeoutMs\": 2000, \"query\": None}, "
                                   "{\"intervalMs\": 200, \"maxLagMs\": 0, \"timeoutMs\": 1000, "
                                   "\"query\": \"SELECT lag FROM x\"}, None]"),
          "replicaCheck in the admin view: %s", json ? json : "(null)");
    free(json);
    config_free(cfg);

    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  replicaCheck: {interval: 1s} #<\n",
               "replicaCheck requires auth");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  replicaCheck: #<\n    interval: 1s\n",
               "replicaCheck requires auth");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  auth: {user: strand}\n"
                   "  replicaCheck: {every: 1s} #<\n",
               "every");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  auth: {user: strand}\n"
                   "  replicaCheck:\n    interval: 1ms #<\n",
               "replicaCheck.interval");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  auth: {user: strand}\n"
                   "  replicaCheck:\n    maxLag: soon #<\n",
               "replicaCheck.maxLag");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  auth: {user: strand}\n"
                   "  replicaCheck:\n    timeout: 0ms #<\n",
               "replicaCheck.timeout");
    EXPECT_ERR(API "kind: Cluster\nmetadata: {name: replica}\n"
                   "spec:\n  endpoints: [{address: 127.0.0.1:5433}]\n"
                   "  auth: {user: strand}\n"
                   "  replicaCheck:\n    query: \"\" #<\n",
               "replicaCheck.query");
    /* 65 endpoints: more than the proxy's endpoint masks cover. */
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof(big), "%s",
                                API "kind: Cluster\nmetadata: {name: replica}\nspec:\n"
                                    "  endpoints:\n");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "  - {address: 127.0.0.1:%d}\n",
                              10000 + i);
    snprintf(big + n, sizeof(big) - n, "  auth: {user: strand}\n  replicaCheck: {} #<\n");
    EXPECT_ERR(big, "replicaCheck: at most 64 endpoints");
}

int main(void)
{
    test_quickstart();
    test_defaults();
    test_full_ok();
    test_errors();
    test_errors2();
    test_httproute();
    test_tls();
    test_tls_errors();
    test_tls_limits();
    test_passthrough_and_attributes();
    test_authz();
    test_authz_limits();
    test_authz_multifile();
    test_http2();
    test_db_listeners();
    test_listener_auth();
    test_replica_check();
    test_multifile();
    test_limits();
    test_parse_values();
    test_json();
    test_docs_example();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
