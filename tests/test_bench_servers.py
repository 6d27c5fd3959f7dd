"""The echo benchmark's servers echo correctly on fastloop, and its C load
generator really checks them.

Every bench/servers.py mode runs on fastloop against a short run of
bench/loadgen.c at 1 byte, 1 KiB and 1 MiB messages; the load generator
compares every echoed byte with what it sent. Needs a C compiler (skipped
otherwise).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
if not (BENCH / "cbuild.py").exists():
    # An installed-wheel test run copies tests/ alone.
    pytest.skip("bench/ is not next to tests/", allow_module_level=True)


def _load(name: str):
    # By path, under a private name: bench/ is not a package and its module
    # names (servers, cbuild) should not shadow anything on sys.path.
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cbuild = _load("cbuild")
MODES = _load("servers").MODES

# (size, connections, messages): enough round trips to cross many reads and
# partial writes, small enough for the whole file to take a few seconds.
RUNS = [(1, 4, 2000), (1024, 4, 2000), (1024 * 1024, 3, 30)]
TIME_LIMIT = 10  # seconds per load generator run


@pytest.fixture(scope="module")
def binaries() -> dict[str, Path]:
    if cbuild.compiler() is None:
        pytest.skip("no C compiler (gcc/cc) to build bench/loadgen.c")
    return {name: cbuild.build(name) for name in cbuild.PROGRAMS}


def start(cmd: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.isdigit():
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"server did not start: {err}")
    return proc, int(line)


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def loadgen(binary: Path, port: int, size: int, connections: int, messages: int):
    cmd = [str(binary), "127.0.0.1", str(port), str(connections), str(size),
           str(TIME_LIMIT), "0", str(messages)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIME_LIMIT + 10)
    stats = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, stats


def check_echo(binary: Path, port: int) -> None:
    for size, connections, messages in RUNS:
        result, stats = loadgen(binary, port, size, connections, messages)
        assert result.returncode == 0, f"{size} B: {result.stderr}"
        assert stats["messages"] == messages
        assert stats["errors"] == 0 and not stats["mismatch"]


@pytest.mark.parametrize("mode", MODES)
def test_bench_server_echoes_on_fastloop(binaries, mode):
    server, port = start([sys.executable, str(BENCH / "servers.py"), "--loop", "fastloop",
                          "--mode", mode, "--port", "0", "--lifetime", "60"])
    try:
        check_echo(binaries["loadgen"], port)
    finally:
        err = stop(server)
    assert "Traceback" not in err and "Error" not in err, err


def test_c_echo_server(binaries):
    server, port = start([str(binaries["echo_server"]), "127.0.0.1", "0"])
    try:
        check_echo(binaries["loadgen"], port)
    finally:
        stop(server)


def _corrupting_server(listener: socket.socket, flip_at: int) -> None:
    """Echo one connection, flipping one bit of the byte at offset flip_at."""
    conn, _ = listener.accept()
    seen = 0
    with conn, contextlib.suppress(OSError):  # the load generator hangs up on us
        while data := conn.recv(65536):
            if seen <= flip_at < seen + len(data):
                data = bytearray(data)
                data[flip_at - seen] ^= 0x01
            seen += len(data)
            conn.sendall(data)


@pytest.mark.parametrize("flip_at", [0, 5000])
def test_loadgen_catches_a_wrong_byte(binaries, flip_at):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=_corrupting_server, args=(listener, flip_at), daemon=True)
    thread.start()
    try:
        result, stats = loadgen(binaries["loadgen"], port, 1024, 1, 100)
    finally:
        listener.close()
    assert result.returncode == 2, result.stderr
    assert "MISMATCH" in result.stderr
    assert stats["mismatch"] is True
    # Message flip_at // 1024, byte flip_at % 1024 of it.
    assert f"message {flip_at // 1024}, byte {flip_at % 1024} of 1024" in result.stderr


def test_loadgen_reports_a_server_that_hangs_up(binaries):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(10)
        conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        result, stats = loadgen(binaries["loadgen"], port, 1024, 1, 10)
    finally:
        listener.close()
    assert result.returncode == 1, result.stderr
    assert stats["errors"] == 1
    assert "server closed the connection" in result.stderr or "reset" in result.stderr
