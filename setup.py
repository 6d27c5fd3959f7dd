"""Build the Cython core.

`FASTLOOP_DEBUG=1` builds a development variant: C asserts on, Cython bounds and
wraparound checks on, no optimisation. Release builds (the default, and wheels)
are -O2 without asserts, and carry no debug info (-g0; stripped on Linux) to
keep the wheels small. `FASTLOOP_SYMBOLS=1` keeps a release build's symbols and
debug info (-O2 -g, not stripped), so callgrind and perf name its functions.
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTLOOP_DEBUG", "") not in ("", "0")
SYMBOLS = os.environ.get("FASTLOOP_SYMBOLS", "") not in ("", "0")

MODULES = [
    "_handles", "_queue", "_timers", "_poller", "_fdtable", "_loop", "_transport", "_sockops",
    "_accept", "_sockaddr", "_corebase", "_datagram", "_pipes", "_watchstate", "_threadsafe",
]

if DEBUG:
    cflags = ["-O0", "-g", "-UNDEBUG"]
    macros = [("FASTLOOP_DEBUG", "1")]
    ldflags = []
else:
    # Python's own CFLAGS carry -g; -g0 after them drops the debug info.
    cflags = ["-O2", "-DNDEBUG", "-g0"]
    macros = []
    ldflags = ["-Wl,--strip-all"] if sys.platform.startswith("linux") else []
    if SYMBOLS:
        cflags, ldflags = ["-O2", "-DNDEBUG", "-g"], []

if os.environ.get("FASTLOOP_NO_METRICS", "") not in ("", "0"):
    # Only for bench/metrics_overhead.py, which measures what the metrics cost.
    macros = [*macros, ("FL_METRICS", "0")]

extensions = [
    Extension(
        f"fastloop.{name}",
        [f"fastloop/{name}.pyx"],
        include_dirs=["fastloop"],
        extra_compile_args=cflags,
        define_macros=macros,
        extra_link_args=ldflags,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        # Generated C per variant: cythonize only regenerates a .c older than
        # its .pyx, so a shared location would let a debug build silently
        # reuse release C (no bounds checks), or the other way round.
        build_dir=os.path.join("build", "cython", "debug" if DEBUG else "release"),
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "initializedcheck": DEBUG,
            "cdivision": True,
            "embedsignature": True,
        },
        compile_time_env={"FASTLOOP_DEBUG": DEBUG},
    ),
)
