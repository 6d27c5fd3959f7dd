"""Tell several friends some news at once, with one task per friend.

    python examples/broadcast.py 'I bought a car!'

By default everything happens in this one process: a chat hub (chat_hub.py)
starts on a free port, each friend connects to it and waits for a message,
then "me" sends the news to all of them at the same time. asyncio.wait()
watches the send tasks and each delivery is reported as soon as it is done,
in whatever order the hub confirms them.

    python examples/broadcast.py --hub 127.0.0.1:8888 --friends alice,bob 'Hi!'

sends through a hub that is already running (started with chat_hub.py, with
the friends connected to it), and

    python examples/broadcast.py --telegram --friends @ann,@ben 'Hi!'

sends real Telegram messages with Telethon, using the API id and hash from
the TELEGRAM_API_ID and TELEGRAM_API_HASH environment variables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable

from _loopchoice import add_loop_args, run
from chat_hub import ChatClient, ChatError, ChatHub, valid_name

DEFAULT_FRIENDS = ("alice", "bob", "carol")
TELEGRAM_SESSION = "fastloop-broadcast"
# How long friends may take to see a message the hub has already accepted.
RECEIPT_TIMEOUT = 10.0


async def send_to_all(sends: dict[str, Awaitable[object]]) -> list[str]:
    """Run one send per friend at once, reporting each as it completes.

    Returns the friends that could not be reached.
    """
    tasks = {asyncio.ensure_future(send): friend for friend, send in sends.items()}
    failed = []
    pending = set(tasks)
    while pending:
        # FIRST_COMPLETED hands back whatever has finished so far; looping
        # reports every delivery the moment it happens, not all at the end.
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            friend = tasks[task]
            error = task.exception()
            if error is None:
                print(f"delivered to {friend}", flush=True)
            else:
                print(f"could not deliver to {friend}: {error}", flush=True)
                failed.append(friend)
    return failed


async def await_message(friend: ChatClient) -> None:
    sender, text = await friend.receive()
    print(f"{friend.name} received from {sender}: {text}", flush=True)


async def broadcast_locally(
    host: str, port: int, me: str, friends: list[str], message: str
) -> bool:
    """Start a hub, connect the friends, broadcast; True if all got the news."""
    hub = ChatHub()
    host, port = await hub.start(host, port)
    clients: list[ChatClient] = []
    receipts: dict[asyncio.Task[None], str] = {}
    try:
        # Every friend joins before anything is sent, so no message can reach
        # the hub ahead of its recipient.
        for name in friends:
            client = await ChatClient.connect(host, port, name)
            clients.append(client)
            receipts[asyncio.create_task(await_message(client))] = name

        sender = await ChatClient.connect(host, port, me)
        try:
            failed = await send_to_all({name: sender.send(name, message) for name in friends})
        finally:
            await sender.close()

        expected = [task for task, name in receipts.items() if name not in failed]
        if not expected:
            return False
        received, late = await asyncio.wait(expected, timeout=RECEIPT_TIMEOUT)
        for task in late:
            print(
                f"error: {receipts[task]} did not get the message within {RECEIPT_TIMEOUT:g} s",
                file=sys.stderr,
            )
        for task in received:
            if task.exception() is not None:
                print(f"error: {receipts[task]}: {task.exception()}", file=sys.stderr)
        return not failed and not late and all(task.exception() is None for task in received)
    finally:
        # Friends nobody reached are still waiting; stop them before hanging
        # up, or their tasks would end in errors nobody looks at.
        for task in receipts:
            task.cancel()
        await asyncio.gather(*receipts, return_exceptions=True)
        for client in clients:
            await client.close()
        await hub.close()


async def broadcast_via_hub(
    host: str, port: int, me: str, friends: list[str], message: str
) -> bool:
    """Send through a running hub; True if every friend was reached."""
    try:
        sender = await ChatClient.connect(host, port, me)
    except OSError as exc:
        raise ChatError(f"cannot reach the hub at {host}:{port}: {exc}") from None
    try:
        failed = await send_to_all({name: sender.send(name, message) for name in friends})
    finally:
        await sender.close()
    return not failed


async def broadcast_on_telegram(
    api_id: int, api_hash: str, friends: list[str], message: str
) -> bool:
    """Send from your own Telegram account; True if every friend was reached."""
    from telethon import TelegramClient

    client = TelegramClient(TELEGRAM_SESSION, api_id, api_hash)
    # The first run asks for a phone number and login code on the terminal;
    # later runs reuse the session file.
    await client.start()
    try:
        failed = await send_to_all(
            {friend: client.send_message(friend, message) for friend in friends}
        )
    finally:
        await client.disconnect()
    return not failed


def telegram_credentials(parser: argparse.ArgumentParser, friends_given: bool) -> tuple[int, str]:
    """Return (api_id, api_hash), or exit naming everything that is missing."""
    missing = []
    try:
        import telethon  # noqa: F401
    except ImportError:
        missing.append("the telethon package (pip install telethon)")
    api_id = os.environ.get("TELEGRAM_API_ID", "")
    api_hash = os.environ.get("TELEGRAM_API_HASH", "")
    if not api_id:
        missing.append("the TELEGRAM_API_ID environment variable")
    elif not api_id.isdigit():
        missing.append("a numeric TELEGRAM_API_ID (it is the number my.telegram.org shows)")
    if not api_hash:
        missing.append("the TELEGRAM_API_HASH environment variable")
    if not friends_given:
        # The default names are placeholders for the local demo; on Telegram
        # they could be real strangers.
        missing.append("--friends with your friends' Telegram usernames")
    if missing:
        parser.error("--telegram needs " + ", ".join(missing))
    return int(api_id), api_hash


def parse_hub_address(parser: argparse.ArgumentParser, text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--hub wants HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def parse_friends(parser: argparse.ArgumentParser, text: str | None, me: str) -> list[str]:
    if text is None:
        return list(DEFAULT_FRIENDS)
    # dict.fromkeys drops repeats but keeps the order they were given in.
    friends = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not friends:
        parser.error("--friends needs at least one name")
    if me in friends:
        parser.error(f"{me} cannot be one of the friends: that is the sender's name")
    return friends


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("message", help="what to tell your friends (one line)")
    parser.add_argument(
        "--friends",
        metavar="A,B,C",
        help=f"comma-separated names (default: {','.join(DEFAULT_FRIENDS)})",
    )
    parser.add_argument("--name", default="me", help="the sender's name (default: %(default)s)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--hub", metavar="HOST:PORT", help="send through an already running chat_hub.py"
    )
    where.add_argument(
        "--telegram",
        action="store_true",
        help="send Telegram messages with Telethon (needs TELEGRAM_API_ID, TELEGRAM_API_HASH)",
    )
    # --host/--port say where the built-in hub listens; 0 picks a free port.
    add_loop_args(parser, default_port=0)
    return parser


def cli(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    message = args.message
    if not message or "\n" in message or "\r" in message:
        parser.error("the message must be a single, non-empty line")
    friends = parse_friends(parser, args.friends, args.name)

    if args.telegram:
        api_id, api_hash = telegram_credentials(parser, args.friends is not None)
        job = broadcast_on_telegram(api_id, api_hash, friends, message)
    else:
        bad = [name for name in [args.name, *friends] if not valid_name(name)]
        if bad:
            parser.error(f"names must be one word of printable characters: {', '.join(bad)}")
        if args.hub:
            host, port = parse_hub_address(parser, args.hub)
            job = broadcast_via_hub(host, port, args.name, friends, message)
        else:
            job = broadcast_locally(args.host, args.port, args.name, friends, message)

    try:
        everyone_reached = run(job, args.loop)
    except (ChatError, OSError) as exc:
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        sys.exit("interrupted")
    sys.exit(0 if everyone_reached else 1)


if __name__ == "__main__":
    cli()
