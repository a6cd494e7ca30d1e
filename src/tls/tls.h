/* tls.h - TLS for listeners and upstreams: contexts, connections, identity.
 *
 * Everything TLS-specific lives behind this page so the proxy only swaps its
 * read()/writev() calls for tls_conn_read()/tls_conn_writev() and adds two
 * rules to its event handling: a TLS_WANT_* result says which readiness to
 * wait for (a read may need the socket writable and vice versa), and bytes
 * already decrypted inside OpenSSL (tls_conn_pending) must be consumed
 * before waiting on epoll again.
 *
 * Contexts (tls_server, tls_client) are built once per configuration
 * generation by reading every file up front; they are immutable afterwards
 * and shared by all worker threads. Each connection holds a reference, so a
 * reload may free the old context while its connections finish.
 *
 * Connections are OpenSSL 3 objects over a non-blocking fd the caller owns.
 * The handshake runs implicitly on the first read/write, or explicitly with
 * tls_conn_handshake() (to get the peer's identity before any data).
 *
 * Two pure parsers need no handshake and no OpenSSL state, so they are safe
 * on hostile input and fuzzed: tls_peek_client_hello() (SNI/ALPN for TLS
 * passthrough) and tls_spiffe_id_from_der() (the SPIFFE ID of a cert). */
#ifndef STRAND_TLS_H
#define STRAND_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls_server;
struct tls_client;
struct tls_conn;

/* Results of the non-blocking calls (all negative; 0 and >0 mean data). */
#define TLS_ERR (-1)        /* fatal; tls_conn_error() says why */
#define TLS_WANT_READ (-2)  /* retry when the fd is readable */
#define TLS_WANT_WRITE (-3) /* retry when the fd is writable */

/* Longest SPIFFE ID accepted (bytes, without the NUL). */
#define TLS_SPIFFE_ID_MAX 2048
/* Largest ClientHello message tls_peek_client_hello() accepts. */
#define TLS_HELLO_MAX 16384

/* One certificate of a listener. cert_file holds the leaf first, then any
 * intermediates (PEM); key_file the matching unencrypted private key. sni:
 * lowercase names this certificate serves ("api.example.com", or
 * "*.example.com" for exactly one extra label); nsni == 0 makes it the
 * default for clients that send no or an unknown name. Without such a
 * default the first certificate is the default. */
struct tls_cert_spec {
    const char *cert_file;
    const char *key_file;
    const char **sni;
    size_t nsni;
};

struct tls_server_spec {
    const struct tls_cert_spec *certs; /* at least one */
    size_t ncerts;
    const char **alpn;          /* server preference order, e.g. "h2", "http/1.1" */
    size_t nalpn;               /* 0 = no ALPN */
    const char *client_ca_file; /* mTLS: verify client certs against these CAs */
    int require_client_cert;    /* needs client_ca_file; no cert -> handshake fails */
    const char *min_version;    /* "1.2" (default when NULL) or "1.3" */
};

struct tls_client_spec {
    const char *ca_file;    /* NULL = the system's default CA paths */
    int verify;             /* 0 = accept any server certificate */
    const char *sni;        /* DNS name (sent as SNI, hostname-checked) or IP
                             * literal (not sent, checked against IP SANs);
                             * NULL = no SNI and only the chain is verified */
    const char **alpn;      /* offered in this order */
    size_t nalpn;
    const char *cert_file;  /* mTLS client certificate chain, or NULL */
    const char *key_file;   /* its key; both or neither */
    const char *min_version;/* "1.2" (default when NULL) or "1.3" */
};

/* Builds a server context by reading every file now. spec and its strings
 * are only read during the call. Returns a context the caller releases with
 * tls_server_free, or NULL with err set to "<file>: <reason>" (or a plain
 * reason when no file is to blame), truncated to errlen. */
struct tls_server *tls_server_new(const struct tls_server_spec *spec, char *err, size_t errlen);
/* Builds a client context; same ownership and errors as tls_server_new. */
struct tls_client *tls_client_new(const struct tls_client_spec *spec, char *err, size_t errlen);
/* Drops the caller's reference (NULL allowed). Connections made from the
 * context keep their own, so it is freed with the last of them. Thread-safe. */
void tls_server_free(struct tls_server *s);
void tls_client_free(struct tls_client *c);

/* Starts the server side of a connection on fd (borrowed: never closed
 * here). Takes a reference on s. Returns a connection the caller frees with
 * tls_conn_free, or NULL when out of memory. */
struct tls_conn *tls_conn_server(struct tls_server *s, int fd);
/* Starts the client side on fd (borrowed). sni_override (borrowed, may be
 * NULL) replaces the context's sni for this connection, same rules. Takes a
 * reference on c. Returns a connection the caller frees, or NULL. */
struct tls_conn *tls_conn_client(struct tls_client *c, int fd, const char *sni_override);
/* Frees the connection (NULL allowed) without sending anything; the fd stays
 * open. Call tls_conn_shutdown first for a clean close. */
void tls_conn_free(struct tls_conn *c);

/* Drives the handshake: 1 when complete, TLS_WANT_READ/WRITE, or TLS_ERR.
 * With TLS 1.3 a client may see 1 before the server has checked the client
 * certificate; a rejection then shows up as TLS_ERR on the next read. */
int tls_conn_handshake(struct tls_conn *c);
/* Reads up to len (> 0) decrypted bytes into buf (borrowed). Returns >0
 * bytes, 0 when the peer closed (close_notify, or a plain EOF: see
 * docs/tls.md), TLS_WANT_*, or TLS_ERR. Returns TLS_WANT_READ when the
 * handshake is not done yet and the socket has nothing more. While idle
 * (TLS_WANT_READ after the handshake) the record buffers are given back. */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len);
/* Encrypts and sends the iovecs (borrowed). Returns the bytes accepted (may
 * be fewer than offered; they are on the wire or committed to it), 0 for
 * nothing offered, or TLS_WANT_* / TLS_ERR when nothing was accepted (an
 * error after some bytes is reported by the next call). After TLS_WANT_WRITE the
 * caller must offer the same bytes again (the buffer may move; more bytes
 * may follow). Small iovecs are copied together so that they make one TLS
 * record instead of one each. */
ssize_t tls_conn_writev(struct tls_conn *c, const struct iovec *iov, int iovcnt);
/* Sends close_notify without waiting for the peer's. Returns 1 when the
 * peer's close_notify had already arrived too, 0 when ours is sent (or the
 * handshake never finished, so there is nothing to close), TLS_WANT_WRITE to
 * be called again when writable, TLS_ERR after a fatal error. */
int tls_conn_shutdown(struct tls_conn *c);
/* Decrypted bytes waiting inside OpenSSL: while > 0 the caller must read
 * again instead of waiting for epoll (the kernel may have nothing left). */
int tls_conn_pending(const struct tls_conn *c);

/* Accessors. Returned strings are borrowed from c and valid until
 * tls_conn_free; all return NULL before the handshake has completed (except
 * tls_conn_error and tls_conn_sni on a client). */
/* Server: the name the client sent (as sent); client: the name we sent. */
const char *tls_conn_sni(const struct tls_conn *c);
/* The negotiated ALPN protocol, or NULL when none was agreed. */
const char *tls_conn_alpn(const struct tls_conn *c);
/* The peer certificate's first spiffe:// URI SAN, only when the peer sent a
 * certificate and it verified against the configured CAs (server with a
 * client CA, or client with verify on); NULL otherwise. */
const char *tls_conn_peer_identity(const struct tls_conn *c);
/* The protocol version in use ("TLSv1.3") or NULL. */
const char *tls_conn_version(const struct tls_conn *c);
/* 1 when the session was resumed from a ticket, else 0. */
int tls_conn_resumed(const struct tls_conn *c);
/* Writes the peer certificate's subject as one line ("CN=api,O=x", RFC 2253
 * order) into out (truncated to outlen). Returns 0, or -1 when there is no
 * peer certificate. Verified or not: for logs and tests, not for policy. */
int tls_conn_peer_subject(const struct tls_conn *c, char *out, size_t outlen);
/* The last error of c as text ("certificate verify failed: certificate has
 * expired"), or "" when there was none. */
const char *tls_conn_error(const struct tls_conn *c);

/* Pure helpers: no I/O, nothing kept between calls, bounded, fuzzed. */

/* Finds the first URI SAN of the DER certificate der[0..len) that starts
 * with "spiffe://" and checks it with tls_spiffe_id_check. The signature is
 * not checked (that is the handshake's job). Returns 0 and the ID in out
 * (NUL-terminated), or -1 when the certificate does not parse, has no such
 * SAN, that SAN is invalid (a later one is not tried), or it does not fit
 * outlen. */
int tls_spiffe_id_from_der(const unsigned char *der, size_t len, char *out, size_t outlen);
/* Checks SPIFFE ID syntax: "spiffe://" + trust domain of [a-z0-9._-]
 * (1..255 bytes) + zero or more "/segment" of [A-Za-z0-9._-] (not "." or
 * ".."), so no port, userinfo, query, fragment, percent-encoding or trailing
 * slash; at most TLS_SPIFFE_ID_MAX bytes. Returns 0 when valid, else -1. */
int tls_spiffe_id_check(const char *id, size_t len);

/* Parses the ClientHello at the start of a connection's bytes buf[0..len)
 * without consuming them (TLS passthrough: route by SNI/ALPN before any
 * handshake). The message may span several handshake records. Returns 1
 * when the whole ClientHello is there and well formed: sni gets the
 * host_name lowercased ("" when none was sent; a name that does not fit
 * snilen makes the result -1, so give it 256), alpn the protocols joined by
 * commas ("" when none; protocols that are not printable ASCII or contain a
 * comma are skipped; those that do not fit alpnlen are dropped from the
 * end). Either output may be NULL with a length of 0. Returns 0 when more
 * bytes are needed, -1 when this is not TLS or the hello is malformed or
 * larger than TLS_HELLO_MAX. */
int tls_peek_client_hello(const unsigned char *buf, size_t len, char *sni, size_t snilen,
                          char *alpn, size_t alpnlen);

/* Internal to src/tls: tls_ctx.c builds SSL objects that tls_conn.c wraps,
 * and tls_conn.c asks tls_id.c about the peer certificate. Typed with
 * OpenSSL's struct tags so this header needs no OpenSSL include. */
struct ssl_st;
struct x509_st;
/* A new server-side SSL for fd that the caller frees; takes a reference on s
 * (drop it with tls_server_free). NULL when out of memory. */
struct ssl_st *tls_ctx_server_ssl(struct tls_server *s, int fd);
/* A new client-side SSL for fd with SNI and name checks for sni (borrowed,
 * NULL = the context's); takes a reference on c. NULL on failure. */
struct ssl_st *tls_ctx_client_ssl(struct tls_client *c, int fd, const char *sni);
/* tls_spiffe_id_from_der for a parsed certificate x (borrowed). */
int tls_id_from_x509(const struct x509_st *x, char *out, size_t outlen);

#endif
