/* metrics.c - the metrics registry, shards and the Prometheus text renderer.
 *
 * The registry is a process-global table of families (name, help, type) and
 * series (family, label string, first slot id), found through two small
 * open-addressing hash tables so building a config with thousands of routes
 * stays linear. Every shard is an array of chunk pointers; a chunk is 1024
 * relaxed-atomic uint64 slots. Whenever a new id needs a chunk, that chunk
 * is allocated in every live shard under the mutex, and a new shard
 * allocates every chunk that exists, so a worker never allocates and a slot
 * never moves.
 *
 * A histogram series takes 18 consecutive slots: 17 bucket counts (the last
 * one is the overflow past the highest bound) and the sum in microseconds.
 * There is no separate count slot: _count and le="+Inf" are the sum of the
 * buckets, which keeps a concurrently rendered histogram self-consistent
 * (cumulative buckets never exceed the count). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, clock_gettime, sysconf under a strict -std */
#endif
#include "proxy/metrics.h"

#include "core/utf8.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define HIST_SLOTS (METRICS_HIST_BOUNDS + 2) /* buckets incl. overflow, sum */
#define HIST_SUM (METRICS_HIST_BOUNDS + 1)
#define SINK_CHUNK (METRICS_MAX_CHUNKS - 1)  /* where METRICS_INVALID lands */
#define MAX_IDS (SINK_CHUNK * METRICS_CHUNK_SLOTS)
#define MAX_LABELS 32

/* Upper bounds in microseconds, and the same bounds as rendered in le="". */
static const uint64_t hist_bound_us[METRICS_HIST_BOUNDS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const hist_le[METRICS_HIST_BOUNDS + 1] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};

struct family {
    char *name;
    char *help;
    enum metrics_type type;
    bool milli;         /* gauge values are thousandths (metrics_gauge_milli) */
    uint32_t *series;   /* indices into reg.ser, registration order */
    size_t nseries, capseries;
};

struct series {
    uint32_t family;    /* index into reg.fam */
    uint32_t id;        /* first slot */
    char *labels;       /* "" when none */
};

/* Private shard: the public chunk table first, so the pointers convert. */
struct shard {
    struct metrics_shard pub;
    struct shard *next, *prev;
};

static struct {
    pthread_mutex_t mu;
    struct family *fam;
    size_t nfam, capfam;
    struct series *ser;       /* ordered by id, as ids only grow */
    size_t nser, capser;
    uint32_t *fam_ht;         /* family index + 1; 0 = empty */
    size_t fam_htcap;
    uint32_t *ser_ht;         /* series index + 1; 0 = empty */
    size_t ser_htcap;
    uint32_t next_id;
    uint32_t nchunks;         /* chunks [0, nchunks) exist in every shard */
    struct shard *shards;     /* live shards plus `retired` */
    struct shard *retired;    /* values of freed shards; written under mu */
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- small helpers ---- */

/* s: borrowed. FNV-1a, continuing from h. */
static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* name: borrowed. */
static uint64_t hash_fam(const char *name)
{
    return hash_bytes(0xcbf29ce484222325ULL, name, strlen(name));
}

/* labels: borrowed. */
static uint64_t hash_ser(uint32_t fam, const char *labels)
{
    uint64_t h = hash_bytes(0xcbf29ce484222325ULL, (const char *)&fam, sizeof fam);
    return hash_bytes(h, labels, strlen(labels));
}

/* Growable output buffer; oom sticks so callers check once at the end. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

/* b: the caller's buffer. Makes room for n more bytes and a NUL. */
static bool sb_reserve(struct sbuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

/* s: borrowed, copied into b. */
static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* s: borrowed NUL-terminated string, copied into b. */
static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* fmt: borrowed printf format. */
static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    if (!sb_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Appends piece (n bytes) at *w unless it no longer fits whole: truncation
 * never splits an escape or a UTF-8 sequence. *w counts the full length. */
static void put_piece(char *out, size_t outlen, size_t *w, bool *full, const void *piece, size_t n)
{
    if (!*full && *w + n < outlen)
        memcpy(out + *w, piece, n);
    else
        *full = true;
    *w += n;
}

/* Escapes in into out (see metrics_label_escape); quotes only when asked,
 * because HELP text must not escape them. in: borrowed; out: caller's
 * buffer of outlen bytes, may be NULL if outlen is 0. */
static size_t escape(char *out, size_t outlen, const char *in, bool quotes)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), w = 0, done = 0;
    bool full = false;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '\\' || (c == '"' && quotes)) {
            char e[2] = {'\\', (char)c};
            put_piece(out, outlen, &w, &full, e, 2);
            i++;
        } else if (c == '\n') {
            put_piece(out, outlen, &w, &full, "\\n", 2);
            i++;
        } else {
            size_t l = utf8_len(s + i, n - i);
            if (l == 0) {
                put_piece(out, outlen, &w, &full, "\xef\xbf\xbd", 3); /* U+FFFD per bad byte */
                i++;
            } else {
                put_piece(out, outlen, &w, &full, s + i, l);
                i += l;
            }
        }
        if (!full)
            done = w;
    }
    if (outlen)
        out[done] = '\0';
    return w;
}

size_t metrics_label_escape(char *out, size_t outlen, const char *in)
{
    return escape(out, outlen, in, true);
}

/* ---- validation ---- */

/* s, suffix: borrowed. */
static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* name: borrowed, may be NULL. */
static bool valid_family(const char *name, enum metrics_type type)
{
    if (!name || !name_char(name[0], true))
        return false;
    for (const char *p = name + 1; *p; p++)
        if (!name_char(*p, false))
            return false;
    /* rendered by metrics_render itself */
    if (strncmp(name, "strand_process_", 15) == 0)
        return false;
    if ((type == METRICS_COUNTER) != ends_with(name, "_total"))
        return false;
    if (ends_with(name, "_bucket") || ends_with(name, "_count") || ends_with(name, "_sum"))
        return false;
    return true;
}

/* labels: name="escaped value" pairs joined by ','. Checks what the
 * Prometheus parser would reject (bad escapes, raw newlines, invalid UTF-8,
 * duplicate names) plus reserved names (__*, le, quantile). */
static bool valid_labels(const char *labels)
{
    const char *names[MAX_LABELS];
    size_t lens[MAX_LABELS], nl = 0;
    const unsigned char *p = (const unsigned char *)labels;
    if (!*p)
        return true;
    for (;;) {
        const unsigned char *n0 = p;
        if (!name_char((char)*p, true))
            return false;
        while (name_char((char)*p, false))
            p++;
        size_t len = (size_t)(p - n0);
        if (len >= 2 && n0[0] == '_' && n0[1] == '_')
            return false;
        /* histograms and summaries own these; promtool flags them elsewhere */
        if ((len == 2 && memcmp(n0, "le", 2) == 0) || (len == 8 && memcmp(n0, "quantile", 8) == 0))
            return false;
        if (nl == MAX_LABELS)
            return false;
        for (size_t i = 0; i < nl; i++)
            if (lens[i] == len && memcmp(names[i], n0, len) == 0)
                return false;
        names[nl] = (const char *)n0;
        lens[nl++] = len;
        if (*p++ != '=' || *p++ != '"')
            return false;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return false;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return false;
                p++;
                continue;
            }
            size_t l = utf8_len(p, strlen((const char *)p));
            if (l == 0)
                return false;
            p += l;
        }
        p++;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

/* ---- chunks and shards (all under reg.mu) ---- */

/* Returns a zeroed chunk owned by the caller (a shard), or NULL. */
static _Atomic uint64_t *chunk_new(void)
{
    /* calloc's zero bytes are a valid zero for a lock-free atomic uint64 */
    return calloc(METRICS_CHUNK_SLOTS, sizeof(_Atomic uint64_t));
}

/* Makes chunk k exist in every shard. A failure part-way leaves some shards
 * with the chunk already, which is harmless: the next attempt skips them. */
static int ensure_chunk(uint32_t k)
{
    for (; reg.nchunks <= k; reg.nchunks++)
        for (struct shard *s = reg.shards; s; s = s->next)
            if (!s->pub.chunk[reg.nchunks] && !(s->pub.chunk[reg.nchunks] = chunk_new()))
                return -1;
    return 0;
}

/* Returns an unlinked shard with every existing chunk, or NULL. Caller owns
 * it until linked. */
static struct shard *shard_alloc(void)
{
    struct shard *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    bool ok = (s->pub.chunk[SINK_CHUNK] = chunk_new()) != NULL;
    for (uint32_t k = 0; ok && k < reg.nchunks; k++)
        ok = (s->pub.chunk[k] = chunk_new()) != NULL;
    if (!ok) {
        for (uint32_t k = 0; k < METRICS_MAX_CHUNKS; k++)
            free(s->pub.chunk[k]);
        free(s);
        return NULL;
    }
    return s;
}

/* s: owned by the caller, linked into reg.shards (which then owns it). */
static void shard_link(struct shard *s)
{
    s->prev = NULL;
    s->next = reg.shards;
    if (reg.shards)
        reg.shards->prev = s;
    reg.shards = s;
}

/* s: linked; unlinked and freed. */
static void shard_destroy(struct shard *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        reg.shards = s->next;
    if (s->next)
        s->next->prev = s->prev;
    for (uint32_t k = 0; k < METRICS_MAX_CHUNKS; k++)
        free(s->pub.chunk[k]);
    free(s);
}

/* The retired shard exists from the first registration on, so sums over
 * reg.shards include the values of workers that went away. */
static int ensure_retired(void)
{
    if (reg.retired)
        return 0;
    if (!(reg.retired = shard_alloc()))
        return -1;
    shard_link(reg.retired);
    return 0;
}

/* Returns a pointer into s (borrowed); id's chunk must exist. */
static inline _Atomic uint64_t *slot(struct shard *s, uint32_t id)
{
    return &s->pub.chunk[id >> 10][id & 1023];
}

static uint64_t slot_sum(uint32_t id)
{
    uint64_t v = 0;
    for (struct shard *s = reg.shards; s; s = s->next)
        v += atomic_load_explicit(slot(s, id), memory_order_relaxed);
    return v;
}

/* ---- registration ---- */

/* *ht: owned by the registry, replaced by a table twice as large once it is
 * half full; hash(i) rehashes entry i. 0 or -1 on OOM. */
static int grow_table(uint32_t **ht, size_t *cap, size_t used, uint64_t (*hash)(size_t))
{
    if ((used + 1) * 2 <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    uint32_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < *cap; i++) {
        if (!(*ht)[i])
            continue;
        size_t j = hash((*ht)[i] - 1) & (ncap - 1);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = (*ht)[i];
    }
    free(*ht);
    *ht = n;
    *cap = ncap;
    return 0;
}

static uint64_t fam_rehash(size_t i) { return hash_fam(reg.fam[i].name); }
static uint64_t ser_rehash(size_t i) { return hash_ser(reg.ser[i].family, reg.ser[i].labels); }

/* Returns the family index, creating it if needed; -1 on type conflict or
 * OOM. name and help: borrowed, copied. */
static long family_get(const char *name, const char *help, enum metrics_type type)
{
    if (reg.fam_htcap) {
        size_t j = hash_fam(name) & (reg.fam_htcap - 1);
        for (; reg.fam_ht[j]; j = (j + 1) & (reg.fam_htcap - 1)) {
            struct family *f = &reg.fam[reg.fam_ht[j] - 1];
            if (strcmp(f->name, name) == 0)
                return f->type == type ? (long)(reg.fam_ht[j] - 1) : -1;
        }
    }
    if (grow_table(&reg.fam_ht, &reg.fam_htcap, reg.nfam, fam_rehash) < 0)
        return -1;
    if (reg.nfam == reg.capfam) {
        size_t cap = reg.capfam ? reg.capfam * 2 : 16;
        struct family *f = realloc(reg.fam, cap * sizeof *f);
        if (!f)
            return -1;
        reg.fam = f;
        reg.capfam = cap;
    }
    struct family *f = &reg.fam[reg.nfam];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    f->help = strdup(help);
    f->type = type;
    if (!f->name || !f->help) {
        free(f->name);
        free(f->help);
        return -1;
    }
    size_t j = hash_fam(name) & (reg.fam_htcap - 1);
    while (reg.fam_ht[j])
        j = (j + 1) & (reg.fam_htcap - 1);
    reg.fam_ht[j] = (uint32_t)++reg.nfam;
    return (long)(reg.nfam - 1);
}

/* labels: borrowed, copied. Returns the series' id or METRICS_INVALID. */
static uint32_t series_get(uint32_t fi, const char *labels, enum metrics_type type)
{
    uint64_t h = hash_ser(fi, labels);
    if (reg.ser_htcap) {
        for (size_t j = h & (reg.ser_htcap - 1); reg.ser_ht[j]; j = (j + 1) & (reg.ser_htcap - 1)) {
            struct series *s = &reg.ser[reg.ser_ht[j] - 1];
            if (s->family == fi && strcmp(s->labels, labels) == 0)
                return s->id;
        }
    }
    uint32_t nslots = type == METRICS_HISTOGRAM ? HIST_SLOTS : 1;
    uint32_t id = reg.next_id;
    /* a histogram never straddles two chunks, so observe needs one lookup */
    if ((id & 1023) + nslots > METRICS_CHUNK_SLOTS)
        id = (id | 1023) + 1;
    if (id + nslots > MAX_IDS)
        return METRICS_INVALID;
    if (ensure_retired() < 0 || ensure_chunk((id + nslots - 1) >> 10) < 0)
        return METRICS_INVALID;
    if (grow_table(&reg.ser_ht, &reg.ser_htcap, reg.nser, ser_rehash) < 0)
        return METRICS_INVALID;
    if (reg.nser == reg.capser) {
        size_t cap = reg.capser ? reg.capser * 2 : 64;
        struct series *s = realloc(reg.ser, cap * sizeof *s);
        if (!s)
            return METRICS_INVALID;
        reg.ser = s;
        reg.capser = cap;
    }
    struct family *f = &reg.fam[fi];
    if (f->nseries == f->capseries) {
        size_t cap = f->capseries ? f->capseries * 2 : 8;
        uint32_t *v = realloc(f->series, cap * sizeof *v);
        if (!v)
            return METRICS_INVALID;
        f->series = v;
        f->capseries = cap;
    }
    char *copy = strdup(labels);
    if (!copy)
        return METRICS_INVALID;
    reg.ser[reg.nser] = (struct series){.family = fi, .id = id, .labels = copy};
    f->series[f->nseries++] = (uint32_t)reg.nser;
    size_t j = h & (reg.ser_htcap - 1);
    while (reg.ser_ht[j])
        j = (j + 1) & (reg.ser_htcap - 1);
    reg.ser_ht[j] = (uint32_t)++reg.nser;
    reg.next_id = id + nslots;
    return id;
}

/* family, help, labels: borrowed, copied into the registry. */
static uint32_t register_series(const char *family, const char *help, const char *labels,
                                enum metrics_type type)
{
    if (!labels)
        labels = "";
    /* promtool's linter insists on help text */
    if (!help || !*help || !valid_family(family, type) || !valid_labels(labels))
        return METRICS_INVALID;
    pthread_mutex_lock(&reg.mu);
    uint32_t id = METRICS_INVALID;
    long fi = family_get(family, help, type);
    if (fi >= 0)
        id = series_get((uint32_t)fi, labels, type);
    pthread_mutex_unlock(&reg.mu);
    return id;
}

uint32_t metrics_counter(const char *family, const char *help, const char *labels)
{
    return register_series(family, help, labels, METRICS_COUNTER);
}

uint32_t metrics_gauge(const char *family, const char *help, const char *labels)
{
    return register_series(family, help, labels, METRICS_GAUGE);
}

uint32_t metrics_gauge_milli(const char *family, const char *help, const char *labels)
{
    uint32_t id = register_series(family, help, labels, METRICS_GAUGE);
    if (id == METRICS_INVALID)
        return id;
    pthread_mutex_lock(&reg.mu);
    long fi = family_get(family, help, METRICS_GAUGE);
    if (fi >= 0)
        reg.fam[fi].milli = true;
    pthread_mutex_unlock(&reg.mu);
    return id;
}

uint32_t metrics_histogram(const char *family, const char *help, const char *labels)
{
    return register_series(family, help, labels, METRICS_HISTOGRAM);
}

/* ---- shards ---- */

struct metrics_shard *metrics_shard_new(void)
{
    pthread_mutex_lock(&reg.mu);
    struct shard *s = NULL;
    if (ensure_retired() == 0 && (s = shard_alloc()) != NULL)
        shard_link(s);
    pthread_mutex_unlock(&reg.mu);
    return s ? &s->pub : NULL;
}

void metrics_shard_free(struct metrics_shard *pub)
{
    if (!pub)
        return;
    struct shard *s = (struct shard *)pub;
    pthread_mutex_lock(&reg.mu);
    /* Counters and histograms carry over; a gauge's delta describes things
     * (connections, requests in flight) that died with the worker. */
    for (size_t i = 0; i < reg.nser; i++) {
        const struct series *se = &reg.ser[i];
        enum metrics_type t = reg.fam[se->family].type;
        if (t == METRICS_GAUGE)
            continue;
        uint32_t n = t == METRICS_HISTOGRAM ? HIST_SLOTS : 1;
        for (uint32_t k = 0; k < n; k++) {
            _Atomic uint64_t *dst = slot(reg.retired, se->id + k);
            uint64_t v = atomic_load_explicit(slot(s, se->id + k), memory_order_relaxed);
            atomic_store_explicit(dst, atomic_load_explicit(dst, memory_order_relaxed) + v,
                                  memory_order_relaxed);
        }
    }
    shard_destroy(s);
    pthread_mutex_unlock(&reg.mu);
}

static inline unsigned hist_bucket(uint64_t us)
{
    /* the last bound separately, then a 4-step binary search over 16 */
    if (us > hist_bound_us[METRICS_HIST_BOUNDS - 1])
        return METRICS_HIST_BOUNDS;
    unsigned i = us > hist_bound_us[7] ? 8 : 0;
    if (us > hist_bound_us[i + 3]) i += 4;
    if (us > hist_bound_us[i + 1]) i += 2;
    if (us > hist_bound_us[i]) i += 1;
    return i;
}

void metrics_observe(struct metrics_shard *s, uint32_t id, uint64_t usec)
{
    if (id == METRICS_INVALID)
        return;
    _Atomic uint64_t *p = &s->chunk[id >> 10][id & 1023];
    unsigned b = hist_bucket(usec);
    atomic_store_explicit(&p[b], atomic_load_explicit(&p[b], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&p[HIST_SUM],
                          atomic_load_explicit(&p[HIST_SUM], memory_order_relaxed) + usec,
                          memory_order_relaxed);
}

/* ---- reading and rendering ---- */

/* Returns the series whose first slot is id, or NULL. Under reg.mu. */
static const struct series *series_by_id(uint32_t id)
{
    size_t lo = 0, hi = reg.nser;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (reg.ser[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < reg.nser && reg.ser[lo].id == id ? &reg.ser[lo] : NULL;
}

uint64_t metrics_read(uint32_t id)
{
    uint64_t v = 0;
    pthread_mutex_lock(&reg.mu);
    const struct series *se = series_by_id(id);
    if (se && reg.fam[se->family].type == METRICS_HISTOGRAM) {
        for (uint32_t k = 0; k <= METRICS_HIST_BOUNDS; k++)
            v += slot_sum(id + k);
    } else if (se) {
        v = slot_sum(id);
    }
    pthread_mutex_unlock(&reg.mu);
    return v;
}

static const char *type_name(enum metrics_type t)
{
    return t == METRICS_COUNTER ? "counter" : t == METRICS_GAUGE ? "gauge" : "histogram";
}

/* name, help: borrowed. Writes the HELP and TYPE lines of one family. */
static void render_header(struct sbuf *b, const char *name, const char *help, const char *type)
{
    sb_str(b, "# HELP ");
    sb_str(b, name);
    sb_put(b, " ", 1);
    size_t n = escape(NULL, 0, help, false);
    if (sb_reserve(b, n)) {
        escape(b->p + b->len, n + 1, help, false);
        b->len += n;
    }
    sb_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* name, labels, le: borrowed. Writes `name{labels[,le="x"]} ` (no value). */
static void render_name(struct sbuf *b, const char *name, const char *suffix,
                        const char *labels, const char *le)
{
    sb_str(b, name);
    sb_str(b, suffix);
    if (!*labels && !le) {
        sb_put(b, " ", 1);
        return;
    }
    sb_put(b, "{", 1);
    sb_str(b, labels);
    if (le) {
        if (*labels)
            sb_put(b, ",", 1);
        sb_printf(b, "le=\"%s\"", le);
    }
    sb_put(b, "} ", 2);
}

/* f, se: borrowed registry entries. */
static void render_histogram(struct sbuf *b, const struct family *f, const struct series *se)
{
    uint64_t cum = 0;
    for (uint32_t k = 0; k <= METRICS_HIST_BOUNDS; k++) {
        cum += slot_sum(se->id + k);
        render_name(b, f->name, "_bucket", se->labels, hist_le[k]);
        sb_printf(b, "%llu\n", (unsigned long long)cum);
    }
    uint64_t sum = slot_sum(se->id + HIST_SUM);
    render_name(b, f->name, "_sum", se->labels, NULL);
    /* exact decimal seconds, no float rounding */
    sb_printf(b, "%llu.%06llu\n", (unsigned long long)(sum / 1000000),
              (unsigned long long)(sum % 1000000));
    render_name(b, f->name, "_count", se->labels, NULL);
    sb_printf(b, "%llu\n", (unsigned long long)cum);
}

static double start_time;
static pthread_once_t start_once = PTHREAD_ONCE_INIT;

/* Seconds since the epoch at which this process started: boot time from
 * /proc/stat plus the start tick from /proc/self/stat (what other exporters
 * report). Falls back to the first render's time without /proc. */
static void start_time_init(void)
{
    double btime = 0, ticks = -1;
    char buf[4096];
    FILE *fp = fopen("/proc/stat", "r");
    if (fp) {
        while (fgets(buf, sizeof buf, fp))
            if (sscanf(buf, "btime %lf", &btime) == 1)
                break;
        fclose(fp);
    }
    fp = fopen("/proc/self/stat", "r");
    if (fp) {
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        buf[n] = '\0';
        fclose(fp);
        /* comm (field 2) may hold spaces and ')': count from the last ')'.
         * Each ' ' after it starts the next field; starttime is field 22. */
        char *p = strrchr(buf, ')');
        for (int field = 2; p && field < 22; field++)
            p = strchr(p + 1, ' ');
        if (p)
            ticks = strtod(p + 1, NULL);
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (btime > 0 && ticks >= 0 && hz > 0) {
        start_time = btime + ticks / (double)hz;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
}

/* b: the caller's buffer. Process metrics, read fresh at each render. */
static void render_process(struct sbuf *b)
{
    long size = 0, pages = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp) {
        if (fscanf(fp, "%ld %ld", &size, &pages) != 2)
            pages = 0;
        fclose(fp);
    }
    render_header(b, "strand_process_resident_memory_bytes", "Resident memory size in bytes.",
                  "gauge");
    sb_printf(b, "strand_process_resident_memory_bytes %lld\n",
              (long long)pages * (long long)sysconf(_SC_PAGESIZE));

    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
              (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    render_header(b, "strand_process_cpu_seconds_total",
                  "Total user and system CPU time spent in seconds.", "counter");
    sb_printf(b, "strand_process_cpu_seconds_total %.6f\n", cpu);

    pthread_once(&start_once, start_time_init);
    render_header(b, "strand_process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.", "gauge");
    sb_printf(b, "strand_process_start_time_seconds %.2f\n", start_time);
}

char *metrics_render(size_t *len)
{
    struct sbuf b = {0};
    pthread_mutex_lock(&reg.mu);
    for (size_t i = 0; i < reg.nfam; i++) {
        const struct family *f = &reg.fam[i];
        render_header(&b, f->name, f->help, type_name(f->type));
        for (size_t j = 0; j < f->nseries; j++) {
            const struct series *se = &reg.ser[f->series[j]];
            if (f->type == METRICS_HISTOGRAM) {
                render_histogram(&b, f, se);
                continue;
            }
            render_name(&b, f->name, "", se->labels, NULL);
            uint64_t v = slot_sum(se->id);
            if (f->type == METRICS_GAUGE && f->milli) {
                int64_t x = (int64_t)v;
                uint64_t a = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
                sb_printf(&b, "%s%llu.%03llu\n", x < 0 ? "-" : "", (unsigned long long)(a / 1000),
                          (unsigned long long)(a % 1000));
            } else if (f->type == METRICS_GAUGE)
                sb_printf(&b, "%lld\n", (long long)(int64_t)v);
            else
                sb_printf(&b, "%llu\n", (unsigned long long)v);
        }
    }
    pthread_mutex_unlock(&reg.mu);
    render_process(&b);
    if (b.oom || !sb_reserve(&b, 0)) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

void metrics_reset_for_tests(void)
{
    pthread_mutex_lock(&reg.mu);
    while (reg.shards)
        shard_destroy(reg.shards);
    reg.retired = NULL;
    for (size_t i = 0; i < reg.nfam; i++) {
        free(reg.fam[i].name);
        free(reg.fam[i].help);
        free(reg.fam[i].series);
    }
    for (size_t i = 0; i < reg.nser; i++)
        free(reg.ser[i].labels);
    free(reg.fam);
    free(reg.ser);
    free(reg.fam_ht);
    free(reg.ser_ht);
    reg.fam = NULL;
    reg.ser = NULL;
    reg.fam_ht = reg.ser_ht = NULL;
    reg.nfam = reg.capfam = reg.nser = reg.capser = 0;
    reg.fam_htcap = reg.ser_htcap = 0;
    reg.next_id = 0;
    reg.nchunks = 0;
    pthread_mutex_unlock(&reg.mu);
}
