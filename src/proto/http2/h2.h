/* h2.h - HTTP/2 protocol layer (RFC 9113): an I/O-free wrapper over nghttp2.
 *
 * A session is one HTTP/2 connection, server side (a downstream client
 * talks to us) or client side (we talk to an upstream; many downstream
 * requests share the connection as streams). The session never touches a
 * socket: the caller hands it the bytes it read (h2_feed) and asks for
 * bytes to write into its own buffer (h2_pull), so it works the same over
 * plain TCP and over TLS, inside any event loop.
 *
 * Bounded memory, per session:
 *  - received header lists are capped (max_header_list_size, max_headers);
 *  - the peer can open at most max_concurrent_streams streams, and a client
 *    session refuses to open more than the peer (or max_concurrent_streams)
 *    allows, instead of letting nghttp2 queue requests without bound;
 *  - body data is never buffered here. Received DATA goes straight to
 *    on_data; the stream's flow-control window only reopens when the caller
 *    says it forwarded the bytes (h2_consume), so one stream holds at most
 *    initial_window_size unconsumed bytes and a slow consumer stalls only
 *    its own stream. Outgoing DATA is produced only inside h2_pull, from the
 *    caller's body callback, one frame at a time;
 *  - queued control frames are bounded by nghttp2's flood limits (outbound
 *    SETTINGS/PING ACKs, SETTINGS entries, CONTINUATION frames), and the
 *    session's own output staging holds at most about one frame beyond
 *    H2_STAGE_SOFT.
 * Abuse that costs us more than the peer is answered with GOAWAY
 * ENHANCE_YOUR_CALM: more than max_resets_per_sec streams reset per second
 * (rapid reset: RST_STREAM from the peer, or stream errors the peer
 * provoked) and floods of empty DATA frames.
 *
 * Callbacks run inside h2_feed and h2_pull (and h2_session_free). They may
 * call any h2_ function on the session except h2_feed, h2_pull and
 * h2_session_free. Header lists passed to callbacks are borrowed: valid
 * only during the call.
 *
 * Errors are values: functions return H2_OK (0) or a negative H2_ERR_*;
 * stream and connection error codes (H2_NO_ERROR ...) are RFC 9113's. */
#ifndef STRAND_H2_H
#define STRAND_H2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct h2_session;

/* One header field. Borrowed both ways: in callbacks it points into the
 * session (valid during the call, NUL-terminated), in submit calls into
 * the caller's memory (copied before the call returns). */
struct h2_header {
    const char *name;
    size_t nlen;
    const char *value;
    size_t vlen;
};

/* Return values. */
enum {
    H2_OK = 0,
    H2_ERR = -1,         /* connection error: GOAWAY queued; flush h2_pull output, then close */
    H2_ERR_ARG = -2,     /* invalid argument: header list, status, wrong session side */
    H2_ERR_STREAM = -3,  /* no such stream, or it cannot take this now */
    H2_ERR_REFUSED = -4, /* no new stream now: limit reached or session going away */
    H2_ERR_NOMEM = -5,
};

/* RFC 9113 section 7 error codes (RST_STREAM, GOAWAY). */
enum {
    H2_NO_ERROR = 0x0,
    H2_PROTOCOL_ERROR = 0x1,
    H2_INTERNAL_ERROR = 0x2,
    H2_FLOW_CONTROL_ERROR = 0x3,
    H2_SETTINGS_TIMEOUT = 0x4,
    H2_STREAM_CLOSED = 0x5,
    H2_FRAME_SIZE_ERROR = 0x6,
    H2_REFUSED_STREAM = 0x7,
    H2_CANCEL = 0x8,
    H2_COMPRESSION_ERROR = 0x9,
    H2_CONNECT_ERROR = 0xa,
    H2_ENHANCE_YOUR_CALM = 0xb,
    H2_INADEQUATE_SECURITY = 0xc,
    H2_HTTP_1_1_REQUIRED = 0xd,
};

/* The session stops moving queued frames into its own staging buffer past
 * this many bytes (the rest waits inside nghttp2, where flood limits apply). */
#define H2_STAGE_SOFT 32768

/* Event callbacks; any may be NULL. ud is the session's user data. A
 * callback returning int returns 0, or non-zero to reset that stream with
 * INTERNAL_ERROR (the caller then sees on_close, not on_reset). */
struct h2_callbacks {
    /* Server: a complete, validated request head. hs holds the pseudo-
     * headers first (:method, :scheme, :path, :authority; for CONNECT only
     * :method and :authority), then the regular fields, names lower-case.
     * For http and https :authority is always there: synthesised from
     * Host when the client sent only Host. end_stream: no body follows
     * (on_end_stream still comes). Connection-specific fields, bad
     * pseudo-headers, Host not matching :authority: the stream is reset
     * with PROTOCOL_ERROR and never shown. A header list over the limits
     * is answered 431 by the session and never shown either. */
    int (*on_request)(void *ud, int32_t stream_id, const struct h2_header *hs, size_t n,
                      int end_stream);
    /* Client: a response head: interim (1xx, any number) then final.
     * hs holds the regular fields only (no :status). */
    int (*on_response)(void *ud, int32_t stream_id, int status, const struct h2_header *hs,
                       size_t n, int end_stream);
    /* Body bytes (borrowed). The stream's window reopens only when the
     * caller calls h2_consume(stream, len) after forwarding them; without
     * on_data, data is consumed (and dropped) at once. */
    int (*on_data)(void *ud, int32_t stream_id, const uint8_t *data, size_t len);
    /* Trailer fields (both sides); on_end_stream follows. */
    int (*on_trailers)(void *ud, int32_t stream_id, const struct h2_header *hs, size_t n);
    /* The peer finished its side of the stream (END_STREAM), exactly once. */
    void (*on_end_stream)(void *ud, int32_t stream_id);
    /* The stream ended abnormally: RST_STREAM received, a stream error
     * detected here, refused by the peer's GOAWAY (REFUSED_STREAM: safe to
     * retry), or the session freed while it was open (CANCEL). Not called
     * for resets the caller asked for. on_close follows. */
    void (*on_reset)(void *ud, int32_t stream_id, uint32_t error_code);
    /* Last event of every stream the caller saw (on_request, or
     * h2_submit_request): release what the stream holds. error_code is 0
     * when both sides ended normally. */
    void (*on_close)(void *ud, int32_t stream_id, uint32_t error_code);
    /* The peer sent GOAWAY: no new streams on this session; streams above
     * last_stream_id were refused (their on_reset says REFUSED_STREAM). */
    void (*on_goaway)(void *ud, int32_t last_stream_id, uint32_t error_code);
};

/* Local settings and limits. A zero field takes the default. */
struct h2_settings {
    uint32_t max_concurrent_streams; /* 100: streams the peer may open (server);
                                      * cap on streams we open (client) */
    uint32_t initial_window_size;    /* 65535: per-stream receive window, the most
                                      * unconsumed body bytes one stream can hold */
    uint32_t connection_window_size; /* 1 MiB: connection receive window */
    uint32_t max_frame_size;         /* 16384: largest frame the peer may send */
    uint32_t max_header_list_size;   /* 65536: RFC 9113 size (name + value + 32 each) */
    uint32_t max_headers;            /* 256: fields in one received header list */
    uint32_t header_table_size;      /* 4096: HPACK dynamic table for received headers */
    uint32_t max_resets_per_sec;     /* 100: server only; more streams reset per
                                      * second -> GOAWAY ENHANCE_YOUR_CALM */
};

/* Fills s with the defaults above. s: caller's, written. */
void h2_settings_default(struct h2_settings *s);

/* Creates a session. cb is copied; ud is passed to every callback; s may be
 * NULL (defaults). Returns NULL when out of memory or when a setting is out
 * of its RFC range. The server session checks the client preface; both
 * queue their SETTINGS at once (pull them). Returns an owned session. */
struct h2_session *h2_session_server(const struct h2_callbacks *cb, void *ud,
                                     const struct h2_settings *s);
/* As h2_session_server, for the client side. Returns an owned session. */
struct h2_session *h2_session_client(const struct h2_callbacks *cb, void *ud,
                                     const struct h2_settings *s);
/* Calls on_reset(CANCEL) and on_close for every stream still open, then
 * frees everything. s: owned, NULL is fine. */
void h2_session_free(struct h2_session *s);

/* Bytes received from the peer (in: borrowed). Returns len (all consumed)
 * or H2_ERR: a connection error (bad preface, protocol error, flood, rapid
 * reset); a GOAWAY is queued: flush h2_pull output, then close. Once
 * H2_ERR, always H2_ERR. */
ssize_t h2_feed(struct h2_session *s, const uint8_t *in, size_t len);
/* Copies up to cap bytes of frames to send into out (caller's). Returns the
 * count, 0 when nothing is to be sent now. Body data is read from the body
 * callbacks here, only as much as fits. */
ssize_t h2_pull(struct h2_session *s, uint8_t *out, size_t cap);
/* Whether the session still reads from the peer. When neither wants
 * anything, close the connection. s: borrowed. */
int h2_want_read(const struct h2_session *s);
/* Whether output may be pending (h2_pull can still return 0). s: borrowed. */
int h2_want_write(const struct h2_session *s);
/* Bytes already produced and waiting in the session for h2_pull. s: borrowed. */
size_t h2_output_pending(const struct h2_session *s);

/* Body source for a response or request. Fills buf with up to len bytes and
 * returns how many; sets *eof when this is the end of the body (trailers,
 * if submitted, follow); returns 0 with *deferred set when no data is
 * available yet: the caller calls h2_resume() when there is (back-pressure
 * from the other side). Returning 0 without eof counts as deferred. A
 * negative return resets the stream with INTERNAL_ERROR. ud: the body_ud
 * given at submission; buf: the session's, valid during the call. */
typedef ssize_t (*h2_body_read_fn)(void *ud, int32_t stream_id, uint8_t *buf, size_t len,
                                   int *eof, int *deferred);

/* Server: submits the final response head (status 200-599 except 101;
 * hs: regular fields only, lower-case names, no connection-specific
 * fields, copied). body NULL: no body (END_STREAM on the head; use it for
 * HEAD requests and 204/304). If the request is not finished when the
 * response ends, the session resets the stream with NO_ERROR (RFC 9113
 * 8.1) so the client stops sending. hs, body_ud: borrowed. */
int h2_submit_response(struct h2_session *s, int32_t stream_id, int status,
                       const struct h2_header *hs, size_t n, h2_body_read_fn body, void *body_ud);
/* Server: an interim response (100-199 except 101), e.g. 100 Continue.
 * hs: borrowed, copied. */
int h2_submit_interim(struct h2_session *s, int32_t stream_id, int status,
                      const struct h2_header *hs, size_t n);
/* Both sides: trailers for a stream whose body callback has not reported
 * eof yet; they go out right after the last DATA frame. Call h2_resume()
 * if the body is deferred. hs: borrowed, copied. */
int h2_submit_trailers(struct h2_session *s, int32_t stream_id, const struct h2_header *hs,
                       size_t n);
/* Client: submits a request. hs holds the pseudo-headers first (:method,
 * :scheme, :path, :authority; CONNECT: :method and :authority only) then
 * regular fields; all are checked as for responses. body NULL: no body.
 * stream_ud is the caller's per-stream pointer (h2_stream_ud). Returns the
 * new stream id, H2_ERR_REFUSED when no stream can be opened now (see
 * h2_can_open_stream), or another H2_ERR_*. hs, body_ud, stream_ud: borrowed. */
int32_t h2_submit_request(struct h2_session *s, const struct h2_header *hs, size_t n,
                          h2_body_read_fn body, void *body_ud, void *stream_ud);

/* Body data became available on a deferred stream. Harmless when the
 * stream is not deferred. */
int h2_resume(struct h2_session *s, int32_t stream_id);
/* The caller forwarded n body bytes of the stream: reopens its window.
 * Harmless on a closed stream. */
int h2_consume(struct h2_session *s, int32_t stream_id, size_t n);
/* Resets a stream (RST_STREAM), e.g. CANCEL when the other side went away.
 * Its body callback is not called again. */
int h2_reset(struct h2_session *s, int32_t stream_id, uint32_t error_code);
/* GOAWAY. H2_NO_ERROR is graceful: last stream id = the last the peer
 * opened; open streams finish, new ones are refused; the session ends when
 * the last stream closes. Any other code ends the session once the GOAWAY
 * is pulled. */
int h2_goaway(struct h2_session *s, uint32_t error_code);
/* Server: the first step of a graceful shutdown: GOAWAY with the largest
 * stream id, so the client stops opening streams; call h2_goaway() about a
 * round trip later to fix the last stream id. */
int h2_shutdown_notice(struct h2_session *s);

/* Client: whether h2_submit_request can open a stream now. s: borrowed. */
int h2_can_open_stream(const struct h2_session *s);
/* Streams the session tracks (open or half-closed). s: borrowed. */
size_t h2_open_streams(const struct h2_session *s);
/* The caller's pointer for a stream, or NULL. s: borrowed; returns the
 * caller's pointer as given. */
void *h2_stream_ud(struct h2_session *s, int32_t stream_id);
/* Sets the caller's pointer for a stream (server side: after on_request).
 * s, ud: borrowed. */
int h2_set_stream_ud(struct h2_session *s, int32_t stream_id, void *ud);
/* Body bytes delivered on a stream and not yet consumed. s: borrowed. */
size_t h2_stream_unconsumed(const struct h2_session *s, int32_t stream_id);
/* Why the session failed (or ""): a static or session-owned string, valid
 * until the next call. s: borrowed. */
const char *h2_last_error(const struct h2_session *s);

/* The per-thread block cache nghttp2 allocates from, for other per-stream
 * objects that live and die on one thread: h2_mem_alloc (uninitialised)
 * and h2_mem_zalloc (zeroed) return NULL or a block to give back with
 * h2_mem_release on the same thread (NULL is fine). */
void *h2_mem_alloc(size_t n);
void *h2_mem_zalloc(size_t n);
void h2_mem_release(void *p);
/* Returns the calling thread's cached blocks to malloc; call when a thread
 * that ran sessions ends (after freeing them). */
void h2_mem_thread_free(void);

/* Helpers. */
/* The field named name (lower-case, NUL-terminated) in hs, or NULL.
 * hs, name: borrowed; returns a pointer into hs. */
const struct h2_header *h2_header_get(const struct h2_header *hs, size_t n, const char *name);
/* Whether a field must not appear in HTTP/2 (RFC 9113 8.2.2): connection,
 * keep-alive, proxy-connection, transfer-encoding, upgrade, and te with
 * any value but "trailers". Case-insensitive on the name, so the HTTP/1.1
 * translation can drop them. name, value: borrowed. */
int h2_header_is_connection_specific(const char *name, size_t nlen, const char *value,
                                     size_t vlen);
/* RFC 9113 name of an error code ("PROTOCOL_ERROR"), "UNKNOWN" otherwise.
 * Returns a static string. */
const char *h2_error_name(uint32_t error_code);

#endif
