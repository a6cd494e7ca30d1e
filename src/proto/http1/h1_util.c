/* h1_util.c - character tables and small string helpers for the HTTP/1 parser.
 *
 * The tables are computed by constant expressions at compile time rather
 * than typed out, so each class is defined once, readably, by its grammar. */
#include "proto/http1/h1.h"

#include <string.h>

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_VCHAR(c) ((c) >= 0x21 && (c) <= 0x7e)
/* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA  (RFC 9110 5.6.2) */
#define IS_TCHAR(c)                                                                          \
    (IS_DIGIT(c) || IS_ALPHA(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' ||   \
     (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' ||    \
     (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')
#define IS_VALUE(c) (IS_VCHAR(c) || (c) >= 0x80 || IS_OWS(c))
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
/* RFC 3986 reg-name minus pct-encoding and ',' (a comma in Host invites list
 * parsing by someone downstream). */
#define IS_HOST(c)                                                                           \
    (IS_DIGIT(c) || IS_ALPHA(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' ||   \
     (c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||    \
     (c) == '*' || (c) == '+' || (c) == ';' || (c) == '=')
#define IS_QDTEXT(c) (IS_OWS(c) || (c) == 0x21 || ((c) >= 0x23 && (c) <= 0x5b) ||             \
                      ((c) >= 0x5d && (c) <= 0x7e) || (c) >= 0x80)

#define CLASS(c)                                                                             \
    ((IS_TCHAR(c) ? H1_C_TCHAR : 0u) | (IS_VALUE(c) ? H1_C_VALUE : 0u) |                     \
     (IS_VCHAR(c) && (c) != '#' ? H1_C_TARGET : 0u) | (IS_HEX(c) ? H1_C_HEX : 0u) |          \
     (IS_HOST(c) ? H1_C_HOST : 0u) | (IS_QDTEXT(c) ? H1_C_QDTEXT : 0u) |                     \
     (IS_OWS(c) ? H1_C_OWS : 0u))
#define LOWER(c) (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))

#define R4(F, b) F(b), F((b) + 1), F((b) + 2), F((b) + 3)
#define R16(F, b) R4(F, b), R4(F, (b) + 4), R4(F, (b) + 8), R4(F, (b) + 12)
#define R64(F, b) R16(F, b), R16(F, (b) + 16), R16(F, (b) + 32), R16(F, (b) + 48)
#define R256(F) R64(F, 0), R64(F, 64), R64(F, 128), R64(F, 192)

const uint8_t h1_cclass[256] = {R256(CLASS)};
const uint8_t h1_lower[256] = {R256(LOWER)};

/* Borrows both. */
int h1_str_ieq(h1_str s, const char *lit)
{
    size_t i;
    for (i = 0; i < s.len; i++) {
        if (lit[i] == '\0' || h1_lower[(uint8_t)s.p[i]] != h1_lower[(uint8_t)lit[i]]) return 0;
    }
    return lit[i] == '\0';
}

/* Borrows both. */
static int str_ieq_str(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h1_lower[(uint8_t)a[i]] != h1_lower[(uint8_t)b[i]]) return 0;
    return 1;
}

/* Borrows both. */
int h1_token_list_has_str(h1_str list, h1_str token)
{
    if (list.len == 0 || token.len == 0) return 0; /* list.p may be NULL */
    const char *p = list.p, *end = list.p + list.len;
    while (p < end) {
        const char *e = memchr(p, ',', (size_t)(end - p));
        const char *next = e ? e + 1 : end;
        if (!e) e = end;
        while (p < e && IS_OWS(*p)) p++;
        while (e > p && IS_OWS(e[-1])) e--;
        if ((size_t)(e - p) == token.len && str_ieq_str(p, token.p, token.len)) return 1;
        p = next;
    }
    return 0;
}

/* Borrows both. */
int h1_token_list_has(h1_str list, const char *token)
{
    h1_str t = {token, strlen(token)};
    return h1_token_list_has_str(list, t);
}

/* Borrows name. */
int h1_header_is_hop_by_hop(h1_str name)
{
    switch (name.len) {
    case 2: return h1_str_ieq(name, "te");
    case 7: return h1_str_ieq(name, "upgrade");
    case 10: return h1_str_ieq(name, "connection") || h1_str_ieq(name, "keep-alive");
    case 16: return h1_str_ieq(name, "proxy-connection");
    default: return 0;
    }
}

/* Borrows both. */
int h1_header_should_strip(h1_str name, h1_str connection)
{
    return h1_header_is_hop_by_hop(name) || h1_token_list_has_str(connection, name);
}

/* Borrows both. */
int h1_trailer_forwardable(h1_str name, h1_str value)
{
    if (name.len == 0 || h1_header_is_hop_by_hop(name) ||
        (name.len == 14 && h1_str_ieq(name, "content-length")) ||
        (name.len == 17 && h1_str_ieq(name, "transfer-encoding")) ||
        (name.len == 4 && h1_str_ieq(name, "host")))
        return 0;
    for (size_t i = 0; i < name.len; i++)
        if (!h1_is_tchar(name.p[i]))
            return 0;
    for (size_t i = 0; i < value.len; i++)
        if (!(h1_cclass[(uint8_t)value.p[i]] & H1_C_VALUE))
            return 0;
    return 1;
}

/* Returns a static string. */
const char *h1_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* Borrows buf; *pos is the caller's cursor. */
int h1_head_scan(const char *buf, size_t len, size_t *pos)
{
    /* Only LFs at or after *pos are new; the CR LF CR before each is read
     * backwards, so a terminator split across reads is still found, and one
     * already reported (a false alarm such as leading empty lines) is not
     * reported again. */
    size_t i = *pos <= len ? *pos : 0;
    while (i < len) {
        const char *lf = memchr(buf + i, '\n', len - i);
        if (!lf) break;
        i = (size_t)(lf - buf) + 1;
        if (i >= 4 && lf[-1] == '\r' && lf[-2] == '\n' && lf[-3] == '\r') {
            *pos = i;
            return 1;
        }
    }
    *pos = len;
    return 0;
}
