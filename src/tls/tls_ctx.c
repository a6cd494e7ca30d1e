/* tls_ctx.c - server and client TLS contexts.
 *
 * A context is read completely from its files when built (so a bad file is a
 * reload error, never a handshake-time surprise), then never changes: worker
 * threads share it and only call SSL_new on it, which OpenSSL allows
 * concurrently. A reference count lets a reload free the old context while
 * connections made from it are still running.
 *
 * A listener has one SSL_CTX whatever the number of certificates. The SNI
 * callback puts the chosen certificate on the connection itself
 * (SSL_use_cert_and_key) instead of swapping in a per-certificate SSL_CTX:
 * verification settings, the ALPN callback, session ticket keys and the
 * session id context then exist once, and the context holds no certificate
 * that could be picked by accident when certificates of different key types
 * are configured. */
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Certificate and key files are read whole; nothing real comes close. */
#define TLS_FILE_MAX (4u << 20)

struct srv_cert {
    X509 *leaf;
    EVP_PKEY *key;
    STACK_OF(X509) *chain; /* intermediates; NULL when none */
};

/* A name from tls_cert_spec.sni: exact names as written (lowercased),
 * wildcards as their suffix with the dot (".example.com"). */
struct srv_name {
    char *name;
    size_t cert;
};

struct tls_server {
    atomic_int refs;
    SSL_CTX *ctx;
    struct srv_cert *certs;
    size_t ncerts;
    size_t dflt;
    struct srv_name *exact, *wild; /* sorted by name for bsearch */
    size_t nexact, nwild;
    unsigned char *alpn; /* wire format: length-prefixed, preference order */
    size_t alpnlen;
};

struct tls_client {
    atomic_int refs;
    SSL_CTX *ctx;
    char *sni;
    int verify;
};

/* Formats "<file>: <what>[: <OpenSSL's reason>]" into err and clears the
 * thread's error queue so the next operation starts clean. file and what are
 * borrowed; file may be NULL. */
static void ctx_err(char *err, size_t errlen, const char *file, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (errlen > 0)
        snprintf(err, errlen, "%s%s%s%s%s", file ? file : "", file ? ": " : "", what,
                 reason ? ": " : "", reason ? reason : "");
    ERR_clear_error();
}

/* Reads the whole file into a memory BIO the caller frees, or NULL with
 * err set. Reading it ourselves gives errno-quality messages ("No such file
 * or directory") that OpenSSL's file BIOs bury in its error queue. */
static BIO *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    BIO *mem = BIO_new(BIO_s_mem());
    char chunk[8192];
    size_t n, total = 0;
    while (mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        total += n;
        if (total > TLS_FILE_MAX || BIO_write(mem, chunk, (int)n) != (int)n) {
            snprintf(err, errlen, "%s: %s", path, total > TLS_FILE_MAX ? "file too large" : "out of memory");
            BIO_free(mem);
            fclose(f);
            return NULL;
        }
    }
    if (!mem || ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, mem ? strerror(errno) : "out of memory");
        BIO_free(mem);
        mem = NULL;
    }
    fclose(f);
    return mem;
}

/* PEM password callback (buf is OpenSSL's, untouched): never prompts, so an
 * encrypted key fails to load instead of blocking on a tty. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* Whether the error queue's last entry is PEM's "no start line", i.e. the
 * reader simply ran out of PEM blocks. */
static int pem_at_end(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/* Whether the unread part of the memory BIO b (borrowed) contains what.
 * Used before parsing: OpenSSL's decoders report a file of something else
 * as "unsupported" and an encrypted key as "bad password read", both of
 * which point the operator the wrong way. */
static int mem_has(BIO *b, const char *what)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    return n > 0 && memmem(p, (size_t)n, what, strlen(what)) != NULL;
}

/* Loads a certificate chain file and its key into *out (which then owns
 * them). 0, or -1 with err set and nothing left allocated. */
static int load_cert(const char *cert_file, const char *key_file, struct srv_cert *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cert_file || !key_file) {
        snprintf(err, errlen, "a certificate needs both a certificate file and a key file");
        return -1;
    }
    ERR_clear_error();
    BIO *b = read_file(cert_file, err, errlen);
    if (!b)
        return -1;
    int pem = mem_has(b, "-----BEGIN ");
    out->leaf = PEM_read_bio_X509(b, NULL, no_password, NULL);
    if (!out->leaf) {
        int none = !pem || pem_at_end() || ERR_peek_last_error() == 0;
        if (none)
            ERR_clear_error(); /* "no start line" adds nothing */
        ctx_err(err, errlen, cert_file, none ? "no certificate found" : "bad certificate");
        BIO_free(b);
        return -1;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
        if ((!out->chain && !(out->chain = sk_X509_new_null())) || !sk_X509_push(out->chain, x)) {
            X509_free(x);
            snprintf(err, errlen, "%s: out of memory", cert_file);
            goto fail;
        }
    }
    if (!pem_at_end()) {
        ctx_err(err, errlen, cert_file, "bad certificate in chain");
        goto fail;
    }
    ERR_clear_error();
    BIO_free(b);
    b = read_file(key_file, err, errlen);
    if (!b)
        goto fail;
    pem = mem_has(b, "PRIVATE KEY-----");
    int encrypted = mem_has(b, "ENCRYPTED");
    out->key = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    if (!out->key) {
        if (!pem || encrypted)
            ERR_clear_error();
        ctx_err(err, errlen, key_file,
                !pem ? "no private key found"
                     : encrypted ? "encrypted private keys are not supported" : "cannot read private key");
        goto fail;
    }
    if (X509_check_private_key(out->leaf, out->key) != 1) {
        ctx_err(err, errlen, key_file, "private key does not match the certificate");
        goto fail;
    }
    BIO_free(b);
    return 0;
fail:
    BIO_free(b);
    X509_free(out->leaf);
    sk_X509_pop_free(out->chain, X509_free);
    EVP_PKEY_free(out->key);
    memset(out, 0, sizeof *out);
    return -1;
}

/* Maps "1.2"/"1.3" (borrowed; NULL = "1.2") to a protocol version, or 0. */
static int parse_version(const char *v)
{
    if (!v || strcmp(v, "1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(v, "1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

/* Builds ALPN's wire format (length-prefixed names) into a buffer the
 * caller frees with OPENSSL_free; *len gets its size. 0, or -1 with err. */
static int alpn_wire(const char **names, size_t n, unsigned char **out, size_t *len, char *err,
                     size_t errlen)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = names[i] ? strlen(names[i]) : 0;
        if (l == 0 || l > 255) {
            snprintf(err, errlen, "alpn: protocol names must be 1 to 255 bytes");
            return -1;
        }
        total += 1 + l;
    }
    if (total > 65535) {
        snprintf(err, errlen, "alpn: list too long");
        return -1;
    }
    unsigned char *p = *out = OPENSSL_malloc(total ? total : 1);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        *p++ = (unsigned char)l;
        memcpy(p, names[i], l);
        p += l;
    }
    *len = total;
    return 0;
}

/* Options and modes every context gets (ctx and min_version borrowed); see
 * docs/tls.md for the why. 0, or -1 with err. */
static int ctx_common(SSL_CTX *ctx, const char *min_version, char *err, size_t errlen)
{
    int v = parse_version(min_version);
    if (!v) {
        snprintf(err, errlen, "minVersion: \"%s\" is not 1.2 or 1.3", min_version);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, v);
    /* Renegotiation only buys a DoS vector here; an unexpected EOF is
     * reported as an ordinary close (the proxy's framing detects truncation). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes and moving buffers fit the proxy's bounded buffers;
     * releasing buffers makes an idle connection cost a few KiB, not ~34. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    return 0;
}

/* Lowercases a configured SNI name into a new string the caller frees, or
 * returns NULL when it is not a DNS name or a "*." wildcard of one. */
static char *sni_name_dup(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 253)
        return NULL;
    const char *rest = name;
    if (name[0] == '*') {
        if (name[1] != '.' || len < 3)
            return NULL;
        rest = name + 2;
    }
    for (const char *p = rest; *p; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '.' || ch == '_';
        if (!ok || (ch == '.' && (p == rest || p[1] == '.' || p[1] == '\0')))
            return NULL;
    }
    char *out = OPENSSL_strdup(name);
    for (char *p = out; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* qsort/bsearch order of struct srv_name; borrows both. */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct srv_name *)a)->name, ((const struct srv_name *)b)->name);
}

/* Returns the certificate index for name (borrowed, NULL allowed). */
static size_t pick_cert(const struct tls_server *s, const char *name)
{
    char low[256];
    size_t len = name ? strlen(name) : 0;
    if (len > 0 && name[len - 1] == '.')
        len--; /* "example.com." is example.com */
    if (len == 0 || len >= sizeof low)
        return s->dflt;
    for (size_t i = 0; i < len; i++)
        low[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    low[len] = '\0';
    struct srv_name key = {.name = low};
    const struct srv_name *hit = s->nexact ? bsearch(&key, s->exact, s->nexact, sizeof key, name_cmp) : NULL;
    if (hit)
        return hit->cert;
    char *dot = strchr(low, '.');
    if (dot && dot != low && s->nwild) {
        key.name = dot; /* one label replaced by the wildcard, no more */
        hit = bsearch(&key, s->wild, s->nwild, sizeof key, name_cmp);
        if (hit)
            return hit->cert;
    }
    return s->dflt;
}

/* SNI callback (arg: the tls_server, alive while any of its connections
 * is). Runs for every ClientHello, with or without a server_name, so the
 * default certificate is set here too. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    const struct tls_server *s = arg;
    const struct srv_cert *c = &s->certs[pick_cert(s, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))];
    if (SSL_use_cert_and_key(ssl, c->leaf, c->key, c->chain, 1) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN callback: the first of the server's protocols that the client offers
 * (server preference). *out points into s->alpn, which outlives the SSL.
 * No overlap is not fatal: the connection goes on without ALPN, which is
 * HTTP/1.1 for the proxy. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
    (void)ssl;
    const struct tls_server *s = arg;
    for (size_t i = 0; i < s->alpnlen; i += 1 + s->alpn[i]) {
        const unsigned char *want = s->alpn + i + 1;
        unsigned wl = s->alpn[i];
        for (unsigned j = 0; j < inlen;) {
            unsigned l = in[j];
            if (l == 0 || j + 1 + l > inlen)
                break; /* OpenSSL validated the list; stay bounded anyway */
            if (l == wl && memcmp(in + j + 1, want, wl) == 0) {
                *out = want;
                *outlen = (unsigned char)wl;
                return SSL_TLSEXT_ERR_OK;
            }
            j += 1 + l;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* Frees s and everything it owns; only when the last reference is gone. */
static void server_destroy(struct tls_server *s)
{
    SSL_CTX_free(s->ctx);
    for (size_t i = 0; i < s->ncerts; i++) {
        X509_free(s->certs[i].leaf);
        sk_X509_pop_free(s->certs[i].chain, X509_free);
        EVP_PKEY_free(s->certs[i].key);
    }
    for (size_t i = 0; i < s->nexact; i++)
        OPENSSL_free(s->exact[i].name);
    for (size_t i = 0; i < s->nwild; i++)
        OPENSSL_free(s->wild[i].name);
    OPENSSL_free(s->exact);
    OPENSSL_free(s->wild);
    OPENSSL_free(s->certs);
    OPENSSL_free(s->alpn);
    OPENSSL_free(s);
}

/* Fills s's SNI tables (owned by s) from spec (borrowed); 0, or -1 with err. */
static int server_names(struct tls_server *s, const struct tls_server_spec *spec, char *err, size_t errlen)
{
    size_t total = 0;
    int have_dflt = 0;
    for (size_t i = 0; i < spec->ncerts; i++) {
        total += spec->certs[i].nsni;
        if (spec->certs[i].nsni == 0 && !have_dflt) {
            s->dflt = i;
            have_dflt = 1;
        }
    }
    if (total == 0)
        return 0;
    s->exact = OPENSSL_zalloc(total * sizeof *s->exact);
    s->wild = OPENSSL_zalloc(total * sizeof *s->wild);
    if (!s->exact || !s->wild) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < spec->ncerts; i++) {
        for (size_t j = 0; j < spec->certs[i].nsni; j++) {
            const char *raw = spec->certs[i].sni[j];
            char *n = sni_name_dup(raw);
            if (!n) {
                snprintf(err, errlen, "%s: sni \"%.256s\" is not a DNS name or *.wildcard",
                         spec->certs[i].cert_file, raw ? raw : "");
                return -1;
            }
            if (n[0] == '*') {
                memmove(n, n + 1, strlen(n)); /* keep ".example.com" */
                s->wild[s->nwild++] = (struct srv_name){n, i};
            } else {
                s->exact[s->nexact++] = (struct srv_name){n, i};
            }
        }
    }
    qsort(s->exact, s->nexact, sizeof *s->exact, name_cmp);
    qsort(s->wild, s->nwild, sizeof *s->wild, name_cmp);
    for (int w = 0; w < 2; w++) {
        const struct srv_name *t = w ? s->wild : s->exact;
        size_t n = w ? s->nwild : s->nexact;
        for (size_t k = 1; k < n; k++)
            if (strcmp(t[k - 1].name, t[k].name) == 0) {
                snprintf(err, errlen, "sni \"%s%.256s\" is listed twice", w ? "*" : "", t[k].name);
                return -1;
            }
    }
    return 0;
}

/* Returns a new server context (see tls.h) or NULL with err. */
struct tls_server *tls_server_new(const struct tls_server_spec *spec, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    if (!spec || spec->ncerts == 0) {
        snprintf(err, errlen, "a TLS listener needs at least one certificate");
        return NULL;
    }
    if (spec->require_client_cert && !spec->client_ca_file) {
        snprintf(err, errlen, "requireClientCert needs clientCA");
        return NULL;
    }
    struct tls_server *s = OPENSSL_zalloc(sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    ERR_clear_error();
    s->certs = OPENSSL_zalloc(spec->ncerts * sizeof *s->certs);
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (!s->certs || !s->ctx) {
        ctx_err(err, errlen, NULL, "cannot create TLS context");
        goto fail;
    }
    for (size_t i = 0; i < spec->ncerts; i++, s->ncerts++)
        if (load_cert(spec->certs[i].cert_file, spec->certs[i].key_file, &s->certs[i], err, errlen) < 0)
            goto fail;
    if (server_names(s, spec, err, errlen) < 0 || ctx_common(s->ctx, spec->min_version, err, errlen) < 0)
        goto fail;
    /* Equal ciphers: let the server's (OpenSSL's default) order decide. */
    SSL_CTX_set_options(s->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Resumption by stateless tickets only: the shared session cache would
     * be a lock every worker contends on and memory held per session. */
    SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
    /* Required as soon as client certificates are verified, or resumed
     * handshakes fail; one constant is right as ticket keys are per context. */
    SSL_CTX_set_session_id_context(s->ctx, (const unsigned char *)"strand", 6);
    SSL_CTX_set_tlsext_servername_callback(s->ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(s->ctx, s);
    if (spec->nalpn > 0) {
        if (alpn_wire(spec->alpn, spec->nalpn, &s->alpn, &s->alpnlen, err, errlen) < 0)
            goto fail;
        SSL_CTX_set_alpn_select_cb(s->ctx, on_alpn, s);
    }
    if (spec->client_ca_file) {
        const char *ca = spec->client_ca_file;
        BIO *probe = read_file(ca, err, errlen); /* for a clear errno message */
        if (!probe)
            goto fail;
        BIO_free(probe);
        if (SSL_CTX_load_verify_file(s->ctx, ca) != 1) {
            ctx_err(err, errlen, ca, "cannot load CA certificates");
            goto fail;
        }
        /* The CA names go into CertificateRequest so clients with several
         * certificates can pick the right one. */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (!names) {
            ctx_err(err, errlen, ca, "no CA certificates found");
            goto fail;
        }
        SSL_CTX_set_client_CA_list(s->ctx, names);
        SSL_CTX_set_verify(s->ctx,
                           SSL_VERIFY_PEER | (spec->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    }
    ERR_clear_error();
    return s;
fail:
    server_destroy(s);
    return NULL;
}

/* Drops one reference to s (NULL allowed). */
void tls_server_free(struct tls_server *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        server_destroy(s);
}

/* Whether name (borrowed) is an IPv4 or IPv6 literal ("[::1]" too); the
 * bare address goes to the caller's ip buffer. */
static int ip_literal(const char *name, char *ip, size_t iplen)
{
    size_t len = strlen(name);
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        name++;
        len -= 2;
    }
    if (len == 0 || len >= iplen)
        return 0;
    memcpy(ip, name, len);
    ip[len] = '\0';
    unsigned char tmp[16];
    return inet_pton(AF_INET, ip, tmp) == 1 || inet_pton(AF_INET6, ip, tmp) == 1;
}

/* Frees c and everything it owns; only when the last reference is gone. */
static void client_destroy(struct tls_client *c)
{
    SSL_CTX_free(c->ctx);
    OPENSSL_free(c->sni);
    OPENSSL_free(c);
}

/* Returns a new client context (see tls.h) or NULL with err. */
struct tls_client *tls_client_new(const struct tls_client_spec *spec, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    if (!spec) {
        snprintf(err, errlen, "no TLS client spec");
        return NULL;
    }
    if (!spec->cert_file != !spec->key_file) {
        snprintf(err, errlen, "a client certificate needs both certFile and keyFile");
        return NULL;
    }
    if (spec->sni && (spec->sni[0] == '\0' || strlen(spec->sni) > 255)) {
        snprintf(err, errlen, "sni: must be 1 to 255 bytes");
        return NULL;
    }
    struct tls_client *c = OPENSSL_zalloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->verify = spec->verify;
    ERR_clear_error();
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx || (spec->sni && !(c->sni = OPENSSL_strdup(spec->sni)))) {
        ctx_err(err, errlen, NULL, "cannot create TLS context");
        goto fail;
    }
    if (ctx_common(c->ctx, spec->min_version, err, errlen) < 0)
        goto fail;
    if (spec->verify) {
        if (spec->ca_file) {
            BIO *probe = read_file(spec->ca_file, err, errlen);
            if (!probe)
                goto fail;
            BIO_free(probe);
            if (SSL_CTX_load_verify_file(c->ctx, spec->ca_file) != 1) {
                ctx_err(err, errlen, spec->ca_file, "cannot load CA certificates");
                goto fail;
            }
        } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
            ctx_err(err, errlen, NULL, "cannot load the system CA certificates");
            goto fail;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    }
    if (spec->nalpn > 0) {
        unsigned char *wire;
        size_t len;
        if (alpn_wire(spec->alpn, spec->nalpn, &wire, &len, err, errlen) < 0)
            goto fail;
        int bad = SSL_CTX_set_alpn_protos(c->ctx, wire, (unsigned)len); /* 0 is success */
        OPENSSL_free(wire);
        if (bad) {
            ctx_err(err, errlen, NULL, "alpn: cannot set protocols");
            goto fail;
        }
    }
    if (spec->cert_file) {
        struct srv_cert cc;
        if (load_cert(spec->cert_file, spec->key_file, &cc, err, errlen) < 0)
            goto fail;
        int ok = SSL_CTX_use_cert_and_key(c->ctx, cc.leaf, cc.key, cc.chain, 1);
        X509_free(cc.leaf); /* the context took its own references */
        sk_X509_pop_free(cc.chain, X509_free);
        EVP_PKEY_free(cc.key);
        if (ok != 1) {
            ctx_err(err, errlen, spec->cert_file, "cannot use the client certificate");
            goto fail;
        }
    }
    ERR_clear_error();
    return c;
fail:
    client_destroy(c);
    return NULL;
}

/* Drops one reference to c (NULL allowed). */
void tls_client_free(struct tls_client *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        client_destroy(c);
}

/* Returns a new server-side SSL on fd owned by the caller; holds a ref on s. */
struct ssl_st *tls_ctx_server_ssl(struct tls_server *s, int fd)
{
    SSL *ssl = SSL_new(s->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    atomic_fetch_add(&s->refs, 1);
    return ssl;
}

/* Returns a new client-side SSL on fd owned by the caller; holds a ref on c.
 * sni is borrowed. */
struct ssl_st *tls_ctx_client_ssl(struct tls_client *c, int fd, const char *sni)
{
    const char *name = sni ? sni : c->sni;
    SSL *ssl = SSL_new(c->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1)
        goto fail;
    SSL_set_connect_state(ssl);
    if (name && *name) {
        char ip[64];
        if (ip_literal(name, ip, sizeof ip)) {
            /* RFC 6066 forbids IP addresses in SNI; check the IP SAN instead. */
            if (c->verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) != 1)
                goto fail;
        } else {
            if (SSL_set_tlsext_host_name(ssl, name) != 1)
                goto fail;
            if (c->verify) {
                SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                if (SSL_set1_host(ssl, name) != 1)
                    goto fail;
            }
        }
    }
    atomic_fetch_add(&c->refs, 1);
    return ssl;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}
