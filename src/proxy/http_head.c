/* http_head.c - the heads Strand writes: the request head sent upstream
 * (hop-by-hop fields dropped, route header operations applied, forwarding
 * headers added, path rewritten), the response head sent to the client, and
 * local responses. Heads are built in one pass into a flat buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proxy/http_int.h"
#include "router/router.h"

/* An append-only writer over a fixed area; overflow sticks. */
struct hw {
    char *p;
    size_t len, cap;
    int overflow;
};

static void hw_put(struct hw *w, const char *s, size_t n)
{
    if (w->overflow || w->len + n > w->cap) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void hw_str(struct hw *w, const char *s) { hw_put(w, s, strlen(s)); }
static void hw_h1(struct hw *w, h1_str s) { hw_put(w, s.p, s.len); }

static void hw_header(struct hw *w, const char *name, size_t nlen, const char *v, size_t vlen)
{
    hw_put(w, name, nlen);
    hw_put(w, ": ", 2);
    hw_put(w, v, vlen);
    hw_put(w, "\r\n", 2);
}

static int name_in(h1_str name, char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h1_str_ieq(name, names[i]))
            return 1;
    return 0;
}

static int name_in_set(h1_str name, const struct cfg_header *hs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h1_str_ieq(name, hs[i].name))
            return 1;
    return 0;
}

/* Whether a route's header operations drop this field. */
static int ops_drop(const struct cfg_header_ops *ops, h1_str name)
{
    return ops && (name_in(name, ops->remove, ops->nremove) || name_in_set(name, ops->set, ops->nset));
}

static void ops_add(struct hw *w, const struct cfg_header_ops *ops)
{
    if (!ops)
        return;
    for (size_t i = 0; i < ops->nset; i++)
        hw_header(w, ops->set[i].name, strlen(ops->set[i].name), ops->set[i].value,
                  strlen(ops->set[i].value));
    for (size_t i = 0; i < ops->nadd; i++)
        hw_header(w, ops->add[i].name, strlen(ops->add[i].name), ops->add[i].value,
                  strlen(ops->add[i].value));
}

/* The prefix the rule matched `path` on, for rewrite.pathPrefix. */
const char *http_rule_prefix(const struct cfg_rule *cr)
{
    for (size_t i = 0; i < cr->nconds; i++) {
        const struct cfg_cond *c = &cr->conds[i];
        if (c->op == CFG_MATCH_PREFIX && !c->invert && strcmp(c->attr, "path") == 0)
            return c->value;
    }
    return "/";
}

static void write_target(struct hw *w, const struct hreq *r, const struct h1_request *req)
{
    const struct cfg_rule *cr = route_rule_cfg(r->rr);
    h1_str path = req->path;
    if (req->flags & H1_F_ASTERISK_FORM || req->flags & H1_F_AUTHORITY_FORM) {
        hw_h1(w, req->target);
        return;
    }
    if (cr->rewrite_prefix) {
        const char *pre = http_rule_prefix(cr);
        size_t pl = strlen(pre);
        if (path.len >= pl && memcmp(path.p, pre, pl) == 0) {
            const char *rest = path.p + pl;
            size_t rl = path.len - pl;
            size_t nl = strlen(cr->rewrite_prefix);
            hw_put(w, cr->rewrite_prefix, nl);
            /* "/api" + "/x" rewritten to "/" must give "/x", not "//x". */
            if (nl > 0 && cr->rewrite_prefix[nl - 1] == '/' && rl > 0 && rest[0] == '/') {
                rest++;
                rl--;
            } else if (rl > 0 && rest[0] != '/' && (nl == 0 || cr->rewrite_prefix[nl - 1] != '/')) {
                hw_put(w, "/", 1);
            }
            if (nl == 0 && (rl == 0 || rest[0] != '/'))
                hw_put(w, "/", 1);
            hw_put(w, rest, rl);
            goto query;
        }
    }
    if (path.len == 0)
        hw_put(w, "/", 1);
    else
        hw_h1(w, path);
query:
    if (req->query.p) {
        hw_put(w, "?", 1);
        hw_h1(w, req->query);
    }
}

/* out is the caller's (empty) buffer; it receives a block from the pool. */
int http_build_request_head(struct hreq *r, const struct h1_request *req, struct buf *out)
{
    const struct cfg_rule *cr = route_rule_cfg(r->rr);
    const struct cfg_listener *lc = r->hc->gl->cfg;
    const struct cfg_header_ops *ops = &cr->request_headers;
    if (buf_ensure(out) < 0)
        return -1;
    struct hw w = {out->data, 0, out->cap, 0};
    const char *ip = r->hc->peer_ip;
    int have_xff = 0, have_fwd = 0, have_via = 0, have_rid = 0, have_xfp = 0, have_host = 0;

    hw_h1(&w, req->method);
    hw_put(&w, " ", 1);
    write_target(&w, r, req);
    hw_str(&w, r->http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct h1_header *h = &req->headers[i];
        if (h1_header_should_strip(h->name, req->connection) || ops_drop(ops, h->name))
            continue;
        if (lc->xff && h1_str_ieq(h->name, "x-forwarded-for")) {
            if (!have_xff) {
                /* Merge every received line and append the client, so that
                 * backends reading only the first line see the full chain. */
                hw_str(&w, "x-forwarded-for: ");
                for (size_t j = i; j < req->nheaders; j++)
                    if (h1_str_ieq(req->headers[j].name, "x-forwarded-for")) {
                        hw_h1(&w, req->headers[j].value);
                        hw_str(&w, ", ");
                    }
                hw_str(&w, ip);
                hw_str(&w, "\r\n");
                have_xff = 1;
            }
            continue;
        }
        if (lc->xff && h1_str_ieq(h->name, "forwarded")) {
            have_fwd = 1;
            continue; /* written below with our element appended */
        }
        if (lc->via && h1_str_ieq(h->name, "via")) {
            have_via = 1;
            continue;
        }
        if (lc->request_id && h1_str_ieq(h->name, "x-request-id"))
            have_rid = 1;
        if (h1_str_ieq(h->name, "x-forwarded-proto"))
            have_xfp = 1;
        if (h1_str_ieq(h->name, "host"))
            have_host = 1;
        hw_h1(&w, h->name);
        hw_put(&w, ": ", 2);
        hw_h1(&w, h->value);
        hw_put(&w, "\r\n", 2);
    }
    if (!have_host) {
        /* HTTP/1.0 clients may omit Host; HTTP/1.1 servers require one. */
        hw_str(&w, "host: ");
        hw_str(&w, r->wc ? r->wc->gc->cfg->name : "localhost");
        hw_str(&w, "\r\n");
    }
    if (lc->xff && !have_xff) {
        hw_str(&w, "x-forwarded-for: ");
        hw_str(&w, ip);
        hw_str(&w, "\r\n");
    }
    if (lc->xff) {
        hw_str(&w, "forwarded: ");
        if (have_fwd)
            for (size_t j = 0; j < req->nheaders; j++)
                if (h1_str_ieq(req->headers[j].name, "forwarded")) {
                    hw_h1(&w, req->headers[j].value);
                    hw_str(&w, ", ");
                }
        /* IPv6 node names are quoted and bracketed (RFC 7239 section 6). */
        int v6 = strchr(ip, ':') != NULL;
        hw_str(&w, v6 ? "for=\"[" : "for=");
        hw_str(&w, ip);
        const char *scheme = r->hc->sio.tls ? "https" : "http";
        hw_str(&w, v6 ? "]\";proto=" : ";proto=");
        hw_str(&w, scheme);
        if (req->host.len > 0 && req->host.len < 256) {
            int plain = 1;
            for (size_t k = 0; k < req->host.len; k++)
                if (!h1_is_tchar(req->host.p[k]))
                    plain = 0;
            hw_str(&w, plain ? ";host=" : ";host=\"");
            hw_h1(&w, req->host);
            if (!plain)
                hw_str(&w, "\"");
        }
        hw_str(&w, "\r\n");
        if (!have_xfp)
            hw_str(&w, r->hc->sio.tls ? "x-forwarded-proto: https\r\n"
                                      : "x-forwarded-proto: http\r\n");
    }
    if (lc->via) {
        hw_str(&w, "via: ");
        if (have_via)
            for (size_t j = 0; j < req->nheaders; j++)
                if (h1_str_ieq(req->headers[j].name, "via")) {
                    hw_h1(&w, req->headers[j].value);
                    hw_str(&w, ", ");
                }
        hw_str(&w, r->http10 ? "1.0 strand\r\n" : "1.1 strand\r\n");
    }
    if (lc->request_id && !have_rid) {
        hw_str(&w, "x-request-id: ");
        hw_str(&w, r->request_id);
        hw_str(&w, "\r\n");
    }
    if (r->upgrade) {
        hw_str(&w, "connection: upgrade\r\nupgrade: ");
        hw_h1(&w, req->upgrade);
        hw_str(&w, "\r\n");
    }
    ops_add(&w, ops);
    hw_put(&w, "\r\n", 2);
    if (w.overflow) {
        buf_free(out);
        return -1;
    }
    out->tail = (uint32_t)w.len;
    return (int)w.len;
}

int http_build_response_head(struct hreq *r, const struct h1_response *resp)
{
    struct hconn *hc = r->hc;
    const struct cfg_rule *cr = route_rule_cfg(r->rr);
    const struct cfg_header_ops *ops = &cr->response_headers;
    if (buf_ensure(&hc->out) < 0)
        return -1;
    uint32_t space = buf_space(&hc->out);
    struct hw w = {hc->out.data + hc->out.tail, 0, space, 0};
    /* The status is 100..599 (the parser checked): three digits. */
    char line[16] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + resp->status / 100);
    line[10] = (char)('0' + resp->status / 10 % 10);
    line[11] = (char)('0' + resp->status % 10);
    hw_put(&w, line, 13);
    hw_h1(&w, resp->reason);
    hw_put(&w, "\r\n", 2);
    int have_via = 0;
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct h1_header *h = &resp->headers[i];
        if (h1_header_should_strip(h->name, resp->connection) || ops_drop(ops, h->name))
            continue;
        if (hc->gl->cfg->via && h1_str_ieq(h->name, "via")) {
            have_via = 1;
            continue;
        }
        hw_h1(&w, h->name);
        hw_put(&w, ": ", 2);
        hw_h1(&w, h->value);
        hw_put(&w, "\r\n", 2);
    }
    if (hc->gl->cfg->via) {
        hw_str(&w, "via: ");
        if (have_via)
            for (size_t j = 0; j < resp->nheaders; j++)
                if (h1_str_ieq(resp->headers[j].name, "via")) {
                    hw_h1(&w, resp->headers[j].value);
                    hw_str(&w, ", ");
                }
        hw_str(&w, "1.1 strand\r\n");
    }
    if (resp->status == 101) {
        hw_str(&w, "connection: upgrade\r\nupgrade: ");
        hw_h1(&w, resp->upgrade);
        hw_str(&w, "\r\n");
    } else if (r->close_after) {
        hw_str(&w, "connection: close\r\n");
    } else if (r->http10) {
        hw_str(&w, "connection: keep-alive\r\n");
    }
    ops_add(&w, ops);
    hw_put(&w, "\r\n", 2);
    if (w.overflow)
        return -1;
    hc->out.tail += (uint32_t)w.len;
    return 0;
}

int http_local_response(struct hconn *hc, int status, const char *ctype, const char *body,
                        size_t bodylen, int conn, const struct cfg_header_ops *ops)
{
    if (buf_ensure(&hc->out) < 0)
        return -1;
    uint32_t space = buf_space(&hc->out);
    struct hw w = {hc->out.data + hc->out.tail, 0, space, 0};
    char line[160];
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\n", status,
             h1_status_reason(status), bodylen);
    hw_str(&w, line);
    if (!ops || !name_in_set((h1_str){"content-type", 12}, ops->set, ops->nset)) {
        hw_str(&w, "content-type: ");
        hw_str(&w, ctype ? ctype : "text/plain");
        hw_str(&w, "\r\n");
    }
    if (conn == HTTP_CONN_CLOSE)
        hw_str(&w, "connection: close\r\n");
    else if (conn == HTTP_CONN_KEEPALIVE)
        hw_str(&w, "connection: keep-alive\r\n");
    ops_add(&w, ops);
    hw_put(&w, "\r\n", 2);
    hw_put(&w, body, bodylen);
    if (w.overflow)
        return -1;
    hc->out.tail += (uint32_t)w.len;
    return 0;
}

/* out is the caller's. */
void http_request_id(struct worker *w, char out[40])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = worker_rand(w), b = worker_rand(w);
    /* Version 4, variant 10xx (RFC 9562). */
    a = (a & ~0xF000ull) | 0x4000ull;
    b = (b & ~(0xC000ull << 48)) | (0x8000ull << 48);
    /* 8-4-4-4-12 hex digits; formatted by hand, this runs per request. */
    int o = 0;
    for (int i = 15; i >= 0; i--) {
        out[o++] = hex[(a >> (i * 4)) & 0xF];
        if (i == 8 || i == 4)
            out[o++] = '-';
    }
    out[o++] = '-';
    for (int i = 15; i >= 0; i--) {
        out[o++] = hex[(b >> (i * 4)) & 0xF];
        if (i == 12)
            out[o++] = '-';
    }
    out[o] = 0;
}
