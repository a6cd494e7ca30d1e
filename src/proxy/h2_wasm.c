/* h2_wasm.c - WasmPlugins on HTTP/2 streams (wasm_filter.h), the HTTP/2
 * twin of http_wasm.c: the head is copied into the stream's map (the
 * pseudo-headers as HTTP/2 has them, then the fields), the filters run on
 * it, and the stream is routed on from a head rebuilt from the map, so a
 * filter may keep it waiting. The client's content-length is kept as it
 * was: the body's length is not the filters' to change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h2_int.h"
#include "proxy/wasm_filter.h"
#include "router/router.h"

#define H2W_MAX (HTTP_MAX_HEADERS_CAP + 8)

static void wf_resume_cb(void *owner);

static int wf_attr(void *owner, const struct attr_key *key, attr_val *out, int max)
{
    struct h2s *st = owner;
    return http_conn_attr(st->hc, key, out, max);
}

static const struct wf_embed h2_wf_embed = {wf_attr, wf_resume_cb};

static bool is_length(const char *k) { return strcmp(k, "content-length") == 0; }

/* The map as an HTTP/2 header list (pseudo-headers first, as the map
 * keeps them); entries point into the map. */
static size_t synth(struct wf_map *m, struct h2_header *out, size_t cap, const char *cl)
{
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < m->n && k < cap; i++) {
            const struct wf_kv *kv = &m->e[i];
            if ((kv->key[0] == ':') != (pass == 0) || (cl && is_length(kv->key)))
                continue;
            out[k++] = (struct h2_header){kv->key, kv->key_len, kv->value, kv->value_len};
        }
    if (cl && cl[0] && k < cap)
        out[k++] = (struct h2_header){"content-length", 14, cl, strlen(cl)};
    return k;
}

static void answer_local(struct h2s *st)
{
    const struct wf_local *l = wf_local(st->wf);
    struct h2_header hs[64];
    size_t n = 0;
    for (uint32_t i = 0; i < l->headers.n && n < 64; i++) {
        const struct wf_kv *kv = &l->headers.e[i];
        if (kv->key[0] == ':' || is_length(kv->key))
            continue;
        hs[n++] = (struct h2_header){kv->key, kv->key_len, kv->value, kv->value_len};
    }
    if (!wf_map_get(&l->headers, "content-type", 12) && n < 64)
        hs[n++] = (struct h2_header){"content-type", 12, "text/plain", 10};
    snprintf(st->errbuf, sizeof(st->errbuf), "wasm local response%s%s", l->details ? ": " : "",
             l->details ? l->details : "");
    int s = l->status;
    h2s_local_body(st, s, hs, n, l->body ? l->body : "", l->body_len,
                   l->grpc_status >= 0 && l->grpc_status <= 16 ? (int)l->grpc_status : -1,
                   st->errbuf,
                   s >= 500 ? OUTCOME_SERVER_ERROR : s >= 400 ? OUTCOME_CLIENT_ERROR : OUTCOME_OK);
}

/* A phase's answer: 0 to go on (Continue, or a Pause the phase ignores);
 * WF_LOCAL or WF_FAIL end the stream (-1). */
static int settle(struct h2s *st, int res)
{
    if (res == WF_CONTINUE || res == WF_PAUSE)
        return 0;
    if (res == WF_LOCAL) {
        answer_local(st);
    } else {
        snprintf(st->errbuf, sizeof(st->errbuf), "%s", wf_fail_reason(st->wf));
        h2s_local(st, 500, st->errbuf, OUTCOME_SERVER_ERROR);
    }
    return -1;
}

static void after_request(struct h2s *st, int res)
{
    switch (res) {
    case WF_CONTINUE: {
        static __thread struct h2_header hs[H2W_MAX];
        size_t n = synth(wf_req_map(st->wf), hs, H2W_MAX, st->wf_cl);
        /* Body bytes (and trailers) that came while the filters held
         * the head. */
        int trl = st->req_done && st->req_trl.n;
        if (buf_len(&st->reqb) || (st->req_done && !trl)) {
            const uint8_t *b = (const uint8_t *)buf_start(&st->reqb);
            if (h2_wf_req_body(st, b, buf_len(&st->reqb), st->req_done && !trl) < 0)
                return;
        }
        if (trl && h2_wf_req_trailers(st) < 0)
            return;
        h2s_route(st, hs, n);
        return;
    }
    case WF_PAUSE:
        st->wf_wait = 1;
        return;
    default:
        settle(st, res);
        return;
    }
}

static void wf_resume_cb(void *owner)
{
    struct h2s *st = owner;
    struct hconn *hc = st->hc;
    if (!st->wf_wait)
        return;
    st->wf_wait = 0;
    after_request(st, wf_resume(st->wf));
    h2d_update(hc);
}

int h2_wf_request(struct h2s *st, const struct h2_header *hs, size_t n)
{
    struct hconn *hc = st->hc;
    int failed;
    const char *route = st->rr ? route_rule_route(st->rr)->name : NULL;
    st->wf = wf_stream_new(hc->wg, hc->gl, route, false, &h2_wf_embed, st, &failed);
    if (!st->wf && !failed)
        return 0;
    if (st->rr)
        st->stats = &hc->gl->rules[route_rule_index(st->rr)].direct;
    if (!st->wf) {
        h2s_local(st, 500, "a wasm filter could not start", OUTCOME_SERVER_ERROR);
        return 1;
    }
    wf_set_names(st->wf, st->rr ? route_rule_name(st->rr) : NULL, NULL);
    struct wf_map *m = wf_req_map(st->wf);
    for (size_t i = 0; i < n; i++) {
        if (is_length(hs[i].name) && hs[i].vlen < sizeof(st->wf_cl))
            snprintf(st->wf_cl, sizeof(st->wf_cl), "%.*s", (int)hs[i].vlen, hs[i].value);
        if (wf_map_add(m, hs[i].name, hs[i].nlen, hs[i].value, hs[i].vlen, true) < 0) {
            h2s_local(st, 503, "out of memory", OUTCOME_UNAVAILABLE);
            return 1;
        }
    }
    st->deadline_ms = loop_now(hc->w->loop) + hc->gl->cfg->request_timeout_ms;
    loop_timer_arm(hc->w->loop, &st->timer, st->deadline_ms);
    after_request(st, wf_request_headers(st->wf, st->req_done));
    return 1;
}

/* The map as a trailer list (regular fields only). */
static size_t trailer_list(const struct wf_map *m, struct h2_header *out, size_t cap)
{
    size_t k = 0;
    for (uint32_t i = 0; i < m->n && k < cap; i++)
        if (m->e[i].key[0] != ':')
            out[k++] = (struct h2_header){m->e[i].key, m->e[i].key_len, m->e[i].value,
                                          m->e[i].value_len};
    return k;
}

int h2_wf_req_trailers(struct h2s *st)
{
    static __thread struct h2_header out[H2W_MAX];
    if (st->wf_wait)
        return 0; /* run when the head goes on */
    struct wf_map *m = wf_req_trailers(st->wf);
    for (size_t i = 0; i < st->req_trl.n; i++) {
        const struct h2_header *h = &st->req_trl.v[i];
        if (wf_map_add(m, h->name, h->nlen, h->value, h->vlen, true) < 0)
            return 0; /* out of memory: the trailers go as they came */
    }
    if (settle(st, wf_request_trailers(st->wf)) < 0)
        return -1;
    if (m->dirty) {
        struct h2_hlist l = {0};
        if (h2_hlist_copy(&l, out, trailer_list(m, out, H2W_MAX)) == 0) {
            h2_hlist_free(&st->req_trl);
            st->req_trl = l;
        }
    }
    return 0;
}

int h2_wf_trailers(struct h2s *st, const struct h2_header **trl, size_t *n)
{
    static __thread struct h2_header out[H2W_MAX];
    struct wf_map *m = wf_resp_trailers(st->wf);
    for (size_t i = 0; i < *n; i++)
        if (wf_map_add(m, (*trl)[i].name, (*trl)[i].nlen, (*trl)[i].value, (*trl)[i].vlen,
                       true) < 0)
            return 0; /* out of memory: the trailers go as they came */
    /* The head is out: a failure resets the stream. */
    if (settle(st, wf_response_trailers(st->wf)) < 0)
        return -1;
    if (m->dirty) {
        *trl = out;
        *n = trailer_list(m, out, H2W_MAX);
    }
    return 0;
}

void h2_wf_adopt(struct h2s *st, struct wf_stream *wf)
{
    st->wf = wf;
    wf_set_owner(wf, &h2_wf_embed, st);
}

int h2_wf_req_body(struct h2s *st, const uint8_t *p, size_t n, int eos)
{
    if (st->wf_wait)
        return 0; /* shown from reqb when the head goes on */
    return settle(st, wf_request_body(st->wf, p, n, eos));
}

int h2_wf_resp_body(struct h2s *st, const uint8_t *p, size_t n, int eos)
{
    return settle(st, wf_response_body(st->wf, p, n, eos));
}

int h2_wf_response(struct h2s *st, int *status, const struct h2_header **hs, size_t *n)
{
    static __thread struct h2_header out[H2W_MAX];
    struct wf_map *m = wf_resp_map(st->wf);
    char sb[8];
    snprintf(sb, sizeof(sb), "%03d", *status % 1000);
    int ok = wf_map_add(m, ":status", 7, sb, 3, false) == 0;
    for (size_t i = 0; ok && i < *n; i++)
        ok = wf_map_add(m, (*hs)[i].name, (*hs)[i].nlen, (*hs)[i].value, (*hs)[i].vlen, true) == 0;
    if (st->wc)
        wf_set_names(st->wf, st->rr ? route_rule_name(st->rr) : NULL, st->wc->gc->cfg->name);
    int res = ok ? wf_response_headers(st->wf, false) : WF_CONTINUE;
    if (res == WF_CONTINUE || res == WF_PAUSE) {
        if (!m->dirty)
            return 0;
        const struct wf_kv *s = wf_map_get(m, ":status", 7);
        int v = s ? atoi(s->value) : 0;
        if (v >= 200 && v <= 599)
            *status = v;
        /* Regular fields only: the response's framing stays the upstream's. */
        size_t k = 0;
        for (uint32_t i = 0; i < m->n && k < H2W_MAX; i++)
            if (m->e[i].key[0] != ':' && !is_length(m->e[i].key))
                out[k++] = (struct h2_header){m->e[i].key, m->e[i].key_len, m->e[i].value,
                                              m->e[i].value_len};
        const struct h2_header *cl = h2_header_get(*hs, *n, "content-length");
        if (cl && k < H2W_MAX)
            out[k++] = *cl;
        *hs = out;
        *n = k;
        return 0;
    }
    return settle(st, res);
}
