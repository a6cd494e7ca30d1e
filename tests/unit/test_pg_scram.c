/* test_pg_scram.c - unit tests for SCRAM-SHA-256 (src/proto/pg/pg_scram.h).
 *
 * The RFC 7677 section 3 exchange on both sides (every message byte for
 * byte), our client talking to our server in-process for several
 * passwords and through the wire messages, wrong passwords, tampered
 * signatures, malformed messages of each kind, the verifier string, and
 * the wire builders. Messages under test are copied into exact-size
 * allocations so AddressSanitizer sees any read past their end.
 *
 * With PGSCRAM_LIVE="host port user password [database]" set it also logs
 * into a real PostgreSQL with our client (and once with a wrong password,
 * expecting 28P01); without it no server is needed. Prints
 * "N passed, M failed". */
#include "proto/pg/pg_scram.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"



static void *allocs[4096];
static size_t nallocs;

/* An exact-size heap copy of s (no NUL), freed at exit. Borrows s; the copy
 * is owned by allocs[]. */
static const char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    if (nallocs < sizeof allocs / sizeof allocs[0])
        allocs[nallocs++] = p;
    return p;
}

#define D(s) dup_exact((s), strlen(s)), strlen(s)

/* 1 if buf[0..n) is the string want. Borrows both. */
static int same(const char *buf, int n, const char *want)
{
    return n == (int)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

/* RFC 7677 section 3. */
static const char rfc_cnonce[] = "rOprNGfwEbeRWgbNEkqO";
static const char rfc_snonce[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char rfc_cfirst[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char rfc_sfirst[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char rfc_cfinal[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char rfc_sfinal[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
static const uint8_t rfc_salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                     0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
/* The same user and salt as PostgreSQL stores it (keys computed from the
 * RFC's inputs). */
static const char rfc_verifier[] =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
/* Made by PostgreSQL 15 itself (initdb --pwfile, CREATE ROLE ... PASSWORD),
 * read back from pg_authid. */
static const struct {
    const char *password, *verifier;
} pg15[] = {
    {"strand-pg15",
     "SCRAM-SHA-256$4096:k8UrowL2bH6PIArVpA7afg==$6IGbNi5VeN/qKuCwnPeJrLbIJfh8bve+T8WbkTlP5Kg=:"
     "VnSQaNQI16bO/Zm6og/NXHE6UJkft9ETiUpdpZsXCqE="},
    {"p,a=s$s:w0rd!",
     "SCRAM-SHA-256$4096:jpEYrSMf2DtOKth9X/zQdQ==$lL0/Ynd/qVXdpqoy910fLItM7ntqg0DPniQaBoEU4kc=:"
     "rUut8/VzQDFr2/V2lQn9kP3eTwo+Qk87IXx0FwL1YYY="},
};

static void test_rfc_client(void)
{
    struct pg_scram sc;
    char out[512];
    int n = pg_scram_client_first(&sc, "user", rfc_cnonce, strlen(rfc_cnonce), out, sizeof out);
    CHECK(same(out, n, rfc_cfirst));
    CHECK(pg_scram_client_parse_server_first(&sc, D(rfc_sfirst)) == PG_OK);
    const uint8_t *salt;
    size_t sl;
    uint32_t it;
    pg_scram_client_salt(&sc, &salt, &sl, &it);
    CHECK(sl == 16 && memcmp(salt, rfc_salt, 16) == 0 && it == 4096);
    struct pg_scram sc2 = sc; /* the same state, for the precomputed-keys form */
    n = pg_scram_client_final(&sc, "pencil", out, sizeof out);
    CHECK(same(out, n, rfc_cfinal));
    pg_str err = {"x", 1};
    CHECK(pg_scram_client_verify_server_final(&sc, D(rfc_sfinal), &err) == PG_OK);
    CHECK(err.p == NULL && err.len == 0);
    CHECK(pg_scram_verify(&sc, D(rfc_sfinal)) == PG_OK);

    struct pg_scram_keys k;
    CHECK(pg_scram_derive("pencil", salt, sl, it, &k) == PG_OK);
    n = pg_scram_client_final_keys(&sc2, &k, out, sizeof out);
    CHECK(same(out, n, rfc_cfinal));
    CHECK(pg_scram_client_verify_server_final(&sc2, D(rfc_sfinal), NULL) == PG_OK);
    /* A second final on the same state is out of order. */
    CHECK(pg_scram_client_final(&sc2, "pencil", out, sizeof out) == PG_ERR_SCRAM_STATE);

    /* Too small output buffers, at every step. */
    CHECK(pg_scram_client_first(&sc, "user", rfc_cnonce, strlen(rfc_cnonce), out,
                                strlen(rfc_cfirst) - 1) == PG_ERR_TOO_LARGE);
    n = pg_scram_client_first(&sc, "user", rfc_cnonce, strlen(rfc_cnonce), out,
                              strlen(rfc_cfirst));
    CHECK(same(out, n, rfc_cfirst));
    CHECK(pg_scram_client_parse_server_first(&sc, D(rfc_sfirst)) == PG_OK);
    CHECK(pg_scram_client_final_keys(&sc, &k, out, strlen(rfc_cfinal) - 1) == PG_ERR_TOO_LARGE);
    n = pg_scram_client_final_keys(&sc, &k, out, strlen(rfc_cfinal));
    CHECK(same(out, n, rfc_cfinal));
}

static void test_rfc_server(void)
{
    struct pg_scram_secret sec, sec2;
    CHECK(pg_scram_secret_from_password(&sec, "pencil", rfc_salt, 16, 4096) == PG_OK);
    char txt[PG_SCRAM_SECRET_TEXT_MAX];
    int n = pg_scram_secret_format(&sec, txt, sizeof txt);
    CHECK(same(txt, n, rfc_verifier) && txt[n] == 0);
    CHECK(pg_scram_secret_format(&sec, txt, strlen(rfc_verifier)) == PG_ERR_TOO_LARGE);
    CHECK(pg_scram_secret_parse(&sec2, D(rfc_verifier)) == PG_OK);
    CHECK(memcmp(&sec, &sec2, sizeof sec) == 0);

    struct pg_scram_server ss;
    char out[512];
    CHECK(pg_scram_server_parse_client_first(&ss, D(rfc_cfirst)) == PG_OK);
    n = pg_scram_server_first(&ss, &sec2, rfc_snonce, strlen(rfc_snonce), out, sizeof out);
    CHECK(same(out, n, rfc_sfirst));
    CHECK(pg_scram_server_final(&ss, out, sizeof out) == PG_ERR_SCRAM_STATE);
    CHECK(pg_scram_server_verify_client_final(&ss, D(rfc_cfinal)) == PG_OK);
    n = pg_scram_server_final(&ss, out, sizeof out);
    CHECK(same(out, n, rfc_sfinal));
    CHECK(pg_scram_server_final(&ss, out, strlen(rfc_sfinal) - 1) == PG_ERR_TOO_LARGE);
    /* The server-first does not fit: nothing is kept. */
    CHECK(pg_scram_server_parse_client_first(&ss, D(rfc_cfirst)) == PG_OK);
    CHECK(pg_scram_server_first(&ss, &sec, rfc_snonce, strlen(rfc_snonce), out,
                                strlen(rfc_sfirst) - 1) == PG_ERR_TOO_LARGE);
    n = pg_scram_server_first(&ss, &sec, rfc_snonce, strlen(rfc_snonce), out,
                              strlen(rfc_sfirst));
    CHECK(same(out, n, rfc_sfirst));
}

/* One whole exchange of our client with our server, through the wire
 * messages and pg.h's decoders. password_c is what the client knows, the
 * server holds sec. Returns the server's verdict; *client_ok is set when
 * the client accepted the server-final. password_c, sec: borrowed;
 * client_ok: the caller's. */
static int exchange(const char *password_c, const struct pg_scram_secret *sec, int compat,
                    int *client_ok)
{
    struct pg_scram sc;
    struct pg_scram_server ss;
    char scram[PG_SCRAM_MSG_MAX], wire[PG_SCRAM_MSG_MAX + 64], nonce[PG_SCRAM_NONCE_LEN + 1];
    struct pg_msg m;
    struct pg_auth a;
    *client_ok = 0;

    /* Server: AuthenticationSASL; client reads the offer. */
    int w = pg_build_auth_sasl(wire, sizeof wire);
    CHECK(w > 0 && pg_frame(wire, (size_t)w, PG_MESSAGE_MAX, &m) == PG_OK);
    CHECK(pg_be_auth(&m, &a) == PG_OK && a.code == PG_AUTH_SASL && a.scram_sha256 &&
          !a.scram_sha256_plus);

    /* Client: SASLInitialResponse. */
    int n;
    if (compat) {
        n = pg_scram_first(&sc, scram, sizeof scram);
    } else {
        CHECK(pg_scram_nonce(nonce, sizeof nonce) == PG_SCRAM_NONCE_LEN);
        CHECK(strlen(nonce) == PG_SCRAM_NONCE_LEN);
        n = pg_scram_client_first(&sc, "", nonce, strlen(nonce), scram, sizeof scram);
    }
    CHECK(n > 0);
    w = pg_build_sasl_initial(wire, sizeof wire, PG_SCRAM_MECH, scram, (size_t)n);
    pg_str mech, data;
    int has;
    CHECK(w > 0 && pg_frame(wire, (size_t)w, PG_MESSAGE_MAX, &m) == PG_OK);
    CHECK(pg_fe_sasl_initial(&m, &mech, &data, &has) == PG_OK && has &&
          mech.len == strlen(PG_SCRAM_MECH) && memcmp(mech.p, PG_SCRAM_MECH, mech.len) == 0);

    /* Server: AuthenticationSASLContinue. */
    int rc = pg_scram_server_parse_client_first(&ss, dup_exact(data.p, data.len), data.len);
    CHECK(rc == PG_OK);
    CHECK(pg_scram_nonce(nonce, sizeof nonce) == PG_SCRAM_NONCE_LEN);
    n = pg_scram_server_first(&ss, sec, nonce, strlen(nonce), scram, sizeof scram);
    CHECK(n > 0);
    w = pg_build_auth_sasl_continue(wire, sizeof wire, scram, (size_t)n);
    CHECK(w > 0 && pg_frame(wire, (size_t)w, PG_MESSAGE_MAX, &m) == PG_OK);
    CHECK(pg_be_auth(&m, &a) == PG_OK && a.code == PG_AUTH_SASL_CONTINUE);

    /* Client: SASLResponse. */
    if (compat) {
        n = pg_scram_final(&sc, password_c, dup_exact(a.data.p, a.data.len), a.data.len, scram,
                           sizeof scram);
    } else {
        CHECK(pg_scram_client_parse_server_first(&sc, dup_exact(a.data.p, a.data.len),
                                                 a.data.len) == PG_OK);
        n = pg_scram_client_final(&sc, password_c, scram, sizeof scram);
    }
    CHECK(n > 0);
    w = pg_build_sasl_response(wire, sizeof wire, scram, (size_t)n);
    CHECK(w > 0 && pg_frame(wire, (size_t)w, PG_MESSAGE_MAX, &m) == PG_OK && m.type == 'p');

    /* Server: verdict, then AuthenticationSASLFinal. */
    rc = pg_scram_server_verify_client_final(&ss, dup_exact(m.body, m.body_len), m.body_len);
    if (rc != PG_OK) {
        CHECK(pg_scram_server_final(&ss, scram, sizeof scram) == PG_ERR_SCRAM_STATE);
        return rc;
    }
    n = pg_scram_server_final(&ss, scram, sizeof scram);
    CHECK(n > 0);
    w = pg_build_auth_sasl_final(wire, sizeof wire, scram, (size_t)n);
    CHECK(w > 0 && pg_frame(wire, (size_t)w, PG_MESSAGE_MAX, &m) == PG_OK);
    CHECK(pg_be_auth(&m, &a) == PG_OK && a.code == PG_AUTH_SASL_FINAL);
    *client_ok = (compat ? pg_scram_verify(&sc, dup_exact(a.data.p, a.data.len), a.data.len)
                         : pg_scram_client_verify_server_final(
                               &sc, dup_exact(a.data.p, a.data.len), a.data.len, NULL)) == PG_OK;
    return rc;
}

static void test_round_trip(void)
{
    static const char *pw[] = {
        "pencil",
        "",
        "p,a=s$s:w0rd with spaces and \"quotes\"",
        "p\xc3\xa4ssw\xc3\xb6rd", /* non-ASCII: used as raw bytes on both sides */
        ("0123456789012345678901234567890123456789012345678901234567890123456789"
         "0123456789012345678901234567890123456789012345678901234567890123456789"),
    };
    static const uint32_t iters[] = {4096, 1, 4096, 2, 4096};
    for (size_t i = 0; i < sizeof pw / sizeof pw[0]; i++) {
        uint8_t salt[PG_SCRAM_SALT_DEFAULT];
        CHECK(pg_scram_random(salt, sizeof salt) == PG_OK);
        struct pg_scram_secret sec;
        CHECK(pg_scram_secret_from_password(&sec, pw[i], salt, sizeof salt, iters[i]) == PG_OK);
        int ok;
        CHECK(exchange(pw[i], &sec, (int)(i & 1), &ok) == PG_OK && ok);
        /* The same through the verifier text a user would paste. */
        char txt[PG_SCRAM_SECRET_TEXT_MAX];
        struct pg_scram_secret sec2;
        int n = pg_scram_secret_format(&sec, txt, sizeof txt);
        CHECK(n > 0 && pg_scram_secret_parse(&sec2, txt, (size_t)n) == PG_OK);
        CHECK(exchange(pw[i], &sec2, (int)!(i & 1), &ok) == PG_OK && ok);
        /* Wrong password: the server refuses, nothing reaches the client. */
        CHECK(exchange("pencil2", &sec, (int)(i & 1), &ok) == PG_ERR_SCRAM_PROOF && !ok);
    }
    CHECK(pg_scram_saslprep_exact("pencil") == 1);
    CHECK(pg_scram_saslprep_exact("") == 1);
    CHECK(pg_scram_saslprep_exact("p\xc3\xa4ssw\xc3\xb6rd") == 0);

    /* Secrets PostgreSQL 15 made: our derivation gives the same keys. */
    for (size_t i = 0; i < sizeof pg15 / sizeof pg15[0]; i++) {
        struct pg_scram_secret pg, ours;
        CHECK(pg_scram_secret_parse(&pg, D(pg15[i].verifier)) == PG_OK);
        CHECK(pg.iterations == 4096 && pg.salt_len == 16);
        CHECK(pg_scram_secret_from_password(&ours, pg15[i].password, pg.salt, pg.salt_len,
                                            pg.iterations) == PG_OK);
        CHECK(memcmp(&pg, &ours, sizeof pg) == 0);
        int ok;
        CHECK(exchange(pg15[i].password, &pg, 0, &ok) == PG_OK && ok);
    }
}

/* Runs our client up to the server-first-message sf; returns the parse
 * result. sc: the caller's; sf: borrowed. */
static int client_reads(struct pg_scram *sc, const char *sf)
{
    char out[256];
    pg_scram_client_first(sc, "user", rfc_cnonce, strlen(rfc_cnonce), out, sizeof out);
    return pg_scram_client_parse_server_first(sc, D(sf));
}

static void test_client_errors(void)
{
    struct pg_scram sc;
    char out[512];
    const char *cn = rfc_cnonce;

    /* Arguments. */
    CHECK(pg_scram_client_first(&sc, NULL, "", 0, out, sizeof out) == PG_ERR_SCRAM_ARG);
    CHECK(pg_scram_client_first(&sc, NULL, "a,b", 3, out, sizeof out) == PG_ERR_SCRAM_ARG);
    CHECK(pg_scram_client_first(&sc, NULL, "a b", 3, out, sizeof out) == PG_ERR_SCRAM_ARG);
    int n = pg_scram_client_first(&sc, "a,b=c", "xyz", 3, out, sizeof out);
    CHECK(same(out, n, "n,,n=a=2Cb=3Dc,r=xyz"));
    n = pg_scram_client_first(&sc, NULL, "xyz", 3, out, sizeof out);
    CHECK(same(out, n, "n,,n=,r=xyz"));

    /* Out of order. */
    memset(&sc, 0, sizeof sc);
    CHECK(pg_scram_client_parse_server_first(&sc, D(rfc_sfirst)) == PG_ERR_SCRAM_STATE);
    CHECK(pg_scram_client_final(&sc, "pencil", out, sizeof out) == PG_ERR_SCRAM_STATE);
    CHECK(pg_scram_client_verify_server_final(&sc, D(rfc_sfinal), NULL) == PG_ERR_SCRAM_STATE);
    CHECK(client_reads(&sc, rfc_sfirst) == PG_OK);
    CHECK(pg_scram_client_parse_server_first(&sc, D(rfc_sfirst)) == PG_ERR_SCRAM_STATE);
    CHECK(pg_scram_client_verify_server_final(&sc, D(rfc_sfinal), NULL) == PG_ERR_SCRAM_STATE);

    /* server-first-message. */
    static const struct {
        const char *sf;
        int want;
    } bad[] = {
        {"", PG_ERR_MALFORMED},
        {"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PG_ERR_MALFORMED},           /* no r= */
        {"r=rOprNGfwEbeRWgbNEkqOxx,i=4096", PG_ERR_MALFORMED},             /* no s= */
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==", PG_ERR_MALFORMED}, /* no i= */
        {"s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxx,i=4096", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7so!sUEjb6gQ==,i=4096", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gR==,i=4096", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=,i=4096", PG_ERR_MALFORMED},          /* empty salt */
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=abc", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", PG_ERR_MALFORMED},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", PG_ERR_SCRAM_ITER},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001", PG_ERR_SCRAM_ITER},
        {"r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999",
         PG_ERR_SCRAM_ITER},
        {"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PG_ERR_SCRAM_NONCE},
        {"r=XOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PG_ERR_SCRAM_NONCE},
        {"r=rOprNG,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PG_ERR_SCRAM_NONCE},
        {"r=rOprNGfwEbeRWgbNEkqOx y,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PG_ERR_MALFORMED},
        {"m=ext,r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
         PG_ERR_SCRAM_UNSUPPORTED},
        {"e=other-error", PG_ERR_SCRAM_SERVER},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = client_reads(&sc, bad[i].sf);
        if (rc != bad[i].want)
            fprintf(stderr, "server-first %zu \"%s\": %d, want %d\n", i, bad[i].sf, rc,
                    bad[i].want);
        CHECK(rc == bad[i].want);
        /* A refused message leaves the state where it was. */
        CHECK(pg_scram_client_parse_server_first(&sc, D(rfc_sfirst)) == PG_OK);
    }
    /* Extensions after i= are allowed; a NUL byte and an oversized message are not. */
    CHECK(client_reads(&sc, "r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=1") ==
          PG_OK);
    static const char withnul[] = "r=rOprNGfwEbeRWgbNEkqOxx\0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1";
    client_reads(&sc, rfc_sfirst);
    memset(&sc, 0, sizeof sc);
    pg_scram_client_first(&sc, NULL, cn, strlen(cn), out, sizeof out);
    CHECK(pg_scram_client_parse_server_first(&sc, dup_exact(withnul, sizeof withnul - 1),
                                             sizeof withnul - 1) == PG_ERR_MALFORMED);
    char big[PG_SCRAM_MSG_MAX + 2];
    n = snprintf(big, sizeof big, "r=%s", cn);
    memset(big + n, 'x', sizeof big - 1 - (size_t)n);
    big[sizeof big - 1] = 0;
    CHECK(pg_scram_client_parse_server_first(&sc, D(big)) == PG_ERR_TOO_LARGE);

    /* server-final-message. */
    static const struct {
        const char *sf;
        int want;
    } fin[] = {
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=", PG_ERR_MALFORMED}, /* pad bits */
        {"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", PG_ERR_SCRAM_SIGNATURE},
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4A", PG_ERR_MALFORMED}, /* 33 bytes */
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9", PG_ERR_MALFORMED},
        {"v=", PG_ERR_MALFORMED},
        {"", PG_ERR_MALFORMED},
        {"x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", PG_ERR_MALFORMED},
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,", PG_ERR_MALFORMED},
        {"e=", PG_ERR_MALFORMED},
        {"e=invalid-proof", PG_ERR_SCRAM_SERVER},
    };
    for (size_t i = 0; i < sizeof fin / sizeof fin[0]; i++) {
        struct pg_scram s2;
        client_reads(&s2, rfc_sfirst);
        pg_scram_client_final(&s2, "pencil", out, sizeof out);
        pg_str err;
        int rc = pg_scram_client_verify_server_final(&s2, D(fin[i].sf), &err);
        if (rc != fin[i].want)
            fprintf(stderr, "server-final %zu \"%s\": %d, want %d\n", i, fin[i].sf, rc,
                    fin[i].want);
        CHECK(rc == fin[i].want);
        if (rc == PG_ERR_SCRAM_SERVER)
            CHECK(err.len == 13 && memcmp(err.p, "invalid-proof", 13) == 0);
        else
            CHECK(err.p == NULL);
        /* The good signature, with an extension, still verifies. */
        CHECK(pg_scram_client_verify_server_final(
                  &s2, D("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=y"), NULL) == PG_OK);
    }
    /* The wrong password gives a proof the RFC server rejects, and a
     * different expected signature. */
    client_reads(&sc, rfc_sfirst);
    n = pg_scram_client_final(&sc, "pencil!", out, sizeof out);
    CHECK(n > 0 && !same(out, n, rfc_cfinal));
    CHECK(pg_scram_client_verify_server_final(&sc, D(rfc_sfinal), NULL) ==
          PG_ERR_SCRAM_SIGNATURE);
}

/* Our server after the client-first cfirst and the RFC server-first. ss:
 * the caller's; cfirst: borrowed. */
static void server_ready(struct pg_scram_server *ss, const char *cfirst)
{
    struct pg_scram_secret sec;
    char out[512];
    CHECK(pg_scram_secret_parse(&sec, D(rfc_verifier)) == PG_OK);
    CHECK(pg_scram_server_parse_client_first(ss, D(cfirst)) == PG_OK);
    CHECK(pg_scram_server_first(ss, &sec, rfc_snonce, strlen(rfc_snonce), out, sizeof out) > 0);
}

static void test_server_errors(void)
{
    struct pg_scram_server ss;
    static const struct {
        const char *cf;
        int want;
    } first[] = {
        {"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", PG_OK},
        {"y,,n=user,r=rOprNGfwEbeRWgbNEkqO", PG_OK},
        {"n,,n=,r=abc", PG_OK},
        {"n,,n=*,r=abc", PG_OK},
        {"n,,n=a=b,r=abc,x=ext", PG_OK},
        {"p=tls-server-end-point,,n=,r=abc", PG_ERR_SCRAM_CBIND},
        {"p=tls-unique,,n=,r=abc", PG_ERR_SCRAM_CBIND},
        {"n,a=admin,n=,r=abc", PG_ERR_SCRAM_UNSUPPORTED},
        {"n,,m=ext,n=,r=abc", PG_ERR_SCRAM_UNSUPPORTED},
        {"x,,n=,r=abc", PG_ERR_MALFORMED},
        {"nn,,n=,r=abc", PG_ERR_MALFORMED},
        {"n", PG_ERR_MALFORMED},
        {"n,", PG_ERR_MALFORMED},
        {"n,,", PG_ERR_MALFORMED},
        {"n,x,n=,r=abc", PG_ERR_MALFORMED},
        {"n,,r=abc", PG_ERR_MALFORMED},
        {"n,,n=", PG_ERR_MALFORMED},
        {"n,,n=,r=", PG_ERR_MALFORMED},
        {"n,,n=,r=a b", PG_ERR_MALFORMED},
        {"n,,n=,r=abc,", PG_ERR_MALFORMED},
        {"n,,n=,r=abc,x", PG_ERR_MALFORMED},
        {"n,,n=,x=1,r=abc", PG_ERR_MALFORMED},
        {"", PG_ERR_MALFORMED},
        {"n,,n=,r=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o", PG_ERR_MALFORMED}, /* too many pieces */
    };
    for (size_t i = 0; i < sizeof first / sizeof first[0]; i++) {
        int rc = pg_scram_server_parse_client_first(&ss, D(first[i].cf));
        if (rc != first[i].want)
            fprintf(stderr, "client-first %zu \"%s\": %d, want %d\n", i, first[i].cf, rc,
                    first[i].want);
        CHECK(rc == first[i].want);
    }
    CHECK(strstr(pg_scram_strerror(PG_ERR_SCRAM_CBIND), "channel binding") != NULL);
    char big[PG_SCRAM_NONCE_MAX + 20];
    int n = snprintf(big, sizeof big, "n,,n=,r=");
    memset(big + n, 'a', PG_SCRAM_NONCE_MAX + 1);
    big[n + PG_SCRAM_NONCE_MAX + 1] = 0;
    CHECK(pg_scram_server_parse_client_first(&ss, D(big)) == PG_ERR_MALFORMED);
    big[n + PG_SCRAM_NONCE_MAX] = 0;
    CHECK(pg_scram_server_parse_client_first(&ss, D(big)) == PG_OK);

    /* server-first arguments and order. */
    struct pg_scram_secret sec;
    char out[512];
    CHECK(pg_scram_secret_parse(&sec, D(rfc_verifier)) == PG_OK);
    memset(&ss, 0, sizeof ss);
    CHECK(pg_scram_server_first(&ss, &sec, "abc", 3, out, sizeof out) == PG_ERR_SCRAM_STATE);
    CHECK(pg_scram_server_verify_client_final(&ss, D(rfc_cfinal)) == PG_ERR_SCRAM_STATE);
    CHECK(pg_scram_server_parse_client_first(&ss, D(rfc_cfirst)) == PG_OK);
    CHECK(pg_scram_server_first(&ss, &sec, "", 0, out, sizeof out) == PG_ERR_SCRAM_ARG);
    CHECK(pg_scram_server_first(&ss, &sec, "a,b", 3, out, sizeof out) == PG_ERR_SCRAM_ARG);
    struct pg_scram_secret bad = sec;
    bad.iterations = 0;
    CHECK(pg_scram_server_first(&ss, &bad, "abc", 3, out, sizeof out) == PG_ERR_SCRAM_ITER);
    bad = sec;
    bad.salt_len = 0;
    CHECK(pg_scram_server_first(&ss, &bad, "abc", 3, out, sizeof out) == PG_ERR_SCRAM_ARG);

    /* client-final-message. */
    static const char *nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    static const char *proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    static const struct {
        const char *fmt; /* %s: the joined nonce, then the proof */
        int want;
    } fin[] = {
        {"c=biws,r=%s,%s", PG_OK},
        {"c=eSws,r=%s,%s", PG_ERR_SCRAM_CBIND},  /* "y,," but the client sent "n,," */
        {"c=cD10bHMtdW5pcXVlLCw=,r=%s,%s", PG_ERR_SCRAM_CBIND},
        {"c=,r=%s,%s", PG_ERR_SCRAM_CBIND},
        {"c=bi!s,r=%s,%s", PG_ERR_MALFORMED},
        {"r=%s,%s", PG_ERR_MALFORMED},
        {"c=biws,%2$s", PG_ERR_MALFORMED},
        {"c=biws,r=%s", PG_ERR_MALFORMED},
        {"c=biws,%2$s,r=%1$s", PG_ERR_MALFORMED},
        {"c=biws,r=%sX,%s", PG_ERR_SCRAM_NONCE},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO,%2$s", PG_ERR_SCRAM_NONCE},
        {"c=biws,r=%s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ", PG_ERR_MALFORMED},
        {"c=biws,r=%s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And==", PG_ERR_MALFORMED},
        {"c=biws,r=%s,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", PG_ERR_SCRAM_PROOF},
        {"c=biws,r=%s,x=ext,%s", PG_ERR_SCRAM_PROOF}, /* signed text changed */
        {"c=biws,r=%s,%s,x=ext", PG_ERR_MALFORMED},   /* proof not last */
        {"c=biws,r=%1$s,%2$s,%2$s", PG_ERR_MALFORMED},
    };
    for (size_t i = 0; i < sizeof fin / sizeof fin[0]; i++) {
        char cf[512];
        snprintf(cf, sizeof cf, fin[i].fmt, nonce, proof);
        server_ready(&ss, rfc_cfirst);
        int rc = pg_scram_server_verify_client_final(&ss, D(cf));
        if (rc != fin[i].want)
            fprintf(stderr, "client-final %zu \"%s\": %d, want %d\n", i, cf, rc, fin[i].want);
        CHECK(rc == fin[i].want);
        CHECK((pg_scram_server_final(&ss, out, sizeof out) > 0) == (rc == PG_OK));
    }
    /* A "y,," client must echo "y,,". */
    server_ready(&ss, "y,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    char cf[512];
    snprintf(cf, sizeof cf, "c=biws,r=%s,%s", nonce, proof);
    CHECK(pg_scram_server_verify_client_final(&ss, D(cf)) == PG_ERR_SCRAM_CBIND);
    /* The RFC proof is bound to "n,,", so "c=eSws" with it fails the proof. */
    snprintf(cf, sizeof cf, "c=eSws,r=%s,%s", nonce, proof);
    CHECK(pg_scram_server_verify_client_final(&ss, D(cf)) == PG_ERR_SCRAM_PROOF);
}

static void test_secret(void)
{
    struct pg_scram_secret s;
    static const struct {
        const char *t;
        int want;
    } v[] = {
        {"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_OK},
        {"SCRAM-SHA-256$1:AA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_OK},
        {"SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_ERR_SCRAM_ITER},
        {"SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_ERR_MALFORMED},
        {"SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_ERR_MALFORMED}, /* no salt */
        {"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q=:"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_ERR_MALFORMED}, /* 31-byte key */
        {"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=x", PG_ERR_MALFORMED}, /* trailing */
        {"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_ERR_MALFORMED}, /* no ':' */
        {"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==:WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_ERR_MALFORMED},
        {"SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", PG_ERR_MALFORMED},
        {"md5a3556571e93b0d20722ba62be61e8c2d", PG_ERR_MALFORMED},
        {"pencil", PG_ERR_MALFORMED},
        {"SCRAM-SHA-256$", PG_ERR_MALFORMED},
        {"", PG_ERR_MALFORMED},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int rc = pg_scram_secret_parse(&s, D(v[i].t));
        if (rc != v[i].want)
            fprintf(stderr, "verifier %zu: %d, want %d\n", i, rc, v[i].want);
        CHECK(rc == v[i].want);
    }
    CHECK(pg_scram_secret_parse(&s, D(rfc_verifier)) == PG_OK && s.iterations == 4096 &&
          s.salt_len == 16 && memcmp(s.salt, rfc_salt, 16) == 0);
    /* Derivation arguments. */
    struct pg_scram_keys k;
    CHECK(pg_scram_derive("x", rfc_salt, 0, 4096, &k) == PG_ERR_SCRAM_ARG);
    CHECK(pg_scram_derive("x", rfc_salt, 16, 0, &k) == PG_ERR_SCRAM_ITER);
    CHECK(pg_scram_derive("x", rfc_salt, 16, PG_SCRAM_ITER_MAX + 1, &k) == PG_ERR_SCRAM_ITER);
    CHECK(pg_scram_secret_from_password(&s, "x", rfc_salt, PG_SCRAM_SALT_MAX + 1, 1) ==
          PG_ERR_SCRAM_ARG);
    /* Nonces: printable, distinct. */
    char a[PG_SCRAM_NONCE_LEN + 1], b[PG_SCRAM_NONCE_LEN + 1];
    CHECK(pg_scram_nonce(a, sizeof a) == PG_SCRAM_NONCE_LEN);
    CHECK(pg_scram_nonce(b, sizeof b) == PG_SCRAM_NONCE_LEN && strcmp(a, b) != 0);
    CHECK(pg_scram_nonce(a, PG_SCRAM_NONCE_LEN) == PG_ERR_TOO_LARGE);
    for (int i = -49; i <= 0; i++)
        CHECK(pg_scram_strerror(i) != NULL);
}

static void test_wire(void)
{
    char buf[64];
    int n = pg_build_sasl_initial(buf, sizeof buf, "SCRAM-SHA-256", "n,,n=,r=ab", 10);
    static const char want_init[] = "p\0\0\0\x20SCRAM-SHA-256\0\0\0\0\x0an,,n=,r=ab";
    CHECK(n == (int)sizeof want_init - 1 && memcmp(buf, want_init, (size_t)n) == 0);
    CHECK(pg_build_sasl_initial(buf, (size_t)n - 1, "SCRAM-SHA-256", "n,,n=,r=ab", 10) == -1);
    CHECK(pg_build_sasl_initial(buf, sizeof buf, "", "x", 1) == -1);
    n = pg_build_sasl_response(buf, sizeof buf, "c=biws", 6);
    CHECK(n == 11 && memcmp(buf, "p\0\0\0\x0a" "c=biws", 11) == 0);
    CHECK(pg_build_sasl_response(buf, 10, "c=biws", 6) == -1);
    n = pg_build_auth_sasl(buf, sizeof buf);
    static const char want_sasl[] = "R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0";
    CHECK(n == (int)sizeof want_sasl && memcmp(buf, want_sasl, sizeof want_sasl) == 0);
    CHECK(pg_build_auth_sasl(buf, (size_t)n - 1) == -1);
    n = pg_build_auth_sasl_continue(buf, sizeof buf, "r=x", 3);
    CHECK(n == 12 && memcmp(buf, "R\0\0\0\x0b\0\0\0\x0br=x", 12) == 0);
    n = pg_build_auth_sasl_final(buf, sizeof buf, "v=x", 3);
    CHECK(n == 12 && memcmp(buf, "R\0\0\0\x0b\0\0\0\x0cv=x", 12) == 0);
    CHECK(pg_build_auth_sasl_final(buf, 11, "v=x", 3) == -1);
}

/* ---- Live login (PGSCRAM_LIVE="host port user password [database]") ------- */

/* A connected TCP socket (the caller closes it), or -1. Borrows both. */
static int live_connect(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *ai;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Writes p[0..n) whole. 0 or -1. Borrows p. */
static int send_all(int fd, const char *p, int n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, (size_t)n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (int)k;
    }
    return 0;
}

/* Reads until buf[0..*have) starts with a whole typed message *m (m->body
 * points into buf, the caller's). 0 or -1. */
static int read_msg(int fd, char *buf, size_t cap, size_t *have, struct pg_msg *m)
{
    for (;;) {
        int rc = pg_frame(buf, *have, cap, m);
        if (rc == PG_OK)
            return 0;
        if (rc != PG_INCOMPLETE)
            return -1;
        ssize_t k = read(fd, buf + *have, cap - *have);
        if (k <= 0)
            return -1;
        *have += (size_t)k;
    }
}

/* Logs in; returns 1 on AuthenticationOk + ReadyForQuery, 0 on an
 * ErrorResponse (*sqlstate filled), -1 on anything else. Borrows the
 * strings; sqlstate: the caller's. */
static int live_login(const char *host, const char *port, const char *user, const char *pw,
                      const char *db, char sqlstate[6])
{
    int fd = live_connect(host, port);
    if (fd < 0) {
        fprintf(stderr, "live: cannot connect to %s:%s\n", host, port);
        return -1;
    }
    char out[1024], scram[PG_SCRAM_MSG_MAX], in[8192];
    size_t have = 0;
    struct pg_param p[2] = {{{"user", 4}, {user, strlen(user)}},
                            {{"database", 8}, {db, strlen(db)}}};
    int n = pg_build_startup(out, sizeof out, 3, 0, p, 2), result = -1, verified = 0;
    struct pg_scram sc;
    if (n < 0 || send_all(fd, out, n))
        goto done;
    for (;;) {
        struct pg_msg m;
        struct pg_auth a;
        if (read_msg(fd, in, sizeof in, &have, &m))
            goto done;
        if (m.type == 'E') {
            struct pg_error e;
            if (pg_be_error(&m, &e) == PG_OK && e.sqlstate.len == 5) {
                memcpy(sqlstate, e.sqlstate.p, 5);
                sqlstate[5] = 0;
                fprintf(stderr, "live: server error %s: %.*s\n", sqlstate, (int)e.message.len,
                        e.message.p);
                result = 0;
            }
            goto done;
        }
        if (m.type == 'Z') {
            result = verified ? 1 : -1;
            goto done;
        }
        if (m.type == 'R') {
            int rc = pg_be_auth(&m, &a);
            if (rc != PG_OK)
                goto done;
            switch (a.code) {
            case PG_AUTH_SASL:
                if (!a.scram_sha256)
                    goto done;
                char nonce[PG_SCRAM_NONCE_LEN + 1];
                n = pg_scram_nonce(nonce, sizeof nonce);
                n = pg_scram_client_first(&sc, NULL, nonce, (size_t)n, scram, sizeof scram);
                n = n < 0 ? n
                          : pg_build_sasl_initial(out, sizeof out, PG_SCRAM_MECH, scram, (size_t)n);
                break;
            case PG_AUTH_SASL_CONTINUE:
                rc = pg_scram_client_parse_server_first(&sc, a.data.p, a.data.len);
                n = rc != PG_OK ? rc : pg_scram_client_final(&sc, pw, scram, sizeof scram);
                n = n < 0 ? n : pg_build_sasl_response(out, sizeof out, scram, (size_t)n);
                break;
            case PG_AUTH_SASL_FINAL:
                rc = pg_scram_client_verify_server_final(&sc, a.data.p, a.data.len, NULL);
                if (rc != PG_OK) {
                    fprintf(stderr, "live: %s\n", pg_scram_strerror(rc));
                    goto done;
                }
                verified = 1;
                n = 0;
                break;
            case PG_AUTH_OK:
                if (!verified) /* the server skipped SCRAM: not what we test */
                    goto done;
                n = 0;
                break;
            default:
                fprintf(stderr, "live: server asks for auth method %u\n", a.code);
                goto done;
            }
            if (n < 0) {
                fprintf(stderr, "live: %s\n", pg_scram_strerror(n));
                goto done;
            }
            if (n > 0 && send_all(fd, out, n))
                goto done;
        }
        memmove(in, in + m.len, have - m.len);
        have -= m.len;
    }
done:
    n = pg_build_terminate(out, sizeof out);
    if (result == 1 && n > 0)
        send_all(fd, out, n);
    close(fd);
    return result;
}

static void test_live(void)
{
    const char *env = getenv("PGSCRAM_LIVE");
    if (!env || !*env)
        return;
    char host[256], port[32], user[128], pw[256], db[128] = "postgres";
    if (sscanf(env, "%255s %31s %127s %255s %127s", host, port, user, pw, db) < 4) {
        fprintf(stderr, "PGSCRAM_LIVE wants \"host port user password [database]\"\n");
        CHECK(0);
        return;
    }
    char state[6] = "";
    int r = live_login(host, port, user, pw, db, state);
    fprintf(stderr, "live: login as %s with the right password: %s\n", user,
            r == 1 ? "AuthenticationOk, ReadyForQuery" : "FAILED");
    CHECK(r == 1);
    char wrong[300];
    snprintf(wrong, sizeof wrong, "%s-wrong", pw);
    state[0] = 0;
    r = live_login(host, port, user, wrong, db, state);
    fprintf(stderr, "live: login with a wrong password: %s\n",
            r == 0 ? state : "unexpected outcome");
    CHECK(r == 0 && strcmp(state, "28P01") == 0);
}

int main(void)
{
    test_rfc_client();
    test_rfc_server();
    test_round_trip();
    test_client_errors();
    test_server_errors();
    test_secret();
    test_wire();
    test_live();
    for (size_t i = 0; i < nallocs; i++)
        free(allocs[i]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
