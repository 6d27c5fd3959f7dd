"""Recovery from fd exhaustion on accept, measured (tests/test_accept.py runs it).

    python tests/emfile_probe.py [--loop fastloop|asyncio] [--accept native|python]
                                 [--hold SECONDS] [--budget SECONDS]

A server process limited to 64 fds (RLIMIT_NOFILE) echoes on 127.0.0.1; this
process connects 300 clients (the server runs out of fds after a few dozen),
waits until the server has reported the shortage (and ``--hold`` seconds
more, 0 by default: how long the server stays out of fds), closes every client, then
makes one new connection and times how long until its ping is echoed. Prints
one JSON line: ``served_s`` (None if not served within ``--budget``), the
server's exception-handler calls and the connections it accepted.
``--accept python`` serves from a socket.socket subclass, which takes the
Python fallback accept loop instead of the native one. Not collected by pytest.
"""

import argparse
import asyncio
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

LIMIT = 64
CLIENTS = 300
BACKLOG = 512   # room in the kernel's queue for every client and the probe


def serve(kind, accept_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, hard))
    if kind == "fastloop":
        import fastloop
        loop = fastloop.new_event_loop()
    else:
        loop = asyncio.SelectorEventLoop()
    stats = {"handler_calls": 0, "accepted": 0}

    def handler(_loop, context):
        stats["handler_calls"] += 1
        if stats["handler_calls"] == 1:
            print("exhausted", flush=True)

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            stats["accepted"] += 1
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    class Listener(socket.socket):
        """Not exactly socket.socket: fastloop serves it from its Python accept loop."""

    lsock = (Listener if accept_path == "python" else socket.socket)()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(BACKLOG)
    lsock.setblocking(False)
    loop.set_exception_handler(handler)
    server = loop.run_until_complete(
        loop.create_server(Echo, sock=lsock, backlog=BACKLOG))
    print(lsock.getsockname()[1], flush=True)

    def on_stdin():
        os.read(0, 1)
        print(json.dumps(stats), flush=True)
        loop.stop()
    loop.add_reader(0, on_stdin)
    loop.run_forever()
    server.close()
    loop.close()


def probe(kind, accept_path, budget, hold=0.0):
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--loop", kind,
                               "--accept", accept_path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        clients = []
        for _ in range(CLIENTS):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            clients.append(c)
        sel = selectors.DefaultSelector()
        for c in clients:
            sel.register(c, selectors.EVENT_WRITE)
        pending, deadline = len(clients), time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1):
                sel.unregister(key.fileobj)
                pending -= 1
        sel.close()
        exhausted = server.stdout.readline().strip() == "exhausted"
        time.sleep(hold)
        for c in clients:
            c.close()
        t0 = time.monotonic()
        probe = socket.create_connection(("127.0.0.1", port), timeout=budget)
        served_s = None
        try:
            probe.sendall(b"ping")
            if probe.recv(4) == b"ping":
                served_s = round(time.monotonic() - t0, 3)
        except TimeoutError:
            pass
        finally:
            probe.close()
        server.stdin.write("x")
        server.stdin.flush()
        stats = json.loads(server.stdout.readline())
        server.wait(30)
        return dict(stats, loop=kind, accept=accept_path, hold_s=hold, connected=CLIENTS - pending,
                    exhausted=exhausted, served_s=served_s, budget_s=budget)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", default="fastloop", choices=("fastloop", "asyncio"))
    parser.add_argument("--accept", default="native", choices=("native", "python"))
    parser.add_argument("--budget", type=float, default=2.0)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.loop, args.accept)
    else:
        print(json.dumps(probe(args.loop, args.accept, args.budget, args.hold)))


if __name__ == "__main__":
    main()
