/* fuzz_pg.c - libFuzzer target for the PostgreSQL v3 codec (src/proto/pg).
 *
 * The first input byte selects what to do, the rest is one direction of a
 * connection:
 *   bit  0    direction: 0 client (untyped startup phase first: SSLRequest,
 *             GSSENCRequest, CancelRequest or StartupMessage, then typed
 *             messages), 1 server (a lone 'N'/'S' SSL answer may come first)
 *   bits 1-2  piece size the stream is fed in: whole, 1, 3, 61 bytes
 *   bits 3-4  max_len: PG_MESSAGE_MAX, 4096, 64, 6
 *   bit  5    startup parameter capacity: 16 or 1
 * Seeds from tests/fuzz/capture_pg.py (real psql/pgbench sessions) start
 * with 0x00 (client) or 0x01 (server).
 *
 * Invariants beyond "no crash, no sanitizer report": framing returns only
 * valid codes and lengths inside the input and within max_len; the header
 * framer agrees with the full one; every decoded string lies inside the
 * message body; decoders return only valid codes; messages that decode
 * rebuild to the same bytes (Query, CommandComplete, ParameterStatus,
 * ReadyForQuery, StartupMessage, Terminate/Sync); the field walkers always
 * progress; and feeding the stream in pieces yields exactly the messages
 * the whole stream yields. A broken invariant aborts. */
#include "proto/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const size_t max_len_tab[4] = {PG_MESSAGE_MAX, 4096, 64, 6};
static const size_t chunk_tab[4] = {0, 1, 3, 61};

static const struct pg_msg *cur; /* message being decoded, for in_body */

static void in_body(pg_str s)
{
    if (!s.p) {
        ASSERT(s.len == 0);
        return;
    }
    ASSERT(s.p >= cur->body && s.p + s.len <= cur->body + cur->body_len);
}

static int valid_dec(int r)
{
    return r == PG_OK || r == PG_ERR_MALFORMED || r == PG_ERR_TYPE || r == PG_ERR_VERSION;
}

static void rebuild_same(const struct pg_msg *m, int n, const char *buf)
{
    ASSERT(n == (int)m->len);
    ASSERT(memcmp(buf, m->body - m->hdr_len, m->len) == 0);
}

static void walk_cstrs(pg_str rest)
{
    pg_str item;
    size_t before = rest.len;
    while (pg_cstr_next(&rest, &item)) {
        in_body(item);
        ASSERT(rest.len < before);
        before = rest.len;
    }
}

static void decode_fe(const struct pg_msg *m)
{
    pg_str s, t;
    char k;
    uint32_t u;
    uint16_t h;
    int has, r;
    struct pg_parse p;
    struct pg_bind b;
    static char out[256];
    cur = m;
    switch (m->type) {
    case 'Q':
        r = pg_fe_query(m, &s);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(s);
            ASSERT(!memchr(s.p, 0, s.len));
            if (s.len < 200) {
                char sql[256];
                memcpy(sql, s.p, s.len);
                sql[s.len] = 0;
                rebuild_same(m, pg_build_query(out, sizeof out, sql), out);
            }
        }
        break;
    case 'P':
        r = pg_fe_parse(m, &p);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(p.name);
            in_body(p.query);
            ASSERT(m->body_len == p.name.len + p.query.len + 4 + 4u * p.nparams);
        }
        break;
    case 'B':
        r = pg_fe_bind(m, &b);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(b.portal);
            in_body(b.statement);
        }
        break;
    case 'D':
    case 'C':
        r = m->type == 'D' ? pg_fe_describe(m, &k, &s) : pg_fe_close(m, &k, &s);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(s);
            ASSERT(k == 'S' || k == 'P');
        }
        break;
    case 'E':
        r = pg_fe_execute(m, &s, &u);
        ASSERT(valid_dec(r));
        if (r == PG_OK) in_body(s);
        break;
    case 'F':
        ASSERT(valid_dec(pg_fe_function_call(m, &u, &h)));
        break;
    case 'f':
        r = pg_fe_copy_fail(m, &s);
        ASSERT(valid_dec(r));
        if (r == PG_OK) in_body(s);
        break;
    case 'p':
        r = pg_fe_sasl_initial(m, &s, &t, &has);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(s);
            in_body(t);
            ASSERT(s.len > 0);
        }
        r = pg_fe_password(m, &s);
        ASSERT(valid_dec(r));
        if (r == PG_OK) in_body(s);
        break;
    case 'S':
    case 'X':
        if (pg_fe_is_empty(m, m->type)) {
            int n = m->type == 'S' ? pg_build_sync(out, sizeof out)
                                   : pg_build_terminate(out, sizeof out);
            rebuild_same(m, n, out);
        } else {
            ASSERT(m->body_len > 0);
        }
        break;
    default:
        break;
    }
}

static void decode_be(const struct pg_msg *m)
{
    pg_str s, t;
    uint32_t u, v;
    uint16_t h;
    char st;
    int r;
    struct pg_auth a;
    struct pg_error e;
    struct pg_command_complete c;
    struct pg_copy_response cr;
    static char out[512];
    cur = m;
    switch (m->type) {
    case 'R':
        r = pg_be_auth(m, &a);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(a.data);
            if (a.code == PG_AUTH_SASL) walk_cstrs(a.data);
            if (a.code == PG_AUTH_OK) rebuild_same(m, pg_build_auth_ok(out, sizeof out), out);
            if (a.code == PG_AUTH_MD5)
                rebuild_same(m, pg_build_auth_md5(out, sizeof out, a.salt), out);
        }
        break;
    case 'S':
        r = pg_be_param_status(m, &s, &t);
        ASSERT(valid_dec(r));
        if (r == PG_OK && s.len < 100 && t.len < 100) {
            in_body(s);
            in_body(t);
            char a1[128], a2[128];
            memcpy(a1, s.p, s.len);
            a1[s.len] = 0;
            memcpy(a2, t.p, t.len);
            a2[t.len] = 0;
            rebuild_same(m, pg_build_param_status(out, sizeof out, a1, a2), out);
        }
        break;
    case 'K':
        r = pg_be_key_data(m, &u, &s, &v);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(s);
            rebuild_same(m, pg_build_key_data(out, sizeof out, u, s.p, s.len), out);
        }
        break;
    case 'Z':
        r = pg_be_ready(m, &st);
        ASSERT(valid_dec(r));
        if (r == PG_OK) rebuild_same(m, pg_build_ready(out, sizeof out, st), out);
        break;
    case 'E':
    case 'N': {
        r = pg_be_error(m, &e);
        ASSERT(valid_dec(r));
        pg_str rest = {m->body, m->body_len};
        char code;
        size_t nf = 0, before = rest.len;
        while (pg_error_next(&rest, &code, &s)) {
            in_body(s);
            ASSERT(code != 0 && rest.len < before);
            before = rest.len;
            nf++;
        }
        if (r == PG_OK) {
            in_body(e.severity);
            in_body(e.sqlstate);
            in_body(e.message);
            ASSERT(nf == e.nfields && rest.len == 1);
        }
        break;
    }
    case 'C':
        r = pg_be_command_complete(m, &c);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(c.tag);
            in_body(c.verb);
            ASSERT(c.verb.p == c.tag.p && c.verb.len <= c.tag.len);
            if (c.tag.len < 200) {
                char tag[256];
                memcpy(tag, c.tag.p, c.tag.len);
                tag[c.tag.len] = 0;
                rebuild_same(m, pg_build_command_complete(out, sizeof out, tag), out);
            }
        }
        break;
    case 'T':
        ASSERT(valid_dec(pg_be_row_description(m, &h)));
        break;
    case 'D':
        ASSERT(valid_dec(pg_be_data_row(m, &h)));
        break;
    case 't':
        r = pg_be_param_description(m, &h);
        ASSERT(valid_dec(r));
        if (r == PG_OK) ASSERT(m->body_len == 2 + 4u * h);
        break;
    case 'G':
    case 'H':
    case 'W':
        r = pg_be_copy_response(m, &cr);
        ASSERT(valid_dec(r));
        if (r == PG_OK) ASSERT(m->body_len == 3 + 2u * cr.ncols && cr.format <= 1);
        break;
    case 'A':
        r = pg_be_notification(m, &u, &s, &t);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(s);
            in_body(t);
        }
        break;
    case 'v':
        r = pg_be_negotiate(m, &u, &v, &s);
        ASSERT(valid_dec(r));
        if (r == PG_OK) {
            in_body(s);
            walk_cstrs(s);
        }
        break;
    default:
        break;
    }
}

static void decode_startup(const struct pg_msg *m, size_t cap, int *done)
{
    struct pg_param params[16];
    struct pg_startup s = {.params = params};
    static char out[PG_STARTUP_MAX + 16];
    cur = m;
    int r = pg_parse_startup(m, &s, cap);
    ASSERT(valid_dec(r));
    if (r != PG_OK) return;
    if (s.kind == PG_STARTUP_MESSAGE) {
        *done = 1;
        ASSERT(s.major == 3);
        in_body(s.user);
        in_body(s.database);
        in_body(s.options);
        for (size_t i = 0; i < s.nparams && i < cap; i++) {
            in_body(params[i].name);
            in_body(params[i].value);
            ASSERT(params[i].name.len > 0);
        }
        if (s.nparams <= cap) {
            int n = pg_build_startup(out, sizeof out, s.major, s.minor, params, s.nparams);
            rebuild_same(m, n, out);
        }
    } else if (s.kind == PG_STARTUP_CANCEL) {
        in_body(s.cancel_key);
        ASSERT(s.cancel_key.len >= PG_CANCEL_KEY_MIN && s.cancel_key.len <= PG_CANCEL_KEY_MAX);
        rebuild_same(m, pg_build_cancel(out, sizeof out, s.pid, s.cancel_key.p,
                                        s.cancel_key.len), out);
    } else {
        ASSERT(m->len == 8);
    }
}

/* The sequence of messages (type, length) a stream yields, and how it ended. */
struct trace {
    uint64_t hash;
    size_t nmsgs, consumed;
    int end; /* PG_INCOMPLETE or an error code */
};

static void trace_add(struct trace *t, const struct pg_msg *m)
{
    t->hash = (t->hash ^ m->type) * 1099511628211ull;
    t->hash = (t->hash ^ m->len) * 1099511628211ull;
    t->nmsgs++;
}

/* Frames and decodes data[0..n) in pieces of `chunk` bytes (0 = whole)
 * through a caller buffer that keeps unconsumed bytes. */
static void run(const char *data, size_t n, int client, size_t chunk, size_t max_len,
                size_t cap, int decode, struct trace *t)
{
    memset(t, 0, sizeof *t);
    t->end = PG_INCOMPLETE;
    char *buf = malloc(n ? n : 1);
    size_t have = 0, off = 0;
    int startup = client;
    struct pg_state st;
    memset(&st, 0, sizeof st);
    if (!client && n && (data[0] == 'N' || data[0] == 'S')) {
        data++;
        n--;
    }
    size_t fed = 0;
    for (;;) {
        size_t take = chunk ? (n - fed < chunk ? n - fed : chunk) : n - fed;
        memcpy(buf + have, data + fed, take);
        have += take;
        fed += take;
        for (;;) {
            struct pg_msg m;
            memset(&m, 0, sizeof m);
            size_t lim = startup ? (max_len < PG_STARTUP_MAX ? max_len : PG_STARTUP_MAX)
                                 : max_len;
            int r = startup ? pg_frame_startup(buf + off, have - off, lim, &m)
                            : pg_frame(buf + off, have - off, lim, &m);
            ASSERT(r == PG_OK || r == PG_INCOMPLETE || r == PG_ERR_MALFORMED ||
                   r == PG_ERR_TOO_LARGE);
            if (!startup && have - off >= 5) {
                struct pg_msg hm;
                int hr = pg_frame_header(buf + off, have - off, lim, &hm);
                ASSERT(hr == r || (hr == PG_OK && r == PG_INCOMPLETE));
                if (hr == PG_OK) ASSERT(hm.len >= 5 && hm.len <= lim && hm.body == NULL);
                if (r == PG_OK) ASSERT(hm.len == m.len && hm.type == m.type);
            }
            if (r != PG_OK) {
                if (r != PG_INCOMPLETE) {
                    t->end = r;
                    t->consumed = off;
                    free(buf);
                    return;
                }
                break;
            }
            ASSERT(m.len <= have - off && m.len <= lim);
            ASSERT(m.len == m.hdr_len + m.body_len);
            ASSERT(m.body == buf + off + m.hdr_len);
            ASSERT(m.hdr_len == (startup ? 4 : 5));
            trace_add(t, &m);
            if (decode) {
                /* Decode from an exact-size copy so ASan sees overreads. */
                char *e = malloc(m.len);
                memcpy(e, buf + off, m.len);
                struct pg_msg em;
                int er = startup ? pg_frame_startup(e, m.len, lim, &em)
                                 : pg_frame(e, m.len, lim, &em);
                ASSERT(er == PG_OK && em.len == m.len);
                if (startup) {
                    int done = 0;
                    decode_startup(&em, cap, &done);
                    if (done) startup = 0;
                } else if (client) {
                    decode_fe(&em);
                    pg_state_frontend(&st, &em);
                } else {
                    decode_be(&em);
                    pg_state_backend(&st, &em);
                }
                free(e);
            } else if (startup) {
                struct pg_param params[16];
                struct pg_startup s = {.params = params};
                if (pg_parse_startup(&m, &s, cap) == PG_OK && s.kind == PG_STARTUP_MESSAGE)
                    startup = 0;
            }
            off += m.len;
        }
        if (fed == n) break;
    }
    t->consumed = off;
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t ctl = data[0];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    int client = !(ctl & 1);
    size_t chunk = chunk_tab[(ctl >> 1) & 3];
    size_t max_len = max_len_tab[(ctl >> 3) & 3];
    size_t cap = (ctl & 0x20) ? 1 : 16;
    struct trace whole, pieces;
    run(p, n, client, 0, max_len, cap, 1, &whole);
    if (chunk) {
        run(p, n, client, chunk, max_len, cap, 0, &pieces);
        ASSERT(whole.hash == pieces.hash && whole.nmsgs == pieces.nmsgs &&
               whole.consumed == pieces.consumed);
        /* A framing error is seen once its header bytes are in, whatever the
         * piece size; only a stream that ends early stays incomplete. */
        ASSERT(whole.end == pieces.end);
    }
    return 0;
}
