/* test_sqlc.c - unit tests for the SQL classifier (src/proto/sql).
 *
 * Table-driven: each case names a dialect (MySQL, PostgreSQL or both), the
 * statement, the expected verb, flags that must be set and flags that must
 * not be, and the exact table list in order ("a,b"; NULL: not checked).
 * Every case is classified from an exact-size heap copy (AddressSanitizer
 * sees any read past the end), twice (same result), and checked for the
 * invariants that always hold (exactly one of READ_ONLY / WRITE, return
 * code matching SQLC_UNTERMINATED). Prints "N passed, M failed". */
#include "proto/sql/sqlc.h"
#include "proto/sql/sqlc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"



enum { MY = 1, PG = 2, BOTH = 3 };

#define RO SQLC_READ_ONLY
#define WR SQLC_WRITE
#define LK SQLC_LOCKING_READ
#define TB SQLC_TXN_BEGIN
#define TE SQLC_TXN_END
#define SS SQLC_SESSION_STATE
#define MU SQLC_MULTI
#define UT SQLC_UNTERMINATED
#define EM SQLC_EMPTY
#define TR SQLC_TABLES_TRUNCATED

/* "a,b,c" for r's tables, into buf. */
static const char *tables_str(const struct sqlc_result *r, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sqlc_table_count(r); i++) {
        size_t n;
        const char *t = sqlc_table(r, i, &n);
        if (used + n + 2 > cap) break;
        if (i) buf[used++] = ',';
        memcpy(buf + used, t, n);
        used += n;
        buf[used] = 0;
    }
    return buf;
}

static int same_result(const struct sqlc_result *a, const struct sqlc_result *b)
{
    if (a->verb != b->verb || a->flags != b->flags || a->statements != b->statements ||
        sqlc_table_count(a) != sqlc_table_count(b))
        return 0;
    for (size_t i = 0; i < sqlc_table_count(a); i++) {
        size_t na, nb;
        const char *ta = sqlc_table(a, i, &na), *tb = sqlc_table(b, i, &nb);
        if (na != nb || memcmp(ta, tb, na) != 0) return 0;
    }
    return 1;
}

/* Classifies an exact-size copy and checks the invariants; returns rc. */
static int classify(int d, unsigned modes, const char *s, size_t n, struct sqlc_result *r)
{
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    struct sqlc_result again;
    int rc = sqlc_classify(d == PG ? SQLC_POSTGRES : SQLC_MYSQL, modes, copy, n, r);
    int rc2 = sqlc_classify(d == PG ? SQLC_POSTGRES : SQLC_MYSQL, modes, copy, n, &again);
    free(copy);
    int ro = (r->flags & RO) != 0, wr = (r->flags & WR) != 0;
    if (rc != rc2 || !same_result(r, &again) || ro == wr ||
        (rc == -1) != ((r->flags & UT) != 0) || (rc != 0 && rc != -1)) {
        fprintf(stderr, "invariant broken for \"%.*s\" (rc %d flags %#x)\n", (int)n, s, rc, r->flags);
        failed++;
    } else {
        passed++;
    }
    return rc;
}

static void check_case(int line, int dialects, unsigned modes, const char *sql, size_t n,
                       enum sqlc_verb verb, unsigned set, unsigned unset, const char *tables)
{
    for (int d = MY; d <= PG; d <<= 1) {
        if (!(dialects & d)) continue;
        struct sqlc_result r;
        char buf[2048];
        int rc = classify(d, modes, sql, n, &r);
        const char *dn = d == MY ? "mysql" : "postgres";
        (void)rc;
        if (r.verb != verb) {
            fprintf(stderr, "%s:%d [%s] \"%s\": verb %s, want %s\n", __FILE__, line, dn, sql,
                    sqlc_verb_name(r.verb), sqlc_verb_name(verb));
            failed++;
        } else {
            passed++;
        }
        if ((r.flags & set) != set || (r.flags & unset)) {
            fprintf(stderr, "%s:%d [%s] \"%s\": flags %#x, want set %#x unset %#x\n", __FILE__,
                    line, dn, sql, r.flags, set, unset);
            failed++;
        } else {
            passed++;
        }
        if (tables) {
            tables_str(&r, buf, sizeof(buf));
            if (strcmp(buf, tables) != 0) {
                fprintf(stderr, "%s:%d [%s] \"%s\": tables \"%s\", want \"%s\"\n", __FILE__, line,
                        dn, sql, buf, tables);
                failed++;
            } else {
                passed++;
            }
        }
    }
}

#define T(d, sql, verb, set, unset, tables)                                                 \
    check_case(__LINE__, d, 0, sql, sizeof(sql) - 1, SQLC_V_##verb, set, unset, tables)
#define TM(d, modes, sql, verb, set, unset, tables)                                         \
    check_case(__LINE__, d, modes, sql, sizeof(sql) - 1, SQLC_V_##verb, set, unset, tables)

static void test_empty_and_comments(void)
{
    T(BOTH, "", OTHER, RO | EM, WR | MU, "");
    T(BOTH, "   \n\t\r ", OTHER, RO | EM, WR, "");
    T(BOTH, "/* only a comment */", OTHER, RO | EM, WR, "");
    T(BOTH, ";", OTHER, RO | EM, WR | MU, "");
    T(BOTH, " ; ;;\n;", OTHER, RO | EM, WR | MU, "");
    T(MY, "# hash comment", OTHER, EM, WR, "");
    T(BOTH, "-- dash comment\n", OTHER, EM, WR, "");
    T(BOTH, "/* x */ SELECT 1", SELECT, RO, WR | EM, "");
    T(BOTH, "SELECT -- x\n1", SELECT, RO, WR, "");
    T(BOTH, "SELECT /* DELETE FROM t */ 1", SELECT, RO, WR, "");
    T(BOTH, "SELECT 1 -- ; DROP TABLE t", SELECT, RO, WR | MU, "");
    T(MY, "# c\nDELETE FROM t", DELETE, WR, RO, "t");
    T(MY, "SELECT 1 # ; DELETE FROM t\n", SELECT, RO, WR | MU, "");
    T(PG, "# c\nDELETE FROM t", OTHER, WR, RO, "");
    T(MY, "SELECT 1--1", SELECT, RO, WR, "");
    T(MY, "SELECT 1 --\nFROM t", SELECT, RO, WR, "t");
    T(BOTH, "SELECT a /* c */ FROM /* c */ t /* c */ WHERE 1", SELECT, RO, WR, "t");
    T(BOTH, "/* a */ /* b */ -- c\n UPDATE /* d */ t SET a = 1", UPDATE, WR, RO, "t");
    /* MySQL executable comments are code; PostgreSQL sees comments. */
    T(MY, "/*! DELETE FROM t */", DELETE, WR, RO | UT, "t");
    T(MY, "/*!50001 DELETE FROM t */", DELETE, WR, RO, "t");
    T(MY, "/*!99999 DELETE FROM t */", DELETE, WR, RO, "t");
    T(MY, "/*M!100101 DELETE FROM t */", DELETE, WR, RO, "t");
    T(MY, "SELECT /*!40001 SQL_NO_CACHE */ * FROM t", SELECT, RO, WR, "t");
    T(MY, "SELECT 1 /*!, GET_LOCK('x', 1) */", SELECT, WR | SS, RO, "");
    T(MY, "/*+ BKA(t) */ SELECT * FROM t", SELECT, RO, WR, "t");
    T(PG, "/*! DELETE FROM t */", OTHER, RO | EM, WR, "");
    T(PG, "/* outer /* inner */ DELETE FROM t */ SELECT 1", SELECT, RO, WR, "");
    T(MY, "/* outer /* inner */ DELETE FROM t", DELETE, WR, RO, "t");
    T(PG, "/* open /* nested */", OTHER, WR | UT, RO, NULL);
    T(MY, "/*! SELECT 1", OTHER, WR | UT, RO, NULL);
    T(BOTH, "SELECT 1 /* unterminated", OTHER, WR | UT, RO, NULL);
    T(BOTH, "SELECT 1 /", SELECT, RO, WR, "");
}

static void test_strings_and_identifiers(void)
{
    T(BOTH, "SELECT 'x; DELETE FROM t'", SELECT, RO, WR | MU, "");
    T(MY, "SELECT 'it\\'s; DELETE FROM t'", SELECT, RO, WR | MU, "");
    T(PG, "SELECT 'it\\'s; DELETE FROM t'", OTHER, WR | UT, RO, NULL);
    T(PG, "SELECT E'it\\'s; DELETE FROM t'", SELECT, RO, WR, "");
    T(PG, "SELECT e'\\\\'; DELETE FROM t", DELETE, WR | MU, RO, "t");
    T(BOTH, "SELECT 'a''b; DROP TABLE x'", SELECT, RO, WR, "");
    T(MY, "SELECT \"x; DELETE FROM t\"", SELECT, RO, WR, "");
    T(MY, "SELECT \"a\\\"; DELETE FROM t\"", SELECT, RO, WR, "");
    T(BOTH, "SELECT 'unterminated", OTHER, WR | UT, RO, NULL);
    T(BOTH, "SELECT 'x''", OTHER, WR | UT, RO, NULL);
    T(MY, "SELECT 'x\\'", OTHER, WR | UT, RO, NULL);
    T(MY, "SELECT `x", OTHER, WR | UT, RO, NULL);
    T(PG, "SELECT * FROM \"unterminated", OTHER, WR | UT, RO, NULL);
    T(MY, "SELECT _utf8mb4'x', N'y', X'41', B'1' FROM t", SELECT, RO, WR, "t");
    /* Session modes change where strings end. */
    TM(MY, SQLC_MODE_NO_BACKSLASH_ESCAPES, "SELECT 'a\\'; DELETE FROM t; -- '", DELETE, WR | MU,
       RO, "t");
    TM(MY, 0, "SELECT 'a\\'; DELETE FROM t; -- '", SELECT, RO, WR | MU, "");
    TM(PG, SQLC_MODE_PG_BACKSLASH_STRINGS, "SELECT 'a\\'; DELETE FROM t; -- '", SELECT, RO,
       WR | MU, "");
    TM(PG, 0, "SELECT 'a\\'; DELETE FROM t; -- '", DELETE, WR | MU, RO, "t");
    TM(MY, SQLC_MODE_ANSI_QUOTES, "SELECT * FROM \"my t\"", SELECT, RO, WR, "my t");
    TM(MY, SQLC_MODE_ANSI_QUOTES, "SELECT \"a\\\"; DELETE FROM t", DELETE, WR | MU, RO, "t");
    /* Dollar quoting, parameters, U& forms. */
    T(PG, "SELECT $$x; DELETE FROM t$$", SELECT, RO, WR | MU, "");
    T(PG, "SELECT $tag$ $$ ; DELETE $tag$ FROM t", SELECT, RO, WR, "t");
    T(PG, "SELECT $a$ unterminated $b$", OTHER, WR | UT, RO, NULL);
    T(PG, "SELECT $$", OTHER, WR | UT, RO, NULL);
    T(PG, "SELECT $1, $2 FROM t WHERE a = $3", SELECT, RO, WR, "t");
    T(PG, "SELECT a$b FROM t$1", SELECT, RO, WR, "t$1");
    T(PG, "DO $$BEGIN DELETE FROM t; END$$", DO, WR, RO | MU, "");
    T(PG, "SELECT U&'d\\0061t' FROM t", SELECT, RO, WR, "t");
    T(PG, "SELECT * FROM U&\"t\"", SELECT, RO, WR, "t");
    T(MY, "SELECT $$ FROM t", SELECT, RO, WR, "t");
    /* Quoted identifiers: quotes removed, doubled quotes undone. */
    T(MY, "SELECT `a``b` FROM `my table`", SELECT, RO, WR, "my table");
    T(MY, "SELECT * FROM `db`.`users` u JOIN `db`.orders o ON u.id = o.uid", SELECT, RO, WR,
      "db.users,db.orders");
    T(MY, "SELECT * FROM `we``ird`", SELECT, RO, WR, "we`ird");
    T(PG, "SELECT * FROM \"Users\"", SELECT, RO, WR, "Users");
    T(PG, "SELECT * FROM \"My\"\"Schema\".\"T\"", SELECT, RO, WR, "My\"Schema.T");
    T(PG, "SELECT * FROM public.users", SELECT, RO, WR, "public.users");
    T(PG, "SELECT * FROM cat.sch.tbl", SELECT, RO, WR, "cat.sch.tbl");
    T(MY, "SELECT * FROM db . t", SELECT, RO, WR, "db.t");
    T(MY, "SELECT * FROM db.`select`", SELECT, RO, WR, "db.select");
    T(PG, "SELECT * FROM \"\"", SELECT, RO, WR, "");
}

static void test_tables(void)
{
    T(BOTH, "select * from users", SELECT, RO, WR, "users");
    T(BOTH, "SeLeCt a FrOm Users", SELECT, RO, WR, "Users");
    T(BOTH, "SELECT * FROM a, b, c WHERE a.x = b.x", SELECT, RO, WR, "a,b,c");
    T(BOTH, "SELECT * FROM a AS x, b y WHERE 1", SELECT, RO, WR, "a,b");
    T(BOTH, "SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN c USING (id)", SELECT, RO, WR,
      "a,b,c");
    T(BOTH, "SELECT * FROM a INNER JOIN b ON a.x = b.x, c", SELECT, RO, WR, "a,b,c");
    T(BOTH, "SELECT * FROM a LEFT OUTER JOIN b ON a.x = b.x RIGHT JOIN c ON 1 FULL JOIN d ON 1",
      SELECT, RO, WR, "a,b,c,d");
    T(BOTH, "SELECT * FROM a WHERE x IN (SELECT y FROM b WHERE z = (SELECT max(z) FROM c))",
      SELECT, RO, WR, "a,b,c");
    T(BOTH, "SELECT * FROM (SELECT * FROM a) AS s JOIN b ON 1 = 1", SELECT, RO, WR, "a,b");
    T(BOTH, "SELECT * FROM t1, (SELECT 1) AS x, t2", SELECT, RO, WR, "t1,t2");
    T(BOTH, "SELECT EXTRACT(YEAR FROM d) FROM t", SELECT, RO, WR, "t");
    T(PG, "SELECT substring(s FROM 2 FOR 3) FROM t", SELECT, RO, WR | LK, "t");
    T(BOTH, "SELECT trim(both 'x' FROM s) FROM t", SELECT, RO, WR, "t");
    T(PG, "SELECT * FROM generate_series(1, 10) g", SELECT, RO, WR, "");
    T(PG, "SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.x = a.x) s", SELECT, RO, WR, "a,b");
    T(PG, "SELECT * FROM a, LATERAL unnest(a.arr) u, c", SELECT, RO, WR, "a,c");
    T(BOTH, "SELECT a, b FROM t ORDER BY a, b", SELECT, RO, WR, "t");
    T(BOTH, "SELECT a FROM t GROUP BY a, b HAVING count(*) > 1", SELECT, RO, WR, "t");
    T(MY, "SELECT * FROM t LIMIT 1, 2", SELECT, RO, WR, "t");
    T(BOTH, "SELECT * FROM (a JOIN b ON a.x = b.x)", SELECT, RO, WR, "a,b");
    T(MY, "SELECT 1 FROM DUAL", SELECT, RO, WR, "");
    T(BOTH, "SELECT * FROM t1 UNION SELECT * FROM t2", SELECT, RO, WR, "t1,t2");
    T(BOTH, "(SELECT a FROM t1) UNION (SELECT a FROM t2)", SELECT, RO, WR, "t1,t2");
    T(BOTH, "((((SELECT 1))))", SELECT, RO, WR, "");
    T(BOTH, "SELECT (SELECT count(*) FROM a), b FROM c", SELECT, RO, WR, "a,c");
    T(BOTH, "SELECT * FROM a NATURAL JOIN b CROSS JOIN c", SELECT, RO, WR, "a,b,c");
    T(MY, "SELECT STRAIGHT_JOIN * FROM a STRAIGHT_JOIN b ON 1", SELECT, RO, WR, "a,b");
    T(BOTH, "SELECT * FROM t t1, t t2", SELECT, RO, WR, "t");
    T(PG, "SELECT * FROM ONLY parent", SELECT, RO, WR, "parent");
    T(MY, "SELECT * FROM t1 USE INDEX (i1, i2), t2", SELECT, RO, WR, "t1,t2");
    T(BOTH, "SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.id = a.id)", SELECT, RO, WR,
      "a,b");
    T(PG, "SELECT * FROM (VALUES (1, 2)) AS v(a, b)", SELECT, RO, WR, "");
    T(BOTH, "SELECT a.b FROM a", SELECT, RO, WR, "a");
    T(BOTH, "SELECT 1 FROM", SELECT, RO, WR, "");
    T(BOTH, "SELECT * FROM t WHERE a = 'FROM x'", SELECT, RO, WR, "t");
}

static void test_writes(void)
{
    T(BOTH, "INSERT INTO t (a, b) VALUES (1, 2), (3, 4)", INSERT, WR, RO, "t");
    T(BOTH, "insert into t(a) values (1)", INSERT, WR, RO, "t");
    T(MY, "INSERT t VALUES (1)", INSERT, WR, RO, "t");
    T(MY, "INSERT IGNORE INTO t VALUES (1)", INSERT, WR, RO, "t");
    T(MY, "INSERT LOW_PRIORITY INTO db.t SET a = 1", INSERT, WR, RO, "db.t");
    T(BOTH, "INSERT INTO t SELECT * FROM s", INSERT, WR, RO, "t,s");
    T(BOTH, "INSERT INTO t (a) SELECT a FROM s JOIN u ON s.id = u.id", INSERT, WR, RO, "t,s,u");
    T(MY, "INSERT INTO t SELECT * FROM s ON DUPLICATE KEY UPDATE a = 1, b = 2", INSERT, WR, RO,
      "t,s");
    T(PG, "INSERT INTO t AS x VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1, b = 2", INSERT, WR,
      RO, "t");
    T(MY, "REPLACE INTO t VALUES (1)", REPLACE, WR, RO, "t");
    T(MY, "SELECT INSERT('abc', 1, 1, 'x'), REPLACE(a, 'b', 'c') FROM t", SELECT, RO, WR, "t");
    T(MY, "SELECT (INSERT('abc', 1, 1, 'x')) FROM t", SELECT, RO, WR, "t");
    T(BOTH, "UPDATE t SET a = 1 WHERE id = 2", UPDATE, WR, RO, "t");
    T(MY, "UPDATE t1, t2 SET t1.a = t2.a WHERE t1.id = t2.id", UPDATE, WR, RO, "t1,t2");
    T(MY, "UPDATE LOW_PRIORITY IGNORE t SET a = 1", UPDATE, WR, RO, "t");
    T(MY, "UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = 1", UPDATE, WR, RO, "t1,t2");
    T(PG, "UPDATE t SET a = s.a FROM s WHERE t.id = s.id", UPDATE, WR, RO, "t,s");
    T(PG, "UPDATE ONLY t SET a = 1", UPDATE, WR, RO, "t");
    T(BOTH, "UPDATE t SET a = (SELECT max(b) FROM u), c = 2", UPDATE, WR, RO, "t,u");
    T(BOTH, "DELETE FROM t WHERE id IN (1, 2)", DELETE, WR, RO, "t");
    T(BOTH, "delete from T", DELETE, WR, RO, "T");
    T(MY, "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", DELETE, WR, RO, "t1,t2");
    T(MY, "DELETE QUICK IGNORE FROM t", DELETE, WR, RO, "t");
    T(MY, "DELETE FROM t1, t2 USING t1 JOIN t2", DELETE, WR, RO, "t1,t2");
    T(PG, "DELETE FROM t USING s WHERE t.id = s.id", DELETE, WR, RO, "t,s");
    T(PG, "DELETE FROM t WHERE id = 1 RETURNING *", DELETE, WR, RO, "t");
    T(PG,
      "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a "
      "WHEN NOT MATCHED THEN INSERT (a) VALUES (s.a)",
      MERGE, WR, RO, "t,s");
}

static void test_ddl(void)
{
    T(BOTH, "CREATE TABLE t (a int, b int)", CREATE, WR, RO | SS, "t");
    T(BOTH, "CREATE TABLE IF NOT EXISTS db.t (a int)", CREATE, WR, RO, "db.t");
    T(MY, "CREATE TEMPORARY TABLE tmp (a int)", CREATE, WR | SS, RO, "tmp");
    T(PG, "CREATE TEMP TABLE tmp AS SELECT * FROM t", CREATE, WR | SS, RO, "tmp,t");
    T(PG, "CREATE GLOBAL TEMPORARY TABLE tmp (a int)", CREATE, WR | SS, RO, "tmp");
    T(PG, "CREATE UNLOGGED TABLE u (a int)", CREATE, WR, RO | SS, "u");
    T(MY, "CREATE TABLE t (id int, pid int REFERENCES p(id)) ENGINE=InnoDB, AUTO_INCREMENT=5",
      CREATE, WR, RO, "t,p");
    T(BOTH, "CREATE TABLE t2 AS SELECT * FROM t1", CREATE, WR, RO, "t2,t1");
    T(BOTH, "ALTER TABLE t ADD COLUMN c int", ALTER, WR, RO, "t");
    T(BOTH, "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id)", ALTER, WR, RO,
      "t,p");
    T(PG, "ALTER TABLE IF EXISTS ONLY t DROP COLUMN c", ALTER, WR, RO, "t");
    T(BOTH, "DROP TABLE a, b", DROP, WR, RO, "a,b");
    T(BOTH, "DROP TABLE IF EXISTS a, b CASCADE", DROP, WR, RO, "a,b");
    T(MY, "DROP TEMPORARY TABLE tmp", DROP, WR | SS, RO, "tmp");
    T(BOTH, "DROP VIEW v", DROP, WR, RO, "");
    T(BOTH, "TRUNCATE TABLE t", TRUNCATE, WR, RO, "t");
    T(PG, "TRUNCATE a, b RESTART IDENTITY", TRUNCATE, WR, RO, "a,b");
    T(MY, "RENAME TABLE a TO b, c TO d", RENAME, WR, RO, "a,b,c,d");
    T(BOTH, "CREATE INDEX i ON t (a)", CREATE, WR, RO, "t");
    T(MY, "CREATE UNIQUE INDEX i ON t (a)", CREATE, WR, RO, "t");
    T(PG, "CREATE INDEX CONCURRENTLY i ON t USING btree (a)", CREATE, WR, RO, "t");
    T(MY, "DROP INDEX i ON t", DROP, WR, RO, "t");
    T(BOTH, "CREATE VIEW v AS SELECT * FROM t", CREATE, WR, RO, "t");
    T(BOTH, "GRANT SELECT ON t TO u", GRANT, WR, RO, "");
    T(BOTH, "REVOKE SELECT ON t FROM u", REVOKE, WR, RO, "");
}

static void test_transactions(void)
{
    T(BOTH, "BEGIN", BEGIN, WR | TB, RO | TE, "");
    T(MY, "BEGIN WORK", BEGIN, WR | TB, RO | TE, "");
    T(BOTH, "START TRANSACTION", BEGIN, WR | TB, RO, "");
    T(BOTH, "start transaction read only", BEGIN, WR | TB, RO, "");
    T(PG, "BEGIN ISOLATION LEVEL SERIALIZABLE", BEGIN, TB, RO, "");
    T(BOTH, "COMMIT", COMMIT, WR | TE, RO | TB, "");
    T(BOTH, "commit work", COMMIT, TE, TB, "");
    T(BOTH, "ROLLBACK", ROLLBACK, WR | TE, RO | TB, "");
    T(BOTH, "ROLLBACK TO SAVEPOINT s1", ROLLBACK, WR, TE | TB, "");
    T(BOTH, "ROLLBACK TO s1", ROLLBACK, WR, TE, "");
    T(MY, "ROLLBACK WORK TO SAVEPOINT s1", ROLLBACK, WR, TE, "");
    T(BOTH, "COMMIT AND CHAIN", COMMIT, TE | TB, RO, "");
    T(BOTH, "COMMIT AND NO CHAIN", COMMIT, TE, TB, "");
    T(PG, "END", COMMIT, TE, TB, "");
    T(PG, "ABORT", ROLLBACK, TE, TB, "");
    T(MY, "END", OTHER, WR, TE, "");
    T(PG, "COMMIT PREPARED 'x'", COMMIT, WR, TE, "");
    T(BOTH, "SAVEPOINT s1", SAVEPOINT, WR, TE | TB, "");
    T(BOTH, "RELEASE SAVEPOINT s1", RELEASE, WR, TE, "");
    T(MY, "START SLAVE", OTHER, WR, TB, "");
    T(MY, "XA START 'x'", XA, WR | SS, RO, "");
    T(BOTH, "BEGIN; UPDATE t SET a = 1; COMMIT", BEGIN, WR | TB | TE | MU, RO, "t");
}

static void test_session(void)
{
    T(BOTH, "SET NAMES utf8mb4", SET, WR | SS, RO, "");
    T(MY, "SET @x = 1", SET, WR | SS, RO, "");
    T(MY, "SET SESSION sql_mode = ''", SET, SS, RO, "");
    T(BOTH, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", SET, SS, RO | TB, "");
    T(PG, "SET search_path TO app, public", SET, SS, RO, "");
    T(PG, "SET LOCAL statement_timeout = 5", SET, SS, RO, "");
    T(MY, "USE db", USE, WR | SS, RO, "");
    T(MY, "PREPARE s FROM 'SELECT * FROM t WHERE id = ?'", PREPARE, WR | SS, RO, "");
    T(PG, "PREPARE s (int) AS SELECT * FROM t WHERE id = $1", PREPARE, WR | SS, RO, "t");
    T(BOTH, "EXECUTE s", EXECUTE, WR, RO, "");
    T(MY, "EXECUTE s USING @a", EXECUTE, WR, RO, "");
    T(MY, "DEALLOCATE PREPARE s", DEALLOCATE, WR | SS, RO, "");
    T(PG, "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t", DECLARE, WR | SS, RO | LK, "t");
    T(PG, "FETCH NEXT FROM c", FETCH, WR, RO, "");
    T(PG, "LISTEN ch", LISTEN, WR | SS, RO, "");
    T(PG, "UNLISTEN *", UNLISTEN, SS, RO, "");
    T(PG, "NOTIFY ch, 'x'", NOTIFY, WR, RO | SS, "");
    T(PG, "DISCARD ALL", DISCARD, WR | SS, RO, "");
    T(PG, "RESET ALL", RESET, WR | SS, RO, "");
    T(MY, "LOCK TABLES t1 READ, t2 WRITE", LOCK, WR | SS, RO, "t1,t2");
    T(MY, "LOCK TABLES t1 AS a READ LOCAL, db.t2 WRITE", LOCK, WR | SS, RO, "t1,db.t2");
    T(MY, "UNLOCK TABLES", UNLOCK, WR | SS, RO, "");
    T(PG, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", LOCK, WR | SS, RO, "t");
    T(PG, "LOCK t", LOCK, WR | SS, RO, "t");
    T(MY, "SELECT GET_LOCK('x', 10)", SELECT, WR | SS, RO, "");
    T(MY, "SELECT RELEASE_LOCK('x')", SELECT, WR | SS, RO, "");
    T(MY, "select release_all_locks()", SELECT, WR | SS, RO, "");
    T(MY, "DO GET_LOCK('x', 1)", DO, WR | SS, RO, "");
    T(PG, "SELECT pg_advisory_lock(1)", SELECT, WR | SS, RO, "");
    T(PG, "SELECT pg_advisory_xact_lock(1)", SELECT, WR, RO | SS, "");
    T(PG, "SELECT pg_try_advisory_lock(1)", SELECT, WR | SS, RO, "");
    T(PG, "SELECT PG_ADVISORY_UNLOCK_ALL()", SELECT, WR | SS, RO, "");
    T(PG, "SELECT set_config('a.b', 'c', false)", SELECT, WR | SS, RO, "");
    T(MY, "SELECT @x := 5", SELECT, WR | SS, RO, "");
    T(MY, "SELECT @x, @@session.sql_mode", SELECT, RO, WR | SS, "");
    T(MY, "SELECT a INTO @x FROM t", SELECT, WR | SS, RO, "t");
    T(MY, "SELECT a FROM t INTO @x, @y", SELECT, WR | SS, RO, "t");
    T(MY, "SELECT * FROM t INTO OUTFILE '/tmp/x'", SELECT, WR, RO | SS, "t");
    T(PG, "SELECT * INTO newt FROM t", SELECT, WR, RO | SS, "newt,t");
    T(PG, "SELECT * INTO TEMP tt FROM t", SELECT, WR | SS, RO, "tt,t");
}

static void test_functions(void)
{
    T(PG, "SELECT nextval('s')", SELECT, WR, RO, "");
    T(PG, "SELECT setval('s', 5)", SELECT, WR, RO, "");
    T(PG, "SELECT pg_catalog.nextval('s')", SELECT, WR, RO, "");
    T(PG, "SELECT currval('s'), lastval()", SELECT, WR, RO, "");
    T(PG, "SELECT NEXTVAL ('s')", SELECT, WR, RO, "");
    T(MY, "SELECT LAST_INSERT_ID()", SELECT, WR, RO, "");
    T(MY, "SELECT last_insert_id(5)", SELECT, WR, RO, "");
    T(MY, "SELECT FOUND_ROWS()", SELECT, WR, RO, "");
    T(MY, "SELECT SLEEP(1)", SELECT, RO, WR, "");
    T(PG, "SELECT pg_sleep(1)", SELECT, RO, WR, "");
    T(PG, "SELECT * FROM nextval('s')", SELECT, WR, RO, "");
    T(PG, "SELECT txid_current()", SELECT, WR, RO, "");
    T(PG, "SELECT lo_import('/x')", SELECT, WR, RO, "");
    T(PG, "SELECT pg_terminate_backend(42)", SELECT, WR, RO, "");
    T(PG, "SELECT pg_notify('ch', 'x')", SELECT, WR, RO, "");
    T(BOTH, "SELECT nextval FROM t", SELECT, RO, WR, "t");
    T(PG, "SELECT now(), count(*), lower(name) FROM t", SELECT, RO, WR, "t");
    T(PG, "SELECT 'nextval(1)' FROM t", SELECT, RO, WR, "t");
    T(BOTH, "SELECT * FROM t WHERE id = (SELECT nextval('s'))", SELECT, WR, RO, "t");
}

static void test_locking(void)
{
    T(BOTH, "SELECT * FROM t FOR UPDATE", SELECT, WR | LK, RO, "t");
    T(BOTH, "select * from t for update nowait", SELECT, WR | LK, RO, "t");
    T(PG, "SELECT * FROM t FOR NO KEY UPDATE", SELECT, WR | LK, RO, "t");
    T(BOTH, "SELECT * FROM t FOR SHARE", SELECT, WR | LK, RO, "t");
    T(PG, "SELECT * FROM t FOR KEY SHARE", SELECT, WR | LK, RO, "t");
    T(MY, "SELECT * FROM t LOCK IN SHARE MODE", SELECT, WR | LK, RO, "t");
    T(MY, "SELECT * FROM t FOR SHARE SKIP LOCKED", SELECT, WR | LK, RO, "t");
    T(PG, "SELECT * FROM t FOR UPDATE OF t SKIP LOCKED", SELECT, WR | LK, RO, "t");
    T(BOTH, "SELECT * FROM (SELECT * FROM t FOR UPDATE) s", SELECT, WR | LK, RO, "t");
    T(BOTH, "SELECT * FROM a, b WHERE a.x = b.x FOR UPDATE", SELECT, WR | LK, RO, "a,b");
    T(BOTH, "SELECT 'FOR UPDATE' FROM t", SELECT, RO, WR | LK, "t");
    T(BOTH, "SELECT * FROM t WHERE a = 1 -- FOR UPDATE", SELECT, RO, LK, "t");
    T(MY, "SELECT `for`, `update` FROM t", SELECT, RO, LK, "t");
}

static void test_cte(void)
{
    T(BOTH, "WITH x AS (SELECT * FROM a) SELECT * FROM x JOIN b ON 1", SELECT, RO, WR, "a,x,b");
    T(BOTH,
      "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
      "SELECT * FROM r",
      SELECT, RO, WR, "r");
    T(PG, "WITH d AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM d", SELECT, WR, RO,
      "t,d");
    T(PG, "WITH u AS (UPDATE t SET a = 1 RETURNING id) SELECT count(*) FROM u", SELECT, WR, RO,
      "t,u");
    T(PG, "WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM i", SELECT, WR, RO,
      "t,i");
    T(PG, "WITH x AS (SELECT id FROM s) INSERT INTO t SELECT * FROM x", INSERT, WR, RO, "s,t,x");
    T(MY, "WITH x AS (SELECT id FROM s) UPDATE t JOIN x ON t.id = x.id SET t.a = 1", UPDATE, WR,
      RO, "s,t,x");
    T(MY, "WITH x AS (SELECT 1) DELETE FROM t", DELETE, WR, RO, "t");
    T(PG, "WITH a AS (WITH b AS (SELECT 1) SELECT * FROM b) SELECT * FROM a", SELECT, RO, WR,
      "b,a");
    T(PG, "WITH x AS NOT MATERIALIZED (SELECT * FROM t) SELECT * FROM x", SELECT, RO, WR, "t,x");
    T(PG, "WITH x (a, b) AS (VALUES (1, 2)), y AS (SELECT * FROM z) SELECT * FROM x, y", SELECT,
      RO, WR, "z,x,y");
    T(BOTH, "WITH x AS (SELECT 1)", OTHER, WR, RO, NULL);
    T(BOTH, "with x as (select 1) select * from x for update", SELECT, WR | LK, RO, "x");
}

static void test_multi(void)
{
    struct sqlc_result r;
    T(BOTH, "SELECT 1; UPDATE t SET a=1", UPDATE, WR | MU, RO, "t");
    T(BOTH, "SELECT * FROM a; SELECT * FROM b", SELECT, RO | MU, WR, "a,b");
    T(BOTH, "SELECT 1;", SELECT, RO, WR | MU, "");
    T(BOTH, "SELECT 1; SELECT 2 FOR UPDATE", SELECT, WR | LK | MU, RO, "");
    T(BOTH, "SELECT 1; /* c */ ; -- x\n", SELECT, RO, WR | MU, "");
    T(BOTH, "SELECT 'a;b'; DELETE FROM t WHERE x = ';'", DELETE, WR | MU, RO, "t");
    T(BOTH, "INSERT INTO a VALUES (1); DELETE FROM b", INSERT, WR | MU, RO, "a,b");
    T(BOTH, "SELECT * FROM a; SET x = 1; SELECT * FROM b", SET, WR | SS | MU, RO, "a,b");
    T(BOTH, "SELECT 1; SELECT 'x", OTHER, WR | UT | MU, RO, NULL);
    classify(MY, 0, "SELECT 1; SELECT 2;; SELECT 3", 29, &r);
    CHECK(r.statements == 3);
    classify(PG, 0, "SELECT 1", 8, &r);
    CHECK(r.statements == 1);
    /* Routine bodies do not split on their semicolons. */
    T(MY, "CREATE PROCEDURE p() BEGIN SELECT 1; DELETE FROM t; END", CREATE, WR, RO | MU, "t");
    T(MY, "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; END; SELECT 2", CREATE, WR | MU,
      RO, "");
    T(MY,
      "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN INSERT INTO log VALUES (1); "
      "END",
      CREATE, WR, RO | MU | LK, "t,log");
    T(MY, "CREATE PROCEDURE p() BEGIN CASE WHEN 1 THEN SELECT 1; END CASE; END; COMMIT", CREATE,
      WR | MU | TE, RO, "");
    T(MY, "BEGIN NOT ATOMIC SELECT 1; END", OTHER, WR, RO | MU | TB, "");
    T(PG, "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", CREATE, WR,
      RO | MU, "");
    T(PG,
      "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; COMMIT",
      CREATE, WR | MU | TE, RO, "");
    T(BOTH, "CREATE TABLE t (begin int); DELETE FROM x", CREATE, WR | MU, RO, "t,x");
}

static void test_other_verbs(void)
{
    T(BOTH, "EXPLAIN SELECT * FROM t", EXPLAIN, RO, WR, "t");
    T(PG, "EXPLAIN ANALYZE SELECT * FROM t", EXPLAIN, RO, WR, "t");
    T(PG, "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t", EXPLAIN, WR, RO, "t");
    T(PG, "EXPLAIN ANALYZE VERBOSE WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", EXPLAIN,
      WR, RO, "t,d");
    T(MY, "EXPLAIN FORMAT=JSON SELECT * FROM t", EXPLAIN, RO, WR, "t");
    T(MY, "EXPLAIN t", EXPLAIN, RO, WR, "t");
    T(MY, "DESCRIBE t", DESCRIBE, RO, WR, "t");
    T(MY, "DESC db.t", DESCRIBE, RO, WR, "db.t");
    T(MY, "DESCRIBE SELECT * FROM t FOR UPDATE", DESCRIBE, WR | LK, RO, "t");
    T(MY, "EXPLAIN UPDATE t SET a = 1", EXPLAIN, WR, RO, "t");
    T(MY, "EXPLAIN FOR CONNECTION 5", EXPLAIN, WR, RO, "");
    T(BOTH, "EXPLAIN", EXPLAIN, WR, RO, "");
    T(MY, "SHOW TABLES", SHOW, RO, WR, "");
    T(MY, "SHOW CREATE TABLE t", SHOW, RO, WR, NULL);
    T(PG, "SHOW search_path", SHOW, RO, WR, "");
    T(BOTH, "VALUES (1), (2)", VALUES, RO, WR, "");
    T(BOTH, "TABLE t", TABLE, RO, WR, "t");
    T(BOTH, "CALL p(1)", CALL, WR, RO, "");
    T(PG, "COPY t (a, b) FROM STDIN", COPY, WR, RO, "t");
    T(PG, "COPY (SELECT * FROM t) TO STDOUT", COPY, WR, RO, "t");
    T(PG, "VACUUM FULL t", VACUUM, WR, RO, "t");
    T(PG, "ANALYZE t", ANALYZE, WR, RO, "t");
    T(MY, "ANALYZE TABLE t1, t2", ANALYZE, WR, RO, "t1,t2");
    T(MY, "OPTIMIZE TABLE t", OPTIMIZE, WR, RO, "t");
    T(MY, "LOAD DATA INFILE 'x' INTO TABLE t", LOAD, WR, RO, NULL);
    T(MY, "FLUSH TABLES t1, t2", FLUSH, WR, RO, "t1,t2");
    T(MY, "KILL 42", KILL, WR, RO, "");
    T(PG, "REFRESH MATERIALIZED VIEW mv", REFRESH, WR, RO, "");
    T(PG, "CHECKPOINT", CHECKPOINT, WR, RO, "");
    T(BOTH, "frobnicate the thing", OTHER, WR, RO, "");
    T(BOTH, "42", OTHER, WR, RO, "");
    T(BOTH, "(1)", OTHER, WR, RO, "");
    T(BOTH, "()", OTHER, WR, RO, "");
    T(BOTH, ")))SELECT 1", OTHER, WR, RO, "");
}

static void test_bytes(void)
{
    T(BOTH, "SELECT \xff\xfe FROM \x80t", SELECT, RO, WR, "\x80t");
    T(BOTH, "\xff DELETE", OTHER, WR, RO, "");
    T(BOTH, "SELECT 1\x00; DELETE FROM t", DELETE, WR | MU, RO, "t");
    T(BOTH, "\x00\x01\x02", OTHER, WR, RO, "");
    T(MY, "SELECT `\x00\xff`", SELECT, RO, WR, "");
    T(MY, "SELECT * FROM `a\0b`", SELECT, RO, WR, NULL);
    struct sqlc_result r;
    classify(MY, 0, "SELECT * FROM `a\0b`", 19, &r);
    size_t n = 0;
    const char *t = sqlc_table(&r, 0, &n);
    CHECK(t && n == 3 && memcmp(t, "a\0b", 3) == 0);
    CHECK(sqlc_table(&r, 1, &n) == NULL);
    CHECK(sqlc_has_table(&r, "a\0b", 3) && !sqlc_has_table(&r, "a", 1));
    /* NULL with length 0 is empty input. */
    CHECK(sqlc_classify(SQLC_MYSQL, 0, NULL, 0, &r) == 0 && (r.flags & EM));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 MiB inputs of several shapes: each must finish fast (linear work). */
static void test_large(void)
{
    size_t n = 1u << 20;
    char *s = malloc(n + 64);
    struct sqlc_result r;
    double t0, worst = 0;

    /* A long IN list. */
    strcpy(s, "SELECT a FROM t WHERE x IN (");
    size_t p = strlen(s);
    while (p < n - 8) p += (size_t)sprintf(s + p, "%zu,", p % 1000);
    strcpy(s + p, "1)");
    t0 = now_s();
    CHECK(sqlc_classify(SQLC_MYSQL, 0, s, strlen(s), &r) == 0 && r.verb == SQLC_V_SELECT &&
          (r.flags & RO) && sqlc_has_table(&r, "t", 1));
    worst = now_s() - t0 > worst ? now_s() - t0 : worst;

    /* Deep nesting: not followed, so a write. */
    memset(s, '(', n);
    memcpy(s + n / 2, "SELECT 1", 8);
    for (int d = 0; d < 2; d++) {
        t0 = now_s();
        CHECK(sqlc_classify(d ? SQLC_POSTGRES : SQLC_MYSQL, 0, s, n, &r) == 0 && (r.flags & WR));
        worst = now_s() - t0 > worst ? now_s() - t0 : worst;
    }
    /* Many statements, many (duplicate and distinct) tables. */
    p = 0;
    for (unsigned i = 0; p < n - 64; i++) p += (size_t)sprintf(s + p, "SELECT * FROM t%u;", i % 40);
    t0 = now_s();
    CHECK(sqlc_classify(SQLC_POSTGRES, 0, s, p, &r) == 0 && (r.flags & MU) && (r.flags & RO) &&
          (r.flags & TR) && sqlc_table_count(&r) == SQLC_MAX_TABLES);
    worst = now_s() - t0 > worst ? now_s() - t0 : worst;

    /* Unterminated constructs at the very start of 1 MiB. */
    const char *heads[] = {"SELECT '", "/*", "SELECT $q$", "SELECT \"", "/*!"};
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        memset(s, 'x', n);
        memcpy(s, heads[h], strlen(heads[h]));
        for (int d = 0; d < 2; d++) {
            t0 = now_s();
            int rc = sqlc_classify(d ? SQLC_POSTGRES : SQLC_MYSQL, 0, s, n, &r);
            worst = now_s() - t0 > worst ? now_s() - t0 : worst;
            CHECK(rc == -1 || (d == 0 && h == 2));
        }
    }
    /* Pathological comment and dollar-tag patterns. */
    for (size_t i = 0; i < n; i += 2) memcpy(s + i, "/*", 2);
    t0 = now_s();
    CHECK(sqlc_classify(SQLC_POSTGRES, 0, s, n, &r) == -1);
    worst = now_s() - t0 > worst ? now_s() - t0 : worst;
    for (size_t i = 0; i < n; i++) s[i] = "$a"[i % 2];
    t0 = now_s();
    sqlc_classify(SQLC_POSTGRES, 0, s, n, &r);
    worst = now_s() - t0 > worst ? now_s() - t0 : worst;
    /* A table name longer than SQLC_NAME_MAX is dropped and says so. */
    memcpy(s, "SELECT * FROM ", 14);
    memset(s + 14, 'n', 300);
    CHECK(sqlc_classify(SQLC_MYSQL, 0, s, 314, &r) == 0 && sqlc_table_count(&r) == 0 &&
          (r.flags & TR));
    memset(s + 14, 'n', SQLC_NAME_MAX);
    CHECK(sqlc_classify(SQLC_MYSQL, 0, s, 14 + SQLC_NAME_MAX, &r) == 0 &&
          sqlc_table_count(&r) == 1 && !(r.flags & TR));
    printf("large inputs: slowest 1 MiB classification %.1f ms\n", worst * 1e3);
    CHECK(worst < 2.0);
    free(s);
}

static void test_api(void)
{
    for (size_t i = 1; i < sqlc_nkeywords; i++)
        CHECK(strcmp(sqlc_keywords[i - 1].name, sqlc_keywords[i].name) < 0);
    int distinct = 1;
    for (int v = 0; v < SQLC_V_COUNT_; v++) {
        const char *nm = sqlc_verb_name((enum sqlc_verb)v);
        if (!nm || (v && strcmp(nm, "OTHER") == 0)) distinct = 0;
        for (int u = 0; u < v; u++)
            if (strcmp(nm, sqlc_verb_name((enum sqlc_verb)u)) == 0) distinct = 0;
    }
    CHECK(distinct);
    CHECK(strcmp(sqlc_verb_name(SQLC_V_SELECT), "SELECT") == 0);
    CHECK(strcmp(sqlc_verb_name((enum sqlc_verb)999), "OTHER") == 0);
    CHECK(strcmp(sqlc_verb_name((enum sqlc_verb)-1), "OTHER") == 0);
    struct sqlc_result r;
    CHECK(sqlc_classify(SQLC_POSTGRES, 0, "SELECT * FROM a JOIN b ON 1", 27, &r) == 0);
    CHECK(sqlc_table_count(&r) == 2 && sqlc_table(&r, 2, NULL) == NULL);
    CHECK(strcmp(sqlc_table(&r, 0, NULL), "a") == 0 && strcmp(sqlc_table(&r, 1, NULL), "b") == 0);
}

int main(void)
{
    test_empty_and_comments();
    test_strings_and_identifiers();
    test_tables();
    test_writes();
    test_ddl();
    test_transactions();
    test_session();
    test_functions();
    test_locking();
    test_cte();
    test_multi();
    test_other_verbs();
    test_bytes();
    test_large();
    test_api();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
