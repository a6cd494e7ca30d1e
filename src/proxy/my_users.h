/* my_users.h - the clients a mysql listener authenticates itself
 * (Listener spec.auth), as mysql_native_password hashes.
 *
 * Built once per generation from plaintext passwords (hashed then) or
 * pasted hashes ("*HEX40", mysql.user's authentication_string). A user
 * that is not listed is checked against a made-up hash derived from its
 * name, so a wrong user costs the same work and gets the same answer as a
 * wrong password (the client cannot tell which users exist). Immutable
 * after build; shared by every worker. */
#ifndef STRAND_MY_USERS_H
#define STRAND_MY_USERS_H

#include <stddef.h>
#include <stdint.h>

struct cfg_listener;
struct my_users;

/* The users of l (borrowed), or NULL with err empty when l has no auth,
 * NULL with err set on failure. The result is the caller's. */
struct my_users *my_users_build(const struct cfg_listener *l, char *err, size_t errlen);
/* Frees u (NULL allowed). */
void my_users_free(struct my_users *u);
/* 1 when user (borrowed) is listed and resp[0..len) is its password's
 * mysql_native_password answer to scramble; else 0, after the same work. */
int my_users_check(const struct my_users *u, const char *user, const uint8_t scramble[20],
                   const uint8_t *resp, size_t len);

#endif
