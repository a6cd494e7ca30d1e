"""TCP listeners (protocol: tcp): opaque streams to a cluster.

The backend is a Python TcpEchoServer (nginx has no echo with half-close):
it echoes, and on EOF writes "bye" then closes. Checks: round trip,
half-close propagation, 20 concurrent 1 MiB streams (sha256), idle timeout,
upstream refused, and strand_tcp_connections_total.
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, TcpEchoServer, cluster_doc, free_port, listener_doc,  # noqa: E402
                     make_tmpdir, proxy_doc, route_doc, sha256, start_strand, wait_for)

MIB = 1 << 20


def connect(port, timeout=10):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            break
        buf += b
    return bytes(buf)


def recv_to_eof(s, limit=64 * MIB):
    buf = bytearray()
    while len(buf) < limit:
        b = s.recv(262144)
        if not b:
            break
        buf += b
    return bytes(buf)


def wait_closed(s, timeout):
    """True if the peer closes s (EOF or RST) within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            b = s.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if not b:
            return True


def stream_1mib(port, results, i):
    """Send 1 MiB, half-close, read everything back; record the outcome."""
    data = os.urandom(MIB)
    try:
        s = connect(port, timeout=30)
        err = []

        def writer():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                err.append(repr(e))
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        got = recv_to_eof(s, limit=MIB + 16)
        w.join(30)
        s.close()
        results[i] = (sha256(got[:MIB]) == sha256(data) and got[MIB:] == b"bye",
                      "len=%d tail=%r err=%r" % (len(got), got[MIB:][:10], err))
    except OSError as e:
        results[i] = (False, repr(e))


def main():
    t = Suite("test_tcp")
    tmp = make_tmpdir("tcp")

    with t.section("setup"):
        echo = TcpEchoServer()
        dead = free_port()
        admin, tcp, tcp_idle, tcp_dead = free_port(), free_port(), free_port(), free_port()
        docs = [
            proxy_doc(admin),
            listener_doc("tcp", tcp, protocol="tcp"),
            listener_doc("tcp-idle", tcp_idle, protocol="tcp", idleTimeout="1s"),
            listener_doc("tcp-dead", tcp_dead, protocol="tcp"),
            cluster_doc("echo", [echo.port]),
            cluster_doc("dead", [dead], connectTimeout="1s"),
            route_doc("echo", ["tcp"], [{"backends": [{"cluster": "echo"}]}]),
            route_doc("idle", ["tcp-idle"], [{"backends": [{"cluster": "echo"}]}]),
            route_doc("dead", ["tcp-dead"], [{"backends": [{"cluster": "dead"}]}]),
        ]
        s = start_strand(t, tmp, docs)
    if t.failed:
        t.finish()
    conns_on_tcp = 0

    with t.section("echo round trip", s):
        c = connect(tcp)
        conns_on_tcp += 1
        try:
            c.sendall(b"hello strand\n")
            t.eq("echo through the tcp listener", recv_exact(c, 13), b"hello strand\n")
            c.sendall(b"second")
            t.eq("second round trip on the same connection", recv_exact(c, 6), b"second")
        finally:
            c.close()

    with t.section("half-close", s):
        c = connect(tcp)
        conns_on_tcp += 1
        try:
            c.sendall(b"ping")
            c.shutdown(socket.SHUT_WR)
            got = recv_to_eof(c)
            t.eq("after shutdown(SHUT_WR) the client still reads the echo and 'bye'", got, b"pingbye")
        finally:
            c.close()

    with t.section("20 concurrent 1 MiB streams", s):
        results = [None] * 20
        threads = [threading.Thread(target=stream_1mib, args=(tcp, results, i), daemon=True)
                   for i in range(20)]
        conns_on_tcp += 20
        for th in threads:
            th.start()
        for th in threads:
            th.join(40)
        bad = [(i, r) for i, r in enumerate(results) if not (r and r[0])]
        t.check("20 x 1 MiB echoed intact (sha256) with 'bye' after half-close", not bad, repr(bad[:5]))

    with t.section("idle timeout", s):
        idle = connect(tcp_idle)
        busy = connect(tcp)
        conns_on_tcp += 1
        try:
            idle.sendall(b"x")
            t.eq("idle listener echoes", recv_exact(idle, 1), b"x")
            busy.sendall(b"y")
            t.eq("default listener echoes", recv_exact(busy, 1), b"y")
            t.check("idleTimeout 1s: proxy closes the idle connection (within 6 s)",
                    wait_closed(idle, 6.0), "connection still open")
            busy.sendall(b"still-here")
            t.eq("connection on the listener with the default (1h) idle timeout still works",
                 recv_exact(busy, 10), b"still-here")
        finally:
            idle.close()
            busy.close()

    with t.section("upstream refused", s):
        c = connect(tcp_dead)
        try:
            try:
                c.sendall(b"anyone?")
            except OSError:
                pass
            t.check("client connection closed promptly when the upstream refuses (within 5 s)",
                    wait_closed(c, 5.0), "connection still open")
        finally:
            c.close()
        t.check("strand still running", s.alive(), s.describe())

    with t.section("metrics", s):
        def counted():
            m = s.metrics()
            v = m.get("strand_tcp_connections_total", listener="tcp")
            return m if v == conns_on_tcp else None
        m = wait_for(counted, 5)
        m = m or s.metrics()
        t.eq("strand_tcp_connections_total{listener=tcp} counts every connection",
             m.get("strand_tcp_connections_total", listener="tcp"), conns_on_tcp)
        t.eq("labelled with route echo/0 and cluster echo",
             m.get("strand_tcp_connections_total", listener="tcp", route="echo/0", cluster="echo"),
             conns_on_tcp)
        t.check("tcp-idle connection counted",
                m.get("strand_tcp_connections_total", listener="tcp-idle", cluster="echo") >= 1,
                m.describe("strand_tcp_connections_total"))

    with t.section("shutdown", s):
        t.eq("SIGTERM -> exit 0", s.stop(), 0)

    t.finish()


if __name__ == "__main__":
    main()
