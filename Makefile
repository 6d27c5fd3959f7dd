# fastloop developer entry points. Everything runs in .venv, created here with
# the machine's python3 (override: make PYTHON=python3.12 VENV=.venv312 test).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCES := $(wildcard fastloop/*.pyx fastloop/*.pxd fastloop/*.h) setup.py

.PHONY: all build demo test lint pytest clean

all: build

$(VENV)/.installed: requirements-dev.txt requirements-test-extra.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# In-place build; a .pth file puts the checkout on the venv's path, so the
# examples, the tests and `python -m fastloop` all import this build.
$(VENV)/.built: $(VENV)/.installed $(SOURCES)
	$(PY) setup.py --quiet build_ext --inplace -j 2
	$(PY) -c "import site, sys; open(site.getsitepackages()[0] + '/fastloop-dev.pth', 'w').write(sys.argv[1] + '\n')" "$(CURDIR)"
	touch $@

build: $(VENV)/.built

demo: build
	$(PY) examples/demo.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cython-lint fastloop

pytest: build
	$(PY) -m pytest -q

test: build lint pytest

clean:
	rm -rf build $(VENV) fastloop/*.so fastloop/*.c

# Release wheels: `make wheels` builds the sdist and one wheel per pyenv Python
# (WHEEL_PYTHONS) into wheelhouse/, the Linux ones repaired to manylinux_*;
# `make test-wheels` installs each into a fresh venv with no compiler reachable
# and runs tests/ against site-packages. The tooling lives in its own venv.
WHEELS_VENV ?= .venv-wheels
WHEEL_PYTHONS ?= 3.10 3.11 3.12 3.13
WHEEL_PYTEST_ARGS ?= tests

$(WHEELS_VENV)/.installed: requirements-wheels.txt
	$(PYTHON) -m venv $(WHEELS_VENV)
	$(WHEELS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(WHEELS_VENV)/bin/python -m pip install --quiet -r requirements-wheels.txt
	touch $@

.PHONY: wheels test-wheels
wheels: $(WHEELS_VENV)/.installed
	WHEELS_VENV=$(WHEELS_VENV) WHEEL_PYTHONS="$(WHEEL_PYTHONS)" tools/wheels.sh build

test-wheels: $(WHEELS_VENV)/.installed
	WHEELS_VENV=$(WHEELS_VENV) WHEEL_PYTHONS="$(WHEEL_PYTHONS)" \
		WHEEL_PYTEST_ARGS="$(WHEEL_PYTEST_ARGS)" tools/wheels.sh test

# CPython's own test.test_asyncio on fastloop and on the stdlib loop, for every
# supported Python this machine has (tools/pythons.sh: pyenv's 3.10-3.13, and
# 3.14/3.15 from the chroot of ../shared/tools/sid-python.sh, each built in its
# own .venv-3.X); says which versions it skipped and why; writes
# docs/conformance.md from every build/conformance/3.X.json present. (make test
# runs it for the default Python through tests/test_conformance.py.)
CONFORMANCE_PYTHONS ?= 3.10 3.11 3.12 3.13 3.14 3.15
.PHONY: conformance
conformance: $(VENV)/.installed
	@mkdir -p build/conformance; rc=0; \
	for v in $(CONFORMANCE_PYTHONS); do \
	  set -- $$(PYTHONS=$$v tools/pythons.sh list); \
	  if [ "$$2" = skip ]; then shift 2; echo "conformance: skipping Python $$v: $$*"; continue; fi; \
	  echo "conformance: Python $$v ($$2 $$3)"; \
	  tools/pythons.sh run $$v sh -c '$(MAKE) --no-print-directory PYTHON=$$PYTHON VENV=$$VENV build \
	    && $$VENV/bin/python tests/conformance/run.py --loop both --json build/conformance/'$$v'.json' \
	    || rc=1; \
	done; \
	$(PY) tests/conformance/run.py --render build/conformance/3.*.json --markdown docs/conformance.md; exit $$rc

# The whole suite (make test) on another supported Python, in its own venv:
# make test-3.14, make test-3.15 (inside the chroot), make test-3.12 (pyenv).
# Inside the chroot itself `make PYTHON=python3.14 VENV=.venv-3.14 test` is
# the same thing.
.PHONY: test-3.%
test-3.%:
	tools/pythons.sh run 3.$* sh -c '$(MAKE) --no-print-directory PYTHON=$$PYTHON VENV=$$VENV test'

# Benchmarks (opt-in): fastloop side by side with asyncio, uvloop and rloop,
# installed into their own venv so .venv stays free of other loops.
# make bench (~35 min): the micro benchmarks at every scale (bench/micro.py),
# then the echo and HTTP matrix
# (bench/echo.py: 4 echo server styles x 1/10/100 KiB x 10/100 connections,
# plus HTTP at 10/100 connections; 3 rounds of 2.5 s), then bench/report.py.
# Timings and options: bench/README.md.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed: requirements-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements-bench.txt
	touch $@

# Micro results are named micro-<date>-py<ver>[-quick].json; bench/report.py
# renders the newest that is not a quick (smoke) run.
BENCH_MICRO_ARGS ?=
BENCH_PYVER = $$($(BENCH_VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
BENCH_MICRO_JSON = bench/results/micro-$$(date +%Y%m%d)-py$(BENCH_PYVER)$(if $(findstring quick,$(BENCH_MICRO_ARGS)),-quick).json
BENCH_PTH = $(BENCH_VENV)/bin/python -c "import site, sys; open(site.getsitepackages()[0] + '/fastloop-dev.pth', 'w').write(sys.argv[1] + '\n')" "$(CURDIR)"

.PHONY: bench bench-micro bench-report
bench: build $(BENCH_VENV)/.installed
	$(BENCH_PTH)
	$(BENCH_VENV)/bin/python bench/micro.py $(BENCH_MICRO_ARGS) --json $(BENCH_MICRO_JSON)
	$(BENCH_VENV)/bin/python bench/echo.py $(BENCH_ECHO_ARGS)
	$(BENCH_VENV)/bin/python bench/report.py --readme README.md

# The micro benchmarks alone (~12 min; BENCH_MICRO_ARGS=--profile=quick: ~2
# min, one round, fewer operations), then the report.
bench-micro: build $(BENCH_VENV)/.installed
	$(BENCH_PTH)
	$(BENCH_VENV)/bin/python bench/micro.py $(BENCH_MICRO_ARGS) --json $(BENCH_MICRO_JSON)
	$(BENCH_VENV)/bin/python bench/report.py --readme README.md

# Render the newest results (echo and micro) into bench/results/latest.md,
# latest.png and the README's micro table; runs nothing.
bench-report: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/report.py --readme README.md

# Stress and fault scenarios (tests/stress/) at full size: fd exhaustion, peer
# resets, 10,000 connections, memory flatness, fork, fd reuse, threads, bad
# input. Each scenario runs in its own subprocess with a hard timeout, on
# fastloop and on the stdlib loop; a per-scenario summary is printed at the end.
# (`make test` runs the short versions through tests/test_stress_short.py.)
.PHONY: stress
stress: build
	FASTLOOP_STRESS=full $(PY) -m pytest -q -p no:cacheprovider --timeout=3600 tests/stress

# Echo and HTTP matrix alone (make bench runs it too, then bench/report.py):
# fastloop, asyncio, uvloop, rloop and a C epoll server, pinned to CPUs 0/1,
# driven by the C load generator in bench/loadgen.c (built into build/bench/).
# BENCH_ECHO_ARGS passes options through, e.g. BENCH_ECHO_ARGS=--quick (a
# ~1.5 min smoke run) or BENCH_ECHO_ARGS="--modes http --connections 100";
# `.venv-bench/bin/python bench/echo.py --plan [options]` shows the rows and
# the estimated time without running anything.
BENCH_ECHO_ARGS ?=
.PHONY: bench-echo
bench-echo: build $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -c "import site, sys; open(site.getsitepackages()[0] + '/fastloop-dev.pth', 'w').write(sys.argv[1] + '\n')" "$(CURDIR)"
	$(BENCH_VENV)/bin/python bench/echo.py $(BENCH_ECHO_ARGS)
	$(BENCH_VENV)/bin/python bench/report.py

# Sanitizer run (tools/asan.sh): the extensions built with FASTLOOP_DEBUG=1 and
# -fsanitize=address,undefined into build/asan/src (the in-place build here is
# left alone), in their own venv, then the test suite run against them with the
# ASan/UBSan runtimes preloaded; any sanitizer report fails the run.
# ASAN_PYTEST_ARGS passes options to pytest, e.g. ASAN_PYTEST_ARGS="-x -k tcp".
ASAN_VENV ?= .venv-asan
.PHONY: asan
asan:
	ASAN_VENV=$(ASAN_VENV) PYTHON=$(PYTHON) tools/asan.sh

# Other projects' own test suites (aiohttp, anyio, httpx, tornado, uvicorn,
# pinned in compat/run.py), each from its release sdist in its own venv under
# build/compat/, run on the stdlib loop and with fastloop in force; writes
# docs/compatibility.md. Opt-in, not part of `make test` (~20 min; the first
# run also downloads and installs). COMPAT_PROJECTS picks a subset, e.g.
# make compat COMPAT_PROJECTS=anyio,tornado (the others' last results are kept).
COMPAT_PROJECTS ?= aiohttp,anyio,httpx,tornado,uvicorn
.PHONY: compat
compat: build
	$(PY) compat/run.py --python $(PYTHON) --projects $(COMPAT_PROJECTS)

# Long differential chaos profile on TCP transports (fastloop vs the stdlib):
# FASTLOOP_CHAOS_EXAMPLES examples, 100000 unless given (make test runs 25).
.PHONY: chaos
chaos: build
	$(PY) tests/stress/transport_chaos_profile.py $(if $(FASTLOOP_CHAOS_EXAMPLES),--examples $(FASTLOOP_CHAOS_EXAMPLES))
