#!/usr/bin/env bash
# Which supported Pythons (3.10-3.15) this machine can run, and running a
# command on one of them. Used by `make conformance`, `make test-3.X` and
# `make asan-3.X`.
#
#   tools/pythons.sh list          one line per supported version:
#                                    "VERSION host PATH"   a pyenv (or PATH) interpreter
#                                    "VERSION sid python3.X" Debian unstable's, in the chroot
#                                    "VERSION skip REASON"  not on this machine
#   tools/pythons.sh run VER CMD…  runs CMD with $PYTHON set to that interpreter and
#                                  $VENV to .venv-VER: directly for a host Python,
#                                  inside the chroot for a sid one (the repository is
#                                  bind-mounted there at the same path)
#
# 3.14 and 3.15 come from the chroot that ../shared/tools/sid-python.sh builds
# (`sid-python.sh setup`, once per machine); SID_PYTHON overrides its path.
# PYTHONS limits the versions considered (default: "3.10 3.11 3.12 3.13 3.14 3.15").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHONS=${PYTHONS:-3.10 3.11 3.12 3.13 3.14 3.15}
SID_PYTHON=${SID_PYTHON:-$ROOT/../shared/tools/sid-python.sh}

sid_versions() {  # the versions the chroot holds, e.g. "3.14.10 3.15.2"
    [ -f "$SID_PYTHON" ] || return 0
    bash "$SID_PYTHON" versions 2>/dev/null | awk '$1 == "Python" {print $2}' || true
}

where() {  # VERSION -> "host PATH" | "sid python3.X" | "skip REASON"
    local v=$1 prefix
    if command -v pyenv >/dev/null && prefix=$(pyenv prefix "$v" 2>/dev/null) \
            && [ -x "$prefix/bin/python" ]; then
        echo "host $prefix/bin/python"; return
    fi
    if command -v "python$v" >/dev/null; then
        echo "host $(command -v "python$v")"; return
    fi
    if sid_versions | grep -q "^$v\."; then
        echo "sid python$v"; return
    fi
    if [ -e "$SID_PYTHON" ]; then
        echo "skip neither pyenv nor PATH has python$v, and the chroot of $SID_PYTHON does not (run its 'setup')"
    else
        echo "skip neither pyenv nor PATH has python$v (no $SID_PYTHON for a chroot either)"
    fi
}

case ${1:-} in
    list)
        for v in $PYTHONS; do echo "$v $(where "$v")"; done ;;
    run)
        [ $# -ge 3 ] || { echo "usage: $0 run VERSION CMD..." >&2; exit 2; }
        v=$2; shift 2
        read -r how what <<<"$(where "$v")"
        case $how in
            host) cd "$ROOT" && exec env PYTHON="$what" VENV=".venv-$v" "$@" ;;
            sid)  cd "$ROOT" && exec bash "$SID_PYTHON" run env PYTHON="$what" VENV=".venv-$v" "$@" ;;
            *)    echo "python$v: $what" >&2; exit 3 ;;
        esac ;;
    *)
        echo "usage: $0 list | run VERSION CMD..." >&2; exit 2 ;;
esac
