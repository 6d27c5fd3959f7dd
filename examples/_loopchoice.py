"""Plumbing shared by the async examples: choosing and running an event loop.

Every async example takes ``--loop {fastloop,asyncio}`` so that the same
program can be run on fastloop and on the standard library loop; comparing
the two is then a one-flag change.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

LOOP_NAMES = ("fastloop", "asyncio")


def add_loop_args(
    parser: argparse.ArgumentParser, *, default_port: int = 8888
) -> argparse.ArgumentParser:
    """Add the --loop, --host and --port options every async example takes."""
    parser.add_argument(
        "--loop",
        choices=LOOP_NAMES,
        default="fastloop",
        help="event loop implementation to run on (default: %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to use (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=default_port,
        help="TCP port to use; 0 lets a server pick a free one (default: %(default)s)",
    )
    return parser


def positive_int(text: str) -> int:
    """argparse type for counts that must be at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def fastloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """Import fastloop and return its loop factory (ImportError if unavailable)."""
    # "from ... import" turns a package without the function (say, a source
    # tree that has not been built) into an ImportError too.
    try:
        from fastloop import new_event_loop
    except ModuleNotFoundError as exc:
        if exc.name != "fastloop":
            raise
        # In a source checkout built in place the package sits next to
        # examples/, which `python examples/NAME.py` does not put on sys.path.
        # Appending (not prepending) keeps an installed fastloop preferred.
        sys.path.append(str(Path(__file__).resolve().parent.parent))
        from fastloop import new_event_loop
    return new_event_loop


def loop_factory(loop_name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a function creating a new event loop of the named kind."""
    if loop_name == "fastloop":
        return fastloop_factory()
    if loop_name == "asyncio":
        return asyncio.new_event_loop
    raise ValueError(f"unknown loop {loop_name!r}; expected one of {LOOP_NAMES}")


def run(coro: Coroutine[Any, Any, T], loop_name: str) -> T:
    """Run ``coro`` to completion on a fresh loop of the named kind.

    This mirrors asyncio.run(): leftover tasks are cancelled and async
    generators finalized before the loop is closed.
    """
    try:
        factory = loop_factory(loop_name)
    except ImportError as exc:
        # Nobody will ever await the coroutine; close it so Python does not
        # add a "never awaited" warning to the real error.
        coro.close()
        raise SystemExit(
            f"error: cannot import fastloop ({exc}); build it first or run with --loop asyncio"
        ) from None

    if hasattr(asyncio, "Runner"):  # Python 3.11+
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)
    return _run_without_runner(coro, factory)


def _run_without_runner(
    coro: Coroutine[Any, Any, T], factory: Callable[[], asyncio.AbstractEventLoop]
) -> T:
    """Python 3.10 has no asyncio.Runner, so do its job by hand."""
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception while shutting down the loop",
                    "exception": task.exception(),
                    "task": task,
                }
            )


async def until_signal(aw: Awaitable[Any]) -> signal.Signals | None:
    """Await ``aw``, cancelling it if SIGINT or SIGTERM arrives.

    Servers use this so that Ctrl-C or a service manager's SIGTERM ends them
    through their ordinary cleanup code (finally blocks, closing sockets)
    rather than killing them mid-write. Returns the signal that stopped it,
    or None if it finished on its own.

    A server should announce that it is ready from inside ``aw``: the
    handlers are in place before that starts running, whereas a signal
    arriving before this call would still kill the process outright.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(aw)
    received: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum)
        task.cancel()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
        except (NotImplementedError, RuntimeError):
            # Windows loops and loops outside the main thread cannot do this;
            # Ctrl-C then still ends the program, as a KeyboardInterrupt.
            continue
        installed.append(signum)

    try:
        await task
    except asyncio.CancelledError:
        # Only swallow the cancellation we caused; if our caller is being
        # cancelled, that must propagate.
        if not received:
            raise
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return received[0] if received else None
