"""Routing: match operators, rule order, hostnames, direct responses, traffic
split, header manipulation, path rewrite, no-route 404 and consistent hashing.

Two real nginx backends answer with distinguishable bodies ("v1" / "v2").
Match operators are tested with directResponse rules whose body names the
rule, so the matched rule is visible without any backend.
"""

import collections
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Nginx, Suite, cluster_doc, curl, curl_multi, echo_return,  # noqa: E402
                     free_port, listener_doc, make_tmpdir, parse_echo, proxy_doc, route_doc,
                     start_strand)


def named(name, *conds):
    """A rule answering "rule=<name>" when all conds hold."""
    return {"name": name, "match": list(conds),
            "directResponse": {"status": 200, "body": "rule=%s\n" % name}}


def path(op, value, **mod):
    d = {"attribute": "path", op: value}
    d.update(mod)
    return d


def attr(a, op, value, **mod):
    d = {"attribute": a, op: value}
    d.update(mod)
    return d


RULES = [
    {"name": "direct", "match": [path("exact", "/direct")],
     "directResponse": {"status": 201, "body": "direct body\n", "contentType": "text/x-strand"}},
    named("exact", path("exact", "/m/exact")),
    named("prefix", path("prefix", "/m/prefix/")),
    named("suffix", path("prefix", "/m/suffix/"), path("suffix", ".jpg")),
    named("regex", path("regex", "^/m/re/[0-9]+$")),
    named("hdr-present", path("exact", "/m/hdr"), attr("header.x-flag", "present", True)),
    named("hdr-absent", path("exact", "/m/hdr"), attr("header.x-flag", "absent", True)),
    named("hdr-exact", path("exact", "/m/hdrval"), attr("header.x-env", "exact", "Prod")),
    named("hdr-icase", path("exact", "/m/hdrval"), attr("header.x-env", "exact", "prod", ignoreCase=True)),
    named("hdr-regex", path("exact", "/m/hdrre"), attr("header.x-ver", "regex", "^v[0-9]+$")),
    named("method-in", path("exact", "/m/method"), attr("method", "in", ["PUT", "DELETE"])),
    named("method-other", path("exact", "/m/method")),
    named("query-exact", path("exact", "/m/query"), attr("query.version", "exact", "2")),
    named("query-in", path("exact", "/m/query"), attr("query.color", "in", ["red", "blue"])),
    named("query-other", path("exact", "/m/query")),
    named("invert", path("prefix", "/m/inv/"), path("prefix", "/m/inv/admin", invert=True)),
    named("invert-fallback", path("prefix", "/m/inv/")),
    named("prefix-icase", path("prefix", "/m/case/", ignoreCase=True)),
    named("order-1", path("prefix", "/m/order")),
    named("order-2", path("exact", "/m/order/x")),   # shadowed by order-1
    {"name": "split", "match": [path("prefix", "/split")],
     "backends": [{"cluster": "v1", "weight": 80}, {"cluster": "v2", "weight": 20}]},
    {"name": "hash", "match": [path("prefix", "/hash")], "backends": [{"cluster": "both"}]},
    {"name": "headers", "match": [path("prefix", "/hdr/")], "backends": [{"cluster": "v1"}],
     "requestHeaders": {"set": {"x-a": "set-a"}, "add": {"x-c": "add-c"}, "remove": ["x-secret"]},
     "responseHeaders": {"set": {"x-set-me": "new"}, "add": {"x-added": "yes"},
                         "remove": ["x-remove-me"]}},
    {"name": "rewrite", "match": [path("prefix", "/api/")], "backends": [{"cluster": "v1"}],
     "rewrite": {"pathPrefix": "/"}},
    {"name": "rewrite2", "match": [path("prefix", "/old/")], "backends": [{"cluster": "v1"}],
     "rewrite": {"pathPrefix": "/new/"}},
]

# (description, method, path, headers, expected body or 404)
MATCH_CASES = [
    ("exact hit", "GET", "/m/exact", [], "exact"),
    ("exact: trailing slash is not exact", "GET", "/m/exact/", [], 404),
    ("exact: query string is not part of path", "GET", "/m/exact?a=1", [], "exact"),
    ("prefix hit", "GET", "/m/prefix/a/b", [], "prefix"),
    ("prefix miss", "GET", "/m/prefixx", [], 404),
    ("suffix hit (and prefix)", "GET", "/m/suffix/cat.jpg", [], "suffix"),
    ("suffix miss", "GET", "/m/suffix/cat.png", [], 404),
    ("regex hit", "GET", "/m/re/123", [], "regex"),
    ("regex miss", "GET", "/m/re/12a", [], 404),
    ("header present", "GET", "/m/hdr", ["X-Flag: 1"], "hdr-present"),
    ("header present (empty value)", "GET", "/m/hdr", ["X-Flag;"], "hdr-present"),
    ("header absent", "GET", "/m/hdr", [], "hdr-absent"),
    ("header exact", "GET", "/m/hdrval", ["X-Env: Prod"], "hdr-exact"),
    ("header exact is case-sensitive, ignoreCase rule catches", "GET", "/m/hdrval", ["X-Env: PROD"],
     "hdr-icase"),
    ("header name matched case-insensitively", "GET", "/m/hdrval", ["x-eNV: Prod"], "hdr-exact"),
    ("header exact miss", "GET", "/m/hdrval", ["X-Env: staging"], 404),
    ("header regex hit", "GET", "/m/hdrre", ["X-Ver: v12"], "hdr-regex"),
    ("header regex miss", "GET", "/m/hdrre", ["X-Ver: 12"], 404),
    ("method in (PUT)", "PUT", "/m/method", [], "method-in"),
    ("method in (DELETE)", "DELETE", "/m/method", [], "method-in"),
    ("method not in -> next rule", "GET", "/m/method", [], "method-other"),
    ("query exact", "GET", "/m/query?version=2", [], "query-exact"),
    ("query exact among others", "GET", "/m/query?a=b&version=2&c=d", [], "query-exact"),
    ("query exact miss -> in", "GET", "/m/query?version=3&color=blue", [], "query-in"),
    ("query neither", "GET", "/m/query?color=green", [], "query-other"),
    ("invert: non-admin", "GET", "/m/inv/public", [], "invert"),
    ("invert: admin falls through", "GET", "/m/inv/admin/x", [], "invert-fallback"),
    ("prefix ignoreCase", "GET", "/M/CASE/Thing", [], "prefix-icase"),
    ("first matching rule wins", "GET", "/m/order/x", [], "order-1"),
]


def main():
    t = Suite("test_routing")
    tmp = make_tmpdir("routing")

    with t.section("setup"):
        backends = {}
        for name in ("v1", "v2"):
            backends[name] = Nginx(tmp, [{
                "locations": {"/split": 'return 200 "%s\\n";' % name, "/": echo_return(name)},
                "extra": ("add_header X-Backend %s always; add_header X-Remove-Me yes always; "
                          "add_header X-Set-Me orig always;" % name),
            }], name="nginx-" + name).start()
        v1, v2 = backends["v1"], backends["v2"]
        admin, web, web2 = free_port(), free_port(), free_port()
        docs = [
            proxy_doc(admin),
            listener_doc("web", web),
            listener_doc("web2", web2),
            cluster_doc("v1", [v1.port]),
            cluster_doc("v2", [v2.port]),
            cluster_doc("both", [v1.port, v2.port], loadBalancer="consistent_hash",
                        hashOn="header.x-user"),
            route_doc("main", ["web"], RULES),
            route_doc("host-a", ["web2"], [{"directResponse": {"status": 200, "body": "host-a\n"}}],
                      hostnames=["a.example.com"]),
            route_doc("host-b", ["web2"], [{"directResponse": {"status": 200, "body": "host-b\n"}}],
                      hostnames=["b.example.com"]),
        ]
        s = start_strand(t, tmp, docs)
    if t.failed:
        t.finish()

    base = "http://127.0.0.1:%d" % web

    with t.section("match operators", s):
        for desc, method, p, headers, want in MATCH_CASES:
            r = curl(base + p, args=["-X", method], headers=headers)
            if want == 404:
                t.check("%s: %s %s -> 404" % (desc, method, p), r.status == 404, repr(r))
            else:
                t.check("%s: %s %s -> rule %s" % (desc, method, p, want),
                        r.status == 200 and r.body == ("rule=%s\n" % want).encode(), repr(r))

    with t.section("directResponse", s):
        r = curl(base + "/direct")
        t.eq("direct status", r.status, 201)
        t.eq("direct body", r.body, b"direct body\n")
        t.eq("direct content-type", r.header("content-type"), "text/x-strand")

    with t.section("no route -> 404", s):
        before = v1.access_count() + v2.access_count()
        r = curl(base + "/nothing/here")
        t.eq("unmatched path -> 404", r.status, 404)
        t.eq("404 did not touch a backend", v1.access_count() + v2.access_count(), before)

    with t.section("hostnames", s):
        b2 = "http://127.0.0.1:%d/anything" % web2
        r = curl(b2, headers=["Host: a.example.com"])
        t.check("Host a.example.com -> route host-a", r.status == 200 and r.body == b"host-a\n", repr(r))
        r = curl(b2, headers=["Host: b.example.com"])
        t.check("Host b.example.com -> route host-b", r.status == 200 and r.body == b"host-b\n", repr(r))
        r = curl(b2, headers=["Host: c.example.com"])
        t.eq("unknown Host -> 404", r.status, 404)

    with t.section("traffic split 80/20", s):
        rs = curl_multi(base + "/split/[1-500]", timeout=40)
        codes = collections.Counter(r.status for r in rs)
        bodies = collections.Counter(r.body for r in rs)
        t.check("500 responses, all 200", len(rs) == 500 and codes == {200: 500}, repr(codes))
        share = bodies[b"v1\n"] / max(1, len(rs))
        t.check("v1 share %.3f within 0.70..0.90" % share, 0.70 <= share <= 0.90, repr(bodies))
        t.check("only v1 and v2 answered", set(bodies) <= {b"v1\n", b"v2\n"}, repr(bodies))

    with t.section("request and response headers", s):
        r = curl(base + "/hdr/a", headers=["X-A: client-a", "X-Secret: s3cret"])
        e = parse_echo(r.body)
        t.eq("headers route -> 200 from v1", (r.status, e.get("backend")), (200, "v1"))
        t.eq("requestHeaders.set replaces the client value", e.get("xa"), "set-a")
        t.eq("requestHeaders.add adds a header", e.get("xc"), "add-c")
        t.eq("requestHeaders.remove drops x-secret", e.get("xsecret"), "")
        t.eq("responseHeaders.set replaces the upstream value", r.headers.get("x-set-me"), ["new"])
        t.check("responseHeaders.remove drops x-remove-me", "x-remove-me" not in r.headers,
                repr(r.headers))
        t.eq("responseHeaders.add adds a header", r.headers.get("x-added"), ["yes"])
        t.eq("other upstream headers kept", r.headers.get("x-backend"), ["v1"])
        r = curl(base + "/hdr/b", headers=["X-C: orig"])
        xc = parse_echo(r.body).get("xc", "")
        # nginx's $http_x_c shows the first x-c (or all, comma-joined): the
        # client's value must still be there, i.e. add did not replace it.
        t.check("requestHeaders.add keeps the client's value", "orig" in xc, repr(xc))

    with t.section("rewrite pathPrefix", s):
        e = parse_echo(curl(base + "/api/x?q=1").body)
        t.eq("/api/x?q=1 reaches the backend as /x?q=1", e.get("uri"), "/x?q=1")
        e = parse_echo(curl(base + "/old/thing").body)
        t.eq("/old/thing reaches the backend as /new/thing", e.get("uri"), "/new/thing")

    with t.section("consistent hash on header.x-user", s):
        rs = curl_multi(base + "/hash/[1-50]", headers=["X-User: alice"])
        seen = collections.Counter(parse_echo(r.body).get("backend") for r in rs)
        t.check("alice: 50 requests, all to one backend",
                len(rs) == 50 and len(seen) == 1 and None not in seen, repr(seen))
        # 64 users: even a ring as lopsided as 90/10 puts them all on one
        # backend with probability 0.9**64 ~ 0.1%.
        per_user = {}
        for i in range(64):
            rs = curl_multi(base + "/hash/u[1-3]", headers=["X-User: user-%d" % i])
            per_user[i] = {parse_echo(r.body).get("backend") for r in rs}
        t.check("each user sticks to one backend (3 requests each)",
                all(len(v) == 1 and None not in v for v in per_user.values()), repr(per_user))
        spread = collections.Counter(b for v in per_user.values() for b in v)
        t.check("64 users spread over both backends %r" % dict(spread),
                set(spread) == {"v1", "v2"}, repr(per_user))
        r = curl(base + "/hash/anon")
        t.eq("request without x-user still served", r.status, 200)

    with t.section("shutdown", s):
        t.eq("SIGTERM -> exit 0", s.stop(), 0)

    t.finish()


if __name__ == "__main__":
    main()
