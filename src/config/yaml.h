/* yaml.h - a small YAML document tree built from libyaml's event parser.
 *
 * The config loader needs random access (look a key up, list the unknown
 * ones) and a line number on every node, key nodes included. libyaml's own
 * document API loses key positions in practice and happily expands aliases,
 * so this builds a minimal tree instead: scalars, sequences and mappings.
 *
 * Hostile input is bounded here, once, for every caller:
 *  - anchors, aliases and tags are rejected (aliases are how "billion laughs"
 *    documents blow up; the config format has no use for any of the three);
 *  - the number of nodes is taken from a caller-owned budget shared by every
 *    file of one load, and nesting is limited, so neither memory nor the
 *    stack of a recursive walk can be exhausted;
 *  - duplicate mapping keys and non-scalar keys are errors;
 *  - scalars never contain NUL bytes (YAML's "\0" escape is rejected), so
 *    every scalar is a plain C string. */
#ifndef STRAND_CONFIG_YAML_H
#define STRAND_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>

enum ynode_kind { YNODE_SCALAR = 0, YNODE_SEQ, YNODE_MAP };

struct ynode {
    enum ynode_kind kind;
    int line;             /* 1-based line of the node's first character */
    int key_line;         /* line of the key whose value this is, else line:
                           * "missing key" errors point at `spec:`, not at
                           * the first key below it */
    bool plain;           /* scalar written without quotes or |, > style */
    char *str;            /* SCALAR: its text, NUL-terminated; else NULL */
    size_t len;           /* SCALAR: strlen(str) */
    struct ynode **items; /* SEQ: n items; MAP: 2n nodes, key then value */
    size_t n;             /* SEQ: items; MAP: pairs */
    size_t nitems;        /* filled slots of items (2n for a complete MAP) */
    size_t cap;           /* allocated slots of items */
};

struct ydoc {
    struct ynode *root; /* NULL for an empty document */
    int line;           /* 1-based line where the document starts */
};

/* Every document of one YAML stream (one file). */
struct ystream {
    struct ydoc *docs;
    size_t ndocs;
};

#define YTREE_MAX_DEPTH 64

/* Parses data (len bytes, need not be NUL-terminated) into out, which the
 * caller zero-initialises and always frees with ytree_free, success or not.
 * *budget is the number of nodes still allowed and is decremented. `name` is
 * borrowed for error messages only. 0 on success; -1 with "name:line: reason"
 * in err. */
int ytree_parse(const char *name, const char *data, size_t len, size_t *budget,
                struct ystream *out, char *err, size_t errlen);

/* Frees every document and node of s (not s itself). NULL is allowed. */
void ytree_free(struct ystream *s);

/* The value stored under `key` in mapping `map`, or NULL if absent or if map
 * is not a mapping; the returned node is borrowed from map. */
const struct ynode *ytree_get(const struct ynode *map, const char *key);

/* The key node paired with `key` in map (for its line), or NULL; borrowed. */
const struct ynode *ytree_key(const struct ynode *map, const char *key);

/* True for a plain scalar YAML reads as null: empty, "~" or "null". Borrows n. */
bool ytree_is_null(const struct ynode *n);

/* "a string", "a sequence", "a mapping" or "null", for error messages; the
 * result is a static string, n is borrowed. */
const char *ytree_describe(const struct ynode *n);

#endif
