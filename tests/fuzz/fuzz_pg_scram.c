/* fuzz_pg_scram.c - libFuzzer target for SCRAM-SHA-256 (src/proto/pg/pg_scram.h).
 *
 * The first input byte (mod 5) picks the parser, the rest is the message:
 *   0  client reads a server-first-message (after the RFC 7677 client-first);
 *      when it is accepted with a small count, the client-final is built too
 *   1  client reads a server-final-message (after the RFC 7677 exchange)
 *   2  server reads a client-first-message; when accepted, it answers and
 *      our client, given the same nonce, must accept that answer
 *   3  server reads a client-final-message (after the RFC 7677 server-first)
 *   4  verifier text ("SCRAM-SHA-256$..."); when accepted, it is formatted
 *      and parsed again to the same secret
 * The states are set up once with fixed nonces and the password "pencil",
 * so runs are deterministic. Invariants beyond "no crash, no sanitizer
 * report": only documented codes come back, accepted messages give
 * outputs of the documented shape, and only the RFC's own messages verify.
 * Seeds: tests/fuzz/corpus/pg_scram (RFC messages and broken ones). */
#include "proto/pg/pg_scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const char cnonce[] = "rOprNGfwEbeRWgbNEkqO";
static const char snonce[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char cfirst[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char sfirst[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char cfinal[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char sfinal[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

static struct pg_scram c_first;        /* client after client-first */
static struct pg_scram c_final;        /* client after client-final */
static struct pg_scram_server s_first; /* server after server-first */
static struct pg_scram_secret secret;  /* "pencil", the RFC salt, 4096 */
static int ready;

static void setup(void)
{
    char out[PG_SCRAM_MSG_MAX];
    ASSERT(pg_scram_client_first(&c_first, "user", cnonce, strlen(cnonce), out, sizeof out) > 0);
    c_final = c_first;
    ASSERT(pg_scram_client_parse_server_first(&c_final, sfirst, strlen(sfirst)) == PG_OK);
    ASSERT(pg_scram_client_final(&c_final, "pencil", out, sizeof out) == (int)strlen(cfinal));
    ASSERT(memcmp(out, cfinal, strlen(cfinal)) == 0);
    const uint8_t *salt;
    size_t sl;
    uint32_t it;
    pg_scram_client_salt(&c_final, &salt, &sl, &it);
    ASSERT(pg_scram_secret_from_password(&secret, "pencil", salt, sl, it) == PG_OK);
    ASSERT(pg_scram_server_parse_client_first(&s_first, cfirst, strlen(cfirst)) == PG_OK);
    ASSERT(pg_scram_server_first(&s_first, &secret, snonce, strlen(snonce), out, sizeof out) ==
           (int)strlen(sfirst));
    ready = 1;
}

static int valid(int rc)
{
    return rc == PG_OK || rc == PG_ERR_MALFORMED || rc == PG_ERR_TOO_LARGE ||
           (rc <= PG_ERR_SCRAM_NONCE && rc >= PG_ERR_SCRAM_ARG);
}

static int is(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size < 1)
        return 0;
    int mode = data[0] % 5;
    /* An exact-size copy, so ASan sees reads past the end. */
    size_t n = size - 1;
    char *msg = malloc(n ? n : 1);
    memcpy(msg, data + 1, n);
    char out[PG_SCRAM_MSG_MAX * 2];
    int rc;

    switch (mode) {
    case 0: {
        struct pg_scram c = c_first;
        rc = pg_scram_client_parse_server_first(&c, msg, n);
        ASSERT(valid(rc));
        if (rc == PG_OK) {
            ASSERT(n > strlen(cnonce) + 2 && memcmp(msg + 2, cnonce, strlen(cnonce)) == 0);
            const uint8_t *salt;
            size_t sl;
            uint32_t it;
            pg_scram_client_salt(&c, &salt, &sl, &it);
            ASSERT(sl >= 1 && sl <= PG_SCRAM_SALT_MAX);
            ASSERT(it >= PG_SCRAM_ITER_MIN && it <= PG_SCRAM_ITER_MAX);
            if (it <= 16) {
                int k = pg_scram_client_final(&c, "pencil", out, sizeof out);
                ASSERT(k > 9 && memcmp(out, "c=biws,r=", 9) == 0);
            }
        }
        break;
    }
    case 1: {
        pg_str err;
        rc = pg_scram_client_verify_server_final(&c_final, msg, n, &err);
        ASSERT(valid(rc));
        if (rc == PG_OK)
            ASSERT(n >= strlen(sfinal) && memcmp(msg, sfinal, strlen(sfinal)) == 0);
        if (rc == PG_ERR_SCRAM_SERVER)
            ASSERT(err.p == msg + 2 && err.len > 0 && err.len <= n - 2);
        else
            ASSERT(err.p == NULL && err.len == 0);
        break;
    }
    case 2: {
        struct pg_scram_server s;
        rc = pg_scram_server_parse_client_first(&s, msg, n);
        ASSERT(valid(rc));
        if (rc != PG_OK)
            break;
        ASSERT(s.cbind == 'n' || s.cbind == 'y');
        int k = pg_scram_server_first(&s, &secret, snonce, strlen(snonce), out, sizeof out);
        ASSERT(k > 0);
        /* Our client with the client's nonce accepts our server's answer. */
        struct pg_scram c;
        char cf[PG_SCRAM_MSG_MAX];
        ASSERT(pg_scram_client_first(&c, NULL, s.bare + s.cnonce_off, s.cnonce_len, cf,
                                     sizeof cf) > 0);
        ASSERT(pg_scram_client_parse_server_first(&c, out, (size_t)k) == PG_OK);
        break;
    }
    case 3: {
        struct pg_scram_server s = s_first;
        rc = pg_scram_server_verify_client_final(&s, msg, n);
        ASSERT(valid(rc));
        if (rc == PG_OK) {
            ASSERT(is(msg, n, cfinal));
            int k = pg_scram_server_final(&s, out, sizeof out);
            ASSERT(is(out, (size_t)(k > 0 ? k : 0), sfinal));
        } else {
            ASSERT(pg_scram_server_final(&s, out, sizeof out) == PG_ERR_SCRAM_STATE);
        }
        break;
    }
    default: {
        struct pg_scram_secret a, b;
        rc = pg_scram_secret_parse(&a, msg, n);
        ASSERT(valid(rc));
        if (rc == PG_OK) {
            char txt[PG_SCRAM_SECRET_TEXT_MAX];
            int k = pg_scram_secret_format(&a, txt, sizeof txt);
            ASSERT(k > 0 && (size_t)k <= n);
            ASSERT(pg_scram_secret_parse(&b, txt, (size_t)k) == PG_OK);
            ASSERT(memcmp(&a, &b, sizeof a) == 0);
        }
        break;
    }
    }
    free(msg);
    return 0;
}
