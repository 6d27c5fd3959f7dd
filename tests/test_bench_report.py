"""bench/report.py's whole-run report: every row of make bench's result files
in <date>-py<ver>.md and the README's generated block (synthetic results; no
benchmark runs)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
if not (BENCH / "report.py").exists():
    pytest.skip("bench/ is not next to tests/", allow_module_level=True)

LOOPS = ("asyncio", "fastloop", "uvloop", "rloop")


@pytest.fixture()
def report(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))   # report imports pipe (for its table)
    spec = importlib.util.spec_from_file_location("_bench_report", BENCH / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


# Rates relative to asyncio's; the C server is the physical limit, no loop.
SCALE = {"asyncio": 1.0, "fastloop": 2.0, "uvloop": 1.5, "rloop": 1.2, "C epoll server": 4.0}


def _echo(rate: float) -> dict:
    rows = []
    for i, (loop, scale) in enumerate(SCALE.items()):
        for mode, size in (("protocol", 1024), ("http", None), ("udp", 1024)):
            rows.append({"loop": loop, "mode": mode, "size": size, "connections": 10,
                         "status": "ok", "msgs_per_s": rate * scale, "cpu_us_per_msg": 5.0 + i,
                         "msgs_per_s_min": rate, "msgs_per_s_max": rate + 1})
    return {"date": "2026-11-30", "python_short": "3.15",
            "config": {"modes": ["protocol", "http", "udp"], "sizes": [1024],
                       "connections": [10], "rounds": 3, "duration": 2.5, "warmup": 0.5,
                       "server_cpu": 0, "client_cpu": 1},
            "median": rows}


def _frameworks() -> dict:
    rows = ["tls-echo-1k", "tls-echo-64k", "uvicorn", "uvicorn-tls", "aiohttp"]
    median = []
    for row in rows:
        for i, loop in enumerate(LOOPS + ("aiofastnet",)):
            if loop == "rloop" and "tls" in row:
                median.append({"row": row, "loop": loop, "status": "unsupported",
                               "error": "no TLS"})
            elif loop != "aiofastnet" or "tls" in row:
                median.append({"row": row, "loop": loop, "status": "ok",
                               "msgs_per_s": 1000.0 + i, "cpu_us_per_msg": 50.0})
    return {"date": "2026-11-30 04:30", "python_short": "3.15",
            "config": {"rows": rows, "loops": list(LOOPS) + ["aiofastnet"], "rounds": 3,
                       "duration": 2.5, "warmup": 0.5, "echo_connections": 10,
                       "wrk_connections": 50},
            "median": median}


def _pipe() -> dict:
    return {"date": "2026-11-30 04:20", "python_short": "3.15",
            "config": {"rounds": 3, "mb": 256, "chunk": 65536, "server_cpu": 0,
                       "client_cpu": 1, "pinned": True},
            "median": [{"loop": loop, "status": "ok", "mb_per_s": 900.0 + i,
                        "cpu_s_per_gib": 1.0, "mb_per_s_min": 900.0, "mb_per_s_max": 901.0}
                       for i, loop in enumerate(LOOPS)]}


def _micro() -> dict:
    return {"rounds": 5, "median": {"call_soon": {loop: 1e6 + i for i, loop in
                                                  enumerate(LOOPS)}}}


def _write(results: Path, name: str, data: dict) -> None:
    (results / name).write_text(json.dumps(data))


def test_full_report_renders_every_row_and_fills_the_readme_block(report, tmp_path):
    results = tmp_path
    _write(results, "20261130-py3.15.json", _echo(40000.0))
    _write(results, "frameworks-20261130-py3.15.json", _frameworks())
    _write(results, "pipe-20261130-py3.15.json", _pipe())
    _write(results, "micro-20261130-py3.15.json", _micro())
    # Another version's run and a smoke run must not be picked.
    _write(results, "20261130-py3.12.json", _echo(1.0))
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{report.README_BEGIN}\nold table\n{report.README_END}\nafter\n")

    path = report.full_report("3.15", readme=readme)

    assert path == results / "20261130-py3.15.md"
    text = path.read_text()
    for label in ("echo protocol 1 KiB, 10 conns", "HTTP plaintext (protocol), 10 conns",
                  "UDP echo 1 KiB, 10 sockets", "pipe through cat", "| tls-echo-1k |",
                  "| tls-echo-64k |", "| uvicorn |", "| uvicorn-tls |", "| aiohttp |",
                  "micro: call_soon"):
        assert label in text, label
    # fastloop against asyncio and against the best other loop (uvloop), not
    # against the C server.
    line = next(x for x in text.splitlines() if x.startswith("| echo protocol 1 KiB"))
    assert line.endswith("| **80,000 · 6.0 µs** | 2.00× | 1.33× |"), line
    assert "tls-echo-1k on rloop: unsupported" in text
    block = readme.read_text()
    assert block.startswith("before\n" + report.README_BEGIN)
    assert block.endswith(report.README_END + "\nafter\n")
    assert "old table" not in block
    assert "| uvicorn-tls |" in block and "20261130-py3.15.md" in block


def test_smoke_runs_are_left_out_of_the_readme(report, tmp_path):
    _write(tmp_path, "20261130-py3.15-quick.json", _echo(10.0))
    readme = tmp_path / "README.md"
    original = f"{report.README_BEGIN}\nkept\n{report.README_END}\n"
    readme.write_text(original)

    assert report.full_report("3.15", readme=readme) is None   # full runs only
    path = report.full_report("3.15", include_quick=True, readme=readme)

    assert path.name == "20261130-py3.15-quick.md"
    assert "smoke run" in path.read_text()
    assert readme.read_text() == original


def test_readme_without_markers_is_an_error(report, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no block here\n")
    with pytest.raises(SystemExit):
        report.write_readme_block(readme, "table")
    assert readme.read_text() == "no block here\n"
