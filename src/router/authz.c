/* authz.c - ALLOW/DENY policies over attribute conditions.
 *
 * Policies are few and each rule is a short list of conditions, so a plain
 * scan is enough: DENY rules first (any match refuses), then ALLOW rules
 * (one must match when there are any). */
#include "router/authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/match.h"

struct authz_rule {
    const struct cfg_authz *policy;
    struct match_cond **conds;
    size_t nconds;
};

struct authz {
    struct authz_rule *deny, *allow;
    size_t ndeny, nallow;
    size_t nallow_policies;
};

static int targets(const struct cfg_authz *p, const char *listener)
{
    for (size_t i = 0; i < p->nlisteners; i++)
        if (strcmp(p->listeners[i], listener) == 0)
            return 1;
    return 0;
}

static void rules_free(struct authz_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < r[i].nconds; c++)
            match_free(r[i].conds[c]);
        free(r[i].conds);
    }
    free(r);
}

void authz_free(struct authz *a)
{
    if (!a)
        return;
    rules_free(a->deny, a->ndeny);
    rules_free(a->allow, a->nallow);
    free(a);
}

/* Compiles rule into out; 0 or -1 with err set. */
static int rule_build(struct authz_rule *out, const struct cfg_authz *p,
                      const struct cfg_authz_rule *rule, char *err, size_t errlen)
{
    out->policy = p;
    out->conds = calloc(rule->nconds ? rule->nconds : 1, sizeof(*out->conds));
    if (!out->conds) {
        snprintf(err, errlen, "%s:%d: out of memory", rule->where.file, rule->where.line);
        return -1;
    }
    for (size_t c = 0; c < rule->nconds; c++) {
        out->conds[c] = match_compile(&rule->conds[c], err, errlen);
        if (!out->conds[c])
            return -1;
        out->nconds++;
    }
    return 0;
}

/* Borrows cfg; the result is the caller's. */
struct authz *authz_build(const struct config *cfg, const char *listener_name, char *err,
                          size_t errlen)
{
    if (errlen)
        err[0] = 0;
    size_t ndeny = 0, nallow = 0;
    for (size_t i = 0; i < cfg->nauthz; i++)
        if (targets(&cfg->authz[i], listener_name)) {
            if (cfg->authz[i].action == CFG_AUTHZ_DENY)
                ndeny += cfg->authz[i].nrules;
            else
                nallow += cfg->authz[i].nrules;
        }
    if (ndeny + nallow == 0)
        return NULL;
    struct authz *a = calloc(1, sizeof(*a));
    if (a) {
        a->deny = calloc(ndeny ? ndeny : 1, sizeof(*a->deny));
        a->allow = calloc(nallow ? nallow : 1, sizeof(*a->allow));
    }
    if (!a || !a->deny || !a->allow) {
        snprintf(err, errlen, "out of memory compiling authorization policies");
        authz_free(a);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nauthz; i++) {
        const struct cfg_authz *p = &cfg->authz[i];
        if (!targets(p, listener_name))
            continue;
        if (p->action == CFG_AUTHZ_ALLOW)
            a->nallow_policies++;
        for (size_t r = 0; r < p->nrules; r++) {
            struct authz_rule *out =
                p->action == CFG_AUTHZ_DENY ? &a->deny[a->ndeny++] : &a->allow[a->nallow++];
            if (rule_build(out, p, &p->rules[r], err, errlen) < 0) {
                authz_free(a);
                return NULL;
            }
        }
    }
    return a;
}

static int rule_matches(const struct authz_rule *r, const struct attr_src *src)
{
    for (size_t c = 0; c < r->nconds; c++)
        if (!match_eval(r->conds[c], src))
            return 0;
    return 1;
}

const struct cfg_authz *authz_check(const struct authz *a, const struct attr_src *src,
                                    const char **why)
{
    if (!a)
        return NULL;
    for (size_t i = 0; i < a->ndeny; i++)
        if (rule_matches(&a->deny[i], src)) {
            *why = "denied by policy";
            return a->deny[i].policy;
        }
    if (a->nallow_policies == 0)
        return NULL;
    for (size_t i = 0; i < a->nallow; i++)
        if (rule_matches(&a->allow[i], src))
            return NULL;
    *why = "no ALLOW policy matched";
    /* Any ALLOW policy of the listener names the refusal. */
    return a->allow[0].policy;
}
