"""Admin API, metrics, access log and the CLI.

/ready, /config (JSON), /metrics (promtool-clean, exact per-route counts,
histogram counts, upstream outcomes, connection gauges), the JSON access log,
`strand validate` (ok and FILE:LINE errors), `strand version`, bad usage.
"""

import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PROMTOOL, Nginx, Suite, cluster_doc, curl, curl_multi, dump_docs,  # noqa: E402
                     free_port, line_of, listener_doc, make_tmpdir, proxy_doc, route_doc,
                     start_strand, strand_cli, wait_for)


def json_strings(v):
    """Every string (keys and values) inside a JSON value."""
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from json_strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from json_strings(x)


def good_docs(admin, web, ng_port, access_log=None):
    spec = {"accessLog": {"path": access_log}} if access_log else {}
    return [
        proxy_doc(admin, **spec),
        listener_doc("web", web),
        cluster_doc("nginx", [ng_port]),
        route_doc("main", ["web"], [
            {"name": "ok", "match": [{"attribute": "path", "prefix": "/ok"}],
             "backends": [{"cluster": "nginx"}]},
            {"name": "missing", "match": [{"attribute": "path", "prefix": "/missing"}],
             "backends": [{"cluster": "nginx"}]},
            {"name": "err", "match": [{"attribute": "path", "prefix": "/err"}],
             "backends": [{"cluster": "nginx"}]},
            # unnamed: its route label is "main/3"
            {"match": [{"attribute": "path", "exact": "/direct"}],
             "directResponse": {"status": 200, "body": "direct\n"}},
        ]),
    ]


GOOD_TEXT_HEAD = """apiVersion: strand.dev/v1alpha1
kind: Proxy
metadata: {name: default}
spec:
  admin: {address: 127.0.0.1:%(admin)d}
---
apiVersion: strand.dev/v1alpha1
kind: Listener
metadata: {name: web}
spec:
  address: 127.0.0.1:%(web)d
  protocol: http
%(listener_extra)s---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: c1}
spec:
  endpoints:
  - {address: 127.0.0.1:%(ep)d}
---
apiVersion: strand.dev/v1alpha1
kind: Route
metadata: {name: r}
spec:
  parents: [web]
  rules:
  - name: a
    match:
    - {attribute: path, %(match)s}
    backends:
    - {cluster: %(cluster)s}
"""


def validate_text(**kw):
    d = {"admin": 19901, "web": 19902, "ep": 19903, "listener_extra": "",
         "match": "prefix: /", "cluster": "c1"}
    d.update(kw)
    return GOOD_TEXT_HEAD % d


# (description, YAML text, marker of the line the error must name or None)
BAD_CONFIGS = [
    ("unknown key", validate_text(listener_extra="  listenBacklog: 5\n"), "listenBacklog"),
    ("bad duration", validate_text(listener_extra="  idleTimeout: 5parsecs\n"), "idleTimeout"),
    ("bufferBytes out of range", None, "bufferBytes"),
    ("invalid regex", validate_text(match="regex: '(['"), "regex:"),
    ("unknown cluster reference", validate_text(cluster="nope"), None),
    ("unknown kind", validate_text().replace("kind: Route", "kind: Gateway"), None),
    ("YAML syntax error", validate_text() + "  - {unclosed: [\n", None),
]


def main():
    t = Suite("test_admin")
    tmp = make_tmpdir("admin")
    access_log = os.path.join(tmp, "access.log")

    with t.section("setup"):
        ng = Nginx(tmp, [{
            "/ok": 'return 200 "ok\\n";',
            "/missing": 'return 404 "nope\\n";',
            "/err": 'return 500 "broken\\n";',
        }]).start()
        admin, web = free_port(), free_port()
        docs = good_docs(admin, web, ng.port, access_log)
        s = start_strand(t, tmp, docs)
    if t.failed:
        t.finish()
    base = "http://127.0.0.1:%d" % web

    with t.section("/ready and /config", s):
        t.eq("GET /ready -> 200", s.admin("/ready").status, 200)
        r = s.admin("/config")
        t.eq("GET /config -> 200", r.status, 200)
        try:
            cfg = json.loads(r.body)
        except ValueError as e:
            cfg = None
            t.check("/config is JSON", False, "%s: %r" % (e, r.body[:300]))
        if cfg is not None:
            t.check("/config is JSON", True)
            strings = set(json_strings(cfg))
            t.check("/config contains the listener name 'web'", "web" in strings, r.text[:500])
            t.check("/config contains the cluster name 'nginx'", "nginx" in strings, r.text[:500])
        t.eq("unknown admin path -> 404", s.admin("/no-such-admin-page").status, 404)

    sent = {"ok": 0, "missing": 0, "err": 0, "direct": 0}
    with t.section("traffic", s):
        rs = curl_multi(base + "/ok/[1-6]")
        r = curl(base + "/ok/post?x=1", args=["--data-binary", "hello"])
        t.eq("/ok: 6 GET + 1 POST -> 200", [x.status for x in rs] + [r.status], [200] * 7)
        sent["ok"] = 7
        rs = curl_multi(base + "/missing/[1-3]")
        t.eq("/missing -> 404 x3", [x.status for x in rs], [404] * 3)
        sent["missing"] = 3
        rs = curl_multi(base + "/err/[1-2]")
        t.eq("/err -> 500 x2", [x.status for x in rs], [500] * 2)
        sent["err"] = 2
        rs = curl_multi(base + "/direct?n=[1-4]")
        t.eq("/direct -> 200 x4", [x.status for x in rs], [200] * 4)
        sent["direct"] = 4
    total = sum(sent.values())
    connections = 5     # five curl invocations, each one keep-alive connection

    with t.section("metrics: counts", s):
        want = [
            (dict(listener="web", route="main/ok", cluster="nginx", code="2xx"), sent["ok"]),
            (dict(listener="web", route="main/missing", cluster="nginx", code="4xx"), sent["missing"]),
            (dict(listener="web", route="main/err", cluster="nginx", code="5xx"), sent["err"]),
            (dict(listener="web", route="main/3", cluster="", code="2xx"), sent["direct"]),
        ]

        def settled():
            m = s.metrics()
            ok = all(m.get("strand_http_requests_total", **lbl) == n for lbl, n in want)
            ok = ok and m.get("strand_http_request_duration_seconds_count") == total
            ok = ok and m.get("strand_downstream_connections_active", listener="web") == 0
            return m if ok else None
        m = wait_for(settled, 5, interval=0.1) or s.metrics()
        for lbl, n in want:
            t.eq("strand_http_requests_total%s == %d" % (json.dumps(lbl, sort_keys=True), n),
                 m.get("strand_http_requests_total", **lbl), n)
        t.eq("strand_http_requests_total sums to %d" % total, m.get("strand_http_requests_total"), total)
        for route, n in (("main/ok", sent["ok"]), ("main/3", sent["direct"])):
            t.eq("histogram _count{route=%s} == %d" % (route, n),
                 m.get("strand_http_request_duration_seconds_count", route=route), n)
            t.eq("histogram _bucket{route=%s,le=+Inf} == %d" % (route, n),
                 m.get("strand_http_request_duration_seconds_bucket", route=route, le="+Inf"), n)
        t.eq("histogram counts sum to the number of requests",
             m.get("strand_http_request_duration_seconds_count"), total)
        series = {}
        for l, v in m.find("strand_http_request_duration_seconds_bucket"):
            key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
            series.setdefault(key, []).append((float(l["le"]), v))
        not_cumulative = {k: b for k, b in series.items()
                          if any(a[1] > c[1] for a, c in zip(sorted(b), sorted(b)[1:]))}
        t.check("histogram buckets are cumulative (every series)", series and not not_cumulative,
                repr(not_cumulative)[:1000])
        t.check("histogram _sum present and >= 0",
                m.find("strand_http_request_duration_seconds_sum", route="main/ok")
                and m.get("strand_http_request_duration_seconds_sum", route="main/ok") >= 0,
                m.describe("strand_http_request_duration_seconds_sum"))
        ep = "127.0.0.1:%d" % ng.port
        for outcome, n in (("ok", sent["ok"]), ("client_error", sent["missing"]),
                           ("server_error", sent["err"])):
            t.eq("strand_upstream_requests_total{cluster=nginx,endpoint=%s,outcome=%s} == %d"
                 % (ep, outcome, n),
                 m.get("strand_upstream_requests_total", cluster="nginx", endpoint=ep, outcome=outcome), n)
        t.eq("strand_downstream_connections_total{listener=web} == %d" % connections,
             m.get("strand_downstream_connections_total", listener="web"), connections)
        t.eq("strand_downstream_connections_active{listener=web} back to 0",
             m.get("strand_downstream_connections_active", listener="web"), 0)
        t.check("strand_downstream_bytes_received_total{listener=web} > 0",
                m.get("strand_downstream_bytes_received_total", listener="web") > 0,
                m.describe("strand_downstream_bytes_received_total"))
        t.check("strand_downstream_bytes_sent_total{listener=web} > 0",
                m.get("strand_downstream_bytes_sent_total", listener="web") > 0,
                m.describe("strand_downstream_bytes_sent_total"))
        t.check("strand_upstream_connections_active{cluster=nginx} is exported",
                m.find("strand_upstream_connections_active", cluster="nginx"),
                m.describe("strand_upstream_connections_active"))
        t.check("every /metrics line parses", not m.bad_lines, repr(m.bad_lines[:5]))

    with t.section("metrics: promtool", s):
        t.check("promtool is installed at %s" % PROMTOOL, os.path.exists(PROMTOOL), "missing")
        if os.path.exists(PROMTOOL):
            text = s.metrics_text()
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=20)
            t.check("promtool check metrics passes",
                    p.returncode == 0,
                    "rc=%d\n%s%s" % (p.returncode, p.stdout.decode(), p.stderr.decode()))

    with t.section("access log", s):
        def entries():
            try:
                with open(access_log) as f:
                    lines = [ln for ln in f.read().splitlines() if ln.strip()]
            except OSError:
                return None
            return lines if len(lines) >= total else None
        lines = wait_for(entries, 5, interval=0.1) or []
        parsed, bad = [], []
        for ln in lines:
            try:
                parsed.append(json.loads(ln))
            except ValueError:
                bad.append(ln)
        t.check("access log lines are JSON", lines and not bad, repr(bad[:3]))
        ours = [e for e in parsed if isinstance(e, dict) and
                str(e.get("path", "")).startswith(("/ok", "/missing", "/err", "/direct"))]
        t.eq("one access-log line per proxied request", len(ours), total)
        missing_fields = [e for e in ours if not all(k in e for k in ("method", "path", "status", "route"))]
        t.check("every line has method, path, status, route", ours and not missing_fields,
                repr(missing_fields[:2]))
        post = [e for e in ours if e.get("method") == "POST"]
        t.check("POST line: path /ok/post, status 200, route main/ok",
                len(post) == 1 and str(post[0].get("path", "")).startswith("/ok/post")
                and str(post[0].get("status")) == "200" and post[0].get("route") == "main/ok",
                repr(post))
        n404 = [e for e in ours if str(e.get("status")) == "404" and e.get("route") == "main/missing"]
        t.eq("three 404 lines for route main/missing", len(n404), 3)
        n500 = [e for e in ours if str(e.get("status")) == "500" and e.get("route") == "main/err"]
        t.eq("two 500 lines for route main/err", len(n500), 2)
        nd = [e for e in ours if e.get("route") == "main/3" and e.get("method") == "GET"]
        t.eq("four lines for the unnamed direct rule main/3", len(nd), 4)

    with t.section("shutdown", s):
        t.eq("SIGTERM -> exit 0", s.stop(), 0)

    with t.section("strand validate"):
        good = os.path.join(tmp, "good.yaml")
        with open(good, "w") as f:
            f.write(dump_docs(good_docs(free_port(), free_port(), ng.port)))
        p = strand_cli(["validate", "-c", good])
        t.check("validate good config -> exit 0, prints ok", p.returncode == 0 and "ok" in p.stdout,
                "rc=%d out=%r err=%r" % (p.returncode, p.stdout, p.stderr))
        a, b = os.path.join(tmp, "a.yaml"), os.path.join(tmp, "b.yaml")
        docs = good_docs(free_port(), free_port(), ng.port)
        with open(a, "w") as f:
            f.write(dump_docs(docs[:2]))
        with open(b, "w") as f:
            f.write(dump_docs(docs[2:]))
        p = strand_cli(["validate", "-c", a, "-c", b])
        t.check("validate two files as one set -> exit 0", p.returncode == 0 and "ok" in p.stdout,
                "rc=%d out=%r err=%r" % (p.returncode, p.stdout, p.stderr))

        for i, (desc, text, marker) in enumerate(BAD_CONFIGS):
            if text is None:   # bufferBytes below 1024
                text = validate_text().replace("  admin: {address",
                                               "  bufferBytes: 10\n  admin: {address")
            path = os.path.join(tmp, "bad%d.yaml" % i)
            with open(path, "w") as f:
                f.write(text)
            p = strand_cli(["validate", "-c", path])
            name = os.path.basename(path)
            m = re.search(re.escape(name) + r":(\d+): \S", p.stderr)
            t.check("validate %s -> exit 1 with %s:LINE: reason on stderr" % (desc, name),
                    p.returncode == 1 and m, "rc=%d out=%r err=%r" % (p.returncode, p.stdout, p.stderr))
            if marker and m:
                t.eq("validate %s names line of %r" % (desc, marker), int(m.group(1)),
                     line_of(text, marker))
        p = strand_cli(["validate", "-c", os.path.join(tmp, "does-not-exist.yaml")])
        t.check("validate a missing file -> non-zero exit, names the file",
                p.returncode != 0 and "does-not-exist.yaml" in p.stderr,
                "rc=%d err=%r" % (p.returncode, p.stderr))

    with t.section("strand version and usage"):
        p = strand_cli(["version"])
        t.check("strand version -> 'strand <version>'",
                p.returncode == 0 and re.fullmatch(r"strand \S+", p.stdout.strip()),
                "rc=%d out=%r err=%r" % (p.returncode, p.stdout, p.stderr))
        for args in (["proxy", "--no-such-flag", "-c", good], ["validate", "--bogus", "-c", good],
                     ["frobnicate"], []):
            p = strand_cli(args)
            out = (p.stdout + p.stderr).lower()
            t.check("strand %s -> non-zero exit with usage" % " ".join(args),
                    p.returncode != 0 and "usage" in out,
                    "rc=%d out=%r err=%r" % (p.returncode, p.stdout, p.stderr))
        p = strand_cli(["validate"])
        t.check("strand validate without -c -> non-zero exit", p.returncode != 0,
                "rc=%d out=%r err=%r" % (p.returncode, p.stdout, p.stderr))

    t.finish()


if __name__ == "__main__":
    main()
