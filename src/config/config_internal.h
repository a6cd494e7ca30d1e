/* config_internal.h - shared by the loader's files only (never include it
 * from outside src/config/).
 *
 * A load runs with one `struct cload`: the config being filled, the current
 * file name and the caller's error buffer. Every helper returns 0 or -1;
 * the first failure writes "file:line: reason" and everything above it just
 * unwinds, so err always holds the first problem found. */
#ifndef STRAND_CONFIG_INTERNAL_H
#define STRAND_CONFIG_INTERNAL_H

#include "config/config.h"
#include "config/yaml.h"

#include <stdarg.h>

/* Limits a hostile or mistaken file cannot exceed. */
#define CFG_MAX_FILE_BYTES (16u * 1024 * 1024)
#define CFG_MAX_NODES 1000000u
#define CFG_MAX_NAME 253
#define CFG_MAX_DURATION_MS (30ull * 24 * 3600 * 1000) /* 30 days */
#define CFG_MAX_WEIGHT 1000000u
#define CFG_MAX_BODY (1u * 1024 * 1024)
/* Counts. Besides keeping configs sane they keep every check that is
 * quadratic in a list's length (duplicates) cheap on hostile input. */
#define CFG_MAX_LISTENERS 1024u
#define CFG_MAX_CLUSTERS 10000u
#define CFG_MAX_ROUTES 10000u
#define CFG_MAX_ENDPOINTS 1000u  /* per cluster */
#define CFG_MAX_RULES 1000u      /* per route */
#define CFG_MAX_LIST 100u        /* parents, targets, hostnames, conditions,
                                  * backends, `in` values, header operations of one
                                  * kind, the sni names of one certificate, alpn
                                  * protocols */
#define CFG_MAX_CERTS 100u       /* certificates of one listener */
#define CFG_MAX_AUTHZ 10000u     /* AuthorizationPolicies */
#define CFG_MAX_AUTHZ_RULES 100u /* rules of one AuthorizationPolicy */
/* HTTPRoute lists use the Gateway API's own maxima; with them, turning each
 * match into a rule can multiply a rule's size by at most 64. */
#define GW_MAX_LIST 16u
#define GW_MAX_PARENTS 32u
#define GW_MAX_MATCHES 64u

struct cload {
    struct config *cfg;
    const char *file; /* the file being read; points into cfg->files */
    char *err;
    size_t errlen;
    struct cfg_where proxy_where; /* the Proxy document, once seen */
    size_t cap_listeners, cap_clusters, cap_routes, cap_authz, cap_ratelimits;
    size_t cap_wasm;
    int *listener_addr_lines; /* line of each listener's address, for errors
                               * found after all files are read */
    /* Sorted by name once pass 1 is done: routes look names up in these. */
    const struct cfg_listener **listener_index;
    const struct cfg_cluster **cluster_index;
};

/* Makes room for element n of an array of n elements (capacity *cap) and
 * zeroes it. Returns the possibly moved array, which the caller stores
 * (and which still owns everything), or NULL with arr untouched. */
void *cfg_grow(void *arr, size_t n, size_t *cap, size_t elem);

/* Formats "file:line: reason" into cl->err (control characters in the
 * reason become '?'); always returns -1. Borrows cl. */
int cl_fail(struct cload *cl, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks n is a mapping whose keys all appear in `allowed` (NULL-ended);
 * `what` names it in errors ("Listener spec"). Borrows everything. */
int cl_map(struct cload *cl, const struct ynode *n, const char *what,
           const char *const *allowed);

/* Checks n is a sequence of at most max items (and, with nonempty, at least
 * one). Borrows. */
int cl_seq(struct cload *cl, const struct ynode *n, const char *what, bool nonempty,
           size_t max);

/* Returns map[key] or fails with "<what>: missing required key" at the
 * line of the key owning map (NULL). Borrowed result. */
const struct ynode *cl_need(struct cload *cl, const struct ynode *map, const char *key,
                            const char *what);

/* A non-null, non-empty scalar; borrowed text via *out. */
int cl_scalar(struct cload *cl, const struct ynode *n, const char *what, const char **out);

/* A non-null scalar that may be empty ("" is a valid header value or body);
 * *out is a new copy the caller owns (on success only). */
int cl_strdup(struct cload *cl, const struct ynode *n, const char *what, char **out);

/* A plain decimal integer in [min, max]. Borrows n. */
int cl_u32(struct cload *cl, const struct ynode *n, const char *what, uint32_t min,
           uint32_t max, uint32_t *out);

/* Plain true/false (any case). Borrows n. */
int cl_bool(struct cload *cl, const struct ynode *n, const char *what, bool *out);

/* A duration ("5s") in [min, max] milliseconds. Borrows n. */
int cl_duration(struct cload *cl, const struct ynode *n, const char *what, uint64_t min,
                uint64_t max, uint64_t *out);

/* Resource names: [a-z0-9]([-a-z0-9.]*[a-z0-9])?, at most CFG_MAX_NAME. */
int cl_name(struct cload *cl, const struct ynode *n, const char *what, char **out);

/* Address parse with a reason on failure; *why is static. Borrows s. */
int cfg_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                   const char **why);

/* True when a and b name the same socket, or one is the wildcard address of
 * the other's family and port (the second bind would fail). Borrows both. */
bool cfg_addr_conflict(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* HTTP token check (RFC 9110 tchar). Borrows s. */
bool cfg_is_token(const char *s);

/* Header value check: no control characters but HTAB. Borrows s. */
bool cfg_is_header_value(const char *s);

/* ASCII lower-casing in place. Borrows s. */
void cfg_lower(char *s);

/* Header name from n: a token, lower-cased, newly allocated into *out. */
int cl_header_name(struct cload *cl, const struct ynode *n, const char *what, char **out);

/* DNS host name: labels of letters, digits and '-', optionally led by "*."
 * when wildcard is true; no port, at most 253 characters. Borrows s. */
bool cfg_is_hostname(const char *s, bool wildcard);

/* "tcp", "http" or "tls", as written in `protocol:`. Static result. */
const char *cfg_proto_name(enum cfg_proto proto);

/* Attribute names (path, header.x, ...): checks n against the attributes a
 * listener of protocol `proto` offers and returns the normalised (header
 * names lower-cased) copy in *out, owned by the caller. */
int cl_attribute(struct cload *cl, const struct ynode *n, const char *what,
                 enum cfg_proto proto, char **out);

/* The same for something that applies on listeners of several protocols at
 * once: protos is a non-empty set of CFG_PROTO_BIT()s and the attribute
 * must be offered on each of them. */
#define CFG_PROTO_BIT(p) (1u << (unsigned)(p))
int cl_attribute_on(struct cload *cl, const struct ynode *n, const char *what, unsigned protos,
                    char **out);

/* Route-time lookups by name through the pass-1 indexes; the results point
 * into cl->cfg, NULL when absent. Borrow name. */
const struct cfg_listener *cl_listener(const struct cload *cl, const char *name);
const struct cfg_cluster *cl_cluster(const struct cload *cl, const char *name);

/* True when listeners of protocol `proto` offer the (valid, normalised)
 * attribute attr. Borrows attr. */
bool cfg_attr_offered(const char *attr, enum cfg_proto proto);

/* spec.tls of a Listener / Cluster (config_tls.c). Borrow the node; what
 * they store is owned by l / c (and freed by config_free, also after a
 * failure). The listener's protocol must be set already. */
int cfg_load_listener_tls(struct cload *cl, struct cfg_listener *l, const struct ynode *tls);
/* h2: the cluster speaks HTTP/2, so ALPN defaults to ["h2"]. */
int cfg_load_cluster_tls(struct cload *cl, struct cfg_cluster_tls *t, const struct ynode *tls,
                         bool h2);

/* Free what the TLS settings own (not the structs). Take ownership. */
void cfg_listener_tls_free(struct cfg_listener_tls *t);
void cfg_cluster_tls_free(struct cfg_cluster_tls *t);

/* Per-kind parsers (config_resources.c, config_route.c, config_httproute.c,
 * config_authz.c).
 * Each borrows the nodes; the objects they add are owned by cl->cfg. `line`
 * is the document's line, `name` its validated metadata.name node. */
int cfg_load_proxy(struct cload *cl, int line, const struct ynode *spec);
int cfg_load_listener(struct cload *cl, int line, const struct ynode *name,
                      const struct ynode *spec);
int cfg_load_cluster(struct cload *cl, int line, const struct ynode *name,
                     const struct ynode *spec);
int cfg_load_route(struct cload *cl, int line, const struct ynode *name,
                   const struct ynode *spec);
int cfg_load_httproute(struct cload *cl, int line, const struct ynode *name,
                       const struct ynode *spec);
int cfg_load_authz(struct cload *cl, int line, const struct ynode *name,
                   const struct ynode *spec);
/* spec.targets (listener names) of AuthorizationPolicy and RateLimit into
 * *list / *n, owned by the caller's struct also after a failure; *protos
 * gets the set of the listeners' protocols. Borrows seq. */
int cfg_load_targets(struct cload *cl, const struct ynode *seq, char ***list, size_t *n,
                     unsigned *protos);
int cfg_load_ratelimit(struct cload *cl, int line, const struct ynode *name,
                       const struct ynode *spec);
/* WasmPlugin (config_wasm.c): reads and checks the module file now;
 * cfg_check_wasm checks the routes once every Route of every file is
 * loaded. */
int cfg_load_wasm(struct cload *cl, int line, const struct ynode *name,
                  const struct ynode *spec);
int cfg_check_wasm(struct cload *cl);

/* Route helpers shared by Route and HTTPRoute (config_route.c). */

/* Appends a zeroed route named by a copy of `name` (which must be unique
 * among routes, else an error at line). The route is owned by cl->cfg. */
struct cfg_route *cfg_route_new(struct cload *cl, int line, const char *name);

/* Resolves one listener-name node (`what` names it in errors: "parent")
 * to a loaded Listener, checks it is not among list[0..*n) already and
 * appends a copy of the name to list, which has room for it; the copy is
 * owned by the caller's struct, also after a failure. Returns the listener
 * (a pointer into cl->cfg) or NULL after an error. Borrows name. */
const struct cfg_listener *cfg_listener_ref(struct cload *cl, const struct ynode *name,
                                            const char *what, char **list, size_t *n);

/* Fills route->listeners from a sequence of listener-name nodes; `names`
 * lists the nodes (borrowed), *proto receives their (common) protocol. */
int cfg_route_parents(struct cload *cl, struct cfg_route *r, const struct ynode *const *names,
                      size_t n, enum cfg_proto *proto);

/* Parses a hostnames sequence (at most max) into route->hostnames; only
 * http routes have them. Borrows node. */
int cfg_route_hostnames(struct cload *cl, struct cfg_route *r, const struct ynode *node,
                        enum cfg_proto proto, size_t max);

/* Rule defaults (retry budget, names); rule owned by its route. */
int cfg_rule_init(struct cload *cl, struct cfg_route *r, struct cfg_rule *rule, size_t index,
                  int line);

/* One Route-style match condition (a mapping: attribute, one operator,
 * invert, ignoreCase), validated and appended to *conds / *nconds, which
 * the caller's struct owns, also after a failure. The attribute must be
 * offered on every protocol in protos (CFG_PROTO_BIT()s). Borrows y. */
int cfg_load_cond(struct cload *cl, struct cfg_cond **conds, size_t *nconds,
                  const struct ynode *y, unsigned protos);

/* Frees n conditions and the array; takes ownership of both. */
void cfg_conds_free(struct cfg_cond *conds, size_t n);

/* Adds a condition to rule; attr and value are taken over (and freed on
 * failure too). */
int cfg_rule_add_cond(struct cload *cl, struct cfg_rule *rule, int line, char *attr,
                      enum cfg_match_op op, char *value);

/* Validates and adds a header op; name/value are taken over (freed on
 * failure too). kind: 's'et, 'a'dd or 'r'emove (value NULL). */
int cfg_header_op(struct cload *cl, struct cfg_header_ops *ops, int line, char kind, char *name,
                  char *value);
/* A `remove:` list of header names (at most max) into ops. Borrows seq. */
int cfg_header_removes(struct cload *cl, const struct ynode *seq, size_t max,
                       struct cfg_header_ops *ops);

/* Validates a regular expression by compiling it with PCRE2. Borrows. */
int cfg_check_regex(struct cload *cl, int line, const char *attr, const char *re);

/* Checks backend `cluster` exists and appends it with weight; proto is the
 * route's listener protocol. The name is borrowed. */
int cfg_rule_add_backend(struct cload *cl, struct cfg_rule *rule, int line, const char *cluster,
                         uint32_t weight, enum cfg_proto proto);

/* Validates a rewrite prefix and stores a copy. Borrows s. */
int cfg_rule_rewrite(struct cload *cl, struct cfg_rule *rule, int line, const char *s);

/* Checks that apply once a rule (r->rules[index]) is complete: a unique
 * name, backends xor directResponse, weights, rewrite. Borrows everything. */
int cfg_rule_finish(struct cload *cl, const struct cfg_route *r, struct cfg_rule *rule,
                    size_t index);

/* Frees what a rule owns (not the rule). Takes ownership of its members. */
void cfg_rule_free(struct cfg_rule *rule);

#endif
