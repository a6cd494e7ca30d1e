"""RateLimit: token buckets on attributes, refused in each protocol's words.

Real peers: nginx as the HTTP backend (curl over HTTP/1.1 and HTTP/2 prior
knowledge), a throwaway PostgreSQL (psycopg2) and MariaDB (pymysql) started
on loopback by the test. Limits are per hour, so nothing here depends on
timing: a bucket of N lets exactly N matching messages through.

Checks: HTTP 429 with Retry-After naming the RateLimit, other paths
unaffected; a bucket per header value (`key`); HTTP/2 429 and a gRPC call
refused with RESOURCE_EXHAUSTED (grpc-status 8, trailers-only); a tcp
listener closes connections over the limit; PostgreSQL SQLSTATE 53400 and
MySQL ERR 1226 on statements matching sql.verb/sql.tables, the session still
usable and other statements unaffected; strand_ratelimited_total and
strand_db_statements_total{outcome="limited"} count exactly; a reload keeps
the buckets of unchanged rules and refills changed ones.
"""

import os
import socket
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, Nginx, Suite, cluster_doc, curl, free_port,  # noqa: E402
                     listener_doc, make_tmpdir, proxy_doc, route_doc, start_strand)
from test_mysql import MariaDB  # noqa: E402
from test_pg import PgServer, pg_bindir  # noqa: E402

import psycopg2  # noqa: E402
import pymysql  # noqa: E402


def ratelimit(name, targets, rules):
    return {"apiVersion": API, "kind": "RateLimit", "metadata": {"name": name},
            "spec": {"targets": targets, "rules": rules}}


def tcp_gets_data(port):
    """True when a connection to port answers an HTTP request (not closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            return len(s.recv(100)) > 0
        except ConnectionResetError:
            return False
        except socket.timeout:
            return "timeout"


def main():
    t = Suite("test_ratelimit")
    tmp = make_tmpdir("ratelimit")
    if not pg_bindir():
        t.check("PostgreSQL server installed", False)
        t.finish()

    with t.section("setup"):
        ng = Nginx(tmp, [{"/": "return 200 'ok\\n';"}])
        ng.start()
        pg = PgServer()
        pg.init()
        pg.start()
        pg.sql("CREATE TABLE big (id int); INSERT INTO big VALUES (1), (2);"
               "CREATE TABLE small (id int); INSERT INTO small VALUES (1)")
        my = MariaDB(tmp)
        t.check("mariadbd starts", my.wait_ready(), "see %s/err.log" % my.dir)
        my.sql("CREATE DATABASE shop; CREATE TABLE shop.big (id int); "
               "INSERT INTO shop.big VALUES (1), (2); CREATE TABLE shop.small (id int);"
               "CREATE USER 'app'@'%' IDENTIFIED BY 'pw'; GRANT ALL ON *.* TO 'app'@'%'")
        admin, web, raw, pgl, myl = (free_port() for _ in range(5))

        def docs(api_requests):
            return [
                proxy_doc(admin, workers=2),
                listener_doc("web", web),
                listener_doc("raw", raw, protocol="tcp"),
                listener_doc("pg", pgl, protocol="postgres"),
                listener_doc("my", myl, protocol="mysql"),
                cluster_doc("nginx", [ng.port]),
                cluster_doc("pg", [pg.port]),
                cluster_doc("my", [my.port]),
                route_doc("web", ["web"], [{"backends": [{"cluster": "nginx"}]}]),
                route_doc("raw", ["raw"], [{"backends": [{"cluster": "nginx"}]}]),
                route_doc("pg", ["pg"], [{"backends": [{"cluster": "pg"}]}]),
                route_doc("my", ["my"], [{"backends": [{"cluster": "my"}]}]),
                ratelimit("api", ["web"], [
                    {"match": [{"attribute": "path", "prefix": "/api"}],
                     "limit": {"requests": api_requests, "per": "1h"}}]),
                ratelimit("per-user", ["web"], [
                    {"match": [{"attribute": "path", "prefix": "/user"}],
                     "key": "header.x-user", "limit": {"requests": 2, "per": "1h"}}]),
                ratelimit("grpc", ["web"], [
                    {"match": [{"attribute": "path", "prefix": "/pkg.Svc/"}],
                     "limit": {"requests": 1, "per": "1h"}}]),
                ratelimit("conns", ["raw"], [{"limit": {"requests": 2, "per": "1h"}}]),
                ratelimit("big-reads", ["pg", "my"], [
                    {"match": [{"attribute": "sql.verb", "exact": "SELECT"},
                               {"attribute": "sql.tables", "in": ["big"]}],
                     "limit": {"requests": 2, "per": "1h"}}]),
            ]
        s = start_strand(t, tmp, [docs(3)])
    if t.failed:
        t.finish()

    base = "http://127.0.0.1:%d" % web

    with t.section("HTTP/1.1: 429 with Retry-After", strand=s):
        codes = [curl(base + "/api/x").status for _ in range(5)]
        t.eq("3 of 5 /api requests pass, then 429", codes, [200, 200, 200, 429, 429])
        r = curl(base + "/api/x")
        t.eq("status", r.status, 429)
        t.check("body names the RateLimit", "rate limited by api" in r.text, r.text)
        ra = r.header("retry-after")
        t.check("Retry-After in seconds, within the hour",
                ra is not None and ra.isdigit() and 1 <= int(ra) <= 3600, repr(ra))
        t.eq("other paths are not limited", [curl(base + "/free").status for _ in range(5)],
             [200] * 5)

    with t.section("a bucket per header value (key)", strand=s):
        got = {u: [curl(base + "/user", headers=["x-user: " + u]).status for _ in range(3)]
               for u in ("ann", "bob")}
        t.eq("ann: 2 then 429", got["ann"], [200, 200, 429])
        t.eq("bob has his own bucket", got["bob"], [200, 200, 429])
        t.eq("requests without the header share one bucket",
             [curl(base + "/user").status for _ in range(3)], [200, 200, 429])

    with t.section("HTTP/2 and gRPC", strand=s):
        r = curl(base + "/api/x", args=["--http2-prior-knowledge"])
        t.eq("HTTP/2: 429", r.status, 429)
        t.check("HTTP/2: retry-after", (r.header("retry-after") or "").isdigit(), repr(r))
        grpc_args = ["--http2-prior-knowledge", "-X", "POST", "--data-binary", "@-"]
        hdrs = ["content-type: application/grpc", "te: trailers"]
        first = curl(base + "/pkg.Svc/Call", args=grpc_args, headers=hdrs)
        t.check("first gRPC call is let through (nginx is no gRPC server)",
                first.header("grpc-status") != "8", repr(first))
        r = curl(base + "/pkg.Svc/Call", args=grpc_args, headers=hdrs)
        t.eq("second call: grpc-status RESOURCE_EXHAUSTED", r.header("grpc-status"), "8")
        t.eq("trailers-only answers are HTTP 200", r.status, 200)
        t.check("grpc-message names the RateLimit", "grpc" in (r.header("grpc-message") or ""),
                repr(r))

    with t.section("tcp: connections over the limit are closed", strand=s):
        # raw shares the nginx cluster with web, whose keep-alive connections
        # are pooled by now: a tcp session must never be handed one.
        got = [tcp_gets_data(raw) for _ in range(4)]
        t.eq("2 connections served, then closed", got, [True, True, False, False])

    with t.section("PostgreSQL: SQLSTATE 53400, session usable", strand=s):
        c = psycopg2.connect(host="127.0.0.1", port=pgl, user="postgres", dbname="postgres",
                             connect_timeout=5, sslmode="disable", gssencmode="disable")
        c.autocommit = True
        cur = c.cursor()
        outcomes = []
        for _ in range(3):
            try:
                cur.execute("SELECT count(*) FROM big")
                outcomes.append(cur.fetchone()[0])
            except psycopg2.Error as e:
                outcomes.append(e.pgcode)
        t.eq("2 reads of big, then 53400", outcomes, [2, 2, "53400"])
        try:
            cur.execute("SELECT * FROM big")
        except psycopg2.Error as e:
            t.check("message names the RateLimit", "big-reads" in str(e), str(e))
        cur.execute("SELECT count(*) FROM small")
        t.eq("other tables still readable on the same session", cur.fetchone()[0], 1)
        cur.execute("INSERT INTO big VALUES (3)")
        t.eq("writes to big are not limited", cur.rowcount, 1)
        c.close()
        c = psycopg2.connect(host="127.0.0.1", port=pgl, user="postgres", dbname="postgres",
                             connect_timeout=5, sslmode="disable", gssencmode="disable")
        cur = c.cursor()
        try:
            cur.execute("SELECT id FROM big WHERE id = %s", (1,))
            t.check("a new session shares the bucket", False, "not refused")
        except psycopg2.Error as e:
            t.eq("a new session shares the bucket", e.pgcode, "53400")
        c.close()

    with t.section("MySQL: ERR 1226, session usable", strand=s):
        c = pymysql.connect(host="127.0.0.1", port=myl, user="app", password="pw",
                            database="shop", connect_timeout=5, read_timeout=10)
        cur = c.cursor()
        outcomes = []
        for _ in range(3):
            try:
                cur.execute("SELECT count(*) FROM big")
                outcomes.append(cur.fetchone()[0])
            except pymysql.err.MySQLError as e:
                outcomes.append(e.args[0])
        # The bucket is shared with the pg listener (one RateLimit, both
        # targets): it is empty already.
        t.eq("reads of big refused with 1226", outcomes, [1226, 1226, 1226])
        cur.execute("SELECT count(*) FROM small")
        t.eq("the session stays usable", cur.fetchone()[0], 0)
        c.close()

    with t.section("metrics", strand=s):
        m = s.metrics()
        t.eq("api refusals", m.get("strand_ratelimited_total", listener="web", ratelimit="api"), 4)
        t.eq("per-user refusals",
             m.get("strand_ratelimited_total", listener="web", ratelimit="per-user"), 3)
        t.eq("grpc refusals", m.get("strand_ratelimited_total", listener="web", ratelimit="grpc"), 1)
        t.eq("tcp refusals", m.get("strand_ratelimited_total", listener="raw", ratelimit="conns"), 2)
        t.eq("pg refusals", m.get("strand_ratelimited_total", listener="pg", ratelimit="big-reads"), 3)
        t.eq("mysql refusals",
             m.get("strand_ratelimited_total", listener="my", ratelimit="big-reads"), 3)
        t.eq("pg statements limited",
             m.get("strand_db_statements_total", listener="pg", verb="SELECT", outcome="limited"), 3)
        t.eq("mysql statements limited",
             m.get("strand_db_statements_total", listener="my", verb="SELECT", outcome="limited"), 3)

    with t.section("reload", strand=s):
        s.write([docs(3)])
        t.eq("reload with the same limits ok", s.reload_sighup(), "ok")
        t.eq("an unchanged RateLimit keeps its empty bucket", curl(base + "/api/x").status, 429)
        s.write([docs(1000)])
        t.eq("reload ok", s.reload_sighup(), "ok")
        t.eq("/api passes again (a changed rule starts full)", [curl(base + "/api/x").status for _ in range(3)],
             [200] * 3)

    t.finish()


if __name__ == "__main__":
    main()
