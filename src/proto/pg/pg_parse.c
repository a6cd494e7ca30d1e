/* pg_parse.c - PostgreSQL v3 framing and message decoders (see pg.h).
 *
 * Every decoder reads through a bounds-checked cursor (struct rd): a read
 * past the body's end sets a sticky "bad" flag instead of touching memory,
 * and a decoder succeeds only when the cursor ends exactly at the body's
 * end with no read having failed. */
#include "proto/pg/pg.h"

#include <string.h>

struct rd {
    const uint8_t *p;
    size_t n;
    int bad;
};

static struct rd rd_of(const struct pg_msg *m)
{
    struct rd r = {(const uint8_t *)m->body, m->body ? m->body_len : 0, 0};
    return r;
}

static uint32_t get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint8_t rd_u8(struct rd *r)
{
    if (r->bad || r->n < 1) {
        r->bad = 1;
        return 0;
    }
    uint8_t v = r->p[0];
    r->p++;
    r->n--;
    return v;
}

static uint16_t rd_u16(struct rd *r)
{
    if (r->bad || r->n < 2) {
        r->bad = 1;
        return 0;
    }
    uint16_t v = (uint16_t)((r->p[0] << 8) | r->p[1]);
    r->p += 2;
    r->n -= 2;
    return v;
}

static uint32_t rd_u32(struct rd *r)
{
    if (r->bad || r->n < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = get_u32(r->p);
    r->p += 4;
    r->n -= 4;
    return v;
}

static void rd_skip(struct rd *r, size_t k)
{
    if (r->bad || r->n < k) {
        r->bad = 1;
        return;
    }
    r->p += k;
    r->n -= k;
}

/* A NUL-terminated string; *s excludes the NUL. */
static void rd_cstr(struct rd *r, pg_str *s)
{
    s->p = NULL;
    s->len = 0;
    if (r->bad) return;
    const uint8_t *z = r->n ? memchr(r->p, 0, r->n) : NULL;
    if (!z) {
        r->bad = 1;
        return;
    }
    s->p = (const char *)r->p;
    s->len = (size_t)(z - r->p);
    r->n -= s->len + 1;
    r->p = z + 1;
}

/* Int32 length-prefixed value, -1 = NULL; other negatives are malformed. */
static void rd_value(struct rd *r)
{
    uint32_t l = rd_u32(r);
    if (r->bad || l == 0xffffffffu) return;
    if (l & 0x80000000u) {
        r->bad = 1;
        return;
    }
    rd_skip(r, l);
}

static int rd_done(const struct rd *r)
{
    return (!r->bad && r->n == 0) ? PG_OK : PG_ERR_MALFORMED;
}

static int is_type(const struct pg_msg *m, uint8_t t)
{
    return m->type == t && m->hdr_len == 5;
}

/* ---- Framing ---------------------------------------------------------------- */

static int frame(const char *buf, size_t len, size_t max_len, struct pg_msg *m, int typed,
                 int need_body)
{
    size_t hl = typed ? 5 : 4;
    if (max_len > (size_t)0x80000000u) max_len = (size_t)0x80000000u;
    if (len < hl) return PG_INCOMPLETE;
    const uint8_t *u = (const uint8_t *)buf;
    uint32_t l = get_u32(u + hl - 4);
    if (l & 0x80000000u) return PG_ERR_MALFORMED;
    if (l < (typed ? 4u : 8u)) return PG_ERR_MALFORMED;
    size_t total = (size_t)l + hl - 4;
    if (total > max_len) return PG_ERR_TOO_LARGE;
    m->type = typed ? u[0] : 0;
    m->hdr_len = (uint8_t)hl;
    m->len = total;
    m->body_len = total - hl;
    m->body = NULL;
    if (!need_body) return PG_OK;
    if (len < total) return PG_INCOMPLETE;
    m->body = buf + hl;
    return PG_OK;
}

int pg_frame(const char *buf, size_t len, size_t max_len, struct pg_msg *m)
{
    return frame(buf, len, max_len, m, 1, 1);
}

int pg_frame_header(const char *buf, size_t len, size_t max_len, struct pg_msg *m)
{
    return frame(buf, len, max_len, m, 1, 0);
}

int pg_frame_startup(const char *buf, size_t len, size_t max_len, struct pg_msg *m)
{
    return frame(buf, len, max_len, m, 0, 1);
}

int pg_fe_type_known(uint8_t c)
{
    return c && strchr("QPBDECSHXFpdcf", c) != NULL;
}

int pg_be_type_known(uint8_t c)
{
    return c && strchr("RSKZENCTDI123ntsGHWdcAvV", c) != NULL;
}

/* ---- Startup ------------------------------------------------------------------ */

static int str_eq(pg_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static int str_same(pg_str a, pg_str b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

int pg_parse_startup(const struct pg_msg *m, struct pg_startup *s, size_t max_params)
{
    struct pg_param *params = s->params;
    memset(s, 0, sizeof *s);
    s->params = params;
    if (m->hdr_len != 4 || !m->body) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    uint32_t code = rd_u32(&r);
    if (r.bad) return PG_ERR_MALFORMED;
    if (code == PG_CODE_SSL || code == PG_CODE_GSSENC) {
        s->kind = code == PG_CODE_SSL ? PG_STARTUP_SSL : PG_STARTUP_GSSENC;
        return rd_done(&r);
    }
    if (code == PG_CODE_CANCEL) {
        s->kind = PG_STARTUP_CANCEL;
        s->pid = rd_u32(&r);
        if (r.bad || r.n < PG_CANCEL_KEY_MIN || r.n > PG_CANCEL_KEY_MAX)
            return PG_ERR_MALFORMED;
        s->cancel_key.p = (const char *)r.p;
        s->cancel_key.len = r.n;
        return PG_OK;
    }
    s->kind = PG_STARTUP_MESSAGE;
    s->major = (uint16_t)(code >> 16);
    s->minor = (uint16_t)(code & 0xffff);
    if (s->major != 3) return PG_ERR_VERSION;
    for (;;) {
        struct pg_param p;
        rd_cstr(&r, &p.name);
        if (r.bad) return PG_ERR_MALFORMED;
        if (p.name.len == 0) break; /* the terminator */
        rd_cstr(&r, &p.value);
        if (r.bad) return PG_ERR_MALFORMED;
        /* Duplicates: compare against the stored ones, and beyond the
         * caller's capacity rescan the body (quadratic, but bounded by
         * the startup size limit). */
        size_t nstored = s->nparams < max_params ? s->nparams : max_params;
        for (size_t i = 0; i < nstored; i++)
            if (str_same(params[i].name, p.name)) return PG_ERR_MALFORMED;
        if (s->nparams > max_params) {
            struct rd q = rd_of(m);
            rd_skip(&q, 4);
            for (size_t i = 0; i < s->nparams; i++) {
                pg_str n, v;
                rd_cstr(&q, &n);
                rd_cstr(&q, &v);
                if (i >= max_params && str_same(n, p.name)) return PG_ERR_MALFORMED;
            }
        }
        if (s->nparams < max_params) params[s->nparams] = p;
        s->nparams++;
        if (str_eq(p.name, "user")) s->user = p.value;
        else if (str_eq(p.name, "database")) s->database = p.value;
        else if (str_eq(p.name, "application_name")) s->application_name = p.value;
        else if (str_eq(p.name, "options")) s->options = p.value;
        else if (str_eq(p.name, "replication")) {
            s->replication = p.value;
            if (str_eq(p.value, "database")) s->replication_mode = PG_REPL_LOGICAL;
            else if (str_eq(p.value, "false") || str_eq(p.value, "off") ||
                     str_eq(p.value, "no") || str_eq(p.value, "0"))
                s->replication_mode = PG_REPL_NONE;
            else s->replication_mode = PG_REPL_PHYSICAL;
        }
    }
    return rd_done(&r);
}

/* ---- Frontend ------------------------------------------------------------------ */

static int one_cstr(const struct pg_msg *m, uint8_t type, pg_str *s)
{
    s->p = NULL;
    s->len = 0;
    if (!is_type(m, type)) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    rd_cstr(&r, s);
    return rd_done(&r);
}

int pg_fe_query(const struct pg_msg *m, pg_str *sql)
{
    return one_cstr(m, 'Q', sql);
}

int pg_fe_copy_fail(const struct pg_msg *m, pg_str *reason)
{
    return one_cstr(m, 'f', reason);
}

int pg_fe_password(const struct pg_msg *m, pg_str *password)
{
    return one_cstr(m, 'p', password);
}

int pg_fe_parse(const struct pg_msg *m, struct pg_parse *p)
{
    memset(p, 0, sizeof *p);
    if (!is_type(m, 'P')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    rd_cstr(&r, &p->name);
    rd_cstr(&r, &p->query);
    p->nparams = rd_u16(&r);
    rd_skip(&r, (size_t)p->nparams * 4);
    return rd_done(&r);
}

int pg_fe_bind(const struct pg_msg *m, struct pg_bind *b)
{
    memset(b, 0, sizeof *b);
    if (!is_type(m, 'B')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    rd_cstr(&r, &b->portal);
    rd_cstr(&r, &b->statement);
    b->nparam_formats = rd_u16(&r);
    rd_skip(&r, (size_t)b->nparam_formats * 2);
    b->nparams = rd_u16(&r);
    for (uint32_t i = 0; i < b->nparams && !r.bad; i++) rd_value(&r);
    b->nresult_formats = rd_u16(&r);
    rd_skip(&r, (size_t)b->nresult_formats * 2);
    /* The server wants 0, 1 or nparams format codes. */
    if (b->nparam_formats > 1 && b->nparam_formats != b->nparams) return PG_ERR_MALFORMED;
    return rd_done(&r);
}

static int kind_name(const struct pg_msg *m, uint8_t type, char *kind, pg_str *name)
{
    *kind = 0;
    name->p = NULL;
    name->len = 0;
    if (!is_type(m, type)) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    uint8_t k = rd_u8(&r);
    rd_cstr(&r, name);
    if (!r.bad && k != 'S' && k != 'P') return PG_ERR_MALFORMED;
    *kind = (char)k;
    return rd_done(&r);
}

int pg_fe_describe(const struct pg_msg *m, char *kind, pg_str *name)
{
    return kind_name(m, 'D', kind, name);
}

int pg_fe_close(const struct pg_msg *m, char *kind, pg_str *name)
{
    return kind_name(m, 'C', kind, name);
}

int pg_fe_execute(const struct pg_msg *m, pg_str *portal, uint32_t *max_rows)
{
    *max_rows = 0;
    portal->p = NULL;
    portal->len = 0;
    if (!is_type(m, 'E')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    rd_cstr(&r, portal);
    *max_rows = rd_u32(&r);
    return rd_done(&r);
}

int pg_fe_function_call(const struct pg_msg *m, uint32_t *oid, uint16_t *nargs)
{
    *oid = 0;
    *nargs = 0;
    if (!is_type(m, 'F')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    *oid = rd_u32(&r);
    uint16_t nfmt = rd_u16(&r);
    rd_skip(&r, (size_t)nfmt * 2);
    uint16_t n = rd_u16(&r);
    for (uint32_t i = 0; i < n && !r.bad; i++) rd_value(&r);
    rd_u16(&r); /* result format */
    *nargs = n;
    return rd_done(&r);
}

int pg_fe_sasl_initial(const struct pg_msg *m, pg_str *mechanism, pg_str *data, int *has_data)
{
    data->p = NULL;
    data->len = 0;
    *has_data = 0;
    if (!is_type(m, 'p')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    rd_cstr(&r, mechanism);
    uint32_t l = rd_u32(&r);
    if (r.bad) return PG_ERR_MALFORMED;
    if (l != 0xffffffffu) {
        if (l & 0x80000000u) return PG_ERR_MALFORMED;
        data->p = (const char *)r.p;
        data->len = l;
        rd_skip(&r, l);
        *has_data = 1;
    }
    if (mechanism->len == 0) return PG_ERR_MALFORMED;
    return rd_done(&r);
}

int pg_fe_is_empty(const struct pg_msg *m, uint8_t type)
{
    return is_type(m, type) && m->body_len == 0 && strchr("SHXc", type) && type;
}

/* ---- Backend --------------------------------------------------------------------- */

int pg_cstr_next(pg_str *rest, pg_str *item)
{
    item->p = NULL;
    item->len = 0;
    if (!rest->p || rest->len == 0) return 0;
    const char *z = memchr(rest->p, 0, rest->len);
    if (!z || z == rest->p) return 0;
    item->p = rest->p;
    item->len = (size_t)(z - rest->p);
    rest->len -= item->len + 1;
    rest->p = z + 1;
    return 1;
}

int pg_be_auth(const struct pg_msg *m, struct pg_auth *a)
{
    memset(a, 0, sizeof *a);
    if (!is_type(m, 'R')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    a->code = rd_u32(&r);
    if (r.bad) return PG_ERR_MALFORMED;
    switch (a->code) {
    case PG_AUTH_OK:
    case PG_AUTH_KERBEROS_V5:
    case PG_AUTH_CLEARTEXT:
    case PG_AUTH_GSS:
    case PG_AUTH_SSPI:
        break;
    case PG_AUTH_MD5:
        for (int i = 0; i < 4; i++) a->salt[i] = rd_u8(&r);
        break;
    case PG_AUTH_GSS_CONTINUE:
    case PG_AUTH_SASL_CONTINUE:
    case PG_AUTH_SASL_FINAL:
        a->data.p = (const char *)r.p;
        a->data.len = r.n;
        rd_skip(&r, r.n);
        break;
    case PG_AUTH_SASL: {
        a->data.p = (const char *)r.p;
        size_t start = r.n;
        int n = 0;
        for (;;) {
            pg_str mech;
            rd_cstr(&r, &mech);
            if (r.bad) return PG_ERR_MALFORMED;
            if (mech.len == 0) break;
            n++;
            if (str_eq(mech, "SCRAM-SHA-256")) a->scram_sha256 = 1;
            else if (str_eq(mech, "SCRAM-SHA-256-PLUS")) a->scram_sha256_plus = 1;
        }
        a->data.len = start - r.n;
        if (n == 0) return PG_ERR_MALFORMED;
        break;
    }
    default:
        return PG_ERR_TYPE;
    }
    return rd_done(&r);
}

int pg_be_param_status(const struct pg_msg *m, pg_str *name, pg_str *value)
{
    value->p = NULL;
    value->len = 0;
    name->p = NULL;
    name->len = 0;
    if (!is_type(m, 'S')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    rd_cstr(&r, name);
    rd_cstr(&r, value);
    if (!r.bad && name->len == 0) return PG_ERR_MALFORMED;
    return rd_done(&r);
}

int pg_be_key_data(const struct pg_msg *m, uint32_t *pid, pg_str *key, uint32_t *key32)
{
    *pid = 0;
    *key32 = 0;
    key->p = NULL;
    key->len = 0;
    if (!is_type(m, 'K')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    *pid = rd_u32(&r);
    if (r.bad || r.n < PG_CANCEL_KEY_MIN || r.n > PG_CANCEL_KEY_MAX) return PG_ERR_MALFORMED;
    key->p = (const char *)r.p;
    key->len = r.n;
    *key32 = get_u32(r.p);
    return PG_OK;
}

int pg_be_ready(const struct pg_msg *m, char *status)
{
    *status = 0;
    if (!is_type(m, 'Z')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    uint8_t s = rd_u8(&r);
    if (r.bad || (s != 'I' && s != 'T' && s != 'E')) return PG_ERR_MALFORMED;
    *status = (char)s;
    return rd_done(&r);
}

int pg_error_next(pg_str *rest, char *code, pg_str *value)
{
    *code = 0;
    value->p = NULL;
    value->len = 0;
    if (!rest->p || rest->len < 2 || rest->p[0] == 0) return 0;
    const char *z = memchr(rest->p + 1, 0, rest->len - 1);
    if (!z) return 0;
    *code = rest->p[0];
    value->p = rest->p + 1;
    value->len = (size_t)(z - value->p);
    rest->len -= value->len + 2;
    rest->p = z + 1;
    return 1;
}

int pg_be_error(const struct pg_msg *m, struct pg_error *e)
{
    memset(e, 0, sizeof *e);
    if (!is_type(m, 'E') && !is_type(m, 'N')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    for (;;) {
        uint8_t code = rd_u8(&r);
        if (r.bad) return PG_ERR_MALFORMED;
        if (code == 0) break;
        pg_str v;
        rd_cstr(&r, &v);
        if (r.bad) return PG_ERR_MALFORMED;
        e->nfields++;
        switch (code) {
        case 'S': e->severity = v; break;
        case 'V': e->severity_v = v; break;
        case 'C': e->sqlstate = v; break;
        case 'M': e->message = v; break;
        case 'D': e->detail = v; break;
        case 'H': e->hint = v; break;
        default: break;
        }
    }
    if (e->sqlstate.p && e->sqlstate.len != 5) return PG_ERR_MALFORMED;
    return rd_done(&r);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parses an all-digit word into *v; 0 when not all digits or it overflows. */
static int parse_u64(const char *p, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    if (n == 0 || n > 20) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i])) return 0;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

int pg_command_tag_parse(pg_str tag, struct pg_command_complete *c)
{
    memset(c, 0, sizeof *c);
    c->tag = tag;
    c->verb = tag;
    if (!tag.p) return PG_ERR_MALFORMED;
    /* Split off up to two trailing space-separated numbers. */
    const char *sp1 = NULL, *sp2 = NULL; /* last and second-to-last spaces */
    for (size_t i = 0; i < tag.len; i++)
        if (tag.p[i] == ' ') {
            sp2 = sp1;
            sp1 = tag.p + i;
        }
    if (!sp1) return PG_OK;
    uint64_t rows, oid;
    if (!parse_u64(sp1 + 1, (size_t)(tag.p + tag.len - sp1 - 1), &rows)) return PG_OK;
    pg_str verb = {tag.p, (size_t)(sp1 - tag.p)};
    if (str_eq(verb, "SELECT") || str_eq(verb, "UPDATE") || str_eq(verb, "DELETE") ||
        str_eq(verb, "MERGE") || str_eq(verb, "COPY") || str_eq(verb, "MOVE") ||
        str_eq(verb, "FETCH")) {
        c->verb = verb;
        c->rows = rows;
        c->has_rows = 1;
        return PG_OK;
    }
    if (sp2 && sp2 - tag.p == 6 && memcmp(tag.p, "INSERT", 6) == 0 &&
        parse_u64(sp2 + 1, (size_t)(sp1 - sp2 - 1), &oid) && oid <= UINT32_MAX) {
        c->verb.len = 6;
        c->rows = rows;
        c->oid = (uint32_t)oid;
        c->has_rows = 1;
    }
    return PG_OK;
}

int pg_be_command_complete(const struct pg_msg *m, struct pg_command_complete *c)
{
    pg_str tag;
    int r = one_cstr(m, 'C', &tag);
    if (r != PG_OK) {
        memset(c, 0, sizeof *c);
        return r;
    }
    return pg_command_tag_parse(tag, c);
}

int pg_be_row_description(const struct pg_msg *m, uint16_t *ncols)
{
    *ncols = 0;
    if (!is_type(m, 'T')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    uint16_t n = rd_u16(&r);
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        pg_str name;
        rd_cstr(&r, &name);
        rd_skip(&r, 4 + 2 + 4 + 2 + 4 + 2); /* table oid, attnum, type oid, typlen, typmod, format */
    }
    *ncols = n;
    return rd_done(&r);
}

int pg_be_data_row(const struct pg_msg *m, uint16_t *ncols)
{
    *ncols = 0;
    if (!is_type(m, 'D')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    uint16_t n = rd_u16(&r);
    for (uint32_t i = 0; i < n && !r.bad; i++) rd_value(&r);
    *ncols = n;
    return rd_done(&r);
}

int pg_be_param_description(const struct pg_msg *m, uint16_t *nparams)
{
    *nparams = 0;
    if (!is_type(m, 't')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    uint16_t n = rd_u16(&r);
    rd_skip(&r, (size_t)n * 4);
    *nparams = n;
    return rd_done(&r);
}

int pg_be_copy_response(const struct pg_msg *m, struct pg_copy_response *c)
{
    memset(c, 0, sizeof *c);
    if (!is_type(m, 'G') && !is_type(m, 'H') && !is_type(m, 'W')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    c->format = rd_u8(&r);
    c->ncols = rd_u16(&r);
    rd_skip(&r, (size_t)c->ncols * 2);
    if (!r.bad && c->format > 1) return PG_ERR_MALFORMED;
    return rd_done(&r);
}

int pg_be_notification(const struct pg_msg *m, uint32_t *pid, pg_str *channel,
                       pg_str *payload)
{
    *pid = 0;
    if (!is_type(m, 'A')) {
        channel->p = payload->p = NULL;
        channel->len = payload->len = 0;
        return PG_ERR_TYPE;
    }
    struct rd r = rd_of(m);
    *pid = rd_u32(&r);
    rd_cstr(&r, channel);
    rd_cstr(&r, payload);
    return rd_done(&r);
}

int pg_be_negotiate(const struct pg_msg *m, uint32_t *minor, uint32_t *noptions,
                    pg_str *options)
{
    *minor = *noptions = 0;
    options->p = NULL;
    options->len = 0;
    if (!is_type(m, 'v')) return PG_ERR_TYPE;
    struct rd r = rd_of(m);
    *minor = rd_u32(&r);
    uint32_t n = rd_u32(&r);
    if (r.bad) return PG_ERR_MALFORMED;
    options->p = (const char *)r.p;
    options->len = r.n;
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        pg_str o;
        rd_cstr(&r, &o);
        if (!r.bad && o.len == 0) return PG_ERR_MALFORMED;
    }
    *noptions = n;
    return rd_done(&r);
}

int pg_be_is_empty(const struct pg_msg *m, uint8_t type)
{
    return type && strchr("123nIsc", type) && is_type(m, type) && m->body_len == 0;
}
