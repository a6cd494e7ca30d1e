/* yaml.c - builds the ynode tree of yaml.h from libyaml events.
 *
 * The build is iterative (an explicit stack of open containers), so the
 * depth limit protects our later recursive walks rather than this code.
 * Every node is attached to its parent (or to its document) the moment it
 * is created; an error at any point therefore leaves a well-formed partial
 * tree that ytree_free releases completely. */
#include "config/yaml.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct ybuild {
    const char *name;
    const char *data;
    size_t len;
    char *err;
    size_t errlen;
    size_t *budget;
    struct ystream *out;
    struct ynode *stack[YTREE_MAX_DEPTH];
    int depth;
};

static int yb_fail(struct ybuild *b, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "name:line: reason" into b->err; always returns -1. Borrows b. */
static int yb_fail(struct ybuild *b, int line, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (b->errlen > 0)
        snprintf(b->err, b->errlen, "%s:%d: %s", b->name, line, reason);
    return -1;
}

/* Frees n and everything below it. Takes ownership of n (NULL allowed).
 * Recursion is bounded by YTREE_MAX_DEPTH. */
static void ynode_free(struct ynode *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nitems; i++)
        ynode_free(n->items[i]);
    free(n->items);
    free(n->str);
    free(n);
}

/* Frees every document of s; s itself is the caller's. */
void ytree_free(struct ystream *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ndocs; i++)
        ynode_free(s->docs[i].root);
    free(s->docs);
    s->docs = NULL;
    s->ndocs = 0;
}

/* Appends child to parent's items; parent keeps ownership on success, the
 * caller keeps it on failure (-1, out of memory). Borrows both. */
static int ynode_append(struct ynode *parent, struct ynode *child)
{
    if (parent->nitems == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        struct ynode **items = realloc(parent->items, cap * sizeof(*items));
        if (items == NULL)
            return -1;
        parent->items = items;
        parent->cap = cap;
    }
    parent->items[parent->nitems++] = child;
    return 0;
}

/* qsort order for duplicate detection: by text, then by line. */
static int key_cmp(const void *a, const void *b)
{
    const struct ynode *x = *(const struct ynode *const *)a;
    const struct ynode *y = *(const struct ynode *const *)b;
    int c = strcmp(x->str, y->str);
    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

/* Finishes a mapping: sets n and rejects duplicate keys, reporting the
 * earliest repeated key. Sorting keeps a 100k-key mapping cheap. Borrows. */
static int ymap_close(struct ybuild *b, struct ynode *map)
{
    map->n = map->nitems / 2;
    if (map->n < 2)
        return 0;
    struct ynode **keys = malloc(map->n * sizeof(*keys));
    if (keys == NULL)
        return yb_fail(b, map->line, "out of memory");
    for (size_t i = 0; i < map->n; i++)
        keys[i] = map->items[2 * i];
    qsort(keys, map->n, sizeof(*keys), key_cmp);
    const struct ynode *dup = NULL;
    for (size_t i = 1; i < map->n; i++) {
        if (strcmp(keys[i - 1]->str, keys[i]->str) == 0 &&
            (dup == NULL || keys[i]->line < dup->line))
            dup = keys[i];
    }
    int rc = 0;
    if (dup != NULL)
        rc = yb_fail(b, dup->line, "duplicate key '%s'", dup->str);
    free(keys);
    return rc;
}

/* Creates a node for a scalar/sequence/mapping start event and links it into
 * the tree (which then owns it). Borrows ev. */
static int yb_node(struct ybuild *b, const yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    enum ynode_kind kind;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        kind = YNODE_SCALAR;
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        kind = YNODE_SEQ;
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    default:
        kind = YNODE_MAP;
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    }
    if (anchor != NULL)
        return yb_fail(b, line, "YAML anchors (&%s) are not supported; write the value out",
                       (const char *)anchor);
    if (tag != NULL)
        return yb_fail(b, line, "YAML tags (%s) are not supported", (const char *)tag);
    if (*b->budget == 0)
        return yb_fail(b, line, "configuration too large (too many YAML nodes)");
    (*b->budget)--;

    struct ynode *parent = b->depth > 0 ? b->stack[b->depth - 1] : NULL;
    if (parent != NULL && parent->kind == YNODE_MAP && parent->nitems % 2 == 0 &&
        kind != YNODE_SCALAR)
        return yb_fail(b, line, "mapping keys must be scalars");
    if (kind != YNODE_SCALAR && b->depth == YTREE_MAX_DEPTH)
        return yb_fail(b, line, "nesting deeper than %d levels", YTREE_MAX_DEPTH);

    struct ynode *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return yb_fail(b, line, "out of memory");
    n->kind = kind;
    n->line = line;
    n->key_line = line;
    if (parent != NULL && parent->kind == YNODE_MAP && parent->nitems % 2 == 1)
        n->key_line = parent->items[parent->nitems - 1]->line;
    if (kind == YNODE_SCALAR) {
        size_t len = ev->data.scalar.length;
        const char *v = (const char *)ev->data.scalar.value;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (memchr(v, '\0', len) != NULL) {
            free(n);
            return yb_fail(b, line, "NUL characters are not allowed in strings");
        }
        n->str = malloc(len + 1);
        if (n->str == NULL) {
            free(n);
            return yb_fail(b, line, "out of memory");
        }
        memcpy(n->str, v, len);
        n->str[len] = '\0';
        n->len = len;
    }

    if (parent == NULL) {
        struct ydoc *doc = &b->out->docs[b->out->ndocs - 1];
        doc->root = n;
    } else if (ynode_append(parent, n) != 0) {
        ynode_free(n);
        return yb_fail(b, line, "out of memory");
    }
    if (kind != YNODE_SCALAR)
        b->stack[b->depth++] = n;
    return 0;
}

/* Starts a new (empty) document in the stream. Borrows b. */
static int yb_doc(struct ybuild *b, int line)
{
    struct ydoc *docs = realloc(b->out->docs, (b->out->ndocs + 1) * sizeof(*docs));
    if (docs == NULL)
        return yb_fail(b, line, "out of memory");
    b->out->docs = docs;
    docs[b->out->ndocs].root = NULL;
    docs[b->out->ndocs].line = line;
    b->out->ndocs++;
    return 0;
}

/* Turns libyaml's error state into "name:line: problem (context)". */
static int yb_parser_error(struct ybuild *b, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR)
        return yb_fail(b, 1, "out of memory while parsing YAML");
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark: count lines. */
        size_t end = p->problem_offset < b->len ? p->problem_offset : b->len;
        int line = 1;
        for (size_t i = 0; i < end; i++)
            line += b->data[i] == '\n';
        if (p->problem_value != -1)
            return yb_fail(b, line, "%s (byte 0x%02X)", problem, (unsigned)p->problem_value);
        return yb_fail(b, line, "%s", problem);
    }
    int line = (int)p->problem_mark.line + 1;
    if (p->context != NULL)
        return yb_fail(b, line, "%s (%s at line %d)", problem, p->context,
                       (int)p->context_mark.line + 1);
    return yb_fail(b, line, "%s", problem);
}

/* Borrows name and data; out owns the trees (free with ytree_free). */
int ytree_parse(const char *name, const char *data, size_t len, size_t *budget,
                struct ystream *out, char *err, size_t errlen)
{
    struct ybuild b = {.name = name, .data = data, .len = len, .err = err,
                       .errlen = errlen, .budget = budget, .out = out};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return yb_fail(&b, 1, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);

    int rc = 0;
    for (bool done = false; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = yb_parser_error(&b, &p);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            rc = yb_doc(&b, (int)ev.start_mark.line + 1);
            break;
        case YAML_ALIAS_EVENT:
            rc = yb_fail(&b, (int)ev.start_mark.line + 1,
                         "YAML aliases (*%s) are not supported; write the value out",
                         (const char *)ev.data.alias.anchor);
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            rc = yb_node(&b, &ev);
            break;
        case YAML_SEQUENCE_END_EVENT:
            b.depth--;
            b.stack[b.depth]->n = b.stack[b.depth]->nitems;
            break;
        case YAML_MAPPING_END_EVENT:
            b.depth--;
            rc = ymap_close(&b, b.stack[b.depth]);
            break;
        default: /* stream start, document end, no event */
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Borrowed lookup; NULL when absent. */
const struct ynode *ytree_get(const struct ynode *map, const char *key)
{
    if (map == NULL || map->kind != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[2 * i]->str, key) == 0)
            return map->items[2 * i + 1];
    return NULL;
}

/* Borrowed lookup of the key node itself; NULL when absent. */
const struct ynode *ytree_key(const struct ynode *map, const char *key)
{
    if (map == NULL || map->kind != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[2 * i]->str, key) == 0)
            return map->items[2 * i];
    return NULL;
}

/* YAML 1.1 nulls, for plain scalars only: a quoted "null" is a string. */
bool ytree_is_null(const struct ynode *n)
{
    if (n == NULL || n->kind != YNODE_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

/* Static description of n's kind; borrows n. */
const char *ytree_describe(const struct ynode *n)
{
    if (n == NULL || ytree_is_null(n))
        return "null";
    switch (n->kind) {
    case YNODE_SEQ:
        return "a sequence";
    case YNODE_MAP:
        return "a mapping";
    default:
        return "a string";
    }
}
