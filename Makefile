# Thin wrapper around CMake. See README.md.
#   make            build (build/)
#   make test       install missing deps, build with clang -Werror (+ a gcc
#                   -Werror build), run unit, sanitizer, fuzz and integration tests
#   make demo       install missing deps, build, run a loopback server+client
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make bench      benchmarks (not tests; THROUGHPUT=only: ntpperf throughput only,
#                   KEBENCH=only: NTS-KE throughput only)
#   make soak       30-minute soak benchmark (not a test; SOAK_SECONDS=120 for a
#                   short run; docs/benchmarks.md)
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
JOBS ?= 2
CMAKE ?= cmake

.PHONY: all build deps deps-build test test-unit demo install clean bench soak

all: build

deps-build:
	@scripts/install-deps --check >/dev/null 2>&1 || scripts/install-deps --build

deps:
	@scripts/install-deps --check || scripts/install-deps

build: deps-build
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	$(CMAKE) --build $(BUILD) -j$(JOBS)

# The test build uses clang (libFuzzer) with -Werror; a second gcc -Werror
# build proves the tree is warning-clean with both compilers.
test: deps
	$(CMAKE) -S . -B build-gcc -DCMAKE_C_COMPILER=gcc -DNTSD_WERROR=ON \
	    -DNTSD_SANITIZE_TESTS=OFF -DNTSD_INTEGRATION=OFF >/dev/null
	$(CMAKE) --build build-gcc -j$(JOBS)
	$(CMAKE) -S . -B build-test -DCMAKE_C_COMPILER=clang -DNTSD_WERROR=ON \
	    -DNTSD_FUZZ=ON >/dev/null
	$(CMAKE) --build build-test -j$(JOBS)
	cd build-test && ctest --output-on-failure -j1

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

demo: deps build
	scripts/demo $(BUILD)

bench: deps build
	@scripts/install-deps --bench --check || scripts/install-deps --bench
	scripts/bench $(BUILD)

soak: deps build
	@scripts/install-deps --soak --check || scripts/install-deps --soak
	scripts/soak $(BUILD)

install: build
	DESTDIR=$(DESTDIR) $(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-gcc build-test
