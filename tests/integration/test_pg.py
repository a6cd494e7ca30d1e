"""PostgreSQL listeners (protocol: postgres) in front of a real PostgreSQL.

The test starts a throwaway PostgreSQL cluster (initdb into a temporary
directory, run as the postgres user through runuser when root) with trust
for the superuser, md5 and SCRAM for two password users, two databases and a
few tables. Through Strand it drives psql (SSLRequest answered 'N'),
psycopg2 (simple query protocol) and a small raw-socket client (extended
protocol: Parse/Bind/Execute/Sync). Checks: routing on db.name to two
clusters (proved by current_database() and the cluster label), a session
refused by policy, a missing route, password authentication passed through,
statement policies on sql.verb/sql.tables/sql.in_transaction refused with
SQLSTATE 42501 and the connection still usable, the statement metrics, and
a stopped server answered with an error rather than a hang. Read/write
split: a real streaming replica (pg_basebackup) behind a second cluster with
md5 credentials; reads land on it (pg_is_in_recovery() true), transactions,
locking reads and reads right after a write stay on the primary, and a
stopped replica falls back to the primary without a failed statement.
Replica checks (Cluster replicaCheck, md5 and SCRAM-SHA-256 logins): reads
reach the replica only once it is checked and in sync, never an endpoint
the checks put out (a closed port); with WAL replay paused they go to the
primary (strand_db_replica_up 0) and come back on resume; across a reload;
a stopped replica costs no failed statement, and reads (new sessions and a
long one) return once it is restarted.
"""

import glob
import os
import io
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_tls import DB_ID, make_pki  # noqa: E402
from harness import (API, Suite, cluster_doc, free_port, listener_doc, make_tmpdir,  # noqa: E402
                     on_cleanup, proxy_doc, route_doc, spawn, start_strand, wait_for)

import psycopg2  # noqa: E402
import psycopg2.errors  # noqa: E402,F401

PSQL = "/usr/bin/psql"


def pg_bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "postgres")):
            return d
    return None


def policy(name, targets, action, rules):
    return {"apiVersion": API, "kind": "AuthorizationPolicy", "metadata": {"name": name},
            "spec": {"targets": targets, "action": action,
                     "rules": [{"match": r} for r in rules]}}


class PgServer:
    """A PostgreSQL cluster in dir, listening on 127.0.0.1:port."""

    def __init__(self):
        self.bindir = pg_bindir()
        # Not under make_tmpdir's directory: the postgres user must reach it.
        self.dir = tempfile.mkdtemp(prefix="strand-it-pgsrv-")
        on_cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.prefix = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.env = dict(os.environ, LC_ALL="C", PGCONNECT_TIMEOUT="5")
        self.proc = None

    def init(self):
        subprocess.run(self.prefix + [self.bindir + "/initdb", "-D", self.data, "-U", "postgres",
                                      "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, env=self.env, timeout=30)
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "host all md5user 127.0.0.1/32 md5\n"
                    "host all scramuser 127.0.0.1/32 scram-sha-256\n"
                    "host all strandro 127.0.0.1/32 md5\n"
                    "host replication all 127.0.0.1/32 trust\n"
                    "host all all 127.0.0.1/32 trust\n")

    def start(self):
        self.proc = spawn(self.prefix + [self.bindir + "/postgres", "-D", self.data,
                                         "-k", self.dir, "-p", str(self.port), "-h", "127.0.0.1",
                                         "-c", "ssl=off", "-c", "fsync=off",
                                         "-c", "max_connections=40",
                                         # a restarted standby streams again quickly
                                         "-c", "wal_retrieve_retry_interval=200ms"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)
        on_cleanup(self.stop)
        ok = wait_for(lambda: subprocess.run([self.bindir + "/pg_isready", "-q", "-h", self.dir,
                                              "-p", str(self.port)], env=self.env,
                                             timeout=5).returncode == 0, timeout=15)
        if not ok:
            raise RuntimeError("postgres did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run(self.prefix + [self.bindir + "/pg_ctl", "-D", self.data, "-m",
                                          "immediate", "-w", "-t", "5", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env,
                           timeout=10)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def sql(self, sql, db="postgres"):
        """Runs sql as the superuser over the unix socket (not through Strand)."""
        return subprocess.run([PSQL, "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                               "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                              check=True, env=self.env, capture_output=True, text=True,
                              timeout=10).stdout


# ---- A minimal extended-protocol client over a raw socket -------------------

def msg(t, body):
    return t + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


class RawPg:
    def __init__(self, port, user, db):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        params = cstr("user") + cstr(user) + cstr("database") + cstr(db) + b"\0"
        body = struct.pack("!I", 196608) + params
        self.s.sendall(struct.pack("!I", len(body) + 4) + body)
        self.buf = b""
        self.until_ready()

    def read_msg(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            b = self.s.recv(65536)
            if not b:
                raise EOFError("connection closed")
            self.buf += b
        n = 1 + struct.unpack("!I", self.buf[1:5])[0]
        m, self.buf = self.buf[:n], self.buf[n:]
        return m[:1], m[5:]

    def until_ready(self):
        """Messages up to and including ReadyForQuery: [(type, body)]."""
        out = []
        while True:
            t, b = self.read_msg()
            out.append((t, b))
            if t == b"Z":
                return out

    @staticmethod
    def sqlstate(msgs):
        for t, b in msgs:
            if t == b"E":
                for f in b.split(b"\0"):
                    if f[:1] == b"C":
                        return f[1:].decode()
        return None

    def extended(self, sql, params=(), name=""):
        """Parse (named `name`) + Bind + Execute + Sync in one write."""
        p = msg(b"P", cstr(name) + cstr(sql) + struct.pack("!H", 0))
        vals = b"".join(struct.pack("!I", len(v)) + v.encode() for v in params)
        bnd = msg(b"B", cstr("") + cstr(name) + struct.pack("!H", 0) +
                  struct.pack("!H", len(params)) + vals + struct.pack("!H", 0))
        self.s.sendall(p + bnd + msg(b"E", cstr("") + struct.pack("!I", 0)) + msg(b"S", b""))
        return self.until_ready()

    def execute(self, name, params=()):
        """Bind + Execute + Sync of an already prepared statement."""
        vals = b"".join(struct.pack("!I", len(v)) + v.encode() for v in params)
        bnd = msg(b"B", cstr("") + cstr(name) + struct.pack("!H", 0) +
                  struct.pack("!H", len(params)) + vals + struct.pack("!H", 0))
        self.s.sendall(bnd + msg(b"E", cstr("") + struct.pack("!I", 0)) + msg(b"S", b""))
        return self.until_ready()

    def close(self):
        try:
            self.s.sendall(msg(b"X", b""))
        except OSError:
            pass
        self.s.close()


def rows_of(msgs):
    """DataRow first-column values as strings."""
    out = []
    for t, b in msgs:
        if t == b"D":
            n = struct.unpack("!i", b[2:6])[0]
            out.append(None if n < 0 else b[6:6 + n].decode())
    return out


def main():
    t = Suite("test_pg")
    tmp = make_tmpdir("pg")
    if not pg_bindir():
        t.check("PostgreSQL server installed (/usr/lib/postgresql/*/bin/postgres)", False)
        t.finish()

    with t.section("setup"):
        pg = PgServer()
        pg.init()
        pg.start()
        pg.sql("SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5secret'")
        pg.sql("SET password_encryption = 'scram-sha-256'; "
               "CREATE ROLE scramuser LOGIN PASSWORD 'scramsecret'")
        pg.sql("CREATE ROLE blocked LOGIN")
        pg.sql("CREATE DATABASE shop")
        pg.sql("CREATE DATABASE analytics")
        pg.sql("CREATE TABLE users (id int PRIMARY KEY, name text);"
               "INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');"
               "CREATE TABLE orders (id serial PRIMARY KEY, user_id int, item text);"
               "GRANT ALL ON ALL TABLES IN SCHEMA public TO md5user, scramuser;"
               "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO md5user, scramuser", db="shop")
        pg.sql("CREATE TABLE events (id int)", db="analytics")

        admin, port, dead, term = free_port(), free_port(), free_port(), free_port()
        tlsport = free_port()
        pki = os.path.join(tmp, "pki")
        os.makedirs(pki)
        make_pki(pki)
        # The verifier PostgreSQL keeps for scramuser, pasted as a proxy user's.
        scram_verifier = pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'scramuser'")
        docs = [
            proxy_doc(admin, workers=1),
            listener_doc("pg", port, protocol="postgres"),
            # The proxy authenticates these clients itself and logs into the
            # server as the cluster's user (SCRAM against the server too).
            listener_doc("pgterm", term, protocol="postgres", auth={"users": [
                {"user": "app", "password": "app-secret"},
                {"user": "pasted", "scramSecret": scram_verifier.strip()},
                {"user": "readonly", "password": "ro-secret"}]}),
            cluster_doc("shop-as-scramuser", [pg.port],
                        auth={"user": "scramuser", "password": "scramsecret"}),
            route_doc("term", ["pgterm"], [{"backends": [{"cluster": "shop-as-scramuser"}]}]),
            listener_doc("pgtls", tlsport, protocol="postgres", tls={"certificates": [
                {"certFile": os.path.join(pki, "localhost.pem"),
                 "keyFile": os.path.join(pki, "localhost.key")}],
                "clientCA": os.path.join(pki, "ca.pem")}),
            policy("db-identity-no-delete", ["pgtls"], "DENY", [[
                {"attribute": "source.identity", "exact": DB_ID},
                {"attribute": "sql.verb", "exact": "DELETE"}]]),
            route_doc("tls", ["pgtls"], [{"backends": [{"cluster": "shop"}]}]),
            policy("readonly-reads", ["pgterm"], "DENY", [[
                {"attribute": "db.user", "exact": "readonly"},
                {"attribute": "sql.verb", "in": ["INSERT", "UPDATE", "DELETE"]}]]),
            listener_doc("pgdead", dead, protocol="postgres"),
            cluster_doc("shop", [pg.port]),
            cluster_doc("analytics", [pg.port]),
            cluster_doc("nowhere", [free_port()], connectTimeout="1s"),
            route_doc("db", ["pg"], [
                {"name": "analytics", "match": [{"attribute": "db.name", "exact": "analytics"}],
                 "backends": [{"cluster": "analytics"}]},
                {"name": "shop", "match": [{"attribute": "db.name", "in": ["shop", "postgres"]}],
                 "backends": [{"cluster": "shop"}]}]),
            route_doc("dead", ["pgdead"], [{"backends": [{"cluster": "nowhere"}]}]),
            policy("no-delete-users", ["pg"], "DENY", [[
                {"attribute": "sql.verb", "exact": "DELETE"},
                {"attribute": "sql.tables", "in": ["users"]}]]),
            policy("no-drop-in-txn", ["pg"], "DENY", [[
                {"attribute": "sql.verb", "exact": "DROP"},
                {"attribute": "sql.in_transaction", "exact": "true"}]]),
            policy("no-blocked", ["pg"], "DENY", [[
                {"attribute": "db.user", "exact": "blocked"}]]),
        ]
        s = start_strand(t, tmp, [docs])
    if t.failed:
        t.finish()

    def connect(db="shop", user="postgres", password=None, **kw):
        return psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname=db,
                                password=password, connect_timeout=5, sslmode="disable",
                                gssencmode="disable", **kw)

    def psql(conninfo, sql, password=None):
        env = dict(os.environ, PGCONNECT_TIMEOUT="5")
        if password:
            env["PGPASSWORD"] = password
        return subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql],
                              capture_output=True, text=True, env=env, timeout=10)

    base = "host=127.0.0.1 port=%d user=postgres" % port

    with t.section("psql through strand, SSLRequest answered N"):
        r = psql(base + " dbname=shop sslmode=prefer", "SELECT current_database()")
        t.eq("psql sslmode=prefer falls back to plain", (r.returncode, r.stdout.strip()),
             (0, "shop"))
        r = psql(base + " dbname=shop sslmode=require", "SELECT 1")
        t.check("psql sslmode=require is refused (no TLS on the listener)", r.returncode != 0,
                r.stderr)
        r = psql(base + " dbname=shop sslmode=disable",
                 "INSERT INTO orders (user_id, item) VALUES (1, 'pen'), (2, 'ink'); "
                 "UPDATE users SET name = 'ann2' WHERE id = 1; SELECT count(*) FROM orders")
        t.eq("psql -c INSERT/UPDATE/SELECT", (r.returncode, r.stdout.strip().splitlines()[-1:]),
             (0, ["2"]))

    with t.section("routing on db.name"):
        r = psql(base + " dbname=analytics sslmode=disable", "SELECT current_database()")
        t.eq("db.name analytics -> analytics cluster", r.stdout.strip(), "analytics")
        c = connect("postgres")
        cur = c.cursor()
        cur.execute("SELECT current_database()")
        t.eq("db.name postgres -> shop cluster", cur.fetchone()[0], "postgres")
        c.close()
        r = psql(base + " dbname=nosuch sslmode=disable", "SELECT 1")
        t.check("no route for the database -> error",
                r.returncode != 0 and "no route" in r.stderr, r.stderr)
        m = s.metrics()
        t.check("statements counted under cluster analytics",
                m.get("strand_db_statements_total", cluster="analytics") >= 1,
                m.describe("strand_db_statements_total"))

    with t.section("password authentication passes through"):
        c = connect(user="md5user", password="md5secret")
        cur = c.cursor()
        cur.execute("SELECT current_user")
        t.eq("md5: right password", cur.fetchone()[0], "md5user")
        c.close()
        c = connect(user="scramuser", password="scramsecret")
        cur = c.cursor()
        cur.execute("SELECT current_user")
        t.eq("SCRAM: right password", cur.fetchone()[0], "scramuser")
        c.close()
        for user in ("md5user", "scramuser"):
            r = psql("host=127.0.0.1 port=%d user=%s dbname=shop sslmode=disable" % (port, user),
                     "SELECT 1", password="wrong")
            t.check("%s: wrong password -> server's password authentication failed" % user,
                    r.returncode != 0 and "password authentication failed" in r.stderr, r.stderr)
        try:
            connect(user="blocked")
            t.check("session refused by policy", False, "connected")
        except psycopg2.OperationalError as e:
            t.check("session refused by policy no-blocked",
                    "permission denied by policy no-blocked" in str(e), str(e))

    with t.section("psycopg2: parameters, transactions, refused statements"):
        c = connect()
        c.autocommit = True
        cur = c.cursor()
        cur.execute("SELECT name FROM users WHERE id = %s", (2,))
        t.eq("SELECT with a parameter", cur.fetchone()[0], "bob")
        cur.execute("INSERT INTO orders (user_id, item) VALUES (%s, %s)", (3, "cup"))
        t.eq("INSERT rowcount", cur.rowcount, 1)
        cur.execute("UPDATE orders SET item = %s WHERE user_id = %s", ("mug", 3))
        t.eq("UPDATE rowcount", cur.rowcount, 1)
        try:
            cur.execute("DELETE FROM users WHERE id = %s", (3,))
            t.check("DELETE FROM users refused", False, "it ran")
        except psycopg2.Error as e:
            t.eq("DELETE FROM users refused with 42501", e.pgcode, "42501")
            t.check("the refusal names the policy", "no-delete-users" in str(e), str(e))
        cur.execute("SELECT count(*) FROM users")
        t.eq("same connection still usable; the row is still there", cur.fetchone()[0], 3)
        cur.execute("DELETE FROM orders WHERE item = %s", ("mug",))
        t.eq("DELETE on another table is allowed", cur.rowcount, 1)
        cur.execute("CREATE TABLE scratch1 (x int); DROP TABLE scratch1")
        t.check("DROP outside a transaction is allowed", True)

        c.autocommit = False
        cur.execute("SELECT count(*) FROM orders")   # psycopg2 sends BEGIN first
        cur.fetchone()
        cur.execute("INSERT INTO orders (user_id, item) VALUES (1, 'txn')")
        try:
            cur.execute("DROP TABLE orders")
            t.check("DROP inside a transaction refused", False, "it ran")
        except psycopg2.Error as e:
            t.eq("DROP inside a transaction refused (sql.in_transaction)", e.pgcode, "42501")
        c.rollback()
        cur.execute("SELECT count(*) FROM orders WHERE item = 'txn'")
        t.eq("rolled back transaction left nothing", cur.fetchone()[0], 0)
        c.commit()
        cur.execute("BEGIN; INSERT INTO orders (user_id, item) VALUES (2, 'kept'); COMMIT")
        c.commit()
        cur.execute("SELECT count(*) FROM orders WHERE item = 'kept'")
        t.eq("BEGIN/COMMIT in a simple query", cur.fetchone()[0], 1)
        c.commit()
        c.close()

    with t.section("extended protocol (Parse/Bind/Execute/Sync)"):
        r = RawPg(port, "postgres", "shop")
        out = r.extended("SELECT name FROM users WHERE id = $1", ["2"])
        t.eq("unnamed statement with a parameter", rows_of(out), ["bob"])
        out = r.extended("DELETE FROM users WHERE id = $1", ["1"], name="del")
        t.eq("prepared DELETE FROM users refused with 42501", RawPg.sqlstate(out), "42501")
        t.eq("nothing but ErrorResponse + ReadyForQuery", [m[0] for m in out], [b"E", b"Z"])
        out = r.extended("SELECT count(*) FROM users", [], name="cnt")
        t.eq("same connection still usable", rows_of(out), ["3"])
        out = r.execute("cnt")
        t.eq("named statement executed again", rows_of(out), ["3"])
        out = r.execute("del", ["1"])
        t.eq("the refused statement was never prepared on the server",
             RawPg.sqlstate(out), "26000")
        # A refused Query pipelined behind an allowed one: answers in order.
        r.s.sendall(msg(b"Q", cstr("SELECT 7")) + msg(b"Q", cstr("DELETE FROM users")) +
                    msg(b"Q", cstr("SELECT 8")))
        a, b, c3 = r.until_ready(), r.until_ready(), r.until_ready()
        t.eq("pipelined queries answered in order",
             (rows_of(a), RawPg.sqlstate(b), rows_of(c3)), (["7"], "42501", ["8"]))
        r.close()

    with t.section("COPY passes through"):
        c = connect()
        c.autocommit = True
        cur = c.cursor()
        cur.copy_expert("COPY orders (user_id, item) FROM STDIN", io.StringIO("5\tcopy1\n5\tcopy2\n"))
        out = io.StringIO()
        cur.copy_expert("COPY (SELECT item FROM orders WHERE user_id = 5 ORDER BY item) TO STDOUT",
                        out)
        t.eq("COPY FROM STDIN then COPY TO STDOUT", out.getvalue(), "copy1\ncopy2\n")
        cur.execute("SELECT count(*) FROM orders WHERE user_id = 5")
        t.eq("connection usable after COPY", cur.fetchone()[0], 2)
        c.close()

    with t.section("messages larger than a buffer"):
        c = connect()
        c.autocommit = True
        cur = c.cursor()
        big = "y" * 300000
        cur.execute("SELECT length(%s)", (big,))
        t.eq("300 kB query (simple protocol)", cur.fetchone()[0], 300000)
        cur.execute("SELECT repeat('x', 2000000), g FROM generate_series(1, 3) g")
        rows = cur.fetchall()
        t.eq("2 MB data rows streamed", [(len(a), g) for a, g in rows],
             [(2000000, 1), (2000000, 2), (2000000, 3)])
        r = RawPg(port, "postgres", "shop")
        out = r.extended("SELECT length($1)", [big])
        t.eq("300 kB Bind (extended protocol)", rows_of(out), ["300000"])
        r.close()
        c.close()

    with t.section("terminated authentication (Listener auth)"):
        def tconnect(user, password, db="shop"):
            return psycopg2.connect(host="127.0.0.1", port=term, user=user, dbname=db,
                                    password=password, connect_timeout=5, sslmode="disable",
                                    gssencmode="disable")
        c = tconnect("app", "app-secret")
        cur = c.cursor()
        cur.execute("SELECT current_user, session_user")
        t.eq("the server session is the cluster's user", cur.fetchone(), ("scramuser", "scramuser"))
        cur.execute("SELECT count(*) FROM users")
        t.eq("queries run", cur.fetchone()[0], 3)
        c.close()
        c = tconnect("pasted", "scramsecret")
        cur = c.cursor()
        cur.execute("SELECT 1")
        t.eq("a user given as pg_authid's SCRAM verifier logs in", cur.fetchone()[0], 1)
        c.close()
        for user, pw, what in (("app", "wrong", "wrong password"),
                               ("nobody", "app-secret", "unknown user")):
            try:
                tconnect(user, pw).close()
                t.check("%s refused" % what, False, "logged in")
            except psycopg2.OperationalError as e:
                t.check("%s refused like PostgreSQL (28P01)" % what,
                        'password authentication failed for user "%s"' % user in str(e), str(e))
        r = psql("host=127.0.0.1 port=%d user=app dbname=shop" % term, "SELECT current_user",
                 password="app-secret")
        t.eq("psql (libpq) logs in", (r.returncode, r.stdout.strip()), (0, "scramuser"))
        c = tconnect("readonly", "ro-secret")
        c.autocommit = True
        cur = c.cursor()
        cur.execute("SELECT count(*) FROM users")
        t.eq("readonly reads", cur.fetchone()[0], 3)
        try:
            cur.execute("INSERT INTO orders (user_id, item) VALUES (1, 'ro')")
            t.check("policies see the proxy's user (db.user readonly)", False, "it ran")
        except psycopg2.Error as e:
            t.eq("policies see the proxy's user (db.user readonly)", e.pgcode, "42501")
        c.close()
        # Pooling: a terminated session's server connection serves the next
        # client with the same startup parameters, reset by DISCARD ALL.
        c = tconnect("app", "app-secret")
        c.autocommit = True
        cur = c.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pid1 = cur.fetchone()[0]
        cur.execute("SET work_mem = '7MB'; CREATE TEMP TABLE scratch (x int); "
                    "PREPARE p1 AS SELECT 1; LISTEN chan")
        c.close()

        def pooled_pid():
            c2 = tconnect("app", "app-secret")
            c2.autocommit = True
            cur2 = c2.cursor()
            cur2.execute("SELECT pg_backend_pid(), current_setting('work_mem'), "
                         "(SELECT count(*) FROM pg_prepared_statements), "
                         "(SELECT count(*) FROM pg_class WHERE relname = 'scratch' "
                         "AND relpersistence = 't'), (SELECT count(*) FROM pg_listening_channels())")
            row = cur2.fetchone()
            # Leave state behind for whoever gets this connection next.
            cur2.execute("SET work_mem = '7MB'; CREATE TEMP TABLE scratch (x int); "
                         "PREPARE p1 AS SELECT 1; LISTEN chan")
            c2.close()
            return row
        # A session arriving while the connection is still being reset
        # gets a new one, which is pooled in turn: reuse shows as a pid
        # some earlier session had.
        seen, got = {pid1}, []

        def reused():
            got.append(pooled_pid())
            if got[-1][0] in seen:
                return True
            seen.add(got[-1][0])
            return False
        t.check("a later session runs on an earlier session's server connection",
                wait_for(reused, timeout=10), repr(got))
        t.eq("... with the previous session's state gone (SET, PREPARE, TEMP, LISTEN)",
             got[-1][1:], ("4MB", 0, 0, 0))
        a, b = tconnect("app", "app-secret"), tconnect("app", "app-secret")
        ca, cb = a.cursor(), b.cursor()
        ca.execute("SELECT pg_backend_pid()")
        cb.execute("SELECT pg_backend_pid()")
        t.check("two sessions at once never share a server connection",
                ca.fetchone()[0] != cb.fetchone()[0])
        a.close()
        b.close()
        # A session that ends inside a transaction is not pooled: its
        # connection closes, the server rolls the transaction back.
        c = tconnect("app", "app-secret")
        cur = c.cursor()
        cur.execute("INSERT INTO orders (user_id, item) VALUES (77, 'uncommitted')")
        cur.execute("SELECT pg_backend_pid()")
        txpid = cur.fetchone()[0]
        c.close()
        wait_for(lambda: pg.sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %d" % txpid,
                                db="shop").strip() == "0", timeout=5)
        t.eq("an open transaction dies with its client",
             pg.sql("SELECT count(*) FROM orders WHERE item = 'uncommitted'", db="shop").strip(),
             "0")
        m = s.metrics()
        t.check("pooled connections stay open (strand_upstream_connections_active)",
                m.get("strand_upstream_connections_active", cluster="shop-as-scramuser") >= 1,
                m.describe("strand_upstream_connections_active"))
        t.check("strand_db_pool_connections counts them",
                m.get("strand_db_pool_connections", cluster="shop-as-scramuser") >= 1,
                m.describe("strand_db_pool_connections"))
        t.check("strand_db_pool_reused_total counts the reuse",
                m.get("strand_db_pool_reused_total", cluster="shop-as-scramuser") >= 1,
                m.describe("strand_db_pool_reused_total"))
        # Cancelling a query on a pooled connection: the key the client got
        # is the server's, registered again for this session.
        c = tconnect("app", "app-secret")
        cur = c.cursor()

        def sleeping_term():
            return pg.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                          "AND query = 'SELECT pg_sleep(20)'", db="shop").strip() == "1"
        th = threading.Thread(target=lambda: wait_for(sleeping_term, timeout=10) and c.cancel())
        th.start()
        try:
            cur.execute("SELECT pg_sleep(20)")
            t.check("a pooled session's query can be cancelled", False, "it ran to the end")
        except psycopg2.Error as e:
            t.eq("a pooled session's query can be cancelled", e.pgcode, "57014")
        th.join()
        c.close()
        cfg = s.admin("/config").text
        t.check("the admin view lists users, not their secrets",
                '"user":"app"' in cfg and "app-secret" not in cfg and "ro-secret" not in cfg,
                cfg[:300])

    with t.section("TLS on a postgres listener (SSLRequest answered S)"):
        c = psycopg2.connect(host="localhost", port=tlsport, user="postgres", dbname="shop",
                             connect_timeout=5, sslmode="verify-full",
                             sslrootcert=os.path.join(pki, "ca.pem"), gssencmode="disable")
        cur = c.cursor()
        t.check("verify-full against the test CA, TLS in use", c.info.ssl_in_use)
        cur.execute("SELECT length(repeat('x', 3000000)), count(*) FROM users")
        t.eq("queries through TLS", cur.fetchone(), (3000000, 3))
        cur.execute("SELECT repeat('y', 2000000)")
        t.eq("2 MB row back through TLS", len(cur.fetchone()[0]), 2000000)
        c.close()
        r = psql("host=127.0.0.1 port=%d user=postgres dbname=shop sslmode=disable" % tlsport,
                 "SELECT 1")
        t.check("plain text refused on a tls listener (like hostssl)",
                r.returncode != 0 and "SSL connections only" in r.stderr, r.stderr)
        # source.identity from the client certificate, in a policy.
        c = psycopg2.connect(host="localhost", port=tlsport, user="postgres", dbname="shop",
                             connect_timeout=5, sslmode="verify-full",
                             sslrootcert=os.path.join(pki, "ca.pem"), gssencmode="disable",
                             sslcert=os.path.join(pki, "db.pem"),
                             sslkey=os.path.join(pki, "db.key"))
        c.autocommit = True
        cur = c.cursor()
        try:
            cur.execute("DELETE FROM users WHERE id = 999")
            t.check("DELETE refused for the db identity (source.identity)", False, "it ran")
        except psycopg2.Error as e:
            t.eq("DELETE refused for the db identity (source.identity)", e.pgcode, "42501")
        cur.execute("SELECT count(*) FROM users")
        t.eq("... which can still read", cur.fetchone()[0], 3)
        c.close()
        c = psycopg2.connect(host="localhost", port=tlsport, user="postgres", dbname="shop",
                             connect_timeout=5, sslmode="verify-full",
                             sslrootcert=os.path.join(pki, "ca.pem"), gssencmode="disable")
        c.autocommit = True
        cur = c.cursor()
        cur.execute("DELETE FROM users WHERE id = 999")
        t.eq("without a client certificate the identity rule does not match", cur.rowcount, 0)
        c.close()

    with t.section("per-table and per-error-code metrics"):
        before = s.metrics()
        c = connect()
        c.autocommit = True
        cur = c.cursor()
        for _ in range(3):
            cur.execute("SELECT u.name FROM users u JOIN orders o ON o.user_id = u.id")
            cur.fetchall()
        cur.execute("INSERT INTO orders (user_id, item) VALUES (9, 'tbl')")
        for q in ("SELECT * FROM no_such_table", "SELECT 1/0", "DELETE FROM users"):
            try:
                cur.execute(q)
            except psycopg2.Error:
                pass
        c.close()
        after = s.metrics()

        def delta(name, **labels):
            return after.get(name, **labels) - before.get(name, **labels)
        tbl = "strand_db_table_statements_total"
        t.eq("a join counts for users", delta(tbl, listener="pg", table="users", verb="SELECT"), 3)
        t.eq("... and for orders", delta(tbl, listener="pg", table="orders", verb="SELECT"), 3)
        t.eq("INSERT into orders", delta(tbl, listener="pg", table="orders", verb="INSERT"), 1)
        t.eq("a refused DELETE never reached a server",
             delta(tbl, listener="pg", table="users", verb="DELETE"), 0)
        err = "strand_db_errors_total"
        t.eq("undefined table: 42P01", delta(err, listener="pg", code="42P01"), 1)
        t.eq("division by zero: 22012", delta(err, listener="pg", code="22012"), 1)
        t.check("error series carry route and cluster",
                all(lb.get("cluster") == "shop" for lb, _ in after.find(err, code="22012")),
                after.describe(err))

    with t.section("CancelRequest reaches the session's server"):
        c = connect()
        c.autocommit = True
        cur = c.cursor()

        def sleeping():
            return pg.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                          "AND query = 'SELECT pg_sleep(30)'", db="shop").strip() == "1"

        def cancel_when_running():
            if wait_for(sleeping, timeout=10):
                c.cancel()
        th = threading.Thread(target=cancel_when_running)
        th.start()
        try:
            cur.execute("SELECT pg_sleep(30)")
            t.check("pg_sleep(30) cancelled", False, "it ran to the end")
        except psycopg2.Error as e:
            t.eq("cancelled with 57014 (query_canceled)", e.pgcode, "57014")
        th.join()
        cur.execute("SELECT 1")
        t.eq("the session goes on", cur.fetchone()[0], 1)
        # A CancelRequest with a key no session holds is dropped: the proxy
        # closes without forwarding, and the running query is untouched.
        key = c.get_backend_pid()
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(struct.pack("!IIII", 16, 80877102, key, 12345))
        t.eq("bogus cancel: closed without an answer", sock.recv(16), b"")
        sock.close()
        cur.execute("SELECT 2")
        t.eq("... and the session is unaffected", cur.fetchone()[0], 2)
        c.close()

    with t.section("metrics"):
        m = s.metrics()
        name = "strand_db_statements_total"
        t.check("SELECT ok counted", m.get(name, verb="SELECT", outcome="ok") >= 5, m.describe(name))
        t.check("DELETE denied counted", m.get(name, verb="DELETE", outcome="denied") >= 3,
                m.describe(name))
        t.check("DROP denied counted", m.get(name, verb="DROP", outcome="denied") >= 1,
                m.describe(name))
        t.check("INSERT ok counted", m.get(name, verb="INSERT", outcome="ok") >= 2,
                m.describe(name))
        t.check("server errors counted", m.get(name, outcome="error") >= 1, m.describe(name))
        t.check("strand_db_statement_duration_seconds exists",
                m.has("strand_db_statement_duration_seconds_count") or
                m.has("strand_db_statement_duration_seconds_bucket"),
                m.describe("strand_db_statement_duration_seconds_count"))
        t.check("rows counted for SELECT", m.get("strand_db_rows_total", verb="SELECT") >= 5,
                m.describe("strand_db_rows_total"))
        t.check("rows counted for INSERT", m.get("strand_db_rows_total", verb="INSERT") >= 3,
                m.describe("strand_db_rows_total"))

    with t.section("read/write split to a streaming replica"):
        pg.sql("SET password_encryption = 'md5'; CREATE ROLE strandro LOGIN PASSWORD 'ropass'")
        pg.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO strandro", db="shop")
        rp = PgServer()
        subprocess.run(rp.prefix + [rp.bindir + "/pg_basebackup", "-h", "127.0.0.1", "-p",
                                    str(pg.port), "-U", "postgres", "-D", rp.data, "-R",
                                    "-X", "stream", "-c", "fast"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=rp.env, timeout=30)
        rp.start()
        t.check("replica is in recovery",
                wait_for(lambda: rp.sql("SELECT pg_is_in_recovery()").strip() == "t",
                         timeout=10))
        radmin, rport = free_port(), free_port()
        rdocs = [
            proxy_doc(radmin, workers=1),
            listener_doc("pgrw", rport, protocol="postgres"),
            cluster_doc("primary", [pg.port]),
            cluster_doc("replica", [rp.port], connectTimeout="1s",
                        auth={"user": "strandro", "password": "ropass"}),
            route_doc("rw", ["pgrw"], [
                {"name": "reads", "match": [{"attribute": "sql.verb", "in": ["SELECT", "SHOW"]}],
                 "backends": [{"cluster": "replica"}]},
                {"name": "writes", "backends": [{"cluster": "primary"}]}]),
        ]
        rs = start_strand(t, make_tmpdir("pgrw"), [rdocs])

        def rconnect():
            c = psycopg2.connect(host="127.0.0.1", port=rport, user="postgres", dbname="shop",
                                 connect_timeout=5, sslmode="disable", gssencmode="disable")
            c.autocommit = True
            return c

        def one(cur, sql):
            cur.execute(sql)
            return cur.fetchone()

        c = rconnect()
        cur = c.cursor()
        t.eq("SELECT goes to the replica (pg_is_in_recovery true)",
             one(cur, "SELECT pg_is_in_recovery()")[0], True)
        cur.execute("BEGIN")
        t.eq("SELECT inside a transaction stays on the primary",
             one(cur, "SELECT pg_is_in_recovery()")[0], False)
        cur.execute("COMMIT")
        time.sleep(1.1)   # past the stickiness window of COMMIT
        t.eq("SELECT ... FOR UPDATE goes to the primary",
             one(cur, "SELECT pg_is_in_recovery() FROM users WHERE id = 2 FOR UPDATE")[0], False)
        time.sleep(1.1)
        cur.execute("INSERT INTO orders (user_id, item) VALUES (9, 'replicated')")
        t.eq("SELECT right after an INSERT stays on the primary and sees the row",
             one(cur, "SELECT pg_is_in_recovery(), count(*) FROM orders WHERE item = 'replicated'"),
             (False, 1))
        time.sleep(1.1)
        seen = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            seen = one(cur, "SELECT pg_is_in_recovery(), count(*) FROM orders "
                            "WHERE item = 'replicated'")
            if seen == (True, 1):
                break
            time.sleep(0.2)
        t.eq("SELECT > 1 s after the write goes to the replica and sees the row", seen, (True, 1))
        r = subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1",
                            "host=127.0.0.1 port=%d user=postgres dbname=shop sslmode=disable"
                            % rport, "-c", "SHOW transaction_read_only"],
                           capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
        t.eq("psql: SHOW goes to the replica (transaction_read_only on)",
             (r.returncode, r.stdout.strip()), (0, "on"))
        m = rs.metrics()
        name = "strand_db_statements_total"
        t.check("statements counted under cluster replica",
                m.get(name, cluster="replica", verb="SELECT", outcome="ok") >= 2, m.describe(name))
        t.check("statements counted under cluster primary",
                m.get(name, cluster="primary", verb="INSERT", outcome="ok") >= 1, m.describe(name))
        rp.stop()
        try:
            t.eq("replica stopped: the same session's SELECT falls back to the primary",
                 one(cur, "SELECT pg_is_in_recovery()")[0], False)
            t.eq("... and the session stays usable",
                 one(cur, "SELECT count(*) FROM orders WHERE item = 'replicated'")[0], 1)
        except psycopg2.Error as e:
            t.check("replica stopped: the same session's SELECT falls back", False, str(e))
        c.close()
        try:
            c = rconnect()
            t.eq("replica stopped: a new session's SELECT goes to the primary",
                 one(c.cursor(), "SELECT pg_is_in_recovery()")[0], False)
            c.close()
        except psycopg2.Error as e:
            t.check("replica stopped: a new session's SELECT goes to the primary", False, str(e))
        m = rs.metrics()
        t.eq("no failed statements", m.get(name, outcome="failed"), 0)
        t.check("strand (read/write split) still running", rs.alive())
        rs.stop()

    with t.section("replica checks (replicaCheck): lag, pause, stop"):
        # The replica stopped above comes back; the checks must find it.
        rp.start()
        t.check("replica back in recovery",
                wait_for(lambda: rp.sql("SELECT pg_is_in_recovery()").strip() == "t",
                         timeout=10))
        cadmin, cport, sport, closed = free_port(), free_port(), free_port(), free_port()
        check = {"interval": "200ms", "maxLag": "1s", "timeout": "1s"}
        cdocs = [
            proxy_doc(cadmin, workers=2),
            listener_doc("pgchk", cport, protocol="postgres"),
            listener_doc("pgscram", sport, protocol="postgres"),
            cluster_doc("primary", [pg.port]),
            # A closed port first: the checks keep reads away from it.
            cluster_doc("replica", [closed, rp.port], connectTimeout="1s",
                        auth={"user": "strandro", "password": "ropass"}, replicaCheck=check),
            # The checks log in with SCRAM-SHA-256 here (and so does the session).
            cluster_doc("replica-scram", [rp.port], connectTimeout="1s",
                        auth={"user": "scramuser", "password": "scramsecret"},
                        replicaCheck=check),
            route_doc("chk", ["pgchk"], [
                {"name": "reads", "match": [{"attribute": "sql.verb", "in": ["SELECT"]}],
                 "backends": [{"cluster": "replica"}]},
                {"name": "writes", "backends": [{"cluster": "primary"}]}]),
            route_doc("scram", ["pgscram"], [
                {"name": "reads", "match": [{"attribute": "sql.verb", "in": ["SELECT"]}],
                 "backends": [{"cluster": "replica-scram"}]},
                {"name": "writes", "backends": [{"cluster": "primary"}]}]),
        ]
        cs = start_strand(t, make_tmpdir("pgchk"), [cdocs])
        rep_ep = "127.0.0.1:%d" % rp.port
        closed_ep = "127.0.0.1:%d" % closed
        failures = []

        def read(sql, listen=cport):
            """One statement in a new session (no stickiness); None if it failed."""
            try:
                c = psycopg2.connect(host="127.0.0.1", port=listen, user="postgres",
                                     dbname="shop", connect_timeout=5, sslmode="disable",
                                     gssencmode="disable")
                try:
                    c.autocommit = True
                    cur = c.cursor()
                    cur.execute(sql)
                    return cur.fetchone()
                finally:
                    c.close()
            except psycopg2.Error as e:
                failures.append(str(e))
                return None

        def until(sql, want, listen=cport, timeout=15):
            """Reads in new sessions until one answers want (bounded)."""
            got = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                got = read(sql, listen)
                if got == want:
                    break
                time.sleep(0.1)
            return got

        def up(cluster, ep):
            return cs.metrics().get("strand_db_replica_up", cluster=cluster, endpoint=ep)

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

        where = "SELECT pg_is_in_recovery()"
        t.eq("the first read goes to the primary (replica not checked yet) or the replica",
             read(where) in ((False,), (True,)), True)
        t.eq("once checked and in sync, reads go to the replica",
             until(where, (True,)), (True,))
        t.eq("strand_db_replica_up is 1 for the replica",
             wait_for(lambda: up("replica", rep_ep) == 1, timeout=5), True)
        t.eq("... and 0 for the closed port",
             wait_for(lambda: up("replica", closed_ep) == 0, timeout=5), True)
        m = cs.metrics()
        t.check("strand_db_replica_lag_seconds is reported for the replica",
                0 <= m.get("strand_db_replica_lag_seconds", cluster="replica",
                           endpoint=rep_ep) <= 1,
                m.describe("strand_db_replica_lag_seconds"))
        before = m.get("strand_upstream_requests_total", cluster="replica", endpoint=closed_ep)
        for _ in range(10):
            read(where)
        m = cs.metrics()
        t.eq("reads never try the endpoint the checks put out",
             m.get("strand_upstream_requests_total", cluster="replica", endpoint=closed_ep),
             before)

        # Replay paused: the replica receives WAL but falls behind.
        rp.sql("SELECT pg_wal_replay_pause()")
        pg.sql("INSERT INTO orders (user_id, item) VALUES (11, 'paused')", db="shop")
        seen = "SELECT pg_is_in_recovery(), count(*) FROM orders WHERE item = 'paused'"
        t.eq("replay paused: reads go to the primary and see the new row",
             until(seen, (False, 1)), (False, 1))
        t.eq("strand_db_replica_up is 0 for the lagging replica", up("replica", rep_ep), 0)
        rp.sql("SELECT pg_wal_replay_resume()")
        t.eq("replay resumed: reads return to the replica, which has the row",
             until(seen, (True, 1)), (True, 1))
        t.eq("strand_db_replica_up is 1 again",
             wait_for(lambda: up("replica", rep_ep) == 1, timeout=5), True)

        # SCRAM-SHA-256: the checks (and the session's replica login) use it.
        t.eq("SCRAM credentials: the checks pass and reads reach the replica",
             until(where, (True,), listen=sport), (True,))
        t.eq("strand_db_replica_up is 1 for the SCRAM cluster",
             wait_for(lambda: up("replica-scram", rep_ep) == 1, timeout=5), True)

        # A reload: the new generation checks on its own; the old one's
        # checks end with the last session that holds it.
        old = psycopg2.connect(host="127.0.0.1", port=cport, user="postgres", dbname="shop",
                               connect_timeout=5, sslmode="disable", gssencmode="disable")
        old.autocommit = True
        ocur = old.cursor()

        def old_read():
            ocur.execute(where)
            return ocur.fetchone()
        t.eq("reload: a session of the old generation reads from the replica",
             poll(old_read, (True,)), (True,))
        t.eq("reload (SIGHUP) accepted", cs.reload_sighup(), "ok")
        t.eq("after the reload, reads reach the replica once checked again",
             until(where, (True,)), (True,))
        t.eq("... and the old generation's session still reads from it", old_read(), (True,))
        old.close()

        # A session that keeps its replica connection across the stop.
        keep = psycopg2.connect(host="127.0.0.1", port=cport, user="postgres", dbname="shop",
                                connect_timeout=5, sslmode="disable", gssencmode="disable")
        keep.autocommit = True
        kcur = keep.cursor()

        def kept():
            try:
                kcur.execute(where)
                return kcur.fetchone()
            except psycopg2.Error as e:
                failures.append(str(e))
                return None

        t.eq("a long session reads from the replica", poll(kept, (True,)), (True,))

        # The replica stops: no read fails, they land on the primary.
        del failures[:]
        rp.stop()
        t.eq("replica stopped: the long session's read goes to the primary", kept(), (False,))
        answers = [read(where) for _ in range(10)]
        t.eq("replica stopped: every read answered by the primary, none failed",
             (answers, failures), ([(False,)] * 10, []))
        t.eq("strand_db_replica_up is 0 for the stopped replica",
             wait_for(lambda: up("replica", rep_ep) == 0, timeout=5), True)
        rp.start()
        t.eq("replica restarted: reads return to it", until(where, (True,)), (True,))
        t.eq("... and the long session's reads too, a few seconds later",
             poll(kept, (True,), timeout=20), (True,))
        keep.close()
        m = cs.metrics()
        t.eq("no failed statements", m.get("strand_db_statements_total", outcome="failed"), 0)
        t.eq("no client statement failed at any point", failures, [])
        t.check("strand (replica checks) still running", cs.alive())
        cs.stop()

    with t.section("unreachable and stopped servers"):
        t0 = time.monotonic()
        r = psql("host=127.0.0.1 port=%d user=postgres dbname=shop sslmode=disable" % dead,
                 "SELECT 1")
        t.check("no server behind the cluster -> error, promptly",
                r.returncode != 0 and time.monotonic() - t0 < 5, r.stderr)
        c = connect()
        c.autocommit = True
        cur = c.cursor()
        cur.execute("SELECT 1")
        pg.stop()
        t0 = time.monotonic()
        try:
            cur.execute("SELECT 1")
            cur.fetchone()
            t.check("stopped server -> error", False, "the query ran")
        except psycopg2.Error as e:
            t.check("stopped server -> error, not a hang", time.monotonic() - t0 < 5, str(e))
        c.close()
        try:
            connect()
            t.check("new session to a stopped server fails", False, "connected")
        except psycopg2.OperationalError as e:
            t.check("new session to a stopped server fails", "could not connect" in str(e) or
                    "closed" in str(e), str(e))
        t.check("strand still running", s.alive())

    with t.section("drain: idle sessions closed, busy ones finish their statement"):
        pg.start()
        idle = RawPg(port, "postgres", "shop")
        busy = RawPg(port, "postgres", "shop")
        busy.s.sendall(msg(b"Q", cstr("SELECT 42 FROM pg_sleep(0.7)")))
        time.sleep(0.2)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        got = b""
        idle.s.settimeout(3)
        try:
            while True:
                b = idle.s.recv(4096)
                if not b:
                    break
                got += b
        except OSError:
            pass
        t.check("idle session closed at once, told why (57P01)",
                b"57P01" in got and time.monotonic() - t0 < 1, repr(got))
        out = busy.until_ready()
        t.eq("busy session's statement completed", rows_of(out), ["42"])
        try:
            more = busy.until_ready()
            t.check("busy session closed after its statement", False, repr(more))
        except (EOFError, OSError):
            t.check("busy session closed after its statement", True)
        t.eq("strand exits cleanly", s.proc.wait(timeout=5), 0)

    t.finish()


if __name__ == "__main__":
    main()
