/* config_route.c - the Route kind, and the rule building blocks HTTPRoute
 * documents (config_httproute.c) are mapped through. Match conditions
 * (cfg_load_cond) are shared with AuthorizationPolicy (config_authz.c).
 *
 * Routes are loaded after every Listener and Cluster of the whole set, so
 * references are checked here, at the line that makes them. The parents'
 * protocol (tcp, http or tls passthrough) decides which attributes and
 * features a rule may use; a Route may not mix protocols. Passthrough
 * routes are proxied like tcp ones and have the same restrictions. */
#include "config/config_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Owned by cl->cfg; NULL after an error. */
struct cfg_route *cfg_route_new(struct cload *cl, int line, const char *name)
{
    struct config *cfg = cl->cfg;
    if (cfg->nroutes == CFG_MAX_ROUTES) {
        cl_fail(cl, line, "more than %u Routes", CFG_MAX_ROUTES);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (strcmp(cfg->routes[i].name, name) == 0) {
            cl_fail(cl, line, "duplicate Route '%s' (first defined at %s:%d)", name,
                    cfg->routes[i].where.file, cfg->routes[i].where.line);
            return NULL;
        }
    struct cfg_route *arr = cfg_grow(cfg->routes, cfg->nroutes, &cl->cap_routes, sizeof(*arr));
    if (arr == NULL) {
        cl_fail(cl, line, "out of memory");
        return NULL;
    }
    cfg->routes = arr;
    struct cfg_route *r = &arr[cfg->nroutes++];
    r->where.file = cl->file;
    r->where.line = line;
    if ((r->name = strdup(name)) == NULL) {
        cl_fail(cl, line, "out of memory");
        return NULL;
    }
    return r;
}

/* Borrows name; the copy it appends is owned by the caller's struct. */
const struct cfg_listener *cfg_listener_ref(struct cload *cl, const struct ynode *name,
                                            const char *what, char **list, size_t *n)
{
    const char *s;
    if (cl_scalar(cl, name, what, &s) != 0)
        return NULL;
    const struct cfg_listener *l = cl_listener(cl, s);
    if (l == NULL) {
        cl_fail(cl, name->line, "unknown Listener '%.80s'", s);
        return NULL;
    }
    for (size_t j = 0; j < *n; j++)
        if (strcmp(list[j], s) == 0) {
            cl_fail(cl, name->line, "Listener '%s' is listed twice", s);
            return NULL;
        }
    if ((list[*n] = strdup(s)) == NULL) {
        cl_fail(cl, name->line, "out of memory");
        return NULL;
    }
    (*n)++;
    return l;
}

/* Borrows names; the copies it stores are owned by r. */
int cfg_route_parents(struct cload *cl, struct cfg_route *r, const struct ynode *const *names,
                      size_t n, enum cfg_proto *proto)
{
    const struct cfg_listener *first = NULL;
    if ((r->listeners = calloc(n ? n : 1, sizeof(*r->listeners))) == NULL)
        return cl_fail(cl, r->where.line, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct cfg_listener *l =
            cfg_listener_ref(cl, names[i], "parent", r->listeners, &r->nlisteners);
        if (l == NULL)
            return -1;
        if (first != NULL && first->proto != l->proto)
            return cl_fail(cl, names[i]->line,
                           "Listener '%s' is %s but '%s' is %s: use one Route per protocol",
                           l->name, cfg_proto_name(l->proto), first->name,
                           cfg_proto_name(first->proto));
        if (first == NULL)
            first = l;
    }
    *proto = first != NULL ? first->proto : CFG_PROTO_HTTP;
    return 0;
}

/* Borrows node; the copies it stores are owned by r. */
int cfg_route_hostnames(struct cload *cl, struct cfg_route *r, const struct ynode *node,
                        enum cfg_proto proto, size_t max)
{
    if (cl_seq(cl, node, "hostnames", false, max) != 0)
        return -1;
    if (proto == CFG_PROTO_TLS_PASSTHROUGH)
        return cl_fail(cl, node->line,
                       "hostnames need http listeners, not tls (match on tls.sni instead)");
    if (proto != CFG_PROTO_HTTP)
        return cl_fail(cl, node->line, "hostnames need http listeners, not %s",
                       cfg_proto_name(proto));
    if ((r->hostnames = calloc(node->n ? node->n : 1, sizeof(*r->hostnames))) == NULL)
        return cl_fail(cl, node->line, "out of memory");
    for (size_t i = 0; i < node->n; i++) {
        const struct ynode *h = node->items[i];
        const char *s;
        if (cl_scalar(cl, h, "hostname", &s) != 0)
            return -1;
        if (!cfg_is_hostname(s, true))
            return cl_fail(cl, h->line,
                           "invalid hostname '%.80s' (DNS name, optionally starting with *.; "
                           "no port)",
                           s);
        if ((r->hostnames[r->nhostnames] = strdup(s)) == NULL)
            return cl_fail(cl, h->line, "out of memory");
        cfg_lower(r->hostnames[r->nhostnames++]);
    }
    return 0;
}

/* Borrows r; the default name it stores is owned by rule. */
int cfg_rule_init(struct cload *cl, struct cfg_route *r, struct cfg_rule *rule, size_t index,
                  int line)
{
    char name[CFG_MAX_NAME + 32];
    rule->where.file = cl->file;
    rule->where.line = line;
    rule->retry.budget_percent = 20;
    rule->retry.min_retry_concurrency = 3;
    snprintf(name, sizeof(name), "%s/%zu", r->name, index);
    if ((rule->name = strdup(name)) == NULL)
        return cl_fail(cl, line, "out of memory");
    return 0;
}

/* Takes attr and value; the added condition is owned by the struct owning
 * *conds. NULL after an error. */
static struct cfg_cond *add_cond(struct cload *cl, struct cfg_cond **conds, size_t *nconds,
                                 int line, char *attr, enum cfg_match_op op, char *value)
{
    struct cfg_cond *arr = realloc(*conds, (*nconds + 1) * sizeof(*arr));
    if (arr == NULL) {
        free(attr);
        free(value);
        cl_fail(cl, line, "out of memory");
        return NULL;
    }
    *conds = arr;
    struct cfg_cond *c = &arr[(*nconds)++];
    memset(c, 0, sizeof(*c));
    c->attr = attr;
    c->op = op;
    c->value = value;
    c->where.file = cl->file;
    c->where.line = line;
    return c;
}

/* Takes attr and value; the condition is owned by rule. */
int cfg_rule_add_cond(struct cload *cl, struct cfg_rule *rule, int line, char *attr,
                      enum cfg_match_op op, char *value)
{
    return add_cond(cl, &rule->conds, &rule->nconds, line, attr, op, value) != NULL ? 0 : -1;
}

/* Borrows attr and re; the compiled pattern is freed at once. */
int cfg_check_regex(struct cload *cl, int line, const char *attr, const char *re)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (c != NULL) {
        pcre2_code_free(c);
        return 0;
    }
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
        snprintf((char *)msg, sizeof(msg), "error %d", code);
    return cl_fail(cl, line, "bad regex '%.80s' for %s at offset %zu: %s", re, attr, (size_t)off,
                   (const char *)msg);
}

/* Names the proxy manages itself: rewriting them would corrupt framing. */
static bool managed_header(const char *name)
{
    static const char *const m[] = {"connection", "keep-alive", "transfer-encoding",
                                    "content-length", "upgrade", "te", "trailer",
                                    "proxy-connection", NULL};
    for (int i = 0; m[i]; i++)
        if (strcmp(name, m[i]) == 0)
            return true;
    return false;
}

/* Takes name and value (freed on failure too); ops owns them after. */
int cfg_header_op(struct cload *cl, struct cfg_header_ops *ops, int line, char kind, char *name,
                  char *value)
{
    int rc = -1;
    if (managed_header(name)) {
        cl_fail(cl, line, "header '%s' is managed by the proxy and cannot be changed", name);
    } else if (value != NULL && !cfg_is_header_value(value)) {
        cl_fail(cl, line, "value of header '%s' contains a control character (CR, LF, ...)",
                name);
    } else if (kind != 's' && strcmp(name, "host") == 0) {
        cl_fail(cl, line, "header 'host' can only be set, not added or removed");
    } else if (kind == 'r') {
        char **v = realloc(ops->remove, (ops->nremove + 1) * sizeof(*v));
        if (v == NULL) {
            cl_fail(cl, line, "out of memory");
        } else {
            ops->remove = v;
            v[ops->nremove++] = name;
            return 0;
        }
    } else {
        struct cfg_header **list = kind == 's' ? &ops->set : &ops->add;
        size_t *n = kind == 's' ? &ops->nset : &ops->nadd;
        for (size_t i = 0; i < *n; i++)
            if (strcmp((*list)[i].name, name) == 0) {
                cl_fail(cl, line, "header '%s' is listed twice", name);
                goto fail;
            }
        struct cfg_header *v = realloc(*list, (*n + 1) * sizeof(*v));
        if (v == NULL) {
            cl_fail(cl, line, "out of memory");
        } else {
            *list = v;
            v[*n].name = name;
            v[*n].value = value;
            (*n)++;
            return 0;
        }
    }
fail:
    free(name);
    free(value);
    return rc;
}

/* Borrows cluster; the copy it stores is owned by rule. */
int cfg_rule_add_backend(struct cload *cl, struct cfg_rule *rule, int line, const char *cluster,
                         uint32_t weight, enum cfg_proto proto)
{
    const struct cfg_cluster *c = cl_cluster(cl, cluster);
    if (c == NULL)
        return cl_fail(cl, line, "unknown Cluster '%.80s'", cluster);
    for (size_t i = 0; i < rule->nbackends; i++)
        if (strcmp(rule->backends[i].cluster, cluster) == 0)
            return cl_fail(cl, line, "Cluster '%s' is listed twice", cluster);
    if (c->lb == CFG_LB_HASH && c->hash_attr == NULL && rule->hash_attr == NULL)
        return cl_fail(cl, line,
                       "Cluster '%s' uses consistent_hash without hashOn: set hashOn on the "
                       "cluster or on this rule",
                       cluster);
    if (c->lb == CFG_LB_HASH && rule->hash_attr == NULL && c->hash_attr != NULL &&
        !cfg_attr_offered(c->hash_attr, proto))
        return cl_fail(cl, line,
                       "Cluster '%s' hashes on '%s', which %s listeners do not have: set "
                       "hashOn on this rule",
                       cluster, c->hash_attr, cfg_proto_name(proto));
    if (proto == CFG_PROTO_TLS_PASSTHROUGH && c->tls.enabled)
        return cl_fail(cl, line,
                       "Cluster '%s' has tls, but tls passthrough routes forward the client's "
                       "TLS as it is (TLS inside TLS reaches no upstream): use a Cluster "
                       "without tls",
                       cluster);
    if (CFG_PROTO_IS_DB(proto) && c->tls.enabled)
        return cl_fail(cl, line,
                       "Cluster '%s' has tls, which %s routes do not support yet (the "
                       "protocol negotiates TLS inside its own handshake): use a Cluster "
                       "without tls",
                       cluster, cfg_proto_name(proto));
    struct cfg_backend *b = realloc(rule->backends, (rule->nbackends + 1) * sizeof(*b));
    if (b == NULL)
        return cl_fail(cl, line, "out of memory");
    rule->backends = b;
    b[rule->nbackends].cluster = strdup(cluster);
    b[rule->nbackends].weight = weight;
    if (b[rule->nbackends].cluster == NULL)
        return cl_fail(cl, line, "out of memory");
    rule->nbackends++;
    return 0;
}

/* Borrows s; the copy it stores is owned by rule. */
int cfg_rule_rewrite(struct cload *cl, struct cfg_rule *rule, int line, const char *s)
{
    if (s[0] != '/')
        return cl_fail(cl, line, "rewrite prefix '%.80s' must start with '/'", s);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#')
            return cl_fail(cl, line,
                           "rewrite prefix '%.80s' may not contain spaces, control "
                           "characters, '?' or '#'",
                           s);
    if ((rule->rewrite_prefix = strdup(s)) == NULL)
        return cl_fail(cl, line, "out of memory");
    return 0;
}

/* Borrows everything. */
int cfg_rule_finish(struct cload *cl, const struct cfg_route *r, struct cfg_rule *rule,
                    size_t index)
{
    int line = rule->where.line;
    const char *name = rule->name;
    for (size_t i = 0; i < index; i++)
        if (strcmp(r->rules[i].name, name) == 0)
            return cl_fail(cl, line, "rule name '%s' is used twice in Route '%s'", name,
                           r->name);
    if (rule->nbackends == 0 && rule->direct.status == 0)
        return cl_fail(cl, line, "rule '%s' needs backends or directResponse", name);
    if (rule->nbackends > 0 && rule->direct.status != 0)
        return cl_fail(cl, line, "rule '%s' has both backends and directResponse; use one",
                       name);
    if (rule->direct.status != 0) {
        const char *useless = NULL;
        if (rule->rewrite_prefix)
            useless = "rewrite";
        else if (rule->request_headers.nset || rule->request_headers.nadd ||
                 rule->request_headers.nremove)
            useless = "requestHeaders";
        else if (rule->retry.attempts)
            useless = "retries";
        else if (rule->timeout_ms)
            useless = "timeout";
        else if (rule->hash_attr)
            useless = "hashOn";
        if (useless)
            return cl_fail(cl, line, "rule '%s': %s has no effect with directResponse", name,
                           useless);
    }
    uint64_t total = 0;
    for (size_t i = 0; i < rule->nbackends; i++)
        total += rule->backends[i].weight;
    if (rule->nbackends > 0 && total == 0)
        return cl_fail(cl, line, "rule '%s': every backend weight is 0", name);
    if (rule->rewrite_prefix != NULL) {
        bool ok = false;
        for (size_t i = 0; i < rule->nconds; i++) {
            const struct cfg_cond *c = &rule->conds[i];
            ok |= strcmp(c->attr, "path") == 0 && c->op == CFG_MATCH_PREFIX && !c->invert;
        }
        if (!ok)
            return cl_fail(cl, line,
                           "rule '%s': rewrite needs a `path` prefix condition whose prefix "
                           "it replaces",
                           name);
    }
    return 0;
}

/* ---- the Route kind ---------------------------------------------------- */

/* One `match` entry into a new condition of *conds. Borrows y. */
int cfg_load_cond(struct cload *cl, struct cfg_cond **conds, size_t *nconds,
                  const struct ynode *y, unsigned protos)
{
    static const char *const keys[] = {"attribute", "exact",  "prefix",   "suffix",
                                       "regex",     "present", "absent",  "in",
                                       "invert",    "ignoreCase", NULL};
    static const char *const ops[] = {"exact",   "prefix", "suffix", "regex",
                                      "present", "absent", "in",     NULL};
    const struct ynode *opkey = NULL, *opval = NULL, *n;
    int op = -1;

    if (cl_map(cl, y, "match condition", keys) != 0)
        return -1;
    for (size_t i = 0; i < y->n; i++) {
        const struct ynode *k = y->items[2 * i];
        for (int j = 0; ops[j]; j++) {
            if (strcmp(k->str, ops[j]) != 0)
                continue;
            if (opkey != NULL)
                return cl_fail(cl, k->line,
                               "condition has two operators ('%s' and '%s'); use one per "
                               "condition",
                               opkey->str, k->str);
            opkey = k;
            opval = y->items[2 * i + 1];
            op = j;
        }
    }
    if (opkey == NULL)
        return cl_fail(cl, y->line,
                       "condition needs one operator: exact, prefix, suffix, regex, present, "
                       "absent or in");
    char *attr;
    if ((n = cl_need(cl, y, "attribute", "match condition")) == NULL ||
        cl_attribute_on(cl, n, "attribute", protos, &attr) != 0)
        return -1;
    struct cfg_cond *c = add_cond(cl, conds, nconds, y->line, attr, (enum cfg_match_op)op, NULL);
    if (c == NULL)
        return -1;

    switch (c->op) {
    case CFG_MATCH_EXACT:
    case CFG_MATCH_PREFIX:
    case CFG_MATCH_SUFFIX:
    case CFG_MATCH_REGEX:
        if (cl_strdup(cl, opval, opkey->str, &c->value) != 0)
            return -1;
        if (c->op == CFG_MATCH_REGEX && cfg_check_regex(cl, opval->line, c->attr, c->value))
            return -1;
        break;
    case CFG_MATCH_PRESENT:
    case CFG_MATCH_ABSENT: {
        bool b;
        if (cl_bool(cl, opval, opkey->str, &b) != 0)
            return -1;
        if (!b)
            return cl_fail(cl, opval->line,
                           "only '%s: true' is allowed (use %s: true, or invert: true)",
                           opkey->str, c->op == CFG_MATCH_PRESENT ? "absent" : "present");
        break;
    }
    case CFG_MATCH_IN:
        if (cl_seq(cl, opval, "in", true, CFG_MAX_LIST) != 0)
            return -1;
        if ((c->values = calloc(opval->n, sizeof(*c->values))) == NULL)
            return cl_fail(cl, opval->line, "out of memory");
        for (size_t i = 0; i < opval->n; i++, c->nvalues++)
            if (cl_strdup(cl, opval->items[i], "in", &c->values[i]) != 0)
                return -1;
        break;
    }
    if ((n = ytree_get(y, "invert")) && cl_bool(cl, n, "invert", &c->invert))
        return -1;
    if ((n = ytree_get(y, "ignoreCase")) && cl_bool(cl, n, "ignoreCase", &c->ignore_case))
        return -1;
    if (c->ignore_case && (c->op == CFG_MATCH_PRESENT || c->op == CFG_MATCH_ABSENT))
        return cl_fail(cl, n->line, "ignoreCase has no effect with %s", opkey->str);
    return 0;
}

/* requestHeaders/responseHeaders: {set: {..}, add: {..}, remove: [..]}. */
static int load_header_ops(struct cload *cl, struct cfg_header_ops *ops, const struct ynode *y,
                           const char *what)
{
    static const char *const keys[] = {"set", "add", "remove", NULL};
    const struct ynode *n;
    if (cl_map(cl, y, what, keys) != 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        const char *key = k == 0 ? "set" : "add";
        if ((n = ytree_get(y, key)) == NULL)
            continue;
        if (n->kind != YNODE_MAP)
            return cl_fail(cl, n->line, "%s.%s: expected a mapping of header names to values, "
                           "got %s", what, key, ytree_describe(n));
        if (n->n > CFG_MAX_LIST)
            return cl_fail(cl, n->line, "%s.%s: more than %u headers", what, key, CFG_MAX_LIST);
        for (size_t i = 0; i < n->n; i++) {
            const struct ynode *hk = n->items[2 * i], *hv = n->items[2 * i + 1];
            char *name, *value;
            if (cl_header_name(cl, hk, key, &name) != 0)
                return -1;
            if (cl_strdup(cl, hv, name, &value) != 0) {
                free(name);
                return -1;
            }
            if (cfg_header_op(cl, ops, hk->line, key[0], name, value) != 0)
                return -1;
        }
    }
    if ((n = ytree_get(y, "remove")) != NULL && cfg_header_removes(cl, n, CFG_MAX_LIST, ops) != 0)
        return -1;
    return 0;
}

/* Borrows seq; adds each listed name to ops as a removal. */
int cfg_header_removes(struct cload *cl, const struct ynode *seq, size_t max,
                       struct cfg_header_ops *ops)
{
    if (cl_seq(cl, seq, "remove", false, max) != 0)
        return -1;
    for (size_t i = 0; i < seq->n; i++) {
        char *name;
        if (cl_header_name(cl, seq->items[i], "remove", &name) != 0 ||
            cfg_header_op(cl, ops, seq->items[i]->line, 'r', name, NULL) != 0)
            return -1;
    }
    return 0;
}

/* retries: {attempts, on, perTryTimeout, budgetPercent, minRetryConcurrency} */
static int load_retries(struct cload *cl, struct cfg_retry *rt, const struct ynode *y, bool tcp)
{
    static const char *const keys[] = {"attempts", "on", "perTryTimeout", "budgetPercent",
                                       "minRetryConcurrency", NULL};
    static const struct {
        const char *name;
        uint32_t bit;
        bool http;
    } ons[] = {{"connect-failure", CFG_RETRY_CONNECT_FAILURE, false},
               {"reset", CFG_RETRY_RESET, false},
               {"5xx", CFG_RETRY_5XX, true},
               {"gateway-error", CFG_RETRY_GATEWAY_ERROR, true},
               {"unavailable", CFG_RETRY_UNAVAILABLE, true}};
    const struct ynode *n;
    if (cl_map(cl, y, "retries", keys) != 0)
        return -1;
    if ((n = cl_need(cl, y, "attempts", "retries")) == NULL ||
        cl_u32(cl, n, "attempts", 0, 10, &rt->attempts) != 0)
        return -1;
    rt->on = CFG_RETRY_CONNECT_FAILURE;
    if ((n = ytree_get(y, "on")) != NULL) {
        if (cl_seq(cl, n, "on", true, CFG_MAX_LIST) != 0)
            return -1;
        rt->on = 0;
        for (size_t i = 0; i < n->n; i++) {
            const char *s;
            size_t j = 0, nons = sizeof(ons) / sizeof(ons[0]);
            if (cl_scalar(cl, n->items[i], "on", &s) != 0)
                return -1;
            while (j < nons && strcmp(ons[j].name, s) != 0)
                j++;
            if (j == nons)
                return cl_fail(cl, n->items[i]->line,
                               "retries.on: unknown trigger '%.80s' (use connect-failure, "
                               "reset, 5xx, gateway-error or unavailable)",
                               s);
            if (tcp && ons[j].http)
                return cl_fail(cl, n->items[i]->line,
                               "retries.on: '%s' needs an http listener; tcp routes retry on "
                               "connect-failure or reset",
                               s);
            rt->on |= ons[j].bit;
        }
    }
    if ((n = ytree_get(y, "perTryTimeout")) &&
        cl_duration(cl, n, "perTryTimeout", 0, CFG_MAX_DURATION_MS, &rt->per_try_timeout_ms))
        return -1;
    if ((n = ytree_get(y, "budgetPercent")) &&
        cl_u32(cl, n, "budgetPercent", 0, 100, &rt->budget_percent))
        return -1;
    if ((n = ytree_get(y, "minRetryConcurrency")) &&
        cl_u32(cl, n, "minRetryConcurrency", 0, 10000, &rt->min_retry_concurrency))
        return -1;
    return 0;
}

/* directResponse: {status, body, contentType}. */
static int load_direct(struct cload *cl, struct cfg_direct *d, const struct ynode *y)
{
    static const char *const keys[] = {"status", "body", "contentType", NULL};
    const struct ynode *n;
    uint32_t status;
    if (cl_map(cl, y, "directResponse", keys) != 0)
        return -1;
    if ((n = cl_need(cl, y, "status", "directResponse")) == NULL ||
        cl_u32(cl, n, "status", 200, 599, &status) != 0)
        return -1;
    d->status = (int)status;
    if ((n = ytree_get(y, "body")) != NULL) {
        if (cl_strdup(cl, n, "body", &d->body) != 0)
            return -1;
        if (strlen(d->body) > CFG_MAX_BODY)
            return cl_fail(cl, n->line, "body: longer than %u bytes", CFG_MAX_BODY);
        if (d->body[0] != '\0' && (d->status == 204 || d->status == 304))
            return cl_fail(cl, n->line, "body: a %d response has no body", d->status);
    }
    if ((n = ytree_get(y, "contentType")) != NULL) {
        if (cl_strdup(cl, n, "contentType", &d->content_type) != 0)
            return -1;
        if (d->content_type[0] == '\0' || !cfg_is_header_value(d->content_type))
            return cl_fail(cl, n->line, "contentType: not a valid header value");
    } else if ((d->content_type = strdup("text/plain")) == NULL) {
        return cl_fail(cl, y->line, "out of memory");
    }
    return 0;
}

/* True if any backend of rule goes to a consistent_hash cluster. */
static bool uses_hashing(struct cload *cl, const struct cfg_rule *rule)
{
    for (size_t i = 0; i < rule->nbackends; i++) {
        const struct cfg_cluster *c = cl_cluster(cl, rule->backends[i].cluster);
        if (c != NULL && c->lb == CFG_LB_HASH)
            return true;
    }
    return false;
}

/* One entry of spec.rules into rule (already zeroed, counted in r); proto
 * is the protocol of the route's listeners. */
static int load_rule(struct cload *cl, struct cfg_route *r, struct cfg_rule *rule,
                     const struct ynode *y, size_t index, enum cfg_proto proto)
{
    static const char *const keys[] = {"name",    "match",          "backends",
                                       "timeout", "retries",        "requestHeaders",
                                       "responseHeaders", "rewrite", "hashOn",
                                       "directResponse",  NULL};
    static const char *const http_only[] = {"directResponse", "requestHeaders",
                                            "responseHeaders", "rewrite", NULL};
    static const char *const backend_keys[] = {"cluster", "weight", NULL};
    static const char *const rewrite_keys[] = {"pathPrefix", NULL};
    const struct ynode *n, *hash_node;
    bool tcp = proto != CFG_PROTO_HTTP; /* tls passthrough is proxied like tcp */

    if (cl_map(cl, y, "rule", keys) != 0 || cfg_rule_init(cl, r, rule, index, y->line) != 0)
        return -1;
    if (tcp)
        for (int i = 0; http_only[i]; i++)
            if ((n = ytree_key(y, http_only[i])) != NULL)
                return cl_fail(cl, n->line,
                               "'%s' needs an http listener (Route '%s' attaches to %s "
                               "listeners)",
                               n->str, r->name, cfg_proto_name(proto));
    if ((n = ytree_get(y, "name")) != NULL) {
        char *name;
        if (cl_name(cl, n, "rule name", &name) != 0)
            return -1;
        free(rule->name);
        rule->name = name;
    }
    if ((n = ytree_get(y, "match")) != NULL) {
        if (cl_seq(cl, n, "match", false, CFG_MAX_LIST) != 0)
            return -1;
        for (size_t i = 0; i < n->n; i++)
            if (cfg_load_cond(cl, &rule->conds, &rule->nconds, n->items[i],
                              CFG_PROTO_BIT(proto)) != 0)
                return -1;
    }
    /* hashOn before backends: a backend's consistent_hash check needs it. */
    if ((hash_node = ytree_get(y, "hashOn")) != NULL &&
        cl_attribute(cl, hash_node, "hashOn", proto, &rule->hash_attr) != 0)
        return -1;
    if ((n = ytree_get(y, "backends")) != NULL) {
        if (cl_seq(cl, n, "backends", true, CFG_MAX_LIST) != 0)
            return -1;
        for (size_t i = 0; i < n->n; i++) {
            const struct ynode *b = n->items[i], *bc, *bw;
            const char *cluster;
            uint32_t weight = 1;
            if (cl_map(cl, b, "backend", backend_keys) != 0 ||
                (bc = cl_need(cl, b, "cluster", "backend")) == NULL ||
                cl_scalar(cl, bc, "cluster", &cluster) != 0)
                return -1;
            if ((bw = ytree_get(b, "weight")) != NULL &&
                cl_u32(cl, bw, "weight", 0, CFG_MAX_WEIGHT, &weight) != 0)
                return -1;
            if (cfg_rule_add_backend(cl, rule, bc->line, cluster, weight, proto) != 0)
                return -1;
        }
        if (hash_node != NULL && !uses_hashing(cl, rule))
            return cl_fail(cl, hash_node->line,
                           "hashOn has no effect: no backend cluster uses consistent_hash");
    }
    if ((n = ytree_get(y, "timeout")) &&
        cl_duration(cl, n, "timeout", 0, CFG_MAX_DURATION_MS, &rule->timeout_ms))
        return -1;
    if ((n = ytree_get(y, "retries")) && load_retries(cl, &rule->retry, n, tcp))
        return -1;
    if ((n = ytree_get(y, "requestHeaders")) &&
        load_header_ops(cl, &rule->request_headers, n, "requestHeaders"))
        return -1;
    if ((n = ytree_get(y, "responseHeaders")) &&
        load_header_ops(cl, &rule->response_headers, n, "responseHeaders"))
        return -1;
    if ((n = ytree_get(y, "rewrite")) != NULL) {
        const struct ynode *p;
        const char *s;
        if (cl_map(cl, n, "rewrite", rewrite_keys) != 0 ||
            (p = cl_need(cl, n, "pathPrefix", "rewrite")) == NULL ||
            cl_scalar(cl, p, "pathPrefix", &s) != 0 || cfg_rule_rewrite(cl, rule, p->line, s))
            return -1;
    }
    if ((n = ytree_get(y, "directResponse")) && load_direct(cl, &rule->direct, n))
        return -1;
    return cfg_rule_finish(cl, r, rule, index);
}

/* Borrows the nodes; the route it adds is owned by cl->cfg. */
int cfg_load_route(struct cload *cl, int line, const struct ynode *name,
                   const struct ynode *spec)
{
    static const char *const keys[] = {"parents", "hostnames", "rules", NULL};
    const struct ynode *n;
    enum cfg_proto proto = CFG_PROTO_HTTP;

    if (cl_map(cl, spec, "Route spec", keys) != 0)
        return -1;
    struct cfg_route *r = cfg_route_new(cl, name->line, name->str);
    if (r == NULL)
        return -1;
    r->where.line = line;
    if ((n = cl_need(cl, spec, "parents", "Route spec")) == NULL ||
        cl_seq(cl, n, "parents", true, CFG_MAX_LIST) != 0 ||
        cfg_route_parents(cl, r, (const struct ynode *const *)n->items, n->n, &proto) != 0)
        return -1;
    if ((n = ytree_get(spec, "hostnames")) &&
        cfg_route_hostnames(cl, r, n, proto, CFG_MAX_LIST))
        return -1;
    if ((n = cl_need(cl, spec, "rules", "Route spec")) == NULL ||
        cl_seq(cl, n, "rules", true, CFG_MAX_RULES) != 0)
        return -1;
    if ((r->rules = calloc(n->n, sizeof(*r->rules))) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        struct cfg_rule *rule = &r->rules[r->nrules++];
        if (load_rule(cl, r, rule, n->items[i], i, proto) != 0)
            return -1;
    }
    return 0;
}
