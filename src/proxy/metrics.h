/* metrics.h - counters, gauges and latency histograms, rendered for Prometheus.
 *
 * Two halves with different rules:
 *  - The registry (families and series) is process-global and guarded by one
 *    mutex. Registration happens while a config is built, never per request.
 *    Registering the same family + label string again returns the same id,
 *    so counters survive config reloads: the new routes simply get the ids
 *    the old ones had.
 *  - Values live in shards, one per worker thread. Only the owner thread
 *    writes its shard (no locks, no read-modify-write atomics); the admin
 *    thread reads every shard while rendering. Each slot is a relaxed atomic
 *    so the reader never sees a torn value.
 *
 * Ids are global: the same id addresses the same series in every shard.
 * A slot is found as chunk[id >> 10][id & 1023]; chunks are allocated for
 * every shard when an id first needs them and never move, so the hot path is
 * a load, an add and a store.
 *
 * Thread-safety: metrics_add/metrics_gauge_add/metrics_observe only from the
 * shard's owner thread; everything else may be called from any thread.
 * An id must reach the worker through some synchronisation (the config
 * hand-off does that) so that the worker sees the chunk it lives in. */
#ifndef STRAND_METRICS_H
#define STRAND_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

#define METRICS_CHUNK_SLOTS 1024u
#define METRICS_MAX_CHUNKS 4096u
/* Returned by registration on error. Safe to pass to the hot-path calls: its
 * writes land in a per-shard sink slot that is never rendered, so a caller
 * that forgets to check loses the metric but never corrupts memory. */
#define METRICS_INVALID UINT32_MAX

/* Histogram buckets, upper bounds in seconds (plus +Inf). */
#define METRICS_HIST_BOUNDS 16

/* family, help, labels: borrowed, copied into the registry.
 * Family names: [a-z_][a-z0-9_]*; counters must end in "_total", other
 * types must not, and none may end in _bucket/_count/_sum (rules promtool's
 * linter enforces; it also wants base units: seconds, bytes). help must be
 * non-empty; the family keeps the first registration's. labels: NULL or ""
 * for none, else name="value" pairs joined by commas, values escaped with
 * metrics_label_escape(); label names are [a-z_][a-z0-9_]*, not __*, le or
 * quantile. The label string is compared byte for byte, so build it in a
 * fixed order. Returns the series id, or METRICS_INVALID when a name, help
 * or label string is malformed, the family exists with another type, the
 * id space is full or memory ran out. */
uint32_t metrics_counter(const char *family, const char *help, const char *labels);
uint32_t metrics_gauge(const char *family, const char *help, const char *labels);
/* A gauge whose values are thousandths (a lag in milliseconds rendered as
 * seconds with three decimals). The family is marked so on the first call;
 * use it for every series of that family. */
uint32_t metrics_gauge_milli(const char *family, const char *help, const char *labels);
/* Latency histogram: values observed in microseconds, rendered in seconds
 * (buckets 100us .. 10s, see METRICS_HIST_BOUNDS). Name it "..._seconds". */
uint32_t metrics_histogram(const char *family, const char *help, const char *labels);

/* Layout public only so the hot path below can be inlined; treat it as
 * opaque. Slot arrays are owned by the registry. */
struct metrics_shard {
    _Atomic uint64_t *chunk[METRICS_MAX_CHUNKS];
};

/* Returns a registry-owned shard with room for every series registered so
 * far (later registrations extend it), or NULL on OOM. Hand it to one
 * worker; release it with metrics_shard_free. */
struct metrics_shard *metrics_shard_new(void);
/* s: owned by the registry, freed here; NULL is a no-op. Call after the
 * owner thread stopped writing. Counter and histogram values fold into the
 * registry (they stay monotonic when a worker goes away); gauge deltas are
 * dropped, as what they counted (connections, requests) went with it. */
void metrics_shard_free(struct metrics_shard *s);

/* s: the caller's (owner thread's) shard. Hot path: one writer per slot, so
 * a plain load + store suffices; the atomics only keep the admin reader from
 * seeing torn values. */
static inline void metrics_add(struct metrics_shard *s, uint32_t id, uint64_t v)
{
    _Atomic uint64_t *p = &s->chunk[(id >> 10) & (METRICS_MAX_CHUNKS - 1)][id & 1023];
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* s: the caller's shard. Gauges keep per-shard deltas (two's complement),
 * summed when rendered: +1 on one worker and -1 on another add up to 0. */
static inline void metrics_gauge_add(struct metrics_shard *s, uint32_t id, int64_t v)
{
    metrics_add(s, id, (uint64_t)v);
}

/* s: the caller's shard (owner thread only). Counts usec into its bucket
 * and adds it to the sum; METRICS_INVALID is ignored. */
void metrics_observe(struct metrics_shard *s, uint32_t hist_id, uint64_t usec);

/* Returns the whole exposition text, malloc'd and NUL-terminated, for the
 * caller to free (NULL on OOM): every family summed over every shard, then
 * strand_process_{resident_memory_bytes,cpu_seconds_total,start_time_seconds}.
 * len: optional out-parameter for the length. Holds the registry mutex while
 * reading the shards, which only delays registration, never a worker. */
char *metrics_render(size_t *len);

/* Sum of one slot over all shards. For a gauge, cast the result to int64_t.
 * For a histogram id, returns the observation count. */
uint64_t metrics_read(uint32_t id);

/* in: borrowed NUL-terminated string; out: caller's buffer of outlen bytes.
 * Escapes a label value for the text format: backslash, double quote and
 * newline get a backslash; invalid UTF-8 becomes U+FFFD (Prometheus rejects
 * invalid UTF-8). Writes at most outlen bytes including a NUL to out (out
 * may be NULL when outlen is 0) and returns the full escaped length, like
 * snprintf: the output was truncated if the result is >= outlen. */
size_t metrics_label_escape(char *out, size_t outlen, const char *in);

/* Forgets every family and series and frees every shard (pointers from
 * metrics_shard_new become invalid). For unit tests; no worker may be
 * running. */
void metrics_reset_for_tests(void);

#endif
