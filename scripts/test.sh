#!/usr/bin/env bash
# scripts/test.sh STAGE...   (called by the Makefile; run from the repo root)
#
# Stages, run in the order given:
#   build        configure + build build/ (RelWithDebInfo)
#   unit         build, then ctest -L unit in build/
#   integration  build, then ctest -L integration in build/
#   main         build, then every test of build/ (unit + integration)
#   asan         build-asan/ (-DSTRAND_SANITIZE=ON): every test, the
#                integration tests driving build-asan/strand
#   fuzz         build-fuzz/ (clang, -DSTRAND_FUZZ=ON): the fuzz targets'
#                seed-corpus tests and their short fuzz runs
#
# Every stage runs even when an earlier one failed, so one run reports
# everything. At the end it prints the totals over all ctest runs, as
#   Total: N passed, M failed
# where a build that failed counts as one failed item, and exits non-zero if
# anything failed. ctest output is also saved in <builddir>/ctest-<stage>.log.
#
# Environment: JOBS (default 2) build parallelism; CTEST_ARGS extra ctest
# arguments; ASAN_CC (default cc) compiler of the sanitizer build;
# FUZZ_CC (default clang).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
JOBS=${JOBS:-2}
ASAN_CC=${ASAN_CC:-cc}
FUZZ_CC=${FUZZ_CC:-clang}
read -r -a EXTRA_CTEST <<<"${CTEST_ARGS:-}"

total_pass=0
total_fail=0
lines=()          # per-run result lines for the summary
ran_tests=0

say() { printf '\n==> %s\n' "$*"; }

# configure DIR [cmake args...]: configure once per option set.
configure() {
    local dir=$1; shift
    cmake -S . -B "$dir" "$@"
}

# build DIR [targets...]: returns non-zero on a failed build.
build() {
    local dir=$1; shift
    local args=(--build "$dir" -j "$JOBS")
    if [ $# -gt 0 ]; then args+=(--target "$@"); fi
    # Keep going past a broken file, so every test that can be built still
    # runs (the others show up in ctest as "Not Run").
    case "$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$dir/CMakeCache.txt" 2>/dev/null)" in
        "Unix Makefiles") args+=(-- -k) ;;
        Ninja) args+=(-- -k 0) ;;
    esac
    cmake "${args[@]}"
}

# record_build_failure NAME: a failed build counts as one failed item.
record_build_failure() {
    total_fail=$((total_fail + 1))
    lines+=("$1: BUILD FAILED")
    echo "*** $1: build failed" >&2
}

# run_ctest NAME DIR [ctest args...]: runs ctest, parses its closing line
# "X% tests passed, Y tests failed out of Z" and adds to the totals.
run_ctest() {
    local name=$1 dir=$2; shift 2
    local log="$dir/ctest-$name.log"
    say "ctest ($name) in $dir: $*"
    env "${RUN_ENV[@]}" ctest --test-dir "$dir" --output-on-failure "$@" "${EXTRA_CTEST[@]}" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line pass=0 fail=0 of=0
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        fail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
        of=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
        pass=$((of - fail))
    elif grep -q 'No tests were found' "$log"; then
        echo "note: no tests matched in $dir ($name)"
    elif [ "$rc" -ne 0 ]; then
        # ctest itself failed (bad build dir, crash): count as one failure.
        fail=1
    fi
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        fail=1   # non-zero exit without a counted failure (e.g. --no-tests=error)
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    ran_tests=$((ran_tests + pass + fail))
    lines+=("$name: $pass passed, $fail failed (of $of)")
}

stage_build() {
    say "build: build/ (RelWithDebInfo)"
    configure build && build build
}

built_main=""
ensure_main() {
    if [ -z "$built_main" ]; then
        if stage_build; then built_main=ok; else built_main=failed; record_build_failure build; fi
    fi
}

stage_unit() {
    ensure_main
    run_ctest unit build -L unit
}

stage_integration() {
    ensure_main
    run_ctest integration build -L integration
}

stage_main() {
    ensure_main
    run_ctest main build
}

# Extra environment of the ctest runs: the sanitizer stages set it.
RUN_ENV=()
SAN_ENV=("ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}"
         "UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}")

stage_asan() {
    say "asan: build-asan/ (ASan + UBSan, CC=$ASAN_CC)"
    if CC=$ASAN_CC configure build-asan -DSTRAND_SANITIZE=ON && build build-asan; then :; else
        record_build_failure asan-build
    fi
    RUN_ENV=("${SAN_ENV[@]}")
    run_ctest asan build-asan
    RUN_ENV=()
}

stage_fuzz() {
    say "fuzz: build-fuzz/ (CC=$FUZZ_CC, -DSTRAND_FUZZ=ON)"
    local targets=() f
    for f in tests/fuzz/fuzz_*.c; do
        [ -e "$f" ] || continue
        f=${f##*/}; targets+=("${f%.c}")
    done
    if [ ${#targets[@]} -eq 0 ]; then
        echo "fuzz: no tests/fuzz/fuzz_*.c yet; skipping"
        lines+=("fuzz: no fuzz targets")
        return 0
    fi
    if ! command -v "$FUZZ_CC" >/dev/null 2>&1; then
        record_build_failure "fuzz-build ($FUZZ_CC not found)"
        return 0
    fi
    # Only the fuzz targets are built here (the unit tests and the binary were
    # already covered by the other stages).
    if CC=$FUZZ_CC configure build-fuzz -DSTRAND_FUZZ=ON && build build-fuzz "${targets[@]}"; then :; else
        record_build_failure fuzz-build
    fi
    # Seed corpora first (fast regression), then the short runs. The fuzz runs
    # are single-threaded and CPU bound: two at a time on 2 cores.
    RUN_ENV=("${SAN_ENV[@]}")
    run_ctest fuzz-corpus build-fuzz -R '^fuzz_.*_corpus$'
    run_ctest fuzz-run build-fuzz -L fuzz -j "$JOBS"
    RUN_ENV=()
}

[ $# -eq 0 ] && set -- main asan fuzz
start=$SECONDS
for st in "$@"; do
    case "$st" in
        build)
            ensure_main
            [ "$built_main" = ok ] && lines+=("build: ok")
            ;;
        unit|integration|main|asan|fuzz) "stage_$st" ;;
        *) echo "test.sh: unknown stage '$st'" >&2; exit 2 ;;
    esac
done

printf '\n==> summary (%ss)\n' "$((SECONDS - start))"
for l in "${lines[@]}"; do echo "  $l"; done
if [ "$ran_tests" -eq 0 ] && [ "$total_fail" -eq 0 ]; then
    echo "  (no tests were found)"
fi
echo "Total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
