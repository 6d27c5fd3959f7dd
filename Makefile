# fastloop developer entry points. Everything runs in .venv, created here with
# the machine's python3 (override: make PYTHON=python3.12 VENV=.venv312 test).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCES := $(wildcard fastloop/*.pyx fastloop/*.pxd fastloop/*.h) setup.py

.PHONY: all build demo test lint pytest clean

all: build

$(VENV)/.installed: requirements-dev.txt
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
