"""Echo server written four ways, to compare the layers of the asyncio API.

Every byte received is sent back unchanged. --mode picks the implementation:

  protocol   asyncio.Protocol: the loop calls data_received() with new bytes
  buffered   asyncio.BufferedProtocol: the loop reads straight into a buffer
             we allocated once (get_buffer / buffer_updated)
  streams    asyncio.start_server with StreamReader / StreamWriter
  sockets    loop.sock_accept / sock_recv / sock_sendall on raw sockets

    python examples/echo_server.py --mode buffered --port 8888
    python examples/echo_client.py --port 8888 --messages 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys

from _loopchoice import add_loop_args, run, until_signal

MODES = ("protocol", "buffered", "streams", "sockets")
READ_SIZE = 256 * 1024


class _TrackedEcho:
    """Connection bookkeeping and flow control shared by both protocols.

    eof_received() keeps the default behaviour, returning None: once the
    peer has finished sending, the transport closes as soon as the last
    echoes are out, which is how a client learns that nothing more follows.
    """

    transport: asyncio.Transport

    def __init__(self, connections: set[asyncio.Transport]) -> None:
        self._connections = connections

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._connections.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self.transport)

    # A peer that sends but never reads would otherwise make us buffer its
    # echoes without limit; stop reading from it until it catches up.
    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


class EchoProtocol(_TrackedEcho, asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class BufferedEchoProtocol(_TrackedEcho, asyncio.BufferedProtocol):
    def __init__(self, connections: set[asyncio.Transport]) -> None:
        super().__init__(connections)
        # Allocated once per connection and reused for every read, which is
        # the point of BufferedProtocol: no new bytes object per chunk.
        self._view = memoryview(bytearray(READ_SIZE))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        # write() may keep a reference to whatever it cannot send right away,
        # and this buffer is overwritten by the next read: hand it a copy.
        self.transport.write(self._view[:nbytes].tobytes())


async def serve_protocol(listener: socket.socket, buffered: bool) -> None:
    loop = asyncio.get_running_loop()
    connections: set[asyncio.Transport] = set()
    protocol = BufferedEchoProtocol if buffered else EchoProtocol
    server = await loop.create_server(lambda: protocol(connections), sock=listener)
    try:
        await wait_forever()
    finally:
        server.close()
        # Unsent echoes are of no use to anyone once we are shutting down,
        # and abort() cannot get stuck behind a peer that stopped reading.
        for transport in list(connections):
            transport.abort()
        await server.wait_closed()


async def serve_streams(listener: socket.socket) -> None:
    # Each connection's task, with the writer that can end it.
    sessions: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        sessions[task] = writer
        try:
            while data := await reader.read(READ_SIZE):
                writer.write(data)
                # Waiting here is what applies backpressure to the peer.
                await writer.drain()
        except ConnectionError:
            pass  # the peer went away; nothing left to echo to
        finally:
            del sessions[task]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(echo, sock=listener)
    try:
        await wait_forever()
    finally:
        server.close()
        # Hang up rather than cancel the echo tasks: they then finish the
        # ordinary way (a cancelled one is reported as an error by Python
        # 3.11's start_server), and abort() does not wait for slow readers.
        for writer in sessions.values():
            writer.transport.abort()
        await asyncio.gather(*sessions, return_exceptions=True)
        await server.wait_closed()


async def serve_sockets(listener: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    clients: set[asyncio.Task[None]] = set()

    async def echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := await loop.sock_recv(conn, READ_SIZE):
                    await loop.sock_sendall(conn, data)
            except ConnectionError:
                pass  # the peer went away; nothing left to echo to

    try:
        with listener:
            while True:
                conn, _ = await loop.sock_accept(listener)
                conn.setblocking(False)
                task = asyncio.create_task(echo(conn))
                # The loop only keeps weak references to tasks.
                clients.add(task)
                task.add_done_callback(clients.discard)
    finally:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)


async def wait_forever() -> None:
    # Not Server.serve_forever(): once cancelled, it waits (Python 3.12.1+)
    # for every client to disconnect before returning, so a server with
    # connected clients would never finish shutting down.
    await asyncio.get_running_loop().create_future()


async def serve(listener: socket.socket, mode: str) -> None:
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    if mode == "protocol":
        await serve_protocol(listener, buffered=False)
    elif mode == "buffered":
        await serve_protocol(listener, buffered=True)
    elif mode == "streams":
        await serve_streams(listener)
    else:
        await serve_sockets(listener)


async def main(listener: socket.socket, mode: str) -> None:
    stopped_by = await until_signal(serve(listener, mode))
    if stopped_by is not None:
        print(f"{stopped_by.name} received, server stopped", flush=True)


def open_listener(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.create_server((host, port), family=family)
    listener.setblocking(False)
    return listener


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_loop_args(parser)
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="protocol",
        help="which asyncio API to implement the server with (default: %(default)s)",
    )
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        listener = open_listener(args.host, args.port)
    except OSError as exc:
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {exc}")
    run(main(listener, args.mode), args.loop)


if __name__ == "__main__":
    cli()
