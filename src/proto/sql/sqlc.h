/* sqlc.h - SQL statement classifier for the MySQL and PostgreSQL codecs.
 *
 * A lexer with a little grammar knowledge, not a parser: it reads a query
 * string once, left to right, and reports the statement verb, the tables it
 * names and a few flags the proxy routes on (read/write split, transaction
 * and session pinning, policy on `sql.verb` / `sql.tables`). It is called on
 * every statement, so it allocates nothing, keeps no global state, does
 * O(len) work with a small constant, and takes any bytes (invalid UTF-8,
 * NULs, hostile nesting) without reading outside [sql, sql + len).
 *
 * Lexing follows the servers' default modes (see SQLC_MODE_* to follow a
 * session's actual settings):
 *  - MySQL/MariaDB: `ident` with `` doubling; '...' and "..." strings with
 *    backslash escapes and quote doubling; comments `#...`, `-- ` (dashes
 *    followed by whitespace, a control byte or the end), and slash-star
 *    block comments (not nested). Executable comments (slash-star followed
 *    by `!`, `!50001` or MariaDB's `M!`, up to the closing star-slash)
 *    are code: their content is classified whatever version number they
 *    carry (the server might skip it; assuming it runs is the safe side).
 *  - PostgreSQL: "ident" with "" doubling, U&"ident"; '...' strings with ''
 *    doubling (standard_conforming_strings on), E'...' with backslash
 *    escapes, U&'...', $tag$...$tag$ dollar quoting; block comments (nested) and
 *    `--` comments.
 * An unterminated string, quoted identifier, dollar quote or comment makes
 * the whole input unclassifiable: sqlc_classify returns -1 with verb
 * SQLC_V_OTHER and SQLC_WRITE | SQLC_UNTERMINATED.
 *
 * Rules (when unsure, the answer is a write, so traffic goes to the primary):
 *  - SQLC_READ_ONLY: SELECT, SHOW, VALUES, TABLE, DESCRIBE/EXPLAIN of a
 *    table or of a read-only statement (also EXPLAIN ANALYZE of one), with
 *    no locking clause, no INTO, no data-modifying sub-statement (PostgreSQL
 *    `WITH x AS (DELETE ...) SELECT`), and no call to a function with side
 *    effects or bound to the session's connection: nextval, setval, currval,
 *    lastval, txid_current, pg_current_xact_id, pg_notify, set_config,
 *    pg_advisory_* / pg_try_advisory_*, lo_*, pg_terminate_*, pg_cancel_*,
 *    pg_reload_*, pg_create_*, pg_drop_*, pg_switch_*, pg_promote,
 *    pg_replication_*, pg_stat_reset*, dblink_exec, GET_LOCK, RELEASE_LOCK,
 *    RELEASE_ALL_LOCKS, LAST_INSERT_ID, FOUND_ROWS, ROW_COUNT (SLEEP and
 *    the like are fine). Empty input (only blanks/comments) is read-only.
 *  - SQLC_WRITE: everything else, exactly when SQLC_READ_ONLY is not set.
 *  - SQLC_LOCKING_READ: FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE,
 *    FOR KEY SHARE, LOCK IN SHARE MODE (at any nesting level).
 *  - SQLC_TXN_BEGIN: BEGIN [WORK], START TRANSACTION, COMMIT/ROLLBACK AND
 *    CHAIN. SQLC_TXN_END: COMMIT, ROLLBACK, PostgreSQL END and ABORT; not
 *    ROLLBACK TO [SAVEPOINT], COMMIT/ROLLBACK PREPARED.
 *  - SQLC_SESSION_STATE (pin the client to its backend connection): SET
 *    (every form, including SET TRANSACTION, which in MySQL applies to the
 *    connection's next transaction), USE, PREPARE, DEALLOCATE, DECLARE
 *    (cursors), LISTEN, UNLISTEN, DISCARD, RESET, LOCK, UNLOCK, XA,
 *    CREATE/DROP TEMPORARY|TEMP ..., SELECT ... INTO @var / INTO TEMP t,
 *    `@var := ...`, GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS, set_config,
 *    session-level advisory locks (not the _xact_ ones).
 *  - Tables come from FROM (comma lists too), JOIN, UPDATE, DELETE [FROM],
 *    USING (DELETE, MERGE), INSERT/REPLACE [INTO], MERGE INTO, SELECT INTO
 *    (PostgreSQL), TABLE, TRUNCATE [TABLE], CREATE/ALTER/DROP TABLE,
 *    RENAME TABLE, LOCK [TABLE|TABLES], ANALYZE/OPTIMIZE/VACUUM, COPY,
 *    DESCRIBE/EXPLAIN t, REFERENCES, CREATE INDEX/TRIGGER ... ON, at every
 *    nesting level (subqueries, CTEs, INSERT ... SELECT). A function call in
 *    FROM (`generate_series(1, 3)`) is not a table. Names are kept as
 *    written, qualified parts joined by '.', quotes removed and doubled
 *    quotes undone (`"My"."T"` -> My.T); case is not folded; duplicates
 *    (byte-equal) are listed once. A CTE's name used in FROM is listed
 *    like a table (the classifier does not resolve names). At most
 *    SQLC_MAX_TABLES are kept; SQLC_TABLES_TRUNCATED says some were
 *    dropped. Bodies of stored routines are scanned
 *    too, but only their FROM/JOIN/INTO tables are reliable.
 *  - Several statements (';'-separated; semicolons inside a BEGIN ... END
 *    routine body of CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT or a MariaDB
 *    BEGIN NOT ATOMIC block do not split): SQLC_MULTI; the verb is the
 *    first writing statement's, else the first statement's; tables are the
 *    union; flags are OR'ed; SQLC_READ_ONLY only if every statement is.
 *
 * Not covered, by design: what a stored procedure, a prepared statement
 * (EXECUTE) or a view does; these are writes whenever they could be. */
#ifndef STRAND_SQLC_H
#define STRAND_SQLC_H

#include <stddef.h>
#include <stdint.h>

enum sqlc_dialect {
    SQLC_MYSQL,    /* MySQL and MariaDB */
    SQLC_POSTGRES,
};

/* Session settings that change how strings lex; 0 means server defaults.
 * A proxy should follow the session (MySQL: SERVER_STATUS_NO_BACKSLASH_
 * ESCAPES in OK packets, sql_mode ANSI_QUOTES; PostgreSQL: the
 * standard_conforming_strings ParameterStatus): lexing a string differently
 * from the server lets a statement hide code inside what looks like one. */
#define SQLC_MODE_NO_BACKSLASH_ESCAPES 0x1u /* MySQL: '\' is an ordinary character */
#define SQLC_MODE_ANSI_QUOTES 0x2u          /* MySQL: "..." is an identifier */
#define SQLC_MODE_PG_BACKSLASH_STRINGS 0x4u /* PostgreSQL: standard_conforming_strings off */

/* Canonical statement verbs; sqlc_verb_name() gives the upper-case word. */
enum sqlc_verb {
    SQLC_V_OTHER = 0,
    SQLC_V_SELECT,
    SQLC_V_INSERT,
    SQLC_V_UPDATE,
    SQLC_V_DELETE,
    SQLC_V_REPLACE,
    SQLC_V_MERGE,
    SQLC_V_CREATE,
    SQLC_V_ALTER,
    SQLC_V_DROP,
    SQLC_V_TRUNCATE,
    SQLC_V_RENAME,
    SQLC_V_GRANT,
    SQLC_V_REVOKE,
    SQLC_V_BEGIN, /* BEGIN, START TRANSACTION */
    SQLC_V_COMMIT, /* also PostgreSQL END */
    SQLC_V_ROLLBACK, /* also PostgreSQL ABORT */
    SQLC_V_SAVEPOINT,
    SQLC_V_RELEASE,
    SQLC_V_SET,
    SQLC_V_SHOW,
    SQLC_V_USE,
    SQLC_V_EXPLAIN,
    SQLC_V_DESCRIBE, /* DESCRIBE, DESC */
    SQLC_V_CALL,
    SQLC_V_DO,
    SQLC_V_LOCK,
    SQLC_V_UNLOCK,
    SQLC_V_PREPARE,
    SQLC_V_EXECUTE,
    SQLC_V_DEALLOCATE,
    SQLC_V_COPY,
    SQLC_V_VACUUM,
    SQLC_V_ANALYZE,
    SQLC_V_VALUES,
    SQLC_V_TABLE,
    SQLC_V_LISTEN,
    SQLC_V_UNLISTEN,
    SQLC_V_NOTIFY,
    SQLC_V_DISCARD,
    SQLC_V_RESET,
    SQLC_V_DECLARE,
    SQLC_V_FETCH,
    SQLC_V_CLOSE,
    SQLC_V_MOVE,
    SQLC_V_LOAD,
    SQLC_V_COMMENT,
    SQLC_V_REINDEX,
    SQLC_V_CLUSTER,
    SQLC_V_REFRESH,
    SQLC_V_CHECKPOINT,
    SQLC_V_FLUSH,
    SQLC_V_OPTIMIZE,
    SQLC_V_KILL,
    SQLC_V_HANDLER,
    SQLC_V_XA,
    SQLC_V_COUNT_ /* number of verbs, not a verb */
};

/* Result flags; the rules are in the comment at the top. */
#define SQLC_READ_ONLY 0x0001u
#define SQLC_WRITE 0x0002u
#define SQLC_LOCKING_READ 0x0004u
#define SQLC_TXN_BEGIN 0x0008u
#define SQLC_TXN_END 0x0010u
#define SQLC_SESSION_STATE 0x0020u
#define SQLC_MULTI 0x0040u
#define SQLC_UNTERMINATED 0x0080u
#define SQLC_EMPTY 0x0100u            /* no statement at all: blanks and comments */
#define SQLC_TABLES_TRUNCATED 0x0200u /* more tables than fit: the list is partial
                                       * (a table policy must not trust it) */

#define SQLC_MAX_TABLES 16
#define SQLC_NAME_MAX 255   /* longer table names are dropped (and truncate the list) */
#define SQLC_NAMES_SIZE 1024

/* Filled by sqlc_classify; lives wherever the caller puts it (about 1.1 KiB,
 * fine on a worker's stack). Read verb, flags and statements directly; read
 * tables through sqlc_table_count/sqlc_table. */
struct sqlc_result {
    enum sqlc_verb verb;
    unsigned flags;      /* SQLC_* flags */
    unsigned statements; /* non-empty statements */
    /* private */
    unsigned ntables;
    unsigned names_used;
    uint16_t table_off[SQLC_MAX_TABLES];
    uint8_t table_len[SQLC_MAX_TABLES];
    char names[SQLC_NAMES_SIZE];
};

/* Classifies sql[0..len) (any bytes; need not be NUL-terminated) in the
 * given dialect and modes (SQLC_MODE_*). Returns 0, or -1 when the input
 * cannot be lexed (SQLC_UNTERMINATED; verb OTHER, SQLC_WRITE; flags and
 * tables seen before the failure are kept). Always sets every field of *out.
 * Borrows sql for the call only; fills the caller's *out, which keeps no
 * pointer into sql. */
int sqlc_classify(enum sqlc_dialect d, unsigned modes, const char *sql, size_t len,
                  struct sqlc_result *out);

/* The canonical upper-case name ("SELECT", ..., "OTHER"); "OTHER" for
 * out-of-range values. Returns a static string. */
const char *sqlc_verb_name(enum sqlc_verb v);

/* Number of tables in r. Borrows r. */
size_t sqlc_table_count(const struct sqlc_result *r);

/* Table i (0-based, < sqlc_table_count) as a NUL-terminated name of *len
 * bytes (len may be NULL), or NULL when i is out of range. Returns a pointer
 * into r, valid while r is. */
const char *sqlc_table(const struct sqlc_result *r, size_t i, size_t *len);

/* 1 when r lists table name (length n) byte for byte. Borrows both. */
int sqlc_has_table(const struct sqlc_result *r, const char *name, size_t n);

#endif
