/* my_packet.c - MySQL packet framing, length-encoded values, OK/ERR/EOF,
 * commands and the packet builders.
 *
 * Everything reads through bounds-checked helpers: a length from the wire
 * is compared against the bytes left before any pointer is formed from it,
 * and sizes are kept in 64 bits so a 0xFE-prefixed length near 2^64 cannot
 * wrap an addition. */
#include "proto/mysql/my.h"

#include <string.h>

static uint32_t get_le(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

const char *my_com_name(unsigned cmd)
{
    switch (cmd) {
    case MY_COM_SLEEP: return "COM_SLEEP";
    case MY_COM_QUIT: return "COM_QUIT";
    case MY_COM_INIT_DB: return "COM_INIT_DB";
    case MY_COM_QUERY: return "COM_QUERY";
    case MY_COM_FIELD_LIST: return "COM_FIELD_LIST";
    case MY_COM_CREATE_DB: return "COM_CREATE_DB";
    case MY_COM_DROP_DB: return "COM_DROP_DB";
    case MY_COM_REFRESH: return "COM_REFRESH";
    case MY_COM_SHUTDOWN: return "COM_SHUTDOWN";
    case MY_COM_STATISTICS: return "COM_STATISTICS";
    case MY_COM_PROCESS_INFO: return "COM_PROCESS_INFO";
    case MY_COM_CONNECT: return "COM_CONNECT";
    case MY_COM_PROCESS_KILL: return "COM_PROCESS_KILL";
    case MY_COM_DEBUG: return "COM_DEBUG";
    case MY_COM_PING: return "COM_PING";
    case MY_COM_TIME: return "COM_TIME";
    case MY_COM_DELAYED_INSERT: return "COM_DELAYED_INSERT";
    case MY_COM_CHANGE_USER: return "COM_CHANGE_USER";
    case MY_COM_BINLOG_DUMP: return "COM_BINLOG_DUMP";
    case MY_COM_TABLE_DUMP: return "COM_TABLE_DUMP";
    case MY_COM_CONNECT_OUT: return "COM_CONNECT_OUT";
    case MY_COM_REGISTER_SLAVE: return "COM_REGISTER_SLAVE";
    case MY_COM_STMT_PREPARE: return "COM_STMT_PREPARE";
    case MY_COM_STMT_EXECUTE: return "COM_STMT_EXECUTE";
    case MY_COM_STMT_SEND_LONG_DATA: return "COM_STMT_SEND_LONG_DATA";
    case MY_COM_STMT_CLOSE: return "COM_STMT_CLOSE";
    case MY_COM_STMT_RESET: return "COM_STMT_RESET";
    case MY_COM_SET_OPTION: return "COM_SET_OPTION";
    case MY_COM_STMT_FETCH: return "COM_STMT_FETCH";
    case MY_COM_DAEMON: return "COM_DAEMON";
    case MY_COM_BINLOG_DUMP_GTID: return "COM_BINLOG_DUMP_GTID";
    case MY_COM_RESET_CONNECTION: return "COM_RESET_CONNECTION";
    case MY_COM_STMT_BULK_EXECUTE: return "COM_STMT_BULK_EXECUTE";
    case MY_COM_MULTI: return "COM_MULTI";
    default: return "COM_UNKNOWN";
    }
}

/* ---- framing ------------------------------------------------------------ */

int my_pkt_header(const uint8_t *buf, size_t n, struct my_pkt *pkt)
{
    if (n < MY_HDR_LEN) return MY_INCOMPLETE;
    pkt->len = get_le(buf, 3);
    pkt->seq = buf[3];
    pkt->first = pkt->last = 0;
    return MY_HDR_LEN;
}

void my_pkt_put_header(uint8_t *out, uint32_t len, uint8_t seq)
{
    put_le(out, len, 3);
    out[3] = seq;
}

void my_framer_init(struct my_framer *f)
{
    memset(f, 0, sizeof(*f));
}

int my_framer_next(struct my_framer *f, const uint8_t *buf, size_t n, struct my_pkt *pkt)
{
    int r = my_pkt_header(buf, n, pkt);
    if (r < 0) return r;
    pkt->first = !f->cont;
    pkt->last = pkt->len < MY_MAX_PAYLOAD;
    f->msg_len = (pkt->first ? 0 : f->msg_len) + pkt->len;
    f->cont = !pkt->last;
    return r;
}

int my_packet_whole(const uint8_t *buf, size_t n, struct my_pkt *pkt, const uint8_t **payload)
{
    int r = my_pkt_header(buf, n, pkt);
    if (r < 0) return r;
    if (pkt->len == MY_MAX_PAYLOAD) return MY_E_UNSUPPORTED;
    if (n - MY_HDR_LEN < pkt->len) return MY_INCOMPLETE;
    pkt->first = pkt->last = 1;
    *payload = buf + MY_HDR_LEN;
    return (int)(MY_HDR_LEN + pkt->len);
}

/* ---- length-encoded values ---------------------------------------------- */

int my_lenenc_int(const uint8_t *buf, size_t n, uint64_t *v)
{
    if (n < 1) return MY_INCOMPLETE;
    uint8_t b = buf[0];
    int w;
    if (b < 0xfb) {
        *v = b;
        return 1;
    }
    switch (b) {
    case 0xfc: w = 2; break;
    case 0xfd: w = 3; break;
    case 0xfe: w = 8; break;
    default: return MY_E_MALFORMED; /* 0xFB (NULL) and 0xFF (ERR marker) */
    }
    if (n < (size_t)w + 1) return MY_INCOMPLETE;
    uint64_t x = 0;
    for (int i = w; i >= 1; i--) x = (x << 8) | buf[i];
    *v = x;
    return w + 1;
}

int my_lenenc_str(const uint8_t *buf, size_t n, my_str *s, int *is_null)
{
    if (is_null) *is_null = 0;
    if (n >= 1 && buf[0] == 0xfb) {
        s->p = NULL;
        s->len = 0;
        if (is_null) *is_null = 1;
        return 1;
    }
    uint64_t len;
    int h = my_lenenc_int(buf, n, &len);
    if (h < 0) return h;
    if (len > n - (size_t)h) return MY_INCOMPLETE;
    if (len > (uint64_t)INT32_MAX - (uint64_t)h) return MY_E_MALFORMED;
    s->p = (const char *)buf + h;
    s->len = (size_t)len;
    return h + (int)len;
}

size_t my_lenenc_size(uint64_t v)
{
    if (v < 0xfb) return 1;
    if (v <= 0xffff) return 3;
    if (v <= 0xffffff) return 4;
    return 9;
}

size_t my_lenenc_put(uint8_t *out, uint64_t v)
{
    if (v < 0xfb) {
        out[0] = (uint8_t)v;
        return 1;
    }
    if (v <= 0xffff) {
        out[0] = 0xfc;
        put_le(out + 1, v, 2);
        return 3;
    }
    if (v <= 0xffffff) {
        out[0] = 0xfd;
        put_le(out + 1, v, 3);
        return 4;
    }
    out[0] = 0xfe;
    put_le(out + 1, v, 8);
    return 9;
}

static size_t rd_left(const struct my_rd *r)
{
    return (size_t)(r->end - r->p);
}

static int rd_fixed(struct my_rd *r, int n, uint64_t *v)
{
    if (rd_left(r) < (size_t)n) return MY_E_MALFORMED;
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = (x << 8) | r->p[i];
    r->p += n;
    *v = x;
    return 0;
}

int my_rd_u8(struct my_rd *r, uint8_t *v)
{
    uint64_t x;
    int e = rd_fixed(r, 1, &x);
    if (!e) *v = (uint8_t)x;
    return e;
}
int my_rd_u16(struct my_rd *r, uint16_t *v)
{
    uint64_t x;
    int e = rd_fixed(r, 2, &x);
    if (!e) *v = (uint16_t)x;
    return e;
}
int my_rd_u24(struct my_rd *r, uint32_t *v)
{
    uint64_t x;
    int e = rd_fixed(r, 3, &x);
    if (!e) *v = (uint32_t)x;
    return e;
}
int my_rd_u32(struct my_rd *r, uint32_t *v)
{
    uint64_t x;
    int e = rd_fixed(r, 4, &x);
    if (!e) *v = (uint32_t)x;
    return e;
}
int my_rd_u64(struct my_rd *r, uint64_t *v)
{
    return rd_fixed(r, 8, v);
}

int my_rd_lenenc(struct my_rd *r, uint64_t *v)
{
    int n = my_lenenc_int(r->p, rd_left(r), v);
    if (n < 0) return MY_E_MALFORMED;
    r->p += n;
    return 0;
}

int my_rd_lenenc_str(struct my_rd *r, my_str *s)
{
    int isnull;
    int n = my_lenenc_str(r->p, rd_left(r), s, &isnull);
    if (n < 0 || isnull) return MY_E_MALFORMED;
    r->p += n;
    return 0;
}

int my_rd_bytes(struct my_rd *r, size_t n, my_str *s)
{
    if (rd_left(r) < n) return MY_E_MALFORMED;
    s->p = (const char *)r->p;
    s->len = n;
    r->p += n;
    return 0;
}

int my_rd_nulstr(struct my_rd *r, my_str *s)
{
    const uint8_t *z = memchr(r->p, 0, rd_left(r));
    if (!z) return MY_E_MALFORMED;
    s->p = (const char *)r->p;
    s->len = (size_t)(z - r->p);
    r->p = z + 1;
    return 0;
}

void my_rd_rest(struct my_rd *r, my_str *s)
{
    s->p = (const char *)r->p;
    s->len = rd_left(r);
    r->p = r->end;
}

int my_binval_len(uint8_t type, const uint8_t *buf, size_t n)
{
    size_t need;
    switch (type) {
    case 6: /* NULL */ need = 0; break;
    case 1: /* TINY */ need = 1; break;
    case 2: case 13: /* SHORT, YEAR */ need = 2; break;
    case 3: case 9: case 4: /* LONG, INT24, FLOAT */ need = 4; break;
    case 8: case 5: /* LONGLONG, DOUBLE */ need = 8; break;
    case 7: case 10: case 11: case 12: /* DATETIME, DATE, TIME, TIMESTAMP: length byte */
        if (n < 1) return MY_E_MALFORMED;
        need = 1 + (size_t)buf[0];
        break;
    case 0: case 15: case 16: case 245: case 246: case 247: case 248: case 249: case 250:
    case 251: case 252: case 253: case 254: case 255: {
        my_str s;
        int isnull, k = my_lenenc_str(buf, n, &s, &isnull);
        if (k < 0 || isnull) return MY_E_MALFORMED;
        return k;
    }
    default: return MY_E_MALFORMED;
    }
    if (need > n) return MY_E_MALFORMED;
    return (int)need;
}

/* ---- OK / ERR / EOF ----------------------------------------------------- */

int my_is_eof(uint8_t b, size_t len)
{
    return b == 0xfe && len < 9;
}

/* A string cut to the bytes available; sets *trunc when it was. */
static int rd_lenenc_str_cut(struct my_rd *r, my_str *s, size_t full_left, uint8_t *trunc)
{
    uint64_t len;
    int h = my_lenenc_int(r->p, rd_left(r), &len);
    if (h == MY_INCOMPLETE && rd_left(r) < full_left) {
        *trunc = 1;
        s->p = (const char *)r->p;
        s->len = 0;
        r->p = r->end;
        return 0;
    }
    if (h < 0) return MY_E_MALFORMED;
    if (len > full_left - (size_t)h) return MY_E_MALFORMED; /* beyond the real payload */
    r->p += h;
    s->p = (const char *)r->p;
    if (len > rd_left(r)) {
        *trunc = 1;
        s->len = rd_left(r);
        r->p = r->end;
    } else {
        s->len = (size_t)len;
        r->p += len;
    }
    return 0;
}

int my_parse_ok(const uint8_t *p, size_t avail, size_t len, uint64_t caps, struct my_ok *ok)
{
    memset(ok, 0, sizeof(*ok));
    if (avail > len || avail < 1 || (p[0] != 0x00 && p[0] != 0xfe)) return MY_E_MALFORMED;
    struct my_rd r = {p + 1, p + avail};
    ok->header = p[0];
    if (my_rd_lenenc(&r, &ok->affected_rows) || my_rd_lenenc(&r, &ok->last_insert_id))
        return MY_E_MALFORMED;
    if (caps & MY_CLIENT_PROTOCOL_41) {
        if (my_rd_u16(&r, &ok->status) || my_rd_u16(&r, &ok->warnings)) return MY_E_MALFORMED;
    } else if (caps & MY_CLIENT_TRANSACTIONS) {
        if (my_rd_u16(&r, &ok->status)) return MY_E_MALFORMED;
    }
    size_t consumed = (size_t)(r.p - p);
    ok->info.p = (const char *)r.p;
    if (consumed == len) return 0; /* servers omit an empty info */
    if (caps & MY_CLIENT_SESSION_TRACK) {
        if (rd_lenenc_str_cut(&r, &ok->info, len - consumed, &ok->truncated)) return MY_E_MALFORMED;
        if ((ok->status & MY_SERVER_SESSION_STATE_CHANGED) && !ok->truncated) {
            consumed = (size_t)(r.p - p);
            ok->session_state.p = (const char *)r.p;
            if (consumed < len &&
                rd_lenenc_str_cut(&r, &ok->session_state, len - consumed, &ok->truncated))
                return MY_E_MALFORMED;
        }
    } else {
        my_rd_rest(&r, &ok->info);
        ok->truncated = avail < len;
    }
    return 0;
}

int my_parse_err(const uint8_t *p, size_t avail, size_t len, uint64_t caps, struct my_err *err)
{
    memset(err, 0, sizeof(*err));
    if (avail > len || avail < 3 || p[0] != 0xff) return MY_E_MALFORMED;
    err->code = (uint16_t)get_le(p + 1, 2);
    size_t off = 3;
    /* The '#' marker is there when the server speaks 4.1; servers also send
     * it before capabilities are settled, so look for it rather than trust
     * caps (a message starting with '#' after an old server is unlikely). */
    (void)caps;
    if (len >= 9 && avail >= 4 && p[3] == '#') {
        if (avail < 9) return MY_E_MALFORMED;
        memcpy(err->sqlstate, p + 4, 5);
        err->sqlstate[5] = 0;
        off = 9;
    }
    err->message.p = (const char *)p + off;
    err->message.len = avail - off;
    err->truncated = avail < len;
    return 0;
}

int my_parse_eof(const uint8_t *p, size_t len, uint64_t caps, struct my_eof *eof)
{
    memset(eof, 0, sizeof(*eof));
    if (!my_is_eof(len ? p[0] : 0, len)) return MY_E_MALFORMED;
    if (caps & MY_CLIENT_PROTOCOL_41) {
        if (len < 5) return MY_E_MALFORMED;
        eof->warnings = (uint16_t)get_le(p + 1, 2);
        eof->status = (uint16_t)get_le(p + 3, 2);
    }
    return 0;
}

/* ---- commands ------------------------------------------------------------- */

/* COM_QUERY with CLIENT_QUERY_ATTRIBUTES: parameter_count, parameter_set_count
 * (1), then when count > 0 a NULL bitmap, new_params_bind_flag (1), types
 * and names, and the non-NULL values; the SQL follows. */
static int skip_query_attrs(struct my_rd *r, uint64_t *nattrs)
{
    uint64_t count, sets;
    if (my_rd_lenenc(r, &count) || my_rd_lenenc(r, &sets)) return MY_E_MALFORMED;
    *nattrs = count;
    if (count == 0) return 0;
    if (count > rd_left(r)) return MY_E_MALFORMED; /* each takes >= 3 bytes */
    size_t nb = (size_t)(count + 7) / 8;
    my_str bitmap;
    uint8_t bind;
    if (my_rd_bytes(r, nb, &bitmap) || my_rd_u8(r, &bind)) return MY_E_MALFORMED;
    if (bind != 1) return MY_E_MALFORMED; /* the types are needed to skip the values */
    const uint8_t *tp = r->p;
    for (uint64_t i = 0; i < count; i++) {
        uint16_t tf;
        my_str name;
        if (my_rd_u16(r, &tf) || my_rd_lenenc_str(r, &name)) return MY_E_MALFORMED;
    }
    /* Second pass over the types (2 bytes + name each) while skipping values. */
    struct my_rd t = {tp, r->p};
    for (uint64_t i = 0; i < count; i++) {
        uint16_t tf = 0;
        my_str name;
        my_rd_u16(&t, &tf);
        my_rd_lenenc_str(&t, &name);
        if ((uint8_t)bitmap.p[i / 8] & (1u << (i % 8))) continue; /* NULL: no value */
        int k = my_binval_len((uint8_t)tf, r->p, rd_left(r));
        if (k < 0) return MY_E_MALFORMED;
        r->p += k;
    }
    return 0;
}

int my_parse_command(const uint8_t *p, size_t len, uint64_t caps, struct my_command *c)
{
    memset(c, 0, sizeof(*c));
    if (len < 1) return MY_E_MALFORMED;
    struct my_rd r = {p + 1, p + len};
    c->cmd = p[0];
    switch (c->cmd) {
    case MY_COM_QUIT:
        c->no_response = 1;
        return 0;
    case MY_COM_PING: case MY_COM_STATISTICS: case MY_COM_RESET_CONNECTION:
    case MY_COM_PROCESS_INFO: case MY_COM_DEBUG: case MY_COM_TIME: case MY_COM_SLEEP:
    case MY_COM_CONNECT: case MY_COM_DELAYED_INSERT: case MY_COM_DAEMON:
        return 0;
    case MY_COM_INIT_DB: case MY_COM_CREATE_DB: case MY_COM_DROP_DB:
        my_rd_rest(&r, &c->schema);
        return 0;
    case MY_COM_QUERY:
        if (caps & MY_CLIENT_QUERY_ATTRIBUTES) {
            if (skip_query_attrs(&r, &c->nattrs)) return MY_E_MALFORMED;
        }
        my_rd_rest(&r, &c->sql);
        return 0;
    case MY_COM_STMT_PREPARE:
        my_rd_rest(&r, &c->sql);
        return 0;
    case MY_COM_FIELD_LIST:
        if (my_rd_nulstr(&r, &c->schema)) my_rd_rest(&r, &c->schema);
        return 0;
    case MY_COM_STMT_EXECUTE:
    case MY_COM_STMT_BULK_EXECUTE:
        if (my_rd_u32(&r, &c->stmt_id)) return MY_E_MALFORMED;
        if (c->cmd == MY_COM_STMT_EXECUTE) {
            if (my_rd_u8(&r, &c->flags) || my_rd_u32(&r, &c->iterations)) return MY_E_MALFORMED;
        } else {
            uint16_t f;
            if (my_rd_u16(&r, &f)) return MY_E_MALFORMED;
            c->flags = (uint8_t)f;
        }
        my_rd_rest(&r, &c->params);
        return 0;
    case MY_COM_STMT_CLOSE:
        c->no_response = 1;
        return my_rd_u32(&r, &c->stmt_id) ? MY_E_MALFORMED : 0;
    case MY_COM_STMT_RESET:
        return my_rd_u32(&r, &c->stmt_id) ? MY_E_MALFORMED : 0;
    case MY_COM_STMT_SEND_LONG_DATA:
        c->no_response = 1;
        if (my_rd_u32(&r, &c->stmt_id) || my_rd_u16(&r, &c->param_id)) return MY_E_MALFORMED;
        my_rd_rest(&r, &c->params);
        return 0;
    case MY_COM_STMT_FETCH:
        if (my_rd_u32(&r, &c->stmt_id) || my_rd_u32(&r, &c->iterations)) return MY_E_MALFORMED;
        return 0;
    case MY_COM_SET_OPTION:
        return my_rd_u16(&r, &c->option) ? MY_E_MALFORMED : 0;
    case MY_COM_PROCESS_KILL:
        return my_rd_u32(&r, &c->process_id) ? MY_E_MALFORMED : 0;
    case MY_COM_REFRESH: case MY_COM_SHUTDOWN:
        return 0;
    case MY_COM_CHANGE_USER: {
        my_str auth;
        if (my_rd_nulstr(&r, &c->user)) return MY_E_MALFORMED;
        if (caps & MY_CLIENT_SECURE_CONNECTION) {
            uint8_t n;
            if (my_rd_u8(&r, &n) || my_rd_bytes(&r, n, &auth)) return MY_E_MALFORMED;
        } else if (my_rd_nulstr(&r, &auth)) {
            return MY_E_MALFORMED;
        }
        if (r.p < r.end && my_rd_nulstr(&r, &c->schema)) return MY_E_MALFORMED;
        return 0; /* charset, plugin and attributes follow; the proxy forwards them */
    }
    case MY_COM_BINLOG_DUMP: case MY_COM_BINLOG_DUMP_GTID: case MY_COM_REGISTER_SLAVE:
    case MY_COM_TABLE_DUMP: case MY_COM_CONNECT_OUT:
        return 0;
    default:
        return MY_E_UNSUPPORTED;
    }
}

/* ---- builders -------------------------------------------------------------- */

int my_frame_in_place(uint8_t *out, size_t cap, size_t plen, uint8_t seq)
{
    size_t npk = plen / MY_MAX_PAYLOAD + 1;
    size_t total = plen + MY_HDR_LEN * npk;
    if (total > cap || total > INT32_MAX) return MY_E_SPACE;
    /* Move chunks from the last to the first so nothing is overwritten
     * before it is moved; chunk i goes from 4 + i*MAX to 4*(i+1) + i*MAX. */
    for (size_t i = npk; i-- > 0;) {
        size_t off = i * (size_t)MY_MAX_PAYLOAD;
        size_t clen = i == npk - 1 ? plen - off : MY_MAX_PAYLOAD;
        size_t dst = off + MY_HDR_LEN * (i + 1);
        if (i) memmove(out + dst, out + MY_HDR_LEN + off, clen);
        my_pkt_put_header(out + dst - MY_HDR_LEN, (uint32_t)clen, (uint8_t)(seq + i));
    }
    return (int)total;
}

int my_build_err(uint8_t *out, size_t cap, uint8_t seq, uint64_t caps, uint16_t code,
                 const char *sqlstate, const char *msg, size_t msglen)
{
    if (msglen > 512) msglen = 512;
    size_t plen = 3 + ((caps & MY_CLIENT_PROTOCOL_41) ? 6 : 0) + msglen;
    if (cap < MY_HDR_LEN + plen) return MY_E_SPACE;
    uint8_t *q = out + MY_HDR_LEN;
    *q++ = 0xff;
    put_le(q, code, 2);
    q += 2;
    if (caps & MY_CLIENT_PROTOCOL_41) {
        *q++ = '#';
        if (!sqlstate || strlen(sqlstate) < 5) sqlstate = "HY000";
        memcpy(q, sqlstate, 5);
        q += 5;
    }
    if (msglen) memcpy(q, msg, msglen);
    return my_frame_in_place(out, cap, plen, seq);
}

int my_build_ok(uint8_t *out, size_t cap, uint8_t seq, uint64_t caps, uint64_t affected,
                uint64_t insert_id, uint16_t status, uint16_t warnings, const char *info,
                int eof_header)
{
    size_t ilen = info ? strlen(info) : 0;
    size_t plen = 1 + my_lenenc_size(affected) + my_lenenc_size(insert_id) + 4 + 9 + ilen;
    if (cap < MY_HDR_LEN + plen || plen >= MY_MAX_PAYLOAD) return MY_E_SPACE;
    uint8_t *q = out + MY_HDR_LEN;
    *q++ = eof_header ? 0xfe : 0x00;
    q += my_lenenc_put(q, affected);
    q += my_lenenc_put(q, insert_id);
    if (caps & MY_CLIENT_PROTOCOL_41) {
        put_le(q, status, 2);
        put_le(q + 2, warnings, 2);
        q += 4;
    } else if (caps & MY_CLIENT_TRANSACTIONS) {
        put_le(q, status, 2);
        q += 2;
    }
    if (caps & MY_CLIENT_SESSION_TRACK) {
        if (ilen) q += my_lenenc_put(q, ilen);
        else if (eof_header) *q++ = 0; /* keep the 0xFE OK >= 7 bytes like servers do */
    }
    if (ilen) memcpy(q, info, ilen);
    q += ilen;
    plen = (size_t)(q - out) - MY_HDR_LEN;
    my_pkt_put_header(out, (uint32_t)plen, seq);
    return (int)(MY_HDR_LEN + plen);
}

int my_build_eof(uint8_t *out, size_t cap, uint8_t seq, uint64_t caps, uint16_t warnings,
                 uint16_t status)
{
    size_t plen = (caps & MY_CLIENT_PROTOCOL_41) ? 5 : 1;
    if (cap < MY_HDR_LEN + plen) return MY_E_SPACE;
    out[4] = 0xfe;
    if (plen == 5) {
        put_le(out + 5, warnings, 2);
        put_le(out + 7, status, 2);
    }
    my_pkt_put_header(out, (uint32_t)plen, seq);
    return (int)(MY_HDR_LEN + plen);
}

int my_build_query(uint8_t *out, size_t cap, uint64_t caps, const char *sql, size_t len)
{
    size_t pre = (caps & MY_CLIENT_QUERY_ATTRIBUTES) ? 2 : 0;
    size_t plen = 1 + pre + len;
    if (cap < MY_HDR_LEN + plen) return MY_E_SPACE;
    out[4] = MY_COM_QUERY;
    if (pre) {
        out[5] = 0; /* parameter_count */
        out[6] = 1; /* parameter_set_count */
    }
    if (len) memcpy(out + 5 + pre, sql, len);
    return my_frame_in_place(out, cap, plen, 0);
}

int my_build_simple(uint8_t *out, size_t cap, uint8_t cmd)
{
    if (cap < MY_HDR_LEN + 1) return MY_E_SPACE;
    my_pkt_put_header(out, 1, 0);
    out[4] = cmd;
    return 5;
}

int my_build_ping(uint8_t *out, size_t cap)
{
    return my_build_simple(out, cap, MY_COM_PING);
}

int my_build_quit(uint8_t *out, size_t cap)
{
    return my_build_simple(out, cap, MY_COM_QUIT);
}
