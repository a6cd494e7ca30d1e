#!/usr/bin/env bash
# bench/h2.sh - HTTP/2 and gRPC proxy benchmark: Strand against HAProxy and
# nginx, all in one run on this machine, with the same backends and load
# generator (h2load).
#
# Two loads, each h2load for BENCH_DURATION seconds after a short warm-up:
#
#   h2c   HTTP/2 with prior knowledge from h2load (BENCH_CONNS connections x
#         BENCH_STREAMS concurrent streams), GET / proxied to the nginx
#         backend over HTTP/1.1 (keep-alive) -- translation h2 -> h1.
#         All three proxies (nginx: `listen ... http2` + proxy_pass).
#   grpc  gRPC unary calls (POST /strand.test.Echo/Unary, a 5-byte gRPC
#         prefix + BENCH_GRPC_PAYLOAD, content-type application/grpc,
#         te: trailers) to the grpc_peer.py server (tests/integration), proxied
#         over HTTP/2 (h2c) end to end: Strand with a `protocol: http2`
#         cluster, HAProxy with `proto h2` on the server line, nginx with
#         grpc_pass. "direct" is h2load straight to the peer. The peer is
#         Python: it bounds req/s here; the proxy's CPU per request is the
#         figure to compare.
#   grpc-nginx  the same gRPC calls (POST /strand.test.Fast/Unary) to a fast
#         gRPC stand-in: nginx over h2c answering every call with a fixed
#         message and the trailer grpc-status: 0 (a static file, see
#         write_gfast_conf), BENCH_CONNS x BENCH_STREAMS; proxied the same
#         way as grpc. Here the proxy, not the backend, is the bottleneck.
#         (nginx's grpc_pass against this nginx stand-in loses a few calls:
#         the report says so when it happens.)
#
# Reports req/s, p50/p99 latency (from h2load --log-file: per-request
# completion times), the proxy's CPU time per request (utime+stime of its
# process group), its RSS after the run and its peak RSS, and the
# Strand/HAProxy ratios. Results go to bench/results/h2-<date>.md.
#
# Environment:
#   BENCH_DURATION (10)        seconds per measured h2load run
#   BENCH_WARMUP (1)           seconds of h2load warm-up before each run (0 = none)
#   BENCH_CONNS (32)           h2load connections (h2c load)
#   BENCH_STREAMS (10)         concurrent streams per connection (h2load -m)
#   BENCH_GRPC_CONNS (8)       h2load connections (grpc load)
#   BENCH_GRPC_STREAMS (10)    concurrent streams per connection (grpc load)
#   BENCH_GRPC_PAYLOAD ("hello from h2load")   the unary request message
#   BENCH_PROXIES ("direct haproxy nginx strand")   ("direct": the gRPC loads only)
#   BENCH_LOADS ("h2c grpc grpc-nginx")
#   BENCH_PORT_BASE (first free of 28280, 28290, ...) backend port;
#                              proxy h2c = +1, Strand admin = +2,
#                              grpc peer = +3, proxy grpc = +4, nginx gRPC
#                              stand-in = +5
#   STRAND_BIN (build/strand)
#   BENCH_RESULTS (bench/results/h2-<date>.md)
#   BENCH_NOISE_PCT (10)       report a "Noise:" line when other processes
#                              used more than this % of the proxy's CPU
#   plus BENCH_PROXY_CPU, BENCH_LOAD_CPU, BENCH_PIN, BENCH_NICE,
#   BENCH_KEEP_TMP (lib.sh)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bench_init h2
bench_need nginx h2load nghttp curl ss ps awk sort /usr/bin/python3

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-32}
STREAMS=${BENCH_STREAMS:-10}
GRPC_CONNS=${BENCH_GRPC_CONNS:-8}
GRPC_STREAMS=${BENCH_GRPC_STREAMS:-10}
GRPC_PAYLOAD=${BENCH_GRPC_PAYLOAD:-hello from h2load}
read -r -a PROXIES <<<"${BENCH_PROXIES:-direct haproxy nginx strand}"
read -r -a LOADS <<<"${BENCH_LOADS:-h2c grpc grpc-nginx}"
bench_ports 28280 BACKEND_PORT PROXY_PORT ADMIN_PORT GRPC_PORT GPROXY_PORT GFAST_PORT
STRAND_BIN=${STRAND_BIN:-$BENCH_ROOT/build/strand}
PEER_PY=$BENCH_ROOT/tests/integration/grpc_peer.py
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=${BENCH_RESULTS:-$BENCH_ROOT/bench/results/h2-$STAMP.md}
BODY="strand bench: hello from the nginx backend"   # 42 bytes + newline
GRPC_PATH=/strand.test.Echo/Unary
FAST_PATH=/strand.test.Fast/Unary
FAST_REPLY="fast reply from nginx"
[ -f "$PEER_PY" ] || bench_die "missing $PEER_PY"
/usr/bin/python3 -c 'import grpc' 2>/dev/null || bench_die "python3 grpc module missing (apt-get install python3-grpcio)"

# The gRPC request body h2load sends: one length-prefixed message.
GRPC_BODY="$BENCH_TMP/grpc-body.bin"
/usr/bin/python3 -B "$PEER_PY" frame "$GRPC_PAYLOAD" "$GRPC_BODY" || bench_die "could not write the gRPC body"
GRPC_HEADERS=(-H "content-type: application/grpc" -H "te: trailers")

# ---------------------------------------------------------------- configs

write_nginx_proxy_conf() {
    local p=$1
    mkdir -p "$p/tmp"
    {
        bench_nginx_common "$p"
        cat <<EOF
$(bench_nginx_http "$p")
    http2_max_concurrent_streams 256;
$(bench_nginx_upstream backend "$BACKEND_PORT")
$(bench_nginx_upstream grpc_peer "$GRPC_PORT")
$(bench_nginx_upstream grpc_fast "$GFAST_PORT")
    server {
        listen 127.0.0.1:$PROXY_PORT http2 backlog=4096;
$(bench_nginx_pass)
    }
    server {
        listen 127.0.0.1:$GPROXY_PORT http2 backlog=4096;
        location / {
            grpc_pass grpc://grpc_peer;
        }
        location /strand.test.Fast/ {
            grpc_pass grpc://grpc_fast;
        }
    }
}
EOF
    } >"$p/nginx.conf"
}

write_haproxy_conf() {
    cat >"$1" <<EOF
$(bench_haproxy_head)

frontend fe
    bind 127.0.0.1:$PROXY_PORT proto h2
    default_backend be

backend be
    server s1 127.0.0.1:$BACKEND_PORT

frontend fe_grpc
    bind 127.0.0.1:$GPROXY_PORT proto h2
    use_backend be_gfast if { path_beg /strand.test.Fast/ }
    default_backend be_grpc

backend be_grpc
    server g1 127.0.0.1:$GRPC_PORT proto h2

backend be_gfast
    server f1 127.0.0.1:$GFAST_PORT proto h2
EOF
}

write_strand_conf() {
    cat >"$1" <<EOF
$(bench_strand_head "bench/h2.sh" "$ADMIN_PORT")
  # no accessLog: access logging off
---
apiVersion: strand.dev/v1alpha1
kind: Listener
metadata: {name: bench}
spec:
  address: 127.0.0.1:$PROXY_PORT
  protocol: http
  idleTimeout: 600s
---
apiVersion: strand.dev/v1alpha1
kind: Listener
metadata: {name: grpc}
spec:
  address: 127.0.0.1:$GPROXY_PORT
  protocol: http
  idleTimeout: 600s
---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: backend}
spec:
  endpoints:
  - {address: 127.0.0.1:$BACKEND_PORT}
---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: grpc-peer}
spec:
  protocol: http2
  endpoints:
  - {address: 127.0.0.1:$GRPC_PORT}
---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: grpc-fast}
spec:
  protocol: http2
  endpoints:
  - {address: 127.0.0.1:$GFAST_PORT}
$(bench_strand_route)
---
apiVersion: strand.dev/v1alpha1
kind: Route
metadata: {name: grpc}
spec:
  parents: [grpc]
  rules:
  - name: fast
    match: [{attribute: path, prefix: /strand.test.Fast/}]
    backends: [{cluster: grpc-fast}]
  - name: all
    match: [{attribute: path, prefix: /}]
    backends: [{cluster: grpc-peer}]
EOF
}

# The gRPC stand-in: nginx over h2c. A POST to the static file
# strand.test.Fast/Unary gets 405 from the static module; error_page turns
# that into an internal GET of grpc-reply.bin (one gRPC message) answered
# 200 with content-type application/grpc and the trailer grpc-status: 0.
write_gfast_conf() {
    local p=$1
    mkdir -p "$p/tmp" "$p/www/strand.test.Fast"
    : >"$p/www/strand.test.Fast/Unary"
    /usr/bin/python3 -B "$PEER_PY" frame "$FAST_REPLY" "$p/www/grpc-reply.bin"
    chmod -R a+rX "$p/www"
    {
        bench_nginx_common "$p"
        cat <<EOF
$(bench_nginx_http "$p")
    http2_max_concurrent_streams 256;
    server {
        listen 127.0.0.1:$GFAST_PORT http2 backlog=4096;
        root $p/www;
        location = $FAST_PATH { error_page 405 =200 /grpc-reply.bin; }
        location = /grpc-reply.bin {
            internal;
            default_type application/grpc;
            etag off;
            add_trailer grpc-status 0;
        }
    }
}
EOF
    } >"$p/nginx.conf"
}

# ---------------------------------------------------------------- checks

# grpc_ok PORT [PATH REPLY]: one unary call with nghttp; true when
# grpc-status 0 and the reply (default: the echo of the request) came back.
grpc_ok() {
    local out path=${2:-$GRPC_PATH} reply=${3:-$GRPC_PAYLOAD}
    out=$(nghttp -v -t 5 "${GRPC_HEADERS[@]}" -d "$GRPC_BODY" "http://127.0.0.1:$1$path" 2>&1 |
        tr -d '\000') || true
    GRPC_CHECK_OUT=$out
    grep -q 'grpc-status: 0' <<<"$out" && grep -q "$reply" <<<"$out"
}

# start_proxy NAME: bench_start_proxy (lib.sh); then wait for the gRPC
# listener and check that both loads go through. Non-zero = skip.
start_proxy() {
    local name=$1
    bench_start_proxy "$name" || return 1
    IDLE_RSS_KB=$(bench_rss_kb "$PROXY_PID")
    if ! bench_wait_listen "$GPROXY_PORT" 5 "$PROXY_PID"; then
        SKIP_REASON="the gRPC listener did not come up"; return 1
    fi
    local got
    got=$(curl -sS --http2-prior-knowledge --max-time 5 -o - \
        -w '|%{http_version}' "http://127.0.0.1:$PROXY_PORT/" 2>&1) || true
    H2C_OK=1
    if [ "$got" != "$BODY"$'\n'"|2" ]; then
        H2C_OK=0
        H2C_WHY="h2c GET / returned '$(head -c 200 <<<"$got" | tr '\n' ' ')'"
    fi
    GRPC_OK=1
    if ! grpc_ok "$GPROXY_PORT"; then
        GRPC_OK=0
        GRPC_WHY="a gRPC unary call did not return grpc-status 0: $(grep -E 'status|GOAWAY|RST|rror' <<<"$GRPC_CHECK_OUT" | head -n 5 | tr '\n' ' ')"
    fi
    GFAST_OK=1
    if ! grpc_ok "$GPROXY_PORT" "$FAST_PATH" "$FAST_REPLY"; then
        GFAST_OK=0
        GFAST_WHY="a gRPC unary call to the nginx stand-in did not return grpc-status 0: $(grep -E 'status|GOAWAY|RST|rror' <<<"$GRPC_CHECK_OUT" | head -n 5 | tr '\n' ' ')"
    fi
    if [ "$H2C_OK" = 0 ] && [ "$GRPC_OK" = 0 ] && [ "$GFAST_OK" = 0 ]; then
        SKIP_REASON="$H2C_WHY; $GRPC_WHY; $GFAST_WHY"; return 1
    fi
    return 0
}

# ---------------------------------------------------------------- h2load

# bench_h2load URL CONNS STREAMS SECS OUT LOG [h2load args...]: h2load pinned
# to the load CPU. Sets H2_RPS, H2_DONE, H2_OK, H2_ERRORS, H2_P50_MS,
# H2_P99_MS (from the per-request log). Non-zero when h2load produced nothing.
bench_h2load() {
    local url=$1 c=$2 m=$3 secs=$4 out=$5 log=$6; shift 6
    rm -f "$log"
    bench_run "$BENCH_LOAD_CPU" "$out" \
        h2load -t 1 -c "$c" -m "$m" -D "$secs" --log-file="$log" "$@" "$url" || true
    H2_RPS=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^req\/s/) { v = $i; sub(/,$/, "", v); print v; exit } }' "$out")
    read -r _ H2_DONE _ H2_FAILED H2_ERRORED <<<"$(awk '/^requests:/ {
        print $2, $6, $8, $10, $12; exit }' "$out")"
    local non2xx
    non2xx=$(awk '/^status codes:/ { print $5 + $7 + $9; exit }' "$out")
    H2_ERRORS=$(( ${H2_FAILED:-0} + ${H2_ERRORED:-0} + ${non2xx:-0} ))
    H2_P50_MS=""; H2_P99_MS=""
    if [ -s "$log" ]; then
        read -r H2_P50_MS H2_P99_MS <<<"$(awk -F'\t' '{ print $3 }' "$log" | sort -n | awk '
            { v[NR] = $1 }
            END {
                if (NR == 0) { print "", ""; exit }
                i50 = int(NR * 0.50 + 0.5); if (i50 < 1) i50 = 1
                i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1; if (i99 > NR) i99 = NR
                printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }')"
    fi
    if [ -z "$H2_RPS" ] || [ -z "${H2_DONE:-}" ]; then
        bench_log "h2load produced no result for $url (see below)"
        sed 's/^/    /' "$out" >&2
        return 1
    fi
}

declare -A R_RPS R_P50 R_P99 R_CPU R_UTIL R_RSS R_HWM R_ERR IDLE_RSS
SKIPPED=()
NOISE=()
ROWS=()

# measure NAME LOAD PID|"": warm-up, then the measured h2load run.
measure() {
    local name=$1 load=$2 pid=$3 key="$1/$2"
    local url c m args=()
    case "$load" in
        h2c) url="http://127.0.0.1:$PROXY_PORT/"; c=$CONNS; m=$STREAMS ;;
        grpc)
            url="http://127.0.0.1:$GPROXY_PORT$GRPC_PATH"; c=$GRPC_CONNS; m=$GRPC_STREAMS
            args=("${GRPC_HEADERS[@]}" -d "$GRPC_BODY")
            [ "$name" = direct ] && url="http://127.0.0.1:$GRPC_PORT$GRPC_PATH"
            ;;
        grpc-nginx)
            url="http://127.0.0.1:$GPROXY_PORT$FAST_PATH"; c=$CONNS; m=$STREAMS
            args=("${GRPC_HEADERS[@]}" -d "$GRPC_BODY")
            [ "$name" = direct ] && url="http://127.0.0.1:$GFAST_PORT$FAST_PATH"
            ;;
    esac
    local out="$BENCH_TMP/h2load-$name-$load.txt" log="$BENCH_TMP/h2load-$name-$load.log"
    if [ "$WARMUP" != 0 ]; then
        bench_h2load "$url" "$c" "$m" "$WARMUP" "$BENCH_TMP/warmup.txt" "$BENCH_TMP/warmup.log" \
            "${args[@]}" >/dev/null 2>&1 || true
    fi
    local t0=0 t1=0 b0=0 b1=0
    [ -n "$pid" ] && t0=$(bench_cpu_ticks "$pid")
    [ -n "$pid" ] && [ "$BENCH_PIN" = 1 ] && b0=$(bench_cpu_busy_ticks "$BENCH_PROXY_CPU")
    bench_log "$name $load: h2load -c $c -m $m for ${DURATION}s"
    local ok=1
    bench_h2load "$url" "$c" "$m" "$DURATION" "$out" "$log" "${args[@]}" || ok=0
    if [ -n "$pid" ] && ! bench_alive "$pid"; then
        bench_log "$name died during the $load run; last lines of its output:"
        tail -n 20 "$PROXY_LOG" 2>/dev/null | sed 's/^/    /' >&2
        SKIPPED+=("$name $load: the proxy died during the run")
        return 1
    fi
    [ "$ok" = 1 ] || { SKIPPED+=("$name $load: h2load failed"); return 1; }
    if [ -n "$pid" ]; then
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
        R_CPU[$key]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$H2_DONE" \
            'BEGIN { printf "%.2f", (n > 0) ? t / hz * 1e6 / n : 0 }')
        R_UTIL[$key]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v d="$DURATION" \
            'BEGIN { printf "%.0f", t / hz / d * 100 }')
        R_RSS[$key]=$(bench_rss_kb "$pid")
        R_HWM[$key]=$(bench_hwm_kb "$pid")
    fi
    R_RPS[$key]=$H2_RPS
    R_P50[$key]=$H2_P50_MS
    R_P99[$key]=$H2_P99_MS
    R_ERR[$key]=$H2_ERRORS
    ROWS+=("$key")
    bench_log "$name $load: $H2_RPS req/s, p50 $H2_P50_MS ms, p99 $H2_P99_MS ms${pid:+, ${R_CPU[$key]} us CPU/req}, errors $H2_ERRORS"
    local port=$GPROXY_PORT
    case "$load" in
        grpc)
            [ "$name" = direct ] && port=$GRPC_PORT
            grpc_ok "$port" || ok=0
            ;;
        grpc-nginx)
            [ "$name" = direct ] && port=$GFAST_PORT
            grpc_ok "$port" "$FAST_PATH" "$FAST_REPLY" || ok=0
            ;;
    esac
    if [ "$ok" = 0 ]; then
        bench_log "warning: $name: a gRPC call after the $load run did not return grpc-status 0"
        SKIPPED+=("$name $load: a check call after the run failed (numbers above are suspect)")
    fi
}

# ---------------------------------------------------------------- backends

bench_log "backends: nginx on 127.0.0.1:$BACKEND_PORT, grpc_peer.py on 127.0.0.1:$GRPC_PORT, the nginx gRPC stand-in on 127.0.0.1:$GFAST_PORT (CPU ${BENCH_LOAD_CPU})"
mkdir -p "$BENCH_TMP/backend"
bench_write_backend_conf "$BENCH_TMP/backend"
bench_spawn nginx-backend "$BENCH_LOAD_CPU" "$BENCH_TMP/backend/out.log" \
    nginx -p "$BENCH_TMP/backend" -c "$BENCH_TMP/backend/nginx.conf" -e "$BENCH_TMP/backend/error.log"
BACKEND_PID=$SPAWNED_PID
if ! bench_wait_http "http://127.0.0.1:$BACKEND_PORT/" 10 "$BACKEND_PID"; then
    cat "$BENCH_TMP/backend/out.log" "$BENCH_TMP/backend/error.log" >&2 2>/dev/null || true
    bench_die "the nginx backend did not start"
fi
case " ${LOADS[*]} " in
    *" grpc "*)
        bench_spawn grpc-peer "$BENCH_LOAD_CPU" "$BENCH_TMP/grpc-peer.log" \
            /usr/bin/python3 -B "$PEER_PY" serve "$GRPC_PORT" bench
        PEER_PID=$SPAWNED_PID
        bench_wait_listen "$GRPC_PORT" 15 "$PEER_PID" || {
            cat "$BENCH_TMP/grpc-peer.log" >&2; bench_die "grpc_peer.py did not start"; }
        grpc_ok "$GRPC_PORT" || { echo "$GRPC_CHECK_OUT" >&2; bench_die "grpc_peer.py does not answer"; }
        ;;
esac
case " ${LOADS[*]} " in
    *" grpc-nginx "*)
        write_gfast_conf "$BENCH_TMP/gfast"
        bench_spawn nginx-grpc-stand-in "$BENCH_LOAD_CPU" "$BENCH_TMP/gfast/out.log" \
            nginx -p "$BENCH_TMP/gfast" -c "$BENCH_TMP/gfast/nginx.conf" -e "$BENCH_TMP/gfast/error.log"
        GFAST_PID=$SPAWNED_PID
        bench_wait_listen "$GFAST_PORT" 10 "$GFAST_PID" || {
            cat "$BENCH_TMP/gfast/out.log" "$BENCH_TMP/gfast/error.log" >&2 2>/dev/null
            bench_die "the nginx gRPC stand-in did not start"; }
        grpc_ok "$GFAST_PORT" "$FAST_PATH" "$FAST_REPLY" ||
            { echo "$GRPC_CHECK_OUT" >&2; bench_die "the nginx gRPC stand-in does not answer"; }
        ;;
esac

# ---------------------------------------------------------------- run

for name in "${PROXIES[@]}"; do
    if [ "$name" = direct ]; then
        for load in "${LOADS[@]}"; do
            [ "$load" = h2c ] || measure direct "$load" "" || true
        done
        continue
    fi
    SKIP_REASON=""
    if ! start_proxy "$name"; then bench_skip_proxy "$name"; continue; fi
    IDLE_RSS[$name]=$IDLE_RSS_KB
    for load in "${LOADS[@]}"; do
        if [ "$load" = h2c ] && [ "$H2C_OK" = 0 ]; then
            SKIPPED+=("$name h2c: $H2C_WHY"); bench_log "SKIP $name h2c: $H2C_WHY"; continue
        fi
        if [ "$load" = grpc ] && [ "$GRPC_OK" = 0 ]; then
            SKIPPED+=("$name grpc: $GRPC_WHY"); bench_log "SKIP $name grpc: $GRPC_WHY"; continue
        fi
        if [ "$load" = grpc-nginx ] && [ "$GFAST_OK" = 0 ]; then
            SKIPPED+=("$name grpc-nginx: $GFAST_WHY"); bench_log "SKIP $name grpc-nginx: $GFAST_WHY"; continue
        fi
        measure "$name" "$load" "$PROXY_PID" || true
    done
    bench_stop "$PROXY_PID"; PROXY_PID=""
done

# ---------------------------------------------------------------- report

bench_report_open "$RESULTS"
bench_report "## HTTP/2 and gRPC proxy benchmark ($(date '+%Y-%m-%d %H:%M %Z'))"
bench_report ""
bench_machine_info
bench_report "- Load: $(h2load --version 2>&1 | head -n 1), 1 thread, ${DURATION} s per run after ${WARMUP} s warm-up; latency percentiles from h2load's per-request log (completion time of each request)"
bench_report "- h2c: $CONNS connections x $STREAMS streams, HTTP/2 prior knowledge; GET / of a $((${#BODY} + 1)) byte body from nginx $(nginx -v 2>&1 | sed 's|.*/||') over HTTP/1.1 keep-alive (1 worker)"
bench_report "- grpc: $GRPC_CONNS connections x $GRPC_STREAMS streams; unary POST $GRPC_PATH with a $(( ${#GRPC_PAYLOAD} + 5 )) byte body to tests/integration/grpc_peer.py (grpc Python $(/usr/bin/python3 -c 'import grpc; print(grpc.__version__)' 2>/dev/null), on the load CPU), HTTP/2 end to end; the Python server bounds req/s, compare CPU per request"
bench_report "- grpc-nginx: $CONNS connections x $STREAMS streams; the same calls to POST $FAST_PATH on an nginx gRPC stand-in (h2c, a fixed $(( ${#FAST_REPLY} + 5 )) byte message + trailer grpc-status: 0, 1 worker, on the load CPU)"
hv=$(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }') || true
bench_report "- Proxies: 1 worker/thread each, no logging; HAProxy ${hv:-n/a} (nbthread 1, bind proto h2, http-reuse always; grpc: server proto h2), nginx (listen http2; upstream keepalive 64; grpc: grpc_pass), Strand ($(basename "$STRAND_BIN"), workers: 1; grpc: cluster protocol http2)"
bench_report ""
bench_report "| proxy | load | req/s | p50 ms | p99 ms | proxy CPU µs/req | proxy CPU % | RSS after MiB | peak RSS MiB | errors |"
bench_report "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for key in "${ROWS[@]}"; do
    name=${key%/*}; load=${key#*/}
    cpu=${R_CPU[$key]:--}; util=${R_UTIL[$key]:--}; rss=-; hwm=-
    [ -n "${R_RSS[$key]:-}" ] && rss=$(bench_fmt_mib "${R_RSS[$key]}")
    [ -n "${R_HWM[$key]:-}" ] && hwm=$(bench_fmt_mib "${R_HWM[$key]}")
    rps=$(awk -v r="${R_RPS[$key]}" 'BEGIN { printf "%.0f", r }')
    bench_report "| $name | $load | $rps | ${R_P50[$key]:--} | ${R_P99[$key]:--} | $cpu | $util | $rss | $hwm | ${R_ERR[$key]} |"
done
bench_report ""
for load in "${LOADS[@]}"; do
    s="strand/$load"; h="haproxy/$load"
    bench_report "- Strand/HAProxy, $load: req/s $(bench_ratio "${R_RPS[$s]:-}" "${R_RPS[$h]:-}"), CPU per request $(bench_ratio "${R_CPU[$s]:-}" "${R_CPU[$h]:-}"), p99 $(bench_ratio "${R_P99[$s]:-}" "${R_P99[$h]:-}"), peak RSS $(bench_ratio "${R_HWM[$s]:-}" "${R_HWM[$h]:-}")"
done
line="- Idle RSS right after start:"
for name in "${PROXIES[@]}"; do
    [ "$name" = direct ] && continue
    if [ -n "${IDLE_RSS[$name]:-}" ]; then
        line+=" $name $(bench_fmt_mib "${IDLE_RSS[$name]}") MiB;"
    else
        line+=" $name n/a;"
    fi
done
bench_report "${line%;}"
if [ "${R_ERR[nginx/grpc-nginx]:-0}" != 0 ]; then
    bench_report "- nginx grpc-nginx errors: nginx's grpc_pass drops calls when the stand-in (also nginx) sends a frame for a stream it already answered (nginx error log: \"upstream sent frame for unknown stream\"); an artefact of this pairing, not of the load"
fi
for s in "${NOISE[@]}"; do bench_report "- Noise: $s"; done
for s in "${SKIPPED[@]}"; do bench_report "- Skipped: $s"; done
bench_log "results written to ${RESULTS#"$BENCH_ROOT"/}"
