# bench/lib.sh - shared helpers for the bench/*.sh benchmarks. Source it:
#
#   . "$(dirname "$0")/lib.sh"
#   bench_init http1            # temp dir, traps, limits, CPU pinning plan
#   bench_spawn NAME CPU LOG cmd...   -> $SPAWNED_PID (own process group)
#   bench_wait_listen PORT SECS PID   / bench_wait_http URL SECS PID
#   bench_cpu_ticks PID / bench_rss_kb PID / bench_hwm_kb PID (whole group)
#   bench_wrk URL CONNS SECS OUT      -> WRK_RPS WRK_P50_MS WRK_P99_MS ...
#   bench_idle_conns HOST PORT N PID  -> IDLE_KIB_PER_CONN, IDLE_OPEN
#   bench_stop PID                    (TERM the group, then KILL)
#   bench_report "line"               (stdout + the report file)
#
# Everything a benchmark starts goes through bench_spawn, so the EXIT trap
# stops all of it, whatever way the script ends. Processes run in their own
# process group (setsid); CPU and memory are summed over that group, so
# master/worker servers (nginx) are measured whole.
#
# Environment common to all benchmarks:
#   BENCH_PROXY_CPU (0)  CPU the proxy under test is pinned to
#   BENCH_LOAD_CPU  (1)  CPU for the load generator and the backend
#   BENCH_PIN       (1)  0 disables pinning (forced off with fewer than 2 CPUs)
#   BENCH_NICE      (-20 as root, else 0) nice level of everything measured
#   BENCH_KEEP_TMP  (0)  1 keeps the temp dir (configs and logs) for debugging
# shellcheck shell=bash disable=SC2034  # variables here are used by the scripts that source it

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_TMP=""
BENCH_PIDS=()
BENCH_REPORT=""
SPAWNED_PID=""

bench_log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "ERROR: $*"; exit 1; }

# bench_init NAME: temp dir, cleanup trap, fd limit, clock ticks, pinning.
bench_init() {
    local name=$1
    BENCH_TMP=$(mktemp -d "/tmp/strand-bench-$name.XXXXXX")
    # Servers drop privileges for their workers (nginx runs them as nobody):
    # let them read what is generated here.
    chmod 755 "$BENCH_TMP"
    trap bench_cleanup EXIT
    trap 'bench_log "interrupted"; exit 130' INT TERM HUP
    CLK_TCK=$(getconf CLK_TCK)
    BENCH_LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
    # Many connections: raise the fd limit for us and everything we start.
    local hard
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
    ulimit -n "$hard" 2>/dev/null || true
    NCPU=$(nproc)
    BENCH_PROXY_CPU=${BENCH_PROXY_CPU:-0}
    BENCH_LOAD_CPU=${BENCH_LOAD_CPU:-1}
    BENCH_PIN=${BENCH_PIN:-1}
    if [ "$NCPU" -lt 2 ] && [ "$BENCH_PIN" = 1 ]; then
        bench_log "only $NCPU CPU: running without CPU pinning"
        BENCH_PIN=0
    fi
    if [ "$BENCH_PIN" = 1 ] && ! command -v taskset >/dev/null 2>&1; then
        bench_log "taskset not found (util-linux): running without CPU pinning"
        BENCH_PIN=0
    fi
    # As root, run everything measured at a high priority (nice -20), so
    # that other work on the machine (builds, fuzzers) takes next to no CPU
    # from the benchmark. Same for every proxy. BENCH_NICE=0 turns it off.
    if [ -z "${BENCH_NICE+x}" ]; then
        if [ "$(id -u)" = 0 ]; then BENCH_NICE=-20; else BENCH_NICE=0; fi
    fi
}

# bench_need CMD...: fail early with a clear message.
bench_need() {
    local c missing=()
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
    if [ ${#missing[@]} -gt 0 ]; then
        bench_die "missing: ${missing[*]} (run: bash scripts/deps.sh bench)"
    fi
}

bench_cleanup() {
    local rc=$?
    trap - EXIT
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        bench_stop "$pid" 3 quiet
    done
    BENCH_PIDS=()
    if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ]; then
        if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then
            bench_log "kept $BENCH_TMP"
        else
            rm -rf "$BENCH_TMP"
        fi
    fi
    exit "$rc"
}

# bench_pin_prefix CPU: prints the command prefix that runs a benchmark
# process: pinned to CPU (unless pinning is off or CPU is ""), and at
# BENCH_NICE priority (may be empty).
bench_pin_prefix() {
    local p=""
    if [ -n "$BENCH_NICE" ] && [ "$BENCH_NICE" != 0 ]; then p="nice -n $BENCH_NICE"; fi
    if [ "$BENCH_PIN" = 1 ] && [ -n "${1:-}" ]; then p="$p taskset -c $1"; fi
    echo "$p"
}

# bench_spawn NAME CPU LOG CMD...: start CMD in the background in its own
# process group (pid == pgid), pinned to CPU ("" = not pinned), output to LOG.
# Sets SPAWNED_PID (call it directly, not in $(...)).
bench_spawn() {
    local name=$1 cpu=$2 log=$3; shift 3
    local pin
    read -r -a pin <<<"$(bench_pin_prefix "$cpu")"
    # In a script (no job control) the background child is not a group
    # leader, so setsid makes the new session in place and keeps the pid.
    setsid "${pin[@]}" "$@" >"$log" 2>&1 </dev/null &
    SPAWNED_PID=$!
    BENCH_PIDS+=("$SPAWNED_PID")
    bench_autogroup_nice "$SPAWNED_PID"
    [ -n "$name" ] && bench_log "started $name (pid $SPAWNED_PID${cpu:+, cpu $cpu}): $*"
    return 0
}

# bench_autogroup_nice PID: with autogroup scheduling (the kernel's
# sched_autogroup_enabled), each session is a scheduling group and nice only
# orders processes inside it; so the new session of PID gets BENCH_NICE too.
# Only once PID leads its own session, so the caller's is never changed.
bench_autogroup_nice() {
    local pid=$1 i sid
    [ "$BENCH_NICE" != 0 ] || return 0
    [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] || return 0
    for ((i = 0; i < 100; i++)); do
        sid=$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')
        [ -z "$sid" ] && return 0          # already gone
        if [ "$sid" = "$pid" ]; then
            if ! { echo "$BENCH_NICE" >"/proc/$pid/autogroup"; } 2>/dev/null &&
                kill -0 "$pid" 2>/dev/null; then
                bench_log "could not set the scheduling priority of pid $pid"
            fi
            return 0
        fi
        sleep 0.01
    done
}

# bench_run CPU OUT CMD...: run CMD to completion like bench_spawn (own
# session, pinned, priority), output to OUT; returns its exit status.
bench_run() {
    local cpu=$1 out=$2; shift 2
    bench_spawn "" "$cpu" "$out" "$@"
    local pid=$SPAWNED_PID rc=0
    wait "$pid" || rc=$?
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
    return "$rc"
}

bench_alive() { kill -0 "$1" 2>/dev/null; }

# bench_stop PID [GRACE_SECS] [quiet]: TERM the process group, wait, KILL.
bench_stop() {
    local pid=$1 grace=${2:-5} quiet=${3:-}
    local i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < grace * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            [ -z "$quiet" ] && bench_log "pid $pid did not stop in ${grace}s: KILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
        fi
    fi
    # Leftovers of the group (workers) whose leader is gone.
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
}

# bench_group_pids PGID: the pids of a process group (one per line).
bench_group_pids() {
    ps -e -o pid=,pgid= | awk -v g="$1" '$2 == g { print $1 }'
}

# bench_cpu_ticks PGID: utime+stime (clock ticks) summed over the group.
# Fields 14 and 15 of /proc/PID/stat; the comm field (2) may hold spaces,
# so fields are counted after its closing parenthesis.
bench_cpu_ticks() {
    local pid total=0 stat rest
    for pid in $(bench_group_pids "$1"); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        # rest starts at field 3 (state): utime is the 12th word, stime the 13th
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# bench_cpu_busy_ticks CPU: busy ticks of one CPU so far (/proc/stat: user +
# nice + system; not irq/softirq, which hold the proxy's own network work), to
# see what else ran on the proxy's CPU.
bench_cpu_busy_ticks() {
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4; exit }' /proc/stat
}

# bench_status_kb PGID FIELD: sum of a /proc/PID/status kB field over the group.
bench_status_kb() {
    local pid total=0 v
    for pid in $(bench_group_pids "$1"); do
        v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
bench_rss_kb() { bench_status_kb "$1" VmRSS; }
bench_hwm_kb() { bench_status_kb "$1" VmHWM; }

# bench_port_free PORT: true when no TCP socket uses local port PORT, in any
# state (a client socket that got it as its ephemeral port also blocks a
# bind). Pick ports below ip_local_port_range (32768 by default).
bench_port_free() {
    [ -z "$(ss -Hatn "sport = :$1" 2>/dev/null)" ]
}

# bench_ports FROM NAME...: sets each NAME to a port of one block of free
# ports: BENCH_PORT_BASE's, or the first free block from FROM on (steps of
# 10, below the ephemeral range so that client connections cannot hold
# them); PORT_BASE is its first. Dies when one of them is in use.
bench_ports() {
    local from=$1 base=${BENCH_PORT_BASE:-} i ok name
    shift
    if [ -z "$base" ]; then
        for ((base = from; base < from + 400; base += 10)); do
            ok=1
            for ((i = 0; i < $#; i++)); do bench_port_free $((base + i)) || ok=0; done
            [ "$ok" = 1 ] && break
        done
    fi
    PORT_BASE=$base
    i=0
    for name in "$@"; do
        bench_port_free $((base + i)) || bench_die "port $((base + i)) is in use (set BENCH_PORT_BASE)"
        printf -v "$name" '%s' $((base + i))
        i=$((i + 1))
    done
}

# bench_wait_listen PORT SECS [PID]: wait until something listens on PORT
# (without connecting to it); fails early if PID died.
bench_wait_listen() {
    local port=$1 secs=$2 pid=${3:-} i
    for ((i = 0; i < secs * 10; i++)); do
        if [ -n "$pid" ] && ! bench_alive "$pid"; then return 1; fi
        [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    return 1
}

# bench_wait_http URL SECS [PID]: wait until URL answers 2xx.
bench_wait_http() {
    local url=$1 secs=$2 pid=${3:-} i
    for ((i = 0; i < secs * 5; i++)); do
        if [ -n "$pid" ] && ! bench_alive "$pid"; then return 1; fi
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# bench_to_ms VALUE: wrk's "95.12us" / "1.23ms" / "1.02s" / "1.5m" -> ms.
bench_to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000;
        else if (u == "m") n *= 60000; else if (u == "h") n *= 3600000;
        printf "%.3f", n }'
}

# bench_wrk URL CONNS SECS OUTFILE [THREADS]: run wrk --latency pinned to the
# load CPU, save its output, parse it. Sets WRK_RPS, WRK_REQS, WRK_P50_MS,
# WRK_P99_MS and WRK_ERRORS (non-2xx/3xx responses + socket errors).
bench_wrk() {
    local url=$1 conns=$2 secs=$3 out=$4 threads=${5:-${BENCH_WRK_THREADS:-1}}
    # Fewer connections than threads is an error in wrk.
    [ "$threads" -gt "$conns" ] && threads=$conns
    bench_run "$BENCH_LOAD_CPU" "$out" \
        wrk -t "$threads" -c "$conns" -d "${secs}s" --timeout 5s --latency "$url" || true
    bench_wrk_parse "$out" "$url"
}

# bench_wrk_parse OUT URL: sets WRK_RPS, WRK_REQS, WRK_P50_MS, WRK_P99_MS and
# WRK_ERRORS from wrk's output in OUT; returns 1 when wrk produced nothing.
bench_wrk_parse() {
    local out=$1 url=$2
    local p50 p99
    WRK_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    WRK_REQS=$(awk '/ requests in / { print $1 }' "$out")
    p50=$(awk '/Latency Distribution/ { d = 1 } d && $1 == "50%" { print $2; exit }' "$out")
    p99=$(awk '/Latency Distribution/ { d = 1 } d && $1 == "99%" { print $2; exit }' "$out")
    WRK_P50_MS=$( [ -n "$p50" ] && bench_to_ms "$p50" || echo "")
    WRK_P99_MS=$( [ -n "$p99" ] && bench_to_ms "$p99" || echo "")
    WRK_ERRORS=$(awk '
        /Non-2xx or 3xx responses:/ { e += $NF }
        /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) e += $i + 0 }
        END { print e + 0 }' "$out")
    if [ -z "$WRK_RPS" ] || [ -z "$WRK_REQS" ]; then
        bench_log "wrk produced no result for $url (see below)"
        sed 's/^/    /' "$out" >&2
        return 1
    fi
}

# bench_idle_conns HOST PORT N PGID: open N keep-alive connections, each after
# one request/response, and keep them idle; measure the RSS of process group
# PGID before and after. Sets IDLE_KIB_PER_CONN (1 decimal) and IDLE_OPEN
# (connections still open when the measurement was taken).
bench_idle_conns() {
    local host=$1 port=$2 n=$3 pid=$4
    local py="$BENCH_TMP/idle_conns.py" out="$BENCH_TMP/idle_conns.out"
    local stop="$BENCH_TMP/idle_conns.stop"
    IDLE_KIB_PER_CONN=""; IDLE_OPEN=0
    bench_write_idle_py "$py"
    rm -f "$stop" "$out"
    # One request first, so pools and lazily allocated state exist before
    # the baseline is taken.
    curl -fsS -o /dev/null --max-time 5 "http://$host:$port/" || true
    sleep 0.5
    local before after i pypid
    before=$(bench_rss_kb "$pid")
    bench_spawn "" "$BENCH_LOAD_CPU" "$out" /usr/bin/python3 "$py" "$host" "$port" "$n" "$stop"
    pypid=$SPAWNED_PID
    for ((i = 0; i < 600; i++)); do     # at most 60 s
        grep -q '^READY' "$out" 2>/dev/null && break
        kill -0 "$pypid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^READY' "$out" 2>/dev/null; then
        bench_log "idle connection client failed:"; sed 's/^/    /' "$out" >&2
        touch "$stop"; bench_stop "$pypid" 2 quiet
        return 1
    fi
    sleep 1
    after=$(bench_rss_kb "$pid")
    touch "$stop"
    for ((i = 0; i < 100; i++)); do     # it exits by itself; 10 s at most
        kill -0 "$pypid" 2>/dev/null || break
        sleep 0.1
    done
    bench_stop "$pypid" 2 quiet
    IDLE_OPEN=$(awk '/^OPEN/ { print $2 }' "$out")
    IDLE_OPEN=${IDLE_OPEN:-0}
    IDLE_KIB_PER_CONN=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }')
    IDLE_RSS_BEFORE_KB=$before
    IDLE_RSS_AFTER_KB=$after
    if [ "$IDLE_OPEN" -lt "$n" ]; then
        bench_log "warning: only $IDLE_OPEN of $n connections were still open afterwards"
    fi
}

# The client for bench_idle_conns: raw sockets, bounded (60 s to connect,
# 120 s holding at most).
bench_write_idle_py() {
    cat >"$1" <<'PY'
import os, resource, select, socket, sys, time

host, port, n, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 64
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
REQ = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: strand-bench-idle\r\n\r\n"

def response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            raise EOFError("connection closed before the response head")
        buf += c
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, chunked = 0, False
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        if k == b"content-length":
            length = int(v.strip())
        elif k == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    while (b"0\r\n\r\n" not in body) if chunked else (len(body) < length):
        c = s.recv(65536)
        if not c:
            raise EOFError("connection closed in the body")
        body += c
    return status

deadline = time.monotonic() + 60
socks = []
try:
    for i in range(n):
        if time.monotonic() > deadline:
            raise TimeoutError("took over 60 s to open %d connections" % n)
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(REQ)
        st = response(s)
        if st != 200:
            raise RuntimeError("status %d on connection %d" % (st, i))
        socks.append(s)
except Exception as e:
    print("ERROR after %d connections: %s" % (len(socks), e), flush=True)
    sys.exit(1)
print("READY %d" % len(socks), flush=True)
end = time.monotonic() + 120
while time.monotonic() < end and not os.path.exists(stop):
    time.sleep(0.05)
# Count the connections the server kept open: readable + EOF means closed.
open_ = 0
for s in socks:
    r, _, _ = select.select([s], [], [], 0)
    if r:
        try:
            s.setblocking(False)
            if s.recv(1) == b"":
                continue
        except OSError:
            continue
    open_ += 1
print("OPEN %d" % open_, flush=True)
for s in socks:
    s.close()
PY
}

# bench_report_open FILE: report lines go to stdout and FILE.
bench_report_open() {
    BENCH_REPORT=$1
    mkdir -p "$(dirname "$BENCH_REPORT")"
    : >"$BENCH_REPORT"
}
bench_report() {
    printf '%s\n' "$*"
    [ -n "$BENCH_REPORT" ] && printf '%s\n' "$*" >>"$BENCH_REPORT"
    return 0
}

# bench_fmt_kib KB: "12.3 MiB".
bench_fmt_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# bench_ratio A B: A/B to 2 decimals, or n/a.
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'
}

# bench_machine_info: a few report lines describing the machine.
bench_machine_info() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    bench_report "- Machine: ${cpu:-unknown CPU}, $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); load average at start ${BENCH_LOADAVG:-?} (anything else running skews the numbers)"
    if [ "$BENCH_PIN" = 1 ]; then
        bench_report "- Pinning: proxy on CPU $BENCH_PROXY_CPU; backend and load generator on CPU $BENCH_LOAD_CPU"
    else
        bench_report "- Pinning: none"
    fi
    if [ "$BENCH_NICE" != 0 ]; then
        bench_report "- Priority: everything measured runs at nice $BENCH_NICE"
    fi
}

# ---------------------------------------------------------------- nginx
# The nginx backend every benchmark proxies to, and the pieces of an nginx
# config the scripts share. bench_write_backend_conf DIR uses the caller's
# BACKEND_PORT and BODY.

bench_nginx_common() {
    cat <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
EOF
}
# The parts of the proxies' configurations every benchmark shares.

# bench_strand_head WHAT ADMIN_PORT: the head of a Strand config (a
# comment naming its generator, then the Proxy: 1 worker, admin address);
# the caller goes on with more of the Proxy's spec or the next document.
bench_strand_head() {
    cat <<EOF
# generated by $1
apiVersion: strand.dev/v1alpha1
kind: Proxy
metadata: {name: bench}
spec:
  workers: 1
  admin: {address: 127.0.0.1:$2}
EOF
}

# bench_haproxy_head: HAProxy's global and defaults sections: 1 thread, no
# logging, HTTP keep-alive both ways, long timeouts.
bench_haproxy_head() {
    cat <<EOF
global
    nbthread 1
    maxconn 8000
    # no "log" line: no logging

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
    timeout http-request 10s
EOF
}

# bench_nginx_upstream NAME PORT: an nginx upstream on 127.0.0.1:PORT with
# a keep-alive pool.
bench_nginx_upstream() {
    cat <<EOF
    upstream $1 {
        server 127.0.0.1:$2;
        keepalive 64;
        keepalive_requests 100000000;
    }
EOF
}

# bench_nginx_pass: the location passing everything to upstream "backend"
# over kept-alive HTTP/1.1.
bench_nginx_pass() {
    cat <<EOF
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
EOF
}

# bench_nginx_http DIR: the start of nginx's http block: no access log,
# temporary files under DIR/tmp, long keep-alive.
bench_nginx_http() {
    cat <<EOF
http {
    access_log off;
$(bench_nginx_temp_paths "$1")
    keepalive_requests 100000000;
    keepalive_timeout 600s;
EOF
}

# bench_strand_route: the Route sending every request of Listener "bench"
# to Cluster "backend" (a caller may append to its backends line).
bench_strand_route() {
    cat <<EOF
---
apiVersion: strand.dev/v1alpha1
kind: Route
metadata: {name: bench}
spec:
  parents: [bench]
  rules:
  - name: all
    match: [{attribute: path, prefix: /}]
    backends: [{cluster: backend}]
EOF
}

bench_nginx_temp_paths() {
    cat <<EOF
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

bench_write_backend_conf() {
    local p=$1
    mkdir -p "$p/tmp"
    {
        bench_nginx_common "$p"
        cat <<EOF
$(bench_nginx_http "$p")
    default_type text/plain;
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096;
        location / { return 200 "$BODY\n"; }
    }
}
EOF
    } >"$p/nginx.conf"
}

# ---------------------------------------------------------------- proxies
# bench_start_proxy NAME: start haproxy, nginx or strand pinned to the proxy
# CPU with the config the calling script's write_haproxy_conf,
# write_nginx_proxy_conf or write_strand_conf produces, and wait until it
# listens on PROXY_PORT (strand: until ADMIN_PORT/ready). Sets PROXY_PID and
# PROXY_LOG; non-zero with SKIP_REASON set when it cannot be measured.
PROXY_PID=""
PROXY_LOG=""

bench_start_proxy() {
    local name=$1 dir="$BENCH_TMP/$1"
    mkdir -p "$dir"
    PROXY_LOG="$dir/out.log"
    case "$name" in
        haproxy)
            command -v haproxy >/dev/null || { SKIP_REASON="haproxy not installed"; return 1; }
            write_haproxy_conf "$dir/haproxy.cfg"
            bench_spawn haproxy "$BENCH_PROXY_CPU" "$PROXY_LOG" haproxy -f "$dir/haproxy.cfg" -db
            ;;
        nginx)
            write_nginx_proxy_conf "$dir"
            bench_spawn nginx-proxy "$BENCH_PROXY_CPU" "$PROXY_LOG" \
                nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
            ;;
        strand)
            [ -x "$STRAND_BIN" ] || { SKIP_REASON="$STRAND_BIN not built (make build)"; return 1; }
            write_strand_conf "$dir/strand.yaml"
            bench_spawn strand "$BENCH_PROXY_CPU" "$PROXY_LOG" "$STRAND_BIN" proxy -c "$dir/strand.yaml"
            ;;
        *) SKIP_REASON="unknown proxy"; return 1 ;;
    esac
    PROXY_PID=$SPAWNED_PID
    local ok=0
    if [ "$name" = strand ]; then
        bench_wait_http "http://127.0.0.1:$ADMIN_PORT/ready" 10 "$PROXY_PID" &&
            bench_wait_listen "$PROXY_PORT" 5 "$PROXY_PID" && ok=1
    else
        bench_wait_listen "$PROXY_PORT" 10 "$PROXY_PID" && ok=1
    fi
    if [ "$ok" = 0 ]; then
        SKIP_REASON="did not start (not ready within 10 s)"
        bench_alive "$PROXY_PID" || SKIP_REASON="exited at start"
        return 1
    fi
    return 0
}

# bench_skip_proxy NAME: log why NAME is skipped, with its last output.
bench_skip_proxy() {
    bench_log "SKIP $1: $SKIP_REASON"
    local f
    for f in "$PROXY_LOG" "$(dirname "$PROXY_LOG")/error.log"; do
        if [ -s "$f" ]; then
            bench_log "last lines of $f:"; tail -n 15 "$f" | sed 's/^/    /' >&2
        fi
    done
    [ -n "$PROXY_PID" ] && bench_stop "$PROXY_PID" 3
    PROXY_PID=""
    SKIPPED+=("$1: $SKIP_REASON")
}
