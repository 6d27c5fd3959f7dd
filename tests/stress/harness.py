"""Run one stress scenario in its own subprocess, with a hard timeout.

Each scenario (``scenarios.py``) runs in a fresh interpreter so that a crash
(a signal such as SIGSEGV or SIGABRT) or a hang (the hard timeout) is reported
as such instead of taking pytest down. The scenario prints one ``RESULT {json}``
line; the tests assert on those numbers, the same assertions for both loops.
"""

import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "scenarios.py")
LOOPS = ("asyncio", "fastloop")

# Sizes per scenario: "short" runs in `make test`, "full" in `make stress`.
SIZES = {
    "short": {
        "fd_exhaustion": {"clients": 300, "headroom": 24},
        "peer_reset": {"mb": 16},
        "many_connections": {"n": 1000},
        "timers_memory": {"n": 1_000_000},
        "connect_cycles": {"n": 5_000},
        "slow_reader": {"mb": 50},
        "fork": {"exchanges": 20},
        "fd_reuse": {},
        "threads": {"threads": 8, "per_thread": 20_000},
        "bad_input": {},
    },
    "full": {
        "fd_exhaustion": {"clients": 2000, "headroom": 24},
        "peer_reset": {"mb": 64},
        "many_connections": {"n": 10_000},
        "timers_memory": {"n": 10_000_000},
        "connect_cycles": {"n": 200_000},
        "slow_reader": {"mb": 1024},
        "fork": {"exchanges": 200},
        "fd_reuse": {},
        "threads": {"threads": 8, "per_thread": 1_000_000},
        "bad_input": {},
    },
}
TIMEOUTS = {"short": 90, "full": 900}

#: Every finished run, for the per-scenario summary (tests/stress/conftest.py).
RECORDED = []


class ScenarioFailed(AssertionError):
    pass


def _tail(text, n=25):
    return "\n".join(text.strip().splitlines()[-n:])


def run_scenario(name, loop, size="short", timeout=None):
    """Run scenario ``name`` on ``loop`` in a subprocess; return its result dict.

    Raises ScenarioFailed, naming the crash (signal) or the hang (timeout).
    """
    params = SIZES[size][name]
    timeout = timeout or TIMEOUTS[size]
    cmd = [sys.executable, SCRIPT, name, loop, json.dumps(params)]
    env = dict(os.environ, PYTHONFAULTHANDLER="1", PYTHONPATH=ROOT)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The whole process group: the scenario and any helper it started.
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise ScenarioFailed(
            f"HANG: {name} on {loop} did not finish within {timeout} s\n"
            f"stdout:\n{_tail(out)}\nstderr:\n{_tail(err)}") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    elapsed = time.monotonic() - t0
    result = None
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        raise ScenarioFailed(
            f"CRASH: {name} on {loop} died with {sig}\nstdout:\n{_tail(out)}\n"
            f"stderr:\n{_tail(err, 60)}")
    if proc.returncode != 0 or result is None:
        raise ScenarioFailed(
            f"ERROR: {name} on {loop} exited with {proc.returncode}\nstdout:\n{_tail(out)}\n"
            f"stderr:\n{_tail(err, 60)}")
    result["_elapsed_s"] = round(elapsed, 2)
    result["_stderr_tail"] = _tail(err, 5)
    RECORDED.append((name, loop, size, result))
    return result
