"""gunicorn with uvicorn workers on fastloop.

    gunicorn -k fastloop.gunicorn_worker.UvicornWorker -w 2 gunicorn_app:app

Starts gunicorn with two workers on 127.0.0.1 (port 0; the port comes from
its log) and checks that both workers serve requests on a fastloop loop. The
app's ``/hold`` blocks the serving worker's loop for a moment, so requests
sent meanwhile are accepted by the other worker; rounds of concurrent
requests repeat until both workers answered (bounded). The run also has
FASTLOOP_WATCHDOG set, as a deployment would: the held loop is reported.
"""

import concurrent.futures
import os
import signal
import sys
from pathlib import Path

import pytest
from server_process import ServerProcess

import fastloop

pytest.importorskip("gunicorn", reason="gunicorn is not installed "
                    "(pip install -r requirements-test-extra.txt)")
pytest.importorskip("uvicorn_worker", reason="uvicorn-worker is not installed "
                    "(pip install -r requirements-test-extra.txt)")
httpx = pytest.importorskip("httpx", reason="httpx is not installed "
                            "(pip install -r requirements-test-extra.txt)")

HERE = Path(__file__).resolve().parent
TIMEOUT = 30
ROUNDS = 20


def start_gunicorn(workers):
    cmd = [sys.executable, "-m", "gunicorn",
           "-k", "fastloop.gunicorn_worker.UvicornWorker", "-w", str(workers),
           "-b", "127.0.0.1:0", "--chdir", str(HERE),
           "--graceful-timeout", "10", "--log-level", "info", "gunicorn_app:app"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", FASTLOOP_WATCHDOG="0.1")
    # SIGTERM: gunicorn's graceful shutdown of the arbiter and its workers.
    return ServerProcess("gunicorn", cmd, r"Listening at: http://127\.0\.0\.1:(\d+)", env,
                         timeout=TIMEOUT, stop_signal=signal.SIGTERM)


def get(url):
    with httpx.Client(timeout=TIMEOUT) as client:     # a new connection each time
        response = client.get(url)
    response.raise_for_status()
    return response.json()


def test_two_gunicorn_workers_serve_on_fastloop():
    server = start_gunicorn(workers=2)
    try:
        answers = []
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for _ in range(ROUNDS):
                answers += pool.map(get, [f"{server.url}/hold"] * 4)
                if len({a["pid"] for a in answers}) >= 2:
                    break
        answers.append(get(f"{server.url}/whoami"))
    finally:
        status = server.stop()
    output = server.output()
    pids = {a["pid"] for a in answers}
    assert len(pids) == 2, (answers, output)
    assert {a["ppid"] for a in answers} == {server.proc.pid}
    assert {(a["module"], a["class"]) for a in answers} == {
        (fastloop.Loop.__module__, fastloop.Loop.__qualname__)}
    for pid in pids:
        assert f"Booting worker with pid: {pid}" in output
    assert status == 0, output
    assert "Traceback" not in output, output
    # FASTLOOP_WATCHDOG reached the workers' loops: the held loop was reported.
    assert "gunicorn_app.py:17 in hold_the_loop()" in output, output
