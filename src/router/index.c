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

struct ridx_hash {
    struct hent *t;
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

void ridx_hash_free(struct ridx_hash *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->cap; i++) {
        free(h->t[i].key);
        free(h->t[i].rules.v);
    }
    free(h->t);
    free(h);
}

size_t ridx_hash_size(const struct ridx_hash *h) { return h->n; }

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

static inline bool key_eq(const struct hent *e, uint64_t hash, uint32_t tag, const char *p,
                          size_t len, bool fold)
{
    if (e->hash != hash || e->tag != tag || e->len != len)
        return false;
    if (!fold)
        return memcmp(e->key, p, len) == 0;
    for (size_t i = 0; i < len; i++)
        if (match_lower[(unsigned char)p[i]] != (unsigned char)e->key[i])
            return false;
    return true;
}

int ridx_hash_add(struct ridx_hash *h, uint32_t tag, const char *key, size_t len, uint32_t rule)
{
    if (len > UINT32_MAX)
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

/* Build-time node: children as a sorted sibling chain. */
struct bnode {
    uint32_t child, sib;
    unsigned char byte;
    struct rlist rules;
};

/* Frozen node: a 256-bit child bitmap; child for byte b is at
 * child + (number of set bits below b), so a step costs one popcount. */
struct tnode {
    uint64_t bm[4];
    uint32_t child;
    uint16_t pre[4];  /* set bits in bm[0..i) */
    uint32_t off, n;  /* rule list in pool */
};

struct ridx_trie {
    bool rev;
    struct bnode *b;  /* build nodes, freed by freeze */
    size_t nb, capb;
    struct tnode *t;  /* frozen nodes, t[0] is the root */
    size_t nt;
    uint32_t *pool;
};

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
    /* order[] is the BFS order: a node's children get consecutive slots */
    uint32_t *order = malloc(t->nb * sizeof(*order));
    t->t = calloc(t->nb, sizeof(*t->t));
    t->pool = malloc((nrules ? nrules : 1) * sizeof(*t->pool));
    if (!order || !t->t || !t->pool) {
        free(order);
        return -1;
    }
    size_t head = 0, tail = 0, pooled = 0;
    order[tail++] = 0;
    while (head < tail) {
        uint32_t bi = order[head];
        struct tnode *tn = &t->t[head];
        head++;
        const struct bnode *bn = &t->b[bi];
        tn->child = (uint32_t)tail;
        for (uint32_t k = bn->child; k != NONE; k = t->b[k].sib) {
            unsigned char c = t->b[k].byte;
            tn->bm[c >> 6] |= 1ULL << (c & 63);
            order[tail++] = k;
        }
        tn->pre[0] = 0;
        for (int w = 1; w < 4; w++)
            tn->pre[w] = (uint16_t)(tn->pre[w - 1] + __builtin_popcountll(tn->bm[w - 1]));
        tn->off = (uint32_t)pooled;
        tn->n = bn->rules.n;
        if (bn->rules.n)
            memcpy(t->pool + pooled, bn->rules.v, bn->rules.n * sizeof(uint32_t));
        pooled += bn->rules.n;
    }
    t->nt = t->nb;
    free(order);
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

const uint32_t *ridx_walk_next(struct ridx_walk *w, uint32_t *n)
{
    const struct ridx_trie *t = w->t;
    while (w->node != NONE) {
        const struct tnode *nd = &t->t[w->node];
        /* step to the child first, so the next call resumes there */
        w->node = NONE;
        if (w->pos < w->len) {
            unsigned char c = w->p[t->rev ? w->len - 1 - w->pos : w->pos];
            if (w->fold)
                c = match_lower[c];
            uint64_t word = nd->bm[c >> 6], bit = 1ULL << (c & 63);
            if (word & bit) {
                w->node = nd->child + nd->pre[c >> 6] + (uint32_t)__builtin_popcountll(word & (bit - 1));
                w->pos++;
            }
        }
        if (nd->n) {
            *n = nd->n;
            return t->pool + nd->off;
        }
    }
    return NULL;
}
