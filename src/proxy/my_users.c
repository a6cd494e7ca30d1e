/* my_users.c - mysql_native_password hashes of a mysql listener's own
 * users; see my_users.h. */
#include "proxy/my_users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "config/config.h"
#include "proto/mysql/my.h"

struct my_users {
    size_t n;
    const struct cfg_db_user *cfg; /* the listener's, in order */
    uint8_t (*stored)[20];         /* SHA1(SHA1(password)) per user */
    uint8_t mock_key[32];          /* random: keys the made-up hashes of unknown names */
};

/* Borrows l; the result is the caller's. */
struct my_users *my_users_build(const struct cfg_listener *l, char *err, size_t errlen)
{
    if (errlen)
        err[0] = 0;
    if (!l->nauth_users || l->proto != CFG_PROTO_MYSQL)
        return NULL;
    struct my_users *u = calloc(1, sizeof(*u));
    if (!u || !(u->stored = calloc(l->nauth_users, sizeof(*u->stored)))) {
        free(u);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->n = l->nauth_users;
    u->cfg = l->auth_users;
    for (size_t i = 0; i < u->n; i++) {
        const struct cfg_db_user *c = &l->auth_users[i];
        int rc = c->native_hash
                     ? my_native_hash_parse(u->stored[i], c->native_hash, strlen(c->native_hash))
                     : my_native_hash(u->stored[i], c->password, strlen(c->password));
        if (rc != 0) {
            snprintf(err, errlen, "%s:%d: auth user '%s': %s", c->where.file, c->where.line,
                     c->user, c->native_hash ? "bad nativePasswordHash" : "cannot hash the password");
            my_users_free(u);
            return NULL;
        }
    }
    if (RAND_bytes(u->mock_key, sizeof(u->mock_key)) != 1) {
        snprintf(err, errlen, "no randomness for the made-up password hashes");
        my_users_free(u);
        return NULL;
    }
    return u;
}

void my_users_free(struct my_users *u)
{
    if (!u)
        return;
    free(u->stored);
    free(u);
}

/* Borrows everything. */
int my_users_check(const struct my_users *u, const char *user, const uint8_t scramble[20],
                   const uint8_t *resp, size_t len)
{
    uint8_t mock[EVP_MAX_MD_SIZE];
    const uint8_t *stored = NULL;
    for (size_t i = 0; i < u->n && !stored; i++)
        if (strcmp(u->cfg[i].user, user) == 0)
            stored = u->stored[i];
    if (!stored) {
        /* Nobody knows a password for this hash: the check runs and fails. */
        unsigned ml = 0;
        if (!HMAC(EVP_sha1(), u->mock_key, sizeof(u->mock_key), (const unsigned char *)user,
                  strlen(user), mock, &ml))
            memset(mock, 0, sizeof(mock));
        (void)my_native_verify(scramble, mock, resp, len);
        return 0;
    }
    return my_native_verify(scramble, stored, resp, len);
}
