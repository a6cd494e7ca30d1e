/* sqlc.c - the SQL classifier: verb, tables and routing flags from the
 * token stream of sqlc_lex.c. The rules are documented in sqlc.h.
 *
 * One pass over the tokens with a few tokens of lookahead (a copy of the
 * lexer is the checkpoint), so the work is O(n). Parentheses open levels
 * (struct level): each knows whether it holds a statement (a subquery, a
 * CTE body, a derived table) and which one, so FROM inside EXTRACT(YEAR
 * FROM x) is not a table while FROM inside a subquery is. Deeper nesting
 * than SQLC_DEPTH is not tracked and makes the statement a write. */
#include "proto/sql/sqlc_int.h"

#include <string.h>

#define SQLC_DEPTH 32

/* Keyword flags. */
#define KF_S 0x01u /* stop: cannot be a table name where one is expected */
#define KF_K 0x02u /* skip: a modifier between a keyword and its table (IF EXISTS, ONLY) */
#define KF_E 0x04u /* ends a FROM / table list */
#define KF_F 0x08u /* function with side effects (see func_effect) */

/* Sorted (C locale) so lookup can bisect; test_sqlc.c checks it. */
#define SQLC_KEYWORDS(X) \
    X(ABORT, 0) \
    X(ALTER, 0) \
    X(ANALYZE, KF_K) \
    X(AND, 0) \
    X(AS, KF_S) \
    X(ATOMIC, 0) \
    X(BEGIN, 0) \
    X(CALL, 0) \
    X(CASE, KF_S) \
    X(CHAIN, 0) \
    X(CHECKPOINT, 0) \
    X(CLOSE, 0) \
    X(CLUSTER, 0) \
    X(COMMENT, 0) \
    X(COMMIT, 0) \
    X(COPY, 0) \
    X(CREATE, 0) \
    X(CROSS, KF_S) \
    X(CURRVAL, KF_F) \
    X(DATABASE, 0) \
    X(DEALLOCATE, 0) \
    X(DECLARE, 0) \
    X(DEFAULT, KF_S) \
    X(DELAYED, KF_K) \
    X(DELETE, KF_S) \
    X(DESC, 0) \
    X(DESCRIBE, 0) \
    X(DISCARD, 0) \
    X(DO, 0) \
    X(DROP, 0) \
    X(DUAL, KF_S) \
    X(DUMPFILE, 0) \
    X(END, KF_S) \
    X(EVENT, 0) \
    X(EXCEPT, KF_S | KF_E) \
    X(EXECUTE, 0) \
    X(EXISTS, KF_K) \
    X(EXPLAIN, 0) \
    X(EXTENDED, 0) \
    X(FETCH, KF_E) \
    X(FLUSH, 0) \
    X(FOR, KF_S | KF_E) \
    X(FORMAT, 0) \
    X(FOUND_ROWS, KF_F) \
    X(FREEZE, KF_K) \
    X(FROM, KF_S) \
    X(FULL, KF_K) \
    X(FUNCTION, 0) \
    X(GET_LOCK, KF_F) \
    X(GRANT, 0) \
    X(GROUP, KF_S | KF_E) \
    X(HANDLER, 0) \
    X(HAVING, KF_S | KF_E) \
    X(HIGH_PRIORITY, KF_K) \
    X(IF, KF_K) \
    X(IGNORE, KF_K) \
    X(IN, KF_S) \
    X(INDEX, 0) \
    X(INNER, KF_S) \
    X(INSERT, KF_S) \
    X(INTERSECT, KF_S | KF_E) \
    X(INTO, KF_K | KF_E) \
    X(JOIN, KF_S) \
    X(JSON, 0) \
    X(KEY, 0) \
    X(KILL, 0) \
    X(LASTVAL, KF_F) \
    X(LAST_INSERT_ID, KF_F) \
    X(LATERAL, KF_K) \
    X(LEFT, KF_S) \
    X(LIMIT, KF_S | KF_E) \
    X(LISTEN, 0) \
    X(LOAD, 0) \
    X(LOCAL, KF_K) \
    X(LOCK, KF_S | KF_E) \
    X(LOOP, 0) \
    X(LOW_PRIORITY, KF_K) \
    X(MERGE, KF_S) \
    X(MODE, 0) \
    X(MOVE, 0) \
    X(NATURAL, KF_S) \
    X(NEXTVAL, KF_F) \
    X(NO, 0) \
    X(NOT, KF_K) \
    X(NOTIFY, 0) \
    X(NO_WRITE_TO_BINLOG, KF_K) \
    X(OFFSET, KF_S | KF_E) \
    X(ON, KF_S) \
    X(ONLY, KF_K) \
    X(OPTIMIZE, 0) \
    X(ORDER, KF_S | KF_E) \
    X(OUTER, KF_S) \
    X(OUTFILE, 0) \
    X(PARTITIONS, 0) \
    X(PG_CURRENT_XACT_ID, KF_F) \
    X(PG_NOTIFY, KF_F) \
    X(PLAN, 0) \
    X(PREPARE, 0) \
    X(PREPARED, 0) \
    X(PROCEDURE, 0) \
    X(QUERY, 0) \
    X(QUICK, KF_K) \
    X(RECURSIVE, 0) \
    X(REFERENCES, 0) \
    X(REFRESH, 0) \
    X(REINDEX, 0) \
    X(RELEASE, 0) \
    X(RELEASE_ALL_LOCKS, KF_F) \
    X(RELEASE_LOCK, KF_F) \
    X(RENAME, 0) \
    X(REPEAT, 0) \
    X(REPLACE, 0) \
    X(RESET, 0) \
    X(RETURNING, KF_S | KF_E) \
    X(REVOKE, 0) \
    X(RIGHT, KF_S) \
    X(ROLE, 0) \
    X(ROLLBACK, 0) \
    X(ROW_COUNT, KF_F) \
    X(SAVEPOINT, 0) \
    X(SCHEMA, 0) \
    X(SELECT, KF_S | KF_E) \
    X(SEQUENCE, 0) \
    X(SET, KF_S | KF_E) \
    X(SETVAL, KF_F) \
    X(SET_CONFIG, KF_F) \
    X(SHARE, 0) \
    X(SHOW, 0) \
    X(START, 0) \
    X(STRAIGHT_JOIN, KF_S) \
    X(TABLE, KF_K) \
    X(TABLES, KF_K) \
    X(TEMP, KF_K) \
    X(TEMPORARY, KF_K) \
    X(THEN, KF_S) \
    X(TO, KF_S) \
    X(TRADITIONAL, 0) \
    X(TRANSACTION, 0) \
    X(TREE, 0) \
    X(TRIGGER, 0) \
    X(TRUNCATE, 0) \
    X(TXID_CURRENT, KF_F) \
    X(TYPE, 0) \
    X(UNION, KF_S | KF_E) \
    X(UNLISTEN, 0) \
    X(UNLOCK, 0) \
    X(UNLOGGED, KF_K) \
    X(UPDATE, KF_S | KF_E) \
    X(USE, 0) \
    X(USER, 0) \
    X(USING, KF_S) \
    X(VACUUM, 0) \
    X(VALUES, KF_S | KF_E) \
    X(VERBOSE, KF_K) \
    X(VIEW, 0) \
    X(WHEN, KF_S) \
    X(WHERE, KF_S | KF_E) \
    X(WHILE, 0) \
    X(WINDOW, KF_S | KF_E) \
    X(WITH, KF_S) \
    X(WORK, 0) \
    X(XA, 0) \


enum {
    K_NONE = 0,
#define X(n, f) K_##n,
    SQLC_KEYWORDS(X)
#undef X
    K_COUNT_
};

const struct sqlc_kw sqlc_keywords[] = {
#define X(n, f) {#n, K_##n, f},
    SQLC_KEYWORDS(X)
#undef X
};
const size_t sqlc_nkeywords = sizeof(sqlc_keywords) / sizeof(sqlc_keywords[0]);

/* Internal pseudo-verbs of a level, beyond the public enum. */
enum {
    V_NONE = 100, /* an expression, not a statement: (a + b), f(x), EXTRACT(... FROM x) */
    V_WITHP,      /* WITH seen, main statement still to come */
    V_JOINGRP,    /* parenthesised join in a FROM list: FROM (a JOIN b ON ...) */
    V_UNSET,      /* statement verb not known yet */
};

enum { X_NONE = 0, X_FROM, X_USING, X_INTO, X_DDL }; /* why the next name is a table */
enum { P_NONE = 0, P_WITH, P_EXPLAIN };               /* level waiting for its verb */

struct level {
    uint8_t verb;    /* SQLC_V_* or V_* */
    uint8_t first;   /* no token seen at this level yet */
    uint8_t list;    /* X_* context a ',' at this level restarts, 0 outside lists */
    uint8_t pending; /* P_* */
    uint8_t ddl;     /* object of CREATE/DROP: 1 table, 2 index/trigger, 3 other, 4 done */
};

struct cls {
    struct sqlc_lex lx;
    struct sqlc_result *res;
    uint8_t dialect;
    /* the statement being read */
    struct level lv[SQLC_DEPTH];
    unsigned depth;   /* index of the current level */
    unsigned lost;    /* open parentheses beyond SQLC_DEPTH */
    uint8_t verb;     /* reported verb */
    uint8_t verb_depth;
    uint8_t started;  /* a token other than '(' was seen */
    uint8_t expect;   /* X_*: the next name is a table */
    uint8_t write;    /* not read-only, whatever the verb */
    uint8_t explain_open; /* EXPLAIN/DESCRIBE without a statement or table yet */
    uint8_t routine;  /* CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT or BEGIN NOT ATOMIC */
    uint8_t txn_to, txn_prepared, txn_chain;
    int prevkw;
    int block;        /* BEGIN/CASE nesting inside a routine body */
    unsigned flags;
    size_t ntok;
    /* the whole input */
    uint8_t first_verb, write_verb;
    uint8_t any_write;
    unsigned all_flags;
};

struct word {
    int kw;         /* K_*, K_NONE for other words */
    unsigned flags; /* KF_* */
    size_t n;
    char up[48];    /* upper-cased, NUL-terminated; empty when too long */
};

static void word_of(const struct cls *c, const struct sqlc_tok *t, struct word *w)
{
    w->kw = K_NONE;
    w->flags = 0;
    w->n = 0;
    w->up[0] = 0;
    if (t->kind != SQLC_TK_WORD || t->len >= sizeof(w->up)) return;
    const uint8_t *s = c->lx.s + t->off;
    for (size_t i = 0; i < t->len; i++) {
        uint8_t ch = s[i];
        w->up[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    }
    w->up[t->len] = 0;
    w->n = t->len;
    size_t lo = 0, hi = sqlc_nkeywords;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(w->up, sqlc_keywords[mid].name);
        if (r == 0) {
            w->kw = sqlc_keywords[mid].id;
            w->flags = sqlc_keywords[mid].flags;
            return;
        }
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
}

static int is_punct(const struct cls *c, const struct sqlc_tok *t, char ch)
{
    return t->kind == SQLC_TK_PUNCT && t->len == 1 && c->lx.s[t->off] == (uint8_t)ch;
}

/* Lookahead on a copy of the lexer: the next token's keyword (K_NONE for
 * another word), or -1 when it is not a word. Borrows both. */
static int la_kw(const struct cls *c, struct sqlc_lex *la)
{
    struct sqlc_tok t;
    struct word w;
    if (sqlc_lex_next(la, &t) != SQLC_TK_WORD) return -1;
    word_of(c, &t, &w);
    return w.kw;
}

static int next_is_punct(const struct cls *c, char ch)
{
    struct sqlc_lex la = c->lx;
    struct sqlc_tok t;
    sqlc_lex_next(&la, &t);
    return is_punct(c, &t, ch);
}

/* Side effects of calling function w (already known to be followed by '('):
 * 0, SQLC_WRITE, or SQLC_WRITE | SQLC_SESSION_STATE. */
static unsigned func_effect(const struct word *w)
{
    static const struct {
        const char *prefix;
        unsigned eff;
    } prefixes[] = {
        {"PG_ADVISORY_", SQLC_SESSION_STATE}, {"PG_TRY_ADVISORY_", SQLC_SESSION_STATE},
        {"LO_", 0}, {"PG_TERMINATE_", 0}, {"PG_CANCEL_", 0}, {"PG_RELOAD_", 0},
        {"PG_CREATE_", 0}, {"PG_DROP_", 0}, {"PG_SWITCH_", 0}, {"PG_PROMOTE", 0},
        {"PG_REPLICATION_", 0}, {"PG_STAT_RESET", 0}, {"DBLINK_EXEC", 0},
    };
    switch (w->kw) {
    case K_GET_LOCK:
    case K_RELEASE_LOCK:
    case K_RELEASE_ALL_LOCKS:
    case K_SET_CONFIG:
        return SQLC_WRITE | SQLC_SESSION_STATE;
    case K_NONE:
        break;
    default:
        return (w->flags & KF_F) ? SQLC_WRITE : 0;
    }
    if (w->up[0] != 'P' && w->up[0] != 'L' && w->up[0] != 'D') return 0;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i].prefix);
        if (w->n >= pl && memcmp(w->up, prefixes[i].prefix, pl) == 0) {
            unsigned eff = SQLC_WRITE | prefixes[i].eff;
            if (strstr(w->up, "XACT")) eff &= ~SQLC_SESSION_STATE; /* transaction-scoped lock */
            return eff;
        }
    }
    return 0;
}

static void apply_func(struct cls *c, const struct word *w)
{
    unsigned eff = func_effect(w);
    if (!eff) return;
    c->write = 1;
    c->flags |= eff & SQLC_SESSION_STATE;
}

static int is_name_tok(const struct cls *c, const struct sqlc_tok *t)
{
    return t->kind == SQLC_TK_WORD || t->kind == SQLC_TK_QIDENT ||
           (t->kind == SQLC_TK_STRING && t->quote == '"' && c->dialect == SQLC_MYSQL);
}

/* Appends name part t, unquoted, to buf (capacity SQLC_NAME_MAX); -1 when
 * it does not fit. */
static int append_part(const struct cls *c, const struct sqlc_tok *t, char *buf, size_t *bl)
{
    const uint8_t *s = c->lx.s;
    if (t->kind == SQLC_TK_WORD) {
        if (t->len > SQLC_NAME_MAX - *bl) return -1;
        memcpy(buf + *bl, s + t->off, t->len);
        *bl += t->len;
        return 0;
    }
    size_t i = t->body, e = t->off + t->len - 1; /* s[e] is the closing quote */
    while (i < e) {
        if ((s[i] == t->quote || (t->bs && s[i] == '\\')) && i + 1 < e) i++;
        if (*bl >= SQLC_NAME_MAX) return -1;
        buf[(*bl)++] = (char)s[i++];
    }
    return 0;
}

static void add_table(struct cls *c, const char *name, size_t n)
{
    struct sqlc_result *r = c->res;
    if (n == 0) return;
    for (unsigned i = 0; i < r->ntables; i++)
        if (r->table_len[i] == n && memcmp(r->names + r->table_off[i], name, n) == 0) return;
    if (r->ntables == SQLC_MAX_TABLES || r->names_used + n + 1 > SQLC_NAMES_SIZE) {
        c->all_flags |= SQLC_TABLES_TRUNCATED;
        return;
    }
    memcpy(r->names + r->names_used, name, n);
    r->names[r->names_used + n] = 0;
    r->table_off[r->ntables] = (uint16_t)r->names_used;
    r->table_len[r->ntables] = (uint8_t)n;
    r->ntables++;
    r->names_used += (unsigned)n + 1;
}

/* A (possibly qualified) name starting with token t where a table is
 * expected; ctx is the X_* reason. In FROM/JOIN a name followed by '(' is
 * a function call, not a table. */
static void take_name(struct cls *c, const struct sqlc_tok *t, int ctx)
{
    char buf[SQLC_NAME_MAX];
    size_t bl = 0;
    int over = append_part(c, t, buf, &bl) < 0;
    struct sqlc_tok last = *t;
    for (;;) {
        struct sqlc_lex la = c->lx;
        struct sqlc_tok dot, part;
        if (sqlc_lex_next(&la, &dot) != SQLC_TK_PUNCT || !is_punct(c, &dot, '.')) break;
        sqlc_lex_next(&la, &part);
        if (!is_name_tok(c, &part)) break;
        c->lx = la;
        last = part;
        if (!over) {
            if (bl >= SQLC_NAME_MAX) {
                over = 1;
            } else {
                buf[bl++] = '.';
                over = append_part(c, &part, buf, &bl) < 0;
            }
        }
    }
    if ((ctx == X_FROM || ctx == X_USING) && next_is_punct(c, '(')) {
        struct word w;
        word_of(c, &last, &w);
        apply_func(c, &w);
        return;
    }
    if (over) {
        c->all_flags |= SQLC_TABLES_TRUNCATED;
        return;
    }
    add_table(c, buf, bl);
}

static const uint8_t kw_verb[K_COUNT_] = {
    [K_SELECT] = SQLC_V_SELECT, [K_INSERT] = SQLC_V_INSERT, [K_UPDATE] = SQLC_V_UPDATE,
    [K_DELETE] = SQLC_V_DELETE, [K_REPLACE] = SQLC_V_REPLACE, [K_MERGE] = SQLC_V_MERGE,
    [K_CREATE] = SQLC_V_CREATE, [K_ALTER] = SQLC_V_ALTER, [K_DROP] = SQLC_V_DROP,
    [K_TRUNCATE] = SQLC_V_TRUNCATE, [K_RENAME] = SQLC_V_RENAME, [K_GRANT] = SQLC_V_GRANT,
    [K_REVOKE] = SQLC_V_REVOKE, [K_BEGIN] = SQLC_V_BEGIN, [K_COMMIT] = SQLC_V_COMMIT,
    [K_ROLLBACK] = SQLC_V_ROLLBACK, [K_SAVEPOINT] = SQLC_V_SAVEPOINT,
    [K_RELEASE] = SQLC_V_RELEASE, [K_SET] = SQLC_V_SET, [K_SHOW] = SQLC_V_SHOW,
    [K_USE] = SQLC_V_USE, [K_EXPLAIN] = SQLC_V_EXPLAIN, [K_DESCRIBE] = SQLC_V_DESCRIBE,
    [K_DESC] = SQLC_V_DESCRIBE, [K_CALL] = SQLC_V_CALL, [K_DO] = SQLC_V_DO,
    [K_LOCK] = SQLC_V_LOCK, [K_UNLOCK] = SQLC_V_UNLOCK, [K_PREPARE] = SQLC_V_PREPARE,
    [K_EXECUTE] = SQLC_V_EXECUTE, [K_DEALLOCATE] = SQLC_V_DEALLOCATE, [K_COPY] = SQLC_V_COPY,
    [K_VACUUM] = SQLC_V_VACUUM, [K_ANALYZE] = SQLC_V_ANALYZE, [K_VALUES] = SQLC_V_VALUES,
    [K_TABLE] = SQLC_V_TABLE, [K_LISTEN] = SQLC_V_LISTEN, [K_UNLISTEN] = SQLC_V_UNLISTEN,
    [K_NOTIFY] = SQLC_V_NOTIFY, [K_DISCARD] = SQLC_V_DISCARD, [K_RESET] = SQLC_V_RESET,
    [K_DECLARE] = SQLC_V_DECLARE, [K_FETCH] = SQLC_V_FETCH, [K_CLOSE] = SQLC_V_CLOSE,
    [K_MOVE] = SQLC_V_MOVE, [K_LOAD] = SQLC_V_LOAD, [K_COMMENT] = SQLC_V_COMMENT,
    [K_REINDEX] = SQLC_V_REINDEX, [K_CLUSTER] = SQLC_V_CLUSTER, [K_REFRESH] = SQLC_V_REFRESH,
    [K_CHECKPOINT] = SQLC_V_CHECKPOINT, [K_FLUSH] = SQLC_V_FLUSH,
    [K_OPTIMIZE] = SQLC_V_OPTIMIZE, [K_KILL] = SQLC_V_KILL, [K_HANDLER] = SQLC_V_HANDLER,
    [K_XA] = SQLC_V_XA, [K_WITH] = V_WITHP,
};

static int read_verb(int v)
{
    switch (v) {
    case SQLC_V_SELECT:
    case SQLC_V_SHOW:
    case SQLC_V_VALUES:
    case SQLC_V_TABLE:
    case SQLC_V_EXPLAIN:
    case SQLC_V_DESCRIBE:
    case V_NONE:
    case V_WITHP:
    case V_JOINGRP:
        return 1;
    default:
        return 0;
    }
}

/* Levels whose FROM / JOIN name tables. */
static int from_ok(int v)
{
    switch (v) {
    case SQLC_V_SELECT:
    case SQLC_V_INSERT:
    case SQLC_V_UPDATE:
    case SQLC_V_DELETE:
    case SQLC_V_REPLACE:
    case SQLC_V_MERGE:
    case SQLC_V_CREATE:
    case SQLC_V_VALUES:
    case SQLC_V_TABLE:
    case SQLC_V_DECLARE:
    case SQLC_V_PREPARE:
    case V_WITHP:
    case V_JOINGRP:
        return 1;
    default:
        return 0;
    }
}

/* Statements that can open a parenthesised level or follow WITH. */
static int sub_verb(int kw)
{
    return kw == K_SELECT || kw == K_WITH || kw == K_VALUES || kw == K_TABLE || kw == K_INSERT ||
           kw == K_UPDATE || kw == K_DELETE || kw == K_MERGE;
}

static int explainable(int kw)
{
    return sub_verb(kw) || kw == K_REPLACE || kw == K_EXECUTE || kw == K_DECLARE ||
           kw == K_CREATE;
}

static int explain_option(int kw)
{
    return kw == K_ANALYZE || kw == K_VERBOSE || kw == K_EXTENDED || kw == K_PARTITIONS ||
           kw == K_FORMAT || kw == K_JSON || kw == K_TREE || kw == K_TRADITIONAL ||
           kw == K_QUERY || kw == K_PLAN;
}

/* The verb keyword kw starts the statement at level L; set: it is also the
 * statement's reported verb. */
static void begin_verb(struct cls *c, struct level *L, int kw, int set)
{
    uint8_t v = kw > K_NONE && kw < K_COUNT_ ? kw_verb[kw] : SQLC_V_OTHER;
    struct sqlc_lex la = c->lx;
    int next = la_kw(c, &la);
    int pg = c->dialect == SQLC_POSTGRES;

    if (kw == K_BEGIN && next == K_NOT) { /* MariaDB BEGIN NOT ATOMIC ... END */
        v = SQLC_V_OTHER;
        c->routine = 1;
        c->block = 1;
    } else if (kw == K_START) {
        v = next == K_TRANSACTION ? SQLC_V_BEGIN : SQLC_V_OTHER;
    } else if (kw == K_END) {
        v = pg ? SQLC_V_COMMIT : SQLC_V_OTHER;
    } else if (kw == K_ABORT) {
        v = pg ? SQLC_V_ROLLBACK : SQLC_V_OTHER;
    }
    c->expect = X_NONE;
    L->verb = v;
    L->pending = P_NONE;
    if (set) {
        c->verb = v;
        c->verb_depth = (uint8_t)c->depth;
    }
    if (!read_verb(v)) c->write = 1;
    switch (v) {
    case V_WITHP:
        L->pending = P_WITH;
        break;
    case SQLC_V_EXPLAIN:
    case SQLC_V_DESCRIBE:
        L->pending = P_EXPLAIN;
        c->explain_open = 1;
        break;
    case SQLC_V_INSERT:
    case SQLC_V_REPLACE:
        c->expect = X_INTO;
        break;
    case SQLC_V_UPDATE:
    case SQLC_V_DELETE:
        c->expect = X_FROM;
        L->list = X_FROM;
        break;
    case SQLC_V_LOCK:
        c->flags |= SQLC_SESSION_STATE;
        /* fall through */
    case SQLC_V_TRUNCATE:
    case SQLC_V_ANALYZE:
    case SQLC_V_VACUUM:
    case SQLC_V_OPTIMIZE:
        c->expect = X_DDL;
        L->list = X_DDL;
        break;
    case SQLC_V_TABLE:
    case SQLC_V_COPY:
        c->expect = X_DDL;
        break;
    case SQLC_V_BEGIN:
        c->flags |= SQLC_TXN_BEGIN;
        break;
    case SQLC_V_SET:
    case SQLC_V_USE:
    case SQLC_V_PREPARE:
    case SQLC_V_DEALLOCATE:
    case SQLC_V_DECLARE:
    case SQLC_V_LISTEN:
    case SQLC_V_UNLISTEN:
    case SQLC_V_DISCARD:
    case SQLC_V_RESET:
    case SQLC_V_UNLOCK:
    case SQLC_V_XA:
        c->flags |= SQLC_SESSION_STATE;
        break;
    default:
        break;
    }
}

/* FOR UPDATE / FOR SHARE / FOR NO KEY UPDATE / FOR KEY SHARE, or (after
 * LOCK) IN SHARE MODE. */
static int locking_clause(struct cls *c, int kw)
{
    struct sqlc_lex la = c->lx;
    int a = la_kw(c, &la);
    if (kw == K_LOCK) return a == K_IN && la_kw(c, &la) == K_SHARE && la_kw(c, &la) == K_MODE;
    if (a == K_UPDATE || a == K_SHARE) return 1;
    if (a == K_NO) return la_kw(c, &la) == K_KEY && la_kw(c, &la) == K_UPDATE;
    if (a == K_KEY) return la_kw(c, &la) == K_SHARE;
    return 0;
}

static void select_into(struct cls *c)
{
    struct sqlc_lex la = c->lx;
    struct sqlc_tok t;
    c->write = 1;
    if (sqlc_lex_next(&la, &t) == SQLC_TK_VAR)
        c->flags |= SQLC_SESSION_STATE; /* INTO @var */
    else if (c->dialect == SQLC_POSTGRES)
        c->expect = X_INTO; /* creates a table; TEMP is session state */
}

/* A word that is neither a level's first statement word nor a table name. */
static void plain_word(struct cls *c, struct level *L, const struct word *w)
{
    int v = L->verb;
    if (w->flags & KF_E) L->list = 0;
    if ((w->flags & KF_F || w->kw == K_NONE) && next_is_punct(c, '(')) apply_func(c, w);
    switch (w->kw) {
    case K_FROM:
        if (from_ok(v)) {
            c->expect = X_FROM;
            L->list = X_FROM;
        }
        break;
    case K_STRAIGHT_JOIN:
        if (!L->list) break;
        /* fall through */
    case K_JOIN:
        if (from_ok(v)) {
            c->expect = X_FROM;
            L->list = X_FROM;
        }
        break;
    case K_USING:
        if (v == SQLC_V_DELETE || v == SQLC_V_MERGE) {
            c->expect = X_USING;
            L->list = X_FROM;
        }
        break;
    case K_INTO:
        if (v == SQLC_V_INSERT || v == SQLC_V_REPLACE || v == SQLC_V_MERGE || v == SQLC_V_CREATE)
            c->expect = X_INTO;
        else if (v == SQLC_V_SELECT)
            select_into(c);
        break;
    case K_TABLE:
    case K_TABLES:
        if (!L->ddl && (v == SQLC_V_CREATE || v == SQLC_V_ALTER || v == SQLC_V_DROP ||
                        v == SQLC_V_RENAME || v == SQLC_V_FLUSH)) {
            L->ddl = 1;
            c->expect = X_DDL;
            if (v == SQLC_V_DROP || v == SQLC_V_RENAME || v == SQLC_V_FLUSH) L->list = X_DDL;
        }
        break;
    case K_INDEX:
    case K_TRIGGER:
        if (!L->ddl && (v == SQLC_V_CREATE || v == SQLC_V_DROP)) L->ddl = 2;
        if (w->kw == K_TRIGGER && v == SQLC_V_CREATE && c->depth == 0) c->routine = 1;
        break;
    case K_FUNCTION:
    case K_PROCEDURE:
    case K_EVENT:
        if (v == SQLC_V_CREATE && c->depth == 0) c->routine = 1;
        /* fall through */
    case K_VIEW:
    case K_DATABASE:
    case K_SCHEMA:
    case K_SEQUENCE:
    case K_USER:
    case K_ROLE:
    case K_TYPE:
        if (!L->ddl && (v == SQLC_V_CREATE || v == SQLC_V_ALTER || v == SQLC_V_DROP)) L->ddl = 3;
        break;
    case K_TEMP:
    case K_TEMPORARY:
        if (!L->ddl && (v == SQLC_V_CREATE || v == SQLC_V_DROP)) c->flags |= SQLC_SESSION_STATE;
        break;
    case K_ON:
        if (L->ddl == 2) {
            c->expect = X_DDL;
            L->ddl = 4;
        }
        break;
    case K_REFERENCES:
        if (c->verb == SQLC_V_CREATE || c->verb == SQLC_V_ALTER) c->expect = X_DDL;
        break;
    case K_TO:
        if (v == SQLC_V_RENAME) c->expect = X_DDL;
        c->txn_to = 1;
        break;
    case K_PREPARED:
        c->txn_prepared = 1;
        break;
    case K_CHAIN:
        if (c->prevkw != K_NO) c->txn_chain = 1;
        break;
    case K_FOR:
    case K_LOCK:
        if (locking_clause(c, w->kw)) {
            c->flags |= SQLC_LOCKING_READ;
            c->write = 1;
        }
        break;
    case K_BEGIN:
        if (c->routine) c->block++;
        break;
    case K_CASE: /* CASE ... END opens; the CASE of END CASE does not */
        if (c->routine && c->prevkw != K_END) c->block++;
        break;
    case K_END:
        if (c->routine && c->block > 0) {
            struct sqlc_lex la = c->lx;
            int a = la_kw(c, &la);
            if (a != K_IF && a != K_LOOP && a != K_WHILE && a != K_REPEAT && a != K_FOR) c->block--;
        }
        break;
    default:
        break;
    }
}

static void step(struct cls *c, const struct sqlc_tok *t)
{
    struct level *L = &c->lv[c->depth];
    struct word w;

    if (is_punct(c, t, '(')) {
        int inherit = c->expect == X_FROM;
        c->expect = X_NONE;
        if (c->lost || c->depth + 1 >= SQLC_DEPTH) {
            c->lost++;
            c->write = 1; /* too deep to follow: assume the worst */
            return;
        }
        L = &c->lv[++c->depth];
        memset(L, 0, sizeof(*L));
        L->verb = inherit ? V_JOINGRP : V_NONE;
        L->first = 1;
        if (inherit) {
            L->list = X_FROM;
            c->expect = X_FROM;
        }
        return;
    }
    if (is_punct(c, t, ')')) {
        if (c->lost) {
            c->lost--;
        } else if (c->depth) {
            c->depth--;
        } else { /* unbalanced: not a statement any server runs as it reads */
            c->write = 1;
            if (!c->started) {
                c->started = 1;
                c->verb = SQLC_V_OTHER;
                c->lv[0].first = 0;
            }
        }
        c->expect = X_NONE;
        return;
    }
    word_of(c, t, &w);

    if (L->first) {
        int top = !c->started;
        L->first = 0;
        c->started = 1;
        if (top && c->depth == 0) {
            if (t->kind == SQLC_TK_WORD) {
                begin_verb(c, L, w.kw, 1);
            } else {
                c->verb = SQLC_V_OTHER;
                c->write = 1;
            }
            c->prevkw = w.kw;
            return;
        }
        if (t->kind == SQLC_TK_WORD && sub_verb(w.kw) &&
            !(w.kw == K_INSERT && next_is_punct(c, '('))) { /* MySQL INSERT(str, ...) */
            begin_verb(c, L, w.kw, top);
            c->prevkw = w.kw;
            return;
        }
        if (top) {
            c->verb = SQLC_V_OTHER;
            c->write = 1;
        }
    }

    if (L->pending == P_WITH && (sub_verb(w.kw) || w.kw == K_REPLACE) && w.kw != K_WITH) {
        begin_verb(c, L, w.kw, c->verb == V_WITHP && c->verb_depth == c->depth);
        c->prevkw = w.kw;
        return;
    }
    if (L->pending == P_EXPLAIN) {
        if (t->kind == SQLC_TK_WORD && explain_option(w.kw)) return;
        if (is_punct(c, t, '=')) return;
        if (t->kind == SQLC_TK_WORD && explainable(w.kw)) {
            c->explain_open = 0;
            begin_verb(c, L, w.kw, 0);
            c->prevkw = w.kw;
            return;
        }
        L->pending = P_NONE;
        if (is_name_tok(c, t) && !(w.flags & KF_S)) { /* DESCRIBE t */
            c->explain_open = 0;
            c->expect = X_DDL;
        }
    }

    if (c->expect) {
        if (t->kind == SQLC_TK_WORD && (w.flags & KF_K)) {
            if (w.kw == K_TEMP || w.kw == K_TEMPORARY) c->flags |= SQLC_SESSION_STATE;
            return;
        }
        if (is_name_tok(c, t) && !(w.flags & KF_S)) {
            int ctx = c->expect;
            c->expect = X_NONE;
            take_name(c, t, ctx);
            c->prevkw = K_NONE;
            return;
        }
        c->expect = X_NONE;
    }

    if (t->kind == SQLC_TK_WORD) {
        plain_word(c, L, &w);
    } else if (is_punct(c, t, ',')) {
        if (L->list) c->expect = L->list;
    } else if (t->kind == SQLC_TK_VAR) {
        struct sqlc_lex la = c->lx;
        struct sqlc_tok n;
        if (sqlc_lex_next(&la, &n) == SQLC_TK_PUNCT && n.len == 2 && c->lx.s[n.off + 1] == '=') {
            c->flags |= SQLC_SESSION_STATE; /* @x := value */
            c->write = 1;
        }
    }
    c->prevkw = w.kw;
}

static void stmt_reset(struct cls *c)
{
    memset(c->lv, 0, sizeof(c->lv[0]));
    c->lv[0].verb = V_NONE;
    c->lv[0].first = 1;
    c->depth = c->lost = 0;
    c->verb = V_UNSET;
    c->verb_depth = 0;
    c->started = c->expect = c->write = c->explain_open = c->routine = 0;
    c->txn_to = c->txn_prepared = c->txn_chain = 0;
    c->prevkw = K_NONE;
    c->block = 0;
    c->flags = 0;
    c->ntok = 0;
}

static void stmt_end(struct cls *c)
{
    if (!c->ntok) return;
    uint8_t v = c->verb;
    unsigned f = c->flags;
    if (v >= SQLC_V_COUNT_) v = SQLC_V_OTHER; /* never started, or WITH without a statement */
    if (v == SQLC_V_OTHER || c->explain_open || c->lost) c->write = 1;
    if ((v == SQLC_V_COMMIT || v == SQLC_V_ROLLBACK) && !c->txn_to && !c->txn_prepared) {
        f |= SQLC_TXN_END;
        if (c->txn_chain) f |= SQLC_TXN_BEGIN;
    }
    int ro = !c->write && read_verb(v);
    if (c->res->statements++ == 0) c->first_verb = v;
    if (!ro && !c->any_write) {
        c->any_write = 1;
        c->write_verb = v;
    }
    c->all_flags |= f;
}

int sqlc_classify(enum sqlc_dialect d, unsigned modes, const char *sql, size_t len,
                  struct sqlc_result *out)
{
    struct cls c;
    struct sqlc_tok t;

    out->verb = SQLC_V_OTHER;
    out->flags = 0;
    out->statements = 0;
    out->ntables = 0;
    out->names_used = 0;
    memset(&c, 0, sizeof(c));
    c.res = out;
    c.dialect = d == SQLC_POSTGRES ? SQLC_POSTGRES : SQLC_MYSQL;
    sqlc_lex_init(&c.lx, (enum sqlc_dialect)c.dialect, modes, sql, len);
    stmt_reset(&c);
    while (sqlc_lex_next(&c.lx, &t) != SQLC_TK_EOF) {
        if (is_punct(&c, &t, ';') && c.block <= 0) {
            stmt_end(&c);
            stmt_reset(&c);
            continue;
        }
        c.ntok++;
        step(&c, &t);
    }
    stmt_end(&c);

    unsigned f = c.all_flags;
    if (out->statements > 1) f |= SQLC_MULTI;
    if (c.lx.err) {
        out->verb = SQLC_V_OTHER;
        out->flags = f | SQLC_WRITE | SQLC_UNTERMINATED;
        return -1;
    }
    if (out->statements == 0) f |= SQLC_EMPTY;
    out->verb = (enum sqlc_verb)(c.any_write ? c.write_verb : out->statements ? c.first_verb
                                                                               : SQLC_V_OTHER);
    out->flags = f | (c.any_write ? SQLC_WRITE : SQLC_READ_ONLY);
    return 0;
}

static const char *const verb_names[SQLC_V_COUNT_] = {
    [SQLC_V_OTHER] = "OTHER", [SQLC_V_SELECT] = "SELECT", [SQLC_V_INSERT] = "INSERT",
    [SQLC_V_UPDATE] = "UPDATE", [SQLC_V_DELETE] = "DELETE", [SQLC_V_REPLACE] = "REPLACE",
    [SQLC_V_MERGE] = "MERGE", [SQLC_V_CREATE] = "CREATE", [SQLC_V_ALTER] = "ALTER",
    [SQLC_V_DROP] = "DROP", [SQLC_V_TRUNCATE] = "TRUNCATE", [SQLC_V_RENAME] = "RENAME",
    [SQLC_V_GRANT] = "GRANT", [SQLC_V_REVOKE] = "REVOKE", [SQLC_V_BEGIN] = "BEGIN",
    [SQLC_V_COMMIT] = "COMMIT", [SQLC_V_ROLLBACK] = "ROLLBACK",
    [SQLC_V_SAVEPOINT] = "SAVEPOINT", [SQLC_V_RELEASE] = "RELEASE", [SQLC_V_SET] = "SET",
    [SQLC_V_SHOW] = "SHOW", [SQLC_V_USE] = "USE", [SQLC_V_EXPLAIN] = "EXPLAIN",
    [SQLC_V_DESCRIBE] = "DESCRIBE", [SQLC_V_CALL] = "CALL", [SQLC_V_DO] = "DO",
    [SQLC_V_LOCK] = "LOCK", [SQLC_V_UNLOCK] = "UNLOCK", [SQLC_V_PREPARE] = "PREPARE",
    [SQLC_V_EXECUTE] = "EXECUTE", [SQLC_V_DEALLOCATE] = "DEALLOCATE", [SQLC_V_COPY] = "COPY",
    [SQLC_V_VACUUM] = "VACUUM", [SQLC_V_ANALYZE] = "ANALYZE", [SQLC_V_VALUES] = "VALUES",
    [SQLC_V_TABLE] = "TABLE", [SQLC_V_LISTEN] = "LISTEN", [SQLC_V_UNLISTEN] = "UNLISTEN",
    [SQLC_V_NOTIFY] = "NOTIFY", [SQLC_V_DISCARD] = "DISCARD", [SQLC_V_RESET] = "RESET",
    [SQLC_V_DECLARE] = "DECLARE", [SQLC_V_FETCH] = "FETCH", [SQLC_V_CLOSE] = "CLOSE",
    [SQLC_V_MOVE] = "MOVE", [SQLC_V_LOAD] = "LOAD", [SQLC_V_COMMENT] = "COMMENT",
    [SQLC_V_REINDEX] = "REINDEX", [SQLC_V_CLUSTER] = "CLUSTER", [SQLC_V_REFRESH] = "REFRESH",
    [SQLC_V_CHECKPOINT] = "CHECKPOINT", [SQLC_V_FLUSH] = "FLUSH",
    [SQLC_V_OPTIMIZE] = "OPTIMIZE", [SQLC_V_KILL] = "KILL", [SQLC_V_HANDLER] = "HANDLER",
    [SQLC_V_XA] = "XA",
};

const char *sqlc_verb_name(enum sqlc_verb v)
{
    if ((unsigned)v >= SQLC_V_COUNT_ || !verb_names[v]) return "OTHER";
    return verb_names[v];
}

size_t sqlc_table_count(const struct sqlc_result *r)
{
    return r->ntables;
}

const char *sqlc_table(const struct sqlc_result *r, size_t i, size_t *len)
{
    if (i >= r->ntables) return NULL;
    if (len) *len = r->table_len[i];
    return r->names + r->table_off[i];
}

int sqlc_has_table(const struct sqlc_result *r, const char *name, size_t n)
{
    for (unsigned i = 0; i < r->ntables; i++)
        if (r->table_len[i] == n && memcmp(r->names + r->table_off[i], name, n) == 0) return 1;
    return 0;
}
