/* fuzz_mysql.c - libFuzzer target for the MySQL codec (src/proto/mysql).
 *
 * Input: one control byte, a u32 (little endian) client stream length, the
 * client's bytes, then the server's bytes - the format of the real
 * sessions tests/fuzz/capture_mysql.py records as seeds. Each input runs:
 *   - a whole-session walk (my_session_*) over both streams, with every
 *     packet first offered as a short prefix (sizes from the control byte):
 *     MY_INCOMPLETE must ask for more than was offered and at most
 *     min(len, MY_RESP_PEEK); the full offer must then decide;
 *   - a bare response machine (my_resp) over the server stream for the
 *     command and capabilities the control byte picks;
 *   - the single-packet parsers on each packet payload, with round trips
 *     through the builders where one exists.
 * Payloads are copied into exact-size allocations so AddressSanitizer sees
 * any read past them. Invariants: results are in the documented set,
 * errors are sticky, parsed strings lie inside their payload, counters
 * only grow, and every decision consumes the packet (progress). A broken
 * invariant aborts. */
#include "proto/mysql/my.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    if (n) memcpy(q, p, n);
    return q;
}

static void in_bounds(my_str s, const uint8_t *lo, size_t n)
{
    if (!s.p) {
        ASSERT(s.len == 0);
        return;
    }
    ASSERT((const uint8_t *)s.p >= lo && (const uint8_t *)s.p + s.len <= lo + n);
}

static int valid_rc(int rc)
{
    return rc == MY_R_MORE || rc == MY_R_DONE || rc == MY_R_CLIENT || rc == MY_INCOMPLETE ||
           rc == MY_E_MALFORMED || rc == MY_E_SEQ || rc == MY_E_UNEXPECTED ||
           rc == MY_E_UNSUPPORTED;
}

static void check_resp_strings(const struct my_resp *r, const uint8_t *pl, size_t n)
{
    if (r->kind == MY_RK_OK) {
        in_bounds(r->ok.info, pl, n);
        in_bounds(r->ok.session_state, pl, n);
    }
    if (r->kind == MY_RK_ERR || r->kind == MY_RK_PROGRESS) in_bounds(r->err.message, pl, n);
    if (r->kind == MY_RK_INFILE) in_bounds(r->infile, pl, n);
    if (r->kind == MY_RK_AUTH) {
        in_bounds(r->auth.plugin, pl, n);
        in_bounds(r->auth.data, pl, n);
    }
    if (r->kind == MY_RK_HANDSHAKE) {
        in_bounds(r->hs.server_version, pl, n);
        in_bounds(r->hs.auth_plugin, pl, n);
        ASSERT(r->hs.scramble_len == 8 || r->hs.scramble_len <= 20);
    }
}

/* Single-packet parsers and round trips on one payload. */
static void parsers(const uint8_t *src, size_t n, uint64_t caps)
{
    uint8_t *p = dup_exact(src, n);
    struct my_handshake hs, hs2;
    if (my_parse_handshake(p, n, &hs) == 0) {
        in_bounds(hs.server_version, p, n);
        in_bounds(hs.auth_plugin, p, n);
        if (hs.scramble_len == 20 && hs.server_version.len < 200 && hs.auth_plugin.len < 200 &&
            (hs.caps & MY_CLIENT_SECURE_CONNECTION) && (hs.caps & MY_CLIENT_PROTOCOL_41) &&
            (!hs.auth_plugin.len || !memchr(hs.auth_plugin.p, 0, hs.auth_plugin.len))) {
            uint8_t out[600];
            int m = my_build_handshake(out, sizeof(out), &hs);
            ASSERT(m > 4);
            ASSERT(my_parse_handshake(out + 4, (size_t)m - 4, &hs2) == 0);
            ASSERT(hs2.connection_id == hs.connection_id && hs2.charset == hs.charset &&
                   hs2.status == hs.status && memcmp(hs2.scramble, hs.scramble, 20) == 0);
            ASSERT(hs2.auth_plugin.len == hs.auth_plugin.len);
            uint64_t want = hs.caps | (hs.auth_plugin.len ? MY_CLIENT_PLUGIN_AUTH : 0);
            if (want & MY_CLIENT_MYSQL) want &= 0xffffffffull;
            ASSERT(hs2.caps == want);
        }
    }
    struct my_hs_response hr, hr2;
    if (my_parse_hs_response(p, n, caps, &hr) == 0) {
        in_bounds(hr.user, p, n);
        in_bounds(hr.auth_response, p, n);
        in_bounds(hr.database, p, n);
        in_bounds(hr.auth_plugin, p, n);
        in_bounds(hr.attrs, p, n);
        my_str a = hr.attrs, k, v;
        int e, cnt = 0;
        while ((e = my_attr_next(&a, &k, &v)) == 1) {
            in_bounds(k, p, n);
            in_bounds(v, p, n);
            cnt++;
        }
        ASSERT(e == 0);
        if (!hr.ssl_request && n < 4000) {
            uint8_t *out = malloc(n + 64);
            int m = my_build_hs_response(out, n + 64, 1, &hr);
            if (m > 0) {
                ASSERT(my_parse_hs_response(out + 4, (size_t)m - 4, caps, &hr2) == 0);
                ASSERT(hr2.auth_response.len == hr.auth_response.len && hr2.user.len == hr.user.len &&
                       hr2.max_packet == hr.max_packet && hr2.charset == hr.charset);
            }
            free(out);
        }
    }
    struct my_command c;
    int rc = my_parse_command(p, n, caps, &c);
    ASSERT(rc == 0 || rc == MY_E_MALFORMED || rc == MY_E_UNSUPPORTED);
    if (rc == 0) {
        in_bounds(c.sql, p, n);
        in_bounds(c.schema, p, n);
        in_bounds(c.user, p, n);
        in_bounds(c.params, p, n);
    }
    struct my_ok ok;
    size_t cut = n / 2;
    if (my_parse_ok(p, n, n, caps, &ok) == 0) {
        in_bounds(ok.info, p, n);
        in_bounds(ok.session_state, p, n);
        ASSERT(!ok.truncated);
    }
    if (my_parse_ok(p, cut, n, caps, &ok) == 0) {
        in_bounds(ok.info, p, cut);
        in_bounds(ok.session_state, p, cut);
    }
    struct my_err er;
    if (my_parse_err(p, n, n, caps, &er) == 0) {
        in_bounds(er.message, p, n);
        uint8_t out[600];
        int m = my_build_err(out, sizeof(out), 1, MY_CLIENT_PROTOCOL_41, er.code,
                             er.sqlstate[0] ? er.sqlstate : NULL, er.message.p, er.message.len);
        struct my_err e2;
        ASSERT(m > 0 && my_parse_err(out + 4, (size_t)m - 4, (size_t)m - 4, 0, &e2) == 0 &&
               e2.code == er.code);
    }
    struct my_auth_pkt ap;
    if (my_parse_auth_packet(p, n, &ap) == 0) {
        in_bounds(ap.plugin, p, n);
        in_bounds(ap.data, p, n);
    }
    /* The proxy's own login, fed this payload as the server's greeting and
     * then as the next login packet; and the server-side password check
     * with it as the client's answer. */
    struct my_login lg;
    my_login_init(&lg, "u", n & 1 ? "pw" : NULL, n & 2 ? "db" : NULL, caps, 0);
    struct my_pkt lp = {(uint32_t)n, 0, 1, 1};
    uint8_t lout[1024];
    size_t ln = 0;
    for (int i = 0; i < 2; i++) {
        int lr = my_login_feed(&lg, &lp, p, n, lout, sizeof(lout), &ln);
        ASSERT(lr == MY_R_MORE || lr == MY_R_DONE || (lr < 0 && lr >= MY_E_DENIED));
        ASSERT(ln <= sizeof(lout) && (lr == MY_R_MORE || ln == 0));
        if (lr != MY_R_MORE)
            break;
    }
    if (n >= 20) {
        uint8_t scr[20];
        memcpy(scr, p, 20);
        ASSERT(my_native_verify(scr, scr, p, n) <= 1);
    }
    uint64_t v;
    int k = my_lenenc_int(p, n, &v);
    if (k > 0) {
        ASSERT((size_t)k <= n);
        uint8_t out[9];
        ASSERT(my_lenenc_put(out, v) == my_lenenc_size(v));
    }
    my_str s;
    k = my_lenenc_str(p, n, &s, NULL);
    if (k > 0) {
        ASSERT((size_t)k <= n);
        in_bounds(s, p, n);
    }
    if (n) {
        int bl = my_binval_len(p[0], p + 1, n - 1);
        ASSERT(bl == MY_E_MALFORMED || (bl >= 0 && (size_t)bl <= n - 1));
    }
    free(p);
}

struct stream {
    const uint8_t *b;
    size_t n, off;
    struct my_framer f;
};

/* Whole-session walk with short offers first. */
static void walk(struct stream *cs, struct stream *ss, unsigned seed, int run_parsers)
{
    struct my_session *s = malloc(sizeof(*s));
    my_session_init(s);
    int last = MY_R_MORE, failed = 0;
    uint64_t rows = 0;
    for (int steps = 0; steps < 100000; steps++) {
        if (s->phase == MY_PH_CLOSED) break;
        int client = s->phase == MY_PH_HS_RESPONSE || s->phase == MY_PH_COMMAND ||
                     last == MY_R_CLIENT || s->in_msg;
        struct stream *st = client ? cs : ss;
        struct my_pkt pkt;
        if (my_framer_next(&st->f, st->b + st->off, st->n - st->off, &pkt) < 0) break;
        ASSERT(pkt.len <= MY_MAX_PAYLOAD);
        size_t have = st->n - st->off - 4;
        size_t avail = have < pkt.len ? have : pkt.len;
        uint8_t *pl = dup_exact(st->b + st->off + 4, avail);
        if (run_parsers && avail == pkt.len && pkt.first) parsers(pl, avail, s->caps);
        seed = seed * 1103515245u + 12345u;
        size_t offer = avail ? (seed >> 16) % (avail + 1) : 0;
        int rc;
        uint32_t need = 0;
        if (client)
            rc = my_session_client(s, &pkt, pl, offer, &need);
        else {
            rc = my_session_server(s, &pkt, pl, offer);
            need = s->resp.need;
        }
        ASSERT(valid_rc(rc));
        if (rc == MY_INCOMPLETE) {
            ASSERT(need > offer && need <= pkt.len);
            ASSERT(need <= MY_RESP_PEEK || (client && s->phase == MY_PH_HS_RESPONSE));
            if (client)
                rc = my_session_client(s, &pkt, pl, avail, &need);
            else
                rc = my_session_server(s, &pkt, pl, avail);
            ASSERT(valid_rc(rc));
            if (rc == MY_INCOMPLETE) {
                ASSERT(avail < pkt.len); /* only a packet cut by the input's end */
                free(pl);
                break;
            }
        }
        if (!client && rc >= 0) check_resp_strings(&s->resp, pl, avail);
        free(pl);
        if (rc < 0) {
            failed = rc;
            break;
        }
        if (s->phase == MY_PH_RESPONSE || s->phase == MY_PH_COMMAND) {
            if (s->resp.rows < rows) rows = 0; /* a new command reset the counters */
            rows = s->resp.rows;
        }
        last = rc;
        /* progress: the packet is consumed */
        st->off += 4 + pkt.len > st->n - st->off ? st->n - st->off : 4 + pkt.len;
    }
    (void)failed;
    free(s);
}

/* A bare response machine over the server stream. */
static void resp_only(const uint8_t *b, size_t n, unsigned cmd, uint64_t caps, unsigned seed)
{
    struct my_resp r;
    struct my_framer f;
    my_framer_init(&f);
    my_resp_init(&r, cmd, caps, cmd == MY_CMD_GREETING ? 0 : 1);
    size_t off = 0;
    uint64_t rows = 0;
    uint32_t nres = 0;
    int sticky = 0;
    while (off < n) {
        struct my_pkt pkt;
        if (my_framer_next(&f, b + off, n - off, &pkt) < 0) break;
        size_t have = n - off - 4, avail = have < pkt.len ? have : pkt.len;
        uint8_t *pl = dup_exact(b + off + 4, avail);
        int rc;
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 20) & 1) {
            /* the auth/infile turn: hand a client packet over */
            rc = my_resp_client(&r, &pkt, pl, avail);
            ASSERT(valid_rc(rc) && rc != MY_INCOMPLETE);
        } else {
            rc = my_resp_feed(&r, &pkt, pl, avail);
            ASSERT(valid_rc(rc));
            if (rc == MY_INCOMPLETE) ASSERT(avail < pkt.len && r.need > avail);
            if (rc >= 0) check_resp_strings(&r, pl, avail);
        }
        free(pl);
        if (sticky) ASSERT(rc == sticky || rc == MY_E_UNEXPECTED);
        if (rc == MY_E_SEQ || rc == MY_E_MALFORMED || rc == MY_E_UNSUPPORTED) {
            /* sticky: the same error again */
            struct my_pkt again = pkt;
            ASSERT(my_resp_feed(&r, &again, NULL, 0) == rc);
            sticky = rc;
        }
        if (rc == MY_INCOMPLETE) break;
        ASSERT(r.rows >= rows && r.nresults >= nres);
        rows = r.rows;
        nres = r.nresults;
        ASSERT(!r.error || my_resp_done(&r));
        off += 4 + avail;
        if (rc == MY_R_DONE) ASSERT(my_resp_done(&r));
    }
}

static const unsigned cmds[16] = {
    MY_COM_QUERY,      MY_COM_STMT_EXECUTE, MY_COM_STMT_PREPARE, MY_COM_FIELD_LIST,
    MY_COM_STMT_FETCH, MY_CMD_AUTH,         MY_CMD_GREETING,     MY_COM_PING,
    MY_COM_STATISTICS, MY_COM_CHANGE_USER,  MY_COM_QUERY,        MY_COM_STMT_CLOSE,
    MY_COM_SET_OPTION, MY_COM_QUERY,        MY_COM_STMT_EXECUTE, MY_COM_BINLOG_DUMP,
};
static const uint64_t capsets[4] = {
    MY_CLIENT_PROTOCOL_41 | MY_CLIENT_TRANSACTIONS | MY_CLIENT_SECURE_CONNECTION,
    MY_CLIENT_PROTOCOL_41 | MY_CLIENT_DEPRECATE_EOF | MY_CLIENT_SESSION_TRACK,
    MY_CLIENT_PROTOCOL_41 | MY_MARIADB_CLIENT_PROGRESS | MY_MARIADB_CLIENT_CACHE_METADATA |
        MY_CLIENT_QUERY_ATTRIBUTES,
    MY_CLIENT_PROTOCOL_41 | MY_CLIENT_OPTIONAL_RESULTSET_METADATA | MY_CLIENT_DEPRECATE_EOF |
        MY_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | MY_CLIENT_CONNECT_ATTRS,
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 5) return 0;
    unsigned ctl = data[0];
    uint32_t clen = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
                    (uint32_t)data[4] << 24;
    size_t rest = size - 5;
    if (clen > rest) clen = (uint32_t)rest;
    struct stream cs = {data + 5, clen, 0, {0, 0}}, ss = {data + 5 + clen, rest - clen, 0, {0, 0}};
    walk(&cs, &ss, ctl * 2654435761u + (unsigned)size, 1);
    resp_only(ss.b, ss.n, cmds[ctl & 15], capsets[(ctl >> 4) & 3], ctl);
    resp_only(cs.b, cs.n, cmds[(ctl >> 2) & 15], capsets[(ctl >> 6) & 3], ctl + 1);
    return 0;
}
