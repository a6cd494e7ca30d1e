#!/usr/bin/env bash
# scripts/deps.sh [build|test|bench|demo|all]...
#
# Installs the Debian 12 packages Strand needs for the given purpose(s), using
# apt-get. Idempotent: when every package is already installed it returns at
# once without touching apt (and without needing root), so `make` stays fast.
# Otherwise it needs root (or sudo): one `apt-get update`, then one
# `apt-get install -y --no-install-recommends`.
#
# Installing nginx, haproxy or prometheus normally starts a system service
# (nginx on port 80). Tests and benchmarks start their own servers, so no
# service may be started here: a temporary /usr/sbin/policy-rc.d forbids it
# during the install, and any service that started anyway is stopped after.
set -euo pipefail

# lld, wasi-libc and libclang-rt-14-dev-wasm32 let clang build the proxy-wasm
# example filters (examples/wasm) for wasm32-wasi; wabt validates them and
# converts the WebAssembly spec tests (wast2json) for tests/wasm.
BUILD_PKGS=(make cmake gcc clang pkg-config libyaml-dev libpcre2-dev libssl-dev
            libnghttp2-dev libclang-rt-14-dev lld wasi-libc libclang-rt-14-dev-wasm32 wabt)
TEST_PKGS=(nginx-light curl wrk prometheus python3 python3-yaml python3-grpcio nghttp2-client
           procps iproute2 postgresql postgresql-client mariadb-server mariadb-client
           python3-psycopg2 python3-pymysql)
BENCH_PKGS=(haproxy nginx-light wrk curl python3 python3-grpcio nghttp2-client procps util-linux iproute2
            postgresql postgresql-client pgbouncer mariadb-server mariadb-client sysbench)
DEMO_PKGS=(nginx-light curl procps iproute2)
# Services that Debian packages above would start on install.
# Each is "service" or "service:process name" when they differ.
SERVICES=(nginx haproxy prometheus prometheus-node-exporter postgresql:postgres mariadb:mariadbd
          pgbouncer)

usage() { echo "usage: $0 [build|test|bench|demo|all]..." >&2; exit 2; }

want=()
[ $# -eq 0 ] && set -- all
for what in "$@"; do
    case "$what" in
        build) want+=("${BUILD_PKGS[@]}") ;;
        test)  want+=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
        bench) want+=("${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
        demo)  want+=("${BUILD_PKGS[@]}" "${DEMO_PKGS[@]}") ;;
        all)   want+=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}" "${DEMO_PKGS[@]}") ;;
        -h|--help) usage ;;
        *) echo "deps.sh: unknown set '$what'" >&2; usage ;;
    esac
done

# Deduplicate, keeping order.
declare -A seen=()
pkgs=()
for p in "${want[@]}"; do
    [ -n "${seen[$p]:-}" ] && continue
    seen[$p]=1
    pkgs+=("$p")
done

# One dpkg-query for all packages; anything not "installed" is missing.
missing=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null || true)
for p in "${pkgs[@]}"; do
    if ! grep -qx "$p installed" <<<"$status"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#pkgs[@]} packages present ($*)"
    exit 0
fi

echo "deps: installing ${missing[*]}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
        if ! sudo -n true 2>/dev/null; then
            # Interactive sudo is fine when there is a terminal.
            if [ -t 0 ]; then SUDO=(sudo); else
                echo "deps: need root or passwordless sudo to apt-get install: ${missing[*]}" >&2
                exit 1
            fi
        fi
    else
        echo "deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef
          -o Dpkg::Options::=--force-confold)

# Which of the services were running before, so only ones the install started
# get stopped afterwards.
running_before=()
for s in "${SERVICES[@]}"; do
    if pgrep -x "${s##*:}" >/dev/null 2>&1; then running_before+=("$s"); fi
done

POLICY=/usr/sbin/policy-rc.d
made_policy=0
cleanup_policy() {
    if [ "$made_policy" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap cleanup_policy EXIT
if [ ! -e "$POLICY" ]; then
    # exit 101 = "action forbidden": invoke-rc.d (and deb-systemd-invoke) will
    # not start services while this file exists.
    printf '#!/bin/sh\n# temporary, from strand scripts/deps.sh\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    made_policy=1
fi

"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -q \
    --no-install-recommends "${missing[@]}"

cleanup_policy
made_policy=0

# Belt and braces: stop any service the install started anyway.
for s in "${SERVICES[@]}"; do
    case " ${running_before[*]:-} " in *" $s "*) continue ;; esac
    svc=${s%%:*} proc=${s##*:}
    pgrep -x "$proc" >/dev/null 2>&1 || continue
    echo "deps: stopping system $svc started by the package install"
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        "${SUDO[@]}" systemctl stop "$svc" 2>/dev/null || true
        "${SUDO[@]}" systemctl disable "$svc" 2>/dev/null || true
    fi
    if pgrep -x "$proc" >/dev/null 2>&1 && [ -x "/etc/init.d/$svc" ]; then
        "${SUDO[@]}" "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
done

# Verify.
still=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${missing[@]}" 2>/dev/null || true)
for p in "${missing[@]}"; do
    grep -qx "$p installed" <<<"$status" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
    echo "deps: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "deps: installed ${#missing[@]} packages"
