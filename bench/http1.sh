#!/usr/bin/env bash
# bench/http1.sh - HTTP/1.1 proxy benchmark: Strand against HAProxy and nginx,
# all in one run on this machine, with the same backend and load generator.
#
# For each proxy (and "direct", wrk straight to the backend) and each
# concurrency: wrk --latency for BENCH_DURATION seconds after a short warm-up;
# reports req/s, p50, p99, the proxy's CPU time per request and peak RSS.
# Then the idle RSS of each proxy right after start, and the memory of one
# idle keep-alive client connection (BENCH_IDLE_CONNS connections, each after
# one request). See docs/benchmarks.md for what is measured and how.
#
# Environment:
#   BENCH_DURATION (10)        seconds per measured wrk run
#   BENCH_WARMUP (1)           seconds of wrk warm-up before each run (0 = none)
#   BENCH_CONNS ("32 256")     wrk connection counts
#   BENCH_WRK_THREADS (1)      wrk threads (they share the load CPU)
#   BENCH_PROXIES ("direct haproxy nginx strand")
#   BENCH_IDLE_PROXIES ("haproxy nginx strand")   per-connection memory test
#   BENCH_IDLE_CONNS (1000)    idle connections for that test
#   BENCH_PORT_BASE (first free of 28080, 28090, ...) backend port;
#                              proxy = +1, Strand admin = +2
#   STRAND_BIN (build/strand)
#   BENCH_RESULTS (bench/results/http1-<date>.md)
#   BENCH_NOISE_PCT (10)       report a "Noise:" line when other processes
#                              used more than this % of the proxy's CPU
#   plus BENCH_PROXY_CPU, BENCH_LOAD_CPU, BENCH_PIN, BENCH_NICE,
#   BENCH_KEEP_TMP (lib.sh)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bench_init http1
bench_need nginx wrk curl ss ps awk /usr/bin/python3

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
read -r -a CONNS <<<"${BENCH_CONNS:-32 256}"
read -r -a PROXIES <<<"${BENCH_PROXIES:-direct haproxy nginx strand}"
read -r -a IDLE_PROXIES <<<"${BENCH_IDLE_PROXIES-haproxy nginx strand}"
IDLE_N=${BENCH_IDLE_CONNS:-1000}
bench_ports 28080 BACKEND_PORT PROXY_PORT ADMIN_PORT
STRAND_BIN=${STRAND_BIN:-$BENCH_ROOT/build/strand}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=${BENCH_RESULTS:-$BENCH_ROOT/bench/results/http1-$STAMP.md}
BODY="strand bench: hello from the nginx backend"   # 42 bytes + newline

# ---------------------------------------------------------------- configs

write_nginx_proxy_conf() {
    local p=$1
    mkdir -p "$p/tmp"
    {
        bench_nginx_common "$p"
        cat <<EOF
$(bench_nginx_http "$p")
$(bench_nginx_upstream backend "$BACKEND_PORT")
    server {
        listen 127.0.0.1:$PROXY_PORT backlog=4096;
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
    bind 127.0.0.1:$PROXY_PORT
    default_backend be

backend be
    server s1 127.0.0.1:$BACKEND_PORT
EOF
}

write_strand_conf() {
    cat >"$1" <<EOF
$(bench_strand_head "bench/http1.sh" "$ADMIN_PORT")
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
kind: Cluster
metadata: {name: backend}
spec:
  endpoints:
  - {address: 127.0.0.1:$BACKEND_PORT}
$(bench_strand_route)
EOF
}

# ---------------------------------------------------------------- proxies

# start_proxy NAME: start it pinned to the proxy CPU, wait until it listens
# and proxies one request to the backend. Sets PROXY_PID. Non-zero = skip.
start_proxy() {
    bench_start_proxy "$1" || return 1
    # Idle RSS right after start, before any traffic.
    IDLE_RSS_KB=$(bench_rss_kb "$PROXY_PID")
    local got
    got=$(curl -sS --max-time 5 "http://127.0.0.1:$PROXY_PORT/" 2>&1) || true
    if [ "$got" != "$BODY" ]; then
        SKIP_REASON="does not proxy: GET / returned '$(head -c 200 <<<"$got")'"
        return 1
    fi
    return 0
}


# ---------------------------------------------------------------- run

declare -A R_RPS R_P50 R_P99 R_CPU R_HWM R_ERR R_UTIL IDLE_RSS PER_CONN PER_CONN_NOTE
SKIPPED=()
NOISE=()
ROWS=()

bench_log "backend: nginx on 127.0.0.1:$BACKEND_PORT (CPU ${BENCH_LOAD_CPU})"
mkdir -p "$BENCH_TMP/backend"
bench_write_backend_conf "$BENCH_TMP/backend"
bench_spawn nginx-backend "$BENCH_LOAD_CPU" "$BENCH_TMP/backend/out.log" \
    nginx -p "$BENCH_TMP/backend" -c "$BENCH_TMP/backend/nginx.conf" -e "$BENCH_TMP/backend/error.log"
BACKEND_PID=$SPAWNED_PID
if ! bench_wait_http "http://127.0.0.1:$BACKEND_PORT/" 10 "$BACKEND_PID"; then
    cat "$BENCH_TMP/backend/out.log" "$BENCH_TMP/backend/error.log" >&2 2>/dev/null || true
    bench_die "the nginx backend did not start"
fi

measure() {   # measure NAME CONNS URL PID|""
    local name=$1 c=$2 url=$3 pid=$4 key="$1/$2"
    local out="$BENCH_TMP/wrk-$name-$c.txt"
    if [ "$WARMUP" != 0 ]; then
        bench_wrk "$url" "$c" "$WARMUP" "$BENCH_TMP/warmup.txt" >/dev/null 2>&1 || true
    fi
    local t0=0 t1=0 b0=0 b1=0
    [ -n "$pid" ] && t0=$(bench_cpu_ticks "$pid")
    [ -n "$pid" ] && [ "$BENCH_PIN" = 1 ] && b0=$(bench_cpu_busy_ticks "$BENCH_PROXY_CPU")
    bench_log "$name c=$c: wrk ${DURATION}s"
    local wrk_ok=1
    bench_wrk "$url" "$c" "$DURATION" "$out" || wrk_ok=0
    if [ -n "$pid" ] && ! bench_alive "$pid"; then
        local st=0 how
        wait "$pid" 2>/dev/null || st=$?
        how="exit status $st"
        [ "$st" -gt 128 ] && how="killed by signal $((st - 128))"
        bench_log "$name died during the run at $c connections ($how); last lines of its output:"
        tail -n 20 "$PROXY_LOG" 2>/dev/null | sed 's/^/    /' >&2
        SKIPPED+=("$name c=$c: the proxy died during the run ($how)")
        return 1
    fi
    if [ "$wrk_ok" = 0 ]; then
        SKIPPED+=("$name c=$c: wrk failed"); return 1
    fi
    [ -n "$pid" ] && t1=$(bench_cpu_ticks "$pid")
    [ -n "$pid" ] && [ "$BENCH_PIN" = 1 ] && b1=$(bench_cpu_busy_ticks "$BENCH_PROXY_CPU")
    if [ -n "$pid" ] && [ "$BENCH_PIN" = 1 ]; then
        # CPU time on the proxy's CPU not used by the proxy: other processes.
        local other
        other=$(awk -v b="$((b1 - b0 - (t1 - t0)))" -v hz="$CLK_TCK" -v d="$DURATION" \
            'BEGIN { printf "%.0f", b / hz / d * 100 }')
        if [ "$other" -gt "${BENCH_NOISE_PCT:-10}" ]; then
            NOISE+=("$name c=$c: other processes used ${other}% of CPU $BENCH_PROXY_CPU (the proxy's) during the run")
            bench_log "warning: other processes used ${other}% of the proxy's CPU"
        fi
    fi
    R_RPS[$key]=$WRK_RPS
    R_P50[$key]=$WRK_P50_MS
    R_P99[$key]=$WRK_P99_MS
    R_ERR[$key]=$WRK_ERRORS
    if [ -n "$pid" ]; then
        R_CPU[$key]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$WRK_REQS" \
            'BEGIN { printf "%.2f", (n > 0) ? t / hz * 1e6 / n : 0 }')
        R_UTIL[$key]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v d="$DURATION" \
            'BEGIN { printf "%.0f", t / hz / d * 100 }')
        R_HWM[$key]=$(bench_hwm_kb "$pid")
    fi
    ROWS+=("$key")
    bench_log "$name c=$c: ${WRK_RPS} req/s, p50 ${WRK_P50_MS} ms, p99 ${WRK_P99_MS} ms${pid:+, ${R_CPU[$key]} us CPU/req}, errors $WRK_ERRORS"
}

for name in "${PROXIES[@]}"; do
    if [ "$name" = direct ]; then
        for c in "${CONNS[@]}"; do
            measure direct "$c" "http://127.0.0.1:$BACKEND_PORT/" "" || true
        done
        continue
    fi
    # A fresh proxy process for every concurrency, so each peak RSS is its own.
    for c in "${CONNS[@]}"; do
        SKIP_REASON=""
        if ! start_proxy "$name"; then bench_skip_proxy "$name"; continue 2; fi
        [ -z "${IDLE_RSS[$name]:-}" ] && IDLE_RSS[$name]=$IDLE_RSS_KB
        measure "$name" "$c" "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" || true
        bench_stop "$PROXY_PID"; PROXY_PID=""
    done
    case " ${IDLE_PROXIES[*]} " in *" $name "*) ;; *) continue ;; esac
    SKIP_REASON=""
    if ! start_proxy "$name"; then bench_skip_proxy "$name"; continue; fi
    bench_log "$name: $IDLE_N idle keep-alive connections"
    if bench_idle_conns 127.0.0.1 "$PROXY_PORT" "$IDLE_N" "$PROXY_PID"; then
        PER_CONN[$name]=$IDLE_KIB_PER_CONN
        PER_CONN_NOTE[$name]="RSS $(bench_fmt_mib "$IDLE_RSS_BEFORE_KB") -> $(bench_fmt_mib "$IDLE_RSS_AFTER_KB") MiB, $IDLE_OPEN of $IDLE_N still open"
        bench_log "$name: $IDLE_KIB_PER_CONN KiB per idle connection (${PER_CONN_NOTE[$name]})"
    else
        SKIPPED+=("$name: idle connection test failed")
    fi
    bench_stop "$PROXY_PID"; PROXY_PID=""
done

# ---------------------------------------------------------------- report

bench_report_open "$RESULTS"
bench_report "## HTTP/1.1 proxy benchmark ($(date '+%Y-%m-%d %H:%M %Z'))"
bench_report ""
bench_machine_info
bench_report "- Load: wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }'), ${BENCH_WRK_THREADS:-1} thread(s), ${DURATION} s per run after ${WARMUP} s warm-up; GET / of a $((${#BODY} + 1)) byte body from nginx $(nginx -v 2>&1 | sed 's|.*/||') (1 worker, keep-alive)"
hv=$(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }') || true
bench_report "- Proxies: 1 worker/thread each; HAProxy ${hv:-n/a} (nbthread 1, http-reuse always, no logging), nginx (upstream keepalive 64), Strand ($(basename "$STRAND_BIN"), workers: 1, no access log)"
bench_report ""
bench_report "| proxy | conns | req/s | p50 ms | p99 ms | proxy CPU µs/req | proxy CPU % | peak RSS MiB | errors |"
bench_report "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for key in "${ROWS[@]}"; do
    name=${key%/*}; c=${key#*/}
    cpu=${R_CPU[$key]:--}; util=${R_UTIL[$key]:--}; hwm=-
    [ -n "${R_HWM[$key]:-}" ] && hwm=$(bench_fmt_mib "${R_HWM[$key]}")
    rps=$(awk -v r="${R_RPS[$key]}" 'BEGIN { printf "%.0f", r }')
    bench_report "| $name | $c | $rps | ${R_P50[$key]} | ${R_P99[$key]} | $cpu | $util | $hwm | ${R_ERR[$key]} |"
done
bench_report ""
for c in "${CONNS[@]}"; do
    s="strand/$c"; h="haproxy/$c"
    bench_report "- Strand/HAProxy at $c connections: CPU per request $(bench_ratio "${R_CPU[$s]:-}" "${R_CPU[$h]:-}"), p99 $(bench_ratio "${R_P99[$s]:-}" "${R_P99[$h]:-}")"
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
for name in "${IDLE_PROXIES[@]}"; do
    case " ${PROXIES[*]} " in *" $name "*) ;; *) continue ;; esac
    if [ -n "${PER_CONN[$name]:-}" ]; then
        bench_report "- Memory per idle keep-alive connection, $name: ${PER_CONN[$name]} KiB (${PER_CONN_NOTE[$name]})"
    else
        bench_report "- Memory per idle keep-alive connection, $name: n/a"
    fi
done
for s in "${NOISE[@]}"; do
    bench_report "- Noise: $s"
done
for s in "${SKIPPED[@]}"; do
    bench_report "- Skipped: $s"
done
bench_log "results written to ${RESULTS#"$BENCH_ROOT"/}"
