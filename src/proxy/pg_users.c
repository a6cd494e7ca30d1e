/* pg_users.c - SCRAM-SHA-256 secrets of a postgres listener's own users;
 * see pg_users.h. */
#include "proxy/pg_users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "config/config.h"
#include "proto/pg/pg.h"
#include "proto/pg/pg_scram.h"

#define PG_USERS_ITERATIONS 4096u

struct pg_users {
    size_t n;
    const struct cfg_db_user *cfg;  /* the listener's, in order */
    struct pg_scram_secret *secrets;
    struct pg_scram_secret mock;    /* for users not listed (salt made per name) */
    uint8_t mock_key[32];           /* random: keys the per-name salts */
};

/* Borrows l; the result is the caller's. */
struct pg_users *pg_users_build(const struct cfg_listener *l, char *err, size_t errlen)
{
    if (errlen)
        err[0] = 0;
    if (!l->nauth_users)
        return NULL;
    struct pg_users *u = calloc(1, sizeof(*u));
    if (!u || !(u->secrets = calloc(l->nauth_users, sizeof(*u->secrets)))) {
        free(u);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->n = l->nauth_users;
    u->cfg = l->auth_users;
    uint8_t salt[PG_SCRAM_SALT_DEFAULT];
    for (size_t i = 0; i < u->n; i++) {
        const struct cfg_db_user *c = &l->auth_users[i];
        int rc = c->scram_secret
                     ? pg_scram_secret_parse(&u->secrets[i], c->scram_secret, strlen(c->scram_secret))
                     : pg_scram_random(salt, sizeof(salt));
        if (rc == PG_OK && !c->scram_secret)
            rc = pg_scram_secret_from_password(&u->secrets[i], c->password, salt, sizeof(salt),
                                               PG_USERS_ITERATIONS);
        if (rc != PG_OK) {
            snprintf(err, errlen, "%s:%d: auth user '%s': %s", c->where.file, c->where.line,
                     c->user, pg_scram_strerror(rc));
            pg_users_free(u);
            return NULL;
        }
    }
    /* The mock secret's keys are random too: nobody can know its password. */
    uint8_t pw[32];
    char hex[65];
    if (pg_scram_random(salt, sizeof(salt)) != PG_OK || pg_scram_random(pw, sizeof(pw)) != PG_OK ||
        pg_scram_random(u->mock_key, sizeof(u->mock_key)) != PG_OK) {
        snprintf(err, errlen, "no randomness for SCRAM salts");
        pg_users_free(u);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(pw); i++)
        snprintf(hex + 2 * i, 3, "%02x", pw[i]);
    if (pg_scram_secret_from_password(&u->mock, hex, salt, sizeof(salt), PG_USERS_ITERATIONS) !=
        PG_OK) {
        snprintf(err, errlen, "cannot derive a SCRAM secret");
        pg_users_free(u);
        return NULL;
    }
    return u;
}

void pg_users_free(struct pg_users *u)
{
    if (!u)
        return;
    free(u->secrets);
    free(u);
}

/* Borrows u and user; *out is the caller's. */
int pg_users_secret(const struct pg_users *u, const char *user, struct pg_scram_secret *out)
{
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->cfg[i].user, user) == 0) {
            *out = u->secrets[i];
            return 1;
        }
    *out = u->mock;
    uint8_t h[SHA256_DIGEST_LENGTH];
    unsigned hl = 0;
    if (HMAC(EVP_sha256(), u->mock_key, sizeof(u->mock_key), (const unsigned char *)user,
             strlen(user), h, &hl)) {
        out->salt_len = PG_SCRAM_SALT_DEFAULT;
        memcpy(out->salt, h, PG_SCRAM_SALT_DEFAULT);
    }
    return 0;
}
