/* test_tls.c - unit tests for the TLS layer (src/tls).
 *
 * At start the test makes its own PKI with the openssl CLI in a mkdtemp
 * directory: a root CA, an intermediate, server certificates (one for
 * localhost + api.example.com + 127.0.0.1, one RSA for *.other.test, one
 * behind the intermediate, an expired one), client certificates (SPIFFE URI
 * SAN, none, one from another CA) and odd SAN mixes for the SPIFFE parser.
 * Every handshake is real: both ends are non-blocking sockets (socketpairs,
 * one loopback TCP pair) driven by a small poll() loop with bounded
 * iterations. Covered: SNI selection, ALPN, mTLS and SPIFFE identity,
 * verification failures, 1 MiB transfers both ways with partial writes,
 * record coalescing on the wire, clean and unclean close, session
 * resumption, contexts shared by threads and freed under live connections,
 * the ClientHello peek on a captured hello, the SPIFFE DER parser on good
 * and hostile input, and the memory an idle connection keeps (OpenSSL's
 * allocations are counted through CRYPTO_set_mem_functions).
 *
 * `test_tls --write-corpus DIR` also writes the captured hellos and test
 * certificates as fuzz seeds (tests/fuzz/corpus/tls_hello). */
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "check.h"

static char dir[64];


/* Borrows both; NULL equals nothing. */
static int streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }
/* Returns s or a static "(null)" for printing. */
static const char *nz(const char *s) { return s ? s : "(null)"; }

/* ---- counting allocator for OpenSSL (memory per idle connection) ---- */

static atomic_size_t live_bytes;

/* Returns memory the caller frees with cm_free; a 16-byte header keeps the
 * size (and malloc's alignment). */
static void *cm_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = n;
    atomic_fetch_add(&live_bytes, n);
    return (char *)p + 16;
}

/* Takes ownership of q. */
static void cm_free(void *q, const char *file, int line)
{
    (void)file, (void)line;
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    atomic_fetch_sub(&live_bytes, p[0]);
    free(p);
}

/* Takes ownership of q, returns memory the caller frees with cm_free. */
static void *cm_realloc(void *q, size_t n, const char *file, int line)
{
    if (!q)
        return cm_malloc(n, file, line);
    if (n == 0) {
        cm_free(q, file, line);
        return NULL;
    }
    size_t *p = (size_t *)((char *)q - 16);
    size_t old = p[0];
    size_t *np = realloc(p, n + 16);
    if (!np)
        return NULL;
    np[0] = n;
    atomic_fetch_sub(&live_bytes, old);
    atomic_fetch_add(&live_bytes, n);
    return (char *)np + 16;
}

/* ---- the test PKI ---- */

/* Returns a path in dir, from a small ring of static buffers (borrowed). */
static const char *P(const char *file)
{
    static char ring[16][160];
    static int next;
    char *b = ring[next++ % 16];
    snprintf(b, sizeof ring[0], "%s/%s", dir, file);
    return b;
}

/* Runs a shell command in dir, output to dir/openssl.log. 0 or -1. */
static int sh(const char *fmt, ...)
{
    char cmd[2048], inner[1800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(inner, sizeof inner, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && (%s) >>openssl.log 2>&1", dir, inner);
    int r = system(cmd);
    if (r != 0)
        fprintf(stderr, "command failed (%d): %s\n", r, inner);
    return r == 0 ? 0 : -1;
}

#define EC_KEY_ARGS "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1"

/* A self-signed root CA name.pem / name.key. */
static int mkca(const char *name, const char *cn)
{
    return sh("openssl req -x509 " EC_KEY_ARGS " -nodes -keyout %s.key -out %s.pem -subj '/CN=%s' -days 30"
              " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
              name, name, cn);
}

/* A certificate name.pem / name.key signed by ca. san: the subjectAltName
 * value or NULL; days may be negative (already expired). */
static int mkcert(const char *name, const char *cn, const char *san, const char *ca, int days, int rsa,
                  int is_ca)
{
    static int serial = 1000;
    char cnf[160];
    snprintf(cnf, sizeof cnf, "%s/%s.cnf", dir, name);
    FILE *f = fopen(cnf, "w");
    if (!f)
        return -1;
    fprintf(f, "[v3]\nbasicConstraints=%s\n", is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca)
        fprintf(f, "keyUsage=critical,keyCertSign,cRLSign\n");
    if (san)
        fprintf(f, "subjectAltName=%s\n", san);
    fclose(f);
    if (sh("openssl req -new %s -nodes -keyout %s.key -out %s.csr -subj '/CN=%s'",
           rsa ? "-newkey rsa:2048" : EC_KEY_ARGS, name, name, cn) < 0)
        return -1;
    return sh("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -set_serial %d -days %d"
              " -extfile %s.cnf -extensions v3 -out %s.pem",
              name, ca, ca, serial++, days, name, name);
}

static int make_pki(void)
{
    int r = 0;
    r |= mkca("ca", "Strand Test CA");
    r |= mkca("ca2", "Other CA");
    r |= mkcert("int", "Strand Intermediate", NULL, "ca", 30, 0, 1);
    r |= mkcert("srv", "api", "DNS:localhost,DNS:api.example.com,IP:127.0.0.1", "ca", 30, 0, 0);
    r |= mkcert("other", "other", "DNS:*.other.test", "ca", 30, 1, 0);
    r |= mkcert("leaf3", "chain", "DNS:chain.test", "int", 30, 0, 0);
    r |= sh("cat leaf3.pem int.pem > chain3.pem");
    r |= mkcert("expired", "expired", "DNS:localhost,DNS:api.example.com", "ca", -1, 0, 0);
    r |= mkcert("web", "web", "URI:spiffe://cluster.local/ns/default/sa/web", "ca", 30, 0, 0);
    r |= mkcert("nouri", "nouri", "DNS:nouri.test", "ca", 30, 0, 0);
    r |= mkcert("intruder", "intruder", "URI:spiffe://cluster.local/ns/default/sa/web", "ca2", 30, 0, 0);
    r |= mkcert("multi", "multi",
                "URI:https://example.com/a,URI:urn:uuid:1234,URI:spiffe://cluster.local/ns/a/sa/b,"
                "URI:spiffe://other.td/x",
                "ca", 30, 0, 0);
    r |= mkcert("badid", "badid", "URI:spiffe://Cluster.Local/ns/x,URI:spiffe://ok.td/x", "ca", 30, 0, 0);
    r |= mkcert("portid", "portid", "URI:spiffe://td:8080/x", "ca", 30, 0, 0);
    r |= sh("printf 'not a certificate\\n' > junk.pem");
    r |= sh("openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -aes256 -pass pass:x -out enc.key");
    return r ? -1 : 0;
}

/* Returns the DER of a PEM certificate in a malloc'd buffer the caller
 * frees, or NULL. */
static unsigned char *der_of(const char *pem, size_t *len)
{
    FILE *f = fopen(P(pem), "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    unsigned char *out = NULL;
    int n = x ? i2d_X509(x, &out) : -1;
    X509_free(x);
    if (n <= 0)
        return NULL;
    unsigned char *copy = malloc((size_t)n);
    memcpy(copy, out, (size_t)n);
    OPENSSL_free(out);
    *len = (size_t)n;
    return copy;
}

/* ---- driving non-blocking connections ---- */

/* One end: our tls_conn, or a raw OpenSSL SSL (for resumption tests). */
struct ep {
    struct tls_conn *c;
    SSL *raw;
    int fd;
    int state; /* 0 running, 1 done, -1 failed, after drive() */
    int want;
};

/* Maps a raw SSL call's failure like tls_conn does; borrows ssl. */
static int raw_result(SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ)
        return TLS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return TLS_WANT_WRITE;
    return TLS_ERR;
}

/* One handshake step of e (borrowed). */
static int ep_step(struct ep *e)
{
    if (e->c)
        return tls_conn_handshake(e->c);
    int r = SSL_do_handshake(e->raw);
    return r == 1 ? 1 : raw_result(e->raw, r);
}

/* Runs both handshakes until each is done or failed, or nothing moves for
 * half a second; bounded. */
static void drive(struct ep *a, struct ep *b)
{
    struct ep *e[2] = {a, b};
    a->state = b->state = 0;
    for (int it = 0; it < 2000; it++) {
        for (int k = 0; k < 2; k++) {
            if (e[k]->state != 0)
                continue;
            int r = ep_step(e[k]);
            if (r == 1)
                e[k]->state = 1;
            else if (r == TLS_ERR)
                e[k]->state = -1;
            else
                e[k]->want = r;
        }
        if (a->state && b->state)
            return;
        struct pollfd pfd[2];
        int n = 0;
        for (int k = 0; k < 2; k++)
            if (e[k]->state == 0)
                pfd[n++] = (struct pollfd){e[k]->fd, e[k]->want == TLS_WANT_WRITE ? POLLOUT : POLLIN, 0};
        if (poll(pfd, (nfds_t)n, 500) <= 0)
            return;
    }
}

/* Reads once, waiting up to ~1 s for something other than WANT_*. */
static ssize_t read_wait(struct tls_conn *c, int fd, void *buf, size_t len)
{
    ssize_t r = TLS_WANT_READ;
    for (int i = 0; i < 20; i++) {
        r = tls_conn_read(c, buf, len);
        if (r != TLS_WANT_READ && r != TLS_WANT_WRITE)
            return r;
        struct pollfd p = {fd, r == TLS_WANT_READ ? POLLIN : POLLOUT, 0};
        if (poll(&p, 1, 50) < 0)
            break;
    }
    return r;
}

struct pair {
    int fd[2]; /* [0] server, [1] client */
    struct ep s, c;
};

/* Connects a fresh socketpair: server end from S, client end from C with
 * sni (NULL = the context's). Returns 0 when both handshakes finished. */
static int pair_open(struct pair *p, struct tls_server *S, struct tls_client *C, const char *sni)
{
    memset(p, 0, sizeof *p);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd) < 0)
        return -1;
    p->s = (struct ep){.c = tls_conn_server(S, p->fd[0]), .fd = p->fd[0]};
    p->c = (struct ep){.c = tls_conn_client(C, p->fd[1], sni), .fd = p->fd[1]};
    if (!p->s.c || !p->c.c)
        return -1;
    drive(&p->c, &p->s);
    return p->s.state == 1 && p->c.state == 1 ? 0 : -1;
}

/* Frees both ends of p (borrowed) and closes its fds. */
static void pair_close(struct pair *p)
{
    tls_conn_free(p->s.c);
    tls_conn_free(p->c.c);
    if (p->s.raw)
        SSL_free(p->s.raw);
    if (p->c.raw)
        SSL_free(p->c.raw);
    close(p->fd[0]);
    close(p->fd[1]);
    memset(p, 0, sizeof *p);
}

/* ---- contexts used by many tests ---- */

static const char *alpn_h2_h1[] = {"h2", "http/1.1"};
static const char *alpn_h1_h2[] = {"http/1.1", "h2"};
static const char *alpn_h1[] = {"http/1.1"};
static const char *alpn_foo[] = {"foo"};

/* The multi-certificate listener; the caller frees it. */
static struct tls_server *server_main(void)
{
    static const char *sni1[] = {"localhost", "api.example.com"};
    static const char *sni2[] = {"*.other.test"};
    static const char *sni3[] = {"chain.test"};
    struct tls_cert_spec certs[3] = {
        {P("srv.pem"), P("srv.key"), sni1, 2},
        {P("other.pem"), P("other.key"), sni2, 1},
        {P("chain3.pem"), P("leaf3.key"), sni3, 1},
    };
    struct tls_server_spec spec = {.certs = certs, .ncerts = 3, .alpn = alpn_h2_h1, .nalpn = 2};
    char err[256];
    struct tls_server *s = tls_server_new(&spec, err, sizeof err);
    CHECK(s != NULL, "server_main: %s", err);
    return s;
}

/* mTLS listener on srv.pem trusting ca.pem; min_version borrowed (NULL =
 * default). The caller frees it. */
static struct tls_server *server_mtls(int require, const char *min_version)
{
    struct tls_cert_spec cert = {P("srv.pem"), P("srv.key"), NULL, 0};
    struct tls_server_spec spec = {.certs = &cert, .ncerts = 1, .client_ca_file = P("ca.pem"),
                                   .require_client_cert = require, .min_version = min_version};
    char err[256];
    struct tls_server *s = tls_server_new(&spec, err, sizeof err);
    CHECK(s != NULL, "server_mtls: %s", err);
    return s;
}

/* A listener serving one certificate (file stems, e.g. "expired"). */
static struct tls_server *server_one(const char *certstem)
{
    char c[64], k[64];
    snprintf(c, sizeof c, "%s.pem", certstem);
    snprintf(k, sizeof k, "%s.key", certstem);
    struct tls_cert_spec cert = {P(c), P(k), NULL, 0};
    struct tls_server_spec spec = {.certs = &cert, .ncerts = 1};
    char err[256];
    struct tls_server *s = tls_server_new(&spec, err, sizeof err);
    CHECK(s != NULL, "server_one(%s): %s", certstem, err);
    return s;
}

/* A client context; certstem: client certificate stem or NULL. */
static struct tls_client *client_ctx(int verify, const char *sni, const char **alpn, size_t nalpn,
                                     const char *certstem)
{
    char c[64] = "", k[64] = "";
    if (certstem) {
        snprintf(c, sizeof c, "%s", P(certstem));
        strcat(c, ".pem");
        snprintf(k, sizeof k, "%s", P(certstem));
        strcat(k, ".key");
    }
    struct tls_client_spec spec = {.ca_file = P("ca.pem"), .verify = verify, .sni = sni, .alpn = alpn,
                                   .nalpn = nalpn, .cert_file = certstem ? c : NULL,
                                   .key_file = certstem ? k : NULL};
    char err[256];
    struct tls_client *cl = tls_client_new(&spec, err, sizeof err);
    CHECK(cl != NULL, "client_ctx: %s", err);
    return cl;
}

/* ---- tests ---- */

static void test_context_errors(void)
{
    char err[256];
    struct tls_cert_spec missing = {P("missing.pem"), P("srv.key"), NULL, 0};
    struct tls_server_spec spec = {.certs = &missing, .ncerts = 1};
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "missing.pem: No such file"),
          "missing cert: %s", err);

    struct tls_cert_spec junk = {P("junk.pem"), P("srv.key"), NULL, 0};
    spec.certs = &junk;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "junk.pem: no certificate found"),
          "junk cert: %s", err);

    struct tls_cert_spec nokey = {P("srv.pem"), P("junk.pem"), NULL, 0};
    spec.certs = &nokey;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "junk.pem: no private key"),
          "junk key: %s", err);

    struct tls_cert_spec enckey = {P("srv.pem"), P("enc.key"), NULL, 0};
    spec.certs = &enckey;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "enc.key: encrypted private keys"),
          "encrypted key: %s", err);

    struct tls_cert_spec swapped = {P("srv.key"), P("srv.pem"), NULL, 0};
    spec.certs = &swapped;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "srv.key: no certificate found"),
          "key as cert: %s", err);
    swapped.cert_file = P("srv.pem");
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "srv.pem: no private key found"),
          "cert as key: %s", err);

    struct tls_cert_spec mismatch = {P("srv.pem"), P("web.key"), NULL, 0};
    spec.certs = &mismatch;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "web.key: private key does not match"),
          "mismatch: %s", err);

    struct tls_cert_spec good = {P("srv.pem"), P("srv.key"), NULL, 0};
    spec.certs = &good;
    spec.min_version = "1.1";
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "minVersion"), "min: %s", err);
    spec.min_version = NULL;
    spec.require_client_cert = 1;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "clientCA"), "require: %s", err);
    spec.require_client_cert = 0;
    spec.client_ca_file = P("nope.pem");
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "nope.pem: No such file"),
          "client ca: %s", err);
    spec.client_ca_file = P("junk.pem");
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "junk.pem: "), "junk ca: %s", err);
    spec.client_ca_file = NULL;

    const char *bad_alpn[] = {"h2", ""};
    spec.alpn = bad_alpn;
    spec.nalpn = 2;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "alpn"), "alpn: %s", err);
    spec.nalpn = 0;

    const char *bad_sni[] = {"a*.example.com"};
    struct tls_cert_spec badname = {P("srv.pem"), P("srv.key"), bad_sni, 1};
    spec.certs = &badname;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "a*.example.com"), "sni: %s", err);
    const char *dup1[] = {"api.example.com"}, *dup2[] = {"API.example.com"};
    struct tls_cert_spec dups[2] = {{P("srv.pem"), P("srv.key"), dup1, 1},
                                    {P("other.pem"), P("other.key"), dup2, 1}};
    spec.certs = dups;
    spec.ncerts = 2;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "listed twice"), "dup: %s", err);
    spec.ncerts = 0;
    CHECK(tls_server_new(&spec, err, sizeof err) == NULL && strstr(err, "at least one"), "none: %s", err);

    struct tls_client_spec cs = {.verify = 1, .ca_file = P("missing-ca.pem")};
    CHECK(tls_client_new(&cs, err, sizeof err) == NULL && strstr(err, "missing-ca.pem: No such file"),
          "client ca: %s", err);
    cs.ca_file = P("ca.pem");
    cs.cert_file = P("web.pem");
    CHECK(tls_client_new(&cs, err, sizeof err) == NULL && strstr(err, "keyFile"), "client key: %s", err);
    cs.key_file = P("srv.key");
    CHECK(tls_client_new(&cs, err, sizeof err) == NULL && strstr(err, "does not match"), "client mm: %s", err);
    cs.key_file = P("web.key");
    struct tls_client *c = tls_client_new(&cs, err, sizeof err);
    CHECK(c != NULL, "client with cert: %s", err);
    tls_client_free(c);
    struct tls_client_spec sys = {.verify = 1}; /* system CA paths */
    c = tls_client_new(&sys, err, sizeof err);
    CHECK(c != NULL, "client with system CAs: %s", err);
    tls_client_free(c);
}

/* Handshakes with C (sni) against S (both borrowed); writes the peer
 * subject the client saw into subj ("" on failure) and, when srv_sni is not
 * NULL, the name the server received. */
static void served_subject(struct tls_server *S, struct tls_client *C, const char *sni, char *subj, size_t n,
                           char *srv_sni, size_t sn)
{
    struct pair p;
    subj[0] = '\0';
    if (srv_sni)
        srv_sni[0] = '\0';
    if (pair_open(&p, S, C, sni) == 0) {
        tls_conn_peer_subject(p.c.c, subj, n);
        if (srv_sni && tls_conn_sni(p.s.c))
            snprintf(srv_sni, sn, "%s", tls_conn_sni(p.s.c));
    } else {
        fprintf(stderr, "  handshake for sni %s failed: client '%s' server '%s'\n", nz(sni),
                p.c.c ? tls_conn_error(p.c.c) : "-", p.s.c ? tls_conn_error(p.s.c) : "-");
    }
    pair_close(&p);
}

static void test_sni(void)
{
    struct tls_server *S = server_main();
    struct tls_client *V = client_ctx(1, NULL, NULL, 0, NULL); /* verifies, sni per connection */
    struct tls_client *N = client_ctx(0, NULL, NULL, 0, NULL); /* does not verify */
    char subj[256], sni[256];
    if (!S || !V || !N)
        return;
    served_subject(S, V, "api.example.com", subj, sizeof subj, sni, sizeof sni);
    CHECK(streq(subj, "CN=api") && streq(sni, "api.example.com"), "exact: %s / %s", subj, sni);
    served_subject(S, V, "localhost", subj, sizeof subj, sni, sizeof sni);
    CHECK(streq(subj, "CN=api"), "exact 2: %s", subj);
    served_subject(S, V, "foo.other.test", subj, sizeof subj, sni, sizeof sni);
    CHECK(streq(subj, "CN=other") && streq(sni, "foo.other.test"), "wildcard: %s / %s", subj, sni);
    served_subject(S, V, "FOO.Other.Test", subj, sizeof subj, NULL, 0);
    CHECK(streq(subj, "CN=other"), "wildcard, case: %s", subj);
    served_subject(S, V, "chain.test", subj, sizeof subj, NULL, 0);
    CHECK(streq(subj, "CN=chain"), "chain via intermediate verified: %s", subj);
    /* A wildcard covers one label only; unknown names get the default. */
    served_subject(S, N, "a.b.other.test", subj, sizeof subj, NULL, 0);
    CHECK(streq(subj, "CN=api"), "two labels -> default: %s", subj);
    served_subject(S, N, "other.test", subj, sizeof subj, NULL, 0);
    CHECK(streq(subj, "CN=api"), "bare domain -> default: %s", subj);
    served_subject(S, N, "unknown.example", subj, sizeof subj, NULL, 0);
    CHECK(streq(subj, "CN=api"), "unknown -> default: %s", subj);
    served_subject(S, N, NULL, subj, sizeof subj, sni, sizeof sni);
    CHECK(streq(subj, "CN=api") && sni[0] == '\0', "no sni -> first cert: %s", subj);

    /* An explicit default (no names) wins over "first". */
    static const char *sni1[] = {"api.example.com"};
    struct tls_cert_spec certs[2] = {{P("srv.pem"), P("srv.key"), sni1, 1},
                                     {P("other.pem"), P("other.key"), NULL, 0}};
    struct tls_server_spec spec = {.certs = certs, .ncerts = 2};
    char err[256];
    struct tls_server *D = tls_server_new(&spec, err, sizeof err);
    CHECK(D != NULL, "default server: %s", err);
    if (D) {
        served_subject(D, N, NULL, subj, sizeof subj, NULL, 0);
        CHECK(streq(subj, "CN=other"), "explicit default: %s", subj);
        served_subject(D, N, "api.example.com", subj, sizeof subj, NULL, 0);
        CHECK(streq(subj, "CN=api"), "explicit default, named: %s", subj);
    }
    tls_server_free(D);
    tls_server_free(S);
    tls_client_free(V);
    tls_client_free(N);
}

/* Negotiates with a client offering alpn; expect (NULL = none) on both ends. */
static void alpn_case(struct tls_server *S, const char **alpn, size_t n, const char *expect, const char *what)
{
    struct tls_client *C = client_ctx(1, "api.example.com", alpn, n, NULL);
    struct pair p;
    int ok = C && pair_open(&p, S, C, NULL) == 0;
    CHECK(ok, "%s: handshake", what);
    if (ok) {
        const char *a = tls_conn_alpn(p.s.c), *b = tls_conn_alpn(p.c.c);
        if (expect)
            CHECK(streq(a, expect) && streq(b, expect), "%s: server %s client %s", what, nz(a), nz(b));
        else
            CHECK(!a && !b, "%s: server %s client %s", what, nz(a), nz(b));
        CHECK(streq(tls_conn_version(p.c.c), "TLSv1.3"), "%s: version %s", what, nz(tls_conn_version(p.c.c)));
    }
    pair_close(&p);
    tls_client_free(C);
}

static void test_alpn(void)
{
    struct tls_server *S = server_main();
    if (!S)
        return;
    alpn_case(S, alpn_h2_h1, 2, "h2", "both offer h2");
    alpn_case(S, alpn_h1_h2, 2, "h2", "server preference");
    alpn_case(S, alpn_h1, 1, "http/1.1", "http/1.1 fallback");
    alpn_case(S, NULL, 0, NULL, "client offers none");
    alpn_case(S, alpn_foo, 1, NULL, "no overlap");
    tls_server_free(S);
    struct tls_server *plain = server_one("srv");
    if (plain)
        alpn_case(plain, alpn_h2_h1, 2, NULL, "server has no alpn");
    tls_server_free(plain);
}

static void test_mtls(void)
{
    struct tls_server *R = server_mtls(1, NULL), *O = server_mtls(0, NULL);
    struct tls_client *web = client_ctx(1, "api.example.com", NULL, 0, "web");
    struct tls_client *nouri = client_ctx(1, "api.example.com", NULL, 0, "nouri");
    struct tls_client *intruder = client_ctx(1, "api.example.com", NULL, 0, "intruder");
    struct tls_client *anon = client_ctx(1, "api.example.com", NULL, 0, NULL);
    struct pair p;
    char buf[64];
    if (!R || !O || !web || !nouri || !intruder || !anon)
        goto out;

    CHECK(pair_open(&p, R, web, NULL) == 0, "mtls: %s", p.s.c ? tls_conn_error(p.s.c) : "");
    CHECK(streq(tls_conn_peer_identity(p.s.c), "spiffe://cluster.local/ns/default/sa/web"),
          "identity: %s", nz(tls_conn_peer_identity(p.s.c)));
    CHECK(tls_conn_peer_identity(p.c.c) == NULL, "server cert has no spiffe id");
    pair_close(&p);

    CHECK(pair_open(&p, R, nouri, NULL) == 0, "mtls without uri");
    CHECK(tls_conn_peer_identity(p.s.c) == NULL, "no uri -> no identity");
    pair_close(&p);

    /* Required but missing: the server fails; TLS 1.3 lets the client finish
     * first, then the alert arrives on its first read. */
    pair_open(&p, R, anon, NULL);
    CHECK(p.s.state == -1 && strstr(tls_conn_error(p.s.c), "did not return a certificate"),
          "missing client cert: state %d '%s'", p.s.state, tls_conn_error(p.s.c));
    ssize_t r = p.c.state == 1 ? read_wait(p.c.c, p.fd[1], buf, sizeof buf) : TLS_ERR;
    CHECK(r == TLS_ERR && tls_conn_error(p.c.c)[0], "client sees the rejection: %zd '%s'", r,
          tls_conn_error(p.c.c));
    CHECK(tls_conn_read(p.c.c, buf, sizeof buf) == TLS_ERR && tls_conn_shutdown(p.c.c) == TLS_ERR,
          "errors are sticky");
    pair_close(&p);

    CHECK(pair_open(&p, O, anon, NULL) == 0, "optional client cert, none sent");
    CHECK(tls_conn_peer_identity(p.s.c) == NULL, "no cert -> no identity");
    pair_close(&p);

    for (int k = 0; k < 2; k++) {
        pair_open(&p, k ? O : R, intruder, NULL);
        CHECK(p.s.state == -1 && strstr(tls_conn_error(p.s.c), "certificate verify failed"),
              "cert from another CA (require=%d): state %d '%s'", !k, p.s.state, tls_conn_error(p.s.c));
        CHECK(tls_conn_peer_identity(p.s.c) == NULL, "no identity from a rejected chain");
        pair_close(&p);
    }

    /* Identity of a server (mesh): chain-only verification, no sni. */
    struct tls_server *W = server_one("web");
    struct tls_client *mesh = client_ctx(1, NULL, NULL, 0, NULL);
    struct tls_client *blind = client_ctx(0, NULL, NULL, 0, NULL);
    if (W && mesh && blind) {
        CHECK(pair_open(&p, W, mesh, NULL) == 0, "mesh client handshake");
        CHECK(streq(tls_conn_peer_identity(p.c.c), "spiffe://cluster.local/ns/default/sa/web"),
              "server identity: %s", nz(tls_conn_peer_identity(p.c.c)));
        pair_close(&p);
        CHECK(pair_open(&p, W, blind, NULL) == 0, "verify=0 handshake");
        CHECK(tls_conn_peer_identity(p.c.c) == NULL, "verify=0 -> no identity");
        pair_close(&p);
    }
    tls_server_free(W);
    tls_client_free(mesh);
    tls_client_free(blind);
out:
    tls_server_free(R);
    tls_server_free(O);
    tls_client_free(web);
    tls_client_free(nouri);
    tls_client_free(intruder);
    tls_client_free(anon);
}

/* A client (verify on, sni) against S must fail with text containing want,
 * or succeed when want is NULL. */
static void verify_case(struct tls_server *S, int verify, const char *sni, const char *want, const char *what)
{
    struct tls_client *C = client_ctx(verify, sni, NULL, 0, NULL);
    struct pair p;
    if (!C)
        return;
    int ok = pair_open(&p, S, C, NULL) == 0;
    if (want)
        CHECK(!ok && p.c.state == -1 && strstr(tls_conn_error(p.c.c), want), "%s: state %d '%s'", what,
              p.c.state, tls_conn_error(p.c.c));
    else
        CHECK(ok, "%s: '%s'", what, tls_conn_error(p.c.c));
    pair_close(&p);
    tls_client_free(C);
}

static void test_verify(void)
{
    struct tls_server *E = server_one("expired"), *S = server_one("srv"), *X = server_one("intruder");
    if (!E || !S || !X)
        goto out;
    verify_case(E, 1, "localhost", "certificate has expired", "expired server cert");
    verify_case(E, 0, "localhost", NULL, "expired, verify=0");
    verify_case(S, 1, "wrong.example.com", "hostname mismatch", "hostname mismatch");
    verify_case(S, 0, "wrong.example.com", NULL, "mismatch, verify=0");
    verify_case(S, 1, "api.example.com", NULL, "hostname ok");
    verify_case(S, 1, "127.0.0.1", NULL, "IP SAN ok");
    verify_case(S, 1, "127.0.0.2", "IP address mismatch", "IP SAN mismatch");
    verify_case(X, 1, NULL, "unable to get local issuer", "server from another CA");
    verify_case(X, 0, NULL, NULL, "another CA, verify=0");
    /* An override replaces the context's name. */
    struct tls_client *C = client_ctx(1, "wrong.example.com", NULL, 0, NULL);
    struct pair p;
    CHECK(C && pair_open(&p, S, C, "api.example.com") == 0 && streq(tls_conn_sni(p.s.c), "api.example.com"),
          "sni override");
    pair_close(&p);
    /* IP literals are not sent as SNI (RFC 6066). */
    CHECK(C && pair_open(&p, S, C, "127.0.0.1") == 0 && tls_conn_sni(p.s.c) == NULL, "no SNI for an IP");
    pair_close(&p);
    tls_client_free(C);
out:
    tls_server_free(E);
    tls_server_free(S);
    tls_server_free(X);
}

/* A byte pattern both ends can check: position and a per-direction seed. */
static unsigned char pat(size_t i, unsigned seed) { return (unsigned char)((i * 131 + seed + (i >> 12)) & 0xff); }

struct flow {
    struct tls_conn *c;
    int fd;
    const unsigned char *out;
    size_t n, sent, got;
    unsigned char *in;
    unsigned seed_in;
    size_t readsz;
    int want_w, want_r, eof;
    int saw_want_write, saw_pending, calls;
};

/* Builds up to 4 iovecs over out[sent..n) with small pieces first, so that
 * the coalescing path and its record-sized staging are both exercised. */
static int flow_iov(struct flow *f, struct iovec *iov)
{
    static const size_t cuts[] = {7, 93, 1000, 30000};
    size_t pos = f->sent;
    int k = 0;
    size_t shift = (size_t)f->calls % 3;
    for (int i = 0; i < 4 && pos < f->n; i++) {
        size_t take = i == 3 ? f->n - pos : cuts[(i + shift) % 4];
        if (take > f->n - pos)
            take = f->n - pos;
        iov[k++] = (struct iovec){(void *)(f->out + pos), take};
        pos += take;
    }
    return k;
}

/* One round for one end: write until pushed back, read until WANT. 0, or -1
 * on error. */
static int flow_step(struct flow *f)
{
    while (f->sent < f->n) {
        struct iovec iov[4];
        int k = flow_iov(f, iov);
        f->calls++;
        ssize_t r = tls_conn_writev(f->c, iov, k);
        if (r > 0) {
            f->sent += (size_t)r;
            continue;
        }
        if (r == TLS_WANT_WRITE || r == TLS_WANT_READ) {
            f->want_w = r == TLS_WANT_WRITE;
            f->saw_want_write += r == TLS_WANT_WRITE;
            break;
        }
        fprintf(stderr, "  writev: %zd %s\n", r, tls_conn_error(f->c));
        return -1;
    }
    for (;;) {
        size_t room = f->readsz;
        ssize_t r = tls_conn_read(f->c, f->in + f->got, room);
        if (r > 0) {
            f->got += (size_t)r;
            if (tls_conn_pending(f->c) > 0)
                f->saw_pending++;
            continue;
        }
        if (r == 0) {
            f->eof = 1;
            return 0;
        }
        if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
            f->want_r = r;
            return 0;
        }
        fprintf(stderr, "  read: %s\n", tls_conn_error(f->c));
        return -1;
    }
}

/* Sends n bytes each way at once through p. Returns 0 when both ends got
 * exactly the other's bytes. */
static int transfer(struct pair *p, size_t n, size_t readsz, int *saw_ww, int *saw_pending)
{
    unsigned char *a_out = malloc(n), *b_out = malloc(n), *a_in = malloc(n + 65536), *b_in = malloc(n + 65536);
    for (size_t i = 0; i < n; i++) {
        a_out[i] = pat(i, 1);
        b_out[i] = pat(i, 2);
    }
    struct flow f[2] = {
        {.c = p->c.c, .fd = p->fd[1], .out = a_out, .n = n, .in = a_in, .seed_in = 2, .readsz = readsz},
        {.c = p->s.c, .fd = p->fd[0], .out = b_out, .n = n, .in = b_in, .seed_in = 1, .readsz = readsz},
    };
    int rc = -1;
    for (int it = 0; it < 200000; it++) {
        if (flow_step(&f[0]) < 0 || flow_step(&f[1]) < 0 || f[0].eof || f[1].eof)
            break;
        if (f[0].got >= n && f[1].got >= n && f[0].sent == n && f[1].sent == n) {
            rc = 0;
            break;
        }
        struct pollfd pfd[2];
        for (int k = 0; k < 2; k++)
            pfd[k] = (struct pollfd){f[k].fd, (short)(POLLIN | ((f[k].want_w || f[k].want_r == TLS_WANT_WRITE) ? POLLOUT : 0)), 0};
        if (poll(pfd, 2, 1000) <= 0)
            break;
    }
    for (int k = 0; k < 2 && rc == 0; k++) {
        if (f[k].got != n) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (f[k].in[i] != pat(i, f[k].seed_in)) {
                fprintf(stderr, "  byte %zu differs (end %d)\n", i, k);
                rc = -1;
                break;
            }
    }
    *saw_ww = f[0].saw_want_write + f[1].saw_want_write;
    *saw_pending = f[0].saw_pending + f[1].saw_pending;
    free(a_out);
    free(b_out);
    free(a_in);
    free(b_in);
    return rc;
}

static void test_transfer(void)
{
    struct tls_server *S = server_main();
    struct tls_client *C = client_ctx(1, "api.example.com", alpn_h2_h1, 2, NULL);
    struct pair p;
    if (!S || !C)
        goto out;
    if (pair_open(&p, S, C, NULL) == 0) {
        int small = 4096;
        setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(p.fd[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        int ww = 0, pend = 0;
        CHECK(transfer(&p, 1 << 20, 65536, &ww, &pend) == 0, "1 MiB both ways");
        CHECK(ww > 0, "WANT_WRITE seen (%d)", ww);
        CHECK(transfer(&p, 300000, 1000, &ww, &pend) == 0, "small reads");
        CHECK(pend > 0, "tls_conn_pending > 0 seen (%d)", pend);
    } else {
        CHECK(0, "transfer handshake");
    }
    pair_close(&p);

    /* Coalescing, seen on the wire: 50 iovecs of 10 bytes are one TLS 1.3
     * record (5 header + 500 + 1 type + 16 tag). */
    if (pair_open(&p, S, C, NULL) == 0) {
        unsigned char data[500], wire[200000];
        struct iovec iov[50];
        for (int i = 0; i < 50; i++)
            iov[i] = (struct iovec){data + 10 * i, 10};
        memset(data, 'x', sizeof data);
        CHECK(tls_conn_writev(p.c.c, iov, 50) == 500, "writev 50 x 10");
        ssize_t n = recv(p.fd[0], wire, sizeof wire, 0);
        CHECK(n == 522, "one record on the wire: %zd bytes", n);
        /* 300 + 100000 bytes: the first record is filled from both iovecs,
         * so 7 records (not 8) carry 100300 bytes. */
        static unsigned char big[100000];
        struct iovec two[2] = {{data, 300}, {big, sizeof big}};
        CHECK(tls_conn_writev(p.c.c, two, 2) == 100300, "writev 300 + 100000");
        size_t total = 0;
        while ((n = recv(p.fd[0], wire, sizeof wire, 0)) > 0)
            total += (size_t)n;
        CHECK(total == 100300 + 7 * 22, "7 records: %zu bytes", total);
        CHECK(tls_conn_writev(p.c.c, iov, 0) == 0, "empty writev");
    } else {
        CHECK(0, "coalescing handshake");
    }
    pair_close(&p);
out:
    tls_server_free(S);
    tls_client_free(C);
}

static void test_close(void)
{
    struct tls_server *S = server_main();
    struct tls_client *C = client_ctx(1, "api.example.com", NULL, 0, NULL);
    struct pair p;
    char buf[4096];
    if (!S || !C)
        goto out;
    /* Clean: data, then close_notify -> the data, then 0. */
    if (pair_open(&p, S, C, NULL) == 0) {
        struct iovec iov[4] = {{NULL, 0}, {"b", 1}, {NULL, 0}, {"ye", 2}}; /* empty ones are skipped */
        CHECK(tls_conn_writev(p.c.c, iov, 4) == 3, "write before close");
        CHECK(tls_conn_shutdown(p.c.c) == 0, "shutdown sends close_notify");
        CHECK(read_wait(p.s.c, p.fd[0], buf, sizeof buf) == 3 && memcmp(buf, "bye", 3) == 0, "data before close");
        CHECK(read_wait(p.s.c, p.fd[0], buf, sizeof buf) == 0, "read returns 0 after close_notify");
        CHECK(tls_conn_shutdown(p.s.c) == 1, "second shutdown sees both close_notifies");
        CHECK(read_wait(p.c.c, p.fd[1], buf, sizeof buf) == 0, "close_notify back");
    } else {
        CHECK(0, "close handshake");
    }
    pair_close(&p);
    /* Unclean: the peer's socket just closes. */
    if (pair_open(&p, S, C, NULL) == 0) {
        /* Drain the tickets first: closing a socket with unread data makes
         * the kernel reset the connection instead of sending EOF. */
        CHECK(read_wait(p.c.c, p.fd[1], buf, sizeof buf) == TLS_WANT_READ, "client idle");
        close(p.fd[1]);
        p.fd[1] = -1;
        CHECK(read_wait(p.s.c, p.fd[0], buf, sizeof buf) == 0, "plain EOF reads as 0");
    } else {
        CHECK(0, "eof handshake");
    }
    pair_close(&p);
    /* EOF during the handshake is an error, not a close. */
    int fd[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd);
    struct tls_conn *c = tls_conn_client(C, fd[1], NULL);
    CHECK(tls_conn_handshake(c) == TLS_WANT_READ, "client hello sent");
    CHECK(tls_conn_shutdown(c) == 0, "shutdown mid-handshake is a no-op");
    CHECK(recv(fd[0], buf, sizeof buf, 0) > 0, "drain the hello");
    close(fd[0]);
    ssize_t r = read_wait(c, fd[1], buf, sizeof buf);
    CHECK(r == TLS_ERR && strstr(tls_conn_error(c), "during handshake"), "EOF in handshake: %zd '%s'", r,
          tls_conn_error(c));
    tls_conn_free(c);
    close(fd[1]);
    /* Garbage instead of a ClientHello. */
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd);
    c = tls_conn_server(S, fd[0]);
    CHECK(write(fd[1], "GET / HTTP/1.1\r\n\r\n", 18) == 18, "write garbage");
    r = read_wait(c, fd[0], buf, sizeof buf);
    CHECK(r == TLS_ERR && tls_conn_error(c)[0], "plain HTTP to a TLS port: %zd '%s'", r, tls_conn_error(c));
    tls_conn_free(c);
    close(fd[0]);
    close(fd[1]);
out:
    tls_server_free(S);
    tls_client_free(C);
}

/* A raw OpenSSL client (session support) on fd; caller frees. */
static SSL *raw_client(SSL_CTX *ctx, int fd, SSL_SESSION *sess)
{
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "api.example.com");
    if (!SSL_set1_host(ssl, "api.example.com") || (sess && !SSL_set_session(ssl, sess)))
        fprintf(stderr, "  raw client setup failed\n");
    return ssl;
}

/* One handshake of a raw client against S; returns the session (caller
 * frees) after reading the tickets, and whether it resumed. */
static SSL_SESSION *raw_session(struct tls_server *S, SSL_CTX *rc, SSL_SESSION *in, int *resumed, char *identity,
                                size_t idlen)
{
    struct pair p;
    memset(&p, 0, sizeof p);
    SSL_SESSION *out = NULL;
    *resumed = -1;
    identity[0] = '\0';
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.fd) < 0)
        return NULL;
    p.s = (struct ep){.c = tls_conn_server(S, p.fd[0]), .fd = p.fd[0]};
    p.c = (struct ep){.raw = raw_client(rc, p.fd[1], in), .fd = p.fd[1]};
    drive(&p.c, &p.s);
    if (p.s.state == 1 && p.c.state == 1) {
        *resumed = tls_conn_resumed(p.s.c);
        if (SSL_session_reused(p.c.raw) != *resumed)
            *resumed = -2;
        snprintf(identity, idlen, "%s", nz(tls_conn_peer_identity(p.s.c)));
        char b[16];
        for (int i = 0; i < 5; i++) { /* TLS 1.3 tickets arrive after the handshake */
            if (SSL_read(p.c.raw, b, sizeof b) <= 0)
                ERR_clear_error();
            struct pollfd pf = {p.fd[1], POLLIN, 0};
            poll(&pf, 1, 20);
        }
        out = SSL_get1_session(p.c.raw);
        /* Freed without close_notify, OpenSSL marks a session unresumable. */
        SSL_shutdown(p.c.raw);
        ERR_clear_error();
    }
    pair_close(&p);
    return out;
}

static void test_resumption(void)
{
    struct tls_server *S = server_one("srv"), *M = server_mtls(1, NULL), *S13 = server_mtls(0, "1.3");
    char id[256];
    for (int v = 0; v < 2 && S && M; v++) {
        SSL_CTX *rc = SSL_CTX_new(TLS_client_method());
        SSL_CTX_load_verify_file(rc, P("ca.pem"));
        SSL_CTX_set_verify(rc, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_session_cache_mode(rc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
        if (v == 1)
            SSL_CTX_set_max_proto_version(rc, TLS1_2_VERSION);
        const char *ver = v ? "TLS 1.2" : "TLS 1.3";
        int resumed;
        SSL_SESSION *s1 = raw_session(S, rc, NULL, &resumed, id, sizeof id);
        CHECK(s1 && resumed == 0, "%s full handshake (%d)", ver, resumed);
        CHECK(s1 && SSL_SESSION_is_resumable(s1), "%s got a ticket", ver);
        SSL_SESSION *s2 = s1 ? raw_session(S, rc, s1, &resumed, id, sizeof id) : NULL;
        CHECK(resumed == 1, "%s resumed from the ticket (%d)", ver, resumed);
        SSL_SESSION_free(s1);
        SSL_SESSION_free(s2);

        /* mTLS: the resumed session keeps the verified identity. */
        SSL_CTX_use_certificate_chain_file(rc, P("web.pem"));
        SSL_CTX_use_PrivateKey_file(rc, P("web.key"), SSL_FILETYPE_PEM);
        s1 = raw_session(M, rc, NULL, &resumed, id, sizeof id);
        CHECK(s1 && resumed == 0 && streq(id, "spiffe://cluster.local/ns/default/sa/web"), "%s mtls full: %s",
              ver, id);
        s2 = s1 ? raw_session(M, rc, s1, &resumed, id, sizeof id) : NULL;
        CHECK(resumed == 1 && streq(id, "spiffe://cluster.local/ns/default/sa/web"), "%s mtls resumed (%d): %s",
              ver, resumed, id);
        SSL_SESSION_free(s1);
        SSL_SESSION_free(s2);
        if (v == 1 && S13) { /* minVersion 1.3 refuses a 1.2-only client */
            s1 = raw_session(S13, rc, NULL, &resumed, id, sizeof id);
            CHECK(s1 == NULL && resumed == -1, "minVersion 1.3 refuses TLS 1.2");
            SSL_SESSION_free(s1);
        }
        SSL_CTX_free(rc);
    }
    tls_server_free(S);
    tls_server_free(M);
    tls_server_free(S13);
}

static void test_refcount(void)
{
    /* The creator's references go away before the connections are used:
     * the SNI callback and ALPN list must still be there. */
    struct tls_server *S = server_main();
    struct tls_client *C = client_ctx(1, "foo.other.test", alpn_h1_h2, 2, NULL);
    if (!S || !C)
        return;
    int fd[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd);
    struct pair p = {.fd = {fd[0], fd[1]}};
    p.s = (struct ep){.c = tls_conn_server(S, fd[0]), .fd = fd[0]};
    p.c = (struct ep){.c = tls_conn_client(C, fd[1], NULL), .fd = fd[1]};
    tls_server_free(S);
    tls_client_free(C);
    drive(&p.c, &p.s);
    char subj[128] = "";
    tls_conn_peer_subject(p.c.c, subj, sizeof subj);
    CHECK(p.s.state == 1 && p.c.state == 1 && streq(subj, "CN=other") && streq(tls_conn_alpn(p.s.c), "h2"),
          "contexts outlive their creator's reference: %s", subj);
    pair_close(&p);
}

struct thr {
    struct tls_server *S;
    struct tls_client *C;
    int ok;
};

/* Thread body; arg is the caller's struct thr. */
static void *thread_main(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < 20; i++) {
        struct pair p;
        int ww, pend;
        if (pair_open(&p, t->S, t->C, NULL) == 0 && transfer(&p, 65536, 16384, &ww, &pend) == 0 &&
            streq(tls_conn_alpn(p.s.c), "h2"))
            t->ok++;
        pair_close(&p);
    }
    return NULL;
}

static void test_threads(void)
{
    struct thr t[4];
    struct tls_server *S = server_main();
    struct tls_client *C = client_ctx(1, "api.example.com", alpn_h2_h1, 2, NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){S, C, 0};
        pthread_create(&th[i], NULL, thread_main, &t[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += t[i].ok;
    }
    CHECK(ok == 80, "4 threads x 20 connections on shared contexts: %d ok", ok);
    tls_server_free(S);
    tls_client_free(C);
}

static void test_tcp(void)
{
    struct tls_server *S = server_main();
    struct tls_client *C = client_ctx(1, "127.0.0.1", alpn_h2_h1, 2, NULL);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    struct pair p = {.fd = {-1, -1}};
    if (!S || !C || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) < 0) {
        CHECK(0, "tcp listen: %s", strerror(errno));
        goto out;
    }
    p.fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(p.fd[1], (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        goto out;
    p.fd[0] = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    p.s = (struct ep){.c = tls_conn_server(S, p.fd[0]), .fd = p.fd[0]};
    p.c = (struct ep){.c = tls_conn_client(C, p.fd[1], NULL), .fd = p.fd[1]};
    drive(&p.c, &p.s);
    int ww, pend;
    CHECK(p.s.state == 1 && p.c.state == 1, "tcp handshake (IP SAN): '%s'", tls_conn_error(p.c.c));
    CHECK(p.s.state == 1 && transfer(&p, 1 << 20, 65536, &ww, &pend) == 0, "tcp 1 MiB both ways");
out:
    pair_close(&p);
    close(l);
    tls_server_free(S);
    tls_client_free(C);
}

/* ---- ClientHello peek ---- */

static unsigned char hello[4096], hello_nosni[4096], hello_upper[4096];
static size_t hello_len, hello_nosni_len, hello_upper_len;

/* Captures the client's first flight for sni (NULL: none) into out. */
static size_t capture_hello(const char *sni, const char **alpn, size_t nalpn, unsigned char *out, size_t cap)
{
    struct tls_client *C = client_ctx(0, sni, alpn, nalpn, NULL);
    int fd[2];
    size_t n = 0;
    if (!C || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0)
        return 0;
    struct tls_conn *c = tls_conn_client(C, fd[1], NULL);
    if (tls_conn_handshake(c) == TLS_WANT_READ) {
        ssize_t r = recv(fd[0], out, cap, 0);
        n = r > 0 ? (size_t)r : 0;
    }
    tls_conn_free(c);
    tls_client_free(C);
    close(fd[0]);
    close(fd[1]);
    return n;
}

/* Re-frames the handshake message of the single-record hello h into
 * records of at most frag bytes. Returns the new length. */
static size_t refragment(const unsigned char *h, size_t len, size_t frag, unsigned char *out)
{
    const unsigned char *msg = h + 5;
    size_t mlen = len - 5, o = 0;
    for (size_t i = 0; i < mlen; i += frag) {
        size_t n = mlen - i < frag ? mlen - i : frag;
        out[o++] = 0x16, out[o++] = 3, out[o++] = 1;
        out[o++] = (unsigned char)(n >> 8), out[o++] = (unsigned char)n;
        memcpy(out + o, msg + i, n);
        o += n;
    }
    return o;
}

/* A minimal hand-made hello with the given extension block (NULL = no
 * extensions at all). Returns its length. */
static size_t build_hello(unsigned char *out, const unsigned char *ext, size_t extlen)
{
    unsigned char body[1024];
    size_t b = 0;
    body[b++] = 3, body[b++] = 3;
    memset(body + b, 0x11, 32), b += 32;
    body[b++] = 0;                                 /* session id */
    body[b++] = 0, body[b++] = 2, body[b++] = 0x13, body[b++] = 0x01; /* one suite */
    body[b++] = 1, body[b++] = 0;                  /* null compression */
    if (ext) {
        body[b++] = (unsigned char)(extlen >> 8), body[b++] = (unsigned char)extlen;
        memcpy(body + b, ext, extlen), b += extlen;
    }
    size_t o = 0;
    out[o++] = 0x16, out[o++] = 3, out[o++] = 1;
    out[o++] = (unsigned char)((b + 4) >> 8), out[o++] = (unsigned char)(b + 4);
    out[o++] = 1, out[o++] = 0, out[o++] = (unsigned char)(b >> 8), out[o++] = (unsigned char)b;
    memcpy(out + o, body, b);
    return o + b;
}

static void test_peek(void)
{
    char sni[256], alpn[256];
    hello_len = capture_hello("api.example.com", alpn_h2_h1, 2, hello, sizeof hello);
    CHECK(hello_len > 100, "captured a ClientHello (%zu bytes)", hello_len);
    if (hello_len <= 100)
        return;
    int r = tls_peek_client_hello(hello, hello_len, sni, sizeof sni, alpn, sizeof alpn);
    CHECK(r == 1 && streq(sni, "api.example.com") && streq(alpn, "h2,http/1.1"), "peek: %d '%s' '%s'", r, sni, alpn);
    int bad = 0;
    for (size_t n = 0; n < hello_len; n++)
        if (tls_peek_client_hello(hello, n, sni, sizeof sni, alpn, sizeof alpn) != 0)
            bad++;
    CHECK(bad == 0, "every truncated prefix needs more (%d did not)", bad);
    unsigned char frag[8192];
    size_t sizes[] = {1, 2, 3, 7, 100, 511};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t fl = refragment(hello, hello_len, sizes[i], frag);
        r = tls_peek_client_hello(frag, fl, sni, sizeof sni, alpn, sizeof alpn);
        CHECK(r == 1 && streq(sni, "api.example.com") && streq(alpn, "h2,http/1.1"), "fragments of %zu: %d",
              sizes[i], r);
        if (sizes[i] == 3) {
            for (size_t n = 0; n < fl; n++)
                if (tls_peek_client_hello(frag, n, sni, sizeof sni, alpn, sizeof alpn) != 0)
                    bad++;
            CHECK(bad == 0, "fragmented prefixes need more (%d did not)", bad);
        }
    }
    /* Outputs that do not fit, or are not wanted. */
    CHECK(tls_peek_client_hello(hello, hello_len, sni, 10, alpn, sizeof alpn) == -1, "sni does not fit");
    r = tls_peek_client_hello(hello, hello_len, sni, sizeof sni, alpn, 6);
    CHECK(r == 1 && streq(alpn, "h2"), "alpn cut at an entry: '%s'", alpn);
    CHECK(tls_peek_client_hello(hello, hello_len, NULL, 0, NULL, 0) == 1, "no outputs");
    /* Other captured hellos. */
    hello_nosni_len = capture_hello(NULL, NULL, 0, hello_nosni, sizeof hello_nosni);
    r = tls_peek_client_hello(hello_nosni, hello_nosni_len, sni, sizeof sni, alpn, sizeof alpn);
    CHECK(r == 1 && sni[0] == '\0' && alpn[0] == '\0', "no sni, no alpn: %d '%s' '%s'", r, sni, alpn);
    hello_upper_len = capture_hello("API.Example.COM", alpn_h1, 1, hello_upper, sizeof hello_upper);
    r = tls_peek_client_hello(hello_upper, hello_upper_len, sni, sizeof sni, alpn, sizeof alpn);
    CHECK(r == 1 && streq(sni, "api.example.com") && streq(alpn, "http/1.1"), "lowercased: '%s'", sni);
    unsigned char iph[4096];
    size_t iplen = capture_hello("127.0.0.1", NULL, 0, iph, sizeof iph);
    r = tls_peek_client_hello(iph, iplen, sni, sizeof sni, alpn, sizeof alpn);
    CHECK(r == 1 && sni[0] == '\0', "IP target sends no sni: %d '%s'", r, sni);

    /* Not TLS, or broken. */
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(tls_peek_client_hello((const unsigned char *)http, strlen(http), sni, sizeof sni, alpn, sizeof alpn) == -1,
          "http is not tls");
    CHECK(tls_peek_client_hello((const unsigned char *)"G", 1, sni, sizeof sni, alpn, sizeof alpn) == -1,
          "refused from the first byte");
    CHECK(tls_peek_client_hello((const unsigned char *)"\x16\x05", 2, sni, sizeof sni, alpn, sizeof alpn) == -1,
          "bad record version");
    CHECK(tls_peek_client_hello((const unsigned char *)"\x16\x03\x01\x00\x00", 5, sni, sizeof sni, alpn,
                                sizeof alpn) == -1,
          "empty record");
    CHECK(tls_peek_client_hello((const unsigned char *)"\x16\x03\x01\x40\x01", 5, sni, sizeof sni, alpn,
                                sizeof alpn) == -1,
          "record too long");
    CHECK(tls_peek_client_hello((const unsigned char *)"\x80\x2e\x01\x03\x01", 5, NULL, 0, NULL, 0) == -1,
          "SSLv2 hello refused");
    unsigned char m[4096];
    memcpy(m, hello, hello_len);
    m[5] = 2; /* ServerHello */
    CHECK(tls_peek_client_hello(m, hello_len, sni, sizeof sni, alpn, sizeof alpn) == -1, "not a ClientHello");
    memcpy(m, hello, hello_len);
    m[6] = 0x01; /* message length > TLS_HELLO_MAX */
    CHECK(tls_peek_client_hello(m, hello_len, sni, sizeof sni, alpn, sizeof alpn) == -1, "hello too large");
    memcpy(m, hello, hello_len);
    m[0] = 0x17;
    CHECK(tls_peek_client_hello(m, hello_len, sni, sizeof sni, alpn, sizeof alpn) == -1, "application data");
    /* Flip each length byte of the hello: never a crash, never a wrong
     * "complete" with a name other than the real one. */
    int wrong = 0;
    for (size_t i = 0; i < hello_len; i++) {
        memcpy(m, hello, hello_len);
        m[i] ^= 0xff;
        r = tls_peek_client_hello(m, hello_len, sni, sizeof sni, alpn, sizeof alpn);
        if (r == 1 && sni[0] && !streq(sni, "api.example.com") && i > 5 + 4 + 2 + 32)
            wrong += strlen(sni) != strlen("api.example.com"); /* a flipped name byte is fine */
    }
    CHECK(wrong == 0, "mutations (%d odd)", wrong);

    /* Hand-made hellos. */
    unsigned char h[2048];
    size_t hl = build_hello(h, NULL, 0);
    r = tls_peek_client_hello(h, hl, sni, sizeof sni, alpn, sizeof alpn);
    CHECK(r == 1 && !sni[0] && !alpn[0], "hello without extensions: %d", r);
    static const unsigned char sni_ext[] = {0, 0, 0, 8, 0, 6, 0, 0, 3, 'a', '.', 'b'};
    hl = build_hello(h, sni_ext, sizeof sni_ext);
    r = tls_peek_client_hello(h, hl, sni, sizeof sni, alpn, sizeof alpn);
    CHECK(r == 1 && streq(sni, "a.b"), "hand-made sni: %d '%s'", r, sni);
    unsigned char two[sizeof sni_ext * 2];
    memcpy(two, sni_ext, sizeof sni_ext);
    memcpy(two + sizeof sni_ext, sni_ext, sizeof sni_ext);
    hl = build_hello(h, two, sizeof two);
    CHECK(tls_peek_client_hello(h, hl, sni, sizeof sni, alpn, sizeof alpn) == -1, "duplicate sni extension");
    static const unsigned char two_names[] = {0, 0, 0, 14, 0, 12, 0, 0, 3, 'a', '.', 'b', 0, 0, 3, 'c', '.', 'd'};
    hl = build_hello(h, two_names, sizeof two_names);
    CHECK(tls_peek_client_hello(h, hl, sni, sizeof sni, alpn, sizeof alpn) == -1, "two host_names");
    static const unsigned char nul_name[] = {0, 0, 0, 8, 0, 6, 0, 0, 3, 'a', 0, 'b'};
    hl = build_hello(h, nul_name, sizeof nul_name);
    CHECK(tls_peek_client_hello(h, hl, sni, sizeof sni, alpn, sizeof alpn) == -1, "NUL in host_name");
    static const unsigned char grease_alpn[] = {0, 16, 0, 11, 0, 9, 2, 0x0a, 0x0a, 2, 'h', '2', 2, 'a', ','};
    hl = build_hello(h, grease_alpn, sizeof grease_alpn);
    r = tls_peek_client_hello(h, hl, sni, sizeof sni, alpn, sizeof alpn);
    CHECK(r == 1 && streq(alpn, "h2"), "binary and comma ALPN ids skipped: '%s'", alpn);
    static const unsigned char short_ext[] = {0, 16, 0, 5, 0, 9, 2, 'h', '2'};
    hl = build_hello(h, short_ext, sizeof short_ext);
    CHECK(tls_peek_client_hello(h, hl, sni, sizeof sni, alpn, sizeof alpn) == -1, "inner length past the end");
    hl = build_hello(h, sni_ext, sizeof sni_ext);
    h[5 + 4 + 2 + 32 + 1 + 4 + 2] ^= 1; /* extensions length off by one */
    CHECK(tls_peek_client_hello(h, hl, sni, sizeof sni, alpn, sizeof alpn) == -1, "extensions length");
}

/* ---- SPIFFE IDs ---- */

static void test_spiffe(void)
{
    static const struct {
        const char *id;
        int ok;
    } ids[] = {
        {"spiffe://cluster.local/ns/default/sa/web", 0},
        {"spiffe://td", 0},
        {"spiffe://a-b_c.9/A.b-C_9/x", 0},
        {"spiffe://", -1},
        {"spiffe:///ns/x", -1},
        {"SPIFFE://td/x", -1},
        {"spiffe:/td/x", -1},
        {"https://td/x", -1},
        {"spiffe://Cluster.local/x", -1},
        {"spiffe://td:8080/x", -1},
        {"spiffe://user@td/x", -1},
        {"spiffe://td/x?q=1", -1},
        {"spiffe://td/x#frag", -1},
        {"spiffe://td/", -1},
        {"spiffe://td//x", -1},
        {"spiffe://td/./x", -1},
        {"spiffe://td/a/..", -1},
        {"spiffe://td/a%20b", -1},
        {"spiffe://td/a b", -1},
        {"spiffe://td/..a", 0},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        CHECK(tls_spiffe_id_check(ids[i].id, strlen(ids[i].id)) == ids[i].ok, "check %s", ids[i].id);
    char longid[TLS_SPIFFE_ID_MAX + 16];
    strcpy(longid, "spiffe://td/");
    size_t l = strlen(longid);
    while (l < TLS_SPIFFE_ID_MAX)
        longid[l++] = 'a';
    CHECK(tls_spiffe_id_check(longid, l) == 0, "2048 bytes ok");
    longid[l++] = 'a';
    CHECK(tls_spiffe_id_check(longid, l) == -1, "2049 bytes too long");
    CHECK(tls_spiffe_id_check("spiffe://td/a\0b", 15) == -1, "embedded NUL");
    memset(longid, 'a', 300);
    memcpy(longid, "spiffe://", 9);
    CHECK(tls_spiffe_id_check(longid, 300) == -1, "trust domain over 255");

    char out[TLS_SPIFFE_ID_MAX + 1];
    size_t n;
    unsigned char *d = der_of("web.pem", &n);
    CHECK(d && tls_spiffe_id_from_der(d, n, out, sizeof out) == 0 &&
              streq(out, "spiffe://cluster.local/ns/default/sa/web"),
          "web: %s", out);
    const size_t idlen = strlen("spiffe://cluster.local/ns/default/sa/web");
    CHECK(d && tls_spiffe_id_from_der(d, n, out, idlen + 1) == 0, "exact fit");
    CHECK(d && tls_spiffe_id_from_der(d, n, out, idlen) == -1, "one byte short");
    int crashes_or_hits = 0;
    for (size_t k = 0; d && k < n; k++) /* every truncation fails */
        crashes_or_hits += tls_spiffe_id_from_der(d, k, out, sizeof out) == 0;
    CHECK(crashes_or_hits == 0, "truncated DER never yields an id");
    if (d) {
        unsigned char *m = malloc(n + 1);
        memcpy(m, d, n);
        m[n] = 0;
        CHECK(tls_spiffe_id_from_der(m, n + 1, out, sizeof out) == -1, "trailing byte");
        unsigned char *at = memmem(m, n, "cluster.local", 13);
        CHECK(at != NULL, "found the id in the DER");
        if (at) {
            at[3] = 0; /* a NUL inside the URI (signature not checked here) */
            CHECK(tls_spiffe_id_from_der(m, n, out, sizeof out) == -1, "NUL inside the URI");
            at[3] = 'S';
            CHECK(tls_spiffe_id_from_der(m, n, out, sizeof out) == -1, "upper case trust domain");
            at[3] = 's';
            CHECK(tls_spiffe_id_from_der(m, n, out, sizeof out) == 0, "restored");
        }
        unsigned char *scheme = memmem(m, n, "spiffe://", 9);
        if (scheme) {
            scheme[0] = 'x'; /* no longer a spiffe URI at all */
            CHECK(tls_spiffe_id_from_der(m, n, out, sizeof out) == -1, "not spiffe");
        }
        /* Flip every byte once: no crash, and any id returned is valid. */
        int invalid = 0;
        for (size_t k = 0; k < n; k++) {
            memcpy(m, d, n);
            m[k] ^= 0x5a;
            if (tls_spiffe_id_from_der(m, n, out, sizeof out) == 0 && tls_spiffe_id_check(out, strlen(out)) != 0)
                invalid++;
        }
        CHECK(invalid == 0, "mutations never return an invalid id");
        free(m);
    }
    free(d);
    d = der_of("multi.pem", &n);
    CHECK(d && tls_spiffe_id_from_der(d, n, out, sizeof out) == 0 && streq(out, "spiffe://cluster.local/ns/a/sa/b"),
          "first spiffe after other URIs: %s", out);
    free(d);
    d = der_of("badid.pem", &n);
    CHECK(d && tls_spiffe_id_from_der(d, n, out, sizeof out) == -1, "invalid first spiffe URI, later not tried");
    free(d);
    d = der_of("portid.pem", &n);
    CHECK(d && tls_spiffe_id_from_der(d, n, out, sizeof out) == -1, "port in the id");
    free(d);
    d = der_of("nouri.pem", &n);
    CHECK(d && tls_spiffe_id_from_der(d, n, out, sizeof out) == -1, "no URI SAN");
    free(d);
    d = der_of("ca.pem", &n);
    CHECK(d && tls_spiffe_id_from_der(d, n, out, sizeof out) == -1, "no SAN at all");
    free(d);
    CHECK(tls_spiffe_id_from_der((const unsigned char *)"\x30\x03\x02\x01\x01", 5, out, sizeof out) == -1,
          "garbage DER");
    CHECK(tls_spiffe_id_from_der(NULL, 0, out, sizeof out) == -1, "empty");
}

/* ---- memory per idle connection ---- */

/* Bytes live in OpenSSL and the TLS layer per server and per client end of
 * the n pairs, found by freeing the clients, then the servers. */
static void per_conn(struct pair *p, int n, size_t *srv_per, size_t *cli_per)
{
    size_t all = atomic_load(&live_bytes);
    for (int i = 0; i < n; i++) {
        tls_conn_free(p[i].c.c);
        p[i].c.c = NULL;
    }
    size_t servers_only = atomic_load(&live_bytes);
    for (int i = 0; i < n; i++) {
        tls_conn_free(p[i].s.c);
        p[i].s.c = NULL;
    }
    size_t none = atomic_load(&live_bytes);
    *cli_per = (all - servers_only) / (size_t)n;
    *srv_per = (servers_only - none) / (size_t)n;
}

/* Reads both ends of p until WANT_READ, the state the event loop leaves an
 * idle connection in. */
static void idle(struct pair *p)
{
    char buf[256];
    for (int k = 0; k < 3; k++) {
        tls_conn_read(p->c.c, buf, sizeof buf);
        tls_conn_read(p->s.c, buf, sizeof buf);
    }
}

/* Measures idle connections of S/C right after the handshake (*_hs) and
 * after one small request/response exchange (*_rr); prints the figures. */
static void measure(const char *what, struct tls_server *S, struct tls_client *C, size_t out[4])
{
    enum { N = 64 };
    static struct pair p[N];
    memset(out, 0, 4 * sizeof *out);
    for (int phase = 0; phase < 2; phase++) {
        int n = 0;
        for (; n < N; n++) {
            if (pair_open(&p[n], S, C, NULL) < 0)
                break;
            idle(&p[n]);
            if (phase == 1) {
                char req[200], resp[800];
                memset(req, 'q', sizeof req);
                memset(resp, 'r', sizeof resp);
                struct iovec a = {req, sizeof req}, b = {resp, sizeof resp};
                if (tls_conn_writev(p[n].c.c, &a, 1) != (ssize_t)sizeof req ||
                    read_wait(p[n].s.c, p[n].fd[0], req, sizeof req) != (ssize_t)sizeof req ||
                    tls_conn_writev(p[n].s.c, &b, 1) != (ssize_t)sizeof resp ||
                    read_wait(p[n].c.c, p[n].fd[1], resp, sizeof resp) != (ssize_t)sizeof resp)
                    break;
                idle(&p[n]);
            }
        }
        CHECK(n == N, "%s: %d of %d connections", what, n, N);
        if (n == N)
            per_conn(p, N, &out[phase * 2], &out[phase * 2 + 1]);
        for (int i = 0; i < N; i++)
            pair_close(&p[i]);
    }
    printf("memory per idle TLS connection (%s): after handshake server %zu client %zu bytes; "
           "after a request server %zu client %zu bytes\n",
           what, out[0], out[1], out[2], out[3]);
}

static void test_memory(void)
{
    struct tls_server *S = server_main(), *M = server_mtls(1, NULL);
    struct tls_client *C = client_ctx(1, "api.example.com", alpn_h2_h1, 2, NULL);
    struct tls_client *W = client_ctx(1, "api.example.com", NULL, 0, "web");
    size_t m[4];
    /* Loose bounds: a connection that kept its record buffers (16.5 KiB read,
     * 16.5 KiB write) would be far over them. */
    if (S && C) {
        measure("TLS 1.3, ECDSA P-256", S, C, m);
        for (int i = 0; i < 4; i++)
            CHECK(m[i] > 0 && m[i] < (i % 2 ? 24576u : 16384u), "idle memory figure %d: %zu", i, m[i]);
    }
    if (M && W) {
        measure("TLS 1.3 mTLS, SPIFFE client cert", M, W, m);
        for (int i = 0; i < 4; i++)
            CHECK(m[i] > 0 && m[i] < 24576u, "mtls idle memory figure %d: %zu", i, m[i]);
    }
    tls_server_free(S);
    tls_server_free(M);
    tls_client_free(C);
    tls_client_free(W);
}

/* ---- fuzz seeds ---- */

/* Writes p[0..n) to d/name; all borrowed. */
static void write_file(const char *d, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", d, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* Writes the fuzz seeds into directory d (borrowed). */
static void write_corpus(const char *d)
{
    unsigned char frag[8192];
    write_file(d, "hello_sni_alpn.bin", hello, hello_len);
    write_file(d, "hello_nosni.bin", hello_nosni, hello_nosni_len);
    write_file(d, "hello_upper.bin", hello_upper, hello_upper_len);
    write_file(d, "hello_frag7.bin", frag, refragment(hello, hello_len, 7, frag));
    write_file(d, "hello_frag300.bin", frag, refragment(hello, hello_len, 300, frag));
    static const unsigned char sni_ext[] = {0, 0, 0, 8, 0, 6, 0, 0, 3, 'a', '.', 'b'};
    size_t hl = build_hello(frag, sni_ext, sizeof sni_ext);
    write_file(d, "hello_min.bin", frag, hl);
    const char *certs[] = {"web", "multi", "badid", "nouri", "srv"};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
        char name[64], pem[64];
        size_t n;
        snprintf(pem, sizeof pem, "%s.pem", certs[i]);
        snprintf(name, sizeof name, "cert_%s.der", certs[i]);
        unsigned char *der = der_of(pem, &n);
        if (der)
            write_file(d, name, der, n);
        free(der);
    }
    printf("wrote fuzz seeds to %s\n", d);
}

int main(int argc, char **argv)
{
    /* Must precede every OpenSSL allocation. */
    if (!CRYPTO_set_mem_functions(cm_malloc, cm_realloc, cm_free))
        fprintf(stderr, "note: could not install the counting allocator\n");
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/strand-tls-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (make_pki() < 0) {
        fprintf(stderr, "could not make test certificates (see %s/openssl.log)\n", dir);
        return 1;
    }
    test_context_errors();
    test_sni();
    test_alpn();
    test_mtls();
    test_verify();
    test_transfer();
    test_close();
    test_resumption();
    test_refcount();
    test_threads();
    test_tcp();
    test_peek();
    test_spiffe();
    test_memory();
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        write_corpus(argv[2]);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
