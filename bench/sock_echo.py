"""Server CPU per message of a ``sock_*`` echo server: asyncio vs fastloop.

The server is the low-level style of examples/echo_server.py --mode sockets
(``sock_accept``, then ``sock_recv``/``sock_sendall`` until EOF), run in its own
subprocess on the loop under test. The client, in this process, uses a
blocking socket: it sends a message, waits for the whole echo, and sends the
next one, so the server's ``sock_recv`` normally has to wait (the slow path:
future, registration, wake-up) and its ``sock_sendall`` goes out at once.

The server measures its own CPU time (``getrusage(RUSAGE_SELF)``, user +
system) from the end of a warm-up to EOF and reports microseconds per
message. Loops take turns within each round (interleaved), and the median of
the rounds is reported.

Loops: ``asyncio`` (the stdlib selector loop), ``fastloop`` (native sock_*),
``fastloop-stdlib-sock`` (fastloop with the stdlib's sock_* methods, i.e.
fastloop before the native sock_* paths).

    python bench/sock_echo.py
    python bench/sock_echo.py --messages 50000 --rounds 7 --size 1024
    python bench/sock_echo.py --callgrind      # instruction counts (valgrind)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

LOOPS = ("asyncio", "fastloop-stdlib-sock", "fastloop")
STDLIB_SOCK_METHODS = (
    "sock_recv", "sock_recv_into", "sock_sendall", "sock_connect", "sock_accept",
    "sock_recvfrom", "sock_recvfrom_into", "sock_sendto",
)


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    import fastloop

    if name == "fastloop":
        return fastloop.Loop()
    if name == "fastloop-stdlib-sock":
        methods = {
            m: getattr(asyncio.SelectorEventLoop, m)
            for m in STDLIB_SOCK_METHODS
            if hasattr(asyncio.SelectorEventLoop, m)
        }
        return type("StdlibSockLoop", (fastloop.Loop,), methods)()
    raise SystemExit(f"unknown loop {name!r}")


def cpu_seconds() -> tuple[float, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


async def echo(listener: socket.socket, warmup_bytes: int) -> dict:
    loop = asyncio.get_running_loop()
    conn, _ = await loop.sock_accept(listener)
    received = 0
    start = None
    with conn:
        while data := await loop.sock_recv(conn, 65536):
            received += len(data)
            await loop.sock_sendall(conn, data)
            if start is None and received >= warmup_bytes:
                start = cpu_seconds()
        end = cpu_seconds()
    return {"user": end[0] - start[0], "sys": end[1] - start[1],
            "bytes": received - warmup_bytes}


def serve(name: str, warmup_bytes: int) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    loop = make_loop(name)
    try:
        result = loop.run_until_complete(echo(listener, warmup_bytes))
    finally:
        loop.close()
        listener.close()
    print(json.dumps(result), flush=True)


def server_command(name: str, args: argparse.Namespace, callgrind_out: str | None) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", name,
           "--warmup-bytes", str(args.warmup * args.size)]
    if callgrind_out:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={callgrind_out}",
               "--collect-atstart=yes"] + cmd
    return cmd


def run_client(port: int, messages: int, size: int, delay: float) -> None:
    payload = os.urandom(size)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(messages):
            if delay:
                time.sleep(delay)
            sock.sendall(payload)
            got = 0
            while got < size:
                chunk = sock.recv(65536)
                if not chunk:
                    raise SystemExit("server closed the connection early")
                got += len(chunk)


def one_run(name: str, args: argparse.Namespace,
            callgrind_out: str | None = None) -> tuple[float, float]:
    """Server (user, system) CPU microseconds per message."""
    proc = subprocess.Popen(server_command(name, args, callgrind_out),
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        run_client(port, args.warmup + args.messages, args.size, args.client_delay)
        result = json.loads(proc.stdout.readline())
    finally:
        proc.stdout.close()
        proc.wait(timeout=60)
    if proc.returncode:
        raise SystemExit(f"{name} server exited with {proc.returncode}")
    messages = result["bytes"] / args.size
    return result["user"] * 1e6 / messages, result["sys"] * 1e6 / messages


def callgrind_total(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--warmup-bytes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--loops", default=",".join(LOOPS))
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--client-delay", type=float, default=None,
                        help="seconds the client sleeps before each message, so the server's "
                             "sock_recv always waits (default: 0; 0.003 with --callgrind, "
                             "where the slowed-down server would otherwise find the next "
                             "message already there)")
    parser.add_argument("--callgrind", action="store_true",
                        help="count the server's instructions per message under valgrind "
                             "(two runs of different lengths, the difference per message)")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.warmup_bytes)
        return
    loops = args.loops.split(",")
    if args.client_delay is None:
        args.client_delay = 0.003 if args.callgrind else 0.0
    if args.callgrind:
        if not shutil.which("valgrind"):
            raise SystemExit("valgrind not found")
        print(f"server instructions per {args.size}-byte message (callgrind)")
        messages = args.messages
        with tempfile.TemporaryDirectory() as tmp:
            for name in loops:
                totals = []
                for n in (messages, 2 * messages):
                    out = os.path.join(tmp, f"{name}-{n}.out")
                    args.messages = n
                    one_run(name, args, out)
                    totals.append(callgrind_total(out))
                args.messages = messages
                per = (totals[1] - totals[0]) / messages
                print(f"  {name:22} {per:10.0f} instructions/message")
        return
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name in loops:
            samples[name].append(one_run(name, args))
    print(f"server CPU per {args.size}-byte echo, {args.messages} messages, "
          f"median of {args.rounds} interleaved rounds (Python {sys.version.split()[0]})")
    base = statistics.median(u + s for u, s in samples[loops[0]])
    for name in loops:
        total = statistics.median(u + s for u, s in samples[name])
        user = statistics.median(u for u, _ in samples[name])
        system = statistics.median(s for _, s in samples[name])
        spread = " ".join(f"{u + s:.2f}" for u, s in samples[name])
        print(f"  {name:22} {total:6.2f} us/msg (user {user:5.2f}, sys {system:5.2f})"
              f"  {base / total:4.2f}x vs {loops[0]}  [{spread}]")


if __name__ == "__main__":
    main()
