#!/usr/bin/env bash
# bench/router.sh [ARGS...] - run the attribute-router microbenchmark
# (build/router_bench, built by CMake from bench/router_bench.c) pinned to
# one CPU, and keep its output in bench/results/router-<date>.txt.
# ARGS are passed to router_bench. Exits 0 with a note when it is not built.
#   ROUTER_BENCH (build/router_bench), BENCH_PROXY_CPU (0), BENCH_PIN (1),
#   BENCH_NICE (-20 as root)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BIN=${ROUTER_BENCH:-$BENCH_ROOT/build/router_bench}
if [ ! -x "$BIN" ]; then
    if [ -e "$BENCH_ROOT/bench/router_bench.c" ]; then
        echo "router bench: $BIN not built; run 'make build' first" >&2
        exit 1
    fi
    echo "router bench: bench/router_bench.c does not exist yet; nothing to run"
    exit 0
fi
bench_init router
RESULTS=${BENCH_RESULTS:-$BENCH_ROOT/bench/results/router-$(date +%Y%m%d-%H%M%S).txt}
mkdir -p "$(dirname "$RESULTS")"
bench_log "running $(bench_pin_prefix "$BENCH_PROXY_CPU") $BIN $*"
rc=0
bench_run "$BENCH_PROXY_CPU" "$RESULTS" "$BIN" "$@" || rc=$?
cat "$RESULTS"
[ "$rc" -eq 0 ] || bench_die "router_bench exited with status $rc"
bench_log "results written to ${RESULTS#"$BENCH_ROOT"/}"
