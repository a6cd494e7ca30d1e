"""Shared harness for Strand's integration tests.

Every test file imports this module, builds a Suite, starts real processes
(strand, nginx, curl, wrk) and small Python servers where nginx can't play
the role, and reports one line per check, ending with "N passed, M failed".

Rules the helpers enforce:
  * loopback only, ports found by binding port 0;
  * each file has its own temp dir (removed at exit unless STRAND_KEEP_TMP=1);
  * every process is started in its own session and killed (process group)
    at exit, even on exceptions or SIGTERM from the test runner;
  * no fixed sleeps for readiness: wait_for() polls a condition with a
    deadline;
  * a watchdog stops the file before 60 s whatever happens.
"""

import atexit
import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STRAND_BIN = os.environ.get("STRAND_BIN") or os.path.join(REPO, "build", "strand")
NGINX = "/usr/sbin/nginx"
CURL = "/usr/bin/curl"
WRK = "/usr/bin/wrk"
PROMTOOL = "/usr/bin/promtool"
API = "strand.dev/v1alpha1"
LOCALHOST = "127.0.0.1"

# Each file must finish in < 60 s; the watchdog fires a little earlier.
FILE_BUDGET_S = float(os.environ.get("STRAND_IT_BUDGET", "52"))

# 500 idle connections on both sides of the proxy need more than the usual
# 1024 descriptors; children (strand, nginx) inherit the raised soft limit.
try:
    _soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _want = 8192 if _hard == resource.RLIM_INFINITY else min(_hard, 8192)
    if _soft < _want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_want, _hard))
except (ValueError, OSError):
    pass


# --------------------------------------------------------------------------
# Process and cleanup management
# --------------------------------------------------------------------------

_procs = []          # every Popen we started
_cleanups = []       # callables run (LIFO) at exit
_cleanup_lock = threading.RLock()   # a second caller waits for the first to finish
_cleaned = False
_exit_lock = threading.Lock()       # taken by whichever of finish()/watchdog ends the file


def on_cleanup(fn):
    """Register fn to run at exit (last registered runs first)."""
    _cleanups.append(fn)
    return fn


def spawn(argv, stdout=None, stderr=None, env=None, cwd=None):
    """Start a process in its own session (so its whole group can be killed)."""
    if _cleaned:
        raise RuntimeError("not starting %s: the test file is shutting down" % argv[0])
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                         env=env, cwd=cwd, start_new_session=True)
    _procs[:] = [q for q in _procs if q.returncode is None]   # drop reaped ones
    _procs.append(p)
    return p


def kill_group(p, sig=signal.SIGTERM, grace=3.0):
    """Signal p's process group (every process is started as a session
    leader, so the group id is its pid), wait up to grace seconds, then
    SIGKILL the group. A process already reaped is left alone: its pid may
    belong to someone else by now."""
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass


def cleanup_all(fast=False):
    """Run registered cleanups and kill every process we started. Idempotent;
    a concurrent caller (watchdog vs. main thread) waits until it is done.
    fast: SIGKILL every live process group first (no time for grace)."""
    global _cleaned
    with _cleanup_lock:
        if _cleaned:
            return
        _cleaned = True
        if fast:
            for p in _procs:
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
        while _cleanups:
            fn = _cleanups.pop()
            try:
                fn()
            except Exception:  # cleanup must go on
                pass
        for p in reversed(_procs):
            try:
                kill_group(p, grace=1.5)
            except Exception:
                pass


atexit.register(cleanup_all)


def _on_term(signum, frame):
    # ctest (or a human) stopping us: turn it into a normal exit so atexit runs.
    sys.exit(128 + signum)


# --------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------

_used_ports = set()


def free_port():
    """A loopback TCP port nobody listens on right now (bind port 0)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((LOCALHOST, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _used_ports:
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port")


def make_tmpdir(tag):
    d = tempfile.mkdtemp(prefix="strand-it-%s-" % tag)
    if os.environ.get("STRAND_KEEP_TMP") != "1":
        on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def wait_for(cond, timeout=5.0, interval=0.02):
    """Poll cond() until it returns a truthy value or timeout passes.
    Returns the last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = cond()
        except Exception:
            v = None
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def port_accepts(port, host=LOCALHOST, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connect_refused(port, host=LOCALHOST, timeout=0.5):
    """True if a TCP connect to port is refused right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def write_random_file(path, size, seed=None):
    """Write size pseudo-random bytes to path; return their sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            b = os.urandom(n)
            f.write(b)
            h.update(b)
            left -= n
    return h.hexdigest()


def tail_file(path, n=25):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    lines = data.splitlines()[-n:]
    return "\n".join(lines)


def rss_kib(pid):
    """Resident memory (KiB) of pid plus all its descendants, from /proc."""
    pids = {pid}
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError):
            continue
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if c not in pids:
                pids.add(c)
                todo.append(c)
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


# --------------------------------------------------------------------------
# Suite: collects checks so one failure doesn't hide the others
# --------------------------------------------------------------------------

def _format_exc(e):
    """The exception and the frames of the test code (not the stdlib's)."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith(HERE)]
    out = ["%s:%d in %s: %s" % (os.path.basename(f.filename), f.lineno, f.name, (f.line or "").strip())
           for f in frames[-6:]]
    out.append("%s: %s" % (type(e).__name__, e))
    return "\n".join(out)


class Suite:
    def __init__(self, name, budget=FILE_BUDGET_S):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.strands = []      # Strand objects whose stderr tail goes with failures
        self.current = "(setup)"
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._finished = False
        signal.signal(signal.SIGTERM, _on_term)
        self._watchdog = threading.Timer(budget, self._timeout)
        self._watchdog.daemon = True
        self._watchdog.start()
        print("# %s (strand binary: %s)" % (name, STRAND_BIN), flush=True)

    def _timeout(self):
        if not _exit_lock.acquire(blocking=False):
            return               # finish() is already ending the file
        with self._lock:
            self._finished = True
            self.failed += 1
        print("[FAIL] time budget of %.0f s exceeded in section %r"
              % (FILE_BUDGET_S, self.current), flush=True)
        self._print_strand_tails()
        try:
            cleanup_all(fast=True)
        finally:
            print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
            os._exit(1)

    def _print_strand_tails(self):
        # The tail is shown again only when stderr grew or the process state
        # changed, so a cascade of failures doesn't repeat the same lines.
        for s in self.strands:
            try:
                state = s.describe()
                try:
                    size = os.path.getsize(s.stderr_path)
                except OSError:
                    size = -1
                if getattr(s, "_shown", None) == (state, size):
                    print("    --- %s: %s (stderr unchanged since shown above)" % (s.name, state))
                    continue
                s._shown = (state, size)
                print("    --- %s: %s; stderr tail:" % (s.name, state))
                for line in s.tail(15).splitlines():
                    print("    | " + line)
            except Exception as e:
                print("    (no strand tail: %s)" % e)
        sys.stdout.flush()

    def check(self, name, ok, detail=""):
        ok = bool(ok)
        with self._lock:
            if self._finished:
                return ok
            if ok:
                self.passed += 1
            else:
                self.failed += 1
        print("[%s] %s" % ("PASS" if ok else "FAIL", name), flush=True)
        if not ok:
            if detail:
                for line in str(detail).splitlines()[:40]:
                    print("    " + line)
            self._print_strand_tails()
        return ok

    def eq(self, name, got, want):
        return self.check(name, got == want, "got %r, want %r" % (got, want))

    @contextlib.contextmanager
    def section(self, name, strand=None):
        """A group of checks; an exception fails the section, not the file.
        With strand: if that strand died earlier (a crash is itself a
        failure), it is restarted so this section is still tested."""
        self.current = name
        print("== %s (t=%.1fs)" % (name, time.monotonic() - self.t0), flush=True)
        try:
            if strand is not None and strand.proc is not None and not strand.alive():
                self.check("%s running at the start of section %r" % (strand.name, name), False,
                           "it %s; restarting it for this section" % strand.describe())
                strand.restart()
            yield
        except Exception as e:
            self.check("%s: completed without exception" % name, False, _format_exc(e))
        finally:
            self.current = "(between sections)"

    def track(self, strand):
        self.strands.append(strand)
        return strand

    def finish(self):
        if not _exit_lock.acquire(blocking=False):
            while True:          # the watchdog is ending the process (exit 1)
                time.sleep(60)
        self._watchdog.cancel()
        cleanup_all()
        with self._lock:
            self._finished = True
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


# --------------------------------------------------------------------------
# Config documents
# --------------------------------------------------------------------------

def proxy_doc(admin_port, name="default", **spec):
    # drainTimeout defaults to 5s here (15s in strand) so a proxy stuck on
    # a broken connection can't make shutdown eat the file's time budget.
    s = {"admin": {"address": "%s:%d" % (LOCALHOST, admin_port)}, "drainTimeout": "5s"}
    s.update(spec)
    return {"apiVersion": API, "kind": "Proxy", "metadata": {"name": name}, "spec": s}


def listener_doc(name, port, protocol="http", **spec):
    s = {"address": "%s:%d" % (LOCALHOST, port), "protocol": protocol}
    s.update(spec)
    return {"apiVersion": API, "kind": "Listener", "metadata": {"name": name}, "spec": s}


def cluster_doc(name, endpoints, **spec):
    eps = []
    for e in endpoints:
        if isinstance(e, int):
            eps.append({"address": "%s:%d" % (LOCALHOST, e)})
        elif isinstance(e, str):
            eps.append({"address": e})
        else:
            eps.append(dict(e))
    s = {"endpoints": eps}
    s.update(spec)
    return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name}, "spec": s}


def route_doc(name, parents, rules, **spec):
    s = {"parents": list(parents)}
    s.update(spec)
    s["rules"] = rules
    return {"apiVersion": API, "kind": "Route", "metadata": {"name": name}, "spec": s}


def dump_docs(docs):
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError("%r not in text" % needle)


# --------------------------------------------------------------------------
# Prometheus text parsing
# --------------------------------------------------------------------------

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape_label(v):
    return v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


class Metrics:
    """Parsed Prometheus exposition text: a list of (name, labels, value)."""

    def __init__(self, text):
        self.text = text
        self.samples = []
        self.bad_lines = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                self.bad_lines.append(line)
                continue
            name, lbl, val = m.group(1), m.group(2), m.group(3)
            labels = {}
            if lbl:
                for lm in _LABEL_RE.finditer(lbl):
                    labels[lm.group(1)] = _unescape_label(lm.group(2))
            try:
                v = float(val)
            except ValueError:
                self.bad_lines.append(line)
                continue
            self.samples.append((name, labels, v))

    def find(self, name, **labels):
        out = []
        for n, l, v in self.samples:
            if n != name:
                continue
            if all(l.get(k) == str(want) for k, want in labels.items()):
                out.append((l, v))
        return out

    def get(self, name, **labels):
        """Sum of every series of name whose labels include the given ones."""
        return sum(v for _, v in self.find(name, **labels))

    def has(self, name):
        return any(n == name for n, _, _ in self.samples)

    def describe(self, name):
        rows = ["%s%s %s" % (name, json.dumps(l, sort_keys=True), v) for l, v in self.find(name)]
        return "\n".join(rows) if rows else "(no series named %s)" % name


# --------------------------------------------------------------------------
# Plain HTTP client for admin endpoints (no proxies from the environment)
# --------------------------------------------------------------------------

class HttpResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers   # list of (lower-name, value)
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "HttpResult(status=%r, body=%r)" % (self.status, self.body[:200])


def http_request(port, path, method="GET", headers=None, body=None, timeout=5.0, host=LOCALHOST):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return HttpResult(r.status, [(k.lower(), v) for k, v in r.getheaders()], data)
    finally:
        c.close()


# --------------------------------------------------------------------------
# curl and wrk
# --------------------------------------------------------------------------

class CurlResult:
    def __init__(self, rc, status, headers, body, stderr, num_connects=None, argv=None):
        self.rc = rc
        self.status = status          # int, 0 when no response
        self.headers = headers        # dict lower-name -> list of values
        self.body = body
        self.stderr = stderr
        self.num_connects = num_connects
        self.argv = argv

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "CurlResult(rc=%r, status=%r, body=%r, stderr=%r)" % (
            self.rc, self.status, self.body[:300], self.stderr[-300:])


_W_START = b"~~STRAND-IT-START~~"
_W_END = b"~~STRAND-IT-END~~"


def curl_multi(urls, args=(), headers=None, timeout=8.0):
    """Run one curl over several URLs (one connection, reused) and return one
    CurlResult per transfer, with status, headers, body and num_connects.
    URLs may use curl's globbing ([1-100])."""
    if isinstance(urls, str):
        urls = [urls]
    argv = [CURL, "-sS", "--noproxy", "*", "--max-time", str(timeout),
            "-w", (_W_START.decode() + "%{http_code}|%{num_connects}|%{header_json}" + _W_END.decode())]
    for h in headers or []:
        argv += ["-H", h]
    argv += list(args)
    argv += list(urls)
    # `timeout` bounds each transfer (--max-time) and, plus a little, the
    # whole run: a stuck proxy must not eat the file's time budget. Results
    # of transfers that finished before a kill are still returned.
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout + 2)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_group(p, signal.SIGKILL, grace=1)
        out, err = p.communicate()
        rc = -1
        err += b"\n(curl run killed after %.0f s)" % (timeout + 2)
    stderr = err.decode("utf-8", "replace")
    results = []
    for chunk in out.split(_W_END):
        if _W_START not in chunk:
            continue
        body, meta = chunk.rsplit(_W_START, 1)
        code, nconn, hjson = meta.decode("utf-8", "replace").split("|", 2)
        try:
            hdrs = {k.lower(): v for k, v in json.loads(hjson).items()} if hjson.strip() else {}
        except ValueError:
            hdrs = {}
        try:
            status = int(code)
        except ValueError:
            status = 0
        try:
            nc = int(nconn)
        except ValueError:
            nc = None
        results.append(CurlResult(rc, status, hdrs, body, stderr, nc, argv))
    if not results:
        results.append(CurlResult(rc, 0, {}, out, stderr, None, argv))
    return results


def curl(url, args=(), headers=None, timeout=8.0):
    """One curl transfer; returns a CurlResult (status 0 if none)."""
    return curl_multi([url], args=args, headers=headers, timeout=timeout)[-1]


def curl_start(url, args=(), headers=None, timeout=15.0, out_path=None):
    """Start curl in the background (for concurrent requests). Collect with
    curl_collect()."""
    if out_path is None:
        fd, out_path = tempfile.mkstemp(prefix="strand-it-curl-")
        os.close(fd)
        on_cleanup(lambda: os.path.exists(out_path) and os.unlink(out_path))
    argv = [CURL, "-sS", "--noproxy", "*", "--max-time", str(timeout), "-o", out_path,
            "-w", "%{http_code}"]
    for h in headers or []:
        argv += ["-H", h]
    argv += list(args) + [url]
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.out_path = out_path
    return p


def curl_collect(p, timeout=20.0):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, err = p.communicate()
    try:
        status = int(out.decode().strip() or "0")
    except ValueError:
        status = 0
    try:
        with open(p.out_path, "rb") as f:
            body = f.read()
    except OSError:
        body = b""
    return CurlResult(p.returncode, status, {}, body, err.decode("utf-8", "replace"))


class WrkResult:
    def __init__(self, rc, out):
        self.rc = rc
        self.out = out
        m = re.search(r"(\d+) requests in", out)
        self.requests = int(m.group(1)) if m else None
        m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
        self.non2xx = int(m.group(1)) if m else 0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            self.socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                                          (int(x) for x in m.groups())))
        else:
            self.socket_errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}

    @property
    def total_socket_errors(self):
        return sum(self.socket_errors.values())

    def __repr__(self):
        return "WrkResult(requests=%r, non2xx=%r, socket_errors=%r)" % (
            self.requests, self.non2xx, self.socket_errors)


def wrk_start(url, duration=3, connections=32, threads=2, timeout_s=2, headers=None):
    """Start wrk in the background. Load is bounded: <= 3 s, <= 64 conns, 2 threads."""
    assert duration <= 3 and connections <= 64 and threads <= 2
    argv = [WRK, "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration,
            "--timeout", "%ds" % timeout_s]
    for h in headers or []:
        argv += ["-H", h]
    argv.append(url)
    return spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wrk_collect(p, timeout=15.0):
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, _ = p.communicate()
    return WrkResult(p.returncode, out.decode("utf-8", "replace"))


def wrk(url, **kw):
    return wrk_collect(wrk_start(url, **kw))


# --------------------------------------------------------------------------
# Raw sockets
# --------------------------------------------------------------------------

class RawResult:
    def __init__(self, data, closed, reset, error=None):
        self.data = data        # everything received
        self.closed = closed    # peer closed (FIN or RST) before the deadline
        self.reset = reset      # closed with RST
        self.error = error

    @property
    def status(self):
        m = re.match(rb"HTTP/1\.[01] (\d{3})", self.data)
        return int(m.group(1)) if m else None

    def __repr__(self):
        return "RawResult(closed=%r, reset=%r, error=%r, data=%r)" % (
            self.closed, self.reset, self.error, self.data[:300])


def raw_http(port, data, timeout=5.0, host=LOCALHOST, shut_wr=False):
    """Send data on a fresh connection, then read until the peer closes or the
    deadline passes. Reports whether the connection was closed."""
    deadline = time.monotonic() + timeout
    s = socket.create_connection((host, port), timeout=timeout)
    buf = bytearray()
    closed = reset = False
    err = None
    try:
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError) as e:
            err = "send: %s" % e     # still read whatever the proxy answered
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = reset = True
                break
            if not b:
                closed = True
                break
            buf += b
    finally:
        s.close()
    return RawResult(bytes(buf), closed, reset, err)


class Response:
    def __init__(self, version, status, reason, headers, body, head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers     # list of (lower-name, value)
        self.body = body
        self.head = head

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def __repr__(self):
        return "Response(%r %r, headers=%r, body=%r)" % (self.status, self.reason, self.headers,
                                                        self.body[:200])


class RawConn:
    """A client connection with a buffered reader and an HTTP/1.1 response
    parser (Content-Length, chunked, close-delimited, HEAD/204/304)."""

    def __init__(self, port, host=LOCALHOST, timeout=5.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.timeout = timeout
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out reading from proxy (have %r)" % bytes(self.buf[:200]))
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(262144)
        except socket.timeout:
            raise TimeoutError("timed out reading from proxy (have %r)" % bytes(self.buf[:200]))
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def read_until(self, marker, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if not self._fill(deadline):
                raise EOFError("connection closed before %r (have %r)" % (marker, bytes(self.buf[:200])))

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise EOFError("connection closed after %d of %d bytes" % (len(self.buf), n))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        if not self.buf:
            if not self._fill(deadline):
                return b""
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_to_eof(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._fill(deadline):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_head(self, timeout=None):
        head = self.read_until(b"\r\n\r\n", timeout)
        lines = head[:-4].split(b"\r\n")
        m = re.match(rb"(HTTP/\d\.\d) (\d{3}) ?(.*)", lines[0])
        if not m:
            raise ValueError("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.append((k.strip().lower().decode("latin-1"), v.strip().decode("latin-1")))
        return m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1"), headers, head

    def read_response(self, method="GET", timeout=None, skip_1xx=True):
        while True:
            version, status, reason, headers, head = self.read_head(timeout)
            if skip_1xx and 100 <= status < 200 and status != 101:
                continue
            break
        hd = {}
        for k, v in headers:
            hd.setdefault(k, v)
        body = b""
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in hd.get("transfer-encoding", "").lower():
            parts = []
            while True:
                line = self.read_until(b"\r\n", timeout)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n", timeout) != b"\r\n":
                        pass   # trailers
                    break
                parts.append(self.read_exact(size, timeout))
                self.read_exact(2, timeout)
            body = b"".join(parts)
        elif "content-length" in hd:
            body = self.read_exact(int(hd["content-length"]), timeout)
        else:
            body = self.read_to_eof(timeout)
        return Response(version, status, reason, headers, body, head)

    def closed_by_peer(self, timeout=3.0):
        """Wait up to timeout for EOF/RST; True if the peer closed. Data that
        arrives meanwhile is kept in self.buf."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def simple_get(path, host="strand.test", extra=b""):
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            + extra + b"\r\n")


# --------------------------------------------------------------------------
# nginx backends
# --------------------------------------------------------------------------

# Fields an echo location returns, one "key=value" line each.
ECHO_FIELDS = [
    ("uri", "$request_uri"), ("method", "$request_method"), ("host", "$http_host"),
    ("xff", "$http_x_forwarded_for"), ("via", "$http_via"), ("rid", "$http_x_request_id"),
    ("fwd", "$http_forwarded"), ("xfoo", "$http_x_foo"), ("xbar", "$http_x_bar"),
    ("keepalive", "$http_keep_alive"), ("te", "$http_te"), ("upgrade", "$http_upgrade"),
    ("proxyconn", "$http_proxy_connection"), ("connection", "$http_connection"),
    ("trailer", "$http_trailer"),
    ("xa", "$http_x_a"), ("xc", "$http_x_c"), ("xsecret", "$http_x_secret"),
    ("xuser", "$http_x_user"), ("port", "$server_port"),
]


def echo_return(name):
    """An nginx `return` directive echoing request details (see parse_echo)."""
    body = "backend=%s\\n" % name + "".join("%s=%s\\n" % (k, v) for k, v in ECHO_FIELDS)
    return 'return 200 "%s";' % body


def parse_echo(body):
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    out = {}
    for line in body.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out.setdefault(k, v)
    return out


ACCESS_FORMAT = ("'{\"port\":\"$server_port\",\"method\":\"$request_method\","
                 "\"uri\":\"$request_uri\",\"status\":\"$status\","
                 "\"cl\":\"$content_length\",\"te\":\"$http_transfer_encoding\","
                 "\"body_file\":\"$request_body_file\",\"xff\":\"$http_x_forwarded_for\","
                 "\"xfoo\":\"$http_x_foo\",\"conn\":\"$connection\","
                 "\"conn_reqs\":\"$connection_requests\"}'")


class Nginx:
    """A real nginx with a generated config in its own directory.

    servers: list of dicts, one per `server` block (each on its own free port):
        {"locations": {"/": "return 200 'x';", "= /exact": "..."},
         "extra": "add_header X-Backend v1 always;",
         "listen": "http2"}            (optional: more listen parameters)
      or just a dict of locations.
    files: {relative path under www/: size in bytes or bytes}. Their sha256
      is kept in .sha[path].
    """

    def __init__(self, tmp, servers, name="nginx", files=None, http_extra=""):
        self.name = name
        self.dir = os.path.join(tmp, name)
        self.www = os.path.join(self.dir, "www")
        os.makedirs(self.www, exist_ok=True)
        self.servers = [s if "locations" in s else {"locations": s} for s in servers]
        self.ports = [free_port() for _ in self.servers]
        self.port = self.ports[0]
        self.sha = {}
        self.sizes = {}
        for rel, content in (files or {}).items():
            path = os.path.join(self.www, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if isinstance(content, int):
                self.sha[rel] = write_random_file(path, content)
                self.sizes[rel] = content
            else:
                with open(path, "wb") as f:
                    f.write(content)
                self.sha[rel] = sha256(content)
                self.sizes[rel] = len(content)
        self.http_extra = http_extra
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        self.proc = None

    def conf(self):
        d = self.dir
        out = []
        if os.geteuid() == 0:
            out.append("user root;")   # workers must read our 0700 temp dir
        out += [
            "worker_processes 1;",
            "pid %s/nginx.pid;" % d,
            "error_log %s info;" % self.error_log,
            "events { worker_connections 4096; }",
            "http {",
            "  client_body_temp_path %s/client_body;" % d,
            "  proxy_temp_path %s/proxy_temp;" % d,
            "  fastcgi_temp_path %s/fastcgi_temp;" % d,
            "  uwsgi_temp_path %s/uwsgi_temp;" % d,
            "  scgi_temp_path %s/scgi_temp;" % d,
            "  log_format strand_it escape=json %s;" % ACCESS_FORMAT,
            "  access_log %s strand_it;" % self.access_log,
            "  default_type application/octet-stream;",
            "  keepalive_requests 1000000;",
            "  keepalive_timeout 65 60;",
            "  client_max_body_size 256m;",
            "  sendfile on;",
            self.http_extra,
        ]
        for port, srv in zip(self.ports, self.servers):
            out.append("  server {")
            # "listen": extra parameters of the listen directive, e.g. "http2"
            # (h2c, prior knowledge) or "ssl http2" (with "extra" holding the
            # ssl_certificate lines).
            out.append("    listen %s:%d reuseport%s;" % (
                LOCALHOST, port, " " + srv["listen"] if srv.get("listen") else ""))
            out.append("    root %s;" % self.www)
            if srv.get("extra"):
                out.append("    " + srv["extra"])
            for loc, body in srv["locations"].items():
                body = body.replace("{PORT}", str(port)).replace("{WWW}", self.www)
                out.append("    location %s { %s }" % (loc, body))
            out.append("  }")
        out.append("}")
        return "\n".join(out) + "\n"

    def start(self, timeout=10.0):
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(self.conf())
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc = spawn([NGINX, "-p", self.dir, "-c", path, "-e", self.error_log,
                           "-g", "daemon off;"],
                          stdout=open(os.path.join(self.dir, "stdout.log"), "wb"),
                          stderr=open(self.stderr_path, "wb"))
        ok = wait_for(lambda: self.proc.poll() is not None or all(port_accepts(p) for p in self.ports),
                      timeout)
        if self.proc.poll() is not None or not ok:
            raise RuntimeError("nginx %s did not start (rc=%r):\n%s\n%s" % (
                self.name, self.proc.poll(), tail_file(self.stderr_path), tail_file(self.error_log)))
        on_cleanup(self.stop)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc, signal.SIGTERM, grace=3)

    def access_entries(self):
        out = []
        try:
            with open(self.access_log, "rb") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out

    def access_count(self):
        return len(self.access_entries())


# --------------------------------------------------------------------------
# Strand
# --------------------------------------------------------------------------

class StrandError(Exception):
    pass


class Strand:
    """A strand proxy process run from generated config files.

    files: a list of YAML docs (one file) or a list of such lists (several
    files, passed as -c a -c b), or strings of YAML text."""

    _count = 0

    def __init__(self, tmp, files, name=None):
        Strand._count += 1
        self.name = name or "strand%d" % Strand._count
        self.dir = os.path.join(tmp, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.paths = []
        self.ports = {}
        self.listener_protocols = {}
        self.admin_port = None
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.write(files)

    @staticmethod
    def _normalise(files):
        if isinstance(files, str):
            return [files]
        if files and isinstance(files[0], dict):
            return [files]
        return list(files)

    def write(self, files):
        """(Re)write the config files; learns admin and listener ports."""
        files = self._normalise(files)
        paths = []
        for i, docs in enumerate(files):
            path = os.path.join(self.dir, "config-%d.yaml" % i)
            text = docs if isinstance(docs, str) else dump_docs(docs)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)   # atomic: a reload never sees half a file
            paths.append(path)
            try:
                parsed = list(yaml.safe_load_all(text))
            except yaml.YAMLError:
                parsed = []
            for d in parsed:
                if not isinstance(d, dict):
                    continue
                spec = d.get("spec") or {}
                if d.get("kind") == "Proxy":
                    addr = (spec.get("admin") or {}).get("address")
                    if addr:
                        self.admin_port = int(str(addr).rsplit(":", 1)[1])
                elif d.get("kind") == "Listener" and isinstance(spec.get("address"), str):
                    self.ports[d["metadata"]["name"]] = int(spec["address"].rsplit(":", 1)[1])
                    self.listener_protocols[d["metadata"]["name"]] = spec.get("protocol", "http")
        if self.proc is None:
            self.paths = paths
        return paths

    # -- process --

    def start(self, timeout=15.0, wait_listeners=True):
        argv = [STRAND_BIN, "proxy"]
        for p in self.paths:
            argv += ["-c", p]
        if not os.path.exists(STRAND_BIN):
            raise StrandError("strand binary not found at %s (build it, or set STRAND_BIN)" % STRAND_BIN)
        self.proc = spawn(argv, stdout=open(self.stdout_path, "wb"), stderr=open(self.stderr_path, "wb"))
        on_cleanup(self.kill)

        def ready():
            # With an admin port, GET /ready == 200 means "serving" (spec), so
            # no probe connection is made to the listeners: probes would show
            # up in connection counters the tests check exactly.
            if self.proc.poll() is not None:
                return True
            if self.admin_port is not None:
                try:
                    return http_request(self.admin_port, "/ready", timeout=1).status == 200
                except OSError:
                    return False
            if wait_listeners:
                return all(port_accepts(p) for p in self.ports.values())
            return True

        ok = wait_for(ready, timeout, interval=0.05)
        if self.proc.poll() is not None:
            raise StrandError("strand exited during startup with rc=%r; stderr:\n%s"
                              % (self.proc.returncode, self.tail(30)))
        if not ok:
            raise StrandError("strand not ready within %.0f s (admin /ready and listeners); stderr:\n%s"
                              % (timeout, self.tail(30)))
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def describe(self):
        if self.proc is None:
            return "not started"
        rc = self.proc.poll()
        return "running (pid %d)" % self.proc.pid if rc is None else "exited rc=%r" % rc

    def tail(self, n=25):
        return tail_file(self.stderr_path, n)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc, signal.SIGTERM, grace=3)

    def stop(self, timeout=10.0):
        """SIGTERM (graceful shutdown) and wait; returns the exit code, or
        None if strand did not exit in time (it is then killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc, signal.SIGKILL, grace=1)
            return None

    def restart(self, timeout=15.0):
        """Start again with the same files after a crash or stop; the old
        logs are kept as stderr.N.log / stdout.N.log."""
        if self.alive():
            self.stop()
        self.restarts = getattr(self, "restarts", 0) + 1
        for path in (self.stderr_path, self.stdout_path):
            if os.path.exists(path):
                os.replace(path, path.replace(".log", ".%d.log" % self.restarts))
        self.proc = None
        return self.start(timeout=timeout)

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    # -- addresses --

    def port(self, listener):
        return self.ports[listener]

    def url(self, path="/", listener=None):
        if listener is None:
            listener = next(iter(self.ports))
        return "http://%s:%d%s" % (LOCALHOST, self.ports[listener], path)

    @property
    def admin_url(self):
        return "http://%s:%d" % (LOCALHOST, self.admin_port)

    # -- admin --

    def admin(self, path, method="GET", timeout=5.0, body=None):
        return http_request(self.admin_port, path, method=method, timeout=timeout, body=body)

    def metrics_text(self):
        r = self.admin("/metrics")
        if r.status != 200:
            raise StrandError("GET /metrics -> %d %r" % (r.status, r.body[:200]))
        return r.text

    def metrics(self):
        return Metrics(self.metrics_text())

    def reload_counts(self):
        try:
            m = self.metrics()
        except (OSError, StrandError):
            return None
        return (m.get("strand_config_reloads_total", result="ok"),
                m.get("strand_config_reloads_total", result="error"))

    def reload_sighup(self, wait=True, timeout=10.0):
        """Send SIGHUP. With wait, poll strand_config_reloads_total until it
        moves; returns "ok", "error", or None if it never moved."""
        before = self.reload_counts() if wait else None
        self.proc.send_signal(signal.SIGHUP)
        if not wait or before is None:
            return None

        def moved():
            now = self.reload_counts()
            if now is None:
                return None
            if now[1] > before[1]:
                return "error"
            if now[0] > before[0]:
                return "ok"
            return None
        return wait_for(moved, timeout, interval=0.02)

    def post_reload(self, timeout=10.0):
        return self.admin("/reload", method="POST", timeout=timeout, body=b"")


def start_strand(suite, tmp, files, **kw):
    s = Strand(tmp, files)
    suite.track(s)
    return s.start(**kw)


def strand_cli(args, timeout=15.0):
    """Run `strand ARGS` to completion; returns CompletedProcess (text)."""
    if not os.path.exists(STRAND_BIN):
        raise StrandError("strand binary not found at %s" % STRAND_BIN)
    return subprocess.run([STRAND_BIN] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------
# Python backends, for roles nginx can't play. They run as threads in the
# test process; stop() closes every socket they hold.
# --------------------------------------------------------------------------

class _ThreadedServer:
    def __init__(self, port=None):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((LOCALHOST, port or 0))
        self.lsock.listen(512)
        self.port = self.lsock.getsockname()[1]
        _used_ports.add(self.port)
        self.stopping = threading.Event()
        self.conns = set()
        self.lock = threading.Lock()
        self.accepted = 0
        self.errors = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()
        on_cleanup(self.stop)

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                break
            with self.lock:
                self.accepted += 1
                self.conns.add(c)
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handle(c)
        except OSError:
            pass
        except Exception as e:  # a bug in the helper: keep it visible
            self.errors.append(repr(e))
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def handle(self, c):
        raise NotImplementedError

    def stop(self):
        self.stopping.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass


def _read_request_head(c, buf, timeout=10.0):
    """Read one request head from c; returns (head bytes, rest) or (None, buf)."""
    c.settimeout(timeout)
    while b"\r\n\r\n" not in buf:
        b = c.recv(65536)
        if not b:
            return None, buf
        buf += b
    i = buf.index(b"\r\n\r\n") + 4
    return bytes(buf[:i]), bytearray(buf[i:])


def _head_headers(head):
    out = {}
    for line in head.split(b"\r\n")[1:]:
        k, sep, v = line.partition(b":")
        if sep:
            out[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    return out


def _recv_until(c, buf, sep):
    """Reads from c into buf until sep is in it; returns (line, rest) split
    after sep, or (None, buf) when the peer closed first."""
    while sep not in buf:
        b = c.recv(65536)
        if not b:
            return None, buf
        buf += b
    i = buf.index(sep) + len(sep)
    return bytes(buf[:i]), bytearray(buf[i:])


def read_chunked(c, buf):
    """Reads a chunked body from c (buf holds what came already); returns
    (payload, raw trailer section without the final CRLF, rest) or None."""
    payload = b""
    while True:
        line, buf = _recv_until(c, buf, b"\r\n")
        if line is None:
            return None
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            break
        while len(buf) < size + 2:
            b = c.recv(65536)
            if not b:
                return None
            buf += b
        payload += bytes(buf[:size])
        buf = buf[size + 2:]
    trailers = b""
    while True:
        line, buf = _recv_until(c, buf, b"\r\n")
        if line is None:
            return None
        if line == b"\r\n":
            return payload, trailers, buf
        trailers += line


class TrailerEcho(_ThreadedServer):
    """An HTTP/1.1 backend for trailers (nginx does not show request
    trailers). One request per connection: its body (chunked or with a
    content-length) is read whole; the answer is chunked, its body
    "body=<payload>\ntrailers=<the request's trailer lines, ';' for CRLF>\n"
    and its trailer section `resp_trailers`. Each request's (head,
    trailers) is kept in .seen."""

    def __init__(self, resp_trailers=b"x-up-trailer: yes\r\nx-up-rename: r\r\n"):
        self.resp_trailers = resp_trailers
        self.seen = []
        super().__init__()

    def handle(self, c):
        head, buf = _read_request_head(c, bytearray())
        if head is None:
            return
        hs = _head_headers(head)
        trailers = b""
        if "chunked" in hs.get("transfer-encoding", ""):
            got = read_chunked(c, buf)
            if got is None:
                return
            payload, trailers, _ = got
        else:
            n = int(hs.get("content-length", "0"))
            while len(buf) < n:
                b = c.recv(65536)
                if not b:
                    return
                buf += b
            payload = bytes(buf[:n])
        self.seen.append((head, trailers))
        body = b"body=" + payload + b"\ntrailers=" + trailers.replace(b"\r\n", b";") + b"\n"
        c.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n"
                  b"\r\n%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, self.resp_trailers))


class SlowServer(_ThreadedServer):
    """A backend that is slow on purpose (nginx has no per-request delay).

    For every request it waits head_delay seconds, sends the response head
    (Content-Length), then waits body_delay seconds -- or until `gate` is set
    if a gate Event is given -- and sends the body. All waits are bounded by
    max_wait and end at stop(). Keep-alive is supported."""

    def __init__(self, body=b"slow body\n", head_delay=0.0, body_delay=1.0, gate=None,
                 max_wait=10.0, port=None):
        self.body = body
        self.head_delay = head_delay
        self.body_delay = body_delay
        self.gate = gate
        self.max_wait = max_wait
        self.requests = 0
        self.heads_sent = 0
        self.bodies_sent = 0
        self.active = 0
        self.max_active = 0
        super().__init__(port)

    def handle(self, c):
        buf = bytearray()
        while not self.stopping.is_set():
            head, buf = _read_request_head(c, buf, timeout=30)
            if head is None:
                return
            hd = _head_headers(head)
            n = int(hd.get("content-length", "0") or 0)
            while len(buf) < n:
                b = c.recv(65536)
                if not b:
                    return
                buf += b
            del buf[:n]
            with self.lock:
                self.requests += 1
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            try:
                if self.head_delay:
                    self.stopping.wait(min(self.head_delay, self.max_wait))
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                          % len(self.body))
                with self.lock:
                    self.heads_sent += 1
                if self.gate is not None:
                    self.gate.wait(self.max_wait)
                elif self.body_delay:
                    self.stopping.wait(min(self.body_delay, self.max_wait))
                c.sendall(self.body)
                with self.lock:
                    self.bodies_sent += 1
            finally:
                with self.lock:
                    self.active -= 1
            if hd.get("connection", "").lower() == "close":
                return


class EchoWebSocketServer(_ThreadedServer):
    """Answers an Upgrade: websocket request with 101 (correct
    Sec-WebSocket-Accept) and then echoes raw bytes until EOF. nginx can't
    be a websocket endpoint, hence Python."""

    GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, port=None):
        self.request_headers = []
        super().__init__(port)

    def handle(self, c):
        head, rest = _read_request_head(c, bytearray())
        if head is None:
            return
        hd = _head_headers(head)
        self.request_headers.append(hd)
        if hd.get("upgrade", "").lower() != "websocket":
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nnot upgrade")
            return
        key = hd.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + self.GUID).digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        if rest:
            c.sendall(bytes(rest))
        c.settimeout(30)
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)


class TcpEchoServer(_ThreadedServer):
    """Echoes bytes; when the client half-closes (EOF), writes "bye" and
    closes. Used to check that half-close crosses the proxy."""

    def __init__(self, port=None):
        self.bytes_echoed = 0
        super().__init__(port)

    def handle(self, c):
        c.settimeout(60)
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
            with self.lock:
                self.bytes_echoed += len(b)
        c.sendall(b"bye")
        c.shutdown(socket.SHUT_WR)


class ResetServer(_ThreadedServer):
    """Accepts, reads what arrives first (the request, up to read_timeout),
    then closes with RST (SO_LINGER 0). nginx can't reset on purpose."""

    def __init__(self, read_first=True, read_timeout=1.0, port=None):
        self.read_first = read_first
        self.read_timeout = read_timeout
        super().__init__(port)

    def handle(self, c):
        if self.read_first:
            c.settimeout(self.read_timeout)
            try:
                c.recv(65536)
            except socket.timeout:
                pass
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
