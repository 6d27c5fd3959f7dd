"""``python -m fastloop``: version, build info, or run a program on fastloop.

    python -m fastloop --version
    python -m fastloop info
    python -m fastloop script.py [args...]
    python -m fastloop -m package.module [args...]

Running a program calls ``fastloop.install()`` first (the policy on 3.10-3.13,
the loop-factory route where policies are deprecated), so an unmodified
asyncio program (``asyncio.run``, ``asyncio.Runner``, ``asyncio.new_event_loop``)
runs on fastloop.
"""

import os
import platform
import runpy
import sys

import fastloop

USAGE = "usage: python -m fastloop [--version | info | SCRIPT [ARGS...] | -m MODULE [ARGS...]]"


def info():
    loop = fastloop.new_event_loop()
    try:
        poller = loop._poller_name()
    finally:
        loop.close()
    lines = {
        "fastloop": fastloop.__version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "poller": poller,
        "build": "debug" if _debug_build() else "release",
    }
    try:
        import Cython

        lines["cython (installed)"] = Cython.__version__
    except ImportError:
        pass
    for key, value in lines.items():
        print(f"{key}: {value}")


def _debug_build():
    from fastloop import _loop

    return bool(getattr(_loop, "DEBUG_BUILD", False))


def _run_program(argv):
    fastloop.install()
    if argv[0] == "-m":
        if len(argv) < 2:
            sys.exit(USAGE)
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        runpy.run_path(argv[0], run_name="__main__")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"fastloop {fastloop.__version__}")
        return 0
    if argv[0] == "info":
        info()
        return 0
    _run_program(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
