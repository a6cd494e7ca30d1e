/* router.h - the compiled routing table of one listener.
 *
 * router_build() turns the config's routes into an ordered list of rules
 * (routes in config order, rules in route order) and an index over them, so
 * matching costs about the same with 10 rules or 10,000: each rule is filed
 * under one of its conditions (an exact value, a prefix, a suffix, a
 * hostname), the message's values for the indexed attributes are looked up
 * once, and only the rules found there plus the few unindexable ones are
 * tested - always in ascending rule order, so the first rule in config
 * order whose conditions all hold wins, exactly as a linear scan would.
 *
 * A router is immutable after build and shared read-only by every worker
 * thread; router_match() keeps its scratch on the stack. It borrows the
 * config (rules point at cfg_rule/cfg_route), so the config must outlive it. */
#ifndef STRAND_ROUTER_H
#define STRAND_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "router/attr.h"

struct router;      /* opaque, immutable after build */
struct route_rule;  /* a compiled rule, owned by its router */

/* Builds the table of listener_name from every cfg_route whose listeners
 * include it. A route's hostnames become an `authority` condition (host
 * without :port, case-insensitive, "*.example.com" matches any name ending
 * in ".example.com"). A listener no route attaches to gets an empty router.
 * Borrows cfg (must outlive the router); caller frees with router_free().
 * NULL on error with err = "file:line: reason". */
struct router *router_build(const struct config *cfg, const char *listener_name, char *err,
                            size_t errlen);
/* Frees r and everything it owns (not the config). NULL is allowed. */
void router_free(struct router *r);

/* The first rule (in config order) whose conditions all hold for src, or
 * NULL. The result points into r. Thread-safe on a shared router. */
const struct route_rule *router_match(const struct router *r, const struct attr_src *src);

/* Writes a short human explanation of router_match(r, src) into out
 * (NUL-terminated, truncated to outlen): the rule that matched, and for the
 * earlier rules the index offered as candidates, the condition that failed.
 * Returns the matched rule's index, or -1 when none matched. */
int router_explain(const struct router *r, const struct attr_src *src, char *out, size_t outlen);

/* Number of rules in r (borrowed). */
size_t router_nrules(const struct router *r);
/* Rule i (< router_nrules) in match order; points into r. */
const struct route_rule *router_rule(const struct router *r, size_t i);

/* The rule's config and route; point into the config. */
const struct cfg_rule *route_rule_cfg(const struct route_rule *rr);
const struct cfg_route *route_rule_route(const struct route_rule *rr);
/* Dense 0..n-1 within the router (= match order), for per-rule arrays. */
unsigned route_rule_index(const struct route_rule *rr);
/* The rule's name, or "<route>/<index in route>" when it has none; points into r. */
const char *route_rule_name(const struct route_rule *rr);
/* Tests every condition of rr against src, ignoring the index and the other
 * rules: the reference a linear scan would use. */
int route_rule_test(const struct route_rule *rr, const struct attr_src *src);

/* Picks a backend by weight for a uniformly random 32-bit value: backend i
 * is chosen for a share weight_i / sum(weights) of all values. Returns the
 * index into route_rule_cfg(rr)->backends, or -1 when the rule has no
 * backends or all weights are 0. */
int route_pick_backend(const struct route_rule *rr, uint32_t random);

#endif
