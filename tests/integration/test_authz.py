"""AuthorizationPolicy: allow and deny by identity and attributes, answered
in each protocol's own words (HTTP 403 with the policy named, a closed TCP
connection), applied to direct responses too, changed by reload.

Clients present certificates with SPIFFE IDs (made by the test with the
openssl CLI, see test_tls.make_pki) to a TLS listener with client-certificate
verification; nginx is the backend.
"""

import os
import socket
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, Nginx, Suite, cluster_doc, curl, echo_return, free_port,  # noqa: E402
                     listener_doc, make_tmpdir, proxy_doc, route_doc, start_strand)
from test_tls import WEB_ID, make_pki  # noqa: E402

OPS_ID = "spiffe://cluster.local/ns/default/sa/db"   # the "db" certificate of make_pki


def policy(name, targets, action, rules):
    return {"apiVersion": API, "kind": "AuthorizationPolicy", "metadata": {"name": name},
            "spec": {"targets": targets, "action": action,
                     "rules": [{"match": r} for r in rules]}}


def main():
    t = Suite("test_authz")
    tmp = make_tmpdir("authz")
    pki = os.path.join(tmp, "pki")
    os.makedirs(pki)
    P = lambda n: os.path.join(pki, n)  # noqa: E731

    with t.section("setup"):
        make_pki(pki)
        ng = Nginx(tmp, [{"/": echo_return("nginx")}])
        ng.start()
        admin, edge, inner, tcp = free_port(), free_port(), free_port(), free_port()
        tls = {"certificates": [{"certFile": P("localhost.pem"), "keyFile": P("localhost.key")}],
               "clientCA": P("ca.pem")}
        base = [
            proxy_doc(admin, workers=1),
            listener_doc("edge", edge, tls=tls),
            listener_doc("inner", inner, tls=tls),
            listener_doc("tcp", tcp, protocol="tcp"),
            cluster_doc("nginx", [ng.port]),
            route_doc("web", ["edge", "inner"], [
                {"name": "hello", "match": [{"attribute": "path", "exact": "/hello"}],
                 "directResponse": {"status": 200, "body": "hello\n"}},
                {"name": "all", "backends": [{"cluster": "nginx"}]}]),
            route_doc("tcp", ["tcp"], [{"backends": [{"cluster": "nginx"}]}]),
        ]
        policies = [
            # /admin only for the ops identity (the db certificate here).
            policy("admin-guard", ["edge"], "DENY", [[
                {"attribute": "path", "prefix": "/admin"},
                {"attribute": "source.identity", "exact": OPS_ID, "invert": True}]]),
            policy("no-delete", ["edge"], "DENY", [[{"attribute": "method", "exact": "DELETE"}]]),
            # The inner listener serves the web identity only.
            policy("web-only", ["inner"], "ALLOW", [[
                {"attribute": "source.identity", "exact": WEB_ID}]]),
            policy("tcp-deny-local", ["tcp"], "DENY", [[
                {"attribute": "source.address", "exact": "127.0.0.1"}]]),
        ]
        s = start_strand(t, tmp, [base + policies])
        ca = ["--cacert", P("ca.pem")]
        web = ca + ["--cert", P("web.pem"), "--key", P("web.key")]
        ops = ca + ["--cert", P("db.pem"), "--key", P("db.key")]
        e = "https://localhost:%d" % edge
        i = "https://localhost:%d" % inner

    with t.section("DENY policies"):
        r = curl(e + "/admin/users", args=web)
        t.eq("web identity on /admin -> 403", r.status, 403)
        t.check("the refusal names the policy", b"admin-guard" in r.body, repr(r.body))
        t.eq("ops identity on /admin -> 200", curl(e + "/admin/users", args=ops).status, 200)
        t.eq("anonymous on /admin -> 403", curl(e + "/admin/users", args=ca).status, 403)
        t.eq("web identity elsewhere -> 200", curl(e + "/public", args=web).status, 200)
        r = curl(e + "/public", args=ops + ["-X", "DELETE"])
        t.eq("DELETE from anyone -> 403", r.status, 403)
        t.check("named no-delete", b"no-delete" in r.body, repr(r.body))
        r = curl(e + "/hello", args=web + ["-X", "DELETE"])
        t.eq("policies apply to direct responses too", r.status, 403)
        r = curl_two(e, web)
        t.check("a refused request leaves the connection usable", r, "second request failed")

    with t.section("ALLOW policies"):
        t.eq("inner: web identity -> 200", curl(i + "/x", args=web).status, 200)
        r = curl(i + "/x", args=ops)
        t.eq("inner: another identity -> 403", r.status, 403)
        t.check("says no ALLOW policy matched", b"no ALLOW policy matched" in r.body, repr(r.body))
        t.eq("inner: anonymous -> 403", curl(i + "/x", args=ca).status, 403)

    with t.section("TCP refusal"):
        c = socket.create_connection(("127.0.0.1", tcp), timeout=5)
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = c.recv(65536)
        except ConnectionResetError:
            got = b""
        c.close()
        t.eq("denied TCP connection closed without data", got, b"")
        m = s.metrics()
        t.check("denials counted per listener",
                m.get("strand_authz_denied_total", listener="edge") >= 5
                and m.get("strand_authz_denied_total", listener="tcp") >= 1,
                m.describe("strand_authz_denied_total"))

    with t.section("reload changes policies"):
        s.write([base + policies[:1] + policies[2:3]])  # no-delete and the tcp deny gone
        t.eq("POST /reload -> 200", s.post_reload().status, 200)
        t.eq("DELETE now allowed", curl(e + "/public", args=ops + ["-X", "DELETE"]).status, 200)
        t.eq("admin-guard still in force", curl(e + "/admin/x", args=web).status, 403)

    with t.section("shutdown"):
        t.eq("SIGTERM -> exit 0", s.stop(), 0)
    return t.finish()


def curl_two(base, args):
    """A refused request then an allowed one on the same connection."""
    from harness import curl_multi
    rs = curl_multi([base + "/admin/a", base + "/public"], args=args)
    return (len(rs) == 2 and rs[0].status == 403 and rs[1].status == 200
            and rs[-1].num_connects == 0)


if __name__ == "__main__":
    sys.exit(main())
