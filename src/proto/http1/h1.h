/* h1.h - strict HTTP/1.0 and HTTP/1.1 message parser (RFC 9110, RFC 9112).
 *
 * A pure parser in the spirit of picohttpparser: every function works over a
 * byte range the caller owns, allocates nothing, does no I/O and keeps no
 * global state. Parsed strings (h1_str) point into the caller's buffer, so
 * they stay valid exactly as long as those bytes stay where they are.
 *
 * Strand is a proxy, so the parser is deliberately stricter than RFC 9112
 * requires of an origin server: anything two HTTP implementations could
 * read differently (request smuggling, response splitting) is an error.
 * The rules are listed next to h1_parse_request() below.
 *
 * Return values are plain ints: >= 0 means bytes consumed (or a head
 * length), H1_INCOMPLETE means "call again with more bytes", and the
 * negative H1_ERR_* codes are minus the HTTP status a server should answer
 * with (a proxy answers 502 instead when the bad message came upstream). */
#ifndef STRAND_H1_H
#define STRAND_H1_H

#include <stddef.h>
#include <stdint.h>

/* A byte range inside a caller's buffer; not NUL-terminated. A missing
 * value is {NULL, 0}; a present but empty one has a non-NULL p. */
typedef struct {
    const char *p;
    size_t len;
} h1_str;

struct h1_header {
    h1_str name;  /* as received (case preserved), always a valid token */
    h1_str value; /* surrounding SP/HTAB trimmed; may be empty */
};

enum {
    H1_INCOMPLETE = -1,
    H1_ERR_BAD_REQUEST = -400,    /* malformed (for responses: proxy sends 502) */
    H1_ERR_URI_TOO_LONG = -414,   /* request-target longer than max_bytes / 2 */
    H1_ERR_TOO_LARGE = -431,      /* head > max_bytes, or > max_headers field lines */
    H1_ERR_NOT_IMPLEMENTED = -501,/* transfer-coding other than chunked */
    H1_ERR_VERSION = -505,        /* well-formed HTTP-version other than 1.0/1.1 */
};

enum h1_body_kind {
    H1_BODY_NONE,        /* no body bytes follow the head */
    H1_BODY_LENGTH,      /* content_length (> 0) bytes follow */
    H1_BODY_CHUNKED,     /* chunked framing follows: see h1_chunked_* */
    H1_BODY_UNTIL_CLOSE, /* responses only: body ends when the server closes */
};

/* Method, recognised for the few methods the parser and proxy care about. */
enum h1_method {
    H1_M_OTHER = 0,
    H1_M_GET,
    H1_M_HEAD,
    H1_M_POST,
    H1_M_PUT,
    H1_M_DELETE,
    H1_M_OPTIONS,
    H1_M_CONNECT,
    H1_M_TRACE,
    H1_M_PATCH,
};

/* Message flags (request and response). */
#define H1_F_KEEPALIVE 0x0001u        /* connection may be reused after this message */
#define H1_F_CONN_CLOSE 0x0002u       /* Connection header has "close" */
#define H1_F_EXPECT_CONTINUE 0x0004u  /* HTTP/1.1 request with Expect: 100-continue */
#define H1_F_EXPECT_OTHER 0x0008u     /* Expect with anything else (server may 417) */
#define H1_F_UPGRADE 0x0010u          /* req: 1.1, Connection: upgrade + Upgrade; resp: 101 */
#define H1_F_HAS_TE_TRAILERS 0x0020u  /* request TE header lists "trailers" */
#define H1_F_CONTENT_LENGTH 0x0040u   /* a (valid) Content-Length header is present */
#define H1_F_TRANSFER_ENCODING 0x0080u/* a Transfer-Encoding header is present */
#define H1_F_ABSOLUTE_FORM 0x0100u    /* target is "http(s)://authority/path" */
#define H1_F_AUTHORITY_FORM 0x0200u   /* CONNECT host:port */
#define H1_F_ASTERISK_FORM 0x0400u    /* OPTIONS * */

struct h1_request {
    h1_str method;
    h1_str target;     /* request-target as received */
    h1_str path;       /* target up to '?'; for absolute-form the part after the
                        * authority (may be empty: treat as "/"); empty for CONNECT */
    h1_str query;      /* after '?', may be empty ({NULL,0} when there is no '?') */
    int minor_version; /* 0 or 1 */
    enum h1_method method_id;
    struct h1_header *headers; /* in: caller's array, capacity max_headers; not owned */
    size_t nheaders;           /* out: number of headers filled in */
    enum h1_body_kind body;    /* NONE, LENGTH or CHUNKED (never UNTIL_CLOSE) */
    uint64_t content_length;   /* Content-Length value, 0 when absent */
    h1_str host;               /* Host header value (required in 1.1) */
    h1_str authority;          /* effective authority: the target's for absolute-
                                * and authority-form, else the Host value */
    unsigned flags;            /* H1_F_* */
    h1_str upgrade;            /* Upgrade header value */
    h1_str connection;         /* Connection header value */
    const char *error;         /* on error: short static reason, else NULL */
};

/* Parses a request head from buf[0..len). max_headers is the capacity of
 * req->headers (which the caller sets beforehand; every other field is
 * output). max_bytes limits the head size, counting skipped leading CRLFs.
 *
 * Returns the head length (> 0, the offset of the first body byte) once the
 * empty line ending the head is in buf, H1_INCOMPLETE when more bytes are
 * needed, or an H1_ERR_* code with req->error set. Feeding a message in
 * pieces yields H1_INCOMPLETE until the same result the whole message gives.
 * Syntax errors are reported as soon as the offending bytes are in, rules
 * relating several fields once the head is complete, and H1_ERR_TOO_LARGE
 * as soon as len >= max_bytes without a complete head. req->headers must
 * have room for max_headers entries (it may be NULL when that is 0); on
 * success they and every h1_str point into buf[0..head length).
 *
 * Strictness (each is a 400 unless noted):
 *  - every line ends in CRLF: bare LF and bare CR anywhere are errors;
 *  - up to H1_MAX_LEADING_CRLF empty lines before the request line are skipped;
 *  - request-line: token method, one SP, target, one SP, "HTTP/1.0" or
 *    "HTTP/1.1"; another well-formed "HTTP/d.d" is 505;
 *  - target: visible ASCII, no '#'; origin-form "/...", absolute-form with
 *    scheme http/https and no userinfo (its authority must equal Host),
 *    authority-form host:port only and always for CONNECT, "*" only for
 *    OPTIONS; longer than max_bytes / 2 is 414;
 *  - field names are tokens, directly followed by ':'; values contain no
 *    CTL except HTAB (obs-text is allowed); obs-fold (a line starting with
 *    SP/HTAB) is an error; more than max_headers lines is 431;
 *  - Host: exactly one in 1.1, at most one in 1.0; its value must be a
 *    plausible host[:port] (no ',', '/', '@', '%', whitespace);
 *  - Content-Length: 1*DIGIT fitting in 63 bits; any second Content-Length
 *    header, even an identical one, and list values ("5, 5") are errors;
 *  - Transfer-Encoding: not allowed in 1.0, not together with Content-Length;
 *    the combined coding list must be exactly one "chunked", last: chunked
 *    missing, not last or repeated is 400, other codings before it are 501;
 *    empty list elements and parameters are errors;
 *  - more than one Connection or Upgrade header; a Connection header naming
 *    Content-Length, Transfer-Encoding or Host (it would make a proxy strip
 *    the framing); CONNECT with a body. */
/* Borrows buf; fills the caller's *req, whose h1_strs then point into buf. */
int h1_parse_request(const char *buf, size_t len, struct h1_request *req, size_t max_headers,
                     size_t max_bytes);

struct h1_response {
    int status;        /* 100..599 */
    int minor_version; /* 0 or 1 */
    h1_str reason;     /* may be empty */
    struct h1_header *headers; /* in: caller's array, capacity max_headers; not owned */
    size_t nheaders;
    enum h1_body_kind body;
    uint64_t content_length; /* Content-Length value, 0 when absent (also for HEAD/304) */
    unsigned flags;          /* H1_F_* */
    h1_str connection;       /* Connection header value */
    h1_str upgrade;          /* Upgrade header value */
    const char *error;       /* on error: short static reason, else NULL */
};

/* Parses a response head; same conventions and header rules as
 * h1_parse_request (no Host rules). method_head: the request was HEAD.
 * Framing: HEAD, 1xx, 204 and 304 have no body (Content-Length is still
 * syntax-checked); chunked as the final coding -> CHUNKED; Transfer-Encoding
 * without final chunked -> UNTIL_CLOSE; else Content-Length; else
 * UNTIL_CLOSE. Content-Length with Transfer-Encoding, or Transfer-Encoding
 * in a 1.0 response, is an error. The status line may omit the SP before an
 * empty reason. The caller handles a 2xx answer to CONNECT (a tunnel) and
 * parses again after a 1xx. */
/* Borrows buf; fills the caller's *resp, whose h1_strs then point into buf. */
int h1_parse_response(const char *buf, size_t len, struct h1_response *resp, size_t max_headers,
                      size_t max_bytes, int method_head);

/* Re-parsing a growing buffer from scratch costs O(n^2) when a client sends
 * its head one byte at a time. Callers that re-parse on every read should
 * gate the parser with this: it remembers in *pos (0 for a new head) how
 * far it looked and returns 1 when a CRLF CRLF ends at or after that point,
 * so parse when it returns 1 or when len >= max_bytes. */
/* Borrows buf; *pos is the caller's cursor. */
int h1_head_scan(const char *buf, size_t len, size_t *pos);

/* Chunked body framing (RFC 9112 section 7.1), as an incremental state
 * machine that never buffers: zero-initialise to start. Bytes a call does not
 * consume (at most one partial framing line, < H1_CHUNK_LINE_MAX bytes) must
 * be passed again, followed by new bytes, on the next call. A line reaching
 * H1_CHUNK_LINE_MAX is an error, so a caller with that much buffer space
 * always progresses; one with less must fail the message when its buffer
 * fills up with unconsumed bytes.
 * Chunk lines: 1..16 hex digits, optional extensions ";name[=token|quoted]"
 * (BWS only around ';' and '='), CRLF; CRLF after each chunk's data; the
 * trailer section is validated (field lines, no obs-fold, no
 * Content-Length/Transfer-Encoding/Host, <= H1_CHUNK_TRAILERS_MAX bytes).
 * A bare LF or CR anywhere in the framing is an error. Errors are sticky:
 * after one, every call fails. */
#define H1_CHUNK_LINE_MAX 4096
#define H1_CHUNK_TRAILERS_MAX 16384

struct h1_chunked {
    uint64_t remaining;      /* payload bytes left in the current chunk */
    uint32_t trailer_bytes;  /* trailer section bytes so far */
    uint8_t state;           /* private: H1_CS_* in h1_chunked.c */
    uint8_t hold_trailers;   /* in: stop before the trailer section (below) */
};

/* Decodes: consumes framing from buf[0..len) up to and including one run of
 * payload bytes, which *data and *data_len point at (inside buf; *data_len may
 * be 0). Returns bytes consumed (0 only when no progress is possible:
 * done, or a partial line) or H1_ERR_BAD_REQUEST. Trailers are validated
 * and dropped. Call in a loop until it consumes 0. */
/* Borrows buf; *c is the caller's state; *data points into buf. */
int h1_chunked_decode(struct h1_chunked *c, const char *buf, size_t len, const char **data,
                      size_t *data_len);

/* Validates without separating payload, for forwarding the framing
 * unchanged: returns how many bytes of buf[0..len) are complete framing
 * lines or chunk data (never more than the message's end, so bytes after
 * the last CRLF belong to the next message), or H1_ERR_BAD_REQUEST. */
/* Borrows buf; *c is the caller's state. */
int h1_chunked_scan(struct h1_chunked *c, const char *buf, size_t len);

/* 1 once the last chunk and the trailer section have been consumed.
 * Borrows c. */
int h1_chunked_done(const struct h1_chunked *c);

/* With c->hold_trailers set (before the first call), decode and scan
 * consume the last chunk's line and stop there, for a caller that
 * rewrites the trailer section: h1_chunked_at_trailers() is then 1 and
 * the section is parsed whole with h1_chunked_trailers. Borrows c. */
int h1_chunked_at_trailers(const struct h1_chunked *c);

/* Parses the complete trailer section at buf[0..len) (c at trailers):
 * its field lines into hs (capacity max; names and values point into buf,
 * values trimmed) and the empty line ending it. Returns the section's
 * length with *n set and c done, H1_INCOMPLETE while the empty line is
 * not in (the section so far is valid), or H1_ERR_BAD_REQUEST: the line
 * rules of the decoder (no Content-Length, Transfer-Encoding or Host),
 * more than max fields, or more than H1_CHUNK_TRAILERS_MAX bytes (also
 * when len exceeds that without the empty line). Errors are sticky.
 * Borrows buf; fills the caller's hs. */
int h1_chunked_trailers(struct h1_chunked *c, const char *buf, size_t len, struct h1_header *hs,
                        size_t max, size_t *n);

/* Helpers. */

/* 1 if s equals the NUL-terminated lit, ASCII case-insensitively. Borrows both. */
int h1_str_ieq(h1_str s, const char *lit);

/* 1 if the comma-separated list has an element equal (case-insensitively,
 * OWS-trimmed) to token. Borrows both. */
int h1_token_list_has(h1_str list, const char *token);
/* Same with a counted token. Borrows both. */
int h1_token_list_has_str(h1_str list, h1_str token);

/* 1 for the fields RFC 9110 section 7.6.1 says an intermediary removes:
 * Connection, Keep-Alive, Proxy-Connection, TE, Upgrade. Transfer-Encoding
 * is hop-by-hop too, but Strand forwards chunked framing byte for byte, so
 * the header must travel with it: it is deliberately not included here.
 * Trailer describes the (forwarded) trailer section and is end-to-end.
 * Proxy-Authorization is meant for this hop but is not listed by RFC 9110;
 * Strand does not authenticate proxies, so it is forwarded (a chain of
 * proxies may rely on it). Borrows name. */
int h1_header_is_hop_by_hop(h1_str name);

/* 1 if a proxy must not forward the field: hop-by-hop, or named in the
 * message's Connection value. Borrows both. */
int h1_header_should_strip(h1_str name, h1_str connection);

/* 1 if a proxy may write the trailer field name: value into an HTTP/1.1
 * trailer section: a token name, a field-value (no CR, LF or other CTL
 * but HTAB), and not a field that frames, routes or belongs to one hop
 * (Content-Length, Transfer-Encoding, Host, the hop-by-hop fields). For
 * trailers that came another way (HTTP/2, a filter's map). Borrows both. */
int h1_trailer_forwardable(h1_str name, h1_str value);

/* Standard reason phrase, "Unknown" for unknown codes. Returns a static string. */
const char *h1_status_reason(int status);

/* At most this many empty lines (CRLF) before a request line are skipped. */
#define H1_MAX_LEADING_CRLF 8

/* Character classes shared by the h1_*.c files, public so other modules
 * can validate names and values they generate. */
#define H1_C_TCHAR 0x01u  /* token character */
#define H1_C_VALUE 0x02u  /* field-value: VCHAR, obs-text, SP, HTAB */
#define H1_C_TARGET 0x04u /* request-target: VCHAR except '#' */
#define H1_C_HEX 0x08u
#define H1_C_HOST 0x10u   /* reg-name: unreserved and sub-delims except ',' */
#define H1_C_QDTEXT 0x20u /* quoted-string text without '"' and '\\' */
#define H1_C_OWS 0x40u    /* SP, HTAB */
extern const uint8_t h1_cclass[256];
extern const uint8_t h1_lower[256];

#define h1_is_tchar(c) (h1_cclass[(uint8_t)(c)] & H1_C_TCHAR)

#endif
