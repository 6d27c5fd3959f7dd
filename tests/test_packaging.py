"""Packaging checks: cibuildwheel's build matrix, the sdist's contents, the
single-sourced version. Fast (a few seconds) and runnable in the dev .venv."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = ["cp310", "cp311", "cp312", "cp313", "cp314", "cp315"]

EXPECTED = {
    "linux": {
        f"{py}-{libc}_{arch}"
        for py in PYTHONS
        for libc in ("manylinux", "musllinux")
        for arch in ("x86_64", "aarch64")
    },
    "macos": {f"{py}-macosx_{arch}" for py in PYTHONS for arch in ("x86_64", "arm64")},
}
needs_cibuildwheel = pytest.mark.skipif(
    importlib.util.find_spec("cibuildwheel") is None,
    reason="cibuildwheel is not installed (pip install -r requirements-dev.txt)",
)

needs_source_tree = pytest.mark.skipif(
    not (ROOT / "pyproject.toml").is_file() or not (ROOT / "setup.py").is_file(),
    reason="needs the project's source tree (tests run from a copy next to an installed wheel)",
)


def _version_py():
    text = (ROOT / "fastloop" / "_version.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"$', text, re.M).group(1)


def _build_identifiers(platform, tmp_path, **cibw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    env.update(cibw)
    out = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers",
         "--platform", platform, "--output-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@needs_source_tree
@needs_cibuildwheel
@pytest.mark.parametrize("platform", sorted(EXPECTED))
def test_cibuildwheel_build_identifiers(platform, tmp_path):
    identifiers = _build_identifiers(platform, tmp_path)
    assert len(identifiers) == len(set(identifiers))
    assert set(identifiers) == EXPECTED[platform]


@needs_source_tree
@needs_cibuildwheel
def test_cibuildwheel_skips_free_threaded_builds(tmp_path):
    # cibuildwheel builds cp314t/cp315t by default once the build selector
    # reaches them; the skip in pyproject.toml is what keeps them out (no
    # free-threaded support yet: docs/design.md, "Free-threaded CPython").
    identifiers = _build_identifiers("linux", tmp_path, CIBW_BUILD="cp31*",
                                     CIBW_ARCHS="x86_64")
    assert "cp314-manylinux_x86_64" in identifiers
    assert [i for i in identifiers if i.startswith("cp31") and i[5] == "t"] == []
    without_skip = _build_identifiers("linux", tmp_path, CIBW_BUILD="cp31*",
                                      CIBW_ARCHS="x86_64", CIBW_SKIP="*-musllinux_*")
    assert "cp314t-manylinux_x86_64" in without_skip


# setup.py cythonizes every module when it is imported, and a fresh copy
# has no generated C: a minute alone, several under a parallel load on a
# 2-core box (it hit the suite's 120 s there). A hang guard, not a timing.
SDIST_TIMEOUT = 900


@needs_source_tree
@pytest.mark.timeout(SDIST_TIMEOUT + 60)
def test_sdist_ships_sources_not_generated_c(tmp_path):
    # Build from a copy holding only what a fresh clone has, so neither the
    # checkout's in-place build products nor its egg-info are involved.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns(
        "*.c", "*.so", "*.html", "__pycache__", "*.egg-info", ".hypothesis")
    shutil.copytree(ROOT / "fastloop", src / "fastloop", ignore=ignore)
    shutil.copytree(ROOT / "tests", src / "tests", ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    out = subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path / "dist")],
        cwd=src, capture_output=True, text=True, timeout=SDIST_TIMEOUT,
    )
    assert out.returncode == 0, out.stderr
    (sdist,) = (tmp_path / "dist").glob("fastloop-*.tar.gz")
    assert sdist.name == f"fastloop-{_version_py()}.tar.gz"
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}

    sources = [p.name for p in (ROOT / "fastloop").iterdir() if p.suffix in (".pyx", ".pxd", ".h")]
    assert any(s.endswith(".pyx") for s in sources)
    for name in sources:
        assert f"fastloop/{name}" in names
    assert "fastloop/_sys.h" in names
    assert {"setup.py", "pyproject.toml", "fastloop/_version.py"} <= names
    assert "tests/conftest.py" in names
    generated = sorted(n for n in names if n.endswith((".c", ".so", ".pyc", ".html")))
    assert generated == []


@needs_source_tree
def test_version_single_sourced():
    import fastloop

    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text
    assert 'version = { attr = "fastloop._version.__version__" }' in text
    assert fastloop.__version__ == _version_py()


# tools/wheels.sh (make wheels / make test-wheels / make wheels-plan): how each
# Python of WHEEL_PYTHONS is found, and that one found nowhere is skipped with
# a line saying why. "3.98" exists nowhere; the chroot tool is faked.
WHEELS_SH = ROOT / "tools" / "wheels.sh"
needs_wheels_sh = pytest.mark.skipif(
    not WHEELS_SH.is_file() or shutil.which("bash") is None,
    reason="needs the source tree's tools/wheels.sh and bash",
)


def _wheels_sh(*args, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("WHEEL_PYTHONS", "SID_PYTHON")}
    full.update(env)
    return subprocess.run(["bash", str(WHEELS_SH), *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=60)


def _fake_sid(path, body):
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


@needs_wheels_sh
def test_wheels_plan_routes(tmp_path):
    absent = str(tmp_path / "no-such-sid-python.sh")
    out = _wheels_sh("plan", WHEEL_PYTHONS=f"3.98 {sys.executable}", SID_PYTHON=absent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"SKIP Python 3.98: neither pyenv nor PATH has python3.98 (no {absent} for a"
        " chroot either)",
        f"Python {sys.executable}: {sys.executable}",
    ]

    # The tool is there but its chroot is not set up (as in CI).
    unset = _fake_sid(tmp_path / "sid-unset.sh", "echo 'chroot: no such root' >&2; exit 1")
    out = _wheels_sh("plan", WHEEL_PYTHONS="3.98", SID_PYTHON=unset)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"SKIP Python 3.98: neither pyenv nor PATH has python3.98, and the chroot of {unset}"
        " does not (run its 'setup')",
    ]

    # A chroot that has the interpreter: the wheel is built and tested there.
    ready = _fake_sid(tmp_path / "sid-ready.sh",
                      '[ "$1" = versions ] && echo "Python 3.98.1 (main) [GCC 16]"')
    out = _wheels_sh("plan", WHEEL_PYTHONS="3.98", SID_PYTHON=ready)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"Python 3.98: python3.98 in the chroot ({ready})"]


@needs_wheels_sh
def test_wheels_build_and_test_with_no_interpreter_fail_clearly(tmp_path):
    absent = str(tmp_path / "no-such-sid-python.sh")
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    kept = wheelhouse / "fastloop-0.1.0-cp398-cp398-manylinux_2_17_x86_64.whl"
    kept.write_bytes(b"not really a wheel")

    out = _wheels_sh("build", WHEEL_PYTHONS="3.98", SID_PYTHON=absent,
                     WHEELHOUSE=str(wheelhouse))
    assert out.returncode == 1
    assert out.stdout.startswith("SKIP Python 3.98: ")
    assert 'no interpreter of WHEEL_PYTHONS="3.98" is present' in out.stderr
    assert kept.exists()        # failed before touching the wheelhouse

    out = _wheels_sh("test", WHEEL_PYTHONS="3.98", SID_PYTHON=absent,
                     WHEELHOUSE=str(wheelhouse))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith("SKIP Python 3.98: ")
    assert lines[0].endswith(f"({kept.name} not tested)")
    assert "test-wheels: 0 passed, 0 failed, 1 skipped" in lines
    assert "no wheel in" in out.stderr
