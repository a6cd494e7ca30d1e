/* pg_scram.h - SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it,
 * for both ends of a login the proxy takes part in:
 *   client side: the proxy logs into a server with configured credentials
 *                (read replicas, health checks);
 *   server side: the proxy checks a client's password against a configured
 *                secret before it picks a backend.
 * Pure functions over the caller's bytes, like pg.h: no I/O, no malloc of
 * ours, state in caller-owned fixed-size structs. OpenSSL does the hashing
 * (PBKDF2, HMAC, SHA-256 may allocate inside OpenSSL; a login is not the
 * hot path). Every message is checked whole against the RFC grammar.
 *
 * What PostgreSQL does and we follow:
 *   - Mechanism "SCRAM-SHA-256" only, no channel binding: the gs2 header is
 *     "n,," (client without binding support) or "y,," (client that could
 *     bind but the server did not offer -PLUS). A client asking for
 *     "p=<type>" is refused with PG_ERR_SCRAM_CBIND; an authorization
 *     identity ("n,a=...,") or a mandatory extension ("m=") with
 *     PG_ERR_SCRAM_UNSUPPORTED.
 *   - The user name in client-first-message is ignored (the server takes
 *     it from the StartupMessage); libpq sends "n=,r=...". Our client
 *     sends what it is given (NULL: empty), escaped as RFC 5802 asks; our
 *     server reads it and ignores it, as PostgreSQL does.
 *   - SASLprep (RFC 4013): PostgreSQL runs it on the password and uses the
 *     raw bytes when it fails (not UTF-8, prohibited characters). Here the
 *     password bytes are always used as given. For a pure ASCII password
 *     that is exactly what PostgreSQL hashes (SASLprep leaves printable
 *     ASCII unchanged, and ASCII control characters make it fail, so the
 *     raw bytes are used), so such passwords always interoperate. A non-ASCII password matches
 *     PostgreSQL only when SASLprep would leave it unchanged (e.g. NFC
 *     text without non-ASCII spaces or soft hyphens) or fails on it; one
 *     that SASLprep would rewrite (NFKC compatibility forms, U+00A0 and
 *     other spaces, "mapped to nothing" characters) gives different keys.
 *     pg_scram_saslprep_exact() tells the two cases apart, so configuration
 *     can warn; for the server side, pasting the verifier from pg_authid
 *     (pg_scram_secret_parse) sidesteps the question.
 *
 * Return values: builders of SCRAM text return its length (no NUL is
 * written), parsers and checks PG_OK; both return a negative PG_ERR_* code
 * on failure (pg.h's PG_ERR_MALFORMED for bad syntax and bad base64,
 * PG_ERR_TOO_LARGE for a message over PG_SCRAM_MSG_MAX or output that does
 * not fit cap, and the PG_ERR_SCRAM_* codes below). pg_scram_strerror()
 * names them for logs. The wire builders at the end follow pg.h: length or
 * -1.
 *
 * Client exchange (the messages travel in pg.h's framing):
 *   server: AuthenticationSASL       pg_be_auth: a.scram_sha256 set
 *   pg_scram_client_first         -> pg_build_sasl_initial("SCRAM-SHA-256")
 *   server: AuthenticationSASLContinue, pg_be_auth: a.data is server-first
 *   pg_scram_client_parse_server_first(a.data)
 *   pg_scram_client_final         -> pg_build_sasl_response
 *   server: AuthenticationSASLFinal, pg_be_auth: a.data is server-final
 *   pg_scram_client_verify_server_final(a.data)
 *   server: AuthenticationOk (an ErrorResponse 28P01 on a wrong password)
 *
 * Server exchange:
 *   pg_build_auth_sasl            -> AuthenticationSASL
 *   client: SASLInitialResponse,  pg_fe_sasl_initial: mechanism, data
 *   pg_scram_server_parse_client_first(data)
 *   pg_scram_server_first         -> pg_build_auth_sasl_continue
 *   client: SASLResponse          (its body is the client-final: m->body)
 *   pg_scram_server_verify_client_final(m->body)
 *   pg_scram_server_final         -> pg_build_auth_sasl_final, then
 *                                    pg_build_auth_ok
 *   On PG_ERR_SCRAM_PROOF answer as PostgreSQL does: ErrorResponse FATAL
 *   28P01 "password authentication failed for user ...". For an unknown
 *   user run the exchange anyway with a secret made from random bytes, as
 *   PostgreSQL does, so the answer does not reveal which users exist. */
#ifndef STRAND_PG_SCRAM_H
#define STRAND_PG_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#include "proto/pg/pg.h"

#define PG_SCRAM_MECH "SCRAM-SHA-256"
#define PG_SCRAM_KEY_LEN 32         /* SHA-256 output: keys, proofs, signatures */
#define PG_SCRAM_ITER_MIN 1u
/* A server-chosen count is work we do (PBKDF2 on the caller's thread): at
 * about 0.4 us per iteration, 10^7 is several seconds. PostgreSQL's default
 * is 4096. */
#define PG_SCRAM_ITER_MAX 10000000u
#define PG_SCRAM_ITER_DEFAULT 4096u
#define PG_SCRAM_SALT_DEFAULT 16u   /* PostgreSQL's salt length */
#define PG_SCRAM_SALT_MAX 64u       /* decoded salt bytes accepted */
#define PG_SCRAM_NONCE_MAX 128u     /* each side's nonce part, in characters */
#define PG_SCRAM_NONCE_LEN 24u      /* what pg_scram_nonce writes (18 random bytes) */
/* Longest SCRAM message accepted or stored. PostgreSQL's are under 200
 * bytes; the bound keeps the state structs fixed-size. */
#define PG_SCRAM_MSG_MAX 512u
/* Room for a verifier string from pg_scram_secret_format, NUL included. */
#define PG_SCRAM_SECRET_TEXT_MAX 256u

enum {
    PG_ERR_SCRAM_NONCE = -40,       /* server nonce does not extend ours, or the
                                     * client-final nonce is not the joined one */
    PG_ERR_SCRAM_ITER = -41,        /* iteration count outside ITER_MIN..ITER_MAX */
    PG_ERR_SCRAM_CBIND = -42,       /* channel binding asked for ("p="), or the
                                     * c= attribute does not echo the gs2 header */
    PG_ERR_SCRAM_UNSUPPORTED = -43, /* authzid ("a=") or a mandatory extension ("m=") */
    PG_ERR_SCRAM_PROOF = -44,       /* ClientProof wrong: wrong password */
    PG_ERR_SCRAM_SIGNATURE = -45,   /* ServerSignature wrong: server does not know
                                     * the password (or a man in the middle) */
    PG_ERR_SCRAM_SERVER = -46,      /* server-final carries e=<server-error> */
    PG_ERR_SCRAM_STATE = -47,       /* step called out of order */
    PG_ERR_SCRAM_CRYPTO = -48,      /* OpenSSL failed (no RNG, FIPS refusal) */
    PG_ERR_SCRAM_ARG = -49,         /* invalid argument: nonce with ',' or
                                     * non-printables, empty nonce, salt size */
};

/* A human-readable sentence for a PG_OK / PG_ERR_* code, for logs. Returns
 * a string of static storage (never freed). */
const char *pg_scram_strerror(int code);

/* ---- Keys ------------------------------------------------------------------ */

/* SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i); ClientKey =
 * HMAC(SaltedPassword, "Client Key"); StoredKey = SHA-256(ClientKey);
 * ServerKey = HMAC(SaltedPassword, "Server Key"). */
struct pg_scram_keys {
    uint8_t client_key[PG_SCRAM_KEY_LEN];
    uint8_t stored_key[PG_SCRAM_KEY_LEN];
    uint8_t server_key[PG_SCRAM_KEY_LEN];
};

/* Derives the keys of password (used as raw bytes, see SASLprep above) for
 * salt[0..salt_len) and iterations (ITER_MIN..ITER_MAX; salt_len
 * 1..SALT_MAX). This is the costly step: a client that logs in repeatedly
 * with the same salt and count may keep the result and call
 * pg_scram_client_final_keys. Borrows password and salt; k: the caller's. */
int pg_scram_derive(const char *password, const uint8_t *salt, size_t salt_len,
                    uint32_t iterations, struct pg_scram_keys *k);

/* 1 when password is pure ASCII, so the bytes we hash are exactly the ones
 * PostgreSQL's SASLprep hands to PBKDF2; 0 when it holds non-ASCII bytes
 * (see above: it interoperates only if SASLprep leaves it unchanged or
 * fails on it). Borrows password. */
int pg_scram_saslprep_exact(const char *password);

/* What a server keeps per user (pg_authid.rolpassword holds the same). */
struct pg_scram_secret {
    uint32_t iterations;
    uint8_t salt_len;
    uint8_t salt[PG_SCRAM_SALT_MAX];
    uint8_t stored_key[PG_SCRAM_KEY_LEN];
    uint8_t server_key[PG_SCRAM_KEY_LEN];
};

/* The secret of a plaintext password with the given salt (fill it from
 * pg_scram_random; PG_SCRAM_SALT_DEFAULT bytes) and count. Borrows password
 * and salt; s: the caller's. */
int pg_scram_secret_from_password(struct pg_scram_secret *s, const char *password,
                                  const uint8_t *salt, size_t salt_len, uint32_t iterations);

/* Parses PostgreSQL's verifier text[0..n),
 * "SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>",
 * as SELECT rolpassword FROM pg_authid shows it, so a user can paste it
 * instead of a plaintext password. Keys must decode to 32 bytes, the salt to
 * 1..SALT_MAX, the count be decimal in range; nothing may follow. An "md5..."
 * hash or a plain password is PG_ERR_MALFORMED. Borrows text; s: the
 * caller's (unspecified on error). */
int pg_scram_secret_parse(struct pg_scram_secret *s, const char *text, size_t n);

/* Writes the verifier text of s, NUL-terminated, into out[0..cap) and
 * returns its length (without the NUL). Borrows s; out: the caller's. */
int pg_scram_secret_format(const struct pg_scram_secret *s, char *out, size_t cap);

/* ---- Randomness (the only calls that are not deterministic) ----------------- */

/* Fills p[0..n) from RAND_bytes: salts, and secrets for unknown users.
 * p: the caller's. PG_OK or PG_ERR_SCRAM_CRYPTO. */
int pg_scram_random(void *p, size_t n);

/* Writes a fresh nonce, PG_SCRAM_NONCE_LEN base64 characters (18 random
 * bytes, as PostgreSQL makes them) and a NUL, into out[0..cap). Returns the
 * length. Tests pass fixed nonces instead. out: the caller's. */
int pg_scram_nonce(char *out, size_t cap);

/* ---- Client side ------------------------------------------------------------ */

/* Client state: zeroed by pg_scram_client_first. It holds the two first
 * messages because the proof signs them (AuthMessage), and after the final
 * step the ServerSignature the server must show. */
struct pg_scram {
    uint8_t step;                   /* internal: 0 none, then one per message */
    uint8_t salt_len;
    uint16_t bare_len;              /* client-first-message-bare in bare[] */
    uint16_t cnonce_len;            /* our nonce: the tail of bare[] */
    uint16_t sfirst_len;            /* server-first-message in sfirst[] */
    uint16_t nonce_len;             /* joined nonce: sfirst + 2 ("r=" comes first) */
    uint32_t iterations;            /* from server-first */
    uint8_t salt[PG_SCRAM_SALT_MAX];/* from server-first, decoded */
    uint8_t server_sig[PG_SCRAM_KEY_LEN];
    char bare[PG_SCRAM_MSG_MAX];
    char sfirst[PG_SCRAM_MSG_MAX];
};

/* Starts an exchange: resets sc and writes the client-first-message
 * "n,,n=<user>,r=<nonce>" into out[0..cap). user may be NULL (PostgreSQL
 * ignores it; libpq sends it empty); ',' and '=' in it are escaped as
 * "=2C" and "=3D". nonce[0..nonce_len): printable ASCII other than ',',
 * 1..NONCE_MAX characters (pg_scram_nonce makes one), else PG_ERR_SCRAM_ARG.
 * Borrows user and nonce; sc, out: the caller's. */
int pg_scram_client_first(struct pg_scram *sc, const char *user, const char *nonce,
                          size_t nonce_len, char *out, size_t cap);

/* Reads the server-first-message msg[0..n) ("r=<nonce>,s=<salt>,i=<count>"
 * and optional extensions): the nonce must be ours followed by at least one
 * server character (PG_ERR_SCRAM_NONCE), the salt base64 of 1..SALT_MAX bytes,
 * the count within bounds (PG_ERR_SCRAM_ITER). An "e=" message is
 * PG_ERR_SCRAM_SERVER, "m=" PG_ERR_SCRAM_UNSUPPORTED. Stores msg in sc (it
 * is signed later), so msg may be released afterwards. sc: the caller's;
 * msg: borrowed. */
int pg_scram_client_parse_server_first(struct pg_scram *sc, const char *msg, size_t n);

/* The salt and count the server asked for, to look up keys kept from an
 * earlier login (valid after parse_server_first). Borrows sc; *salt points
 * into it. */
void pg_scram_client_salt(const struct pg_scram *sc, const uint8_t **salt, size_t *salt_len,
                          uint32_t *iterations);

/* Writes the client-final-message "c=biws,r=<nonce>,p=<ClientProof>" into
 * out[0..cap) and remembers the ServerSignature to expect. The _keys form
 * takes keys derived before (pg_scram_derive with pg_scram_client_salt's
 * values) and skips PBKDF2. sc, out: the caller's; password, k: borrowed. */
int pg_scram_client_final(struct pg_scram *sc, const char *password, char *out, size_t cap);
int pg_scram_client_final_keys(struct pg_scram *sc, const struct pg_scram_keys *k, char *out,
                               size_t cap);

/* Checks the server-final-message msg[0..n): "v=<ServerSignature>" must
 * match (compared in constant time) for PG_OK; a wrong one is
 * PG_ERR_SCRAM_SIGNATURE. "e=<error>" is PG_ERR_SCRAM_SERVER with *error set
 * to the error text (when error is not NULL; else {NULL, 0}). sc, msg:
 * borrowed; *error points into msg. */
int pg_scram_client_verify_server_final(const struct pg_scram *sc, const char *msg, size_t n,
                                        pg_str *error);

/* The same exchange in one call per Authentication message, for callers
 * that keep no keys: pg_scram_first = pg_scram_nonce + client_first with no
 * user; pg_scram_final = parse_server_first(sf) + client_final(password);
 * pg_scram_verify = verify_server_final. Return as above (length, PG_OK or
 * a negative code). sc, out: the caller's; password, sf: borrowed. */
int pg_scram_first(struct pg_scram *sc, char *out, size_t cap);
int pg_scram_final(struct pg_scram *sc, const char *password, const char *sf, size_t n,
                   char *out, size_t cap);
int pg_scram_verify(const struct pg_scram *sc, const char *sf, size_t n);

/* ---- Server side ------------------------------------------------------------ */

/* Server state: zeroed by pg_scram_server_parse_client_first. Holds the
 * client-first-message-bare and our server-first (the proof signs both),
 * a copy of the user's keys (so the configuration may be swapped during the
 * exchange) and the ServerSignature to send. */
struct pg_scram_server {
    uint8_t step;                   /* internal: 0 none, then one per message */
    char cbind;                     /* gs2 flag the client sent: 'n' or 'y' */
    uint16_t bare_len;              /* client-first-message-bare in bare[] */
    uint16_t cnonce_off, cnonce_len;/* client nonce inside bare[] */
    uint16_t sfirst_len;            /* server-first-message in sfirst[] */
    uint16_t nonce_len;             /* joined nonce: sfirst + 2 */
    uint8_t stored_key[PG_SCRAM_KEY_LEN];
    uint8_t server_key[PG_SCRAM_KEY_LEN];
    uint8_t server_sig[PG_SCRAM_KEY_LEN];
    char bare[PG_SCRAM_MSG_MAX];
    char sfirst[PG_SCRAM_MSG_MAX];
};

/* Reads the client-first-message msg[0..n) (the SASLInitialResponse data):
 * gs2 header "n,," or "y,," (PG_ERR_SCRAM_CBIND for "p=...",
 * PG_ERR_SCRAM_UNSUPPORTED for an authzid or "m="), then "n=<user>" (any
 * value, ignored), "r=<nonce>" (printable, 1..NONCE_MAX), optional
 * extensions. Resets ss first. ss: the caller's; msg: borrowed. */
int pg_scram_server_parse_client_first(struct pg_scram_server *ss, const char *msg, size_t n);

/* Writes the server-first-message "r=<client nonce><nonce>,s=<salt>,i=<count>"
 * into out[0..cap) from the user's secret; nonce[0..nonce_len) is our part
 * (pg_scram_nonce; printable, no ',', 1..NONCE_MAX). Copies the keys of
 * secret into ss. ss, out: the caller's; secret, nonce: borrowed. */
int pg_scram_server_first(struct pg_scram_server *ss, const struct pg_scram_secret *secret,
                          const char *nonce, size_t nonce_len, char *out, size_t cap);

/* Reads the client-final-message msg[0..n) (the SASLResponse body) and
 * checks it: c= must be the base64 of the gs2 header the client sent
 * (PG_ERR_SCRAM_CBIND), r= the joined nonce (PG_ERR_SCRAM_NONCE), p= last,
 * 32 bytes; then the proof against StoredKey, in constant time:
 * PG_ERR_SCRAM_PROOF for a wrong password. PG_OK means the client knows
 * the password. ss: the caller's; msg: borrowed. */
int pg_scram_server_verify_client_final(struct pg_scram_server *ss, const char *msg, size_t n);

/* Writes the server-final-message "v=<ServerSignature>" into out[0..cap);
 * only after verify_client_final returned PG_OK. Borrows ss; out: the
 * caller's. */
int pg_scram_server_final(const struct pg_scram_server *ss, char *out, size_t cap);

/* ---- Wire messages ---------------------------------------------------------- */
/* pg.h already decodes the others: pg_be_auth (AuthenticationSASL with its
 * mechanism list and scram_sha256 flag, SASLContinue and SASLFinal with
 * their payload in a.data) and pg_fe_sasl_initial (SASLInitialResponse);
 * a SASLResponse body is the payload itself. Builders return the message
 * length, or -1 when it does not fit cap or n is over PG_MESSAGE_MAX. */

/* 'p' SASLInitialResponse: mechanism name, Int32 length, data[0..n).
 * buf: the caller's; mech, data: borrowed. */
int pg_build_sasl_initial(char *buf, size_t cap, const char *mech, const char *data, size_t n);
/* 'p' SASLResponse: data[0..n). buf: the caller's; data: borrowed. */
int pg_build_sasl_response(char *buf, size_t cap, const char *data, size_t n);
/* 'R' AuthenticationSASL offering "SCRAM-SHA-256" only. buf: the caller's. */
int pg_build_auth_sasl(char *buf, size_t cap);
/* 'R' AuthenticationSASLContinue / AuthenticationSASLFinal with data[0..n).
 * buf: the caller's; data: borrowed. */
int pg_build_auth_sasl_continue(char *buf, size_t cap, const char *data, size_t n);
int pg_build_auth_sasl_final(char *buf, size_t cap, const char *data, size_t n);

#endif
