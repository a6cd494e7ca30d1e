"""Process lifecycle and resource behaviour.

  * SIGTERM with a request in flight: the request completes (200, full body),
    new connections are refused, strand exits 0 within drainTimeout + margin.
    The backend is a Python SlowServer (headers at once, body only when the
    test opens a gate, bounded by max_wait) -- nginx can't hold a body back.
  * websocket passthrough: 101, then raw bytes echoed both ways (Python
    EchoWebSocketServer; nginx can't terminate a websocket).
  * slow reader back-pressure: a client stalls on a 64 MiB nginx download;
    strand's RSS must stay < 16 MiB above its baseline; then the client reads
    everything and the sha256 matches.
  * memory per idle keep-alive connection: 500 idle connections cost < 16 KiB
    each in RSS (a loose bound; the benchmark measures the real figure).
"""

import base64
import hashlib
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (EchoWebSocketServer, Nginx, RawConn, SlowServer, Suite,  # noqa: E402
                     cluster_doc, connect_refused, curl, curl_collect, curl_start, free_port,
                     listener_doc, make_tmpdir, proxy_doc, raw_http, route_doc, start_strand,
                     wait_for)

MIB = 1 << 20
DRAIN_S = 10


def probe(port):
    """What a new connection to port gets, for failure messages."""
    try:
        r = raw_http(port, b"GET /probe HTTP/1.1\r\nHost: strand.test\r\n\r\n", timeout=1)
    except OSError as e:
        return "connect failed: %r" % e
    if r.data:
        return "connection accepted and answered %r" % r.data[:80]
    if r.closed:
        return "connection accepted, then closed without an answer"
    return "connection accepted (or queued in the backlog) and left hanging"


def ws_request(key):
    return (b"GET /ws/chat HTTP/1.1\r\nHost: strand.test\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n")


def main():
    t = Suite("test_lifecycle")
    tmp = make_tmpdir("lifecycle")

    # ---------------------------------------------------------------- drain
    with t.section("SIGTERM drains in-flight requests"):
        gate = threading.Event()
        body = bytes(range(256)) * 400            # 100 KiB, recognisable
        slow = SlowServer(body=body, gate=gate, max_wait=10)
        admin, web = free_port(), free_port()
        s = start_strand(t, tmp, [
            proxy_doc(admin, drainTimeout="%ds" % DRAIN_S),
            listener_doc("web", web),
            cluster_doc("slow", [slow.port]),
            route_doc("main", ["web"], [{"match": [{"attribute": "path", "prefix": "/"}],
                                         "backends": [{"cluster": "slow"}], "timeout": "20s"}]),
        ])
        p = curl_start("http://127.0.0.1:%d/slow" % web, timeout=12)
        t.check("backend sent the response head (request in flight)",
                wait_for(lambda: slow.heads_sent >= 1, 5), "heads_sent=%d" % slow.heads_sent)
        s.proc.send_signal(signal.SIGTERM)
        refused = wait_for(lambda: connect_refused(web), 5)
        t.check("new connections are refused after SIGTERM", refused,
                "" if refused else "5 s after SIGTERM: " + probe(web))
        t.check("strand keeps running while the request is in flight", s.alive(), s.describe())
        gate.set()               # let the body go
        r = curl_collect(p, timeout=14)
        t.eq("in-flight request completes with 200", r.status, 200)
        t.check("in-flight request got the full body", r.body == body,
                "got %d bytes, want %d" % (len(r.body), len(body)))
        try:
            rc = s.proc.wait(timeout=DRAIN_S + 5)
        except Exception:
            rc = None
        t.eq("strand exits 0 within drainTimeout + 5 s", rc, 0)

    # ------------------------------------------------------ shared strand B
    setup_ok = False
    with t.section("setup"):
        ws = EchoWebSocketServer()
        ng = Nginx(tmp, [{"/files/": ""}], files={"files/small.bin": 2000,
                                                   "files/big64.bin": 64 * MIB})
        ng.start()
        admin, web = free_port(), free_port()
        s = start_strand(t, tmp, [
            proxy_doc(admin),
            listener_doc("web", web),
            cluster_doc("ws", [ws.port]),
            cluster_doc("nginx", [ng.port]),
            route_doc("main", ["web"], [
                {"name": "ws", "match": [{"attribute": "path", "prefix": "/ws"}],
                 "backends": [{"cluster": "ws"}], "timeout": "30s"},
                {"name": "files", "match": [{"attribute": "path", "prefix": "/files"}],
                 "backends": [{"cluster": "nginx"}], "timeout": "60s"},
            ]),
        ])
        setup_ok = True
    if not setup_ok:
        t.finish()

    # ------------------------------------------------------------ websocket
    with t.section("websocket passthrough", s):
        key = base64.b64encode(os.urandom(16))
        want_accept = base64.b64encode(hashlib.sha1(key + EchoWebSocketServer.GUID).digest()).decode()
        c = RawConn(web, timeout=10)
        try:
            c.send(ws_request(key))
            r = c.read_response()
            t.eq("upgrade -> 101", r.status, 101)
            t.eq("101 carries Upgrade: websocket", (r.header("upgrade") or "").lower(), "websocket")
            t.eq("Sec-WebSocket-Accept passed through", r.header("sec-websocket-accept"), want_accept)
            seen = ws.request_headers[-1] if ws.request_headers else {}
            t.eq("backend saw Upgrade: websocket", seen.get("upgrade", "").lower(), "websocket")
            t.check("backend saw Connection: upgrade", "upgrade" in seen.get("connection", "").lower(),
                    repr(seen))
            frame = b"\x81\x05hello"     # opaque to the proxy after the 101
            c.send(frame)
            t.eq("small frame echoed back", c.read_exact(len(frame)), frame)
            big = os.urandom(256 * 1024)
            w = threading.Thread(target=c.send, args=(big,), daemon=True)
            w.start()
            got = c.read_exact(len(big), timeout=15)
            w.join(10)
            t.check("256 KiB echoed both ways intact", got == big, "got %d bytes" % len(got))
            c.sock.shutdown(socket.SHUT_WR)
            t.check("client half-close reaches the backend, which closes; client sees EOF",
                    c.closed_by_peer(5), "no EOF")
        finally:
            c.close()

    # --------------------------------------------------------- slow reader
    with t.section("slow reader back-pressure", s):
        for _ in range(3):
            curl("http://127.0.0.1:%d/files/small.bin" % web)
        baseline = s.rss_kib()
        size = ng.sizes["files/big64.bin"]
        c = RawConn(web, timeout=30, rcvbuf=64 * 1024)
        try:
            c.send(b"GET /files/big64.bin HTTP/1.1\r\nHost: strand.test\r\n\r\n")
            version, status, reason, headers, head = c.read_head()
            hd = dict(headers)
            t.eq("64 MiB download -> 200", status, 200)
            t.eq("Content-Length is 64 MiB", hd.get("content-length"), str(size))
            samples = []
            for _ in range(5):         # the client reads nothing meanwhile
                time.sleep(0.4)        # sampling interval, not a readiness wait
                samples.append(s.rss_kib())
            growth = max(samples) - baseline
            t.check("RSS growth while the client stalls is %d KiB (< 16 MiB)" % growth,
                    growth < 16 * 1024, "baseline %d KiB, samples %r" % (baseline, samples))
            h = hashlib.sha256()
            got = len(c.buf)
            h.update(bytes(c.buf))
            c.buf.clear()
            c.sock.settimeout(30)
            deadline = time.monotonic() + 30
            while got < size and time.monotonic() < deadline:
                b = c.sock.recv(min(1 << 20, size - got))
                if not b:
                    break
                h.update(b)
                got += len(b)
            t.eq("slow reader finally got all bytes", got, size)
            t.eq("sha256 of the 64 MiB body", h.hexdigest(), ng.sha["files/big64.bin"])
        finally:
            c.close()

    # ------------------------------------------------- idle connection cost
    with t.section("memory per idle keep-alive connection", s):
        req = b"GET /files/small.bin HTTP/1.1\r\nHost: strand.test\r\n\r\n"
        warm = []
        for _ in range(50):                  # warm the allocator and the pool
            c = RawConn(web)
            c.send(req)
            c.read_response()
            warm.append(c)
        for c in warm:
            c.close()
        t.check("warm-up connections closed",
                wait_for(lambda: s.metrics().get("strand_downstream_connections_active", listener="web") == 0, 5),
                s.metrics().describe("strand_downstream_connections_active"))
        baseline = s.rss_kib()
        conns, bad = [], []
        try:
            for i in range(500):
                c = RawConn(web)
                conns.append(c)
                c.send(req)
                r = c.read_response()
                if r.status != 200 or len(r.body) != 2000:
                    bad.append((i, r.status, len(r.body)))
            t.check("500 keep-alive connections each served one request", not bad, repr(bad[:5]))
            active = wait_for(lambda: s.metrics().get("strand_downstream_connections_active",
                                                      listener="web") == 500, 5)
            t.check("strand_downstream_connections_active{listener=web} == 500", active,
                    s.metrics().describe("strand_downstream_connections_active"))
            after = s.rss_kib()
            per_conn = (after - baseline) * 1024 / 500
            t.check("RSS per idle keep-alive connection %.0f bytes (< 16 KiB)" % per_conn,
                    per_conn < 16 * 1024, "baseline %d KiB, after %d KiB" % (baseline, after))
            c = conns[0]
            c.send(req)
            t.eq("an idle connection still works", c.read_response().status, 200)
        finally:
            for c in conns:
                c.close()

    with t.section("shutdown", s):
        t.eq("SIGTERM -> exit 0", s.stop(), 0)

    t.finish()


if __name__ == "__main__":
    main()
