"""HTTP/1.1 basics through strand, against a real nginx backend.

Covers: GET, the headers the proxy adds (x-forwarded-for, forwarded, via,
x-request-id generated/preserved), 1 MiB POST and chunked upload (verified by
sha256 of the body nginx stored on disk), Expect: 100-continue, keep-alive
reuse (one downstream connection for three curl transfers), pipelining,
a 10 MiB download (and a chunked one), HEAD/204/304 framing, hop-by-hop
header removal in both directions, and chunked trailers both ways (a
Python backend shows the request's; hop-by-hop ones dropped).
"""

import os
import re
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Nginx, RawConn, Suite, TrailerEcho, cluster_doc, curl,  # noqa: E402
                     curl_multi, echo_return, file_sha256, free_port, listener_doc, make_tmpdir,
                     parse_echo, proxy_doc, raw_http, route_doc, sha256, start_strand, wait_for,
                     write_random_file)

MIB = 1 << 20


def upload_entry(ng, uri):
    """nginx access-log entry for uri once it is written (polls)."""
    def find():
        for e in ng.access_entries():
            if e.get("uri") == uri:
                return e
        return None
    return wait_for(find, 5)


def main():
    t = Suite("test_http_basic")
    tmp = make_tmpdir("http-basic")

    with t.section("setup"):
        ng = Nginx(tmp, [{
            "/echo": echo_return("nginx"),
            # The request body is kept on disk (client_body_in_file_only on)
            # and its path logged, so the test can sha256 what nginx received.
            "/upload": "client_body_in_file_only on; proxy_pass http://127.0.0.1:{PORT}/sink;",
            "/sink": 'return 200 "stored\\n";',
            "/files/": "etag on;",
            # sub_filter drops Content-Length: nginx answers chunked.
            "/chunked/": "alias {WWW}/files/; sub_filter 'NEVER-MATCHES-xyz' 'x'; sub_filter_types *;",
            "= /status/204": "return 204;",
            "= /status/304": "return 304;",
        }], files={"files/small.bin": 1000, "files/big.bin": 10 * MIB})
        ng.start()
        admin, web = free_port(), free_port()
        trl = TrailerEcho()
        docs = [
            proxy_doc(admin, workers=2),
            listener_doc("web", web),
            cluster_doc("nginx", [ng.port]),
            cluster_doc("trl", [trl.port]),
            route_doc("main", ["web"], [{
                "name": "trailers",
                "match": [{"attribute": "path", "prefix": "/trl/"}],
                "backends": [{"cluster": "trl"}],
            }, {
                "name": "all",
                "match": [{"attribute": "path", "prefix": "/"}],
                "backends": [{"cluster": "nginx"}],
            }]),
        ]
        s = start_strand(t, tmp, docs)
    if t.failed:
        t.finish()

    base = "http://127.0.0.1:%d" % web

    with t.section("GET through the proxy", s):
        r = curl(base + "/echo/hello?x=1")
        t.eq("GET /echo/hello -> 200", r.status, 200)
        e = parse_echo(r.body)
        t.eq("backend saw the request URI", e.get("uri"), "/echo/hello?x=1")
        t.eq("backend saw method GET", e.get("method"), "GET")

    with t.section("forwarding headers", s):
        e = parse_echo(curl(base + "/echo/xff").body)
        t.check("x-forwarded-for is the client address", e.get("xff") == "127.0.0.1", repr(e))
        t.check("via contains '1.1 strand'", "1.1 strand" in e.get("via", ""), repr(e.get("via")))
        fwd = e.get("fwd", "")
        t.check("forwarded has for=127.0.0.1", re.search(r'for="?127\.0\.0\.1', fwd), repr(fwd))
        t.check("forwarded has proto=http", "proto=http" in fwd, repr(fwd))
        t.check("forwarded has host=<client Host>",
                re.search(r'host="?127\.0\.0\.1:%d"?' % web, fwd), repr(fwd))
        rid1 = e.get("rid", "")
        rid2 = parse_echo(curl(base + "/echo/xff2").body).get("rid", "")
        t.check("x-request-id generated when absent", len(rid1) >= 8, repr(rid1))
        t.check("generated x-request-ids differ", rid1 and rid1 != rid2, "%r %r" % (rid1, rid2))

        e = parse_echo(curl(base + "/echo/keep", headers=[
            "X-Request-Id: client-id-42", "X-Forwarded-For: 203.0.113.7", "Via: 1.0 fred"]).body)
        t.eq("client x-request-id preserved", e.get("rid"), "client-id-42")
        t.check("x-forwarded-for appends the client address",
                re.fullmatch(r"203\.0\.113\.7,\s*127\.0\.0\.1", e.get("xff", "")), repr(e.get("xff")))
        via = e.get("via", "")
        t.check("via keeps the client's entry and appends 1.1 strand",
                "1.0 fred" in via and "1.1 strand" in via and via.index("1.0 fred") < via.index("1.1 strand"),
                repr(via))

    with t.section("POST 1 MiB body", s):
        path = os.path.join(tmp, "post.bin")
        want = write_random_file(path, MIB)
        r = curl(base + "/upload/post", args=["--data-binary", "@" + path,
                                              "-H", "Content-Type: application/octet-stream"])
        t.eq("POST 1 MiB -> 200", r.status, 200)
        t.eq("POST response body from nginx", r.body, b"stored\n")
        ent = upload_entry(ng, "/upload/post")
        t.check("nginx logged the upload", ent, "no access-log entry for /upload/post")
        if ent:
            t.eq("nginx saw Content-Length 1048576", ent.get("cl"), str(MIB))
            bf = ent.get("body_file")
            t.check("body nginx stored has the right sha256",
                    bf and os.path.exists(bf) and file_sha256(bf) == want, "body file %r" % bf)

    with t.section("chunked upload", s):
        path = os.path.join(tmp, "chunked.bin")
        want = write_random_file(path, MIB + 12345)
        r = curl(base + "/upload/chunked", args=["--data-binary", "@" + path,
                                                 "-H", "Transfer-Encoding: chunked"])
        t.eq("chunked POST -> 200", r.status, 200)
        ent = upload_entry(ng, "/upload/chunked")
        bf = ent.get("body_file") if ent else None
        t.check("chunked body arrived intact (sha256)",
                bf and os.path.exists(bf) and file_sha256(bf) == want, "entry %r" % ent)

    with t.section("Expect: 100-continue", s):
        path = os.path.join(tmp, "expect.bin")
        want = write_random_file(path, 4 * MIB)
        r = curl(base + "/upload/expect", args=["--data-binary", "@" + path,
                                                "-H", "Expect: 100-continue"])
        t.eq("POST 4 MiB with Expect: 100-continue -> 200", r.status, 200)
        ent = upload_entry(ng, "/upload/expect")
        bf = ent.get("body_file") if ent else None
        t.check("Expect upload arrived intact (sha256)",
                bf and os.path.exists(bf) and file_sha256(bf) == want, "entry %r" % ent)

    with t.section("keep-alive reuse", s):
        before = s.metrics().get("strand_downstream_connections_total", listener="web")
        rs = curl_multi([base + "/echo/ka1", base + "/echo/ka2", base + "/echo/ka3"])
        t.eq("three transfers all 200", [r.status for r in rs], [200, 200, 200])
        t.eq("curl opened one connection (num_connects)", [r.num_connects for r in rs], [1, 0, 0])
        t.eq("bodies in order", [parse_echo(r.body).get("uri") for r in rs],
             ["/echo/ka1", "/echo/ka2", "/echo/ka3"])
        after = s.metrics().get("strand_downstream_connections_total", listener="web")
        t.eq("strand_downstream_connections_total{listener=web} grew by 1", after - before, 1)

    with t.section("pipelining", s):
        c = RawConn(web)
        try:
            c.send(b"GET /echo/p1 HTTP/1.1\r\nHost: strand.test\r\n\r\n"
                   b"POST /echo/p2 HTTP/1.1\r\nHost: strand.test\r\nContent-Length: 5\r\n\r\nhello"
                   b"GET /echo/p3 HTTP/1.1\r\nHost: strand.test\r\n\r\n")
            got = []
            for _ in range(3):
                r = c.read_response()
                got.append((r.status, parse_echo(r.body).get("uri"), parse_echo(r.body).get("method")))
            t.eq("three pipelined responses, in order",
                 got, [(200, "/echo/p1", "GET"), (200, "/echo/p2", "POST"), (200, "/echo/p3", "GET")])
        finally:
            c.close()

    with t.section("large downloads", s):
        r = curl(base + "/files/big.bin", timeout=10)
        t.eq("10 MiB download -> 200", r.status, 200)
        t.eq("10 MiB download length", len(r.body), 10 * MIB)
        t.eq("10 MiB download sha256", sha256(r.body), ng.sha["files/big.bin"])
        r = curl(base + "/chunked/big.bin", timeout=10)
        t.eq("chunked 10 MiB download -> 200", r.status, 200)
        t.eq("chunked 10 MiB download sha256", sha256(r.body), ng.sha["files/big.bin"])

    with t.section("HEAD, 204, 304 carry no body", s):
        c = RawConn(web)
        try:
            c.send(b"HEAD /files/small.bin HTTP/1.1\r\nHost: strand.test\r\n\r\n")
            r = c.read_response(method="HEAD")
            t.eq("HEAD -> 200", r.status, 200)
            t.eq("HEAD keeps Content-Length of the entity", r.header("content-length"), "1000")
            etag = r.header("etag")
            c.send(b"GET /echo/after-head HTTP/1.1\r\nHost: strand.test\r\n\r\n")
            r = c.read_response()
            t.check("next response on the connection is intact after HEAD",
                    r.status == 200 and parse_echo(r.body).get("uri") == "/echo/after-head", repr(r))

            c.send(b"GET /status/204 HTTP/1.1\r\nHost: strand.test\r\n\r\n")
            r = c.read_response()
            t.eq("GET /status/204 -> 204", r.status, 204)
            c.send(b"GET /echo/after-204 HTTP/1.1\r\nHost: strand.test\r\n\r\n")
            r = c.read_response()
            t.check("next response intact after 204",
                    r.status == 200 and parse_echo(r.body).get("uri") == "/echo/after-204", repr(r))

            t.check("nginx gave an ETag", etag, "no etag on HEAD response")
            c.send(b"GET /files/small.bin HTTP/1.1\r\nHost: strand.test\r\nIf-None-Match: "
                   + (etag or '"x"').encode() + b"\r\n\r\n")
            r = c.read_response()
            t.eq("conditional GET -> 304", r.status, 304)
            c.send(b"GET /echo/after-304 HTTP/1.1\r\nHost: strand.test\r\n\r\n")
            r = c.read_response()
            t.check("next response intact after 304",
                    r.status == 200 and parse_echo(r.body).get("uri") == "/echo/after-304", repr(r))
        finally:
            c.close()
        r = curl(base + "/status/304")
        t.check("curl: 304 with empty body", r.status == 304 and r.body == b"" and r.rc == 0, repr(r))
        r = curl(base + "/files/small.bin", args=["-I"])   # -I prints the head as output
        t.check("curl -I: 200, head only",
                r.status == 200 and r.body.endswith(b"\r\n\r\n") and r.body.count(b"\r\n\r\n") == 1
                and r.rc == 0, repr(r))

    with t.section("hop-by-hop headers", s):
        c = RawConn(web)
        try:
            c.send(b"GET /echo/hop HTTP/1.1\r\nHost: strand.test\r\n"
                   b"Connection: keep-alive, x-foo, te\r\nX-Foo: secret\r\nX-Bar: kept\r\n"
                   b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
                   b"Trailer: X-Checksum\r\n\r\n")
            r = c.read_response()
            e = parse_echo(r.body)
            t.eq("hop-by-hop request -> 200", r.status, 200)
            t.eq("header named by Connection (X-Foo) not forwarded", e.get("xfoo"), "")
            t.eq("ordinary header (X-Bar) forwarded", e.get("xbar"), "kept")
            t.eq("Keep-Alive not forwarded", e.get("keepalive"), "")
            t.eq("Proxy-Connection not forwarded", e.get("proxyconn"), "")
            t.eq("TE not forwarded", e.get("te"), "")
            # Trailer is end to end (RFC 9110 section 6.6.2): it describes
            # the trailer section, which travels with the chunked framing.
            t.eq("Trailer forwarded (end-to-end field)", e.get("trailer"), "X-Checksum")
            t.check("client's Connection tokens not forwarded",
                    "x-foo" not in e.get("connection", "").lower(), repr(e.get("connection")))
            t.check("nginx's Keep-Alive response header not passed to the client",
                    r.header("keep-alive") != "timeout=60", repr(r.headers))

            c.send(b"GET /echo/upg HTTP/1.1\r\nHost: strand.test\r\nConnection: upgrade\r\n"
                   b"Upgrade: h2c\r\n\r\n")
            r = c.read_response()
            e = parse_echo(r.body)
            t.eq("non-websocket Upgrade request -> 200", r.status, 200)
            t.eq("non-websocket Upgrade header not forwarded", e.get("upgrade"), "")
        finally:
            c.close()

    with t.section("chunked trailers pass through both ways", s):
        r = raw_http(web, b"POST /trl/a HTTP/1.1\r\nHost: strand.test\r\nConnection: close\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                          b"X-Sum: abc\r\nConnection: x\r\nTE: trailers\r\nX-Two:  2 \r\n\r\n")
        t.eq("status", r.status, 200)
        t.check("the upstream got the body and the request's trailers (hop-by-hop ones "
                "dropped)", b"body=hello\ntrailers=X-Sum: abc;X-Two: 2;\n" in r.data, r.data)
        t.check("the response's trailers reach the client after the last chunk",
                b"\r\n0\r\nx-up-trailer: yes\r\nx-up-rename: r\r\n\r\n" in r.data, r.data)
        t.check("... and the response ends there", r.data.endswith(b"x-up-rename: r\r\n\r\n"),
                r.data[-100:])
        r = raw_http(web, b"POST /trl/b HTTP/1.1\r\nHost: strand.test\r\nConnection: close\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        t.check("no trailers: an empty section", r.status == 200 and
                b"body=abc\ntrailers=\n" in r.data, r.data)

    with t.section("HTTP/1.0 clients", s):
        # A 1.0 client asking for keep-alive keeps its connection and is told
        # so; one that does not ask gets the response and a close.
        c = RawConn(web)
        try:
            c.send(b"GET /echo/ten HTTP/1.0\r\nHost: strand.test\r\n"
                   b"Connection: keep-alive\r\n\r\n")
            r = c.read_response()
            t.eq("1.0 keep-alive request -> 200", r.status, 200)
            t.eq("1.0 keep-alive answered with Connection: keep-alive",
                 (r.header("connection") or "").lower(), "keep-alive")
            c.send(b"GET /echo/ten2 HTTP/1.0\r\nHost: strand.test\r\n\r\n")
            r = c.read_response()
            t.eq("second request on the kept connection -> 200", r.status, 200)
            t.eq("1.0 request without keep-alive answered with Connection: close",
                 (r.header("connection") or "").lower(), "close")
            t.eq("connection closed after it", c.read_to_eof(), b"")
        finally:
            c.close()

    with t.section("proxy still healthy", s):
        t.check("strand still running", s.alive(), s.describe())
        t.eq("GET after everything -> 200", curl(base + "/echo/final").status, 200)
        rc = s.stop()
        t.eq("SIGTERM -> exit 0", rc, 0)

    t.finish()


if __name__ == "__main__":
    main()
