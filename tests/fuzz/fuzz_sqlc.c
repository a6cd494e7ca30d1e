/* fuzz_sqlc.c - libFuzzer target for the SQL classifier (src/proto/sql).
 *
 * The first input byte selects the dialect and session modes, the rest is
 * the query string:
 *   bit 0     0 MySQL, 1 PostgreSQL
 *   bits 1-3  SQLC_MODE_* flags (NO_BACKSLASH_ESCAPES, ANSI_QUOTES,
 *             PG_BACKSLASH_STRINGS), as they are
 * Seeds start with '0' (MySQL) or '1' (PostgreSQL), default modes.
 *
 * Beyond "no crash, no sanitizer report", it checks invariants: the return
 * code matches SQLC_UNTERMINATED, exactly one of READ_ONLY / WRITE is set,
 * flags are consistent (locking reads are writes, EMPTY means no
 * statement, MULTI means several), the verb is in range, every table name
 * lies inside the result's buffer, is non-empty, NUL-terminated and
 * listed once, classification is deterministic, and a comment before or a
 * blank after the input changes nothing. A broken invariant aborts. */
#include "proto/sql/sqlc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define KNOWN_FLAGS                                                                          \
    (SQLC_READ_ONLY | SQLC_WRITE | SQLC_LOCKING_READ | SQLC_TXN_BEGIN | SQLC_TXN_END |       \
     SQLC_SESSION_STATE | SQLC_MULTI | SQLC_UNTERMINATED | SQLC_EMPTY | SQLC_TABLES_TRUNCATED)

static void check_result(int rc, const struct sqlc_result *r)
{
    ASSERT(rc == 0 || rc == -1);
    ASSERT((rc == -1) == ((r->flags & SQLC_UNTERMINATED) != 0));
    ASSERT(!(r->flags & ~KNOWN_FLAGS));
    ASSERT(!(r->flags & SQLC_READ_ONLY) != !(r->flags & SQLC_WRITE));
    if (r->flags & SQLC_LOCKING_READ) ASSERT(r->flags & SQLC_WRITE);
    if (r->flags & SQLC_UNTERMINATED) ASSERT(r->verb == SQLC_V_OTHER);
    if (r->flags & SQLC_EMPTY)
        ASSERT(r->statements == 0 && r->verb == SQLC_V_OTHER && (r->flags & SQLC_READ_ONLY));
    if (rc == 0 && r->statements == 0) ASSERT(r->flags & SQLC_EMPTY);
    ASSERT(((r->flags & SQLC_MULTI) != 0) == (r->statements > 1));
    ASSERT((unsigned)r->verb < SQLC_V_COUNT_);
    ASSERT(sqlc_verb_name(r->verb) != NULL);
    size_t nt = sqlc_table_count(r);
    ASSERT(nt <= SQLC_MAX_TABLES);
    ASSERT(sqlc_table(r, nt, NULL) == NULL);
    for (size_t i = 0; i < nt; i++) {
        size_t len = 0;
        const char *t = sqlc_table(r, i, &len);
        ASSERT(t != NULL);
        ASSERT(len > 0 && len <= SQLC_NAME_MAX);
        ASSERT(t >= r->names && t + len < r->names + SQLC_NAMES_SIZE);
        ASSERT(t[len] == 0);
        ASSERT(sqlc_has_table(r, t, len));
        for (size_t j = 0; j < i; j++) {
            size_t l2;
            const char *u = sqlc_table(r, j, &l2);
            ASSERT(l2 != len || memcmp(u, t, len) != 0);
        }
    }
}

static void same(const struct sqlc_result *a, const struct sqlc_result *b)
{
    ASSERT(a->verb == b->verb && a->flags == b->flags && a->statements == b->statements);
    ASSERT(sqlc_table_count(a) == sqlc_table_count(b));
    for (size_t i = 0; i < sqlc_table_count(a); i++) {
        size_t la, lb;
        const char *ta = sqlc_table(a, i, &la), *tb = sqlc_table(b, i, &lb);
        ASSERT(la == lb && memcmp(ta, tb, la) == 0);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1) return 0;
    enum sqlc_dialect d = (data[0] & 1) ? SQLC_POSTGRES : SQLC_MYSQL;
    unsigned modes = (data[0] >> 1) & 7;
    size_t n = size - 1;
    static const char pre[] = "/* c */ ";
    char *buf = malloc(n ? n : 1), *wrapped = malloc(n + sizeof(pre) + 1);
    if (n) memcpy(buf, data + 1, n);
    struct sqlc_result r, r2;

    int rc = sqlc_classify(d, modes, buf, n, &r);
    check_result(rc, &r);
    ASSERT(sqlc_classify(d, modes, buf, n, &r2) == rc);
    same(&r, &r2);

    /* A comment in front and a blank behind are invisible. */
    memcpy(wrapped, pre, sizeof(pre) - 1);
    if (n) memcpy(wrapped + sizeof(pre) - 1, buf, n);
    wrapped[sizeof(pre) - 1 + n] = ' ';
    ASSERT(sqlc_classify(d, modes, wrapped, n + sizeof(pre), &r2) == rc);
    same(&r, &r2);

    free(buf);
    free(wrapped);
    return 0;
}
