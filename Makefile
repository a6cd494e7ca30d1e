# Strand: convenience targets around CMake/CTest. The real build is
# CMakeLists.txt; the logic lives in scripts/ (deps.sh, test.sh) and bench/.
#
#   make / make build   install build deps if missing, build build/strand
#   make test           deps + unit + integration (build/), then the same
#                       under ASan+UBSan (build-asan/), then the fuzz corpus
#                       tests and short fuzz runs (build-fuzz/); prints
#                       "Total: N passed, M failed"
#   make unit | integration | asan | fuzz    one stage of `make test`
#   make bench          HTTP/1.1 (bench/http1.sh), router, HTTP/2 + gRPC (bench/h2.sh), database (bench/db.sh),
#                       WebAssembly interpreter (bench/wasm.sh) and WasmPlugin cost (bench/wasm_filter.sh) benchmarks
#   make demo           nginx backend + strand + a few curl requests
#   make clean          remove the build trees
#
# Packages are installed with apt-get (root or sudo) only when missing.

JOBS      ?= 2
BUILD_DIR ?= build
SHELL     := /bin/bash

export JOBS

.PHONY: all build deps deps-test deps-bench test unit integration asan fuzz \
        bench bench-http1 bench-router bench-h2 bench-db bench-wasm bench-wasm-filter demo clean

all: build

deps:
	@bash scripts/deps.sh build

deps-test:
	@bash scripts/deps.sh test

deps-bench:
	@bash scripts/deps.sh bench

build: deps
	cmake -S . -B $(BUILD_DIR)
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: deps-test
	@bash scripts/test.sh main asan fuzz

unit: deps
	@bash scripts/test.sh unit

integration: deps-test
	@bash scripts/test.sh integration

asan: deps-test
	@bash scripts/test.sh asan

fuzz: deps
	@bash scripts/test.sh fuzz

bench: bench-http1 bench-router bench-h2 bench-db bench-wasm bench-wasm-filter

bench-http1: deps-bench build
	bash bench/http1.sh

bench-router: build
	bash bench/router.sh

bench-h2: deps-bench build
	bash bench/h2.sh

bench-db: deps-bench build
	bash bench/db.sh

bench-wasm: deps-bench build
	bash bench/wasm.sh

bench-wasm-filter: deps-bench build
	bash bench/wasm_filter.sh

demo:
	bash demo/run.sh

clean:
	rm -rf build build-asan build-fuzz
