"""CPython's own test.test_asyncio, run against fastloop (tests/conformance/run.py).

Runs every module of the running interpreter's test.test_asyncio with fastloop
in force, two modules at a time, and fails listing each unexpected failure,
error or hang. Skipped when the interpreter has no ``test`` package.
Set FASTLOOP_CONFORMANCE=0 to skip it, or FASTLOOP_CONFORMANCE_MODULES to a
comma-separated list of modules to run only those.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "conformance", "run.py")

pytestmark = pytest.mark.skipif(os.environ.get("FASTLOOP_CONFORMANCE") == "0",
                                reason="FASTLOOP_CONFORMANCE=0")


@pytest.mark.timeout(900)
def test_cpython_asyncio_suite_on_fastloop(tmp_path):
    try:
        import test.test_asyncio  # noqa: F401
    except ImportError:
        pytest.skip(f"{sys.executable} has no test.test_asyncio package (no 'test' package)")
    out = tmp_path / "conformance.json"
    cmd = [sys.executable, RUNNER, "--loop", "fastloop", "--jobs", "2", "--quiet",
           "--json", str(out)]
    modules = os.environ.get("FASTLOOP_CONFORMANCE_MODULES")
    if modules:
        cmd += ["--modules", modules]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=880)
    assert out.exists(), proc.stderr[-4000:]
    report = json.loads(out.read_text())
    problems = []
    for module, rep in sorted(report["loops"]["fastloop"].items()):
        for u in rep["unexpected"]:
            last = u["detail"].strip().splitlines()[-1:] or [""]
            problems.append(f"{u['outcome']}: {u['id']}  [{module}] {last[0][:200]}")
    assert not problems, (
        f"{len(problems)} unexpected result(s) of test.test_asyncio on fastloop "
        f"(Python {report['version']}):\n" + "\n".join(problems))
    assert proc.returncode == 0, proc.stderr[-4000:]
