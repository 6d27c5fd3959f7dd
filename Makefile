# fastloop developer entry points. Everything runs in .venv, created here with
# the machine's python3 (override: make PYTHON=python3.12 VENV=.venv312 test).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCES := $(wildcard fastloop/*.pyx fastloop/*.pxd fastloop/*.h) setup.py

.PHONY: all build demo test lint typecheck pytest clean

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
	$(PY) tools/dev_pth.py "$(CURDIR)"
	touch $@

build: $(VENV)/.built

demo: build
	$(PY) examples/demo.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cython-lint fastloop

# The public API's stub (fastloop/__init__.pyi) against the runtime, then
# tests/typing/ type-checked against the stub (settings: pyproject.toml).
typecheck: build
	$(PY) -m mypy.stubtest --mypy-config-file pyproject.toml \
		--allowlist tools/stubtest-allowlist.txt fastloop
	$(PY) -m mypy

# The fd, sock_*, transport and accept tests once more on the selectors-based
# poller (the default off Linux); the rest of the suite is poller-agnostic.
SELECTORS_TESTS := tests/test_fds.py tests/test_sockops.py tests/test_sock_oneshot.py \
	tests/test_transport.py tests/test_accept.py tests/test_busy_poll.py
pytest: build
	$(PY) -m pytest -q
	$(PY) -m pytest -q --poller selectors $(SELECTORS_TESTS)

test: build lint typecheck pytest

# Generated C lives in build/cython/ (setup.py), so removing build/ covers it.
clean:
	rm -rf build $(VENV) fastloop/*.so

# Release wheels (tools/wheels.sh): `make wheels` builds the sdist and one
# Linux wheel per Python of WHEEL_PYTHONS that the machine has into
# wheelhouse/, repaired by auditwheel to manylinux_*; `make test-wheels`
# installs each into a fresh venv with no compiler reachable and runs tests/
# against site-packages. A version is found as tools/pythons.sh finds it:
# pyenv, else PATH, else (3.14, 3.15 on these Debian 12 machines) the
# Debian-unstable chroot of SID_PYTHON, where the wheel is then built, repaired
# and tested; a version found nowhere is skipped with a line saying so (`make
# wheels-plan` shows which route each takes). `make wheels WHEEL_PYTHONS=3.15`
# rebuilds one wheel and keeps the others. The host tooling lives in
# WHEELS_VENV, the chroot's in WHEELS_SID_VENV (a venv made there only runs
# there). wheelhouse/README.md says what the manylinux tags mean.
WHEELS_VENV ?= .venv-wheels
WHEELS_SID_VENV ?= .venv-wheels-sid
WHEEL_PYTHONS ?= 3.10 3.11 3.12 3.13 3.14 3.15
WHEEL_PYTEST_ARGS ?= tests
SID_PYTHON ?= $(abspath $(CURDIR)/../shared/tools/sid-python.sh)
WHEELS_ENV = WHEELS_VENV=$(WHEELS_VENV) WHEELS_SID_VENV=$(WHEELS_SID_VENV) \
	WHEEL_PYTHONS="$(WHEEL_PYTHONS)" SID_PYTHON=$(SID_PYTHON)

$(WHEELS_VENV)/.installed: requirements-wheels.txt
	$(PYTHON) -m venv $(WHEELS_VENV)
	$(WHEELS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(WHEELS_VENV)/bin/python -m pip install --quiet -r requirements-wheels.txt
	touch $@

.PHONY: wheels test-wheels wheels-plan
wheels: $(WHEELS_VENV)/.installed
	$(WHEELS_ENV) tools/wheels.sh build

test-wheels: $(WHEELS_VENV)/.installed
	$(WHEELS_ENV) WHEEL_PYTEST_ARGS="$(WHEEL_PYTEST_ARGS)" tools/wheels.sh test

wheels-plan:
	@$(WHEELS_ENV) tools/wheels.sh plan

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
# make bench (~28 min, `make bench-plan` prints the estimate) runs on Python
# BENCH_PYTHON (3.15: every published measurement is made there), found the
# way tools/pythons.sh finds it; on these Debian 12 machines that is inside
# the chroot of SID_PYTHON, with its own venvs (.venv-3.15 for the build,
# .venv-bench-3.15 for the loops) and its own C load generators
# (build/bench/<os>/: bench/cbuild.py). wrk and OpenSSL's headers (loadgen
# --tls) come from the chroot's apt (bench-sid-tools, once; nothing else is
# installed there). Inside it, `make bench-here` is the run itself: the micro
# benchmarks, the echo/HTTP/UDP matrix (bench/echo.py), the pipe row
# (bench/pipe.py), the TLS echo and framework HTTP rows (bench/frameworks.py),
# then bench/report.py: bench/results/<date>-py<ver>.md and the README's table.
# The micro benchmarks run every scale on the quick profile, 3 rounds;
# BENCH_MICRO_ARGS="--profile full" runs the full one (5 rounds, +~10 min).
# `make bench-here` on the host runs it on the host's python3 instead.
# Timings and options: bench/README.md.
BENCH_PYTHON ?= 3.15
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed: requirements-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements-bench.txt
	$(BENCH_VENV)/bin/python tools/dev_pth.py "$(CURDIR)"
	@# aiofastnet (TLS rows of bench/frameworks.py) only where its wheel installs.
	$(BENCH_VENV)/bin/python -m pip install --quiet --only-binary :all: "aiofastnet>=1.2" \
		|| echo "aiofastnet not installed: bench/frameworks.py runs without it"
	touch $@

# One version's run: make bench-3.15 (= make bench), bench-3.12, ...
.PHONY: bench bench-here bench-plan bench-sid-tools
bench: bench-$(BENCH_PYTHON)

bench-3.%:
	@set -- $$(PYTHONS=3.$* tools/pythons.sh list); \
	if [ "$$2" = sid ]; then $(MAKE) --no-print-directory bench-sid-tools; fi
	tools/pythons.sh run 3.$* sh -c '$(MAKE) --no-print-directory PYTHON=$$PYTHON VENV=$$VENV \
		BENCH_VENV=.venv-bench-3.$* $(if $(BENCH_QUICK),BENCH_QUICK=1) bench-here'

# wrk and libssl-dev in the chroot (its own apt, as root like every `run`);
# a no-op once they are there.
bench-sid-tools:
	bash $(SID_PYTHON) run sh -c 'command -v wrk >/dev/null && [ -f /usr/include/openssl/ssl.h ] \
		|| apt-get install -y -q --no-install-recommends wrk libssl-dev'

# BENCH_QUICK=1: a smoke run of every part (~4 min on an idle machine): each
# part's quickest profile, result files named -quick, which the report shows
# but never puts in the README.
ifdef BENCH_QUICK
BENCH_MICRO_ARGS ?= --profile quick --rounds 1
BENCH_ECHO_ARGS ?= --quick
BENCH_PIPE_ARGS ?= --quick
BENCH_FRAMEWORK_ARGS ?= --quick
BENCH_REPORT_ARGS ?= --include-quick
BENCH_MICRO_SUFFIX := -quick
endif
BENCH_MICRO_ARGS ?= --profile quick --rounds 3
bench-here: build $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/micro.py $(BENCH_MICRO_ARGS) --json bench/results/micro-$$(date +%Y%m%d)-py$$($(BENCH_VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')$(BENCH_MICRO_SUFFIX).json
	$(BENCH_VENV)/bin/python bench/echo.py $(BENCH_ECHO_ARGS)
	$(BENCH_VENV)/bin/python bench/pipe.py $(BENCH_PIPE_ARGS)
	$(BENCH_VENV)/bin/python bench/frameworks.py $(BENCH_FRAMEWORK_ARGS)
	$(BENCH_VENV)/bin/python bench/report.py $(BENCH_REPORT_ARGS)

# The rows and estimated time of each part of `make bench` (runs nothing but
# the venv set-up); the same options as make bench.
bench-plan:
	@tools/pythons.sh run $(BENCH_PYTHON) sh -c '$(MAKE) --no-print-directory PYTHON=$$PYTHON \
		VENV=$$VENV BENCH_VENV=.venv-bench-$(BENCH_PYTHON) $(if $(BENCH_QUICK),BENCH_QUICK=1) \
		bench-plan-here'

.PHONY: bench-plan-here
bench-plan-here: $(BENCH_VENV)/.installed
	@$(BENCH_VENV)/bin/python bench/plan.py --micro="$(BENCH_MICRO_ARGS)" \
		--echo="$(BENCH_ECHO_ARGS)" --pipe="$(BENCH_PIPE_ARGS)" \
		--frameworks="$(BENCH_FRAMEWORK_ARGS)"

# Pipe throughput alone (make bench runs it too): a stream through a `cat`
# subprocess on each loop (bench/pipe.py); BENCH_PIPE_ARGS=--quick is a smoke run.
BENCH_PIPE_ARGS ?=
.PHONY: bench-pipe
bench-pipe: build $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -c "import site, sys; open(site.getsitepackages()[0] + '/fastloop-dev.pth', 'w').write(sys.argv[1] + '\n')" "$(CURDIR)"
	$(BENCH_VENV)/bin/python bench/pipe.py $(BENCH_PIPE_ARGS)

# TLS echo (1 and 64 KiB, loadgen --tls) and real-framework HTTP (uvicorn +
# httptools over HTTP and HTTPS, aiohttp; wrk) on every loop, plus aiofastnet
# on the TLS rows (bench/frameworks.py; make bench runs it too). Needs wrk
# (apt-get install wrk) for the HTTP rows. BENCH_FRAMEWORK_ARGS=--quick is a
# smoke run; `.venv-bench/bin/python bench/frameworks.py --plan` the estimate.
BENCH_FRAMEWORK_ARGS ?=
.PHONY: bench-frameworks
bench-frameworks: build $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -c "import site, sys; open(site.getsitepackages()[0] + '/fastloop-dev.pth', 'w').write(sys.argv[1] + '\n')" "$(CURDIR)"
	$(BENCH_VENV)/bin/python bench/frameworks.py $(BENCH_FRAMEWORK_ARGS)

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
# driven by the C load generator in bench/loadgen.c (built into build/bench/<os>/).
# BENCH_ECHO_ARGS passes options through, e.g. BENCH_ECHO_ARGS=--quick (a
# ~1.5 min smoke run) or BENCH_ECHO_ARGS="--modes http --connections 100";
# `.venv-bench/bin/python bench/echo.py --plan [options]` shows the rows and
# the estimated time without running anything.
BENCH_ECHO_ARGS ?=
.PHONY: bench-echo
bench-echo: build $(BENCH_VENV)/.installed
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

# The same on another supported Python (tools/pythons.sh; 3.14/3.15 inside the
# chroot, which has gcc's sanitizer runtimes), in .venv-asan-3.X and build/asan-3.X.
.PHONY: asan-3.%
asan-3.%:
	tools/pythons.sh run 3.$* env ASAN_VENV=.venv-asan-3.$* ASAN_DIR=build/asan-3.$* \
	  ASAN_PYTEST_ARGS="$(ASAN_PYTEST_ARGS)" sh -c 'tools/asan.sh'

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

# The same on another supported Python (tools/pythons.sh; 3.14/3.15 inside the
# chroot), with its own venvs and results in build/compat-3.X and its table in
# docs/compatibility-3.X.md: make compat-3.15 COMPAT_PROJECTS=anyio,tornado.
.PHONY: compat-3.%
compat-3.%:
	tools/pythons.sh run 3.$* sh -c '$(MAKE) --no-print-directory PYTHON=$$PYTHON VENV=$$VENV build \
	  && FASTLOOP_COMPAT_BUILD=build/compat-3.$* $$VENV/bin/python compat/run.py --python $$PYTHON \
	     --projects $(COMPAT_PROJECTS) --markdown docs/compatibility-3.$*.md'

# Long differential chaos profile on TCP transports (fastloop vs the stdlib):
# FASTLOOP_CHAOS_EXAMPLES examples, 100000 unless given (make test runs 25).
.PHONY: chaos
chaos: build
	$(PY) tests/stress/transport_chaos_profile.py $(if $(FASTLOOP_CHAOS_EXAMPLES),--examples $(FASTLOOP_CHAOS_EXAMPLES))
