"""MySQL listeners (protocol: mysql): pass-through authentication to a real
MariaDB, statement policy and per-statement metrics.

A throwaway mariadbd (its own datadir, socket and loopback port, removed at
exit) is the backend; clients are python3-pymysql and the mariadb CLI.
Checks: password login through the proxy, SELECT/INSERT/UPDATE, a
transaction (and sql.in_transaction in a policy), multi-statements with
several result sets, PREPARE/EXECUTE, a > 16 MiB row both ways, a DENY on
`sql.verb: DELETE` + `sql.tables: users` answered with ERR 1142 on a
connection that stays usable, a session policy on db.user (1045), a wrong
password (the server's 1045 passes through), the strand_db_* metrics, a
listener whose cluster is down and a server that stops mid-session.
"""

import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, Suite, cluster_doc, free_port, kill_group, listener_doc,  # noqa: E402
                     make_tmpdir, proxy_doc, route_doc, spawn, start_strand, wait_for)

import pymysql  # noqa: E402

USER, PASSWORD = "app", "app-secret"
BLOCKED = "eve"          # a valid MariaDB user the session policy refuses
MIB = 1 << 20


def policy(name, targets, action, rules):
    return {"apiVersion": API, "kind": "AuthorizationPolicy", "metadata": {"name": name},
            "spec": {"targets": targets, "action": action,
                     "rules": [{"match": r} for r in rules]}}


class MariaDB:
    """mariadbd on a free loopback port with its own datadir under tmp."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "mariadb")
        os.makedirs(self.dir)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.port = free_port()
        subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + self.data,
                        "--user=root", "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = spawn(["mariadbd", "--no-defaults", "--user=root", "--datadir=" + self.data,
                           "--socket=" + self.sock, "--port=%d" % self.port,
                           "--bind-address=127.0.0.1", "--skip-log-bin",
                           "--max-allowed-packet=64M", "--innodb-buffer-pool-size=32M",
                           "--log-error=" + os.path.join(self.dir, "err.log")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout=20):
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd exited")
            try:
                self.sql("SELECT 1")
                return True
            except subprocess.CalledProcessError:
                return False
        return wait_for(up, timeout, interval=0.1)

    def sql(self, text):
        subprocess.run(["mariadb", "--no-defaults", "-uroot", "--socket=" + self.sock, "-e", text],
                       check=True, timeout=10, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        kill_group(self.proc, grace=10)


def connect(port, user=USER, password=PASSWORD, db="shop", **kw):
    args = dict(connect_timeout=5, read_timeout=10, write_timeout=10)
    args.update(kw)
    return pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                           database=db, **args)


def errno_of(fn):
    """Runs fn; returns (errno, message) of the MySQL error it raised, or None."""
    try:
        fn()
    except pymysql.err.MySQLError as e:
        return (e.args[0] if e.args else None, str(e.args[1]) if len(e.args) > 1 else "")
    return None


class Raw:
    """A minimal binary-protocol client (pymysql has no server-side prepared
    statements): native password login, COM_STMT_PREPARE / EXECUTE."""

    def __init__(self, port, db="shop"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        g = self.packet()
        p = g[1:]
        p = p[p.index(b"\0") + 1:]
        scramble = p[4:12]
        p = p[13:]
        caps_lo = struct.unpack("<H", p[:2])[0]
        self.server_caps_lo = caps_lo
        p = p[2 + 1 + 2 + 2 + 1 + 10:]
        scramble += p[:12]
        h1 = hashlib.sha1(PASSWORD.encode()).digest()
        h3 = hashlib.sha1(scramble + hashlib.sha1(h1).digest()).digest()
        auth = bytes(a ^ b for a, b in zip(h1, h3))
        caps = 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000   # no DEPRECATE_EOF
        body = struct.pack("<IIB23s", caps, 1 << 24, 45, b"") + USER.encode() + b"\0"
        body += bytes([len(auth)]) + auth + db.encode() + b"\0mysql_native_password\0"
        self.send(body, 1)
        ok = self.packet()
        if ok[0] != 0:
            raise RuntimeError("login failed: %r" % ok)

    def send(self, payload, seq=0):
        self.s.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload)

    def packet(self):
        while len(self.buf) < 4 or len(self.buf) < 4 + int.from_bytes(self.buf[:3], "little"):
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        n = int.from_bytes(self.buf[:3], "little")
        p, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return p

    def prepare(self, sql):
        """Returns the statement id, or ('err', code)."""
        self.send(b"\x16" + sql.encode())
        p = self.packet()
        if p[0] == 0xff:
            return ("err", struct.unpack("<H", p[1:3])[0])
        sid, ncols, nparams = struct.unpack("<IHH", p[1:9])
        for _ in range((nparams + 1 if nparams else 0) + (ncols + 1 if ncols else 0)):
            self.packet()
        return sid

    def execute_int(self, sid, value):
        """Executes with one INT parameter; returns the first column of each
        row as bytes (string columns)."""
        self.send(b"\x17" + struct.pack("<IBI", sid, 0, 1) + b"\x00\x01" +
                  struct.pack("<Hi", 3, value))
        p = self.packet()
        if p[0] == 0xff:
            return ("err", struct.unpack("<H", p[1:3])[0])
        ncols = p[0]
        for _ in range(ncols + 1):
            self.packet()
        rows = []
        while True:
            p = self.packet()
            if p[0] == 0xfe and len(p) < 9:
                return rows
            off = 1 + (ncols + 7 + 2) // 8
            n = p[off]
            rows.append(p[off + 1:off + 1 + n])

    def close(self):
        try:
            self.send(b"\x01")
        finally:
            self.s.close()


def main():
    t = Suite("test_mysql")
    tmp = make_tmpdir("mysql")

    with t.section("setup"):
        db = MariaDB(tmp)
        t.check("mariadbd starts", db.wait_ready(), "see %s/err.log" % db.dir)
        db.sql("CREATE USER '%s'@'%%' IDENTIFIED VIA mysql_native_password USING PASSWORD('%s');"
               "GRANT ALL ON *.* TO '%s'@'%%';"
               "CREATE USER '%s'@'%%' IDENTIFIED BY 'eve-pw'; GRANT ALL ON *.* TO '%s'@'%%';"
               "CREATE DATABASE shop;"
               "CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(64));"
               "CREATE TABLE shop.items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64));"
               "CREATE TABLE shop.scratch (id INT);"
               "CREATE TABLE shop.blobs (id INT PRIMARY KEY, b LONGBLOB);"
               "INSERT INTO shop.users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');"
               % (USER, PASSWORD, USER, BLOCKED, BLOCKED))
        admin, myl, dead_l, dead_port = free_port(), free_port(), free_port(), free_port()
        open_l = free_port()
        docs = [
            proxy_doc(admin, workers=2),
            listener_doc("my", myl, protocol="mysql"),
            listener_doc("my-open", open_l, protocol="mysql"),
            listener_doc("my-dead", dead_l, protocol="mysql"),
            cluster_doc("maria", [db.port]),
            cluster_doc("gone", [dead_port], connectTimeout="1s"),
            route_doc("maria", ["my", "my-open"], [{"name": "all", "backends": [{"cluster": "maria"}]}]),
            route_doc("gone", ["my-dead"], [{"backends": [{"cluster": "gone"}]}]),
            policy("no-user-deletes", ["my"], "DENY", [[
                {"attribute": "sql.verb", "exact": "DELETE"},
                {"attribute": "sql.tables", "in": ["users"]}]]),
            policy("no-truncate-in-txn", ["my"], "DENY", [[
                {"attribute": "sql.verb", "exact": "TRUNCATE"},
                {"attribute": "sql.in_transaction", "exact": "true"}]]),
            policy("block-eve", ["my"], "DENY", [[
                {"attribute": "db.user", "exact": BLOCKED}]]),
        ]
        s = start_strand(t, tmp, docs)
    if t.failed:
        t.finish()

    with t.section("queries through the proxy", s):
        c = connect(myl)
        try:
            cur = c.cursor()
            cur.execute("SELECT name FROM users ORDER BY id")
            t.eq("SELECT returns the server's rows", [r[0] for r in cur.fetchall()],
                 ["ann", "bob", "cy"])
            t.eq("INSERT reports affected rows",
                 cur.execute("INSERT INTO items (name) VALUES ('a'), ('b'), ('c')"), 3)
            c.commit()
            t.eq("UPDATE reports affected rows",
                 cur.execute("UPDATE items SET name = 'z' WHERE name IN ('a', 'b')"), 2)
            c.commit()
            cur.execute("SELECT COUNT(*) FROM items WHERE name = 'z'")
            t.eq("the UPDATE landed", cur.fetchone()[0], 2)
            cur.execute("SELECT DATABASE(), CURRENT_USER()")
            t.eq("database and user as sent by the client", cur.fetchone(),
                 ("shop", "%s@%%" % USER))
            c.select_db("mysql")     # COM_INIT_DB
            cur.execute("SELECT DATABASE()")
            t.eq("COM_INIT_DB passes", cur.fetchone()[0], "mysql")
            c.ping()
            t.check("COM_PING answered", True)
        finally:
            c.close()

    with t.section("transactions", s):
        c = connect(myl, autocommit=True)
        try:
            cur = c.cursor()
            cur.execute("BEGIN")
            cur.execute("INSERT INTO scratch VALUES (1)")
            e = errno_of(lambda: cur.execute("TRUNCATE TABLE scratch"))
            t.eq("TRUNCATE inside a transaction is refused (sql.in_transaction)",
                 e and e[0], 1142)
            cur.execute("INSERT INTO scratch VALUES (2)")
            cur.execute("COMMIT")
            cur.execute("SELECT COUNT(*) FROM scratch")
            t.eq("both inserts committed", cur.fetchone()[0], 2)
            cur.execute("TRUNCATE TABLE scratch")
            cur.execute("SELECT COUNT(*) FROM scratch")
            t.eq("TRUNCATE outside a transaction is allowed", cur.fetchone()[0], 0)
            cur.execute("BEGIN")
            cur.execute("INSERT INTO scratch VALUES (3)")
            cur.execute("ROLLBACK")
            cur.execute("SELECT COUNT(*) FROM scratch")
            t.eq("ROLLBACK undoes the insert", cur.fetchone()[0], 0)
        finally:
            c.close()

    with t.section("multi-statements", s):
        c = connect(myl, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
        try:
            cur = c.cursor()
            cur.execute("SELECT 1 AS a; SELECT 'x', 2; UPDATE items SET name = name WHERE 0;"
                        " SELECT name FROM users WHERE id = 3")
            sets = [cur.fetchall()]
            while cur.nextset():
                sets.append(cur.fetchall())
            t.eq("four results in order", sets, [((1,),), (("x", 2),), (), (("cy",),)])
            cur.execute("SELECT 42")
            t.eq("the connection goes on after the multi-result", cur.fetchone()[0], 42)
            e = errno_of(lambda: cur.execute("SELECT 1; DELETE FROM users WHERE id = 1"))
            t.eq("a multi-statement hiding a DELETE on users is refused", e and e[0], 1142)
        finally:
            c.close()

    with t.section("prepared statements (mariadb CLI)", s):
        r = subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1",
                            "-P%d" % myl, "-u" + USER, "-p" + PASSWORD, "--batch",
                            "--skip-column-names", "shop", "-e",
                            "PREPARE s FROM 'SELECT name FROM users WHERE id = ?';"
                            " SET @i = 2; EXECUTE s USING @i; DEALLOCATE PREPARE s;"],
                           capture_output=True, timeout=10)
        t.eq("PREPARE / EXECUTE through the proxy", (r.returncode, r.stdout), (0, b"bob\n"))

    with t.section("a row larger than 16 MiB", s):
        # On a listener without policies: a statement over 16 MiB is
        # classified from its first packet only (see the next check).
        c = connect(open_l, max_allowed_packet=64 * MIB, read_timeout=30, write_timeout=30)
        try:
            big = os.urandom(17 * MIB + 3)
            cur = c.cursor()
            cur.execute("INSERT INTO blobs VALUES (1, %s)", (big,))
            c.commit()
            cur.execute("SELECT b, LENGTH(b) FROM blobs WHERE id = 1")
            row = cur.fetchone()
            t.eq("17 MiB value stored intact (sent as several packets)", row[1], len(big))
            t.check("17 MiB value read back intact (sha256)",
                    hashlib.sha256(row[0]).digest() == hashlib.sha256(big).digest())
            cur.execute("SELECT 7")
            t.eq("the connection goes on after the large row", cur.fetchone()[0], 7)
        finally:
            c.close()
        c = connect(myl, max_allowed_packet=64 * MIB, read_timeout=30, write_timeout=30)
        try:
            cur = c.cursor()
            e = errno_of(lambda: cur.execute("DELETE FROM users WHERE name = %s",
                                             ("x" * (17 * MIB),)))
            t.eq("with policies, a > 16 MiB statement that cannot be classified -> 1142",
                 e and e[0], 1142)
            cur.execute("SELECT COUNT(*) FROM users")
            t.eq("the connection goes on after the refused 17 MiB statement",
                 cur.fetchone()[0], 3)
        finally:
            c.close()

    with t.section("binary prepared statements", s):
        r = Raw(myl)
        try:
            t.eq("COM_STMT_PREPARE of a DELETE on users -> 1142",
                 r.prepare("DELETE FROM users WHERE id = ?"), ("err", 1142))
            sid = r.prepare("SELECT name FROM users WHERE id = ?")
            t.check("COM_STMT_PREPARE of a SELECT passes", isinstance(sid, int), repr(sid))
            t.eq("COM_STMT_EXECUTE returns the row", r.execute_int(sid, 3), [b"cy"])
            t.eq("and again with another parameter", r.execute_int(sid, 1), [b"ann"])
            t.eq("the greeting offers neither SSL nor compression",
                 r.server_caps_lo & (0x800 | 0x20), 0)
        finally:
            r.close()

    with t.section("statement policy", s):
        c = connect(myl)
        try:
            cur = c.cursor()
            e = errno_of(lambda: cur.execute("DELETE FROM users WHERE id = 1"))
            t.eq("DELETE on users -> ERR 1142", e and e[0], 1142)
            t.check("the refusal names the verb, the user and the policy",
                    e and "DELETE" in e[1] and USER in e[1] and "no-user-deletes" in e[1],
                    repr(e))
            cur.execute("SELECT COUNT(*) FROM users")
            t.eq("the same connection runs a SELECT; nothing was deleted", cur.fetchone()[0], 3)
            e = errno_of(lambda: cur.execute("/* hi */ delete from `users` where id = 2"))
            t.eq("lower case, a comment and a quoted name do not slip through", e and e[0], 1142)
            t.eq("DELETE on another table is allowed",
                 cur.execute("DELETE FROM items WHERE name = 'c'"), 1)
            c.commit()
        finally:
            c.close()

    with t.section("session policy and authentication", s):
        e = errno_of(lambda: connect(myl, user=BLOCKED, password="eve-pw").close())
        t.eq("a session policy on db.user -> ERR 1045", e and e[0], 1045)
        t.check("the refusal names the policy", e and "block-eve" in e[1], repr(e))
        e = errno_of(lambda: connect(myl, password="wrong").close())
        t.eq("wrong password -> the server's 1045", e and e[0], 1045)
        t.check("the server's own message passes through",
                e and "Access denied for user" in e[1], repr(e))
        c = connect(myl, db=None)
        try:
            cur = c.cursor()
            cur.execute("SELECT 1")
            t.eq("a login without a database works", cur.fetchone()[0], 1)
        finally:
            c.close()

    with t.section("metrics", s):
        m = s.metrics()
        ok_sel = m.get("strand_db_statements_total", verb="SELECT", outcome="ok", listener="my")
        t.check("strand_db_statements_total{verb=SELECT,outcome=ok} counts the SELECTs",
                ok_sel >= 12, m.describe("strand_db_statements_total"))
        denied = m.get("strand_db_statements_total", outcome="denied", listener="my")
        # TRUNCATE in a transaction, 3 DELETEs on users (one in a
        # multi-statement, one prepared), the 17 MiB one (OTHER).
        t.eq("denied statements counted", denied, 6)
        t.eq("denied DELETEs counted", m.get("strand_db_statements_total", verb="DELETE",
                                             outcome="denied"), 4)
        t.check("an INSERT counted ok", m.get("strand_db_statements_total", verb="INSERT",
                                              outcome="ok") >= 4)
        t.check("rows counted: SELECT rows and affected rows",
                m.get("strand_db_rows_total", verb="SELECT") >= 10 and
                m.get("strand_db_rows_total", verb="INSERT") >= 3 and
                m.get("strand_db_rows_total", verb="UPDATE") >= 2,
                m.describe("strand_db_rows_total"))
        t.check("a duration histogram per verb",
                m.get("strand_db_statement_duration_seconds_count", verb="SELECT") >= 12,
                m.describe("strand_db_statement_duration_seconds_count"))

    with t.section("drain on shutdown", s):
        idle = connect(myl)
        busy = connect(myl)
        got = {}

        def slow():
            try:
                cur = busy.cursor()
                cur.execute("SELECT SLEEP(1), 'done'")
                got["row"] = cur.fetchone()
            except Exception as e:  # noqa: BLE001
                got["err"] = repr(e)
        th = threading.Thread(target=slow, daemon=True)
        th.start()
        time.sleep(0.3)          # the SLEEP is running on the server
        t0 = time.monotonic()
        rc = s.stop()
        th.join(5)
        t.eq("strand exits cleanly while draining", rc, 0)
        t.check("the in-flight statement finished during the drain",
                got.get("row") == (0, "done"), repr(got))
        t.check("the drain did not wait for the idle session (< 3 s)",
                time.monotonic() - t0 < 3, "%.1fs" % (time.monotonic() - t0))
        e = errno_of(lambda: idle.cursor().execute("SELECT 1"))
        t.check("the idle session was closed", e is not None, repr(e))
        for c in (idle, busy):
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        s.restart()

    with t.section("upstream down", s):
        t0 = time.monotonic()
        e = errno_of(lambda: connect(dead_l).close())
        t.check("cluster down -> an error (2003) within the connect timeout, not a hang",
                e and e[0] == 2003 and time.monotonic() - t0 < 5, repr(e))
        c = connect(myl)
        try:
            cur = c.cursor()
            cur.execute("SELECT 1")
            db.stop()
            t0 = time.monotonic()
            e = errno_of(lambda: cur.execute("SELECT 2"))
            t.check("a stopped server -> a client error, not a hang",
                    e is not None and time.monotonic() - t0 < 8, repr(e))
        finally:
            try:
                c.close()
            except Exception:
                pass
        e = errno_of(lambda: connect(myl).close())
        t.check("new sessions to the stopped server fail with an error", e is not None, repr(e))
        t.check("strand still serves its admin endpoint", s.metrics() is not None)

    t.finish()


if __name__ == "__main__":
    main()
