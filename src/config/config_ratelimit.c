/* config_ratelimit.c - the RateLimit kind.
 *
 *   spec:
 *     targets: [web, pg]                # listeners, any protocols
 *     rules:
 *     - match: [{attribute: path, prefix: /api}]   # optional: every message
 *       key: source.address             # optional: a bucket per value
 *       limit: {requests: 100, per: 1s}
 *       burst: 20                       # optional, default = requests
 *       maxKeys: 10000                  # optional, with key only
 *
 * Loaded in pass 2 like AuthorizationPolicy, with the same targets and the
 * same conditions (cfg_load_cond), so an attribute a target listener does
 * not offer is an error at its line. What the proxy does with a limit is in
 * config.h and src/router/ratelimit.h; this file only checks and stores. */
#include "config/config_internal.h"

#include <stdlib.h>
#include <string.h>

#define CFG_MAX_RATELIMITS 10000u
#define CFG_MAX_RL_RULES 100u
#define CFG_MAX_RL_KEYS 1000000u

/* Appends a zeroed RateLimit named by a copy of name->str, unique among
 * RateLimits. Owned by cl->cfg; NULL after an error. Borrows name. */
static struct cfg_ratelimit *rl_new(struct cload *cl, int line, const struct ynode *name)
{
    struct config *cfg = cl->cfg;
    if (cfg->nratelimits == CFG_MAX_RATELIMITS) {
        cl_fail(cl, name->line, "more than %u RateLimits", CFG_MAX_RATELIMITS);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nratelimits; i++)
        if (strcmp(cfg->ratelimits[i].name, name->str) == 0) {
            cl_fail(cl, name->line, "duplicate RateLimit '%s' (first defined at %s:%d)", name->str,
                    cfg->ratelimits[i].where.file, cfg->ratelimits[i].where.line);
            return NULL;
        }
    struct cfg_ratelimit *arr =
        cfg_grow(cfg->ratelimits, cfg->nratelimits, &cl->cap_ratelimits, sizeof(*arr));
    if (arr == NULL) {
        cl_fail(cl, name->line, "out of memory");
        return NULL;
    }
    cfg->ratelimits = arr;
    struct cfg_ratelimit *rl = &arr[cfg->nratelimits++];
    rl->where.file = cl->file;
    rl->where.line = line;
    if ((rl->name = strdup(name->str)) == NULL) {
        cl_fail(cl, name->line, "out of memory");
        return NULL;
    }
    return rl;
}

/* rule.limit ({requests, per}) into r. Borrows y. */
static int load_limit(struct cload *cl, struct cfg_ratelimit_rule *r, const struct ynode *y)
{
    static const char *const keys[] = {"requests", "per", NULL};
    const struct ynode *n;
    if (cl_map(cl, y, "limit", keys) != 0)
        return -1;
    if ((n = cl_need(cl, y, "requests", "limit")) == NULL ||
        cl_u32(cl, n, "requests", 1, 1000000000u, &r->requests) != 0)
        return -1;
    r->per_ms = 1000;
    if ((n = ytree_get(y, "per")) && cl_duration(cl, n, "per", 1, 24 * 3600000ull, &r->per_ms))
        return -1;
    return 0;
}

/* One entry of spec.rules into r, which the RateLimit owns (zeroed and
 * counted already). Borrows y. */
static int load_rule(struct cload *cl, struct cfg_ratelimit_rule *r, const struct ynode *y,
                     unsigned protos)
{
    static const char *const keys[] = {"match", "key", "limit", "burst", "maxKeys", NULL};
    const struct ynode *n;
    if (cl_map(cl, y, "rule", keys) != 0)
        return -1;
    r->where.file = cl->file;
    r->where.line = y->line;
    if ((n = ytree_get(y, "match"))) {
        if (cl_seq(cl, n, "match", false, CFG_MAX_LIST) != 0)
            return -1;
        for (size_t i = 0; i < n->n; i++)
            if (cfg_load_cond(cl, &r->conds, &r->nconds, n->items[i], protos) != 0)
                return -1;
    }
    if ((n = ytree_get(y, "key")) && cl_attribute_on(cl, n, "key", protos, &r->key) != 0)
        return -1;
    if ((n = cl_need(cl, y, "limit", "rule")) == NULL || load_limit(cl, r, n) != 0)
        return -1;
    r->burst = r->requests;
    if ((n = ytree_get(y, "burst")) && cl_u32(cl, n, "burst", 1, 1000000000u, &r->burst))
        return -1;
    r->max_keys = 10000;
    if ((n = ytree_get(y, "maxKeys"))) {
        if (!r->key)
            return cl_fail(cl, n->line, "maxKeys: only with key (one bucket needs no limit)");
        if (cl_u32(cl, n, "maxKeys", 1, CFG_MAX_RL_KEYS, &r->max_keys) != 0)
            return -1;
    }
    return 0;
}

/* Borrows the nodes; the RateLimit it adds is owned by cl->cfg. */
int cfg_load_ratelimit(struct cload *cl, int line, const struct ynode *name,
                       const struct ynode *spec)
{
    static const char *const keys[] = {"targets", "rules", NULL};
    static const char *const what = "RateLimit spec";
    const struct ynode *n;
    unsigned protos = 0;

    if (cl_map(cl, spec, what, keys) != 0)
        return -1;
    struct cfg_ratelimit *rl = rl_new(cl, line, name);
    if (rl == NULL)
        return -1;
    if ((n = cl_need(cl, spec, "targets", what)) == NULL ||
        cfg_load_targets(cl, n, &rl->listeners, &rl->nlisteners, &protos))
        return -1;
    if ((n = cl_need(cl, spec, "rules", what)) == NULL ||
        cl_seq(cl, n, "rules", true, CFG_MAX_RL_RULES) != 0)
        return -1;
    if ((rl->rules = calloc(n->n, sizeof(*rl->rules))) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    for (size_t i = 0; i < n->n; i++)
        if (load_rule(cl, &rl->rules[rl->nrules++], n->items[i], protos) != 0)
            return -1;
    return 0;
}
