/* http_attr.c - an HTTP/1 request as attributes for the router. Lookups go
 * straight to the parsed head; nothing is copied. */
#include <string.h>

#include "proxy/http_int.h"
#include "tls/tls.h"

static int one(attr_val *out, int max, const char *p, size_t len)
{
    if (max > 0)
        out[0] = (attr_val){p, len};
    return 1;
}

/* query.<name>: each name=value pair of the raw query string (values are
 * compared as sent, without percent-decoding). */
int http_query_attr(const char *q, size_t len, const struct attr_key *key, attr_val *out, int max)
{
    int n = 0;
    const char *p = q, *end = q + len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        if ((size_t)(ne - p) == key->sublen && memcmp(p, key->sub, key->sublen) == 0) {
            if (n < max)
                out[n] = eq ? (attr_val){eq + 1, (size_t)(pe - eq - 1)} : (attr_val){"", 0};
            n++;
        }
        p = amp ? amp + 1 : NULL;
    }
    return n;
}

/* The connection's TLS facts: the SPIFFE ID of a verified client
 * certificate, the SNI it asked for, the protocol ALPN settled on. */
static int tls_attr_get(const struct tls_conn *t, const struct attr_key *key, attr_val *out,
                        int max)
{
    const char *v = NULL;
    if (key->len == 15 && memcmp(key->name, "source.identity", 15) == 0)
        v = tls_conn_peer_identity(t);
    else if (key->len == 7 && memcmp(key->name, "tls.sni", 7) == 0)
        v = tls_conn_sni(t);
    else if (key->len == 8 && memcmp(key->name, "tls.alpn", 8) == 0)
        v = tls_conn_alpn(t);
    return v ? one(out, max, v, strlen(v)) : 0;
}

int http_conn_attr(const struct hconn *hc, const struct attr_key *key, attr_val *out, int max)
{
    switch (key->id) {
    case ATTR_SCHEME:
        return hc->sio.tls ? one(out, max, "https", 5) : one(out, max, "http", 4);
    case ATTR_PROTOCOL:
        return one(out, max, "http", 4);
    case ATTR_SOURCE_ADDRESS:
        return one(out, max, hc->peer_ip, strlen(hc->peer_ip));
    case ATTR_DESTINATION_PORT: {
        /* Formatted into a per-thread slot: valid until the next call. */
        static __thread char port[8];
        int l = 0, v = hc->local_port;
        char tmp[8];
        do
            tmp[l++] = (char)('0' + v % 10);
        while ((v /= 10) && l < 7);
        for (int i = 0; i < l; i++)
            port[i] = tmp[l - 1 - i];
        return one(out, max, port, (size_t)l);
    }
    default:
        return hc->sio.tls ? tls_attr_get(hc->sio.tls, key, out, max) : 0;
    }
}

int http_attr_get(void *ctx, const struct attr_key *key, attr_val *out, int max)
{
    const struct http_attr_ctx *c = ctx;
    const struct h1_request *req = c->req;
    switch (key->id) {
    case ATTR_METHOD:
        return one(out, max, req->method.p, req->method.len);
    case ATTR_PATH:
        return one(out, max, req->path.p, req->path.len);
    case ATTR_AUTHORITY:
        if (req->authority.p)
            return one(out, max, req->authority.p, req->authority.len);
        return req->host.p ? one(out, max, req->host.p, req->host.len) : 0;
    case ATTR_HEADER: {
        int n = 0;
        for (size_t i = 0; i < req->nheaders; i++) {
            const struct h1_header *h = &req->headers[i];
            if (h->name.len != key->sublen || strncasecmp(h->name.p, key->sub, key->sublen) != 0)
                continue;
            if (n < max)
                out[n] = (attr_val){h->value.p, h->value.len};
            n++;
        }
        return n;
    }
    case ATTR_QUERY:
        return req->query.p ? http_query_attr(req->query.p, req->query.len, key, out, max) : 0;
    default:
        return http_conn_attr(c->hc, key, out, max);
    }
}
