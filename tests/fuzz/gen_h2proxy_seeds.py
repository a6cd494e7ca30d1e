#!/usr/bin/env python3
"""Seed corpus for tests/fuzz/fuzz_h2proxy.c.

    python3 tests/fuzz/gen_h2proxy_seeds.py tests/fuzz/corpus/h2proxy [--with-h1]

Each seed is one control byte (see fuzz_h2proxy.c: bit 0 puts a client
preface + SETTINGS in front, bits 1-2 chunk size, 3 loop turns, 4 half-close,
5 small socket buffers, 6 reload half-way, 7 drain half-way) followed by a
client's bytes. Frames and HPACK are built by hand here (no libraries):
header blocks use "literal header field without indexing" with a new name
(0x00, RFC 7541 6.2.2) or with an indexed static-table name (0x0N / 0x0F
0xNN), plain (non-Huffman) strings, and a few fully indexed static entries
(0x82 = :method GET etc.). The paths and headers target the rules of the
fuzzer's configuration (direct, deny, grpc-h2, grpc-h1, by-header, hash,
api, regex, rest)."""
import os
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20

# RFC 7541 Appendix A: the static-table names used here.
STATIC_NAME = {":authority": 1, ":method": 2, ":path": 4, ":scheme": 6, ":status": 8,
               "accept": 19, "content-length": 28, "content-type": 31, "host": 38,
               "user-agent": 58}
# Fully indexed static entries.
STATIC_FULL = {(":method", "GET"): 2, (":method", "POST"): 3, (":path", "/"): 4,
               (":scheme", "http"): 6, (":scheme", "https"): 7}


def hpack_int(value, prefix_bits, first_byte_flags=0):
    """RFC 7541 5.1 integer with an N-bit prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = [first_byte_flags | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    b = s.encode() if isinstance(s, str) else s
    return hpack_int(len(b), 7) + b  # H bit 0: not Huffman-coded


def hpack(headers, use_static=True):
    """Header block: indexed where the exact pair is static, else literal
    without indexing (indexed name when the name is static)."""
    out = b""
    for name, value in headers:
        if use_static and (name, value) in STATIC_FULL:
            out += hpack_int(STATIC_FULL[(name, value)], 7, 0x80)
        elif use_static and name in STATIC_NAME:
            out += hpack_int(STATIC_NAME[name], 4, 0x00) + hpack_str(value)
        else:
            out += b"\x00" + hpack_str(name) + hpack_str(value)
    return out


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7FFFFFFF) + payload


def settings(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def headers(sid, hs, end_stream=False, use_static=True):
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid,
                 hpack(hs, use_static))


def data(sid, payload, end_stream=False):
    return frame(DATA, END_STREAM if end_stream else 0, sid, payload)


def rst(sid, code=8):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc))


def ping(opaque=b"12345678", ack=False):
    return frame(PING, ACK if ack else 0, 0, opaque)


def goaway(last, code=0, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last, code) + debug)


def req(method, path, extra=(), authority="example.com", scheme="http"):
    return [(":method", method), (":scheme", scheme), (":path", path),
            (":authority", authority)] + list(extra)


def grpc_req(path, extra=()):
    return req("POST", path, [("content-type", "application/grpc"), ("te", "trailers"),
                              ("grpc-timeout", "500m"), ("user-agent", "grpc-c/1.0")]
               + list(extra))


def grpc_msg(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


CLIENT_SETTINGS = settings([(1, 4096), (2, 0), (3, 100), (4, 65535), (5, 16384), (6, 8192)])
OPEN = PREFACE + CLIENT_SETTINGS          # raw-mode start (control bit 0 clear)


def seeds():
    s = {}
    # -- raw mode (control byte 0x00: whole input, 4 turns, close) -----------
    s["get_direct"] = (0x00, OPEN + settings(ack=True) +
                       headers(1, req("GET", "/direct", [("accept", "*/*"),
                                                         ("user-agent", "nghttp2/1.0")]), True))
    s["get_rest"] = (0x10, OPEN + headers(1, req("GET", "/", [("x-request-id", "abc")]), True))
    s["get_headers_route"] = (0x00, OPEN + headers(1, req("GET", "/h2/a/b?q=1", [
        ("x-route", "H2"), ("x-secret", "s"), ("x-c", "old"), ("cookie", "a=1"),
        ("cookie", "b=2"), ("accept", "text/html")]), True))
    s["get_api_rewrite"] = (0x02, OPEN + headers(1, req("GET", "/api/users?id=7", [
        ("x-forwarded-for", "10.0.0.1")]), True))
    s["get_regex"] = (0x00, OPEN + headers(1, req("GET", "/r/12345"), True))
    s["get_hash"] = (0x00, OPEN + headers(1, req("GET", "/x", [("x-user", "alice")]), True))
    s["teapot"] = (0x18, OPEN + headers(1, req("HEAD", "/tea", [("x-teapot", "1")]), True))
    s["forbidden"] = (0x00, OPEN + headers(1, req("GET", "/forbidden/x"), True))
    s["post_body"] = (0x00, OPEN + headers(1, req("POST", "/api/upload", [
        ("content-type", "text/plain"), ("content-length", "11")])) +
        data(1, b"hello ") + data(1, b"world", True))
    s["post_no_length"] = (0x14, OPEN + headers(3, req("POST", "/upload")) +
                           data(3, b"x" * 3000) + data(3, b"y" * 3000) + data(3, b"", True))
    s["post_direct_body"] = (0x00, OPEN + headers(1, req("POST", "/direct")) +
                             data(1, b"ignored body", True))
    # gRPC: unary call to the http2 cluster (retries), to the http1 one, denied
    s["grpc_unary"] = (0x10, OPEN + headers(1, grpc_req("/pkg.Svc/Method")) +
                       data(1, grpc_msg(b"\x0a\x03abc"), True))
    s["grpc_h1"] = (0x00, OPEN + headers(1, grpc_req("/pkg.Other/Call")) +
                    data(1, grpc_msg(b"\x08\x01"), True))
    s["grpc_deny"] = (0x00, OPEN + headers(1, grpc_req("/pkg.Svc/Deny")) +
                      data(1, grpc_msg(b""), True))
    s["grpc_no_end"] = (0x10, OPEN + headers(1, grpc_req("/pkg.Svc/Other")) +
                        data(1, grpc_msg(b"\x01" * 100)))
    # several concurrent streams, interleaved
    s["concurrent"] = (0x10, OPEN +
                       headers(1, req("GET", "/direct"), True) +
                       headers(3, grpc_req("/pkg.Svc/Method")) +
                       headers(5, req("POST", "/api/x", [("content-length", "4")])) +
                       headers(7, req("GET", "/r/1"), True) +
                       data(3, grpc_msg(b"abc")) + data(5, b"ab") +
                       headers(9, req("GET", "/forbidden"), True) +
                       data(5, b"cd", True) + data(3, b"", True) +
                       headers(11, req("GET", "/x", [("x-user", "bob")]), True))
    s["reset_mid_request"] = (0x10, OPEN + headers(1, req("POST", "/h2/up", [("x-route", "h2")])) +
                              data(1, b"part") + rst(1, 8) +
                              headers(3, req("GET", "/direct"), True) + rst(3, 0))
    s["window_ping"] = (0x10, OPEN + window_update(0, 1 << 20) +
                        headers(1, req("GET", "/direct"), True) + window_update(1, 65535) +
                        ping() + ping(b"abcdefgh", ack=True) + window_update(0, 1))
    s["settings_changes"] = (0x10, OPEN + settings([(4, 1), (5, 16384)]) +
                             headers(1, req("GET", "/direct"), True) +
                             settings([(4, 65535), (1, 0), (3, 1)]) + settings(ack=True) +
                             window_update(1, 100) +
                             headers(3, req("GET", "/direct"), True))
    s["goaway"] = (0x10, OPEN + headers(1, req("GET", "/direct"), True) +
                   headers(3, grpc_req("/pkg.Svc/Method")) + goaway(0, 0, b"bye") +
                   data(3, grpc_msg(b"z"), True))
    blk = hpack(req("GET", "/h2/cont", [("x-route", "h2"), ("x-long", "v" * 300)]))
    s["continuation"] = (0x00, OPEN + frame(HEADERS, END_STREAM, 1, blk[:10]) +
                         frame(CONTINUATION, 0, 1, blk[10:100]) +
                         frame(CONTINUATION, END_HEADERS, 1, blk[100:]))
    s["trailers_priority"] = (0x10, OPEN +
                              frame(HEADERS, END_HEADERS | PRIO, 1,
                                    struct.pack(">IB", 0, 15) + hpack(grpc_req("/pkg.Svc/Method"))) +
                              data(1, grpc_msg(b"q")) +
                              headers(1, [("grpc-status", "0"), ("x-trailer", "t")], True) +
                              frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 200)))
    s["padded_data"] = (0x00, OPEN + headers(1, req("POST", "/api/p", [("content-length", "3")])) +
                        frame(DATA, PADDED | END_STREAM, 1, b"\x04abc" + b"\0" * 4))
    s["literal_names"] = (0x00, OPEN +
                          headers(1, req("GET", "/direct", [("x-teapot", "yes")]), True,
                                  use_static=False))
    s["bad_pseudo"] = (0x00, OPEN + headers(1, [(":method", "GET"), (":path", "/"),
                                                 (":scheme", "http"), (":status", "200")], True) +
                       headers(3, req("GET", "/direct", [("connection", "close")]), True) +
                       headers(5, req("GET", "/direct"), True))
    s["big_window_overflow"] = (0x10, OPEN + headers(1, req("POST", "/h2/x", [("x-route", "h2")])) +
                                data(1, b"d" * 16384) + window_update(1, 0x7FFFFFFF) +
                                data(1, b"", True))
    # -- to the fuzzer's own upstreams (h2live, h1live): real exchanges -----
    s["live_grpc"] = (0x10, OPEN + headers(1, grpc_req("/pkg.Live/Echo")) +
                      data(1, grpc_msg(b"ping"), True) +
                      headers(3, grpc_req("/pkg.Live/Echo")) + data(3, grpc_msg(b"x" * 500)) +
                      data(3, b"", True) +
                      headers(5, grpc_req("/pkg.Live/Echo")) + data(5, grpc_msg(b"3"), True))
    s["live_h2_post"] = (0x10, OPEN + headers(1, req("POST", "/live2/up", [
        ("content-length", "2000"), ("x-secret", "1")])) + data(1, b"a" * 1000) +
        data(1, b"b" * 1000, True) + headers(3, req("GET", "/live2/x"), True) +
        headers(5, req("HEAD", "/live2/h"), True))
    s["live_h1"] = (0x10, OPEN + headers(1, req("GET", "/live1/a"), True) +
                    headers(3, req("POST", "/live1/b", [("content-length", "5")])) +
                    data(3, b"hello", True) + headers(5, req("GET", "/live1/c"), True) +
                    headers(7, req("GET", "/live1/d", [("te", "trailers")]), True))
    s["live_reset"] = (0x10, OPEN + headers(1, req("POST", "/live2/r")) + data(1, b"abc") +
                       rst(1, 8) + headers(3, req("POST", "/live1/r")) + data(3, b"a") +
                       rst(3, 2) + headers(5, req("GET", "/live2/ok"), True))
    # -- options: preface put in front (bit 0), chunking, reload, drain ------
    s["prefixed_get_chunked7"] = (0x03, headers(1, req("GET", "/direct"), True) +
                                  headers(3, grpc_req("/pkg.Svc/Method")) +
                                  data(3, grpc_msg(b"abc"), True))
    s["prefixed_reload"] = (0x51, headers(1, grpc_req("/pkg.Svc/Method")) +
                            data(1, grpc_msg(b"1")) + ping() +
                            headers(3, req("GET", "/direct"), True) + data(1, b"", True))
    s["prefixed_drain_small_buf"] = (0xB5, headers(1, req("GET", "/direct"), True) +
                                     headers(3, req("GET", "/direct"), True) +
                                     window_update(0, 1000) + headers(5, req("GET", "/r/9"), True))
    return s


def wasm_seeds():
    """Requests for the probe WasmPlugin (tests/integration/wasm/probe_filter.c,
    loaded when the fuzz build has it): each x-test value takes the filter
    path somewhere else (pause, a tick's answer, traps, fuel, rewrites,
    properties, body refusals, a callout to a cluster that does not exist)."""
    s = {}
    s["wasm_h2_pause"] = (0x10, OPEN + headers(1, req("GET", "/live1/p", [("x-test", "pause")]),
                                                True) +
                          headers(3, req("GET", "/live2/q", [("x-test", "pause-deny")]), True) +
                          headers(5, req("POST", "/live2/b", [("x-test", "pause"),
                                                              ("content-length", "4")])) +
                          data(5, b"body", True))
    s["wasm_h2_trap"] = (0x10, OPEN + headers(1, req("GET", "/live1/t", [("x-test", "trap")]),
                                               True) +
                         headers(3, req("GET", "/live2/l", [("x-test", "loop")]), True) +
                         headers(5, req("GET", "/live1/c", [("x-test", "close")]), True) +
                         headers(7, req("GET", "/live1/ok"), True))
    s["wasm_h2_rewrite"] = (0x10, OPEN + headers(1, req("GET", "/live2/r", [
        ("x-test", "rewrite"), ("x-secret", "s")]), True) +
        headers(3, req("GET", "/live1/s", [("x-test", "status")]), True) +
        headers(5, req("GET", "/live2/p?q=1", [("x-test", "props")]), True) +
        headers(7, req("POST", "/live1/b", [("x-test", "body-deny"),
                                            ("content-length", "9")])) +
        data(7, b"forbidden", True) +
        headers(9, req("GET", "/live1/co", [("x-test", "callout")]), True))
    s["wasm_h1"] = (0x10, b"GET /live1/a HTTP/1.1\r\nHost: a\r\nx-test: pause\r\n\r\n"
                    b"POST /live1/b HTTP/1.1\r\nHost: a\r\nx-test: body-deny\r\n"
                    b"Content-Length: 9\r\n\r\nforbidden"
                    b"POST /live1/c HTTP/1.1\r\nHost: a\r\nx-test: status\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
                    b"GET /live1/d HTTP/1.1\r\nHost: a\r\nx-test: trap\r\n\r\n")
    return s


def h1_seeds():
    """HTTP/1.1 requests to the http2 cluster (h2_h1down.c), raw mode. Left
    out of the committed corpus for now (--with-h1 adds them): every one
    trips UBSan in h1_token_list_has_str (NULL + 0 when the request has no
    Connection header, via h1_header_should_strip from h1x_begin)."""
    s = {}
    s["h1_to_h2_cluster"] = (0x10, b"GET /r/42 HTTP/1.1\r\nHost: a\r\n\r\n"
                             b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    s["h1_chunked_to_h2"] = (0x04, b"POST /h2/c HTTP/1.1\r\nHost: a\r\nx-route: h2\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    return s


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "h2proxy")
    os.makedirs(out, exist_ok=True)
    all_seeds = seeds()
    all_seeds.update(wasm_seeds())
    if "--with-h1" in sys.argv:
        all_seeds.update(h1_seeds())
    for name, (ctl, body) in sorted(all_seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([ctl]) + body)
    print("%d seeds in %s" % (len(all_seeds), out))


if __name__ == "__main__":
    main()
