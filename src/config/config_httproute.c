/* config_httproute.c - Gateway API HTTPRoute documents mapped onto
 * cfg_route, so routes written for Kubernetes gateways load unchanged.
 *
 * The mapping (docs/config.md has the table): parentRefs[].name name
 * Listeners, backendRefs[].name name Clusters. An HTTPRoute rule's
 * `matches` are ORed while a cfg_rule's conditions are ANDed, so each match
 * becomes its own cfg_rule carrying the same backends and filters; the YAML
 * rule is simply loaded once per match. A rule without matches, and a match
 * without a path, match the Gateway API default: path prefix "/". Fields
 * we do not implement are errors, never silently ignored. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns a new "<prefix><name>" string (caller owns) or NULL. Borrows. */
static char *concat(const char *prefix, const char *name)
{
    size_t a = strlen(prefix), b = strlen(name);
    char *s = malloc(a + b + 1);
    if (s != NULL) {
        memcpy(s, prefix, a);
        memcpy(s + a, name, b + 1);
    }
    return s;
}

/* Adds one condition; `what` names the field in errors. attr is taken
 * over. For regex values the pattern is compiled once to validate it. */
static int add_match(struct cload *cl, struct cfg_rule *rule, const struct ynode *y, char *attr,
                     const char *type, const struct ynode *value)
{
    enum cfg_match_op op;
    if (strcmp(type, "Exact") == 0) {
        op = CFG_MATCH_EXACT;
    } else if (strcmp(type, "RegularExpression") == 0) {
        op = CFG_MATCH_REGEX;
    } else if (strcmp(type, "PathPrefix") == 0 && strcmp(attr, "path") == 0) {
        op = CFG_MATCH_PREFIX;
    } else {
        int line = ytree_get(y, "type") ? ytree_get(y, "type")->line : y->line;
        cl_fail(cl, line, "type: '%.80s' is not supported here (use %s)", type,
                strcmp(attr, "path") == 0 ? "PathPrefix, Exact or RegularExpression"
                                          : "Exact or RegularExpression");
        free(attr);
        return -1;
    }
    char *v;
    if (cl_strdup(cl, value, "value", &v) != 0) {
        free(attr);
        return -1;
    }
    if (op != CFG_MATCH_REGEX && strcmp(attr, "path") == 0 && v[0] != '/') {
        cl_fail(cl, value->line, "path value '%.80s' must start with '/'", v);
        free(attr);
        free(v);
        return -1;
    }
    if (op == CFG_MATCH_REGEX && cfg_check_regex(cl, value->line, attr, v) != 0) {
        free(attr);
        free(v);
        return -1;
    }
    return cfg_rule_add_cond(cl, rule, y->line, attr, op, v);
}

/* Reads the optional `type` of a header/query/path match (default dflt);
 * the result borrows y. */
static int match_type(struct cload *cl, const struct ynode *y, const char *dflt,
                      const char **type)
{
    const struct ynode *t = ytree_get(y, "type");
    *type = dflt;
    return t != NULL ? cl_scalar(cl, t, "type", type) : 0;
}

/* headers / queryParams: [{name, value, type}] into conditions. */
static int load_kv_matches(struct cload *cl, struct cfg_rule *rule, const struct ynode *seq,
                           bool header)
{
    static const char *const keys[] = {"name", "value", "type", NULL};
    const char *what = header ? "headers" : "queryParams";
    if (cl_seq(cl, seq, what, false, GW_MAX_LIST) != 0)
        return -1;
    for (size_t i = 0; i < seq->n; i++) {
        const struct ynode *y = seq->items[i], *nn, *vn;
        const char *type, *name;
        char *attr;
        if (cl_map(cl, y, what, keys) != 0 || (nn = cl_need(cl, y, "name", what)) == NULL ||
            (vn = cl_need(cl, y, "value", what)) == NULL || match_type(cl, y, "Exact", &type) ||
            cl_scalar(cl, nn, "name", &name) != 0)
            return -1;
        if (header ? !cfg_is_token(name)
                   : strpbrk(name, " &=#") != NULL || !cfg_is_header_value(name))
            return cl_fail(cl, nn->line, "invalid %s name '%.80s'",
                           header ? "header" : "query parameter", name);
        if ((attr = concat(header ? "header." : "query.", name)) == NULL)
            return cl_fail(cl, nn->line, "out of memory");
        if (header)
            cfg_lower(attr);
        if (add_match(cl, rule, y, attr, type, vn) != 0)
            return -1;
    }
    return 0;
}

/* One entry of `matches` (NULL: the default match) into rule's conditions. */
static int load_match(struct cload *cl, struct cfg_rule *rule, const struct ynode *m)
{
    static const char *const keys[] = {"path", "headers", "queryParams", "method", NULL};
    static const char *const path_keys[] = {"type", "value", NULL};
    static const char *const methods[] = {"GET",     "HEAD",  "POST",  "PUT", "DELETE",
                                          "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};
    const struct ynode *n;
    if (m != NULL && cl_map(cl, m, "match", keys) != 0)
        return -1;
    if ((n = ytree_get(m, "path")) != NULL) {
        const char *type;
        const struct ynode *v;
        if (cl_map(cl, n, "path", path_keys) != 0 || match_type(cl, n, "PathPrefix", &type))
            return -1;
        if ((v = ytree_get(n, "value")) != NULL) {
            char *attr = strdup("path");
            if (attr == NULL)
                return cl_fail(cl, n->line, "out of memory");
            if (add_match(cl, rule, n, attr, type, v) != 0)
                return -1;
        } else if (strcmp(type, "PathPrefix") != 0) {
            return cl_fail(cl, n->line, "path: missing required key 'value'");
        } else {
            n = NULL; /* {type: PathPrefix} alone: the default below */
        }
    }
    if (n == NULL) {
        char *attr = strdup("path"), *v = strdup("/");
        if (attr == NULL || v == NULL) {
            free(attr);
            free(v);
            return cl_fail(cl, rule->where.line, "out of memory");
        }
        if (cfg_rule_add_cond(cl, rule, m ? m->line : rule->where.line, attr, CFG_MATCH_PREFIX,
                              v) != 0)
            return -1;
    }
    if ((n = ytree_get(m, "headers")) && load_kv_matches(cl, rule, n, true))
        return -1;
    if ((n = ytree_get(m, "queryParams")) && load_kv_matches(cl, rule, n, false))
        return -1;
    if ((n = ytree_get(m, "method")) != NULL) {
        const char *s;
        int i = 0;
        if (cl_scalar(cl, n, "method", &s) != 0)
            return -1;
        while (methods[i] && strcmp(methods[i], s) != 0)
            i++;
        if (methods[i] == NULL)
            return cl_fail(cl, n->line, "method: '%.80s' is not an HTTPRoute method", s);
        char *attr = strdup("method"), *v = strdup(s);
        if (attr == NULL || v == NULL) {
            free(attr);
            free(v);
            return cl_fail(cl, n->line, "out of memory");
        }
        if (cfg_rule_add_cond(cl, rule, n->line, attr, CFG_MATCH_EXACT, v) != 0)
            return -1;
    }
    return 0;
}

/* RequestHeaderModifier / ResponseHeaderModifier bodies:
 * {set: [{name, value}], add: [{name, value}], remove: [name]}. */
static int load_modifier(struct cload *cl, struct cfg_header_ops *ops, const struct ynode *y,
                         const char *what)
{
    static const char *const keys[] = {"set", "add", "remove", NULL};
    static const char *const hkeys[] = {"name", "value", NULL};
    const struct ynode *n;
    if (cl_map(cl, y, what, keys) != 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        const char *key = k == 0 ? "set" : "add";
        if ((n = ytree_get(y, key)) == NULL)
            continue;
        if (cl_seq(cl, n, key, false, GW_MAX_LIST) != 0)
            return -1;
        for (size_t i = 0; i < n->n; i++) {
            const struct ynode *h = n->items[i], *hn, *hv;
            char *name, *value;
            if (cl_map(cl, h, key, hkeys) != 0 || (hn = cl_need(cl, h, "name", key)) == NULL ||
                (hv = cl_need(cl, h, "value", key)) == NULL ||
                cl_header_name(cl, hn, "name", &name) != 0)
                return -1;
            if (cl_strdup(cl, hv, "value", &value) != 0) {
                free(name);
                return -1;
            }
            if (cfg_header_op(cl, ops, hn->line, key[0], name, value) != 0)
                return -1;
        }
    }
    if ((n = ytree_get(y, "remove")) != NULL && cfg_header_removes(cl, n, GW_MAX_LIST, ops) != 0)
        return -1;
    return 0;
}

/* URLRewrite body: {path: {type: ReplacePrefixMatch, replacePrefixMatch}}. */
static int load_url_rewrite(struct cload *cl, struct cfg_rule *rule, const struct ynode *y)
{
    static const char *const keys[] = {"path", NULL};
    static const char *const path_keys[] = {"type", "replacePrefixMatch", "replaceFullPath",
                                            NULL};
    const struct ynode *p, *t, *v;
    const char *type, *s;
    if (cl_map(cl, y, "urlRewrite", keys) != 0 ||
        (p = cl_need(cl, y, "path", "urlRewrite")) == NULL ||
        cl_map(cl, p, "urlRewrite.path", path_keys) != 0 ||
        (t = cl_need(cl, p, "type", "urlRewrite.path")) == NULL ||
        cl_scalar(cl, t, "type", &type) != 0)
        return -1;
    if (strcmp(type, "ReplacePrefixMatch") != 0)
        return cl_fail(cl, t->line,
                       "urlRewrite.path.type: '%.80s' is not supported (use ReplacePrefixMatch)",
                       type);
    if ((v = ytree_key(p, "replaceFullPath")) != NULL)
        return cl_fail(cl, v->line, "replaceFullPath does not go with ReplacePrefixMatch");
    if ((v = cl_need(cl, p, "replacePrefixMatch", "urlRewrite.path")) == NULL ||
        cl_scalar(cl, v, "replacePrefixMatch", &s) != 0)
        return -1;
    return cfg_rule_rewrite(cl, rule, v->line, s);
}

/* filters: [{type, requestHeaderModifier | responseHeaderModifier |
 * urlRewrite}]; each type at most once per rule. */
static int load_filters(struct cload *cl, struct cfg_rule *rule, const struct ynode *seq)
{
    static const char *const keys[] = {"type", "requestHeaderModifier",
                                       "responseHeaderModifier", "urlRewrite", NULL};
    static const char *const types[] = {"RequestHeaderModifier", "ResponseHeaderModifier",
                                        "URLRewrite"};
    bool seen[3] = {false, false, false};
    if (cl_seq(cl, seq, "filters", false, GW_MAX_LIST) != 0)
        return -1;
    for (size_t i = 0; i < seq->n; i++) {
        const struct ynode *f = seq->items[i], *t, *body;
        const char *type;
        int k;
        if (cl_map(cl, f, "filter", keys) != 0 || (t = cl_need(cl, f, "type", "filter")) == NULL ||
            cl_scalar(cl, t, "type", &type) != 0)
            return -1;
        for (k = 0; k < 3 && strcmp(types[k], type) != 0; k++)
            ;
        if (k == 3)
            return cl_fail(cl, t->line,
                           "filter type '%.80s' is not supported (use RequestHeaderModifier, "
                           "ResponseHeaderModifier or URLRewrite)",
                           type);
        if (seen[k])
            return cl_fail(cl, t->line, "filter %s appears twice in one rule", type);
        seen[k] = true;
        if (f->n != 2)
            return cl_fail(cl, f->line, "filter of type %s needs exactly its '%s' field", type,
                           keys[k + 1]);
        if ((body = cl_need(cl, f, keys[k + 1], "filter")) == NULL)
            return -1;
        int rc = k == 0   ? load_modifier(cl, &rule->request_headers, body, keys[1])
                 : k == 1 ? load_modifier(cl, &rule->response_headers, body, keys[2])
                          : load_url_rewrite(cl, rule, body);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* backendRefs: [{name, weight, port}] into rule->backends; port is checked
 * and ignored (the Cluster's endpoints carry the ports). */
static int load_backend_refs(struct cload *cl, struct cfg_rule *rule, const struct ynode *seq)
{
    static const char *const keys[] = {"name", "weight", "port", NULL};
    if (cl_seq(cl, seq, "backendRefs", true, GW_MAX_LIST) != 0)
        return -1;
    for (size_t i = 0; i < seq->n; i++) {
        const struct ynode *b = seq->items[i], *nn, *n;
        const char *name;
        uint32_t weight = 1, port;
        if (cl_map(cl, b, "backendRef", keys) != 0 ||
            (nn = cl_need(cl, b, "name", "backendRef")) == NULL ||
            cl_scalar(cl, nn, "name", &name) != 0)
            return -1;
        if ((n = ytree_get(b, "weight")) && cl_u32(cl, n, "weight", 0, CFG_MAX_WEIGHT, &weight))
            return -1;
        if ((n = ytree_get(b, "port")) && cl_u32(cl, n, "port", 1, 65535, &port))
            return -1;
        if (cfg_rule_add_backend(cl, rule, nn->line, name, weight, CFG_PROTO_HTTP) != 0)
            return -1;
    }
    return 0;
}

/* One YAML rule, for its match number m (m_node NULL: default match), into
 * rule (zeroed, counted in r, index `index` among r->rules). */
static int load_rule(struct cload *cl, struct cfg_route *r, struct cfg_rule *rule,
                     const struct ynode *y, const struct ynode *m_node, size_t m, size_t nm,
                     size_t index)
{
    static const char *const timeout_keys[] = {"request", "backendRequest", NULL};
    const struct ynode *n;
    if (cfg_rule_init(cl, r, rule, index, m_node ? m_node->line : y->line) != 0)
        return -1;
    if ((n = ytree_get(y, "name")) != NULL) {
        char *name, *full;
        char suffix[32];
        if (cl_name(cl, n, "rule name", &name) != 0)
            return -1;
        snprintf(suffix, sizeof(suffix), "/%zu", m);
        full = nm > 1 ? concat(name, suffix) : name;
        if (full != name)
            free(name);
        if (full == NULL)
            return cl_fail(cl, n->line, "out of memory");
        free(rule->name);
        rule->name = full;
    }
    if (load_match(cl, rule, m_node) != 0)
        return -1;
    if ((n = cl_need(cl, y, "backendRefs", "HTTPRoute rule")) == NULL ||
        load_backend_refs(cl, rule, n) != 0)
        return -1;
    if ((n = ytree_get(y, "filters")) && load_filters(cl, rule, n))
        return -1;
    if ((n = ytree_get(y, "timeouts")) != NULL) {
        const struct ynode *t;
        if (cl_map(cl, n, "timeouts", timeout_keys) != 0)
            return -1;
        if ((t = ytree_get(n, "request")) &&
            cl_duration(cl, t, "timeouts.request", 0, CFG_MAX_DURATION_MS, &rule->timeout_ms))
            return -1;
        if ((t = ytree_get(n, "backendRequest")) &&
            cl_duration(cl, t, "timeouts.backendRequest", 0, CFG_MAX_DURATION_MS,
                        &rule->retry.per_try_timeout_ms))
            return -1;
    }
    return cfg_rule_finish(cl, r, rule, index);
}

/* Borrows the nodes; the route it adds is owned by cl->cfg. */
int cfg_load_httproute(struct cload *cl, int line, const struct ynode *name,
                       const struct ynode *spec)
{
    static const char *const keys[] = {"parentRefs", "hostnames", "rules", NULL};
    static const char *const ref_keys[] = {"name", NULL};
    static const char *const rule_keys[] = {"name", "matches", "backendRefs", "filters",
                                            "timeouts", NULL};
    const struct ynode *n, *rules;
    enum cfg_proto proto = CFG_PROTO_HTTP;

    if (cl_map(cl, spec, "HTTPRoute spec", keys) != 0)
        return -1;
    struct cfg_route *r = cfg_route_new(cl, name->line, name->str);
    if (r == NULL)
        return -1;
    r->where.line = line;

    if ((n = cl_need(cl, spec, "parentRefs", "HTTPRoute spec")) == NULL ||
        cl_seq(cl, n, "parentRefs", true, GW_MAX_PARENTS) != 0)
        return -1;
    const struct ynode **names = calloc(n->n, sizeof(*names));
    if (names == NULL)
        return cl_fail(cl, n->line, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n->n; i++)
        if ((rc = cl_map(cl, n->items[i], "parentRef", ref_keys)) == 0 &&
            (names[i] = cl_need(cl, n->items[i], "name", "parentRef")) == NULL)
            rc = -1;
    if (rc == 0)
        rc = cfg_route_parents(cl, r, names, n->n, &proto);
    free(names);
    if (rc != 0)
        return -1;
    if (proto != CFG_PROTO_HTTP)
        return cl_fail(cl, n->line, "HTTPRoute '%s' needs http listeners; '%s' is %s", r->name,
                       r->listeners[0], cfg_proto_name(proto));
    if ((n = ytree_get(spec, "hostnames")) &&
        cfg_route_hostnames(cl, r, n, CFG_PROTO_HTTP, GW_MAX_LIST))
        return -1;

    if ((rules = cl_need(cl, spec, "rules", "HTTPRoute spec")) == NULL ||
        cl_seq(cl, rules, "rules", true, GW_MAX_LIST) != 0)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < rules->n; i++) {
        const struct ynode *m = ytree_get(rules->items[i], "matches");
        /* Oversized lists count 1 here and are refused below. */
        total += m != NULL && m->kind == YNODE_SEQ && m->n > 0 && m->n <= GW_MAX_MATCHES ? m->n
                                                                                         : 1;
    }
    if ((r->rules = calloc(total, sizeof(*r->rules))) == NULL)
        return cl_fail(cl, rules->line, "out of memory");
    for (size_t i = 0; i < rules->n; i++) {
        const struct ynode *y = rules->items[i], *m;
        if (cl_map(cl, y, "HTTPRoute rule", rule_keys) != 0)
            return -1;
        if ((m = ytree_get(y, "matches")) != NULL && cl_seq(cl, m, "matches", false, GW_MAX_MATCHES) != 0)
            return -1;
        size_t nm = m != NULL && m->n > 0 ? m->n : 1;
        for (size_t j = 0; j < nm; j++) {
            struct cfg_rule *rule = &r->rules[r->nrules++];
            const struct ynode *mj = m != NULL && m->n > 0 ? m->items[j] : NULL;
            if (load_rule(cl, r, rule, y, mj, j, nm, r->nrules - 1) != 0)
                return -1;
        }
    }
    return 0;
}
