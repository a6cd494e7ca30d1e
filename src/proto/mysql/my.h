/* my.h - MySQL / MariaDB client/server protocol codec.
 *
 * Pure functions over the caller's bytes, in the style of h1.h: nothing
 * here allocates, does I/O or keeps global state. Parsed strings (my_str)
 * point into the caller's buffer and stay valid as long as those bytes do.
 *
 * The pieces a proxy needs:
 *  - framing (my_pkt_header, my_framer_*): 3-byte little-endian payload
 *    length + 1-byte sequence id. A payload of exactly 0xFFFFFF bytes is
 *    continued by the next packet (the last one is shorter, maybe empty),
 *    so a logical message > 16 MiB is several packets. The framer reports
 *    the first and last packet of each message from the 4-byte headers
 *    alone, so a proxy can forward packet by packet without holding a
 *    whole message;
 *  - length-encoded integers and strings, read with bounds checks;
 *  - the connection phase: Initial Handshake v10 (parse and build),
 *    HandshakeResponse41 and SSLRequest (parse and build), AuthSwitchRequest
 *    and AuthMoreData, the mysql_native_password and caching_sha2_password
 *    scrambles (OpenSSL libcrypto);
 *  - commands (client -> server): my_parse_command;
 *  - responses (server -> client): struct my_resp, a state machine fed one
 *    packet at a time that says when the response to a command is complete
 *    and what it was (OK, ERR, result sets with row counts, prepare-OK...);
 *  - builders for ERR, OK, EOF, COM_QUERY, COM_PING, COM_QUIT and the
 *    handshake packets, into a caller's buffer (return length or -1).
 *
 * Return codes: >= 0 is success (bytes, a length, or a MY_R_* state);
 * MY_INCOMPLETE asks for more bytes; the other negative MY_E_* codes are
 * errors. A malformed message from a peer means the connection cannot be
 * framed any more: the proxy closes it (after an ERR 2027 "Malformed
 * packet" to the client when the backend was at fault). */
#ifndef STRAND_MY_H
#define STRAND_MY_H

#include <stddef.h>
#include <stdint.h>

/* A byte range inside a caller's buffer; not NUL-terminated. Missing is
 * {NULL, 0}; present but empty has a non-NULL p. */
typedef struct {
    const char *p;
    size_t len;
} my_str;

enum {
    MY_INCOMPLETE = -1,   /* need more bytes */
    MY_E_MALFORMED = -2,  /* bytes that cannot be this message */
    MY_E_SEQ = -3,        /* packet with an unexpected sequence id */
    MY_E_UNEXPECTED = -4, /* well-formed, but not allowed in this state */
    MY_E_UNSUPPORTED = -5,/* a protocol feature this codec does not follow */
    MY_E_SPACE = -6,      /* builder: the caller's buffer is too small */
    MY_E_DENIED = -7,     /* login: the server answered ERR */
};

#define MY_HDR_LEN 4u
#define MY_MAX_PAYLOAD 0xFFFFFFu /* a payload this long continues in the next packet */

/* Capability flags (lower 32 bits: MySQL; upper: MariaDB's extension, sent
 * in otherwise reserved handshake bytes when CLIENT_MYSQL (bit 0) is clear). */
#define MY_CLIENT_LONG_PASSWORD (1ull << 0) /* MariaDB servers clear it: "CLIENT_MYSQL" */
#define MY_CLIENT_MYSQL MY_CLIENT_LONG_PASSWORD
#define MY_CLIENT_FOUND_ROWS (1ull << 1)
#define MY_CLIENT_LONG_FLAG (1ull << 2)
#define MY_CLIENT_CONNECT_WITH_DB (1ull << 3)
#define MY_CLIENT_NO_SCHEMA (1ull << 4)
#define MY_CLIENT_COMPRESS (1ull << 5)
#define MY_CLIENT_ODBC (1ull << 6)
#define MY_CLIENT_LOCAL_FILES (1ull << 7)
#define MY_CLIENT_IGNORE_SPACE (1ull << 8)
#define MY_CLIENT_PROTOCOL_41 (1ull << 9)
#define MY_CLIENT_INTERACTIVE (1ull << 10)
#define MY_CLIENT_SSL (1ull << 11)
#define MY_CLIENT_IGNORE_SIGPIPE (1ull << 12)
#define MY_CLIENT_TRANSACTIONS (1ull << 13)
#define MY_CLIENT_RESERVED (1ull << 14)
#define MY_CLIENT_SECURE_CONNECTION (1ull << 15)
#define MY_CLIENT_MULTI_STATEMENTS (1ull << 16)
#define MY_CLIENT_MULTI_RESULTS (1ull << 17)
#define MY_CLIENT_PS_MULTI_RESULTS (1ull << 18)
#define MY_CLIENT_PLUGIN_AUTH (1ull << 19)
#define MY_CLIENT_CONNECT_ATTRS (1ull << 20)
#define MY_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA (1ull << 21)
#define MY_CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS (1ull << 22)
#define MY_CLIENT_SESSION_TRACK (1ull << 23)
#define MY_CLIENT_DEPRECATE_EOF (1ull << 24)
#define MY_CLIENT_OPTIONAL_RESULTSET_METADATA (1ull << 25)
#define MY_CLIENT_ZSTD_COMPRESSION (1ull << 26)
#define MY_CLIENT_QUERY_ATTRIBUTES (1ull << 27)
#define MY_CLIENT_MULTI_FACTOR_AUTH (1ull << 28)
#define MY_CLIENT_SSL_VERIFY_SERVER_CERT (1ull << 30)
#define MY_CLIENT_REMEMBER_OPTIONS (1ull << 31)
#define MY_MARIADB_CLIENT_PROGRESS (1ull << 32)
#define MY_MARIADB_CLIENT_COM_MULTI (1ull << 33)
#define MY_MARIADB_CLIENT_STMT_BULK_OPERATIONS (1ull << 34)
#define MY_MARIADB_CLIENT_EXTENDED_METADATA (1ull << 35)
#define MY_MARIADB_CLIENT_CACHE_METADATA (1ull << 36)
#define MY_MARIADB_CLIENT_BULK_UNIT_RESULTS (1ull << 37)

/* Server status flags (OK and EOF packets). */
#define MY_SERVER_STATUS_IN_TRANS 0x0001u
#define MY_SERVER_STATUS_AUTOCOMMIT 0x0002u
#define MY_SERVER_MORE_RESULTS_EXISTS 0x0008u
#define MY_SERVER_QUERY_NO_GOOD_INDEX_USED 0x0010u
#define MY_SERVER_QUERY_NO_INDEX_USED 0x0020u
#define MY_SERVER_STATUS_CURSOR_EXISTS 0x0040u
#define MY_SERVER_STATUS_LAST_ROW_SENT 0x0080u
#define MY_SERVER_STATUS_DB_DROPPED 0x0100u
#define MY_SERVER_STATUS_NO_BACKSLASH_ESCAPES 0x0200u
#define MY_SERVER_STATUS_METADATA_CHANGED 0x0400u
#define MY_SERVER_QUERY_WAS_SLOW 0x0800u
#define MY_SERVER_PS_OUT_PARAMS 0x1000u
#define MY_SERVER_STATUS_IN_TRANS_READONLY 0x2000u
#define MY_SERVER_SESSION_STATE_CHANGED 0x4000u

/* Command bytes (first payload byte of a client packet with sequence 0). */
enum my_com {
    MY_COM_SLEEP = 0x00,
    MY_COM_QUIT = 0x01,
    MY_COM_INIT_DB = 0x02,
    MY_COM_QUERY = 0x03,
    MY_COM_FIELD_LIST = 0x04,
    MY_COM_CREATE_DB = 0x05,
    MY_COM_DROP_DB = 0x06,
    MY_COM_REFRESH = 0x07,
    MY_COM_SHUTDOWN = 0x08,
    MY_COM_STATISTICS = 0x09,
    MY_COM_PROCESS_INFO = 0x0a,
    MY_COM_CONNECT = 0x0b,
    MY_COM_PROCESS_KILL = 0x0c,
    MY_COM_DEBUG = 0x0d,
    MY_COM_PING = 0x0e,
    MY_COM_TIME = 0x0f,
    MY_COM_DELAYED_INSERT = 0x10,
    MY_COM_CHANGE_USER = 0x11,
    MY_COM_BINLOG_DUMP = 0x12,
    MY_COM_TABLE_DUMP = 0x13,
    MY_COM_CONNECT_OUT = 0x14,
    MY_COM_REGISTER_SLAVE = 0x15,
    MY_COM_STMT_PREPARE = 0x16,
    MY_COM_STMT_EXECUTE = 0x17,
    MY_COM_STMT_SEND_LONG_DATA = 0x18,
    MY_COM_STMT_CLOSE = 0x19,
    MY_COM_STMT_RESET = 0x1a,
    MY_COM_SET_OPTION = 0x1b,
    MY_COM_STMT_FETCH = 0x1c,
    MY_COM_DAEMON = 0x1d,
    MY_COM_BINLOG_DUMP_GTID = 0x1e,
    MY_COM_RESET_CONNECTION = 0x1f,
    MY_COM_STMT_BULK_EXECUTE = 0xfa, /* MariaDB */
    MY_COM_MULTI = 0xfe,             /* MariaDB, obsolete */
    /* Not command bytes: pseudo-commands for my_resp_init, the server's
     * side of the connection phase. */
    MY_CMD_GREETING = 0x100, /* the server's first packet: HandshakeV10 or ERR */
    MY_CMD_AUTH = 0x101,     /* after HandshakeResponse41: OK/ERR/switch/more data */
};

/* Short static name ("COM_QUERY", ...) or "COM_UNKNOWN". */
const char *my_com_name(unsigned cmd);

/* ---- framing ---------------------------------------------------------- */

/* One packet header as the framer reports it. */
struct my_pkt {
    uint32_t len;  /* payload length, 0..0xFFFFFF */
    uint8_t seq;   /* sequence id */
    uint8_t first; /* this packet starts a logical message */
    uint8_t last;  /* this packet ends it (len < 0xFFFFFF) */
};

/* Reads the 4-byte header at buf: returns MY_HDR_LEN and fills len and seq
 * (first = last = 0; the framer sets them), or MY_INCOMPLETE. Borrows buf. */
int my_pkt_header(const uint8_t *buf, size_t n, struct my_pkt *pkt);

/* Writes a header for a payload of len (<= 0xFFFFFF) into out[4]. */
void my_pkt_put_header(uint8_t *out, uint32_t len, uint8_t seq);

/* Message framing over a stream of packet headers: zero-initialise (or
 * my_framer_init). The caller reads a header at the start of each packet
 * with my_framer_next, then forwards (or inspects) pkt.len payload bytes
 * however it likes, then calls my_framer_next at the next header. */
struct my_framer {
    uint64_t msg_len; /* payload bytes of the current message so far, this packet included */
    uint8_t cont;     /* the previous packet was 0xFFFFFF long: the message goes on */
};
void my_framer_init(struct my_framer *f);

/* Returns MY_HDR_LEN with *pkt filled (first/last included), or
 * MY_INCOMPLETE (fewer than 4 bytes). Never an error: any header is valid
 * framing; sequence ids are checked by the consumer (my_resp checks them).
 * Borrows buf; *f is the caller's state. */
int my_framer_next(struct my_framer *f, const uint8_t *buf, size_t n, struct my_pkt *pkt);

/* Convenience for small messages held whole: if buf starts with a complete
 * single-packet message (len < 0xFFFFFF), returns its total size (4 + len)
 * and points *payload at it; MY_INCOMPLETE when not all in buf;
 * MY_E_UNSUPPORTED for a multi-packet message (use the framer). Borrows buf. */
int my_packet_whole(const uint8_t *buf, size_t n, struct my_pkt *pkt, const uint8_t **payload);

/* ---- length-encoded values -------------------------------------------- */

/* A bounded reader over a payload (or its prefix). */
struct my_rd {
    const uint8_t *p;
    const uint8_t *end;
};

/* Length-encoded integer: < 0xFB one byte; 0xFC + 2; 0xFD + 3; 0xFE + 8.
 * Returns bytes read (1, 3, 4, 9), MY_INCOMPLETE when truncated, or
 * MY_E_MALFORMED for 0xFF (and for 0xFB, the NULL marker, which is not an
 * integer; rows use it for NULL, see my_lenenc_str). Borrows buf. */
int my_lenenc_int(const uint8_t *buf, size_t n, uint64_t *v);

/* Length-encoded string: returns bytes read (prefix + length), with *s
 * pointing into buf; a 0xFB prefix (NULL in a text row) reads 1 byte and
 * gives s = {NULL, 0} and *is_null = 1 (is_null may be NULL). MY_INCOMPLETE
 * when the string does not fit in n. Borrows buf. */
int my_lenenc_str(const uint8_t *buf, size_t n, my_str *s, int *is_null);

/* Size of the length-encoded form of v (1, 3, 4 or 9). */
size_t my_lenenc_size(uint64_t v);
/* Writes v length-encoded at out (room for my_lenenc_size(v)); returns bytes. */
size_t my_lenenc_put(uint8_t *out, uint64_t v);

/* Reader helpers: each returns 0 on success, MY_E_MALFORMED when the
 * payload ends first (the reader is then unchanged). */
int my_rd_u8(struct my_rd *r, uint8_t *v);
int my_rd_u16(struct my_rd *r, uint16_t *v);
int my_rd_u24(struct my_rd *r, uint32_t *v);
int my_rd_u32(struct my_rd *r, uint32_t *v);
int my_rd_u64(struct my_rd *r, uint64_t *v);
int my_rd_lenenc(struct my_rd *r, uint64_t *v);
int my_rd_lenenc_str(struct my_rd *r, my_str *s);
int my_rd_bytes(struct my_rd *r, size_t n, my_str *s);
int my_rd_nulstr(struct my_rd *r, my_str *s); /* string<NUL>; the NUL is consumed, not in s */
void my_rd_rest(struct my_rd *r, my_str *s);  /* string<EOF> */

/* Wire length of one binary-protocol value of a MYSQL_TYPE_* type at buf
 * (COM_STMT_EXECUTE parameters, query attributes, binary rows): returns
 * bytes, MY_E_MALFORMED when it does not fit in n or the type is unknown. */
int my_binval_len(uint8_t type, const uint8_t *buf, size_t n);

/* ---- generic packets ---------------------------------------------------- */

struct my_ok {
    uint8_t header; /* 0x00, or 0xFE for an OK that ends a result set (CLIENT_DEPRECATE_EOF) */
    uint64_t affected_rows;
    uint64_t last_insert_id;
    uint16_t status;   /* MY_SERVER_* */
    uint16_t warnings;
    my_str info;          /* human-readable, may be empty */
    my_str session_state; /* with CLIENT_SESSION_TRACK and SESSION_STATE_CHANGED */
    uint8_t truncated;    /* parsed from a prefix: info/session_state cut short */
};

struct my_err {
    uint16_t code;
    char sqlstate[6]; /* NUL-terminated; "" when the packet has no '#' marker */
    my_str message;
    uint8_t truncated; /* parsed from a prefix: message cut short */
};

struct my_eof {
    uint16_t warnings;
    uint16_t status;
};

/* Parse OK / ERR / EOF payloads. avail bytes of a payload of len are in p
 * (avail <= len; for the OK and ERR the fixed fields must be within avail,
 * the trailing strings are cut to what is there and truncated is set).
 * caps: the negotiated capabilities. Return 0 or MY_E_MALFORMED. Borrows p. */
int my_parse_ok(const uint8_t *p, size_t avail, size_t len, uint64_t caps, struct my_ok *ok);
int my_parse_err(const uint8_t *p, size_t avail, size_t len, uint64_t caps, struct my_err *err);
int my_parse_eof(const uint8_t *p, size_t len, uint64_t caps, struct my_eof *eof);

/* 1 if a payload starting with byte b of length len is an EOF packet
 * (0xFE and shorter than 9 bytes), else 0. */
int my_is_eof(uint8_t b, size_t len);

/* ---- connection phase ----------------------------------------------------- */

struct my_handshake {
    uint8_t protocol_version; /* 10 */
    my_str server_version;
    uint32_t connection_id;
    uint8_t scramble[20]; /* auth-plugin-data part 1 (8) + part 2 (12) */
    uint8_t scramble_len; /* bytes of it present (8 or 20) */
    uint64_t caps;        /* lower | upper << 16 | MariaDB's extension << 32 */
    uint8_t charset;
    uint16_t status;
    my_str auth_plugin; /* with CLIENT_PLUGIN_AUTH, else empty */
};

/* Parses the server's Initial Handshake v10 payload (len bytes). Returns
 * 0, MY_E_UNSUPPORTED for protocol version 9, MY_E_MALFORMED. Borrows p. */
int my_parse_handshake(const uint8_t *p, size_t len, struct my_handshake *hs);

/* Builds a complete handshake packet (header with sequence 0 + payload)
 * from *hs (scramble_len must be 20; the plugin name may be empty). Returns
 * the length or MY_E_SPACE. Borrows hs. */
int my_build_handshake(uint8_t *out, size_t cap, const struct my_handshake *hs);

struct my_hs_response {
    uint64_t caps;      /* client capabilities (the lower 32 bits | MariaDB extension << 32) */
    uint32_t max_packet;
    uint8_t charset;
    uint8_t ssl_request; /* 1: this was the 32-byte SSLRequest; only the above is set */
    my_str user;
    my_str auth_response; /* raw bytes (may be empty) */
    my_str database;      /* with CLIENT_CONNECT_WITH_DB (may be empty) */
    my_str auth_plugin;   /* with CLIENT_PLUGIN_AUTH */
    my_str attrs;         /* with CLIENT_CONNECT_ATTRS: the key/value block, see my_attr_next */
    uint8_t zstd_level;   /* with CLIENT_ZSTD_COMPRESSION */
};

/* Parses a HandshakeResponse41 or an SSLRequest. server_caps: what the
 * server announced (MariaDB's extension bytes count only when it is a
 * MariaDB server, i.e. CLIENT_MYSQL clear). Returns 0, MY_E_UNSUPPORTED
 * for a pre-4.1 HandshakeResponse320, or MY_E_MALFORMED. Borrows p. */
int my_parse_hs_response(const uint8_t *p, size_t len, uint64_t server_caps,
                         struct my_hs_response *r);

/* Iterates connection attributes: *attrs is the remaining block (consumed
 * as it goes). Returns 1 with key/value set, 0 at the end, MY_E_MALFORMED. */
int my_attr_next(my_str *attrs, my_str *key, my_str *value);

/* Builds a HandshakeResponse41 packet with sequence seq (1, or 2 after an
 * SSLRequest). The auth response is length-encoded when caps has
 * PLUGIN_AUTH_LENENC_CLIENT_DATA, else 1-byte length (SECURE_CONNECTION),
 * else NUL-terminated (MY_E_MALFORMED if it contains a NUL). attrs (if
 * CONNECT_ATTRS) is the already-encoded block. If ssl_request is set,
 * writes only the 32-byte SSLRequest. Returns the length or MY_E_SPACE.
 * Borrows r. */
int my_build_hs_response(uint8_t *out, size_t cap, uint8_t seq, const struct my_hs_response *r);

/* Appends one key/value to an attribute block being built at out[*len]. */
int my_attr_put(uint8_t *out, size_t cap, size_t *len, const char *key, const char *value);

/* Server packets of the authentication exchange. */
enum my_auth_kind {
    MY_AUTH_OK = 1,        /* 0x00: authenticated */
    MY_AUTH_ERR,           /* 0xFF */
    MY_AUTH_SWITCH,        /* 0xFE + plugin NUL + data: start plugin over with new data */
    MY_AUTH_OLD_SWITCH,    /* 0xFE alone: switch to mysql_old_password (refuse) */
    MY_AUTH_MORE_DATA,     /* 0x01 + data (e.g. an RSA public key) */
    MY_AUTH_FAST_OK,       /* caching_sha2: 0x01 0x03, an OK follows */
    MY_AUTH_FULL_AUTH,     /* caching_sha2: 0x01 0x04, the client must send the password */
};
struct my_auth_pkt {
    enum my_auth_kind kind;
    my_str plugin; /* AUTH_SWITCH */
    my_str data;   /* AUTH_SWITCH (trailing NUL removed), MORE_DATA */
};
/* Classifies a server packet of the auth exchange (OK/ERR are not parsed
 * here: use my_parse_ok/my_parse_err). Returns 0 or MY_E_MALFORMED. */
int my_parse_auth_packet(const uint8_t *p, size_t len, struct my_auth_pkt *a);

/* mysql_native_password: SHA1(pw) XOR SHA1(scramble20 + SHA1(SHA1(pw))).
 * Writes 20 bytes to out and returns 20; an empty password gives an empty
 * response (returns 0, out untouched). */
int my_scramble_native(uint8_t out[20], const uint8_t scramble[20], const char *pw, size_t pwlen);

/* caching_sha2_password fast auth: SHA256(pw) XOR SHA256(SHA256(SHA256(pw))
 * + scramble20). Writes 32 bytes and returns 32; empty password -> 0. */
int my_scramble_sha2(uint8_t out[32], const uint8_t scramble[20], const char *pw, size_t pwlen);

/* mysql_native_password on the server's side. The stored form is
 * SHA1(SHA1(password)), which mysql.user shows as '*' and 40 hex digits. */

/* Writes SHA1(SHA1(pw)) to out; 0, or -1 when libcrypto fails. */
int my_native_hash(uint8_t out[20], const char *pw, size_t pwlen);
/* Parses "*" + 40 hex digits (either case) into out; 0 or MY_E_MALFORMED. */
int my_native_hash_parse(uint8_t out[20], const char *text, size_t len);
/* 1 when resp (len bytes, the client's answer to scramble) proves it
 * knows the password whose stored form is `stored`, else 0. The response
 * is unscrambled (XOR SHA1(scramble + stored)) and its SHA1 compared in
 * constant time; a response that is not 20 bytes long costs the same work
 * and fails. */
int my_native_verify(const uint8_t scramble[20], const uint8_t stored[20], const uint8_t *resp,
                     size_t len);
/* Fills out with n random scramble bytes in '!'..'~' (no NUL: old clients
 * read the scramble as a C string); 0 or -1 without randomness. */
int my_scramble_random(uint8_t *out, size_t n);
/* AuthSwitchRequest (0xFE, plugin NUL, data, NUL) with sequence seq.
 * Returns the length or MY_E_SPACE. Borrows plugin and data. */
int my_build_auth_switch(uint8_t *out, size_t cap, uint8_t seq, const char *plugin,
                         const uint8_t *data, size_t n);

/* The proxy's own login to a server, as a client with mysql_native_password
 * (an AuthSwitchRequest to it included): my_login_init, then feed every
 * server packet, whole, to my_login_feed and send what it writes, until
 * MY_R_DONE. */
struct my_login {
    const char *user, *password; /* borrowed; they must outlive the login */
    const char *database;        /* borrowed; NULL or "" for none */
    uint64_t want;     /* capabilities to ask for; PROTOCOL_41, SECURE_CONNECTION and
                        * PLUGIN_AUTH are added, CONNECT_WITH_DB with a database */
    uint8_t charset;   /* 0: the server's default */
    /* results */
    uint64_t caps;     /* negotiated (want & server), known after the greeting */
    uint64_t server_caps;
    uint32_t connection_id; /* the server's thread id, from the greeting */
    uint16_t status;   /* server status of the final OK */
    uint8_t state;     /* private: 0 greeting, 1 authenticating, 2 done */
};

/* Starts a login: sets the inputs (strings borrowed), clears the rest. */
void my_login_init(struct my_login *lg, const char *user, const char *password,
                   const char *database, uint64_t want, uint8_t charset);

/* One server packet (pkt, its whole payload p[0..len)): writes the answer,
 * if any, into out (*outlen bytes, 0 for none) and returns MY_R_MORE, or
 * MY_R_DONE once logged in; MY_E_DENIED for an ERR (p is it: see
 * my_parse_err), MY_E_UNSUPPORTED for an auth method other than
 * mysql_native_password or a greeting without a 20-byte scramble,
 * MY_E_MALFORMED, MY_E_UNEXPECTED after the end, MY_E_SPACE. Borrows pkt
 * and p. */
int my_login_feed(struct my_login *lg, const struct my_pkt *pkt, const uint8_t *p, size_t len,
                  uint8_t *out, size_t cap, size_t *outlen);

/* ---- commands (client -> server) ---------------------------------------------- */

struct my_command {
    uint8_t cmd;          /* MY_COM_* */
    uint8_t no_response;  /* the server answers nothing (STMT_CLOSE, SEND_LONG_DATA, QUIT) */
    my_str sql;           /* QUERY, STMT_PREPARE */
    my_str schema;        /* INIT_DB, CHANGE_USER's database, FIELD_LIST's table */
    my_str user;          /* CHANGE_USER */
    uint32_t stmt_id;     /* STMT_EXECUTE/CLOSE/RESET/SEND_LONG_DATA/FETCH/BULK_EXECUTE */
    uint8_t flags;        /* STMT_EXECUTE cursor flags (1 read-only cursor, ...) */
    uint32_t iterations;  /* STMT_EXECUTE iteration count; FETCH rows */
    uint16_t param_id;    /* SEND_LONG_DATA */
    uint16_t option;      /* SET_OPTION (0 multi-statements on, 1 off) */
    uint32_t process_id;  /* PROCESS_KILL */
    uint64_t nattrs;      /* QUERY with CLIENT_QUERY_ATTRIBUTES: attributes sent */
    my_str params;        /* STMT_EXECUTE: bytes after the iteration count */
};

/* Parses a command payload (the whole first packet; for a query > 16 MiB
 * the SQL is cut at the first packet and the caller sees only its start).
 * caps: negotiated capabilities (for CLIENT_QUERY_ATTRIBUTES, CHANGE_USER).
 * Returns 0, MY_E_MALFORMED, or MY_E_UNSUPPORTED for an unknown command
 * byte (c->cmd is still set). Borrows p. */
int my_parse_command(const uint8_t *p, size_t len, uint64_t caps, struct my_command *c);

/* ---- responses (server -> client) --------------------------------------- */

/* States my_resp_feed/my_resp_client return. */
enum {
    MY_R_MORE = 0,   /* feed the next server packet */
    MY_R_DONE = 1,   /* the response is complete; the next packet is the client's next command */
    MY_R_CLIENT = 2, /* the server waits for the client (LOCAL INFILE data, an auth reply):
                      * feed client packets to my_resp_client */
};

/* What the last packet fed was. */
enum my_resp_kind {
    MY_RK_NONE = 0,
    MY_RK_OK,          /* OK packet (also: the OK that ends rows with DEPRECATE_EOF) */
    MY_RK_ERR,
    MY_RK_EOF,
    MY_RK_PROGRESS,    /* MariaDB progress report (ERR 0xFFFF): not an error, more follows */
    MY_RK_COLUMN_COUNT,
    MY_RK_COLUMN_DEF,
    MY_RK_ROW,
    MY_RK_PREPARE_OK,
    MY_RK_PARAM_DEF,
    MY_RK_INFILE,      /* LOCAL INFILE request: the client sends the file */
    MY_RK_HANDSHAKE,
    MY_RK_AUTH,        /* switch / more data; see auth */
    MY_RK_STRING,      /* COM_STATISTICS answer */
    MY_RK_CONTINUATION,/* a later packet of a > 16 MiB message */
};

/* Response state machine. my_resp_init for each command sent; then feed
 * every server packet (headers from a my_framer) until MY_R_DONE. Pure
 * data: copy it, reset it, keep it in the connection. */
struct my_resp {
    /* configuration */
    uint64_t caps; /* negotiated capabilities */
    uint16_t cmd;  /* MY_COM_* or MY_CMD_* */
    /* private state */
    uint8_t state;
    uint8_t seq;       /* sequence id the next packet must carry */
    uint8_t binary;    /* rows are binary protocol (STMT_EXECUTE/FETCH) */
    uint8_t in_msg;    /* inside a > 16 MiB message: 1 from the server, 2 from the client */
    int8_t pending;    /* result to return at its last packet; the error once failed */
    uint64_t left;     /* column or parameter definitions still to come */
    uint16_t prep_cols;
    uint32_t need;     /* with MY_INCOMPLETE: payload bytes wanted */
    /* results, accumulated over the whole response */
    enum my_resp_kind kind; /* of the last packet */
    uint32_t nresults;      /* OKs and result sets (> 1 with multi-results) */
    uint32_t nresultsets;   /* result sets among them */
    uint64_t rows;          /* rows over all result sets */
    uint64_t affected_rows; /* sum over the OK packets */
    uint64_t last_insert_id;/* from the last OK */
    uint64_t columns;       /* column count of the last result set */
    uint16_t status;        /* status flags of the last OK/EOF */
    uint16_t warnings;      /* of the last OK/EOF */
    uint8_t error;          /* the response ended in ERR: see err (message not kept) */
    uint16_t err_code;
    char sqlstate[6];
    uint32_t stmt_id;       /* STMT_PREPARE: the new statement's id */
    uint16_t num_params;    /* STMT_PREPARE */
    uint16_t num_columns;   /* STMT_PREPARE */
    /* the last parsed packet; strings point into the payload last fed */
    struct my_ok ok;
    struct my_err err;
    struct my_auth_pkt auth;
    struct my_handshake hs; /* MY_CMD_GREETING */
    my_str infile;          /* MY_RK_INFILE: the file name the server asks for */
};

/* Starts the response to cmd (MY_COM_* or MY_CMD_*), sent with negotiated
 * capabilities caps; first_seq is the sequence id of the first server
 * packet (1 after a command; for MY_CMD_AUTH 2, or 3 after an SSLRequest;
 * 0 for MY_CMD_GREETING). Commands with no response (STMT_CLOSE,
 * STMT_SEND_LONG_DATA, QUIT) start in the done state: my_resp_done() is 1.
 * Borrows nothing. */
void my_resp_init(struct my_resp *r, unsigned cmd, uint64_t caps, uint8_t first_seq);

/* 1 when the response is complete (or there is none). */
int my_resp_done(const struct my_resp *r);

/* Feeds one server packet: pkt from my_framer_next, payload the first
 * avail bytes of its payload (avail <= pkt->len). Returns MY_R_MORE,
 * MY_R_DONE, MY_R_CLIENT, MY_INCOMPLETE (call again with at least r->need
 * payload bytes: never more than min(len, MY_RESP_PEEK); rows, column
 * definitions and continuation packets need at most 1 byte), or an error
 * (MY_E_SEQ, MY_E_MALFORMED, MY_E_UNEXPECTED: a packet not allowed here;
 * MY_E_UNSUPPORTED for commands whose responses are streams, like
 * COM_BINLOG_DUMP). Errors are sticky. Borrows pkt and payload (the
 * my_str fields of r point into payload afterwards). */
int my_resp_feed(struct my_resp *r, const struct my_pkt *pkt, const uint8_t *payload,
                 size_t avail);

/* Feeds one client packet while the server waits for the client (after
 * MY_R_CLIENT): LOCAL INFILE data (an empty packet ends the file) or an
 * auth reply. Returns MY_R_CLIENT (more client packets expected),
 * MY_R_MORE (the server's turn), or an error. Borrows pkt and payload. */
int my_resp_client(struct my_resp *r, const struct my_pkt *pkt, const uint8_t *payload,
                   size_t avail);

/* Control packets (OK, ERR, EOF, column count, prepare-OK, handshake, auth)
 * are parsed from at most this many payload bytes; longer trailing strings
 * are reported truncated. */
#define MY_RESP_PEEK 1024u

/* ---- session ------------------------------------------------------------ */

/* Follows a whole connection from both directions' packets: greeting,
 * handshake response (SSLRequest included: the caller switches to TLS and
 * keeps feeding the decrypted packets), authentication, then command /
 * response turns. The protocol is half-duplex, so whose turn it is is
 * always known; a packet out of turn is MY_E_UNEXPECTED. */
enum my_phase {
    MY_PH_GREETING = 0, /* waiting for the server's handshake */
    MY_PH_HS_RESPONSE,  /* waiting for the client's HandshakeResponse41 / SSLRequest */
    MY_PH_AUTH,         /* authentication exchange (resp follows it) */
    MY_PH_COMMAND,      /* idle: waiting for the client's next command */
    MY_PH_RESPONSE,     /* a command is being answered (resp follows it) */
    MY_PH_CLOSED,       /* COM_QUIT sent, auth failed, or the greeting was an ERR */
};

struct my_session {
    enum my_phase phase;
    uint64_t server_caps;
    uint64_t client_caps;
    uint64_t caps;        /* negotiated: server_caps & client_caps */
    uint8_t tls;          /* the client asked for TLS (SSLRequest) */
    uint8_t authed;       /* authentication succeeded */
    uint8_t cmd;          /* the command being answered */
    uint8_t in_msg;       /* inside a > 16 MiB client command */
    uint32_t commands;    /* commands seen */
    struct my_resp resp;
    struct my_command last; /* the last command; its strings point into that payload */
    struct my_hs_response hsr; /* the client's handshake response (strings likewise) */
};

void my_session_init(struct my_session *s);
/* Feed one packet from the server / the client (pkt from that direction's
 * my_framer). Returns MY_R_MORE / MY_R_DONE (a response completed) /
 * MY_R_CLIENT, MY_INCOMPLETE with s->resp.need (server side) or with
 * *need set (client side: the session wants min(len, MY_RESP_PEEK) bytes of
 * a command or handshake response), or an error. Borrow pkt and payload. */
int my_session_server(struct my_session *s, const struct my_pkt *pkt, const uint8_t *payload,
                      size_t avail);
int my_session_client(struct my_session *s, const struct my_pkt *pkt, const uint8_t *payload,
                      size_t avail, uint32_t *need);

/* ---- builders ------------------------------------------------------------ */

/* All write complete packets (header + payload) into out[0..cap) and return
 * the total length, or MY_E_SPACE (-6) when it does not fit (nothing
 * useful is written then). Payloads of 0xFFFFFF bytes or more are split
 * into several packets with consecutive sequence ids. */

/* ERR: 0xFF, code, '#' + 5-char SQLSTATE (when caps has PROTOCOL_41; a
 * NULL or short sqlstate becomes "HY000"), message. The message is cut at
 * 512 bytes, like servers do. */
int my_build_err(uint8_t *out, size_t cap, uint8_t seq, uint64_t caps, uint16_t code,
                 const char *sqlstate, const char *msg, size_t msglen);
/* OK: header 0x00 (or 0xFE when eof_header, to end rows with DEPRECATE_EOF). */
int my_build_ok(uint8_t *out, size_t cap, uint8_t seq, uint64_t caps, uint64_t affected,
                uint64_t insert_id, uint16_t status, uint16_t warnings, const char *info,
                int eof_header);
int my_build_eof(uint8_t *out, size_t cap, uint8_t seq, uint64_t caps, uint16_t warnings,
                 uint16_t status);
/* COM_QUERY (sequence 0); with CLIENT_QUERY_ATTRIBUTES the empty attribute
 * prefix (count 0, set count 1) is written. */
int my_build_query(uint8_t *out, size_t cap, uint64_t caps, const char *sql, size_t len);
/* One-byte commands (COM_PING, COM_QUIT, COM_STATISTICS, COM_RESET_CONNECTION ...). */
int my_build_simple(uint8_t *out, size_t cap, uint8_t cmd);
int my_build_ping(uint8_t *out, size_t cap);
int my_build_quit(uint8_t *out, size_t cap);

/* Frames a payload already written at out[4 .. 4+plen) into packets in
 * place (moving bytes to make room for continuation headers); the total
 * size (plen + 4 per packet) must fit in cap. Returns it or MY_E_SPACE. */
int my_frame_in_place(uint8_t *out, size_t cap, size_t plen, uint8_t seq);

/* Well-known error codes a proxy answers with. */
#define MY_ER_CON_COUNT_ERROR 1040          /* 08004 Too many connections */
#define MY_ER_ACCESS_DENIED 1045            /* 28000 */
#define MY_ER_SERVER_SHUTDOWN 1053          /* 08S01 */
#define MY_ER_TABLEACCESS_DENIED 1142       /* 42000 "... command denied to user ..." */
#define MY_ER_USER_LIMIT_REACHED 1226       /* 42000 "User ... has exceeded the ... resource" */
#define MY_ER_UNKNOWN_COM 1047              /* 08S01 Unknown command */
#define MY_ER_QUERY_INTERRUPTED 1317        /* 70100 */
#define MY_CR_SERVER_LOST 2013              /* HY000 Lost connection during query */
#define MY_CR_MALFORMED_PACKET 2027         /* HY000 */

#endif
