/* pg_build.c - PostgreSQL v3 message builders and the connection state
 * tracker (see pg.h).
 *
 * Builders write through a bounded cursor (struct wr): once a write would
 * pass cap, the cursor is marked full and the builder returns -1, so no
 * builder can overrun the caller's buffer whatever its arguments. */
#include "proto/pg/pg.h"

#include <openssl/evp.h>
#include <string.h>

struct wr {
    uint8_t *p;
    size_t cap, n;
    int bad;
};

static void w_bytes(struct wr *w, const void *s, size_t k)
{
    if (w->bad || k > w->cap - w->n) {
        w->bad = 1;
        return;
    }
    if (k) memcpy(w->p + w->n, s, k);
    w->n += k;
}

static void w_u8(struct wr *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}


static void w_u32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    w_bytes(w, b, 4);
}

/* A C string with its NUL; a NULL string is invalid. */
static void w_cstr(struct wr *w, const char *s)
{
    if (!s) {
        w->bad = 1;
        return;
    }
    w_bytes(w, s, strlen(s) + 1);
}

/* A counted string with a NUL appended; an embedded NUL is invalid. */
static void w_str(struct wr *w, pg_str s)
{
    if ((!s.p && s.len) || (s.len && memchr(s.p, 0, s.len))) {
        w->bad = 1;
        return;
    }
    w_bytes(w, s.p, s.len);
    w_u8(w, 0);
}

/* Starts a typed message: type byte and a length placeholder. */
static struct wr w_begin(char *buf, size_t cap, uint8_t type)
{
    struct wr w = {(uint8_t *)buf, cap, 0, 0};
    if (!buf) w.bad = 1;
    if (type) w_u8(&w, type);
    w_u32(&w, 0);
    return w;
}

/* Patches the length word and returns the message length or -1. */
static int w_end(struct wr *w, int typed)
{
    if (w->bad || w->n > 0x7fffffffu) return -1;
    size_t off = typed ? 1 : 0;
    uint32_t l = (uint32_t)(w->n - off);
    w->p[off] = (uint8_t)(l >> 24);
    w->p[off + 1] = (uint8_t)(l >> 16);
    w->p[off + 2] = (uint8_t)(l >> 8);
    w->p[off + 3] = (uint8_t)l;
    return (int)w->n;
}

int pg_build_error_ex(char *buf, size_t cap, uint8_t type, const char *severity,
                      const char *sqlstate, const char *message, const char *detail,
                      const char *hint)
{
    if ((type != 'E' && type != 'N') || !sqlstate || strlen(sqlstate) != 5) return -1;
    struct wr w = w_begin(buf, cap, type);
    w_u8(&w, 'S');
    w_cstr(&w, severity);
    w_u8(&w, 'V');
    w_cstr(&w, severity);
    w_u8(&w, 'C');
    w_cstr(&w, sqlstate);
    w_u8(&w, 'M');
    w_cstr(&w, message);
    if (detail) {
        w_u8(&w, 'D');
        w_cstr(&w, detail);
    }
    if (hint) {
        w_u8(&w, 'H');
        w_cstr(&w, hint);
    }
    w_u8(&w, 0);
    return w_end(&w, 1);
}

int pg_build_error(char *buf, size_t cap, const char *severity, const char *sqlstate,
                   const char *message)
{
    return pg_build_error_ex(buf, cap, 'E', severity, sqlstate, message, NULL, NULL);
}

int pg_build_ready(char *buf, size_t cap, char status)
{
    if (status != 'I' && status != 'T' && status != 'E') return -1;
    struct wr w = w_begin(buf, cap, 'Z');
    w_u8(&w, (uint8_t)status);
    return w_end(&w, 1);
}

int pg_build_ssl_refuse(char *buf, size_t cap)
{
    if (!buf || cap < 1) return -1;
    buf[0] = 'N';
    return 1;
}

int pg_build_auth_ok(char *buf, size_t cap)
{
    struct wr w = w_begin(buf, cap, 'R');
    w_u32(&w, PG_AUTH_OK);
    return w_end(&w, 1);
}

int pg_build_auth_md5(char *buf, size_t cap, const uint8_t salt[4])
{
    struct wr w = w_begin(buf, cap, 'R');
    w_u32(&w, PG_AUTH_MD5);
    w_bytes(&w, salt, 4);
    return w_end(&w, 1);
}

int pg_build_param_status(char *buf, size_t cap, const char *name, const char *value)
{
    if (!name || !*name) return -1;
    struct wr w = w_begin(buf, cap, 'S');
    w_cstr(&w, name);
    w_cstr(&w, value);
    return w_end(&w, 1);
}

int pg_build_key_data(char *buf, size_t cap, uint32_t pid, const void *key, size_t key_len)
{
    if (!key || key_len < PG_CANCEL_KEY_MIN || key_len > PG_CANCEL_KEY_MAX) return -1;
    struct wr w = w_begin(buf, cap, 'K');
    w_u32(&w, pid);
    w_bytes(&w, key, key_len);
    return w_end(&w, 1);
}

int pg_build_command_complete(char *buf, size_t cap, const char *tag)
{
    struct wr w = w_begin(buf, cap, 'C');
    w_cstr(&w, tag);
    return w_end(&w, 1);
}

int pg_build_query(char *buf, size_t cap, const char *sql)
{
    struct wr w = w_begin(buf, cap, 'Q');
    w_cstr(&w, sql);
    return w_end(&w, 1);
}

int pg_build_terminate(char *buf, size_t cap)
{
    struct wr w = w_begin(buf, cap, 'X');
    return w_end(&w, 1);
}

int pg_build_sync(char *buf, size_t cap)
{
    struct wr w = w_begin(buf, cap, 'S');
    return w_end(&w, 1);
}

int pg_build_negotiate(char *buf, size_t cap, uint32_t minor, const pg_str *options,
                       size_t noptions)
{
    if (noptions > 0xffffffffu || (noptions && !options)) return -1;
    struct wr w = w_begin(buf, cap, 'v');
    w_u32(&w, minor);
    w_u32(&w, (uint32_t)noptions);
    for (size_t i = 0; i < noptions; i++) {
        if (options[i].len == 0) return -1;
        w_str(&w, options[i]);
    }
    return w_end(&w, 1);
}

int pg_build_startup(char *buf, size_t cap, uint16_t major, uint16_t minor,
                     const struct pg_param *params, size_t nparams)
{
    if (nparams && !params) return -1;
    struct wr w = w_begin(buf, cap, 0);
    w_u32(&w, PG_PROTO(major, minor));
    for (size_t i = 0; i < nparams; i++) {
        if (params[i].name.len == 0) return -1;
        w_str(&w, params[i].name);
        w_str(&w, params[i].value);
    }
    w_u8(&w, 0);
    return w_end(&w, 0);
}

int pg_build_ssl_request(char *buf, size_t cap)
{
    struct wr w = w_begin(buf, cap, 0);
    w_u32(&w, PG_CODE_SSL);
    return w_end(&w, 0);
}

int pg_build_cancel(char *buf, size_t cap, uint32_t pid, const void *key, size_t key_len)
{
    if (!key || key_len < PG_CANCEL_KEY_MIN || key_len > PG_CANCEL_KEY_MAX) return -1;
    struct wr w = w_begin(buf, cap, 0);
    w_u32(&w, PG_CODE_CANCEL);
    w_u32(&w, pid);
    w_bytes(&w, key, key_len);
    return w_end(&w, 0);
}

int pg_build_password(char *buf, size_t cap, const char *password)
{
    struct wr w = w_begin(buf, cap, 'p');
    w_cstr(&w, password);
    return w_end(&w, 1);
}

static void hex32(const unsigned char d[16], char out[32])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
}

/* md5 of a ++ b into 32 lowercase hex characters; 0 on success. */
static int md5_hex2(const void *a, size_t alen, const void *b, size_t blen, char out[32])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    int ok = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) && EVP_DigestUpdate(ctx, a, alen) &&
        EVP_DigestUpdate(ctx, b, blen) && EVP_DigestFinal_ex(ctx, d, &dl) && dl == 16)
        ok = 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return -1;
    hex32(d, out);
    return 0;
}

int pg_build_md5_password(char *buf, size_t cap, const char *user, const char *password,
                          const uint8_t salt[4])
{
    if (!user || !password || !salt) return -1;
    char inner[32], outer[36];
    if (md5_hex2(password, strlen(password), user, strlen(user), inner) != 0) return -1;
    if (md5_hex2(inner, 32, salt, 4, outer + 3) != 0) return -1;
    memcpy(outer, "md5", 3);
    struct wr w = w_begin(buf, cap, 'p');
    w_bytes(&w, outer, 35);
    w_u8(&w, 0);
    return w_end(&w, 1);
}

/* ---- Connection state ------------------------------------------------------------ */

void pg_state_frontend(struct pg_state *st, const struct pg_msg *m)
{
    if (m->hdr_len != 5) return;
    switch (m->type) {
    case 'Q':
    case 'F':
        st->pending++;
        break;
    case 'P':
    case 'B':
    case 'D':
    case 'E':
    case 'C':
    case 'H':
        st->batch++;
        break;
    case 'S':
        st->pending++;
        st->batch = 0;
        break;
    case 'c':
    case 'f':
        if (st->copy == PG_COPY_IN || st->copy == PG_COPY_BOTH) st->copy = PG_COPY_NONE;
        break;
    case 'X':
        st->terminated = 1;
        break;
    default:
        break;
    }
}

void pg_state_backend(struct pg_state *st, const struct pg_msg *m)
{
    if (m->hdr_len != 5) return;
    switch (m->type) {
    case 'Z': {
        char s;
        if (pg_be_ready(m, &s) == PG_OK) st->tx_status = (uint8_t)s;
        if (st->pending) st->pending--;
        st->copy = PG_COPY_NONE;
        st->failed = 0;
        break;
    }
    case 'E':
        st->failed = 1;
        /* An error ends COPY on the server side. */
        st->copy = PG_COPY_NONE;
        break;
    case 'G':
        st->copy = PG_COPY_IN;
        break;
    case 'H':
        st->copy = PG_COPY_OUT;
        break;
    case 'W':
        st->copy = PG_COPY_BOTH;
        break;
    case 'c':
        if (st->copy == PG_COPY_OUT) st->copy = PG_COPY_NONE;
        break;
    default:
        break;
    }
}

int pg_state_idle(const struct pg_state *st)
{
    return st->pending == 0 && st->batch == 0 && st->copy == PG_COPY_NONE && !st->terminated;
}

int pg_state_in_transaction(const struct pg_state *st)
{
    return st->tx_status == 'T' || st->tx_status == 'E';
}
