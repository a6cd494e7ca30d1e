/* index.c - exact-key hash table and prefix tries for the router. */
#include "router/index.h"

#include <stdlib.h>
#include <string.h>

#include "router/match.h"

/* ---- rule lists --------------------------------------------------------- */

struct rlist {
    uint32_t *v;
    uint32_t n, cap;
};

/* Appends rule to l (which owns its array); 0 or -1 when out of memory. */
static int rlist_add(struct rlist *l, uint32_t rule)
{
    if (l->n && l->v[l->n - 1] == rule)
        return 0;
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 2;
        uint32_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = rule;
    return 0;
}

/* ---- hashing -------------------------------------------------------------- */

/* ASCII lower-case of eight bytes at once: bytes in 'A'..'Z' gain 0x20,
 * everything else (including bytes >= 0x80) is unchanged. */
static inline uint64_t fold8(uint64_t x)
{
    uint64_t low7 = x & 0x7f7f7f7f7f7f7f7fULL;
    uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3fULL; /* 0x80 set where byte >= 'A' */
    uint64_t gt_z = low7 + 0x2525252525252525ULL; /* 0x80 set where byte > 'Z' */
    uint64_t upper = (ge_a ^ gt_z) & ~x & 0x8080808080808080ULL;
    return x | (upper >> 2);
}

static inline uint64_t mix(uint64_t h)
{
    h *= 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 32);
}

/* Word-at-a-time hash of p[0..len) (folded when fold). Key material is the
 * config's, so no keyed hash is needed: lookups can't grow the table. */
static uint64_t hash_key(uint32_t tag, const char *p, size_t len, bool fold)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ ((uint64_t)tag << 32) ^ len, w;
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w, p, 8);
        h = mix(h ^ (fold ? fold8(w) : w));
    }
    if (len) {
        w = 0;
        memcpy(&w, p, len);
        h = mix(h ^ (fold ? fold8(w) : w));
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

/* ---- exact-key hash table ----------------------------------------------- */

struct hent {
    uint64_t hash;
    char *key;        /* NULL = free slot */
    uint32_t len;
    uint32_t tag;
    struct rlist rules;
};

/* Frozen entry: the key bytes and, 4-aligned after them, the rule list
 * sit together in one blob, so a hit costs two cache lines. */
struct fent {
    uint64_t hash;
    uint32_t tag, len;
    uint32_t off;     /* key in blob; FREE_SLOT = free */
    uint32_t n;
};
#define FREE_SLOT UINT32_MAX
#define ALIGN4(x) (((x) + 3u) & ~(size_t)3u)

struct ridx_hash {
    struct hent *t;   /* while building */
    struct fent *f;   /* after ridx_hash_freeze(), same positions */
    unsigned char *blob;
    /* A blocked Bloom filter over the frozen keys, ~16 bits per key: most
     * lookups are for values no rule names (paths, hosts), and the filter
     * answers those from a small, cache-resident array instead of a probe
     * into the big table. */
    uint64_t *bloom;
    size_t bloom_mask;
    size_t cap;       /* power of two */
    size_t n;
};

struct ridx_hash *ridx_hash_new(void)
{
    struct ridx_hash *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->cap = 16;
    h->t = calloc(h->cap, sizeof(*h->t));
    if (!h->t) {
        free(h);
        return NULL;
    }
    return h;
}

/* Frees the build-time entries of h and everything they own. */
static void free_entries(struct ridx_hash *h)
{
    for (size_t i = 0; h->t && i < h->cap; i++) {
        free(h->t[i].key);
        free(h->t[i].rules.v);
    }
    free(h->t);
    h->t = NULL;
}

void ridx_hash_free(struct ridx_hash *h)
{
    if (!h)
        return;
    free_entries(h);
    free(h->f);
    free(h->blob);
    free(h->bloom);
    free(h);
}

/* The two bits of a hash in its filter word. */
static inline uint64_t bloom_bits(uint64_t hash)
{
    return 1ULL << (hash & 63) | 1ULL << ((hash >> 6) & 63);
}

int ridx_hash_freeze(struct ridx_hash *h)
{
    if (!h->t)
        return 0;
    size_t bytes = 0;
    for (size_t i = 0; i < h->cap; i++)
        if (h->t[i].key)
            bytes += ALIGN4(h->t[i].len) + h->t[i].rules.n * sizeof(uint32_t);
    if (bytes >= FREE_SLOT)
        return -1;
    size_t words = 1;
    while (words * 4 < h->n) /* 64-bit words: 16 bits per key */
        words *= 2;
    h->f = malloc(h->cap * sizeof(*h->f));
    h->blob = malloc(bytes ? bytes : 1);
    h->bloom = calloc(words, sizeof(*h->bloom));
    if (!h->f || !h->blob || !h->bloom) {
        free(h->f);
        free(h->blob);
        free(h->bloom);
        h->f = NULL;
        h->blob = NULL;
        h->bloom = NULL;
        return -1;
    }
    h->bloom_mask = words - 1;
    size_t off = 0;
    for (size_t i = 0; i < h->cap; i++) {
        const struct hent *e = &h->t[i];
        struct fent *f = &h->f[i];
        if (!e->key) {
            f->off = FREE_SLOT;
            continue;
        }
        f->hash = e->hash;
        f->tag = e->tag;
        f->len = e->len;
        f->off = (uint32_t)off;
        f->n = e->rules.n;
        h->bloom[(e->hash >> 32) & h->bloom_mask] |= bloom_bits(e->hash);
        memcpy(h->blob + off, e->key, e->len);
        off += ALIGN4(e->len);
        if (e->rules.n)
            memcpy(h->blob + off, e->rules.v, e->rules.n * sizeof(uint32_t));
        off += e->rules.n * sizeof(uint32_t);
    }
    free_entries(h);
    return 0;
}

size_t ridx_hash_size(const struct ridx_hash *h) { return h->n; }

/* Doubles h's build-time table; entries move, their keys and lists stay. 0 or -1. */
static int hash_grow(struct ridx_hash *h)
{
    size_t cap = h->cap * 2;
    struct hent *t = calloc(cap, sizeof(*t));
    if (!t)
        return -1;
    for (size_t i = 0; i < h->cap; i++) {
        if (!h->t[i].key)
            continue;
        size_t j = h->t[i].hash & (cap - 1);
        while (t[j].key)
            j = (j + 1) & (cap - 1);
        t[j] = h->t[i];
    }
    free(h->t);
    h->t = t;
    h->cap = cap;
    return 0;
}

/* p[0..len) (lower-cased when fold) equals the stored key. */
static inline bool bytes_eq(const char *key, const char *p, size_t len, bool fold)
{
    if (!fold)
        return memcmp(key, p, len) == 0;
    for (size_t i = 0; i < len; i++)
        if (match_lower[(unsigned char)p[i]] != (unsigned char)key[i])
            return false;
    return true;
}

/* Borrows e and p: whether e holds (tag, p[0..len)). */
static inline bool key_eq(const struct hent *e, uint64_t hash, uint32_t tag, const char *p,
                          size_t len, bool fold)
{
    return e->hash == hash && e->tag == tag && e->len == len && bytes_eq(e->key, p, len, fold);
}

int ridx_hash_add(struct ridx_hash *h, uint32_t tag, const char *key, size_t len, uint32_t rule)
{
    if (len > UINT32_MAX || !h->t)
        return -1;
    /* keep the load at most 1/2 so probe chains stay short */
    if ((h->n + 1) * 2 > h->cap && hash_grow(h) < 0)
        return -1;
    uint64_t hash = hash_key(tag, key, len, false);
    size_t j = hash & (h->cap - 1);
    for (; h->t[j].key; j = (j + 1) & (h->cap - 1))
        if (key_eq(&h->t[j], hash, tag, key, len, false))
            return rlist_add(&h->t[j].rules, rule);
    struct hent *e = &h->t[j];
    e->key = malloc(len + 1);
    if (!e->key)
        return -1;
    memcpy(e->key, key, len);
    e->key[len] = 0;
    e->hash = hash;
    e->len = (uint32_t)len;
    e->tag = tag;
    memset(&e->rules, 0, sizeof(e->rules));
    h->n++;
    if (rlist_add(&e->rules, rule) < 0)
        return -1; /* the entry stays, empty; lookups skip it */
    return 0;
}

const uint32_t *ridx_hash_get(const struct ridx_hash *h, uint32_t tag, const char *p, size_t len,
                              bool fold, uint32_t *n)
{
    uint64_t hash = hash_key(tag, p, len, fold);
    if (h->f) {
        uint64_t bits = bloom_bits(hash);
        if ((h->bloom[(hash >> 32) & h->bloom_mask] & bits) != bits)
            return NULL;
        for (size_t j = hash & (h->cap - 1); h->f[j].off != FREE_SLOT; j = (j + 1) & (h->cap - 1)) {
            const struct fent *f = &h->f[j];
            if (f->hash == hash && f->tag == tag && f->len == len &&
                bytes_eq((const char *)h->blob + f->off, p, len, fold)) {
                *n = f->n;
                return f->n ? (const uint32_t *)(h->blob + f->off + ALIGN4(len)) : NULL;
            }
        }
        return NULL;
    }
    for (size_t j = hash & (h->cap - 1); h->t[j].key; j = (j + 1) & (h->cap - 1)) {
        const struct hent *e = &h->t[j];
        if (key_eq(e, hash, tag, p, len, fold)) {
            *n = e->rules.n;
            return e->rules.n ? e->rules.v : NULL;
        }
    }
    return NULL;
}

/* ---- tries ------------------------------------------------------------------ */

#define NONE UINT32_MAX

/* Build-time node: one byte per node, children as a sorted sibling chain. */
struct bnode {
    uint32_t child, sib;
    unsigned char byte;
    struct rlist rules;
};

/* Frozen node of the path-compressed tree, one cache line. Nodes exist
 * only where a key ends or paths branch, so a walk touches a handful of
 * nodes even for long keys. The edge into a node is its first byte
 * (first[node], also copied into the parent's kids[]) followed by `len`
 * label bytes, inline in lab[] when short. A node's children are
 * contiguous and sorted by first byte; with few children their first bytes
 * sit in kids[], so a step usually reads just the child's own line. */
#define KIDS_INLINE 20
#define LAB_INLINE 24
struct tnode {
    uint32_t child;
    uint16_t nchild;
    uint16_t len;
    uint32_t off, n;      /* rule list in pool */
    uint32_t label;       /* label in labels[] when len > LAB_INLINE */
    unsigned char kids[KIDS_INLINE];
    unsigned char lab[LAB_INLINE];
};

_Static_assert(sizeof(struct tnode) == 64, "a trie node is one cache line");

struct ridx_trie {
    bool rev;
    struct bnode *b;      /* build nodes, freed by freeze */
    size_t nb, capb;
    struct tnode *t;      /* frozen nodes, t[0] is the root */
    unsigned char *first; /* first byte of the edge into each node */
    size_t nt;
    unsigned char *labels;
    uint32_t *pool;
};

/* A new build node in t (may move t->b); its index, or NONE when out of memory. */
static uint32_t bnode_new(struct ridx_trie *t, unsigned char byte)
{
    if (t->nb == t->capb) {
        size_t cap = t->capb ? t->capb * 2 : 64;
        struct bnode *b = realloc(t->b, cap * sizeof(*b));
        if (!b)
            return NONE;
        t->b = b;
        t->capb = cap;
    }
    struct bnode *n = &t->b[t->nb];
    memset(n, 0, sizeof(*n));
    n->child = n->sib = NONE;
    n->byte = byte;
    return (uint32_t)t->nb++;
}

struct ridx_trie *ridx_trie_new(bool rev)
{
    struct ridx_trie *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->rev = rev;
    if (bnode_new(t, 0) == NONE) {
        free(t);
        return NULL;
    }
    return t;
}

/* Frees t's build nodes and their rule lists. */
static void free_build(struct ridx_trie *t)
{
    for (size_t i = 0; i < t->nb; i++)
        free(t->b[i].rules.v);
    free(t->b);
    t->b = NULL;
    t->nb = t->capb = 0;
}

void ridx_trie_free(struct ridx_trie *t)
{
    if (!t)
        return;
    free_build(t);
    free(t->t);
    free(t->first);
    free(t->labels);
    free(t->pool);
    free(t);
}

size_t ridx_trie_nodes(const struct ridx_trie *t) { return t->b ? t->nb : t->nt; }

int ridx_trie_add(struct ridx_trie *t, const char *key, size_t len, uint32_t rule)
{
    if (!t->b)
        return -1;
    uint32_t cur = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[t->rev ? len - 1 - i : i];
        uint32_t prev = NONE, k = t->b[cur].child;
        while (k != NONE && t->b[k].byte < c) {
            prev = k;
            k = t->b[k].sib;
        }
        if (k == NONE || t->b[k].byte != c) {
            uint32_t nk = bnode_new(t, c); /* may move t->b */
            if (nk == NONE)
                return -1;
            t->b[nk].sib = k;
            if (prev == NONE)
                t->b[cur].child = nk;
            else
                t->b[prev].sib = nk;
            k = nk;
        }
        cur = k;
    }
    return rlist_add(&t->b[cur].rules, rule);
}

int ridx_trie_freeze(struct ridx_trie *t)
{
    if (!t->b)
        return 0;
    size_t nrules = 0;
    for (size_t i = 0; i < t->nb; i++)
        nrules += t->b[i].rules.n;
    /* Breadth first over compressed nodes; queue[i] is the build node
     * where frozen node i's edge starts. Frozen nodes never outnumber build
     * nodes, nor label bytes. */
    uint32_t *queue = malloc(t->nb * sizeof(*queue));
    t->t = aligned_alloc(64, t->nb * sizeof(*t->t));
    t->first = malloc(t->nb);
    t->labels = malloc(t->nb);
    t->pool = malloc((nrules ? nrules : 1) * sizeof(*t->pool));
    if (!queue || !t->t || !t->first || !t->labels || !t->pool) {
        free(queue);
        return -1;
    }
    size_t head = 0, tail = 0, pooled = 0, nlabels = 0;
    memset(t->t, 0, t->nb * sizeof(*t->t));
    queue[tail++] = 0;
    while (head < tail) {
        struct tnode *tn = &t->t[head];
        uint32_t cur = queue[head];
        t->first[head] = t->b[cur].byte;
        tn->label = (uint32_t)nlabels;
        /* absorb the chain of single-child, key-less nodes into the edge
         * (never at the root, whose edge is empty) */
        while (head && !t->b[cur].rules.n && t->b[cur].child != NONE &&
               t->b[t->b[cur].child].sib == NONE) {
            cur = t->b[cur].child;
            t->labels[nlabels++] = t->b[cur].byte;
        }
        head++;
        if (nlabels - tn->label > UINT16_MAX) {
            free(queue);
            return -1;
        }
        tn->len = (uint16_t)(nlabels - tn->label);
        if (tn->len <= LAB_INLINE)
            memcpy(tn->lab, t->labels + tn->label, tn->len);
        tn->child = (uint32_t)tail;
        for (uint32_t k = t->b[cur].child; k != NONE; k = t->b[k].sib) {
            if (tail - tn->child < KIDS_INLINE)
                tn->kids[tail - tn->child] = t->b[k].byte;
            queue[tail++] = k;
        }
        tn->nchild = (uint16_t)(tail - tn->child); /* at most 256 */
        const struct rlist *rl = &t->b[cur].rules;
        tn->off = (uint32_t)pooled;
        tn->n = rl->n;
        if (rl->n)
            memcpy(t->pool + pooled, rl->v, rl->n * sizeof(uint32_t));
        pooled += rl->n;
    }
    t->nt = tail;
    free(queue);
    free_build(t);
    return 0;
}

void ridx_walk_init(struct ridx_walk *w, const struct ridx_trie *t, const char *p, size_t len,
                    bool fold)
{
    w->t = t;
    w->p = (const unsigned char *)p;
    w->len = len;
    w->pos = 0;
    w->node = t->t ? 0 : NONE;
    w->fold = fold;
}

/* Byte i of the value in walk order. */
static inline unsigned char walk_byte(const struct ridx_walk *w, size_t i)
{
    unsigned char c = w->p[w->t->rev ? w->len - 1 - i : i];
    return w->fold ? match_lower[c] : c;
}

/* The child of nd whose edge starts with c, or NONE. */
static inline uint32_t child_of(const struct ridx_trie *t, const struct tnode *nd, unsigned char c)
{
    uint32_t lo = 0, hi = nd->nchild;
    if (hi <= KIDS_INLINE) {
        for (; lo < hi; lo++)
            if (nd->kids[lo] == c)
                return nd->child + lo;
        return NONE;
    }
    const unsigned char *f = t->first + nd->child;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (f[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nd->nchild && f[lo] == c ? nd->child + lo : NONE;
}

const uint32_t *ridx_walk_next(struct ridx_walk *w, uint32_t *n)
{
    const struct ridx_trie *t = w->t;
    while (w->node != NONE) {
        const struct tnode *nd = &t->t[w->node];
        /* step to the child first, so the next call resumes there; a value
         * ending inside an edge can't have longer keys as prefixes */
        w->node = NONE;
        if (w->pos < w->len) {
            uint32_t k = child_of(t, nd, walk_byte(w, w->pos));
            if (k != NONE) {
                const struct tnode *kn = &t->t[k];
                size_t at = w->pos + 1;
                if (kn->len <= w->len - at) {
                    const unsigned char *lab =
                        kn->len <= LAB_INLINE ? kn->lab : t->labels + kn->label;
                    uint32_t j = 0;
                    while (j < kn->len && lab[j] == walk_byte(w, at + j))
                        j++;
                    if (j == kn->len) {
                        w->node = k;
                        w->pos = at + kn->len;
                    }
                }
            }
        }
        if (nd->n) {
            *n = nd->n;
            return t->pool + nd->off;
        }
    }
    return NULL;
}
