#!/usr/bin/env python3
"""Captures real PostgreSQL v3 traffic as seeds for tests/fuzz/fuzz_pg.c.

    python3 tests/fuzz/capture_pg.py tests/fuzz/corpus/pg [--c FILE]

Starts a throwaway cluster (initdb into a temporary directory; as root the
server runs as the 'postgres' user through runuser, since PostgreSQL refuses
to run as root), puts a small TCP relay in front of it that records both
directions of every connection, and drives psql and pgbench through the
relay: trust, md5 and SCRAM-SHA-256 logins, simple queries, an error, a
notice, LISTEN/NOTIFY, COPY in and out, and the extended protocol
(pgbench -M extended / -M prepared). Every connection becomes two seeds:

    <name>_fe   0x00 + client->server bytes (starts with the untyped startup phase)
    <name>_be   0x01 + server->client bytes

(the first byte is fuzz_pg.c's control byte: bit 0 is the direction). With
--c FILE, a few small sessions are also written as C arrays for the unit
test's fixtures. Nothing here is needed to build or run the tests; the
seeds are committed."""
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capture_relay import Relay, free_port  # noqa: E402


def pg_bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "postgres")):
            return d
    sys.exit("capture_pg: no /usr/lib/postgresql/*/bin/postgres (apt-get install postgresql)")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    cfile = sys.argv[sys.argv.index("--c") + 1] if "--c" in sys.argv else None
    os.makedirs(out, exist_ok=True)
    bindir = pg_bindir()
    tmp = tempfile.mkdtemp(prefix="strand-pgcap-")
    as_root = os.geteuid() == 0
    prefix = []
    if as_root:
        pw = pwd.getpwnam("postgres")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(tmp, "data")
    port = free_port()
    env = dict(os.environ, LC_ALL="C", PGCONNECT_TIMEOUT="10")
    server = None
    try:
        subprocess.run(prefix + [f"{bindir}/initdb", "-D", data, "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--no-locale"],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        hba = os.path.join(data, "pg_hba.conf")
        with open(hba, "w") as f:
            f.write("local all all trust\n"
                    "host all md5user 127.0.0.1/32 md5\n"
                    "host all scramuser 127.0.0.1/32 scram-sha-256\n"
                    "host all all 127.0.0.1/32 trust\n")
        server = subprocess.Popen(prefix + [f"{bindir}/postgres", "-D", data, "-k", tmp,
                                            "-p", str(port), "-h", "127.0.0.1",
                                            "-c", "ssl=off", "-c", "fsync=off"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env)
        for _ in range(100):
            if subprocess.run([f"{bindir}/pg_isready", "-h", tmp, "-p", str(port)],
                              stdout=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        else:
            sys.exit("capture_pg: server did not start")

        def psql_local(sql):
            subprocess.run([f"{bindir}/psql", "-h", tmp, "-p", str(port), "-U", "postgres",
                            "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           check=True, env=env, stdout=subprocess.DEVNULL)

        psql_local("SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN SUPERUSER "
                   "PASSWORD 'md5secret'")
        psql_local("SET password_encryption = 'scram-sha-256'; CREATE ROLE scramuser LOGIN "
                   "SUPERUSER PASSWORD 'scramsecret'")
        subprocess.run([f"{bindir}/pgbench", "-i", "-s", "1", "-q", "-h", tmp, "-p", str(port),
                        "-U", "postgres", "postgres"], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        relay = Relay(port)
        rp = str(relay.port)
        seeds = {}

        def psql(name, user, sql, password=None, stdin=None, extra_env=None):
            e = dict(env, **(extra_env or {}))
            if password:
                e["PGPASSWORD"] = password
            subprocess.run([f"{bindir}/psql", "-h", "127.0.0.1", "-p", rp, "-U", user, "-X",
                            "-d", "postgres", "-f", "-"],
                           input=(sql + (stdin or "")).encode(), env=e,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i, (fe, be) in enumerate(relay.take()):
                seeds[f"{name}{i or ''}"] = (fe, be)

        psql("trust_simple", "postgres",
             "SELECT 1;\n"
             "CREATE TEMP TABLE t (id int, name text);\n"
             "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL);\n"
             "UPDATE t SET name = 'c' WHERE id = 3;\n"
             "DELETE FROM t WHERE id = 2;\n"
             "SELECT * FROM nosuch;\n"
             "DROP TABLE IF EXISTS nosuch2;\n"
             "BEGIN; SELECT count(*) FROM t; COMMIT;\n"
             "COPY t TO STDOUT;\n"
             "COPY t FROM STDIN;\n", stdin="7\tseven\n8\teight\n\\.\n")
        psql("notify", "postgres", "LISTEN chan; NOTIFY chan, 'hello'; SELECT 2;\n")
        psql("txn_error", "postgres",
             "BEGIN; SELECT 1/0; SELECT 1; ROLLBACK;\n"
             "SELECT 'x' AS a, 2 AS b, NULL AS c;\n")
        psql("md5_login", "md5user", "SELECT current_user;\n", password="md5secret")
        psql("scram_login", "scramuser", "SELECT current_user;\n", password="scramsecret")
        psql("bad_password", "md5user", "SELECT 1;\n", password="wrong")
        psql("no_ssl", "postgres", "SELECT 3;\n", extra_env={"PGSSLMODE": "disable", "PGGSSENCMODE": "disable",
                                    "PGAPPNAME": "strand-capture"})
        for mode in ("extended", "prepared"):
            for builtin in ("select-only", "tpcb-like"):
                subprocess.run([f"{bindir}/pgbench", "-h", "127.0.0.1", "-p", rp, "-U",
                                "postgres", "-n", "-t", "2", "-c", "1", "-M", mode, "-b",
                                builtin, "postgres"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                for i, (fe, be) in enumerate(relay.take()):
                    seeds[f"pgbench_{mode}_{builtin}{i or ''}"] = (fe, be)

        for name, (fe, be) in sorted(seeds.items()):
            with open(os.path.join(out, name + "_fe"), "wb") as f:
                f.write(b"\x00" + fe)
            with open(os.path.join(out, name + "_be"), "wb") as f:
                f.write(b"\x01" + be)
            print(f"{name}: client {len(fe)} bytes, server {len(be)} bytes")

        if cfile:
            with open(cfile, "w") as f:
                for name in ("trust_simple", "pgbench_prepared_select-only1", "md5_login",
                             "scram_login", "txn_error"):
                    if name not in seeds:
                        continue
                    for d, b in zip(("fe", "be"), seeds[name]):
                        cname = "fx_" + name.replace("-", "_") + "_" + d
                        f.write(f"static const unsigned char {cname}[{len(b)}] = {{")
                        for i, x in enumerate(b):
                            f.write(("\n    " if i % 16 == 0 else " ") + f"0x{x:02x},")
                        f.write("\n};\n")
    finally:
        if server:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
