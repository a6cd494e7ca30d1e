/* pg.h - PostgreSQL frontend/backend protocol v3 codec.
 *
 * Pure functions over the caller's bytes, in the style of h1.h: nothing is
 * allocated, nothing is read or written on a socket, no global state. Parsed
 * strings (pg_str) point into the caller's buffer. The proxy frames each
 * direction with pg_frame() / pg_frame_startup(), then decodes the messages
 * it cares about with the pg_fe_*() (client -> server) and pg_be_*()
 * (server -> client) functions; everything else is forwarded untouched.
 *
 * Wire shape: after the startup phase every message is a type byte, an
 * Int32 length (big-endian, counting itself but not the type byte) and
 * length - 4 body bytes. The client's first message(s) - StartupMessage,
 * SSLRequest, GSSENCRequest, CancelRequest - have no type byte; the four are
 * told apart by the Int32 after the length. The same type letter means
 * different messages in the two directions ('D' Describe vs DataRow, 'C'
 * Close vs CommandComplete, 'E' Execute vs ErrorResponse, 'S' Sync vs
 * ParameterStatus, 'H' Flush vs CopyOutResponse), so decode by direction.
 *
 * Return values: PG_OK (0) on success, PG_INCOMPLETE when more bytes are
 * needed (framing only), or a negative PG_ERR_* code. Every decoder checks
 * the whole body: strings must be NUL-terminated inside it, counts must match
 * the bytes present and no bytes may follow the last field (the server
 * itself rejects trailing bytes, so a proxy that accepted them would read a
 * message differently from the server). Builders return the message length
 * they wrote, or -1 when it does not fit in cap bytes (buf is then
 * unspecified) or an argument is invalid (a string holding a NUL). */
#ifndef STRAND_PG_H
#define STRAND_PG_H

#include <stddef.h>
#include <stdint.h>

/* A byte range inside a caller's buffer; not NUL-terminated (the NUL the
 * wire carries is not counted). Missing: {NULL, 0}. */
typedef struct {
    const char *p;
    size_t len;
} pg_str;

enum {
    PG_OK = 0,
    PG_INCOMPLETE = -1,   /* framing: call again with more bytes */
    PG_ERR_MALFORMED = -2,/* bad length word, missing NUL, counts off, trailing bytes */
    PG_ERR_TOO_LARGE = -3,/* length over the caller's max_len */
    PG_ERR_VERSION = -4,  /* startup: protocol major version other than 3 (answer 08P01 /
                           * 0A000 with an ErrorResponse, as the server does) */
    PG_ERR_TYPE = -5,     /* decoder called on a message of another type, or an
                           * Authentication subtype it does not know */
};

/* Protocol constants. */
#define PG_PROTO(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))
#define PG_PROTO_30 PG_PROTO(3, 0)   /* 196608 */
#define PG_PROTO_32 PG_PROTO(3, 2)   /* PostgreSQL 18: variable-length cancel keys */
#define PG_CODE_CANCEL 80877102u     /* 1234.5678 */
#define PG_CODE_SSL 80877103u        /* 1234.5679 */
#define PG_CODE_GSSENC 80877104u     /* 1234.5680 */
/* The server refuses startup packets longer than this (MAX_STARTUP_PACKET_LENGTH);
 * a sensible max_len for pg_frame_startup(). */
#define PG_STARTUP_MAX 10000u
/* The server's own limit for any message (MaxAllocSize - 1, just under 1 GiB);
 * a sensible max_len for CopyData and DataRow. */
#define PG_MESSAGE_MAX 0x3fffffffu
#define PG_CANCEL_KEY_MIN 4
#define PG_CANCEL_KEY_MAX 256

/* ---- Framing ------------------------------------------------------------ */

/* One framed message. For startup-phase messages type is 0 and hdr_len 4. */
struct pg_msg {
    uint8_t type;       /* type byte, 0 for an untyped startup-phase message */
    uint8_t hdr_len;    /* 5 (typed) or 4 (untyped): bytes before the body */
    size_t len;         /* whole message: hdr_len + body_len */
    const char *body;   /* after the length word; valid only when complete */
    size_t body_len;
};

/* Frames one typed message at buf[0..len). max_len bounds the whole message
 * (type byte and length word included); it is capped at 1 + INT32_MAX.
 * Returns PG_OK with *m filled (m->len bytes to consume), PG_INCOMPLETE when
 * the message is not complete yet, PG_ERR_MALFORMED for a length word < 4 or
 * with the sign bit set, PG_ERR_TOO_LARGE over max_len. The header checks
 * are made as soon as 5 bytes are in, so a too large or negative length is
 * reported before its body arrives. Borrows buf; m->body points into it. */
int pg_frame(const char *buf, size_t len, size_t max_len, struct pg_msg *m);

/* Like pg_frame but needs only the 5 header bytes: fills m->type, m->len
 * and m->body_len (m->body is NULL) so a proxy can stream a large message
 * (CopyData, DataRow) without holding all of it. Same errors. Borrows buf. */
int pg_frame_header(const char *buf, size_t len, size_t max_len, struct pg_msg *m);

/* Frames the untyped first message of a client (length word >= 8, so that
 * the protocol/request code is present). Same returns as pg_frame; use
 * max_len = PG_STARTUP_MAX. Borrows buf. */
int pg_frame_startup(const char *buf, size_t len, size_t max_len, struct pg_msg *m);

/* 1 if c is a message type a v3 client (pg_fe_type_known) or server
 * (pg_be_type_known) sends after startup. A strict proxy refuses others. */
int pg_fe_type_known(uint8_t c);
int pg_be_type_known(uint8_t c);

/* ---- Startup phase (client, untyped) ------------------------------------ */

enum pg_startup_kind {
    PG_STARTUP_MESSAGE = 1, /* StartupMessage: version + parameters */
    PG_STARTUP_SSL,         /* SSLRequest: answer 'S' (TLS follows) or 'N' */
    PG_STARTUP_GSSENC,      /* GSSENCRequest: answer 'G' or 'N' */
    PG_STARTUP_CANCEL,      /* CancelRequest: pid + secret key, no answer */
};

struct pg_param {
    pg_str name;  /* never empty */
    pg_str value; /* may be empty */
};

#define PG_REPL_NONE 0
#define PG_REPL_PHYSICAL 1 /* replication=true/on/yes/1 */
#define PG_REPL_LOGICAL 2  /* replication=database */

struct pg_startup {
    enum pg_startup_kind kind;
    uint16_t major, minor;   /* StartupMessage: protocol version */
    struct pg_param *params; /* in: caller's array of max_params entries; not owned */
    size_t nparams;          /* out: parameters found (all of them, also when more
                              * than max_params: only the first max_params are stored) */
    pg_str user, database, application_name, options, replication;
    int replication_mode;    /* PG_REPL_*; unknown replication values: PHYSICAL */
    uint32_t pid;            /* CancelRequest */
    pg_str cancel_key;       /* CancelRequest: 4..256 bytes */
};

/* Decodes a message framed by pg_frame_startup. The parameters are
 * name/value C-string pairs ended by one NUL, which must be the last byte;
 * names must be non-empty and no name may repeat (the server lets the last
 * copy win, so a proxy checking the first "user" would be fooled).
 * Protocol major != 3 (e.g. the old 2.0, or an unknown 1234.x request code)
 * is PG_ERR_VERSION; any 3.x minor is accepted (the caller negotiates, see
 * pg_build_negotiate). SSL/GSSENC requests must be exactly 8 bytes, a
 * CancelRequest 12 + 4..256. Borrows m; strings point into its body. */
int pg_parse_startup(const struct pg_msg *m, struct pg_startup *s, size_t max_params);

/* ---- Frontend (client -> server) typed messages ------------------------- */

/* 'Q' Query: the SQL text. Also 'f' CopyFail (error text) and a cleartext or
 * MD5 'p' PasswordMessage: one C string filling the body. */
int pg_fe_query(const struct pg_msg *m, pg_str *sql);
int pg_fe_copy_fail(const struct pg_msg *m, pg_str *reason);
int pg_fe_password(const struct pg_msg *m, pg_str *password);

/* 'P' Parse. */
struct pg_parse {
    pg_str name;      /* prepared statement; empty = unnamed */
    pg_str query;
    uint16_t nparams; /* parameter type OIDs given (Int32 each, not decoded) */
};
int pg_fe_parse(const struct pg_msg *m, struct pg_parse *p);

/* 'B' Bind: portal and statement names; parameters and formats are walked
 * (lengths checked, -1 = NULL) but not decoded. */
struct pg_bind {
    pg_str portal, statement;
    uint16_t nparam_formats, nparams, nresult_formats;
};
int pg_fe_bind(const struct pg_msg *m, struct pg_bind *b);

/* 'D' Describe and 'C' Close: *kind is 'S' (statement) or 'P' (portal). */
int pg_fe_describe(const struct pg_msg *m, char *kind, pg_str *name);
int pg_fe_close(const struct pg_msg *m, char *kind, pg_str *name);

/* 'E' Execute: portal and row limit (0 = no limit). */
int pg_fe_execute(const struct pg_msg *m, pg_str *portal, uint32_t *max_rows);

/* 'F' FunctionCall: the function OID; arguments walked, not decoded. */
int pg_fe_function_call(const struct pg_msg *m, uint32_t *oid, uint16_t *nargs);

/* 'p' SASLInitialResponse: mechanism name and the client-first message
 * (has_data 0 when the length was -1). SASLResponse and GSSResponse bodies
 * are opaque: use m->body directly. */
int pg_fe_sasl_initial(const struct pg_msg *m, pg_str *mechanism, pg_str *data, int *has_data);

/* 1 if m is a typed frontend message whose body must be empty and is:
 * 'S' Sync, 'H' Flush, 'X' Terminate, 'c' CopyDone. 0 otherwise. */
int pg_fe_is_empty(const struct pg_msg *m, uint8_t type);

/* ---- Backend (server -> client) messages -------------------------------- */

enum pg_auth_code {
    PG_AUTH_OK = 0,
    PG_AUTH_KERBEROS_V5 = 2,
    PG_AUTH_CLEARTEXT = 3,
    PG_AUTH_MD5 = 5,
    PG_AUTH_GSS = 7,
    PG_AUTH_GSS_CONTINUE = 8,
    PG_AUTH_SSPI = 9,
    PG_AUTH_SASL = 10,
    PG_AUTH_SASL_CONTINUE = 11,
    PG_AUTH_SASL_FINAL = 12,
};

struct pg_auth {
    uint32_t code;     /* enum pg_auth_code */
    uint8_t salt[4];   /* MD5 */
    pg_str data;       /* SASL: the mechanism list (C strings ended by an empty one,
                        * walk with pg_cstr_next); SASL_CONTINUE / SASL_FINAL /
                        * GSS_CONTINUE: the opaque payload */
    int scram_sha256;      /* SASL: "SCRAM-SHA-256" offered */
    int scram_sha256_plus; /* SASL: "SCRAM-SHA-256-PLUS" offered (channel binding) */
};
/* 'R' Authentication*. Unknown codes are PG_ERR_TYPE. Borrows m. */
int pg_be_auth(const struct pg_msg *m, struct pg_auth *a);

/* Walks a list of C strings (SASL mechanisms, NegotiateProtocolVersion
 * options): returns 1 and sets *item while items remain; 0 at an empty
 * string (the SASL list's terminator), at the end of *rest, or on a missing
 * NUL. *rest advances past each item. Borrows. */
int pg_cstr_next(pg_str *rest, pg_str *item);

/* 'S' ParameterStatus. */
int pg_be_param_status(const struct pg_msg *m, pg_str *name, pg_str *value);

/* 'K' BackendKeyData: 4-byte key in 3.0, 4..256 bytes from 3.2 on.
 * *key32 is the first four key bytes (the whole 3.0 key). */
int pg_be_key_data(const struct pg_msg *m, uint32_t *pid, pg_str *key, uint32_t *key32);

/* 'Z' ReadyForQuery: *status 'I' idle, 'T' in a transaction, 'E' in a
 * failed transaction; anything else is malformed. */
int pg_be_ready(const struct pg_msg *m, char *status);

/* 'E' ErrorResponse and 'N' NoticeResponse: (code byte, C string) fields
 * ended by a zero byte, which must be the last byte. */
struct pg_error {
    pg_str severity;   /* 'S' (localized) */
    pg_str severity_v; /* 'V' (never localized; 9.6+) */
    pg_str sqlstate;   /* 'C': five characters */
    pg_str message;    /* 'M' */
    pg_str detail;     /* 'D' */
    pg_str hint;       /* 'H' */
    size_t nfields;    /* all fields, known or not */
};
int pg_be_error(const struct pg_msg *m, struct pg_error *e);
/* Walks the fields of an 'E'/'N' body: start with *rest = the body; returns
 * 1 with *code and *value for each field, 0 at the terminator or when the
 * rest is malformed. Borrows. */
int pg_error_next(pg_str *rest, char *code, pg_str *value);

/* 'C' CommandComplete. rows is parsed for the tags that carry a count:
 * "SELECT n", "INSERT oid n", "UPDATE n", "DELETE n", "MERGE n", "COPY n",
 * "MOVE n", "FETCH n". verb is the tag without its numbers ("INSERT",
 * "CREATE TABLE", ...). */
struct pg_command_complete {
    pg_str tag;
    pg_str verb;
    int has_rows;
    uint64_t rows;
    uint32_t oid;      /* INSERT only (always 0 since PostgreSQL 12) */
};
int pg_be_command_complete(const struct pg_msg *m, struct pg_command_complete *c);
/* The same on a bare tag (no message around it). Borrows tag. */
int pg_command_tag_parse(pg_str tag, struct pg_command_complete *c);

/* 'T' RowDescription: column count; every column descriptor is walked. */
int pg_be_row_description(const struct pg_msg *m, uint16_t *ncols);
/* 'D' DataRow: column count; every value length checked (-1 = NULL). */
int pg_be_data_row(const struct pg_msg *m, uint16_t *ncols);
/* 't' ParameterDescription: parameter count. */
int pg_be_param_description(const struct pg_msg *m, uint16_t *nparams);

/* 'G' CopyInResponse, 'H' CopyOutResponse, 'W' CopyBothResponse. */
struct pg_copy_response {
    uint8_t format; /* 0 text, 1 binary */
    uint16_t ncols;
};
int pg_be_copy_response(const struct pg_msg *m, struct pg_copy_response *c);

/* 'A' NotificationResponse. */
int pg_be_notification(const struct pg_msg *m, uint32_t *pid, pg_str *channel,
                       pg_str *payload);

/* 'v' NegotiateProtocolVersion: newest minor version the server supports
 * and the startup options ("_pq_.*") it did not recognise: noptions C
 * strings in *options (no empty terminator; pg_cstr_next walks them). */
int pg_be_negotiate(const struct pg_msg *m, uint32_t *minor, uint32_t *noptions,
                    pg_str *options);

/* 1 if m is a backend message whose body must be empty and is: '1'
 * ParseComplete, '2' BindComplete, '3' CloseComplete, 'n' NoData, 'I'
 * EmptyQueryResponse, 's' PortalSuspended, 'c' CopyDone. */
int pg_be_is_empty(const struct pg_msg *m, uint8_t type);

/* ---- Builders ------------------------------------------------------------ */
/* Each writes one whole message into buf[0..cap) and returns its length, or
 * -1 when it does not fit or a string argument is invalid. Borrow all
 * arguments; NUL-terminated strings unless they are pg_str. */

/* ErrorResponse ('E') with S, V, C and M fields (detail/hint when not NULL).
 * Policy refusals: "ERROR", "42501" (insufficient_privilege); the
 * connection stays usable and the proxy must follow with ReadyForQuery
 * when it answers in place of the server. Other useful codes: 08006
 * connection_failure, 57P01 admin_shutdown, 53300 too_many_connections,
 * 08P01 protocol_violation, 53400 configuration_limit_exceeded (rate
 * limits). type 'N' builds a NoticeResponse. sqlstate must be 5 chars. */
int pg_build_error(char *buf, size_t cap, const char *severity, const char *sqlstate,
                   const char *message);
int pg_build_error_ex(char *buf, size_t cap, uint8_t type, const char *severity,
                      const char *sqlstate, const char *message, const char *detail,
                      const char *hint);

int pg_build_ready(char *buf, size_t cap, char status);          /* 'Z', I/T/E */
int pg_build_ssl_refuse(char *buf, size_t cap);                  /* the single byte 'N' */
int pg_build_auth_ok(char *buf, size_t cap);                     /* 'R' code 0 */
int pg_build_auth_md5(char *buf, size_t cap, const uint8_t salt[4]); /* 'R' code 5 */
int pg_build_param_status(char *buf, size_t cap, const char *name, const char *value);
/* 'K': key of key_len bytes (4 for protocol 3.0, up to 256 for 3.2). */
int pg_build_key_data(char *buf, size_t cap, uint32_t pid, const void *key, size_t key_len);
int pg_build_command_complete(char *buf, size_t cap, const char *tag);
int pg_build_query(char *buf, size_t cap, const char *sql);      /* 'Q' */
int pg_build_terminate(char *buf, size_t cap);                   /* 'X' */
int pg_build_sync(char *buf, size_t cap);                        /* 'S' */
/* 'v': the server answer to a startup asking for a newer minor version or
 * unknown "_pq_." options. */
int pg_build_negotiate(char *buf, size_t cap, uint32_t minor, const pg_str *options,
                       size_t noptions);
/* StartupMessage for protocol major.minor with the given parameters (a
 * proxy re-sending a client's startup to a backend: pass s->params). */
int pg_build_startup(char *buf, size_t cap, uint16_t major, uint16_t minor,
                     const struct pg_param *params, size_t nparams);
int pg_build_ssl_request(char *buf, size_t cap);
int pg_build_cancel(char *buf, size_t cap, uint32_t pid, const void *key, size_t key_len);
/* PasswordMessage 'p' with a cleartext password. */
int pg_build_password(char *buf, size_t cap, const char *password);
/* PasswordMessage answering AuthenticationMD5Password:
 * "md5" + hex(md5(hex(md5(password + user)) + salt)). Uses OpenSSL's MD5
 * (which allocates; not a hot path); -1 also when MD5 is unavailable (FIPS). */
int pg_build_md5_password(char *buf, size_t cap, const char *user, const char *password,
                          const uint8_t salt[4]);

/* ---- Connection state ----------------------------------------------------- */

/* A small pure tracker a proxy feeds with every message it frames, in both
 * directions, after startup. It tells when the connection sits at a
 * message boundary where nothing is in flight (ReadyForQuery answered every
 * Query, Sync and FunctionCall, no extended-query batch is open, no COPY
 * runs): the only points where a backend may be switched or a refusal
 * written in the server's place. Zero-initialise. */
enum pg_copy_mode { PG_COPY_NONE = 0, PG_COPY_IN, PG_COPY_OUT, PG_COPY_BOTH };

struct pg_state {
    uint32_t pending;    /* Query/Sync/FunctionCall sent, ReadyForQuery not yet seen */
    uint32_t batch;      /* extended-query messages since the last Sync */
    uint8_t tx_status;   /* last ReadyForQuery status: 'I', 'T', 'E'; 0 before */
    uint8_t copy;        /* enum pg_copy_mode */
    uint8_t failed;      /* ErrorResponse since the last ReadyForQuery (in an
                          * extended-query batch the server then discards
                          * everything up to the next Sync) */
    uint8_t terminated;  /* the client sent Terminate */
};

void pg_state_frontend(struct pg_state *st, const struct pg_msg *m); /* client message */
void pg_state_backend(struct pg_state *st, const struct pg_msg *m);  /* server message */
/* 1 when nothing is in flight (see above). */
int pg_state_idle(const struct pg_state *st);
/* 1 inside an explicit transaction block ('T' or 'E'). */
int pg_state_in_transaction(const struct pg_state *st);

#endif
