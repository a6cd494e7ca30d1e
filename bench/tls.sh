#!/usr/bin/env bash
# bench/tls.sh - TLS termination benchmark: Strand against HAProxy and nginx,
# all in one run on this machine, with the same backend (nginx, plain HTTP),
# the same load generator (wrk) and the same certificate (ECDSA P-256,
# self-signed for 127.0.0.1/localhost, made here with the openssl CLI).
#
# Two loads per proxy, BENCH_DURATION seconds each after a warm-up:
#   handshakes  wrk -H 'Connection: close': a new TLS connection, with a full
#               handshake, per request -> handshakes/s and CPU per handshake
#   keepalive   wrk over kept-alive HTTPS connections -> req/s, CPU per request
#
# wrk reuses the TLS session of a closed connection for the next one (it
# calls SSL_clear, which keeps the session, and reconnects with the same SSL
# object), so by itself every "new" connection would be a resumption. For the
# handshake load wrk runs with a small LD_PRELOAD shim, built here, that drops
# the session after SSL_clear: every connection is then a full handshake. The
# script checks that first against a throwaway nginx that logs
# $ssl_session_reused, and stops if any connection was resumed.
# See docs/benchmarks.md, "TLS termination".
#
# Environment:
#   BENCH_DURATION (10)        seconds per measured wrk run
#   BENCH_WARMUP (1)           seconds of wrk warm-up before each run (0 = none)
#   BENCH_CONNS (32)           wrk connections
#   BENCH_PROXIES ("haproxy nginx strand")
#   BENCH_PORT_BASE (first free of 28180, 28190, ...) backend port;
#                              proxy = +1, Strand admin = +2, check server = +3
#   STRAND_BIN (build/strand)
#   BENCH_RESULTS (bench/results/tls-<date>.md)
#   BENCH_NOISE_PCT (10)       report a "Noise:" line when other processes
#                              used more than this % of the proxy's CPU
#   plus BENCH_PROXY_CPU, BENCH_LOAD_CPU, BENCH_PIN, BENCH_NICE,
#   BENCH_KEEP_TMP (lib.sh)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bench_init tls
bench_need nginx wrk curl openssl cc ss ps awk

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-32}
read -r -a PROXIES <<<"${BENCH_PROXIES:-haproxy nginx strand}"
bench_ports 28180 BACKEND_PORT PROXY_PORT ADMIN_PORT CHECK_PORT
STRAND_BIN=${STRAND_BIN:-$BENCH_ROOT/build/strand}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=${BENCH_RESULTS:-$BENCH_ROOT/bench/results/tls-$STAMP.md}
BODY="strand bench: hello from the nginx backend"   # 42 bytes + newline

# ---------------------------------------------------------------- certificate

CERT="$BENCH_TMP/cert.pem"
KEY="$BENCH_TMP/key.pem"
PEM="$BENCH_TMP/cert+key.pem"          # HAProxy: both in one file
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$KEY" -out "$CERT" -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$BENCH_TMP/openssl.log" 2>&1 ||
    { cat "$BENCH_TMP/openssl.log" >&2; bench_die "openssl could not make the certificate"; }
cat "$CERT" "$KEY" >"$PEM"
chmod 644 "$CERT" "$KEY" "$PEM"        # nginx workers run as nobody

# ---------------------------------------------------------------- no-resumption shim

# wrk closes a connection with SSL_shutdown + SSL_clear and reconnects with
# the same SSL object; SSL_clear keeps the session, so the next handshake is
# a resumption. This drops it: every connection does a full handshake.
NORESUME="$BENCH_TMP/noresume.so"
cat >"$BENCH_TMP/noresume.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
int SSL_clear(SSL *s)
{
    static int (*real_clear)(SSL *);
    static int (*set_session)(SSL *, SSL_SESSION *);
    if (!real_clear) {
        real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
        set_session = (int (*)(SSL *, SSL_SESSION *))dlsym(RTLD_DEFAULT, "SSL_set_session");
    }
    int r = real_clear(s);
    if (set_session)
        set_session(s, NULL);
    return r;
}
C
cc -O2 -shared -fPIC -o "$NORESUME" "$BENCH_TMP/noresume.c" -ldl ||
    bench_die "could not build the no-resumption shim for wrk"

# ---------------------------------------------------------------- configs

# The resumption check: a TLS server that logs whether each connection was
# resumed (it is not measured).
write_check_conf() {
    local p=$1
    mkdir -p "$p/tmp"
    {
        bench_nginx_common "$p"
        cat <<EOF
http {
$(bench_nginx_temp_paths "$p")
    log_format tls '\$ssl_session_reused \$ssl_protocol \$ssl_cipher';
    access_log $p/access.log tls;
    ssl_session_cache shared:check:1m;
    ssl_session_tickets on;
    server {
        listen 127.0.0.1:$CHECK_PORT ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        location / { return 200 "check\n"; }
    }
}
EOF
    } >"$p/nginx.conf"
}

write_nginx_proxy_conf() {
    local p=$1
    mkdir -p "$p/tmp"
    {
        bench_nginx_common "$p"
        cat <<EOF
$(bench_nginx_http "$p")
$(bench_nginx_upstream backend "$BACKEND_PORT")
    server {
        listen 127.0.0.1:$PROXY_PORT ssl backlog=4096;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
$(bench_nginx_pass)
    }
}
EOF
    } >"$p/nginx.conf"
}

write_haproxy_conf() {
    cat >"$1" <<EOF
$(bench_haproxy_head)

frontend fe
    bind 127.0.0.1:$PROXY_PORT ssl crt $PEM
    default_backend be

backend be
    server s1 127.0.0.1:$BACKEND_PORT
EOF
}

write_strand_conf() {
    cat >"$1" <<EOF
$(bench_strand_head "bench/tls.sh" "$ADMIN_PORT")
  # no accessLog: access logging off
---
apiVersion: strand.dev/v1alpha1
kind: Listener
metadata: {name: bench}
spec:
  address: 127.0.0.1:$PROXY_PORT
  protocol: http
  idleTimeout: 600s
  tls:
    certificates:
    - {certFile: $CERT, keyFile: $KEY}
---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: backend}
spec:
  endpoints:
  - {address: 127.0.0.1:$BACKEND_PORT}
$(bench_strand_route)
EOF
}

# ---------------------------------------------------------------- wrk

# tls_wrk URL OUT PRELOAD WRK_ARGS...: like bench_wrk (lib.sh), with extra
# wrk arguments and an optional LD_PRELOAD for wrk.
tls_wrk() {
    local url=$1 out=$2 preload=$3 secs=$4; shift 4
    if [ -n "$preload" ]; then
        LD_PRELOAD=$preload bench_run "$BENCH_LOAD_CPU" "$out" \
            wrk -t 1 -c "$CONNS" -d "${secs}s" --timeout 5s --latency "$@" "$url" || true
    else
        bench_run "$BENCH_LOAD_CPU" "$out" \
            wrk -t 1 -c "$CONNS" -d "${secs}s" --timeout 5s --latency "$@" "$url" || true
    fi
    bench_wrk_parse "$out" "$url"
}

# load_preload LOAD: the LD_PRELOAD of wrk for a load.
load_preload() { [ "$1" = handshakes ] && echo "$NORESUME" || echo ""; }

# ---------------------------------------------------------------- backend

declare -A R_RPS R_P50 R_P99 R_CPU R_ERR R_UTIL R_CIPHER
SKIPPED=()
NOISE=()
ROWS=()

mkdir -p "$BENCH_TMP/backend"
bench_write_backend_conf "$BENCH_TMP/backend"
bench_spawn nginx-backend "$BENCH_LOAD_CPU" "$BENCH_TMP/backend/out.log" \
    nginx -p "$BENCH_TMP/backend" -c "$BENCH_TMP/backend/nginx.conf" -e "$BENCH_TMP/backend/error.log"
BACKEND_PID=$SPAWNED_PID
if ! bench_wait_http "http://127.0.0.1:$BACKEND_PORT/" 10 "$BACKEND_PID"; then
    cat "$BENCH_TMP/backend/out.log" "$BENCH_TMP/backend/error.log" >&2 2>/dev/null || true
    bench_die "the nginx backend did not start"
fi

# ---------------------------------------------------------------- resumption check

# Without the shim wrk resumes (reported); with it, nothing may be resumed.
CHECK_DIR="$BENCH_TMP/check"
write_check_conf "$CHECK_DIR"
bench_spawn nginx-check "$BENCH_LOAD_CPU" "$CHECK_DIR/out.log" \
    nginx -p "$CHECK_DIR" -c "$CHECK_DIR/nginx.conf" -e "$CHECK_DIR/error.log"
CHECK_PID=$SPAWNED_PID
bench_wait_listen "$CHECK_PORT" 10 "$CHECK_PID" || bench_die "the resumption check server did not start"
count_resumed() {   # count_resumed LOG -> "resumed total protocol cipher"
    awk '{ t++; if ($1 == "r") r++; p = $2; c = $3 } END { printf "%d %d %s %s\n", r, t, p, c }' "$1"
}
: >"$CHECK_DIR/access.log"
tls_wrk "https://127.0.0.1:$CHECK_PORT/" "$BENCH_TMP/check-plain.txt" "" 1 -H "Connection: close" || true
read -r PLAIN_RESUMED PLAIN_TOTAL _ _ <<<"$(count_resumed "$CHECK_DIR/access.log")"
: >"$CHECK_DIR/access.log"
tls_wrk "https://127.0.0.1:$CHECK_PORT/" "$BENCH_TMP/check-shim.txt" "$NORESUME" 1 -H "Connection: close" || true
read -r SHIM_RESUMED SHIM_TOTAL WRK_PROTO WRK_CIPHER <<<"$(count_resumed "$CHECK_DIR/access.log")"
bench_stop "$CHECK_PID" 3
bench_log "resumption check: plain wrk resumed $PLAIN_RESUMED of $PLAIN_TOTAL connections; with the shim $SHIM_RESUMED of $SHIM_TOTAL ($WRK_PROTO $WRK_CIPHER)"
[ "$SHIM_TOTAL" -gt 0 ] || bench_die "resumption check: no connection reached the check server"
[ "$SHIM_RESUMED" = 0 ] || bench_die "resumption check: wrk still resumes sessions with the shim"

# ---------------------------------------------------------------- proxies

# start_proxy NAME: bench_start_proxy (lib.sh), then check that TLS ends at
# the proxy and note the cipher a TLS 1.2 client gets. Non-zero = skip.
start_proxy() {
    local name=$1
    bench_start_proxy "$name" || return 1
    # TLS must terminate here: an HTTPS GET returns the backend's body.
    local got
    got=$(curl -ksS --max-time 5 "https://127.0.0.1:$PROXY_PORT/" 2>&1) || true
    if [ "$got" != "$BODY" ]; then
        SKIP_REASON="does not terminate TLS and proxy: GET https://.../ returned '$(head -c 200 <<<"$got")'"
        return 1
    fi
    # What a TLS 1.2 client like wrk negotiates (for the report).
    R_CIPHER[$name]=$(openssl s_client -connect "127.0.0.1:$PROXY_PORT" -tls1_2 </dev/null 2>/dev/null |
        awk '/^New, / { print $2, $NF; exit }') || true
    return 0
}


measure() {   # measure NAME LOAD PID
    local name=$1 load=$2 pid=$3 key="$1/$2"
    local url="https://127.0.0.1:$PROXY_PORT/" out="$BENCH_TMP/wrk-$name-$load.txt"
    local pre extra=()
    pre=$(load_preload "$load")
    [ "$load" = handshakes ] && extra=(-H "Connection: close")
    if [ "$WARMUP" != 0 ]; then
        tls_wrk "$url" "$BENCH_TMP/warmup.txt" "$pre" "$WARMUP" "${extra[@]}" >/dev/null 2>&1 || true
    fi
    local t0 t1 b0=0 b1=0
    t0=$(bench_cpu_ticks "$pid")
    [ "$BENCH_PIN" = 1 ] && b0=$(bench_cpu_busy_ticks "$BENCH_PROXY_CPU")
    bench_log "$name $load: wrk ${DURATION}s"
    local wrk_ok=1
    tls_wrk "$url" "$out" "$pre" "$DURATION" "${extra[@]}" || wrk_ok=0
    if ! bench_alive "$pid"; then
        bench_log "$name died during the $load run; last lines of its output:"
        tail -n 20 "$PROXY_LOG" 2>/dev/null | sed 's/^/    /' >&2
        SKIPPED+=("$name $load: the proxy died during the run")
        return 1
    fi
    [ "$wrk_ok" = 1 ] || { SKIPPED+=("$name $load: wrk failed"); return 1; }
    t1=$(bench_cpu_ticks "$pid")
    if [ "$BENCH_PIN" = 1 ]; then
        b1=$(bench_cpu_busy_ticks "$BENCH_PROXY_CPU")
        local other
        other=$(awk -v b="$((b1 - b0 - (t1 - t0)))" -v hz="$CLK_TCK" -v d="$DURATION" \
            'BEGIN { printf "%.0f", b / hz / d * 100 }')
        if [ "$other" -gt "${BENCH_NOISE_PCT:-10}" ]; then
            NOISE+=("$name $load: other processes used ${other}% of CPU $BENCH_PROXY_CPU (the proxy's) during the run")
            bench_log "warning: other processes used ${other}% of the proxy's CPU"
        fi
    fi
    R_RPS[$key]=$WRK_RPS
    R_P50[$key]=$WRK_P50_MS
    R_P99[$key]=$WRK_P99_MS
    R_ERR[$key]=$WRK_ERRORS
    R_CPU[$key]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$WRK_REQS" \
        'BEGIN { printf "%.1f", (n > 0) ? t / hz * 1e6 / n : 0 }')
    R_UTIL[$key]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v d="$DURATION" \
        'BEGIN { printf "%.0f", t / hz / d * 100 }')
    ROWS+=("$key")
    bench_log "$name $load: ${WRK_RPS} req/s, p50 ${WRK_P50_MS} ms, p99 ${WRK_P99_MS} ms, ${R_CPU[$key]} us CPU/req (${R_UTIL[$key]}%), errors $WRK_ERRORS"
}

for name in "${PROXIES[@]}"; do
    SKIP_REASON=""
    if ! start_proxy "$name"; then bench_skip_proxy "$name"; continue; fi
    measure "$name" handshakes "$PROXY_PID" || true
    measure "$name" keepalive "$PROXY_PID" || true
    bench_stop "$PROXY_PID"; PROXY_PID=""
done

# ---------------------------------------------------------------- report

bench_report_open "$RESULTS"
bench_report "## TLS termination benchmark ($(date '+%Y-%m-%d %H:%M %Z'))"
bench_report ""
bench_machine_info
bench_report "- Load: wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }'), 1 thread, $CONNS connections, ${DURATION} s per run after ${WARMUP} s warm-up; GET / of a $((${#BODY} + 1)) byte body from nginx $(nginx -v 2>&1 | sed 's|.*/||') (1 worker, plain HTTP, keep-alive)"
bench_report "- Certificate: ECDSA P-256, self-signed; $(openssl version | awk '{ print $1, $2 }'); wrk negotiates ${WRK_PROTO:-?} ${WRK_CIPHER:-?}"
bench_report "- handshakes: \`Connection: close\`, one full handshake per request (wrk alone resumed $PLAIN_RESUMED of $PLAIN_TOTAL connections in the check; with the no-resumption shim $SHIM_RESUMED of $SHIM_TOTAL). keepalive: kept-alive HTTPS connections"
hv=$(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }') || true
bench_report "- Proxies: 1 worker/thread each; HAProxy ${hv:-n/a} (nbthread 1, http-reuse always, no logging), nginx (upstream keepalive 64), Strand ($(basename "$STRAND_BIN"), workers: 1, no access log)"
line="- Negotiated (openssl s_client -tls1_2):"
for name in "${PROXIES[@]}"; do line+=" $name ${R_CIPHER[$name]:-n/a};"; done
bench_report "${line%;}"
bench_report ""
bench_report "| proxy | load | req/s (= handshakes/s) | p50 ms | p99 ms | proxy CPU µs/req | proxy CPU % | errors |"
bench_report "|---|---|---:|---:|---:|---:|---:|---:|"
for key in "${ROWS[@]}"; do
    name=${key%/*}; load=${key#*/}
    rps=$(awk -v r="${R_RPS[$key]}" 'BEGIN { printf "%.0f", r }')
    bench_report "| $name | $load | $rps | ${R_P50[$key]} | ${R_P99[$key]} | ${R_CPU[$key]} | ${R_UTIL[$key]} | ${R_ERR[$key]} |"
done
bench_report ""
bench_report "- Strand/HAProxy, handshakes: handshakes/s $(bench_ratio "${R_RPS[strand/handshakes]:-}" "${R_RPS[haproxy/handshakes]:-}"), CPU per handshake $(bench_ratio "${R_CPU[strand/handshakes]:-}" "${R_CPU[haproxy/handshakes]:-}")"
bench_report "- Strand/HAProxy, keepalive: req/s $(bench_ratio "${R_RPS[strand/keepalive]:-}" "${R_RPS[haproxy/keepalive]:-}"), CPU per request $(bench_ratio "${R_CPU[strand/keepalive]:-}" "${R_CPU[haproxy/keepalive]:-}")"
for s in "${NOISE[@]}"; do bench_report "- Noise: $s"; done
for s in "${SKIPPED[@]}"; do bench_report "- Skipped: $s"; done
bench_log "results written to ${RESULTS#"$BENCH_ROOT"/}"
