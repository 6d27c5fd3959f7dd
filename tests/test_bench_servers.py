"""The echo and HTTP benchmarks' servers answer correctly on fastloop, and
their C load generator really checks them.

Every bench/servers.py echo mode runs on fastloop against a short run of
bench/loadgen.c at 1 byte, 1 KiB and 1 MiB messages; the load generator
compares every echoed byte with what it sent. The HTTP mode (and the C
server's) runs against loadgen --http, which compares every response with the
fixed one byte for byte; small Python servers that answer wrongly show the
load generator notices. bench/echo.py's argument lists are checked through
--plan, which runs nothing. No assertion here is about speed. Needs a C
compiler (skipped otherwise).
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
servers = _load("servers")
HTTP_RESPONSE = servers.HTTP_RESPONSE

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


def loadgen(binary: Path, port: int, size: int, connections: int, messages: int,
            http: bool = False):
    cmd = [str(binary)] + (["--http"] if http else []) + [
        "127.0.0.1", str(port), str(connections), str(size), str(TIME_LIMIT), "0", str(messages)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIME_LIMIT + 10)
    stats = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, stats


def check_echo(binary: Path, port: int) -> None:
    for size, connections, messages in RUNS:
        result, stats = loadgen(binary, port, size, connections, messages)
        assert result.returncode == 0, f"{size} B: {result.stderr}"
        assert stats["messages"] == messages
        assert stats["errors"] == 0 and not stats["mismatch"]


@pytest.mark.parametrize("mode", servers.ECHO_MODES)
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


def _echo_twice(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn, contextlib.suppress(OSError):
        while data := conn.recv(65536):
            conn.sendall(data + data)


def test_loadgen_catches_surplus_bytes(binaries):
    # With one message in flight a correct server has nothing more to send.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    threading.Thread(target=_echo_twice, args=(listener,), daemon=True).start()
    try:
        result, stats = loadgen(binaries["loadgen"], port, 16, 1, 100)
    finally:
        listener.close()
    assert result.returncode == 2, result.stderr
    assert "MISMATCH" in result.stderr and "bytes more than" in result.stderr
    assert stats["mismatch"] is True


# ----------------------------------------------------------------- HTTP

REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n"


def http_servers(binaries) -> dict[str, list[str]]:
    return {
        "servers.py on fastloop": [sys.executable, str(BENCH / "servers.py"), "--loop",
                                   "fastloop", "--mode", "http", "--port", "0",
                                   "--lifetime", "60"],
        "C epoll server": [str(binaries["echo_server"]), "--http", "127.0.0.1", "0"],
    }


def exchange(port: int, chunks: list[bytes], expect: int) -> bytes:
    """Send chunks one by one (each its own read on the server), read expect bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in chunks:
            sock.sendall(chunk)
            # Let the server read this chunk before the next one arrives.
            select.select([sock], [], [], 0.02)
        got = b""
        while len(got) < expect and (data := sock.recv(65536)):
            got += data
    return got


@pytest.mark.parametrize("server", ["servers.py on fastloop", "C epoll server"])
def test_http_server(binaries, server):
    proc, port = start(http_servers(binaries)[server])
    try:
        result, stats = loadgen(binaries["loadgen"], port, 0, 4, 2000, http=True)
        assert result.returncode == 0, result.stderr
        assert stats["mode"] == "http" and stats["messages"] == 2000
        assert stats["errors"] == 0 and not stats["mismatch"]
        result, stats = loadgen(binaries["loadgen"], port, 0, 50, 500, http=True)
        assert result.returncode == 0, result.stderr
        # Pipelined: three requests in one read get three responses in order.
        assert exchange(port, [REQUEST * 3], 3 * len(HTTP_RESPONSE)) == HTTP_RESPONSE * 3
        # Split: request heads cut anywhere, even inside the blank line.
        cuts = [REQUEST[:5], REQUEST[5:-3], REQUEST[-3:-1], REQUEST[-1:] + REQUEST[:20],
                REQUEST[20:]]
        assert exchange(port, cuts, 2 * len(HTTP_RESPONSE)) == HTTP_RESPONSE * 2
        # Not a GET: the requests before it are answered, then a 400 and close.
        got = exchange(port, [REQUEST + b"POST / HTTP/1.1\r\n\r\n"], 1 << 16)
        assert got == HTTP_RESPONSE + servers.BAD_REQUEST
    finally:
        err = stop(proc)
    assert "Traceback" not in err and "Error" not in err, err


def _http_server(listener: socket.socket, reply) -> None:
    """Answer each request head on one connection with reply(index)."""
    conn, _ = listener.accept()
    pending, index = b"", 0
    with conn, contextlib.suppress(OSError):
        while data := conn.recv(65536):
            pending += data
            while (end := pending.find(b"\r\n\r\n")) >= 0:
                pending = pending[end + 4:]
                conn.sendall(reply(index))
                index += 1


def _bad_status_at(n: int):
    return lambda i: HTTP_RESPONSE.replace(b"200", b"500") if i == n else HTTP_RESPONSE


# reply(index) -> bytes, and what loadgen must say about it
WRONG_REPLIES = {
    "body": (lambda i: HTTP_RESPONSE[:-1] + b"?",
             f"message 0, byte {len(HTTP_RESPONSE) - 1} of {len(HTTP_RESPONSE)}"),
    "status of request 50": (_bad_status_at(50), f"message 50, byte 9 of {len(HTTP_RESPONSE)}"),
    "two responses at once": (lambda i: HTTP_RESPONSE * 2, "bytes more than"),
}


def _run_against(binaries, reply):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=_http_server, args=(listener, reply), daemon=True)
    thread.start()
    try:
        return loadgen(binaries["loadgen"], port, 0, 1, 100, http=True)
    finally:
        listener.close()


def test_loadgen_http_accepts_the_right_response(binaries):
    # The control for the next test: the same little server, answering right.
    result, stats = _run_against(binaries, lambda i: HTTP_RESPONSE)
    assert result.returncode == 0, result.stderr
    assert stats["messages"] == 100


@pytest.mark.parametrize("wrong", list(WRONG_REPLIES))
def test_loadgen_http_catches_a_wrong_response(binaries, wrong):
    reply, says = WRONG_REPLIES[wrong]
    result, stats = _run_against(binaries, reply)
    assert result.returncode == 2, result.stderr
    assert "MISMATCH" in result.stderr and says in result.stderr
    assert stats["mismatch"] is True


# ----------------------------------------------------------- echo.py's options


def plan(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(BENCH / "echo.py"), "--plan", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_echo_py_default_matrix():
    p = plan()
    rows = {tuple(r) for r in p["rows"]}
    echo = {(m, s, c) for m in servers.ECHO_MODES for s in (1024, 10240, 102400)
            for c in (10, 100)}
    assert rows == echo | {("http", None, 10), ("http", None, 100),
                           ("udp", 1024, 10), ("udp", 1024, 100)}
    assert p["rounds"] >= 3 and p["duration"] >= 2
    assert p["servers"] == len(servers.LOOPS) + 1  # and the C server
    # The C server is TCP only: it sits out the two UDP rows.
    assert p["runs"] == (len(rows) * p["servers"] - 2) * p["rounds"]


def test_echo_py_quick_with_lists():
    p = plan("--quick", "--connections", "10,100", "--sizes", "1,1024",
             "--modes", "protocol,http", "--loops", "fastloop,asyncio", "--no-c-server")
    assert p["rows"] == [["protocol", 1, 10], ["protocol", 1024, 10], ["http", None, 10],
                         ["protocol", 1, 100], ["protocol", 1024, 100], ["http", None, 100]]
    assert (p["rounds"], p["duration"], p["servers"]) == (1, 0.5, 2)


@pytest.mark.parametrize("bad", [["--connections", "10,x"], ["--connections", "0"],
                                 ["--sizes", ""], ["--modes", "protocol,nope"],
                                 ["--loops", "fastloop,tokio"]])
def test_echo_py_rejects_bad_lists(bad):
    out = subprocess.run([sys.executable, str(BENCH / "echo.py"), "--plan", *bad],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error" in out.stderr, out


# ------------------------------------------------------------- UDP and pipes


def udpgen(binary: Path, port: int, sockets: int = 4, duration: float = 0.5, *messages: str):
    cmd = [str(binary), "127.0.0.1", str(port), str(sockets), "1024", str(duration), "0",
           *messages]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 20)
    return result, (json.loads(result.stdout) if result.stdout.strip() else {})


@pytest.mark.parametrize("loop", ["fastloop", "asyncio"])
def test_udp_echo_server(binaries, loop):
    proc, port = start([sys.executable, str(BENCH / "servers.py"), "--loop", loop,
                        "--mode", "udp", "--port", "0", "--lifetime", "60"])
    try:
        result, stats = udpgen(binaries["udpgen"], port)
    finally:
        stop(proc)
    assert result.returncode == 0, result.stderr
    assert stats["errors"] == 0 and stats["messages"] > 0 and stats["size"] == 1024


def test_udpgen_stops_at_a_message_count_without_spurious_resends(binaries):
    # bench/callgrind_echo.py's mode: exactly N round trips. Each reply's send
    # is later than the epoll_wait that found it; udpgen once subtracted the
    # two as unsigned and resent nearly every datagram at once (two in flight
    # per socket, the server doing twice the work counted).
    proc, port = start([sys.executable, str(BENCH / "servers.py"), "--loop", "fastloop",
                        "--mode", "udp", "--port", "0", "--lifetime", "60"])
    try:
        result, stats = udpgen(binaries["udpgen"], port, 4, 60, "2000")
    finally:
        stop(proc)
    assert result.returncode == 0, result.stderr
    assert stats["messages_total"] == 2000 and stats["errors"] == 0
    # A real resend needs a reply 5 s late in this mode: rare even on a loaded
    # machine, and never the half of all datagrams the bug gave.
    assert stats["resent"] < 100, stats


def test_udpgen_notices_a_wrong_echo(binaries):
    # A server that flips one byte of every datagram: every reply is an error.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop_flag = threading.Event()

    def serve():
        while not stop_flag.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except TimeoutError:
                continue
            sock.sendto(bytes([data[0] ^ 1]) + data[1:], addr)

    t = threading.Thread(target=serve)
    t.start()
    try:
        result, stats = udpgen(binaries["udpgen"], sock.getsockname()[1], sockets=2,
                               duration=0.3)
    finally:
        stop_flag.set()
        t.join()
        sock.close()
    assert result.returncode == 1
    assert stats["errors"] > 0 and stats["messages"] == 0


@pytest.mark.parametrize("loop", ["fastloop", "asyncio"])
def test_pipe_bench_one_run(loop):
    out = subprocess.run([sys.executable, str(BENCH / "pipe.py"), "--run", loop, "--mb", "2",
                          "--chunk", "10000"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["verified"] and result["bytes"] == 2 * 2**20


def test_pipe_bench_notices_a_wrong_byte():
    pipe = _load("pipe")

    async def main():
        pump = pipe.Pump(10, b"abcd")
        pump.pipe_data_received(1, b"abcdab")
        assert not pump.mismatch
        pump.pipe_data_received(1, b"cXab")
        assert pump.mismatch and pump.received == 10

    import asyncio
    asyncio.run(main())


def test_tls_echo_server_under_loadgen_tls(binaries):
    """servers.py --mode tls on fastloop, checked by loadgen --tls (OpenSSL sessions)."""
    server, port = start([sys.executable, str(BENCH / "servers.py"), "--loop", "fastloop",
                          "--mode", "tls", "--port", "0", "--lifetime", "60"])
    try:
        for size, connections, messages in [(1, 3, 300), (1024, 3, 300), (65536, 2, 40)]:
            cmd = [str(binaries["loadgen"]), "--tls", "127.0.0.1", str(port), str(connections),
                   str(size), str(TIME_LIMIT), "0", str(messages)]
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIME_LIMIT + 10)
            if result.returncode == 64 and "without OpenSSL" in result.stderr:
                pytest.skip("loadgen was built without OpenSSL headers: no --tls")
            assert result.returncode == 0, f"{size} B: {result.stderr}"
            stats = json.loads(result.stdout)
            assert stats["messages"] == messages and stats["errors"] == 0
    finally:
        err = stop(server)
    assert "Traceback" not in err, err


def test_loadgen_tls_catches_a_plain_server(binaries):
    """Against a server that does not speak TLS, --tls fails instead of counting echoes."""
    server, port = start([str(binaries["echo_server"]), "127.0.0.1", "0"])
    try:
        cmd = [str(binaries["loadgen"]), "--tls", "127.0.0.1", str(port), "1", "16", "2", "0",
               "10"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    finally:
        stop(server)
    assert result.returncode != 0


def test_frameworks_parses_wrk_output():
    frameworks = _load("frameworks")
    text = """Running 2s test @ https://127.0.0.1:1234/
  1 threads and 50 connections
  Latency Distribution
     50%    6.10ms
     75%    7.00ms
     90%    8.00ms
     99%   12.50ms
  14262 requests in 2.00s, 2.01MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 2
Requests/sec:   7131.02
Transfer/sec:      1.00MB
"""
    out = frameworks.parse_wrk(text)
    assert out == {"messages": 14262, "msgs_per_s": 7131.02, "p50_us": 6100.0,
                   "p99_us": 12500.0, "errors": 6}
    plan = subprocess.run([sys.executable, str(BENCH / "frameworks.py"), "--plan", "--rows",
                           "tls-echo-1k,aiohttp", "--loops", "fastloop,aiofastnet"],
                          capture_output=True, text=True, check=True)
    # aiofastnet only on the TLS row.
    assert json.loads(plan.stdout)["runs"] == 3 * 3
