"""Echo client: a small load generator that also checks every byte.

It opens --connections connections to an echo server and on each one, over
and over, sends a --size byte message, reads the whole echo back and compares
it with what was sent before sending the next (one request in flight per
connection). Message contents change from one message and connection to the
next, so an echo that is stale, truncated, reordered or meant for another
connection is caught. Runs for --duration seconds or --messages messages per
connection, then prints the throughput; any mismatch ends it with exit
status 1.

    python examples/echo_client.py --port 8888 --duration 5
    python examples/echo_client.py --port 8888 --size 1048576 --messages 10 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass

from _loopchoice import add_loop_args, positive_int, run

# Messages are windows onto a repeating 0..250 byte ramp, shifted by one for
# each message (and by 97 for each connection). 251 is prime, so the shift
# never lines up with power-of-two message sizes or buffer boundaries, and
# consecutive messages differ at every byte.
PERIOD = 251
DEFAULT_DURATION = 5.0


class EchoError(Exception):
    """The server did not echo exactly what was sent."""


@dataclass
class Result:
    messages: int
    seconds: float
    loop: str
    connections: int
    size: int

    @property
    def rps(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        mib_per_s = self.rps * self.size / 2**20
        return (
            f"{self.connections} connections x {self.size}-byte messages on {self.loop}\n"
            f"{self.messages} messages echoed intact in {self.seconds:.2f} s: "
            f"{self.rps:.0f} requests/s, {mib_per_s:.1f} MiB/s each way"
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "messages": self.messages,
                "seconds": round(self.seconds, 6),
                "rps": round(self.rps, 1),
                "loop": self.loop,
                "connections": self.connections,
                "size": self.size,
            }
        )


def make_pattern(size: int) -> bytes:
    """Return bytes from which every message of ``size`` bytes is sliced."""
    return (bytes(range(PERIOD)) * (size // PERIOD + 2))[: size + PERIOD]


def describe_mismatch(sent: bytes, echoed: bytes) -> str:
    at = next(i for i, (a, b) in enumerate(zip(sent, echoed, strict=True)) if a != b)
    return (
        f"echo differs from what was sent at byte {at} "
        f"(sent 0x{sent[at]:02x}, got 0x{echoed[at]:02x})"
    )


class EchoConnection:
    """One connection's send / read back / compare loop."""

    def __init__(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.number = number
        self.reader = reader
        self.writer = writer
        # Both are watched by watch_for_stalls() to tell a stuck server apart
        # from a slow one.
        self.echoed = 0
        self.finishing = False

    @classmethod
    async def open(cls, number: int, host: str, port: int) -> EchoConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(number, reader, writer)

    async def run(
        self, pattern: bytes, size: int, count: int | None, deadline: float | None
    ) -> None:
        loop = asyncio.get_running_loop()
        while (count is None or self.echoed < count) and (
            deadline is None or loop.time() < deadline
        ):
            offset = (self.number * 97 + self.echoed) % PERIOD
            message = pattern[offset : offset + size]
            # No drain() before reading: a large message is echoed while we
            # are still sending it, and if we stopped reading until our own
            # send finished, both directions' buffers could fill up and stall.
            self.writer.write(message)
            try:
                echoed = await self.reader.readexactly(size)
            except asyncio.IncompleteReadError as exc:
                raise EchoError(
                    f"{self.where()}: server closed the connection after "
                    f"{len(exc.partial)} of {size} bytes"
                ) from None
            if echoed != message:
                raise EchoError(f"{self.where()}: {describe_mismatch(message, echoed)}")
            self.echoed += 1

        # Say we are done sending; an echo server has nothing more to say
        # and should simply hang up. Anything else it sends was never asked for.
        self.finishing = True
        self.writer.write_eof()
        extra = await self.reader.read()
        if extra:
            raise EchoError(
                f"{self.where()}: server sent {len(extra)} unexpected bytes after the last echo"
            )

    def where(self) -> str:
        if self.finishing:
            return f"connection {self.number}"
        return f"connection {self.number}, message {self.echoed + 1}"

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def open_connections(host: str, port: int, count: int) -> list[EchoConnection]:
    results = await asyncio.gather(
        *(EchoConnection.open(n, host, port) for n in range(1, count + 1)),
        return_exceptions=True,
    )
    connections = [r for r in results if isinstance(r, EchoConnection)]
    if len(connections) < count:
        for connection in connections:
            await connection.close()
        raise next(r for r in results if isinstance(r, BaseException))
    return connections


async def watch_for_stalls(
    running: dict[EchoConnection, asyncio.Task[None]], timeout: float
) -> None:
    """Raise EchoError once a connection has made no progress for ``timeout`` s.

    A server that loses or withholds part of an echo would otherwise leave
    us waiting forever. One watchdog costs nothing per message, unlike
    wrapping every read in asyncio.wait_for().
    """
    seen = {connection: connection.echoed for connection in running}
    while True:
        await asyncio.sleep(timeout)
        for connection, task in running.items():
            if not task.done() and connection.echoed == seen[connection]:
                if connection.finishing:
                    problem = "server did not hang up after the last echo"
                else:
                    problem = "no complete echo"
                raise EchoError(f"{connection.where()}: {problem} within {timeout:g} s")
            seen[connection] = connection.echoed


async def main(args: argparse.Namespace) -> Result:
    loop = asyncio.get_running_loop()
    connections = await open_connections(args.host, args.port, args.connections)
    pattern = make_pattern(args.size)

    # The clock starts once every connection is up, so that connecting does
    # not count against the request rate.
    started = time.perf_counter()
    deadline = loop.time() + args.duration if args.duration is not None else None
    running = {
        connection: asyncio.create_task(connection.run(pattern, args.size, args.messages, deadline))
        for connection in connections
    }
    watchdog = asyncio.create_task(watch_for_stalls(running, args.timeout))
    unfinished = set(running.values())
    try:
        # Stop at the first failure instead of letting the other connections
        # run on for the rest of the duration.
        while unfinished:
            done, _ = await asyncio.wait(
                unfinished | {watchdog}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()  # re-raises a connection's error, or the watchdog's
            unfinished -= done
        seconds = time.perf_counter() - started
    finally:
        watchdog.cancel()
        for task in running.values():
            task.cancel()
        await asyncio.gather(watchdog, *running.values(), return_exceptions=True)
        for connection in connections:
            await connection.close()

    messages = sum(connection.echoed for connection in connections)
    return Result(messages, seconds, args.loop, args.connections, args.size)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_loop_args(parser)
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=10,
        metavar="N",
        help="concurrent connections (default: %(default)s)",
    )
    parser.add_argument(
        "--size",
        type=positive_int,
        default=1024,
        metavar="BYTES",
        help="size of each message (default: %(default)s)",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help=f"run for this long (the default, {DEFAULT_DURATION:g} s)",
    )
    length.add_argument(
        "--messages",
        type=positive_int,
        metavar="COUNT",
        help="send this many messages per connection instead",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="fail if a connection gets no complete echo for this long (default: %(default)g)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="also print the result as a JSON object on the last line",
    )
    args = parser.parse_args(argv)
    if args.messages is None and args.duration is None:
        args.duration = DEFAULT_DURATION
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        result = run(main(args), args.loop)
    except EchoError as exc:
        sys.exit(f"FAIL: {exc}")
    except OSError as exc:
        sys.exit(f"error: talking to {args.host}:{args.port} failed: {exc}")
    except KeyboardInterrupt:
        sys.exit("interrupted")

    print(result.summary())
    if args.json:
        print(result.to_json())


if __name__ == "__main__":
    cli()
