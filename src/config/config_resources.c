/* config_resources.c - the Proxy, Listener and Cluster kinds.
 *
 * Each loader appends a zeroed object with its defaults first and fills it
 * field by field; when a field fails, the half-filled object is still
 * consistent (NULLs and counts match) and config_free releases it. */
#include "config/config_internal.h"

#include <stdlib.h>
#include <string.h>

#include "proto/mysql/my.h"
#include "proto/pg/pg.h"
#include "proto/pg/pg_scram.h"

/* Parses an address node into a copy of its text and the sockaddr. The
 * string is owned by the caller once stored. */
static int load_address(struct cload *cl, const struct ynode *n, const char *what, char **text,
                        struct sockaddr_storage *ss, socklen_t *len)
{
    const char *s, *why;
    if (cl_scalar(cl, n, what, &s) != 0)
        return -1;
    if (cfg_addr_parse(s, ss, len, &why) != 0)
        return cl_fail(cl, n->line, "%s: bad address '%.80s': %s", what, s, why);
    if ((*text = strdup(s)) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    return 0;
}

/* Borrows spec (NULL allowed); fills the config cl owns. */
int cfg_load_proxy(struct cload *cl, int line, const struct ynode *spec)
{
    static const char *const keys[] = {"workers",      "admin",       "accessLog",
                                       "drainTimeout", "bufferBytes", NULL};
    static const char *const admin_keys[] = {"address", "disabled", NULL};
    static const char *const log_keys[] = {"path", NULL};
    struct config *cfg = cl->cfg;
    const struct ynode *n;

    if (cl->proxy_where.file != NULL)
        return cl_fail(cl, line, "only one Proxy is allowed (the first is at %s:%d)",
                       cl->proxy_where.file, cl->proxy_where.line);
    cl->proxy_where.file = cl->file;
    cl->proxy_where.line = line;
    if (spec == NULL)
        return 0;
    if (cl_map(cl, spec, "Proxy spec", keys) != 0)
        return -1;
    if ((n = ytree_get(spec, "workers")) && cl_u32(cl, n, "workers", 0, 256, &cfg->workers))
        return -1;
    if ((n = ytree_get(spec, "drainTimeout")) &&
        cl_duration(cl, n, "drainTimeout", 0, CFG_MAX_DURATION_MS, &cfg->drain_timeout_ms))
        return -1;
    if ((n = ytree_get(spec, "bufferBytes")) &&
        cl_u32(cl, n, "bufferBytes", 1024, 16u * 1024 * 1024, &cfg->buffer_bytes))
        return -1;
    if ((n = ytree_get(spec, "admin")) != NULL) {
        bool disabled = false;
        const struct ynode *a = ytree_get(n, "address"), *d = ytree_get(n, "disabled");
        if (cl_map(cl, n, "admin", admin_keys) != 0)
            return -1;
        if (d != NULL && cl_bool(cl, d, "admin.disabled", &disabled) != 0)
            return -1;
        if (disabled && a != NULL)
            return cl_fail(cl, a->line, "admin: give either address or disabled: true");
        if (disabled) {
            free(cfg->admin_address);
            cfg->admin_address = NULL;
            memset(&cfg->admin_addr, 0, sizeof(cfg->admin_addr));
            cfg->admin_addrlen = 0;
        } else if (a != NULL) {
            char *text;
            if (load_address(cl, a, "admin.address", &text, &cfg->admin_addr,
                             &cfg->admin_addrlen) != 0)
                return -1;
            free(cfg->admin_address);
            cfg->admin_address = text;
        }
    }
    if ((n = ytree_get(spec, "accessLog")) != NULL) {
        if (cl_map(cl, n, "accessLog", log_keys) != 0)
            return -1;
        const struct ynode *p = ytree_get(n, "path");
        if (p != NULL) {
            const char *s;
            if (cl_scalar(cl, p, "accessLog.path", &s) != 0)
                return -1;
            if ((cfg->access_log.path = strdup(s)) == NULL)
                return cl_fail(cl, p->line, "out of memory");
        }
    }
    return 0;
}

/* Keys only an http listener understands; the first one present is
 * returned so a tcp or tls listener can reject it by name. Borrows spec. */
static const struct ynode *http_only_key(const struct ynode *spec)
{
    static const char *const keys[] = {"requestTimeout", "headerTimeout", "maxHeaderBytes",
                                       "maxHeaders",     "xForwardedFor", "via",
                                       "requestId",      NULL};
    for (int i = 0; keys[i]; i++)
        if (ytree_get(spec, keys[i]) != NULL)
            return ytree_key(spec, keys[i]);
    return NULL;
}

/* One entry of auth.users into u (owned by the listener l). Borrows y. The
 * stored credential is per protocol: PostgreSQL's SCRAM verifier or
 * MySQL's mysql_native_password hash; a plaintext password for either. */
static int load_db_user(struct cload *cl, const struct cfg_listener *l, struct cfg_db_user *u,
                        const struct ynode *y)
{
    static const char *const keys[] = {"user", "password", "scramSecret", "nativePasswordHash",
                                       NULL};
    int my = l->proto == CFG_PROTO_MYSQL;
    const char *stored = my ? "nativePasswordHash" : "scramSecret";
    const struct ynode *n, *pw, *sec;
    if (cl_map(cl, y, "auth user", keys) != 0)
        return -1;
    u->where.file = cl->file;
    u->where.line = y->line;
    if ((n = cl_need(cl, y, "user", "auth user")) == NULL || cl_strdup(cl, n, "user", &u->user))
        return -1;
    if (!u->user[0] || strlen(u->user) >= (my ? 81 : 64))
        return cl_fail(cl, n->line, my ? "user: 1..80 bytes (a MariaDB user name)"
                                       : "user: 1..63 bytes (a PostgreSQL name)");
    if ((sec = ytree_get(y, my ? "scramSecret" : "nativePasswordHash")) != NULL)
        return cl_fail(cl, sec->line, "auth user '%s': %s is for %s listeners", u->user,
                       my ? "scramSecret" : "nativePasswordHash", my ? "postgres" : "mysql");
    pw = ytree_get(y, "password");
    sec = ytree_get(y, stored);
    if (!pw == !sec)
        return cl_fail(cl, y->line, "auth user '%s': give exactly one of password or %s",
                       u->user, stored);
    if (pw) {
        if (cl_strdup(cl, pw, "password", &u->password) != 0)
            return -1;
        if (my && !u->password[0])
            return cl_fail(cl, pw->line, "auth user '%s': empty password", u->user);
        return 0;
    }
    if (my) {
        uint8_t h[20];
        if (cl_strdup(cl, sec, stored, &u->native_hash) != 0)
            return -1;
        if (my_native_hash_parse(h, u->native_hash, strlen(u->native_hash)) != 0)
            return cl_fail(cl, sec->line, "nativePasswordHash: expected '*' and 40 hex digits (as "
                                          "SELECT authentication_string FROM mysql.user shows it)");
        return 0;
    }
    if (cl_strdup(cl, sec, "scramSecret", &u->scram_secret) != 0)
        return -1;
    struct pg_scram_secret parsed;
    if (pg_scram_secret_parse(&parsed, u->scram_secret, strlen(u->scram_secret)) != PG_OK)
        return cl_fail(cl, sec->line,
                       "scramSecret: expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:"
                       "<ServerKey> (as pg_authid.rolpassword shows it)");
    return 0;
}

/* spec.auth ({users: [...]}) of a postgres or mysql listener. Borrows a. */
static int load_listener_auth(struct cload *cl, struct cfg_listener *l, const struct ynode *a)
{
    static const char *const keys[] = {"users", NULL};
    const struct ynode *n;
    if (l->proto != CFG_PROTO_POSTGRES && l->proto != CFG_PROTO_MYSQL)
        return cl_fail(cl, a->line, "'auth' applies only to postgres and mysql listeners");
    if (cl_map(cl, a, "auth", keys) != 0 || (n = cl_need(cl, a, "users", "auth")) == NULL ||
        cl_seq(cl, n, "users", true, 10000) != 0)
        return -1;
    if ((l->auth_users = calloc(n->n, sizeof(*l->auth_users))) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        struct cfg_db_user *u = &l->auth_users[l->nauth_users++];
        if (load_db_user(cl, l, u, n->items[i]) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->auth_users[j].user, u->user) == 0)
                return cl_fail(cl, n->items[i]->line, "auth user '%s' listed twice", u->user);
    }
    return 0;
}

/* Borrows the nodes; the listener it adds is owned by cl->cfg. */
int cfg_load_listener(struct cload *cl, int line, const struct ynode *name,
                      const struct ynode *spec)
{
    static const char *const keys[] = {
        "address",       "protocol",       "idleTimeout", "requestTimeout",
        "headerTimeout", "maxHeaderBytes", "maxHeaders",  "xForwardedFor",
        "via",           "requestId",      "tls",         "auth",
        NULL};
    struct config *cfg = cl->cfg;
    const struct ynode *n;

    const struct cfg_listener *dup = config_listener(cfg, name->str);
    if (dup != NULL)
        return cl_fail(cl, name->line, "duplicate Listener '%s' (first defined at %s:%d)",
                       name->str, dup->where.file, dup->where.line);
    if (cl_map(cl, spec, "Listener spec", keys) != 0)
        return -1;
    if (cfg->nlisteners == CFG_MAX_LISTENERS)
        return cl_fail(cl, line, "more than %u Listeners", CFG_MAX_LISTENERS);
    struct cfg_listener *arr =
        cfg_grow(cfg->listeners, cfg->nlisteners, &cl->cap_listeners, sizeof(*arr));
    if (arr == NULL)
        return cl_fail(cl, line, "out of memory");
    cfg->listeners = arr;
    struct cfg_listener *l = &arr[cfg->nlisteners++];
    l->where.file = cl->file;
    l->where.line = line;
    if ((l->name = strdup(name->str)) == NULL)
        return cl_fail(cl, line, "out of memory");
    l->proto = CFG_PROTO_HTTP;
    l->request_timeout_ms = 15000;
    l->header_timeout_ms = 10000;
    l->max_header_bytes = 65536;
    l->max_headers = 100;
    l->xff = l->via = l->request_id = true;

    if ((n = ytree_get(spec, "protocol")) != NULL) {
        const char *p;
        if (cl_scalar(cl, n, "protocol", &p) != 0)
            return -1;
        if (strcmp(p, "http") == 0)
            l->proto = CFG_PROTO_HTTP;
        else if (strcmp(p, "tcp") == 0)
            l->proto = CFG_PROTO_TCP;
        else if (strcmp(p, "tls") == 0)
            l->proto = CFG_PROTO_TLS_PASSTHROUGH;
        else if (strcmp(p, "postgres") == 0)
            l->proto = CFG_PROTO_POSTGRES;
        else if (strcmp(p, "mysql") == 0)
            l->proto = CFG_PROTO_MYSQL;
        else
            return cl_fail(cl, n->line,
                           "protocol: expected http, tcp, tls, postgres or mysql, got '%.80s'", p);
    }
    l->idle_timeout_ms = l->proto == CFG_PROTO_HTTP ? 300000 : 3600000;
    if (l->proto != CFG_PROTO_HTTP && (n = http_only_key(spec)) != NULL)
        return cl_fail(cl, n->line, "'%s' applies only to http listeners", n->str);
    if (l->proto == CFG_PROTO_MYSQL && (n = ytree_key(spec, "tls")) != NULL)
        return cl_fail(cl, n->line,
                       "'tls' is not supported on %s listeners yet (clients are told the "
                       "proxy does not do TLS)",
                       cfg_proto_name(l->proto));
    if (l->proto == CFG_PROTO_TLS_PASSTHROUGH && (n = ytree_key(spec, "tls")) != NULL)
        return cl_fail(cl, n->line,
                       "'tls' does not apply to protocol: tls, which passes TLS through "
                       "without terminating it (use protocol http or tcp to terminate TLS)");

    if ((n = cl_need(cl, spec, "address", "Listener spec")) == NULL ||
        load_address(cl, n, "address", &l->address, &l->addr, &l->addrlen) != 0)
        return -1;
    int *lines = realloc(cl->listener_addr_lines, cl->cap_listeners * sizeof(*lines));
    if (lines == NULL)
        return cl_fail(cl, n->line, "out of memory");
    cl->listener_addr_lines = lines;
    lines[cfg->nlisteners - 1] = n->line;
    for (size_t i = 0; i + 1 < cfg->nlisteners; i++) {
        const struct cfg_listener *o = &cfg->listeners[i];
        if (cfg_addr_conflict(&o->addr, &l->addr))
            return cl_fail(cl, n->line, "address %s conflicts with Listener '%s' (%s at %s:%d)",
                           l->address, o->name, o->address, o->where.file, o->where.line);
    }

    const uint64_t maxd = CFG_MAX_DURATION_MS;
    if ((n = ytree_get(spec, "idleTimeout")) &&
        cl_duration(cl, n, "idleTimeout", 1, maxd, &l->idle_timeout_ms))
        return -1;
    if ((n = ytree_get(spec, "requestTimeout")) &&
        cl_duration(cl, n, "requestTimeout", 1, maxd, &l->request_timeout_ms))
        return -1;
    if ((n = ytree_get(spec, "headerTimeout")) &&
        cl_duration(cl, n, "headerTimeout", 1, maxd, &l->header_timeout_ms))
        return -1;
    if ((n = ytree_get(spec, "maxHeaderBytes")) &&
        cl_u32(cl, n, "maxHeaderBytes", 1024, 1024 * 1024, &l->max_header_bytes))
        return -1;
    if ((n = ytree_get(spec, "maxHeaders")) &&
        cl_u32(cl, n, "maxHeaders", 1, 10000, &l->max_headers))
        return -1;
    if ((n = ytree_get(spec, "xForwardedFor")) && cl_bool(cl, n, "xForwardedFor", &l->xff))
        return -1;
    if ((n = ytree_get(spec, "via")) && cl_bool(cl, n, "via", &l->via))
        return -1;
    if ((n = ytree_get(spec, "requestId")) && cl_bool(cl, n, "requestId", &l->request_id))
        return -1;
    if ((n = ytree_get(spec, "tls")) && cfg_load_listener_tls(cl, l, n))
        return -1;
    if ((n = ytree_get(spec, "auth")) && load_listener_auth(cl, l, n))
        return -1;
    return 0;
}

/* Fills c->endpoints from the `endpoints` sequence. Borrows seq. */
static int load_endpoints(struct cload *cl, struct cfg_cluster *c, const struct ynode *seq)
{
    static const char *const keys[] = {"address", "weight", NULL};
    if (cl_seq(cl, seq, "endpoints", true, CFG_MAX_ENDPOINTS) != 0)
        return -1;
    if ((c->endpoints = calloc(seq->n, sizeof(*c->endpoints))) == NULL)
        return cl_fail(cl, seq->line, "out of memory");
    uint64_t total = 0;
    for (size_t i = 0; i < seq->n; i++) {
        const struct ynode *e = seq->items[i], *n;
        struct cfg_endpoint *ep = &c->endpoints[c->nendpoints++];
        if (cl_map(cl, e, "endpoint", keys) != 0)
            return -1;
        ep->weight = 1;
        if ((n = cl_need(cl, e, "address", "endpoint")) == NULL ||
            load_address(cl, n, "address", &ep->address, &ep->addr, &ep->addrlen) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (c->endpoints[j].addrlen == ep->addrlen &&
                memcmp(&c->endpoints[j].addr, &ep->addr, ep->addrlen) == 0)
                return cl_fail(cl, n->line, "duplicate endpoint %s", ep->address);
        if ((n = ytree_get(e, "weight")) &&
            cl_u32(cl, n, "weight", 0, CFG_MAX_WEIGHT, &ep->weight))
            return -1;
        total += ep->weight;
    }
    if (total == 0)
        return cl_fail(cl, seq->line, "endpoints: every weight is 0, nothing can be picked");
    return 0;
}

/* Fills c->outlier from the outlierDetection mapping. Borrows od. */
static int load_outlier(struct cload *cl, struct cfg_outlier *o, const struct ynode *od)
{
    static const char *const keys[] = {"consecutive5xx", "consecutiveFailures",
                                       "baseEjectionTime", "maxEjectionPercent", NULL};
    const struct ynode *n;
    if (cl_map(cl, od, "outlierDetection", keys) != 0)
        return -1;
    if ((n = ytree_get(od, "consecutive5xx")) &&
        cl_u32(cl, n, "consecutive5xx", 0, 100000, &o->consecutive_5xx))
        return -1;
    if ((n = ytree_get(od, "consecutiveFailures")) &&
        cl_u32(cl, n, "consecutiveFailures", 0, 100000, &o->consecutive_failures))
        return -1;
    if ((n = ytree_get(od, "baseEjectionTime")) &&
        cl_duration(cl, n, "baseEjectionTime", 1, 24 * 3600000ull, &o->base_ejection_ms))
        return -1;
    if ((n = ytree_get(od, "maxEjectionPercent")) &&
        cl_u32(cl, n, "maxEjectionPercent", 0, 100, &o->max_ejection_percent))
        return -1;
    return 0;
}

/* Fills c->replica_check from the replicaCheck mapping rc; c->auth_user
 * must be known already (the checks log in with it). Borrows rc. */
static int load_replica_check(struct cload *cl, struct cfg_cluster *c, const struct ynode *rc)
{
    static const char *const keys[] = {"interval", "maxLag", "timeout", "query", NULL};
    struct cfg_replica_check *r = &c->replica_check;
    const struct ynode *n;
    if (cl_map(cl, rc, "replicaCheck", keys) != 0)
        return -1;
    if (!c->auth_user)
        return cl_fail(cl, rc->key_line,
                       "replicaCheck requires auth: the checks log in with its credentials");
    /* The proxy's endpoint masks (lb_pick's exclude) cover 64 endpoints. */
    if (c->nendpoints > 64)
        return cl_fail(cl, rc->key_line,
                       "replicaCheck: at most 64 endpoints, the cluster has %zu", c->nendpoints);
    r->enabled = true;
    r->interval_ms = 1000;
    r->max_lag_ms = 5000;
    r->timeout_ms = 2000;
    if ((n = ytree_get(rc, "interval")) &&
        cl_duration(cl, n, "replicaCheck.interval", 10, 3600000, &r->interval_ms))
        return -1;
    if ((n = ytree_get(rc, "maxLag")) &&
        cl_duration(cl, n, "replicaCheck.maxLag", 0, CFG_MAX_DURATION_MS, &r->max_lag_ms))
        return -1;
    if ((n = ytree_get(rc, "timeout")) &&
        cl_duration(cl, n, "replicaCheck.timeout", 1, 3600000, &r->timeout_ms))
        return -1;
    if ((n = ytree_get(rc, "query")) != NULL) {
        const char *q;
        if (cl_scalar(cl, n, "replicaCheck.query", &q) != 0)
            return -1;
        if (strlen(q) > 4096)
            return cl_fail(cl, n->line, "replicaCheck.query: longer than 4096 bytes");
        if ((r->query = strdup(q)) == NULL)
            return cl_fail(cl, n->line, "out of memory");
    }
    return 0;
}

/* Borrows the nodes; the cluster it adds is owned by cl->cfg. */
int cfg_load_cluster(struct cload *cl, int line, const struct ynode *name,
                     const struct ynode *spec)
{
    static const char *const keys[] = {
        "endpoints",          "loadBalancer",   "hashOn",
        "maxConnections",     "maxPendingRequests", "maxRequests",
        "connectTimeout",     "idleTimeout",    "outlierDetection",
        "tls",                "protocol",       "auth",
        "replicaCheck",       NULL};
    struct config *cfg = cl->cfg;
    const struct ynode *n;

    const struct cfg_cluster *dup = config_cluster(cfg, name->str);
    if (dup != NULL)
        return cl_fail(cl, name->line, "duplicate Cluster '%s' (first defined at %s:%d)",
                       name->str, dup->where.file, dup->where.line);
    if (cl_map(cl, spec, "Cluster spec", keys) != 0)
        return -1;
    if (cfg->nclusters == CFG_MAX_CLUSTERS)
        return cl_fail(cl, line, "more than %u Clusters", CFG_MAX_CLUSTERS);
    struct cfg_cluster *arr =
        cfg_grow(cfg->clusters, cfg->nclusters, &cl->cap_clusters, sizeof(*arr));
    if (arr == NULL)
        return cl_fail(cl, line, "out of memory");
    cfg->clusters = arr;
    struct cfg_cluster *c = &arr[cfg->nclusters++];
    c->where.file = cl->file;
    c->where.line = line;
    if ((c->name = strdup(name->str)) == NULL)
        return cl_fail(cl, line, "out of memory");
    c->lb = CFG_LB_ROUND_ROBIN;
    c->max_connections = 1024;
    c->max_pending = 1024;
    c->max_requests = 4096;
    c->connect_timeout_ms = 2000;
    c->idle_timeout_ms = 60000;
    c->outlier.consecutive_5xx = 5;
    c->outlier.consecutive_failures = 5;
    c->outlier.base_ejection_ms = 30000;
    c->outlier.max_ejection_percent = 50;

    if ((n = cl_need(cl, spec, "endpoints", "Cluster spec")) == NULL ||
        load_endpoints(cl, c, n) != 0)
        return -1;
    if ((n = ytree_get(spec, "loadBalancer")) != NULL) {
        const char *s;
        if (cl_scalar(cl, n, "loadBalancer", &s) != 0)
            return -1;
        if (strcmp(s, "round_robin") == 0)
            c->lb = CFG_LB_ROUND_ROBIN;
        else if (strcmp(s, "least_request") == 0)
            c->lb = CFG_LB_LEAST_REQUEST;
        else if (strcmp(s, "consistent_hash") == 0)
            c->lb = CFG_LB_HASH;
        else
            return cl_fail(cl, n->line,
                           "loadBalancer: expected round_robin, least_request or "
                           "consistent_hash, got '%.80s'",
                           s);
    }
    if ((n = ytree_get(spec, "hashOn")) != NULL) {
        if (c->lb != CFG_LB_HASH)
            return cl_fail(cl, n->line, "hashOn requires loadBalancer: consistent_hash");
        if (cl_attribute(cl, n, "hashOn", CFG_PROTO_HTTP, &c->hash_attr) != 0)
            return -1;
    }
    if ((n = ytree_get(spec, "maxConnections")) &&
        cl_u32(cl, n, "maxConnections", 1, 1000000, &c->max_connections))
        return -1;
    if ((n = ytree_get(spec, "maxPendingRequests")) &&
        cl_u32(cl, n, "maxPendingRequests", 0, 1000000, &c->max_pending))
        return -1;
    if ((n = ytree_get(spec, "maxRequests")) &&
        cl_u32(cl, n, "maxRequests", 1, 1000000, &c->max_requests))
        return -1;
    if ((n = ytree_get(spec, "connectTimeout")) &&
        cl_duration(cl, n, "connectTimeout", 1, 3600000, &c->connect_timeout_ms))
        return -1;
    if ((n = ytree_get(spec, "idleTimeout")) &&
        cl_duration(cl, n, "idleTimeout", 1, CFG_MAX_DURATION_MS, &c->idle_timeout_ms))
        return -1;
    if ((n = ytree_get(spec, "outlierDetection")) && load_outlier(cl, &c->outlier, n))
        return -1;
    if ((n = ytree_get(spec, "protocol")) != NULL) {
        const char *s;
        if (cl_scalar(cl, n, "protocol", &s) != 0)
            return -1;
        if (strcmp(s, "http1") == 0)
            c->protocol = CFG_UPSTREAM_HTTP1;
        else if (strcmp(s, "http2") == 0)
            c->protocol = CFG_UPSTREAM_HTTP2;
        else
            return cl_fail(cl, n->line, "protocol: expected http1 or http2, got '%.80s'", s);
    }
    if ((n = ytree_get(spec, "auth")) != NULL) {
        static const char *const akeys[] = {"user", "password", NULL};
        const struct ynode *u, *p;
        const char *s;
        if (cl_map(cl, n, "auth", akeys) != 0)
            return -1;
        if ((u = cl_need(cl, n, "user", "auth")) == NULL || cl_scalar(cl, u, "user", &s) != 0)
            return -1;
        if (s[0] == 0)
            return cl_fail(cl, u->line, "auth.user: empty");
        if ((c->auth_user = strdup(s)) == NULL)
            return cl_fail(cl, u->line, "out of memory");
        if ((p = ytree_get(n, "password")) != NULL) {
            if (cl_scalar(cl, p, "password", &s) != 0)
                return -1;
            if ((c->auth_password = strdup(s)) == NULL)
                return cl_fail(cl, p->line, "out of memory");
        }
    }
    if ((n = ytree_get(spec, "replicaCheck")) != NULL && load_replica_check(cl, c, n) != 0)
        return -1;
    if ((n = ytree_get(spec, "tls")) &&
        cfg_load_cluster_tls(cl, &c->tls, n, c->protocol == CFG_UPSTREAM_HTTP2))
        return -1;
    return 0;
}
