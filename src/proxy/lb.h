/* lb.h - per-worker load balancing and passive outlier detection for one
 * cluster.
 *
 * Each worker builds its own `struct lb` for each cluster, so nothing here is
 * locked or shared. The balancer is pure logic: the proxy reports when an
 * attempt starts and how it ended, and asks for an endpoint index to use.
 * Indices are positions in cfg_cluster.endpoints. Three policies:
 *
 *   round_robin      smooth weighted round robin (interleaved, exact counts)
 *   least_request    power of two choices on (active+1) * peak-EWMA latency
 *   consistent_hash  a ring of virtual nodes keyed by endpoint address, so
 *                    every worker (and every reload) maps a key the same way
 *
 * Ejected endpoints are skipped by every policy; see lb.c for the rules. */
#ifndef STRAND_LB_H
#define STRAND_LB_H

#include <stddef.h>
#include <stdint.h>

struct cfg_cluster;
struct lb;

/* How one attempt on an endpoint ended (the `kind` of lb_request_end). */
enum lb_outcome {
    LB_OK = 0,          /* any response that is not a 5xx */
    LB_5XX,             /* the endpoint answered with a 5xx */
    LB_CONNECT_FAIL,    /* could not connect (refused, unreachable, connect timeout) */
    LB_RESET,           /* connection reset or closed before a full response */
    LB_TIMEOUT,         /* no (complete) response within the per-try timeout */
};

/* Builds a balancer from c's endpoints and policy; c is only read during the
 * call (nothing in it is referenced afterwards). seed makes each worker's
 * randomness distinct and tests deterministic. Returns a new lb the caller
 * frees with lb_free, or NULL when out of memory. */
struct lb *lb_new(const struct cfg_cluster *c, uint64_t seed);
/* Frees lb (NULL is allowed). */
void lb_free(struct lb *lb);

/* Picks an endpoint index or returns -1 when no endpoint has a weight > 0.
 * Skips endpoints with weight 0, ejected endpoints, and endpoints whose bit
 * is set in `exclude` (bit i = endpoint i; indices >= 64 cannot be
 * excluded). When that leaves nothing, exclude is ignored first, then
 * ejection, so a request always gets an endpoint if one exists.
 * hash/have_hash: the request's hash for consistent_hash (see lb_hash_bytes);
 * without it that policy picks at random. now_ms: monotonic milliseconds. */
int lb_pick(struct lb *lb, uint64_t hash, int have_hash, uint64_t exclude, uint64_t now_ms);

/* A fast 64-bit hash of p[0..len) with good avalanche; p is only read.
 * Stable within one build (it reads words in host byte order). */
uint64_t lb_hash_bytes(const void *p, size_t len);

/* An attempt on endpoint idx starts (active++). Out-of-range idx is ignored. */
void lb_request_start(struct lb *lb, int idx);
/* The attempt on endpoint idx ended: kind is an enum lb_outcome, latency_us
 * the time it took. Decrements active, feeds the latency estimate and drives
 * outlier detection (consecutive 5xx / consecutive failures -> ejection). */
void lb_request_end(struct lb *lb, int idx, int kind, uint64_t latency_us, uint64_t now_ms);

/* Number of endpoints (including those with weight 0). */
int lb_size(const struct lb *lb);
/* 1 if endpoint idx is ejected at now_ms, else 0 (also for a bad idx). */
int lb_is_ejected(const struct lb *lb, int idx, uint64_t now_ms);
/* Ends endpoint idx's ejection now, when an active check (db_check.c)
 * finds it healthy again; its backoff level stays, so a relapse is ejected
 * for longer. No-op when it is not ejected or idx is bad. */
void lb_uneject(struct lb *lb, int idx, uint64_t now_ms);
/* Ejections performed since lb_new, for metrics. */
uint32_t lb_ejections_total(const struct lb *lb);
/* Attempts in flight on endpoint idx (0 for a bad idx). */
int lb_active(const struct lb *lb, int idx);

#endif
