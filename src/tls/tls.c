/* tls.c - ClientHello peek for TLS passthrough.
 *
 * A passthrough listener routes a TLS connection by the SNI and ALPN of its
 * first flight without terminating it, so this parser reads raw bytes that
 * nobody has authenticated: it uses no OpenSSL, allocates nothing, copies at
 * most one ClientHello (TLS_HELLO_MAX) onto the stack and checks every
 * length against the bytes that exist. The message may be split across
 * several handshake records (legal, and done on purpose by some clients to
 * dodge middleboxes); it is reassembled before parsing. */
#include "tls/tls.h"

#include <stdint.h>
#include <string.h>

#define REC_HANDSHAKE 0x16
#define HS_CLIENT_HELLO 0x01
#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define REC_MAX 16384 /* largest plaintext record fragment (RFC 8446 5.1) */

/* A bounds-checked reader over one byte range. */
struct rd {
    const unsigned char *p;
    size_t left;
};

/* Reads one byte into *v; r and v are the caller's. 0, or -1 at the end. */
static int rd_u8(struct rd *r, size_t *v)
{
    if (r->left < 1)
        return -1;
    *v = r->p[0];
    r->p++, r->left--;
    return 0;
}

/* Reads a big-endian u16 into *v; r and v are the caller's. 0 or -1. */
static int rd_u16(struct rd *r, size_t *v)
{
    if (r->left < 2)
        return -1;
    *v = (size_t)r->p[0] << 8 | r->p[1];
    r->p += 2, r->left -= 2;
    return 0;
}

/* Splits the next n bytes off r into sub (borrowing r's bytes). */
static int rd_sub(struct rd *r, size_t n, struct rd *sub)
{
    if (r->left < n)
        return -1;
    sub->p = r->p;
    sub->left = n;
    r->p += n, r->left -= n;
    return 0;
}

/* server_name extension (ext borrows the hello; sni is the caller's): the
 * first host_name, lowercased into sni. A second
 * host_name is forbidden by RFC 6066; other name types are skipped. */
static int parse_sni(struct rd ext, char *sni, size_t snilen)
{
    size_t listlen, type, n;
    struct rd list, name;
    int seen = 0;
    if (rd_u16(&ext, &listlen) < 0 || listlen != ext.left || listlen == 0 ||
        rd_sub(&ext, listlen, &list) < 0)
        return -1;
    while (list.left > 0) {
        if (rd_u8(&list, &type) < 0 || rd_u16(&list, &n) < 0 || rd_sub(&list, n, &name) < 0)
            return -1;
        if (type != 0)
            continue;
        if (seen++ || n == 0 || n > 255)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (name.p[i] < 0x21 || name.p[i] > 0x7e)
                return -1;
        if (!sni)
            continue;
        if (n >= snilen)
            return -1; /* a cut name would route to the wrong place */
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = name.p[i];
            sni[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
        }
        sni[n] = '\0';
    }
    return 0;
}

/* ALPN extension (ext borrows the hello; alpn is the caller's): printable,
 * comma-free protocols joined by commas; the list stops at the first one
 * that does not fit. */
static int parse_alpn(struct rd ext, char *alpn, size_t alpnlen)
{
    size_t listlen, n, used = 0;
    struct rd list, proto;
    int full = 0;
    if (rd_u16(&ext, &listlen) < 0 || listlen != ext.left || listlen < 2 ||
        rd_sub(&ext, listlen, &list) < 0)
        return -1;
    while (list.left > 0) {
        if (rd_u8(&list, &n) < 0 || n == 0 || rd_sub(&list, n, &proto) < 0)
            return -1;
        int printable = 1;
        for (size_t i = 0; i < n; i++)
            if (proto.p[i] < 0x21 || proto.p[i] > 0x7e || proto.p[i] == ',')
                printable = 0; /* GREASE and binary ids cannot be joined by commas */
        if (!printable || full || !alpn)
            continue;
        size_t need = (used ? 1 : 0) + n;
        if (used + need + 1 > alpnlen) {
            full = 1;
            continue;
        }
        if (used)
            alpn[used++] = ',';
        memcpy(alpn + used, proto.p, n);
        used += n;
        alpn[used] = '\0';
    }
    return 0;
}

/* Parses a complete ClientHello body (msg borrowed). 1 or -1. */
static int parse_hello(const unsigned char *msg, size_t len, char *sni, size_t snilen, char *alpn,
                       size_t alpnlen)
{
    struct rd r = {msg, len}, skip, exts, ext;
    size_t ver, n, type;
    if (rd_u16(&r, &ver) < 0 || (ver >> 8) != 3 || rd_sub(&r, 32, &skip) < 0) /* version, random */
        return -1;
    if (rd_u8(&r, &n) < 0 || n > 32 || rd_sub(&r, n, &skip) < 0) /* legacy_session_id */
        return -1;
    if (rd_u16(&r, &n) < 0 || n < 2 || (n & 1) || rd_sub(&r, n, &skip) < 0) /* cipher_suites */
        return -1;
    if (rd_u8(&r, &n) < 0 || n < 1 || rd_sub(&r, n, &skip) < 0) /* compression_methods */
        return -1;
    if (r.left == 0)
        return 1; /* no extensions at all (old TLS 1.2 clients) */
    if (rd_u16(&r, &n) < 0 || n != r.left || rd_sub(&r, n, &exts) < 0)
        return -1;
    int seen_sni = 0, seen_alpn = 0;
    while (exts.left > 0) {
        if (rd_u16(&exts, &type) < 0 || rd_u16(&exts, &n) < 0 || rd_sub(&exts, n, &ext) < 0)
            return -1;
        if (type == EXT_SERVER_NAME) {
            if (seen_sni++ || parse_sni(ext, sni, snilen) < 0)
                return -1;
        } else if (type == EXT_ALPN) {
            if (seen_alpn++ || parse_alpn(ext, alpn, alpnlen) < 0)
                return -1;
        }
    }
    return 1;
}

/* buf is borrowed; sni and alpn (caller's, may be NULL with length 0) are
 * written only when the result is 1, except for being emptied first. */
int tls_peek_client_hello(const unsigned char *buf, size_t len, char *sni, size_t snilen, char *alpn,
                          size_t alpnlen)
{
    unsigned char msg[4 + TLS_HELLO_MAX];
    size_t have = 0, need = 4, pos = 0; /* need: header first, then the body */
    if (sni && snilen)
        sni[0] = '\0';
    else
        sni = NULL;
    if (alpn && alpnlen)
        alpn[0] = '\0';
    else
        alpn = NULL;
    if (!buf)
        return len ? -1 : 0;
    for (;;) {
        size_t left = len - pos;
        const unsigned char *h = buf + pos;
        /* Judge a partial record header by what is there, so that plain
         * HTTP is refused from its first byte instead of waiting. */
        if ((left >= 1 && h[0] != REC_HANDSHAKE) || (left >= 2 && h[1] != 3) || (left >= 3 && h[2] > 4))
            return -1;
        if (left < 5)
            return 0;
        size_t rl = (size_t)h[3] << 8 | h[4];
        if (rl == 0 || rl > REC_MAX)
            return -1;
        size_t avail = left - 5 < rl ? left - 5 : rl;
        const unsigned char *frag = h + 5;
        while (avail > 0) {
            size_t take = need - have < avail ? need - have : avail;
            memcpy(msg + have, frag, take);
            have += take, frag += take, avail -= take;
            if (have == 4 && need == 4) {
                if (msg[0] != HS_CLIENT_HELLO)
                    return -1;
                size_t body = (size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3];
                if (body > TLS_HELLO_MAX)
                    return -1;
                need = 4 + body;
            }
            if (have == need) { /* bytes after the hello are the server's business */
                if (parse_hello(msg + 4, need - 4, sni, snilen, alpn, alpnlen) == 1)
                    return 1;
                if (sni)
                    sni[0] = '\0';
                if (alpn)
                    alpn[0] = '\0';
                return -1;
            }
        }
        if (left - 5 < rl)
            return 0;
        pos += 5 + rl;
    }
}
