/* match.c - compiling and testing single conditions (see match.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "router/match.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mop { M_EXACT, M_PREFIX, M_SUFFIX, M_REGEX, M_PRESENT, M_ABSENT, M_IN, M_HOST };

/* An operand. For hostnames `wild` marks "*.x", stored as the suffix ".x". */
struct mstr {
    char *p;
    size_t len;
    bool wild;
};

/* Fields only the build, the index and explanations read. */
struct match_cold {
    struct attr_key key;        /* points into name */
    char *name;                 /* normalized attribute name, in the block */
    char *lit;                  /* literal prefix of an anchored regex, or NULL */
    size_t litlen;
    const struct cfg_cond *cfg; /* borrowed; NULL for hostnames */
    char *arena;                /* next free string byte of the block (build only) */
};

/* One allocation holds the condition, its operands and their strings, so
 * testing a short exact or prefix reads a single cache line:
 *   [struct match_cond][ops[nops]][strings][struct match_cold] */
struct match_cond {
    unsigned char op;   /* enum mop */
    bool invert;
    bool fold;          /* operands are lower case; compare folded */
    bool jit;
    uint32_t nops;
    struct mstr *ops;   /* right after the struct */
    pcre2_code *re;     /* owned */
    struct match_cold *c;
};

const unsigned char match_lower[256] = {
#define R4(b) (b), (b) + 1, (b) + 2, (b) + 3
#define R16(b) R4(b), R4((b) + 4), R4((b) + 8), R4((b) + 12)
    R16(0x00), R16(0x10), R16(0x20), R16(0x30),
    /* 0x40..0x5f: '@', A-Z -> a-z, then [\]^_ */
    0x40, R4(0x61), R4(0x65), R4(0x69), R4(0x6d), R4(0x71), R4(0x75), 0x79, 0x7a,
    0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
    R16(0x60), R16(0x70), R16(0x80), R16(0x90), R16(0xa0), R16(0xb0), R16(0xc0),
    R16(0xd0), R16(0xe0), R16(0xf0),
#undef R16
#undef R4
};

/* Writes "file:line: <message>" into the caller's err[errlen]. */
static void errf(char *err, size_t errlen, struct cfg_where w, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void errf(char *err, size_t errlen, struct cfg_where w, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    int n = snprintf(err, errlen, "%s:%d: ", w.file ? w.file : "<config>", w.line);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

void match_free(struct match_cond *m)
{
    if (!m)
        return;
    if (m->re)
        pcre2_code_free(m->re);
    free(m); /* operands and names live in the same block */
}

/* Copies s[0..len) into m's arena, NUL-terminated and lower-cased when
 * fold; the arena was sized by cond_new() for every string of m. */
static char *cond_str(struct match_cond *m, const char *s, size_t len, bool fold)
{
    char *d = m->c->arena;
    for (size_t i = 0; i < len; i++)
        d[i] = fold ? (char)match_lower[(unsigned char)s[i]] : s[i];
    d[len] = 0;
    m->c->arena += len + 1;
    return d;
}

/* Allocates a condition on attribute `name` with room for nops operands
 * and strbytes bytes of operand strings (NULs included), all in one block
 * (see struct match_cond). Caller owns it (match_free); NULL with err set
 * on failure. */
static struct match_cond *cond_new(const char *name, size_t nops, size_t strbytes,
                                   struct cfg_where w, char *err, size_t errlen)
{
    size_t len = name ? strlen(name) : 0;
    size_t strings = sizeof(struct match_cond) + nops * sizeof(struct mstr);
    size_t cold = (strings + strbytes + len + 1 + 7) & ~(size_t)7;
    struct match_cond *m = calloc(1, cold + sizeof(struct match_cold));
    if (!m) {
        errf(err, errlen, w, "out of memory");
        return NULL;
    }
    m->ops = (struct mstr *)(m + 1);
    m->c = (struct match_cold *)((char *)m + cold);
    m->c->arena = (char *)m + strings;
    m->c->name = (char *)m + strings + strbytes; /* after the operands */
    memcpy(m->c->name, name ? name : "", len);
    m->c->name[len] = 0;
    attr_name_normalize(m->c->name, len);
    if (attr_key_init(&m->c->key, m->c->name, len) < 0) {
        errf(err, errlen, w, "bad attribute name '%s'", name ? name : "");
        match_free(m);
        return NULL;
    }
    return m;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Characters that stand for themselves in a PCRE2 pattern outside a class
 * (without the extended option, which only a leading "(?x)" could set). */
static bool lit_char(unsigned char c) { return is_alnum(c) || (c && strchr("/-_:=,@%~!;", c)); }

/* The literal text every match of `re` must start with, or 0 bytes when we
 * can't be sure. Deliberately conservative: only "^" followed by plain
 * characters or backslash-escaped punctuation, no alternation anywhere, and
 * a character followed by a quantifier ends the literal (without it). */
static size_t regex_literal(const char *re, char *out)
{
    if (re[0] != '^' || strchr(re, '|'))
        return 0;
    size_t n = 0, i = 1;
    while (re[i]) {
        unsigned char c = (unsigned char)re[i], q;
        size_t adv = 1;
        if (c == '\\') {
            /* backslash + ASCII punctuation is that character; anything
             * else is a class, assertion or escape sequence */
            c = (unsigned char)re[i + 1];
            if (c <= 0x20 || c >= 0x7f || is_alnum(c))
                break;
            adv = 2;
        } else if (!lit_char(c)) {
            break;
        }
        q = (unsigned char)re[i + adv];
        if (q == '?' || q == '*' || q == '{')
            break;
        out[n++] = (char)c;
        i += adv;
        if (q == '+')
            break;
    }
    return n;
}

/* Compiles c's regex into m (which owns the code); 0, or -1 with err set. */
static int compile_regex(struct match_cond *m, const struct cfg_cond *c, char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    uint32_t opts = c->ignore_case ? PCRE2_CASELESS : 0;
    m->re = pcre2_compile((PCRE2_SPTR)c->value, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
    if (!m->re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        errf(err, errlen, c->where, "bad regex: %s at offset %zu", (const char *)msg, (size_t)off);
        return -1;
    }
    /* JIT is an optimization: where it is unavailable the interpreter
     * gives the same answers. */
    m->jit = pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE) == 0;
    /* the arena holds strlen(value) + 1 bytes for the literal */
    size_t n = regex_literal(c->value, m->c->arena);
    if (n == 0)
        return 0;
    m->c->lit = cond_str(m, m->c->arena, n, m->fold);
    m->c->litlen = n;
    return 0;
}

struct match_cond *match_compile(const struct cfg_cond *c, char *err, size_t errlen)
{
    bool needs_value = c->op == CFG_MATCH_EXACT || c->op == CFG_MATCH_PREFIX ||
                       c->op == CFG_MATCH_SUFFIX || c->op == CFG_MATCH_REGEX;
    if (needs_value && !c->value) {
        errf(err, errlen, c->where, "condition on '%s' has no value", c->attr ? c->attr : "");
        return NULL;
    }
    if (c->op == CFG_MATCH_IN && c->nvalues && !c->values) {
        errf(err, errlen, c->where, "condition on '%s' has no values", c->attr ? c->attr : "");
        return NULL;
    }
    size_t nops = needs_value && c->op != CFG_MATCH_REGEX ? 1 : c->op == CFG_MATCH_IN ? c->nvalues : 0;
    size_t strbytes = needs_value ? strlen(c->value) + 1 : 0;
    for (size_t i = 0; c->op == CFG_MATCH_IN && i < c->nvalues; i++)
        strbytes += (c->values[i] ? strlen(c->values[i]) : 0) + 1;
    struct match_cond *m = cond_new(c->attr, nops, strbytes, c->where, err, errlen);
    if (!m)
        return NULL;
    m->c->cfg = c;
    m->invert = c->invert;
    m->fold = c->ignore_case;
    switch (c->op) {
    case CFG_MATCH_EXACT: m->op = M_EXACT; break;
    case CFG_MATCH_PREFIX: m->op = M_PREFIX; break;
    case CFG_MATCH_SUFFIX: m->op = M_SUFFIX; break;
    case CFG_MATCH_REGEX: m->op = M_REGEX; break;
    case CFG_MATCH_PRESENT: m->op = M_PRESENT; break;
    case CFG_MATCH_ABSENT: m->op = M_ABSENT; break;
    case CFG_MATCH_IN: m->op = M_IN; break;
    default:
        errf(err, errlen, c->where, "unknown match operator %d", (int)c->op);
        match_free(m);
        return NULL;
    }
    if (m->op == M_REGEX) {
        if (compile_regex(m, c, err, errlen) < 0) {
            match_free(m);
            return NULL;
        }
        return m;
    }
    for (size_t i = 0; i < nops; i++) {
        const char *v = m->op == M_IN ? c->values[i] : c->value;
        if (!v) {
            errf(err, errlen, c->where, "condition on '%s' has a null value", m->c->name);
            match_free(m);
            return NULL;
        }
        m->ops[i].len = strlen(v);
        m->ops[i].p = cond_str(m, v, m->ops[i].len, m->fold);
        m->nops = (uint32_t)i + 1;
    }
    return m;
}

struct match_cond *match_compile_hosts(char *const *hosts, size_t n, struct cfg_where where,
                                       char *err, size_t errlen)
{
    size_t strbytes = 0;
    for (size_t i = 0; i < n; i++)
        strbytes += (hosts[i] ? strlen(hosts[i]) : 0) + 1;
    struct match_cond *m = cond_new("authority", n, strbytes, where, err, errlen);
    if (!m)
        return NULL;
    m->op = M_HOST;
    m->fold = true;
    for (size_t i = 0; i < n; i++) {
        const char *h = hosts[i] ? hosts[i] : "";
        bool wild = h[0] == '*' && h[1] == '.';
        const char *body = wild ? h + 1 : h; /* keep the dot: "*.x" is the suffix ".x" */
        if (!*h || strchr(body, '*') || (wild && !body[1])) {
            errf(err, errlen, where, "bad hostname '%s'", h);
            match_free(m);
            return NULL;
        }
        m->ops[i].len = strlen(body);
        m->ops[i].wild = wild;
        m->ops[i].p = cond_str(m, body, m->ops[i].len, true);
        m->nops = (uint32_t)i + 1;
    }
    return m;
}

size_t match_host_len(const char *p, size_t len)
{
    size_t i = len;
    while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
        i--;
    if (i == 0 || p[i - 1] != ':')
        return len;
    size_t h = i - 1;
    /* "[v6]:port" strips; a bare "::1" has no port to strip */
    if (h > 0 && p[h - 1] != ']' && memchr(p, ':', h))
        return len;
    return h;
}

/* a (value) equals b (operand, lower case when fold) over n bytes */
static inline bool eq(const char *a, const char *b, size_t n, bool fold)
{
    if (!fold)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (match_lower[(unsigned char)a[i]] != (unsigned char)b[i])
            return false;
    return true;
}

/* Per-thread PCRE2 match data: workers match concurrently against the same
 * compiled code, and match data is the one mutable piece. The key's
 * destructor frees it when a worker thread exits. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static bool md_key_ok;
static __thread pcre2_match_data *md_tls;

/* Thread exit: frees the thread's match data p. */
static void md_destroy(void *p) { pcre2_match_data_free(p); }
static void md_key_init(void) { md_key_ok = pthread_key_create(&md_key, md_destroy) == 0; }

/* Returns this thread's match data (owned by the thread), NULL when out of memory. */
static pcre2_match_data *thread_md(void)
{
    if (md_tls)
        return md_tls;
    pthread_once(&md_once, md_key_init);
    /* One ovector pair is enough: we only ask "does it match". */
    md_tls = pcre2_match_data_create(1, NULL);
    if (md_tls && md_key_ok)
        pthread_setspecific(md_key, md_tls);
    return md_tls;
}

/* Borrows m and v: whether m's regex matches the value. */
static bool regex_test(const struct match_cond *m, const attr_val *v)
{
    pcre2_match_data *md = thread_md();
    if (!md)
        return false; /* out of memory: fail closed */
    int rc = m->jit ? pcre2_jit_match(m->re, (PCRE2_SPTR)v->p, v->len, 0, 0, md, NULL)
                    : pcre2_match(m->re, (PCRE2_SPTR)v->p, v->len, 0, 0, md, NULL);
    /* rc 0 means "matched, ovector too small"; negative is no match or a
     * limit hit, both a failed test */
    return rc >= 0;
}

/* Borrows m and v: the operator's test on one value, before invert. */
static bool test_one(const struct match_cond *m, const attr_val *v)
{
    switch (m->op) {
    case M_EXACT:
        return v->len == m->ops[0].len && eq(v->p, m->ops[0].p, v->len, m->fold);
    case M_PREFIX:
        return v->len >= m->ops[0].len && eq(v->p, m->ops[0].p, m->ops[0].len, m->fold);
    case M_SUFFIX:
        return v->len >= m->ops[0].len &&
               eq(v->p + v->len - m->ops[0].len, m->ops[0].p, m->ops[0].len, m->fold);
    case M_REGEX:
        return regex_test(m, v);
    case M_IN:
        for (size_t i = 0; i < m->nops; i++)
            if (v->len == m->ops[i].len && eq(v->p, m->ops[i].p, v->len, m->fold))
                return true;
        return false;
    case M_HOST: {
        size_t hl = match_host_len(v->p, v->len);
        for (size_t i = 0; i < m->nops; i++) {
            const struct mstr *o = &m->ops[i];
            if (o->wild ? hl > o->len && eq(v->p + hl - o->len, o->p, o->len, true)
                        : hl == o->len && eq(v->p, o->p, hl, true))
                return true;
        }
        return false;
    }
    default:
        return false;
    }
}

bool match_test(const struct match_cond *m, const attr_val *vals, int n)
{
    bool r;
    if (m->op == M_PRESENT) {
        r = n > 0;
    } else if (m->op == M_ABSENT) {
        r = n <= 0;
    } else {
        r = false;
        for (int i = 0; i < n && !r; i++)
            r = test_one(m, &vals[i]);
    }
    return r != m->invert;
}

bool match_eval(const struct match_cond *m, const struct attr_src *src)
{
    attr_val buf[16], *vals = buf;
    int n = attr_get(src, &m->c->key, buf, 16);
    if (n > 16) {
        /* rare: a long list attribute; refetch everything, or test the
         * first 16 when out of memory */
        attr_val *big = malloc((size_t)n * sizeof(*big));
        if (big) {
            int n2 = attr_get(src, &m->c->key, big, n);
            vals = big;
            n = n2 < n ? n2 : n;
        } else {
            n = 16;
        }
    }
    bool r = match_test(m, vals, n);
    if (vals != buf)
        free(vals);
    return r;
}

const struct attr_key *match_key(const struct match_cond *m) { return &m->c->key; }

const struct cfg_cond *match_cfg(const struct match_cond *m) { return m->c->cfg; }

bool match_is_costly(const struct match_cond *m) { return m->op == M_REGEX; }

size_t match_nhints(const struct match_cond *m)
{
    if (m->invert)
        return 0;
    switch (m->op) {
    case M_EXACT:
    case M_PREFIX:
    case M_SUFFIX:
    case M_IN:
    case M_HOST:
        return m->nops;
    case M_REGEX:
        return m->c->lit ? 1 : 0;
    default:
        return 0;
    }
}

bool match_hints_imply(const struct match_cond *m)
{
    /* a wildcard host hint ".x" also takes the host ".x" itself, which the
     * condition refuses; a regex prefix is only a necessary condition */
    return !m->invert && (m->op == M_EXACT || m->op == M_PREFIX || m->op == M_SUFFIX || m->op == M_IN);
}

struct match_hint match_hint(const struct match_cond *m, size_t i)
{
    struct match_hint h;
    h.view = m->fold ? MATCH_VIEW_FOLD : MATCH_VIEW_RAW;
    h.kind = MATCH_HINT_EXACT;
    if (m->op == M_REGEX) {
        h.kind = MATCH_HINT_PREFIX;
        h.key = m->c->lit;
        h.len = m->c->litlen;
        return h;
    }
    h.key = m->ops[i].p;
    h.len = m->ops[i].len;
    if (m->op == M_PREFIX)
        h.kind = MATCH_HINT_PREFIX;
    else if (m->op == M_SUFFIX)
        h.kind = MATCH_HINT_SUFFIX;
    else if (m->op == M_HOST) {
        h.view = MATCH_VIEW_HOST;
        h.kind = m->ops[i].wild ? MATCH_HINT_SUFFIX : MATCH_HINT_EXACT;
    }
    return h;
}

int match_describe(const struct match_cond *m, char *out, size_t outlen)
{
    static const char *const opname[] = {"exact", "prefix", "suffix", "regex", "present",
                                         "absent", "in", "hostnames"};
    size_t n = 0;
    int w;
#define PUT(...)                                                                       \
    do {                                                                               \
        w = snprintf(out + (n < outlen ? n : outlen), n < outlen ? outlen - n : 0,    \
                     __VA_ARGS__);                                                     \
        if (w > 0)                                                                     \
            n += (size_t)w;                                                            \
    } while (0)
    if (outlen)
        out[0] = 0;
    if (m->op == M_HOST) {
        PUT("hostnames [");
        for (size_t i = 0; i < m->nops; i++)
            PUT("%s%s%s", i ? ", " : "", m->ops[i].wild ? "*" : "", m->ops[i].p);
        PUT("]");
        return (int)n;
    }
    PUT("%s %s%s", m->c->name, m->invert ? "not " : "", opname[m->op]);
    if (m->op == M_REGEX)
        PUT(" \"%s\"", m->c->cfg && m->c->cfg->value ? m->c->cfg->value : "");
    else if (m->op == M_IN) {
        PUT(" [");
        for (size_t i = 0; i < m->nops; i++)
            PUT("%s\"%s\"", i ? ", " : "", m->ops[i].p);
        PUT("]");
    } else if (m->nops)
        PUT(" \"%s\"", m->ops[0].p);
    if (m->fold)
        PUT(" (ignoreCase)");
#undef PUT
    return (int)n;
}
