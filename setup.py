"""Build the Cython core.

`FASTLOOP_DEBUG=1` builds a development variant: C asserts on, Cython bounds and
wraparound checks on, no optimisation. Release builds (the default, and wheels)
are -O2 without asserts.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTLOOP_DEBUG", "") not in ("", "0")

MODULES = ["_handles", "_queue", "_timers", "_poller", "_loop"]

if DEBUG:
    cflags = ["-O0", "-g", "-UNDEBUG"]
    macros = [("FASTLOOP_DEBUG", "1")]
else:
    cflags = ["-O2", "-DNDEBUG"]
    macros = []

extensions = [
    Extension(
        f"fastloop.{name}",
        [f"fastloop/{name}.pyx"],
        include_dirs=["fastloop"],
        extra_compile_args=cflags,
        define_macros=macros,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
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
