/* match.h - one compiled condition over one attribute.
 *
 * A struct cfg_cond (or a route's hostnames) compiles into an immutable
 * matcher: operands copied (lower-cased for ignoreCase), regexes compiled
 * and JIT-compiled once. Matching only reads the compiled state, so one
 * matcher is shared by every worker thread; the per-match scratch PCRE2
 * needs (match data) lives in thread-local storage.
 *
 * Semantics: the test holds when any value of the attribute passes (list
 * attributes); `present` holds when there is at least one value, `absent`
 * when there is none; `invert` negates the whole result, so an inverted
 * exact holds when the attribute is absent. ignoreCase folds ASCII case for
 * exact/prefix/suffix/in and compiles a regex caseless.
 *
 * For the router's index a matcher also describes itself as "hints": keys
 * that a value must hit for the condition to hold at all. */
#ifndef STRAND_MATCH_H
#define STRAND_MATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "router/attr.h"

struct match_cond;

/* Compiles c. The result keeps a pointer to c (for explanations): the
 * config must outlive it. Caller frees with match_free(). NULL on error with
 * err = "file:line: reason" (e.g. "bad regex: <pcre2 message> at offset N"). */
struct match_cond *match_compile(const struct cfg_cond *c, char *err, size_t errlen);

/* Compiles a route's hostnames into a condition on `authority`: holds when
 * the host (authority without :port, ASCII case-insensitive) equals one of
 * them, or for "*.example.com" ends with ".example.com". hosts are copied.
 * Caller frees with match_free(); NULL on error with err set from where. */
struct match_cond *match_compile_hosts(char *const *hosts, size_t n, struct cfg_where where,
                                       char *err, size_t errlen);

/* Frees m and everything it owns. NULL is allowed. */
void match_free(struct match_cond *m);

/* Tests already fetched values vals[0..n) (borrowed). */
bool match_test(const struct match_cond *m, const attr_val *vals, int n);

/* Fetches the attribute from src and tests it. */
bool match_eval(const struct match_cond *m, const struct attr_src *src);

/* The attribute tested; points into m. */
const struct attr_key *match_key(const struct match_cond *m);

/* The source condition; NULL for hostnames. Points into the config. */
const struct cfg_cond *match_cfg(const struct match_cond *m);

/* Borrows m: true for conditions that cost a regex run (tested last). */
bool match_is_costly(const struct match_cond *m);

/* Writes a short description ("path prefix \"/api\"", "hostnames [a, b]")
 * into out (NUL-terminated, truncated); returns what snprintf returns. */
int match_describe(const struct match_cond *m, char *out, size_t outlen);

/* How a hint key is compared with a value. */
enum match_view {
    MATCH_VIEW_RAW = 0,  /* the value as is */
    MATCH_VIEW_FOLD,     /* the value ASCII lower-cased; keys are lower case */
    MATCH_VIEW_HOST,     /* match_host_len() of the value, lower-cased */
    MATCH_VIEW_COUNT
};

enum match_hint_kind {
    MATCH_HINT_EXACT = 0, /* view(value) == key */
    MATCH_HINT_PREFIX,    /* view(value) starts with key */
    MATCH_HINT_SUFFIX,    /* view(value) ends with key */
};

struct match_hint {
    enum match_hint_kind kind;
    enum match_view view;
    const char *key;  /* points into m */
    size_t len;
};

/* Number of hints; 0 when the condition can't be indexed (inverted,
 * present/absent, unanchored regex ...). When it is n > 0, the condition
 * can only hold if some value of the attribute satisfies at least one of
 * hints 0..n-1. Regexes anchored with a literal start ("^/api/v[0-9]")
 * give a prefix hint. */
size_t match_nhints(const struct match_cond *m);
/* Hint i (< match_nhints); its key points into m. */
struct match_hint match_hint(const struct match_cond *m, size_t i);
/* True when a value satisfying any hint satisfies the condition itself
 * (exact, prefix, suffix, in): a rule the index found through such a
 * condition need not test it again. False for regexes and hostnames. */
bool match_hints_imply(const struct match_cond *m);

/* Length of the host part of an authority: "Example.com:8080" -> 11,
 * "[::1]:80" -> 5; unchanged when there is no port. */
size_t match_host_len(const char *p, size_t len);

/* ASCII lower-case table shared by the router. */
extern const unsigned char match_lower[256];

#endif
