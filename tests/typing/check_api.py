"""Type-checked, never run: fastloop's public API as a user's code sees it.

`make typecheck` runs mypy --strict on this folder against
fastloop/__init__.pyi. The lines marked ``type: ignore[...]`` must stay
errors: with warn_unused_ignores (part of --strict) a stub that became too
loose (Any) turns each of them into an "unused ignore" error.
"""

import asyncio
from typing import Any

import fastloop


async def answer() -> int:
    return 42


def use_the_api() -> None:
    result: int = fastloop.run(answer())
    debug_result: int = fastloop.run(answer(), debug=True)
    loop: fastloop.Loop = fastloop.new_event_loop()
    as_asyncio: asyncio.AbstractEventLoop = loop
    counters: dict[str, Any] = fastloop.metrics(loop)
    same: dict[str, Any] = loop.metrics()
    policy: asyncio.AbstractEventLoopPolicy = fastloop.Policy()
    other: fastloop.EventLoopPolicy = fastloop.EventLoopPolicy()
    from_policy: fastloop.Loop = other.new_event_loop()
    fastloop.install()
    version: str = fastloop.__version__
    handle = fastloop.TimerHandle(1.0, print, (), loop)
    when: float = handle.when()
    earlier: bool = handle < handle
    plain: fastloop.Handle = handle
    plain.cancel()
    gone: bool = plain.cancelled()
    print(result, debug_result, as_asyncio, counters, same, policy, from_policy, version, when,
          earlier, gone)
    loop.close()


def misuses() -> None:
    fastloop.run(42)  # type: ignore[arg-type]
    fastloop.metrics(asyncio.new_event_loop())  # type: ignore[arg-type]
    wrong: str = fastloop.run(answer())  # type: ignore[assignment]
    fastloop.new_event_loop(1)  # type: ignore[call-arg]
    print(wrong)
