"""TLS in the data plane: termination, origination, mutual TLS between two
Strand proxies with SPIFFE identities, TCP termination, passthrough on SNI,
certificate reload.

The test makes its own CA and certificates with the openssl CLI. Topology:

    curl --http--> front (plain listener) --mTLS, client cert web--> edge
    curl --https-> edge (TLS listener: SNI picks the certificate, client
                   certificates verified against the CA) --> nginx
    curl --tls---> pass (protocol: tls, routes on SNI) --> edge
"""

import os
import socket
import ssl
import subprocess
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Nginx, Suite, cluster_doc, curl, echo_return, free_port,  # noqa: E402
                     listener_doc, make_tmpdir, parse_echo, proxy_doc, route_doc,
                     start_strand, wait_for)

WEB_ID = "spiffe://cluster.local/ns/default/sa/web"
DB_ID = "spiffe://cluster.local/ns/default/sa/db"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(d):
    """A CA, server certificates for localhost and other.test, client
    certificates with SPIFFE IDs, and a second CA nobody trusts."""
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2", "-subj", "/CN=" + ca,
                cwd=d)

    def leaf(name, san, ca="ca", cn=None):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + (cn or name),
                cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext",
                cwd=d)

    leaf("localhost", "DNS:localhost,IP:127.0.0.1")
    leaf("other", "DNS:other.test")
    leaf("web", "URI:" + WEB_ID)
    leaf("db", "URI:" + DB_ID)
    leaf("rogue", "URI:" + WEB_ID, ca="rogue-ca")
    leaf("renewed", "DNS:localhost,IP:127.0.0.1", cn="localhost-renewed")


def peer_cn(port, sni, ca):
    """The CN of the certificate the server presents for sni."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            subject = dict(x[0] for x in t.getpeercert()["subject"])
            return subject.get("commonName"), t.selected_alpn_protocol()


def main():
    t = Suite("test_tls")
    tmp = make_tmpdir("tls")
    pki = os.path.join(tmp, "pki")
    os.makedirs(pki)
    P = lambda n: os.path.join(pki, n)  # noqa: E731

    with t.section("setup"):
        make_pki(pki)
        ng = Nginx(tmp, [{"/": echo_return("nginx")}])
        ng.start()
        edge_admin, edge_port, req_port = free_port(), free_port(), free_port()
        edge_docs = [
            proxy_doc(edge_admin, workers=1),
            listener_doc("edge", edge_port, tls={
                "certificates": [
                    {"certFile": P("localhost.pem"), "keyFile": P("localhost.key")},
                    {"certFile": P("other.pem"), "keyFile": P("other.key"), "sni": ["other.test"]}],
                "alpn": ["http/1.1"], "clientCA": P("ca.pem")}),
            listener_doc("strict", req_port, tls={
                "certificates": [{"certFile": P("localhost.pem"), "keyFile": P("localhost.key")}],
                "clientCA": P("ca.pem"), "requireClientCert": True}),
            cluster_doc("nginx", [ng.port]),
            route_doc("edge", ["edge", "strict"], [
                {"name": "web-only", "match": [{"attribute": "path", "prefix": "/secure"},
                                               {"attribute": "source.identity", "exact": WEB_ID}],
                 "directResponse": {"status": 200, "body": "hello web\n"}},
                {"name": "deny", "match": [{"attribute": "path", "prefix": "/secure"}],
                 "directResponse": {"status": 403, "body": "identity not allowed\n"}},
                {"name": "all", "match": [{"attribute": "path", "prefix": "/"}],
                 "backends": [{"cluster": "nginx"}]}]),
        ]
        edge = start_strand(t, tmp, edge_docs)
        front_admin, front_port, front_db_port = free_port(), free_port(), free_port()
        front = start_strand(t, tmp, [
            proxy_doc(front_admin, workers=1),
            listener_doc("web", front_port),
            listener_doc("db", front_db_port),
            cluster_doc("edge-as-web", [edge_port], tls={
                "caFile": P("ca.pem"), "sni": "localhost",
                "certFile": P("web.pem"), "keyFile": P("web.key")}),
            cluster_doc("edge-as-db", [edge_port], tls={
                "caFile": P("ca.pem"), "certFile": P("db.pem"), "keyFile": P("db.key")}),
            cluster_doc("edge-wrong-ca", [edge_port], tls={"caFile": P("rogue-ca.pem")}),
            route_doc("web", ["web"], [
                {"name": "badca", "match": [{"attribute": "path", "prefix": "/badca"}],
                 "backends": [{"cluster": "edge-wrong-ca"}]},
                {"name": "all", "backends": [{"cluster": "edge-as-web"}]}]),
            route_doc("db", ["db"], [{"backends": [{"cluster": "edge-as-db"}]}]),
        ])
        pass_admin, pass_port, tcp_port = free_port(), free_port(), free_port()
        passer = start_strand(t, tmp, [
            proxy_doc(pass_admin, workers=1),
            listener_doc("pass", pass_port, protocol="tls"),
            listener_doc("tcps", tcp_port, protocol="tcp", tls={
                "certificates": [{"certFile": P("localhost.pem"), "keyFile": P("localhost.key")}]}),
            cluster_doc("edge", [edge_port]),
            cluster_doc("nginx", [ng.port]),
            route_doc("pass", ["pass"], [
                {"match": [{"attribute": "tls.sni", "exact": "localhost"}],
                 "backends": [{"cluster": "edge"}]}]),
            route_doc("tcps", ["tcps"], [{"backends": [{"cluster": "nginx"}]}]),
        ])
        https = "https://localhost:%d" % edge_port
        cacert = ["--cacert", P("ca.pem")]

    with t.section("termination"):
        r = curl(https + "/hello", args=cacert)
        t.eq("https GET through the edge -> 200", r.status, 200)
        e = parse_echo(r.body)
        t.eq("backend reached", e.get("backend"), "nginx")
        t.check("forwarded says proto=https", "proto=https" in e.get("fwd", ""), repr(e.get("fwd")))
        cn, alpn = peer_cn(edge_port, "localhost", P("ca.pem"))
        t.eq("SNI localhost -> the default certificate", cn, "localhost")
        t.eq("client offers h2 and http/1.1: http/1.1 negotiated", alpn, "http/1.1")
        cn, _ = peer_cn(edge_port, "other.test", P("ca.pem"))
        t.eq("SNI other.test -> its own certificate", cn, "other")
        # 20 KB of headers (nginx takes lines of up to 8 KB) span TLS records.
        many = []
        for i in range(5):
            many += ["-H", "X-Big-%d: %s" % (i, "b" * 4000)]
        big = curl(https + "/hello", args=cacert + many)
        t.eq("a 20 KB header crosses TLS records", big.status, 200)

    with t.section("mutual TLS and identities"):
        r = curl(https + "/secure", args=cacert)
        t.eq("no client certificate -> the deny rule (403)", r.status, 403)
        r = curl(https + "/secure", args=cacert + ["--cert", P("web.pem"), "--key", P("web.key")])
        t.eq("client certificate web -> allowed (200)", r.status, 200)
        t.eq("the allow rule answered", r.body, b"hello web\n")
        r = curl(https + "/secure", args=cacert + ["--cert", P("rogue.pem"), "--key", P("rogue.key")])
        t.check("a certificate from an untrusted CA is refused", r.status == 0, repr(r))
        r = curl("http://127.0.0.1:%d/secure" % front_port)
        t.eq("front -> edge over mTLS as web -> 200", r.status, 200)
        t.eq("edge saw identity web", r.body, b"hello web\n")
        r = curl("http://127.0.0.1:%d/secure" % front_db_port)
        t.eq("front -> edge over mTLS as db -> 403", r.status, 403)
        r = curl("http://127.0.0.1:%d/plain" % front_port)
        t.eq("front -> edge -> nginx -> 200", r.status, 200)
        t.check("both proxies in via", parse_echo(r.body).get("via", "").count("strand") == 2,
                repr(parse_echo(r.body).get("via")))
        r = curl("https://localhost:%d/x" % req_port, args=cacert)
        t.check("requireClientCert: no certificate -> handshake fails", r.status == 0, repr(r))
        r = curl("https://localhost:%d/x" % req_port,
                 args=cacert + ["--cert", P("web.pem"), "--key", P("web.key")])
        t.eq("requireClientCert: with a certificate -> 200", r.status, 200)
        m = edge.metrics()
        t.check("failed handshakes counted",
                m.get("strand_downstream_tls_handshake_errors_total", listener="edge") >= 1,
                repr(m.get("strand_downstream_tls_handshake_errors_total", listener="edge")))

    with t.section("origination failures"):
        r = curl("http://127.0.0.1:%d/badca/x" % front_port)
        t.eq("upstream certificate not trusted -> 503", r.status, 503)
        r = curl("http://127.0.0.1:%d/after" % front_port)
        t.eq("the good cluster still works", r.status, 200)

    with t.section("tcp termination and passthrough"):
        ctx = ssl.create_default_context(cafile=P("ca.pem"))
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as ts:
                ts.sendall(b"GET /tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    b = ts.recv(65536)
                    if not b:
                        break
                    data += b
        t.check("TLS-terminating tcp listener reaches nginx in clear",
                data.startswith(b"HTTP/1.1 200") and b"backend=nginx" in data, repr(data[:80]))
        r = curl("https://localhost:%d/secure" % pass_port,
                 args=cacert + ["--cert", P("web.pem"), "--key", P("web.key")])
        t.eq("passthrough on SNI: end-to-end mTLS reaches the edge -> 200", r.status, 200)
        t.eq("the edge saw the client's own identity", r.body, b"hello web\n")
        r = curl("https://127.0.0.1:%d/secure" % pass_port, args=["-k"])
        t.check("passthrough without a matching SNI is closed", r.status == 0, repr(r))

    with t.section("certificate reload"):
        ctx = ssl.create_default_context(cafile=P("ca.pem"))
        keep = socket.create_connection(("127.0.0.1", edge_port), timeout=5)
        keep = ctx.wrap_socket(keep, server_hostname="localhost")
        keep.sendall(b"GET /before HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = keep.recv(65536)
        t.check("keep-alive connection before reload -> 200", first.startswith(b"HTTP/1.1 200"),
                repr(first[:40]))
        os.replace(P("renewed.pem"), P("localhost.pem"))
        os.replace(P("renewed.key"), P("localhost.key"))
        edge.reload_sighup()
        t.check("new connections get the renewed certificate",
                wait_for(lambda: peer_cn(edge_port, "localhost", P("ca.pem"))[0] == "localhost-renewed",
                         timeout=5), "still %r" % (peer_cn(edge_port, "localhost", P("ca.pem")),))
        keep.sendall(b"GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n")
        second = keep.recv(65536)
        t.check("the connection opened before the reload still works",
                second.startswith(b"HTTP/1.1 200"), repr(second[:40]))
        keep.close()

    with t.section("shutdown"):
        for name, p in (("front", front), ("pass", passer), ("edge", edge)):
            t.eq("%s: SIGTERM -> exit 0" % name, p.stop(), 0)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
