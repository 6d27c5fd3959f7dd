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
PYTHONS = ["cp310", "cp311", "cp312", "cp313", "cp314"]  # cp314t: not yet

EXPECTED = {
    "linux": {
        f"{py}-{libc}_{arch}"
        for py in PYTHONS
        for libc in ("manylinux", "musllinux")
        for arch in ("x86_64", "aarch64")
    },
    "macos": {f"{py}-macosx_{arch}" for py in PYTHONS for arch in ("x86_64", "arm64")},
}

needs_source_tree = pytest.mark.skipif(
    not (ROOT / "pyproject.toml").is_file() or not (ROOT / "setup.py").is_file(),
    reason="needs the project's source tree (tests run from a copy next to an installed wheel)",
)


def _version_py():
    text = (ROOT / "fastloop" / "_version.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"$', text, re.M).group(1)


@needs_source_tree
@pytest.mark.skipif(
    importlib.util.find_spec("cibuildwheel") is None,
    reason="cibuildwheel is not installed (pip install -r requirements-dev.txt)",
)
@pytest.mark.parametrize("platform", sorted(EXPECTED))
def test_cibuildwheel_build_identifiers(platform, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    out = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers",
         "--platform", platform, "--output-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    identifiers = out.stdout.split()
    assert len(identifiers) == len(set(identifiers))
    assert set(identifiers) == EXPECTED[platform]


@needs_source_tree
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
        cwd=src, capture_output=True, text=True, timeout=120,
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
