/* config_util.c - typed accessors over YAML nodes and the small syntax
 * checks (names, tokens, attributes) every resource kind shares.
 *
 * Each accessor knows the one type it wants and says what it got instead,
 * at the node's own line: "file:12: weight: expected an integer, got a
 * mapping". Typing is strict on purpose: YAML 1.1 reads `on`, `010` and
 * `1e3` in surprising ways, so we accept only unambiguous spellings. */
#include "config/config_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Takes arr, returns it (maybe moved) or NULL leaving arr as it was. */
void *cfg_grow(void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        void *na = realloc(arr, ncap * elem);
        if (na == NULL)
            return NULL;
        arr = na;
        *cap = ncap;
    }
    memset((char *)arr + n * elem, 0, elem);
    return arr;
}

/* Borrows cl and fmt; writes into the caller-owned cl->err. */
int cl_fail(struct cload *cl, int line, const char *fmt, ...)
{
    char reason[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    /* User text is echoed in reasons; keep the message one printable line. */
    for (char *p = reason; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (cl->errlen > 0)
        snprintf(cl->err, cl->errlen, "%s:%d: %s", cl->file, line, reason);
    return -1;
}

/* Writes "a, b, c" of a NULL-ended list into buf (truncated). Borrows. */
static void join_keys(char *buf, size_t len, const char *const *keys)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; keys[i] != NULL && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", keys[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

/* Borrows everything. */
int cl_map(struct cload *cl, const struct ynode *n, const char *what,
           const char *const *allowed)
{
    if (n == NULL || n->kind != YNODE_MAP)
        return cl_fail(cl, n ? n->line : 0, "%s: expected a mapping, got %s", what,
                       ytree_describe(n));
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->items[2 * i];
        size_t j = 0;
        while (allowed[j] != NULL && strcmp(allowed[j], k->str) != 0)
            j++;
        if (allowed[j] == NULL) {
            char list[400];
            join_keys(list, sizeof(list), allowed);
            return cl_fail(cl, k->line, "unknown key '%s' in %s (allowed: %s)", k->str, what,
                           list);
        }
    }
    return 0;
}

/* Borrows everything. */
int cl_seq(struct cload *cl, const struct ynode *n, const char *what, bool nonempty,
           size_t max)
{
    if (n == NULL || n->kind != YNODE_SEQ)
        return cl_fail(cl, n ? n->line : 0, "%s: expected a sequence, got %s", what,
                       ytree_describe(n));
    if (nonempty && n->n == 0)
        return cl_fail(cl, n->line, "%s: must not be empty", what);
    if (n->n > max)
        return cl_fail(cl, n->line, "%s: more than %zu entries", what, max);
    return 0;
}

/* Borrowed result; NULL after an error. */
const struct ynode *cl_need(struct cload *cl, const struct ynode *map, const char *key,
                            const char *what)
{
    const struct ynode *v = ytree_get(map, key);
    if (v == NULL)
        cl_fail(cl, map->key_line, "%s: missing required key '%s'", what, key);
    return v;
}

/* Shared scalar check; *out borrows n's text. */
static int scalar_text(struct cload *cl, const struct ynode *n, const char *what, bool empty_ok,
                       const char **out)
{
    if (n->kind != YNODE_SCALAR || ytree_is_null(n))
        return cl_fail(cl, n->line, "%s: expected a string, got %s", what, ytree_describe(n));
    if (!empty_ok && n->len == 0)
        return cl_fail(cl, n->line, "%s: must not be empty", what);
    *out = n->str;
    return 0;
}

/* Borrows n; *out borrows n's text. */
int cl_scalar(struct cload *cl, const struct ynode *n, const char *what, const char **out)
{
    return scalar_text(cl, n, what, false, out);
}

/* Borrows n; *out is a new string the caller owns. */
int cl_strdup(struct cload *cl, const struct ynode *n, const char *what, char **out)
{
    const char *s;
    if (scalar_text(cl, n, what, true, &s) != 0)
        return -1;
    if ((*out = strdup(s)) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    return 0;
}

/* Borrows cl and n. */
int cl_u32(struct cload *cl, const struct ynode *n, const char *what, uint32_t min,
           uint32_t max, uint32_t *out)
{
    if (n->kind != YNODE_SCALAR || ytree_is_null(n))
        return cl_fail(cl, n->line, "%s: expected an integer, got %s", what, ytree_describe(n));
    if (!n->plain)
        return cl_fail(cl, n->line, "%s: expected an integer, got a quoted string", what);
    const char *s = n->str;
    bool neg = *s == '-';
    if (neg)
        s++;
    if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
        return cl_fail(cl, n->line, "%s: expected an integer, got '%s'", what, n->str);
    if (s[0] == '0' && s[1] != '\0')
        return cl_fail(cl, n->line, "%s: '%s' has a leading zero (YAML may read it as octal)",
                       what, n->str);
    uint64_t v = 0;
    for (; *s; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            break;
    }
    if (neg || v < min || v > max)
        return cl_fail(cl, n->line, "%s: %s is out of range (%u..%u)", what, n->str,
                       (unsigned)min, (unsigned)max);
    *out = (uint32_t)v;
    return 0;
}

/* Borrows cl and n. */
int cl_bool(struct cload *cl, const struct ynode *n, const char *what, bool *out)
{
    static const char *const t[] = {"true", "True", "TRUE", NULL};
    static const char *const f[] = {"false", "False", "FALSE", NULL};
    if (n->kind == YNODE_SCALAR && n->plain) {
        for (int i = 0; t[i]; i++)
            if (strcmp(n->str, t[i]) == 0)
                return *out = true, 0;
        for (int i = 0; f[i]; i++)
            if (strcmp(n->str, f[i]) == 0)
                return *out = false, 0;
    }
    if (n->kind != YNODE_SCALAR || ytree_is_null(n))
        return cl_fail(cl, n->line, "%s: expected true or false, got %s", what,
                       ytree_describe(n));
    return cl_fail(cl, n->line, "%s: expected true or false, got '%s'", what, n->str);
}

/* Renders ms in the largest whole unit; buf is the caller's. */
static const char *fmt_ms(char *buf, size_t len, uint64_t ms)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    return buf;
}

/* Borrows cl and n. */
int cl_duration(struct cload *cl, const struct ynode *n, const char *what, uint64_t min,
                uint64_t max, uint64_t *out)
{
    const char *s;
    if (cl_scalar(cl, n, what, &s) != 0)
        return -1;
    if (strspn(s, "0123456789") == strlen(s))
        return cl_fail(cl, n->line, "%s: '%s' has no unit: write 5s or 5000ms", what, s);
    uint64_t ms;
    if (config_parse_duration(s, &ms) != 0)
        return cl_fail(cl, n->line, "%s: bad duration '%s' (use e.g. 250ms, 5s, 1.5s, 2m, 1h)",
                       what, s);
    if (ms < min || ms > max) {
        char a[32], b[32];
        return cl_fail(cl, n->line, "%s: %s is out of range (%s..%s)", what, s,
                       fmt_ms(a, sizeof(a), min), fmt_ms(b, sizeof(b), max));
    }
    *out = ms;
    return 0;
}

/* The name rule: DNS-subdomain-like, as Kubernetes names are. Borrows s. */
static bool valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CFG_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && ((c != '-' && c != '.') || i == 0 || i == len - 1))
            return false;
    }
    return true;
}

/* Borrows n; *out is a new string the caller owns. */
int cl_name(struct cload *cl, const struct ynode *n, const char *what, char **out)
{
    const char *s;
    if (cl_scalar(cl, n, what, &s) != 0)
        return -1;
    if (!valid_name(s))
        return cl_fail(cl, n->line,
                       "%s: invalid name '%.80s': use lower-case letters, digits, '-' and "
                       "'.', starting and ending with a letter or digit, at most %d characters",
                       what, s, CFG_MAX_NAME);
    if ((*out = strdup(s)) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    return 0;
}

/* Borrows s. */
bool cfg_is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!isalnum(c) && strchr("!#$%&'*+-.^_`|~", c) == NULL)
            return false;
    }
    return true;
}

/* Borrows s. */
bool cfg_is_header_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Borrows s and lower-cases it in place. */
void cfg_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Borrows n; *out is a new lower-cased string the caller owns. */
int cl_header_name(struct cload *cl, const struct ynode *n, const char *what, char **out)
{
    const char *s;
    if (cl_scalar(cl, n, what, &s) != 0)
        return -1;
    if (!cfg_is_token(s))
        return cl_fail(cl, n->line, "%s: invalid header name '%.80s'", what, s);
    if ((*out = strdup(s)) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    cfg_lower(*out);
    return 0;
}

/* Borrows s. */
bool cfg_is_hostname(const char *s, bool wildcard)
{
    if (wildcard && strncmp(s, "*.", 2) == 0)
        s += 2;
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c == '-' && label > 0);
        if (!ok)
            return false;
        label++;
    }
    return true;
}

/* Static result. */
const char *cfg_proto_name(enum cfg_proto proto)
{
    switch (proto) {
    case CFG_PROTO_TCP:
        return "tcp";
    case CFG_PROTO_HTTP:
        return "http";
    case CFG_PROTO_TLS_PASSTHROUGH:
        return "tls";
    case CFG_PROTO_POSTGRES:
        return "postgres";
    case CFG_PROTO_MYSQL:
        return "mysql";
    }
    return "?";
}

#define ON_TCP (1u << CFG_PROTO_TCP)
#define ON_HTTP (1u << CFG_PROTO_HTTP)
#define ON_TLS (1u << CFG_PROTO_TLS_PASSTHROUGH)
#define ON_DB ((1u << CFG_PROTO_POSTGRES) | (1u << CFG_PROTO_MYSQL))
#define ON_ALL (ON_TCP | ON_HTTP | ON_TLS | ON_DB)

/* Every attribute a route may name, with the listener protocols that offer
 * it. Names ending in '.' are families (header.<name>). The error messages
 * are built from this table, so it is the one place to extend. Passthrough
 * listeners never terminate TLS, so they have no peer certificate and hence
 * no source.identity. */
static const struct {
    const char *name;
    unsigned on;
} attrs[] = {
    {"method", ON_HTTP},           {"path", ON_HTTP},
    {"authority", ON_HTTP},        {"scheme", ON_HTTP},
    {"header.", ON_HTTP},          {"query.", ON_HTTP},
    {"grpc.service", ON_HTTP},     {"grpc.method", ON_HTTP},
    {"source.address", ON_ALL},    {"source.identity", ON_TCP | ON_HTTP | (1u << CFG_PROTO_POSTGRES)},
    {"destination.port", ON_ALL},  {"protocol", ON_ALL},
    {"tls.sni", ON_TCP | ON_HTTP | ON_TLS}, {"tls.alpn", ON_TCP | ON_HTTP | ON_TLS},
    {"db.user", ON_DB},            {"db.name", ON_DB},
    {"sql.command", ON_DB},        {"sql.verb", ON_DB},
    {"sql.tables", ON_DB},         {"sql.in_transaction", ON_DB},
};
#define NATTRS (sizeof(attrs) / sizeof(attrs[0]))

/* Index into attrs of the entry naming s (a family by its prefix), or
 * NATTRS. Borrows s. */
static size_t attr_find(const char *s)
{
    for (size_t i = 0; i < NATTRS; i++) {
        size_t n = strlen(attrs[i].name);
        if (attrs[i].name[n - 1] == '.' ? strncmp(s, attrs[i].name, n) == 0
                                        : strcmp(s, attrs[i].name) == 0)
            return i;
    }
    return NATTRS;
}

/* True when attrs[i] is in the list attr_list writes: offered on any
 * protocol of mask, or with every, on each of them. */
static bool attr_listed(size_t i, unsigned mask, bool every)
{
    return every ? (attrs[i].on & mask) == mask : (attrs[i].on & mask) != 0;
}

/* Writes "a, b, ... or z" of the attributes offered on any protocol in
 * mask (with every: on all of them) into buf (truncated). Borrows buf. */
static void attr_list(char *buf, size_t len, unsigned mask, bool every)
{
    size_t off = 0, n = 0, total = 0;
    for (size_t i = 0; i < NATTRS; i++)
        total += attr_listed(i, mask, every);
    buf[0] = '\0';
    for (size_t i = 0; i < NATTRS && off < len; i++) {
        if (!attr_listed(i, mask, every))
            continue;
        const char *name = attrs[i].name;
        const char *sep = n == 0 ? "" : n + 1 == total ? " or " : ", ";
        bool family = name[strlen(name) - 1] == '.';
        int w = snprintf(buf + off, len - off, "%s%s%s", sep, name, family ? "<name>" : "");
        if (w < 0)
            break;
        off += (size_t)w;
        n++;
    }
}

/* Borrows attr. */
bool cfg_attr_offered(const char *attr, enum cfg_proto proto)
{
    size_t i = attr_find(attr);
    return i < NATTRS && (attrs[i].on & (1u << proto)) != 0;
}

/* Borrows n; *out is a new normalised string the caller owns. */
int cl_attribute(struct cload *cl, const struct ynode *n, const char *what,
                 enum cfg_proto proto, char **out)
{
    return cl_attribute_on(cl, n, what, CFG_PROTO_BIT(proto), out);
}

/* Borrows n; *out is a new normalised string the caller owns. */
int cl_attribute_on(struct cload *cl, const struct ynode *n, const char *what, unsigned protos,
                    char **out)
{
    char list[400];
    const char *s;
    if (cl_scalar(cl, n, what, &s) != 0)
        return -1;
    size_t i = attr_find(s);
    if (i == NATTRS) {
        attr_list(list, sizeof(list), ON_ALL, false);
        return cl_fail(cl, n->line, "%s: unknown attribute '%.80s' (use %s)", what, s, list);
    }
    if (strcmp(attrs[i].name, "header.") == 0 && !cfg_is_token(s + 7))
        return cl_fail(cl, n->line, "%s: invalid header name in '%.80s'", what, s);
    if (strcmp(attrs[i].name, "query.") == 0) {
        const char *q = s + 6;
        if (*q == '\0' || strpbrk(q, " &=#") != NULL || !cfg_is_header_value(q))
            return cl_fail(cl, n->line, "%s: invalid query parameter name in '%.80s'", what, s);
    }
    if ((attrs[i].on & protos) != protos) {
        /* Name the first protocol lacking it; suggest what all of them offer. */
        enum cfg_proto proto = CFG_PROTO_TCP;
        for (unsigned p = 0; (1u << p) & ON_ALL; p++)
            if ((protos & ~attrs[i].on) & (1u << p)) {
                proto = (enum cfg_proto)p;
                break;
            }
        attr_list(list, sizeof(list), protos, true);
        return cl_fail(cl, n->line,
                       "%s: attribute '%.80s' is not available on %s listeners (use %s)", what,
                       s,
                       proto == CFG_PROTO_TLS_PASSTHROUGH ? "tls passthrough"
                                                          : cfg_proto_name(proto),
                       list);
    }
    if ((*out = strdup(s)) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    if (strncmp(*out, "header.", 7) == 0)
        cfg_lower(*out + 7);
    return 0;
}
