# Thin wrapper over CMake: the two commands of the README plus `make bench`.
# `make` builds build/wxbank; `make test` runs the suite in the normal build and again
# under AddressSanitizer + UndefinedBehaviorSanitizer.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
ONLY ?=

.PHONY: all deps build build-asan run test test-normal test-asan bench fuzz nlu-eval format clean

all: build

deps:
	@scripts/deps

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DWX_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

run: build
	build/wxbank demo

test: test-normal test-asan
	@scripts/fuzz-smoke
	@echo "make test: all suites passed (normal and ASan+UBSan builds)"

# Tests that talk to the npm peers find them here (scripts/peers installs them), and the
# browser tests find playwright-core here (scripts/browser-deps installs it).
export WX_PEERS_DIR := $(CURDIR)/build/peers
export WX_BROWSER_DIR := $(CURDIR)/build/browser

test-normal: build
	@scripts/peers
	@scripts/browser-deps
	@cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	@scripts/peers
	@scripts/browser-deps
	@cd build-asan && ctest --output-on-failure -j $(JOBS)

bench: build
	@scripts/peers
	@bench/run $(ONLY)

# The chat assistant on held-out utterances: accuracy, precision and recall, confusions.
nlu-eval: build
	@build/nlu_eval tests/nlu/eval.tsv data/nlu/train.tsv

fuzz: deps
	@scripts/fuzz-smoke

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
