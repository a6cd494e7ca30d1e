#!/usr/bin/env bash
# demo/run.sh - Strand in one minute (`make demo`).
#
# Installs what it needs (apt-get, only when missing), builds build/strand,
# starts nginx as a backend on 127.0.0.1:8080 and Strand with
# examples/quickstart.yaml (listener 127.0.0.1:10000, admin 127.0.0.1:9901),
# sends a few requests through it, shows its metrics, and stops both.
# Everything it starts is stopped on exit, however it exits.
#   DEMO_CONFIG (examples/quickstart.yaml), STRAND_BIN (build/strand),
#   DEMO_SKIP_BUILD=1 to use the existing binary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONFIG=${DEMO_CONFIG:-examples/quickstart.yaml}
STRAND_BIN=${STRAND_BIN:-$ROOT/build/strand}
BACKEND=127.0.0.1:8080
LISTENER=127.0.0.1:10000
ADMIN=127.0.0.1:9901

if [ -t 1 ]; then B=$'\e[1m'; N=$'\e[0m'; else B=""; N=""; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
show() { printf '%s$ %s%s\n' "$B" "$*" "$N"; "$@" || echo "(exit code $?)"; }

step "Dependencies and build"
bash scripts/deps.sh demo
if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
    cmake -S . -B build >/dev/null
    if ! cmake --build build -j "${JOBS:-2}" >/tmp/strand-demo-build.log 2>&1; then
        tail -n 40 /tmp/strand-demo-build.log >&2
        die "build failed (full log: /tmp/strand-demo-build.log)"
    fi
    rm -f /tmp/strand-demo-build.log
    echo "built $STRAND_BIN"
fi
[ -x "$STRAND_BIN" ] || die "$STRAND_BIN does not exist"
[ -f "$CONFIG" ] || die "$CONFIG does not exist"

for addr in $BACKEND $LISTENER $ADMIN; do
    if [ -n "$(ss -Hltn "sport = :${addr##*:}" 2>/dev/null)" ]; then
        die "port ${addr##*:} is already in use; stop whatever listens there:
$(ss -Hltnp "sport = :${addr##*:}" 2>/dev/null)"
    fi
done

TMP=$(mktemp -d /tmp/strand-demo.XXXXXX)
chmod 755 "$TMP"     # nginx workers (user nobody) read the page from here
PIDS=()

# start NAME LOG CMD...: in the background, in its own process group.
start() {
    local name=$1 log=$2; shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    PIDS+=("$!")
    echo "started $name (pid $!)"
}

# stop PID SECS: TERM the process group, KILL it after SECS.
stop() {
    local pid=$1 secs=$2 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "pid $pid still running after ${secs}s: killing it"
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    # Strand first (it may drain), then the backend.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop "${PIDS[$i]}" 10; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_url() {   # wait_url URL SECS PID
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        kill -0 "$3" 2>/dev/null || return 1
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

step "Backend: nginx on $BACKEND"
mkdir -p "$TMP/www" "$TMP/tmp"
cat >"$TMP/www/index.html" <<'EOF'
<!doctype html>
<title>Strand demo backend</title>
<p>Hello from the nginx backend, through Strand.</p>
EOF
chmod 644 "$TMP/www/index.html"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $TMP/tmp/body;
    proxy_temp_path $TMP/tmp/proxy;
    fastcgi_temp_path $TMP/tmp/fastcgi;
    uwsgi_temp_path $TMP/tmp/uwsgi;
    scgi_temp_path $TMP/tmp/scgi;
    server {
        listen $BACKEND;
        root $TMP/www;
        add_header x-backend nginx-demo;
        # Shows the request headers Strand added on the way in.
        location = /headers {
            default_type text/plain;
            return 200 "request headers as the backend saw them:\n  host: \$host\n  x-request-id: \$http_x_request_id\n  via: \$http_via\n  x-forwarded-for: \$http_x_forwarded_for\n  forwarded: \$http_forwarded\n";
        }
    }
}
EOF
start nginx "$TMP/nginx.log" nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log"
NGINX_PID=${PIDS[-1]}
if ! wait_url "http://$BACKEND/" 10 "$NGINX_PID"; then
    cat "$TMP/nginx.log" "$TMP/nginx-error.log" 2>/dev/null >&2 || true
    die "nginx did not start"
fi

step "Strand: $STRAND_BIN proxy -c $CONFIG"
start strand "$TMP/strand.log" "$STRAND_BIN" proxy -c "$CONFIG"
STRAND_PID=${PIDS[-1]}
if ! wait_url "http://$ADMIN/ready" 15 "$STRAND_PID"; then
    echo "--- strand output:" >&2
    tail -n 30 "$TMP/strand.log" >&2 || true
    die "strand did not become ready at http://$ADMIN/ready"
fi
echo "ready: http://$ADMIN/ready"

step "A request through Strand: response and headers (note via and x-request-id)"
show curl -sS -i --max-time 5 "http://$LISTENER/"

step "What the backend received (headers Strand added)"
show curl -sS --max-time 5 "http://$LISTENER/headers"

step "A direct response from Strand itself (no backend)"
show curl -sS -i --max-time 5 "http://$LISTENER/strand/hello"

step "20 more requests"
codes=()
for _ in $(seq 20); do
    codes+=("$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://$LISTENER/" || true)")
done
echo "status codes: ${codes[*]}"

step "Metrics: http://$ADMIN/metrics (request counters and latency histogram counts, non-zero series)"
metrics=$(curl -sS --max-time 5 "http://$ADMIN/metrics" || true)
# Series that are still 0 are left out.
lines=$(grep -E '^strand_http_requests_total|^strand_http_request[a-z_]*duration[a-z_]*_count' <<<"$metrics" |
        awk '$NF != 0' || true)
if [ -n "$lines" ]; then
    echo "$lines"
else
    echo "(no strand_http_requests_total / duration count lines; first strand_ lines:)"
    grep -E '^strand_' <<<"$metrics" | head -n 10 || echo "(none)"
fi

step "Stopping Strand and nginx"
stop "$STRAND_PID" 10
echo "strand stopped"
stop "$NGINX_PID" 5
echo "nginx stopped"
PIDS=()
echo
echo "Done. Run it yourself: $STRAND_BIN proxy -c $CONFIG"
