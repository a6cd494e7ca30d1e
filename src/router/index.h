/* index.h - the router's lookup structures (private to src/router).
 *
 * Both map strings to sorted lists of rule ids:
 *   ridx_hash  exact keys: (tag, bytes) -> rules; the tag says which
 *              attribute and which view of its value the key belongs to.
 *   ridx_trie  prefixes (or suffixes, read backwards) -> rules; a walk
 *              yields the list of every key that is a prefix of a value.
 * Rules must be added in ascending order so lists come out sorted. Both are
 * built single-threaded, then only read, from any number of threads. */
#ifndef STRAND_ROUTER_INDEX_H
#define STRAND_ROUTER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ridx_hash;

/* A new empty table; caller frees with ridx_hash_free(). NULL when out of memory. */
struct ridx_hash *ridx_hash_new(void);
/* Frees h and all it owns. NULL is allowed. */
void ridx_hash_free(struct ridx_hash *h);
/* Appends rule to the list of (tag, key[0..len)); the key is copied. A
 * repeat of the list's last rule is dropped. 0, or -1 when out of memory. */
int ridx_hash_add(struct ridx_hash *h, uint32_t tag, const char *key, size_t len, uint32_t rule);
/* Packs the table for lookups; no adds afterwards. 0, or -1 when out of
 * memory (the table then stays usable as it was). */
int ridx_hash_freeze(struct ridx_hash *h);
/* The list of (tag, p[0..len)), lower-casing p first when fold (keys added
 * for folded lookups must be lower case). Returns a pointer into h and sets
 * *n, or NULL when there is none. */
const uint32_t *ridx_hash_get(const struct ridx_hash *h, uint32_t tag, const char *p, size_t len,
                              bool fold, uint32_t *n);
/* Number of distinct keys in h (borrowed). */
size_t ridx_hash_size(const struct ridx_hash *h);

struct ridx_trie;

/* A new trie; rev makes it a suffix trie (keys and values read from their
 * last byte). Caller frees with ridx_trie_free(). NULL when out of memory. */
struct ridx_trie *ridx_trie_new(bool rev);
/* Frees t and all it owns. NULL is allowed. */
void ridx_trie_free(struct ridx_trie *t);
/* Adds key[0..len) -> rule; before ridx_trie_freeze() only. 0 or -1. */
int ridx_trie_add(struct ridx_trie *t, const char *key, size_t len, uint32_t rule);
/* Compacts the trie for lookups; no adds afterwards. 0 or -1. */
int ridx_trie_freeze(struct ridx_trie *t);
/* Number of nodes of t (borrowed), for sizing reports. */
size_t ridx_trie_nodes(const struct ridx_trie *t);

/* A walk over the keys that are prefixes (suffixes) of one value, shortest
 * first. Lives on the caller's stack; borrows the trie and the value. */
struct ridx_walk {
    const struct ridx_trie *t;
    const unsigned char *p;
    size_t len, pos;
    uint32_t node;
    bool fold;
};

/* Starts w (caller's storage) over p[0..len) in t; both borrowed. */
void ridx_walk_init(struct ridx_walk *w, const struct ridx_trie *t, const char *p, size_t len,
                    bool fold);
/* The next non-empty rule list along the value (pointer into the trie), or
 * NULL at the end. */
const uint32_t *ridx_walk_next(struct ridx_walk *w, uint32_t *n);

#endif
