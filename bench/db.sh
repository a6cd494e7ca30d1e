#!/usr/bin/env bash
# bench/db.sh - database proxy benchmark: Strand's postgres and mysql
# listeners against direct connections and (PostgreSQL) PgBouncer in session
# mode, all in one run on this machine, over loopback.
#
# PostgreSQL: a throwaway PostgreSQL cluster (initdb into the temp dir, run as
# the postgres user when root; fsync=off, synchronous_commit=off,
# full_page_writes=off, shared_buffers=128MB, max_connections=200,
# autovacuum=off; trust authentication on 127.0.0.1), `pgbench -i -s SCALE`.
# For each query mode (-M simple, optionally prepared) and each script
# (select-only = pgbench -S, tpcb = the default TPC-B-like script), pgbench
# -c CLIENTS -j 1 -T BENCH_DURATION against:
#   direct     the server's TCP port
#   pgbouncer  PgBouncer (pool_mode=session, auth_type=trust)
#   strand     build/strand (workers: 1, a postgres listener + cluster)
# TPS is pgbench's; average latency is pgbench's; p50/p99 come from pgbench's
# per-transaction log (--log). Before each tpcb run the history table is
# truncated and the branch/teller tables vacuumed (what pgbench does itself
# without -n), outside the measurement.
#
# MySQL: a throwaway mariadbd (innodb_flush_log_at_trx_commit=2,
# skip-log-bin, innodb_buffer_pool_size=256M, max_connections=200), a
# sbtest database and user; sysbench oltp_read_only and oltp_read_write
# (--tables, --table-size; --threads=CLIENTS --time=BENCH_DURATION
# --percentile=99 --histogram=on) direct and through Strand (a mysql
# listener + cluster). p99 is sysbench's, p95 is read off its histogram.
#
# MySQL read/write split (BENCH_MY_SPLIT=1): after the runs above, the
# primary is shut down cleanly, its datadir copied for a replica, and it is
# restarted on the same datadir with log-bin, server-id 1 and
# binlog_format=ROW; the replica (server-id 2, no binlog) replicates from it
# with GTID (CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos), on the load
# CPU like the primary. Strand gets a mysql listener whose Route sends
# `sql.verb in [SELECT, SHOW]` to a replica Cluster with `auth` (strand_ro,
# SELECT on sbtest, created before the copy so it exists on both) and
# everything else to the primary. sysbench oltp_read_only --skip-trx=on
# (no BEGIN/COMMIT: transactions stay on the primary by design) runs direct
# against the primary and through that listener. Where statements landed:
# SHOW GLOBAL STATUS LIKE 'Com_select' on each server (root, unix socket)
# before and after the measured run, and strand_db_statements_total by
# cluster from the admin /metrics. The verdict "spreads load" is met when
# the replica answered >= BENCH_MY_SPLIT_MIN_PCT (30) % of the SELECTs.
#
# Proxy CPU: utime+stime of the proxy's process (group) over the run, per
# transaction (PostgreSQL) or per query (MySQL); RSS after the run and peak
# RSS (VmHWM). The proxy is pinned to BENCH_PROXY_CPU (0); the database
# server and the load generator share BENCH_LOAD_CPU (1), so the direct rows
# show the ceiling that CPU allows. Results go to
# bench/results/db-<date>-<time>.md (and stdout); progress to stderr.
# A missing tool skips what needs it, with a reason line in the report.
# Everything started here (servers, proxies, clients) is stopped on exit,
# and the temp dir (data directories included) removed.
#
# Environment:
#   BENCH_DURATION (10)        seconds per measured run
#   BENCH_WARMUP (1)           seconds of warm-up load before each run (0 = none)
#   BENCH_CLIENTS (16)         pgbench clients / sysbench threads
#   BENCH_DBS ("postgres mysql")          which halves to run
#   BENCH_PG_TARGETS ("direct pgbouncer strand")
#   BENCH_PG_SCRIPTS ("select-only tpcb")
#   BENCH_PG_MODES ("simple prepared")  pgbench -M modes
#   BENCH_PG_SCALE (10)        pgbench -i -s
#   BENCH_MY_TARGETS ("direct strand")
#   BENCH_MY_TESTS ("oltp_read_only oltp_read_write")
#   BENCH_SB_TABLES (4), BENCH_SB_TABLE_SIZE (10000)
#   BENCH_SB_PS_MODE (disable) sysbench --db-ps-mode (auto = server-side
#                              prepared statements)
#   BENCH_MY_SPLIT (1)         0 skips the read/write split runs (2 runs)
#   BENCH_MY_SPLIT_MIN_PCT (30) replica share of SELECTs that counts as
#                              "spreads load"
#   BENCH_PORT_BASE (first free of 28700, 28710, ...) PostgreSQL port;
#                              PgBouncer +1, Strand postgres listener +2,
#                              Strand admin +3 (postgres) / +6 (mysql),
#                              MariaDB +4, Strand mysql listener +5,
#                              MariaDB replica +7, Strand split listener +8,
#                              its admin +9
#   STRAND_BIN (build/strand)
#   BENCH_RESULTS (bench/results/db-<date>-<time>.md)
#   BENCH_NOISE_PCT (10)       report a "Noise:" line when other processes
#                              used more than this % of the proxy's CPU
#   plus BENCH_PROXY_CPU, BENCH_LOAD_CPU, BENCH_PIN, BENCH_NICE,
#   BENCH_KEEP_TMP (lib.sh)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bench_init db
bench_need ss ps awk sort curl

export LC_ALL=C PGSSLMODE=disable PGCONNECT_TIMEOUT=5

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
CLIENTS=${BENCH_CLIENTS:-16}
read -r -a DBS <<<"${BENCH_DBS:-postgres mysql}"
read -r -a PG_TARGETS <<<"${BENCH_PG_TARGETS:-direct pgbouncer strand}"
read -r -a PG_SCRIPTS <<<"${BENCH_PG_SCRIPTS:-select-only tpcb}"
read -r -a PG_MODES <<<"${BENCH_PG_MODES:-simple prepared}"
PG_SCALE=${BENCH_PG_SCALE:-10}
read -r -a MY_TARGETS <<<"${BENCH_MY_TARGETS:-direct strand}"
read -r -a MY_TESTS <<<"${BENCH_MY_TESTS:-oltp_read_only oltp_read_write}"
SB_TABLES=${BENCH_SB_TABLES:-4}
SB_TABLE_SIZE=${BENCH_SB_TABLE_SIZE:-10000}
SB_PS_MODE=${BENCH_SB_PS_MODE:-disable}
MY_SPLIT=${BENCH_MY_SPLIT:-1}
SPLIT_MIN_PCT=${BENCH_MY_SPLIT_MIN_PCT:-30}
STRAND_BIN=${STRAND_BIN:-$BENCH_ROOT/build/strand}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=${BENCH_RESULTS:-$BENCH_ROOT/bench/results/db-$STAMP.md}
PG_DB=bench
MY_USER=sbtest
MY_PASS=sbtest-pw

bench_ports 28700 PG_PORT BOUNCER_PORT SPG_PORT SPG_ADMIN MY_PORT SMY_PORT SMY_ADMIN REPL_PORT SSPLIT_PORT SSPLIT_ADMIN
declare -A R_TPS R_QPS R_AVG R_P50 R_P95 R_P99 R_CPU R_UTIL R_RSS R_HWM R_ERR IDLE_RSS
# Read/write split rows: SELECTs counted by each server (Com_select delta),
# sysbench's read count, statements by cluster from Strand's /metrics.
declare -A R_SEL_P R_SEL_R R_READS R_MET R_CONN
PG_ROWS=()
MY_ROWS=()
SKIPPED=()
NOISE=()
PG_PID=""
MY_PID=""
MY_SOCK=""
REPL_PID=""
REPL_SOCK=""
SPLIT_ROWS=()
SPLIT_NOTES=()
VERSIONS=()

skip() {   # skip "what: reason"
    bench_log "SKIP $*"
    SKIPPED+=("$*")
}

# The servers get a clean shutdown before lib.sh's cleanup (TERM/KILL of
# every process group it started, removal of the temp dir).
stop_pg() {
    [ -n "$PG_PID" ] || return 0
    if bench_alive "$PG_PID"; then
        kill -INT "$PG_PID" 2>/dev/null || true     # fast shutdown
        for ((i = 0; i < 100; i++)); do bench_alive "$PG_PID" || break; sleep 0.1; done
    fi
    bench_stop "$PG_PID" 3 quiet
    PG_PID=""
}
stop_mariadbd() {   # stop_mariadbd PID: clean shutdown (TERM), then KILL
    [ -n "$1" ] || return 0
    if bench_alive "$1"; then
        kill -TERM "$1" 2>/dev/null || true    # clean shutdown
        for ((i = 0; i < 150; i++)); do bench_alive "$1" || break; sleep 0.1; done
    fi
    bench_stop "$1" 3 quiet
}
stop_my() { stop_mariadbd "$MY_PID"; MY_PID=""; }
stop_repl() { stop_mariadbd "$REPL_PID"; REPL_PID=""; }
db_cleanup() {
    local rc=$?
    set +e
    stop_pg
    stop_repl
    stop_my
    (exit "$rc")
    bench_cleanup
}
trap db_cleanup EXIT

# ---------------------------------------------------------------- helpers

# As root, the PostgreSQL server (and PgBouncer, which refuses to run as
# root) run as the postgres user; setpriv execs in place, so the spawned pid
# is the server itself.
AS_PG=()
if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1; then
        AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
    else
        AS_PG=(false)   # no postgres user: the PostgreSQL half is skipped
    fi
fi

pg_bindir() {
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | sort -rV |
        while read -r f; do [ -x "$f" ] && { dirname "$f"; break; }; done)
    [ -n "$d" ] && echo "$d"
}

psql_q() {   # psql_q PORT SQL: one statement as postgres on database bench
    psql -h 127.0.0.1 -p "$1" -U postgres -d "$PG_DB" -XqAt -v ON_ERROR_STOP=1 -c "$2"
}
my_q() {     # my_q PORT SQL: as the sbtest user over TCP
    mariadb --no-defaults -h 127.0.0.1 -P "$1" -u "$MY_USER" -p"$MY_PASS" -D sbtest \
        --connect-timeout=5 -N -B -e "$2"
}

# cpu_begin PID|"" / cpu_end PID|"" KEY COUNT LABEL: proxy CPU over the run
# (per COUNT), CPU %, RSS, peak RSS and the noise check of the proxy's CPU.
cpu_begin() {
    T0=0; B0=0
    if [ -n "$1" ]; then
        T0=$(bench_cpu_ticks "$1")
        if [ "$BENCH_PIN" = 1 ]; then B0=$(bench_cpu_busy_ticks "$BENCH_PROXY_CPU"); fi
    fi
    return 0
}
cpu_end() {
    local pid=$1 key=$2 n=$3 label=$4 t1 b1 other
    [ -n "$pid" ] || return 0
    t1=$(bench_cpu_ticks "$pid")
    R_CPU[$key]=$(awk -v t="$((t1 - T0))" -v hz="$CLK_TCK" -v n="$n" \
        'BEGIN { printf "%.2f", (n > 0) ? t / hz * 1e6 / n : 0 }')
    R_UTIL[$key]=$(awk -v t="$((t1 - T0))" -v hz="$CLK_TCK" -v d="$DURATION" \
        'BEGIN { printf "%.0f", t / hz / d * 100 }')
    R_RSS[$key]=$(bench_rss_kb "$pid")
    R_HWM[$key]=$(bench_hwm_kb "$pid")
    if [ "$BENCH_PIN" = 1 ]; then
        b1=$(bench_cpu_busy_ticks "$BENCH_PROXY_CPU")
        other=$(awk -v b="$((b1 - B0 - (t1 - T0)))" -v hz="$CLK_TCK" -v d="$DURATION" \
            'BEGIN { printf "%.0f", b / hz / d * 100 }')
        if [ "$other" -gt "${BENCH_NOISE_PCT:-10}" ]; then
            NOISE+=("$label: other processes used ${other}% of CPU $BENCH_PROXY_CPU (the proxy's) during the run")
            bench_log "warning: other processes used ${other}% of the proxy's CPU"
        fi
    fi
    return 0
}

# percentiles FILE: "p50 p95 p99" (ms, 3 decimals) of the microsecond
# values in FILE, one per line.
percentiles() {
    sort -n "$1" | awk '
        { v[NR] = $1 }
        function at(p,   i) { i = int(NR * p + 0.5); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] / 1000 }
        END { if (NR == 0) { print "- - -"; exit }
              printf "%.3f %.3f %.3f\n", at(0.50), at(0.95), at(0.99) }'
}

# proxy_dead NAME PID LOG LABEL: true (and a skip line) when PID died.
proxy_dead() {
    local name=$1 pid=$2 log=$3 label=$4
    [ -n "$pid" ] || return 1
    bench_alive "$pid" && return 1
    bench_log "$name died during $label; last lines of its output:"
    tail -n 20 "$log" 2>/dev/null | sed 's/^/    /' >&2
    skip "$label: $name died during the run"
    return 0
}

# start_strand NAME CONFIG_WRITER PORT ADMIN: Strand pinned to the proxy CPU;
# sets S_PID, S_LOG; non-zero with SKIP_REASON when it does not come up.
start_strand() {
    local name=$1 writer=$2 port=$3 admin=$4 dir="$BENCH_TMP/strand-$1"
    S_PID=""
    if [ ! -x "$STRAND_BIN" ]; then SKIP_REASON="$STRAND_BIN not built (make build)"; return 1; fi
    mkdir -p "$dir"
    S_LOG="$dir/out.log"
    "$writer" "$dir/strand.yaml"
    if ! "$STRAND_BIN" validate -c "$dir/strand.yaml" >"$dir/validate.log" 2>&1; then
        SKIP_REASON="configuration rejected: $(head -n 3 "$dir/validate.log" | tr '\n' ' ')"
        return 1
    fi
    bench_spawn "strand ($name)" "$BENCH_PROXY_CPU" "$S_LOG" "$STRAND_BIN" proxy -c "$dir/strand.yaml"
    S_PID=$SPAWNED_PID
    if ! bench_wait_http "http://127.0.0.1:$admin/ready" 10 "$S_PID" ||
        ! bench_wait_listen "$port" 5 "$S_PID"; then
        SKIP_REASON="did not start (not ready within 10 s)"
        bench_alive "$S_PID" || SKIP_REASON="exited at start"
        tail -n 15 "$S_LOG" 2>/dev/null | sed 's/^/    /' >&2
        bench_stop "$S_PID" 3 quiet; S_PID=""
        return 1
    fi
    return 0
}

strand_common() {   # strand_common ADMIN_PORT
    cat <<EOF
$(bench_strand_head "bench/db.sh" "$1")
  drainTimeout: 2s
  # no accessLog: access logging off
EOF
}

write_strand_pg_conf() {
    {
        strand_common "$SPG_ADMIN"
        cat <<EOF
---
apiVersion: strand.dev/v1alpha1
kind: Listener
metadata: {name: pg}
spec:
  address: 127.0.0.1:$SPG_PORT
  protocol: postgres
---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: pg}
spec:
  endpoints:
  - {address: 127.0.0.1:$PG_PORT}
---
apiVersion: strand.dev/v1alpha1
kind: Route
metadata: {name: pg}
spec:
  parents: [pg]
  rules:
  - name: all
    backends: [{cluster: pg}]
EOF
    } >"$1"
}

write_strand_my_conf() {
    {
        strand_common "$SMY_ADMIN"
        cat <<EOF
---
apiVersion: strand.dev/v1alpha1
kind: Listener
metadata: {name: my}
spec:
  address: 127.0.0.1:$SMY_PORT
  protocol: mysql
---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: maria}
spec:
  endpoints:
  - {address: 127.0.0.1:$MY_PORT}
---
apiVersion: strand.dev/v1alpha1
kind: Route
metadata: {name: maria}
spec:
  parents: [my]
  rules:
  - name: all
    backends: [{cluster: maria}]
EOF
    } >"$1"
}

# ---------------------------------------------------------------- PostgreSQL

PG_BIN=""
start_pg() {
    local dir="$BENCH_TMP/pg"
    PG_BIN=$(pg_bindir) || { skip "postgres: no PostgreSQL server (/usr/lib/postgresql/*/bin/postgres; apt-get install postgresql-15)"; return 1; }
    command -v psql >/dev/null || { skip "postgres: psql not installed (postgresql-client)"; return 1; }
    if [ "${AS_PG[0]:-}" = false ]; then
        skip "postgres: running as root without a postgres user or setpriv"; return 1
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    bench_log "initdb $dir/data"
    if ! "${AS_PG[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        --no-locale --no-sync >"$BENCH_TMP/initdb.log" 2>&1; then
        tail -n 15 "$BENCH_TMP/initdb.log" | sed 's/^/    /' >&2
        skip "postgres: initdb failed"; return 1
    fi
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$dir/data/pg_hba.conf"
    bench_spawn postgres "$BENCH_LOAD_CPU" "$BENCH_TMP/postgres.log" \
        "${AS_PG[@]}" "$PG_BIN/postgres" -D "$dir/data" -p "$PG_PORT" \
        -c listen_addresses=127.0.0.1 -c unix_socket_directories="$dir" \
        -c ssl=off -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c shared_buffers=128MB -c max_connections=200 -c autovacuum=off \
        -c max_wal_size=4GB -c checkpoint_timeout=30min -c log_min_messages=warning
    PG_PID=$SPAWNED_PID
    local i
    for ((i = 0; i < 300; i++)); do
        bench_alive "$PG_PID" || break
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
        sleep 0.1
    done
    if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
        tail -n 15 "$BENCH_TMP/postgres.log" | sed 's/^/    /' >&2
        stop_pg; skip "postgres: the server did not start"; return 1
    fi
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -XqAt -c "CREATE DATABASE $PG_DB" >/dev/null
    bench_log "pgbench -i -s $PG_SCALE"
    if ! bench_run "$BENCH_LOAD_CPU" "$BENCH_TMP/pgbench-init.log" \
        pgbench -i -q -s "$PG_SCALE" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$PG_DB"; then
        tail -n 15 "$BENCH_TMP/pgbench-init.log" | sed 's/^/    /' >&2
        stop_pg; skip "postgres: pgbench -i failed"; return 1
    fi
    psql_q "$PG_PORT" "CHECKPOINT" >/dev/null
    VERSIONS+=("PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') (fsync=off, synchronous_commit=off, full_page_writes=off, shared_buffers=128MB, max_connections=200, autovacuum=off; trust auth), pgbench -s $PG_SCALE ($((PG_SCALE * 100000)) accounts)")
    return 0
}

BOUNCER_PID=""
start_pgbouncer() {
    local dir="$BENCH_TMP/pgbouncer"
    command -v pgbouncer >/dev/null || { SKIP_REASON="pgbouncer not installed (apt-get install pgbouncer)"; return 1; }
    mkdir -p "$dir"
    printf '"postgres" ""\n' >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<EOF
; generated by bench/db.sh
[databases]
$PG_DB = host=127.0.0.1 port=$PG_PORT dbname=$PG_DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = session
max_client_conn = 400
default_pool_size = $((CLIENTS + 16))
max_db_connections = 0
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
stats_period = 60
ignore_startup_parameters = extra_float_digits
EOF
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    bench_spawn pgbouncer "$BENCH_PROXY_CPU" "$dir/out.log" "${AS_PG[@]}" pgbouncer "$dir/pgbouncer.ini"
    BOUNCER_PID=$SPAWNED_PID
    BOUNCER_LOG="$dir/pgbouncer.log"
    if ! bench_wait_listen "$BOUNCER_PORT" 10 "$BOUNCER_PID"; then
        SKIP_REASON="did not start"
        cat "$dir/out.log" "$BOUNCER_LOG" 2>/dev/null | tail -n 15 | sed 's/^/    /' >&2
        bench_stop "$BOUNCER_PID" 3 quiet; BOUNCER_PID=""
        return 1
    fi
    VERSIONS+=("PgBouncer $(pgbouncer --version | awk 'NR == 1 { print $2 }') (pool_mode=session, auth_type=trust, default_pool_size=$((CLIENTS + 16)), single process)")
    return 0
}

# pg_check PORT: the proxied database answers with the server's data.
pg_check() {
    local got
    got=$(psql_q "$1" "SELECT count(*) FROM pgbench_branches" 2>&1) || true
    if [ "$got" != "$PG_SCALE" ]; then
        SKIP_REASON="does not proxy: SELECT count(*) FROM pgbench_branches returned '$(head -c 200 <<<"$got" | tr '\n' ' ')'"
        return 1
    fi
}

# pgbench_run PORT SCRIPT MODE SECS OUT [LOGPREFIX]
pgbench_run() {
    local port=$1 script=$2 mode=$3 secs=$4 out=$5 logp=${6:-}
    local args=(-h 127.0.0.1 -p "$port" -U postgres -n -c "$CLIENTS" -j 1 -T "$secs" -M "$mode")
    [ "$script" = select-only ] && args+=(-S)
    [ -n "$logp" ] && args+=(--log "--log-prefix=$logp")
    bench_run "$BENCH_LOAD_CPU" "$out" pgbench "${args[@]}" "$PG_DB"
}

# measure_pg MODE SCRIPT TARGET PORT PID|"" LOG
measure_pg() {
    local mode=$1 script=$2 target=$3 port=$4 pid=$5 plog=$6
    local key="$mode/$script/$target" label="postgres $script -M $mode $target"
    local out="$BENCH_TMP/pgbench-$mode-$script-$target.txt" logp="$BENCH_TMP/pglog-$mode-$script-$target"
    if [ "$script" = tpcb ]; then
        psql_q "$PG_PORT" "TRUNCATE pgbench_history" >/dev/null
        psql_q "$PG_PORT" "VACUUM pgbench_branches, pgbench_tellers" >/dev/null
    fi
    if [ "$WARMUP" != 0 ]; then
        pgbench_run "$port" "$script" "$mode" "$WARMUP" "$BENCH_TMP/warmup.txt" >/dev/null 2>&1 || true
    fi
    cpu_begin "$pid"
    bench_log "$label: pgbench -c $CLIENTS -j 1 -T $DURATION"
    local rc=0
    pgbench_run "$port" "$script" "$mode" "$DURATION" "$out" "$logp" || rc=$?
    if proxy_dead "$target" "$pid" "$plog" "$label"; then return 1; fi
    local tps txns avg failed aborted
    tps=$(awk '/^tps = / { print $3; exit }' "$out")
    txns=$(awk -F': ' '/^number of transactions actually processed:/ { split($2, a, "/"); print a[1]; exit }' "$out")
    avg=$(awk '/^latency average = / { print $4; exit }' "$out")
    failed=$(awk '/^number of failed transactions:/ { print $5; exit }' "$out")
    aborted=$(grep -c 'aborted' "$out" || true)
    if [ -z "$tps" ] || [ -z "$txns" ]; then
        bench_log "pgbench produced no result (exit $rc):"; tail -n 15 "$out" | sed 's/^/    /' >&2
        skip "$label: pgbench failed (exit $rc): $(grep -m 1 -i 'error' "$out" | head -c 200)"
        return 1
    fi
    cpu_end "$pid" "$key" "$txns" "$label"
    cat "$logp".* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ { print $3 }' >"$BENCH_TMP/lat.txt"
    rm -f "$logp".*
    read -r "R_P50[$key]" "R_P95[$key]" "R_P99[$key]" <<<"$(percentiles "$BENCH_TMP/lat.txt")"
    R_TPS[$key]=$tps
    R_AVG[$key]=$avg
    R_ERR[$key]=$(( ${failed:-0} + aborted ))
    PG_ROWS+=("$key")
    bench_log "$label: $tps tps, avg $avg ms, p99 ${R_P99[$key]} ms${pid:+, ${R_CPU[$key]} us CPU/txn}, errors ${R_ERR[$key]}"
}

run_postgres() {
    command -v pgbench >/dev/null || { skip "postgres: pgbench not installed (postgresql-contrib / postgresql-client)"; return 0; }
    start_pg || return 0
    local target want_b=0 want_s=0
    for target in "${PG_TARGETS[@]}"; do
        case "$target" in pgbouncer) want_b=1 ;; strand) want_s=1 ;; direct) ;;
            *) skip "postgres $target: unknown target" ;; esac
    done
    SPG_PID=""
    if [ "$want_b" = 1 ]; then
        SKIP_REASON=""
        if start_pgbouncer && pg_check "$BOUNCER_PORT"; then
            IDLE_RSS[pgbouncer]=$(bench_rss_kb "$BOUNCER_PID")
        else
            skip "postgres pgbouncer: $SKIP_REASON"
            [ -n "$BOUNCER_PID" ] && bench_stop "$BOUNCER_PID" 3 quiet
            BOUNCER_PID=""; want_b=0
        fi
    fi
    if [ "$want_s" = 1 ]; then
        SKIP_REASON=""
        if start_strand postgres write_strand_pg_conf "$SPG_PORT" "$SPG_ADMIN" && pg_check "$SPG_PORT"; then
            SPG_PID=$S_PID; SPG_LOG=$S_LOG
            IDLE_RSS[strand-postgres]=$(bench_rss_kb "$SPG_PID")
        else
            skip "postgres strand: $SKIP_REASON"
            [ -n "$S_PID" ] && bench_stop "$S_PID" 3 quiet
            want_s=0
        fi
    fi
    local mode script
    for mode in "${PG_MODES[@]}"; do
        for script in "${PG_SCRIPTS[@]}"; do
            case "$script" in select-only | tpcb) ;; *) skip "postgres $script: unknown script"; continue ;; esac
            for target in "${PG_TARGETS[@]}"; do
                case "$target" in
                    direct) measure_pg "$mode" "$script" direct "$PG_PORT" "" "" || true ;;
                    pgbouncer)
                        if [ "$want_b" = 1 ] && bench_alive "$BOUNCER_PID"; then
                            measure_pg "$mode" "$script" pgbouncer "$BOUNCER_PORT" "$BOUNCER_PID" "$BOUNCER_LOG" || true
                        fi ;;
                    strand)
                        if [ "$want_s" = 1 ] && bench_alive "$SPG_PID"; then
                            measure_pg "$mode" "$script" strand "$SPG_PORT" "$SPG_PID" "$SPG_LOG" || true
                        fi ;;
                esac
            done
        done
    done
    [ -n "$BOUNCER_PID" ] && bench_stop "$BOUNCER_PID" 5
    [ -n "$SPG_PID" ] && bench_stop "$SPG_PID" 5
    BOUNCER_PID=""; SPG_PID=""
    stop_pg
    return 0
}

# ---------------------------------------------------------------- MySQL

# spawn_mariadbd NAME DIR PORT EXTRA_ARGS...: mariadbd on DIR/data (socket
# DIR/sock) on the load CPU, with the options all servers here share; waits
# until root answers over the socket. Sets SPAWNED_PID; non-zero (with the
# tail of its error log) when it does not come up within 30 s.
spawn_mariadbd() {
    local name=$1 dir=$2 port=$3 i; shift 3
    bench_spawn "$name" "$BENCH_LOAD_CPU" "$dir/out.log" \
        mariadbd --no-defaults --user="$(id -un)" --datadir="$dir/data" --socket="$dir/sock" \
        --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
        --innodb-flush-log-at-trx-commit=2 --innodb-buffer-pool-size=256M \
        --innodb-log-file-size=256M --max-connections=200 --performance-schema=OFF \
        --max-allowed-packet=64M --log-error="$dir/err.log" "$@"
    local pid=$SPAWNED_PID
    for ((i = 0; i < 300; i++)); do
        bench_alive "$pid" || break
        if mariadb --no-defaults -uroot --socket="$dir/sock" -e 'SELECT 1' >/dev/null 2>&1; then
            SPAWNED_PID=$pid; return 0
        fi
        sleep 0.1
    done
    tail -n 15 "$dir/err.log" 2>/dev/null | sed 's/^/    /' >&2
    SPAWNED_PID=$pid
    return 1
}

start_mariadb() {
    local dir="$BENCH_TMP/mariadb" me
    command -v mariadbd >/dev/null || { skip "mysql: mariadbd not installed (apt-get install mariadb-server)"; return 1; }
    command -v mariadb-install-db >/dev/null || { skip "mysql: mariadb-install-db not installed"; return 1; }
    command -v mariadb >/dev/null || { skip "mysql: the mariadb client not installed"; return 1; }
    me=$(id -un)
    mkdir -p "$dir"
    MY_SOCK="$dir/sock"
    bench_log "mariadb-install-db $dir/data"
    if ! mariadb-install-db --no-defaults --datadir="$dir/data" --user="$me" \
        --auth-root-authentication-method=normal --skip-test-db >"$BENCH_TMP/mariadb-install.log" 2>&1; then
        tail -n 15 "$BENCH_TMP/mariadb-install.log" | sed 's/^/    /' >&2
        skip "mysql: mariadb-install-db failed"; return 1
    fi
    if ! spawn_mariadbd mariadbd "$dir" "$MY_PORT" --skip-log-bin; then
        MY_PID=$SPAWNED_PID; stop_my; skip "mysql: mariadbd did not start"; return 1
    fi
    MY_PID=$SPAWNED_PID
    mariadb --no-defaults -uroot --socket="$MY_SOCK" -e "
        CREATE DATABASE sbtest;
        CREATE USER '$MY_USER'@'%' IDENTIFIED BY '$MY_PASS';
        GRANT ALL ON sbtest.* TO '$MY_USER'@'%';" ||
        { stop_my; skip "mysql: could not create the sbtest database and user"; return 1; }
    VERSIONS+=("MariaDB $(mariadbd --version | awk '{ print $3 }') (innodb_flush_log_at_trx_commit=2, skip-log-bin, innodb_buffer_pool_size=256M, max_connections=200, performance_schema=OFF)")
    return 0
}

sb_args() {   # sb_args PORT THREADS
    SB_ARGS=(--db-driver=mysql --mysql-host=127.0.0.1 "--mysql-port=$1" "--mysql-user=$MY_USER"
        "--mysql-password=$MY_PASS" --mysql-db=sbtest "--tables=$SB_TABLES"
        "--table-size=$SB_TABLE_SIZE" "--threads=$2" "--db-ps-mode=$SB_PS_MODE")
}

# measure_my TEST TARGET PORT PID|"" LOG [ROW [SYSBENCH_ARGS...]]: the row
# is ROW/TARGET (ROW defaults to TEST). With MY_COUNT_HOOK set, that
# function is called with "begin ROW/TARGET" right before the measured run
# (after the warm-up) and "end ROW/TARGET" right after it.
measure_my() {
    local test=$1 target=$2 port=$3 pid=$4 plog=$5 row=${6:-$1}
    shift 5; [ $# -gt 0 ] && shift
    local extra=("$@")
    local key="$row/$target" label="mysql $row $target"
    local out="$BENCH_TMP/sysbench-${row// /_}-$target.txt"
    sb_args "$port" "$CLIENTS"
    SB_ARGS+=("${extra[@]}")
    if [ "$WARMUP" != 0 ]; then
        bench_run "$BENCH_LOAD_CPU" "$BENCH_TMP/warmup.txt" sysbench "$test" "${SB_ARGS[@]}" \
            "--time=$WARMUP" --percentile=99 run >/dev/null 2>&1 || true
    fi
    [ -n "${MY_COUNT_HOOK:-}" ] && "$MY_COUNT_HOOK" begin "$key"
    cpu_begin "$pid"
    bench_log "$label: sysbench --threads=$CLIENTS --time=$DURATION${extra[*]:+ ${extra[*]}}"
    local rc=0
    bench_run "$BENCH_LOAD_CPU" "$out" sysbench "$test" "${SB_ARGS[@]}" "--time=$DURATION" \
        --percentile=99 --histogram=on --report-interval=0 run || rc=$?
    [ -n "${MY_COUNT_HOOK:-}" ] && "$MY_COUNT_HOOK" end "$key"
    R_READS[$key]=$(awk '/^ *read:/ { print $2; exit }' "$out")
    if proxy_dead "$target" "$pid" "$plog" "$label"; then return 1; fi
    local txns tps queries qps errs p99 avg
    read -r txns tps <<<"$(awk '/^ *transactions:/ { gsub(/\(/, "", $3); print $2, $3; exit }' "$out")"
    read -r queries qps <<<"$(awk '/^ *queries:/ { gsub(/\(/, "", $3); print $2, $3; exit }' "$out")"
    errs=$(awk '/^ *ignored errors:/ { print $3; exit }' "$out")
    p99=$(awk '/^ *99th percentile:/ { print $3; exit }' "$out")
    avg=$(awk '/^ *avg:/ { print $2; exit }' "$out")
    if [ "$rc" != 0 ] || [ -z "$tps" ] || [ -z "$queries" ]; then
        bench_log "sysbench failed (exit $rc):"; tail -n 15 "$out" | sed 's/^/    /' >&2
        skip "$label: sysbench failed (exit $rc): $(grep -m 1 -E 'FATAL|ERROR|error' "$out" | head -c 200)"
        return 1
    fi
    cpu_end "$pid" "$key" "$queries" "$label"
    # p95 from the histogram: "value |***   count" lines, value in ms.
    R_P95[$key]=$(awk '
        /^Latency histogram/ { h = 1; next }
        h && $2 ~ /^\|/ { n++; val[n] = $1; cnt[n] = $NF; tot += $NF; next }
        h && n && !/\|/ { h = 0 }
        END { if (!tot) { print "-"; exit }
              for (i = 1; i <= n; i++) { c += cnt[i]; if (c >= tot * 0.95) { printf "%.3f", val[i]; exit } } }' "$out")
    R_TPS[$key]=$tps
    R_QPS[$key]=$qps
    R_AVG[$key]=$avg
    R_P99[$key]=$p99
    R_ERR[$key]=${errs:-0}
    MY_ROWS+=("$key")
    bench_log "$label: $tps tps, $qps qps, avg $avg ms, p99 $p99 ms${pid:+, ${R_CPU[$key]} us CPU/query}, errors ${R_ERR[$key]}"
}

run_mysql() {
    command -v sysbench >/dev/null || { skip "mysql: sysbench not installed (apt-get install sysbench)"; return 0; }
    start_mariadb || return 0
    bench_log "sysbench prepare: $SB_TABLES tables x $SB_TABLE_SIZE rows"
    sb_args "$MY_PORT" 4
    if ! bench_run "$BENCH_LOAD_CPU" "$BENCH_TMP/sysbench-prepare.log" \
        sysbench oltp_read_write "${SB_ARGS[@]}" prepare; then
        tail -n 15 "$BENCH_TMP/sysbench-prepare.log" | sed 's/^/    /' >&2
        stop_my; skip "mysql: sysbench prepare failed"; return 0
    fi
    VERSIONS+=("$(sysbench --version) ($SB_TABLES tables x $SB_TABLE_SIZE rows, --db-ps-mode=$SB_PS_MODE, --threads=$CLIENTS)")
    local target want_s=0 got
    for target in "${MY_TARGETS[@]}"; do
        case "$target" in strand) want_s=1 ;; direct) ;; *) skip "mysql $target: unknown target" ;; esac
    done
    SMY_PID=""
    if [ "$want_s" = 1 ]; then
        SKIP_REASON=""
        if start_strand mysql write_strand_my_conf "$SMY_PORT" "$SMY_ADMIN"; then
            got=$(my_q "$SMY_PORT" "SELECT count(*) FROM sbtest1" 2>&1) || true
            if [ "$got" = "$SB_TABLE_SIZE" ]; then
                SMY_PID=$S_PID; SMY_LOG=$S_LOG
                IDLE_RSS[strand-mysql]=$(bench_rss_kb "$SMY_PID")
            else
                SKIP_REASON="does not proxy: SELECT count(*) FROM sbtest1 returned '$(head -c 200 <<<"$got" | tr '\n' ' ')'"
            fi
        fi
        if [ -z "$SMY_PID" ]; then
            skip "mysql strand: $SKIP_REASON"
            [ -n "$S_PID" ] && bench_stop "$S_PID" 3 quiet
            want_s=0
        fi
    fi
    local test
    for test in "${MY_TESTS[@]}"; do
        for target in "${MY_TARGETS[@]}"; do
            case "$target" in
                direct) measure_my "$test" direct "$MY_PORT" "" "" || true ;;
                strand)
                    if [ "$want_s" = 1 ] && bench_alive "$SMY_PID"; then
                        measure_my "$test" strand "$SMY_PORT" "$SMY_PID" "$SMY_LOG" || true
                    fi ;;
            esac
        done
    done
    [ -n "$SMY_PID" ] && bench_stop "$SMY_PID" 5
    SMY_PID=""
    if [ "$MY_SPLIT" = 1 ]; then
        run_my_split || true
    else
        SPLIT_NOTES+=("not measured: BENCH_MY_SPLIT=0")
    fi
    [ -n "$SSPLIT_PID" ] && bench_stop "$SSPLIT_PID" 5
    SSPLIT_PID=""
    stop_repl
    stop_my
    return 0
}

# ---------------------------------------------------------------- MySQL split

SPLIT_RO_USER=strand_ro
SPLIT_RO_PASS=strand-ro-pw
SPLIT_REPL_PASS=repl-pw
SSPLIT_PID=""
SPLIT_ADMIN_NOW=""   # the split proxy's admin port while its row is measured

my_root() {   # my_root SOCKET SQL: as root over a server's unix socket
    mariadb --no-defaults -uroot --socket="$1" --connect-timeout=5 -N -B -e "$2"
}
my_status() {   # my_status SOCKET VARIABLE: a server's global status counter
    my_root "$1" "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | awk '{ print $2 }' || true
}
# db_metrics ADMIN: "cluster verb outcome value" of strand_db_statements_total.
db_metrics() {
    curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null | awk '
        /^strand_db_statements_total\{/ {
            c = v = o = "?"
            if (match($0, /cluster="[^"]*"/)) c = substr($0, RSTART + 9, RLENGTH - 10)
            if (match($0, /verb="[^"]*"/)) v = substr($0, RSTART + 6, RLENGTH - 7)
            if (match($0, /outcome="[^"]*"/)) o = substr($0, RSTART + 9, RLENGTH - 10)
            print c, v, o, $NF }' || true
}

# split_count begin|end KEY: MY_COUNT_HOOK of the split rows: Com_select on
# the primary and the replica around the measured run, and (for the proxied
# row) the proxy's statement counters by cluster.
split_count() {
    local what=$1 key=$2
    if [ "$what" = begin ]; then
        SC_P0=$(my_status "$MY_SOCK" Com_select); SC_R0=$(my_status "$REPL_SOCK" Com_select)
        SC_PC0=$(my_status "$MY_SOCK" Connections); SC_RC0=$(my_status "$REPL_SOCK" Connections)
        : >"$BENCH_TMP/metrics-before.txt"
        [ -n "$SPLIT_ADMIN_NOW" ] && db_metrics "$SPLIT_ADMIN_NOW" >"$BENCH_TMP/metrics-before.txt"
        return 0
    fi
    local p1 r1 pc1 rc1
    p1=$(my_status "$MY_SOCK" Com_select); r1=$(my_status "$REPL_SOCK" Com_select)
    pc1=$(my_status "$MY_SOCK" Connections); rc1=$(my_status "$REPL_SOCK" Connections)
    [ -n "$SC_P0" ] && [ -n "$p1" ] && R_SEL_P[$key]=$((p1 - SC_P0))
    [ -n "$SC_R0" ] && [ -n "$r1" ] && R_SEL_R[$key]=$((r1 - SC_R0))
    # connections opened during the run (sysbench's, and the proxy's own
    # logins to the replica), minus the 2 of these root queries
    [ -n "$SC_PC0" ] && [ -n "$pc1" ] && R_CONN[$key]="primary $((pc1 - SC_PC0 - 2))"
    [ -n "$SC_RC0" ] && [ -n "$rc1" ] && R_CONN[$key]+=", replica $((rc1 - SC_RC0 - 2))"
    if [ -n "$SPLIT_ADMIN_NOW" ]; then
        db_metrics "$SPLIT_ADMIN_NOW" >"$BENCH_TMP/metrics-after.txt"
        # "cluster VERB outcome: delta" for every series that moved
        R_MET[$key]=$(awk '
            NR == FNR { b[$1 " " $2 " " $3] = $4; next }
            { d = $4 - b[$1 " " $2 " " $3]; if (d > 0) printf "%s%s %s %s: %d", (n++ ? "; " : ""), $1, $2, $3, d }
            END { if (!n) printf "none" }' "$BENCH_TMP/metrics-before.txt" "$BENCH_TMP/metrics-after.txt")
    fi
    bench_log "SELECTs during the run: primary ${R_SEL_P[$key]:-?}, replica ${R_SEL_R[$key]:-?}${R_MET[$key]:+; strand_db_statements_total: ${R_MET[$key]}}; connections opened: ${R_CONN[$key]:-?}"
    return 0
}

write_strand_split_conf() {
    {
        strand_common "$SSPLIT_ADMIN"
        cat <<EOF
---
apiVersion: strand.dev/v1alpha1
kind: Listener
metadata: {name: my-rw}
spec:
  address: 127.0.0.1:$SSPLIT_PORT
  protocol: mysql
---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: primary}
spec:
  endpoints:
  - {address: 127.0.0.1:$MY_PORT}
---
apiVersion: strand.dev/v1alpha1
kind: Cluster
metadata: {name: replica}
spec:
  endpoints:
  - {address: 127.0.0.1:$REPL_PORT}
  auth: {user: $SPLIT_RO_USER, password: $SPLIT_RO_PASS}
---
apiVersion: strand.dev/v1alpha1
kind: Route
metadata: {name: rw}
spec:
  parents: [my-rw]
  rules:
  - name: reads
    match: [{attribute: sql.verb, in: [SELECT, SHOW]}]
    backends: [{cluster: replica}]
  - name: writes
    backends: [{cluster: primary}]
EOF
    } >"$1"
}

# wait_for SECS CMD...: until CMD succeeds (every 0.2 s).
wait_for() {
    local secs=$1 i; shift
    for ((i = 0; i < secs * 5; i++)); do "$@" && return 0; sleep 0.2; done
    return 1
}
repl_running() { [ "$(my_root "$REPL_SOCK" "SHOW GLOBAL STATUS LIKE 'Slave_running'" 2>/dev/null | awk '{ print $2 }')" = ON ]; }
repl_has_check() { [ "$(my_root "$REPL_SOCK" "SELECT COUNT(*) FROM sbtest.split_check" 2>/dev/null)" = 1 ]; }

# split_fail REASON: the split is not measured (report note + skip line).
split_fail() {
    SPLIT_NOTES+=("not measured: $1")
    skip "mysql read/write split: $1"
    return 1
}

# run_my_split: the primary (MY_PID, sysbench tables prepared) gets a
# replica and a binlog; then oltp_read_only --skip-trx=on direct and
# through a Strand read/write split listener. Leaves the servers and the
# proxy running (run_mysql stops them).
run_my_split() {
    local dir="$BENCH_TMP/mariadb" rdir="$BENCH_TMP/replica" got row="oltp_read_only --skip-trx=on"
    [ -x "$STRAND_BIN" ] || { split_fail "$STRAND_BIN not built"; return 1; }
    { [ -n "$MY_PID" ] && bench_alive "$MY_PID"; } || { split_fail "the primary is not running"; return 1; }
    bench_log "read/write split: the primary gets a binlog and a replica"
    # Users first, so that the copy of the datadir has them too: Strand's
    # own login for the replica, and the replication user.
    my_root "$MY_SOCK" "
        CREATE USER '$SPLIT_RO_USER'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$SPLIT_RO_PASS');
        GRANT SELECT ON sbtest.* TO '$SPLIT_RO_USER'@'%';
        CREATE USER 'repl'@'%' IDENTIFIED BY '$SPLIT_REPL_PASS';
        GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';" ||
        { split_fail "could not create the users"; return 1; }
    stop_my
    mkdir -p "$rdir"
    cp -a "$dir/data" "$rdir/data" || { split_fail "could not copy the datadir"; return 1; }
    if ! spawn_mariadbd "mariadbd (primary, log-bin)" "$dir" "$MY_PORT" \
        --server-id=1 --log-bin="$dir/binlog" --binlog-format=ROW; then
        MY_PID=$SPAWNED_PID; stop_my
        split_fail "the primary did not restart with log-bin"; return 1
    fi
    MY_PID=$SPAWNED_PID
    REPL_SOCK="$rdir/sock"
    if ! spawn_mariadbd "mariadbd (replica)" "$rdir" "$REPL_PORT" --server-id=2 --skip-log-bin; then
        REPL_PID=$SPAWNED_PID; stop_repl
        split_fail "the replica mariadbd did not start"; return 1
    fi
    REPL_PID=$SPAWNED_PID
    # GTID replication from the start of the primary's (new) binlog.
    if ! my_root "$REPL_SOCK" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$MY_PORT,
            MASTER_USER='repl', MASTER_PASSWORD='$SPLIT_REPL_PASS', MASTER_CONNECT_RETRY=1,
            MASTER_USE_GTID=slave_pos; START SLAVE;" ||
        ! wait_for 15 repl_running; then
        tail -n 15 "$rdir/err.log" 2>/dev/null | sed 's/^/    /' >&2
        split_fail "replication did not start (IO and SQL threads)"; return 1
    fi
    # A write on the primary must reach the replica.
    my_root "$MY_SOCK" "CREATE TABLE sbtest.split_check (id INT PRIMARY KEY); INSERT INTO sbtest.split_check VALUES (1)" || true
    if ! wait_for 15 repl_has_check; then
        tail -n 15 "$rdir/err.log" 2>/dev/null | sed 's/^/    /' >&2
        split_fail "a write on the primary did not reach the replica within 15 s"; return 1
    fi
    my_root "$MY_SOCK" "DROP TABLE sbtest.split_check" || true
    got=$(my_root "$REPL_SOCK" "SELECT COUNT(*) FROM sbtest.sbtest1" 2>&1) || true
    [ "$got" = "$SB_TABLE_SIZE" ] || { split_fail "the replica's sbtest1 has '$got' rows"; return 1; }
    VERSIONS+=("Read/write split runs: after the runs above, the primary restarted on the same datadir with log-bin, server-id 1, binlog_format=ROW; the replica is a copy of that datadir (same options, server-id 2, no binlog) replicating with GTID (MASTER_USE_GTID=slave_pos), on the load CPU like the primary; Strand logs into it as $SPLIT_RO_USER (mysql_native_password, SELECT on sbtest)")

    SKIP_REASON=""
    S_PID=""
    if start_strand split write_strand_split_conf "$SSPLIT_PORT" "$SSPLIT_ADMIN"; then
        SSPLIT_PID=$S_PID
        got=$(my_q "$SSPLIT_PORT" "SELECT count(*) FROM sbtest1" 2>&1) || true
        if [ "$got" = "$SB_TABLE_SIZE" ]; then
            IDLE_RSS[strand-split]=$(bench_rss_kb "$SSPLIT_PID")
            got=$(my_q "$SSPLIT_PORT" "SELECT @@server_id" 2>&1) || true
            SPLIT_NOTES+=("one \`SELECT @@server_id\` through the split listener (mariadb CLI) before the runs answered $(head -c 100 <<<"$got" | tr '\n' ' ')(1 = primary, 2 = replica)")
        else
            SKIP_REASON="does not proxy: SELECT count(*) FROM sbtest1 returned '$(head -c 200 <<<"$got" | tr '\n' ' ')'"
            bench_stop "$SSPLIT_PID" 3 quiet; SSPLIT_PID=""
        fi
    elif [ -n "$S_PID" ]; then
        bench_stop "$S_PID" 3 quiet
    fi
    # Without the proxy, the direct row alone says nothing about the split.
    [ -n "$SSPLIT_PID" ] || { split_fail "Strand (split config): $SKIP_REASON"; return 1; }

    MY_COUNT_HOOK=split_count
    SPLIT_ADMIN_NOW=""
    if measure_my oltp_read_only direct "$MY_PORT" "" "" "$row" --skip-trx=on; then
        SPLIT_ROWS+=("$row/direct")
    fi
    SPLIT_ADMIN_NOW=$SSPLIT_ADMIN
    if bench_alive "$SSPLIT_PID" &&
        measure_my oltp_read_only strand-split "$SSPLIT_PORT" "$SSPLIT_PID" "$S_LOG" "$row" --skip-trx=on; then
        SPLIT_ROWS+=("$row/strand-split")
    fi
    SPLIT_ADMIN_NOW=""
    MY_COUNT_HOOK=""
    repl_running || SPLIT_NOTES+=("replication was no longer running after the runs (see the replica's err.log)")
    return 0
}

# ---------------------------------------------------------------- run

for db in "${DBS[@]}"; do
    case "$db" in
        postgres) run_postgres ;;
        mysql) run_mysql ;;
        *) skip "$db: unknown database (postgres, mysql)" ;;
    esac
done

# ---------------------------------------------------------------- report

fmt_mib() { if [ -n "${1:-}" ]; then bench_fmt_mib "$1"; else echo -; fi; }
fmt_int() { if [ -n "${1:-}" ]; then awk -v r="$1" 'BEGIN { printf "%.0f", r }'; else echo -; fi; }
# target_line TEXT RATIO MIN: "TEXT: met (1.02x)" / "NOT met" / "n/a".
verdict() {
    awk -v r="${1%x}" -v m="$2" 'BEGIN {
        if (r == "n/a" || r == "") print "n/a (not measured)";
        else if (r + 0 >= m) printf "**met** (%sx)\n", r; else printf "**NOT met** (%sx)\n", r }'
}

bench_report_open "$RESULTS"
bench_report "## Database proxy benchmark ($(date '+%Y-%m-%d %H:%M %Z'))"
bench_report ""
bench_machine_info
for v in "${VERSIONS[@]}"; do bench_report "- $v"; done
bench_report "- Strand: $("$STRAND_BIN" version 2>/dev/null || echo "n/a") ($(basename "$STRAND_BIN"), workers: 1, no access log, no AuthorizationPolicy: every statement is still parsed and classified)"
bench_report "- Load: $CLIENTS clients, ${DURATION} s per run after ${WARMUP} s warm-up, on the load CPU with the database server; everything over 127.0.0.1 TCP, no TLS"

if [ ${#PG_ROWS[@]} -gt 0 ]; then
    bench_report ""
    bench_report "### PostgreSQL (pgbench -c $CLIENTS -j 1 -T $DURATION)"
    bench_report ""
    bench_report "Latency percentiles from pgbench's per-transaction log (--log); TPS and average from pgbench's summary. select-only = \`pgbench -S\` (one SELECT per transaction); tpcb = the built-in TPC-B-like script (BEGIN, 3 UPDATEs, SELECT, INSERT, END)."
    bench_report ""
    bench_report "| mode | script | target | TPS | avg ms | p50 ms | p99 ms | proxy CPU µs/txn | proxy CPU % | RSS after MiB | peak RSS MiB | errors |"
    bench_report "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for key in "${PG_ROWS[@]}"; do
        IFS=/ read -r mode script target <<<"$key"
        bench_report "| $mode | $script | $target | $(fmt_int "${R_TPS[$key]}") | ${R_AVG[$key]} | ${R_P50[$key]} | ${R_P99[$key]} | ${R_CPU[$key]:--} | ${R_UTIL[$key]:--} | $(fmt_mib "${R_RSS[$key]:-}") | $(fmt_mib "${R_HWM[$key]:-}") | ${R_ERR[$key]} |"
    done
    bench_report ""
    for mode in "${PG_MODES[@]}"; do
        for script in "${PG_SCRIPTS[@]}"; do
            s="$mode/$script/strand"; b="$mode/$script/pgbouncer"; d="$mode/$script/direct"
            [ -n "${R_TPS[$s]:-}" ] || continue
            bench_report "- $script -M $mode, Strand/PgBouncer: TPS $(bench_ratio "${R_TPS[$s]:-}" "${R_TPS[$b]:-}"), avg latency $(bench_ratio "${R_AVG[$s]:-}" "${R_AVG[$b]:-}"), p99 $(bench_ratio "${R_P99[$s]:-}" "${R_P99[$b]:-}"), CPU per txn $(bench_ratio "${R_CPU[$s]:-}" "${R_CPU[$b]:-}"), peak RSS $(bench_ratio "${R_HWM[$s]:-}" "${R_HWM[$b]:-}"); Strand/direct: TPS $(bench_ratio "${R_TPS[$s]:-}" "${R_TPS[$d]:-}"), avg latency $(bench_ratio "${R_AVG[$s]:-}" "${R_AVG[$d]:-}"), p99 $(bench_ratio "${R_P99[$s]:-}" "${R_P99[$d]:-}")"
        done
    done
    for mode in "${PG_MODES[@]}"; do
        for script in "${PG_SCRIPTS[@]}"; do
            s="$mode/$script/strand"; b="$mode/$script/pgbouncer"
            bench_report "- Target \"Strand TPS >= PgBouncer's at $CLIENTS clients\", $script -M $mode: $(verdict "$(bench_ratio "${R_TPS[$s]:-}" "${R_TPS[$b]:-}")" 1.0)"
        done
        s="$mode/select-only/strand"; d="$mode/select-only/direct"
        bench_report "- Target \"Strand TPS >= 0.9x direct for pgbench -S at $CLIENTS clients\", -M $mode: $(verdict "$(bench_ratio "${R_TPS[$s]:-}" "${R_TPS[$d]:-}")" 0.9)"
    done
fi

if [ ${#MY_ROWS[@]} -gt 0 ]; then
    bench_report ""
    bench_report "### MySQL protocol (MariaDB, sysbench --threads=$CLIENTS --time=$DURATION)"
    bench_report ""
    bench_report "p99 and average are sysbench's; p95 is read off its latency histogram (--histogram=on). A transaction of oltp_read_only is 16 statements (BEGIN, 14 SELECTs, COMMIT), of oltp_read_write 20 (plus 2 UPDATEs, a DELETE and an INSERT); errors are sysbench's ignored errors (deadlocks). The \`--skip-trx=on\` rows (read/write split, below) run oltp_read_only without BEGIN/COMMIT: 14 statements per transaction."
    bench_report ""
    bench_report "| test | target | TPS | QPS | avg ms | p95 ms | p99 ms | proxy CPU µs/query | proxy CPU % | RSS after MiB | peak RSS MiB | errors |"
    bench_report "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for key in "${MY_ROWS[@]}"; do
        test=${key%/*}; target=${key#*/}
        bench_report "| $test | $target | $(fmt_int "${R_TPS[$key]}") | $(fmt_int "${R_QPS[$key]}") | ${R_AVG[$key]} | ${R_P95[$key]} | ${R_P99[$key]} | ${R_CPU[$key]:--} | ${R_UTIL[$key]:--} | $(fmt_mib "${R_RSS[$key]:-}") | $(fmt_mib "${R_HWM[$key]:-}") | ${R_ERR[$key]} |"
    done
    bench_report ""
    for test in "${MY_TESTS[@]}"; do
        s="$test/strand"; d="$test/direct"
        [ -n "${R_TPS[$s]:-}" ] || continue
        bench_report "- $test, Strand/direct: TPS $(bench_ratio "${R_TPS[$s]:-}" "${R_TPS[$d]:-}"), QPS $(bench_ratio "${R_QPS[$s]:-}" "${R_QPS[$d]:-}"), avg latency $(bench_ratio "${R_AVG[$s]:-}" "${R_AVG[$d]:-}"), p95 $(bench_ratio "${R_P95[$s]:-}" "${R_P95[$d]:-}"), p99 $(bench_ratio "${R_P99[$s]:-}" "${R_P99[$d]:-}")"
    done
fi
if [ ${#SPLIT_ROWS[@]} -gt 0 ]; then
    bench_report ""
    bench_report "### MySQL read/write split (sysbench oltp_read_only --skip-trx=on --threads=$CLIENTS --time=$DURATION)"
    bench_report ""
    bench_report "No BEGIN/COMMIT (--skip-trx=on): 14 SELECTs per sysbench transaction, each in autocommit mode. direct = the primary alone; strand-split = Strand's mysql listener whose Route sends \`sql.verb in [SELECT, SHOW]\` to the replica Cluster (with \`auth\`) and everything else to the primary. SELECTs per server = the delta of SHOW GLOBAL STATUS LIKE 'Com_select' over the measured run (root over each server's unix socket, not through the proxy); sysbench reads = sysbench's own count. Both servers share the load CPU with sysbench, so the split cannot add throughput here: this measures where statements land and what the split costs."
    bench_report ""
    bench_report "| target | TPS | QPS | avg ms | p99 ms | sysbench reads | SELECTs on primary | SELECTs on replica | replica share | proxy CPU µs/query |"
    bench_report "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for key in "${SPLIT_ROWS[@]}"; do
        target=${key#*/}
        share=$(awk -v p="${R_SEL_P[$key]:-}" -v r="${R_SEL_R[$key]:-}" 'BEGIN {
            if (p == "" || r == "" || p + r == 0) print "-"; else printf "%.1f%%", r / (p + r) * 100 }')
        bench_report "| $target | $(fmt_int "${R_TPS[$key]}") | $(fmt_int "${R_QPS[$key]}") | ${R_AVG[$key]} | ${R_P99[$key]} | ${R_READS[$key]:--} | ${R_SEL_P[$key]:--} | ${R_SEL_R[$key]:--} | $share | ${R_CPU[$key]:--} |"
    done
    bench_report ""
    s="oltp_read_only --skip-trx=on/strand-split"; d="oltp_read_only --skip-trx=on/direct"
    if [ -n "${R_TPS[$s]:-}" ]; then
        bench_report "- Split/direct: TPS $(bench_ratio "${R_TPS[$s]:-}" "${R_TPS[$d]:-}"), QPS $(bench_ratio "${R_QPS[$s]:-}" "${R_QPS[$d]:-}"), avg latency $(bench_ratio "${R_AVG[$s]:-}" "${R_AVG[$d]:-}"), p95 $(bench_ratio "${R_P95[$s]:-}" "${R_P95[$d]:-}"), p99 $(bench_ratio "${R_P99[$s]:-}" "${R_P99[$d]:-}"); Strand CPU per query ${R_CPU[$s]:--} µs (single-cluster oltp_read_only row, with BEGIN/COMMIT: ${R_CPU[oltp_read_only/strand]:--} µs)"
        bench_report "- strand_db_statements_total during the split run (cluster verb outcome: count): ${R_MET[$s]:-n/a}"
        bench_report "- Connections opened on the servers during the runs (status Connections delta; $CLIENTS sysbench threads): direct: ${R_CONN[$d]:-n/a}; strand-split: ${R_CONN[$s]:-n/a} (each client session keeps its home connection to the primary and the proxy opens its own login to the replica)"
        # the servers' counters should add up to what sysbench sent
        chk=$(awk -v p="${R_SEL_P[$s]:-}" -v r="${R_SEL_R[$s]:-}" -v n="${R_READS[$s]:-}" 'BEGIN {
            if (p == "" || r == "" || n == "" || n + 0 == 0) exit
            d = (p + r - n) / n * 100; if (d < 0) d = -d
            if (d > 5) printf "primary + replica SELECTs (%d) differ from sysbench reads (%d) by %.0f%%", p + r, n, d }')
        if [ -n "$chk" ]; then bench_report "- Read/write split: warning: $chk"; fi
    fi
fi
for s in "${SPLIT_NOTES[@]}"; do bench_report "- Read/write split: $s"; done
case " ${DBS[*]} " in
    *" mysql "*)
        s="oltp_read_only --skip-trx=on/strand-split"
        if [ -n "${R_SEL_R[$s]:-}" ] && [ -n "${R_SEL_P[$s]:-}" ]; then
            v=$(awk -v p="${R_SEL_P[$s]}" -v r="${R_SEL_R[$s]}" -v m="$SPLIT_MIN_PCT" 'BEGIN {
                t = p + r
                if (t == 0) { print "n/a (no SELECTs counted)"; exit }
                printf "%s (replica %.1f%%, primary %.1f%% of %d SELECTs)", (r / t * 100 >= m) ? "**met**" : "**NOT met**", r / t * 100, p / t * 100, t
                if (p / t < 0.05 && r / t >= m / 100)
                    printf "; the reads rule names one cluster, so every eligible read moved to the replica and the primary kept only its idle home connections (a reads rule with weighted backends, replica + primary, would share them per statement: not measured here)" }')
        else
            v="n/a (not measured; see the lines above)"
        fi
        bench_report "- Target \"read/write split spreads sysbench read_only load across primary and replica\" (replica >= ${SPLIT_MIN_PCT}% of SELECTs, oltp_read_only --skip-trx=on through Strand): $v" ;;
esac
case " ${DBS[*]} " in
    *" postgres "*)
        bench_report "- PostgreSQL read/write split: not measured here (no streaming replica in this script); tests/integration/test_pg.py proves where statements land" ;;
esac

line="- Idle RSS right after start:"
for name in pgbouncer strand-postgres strand-mysql strand-split; do
    [ -n "${IDLE_RSS[$name]:-}" ] && line+=" $name $(bench_fmt_mib "${IDLE_RSS[$name]}") MiB;"
done
[ "$line" != "- Idle RSS right after start:" ] && bench_report "${line%;}"
for s in "${NOISE[@]}"; do bench_report "- Noise: $s"; done
for s in "${SKIPPED[@]}"; do bench_report "- Skipped: $s"; done
bench_log "results written to ${RESULTS#"$BENCH_ROOT"/}"
