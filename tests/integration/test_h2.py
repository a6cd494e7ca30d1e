"""HTTP/2 and gRPC through the proxy.

  * h2c with prior knowledge (curl, nghttp, h2load) to an HTTP/1.1 cluster
    (nginx): GET, POST echo, 1 MiB download and upload (sha256), concurrent
    streams on one connection, 2000 requests on 4 connections; an HTTP/1.1
    backend's chunked trailers as HTTP/2 trailers; HTTP statuses
    for non-gRPC refusals (403, 404, 503, 504); metrics and access log.
  * TLS with ALPN: curl --http2 negotiates h2 (and --http1.1 still works).
  * HTTP/2 upstreams (Cluster protocol: http2): nginx `listen ... http2`
    (h2c) and `listen ... ssl http2` (ALPN h2), reached from HTTP/1.1 and
    HTTP/2 clients; sessions are pooled.
  * gRPC (grpc Python client, raw bytes, no protobuf) to grpc_peer.py
    servers: unary (also 1 MiB and 100 at once), metadata and trailers,
    status passthrough, server/client/bidi streaming, cancellation,
    deadline propagation and DEADLINE_EXCEEDED (client and proxy side),
    routing on grpc.method, AuthorizationPolicy -> PERMISSION_DENIED, no
    route -> UNIMPLEMENTED (trailers-only), dead upstream -> UNAVAILABLE,
    cluster limit -> RESOURCE_EXHAUSTED, retries on UNAVAILABLE, metrics
    (promtool, strand_grpc_requests_total), a 64 MiB stream to a slow
    reader with bounded proxy RSS.
  * Reload and SIGTERM: in-flight streams finish, clients get a GOAWAY.

Backends: nginx (HTTP/1.1, h2c, h2 over TLS) and two grpc_peer.py
subprocesses ("a" and "b"). Topology (one strand, 2 workers):

    web (h2c+h1) / tls (ALPN h2,http/1.1) -> nginx, nginx-h2c, nginx-h2tls, slow, dead, peer a
    grpc (h2c)  -> peer a (Unary), peer b (other methods, Flaky with retries),
                   tiny (limits 1), dead (closed port), slow (strand.test.Slow),
                   nothing else (UNIMPLEMENTED)
    locked (h2c, DENY grpc.method Unary and /forbidden) -> peer a, nginx
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, CURL, PROMTOOL, Nginx, SlowServer, Suite, TrailerEcho, cluster_doc,  # noqa: E402
                     connect_refused,
                     curl, curl_multi, file_sha256, free_port, kill_group, listener_doc,
                     make_tmpdir, parse_echo, proxy_doc, route_doc, sha256, spawn,
                     start_strand, wait_for, write_random_file)
import grpc  # noqa: E402
import grpc_peer as gp  # noqa: E402

MIB = 1 << 20
NGHTTP = "/usr/bin/nghttp"
H2LOAD = "/usr/bin/h2load"
SVC = gp.SERVICE
OK = grpc.StatusCode.OK


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def echo_proto(name):
    """nginx `return` echoing what the upstream request looked like,
    including the protocol nginx saw (HTTP/1.1 or HTTP/2.0)."""
    fields = [("backend", name), ("proto", "$server_protocol"), ("method", "$request_method"),
              ("uri", "$request_uri"), ("host", "$http_host"), ("xfoo", "$http_x_foo"),
              ("te", "$http_te"), ("clen", "$content_length"), ("conn", "$connection"),
              ("via", "$http_via")]
    return 'return 200 "%s";' % "".join("%s=%s\\n" % kv for kv in fields)


def policy(name, targets, action, rules):
    return {"apiVersion": API, "kind": "AuthorizationPolicy", "metadata": {"name": name},
            "spec": {"targets": targets, "action": action,
                     "rules": [{"match": r} for r in rules]}}


def finish(p, timeout):
    """Wait for p (its process group killed on timeout).
    Returns (rc, stdout text, stderr text); rc is -1 after a kill."""
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_group(p, signal.SIGKILL, grace=1)
        out, err = p.communicate()
        rc = -1
        err += b"\n(killed after %.0f s)" % timeout
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def run(argv, timeout):
    """Run a client to completion (own process group, killed on timeout).
    Returns (rc, stdout text, stderr text, seconds)."""
    t0 = time.monotonic()
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rc, out, err = finish(p, timeout)
    return rc, out, err, time.monotonic() - t0


class CurlV:
    def __init__(self, rc, status, version, body, err):
        self.rc, self.status, self.version, self.body, self.err = rc, status, version, body, err

    def __repr__(self):
        return "CurlV(rc=%r, status=%r, version=%r, body=%r, err=%r)" % (
            self.rc, self.status, self.version, self.body[:200], self.err[-300:])


def curl_v(url, args=(), timeout=8.0, tmp="/tmp"):
    """curl with the HTTP version of the response (%{http_version})."""
    fd_path = os.path.join(tmp, "curlv-%d-%d.out" % (os.getpid(), threading.get_ident()))
    argv = [CURL, "-sS", "--noproxy", "*", "--max-time", str(timeout), "-o", fd_path,
            "-w", "%{http_code} %{http_version}"] + list(args) + [url]
    rc, out, err, _ = run(argv, timeout + 2)
    try:
        with open(fd_path, "rb") as f:
            body = f.read()
        os.unlink(fd_path)
    except OSError:
        body = b""
    parts = out.split()
    status = int(parts[0]) if parts and parts[0].isdigit() else 0
    version = parts[1] if len(parts) > 1 else ""
    return CurlV(rc, status, version, body, err)


class NgResult:
    """nghttp -v output, parsed per stream."""

    HDR = re.compile(r"recv \(stream_id=(\d+)\) (\S+?): (.*)$")
    FRAME = re.compile(r"(recv|send) (\w+) frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=(\d+)>")

    def __init__(self, rc, out, err, secs):
        self.rc, self.out, self.err, self.secs = rc, out, err, secs
        self.headers = {}     # stream id -> [(name, value)]
        self.frames = []      # (dir, type, length, flags, stream id)
        for line in out.splitlines():
            m = self.HDR.search(line)
            if m:
                self.headers.setdefault(int(m.group(1)), []).append((m.group(2), m.group(3)))
                continue
            m = self.FRAME.search(line)
            if m:
                self.frames.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4), 16),
                                    int(m.group(5))))

    def streams(self):
        return sorted(self.headers)

    def header(self, sid, name):
        return [v for k, v in self.headers.get(sid, []) if k == name]

    def statuses(self):
        return [self.header(sid, ":status")[0] for sid in self.streams() if self.header(sid, ":status")]

    def recv(self, ftype, sid=None):
        return [f for f in self.frames if f[0] == "recv" and f[1] == ftype and (sid is None or f[4] == sid)]

    @property
    def goaway(self):
        return bool(self.recv("GOAWAY"))

    def tail(self):
        return "rc=%r %.2fs\n%s\n%s" % (self.rc, self.secs, "\n".join(self.out.splitlines()[-40:]),
                                       self.err[-500:])


def nghttp(url, args=(), timeout=8.0):
    rc, out, err, secs = run([NGHTTP, "-nv", "-t", "%d" % timeout] + list(args) + [url], timeout + 2)
    return NgResult(rc, out, err, secs)


def nghttp_start(url, args=(), timeout=8.0):
    p = spawn([NGHTTP, "-nv", "-t", "%d" % timeout] + list(args) + [url],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.t0 = time.monotonic()
    return p


def nghttp_collect(p, timeout=10.0):
    rc, out, err = finish(p, timeout)
    return NgResult(rc, out, err, time.monotonic() - p.t0)


def grpc_args(frame_path, extra=()):
    args = ["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", frame_path]
    for h in extra:
        args += ["-H", h]
    return args


def write_frame(tmp, name, payload):
    path = os.path.join(tmp, "frame-%s.bin" % name)
    with open(path, "wb") as f:
        f.write(gp.grpc_frame(payload))
    return path


def code_of(x):
    return x[0].name if hasattr(x[0], "name") else repr(x[0])


# --------------------------------------------------------------------------

def main():
    t = Suite("test_h2")
    tmp = make_tmpdir("h2")
    alog = os.path.join(tmp, "access.log")

    with t.section("setup"):
        for tool in (NGHTTP, H2LOAD):
            t.check("%s is installed" % tool, os.path.exists(tool), "missing (Debian nghttp2-client)")
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=30)
        os.chmod(tmp, 0o755)
        for p in (cert, key):
            os.chmod(p, 0o644)      # nginx workers may run as nobody
        ng = Nginx(tmp, [
            {"/echo": echo_proto("nginx"),
             # X-Foo carries the request body back (nginx read it to proxy it).
             "/pecho": "proxy_set_header X-Foo $request_body; proxy_pass http://127.0.0.1:{PORT}/echo;",
             "/upload": "client_body_in_file_only on; proxy_pass http://127.0.0.1:{PORT}/sink;",
             "/sink": 'return 200 "stored\\n";',
             "/files/": "",
             "/load": 'return 200 "load\\n";',
             "/count": 'return 200 "count\\n";'},
            {"listen": "http2", "locations": {
                "/h2up/echo": echo_proto("nginx-h2c"),
                "/h2up/upload": "",      # set below: proxied to the HTTP/1.1 server's /sink
                "/h2up/files/": "alias {WWW}/files/;"}},
            {"listen": "ssl http2",
             "extra": "ssl_certificate %s; ssl_certificate_key %s;" % (cert, key),
             "locations": {"/h2tls/": echo_proto("nginx-h2tls")}},
        ], files={"files/big.bin": MIB, "files/small.txt": b"small file\n"})
        # The body is stored in a file (its path in the access log) on the way.
        ng.servers[1]["locations"]["/h2up/upload"] = (
            "client_body_in_file_only on; proxy_pass http://127.0.0.1:%d/sink;" % ng.ports[0])
        ng.start()
        slow = SlowServer(body=b"late\n", head_delay=2.0, body_delay=0, max_wait=5)
        # An HTTP/1.1 backend answering chunked with trailers (nginx sends none)
        trl_up = TrailerEcho(resp_trailers=b"X-Up-Trailer: yes\r\nKeep-Alive: timeout=5\r\n"
                                           b"x-second: 2\r\n")
        pa_proc, pa = gp.start_peer("a", 0, spawn=spawn, stderr_path=os.path.join(tmp, "peer-a.log"))
        pb_proc, pb = gp.start_peer("b", 0, spawn=spawn, stderr_path=os.path.join(tmp, "peer-b.log"))
        dead = free_port()          # nobody listens there
        admin, web, tls_port, gport, locked = (free_port() for _ in range(5))
        tls = {"certificates": [{"certFile": cert, "keyFile": key}]}   # alpn: default [h2, http/1.1]
        h2 = {"protocol": "http2"}
        docs = [
            proxy_doc(admin, workers=2, accessLog={"path": alog}),
            listener_doc("web", web),
            listener_doc("tls", tls_port, tls=tls),
            listener_doc("grpc", gport),
            listener_doc("locked", locked),
            cluster_doc("nginx", [ng.ports[0]]),
            cluster_doc("nginx-h2c", [ng.ports[1]], **h2),
            cluster_doc("nginx-h2tls", [ng.ports[2]], tls={"caFile": cert, "sni": "localhost"}, **h2),
            cluster_doc("slow", [slow.port]),
            cluster_doc("h1trailers", [trl_up.port]),
            cluster_doc("dead", [dead], connectTimeout="500ms"),
            cluster_doc("peer-a", [pa], **h2),
            cluster_doc("peer-b", [pb], **h2),
            cluster_doc("peer-dead", [dead], connectTimeout="500ms", **h2),
            cluster_doc("tiny", [pa], maxConnections=1, maxPendingRequests=0, maxRequests=1, **h2),
            route_doc("web", ["web", "tls"], [
                {"name": "grpc", "match": [{"attribute": "grpc.service", "exact": SVC}],
                 "backends": [{"cluster": "peer-a"}]},
                {"name": "h2up", "match": [{"attribute": "path", "prefix": "/h2up/"}],
                 "backends": [{"cluster": "nginx-h2c"}]},
                {"name": "h2tls", "match": [{"attribute": "path", "prefix": "/h2tls/"}],
                 "backends": [{"cluster": "nginx-h2tls"}]},
                {"name": "h1trailers", "match": [{"attribute": "path", "prefix": "/h1trailers"}],
                 "backends": [{"cluster": "h1trailers"}]},
                {"name": "slow", "match": [{"attribute": "path", "prefix": "/slow"}],
                 "backends": [{"cluster": "slow"}], "timeout": "300ms"},
                {"name": "dead", "match": [{"attribute": "path", "prefix": "/dead"}],
                 "backends": [{"cluster": "dead"}]},
                {"name": "count", "match": [{"attribute": "path", "prefix": "/count"}],
                 "backends": [{"cluster": "nginx"}]},
                {"name": "load", "match": [{"attribute": "path", "prefix": "/load"}],
                 "backends": [{"cluster": "nginx"}]},
                {"name": "direct", "match": [{"attribute": "path", "exact": "/direct"}],
                 "directResponse": {"status": 200, "body": "direct\n"}},
                {"name": "nginx", "match": [{"attribute": "path",
                                             "regex": "^/(echo|pecho|upload|files)(/|$)"}],
                 "backends": [{"cluster": "nginx"}]},
            ]),
            route_doc("grpc", ["grpc"], [
                {"name": "tiny", "match": [{"attribute": "header.x-tiny", "present": True}],
                 "backends": [{"cluster": "tiny"}]},
                {"name": "short", "match": [{"attribute": "header.x-short", "present": True}],
                 "backends": [{"cluster": "peer-a"}], "timeout": "400ms"},
                {"name": "flaky-once", "match": [{"attribute": "grpc.method", "exact": "Flaky"},
                                                 {"attribute": "header.x-no-retry", "present": True}],
                 "backends": [{"cluster": "peer-b"}]},
                {"name": "flaky", "match": [{"attribute": "grpc.method", "exact": "Flaky"}],
                 "backends": [{"cluster": "peer-b"}],
                 "retries": {"attempts": 2, "on": ["unavailable"]}},
                {"name": "unary", "match": [{"attribute": "grpc.service", "exact": SVC},
                                            {"attribute": "grpc.method", "exact": "Unary"}],
                 "backends": [{"cluster": "peer-a"}]},
                {"name": "dead", "match": [{"attribute": "grpc.service", "exact": "strand.test.Dead"}],
                 "backends": [{"cluster": "peer-dead"}]},
                # An HTTP/1.1 server that answers after 2 s and knows nothing
                # of gRPC: whatever deadline answer comes back is the proxy's.
                {"name": "slow", "match": [{"attribute": "grpc.service", "exact": "strand.test.Slow"}],
                 "backends": [{"cluster": "slow"}]},
                {"name": "echo", "match": [{"attribute": "grpc.service", "exact": SVC}],
                 "backends": [{"cluster": "peer-b"}]},
            ]),
            route_doc("locked", ["locked"], [
                {"name": "echo", "match": [{"attribute": "grpc.service", "exact": SVC}],
                 "backends": [{"cluster": "peer-a"}]},
                {"name": "rest", "backends": [{"cluster": "nginx"}]},
            ]),
            policy("no-unary", ["locked"], "DENY", [
                [{"attribute": "grpc.method", "exact": "Unary"}],
                [{"attribute": "path", "prefix": "/forbidden"}]]),
        ]
        s = start_strand(t, tmp, docs)
    if t.failed:
        t.finish()

    base = "http://127.0.0.1:%d" % web
    PK = ["--http2-prior-knowledge"]

    def probe_h2():
        """Does the listener speak HTTP/2 at all? Later failures are noise
        without it, so say it first."""
        r = curl_v(base + "/direct", args=PK, tmp=tmp)
        return r

    with t.section("h2c prior knowledge -> HTTP/1.1 cluster", s):
        r = probe_h2()
        t.check("curl --http2-prior-knowledge GET /direct -> 200 over HTTP/2",
                r.status == 200 and r.version == "2" and r.body == b"direct\n", repr(r))
        r = curl_v(base + "/echo/get?x=1", args=PK, tmp=tmp)
        e = parse_echo(r.body)
        t.check("h2c GET /echo -> 200, HTTP/2 to the client", r.status == 200 and r.version == "2",
                repr(r))
        t.check("nginx got the GET over HTTP/1.1 (translation h2 -> h1)",
                e.get("backend") == "nginx" and e.get("proto") == "HTTP/1.1"
                and e.get("method") == "GET" and e.get("uri") == "/echo/get?x=1", repr(e))
        t.check("the :authority became Host", e.get("host") == "127.0.0.1:%d" % web, repr(e))
        t.check("via added as for HTTP/1", "strand" in e.get("via", ""), repr(e))
        r = curl_v(base + "/pecho/post", args=PK + ["--data-binary", "hello-h2-body",
                                                    "-H", "Content-Type: text/plain"], tmp=tmp)
        e = parse_echo(r.body)
        t.check("h2c POST with a body -> 200, nginx saw POST and the body",
                r.status == 200 and e.get("method") == "POST" and e.get("xfoo") == "hello-h2-body"
                and e.get("uri") == "/echo/post", repr(r))

        rs = curl_multi(base + "/files/big.bin", args=PK)
        r = rs[-1]
        t.check("h2c 1 MiB download intact (sha256)",
                r.status == 200 and len(r.body) == MIB and sha256(r.body) == ng.sha["files/big.bin"],
                "status %r, %d bytes, %r" % (r.status, len(r.body), r.stderr[-300:]))
        path = os.path.join(tmp, "up.bin")
        want = write_random_file(path, MIB)
        r = curl(base + "/upload/h2", args=PK + ["--data-binary", "@" + path,
                                                 "-H", "Content-Type: application/octet-stream"])
        t.eq("h2c 1 MiB upload -> 200 stored", (r.status, r.body), (200, b"stored\n"))

        def upload_entry():
            for en in ng.access_entries():
                if en.get("uri") == "/upload/h2":
                    return en
            return None
        en = wait_for(upload_entry, 5)
        bf = en.get("body_file") if en else None
        t.check("1 MiB upload arrived intact at nginx (sha256)",
                bf and os.path.exists(bf) and file_sha256(bf) == want, "entry %r" % (en,))

    with t.section("an HTTP/1.1 upstream's chunked trailers reach an HTTP/2 client", s):
        r = nghttp(base + "/h1trailers/x")
        sid = r.streams()[0] if r.streams() else None
        t.check("200", r.statuses() == ["200"], r.tail())
        t.check("the trailers came as a second HEADERS frame ending the stream",
                len(r.recv("HEADERS", sid)) == 2 and r.recv("HEADERS", sid)[-1][3] & 0x1, r.tail())
        t.check("x-up-trailer: yes (name lower-cased) and x-second: 2",
                r.header(sid, "x-up-trailer") == ["yes"] and r.header(sid, "x-second") == ["2"],
                r.tail())
        t.check("the hop-by-hop keep-alive trailer was dropped", not r.header(sid, "keep-alive"),
                r.tail())

    with t.section("nghttp: concurrent streams on one connection", s):
        r = nghttp(base + "/count/n", args=["-m", "10"])
        t.eq("nghttp -m 10: ten 200s", r.statuses(), ["200"] * 10)
        t.check("ten different streams, all on one connection",
                len(r.streams()) == 10 and r.out.count("Connected") == 1, r.tail())
        t.check("the proxy's SETTINGS came first", r.recv("SETTINGS") != [], r.tail())
        t.check("no RST_STREAM, no GOAWAY", not r.recv("RST_STREAM") and not r.goaway, r.tail())

    with t.section("h2load: 2000 requests, 4 connections x 10 streams", s):
        m0 = s.metrics()
        c0 = m0.get("strand_downstream_connections_total", listener="web")
        rc, out, err, secs = run([H2LOAD, "-n", "2000", "-c", "4", "-m", "10", base + "/load/x"], 30)
        mm = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                         r"(\d+) failed, (\d+) errored", out)
        t.check("h2load: 2000 succeeded, all 2xx",
                rc == 0 and mm and int(mm.group(1)) == 2000 and done and int(done.group(4)) == 2000,
                "rc=%r %.1fs\n%s\n%s" % (rc, secs, out[-1500:], err[-500:]))

        def settled():
            m = s.metrics()
            ok = (m.get("strand_http_requests_total", listener="web", route="web/load", code="2xx") == 2000
                  and m.get("strand_downstream_connections_active", listener="web") == 0)
            return m if ok else None
        m = wait_for(settled, 5, interval=0.1) or s.metrics()
        t.eq("strand_http_requests_total{route=web/load,code=2xx} == 2000",
             m.get("strand_http_requests_total", listener="web", route="web/load", code="2xx"), 2000)
        t.eq("strand_http_requests_total{route=web/count,code=2xx} == 10 (nghttp -m 10)",
             m.get("strand_http_requests_total", listener="web", route="web/count", code="2xx"), 10)
        t.eq("h2load's 4 connections counted once each (downstream_connections_total +4)",
             m.get("strand_downstream_connections_total", listener="web") - c0, 4)
        t.eq("histogram count for route web/load == 2000",
             m.get("strand_http_request_duration_seconds_count", route="web/load"), 2000)

    with t.section("access log of HTTP/2 requests", s):
        def count_lines():
            try:
                with open(alog) as f:
                    lines = [json.loads(x) for x in f if x.strip()]
            except (OSError, ValueError):
                return None
            c = [e for e in lines if str(e.get("path", "")).startswith("/count")]
            return c if len(c) >= 10 else None
        lines = wait_for(count_lines, 5, interval=0.1) or []
        t.eq("ten access-log lines for the ten nghttp streams", len(lines), 10)
        t.check("each: method GET, status 200, route web/count, a protocol field",
                lines and all(e.get("method") == "GET" and str(e.get("status")) == "200"
                              and e.get("route") == "web/count" and e.get("protocol")
                              for e in lines), repr(lines[:2]))
        protos = sorted({str(e.get("protocol")) for e in lines})
        print("    (protocol field of the HTTP/2 lines: %s)" % protos)

    with t.section("refusals to plain HTTP/2 requests are HTTP statuses", s):
        r = curl_v(base + "/nothing/here", args=PK, tmp=tmp)
        t.check("no route -> 404 over HTTP/2", r.status == 404 and r.version == "2", repr(r))
        r = curl_v(base + "/dead/x", args=PK, tmp=tmp)
        t.check("unreachable upstream -> 503 over HTTP/2", r.status == 503 and r.version == "2",
                repr(r))
        t0 = time.monotonic()
        r = curl_v(base + "/slow/x", args=PK, tmp=tmp)
        t.check("route timeout 300ms -> 504 over HTTP/2, in time",
                r.status == 504 and r.version == "2" and time.monotonic() - t0 < 1.8,
                "%r after %.2fs" % (r, time.monotonic() - t0))
        r = curl_v("http://127.0.0.1:%d/forbidden/x" % locked, args=PK, tmp=tmp)
        t.check("AuthorizationPolicy deny -> 403 over HTTP/2", r.status == 403 and r.version == "2",
                repr(r))
        r = curl_v("http://127.0.0.1:%d/echo/allowed" % locked, args=PK, tmp=tmp)
        t.eq("... and a request the policy allows -> 200", r.status, 200)

    with t.section("TLS with ALPN", s):
        tbase = "https://localhost:%d" % tls_port
        ca = ["--cacert", cert]
        r = curl_v(tbase + "/echo/tls", args=ca + ["--http2"], tmp=tmp)
        e = parse_echo(r.body)
        t.check("curl --http2 over TLS: http_version 2, 200, reached nginx over HTTP/1.1",
                r.status == 200 and r.version == "2" and e.get("proto") == "HTTP/1.1", repr(r))
        r = curl_v(tbase + "/echo/tls1", args=ca + ["--http1.1"], tmp=tmp)
        t.check("curl --http1.1 over TLS still gets HTTP/1.1",
                r.status == 200 and r.version == "1.1", repr(r))
        rs = curl_multi(tbase + "/files/big.bin", args=ca + ["--http2"])
        t.check("1 MiB download over TLS+h2 intact",
                rs[-1].status == 200 and sha256(rs[-1].body) == ng.sha["files/big.bin"],
                "status %r, %d bytes" % (rs[-1].status, len(rs[-1].body)))
        creds = grpc.ssl_channel_credentials(root_certificates=open(cert, "rb").read())
        ch = gp.channel(tls_port, credentials=creds, options=[("grpc.ssl_target_name_override", "localhost")])
        res = gp.call_unary(ch, b"over tls", timeout=5)
        ch.close()
        t.check("gRPC unary over the TLS listener (ALPN h2) -> OK, echo, peer a",
                res[0] == OK and res[2] == b"over tls" and res[3].get("x-peer") == "a", repr(res))

    with t.section("HTTP/2 upstreams (cluster protocol: http2)", s):
        r = curl_v(base + "/h2up/echo/from-h1", tmp=tmp)
        e = parse_echo(r.body)
        t.check("HTTP/1.1 client -> h2c cluster: nginx saw HTTP/2.0",
                r.status == 200 and r.version == "1.1" and e.get("backend") == "nginx-h2c"
                and e.get("proto") == "HTTP/2.0" and e.get("uri") == "/h2up/echo/from-h1", repr(r))
        r = curl_v(base + "/h2up/echo/from-h2", args=PK, tmp=tmp)
        e = parse_echo(r.body)
        t.check("HTTP/2 client -> h2c cluster: nginx saw HTTP/2.0",
                r.status == 200 and r.version == "2" and e.get("proto") == "HTTP/2.0", repr(r))
        rs = curl_multi(base + "/h2up/files/big.bin", args=PK)
        t.check("1 MiB download from the h2c cluster intact",
                rs[-1].status == 200 and sha256(rs[-1].body) == ng.sha["files/big.bin"],
                "status %r, %d bytes %r" % (rs[-1].status, len(rs[-1].body), rs[-1].stderr[-200:]))
        path = os.path.join(tmp, "up2.bin")
        want = write_random_file(path, MIB)
        # Several times (each on a new client connection): nginx's 64 KiB
        # stream window makes the proxy wait for WINDOW_UPDATEs, and a missed
        # wake-up shows only now and then.
        # Each takes ~20 ms; a stall costs the 4 s timeout once.
        for i in range(16):
            r = curl(base + "/h2up/upload/%d" % i, args=PK + ["--data-binary", "@" + path], timeout=4)
            if r.status != 200:
                break
        t.check("1 MiB upload, HTTP/2 client -> h2c cluster, 16 times -> 200",
                (r.status, r.body) == (200, b"stored\n"), "upload %d of 16: %r" % (i + 1, r))
        uri = "/h2up/upload/%d" % i
        en = wait_for(lambda: next((x for x in ng.access_entries() if x.get("uri") == uri), None), 5)
        bf = en.get("body_file") if en else None
        t.check("... arrived intact (sha256)", bf and os.path.exists(bf) and file_sha256(bf) == want,
                "nginx access-log entry %r" % (en,))
        r = curl(base + "/h2up/upload/h1", args=["--data-binary", "@" + path], timeout=4)
        t.eq("1 MiB upload, HTTP/1.1 client -> h2c cluster -> 200", (r.status, r.body), (200, b"stored\n"))
        # Pooling: 20 concurrent streams from one client connection share
        # (at most one per worker) upstream HTTP/2 connections.
        r = nghttp(base + "/h2up/echo/pool", args=["-m", "20"])
        t.eq("nghttp -m 20 through the h2c cluster: twenty 200s", r.statuses(), ["200"] * 20)
        conns = {x.get("conn") for x in ng.access_entries() if x.get("uri") == "/h2up/echo/pool"}
        t.check("the 20 streams reached nginx on at most 2 connections (sessions pooled)",
                1 <= len(conns) <= 2, "nginx connections %r" % conns)
        r = curl_v("https://localhost:%d/h2tls/x" % tls_port, args=["--cacert", cert, "--http2"], tmp=tmp)
        e = parse_echo(r.body)
        t.check("TLS cluster with ALPN h2: nginx saw HTTP/2.0 over TLS",
                r.status == 200 and e.get("backend") == "nginx-h2tls" and e.get("proto") == "HTTP/2.0",
                repr(r))

    ch = gp.channel(gport)
    with t.section("gRPC: unary, status, streaming", s):
        res = gp.call_unary(ch, b"hello grpc")
        t.check("unary echo -> OK, same bytes", res[0] == OK and res[2] == b"hello grpc", repr(res))
        big = os.urandom(1 << 20)
        res = gp.call_unary(ch, big, timeout=5)
        t.check("unary 1 MiB echo intact", res[0] == OK and res[2] == big,
                "%s %r" % (code_of(res), res[1]))
        # 100 calls at once on one connection: no stream mixes up another's.
        futs = [gp.unary(ch).future(b"concurrent-%d" % i + b"z" * (i * 37), timeout=10)
                for i in range(100)]
        bad = []
        for i, fu in enumerate(futs):
            try:
                if fu.result() != b"concurrent-%d" % i + b"z" * (i * 37):
                    bad.append(i)
            except grpc.RpcError as e:
                bad.append((i, str(e.code())))
        t.check("100 concurrent unary calls, each gets its own echo", not bad, repr(bad[:10]))
        try:
            resp, call = gp.unary(ch).with_call(
                b"meta", timeout=5,
                metadata=[("x-custom", "c" * 4000), ("x-bin-bin", b"\x00\xffbin")])
            md = dict(json.loads(resp))
            tr = dict(call.trailing_metadata() or ())
            t.check("request metadata (a 4000-byte value, a binary value) reaches the server",
                    md.get("x-custom") == "c" * 4000 and md.get("x-bin-bin") == "<binary 5>",
                    repr({k: (v[:40] if isinstance(v, str) else v) for k, v in md.items()}))
            t.check("response trailers pass through (x-trailer, x-trailer-bin)",
                    tr.get("x-trailer") == "t-a" and tr.get("x-trailer-bin") == b"\x00\x01\xfe\xff",
                    repr(tr))
        except grpc.RpcError as e:
            t.check("metadata and trailers through the proxy", False, "%s %s" % (e.code(), e.details()))
        res = gp.call_unary(ch, b"status:5")
        t.check("server NOT_FOUND passes through with its message",
                res[0] == grpc.StatusCode.NOT_FOUND and res[1] == "asked for 5", repr(res))
        res = gp.call_unary(ch, b"status:3")
        t.check("server INVALID_ARGUMENT passes through",
                res[0] == grpc.StatusCode.INVALID_ARGUMENT and res[1] == "asked for 3", repr(res))
        try:
            msgs = list(gp.server_stream(ch)(b"1000:1024", timeout=10))
            ok = (len(msgs) == 1000 and all(len(m) == 1024 for m in msgs)
                  and all(m[:8] == b"%08d" % i for i, m in enumerate(msgs)))
            t.check("server streaming: 1000 x 1 KiB in order", ok,
                    "%d messages, sizes %r" % (len(msgs), sorted({len(m) for m in msgs})[:5]))
        except grpc.RpcError as e:
            t.check("server streaming: 1000 x 1 KiB in order", False, "%s %s" % (e.code(), e.details()))
        try:
            sizes = [(i * 7919) % 40000 for i in range(200)]      # 0..40 KB each, ~4 MB in all
            resp = gp.client_stream(ch)(iter([b"c" * n for n in sizes]), timeout=8)
            t.eq("client streaming: 200 messages (%d bytes) summed by the server" % sum(sizes),
                 resp, str(sum(sizes)).encode())
        except grpc.RpcError as e:
            t.check("client streaming", False, "%s %s" % (e.code(), e.details()))

        # Bidi, interleaved: message i+1 is sent only after echo i arrived,
        # so a proxy that waited for the end of the request would stall.
        import queue
        q = queue.Queue()
        got, order_ok = [], True

        def requests():
            for i in range(50):
                yield b"bidi-%d-" % i + b"y" * (i * 100)
                try:
                    if q.get(timeout=5) != i:
                        return
                except queue.Empty:
                    return
        try:
            for i, m in enumerate(gp.bidi_stream(ch)(requests(), timeout=15)):
                got.append(m)
                if m != b"bidi-%d-" % i + b"y" * (i * 100):
                    order_ok = False
                q.put(i)
            t.check("bidi streaming: 50 interleaved round trips echoed in order",
                    len(got) == 50 and order_ok, "%d echoes, order_ok=%r" % (len(got), order_ok))
        except grpc.RpcError as e:
            t.check("bidi streaming: 50 interleaved round trips echoed in order", False,
                    "after %d echoes: %s %s" % (len(got), e.code(), e.details()))

        # A client that cancels a server stream: the proxy resets the
        # upstream stream, so the server stops (its call ends) soon.
        try:
            it = gp.server_stream(ch)(b"100000:1024", timeout=20)
            for k, _ in enumerate(it):
                if k == 10:
                    break
            busy = gp.peer_stats(pb)["active"] >= 1
            it.cancel()
            t.check("client cancels a 100 MB server stream after 10 messages -> the server's call "
                    "ends within 2 s", busy and wait_for(lambda: gp.peer_stats(pb)["active"] == 0, 2.0),
                    "busy before cancel=%r, now %r" % (busy, gp.peer_stats(pb)))
        except grpc.RpcError as e:
            t.check("cancel a server stream", False, "%s %s" % (e.code(), e.details()))

    with t.section("gRPC: deadlines", s):
        res = gp.call_unary(ch, b"deadline", timeout=0.5)
        try:
            left = float(res[2])
        except (TypeError, ValueError):
            left = None
        # grpc rounds the encoded timeout up to whole units and the server
        # measures from its own clock: even without a proxy it may report up
        # to ~1 ms more than the client's 0.5 s, hence the 10 ms of slack.
        t.check("grpc-timeout reaches the server: 0 < time_remaining <= 0.5 s (+10 ms)",
                res[0] == OK and left is not None and 0 < left <= 0.51, repr(res))
        res = gp.call_unary(ch, b"deadline", timeout=None)
        # grpc Python reports "no deadline" as a huge time_remaining.
        t.check("no client deadline: the server sees none, or the route's (<= 15 s)",
                res[0] == OK and (res[2] == b"None" or float(res[2]) > 1e9
                                  or 0 < float(res[2]) <= 15.0), repr(res))
        t0 = time.monotonic()
        res = gp.call_unary(ch, b"sleep:2000", timeout=0.3)
        dt = time.monotonic() - t0
        t.check("server sleeps 2 s, client timeout 0.3 s -> DEADLINE_EXCEEDED in < 1 s",
                res[0] == grpc.StatusCode.DEADLINE_EXCEEDED and dt < 1.0, "%r after %.2fs" % (res, dt))
        wait_for(lambda: gp.peer_stats(pa)["active"] == 0, 2.5)
        # The proxy itself enforces grpc-timeout: a raw client with no deadline
        # of its own sends grpc-timeout: 300m to an HTTP/1.1 server that
        # answers after 2 s (and knows no gRPC).
        f = write_frame(tmp, "slow", b"slow")
        r = nghttp("http://127.0.0.1:%d/strand.test.Slow/Call" % gport,
                   args=grpc_args(f, ["grpc-timeout: 300m"]), timeout=6)
        sid = r.streams()[0] if r.streams() else None
        t.check("grpc-timeout: 300m, upstream answers after 2 s -> the proxy answers "
                "grpc-status 4 (HTTP 200) in 0.25-1.5 s",
                sid is not None and r.header(sid, ":status") == ["200"]
                and r.header(sid, "grpc-status") == ["4"] and 0.25 < r.secs < 1.5, r.tail())
        # Route timeout 400ms, client (and so server) deadline 10 s: the
        # server would not give up by itself, the answer must be the proxy's.
        t0 = time.monotonic()
        res = gp.call_unary(ch, b"sleep:2000", timeout=10, metadata=[("x-short", "1")])
        dt = time.monotonic() - t0
        t.check("route timeout 400ms < client deadline 10 s, no response head in time -> "
                "DEADLINE_EXCEEDED from the proxy after ~0.4 s",
                res[0] == grpc.StatusCode.DEADLINE_EXCEEDED and 0.3 < dt < 1.5,
                "%r after %.2fs" % (res, dt))
        t.check("... and the proxy cancelled the upstream call (server idle again within 1 s)",
                wait_for(lambda: gp.peer_stats(pa)["active"] == 0, 1.0), repr(gp.peer_stats(pa)))
        wait_for(lambda: gp.peer_stats(pa)["active"] == 0, 2.5)

    with t.section("gRPC: routing and refusals", s):
        res = gp.call_unary(ch, b"who")
        t.check("grpc.method Unary -> peer a", res[0] == OK and res[3].get("x-peer") == "a", repr(res))
        try:
            it = gp.server_stream(ch)(b"1:10", timeout=5)
            list(it)
            peer = dict(it.initial_metadata() or ()).get("x-peer")
        except grpc.RpcError as e:
            peer = "error %s" % e.code()
        t.eq("grpc.method ServerStream -> peer b", peer, "b")
        res = gp.call_unary(ch, b"x", method="Nope", service="strand.test.Nowhere")
        t.check("no route -> UNIMPLEMENTED", res[0] == grpc.StatusCode.UNIMPLEMENTED, repr(res))
        f = write_frame(tmp, "x", b"x")
        r = nghttp("http://127.0.0.1:%d/strand.test.Nowhere/Nope" % gport, args=grpc_args(f))
        sid = r.streams()[0] if r.streams() else None
        hdrs = r.recv("HEADERS", sid)
        t.check("... as a trailers-only response: one HEADERS frame, :status 200, grpc-status 12, "
                "END_STREAM, no DATA",
                sid is not None and r.header(sid, ":status") == ["200"]
                and r.header(sid, "grpc-status") == ["12"] and len(hdrs) == 1 and hdrs[0][3] & 1
                and not r.recv("DATA", sid), r.tail())
        t.check("... with content-type application/grpc",
                sid is not None and any(v.startswith("application/grpc")
                                        for v in r.header(sid, "content-type")), r.tail())
        before = gp.peer_stats(pa)["calls"].get("Unary", 0)
        lch = gp.channel(locked)
        res = gp.call_unary(lch, b"secret")
        t.check("AuthorizationPolicy DENY grpc.method Unary -> PERMISSION_DENIED",
                res[0] == grpc.StatusCode.PERMISSION_DENIED, repr(res))
        t.eq("... the call never reached the server", gp.peer_stats(pa)["calls"].get("Unary", 0), before)
        try:
            msgs = list(gp.server_stream(lch)(b"3:10", timeout=5))
            t.eq("... other methods on that listener still pass", len(msgs), 3)
        except grpc.RpcError as e:
            t.check("... other methods on that listener still pass", False, "%s %s" % (e.code(), e.details()))
        lch.close()
        res = gp.call_unary(ch, b"x", service="strand.test.Dead")
        t.check("upstream port closed -> UNAVAILABLE", res[0] == grpc.StatusCode.UNAVAILABLE, repr(res))

        # Cluster overflow: tiny allows one request at a time and none waiting.
        holder = {}

        def hold():
            holder["res"] = gp.call_unary(ch, b"sleep:800", timeout=5, metadata=[("x-tiny", "1")])
        th = threading.Thread(target=hold, daemon=True)
        th.start()
        busy = wait_for(lambda: gp.peer_stats(pa)["active"] >= 1, 3)
        res = gp.call_unary(ch, b"second", timeout=5, metadata=[("x-tiny", "1")])
        t.check("cluster limit (maxRequests 1, no pending) -> RESOURCE_EXHAUSTED",
                busy and res[0] == grpc.StatusCode.RESOURCE_EXHAUSTED, "busy=%r %r" % (busy, res))
        th.join(5)
        t.check("... while the call holding the slot completes OK",
                holder.get("res", (None,))[0] == OK, repr(holder.get("res")))
        # A call whose response head is out still holds its slot until it
        # ends: streams on an HTTP/2 cluster are bounded by maxRequests.
        holder.clear()

        def hold_body():
            holder["res"] = gp.call_unary(ch, b"sleepbody:800", timeout=5,
                                          metadata=[("x-tiny", "1")])
        th = threading.Thread(target=hold_body, daemon=True)
        th.start()
        busy = wait_for(lambda: gp.peer_stats(pa)["active"] >= 1, 3)
        time.sleep(0.2)  # the head is sent at once, the message 800 ms later
        res = gp.call_unary(ch, b"second", timeout=5, metadata=[("x-tiny", "1")])
        t.check("... also while the holder's response is streaming (head sent, body late)",
                busy and res[0] == grpc.StatusCode.RESOURCE_EXHAUSTED, "busy=%r %r" % (busy, res))
        th.join(5)
        t.check("... and that call completes OK",
                holder.get("res", (None,))[0] == OK, repr(holder.get("res")))
        m = s.metrics()
        t.check("strand_upstream_overflow_total{cluster=tiny} >= 1",
                m.get("strand_upstream_overflow_total", cluster="tiny") >= 1,
                m.describe("strand_upstream_overflow_total"))
        t.check("strand_authz_denied_total{listener=locked} >= 1",
                m.get("strand_authz_denied_total", listener="locked") >= 1,
                m.describe("strand_authz_denied_total"))

    with t.section("gRPC: retries on UNAVAILABLE", s):
        r0 = s.metrics().get("strand_upstream_retries_total", cluster="peer-b")
        res = gp.call_unary(ch, b"once-noretry:1", method="Flaky", metadata=[("x-no-retry", "1")])
        t.check("Flaky fails once, route without retries -> UNAVAILABLE from the server",
                res[0] == grpc.StatusCode.UNAVAILABLE and "flaky once-noretry call 1" in res[1], repr(res))
        res = gp.call_unary(ch, b"once:1", method="Flaky")
        t.check("Flaky fails once, route retries 2 on [unavailable] -> OK",
                res[0] == OK and res[2] == b"ok once call 2", repr(res))
        t.eq("the server saw exactly 2 calls", gp.peer_stats(pb)["flaky"].get("once"), 2)
        res = gp.call_unary(ch, b"thrice:3", method="Flaky")
        t.check("Flaky fails 3 times, 2 retries -> UNAVAILABLE after 3 calls",
                res[0] == grpc.StatusCode.UNAVAILABLE and gp.peer_stats(pb)["flaky"].get("thrice") == 3,
                "%r, calls %r" % (res, gp.peer_stats(pb)["flaky"].get("thrice")))
        r1 = wait_for(lambda: s.metrics().get("strand_upstream_retries_total", cluster="peer-b") >= r0 + 3, 3)
        t.check("strand_upstream_retries_total{cluster=peer-b} grew by 3", r1,
                "before %r, now %r" % (r0, s.metrics().get("strand_upstream_retries_total", cluster="peer-b")))

    with t.section("metrics after HTTP/2 and gRPC traffic", s):
        m = s.metrics()
        t.check("every /metrics line parses", not m.bad_lines, repr(m.bad_lines[:5]))
        if os.path.exists(PROMTOOL):
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=s.metrics_text().encode(),
                               capture_output=True, timeout=20)
            t.check("promtool check metrics passes", p.returncode == 0,
                    "rc=%d\n%s%s" % (p.returncode, p.stdout.decode(), p.stderr.decode()))
        t.eq("a gRPC call is an HTTP request: strand_http_requests_total{route=grpc/flaky-once,"
             "code=2xx} == 1",
             m.get("strand_http_requests_total", listener="grpc", route="grpc/flaky-once", code="2xx"), 1)
        # Per grpc-status counts, the proxy's own refusals included.
        for route, status in (("grpc/flaky-once", "UNAVAILABLE"), ("grpc/dead", "UNAVAILABLE"),
                              ("locked/echo", "PERMISSION_DENIED"), ("grpc/flaky", "OK")):
            want = 1      # grpc/flaky: "once" ended OK after a retry ("thrice" ended UNAVAILABLE)
            t.eq("strand_grpc_requests_total{route=%s,grpc_status=%s} == %d" % (route, status, want),
                 m.get("strand_grpc_requests_total", route=route, grpc_status=status), want)
        t.check("strand_grpc_requests_total{route=grpc/tiny,grpc_status=RESOURCE_EXHAUSTED} == 2",
                m.get("strand_grpc_requests_total", route="grpc/tiny", grpc_status="RESOURCE_EXHAUSTED") == 2,
                m.describe("strand_grpc_requests_total"))

    with t.section("gRPC: 64 MiB server stream to a slow reader (flow control)", s):
        total_msgs, size = 4096, 16384
        sch = gp.channel(gport)
        gp.call_unary(sch, b"warm", timeout=5)
        base_rss = s.rss_kib()
        peak = [base_rss]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], s.rss_kib())
                except Exception:
                    pass
                stop.wait(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        sent0 = gp.peer_stats(pb)["stream_bytes_sent"]
        n = got = 0
        in_order = True
        stalled_sent = None
        t0 = time.monotonic()
        try:
            for msg in gp.server_stream(sch)(b"%d:%d" % (total_msgs, size), timeout=30):
                if msg[:8] != b"%08d" % n:
                    in_order = False
                n += 1
                got += len(msg)
                if n == 64:
                    # Stall: a proxy without flow control would now take the
                    # whole stream from the server and buffer it.
                    time.sleep(1.5)
                    stalled_sent = gp.peer_stats(pb)["stream_bytes_sent"] - sent0
                elif n % 16 == 0:
                    time.sleep(0.002)
                if time.monotonic() - t0 > 25:
                    break
            err = None
        except grpc.RpcError as e:
            err = "%s %s" % (e.code(), e.details())
        stop.set()
        sampler.join(2)
        sch.close()
        dt = time.monotonic() - t0
        t.check("all %d MiB arrived, in order" % (total_msgs * size // MIB),
                err is None and n == total_msgs and got == total_msgs * size and in_order,
                "%d messages, %d bytes, in_order=%r, error %r, %.1fs" % (n, got, in_order, err, dt))
        t.check("while the client stalled the server could not send everything (%s MiB sent)"
                % (None if stalled_sent is None else stalled_sent // MIB),
                stalled_sent is not None and stalled_sent < total_msgs * size, repr(stalled_sent))
        grew = (peak[0] - base_rss) / 1024.0
        t.check("proxy RSS grew by less than 20 MiB (grew %.1f MiB, peak %.1f MiB)"
                % (grew, peak[0] / 1024.0), grew < 20, "base %d KiB, peak %d KiB" % (base_rss, peak[0]))

    with t.section("reload: in-flight gRPC stream finishes, client gets GOAWAY", s):
        f = write_frame(tmp, "sleep700", b"sleep:700")
        p = nghttp_start("http://127.0.0.1:%d/%s/Unary" % (gport, SVC), args=grpc_args(f), timeout=8)
        inflight = wait_for(lambda: gp.peer_stats(pa)["active"] >= 1, 3)
        t.check("the call is in flight at the server", inflight, repr(gp.peer_stats(pa)))
        res = s.reload_sighup()
        t.eq("SIGHUP reload -> ok", res, "ok")
        r = nghttp_collect(p, 10)
        sid = r.streams()[0] if r.streams() else None
        t.check("the in-flight call completed: grpc-status 0 and the 14-byte echo",
                sid is not None and r.header(sid, "grpc-status") == ["0"]
                and sum(x[2] for x in r.recv("DATA", sid)) == 5 + len(b"sleep:700"), r.tail())
        t.check("the client got a GOAWAY", r.goaway, r.tail())
        nch = gp.channel(gport)
        res = gp.call_unary(nch, b"after reload")
        nch.close()
        t.check("a new connection after the reload works", res[0] == OK and res[2] == b"after reload",
                repr(res))

    with t.section("SIGTERM: in-flight calls finish, GOAWAY sent", s):
        out = {}
        tch = gp.channel(gport)

        def slow_call():
            t0 = time.monotonic()
            out["res"] = gp.call_unary(tch, b"sleep:500", timeout=8)
            out["dt"] = time.monotonic() - t0
        th = threading.Thread(target=slow_call, daemon=True)
        f = write_frame(tmp, "sleep800", b"sleep:800")
        p = nghttp_start("http://127.0.0.1:%d/%s/Unary" % (gport, SVC), args=grpc_args(f), timeout=8)
        th.start()
        inflight = wait_for(lambda: gp.peer_stats(pa)["active"] >= 2, 3)
        t.check("two calls in flight at the server", inflight, repr(gp.peer_stats(pa)))
        s.proc.send_signal(signal.SIGTERM)
        refused = wait_for(lambda: connect_refused(gport), 3)
        t.check("new connections refused after SIGTERM", refused, "still accepting")
        th.join(8)
        t.check("the in-flight grpc call completed OK", out.get("res", (None,))[0] == OK
                and out["res"][2] == b"sleep:500", repr(out))
        r = nghttp_collect(p, 10)
        sid = r.streams()[0] if r.streams() else None
        t.check("the nghttp call completed with grpc-status 0",
                sid is not None and r.header(sid, "grpc-status") == ["0"], r.tail())
        t.check("nghttp received a GOAWAY", r.goaway, r.tail())
        tch.close()
        ch.close()
        rc = s.stop(timeout=10)
        t.eq("strand exits 0", rc, 0)

    for p in (pa_proc, pb_proc):
        kill_group(p)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
