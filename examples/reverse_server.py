"""Reverse server built on the low-level loop socket API.

Every line a client sends comes back reversed, newline included:
b'Hello Server!\\n' is answered with b'\\n!revreS olleH'. Only a non-blocking
listening socket and loop.sock_accept / sock_recv / sock_sendall are used;
each client gets its own task, so any number of clients are served at the
same time. Compare with sync/reverse_server.py, which handles one at a time.

    python examples/reverse_server.py --port 6789
    python examples/reverse_server.py --loop asyncio --port 0 --max-clients 3
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from _loopchoice import add_loop_args, positive_int, run, until_signal

RECV_SIZE = 4096


def reverse_lines(data: bytes) -> bytes:
    """Reverse each newline-terminated line of ``data``, newline included.

    Bytes after the last newline are left out: that line is not complete yet.
    """
    return b"".join(b"\n" + line[::-1] for line in data.split(b"\n")[:-1])


def open_listener(host: str, port: int) -> socket.socket:
    """Create a non-blocking listening socket, as the loop's sock_* API needs."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.create_server((host, port), family=family)
    listener.setblocking(False)
    return listener


async def handle_client(conn: socket.socket, peer: str) -> None:
    loop = asyncio.get_running_loop()
    # TCP delivers a byte stream, not messages: one recv() may hold half a
    # line or several lines, so keep what is left over until its newline.
    pending = bytearray()
    try:
        with conn:
            while data := await loop.sock_recv(conn, RECV_SIZE):
                pending += data
                end = pending.rfind(b"\n") + 1
                if end:
                    await loop.sock_sendall(conn, reverse_lines(pending[:end]))
                    del pending[:end]
            # The client has finished sending; answer a trailing partial line
            # before hanging up so that nothing it sent goes unanswered.
            if pending:
                await loop.sock_sendall(conn, bytes(pending[::-1]))
    except ConnectionError as exc:
        print(f"{peer}: connection lost ({exc})", flush=True)
    else:
        print(f"{peer}: done", flush=True)


async def serve(listener: socket.socket, max_clients: int | None) -> None:
    loop = asyncio.get_running_loop()
    clients: set[asyncio.Task[None]] = set()
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    try:
        with listener:
            served = 0
            while max_clients is None or served < max_clients:
                conn, address = await loop.sock_accept(listener)
                conn.setblocking(False)
                served += 1
                peer = f"{address[0]}:{address[1]}"
                print(f"{peer}: connected", flush=True)
                task = asyncio.create_task(handle_client(conn, peer))
                # The loop only keeps weak references to tasks; hold on to
                # them so a running client is never garbage-collected.
                clients.add(task)
                task.add_done_callback(clients.discard)
                # A task cancelled before its first step (SIGTERM right after
                # an accept) never reaches its `with conn:`; close the socket
                # when the task ends either way (a second close does nothing).
                task.add_done_callback(lambda _task, conn=conn: conn.close())
        # Enough clients accepted: the listener is closed, let the last
        # conversations finish.
        await asyncio.gather(*clients)
    finally:
        # Reached on Ctrl-C/SIGTERM too: stop whatever is still talking.
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)


async def main(listener: socket.socket, max_clients: int | None) -> None:
    stopped_by = await until_signal(serve(listener, max_clients))
    if stopped_by is None:
        print(f"served {max_clients} clients, exiting", flush=True)
    else:
        print(f"{stopped_by.name} received, server stopped", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_loop_args(parser, default_port=6789)
    parser.add_argument(
        "--max-clients",
        type=positive_int,
        metavar="N",
        help="exit once N clients have been served (default: run until stopped)",
    )
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        listener = open_listener(args.host, args.port)
    except OSError as exc:
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {exc}")
    run(main(listener, args.max_clients), args.loop)


if __name__ == "__main__":
    cli()
