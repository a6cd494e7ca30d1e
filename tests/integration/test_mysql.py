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
Read/write split: a second mariadbd replicating from the first (binlog,
GTID) behind a cluster with `auth`; reads outside transactions land on it
(@@server_id 2), transactions, locking reads and reads within 1 s of a
write stay on the primary (1), and a stopped replica falls back to the
primary without a failed statement. Replica checks (Cluster replicaCheck,
SHOW SLAVE STATUS): reads reach the replica only once it is checked, never
an endpoint the checks put out (a closed port), go to the primary while the
replica's SQL thread is stopped (Seconds_Behind_Master NULL) and come back
when it runs again; a stopped replica costs no failed statement, and reads
(new sessions and a long one) return once it is restarted.
Terminated authentication (Listener auth): pymysql, the mariadb CLI and a
raw client switched from caching_sha2_password log in as the proxy's users
(a password, a pasted mysql_native_password hash) and run as the cluster's
auth user; a wrong password and an unknown user get the same 1045; routes
and policies see the proxy-checked db.user; server connections are pooled
(reset with COM_RESET_CONNECTION: user variables, temporary tables, SQL
and binary prepared statements gone), never shared by two sessions at
once, not pooled after a session that ends in a transaction (rolled back),
with exact pool metrics; a route to a cluster without auth is a load error.
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
from harness import (API, Suite, cluster_doc, dump_docs, free_port, kill_group,  # noqa: E402
                     listener_doc, make_tmpdir, proxy_doc, route_doc, spawn, start_strand,
                     strand_cli, wait_for)

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

    def __init__(self, tmp, name="mariadb", server_id=1):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.port = free_port()
        self.server_id = server_id
        subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + self.data,
                        "--user=root", "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.start()

    def start(self):
        """Starts mariadbd on the datadir (again, after stop())."""
        self.proc = spawn(["mariadbd", "--no-defaults", "--user=root", "--datadir=" + self.data,
                           "--socket=" + self.sock, "--port=%d" % self.port,
                           "--bind-address=127.0.0.1", "--server-id=%d" % self.server_id,
                           "--log-bin=" + os.path.join(self.dir, "binlog"),
                           "--binlog-format=ROW",
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

    def query(self, text):
        """Output of text (batch mode, no column names)."""
        return subprocess.run(["mariadb", "--no-defaults", "-uroot", "--socket=" + self.sock,
                               "--batch", "--skip-column-names", "-e", text],
                              check=True, timeout=10, capture_output=True).stdout.decode()

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


def binary_first(p, ncols):
    """The first column of a binary-protocol row (a short string)."""
    off = 1 + (ncols + 7 + 2) // 8
    return p[off + 1:off + 1 + p[off]]


class Raw:
    """A minimal binary-protocol client (pymysql has no server-side prepared
    statements): native password login, COM_STMT_PREPARE / EXECUTE.

    plugin: the authentication plugin its handshake response names; with
    another than mysql_native_password (a MySQL 8 client's
    caching_sha2_password) the answer is made up and the server is expected
    to switch: self.switch holds the first byte and sequence id of that
    reply, self.login those of the login's last packet. check: raise when
    the login fails."""

    def __init__(self, port, db="shop", user=USER, password=PASSWORD,
                 plugin="mysql_native_password", check=True):
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
        native = plugin == "mysql_native_password"
        auth = native_answer(scramble, password) if native else b"\x11" * 32
        caps = 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000   # no DEPRECATE_EOF
        body = struct.pack("<IIB23s", caps, 1 << 24, 45, b"") + user.encode() + b"\0"
        body += bytes([len(auth)]) + auth + db.encode() + b"\0" + plugin.encode() + b"\0"
        self.send(body, 1)
        ok = self.packet()
        self.switch = None
        if ok[:1] == b"\xfe" and ok[1:].startswith(b"mysql_native_password\0"):
            self.switch = (ok[:1], self.last_seq)
            self.send(native_answer(ok[23:43], password), self.last_seq + 1)
            ok = self.packet()
        self.login = (ok[:1], self.last_seq)
        if check and ok[0] != 0:
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
        self.last_seq = self.buf[3]
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
        return self.rows(p, binary_first)

    def rows(self, p, first_col):
        """Reads the result set whose first packet is p (no DEPRECATE_EOF):
        first_col(row packet, column count) of each row."""
        ncols = p[0]
        for _ in range(ncols + 1):
            self.packet()
        rows = []
        while True:
            p = self.packet()
            if p[0] == 0xfe and len(p) < 9:
                return rows
            rows.append(first_col(p, ncols))

    def query_one(self, sql):
        """COM_QUERY; the first column of the first row, as bytes."""
        self.send(b"\x03" + sql.encode())
        rows = self.rows(self.packet(), lambda r, n: r[1:1 + r[0]])
        return rows[0] if rows else None

    def close(self):
        try:
            self.send(b"\x01")
        finally:
            self.s.close()


def native_hash(password):
    """mysql.user's authentication_string for a mysql_native_password user."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def native_answer(scramble, password):
    h1 = hashlib.sha1(password.encode()).digest()
    h3 = hashlib.sha1(scramble + hashlib.sha1(h1).digest()).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def switch_login(port, user, password):
    """A MySQL 8 client's login (caching_sha2_password first): the proxy's
    switch and last login packet (first byte, sequence id), then the
    session's CONNECTION_ID() when it logged in."""
    r = Raw(port, user=user, password=password, plugin="caching_sha2_password", check=False)
    if r.login[0] != b"\0":
        r.s.close()
        return (r.switch or (None, None)) + r.login + (None,)
    cid = int(r.query_one("SELECT CONNECTION_ID()"))
    r.close()
    return r.switch + r.login + (cid,)


class Conns:
    """Server connections (CONNECTION_ID()) that a terminated listener's
    sessions ran on, to predict the pool's metrics exactly: a session whose
    connection was seen before got it from the pool, and a connection whose
    last session ended cleanly is back in the pool."""

    def __init__(self):
        self.clean = {}
        self.reused = 0

    def session(self, cid, clean=True):
        if cid in self.clean:
            self.reused += 1
        self.clean[cid] = clean
        return cid

    def pooled(self):
        return sum(1 for v in self.clean.values() if v)


def main():
    t = Suite("test_mysql")
    tmp = make_tmpdir("mysql")

    with t.section("setup"):
        db = MariaDB(tmp)
        rp = MariaDB(tmp, name="replica", server_id=2)
        t.check("mariadbd starts", db.wait_ready(), "see %s/err.log" % db.dir)
        t.check("replica mariadbd starts", rp.wait_ready(), "see %s/err.log" % rp.dir)
        # Replication first, so that everything below reaches the replica.
        db.sql("CREATE USER 'repl'@'%' IDENTIFIED BY 'repl-pw';"
               "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';")
        rp.sql("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl',"
               " MASTER_PASSWORD='repl-pw', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos;"
               " START SLAVE;" % db.port)

        def replicating():
            # ON when both the IO and the SQL thread run
            return rp.query("SHOW GLOBAL STATUS LIKE 'Slave_running'").split() == \
                ["Slave_running", "ON"]
        t.check("the replica replicates (IO and SQL threads running)",
                wait_for(replicating, 15, 0.2), "see %s/err.log" % rp.dir)
        db.sql("CREATE USER '%s'@'%%' IDENTIFIED VIA mysql_native_password USING PASSWORD('%s');"
               "GRANT ALL ON *.* TO '%s'@'%%';"
               "CREATE USER '%s'@'%%' IDENTIFIED BY 'eve-pw'; GRANT ALL ON *.* TO '%s'@'%%';"
               "CREATE DATABASE shop;"
               "CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(64));"
               "CREATE TABLE shop.items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64));"
               "CREATE TABLE shop.scratch (id INT);"
               "CREATE TABLE shop.blobs (id INT PRIMARY KEY, b LONGBLOB);"
               "INSERT INTO shop.users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');"
               "CREATE USER 'strand_ro'@'%%' IDENTIFIED VIA mysql_native_password"
               " USING PASSWORD('ro-secret'); GRANT SELECT ON *.* TO 'strand_ro'@'%%';"
               % (USER, PASSWORD, USER, BLOCKED, BLOCKED))
        t.check("the setup reached the replica",
                wait_for(lambda: rp.query("SELECT COUNT(*) FROM shop.users;"
                                          " SELECT COUNT(*) FROM mysql.user"
                                          " WHERE user = 'strand_ro'") == "3\n1\n", 15, 0.1))
        admin, myl, dead_l, dead_port = free_port(), free_port(), free_port(), free_port()
        open_l, rw_l = free_port(), free_port()
        docs = [
            proxy_doc(admin, workers=2),
            listener_doc("my", myl, protocol="mysql"),
            listener_doc("my-open", open_l, protocol="mysql"),
            listener_doc("my-dead", dead_l, protocol="mysql"),
            listener_doc("my-rw", rw_l, protocol="mysql"),
            cluster_doc("replica", [rp.port], connectTimeout="1s",
                        auth={"user": "strand_ro", "password": "ro-secret"}),
            route_doc("rw", ["my-rw"], [
                {"name": "reads", "match": [{"attribute": "sql.verb", "in": ["SELECT", "SHOW"]}],
                 "backends": [{"cluster": "replica"}]},
                {"name": "writes", "backends": [{"cluster": "maria"}]}]),
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

    with t.section("per-table and per-error-code metrics", s):
        before = s.metrics()
        c = connect(myl)
        try:
            cur = c.cursor()
            for _ in range(2):
                cur.execute("SELECT u.name FROM users u JOIN items i ON i.id = u.id")
                cur.fetchall()
            cur.execute("UPDATE shop.items SET name = 'y' WHERE id < 0")
            for q in ("SELECT * FROM no_such_table", "SELEKT 1"):
                t.check("%s fails" % q, errno_of(lambda: cur.execute(q)) is not None)
        finally:
            c.close()
        after = s.metrics()

        def delta(name, **labels):
            return after.get(name, **labels) - before.get(name, **labels)
        tbl = "strand_db_table_statements_total"
        t.eq("a join counts for users", delta(tbl, listener="my", table="users", verb="SELECT"), 2)
        t.eq("... and for items", delta(tbl, listener="my", table="items", verb="SELECT"), 2)
        t.eq("a schema-qualified name is counted as written",
             delta(tbl, listener="my", table="shop.items", verb="UPDATE"), 1)
        err = "strand_db_errors_total"
        t.eq("no such table: 1146", delta(err, listener="my", code="1146"), 1)
        t.eq("syntax error: 1064", delta(err, listener="my", code="1064"), 1)

    with t.section("terminated authentication (Listener auth) and pooling", s):
        # The proxy checks these users itself and logs into the servers as
        # the clusters' auth users; one worker, so that every session sees
        # the same pool.
        db.sql("CREATE USER 'strand_app'@'%' IDENTIFIED VIA mysql_native_password"
               " USING PASSWORD('app-side-pw'); GRANT ALL ON shop.* TO 'strand_app'@'%';")
        bad = os.path.join(tmp, "term-bad.yaml")
        tadmin, tport, trw, tidle = free_port(), free_port(), free_port(), free_port()
        tdead, dead = free_port(), free_port()
        users = {"users": [{"user": "alice", "password": "alice-pw"}]}
        tdocs = [
            proxy_doc(tadmin, workers=1),
            listener_doc("my-term", tport, protocol="mysql", auth={"users": [
                {"user": "alice", "password": "alice-pw"},
                {"user": "bob", "nativePasswordHash": native_hash("bob-pw")},
                {"user": "reader", "password": "reader-pw"}]}),
            cluster_doc("maria-term", [db.port], auth={"user": "strand_app",
                                                      "password": "app-side-pw"}),
            cluster_doc("replica-term", [rp.port], auth={"user": "strand_ro",
                                                        "password": "ro-secret"}),
            listener_doc("my-term-rw", trw, protocol="mysql", auth=users),
            route_doc("term-rw", ["my-term-rw"], [
                {"name": "reads", "match": [{"attribute": "sql.verb", "exact": "SELECT"}],
                 "backends": [{"cluster": "replica-term"}]},
                {"name": "writes", "backends": [{"cluster": "maria-term"}]}]),
            listener_doc("my-term-idle", tidle, protocol="mysql", auth=users),
            cluster_doc("maria-short", [db.port], idleTimeout="300ms",
                        auth={"user": "strand_app", "password": "app-side-pw"}),
            route_doc("term-idle", ["my-term-idle"], [{"backends": [{"cluster": "maria-short"}]}]),
            listener_doc("my-term-dead", tdead, protocol="mysql", auth=users),
            cluster_doc("gone-term", [dead], connectTimeout="1s",
                        auth={"user": "strand_app", "password": "app-side-pw"}),
            route_doc("term-dead", ["my-term-dead"], [{"backends": [{"cluster": "gone-term"}]}]),
            route_doc("term", ["my-term"], [
                {"name": "readers", "match": [{"attribute": "db.user", "exact": "reader"}],
                 "backends": [{"cluster": "replica-term"}]},
                {"name": "apps", "backends": [{"cluster": "maria-term"}]}]),
            policy("bob-no-deletes", ["my-term"], "DENY", [[
                {"attribute": "db.user", "exact": "bob"},
                {"attribute": "sql.verb", "exact": "DELETE"}]]),
        ]
        ts = start_strand(t, make_tmpdir("myterm"), [tdocs])
        conns = Conns()

        def tconnect(user="alice", password="alice-pw", **kw):
            kw.setdefault("autocommit", True)
            return connect(tport, user=user, password=password, **kw)

        def one(c, q):
            cur = c.cursor()
            cur.execute(q)
            return cur.fetchone()

        c = tconnect()
        cid, who, dbname = one(c, "SELECT CONNECTION_ID(), CURRENT_USER(), DATABASE()")
        conns.session(cid)
        t.eq("pymysql logs in as a proxy user; the server session is the cluster's auth user",
             (who, dbname), ("strand_app@%", "shop"))
        t.eq("queries run", one(c, "SELECT COUNT(*) FROM users")[0], 3)
        c.close()
        t.eq("the proxy's greeting names the proxy", (c.server_version, c.server_thread_id[0] >=
                                                     0xf0000000), ("5.5.5-10.11.0-Strand", True))
        c = tconnect("bob", "bob-pw")
        conns.session(one(c, "SELECT CONNECTION_ID()")[0])
        t.eq("a user given as a pasted mysql_native_password hash logs in",
             one(c, "SELECT CURRENT_USER()")[0], "strand_app@%")
        e = errno_of(lambda: c.cursor().execute("DELETE FROM scratch WHERE id = -1"))
        t.eq("a policy on db.user sees the proxy-checked name (1142)", e and e[0], 1142)
        t.eq("... and the connection stays usable", one(c, "SELECT 7")[0], 7)
        c.close()
        t.eq("the server agrees with the test's hash of bob's password",
             db.query("SELECT PASSWORD('bob-pw')").strip(), native_hash("bob-pw"))
        for user, pw, what in (("alice", "wrong", "wrong password"),
                               ("nobody", "alice-pw", "unknown user")):
            e = errno_of(lambda: tconnect(user, pw).close())
            t.eq("%s: 1045 Access denied, as from a server" % what, e,
                 (1045, "Access denied for user '%s'@'127.0.0.1' (using password: YES)" % user))

        def cli(user, pw, sql):
            return subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1",
                                   "-P%d" % tport, "-u" + user, "-p" + pw, "--batch",
                                   "--skip-column-names", "shop", "-e", sql],
                                  capture_output=True, timeout=10, text=True)
        r = cli("alice", "alice-pw", "SELECT CONNECTION_ID(), CURRENT_USER(), DATABASE()")
        out = r.stdout.split()
        t.check("mariadb CLI logs in through the terminated listener",
                (r.returncode, out[1:]) == (0, ["strand_app@%", "shop"]), r.stderr + r.stdout)
        if r.returncode == 0:
            conns.session(int(out[0]))
        r = cli("alice", "nope", "SELECT 1")
        t.check("mariadb CLI with a wrong password: ERROR 1045",
                r.returncode != 0 and "ERROR 1045 (28000): Access denied for user 'alice'"
                in r.stderr, r.stderr)
        sw = switch_login(tport, "alice", "alice-pw")
        t.eq("a client asking for caching_sha2_password is switched to mysql_native_password",
             sw[:4], (b"\xfe", 2, b"\x00", 4))
        if sw[4] is not None:
            conns.session(sw[4])
        t.eq("... and refused after the switch with a wrong password",
             switch_login(tport, "alice", "bad")[2:], (b"\xff", 4, None))

        e = errno_of(lambda: connect(tdead, user="alice", password="alice-pw").close())
        t.eq("cluster down: the checked client gets 2003 in its login's place", e and e[0], 2003)
        e = errno_of(lambda: connect(tdead, user="alice", password="bad").close())
        t.eq("... and a wrong password still 1045 first", e and e[0], 1045)

        # Routing on db.user: reader's sessions go to the replica cluster.
        c = tconnect("reader", "reader-pw")
        t.eq("a route on db.user picks another cluster (the replica, as its auth user)",
             one(c, "SELECT @@server_id, CURRENT_USER()"), (2, "strand_ro@%"))
        c.close()
        c = tconnect()
        cid = conns.session(one(c, "SELECT CONNECTION_ID()")[0])
        t.eq("... and alice's go to the primary", one(c, "SELECT @@server_id")[0], 1)
        c.close()
        c = connect(trw, user="alice", password="alice-pw", autocommit=True)
        t.eq("read/write split on a terminated listener: a read on the replica",
             one(c, "SELECT @@server_id, CURRENT_USER()"), (2, "strand_ro@%"))
        cur = c.cursor()
        cur.execute("INSERT INTO scratch VALUES (5)")
        t.eq("... a write and the read after it on the primary",
             one(c, "SELECT @@server_id, COUNT(*) FROM scratch WHERE id = 5"), (1, 1))
        # A locking read stays home whatever the time since the write.
        conns.session(one(c, "SELECT CONNECTION_ID() FROM users WHERE id = 1 FOR UPDATE")[0])
        cur.execute("DELETE FROM scratch WHERE id = 5")
        c.close()
        raw = Raw(tport, user="alice", password="alice-pw")
        conns.session(int(raw.query_one("SELECT CONNECTION_ID()")))
        raw.send(b"\x11bob\0\0shop\0")
        p = raw.packet()
        t.eq("COM_CHANGE_USER is refused (1047) ...", (p[:1], struct.unpack("<H", p[1:3])[0]),
             (b"\xff", 1047))
        t.eq("... and the session goes on", raw.query_one("SELECT CURRENT_USER()"),
             b"strand_app@%")
        raw.close()

        # Pooling: a later session runs on an earlier one's server
        # connection, reset in between. A session arriving while the
        # connection is still being reset gets a new one (pooled in turn).
        leave = ("SET @x = 42", "CREATE TEMPORARY TABLE tmp_t (i INT)",
                 "PREPARE p1 FROM 'SELECT 1'")

        def pooled_state():
            c2 = tconnect()
            try:
                cid = conns.session(one(c2, "SELECT CONNECTION_ID()")[0])
                state = (one(c2, "SELECT @x")[0],
                         errno_of(lambda: c2.cursor().execute("SELECT * FROM tmp_t"))[0],
                         errno_of(lambda: c2.cursor().execute("EXECUTE p1"))[0])
                for q in leave:
                    c2.cursor().execute(q)
                return cid, state
            finally:
                c2.close()
        got = []

        def reused():
            before = conns.reused
            got.append(pooled_state())
            return conns.reused > before
        t.check("a later session runs on an earlier session's server connection",
                wait_for(reused, timeout=10), repr(got))
        t.eq("... with the previous session's user variables, temporary tables and "
             "prepared statements gone", got[-1][1], (None, 1146, 1243))

        # Binary-protocol prepared statements go with the reset too.
        rid = "SELECT CAST(CONNECTION_ID() AS CHAR) FROM users WHERE id = ?"
        raw = Raw(tport, user="alice", password="alice-pw")
        sid = raw.prepare(rid)
        first = int(raw.execute_int(sid, 1)[0])
        conns.session(first)
        raw.close()
        seen = {first}
        stale = []

        def raw_reused():
            r2 = Raw(tport, user="alice", password="alice-pw")
            try:
                stale.append(r2.execute_int(sid, 1))
                sid2 = r2.prepare(rid)
                cid = int(r2.execute_int(sid2, 1)[0])
                conns.session(cid)
                if cid in seen:
                    return True
                seen.add(cid)
                return False
            finally:
                r2.close()
        t.check("a binary-protocol session gets a pooled connection too",
                wait_for(raw_reused, timeout=10))
        t.eq("... where the earlier session's prepared statement is unknown (1243)",
             stale[-1], ("err", 1243))

        # Sessions at the same time never share a connection.
        many = [tconnect() for _ in range(3)]
        ids = [one(x, "SELECT CONNECTION_ID()")[0] for x in many]
        for i in ids:
            conns.session(i)
        t.eq("three sessions at once run on three server connections", len(set(ids)), 3)
        for x in many:
            x.close()

        # A session that ends inside a transaction is not pooled: its server
        # connection closes and the server rolls the transaction back.
        c = tconnect()
        cur = c.cursor()
        txid = conns.session(one(c, "SELECT CONNECTION_ID()")[0], clean=False)
        cur.execute("BEGIN")
        cur.execute("INSERT INTO scratch VALUES (77)")
        c.close()
        gone = wait_for(lambda: db.query("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                                         " WHERE ID = %d" % txid).strip() == "0", 5, 0.05)
        t.check("a session ending inside a transaction closes its server connection", gone)
        t.eq("... and its transaction was rolled back",
             db.query("SELECT COUNT(*) FROM shop.scratch WHERE id = 77").strip(), "0")

        # COM_SET_OPTION (multi-statements off) is a state a reset may keep:
        # such a session's connection is not pooled either.
        raw = Raw(tport, user="alice", password="alice-pw")
        optid = conns.session(int(raw.query_one("SELECT CONNECTION_ID()")), clean=False)
        raw.send(b"\x1b\x01\x00")
        t.eq("COM_SET_OPTION answered", raw.packet()[:1], b"\xfe")
        raw.close()
        t.check("... and that session's server connection is closed, not pooled",
                wait_for(lambda: db.query("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                                          " WHERE ID = %d" % optid).strip() == "0", 5, 0.05))

        def pool_metrics():
            m = ts.metrics()
            return (m.get("strand_db_pool_connections", cluster="maria-term"),
                    m.get("strand_db_pool_reused_total", cluster="maria-term"))
        want = (conns.pooled(), conns.reused)
        t.check("pool metrics exact: connections kept, sessions that reused one",
                wait_for(lambda: pool_metrics() == want, 5, 0.05),
                "got %r, want %r" % (pool_metrics(), want))
        m = ts.metrics()
        t.eq("the replica cluster's pool holds reader's connection",
             (m.get("strand_db_pool_connections", cluster="replica-term"),
              m.get("strand_db_pool_reused_total", cluster="replica-term")), (1, 0))
        t.eq("pooled connections are open upstream connections",
             m.get("strand_upstream_connections_active", cluster="maria-term"), conns.pooled())
        # Closing: after the cluster's idleTimeout, and on reload.
        c = connect(tidle, user="alice", password="alice-pw", autocommit=True)
        short = one(c, "SELECT CONNECTION_ID()")[0]
        c.close()

        def processes(cid):
            return db.query("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                            " WHERE ID = %d" % cid).strip()
        t.check("a pooled connection closes after the cluster's idleTimeout (300ms)",
                wait_for(lambda: ts.metrics().get("strand_db_pool_connections",
                                                  cluster="maria-short") == 0 and
                         processes(short) == "0", 5, 0.05))
        r = ts.post_reload()
        t.eq("reload accepted", r.status, 200)
        t.check("a reload closes the old configuration's pooled connections",
                wait_for(lambda: ts.metrics().get("strand_db_pool_connections",
                                                  cluster="maria-term") == 0 and
                         all(processes(i) == "0" for i in conns.clean), 5, 0.05),
                repr(ts.metrics().describe("strand_db_pool_connections")))
        c = tconnect()
        t.check("after the reload, a session gets a new connection",
                one(c, "SELECT CONNECTION_ID()")[0] not in conns.clean)
        c.close()
        t.check("strand (terminated listener) still running", ts.alive())
        c = tconnect()
        kept = one(c, "SELECT CONNECTION_ID()")[0]
        c.close()
        t.check("a session's connection is pooled again",
                wait_for(lambda: ts.metrics().get("strand_db_pool_connections",
                                                  cluster="maria-term") == 1, 5, 0.05))
        ts.stop()
        t.check("after shutdown no pooled connection is left open on the server",
                wait_for(lambda: processes(kept) == "0", 5, 0.05))

        # A route of such a listener to a cluster without auth: a load error.
        with open(bad, "w") as f:
            f.write(dump_docs([
                listener_doc("my-term", tport, protocol="mysql",
                             auth={"users": [{"user": "alice", "password": "x"}]}),
                cluster_doc("plain", [db.port]),
                route_doc("term", ["my-term"], [{"backends": [{"cluster": "plain"}]}])]))
        p = strand_cli(["validate", "-c", bad])
        t.check("a route to a cluster without auth: refused with file, line and reason",
                p.returncode != 0 and bad + ":" in p.stderr + p.stdout and
                "cluster 'plain' has no auth" in p.stderr + p.stdout, p.stderr + p.stdout)

    with t.section("read/write split to a replica", s):
        def one(cur, q):
            cur.execute(q)
            return cur.fetchone()
        c = connect(rw_l, autocommit=True)
        try:
            cur = c.cursor()
            t.eq("SELECT outside a transaction goes to the replica",
                 one(cur, "SELECT @@server_id")[0], 2)
            t.eq("the replica answers with the session's database",
                 one(cur, "SELECT DATABASE(), COUNT(*) FROM users"), ("shop", 3))
            cur.execute("SHOW TABLES")
            t.check("SHOW through the replica", len(cur.fetchall()) >= 4)
            cur.execute("START TRANSACTION")
            t.eq("SELECT inside a transaction stays on the primary",
                 one(cur, "SELECT @@server_id")[0], 1)
            cur.execute("COMMIT")
            t.eq("SELECT ... FOR UPDATE goes to the primary",
                 one(cur, "SELECT @@server_id, id FROM users WHERE id = 1 FOR UPDATE"), (1, 1))
            time.sleep(1.1)
            t.eq("after the transaction, reads go to the replica again",
                 one(cur, "SELECT @@server_id")[0], 2)
            cur.execute("INSERT INTO items (name) VALUES ('split')")
            t.eq("SELECT right after a write stays on the primary and sees the row",
                 one(cur, "SELECT @@server_id, COUNT(*) FROM items WHERE name = 'split'"), (1, 1))
            time.sleep(1.1)
            seen = wait_for(lambda: (lambda r: r if r == (2, 1) else None)(
                one(cur, "SELECT @@server_id, COUNT(*) FROM items WHERE name = 'split'")), 5, 0.1)
            t.eq("SELECT > 1 s after the write goes to the replica and sees the row", seen, (2, 1))
            cur.execute("SET @v = 5")
            t.eq("after session state (SET) the session stays on the primary",
                 one(cur, "SELECT @@server_id, @v"), (1, 5))
        finally:
            c.close()
        c = connect(rw_l, autocommit=True,
                    client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
        try:
            cur = c.cursor()
            cur.execute("SELECT @@server_id; SELECT name FROM users WHERE id = 2")
            sets = [cur.fetchall()]
            while cur.nextset():
                sets.append(cur.fetchall())
            t.eq("multi-statement reads: both results from the replica", sets,
                 [((2,),), (("bob",),)])
            t.eq("then the next read", one(cur, "SELECT @@server_id")[0], 2)
        finally:
            c.close()
        r = subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1",
                            "-P%d" % rw_l, "-u" + USER, "-p" + PASSWORD, "--batch",
                            "--skip-column-names", "shop", "-e",
                            "SELECT @@server_id, COUNT(*) FROM users"],
                           capture_output=True, timeout=10)
        t.eq("mariadb CLI: a read answered by the replica", (r.returncode, r.stdout),
             (0, b"2\t3\n"))
        m = s.metrics()
        name = "strand_db_statements_total"
        t.check("statements counted under cluster replica",
                m.get(name, listener="my-rw", cluster="replica", verb="SELECT",
                      outcome="ok") >= 4, m.describe(name))
        t.check("and the primary's under cluster maria",
                m.get(name, listener="my-rw", cluster="maria", verb="SELECT",
                      outcome="ok") >= 3, m.describe(name))
        c = connect(rw_l, autocommit=True)
        try:
            cur = c.cursor()
            t.eq("before the replica stops", one(cur, "SELECT @@server_id")[0], 2)
            rp.stop()
            t0 = time.monotonic()
            e = errno_of(lambda: t.eq("replica stopped: the same session's SELECT falls back "
                                      "to the primary", one(cur, "SELECT @@server_id")[0], 1))
            t.check("no client error and no long wait", e is None and time.monotonic() - t0 < 5,
                    repr(e))
            t.eq("the session goes on", one(cur, "SELECT COUNT(*) FROM users")[0], 3)
        finally:
            c.close()
        c = connect(rw_l, autocommit=True)
        try:
            t.eq("replica stopped: a new session's SELECT goes to the primary",
                 one(c.cursor(), "SELECT @@server_id")[0], 1)
        finally:
            c.close()

    with t.section("replica checks (replicaCheck): SQL thread stopped, server stopped", s):
        # The replica stopped above comes back and catches up.
        rp.start()
        t.check("replica mariadbd restarts", rp.wait_ready(), "see %s/err.log" % rp.dir)
        t.check("the replica replicates again", wait_for(replicating, 15, 0.2))
        # SHOW SLAVE STATUS needs SLAVE MONITOR; granted on the primary, replicated.
        db.sql("GRANT SLAVE MONITOR ON *.* TO 'strand_ro'@'%'")
        t.check("the grant reached the replica",
                wait_for(lambda: "SLAVE MONITOR" in rp.query("SHOW GRANTS FOR 'strand_ro'@'%'"),
                         15, 0.1))
        cadmin, cport, closed = free_port(), free_port(), free_port()
        cdocs = [
            proxy_doc(cadmin, workers=2),
            listener_doc("my-chk", cport, protocol="mysql"),
            cluster_doc("maria", [db.port]),
            # A closed port first: the checks keep reads away from it.
            cluster_doc("replica", [closed, rp.port], connectTimeout="1s",
                        auth={"user": "strand_ro", "password": "ro-secret"},
                        replicaCheck={"interval": "200ms", "maxLag": "1s", "timeout": "1s"}),
            route_doc("chk", ["my-chk"], [
                {"name": "reads", "match": [{"attribute": "sql.verb", "in": ["SELECT"]}],
                 "backends": [{"cluster": "replica"}]},
                {"name": "writes", "backends": [{"cluster": "maria"}]}]),
        ]
        cs = start_strand(t, make_tmpdir("mychk"), [cdocs])
        rep_ep = "127.0.0.1:%d" % rp.port
        closed_ep = "127.0.0.1:%d" % closed
        failures = []

        def read(q):
            """One statement in a new session (no stickiness); None if it failed."""
            try:
                c = connect(cport, autocommit=True)
                try:
                    cur = c.cursor()
                    cur.execute(q)
                    return cur.fetchone()
                finally:
                    c.close()
            except pymysql.err.MySQLError as e:
                failures.append(repr(e))
                return None

        def until(q, want, timeout=15):
            """Reads in new sessions until one answers want (bounded)."""
            got = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                got = read(q)
                if got == want:
                    break
                time.sleep(0.1)
            return got

        def up(ep):
            return cs.metrics().get("strand_db_replica_up", cluster="replica", endpoint=ep)

        def poll(fn, want, timeout=10):
            """fn() until it returns want (bounded): a session's worker may
            start its own checks only with that session's first read."""
            got = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                got = fn()
                if got == want:
                    break
                time.sleep(0.1)
            return got

        where = "SELECT @@server_id"
        read(where)   # the first read starts the checks
        t.eq("once checked and in sync, reads go to the replica", until(where, (2,)), (2,))
        t.eq("strand_db_replica_up is 1 for the replica",
             wait_for(lambda: up(rep_ep) == 1, 5, 0.1), True)
        t.eq("... and 0 for the closed port", wait_for(lambda: up(closed_ep) == 0, 5, 0.1), True)
        m = cs.metrics()
        before = m.get("strand_upstream_requests_total", cluster="replica", endpoint=closed_ep)
        for _ in range(10):
            read(where)
        t.eq("reads never try the endpoint the checks put out",
             cs.metrics().get("strand_upstream_requests_total", cluster="replica",
                              endpoint=closed_ep), before)

        # SQL thread stopped: Seconds_Behind_Master is NULL (not replicating).
        rp.sql("STOP SLAVE SQL_THREAD")
        db.sql("INSERT INTO shop.items (name) VALUES ('sql-thread-stopped')")
        seen = "SELECT @@server_id, COUNT(*) FROM items WHERE name = 'sql-thread-stopped'"
        t.eq("SQL thread stopped: reads go to the primary and see the new row",
             until(seen, (1, 1)), (1, 1))
        t.eq("strand_db_replica_up is 0", up(rep_ep), 0)
        rp.sql("START SLAVE SQL_THREAD")
        t.eq("SQL thread started: reads return to the replica, which has the row",
             until(seen, (2, 1)), (2, 1))

        # A session that keeps its replica connection across the stop.
        keep = connect(cport, autocommit=True)
        kcur = keep.cursor()

        def kept():
            try:
                kcur.execute(where)
                return kcur.fetchone()
            except pymysql.err.MySQLError as e:
                failures.append(repr(e))
                return None

        t.eq("a long session reads from the replica", poll(kept, (2,)), (2,))

        # The replica stops: no read fails, they land on the primary.
        del failures[:]
        rp.stop()
        t.eq("replica stopped: the long session's read goes to the primary", kept(), (1,))
        answers = [read(where) for _ in range(10)]
        t.eq("replica stopped: every read answered by the primary, none failed",
             (answers, failures), ([(1,)] * 10, []))
        t.eq("strand_db_replica_up is 0 for the stopped replica",
             wait_for(lambda: up(rep_ep) == 0, 5, 0.1), True)
        rp.start()
        t.check("replica mariadbd restarts", rp.wait_ready(), "see %s/err.log" % rp.dir)
        t.eq("replica restarted: reads return to it", until(where, (2,), timeout=20), (2,))
        t.eq("... and the long session's reads too, a few seconds later",
             poll(kept, (2,), timeout=20), (2,))
        keep.close()
        t.eq("no failed statements",
             cs.metrics().get("strand_db_statements_total", outcome="failed"), 0)
        t.eq("no client statement failed at any point", failures, [])
        t.check("strand (replica checks) still running", cs.alive())
        cs.stop()

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
