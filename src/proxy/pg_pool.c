/* pg_pool.c - idle PostgreSQL server connections of terminated sessions;
 * see pg_pool.h. The pool machinery is db_pool.c; this is the reset:
 * DISCARD ALL, followed to its ReadyForQuery. An ErrorResponse or a
 * transaction status other than 'I' closes the connection: it is only
 * ever reused when the server confirmed a clean session. */
#include "proxy/pg_pool.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proto/pg/pg.h"
#include "proxy/db_pool.h"
#include "proxy/upstream.h"

#define RESET_MSG_MAX 65536u      /* largest message of DISCARD ALL's answer */

/* ---- ParameterStatus list ---------------------------------------------------- */

/* Borrows m; ci's list is rebuilt without the old message of that name. */
int pg_conn_info_param(struct pg_conn_info *ci, const struct pg_msg *m)
{
    pg_str name, value;
    if (pg_be_param_status(m, &name, &value) != PG_OK)
        return -1;
    const char *src = m->body - m->hdr_len;
    char *out = malloc(ci->params_len + m->len);
    if (!out)
        return -1;
    uint32_t n = 0;
    /* The list is whole ParameterStatus messages, one after the other. */
    for (uint32_t off = 0; off < ci->params_len;) {
        struct pg_msg old;
        pg_str other, v;
        if (pg_frame(ci->params + off, ci->params_len - off, ci->params_len - off, &old) != PG_OK)
            break;
        if (pg_be_param_status(&old, &other, &v) != PG_OK || other.len != name.len ||
            memcmp(other.p, name.p, name.len) != 0) {
            memcpy(out + n, ci->params + off, old.len);
            n += (uint32_t)old.len;
        }
        off += (uint32_t)old.len;
    }
    memcpy(out + n, src, m->len);
    n += (uint32_t)m->len;
    free(ci->params);
    ci->params = out;
    ci->params_len = n;
    return 0;
}

void pg_conn_info_clear(struct pg_conn_info *ci)
{
    free(ci->params);
    memset(ci, 0, sizeof(*ci));
}

/* ---- The pool ------------------------------------------------------------------ */

struct pooled {
    struct db_pooled base;        /* first: db_pool's part */
    struct pg_conn_info ci;
    char *key;
    size_t key_len;
    int failed;
};

static void pooled_free(struct db_pooled *b)
{
    struct pooled *e = (struct pooled *)b;
    pg_conn_info_clear(&e->ci);
    free(e->key);
    free(e);
}

/* Follows DISCARD ALL's answer to its ReadyForQuery. */
static const char *reset_answer(struct db_pooled *b)
{
    struct pooled *e = (struct pooled *)b;
    struct buf *in = &b->uc->in;
    while (buf_len(in) > 0) {
        struct pg_msg m;
        int rc = pg_frame(buf_start(in), buf_len(in), RESET_MSG_MAX, &m);
        if (rc == PG_INCOMPLETE)
            return NULL; /* DISCARD ALL's answer is a few small messages */
        if (rc != PG_OK)
            return "invalid message";
        char st = 0;
        if (m.type == 'E')
            e->failed = 1;
        else if (m.type == 'S' && pg_conn_info_param(&e->ci, &m) != 0)
            e->failed = 1;
        else if (m.type == 'Z' && (pg_be_ready(&m, &st) != PG_OK || st != 'I'))
            e->failed = 1;
        buf_consume(in, (uint32_t)m.len);
        if (m.type == 'Z') {
            if (e->failed)
                return "DISCARD ALL failed";
            db_pool_idle(b);
            return buf_len(in) > 0 ? "the server sent something while idle" : NULL;
        }
    }
    return NULL;
}

static const struct db_pool_ops pg_pool_ops = {"postgres", "DISCARD ALL", reset_answer,
                                               pooled_free};

/* Takes uc and *ci; borrows key. */
void pg_pool_put(struct wcluster *wc, struct uconn *uc, struct pg_conn_info *ci, const char *key,
                 size_t key_len)
{
    char q[32];
    int qn = pg_build_query(q, sizeof(q), "DISCARD ALL");
    struct pooled *e = calloc(1, sizeof(*e));
    if (!e || qn < 0 || !(e->key = malloc(key_len)) ||
        buf_append(&e->base.out, q, (size_t)qn) < 0) {
        if (e) {
            buf_free(&e->base.out);
            free(e->key);
        }
        free(e);
        pg_conn_info_clear(ci);
        uconn_close(uc);
        return;
    }
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->ci = *ci;
    memset(ci, 0, sizeof(*ci));
    db_pool_put(&wc->pgpool, wc, &e->base, uc, &pg_pool_ops);
}

static int fits(const struct db_pooled *b, const void *arg)
{
    const struct pooled *e = (const struct pooled *)b;
    const struct pooled *want = arg;
    return e->key_len == want->key_len && memcmp(e->key, want->key, want->key_len) == 0;
}

/* Borrows key; the uconn and *ci become the caller's. */
struct uconn *pg_pool_take(struct wcluster *wc, const char *key, size_t key_len,
                           struct pg_conn_info *ci)
{
    struct pooled want = {.key = (char *)key, .key_len = key_len};
    struct pooled *e = (struct pooled *)db_pool_take(wc->pgpool, fits, &want);
    if (!e)
        return NULL;
    *ci = e->ci;
    memset(&e->ci, 0, sizeof(e->ci));
    return db_pool_taken(&e->base);
}

void pg_pool_close(struct wcluster *wc)
{
    db_pool_close(&wc->pgpool);
}

size_t pg_pool_size(const struct wcluster *wc)
{
    return db_pool_size(wc->pgpool);
}
