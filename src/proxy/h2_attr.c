/* h2_attr.c - an HTTP/2 request as attributes for the router, and the
 * owned header lists the HTTP/2 proxy keeps. Lookups read the session's
 * header list during on_request; nothing is copied. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/http2/grpc.h"
#include "proxy/h2_int.h"

static int one(attr_val *out, int max, const char *p, size_t len)
{
    if (max > 0)
        out[0] = (attr_val){p, len};
    return 1;
}

/* The pseudo-header name (":path") or NULL. hs: borrowed. */
static const struct h2_header *pseudo(const struct h2_attr_ctx *c, const char *name)
{
    return h2_header_get(c->hs, c->n, name);
}

/* path: :path without the query. */
static int path_get(const struct h2_attr_ctx *c, attr_val *out, int max)
{
    const struct h2_header *p = pseudo(c, ":path");
    if (!p)
        return 0;
    const char *q = memchr(p->value, '?', p->vlen);
    return one(out, max, p->value, q ? (size_t)(q - p->value) : p->vlen);
}

static int query_get(const struct h2_attr_ctx *c, const struct attr_key *key, attr_val *out,
                     int max)
{
    const struct h2_header *ph = pseudo(c, ":path");
    const char *q = ph ? memchr(ph->value, '?', ph->vlen) : NULL;
    if (!q)
        return 0;
    return http_query_attr(q + 1, (size_t)(ph->value + ph->vlen - q - 1), key, out, max);
}

/* grpc.service / grpc.method, for gRPC requests only. */
static int grpc_get(const struct h2_attr_ctx *c, int want_method, attr_val *out, int max)
{
    const struct h2_header *ct = h2_header_get(c->hs, c->n, "content-type");
    const struct h2_header *p = pseudo(c, ":path");
    struct grpc_str svc, m;
    if (!ct || !p || !grpc_is_content_type(ct->value, ct->vlen) ||
        grpc_parse_path(p->value, p->vlen, &svc, &m) < 0)
        return 0;
    return want_method ? one(out, max, m.p, m.len) : one(out, max, svc.p, svc.len);
}

int h2_attr_get(void *ctx, const struct attr_key *key, attr_val *out, int max)
{
    const struct h2_attr_ctx *c = ctx;
    const struct h2_header *h;
    switch (key->id) {
    case ATTR_METHOD:
        return (h = pseudo(c, ":method")) ? one(out, max, h->value, h->vlen) : 0;
    case ATTR_PATH:
        return path_get(c, out, max);
    case ATTR_AUTHORITY:
        return (h = pseudo(c, ":authority")) ? one(out, max, h->value, h->vlen) : 0;
    case ATTR_HEADER: {
        /* Regular fields only; "header.host" is the authority, as HTTP/1
         * clients would have sent it. */
        if (key->sublen == 4 && memcmp(key->sub, "host", 4) == 0)
            return (h = pseudo(c, ":authority")) ? one(out, max, h->value, h->vlen) : 0;
        int n = 0;
        for (size_t i = 0; i < c->n; i++) {
            const struct h2_header *f = &c->hs[i];
            if (f->nlen != key->sublen || memcmp(f->name, key->sub, key->sublen) != 0)
                continue;
            if (n < max)
                out[n] = (attr_val){f->value, f->vlen};
            n++;
        }
        return n;
    }
    case ATTR_QUERY:
        return query_get(c, key, out, max);
    default:
        if (key->len == 12 && memcmp(key->name, "grpc.service", 12) == 0)
            return grpc_get(c, 0, out, max);
        if (key->len == 11 && memcmp(key->name, "grpc.method", 11) == 0)
            return grpc_get(c, 1, out, max);
        return http_conn_attr(c->hc, key, out, max);
    }
}

/* l: caller's, filled with an owned copy; hs: borrowed. */
int h2_hlist_copy(struct h2_hlist *l, const struct h2_header *hs, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += hs[i].nlen + hs[i].vlen + 2;
    l->v = h2_mem_alloc(n * sizeof(*l->v) + bytes + 1);
    if (!l->v)
        return -1;
    char *p = (char *)(l->v + n);
    l->mem = p;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, hs[i].name, hs[i].nlen);
        p[hs[i].nlen] = 0;
        l->v[i].name = p;
        l->v[i].nlen = hs[i].nlen;
        p += hs[i].nlen + 1;
        memcpy(p, hs[i].value, hs[i].vlen);
        p[hs[i].vlen] = 0;
        l->v[i].value = p;
        l->v[i].vlen = hs[i].vlen;
        p += hs[i].vlen + 1;
    }
    l->n = n;
    return 0;
}

/* l: caller's; what it owns is freed. */
void h2_hlist_free(struct h2_hlist *l)
{
    h2_mem_release(l->v);
    l->v = NULL;
    l->mem = NULL;
    l->n = 0;
}
