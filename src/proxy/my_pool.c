/* my_pool.c - idle MySQL server connections of terminated sessions; see
 * my_pool.h. The pool machinery is db_pool.c; this is the reset: one
 * COM_RESET_CONNECTION, whose OK (outside a transaction) makes the
 * connection idle and anything else closes it. */
#include "proxy/my_pool.h"

#include <stdlib.h>
#include <string.h>

#include "proto/mysql/my.h"
#include "proxy/db_pool.h"
#include "proxy/upstream.h"

struct mpooled {
    struct db_pooled base;        /* first: db_pool's part */
    struct my_pool_key key;
    uint64_t caps;
    uint16_t status;              /* of the reset's OK */
};

static void mpooled_free(struct db_pooled *e)
{
    free(e);
}

/* The reset's answer, once whole in uc->in. */
static const char *reset_answer(struct db_pooled *b)
{
    struct mpooled *e = (struct mpooled *)b;
    struct buf *in = &b->uc->in;
    const uint8_t *p;
    struct my_pkt pkt;
    int n = my_packet_whole((const uint8_t *)buf_start(in), buf_len(in), &pkt, &p);
    if (n == MY_INCOMPLETE)
        return NULL;
    struct my_ok ok;
    if (n < 0 || pkt.seq != 1 || pkt.len == 0 || p[0] != 0x00 ||
        my_parse_ok(p, pkt.len, pkt.len, e->caps, &ok) != 0)
        return "COM_RESET_CONNECTION failed";
    if (ok.status & MY_SERVER_STATUS_IN_TRANS)
        return "still in a transaction after COM_RESET_CONNECTION";
    buf_consume(in, (uint32_t)n);
    if (buf_len(in) > 0)
        return "more than one answer to COM_RESET_CONNECTION";
    e->status = ok.status;
    db_pool_idle(b);
    return NULL;
}

static const struct db_pool_ops my_pool_ops = {"mysql", "COM_RESET_CONNECTION", reset_answer,
                                               mpooled_free};

/* Takes uc; borrows key. */
void my_pool_put(struct wcluster *wc, struct uconn *uc, const struct my_pool_key *key,
                 uint64_t caps)
{
    uint8_t req[8];
    int n = my_build_simple(req, sizeof(req), MY_COM_RESET_CONNECTION);
    struct mpooled *e = calloc(1, sizeof(*e));
    if (!e || n < 0 || buf_append(&e->base.out, req, (size_t)n) < 0) {
        if (e)
            buf_free(&e->base.out);
        free(e);
        uconn_close(uc);
        return;
    }
    e->key = *key;
    e->caps = caps;
    db_pool_put(&wc->mypool, wc, &e->base, uc, &my_pool_ops);
}

static int fits(const struct db_pooled *b, const void *arg)
{
    const struct mpooled *e = (const struct mpooled *)b;
    const struct my_pool_key *key = arg;
    return e->key.want == key->want && e->key.charset == key->charset;
}

/* Borrows key; the uconn becomes the caller's. */
struct uconn *my_pool_take(struct wcluster *wc, const struct my_pool_key *key, uint64_t *caps,
                           uint16_t *status)
{
    struct mpooled *e = (struct mpooled *)db_pool_take(wc->mypool, fits, key);
    if (!e)
        return NULL;
    *caps = e->caps;
    *status = e->status;
    return db_pool_taken(&e->base);
}

void my_pool_close(struct wcluster *wc)
{
    db_pool_close(&wc->mypool);
}

size_t my_pool_size(const struct wcluster *wc)
{
    return db_pool_size(wc->mypool);
}
