/* sha256: SHA-256 (FIPS 180-4) over n MiB of pseudo-random bytes generated
 * in 64 KiB chunks. Arithmetic-heavy: 32-bit rotates, adds, xors.
 * run(n) = the first 32 bits of the digest (big-endian), i.e. the first 8
 * hex digits `sha256sum` prints for the same bytes. */
#include "common.h"

struct sha256 {
    u32 h[8];
    u64 len;            /* bytes hashed so far */
    unsigned char buf[64];
    u32 fill;           /* bytes in buf */
};

static const u32 K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline u32 ror(u32 x, unsigned r) { return (x >> r) | (x << (32 - r)); }

static void block(u32 h[8], const unsigned char *p)
{
    u32 w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (u32)p[4 * i] << 24 | (u32)p[4 * i + 1] << 16 | (u32)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        u32 s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        u32 s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        u32 t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        u32 t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void sha_init(struct sha256 *s)
{
    static const u32 iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (int i = 0; i < 8; i++) s->h[i] = iv[i];
    s->len = 0;
    s->fill = 0;
}

static void sha_update(struct sha256 *s, const unsigned char *p, u32 n)
{
    s->len += n;
    if (s->fill) {
        while (n && s->fill < 64) { s->buf[s->fill++] = *p++; n--; }
        if (s->fill < 64) return;
        block(s->h, s->buf);
        s->fill = 0;
    }
    for (; n >= 64; p += 64, n -= 64) block(s->h, p);
    while (n) { s->buf[s->fill++] = *p++; n--; }
}

static void sha_final(struct sha256 *s)
{
    u64 bits = s->len * 8;
    s->buf[s->fill++] = 0x80;
    if (s->fill > 56) {
        while (s->fill < 64) s->buf[s->fill++] = 0;
        block(s->h, s->buf);
        s->fill = 0;
    }
    while (s->fill < 56) s->buf[s->fill++] = 0;
    for (int i = 7; i >= 0; i--) s->buf[s->fill++] = (unsigned char)(bits >> (8 * i));
    block(s->h, s->buf);
}

#define CHUNK (64u << 10)
static u32 chunk[CHUNK / 4];
static struct sha256 ctx;

/* Bytes of the stream: the little-endian bytes of successive xs32 values. */
static void gen(u32 *st)
{
    unsigned char *p = (unsigned char *)chunk;
    for (u32 i = 0; i < CHUNK / 4; i++) {
        u32 x = xs32(st);
        p[4 * i] = (unsigned char)x;
        p[4 * i + 1] = (unsigned char)(x >> 8);
        p[4 * i + 2] = (unsigned char)(x >> 16);
        p[4 * i + 3] = (unsigned char)(x >> 24);
    }
}

#ifdef SHA_DUMP
/* test helper: write the generated stream to stdout (checked against sha256sum) */
#include <stdio.h>
void sha_dump(u32 n)
{
    u32 st = 0x12345678u;
    for (u32 c = 0; c < n * 16; c++) { gen(&st); fwrite(chunk, 1, CHUNK, stdout); }
}
#endif

u32 run(u32 n)
{
    u32 st = 0x12345678u;
    sha_init(&ctx);
    for (u32 c = 0; c < n * (1048576u / CHUNK); c++) {
        gen(&st);
        sha_update(&ctx, (const unsigned char *)chunk, CHUNK);
    }
    sha_final(&ctx);
    return ctx.h[0];
}
