"""A small local chat hub: a TCP server built on asyncio streams.

Clients speak a line protocol (UTF-8, one command per line):

  HELLO <name>              join under a name; the hub answers WELCOME <name>
  SEND <recipient> <text>   deliver text to a connected friend; the hub answers
                            OK <recipient> once it is on its way, or
                            ERR <reason> (for instance an unknown recipient)
  QUIT                      leave; the hub answers BYE and hangs up

and a recipient is handed FROM <sender> <text>. Any other line gets an
ERR <reason> answer. Run it alone and talk to it with `nc 127.0.0.1 8888`,
or let broadcast.py start one inside its own process:

    python examples/chat_hub.py --port 8888

Importable: ChatHub is the server, ChatClient a client for the protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import sys
from dataclasses import dataclass

from _loopchoice import add_loop_args, run, until_signal

log = logging.getLogger("chat_hub")


class ChatError(Exception):
    """The hub answered ERR, or broke the protocol."""


def valid_name(name: str) -> bool:
    # Names are the first word of SEND and FROM lines, so they cannot hold
    # whitespace, and printable-only keeps control characters off terminals.
    return bool(name) and name.isprintable() and not any(ch.isspace() for ch in name)


@dataclass
class _Member:
    """What the hub knows about one connection."""

    writer: asyncio.StreamWriter
    name: str | None = None  # set once HELLO succeeds
    leaving: bool = False


class ChatHub:
    """The hub: tracks who is connected and routes SEND lines to them."""

    def __init__(self) -> None:
        self._members: dict[str, asyncio.StreamWriter] = {}
        # Each connection's session task, with the writer that can end it.
        self._sessions: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Start listening; return the real address (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._session, host, port)
        return self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop listening and hang up on everyone still connected."""
        if self._server is None:
            return
        self._server.close()
        # Hang up rather than cancel the sessions: each then finishes the
        # ordinary way (a cancelled session is reported as an error by
        # Python 3.11's start_server), and unlike close(), abort() cannot be
        # held up by a client that has stopped reading.
        for writer in self._sessions.values():
            writer.transport.abort()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions[task] = writer
        member = _Member(writer)
        try:
            async for line in reader:
                reply = await self._reply(member, line)
                writer.write(reply.encode())
                await writer.drain()
                if member.leaving:
                    break
        except ValueError:
            # StreamReader's line limit (64 KiB) was exceeded.
            writer.write(b"ERR line too long\n")
        except ConnectionError:
            pass  # the client vanished; the cleanup below is all that is left
        finally:
            del self._sessions[task]
            if member.name is not None:
                del self._members[member.name]
                log.info("%s left", member.name)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _reply(self, member: _Member, line: bytes) -> str:
        """Carry out one command line and return the hub's answer to it."""
        try:
            text = line.decode().rstrip("\r\n")
        except UnicodeDecodeError:
            return "ERR lines must be UTF-8\n"

        match text.split(" ", 2):
            case ["HELLO", name]:
                if member.name is not None:
                    return f"ERR already joined as {member.name}\n"
                if not valid_name(name):
                    return "ERR a name is one word of printable characters\n"
                if name in self._members:
                    return f"ERR name {name} is taken\n"
                member.name = name
                self._members[name] = member.writer
                log.info("%s joined", name)
                return f"WELCOME {name}\n"
            case ["HELLO", *_]:
                return "ERR usage: HELLO <name>\n"
            case ["QUIT"]:
                member.leaving = True
                return "BYE\n"
            case _ if member.name is None:
                return "ERR say HELLO <name> first\n"
            case ["SEND", recipient, message]:
                return await self._deliver(member.name, recipient, message)
            case ["SEND", *_]:
                return "ERR usage: SEND <recipient> <text>\n"
            case _:
                return "ERR unknown command; use HELLO, SEND or QUIT\n"

    async def _deliver(self, sender: str, recipient: str, message: str) -> str:
        target = self._members.get(recipient)
        if target is None:
            return f"ERR unknown recipient {recipient}\n"
        try:
            target.write(f"FROM {sender} {message}\n".encode())
            # Waiting for a slow reader slows its senders down too, rather
            # than letting the hub queue messages for it without limit.
            await target.drain()
        except ConnectionError:
            return f"ERR {recipient} has disconnected\n"
        log.info("%s -> %s: %s", sender, recipient, message)
        return f"OK {recipient}\n"


class ChatClient:
    """A hub client that can have several SENDs in flight at once.

    The hub answers a connection's commands in the order it sent them, so
    each OK or ERR settles the oldest unanswered send. FROM lines may arrive
    in between at any time and are queued for receive().
    """

    def __init__(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.name = name
        self._reader = reader
        self._writer = writer
        self._unanswered: collections.deque[asyncio.Future[None]] = collections.deque()
        self._inbox: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._listener = asyncio.create_task(self._listen())

    @classmethod
    async def connect(cls, host: str, port: int, name: str) -> ChatClient:
        """Connect and join the hub as ``name``."""
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"HELLO {name}\n".encode())
            answer = (await reader.readline()).decode().rstrip("\n")
            if answer != f"WELCOME {name}":
                raise ChatError(f"hub refused {name!r}: {answer or 'connection closed'}")
        except BaseException:
            writer.close()
            raise
        return cls(name, reader, writer)

    async def send(self, recipient: str, text: str) -> None:
        """Deliver ``text`` to ``recipient``; raise ChatError if the hub cannot."""
        if "\n" in text or "\r" in text:
            raise ValueError("a message must fit on one line")
        answered = asyncio.get_running_loop().create_future()
        # Queued in the same step as the write, so the order of this deque
        # is the order of the lines on the wire.
        self._unanswered.append(answered)
        self._writer.write(f"SEND {recipient} {text}\n".encode())
        await self._writer.drain()
        await answered

    async def receive(self) -> tuple[str, str]:
        """Wait for the next message; return (sender, text)."""
        message = await self._inbox.get()
        if message is None:
            self._inbox.put_nowait(None)  # let any other receiver see it too
            raise ConnectionError("the hub closed the connection")
        return message

    async def close(self) -> None:
        """Leave the hub and close the connection."""
        if not self._writer.is_closing():
            with contextlib.suppress(ConnectionError):
                self._writer.write(b"QUIT\n")
                await self._writer.drain()
        # The hub answers BYE and hangs up, which ends the listener.
        await self._listener
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def _listen(self) -> None:
        try:
            async for line in self._reader:
                kind, _, rest = line.decode().rstrip("\n").partition(" ")
                if kind == "FROM":
                    sender, _, text = rest.partition(" ")
                    self._inbox.put_nowait((sender, text))
                elif kind in ("OK", "ERR") and self._unanswered:
                    answered = self._unanswered.popleft()
                    if answered.done():
                        continue  # its sender was cancelled and no longer cares
                    if kind == "OK":
                        answered.set_result(None)
                    else:
                        answered.set_exception(ChatError(rest))
        except (ConnectionError, UnicodeDecodeError, ValueError) as exc:
            log.warning("%s: lost the hub: %s", self.name, exc)
        finally:
            for answered in self._unanswered:
                if not answered.done():
                    answered.set_exception(ConnectionError("the hub closed the connection"))
            self._unanswered.clear()
            self._inbox.put_nowait(None)


async def main(host: str, port: int) -> None:
    hub = ChatHub()

    async def serve() -> None:
        address = await hub.start(host, port)
        print(f"listening on {address[0]}:{address[1]}", flush=True)
        # Wait on a future that nothing completes, until a signal cancels it.
        # (Not Server.serve_forever(): since Python 3.12.1, once cancelled it
        # waits for every client to leave first, which may never happen.)
        await asyncio.get_running_loop().create_future()

    try:
        stopped_by = await until_signal(serve())
    finally:
        await hub.close()
    if stopped_by is not None:
        print(f"{stopped_by.name} received, hub stopped", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_loop_args(parser)
    parser.add_argument("--quiet", action="store_true", help="do not log joins and messages")
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stdout,
    )
    try:
        run(main(args.host, args.port), args.loop)
    except OSError as exc:
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {exc}")


if __name__ == "__main__":
    cli()
