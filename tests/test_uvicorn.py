"""A real uvicorn server on fastloop, spoken to over HTTP with httpx.

The server runs in its own interpreter, as a user runs it:

    python -m uvicorn --loop fastloop:new_event_loop uvicorn_app:app

(uvicorn 0.36+ takes an import string naming a loop factory; with an older
uvicorn the server is started as ``python -m fastloop -m uvicorn --loop
asyncio ...``, where ``asyncio.run`` picks fastloop's policy up). The app,
tests/uvicorn_app.py, reports the class of the loop that serves each request.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
from server_process import ServerProcess

import fastloop

uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed "
                              "(pip install -r requirements-test-extra.txt)")
httpx = pytest.importorskip("httpx", reason="httpx is not installed "
                            "(pip install -r requirements-test-extra.txt)")

HERE = Path(__file__).resolve().parent
TIMEOUT = 30
FASTLOOP_MODULE = fastloop.Loop.__module__  # "fastloop.loop"


def _version(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def uvicorn_takes_loop_factory():
    """uvicorn 0.36 made ``--loop`` accept an import string of a loop factory."""
    if _version(uvicorn.__version__) < (0, 36):
        return False
    config = uvicorn.Config("uvicorn_app:app", loop="fastloop:new_event_loop")
    return config.get_loop_factory() is fastloop.new_event_loop


class Server(ServerProcess):
    """``python -m uvicorn`` on 127.0.0.1, port 0; the port comes from its log."""

    def __init__(self, *extra):
        if uvicorn_takes_loop_factory():
            prefix = [sys.executable, "-m", "uvicorn", "--loop", "fastloop:new_event_loop"]
        else:
            prefix = [sys.executable, "-m", "fastloop", "-m", "uvicorn", "--loop", "asyncio"]
        cmd = [*prefix, "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", "0",
               "--lifespan", "on", "--http", "h11", "--log-level", "info", "--no-access-log",
               *extra, "uvicorn_app:app"]
        # SIGINT, as Ctrl-C: uvicorn shuts down gracefully and exits 0.
        super().__init__("uvicorn", cmd, r"Uvicorn running on http://127\.0\.0\.1:(\d+)",
                         dict(os.environ, PYTHONUNBUFFERED="1"), timeout=TIMEOUT)


@pytest.fixture
def server():
    srv = Server()
    try:
        yield srv
    finally:
        srv.stop()


def test_the_server_runs_on_fastloop(server):
    response = httpx.get(f"{server.url}/loop", timeout=TIMEOUT)
    assert response.status_code == 200
    info = response.json()
    assert info["module"] == FASTLOOP_MODULE, server.output()
    assert info["class"] == fastloop.Loop.__qualname__
    # The lifespan startup ran on the same kind of loop.
    assert info["startup_module"] == FASTLOOP_MODULE


def test_requests_and_responses(server):
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        body = os.urandom(200_000)
        response = client.post("/echo", content=body)
        assert response.status_code == 200
        assert response.content == body[::-1]
        assert response.headers["content-type"] == "application/octet-stream"

        missing = client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.json() == {"error": "not found"}

        # Keep-alive: several requests on one connection.
        for _ in range(5):
            assert client.get("/loop").json()["module"] == FASTLOOP_MODULE


def test_concurrent_requests_from_an_httpx_client_on_fastloop(server):
    async def main():
        assert isinstance(asyncio.get_running_loop(), fastloop.Loop)
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
            responses = await asyncio.gather(*(client.get("/sleep") for _ in range(20)))
            echoes = await asyncio.gather(
                *(client.post("/echo", content=b"abc%d" % i) for i in range(20)))
        return responses, echoes

    responses, echoes = fastloop.run(main())
    assert [r.json() for r in responses] == [{"slept": True}] * 20
    assert [e.content for e in echoes] == [(b"abc%d" % i)[::-1] for i in range(20)]


def test_graceful_shutdown(server):
    assert httpx.get(f"{server.url}/loop", timeout=TIMEOUT).status_code == 200
    assert server.stop() == 0
    output = server.output()
    assert "Application startup complete" in output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output, output


@pytest.mark.skipif(not hasattr(uvicorn.Config, "get_loop_factory"),
                    reason="uvicorn < 0.36 has no loop factories")
def test_config_resolves_the_import_string():
    config = uvicorn.Config("uvicorn_app:app", loop="fastloop:new_event_loop")
    assert config.get_loop_factory() is fastloop.new_event_loop
