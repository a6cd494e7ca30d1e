/* config_authz.c - the AuthorizationPolicy kind.
 *
 * A policy names the listeners it guards (spec.targets), an action (ALLOW
 * or DENY) and rules, which are ORed; each rule is an AND of match
 * conditions loaded by the Route's own cfg_load_cond, so their syntax, the
 * regex check and the attribute check are exactly a Route's. Unlike a
 * Route, a policy may target listeners of different protocols (one policy
 * can guard every listener); its conditions may then only use attributes
 * that each of them offers.
 *
 * Policies are loaded in pass 2, after every Listener of the whole set,
 * like Routes, so targets may name listeners of any file. What the proxy
 * does with a policy is described in config.h and docs/config.md; this
 * file only checks and stores it. As elsewhere, the policy is appended
 * first and filled in place, so after a failure config_free releases
 * whatever was stored. */
#include "config/config_internal.h"

#include <stdlib.h>
#include <string.h>

/* Appends a zeroed policy named by a copy of name->str, which must be unique
 * among policies. Owned by cl->cfg; NULL after an error. Borrows name. */
static struct cfg_authz *authz_new(struct cload *cl, int line, const struct ynode *name)
{
    struct config *cfg = cl->cfg;
    if (cfg->nauthz == CFG_MAX_AUTHZ) {
        cl_fail(cl, name->line, "more than %u AuthorizationPolicies", CFG_MAX_AUTHZ);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nauthz; i++)
        if (strcmp(cfg->authz[i].name, name->str) == 0) {
            cl_fail(cl, name->line, "duplicate AuthorizationPolicy '%s' (first defined at %s:%d)",
                    name->str, cfg->authz[i].where.file, cfg->authz[i].where.line);
            return NULL;
        }
    struct cfg_authz *arr = cfg_grow(cfg->authz, cfg->nauthz, &cl->cap_authz, sizeof(*arr));
    if (arr == NULL) {
        cl_fail(cl, name->line, "out of memory");
        return NULL;
    }
    cfg->authz = arr;
    struct cfg_authz *a = &arr[cfg->nauthz++];
    a->where.file = cl->file;
    a->where.line = line;
    if ((a->name = strdup(name->str)) == NULL) {
        cl_fail(cl, name->line, "out of memory");
        return NULL;
    }
    return a;
}

/* spec.targets of a policy-like resource into *list / *n (allocated here,
 * owned by the caller's struct also after a failure); *protos receives the
 * set of their protocols (CFG_PROTO_BIT()s). Borrows seq. */
int cfg_load_targets(struct cload *cl, const struct ynode *seq, char ***list, size_t *n,
                     unsigned *protos)
{
    if (cl_seq(cl, seq, "targets", true, CFG_MAX_LIST) != 0)
        return -1;
    if ((*list = calloc(seq->n, sizeof(**list))) == NULL)
        return cl_fail(cl, seq->line, "out of memory");
    *protos = 0;
    for (size_t i = 0; i < seq->n; i++) {
        const struct cfg_listener *l = cfg_listener_ref(cl, seq->items[i], "target", *list, n);
        if (l == NULL)
            return -1;
        *protos |= CFG_PROTO_BIT(l->proto);
    }
    return 0;
}

/* One entry of spec.rules ({match: [...]}) into rule, which a owns (zeroed
 * and counted already). Borrows y. */
static int load_rule(struct cload *cl, struct cfg_authz_rule *rule, const struct ynode *y,
                     unsigned protos)
{
    static const char *const keys[] = {"match", NULL};
    const struct ynode *n;
    if (cl_map(cl, y, "rule", keys) != 0)
        return -1;
    rule->where.file = cl->file;
    rule->where.line = y->line;
    if ((n = cl_need(cl, y, "match", "rule")) == NULL)
        return -1;
    if (n->kind == YNODE_SEQ && n->n == 0)
        return cl_fail(cl, n->line,
                       "match: must not be empty (a rule without conditions would match every "
                       "message)");
    if (cl_seq(cl, n, "match", true, CFG_MAX_LIST) != 0)
        return -1;
    for (size_t i = 0; i < n->n; i++)
        if (cfg_load_cond(cl, &rule->conds, &rule->nconds, n->items[i], protos) != 0)
            return -1;
    return 0;
}

/* Borrows the nodes; the policy it adds is owned by cl->cfg. */
int cfg_load_authz(struct cload *cl, int line, const struct ynode *name,
                   const struct ynode *spec)
{
    static const char *const keys[] = {"targets", "action", "rules", NULL};
    static const char *const what = "AuthorizationPolicy spec";
    const struct ynode *n;
    unsigned protos = 0;
    const char *s;

    if (cl_map(cl, spec, what, keys) != 0)
        return -1;
    struct cfg_authz *a = authz_new(cl, line, name);
    if (a == NULL)
        return -1;
    if ((n = cl_need(cl, spec, "targets", what)) == NULL || cfg_load_targets(cl, n, &a->listeners, &a->nlisteners, &protos))
        return -1;
    if ((n = cl_need(cl, spec, "action", what)) == NULL || cl_scalar(cl, n, "action", &s))
        return -1;
    if (strcmp(s, "ALLOW") == 0)
        a->action = CFG_AUTHZ_ALLOW;
    else if (strcmp(s, "DENY") == 0)
        a->action = CFG_AUTHZ_DENY;
    else
        return cl_fail(cl, n->line, "action: expected ALLOW or DENY, got '%.80s'", s);
    if ((n = cl_need(cl, spec, "rules", what)) == NULL ||
        cl_seq(cl, n, "rules", true, CFG_MAX_AUTHZ_RULES) != 0)
        return -1;
    if ((a->rules = calloc(n->n, sizeof(*a->rules))) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    for (size_t i = 0; i < n->n; i++)
        if (load_rule(cl, &a->rules[a->nrules++], n->items[i], protos) != 0)
            return -1;
    return 0;
}
