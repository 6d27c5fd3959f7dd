"""The servers the echo and HTTP benchmarks measure, one per asyncio API layer.

    python bench/servers.py --loop fastloop --mode protocol --port 0

Prints the port it listens on (one line, on 127.0.0.1), then serves until
killed or until --lifetime seconds have passed. Modes:

  protocol   asyncio.Protocol: data_received() -> transport.write()
  buffered   asyncio.BufferedProtocol: the loop reads into our buffer
  streams    asyncio.start_server, StreamReader.read() -> write() + drain()
  sockets    loop.sock_accept / sock_recv / sock_sendall on raw sockets
  http       asyncio.Protocol, HTTP/1.1 keep-alive: every request head (a GET,
             up to its blank line) gets the fixed HTTP_RESPONSE; heads split
             across reads and several in one read (pipelining) are handled
  udp        asyncio.DatagramProtocol on a UDP socket: datagram_received() ->
             transport.sendto(data, addr) (driven by bench/udpgen.c)
  tls        the protocol echo over TLS (create_server(ssl=...), the
             certificate of --cert; default bench/cert.pem)

The first four echo every byte back.

Every loop runs the very same code. A loop that lacks an API a mode needs
(NotImplementedError, a missing method) makes the server print
"unsupported: ..." on stderr and exit with status 3 rather than crash, at
start-up or at the first connection that hits it; the driver reports the
combination as unsupported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

LOOPS = ("asyncio", "fastloop", "uvloop", "rloop")
# Not a loop: aiofastnet's C transports patched onto the stdlib loop.
# bench/frameworks.py runs it on the TLS rows (the comparison it is known for).
TRANSPORT_LIBS = ("aiofastnet",)
ECHO_MODES = ("protocol", "buffered", "streams", "sockets")
MODES = ECHO_MODES + ("http", "udp")
# Served here, measured by bench/frameworks.py (loadgen --tls), not echo.py.
TLS_MODES = ("tls",)
# A self-signed ECDSA P-256 certificate (and key) for localhost: the load
# generators do not verify it, and its handshakes are cheap next to RSA's
# (wrk opens its connections inside the measured run).
CERT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cert.pem")
READ_SIZE = 64 * 1024
EXIT_UNSUPPORTED = 3

# Byte for byte what bench/loadgen.c --http expects and bench/echo_server.c
# --http sends. No Date header: the loader verifies the same bytes every time.
HTTP_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                 b"\r\nHello, World!")
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 8 * 1024  # a longer request head is refused (as by echo_server.c)


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    if name == "fastloop":
        import fastloop

        return fastloop.new_event_loop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "rloop":
        import rloop

        return rloop.new_event_loop()
    if name == "aiofastnet":
        import aiofastnet

        return aiofastnet.patch_loop(asyncio.SelectorEventLoop())
    raise ValueError(f"unknown loop {name!r}")


def unsupported(what: str, exc: BaseException) -> None:
    """Report a missing API and leave at once (exit status 3)."""
    print(f"unsupported: {what}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    os._exit(EXIT_UNSUPPORTED)


MISSING_API = (NotImplementedError, AttributeError)


def nodelay(sock) -> None:
    # asyncio and uvloop already set TCP_NODELAY on TCP transports; make sure
    # every loop and mode runs with it, or Nagle decides the 100 KiB latency.
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


class _Conn:
    """A served connection: TCP_NODELAY, and no reading while writes back up."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        nodelay(transport.get_extra_info("socket"))

    # A peer that sends but does not read would make us buffer its echoes
    # without limit: stop reading from it until it catches up.
    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


class EchoProtocol(_Conn, asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class BufferedEchoProtocol(_Conn, asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        # write() may keep what it cannot send at once, and the next read
        # overwrites this buffer: hand it a copy.
        self.transport.write(self._buffer[:nbytes])


class HttpProtocol(_Conn, asyncio.Protocol):
    """HTTP/1.1 keep-alive with one fixed response; requests have no body."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._partial = b""  # the start of a request head whose end is yet to come

    def data_received(self, data: bytes) -> None:
        if self._partial:
            data = self._partial + data
        answered = start = 0
        while (end := data.find(b"\r\n\r\n", start)) >= 0:
            if not data.startswith(b"GET ", start):
                self._refuse(answered)
                return
            answered += 1
            start = end + 4
        self._partial = data[start:]
        if len(self._partial) > MAX_HEAD:
            self._refuse(answered)
        elif answered:
            # One write for a whole pipelined batch, as a real server would.
            self.transport.write(HTTP_RESPONSE * answered)

    def _refuse(self, answered: int) -> None:
        self.transport.write(HTTP_RESPONSE * answered + BAD_REQUEST)
        self.transport.close()


def server_ssl_context(cert: str):
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert)
    return ctx


async def serve_protocol(listener: socket.socket, protocol, ssl=None) -> None:
    loop = asyncio.get_running_loop()
    try:
        await loop.create_server(protocol, sock=listener, ssl=ssl)
    except MISSING_API as exc:
        unsupported(f"{protocol.__name__} server" + (" over TLS" if ssl else ""), exc)


async def serve_streams(listener: socket.socket) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay(writer.get_extra_info("socket"))
        try:
            while data := await reader.read(READ_SIZE):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        except MISSING_API as exc:
            unsupported("streams", exc)
        finally:
            writer.close()

    try:
        await asyncio.start_server(echo, sock=listener)
    except MISSING_API as exc:
        unsupported("asyncio.start_server", exc)


async def serve_sockets(listener: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task] = set()

    async def echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := await loop.sock_recv(conn, READ_SIZE):
                    await loop.sock_sendall(conn, data)
            except ConnectionError:
                pass
            except MISSING_API as exc:
                unsupported("loop.sock_recv/sock_sendall", exc)

    async def accept() -> None:
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except MISSING_API as exc:
                unsupported("loop.sock_accept", exc)
            conn.setblocking(False)
            nodelay(conn)
            task = loop.create_task(echo(conn))
            tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(tasks.discard)

    task = loop.create_task(accept())
    tasks.add(task)


class UdpEchoProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(data, addr)


async def serve_udp(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    try:
        await loop.create_datagram_endpoint(UdpEchoProtocol, sock=sock)
    except MISSING_API as exc:
        unsupported("create_datagram_endpoint", exc)


SERVE = {
    "protocol": lambda listener: serve_protocol(listener, EchoProtocol),
    "buffered": lambda listener: serve_protocol(listener, BufferedEchoProtocol),
    "streams": serve_streams,
    "sockets": serve_sockets,
    "http": lambda listener: serve_protocol(listener, HttpProtocol),
    "udp": serve_udp,
    "tls": lambda listener, cert=CERT: serve_protocol(listener, EchoProtocol,
                                                      server_ssl_context(cert)),
}


def stop_on_sigint(loop: asyncio.AbstractEventLoop) -> None:
    # SIGINT stops the loop and the process exits normally (a profiler such as
    # callgrind then writes its data): through the loop's own signal handling,
    # which wakes a loop blocked in its poll.
    try:
        loop.add_signal_handler(signal.SIGINT, loop.stop)
    except (NotImplementedError, RuntimeError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="The port is printed on stdout once the server accepts connections "
               "(or datagrams).",
    )
    parser.add_argument("--loop", choices=LOOPS + TRANSPORT_LIBS, default="fastloop")
    parser.add_argument("--mode", choices=MODES + TLS_MODES, default="protocol")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", default=CERT, help="certificate + key for --mode tls")
    parser.add_argument(
        "--lifetime", type=float, default=600.0,
        help="exit after this many seconds whatever happens (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    try:
        loop = make_loop(args.loop)
    except ImportError as exc:
        print(f"not installed: {args.loop}: {exc}", file=sys.stderr)
        return 2
    serve = SERVE[args.mode]
    return run_server(loop, args,
                      lambda listener: serve(listener, args.cert) if args.mode == "tls"
                      else serve(listener))


def run_server(loop: asyncio.AbstractEventLoop, args: argparse.Namespace, serve) -> int:
    """Listen on args.host/port, start serve(listener), print the port, run until stopped."""
    if getattr(args, "mode", None) == "udp":
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listener.bind((args.host, args.port))
    else:
        # proto=IPPROTO_TCP, as the sockets loop.create_server(host, port)
        # binds (from getaddrinfo): the stdlib's transports set TCP_NODELAY
        # only on such sockets (base_events._set_nodelay), uvloop and rloop on
        # every TCP socket. socket.create_server()'s proto-0 socket left
        # asyncio and fastloop with Nagle on, which stalls a response written
        # in two parts (uvicorn: headers, then body) for the client's delayed
        # ACK (~40 ms).
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.host, args.port))
        listener.listen(socket.SOMAXCONN)
    listener.setblocking(False)
    # Asked before serving: rloop's create_server takes the socket's fd over
    # and closes the Python object.
    port = listener.getsockname()[1]
    loop.run_until_complete(serve(listener))
    print(port, flush=True)
    loop.call_later(args.lifetime, loop.stop)
    stop_on_sigint(loop)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
