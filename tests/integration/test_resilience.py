"""Failure handling: dead endpoints and retries, 5xx retries, outlier
ejection, route timeouts, cluster connection limits and upstream resets.

Backends: one nginx with three server blocks (200 / 503 / 500), closed ports
for dead endpoints, and Python servers where nginx can't play the role:
SlowServer (answers late, for timeouts and limits), ResetServer (RST) and
TrailerEcho (echoes a request's body and trailers, for retried bodies).
"""

import collections
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Nginx, ResetServer, SlowServer, Suite, TrailerEcho, cluster_doc,  # noqa: E402
                     curl, curl_collect, curl_multi, curl_start, free_port, listener_doc,
                     make_tmpdir, proxy_doc, raw_http, route_doc, start_strand, wait_for)

NO_OUTLIER = {"consecutive5xx": 0, "consecutiveFailures": 0}


def rule(name, prefix, cluster, **kw):
    r = {"name": name, "match": [{"attribute": "path", "prefix": prefix}],
         "backends": [{"cluster": cluster}]}
    r.update(kw)
    return r


def main():
    t = Suite("test_resilience")
    tmp = make_tmpdir("resilience")

    with t.section("setup"):
        ng = Nginx(tmp, [
            {"/": 'return 200 "ok\\n";'},
            {"/": 'return 503 "unavailable\\n";'},
            {"/": 'return 500 "broken\\n";'},
        ]).start()
        ok_port, p503, p500 = ng.ports
        dead1, dead2 = free_port(), free_port()     # nobody listens there
        # Python servers: nginx can't delay an answer or reset on purpose.
        slow_timeout = SlowServer(head_delay=3.0, body=b"too late\n", max_wait=5)
        slow_limit = SlowServer(head_delay=2.0, body=b"slow ok\n", max_wait=5)
        resetter = ResetServer()
        echo = TrailerEcho()
        admin, web = free_port(), free_port()
        docs = [
            # One worker: cluster limits and outlier state are then exactly
            # as configured whichever worker a connection lands on.
            proxy_doc(admin, workers=1),
            listener_doc("web", web),
            cluster_doc("ok", [ok_port]),
            cluster_doc("halfdead", [dead1, ok_port], outlierDetection=NO_OUTLIER),
            cluster_doc("alldead", [dead1, dead2]),
            cluster_doc("retry5xx", [p503, ok_port], outlierDetection=NO_OUTLIER),
            cluster_doc("retrybody", [p503, echo.port], outlierDetection=NO_OUTLIER),
            cluster_doc("outlier", [p500, ok_port], outlierDetection={
                "consecutive5xx": 3, "baseEjectionTime": "30s", "maxEjectionPercent": 50}),
            cluster_doc("slow", [slow_timeout.port]),
            cluster_doc("limited", [slow_limit.port], maxConnections=1, maxPendingRequests=1),
            cluster_doc("reset", [resetter.port], outlierDetection=NO_OUTLIER),
            route_doc("main", ["web"], [
                rule("ok", "/ok", "ok"),
                rule("halfdead", "/halfdead", "halfdead",
                     retries={"attempts": 2, "on": ["connect-failure"]}),
                rule("alldead-noretry", "/alldead-noretry", "alldead"),
                rule("alldead", "/alldead", "alldead",
                     retries={"attempts": 1, "on": ["connect-failure"]}),
                rule("retry5xx", "/retry5xx", "retry5xx", retries={"attempts": 2, "on": ["5xx"]}),
                rule("retrybody", "/retrybody", "retrybody",
                     retries={"attempts": 2, "on": ["5xx"]}),
                rule("outlier", "/outlier", "outlier"),
                rule("slow", "/slow", "slow", timeout="500ms"),
                rule("limited", "/limited", "limited", timeout="10s"),
                rule("reset", "/reset", "reset"),
            ]),
        ]
        s = start_strand(t, tmp, docs)
    if t.failed:
        t.finish()

    base = "http://127.0.0.1:%d" % web

    with t.section("dead endpoint + retries on connect-failure", s):
        rs = curl_multi(base + "/halfdead/[1-30]", timeout=4)
        codes = collections.Counter(r.status for r in rs)
        t.check("30 requests to a half-dead cluster all 200", codes == {200: 30}, repr(codes))
        m = s.metrics()
        t.check("strand_upstream_retries_total{cluster=halfdead} >= 1",
                m.get("strand_upstream_retries_total", cluster="halfdead") >= 1,
                m.describe("strand_upstream_retries_total"))

    with t.section("only dead endpoints -> 503", s):
        rs = curl_multi(base + "/alldead-noretry/[1-5]", timeout=4)
        codes = collections.Counter(r.status for r in rs)
        t.check("all-dead cluster, no retries -> 503", codes == {503: 5}, repr(codes))
        rs = curl_multi(base + "/alldead/[1-5]", timeout=4)
        codes = collections.Counter(r.status for r in rs)
        t.check("all-dead cluster, retries on connect-failure -> 503", codes == {503: 5}, repr(codes))

    with t.section("retry on 5xx to another endpoint", s):
        before = s.metrics().get("strand_upstream_retries_total", cluster="retry5xx")
        rs = curl_multi(base + "/retry5xx/[1-20]", timeout=4)
        codes = collections.Counter(r.status for r in rs)
        t.check("20 requests, one endpoint answers 503, retries -> all 200", codes == {200: 20},
                repr(codes))
        m = s.metrics()
        after = m.get("strand_upstream_retries_total", cluster="retry5xx")
        t.check("strand_upstream_retries_total{cluster=retry5xx} increased (%r -> %r)" % (before, after),
                after > before, m.describe("strand_upstream_retries_total"))
        t.check("upstream 503s counted as server_error",
                m.get("strand_upstream_requests_total", cluster="retry5xx", outcome="server_error") >= 1,
                m.describe("strand_upstream_requests_total"))

    with t.section("retry on 5xx sends the request body again", s):
        # Round robin over [503, echo]: about every other request is
        # answered 503 first and retried on the echo server, which must get
        # the whole body again (content-length and chunked with trailers).
        before = s.metrics().get("strand_upstream_retries_total", cluster="retrybody")
        bad = []
        for i in range(6):
            r = curl(base + "/retrybody/%d" % i, args=["-d", "payload-%d" % i], timeout=4)
            if r.status != 200 or b"body=payload-%d\n" % i not in r.body:
                bad.append((i, r.status, r.body[:80]))
        t.check("6 POSTs with a content-length: all 200 with their body echoed", not bad, repr(bad))
        bad = []
        for i in range(4):
            req = (b"POST /retrybody/c%d HTTP/1.1\r\nHost: strand.test\r\nConnection: close\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n2\r\n-%d\r\n0\r\n"
                   b"x-sum: %d\r\n\r\n" % (i, i, i))
            r = raw_http(web, req, timeout=4)
            want = b"body=chunk-%d\ntrailers=x-sum: %d;" % (i, i)
            if r.status != 200 or want not in r.data:
                bad.append((i, r.status, r.data[-120:]))
        t.check("4 chunked POSTs with trailers: all 200 with body and trailers echoed", not bad,
                repr(bad))
        after = s.metrics().get("strand_upstream_retries_total", cluster="retrybody")
        t.check("some of them were retried (%r -> %r)" % (before, after), after >= before + 3,
                "the 503 endpoint was not hit")

    with t.section("outlier ejection", s):
        first = curl_multi(base + "/outlier/[1-20]", timeout=4)
        m = s.metrics()
        ej = m.get("strand_upstream_ejections_total", cluster="outlier")
        t.check("strand_upstream_ejections_total{cluster=outlier} >= 1 after 20 requests", ej >= 1,
                m.describe("strand_upstream_ejections_total"))
        c1 = collections.Counter(r.status for r in first)
        t.check("before ejection the bad endpoint answered 500 at least 3 times", c1.get(500, 0) >= 3,
                repr(c1))
        later = curl_multi(base + "/outlier/[1-20]", timeout=4)
        c2 = collections.Counter(r.status for r in later)
        t.check("after ejection >= 90%% of requests are 200 (%r)" % dict(c2), c2.get(200, 0) >= 18,
                repr(c2))

    with t.section("route timeout -> 504", s):
        r = curl(base + "/slow/x", timeout=5)
        t.eq("backend answering after 3 s with a 500ms route timeout -> 504", r.status, 504)
        t.check("the slow backend did get the request", slow_timeout.requests >= 1,
                "requests=%d" % slow_timeout.requests)
        m = s.metrics()
        t.check("upstream timeout counted (outcome=timeout)",
                m.get("strand_upstream_requests_total", cluster="slow", outcome="timeout") >= 1,
                m.describe("strand_upstream_requests_total"))

    with t.section("cluster limits -> 503 naming the limit", s):
        first = curl_start(base + "/limited/0", timeout=8)
        got = wait_for(lambda: slow_limit.requests >= 1, 5)
        t.check("first request reached the slow backend", got, "requests=%d" % slow_limit.requests)
        others = [curl_start(base + "/limited/%d" % i, timeout=8) for i in range(1, 7)]
        results = [curl_collect(p, timeout=10) for p in [first] + others]
        codes = collections.Counter(r.status for r in results)
        rejected = [r for r in results if r.status == 503]
        t.check("some requests over maxConnections 1 + maxPendingRequests 1 -> 503", rejected,
                repr(codes))
        t.check("at least the first request succeeded", results[0].status == 200, repr(results[0]))
        t.check("every request answered 200 or 503 (none hung or dropped)",
                all(r.status in (200, 503) for r in results), repr(codes))
        words = ("overflow", "max", "limit")
        t.check("503 bodies name the limit (overflow/max/limit)",
                rejected and all(any(w in r.body.decode("utf-8", "replace").lower() for w in words)
                                 for r in rejected),
                repr([r.body[:200] for r in rejected]))
        t.check("the backend never saw more than one request at a time (maxConnections 1)",
                slow_limit.max_active <= 1, "max_active=%d" % slow_limit.max_active)

    with t.section("cluster limits hold across a reload", s):
        # The connection of the old configuration still counts against
        # maxConnections 1 after a reload: the next request waits for it
        # instead of opening a second connection.
        before = slow_limit.requests
        first = curl_start(base + "/limited/r1", timeout=8)
        got = wait_for(lambda: slow_limit.requests >= before + 1, 5)
        t.check("first request reached the slow backend", got, "requests=%d" % slow_limit.requests)
        t.eq("POST /reload while it is in flight -> 200", s.post_reload().status, 200)
        second = curl_start(base + "/limited/r2", timeout=8)
        results = [curl_collect(p, timeout=10) for p in (first, second)]
        t.eq("both requests answered 200", [r.status for r in results], [200, 200])
        t.check("the backend still never saw two requests at once",
                slow_limit.max_active <= 1, "max_active=%d" % slow_limit.max_active)

    with t.section("upstream reset", s):
        r = curl(base + "/reset/x", timeout=4)
        t.check("backend resetting the connection -> 502 or 503", r.status in (502, 503), repr(r))
        t.check("strand still running", s.alive(), s.describe())
        rs = curl_multi(base + "/ok/[1-5]", timeout=4)
        t.eq("other routes still served", [r.status for r in rs], [200] * 5)

    with t.section("shutdown", s):
        t.eq("SIGTERM -> exit 0", s.stop(), 0)

    t.finish()


if __name__ == "__main__":
    main()
