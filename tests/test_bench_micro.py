"""bench/micro.py and its report: every benchmark runs at a small scale on
fastloop and on asyncio with the operation count it was asked for, and the
report renders both the scaled results and the older one-rate-per-benchmark
files, into latest.md and between the README's markers. Never asserts on speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import micro  # noqa: E402
import report  # noqa: E402


@pytest.mark.parametrize("loop_name", ["fastloop", "asyncio"])
@pytest.mark.parametrize("bench", sorted(micro.SCALES))
def test_every_benchmark_runs_at_its_smallest_scale(bench, loop_name):
    scale = micro.SCALES[bench][1][0]
    # 400 operations, or fewer where the quick profile makes fewer (gc: each
    # operation is a full collection of this test process's heap).
    rates = micro.run_one(bench, scale, loop_name, min(400, micro.SCALES[bench][2][1]))
    assert sorted(rates) == sorted(micro.metrics_of(bench))
    assert all(rate > 0 for rate in rates.values())


def test_timer_phases_can_be_counted_one_at_a_time():
    # What bench/callgrind_micro.py relies on: a phase given 0 operations
    # does nothing (and reports no rate).
    rates = micro.run_one("timers", 10, "fastloop", 300, (300, 0, 0))
    assert rates["schedule"] > 0 and rates["cancel"] is None and rates["fire"] is None


def test_the_driver_writes_results_the_report_renders(tmp_path):
    out = tmp_path / "micro.json"
    subprocess.run(
        [sys.executable, str(BENCH / "micro.py"), "--profile", "quick", "--rounds", "1",
         "--only", "call_soon_threadsafe", "--loops", "asyncio,fastloop", "--json", str(out)],
        check=True, capture_output=True, text=True, cwd=BENCH, timeout=600)
    data = json.loads(out.read_text())
    assert data["format"] == 2 and data["loops"] == ["asyncio", "fastloop"]
    assert [(r["bench"], r["scale"]) for r in data["rows"]] == [
        ("call_soon_threadsafe", 1), ("call_soon_threadsafe", 4)]
    text = report.micro_markdown(data)
    assert "#### call_soon_threadsafe" in text and "| 4 |" in text


def _scaled(rates):
    return {"format": 2, "python": "3.12.1 (main)", "rounds": 3, "loops": list(rates),
            "scales": {"timers": {"counts": "live timers", "description": "timers"}},
            "rows": [{"bench": "timers", "scale": 10_000, "metric": "cancel",
                      "raw": {n: [v, v] for n, v in rates.items()},
                      "median": dict(rates)}]}


def test_report_renders_scaled_results_with_ratios():
    text = report.micro_markdown(_scaled({"asyncio": 100.0, "fastloop": 300.0,
                                          "rloop": 200.0, "uvloop": 50.0}))
    row = next(line for line in text.splitlines() if line.startswith("| 10,000 |"))
    # fastloop, uvloop and rloop to asyncio; fastloop to the best other (rloop).
    assert "3.00×" in row and "0.50×" in row and "2.00×" in row and "**1.50×**" in row
    summary = report.summary_markdown(None, None, None, _scaled(
        {"asyncio": 100.0, "fastloop": 150.0, "rloop": 200.0}))
    line = next(line for line in summary.splitlines() if "timers cancel" in line)
    # fastloop to asyncio, then to the best other loop (rloop).
    assert "10,000 live timers" in line and line.endswith("| 1.50× | 0.75× |")


def test_report_still_renders_the_older_results():
    old = sorted((BENCH / "results").glob("micro-*.json"))
    data = json.loads(old[0].read_text())
    assert "rows" not in data
    assert "| call_soon |" in report.micro_markdown(data)
    assert "micro: call_soon (ops/s)" in report.summary_markdown(None, None, None, data)
