/* pg_scram.c - SCRAM-SHA-256 for PostgreSQL logins, both sides (see
 * pg_scram.h). Messages are split at ',' into attributes first, then the
 * grammar of RFC 5802 section 7 is checked attribute by attribute; the
 * crypto is OpenSSL's. Key material on the stack is wiped before return. */
#include "proto/pg/pg_scram.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/* Enough for "r=,s=,i=" plus a few extensions; more is refused rather
 * than skipped, since no real peer sends them. */
#define MAX_ATTRS 16
/* Steps recorded in the state structs, so a call out of order is refused. */
enum { ST_NONE = 0, ST_FIRST_SENT, ST_FIRST_READ, ST_FINAL_SENT };
enum { SV_NONE = 0, SV_FIRST_READ, SV_FIRST_SENT, SV_VERIFIED };

/* Returns a string of static storage; never freed. */
const char *pg_scram_strerror(int code)
{
    switch (code) {
    case PG_OK: return "ok";
    case PG_ERR_MALFORMED: return "malformed SCRAM message";
    case PG_ERR_TOO_LARGE: return "SCRAM message too long or output buffer too small";
    case PG_ERR_SCRAM_NONCE: return "SCRAM nonce mismatch";
    case PG_ERR_SCRAM_ITER: return "SCRAM iteration count out of range";
    case PG_ERR_SCRAM_CBIND:
        return "SCRAM channel binding requested or mismatched; only SCRAM-SHA-256 without "
               "channel binding is supported";
    case PG_ERR_SCRAM_UNSUPPORTED:
        return "SCRAM authorization identity or mandatory extension not supported";
    case PG_ERR_SCRAM_PROOF: return "SCRAM client proof wrong (password authentication failed)";
    case PG_ERR_SCRAM_SIGNATURE: return "SCRAM server signature wrong (server not trusted)";
    case PG_ERR_SCRAM_SERVER: return "SCRAM server reported an error";
    case PG_ERR_SCRAM_STATE: return "SCRAM step out of order";
    case PG_ERR_SCRAM_CRYPTO: return "SCRAM crypto failure";
    case PG_ERR_SCRAM_ARG: return "SCRAM invalid argument";
    default: return "unknown SCRAM error";
    }
}

/* ---- base64 (RFC 4648, padded, strict) -------------------------------------- */

static const char b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encodes p[0..n) into out[0..cap) without a NUL; length or -1. Our own
 * rather than EVP_EncodeBlock, which always writes a NUL and takes int.
 * p: borrowed; out: the caller's. */
static int b64_encode(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t need = (n + 2) / 3 * 4;
    if (need > cap || need > 0x7fffffff)
        return -1;
    char *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        *o++ = b64_alpha[v >> 18];
        *o++ = b64_alpha[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_alpha[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64_alpha[v & 63] : '=';
    }
    return (int)need;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes s[0..n) into out[0..cap); bytes or -1. Strict, unlike
 * EVP_DecodeBlock (which skips blanks and hides padding in its count): whole
 * quads, '=' only as the last one or two characters, unused bits zero, so
 * every value has exactly one accepted spelling. Empty input decodes to 0.
 * s: borrowed; out: the caller's. */
static int b64_decode(uint8_t *out, size_t cap, const char *s, size_t n)
{
    if (n % 4)
        return -1;
    size_t len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int pad = 0;
        if (last && s[i + 3] == '=') pad = s[i + 2] == '=' ? 2 : 1;
        int v[4];
        for (int j = 0; j < 4 - pad; j++)
            if ((v[j] = b64_val(s[i + j])) < 0)
                return -1;
        if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))
            return -1;
        size_t k = 3 - (size_t)pad;
        if (len + k > cap)
            return -1;
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (pad < 2 ? (uint32_t)v[2] << 6 : 0) | (pad < 1 ? (uint32_t)v[3] : 0);
        out[len++] = (uint8_t)(w >> 16);
        if (k > 1) out[len++] = (uint8_t)(w >> 8);
        if (k > 2) out[len++] = (uint8_t)w;
    }
    return (int)len;
}

/* ---- Message pieces ----------------------------------------------------------- */

/* Splits msg[0..n) at ',' into at most max pieces; their count, or an error
 * (empty message, a NUL byte, too many pieces, over PG_SCRAM_MSG_MAX).
 * msg: borrowed; seg: the caller's array, its pieces point into msg. */
static int split(const char *msg, size_t n, pg_str *seg, int max)
{
    if (n > PG_SCRAM_MSG_MAX)
        return PG_ERR_TOO_LARGE;
    if (!msg || n == 0)
        return PG_ERR_MALFORMED;
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || msg[i] == ',') {
            if (k == max)
                return PG_ERR_MALFORMED;
            seg[k].p = msg + start;
            seg[k].len = i - start;
            k++;
            start = i + 1;
        } else if (msg[i] == 0) {
            return PG_ERR_MALFORMED;
        }
    }
    return k;
}

/* 1 if s is the attribute "<a>=..." (any value, also empty). Borrows s. */
static int is_attr(pg_str s, char a)
{
    return s.len >= 2 && s.p[0] == a && s.p[1] == '=';
}

/* The value of an attribute piece (after "x="); points into s's bytes. */
static pg_str val(pg_str s)
{
    pg_str v = {s.p + 2, s.len - 2};
    return v;
}

/* 1 if s is a well-formed extension "<ALPHA>=<non-empty value>". Borrows s. */
static int is_ext(pg_str s)
{
    char c = s.len ? s.p[0] : 0;
    return s.len >= 3 && s.p[1] == '=' && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

/* RFC 5802 "printable": %x21-2B / %x2D-7E, at least one, at most max.
 * Borrows p. */
static int nonce_ok(const char *p, size_t n, size_t max)
{
    if (!p || n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
            return 0;
    return 1;
}

/* Decimal iteration count: PG_ERR_MALFORMED unless all digits,
 * PG_ERR_SCRAM_ITER outside the bounds. Borrows v; out: the caller's. */
static int parse_iter(pg_str v, uint32_t *out)
{
    if (v.len == 0 || v.len > 20)
        return PG_ERR_MALFORMED;
    uint64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return PG_ERR_MALFORMED;
        if (x <= PG_SCRAM_ITER_MAX)
            x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    if (x < PG_SCRAM_ITER_MIN || x > PG_SCRAM_ITER_MAX)
        return PG_ERR_SCRAM_ITER;
    *out = (uint32_t)x;
    return PG_OK;
}

/* A small appender over a caller's buffer; overflow is sticky and checked
 * once at the end. The w_* functions borrow their sources and write into
 * w->p, the caller's buffer. */
struct wr {
    char *p;
    size_t cap, len;
    int over;
};

static void w_mem(struct wr *w, const void *s, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = 1;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void w_str(struct wr *w, const char *s)
{
    w_mem(w, s, strlen(s));
}

static void w_b64(struct wr *w, const uint8_t *p, size_t n)
{
    int k = w->over ? -1 : b64_encode(w->p + w->len, w->cap - w->len, p, n);
    if (k < 0)
        w->over = 1;
    else
        w->len += (size_t)k;
}

static void w_u32(struct wr *w, uint32_t v)
{
    char d[10];
    int k = 0;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        w_mem(w, &d[--k], 1);
}

/* ---- Crypto --------------------------------------------------------------------- */

/* out = HMAC-SHA-256(key, d[0..n)). 0 or -1. key, d: borrowed; out: the
 * caller's 32 bytes. */
static int hmac256(const uint8_t *key, const void *d, size_t n, uint8_t *out)
{
    unsigned int len = PG_SCRAM_KEY_LEN;
    return HMAC(EVP_sha256(), key, PG_SCRAM_KEY_LEN, d, n, out, &len) && len == PG_SCRAM_KEY_LEN
               ? 0 : -1;
}

/* password, salt: borrowed; k: the caller's. */
int pg_scram_derive(const char *password, const uint8_t *salt, size_t salt_len,
                    uint32_t iterations, struct pg_scram_keys *k)
{
    if (!password || !salt || salt_len == 0 || salt_len > PG_SCRAM_SALT_MAX)
        return PG_ERR_SCRAM_ARG;
    if (iterations < PG_SCRAM_ITER_MIN || iterations > PG_SCRAM_ITER_MAX)
        return PG_ERR_SCRAM_ITER;
    size_t pl = strlen(password);
    if (pl > 0x7fffffff)
        return PG_ERR_SCRAM_ARG;
    /* SASLprep: the raw bytes (see pg_scram.h for when that equals
     * PostgreSQL's result). */
    uint8_t salted[PG_SCRAM_KEY_LEN];
    int rc = PG_OK;
    if (PKCS5_PBKDF2_HMAC(password, (int)pl, salt, (int)salt_len, (int)iterations, EVP_sha256(),
                          PG_SCRAM_KEY_LEN, salted) != 1 ||
        hmac256(salted, "Client Key", 10, k->client_key) ||
        hmac256(salted, "Server Key", 10, k->server_key) ||
        !SHA256(k->client_key, PG_SCRAM_KEY_LEN, k->stored_key))
        rc = PG_ERR_SCRAM_CRYPTO;
    OPENSSL_cleanse(salted, sizeof(salted));
    return rc;
}

/* password: borrowed. */
int pg_scram_saslprep_exact(const char *password)
{
    for (const unsigned char *p = (const unsigned char *)password; *p; p++)
        if (*p >= 0x80)
            return 0;
    return 1;
}

/* p: the caller's. */
int pg_scram_random(void *p, size_t n)
{
    if (n > 0x7fffffff)
        return PG_ERR_SCRAM_ARG;
    return RAND_bytes(p, (int)n) == 1 ? PG_OK : PG_ERR_SCRAM_CRYPTO;
}

/* out: the caller's. */
int pg_scram_nonce(char *out, size_t cap)
{
    uint8_t raw[PG_SCRAM_NONCE_LEN / 4 * 3];
    if (cap < PG_SCRAM_NONCE_LEN + 1)
        return PG_ERR_TOO_LARGE;
    if (pg_scram_random(raw, sizeof(raw)) != PG_OK)
        return PG_ERR_SCRAM_CRYPTO;
    int n = b64_encode(out, cap, raw, sizeof(raw));
    out[n] = 0;
    return n;
}

/* ---- Secrets -------------------------------------------------------------------- */

/* s: the caller's; password, salt: borrowed. */
int pg_scram_secret_from_password(struct pg_scram_secret *s, const char *password,
                                  const uint8_t *salt, size_t salt_len, uint32_t iterations)
{
    struct pg_scram_keys k;
    int rc = pg_scram_derive(password, salt, salt_len, iterations, &k);
    if (rc == PG_OK) {
        memset(s, 0, sizeof(*s));
        s->iterations = iterations;
        s->salt_len = (uint8_t)salt_len;
        memcpy(s->salt, salt, salt_len);
        memcpy(s->stored_key, k.stored_key, PG_SCRAM_KEY_LEN);
        memcpy(s->server_key, k.server_key, PG_SCRAM_KEY_LEN);
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

/* Cuts text at the first c: *head before it, *rest after it. 0, or -1 when
 * c does not occur. Borrows; *head and *rest point into the same bytes. */
static int cut(pg_str *rest, char c, pg_str *head)
{
    const char *q = rest->len ? memchr(rest->p, c, rest->len) : NULL;
    if (!q)
        return -1;
    head->p = rest->p;
    head->len = (size_t)(q - rest->p);
    rest->p = q + 1;
    rest->len -= head->len + 1;
    return 0;
}

/* s: the caller's; text: borrowed. */
int pg_scram_secret_parse(struct pg_scram_secret *s, const char *text, size_t n)
{
    static const char prefix[] = "SCRAM-SHA-256$";
    const size_t pl = sizeof(prefix) - 1;
    if (!text || n <= pl || n >= PG_SCRAM_SECRET_TEXT_MAX || memcmp(text, prefix, pl) != 0 ||
        memchr(text, 0, n))
        return PG_ERR_MALFORMED;
    pg_str rest = {text + pl, n - pl}, it, salt, stored;
    if (cut(&rest, ':', &it) || cut(&rest, '$', &salt) || cut(&rest, ':', &stored))
        return PG_ERR_MALFORMED;
    memset(s, 0, sizeof(*s));
    int rc = parse_iter(it, &s->iterations);
    if (rc != PG_OK)
        return rc;
    int sl = b64_decode(s->salt, sizeof(s->salt), salt.p, salt.len);
    if (sl < 1 ||
        b64_decode(s->stored_key, PG_SCRAM_KEY_LEN, stored.p, stored.len) != PG_SCRAM_KEY_LEN ||
        b64_decode(s->server_key, PG_SCRAM_KEY_LEN, rest.p, rest.len) != PG_SCRAM_KEY_LEN)
        return PG_ERR_MALFORMED;
    s->salt_len = (uint8_t)sl;
    return PG_OK;
}

/* s: borrowed; out: the caller's. */
int pg_scram_secret_format(const struct pg_scram_secret *s, char *out, size_t cap)
{
    if (s->salt_len == 0 || s->salt_len > PG_SCRAM_SALT_MAX)
        return PG_ERR_SCRAM_ARG;
    struct wr w = {out, cap ? cap - 1 : 0, 0, cap == 0};
    w_str(&w, "SCRAM-SHA-256$");
    w_u32(&w, s->iterations);
    w_str(&w, ":");
    w_b64(&w, s->salt, s->salt_len);
    w_str(&w, "$");
    w_b64(&w, s->stored_key, PG_SCRAM_KEY_LEN);
    w_str(&w, ":");
    w_b64(&w, s->server_key, PG_SCRAM_KEY_LEN);
    if (w.over)
        return PG_ERR_TOO_LARGE;
    out[w.len] = 0;
    return (int)w.len;
}

/* ---- Both sides: the signatures over AuthMessage --------------------------------- */

/* AuthMessage = client-first-bare "," server-first "," client-final-without-
 * proof (RFC 5802 section 3). Computes HMAC(key, AuthMessage) into out. The
 * three parts are each at most PG_SCRAM_MSG_MAX bytes. 0 or -1. All
 * borrowed; out: the caller's 32 bytes. */
static int sign(const uint8_t *key, const char *bare, size_t bl, const char *sf, size_t sl,
                const char *cf, size_t cl, uint8_t *out)
{
    char auth[3 * PG_SCRAM_MSG_MAX + 2];
    if (bl > PG_SCRAM_MSG_MAX || sl > PG_SCRAM_MSG_MAX || cl > PG_SCRAM_MSG_MAX)
        return -1;
    memcpy(auth, bare, bl);
    auth[bl] = ',';
    memcpy(auth + bl + 1, sf, sl);
    auth[bl + 1 + sl] = ',';
    memcpy(auth + bl + 2 + sl, cf, cl);
    return hmac256(key, auth, bl + sl + cl + 2, out);
}

/* ---- Client side ---------------------------------------------------------------- */

/* sc, out: the caller's; user, nonce: borrowed. */
int pg_scram_client_first(struct pg_scram *sc, const char *user, const char *nonce,
                          size_t nonce_len, char *out, size_t cap)
{
    memset(sc, 0, sizeof(*sc));
    if (!nonce_ok(nonce, nonce_len, PG_SCRAM_NONCE_MAX))
        return PG_ERR_SCRAM_ARG;
    struct wr b = {sc->bare, sizeof(sc->bare), 0, 0};
    w_str(&b, "n=");
    for (const char *u = user ? user : ""; *u; u++)
        w_str(&b, *u == ',' ? "=2C" : *u == '=' ? "=3D" : (char[2]){*u, 0});
    w_str(&b, ",r=");
    w_mem(&b, nonce, nonce_len);
    if (b.over)
        return PG_ERR_TOO_LARGE;
    struct wr o = {out, cap, 0, 0};
    w_str(&o, "n,,");
    w_mem(&o, sc->bare, b.len);
    if (o.over)
        return PG_ERR_TOO_LARGE;
    sc->bare_len = (uint16_t)b.len;
    sc->cnonce_len = (uint16_t)nonce_len;
    sc->step = ST_FIRST_SENT;
    return (int)o.len;
}

/* sc: the caller's; msg: borrowed. */
int pg_scram_client_parse_server_first(struct pg_scram *sc, const char *msg, size_t n)
{
    if (sc->step != ST_FIRST_SENT)
        return PG_ERR_SCRAM_STATE;
    pg_str a[MAX_ATTRS];
    int k = split(msg, n, a, MAX_ATTRS);
    if (k < 0)
        return k;
    if (is_attr(a[0], 'e'))
        return PG_ERR_SCRAM_SERVER;
    if (is_attr(a[0], 'm'))
        return PG_ERR_SCRAM_UNSUPPORTED;
    if (k < 3 || !is_attr(a[0], 'r') || !is_attr(a[1], 's') || !is_attr(a[2], 'i'))
        return PG_ERR_MALFORMED;
    for (int i = 3; i < k; i++)
        if (!is_ext(a[i]))
            return PG_ERR_MALFORMED;
    pg_str r = val(a[0]);
    if (!nonce_ok(r.p, r.len, 2 * PG_SCRAM_NONCE_MAX))
        return PG_ERR_MALFORMED;
    /* The server's part must follow ours: a server that echoes only our
     * nonce adds no freshness, so a replayed exchange would verify. */
    const char *ours = sc->bare + sc->bare_len - sc->cnonce_len;
    if (r.len <= sc->cnonce_len || memcmp(r.p, ours, sc->cnonce_len) != 0)
        return PG_ERR_SCRAM_NONCE;
    pg_str s = val(a[1]);
    int sl = b64_decode(sc->salt, sizeof(sc->salt), s.p, s.len);
    if (sl < 1)
        return PG_ERR_MALFORMED;
    int rc = parse_iter(val(a[2]), &sc->iterations);
    if (rc != PG_OK)
        return rc;
    memcpy(sc->sfirst, msg, n);
    sc->sfirst_len = (uint16_t)n;
    sc->nonce_len = (uint16_t)r.len;
    sc->salt_len = (uint8_t)sl;
    sc->step = ST_FIRST_READ;
    return PG_OK;
}

/* sc: borrowed; *salt points into it. */
void pg_scram_client_salt(const struct pg_scram *sc, const uint8_t **salt, size_t *salt_len,
                          uint32_t *iterations)
{
    *salt = sc->salt;
    *salt_len = sc->step >= ST_FIRST_READ ? sc->salt_len : 0;
    *iterations = sc->step >= ST_FIRST_READ ? sc->iterations : 0;
}

/* sc, out: the caller's; k: borrowed. */
int pg_scram_client_final_keys(struct pg_scram *sc, const struct pg_scram_keys *k, char *out,
                               size_t cap)
{
    if (sc->step != ST_FIRST_READ)
        return PG_ERR_SCRAM_STATE;
    /* "biws" is base64("n,,"): we never bind to the channel. */
    struct wr o = {out, cap, 0, 0};
    w_str(&o, "c=biws,r=");
    w_mem(&o, sc->sfirst + 2, sc->nonce_len);
    if (o.over || o.len > PG_SCRAM_MSG_MAX)
        return PG_ERR_TOO_LARGE;
    size_t without = o.len;
    uint8_t csig[PG_SCRAM_KEY_LEN], proof[PG_SCRAM_KEY_LEN], ssig[PG_SCRAM_KEY_LEN];
    int rc = PG_OK;
    if (sign(k->stored_key, sc->bare, sc->bare_len, sc->sfirst, sc->sfirst_len, out, without,
             csig) ||
        sign(k->server_key, sc->bare, sc->bare_len, sc->sfirst, sc->sfirst_len, out, without,
             ssig)) {
        rc = PG_ERR_SCRAM_CRYPTO;
    } else {
        for (int i = 0; i < PG_SCRAM_KEY_LEN; i++)
            proof[i] = k->client_key[i] ^ csig[i];
        w_str(&o, ",p=");
        w_b64(&o, proof, sizeof(proof));
        if (o.over) {
            rc = PG_ERR_TOO_LARGE;
        } else {
            memcpy(sc->server_sig, ssig, sizeof(ssig));
            sc->step = ST_FINAL_SENT;
            rc = (int)o.len;
        }
    }
    OPENSSL_cleanse(csig, sizeof(csig));
    OPENSSL_cleanse(proof, sizeof(proof));
    return rc;
}

/* sc, out: the caller's; password: borrowed. */
int pg_scram_client_final(struct pg_scram *sc, const char *password, char *out, size_t cap)
{
    if (sc->step != ST_FIRST_READ)
        return PG_ERR_SCRAM_STATE;
    struct pg_scram_keys k;
    int rc = pg_scram_derive(password, sc->salt, sc->salt_len, sc->iterations, &k);
    if (rc == PG_OK)
        rc = pg_scram_client_final_keys(sc, &k, out, cap);
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

/* sc, msg: borrowed; *error points into msg. */
int pg_scram_client_verify_server_final(const struct pg_scram *sc, const char *msg, size_t n,
                                        pg_str *error)
{
    if (error) {
        error->p = NULL;
        error->len = 0;
    }
    if (sc->step != ST_FINAL_SENT)
        return PG_ERR_SCRAM_STATE;
    pg_str a[MAX_ATTRS];
    int k = split(msg, n, a, MAX_ATTRS);
    if (k < 0)
        return k;
    for (int i = 1; i < k; i++)
        if (!is_ext(a[i]))
            return PG_ERR_MALFORMED;
    if (is_attr(a[0], 'e')) {
        if (a[0].len == 2)
            return PG_ERR_MALFORMED;
        if (error)
            *error = val(a[0]);
        return PG_ERR_SCRAM_SERVER;
    }
    uint8_t sig[PG_SCRAM_KEY_LEN];
    if (!is_attr(a[0], 'v') ||
        b64_decode(sig, sizeof(sig), a[0].p + 2, a[0].len - 2) != PG_SCRAM_KEY_LEN)
        return PG_ERR_MALFORMED;
    return CRYPTO_memcmp(sig, sc->server_sig, PG_SCRAM_KEY_LEN) ? PG_ERR_SCRAM_SIGNATURE : PG_OK;
}

/* sc, out: the caller's. */
int pg_scram_first(struct pg_scram *sc, char *out, size_t cap)
{
    char nonce[PG_SCRAM_NONCE_LEN + 1];
    int n = pg_scram_nonce(nonce, sizeof(nonce));
    if (n < 0) {
        memset(sc, 0, sizeof(*sc));
        return n;
    }
    return pg_scram_client_first(sc, NULL, nonce, (size_t)n, out, cap);
}

/* sc, out: the caller's; password, sf: borrowed. */
int pg_scram_final(struct pg_scram *sc, const char *password, const char *sf, size_t n,
                   char *out, size_t cap)
{
    int rc = pg_scram_client_parse_server_first(sc, sf, n);
    return rc != PG_OK ? rc : pg_scram_client_final(sc, password, out, cap);
}

/* sc, sf: borrowed. */
int pg_scram_verify(const struct pg_scram *sc, const char *sf, size_t n)
{
    return pg_scram_client_verify_server_final(sc, sf, n, NULL);
}

/* ---- Server side ------------------------------------------------------------------ */

/* ss: the caller's; msg: borrowed. */
int pg_scram_server_parse_client_first(struct pg_scram_server *ss, const char *msg, size_t n)
{
    memset(ss, 0, sizeof(*ss));
    pg_str a[MAX_ATTRS];
    int k = split(msg, n, a, MAX_ATTRS);
    if (k < 0)
        return k;
    /* gs2 header: the binding flag, then the authzid piece. */
    if (is_attr(a[0], 'p'))
        return PG_ERR_SCRAM_CBIND;
    if (a[0].len != 1 || (a[0].p[0] != 'n' && a[0].p[0] != 'y') || k < 2)
        return PG_ERR_MALFORMED;
    if (is_attr(a[1], 'a'))
        return PG_ERR_SCRAM_UNSUPPORTED;
    if (a[1].len != 0 || k < 3)
        return PG_ERR_MALFORMED;
    if (is_attr(a[2], 'm'))
        return PG_ERR_SCRAM_UNSUPPORTED;
    /* The user name is not checked beyond its shape: PostgreSQL ignores it
     * (drivers send "", "*" or the role), and so do we. */
    if (k < 4 || !is_attr(a[2], 'n') || !is_attr(a[3], 'r'))
        return PG_ERR_MALFORMED;
    pg_str r = val(a[3]);
    if (!nonce_ok(r.p, r.len, PG_SCRAM_NONCE_MAX))
        return PG_ERR_MALFORMED;
    for (int i = 4; i < k; i++)
        if (!is_ext(a[i]))
            return PG_ERR_MALFORMED;
    size_t off = (size_t)(a[2].p - msg);
    ss->bare_len = (uint16_t)(n - off);
    memcpy(ss->bare, a[2].p, ss->bare_len);
    ss->cnonce_off = (uint16_t)(r.p - a[2].p);
    ss->cnonce_len = (uint16_t)r.len;
    ss->cbind = a[0].p[0];
    ss->step = SV_FIRST_READ;
    return PG_OK;
}

/* ss, out: the caller's; secret, nonce: borrowed. */
int pg_scram_server_first(struct pg_scram_server *ss, const struct pg_scram_secret *secret,
                          const char *nonce, size_t nonce_len, char *out, size_t cap)
{
    if (ss->step != SV_FIRST_READ)
        return PG_ERR_SCRAM_STATE;
    if (!nonce_ok(nonce, nonce_len, PG_SCRAM_NONCE_MAX) || secret->salt_len == 0 ||
        secret->salt_len > PG_SCRAM_SALT_MAX)
        return PG_ERR_SCRAM_ARG;
    if (secret->iterations < PG_SCRAM_ITER_MIN || secret->iterations > PG_SCRAM_ITER_MAX)
        return PG_ERR_SCRAM_ITER;
    struct wr w = {ss->sfirst, sizeof(ss->sfirst), 0, 0};
    w_str(&w, "r=");
    w_mem(&w, ss->bare + ss->cnonce_off, ss->cnonce_len);
    w_mem(&w, nonce, nonce_len);
    w_str(&w, ",s=");
    w_b64(&w, secret->salt, secret->salt_len);
    w_str(&w, ",i=");
    w_u32(&w, secret->iterations);
    if (w.over || w.len > cap)
        return PG_ERR_TOO_LARGE;
    memcpy(out, ss->sfirst, w.len);
    ss->sfirst_len = (uint16_t)w.len;
    ss->nonce_len = (uint16_t)(ss->cnonce_len + nonce_len);
    memcpy(ss->stored_key, secret->stored_key, PG_SCRAM_KEY_LEN);
    memcpy(ss->server_key, secret->server_key, PG_SCRAM_KEY_LEN);
    ss->step = SV_FIRST_SENT;
    return (int)w.len;
}

/* ss: the caller's; msg: borrowed. */
int pg_scram_server_verify_client_final(struct pg_scram_server *ss, const char *msg, size_t n)
{
    if (ss->step != SV_FIRST_SENT)
        return PG_ERR_SCRAM_STATE;
    pg_str a[MAX_ATTRS];
    int k = split(msg, n, a, MAX_ATTRS);
    if (k < 0)
        return k;
    if (k < 3 || !is_attr(a[0], 'c') || !is_attr(a[1], 'r') || !is_attr(a[k - 1], 'p'))
        return PG_ERR_MALFORMED;
    for (int i = 2; i < k - 1; i++)
        if (!is_ext(a[i]) || is_attr(a[i], 'p'))
            return PG_ERR_MALFORMED;
    uint8_t cb[PG_SCRAM_MSG_MAX], proof[PG_SCRAM_KEY_LEN];
    pg_str c = val(a[0]), r = val(a[1]), p = val(a[k - 1]);
    int cl = b64_decode(cb, sizeof(cb), c.p, c.len);
    if (cl < 0 || b64_decode(proof, sizeof(proof), p.p, p.len) != PG_SCRAM_KEY_LEN)
        return PG_ERR_MALFORMED;
    /* c= must repeat the gs2 header, so a man in the middle cannot strip
     * "y" (the client could bind) down to "n". */
    char gs2[3] = {ss->cbind, ',', ','};
    if (cl != 3 || memcmp(cb, gs2, 3) != 0)
        return PG_ERR_SCRAM_CBIND;
    if (r.len != ss->nonce_len || memcmp(r.p, ss->sfirst + 2, r.len) != 0)
        return PG_ERR_SCRAM_NONCE;
    size_t without = (size_t)(a[k - 1].p - 1 - msg);
    uint8_t csig[PG_SCRAM_KEY_LEN], ckey[PG_SCRAM_KEY_LEN], h[PG_SCRAM_KEY_LEN];
    int rc;
    if (sign(ss->stored_key, ss->bare, ss->bare_len, ss->sfirst, ss->sfirst_len, msg, without,
             csig)) {
        rc = PG_ERR_SCRAM_CRYPTO;
    } else {
        /* ClientKey = ClientProof XOR ClientSignature; the client knows the
         * password iff its hash is StoredKey. */
        for (int i = 0; i < PG_SCRAM_KEY_LEN; i++)
            ckey[i] = proof[i] ^ csig[i];
        if (!SHA256(ckey, PG_SCRAM_KEY_LEN, h))
            rc = PG_ERR_SCRAM_CRYPTO;
        else if (CRYPTO_memcmp(h, ss->stored_key, PG_SCRAM_KEY_LEN) != 0)
            rc = PG_ERR_SCRAM_PROOF;
        else if (sign(ss->server_key, ss->bare, ss->bare_len, ss->sfirst, ss->sfirst_len, msg,
                      without, ss->server_sig))
            rc = PG_ERR_SCRAM_CRYPTO;
        else
            rc = PG_OK;
    }
    OPENSSL_cleanse(ckey, sizeof(ckey));
    if (rc == PG_OK)
        ss->step = SV_VERIFIED;
    return rc;
}

/* ss: borrowed; out: the caller's. */
int pg_scram_server_final(const struct pg_scram_server *ss, char *out, size_t cap)
{
    if (ss->step != SV_VERIFIED)
        return PG_ERR_SCRAM_STATE;
    struct wr w = {out, cap, 0, 0};
    w_str(&w, "v=");
    w_b64(&w, ss->server_sig, PG_SCRAM_KEY_LEN);
    return w.over ? PG_ERR_TOO_LARGE : (int)w.len;
}

/* ---- Wire messages ----------------------------------------------------------------- */

/* Big-endian Int32 into p[0..4), the caller's. */
static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

/* One typed message: type, length word, then head[0..hn) (a name with its
 * NUL, or an Int32) and an optional Int32 length before data[0..n).
 * buf: the caller's; head, data: borrowed. Length or -1. */
static int wire(char *buf, size_t cap, char type, const void *head, size_t hn, int len_word,
                const char *data, size_t n)
{
    if (n > PG_MESSAGE_MAX || (n && !data))
        return -1;
    size_t body = hn + (len_word ? 4 : 0) + n;
    if (body > PG_MESSAGE_MAX - 4 || cap < 5 || body > cap - 5)
        return -1;
    buf[0] = type;
    put32(buf + 1, (uint32_t)(4 + body));
    char *p = buf + 5;
    if (hn)
        memcpy(p, head, hn);
    p += hn;
    if (len_word) {
        put32(p, (uint32_t)n);
        p += 4;
    }
    if (n)
        memcpy(p, data, n);
    return (int)(5 + body);
}

/* buf: the caller's; mech, data: borrowed. */
int pg_build_sasl_initial(char *buf, size_t cap, const char *mech, const char *data, size_t n)
{
    if (!mech || !*mech)
        return -1;
    return wire(buf, cap, 'p', mech, strlen(mech) + 1, 1, data, n);
}

/* buf: the caller's; data: borrowed. */
int pg_build_sasl_response(char *buf, size_t cap, const char *data, size_t n)
{
    return wire(buf, cap, 'p', NULL, 0, 0, data, n);
}

/* buf: the caller's. */
int pg_build_auth_sasl(char *buf, size_t cap)
{
    /* Int32 10, then the list: one name and the empty terminator. */
    static const char body[] = "\0\0\0\x0a" PG_SCRAM_MECH "\0";
    return wire(buf, cap, 'R', body, sizeof(body), 0, NULL, 0);
}

/* buf: the caller's; data: borrowed. */
int pg_build_auth_sasl_continue(char *buf, size_t cap, const char *data, size_t n)
{
    static const char code[4] = {0, 0, 0, PG_AUTH_SASL_CONTINUE};
    return wire(buf, cap, 'R', code, 4, 0, data, n);
}

/* buf: the caller's; data: borrowed. */
int pg_build_auth_sasl_final(char *buf, size_t cap, const char *data, size_t n)
{
    static const char code[4] = {0, 0, 0, PG_AUTH_SASL_FINAL};
    return wire(buf, cap, 'R', code, 4, 0, data, n);
}
