"""Connection timeouts on an HTTP listener.

- An active download keeps its connection alive even when every byte comes
  from the upstream side (nginx `limit_rate` trickles a file for about 4 s,
  in bursts well under a second apart, while the listener's idleTimeout is
  2 s): the download must complete.
- A connection with nothing going on is closed after idleTimeout.
- A request head that never completes gets 408 after headerTimeout.
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Nginx, Suite, cluster_doc, curl, free_port, listener_doc,  # noqa: E402
                     make_tmpdir, proxy_doc, route_doc, sha256, start_strand)


def wait_closed(s, timeout):
    """Bytes read until the peer closed s, or None if it stayed open."""
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            b = s.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return got
        if not b:
            return got
        got += b


def main():
    t = Suite("test_timeouts")
    tmp = make_tmpdir("timeouts")
    with t.section("setup"):
        size = 640 * 1024
        ng = Nginx(tmp, [{"/slow/": "limit_rate 160k;", "/": "return 200 'ok\\n';"}],
                   files={"slow/file.bin": size})
        ng.start()
        admin, web = free_port(), free_port()
        s = start_strand(t, tmp, [
            proxy_doc(admin, workers=1),
            listener_doc("web", web, idleTimeout="2s", headerTimeout="1s"),
            cluster_doc("nginx", [ng.port]),
            route_doc("main", ["web"], [
                {"match": [{"attribute": "path", "prefix": "/"}],
                 "backends": [{"cluster": "nginx"}], "timeout": "10s"}]),
        ])
        base = "http://127.0.0.1:%d" % web

    with t.section("a trickling download outlives idleTimeout"):
        started = time.monotonic()
        r = curl(base + "/slow/file.bin", timeout=15)
        took = time.monotonic() - started
        t.eq("download -> 200", r.status, 200)
        t.eq("whole file arrived", len(r.body), size)
        t.eq("sha256 matches", sha256(r.body), ng.sha["slow/file.bin"])
        # Not a timing assertion on Strand: it shows the test did exercise a
        # transfer longer than the idle timeout (nginx's rate limit).
        t.check("the transfer lasted longer than idleTimeout", took > 2.5, "took %.2fs" % took)

    with t.section("an idle connection is closed"):
        c = socket.create_connection(("127.0.0.1", web), timeout=5)
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        first = c.recv(65536)
        t.check("first response on the connection", first.startswith(b"HTTP/1.1 200"), repr(first[:40]))
        t.check("closed by the proxy after idleTimeout", wait_closed(c, 6) is not None,
                "still open after 6 s")
        c.close()

    with t.section("an incomplete head gets 408"):
        c = socket.create_connection(("127.0.0.1", web), timeout=5)
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        got = wait_closed(c, 6)
        t.check("connection closed", got is not None, "still open after 6 s")
        t.check("answered 408 first", (got or b"").startswith(b"HTTP/1.1 408"), repr((got or b"")[:60]))
        c.close()

    with t.section("shutdown"):
        t.eq("SIGTERM -> exit 0", s.stop(), 0)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
