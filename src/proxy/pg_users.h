/* pg_users.h - the clients a postgres listener authenticates itself
 * (Listener spec.auth), as SCRAM-SHA-256 secrets.
 *
 * Built once per generation: plaintext passwords are turned into secrets
 * with a fresh salt and 4096 iterations (PostgreSQL's defaults), pasted
 * verifiers are parsed. A user that is not listed gets a made-up secret,
 * so the exchange runs to the end and fails the same way as a wrong
 * password (the client cannot tell which users exist). Immutable after
 * build; shared by every worker. */
#ifndef STRAND_PG_USERS_H
#define STRAND_PG_USERS_H

#include <stddef.h>

struct cfg_listener;
struct pg_users;
struct pg_scram_secret;

/* The users of l (borrowed), or NULL with err empty when l has no auth,
 * NULL with err set on failure. The result is the caller's. */
struct pg_users *pg_users_build(const struct cfg_listener *l, char *err, size_t errlen);
/* Frees u (NULL allowed). */
void pg_users_free(struct pg_users *u);
/* Copies the secret for user (borrowed) into *out (the caller's) and
 * returns 1 when the user is listed; else fills *out with a made-up secret
 * whose salt is derived from the name (so asking twice for one unknown
 * name looks the same, and two unknown names differ, as for real users)
 * and returns 0. */
int pg_users_secret(const struct pg_users *u, const char *user, struct pg_scram_secret *out);

#endif
