/* config_tls.c - the `tls` blocks of Listeners (TLS termination) and
 * Clusters (TLS to the upstream).
 *
 * Only names and choices are checked here. Certificate, key and CA files
 * are named, never opened: the proxy reads them when it builds listeners
 * and clusters (on every reload, so renewed certificates are picked up) and
 * reports its own errors then. What can be known from the text alone is
 * checked strictly: server names, ALPN ids, versions, and the combinations
 * that cannot work (requireClientCert without a CA, verify without a CA, a
 * client certificate without its key).
 *
 * Like the other loaders, these fill the struct in place; after a failure
 * what was stored so far is consistent and config_free releases it. */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* Frees a string array and its strings; takes ownership of v. */
static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Takes ownership of what t owns (t itself is its listener's). */
void cfg_listener_tls_free(struct cfg_listener_tls *t)
{
    for (size_t i = 0; i < t->ncerts; i++) {
        free(t->certs[i].cert_file);
        free(t->certs[i].key_file);
        free_strv(t->certs[i].sni, t->certs[i].nsni);
    }
    free(t->certs);
    free_strv(t->alpn, t->nalpn);
    free(t->client_ca_file);
    free(t->min_version);
}

/* Takes ownership of what t owns (t itself is its cluster's). */
void cfg_cluster_tls_free(struct cfg_cluster_tls *t)
{
    free(t->ca_file);
    free(t->sni);
    free_strv(t->alpn, t->nalpn);
    free(t->cert_file);
    free(t->key_file);
}

/* A file name: a non-empty string, copied into *out (owned by the caller
 * on success). Borrows n. */
static int load_path(struct cload *cl, const struct ynode *n, const char *what, char **out)
{
    const char *s;
    if (cl_scalar(cl, n, what, &s) != 0)
        return -1;
    if ((*out = strdup(s)) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    return 0;
}

/* True for an IPv4 or IPv6 literal (no brackets, no port). Borrows s. */
static bool is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* An ALPN protocol id: 1..255 bytes of visible ASCII (RFC 7301 allows any
 * bytes; a config file has no business with the rest). Borrows s. */
static bool valid_alpn(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 255)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* Stores the one-entry list [id] in *v and *n, which must be empty. The array
 * is owned by the caller's struct. Borrows id. */
static int default_alpn(struct cload *cl, int line, const char *id, char ***v, size_t *n)
{
    if ((*v = calloc(1, sizeof(**v))) == NULL || ((*v)[0] = strdup(id)) == NULL)
        return cl_fail(cl, line, "out of memory");
    *n = 1;
    return 0;
}

/* alpn: a sequence of unique protocol ids, in order of preference, into
 * *v and *n (owned by the caller's struct, also after a failure). With http
 * only the protocols the proxy can speak over TLS are allowed. Borrows seq. */
static int load_alpn(struct cload *cl, const struct ynode *seq, bool http, char ***v, size_t *n)
{
    if (cl_seq(cl, seq, "alpn", false, CFG_MAX_LIST) != 0)
        return -1;
    if ((*v = calloc(seq->n ? seq->n : 1, sizeof(**v))) == NULL)
        return cl_fail(cl, seq->line, "out of memory");
    for (size_t i = 0; i < seq->n; i++) {
        const struct ynode *y = seq->items[i];
        const char *s;
        if (cl_scalar(cl, y, "alpn", &s) != 0)
            return -1;
        if (http && strcmp(s, "h2") != 0 && strcmp(s, "http/1.1") != 0)
            return cl_fail(cl, y->line,
                           "alpn: '%.80s' is not offered on http listeners (use h2 or "
                           "http/1.1)",
                           s);
        if (!valid_alpn(s))
            return cl_fail(cl, y->line,
                           "alpn: invalid protocol id '%.80s' (1 to 255 visible ASCII "
                           "characters)",
                           s);
        for (size_t j = 0; j < *n; j++)
            if (strcmp((*v)[j], s) == 0)
                return cl_fail(cl, y->line, "alpn: '%s' is listed twice", s);
        if (((*v)[*n] = strdup(s)) == NULL)
            return cl_fail(cl, y->line, "out of memory");
        (*n)++;
    }
    return 0;
}

/* One server name of a listener, for the duplicate check. */
struct sni_ref {
    const char *name; /* borrowed from its certificate */
    int line;
    size_t cert;      /* index of the certificate */
};

/* A certificate's sni list into c->sni (lower-cased, owned by c). Each
 * name is also recorded in *refs (the array is grown here and owned by the
 * caller) for the listener-wide duplicate check. Borrows seq. */
static int load_cert_sni(struct cload *cl, struct cfg_tls_cert *c, size_t index,
                         const struct ynode *seq, struct sni_ref **refs, size_t *nrefs,
                         size_t *cap)
{
    if (cl_seq(cl, seq, "sni", false, CFG_MAX_LIST) != 0)
        return -1;
    if (seq->n == 0)
        return cl_fail(cl, seq->line,
                       "sni: must not be empty (leave sni out for the default certificate)");
    if ((c->sni = calloc(seq->n, sizeof(*c->sni))) == NULL)
        return cl_fail(cl, seq->line, "out of memory");
    for (size_t i = 0; i < seq->n; i++) {
        const struct ynode *y = seq->items[i];
        const char *s;
        if (cl_scalar(cl, y, "sni", &s) != 0)
            return -1;
        if (is_ip_literal(s))
            return cl_fail(cl, y->line,
                           "sni: '%.80s' is an IP address, which clients never send as a "
                           "server name",
                           s);
        if (!cfg_is_hostname(s, true))
            return cl_fail(cl, y->line,
                           "sni: invalid server name '%.80s' (a DNS name, optionally "
                           "starting with *.; no port)",
                           s);
        if ((c->sni[c->nsni] = strdup(s)) == NULL)
            return cl_fail(cl, y->line, "out of memory");
        cfg_lower(c->sni[c->nsni++]);
        struct sni_ref *r = cfg_grow(*refs, *nrefs, cap, sizeof(**refs));
        if (r == NULL)
            return cl_fail(cl, y->line, "out of memory");
        *refs = r;
        r[(*nrefs)++] = (struct sni_ref){c->sni[c->nsni - 1], y->line, index};
    }
    return 0;
}

/* qsort order: by name, then by line. Borrows both. */
static int sni_ref_cmp(const void *a, const void *b)
{
    const struct sni_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

/* Server names are unique across a listener's certificates, else which
 * certificate a client gets would depend on the order. Sorting keeps this
 * cheap at the limits (100 certificates of 100 names). Reports the earliest
 * repeat. Borrows refs (and reorders it). */
static int check_sni_unique(struct cload *cl, const struct cfg_listener_tls *t,
                            struct sni_ref *refs, size_t n)
{
    const struct sni_ref *dup = NULL, *first = NULL;
    if (n < 2)
        return 0;
    qsort(refs, n, sizeof(*refs), sni_ref_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(refs[i - 1].name, refs[i].name) == 0 &&
            (dup == NULL || refs[i].line < dup->line)) {
            dup = &refs[i];
            first = &refs[i - 1];
        }
    if (dup == NULL)
        return 0;
    if (dup->cert == first->cert)
        return cl_fail(cl, dup->line, "sni: '%s' is listed twice", dup->name);
    return cl_fail(cl, dup->line, "sni: '%s' is already served by the certificate at line %d",
                   dup->name, t->certs[first->cert].where.line);
}

/* certificates: [{certFile, keyFile, sni}] into t->certs. Borrows seq. */
static int load_certs(struct cload *cl, struct cfg_listener_tls *t, const struct ynode *seq)
{
    static const char *const keys[] = {"certFile", "keyFile", "sni", NULL};
    const struct cfg_tls_cert *dflt = NULL;
    struct sni_ref *refs = NULL;
    size_t nrefs = 0, cap = 0;
    int rc = -1;

    if (cl_seq(cl, seq, "certificates", true, CFG_MAX_CERTS) != 0)
        return -1;
    if ((t->certs = calloc(seq->n, sizeof(*t->certs))) == NULL)
        return cl_fail(cl, seq->line, "out of memory");
    for (size_t i = 0; i < seq->n; i++) {
        const struct ynode *y = seq->items[i], *n;
        struct cfg_tls_cert *c = &t->certs[t->ncerts++];
        c->where.file = cl->file;
        c->where.line = y->line;
        if (cl_map(cl, y, "certificate", keys) != 0)
            goto out;
        if ((n = cl_need(cl, y, "certFile", "certificate")) == NULL ||
            load_path(cl, n, "certFile", &c->cert_file) != 0)
            goto out;
        if ((n = cl_need(cl, y, "keyFile", "certificate")) == NULL ||
            load_path(cl, n, "keyFile", &c->key_file) != 0)
            goto out;
        if ((n = ytree_get(y, "sni")) != NULL) {
            if (load_cert_sni(cl, c, i, n, &refs, &nrefs, &cap) != 0)
                goto out;
        } else if (dflt != NULL) {
            cl_fail(cl, y->line,
                    "certificate without sni: only one certificate may leave sni out (the "
                    "default certificate is at line %d)",
                    dflt->where.line);
            goto out;
        } else {
            dflt = c;
        }
    }
    rc = check_sni_unique(cl, t, refs, nrefs);
out:
    free(refs);
    return rc;
}

/* Borrows tls; what it stores is owned by l. */
int cfg_load_listener_tls(struct cload *cl, struct cfg_listener *l, const struct ynode *tls)
{
    static const char *const keys[] = {"certificates",      "alpn",       "clientCA",
                                       "requireClientCert", "minVersion", NULL};
    struct cfg_listener_tls *t = &l->tls;
    const struct ynode *n, *req;

    if (cl_map(cl, tls, "tls", keys) != 0)
        return -1;
    t->enabled = true;
    if ((t->min_version = strdup("1.2")) == NULL)
        return cl_fail(cl, tls->line, "out of memory");
    if ((n = cl_need(cl, tls, "certificates", "tls")) == NULL || load_certs(cl, t, n) != 0)
        return -1;
    if ((n = ytree_get(tls, "alpn")) != NULL) {
        if (load_alpn(cl, n, l->proto == CFG_PROTO_HTTP, &t->alpn, &t->nalpn) != 0)
            return -1;
    } else if (l->proto == CFG_PROTO_HTTP) {
        /* Both protocols the http listener speaks, HTTP/2 preferred. */
        if (default_alpn(cl, tls->line, "h2", &t->alpn, &t->nalpn) != 0)
            return -1;
        char **v = realloc(t->alpn, 2 * sizeof(*v));
        if (v == NULL)
            return cl_fail(cl, tls->line, "out of memory");
        t->alpn = v;
        if ((v[1] = strdup("http/1.1")) == NULL)
            return cl_fail(cl, tls->line, "out of memory");
        t->nalpn = 2;
    }
    if ((n = ytree_get(tls, "clientCA")) && load_path(cl, n, "clientCA", &t->client_ca_file))
        return -1;
    if ((req = ytree_get(tls, "requireClientCert")) &&
        cl_bool(cl, req, "requireClientCert", &t->require_client_cert))
        return -1;
    if (t->require_client_cert && t->client_ca_file == NULL)
        return cl_fail(cl, req->line,
                       "requireClientCert: true needs clientCA, the CA bundle client "
                       "certificates are verified against");
    if ((n = ytree_get(tls, "minVersion")) != NULL) {
        /* Compared as text: unquoted 1.2 is a float to YAML 1.2 readers,
         * but the scalar's text is what was written. */
        const char *s;
        char *v;
        if (cl_scalar(cl, n, "minVersion", &s) != 0)
            return -1;
        if (strcmp(s, "1.2") != 0 && strcmp(s, "1.3") != 0)
            return cl_fail(cl, n->line, "minVersion: expected \"1.2\" or \"1.3\", got '%.80s'",
                           s);
        if ((v = strdup(s)) == NULL)
            return cl_fail(cl, n->line, "out of memory");
        free(t->min_version);
        t->min_version = v;
    }
    return 0;
}

/* Borrows tls; what it stores is owned by t. */
int cfg_load_cluster_tls(struct cload *cl, struct cfg_cluster_tls *t, const struct ynode *tls,
                         bool h2)
{
    static const char *const keys[] = {"caFile", "verify",   "sni",    "alpn",
                                       "certFile", "keyFile", NULL};
    const struct ynode *n, *verify, *cert, *key;

    if (cl_map(cl, tls, "tls", keys) != 0)
        return -1;
    t->enabled = true;
    t->verify = true;
    if ((n = ytree_get(tls, "caFile")) && load_path(cl, n, "caFile", &t->ca_file))
        return -1;
    if ((verify = ytree_get(tls, "verify")) && cl_bool(cl, verify, "verify", &t->verify))
        return -1;
    if (t->verify && t->ca_file == NULL)
        return cl_fail(cl, verify ? verify->line : tls->key_line,
                       "tls: verify (on by default) needs caFile, the CA bundle the "
                       "upstream's certificate is verified against; or set verify: false");
    if (!t->verify && t->ca_file != NULL)
        return cl_fail(cl, ytree_get(tls, "caFile")->line,
                       "tls: caFile has no effect with verify: false");
    if ((n = ytree_get(tls, "sni")) != NULL) {
        const char *s;
        if (cl_scalar(cl, n, "sni", &s) != 0)
            return -1;
        if (!cfg_is_hostname(s, false) && !is_ip_literal(s))
            return cl_fail(cl, n->line,
                           "sni: invalid server name '%.80s' (a DNS name or an IP address, "
                           "without port or brackets)",
                           s);
        if ((t->sni = strdup(s)) == NULL)
            return cl_fail(cl, n->line, "out of memory");
        cfg_lower(t->sni);
    }
    if ((n = ytree_get(tls, "alpn")) != NULL) {
        if (load_alpn(cl, n, false, &t->alpn, &t->nalpn) != 0)
            return -1;
    } else if (default_alpn(cl, tls->line, h2 ? "h2" : "http/1.1", &t->alpn, &t->nalpn) != 0) {
        return -1;
    }
    cert = ytree_get(tls, "certFile");
    key = ytree_get(tls, "keyFile");
    if (cert != NULL && key == NULL)
        return cl_fail(cl, cert->line,
                       "tls: certFile needs keyFile (a client certificate needs both)");
    if (key != NULL && cert == NULL)
        return cl_fail(cl, key->line,
                       "tls: keyFile needs certFile (a client certificate needs both)");
    if (cert != NULL && (load_path(cl, cert, "certFile", &t->cert_file) != 0 ||
                         load_path(cl, key, "keyFile", &t->key_file) != 0))
        return -1;
    return 0;
}
