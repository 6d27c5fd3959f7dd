"""compat/run.py's own logic: a partial (--subset) run is named in the table,
and a recheck of single tests does not drag the subset's files back in."""

import importlib.util
import os
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "compat" / "run.py"
pytestmark = pytest.mark.skipif(not RUN.exists(), reason="compat/ is not next to tests/")


def load_run():
    spec = importlib.util.spec_from_file_location("compat_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def project(name, **extra):
    run = {"timed_out": False, "junit_found": True, "seconds": 1.0, "fastloop_loops": 0}
    return {
        "name": name, "version": "1.0", "tests": 3, "run": 3, "passed_asyncio": 3,
        "passed_fastloop": 3, "fastloop_only_failures": [], "asyncio_only_failures": [],
        "failed_both": [], "deselected": 0,
        "runs": {"asyncio": {**run, "mode": "asyncio"},
                 "fastloop": {**run, "mode": "fastloop", "fastloop_loops": 5}},
        **extra,
    }


def test_subset_run_is_named_in_the_table():
    run = load_run()
    report = {"python": "3.x", "platform": "Linux", "fastloop_version": "0", "date": "d",
              "projects": [project("aiohttp", subset=["tests/a.py", "tests/b.py"]),
                           project("anyio")]}
    rows = {line.split("|")[1].strip(): line for line in run.render_markdown(report).splitlines()
            if line.startswith("| a")}
    assert "only `tests/a.py`, `tests/b.py`" in rows["aiohttp"]
    assert "only" not in rows["anyio"]


def test_recheck_leaves_the_subset_paths_out(tmp_path):
    run = load_run()
    spec = {**run.PROJECTS["aiohttp"], "subset": ["tests/a.py"]}
    spec["pytest_args"] = [a for a in spec["pytest_args"] if a != "tests"] + ["tests/a.py"]
    full, _ = run.suite_command("aiohttp", spec, tmp_path, tmp_path)
    assert full[-1] == "tests/a.py"
    one = "tests/b.py::test_x[pyloop]"
    recheck, _ = run.suite_command("aiohttp", spec, tmp_path, tmp_path, tests=[one])
    assert "tests/a.py" not in recheck and "-n" not in recheck
    assert recheck[-1] == one


def test_build_folder_follows_the_environment(monkeypatch):
    monkeypatch.setenv("FASTLOOP_COMPAT_BUILD", os.path.join("build", "compat-9.9"))
    assert load_run().BUILD == RUN.parent.parent / "build" / "compat-9.9"
    monkeypatch.delenv("FASTLOOP_COMPAT_BUILD")
    assert load_run().BUILD == RUN.parent.parent / "build" / "compat"
