"""A small gRPC server (and client helpers) for Strand's HTTP/2 tests and
benchmark. No protobuf: every method takes and returns raw bytes (identity
serializers), so any client that frames bytes as gRPC messages can call it
(grpc Python with no serializers, h2load/nghttp with a 5-byte prefix).

Service `strand.test.Echo`:

  Unary         echoes the request, except:
                  b"status:N"   abort with grpc status N, message "asked for N"
                  b"sleep:MS"   sleep MS milliseconds (at most 10 s, ends early
                                if the call is cancelled), then echo; nothing,
                                not even the response headers, is sent before
                  b"sleepbody:MS"  the same, but the response headers are
                                sent first (only the message comes late)
                  b"deadline"   the call's time_remaining() as ASCII ("None"
                                when the client sent no deadline)
                  b"meta"       the request metadata as JSON (list of pairs), with
                                the trailers x-trailer: t-NAME and x-trailer-bin
  ServerStream  b"COUNT:SIZE" -> COUNT messages of SIZE bytes; message i
                starts with i as 8 decimal digits (when SIZE >= 8), the rest is
                b"x"
  ClientStream  the sum of the lengths of all request messages, as ASCII
  BidiStream    echoes each message as it arrives
  Flaky         b"KEY:K" -> UNAVAILABLE ("flaky KEY call N") for the first K
                calls with that KEY, then OK (b"ok KEY call N")
  Stats         JSON: calls per method, flaky counts per key, active calls,
                stream bytes sent so far (for tests; call it directly, not
                through the proxy)

Every response carries the initial metadata `x-peer: NAME`, so a test can see
which server answered (except Flaky's failures, which are trailers-only).

Run it as a subprocess (no GIL shared with the test's measurements):

    python3 grpc_peer.py serve PORT [NAME]     # prints "ready PORT" when listening
    python3 grpc_peer.py frame PAYLOAD FILE    # writes one gRPC message (5-byte
                                               # prefix + PAYLOAD) to FILE

or in-process: `Peer(port, name).start()` (a grpc server on its own threads).
From a test, `start_peer(name, port, spawn=...)` starts the subprocess and
waits for "ready". Loopback only.
"""

import json
import os
import struct
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "strand.test.Echo"
HOST = "127.0.0.1"
MAX_SLEEP_MS = 10000
MAX_STREAM_BYTES = 1 << 30        # ServerStream refuses more than 1 GiB in all

_CODES = {c.value[0]: c for c in grpc.StatusCode}


def status_code(n):
    """grpc.StatusCode for the integer n (UNKNOWN if n is not a code)."""
    return _CODES.get(int(n), grpc.StatusCode.UNKNOWN)


def grpc_frame(payload, compressed=False):
    """One gRPC length-prefixed message."""
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


def method_path(method, service=SERVICE):
    return "/%s/%s" % (service, method)


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

class Echo:
    """The service implementation; its counters are read by Stats (and by
    in-process tests directly)."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.calls = {}          # method -> count
        self.flaky = {}          # key -> calls so far
        self.active = 0          # calls being served right now
        self.max_active = 0
        self.stream_bytes_sent = 0    # ServerStream payload bytes handed to grpc
        self.stream_msgs_sent = 0

    # -- bookkeeping --

    def _enter(self, method, context, headers=True):
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        if headers:
            self._headers(context)

    def _headers(self, context):
        try:
            context.send_initial_metadata((("x-peer", self.name),))
        except Exception:
            pass

    def _leave(self):
        with self.lock:
            self.active -= 1

    def stats(self):
        with self.lock:
            return {"name": self.name, "calls": dict(self.calls), "flaky": dict(self.flaky),
                    "active": self.active, "max_active": self.max_active,
                    "stream_bytes_sent": self.stream_bytes_sent,
                    "stream_msgs_sent": self.stream_msgs_sent}

    # -- methods --

    def unary(self, req, context):
        late = req.startswith(b"sleep:")
        self._enter("Unary", context, headers=not late)
        try:
            if req.startswith(b"status:"):
                n = int(req[7:].split(b":")[0] or b"2")
                context.abort(status_code(n), "asked for %d" % n)
            if late or req.startswith(b"sleepbody:"):
                ms = min(int(req.split(b":")[1] or b"0"), MAX_SLEEP_MS)
                end = time.monotonic() + ms / 1000.0
                while context.is_active():
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    time.sleep(min(left, 0.01))
                if late:
                    self._headers(context)
                return req
            if req.startswith(b"deadline"):
                return repr(context.time_remaining()).encode()
            if req == b"meta":
                md = [(k, v if isinstance(v, str) else "<binary %d>" % len(v))
                      for k, v in context.invocation_metadata()]
                context.set_trailing_metadata((("x-trailer", "t-" + self.name),
                                               ("x-trailer-bin", b"\x00\x01\xfe\xff")))
                return json.dumps(md).encode()
            return req
        finally:
            self._leave()

    def server_stream(self, req, context):
        self._enter("ServerStream", context)
        try:
            try:
                count, size = (int(x) for x in req.split(b":")[:2])
            except ValueError:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "want COUNT:SIZE")
            if count < 0 or size < 0 or count * size > MAX_STREAM_BYTES:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "stream too large")
            filler = b"x" * size
            for i in range(count):
                if not context.is_active():
                    return
                msg = (b"%08d" % i + filler[8:]) if size >= 8 else filler
                yield msg
                # Counted once grpc took the message: the synchronous server
                # asks for the next one only after the previous send is done,
                # so this follows the peer's flow-control window.
                with self.lock:
                    self.stream_bytes_sent += size
                    self.stream_msgs_sent += 1
        finally:
            self._leave()

    def client_stream(self, req_iter, context):
        self._enter("ClientStream", context)
        try:
            total = 0
            for m in req_iter:
                total += len(m)
            return str(total).encode()
        finally:
            self._leave()

    def bidi_stream(self, req_iter, context):
        self._enter("BidiStream", context)
        try:
            for m in req_iter:
                yield m
        finally:
            self._leave()

    def flaky_method(self, req, context):
        # No headers before the verdict: a failure is a trailers-only
        # response (grpc-status in the only HEADERS frame), as most servers
        # answer a call they refuse at once.
        self._enter("Flaky", context, headers=False)
        try:
            key, _, k = req.partition(b":")
            key = key.decode("utf-8", "replace")
            try:
                k = int(k or b"1")
            except ValueError:
                k = 1
            with self.lock:
                n = self.flaky[key] = self.flaky.get(key, 0) + 1
            if n <= k:
                context.abort(grpc.StatusCode.UNAVAILABLE, "flaky %s call %d" % (key, n))
            self._headers(context)
            return ("ok %s call %d" % (key, n)).encode()
        finally:
            self._leave()

    def stats_method(self, req, context):
        self._headers(context)
        return json.dumps(self.stats()).encode()

    def handler(self):
        h = grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream),
            "BidiStream": grpc.stream_stream_rpc_method_handler(self.bidi_stream),
            "Flaky": grpc.unary_unary_rpc_method_handler(self.flaky_method),
            "Stats": grpc.unary_unary_rpc_method_handler(self.stats_method),
        })
        return h


SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),                      # never share a port by accident
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


class Peer:
    """The server in this process (threads)."""

    def __init__(self, port=0, name="peer", workers=64):
        self.echo = Echo(name)
        self.name = name
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                                  options=SERVER_OPTIONS)
        self.server.add_generic_rpc_handlers((self.echo.handler(),))
        self.port = self.server.add_insecure_port("%s:%d" % (HOST, port))
        if not self.port:
            raise OSError("grpc could not listen on %s:%d" % (HOST, port))

    def start(self):
        self.server.start()
        return self

    def stop(self, grace=0.5):
        self.server.stop(grace).wait(grace + 2)

    def stats(self):
        return self.echo.stats()


def serve(port, name):
    workers = int(os.environ.get("GRPC_PEER_WORKERS", "64"))
    peer = Peer(port, name, workers=workers).start()
    print("ready %d" % peer.port, flush=True)
    stop = threading.Event()
    try:
        import signal
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    except ValueError:
        pass
    # Ends on SIGTERM/SIGINT, or when the parent goes away (stdin closed is
    # not reliable with DEVNULL, so watch the parent pid).
    parent = os.getppid()
    while not stop.wait(0.5):
        if os.getppid() != parent:
            break
    peer.stop(0.2)


# ---------------------------------------------------------------------------
# Client helpers
# ---------------------------------------------------------------------------

CLIENT_OPTIONS = [
    ("grpc.enable_http_proxy", 0),      # never through a proxy from the environment
    ("grpc.enable_retries", 0),         # no transparent retries hiding what the proxy did
    ("grpc.use_local_subchannel_pool", 1),   # a new channel is a new connection
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


def channel(port, host=HOST, credentials=None, authority=None, options=()):
    opts = list(CLIENT_OPTIONS) + list(options)
    if authority:
        opts.append(("grpc.default_authority", authority))
    target = "%s:%d" % (host, port)
    if credentials is not None:
        return grpc.secure_channel(target, credentials, options=opts)
    return grpc.insecure_channel(target, options=opts)


def unary(ch, method="Unary", service=SERVICE):
    return ch.unary_unary(method_path(method, service))


def server_stream(ch, method="ServerStream", service=SERVICE):
    return ch.unary_stream(method_path(method, service))


def client_stream(ch, method="ClientStream", service=SERVICE):
    return ch.stream_unary(method_path(method, service))


def bidi_stream(ch, method="BidiStream", service=SERVICE):
    return ch.stream_stream(method_path(method, service))


def call_unary(ch, payload, timeout=5.0, metadata=None, method="Unary", service=SERVICE):
    """(code, details, response bytes or None, initial metadata dict)."""
    try:
        resp, call = unary(ch, method, service).with_call(payload, timeout=timeout,
                                                          metadata=metadata)
        return grpc.StatusCode.OK, call.details() or "", resp, dict(call.initial_metadata() or ())
    except grpc.RpcError as e:
        md = {}
        try:
            md = dict(e.initial_metadata() or ())
        except Exception:
            pass
        return e.code(), e.details() or "", None, md


def peer_stats(port, timeout=3.0):
    """The Stats of the peer on port (called directly, not through a proxy)."""
    ch = channel(port)
    try:
        return json.loads(unary(ch, "Stats")(b"", timeout=timeout))
    finally:
        ch.close()


# ---------------------------------------------------------------------------
# Starting the subprocess
# ---------------------------------------------------------------------------

def start_peer(name, port=0, spawn=None, stderr_path=None, timeout=15.0):
    """Start `grpc_peer.py serve PORT NAME` as a subprocess and wait for its
    "ready" line. spawn(argv, stdout=, stderr=) starts it (default
    subprocess.Popen in a new session). Returns (process, port)."""
    import select
    import subprocess
    argv = [sys.executable or "/usr/bin/python3", "-B", os.path.abspath(__file__),
            "serve", str(port), name]
    err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
    if spawn is None:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=err, start_new_session=True)
    else:
        p = spawn(argv, stdout=subprocess.PIPE, stderr=err)
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and b"\n" not in line:
        r, _, _ = select.select([p.stdout], [], [], 0.1)
        if r:
            b = os.read(p.stdout.fileno(), 256)
            if not b:
                break
            line += b
        elif p.poll() is not None:
            break
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith("ready "):
        tail = ""
        if stderr_path:
            try:
                with open(stderr_path, "rb") as f:
                    tail = f.read()[-2000:].decode("utf-8", "replace")
            except OSError:
                pass
        raise RuntimeError("grpc peer %s did not start (rc=%r, said %r)\n%s"
                           % (name, p.poll(), text, tail))
    return p, int(text.split()[1])


def main(argv):
    if len(argv) >= 2 and argv[1] == "serve":
        port = int(argv[2]) if len(argv) > 2 else 0
        name = argv[3] if len(argv) > 3 else "peer"
        serve(port, name)
        return 0
    if len(argv) == 4 and argv[1] == "frame":
        with open(argv[3], "wb") as f:
            f.write(grpc_frame(argv[2].encode()))
        return 0
    sys.stderr.write("usage: grpc_peer.py serve PORT [NAME] | frame PAYLOAD FILE\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
