/* h2_int.h - what the files of the HTTP/2 layer share: the session and
 * stream structs, and the functions one file offers the others.
 *   h2_session.c  lifecycle, settings, feed/pull and output staging, GOAWAY,
 *                 abuse limits
 *   h2_recv.c     nghttp2 receive callbacks: header lists, data, stream close
 *   h2_submit.c   responses, requests, trailers, body providers, stream ops
 *   h2_header.c   header list checks and conversions
 * Not for use outside src/proto/http2. */
#ifndef STRAND_H2_INT_H
#define STRAND_H2_INT_H

#include <nghttp2/nghttp2.h>

#include "proto/http2/h2.h"

/* Per-stream state, one per stream the session tracks; it is nghttp2's
 * stream user data once the stream exists there. */
struct h2_stream {
    struct h2_stream *prev, *next;  /* session's list */
    int32_t id;
    void *ud;                       /* caller's pointer */
    h2_body_read_fn body;
    void *body_ud;
    nghttp2_nv *trailers;           /* owned: one allocation, names and values inside */
    size_t ntrailers;
    size_t unconsumed;              /* delivered to on_data, not yet h2_consume'd */
    unsigned visible : 1;           /* the caller knows it (on_close is owed) */
    unsigned app_reset : 1;         /* the caller (or its callback) reset it */
    unsigned remote_ended : 1;      /* END_STREAM received */
    unsigned final_sent : 1;        /* server: final response submitted */
    unsigned body_done : 1;         /* body callback reported eof */
    unsigned drain_deferred : 1;    /* deferred by the control-frame drain */
    unsigned local : 1;             /* opened by this side (client requests) */
};

/* Rate counter over a sliding one-second window (two fixed windows,
 * the older one weighted by how much of it still overlaps). */
struct h2_rate {
    uint64_t start_ms;
    uint32_t cur, prev;
};

/* One received header list being collected: HEADERS and its CONTINUATIONs
 * cannot interleave with another stream's, so one per session suffices.
 * Names and values are copied into buf (NUL-terminated); ents keeps offsets
 * because buf may move while it grows. */
struct h2_hent {
    uint32_t name, nlen, value, vlen;
};

struct h2_hacc {
    int32_t stream_id;
    char *buf;
    size_t len, cap;
    struct h2_hent *ents;
    size_t n, ncap;
    size_t list_size;               /* RFC 9113 10.5.1 accounting */
    int too_large;
    struct h2_header *hs;           /* delivery array, rebuilt per list */
    size_t hcap;
};

struct h2_session {
    nghttp2_session *ng;
    struct h2_callbacks cb;
    void *ud;
    struct h2_settings set;
    int server;

    struct h2_stream *streams;      /* every tracked stream */
    size_t nstreams;
    size_t nlocal;                  /* client: streams we opened, still tracked */

    /* Output staging: bytes nghttp2 produced that did not fit the caller's
     * buffer, plus control frames drained early by h2_feed. */
    uint8_t *stage;
    size_t stage_off, stage_len, stage_cap;
    uint64_t bytes_out;

    unsigned dead : 1;              /* fatal: nghttp2 no longer used; only staging remains */
    unsigned conn_err : 1;          /* connection error: GOAWAY queued or sent */
    unsigned draining : 1;          /* inside the control-frame drain */
    unsigned freeing : 1;
    unsigned app_goaway : 1;        /* the caller ended the session with an error code */
    int32_t last_peer_stream;       /* highest stream id the peer opened */
    int32_t goaway_last;            /* server: last stream id our GOAWAY announced
                                     * (INT32_MAX before any) */

    struct h2_hacc acc;
    struct h2_rate resets;          /* peer-caused stream resets */
    struct h2_rate empties;         /* empty DATA frames */
    char err[192];                  /* why the session failed, for h2_last_error */
    char lib_msg[128];              /* nghttp2's last complaint, maybe stream level */
};

/* h2_session.c */
/* Marks a connection error detected here: queues GOAWAY(code) and makes
 * h2_feed return H2_ERR. why: static or transient string, copied. */
void h2s_conn_error(struct h2_session *s, uint32_t code, const char *why);
/* Counts one peer-caused stream reset; over the limit ends the session. */
void h2s_count_reset(struct h2_session *s);
/* Counts one empty DATA frame; a flood ends the session. */
void h2s_count_empty(struct h2_session *s);
/* Stream lookup: nghttp2's user data, or the list for requests not yet
 * sent. Returns a session-owned stream or NULL. */
struct h2_stream *h2s_stream(const struct h2_session *s, int32_t id);
/* Unlinks and frees a stream. st: session-owned, freed. */
void h2s_stream_free(struct h2_session *s, struct h2_stream *st);
/* Creates and links a stream. Returns a session-owned stream or NULL. */
/* h2_mem.c: the allocator every session hands to nghttp2 (a per-thread
 * cache of small blocks). Returns a static table. */
nghttp2_mem *h2_mem(void);

struct h2_stream *h2s_stream_new(struct h2_session *s, int32_t id);

/* h2_recv.c */
/* Installs the receive callbacks into cbs (caller's). */
void h2r_install(nghttp2_session_callbacks *cbs);
/* Frees the header accumulator's memory. a: session-owned. */
void h2r_acc_free(struct h2_hacc *a);

/* h2_submit.c */
/* Installs the send-side callbacks into cbs (caller's). */
void h2t_install(nghttp2_session_callbacks *cbs);

/* h2_header.c */
/* Validates one outgoing regular field. h: borrowed. 0 or H2_ERR_ARG. */
int h2h_check_regular(const struct h2_header *h);
/* Builds an nghttp2 name/value array: optional :status first, then hs.
 * Returns an owned array of n (+1) entries (free()), or NULL. hs: borrowed,
 * the result points into it (nghttp2 copies on submit). */
nghttp2_nv *h2h_nv(const struct h2_header *hs, size_t n, const char *status, size_t *nv_len);
/* Copies a header list into one allocation (names and values included).
 * Returns owned memory (free()) or NULL. hs: borrowed. */
nghttp2_nv *h2h_copy(const struct h2_header *hs, size_t n);
/* ASCII case-insensitive equality of two byte ranges. a, b: borrowed. */
int h2h_ieq(const char *a, size_t alen, const char *b, size_t blen);

#endif
