/* config_json.c - the loaded config as JSON, for the admin /config endpoint.
 *
 * The output mirrors the YAML names (durations as <name>Ms in milliseconds)
 * plus a "source": "file:line" per object, so an operator can see exactly
 * what the proxy runs and where each piece came from. Strings are escaped
 * for JSON and any invalid UTF-8 becomes U+FFFD, so the output is valid
 * JSON whatever the strings hold. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JW_MAX_DEPTH 16

struct jw {
    char *p;
    size_t len, cap;
    bool oom;
    int depth;
    bool after_key;
    bool first[JW_MAX_DEPTH];
};

/* Appends n bytes of s; sets oom (and stops writing) on allocation failure.
 * Borrows s. */
static void jw_raw(struct jw *w, const char *s, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *p = realloc(w->p, cap);
        if (p == NULL) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

/* Writes the ',' a new value or key needs, unless it follows a key. */
static void jw_sep(struct jw *w)
{
    if (!w->after_key && !w->first[w->depth])
        jw_raw(w, ",", 1);
    w->first[w->depth] = false;
    w->after_key = false;
}

/* Opens '{' or '['. */
static void jw_open(struct jw *w, char c)
{
    jw_sep(w);
    jw_raw(w, &c, 1);
    w->depth++; /* nesting is fixed by this file and stays < JW_MAX_DEPTH */
    w->first[w->depth] = true;
}

/* Closes with '}' or ']'. Borrows w. */
static void jw_close(struct jw *w, char c)
{
    w->depth--;
    jw_raw(w, &c, 1);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x3fu >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL terminator */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string value (or null for NULL). Borrows s. */
static void jw_str(struct jw *w, const char *s)
{
    jw_sep(w);
    if (s == NULL) {
        jw_raw(w, "null", 4);
        return;
    }
    jw_raw(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t run = 0;
        /* Copy runs of characters that need no escaping in one go. */
        while (p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        jw_raw(w, (const char *)p, run);
        p += run;
        if (*p == '\0')
            break;
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            jw_raw(w, esc, 2);
            p++;
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            jw_raw(w, esc, 6);
            p++;
        } else {
            size_t n = utf8_len(p);
            if (n == 0) {
                jw_raw(w, "\\ufffd", 6);
                p++;
            } else {
                jw_raw(w, (const char *)p, n);
                p += n;
            }
        }
    }
    jw_raw(w, "\"", 1);
}

/* "key": — the value follows. Borrows k (a literal, never escaped). */
static void jw_key(struct jw *w, const char *k)
{
    jw_sep(w);
    jw_raw(w, "\"", 1);
    jw_raw(w, k, strlen(k));
    jw_raw(w, "\":", 2);
    w->after_key = true;
}

/* "k": v. Borrows w and k. */
static void jw_u64(struct jw *w, const char *k, uint64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    jw_key(w, k);
    jw_sep(w);
    jw_raw(w, buf, (size_t)n);
}

/* "k": true|false. Borrows w and k. */
static void jw_bool(struct jw *w, const char *k, bool v)
{
    jw_key(w, k);
    jw_sep(w);
    jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

/* "k": "s" (or null). Borrows both. */
static void jw_kstr(struct jw *w, const char *k, const char *s)
{
    jw_key(w, k);
    jw_str(w, s);
}

/* "source": "file:line". Borrows where. */
static void jw_where(struct jw *w, const struct cfg_where *where)
{
    char line[16];
    snprintf(line, sizeof(line), ":%d", where->line);
    jw_key(w, "source");
    /* Reuse jw_str's escaping for the file name, then splice the line in. */
    jw_str(w, where->file ? where->file : "");
    if (!w->oom && w->len > 0) {
        w->len--; /* drop the closing quote */
        jw_raw(w, line, strlen(line));
        jw_raw(w, "\"", 1);
    }
}

/* "k": ["a", ...]. Borrows all. */
static void jw_strv(struct jw *w, const char *k, char *const *v, size_t n)
{
    jw_key(w, k);
    jw_open(w, '[');
    for (size_t i = 0; i < n; i++)
        jw_str(w, v[i]);
    jw_close(w, ']');
}

/* "k": [{"name": .., "value": ..}] */
static void jw_headers(struct jw *w, const char *k, const struct cfg_header *h, size_t n)
{
    jw_key(w, k);
    jw_open(w, '[');
    for (size_t i = 0; i < n; i++) {
        jw_open(w, '{');
        jw_kstr(w, "name", h[i].name);
        jw_kstr(w, "value", h[i].value);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

/* Borrows all. */
static void jw_header_ops(struct jw *w, const char *k, const struct cfg_header_ops *ops)
{
    jw_key(w, k);
    jw_open(w, '{');
    jw_headers(w, "set", ops->set, ops->nset);
    jw_headers(w, "add", ops->add, ops->nadd);
    jw_strv(w, "remove", ops->remove, ops->nremove);
    jw_close(w, '}');
}

/* Borrows all. */
static void jw_cond(struct jw *w, const struct cfg_cond *c)
{
    static const char *const ops[] = {"exact",   "prefix", "suffix", "regex",
                                      "present", "absent", "in"};
    jw_open(w, '{');
    jw_kstr(w, "attribute", c->attr);
    if (c->op == CFG_MATCH_PRESENT || c->op == CFG_MATCH_ABSENT)
        jw_bool(w, ops[c->op], true);
    else if (c->op == CFG_MATCH_IN)
        jw_strv(w, "in", c->values, c->nvalues);
    else
        jw_kstr(w, ops[c->op], c->value);
    jw_bool(w, "invert", c->invert);
    jw_bool(w, "ignoreCase", c->ignore_case);
    jw_where(w, &c->where);
    jw_close(w, '}');
}

/* Borrows all. */
static void jw_rule(struct jw *w, const struct cfg_rule *r)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } ons[] = {{CFG_RETRY_CONNECT_FAILURE, "connect-failure"},
               {CFG_RETRY_5XX, "5xx"},
               {CFG_RETRY_RESET, "reset"},
               {CFG_RETRY_GATEWAY_ERROR, "gateway-error"},
               {CFG_RETRY_UNAVAILABLE, "unavailable"}};
    jw_open(w, '{');
    jw_kstr(w, "name", r->name);
    jw_key(w, "match");
    jw_open(w, '[');
    for (size_t i = 0; i < r->nconds; i++)
        jw_cond(w, &r->conds[i]);
    jw_close(w, ']');
    jw_key(w, "backends");
    jw_open(w, '[');
    for (size_t i = 0; i < r->nbackends; i++) {
        jw_open(w, '{');
        jw_kstr(w, "cluster", r->backends[i].cluster);
        jw_u64(w, "weight", r->backends[i].weight);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_u64(w, "timeoutMs", r->timeout_ms);
    jw_key(w, "retries");
    jw_open(w, '{');
    jw_u64(w, "attempts", r->retry.attempts);
    jw_key(w, "on");
    jw_open(w, '[');
    for (size_t i = 0; i < sizeof(ons) / sizeof(ons[0]); i++)
        if (r->retry.on & ons[i].bit)
            jw_str(w, ons[i].name);
    jw_close(w, ']');
    jw_u64(w, "perTryTimeoutMs", r->retry.per_try_timeout_ms);
    jw_u64(w, "budgetPercent", r->retry.budget_percent);
    jw_u64(w, "minRetryConcurrency", r->retry.min_retry_concurrency);
    jw_close(w, '}');
    jw_header_ops(w, "requestHeaders", &r->request_headers);
    jw_header_ops(w, "responseHeaders", &r->response_headers);
    jw_kstr(w, "rewritePathPrefix", r->rewrite_prefix);
    jw_key(w, "directResponse");
    if (r->direct.status == 0) {
        jw_str(w, NULL);
    } else {
        jw_open(w, '{');
        jw_u64(w, "status", (uint64_t)r->direct.status);
        jw_kstr(w, "body", r->direct.body);
        jw_kstr(w, "contentType", r->direct.content_type);
        jw_close(w, '}');
    }
    jw_kstr(w, "hashOn", r->hash_attr);
    jw_where(w, &r->where);
    jw_close(w, '}');
}

/* "tls": null, or the listener's TLS settings (file names, not contents).
 * Borrows all. */
static void jw_listener_tls(struct jw *w, const struct cfg_listener_tls *t)
{
    jw_key(w, "tls");
    if (!t->enabled) {
        jw_str(w, NULL);
        return;
    }
    jw_open(w, '{');
    jw_key(w, "certificates");
    jw_open(w, '[');
    for (size_t i = 0; i < t->ncerts; i++) {
        jw_open(w, '{');
        jw_kstr(w, "certFile", t->certs[i].cert_file);
        jw_kstr(w, "keyFile", t->certs[i].key_file);
        jw_strv(w, "sni", t->certs[i].sni, t->certs[i].nsni);
        jw_where(w, &t->certs[i].where);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_strv(w, "alpn", t->alpn, t->nalpn);
    jw_kstr(w, "clientCA", t->client_ca_file);
    jw_bool(w, "requireClientCert", t->require_client_cert);
    jw_kstr(w, "minVersion", t->min_version);
    jw_close(w, '}');
}

/* "tls": null, or the cluster's upstream TLS settings. Borrows all. */
static void jw_cluster_tls(struct jw *w, const struct cfg_cluster_tls *t)
{
    jw_key(w, "tls");
    if (!t->enabled) {
        jw_str(w, NULL);
        return;
    }
    jw_open(w, '{');
    jw_kstr(w, "caFile", t->ca_file);
    jw_bool(w, "verify", t->verify);
    jw_kstr(w, "sni", t->sni);
    jw_strv(w, "alpn", t->alpn, t->nalpn);
    jw_kstr(w, "certFile", t->cert_file);
    jw_kstr(w, "keyFile", t->key_file);
    jw_close(w, '}');
}

/* Borrows all. */
static void jw_listener(struct jw *w, const struct cfg_listener *l)
{
    jw_open(w, '{');
    jw_kstr(w, "name", l->name);
    jw_kstr(w, "address", l->address);
    jw_kstr(w, "protocol", cfg_proto_name(l->proto));
    jw_u64(w, "idleTimeoutMs", l->idle_timeout_ms);
    jw_u64(w, "requestTimeoutMs", l->request_timeout_ms);
    jw_u64(w, "headerTimeoutMs", l->header_timeout_ms);
    jw_u64(w, "maxHeaderBytes", l->max_header_bytes);
    jw_u64(w, "maxHeaders", l->max_headers);
    jw_bool(w, "xForwardedFor", l->xff);
    jw_bool(w, "via", l->via);
    jw_bool(w, "requestId", l->request_id);
    jw_listener_tls(w, &l->tls);
    if (l->nauth_users) {
        /* Users, not their secrets. */
        jw_key(w, "auth");
        jw_open(w, '{');
        jw_key(w, "users");
        jw_open(w, '[');
        for (size_t i = 0; i < l->nauth_users; i++) {
            jw_open(w, '{');
            jw_kstr(w, "user", l->auth_users[i].user);
            const struct cfg_db_user *u = &l->auth_users[i];
            jw_kstr(w, "credential", u->password ? "password"
                                     : u->scram_secret ? "scramSecret" : "nativePasswordHash");
            jw_close(w, '}');
        }
        jw_close(w, ']');
        jw_close(w, '}');
    }
    jw_where(w, &l->where);
    jw_close(w, '}');
}

/* Borrows all. */
static void jw_cluster(struct jw *w, const struct cfg_cluster *c)
{
    static const char *const lbs[] = {"round_robin", "least_request", "consistent_hash"};
    jw_open(w, '{');
    jw_kstr(w, "name", c->name);
    jw_key(w, "endpoints");
    jw_open(w, '[');
    for (size_t i = 0; i < c->nendpoints; i++) {
        jw_open(w, '{');
        jw_kstr(w, "address", c->endpoints[i].address);
        jw_u64(w, "weight", c->endpoints[i].weight);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_kstr(w, "loadBalancer", lbs[c->lb]);
    jw_kstr(w, "protocol", c->protocol == CFG_UPSTREAM_HTTP2 ? "http2" : "http1");
    if (c->auth_user) {
        /* The password never leaves the process through the admin view. */
        jw_key(w, "auth");
        jw_open(w, '{');
        jw_kstr(w, "user", c->auth_user);
        jw_kstr(w, "password", c->auth_password ? "(set)" : "(none)");
        jw_close(w, '}');
    }
    if (c->replica_check.enabled) {
        /* query null: the listener protocol's default (see docs/config.md). */
        jw_key(w, "replicaCheck");
        jw_open(w, '{');
        jw_u64(w, "intervalMs", c->replica_check.interval_ms);
        jw_u64(w, "maxLagMs", c->replica_check.max_lag_ms);
        jw_u64(w, "timeoutMs", c->replica_check.timeout_ms);
        jw_kstr(w, "query", c->replica_check.query);
        jw_close(w, '}');
    }
    jw_kstr(w, "hashOn", c->hash_attr);
    jw_u64(w, "maxConnections", c->max_connections);
    jw_u64(w, "maxPendingRequests", c->max_pending);
    jw_u64(w, "maxRequests", c->max_requests);
    jw_u64(w, "connectTimeoutMs", c->connect_timeout_ms);
    jw_u64(w, "idleTimeoutMs", c->idle_timeout_ms);
    jw_key(w, "outlierDetection");
    jw_open(w, '{');
    jw_u64(w, "consecutive5xx", c->outlier.consecutive_5xx);
    jw_u64(w, "consecutiveFailures", c->outlier.consecutive_failures);
    jw_u64(w, "baseEjectionTimeMs", c->outlier.base_ejection_ms);
    jw_u64(w, "maxEjectionPercent", c->outlier.max_ejection_percent);
    jw_close(w, '}');
    jw_cluster_tls(w, &c->tls);
    jw_where(w, &c->where);
    jw_close(w, '}');
}

/* "match": [conditions]. Borrows all. */
static void jw_conds(struct jw *w, const struct cfg_cond *c, size_t n)
{
    jw_key(w, "match");
    jw_open(w, '[');
    for (size_t j = 0; j < n; j++)
        jw_cond(w, &c[j]);
    jw_close(w, ']');
}

/* Borrows all. */
static void jw_authz(struct jw *w, const struct cfg_authz *a)
{
    jw_open(w, '{');
    jw_kstr(w, "name", a->name);
    jw_strv(w, "targets", a->listeners, a->nlisteners);
    jw_kstr(w, "action", a->action == CFG_AUTHZ_DENY ? "DENY" : "ALLOW");
    jw_key(w, "rules");
    jw_open(w, '[');
    for (size_t i = 0; i < a->nrules; i++) {
        const struct cfg_authz_rule *r = &a->rules[i];
        jw_open(w, '{');
        jw_conds(w, r->conds, r->nconds);
        jw_where(w, &r->where);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_where(w, &a->where);
    jw_close(w, '}');
}

/* Borrows all. */
static void jw_ratelimit(struct jw *w, const struct cfg_ratelimit *rl)
{
    jw_open(w, '{');
    jw_kstr(w, "name", rl->name);
    jw_strv(w, "targets", rl->listeners, rl->nlisteners);
    jw_key(w, "rules");
    jw_open(w, '[');
    for (size_t i = 0; i < rl->nrules; i++) {
        const struct cfg_ratelimit_rule *r = &rl->rules[i];
        jw_open(w, '{');
        jw_conds(w, r->conds, r->nconds);
        if (r->key)
            jw_kstr(w, "key", r->key);
        jw_key(w, "limit");
        jw_open(w, '{');
        jw_u64(w, "requests", r->requests);
        jw_u64(w, "perMs", r->per_ms);
        jw_close(w, '}');
        jw_u64(w, "burst", r->burst);
        if (r->key)
            jw_u64(w, "maxKeys", r->max_keys);
        jw_where(w, &r->where);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_where(w, &rl->where);
    jw_close(w, '}');
}

/* The module bytes are not shown, only their size and hash. Borrows all. */
static void jw_wasm(struct jw *w, const struct cfg_wasm *p)
{
    jw_open(w, '{');
    jw_kstr(w, "name", p->name);
    jw_kstr(w, "module", p->module);
    jw_kstr(w, "path", p->path);
    jw_u64(w, "bytes", p->nbytes);
    jw_kstr(w, "sha256", p->sha256);
    jw_kstr(w, "config", p->config);
    jw_strv(w, "targets", p->listeners, p->nlisteners);
    jw_strv(w, "routes", p->routes, p->nroutes);
    jw_kstr(w, "failurePolicy", p->failure == CFG_FAIL_OPEN ? "open" : "closed");
    jw_u64(w, "fuel", p->fuel);
    jw_key(w, "order");
    char num[16];
    snprintf(num, sizeof(num), "%d", (int)p->order);
    jw_sep(w);
    jw_raw(w, num, strlen(num));
    jw_where(w, &p->where);
    jw_close(w, '}');
}

/* New NUL-terminated JSON text owned by the caller, or NULL (no memory). */
char *config_to_json(const struct config *cfg)
{
    struct jw w = {.first = {true}};
    if (cfg == NULL)
        return NULL;
    jw_open(&w, '{');
    jw_u64(&w, "workers", cfg->workers);
    jw_key(&w, "admin");
    if (cfg->admin_address == NULL) {
        jw_str(&w, NULL);
    } else {
        jw_open(&w, '{');
        jw_kstr(&w, "address", cfg->admin_address);
        jw_close(&w, '}');
    }
    jw_u64(&w, "drainTimeoutMs", cfg->drain_timeout_ms);
    jw_u64(&w, "bufferBytes", cfg->buffer_bytes);
    jw_key(&w, "accessLog");
    jw_open(&w, '{');
    jw_kstr(&w, "path", cfg->access_log.path);
    jw_close(&w, '}');
    jw_key(&w, "listeners");
    jw_open(&w, '[');
    for (size_t i = 0; i < cfg->nlisteners; i++)
        jw_listener(&w, &cfg->listeners[i]);
    jw_close(&w, ']');
    jw_key(&w, "clusters");
    jw_open(&w, '[');
    for (size_t i = 0; i < cfg->nclusters; i++)
        jw_cluster(&w, &cfg->clusters[i]);
    jw_close(&w, ']');
    jw_key(&w, "routes");
    jw_open(&w, '[');
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct cfg_route *r = &cfg->routes[i];
        jw_open(&w, '{');
        jw_kstr(&w, "name", r->name);
        jw_strv(&w, "parents", r->listeners, r->nlisteners);
        jw_strv(&w, "hostnames", r->hostnames, r->nhostnames);
        jw_key(&w, "rules");
        jw_open(&w, '[');
        for (size_t j = 0; j < r->nrules; j++)
            jw_rule(&w, &r->rules[j]);
        jw_close(&w, ']');
        jw_where(&w, &r->where);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    jw_key(&w, "authorizationPolicies");
    jw_open(&w, '[');
    for (size_t i = 0; i < cfg->nauthz; i++)
        jw_authz(&w, &cfg->authz[i]);
    jw_close(&w, ']');
    jw_key(&w, "rateLimits");
    jw_open(&w, '[');
    for (size_t i = 0; i < cfg->nratelimits; i++)
        jw_ratelimit(&w, &cfg->ratelimits[i]);
    jw_close(&w, ']');
    jw_key(&w, "wasmPlugins");
    jw_open(&w, '[');
    for (size_t i = 0; i < cfg->nwasm; i++)
        jw_wasm(&w, &cfg->wasm[i]);
    jw_close(&w, ']');
    jw_strv(&w, "files", cfg->files, cfg->nfiles);
    jw_close(&w, '}');
    jw_raw(&w, "\n", 1);
    if (w.oom) {
        free(w.p);
        return NULL;
    }
    return w.p;
}
