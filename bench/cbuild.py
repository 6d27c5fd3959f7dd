"""Compile the benchmark's C programs (bench/loadgen.c, bench/echo_server.c, bench/udpgen.c).

    python bench/cbuild.py            # builds them into build/bench/<os>/, prints their paths

Each binary is rebuilt only when its source is newer, with `gcc -O2`, into a
temporary name that is then renamed into place, so concurrent builds (make
bench and make test at once) never see a half-written executable.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def _system_tag() -> str:
    """The OS the binaries are built for, e.g. debian-12 or debian-forky: the
    host and the Debian-unstable chroot of make bench-3.15 share the checkout
    but not their C libraries (loadgen links the system's OpenSSL), so each
    builds its own."""
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return platform.system().lower() or "unknown"
    version = release.get("VERSION_ID") or release.get("VERSION_CODENAME") or "unknown"
    return f"{release.get('ID', 'linux')}-{version}"


OUT = ROOT / "build" / "bench" / _system_tag()
PROGRAMS = ("loadgen", "echo_server", "udpgen")
# Libraries a program links, and the flags that build it without them when
# they are missing (loadgen's --tls needs OpenSSL; the rest of it does not).
LIBS = {"loadgen": (["-lssl", "-lcrypto"], ["-DNO_TLS"])}


class BuildError(RuntimeError):
    pass


def compiler() -> str | None:
    """The C compiler to use ($CC, else gcc, else cc), or None."""
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return name
    return None


def build(name: str, out_dir: Path = OUT) -> Path:
    """Path to the up-to-date binary of bench/<name>.c, compiling it if needed."""
    source = BENCH / f"{name}.c"
    binary = out_dir / name
    # The sources it depends on: its .c and the shared header it includes.
    newest = max(p.stat().st_mtime for p in (source, BENCH / "loadgen_common.h"))
    if binary.exists() and binary.stat().st_mtime >= newest:
        return binary
    cc = compiler()
    if cc is None:
        raise BuildError("no C compiler found (tried $CC, gcc, cc)")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.{os.getpid()}.tmp"
    libs, without = LIBS.get(name, ([], []))
    result = subprocess.run(
        [cc, "-O2", "-Wall", "-o", str(tmp), str(source), *libs], capture_output=True, text=True
    )
    if result.returncode != 0 and libs:
        result = subprocess.run(
            [cc, "-O2", "-Wall", *without, "-o", str(tmp), str(source)],
            capture_output=True, text=True,
        )
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"{cc} failed on {source.name}:\n{result.stderr}")
    os.replace(tmp, binary)
    return binary


def main() -> int:
    try:
        for name in PROGRAMS:
            print(build(name))
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
