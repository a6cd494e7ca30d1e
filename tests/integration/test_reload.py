"""Configuration reload under load, invalid reloads, listeners added and
removed by reload.

strand runs with two files (-c a.yaml -c b.yaml). wrk drives 32 connections
for 3 s while the test rewrites the config and reloads six times (3x SIGHUP,
3x POST /reload): wrk must see no socket error and no non-2xx, and each new
config must become visible. Then an invalid config (unknown key) must be
refused with FILE:LINE, leaving the old config serving.
"""

import collections
import os
import re
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Nginx, Strand, Suite, cluster_doc, connect_refused, curl,  # noqa: E402
                     curl_multi, dump_docs, free_port, line_of, listener_doc, make_tmpdir,
                     port_accepts, proxy_doc, route_doc, wait_for, wrk_collect, wrk_start)


class Cfg:
    def __init__(self, admin, web, web2, v1, v2):
        self.admin, self.web, self.web2, self.v1, self.v2 = admin, web, web2, v1, v2

    def files(self, gen, w1=1, w2=1, with_web2=False, bogus=False):
        a = [proxy_doc(self.admin, drainTimeout="5s"), listener_doc("web", self.web)]
        if with_web2:
            a.append(listener_doc("web2", self.web2))
        v2spec = {}
        if bogus:
            v2spec["bogusKey"] = 1        # unknown key: the whole config is rejected
        b = [
            cluster_doc("v1", [self.v1]),
            cluster_doc("v2", [self.v2], **v2spec),
            route_doc("main", ["web"], [
                {"name": "direct", "match": [{"attribute": "path", "exact": "/direct"}],
                 "directResponse": {"status": 200, "body": "gen-%d\n" % gen}},
                {"name": "w", "match": [{"attribute": "path", "prefix": "/w"}],
                 "backends": [{"cluster": "v1", "weight": w1}, {"cluster": "v2", "weight": w2}]},
            ]),
        ]
        if with_web2:
            b.append(route_doc("second", ["web2"], [
                {"directResponse": {"status": 200, "body": "web2\n"}}]))
        return [dump_docs(a), dump_docs(b)]


def main():
    t = Suite("test_reload")
    tmp = make_tmpdir("reload")

    with t.section("setup"):
        nv1 = Nginx(tmp, [{"/": 'return 200 "v1\\n";'}], name="nginx-v1").start()
        nv2 = Nginx(tmp, [{"/": 'return 200 "v2\\n";'}], name="nginx-v2").start()
        cfg = Cfg(free_port(), free_port(), free_port(), nv1.port, nv2.port)
        s = t.track(Strand(tmp, cfg.files(0)))
        s.start()
    if t.failed:
        t.finish()

    base = "http://127.0.0.1:%d" % cfg.web

    def direct_body():
        return curl(base + "/direct").body

    with t.section("initial config", s):
        t.eq("/direct serves gen-0", direct_body(), b"gen-0\n")

    with t.section("reloads under load", s):
        before = s.reload_counts()
        w = wrk_start(base + "/w", duration=3, connections=32, threads=2)
        loaded = wait_for(lambda: nv1.access_count() + nv2.access_count() > 0, 5)
        t.check("wrk traffic reached the backends", loaded, "no requests in nginx access logs")
        under_load = 0
        for gen in range(1, 7):
            s.write(cfg.files(gen, w1=1 + gen % 3, w2=1))
            if gen % 2:
                res = s.reload_sighup()
                t.eq("reload %d by SIGHUP -> ok" % gen, res, "ok")
            else:
                r = s.post_reload()
                t.check("reload %d by POST /reload -> 200" % gen, r.status == 200, repr(r))
            want = b"gen-%d\n" % gen
            t.check("reload %d: /direct serves gen-%d" % (gen, gen),
                    wait_for(lambda: direct_body() == want, 5), repr(direct_body()))
            if w.poll() is None:
                under_load += 1
        res = wrk_collect(w)
        print("    (%d of 6 reloads completed while wrk was running; %r)" % (under_load, res))
        t.check("wrk completed requests", res.requests and res.requests > 0, res.out)
        t.eq("wrk: no socket errors during reloads", res.socket_errors,
             {"connect": 0, "read": 0, "write": 0, "timeout": 0})
        t.eq("wrk: no non-2xx responses during reloads", res.non2xx, 0)
        after = s.reload_counts()
        t.check("strand_config_reloads_total{result=ok} grew by 6 (%r -> %r)" % (before, after),
                before and after and after[0] - before[0] == 6, repr((before, after)))

    with t.section("new weights visible after reload", s):
        s.write(cfg.files(7, w1=0, w2=1))
        r = s.post_reload()
        t.check("POST /reload -> 200", r.status == 200, repr(r))
        rs = curl_multi(base + "/w/[1-20]")
        bodies = collections.Counter(r.body for r in rs)
        t.check("weight v1=0, v2=1: 20 of 20 requests to v2", bodies == {b"v2\n": 20}, repr(bodies))

    with t.section("invalid config by POST /reload", s):
        before = s.reload_counts()
        files = cfg.files(99, bogus=True)
        line = line_of(files[1], "bogusKey")
        s.write(files)
        r = s.post_reload()
        t.eq("POST /reload with an unknown key -> 400", r.status, 400)
        pat = r"config-1\.yaml:%d: \S" % line
        t.check("error names FILE:LINE (config-1.yaml:%d: reason)" % line, re.search(pat, r.text),
                "body: %r" % r.text[:500])
        t.eq("old config still serving", direct_body(), b"gen-7\n")
        after = s.reload_counts()
        t.check("strand_config_reloads_total{result=error} incremented",
                before and after and after[1] == before[1] + 1, repr((before, after)))

    with t.section("invalid config by SIGHUP", s):
        before = s.reload_counts()
        res = s.reload_sighup()
        t.eq("SIGHUP with an invalid config -> reload error", res, "error")
        after = s.reload_counts()
        t.check("strand_config_reloads_total{result=error} incremented again",
                before and after and after[1] == before[1] + 1, repr((before, after)))
        t.check("strand still running", s.alive(), s.describe())
        t.eq("old config still serving after bad SIGHUP", direct_body(), b"gen-7\n")
        t.eq("old weights still in force", collections.Counter(r.body for r in curl_multi(base + "/w/[1-5]")),
             collections.Counter({b"v2\n": 5}))

    with t.section("listener added by reload", s):
        s.write(cfg.files(8, with_web2=True))
        r = s.post_reload()
        t.check("POST /reload adding listener web2 -> 200", r.status == 200, repr(r))
        t.check("web2 accepts connections", wait_for(lambda: port_accepts(cfg.web2), 5),
                "port %d not accepting" % cfg.web2)
        r = curl("http://127.0.0.1:%d/x" % cfg.web2)
        t.check("web2 serves its route", r.status == 200 and r.body == b"web2\n", repr(r))
        t.eq("web serves gen-8", direct_body(), b"gen-8\n")

    with t.section("listener removed by reload", s):
        s.write(cfg.files(9, with_web2=False))
        r = s.post_reload()
        t.check("POST /reload removing listener web2 -> 200", r.status == 200, repr(r))
        t.check("web2 stops accepting (connection refused)",
                wait_for(lambda: connect_refused(cfg.web2), 8), "port %d still accepting" % cfg.web2)
        t.eq("web still serves, gen-9", direct_body(), b"gen-9\n")

    with t.section("shutdown", s):
        t.eq("SIGTERM -> exit 0", s.stop(), 0)

    t.finish()


if __name__ == "__main__":
    main()
