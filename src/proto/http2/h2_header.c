/* h2_header.c - header list checks and conversions for the HTTP/2 layer.
 *
 * Incoming lists are validated by nghttp2's HTTP messaging rules (RFC 9113
 * 8.2 and 8.3) plus h2_recv.c; outgoing lists are validated here, because
 * nghttp2 sends whatever it is given, and a proxy must not turn a bad
 * HTTP/1.1 field into a malformed HTTP/2 message for its peer. */
#include <stdlib.h>
#include <string.h>

#include "proto/http2/h2_int.h"

/* RFC 9110 tchar, lower-case letters only (RFC 9113 8.2.1). */
static int name_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value per RFC 9113 8.2.1: no NUL, CR or LF, no leading or trailing
 * whitespace. v: borrowed. */
static int value_ok(const char *v, size_t len)
{
    if (len > 0 && (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' ' || v[len - 1] == '\t'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == 0 || c == '\r' || c == '\n')
            return 0;
    }
    return 1;
}

/* Borrows both. */
int h2h_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
    }
    return 1;
}

/* Borrows name and value. */
int h2_header_is_connection_specific(const char *name, size_t nlen, const char *value,
                                     size_t vlen)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (h2h_ieq(name, nlen, names[i], strlen(names[i])))
            return 1;
    if (h2h_ieq(name, nlen, "te", 2))
        return !h2h_ieq(value, vlen, "trailers", 8);
    return 0;
}

/* Borrows h. */
int h2h_check_regular(const struct h2_header *h)
{
    if (!h->name || h->nlen == 0 || (!h->value && h->vlen > 0))
        return H2_ERR_ARG;
    for (size_t i = 0; i < h->nlen; i++)
        if (!name_char((unsigned char)h->name[i]))
            return H2_ERR_ARG; /* also rejects ':' (pseudo) and upper case */
    if (!value_ok(h->value ? h->value : "", h->vlen))
        return H2_ERR_ARG;
    if (h2_header_is_connection_specific(h->name, h->nlen, h->value ? h->value : "", h->vlen))
        return H2_ERR_ARG;
    return H2_OK;
}

/* Borrows hs and status; returns an owned array pointing into them. */
nghttp2_nv *h2h_nv(const struct h2_header *hs, size_t n, const char *status, size_t *nv_len)
{
    size_t extra = status ? 1 : 0;
    nghttp2_nv *nv = h2_mem_alloc((n + extra + 1) * sizeof(*nv));
    if (!nv)
        return NULL;
    size_t k = 0;
    if (status) {
        nv[k].name = (uint8_t *)":status";
        nv[k].namelen = 7;
        nv[k].value = (uint8_t *)status;
        nv[k].valuelen = strlen(status);
        nv[k].flags = NGHTTP2_NV_FLAG_NONE;
        k++;
    }
    for (size_t i = 0; i < n; i++, k++) {
        nv[k].name = (uint8_t *)hs[i].name;
        nv[k].namelen = hs[i].nlen;
        nv[k].value = (uint8_t *)(hs[i].value ? hs[i].value : "");
        nv[k].valuelen = hs[i].vlen;
        nv[k].flags = NGHTTP2_NV_FLAG_NONE;
    }
    *nv_len = k;
    return nv;
}

/* Borrows hs; returns one owned allocation holding everything. */
nghttp2_nv *h2h_copy(const struct h2_header *hs, size_t n)
{
    size_t bytes = n * sizeof(nghttp2_nv);
    for (size_t i = 0; i < n; i++)
        bytes += hs[i].nlen + hs[i].vlen + 2;
    nghttp2_nv *nv = malloc(bytes ? bytes : 1);
    if (!nv)
        return NULL;
    char *p = (char *)(nv + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, hs[i].name, hs[i].nlen);
        p[hs[i].nlen] = 0;
        nv[i].name = (uint8_t *)p;
        nv[i].namelen = hs[i].nlen;
        p += hs[i].nlen + 1;
        if (hs[i].vlen)
            memcpy(p, hs[i].value, hs[i].vlen);
        p[hs[i].vlen] = 0;
        nv[i].value = (uint8_t *)p;
        nv[i].valuelen = hs[i].vlen;
        p += hs[i].vlen + 1;
        nv[i].flags = NGHTTP2_NV_FLAG_NONE;
    }
    return nv;
}

/* Borrows hs and name; returns a pointer into hs. */
const struct h2_header *h2_header_get(const struct h2_header *hs, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (hs[i].nlen == len && memcmp(hs[i].name, name, len) == 0)
            return &hs[i];
    return NULL;
}

/* Returns a static string. */
const char *h2_error_name(uint32_t code)
{
    static const char *const names[] = {
        "NO_ERROR",       "PROTOCOL_ERROR",    "INTERNAL_ERROR",    "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT", "STREAM_CLOSED",   "FRAME_SIZE_ERROR",  "REFUSED_STREAM",
        "CANCEL",         "COMPRESSION_ERROR", "CONNECT_ERROR",     "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
    };
    return code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNKNOWN";
}
