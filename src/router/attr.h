/* attr.h - message attributes, the only thing routing and policy look at.
 *
 * A protocol codec exposes a message as named attributes ("method", "path",
 * "header.x-user", "sql.tables" ...) through one getter function. Lookup is
 * lazy: the router asks only for the attributes its rules mention, so an HTTP
 * request never materializes a map of all its headers.
 *
 * Names are resolved once, when the routing table is built, into a struct
 * attr_key whose `id` is a small integer for well-known names. A getter
 * switches on the id instead of comparing strings; only the families
 * (header.<name>, query.<name>) and unknown names need the text.
 *
 * The getter contract (what a codec implements):
 *
 *   int get(void *ctx, const struct attr_key *key, attr_val *out, int max);
 *
 *   - Look the attribute up in the message `ctx`. Switch on key->id; for
 *     ATTR_HEADER / ATTR_QUERY the name within the family is key->sub
 *     (ATTR_HEADER subs are always lower case, so compare header field names
 *     case-insensitively); for ATTR_UNKNOWN compare key->name or return 0.
 *   - Write at most `max` values to out[0..max) and return how many values
 *     the attribute has in total, like snprintf: a return above `max` means
 *     only the first `max` were written and the caller may ask again with a
 *     larger array. 0 means absent. A negative return is treated as absent.
 *     `max` may be 0 (out is then not touched).
 *   - A single-valued attribute returns 1. A list attribute (a header sent
 *     on several lines, "sql.tables") returns one value per element, in
 *     message order. An empty value ("") is present, not absent.
 *   - Values are borrowed: out[i].p points into the message, need not be
 *     NUL-terminated, and must stay valid and unchanged until the message is
 *     next modified (at least until router_match() returns).
 *   - The getter runs on the worker thread that owns the message; it must not
 *     block or allocate per call if it can avoid it, and it may be called
 *     several times for the same key during one match. */
#ifndef STRAND_ATTR_H
#define STRAND_ATTR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *p;
    size_t len;
} attr_val;

/* Interned attribute names. Append only: ids may be stored by codecs. */
enum attr_id {
    ATTR_UNKNOWN = 0,      /* not well known: the getter must look at key->name */
    ATTR_METHOD,           /* "method" */
    ATTR_PATH,             /* "path" (HTTP: without the query) */
    ATTR_AUTHORITY,        /* "authority" (HTTP: :authority or Host, may carry :port) */
    ATTR_SCHEME,           /* "scheme" */
    ATTR_PROTOCOL,         /* "protocol" */
    ATTR_SOURCE_ADDRESS,   /* "source.address" */
    ATTR_DESTINATION_PORT, /* "destination.port" */
    ATTR_HEADER,           /* "header.<sub>", sub lower case */
    ATTR_QUERY,            /* "query.<sub>", sub case-sensitive */
    ATTR_SQL_VERB,         /* "sql.verb" */
    ATTR_SQL_TABLES,       /* "sql.tables" (list) */
    ATTR_KAFKA_TOPIC,      /* "kafka.topic" */
    ATTR_ID_COUNT
};

/* A resolved attribute name. name/sub are borrowed from whoever built the
 * key (the router keeps its keys alive as long as the router). */
struct attr_key {
    int id;            /* enum attr_id */
    const char *name;  /* full name, e.g. "header.x-user" */
    size_t len;
    const char *sub;   /* ATTR_HEADER/ATTR_QUERY: the part after the dot, else NULL */
    size_t sublen;
};

/* The getter a codec implements; ctx, key and out are borrowed (see the
 * contract at the top of this file). */
typedef int (*attr_get_fn)(void *ctx, const struct attr_key *key, attr_val *out, int max);

/* A message as an attribute source: get(ctx, ...). ctx is borrowed. */
struct attr_src {
    attr_get_fn get;
    void *ctx;
};

/* Resolves name[0..len) into key; key->name and key->sub point into name
 * (borrowed, must outlive the key). Returns 0, or -1 when the name is
 * malformed (empty, or a family prefix with nothing after it, "header.").
 * Does not change case: see attr_name_normalize(). */
int attr_key_init(struct attr_key *key, const char *name, size_t len);

/* Lower-cases the header name part of "header.<name>" in place, so every
 * key the getter sees has a lower-case sub. Other names are left alone. */
void attr_name_normalize(char *name, size_t len);

/* Returns a static string for an id ("header" for ATTR_HEADER, "?" when
 * out of range). */
const char *attr_id_name(int id);

/* Calls src->get, mapping negative returns to 0. out is the caller's. */
static inline int attr_get(const struct attr_src *src, const struct attr_key *key, attr_val *out,
                           int max)
{
    int n = src->get(src->ctx, key, out, max);
    return n < 0 ? 0 : n;
}

/* A small concrete attribute source, for tests and simple protocols: a
 * bounded list of (name, value) pairs held inline, so it can live on the
 * stack and adding never allocates. Adding the same name again makes it a
 * list attribute. Names and values are copied into the set's own arena.
 * Fields are private; declared here only so the struct can be embedded. */
#define ATTR_SET_MAX 32      /* pairs */
#define ATTR_SET_BYTES 2048  /* names and values together */

struct attr_set {
    uint16_t n;
    uint16_t used;
    struct {
        uint16_t id;
        uint16_t noff, nlen;  /* name in buf (shared by repeats) */
        uint16_t voff, vlen;  /* value in buf */
    } e[ATTR_SET_MAX];
    char buf[ATTR_SET_BYTES];
};

/* Empties s (the caller's storage). */
void attr_set_init(struct attr_set *s);
/* Adds a NUL-terminated pair (copied). 0, or -1 when the set is full or the
 * name is malformed (the set is then unchanged). */
int attr_set_add(struct attr_set *s, const char *name, const char *value);
/* Same with explicit lengths. */
int attr_set_addn(struct attr_set *s, const char *name, size_t nlen, const char *value,
                  size_t vlen);
/* An attr_src reading s; it borrows s, which must outlive every use and
 * must not be modified while a match using it runs. */
struct attr_src attr_set_src(const struct attr_set *s);

#endif
