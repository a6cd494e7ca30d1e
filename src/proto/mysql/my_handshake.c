/* my_handshake.c - the connection phase: Initial Handshake v10,
 * HandshakeResponse41 / SSLRequest, the auth exchange packets and the
 * password scrambles.
 *
 * MariaDB marks itself by clearing CLIENT_MYSQL (bit 0) and puts 32 more
 * capability bits into 4 of the handshake's reserved bytes (and the client
 * answers in the last 4 of its 23-byte filler); both are folded into the
 * upper half of the 64-bit caps here. */
#include "proto/mysql/my.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int my_parse_handshake(const uint8_t *p, size_t len, struct my_handshake *hs)
{
    memset(hs, 0, sizeof(*hs));
    struct my_rd r = {p, p + len};
    my_str part1, part2;
    uint16_t lo, hi = 0;
    uint8_t filler, authlen = 0;
    if (my_rd_u8(&r, &hs->protocol_version)) return MY_E_MALFORMED;
    if (hs->protocol_version == 9) return MY_E_UNSUPPORTED;
    if (hs->protocol_version != 10) return MY_E_MALFORMED;
    if (my_rd_nulstr(&r, &hs->server_version) || my_rd_u32(&r, &hs->connection_id) ||
        my_rd_bytes(&r, 8, &part1) || my_rd_u8(&r, &filler) || my_rd_u16(&r, &lo))
        return MY_E_MALFORMED;
    memcpy(hs->scramble, part1.p, 8);
    hs->scramble_len = 8;
    hs->caps = lo;
    if (r.p == r.end) return 0; /* very old servers stop here */
    my_str reserved;
    if (my_rd_u8(&r, &hs->charset) || my_rd_u16(&r, &hs->status) || my_rd_u16(&r, &hi) ||
        my_rd_u8(&r, &authlen) || my_rd_bytes(&r, 10, &reserved))
        return MY_E_MALFORMED;
    hs->caps |= (uint64_t)hi << 16;
    if (!(hs->caps & MY_CLIENT_MYSQL)) {
        const uint8_t *x = (const uint8_t *)reserved.p + 6;
        uint64_t ext = (uint64_t)x[0] | (uint64_t)x[1] << 8 | (uint64_t)x[2] << 16 |
                       (uint64_t)x[3] << 24;
        hs->caps |= ext << 32;
    }
    if (hs->caps & MY_CLIENT_SECURE_CONNECTION) {
        /* Part 2 is max(13, authlen - 8) bytes, the last one a NUL that is
         * not part of the scramble. */
        size_t n2 = authlen > 21 ? (size_t)authlen - 8 : 13;
        if (my_rd_bytes(&r, n2, &part2)) {
            /* some servers send exactly 12 bytes + NUL with authlen 0 */
            return MY_E_MALFORMED;
        }
        size_t take = n2 - 1 < 12 ? n2 - 1 : 12;
        memcpy(hs->scramble + 8, part2.p, take);
        hs->scramble_len = (uint8_t)(8 + take);
    }
    if (hs->caps & MY_CLIENT_PLUGIN_AUTH) {
        /* NUL-terminated; MySQL 5.5.7-5.5.9 forgot the NUL: take the rest. */
        if (my_rd_nulstr(&r, &hs->auth_plugin)) my_rd_rest(&r, &hs->auth_plugin);
    }
    return 0;
}

int my_build_handshake(uint8_t *out, size_t cap, const struct my_handshake *hs)
{
    size_t plen = 1 + hs->server_version.len + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10 + 13 +
                  hs->auth_plugin.len + 1;
    if (cap < MY_HDR_LEN + plen || hs->scramble_len != 20) return MY_E_SPACE;
    uint64_t caps = hs->caps | MY_CLIENT_SECURE_CONNECTION | MY_CLIENT_PROTOCOL_41;
    if (hs->auth_plugin.len) caps |= MY_CLIENT_PLUGIN_AUTH;
    uint8_t *q = out + MY_HDR_LEN;
    *q++ = 10;
    if (hs->server_version.len) memcpy(q, hs->server_version.p, hs->server_version.len);
    q += hs->server_version.len;
    *q++ = 0;
    put_le(q, hs->connection_id, 4);
    q += 4;
    memcpy(q, hs->scramble, 8);
    q += 8;
    *q++ = 0;
    put_le(q, caps & 0xffff, 2);
    q += 2;
    *q++ = hs->charset;
    put_le(q, hs->status, 2);
    q += 2;
    put_le(q, (caps >> 16) & 0xffff, 2);
    q += 2;
    *q++ = 21;
    memset(q, 0, 10);
    if (!(caps & MY_CLIENT_MYSQL)) put_le(q + 6, caps >> 32, 4);
    q += 10;
    memcpy(q, hs->scramble + 8, 12);
    q += 12;
    *q++ = 0;
    if (hs->auth_plugin.len) memcpy(q, hs->auth_plugin.p, hs->auth_plugin.len);
    q += hs->auth_plugin.len;
    *q++ = 0;
    plen = (size_t)(q - out) - MY_HDR_LEN;
    my_pkt_put_header(out, (uint32_t)plen, 0);
    return (int)(MY_HDR_LEN + plen);
}

int my_parse_hs_response(const uint8_t *p, size_t len, uint64_t server_caps,
                         struct my_hs_response *h)
{
    memset(h, 0, sizeof(*h));
    struct my_rd r = {p, p + len};
    uint32_t caps;
    my_str filler;
    if (len >= 2 && !((p[0] | p[1] << 8) & MY_CLIENT_PROTOCOL_41)) return MY_E_UNSUPPORTED;
    if (my_rd_u32(&r, &caps) || my_rd_u32(&r, &h->max_packet) || my_rd_u8(&r, &h->charset) ||
        my_rd_bytes(&r, 23, &filler))
        return MY_E_MALFORMED;
    h->caps = caps;
    if (!(server_caps & MY_CLIENT_MYSQL) && !(caps & MY_CLIENT_MYSQL)) {
        const uint8_t *x = (const uint8_t *)filler.p + 19;
        uint64_t ext = (uint64_t)x[0] | (uint64_t)x[1] << 8 | (uint64_t)x[2] << 16 |
                       (uint64_t)x[3] << 24;
        h->caps |= ext << 32;
    }
    if (r.p == r.end) {
        if (!(caps & MY_CLIENT_SSL)) return MY_E_MALFORMED;
        h->ssl_request = 1;
        return 0;
    }
    if (my_rd_nulstr(&r, &h->user)) return MY_E_MALFORMED;
    if (caps & MY_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
        if (my_rd_lenenc_str(&r, &h->auth_response)) return MY_E_MALFORMED;
    } else if (caps & MY_CLIENT_SECURE_CONNECTION) {
        uint8_t n;
        if (my_rd_u8(&r, &n) || my_rd_bytes(&r, n, &h->auth_response)) return MY_E_MALFORMED;
    } else if (my_rd_nulstr(&r, &h->auth_response)) {
        return MY_E_MALFORMED;
    }
    /* Trailing optional fields: clients may stop early even with the flag
     * set (servers accept that), so an end of payload there is "absent". */
    if ((caps & MY_CLIENT_CONNECT_WITH_DB) && r.p < r.end &&
        my_rd_nulstr(&r, &h->database))
        return MY_E_MALFORMED;
    if ((caps & MY_CLIENT_PLUGIN_AUTH) && r.p < r.end && my_rd_nulstr(&r, &h->auth_plugin))
        my_rd_rest(&r, &h->auth_plugin); /* some clients omit the final NUL */
    if ((caps & MY_CLIENT_CONNECT_ATTRS) && r.p < r.end) {
        if (my_rd_lenenc_str(&r, &h->attrs)) return MY_E_MALFORMED;
        my_str a = h->attrs, k, v;
        int e;
        while ((e = my_attr_next(&a, &k, &v)) == 1) {}
        if (e < 0) return MY_E_MALFORMED;
    }
    if ((caps & MY_CLIENT_ZSTD_COMPRESSION) && r.p < r.end && my_rd_u8(&r, &h->zstd_level))
        return MY_E_MALFORMED;
    return 0;
}

int my_attr_next(my_str *attrs, my_str *key, my_str *value)
{
    if (attrs->len == 0) return 0;
    struct my_rd r = {(const uint8_t *)attrs->p, (const uint8_t *)attrs->p + attrs->len};
    if (my_rd_lenenc_str(&r, key) || my_rd_lenenc_str(&r, value)) return MY_E_MALFORMED;
    attrs->len -= (size_t)((const char *)r.p - attrs->p);
    attrs->p = (const char *)r.p;
    return 1;
}

int my_attr_put(uint8_t *out, size_t cap, size_t *len, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    size_t need = my_lenenc_size(kl) + kl + my_lenenc_size(vl) + vl;
    if (*len > cap || cap - *len < need) return MY_E_SPACE;
    uint8_t *q = out + *len;
    q += my_lenenc_put(q, kl);
    memcpy(q, key, kl);
    q += kl;
    q += my_lenenc_put(q, vl);
    memcpy(q, value, vl);
    *len += need;
    return 0;
}

int my_build_hs_response(uint8_t *out, size_t cap, uint8_t seq, const struct my_hs_response *h)
{
    uint64_t caps = h->caps | MY_CLIENT_PROTOCOL_41;
    size_t plen = 32;
    if (!h->ssl_request) {
        plen += h->user.len + 1 + 9 + h->auth_response.len + h->database.len + 1 +
                h->auth_plugin.len + 1 + 9 + h->attrs.len + 1;
        if (!(caps & MY_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) && h->auth_response.len > 255)
            return MY_E_SPACE;
    }
    if (cap < MY_HDR_LEN + plen || plen >= MY_MAX_PAYLOAD) return MY_E_SPACE;
    uint8_t *q = out + MY_HDR_LEN;
    put_le(q, caps & 0xffffffffu, 4);
    put_le(q + 4, h->max_packet, 4);
    q[8] = h->charset;
    memset(q + 9, 0, 23);
    if (!(caps & MY_CLIENT_MYSQL)) put_le(q + 28, caps >> 32, 4);
    q += 32;
    if (!h->ssl_request) {
        if (h->user.len) memcpy(q, h->user.p, h->user.len);
        q += h->user.len;
        *q++ = 0;
        int nul = !(caps & (MY_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
                            MY_CLIENT_SECURE_CONNECTION));
        if (caps & MY_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
            q += my_lenenc_put(q, h->auth_response.len);
        else if (!nul)
            *q++ = (uint8_t)h->auth_response.len;
        else if (h->auth_response.len && memchr(h->auth_response.p, 0, h->auth_response.len))
            return MY_E_MALFORMED; /* the old NUL-terminated form cannot carry a NUL */
        if (h->auth_response.len) memcpy(q, h->auth_response.p, h->auth_response.len);
        q += h->auth_response.len;
        if (nul) *q++ = 0;
        if (caps & MY_CLIENT_CONNECT_WITH_DB) {
            if (h->database.len) memcpy(q, h->database.p, h->database.len);
            q += h->database.len;
            *q++ = 0;
        }
        if (caps & MY_CLIENT_PLUGIN_AUTH) {
            if (h->auth_plugin.len) memcpy(q, h->auth_plugin.p, h->auth_plugin.len);
            q += h->auth_plugin.len;
            *q++ = 0;
        }
        if (caps & MY_CLIENT_CONNECT_ATTRS) {
            q += my_lenenc_put(q, h->attrs.len);
            if (h->attrs.len) memcpy(q, h->attrs.p, h->attrs.len);
            q += h->attrs.len;
        }
        if (caps & MY_CLIENT_ZSTD_COMPRESSION) *q++ = h->zstd_level;
    }
    plen = (size_t)(q - out) - MY_HDR_LEN;
    my_pkt_put_header(out, (uint32_t)plen, seq);
    return (int)(MY_HDR_LEN + plen);
}

int my_parse_auth_packet(const uint8_t *p, size_t len, struct my_auth_pkt *a)
{
    memset(a, 0, sizeof(*a));
    if (len < 1) return MY_E_MALFORMED;
    struct my_rd r = {p + 1, p + len};
    switch (p[0]) {
    case 0x00: a->kind = MY_AUTH_OK; return 0;
    case 0xff: a->kind = MY_AUTH_ERR; return 0;
    case 0xfe:
        if (len == 1) {
            a->kind = MY_AUTH_OLD_SWITCH;
            return 0;
        }
        a->kind = MY_AUTH_SWITCH;
        if (my_rd_nulstr(&r, &a->plugin)) return MY_E_MALFORMED;
        my_rd_rest(&r, &a->data);
        if (a->data.len && a->data.p[a->data.len - 1] == 0) a->data.len--;
        return 0;
    case 0x01:
        my_rd_rest(&r, &a->data);
        a->kind = MY_AUTH_MORE_DATA;
        if (len == 2 && p[1] == 0x03) a->kind = MY_AUTH_FAST_OK;
        if (len == 2 && p[1] == 0x04) a->kind = MY_AUTH_FULL_AUTH;
        return 0;
    default: return MY_E_MALFORMED;
    }
}

/* One-shot digest; returns 0 or -1. */
static int digest(const EVP_MD *md, const void *a, size_t alen, const void *b, size_t blen,
                  uint8_t *out)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n;
    int ok = c && EVP_DigestInit_ex(c, md, NULL) && EVP_DigestUpdate(c, a, alen) &&
             (!blen || EVP_DigestUpdate(c, b, blen)) && EVP_DigestFinal_ex(c, out, &n);
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

int my_scramble_native(uint8_t out[20], const uint8_t scramble[20], const char *pw, size_t pwlen)
{
    uint8_t h1[20], h2[20], h3[20];
    if (pwlen == 0) return 0;
    if (digest(EVP_sha1(), pw, pwlen, NULL, 0, h1) || digest(EVP_sha1(), h1, 20, NULL, 0, h2) ||
        digest(EVP_sha1(), scramble, 20, h2, 20, h3))
        return -1;
    for (int i = 0; i < 20; i++) out[i] = h1[i] ^ h3[i];
    return 20;
}

int my_scramble_sha2(uint8_t out[32], const uint8_t scramble[20], const char *pw, size_t pwlen)
{
    uint8_t h1[32], h2[32], h3[32];
    if (pwlen == 0) return 0;
    if (digest(EVP_sha256(), pw, pwlen, NULL, 0, h1) ||
        digest(EVP_sha256(), h1, 32, NULL, 0, h2) ||
        digest(EVP_sha256(), h2, 32, scramble, 20, h3))
        return -1;
    for (int i = 0; i < 32; i++) out[i] = h1[i] ^ h3[i];
    return 32;
}

int my_native_hash(uint8_t out[20], const char *pw, size_t pwlen)
{
    uint8_t h1[20];
    return digest(EVP_sha1(), pw, pwlen, NULL, 0, h1) || digest(EVP_sha1(), h1, 20, NULL, 0, out)
               ? -1
               : 0;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int my_native_hash_parse(uint8_t out[20], const char *text, size_t len)
{
    if (len != 41 || text[0] != '*') return MY_E_MALFORMED;
    for (int i = 0; i < 20; i++) {
        int hi = hex_nibble(text[1 + 2 * i]), lo = hex_nibble(text[2 + 2 * i]);
        if (hi < 0 || lo < 0) return MY_E_MALFORMED;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* The client sent SHA1(pw) XOR SHA1(scramble + stored): XOR again to get
 * SHA1(pw) back, whose SHA1 must be the stored hash. */
int my_native_verify(const uint8_t scramble[20], const uint8_t stored[20], const uint8_t *resp,
                     size_t len)
{
    uint8_t mask[20], h1[20], check[20];
    uint8_t zero[20] = {0};
    const uint8_t *r = len == 20 ? resp : zero;
    if (digest(EVP_sha1(), scramble, 20, stored, 20, mask)) return 0;
    for (int i = 0; i < 20; i++) h1[i] = r[i] ^ mask[i];
    if (digest(EVP_sha1(), h1, 20, NULL, 0, check)) return 0;
    return CRYPTO_memcmp(check, stored, 20) == 0 && len == 20;
}

int my_scramble_random(uint8_t *out, size_t n)
{
    if (RAND_bytes(out, (int)n) != 1) return -1;
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)('!' + out[i] % 94);
    return 0;
}

int my_build_auth_switch(uint8_t *out, size_t cap, uint8_t seq, const char *plugin,
                         const uint8_t *data, size_t n)
{
    size_t pl = strlen(plugin), plen = 1 + pl + 1 + n + 1;
    if (cap < MY_HDR_LEN + plen || plen >= MY_MAX_PAYLOAD) return MY_E_SPACE;
    uint8_t *q = out + MY_HDR_LEN;
    *q++ = 0xfe;
    memcpy(q, plugin, pl);
    q += pl;
    *q++ = 0;
    if (n) memcpy(q, data, n);
    q += n;
    *q++ = 0;
    my_pkt_put_header(out, (uint32_t)plen, seq);
    return (int)(MY_HDR_LEN + plen);
}
