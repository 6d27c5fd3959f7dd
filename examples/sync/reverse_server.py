"""Reverse server written with plain blocking sockets, for comparison.

Same behaviour as ../reverse_server.py (each line comes back reversed,
newline included), but accept(), recv() and sendall() block the only thread:
while one client is being served, the next one waits in the listen queue.

    python examples/sync/reverse_server.py --port 6789
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys

RECV_SIZE = 4096


def reverse_lines(data: bytes) -> bytes:
    """Reverse each newline-terminated line of ``data``, newline included.

    Bytes after the last newline are left out: that line is not complete yet.
    """
    return b"".join(b"\n" + line[::-1] for line in data.split(b"\n")[:-1])


def handle_client(conn: socket.socket) -> None:
    # TCP delivers a byte stream, not messages: one recv() may hold half a
    # line or several lines, so keep what is left over until its newline.
    pending = bytearray()
    with conn:
        while data := conn.recv(RECV_SIZE):  # blocks until the client sends
            pending += data
            end = pending.rfind(b"\n") + 1
            if end:
                conn.sendall(reverse_lines(pending[:end]))  # blocks until sent
                del pending[:end]
        if pending:
            conn.sendall(bytes(pending[::-1]))


def serve(listener: socket.socket, max_clients: int | None) -> None:
    served = 0
    while max_clients is None or served < max_clients:
        conn, address = listener.accept()  # blocks until a client connects
        served += 1
        peer = f"{address[0]}:{address[1]}"
        print(f"{peer}: connected", flush=True)
        try:
            handle_client(conn)
        except ConnectionError as exc:
            print(f"{peer}: connection lost ({exc})", flush=True)
        else:
            print(f"{peer}: done", flush=True)
    print(f"served {max_clients} clients, exiting", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=6789,
        help="TCP port; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--max-clients",
        type=int,
        metavar="N",
        help="exit once N clients have been served (default: run until stopped)",
    )
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.max_clients is not None and args.max_clients < 1:
        sys.exit("error: --max-clients must be at least 1")
    # Make SIGTERM behave like Ctrl-C, so both leave through the same cleanup.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        family = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.create_server((args.host, args.port), family=family)
    except OSError as exc:
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {exc}")
    with listener:
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        try:
            serve(listener, args.max_clients)
        except KeyboardInterrupt:
            print("server stopped", flush=True)


if __name__ == "__main__":
    cli()
