/* ratelimit.h - RateLimit buckets over attribute conditions.
 *
 * Each RateLimit rule is a bucket refilled at `requests` per `per` and
 * holding at most `burst` tokens, kept as one "theoretical arrival time"
 * (the generic cell rate algorithm): a message is allowed when taking its
 * token would not push that time more than burst intervals past now. One
 * 64-bit word per bucket means a compare-and-swap, not a lock, and every
 * worker thread shares the same buckets, so a limit is the listener's (or
 * the RateLimit's, when it targets several listeners) and not per thread.
 *
 * A rule with `key` has a bucket per value of that attribute, in a fixed
 * table of maxKeys * 2 slots in groups of 8 behind a tiny spin lock; a full
 * bucket is the same as no bucket, so slots whose time has passed are free
 * for other keys, and when a group is full the key closest to full is
 * forgotten (with more live keys than maxKeys a limit can be undercounted,
 * never overcounted).
 *
 * The set is built with a generation and shared by every listener of it.
 * Bucket state lives in a process-wide registry keyed by the rule's
 * identity (RateLimit name, rule index, rate, burst, key, maxKeys): a
 * reload that leaves a rule alone keeps its bucket, so frequent pushes from
 * a control plane do not refill limits; a changed rule starts full. */
#ifndef STRAND_RATELIMIT_H
#define STRAND_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "router/attr.h"

struct rl_set;   /* every RateLimit rule's bucket(s) */
struct rl_list;  /* the rules that apply to one listener */

/* Builds the buckets of every RateLimit of cfg, which it borrows (cfg must
 * outlive the set). NULL with err empty when cfg has no RateLimit, NULL
 * with err set on error. */
struct rl_set *rl_set_build(const struct config *cfg, char *err, size_t errlen);
/* Frees set (NULL allowed) after every list built from it. */
void rl_set_free(struct rl_set *set);

/* The rules of set that target listener_name, compiled; borrows set (it
 * must outlive the list). NULL with err empty when none does. */
struct rl_list *rl_list_build(struct rl_set *set, const char *listener_name, char *err,
                              size_t errlen);
void rl_list_free(struct rl_list *l);
/* Number of RateLimits (not rules) in l, for per-RateLimit metrics. */
size_t rl_list_count(const struct rl_list *l);
/* The i-th RateLimit of l (points into the config). */
const struct cfg_ratelimit *rl_list_at(const struct rl_list *l, size_t i);

/* Takes a token from every rule of l whose conditions hold for src. -1:
 * allowed (l may be NULL). Else the message is refused: returns the index
 * (for rl_list_at) of the RateLimit whose bucket was empty, the tokens
 * taken by earlier rules are given back, and *retry_ms (may be NULL) is
 * how long until a token is due. now_ns: a monotonic clock
 * (rl_now_ns()). Any thread. */
int rl_check(const struct rl_list *l, const struct attr_src *src, uint64_t now_ns,
             uint64_t *retry_ms);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t rl_now_ns(void);

/* rl_check at the current time; a listener without RateLimits (l NULL)
 * costs no clock read. */
static inline int rl_check_now(const struct rl_list *l, const struct attr_src *src,
                               uint64_t *retry_ms)
{
    return l ? rl_check(l, src, rl_now_ns(), retry_ms) : -1;
}

#endif
