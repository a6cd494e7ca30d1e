"""gRPC over HTTP/2 with mutual TLS between two Strand proxies.

    grpc client --h2c--> front --h2 over mTLS (client cert: web or db)--> edge --h2c--> peers

The test makes its CA and certificates with the openssl CLI (test_tls.py's
make_pki). The front proxy has two clusters to the same edge listener, one
presenting the web identity and one the db identity; edge routes on
source.identity (web -> peer a, db -> peer b, each answers with its name in
x-peer) and an AuthorizationPolicy denies ClientStream to web. Checks: the
upstream hop negotiates h2 by ALPN (edge logs the calls as grpc), identity
routing, a denial arrives as PERMISSION_DENIED through both proxies,
streaming works across the two hops, and a client certificate from an
unknown CA gets no answer from edge (front reports UNAVAILABLE).
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402

import grpc_peer as gp  # noqa: E402
from harness import (Suite, cluster_doc, free_port, listener_doc, make_tmpdir,  # noqa: E402
                     proxy_doc, route_doc, spawn, start_strand)
from test_tls import DB_ID, WEB_ID, make_pki  # noqa: E402

API = "strand.dev/v1alpha1"


def policy(name, targets, action, rules):
    return {"apiVersion": API, "kind": "AuthorizationPolicy", "metadata": {"name": name},
            "spec": {"targets": targets, "action": action,
                     "rules": [{"match": r} for r in rules]}}


def main():
    t = Suite("test_h2_mtls")
    tmp = make_tmpdir("h2mtls")
    pki = os.path.join(tmp, "pki")
    os.makedirs(pki)
    edge_log = os.path.join(tmp, "edge-access.log")

    def f(name):
        return os.path.join(pki, name)

    with t.section("setup"):
        make_pki(pki)
        pa_proc, pa = gp.start_peer("a", 0, spawn=spawn, stderr_path=os.path.join(tmp, "a.log"))
        pb_proc, pb = gp.start_peer("b", 0, spawn=spawn, stderr_path=os.path.join(tmp, "b.log"))
        edge_admin, edge_port, front_admin, front_port = (free_port() for _ in range(4))
        h2 = {"protocol": "http2"}
        edge = start_strand(t, os.path.join(tmp, "edge"), [
            proxy_doc(edge_admin, workers=1, accessLog={"path": edge_log}),
            listener_doc("edge", edge_port, tls={
                "certificates": [{"certFile": f("localhost.pem"), "keyFile": f("localhost.key")}],
                "clientCA": f("ca.pem"), "requireClientCert": True}),
            cluster_doc("peer-a", [pa], **h2),
            cluster_doc("peer-b", [pb], **h2),
            route_doc("edge", ["edge"], [
                {"name": "web", "match": [{"attribute": "source.identity", "exact": WEB_ID},
                                          {"attribute": "tls.alpn", "exact": "h2"}],
                 "backends": [{"cluster": "peer-a"}]},
                {"name": "db", "match": [{"attribute": "source.identity", "exact": DB_ID}],
                 "backends": [{"cluster": "peer-b"}]},
            ]),
            policy("web-no-client-stream", ["edge"], "DENY", [
                [{"attribute": "source.identity", "exact": WEB_ID},
                 {"attribute": "grpc.method", "exact": "ClientStream"}]]),
        ])

        def to_edge(name, cert):
            return cluster_doc(name, [edge_port], tls={
                "caFile": f("ca.pem"), "sni": "localhost",
                "certFile": f(cert + ".pem"), "keyFile": f(cert + ".key")}, **h2)

        front = start_strand(t, os.path.join(tmp, "front"), [
            proxy_doc(front_admin, workers=1),
            listener_doc("front", front_port),
            to_edge("as-web", "web"),
            to_edge("as-db", "db"),
            to_edge("as-rogue", "rogue"),
            route_doc("front", ["front"], [
                {"name": "db", "match": [{"attribute": "header.x-as", "exact": "db"}],
                 "backends": [{"cluster": "as-db"}]},
                {"name": "rogue", "match": [{"attribute": "header.x-as", "exact": "rogue"}],
                 "backends": [{"cluster": "as-rogue"}]},
                {"name": "web", "backends": [{"cluster": "as-web"}]},
            ]),
        ])
    if t.failed:
        return t.finish()

    ch = gp.channel(front_port)
    with t.section("identity over the HTTP/2 mTLS hop", front):
        code, _, resp, md = gp.call_unary(ch, b"hello web")
        t.check("web identity: unary OK through both proxies", code == grpc.StatusCode.OK
                and resp == b"hello web", "%r %r" % (code, resp))
        t.eq("... edge routed it on source.identity to peer a", md.get("x-peer"), "a")
        code, _, resp, md = gp.call_unary(ch, b"hello db", metadata=[("x-as", "db")])
        t.check("db identity: unary OK", code == grpc.StatusCode.OK and resp == b"hello db",
                "%r %r" % (code, resp))
        t.eq("... to peer b", md.get("x-peer"), "b")
        msgs = list(gp.server_stream(ch)(b"200:1000", timeout=5))
        t.check("server streaming across both hops: 200 x 1000 bytes",
                len(msgs) == 200 and all(len(m) == 1000 for m in msgs), "%d messages" % len(msgs))

    with t.section("policy on identity answers in gRPC's words", front):
        try:
            r = gp.client_stream(ch)(iter([b"a", b"b"]), timeout=5)
            t.check("web ClientStream denied", False, "got %r" % r)
        except grpc.RpcError as e:
            t.check("web ClientStream -> PERMISSION_DENIED naming the policy",
                    e.code() == grpc.StatusCode.PERMISSION_DENIED
                    and "web-no-client-stream" in (e.details() or ""),
                    "%s %s" % (e.code(), e.details()))
        try:
            r = gp.client_stream(ch)(iter([b"a", b"bc"]), timeout=5, metadata=[("x-as", "db")])
            t.eq("db ClientStream allowed: the peer counted 3 bytes", r, b"3")
        except grpc.RpcError as e:
            t.check("db ClientStream allowed", False, "%s %s" % (e.code(), e.details()))
        code, _, resp, _ = gp.call_unary(ch, b"still fine")
        t.check("the connection still serves web's unary calls", code == grpc.StatusCode.OK,
                repr(code))

    with t.section("untrusted client certificate", front):
        code, details, _, _ = gp.call_unary(ch, b"x", metadata=[("x-as", "rogue")], timeout=5)
        t.check("rogue CA: edge refuses the handshake, front answers UNAVAILABLE",
                code == grpc.StatusCode.UNAVAILABLE, "%r %r" % (code, details))

    with t.section("the hop is HTTP/2 (edge's access log)", edge):
        recs = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                with open(edge_log) as fh:
                    recs = [json.loads(x) for x in fh if x.strip()]
            except (OSError, ValueError):
                recs = []
            if len(recs) >= 6:
                break
            time.sleep(0.1)
        grpc_recs = [r for r in recs if r.get("protocol") == "grpc"]
        t.check("edge logged the calls as grpc (ALPN h2 on the upstream hop)",
                len(grpc_recs) >= 6, "%d records: %r" % (len(recs), recs[-2:]))
        denied = [r for r in grpc_recs if r.get("grpc_status") == 7]
        t.check("... the denial with grpc_status 7 and outcome denied",
                len(denied) == 1 and denied[0].get("outcome") == "denied", repr(denied))
        routes = {r.get("route") for r in grpc_recs}
        t.check("... both identity routes used", {"edge/web", "edge/db"} <= routes, repr(routes))

    ch.close()
    for p in (pa_proc, pb_proc):
        p.terminate()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
