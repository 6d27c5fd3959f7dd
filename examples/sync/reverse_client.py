"""Client for the reverse servers written with plain blocking sockets.

The blocking twin of ../reverse_client.py: connect(), sendall() and recv()
each stop the program until the network is done, so talking to several
servers (or running several clients) at once would need threads.

    python examples/sync/reverse_client.py --port 6789 --message 'Hi there'
"""

from __future__ import annotations

import argparse
import socket
import sys

RECV_SIZE = 4096


def talk(host: str, port: int, message: bytes) -> None:
    with socket.create_connection((host, port)) as sock:  # blocks until connected
        print(f"Sending {message!r}", flush=True)
        sock.sendall(message)  # blocks until everything is handed to the OS
        # Half-close: the server then knows the whole message is here and
        # hangs up after answering, so reading until EOF gets the full reply
        # however TCP chose to split it.
        sock.shutdown(socket.SHUT_WR)
        reply = bytearray()
        while chunk := sock.recv(RECV_SIZE):  # blocks until data or EOF
            reply += chunk
    print(f"Server replied {bytes(reply)!r}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="server address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=6789, help="server port (default: %(default)s)")
    parser.add_argument(
        "--message",
        default="Hello Server!",
        help="text to send; a newline is appended (default: %(default)r)",
    )
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        talk(args.host, args.port, f"{args.message}\n".encode())
    except OSError as exc:
        sys.exit(f"error: talking to {args.host}:{args.port} failed: {exc}")


if __name__ == "__main__":
    cli()
