"""Client for reverse_server.py built on the low-level loop socket API.

It connects a non-blocking socket with loop.sock_connect, sends one line with
loop.sock_sendall and prints what loop.sock_recv brings back. With
--clients N, N clients talk to the server at the same time from one thread.

    python examples/reverse_client.py --port 6789
    python examples/reverse_client.py --port 6789 --clients 3 --message 'Hi there'
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from _loopchoice import add_loop_args, positive_int, run

RECV_SIZE = 4096


async def connect(host: str, port: int) -> socket.socket:
    """Connect a non-blocking socket to the first address of host that answers."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError | None = None
    for family, type_, proto, _, address in infos:
        sock = socket.socket(family, type_, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise error or OSError(f"no address found for {host}")


async def talk(host: str, port: int, message: bytes, prefix: str) -> None:
    loop = asyncio.get_running_loop()
    sock = await connect(host, port)
    with sock:
        print(f"{prefix}Sending {message!r}", flush=True)
        await loop.sock_sendall(sock, message)
        # Half-close: the server then knows the whole message is here and
        # hangs up after answering, so reading until EOF gets the full reply
        # however TCP chose to split it.
        sock.shutdown(socket.SHUT_WR)
        reply = bytearray()
        while chunk := await loop.sock_recv(sock, RECV_SIZE):
            reply += chunk
    print(f"{prefix}Server replied {bytes(reply)!r}", flush=True)


async def main(host: str, port: int, message: bytes, clients: int) -> None:
    if clients == 1:
        await talk(host, port, message, prefix="")
    else:
        await asyncio.gather(
            *(talk(host, port, message, prefix=f"[{n}] ") for n in range(1, clients + 1))
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_loop_args(parser, default_port=6789)
    parser.add_argument(
        "--message",
        default="Hello Server!",
        help="text to send; a newline is appended (default: %(default)r)",
    )
    parser.add_argument(
        "--clients",
        type=positive_int,
        default=1,
        metavar="N",
        help="number of clients to run at the same time (default: %(default)s)",
    )
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    message = f"{args.message}\n".encode()
    try:
        run(main(args.host, args.port, message, args.clients), args.loop)
    except OSError as exc:
        sys.exit(f"error: talking to {args.host}:{args.port} failed: {exc}")


if __name__ == "__main__":
    cli()
