/* my_resp.c - the response state machine: which server packets answer a
 * command, and when the answer is complete.
 *
 * The machine only looks at what it must: rows and column definitions are
 * counted from their first byte (or not at all), control packets (OK, ERR,
 * EOF, column count, prepare-OK, auth) are parsed from a bounded prefix.
 * Multi-packet messages (> 16 MiB) are tracked from the packet lengths, so
 * a proxy can stream a huge row through a small buffer.
 *
 * How a row is told from a terminator (the classic pitfall): a text row
 * starts with a length-encoded string, and a 0xFE prefix there means an
 * 8-byte length, i.e. a value of at least 16 MiB, so such a row's first
 * packet is exactly 0xFFFFFF bytes. Any 0xFE packet shorter than that is
 * the terminator: EOF (< 9 bytes) or, with CLIENT_DEPRECATE_EOF, an OK with
 * a 0xFE header. Binary rows start with 0x00; 0xFF is always an ERR. */
#include "proto/mysql/my.h"

#include <string.h>

enum {
    S_DONE,
    S_ERROR,
    S_GREETING,
    S_AUTH,
    S_AUTH_CLIENT,
    S_FIRST,       /* start of a result: OK / ERR / LOCAL INFILE / column count */
    S_COLDEFS,
    S_COLS_EOF,
    S_ROWS,
    S_INFILE_DATA, /* client sends the file */
    S_SIMPLE,      /* OK / ERR (EOF accepted) */
    S_STATS,
    S_FIELDS,
    S_PREP_FIRST,
    S_PREP_PARAMS,
    S_PREP_PARAMS_EOF,
    S_PREP_COLS,
    S_PREP_COLS_EOF,
    S_FETCH,
};

void my_resp_init(struct my_resp *r, unsigned cmd, uint64_t caps, uint8_t first_seq)
{
    memset(r, 0, sizeof(*r));
    r->caps = caps;
    r->cmd = (uint16_t)cmd;
    r->seq = first_seq;
    switch (cmd) {
    case MY_COM_QUIT: case MY_COM_STMT_CLOSE: case MY_COM_STMT_SEND_LONG_DATA:
        r->state = S_DONE;
        break;
    case MY_COM_QUERY: case MY_COM_PROCESS_INFO:
        r->state = S_FIRST;
        break;
    case MY_COM_STMT_EXECUTE: case MY_COM_STMT_BULK_EXECUTE:
        r->state = S_FIRST;
        r->binary = 1;
        break;
    case MY_COM_STMT_FETCH:
        r->state = S_FETCH;
        r->binary = 1;
        break;
    case MY_COM_STMT_PREPARE: r->state = S_PREP_FIRST; break;
    case MY_COM_FIELD_LIST: r->state = S_FIELDS; break;
    case MY_COM_STATISTICS: r->state = S_STATS; break;
    case MY_COM_CHANGE_USER: case MY_CMD_AUTH: r->state = S_AUTH; break;
    case MY_CMD_GREETING: r->state = S_GREETING; break;
    case MY_COM_BINLOG_DUMP: case MY_COM_BINLOG_DUMP_GTID: case MY_COM_TABLE_DUMP:
    case MY_COM_MULTI: case MY_COM_CONNECT_OUT:
        r->state = S_ERROR;
        r->pending = MY_E_UNSUPPORTED;
        break;
    default:
        /* Everything else, unknown bytes included (the server answers
         * those with ERR 1047), is answered by OK or ERR. */
        r->state = S_SIMPLE;
        break;
    }
}

int my_resp_done(const struct my_resp *r)
{
    return r->state == S_DONE;
}

static int fail(struct my_resp *r, int e)
{
    r->state = S_ERROR;
    r->pending = (int8_t)e;
    return e;
}

/* Does the first byte b of a len-byte message need parsing in this state? */
static int is_control(const struct my_resp *r, uint8_t b, size_t len)
{
    switch (r->state) {
    case S_COLDEFS: case S_PREP_PARAMS: case S_PREP_COLS: return 0;
    case S_ROWS: case S_FETCH: case S_FIELDS:
        return b == 0xff || (b == 0xfe && len < MY_MAX_PAYLOAD);
    case S_STATS: return b == 0xff;
    default: return 1;
    }
}

/* OK: counts it; more results keep the response going. */
static int on_ok(struct my_resp *r, const uint8_t *p, size_t avail, size_t len, int next_state)
{
    if (my_parse_ok(p, avail, len, r->caps, &r->ok)) return fail(r, MY_E_MALFORMED);
    r->kind = MY_RK_OK;
    r->affected_rows += r->ok.affected_rows;
    r->last_insert_id = r->ok.last_insert_id;
    r->status = r->ok.status;
    r->warnings = r->ok.warnings;
    if (next_state == S_FIRST && (r->ok.status & MY_SERVER_MORE_RESULTS_EXISTS)) {
        r->state = S_FIRST;
        return MY_R_MORE;
    }
    r->state = S_DONE;
    return MY_R_DONE;
}

/* ERR ends the response, except MariaDB's progress reports. */
static int on_err(struct my_resp *r, const uint8_t *p, size_t avail, size_t len)
{
    if (my_parse_err(p, avail, len, r->caps, &r->err)) return fail(r, MY_E_MALFORMED);
    if (r->err.code == 0xffff && (r->caps & MY_MARIADB_CLIENT_PROGRESS) && r->state != S_AUTH &&
        r->state != S_GREETING) {
        r->kind = MY_RK_PROGRESS;
        return MY_R_MORE;
    }
    r->kind = MY_RK_ERR;
    r->error = 1;
    r->err_code = r->err.code;
    memcpy(r->sqlstate, r->err.sqlstate, sizeof(r->sqlstate));
    r->state = S_DONE;
    return MY_R_DONE;
}

/* EOF or (DEPRECATE_EOF) 0xFE-OK ending rows. */
static int on_terminator(struct my_resp *r, const uint8_t *p, size_t avail, size_t len,
                         int multi)
{
    uint16_t status;
    if (r->caps & MY_CLIENT_DEPRECATE_EOF) {
        if (my_parse_ok(p, avail, len, r->caps, &r->ok)) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_OK;
        status = r->ok.status;
        r->warnings = r->ok.warnings;
    } else {
        struct my_eof e;
        if (my_parse_eof(p, len, r->caps, &e)) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_EOF;
        status = e.status;
        r->warnings = e.warnings;
    }
    r->status = status;
    if (multi && (status & MY_SERVER_MORE_RESULTS_EXISTS)) {
        r->state = S_FIRST;
        return MY_R_MORE;
    }
    r->state = S_DONE;
    return MY_R_DONE;
}

static int eof_only(struct my_resp *r, const uint8_t *p, size_t len, uint16_t *status)
{
    struct my_eof e;
    if (!len || !my_is_eof(p[0], len) || my_parse_eof(p, len, r->caps, &e))
        return fail(r, p && len && p[0] == 0xff ? MY_E_UNEXPECTED : MY_E_MALFORMED);
    r->kind = MY_RK_EOF;
    r->status = e.status;
    r->warnings = e.warnings;
    if (status) *status = e.status;
    return 0;
}

static int prep_after_params(struct my_resp *r)
{
    if (r->prep_cols) {
        r->state = S_PREP_COLS;
        r->left = r->prep_cols;
        return MY_R_MORE;
    }
    r->state = S_DONE;
    return MY_R_DONE;
}

/* One complete-enough first packet of a message; p has avail bytes of len. */
static int step(struct my_resp *r, const uint8_t *p, size_t avail, size_t len)
{
    uint8_t b = len ? p[0] : 0;
    int eofmode = !(r->caps & MY_CLIENT_DEPRECATE_EOF);

    switch (r->state) {
    case S_GREETING:
        if (b == 0xff) return on_err(r, p, avail, len);
        if (b != 10 || my_parse_handshake(p, avail, &r->hs)) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_HANDSHAKE;
        r->state = S_DONE;
        return MY_R_DONE;

    case S_AUTH:
        if (!len) return fail(r, MY_E_MALFORMED);
        if (b == 0x00) return on_ok(r, p, avail, len, S_DONE);
        if (b == 0xff) return on_err(r, p, avail, len);
        if (my_parse_auth_packet(p, avail, &r->auth)) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_AUTH;
        if (r->auth.kind == MY_AUTH_FAST_OK) return MY_R_MORE; /* the OK follows */
        r->state = S_AUTH_CLIENT;
        return MY_R_CLIENT;

    case S_FIRST: {
        if (!len) return fail(r, MY_E_MALFORMED);
        if (b == 0x00) {
            r->nresults++;
            return on_ok(r, p, avail, len, S_FIRST);
        }
        if (b == 0xff) return on_err(r, p, avail, len);
        if (b == 0xfb) {
            if (r->binary) return fail(r, MY_E_UNEXPECTED);
            r->kind = MY_RK_INFILE;
            r->infile.p = (const char *)p + 1;
            r->infile.len = avail - 1;
            r->state = S_INFILE_DATA;
            return MY_R_CLIENT;
        }
        uint64_t n;
        int k = my_lenenc_int(p, avail, &n);
        if (k < 0 || n == 0) return fail(r, MY_E_MALFORMED);
        int meta = 1;
        if ((r->caps & MY_CLIENT_OPTIONAL_RESULTSET_METADATA) ||
            (r->binary && (r->caps & MY_MARIADB_CLIENT_CACHE_METADATA))) {
            if ((size_t)k >= avail || p[k] > 1) return fail(r, MY_E_MALFORMED);
            meta = p[k];
        }
        r->kind = MY_RK_COLUMN_COUNT;
        r->columns = n;
        r->nresults++;
        r->nresultsets++;
        if (meta) {
            r->left = n;
            r->state = S_COLDEFS;
        } else {
            r->state = eofmode ? S_COLS_EOF : S_ROWS;
        }
        return MY_R_MORE;
    }

    case S_COLDEFS:
        if (!len) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_COLUMN_DEF;
        if (--r->left == 0) r->state = eofmode ? S_COLS_EOF : S_ROWS;
        return MY_R_MORE;

    case S_COLS_EOF: {
        uint16_t st;
        if (b == 0xff && len) return on_err(r, p, avail, len);
        if (eof_only(r, p, len, &st)) return r->pending;
        /* A cursor was opened: the rows come with COM_STMT_FETCH. */
        if (r->binary && (st & MY_SERVER_STATUS_CURSOR_EXISTS)) {
            if (st & MY_SERVER_MORE_RESULTS_EXISTS) {
                r->state = S_FIRST;
                return MY_R_MORE;
            }
            r->state = S_DONE;
            return MY_R_DONE;
        }
        r->state = S_ROWS;
        return MY_R_MORE;
    }

    case S_ROWS:
    case S_FETCH:
        if (!len) return fail(r, MY_E_MALFORMED);
        if (b == 0xff) return on_err(r, p, avail, len);
        if (b == 0xfe && len < MY_MAX_PAYLOAD)
            return on_terminator(r, p, avail, len, r->state == S_ROWS);
        if (r->binary && b != 0x00) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_ROW;
        r->rows++;
        return MY_R_MORE;

    case S_SIMPLE:
        if (b == 0x00 && len) return on_ok(r, p, avail, len, S_DONE);
        if (b == 0xff && len) return on_err(r, p, avail, len);
        if (len && my_is_eof(b, len)) {
            if (eof_only(r, p, len, NULL)) return r->pending;
            r->state = S_DONE;
            return MY_R_DONE;
        }
        return fail(r, MY_E_UNEXPECTED);

    case S_STATS:
        if (b == 0xff && len) return on_err(r, p, avail, len);
        r->kind = MY_RK_STRING;
        r->state = S_DONE;
        return MY_R_DONE;

    case S_FIELDS:
        if (!len) return fail(r, MY_E_MALFORMED);
        if (b == 0xff) return on_err(r, p, avail, len);
        if (b == 0xfe && len < MY_MAX_PAYLOAD) return on_terminator(r, p, avail, len, 0);
        r->kind = MY_RK_COLUMN_DEF;
        r->columns++;
        return MY_R_MORE;

    case S_PREP_FIRST: {
        if (!len) return fail(r, MY_E_MALFORMED);
        if (b == 0xff) return on_err(r, p, avail, len);
        if (b != 0x00 || avail < 12) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_PREPARE_OK;
        r->stmt_id = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 |
                     (uint32_t)p[4] << 24;
        r->num_columns = (uint16_t)(p[5] | p[6] << 8);
        r->num_params = (uint16_t)(p[7] | p[8] << 8);
        r->warnings = (uint16_t)(p[10] | p[11] << 8);
        int meta = 1;
        if ((r->caps & MY_CLIENT_OPTIONAL_RESULTSET_METADATA) && avail > 12) meta = p[12] != 0;
        r->prep_cols = meta ? r->num_columns : 0;
        if (meta && r->num_params) {
            r->state = S_PREP_PARAMS;
            r->left = r->num_params;
            return MY_R_MORE;
        }
        return prep_after_params(r);
    }

    case S_PREP_PARAMS:
        if (!len) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_PARAM_DEF;
        if (--r->left) return MY_R_MORE;
        if (eofmode) {
            r->state = S_PREP_PARAMS_EOF;
            return MY_R_MORE;
        }
        return prep_after_params(r);

    case S_PREP_PARAMS_EOF: {
        uint16_t w = r->warnings; /* the prepare-OK's count is the one that matters */
        if (eof_only(r, p, len, NULL)) return r->pending;
        r->warnings = w;
        return prep_after_params(r);
    }

    case S_PREP_COLS:
        if (!len) return fail(r, MY_E_MALFORMED);
        r->kind = MY_RK_COLUMN_DEF;
        if (--r->left) return MY_R_MORE;
        if (eofmode) {
            r->state = S_PREP_COLS_EOF;
            return MY_R_MORE;
        }
        r->state = S_DONE;
        return MY_R_DONE;

    case S_PREP_COLS_EOF: {
        uint16_t w = r->warnings; /* the prepare-OK's count is the one that matters */
        if (eof_only(r, p, len, NULL)) return r->pending;
        r->warnings = w;
        r->state = S_DONE;
        return MY_R_DONE;
    }

    default:
        return fail(r, MY_E_UNEXPECTED);
    }
}

int my_resp_feed(struct my_resp *r, const struct my_pkt *pkt, const uint8_t *payload,
                 size_t avail)
{
    if (r->state == S_ERROR) return r->pending;
    size_t len = pkt->len;
    int big = len == MY_MAX_PAYLOAD;
    if (r->in_msg == 1) {
        /* A later packet of a > 16 MiB server message: nothing to look at;
         * the state was settled by its first packet. */
        if (pkt->seq != r->seq) return fail(r, MY_E_SEQ);
        r->seq++;
        r->kind = MY_RK_CONTINUATION;
        if (big) return MY_R_MORE;
        r->in_msg = 0;
        return r->pending;
    }
    if (r->state == S_DONE || r->state == S_AUTH_CLIENT || r->state == S_INFILE_DATA)
        return MY_E_UNEXPECTED; /* not the server's turn: the state is left alone */
    if (pkt->seq != r->seq) return fail(r, MY_E_SEQ);
    if (avail > len) avail = len;
    size_t need = 0;
    if (len) {
        if (avail < 1) {
            r->need = 1;
            return MY_INCOMPLETE;
        }
        need = is_control(r, payload[0], len) ? (len < MY_RESP_PEEK ? len : MY_RESP_PEEK) : 1;
        if (avail < need) {
            r->need = (uint32_t)need;
            return MY_INCOMPLETE;
        }
    }
    r->need = 0;
    int rc = step(r, payload, avail, len);
    if (rc < 0) return rc;
    r->seq++;
    if (big) {
        /* The answer stands once the message's last packet has passed. */
        r->in_msg = 1;
        r->pending = (int8_t)rc;
        return MY_R_MORE;
    }
    return rc;
}

int my_resp_client(struct my_resp *r, const struct my_pkt *pkt, const uint8_t *payload,
                   size_t avail)
{
    (void)payload;
    (void)avail;
    if (r->state == S_ERROR) return r->pending;
    if (r->state != S_AUTH_CLIENT && r->state != S_INFILE_DATA) return MY_E_UNEXPECTED;
    if (pkt->seq != r->seq) return fail(r, MY_E_SEQ);
    r->seq++;
    int big = pkt->len == MY_MAX_PAYLOAD;
    if (r->in_msg == 2 || big) {
        /* Inside a > 16 MiB client message: its last packet may be empty,
         * and that is not the end of a LOCAL INFILE file. */
        r->in_msg = big ? 2 : 0;
        if (big || r->state == S_INFILE_DATA) return MY_R_CLIENT;
        r->state = S_AUTH;
        return MY_R_MORE;
    }
    if (r->state == S_AUTH_CLIENT) {
        r->state = S_AUTH;
        return MY_R_MORE;
    }
    /* LOCAL INFILE: an empty message ends the file; then OK or ERR. */
    if (pkt->len == 0) {
        r->state = S_FIRST;
        return MY_R_MORE;
    }
    return MY_R_CLIENT;
}
