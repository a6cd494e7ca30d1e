/* tls_id.c - SPIFFE identities from X.509 certificates.
 *
 * The proxy turns a verified peer certificate into the `source.identity`
 * attribute that routes and policies match on, so the rules are strict: the
 * ID is taken from the first URI SAN that uses the spiffe scheme, and if that
 * one is malformed the certificate has no identity at all (falling through
 * to a later SAN would let a certificate carry two answers). Syntax follows
 * the SPIFFE ID specification, minus anything that would need normalising
 * (percent-encoding, upper-case trust domains, dot segments). */
#include "tls/tls.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* DER certificates larger than this are not certificates anyone issues. */
#define TLS_DER_MAX (1u << 20)

static const char spiffe_scheme[] = "spiffe://";
#define SPIFFE_SCHEME_LEN (sizeof spiffe_scheme - 1)

static int td_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
}

static int path_char(unsigned char ch)
{
    return td_char(ch) || (ch >= 'A' && ch <= 'Z');
}

/* id is borrowed; it need not be NUL-terminated (len says where it ends). */
int tls_spiffe_id_check(const char *id, size_t len)
{
    const unsigned char *s = (const unsigned char *)id;
    if (!id || len > TLS_SPIFFE_ID_MAX || len <= SPIFFE_SCHEME_LEN ||
        memcmp(s, spiffe_scheme, SPIFFE_SCHEME_LEN) != 0)
        return -1;
    size_t i = SPIFFE_SCHEME_LEN, td = i;
    while (i < len && s[i] != '/') {
        if (!td_char(s[i])) /* also rejects ':' (port), '@' (userinfo), '?', '#', '%' */
            return -1;
        i++;
    }
    if (i == td || i - td > 255)
        return -1;
    while (i < len) { /* s[i] == '/' */
        size_t seg = ++i;
        while (i < len && s[i] != '/') {
            if (!path_char(s[i]))
                return -1;
            i++;
        }
        size_t n = i - seg;
        if (n == 0 || (n == 1 && s[seg] == '.') || (n == 2 && s[seg] == '.' && s[seg + 1] == '.'))
            return -1; /* empty segment (incl. trailing slash), "." or ".." */
    }
    return 0;
}

/* x is borrowed; out gets the ID. */
int tls_id_from_x509(const struct x509_st *x, char *out, size_t outlen)
{
    int crit = 0;
    /* NULL both when there is no SAN extension and when there are two
     * (crit == -2): a certificate with duplicate extensions has no identity. */
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    int r = -1;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        int len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
        if (len < (int)SPIFFE_SCHEME_LEN || memcmp(d, spiffe_scheme, SPIFFE_SCHEME_LEN) != 0)
            continue;
        if (tls_spiffe_id_check((const char *)d, (size_t)len) == 0 && (size_t)len < outlen) {
            memcpy(out, d, (size_t)len);
            out[len] = '\0';
            r = 0;
        }
        break; /* the first spiffe URI decides, valid or not */
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return r;
}

/* der is borrowed; out gets the ID. */
int tls_spiffe_id_from_der(const unsigned char *der, size_t len, char *out, size_t outlen)
{
    if (!der || len == 0 || len > TLS_DER_MAX || !out || outlen == 0)
        return -1;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    int r = -1;
    if (x && p == der + len) /* trailing bytes: not one certificate */
        r = tls_id_from_x509(x, out, outlen);
    X509_free(x);
    ERR_clear_error();
    return r;
}
