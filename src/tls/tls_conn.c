/* tls_conn.c - one TLS connection over a non-blocking fd.
 *
 * A thin layer over SSL_read_ex/SSL_write_ex that turns OpenSSL's error
 * protocol into the values the event loop needs (bytes, 0 for EOF,
 * TLS_WANT_READ/WRITE, TLS_ERR) and keeps OpenSSL's rules out of the proxy:
 * the per-thread error queue is cleared before every call (a stale entry
 * would turn a harmless WANT_READ into a fatal error), nothing is called
 * again after a fatal error, and everything the proxy asks about the peer
 * (ALPN, SPIFFE identity) is computed once when the handshake completes. */
#include "tls/tls.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Small writes are copied together up to one full TLS record. */
#define TLS_STAGE 16384

struct tls_conn {
    SSL *ssl;
    struct tls_server *srv; /* the reference this connection holds */
    struct tls_client *cli;
    char *err;              /* last error, or NULL */
    char *alpn;             /* NUL-terminated copy of the negotiated protocol */
    char *identity;         /* verified SPIFFE ID */
    unsigned established : 1;
    unsigned failed : 1;    /* a fatal error happened: OpenSSL must not be called */
};

/* Returns a connection owning ssl (and the context reference it carries),
 * or NULL after freeing ssl. */
static struct tls_conn *conn_wrap(SSL *ssl, struct tls_server *s, struct tls_client *cl)
{
    if (!ssl)
        return NULL;
    struct tls_conn *c = OPENSSL_zalloc(sizeof *c);
    if (!c) {
        SSL_free(ssl);
        tls_server_free(s);
        tls_client_free(cl);
        return NULL;
    }
    c->ssl = ssl;
    c->srv = s;
    c->cli = cl;
    return c;
}

/* Returns a new connection (caller frees) on the borrowed fd, or NULL. */
struct tls_conn *tls_conn_server(struct tls_server *s, int fd)
{
    return conn_wrap(tls_ctx_server_ssl(s, fd), s, NULL);
}

/* Returns a new connection (caller frees) on the borrowed fd, or NULL. */
struct tls_conn *tls_conn_client(struct tls_client *c, int fd, const char *sni_override)
{
    return conn_wrap(tls_ctx_client_ssl(c, fd, sni_override), NULL, c);
}

/* Frees c and drops its context reference; takes ownership of c. */
void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    tls_server_free(c->srv);
    tls_client_free(c->cli);
    OPENSSL_free(c->err);
    OPENSSL_free(c->alpn);
    OPENSSL_free(c->identity);
    OPENSSL_free(c);
}

/* Records the error text (what and detail are borrowed; detail may be NULL),
 * marks c failed and returns TLS_ERR. */
static int conn_fail(struct tls_conn *c, const char *what, const char *detail)
{
    size_t n = strlen(what) + (detail ? strlen(detail) + 2 : 0) + 1;
    char *e = OPENSSL_malloc(n);
    if (e) {
        strcpy(e, what);
        if (detail) {
            strcat(e, ": ");
            strcat(e, detail);
        }
    }
    OPENSSL_free(c->err);
    c->err = e;
    c->failed = 1;
    ERR_clear_error();
    return TLS_ERR;
}

/* Called once the handshake is known to be complete (borrows c): caches
 * what the accessors return so they stay const and cheap. */
static void conn_established(struct tls_conn *c)
{
    c->established = 1;
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(c->ssl, &p, &len);
    if (len > 0)
        c->alpn = OPENSSL_strndup((const char *)p, len);
    /* Identity only from a chain this side asked to verify and that did
     * verify (a resumed session carries the original result and cert). */
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer && (SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER) &&
        SSL_get_verify_result(c->ssl) == X509_V_OK) {
        char id[TLS_SPIFFE_ID_MAX + 1];
        if (tls_id_from_x509(peer, id, sizeof id) == 0)
            c->identity = OPENSSL_strdup(id);
    }
}

/* Borrows c; cheap enough to run after every OpenSSL call. */
static inline void check_established(struct tls_conn *c)
{
    if (!c->established && SSL_is_init_finished(c->ssl))
        conn_established(c);
}

/* Maps a failed SSL_* call on c (borrowed; ret as it returned, sys_errno
 * the errno right after it) to 0 (peer closed), TLS_WANT_* or TLS_ERR. */
static int conn_result(struct tls_conn *c, int ret, int sys_errno)
{
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        if (!SSL_is_init_finished(c->ssl))
            return conn_fail(c, "connection closed during handshake", NULL);
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && sys_errno == 0) { /* EOF without close_notify */
            if (!SSL_is_init_finished(c->ssl))
                return conn_fail(c, "connection closed during handshake", NULL);
            return 0;
        }
        if (ERR_peek_error() == 0)
            return conn_fail(c, strerror(sys_errno), NULL);
        break;
    default:
        break;
    }
    unsigned long err = ERR_peek_error();
    const char *reason = err ? ERR_reason_error_string(err) : NULL;
    if (!reason)
        reason = "TLS error";
    const char *detail = NULL;
    if (ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED)
        detail = X509_verify_cert_error_string(SSL_get_verify_result(c->ssl));
    return conn_fail(c, reason, detail);
}

/* Borrows c. */
int tls_conn_handshake(struct tls_conn *c)
{
    if (c->failed)
        return TLS_ERR;
    if (c->established)
        return 1;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    int sys = errno;
    if (r == 1) {
        check_established(c);
        return 1;
    }
    return conn_result(c, r, sys);
}

/* SSL_free_buffers could free a buffer still in use before 3.0.14
 * (CVE-2024-4741); on older libraries idle clients keep their buffer. */
static int free_buffers_safe(void)
{
    return OpenSSL_version_num() >= 0x300000e0UL;
}

/* buf is borrowed; len must be > 0. */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
    if (c->failed)
        return TLS_ERR;
    if (len == 0)
        return TLS_WANT_READ; /* nothing can be read into no room; not EOF */
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    int ok = SSL_read_ex(c->ssl, buf, len, &n);
    int sys = errno;
    check_established(c);
    if (ok == 1)
        return (ssize_t)n;
    int r = conn_result(c, 0, sys);
    if (r == TLS_WANT_READ && c->established && free_buffers_safe())
        /* RELEASE_BUFFERS only lets go of the read buffer after application
         * data; a connection whose last record was a session ticket (every
         * fresh TLS 1.3 client) would keep 16 KiB while idle. This frees
         * nothing when part of a record is buffered. */
        SSL_free_buffers(c->ssl);
    return r;
}

/* Advances (*i, *off) over iov by n bytes; all borrowed from the caller. */
static void iov_advance(const struct iovec *iov, int iovcnt, int *i, size_t *off, size_t n)
{
    while (n > 0 && *i < iovcnt) {
        size_t left = iov[*i].iov_len - *off;
        if (n < left) {
            *off += n;
            return;
        }
        n -= left;
        (*i)++;
        *off = 0;
    }
}

/* Writes the iovecs in order (borrowed). With partial writes on, OpenSSL
 * returns after each record, so this keeps going until the socket pushes
 * back; a short count then only means "the rest later". */
ssize_t tls_conn_writev(struct tls_conn *c, const struct iovec *iov, int iovcnt)
{
    if (c->failed)
        return TLS_ERR;
    unsigned char stage[TLS_STAGE];
    size_t total = 0, off = 0;
    int i = 0;
    for (;;) {
        while (i < iovcnt && off >= iov[i].iov_len) {
            i++;
            off = 0;
        }
        if (i >= iovcnt)
            break;
        const unsigned char *p = (const unsigned char *)iov[i].iov_base + off;
        size_t n = iov[i].iov_len - off;
        if (n < TLS_STAGE && i + 1 < iovcnt) {
            /* Copy what follows behind this piece, up to one record. After a
             * WANT_WRITE the caller offers the same bytes again, so the
             * retry stages the same prefix (ACCEPT_MOVING_WRITE_BUFFER makes
             * the new address fine). */
            size_t k = 0, o = off;
            for (int j = i; j < iovcnt && k < TLS_STAGE;) {
                size_t take = iov[j].iov_len - o;
                if (take > TLS_STAGE - k)
                    take = TLS_STAGE - k;
                if (take > 0) /* an empty iovec may have a NULL base */
                    memcpy(stage + k, (const unsigned char *)iov[j].iov_base + o, take);
                k += take;
                o += take;
                if (o >= iov[j].iov_len) {
                    j++;
                    o = 0;
                }
            }
            if (k > n) {
                p = stage;
                n = k;
            }
        }
        size_t w = 0;
        ERR_clear_error();
        errno = 0;
        int ok = SSL_write_ex(c->ssl, p, n, &w);
        int sys = errno;
        check_established(c);
        if (ok != 1) {
            int r = conn_result(c, 0, sys);
            if (r == 0) /* the peer's close_notify came in while writing */
                r = conn_fail(c, "connection closed by peer", NULL);
            if (r == TLS_ERR && total > 0) {
                c->failed = 1; /* report the bytes now, the error next call */
                return (ssize_t)total;
            }
            return total > 0 ? (ssize_t)total : r;
        }
        total += w;
        iov_advance(iov, iovcnt, &i, &off, w);
    }
    return (ssize_t)total;
}

/* Borrows c. */
int tls_conn_shutdown(struct tls_conn *c)
{
    if (c->failed)
        return TLS_ERR;
    if (!SSL_is_init_finished(c->ssl))
        return 0; /* OpenSSL refuses to close a handshake in progress */
    ERR_clear_error();
    errno = 0;
    int r = SSL_shutdown(c->ssl);
    int sys = errno;
    if (r == 1)
        return 1;
    if (r == 0)
        return 0;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE)
        return TLS_WANT_WRITE;
    if (e == SSL_ERROR_WANT_READ) /* ours is out; called again, it waits for theirs */
        return 0;
    return conn_result(c, r, sys);
}

/* Borrows c. */
int tls_conn_pending(const struct tls_conn *c)
{
    return c->failed ? 0 : SSL_pending(c->ssl);
}

/* Returns a name borrowed from c's SSL, or NULL. */
const char *tls_conn_sni(const struct tls_conn *c)
{
    return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

/* Returns a string borrowed from c, or NULL. */
const char *tls_conn_alpn(const struct tls_conn *c) { return c->alpn; }

/* Returns a string borrowed from c, or NULL. */
const char *tls_conn_peer_identity(const struct tls_conn *c) { return c->identity; }

/* Returns a static string, or NULL before the handshake completed. */
const char *tls_conn_version(const struct tls_conn *c)
{
    return c->established ? SSL_get_version(c->ssl) : NULL;
}

/* Borrows c. */
int tls_conn_resumed(const struct tls_conn *c)
{
    return c->established && SSL_session_reused(c->ssl);
}

/* Writes into out (borrowed, outlen bytes). */
int tls_conn_peer_subject(const struct tls_conn *c, char *out, size_t outlen)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (!peer || outlen == 0)
        return -1;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return -1;
    int r = -1;
    if (X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, out, (int)(outlen - 1 > 65536 ? 65536 : outlen - 1));
        out[n > 0 ? n : 0] = '\0';
        r = 0;
    }
    BIO_free(b);
    ERR_clear_error();
    return r;
}

/* Returns a string borrowed from c. */
const char *tls_conn_error(const struct tls_conn *c) { return c->err ? c->err : ""; }
