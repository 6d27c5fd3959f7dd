import asyncio
import os
import re
import socket
import subprocess
import sys
import time

import pytest

import fastloop

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def test_counters_follow_the_work(loop):
    before = fastloop.metrics(loop)
    for _ in range(50):
        loop.call_soon(lambda: None)
    for i in range(5):
        loop.call_later(0.001 * i, lambda: None)
    cancelled = loop.call_later(60, lambda: None)
    cancelled.cancel()
    pending = loop.call_later(60, lambda: None)
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    m = loop.metrics()
    assert m["callbacks"] - before["callbacks"] == 50 + 5 + 1
    assert m["iterations"] > before["iterations"]
    assert m["ready_max"] >= 50
    assert m["timers_fired"] == 6
    assert m["timers_pending"] == 1 and m["timers_cancelled"] == 1
    assert 0 <= m["timer_lag_mean_seconds"] <= m["timer_lag_max_seconds"] < 1
    assert m["poll_seconds"] > 0
    pending.cancel()


def test_longest_callback_is_named(loop):
    def slow_callback():
        time.sleep(0.06)

    loop.call_soon(slow_callback)
    loop.call_soon(loop.stop)
    loop.run_forever()
    m = loop.metrics()
    assert m["longest_callback_seconds"] >= 0.05
    assert "slow_callback" in m["longest_callback"]
    assert m["callback_seconds"] >= 0.05


def test_registered_fds_are_counted(loop):
    a, b = socket.socketpair()
    with a, b:
        base = loop.metrics()["fds_registered"]
        loop.add_reader(a, lambda: None)
        loop.add_writer(b, lambda: None)
        assert loop.metrics()["fds_registered"] == base + 2
        loop.remove_reader(a)
        loop.remove_writer(b)
        assert loop.metrics()["fds_registered"] == base


def test_metrics_inside_a_running_program():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.01)
        return fastloop.metrics(loop)

    m = fastloop.run(main())
    assert m["timers_fired"] >= 1 and m["callbacks"] >= 2


@pytest.mark.skipif(not os.path.isdir(EXAMPLES), reason="examples/ is not next to tests/")
def test_loop_top_example_prints_live_lines():
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "loop_top.py"), "--port", "0",
         "--interval", "0.3", "--duration", "1"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("listening on 127.0.0.1:")
    # The example counts ticks, not wall time: one status line per interval
    # while ticks * interval < duration (0, 0.3, 0.6, 0.9), so exactly four
    # (watchdog reports, when shown, are indented under their line).
    status = [line for line in lines[1:] if not line.startswith("    ")]
    assert len(status) == 4
    assert all(re.match(r"iter/s +[\d,]+ +cb/s.* last block ", line) for line in status)

NO_METRICS_PROBE = """
import asyncio, fastloop
loop = fastloop.new_event_loop()
for call in (loop.metrics, lambda: fastloop.metrics(loop)):
    try:
        call()
    except RuntimeError as exc:
        print("RuntimeError:", exc)
    else:
        print("no error")
out = []
loop.call_soon(out.append, 1)
loop.call_later(0.001, out.append, 2)
loop.call_later(0.002, loop.stop)
loop.run_forever()
print(out)
loop.close()
"""


@pytest.mark.timeout(900)  # a full rebuild of the variant takes minutes on a loaded box
def test_metrics_in_a_build_with_metrics_compiled_out():
    # FASTLOOP_NO_METRICS=1 (used by bench/metrics_overhead.py) compiles the
    # counters out: metrics() must say so, and the loop must still work.
    # The build is kept in build/no-metrics/, so only changed modules rebuild.
    import importlib.util
    import shutil
    import sysconfig

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tool = os.path.join(root, "bench", "metrics_overhead.py")
    if not os.path.exists(os.path.join(root, "setup.py")) or not os.path.exists(tool):
        pytest.skip("not a source checkout (setup.py and bench/ absent): cannot build")
    if importlib.util.find_spec("Cython") is None:
        pytest.skip("Cython is not installed: cannot build the no-metrics variant")
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}) on PATH: cannot build the no-metrics variant")
    spec = importlib.util.spec_from_file_location("metrics_overhead", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dest = os.path.join(root, "build", "no-metrics")
    module.build_without_metrics(dest)
    out = subprocess.run([sys.executable, "-c", NO_METRICS_PROBE], cwd=dest,
                         env=dict(os.environ, PYTHONPATH=dest), capture_output=True,
                         text=True, timeout=60, check=True)
    message = "this fastloop build has metrics compiled out (FASTLOOP_NO_METRICS)"
    assert out.stdout.splitlines() == [f"RuntimeError: {message}"] * 2 + ["[1, 2]"]


@pytest.mark.skipif(not os.path.isdir(EXAMPLES), reason="examples/ is not next to tests/")
def test_loop_top_example_shows_the_last_watchdog_report():
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "loop_top.py"), "--port", "0",
         "--interval", "0.5", "--duration", "2", "--watchdog", "0.1", "--block-every", "0.6"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert "ms in simulate_blocking_call() loop_top.py:" in proc.stdout
    # The full report is shown under its line, naming the blocking line.
    assert "    fastloop watchdog: the event loop in thread 'MainThread' was blocked" in proc.stdout
    assert "in simulate_blocking_call()" in proc.stdout
    assert "time.sleep(seconds)" in proc.stdout
